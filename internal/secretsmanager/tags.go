package secretsmanager

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/iam"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/storage"
)

func errTooManyTags() error {
	return awserr.Newf(codeLimitExceeded, "A secret can have at most %d tags.", maxTags)
}

// checkNewTags applies AWS's tag rules beyond the model's: key 1-127 and
// value 0-255 characters, no reserved "aws:" prefix, no key twice.
func checkNewTags(tags []smapi.Tag) error {
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		k, v := deref(t.Key), deref(t.Value)
		if n := utf8.RuneCountInString(k); n < 1 || n > maxTagKeyLen {
			return errInvalidParameter("A tag key must be 1 to 127 characters long.")
		}
		if utf8.RuneCountInString(v) > maxTagValueLen {
			return errInvalidParameter("A tag value must be at most 255 characters long.")
		}
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return errInvalidParameter("Tag keys beginning with aws: are reserved for AWS use.")
		}
		if seen[k] {
			return errInvalidParameter("The list of tags contains the key " + k + " more than once.")
		}
		seen[k] = true
	}
	return nil
}

// mergeTags adds or replaces tags and enforces the per-secret limit.
func mergeTags(have []tag, add []smapi.Tag) ([]tag, error) {
	out := append([]tag{}, have...)
	for _, t := range add {
		k, v := deref(t.Key), deref(t.Value)
		replaced := false
		for i := range out {
			if out[i].Key == k {
				out[i].Value = v
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, tag{Key: k, Value: v})
		}
	}
	if len(out) > maxTags {
		return nil, errTooManyTags()
	}
	return sortedTags(out), nil
}

// TagResource adds or replaces tags on a secret.
func (s *Service) TagResource(ctx context.Context, in *smapi.TagResourceInput) (*smapi.TagResourceOutput, error) {
	const op = "TagResource"
	scope, err := secretScope(ctx, in.SecretId)
	if err != nil {
		return nil, err
	}
	a := &access{action: in.IAMAction(), tags: requestTags(in.Tags)}
	if err := checkNewTags(in.Tags); err != nil {
		return nil, err
	}
	var after syncAfter
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		sec, err := s.secretFor(ctx, tx, scope, deref(in.SecretId), a)
		if err != nil {
			return err
		}
		if sec.deleted() {
			return errMarkedForDeletion()
		}
		tags, err := mergeTags(sec.meta.Tags, in.Tags)
		if err != nil {
			return err
		}
		if err := s.checkTagLockout(ctx, sec, deref(in.SecretId), tags, a); err != nil {
			return err
		}
		sec.meta.Tags = tags
		sec.meta.LastChanged = s.now().UTC()
		return s.saveChange(ctx, tx, sec, &after)
	})
	if err != nil {
		return nil, err
	}
	s.syncNow(ctx, after)
	return &smapi.TagResourceOutput{}, nil
}

// UntagResource removes tags by key; keys that are not present are ignored.
func (s *Service) UntagResource(ctx context.Context, in *smapi.UntagResourceInput) (*smapi.UntagResourceOutput, error) {
	const op = "UntagResource"
	scope, err := secretScope(ctx, in.SecretId)
	if err != nil {
		return nil, err
	}
	a := &access{action: in.IAMAction(), tags: iam.RemoveTags(in.TagKeys)}
	for _, k := range in.TagKeys {
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return nil, errInvalidParameter("Tag keys beginning with aws: are reserved for AWS use.")
		}
	}
	var after syncAfter
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		sec, err := s.secretFor(ctx, tx, scope, deref(in.SecretId), a)
		if err != nil {
			return err
		}
		if sec.deleted() {
			return errMarkedForDeletion()
		}
		drop := make(map[string]bool, len(in.TagKeys))
		for _, k := range in.TagKeys {
			drop[k] = true
		}
		kept := []tag{}
		for _, t := range sec.meta.Tags {
			if !drop[t.Key] {
				kept = append(kept, t)
			}
		}
		if sec.meta.Tags != nil && len(kept) == len(sec.meta.Tags) {
			return nil
		}
		if err := s.checkTagLockout(ctx, sec, deref(in.SecretId), kept, a); err != nil {
			return err
		}
		sec.meta.Tags = kept
		sec.meta.LastChanged = s.now().UTC()
		return s.saveChange(ctx, tx, sec, &after)
	})
	if err != nil {
		return nil, err
	}
	s.syncNow(ctx, after)
	return &smapi.UntagResourceOutput{}, nil
}
