package kms

// Asymmetric signing keys: Sign and Verify.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	_ "crypto/sha256" // the hashes of the signing algorithms
	_ "crypto/sha512"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/iam"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
)

const (
	codeInvalidSignature = "KMSInvalidSignatureException"

	msgRaw    = "RAW"
	msgDigest = "DIGEST"
)

// signingScheme is how one signing algorithm hashes and pads.
type signingScheme struct {
	// hash is the algorithm's hash; for ED25519_SHA_512 (pure Ed25519,
	// which hashes inside) it is zero.
	hash crypto.Hash
	pss  bool
	// ed25519ph: Ed25519ph (RFC 8032) over the SHA-512 digest.
	ed25519ph bool
	// only is the one MessageType the algorithm accepts ("" = RAW or
	// DIGEST).
	only string
	// sm2: SM2DSA, which hashes a RAW message itself (SM3 over Z_A || M,
	// with the key's public key) and takes a 32-byte DIGEST.
	sm2 bool
}

var signingSchemes = map[string]signingScheme{
	"ECDSA_SHA_256":             {hash: crypto.SHA256},
	"ECDSA_SHA_384":             {hash: crypto.SHA384},
	"ECDSA_SHA_512":             {hash: crypto.SHA512},
	"RSASSA_PSS_SHA_256":        {hash: crypto.SHA256, pss: true},
	"RSASSA_PSS_SHA_384":        {hash: crypto.SHA384, pss: true},
	"RSASSA_PSS_SHA_512":        {hash: crypto.SHA512, pss: true},
	"RSASSA_PKCS1_V1_5_SHA_256": {hash: crypto.SHA256},
	"RSASSA_PKCS1_V1_5_SHA_384": {hash: crypto.SHA384},
	"RSASSA_PKCS1_V1_5_SHA_512": {hash: crypto.SHA512},
	"ED25519_SHA_512":           {only: msgRaw},
	"ED25519_PH_SHA_512":        {hash: crypto.SHA512, ed25519ph: true, only: msgDigest},
	// ML-DSA signs the message itself (RAW); AWS also takes EXTERNAL_MU.
	"ML_DSA_SHAKE_256": {only: msgRaw},
	algSM2:             {sm2: true},
}

// signingKey resolves a signing key for Sign or Verify, authorizes a on it
// and checks its state, usage, algorithm and the message type, and returns
// what the algorithm signs: the digest of the message (or the message
// itself for pure Ed25519, ML-DSA and a RAW SM2DSA message, which signSM2
// hashes with the key's Z_A).
func (s *Service) signingKey(ctx context.Context, ref string, alg kmsapi.SigningAlgorithmSpec, msgType kmsapi.MessageType, message []byte, a *access) (*key, []byte, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, nil, err
	}
	k, err := s.lookupKey(ctx, scope, ref, refAliasOK|refCrossAccount, a)
	if err != nil {
		return nil, nil, err
	}
	if err := checkEnabled(k); err != nil {
		return nil, nil, err
	}
	if k.meta.Usage != usageSignVerify {
		return nil, nil, errKeyUsage(k, a)
	}
	_, signing, _, _ := specOf(k).algorithms(k.meta.Usage)
	offered := false
	for _, g := range signing {
		offered = offered || g == string(alg)
	}
	scheme, known := signingSchemes[string(alg)]
	if !offered || !known {
		return nil, nil, awserr.Newf(codeInvalidKeyUsage, "Algorithm %s is incompatible with key spec %s.", alg, k.meta.Spec)
	}
	mt := string(msgType)
	if mt == "" {
		mt = msgRaw
	}
	if mt == msgExternalMu && alg == "ML_DSA_SHAKE_256" {
		return nil, nil, errValidation("Keyfort does not support MessageType EXTERNAL_MU yet: send the message itself with MessageType RAW (up to 4096 bytes).")
	}
	if (mt != msgRaw && mt != msgDigest) || (scheme.only != "" && mt != scheme.only) {
		return nil, nil, errValidation("Message type %s is incompatible with algorithm %s.", mt, alg)
	}
	switch {
	case mt == msgDigest && scheme.sm2:
		if len(message) != sm2DigestSize {
			return nil, nil, errValidation("Digest is invalid length for algorithm %s.", alg)
		}
		return k, message, nil
	case mt == msgDigest:
		if len(message) != scheme.hash.Size() {
			return nil, nil, errValidation("Digest is invalid length for algorithm %s.", alg)
		}
		return k, message, nil
	case scheme.hash == 0:
		return k, message, nil
	default:
		h := scheme.hash.New()
		h.Write(message)
		return k, h.Sum(nil), nil
	}
}

// messageType is a request's MessageType, RAW when absent.
func messageType(msgType kmsapi.MessageType) string {
	if msgType == "" {
		return msgRaw
	}
	return string(msgType)
}

func signAccess(action string, alg kmsapi.SigningAlgorithmSpec, msgType kmsapi.MessageType, tokens []string) *access {
	mt := messageType(msgType)
	return &access{action: action, tokens: tokens, extra: iam.MapContext{
		"kms:signingalgorithm": {string(alg)},
		"kms:messagetype":      {mt},
	}}
}

// signerOpts are the crypto.SignerOpts of a scheme: PSS with a salt as long
// as the hash (as AWS signs), Ed25519ph, pure Ed25519 or the hash.
func (sc signingScheme) signerOpts() crypto.SignerOpts {
	switch {
	case sc.pss:
		return &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: sc.hash}
	case sc.ed25519ph:
		return &ed25519.Options{Hash: crypto.SHA512}
	}
	return sc.hash
}

// Sign signs a message (up to 4096 bytes) or its digest with the private
// key of an asymmetric signing key. ECDSA signatures are ASN.1 DER.
func (s *Service) sign(ctx context.Context, in *kmsapi.SignInput) (*kmsapi.SignOutput, error) {
	k, toSign, err := s.signingKey(ctx, deref(in.KeyId), in.SigningAlgorithm, in.MessageType, in.Message.Reveal(),
		signAccess(in.IAMAction(), in.SigningAlgorithm, in.MessageType, in.GrantTokens))
	if err != nil {
		return nil, err
	}
	if deref(in.DryRun) {
		return nil, errDryRun()
	}
	signer, err := s.signer(ctx, k)
	if err != nil {
		return nil, err
	}
	var sig []byte
	if sc := signingSchemes[string(in.SigningAlgorithm)]; sc.sm2 {
		sig, err = signSM2(s.rand, signer, toSign, messageType(in.MessageType))
	} else {
		sig, err = signer.Sign(s.rand, toSign, sc.signerOpts())
	}
	if err != nil {
		return nil, wrap("sign with "+k.rec.ID, err)
	}
	return &kmsapi.SignOutput{KeyId: ptr(k.arn), Signature: sig, SigningAlgorithm: in.SigningAlgorithm}, nil
}

// Verify checks a signature with the public key of an asymmetric signing
// key: SignatureValid true, or KMSInvalidSignatureException.
func (s *Service) verify(ctx context.Context, in *kmsapi.VerifyInput) (*kmsapi.VerifyOutput, error) {
	k, signed, err := s.signingKey(ctx, deref(in.KeyId), in.SigningAlgorithm, in.MessageType, in.Message.Reveal(),
		signAccess(in.IAMAction(), in.SigningAlgorithm, in.MessageType, in.GrantTokens))
	if err != nil {
		return nil, err
	}
	if deref(in.DryRun) {
		return nil, errDryRun()
	}
	signer, err := s.signer(ctx, k)
	if err != nil {
		return nil, err
	}
	sc := signingSchemes[string(in.SigningAlgorithm)]
	valid := false
	switch pub := signer.Public().(type) {
	case *ecdsa.PublicKey:
		if sc.sm2 {
			valid = isSM2Public(pub) && verifySM2(pub, signed, in.Signature, messageType(in.MessageType))
			break
		}
		valid = ecdsa.VerifyASN1(pub, signed, in.Signature)
	case *rsa.PublicKey:
		if sc.pss {
			valid = rsa.VerifyPSS(pub, sc.hash, signed, in.Signature, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		} else {
			valid = rsa.VerifyPKCS1v15(pub, sc.hash, signed, in.Signature) == nil
		}
	case *mldsaPublic:
		valid = pub.verify(signed, in.Signature)
	case *secp256k1.PublicKey:
		valid = verifySecp256k1(pub, signed, in.Signature)
	case ed25519.PublicKey:
		opts := &ed25519.Options{}
		if sc.ed25519ph {
			opts.Hash = crypto.SHA512
		}
		valid = ed25519.VerifyWithOptions(pub, signed, in.Signature, opts) == nil
	}
	if !valid {
		return nil, awserr.New(codeInvalidSignature, "")
	}
	return &kmsapi.VerifyOutput{KeyId: ptr(k.arn), SignatureValid: ptr(true), SigningAlgorithm: in.SigningAlgorithm}, nil
}
