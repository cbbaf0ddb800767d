package main

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/request"
	"github.com/aws/aws-sdk-go/service/kms"
)

func tags(kv ...string) []*kms.Tag {
	var t []*kms.Tag
	for i := 0; i < len(kv); i += 2 {
		t = append(t, &kms.Tag{TagKey: aws.String(kv[i]), TagValue: aws.String(kv[i+1])})
	}
	return t
}

// wantKeyMetadata checks the members of a KeyMetadata that AWS always sends.
func wantKeyMetadata(c *checker, what string, m *kms.KeyMetadata, spec, usage string) {
	if m == nil || m.KeyId == nil || m.Arn == nil || m.AWSAccountId == nil || m.CreationDate == nil || m.CreationDate.IsZero() ||
		m.Enabled == nil || m.KeyState == nil || m.KeyManager == nil || m.Origin == nil || m.MultiRegion == nil ||
		m.KeySpec == nil || m.CustomerMasterKeySpec == nil || m.KeyUsage == nil || m.Description == nil {
		c.failf("%s: KeyMetadata lacks a member AWS always sends: %v", what, m)
	}
	if *m.KeySpec != spec || *m.KeyUsage != usage || *m.AWSAccountId != account || !strings.HasSuffix(*m.Arn, ":key/"+*m.KeyId) {
		c.failf("%s: KeyMetadata %v, want %s %s in %s", what, m, spec, usage, account)
	}
	if time.Since(*m.CreationDate) > time.Hour || time.Until(*m.CreationDate) > time.Minute {
		c.failf("%s: CreationDate %v is not now", what, m.CreationDate)
	}
	switch usage {
	case "ENCRYPT_DECRYPT":
		if len(m.EncryptionAlgorithms) == 0 {
			c.failf("%s: no EncryptionAlgorithms", what)
		}
	case "SIGN_VERIFY":
		if len(m.SigningAlgorithms) == 0 {
			c.failf("%s: no SigningAlgorithms", what)
		}
	case "GENERATE_VERIFY_MAC":
		if len(m.MacAlgorithms) == 0 {
			c.failf("%s: no MacAlgorithms", what)
		}
	case "KEY_AGREEMENT":
		if len(m.KeyAgreementAlgorithms) == 0 {
			c.failf("%s: no KeyAgreementAlgorithms", what)
		}
	}
}

func createKey(c *checker, k *kms.KMS, spec, usage string) *kms.KeyMetadata {
	in := &kms.CreateKeyInput{KeySpec: aws.String(spec), KeyUsage: aws.String(usage), Description: aws.String("gov1 " + spec + " " + usage)}
	out := chk(k.CreateKey(in))(c, "CreateKey "+spec+" "+usage)
	wantKeyMetadata(c, "CreateKey "+spec+" "+usage, out.KeyMetadata, spec, usage)
	return out.KeyMetadata
}

func runKMS(c *checker, k *kms.KMS) {
	fmt.Println("== KMS (aws-sdk-go v1 service/kms)")
	// ---- symmetric key: create, describe, crypto ------------------------------
	out := chk(k.CreateKey(&kms.CreateKeyInput{Description: aws.String("gov1 symmetric"), Tags: tags("team", "interop", "env", "test")}))(c, "CreateKey")
	wantKeyMetadata(c, "CreateKey", out.KeyMetadata, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
	m := out.KeyMetadata
	id, arn := *m.KeyId, *m.Arn
	c.want(*m.Enabled && *m.KeyState == "Enabled" && *m.Origin == "AWS_KMS" && *m.KeyManager == "CUSTOMER" && !*m.MultiRegion,
		"CreateKey: KeyMetadata %v", m)
	c.pass("CreateKey SYMMETRIC_DEFAULT: %s, CreationDate %s (a time.Time from an epoch number), Enabled, AWS_KMS, CUSTOMER, EncryptionAlgorithms %v", arn, m.CreationDate.Format(time.RFC3339), aws.StringValueSlice(m.EncryptionAlgorithms))
	for _, ref := range []string{id, arn} {
		d := chk(k.DescribeKey(&kms.DescribeKeyInput{KeyId: aws.String(ref)}))(c, "DescribeKey "+ref)
		wantKeyMetadata(c, "DescribeKey", d.KeyMetadata, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
		c.want(*d.KeyMetadata.Arn == arn, "DescribeKey(%s) = %s", ref, *d.KeyMetadata.Arn)
	}
	c.pass("DescribeKey by key id and key ARN: the same KeyMetadata")
	out2 := chk(k.CreateKey(&kms.CreateKeyInput{Description: aws.String("gov1 symmetric 2")}))(c, "CreateKey (second)")
	id2, arn2 := *out2.KeyMetadata.KeyId, *out2.KeyMetadata.Arn

	ctx := map[string]*string{"app": aws.String("gov1"), "purpose": aws.String("interop")}
	enc := chk(k.Encrypt(&kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("hello v1"), EncryptionContext: ctx}))(c, "Encrypt")
	c.want(aws.StringValue(enc.KeyId) == arn && aws.StringValue(enc.EncryptionAlgorithm) == "SYMMETRIC_DEFAULT" && len(enc.CiphertextBlob) > 0, "Encrypt: %v", enc)
	dec := chk(k.Decrypt(&kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ctx}))(c, "Decrypt")
	c.want(string(dec.Plaintext) == "hello v1" && aws.StringValue(dec.KeyId) == arn && aws.StringValue(dec.EncryptionAlgorithm) == "SYMMETRIC_DEFAULT", "Decrypt: %v", dec)
	c.pass("Encrypt/Decrypt with an encryption context: %d byte CiphertextBlob, KeyId the key ARN, EncryptionAlgorithm SYMMETRIC_DEFAULT", len(enc.CiphertextBlob))
	re := chk(k.ReEncrypt(&kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: ctx, DestinationKeyId: aws.String(id2)}))(c, "ReEncrypt")
	c.want(aws.StringValue(re.SourceKeyId) == arn && aws.StringValue(re.KeyId) == arn2 && aws.StringValue(re.SourceEncryptionAlgorithm) == "SYMMETRIC_DEFAULT" && aws.StringValue(re.DestinationEncryptionAlgorithm) == "SYMMETRIC_DEFAULT", "ReEncrypt: %v", re)
	dec = chk(k.Decrypt(&kms.DecryptInput{CiphertextBlob: re.CiphertextBlob, KeyId: aws.String(arn2)}))(c, "Decrypt re-encrypted")
	c.want(string(dec.Plaintext) == "hello v1", "Decrypt of ReEncrypt's blob")
	c.pass("ReEncrypt to a second key: SourceKeyId/KeyId the ARNs, both algorithms SYMMETRIC_DEFAULT, decrypts under the second key")
	gdk := chk(k.GenerateDataKey(&kms.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: aws.String("AES_256")}))(c, "GenerateDataKey")
	c.want(len(gdk.Plaintext) == 32 && aws.StringValue(gdk.KeyId) == arn, "GenerateDataKey: %d bytes", len(gdk.Plaintext))
	gdk128 := chk(k.GenerateDataKey(&kms.GenerateDataKeyInput{KeyId: aws.String(id), NumberOfBytes: aws.Int64(17)}))(c, "GenerateDataKey")
	c.want(len(gdk128.Plaintext) == 17, "GenerateDataKey NumberOfBytes 17: %d bytes", len(gdk128.Plaintext))
	dec = chk(k.Decrypt(&kms.DecryptInput{CiphertextBlob: gdk.CiphertextBlob}))(c, "Decrypt data key")
	c.want(bytes.Equal(dec.Plaintext, gdk.Plaintext), "data key decrypts to other bytes")
	gwp := chk(k.GenerateDataKeyWithoutPlaintext(&kms.GenerateDataKeyWithoutPlaintextInput{KeyId: aws.String(id), KeySpec: aws.String("AES_128")}))(c, "GenerateDataKeyWithoutPlaintext")
	dec = chk(k.Decrypt(&kms.DecryptInput{CiphertextBlob: gwp.CiphertextBlob}))(c, "Decrypt data key")
	c.want(len(dec.Plaintext) == 16 && aws.StringValue(gwp.KeyId) == arn, "GenerateDataKeyWithoutPlaintext AES_128: %d bytes", len(dec.Plaintext))
	c.pass("GenerateDataKey (AES_256, NumberOfBytes 17), GenerateDataKeyWithoutPlaintext (AES_128): sizes right, blobs decrypt to the data keys")
	for _, spec := range []string{"RSA_2048", "ECC_NIST_P256"} {
		p := chk(k.GenerateDataKeyPair(&kms.GenerateDataKeyPairInput{KeyId: aws.String(id), KeyPairSpec: aws.String(spec)}))(c, "GenerateDataKeyPair "+spec)
		c.want(aws.StringValue(p.KeyPairSpec) == spec && aws.StringValue(p.KeyId) == arn && len(p.PrivateKeyPlaintext) > 0 && len(p.PublicKey) > 0, "GenerateDataKeyPair %s: %v", spec, p.KeyPairSpec)
		priv, err := x509.ParsePKCS8PrivateKey(p.PrivateKeyPlaintext)
		c.ok("GenerateDataKeyPair: PrivateKeyPlaintext is not PKCS#8", err)
		pub, err := x509.ParsePKIXPublicKey(p.PublicKey)
		c.ok("GenerateDataKeyPair: PublicKey is not PKIX", err)
		c.want(priv != nil && pub != nil, "GenerateDataKeyPair %s: no key", spec)
		dec = chk(k.Decrypt(&kms.DecryptInput{CiphertextBlob: p.PrivateKeyCiphertextBlob}))(c, "Decrypt PrivateKeyCiphertextBlob")
		c.want(bytes.Equal(dec.Plaintext, p.PrivateKeyPlaintext), "PrivateKeyCiphertextBlob decrypts to other bytes")
		pw := chk(k.GenerateDataKeyPairWithoutPlaintext(&kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: aws.String(id), KeyPairSpec: aws.String(spec)}))(c, "GenerateDataKeyPairWithoutPlaintext "+spec)
		c.want(aws.StringValue(pw.KeyPairSpec) == spec && len(pw.PublicKey) > 0 && len(pw.PrivateKeyCiphertextBlob) > 0, "GenerateDataKeyPairWithoutPlaintext %s", spec)
	}
	c.pass("GenerateDataKeyPair and GenerateDataKeyPairWithoutPlaintext RSA_2048, ECC_NIST_P256: PKCS#8 private key, PKIX public key, the private key blob decrypts to the private key")
	rnd := chk(k.GenerateRandom(&kms.GenerateRandomInput{NumberOfBytes: aws.Int64(64)}))(c, "GenerateRandom")
	c.want(len(rnd.Plaintext) == 64, "GenerateRandom: %d bytes", len(rnd.Plaintext))
	c.pass("GenerateRandom 64 bytes")

	// ---- asymmetric, HMAC and key agreement keys ---------------------------
	signKeys := map[string]string{}
	for _, spec := range []string{"RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521", "ECC_SECG_P256K1", "ECC_NIST_EDWARDS25519", "ML_DSA_44", "ML_DSA_65", "ML_DSA_87"} {
		km := createKey(c, k, spec, "SIGN_VERIFY")
		signKeys[spec] = *km.KeyId
		pk := chk(k.GetPublicKey(&kms.GetPublicKeyInput{KeyId: km.KeyId}))(c, "GetPublicKey "+spec)
		c.want(aws.StringValue(pk.KeySpec) == spec && aws.StringValue(pk.KeyUsage) == "SIGN_VERIFY" && len(pk.SigningAlgorithms) > 0 && len(pk.PublicKey) > 0 && aws.StringValue(pk.KeyId) == *km.Arn,
			"GetPublicKey %s: %v", spec, pk)
		algs := aws.StringValueSlice(km.SigningAlgorithms)
		for _, alg := range algs {
			msg := []byte("message signed by " + spec)
			mt := "RAW"
			if alg == "ED25519_PH_SHA_512" {
				// Pre-hashed Ed25519 signs a SHA-512 digest (MessageType DIGEST).
				mt = "DIGEST"
				h := sha512.Sum512(msg)
				msg = h[:]
			}
			s := chk(k.Sign(&kms.SignInput{KeyId: km.KeyId, Message: msg, MessageType: aws.String(mt), SigningAlgorithm: aws.String(alg)}))(c, "Sign "+spec+" "+alg)
			c.want(aws.StringValue(s.SigningAlgorithm) == alg && aws.StringValue(s.KeyId) == *km.Arn && len(s.Signature) > 0, "Sign %s %s: %v", spec, alg, s)
			v := chk(k.Verify(&kms.VerifyInput{KeyId: km.KeyId, Message: msg, MessageType: aws.String(mt), Signature: s.Signature, SigningAlgorithm: aws.String(alg)}))(c, "Verify "+spec+" "+alg)
			c.want(aws.BoolValue(v.SignatureValid) && aws.StringValue(v.SigningAlgorithm) == alg, "Verify %s %s: %v", spec, alg, v)
			if spec == "ECC_NIST_P256" {
				pub, err := x509.ParsePKIXPublicKey(pk.PublicKey)
				c.ok("GetPublicKey ECC_NIST_P256 PKIX", err)
				h := sha256.Sum256(msg)
				c.want(ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), h[:], s.Signature), "KMS's ECDSA_SHA_256 signature does not verify with crypto/ecdsa")
			}
		}
		c.pass("CreateKey %s SIGN_VERIFY, GetPublicKey (PKIX), Sign+Verify (RAW; DIGEST for ED25519_PH_SHA_512) with %s", spec, strings.Join(algs, ", "))
	}
	{
		km := createKey(c, k, "ECC_NIST_P256", "SIGN_VERIFY")
		s := chk(k.Sign(&kms.SignInput{KeyId: km.KeyId, Message: make([]byte, 32), MessageType: aws.String("DIGEST"), SigningAlgorithm: aws.String("ECDSA_SHA_256")}))(c, "Sign DIGEST")
		s.Signature[len(s.Signature)-3] ^= 1
		_, err := k.Verify(&kms.VerifyInput{KeyId: km.KeyId, Message: make([]byte, 32), MessageType: aws.String("DIGEST"), Signature: s.Signature, SigningAlgorithm: aws.String("ECDSA_SHA_256")})
		c.wantErr("Verify of a tampered signature", err, "KMSInvalidSignatureException", "", 400)
	}
	for _, spec := range []string{"RSA_2048", "RSA_3072", "RSA_4096"} {
		km := createKey(c, k, spec, "ENCRYPT_DECRYPT")
		for _, alg := range aws.StringValueSlice(km.EncryptionAlgorithms) {
			e := chk(k.Encrypt(&kms.EncryptInput{KeyId: km.KeyId, Plaintext: []byte("rsa secret"), EncryptionAlgorithm: aws.String(alg)}))(c, "Encrypt "+spec+" "+alg)
			d := chk(k.Decrypt(&kms.DecryptInput{KeyId: km.KeyId, CiphertextBlob: e.CiphertextBlob, EncryptionAlgorithm: aws.String(alg)}))(c, "Decrypt "+spec+" "+alg)
			c.want(string(d.Plaintext) == "rsa secret" && aws.StringValue(d.EncryptionAlgorithm) == alg, "RSA Decrypt %s %s", spec, alg)
		}
		pk := chk(k.GetPublicKey(&kms.GetPublicKeyInput{KeyId: km.KeyId}))(c, "GetPublicKey "+spec)
		c.want(len(pk.EncryptionAlgorithms) > 0 && aws.StringValue(pk.KeyUsage) == "ENCRYPT_DECRYPT", "GetPublicKey %s ENCRYPT_DECRYPT: %v", spec, pk)
		c.pass("CreateKey %s ENCRYPT_DECRYPT: Encrypt/Decrypt with %v", spec, aws.StringValueSlice(km.EncryptionAlgorithms))
	}
	for _, spec := range []string{"HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512"} {
		km := createKey(c, k, spec, "GENERATE_VERIFY_MAC")
		alg := *km.MacAlgorithms[0]
		mac := chk(k.GenerateMac(&kms.GenerateMacInput{KeyId: km.KeyId, Message: []byte("mac me"), MacAlgorithm: aws.String(alg)}))(c, "GenerateMac "+spec)
		c.want(aws.StringValue(mac.MacAlgorithm) == alg && aws.StringValue(mac.KeyId) == *km.Arn && len(mac.Mac) > 0, "GenerateMac %s: %v", spec, mac)
		v := chk(k.VerifyMac(&kms.VerifyMacInput{KeyId: km.KeyId, Message: []byte("mac me"), Mac: mac.Mac, MacAlgorithm: aws.String(alg)}))(c, "VerifyMac "+spec)
		c.want(aws.BoolValue(v.MacValid), "VerifyMac %s", spec)
		if spec == "HMAC_256" {
			mac.Mac[0] ^= 1
			_, err := k.VerifyMac(&kms.VerifyMacInput{KeyId: km.KeyId, Message: []byte("mac me"), Mac: mac.Mac, MacAlgorithm: aws.String(alg)})
			c.wantErr("VerifyMac of a tampered MAC", err, "KMSInvalidMacException", "", 400)
		}
		c.pass("CreateKey %s GENERATE_VERIFY_MAC: GenerateMac/VerifyMac %s (%d byte MAC)", spec, alg, len(mac.Mac))
	}
	for _, spec := range []string{"ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521"} {
		km := createKey(c, k, spec, "KEY_AGREEMENT")
		curve := map[string]ecdh.Curve{"ECC_NIST_P256": ecdh.P256(), "ECC_NIST_P384": ecdh.P384(), "ECC_NIST_P521": ecdh.P521()}[spec]
		mine, err := curve.GenerateKey(rand.Reader)
		c.ok("ecdh key", err)
		myPub, err := x509.MarshalPKIXPublicKey(mine.PublicKey())
		c.ok("marshal", err)
		ds := chk(k.DeriveSharedSecret(&kms.DeriveSharedSecretInput{KeyId: km.KeyId, KeyAgreementAlgorithm: aws.String("ECDH"), PublicKey: myPub}))(c, "DeriveSharedSecret "+spec)
		pk := chk(k.GetPublicKey(&kms.GetPublicKeyInput{KeyId: km.KeyId}))(c, "GetPublicKey "+spec)
		theirs, err := x509.ParsePKIXPublicKey(pk.PublicKey)
		c.ok("GetPublicKey KEY_AGREEMENT PKIX", err)
		tp, err := theirs.(*ecdsa.PublicKey).ECDH()
		c.ok("ECDH public key", err)
		want, err := mine.ECDH(tp)
		c.ok("ECDH", err)
		c.want(bytes.Equal(ds.SharedSecret, want) && aws.StringValue(ds.KeyAgreementAlgorithm) == "ECDH" && aws.StringValue(ds.KeyOrigin) == "AWS_KMS" && aws.StringValue(ds.KeyId) == *km.Arn,
			"DeriveSharedSecret %s: secret matches %v, %v", spec, bytes.Equal(ds.SharedSecret, want), ds.KeyAgreementAlgorithm)
		c.want(len(pk.KeyAgreementAlgorithms) == 1 && *pk.KeyAgreementAlgorithms[0] == "ECDH", "GetPublicKey KeyAgreementAlgorithms %v", pk.KeyAgreementAlgorithms)
		c.pass("CreateKey %s KEY_AGREEMENT: DeriveSharedSecret ECDH equals crypto/ecdh's secret from GetPublicKey's key", spec)
	}
	{
		cn := kms.New(c.session("cn-north-1"))
		km := chk(cn.CreateKey(&kms.CreateKeyInput{KeySpec: aws.String("SM2"), KeyUsage: aws.String("SIGN_VERIFY")}))(c, "CreateKey SM2 in cn-north-1")
		s := chk(cn.Sign(&kms.SignInput{KeyId: km.KeyMetadata.KeyId, Message: []byte("sm2"), SigningAlgorithm: aws.String("SM2DSA")}))(c, "Sign SM2DSA")
		v := chk(cn.Verify(&kms.VerifyInput{KeyId: km.KeyMetadata.KeyId, Message: []byte("sm2"), Signature: s.Signature, SigningAlgorithm: aws.String("SM2DSA")}))(c, "Verify SM2DSA")
		c.want(aws.BoolValue(v.SignatureValid) && strings.HasPrefix(*km.KeyMetadata.Arn, "arn:aws-cn:kms:cn-north-1:"), "SM2: %v", km.KeyMetadata.Arn)
		c.pass("CreateKey SM2 SIGN_VERIFY in cn-north-1 (%s): Sign/Verify SM2DSA", *km.KeyMetadata.Arn)
		_, err := k.CreateKey(&kms.CreateKeyInput{KeySpec: aws.String("SM2"), KeyUsage: aws.String("SIGN_VERIFY")})
		c.wantErr("CreateKey SM2 in us-east-1", err, "UnsupportedOperationException", "-", 400)
	}

	// ---- key state -------------------------------------------------------------
	chk(k.DisableKey(&kms.DisableKeyInput{KeyId: aws.String(id2)}))(c, "DisableKey")
	d := chk(k.DescribeKey(&kms.DescribeKeyInput{KeyId: aws.String(id2)}))(c, "DescribeKey")
	c.want(*d.KeyMetadata.KeyState == "Disabled" && !*d.KeyMetadata.Enabled, "after DisableKey: %v", d.KeyMetadata.KeyState)
	_, err := k.Encrypt(&kms.EncryptInput{KeyId: aws.String(id2), Plaintext: []byte("x")})
	c.wantErr("Encrypt with a disabled key", err, "DisabledException", arn2+" is disabled.", 400)
	chk(k.EnableKey(&kms.EnableKeyInput{KeyId: aws.String(id2)}))(c, "EnableKey")
	d = chk(k.DescribeKey(&kms.DescribeKeyInput{KeyId: aws.String(id2)}))(c, "DescribeKey")
	c.want(*d.KeyMetadata.KeyState == "Enabled", "after EnableKey: %v", d.KeyMetadata.KeyState)
	c.pass("DisableKey/EnableKey: KeyState Disabled then Enabled")
	chk(k.UpdateKeyDescription(&kms.UpdateKeyDescriptionInput{KeyId: aws.String(id2), Description: aws.String("renamed")}))(c, "UpdateKeyDescription")
	d = chk(k.DescribeKey(&kms.DescribeKeyInput{KeyId: aws.String(id2)}))(c, "DescribeKey")
	c.want(*d.KeyMetadata.Description == "renamed", "UpdateKeyDescription: %q", *d.KeyMetadata.Description)
	c.pass("UpdateKeyDescription")

	// ---- rotation ------------------------------------------------------------
	chk(k.EnableKeyRotation(&kms.EnableKeyRotationInput{KeyId: aws.String(id), RotationPeriodInDays: aws.Int64(90)}))(c, "EnableKeyRotation")
	rs := chk(k.GetKeyRotationStatus(&kms.GetKeyRotationStatusInput{KeyId: aws.String(id)}))(c, "GetKeyRotationStatus")
	c.want(aws.BoolValue(rs.KeyRotationEnabled) && aws.Int64Value(rs.RotationPeriodInDays) == 90 && rs.NextRotationDate != nil && aws.StringValue(rs.KeyId) == arn,
		"GetKeyRotationStatus: %v", rs)
	ro := chk(k.RotateKeyOnDemand(&kms.RotateKeyOnDemandInput{KeyId: aws.String(id)}))(c, "RotateKeyOnDemand")
	c.want(aws.StringValue(ro.KeyId) == id || aws.StringValue(ro.KeyId) == arn, "RotateKeyOnDemand KeyId %v", ro.KeyId)
	var rots []*kms.RotationsListEntry
	for i := 0; i < 50 && len(rots) == 0; i++ {
		lr := chk(k.ListKeyRotations(&kms.ListKeyRotationsInput{KeyId: aws.String(id)}))(c, "ListKeyRotations")
		rots = lr.Rotations
		if len(rots) == 0 {
			time.Sleep(200 * time.Millisecond)
		}
	}
	c.want(len(rots) == 1 && rots[0].RotationDate != nil && aws.StringValue(rots[0].RotationType) == "ON_DEMAND", "ListKeyRotations: %v", rots)
	n := 0
	c.ok("ListKeyRotationsPages", k.ListKeyRotationsPages(&kms.ListKeyRotationsInput{KeyId: aws.String(id), Limit: aws.Int64(1)}, func(p *kms.ListKeyRotationsOutput, last bool) bool {
		n += len(p.Rotations)
		return true
	}))
	c.want(n == 1, "ListKeyRotationsPages: %d rotations", n)
	dec = chk(k.Decrypt(&kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ctx}))(c, "Decrypt after rotation")
	c.want(string(dec.Plaintext) == "hello v1", "Decrypt after rotation")
	chk(k.DisableKeyRotation(&kms.DisableKeyRotationInput{KeyId: aws.String(id)}))(c, "DisableKeyRotation")
	rs = chk(k.GetKeyRotationStatus(&kms.GetKeyRotationStatusInput{KeyId: aws.String(id)}))(c, "GetKeyRotationStatus")
	c.want(!aws.BoolValue(rs.KeyRotationEnabled), "rotation still enabled")
	c.pass("EnableKeyRotation (90 days), GetKeyRotationStatus (period, NextRotationDate), RotateKeyOnDemand, ListKeyRotations (1 ON_DEMAND, also by ListKeyRotationsPages), old ciphertext decrypts, DisableKeyRotation")

	// ---- aliases ---------------------------------------------------------------
	for i := 0; i < 5; i++ {
		chk(k.CreateAlias(&kms.CreateAliasInput{AliasName: aws.String(fmt.Sprintf("alias/gov1-%d", i)), TargetKeyId: aws.String(id)}))(c, "CreateAlias")
	}
	chk(k.UpdateAlias(&kms.UpdateAliasInput{AliasName: aws.String("alias/gov1-4"), TargetKeyId: aws.String(id2)}))(c, "UpdateAlias")
	var aliases []*kms.AliasListEntry
	pages := 0
	c.ok("ListAliasesPages", k.ListAliasesPages(&kms.ListAliasesInput{Limit: aws.Int64(2)}, func(p *kms.ListAliasesOutput, last bool) bool {
		pages++
		aliases = append(aliases, p.Aliases...)
		return true
	}))
	all := chk(k.ListAliases(&kms.ListAliasesInput{}))(c, "ListAliases")
	c.want(len(aliases) == len(all.Aliases) && len(aliases) >= 5 && pages >= 3, "ListAliasesPages: %d aliases in %d pages, ListAliases %d", len(aliases), pages, len(all.Aliases))
	seen := 0
	for _, a := range aliases {
		if strings.HasPrefix(*a.AliasName, "alias/gov1-") {
			seen++
			want := id
			if *a.AliasName == "alias/gov1-4" {
				want = id2
			}
			c.want(aws.StringValue(a.TargetKeyId) == want && aws.StringValue(a.AliasArn) == "arn:aws:kms:us-east-1:"+account+":"+*a.AliasName && a.CreationDate != nil && a.LastUpdatedDate != nil,
				"alias entry %v", a)
		}
	}
	c.want(seen == 5, "ListAliasesPages saw %d of the 5 aliases", seen)
	byKey := chk(k.ListAliases(&kms.ListAliasesInput{KeyId: aws.String(id)}))(c, "ListAliases KeyId")
	c.want(len(byKey.Aliases) == 4, "ListAliases(KeyId) = %d aliases, want 4", len(byKey.Aliases))
	enc2 := chk(k.Encrypt(&kms.EncryptInput{KeyId: aws.String("alias/gov1-4"), Plaintext: []byte("x")}))(c, "Encrypt via alias")
	c.want(aws.StringValue(enc2.KeyId) == arn2, "Encrypt via the updated alias used %v", enc2.KeyId)
	chk(k.DeleteAlias(&kms.DeleteAliasInput{AliasName: aws.String("alias/gov1-0")}))(c, "DeleteAlias")
	_, err = k.CreateAlias(&kms.CreateAliasInput{AliasName: aws.String("alias/gov1-1"), TargetKeyId: aws.String(id)})
	c.wantErr("CreateAlias of an existing alias", err, "AlreadyExistsException", "An alias with the name arn:aws:kms:us-east-1:"+account+":alias/gov1-1 already exists", 400)
	_, err = k.Encrypt(&kms.EncryptInput{KeyId: aws.String("alias/gov1-0"), Plaintext: []byte("x")})
	c.wantErr("Encrypt with a deleted alias", err, "NotFoundException", "Alias arn:aws:kms:us-east-1:"+account+":alias/gov1-0 is not found.", 400)
	c.pass("CreateAlias x5, UpdateAlias, ListAliasesPages (Limit 2: %d aliases in %d pages, = ListAliases), ListAliases by KeyId, Encrypt via the updated alias, DeleteAlias", len(aliases), pages)

	// ---- grants --------------------------------------------------------------
	grantee := "arn:aws:iam::" + account + ":role/gov1-grantee"
	var grantIDs, grantTokens []string
	for i := 0; i < 3; i++ {
		g := chk(k.CreateGrant(&kms.CreateGrantInput{KeyId: aws.String(id), GranteePrincipal: aws.String(grantee),
			RetiringPrincipal: aws.String("arn:aws:iam::" + account + ":role/gov1-retirer"), Name: aws.String(fmt.Sprintf("gov1-grant-%d", i)),
			Operations:  aws.StringSlice([]string{"Encrypt", "Decrypt", "GenerateDataKey"}),
			Constraints: &kms.GrantConstraints{EncryptionContextSubset: map[string]*string{"app": aws.String("gov1")}}}))(c, "CreateGrant")
		c.want(aws.StringValue(g.GrantId) != "" && aws.StringValue(g.GrantToken) != "", "CreateGrant: %v", g)
		grantIDs = append(grantIDs, *g.GrantId)
		grantTokens = append(grantTokens, *g.GrantToken)
	}
	var grants []*kms.GrantListEntry
	pages = 0
	c.ok("ListGrantsPages", k.ListGrantsPages(&kms.ListGrantsInput{KeyId: aws.String(id), Limit: aws.Int64(1)}, func(p *kms.ListGrantsResponse, last bool) bool {
		pages++
		grants = append(grants, p.Grants...)
		return true
	}))
	c.want(len(grants) == 3 && pages >= 3, "ListGrantsPages: %d grants in %d pages", len(grants), pages)
	for _, g := range grants {
		c.want(g.CreationDate != nil && aws.StringValue(g.GranteePrincipal) == grantee && aws.StringValue(g.KeyId) == arn && g.Constraints != nil &&
			aws.StringValue(g.Constraints.EncryptionContextSubset["app"]) == "gov1" && aws.StringValue(g.IssuingAccount) != "" && len(g.Operations) == 3,
			"grant entry %v", g)
	}
	var ret []*kms.GrantListEntry
	c.ok("ListRetirableGrantsPages", k.ListRetirableGrantsPages(&kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String("arn:aws:iam::" + account + ":role/gov1-retirer"), Limit: aws.Int64(2)},
		func(p *kms.ListGrantsResponse, last bool) bool { ret = append(ret, p.Grants...); return true }))
	c.want(len(ret) == 3, "ListRetirableGrantsPages: %d grants", len(ret))
	_ = chk(k.Encrypt(&kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x"), GrantTokens: aws.StringSlice(grantTokens[:1]), EncryptionContext: ctx}))(c, "Encrypt with GrantTokens")
	chk(k.RetireGrant(&kms.RetireGrantInput{GrantToken: aws.String(grantTokens[0])}))(c, "RetireGrant")
	chk(k.RetireGrant(&kms.RetireGrantInput{KeyId: aws.String(arn), GrantId: aws.String(grantIDs[1])}))(c, "RetireGrant by KeyId+GrantId")
	chk(k.RevokeGrant(&kms.RevokeGrantInput{KeyId: aws.String(id), GrantId: aws.String(grantIDs[2])}))(c, "RevokeGrant")
	lg := chk(k.ListGrants(&kms.ListGrantsInput{KeyId: aws.String(id)}))(c, "ListGrants")
	c.want(len(lg.Grants) == 0, "after retire and revoke: %d grants", len(lg.Grants))
	_, err = k.RevokeGrant(&kms.RevokeGrantInput{KeyId: aws.String(id), GrantId: aws.String(grantIDs[2])})
	c.wantErr("RevokeGrant of a revoked grant", err, "NotFoundException", "-", 400)
	c.pass("CreateGrant x3 (constraints, retiring principal, name), ListGrantsPages (Limit 1: 3 grants in %d pages), ListRetirableGrantsPages, Encrypt with a grant token, RetireGrant by token and by id, RevokeGrant", pages)

	// ---- tags --------------------------------------------------------------------
	chk(k.TagResource(&kms.TagResourceInput{KeyId: aws.String(id), Tags: tags("a", "1", "b", "2", "team", "core")}))(c, "TagResource")
	var tg []*kms.Tag
	c.ok("ListResourceTagsPages", k.ListResourceTagsPages(&kms.ListResourceTagsInput{KeyId: aws.String(id), Limit: aws.Int64(2)}, func(p *kms.ListResourceTagsOutput, last bool) bool {
		tg = append(tg, p.Tags...)
		return true
	}))
	c.want(len(tg) == 4, "ListResourceTagsPages: %d tags, want 4 (team overwritten)", len(tg))
	chk(k.UntagResource(&kms.UntagResourceInput{KeyId: aws.String(id), TagKeys: aws.StringSlice([]string{"a", "b"})}))(c, "UntagResource")
	lt := chk(k.ListResourceTags(&kms.ListResourceTagsInput{KeyId: aws.String(id)}))(c, "ListResourceTags")
	c.want(len(lt.Tags) == 2 && !aws.BoolValue(lt.Truncated), "after UntagResource: %v", lt.Tags)
	c.pass("TagResource, ListResourceTagsPages (Limit 2: 4 tags), UntagResource, ListResourceTags")

	// ---- key policy ----------------------------------------------------------
	gp := chk(k.GetKeyPolicy(&kms.GetKeyPolicyInput{KeyId: aws.String(id)}))(c, "GetKeyPolicy")
	var pol map[string]any
	c.ok("GetKeyPolicy: the policy is not JSON", json.Unmarshal([]byte(aws.StringValue(gp.Policy)), &pol))
	c.want(aws.StringValue(gp.PolicyName) == "default", "GetKeyPolicy PolicyName %v", gp.PolicyName)
	var names []string
	c.ok("ListKeyPoliciesPages", k.ListKeyPoliciesPages(&kms.ListKeyPoliciesInput{KeyId: aws.String(id)}, func(p *kms.ListKeyPoliciesOutput, last bool) bool {
		names = append(names, aws.StringValueSlice(p.PolicyNames)...)
		return true
	}))
	c.want(len(names) == 1 && names[0] == "default", "ListKeyPolicies: %v", names)
	newPol := `{"Version":"2012-10-17","Id":"gov1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"kms:*","Resource":"*"}]}`
	chk(k.PutKeyPolicy(&kms.PutKeyPolicyInput{KeyId: aws.String(id), PolicyName: aws.String("default"), Policy: aws.String(newPol)}))(c, "PutKeyPolicy")
	gp = chk(k.GetKeyPolicy(&kms.GetKeyPolicyInput{KeyId: aws.String(id)}))(c, "GetKeyPolicy")
	c.want(aws.StringValue(gp.Policy) == newPol, "GetKeyPolicy after PutKeyPolicy = %s", aws.StringValue(gp.Policy))
	c.pass("GetKeyPolicy (default policy, PolicyName default), ListKeyPoliciesPages [default], PutKeyPolicy, GetKeyPolicy returns it verbatim")

	// ---- GetKeyLastUsage: not in aws-sdk-go v1.55.8; a hand-made v1 request --
	{
		op := &request.Operation{Name: "GetKeyLastUsage", HTTPMethod: "POST", HTTPPath: "/"}
		type lastUsageIn struct {
			_     struct{} `type:"structure"`
			KeyId *string  `type:"string" required:"true"`
		}
		type lastUsageOut struct {
			_ struct{} `type:"structure"`
		}
		req := k.NewRequest(op, &lastUsageIn{KeyId: aws.String(id)}, &lastUsageOut{})
		c.ok("GetKeyLastUsage (hand-made v1 request)", req.Send())
		c.pass("GetKeyLastUsage through a hand-made v1 request (the operation is newer than v1.55.8): %s", c.rec.last().body)
	}

	// ---- errors ----------------------------------------------------------------
	nokey := "11111111-2222-3333-4444-555555555555"
	_, err = k.DescribeKey(&kms.DescribeKeyInput{KeyId: aws.String(nokey)})
	c.wantErr("DescribeKey of an unknown key", err, "NotFoundException", "Key 'arn:aws:kms:us-east-1:"+account+":key/"+nokey+"' does not exist", 400)
	_, err = k.Decrypt(&kms.DecryptInput{CiphertextBlob: bytes.Repeat([]byte{7}, 64)})
	c.wantErr("Decrypt of garbage", err, "InvalidCiphertextException", "", 400)
	if b := string(c.rec.last().body); b != `{"__type":"InvalidCiphertextException"}` {
		c.deviation("InvalidCiphertextException body %s, AWS sends {\"__type\":\"InvalidCiphertextException\"}", b)
	}
	_, err = k.Decrypt(&kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ctx, KeyId: aws.String(id2)})
	c.wantErr("Decrypt naming another key", err, "IncorrectKeyException", "The key ID in the request does not identify a CMK that can perform this operation.", 400)
	_, err = k.Encrypt(&kms.EncryptInput{KeyId: aws.String(id), Plaintext: make([]byte, 4097)})
	c.wantErr("Encrypt of 4097 bytes", err, "ValidationException", "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096", 400)
	_, err = k.Sign(&kms.SignInput{KeyId: aws.String(id), Message: []byte("x"), SigningAlgorithm: aws.String("ECDSA_SHA_256")})
	c.wantErr("Sign with a symmetric key", err, "InvalidKeyUsageException", "-", 400)

	// ---- deletion --------------------------------------------------------------
	sd := chk(k.ScheduleKeyDeletion(&kms.ScheduleKeyDeletionInput{KeyId: aws.String(id2), PendingWindowInDays: aws.Int64(7)}))(c, "ScheduleKeyDeletion")
	c.want(aws.StringValue(sd.KeyState) == "PendingDeletion" && aws.Int64Value(sd.PendingWindowInDays) == 7 && sd.DeletionDate != nil && aws.StringValue(sd.KeyId) == arn2,
		"ScheduleKeyDeletion: %v", sd)
	days := time.Until(*sd.DeletionDate).Hours() / 24
	c.want(days > 6.9 && days < 7.1, "DeletionDate in %.2f days", days)
	_, err = k.Encrypt(&kms.EncryptInput{KeyId: aws.String(id2), Plaintext: []byte("x")})
	c.wantErr("Encrypt with a key pending deletion", err, "KMSInvalidStateException", arn2+" is pending deletion.", 400)
	ck := chk(k.CancelKeyDeletion(&kms.CancelKeyDeletionInput{KeyId: aws.String(id2)}))(c, "CancelKeyDeletion")
	c.want(aws.StringValue(ck.KeyId) == arn2, "CancelKeyDeletion KeyId %v", ck.KeyId)
	d = chk(k.DescribeKey(&kms.DescribeKeyInput{KeyId: aws.String(id2)}))(c, "DescribeKey")
	c.want(*d.KeyMetadata.KeyState == "Disabled", "after CancelKeyDeletion: %s", *d.KeyMetadata.KeyState)
	c.pass("ScheduleKeyDeletion (7 days: DeletionDate in %.2f days, PendingDeletion), CancelKeyDeletion (key Disabled, as on AWS)", days)

	// ---- ListKeys --------------------------------------------------------------
	var keys []*kms.KeyListEntry
	pages = 0
	c.ok("ListKeysPages", k.ListKeysPages(&kms.ListKeysInput{Limit: aws.Int64(4)}, func(p *kms.ListKeysOutput, last bool) bool {
		pages++
		keys = append(keys, p.Keys...)
		return true
	}))
	lk := chk(k.ListKeys(&kms.ListKeysInput{Limit: aws.Int64(1000)}))(c, "ListKeys")
	uniq := map[string]bool{}
	for _, e := range keys {
		uniq[*e.KeyArn] = true
	}
	c.want(len(keys) == len(lk.Keys) && len(uniq) == len(keys) && len(keys) >= 20 && pages == (len(keys)+3)/4, "ListKeysPages: %d keys (%d distinct) in %d pages, ListKeys %d", len(keys), len(uniq), pages, len(lk.Keys))
	c.pass("ListKeysPages Limit 4: %d keys in %d pages, none twice, = ListKeys", len(keys), pages)

	// ---- custom key stores, in an account without any ----
	cks := aws.String("cks-1234567890abcdef0")
	// No CloudHSM cluster is ever reachable from Keyfort.
	_, err = k.CreateCustomKeyStore(&kms.CreateCustomKeyStoreInput{CustomKeyStoreName: aws.String("gov1"), CloudHsmClusterId: aws.String("cluster-234567abcdefg"),
		TrustAnchorCertificate: aws.String("x"), KeyStorePassword: aws.String("12345678")})
	c.wantErr("CreateCustomKeyStore of an AWS CloudHSM key store", err, "CloudHsmClusterNotFoundException", "-", 400)
	// Keyfort has no custom key store: these answer as AWS does for that
	// account.
	stores := chk(k.DescribeCustomKeyStores(&kms.DescribeCustomKeyStoresInput{}))(c, "DescribeCustomKeyStores")
	c.want(stores.CustomKeyStores != nil && len(stores.CustomKeyStores) == 0 && stores.Truncated != nil && !*stores.Truncated,
		"DescribeCustomKeyStores: %v", stores)
	c.pass("DescribeCustomKeyStores: an empty list, Truncated false")
	_, err = k.CreateKey(&kms.CreateKeyInput{CustomKeyStoreId: cks})
	c.wantErr("CreateKey in an unknown custom key store", err, "CustomKeyStoreNotFoundException", "-", 400)
	_, err = k.GenerateRandom(&kms.GenerateRandomInput{NumberOfBytes: aws.Int64(8), CustomKeyStoreId: cks})
	c.wantErr("GenerateRandom in an unknown custom key store", err, "CustomKeyStoreNotFoundException", "-", 400)
	runImport(c, k)
	runMultiRegion(c, k)
}

// runImport imports key material into a key of origin EXTERNAL as AWS's
// developer guide does (RSAES_OAEP_SHA_256), uses it, deletes and reimports
// it.
func runImport(c *checker, k *kms.KMS) {
	md := chk(k.CreateKey(&kms.CreateKeyInput{Origin: aws.String("EXTERNAL")}))(c, "CreateKey Origin EXTERNAL").KeyMetadata
	c.want(aws.StringValue(md.KeyState) == "PendingImport" && aws.StringValue(md.Origin) == "EXTERNAL", "EXTERNAL key: %v", md)
	material := make([]byte, 32)
	if _, err := rand.Read(material); err != nil {
		c.failf("rand: %v", err)
	}
	imp := func(what string, model string, validTo *time.Time) *kms.ImportKeyMaterialOutput {
		p := chk(k.GetParametersForImport(&kms.GetParametersForImportInput{KeyId: md.KeyId, WrappingAlgorithm: aws.String("RSAES_OAEP_SHA_256"),
			WrappingKeySpec: aws.String("RSA_2048")}))(c, "GetParametersForImport")
		c.want(p.ParametersValidTo != nil && time.Until(*p.ParametersValidTo) > 23*time.Hour, "ParametersValidTo %v", p.ParametersValidTo)
		pub, err := x509.ParsePKIXPublicKey(p.PublicKey)
		if err != nil {
			c.failf("GetParametersForImport PublicKey: %v", err)
			return nil
		}
		wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub.(*rsa.PublicKey), material, nil)
		if err != nil {
			c.failf("wrap: %v", err)
			return nil
		}
		return chk(k.ImportKeyMaterial(&kms.ImportKeyMaterialInput{KeyId: md.KeyId, ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapped,
			ExpirationModel: aws.String(model), ValidTo: validTo}))(c, what)
	}
	out := imp("ImportKeyMaterial", "KEY_MATERIAL_DOES_NOT_EXPIRE", nil)
	// (v1.55.8, the last v1 release, predates ImportKeyMaterial's KeyId
	// and KeyMaterialId: its output has no members.)
	c.want(out != nil, "ImportKeyMaterial = %v", out)
	ct := chk(k.Encrypt(&kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("imported")}))(c, "Encrypt under imported material")
	chk(k.DeleteImportedKeyMaterial(&kms.DeleteImportedKeyMaterialInput{KeyId: md.KeyId}))(c, "DeleteImportedKeyMaterial")
	_, err := k.Decrypt(&kms.DecryptInput{CiphertextBlob: ct.CiphertextBlob})
	c.wantErr("Decrypt while pending import", err, "KMSInvalidStateException", aws.StringValue(md.Arn)+" is pending import.", 400)
	validTo := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
	imp("ImportKeyMaterial again (KEY_MATERIAL_EXPIRES)", "KEY_MATERIAL_EXPIRES", &validTo)
	d := chk(k.DescribeKey(&kms.DescribeKeyInput{KeyId: md.KeyId}))(c, "DescribeKey").KeyMetadata
	c.want(aws.StringValue(d.KeyState) == "Enabled" && aws.StringValue(d.ExpirationModel) == "KEY_MATERIAL_EXPIRES" && d.ValidTo != nil && d.ValidTo.Equal(validTo),
		"after reimport: %v", d)
	pt := chk(k.Decrypt(&kms.DecryptInput{CiphertextBlob: ct.CiphertextBlob}))(c, "Decrypt after reimport")
	c.want(string(pt.Plaintext) == "imported", "Decrypt after reimport = %q", pt.Plaintext)
	c.pass("imported key material: GetParametersForImport, ImportKeyMaterial, Encrypt, DeleteImportedKeyMaterial, reimport with ValidTo, Decrypt")
}

// runMultiRegion replicates a multi-Region key to eu-west-1, decrypts the
// primary's ciphertext there and moves the primary Region.
func runMultiRegion(c *checker, k *kms.KMS) {
	eu := kms.New(c.session("eu-west-1"))
	md := chk(k.CreateKey(&kms.CreateKeyInput{MultiRegion: aws.Bool(true)}))(c, "CreateKey MultiRegion").KeyMetadata
	c.want(strings.HasPrefix(aws.StringValue(md.KeyId), "mrk-") && aws.BoolValue(md.MultiRegion) && md.MultiRegionConfiguration != nil &&
		aws.StringValue(md.MultiRegionConfiguration.MultiRegionKeyType) == "PRIMARY", "multi-Region key: %v", md)
	rep := chk(k.ReplicateKey(&kms.ReplicateKeyInput{KeyId: md.KeyId, ReplicaRegion: aws.String("eu-west-1")}))(c, "ReplicateKey")
	c.want(rep.ReplicaKeyMetadata != nil && strings.Contains(aws.StringValue(rep.ReplicaKeyMetadata.Arn), ":eu-west-1:") && rep.ReplicaPolicy != nil,
		"ReplicateKey = %v", rep)
	ct := chk(k.Encrypt(&kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("mrk")}))(c, "Encrypt with the primary")
	pt := chk(eu.Decrypt(&kms.DecryptInput{CiphertextBlob: ct.CiphertextBlob}))(c, "Decrypt in eu-west-1")
	c.want(string(pt.Plaintext) == "mrk" && aws.StringValue(pt.KeyId) == aws.StringValue(rep.ReplicaKeyMetadata.Arn), "Decrypt in eu-west-1 = %q under %s", pt.Plaintext, aws.StringValue(pt.KeyId))
	chk(k.UpdatePrimaryRegion(&kms.UpdatePrimaryRegionInput{KeyId: md.KeyId, PrimaryRegion: aws.String("eu-west-1")}))(c, "UpdatePrimaryRegion")
	d := chk(eu.DescribeKey(&kms.DescribeKeyInput{KeyId: md.KeyId}))(c, "DescribeKey in eu-west-1").KeyMetadata
	c.want(d.MultiRegionConfiguration != nil && aws.StringValue(d.MultiRegionConfiguration.MultiRegionKeyType) == "PRIMARY", "eu-west-1 after UpdatePrimaryRegion: %v", d)
	_, err := k.ReplicateKey(&kms.ReplicateKeyInput{KeyId: md.KeyId, ReplicaRegion: aws.String("ap-southeast-2")})
	c.wantErr("ReplicateKey of a replica", err, "UnsupportedOperationException", aws.StringValue(md.Arn)+" is not a multi-region primary key.", 400)
	c.pass("multi-Region key: ReplicateKey, Decrypt in the replica's region, UpdatePrimaryRegion")
}
