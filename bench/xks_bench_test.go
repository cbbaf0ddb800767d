package bench

import (
	"context"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyfort/keyfort/internal/config"
	"github.com/keyfort/keyfort/internal/keyfortest"
	"github.com/keyfort/keyfort/internal/xks/xkstest"
)

// setupXKS starts a server beside an XKS proxy (xkstest, in this process)
// and returns a key in a connected external key store and a ciphertext of
// it.
func setupXKS(b *testing.B) (*keyfortest.Server, string, []byte) {
	p, err := xkstest.Start(xkstest.Options{Hosts: []string{"xks.bench.test"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	p.AddKey("bench")
	srv := keyfortest.Start(b, keyfortest.WithXKSProxy("xks.bench.test", p.Address(), p.CertPEM()),
		keyfortest.WithConfig(func(c *config.Config) { c.XKSProxyTimeout = 5 * time.Second }))
	c := srv.KMS()
	ctx := context.Background()
	store, err := c.CreateCustomKeyStore(ctx, &kms.CreateCustomKeyStoreInput{
		CustomKeyStoreName: aws.String("bench"), CustomKeyStoreType: types.CustomKeyStoreTypeExternalKeyStore,
		XksProxyConnectivity: types.XksProxyConnectivityTypePublicEndpoint,
		XksProxyUriEndpoint:  aws.String("https://xks.bench.test"), XksProxyUriPath: aws.String(p.Path()),
		XksProxyAuthenticationCredential: &types.XksProxyAuthenticationCredentialType{
			AccessKeyId: aws.String(p.AccessKeyID()), RawSecretAccessKey: aws.String(p.Secret().Reveal())},
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.ConnectCustomKeyStore(ctx, &kms.ConnectCustomKeyStoreInput{CustomKeyStoreId: store.CustomKeyStoreId}); err != nil {
		b.Fatal(err)
	}
	key, err := c.CreateKey(ctx, &kms.CreateKeyInput{Origin: types.OriginTypeExternalKeyStore, CustomKeyStoreId: store.CustomKeyStoreId, XksKeyId: aws.String("bench")})
	if err != nil {
		b.Fatal(err)
	}
	id := aws.ToString(key.KeyMetadata.KeyId)
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: make([]byte, 64)})
	if err != nil {
		b.Fatal(err)
	}
	return srv, id, enc.CiphertextBlob
}

// BenchmarkServerEncryptXKS is BenchmarkServerEncrypt with a key in an
// external key store: each Encrypt also makes an HTTPS call to the proxy
// (kept-alive connections), whose own work (signature check, AES-GCM)
// runs in this process too.
func BenchmarkServerEncryptXKS(b *testing.B) {
	srv, id, _ := setupXKS(b)
	body := fmt.Appendf(nil, `{"KeyId":%q,"Plaintext":%q}`, id, base64.StdEncoding.EncodeToString(make([]byte, 64)))
	benchOp(b, "TrentService.Encrypt", body, srv)
}

// BenchmarkServerDecryptXKS is BenchmarkServerDecrypt with a key in an
// external key store.
func BenchmarkServerDecryptXKS(b *testing.B) {
	srv, _, blob := setupXKS(b)
	body := fmt.Appendf(nil, `{"CiphertextBlob":%q}`, base64.StdEncoding.EncodeToString(blob))
	benchOp(b, "TrentService.Decrypt", body, srv)
}
