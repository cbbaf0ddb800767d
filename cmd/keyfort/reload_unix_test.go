//go:build unix

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/keyfort/keyfort/internal/keyfortest"
)

// TestServeReloadsCredentialsOnSIGHUP runs `keyfort serve --auth strict`,
// rewrites the credentials file and sends the process SIGHUP: the new file
// is in force; then a bad file leaves it in force, with an error logged.
func TestServeReloadsCredentialsOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "credentials.yaml")
	const first, second = "AKIAFIRST00000000001", "AKIASECOND0000000001"
	write := func(key string) {
		t.Helper()
		content := "principals:\n  - arn: arn:aws:iam::111122223333:root\n    access_keys: [{id: " + key + ", secret: s3cret}]\n"
		if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(first)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"serve", "--auth", "strict", "--credentials", file, "--listen", "127.0.0.1:0",
			"--data", filepath.Join(dir, "data"), "--log-format", "json"}, &bytes.Buffer{}, &stderr, noEnv)
	}()
	var addr string
	for i := 0; i < 1000 && addr == ""; i++ {
		if m := listenRE.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
			break
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited with %d: %s", code, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if addr == "" {
		t.Fatalf("server did not log its address: %s", stderr.String())
	}
	status := func(key string) int {
		t.Helper()
		body := []byte("{}")
		req, err := http.NewRequest("POST", "http://"+addr+"/", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "TrentService.ListKeys")
		sum := sha256.Sum256(body)
		creds := aws.Credentials{AccessKeyID: key, SecretAccessKey: "s3cret"}
		if err := v4.NewSigner().SignHTTP(t.Context(), creds, req, hex.EncodeToString(sum[:]), "kms", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	hup := func(logLine string) {
		t.Helper()
		before := strings.Count(stderr.String(), logLine)
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 1000; i++ {
			if strings.Count(stderr.String(), logLine) > before {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("no %s after SIGHUP: %s", logLine, stderr.String())
	}

	if got := status(first); got != 200 {
		t.Fatalf("ListKeys as %s = %d, want 200", first, got)
	}
	write(second)
	hup(`"msg":"credentials reloaded"`)
	if a, b := status(first), status(second); a != 400 || b != 200 {
		t.Errorf("after reload: ListKeys as %s = %d (want 400), as %s = %d (want 200)", first, a, second, b)
	}
	write("AKIA1")
	hup(`"level":"ERROR","msg":"credentials not reloaded; the previous ones stay in force"`)
	if got := status(second); got != 200 {
		t.Errorf("after a bad file: ListKeys as %s = %d, want 200", second, got)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exit code = %d, want 0 (stderr %s)", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop after cancel")
	}
}

// TestServeReloadsTLSOnSIGHUP runs `keyfort serve --tls-cert --tls-key`,
// replaces the certificate and sends the process SIGHUP: the new one is
// served; then a bad file leaves it in force, with an error logged.
func TestServeReloadsTLSOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	ca1, ca2 := keyfortest.NewTestCA(t, "CA one"), keyfortest.NewTestCA(t, "CA two")
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	install := func(ca *keyfortest.TestCA) {
		t.Helper()
		cert, key := ca.ServerCert(t)
		if err := os.WriteFile(certFile, cert, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, key, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	install(ca1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"serve", "--tls-cert", certFile, "--tls-key", keyFile, "--listen", "127.0.0.1:0",
			"--data", filepath.Join(dir, "data"), "--log-format", "json"}, &bytes.Buffer{}, &stderr, noEnv)
	}()
	var addr string
	for i := 0; i < 1000 && addr == ""; i++ {
		if m := listenRE.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
			break
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited with %d: %s", code, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if addr == "" {
		t.Fatalf("server did not log its address: %s", stderr.String())
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca1.Cert)
	roots.AddCert(ca2.Cert)
	issuer := func() string {
		t.Helper()
		// A new connection each time: one made before a reload keeps its
		// certificate.
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, DisableKeepAlives: true}}
		resp, err := client.Get("https://" + addr + "/health")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET /health = %d", resp.StatusCode)
		}
		return resp.TLS.PeerCertificates[0].Issuer.CommonName
	}
	hup := func(logLine string) {
		t.Helper()
		before := strings.Count(stderr.String(), logLine)
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 1000; i++ {
			if strings.Count(stderr.String(), logLine) > before {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("no %s after SIGHUP: %s", logLine, stderr.String())
	}

	if got := issuer(); got != "CA one" {
		t.Fatalf("served a certificate of %q, want CA one", got)
	}
	install(ca2)
	hup(`"msg":"TLS certificate reloaded"`)
	if got := issuer(); got != "CA two" {
		t.Errorf("after SIGHUP: served a certificate of %q, want CA two", got)
	}
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	hup(`"level":"ERROR","msg":"TLS certificate not reloaded; the previous one stays in force"`)
	if got := issuer(); got != "CA two" {
		t.Errorf("after a bad key: served a certificate of %q, want CA two", got)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exit code = %d, want 0 (stderr %s)", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop after cancel")
	}
}
