package kms

import (
	"context"
	"sort"
	"strings"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/iam"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/storage"
)

// maxTagsPerKey is AWS's limit of tags on one KMS key.
const maxTagsPerKey = 50

// checkNewTags applies the rules AWS documents for tags given to TagResource
// and CreateKey beyond the model's length bounds: no reserved "aws:" prefix
// (any case) and no key twice in one request. The caller checks the total.
func checkNewTags(tags []kmsapi.Tag) error {
	seen := make(map[string]struct{}, len(tags))
	for _, t := range tags {
		k := deref(t.TagKey)
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return errTagsReserved()
		}
		if _, dup := seen[k]; dup {
			return errDuplicateTags()
		}
		seen[k] = struct{}{}
	}
	return nil
}

// mergeTags adds or replaces tags and enforces the per-key limit.
func mergeTags(have []tag, add []kmsapi.Tag) ([]tag, error) {
	out := append([]tag(nil), have...)
	for _, t := range add {
		k, v := deref(t.TagKey), deref(t.TagValue)
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
	if len(out) > maxTagsPerKey {
		return nil, awserr.Newf(codeLimitExceeded, "The request was rejected because a key can have at most %d tags.", maxTagsPerKey)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// checkTaggable refuses keys that AWS does not let callers tag.
func checkTaggable(k *key) error {
	if k.meta.Manager == managerAWS {
		return awserr.Newf(awserr.CodeAccessDenied, "You cannot tag or untag an AWS managed key: %s", k.arn)
	}
	if pendingDeletion(k) {
		return errInvalidState(k.arn, k.meta.State)
	}
	return nil
}

// TagResource adds or replaces tags on a customer managed key.
func (s *Service) TagResource(ctx context.Context, in *kmsapi.TagResourceInput) (*kmsapi.TagResourceOutput, error) {
	if err := checkNewTags(in.Tags); err != nil {
		return nil, err
	}
	a := &access{action: in.IAMAction(), tags: requestTags(in.Tags)}
	_, err := s.updateKey(ctx, a, in.KeyId, func(_ storage.Tx, k *key) error {
		if err := checkTaggable(k); err != nil {
			return err
		}
		tags, err := mergeTags(k.meta.Tags, in.Tags)
		if err != nil {
			return err
		}
		k.meta.Tags = tags
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &kmsapi.TagResourceOutput{}, nil
}

// UntagResource removes tags by key; keys that are not present are ignored.
func (s *Service) UntagResource(ctx context.Context, in *kmsapi.UntagResourceInput) (*kmsapi.UntagResourceOutput, error) {
	for _, k := range in.TagKeys {
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return nil, errTagsReserved()
		}
	}
	a := &access{action: in.IAMAction(), tags: iam.RemoveTags(in.TagKeys)}
	_, err := s.updateKey(ctx, a, in.KeyId, func(_ storage.Tx, k *key) error {
		if err := checkTaggable(k); err != nil {
			return err
		}
		drop := make(map[string]struct{}, len(in.TagKeys))
		for _, t := range in.TagKeys {
			drop[t] = struct{}{}
		}
		kept := k.meta.Tags[:0:0]
		for _, t := range k.meta.Tags {
			if _, ok := drop[t.Key]; !ok {
				kept = append(kept, t)
			}
		}
		if len(kept) == len(k.meta.Tags) {
			return errNoChange
		}
		k.meta.Tags = kept
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &kmsapi.UntagResourceOutput{}, nil
}

// ListResourceTags pages through a key's tags, sorted by tag key.
func (s *Service) ListResourceTags(ctx context.Context, in *kmsapi.ListResourceTagsInput) (*kmsapi.ListResourceTagsOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	k, err := s.lookupKey(ctx, scope, deref(in.KeyId), refKeyOnly, act(in.IAMAction()))
	if err != nil {
		return nil, err
	}
	limit := pageLimit(in.Limit, 50)
	if limit > 50 {
		limit = 50
	}
	list := "tags/" + k.rec.ID
	after := ""
	if in.Marker != nil {
		if after, err = s.marker.decode(list, *in.Marker); err != nil {
			return nil, err
		}
	}
	out := &kmsapi.ListResourceTagsOutput{Tags: []kmsapi.Tag{}, Truncated: ptr(false)}
	for _, t := range k.meta.Tags {
		if in.Marker != nil && t.Key <= after {
			continue
		}
		if len(out.Tags) == limit {
			out.Truncated = ptr(true)
			out.NextMarker = ptr(s.marker.encode(list, deref(out.Tags[len(out.Tags)-1].TagKey)))
			break
		}
		out.Tags = append(out.Tags, kmsapi.Tag{TagKey: ptr(t.Key), TagValue: ptr(t.Value)})
	}
	return out, nil
}

func deref[T any](p *T) T {
	var z T
	if p == nil {
		return z
	}
	return *p
}

func ptr[T any](v T) *T { return &v }
