package kms

import (
	"context"
	"crypto/cipher"
	"encoding/hex"
	"errors"
	"io"
	"strings"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/keymaterial"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/operation"
	"github.com/keyfort/keyfort/internal/sensitive"
	"github.com/keyfort/keyfort/internal/storage"
)

const algSymmetric = "SYMMETRIC_DEFAULT"

func errInvalidCiphertext() error {
	// AWS answers InvalidCiphertextException with an empty message (snapshots
	// test_encrypt_decrypt_encryption_context and
	// test_encryption_context_generate_data_key*).
	return awserr.New(codeInvalidCiphertext, "")
}

func errDryRun() error {
	return awserr.New(codeDryRun, "The request would have succeeded, but the DryRun option is set.")
}

// checkEnabled is the key-state rule of operations that need an enabled
// key: DisabledException for a disabled key, KMSInvalidStateException for
// any other state ("<arn> is unavailable." for a key whose external key
// store is not connected).
func checkEnabled(k *key) error {
	if k.meta.shownState() == stateUnavailable {
		return errUnavailable(k.arn)
	}
	switch k.meta.State {
	case stateEnabled:
		return nil
	case stateDisabled:
		return errDisabled(k.arn)
	case statePendingDeletion:
		return errPendingDeletion(k.arn)
	default:
		return errInvalidState(k.arn, k.meta.State)
	}
}

// checkUsable applies the key-state and key-usage rules of cryptographic
// operations. A key of another usage is AWS's InvalidKeyUsageException
// naming the operation ("<key ARN> key usage is SIGN_VERIFY which is not
// valid for Encrypt.", LocalStack's AWS-validated snapshot
// test_error_messaging_for_invalid_keys), as Sign, Verify and GenerateMac do.
func checkUsable(k *key, a *access) error {
	if err := checkEnabled(k); err != nil {
		return err
	}
	if k.meta.Usage != usageEncrypt {
		return errKeyUsage(k, a)
	}
	return nil
}

// errKeyUsage is AWS's InvalidKeyUsageException for a key whose usage is not
// that of a's operation: "<key ARN> key usage is SIGN_VERIFY which is not
// valid for Encrypt."
func errKeyUsage(k *key, a *access) error {
	return awserr.Newf(codeInvalidKeyUsage, "%s key usage is %s which is not valid for %s.", k.arn, k.meta.Usage, operationOf(a))
}

// operationOf is the name of the operation a's action belongs to: the
// action without "kms:", and ReEncrypt for kms:ReEncryptFrom and
// kms:ReEncryptTo.
func operationOf(a *access) string {
	switch a.action {
	case actionReEncryptFrom, actionReEncryptTo:
		return "ReEncrypt"
	}
	return strings.TrimPrefix(a.action, "kms:")
}

func checkAlgorithm(alg kmsapi.EncryptionAlgorithmSpec, k *key) error {
	enc, _, _, _ := specOf(k).algorithms(k.meta.Usage)
	offered := false
	for _, e := range enc {
		offered = offered || e == string(usedAlgorithm(alg))
	}
	if !offered {
		return awserr.Newf(codeInvalidKeyUsage, "The encryption algorithm %s is not supported by %s, whose key spec is %s.", usedAlgorithm(alg), k.arn, k.meta.Spec)
	}
	return nil
}

// refuseRecipient answers a request with Recipient as AWS answers an
// attestation document it cannot verify: ValidationException, which every
// operation may answer (the models declare no other error for it). Keyfort
// verifies no AWS Nitro Enclaves or NitroTPM attestation document, so none
// is valid here and no CiphertextForRecipient is ever returned.
func refuseRecipient(r *kmsapi.RecipientInfo) error {
	if r != nil {
		return awserr.Validation("The attestation document in Recipient could not be verified: Keyfort cannot verify AWS Nitro Enclaves or NitroTPM attestation documents.")
	}
	return nil
}

// aead returns the AES-GCM cipher of one material of a symmetric key.
func (s *Service) aead(ctx context.Context, k *key, matID string) (cipher.AEAD, error) {
	v, err := s.opened(ctx, k, matID, func(raw []byte) (any, error) { return keymaterial.NewAEAD(raw) })
	if err != nil {
		return nil, err
	}
	a, ok := v.(cipher.AEAD)
	if !ok {
		return nil, wrap("material "+matID, errors.New("not a symmetric key's material"))
	}
	return a, nil
}

// opened returns what one material of k opens to (built by build from the
// unsealed bytes, which it must not keep unless it copies them), from the
// cache or by opening the sealed material record. A material the key does
// not list is InvalidCiphertextException.
func (s *Service) opened(ctx context.Context, k *key, matID string, build func(raw []byte) (any, error)) (any, error) {
	known := false
	for i := range k.meta.Materials {
		if m := &k.meta.Materials[i]; m.ID == matID {
			if m.Absent {
				return nil, errMaterialAbsent(k)
			}
			known = true
			break
		}
	}
	if !known {
		return nil, errInvalidCiphertext()
	}
	id, err := hexID(matID)
	if err != nil {
		return nil, err
	}
	if v, ok := s.cache.Get(id); ok {
		return v, nil
	}
	recID := materialRecordID(k.rec.ID, matID)
	rec, err := s.store.Get(ctx, kindMaterial, k.rec.Scope, recID)
	if err != nil {
		return nil, wrap("get material", err)
	}
	raw, err := s.sealer.Open(materialAAD(k.rec.Scope, recID), rec.Sealed)
	if err != nil {
		return nil, wrap("open material "+recID, err)
	}
	defer clear(raw)
	v, err := build(raw)
	if err != nil {
		return nil, wrap("material "+recID, err)
	}
	return s.cache.Add(id, v), nil
}

func header(k *key, matID string) (keymaterial.Header, error) {
	var h keymaterial.Header
	var kid [16]byte
	var err error
	if h.MultiRegion = strings.HasPrefix(k.rec.ID, multiRegionPrefix); h.MultiRegion {
		kid, err = keymaterial.ParseMultiRegionKeyID(k.rec.ID)
	} else {
		kid, err = keymaterial.ParseKeyID(k.rec.ID)
	}
	if err != nil {
		return h, wrap("key id", err)
	}
	h.KeyID = kid
	h.MaterialID, err = hexID(matID)
	return h, err
}

var errMaterialID = errors.New("malformed stored material id")

// hexID decodes a stored material id (32 hex characters).
func hexID(id string) ([16]byte, error) {
	var b [16]byte
	if n, err := hex.Decode(b[:], []byte(id)); err != nil || n != 16 {
		return b, wrap("material id", errMaterialID)
	}
	return b, nil
}

// currentHeader is header(k, k.meta.Material), remembered on k for its
// material (a key read in a transaction may change it).
func (k *key) currentHeader() (keymaterial.Header, error) {
	mat := k.meta.Material
	if c := k.header.Load(); c != nil && c.matID == mat {
		return c.h, nil
	}
	h, err := header(k, mat)
	if err != nil {
		return h, err
	}
	k.header.Store(&keyHeader{matID: mat, h: h})
	return h, nil
}

// keyHeader is the blob header of a key's material.
type keyHeader struct {
	matID string
	h     keymaterial.Header
}

// encryptWith encrypts plaintext under k's current material, for the KMS
// operation op; a key in an external key store has its proxy encrypt that
// blob again (encryptExternal).
func (s *Service) encryptWith(ctx context.Context, k *key, op string, ec map[string]string, plaintext []byte) ([]byte, error) {
	a, err := s.aead(ctx, k, k.meta.Material)
	if err != nil {
		return nil, err
	}
	h, err := k.currentHeader()
	if err != nil {
		return nil, err
	}
	blob, err := keymaterial.EncryptWithAEAD(s.rand, a, h, k.arn, ec, plaintext)
	if err != nil || k.meta.XKS == nil {
		return blob, err
	}
	return s.encryptExternal(ctx, k, h, op, ec, blob)
}

// decryptBlob finds the key a ciphertext names, checks it against keyID (if
// given; want, wantAlias and wantErr are what lookupKeyAlias answered for
// it, without access), authorizes a on it, checks the key state, and
// decrypts.
func (s *Service) decryptBlob(ctx context.Context, scope storage.Scope, blob []byte, ec map[string]string, keyID *string, want *key, wantAlias string, wantErr error, alg kmsapi.EncryptionAlgorithmSpec, a *access) (*key, []byte, string, error) {
	h, err := keymaterial.ParseBlob(blob)
	if err != nil {
		return nil, nil, "", errInvalidCiphertext()
	}
	var idBuf [36]byte
	blobKeyID := h.AppendID(idBuf[:0])
	var k *key
	if keyID != nil {
		if err := wantErr; err != nil {
			ref, perr := parseRef(scope, *keyID, refAliasOK|refCrossAccount)
			if perr == nil {
				err = hideOther(ctx, &ref, scope, a, err)
			}
			return nil, nil, "", err
		}
		if want.rec.ID != string(blobKeyID) {
			return nil, nil, "", awserr.New(codeIncorrectKey, "The key ID in the request does not identify a CMK that can perform this operation.")
		}
		a.requestAlias = wantAlias
		// The ciphertext's key is the one KeyId named: lookupKeyAlias
		// read it (and named it in the audit event) a moment ago.
		k = want
	} else {
		a.ciphertext = true
		k, err = s.cachedKey(ctx, scope, string(blobKeyID))
		if err != nil { // (awserr.As's target escapes: not called on success)
			if e, ok := awserr.As(err); ok && e.Code == codeNotFound {
				return nil, nil, "", errInvalidCiphertext()
			}
			return nil, nil, "", err
		}
	}
	if err := s.authorize(ctx, nil, k, a); err != nil {
		return nil, nil, "", err
	}
	if err := checkUsable(k, a); err != nil {
		return nil, nil, "", err
	}
	if err := checkAlgorithm(alg, k); err != nil {
		return nil, nil, "", err
	}
	if h.External != (k.meta.XKS != nil) {
		// A blob of the other form than the key's cannot be the key's.
		return nil, nil, "", errInvalidCiphertext()
	}
	matID := k.materialHex(&h.MaterialID)
	ae, err := s.aead(ctx, k, matID)
	if err != nil {
		return nil, nil, "", err
	}
	if h.External {
		if blob, err = s.decryptExternal(ctx, k, operationOf(a), ec, blob); err != nil {
			return nil, nil, "", err
		}
	}
	pt, err := keymaterial.DecryptWithAEAD(ae, k.arn, ec, blob)
	if err != nil {
		return nil, nil, "", errInvalidCiphertext()
	}
	return k, pt, matID, nil
}

// usableKey resolves a key (aliases and other accounts' keys allowed) for
// a cryptographic operation, authorizes a on it and checks its state.
func (s *Service) usableKey(ctx context.Context, scope storage.Scope, ref string, alg kmsapi.EncryptionAlgorithmSpec, a *access) (*key, error) {
	k, err := s.lookupKey(ctx, scope, ref, refAliasOK|refCrossAccount, a)
	if err != nil {
		return nil, err
	}
	if err := checkUsable(k, a); err != nil {
		return nil, err
	}
	if err := checkAlgorithm(alg, k); err != nil {
		return nil, err
	}
	return k, nil
}

// cryptoAccess is the access of a cryptographic operation.
func cryptoAccess(action string, ec map[string]string, alg kmsapi.EncryptionAlgorithmSpec, tokens []string) *access {
	a := &access{action: action, ec: ec, hasEC: true, tokens: tokens}
	if alg != "" {
		a.alg = string(alg)
	} else {
		a.alg = algSymmetric
	}
	return a
}

// Encrypt encrypts up to 4096 bytes under a symmetric key.
func (s *Service) encrypt(ctx context.Context, in *kmsapi.EncryptInput) (*kmsapi.EncryptOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	a := cryptoAccess(in.IAMAction(), in.EncryptionContext, in.EncryptionAlgorithm, in.GrantTokens)
	k, err := s.usableKey(ctx, scope, deref(in.KeyId), in.EncryptionAlgorithm, a)
	if err != nil {
		return nil, err
	}
	if deref(in.DryRun) {
		return nil, errDryRun()
	}
	blob, err := s.encryptFor(ctx, k, "Encrypt", in.EncryptionAlgorithm, in.EncryptionContext, in.Plaintext.Reveal())
	if err != nil {
		return nil, err
	}
	if !isAsymmetricEncryption(k) {
		k.useMaterial(ctx, k.meta.Material)
	}
	// The output and the string it points at are one allocation.
	o := &encryptOutput{keyID: k.arn}
	o.out = kmsapi.EncryptOutput{CiphertextBlob: blob, KeyId: &o.keyID, EncryptionAlgorithm: usedAlgorithm(in.EncryptionAlgorithm)}
	return &o.out, nil
}

// encryptOutput is an EncryptOutput with room for its KeyId.
type encryptOutput struct {
	out   kmsapi.EncryptOutput
	keyID string
}

// Decrypt decrypts a ciphertext made by Encrypt or GenerateDataKey*.
func (s *Service) decrypt(ctx context.Context, in *kmsapi.DecryptInput) (*kmsapi.DecryptOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	if err := refuseRecipient(in.Recipient); err != nil {
		return nil, err
	}
	if in.CiphertextBlob == nil {
		return nil, awserr.Validation("1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy constraint: Member must not be null")
	}
	a := cryptoAccess(in.IAMAction(), in.EncryptionContext, in.EncryptionAlgorithm, in.GrantTokens)
	k, pt, matID, err := s.decryptAny(ctx, scope, in.CiphertextBlob, in.EncryptionContext, in.KeyId, in.EncryptionAlgorithm, a)
	if err != nil {
		return nil, err
	}
	if deref(in.DryRun) {
		clear(pt)
		return nil, errDryRun()
	}
	// The output and the strings it points at are one allocation.
	o := &decryptOutput{keyID: k.arn}
	o.out = kmsapi.DecryptOutput{
		KeyId:               &o.keyID,
		Plaintext:           sensitive.Bytes(pt),
		EncryptionAlgorithm: usedAlgorithm(in.EncryptionAlgorithm),
	}
	if matID != "" { // none for RSA keys (materialIDOf)
		o.materialID = k.useMaterial(ctx, matID)
		o.out.KeyMaterialId = &o.materialID
	}
	return &o.out, nil
}

// decryptOutput is a DecryptOutput with room for its KeyId and
// KeyMaterialId.
type decryptOutput struct {
	out               kmsapi.DecryptOutput
	keyID, materialID string
}

// ReEncrypt decrypts a ciphertext and encrypts the plaintext under another
// key (or the same key with another context) without exposing it. It needs
// kms:ReEncryptFrom on the source key and kms:ReEncryptTo on the
// destination key.
func (s *Service) reEncrypt(ctx context.Context, in *kmsapi.ReEncryptInput) (*kmsapi.ReEncryptOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	if in.CiphertextBlob == nil {
		return nil, awserr.Validation("1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy constraint: Member must not be null")
	}
	from := cryptoAccess(actionReEncryptFrom, in.SourceEncryptionContext, in.SourceEncryptionAlgorithm, in.GrantTokens)
	src, pt, srcMat, err := s.decryptAny(ctx, scope, in.CiphertextBlob, in.SourceEncryptionContext, in.SourceKeyId, in.SourceEncryptionAlgorithm, from)
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	to := cryptoAccess(actionReEncryptTo, in.DestinationEncryptionContext, in.DestinationEncryptionAlgorithm, in.GrantTokens)
	dst, err := s.usableKey(ctx, scope, deref(in.DestinationKeyId), in.DestinationEncryptionAlgorithm, to)
	if err != nil {
		return nil, err
	}
	if deref(in.DryRun) {
		return nil, errDryRun()
	}
	dstMat := dst.meta.Material
	if isAsymmetricEncryption(dst) {
		dstMat = ""
	}
	blob, err := s.encryptFor(ctx, dst, "ReEncrypt", in.DestinationEncryptionAlgorithm, in.DestinationEncryptionContext, pt)
	if err != nil {
		return nil, err
	}
	// CloudTrail names the materials used, the destination's first.
	var used []string
	if dstMat != "" {
		used = append(used, "destinationKeyMaterialId", dst.displayMaterial(dstMat))
	}
	if srcMat != "" {
		used = append(used, "sourceKeyMaterialId", src.displayMaterial(srcMat))
	}
	if used != nil {
		operation.SetAdditionalEventData(ctx, materialEventData(used...))
	}
	return &kmsapi.ReEncryptOutput{
		CiphertextBlob:                 blob,
		SourceKeyId:                    ptr(src.arn),
		KeyId:                          ptr(dst.arn),
		SourceEncryptionAlgorithm:      usedAlgorithm(in.SourceEncryptionAlgorithm),
		DestinationEncryptionAlgorithm: usedAlgorithm(in.DestinationEncryptionAlgorithm),
		SourceKeyMaterialId:            materialIDOf(srcMat),
		DestinationKeyMaterialId:       materialIDOf(dstMat),
	}, nil
}

// dataKeyLength returns the data key size for NumberOfBytes / KeySpec.
func dataKeyLength(n *int32, spec kmsapi.DataKeySpec) (int, error) {
	switch {
	case n != nil && spec != "":
		return 0, awserr.Validation("Please specify either number of bytes or key spec, but not both.")
	case n != nil:
		return int(*n), nil
	case spec == "AES_256":
		return 32, nil
	case spec == "AES_128":
		return 16, nil
	default:
		return 0, awserr.Validation("Please specify either number of bytes or key spec.")
	}
}

// generateDataKey makes a random data key and its ciphertext under k.
func (s *Service) generateDataKey(ctx context.Context, op string, keyID *string, n *int32, spec kmsapi.DataKeySpec, ec map[string]string, dryRun *bool, tokens []string) (*key, []byte, []byte, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	size, err := dataKeyLength(n, spec)
	if err != nil {
		return nil, nil, nil, err
	}
	k, err := s.usableKey(ctx, scope, deref(keyID), "", cryptoAccess(op, ec, "", tokens))
	if err != nil {
		return nil, nil, nil, err
	}
	if deref(dryRun) {
		return nil, nil, nil, errDryRun()
	}
	dk := make([]byte, size)
	if _, err := io.ReadFull(s.rand, dk); err != nil {
		return nil, nil, nil, wrap("data key", err)
	}
	blob, err := s.encryptWith(ctx, k, strings.TrimPrefix(op, "kms:"), ec, dk)
	if err != nil {
		clear(dk)
		return nil, nil, nil, err
	}
	return k, dk, blob, nil
}

// GenerateDataKey returns a data key in plaintext and encrypted under a key.
func (s *Service) generateDataKeyOp(ctx context.Context, in *kmsapi.GenerateDataKeyInput) (*kmsapi.GenerateDataKeyOutput, error) {
	if err := refuseRecipient(in.Recipient); err != nil {
		return nil, err
	}
	k, dk, blob, err := s.generateDataKey(ctx, in.IAMAction(), in.KeyId, in.NumberOfBytes, in.KeySpec, in.EncryptionContext, in.DryRun, in.GrantTokens)
	if err != nil {
		return nil, err
	}
	return &kmsapi.GenerateDataKeyOutput{
		CiphertextBlob: blob,
		Plaintext:      sensitive.Bytes(dk),
		KeyId:          ptr(k.arn),
		KeyMaterialId:  ptr(k.useMaterial(ctx, k.meta.Material)),
	}, nil
}

// GenerateDataKeyWithoutPlaintext returns only the encrypted data key.
func (s *Service) generateDataKeyWithoutPlaintext(ctx context.Context, in *kmsapi.GenerateDataKeyWithoutPlaintextInput) (*kmsapi.GenerateDataKeyWithoutPlaintextOutput, error) {
	k, dk, blob, err := s.generateDataKey(ctx, in.IAMAction(), in.KeyId, in.NumberOfBytes, in.KeySpec, in.EncryptionContext, in.DryRun, in.GrantTokens)
	if err != nil {
		return nil, err
	}
	clear(dk)
	return &kmsapi.GenerateDataKeyWithoutPlaintextOutput{
		CiphertextBlob: blob,
		KeyId:          ptr(k.arn),
		KeyMaterialId:  ptr(k.useMaterial(ctx, k.meta.Material)),
	}, nil
}

// GenerateRandom returns cryptographically secure random bytes.
func (s *Service) GenerateRandom(ctx context.Context, in *kmsapi.GenerateRandomInput) (*kmsapi.GenerateRandomOutput, error) {
	if err := refuseRecipient(in.Recipient); err != nil {
		return nil, err
	}
	if in.CustomKeyStoreId != nil {
		scope, _, err := scopeOf(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := s.getKeyStore(ctx, nil, scope, *in.CustomKeyStoreId); err != nil {
			return nil, err
		}
		// AWS: "If you specify the ID of an external key store,
		// GenerateRandom throws an UnsupportedOperationException."
		return nil, awserr.Newf(codeUnsupported, "GenerateRandom is not supported for custom key store %s: it is an external key store.", *in.CustomKeyStoreId)
	}
	if in.NumberOfBytes == nil {
		return nil, awserr.Validation("NumberOfBytes is required.") // snapshot test_generate_random_invalid_number_of_bytes[None]
	}
	if err := s.authorizeAccount(ctx, act(in.IAMAction())); err != nil {
		return nil, err
	}
	b := make([]byte, *in.NumberOfBytes)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return nil, wrap("random", err)
	}
	return &kmsapi.GenerateRandomOutput{Plaintext: sensitive.Bytes(b)}, nil
}
