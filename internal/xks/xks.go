// Package xks is the client Keyfort's KMS uses to call an external key
// store proxy (XKS proxy), as the AWS KMS External Key Store Proxy API
// Specification (version 1) defines it: GetHealthStatus, GetKeyMetadata,
// Encrypt and Decrypt, POSTed as JSON over HTTPS (TLS 1.2 or later) and
// signed with SigV4 for the service kms-xks-proxy.
//
// Every failure is an [*Error] whose [Kind] says what the caller should
// report (the proxy could not be reached, its certificate was refused, it
// did not answer in time, it refused the credentials, it answered something
// unusable, or it answered one of the specification's errors). Errors never
// hold plaintext, key material or the secret access key. This package knows
// no service and no storage; package xkstest is a proxy for tests.
package xks

import (
	"strings"
	"time"

	"github.com/keyfort/keyfort/internal/sensitive"
)

// Service is the SigV4 signing name of XKS proxy requests.
const Service = "kms-xks-proxy"

// DefaultTimeout is how long AWS KMS waits for an XKS proxy to answer a
// call (connection, TLS handshake and exchange) before it fails the KMS
// request.
const DefaultTimeout = 250 * time.Millisecond

// MaxResponseBody bounds the body of a proxy's answer; a longer answer is
// an invalid response.
const MaxResponseBody = 64 << 10

// Wire values of the specification.
const (
	// EncryptionAlgorithm is the only encryptionAlgorithm of version 1.
	EncryptionAlgorithm = "AES_GCM"
	// IntegrityAlgorithm is the ciphertextDataIntegrityValueAlgorithm the
	// client asks for: SHA-256.
	IntegrityAlgorithm = "SHA_256"

	KeySpecAES256 = "AES_256" // keySpec of a 256-bit AES key

	KeyStatusEnabled  = "ENABLED"  // keyStatus
	KeyStatusDisabled = "DISABLED" // keyStatus

	KeyUsageEncrypt = "ENCRYPT" // keyUsage value of a key that encrypts
	KeyUsageDecrypt = "DECRYPT" // keyUsage value of a key that decrypts

	HealthActive      = "ACTIVE"      // ekmFleetDetails healthStatus: healthy
	HealthDegraded    = "DEGRADED"    // unhealthy, still serving
	HealthUnavailable = "UNAVAILABLE" // not serving
)

// Size limits of the specification.
const (
	MaxKeyIDLength        = 128 // externalKeyId
	MaxURIPathLength      = 128 // XksProxyUriPath
	MaxCiphertextMetadata = 20  // ciphertextMetadata, in bytes
	TagSize               = 16  // authenticationTag, in bytes
	MaxKeyUsages          = 10  // keyUsage values in a GetKeyMetadata answer
	MaxEKMFleet           = 10  // ekmFleetDetails entries in a GetHealthStatus answer
)

// URIPathSuffix ends every version 1 XksProxyUriPath.
const URIPathSuffix = "/kms/xks/v1"

// Operation names, as [Error.Op] and package xkstest report them.
const (
	OpGetHealthStatus = "GetHealthStatus"
	OpGetKeyMetadata  = "GetKeyMetadata"
	OpEncrypt         = "Encrypt"
	OpDecrypt         = "Decrypt"
)

// Proxy is where and how to reach one external key store's proxy.
type Proxy struct {
	// Endpoint is the XksProxyUriEndpoint: https://host[:port], without a
	// path. Any other scheme is refused.
	Endpoint string
	// Path is the XksProxyUriPath: [/prefix]/kms/xks/v1.
	Path string
	// AccessKeyID and Secret are the proxy authentication credential.
	AccessKeyID string
	Secret      sensitive.String
	// Region is the KMS region calling: the region of the SigV4 scope.
	Region string
}

// RequestMetadata is the requestMetadata sent with every call. Each
// operation sends only the members the specification lists for it, and the
// optional ones only when they are set:
//
//   - GetHealthStatus: kmsRequestId, kmsOperation.
//   - GetKeyMetadata: awsPrincipalArn, kmsOperation, kmsRequestId;
//     awsSourceVpc, awsSourceVpce, kmsKeyArn when set.
//   - Encrypt, Decrypt: awsPrincipalArn, kmsKeyArn, kmsOperation,
//     kmsRequestId; awsSourceVpc, awsSourceVpce, kmsViaService when set.
//
// A required member that is empty is refused (KindInvalidInput).
type RequestMetadata struct {
	AWSPrincipalARN string // awsPrincipalArn: the caller, a service principal or "AWS Internal"
	AWSSourceVPC    string // awsSourceVpc: the VPC of a request through a VPC endpoint
	AWSSourceVPCE   string // awsSourceVpce: the VPC endpoint of such a request
	KMSKeyARN       string // kmsKeyArn: the KMS key
	KMSOperation    string // kmsOperation: the KMS API, e.g. GenerateDataKey, KmsHealthCheck
	KMSRequestID    string // kmsRequestId: the KMS request id, as in CloudTrail
	KMSViaService   string // kmsViaService: the AWS service that called KMS
}

// Health is a GetHealthStatus answer.
type Health struct {
	ProxyFleetSize int    // xksProxyFleetSize, > 0
	ProxyVendor    string // xksProxyVendor
	ProxyModel     string // xksProxyModel
	EKMVendor      string // ekmVendor
	EKMFleet       []EKM  // ekmFleetDetails, 1 to 10 entries
}

// EKM is one external key manager of a Health answer.
type EKM struct {
	ID           string // id
	Model        string // model
	HealthStatus string // healthStatus: HealthActive, HealthDegraded or HealthUnavailable
}

// KeyMetadata is a GetKeyMetadata answer. The client checks its form, not
// its values: whether the key suits KMS (AES_256, ENCRYPT and DECRYPT,
// ENABLED) is the caller's decision.
type KeyMetadata struct {
	KeySpec   string   // keySpec, e.g. KeySpecAES256
	KeyUsage  []string // keyUsage, at most 10 values, e.g. ENCRYPT, DECRYPT
	KeyStatus string   // keyStatus: KeyStatusEnabled or KeyStatusDisabled
}

// Ciphertext is what an Encrypt answer returns, and what Decrypt sends back.
type Ciphertext struct {
	Ciphertext []byte // ciphertext, as long as the plaintext
	IV         []byte // initializationVector, 12 or 16 bytes
	Tag        []byte // authenticationTag, 16 bytes
	Metadata   []byte // ciphertextMetadata, at most 20 bytes, often empty
}

// ValidKeyID reports whether id is a valid externalKeyId: 1 to 128 of
// A-Z a-z 0-9 - . _
func ValidKeyID(id string) bool {
	if id == "" || len(id) > MaxKeyIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// ValidURIPath reports whether p is a valid version 1 XksProxyUriPath: at
// most 128 of A-Z a-z 0-9 / - _, starting with / and ending with
// /kms/xks/v1.
func ValidURIPath(p string) bool {
	if len(p) > MaxURIPathLength || !strings.HasPrefix(p, "/") || !strings.HasSuffix(p, URIPathSuffix) {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '/' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
