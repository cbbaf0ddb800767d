package kms

// The key-spec table: for each KeySpec of the KMS model, the key usages
// AWS allows with it and, per usage, the algorithms the key offers, whether
// AWS rotates it, and whether Keyfort can make such keys yet. CreateKey,
// DescribeKey and the rotation and cryptographic operations read it instead
// of spelling the facts of symmetric keys.

// Key usages (kmsapi.KeyUsageType values).
const (
	usageSignVerify   = "SIGN_VERIFY"
	usageMAC          = "GENERATE_VERIFY_MAC"
	usageKeyAgreement = "KEY_AGREEMENT"
)

// keySpec is one row of the table.
type keySpec struct {
	// usages are the KeyUsage values AWS allows, the default first
	// (CreateKey without KeyUsage means ENCRYPT_DECRYPT, which only some
	// specs allow).
	usages []string
	// encryption, signing, mac and agreement are the algorithms of each
	// usage (DescribeKey's EncryptionAlgorithms, SigningAlgorithms,
	// MacAlgorithms and KeyAgreementAlgorithms).
	encryption, signing, mac, agreement []string
	// rotatable: AWS rotates the key's material (automatic and on
	// demand).
	rotatable bool
	// materialSize is the length of the key's random material in bytes,
	// for specs whose material is random bytes (symmetric and HMAC keys).
	materialSize int
	// available: Keyfort creates keys of this spec; availableUsages, if
	// set, narrows it to those usages.
	available       bool
	availableUsages []string
	// chinaOnly: AWS offers the spec only in the China regions (SM2);
	// elsewhere CreateKey refuses it (errSM2Region).
	chinaOnly bool
}

var (
	rsaEncryption = []string{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"}
	// rsaSigning is in AWS's order (DescribeKey in the developer guide's
	// "Viewing the cryptographic configuration of KMS keys"): clients such
	// as cosign sign with the first one.
	rsaSigning = []string{"RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512",
		"RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512"}
	ecdhAgreement = []string{"ECDH"}
)

// keySpecs is the table, from the AWS KMS developer guide's key spec
// reference. SM2 keys exist only in the China regions on AWS.
var keySpecs = map[string]*keySpec{
	specSymmetric: {usages: []string{usageEncrypt}, encryption: []string{algSymmetric}, rotatable: true, available: true, materialSize: 32},
	"RSA_2048":    {usages: []string{usageEncrypt, usageSignVerify}, encryption: rsaEncryption, signing: rsaSigning, available: true},
	"RSA_3072":    {usages: []string{usageEncrypt, usageSignVerify}, encryption: rsaEncryption, signing: rsaSigning, available: true},
	"RSA_4096":    {usages: []string{usageEncrypt, usageSignVerify}, encryption: rsaEncryption, signing: rsaSigning, available: true},
	"ECC_NIST_P256": {usages: []string{usageSignVerify, usageKeyAgreement},
		signing: []string{"ECDSA_SHA_256"}, agreement: ecdhAgreement, available: true},
	"ECC_NIST_P384": {usages: []string{usageSignVerify, usageKeyAgreement},
		signing: []string{"ECDSA_SHA_384"}, agreement: ecdhAgreement, available: true},
	"ECC_NIST_P521": {usages: []string{usageSignVerify, usageKeyAgreement},
		signing: []string{"ECDSA_SHA_512"}, agreement: ecdhAgreement, available: true},
	"ECC_SECG_P256K1":       {usages: []string{usageSignVerify}, signing: []string{"ECDSA_SHA_256"}, available: true},
	"ECC_NIST_EDWARDS25519": {usages: []string{usageSignVerify}, signing: []string{"ED25519_SHA_512", "ED25519_PH_SHA_512"}, available: true},
	"HMAC_224":              {usages: []string{usageMAC}, mac: []string{"HMAC_SHA_224"}, available: true, materialSize: 28},
	"HMAC_256":              {usages: []string{usageMAC}, mac: []string{"HMAC_SHA_256"}, available: true, materialSize: 32},
	"HMAC_384":              {usages: []string{usageMAC}, mac: []string{"HMAC_SHA_384"}, available: true, materialSize: 48},
	"HMAC_512":              {usages: []string{usageMAC}, mac: []string{"HMAC_SHA_512"}, available: true, materialSize: 64},
	specSM2: {usages: []string{usageEncrypt, usageSignVerify, usageKeyAgreement},
		encryption: []string{"SM2PKE"}, signing: []string{algSM2}, agreement: ecdhAgreement, available: true, chinaOnly: true},
	"ML_DSA_44": {usages: []string{usageSignVerify}, signing: []string{"ML_DSA_SHAKE_256"}, available: true},
	"ML_DSA_65": {usages: []string{usageSignVerify}, signing: []string{"ML_DSA_SHAKE_256"}, available: true},
	"ML_DSA_87": {usages: []string{usageSignVerify}, signing: []string{"ML_DSA_SHAKE_256"}, available: true},
}

// allows reports whether the spec may be created with usage.
func (s *keySpec) allows(usage string) bool {
	for _, u := range s.usages {
		if u == usage {
			return true
		}
	}
	return false
}

// makes reports whether Keyfort creates keys of this spec with usage.
func (s *keySpec) makes(usage string) bool {
	if !s.available {
		return false
	}
	if s.availableUsages == nil {
		return true
	}
	for _, u := range s.availableUsages {
		if u == usage {
			return true
		}
	}
	return false
}

// algorithms returns the algorithms a key of this spec offers with usage,
// by kind; the others are nil.
func (s *keySpec) algorithms(usage string) (encryption, signing, mac, agreement []string) {
	switch usage {
	case usageEncrypt:
		return s.encryption, nil, nil, nil
	case usageSignVerify:
		return nil, s.signing, nil, nil
	case usageMAC:
		return nil, nil, s.mac, nil
	case usageKeyAgreement:
		return nil, nil, nil, s.agreement
	}
	return nil, nil, nil, nil
}

// specOf returns the table row of a stored key's spec (every stored spec
// has one).
func specOf(k *key) *keySpec {
	if s, ok := keySpecs[k.meta.Spec]; ok {
		return s
	}
	return &keySpec{}
}
