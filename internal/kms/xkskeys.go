package kms

// KMS keys in an external key store (origin EXTERNAL_KEY_STORE): symmetric
// encryption keys with two backing keys, their own key material and an
// external key the store's proxy holds (XksKeyId). Encryption is double:
// the material makes a version 2 blob (the inner blob), the proxy encrypts
// it (keymaterial's version 4 blob); decryption runs the other way. A key
// is Unavailable while its store is not connected (xksRef.Unavailable,
// kept by Connect and Disconnect), and every failure of the proxy is one
// of AWS's texts (proxyFailure).

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/identity"
	"github.com/keyfort/keyfort/internal/keymaterial"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/operation"
	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/xks"
)

// originExternalKeyStore is the origin of a key in an external key store.
const originExternalKeyStore = "EXTERNAL_KEY_STORE"

// stateUnavailable is the key state shown for a key whose store is not
// connected (its own state, Enabled or Disabled, comes back on connect).
const stateUnavailable = "Unavailable"

// xksRef is what a key in an external key store keeps of it.
type xksRef struct {
	// Store is the custom key store id (also the key record's Parent).
	Store string `json:"store"`
	// KeyID is the XksKeyId: the proxy's id of the external key.
	KeyID string `json:"keyId"`
	// Unavailable: the store is not connected.
	Unavailable bool `json:"unavailable,omitempty"`
}

// More exception codes of external key stores.
const (
	codeXksKeyInvalidConfig    = "XksKeyInvalidConfigurationException"
	codeXksKeyNotFound         = "XksKeyNotFoundException"
	codeXksKeyInUse            = "XksKeyAlreadyInUseException"
	codeXksProxyUnreachable    = "XksProxyUriUnreachableException"
	codeXksProxyBadCredential  = "XksProxyIncorrectAuthenticationCredentialException"
	codeXksProxyInvalidConfig  = "XksProxyInvalidConfigurationException"
	codeXksProxyInvalidAnswer  = "XksProxyInvalidResponseException"
	connErrInvalidCredentials  = "INVALID_CREDENTIALS"
	connErrAccessDenied        = "XKS_PROXY_ACCESS_DENIED"
	connErrNotReachable        = "XKS_PROXY_NOT_REACHABLE"
	connErrInvalidResponse     = "XKS_PROXY_INVALID_RESPONSE"
	connErrInvalidConfig       = "XKS_PROXY_INVALID_CONFIGURATION"
	connErrTimedOut            = "XKS_PROXY_TIMED_OUT"
	connErrInvalidTLS          = "XKS_PROXY_INVALID_TLS_CONFIGURATION"
	connErrNetwork             = "NETWORK_ERRORS"
	msgProxyNotConnected       = "This KMS key is in a custom key store that is not connected to its external key store proxy. Connect the external key store and try the request again."
	msgProxyBadAnswer          = "AWS KMS cannot interpret the response from the external key store proxy. If you see this error repeatedly, report it to your external key store proxy administrator."
	msgProxyUnhealthy          = "The external key store proxy is in an unhealthy state. If you see this message repeatedly, notify your external key store proxy administrator."
	msgProxyReturnedCorruption = "The ciphertext that the external key store proxy submitted for decryption, or the encryption context, is corrupted, missing, or otherwise invalid."
)

// proxyFailure is a failed call to a proxy as AWS reports it: the same
// message whatever the operation, under the exception of the operation's
// kind (the XKS Proxy API specification's table of KMS considerations).
type proxyFailure struct {
	store   string // CreateCustomKeyStore, UpdateCustomKeyStore
	key     string // CreateKey
	connErr string // the ConnectionErrorCode of a failed ConnectCustomKeyStore
	msg     string
}

func (f *proxyFailure) Error() string { return f.msg }

// proxyFailures maps a proxy's errorName to its failure.
var proxyFailures = map[string]proxyFailure{
	xks.NameValidation:        {codeXksProxyInvalidAnswer, codeKeyStoreInvalidState, connErrInvalidResponse, msgProxyBadAnswer},
	xks.NameInvalidState:      {codeXksProxyInvalidAnswer, codeXksKeyInvalidConfig, connErrInvalidResponse, "The external key associated with this KMS key in an external key store is not enabled in the external key manager. Enable the external key in the external key manager and retry the request."},
	xks.NameInvalidCiphertext: {codeXksProxyInvalidAnswer, codeKeyStoreInvalidState, connErrInvalidResponse, "The external key store proxy rejected the request because the specified ciphertext or encryption context is corrupted, missing, or otherwise invalid."},
	xks.NameInvalidKeyUsage:   {codeXksProxyInvalidAnswer, codeXksKeyInvalidConfig, connErrInvalidResponse, "The external key associated with this KMS key in an external key store does not support the requested operation. Enable the operation on the key in your external key manager, and try the request again."},
	xks.NameAccessDenied:      {codeXksProxyInvalidConfig, codeKeyStoreInvalidState, connErrAccessDenied, "The external key store proxy denied access to the operation. Verify that the user and the external key are both authorized for this operation, and try the request again."},
	xks.NameKeyNotFound:       {codeXksProxyInvalidAnswer, codeXksKeyNotFound, connErrInvalidResponse, "The external key associated with this KMS key in an external key store was not found in its external key manager. If the external key ID associated with this KMS key is incorrect, create a new KMS key with the correct external key ID."},
	xks.NameInvalidURIPath:    {codeXksProxyInvalidConfig, codeKeyStoreInvalidState, connErrInvalidConfig, "The external key store proxy rejected the request because of an invalid URI path. Verify the URI path for your external key store and update if necessary."},
	xks.NameUnsupportedOperation: {codeXksProxyInvalidAnswer, codeKeyStoreInvalidState, connErrInvalidResponse,
		"The external key store proxy rejected the request because it does not support the requested operation. If you see this error repeatedly, report it to your external key store proxy administrator."},
	xks.NameDependencyTimeout: {codeXksProxyUnreachable, codeKeyStoreInvalidState, connErrTimedOut, "The external key store proxy did not respond to the request in the time allotted. Retry the request. If you see this error repeatedly, report it to your external key store proxy administrator."},
	xks.NameThrottling:        {codeXksProxyUnreachable, codeKeyStoreInvalidState, connErrNetwork, "The external key store proxy rejected the request due to a very high request rate. Reduce the frequency of your calls using KMS keys in this external key store."},
	xks.NameInternal:          {codeXksProxyInvalidAnswer, codeKeyStoreInvalidState, connErrInvalidResponse, "The external key store proxy rejected the request because it cannot communicate with the external key manager. Verify that the external key store proxy configuration is correct and that the external key manager is available."},
}

// kindFailures maps the other kinds of failed calls.
var kindFailures = map[xks.Kind]proxyFailure{
	xks.KindAuthFailed:      {codeXksProxyBadCredential, codeKeyStoreInvalidState, connErrInvalidCredentials, "The external key store proxy rejected the request because it could not authenticate AWS KMS. Verify the XKS proxy authentication credentials for your external key store and update if necessary."},
	xks.KindUnreachable:     {codeXksProxyUnreachable, codeKeyStoreInvalidState, connErrNotReachable, "AWS KMS cannot communicate with the external key store proxy. This might be a transient network issue. If you see this error repeatedly, verify that your external key store proxy is active and is connected to the network, and that its endpoint URI is correct in your external keystore."},
	xks.KindTLSInvalid:      {codeXksProxyUnreachable, codeKeyStoreInvalidState, connErrInvalidTLS, "AWS KMS cannot establish a TLS connection to the external key store proxy. Verify the TLS configuration, including its certificate."},
	xks.KindTimeout:         {codeXksProxyUnreachable, codeKeyStoreInvalidState, connErrTimedOut, "AWS KMS rejected the request because the external key store proxy did not respond in time. Retry the request. If you see this error repeatedly, report it to your external key store proxy administrator."},
	xks.KindInvalidResponse: {codeXksProxyInvalidAnswer, codeKeyStoreInvalidState, connErrInvalidResponse, msgProxyBadAnswer},
	xks.KindConfig:          {codeXksProxyInvalidConfig, codeKeyStoreInvalidState, connErrInvalidConfig, "The external key store proxy configuration is not valid. Verify the URI endpoint and URI path of your external key store."},
}

// asProxyFailure returns the failure err (from package xks) is, or nil
// when err is not a failed call (an internal error).
func asProxyFailure(err error) *proxyFailure {
	var f *proxyFailure
	if errors.As(err, &f) {
		return f
	}
	var e *xks.Error
	if !errors.As(err, &e) {
		return nil
	}
	if e.Kind == xks.KindProxy {
		if f, ok := proxyFailures[e.Name]; ok {
			return &f
		}
		f := kindFailures[xks.KindInvalidResponse]
		return &f
	}
	if f, ok := kindFailures[e.Kind]; ok {
		return &f
	}
	// KindInvalidInput: Keyfort sent what it must not; an internal error.
	return nil
}

// failedCall is err, a failed call to a proxy for KMS operation op: its
// proxyFailure, logged (the proxy's own text goes to the log only, as AWS
// sends it to CloudWatch, never to the caller), or, when err is not a
// failed call, the internal error it is.
func (s *Service) failedCall(ctx context.Context, op string, err error) (*proxyFailure, error) {
	f := asProxyFailure(err)
	if f == nil {
		return nil, wrap("xks call for "+op, err)
	}
	s.log.InfoContext(ctx, "external key store proxy call failed", "operation", op, "error", err.Error())
	return f, nil
}

// proxyHealth asks the proxy p for its health (GetHealthStatus, on behalf
// of KMS operation op). A failed call, or a proxy whose every external key
// manager is UNAVAILABLE, is a *proxyFailure.
func (s *Service) proxyHealth(ctx context.Context, p xks.Proxy, op string) error {
	h, err := retried(ctx, func() (*xks.Health, error) {
		return s.xks.Health(ctx, p, xks.RequestMetadata{KMSOperation: op, KMSRequestID: requestID(ctx)})
	})
	if err != nil {
		f, ierr := s.failedCall(ctx, op, err)
		if f == nil {
			return ierr
		}
		return f
	}
	for _, e := range h.EKMFleet {
		if e.HealthStatus != xks.HealthUnavailable {
			return nil
		}
	}
	return &proxyFailure{store: codeXksProxyUnreachable, key: codeKeyStoreInvalidState, connErr: connErrNotReachable, msg: msgProxyUnhealthy}
}

// checkProxyHealth is proxyHealth for CreateCustomKeyStore and
// UpdateCustomKeyStore: a failure is their exception.
func (s *Service) checkProxyHealth(ctx context.Context, p xks.Proxy, op string) error {
	err := s.proxyHealth(ctx, p, op)
	var f *proxyFailure
	if errors.As(err, &f) {
		return awserr.New(f.store, f.msg)
	}
	return err
}

// requestID is what the proxy is given as kmsRequestId: the request's id,
// the requestID of its CloudTrail event (its event id without a caller).
func requestID(ctx context.Context) string {
	if c := identity.From(ctx); c != nil && c.RequestID != "" {
		return c.RequestID
	}
	if id := operation.EventID(ctx); id != "" {
		return id
	}
	return "keyfort-internal"
}

// callerMetadata is the requestMetadata of a call to the proxy for KMS
// operation op made for the request's caller.
func callerMetadata(ctx context.Context, op string) xks.RequestMetadata {
	md := xks.RequestMetadata{KMSOperation: op, KMSRequestID: requestID(ctx), AWSPrincipalARN: "AWS Internal"}
	if c := identity.From(ctx); c != nil && c.ARN != "" {
		md.AWSPrincipalARN = c.ARN
	}
	return md
}

// cryptoMetadata is the requestMetadata of a cryptographic call to the
// proxy for key k in KMS operation op.
func cryptoMetadata(ctx context.Context, k *key, op string) xks.RequestMetadata {
	md := callerMetadata(ctx, op)
	md.KMSKeyARN = k.arn
	if v := identity.ViaFrom(ctx); v != nil && v.Service != "" {
		// kms:ViaService's secretsmanager.<region>.amazonaws.com: the
		// proxy is given the service's short name.
		md.KMSViaService, _, _ = strings.Cut(v.Service, ".")
	}
	return md
}

// checkExternalKey checks CreateKey's parameters for a key in an
// external key store and asks the proxy for the external key's metadata.
// It returns the store's reference for the new key.
func (s *Service) checkExternalKey(ctx context.Context, scope storage.Scope, in *kmsapi.CreateKeyInput, spec, usage string) (*xksRef, error) {
	switch {
	case in.CustomKeyStoreId == nil:
		return nil, errValidation("Origin EXTERNAL_KEY_STORE requires a CustomKeyStoreId.")
	case in.XksKeyId == nil:
		return nil, errValidation("Origin EXTERNAL_KEY_STORE requires an XksKeyId.")
	case deref(in.MultiRegion):
		return nil, awserr.New(codeUnsupported, "You cannot create a multi-Region key in a custom key store.")
	case spec != specSymmetric || usage != usageEncrypt:
		return nil, awserr.Newf(codeUnsupported, "KeySpec %s with KeyUsage %s is not valid in an external key store: only SYMMETRIC_DEFAULT keys for ENCRYPT_DECRYPT are.", spec, usage)
	}
	ks, err := s.getKeyStore(ctx, nil, scope, *in.CustomKeyStoreId)
	if err != nil {
		return nil, err
	}
	if ks.meta.State != connConnected {
		return nil, awserr.New(codeKeyStoreInvalidState, msgProxyNotConnected)
	}
	ref := &xksRef{Store: ks.rec.ID, KeyID: *in.XksKeyId}
	if err := s.checkXksKeyFree(ctx, nil, scope, ref); err != nil {
		return nil, err
	}
	c, err := s.credential(ks)
	if err != nil {
		return nil, err
	}
	md := callerMetadata(ctx, "CreateKey")
	m, err := retried(ctx, func() (*xks.KeyMetadata, error) { return s.xks.KeyMetadata(ctx, proxyOf(ks, c), ref.KeyID, md) })
	if err != nil {
		f, ierr := s.failedCall(ctx, "CreateKey", err)
		if f == nil {
			return nil, ierr
		}
		return nil, awserr.New(f.key, f.msg)
	}
	switch {
	case m.KeySpec != xks.KeySpecAES256:
		return nil, awserr.Newf(codeXksKeyInvalidConfig, "The key spec of the external key must be AES_256. The key spec of specified external key is %s.", m.KeySpec)
	case m.KeyStatus != xks.KeyStatusEnabled:
		return nil, awserr.Newf(codeXksKeyInvalidConfig, "The status of the external key must be ENABLED. The status of specified external key is %s.", m.KeyStatus)
	case !slices.Contains(m.KeyUsage, xks.KeyUsageEncrypt) || !slices.Contains(m.KeyUsage, xks.KeyUsageDecrypt):
		return nil, awserr.Newf(codeXksKeyInvalidConfig, "The key usage of the external key must include ENCRYPT and DECRYPT. The key use of specified external key is %s.", strings.Join(m.KeyUsage, ", "))
	}
	return ref, nil
}

// checkXksKeyFree refuses an external key that another KMS key of the
// store uses (read through r, or the store when r is nil).
func (s *Service) checkXksKeyFree(ctx context.Context, r storage.Reader, scope storage.Scope, ref *xksRef) error {
	keys, err := s.storeKeys(ctx, r, scope, ref.Store)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.meta.XKS != nil && k.meta.XKS.KeyID == ref.KeyID {
			return awserr.Newf(codeXksKeyInUse, "The external key %s is already associated with KMS key %s in custom key store %s. Each KMS key in an external key store must be associated with a different external key.", ref.KeyID, k.arn, ref.Store)
		}
	}
	return nil
}

// recheckExternalKey repeats, in the transaction that inserts the key, the
// checks that another request could have undone since checkExternalKey.
func (s *Service) recheckExternalKey(ctx context.Context, tx storage.Tx, scope storage.Scope, ref *xksRef) error {
	ks, err := s.getKeyStore(ctx, tx, scope, ref.Store)
	if err != nil {
		return err
	}
	if ks.meta.State != connConnected {
		return awserr.New(codeKeyStoreInvalidState, msgProxyNotConnected)
	}
	return s.checkXksKeyFree(ctx, tx, scope, ref)
}

// connectedStore returns the store of k with its proxy, or
// KMSInvalidStateException when the store is not connected.
func (s *Service) connectedStore(ctx context.Context, k *key) (xks.Proxy, error) {
	ks, err := s.getKeyStore(ctx, nil, k.rec.Scope, k.meta.XKS.Store)
	if err != nil {
		if e, ok := awserr.As(err); ok && e.Code == codeCustomKeyStoreNF {
			return xks.Proxy{}, wrap("key "+k.rec.ID, errors.New("its custom key store is gone"))
		}
		return xks.Proxy{}, err
	}
	if ks.meta.State != connConnected {
		return xks.Proxy{}, awserr.New(codeInvalidState, msgProxyNotConnected)
	}
	c, err := s.credential(ks)
	if err != nil {
		return xks.Proxy{}, err
	}
	return proxyOf(ks, c), nil
}

// cryptoFailure is a failed cryptographic call to the proxy as the caller
// sees it: KMSInvalidStateException with AWS's text for the failure.
func (s *Service) cryptoFailure(ctx context.Context, op string, err error) error {
	f, ierr := s.failedCall(ctx, op, err)
	if f == nil {
		return ierr
	}
	return awserr.New(codeInvalidState, f.msg)
}

// encryptExternal is encryptWith for a key in an external key store: the
// inner blob under k's material (whose header is h), encrypted by the
// proxy.
func (s *Service) encryptExternal(ctx context.Context, k *key, h keymaterial.Header, op string, ec map[string]string, inner []byte) ([]byte, error) {
	p, err := s.connectedStore(ctx, k)
	if err != nil {
		return nil, err
	}
	h.External = true
	aad := keymaterial.ExternalAAD(h, ec)
	md := cryptoMetadata(ctx, k, op)
	ct, err := retried(ctx, func() (*xks.Ciphertext, error) { return s.xks.Encrypt(ctx, p, k.meta.XKS.KeyID, md, inner, aad) })
	if err != nil {
		return nil, s.cryptoFailure(ctx, op, err)
	}
	blob, err := keymaterial.AppendExternalBlob(h, keymaterial.External{IV: ct.IV, Tag: ct.Tag, Metadata: ct.Metadata, Ciphertext: ct.Ciphertext})
	if err != nil || len(ct.Ciphertext) != len(inner) {
		return nil, awserr.New(codeInvalidState, msgProxyBadAnswer)
	}
	return blob, nil
}

// decryptExternal opens the proxy's layer of a version 4 blob of k: the
// inner blob, checked to name the same key and material.
func (s *Service) decryptExternal(ctx context.Context, k *key, op string, ec map[string]string, blob []byte) ([]byte, error) {
	h, x, err := keymaterial.ParseExternalBlob(blob)
	if err != nil {
		return nil, errInvalidCiphertext()
	}
	p, err := s.connectedStore(ctx, k)
	if err != nil {
		return nil, err
	}
	ct := &xks.Ciphertext{Ciphertext: x.Ciphertext, IV: x.IV, Tag: x.Tag, Metadata: x.Metadata}
	md, aad := cryptoMetadata(ctx, k, op), keymaterial.ExternalAAD(h, ec)
	inner, err := retried(ctx, func() ([]byte, error) { return s.xks.Decrypt(ctx, p, k.meta.XKS.KeyID, md, ct, aad) })
	if err != nil {
		return nil, s.cryptoFailure(ctx, op, err)
	}
	if !keymaterial.InnerMatches(h, inner) {
		return nil, awserr.New(codeInvalidState, msgProxyReturnedCorruption)
	}
	return inner, nil
}

// retried runs call, and once more when it timed out while ctx had time
// left: AWS KMS retries a proxy call once after a network timeout.
func retried[T any](ctx context.Context, call func() (T, error)) (T, error) {
	v, err := call()
	if err != nil && xks.KindOf(err) == xks.KindTimeout && ctx.Err() == nil {
		return call()
	}
	return v, err
}

// errUnavailable is the answer of an operation that needs the key's store
// connected.
func errUnavailable(arn string) error {
	return awserr.Newf(codeInvalidState, "%s is unavailable.", arn)
}

// shownState is the KeyState of k: Unavailable for an enabled or disabled
// key whose external key store is not connected.
func (m *keyMeta) shownState() string {
	if m.XKS != nil && m.XKS.Unavailable && (m.State == stateEnabled || m.State == stateDisabled) {
		return stateUnavailable
	}
	return m.State
}
