package kms

import (
	"context"
	"errors"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/recordcache"
	"github.com/keyfort/keyfort/internal/storage"
)

// cachedKey returns the key with id in scope, from the cache when possible,
// and names it as a resource of the request's audit event.
// The returned key must not be modified.
func (s *Service) cachedKey(ctx context.Context, scope storage.Scope, id string) (*key, error) {
	k, err := s.readKey(ctx, scope, id)
	if err != nil {
		return nil, err
	}
	k.audit(ctx)
	return k, nil
}

// readKey is cachedKey without the audit.
func (s *Service) readKey(ctx context.Context, scope storage.Scope, id string) (*key, error) {
	return getKey(ctx, s.reads, scope, id)
}

// cachedAlias returns the key id an alias points at.
func (s *Service) cachedAlias(ctx context.Context, scope storage.Scope, name string) (string, error) {
	rec, err := s.reads.Get(ctx, kindAlias, scope, name)
	if errors.Is(err, storage.ErrNotFound) {
		return "", errAliasNotFound(aliasARN(scope, name))
	}
	if err != nil {
		return "", wrap("get alias", err)
	}
	return rec.Parent, nil
}

// getKey reads and decodes one key record through g: a transaction or the
// store (a key of its own, to modify), or the read cache (a key shared with
// other readers: it must not be modified).
func getKey(ctx context.Context, g getter, scope storage.Scope, id string) (*key, error) {
	k, err := recordcache.Decode(ctx, g, kindKey, scope, id, decodeKey)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errKeyNotFound(keyARN(scope, id))
	}
	if err != nil {
		return nil, wrap("get key", err)
	}
	return k, nil
}

// lookupKey resolves a KeyId parameter outside a transaction, through the
// read cache, and authorizes a on the key (a nil a authorizes nothing: the
// operation was authorized otherwise). The returned key must not be
// modified.
func (s *Service) lookupKey(ctx context.Context, scope storage.Scope, v string, kind keyRefKind, a *access) (*key, error) {
	k, _, err := s.lookupKeyAlias(ctx, scope, v, kind, a)
	return k, err
}

// lookupKeyAlias is lookupKey that also returns the alias v named ("" for
// a key id or ARN).
func (s *Service) lookupKeyAlias(ctx context.Context, scope storage.Scope, v string, kind keyRefKind, a *access) (*key, string, error) {
	ref, err := parseRef(scope, v, kind)
	if err != nil {
		return nil, "", err
	}
	id := ref.keyID
	if ref.alias != "" {
		if id, err = s.cachedAlias(ctx, ref.scope, ref.alias); err != nil {
			return nil, "", hideOther(ctx, &ref, scope, a, err)
		}
	}
	k, err := s.cachedKey(ctx, ref.scope, id)
	if err != nil {
		return nil, "", hideOther(ctx, &ref, scope, a, err)
	}
	if a != nil {
		a.requestAlias = ref.alias
		if err := s.authorize(ctx, nil, k, a); err != nil {
			return nil, "", err
		}
	}
	return k, ref.alias, nil
}

// hideOther turns "not found" for a key of another account into the
// AccessDeniedException AWS answers there, which does not tell whether the
// key exists.
func hideOther(ctx context.Context, ref *parsedRef, caller storage.Scope, a *access, err error) error {
	if a == nil || !ref.other(caller) {
		return err
	}
	if e, ok := awserr.As(err); !ok || e.Code != codeNotFound {
		return err
	}
	c, _, cerr := callerOf(ctx)
	if cerr != nil {
		return cerr
	}
	return errCrossAccountDenied(c.ARN, a.action)
}
