// Command esdkgocheck runs the AWS Encryption SDK for Go (with AWS's
// Material Providers Library) against a Keyfort endpoint, for
// e2e/interop/esdkgo.sh: the KMS keyring, the multi-keyring, the discovery
// keyring, the KMS RSA keyring and the KMS ECDH keyring, each answer checked.
// It is its own module so that Keyfort's go.mod never sees the SDK.
//
//	esdkgocheck -endpoint http://127.0.0.1:PORT
//
// It prints a PASS: line per check and exits 0; the first failed check
// prints FAIL: and exits 1.
package main

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"strings"

	mpl "github.com/aws/aws-cryptographic-material-providers-library/releases/go/mpl/awscryptographymaterialproviderssmithygenerated"
	mpltypes "github.com/aws/aws-cryptographic-material-providers-library/releases/go/mpl/awscryptographymaterialproviderssmithygeneratedtypes"
	primitivestypes "github.com/aws/aws-cryptographic-material-providers-library/releases/go/primitives/awscryptographyprimitivessmithygeneratedtypes"
	esdk "github.com/aws/aws-encryption-sdk/releases/go/encryption-sdk/awscryptographyencryptionsdksmithygenerated"
	esdktypes "github.com/aws/aws-encryption-sdk/releases/go/encryption-sdk/awscryptographyencryptionsdksmithygeneratedtypes"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
)

var ctx = context.Background()

func fail(format string, a ...any) {
	fmt.Printf("FAIL: "+format+"\n", a...)
	os.Exit(1)
}

func pass(format string, a ...any) { fmt.Printf("PASS: "+format+"\n", a...) }

func must[T any](v T, err error) T {
	if err != nil {
		fail("%v", err)
	}
	return v
}

type checker struct {
	kms  *kms.Client
	mp   *mpl.Client
	sdk  *esdk.Client
	ec   map[string]string
	text []byte
}

func main() {
	endpoint := flag.String("endpoint", "", "Keyfort's endpoint")
	flag.Parse()
	cfg := must(config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1")))
	c := &checker{
		kms: kms.NewFromConfig(cfg, func(o *kms.Options) { o.BaseEndpoint = aws.String(*endpoint) }),
		mp:  must(mpl.NewClient(mpltypes.MaterialProvidersConfig{})),
		// The default client: RequireEncryptRequireDecrypt (committing suites only).
		sdk:  must(esdk.NewClient(esdktypes.AwsEncryptionSdkConfig{})),
		ec:   map[string]string{"purpose": "interop", "tenant": "keyfort"},
		text: bytes.Repeat([]byte("Keyfort and the AWS Encryption SDK for Go. "), 2000), // 86 KB: several frames
	}
	c.kmsKeyring()
	c.multiKeyring()
	c.rsaKeyring()
	c.ecdhKeyring()
}

func (c *checker) createKey(in *kms.CreateKeyInput) string {
	out := must(c.kms.CreateKey(ctx, in))
	return *out.KeyMetadata.Arn
}

func (c *checker) encrypt(kr mpltypes.IKeyring, suite *mpltypes.ESDKAlgorithmSuiteId) []byte {
	out, err := c.sdk.Encrypt(ctx, esdktypes.EncryptInput{Plaintext: c.text, EncryptionContext: c.ec, Keyring: kr, AlgorithmSuiteId: suite})
	if err != nil {
		fail("encrypt: %v", err)
	}
	return out.Ciphertext
}

func (c *checker) decrypt(kr mpltypes.IKeyring, msg []byte) ([]byte, error) {
	out, err := c.sdk.Decrypt(ctx, esdktypes.DecryptInput{Ciphertext: msg, EncryptionContext: c.ec, Keyring: kr})
	if err != nil {
		return nil, err
	}
	for k, v := range c.ec {
		if out.EncryptionContext[k] != v {
			return nil, fmt.Errorf("decrypted encryption context %v lacks %s=%s", out.EncryptionContext, k, v)
		}
	}
	return out.Plaintext, nil
}

func (c *checker) roundTrip(what string, enc, dec mpltypes.IKeyring, suite *mpltypes.ESDKAlgorithmSuiteId) []byte {
	msg := c.encrypt(enc, suite)
	pt, err := c.decrypt(dec, msg)
	if err != nil {
		fail("%s: decrypt: %v", what, err)
	}
	if !bytes.Equal(pt, c.text) {
		fail("%s: the decrypted text differs", what)
	}
	return msg
}

func (c *checker) kmsKeyring() {
	key := c.createKey(&kms.CreateKeyInput{Description: aws.String("esdk go symmetric")})
	kr := must(c.mp.CreateAwsKmsKeyring(ctx, mpltypes.CreateAwsKmsKeyringInput{KmsClient: c.kms, KmsKeyId: key}))
	msg := c.roundTrip("KMS keyring", kr, kr, nil)
	pass("KMS keyring (symmetric key ARN): an 86 KB message with encryption context, default committing suite with ECDSA P-384 (GenerateDataKey, Decrypt), round trips")

	// An altered body byte, an altered encrypted data key.
	bad := append([]byte(nil), msg...)
	bad[len(bad)-200] ^= 1
	if _, err := c.decrypt(kr, bad); err == nil {
		fail("a message with an altered byte decrypted")
	}
	pass("KMS keyring: a message with one altered byte does not decrypt")
	i := bytes.Index(msg, []byte("aws-kms"))
	if i < 0 {
		fail("no aws-kms encrypted data key in the message header")
	}
	bad = append([]byte(nil), msg...)
	bad[i+7+2+len(key)+2+40] ^= 1 // inside the KMS ciphertext blob after the provider info
	_, err := c.decrypt(kr, bad)
	if err == nil || !strings.Contains(err.Error(), "InvalidCiphertextException") {
		fail("a message whose encrypted data key was altered: %v", err)
	}
	pass("KMS keyring: an altered encrypted data key fails with KMS's InvalidCiphertextException")

	// A keyring of another key does not decrypt; the discovery keyring does,
	// and its filter is applied to the key ARN KMS answers with.
	other := c.createKey(&kms.CreateKeyInput{})
	kr2 := must(c.mp.CreateAwsKmsKeyring(ctx, mpltypes.CreateAwsKmsKeyringInput{KmsClient: c.kms, KmsKeyId: other}))
	if _, err := c.decrypt(kr2, msg); err == nil {
		fail("the keyring of another key decrypted the message")
	}
	pass("KMS keyring: the keyring of another key does not decrypt it")
	disc := must(c.mp.CreateAwsKmsDiscoveryKeyring(ctx, mpltypes.CreateAwsKmsDiscoveryKeyringInput{KmsClient: c.kms,
		DiscoveryFilter: &mpltypes.DiscoveryFilter{AccountIds: []string{"123456789012"}, Partition: "aws"}}))
	if pt, err := c.decrypt(disc, msg); err != nil || !bytes.Equal(pt, c.text) {
		fail("discovery keyring (account 123456789012, partition aws): %v", err)
	}
	pass("discovery keyring filtered to account 123456789012 in partition aws decrypts")
	disc2 := must(c.mp.CreateAwsKmsDiscoveryKeyring(ctx, mpltypes.CreateAwsKmsDiscoveryKeyringInput{KmsClient: c.kms,
		DiscoveryFilter: &mpltypes.DiscoveryFilter{AccountIds: []string{"111122223333"}, Partition: "aws"}}))
	if _, err := c.decrypt(disc2, msg); err == nil {
		fail("a discovery keyring for another account decrypted")
	}
	pass("discovery keyring filtered to another account does not")

	// A disabled key.
	if _, err := c.kms.DisableKey(ctx, &kms.DisableKeyInput{KeyId: &key}); err != nil {
		fail("disable: %v", err)
	}
	_, err = c.decrypt(kr, msg)
	if err == nil || !strings.Contains(err.Error(), "DisabledException") || !strings.Contains(err.Error(), key+" is disabled.") {
		fail("decrypt with the key disabled: %v", err)
	}
	_, err = c.sdk.Encrypt(ctx, esdktypes.EncryptInput{Plaintext: c.text, EncryptionContext: c.ec, Keyring: kr})
	if err == nil || !strings.Contains(err.Error(), "DisabledException") {
		fail("encrypt with the key disabled: %v", err)
	}
	pass("disabled key: encrypt and decrypt fail with DisabledException (%s is disabled.)", key)
	if _, err := c.kms.EnableKey(ctx, &kms.EnableKeyInput{KeyId: &key}); err != nil {
		fail("enable: %v", err)
	}
	if _, err := c.decrypt(kr, msg); err != nil {
		fail("decrypt after enabling: %v", err)
	}
	pass("enabled again: it decrypts")
}

func (c *checker) multiKeyring() {
	gen := c.createKey(&kms.CreateKeyInput{})
	k2 := c.createKey(&kms.CreateKeyInput{})
	k3 := c.createKey(&kms.CreateKeyInput{})
	alias := "alias/esdk-go-third"
	if _, err := c.kms.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: &alias, TargetKeyId: &k3}); err != nil {
		fail("alias: %v", err)
	}
	// The default client supplier makes its own KMS clients: they reach
	// Keyfort through AWS_ENDPOINT_URL_KMS, which esdkgo.sh sets.
	multi, err := c.mp.CreateAwsKmsMultiKeyring(ctx, mpltypes.CreateAwsKmsMultiKeyringInput{Generator: &gen, KmsKeyIds: []string{k2, k3}})
	if err != nil {
		fail("multi-keyring: %v", err)
	}
	msg := c.encrypt(multi, nil)
	for _, k := range []string{gen, k2, k3} {
		kr := must(c.mp.CreateAwsKmsKeyring(ctx, mpltypes.CreateAwsKmsKeyringInput{KmsClient: c.kms, KmsKeyId: k}))
		if pt, err := c.decrypt(kr, msg); err != nil || !bytes.Equal(pt, c.text) {
			fail("multi-keyring message with the keyring of %s: %v", k, err)
		}
	}
	pass("multi-keyring (generator and two more keys, clients from AWS_ENDPOINT_URL_KMS): each key's own keyring decrypts the message (GenerateDataKey, then Encrypt of the same data key under each)")
	kra := must(c.mp.CreateAwsKmsKeyring(ctx, mpltypes.CreateAwsKmsKeyringInput{KmsClient: c.kms,
		KmsKeyId: "arn:aws:kms:us-east-1:123456789012:" + alias}))
	msga := c.encrypt(kra, nil)
	kr3 := must(c.mp.CreateAwsKmsKeyring(ctx, mpltypes.CreateAwsKmsKeyringInput{KmsClient: c.kms, KmsKeyId: k3}))
	if _, err := c.decrypt(kr3, msga); err != nil {
		fail("a message encrypted through the alias ARN, decrypted with the key ARN: %v", err)
	}
	pass("KMS keyring on an alias ARN: the message records the key ARN KMS answered with, and the key's keyring decrypts it")
}

func (c *checker) rsaKeyring() {
	key := c.createKey(&kms.CreateKeyInput{KeySpec: kmstypes.KeySpecRsa3072, KeyUsage: kmstypes.KeyUsageTypeEncryptDecrypt})
	pub := must(c.kms.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: &key}))
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub.PublicKey})
	kr, err := c.mp.CreateAwsKmsRsaKeyring(ctx, mpltypes.CreateAwsKmsRsaKeyringInput{KmsClient: c.kms, KmsKeyId: key,
		PublicKey: pemKey, EncryptionAlgorithm: kmstypes.EncryptionAlgorithmSpecRsaesOaepSha256})
	if err != nil {
		fail("KMS RSA keyring: %v", err)
	}
	// The KMS RSA keyring takes no signing suite.
	suite := mpltypes.ESDKAlgorithmSuiteIdAlgAes256GcmHkdfSha512CommitKey
	c.roundTrip("KMS RSA keyring", kr, kr, &suite)
	pass("KMS RSA keyring (RSA_3072, RSAES_OAEP_SHA_256): the SDK encrypts the data key with GetPublicKey's key itself, KMS Decrypt opens it")
	// An encrypt-only RSA keyring (no KMS key): the public key alone.
	encOnly, err := c.mp.CreateAwsKmsRsaKeyring(ctx, mpltypes.CreateAwsKmsRsaKeyringInput{KmsKeyId: key,
		PublicKey: pemKey, EncryptionAlgorithm: kmstypes.EncryptionAlgorithmSpecRsaesOaepSha256})
	if err != nil {
		fail("encrypt-only KMS RSA keyring: %v", err)
	}
	msg := c.encrypt(encOnly, &suite)
	if pt, err := c.decrypt(kr, msg); err != nil || !bytes.Equal(pt, c.text) {
		fail("a message of the encrypt-only RSA keyring: %v", err)
	}
	pass("an encrypt-only KMS RSA keyring (public key, no client) encrypts offline; the keyring with the client decrypts through KMS")
}

func (c *checker) ecdhKeyring() {
	curve := primitivestypes.ECDHCurveSpecEccNistP256
	sender := c.createKey(&kms.CreateKeyInput{KeySpec: kmstypes.KeySpecEccNistP256, KeyUsage: kmstypes.KeyUsageTypeKeyAgreement})
	recipient := c.createKey(&kms.CreateKeyInput{KeySpec: kmstypes.KeySpecEccNistP256, KeyUsage: kmstypes.KeyUsageTypeKeyAgreement})
	senderPub := must(c.kms.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: &sender})).PublicKey
	recipientPub := must(c.kms.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: &recipient})).PublicKey

	// KMS to KMS: the sender's KMS key with the recipient's public key; the
	// recipient's KMS key with the sender's public key from the message.
	enc := must(c.mp.CreateAwsKmsEcdhKeyring(ctx, mpltypes.CreateAwsKmsEcdhKeyringInput{CurveSpec: curve, KmsClient: c.kms,
		KeyAgreementScheme: &mpltypes.KmsEcdhStaticConfigurationsMemberKmsPrivateKeyToStaticPublicKey{Value: mpltypes.KmsPrivateKeyToStaticPublicKeyInput{
			SenderKmsIdentifier: sender, SenderPublicKey: senderPub, RecipientPublicKey: recipientPub}}}))
	dec := must(c.mp.CreateAwsKmsEcdhKeyring(ctx, mpltypes.CreateAwsKmsEcdhKeyringInput{CurveSpec: curve, KmsClient: c.kms,
		KeyAgreementScheme: &mpltypes.KmsEcdhStaticConfigurationsMemberKmsPublicKeyDiscovery{Value: mpltypes.KmsPublicKeyDiscoveryInput{
			RecipientKmsIdentifier: recipient}}}))
	c.roundTrip("KMS ECDH keyring", enc, dec, nil)
	pass("KMS ECDH keyring (ECC_NIST_P256 KEY_AGREEMENT keys): the sender's DeriveSharedSecret and the recipient's give the same secret")

	// KMS to a local key: the recipient's private key never reaches KMS, so
	// the SDK computes the shared secret itself and it must equal what
	// Keyfort's DeriveSharedSecret gave the sender.
	local := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	localPub := must(x509.MarshalPKIXPublicKey(&local.PublicKey))
	localPriv := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(local))})
	enc2 := must(c.mp.CreateAwsKmsEcdhKeyring(ctx, mpltypes.CreateAwsKmsEcdhKeyringInput{CurveSpec: curve, KmsClient: c.kms,
		KeyAgreementScheme: &mpltypes.KmsEcdhStaticConfigurationsMemberKmsPrivateKeyToStaticPublicKey{Value: mpltypes.KmsPrivateKeyToStaticPublicKeyInput{
			SenderKmsIdentifier: sender, SenderPublicKey: senderPub, RecipientPublicKey: localPub}}}))
	raw := must(c.mp.CreateRawEcdhKeyring(ctx, mpltypes.CreateRawEcdhKeyringInput{CurveSpec: curve,
		KeyAgreementScheme: &mpltypes.RawEcdhStaticConfigurationsMemberPublicKeyDiscovery{Value: mpltypes.PublicKeyDiscoveryInput{
			RecipientStaticPrivateKey: localPriv}}}))
	c.roundTrip("KMS ECDH to a local key", enc2, raw, nil)
	pass("KMS ECDH keyring to a local P-256 key: the raw ECDH keyring decrypts with the local private key (Keyfort's shared secret is the raw ECDH secret, as AWS's)")

	// And the Go standard library agrees on the secret itself.
	out := must(c.kms.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: &sender,
		KeyAgreementAlgorithm: kmstypes.KeyAgreementAlgorithmSpecEcdh, PublicKey: localPub}))
	lp := must(local.ECDH())
	sp := must(x509.ParsePKIXPublicKey(senderPub)).(*ecdsa.PublicKey)
	spe := must(sp.ECDH())
	want := must(lp.ECDH(spe))
	if !bytes.Equal(out.SharedSecret, want) {
		fail("DeriveSharedSecret differs from crypto/ecdh's secret")
	}
	if _, err := ecdh.P256().NewPublicKey(spe.Bytes()); err != nil {
		fail("sender public key: %v", err)
	}
	pass("DeriveSharedSecret equals crypto/ecdh's P-256 secret of the local private key and GetPublicKey's key (%d bytes)", len(out.SharedSecret))

	// A signing key is not a key agreement key.
	signKey := c.createKey(&kms.CreateKeyInput{KeySpec: kmstypes.KeySpecEccNistP256, KeyUsage: kmstypes.KeyUsageTypeSignVerify})
	signPub := must(c.kms.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: &signKey})).PublicKey
	bad := must(c.mp.CreateAwsKmsEcdhKeyring(ctx, mpltypes.CreateAwsKmsEcdhKeyringInput{CurveSpec: curve, KmsClient: c.kms,
		KeyAgreementScheme: &mpltypes.KmsEcdhStaticConfigurationsMemberKmsPrivateKeyToStaticPublicKey{Value: mpltypes.KmsPrivateKeyToStaticPublicKeyInput{
			SenderKmsIdentifier: signKey, SenderPublicKey: signPub, RecipientPublicKey: recipientPub}}}))
	_, err := c.sdk.Encrypt(ctx, esdktypes.EncryptInput{Plaintext: c.text, EncryptionContext: c.ec, Keyring: bad})
	var want2 = signKey + " key usage is SIGN_VERIFY which is not valid for DeriveSharedSecret."
	if err == nil || !strings.Contains(err.Error(), "InvalidKeyUsageException") || !strings.Contains(err.Error(), want2) {
		fail("ECDH keyring on a SIGN_VERIFY key: %v", err)
	}
	pass("KMS ECDH keyring on a SIGN_VERIFY key: InvalidKeyUsageException (%s)", want2)
}
