package kms

// HMAC keys: GenerateMac and VerifyMac.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"hash"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/iam"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
)

const codeInvalidMac = "KMSInvalidMacException"

// macHash is the hash of each MAC algorithm.
var macHash = map[string]func() hash.Hash{
	"HMAC_SHA_224": sha256.New224,
	"HMAC_SHA_256": sha256.New,
	"HMAC_SHA_384": sha512.New384,
	"HMAC_SHA_512": sha512.New,
}

// macKey resolves an HMAC key for GenerateMac or VerifyMac, authorizes a
// on it and checks its state, usage and algorithm.
func (s *Service) macKey(ctx context.Context, ref string, alg kmsapi.MacAlgorithmSpec, a *access) (*key, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	k, err := s.lookupKey(ctx, scope, ref, refAliasOK|refCrossAccount, a)
	if err != nil {
		return nil, err
	}
	if err := checkEnabled(k); err != nil {
		return nil, err
	}
	if k.meta.Usage != usageMAC {
		return nil, errKeyUsage(k, a)
	}
	_, _, macs, _ := specOf(k).algorithms(k.meta.Usage)
	for _, m := range macs {
		if m == string(alg) {
			return k, nil
		}
	}
	return nil, awserr.Newf(codeInvalidKeyUsage, "Algorithm %s is incompatible with key spec %s.", alg, k.meta.Spec)
}

// mac computes the MAC of message under k's material.
func (s *Service) mac(ctx context.Context, k *key, alg kmsapi.MacAlgorithmSpec, message []byte) ([]byte, error) {
	v, err := s.opened(ctx, k, k.meta.Material, func(raw []byte) (any, error) { return append([]byte(nil), raw...), nil })
	if err != nil {
		return nil, err
	}
	secret, ok := v.([]byte)
	if !ok {
		return nil, wrap("material of "+k.rec.ID, errNotHMAC)
	}
	m := hmac.New(macHash[string(alg)], secret)
	m.Write(message)
	return m.Sum(nil), nil
}

var errNotHMAC = errorString("not an HMAC key's material")

type errorString string

func (e errorString) Error() string { return string(e) }

func macAccess(action string, alg kmsapi.MacAlgorithmSpec, tokens []string) *access {
	return &access{action: action, tokens: tokens, extra: iam.MapContext{"kms:macalgorithm": {string(alg)}}}
}

// GenerateMac computes the HMAC of a message (up to 4096 bytes) under an
// HMAC key.
func (s *Service) generateMac(ctx context.Context, in *kmsapi.GenerateMacInput) (*kmsapi.GenerateMacOutput, error) {
	k, err := s.macKey(ctx, deref(in.KeyId), in.MacAlgorithm, macAccess(in.IAMAction(), in.MacAlgorithm, in.GrantTokens))
	if err != nil {
		return nil, err
	}
	if deref(in.DryRun) {
		return nil, errDryRun()
	}
	mac, err := s.mac(ctx, k, in.MacAlgorithm, in.Message.Reveal())
	if err != nil {
		return nil, err
	}
	return &kmsapi.GenerateMacOutput{Mac: mac, MacAlgorithm: in.MacAlgorithm, KeyId: ptr(k.arn)}, nil
}

// VerifyMac checks a MAC of a message under an HMAC key: MacValid true, or
// KMSInvalidMacException.
func (s *Service) verifyMac(ctx context.Context, in *kmsapi.VerifyMacInput) (*kmsapi.VerifyMacOutput, error) {
	k, err := s.macKey(ctx, deref(in.KeyId), in.MacAlgorithm, macAccess(in.IAMAction(), in.MacAlgorithm, in.GrantTokens))
	if err != nil {
		return nil, err
	}
	if deref(in.DryRun) {
		return nil, errDryRun()
	}
	want, err := s.mac(ctx, k, in.MacAlgorithm, in.Message.Reveal())
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(want, in.Mac) {
		return nil, awserr.New(codeInvalidMac, "")
	}
	return &kmsapi.VerifyMacOutput{KeyId: ptr(k.arn), MacValid: ptr(true), MacAlgorithm: in.MacAlgorithm}, nil
}
