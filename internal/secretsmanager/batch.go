package secretsmanager

import (
	"context"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/operation"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
)

// Limits of BatchGetSecretValue.
const (
	maxBatchIDs        = 20
	defaultBatchLimit  = 20
	maxBatchMaxResults = 20
)

// BatchGetSecretValue returns the AWSCURRENT value of up to 20 secrets,
// named in SecretIdList or chosen by Filters (with ListSecrets' filter
// semantics, MaxResults 1-20 and NextToken paging; secrets scheduled for
// deletion are not listed). Exactly one of SecretIdList and Filters must be
// given, and MaxResults only with Filters (InvalidParameterException).
//
// A secret that cannot be read (not found, scheduled for deletion, without
// an AWSCURRENT version, or not decryptable) is reported in Errors with the
// code and message GetSecretValue would answer, and the call succeeds. Only
// an internal failure fails the whole call.
func (s *Service) BatchGetSecretValue(ctx context.Context, in *smapi.BatchGetSecretValueInput) (*smapi.BatchGetSecretValueOutput, error) {
	const op = "BatchGetSecretValue"
	if _, err := scopeOf(ctx); err != nil {
		return nil, err
	}
	// The call itself is on no secret; each secret it reads needs
	// secretsmanager:GetSecretValue (a refusal is one of its Errors), and
	// Filters need secretsmanager:ListSecrets.
	if err := s.authorizeAccount(ctx, act(in.IAMAction())); err != nil {
		return nil, err
	}
	if (in.SecretIdList != nil) == (in.Filters != nil) {
		return nil, errInvalidParameter("Either 'SecretIdList' or 'Filters' must be provided, but not both.")
	}
	if in.MaxResults != nil && in.Filters == nil {
		return nil, errInvalidParameter("'Filters' not specified. 'Filters' must also be specified when 'MaxResults' is provided.")
	}
	out := &smapi.BatchGetSecretValueOutput{SecretValues: []smapi.SecretValueEntry{}, Errors: []smapi.APIErrorType{}}

	if in.SecretIdList != nil {
		if len(in.SecretIdList) == 0 || len(in.SecretIdList) > maxBatchIDs {
			return nil, errInvalidParameter("SecretIdList must contain between 1 and 20 secret IDs.")
		}
		if in.NextToken != nil {
			// A list of ids is answered in one page; no token belongs to it.
			return nil, errInvalidNextToken()
		}
		for _, id := range in.SecretIdList {
			if err := s.batchGetOne(ctx, out, id, id); err != nil {
				return nil, err
			}
		}
		return out, nil
	}

	limit := int32(defaultBatchLimit)
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > maxBatchMaxResults {
			return nil, errInvalidParameter("MaxResults must be between 1 and 20.")
		}
		limit = *in.MaxResults
	}
	// The selection is ListSecrets' own: same filter validation, matching,
	// order and page tokens.
	page, err := s.ListSecrets(ctx, &smapi.ListSecretsInput{
		Filters:    in.Filters,
		MaxResults: &limit,
		NextToken:  in.NextToken,
	})
	if err != nil {
		return nil, err
	}
	for _, e := range page.SecretList {
		if err := s.batchGetOne(ctx, out, deref(e.ARN), deref(e.Name)); err != nil {
			return nil, err
		}
	}
	out.NextToken = page.NextToken
	return out, nil
}

// batchGetOne reads the AWSCURRENT value of the secret id names and adds it
// to out.SecretValues, or adds the client error to out.Errors under
// reportID. It returns only internal errors.
//
// As on AWS, each secret read (or refused) is also a GetSecretValue event in
// the audit trail.
func (s *Service) batchGetOne(ctx context.Context, out *smapi.BatchGetSecretValueOutput, id, reportID string) error {
	in := &smapi.GetSecretValueInput{SecretId: &id}
	v, err := s.GetSecretValue(ctx, in)
	event := operation.Event{Name: "GetSecretValue", ReadOnly: true, RequestParameters: in.AppendAuditJSON(nil)}
	if err != nil {
		e, ok := awserr.As(err)
		if !ok {
			return err // not the client's: the whole call fails
		}
		out.Errors = append(out.Errors, smapi.APIErrorType{SecretId: ptr(reportID), ErrorCode: ptr(e.Code), Message: ptr(e.Message)})
		event.ErrorCode, event.ErrorMessage = e.Code, e.Message
		operation.AddEvent(ctx, event)
		return nil
	}
	operation.AddEvent(ctx, event)
	out.SecretValues = append(out.SecretValues, smapi.SecretValueEntry{
		ARN:           v.ARN,
		Name:          v.Name,
		VersionId:     v.VersionId,
		SecretBinary:  v.SecretBinary,
		SecretString:  v.SecretString,
		VersionStages: v.VersionStages,
		CreatedDate:   v.CreatedDate,
	})
	return nil
}
