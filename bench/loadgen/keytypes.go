package main

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/x509"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// keyTypeOps are the rows of the key types of issue 10 (not in the default
// -ops): DeriveSharedSecret on an ECC_NIST_P256 KEY_AGREEMENT key with one
// peer public key made here; Sign of a short RAW message with ML_DSA_65,
// RSA_4096 (RSASSA_PSS_SHA_256) and ECC_SECG_P256K1 keys; GenerateDataKeyPair
// of an ECC_NIST_P256 and an RSA_2048 pair under key; Sign and Verify with
// an ECC_NIST_P256 key (ECDSA_SHA_256) and GenerateMac and VerifyMac with an
// HMAC_256 key, which the issue wants at 70% of Encrypt's rate or more.
func keyTypeOps(ctx context.Context, client *kms.Client, key string) (map[string]func(ctx context.Context, w, i int) error, error) {
	md, err := client.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeKeyAgreement})
	if err != nil {
		return nil, fmt.Errorf("key agreement key: %w", err)
	}
	peer, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(peer.PublicKey())
	if err != nil {
		return nil, err
	}
	signKey := func(spec types.KeySpec, alg types.SigningAlgorithmSpec) (func(ctx context.Context, w, i int) error, error) {
		md, err := client.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: spec, KeyUsage: types.KeyUsageTypeSignVerify})
		if err != nil {
			return nil, fmt.Errorf("%s signing key: %w", spec, err)
		}
		return func(ctx context.Context, w, i int) error {
			_, err := client.Sign(ctx, &kms.SignInput{KeyId: md.KeyMetadata.KeyId, Message: []byte("release artifact digest"), SigningAlgorithm: alg})
			return err
		}, nil
	}
	signMLDSA, err := signKey(types.KeySpecMlDsa65, types.SigningAlgorithmSpecMlDsaShake256)
	if err != nil {
		return nil, err
	}
	signRSA, err := signKey(types.KeySpecRsa4096, types.SigningAlgorithmSpecRsassaPssSha256)
	if err != nil {
		return nil, err
	}
	signK1, err := signKey(types.KeySpecEccSecgP256k1, types.SigningAlgorithmSpecEcdsaSha256)
	if err != nil {
		return nil, err
	}
	signP256, err := signKey(types.KeySpecEccNistP256, types.SigningAlgorithmSpecEcdsaSha256)
	if err != nil {
		return nil, err
	}
	p256, err := client.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify})
	if err != nil {
		return nil, fmt.Errorf("P-256 verify key: %w", err)
	}
	msg := []byte("release artifact digest")
	sig, err := client.Sign(ctx, &kms.SignInput{KeyId: p256.KeyMetadata.KeyId, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	if err != nil {
		return nil, fmt.Errorf("P-256 signature: %w", err)
	}
	hmacKey, err := client.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
	if err != nil {
		return nil, fmt.Errorf("HMAC key: %w", err)
	}
	mac, err := client.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: hmacKey.KeyMetadata.KeyId, Message: msg, MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
	if err != nil {
		return nil, fmt.Errorf("MAC: %w", err)
	}
	pair := func(spec types.DataKeyPairSpec) func(ctx context.Context, w, i int) error {
		return func(ctx context.Context, w, i int) error {
			_, err := client.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: aws.String(key), KeyPairSpec: spec})
			return err
		}
	}
	return map[string]func(ctx context.Context, w, i int) error{
		"DeriveSharedSecret": func(ctx context.Context, w, i int) error {
			_, err := client.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: md.KeyMetadata.KeyId,
				KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: spki})
			return err
		},
		"SignP256": signP256,
		"VerifyP256": func(ctx context.Context, w, i int) error {
			_, err := client.Verify(ctx, &kms.VerifyInput{KeyId: p256.KeyMetadata.KeyId, Message: msg,
				Signature: sig.Signature, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
			return err
		},
		"GenerateMac": func(ctx context.Context, w, i int) error {
			_, err := client.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: hmacKey.KeyMetadata.KeyId, Message: msg,
				MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
			return err
		},
		"VerifyMac": func(ctx context.Context, w, i int) error {
			_, err := client.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: hmacKey.KeyMetadata.KeyId, Message: msg,
				Mac: mac.Mac, MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
			return err
		},
		"SignMLDSA65":                signMLDSA,
		"SignRSA4096":                signRSA,
		"SignSecp256k1":              signK1,
		"GenerateDataKeyPairP256":    pair(types.DataKeyPairSpecEccNistP256),
		"GenerateDataKeyPairRSA2048": pair(types.DataKeyPairSpecRsa2048),
	}, nil
}
