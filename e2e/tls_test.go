package e2e

import (
	"bytes"
	"crypto/tls"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyfort/keyfort/internal/config"
	"github.com/keyfort/keyfort/internal/keyfortest"
)

// protoRecorder is an http.RoundTripper that notes the protocol of every
// response (HTTP/2.0, HTTP/1.1).
type protoRecorder struct {
	next   http.RoundTripper
	mu     sync.Mutex
	protos []string
}

func (p *protoRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := p.next.RoundTrip(r)
	if err == nil {
		p.mu.Lock()
		p.protos = append(p.protos, resp.Proto)
		p.mu.Unlock()
	}
	return resp, err
}

// TestTLSSDK drives KMS and Secrets Manager through the SDK over HTTPS with
// --tls-self-signed semantics; the SDK's requests travel over HTTP/2.
func TestTLSSDK(t *testing.T) {
	s := keyfortest.Start(t, keyfortest.WithTLS())
	if !strings.HasPrefix(s.URL, "https://127.0.0.1:") {
		t.Fatalf("URL = %q, want https", s.URL)
	}
	rec := &protoRecorder{next: s.HTTPClient().Transport}
	cfg := s.AWSConfig(keyfortest.DefaultAccessKey, keyfortest.DefaultRegion)
	cfg.HTTPClient = &http.Client{Transport: rec}
	kc, sm := kms.NewFromConfig(cfg), secretsmanager.NewFromConfig(cfg)

	key, err := kc.CreateKey(ctxT(t), &kms.CreateKeyInput{Description: aws.String("over TLS")})
	mustNoErr(t, err, "CreateKey")
	plaintext := []byte("sent over TLS")
	enc, err := kc.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: plaintext,
		EncryptionContext: map[string]string{"purpose": "tls"}})
	mustNoErr(t, err, "Encrypt")
	dec, err := kc.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob,
		EncryptionContext: map[string]string{"purpose": "tls"}})
	mustNoErr(t, err, "Decrypt")
	if !bytes.Equal(dec.Plaintext, plaintext) || aws.ToString(dec.KeyId) != aws.ToString(key.KeyMetadata.Arn) {
		t.Errorf("Decrypt = %q from %s, want %q from %s", dec.Plaintext, aws.ToString(dec.KeyId), plaintext, aws.ToString(key.KeyMetadata.Arn))
	}

	_, err = sm.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("tls/db"), SecretString: aws.String("pa55-over-tls")})
	mustNoErr(t, err, "CreateSecret")
	got, err := sm.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("tls/db")})
	mustNoErr(t, err, "GetSecretValue")
	if aws.ToString(got.SecretString) != "pa55-over-tls" {
		t.Errorf("GetSecretValue = %q, want pa55-over-tls", aws.ToString(got.SecretString))
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.protos) != 5 {
		t.Fatalf("%d responses recorded, want 5", len(rec.protos))
	}
	for i, p := range rec.protos {
		if p != "HTTP/2.0" {
			t.Errorf("response %d over %s, want HTTP/2.0", i, p)
		}
	}
}

// TestTLSHTTP2 asks for HTTP/2 and for HTTP/1.1 only: the server speaks
// each (ALPN h2, http/1.1).
func TestTLSHTTP2(t *testing.T) {
	s := keyfortest.Start(t, keyfortest.WithTLS())
	for _, tt := range []struct {
		name      string
		forceH2   bool
		nextProto []string
		wantMajor int
	}{
		{"http2", true, nil, 2},
		{"http1.1 only", false, []string{"http/1.1"}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := s.ClientTLSConfig()
			cfg.NextProtos = tt.nextProto
			tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: tt.forceH2}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Get(s.URL + "/health")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.ProtoMajor != tt.wantMajor {
				t.Errorf("GET /health = %d over %s, want 200 over HTTP/%d", resp.StatusCode, resp.Proto, tt.wantMajor)
			}
			if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
				t.Errorf("GET /health: TLS state %+v, want TLS 1.2 or later", resp.TLS)
			}
		})
	}
}

// TestTLSMutual requires client certificates signed by the --tls-client-ca:
// a client without one, or with one from another CA, is refused at the
// handshake; one with a good certificate works through the SDK.
func TestTLSMutual(t *testing.T) {
	clientCA, otherCA := keyfortest.NewTestCA(t, "client CA"), keyfortest.NewTestCA(t, "other CA")
	caFile := clientCA.WriteFile(t, t.TempDir(), "clients.pem")
	good := clientCA.ClientCert(t, "app")
	s := keyfortest.Start(t, keyfortest.WithTLS(),
		keyfortest.WithConfig(func(c *config.Config) { c.TLSClientCA = caFile }),
		keyfortest.WithClientTLS(func(c *tls.Config) { c.Certificates = []tls.Certificate{good} }))

	key, err := s.KMS().CreateKey(ctxT(t), &kms.CreateKeyInput{})
	mustNoErr(t, err, "CreateKey with a client certificate")
	_, err = s.KMS().Encrypt(ctxT(t), &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("x")})
	mustNoErr(t, err, "Encrypt with a client certificate")

	for _, tt := range []struct {
		name  string
		certs []tls.Certificate
		alert string
	}{
		{"no client certificate", nil, "certificate required"},
		{"certificate of another CA", []tls.Certificate{otherCA.ClientCert(t, "intruder")}, "unknown certificate authority"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := s.ClientTLSConfig()
			cfg.Certificates = nil
			if len(tt.certs) > 0 {
				// Sent even though the server's list of CAs does not name
				// its issuer (a Go client would otherwise send none).
				cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tt.certs[0], nil }
			}
			// The handshake itself: with TLS 1.3 the client finishes first
			// and learns of the refusal on its first read (nothing is
			// written, so the server's close cannot turn into a reset that
			// hides its alert).
			conn, err := tls.Dial("tcp", strings.TrimPrefix(s.URL, "https://"), cfg)
			if err == nil {
				_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, err = conn.Read(make([]byte, 1))
				conn.Close()
			}
			if err == nil || !strings.Contains(err.Error(), "remote error: tls: "+tt.alert) {
				t.Fatalf("handshake = %v, want the server's alert %q", err, tt.alert)
			}
			// And through the SDK.
			awsCfg := s.AWSConfig(keyfortest.DefaultAccessKey, keyfortest.DefaultRegion)
			tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
			defer tr.CloseIdleConnections()
			awsCfg.HTTPClient = &http.Client{Transport: tr}
			_, err = kms.NewFromConfig(awsCfg).ListKeys(ctxT(t), &kms.ListKeysInput{})
			// (The alert, or a broken pipe when the request was already on
			// its way: with TLS 1.3 the client finishes first.)
			if err == nil {
				t.Errorf("ListKeys = nil, want the connection refused")
			}
		})
	}
}

// TestTLSSecureTransportCondition: a key policy that denies requests when
// aws:SecureTransport is false refuses the plain-HTTP server's Encrypt and
// allows the same request over TLS.
func TestTLSSecureTransportCondition(t *testing.T) {
	const policy = `{"Version": "2012-10-17", "Statement": [
	  {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
	   "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"},
	  {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*",
	   "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}`
	for _, tt := range []struct {
		name    string
		opts    []keyfortest.Option
		wantErr bool
	}{
		{"plain http", nil, true},
		{"tls", []keyfortest.Option{keyfortest.WithTLS()}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := keyfortest.Start(t, tt.opts...)
			c := s.KMS()
			// The lockout check would refuse the policy over plain HTTP: it
			// denies the caller there, which is the point.
			key, err := c.CreateKey(ctxT(t), &kms.CreateKeyInput{Policy: aws.String(policy), BypassPolicyLockoutSafetyCheck: true})
			mustNoErr(t, err, "CreateKey")
			_, err = c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("x")})
			if tt.wantErr {
				wantAPIError(t, err, "AccessDeniedException",
					"is not authorized to perform: kms:Encrypt on resource: "+aws.ToString(key.KeyMetadata.Arn)+" with an explicit deny in a resource-based policy")
			} else {
				mustNoErr(t, err, "Encrypt over TLS")
			}
		})
	}
}
