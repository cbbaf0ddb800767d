package e2e

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyfort/keyfort/internal/keyfortest"
	"github.com/keyfort/keyfort/internal/keymaterial"
	"github.com/keyfort/keyfort/internal/keywrap"
)

// importParams calls GetParametersForImport and parses the wrapping key.
func importParams(t *testing.T, c *kms.Client, keyID string, alg types.AlgorithmSpec, spec types.WrappingKeySpec) (*rsa.PublicKey, []byte) {
	t.Helper()
	out, err := c.GetParametersForImport(ctxT(t), &kms.GetParametersForImportInput{KeyId: aws.String(keyID), WrappingAlgorithm: alg, WrappingKeySpec: spec})
	mustNoErr(t, err, "GetParametersForImport")
	pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		t.Fatalf("GetParametersForImport PublicKey is not DER SubjectPublicKeyInfo: %v", err)
	}
	rsaPub, ok := pub.(*rsa.PublicKey)
	if !ok {
		t.Fatalf("GetParametersForImport PublicKey is a %T, want an RSA key", pub)
	}
	return rsaPub, out.ImportToken
}

// wrapMaterial wraps material as a client does for alg: RSA-OAEP (MGF1 with
// the same hash), or for RSA_AES_KEY_WRAP an AES-256 key RSA-OAEP
// encrypted followed by the material under it with AES-KWP (RFC 5649).
func wrapMaterial(t *testing.T, pub *rsa.PublicKey, alg types.AlgorithmSpec, material []byte) []byte {
	t.Helper()
	var h hash.Hash = sha256.New()
	if strings.HasSuffix(string(alg), "SHA_1") {
		h = sha1.New()
	}
	if strings.HasPrefix(string(alg), "RSAES_OAEP") {
		ct, err := rsa.EncryptOAEP(h, rand.Reader, pub, material, nil)
		mustNoErr(t, err, "wrap the material with RSA-OAEP")
		return ct
	}
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	ek, err := rsa.EncryptOAEP(h, rand.Reader, pub, kek, nil)
	mustNoErr(t, err, "wrap the AES key with RSA-OAEP")
	wm, err := keywrap.Wrap(kek, material)
	mustNoErr(t, err, "wrap the material with AES-KWP")
	return append(ek, wm...)
}

// importMaterial runs GetParametersForImport and ImportKeyMaterial for
// material with the given wrapping; in sets the other members.
func importMaterial(t *testing.T, c *kms.Client, keyID string, alg types.AlgorithmSpec, spec types.WrappingKeySpec, material []byte, in *kms.ImportKeyMaterialInput) (*kms.ImportKeyMaterialOutput, error) {
	t.Helper()
	pub, token := importParams(t, c, keyID, alg, spec)
	if in == nil {
		in = &kms.ImportKeyMaterialInput{ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire}
	}
	in.KeyId, in.ImportToken, in.EncryptedKeyMaterial = aws.String(keyID), token, wrapMaterial(t, pub, alg, material)
	return c.ImportKeyMaterial(ctxT(t), in)
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func describe(t *testing.T, c *kms.Client, keyID string) *types.KeyMetadata {
	t.Helper()
	d, err := c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
	mustNoErr(t, err, "DescribeKey")
	return d.KeyMetadata
}

// notOnDisk fails when a file under dir holds one of the needles.
func notOnDisk(t *testing.T, dir string, needles map[string][]byte) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for name, n := range needles {
			if bytes.Contains(b, n) || bytes.Contains(b, []byte(hex.EncodeToString(n))) {
				t.Errorf("%s holds %s", path, name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestKMSImportSymmetric: a symmetric key of origin EXTERNAL from creation
// through import, use, deletion of its material, reimport and a restart.
// The imported material is the one Keyfort encrypts with: a ciphertext
// opens locally with it.
func TestKMSImportSymmetric(t *testing.T) {
	srv := startAudited(t)
	c := srv.KMS()
	ctx := ctxT(t)

	md := createKey(t, c, &kms.CreateKeyInput{Origin: types.OriginTypeExternal, Description: aws.String("imported")})
	id, arn := aws.ToString(md.KeyId), aws.ToString(md.Arn)
	if md.KeyState != types.KeyStatePendingImport || md.Enabled || md.Origin != types.OriginTypeExternal ||
		md.CurrentKeyMaterialId != nil || md.ExpirationModel != "" || md.ValidTo != nil {
		t.Fatalf("new EXTERNAL key: state %s, enabled %v, origin %s, CurrentKeyMaterialId %v, ExpirationModel %q, ValidTo %v; want PendingImport, false, EXTERNAL and none of the rest",
			md.KeyState, md.Enabled, md.Origin, md.CurrentKeyMaterialId, md.ExpirationModel, md.ValidTo)
	}
	pending := arn + " is pending import."
	_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x")})
	wantExactAPIError(t, err, "KMSInvalidStateException", pending)
	_, err = c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: md.KeyId})
	wantExactAPIError(t, err, "KMSInvalidStateException", pending)
	_, err = c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: md.KeyId})
	wantExactAPIError(t, err, "UnsupportedOperationException", arn+" origin is EXTERNAL which is not valid for this operation.")
	_, err = c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: md.KeyId})
	wantExactAPIError(t, err, "KMSInvalidStateException", pending)

	// GetParametersForImport: a 24-hour RSA wrapping key of the size asked.
	before := time.Now()
	params, err := c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: md.KeyId,
		WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	mustNoErr(t, err, "GetParametersForImport")
	if aws.ToString(params.KeyId) != arn {
		t.Errorf("GetParametersForImport KeyId = %q, want the key ARN", aws.ToString(params.KeyId))
	}
	if v := params.ParametersValidTo; v == nil || v.Before(before.Add(24*time.Hour-time.Minute)) || v.After(time.Now().Add(24*time.Hour+time.Minute)) {
		t.Errorf("ParametersValidTo = %v, want 24 hours from now", v)
	}
	pub, err := x509.ParsePKIXPublicKey(params.PublicKey)
	if err != nil || pub.(*rsa.PublicKey).N.BitLen() != 2048 {
		t.Fatalf("PublicKey: %v, want an RSA_2048 SubjectPublicKeyInfo", err)
	}
	_, err = c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: md.KeyId,
		WrappingAlgorithm: types.AlgorithmSpecRsaesPkcs1V15, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	wantAPIError(t, err, "ValidationException", "RSAES_PKCS1_V1_5")
	_, err = c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: md.KeyId,
		WrappingAlgorithm: types.AlgorithmSpecSm2pke, WrappingKeySpec: types.WrappingKeySpecSm2})
	wantAPIError(t, err, "ValidationException", "China")

	material := randomBytes(t, 32)
	rsaPub := pub.(*rsa.PublicKey)
	wrapped := wrapMaterial(t, rsaPub, types.AlgorithmSpecRsaesOaepSha256, material)

	// ImportKeyMaterial's parameter rules, before anything is unwrapped.
	_, err = c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: md.KeyId, ImportToken: params.ImportToken, EncryptedKeyMaterial: wrapped})
	wantExactAPIError(t, err, "ValidationException", "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES")
	for _, v := range []time.Time{time.Now().Add(-time.Minute), time.Now().Add(366 * 24 * time.Hour)} {
		_, err = c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: md.KeyId, ImportToken: params.ImportToken, EncryptedKeyMaterial: wrapped,
			ExpirationModel: types.ExpirationModelTypeKeyMaterialExpires, ValidTo: aws.Time(v)})
		wantAPIError(t, err, "ValidationException", "validTo")
	}
	_, err = c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: md.KeyId, ImportToken: params.ImportToken, EncryptedKeyMaterial: wrapped,
		ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire, ValidTo: aws.Time(time.Now().Add(time.Hour))})
	wantAPIError(t, err, "ValidationException", "validTo")

	// A token of another key, bytes that are no token, a tampered wrap,
	// material of the wrong length.
	other := createKey(t, c, &kms.CreateKeyInput{Origin: types.OriginTypeExternal})
	_, otherToken := importParams(t, c, aws.ToString(other.KeyId), types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048)
	noExpiry := types.ExpirationModelTypeKeyMaterialDoesNotExpire
	for _, token := range [][]byte{otherToken, []byte("not a token")} {
		_, err = c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: md.KeyId, ImportToken: token, EncryptedKeyMaterial: wrapped, ExpirationModel: noExpiry})
		wantAPIError(t, err, "InvalidImportTokenException", arn)
	}
	tampered := bytes.Clone(wrapped)
	tampered[len(tampered)/2] ^= 1
	_, err = c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: md.KeyId, ImportToken: params.ImportToken, EncryptedKeyMaterial: tampered, ExpirationModel: noExpiry})
	wantExactAPIError(t, err, "InvalidCiphertextException", "")
	_, err = c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: md.KeyId, ImportToken: params.ImportToken,
		EncryptedKeyMaterial: wrapMaterial(t, rsaPub, types.AlgorithmSpecRsaesOaepSha256, material[:16]), ExpirationModel: noExpiry})
	wantAPIError(t, err, "IncorrectKeyMaterialException", "SYMMETRIC_DEFAULT")
	// A token used with the wrong algorithm's wrapping does not unwrap.
	_, err = c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: md.KeyId, ImportToken: params.ImportToken,
		EncryptedKeyMaterial: wrapMaterial(t, rsaPub, types.AlgorithmSpecRsaesOaepSha1, material), ExpirationModel: noExpiry})
	wantExactAPIError(t, err, "InvalidCiphertextException", "")
	if d := describe(t, c, id); d.KeyState != types.KeyStatePendingImport {
		t.Fatalf("after refused imports the key is %s, want PendingImport", d.KeyState)
	}

	// The import.
	imp, err := c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: md.KeyId, ImportToken: params.ImportToken, EncryptedKeyMaterial: wrapped, ExpirationModel: noExpiry})
	mustNoErr(t, err, "ImportKeyMaterial")
	matID := aws.ToString(imp.KeyMaterialId)
	if aws.ToString(imp.KeyId) != arn || len(matID) != 64 || strings.Trim(matID, "0123456789abcdef") != "" {
		t.Fatalf("ImportKeyMaterial = KeyId %q, KeyMaterialId %q; want the key ARN and 64 hex digits", aws.ToString(imp.KeyId), matID)
	}
	d := describe(t, c, id)
	if d.KeyState != types.KeyStateEnabled || !d.Enabled || d.ExpirationModel != noExpiry || d.ValidTo != nil || aws.ToString(d.CurrentKeyMaterialId) != matID {
		t.Fatalf("after import: state %s, ExpirationModel %q, ValidTo %v, CurrentKeyMaterialId %q; want Enabled, KEY_MATERIAL_DOES_NOT_EXPIRE, none, %s",
			d.KeyState, d.ExpirationModel, d.ValidTo, aws.ToString(d.CurrentKeyMaterialId), matID)
	}

	ec := map[string]string{"purpose": "import test"}
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("secret words"), EncryptionContext: ec})
	mustNoErr(t, err, "Encrypt")
	aead, err := keymaterial.NewAEAD(material)
	mustNoErr(t, err, "AES-GCM of the material")
	if pt, err := keymaterial.DecryptWithAEAD(aead, arn, ec, enc.CiphertextBlob); err != nil || string(pt) != "secret words" {
		t.Fatalf("the ciphertext does not open under the imported material: %q, %v", pt, err)
	}
	dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	mustNoErr(t, err, "Decrypt")
	if string(dec.Plaintext) != "secret words" || aws.ToString(dec.KeyId) != arn {
		t.Fatalf("Decrypt = %q under %q", dec.Plaintext, aws.ToString(dec.KeyId))
	}
	// Automatic rotation is not for imported keys; its status says off.
	_, err = c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: md.KeyId})
	wantExactAPIError(t, err, "UnsupportedOperationException", arn+" origin is EXTERNAL which is not valid for this operation.")
	st, err := c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: md.KeyId})
	mustNoErr(t, err, "GetKeyRotationStatus")
	if st.KeyRotationEnabled {
		t.Error("GetKeyRotationStatus of an imported key: enabled")
	}

	// Other material: refused as not the key's. The same material again:
	// accepted, with a new expiration.
	_, err = importMaterial(t, c, id, types.AlgorithmSpecRsaAesKeyWrapSha256, types.WrappingKeySpecRsa2048, randomBytes(t, 32), nil)
	wantAPIError(t, err, "IncorrectKeyMaterialException", arn)
	validTo := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	re, err := importMaterial(t, c, id, types.AlgorithmSpecRsaAesKeyWrapSha1, types.WrappingKeySpecRsa3072, material,
		&kms.ImportKeyMaterialInput{ExpirationModel: types.ExpirationModelTypeKeyMaterialExpires, ValidTo: aws.Time(validTo)})
	mustNoErr(t, err, "ImportKeyMaterial of the same material (RSA_AES_KEY_WRAP_SHA_1)")
	if aws.ToString(re.KeyMaterialId) != matID {
		t.Errorf("reimport KeyMaterialId = %s, want %s", aws.ToString(re.KeyMaterialId), matID)
	}
	if d := describe(t, c, id); d.ExpirationModel != types.ExpirationModelTypeKeyMaterialExpires || d.ValidTo == nil || !d.ValidTo.Equal(validTo) {
		t.Errorf("after reimport: ExpirationModel %q, ValidTo %v; want KEY_MATERIAL_EXPIRES, %v", d.ExpirationModel, d.ValidTo, validTo)
	}

	// DeleteImportedKeyMaterial: the key is PendingImport, keeps its
	// CurrentKeyMaterialId, shows no expiration, and decrypts nothing.
	del, err := c.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: aws.String(arn)})
	mustNoErr(t, err, "DeleteImportedKeyMaterial")
	if aws.ToString(del.KeyId) != arn || aws.ToString(del.KeyMaterialId) != matID {
		t.Errorf("DeleteImportedKeyMaterial = %q, %q", aws.ToString(del.KeyId), aws.ToString(del.KeyMaterialId))
	}
	d = describe(t, c, id)
	if d.KeyState != types.KeyStatePendingImport || d.ExpirationModel != "" || d.ValidTo != nil || aws.ToString(d.CurrentKeyMaterialId) != matID {
		t.Fatalf("after delete: state %s, ExpirationModel %q, ValidTo %v, CurrentKeyMaterialId %q", d.KeyState, d.ExpirationModel, d.ValidTo, aws.ToString(d.CurrentKeyMaterialId))
	}
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	wantExactAPIError(t, err, "KMSInvalidStateException", pending)
	_, err = c.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: md.KeyId})
	mustNoErr(t, err, "DeleteImportedKeyMaterial of a key pending import")

	// A token made before a restart still imports after it; the same
	// material brings the old ciphertext back.
	_, token := importParams(t, c, id, types.AlgorithmSpecRsaesOaepSha1, types.WrappingKeySpecRsa2048)
	pub2, _ := importParams(t, c, id, types.AlgorithmSpecRsaesOaepSha1, types.WrappingKeySpecRsa2048)
	srv.Restart(t)
	c = srv.KMS()
	// The public key of another GetParametersForImport call does not go
	// with this token.
	_, err = c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: md.KeyId, ImportToken: token,
		EncryptedKeyMaterial: wrapMaterial(t, pub2, types.AlgorithmSpecRsaesOaepSha1, material), ExpirationModel: noExpiry})
	wantExactAPIError(t, err, "InvalidCiphertextException", "")
	_, err = importMaterial(t, c, id, types.AlgorithmSpecRsaesOaepSha1, types.WrappingKeySpecRsa2048, material, nil)
	mustNoErr(t, err, "ImportKeyMaterial after restart")
	dec, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	mustNoErr(t, err, "Decrypt after reimport")
	if string(dec.Plaintext) != "secret words" {
		t.Fatalf("Decrypt after reimport = %q", dec.Plaintext)
	}

	// CloudTrail: the three operations with their parameters, never the
	// token, the wrapped material or the public key.
	seen := map[string]int{}
	for _, e := range readAudit(t, srv) {
		switch e.EventName {
		case "GetParametersForImport", "ImportKeyMaterial", "DeleteImportedKeyMaterial":
		default:
			continue
		}
		seen[e.EventName]++
		for _, b := range [][]byte{params.ImportToken, params.PublicKey, wrapped} {
			if s := string(e.RequestParameters) + string(e.ResponseElements); strings.Contains(s, b64(b[:24])) {
				t.Errorf("%s event holds a token, a public key or wrapped material", e.EventName)
			}
		}
		if e.EventName == "ImportKeyMaterial" && e.ErrorCode == "" &&
			!strings.Contains(string(e.ResponseElements), `"keyMaterialId":"`+matID+`"`) {
			t.Errorf("ImportKeyMaterial event responseElements = %s, want keyMaterialId %s", e.ResponseElements, matID)
		}
	}
	if seen["GetParametersForImport"] < 6 || seen["ImportKeyMaterial"] < 8 || seen["DeleteImportedKeyMaterial"] != 2 {
		t.Errorf("audit events: %v", seen)
	}
	notOnDisk(t, srv.DataDir, map[string][]byte{"the imported material": material})
}

// b64 is the start of b's base64, as a JSON event would hold it.
func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b)[:20] }

// TestKMSImportOtherKeySpecs: HMAC, RSA and ECC keys take imported
// material; what they compute is what the imported key computes locally.
func TestKMSImportOtherKeySpecs(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	ctx := ctxT(t)

	// HMAC_256 with a 48-byte key (HMAC keys take their spec's length up
	// to 1024 bits: 31 and 129 bytes are refused).
	hk := createKey(t, c, &kms.CreateKeyInput{Origin: types.OriginTypeExternal, KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
	hmacKey := randomBytes(t, 48)
	_, err := importMaterial(t, c, aws.ToString(hk.KeyId), types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048, randomBytes(t, 31), nil)
	wantAPIError(t, err, "IncorrectKeyMaterialException", "HMAC_256")
	_, err = importMaterial(t, c, aws.ToString(hk.KeyId), types.AlgorithmSpecRsaAesKeyWrapSha256, types.WrappingKeySpecRsa2048, randomBytes(t, 129), nil)
	wantAPIError(t, err, "IncorrectKeyMaterialException", "HMAC_256")
	_, err = importMaterial(t, c, aws.ToString(hk.KeyId), types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048, hmacKey,
		&kms.ImportKeyMaterialInput{ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire, ImportType: types.ImportTypeNewKeyMaterial})
	wantAPIError(t, err, "ValidationException", "symmetric encryption keys")
	imp, err := importMaterial(t, c, aws.ToString(hk.KeyId), types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048, hmacKey, nil)
	mustNoErr(t, err, "ImportKeyMaterial HMAC_256")
	if d := describe(t, c, aws.ToString(hk.KeyId)); d.KeyState != types.KeyStateEnabled || d.CurrentKeyMaterialId != nil || d.ExpirationModel != types.ExpirationModelTypeKeyMaterialDoesNotExpire {
		t.Errorf("HMAC key after import: %s, CurrentKeyMaterialId %v, ExpirationModel %q", d.KeyState, d.CurrentKeyMaterialId, d.ExpirationModel)
	}
	_ = imp
	mac, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: hk.KeyId, MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Message: []byte("message")})
	mustNoErr(t, err, "GenerateMac")
	m := hmac.New(sha256.New, hmacKey)
	m.Write([]byte("message"))
	if !hmac.Equal(mac.Mac, m.Sum(nil)) {
		t.Fatal("GenerateMac under the imported key differs from HMAC-SHA256 with it")
	}
	// A second, different material is not the key's.
	_, err = importMaterial(t, c, aws.ToString(hk.KeyId), types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048, randomBytes(t, 32), nil)
	wantAPIError(t, err, "IncorrectKeyMaterialException", aws.ToString(hk.Arn))

	// RSA_2048 signing key: RSA_AES_KEY_WRAP only (RSA-OAEP cannot carry
	// an RSA private key); GetPublicKey gives the imported key's public
	// half and Sign signs with it.
	rk := createKey(t, c, &kms.CreateKeyInput{Origin: types.OriginTypeExternal, KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeSignVerify})
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	mustNoErr(t, err, "rsa.GenerateKey")
	der, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	mustNoErr(t, err, "MarshalPKCS8PrivateKey")
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	mustNoErr(t, err, "rsa.GenerateKey 1024")
	smallDER, _ := x509.MarshalPKCS8PrivateKey(small)
	_, err = importMaterial(t, c, aws.ToString(rk.KeyId), types.AlgorithmSpecRsaAesKeyWrapSha256, types.WrappingKeySpecRsa2048, smallDER, nil)
	wantAPIError(t, err, "IncorrectKeyMaterialException", "RSA_2048")
	_, err = importMaterial(t, c, aws.ToString(rk.KeyId), types.AlgorithmSpecRsaAesKeyWrapSha256, types.WrappingKeySpecRsa2048, der, nil)
	mustNoErr(t, err, "ImportKeyMaterial RSA_2048")
	gp, err := c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: rk.KeyId})
	mustNoErr(t, err, "GetPublicKey")
	wantPub, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if !bytes.Equal(gp.PublicKey, wantPub) {
		t.Fatal("GetPublicKey of the imported RSA key is not the imported key's public key")
	}
	digest := sha256.Sum256([]byte("to sign"))
	sig, err := c.Sign(ctx, &kms.SignInput{KeyId: rk.KeyId, Message: digest[:], MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecRsassaPssSha256})
	mustNoErr(t, err, "Sign")
	if err := rsa.VerifyPSS(&rsaKey.PublicKey, crypto.SHA256, digest[:], sig.Signature, nil); err != nil {
		t.Fatalf("the signature does not verify with the imported key: %v", err)
	}
	// Without its material the key keeps its public key (AWS answers
	// GetPublicKey for a key pending import) and signs nothing; a key
	// never imported has none.
	_, err = c.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: rk.KeyId})
	mustNoErr(t, err, "DeleteImportedKeyMaterial of the RSA key")
	gp2, err := c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: rk.KeyId})
	mustNoErr(t, err, "GetPublicKey of a key pending import")
	if !bytes.Equal(gp2.PublicKey, wantPub) || gp2.KeyUsage != types.KeyUsageTypeSignVerify {
		t.Fatal("GetPublicKey of the key pending import is not the imported key's")
	}
	_, err = c.Sign(ctx, &kms.SignInput{KeyId: rk.KeyId, Message: digest[:], MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecRsassaPssSha256})
	wantExactAPIError(t, err, "KMSInvalidStateException", aws.ToString(rk.Arn)+" is pending import.")
	fresh := createKey(t, c, &kms.CreateKeyInput{Origin: types.OriginTypeExternal, KeySpec: types.KeySpecEccNistP384, KeyUsage: types.KeyUsageTypeSignVerify})
	_, err = c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: fresh.KeyId})
	wantExactAPIError(t, err, "KMSInvalidStateException", aws.ToString(fresh.Arn)+" is pending import.")

	// ECC_NIST_P256 key agreement key through RSAES_OAEP_SHA_1 and a
	// 3072-bit wrapping key; the shared secret is the local one.
	ek := createKey(t, c, &kms.CreateKeyInput{Origin: types.OriginTypeExternal, KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeKeyAgreement})
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mustNoErr(t, err, "ecdsa.GenerateKey")
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKCS8PrivateKey(p384)
	_, err = importMaterial(t, c, aws.ToString(ek.KeyId), types.AlgorithmSpecRsaesOaepSha1, types.WrappingKeySpecRsa3072, p384DER, nil)
	wantAPIError(t, err, "IncorrectKeyMaterialException", "ECC_NIST_P256")
	_, err = importMaterial(t, c, aws.ToString(ek.KeyId), types.AlgorithmSpecRsaesOaepSha1, types.WrappingKeySpecRsa3072, ecDER, nil)
	mustNoErr(t, err, "ImportKeyMaterial ECC_NIST_P256")
	peer, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	peerDER, _ := x509.MarshalPKIXPublicKey(&peer.PublicKey)
	ss, err := c.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: ek.KeyId, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: peerDER})
	mustNoErr(t, err, "DeriveSharedSecret")
	pe, _ := peer.ECDH()
	me, _ := ecKey.ECDH()
	want, _ := pe.ECDH(me.PublicKey())
	if !bytes.Equal(ss.SharedSecret, want) {
		t.Fatal("DeriveSharedSecret under the imported key differs from the local ECDH")
	}

	// ML-DSA keys cannot have imported material.
	_, err = c.CreateKey(ctx, &kms.CreateKeyInput{Origin: types.OriginTypeExternal, KeySpec: types.KeySpecMlDsa65, KeyUsage: types.KeyUsageTypeSignVerify})
	wantExactAPIError(t, err, "UnsupportedOperationException", "Importing ML-DSA keys is not supported.")
	notOnDisk(t, srv.DataDir, map[string][]byte{"the HMAC key": hmacKey, "the RSA private key": rsaKey.D.Bytes(), "the EC private key": ecKey.D.Bytes()})
}

// TestKMSImportRotation: a symmetric imported key takes new material with
// ImportType NEW_KEY_MATERIAL (pending rotation), RotateKeyOnDemand makes
// it current, and old ciphertexts still decrypt. Deleting any material
// permanently associated with the key makes it PendingImport.
func TestKMSImportRotation(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	ctx := ctxT(t)
	md := createKey(t, c, &kms.CreateKeyInput{Origin: types.OriginTypeExternal})
	id, arn := aws.ToString(md.KeyId), aws.ToString(md.Arn)
	oaep, w2048 := types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048

	matA, matB, matC := randomBytes(t, 32), randomBytes(t, 32), randomBytes(t, 32)
	a, err := importMaterial(t, c, id, oaep, w2048, matA, &kms.ImportKeyMaterialInput{ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire,
		KeyMaterialDescription: aws.String("material A")})
	mustNoErr(t, err, "import A")
	encA, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("under A")})
	mustNoErr(t, err, "Encrypt under A")

	// Without ImportType, new material is taken as the existing one and
	// refused; NEW_KEY_MATERIAL with a KeyMaterialId is invalid.
	_, err = importMaterial(t, c, id, oaep, w2048, matB, nil)
	wantAPIError(t, err, "IncorrectKeyMaterialException", arn)
	_, err = importMaterial(t, c, id, oaep, w2048, matB, &kms.ImportKeyMaterialInput{ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire,
		ImportType: types.ImportTypeNewKeyMaterial, KeyMaterialId: a.KeyMaterialId})
	wantAPIError(t, err, "ValidationException", "KeyMaterialId")
	_, err = importMaterial(t, c, id, oaep, w2048, matA, &kms.ImportKeyMaterialInput{ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire,
		ImportType: types.ImportTypeNewKeyMaterial})
	wantAPIError(t, err, "IncorrectKeyMaterialException", "already associated")

	b, err := importMaterial(t, c, id, oaep, w2048, matB, &kms.ImportKeyMaterialInput{ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire,
		ImportType: types.ImportTypeNewKeyMaterial, KeyMaterialDescription: aws.String("material B")})
	mustNoErr(t, err, "import B as new")
	idA, idB := aws.ToString(a.KeyMaterialId), aws.ToString(b.KeyMaterialId)
	if d := describe(t, c, id); d.KeyState != types.KeyStateEnabled || aws.ToString(d.CurrentKeyMaterialId) != idA {
		t.Fatalf("with B pending: %s, current %s; want Enabled, A", d.KeyState, aws.ToString(d.CurrentKeyMaterialId))
	}
	_, err = importMaterial(t, c, id, oaep, w2048, matC, &kms.ImportKeyMaterialInput{ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire,
		ImportType: types.ImportTypeNewKeyMaterial})
	wantAPIError(t, err, "KMSInvalidStateException", "cannot be imported into KMS key "+arn+", because another key material (id: "+idB+") is pending rotation.")

	list := func(include types.IncludeKeyMaterial) []types.RotationsListEntry {
		out, err := c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: md.KeyId, IncludeKeyMaterial: include})
		mustNoErr(t, err, "ListKeyRotations")
		return out.Rotations
	}
	all := list(types.IncludeKeyMaterialAllKeyMaterial)
	if len(all) != 2 || aws.ToString(all[0].KeyMaterialId) != idA || all[0].KeyMaterialState != types.KeyMaterialStateCurrent ||
		all[0].ImportState != types.ImportStateImported || aws.ToString(all[0].KeyMaterialDescription) != "material A" ||
		all[0].ExpirationModel != types.ExpirationModelTypeKeyMaterialDoesNotExpire || all[0].RotationDate != nil ||
		aws.ToString(all[1].KeyMaterialId) != idB || all[1].KeyMaterialState != types.KeyMaterialStatePendingRotation {
		t.Fatalf("ListKeyRotations ALL_KEY_MATERIAL with B pending = %+v", all)
	}
	if r := list(""); len(r) != 0 {
		t.Fatalf("ListKeyRotations before any rotation = %d entries, want 0", len(r))
	}

	rot, err := c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: md.KeyId})
	mustNoErr(t, err, "RotateKeyOnDemand")
	if aws.ToString(rot.KeyId) != arn {
		t.Errorf("RotateKeyOnDemand KeyId = %q", aws.ToString(rot.KeyId))
	}
	if d := describe(t, c, id); aws.ToString(d.CurrentKeyMaterialId) != idB {
		t.Fatalf("after rotation the current material is %s, want B", aws.ToString(d.CurrentKeyMaterialId))
	}
	_, err = c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: md.KeyId})
	wantExactAPIError(t, err, "KMSInvalidStateException", "No available key material pending rotation for the key: "+arn+".")
	rots := list("")
	if len(rots) != 1 || aws.ToString(rots[0].KeyMaterialId) != idB || rots[0].RotationType != types.RotationTypeOnDemand || rots[0].RotationDate == nil ||
		rots[0].KeyMaterialState != types.KeyMaterialStateCurrent {
		t.Fatalf("ListKeyRotations after rotation = %+v", rots)
	}
	encB, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("under B")})
	mustNoErr(t, err, "Encrypt under B")
	aeadB, _ := keymaterial.NewAEAD(matB)
	if _, err := keymaterial.DecryptWithAEAD(aeadB, arn, nil, encB.CiphertextBlob); err != nil {
		t.Fatalf("after rotation Encrypt does not use B: %v", err)
	}
	for _, blob := range [][]byte{encA.CiphertextBlob, encB.CiphertextBlob} {
		_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob})
		mustNoErr(t, err, "Decrypt after rotation")
	}

	// Deleting the non-current A makes the key PendingImport; A imported
	// again (naming its KeyMaterialId) makes it Enabled with B current.
	_, err = c.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: md.KeyId, KeyMaterialId: aws.String(strings.Repeat("0", 64))})
	wantAPIError(t, err, "NotFoundException", strings.Repeat("0", 64))
	del, err := c.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: md.KeyId, KeyMaterialId: a.KeyMaterialId})
	mustNoErr(t, err, "DeleteImportedKeyMaterial A")
	if aws.ToString(del.KeyMaterialId) != idA {
		t.Errorf("deleted %s, want A", aws.ToString(del.KeyMaterialId))
	}
	if d := describe(t, c, id); d.KeyState != types.KeyStatePendingImport {
		t.Fatalf("after deleting non-current A: %s, want PendingImport", d.KeyState)
	}
	if all := list(types.IncludeKeyMaterialAllKeyMaterial); all[0].ImportState != types.ImportStatePendingImport || all[0].ExpirationModel != "" {
		t.Errorf("A after deletion: %+v", all[0])
	}
	_, err = importMaterial(t, c, id, oaep, w2048, matA, &kms.ImportKeyMaterialInput{ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire,
		KeyMaterialId: b.KeyMaterialId})
	wantAPIError(t, err, "IncorrectKeyMaterialException", idB)
	_, err = importMaterial(t, c, id, oaep, w2048, matA, &kms.ImportKeyMaterialInput{ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire,
		ImportType: types.ImportTypeExistingKeyMaterial, KeyMaterialId: a.KeyMaterialId})
	mustNoErr(t, err, "reimport A")
	if d := describe(t, c, id); d.KeyState != types.KeyStateEnabled || aws.ToString(d.CurrentKeyMaterialId) != idB {
		t.Fatalf("after reimporting A: %s, current %s; want Enabled, B", d.KeyState, aws.ToString(d.CurrentKeyMaterialId))
	}
	if all := list(types.IncludeKeyMaterialAllKeyMaterial); aws.ToString(all[0].KeyMaterialDescription) != "material A" {
		t.Errorf("A's description after reimport without one = %q, want the earlier one", aws.ToString(all[0].KeyMaterialDescription))
	}

	// A pending material deleted leaves the key usable and unlisted.
	cImp, err := importMaterial(t, c, id, oaep, w2048, matC, &kms.ImportKeyMaterialInput{ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire,
		ImportType: types.ImportTypeNewKeyMaterial})
	mustNoErr(t, err, "import C as new")
	_, err = c.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: md.KeyId, KeyMaterialId: cImp.KeyMaterialId})
	mustNoErr(t, err, "DeleteImportedKeyMaterial of pending C")
	if d := describe(t, c, id); d.KeyState != types.KeyStateEnabled || len(list(types.IncludeKeyMaterialAllKeyMaterial)) != 2 {
		t.Fatalf("after deleting pending C: %s, %d materials listed", d.KeyState, len(list(types.IncludeKeyMaterialAllKeyMaterial)))
	}
}

// TestKMSImportExpiry: material imported with a ValidTo is deleted when it
// passes (the key is then PendingImport); a deletion scheduled and
// cancelled on a key pending import returns it to PendingImport.
func TestKMSImportExpiry(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	ctx := ctxT(t)
	md := createKey(t, c, &kms.CreateKeyInput{Origin: types.OriginTypeExternal})
	id := aws.ToString(md.KeyId)
	validTo := time.Now().Add(36 * time.Hour).UTC().Truncate(time.Second)
	_, err := importMaterial(t, c, id, types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048, randomBytes(t, 32),
		&kms.ImportKeyMaterialInput{ExpirationModel: types.ExpirationModelTypeKeyMaterialExpires, ValidTo: aws.Time(validTo)})
	mustNoErr(t, err, "ImportKeyMaterial with ValidTo")
	if d := describe(t, c, id); d.KeyState != types.KeyStateEnabled || d.ValidTo == nil || !d.ValidTo.Equal(validTo) {
		t.Fatalf("after import: %s, ValidTo %v; want Enabled, %v", d.KeyState, d.ValidTo, validTo)
	}
	// A token is good for 24 hours.
	_, token := importParams(t, c, id, types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048)
	srv.AdvanceClock(t, "1d")
	if d := describe(t, c, id); d.KeyState != types.KeyStateEnabled {
		t.Fatalf("a day before ValidTo: %s", d.KeyState)
	}
	_, err = c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: md.KeyId, ImportToken: token, EncryptedKeyMaterial: []byte("x"),
		ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire})
	wantAPIError(t, err, "ExpiredImportTokenException", "GetParametersForImport")
	srv.AdvanceClock(t, "13h")
	d := describe(t, c, id)
	if d.KeyState != types.KeyStatePendingImport || d.ValidTo != nil {
		t.Fatalf("after ValidTo: %s, ValidTo %v; want PendingImport and none", d.KeyState, d.ValidTo)
	}
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x")})
	wantExactAPIError(t, err, "KMSInvalidStateException", aws.ToString(md.Arn)+" is pending import.")

	_, err = c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: md.KeyId, PendingWindowInDays: aws.Int32(7)})
	mustNoErr(t, err, "ScheduleKeyDeletion of a key pending import")
	_, err = c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: md.KeyId, WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	wantExactAPIError(t, err, "KMSInvalidStateException", aws.ToString(md.Arn)+" is pending deletion.")
	_, err = c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: md.KeyId})
	mustNoErr(t, err, "CancelKeyDeletion")
	if d := describe(t, c, id); d.KeyState != types.KeyStatePendingImport {
		t.Fatalf("after CancelKeyDeletion: %s, want PendingImport", d.KeyState)
	}
}

// TestStrictImportConditions: a key policy limits how alice may import key
// material with the condition keys of the import operations
// (kms:WrappingAlgorithm, kms:WrappingKeySpec, kms:ExpirationModel,
// kms:ValidTo); each rule denies what it does not allow.
func TestStrictImportConditions(t *testing.T) {
	srv := startStrict(t, strictCredentials)
	root, alice := kmsFor(srv, "AKIAROOT000000000001", "root-secret"), kmsFor(srv, "AKIAALICE0000000001", "alice-secret")
	ctx := ctxT(t)
	limit := time.Now().Add(48 * time.Hour).Unix()
	policy := `{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + strictAccount + `:root"},"Action":"kms:*","Resource":"*"},
 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + strictAccount + `:user/alice"},"Action":"kms:GetParametersForImport","Resource":"*",
  "Condition":{"StringEquals":{"kms:WrappingAlgorithm":"RSA_AES_KEY_WRAP_SHA_256","kms:WrappingKeySpec":"RSA_3072"}}},
 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + strictAccount + `:user/alice"},"Action":"kms:ImportKeyMaterial","Resource":"*",
  "Condition":{"StringEquals":{"kms:ExpirationModel":"KEY_MATERIAL_EXPIRES"},"NumericLessThanEquals":{"kms:ValidTo":"` + strconv.FormatInt(limit, 10) + `"}}}
]}`
	md := createKey(t, root, &kms.CreateKeyInput{Origin: types.OriginTypeExternal, Policy: aws.String(policy)})
	id := aws.ToString(md.KeyId)

	_, err := alice.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: md.KeyId, WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa3072})
	wantAPIError(t, err, "AccessDeniedException", "kms:GetParametersForImport")
	_, err = alice.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: md.KeyId, WrappingAlgorithm: types.AlgorithmSpecRsaAesKeyWrapSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	wantAPIError(t, err, "AccessDeniedException", "kms:GetParametersForImport")
	pub, token := importParams(t, alice, id, types.AlgorithmSpecRsaAesKeyWrapSha256, types.WrappingKeySpecRsa3072)
	wrapped := wrapMaterial(t, pub, types.AlgorithmSpecRsaAesKeyWrapSha256, randomBytes(t, 32))
	imp := func(model types.ExpirationModelType, validTo *time.Time) error {
		_, err := alice.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: md.KeyId, ImportToken: token, EncryptedKeyMaterial: wrapped, ExpirationModel: model, ValidTo: validTo})
		return err
	}
	wantAPIError(t, imp(types.ExpirationModelTypeKeyMaterialDoesNotExpire, nil), "AccessDeniedException", "kms:ImportKeyMaterial")
	wantAPIError(t, imp(types.ExpirationModelTypeKeyMaterialExpires, aws.Time(time.Now().Add(72*time.Hour))), "AccessDeniedException", "kms:ImportKeyMaterial")
	mustNoErr(t, imp(types.ExpirationModelTypeKeyMaterialExpires, aws.Time(time.Now().Add(24*time.Hour))), "ImportKeyMaterial within the policy")
	_, err = alice.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: md.KeyId})
	wantAPIError(t, err, "AccessDeniedException", "kms:DeleteImportedKeyMaterial")
	if d := describe(t, root, id); d.KeyState != types.KeyStateEnabled {
		t.Fatalf("after alice's import the key is %s, want Enabled", d.KeyState)
	}
}

// TestKMSServiceEvents: what KMS does on its own is in CloudTrail as AWS
// records it, eventType AwsServiceEvent invoked by "AWS Internal":
// DeleteKey at the end of a waiting period, RotateKey for an automatic
// rotation and for an on-demand one (besides the caller's
// RotateKeyOnDemand), DeleteExpiredKeyMaterial when imported material
// expires.
func TestKMSServiceEvents(t *testing.T) {
	srv := startAudited(t)
	c := srv.KMS()
	ctx := ctxT(t)
	doomed := createKey(t, c, nil)
	_, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: doomed.KeyId, PendingWindowInDays: aws.Int32(7)})
	mustNoErr(t, err, "ScheduleKeyDeletion")
	auto := createKey(t, c, nil)
	_, err = c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: auto.KeyId, RotationPeriodInDays: aws.Int32(90)})
	mustNoErr(t, err, "EnableKeyRotation")
	onDemand := createKey(t, c, nil)
	_, err = c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: onDemand.KeyId})
	mustNoErr(t, err, "RotateKeyOnDemand")
	imported := createKey(t, c, &kms.CreateKeyInput{Origin: types.OriginTypeExternal})
	imp, err := importMaterial(t, c, aws.ToString(imported.KeyId), types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048, randomBytes(t, 32),
		&kms.ImportKeyMaterialInput{ExpirationModel: types.ExpirationModelTypeKeyMaterialExpires, ValidTo: aws.Time(time.Now().Add(36 * time.Hour))})
	mustNoErr(t, err, "ImportKeyMaterial")

	srv.AdvanceClock(t, "2d")
	srv.AdvanceClock(t, "6d")
	srv.AdvanceClock(t, "83d")
	rots, err := c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: auto.KeyId, IncludeKeyMaterial: types.IncludeKeyMaterialAllKeyMaterial})
	mustNoErr(t, err, "ListKeyRotations")
	if len(rots.Rotations) != 2 || rots.Rotations[1].RotationType != types.RotationTypeAutomatic {
		t.Fatalf("rotations after 91 days: %+v", rots.Rotations)
	}
	odRots, err := c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: onDemand.KeyId, IncludeKeyMaterial: types.IncludeKeyMaterialAllKeyMaterial})
	mustNoErr(t, err, "ListKeyRotations")

	want := map[string]string{ // key ARN -> the service event it must have, with its details
		aws.ToString(doomed.Arn): "DeleteKey null",
		aws.ToString(auto.Arn): `RotateKey {"rotationType":"AUTOMATIC","keyOrigin":"AWS_KMS","previousKeyMaterialId":"` + aws.ToString(rots.Rotations[0].KeyMaterialId) +
			`","currentKeyMaterialId":"` + aws.ToString(rots.Rotations[1].KeyMaterialId) + `","keyId":"` + aws.ToString(auto.KeyId) + `"}`,
		aws.ToString(onDemand.Arn): `RotateKey {"rotationType":"ON_DEMAND","keyOrigin":"AWS_KMS","previousKeyMaterialId":"` + aws.ToString(odRots.Rotations[0].KeyMaterialId) +
			`","currentKeyMaterialId":"` + aws.ToString(odRots.Rotations[1].KeyMaterialId) + `","keyId":"` + aws.ToString(onDemand.KeyId) + `"}`,
		aws.ToString(imported.Arn): `DeleteExpiredKeyMaterial {"keyId":"` + aws.ToString(imported.KeyId) + `","keyMaterialId":"` + aws.ToString(imp.KeyMaterialId) + `"}`,
	}
	got := map[string]string{}
	onDemandCall := false
	for _, e := range readAudit(t, srv) {
		if e.EventName == "RotateKeyOnDemand" && e.EventType == "AwsApiCall" && e.ErrorCode == "" {
			onDemandCall = true
		}
		if e.EventType != "AwsServiceEvent" {
			continue
		}
		if e.UserIdentity.InvokedBy != "AWS Internal" || e.UserIdentity.Type != "" || e.UserIdentity.AccountID != aws.ToString(doomed.AWSAccountId) ||
			e.SourceIPAddress != "AWS Internal" || e.UserAgent != "AWS Internal" || e.RequestID != "" || e.EventSource != "kms.amazonaws.com" ||
			string(e.RequestParameters) != "null" || len(e.Resources) != 1 || e.Resources[0].Type != "AWS::KMS::Key" {
			t.Errorf("%s service event: %+v", e.EventName, e)
			continue
		}
		details := string(e.ServiceEventDetails)
		if details == "" {
			details = "null"
		}
		if _, dup := got[e.Resources[0].ARN]; dup {
			t.Errorf("two service events for %s", e.Resources[0].ARN)
		}
		got[e.Resources[0].ARN] = e.EventName + " " + details
	}
	if !onDemandCall {
		t.Error("no RotateKeyOnDemand API call event beside the service event")
	}
	for arn, w := range want {
		if got[arn] != w {
			t.Errorf("service event of %s =\n%s\nwant\n%s", arn, got[arn], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("service events for %d keys, want %d: %v", len(got), len(want), got)
	}
	// CloudTrail's LookupEvents finds them.
	out, err := srv.CloudTrail().LookupEvents(ctx, &cloudtrail.LookupEventsInput{
		LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyEventName, AttributeValue: aws.String("DeleteExpiredKeyMaterial")}}})
	mustNoErr(t, err, "LookupEvents")
	if len(out.Events) != 1 || !strings.Contains(aws.ToString(out.Events[0].CloudTrailEvent), `"eventType":"AwsServiceEvent"`) ||
		len(out.Events[0].Resources) != 1 || aws.ToString(out.Events[0].Resources[0].ResourceName) != aws.ToString(imported.Arn) {
		t.Fatalf("LookupEvents DeleteExpiredKeyMaterial = %+v", out.Events)
	}
}
