package secretsmanager

import (
	"context"
	"fmt"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/storage"
)

// Exception codes of the resource policy operations.
const (
	codeMalformedPolicy = "MalformedPolicyDocumentException"
	codePublicPolicy    = "PublicPolicyException"
)

// errMalformedPolicy is the answer to a document that is not JSON or breaks
// the policy grammar; detail names the first problem.
func errMalformedPolicy(detail string) error {
	return awserr.New(codeMalformedPolicy, "This resource policy contains a syntax error. "+detail)
}

func errPublicPolicy() error {
	return awserr.New(codePublicPolicy, "You can't perform this operation because the resource policy you provided is public.")
}

// checkPolicyText parses a policy for PutResourcePolicy: any syntax or
// grammar problem is MalformedPolicyDocumentException, and with
// blockPublic a policy that grants broad access is PublicPolicyException.
func checkPolicyText(text string, blockPublic bool) error {
	doc, findings, err := parsePolicy(text)
	if err != nil {
		return errMalformedPolicy(err.Error())
	}
	if len(findings) > 0 {
		return errMalformedPolicy(findings[0].Message)
	}
	if blockPublic && publicStatement(doc) >= 0 {
		return errPublicPolicy()
	}
	return nil
}

// PutResourcePolicy attaches a resource-based policy to a secret, replacing
// any policy it had. The policy must be a valid policy document
// (MalformedPolicyDocumentException otherwise); with BlockPublicPolicy, a
// policy that grants broad access (an Allow for Principal "*" without a
// condition restricting it to accounts, organizations, ARNs or networks)
// is PublicPolicyException. A secret scheduled for deletion is
// InvalidRequestException. A refused call changes nothing.
func (s *Service) PutResourcePolicy(ctx context.Context, in *smapi.PutResourcePolicyInput) (*smapi.PutResourcePolicyOutput, error) {
	const op = "PutResourcePolicy"
	scope, err := secretScope(ctx, in.SecretId)
	if err != nil {
		return nil, err
	}
	a := act(in.IAMAction()).with("secretsmanager:blockpublicpolicy", boolStr(deref(in.BlockPublicPolicy)))
	text := deref(in.ResourcePolicy)
	policyErr := checkPolicyText(text, deref(in.BlockPublicPolicy))
	var out *smapi.PutResourcePolicyOutput
	var after syncAfter
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		sec, err := s.secretFor(ctx, tx, scope, deref(in.SecretId), a)
		if err != nil {
			return err
		}
		if sec.deleted() {
			return errMarkedForDeletion()
		}
		if policyErr != nil {
			return policyErr
		}
		out = &smapi.PutResourcePolicyOutput{ARN: ptr(sec.meta.ARN), Name: ptr(sec.meta.Name)}
		sec.meta.ResourcePolicyJSON = text
		sec.meta.LastChanged = s.now().UTC()
		return s.saveChange(ctx, tx, sec, &after)
	})
	if err != nil {
		return nil, err
	}
	s.syncNow(ctx, after)
	return out, nil
}

// GetResourcePolicy returns the policy attached to a secret, as it was
// given; ResourcePolicy is absent when the secret has none.
func (s *Service) GetResourcePolicy(ctx context.Context, in *smapi.GetResourcePolicyInput) (*smapi.GetResourcePolicyOutput, error) {
	const op = "GetResourcePolicy"
	scope, err := secretScope(ctx, in.SecretId)
	if err != nil {
		return nil, err
	}
	a := act(in.IAMAction())
	sec, err := s.secretFor(ctx, s.store, scope, deref(in.SecretId), a)
	if err != nil {
		return nil, err
	}
	if sec.deleted() {
		return nil, errMarkedForDeletion()
	}
	out := &smapi.GetResourcePolicyOutput{ARN: ptr(sec.meta.ARN), Name: ptr(sec.meta.Name)}
	if sec.meta.ResourcePolicyJSON != "" {
		out.ResourcePolicy = ptr(sec.meta.ResourcePolicyJSON)
	}
	return out, nil
}

// DeleteResourcePolicy removes the policy attached to a secret. A secret
// without a policy is not an error (nothing changes).
func (s *Service) DeleteResourcePolicy(ctx context.Context, in *smapi.DeleteResourcePolicyInput) (*smapi.DeleteResourcePolicyOutput, error) {
	const op = "DeleteResourcePolicy"
	scope, err := secretScope(ctx, in.SecretId)
	if err != nil {
		return nil, err
	}
	a := act(in.IAMAction())
	var out *smapi.DeleteResourcePolicyOutput
	var after syncAfter
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		sec, err := s.secretFor(ctx, tx, scope, deref(in.SecretId), a)
		if err != nil {
			return err
		}
		if sec.deleted() {
			return errMarkedForDeletion()
		}
		out = &smapi.DeleteResourcePolicyOutput{ARN: ptr(sec.meta.ARN), Name: ptr(sec.meta.Name)}
		if sec.meta.ResourcePolicyJSON == "" {
			return nil
		}
		sec.meta.ResourcePolicyJSON = ""
		sec.meta.LastChanged = s.now().UTC()
		return s.saveChange(ctx, tx, sec, &after)
	})
	if err != nil {
		return nil, err
	}
	s.syncNow(ctx, after)
	return out, nil
}

// ValidateResourcePolicy checks a policy without attaching it. A document
// that is not JSON is MalformedPolicyDocumentException; otherwise the
// answer lists every grammar problem (named like IAM Access Analyzer's
// checks), broad access (BROAD_ACCESS) and a statement that would lock
// everyone out of changing the policy (LOCKOUT). SecretId is optional;
// when given it must name a secret.
func (s *Service) ValidateResourcePolicy(ctx context.Context, in *smapi.ValidateResourcePolicyInput) (*smapi.ValidateResourcePolicyOutput, error) {
	const op = "ValidateResourcePolicy"
	scope, err := secretScope(ctx, in.SecretId)
	if err != nil {
		return nil, err
	}
	a := act(in.IAMAction())
	if in.SecretId != nil {
		if _, err := s.secretFor(ctx, s.store, scope, *in.SecretId, a); err != nil {
			return nil, err
		}
	} else if err := s.authorizeAccount(ctx, a); err != nil {
		return nil, err
	}
	doc, findings, err := parsePolicy(deref(in.ResourcePolicy))
	if err != nil {
		return nil, errMalformedPolicy(err.Error())
	}
	out := &smapi.ValidateResourcePolicyOutput{ValidationErrors: []smapi.ValidationErrorsEntry{}}
	for _, f := range findings {
		out.ValidationErrors = append(out.ValidationErrors, smapi.ValidationErrorsEntry{CheckName: ptr(f.Check), ErrorMessage: ptr(f.Message)})
	}
	if i := publicStatement(doc); i >= 0 {
		out.ValidationErrors = append(out.ValidationErrors, smapi.ValidationErrorsEntry{
			CheckName: ptr(checkBroadAccess),
			ErrorMessage: ptr(fmt.Sprintf("Statement[%d] grants broad access to the secret: it allows a wildcard principal "+
				"without a condition that limits it to specific accounts, organizations, ARNs or networks "+
				"(for example aws:PrincipalAccount, aws:PrincipalOrgID, aws:SourceAccount, aws:SourceArn or aws:SourceVpc).", i)),
		})
	}
	if i := lockoutStatement(doc); i >= 0 {
		out.ValidationErrors = append(out.ValidationErrors, smapi.ValidationErrorsEntry{
			CheckName: ptr(checkLockout),
			ErrorMessage: ptr(fmt.Sprintf("Statement[%d] denies every principal secretsmanager:PutResourcePolicy or "+
				"secretsmanager:DeleteResourcePolicy on the secret, so no one could change or remove the policy.", i)),
		})
	}
	out.PolicyValidationPassed = ptr(len(out.ValidationErrors) == 0)
	return out, nil
}
