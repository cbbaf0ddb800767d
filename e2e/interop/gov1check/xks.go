package main

import (
	"fmt"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/service/kms"
)

// xksConfig is what gov1.sh tells of its external key store proxies
// (gov1xks.py, e2e/smoke/xksproxy.py): the first at endpoint and path with
// the external key keyID, a second at endpoint2 and path2, both accepting
// the credential accessKey/secret.
type xksConfig struct {
	endpoint, path, endpoint2, path2, keyID, accessKey, secret string
}

var storeIDRE = regexp.MustCompile(`^cks-[0-9a-f]{17}$`)

// runXKS drives the custom key store operations with the v1 client against
// real XKS proxies: an external key store from creation through
// connection, a KMS key in it and its encryption by the proxy, a rename,
// disconnection and the refused deletion of a store with a key, then a
// second store created and deleted. It runs after runKMS's checks of an
// account without custom key stores.
func runXKS(c *checker, k *kms.KMS, x xksConfig) {
	if x.endpoint == "" {
		fmt.Println("NOTE: no -xks-endpoint: the custom key store operations are not checked with an XKS proxy")
		return
	}
	if x.path == "" || x.endpoint2 == "" || x.path2 == "" || x.keyID == "" || x.accessKey == "" || x.secret == "" {
		c.failf("-xks-endpoint needs -xks-path, -xks-endpoint2, -xks-path2, -xks-key, -xks-access-key and $GOV1CHECK_XKS_SECRET")
	}
	fmt.Println("== KMS external key store (aws-sdk-go v1 service/kms, XKS proxy " + x.endpoint + x.path + ")")
	storeInput := func(name, endpoint, path string) *kms.CreateCustomKeyStoreInput {
		return &kms.CreateCustomKeyStoreInput{
			CustomKeyStoreName:   aws.String(name),
			CustomKeyStoreType:   aws.String(kms.CustomKeyStoreTypeExternalKeyStore),
			XksProxyConnectivity: aws.String(kms.XksProxyConnectivityTypePublicEndpoint),
			XksProxyUriEndpoint:  aws.String(endpoint),
			XksProxyUriPath:      aws.String(path),
			XksProxyAuthenticationCredential: &kms.XksProxyAuthenticationCredentialType{
				AccessKeyId: aws.String(x.accessKey), RawSecretAccessKey: aws.String(x.secret)},
		}
	}
	// describe returns the one entry DescribeCustomKeyStores lists for id.
	describe := func(what, id string) *kms.CustomKeyStoresListEntry {
		out := chk(k.DescribeCustomKeyStores(&kms.DescribeCustomKeyStoresInput{CustomKeyStoreId: aws.String(id)}))(c, "DescribeCustomKeyStores "+what)
		c.want(len(out.CustomKeyStores) == 1 && aws.StringValue(out.CustomKeyStores[0].CustomKeyStoreId) == id && out.Truncated != nil && !*out.Truncated,
			"DescribeCustomKeyStores %s (%s): %v", what, id, out)
		return out.CustomKeyStores[0]
	}
	// wantStore checks an entry's members for an external key store.
	wantStore := func(what string, e *kms.CustomKeyStoresListEntry, name, state, endpoint, path string) {
		p := e.XksProxyConfiguration
		c.want(aws.StringValue(e.CustomKeyStoreName) == name && aws.StringValue(e.CustomKeyStoreType) == kms.CustomKeyStoreTypeExternalKeyStore &&
			aws.StringValue(e.ConnectionState) == state && e.ConnectionErrorCode == nil && e.CreationDate != nil &&
			time.Since(*e.CreationDate) < time.Hour && time.Until(*e.CreationDate) < time.Minute &&
			e.CloudHsmClusterId == nil && e.TrustAnchorCertificate == nil && p != nil &&
			aws.StringValue(p.Connectivity) == kms.XksProxyConnectivityTypePublicEndpoint && aws.StringValue(p.AccessKeyId) == x.accessKey &&
			aws.StringValue(p.UriEndpoint) == endpoint && aws.StringValue(p.UriPath) == path && p.VpcEndpointServiceName == nil,
			"%s: %v, want %s %s, %s%s", what, e, name, state, endpoint, path)
	}

	// ---- create: the proxy is asked for its health; DISCONNECTED ------------
	cs := chk(k.CreateCustomKeyStore(storeInput("gov1-xks", x.endpoint, x.path)))(c, "CreateCustomKeyStore EXTERNAL_KEY_STORE")
	id := aws.StringValue(cs.CustomKeyStoreId)
	c.want(storeIDRE.MatchString(id), "CreateCustomKeyStore CustomKeyStoreId %q, want cks- and 17 hex digits", id)
	e := describe("by id", id)
	wantStore("new store", e, "gov1-xks", kms.ConnectionStateTypeDisconnected, x.endpoint, x.path)
	byName := chk(k.DescribeCustomKeyStores(&kms.DescribeCustomKeyStoresInput{CustomKeyStoreName: aws.String("gov1-xks")}))(c, "DescribeCustomKeyStores by name")
	c.want(len(byName.CustomKeyStores) == 1 && aws.StringValue(byName.CustomKeyStores[0].CustomKeyStoreId) == id, "DescribeCustomKeyStores by name: %v", byName)
	c.pass("CreateCustomKeyStore EXTERNAL_KEY_STORE PUBLIC_ENDPOINT %s%s: %s; DescribeCustomKeyStores by id and by name: DISCONNECTED, CreationDate %s, XksProxyConfiguration {Connectivity PUBLIC_ENDPOINT, AccessKeyId the credential's, UriEndpoint, UriPath}, no secret",
		x.endpoint, x.path, id, e.CreationDate.Format(time.RFC3339))
	_, err := k.CreateCustomKeyStore(storeInput("gov1-xks", x.endpoint2, x.path2))
	c.wantErr("CreateCustomKeyStore of a name in use", err, "CustomKeyStoreNameInUseException", "-", 400)
	_, err = k.CreateCustomKeyStore(storeInput("gov1-xks-other", x.endpoint, x.path))
	c.wantErr("CreateCustomKeyStore of a proxy URI in use", err, "XksProxyUriInUseException", "-", 400)
	xksKey := &kms.CreateKeyInput{Origin: aws.String(kms.OriginTypeExternalKeyStore), CustomKeyStoreId: aws.String(id), XksKeyId: aws.String(x.keyID),
		Description: aws.String("gov1 external key store")}
	_, err = k.CreateKey(xksKey)
	c.wantErr("CreateKey in a disconnected external key store", err, "CustomKeyStoreInvalidStateException",
		"This KMS key is in a custom key store that is not connected to its external key store proxy. Connect the external key store and try the request again.", 400)

	// ---- connect; a key; the proxy encrypts ---------------------------------
	chk(k.ConnectCustomKeyStore(&kms.ConnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)}))(c, "ConnectCustomKeyStore")
	wantStore("after ConnectCustomKeyStore", describe("after ConnectCustomKeyStore", id), "gov1-xks", kms.ConnectionStateTypeConnected, x.endpoint, x.path)
	c.pass("ConnectCustomKeyStore: the store is CONNECTED")
	ck := chk(k.CreateKey(xksKey))(c, "CreateKey Origin EXTERNAL_KEY_STORE")
	md := ck.KeyMetadata
	wantKeyMetadata(c, "CreateKey Origin EXTERNAL_KEY_STORE", md, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
	keyID, arn := aws.StringValue(md.KeyId), aws.StringValue(md.Arn)
	c.want(aws.StringValue(md.Origin) == kms.OriginTypeExternalKeyStore && aws.StringValue(md.CustomKeyStoreId) == id && md.XksKeyConfiguration != nil &&
		aws.StringValue(md.XksKeyConfiguration.Id) == x.keyID && aws.StringValue(md.KeyState) == "Enabled" && aws.BoolValue(md.Enabled) &&
		aws.StringValue(md.KeyManager) == "CUSTOMER" && !aws.BoolValue(md.MultiRegion), "CreateKey in the external key store: %v", md)
	d := chk(k.DescribeKey(&kms.DescribeKeyInput{KeyId: aws.String(keyID)}))(c, "DescribeKey of the external key store's key").KeyMetadata
	c.want(aws.StringValue(d.CustomKeyStoreId) == id && d.XksKeyConfiguration != nil && aws.StringValue(d.XksKeyConfiguration.Id) == x.keyID,
		"DescribeKey: CustomKeyStoreId %v, XksKeyConfiguration %v", d.CustomKeyStoreId, d.XksKeyConfiguration)
	c.pass("CreateKey Origin EXTERNAL_KEY_STORE, CustomKeyStoreId, XksKeyId %s: %s, Enabled, XksKeyConfiguration.Id %s (DescribeKey too)", x.keyID, arn, x.keyID)
	ctx := map[string]*string{"app": aws.String("gov1"), "store": aws.String("xks")}
	enc := chk(k.Encrypt(&kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("held by the xks proxy"), EncryptionContext: ctx}))(c, "Encrypt under the external key store's key")
	c.want(aws.StringValue(enc.KeyId) == arn && aws.StringValue(enc.EncryptionAlgorithm) == "SYMMETRIC_DEFAULT" && len(enc.CiphertextBlob) > 0, "Encrypt: %v", enc)
	dec := chk(k.Decrypt(&kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ctx}))(c, "Decrypt under the external key store's key")
	c.want(string(dec.Plaintext) == "held by the xks proxy" && aws.StringValue(dec.KeyId) == arn && aws.StringValue(dec.EncryptionAlgorithm) == "SYMMETRIC_DEFAULT",
		"Decrypt: %q under %s", dec.Plaintext, aws.StringValue(dec.KeyId))
	c.pass("Encrypt/Decrypt under the key, with an encryption context: %d byte CiphertextBlob (the proxy's AES-GCM inside), decrypts, KeyId the key ARN", len(enc.CiphertextBlob))

	// ---- rename, delete the key, disconnect ----------------------------------
	chk(k.UpdateCustomKeyStore(&kms.UpdateCustomKeyStoreInput{CustomKeyStoreId: aws.String(id), NewCustomKeyStoreName: aws.String("gov1-xks-renamed")}))(c, "UpdateCustomKeyStore NewCustomKeyStoreName")
	renamed := chk(k.DescribeCustomKeyStores(&kms.DescribeCustomKeyStoresInput{CustomKeyStoreName: aws.String("gov1-xks-renamed")}))(c, "DescribeCustomKeyStores by the new name")
	c.want(len(renamed.CustomKeyStores) == 1, "DescribeCustomKeyStores by the new name: %v", renamed)
	wantStore("after UpdateCustomKeyStore", renamed.CustomKeyStores[0], "gov1-xks-renamed", kms.ConnectionStateTypeConnected, x.endpoint, x.path)
	c.pass("UpdateCustomKeyStore NewCustomKeyStoreName gov1-xks-renamed (connected): DescribeCustomKeyStores by the new name lists the store, CONNECTED")
	sd := chk(k.ScheduleKeyDeletion(&kms.ScheduleKeyDeletionInput{KeyId: aws.String(keyID), PendingWindowInDays: aws.Int64(7)}))(c, "ScheduleKeyDeletion of the external key store's key")
	c.want(aws.StringValue(sd.KeyState) == "PendingDeletion" && aws.Int64Value(sd.PendingWindowInDays) == 7 && aws.StringValue(sd.KeyId) == arn, "ScheduleKeyDeletion: %v", sd)
	_, err = k.DeleteCustomKeyStore(&kms.DeleteCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	c.wantErr("DeleteCustomKeyStore of a connected store", err, "CustomKeyStoreInvalidStateException", "-", 400)
	chk(k.DisconnectCustomKeyStore(&kms.DisconnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)}))(c, "DisconnectCustomKeyStore")
	wantStore("after DisconnectCustomKeyStore", describe("after DisconnectCustomKeyStore", id), "gov1-xks-renamed", kms.ConnectionStateTypeDisconnected, x.endpoint, x.path)
	d = chk(k.DescribeKey(&kms.DescribeKeyInput{KeyId: aws.String(keyID)}))(c, "DescribeKey after DisconnectCustomKeyStore").KeyMetadata
	c.want(aws.StringValue(d.KeyState) == "PendingDeletion" && d.DeletionDate != nil, "key pending deletion in a disconnected store: %v", d)
	c.pass("ScheduleKeyDeletion (7 days), DisconnectCustomKeyStore: the store DISCONNECTED, the key still PendingDeletion (DeletionDate %s)", d.DeletionDate.Format(time.RFC3339))
	_, err = k.DeleteCustomKeyStore(&kms.DeleteCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	c.wantErr("DeleteCustomKeyStore of a store with a key pending deletion", err, "CustomKeyStoreHasCMKsException", "-", 400)

	// ---- a second store, never connected: deleted -----------------------------
	cs2 := chk(k.CreateCustomKeyStore(storeInput("gov1-xks-2", x.endpoint2, x.path2)))(c, "CreateCustomKeyStore (second)")
	id2 := aws.StringValue(cs2.CustomKeyStoreId)
	c.want(storeIDRE.MatchString(id2) && id2 != id, "second CustomKeyStoreId %q", id2)
	wantStore("second store", describe("second store", id2), "gov1-xks-2", kms.ConnectionStateTypeDisconnected, x.endpoint2, x.path2)
	all := chk(k.DescribeCustomKeyStores(&kms.DescribeCustomKeyStoresInput{}))(c, "DescribeCustomKeyStores")
	c.want(len(all.CustomKeyStores) == 2 && !aws.BoolValue(all.Truncated), "DescribeCustomKeyStores: %d stores, want 2", len(all.CustomKeyStores))
	chk(k.DeleteCustomKeyStore(&kms.DeleteCustomKeyStoreInput{CustomKeyStoreId: aws.String(id2)}))(c, "DeleteCustomKeyStore")
	_, err = k.DescribeCustomKeyStores(&kms.DescribeCustomKeyStoresInput{CustomKeyStoreId: aws.String(id2)})
	c.wantErr("DescribeCustomKeyStores of the deleted store", err, "CustomKeyStoreNotFoundException", "Custom key store '"+id2+"' does not exist.", 400)
	all = chk(k.DescribeCustomKeyStores(&kms.DescribeCustomKeyStoresInput{}))(c, "DescribeCustomKeyStores")
	c.want(len(all.CustomKeyStores) == 1 && aws.StringValue(all.CustomKeyStores[0].CustomKeyStoreId) == id, "DescribeCustomKeyStores after the deletion: %v", all)
	c.pass("a second store (%s%s, never connected): CreateCustomKeyStore %s, DescribeCustomKeyStores lists 2, DeleteCustomKeyStore, then it is not found and 1 store is left (%s, its key pending deletion)",
		x.endpoint2, x.path2, id2, id)
}
