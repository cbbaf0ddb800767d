package kms

// Custom key stores. Keyfort has external key stores (EXTERNAL_KEY_STORE):
// an external key store proxy the operator runs (the XKS Proxy API,
// package xks) holds an AES-256 key for each KMS key, and every encryption
// is double: under the KMS key's own material, then by the proxy
// (xkskeys.go). A store is reached on its public endpoint
// (PUBLIC_ENDPOINT); VPC endpoint services (VPC_ENDPOINT_SERVICE) and
// CloudHSM clusters (AWS_CLOUDHSM) are AWS's own networks, which Keyfort
// cannot reach: it answers for them as AWS answers for a service or a
// cluster that does not exist.
//
// A store's record holds its configuration and connection state; its
// proxy credential is sealed under the root key. Connecting asks the
// proxy for its health and ends CONNECTED or FAILED before the operation
// answers (AWS answers CONNECTING and finishes later). Disconnecting marks
// every key of the store Unavailable in the same transaction, connecting
// clears the mark, so a key's state never needs the store's record.

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"time"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/envelope"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/sensitive"
	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/xks"
)

// kindKeyStore records are custom key stores; their ID is the store id.
const kindKeyStore storage.Kind = "kms.keystore"

// Custom key store types, connection states and connectivity.
const (
	storeExternal = "EXTERNAL_KEY_STORE"
	storeCloudHSM = "AWS_CLOUDHSM"

	connConnected    = "CONNECTED"
	connDisconnected = "DISCONNECTED"
	connFailed       = "FAILED"

	connectivityPublic = "PUBLIC_ENDPOINT"
	connectivityVPC    = "VPC_ENDPOINT_SERVICE"

	// maxKeyStores is AWS's quota of custom key stores per account and
	// Region, whatever their state.
	maxKeyStores = 10
)

// More KMS exception codes of custom key stores.
const (
	codeKeyStoreInvalidState = "CustomKeyStoreInvalidStateException"
	codeKeyStoreNameInUse    = "CustomKeyStoreNameInUseException"
	codeKeyStoreHasKeys      = "CustomKeyStoreHasCMKsException"
	codeClusterNotFound      = "CloudHsmClusterNotFoundException"
	codeXksURIInUse          = "XksProxyUriInUseException"
	codeXksVPCNotFound       = "XksProxyVpcEndpointServiceNotFoundException"
)

// keyStoreMeta is the stored, non-secret part of a custom key store.
type keyStoreMeta struct {
	Name         string    `json:"name"`
	Type         string    `json:"type"`
	Created      time.Time `json:"created"`
	State        string    `json:"state"`
	ErrorCode    string    `json:"errorCode,omitempty"`
	Connectivity string    `json:"connectivity"`
	Endpoint     string    `json:"endpoint"`
	Path         string    `json:"path"`
}

// keyStoreCredential is the sealed part: the proxy authentication
// credential.
type keyStoreCredential struct {
	AccessKeyID string `json:"id"`
	Secret      string `json:"secret"`
}

// keyStore is a loaded custom key store record.
type keyStore struct {
	rec  *storage.Record
	meta keyStoreMeta
}

func keyStoreAAD(scope storage.Scope, id string) envelope.AAD {
	return envelope.AAD{Kind: string(kindKeyStore), Account: scope.Account, Region: scope.Region, ID: id, Version: 1, Column: "credential"}
}

// newKeyStoreID returns a custom key store id as AWS shows them: cks- and
// 17 hex digits.
func newKeyStoreID(r io.Reader) (string, error) {
	var b [9]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", wrap("key store id", err)
	}
	return "cks-" + hex.EncodeToString(b[:])[:17], nil
}

func decodeKeyStore(rec *storage.Record) (*keyStore, error) {
	ks := &keyStore{rec: rec}
	if err := json.Unmarshal(rec.Data, &ks.meta); err != nil {
		return nil, wrap("decode key store "+rec.ID, err)
	}
	return ks, nil
}

func (ks *keyStore) encode() error {
	b, err := json.Marshal(&ks.meta)
	if err != nil {
		return wrap("encode key store", err)
	}
	ks.rec.Data = b
	return nil
}

// credential opens the store's sealed proxy credential.
func (s *Service) credential(ks *keyStore) (keyStoreCredential, error) {
	var c keyStoreCredential
	raw, err := s.sealer.Open(keyStoreAAD(ks.rec.Scope, ks.rec.ID), ks.rec.Sealed)
	if err != nil {
		return c, wrap("open key store credential "+ks.rec.ID, err)
	}
	defer clear(raw)
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, wrap("decode key store credential "+ks.rec.ID, err)
	}
	return c, nil
}

// sealCredential seals c as the Sealed column of the store record id.
func (s *Service) sealCredential(ctx context.Context, tx storage.Tx, scope storage.Scope, id string, c keyStoreCredential) ([]byte, error) {
	raw, err := json.Marshal(&c)
	if err != nil {
		return nil, wrap("encode key store credential", err)
	}
	defer clear(raw)
	if s.sealKey == nil {
		return s.sealer.Seal(keyStoreAAD(scope, id), raw)
	}
	kid, err := s.sealKey(ctx, tx)
	if err != nil {
		return nil, wrap("seal key store credential", err)
	}
	return s.sealer.SealUnder(kid, keyStoreAAD(scope, id), raw)
}

// proxyOf is the proxy of a store with credential c, as the store's
// region calls it.
func proxyOf(ks *keyStore, c keyStoreCredential) xks.Proxy {
	return xks.Proxy{Endpoint: ks.meta.Endpoint, Path: ks.meta.Path, AccessKeyID: c.AccessKeyID, Secret: sensitive.String(c.Secret), Region: ks.rec.Scope.Region}
}

// getKeyStore reads the store id of scope (CustomKeyStoreNotFoundException
// if there is none) through r, or the store when r is nil.
func (s *Service) getKeyStore(ctx context.Context, r storage.Reader, scope storage.Scope, id string) (*keyStore, error) {
	var rec *storage.Record
	var err error
	if r != nil {
		rec, err = r.Get(ctx, kindKeyStore, scope, id)
	} else {
		rec, err = s.store.Get(ctx, kindKeyStore, scope, id)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errNoKeyStore(id)
	}
	if err != nil {
		return nil, wrap("get key store", err)
	}
	return decodeKeyStore(rec)
}

// listKeyStores returns every custom key store of scope, by id.
func listKeyStores(ctx context.Context, r storage.Reader, scope storage.Scope) ([]*keyStore, error) {
	recs, err := r.List(ctx, kindKeyStore, scope, storage.ListOptions{})
	if err != nil {
		return nil, wrap("list key stores", err)
	}
	out := make([]*keyStore, 0, len(recs))
	for _, rec := range recs {
		ks, err := decodeKeyStore(rec)
		if err != nil {
			return nil, err
		}
		out = append(out, ks)
	}
	return out, nil
}

// checkUnique refuses a store name or proxy URI that another store of the
// scope (not id) has.
func checkUnique(stores []*keyStore, id, name, endpoint, path string) error {
	for _, o := range stores {
		if o.rec.ID == id {
			continue
		}
		if name != "" && o.meta.Name == name {
			return awserr.Newf(codeKeyStoreNameInUse, "Custom key store name %s is already in use in this account and Region.", name)
		}
		if endpoint != "" && o.meta.Endpoint == endpoint && o.meta.Path == path {
			return awserr.Newf(codeXksURIInUse, "The external key store proxy URI %s%s is already associated with custom key store %s.", endpoint, path, o.rec.ID)
		}
	}
	return nil
}

// storeEntry renders a store as DescribeCustomKeyStores lists it.
func (s *Service) storeEntry(ks *keyStore) (kmsapi.CustomKeyStoresListEntry, error) {
	m := &ks.meta
	e := kmsapi.CustomKeyStoresListEntry{
		CustomKeyStoreId:   ptr(ks.rec.ID),
		CustomKeyStoreName: ptr(m.Name),
		ConnectionState:    kmsapi.ConnectionStateType(m.State),
		CreationDate:       ptr(m.Created),
		CustomKeyStoreType: kmsapi.CustomKeyStoreType(m.Type),
	}
	if m.State == connFailed {
		e.ConnectionErrorCode = kmsapi.ConnectionErrorCodeType(m.ErrorCode)
	}
	c, err := s.credential(ks)
	if err != nil {
		return e, err
	}
	e.XksProxyConfiguration = &kmsapi.XksProxyConfigurationType{
		Connectivity: kmsapi.XksProxyConnectivityType(m.Connectivity),
		AccessKeyId:  ptr(sensitive.String(c.AccessKeyID)),
		UriEndpoint:  ptr(m.Endpoint),
		UriPath:      ptr(m.Path),
	}
	return e, nil
}

// CreateCustomKeyStore implements kmsapi.Service.
func (s *Service) CreateCustomKeyStore(ctx context.Context, in *kmsapi.CreateCustomKeyStoreInput) (*kmsapi.CreateCustomKeyStoreOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.authorizeAccount(ctx, act(in.IAMAction())); err != nil {
		return nil, err
	}
	typ := string(in.CustomKeyStoreType)
	if typ == "" {
		typ = storeCloudHSM
	}
	if typ == storeCloudHSM {
		return nil, checkCloudHSM(in)
	}
	if err := checkExternalStoreInput(in); err != nil {
		return nil, err
	}
	if in.XksProxyConnectivity == connectivityVPC {
		return nil, errNoVPCService(deref(in.XksProxyVpcEndpointServiceName))
	}
	name := deref(in.CustomKeyStoreName)
	endpoint, path := deref(in.XksProxyUriEndpoint), deref(in.XksProxyUriPath)
	cred := keyStoreCredential{AccessKeyID: in.XksProxyAuthenticationCredential.AccessKeyId.Reveal(), Secret: in.XksProxyAuthenticationCredential.RawSecretAccessKey.Reveal()}
	// The name and URI are checked before the proxy is asked, and again
	// in the transaction that inserts the store.
	err = s.store.View(ctx, func(r storage.Reader) error {
		stores, err := listKeyStores(ctx, r, scope)
		if err != nil {
			return err
		}
		if len(stores) >= maxKeyStores {
			return errKeyStoreLimit()
		}
		return checkUnique(stores, "", name, endpoint, path)
	})
	if err != nil {
		return nil, err
	}
	id, err := newKeyStoreID(s.rand)
	if err != nil {
		return nil, err
	}
	draft := &keyStore{rec: &storage.Record{Kind: kindKeyStore, Scope: scope, ID: id}, meta: keyStoreMeta{Endpoint: endpoint, Path: path}}
	if err := s.checkProxyHealth(ctx, proxyOf(draft, cred), "CreateCustomKeyStore"); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	draft.meta = keyStoreMeta{Name: name, Type: storeExternal, Created: now, State: connDisconnected, Connectivity: connectivityPublic, Endpoint: endpoint, Path: path}
	draft.rec.Created = now.UnixNano()
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		stores, err := listKeyStores(ctx, tx, scope)
		if err != nil {
			return err
		}
		if len(stores) >= maxKeyStores {
			return errKeyStoreLimit()
		}
		if err := checkUnique(stores, "", name, endpoint, path); err != nil {
			return err
		}
		rec := *draft.rec
		ks := &keyStore{rec: &rec, meta: draft.meta}
		if err := ks.encode(); err != nil {
			return err
		}
		if ks.rec.Sealed, err = s.sealCredential(ctx, tx, scope, id, cred); err != nil {
			return err
		}
		if err := tx.Insert(ctx, ks.rec); err != nil {
			return wrap("insert key store", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &kmsapi.CreateCustomKeyStoreOutput{CustomKeyStoreId: ptr(id)}, nil
}

// checkCloudHSM answers CreateCustomKeyStore for an AWS CloudHSM key store:
// its parameters are checked, and then the cluster is not found, as none
// is ever reachable from Keyfort.
func checkCloudHSM(in *kmsapi.CreateCustomKeyStoreInput) error {
	switch {
	case in.XksProxyUriEndpoint != nil || in.XksProxyUriPath != nil || in.XksProxyAuthenticationCredential != nil ||
		in.XksProxyConnectivity != "" || in.XksProxyVpcEndpointServiceName != nil || in.XksProxyVpcEndpointServiceOwner != nil:
		return errValidation("The XksProxy parameters are valid only for a custom key store of type EXTERNAL_KEY_STORE.")
	case in.CloudHsmClusterId == nil:
		return errValidation("CloudHsmClusterId is required for a custom key store of type AWS_CLOUDHSM.")
	case in.TrustAnchorCertificate == nil:
		return errValidation("TrustAnchorCertificate is required for a custom key store of type AWS_CLOUDHSM.")
	case in.KeyStorePassword == nil:
		return errValidation("KeyStorePassword is required for a custom key store of type AWS_CLOUDHSM.")
	}
	return awserr.Newf(codeClusterNotFound, "Cannot find the CloudHSM cluster %s. Keyfort cannot reach AWS CloudHSM clusters.", *in.CloudHsmClusterId)
}

// checkExternalStoreInput checks the parameters of an external key store
// that the model's shapes do not.
func checkExternalStoreInput(in *kmsapi.CreateCustomKeyStoreInput) error {
	switch {
	case in.CloudHsmClusterId != nil || in.TrustAnchorCertificate != nil || in.KeyStorePassword != nil:
		return errValidation("CloudHsmClusterId, TrustAnchorCertificate and KeyStorePassword are valid only for a custom key store of type AWS_CLOUDHSM.")
	case in.XksProxyConnectivity == "":
		return errValidation("XksProxyConnectivity is required for a custom key store of type EXTERNAL_KEY_STORE.")
	case in.XksProxyUriEndpoint == nil:
		return errValidation("XksProxyUriEndpoint is required for a custom key store of type EXTERNAL_KEY_STORE.")
	case in.XksProxyUriPath == nil:
		return errValidation("XksProxyUriPath is required for a custom key store of type EXTERNAL_KEY_STORE.")
	case in.XksProxyAuthenticationCredential == nil:
		return errValidation("XksProxyAuthenticationCredential is required for a custom key store of type EXTERNAL_KEY_STORE.")
	case in.XksProxyConnectivity == connectivityVPC && in.XksProxyVpcEndpointServiceName == nil:
		return errValidation("XksProxyVpcEndpointServiceName is required when XksProxyConnectivity is VPC_ENDPOINT_SERVICE.")
	case in.XksProxyConnectivity == connectivityPublic && (in.XksProxyVpcEndpointServiceName != nil || in.XksProxyVpcEndpointServiceOwner != nil):
		return errValidation("XksProxyVpcEndpointServiceName and XksProxyVpcEndpointServiceOwner are valid only when XksProxyConnectivity is VPC_ENDPOINT_SERVICE.")
	}
	return nil
}

// errNoVPCService is AWS's answer for a VPC endpoint service it cannot
// find; Keyfort has no VPC endpoint services.
func errNoVPCService(name string) error {
	return awserr.Newf(codeXksVPCNotFound, "Cannot find the VPC endpoint service %s. Keyfort reaches external key store proxies on their public endpoint only (XksProxyConnectivity PUBLIC_ENDPOINT).", name)
}

func errKeyStoreLimit() error {
	return awserr.Newf(codeLimitExceeded, "You have reached the limit of %d custom key stores in this account and Region.", maxKeyStores)
}

// DescribeCustomKeyStores implements kmsapi.Service: the stores of the
// caller's account and Region by id, or the one its id or name names.
func (s *Service) DescribeCustomKeyStores(ctx context.Context, in *kmsapi.DescribeCustomKeyStoresInput) (*kmsapi.DescribeCustomKeyStoresOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.authorizeAccount(ctx, act(in.IAMAction())); err != nil {
		return nil, err
	}
	if in.CustomKeyStoreId != nil && in.CustomKeyStoreName != nil {
		return nil, errValidation("You cannot specify both CustomKeyStoreId and CustomKeyStoreName.")
	}
	after := ""
	if in.Marker != nil {
		if after, err = s.marker.decode("customkeystores", *in.Marker); err != nil {
			return nil, err
		}
	}
	var stores []*keyStore
	if err := s.store.View(ctx, func(r storage.Reader) error {
		var err error
		stores, err = listKeyStores(ctx, r, scope)
		return err
	}); err != nil {
		return nil, err
	}
	switch {
	case in.CustomKeyStoreId != nil:
		stores = slices.DeleteFunc(stores, func(ks *keyStore) bool { return ks.rec.ID != *in.CustomKeyStoreId })
		if len(stores) == 0 {
			return nil, errNoKeyStore(*in.CustomKeyStoreId)
		}
	case in.CustomKeyStoreName != nil:
		stores = slices.DeleteFunc(stores, func(ks *keyStore) bool { return ks.meta.Name != *in.CustomKeyStoreName })
		if len(stores) == 0 {
			return nil, errNoKeyStore(*in.CustomKeyStoreName)
		}
	}
	if after != "" {
		stores = slices.DeleteFunc(stores, func(ks *keyStore) bool { return ks.rec.ID <= after })
	}
	limit := pageLimit(in.Limit, 100)
	out := &kmsapi.DescribeCustomKeyStoresOutput{CustomKeyStores: []kmsapi.CustomKeyStoresListEntry{}, Truncated: ptr(false)}
	for i, ks := range stores {
		if i == limit {
			out.Truncated = ptr(true)
			out.NextMarker = ptr(s.marker.encode("customkeystores", stores[i-1].rec.ID))
			break
		}
		e, err := s.storeEntry(ks)
		if err != nil {
			return nil, err
		}
		out.CustomKeyStores = append(out.CustomKeyStores, e)
	}
	return out, nil
}

// authorizedKeyStore checks that the caller may call action and reads the
// store id of the caller's scope.
func (s *Service) authorizedKeyStore(ctx context.Context, action, id string) (storage.Scope, *keyStore, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return scope, nil, err
	}
	if err := s.authorizeAccount(ctx, act(action)); err != nil {
		return scope, nil, err
	}
	ks, err := s.getKeyStore(ctx, nil, scope, id)
	return scope, ks, err
}

// updateKeyStore runs fn on the store id of the caller's scope in a
// read-write transaction, once the caller may call action.
func (s *Service) updateKeyStore(ctx context.Context, action, id string, fn func(tx storage.Tx, ks *keyStore) error) error {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return err
	}
	if err := s.authorizeAccount(ctx, act(action)); err != nil {
		return err
	}
	return s.writeKeyStore(ctx, scope, id, fn)
}

// writeKeyStore runs fn on the store id of scope in a read-write
// transaction and writes the store back.
func (s *Service) writeKeyStore(ctx context.Context, scope storage.Scope, id string, fn func(tx storage.Tx, ks *keyStore) error) error {
	return s.store.Update(ctx, func(tx storage.Tx) error {
		ks, err := s.getKeyStore(ctx, tx, scope, id)
		if err != nil {
			return err
		}
		if err := fn(tx, ks); err != nil {
			return err
		}
		if err := ks.encode(); err != nil {
			return err
		}
		if err := tx.Update(ctx, ks.rec); err != nil {
			return wrap("update key store", err)
		}
		return nil
	})
}

// ConnectCustomKeyStore implements kmsapi.Service. The proxy is asked for
// its health before the operation answers: the store is then CONNECTED,
// or FAILED with the ConnectionErrorCode of what went wrong.
func (s *Service) ConnectCustomKeyStore(ctx context.Context, in *kmsapi.ConnectCustomKeyStoreInput) (*kmsapi.ConnectCustomKeyStoreOutput, error) {
	id := deref(in.CustomKeyStoreId)
	scope, ks, err := s.authorizedKeyStore(ctx, in.IAMAction(), id)
	if err != nil {
		return nil, err
	}
	switch ks.meta.State {
	case connConnected:
		return &kmsapi.ConnectCustomKeyStoreOutput{}, nil
	case connFailed:
		return nil, awserr.Newf(codeKeyStoreInvalidState, "Custom key store %s is in the FAILED connection state. Disconnect it with DisconnectCustomKeyStore, then connect it again.", id)
	}
	c, err := s.credential(ks)
	if err != nil {
		return nil, err
	}
	code := ""
	if err := s.proxyHealth(ctx, proxyOf(ks, c), "ConnectCustomKeyStore"); err != nil {
		var f *proxyFailure
		if !errors.As(err, &f) {
			return nil, err
		}
		code = f.connErr
	}
	err = s.writeKeyStore(ctx, scope, id, func(tx storage.Tx, cur *keyStore) error {
		if cur.rec.Rev != ks.rec.Rev {
			// Changed while the proxy was asked (disconnected, updated):
			// the answer was for another configuration.
			return awserr.Newf(codeKeyStoreInvalidState, "Custom key store %s changed while it was being connected. Retry the request.", id)
		}
		if code != "" {
			cur.meta.State, cur.meta.ErrorCode = connFailed, code
			return nil
		}
		cur.meta.State, cur.meta.ErrorCode = connConnected, ""
		return s.markStoreKeys(ctx, tx, cur, false)
	})
	if err != nil {
		return nil, err
	}
	return &kmsapi.ConnectCustomKeyStoreOutput{}, nil
}

// DisconnectCustomKeyStore implements kmsapi.Service: the store's keys are
// Unavailable from the same transaction on.
func (s *Service) DisconnectCustomKeyStore(ctx context.Context, in *kmsapi.DisconnectCustomKeyStoreInput) (*kmsapi.DisconnectCustomKeyStoreOutput, error) {
	id := deref(in.CustomKeyStoreId)
	err := s.updateKeyStore(ctx, in.IAMAction(), id, func(tx storage.Tx, ks *keyStore) error {
		if ks.meta.State == connDisconnected {
			return awserr.Newf(codeKeyStoreInvalidState, "Custom key store %s is already disconnected.", id)
		}
		ks.meta.State, ks.meta.ErrorCode = connDisconnected, ""
		return s.markStoreKeys(ctx, tx, ks, true)
	})
	if err != nil {
		return nil, err
	}
	return &kmsapi.DisconnectCustomKeyStoreOutput{}, nil
}

// markStoreKeys sets (Disconnect) or clears (Connect) the Unavailable mark
// of every key in ks.
func (s *Service) markStoreKeys(ctx context.Context, tx storage.Tx, ks *keyStore, unavailable bool) error {
	keys, err := s.storeKeys(ctx, tx, ks.rec.Scope, ks.rec.ID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.meta.XKS == nil || k.meta.XKS.Unavailable == unavailable {
			continue
		}
		k.meta.XKS.Unavailable = unavailable
		if err := k.encode(); err != nil {
			return err
		}
		if err := tx.Update(ctx, k.rec); err != nil {
			return wrap("update key", err)
		}
	}
	return nil
}

// storeKeys returns the KMS keys of custom key store id (their records'
// Parent), read through r, or the store when r is nil.
func (s *Service) storeKeys(ctx context.Context, r storage.Reader, scope storage.Scope, id string) ([]*key, error) {
	recs, err := s.list(ctx, r, kindKey, scope, storage.ListOptions{Parent: id})
	if err != nil {
		return nil, wrap("list keys of key store", err)
	}
	keys := make([]*key, 0, len(recs))
	for _, rec := range recs {
		k, err := decodeKey(rec)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// UpdateCustomKeyStore implements kmsapi.Service. The name, the credential
// and the URI path change in any connection state; the endpoint and the
// connectivity only while the store is disconnected. A new proxy
// configuration is checked with the proxy first, as AWS does.
func (s *Service) UpdateCustomKeyStore(ctx context.Context, in *kmsapi.UpdateCustomKeyStoreInput) (*kmsapi.UpdateCustomKeyStoreOutput, error) {
	id := deref(in.CustomKeyStoreId)
	scope, ks, err := s.authorizedKeyStore(ctx, in.IAMAction(), id)
	if err != nil {
		return nil, err
	}
	switch {
	case in.KeyStorePassword != nil || in.CloudHsmClusterId != nil:
		return nil, errValidation("KeyStorePassword and CloudHsmClusterId are valid only for a custom key store of type AWS_CLOUDHSM.")
	case in.XksProxyVpcEndpointServiceName != nil || in.XksProxyVpcEndpointServiceOwner != nil || in.XksProxyConnectivity == connectivityVPC:
		if ks.meta.State != connDisconnected {
			return nil, errNotDisconnected(id, "its connectivity")
		}
		return nil, errNoVPCService(deref(in.XksProxyVpcEndpointServiceName))
	case in.XksProxyUriEndpoint != nil && ks.meta.State != connDisconnected:
		return nil, errNotDisconnected(id, "XksProxyUriEndpoint")
	case in.XksProxyConnectivity != "" && ks.meta.State != connDisconnected:
		return nil, errNotDisconnected(id, "XksProxyConnectivity")
	}
	next := *ks
	next.meta.Endpoint = derefOr(in.XksProxyUriEndpoint, ks.meta.Endpoint)
	next.meta.Path = derefOr(in.XksProxyUriPath, ks.meta.Path)
	name := derefOr(in.NewCustomKeyStoreName, ks.meta.Name)
	c, err := s.credential(ks)
	if err != nil {
		return nil, err
	}
	credChanged := false
	if cr := in.XksProxyAuthenticationCredential; cr != nil {
		c = keyStoreCredential{AccessKeyID: cr.AccessKeyId.Reveal(), Secret: cr.RawSecretAccessKey.Reveal()}
		credChanged = true
	}
	proxyChanged := credChanged || in.XksProxyUriEndpoint != nil || in.XksProxyUriPath != nil
	if proxyChanged {
		if err := s.checkProxyHealth(ctx, proxyOf(&next, c), "UpdateCustomKeyStore"); err != nil {
			return nil, err
		}
	}
	err = s.writeKeyStore(ctx, scope, id, func(tx storage.Tx, cur *keyStore) error {
		if cur.rec.Rev != ks.rec.Rev {
			return awserr.Newf(codeKeyStoreInvalidState, "Custom key store %s changed while it was being updated. Retry the request.", id)
		}
		stores, err := listKeyStores(ctx, tx, scope)
		if err != nil {
			return err
		}
		if err := checkUnique(stores, id, name, next.meta.Endpoint, next.meta.Path); err != nil {
			return err
		}
		cur.meta.Name, cur.meta.Endpoint, cur.meta.Path = name, next.meta.Endpoint, next.meta.Path
		if credChanged {
			if cur.rec.Sealed, err = s.sealCredential(ctx, tx, scope, id, c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &kmsapi.UpdateCustomKeyStoreOutput{}, nil
}

func errNotDisconnected(id, what string) error {
	return awserr.Newf(codeKeyStoreInvalidState, "Custom key store %s must be disconnected to change %s.", id, what)
}

// derefOr is *p, or def when p is nil.
func derefOr(p *string, def string) string {
	if p == nil {
		return def
	}
	return *p
}

// DeleteCustomKeyStore implements kmsapi.Service: a disconnected store
// without KMS keys (keys pending deletion count until they are deleted).
func (s *Service) DeleteCustomKeyStore(ctx context.Context, in *kmsapi.DeleteCustomKeyStoreInput) (*kmsapi.DeleteCustomKeyStoreOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.authorizeAccount(ctx, act(in.IAMAction())); err != nil {
		return nil, err
	}
	id := deref(in.CustomKeyStoreId)
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		ks, err := s.getKeyStore(ctx, tx, scope, id)
		if err != nil {
			return err
		}
		if ks.meta.State != connDisconnected {
			return awserr.Newf(codeKeyStoreInvalidState, "Custom key store %s must be disconnected before it is deleted; it is %s.", id, ks.meta.State)
		}
		n, err := tx.Count(ctx, kindKey, scope, id)
		if err != nil {
			return wrap("count keys of key store", err)
		}
		if n > 0 {
			return awserr.Newf(codeKeyStoreHasKeys, "Custom key store %s contains %d KMS keys. Schedule their deletion (ScheduleKeyDeletion) and delete the custom key store once they are deleted.", id, n)
		}
		if err := tx.Delete(ctx, kindKeyStore, scope, id); err != nil {
			return wrap("delete key store", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &kmsapi.DeleteCustomKeyStoreOutput{}, nil
}

// errNoKeyStore is CustomKeyStoreNotFoundException for a custom key store
// id (or name), in the words CreateKey uses for it.
func errNoKeyStore(id string) error {
	return awserr.Newf(codeCustomKeyStoreNF, "Custom key store '%s' does not exist.", id)
}
