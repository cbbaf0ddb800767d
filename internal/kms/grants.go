package kms

// Grants: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant and
// RevokeGrant, and the part grants play in authorization. A grant is a
// kms.grant record in its key's account and region (ID "<key id>/<grant
// id>", Parent the key id), written before CreateGrant answers, so a grant
// works at once: grant tokens are checked (a token is valid only if Keyfort
// made it) but never needed.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/iam"
	"github.com/keyfort/keyfort/internal/identity"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/partition"
	"github.com/keyfort/keyfort/internal/storage"
)

const (
	kindGrant storage.Kind = "kms.grant"

	// maxGrantsPerKey is AWS's quota of grants on one KMS key.
	maxGrantsPerKey = 50000
	// maxConstraintPairs and maxConstraintValue bound a grant constraint.
	maxConstraintPairs = 8
	maxConstraintValue = 384

	codeInvalidGrantID = "InvalidGrantIdException"
)

// grantMeta is a stored grant (record Data).
type grantMeta struct {
	ID         string            `json:"id"`
	KeyID      string            `json:"key"`
	Name       string            `json:"name,omitempty"`
	Created    time.Time         `json:"created"`
	Grantee    string            `json:"grantee"`
	Retiring   string            `json:"retiring,omitempty"`
	Operations []string          `json:"ops"`
	Equals     map[string]string `json:"equals,omitempty"`
	Subset     map[string]string `json:"subset,omitempty"`
	HasEquals  bool              `json:"hasEquals,omitempty"`
	HasSubset  bool              `json:"hasSubset,omitempty"`
}

func grantRecordID(keyID, grantID string) string { return keyID + "/" + grantID }

// grantOperationsFor are the operations a grant on a key may allow, by the
// key's usage (the key types Keyfort makes so far).
var grantOperationsFor = map[string][]string{
	usageEncrypt: {"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
		"ReEncryptFrom", "ReEncryptTo", "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext",
		"DescribeKey", "CreateGrant", "RetireGrant"},
	usageMAC:          {"GenerateMac", "VerifyMac", "DescribeKey", "CreateGrant", "RetireGrant"},
	usageSignVerify:   {"Sign", "Verify", "GetPublicKey", "DescribeKey", "CreateGrant", "RetireGrant"},
	usageKeyAgreement: {"DeriveSharedSecret", "GetPublicKey", "DescribeKey", "CreateGrant", "RetireGrant"},
}

// asymmetricEncryptGrantOperations are those of an asymmetric
// ENCRYPT_DECRYPT key: no data keys (they need a symmetric key), and its
// public key.
var asymmetricEncryptGrantOperations = []string{"Decrypt", "Encrypt", "ReEncryptFrom", "ReEncryptTo",
	"GetPublicKey", "DescribeKey", "CreateGrant", "RetireGrant"}

// grantOperationsOf returns the operations a grant on k may allow.
func grantOperationsOf(k *key) []string {
	if k.meta.Usage == usageEncrypt && k.meta.Spec != specSymmetric {
		return asymmetricEncryptGrantOperations
	}
	return grantOperationsFor[k.meta.Usage]
}

// ecOperations are the grant operations that take an encryption context,
// to which grant constraints apply.
var ecOperations = map[string]bool{
	"Decrypt": true, "Encrypt": true, "GenerateDataKey": true, "GenerateDataKeyWithoutPlaintext": true,
	"ReEncryptFrom": true, "ReEncryptTo": true, "GenerateDataKeyPair": true, "GenerateDataKeyPairWithoutPlaintext": true,
}

var (
	grantIDRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
	// granteeRE accepts the principals a grant may name: an account root,
	// user, role, assumed-role session or federated user ARN, or an AWS
	// service principal.
	granteeRE = regexp.MustCompile(`^(arn:aws[a-z-]*:(iam::[0-9]{12}:(root|user/\S+|role/\S+)|sts::[0-9]{12}:(assumed-role/\S+/\S+|federated-user/\S+))|[a-z0-9][a-z0-9.-]*\.amazonaws\.com)$`)
)

func errInvalidGrantID() error {
	return awserr.New(codeInvalidGrantID, "The request was rejected because the specified GrantId is not valid.")
}

func errInvalidGrantToken() error {
	return awserr.New(codeInvalidGrantToken, "The request was rejected because the specified grant token is not valid.")
}

func errGrantNotFound(grantID string) error {
	return awserr.Newf(codeNotFound, "Grant ID %s not found", grantID)
}

// ---- grant tokens ----

// A grant token is base64url (no padding) of:
//
//	0x01 0x0a 0x40 | len(account) | account | len(region) | region |
//	len(key id) | key id | grant id (32) | nonce (16) | MAC (32)
//
// where the MAC is HMAC-SHA256 of everything before it under a key derived
// from the root key. Every CreateGrant returns a new token (the nonce);
// all tokens of a grant work alike.
var tokenMagic = []byte{0x01, 0x0a, 0x40}

type grantRef struct {
	scope   storage.Scope
	keyID   string
	grantID string
}

func (s *Service) grantToken(ref grantRef) (string, error) {
	gid, err := hex.DecodeString(ref.grantID)
	if err != nil || len(gid) != 32 {
		return "", wrap("grant token", errors.New("malformed grant id"))
	}
	var nonce [16]byte
	if _, err := io.ReadFull(s.rand, nonce[:]); err != nil {
		return "", wrap("grant token", err)
	}
	b := append([]byte(nil), tokenMagic...)
	for _, f := range []string{ref.scope.Account, ref.scope.Region, ref.keyID} {
		b = append(b, byte(len(f)))
		b = append(b, f...)
	}
	b = append(b, gid...)
	b = append(b, nonce[:]...)
	m := hmac.New(sha256.New, s.tokenKey)
	m.Write(b)
	b = m.Sum(b)
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// parseGrantToken returns the grant a token names, or
// InvalidGrantTokenException.
func (s *Service) parseGrantToken(tok string) (grantRef, error) {
	var ref grantRef
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) < len(tokenMagic)+3+32+16+32 || !bytes.Equal(b[:len(tokenMagic)], tokenMagic) {
		return ref, errInvalidGrantToken()
	}
	body, mac := b[:len(b)-32], b[len(b)-32:]
	m := hmac.New(sha256.New, s.tokenKey)
	m.Write(body)
	if !hmac.Equal(mac, m.Sum(nil)) {
		return ref, errInvalidGrantToken()
	}
	rest := body[len(tokenMagic):]
	var fields [3]string
	for i := range fields {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return ref, errInvalidGrantToken()
		}
		n := int(rest[0])
		fields[i] = string(rest[1 : 1+n])
		rest = rest[1+n:]
	}
	if len(rest) != 32+16 {
		return ref, errInvalidGrantToken()
	}
	ref.scope = storage.Scope{Account: fields[0], Region: fields[1]}
	ref.keyID = fields[2]
	ref.grantID = hex.EncodeToString(rest[:32])
	return ref, nil
}

// checkGrantTokens refuses a request whose GrantTokens are not tokens
// Keyfort made. Valid tokens add nothing: grants are in force once
// CreateGrant answers.
func (s *Service) checkGrantTokens(tokens []string) error {
	for _, t := range tokens {
		if _, err := s.parseGrantToken(t); err != nil {
			return err
		}
	}
	return nil
}

// ---- grants in authorization ----

// loadGrants reads the grants of a key.
func (s *Service) loadGrants(ctx context.Context, r storage.Reader, k *key) ([]*grantMeta, error) {
	recs, err := s.list(ctx, r, kindGrant, k.rec.Scope, storage.ListOptions{Parent: k.rec.ID})
	if err != nil {
		return nil, wrap("list grants", err)
	}
	out := make([]*grantMeta, 0, len(recs))
	for _, rec := range recs {
		var g grantMeta
		if err := json.Unmarshal(rec.Data, &g); err != nil {
			return nil, wrap("decode grant "+rec.ID, err)
		}
		out = append(out, &g)
	}
	return out, nil
}

// granteeMatches reports whether a grant's grantee principal is the
// caller: its ARN, the role of its session, or its account's root when the
// caller is that root or its identity policies allow the action.
func granteeMatches(g *grantMeta, c *identity.Caller, action string) bool {
	switch g.Grantee {
	case c.ARN, c.Principal.PrincipalARN:
		return true
	}
	if acct, ok := iam.RootAccount(g.Grantee); ok && acct == c.Account {
		if c.Principal.Root {
			return true
		}
		res := iam.Authorize(iam.Authorization{
			Request:  &iam.Request{Action: action, Resource: "*", Principal: &c.Principal},
			Identity: c.Policies,
		})
		return res.Allowed()
	}
	return false
}

// constraintsAllow reports whether the request's encryption context meets
// the grant's constraint, for operations that take one (keys compared
// case-insensitively, values exactly).
func constraintsAllow(g *grantMeta, op string, ec map[string]string) bool {
	if !ecOperations[op] {
		return true
	}
	if g.HasEquals {
		return len(ec) == len(g.Equals) && ecContains(ec, g.Equals)
	}
	if g.HasSubset {
		return ecContains(ec, g.Subset)
	}
	return true
}

// ecContains reports whether every pair of want is in have.
func ecContains(have, want map[string]string) bool {
	for wk, wv := range want {
		found := false
		for hk, hv := range have {
			if strings.EqualFold(hk, wk) && hv == wv {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// grantAllows reports whether a grant of k lets the caller do a.action.
func (s *Service) grantAllows(ctx context.Context, r storage.Reader, k *key, c *identity.Caller, a *access) (bool, error) {
	op, ok := strings.CutPrefix(a.action, "kms:")
	if !ok || (a.grant != nil && op == "CreateGrant") {
		// CreateGrant through a grant is decided by createGrantByGrant.
		return false, nil
	}
	grants, err := s.loadGrants(ctx, r, k)
	if err != nil {
		return false, err
	}
	for _, g := range grants {
		if slices.Contains(g.Operations, op) && granteeMatches(g, c, a.action) && constraintsAllow(g, op, a.ec) {
			return true, nil
		}
	}
	return false, nil
}

// ---- CreateGrant ----

// CreateGrant gives a principal permission to use a key in the listed
// operations, optionally under an encryption-context constraint.
func (s *Service) CreateGrant(ctx context.Context, in *kmsapi.CreateGrantInput) (*kmsapi.CreateGrantOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	ops := make([]string, len(in.Operations))
	for i, o := range in.Operations {
		ops[i] = string(o)
	}
	grantee := deref(in.GranteePrincipal)
	retiring := deref(in.RetiringPrincipal)
	if !granteeRE.MatchString(grantee) {
		return nil, awserr.Newf(codeInvalidArn, "The GranteePrincipal %s is not a valid principal.", clip(grantee))
	}
	if in.RetiringPrincipal != nil && !granteeRE.MatchString(retiring) {
		return nil, awserr.Newf(codeInvalidArn, "The RetiringPrincipal %s is not a valid principal.", clip(retiring))
	}
	facts := &grantFacts{operations: ops, grantee: grantee, retiring: retiring}
	g := &grantMeta{Name: deref(in.Name), Grantee: grantee, Retiring: retiring, Operations: ops}
	var ec map[string]string
	if c := in.Constraints; c != nil {
		if c.EncryptionContextEquals != nil && c.EncryptionContextSubset != nil {
			return nil, errValidation("More than one constraint supplied")
		}
		switch {
		case c.EncryptionContextEquals != nil:
			g.Equals, g.HasEquals, facts.constraint = c.EncryptionContextEquals, true, "EncryptionContextEquals"
			ec = c.EncryptionContextEquals
		case c.EncryptionContextSubset != nil:
			g.Subset, g.HasSubset, facts.constraint = c.EncryptionContextSubset, true, "EncryptionContextSubset"
			ec = c.EncryptionContextSubset
		}
		if len(ec) > maxConstraintPairs {
			return nil, errValidation("A grant constraint can have at most %d encryption context pairs.", maxConstraintPairs)
		}
		for _, v := range ec {
			if len(v) > maxConstraintValue {
				return nil, errValidation("An encryption context value in a grant constraint can have at most %d characters.", maxConstraintValue)
			}
		}
	}
	if len(ops) == 1 && ops[0] == "CreateGrant" {
		return nil, errValidation("Grants must not contain only the CreateGrant operation.")
	}
	a := &access{action: in.IAMAction(), grant: facts, ec: ec, hasEC: in.Constraints != nil, tokens: in.GrantTokens}
	var out *kmsapi.CreateGrantOutput
	var ref grantRef
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		k, err := resolveKey(ctx, tx, scope, deref(in.KeyId), refCrossAccount)
		if err != nil {
			return hideOtherTx(ctx, scope, deref(in.KeyId), a, err)
		}
		if err := s.authorizeCreateGrant(ctx, tx, k, a); err != nil {
			return err
		}
		if err := checkEnabled(k); err != nil {
			return err
		}
		allowed := grantOperationsOf(k)
		for _, o := range ops {
			if !slices.Contains(allowed, o) {
				return errValidation("Grants for a KMS key with KeySpec %s and KeyUsage %s cannot allow the %s operation.", k.meta.Spec, k.meta.Usage, o)
			}
		}
		if deref(in.DryRun) {
			return errDryRun()
		}
		if g.Name != "" {
			existing, err := s.loadGrants(ctx, tx, k)
			if err != nil {
				return err
			}
			for _, e := range existing {
				if e.sameAs(g) {
					ref = grantRef{scope: k.rec.Scope, keyID: k.rec.ID, grantID: e.ID}
					return nil // a retry: the grant exists
				}
			}
		}
		n, err := tx.Count(ctx, kindGrant, k.rec.Scope, k.rec.ID)
		if err != nil {
			return wrap("count grants", err)
		}
		if n >= s.maxGrants {
			return awserr.Newf(codeLimitExceeded, "The request was rejected because %s already has %d grants, the most a KMS key can have.", k.arn, s.maxGrants)
		}
		var id [32]byte
		if _, err := io.ReadFull(s.rand, id[:]); err != nil {
			return wrap("grant id", err)
		}
		rec := *g
		rec.ID = hex.EncodeToString(id[:])
		rec.KeyID = k.rec.ID
		rec.Created = s.now().UTC()
		data, err := json.Marshal(&rec)
		if err != nil {
			return wrap("encode grant", err)
		}
		err = tx.Insert(ctx, &storage.Record{
			Kind: kindGrant, Scope: k.rec.Scope, ID: grantRecordID(k.rec.ID, rec.ID), Parent: k.rec.ID,
			Created: rec.Created.UnixNano(), Data: data,
		})
		if err != nil {
			return wrap("insert grant", err)
		}
		ref = grantRef{scope: k.rec.Scope, keyID: k.rec.ID, grantID: rec.ID}
		return nil
	})
	if err != nil {
		return nil, err
	}
	tok, err := s.grantToken(ref)
	if err != nil {
		return nil, err
	}
	out = &kmsapi.CreateGrantOutput{GrantId: ptr(ref.grantID), GrantToken: ptr(tok)}
	return out, nil
}

// sameAs reports whether two grants have the same properties (CreateGrant
// retries with a Name).
func (g *grantMeta) sameAs(o *grantMeta) bool {
	return g.Name == o.Name && g.Grantee == o.Grantee && g.Retiring == o.Retiring &&
		slices.Equal(sortedCopy(g.Operations), sortedCopy(o.Operations)) &&
		g.HasEquals == o.HasEquals && g.HasSubset == o.HasSubset &&
		maps.Equal(g.Equals, o.Equals) && maps.Equal(g.Subset, o.Subset)
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return slices.Compact(c)
}

// authorizeCreateGrant authorizes CreateGrant: by the policies, or by a
// grant that allows CreateGrant, whose grantee may then grant only
// operations of that grant under a constraint at least as strict.
func (s *Service) authorizeCreateGrant(ctx context.Context, tx storage.Tx, k *key, a *access) error {
	err := s.authorize(ctx, tx, k, a)
	if err == nil {
		return nil
	}
	if e, ok := awserr.As(err); !ok || e.Code != awserr.CodeAccessDenied {
		return err
	}
	c, _, cerr := callerOf(ctx)
	if cerr != nil {
		return cerr
	}
	grants, lerr := s.loadGrants(ctx, tx, k)
	if lerr != nil {
		return lerr
	}
	for _, g := range grants {
		if !slices.Contains(g.Operations, "CreateGrant") || !granteeMatches(g, c, a.action) {
			continue
		}
		if !isSubset(a.grant.operations, g.Operations) {
			continue
		}
		if !stricter(a, g) {
			continue
		}
		// A policy's explicit deny still wins over the grant.
		if denyErr := s.explicitDeny(ctx, tx, k, a); denyErr != nil {
			return denyErr
		}
		return nil
	}
	return err
}

// explicitDeny returns the AccessDeniedException of a policy that
// explicitly denies a, or nil.
func (s *Service) explicitDeny(ctx context.Context, tx storage.Reader, k *key, a *access) error {
	c, via, err := callerOf(ctx)
	if err != nil {
		return err
	}
	pol, err := s.keyPolicy(k)
	if err != nil {
		return err
	}
	cond := &kmsContext{ctx: ctx, s: s, g: tx, caller: c, via: via, now: s.now(), k: k, a: *a}
	res := iam.Authorize(iam.Authorization{
		Request:          &iam.Request{Action: a.action, Resource: k.arn, Principal: &c.Principal, Context: cond},
		Identity:         c.Policies,
		Resource:         pol,
		ResourceAccount:  k.rec.Scope.Account,
		ResourceRequired: true,
		Granted:          true,
	})
	if res.Decision == iam.ExplicitDeny {
		return s.denied(c, k, a, res)
	}
	return nil
}

func isSubset(sub, of []string) bool {
	for _, x := range sub {
		if !slices.Contains(of, x) {
			return false
		}
	}
	return true
}

// stricter reports whether the new grant's constraint is at least as
// strict as the parent grant's: a parent Subset may become a larger Subset
// or an Equals containing it; a parent Equals only the same Equals.
func stricter(a *access, parent *grantMeta) bool {
	child := a.grant
	switch {
	case parent.HasEquals:
		return child.constraint == "EncryptionContextEquals" && mapsEqualFold(a.ec, parent.Equals)
	case parent.HasSubset:
		return child.constraint != "" && ecContains(a.ec, parent.Subset)
	}
	return true
}

func mapsEqualFold(a, b map[string]string) bool {
	return len(a) == len(b) && ecContains(a, b)
}

// hideOtherTx is hideOther for a reference resolved inside a transaction.
func hideOtherTx(ctx context.Context, caller storage.Scope, v string, a *access, err error) error {
	ref, perr := parseRef(caller, v, refCrossAccount|refAliasOK)
	if perr != nil {
		return err
	}
	return hideOther(ctx, &ref, caller, a, err)
}

// ---- ListGrants, ListRetirableGrants ----

func (g *grantMeta) entry(scope storage.Scope) kmsapi.GrantListEntry {
	e := kmsapi.GrantListEntry{
		KeyId:            ptr(keyARN(scope, g.KeyID)),
		GrantId:          ptr(g.ID),
		CreationDate:     ptr(g.Created),
		GranteePrincipal: ptr(g.Grantee),
		IssuingAccount:   ptr(partition.ARN(scope.Region, "iam::"+scope.Account+":root")),
		Operations:       make([]kmsapi.GrantOperation, len(g.Operations)),
	}
	if g.Name != "" {
		e.Name = ptr(g.Name)
	}
	if g.Retiring != "" {
		e.RetiringPrincipal = ptr(g.Retiring)
	}
	for i, o := range g.Operations {
		e.Operations[i] = kmsapi.GrantOperation(o)
	}
	switch {
	case g.HasEquals:
		e.Constraints = &kmsapi.GrantConstraints{EncryptionContextEquals: nonNil(g.Equals)}
	case g.HasSubset:
		e.Constraints = &kmsapi.GrantConstraints{EncryptionContextSubset: nonNil(g.Subset)}
	}
	return e
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// ListGrants pages through the grants of a key, by grant id, optionally
// only one grant or one grantee's.
func (s *Service) ListGrants(ctx context.Context, in *kmsapi.ListGrantsInput) (*kmsapi.ListGrantsOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	if in.GrantId != nil && !grantIDRE.MatchString(*in.GrantId) {
		return nil, errInvalidGrantID()
	}
	k, err := s.lookupKey(ctx, scope, deref(in.KeyId), refCrossAccount, act(in.IAMAction()))
	if err != nil {
		return nil, err
	}
	list := "grants/" + k.rec.ID
	after := ""
	if in.Marker != nil {
		if after, err = s.marker.decode(list, *in.Marker); err != nil {
			return nil, err
		}
	}
	limit := pageLimit(in.Limit, 50)
	grants, err := s.loadGrants(ctx, nil, k)
	if err != nil {
		return nil, err
	}
	out := &kmsapi.ListGrantsOutput{Grants: []kmsapi.GrantListEntry{}, Truncated: ptr(false)}
	for _, g := range grants { // in grant id order (record id order)
		if (in.Marker != nil && g.ID <= after) ||
			(in.GrantId != nil && g.ID != *in.GrantId) ||
			(in.GranteePrincipal != nil && g.Grantee != *in.GranteePrincipal) {
			continue
		}
		if len(out.Grants) == limit {
			out.Truncated = ptr(true)
			out.NextMarker = ptr(s.marker.encode(list, deref(out.Grants[limit-1].GrantId)))
			break
		}
		out.Grants = append(out.Grants, g.entry(k.rec.Scope))
	}
	return out, nil
}

// ListRetirableGrants pages through the grants, in the caller's region,
// whose retiring principal is the one named (a principal of the caller's
// account), on keys of any account.
func (s *Service) ListRetirableGrants(ctx context.Context, in *kmsapi.ListRetirableGrantsInput) (*kmsapi.ListRetirableGrantsOutput, error) {
	scope, c, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	principal := deref(in.RetiringPrincipal)
	if !granteeRE.MatchString(principal) {
		return nil, awserr.Newf(codeInvalidArn, "The RetiringPrincipal %s is not a valid principal.", clip(principal))
	}
	// The authorized resource is the retiring principal: only identity
	// policies decide, and only for a principal of the caller's account.
	a := act(in.IAMAction())
	res := iam.Authorize(iam.Authorization{
		Request:         &iam.Request{Action: a.action, Resource: principal, Principal: &c.Principal, Context: &kmsContext{ctx: ctx, s: s, caller: c, via: identity.ViaFrom(ctx), now: s.now(), a: *a}},
		Identity:        c.Policies,
		ResourceAccount: principalAccount(principal),
	})
	if !res.Allowed() {
		return nil, awserr.New(awserr.CodeAccessDenied, res.DeniedMessage(c.ARN, a.action, principal))
	}
	const list = "retirable"
	var after storage.Position
	if in.Marker != nil {
		last, err := s.marker.decode(list+"/"+principal, *in.Marker)
		if err != nil {
			return nil, err
		}
		acct, id, _ := strings.Cut(last, "/")
		after = storage.Position{Scope: storage.Scope{Account: acct, Region: scope.Region}, ID: id}
	}
	limit := pageLimit(in.Limit, 50)
	out := &kmsapi.ListRetirableGrantsOutput{Grants: []kmsapi.GrantListEntry{}, Truncated: ptr(false)}
	var lastPos storage.Position
	err = s.store.View(ctx, func(r storage.Reader) error {
		pos := after
		for {
			page, err := r.Scan(ctx, kindGrant, pos, 1000)
			if err != nil {
				return wrap("scan grants", err)
			}
			for _, rec := range page {
				pos = storage.PositionOf(rec)
				if rec.Scope.Region != scope.Region {
					continue
				}
				var g grantMeta
				if err := json.Unmarshal(rec.Data, &g); err != nil {
					return wrap("decode grant "+rec.ID, err)
				}
				if g.Retiring != principal {
					continue
				}
				if len(out.Grants) == limit {
					out.Truncated = ptr(true)
					return nil
				}
				out.Grants = append(out.Grants, g.entry(rec.Scope))
				lastPos = pos
			}
			if len(page) < 1000 {
				return nil
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if *out.Truncated {
		out.NextMarker = ptr(s.marker.encode(list+"/"+principal, lastPos.Scope.Account+"/"+lastPos.ID))
	}
	return out, nil
}

// principalAccount returns the account of a principal ARN, or "".
func principalAccount(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) == 6 && iam.IsAccountID(parts[4]) {
		return parts[4]
	}
	return ""
}

// ---- RetireGrant, RevokeGrant ----

// RetireGrant deletes a grant named by its token, or by key and grant id.
// The grant's retiring principal may retire it, its grantee when it allows
// RetireGrant, and the key's account (its root, and principals its IAM
// policies allow kms:RetireGrant).
func (s *Service) RetireGrant(ctx context.Context, in *kmsapi.RetireGrantInput) (*kmsapi.RetireGrantOutput, error) {
	scope, c, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	a := act(in.IAMAction())
	var ref grantRef
	switch {
	case in.GrantToken != nil:
		if ref, err = s.parseGrantToken(*in.GrantToken); err != nil {
			return nil, err
		}
		if in.GrantId != nil && *in.GrantId != ref.grantID {
			return nil, errInvalidGrantID()
		}
	case in.KeyId != nil && in.GrantId != nil:
		if !grantIDRE.MatchString(*in.GrantId) {
			return nil, errInvalidGrantID()
		}
		r, err := parseRef(scope, *in.KeyId, refCrossAccount)
		if err != nil {
			return nil, err
		}
		ref = grantRef{scope: r.scope, keyID: r.keyID, grantID: *in.GrantId}
	default:
		return nil, errValidation("Specify a grant token, or a key and a grant id.")
	}
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		k, err := getKey(ctx, tx, ref.scope, ref.keyID)
		if err != nil {
			if ref.scope.Account != scope.Account {
				return errCrossAccountDenied(c.ARN, a.action)
			}
			return err
		}
		k.audit(ctx)
		rec, err := tx.Get(ctx, kindGrant, k.rec.Scope, grantRecordID(k.rec.ID, ref.grantID))
		if errors.Is(err, storage.ErrNotFound) {
			return errGrantNotFound(ref.grantID)
		}
		if err != nil {
			return wrap("get grant", err)
		}
		var g grantMeta
		if err := json.Unmarshal(rec.Data, &g); err != nil {
			return wrap("decode grant", err)
		}
		if err := s.authorizeRetire(ctx, tx, k, &g, c, a); err != nil {
			return err
		}
		if deref(in.DryRun) {
			return errDryRun()
		}
		return tx.Delete(ctx, kindGrant, k.rec.Scope, rec.ID)
	})
	if err != nil {
		return nil, err
	}
	return &kmsapi.RetireGrantOutput{}, nil
}

// authorizeRetire applies RetireGrant's rules; an explicit deny of
// kms:RetireGrant in an identity or key policy still wins.
func (s *Service) authorizeRetire(ctx context.Context, tx storage.Reader, k *key, g *grantMeta, c *identity.Caller, a *access) error {
	if err := s.explicitDeny(ctx, tx, k, a); err != nil {
		return err
	}
	if g.Retiring == c.ARN || g.Retiring == c.Principal.PrincipalARN {
		return nil
	}
	if slices.Contains(g.Operations, "RetireGrant") && (g.Grantee == c.ARN || g.Grantee == c.Principal.PrincipalARN) {
		return nil
	}
	// The key's account, or the retiring principal's account when that is
	// an account root: its root, or a principal its IAM policies allow.
	for _, acct := range []string{k.rec.Scope.Account, accountRoot(g.Retiring)} {
		if acct == "" || acct != c.Account {
			continue
		}
		if c.Principal.Root {
			return nil
		}
		res := iam.Authorize(iam.Authorization{
			Request:  &iam.Request{Action: a.action, Resource: k.arn, Principal: &c.Principal, Context: &kmsContext{ctx: ctx, s: s, g: tx, caller: c, now: s.now(), k: k, a: *a}},
			Identity: c.Policies,
		})
		if res.Allowed() {
			return nil
		}
	}
	if c.Account != k.rec.Scope.Account {
		return errCrossAccountDenied(c.ARN, a.action)
	}
	return awserr.New(awserr.CodeAccessDenied, "User: "+c.ARN+" is not authorized to perform: "+a.action+
		" on resource: "+k.arn+" because no identity-based policy allows the "+a.action+" action")
}

// accountRoot returns the account of an account root ARN, or "".
func accountRoot(arn string) string {
	acct, _ := iam.RootAccount(arn)
	return acct
}

// RevokeGrant deletes a grant of a key; kms:RevokeGrant decides.
func (s *Service) RevokeGrant(ctx context.Context, in *kmsapi.RevokeGrantInput) (*kmsapi.RevokeGrantOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	grantID := deref(in.GrantId)
	if !grantIDRE.MatchString(grantID) {
		return nil, errInvalidGrantID()
	}
	a := act(in.IAMAction())
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		k, err := resolveKey(ctx, tx, scope, deref(in.KeyId), refCrossAccount)
		if err != nil {
			return hideOtherTx(ctx, scope, deref(in.KeyId), a, err)
		}
		if err := s.authorize(ctx, tx, k, a); err != nil {
			return err
		}
		id := grantRecordID(k.rec.ID, grantID)
		if _, err := tx.Get(ctx, kindGrant, k.rec.Scope, id); errors.Is(err, storage.ErrNotFound) {
			return errGrantNotFound(grantID)
		} else if err != nil {
			return wrap("get grant", err)
		}
		if deref(in.DryRun) {
			return errDryRun()
		}
		return tx.Delete(ctx, kindGrant, k.rec.Scope, id)
	})
	if err != nil {
		return nil, err
	}
	return &kmsapi.RevokeGrantOutput{}, nil
}

// clip bounds a request value quoted in an error message.
func clip(s string) string {
	const max = 256
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
