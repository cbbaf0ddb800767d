package kms

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/storage"
)

// aliasMeta is the stored metadata of an alias (record Data). The target
// key id is the record's Parent, so aliases of a key are one indexed query.
type aliasMeta struct {
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

const awsAliasPrefix = "alias/aws/"

// managedServices are the services whose AWS managed keys Keyfort creates on
// first use (alias/aws/<service>).
var managedServices = map[string]bool{
	"secretsmanager": true, "s3": true, "ebs": true, "rds": true, "lambda": true,
	"ssm": true, "sqs": true, "sns": true, "dynamodb": true, "kinesis": true,
	"elasticfilesystem": true, "backup": true, "glue": true, "redshift": true,
	"es": true, "acm": true, "xray": true, "codecommit": true, "logs": true,
}

// checkAliasName applies the alias naming rules beyond the model's pattern.
func checkAliasName(name string) error {
	if !strings.HasPrefix(name, "alias/") {
		return awserr.Validation(`Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html`)
	}
	if name == "alias/" {
		return awserr.New(codeInvalidAliasName, "Alias name must not be empty after the alias/ prefix.")
	}
	// The model's pattern admits ':', but AWS documents (and enforces) only
	// letters, digits, '/', '_' and '-' in an alias name.
	if strings.Contains(name, ":") {
		return awserr.Validation(name + " contains invalid characters for an alias")
	}
	return nil
}

// targetKey resolves an alias's target key and authorizes a on it.
func (s *Service) targetKey(ctx context.Context, tx storage.Tx, scope storage.Scope, target string, a *access) (*key, error) {
	if strings.HasPrefix(target, "alias/") || (strings.HasPrefix(target, "arn:") && strings.Contains(target, ":alias/")) {
		return nil, awserr.Validation("Aliases must refer to keys. Not aliases")
	}
	k, err := resolveKey(ctx, tx, scope, target, refKeyOnly)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, tx, k, a); err != nil {
		return nil, err
	}
	if k.meta.Manager == managerAWS {
		return nil, awserr.Newf(awserr.CodeAccessDenied, "You cannot point an alias at an AWS managed key: %s", k.arn)
	}
	if pendingDeletion(k) {
		return nil, errInvalidState(k.arn, k.meta.State)
	}
	return k, nil
}

// CreateAlias creates an alias for a customer managed key.
func (s *Service) CreateAlias(ctx context.Context, in *kmsapi.CreateAliasInput) (*kmsapi.CreateAliasOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	name := deref(in.AliasName)
	if err := checkAliasName(name); err != nil {
		return nil, err
	}
	if strings.HasPrefix(name, awsAliasPrefix) {
		return nil, awserr.New(codeInvalidAliasName, "Alias names that begin with alias/aws/ are reserved for AWS managed keys.")
	}
	a := act(in.IAMAction())
	if err := s.authorizeAlias(ctx, scope, name, a); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	auditAlias(ctx, scope, name)
	var target string
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		k, err := s.targetKey(ctx, tx, scope, deref(in.TargetKeyId), a)
		if err != nil {
			return err
		}
		target = k.arn
		return insertAlias(ctx, tx, scope, name, k.rec.ID, now)
	})
	if err != nil {
		return nil, err
	}
	auditKeyIDResponse(ctx, target)
	return &kmsapi.CreateAliasOutput{}, nil
}

func insertAlias(ctx context.Context, tx storage.Tx, scope storage.Scope, name, keyID string, now time.Time) error {
	data, _ := json.Marshal(aliasMeta{Created: now, Updated: now})
	err := tx.Insert(ctx, &storage.Record{Kind: kindAlias, Scope: scope, ID: name, Parent: keyID, Created: now.UnixNano(), Data: data})
	if errors.Is(err, storage.ErrExists) {
		return awserr.Newf(codeAlreadyExists, "An alias with the name %s already exists", aliasARN(scope, name))
	}
	return err
}

// UpdateAlias points an existing alias at another key.
func (s *Service) UpdateAlias(ctx context.Context, in *kmsapi.UpdateAliasInput) (*kmsapi.UpdateAliasOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	name := deref(in.AliasName)
	if err := checkAliasName(name); err != nil {
		return nil, err
	}
	if strings.HasPrefix(name, awsAliasPrefix) {
		return nil, awserr.New(awserr.CodeAccessDenied, "You cannot update an alias that begins with alias/aws/; those are reserved for AWS managed keys.")
	}
	a := act(in.IAMAction())
	if err := s.authorizeAlias(ctx, scope, name, a); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	auditAlias(ctx, scope, name)
	var target string
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		rec, err := tx.Get(ctx, kindAlias, scope, name)
		if errors.Is(err, storage.ErrNotFound) {
			return errAliasNotFound(aliasARN(scope, name))
		}
		if err != nil {
			return err
		}
		k, err := s.targetKey(ctx, tx, scope, deref(in.TargetKeyId), a)
		if err != nil {
			return err
		}
		// The caller needs kms:UpdateAlias on the current target too.
		if old, err := tx.Get(ctx, kindKey, scope, rec.Parent); err == nil {
			ok, err := decodeKey(old)
			if err != nil {
				return err
			}
			if err := s.authorize(ctx, tx, ok, a); err != nil {
				return err
			}
			if ok.meta.Spec != k.meta.Spec || ok.meta.Usage != k.meta.Usage {
				return errValidation("The new target key must have the same key spec and key usage as the current target key.")
			}
		}
		var m aliasMeta
		_ = json.Unmarshal(rec.Data, &m)
		m.Updated = now
		rec.Data, _ = json.Marshal(m)
		rec.Parent = k.rec.ID
		target = k.arn
		return tx.Update(ctx, rec)
	})
	if err != nil {
		return nil, err
	}
	auditKeyIDResponse(ctx, target)
	return &kmsapi.UpdateAliasOutput{}, nil
}

// DeleteAlias deletes an alias; the key is unaffected.
func (s *Service) DeleteAlias(ctx context.Context, in *kmsapi.DeleteAliasInput) (*kmsapi.DeleteAliasOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	name := deref(in.AliasName)
	if err := checkAliasName(name); err != nil {
		return nil, err
	}
	if strings.HasPrefix(name, awsAliasPrefix) {
		return nil, awserr.New(awserr.CodeAccessDenied, "You cannot delete an alias that begins with alias/aws/; those are reserved for AWS managed keys.")
	}
	a := act(in.IAMAction())
	if err := s.authorizeAlias(ctx, scope, name, a); err != nil {
		return nil, err
	}
	auditAlias(ctx, scope, name)
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		rec, err := tx.Get(ctx, kindAlias, scope, name)
		if errors.Is(err, storage.ErrNotFound) {
			return errAliasNotFound(aliasARN(scope, name))
		}
		if err != nil {
			return err
		}
		// CloudTrail lists the key the alias pointed at, too.
		auditResource(ctx, scope, keyARN(scope, rec.Parent))
		// The caller needs kms:DeleteAlias on that key too.
		if krec, err := tx.Get(ctx, kindKey, scope, rec.Parent); err == nil {
			k, err := decodeKey(krec)
			if err != nil {
				return err
			}
			if err := s.authorize(ctx, tx, k, a); err != nil {
				return err
			}
		}
		return tx.Delete(ctx, kindAlias, scope, name)
	})
	if err != nil {
		return nil, err
	}
	return &kmsapi.DeleteAliasOutput{}, nil
}

// ListAliases pages through aliases by name, optionally of one key.
func (s *Service) ListAliases(ctx context.Context, in *kmsapi.ListAliasesInput) (*kmsapi.ListAliasesOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.authorizeAccount(ctx, act(in.IAMAction())); err != nil {
		return nil, err
	}
	limit := pageLimit(in.Limit, 50)
	if limit > 100 {
		limit = 100
	}
	list, target, after := "aliases", "", ""
	if in.KeyId != nil {
		k, err := s.lookupKey(ctx, scope, *in.KeyId, refKeyOnly, nil) // kms:ListAliases is on "*"
		if err != nil {
			return nil, err
		}
		target = k.rec.ID
		list = "aliases/" + k.rec.ID
	}
	if in.Marker != nil {
		if after, err = s.marker.decode(list, *in.Marker); err != nil {
			return nil, err
		}
	}
	recs, err := s.listAliasRows(ctx, scope, after, target, limit+1)
	if err != nil {
		return nil, err
	}
	// Without a KeyId filter AWS also lists the predefined aliases of AWS
	// managed keys that do not exist yet (no TargetKeyId). Merge them in
	// name order: the page never passes the last stored alias it read, so a
	// stored alias beyond the page cannot be shadowed.
	var predefined []string
	if in.KeyId == nil {
		predefined = predefinedAliasesAfter(after)
	}
	n := min(len(recs)+len(predefined), limit)
	out := &kmsapi.ListAliasesOutput{Aliases: make([]kmsapi.AliasListEntry, 0, n), Truncated: ptr(false)}
	strs, times := newPool[string](3*n), newPool[time.Time](2*n)
	i, j := 0, 0
	for i < len(recs) || j < len(predefined) {
		if len(out.Aliases) == limit {
			out.Truncated = ptr(true)
			out.NextMarker = ptr(s.marker.encode(list, deref(out.Aliases[limit-1].AliasName)))
			break
		}
		if j < len(predefined) && (i == len(recs) || predefined[j] < recs[i].name) {
			out.Aliases = append(out.Aliases, kmsapi.AliasListEntry{AliasName: strs.ptr(predefined[j])})
			j++
			continue
		}
		rec := &recs[i]
		i++
		if j < len(predefined) && predefined[j] == rec.name {
			j++ // the managed key exists: list its real alias
		}
		out.Aliases = append(out.Aliases, kmsapi.AliasListEntry{
			AliasName:       strs.ptr(rec.name),
			TargetKeyId:     strs.ptr(rec.target),
			CreationDate:    times.ptr(rec.created),
			LastUpdatedDate: times.ptr(rec.updated),
		})
	}
	names := make([]string, len(out.Aliases))
	for i := range out.Aliases {
		names[i] = *out.Aliases[i].AliasName
	}
	for i, arn := range prefixed(aliasARN(scope, ""), names) {
		out.Aliases[i].AliasArn = strs.ptr(arn)
	}
	return out, nil
}

// predefinedAliases are the alias names of the AWS managed keys Keyfort
// knows (alias/aws/<service>), sorted.
var predefinedAliases = func() []string {
	names := make([]string, 0, len(managedServices))
	for svc := range managedServices {
		names = append(names, awsAliasPrefix+svc)
	}
	slices.Sort(names)
	return names
}()

// predefinedAliasesAfter returns the predefined alias names after a marker.
func predefinedAliasesAfter(after string) []string {
	i, _ := slices.BinarySearch(predefinedAliases, after)
	if i < len(predefinedAliases) && predefinedAliases[i] == after {
		i++
	}
	return predefinedAliases[i:]
}

// resolveOrManaged resolves a key reference that may be an alias; a
// predefined AWS alias (alias/aws/<service>) whose key does not exist yet
// gets its AWS managed key created, as DescribeKey does on AWS.
func (s *Service) resolveOrManaged(ctx context.Context, scope storage.Scope, ref string, a *access) (*key, error) {
	k, err := s.lookupKey(ctx, scope, ref, refAliasOK|refCrossAccount, a)
	if err == nil {
		return k, nil
	}
	name := ref
	if strings.HasPrefix(ref, "arn:") {
		if i := strings.Index(ref, ":alias/"); i >= 0 {
			name = ref[i+1:]
		}
	}
	svc, ok := strings.CutPrefix(name, awsAliasPrefix)
	if !ok || !managedServices[svc] {
		return nil, err
	}
	if e, isAWS := awserr.As(err); !isAWS || e.Code != codeNotFound {
		return nil, err
	}
	// A caller the managed key's policy would refuse does not get it
	// created: decide on a draft with that policy first.
	a.requestAlias = name
	draft := &key{rec: &storage.Record{Kind: kindKey, Scope: scope}, arn: aliasARN(scope, name),
		meta: keyMeta{Policy: managedKeyPolicy(scope.Account, scope.Region, svc), Spec: specSymmetric, Usage: usageEncrypt, Origin: originAWSKMS}}
	if err := s.authorize(ctx, nil, draft, a); err != nil {
		return nil, err
	}
	k, err = s.ensureManagedKey(ctx, scope, svc)
	if err != nil {
		return nil, err
	}
	a.requestAlias = name
	if err := s.authorize(ctx, nil, k, a); err != nil {
		return nil, err
	}
	return k, nil
}

// ManagedKeyARN returns the ARN of the AWS managed key of service (alias
// alias/aws/<service>) in the caller's account and region, creating the key
// on first use. Secrets Manager calls it for its default key.
func (s *Service) ManagedKeyARN(ctx context.Context, service string) (string, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return "", err
	}
	k, err := s.ensureManagedKey(ctx, scope, service)
	if err != nil {
		return "", err
	}
	return k.arn, nil
}

// ensureManagedKey returns the AWS managed key of service in scope,
// creating it and its alias on first use.
func (s *Service) ensureManagedKey(ctx context.Context, scope storage.Scope, service string) (*key, error) {
	name := awsAliasPrefix + service
	var out *key
	err := s.store.Update(ctx, func(tx storage.Tx) error {
		rec, err := tx.Get(ctx, kindAlias, scope, name)
		if err == nil {
			krec, err := tx.Get(ctx, kindKey, scope, rec.Parent)
			if err != nil {
				return wrap("get managed key", err)
			}
			out, err = decodeKey(krec)
			return err
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		now := s.now().UTC()
		next := now.AddDate(0, 0, defaultRotation)
		k, err := s.createKey(ctx, tx, scope, keyMeta{
			Created:         now,
			Description:     "Default key that protects my " + service + " data when no other key is defined",
			State:           stateEnabled,
			Usage:           usageEncrypt,
			Spec:            specSymmetric,
			Origin:          originAWSKMS,
			Manager:         managerAWS,
			Policy:          managedKeyPolicy(scope.Account, scope.Region, service),
			RotationEnabled: true,
			RotationPeriod:  defaultRotation,
			NextRotation:    &next,
		})
		if err != nil {
			return err
		}
		if err := insertAlias(ctx, tx, scope, name, k.rec.ID, now); err != nil {
			if e, ok := awserr.As(err); ok && e.Code == codeAlreadyExists {
				// Another node or request created the managed key first:
				// retry, which finds it.
				return storage.ErrConflict
			}
			return err
		}
		out = k
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
