package app_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyfort/keyfort/internal/app"
	"github.com/keyfort/keyfort/internal/config"
	"github.com/keyfort/keyfort/internal/keyfortest"
)

// servedCert dials addr with cfg over TLS 1.2 and returns the certificate
// the server presented, or the handshake's error (with TLS 1.2 a refused
// client certificate fails the handshake itself).
func servedCert(t *testing.T, addr string, cfg *tls.Config) (*x509.Certificate, error) {
	t.Helper()
	cfg = cfg.Clone()
	if cfg.MaxVersion == 0 {
		cfg.MaxVersion = tls.VersionTLS12
	}
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

func writeFile(t *testing.T, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
}

func TestTLSSelfSigned(t *testing.T) {
	var logs lockedBuffer
	s := keyfortest.Start(t, keyfortest.WithTLS(), keyfortest.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if !strings.HasPrefix(s.URL, "https://127.0.0.1:") {
		t.Errorf("URL = %q, want https://127.0.0.1:port", s.URL)
	}
	ca := filepath.Join(s.DataDir, "tls", "ca.pem")
	if s.CAFile() != ca {
		t.Errorf("CAFile() = %q, want %q", s.CAFile(), ca)
	}
	for name, want := range map[string]os.FileMode{"ca.pem": 0o644, "ca.key": 0o600, "server.pem": 0o644, "server.key": 0o600} {
		fi, err := os.Stat(filepath.Join(s.DataDir, "tls", name))
		if err != nil {
			t.Errorf("stat %s: %v", name, err)
		} else if fi.Mode().Perm() != want {
			t.Errorf("%s mode = %v, want %v", name, fi.Mode().Perm(), want)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(s.DataDir, "tls")); len(entries) != 4 {
		t.Errorf("<data>/tls holds %d files, want 4 (no temporary file left)", len(entries))
	}
	for _, want := range []string{`msg="TLS with a self-signed certificate`, "aws --ca-bundle " + ca, "AWS_CA_BUNDLE=" + ca,
		`boto3 verify=\"` + ca, "created a TLS CA", "tls=self-signed"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q: %s", want, logs.String())
		}
	}
	if _, err := s.KMS().ListKeys(t.Context(), &kms.ListKeysInput{}); err != nil {
		t.Fatalf("ListKeys over TLS = %v", err)
	}

	// HTTPS only: a plain HTTP request is answered 400 by the TLS layer.
	resp, err := http.Get("http://" + s.App.Addr() + "/health")
	if err != nil {
		t.Fatalf("GET http:// = %v, want an answer", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "HTTP request to an HTTPS server") {
		t.Errorf("GET http:// = %d %q, want 400 from the TLS layer", resp.StatusCode, body)
	}

	// TLS 1.1 is refused; ALPN offers h2.
	cfg := s.ClientTLSConfig()
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	if _, err := servedCert(t, s.App.Addr(), cfg); err == nil {
		t.Errorf("a TLS 1.1 handshake succeeded, want it refused")
	}
	cfg = s.ClientTLSConfig()
	cfg.NextProtos = []string{"h2", "http/1.1"}
	conn, err := tls.Dial("tcp", s.App.Addr(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Errorf("ALPN = %q, want h2", p)
	}
	conn.Close()

	// A restart reuses the CA and the server certificate.
	caBefore, _ := os.ReadFile(ca)
	certBefore, _ := os.ReadFile(filepath.Join(s.DataDir, "tls", "server.pem"))
	s.Restart(t)
	caAfter, _ := os.ReadFile(ca)
	certAfter, _ := os.ReadFile(filepath.Join(s.DataDir, "tls", "server.pem"))
	if !bytes.Equal(caBefore, caAfter) || !bytes.Equal(certBefore, certAfter) {
		t.Errorf("restart made new certificates, want the old ones reused")
	}
	if _, err := s.KMS().ListKeys(t.Context(), &kms.ListKeysInput{}); err != nil {
		t.Fatalf("ListKeys over TLS after restart = %v", err)
	}
}

// TestTLSReload serves --tls-cert/--tls-key/--tls-client-ca and replaces
// each file: Reload puts good files in force and keeps the old ones when a
// new file is bad.
func TestTLSReload(t *testing.T) {
	dir := t.TempDir()
	serverCA1, serverCA2 := keyfortest.NewTestCA(t, "server CA 1"), keyfortest.NewTestCA(t, "server CA 2")
	clientCA1, clientCA2 := keyfortest.NewTestCA(t, "client CA 1"), keyfortest.NewTestCA(t, "client CA 2")
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	clientCAFile := clientCA1.WriteFile(t, dir, "clients.pem")
	cert1, key1 := serverCA1.ServerCert(t)
	writeFile(t, certFile, cert1, 0o644)
	writeFile(t, keyFile, key1, 0o600)

	var logs lockedBuffer
	s := keyfortest.Start(t, keyfortest.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
		keyfortest.WithConfig(func(c *config.Config) {
			c.TLSCert, c.TLSKey, c.TLSClientCA = certFile, keyFile, clientCAFile
		}))
	if !strings.HasPrefix(s.URL, "https://") {
		t.Fatalf("URL = %q, want https", s.URL)
	}
	roots := x509.NewCertPool()
	roots.AddCert(serverCA1.Cert)
	roots.AddCert(serverCA2.Cert)
	client1, client2 := clientCA1.ClientCert(t, "client 1"), clientCA2.ClientCert(t, "client 2")
	dial := func(c tls.Certificate) (*x509.Certificate, error) {
		t.Helper()
		return servedCert(t, s.App.Addr(), &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{c}})
	}
	wantServed := func(client tls.Certificate, issuer *keyfortest.TestCA) {
		t.Helper()
		got, err := dial(client)
		if err != nil {
			t.Fatalf("handshake = %v, want success", err)
		}
		if got.Issuer.CommonName != issuer.Cert.Subject.CommonName {
			t.Fatalf("served a certificate of %q, want one of %q", got.Issuer.CommonName, issuer.Cert.Subject.CommonName)
		}
	}
	wantRefused := func(client tls.Certificate) {
		t.Helper()
		if _, err := dial(client); err == nil {
			name := "no client certificate"
			if client.Leaf != nil {
				name = "the client certificate of " + client.Leaf.Issuer.CommonName
			}
			t.Fatalf("handshake with %s succeeded, want it refused", name)
		}
	}
	wantServed(client1, serverCA1)
	wantRefused(client2)
	wantRefused(tls.Certificate{})

	// New certificate, key and client CA: in force after Reload.
	cert2, key2 := serverCA2.ServerCert(t)
	writeFile(t, certFile, cert2, 0o644)
	writeFile(t, keyFile, key2, 0o600)
	clientCA2.WriteFile(t, dir, "clients.pem")
	wantServed(client1, serverCA1) // not before Reload
	if err := s.App.Reload(); err != nil {
		t.Fatalf("Reload(good files) = %v", err)
	}
	wantServed(client2, serverCA2)
	wantRefused(client1)
	if !strings.Contains(logs.String(), `level=INFO msg="TLS certificate reloaded"`) {
		t.Errorf("no info log of the reload: %s", logs.String())
	}

	// Bad files: the error names the setting, is logged at error level in
	// one line, and the files in force stay.
	tests := []struct {
		name  string
		write func()
		want  string
	}{
		{"garbage certificate", func() { writeFile(t, certFile, []byte("not a certificate\n"), 0o644) },
			"tls-cert: " + certFile + ": no PEM certificate (-----BEGIN CERTIFICATE-----) found"},
		{"key of another certificate", func() { writeFile(t, certFile, cert2, 0o644); writeFile(t, keyFile, key1, 0o600) },
			"tls-key: " + keyFile + ": tls: private key does not match public key"},
		{"missing key", func() { os.Remove(keyFile) },
			"tls-key: open " + keyFile + ": no such file or directory"},
		{"garbage client CA", func() {
			writeFile(t, keyFile, key2, 0o600)
			writeFile(t, clientCAFile, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o644)
		}, "tls-client-ca: " + clientCAFile + ": certificate 1: x509: malformed certificate"},
	}
	for _, tt := range tests {
		tt.write()
		before := strings.Count(logs.String(), "TLS certificate not reloaded")
		err := s.App.Reload()
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s: Reload = %v, want %q", tt.name, err, tt.want)
		}
		if after := strings.Count(logs.String(), `level=ERROR msg="TLS certificate not reloaded; the previous one stays in force"`); after != before+1 {
			t.Errorf("%s: no error log of the refused reload: %s", tt.name, logs.String())
		}
		wantServed(client2, serverCA2)
		wantRefused(client1)
	}
	if strings.Contains(logs.String(), "PRIVATE KEY") {
		t.Errorf("a private key reached the logs")
	}
}

func TestTLSBadFilesStopStart(t *testing.T) {
	dir := t.TempDir()
	ca := keyfortest.NewTestCA(t, "server CA")
	certPEM, keyPEM := ca.ServerCert(t)
	writeFile(t, filepath.Join(dir, "cert.pem"), certPEM, 0o644)
	writeFile(t, filepath.Join(dir, "key.pem"), keyPEM, 0o600)
	tests := []struct {
		name           string
		cert, key, cas string
		want           string
	}{
		{"missing cert", "nope.pem", "key.pem", "", "app: tls-cert: open " + filepath.Join(dir, "nope.pem") + ": no such file or directory"},
		{"key as cert", "key.pem", "key.pem", "", "app: tls-cert: " + filepath.Join(dir, "key.pem") + ": no PEM certificate"},
		{"cert as key", "cert.pem", "cert.pem", "", "app: tls-key: " + filepath.Join(dir, "cert.pem") + ": tls: found a certificate rather than a key"},
		{"client CA without certificates", "cert.pem", "key.pem", "key.pem", "app: tls-client-ca: " + filepath.Join(dir, "key.pem") + ": no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Listen = "127.0.0.1:0"
			cfg.DataDir = filepath.Join(t.TempDir(), "data")
			cfg.TLSCert, cfg.TLSKey = filepath.Join(dir, tt.cert), filepath.Join(dir, tt.key)
			if tt.cas != "" {
				cfg.TLSClientCA = filepath.Join(dir, tt.cas)
			}
			a, err := app.New(t.Context(), cfg, app.Options{LookupEnv: func(string) (string, bool) { return "", false }})
			if err == nil {
				a.Close()
				t.Fatal("New = nil, want an error")
			}
			if !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("New = %v, want one line starting %q", err, tt.want)
			}
			if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused start made the data directory (%v)", err)
			}
		})
	}
}

// TestTLSSelfSignedFailedStart: a start that cannot listen writes no TLS
// file; the next one does.
func TestTLSSelfSignedFailedStart(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := config.Default()
	cfg.Listen = busy.Addr().String()
	cfg.DataDir = t.TempDir()
	cfg.TLSSelfSigned = true
	opts := app.Options{LookupEnv: func(string) (string, bool) { return "", false }}
	a, err := app.New(t.Context(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Start on a busy port = %v, want address already in use", err)
	}
	a.Close()
	if _, err := os.Stat(cfg.TLSDirectory()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after a failed start, stat %s = %v, want it absent", cfg.TLSDirectory(), err)
	}

	cfg.Listen = "127.0.0.1:0"
	a, err = app.New(t.Context(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(a.TLSCAFile()); err != nil {
		t.Errorf("after a start, stat CA = %v", err)
	}
}
