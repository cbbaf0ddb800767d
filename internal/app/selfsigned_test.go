package app

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mustLoadSelfSigned(t *testing.T, dir string, now time.Time) *selfSigned {
	t.Helper()
	s, err := loadSelfSigned(dir, now, nil)
	if err != nil {
		t.Fatalf("loadSelfSigned(%s) = %v", now.Format(time.DateOnly), err)
	}
	if err := s.write(); err != nil {
		t.Fatalf("write = %v", err)
	}
	return s
}

func parsePEM(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSelfSignedCertificates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s := mustLoadSelfSigned(t, dir, now)
	if !s.newCA || !s.newCert {
		t.Fatalf("first load: newCA=%v newCert=%v, want both", s.newCA, s.newCert)
	}
	ca, leaf := parsePEM(t, s.caPEM), parsePEM(t, s.certPEM)
	if _, ok := ca.PublicKey.(*ecdsa.PublicKey); !ok || !ca.IsCA || !ca.NotAfter.Equal(now.AddDate(10, 0, 0)) {
		t.Errorf("CA: key %T, IsCA %v, NotAfter %v; want ECDSA, a CA, 10 years", ca.PublicKey, ca.IsCA, ca.NotAfter)
	}
	if !leaf.NotAfter.Equal(now.Add(825*24*time.Hour)) || leaf.IsCA {
		t.Errorf("server certificate: NotAfter %v, IsCA %v; want 825 days, not a CA", leaf.NotAfter, leaf.IsCA)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, CurrentTime: now}); err != nil {
			t.Errorf("Verify(%s) = %v", host, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "example.com", CurrentTime: now}); err == nil {
		t.Errorf("Verify(example.com) = nil, want an error")
	}

	// The CA is name-constrained: a certificate it signs for another name
	// does not verify, even with its key.
	caKey, err := s.readCAKey(ca)
	if err != nil {
		t.Fatal(err)
	}
	other := &selfSigned{dir: t.TempDir()}
	if err := other.makeServer(ca, caKey, now, rand.Reader); err != nil {
		t.Fatal(err)
	}
	forged := parsePEM(t, other.certPEM)
	tmpl := *forged
	tmpl.DNSNames = []string{"bank.example"}
	tmpl.IPAddresses = nil
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, ca, forged.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	bad, _ := x509.ParseCertificate(der)
	if _, err := bad.Verify(x509.VerifyOptions{Roots: roots, DNSName: "bank.example", CurrentTime: now}); err == nil {
		t.Errorf("a certificate for bank.example signed by the CA verifies, want the name constraints to refuse it")
	}

	// Later loads reuse both, until the server certificate nears its end.
	again := mustLoadSelfSigned(t, dir, now.Add(24*time.Hour))
	if again.newCA || again.newCert || !bytes.Equal(again.certPEM, s.certPEM) {
		t.Errorf("second load made new files (newCA=%v newCert=%v)", again.newCA, again.newCert)
	}
	later := now.Add(800 * 24 * time.Hour)
	renewed := mustLoadSelfSigned(t, dir, later)
	if renewed.newCA || !renewed.newCert || !strings.Contains(renewed.reason, "expires on") {
		t.Errorf("load near expiry: newCA=%v newCert=%v reason %q, want a new server certificate only", renewed.newCA, renewed.newCert, renewed.reason)
	}
	if got := parsePEM(t, renewed.certPEM); !got.NotAfter.Equal(later.Add(825 * 24 * time.Hour)) {
		t.Errorf("renewed NotAfter = %v", got.NotAfter)
	}
	onDisk, _ := os.ReadFile(filepath.Join(dir, "server.pem"))
	if !bytes.Equal(onDisk, renewed.certPEM) {
		t.Errorf("server.pem is not the renewed certificate")
	}
	// Past the expiry too (a server stopped for years).
	if s := mustLoadSelfSigned(t, dir, later.Add(1000*24*time.Hour)); !s.newCert {
		t.Errorf("load after expiry: no new server certificate")
	}
	// Near the CA's end the server certificate ends with it.
	nearCAEnd := now.AddDate(10, 0, -40)
	if s := mustLoadSelfSigned(t, dir, nearCAEnd); !parsePEM(t, s.certPEM).NotAfter.Equal(ca.NotAfter) {
		t.Errorf("server certificate outlives its CA")
	}
	// An expired CA stops start-up with what to do.
	_, err = loadSelfSigned(dir, now.AddDate(10, 0, 1), nil)
	if err == nil || !strings.Contains(err.Error(), "tls-self-signed: the CA "+filepath.Join(dir, "ca.pem")+" expired on 2040-01-02; remove "+dir) {
		t.Errorf("load after the CA expired = %v", err)
	}
}

func TestSelfSignedRepairs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	now := time.Now()
	first := mustLoadSelfSigned(t, dir, now)

	// A server certificate of another CA (a crash between writing a new CA
	// and its server certificate) is made again.
	foreign := mustLoadSelfSigned(t, filepath.Join(t.TempDir(), "tls"), now)
	if err := os.WriteFile(filepath.Join(dir, "server.pem"), foreign.certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "server.key"), foreign.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	s := mustLoadSelfSigned(t, dir, now)
	if s.newCA || !s.newCert || !strings.Contains(s.reason, "does not verify") {
		t.Errorf("foreign server certificate: newCA=%v newCert=%v reason %q", s.newCA, s.newCert, s.reason)
	}
	if !bytes.Equal(s.caPEM, first.caPEM) {
		t.Errorf("the CA changed")
	}

	// A garbage server key is replaced too.
	if err := os.WriteFile(filepath.Join(dir, "server.key"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s := mustLoadSelfSigned(t, dir, now); !s.newCert {
		t.Errorf("garbage key: no new server certificate")
	}

	// Without the CA key a new server certificate cannot be made.
	if err := os.Remove(filepath.Join(dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "server.pem")); err != nil {
		t.Fatal(err)
	}
	_, err := loadSelfSigned(dir, now, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "tls-self-signed: the server certificate must be made again and its CA key is unreadable: open ") {
		t.Errorf("load without ca.key = %v", err)
	}

	// A CA file that is not a certificate is refused, not replaced.
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = loadSelfSigned(dir, now, nil)
	if err == nil || !strings.Contains(err.Error(), "no PEM certificate") || !strings.Contains(err.Error(), "remove "+dir+" to make a new CA") {
		t.Errorf("load with a garbage CA = %v", err)
	}
}
