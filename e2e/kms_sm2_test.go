package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	gmecdh "github.com/emmansun/gmsm/ecdh"
	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"github.com/keyfort/keyfort/internal/keyfortest"
)

// sm2Region is a China region, the only ones where AWS offers SM2.
const sm2Region = "cn-north-1"

// sm2DefaultID is the distinguishing ID AWS uses for RAW SM2DSA messages
// (GM/T 0009-2012's default).
var sm2DefaultID = []byte("1234567812345678")

// parseSM2SPKI parses GetPublicKey's DER with gmsm (independently of
// Keyfort's code) and checks it is a key on the SM2 curve.
func parseSM2SPKI(t *testing.T, der []byte) *ecdsa.PublicKey {
	t.Helper()
	if _, err := x509.ParsePKIXPublicKey(der); err == nil {
		t.Fatal("crypto/x509 parses the SM2 public key: it is not on the SM2 curve")
	}
	pub, err := smx509.ParsePKIXPublicKey(der)
	mustNoErr(t, err, "smx509.ParsePKIXPublicKey")
	if !sm2.IsSM2PublicKey(pub) {
		t.Fatalf("public key %T is not an SM2 key", pub)
	}
	return pub.(*ecdsa.PublicKey)
}

// TestSM2Keys: SM2 keys in the China regions, through the SDK signing for
// cn-north-1: DescribeKey and GetPublicKey for each usage, SM2DSA Sign and
// Verify (RAW with the default distinguishing ID, DIGEST with the caller's
// e) checked with gmsm, SM2PKE encryption made offline in the ASN.1 form
// that Decrypt opens (a raw C1C3C2 one refused, as AWS takes only ASN.1),
// the 1,024-byte plaintext limit, ReEncrypt both ways,
// DeriveSharedSecret against gmsm's ECDH, and the refusals of wrong
// algorithms, usages and message types; the keys work after a restart.
func TestSM2Keys(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS(sm2Region)
	ctx := ctxT(t)

	usages := []struct {
		usage types.KeyUsageType
		enc   []types.EncryptionAlgorithmSpec
		sign  []types.SigningAlgorithmSpec
		agree []types.KeyAgreementAlgorithmSpec
	}{
		{types.KeyUsageTypeSignVerify, nil, []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecSm2dsa}, nil},
		{types.KeyUsageTypeEncryptDecrypt, []types.EncryptionAlgorithmSpec{types.EncryptionAlgorithmSpecSm2pke}, nil, nil},
		{types.KeyUsageTypeKeyAgreement, nil, nil, []types.KeyAgreementAlgorithmSpec{types.KeyAgreementAlgorithmSpecEcdh}},
	}
	ids := map[types.KeyUsageType]*string{}
	pubs := map[types.KeyUsageType]*ecdsa.PublicKey{}
	for _, u := range usages {
		md := createKey(t, c, &kms.CreateKeyInput{KeySpec: types.KeySpecSm2, KeyUsage: u.usage})
		if md.KeySpec != types.KeySpecSm2 || md.CustomerMasterKeySpec != types.CustomerMasterKeySpecSm2 || md.KeyUsage != u.usage ||
			!strings.HasPrefix(aws.ToString(md.Arn), "arn:aws-cn:kms:cn-north-1:") ||
			len(md.EncryptionAlgorithms) != len(u.enc) || len(md.SigningAlgorithms) != len(u.sign) || len(md.KeyAgreementAlgorithms) != len(u.agree) ||
			(u.enc != nil && md.EncryptionAlgorithms[0] != u.enc[0]) || (u.sign != nil && md.SigningAlgorithms[0] != u.sign[0]) ||
			(u.agree != nil && md.KeyAgreementAlgorithms[0] != u.agree[0]) || len(md.MacAlgorithms) != 0 {
			t.Fatalf("CreateKey SM2 %s metadata = %+v", u.usage, md)
		}
		pk, err := c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: md.KeyId})
		mustNoErr(t, err, "GetPublicKey")
		if pk.KeySpec != types.KeySpecSm2 || pk.CustomerMasterKeySpec != types.CustomerMasterKeySpecSm2 || pk.KeyUsage != u.usage ||
			aws.ToString(pk.KeyId) != aws.ToString(md.Arn) || len(pk.EncryptionAlgorithms) != len(u.enc) ||
			len(pk.SigningAlgorithms) != len(u.sign) || len(pk.KeyAgreementAlgorithms) != len(u.agree) {
			t.Fatalf("GetPublicKey SM2 %s = %+v", u.usage, pk)
		}
		ids[u.usage] = md.KeyId
		pubs[u.usage] = parseSM2SPKI(t, pk.PublicKey)
		_, err = c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: md.KeyId})
		wantAPIError(t, err, "UnsupportedOperationException", "")
	}
	signID, encID, agreeID := ids[types.KeyUsageTypeSignVerify], ids[types.KeyUsageTypeEncryptDecrypt], ids[types.KeyUsageTypeKeyAgreement]
	sm2dsa, sm2pke := types.SigningAlgorithmSpecSm2dsa, types.EncryptionAlgorithmSpecSm2pke

	// Sign RAW: e = SM3(Z_A || M) with the default ID; gmsm verifies it.
	msg := []byte("sign me with SM2")
	raw, err := c.Sign(ctx, &kms.SignInput{KeyId: signID, Message: msg, SigningAlgorithm: sm2dsa})
	mustNoErr(t, err, "Sign RAW")
	if raw.SigningAlgorithm != sm2dsa || aws.ToString(raw.KeyId) == "" {
		t.Errorf("Sign = %+v", raw)
	}
	signPub := pubs[types.KeyUsageTypeSignVerify]
	if !sm2.VerifyASN1WithSM2(signPub, sm2DefaultID, msg, raw.Signature) {
		t.Fatal("gmsm does not verify Keyfort's RAW SM2DSA signature with the default distinguishing ID")
	}
	if sm2.VerifyASN1WithSM2(signPub, []byte("other id"), msg, raw.Signature) {
		t.Fatal("the RAW signature verifies with another distinguishing ID")
	}
	v, err := c.Verify(ctx, &kms.VerifyInput{KeyId: signID, Message: msg, Signature: raw.Signature, SigningAlgorithm: sm2dsa})
	mustNoErr(t, err, "Verify RAW")
	if !v.SignatureValid {
		t.Error("Verify RAW: SignatureValid false")
	}
	// A signature made offline (gmsm cannot: it has no private key) is
	// replaced by a tampered one.
	bad := bytes.Clone(raw.Signature)
	bad[len(bad)-1] ^= 1
	_, err = c.Verify(ctx, &kms.VerifyInput{KeyId: signID, Message: msg, Signature: bad, SigningAlgorithm: sm2dsa})
	wantAPIError(t, err, "KMSInvalidSignatureException", "")
	_, err = c.Verify(ctx, &kms.VerifyInput{KeyId: signID, Message: []byte("another message"), Signature: raw.Signature, SigningAlgorithm: sm2dsa})
	wantAPIError(t, err, "KMSInvalidSignatureException", "")

	// Sign DIGEST: the caller computes e with its own distinguishing ID.
	za, err := sm2.CalculateZA(signPub, []byte("alice@example.cn"))
	mustNoErr(t, err, "CalculateZA")
	h := sm3.New()
	h.Write(za)
	h.Write(msg)
	e := h.Sum(nil)
	dig, err := c.Sign(ctx, &kms.SignInput{KeyId: signID, Message: e, MessageType: types.MessageTypeDigest, SigningAlgorithm: sm2dsa})
	mustNoErr(t, err, "Sign DIGEST")
	if !sm2.VerifyASN1WithSM2(signPub, []byte("alice@example.cn"), msg, dig.Signature) || !sm2.VerifyASN1(signPub, e, dig.Signature) {
		t.Fatal("gmsm does not verify Keyfort's DIGEST SM2DSA signature")
	}
	_, err = c.Verify(ctx, &kms.VerifyInput{KeyId: signID, Message: e, MessageType: types.MessageTypeDigest, Signature: dig.Signature, SigningAlgorithm: sm2dsa})
	mustNoErr(t, err, "Verify DIGEST")
	_, err = c.Verify(ctx, &kms.VerifyInput{KeyId: signID, Message: msg, Signature: dig.Signature, SigningAlgorithm: sm2dsa})
	wantAPIError(t, err, "KMSInvalidSignatureException", "")
	_, err = c.Sign(ctx, &kms.SignInput{KeyId: signID, Message: e[:20], MessageType: types.MessageTypeDigest, SigningAlgorithm: sm2dsa})
	wantAPIError(t, err, "ValidationException", "Digest is invalid length for algorithm SM2DSA.")
	_, err = c.Sign(ctx, &kms.SignInput{KeyId: signID, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	wantAPIError(t, err, "InvalidKeyUsageException", "Algorithm ECDSA_SHA_256 is incompatible with key spec SM2.")
	_, err = c.Sign(ctx, &kms.SignInput{KeyId: signID, Message: msg, SigningAlgorithm: sm2dsa, DryRun: aws.Bool(true)})
	wantAPIError(t, err, "DryRunOperationException", "")
	_, err = c.Sign(ctx, &kms.SignInput{KeyId: encID, Message: msg, SigningAlgorithm: sm2dsa})
	wantAPIError(t, err, "InvalidKeyUsageException", "key usage is ENCRYPT_DECRYPT which is not valid for Sign.")

	// Encrypt offline with gmsm, both ciphertext forms, and Decrypt.
	encPub := pubs[types.KeyUsageTypeEncryptDecrypt]
	secret := []byte("encrypted offline to an SM2 key")
	asn1CT, err := sm2.Encrypt(rand.Reader, encPub, secret, sm2.ASN1EncrypterOpts)
	mustNoErr(t, err, "sm2.Encrypt ASN.1")
	plainCT, err := sm2.Encrypt(rand.Reader, encPub, secret, nil)
	mustNoErr(t, err, "sm2.Encrypt C1C3C2")
	dec0, err := c.Decrypt(ctx, &kms.DecryptInput{KeyId: encID, CiphertextBlob: asn1CT, EncryptionAlgorithm: sm2pke})
	mustNoErr(t, err, "Decrypt an ASN.1 ciphertext")
	if !bytes.Equal(dec0.Plaintext, secret) || dec0.EncryptionAlgorithm != sm2pke || dec0.KeyMaterialId != nil {
		t.Errorf("Decrypt = %q, %s, material %v", dec0.Plaintext, dec0.EncryptionAlgorithm, dec0.KeyMaterialId)
	}
	// AWS decrypts only the ASN.1 form: a raw ciphertext is refused.
	_, err = c.Decrypt(ctx, &kms.DecryptInput{KeyId: encID, CiphertextBlob: plainCT, EncryptionAlgorithm: sm2pke})
	wantAPIError(t, err, "InvalidCiphertextException", "")
	// Encrypt in Keyfort: the plaintext limit, the round trip, ReEncrypt.
	max := bytes.Repeat([]byte{'p'}, 1024)
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: encID, Plaintext: max, EncryptionAlgorithm: sm2pke})
	mustNoErr(t, err, "Encrypt 1024 bytes")
	if enc.CiphertextBlob[0] != 0x30 || enc.EncryptionAlgorithm != sm2pke {
		t.Errorf("Encrypt SM2PKE: ciphertext starts %#x (want ASN.1), algorithm %s", enc.CiphertextBlob[0], enc.EncryptionAlgorithm)
	}
	dec, err := c.Decrypt(ctx, &kms.DecryptInput{KeyId: encID, CiphertextBlob: enc.CiphertextBlob, EncryptionAlgorithm: sm2pke})
	mustNoErr(t, err, "Decrypt")
	if !bytes.Equal(dec.Plaintext, max) {
		t.Error("Decrypt did not return the plaintext")
	}
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: encID, Plaintext: append(max, 'x'), EncryptionAlgorithm: sm2pke})
	wantAPIError(t, err, "ValidationException", "at most 1024 bytes")
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: encID, Plaintext: secret})
	wantAPIError(t, err, "InvalidKeyUsageException", "SYMMETRIC_DEFAULT is not supported")
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: encID, Plaintext: secret, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
	wantAPIError(t, err, "InvalidKeyUsageException", "RSAES_OAEP_SHA_256 is not supported")
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: encID, Plaintext: secret, EncryptionAlgorithm: sm2pke, EncryptionContext: map[string]string{"a": "b"}})
	wantAPIError(t, err, "ValidationException", "EncryptionContext is not supported")
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: signID, Plaintext: secret, EncryptionAlgorithm: sm2pke})
	wantAPIError(t, err, "InvalidKeyUsageException", "")
	_, err = c.Decrypt(ctx, &kms.DecryptInput{KeyId: encID, CiphertextBlob: bytes.Repeat([]byte{0x30}, 120), EncryptionAlgorithm: sm2pke})
	wantAPIError(t, err, "InvalidCiphertextException", "")
	tampered := bytes.Clone(asn1CT)
	tampered[len(tampered)-1] ^= 1
	_, err = c.Decrypt(ctx, &kms.DecryptInput{KeyId: encID, CiphertextBlob: tampered, EncryptionAlgorithm: sm2pke})
	wantAPIError(t, err, "InvalidCiphertextException", "")

	sym := createKey(t, c, &kms.CreateKeyInput{})
	re, err := c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: asn1CT, SourceKeyId: encID, SourceEncryptionAlgorithm: sm2pke, DestinationKeyId: sym.KeyId})
	mustNoErr(t, err, "ReEncrypt SM2 -> symmetric")
	back, err := c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: re.CiphertextBlob, DestinationKeyId: encID, DestinationEncryptionAlgorithm: sm2pke})
	mustNoErr(t, err, "ReEncrypt symmetric -> SM2")
	if back.DestinationKeyMaterialId != nil || back.DestinationEncryptionAlgorithm != sm2pke {
		t.Errorf("ReEncrypt to SM2 = material %v, algorithm %s", back.DestinationKeyMaterialId, back.DestinationEncryptionAlgorithm)
	}
	dec, err = c.Decrypt(ctx, &kms.DecryptInput{KeyId: encID, CiphertextBlob: back.CiphertextBlob, EncryptionAlgorithm: sm2pke})
	mustNoErr(t, err, "Decrypt the ReEncrypted ciphertext")
	if !bytes.Equal(dec.Plaintext, secret) {
		t.Error("ReEncrypt round trip lost the plaintext")
	}

	// DeriveSharedSecret: the same secret as gmsm's ECDH offline.
	peer, err := sm2.GenerateKey(rand.Reader)
	mustNoErr(t, err, "sm2.GenerateKey")
	peerDER, err := smx509.MarshalPKIXPublicKey(&peer.PublicKey)
	mustNoErr(t, err, "smx509.MarshalPKIXPublicKey")
	ds, err := c.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: agreeID, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: peerDER})
	mustNoErr(t, err, "DeriveSharedSecret")
	peerECDH, err := gmecdh.P256().NewPrivateKey(peer.D.FillBytes(make([]byte, 32)))
	mustNoErr(t, err, "gmecdh private key")
	kmsPub := pubs[types.KeyUsageTypeKeyAgreement]
	kmsECDH, err := gmecdh.P256().NewPublicKey(elliptic.Marshal(kmsPub.Curve, kmsPub.X, kmsPub.Y)) //nolint:staticcheck // the SM2 curve has no crypto/ecdh form
	mustNoErr(t, err, "gmecdh public key")
	want, err := peerECDH.ECDH(kmsECDH)
	mustNoErr(t, err, "gmecdh ECDH")
	if !bytes.Equal(ds.SharedSecret, want) || len(want) != 32 || ds.KeyAgreementAlgorithm != types.KeyAgreementAlgorithmSpecEcdh {
		t.Errorf("DeriveSharedSecret = %x, gmsm derives %x", ds.SharedSecret, want)
	}
	nist, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mustNoErr(t, err, "P-256 key")
	nistDER, err := x509.MarshalPKIXPublicKey(&nist.PublicKey)
	mustNoErr(t, err, "MarshalPKIXPublicKey")
	_, err = c.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: agreeID, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: nistDER})
	wantAPIError(t, err, "ValidationException", "PublicKey is on the curve of ECC_NIST_P256, the KMS key on that of SM2")
	_, err = c.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: signID, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: peerDER})
	wantAPIError(t, err, "InvalidKeyUsageException", "key usage is SIGN_VERIFY which is not valid for DeriveSharedSecret.")
	_, err = c.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: agreeID, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: peerDER, DryRun: aws.Bool(true)})
	wantAPIError(t, err, "DryRunOperationException", "")

	srv.Restart(t)
	c = srv.KMS(sm2Region)
	_, err = c.Verify(ctxT(t), &kms.VerifyInput{KeyId: signID, Message: msg, Signature: raw.Signature, SigningAlgorithm: sm2dsa})
	mustNoErr(t, err, "Verify after restart")
	dec, err = c.Decrypt(ctxT(t), &kms.DecryptInput{KeyId: encID, CiphertextBlob: asn1CT, EncryptionAlgorithm: sm2pke})
	mustNoErr(t, err, "Decrypt after restart")
	if !bytes.Equal(dec.Plaintext, secret) {
		t.Error("Decrypt after restart lost the plaintext")
	}
}

// TestSM2DataKeyPairs: KeyPairSpec SM2 in the China regions (the private key
// a PKCS#8 SM2 key gmsm parses, matching the public key; the encrypted copy
// decrypts to it), refused elsewhere.
func TestSM2DataKeyPairs(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS("cn-northwest-1")
	ctx := ctxT(t)
	sym := createKey(t, c, &kms.CreateKeyInput{})
	pair, err := c.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: sym.KeyId, KeyPairSpec: types.DataKeyPairSpecSm2})
	mustNoErr(t, err, "GenerateDataKeyPair SM2")
	pub := parseSM2SPKI(t, pair.PublicKey)
	priv, err := smx509.ParsePKCS8PrivateKey(pair.PrivateKeyPlaintext)
	mustNoErr(t, err, "smx509.ParsePKCS8PrivateKey")
	sk, ok := priv.(*sm2.PrivateKey)
	if !ok || !sk.PublicKey.Equal(pub) || pair.KeyPairSpec != types.DataKeyPairSpecSm2 {
		t.Fatalf("GenerateDataKeyPair SM2: private key %T does not match the public key", priv)
	}
	dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: pair.PrivateKeyCiphertextBlob})
	mustNoErr(t, err, "Decrypt the private key")
	if !bytes.Equal(dec.Plaintext, pair.PrivateKeyPlaintext) {
		t.Error("the encrypted private key does not decrypt to the plaintext one")
	}
	sig, err := sk.Sign(rand.Reader, []byte("m"), sm2.NewSM2SignerOption(true, nil))
	mustNoErr(t, err, "sign with the data key pair")
	if !sm2.VerifyASN1WithSM2(pub, nil, []byte("m"), sig) {
		t.Error("the data key pair does not sign and verify")
	}
	wo, err := c.GenerateDataKeyPairWithoutPlaintext(ctx, &kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: sym.KeyId, KeyPairSpec: types.DataKeyPairSpecSm2})
	mustNoErr(t, err, "GenerateDataKeyPairWithoutPlaintext SM2")
	dec, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: wo.PrivateKeyCiphertextBlob})
	mustNoErr(t, err, "Decrypt the private key")
	priv, err = smx509.ParsePKCS8PrivateKey(dec.Plaintext)
	if err != nil || !priv.(*sm2.PrivateKey).PublicKey.Equal(parseSM2SPKI(t, wo.PublicKey)) {
		t.Errorf("GenerateDataKeyPairWithoutPlaintext SM2: the private key does not match the public key (%v)", err)
	}
}

// TestSM2OutsideChina: outside the China regions SM2 is refused as AWS
// refuses it (UnsupportedOperationException), for every usage and for data
// key pairs, also in GovCloud.
func TestSM2OutsideChina(t *testing.T) {
	srv := keyfortest.Start(t)
	for _, region := range []string{"us-east-1", "eu-west-1", "us-gov-west-1"} {
		c := srv.KMS(region)
		for _, u := range []types.KeyUsageType{types.KeyUsageTypeSignVerify, types.KeyUsageTypeEncryptDecrypt, types.KeyUsageTypeKeyAgreement} {
			_, err := c.CreateKey(ctxT(t), &kms.CreateKeyInput{KeySpec: types.KeySpecSm2, KeyUsage: u})
			wantAPIError(t, err, "UnsupportedOperationException", "KeySpec SM2 is not supported in this Region")
		}
		_, err := c.CreateKey(ctxT(t), &kms.CreateKeyInput{CustomerMasterKeySpec: types.CustomerMasterKeySpecSm2, KeyUsage: types.KeyUsageTypeSignVerify})
		wantAPIError(t, err, "UnsupportedOperationException", "KeySpec SM2 is not supported in this Region")
		sym := createKey(t, c, &kms.CreateKeyInput{})
		_, err = c.GenerateDataKeyPair(ctxT(t), &kms.GenerateDataKeyPairInput{KeyId: sym.KeyId, KeyPairSpec: types.DataKeyPairSpecSm2})
		wantAPIError(t, err, "UnsupportedOperationException", "KeyPairSpec SM2 is supported only in the AWS China regions.")
	}
	// In China, SM2 keeps AWS's usage rules: no MAC keys.
	_, err := srv.KMS(sm2Region).CreateKey(ctxT(t), &kms.CreateKeyInput{KeySpec: types.KeySpecSm2, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
	wantAPIError(t, err, "ValidationException", "KeyUsage GENERATE_VERIFY_MAC is not compatible with KeySpec SM2")
	// Without KeyUsage, an SM2 key is an ENCRYPT_DECRYPT key.
	md := createKey(t, srv.KMS(sm2Region), &kms.CreateKeyInput{KeySpec: types.KeySpecSm2})
	if md.KeyUsage != types.KeyUsageTypeEncryptDecrypt {
		t.Errorf("SM2 key without KeyUsage has usage %s", md.KeyUsage)
	}
}

// TestSM2OpenSSL: OpenSSL (3.x, which has SM2 and SM3) verifies Keyfort's
// SM2DSA signatures of RAW messages with the distinguishing ID AWS uses,
// and encrypts to an SM2 key's public key (GM/T 0009 ASN.1 ciphertext) for
// Decrypt.
func TestSM2OpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl")
	}
	if b, err := exec.Command("openssl", "list", "-public-key-algorithms").CombinedOutput(); err != nil || !strings.Contains(string(b), "SM2") {
		t.Skip("this openssl has no SM2")
	}
	srv := keyfortest.Start(t)
	c := srv.KMS(sm2Region)
	ctx := ctxT(t)
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		b, err := exec.Command("openssl", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, b)
		}
		return string(b)
	}

	sign := createKey(t, c, &kms.CreateKeyInput{KeySpec: types.KeySpecSm2, KeyUsage: types.KeyUsageTypeSignVerify})
	pk, err := c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: sign.KeyId})
	mustNoErr(t, err, "GetPublicKey")
	signPEM := writePEM(t, dir, "sign.pem", pk.PublicKey)
	msg := []byte("verified by openssl")
	msgFile, sigFile := filepath.Join(dir, "msg"), filepath.Join(dir, "sig")
	if err := os.WriteFile(msgFile, msg, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := c.Sign(ctx, &kms.SignInput{KeyId: sign.KeyId, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecSm2dsa})
	mustNoErr(t, err, "Sign")
	if err := os.WriteFile(sigFile, out.Signature, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := run("dgst", "-sm3", "-verify", signPEM, "-signature", sigFile, "-sigopt", "distid:1234567812345678", msgFile); !strings.Contains(got, "Verified OK") {
		t.Fatalf("openssl dgst -sm3 -verify: %s", got)
	}

	enc := createKey(t, c, &kms.CreateKeyInput{KeySpec: types.KeySpecSm2, KeyUsage: types.KeyUsageTypeEncryptDecrypt})
	pk, err = c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: enc.KeyId})
	mustNoErr(t, err, "GetPublicKey")
	encPEM := writePEM(t, dir, "enc.pem", pk.PublicKey)
	ptFile, ctFile := filepath.Join(dir, "pt"), filepath.Join(dir, "ct")
	if err := os.WriteFile(ptFile, []byte("encrypted by openssl"), 0o600); err != nil {
		t.Fatal(err)
	}
	run("pkeyutl", "-encrypt", "-pubin", "-inkey", encPEM, "-in", ptFile, "-out", ctFile)
	ct, err := os.ReadFile(ctFile)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := c.Decrypt(ctx, &kms.DecryptInput{KeyId: enc.KeyId, CiphertextBlob: ct, EncryptionAlgorithm: types.EncryptionAlgorithmSpecSm2pke})
	mustNoErr(t, err, "Decrypt openssl's ciphertext")
	if string(dec.Plaintext) != "encrypted by openssl" {
		t.Errorf("Decrypt = %q", dec.Plaintext)
	}
}

// TestSM2Authz: in strict auth, in cn-north-1, principals of the aws-cn
// partition: a principal without policies is denied every SM2 operation;
// a condition on kms:SigningAlgorithm SM2DSA and kms:MessageType lets a
// user sign only so; a grant lets the denied principal sign; and
// GetKeyLastUsage names the last Sign.
func TestSM2Authz(t *testing.T) {
	srv := startStrict(t, `principals:
  - arn: arn:aws-cn:iam::111122223333:root
    access_keys:
      - {id: AKIACNROOT00000001, secret: root-secret}
  - arn: arn:aws-cn:iam::111122223333:user/signer
    access_keys:
      - {id: AKIACNSIGNER000001, secret: signer-secret}
    policies:
      - '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Sign","Resource":"*","Condition":{"StringEquals":{"kms:SigningAlgorithm":"SM2DSA","kms:MessageType":"DIGEST"}}}]}'
  - arn: arn:aws-cn:iam::111122223333:user/nobody
    access_keys:
      - {id: AKIACNNOBODY000001, secret: nobody-secret}
`)
	cn := func(id, secret string) *kms.Client {
		cfg := srv.AWSConfig(id, sm2Region)
		cfg.Credentials = credentials.NewStaticCredentialsProvider(id, secret, "")
		return kms.NewFromConfig(cfg)
	}
	ctx := ctxT(t)
	root, signer, nobody := cn("AKIACNROOT00000001", "root-secret"), cn("AKIACNSIGNER000001", "signer-secret"), cn("AKIACNNOBODY000001", "nobody-secret")
	sign := createKey(t, root, &kms.CreateKeyInput{KeySpec: types.KeySpecSm2, KeyUsage: types.KeyUsageTypeSignVerify})
	enc := createKey(t, root, &kms.CreateKeyInput{KeySpec: types.KeySpecSm2, KeyUsage: types.KeyUsageTypeEncryptDecrypt})
	agree := createKey(t, root, &kms.CreateKeyInput{KeySpec: types.KeySpecSm2, KeyUsage: types.KeyUsageTypeKeyAgreement})
	sym := createKey(t, root, &kms.CreateKeyInput{})
	pub, err := root.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: agree.KeyId})
	mustNoErr(t, err, "GetPublicKey")
	ct, err := root.Encrypt(ctx, &kms.EncryptInput{KeyId: enc.KeyId, Plaintext: []byte("x"), EncryptionAlgorithm: types.EncryptionAlgorithmSpecSm2pke})
	mustNoErr(t, err, "Encrypt")
	msg := []byte("m")
	e := sm3.Sum(msg)
	sig, err := root.Sign(ctx, &kms.SignInput{KeyId: sign.KeyId, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecSm2dsa})
	mustNoErr(t, err, "Sign")

	denied := map[string]func() error{
		"Sign": func() error {
			_, err := nobody.Sign(ctx, &kms.SignInput{KeyId: sign.KeyId, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecSm2dsa})
			return err
		},
		"Verify": func() error {
			_, err := nobody.Verify(ctx, &kms.VerifyInput{KeyId: sign.KeyId, Message: msg, Signature: sig.Signature, SigningAlgorithm: types.SigningAlgorithmSpecSm2dsa})
			return err
		},
		"GetPublicKey": func() error {
			_, err := nobody.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: sign.KeyId})
			return err
		},
		"Encrypt": func() error {
			_, err := nobody.Encrypt(ctx, &kms.EncryptInput{KeyId: enc.KeyId, Plaintext: []byte("x"), EncryptionAlgorithm: types.EncryptionAlgorithmSpecSm2pke})
			return err
		},
		"Decrypt": func() error {
			_, err := nobody.Decrypt(ctx, &kms.DecryptInput{KeyId: enc.KeyId, CiphertextBlob: ct.CiphertextBlob, EncryptionAlgorithm: types.EncryptionAlgorithmSpecSm2pke})
			return err
		},
		"DeriveSharedSecret": func() error {
			_, err := nobody.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: agree.KeyId, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: pub.PublicKey})
			return err
		},
		"GenerateDataKeyPair": func() error {
			_, err := nobody.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: sym.KeyId, KeyPairSpec: types.DataKeyPairSpecSm2})
			return err
		},
		"CreateKey": func() error {
			_, err := nobody.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecSm2, KeyUsage: types.KeyUsageTypeSignVerify})
			return err
		},
	}
	for name, call := range denied {
		t.Run(name, func(t *testing.T) {
			wantAPIError(t, call(), "AccessDeniedException", "User: arn:aws-cn:iam::111122223333:user/nobody is not authorized to perform: kms:"+name)
		})
	}

	// The condition keys: DIGEST with SM2DSA only.
	_, err = signer.Sign(ctx, &kms.SignInput{KeyId: sign.KeyId, Message: e[:], MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecSm2dsa})
	mustNoErr(t, err, "Sign DIGEST as signer")
	_, err = signer.Sign(ctx, &kms.SignInput{KeyId: sign.KeyId, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecSm2dsa})
	wantAPIError(t, err, "AccessDeniedException", "kms:Sign")

	// A grant lets nobody sign.
	g, err := root.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: sign.KeyId, GranteePrincipal: aws.String("arn:aws-cn:iam::111122223333:user/nobody"),
		Operations: []types.GrantOperation{types.GrantOperationSign}})
	mustNoErr(t, err, "CreateGrant")
	_, err = nobody.Sign(ctx, &kms.SignInput{KeyId: sign.KeyId, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecSm2dsa, GrantTokens: []string{aws.ToString(g.GrantToken)}})
	mustNoErr(t, err, "Sign through the grant")
	_, err = root.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: sign.KeyId, GranteePrincipal: aws.String("arn:aws-cn:iam::111122223333:user/nobody"),
		Operations: []types.GrantOperation{types.GrantOperationEncrypt}})
	wantAPIError(t, err, "ValidationException", "")

	last, err := root.GetKeyLastUsage(ctx, &kms.GetKeyLastUsageInput{KeyId: sign.KeyId})
	mustNoErr(t, err, "GetKeyLastUsage")
	if last.KeyLastUsage == nil || last.KeyLastUsage.Operation != "Sign" {
		t.Errorf("GetKeyLastUsage of the SM2 key = %+v, want the last Sign", last.KeyLastUsage)
	}
}

// TestSM2ImportKeyMaterial: in the China Regions key material is imported
// with the SM2PKE wrapping algorithm and an SM2 wrapping key (and not with
// the RSA_AES_KEY_WRAP algorithms); an imported SM2 signing key signs as
// the local key does.
func TestSM2ImportKeyMaterial(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS(sm2Region)
	ctx := ctxT(t)
	md := createKey(t, c, &kms.CreateKeyInput{Origin: types.OriginTypeExternal, KeySpec: types.KeySpecSm2, KeyUsage: types.KeyUsageTypeSignVerify})
	_, err := c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: md.KeyId, WrappingAlgorithm: types.AlgorithmSpecRsaAesKeyWrapSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	wantAPIError(t, err, "ValidationException", "China")
	_, err = c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: md.KeyId, WrappingAlgorithm: types.AlgorithmSpecSm2pke, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	wantAPIError(t, err, "ValidationException", "SM2PKE")
	params, err := c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: md.KeyId, WrappingAlgorithm: types.AlgorithmSpecSm2pke, WrappingKeySpec: types.WrappingKeySpecSm2})
	mustNoErr(t, err, "GetParametersForImport SM2PKE")
	wrapPub := parseSM2SPKI(t, params.PublicKey)

	priv, err := sm2.GenerateKey(rand.Reader)
	mustNoErr(t, err, "sm2.GenerateKey")
	der, err := smx509.MarshalPKCS8PrivateKey(priv)
	mustNoErr(t, err, "smx509.MarshalPKCS8PrivateKey")
	wrapped, err := sm2.Encrypt(rand.Reader, wrapPub, der, sm2.ASN1EncrypterOpts)
	mustNoErr(t, err, "sm2.Encrypt")
	_, err = c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: md.KeyId, ImportToken: params.ImportToken, EncryptedKeyMaterial: wrapped,
		ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire})
	mustNoErr(t, err, "ImportKeyMaterial SM2")
	gp, err := c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: md.KeyId})
	mustNoErr(t, err, "GetPublicKey")
	if got := parseSM2SPKI(t, gp.PublicKey); !got.Equal(&priv.PublicKey) {
		t.Fatal("GetPublicKey of the imported SM2 key is not the imported key's")
	}
	msg := []byte("imported")
	sig, err := c.Sign(ctx, &kms.SignInput{KeyId: md.KeyId, Message: msg, MessageType: types.MessageTypeRaw, SigningAlgorithm: types.SigningAlgorithmSpecSm2dsa})
	mustNoErr(t, err, "Sign")
	if !sm2.VerifyASN1WithSM2(&priv.PublicKey, sm2DefaultID, msg, sig.Signature) {
		t.Fatal("the signature does not verify with the imported SM2 key")
	}
}
