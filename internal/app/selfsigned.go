package app

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/keyfort/keyfort/internal/durable"
)

// The files of --tls-self-signed, in <data>/tls.
const (
	SelfSignedCAFile   = "ca.pem"     // the CA certificate clients trust (mode 0644)
	selfSignedCAKey    = "ca.key"     // its private key (mode 0600)
	selfSignedCertFile = "server.pem" // the server certificate (mode 0644)
	selfSignedKeyFile  = "server.key" // its private key (mode 0600)
)

// Validity of the self-signed certificates. The server certificate lives
// 825 days, the longest that Apple's platforms accept for a server
// certificate under a CA a user added (most other clients accept more), and
// is made again at start or on SIGHUP once fewer than 30 days remain.
const (
	selfSignedCAYears      = 10
	selfSignedCertValidity = 825 * 24 * time.Hour
	selfSignedRenewBefore  = 30 * 24 * time.Hour
)

// The names the self-signed server certificate is for. The CA is
// name-constrained to them, so trusting it cannot let its key (which sits
// beside the data) vouch for any other site.
var (
	selfSignedDNSNames = []string{"localhost"}
	selfSignedIPs      = []net.IP{net.IPv4(127, 0, 0, 1).To4(), net.IPv6loopback}
)

// selfSigned is the CA and server certificate of --tls-self-signed: read
// from <data>/tls, or made in memory (newCA, newCert) until write puts them
// there.
type selfSigned struct {
	dir             string
	caPEM, caKeyPEM []byte // caKeyPEM only when newCA
	certPEM, keyPEM []byte
	newCA, newCert  bool
	caNotAfter      time.Time
	certNotAfter    time.Time
	reason          string // why the server certificate was made
}

func (s *selfSigned) caFile() string   { return filepath.Join(s.dir, SelfSignedCAFile) }
func (s *selfSigned) certFile() string { return filepath.Join(s.dir, selfSignedCertFile) }

// loadSelfSigned reads the CA and server certificate in dir. A missing CA
// is made (with a new server certificate); a server certificate that is
// missing, unreadable, not signed by the CA, not for localhost, 127.0.0.1
// and ::1, or within selfSignedRenewBefore of expiring at now is made again
// with the CA's key. Nothing is written; see write.
func loadSelfSigned(dir string, now time.Time, rand io.Reader) (*selfSigned, error) {
	if rand == nil {
		rand = crand.Reader
	}
	s := &selfSigned{dir: dir}
	var (
		ca    *x509.Certificate
		caKey crypto.Signer
	)
	caPEM, err := os.ReadFile(s.caFile())
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if ca, caKey, err = s.makeCA(now, rand); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("tls-self-signed: %w", err)
	default:
		certs, err := parseCertificates(caPEM)
		if err != nil {
			return nil, fmt.Errorf("tls-self-signed: %s: %v; remove %s to make a new CA", s.caFile(), err, dir)
		}
		ca = certs[0]
		if !ca.IsCA {
			return nil, fmt.Errorf("tls-self-signed: %s is not a CA certificate; remove %s to make a new CA", s.caFile(), dir)
		}
		if now.After(ca.NotAfter) {
			return nil, fmt.Errorf("tls-self-signed: the CA %s expired on %s; remove %s to make a new one (and trust that one instead)",
				s.caFile(), ca.NotAfter.Format(time.DateOnly), dir)
		}
		s.caPEM = caPEM
	}
	s.caNotAfter = ca.NotAfter

	s.reason = s.readServer(ca, now)
	if s.reason == "" {
		return s, nil
	}
	if caKey == nil {
		if caKey, err = s.readCAKey(ca); err != nil {
			return nil, err
		}
	}
	if err := s.makeServer(ca, caKey, now, rand); err != nil {
		return nil, err
	}
	return s, nil
}

// readServer reads the server certificate and key into s and returns why
// they cannot be used, or "" when they can.
func (s *selfSigned) readServer(ca *x509.Certificate, now time.Time) string {
	certPEM, err := os.ReadFile(s.certFile())
	if errors.Is(err, fs.ErrNotExist) {
		return "new"
	}
	if err != nil {
		return err.Error()
	}
	keyPEM, err := os.ReadFile(filepath.Join(s.dir, selfSignedKeyFile))
	if err != nil {
		return err.Error()
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return selfSignedCertFile + ": " + err.Error()
	}
	leaf := pair.Leaf
	if now.Add(selfSignedRenewBefore).After(leaf.NotAfter) {
		return "the previous one expires on " + leaf.NotAfter.Format(time.RFC3339)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, name := range selfSignedDNSNames {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			return "the previous one does not verify: " + err.Error()
		}
	}
	for _, ip := range selfSignedIPs {
		if leaf.VerifyHostname(ip.String()) != nil {
			return "the previous one is not for " + ip.String()
		}
	}
	s.certPEM, s.keyPEM, s.certNotAfter = certPEM, keyPEM, leaf.NotAfter
	return ""
}

// readCAKey reads the CA's private key, which signs a new server
// certificate.
func (s *selfSigned) readCAKey(ca *x509.Certificate) (crypto.Signer, error) {
	path := filepath.Join(s.dir, selfSignedCAKey)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tls-self-signed: the server certificate must be made again and its CA key is unreadable: %w", err)
	}
	defer clear(b)
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("tls-self-signed: %s: no PEM private key found", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	clear(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("tls-self-signed: %s: %v", path, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("tls-self-signed: %s: not a signing key", path)
	}
	pub, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil || !bytes.Equal(pub, ca.RawSubjectPublicKeyInfo) {
		return nil, fmt.Errorf("tls-self-signed: %s is not the key of %s; remove %s to make a new CA", path, s.caFile(), s.dir)
	}
	return signer, nil
}

// makeCA makes a CA (ECDSA P-256, selfSignedCAYears) into s.
func (s *selfSigned) makeCA(now time.Time, rand io.Reader) (*x509.Certificate, crypto.Signer, error) {
	key, keyPEM, err := newKey(rand)
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial(rand)
	if err != nil {
		return nil, nil, err
	}
	ski := subjectKeyID(&key.PublicKey)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"Keyfort"},
			// Unique per data directory, so that two such CAs in one trust
			// store are told apart.
			CommonName: "Keyfort local CA " + hex.EncodeToString(ski[:4]),
		},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(selfSignedCAYears, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          ski,

		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         selfSignedDNSNames,
		PermittedIPRanges:           []*net.IPNet{{IP: selfSignedIPs[0], Mask: net.CIDRMask(32, 32)}, {IP: selfSignedIPs[1], Mask: net.CIDRMask(128, 128)}},
	}
	der, err := x509.CreateCertificate(rand, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("tls-self-signed: make the CA: %v", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("tls-self-signed: make the CA: %v", err)
	}
	s.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	s.caKeyPEM = keyPEM
	s.newCA = true
	return ca, key, nil
}

// makeServer makes the server certificate (ECDSA P-256, for localhost,
// 127.0.0.1 and ::1, selfSignedCertValidity but not past the CA) into s.
func (s *selfSigned) makeServer(ca *x509.Certificate, caKey crypto.Signer, now time.Time, rand io.Reader) error {
	key, keyPEM, err := newKey(rand)
	if err != nil {
		return err
	}
	serial, err := newSerial(rand)
	if err != nil {
		return err
	}
	notAfter := now.Add(selfSignedCertValidity)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Keyfort"}, CommonName: "localhost"},
		DNSNames:              selfSignedDNSNames,
		IPAddresses:           selfSignedIPs,
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		SubjectKeyId:          subjectKeyID(&key.PublicKey),
	}
	der, err := x509.CreateCertificate(rand, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("tls-self-signed: make the server certificate: %v", err)
	}
	s.certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	s.keyPEM = keyPEM
	s.certNotAfter = notAfter
	s.newCert = true
	return nil
}

func newKey(rand io.Reader) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand)
	if err != nil {
		return nil, nil, fmt.Errorf("tls-self-signed: generate a key: %v", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("tls-self-signed: encode a key: %v", err)
	}
	defer clear(der)
	return key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func newSerial(rand io.Reader) (*big.Int, error) {
	n, err := crand.Int(rand, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("tls-self-signed: serial number: %v", err)
	}
	return n.Add(n, big.NewInt(1)), nil // positive, at most 16 bytes
}

// subjectKeyID is the SHA-256 of the encoded public key, truncated to 20
// bytes (as RFC 7093 allows). Clients that verify strictly (Python 3.13's
// default) want the subject and authority key identifiers.
func subjectKeyID(pub *ecdsa.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub) // cannot fail for a P-256 key
	sum := sha256.Sum256(der)
	return sum[:20]
}

// write puts what loadSelfSigned made into dir (mode 0700): keys mode 0600,
// certificates 0644, each through a temporary file renamed into place, key
// before certificate, then the directory is fsynced. A crash leaves either
// the old file or the new one, and the next start makes again what does not
// fit together.
func (s *selfSigned) write() error {
	if !s.newCA && !s.newCert {
		return nil
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("tls-self-signed: %w", err)
	}
	type file struct {
		name string
		data []byte
		mode os.FileMode
	}
	var files []file
	if s.newCA {
		files = append(files, file{selfSignedCAKey, s.caKeyPEM, 0o600}, file{SelfSignedCAFile, s.caPEM, 0o644})
	}
	if s.newCert {
		files = append(files, file{selfSignedKeyFile, s.keyPEM, 0o600}, file{selfSignedCertFile, s.certPEM, 0o644})
	}
	for _, f := range files {
		if err := writeFileAtomic(filepath.Join(s.dir, f.name), f.data, f.mode); err != nil {
			return fmt.Errorf("tls-self-signed: %w", err)
		}
	}
	if err := durable.SyncDir(s.dir); err != nil {
		return fmt.Errorf("tls-self-signed: sync %s: %w", s.dir, err)
	}
	if err := durable.SyncDir(filepath.Dir(s.dir)); err != nil {
		return fmt.Errorf("tls-self-signed: sync %s: %w", filepath.Dir(s.dir), err)
	}
	clear(s.caKeyPEM)
	s.caKeyPEM = nil
	return nil
}

// writeFileAtomic writes data to a temporary file beside path with mode,
// fsyncs it and renames it onto path.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name) // fails harmlessly once renamed
	if err := tmp.Chmod(mode); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(name, path)
}
