package e2e

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyfort/keyfort/internal/config"
	"github.com/keyfort/keyfort/internal/keyfortest"
	"github.com/keyfort/keyfort/internal/storage/postgres/pgtest"
	"github.com/keyfort/keyfort/internal/xks"
	"github.com/keyfort/keyfort/internal/xks/xkstest"
)

// xksHost is the host name of the test proxies' endpoint
// (https://xks.keyfort.test): XksProxyUriEndpoint cannot hold a port, so
// the server is told where that host is (--xks-proxy-address).
const xksHost = "xks.keyfort.test"

// startXKS starts an XKS proxy for xksHost and a Keyfort server (with the
// audit trail) that trusts its certificate and reaches it; timeout is the
// server's --xks-proxy-timeout (0: AWS's 250ms).
func startXKS(t *testing.T, timeout time.Duration, opts ...keyfortest.Option) (*keyfortest.Server, *xkstest.Proxy) {
	return startXKSWith(t, nil, timeout, opts...)
}

// startXKSWith is startXKS with the server started by start (nil:
// startAudited).
func startXKSWith(t *testing.T, start func(*testing.T, ...keyfortest.Option) *keyfortest.Server, timeout time.Duration, opts ...keyfortest.Option) (*keyfortest.Server, *xkstest.Proxy) {
	t.Helper()
	p, err := xkstest.Start(xkstest.Options{Hosts: []string{xksHost}, Path: "/keyfort/kms/xks/v1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	opts = append(opts, keyfortest.WithXKSProxy(xksHost, p.Address(), p.CertPEM()),
		keyfortest.WithConfig(func(c *config.Config) { c.XKSProxyTimeout = timeout }))
	if start == nil {
		start = startAudited
	}
	return start(t, opts...), p
}

// createXKSStore creates an external key store on p named name.
func createXKSStore(t *testing.T, c *kms.Client, p *xkstest.Proxy, name string) string {
	t.Helper()
	out, err := c.CreateCustomKeyStore(ctxT(t), xksStoreInput(p, name))
	mustNoErr(t, err, "CreateCustomKeyStore")
	return aws.ToString(out.CustomKeyStoreId)
}

func xksStoreInput(p *xkstest.Proxy, name string) *kms.CreateCustomKeyStoreInput {
	return &kms.CreateCustomKeyStoreInput{
		CustomKeyStoreName:   aws.String(name),
		CustomKeyStoreType:   types.CustomKeyStoreTypeExternalKeyStore,
		XksProxyConnectivity: types.XksProxyConnectivityTypePublicEndpoint,
		XksProxyUriEndpoint:  aws.String("https://" + xksHost),
		XksProxyUriPath:      aws.String(p.Path()),
		XksProxyAuthenticationCredential: &types.XksProxyAuthenticationCredentialType{
			AccessKeyId: aws.String(p.AccessKeyID()), RawSecretAccessKey: aws.String(p.Secret().Reveal())},
	}
}

// connectedXKSKey makes a connected external key store on p named name
// and a key in it on p's external key xksKeyID (added to p).
func connectedXKSKey(t *testing.T, c *kms.Client, p *xkstest.Proxy, name, xksKeyID string) (string, *types.KeyMetadata) {
	t.Helper()
	p.AddKey(xksKeyID)
	id := createXKSStore(t, c, p, name)
	_, err := c.ConnectCustomKeyStore(ctxT(t), &kms.ConnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	mustNoErr(t, err, "ConnectCustomKeyStore")
	md := createKey(t, c, &kms.CreateKeyInput{Origin: types.OriginTypeExternalKeyStore, CustomKeyStoreId: aws.String(id), XksKeyId: aws.String(xksKeyID)})
	return id, md
}

func describeStore(t *testing.T, c *kms.Client, id string) types.CustomKeyStoresListEntry {
	t.Helper()
	out, err := c.DescribeCustomKeyStores(ctxT(t), &kms.DescribeCustomKeyStoresInput{CustomKeyStoreId: aws.String(id)})
	mustNoErr(t, err, "DescribeCustomKeyStores")
	if len(out.CustomKeyStores) != 1 {
		t.Fatalf("DescribeCustomKeyStores(%s) listed %d stores, want 1", id, len(out.CustomKeyStores))
	}
	return out.CustomKeyStores[0]
}

// lastRequest is the last request the proxy received for op.
func lastRequest(t *testing.T, p *xkstest.Proxy, op string) xkstest.Request {
	t.Helper()
	reqs := p.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Operation == op {
			return reqs[i]
		}
	}
	t.Fatalf("the proxy received no %s request", op)
	return xkstest.Request{}
}

// TestKMSExternalKeyStore: an external key store from creation through
// connection, KMS keys in it, their double encryption, disconnection,
// restart and deletion, through the AWS SDK against a real XKS proxy.
func TestKMSExternalKeyStore(t *testing.T) {
	srv, p := startXKS(t, 5*time.Second)
	c := srv.KMS()
	ctx := ctxT(t)
	p.AddKey("ext-key-1")
	p.AddKey("ext-key-2")

	// CreateCustomKeyStore asks the proxy for its health, signed with the
	// store's credential; the store starts DISCONNECTED.
	before := time.Now().Add(-time.Second)
	id := createXKSStore(t, c, p, "keyfort-xks")
	if !strings.HasPrefix(id, "cks-") || len(id) != 21 {
		t.Errorf("CustomKeyStoreId = %q, want cks- and 17 hex digits", id)
	}
	if r := lastRequest(t, p, xks.OpGetHealthStatus); r.Metadata["kmsOperation"] != "CreateCustomKeyStore" || r.AccessKeyID != p.AccessKeyID() || r.Metadata["kmsRequestId"] == "" {
		t.Errorf("health check at creation = %+v, want kmsOperation CreateCustomKeyStore, signed with the store's access key, with a kmsRequestId", r)
	}
	e := describeStore(t, c, id)
	x := e.XksProxyConfiguration
	if aws.ToString(e.CustomKeyStoreName) != "keyfort-xks" || e.CustomKeyStoreType != types.CustomKeyStoreTypeExternalKeyStore ||
		e.ConnectionState != types.ConnectionStateTypeDisconnected || e.ConnectionErrorCode != "" || e.CreationDate == nil || e.CreationDate.Before(before) ||
		x == nil || x.Connectivity != types.XksProxyConnectivityTypePublicEndpoint || aws.ToString(x.AccessKeyId) != p.AccessKeyID() ||
		aws.ToString(x.UriEndpoint) != "https://"+xksHost || aws.ToString(x.UriPath) != p.Path() || x.VpcEndpointServiceName != nil || e.CloudHsmClusterId != nil {
		t.Fatalf("new store = %+v (proxy %+v)", e, x)
	}
	byName, err := c.DescribeCustomKeyStores(ctx, &kms.DescribeCustomKeyStoresInput{CustomKeyStoreName: aws.String("keyfort-xks")})
	mustNoErr(t, err, "DescribeCustomKeyStores by name")
	if len(byName.CustomKeyStores) != 1 || aws.ToString(byName.CustomKeyStores[0].CustomKeyStoreId) != id {
		t.Errorf("DescribeCustomKeyStores by name = %+v", byName.CustomKeyStores)
	}

	// Names and proxy URIs are each one store's.
	_, err = c.CreateCustomKeyStore(ctx, xksStoreInput(p, "keyfort-xks"))
	wantAPIError(t, err, "CustomKeyStoreNameInUseException", "keyfort-xks")
	_, err = c.CreateCustomKeyStore(ctx, xksStoreInput(p, "another"))
	wantAPIError(t, err, "XksProxyUriInUseException", id)
	// A credential the proxy does not know is refused at creation.
	bad := xksStoreInput(p, "bad-credential")
	bad.XksProxyUriPath = aws.String("/other" + p.Path())
	p.AllowPath("/other" + p.Path())
	bad.XksProxyAuthenticationCredential.RawSecretAccessKey = aws.String(strings.Repeat("A", 43))
	_, err = c.CreateCustomKeyStore(ctx, bad)
	wantExactAPIError(t, err, "XksProxyIncorrectAuthenticationCredentialException",
		"The external key store proxy rejected the request because it could not authenticate AWS KMS. Verify the XKS proxy authentication credentials for your external key store and update if necessary.")

	// A disconnected store makes no keys.
	_, err = c.CreateKey(ctx, &kms.CreateKeyInput{Origin: types.OriginTypeExternalKeyStore, CustomKeyStoreId: aws.String(id), XksKeyId: aws.String("ext-key-1")})
	wantExactAPIError(t, err, "CustomKeyStoreInvalidStateException",
		"This KMS key is in a custom key store that is not connected to its external key store proxy. Connect the external key store and try the request again.")

	_, err = c.ConnectCustomKeyStore(ctx, &kms.ConnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	mustNoErr(t, err, "ConnectCustomKeyStore")
	if e := describeStore(t, c, id); e.ConnectionState != types.ConnectionStateTypeConnected {
		t.Fatalf("after Connect: %s, want CONNECTED", e.ConnectionState)
	}
	if r := lastRequest(t, p, xks.OpGetHealthStatus); r.Metadata["kmsOperation"] != "ConnectCustomKeyStore" {
		t.Errorf("health check at connection: kmsOperation %q", r.Metadata["kmsOperation"])
	}
	_, err = c.ConnectCustomKeyStore(ctx, &kms.ConnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	mustNoErr(t, err, "ConnectCustomKeyStore of a connected store")

	// A key: the proxy's external key must exist, be enabled, AES_256,
	// and encrypt and decrypt.
	md := createKey(t, c, &kms.CreateKeyInput{Origin: types.OriginTypeExternalKeyStore, CustomKeyStoreId: aws.String(id), XksKeyId: aws.String("ext-key-1"), Description: aws.String("xks")})
	keyID, arn := aws.ToString(md.KeyId), aws.ToString(md.Arn)
	if md.KeyState != types.KeyStateEnabled || !md.Enabled || md.Origin != types.OriginTypeExternalKeyStore || aws.ToString(md.CustomKeyStoreId) != id ||
		md.XksKeyConfiguration == nil || aws.ToString(md.XksKeyConfiguration.Id) != "ext-key-1" || md.KeySpec != types.KeySpecSymmetricDefault || md.MultiRegion == nil || *md.MultiRegion {
		t.Fatalf("new key in the external key store: %+v", md)
	}
	if r := lastRequest(t, p, xks.OpGetKeyMetadata); r.KeyID != "ext-key-1" || r.Metadata["kmsOperation"] != "CreateKey" || !strings.HasPrefix(r.Metadata["awsPrincipalArn"], "arn:aws:iam::") {
		t.Errorf("GetKeyMetadata at CreateKey = %+v", r)
	}
	if d := describe(t, c, keyID); aws.ToString(d.CustomKeyStoreId) != id || aws.ToString(d.XksKeyConfiguration.Id) != "ext-key-1" {
		t.Errorf("DescribeKey: CustomKeyStoreId %v, XksKeyConfiguration %+v", d.CustomKeyStoreId, d.XksKeyConfiguration)
	}
	xksKey := func(xksKeyID string) *kms.CreateKeyInput {
		return &kms.CreateKeyInput{Origin: types.OriginTypeExternalKeyStore, CustomKeyStoreId: aws.String(id), XksKeyId: aws.String(xksKeyID)}
	}
	_, err = c.CreateKey(ctx, xksKey("ext-key-1"))
	wantAPIError(t, err, "XksKeyAlreadyInUseException", arn)
	_, err = c.CreateKey(ctx, xksKey("no-such-key"))
	wantExactAPIError(t, err, "XksKeyNotFoundException",
		"The external key associated with this KMS key in an external key store was not found in its external key manager. If the external key ID associated with this KMS key is incorrect, create a new KMS key with the correct external key ID.")
	p.SetKeyStatus("ext-key-2", xks.KeyStatusDisabled)
	_, err = c.CreateKey(ctx, xksKey("ext-key-2"))
	wantExactAPIError(t, err, "XksKeyInvalidConfigurationException", "The status of the external key must be ENABLED. The status of specified external key is DISABLED.")
	p.SetKeyStatus("ext-key-2", xks.KeyStatusEnabled)
	p.SetKeySpec("ext-key-2", "AES_128")
	_, err = c.CreateKey(ctx, xksKey("ext-key-2"))
	wantExactAPIError(t, err, "XksKeyInvalidConfigurationException", "The key spec of the external key must be AES_256. The key spec of specified external key is AES_128.")
	p.SetKeySpec("ext-key-2", xks.KeySpecAES256)
	p.SetKeyUsage("ext-key-2", "ENCRYPT")
	_, err = c.CreateKey(ctx, xksKey("ext-key-2"))
	wantExactAPIError(t, err, "XksKeyInvalidConfigurationException", "The key usage of the external key must include ENCRYPT and DECRYPT. The key use of specified external key is ENCRYPT.")
	multi := xksKey("ext-key-2")
	multi.MultiRegion = aws.Bool(true)
	_, err = c.CreateKey(ctx, multi)
	wantExactAPIError(t, err, "UnsupportedOperationException", "You cannot create a multi-Region key in a custom key store.")
	hmacKey := xksKey("ext-key-2")
	hmacKey.KeySpec, hmacKey.KeyUsage = types.KeySpecHmac256, types.KeyUsageTypeGenerateVerifyMac
	_, err = c.CreateKey(ctx, hmacKey)
	wantAPIError(t, err, "UnsupportedOperationException", "HMAC_256")
	_, err = c.CreateKey(ctx, &kms.CreateKeyInput{CustomKeyStoreId: aws.String(id)})
	wantAPIError(t, err, "ValidationException", "EXTERNAL_KEY_STORE")

	// Double encryption: the proxy is asked on every Encrypt and Decrypt,
	// with the key, the operation and the caller.
	ec := map[string]string{"purpose": "xks"}
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("external secret"), EncryptionContext: ec})
	mustNoErr(t, err, "Encrypt")
	if r := lastRequest(t, p, xks.OpEncrypt); r.KeyID != "ext-key-1" || r.Metadata["kmsKeyArn"] != arn || r.Metadata["kmsOperation"] != "Encrypt" || !r.AAD || !r.Integrity {
		t.Errorf("proxy Encrypt request = %+v", r)
	} else if rid, ok := awsmiddleware.GetRequestIDMetadata(enc.ResultMetadata); !ok || r.Metadata["kmsRequestId"] != rid {
		t.Errorf("proxy Encrypt kmsRequestId %q, want the request's id %q", r.Metadata["kmsRequestId"], rid)
	}
	if enc.CiphertextBlob[0] != 4 || bytes.Contains(enc.CiphertextBlob, []byte("external secret")) {
		t.Errorf("ciphertext version %d, want 4 (double encryption)", enc.CiphertextBlob[0])
	}
	dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	mustNoErr(t, err, "Decrypt")
	if string(dec.Plaintext) != "external secret" || aws.ToString(dec.KeyId) != arn {
		t.Fatalf("Decrypt = %q under %s", dec.Plaintext, aws.ToString(dec.KeyId))
	}
	if r := lastRequest(t, p, xks.OpDecrypt); r.Metadata["kmsOperation"] != "Decrypt" || r.Metadata["kmsKeyArn"] != arn {
		t.Errorf("proxy Decrypt request = %+v", r)
	}
	// Another encryption context: the proxy refuses the additional data.
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"purpose": "other"}})
	wantExactAPIError(t, err, "KMSInvalidStateException",
		"The external key store proxy rejected the request because the specified ciphertext or encryption context is corrupted, missing, or otherwise invalid.")
	tampered := bytes.Clone(enc.CiphertextBlob)
	tampered[len(tampered)-1] ^= 1
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: tampered, EncryptionContext: ec})
	wantAPIError(t, err, "KMSInvalidStateException", "corrupted")

	gdk, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(keyID), KeySpec: types.DataKeySpecAes256})
	mustNoErr(t, err, "GenerateDataKey")
	if r := lastRequest(t, p, xks.OpEncrypt); r.Metadata["kmsOperation"] != "GenerateDataKey" {
		t.Errorf("GenerateDataKey's proxy call: kmsOperation %q", r.Metadata["kmsOperation"])
	}
	dk, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: gdk.CiphertextBlob, KeyId: aws.String(keyID)})
	mustNoErr(t, err, "Decrypt the data key")
	if !bytes.Equal(dk.Plaintext, gdk.Plaintext) {
		t.Error("the data key does not decrypt to itself")
	}
	_, err = c.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: aws.String(keyID), NumberOfBytes: aws.Int32(16)})
	mustNoErr(t, err, "GenerateDataKeyWithoutPlaintext")
	// ReEncrypt out of and back into the external key store.
	plain := createKey(t, c, &kms.CreateKeyInput{})
	re, err := c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: ec, DestinationKeyId: plain.KeyId})
	mustNoErr(t, err, "ReEncrypt out of the store")
	back, err := c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: re.CiphertextBlob, DestinationKeyId: aws.String(keyID), DestinationEncryptionContext: ec})
	mustNoErr(t, err, "ReEncrypt into the store")
	if r := lastRequest(t, p, xks.OpEncrypt); r.Metadata["kmsOperation"] != "ReEncrypt" {
		t.Errorf("ReEncrypt's proxy call: kmsOperation %q", r.Metadata["kmsOperation"])
	}
	if d, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: back.CiphertextBlob, EncryptionContext: ec}); err != nil || string(d.Plaintext) != "external secret" {
		t.Fatalf("Decrypt after two ReEncrypts = %q, %v", d.Plaintext, err)
	}

	// What a key in an external key store cannot do.
	_, err = c.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: aws.String(keyID), KeyPairSpec: types.DataKeyPairSpecEccNistP256})
	wantExactAPIError(t, err, "UnsupportedOperationException", arn+" origin is EXTERNAL_KEY_STORE which is not valid for this operation.")
	_, err = c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(keyID)})
	wantExactAPIError(t, err, "UnsupportedOperationException", arn+" origin is EXTERNAL_KEY_STORE which is not valid for this operation.")
	_, err = c.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(8), CustomKeyStoreId: aws.String(id)})
	wantAPIError(t, err, "UnsupportedOperationException", id)

	// The proxy's failures, in AWS's words.
	p.SetKeyStatus("ext-key-1", xks.KeyStatusDisabled)
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("x")})
	wantExactAPIError(t, err, "KMSInvalidStateException",
		"The external key associated with this KMS key in an external key store is not enabled in the external key manager. Enable the external key in the external key manager and retry the request.")
	p.SetKeyStatus("ext-key-1", xks.KeyStatusEnabled)
	p.SetFail(xks.NameThrottling)
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	wantExactAPIError(t, err, "KMSInvalidStateException",
		"The external key store proxy rejected the request due to a very high request rate. Reduce the frequency of your calls using KMS keys in this external key store.")
	p.SetFail("")
	p.SetGarbage(xkstest.GarbageIntegrity)
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("x")})
	wantExactAPIError(t, err, "KMSInvalidStateException",
		"AWS KMS cannot interpret the response from the external key store proxy. If you see this error repeatedly, report it to your external key store proxy administrator.")
	p.SetGarbage(xkstest.GarbageOff)

	// Updates: the name in any state, the endpoint only disconnected.
	_, err = c.UpdateCustomKeyStore(ctx, &kms.UpdateCustomKeyStoreInput{CustomKeyStoreId: aws.String(id), XksProxyUriEndpoint: aws.String("https://other.keyfort.test")})
	wantAPIError(t, err, "CustomKeyStoreInvalidStateException", "disconnected")
	_, err = c.UpdateCustomKeyStore(ctx, &kms.UpdateCustomKeyStoreInput{CustomKeyStoreId: aws.String(id), NewCustomKeyStoreName: aws.String("keyfort-xks-renamed")})
	mustNoErr(t, err, "UpdateCustomKeyStore name")
	_, err = c.DeleteCustomKeyStore(ctx, &kms.DeleteCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	wantAPIError(t, err, "CustomKeyStoreInvalidStateException", "disconnected")

	// Disconnected: the key is Unavailable, keeps its own state beneath.
	_, err = c.DisconnectCustomKeyStore(ctx, &kms.DisconnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	mustNoErr(t, err, "DisconnectCustomKeyStore")
	if d := describe(t, c, keyID); d.KeyState != types.KeyStateUnavailable || d.Enabled {
		t.Fatalf("key of a disconnected store: %s, enabled %v; want Unavailable, false", d.KeyState, d.Enabled)
	}
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("x")})
	wantExactAPIError(t, err, "KMSInvalidStateException", arn+" is unavailable.")
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	wantExactAPIError(t, err, "KMSInvalidStateException", arn+" is unavailable.")
	_, err = c.DisconnectCustomKeyStore(ctx, &kms.DisconnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	wantAPIError(t, err, "CustomKeyStoreInvalidStateException", id)
	_, err = c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(keyID)})
	mustNoErr(t, err, "DisableKey of an Unavailable key")
	if d := describe(t, c, keyID); d.KeyState != types.KeyStateUnavailable {
		t.Errorf("disabled key of a disconnected store: %s, want Unavailable", d.KeyState)
	}

	// A failed connection: FAILED with its error code, then disconnect.
	p.RemoveCredential(p.AccessKeyID())
	_, err = c.ConnectCustomKeyStore(ctx, &kms.ConnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	mustNoErr(t, err, "ConnectCustomKeyStore with a credential the proxy refuses")
	if e := describeStore(t, c, id); e.ConnectionState != types.ConnectionStateTypeFailed || e.ConnectionErrorCode != types.ConnectionErrorCodeTypeInvalidCredentials {
		t.Fatalf("refused connection: %s %s, want FAILED INVALID_CREDENTIALS", e.ConnectionState, e.ConnectionErrorCode)
	}
	_, err = c.ConnectCustomKeyStore(ctx, &kms.ConnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	wantAPIError(t, err, "CustomKeyStoreInvalidStateException", "FAILED")
	_, err = c.DisconnectCustomKeyStore(ctx, &kms.DisconnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	mustNoErr(t, err, "DisconnectCustomKeyStore of a FAILED store")
	p.AddCredential(p.AccessKeyID(), p.Secret().Reveal())

	// The store and its key survive a restart; reconnected, the key is
	// Disabled as it was left, then enabled opens the old ciphertext.
	srv.Restart(t)
	c = srv.KMS()
	_, err = c.ConnectCustomKeyStore(ctx, &kms.ConnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	mustNoErr(t, err, "ConnectCustomKeyStore after the restart")
	if d := describe(t, c, keyID); d.KeyState != types.KeyStateDisabled {
		t.Fatalf("reconnected key: %s, want Disabled", d.KeyState)
	}
	_, err = c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(keyID)})
	mustNoErr(t, err, "EnableKey")
	dec, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	mustNoErr(t, err, "Decrypt after the restart")
	if string(dec.Plaintext) != "external secret" {
		t.Fatalf("Decrypt after the restart = %q", dec.Plaintext)
	}

	// Deletion: disconnected, and only once its keys are deleted.
	_, err = c.DisconnectCustomKeyStore(ctx, &kms.DisconnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	mustNoErr(t, err, "DisconnectCustomKeyStore")
	_, err = c.DeleteCustomKeyStore(ctx, &kms.DeleteCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	wantAPIError(t, err, "CustomKeyStoreHasCMKsException", id)
	_, err = c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(keyID), PendingWindowInDays: aws.Int32(7)})
	mustNoErr(t, err, "ScheduleKeyDeletion of an Unavailable key")
	if d := describe(t, c, keyID); d.KeyState != types.KeyStatePendingDeletion {
		t.Errorf("key scheduled for deletion: %s, want PendingDeletion", d.KeyState)
	}
	_, err = c.DeleteCustomKeyStore(ctx, &kms.DeleteCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	wantAPIError(t, err, "CustomKeyStoreHasCMKsException", id)
	srv.AdvanceClock(t, "8d")
	srv.RunJobs(t)
	_, err = c.DeleteCustomKeyStore(ctx, &kms.DeleteCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	mustNoErr(t, err, "DeleteCustomKeyStore")
	_, err = c.DescribeCustomKeyStores(ctx, &kms.DescribeCustomKeyStoresInput{CustomKeyStoreId: aws.String(id)})
	wantExactAPIError(t, err, "CustomKeyStoreNotFoundException", "Custom key store '"+id+"' does not exist.")

	// The proxy's secret and the plaintext never reach the disk.
	notOnDisk(t, srv.DataDir, map[string][]byte{"the proxy secret": []byte(p.Secret().Reveal()), "the plaintext": []byte("external secret")})

	// CloudTrail names the store and the external key of each use.
	found := false
	for _, ev := range readAudit(t, srv) {
		if ev.EventName == "Encrypt" && strings.Contains(string(ev.AdditionalEventData), `"xksKeyId":"ext-key-1"`) &&
			strings.Contains(string(ev.AdditionalEventData), `"customKeyStoreId":"`+id+`"`) {
			found = true
		}
		if strings.Contains(string(ev.RequestParameters), p.Secret().Reveal()) {
			t.Errorf("%s event holds the proxy secret", ev.EventName)
		}
	}
	if !found {
		t.Error("no Encrypt event names customKeyStoreId and xksKeyId")
	}
}

// TestKMSExternalKeyStoreOthers: what Keyfort cannot reach answers as AWS
// does for what does not exist, a proxy that does not answer in time is
// AWS's timeout, and the quota of 10 stores.
func TestKMSExternalKeyStoreOthers(t *testing.T) {
	srv, p := startXKS(t, 300*time.Millisecond)
	c := srv.KMS()
	ctx := ctxT(t)

	_, err := c.CreateCustomKeyStore(ctx, &kms.CreateCustomKeyStoreInput{CustomKeyStoreName: aws.String("hsm"),
		CloudHsmClusterId: aws.String("cluster-abcdefghijk"), KeyStorePassword: aws.String("kmsPswd"), TrustAnchorCertificate: aws.String("cert")})
	wantAPIError(t, err, "CloudHsmClusterNotFoundException", "cluster-abcdefghijk")
	vpc := xksStoreInput(p, "vpc")
	vpc.XksProxyConnectivity = types.XksProxyConnectivityTypeVpcEndpointService
	vpc.XksProxyVpcEndpointServiceName = aws.String("com.amazonaws.vpce.us-east-1.vpce-svc-example1")
	_, err = c.CreateCustomKeyStore(ctx, vpc)
	wantAPIError(t, err, "XksProxyVpcEndpointServiceNotFoundException", "vpce-svc-example1")
	noPath := xksStoreInput(p, "no-path")
	noPath.XksProxyUriPath = nil
	_, err = c.CreateCustomKeyStore(ctx, noPath)
	wantAPIError(t, err, "ValidationException", "XksProxyUriPath")
	wrongPath := xksStoreInput(p, "wrong-path")
	wrongPath.XksProxyUriPath = aws.String("/elsewhere/kms/xks/v1")
	_, err = c.CreateCustomKeyStore(ctx, wrongPath)
	wantExactAPIError(t, err, "XksProxyInvalidConfigurationException",
		"The external key store proxy rejected the request because of an invalid URI path. Verify the URI path for your external key store and update if necessary.")
	unknownHost := xksStoreInput(p, "unknown-host")
	unknownHost.XksProxyUriEndpoint = aws.String("https://127.0.0.1")
	_, err = c.CreateCustomKeyStore(ctx, unknownHost)
	wantAPIError(t, err, "XksProxyUriUnreachableException", "AWS KMS cannot communicate with the external key store proxy.")

	// A proxy that does not answer in time is asked twice (AWS retries
	// once after a network timeout), then the timeout is the answer.
	p.SetDelay(2 * time.Second)
	p.ResetRequests()
	start := time.Now()
	_, err = c.CreateCustomKeyStore(ctx, xksStoreInput(p, "slow"))
	wantExactAPIError(t, err, "XksProxyUriUnreachableException",
		"AWS KMS rejected the request because the external key store proxy did not respond in time. Retry the request. If you see this error repeatedly, report it to your external key store proxy administrator.")
	if n, d := len(p.Requests()), time.Since(start); n != 2 || d > 1900*time.Millisecond {
		t.Errorf("a proxy slower than the 300ms timeout was asked %d times in %v, want 2 times, well before its 2s answer", n, d)
	}
	p.SetDelay(0)
	p.SetHealthStatus(xks.HealthUnavailable)
	_, err = c.CreateCustomKeyStore(ctx, xksStoreInput(p, "unhealthy"))
	wantExactAPIError(t, err, "XksProxyUriUnreachableException",
		"The external key store proxy is in an unhealthy state. If you see this message repeatedly, notify your external key store proxy administrator.")
	p.SetHealthStatus(xks.HealthActive)

	// Ten stores per account and Region (paths differ).
	for i := range 10 {
		in := xksStoreInput(p, "store-"+string(rune('a'+i)))
		in.XksProxyUriPath = aws.String("/s" + string(rune('a'+i)) + p.Path())
		p.AllowPath(aws.ToString(in.XksProxyUriPath))
		_, err := c.CreateCustomKeyStore(ctx, in)
		mustNoErr(t, err, "CreateCustomKeyStore "+aws.ToString(in.CustomKeyStoreName))
	}
	_, err = c.CreateCustomKeyStore(ctx, xksStoreInput(p, "eleventh"))
	wantAPIError(t, err, "LimitExceededException", "10 custom key stores")
	page, err := c.DescribeCustomKeyStores(ctx, &kms.DescribeCustomKeyStoresInput{Limit: aws.Int32(4)})
	mustNoErr(t, err, "DescribeCustomKeyStores page")
	seen := len(page.CustomKeyStores)
	for page.Truncated {
		page, err = c.DescribeCustomKeyStores(ctx, &kms.DescribeCustomKeyStoresInput{Limit: aws.Int32(4), Marker: page.NextMarker})
		mustNoErr(t, err, "DescribeCustomKeyStores next page")
		seen += len(page.CustomKeyStores)
	}
	if seen != 10 {
		t.Errorf("DescribeCustomKeyStores pages listed %d stores, want 10", seen)
	}
}

// TestKMSExternalKeyStoreOnPostgres: the same store, keys and double
// encryption on PostgreSQL, and the Unavailable mark a disconnection
// writes.
func TestKMSExternalKeyStoreOnPostgres(t *testing.T) {
	srv, p := startXKS(t, 5*time.Second, keyfortest.WithStore(pgtest.DSN(t)))
	c := srv.KMS()
	ctx := ctxT(t)
	id, md := connectedXKSKey(t, c, p, "pg-xks", "pg-ext")
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("pg xks")})
	mustNoErr(t, err, "Encrypt")
	dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	mustNoErr(t, err, "Decrypt")
	if string(dec.Plaintext) != "pg xks" {
		t.Fatalf("Decrypt = %q", dec.Plaintext)
	}
	_, err = c.DisconnectCustomKeyStore(ctx, &kms.DisconnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	mustNoErr(t, err, "DisconnectCustomKeyStore")
	if d := describe(t, c, aws.ToString(md.KeyId)); d.KeyState != types.KeyStateUnavailable {
		t.Fatalf("key of a disconnected store on PostgreSQL: %s, want Unavailable", d.KeyState)
	}
	_, err = c.DeleteCustomKeyStore(ctx, &kms.DeleteCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	wantAPIError(t, err, "CustomKeyStoreHasCMKsException", id)
}

// TestSMSecretUnderExternalKey: a secret encrypted under a key in an
// external key store; every read asks the proxy, which is told the call
// came through Secrets Manager; with the store disconnected the read
// fails as AWS's does.
func TestSMSecretUnderExternalKey(t *testing.T) {
	srv, p := startXKS(t, 5*time.Second)
	c, sm := srv.KMS(), srv.SecretsManager()
	ctx := ctxT(t)
	id, md := connectedXKSKey(t, c, p, "sm-xks", "sm-ext")

	_, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("xks-secret"), KmsKeyId: md.Arn, SecretString: aws.String("held twice")})
	mustNoErr(t, err, "CreateSecret")
	if r := lastRequest(t, p, xks.OpEncrypt); r.Metadata["kmsOperation"] != "GenerateDataKey" || r.Metadata["kmsViaService"] != "secretsmanager" {
		t.Errorf("the proxy's Encrypt for CreateSecret = %+v, want GenerateDataKey via secretsmanager", r)
	}
	p.ResetRequests()
	v, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("xks-secret")})
	mustNoErr(t, err, "GetSecretValue")
	if aws.ToString(v.SecretString) != "held twice" {
		t.Fatalf("GetSecretValue = %q", aws.ToString(v.SecretString))
	}
	if r := lastRequest(t, p, xks.OpDecrypt); r.Metadata["kmsOperation"] != "Decrypt" || r.Metadata["kmsViaService"] != "secretsmanager" {
		t.Errorf("the proxy's Decrypt for GetSecretValue = %+v", r)
	}
	_, err = c.DisconnectCustomKeyStore(ctx, &kms.DisconnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	mustNoErr(t, err, "DisconnectCustomKeyStore")
	_, err = sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("xks-secret")})
	wantExactAPIError(t, err, "DecryptionFailure", "Secrets Manager can't decrypt the protected secret text using the provided KMS key.")
}

// TestStrictExternalKeyStore: in strict mode the custom key store
// operations and the keys in a store are authorized as any other:
// kms:KeyOrigin EXTERNAL_KEY_STORE decides CreateKey, and a caller the key
// policy and its identity policies do not allow is refused before the
// proxy is asked anything.
func TestStrictExternalKeyStore(t *testing.T) {
	creds := `principals:
  - arn: arn:aws:iam::111122223333:root
    access_keys:
      - {id: AKIAROOT000000000001, secret: root-secret}
  - arn: arn:aws:iam::111122223333:user/keyadmin
    access_keys:
      - {id: AKIAKEYADMIN0000001, secret: keyadmin-secret}
    policies:
      - '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:CreateKey","Resource":"*","Condition":{"StringEquals":{"kms:KeyOrigin":"AWS_KMS"}}}]}'
  - arn: arn:aws:iam::111122223333:user/xksuser
    access_keys:
      - {id: AKIAXKSUSER00000001, secret: xksuser-secret}
    policies:
      - '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:CreateKey","Resource":"*","Condition":{"StringEquals":{"kms:KeyOrigin":"EXTERNAL_KEY_STORE"}}},{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}]}'
  - arn: arn:aws:iam::111122223333:user/nobody
    access_keys:
      - {id: AKIANOBODY000000001, secret: nobody-secret}
`
	srv, p := startXKSWith(t, func(t *testing.T, opts ...keyfortest.Option) *keyfortest.Server {
		return startStrict(t, creds, opts...)
	}, 5*time.Second)
	root := kmsFor(srv, "AKIAROOT000000000001", "root-secret")
	keyadmin := kmsFor(srv, "AKIAKEYADMIN0000001", "keyadmin-secret")
	xksuser := kmsFor(srv, "AKIAXKSUSER00000001", "xksuser-secret")
	nobody := kmsFor(srv, "AKIANOBODY000000001", "nobody-secret")
	ctx := ctxT(t)

	_, err := nobody.CreateCustomKeyStore(ctx, xksStoreInput(p, "denied"))
	wantAPIError(t, err, "AccessDeniedException", "kms:CreateCustomKeyStore")
	if n := len(p.Requests()); n != 0 {
		t.Fatalf("a refused CreateCustomKeyStore asked the proxy %d times", n)
	}
	id, _ := connectedXKSKey(t, root, p, "strict-xks", "strict-ext")
	p.AddKey("strict-ext-2")
	inStore := &kms.CreateKeyInput{Origin: types.OriginTypeExternalKeyStore, CustomKeyStoreId: aws.String(id), XksKeyId: aws.String("strict-ext-2")}
	_, err = keyadmin.CreateKey(ctx, inStore)
	wantAPIError(t, err, "AccessDeniedException", "kms:CreateKey")
	createKey(t, keyadmin, &kms.CreateKeyInput{})
	md := createKey(t, xksuser, inStore)
	_, err = xksuser.CreateKey(ctx, &kms.CreateKeyInput{})
	wantAPIError(t, err, "AccessDeniedException", "kms:CreateKey")

	enc, err := xksuser.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("strict")})
	mustNoErr(t, err, "Encrypt by a caller its policy allows")
	p.ResetRequests()
	_, err = nobody.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x")})
	wantAPIError(t, err, "AccessDeniedException", "kms:Encrypt")
	_, err = nobody.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	wantAPIError(t, err, "AccessDeniedException", "kms:Decrypt")
	_, err = nobody.DisconnectCustomKeyStore(ctx, &kms.DisconnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	wantAPIError(t, err, "AccessDeniedException", "kms:DisconnectCustomKeyStore")
	if n := len(p.Requests()); n != 0 {
		t.Errorf("refused calls asked the proxy %d times", n)
	}
	if e := describeStore(t, root, id); e.ConnectionState != types.ConnectionStateTypeConnected {
		t.Errorf("after a refused DisconnectCustomKeyStore the store is %s", e.ConnectionState)
	}
}
