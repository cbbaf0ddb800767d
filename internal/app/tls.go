package app

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyfort/keyfort/internal/config"
)

// liveTLS is the TLS configuration in force when the server serves HTTPS.
// The listener's tls.Config hands every handshake the *tls.Config that
// current holds (GetConfigForClient), so Reload replaces the certificate,
// its key and the client CAs atomically: a connection already made keeps
// what it was made with, every later handshake sees the new files.
type liveTLS struct {
	cfg  config.Config
	log  *slog.Logger
	rand io.Reader
	now  func() time.Time // wall clock: certificates are judged by clients on theirs

	current atomic.Pointer[tls.Config]

	mu        sync.Mutex
	pending   *selfSigned // --tls-self-signed: files made in memory that persist writes
	persisted bool        // persist ran: Reload writes what it makes at once
	caFile    string      // --tls-self-signed: the CA clients should trust
}

// newLiveTLS reads the TLS files of cfg (or, with --tls-self-signed, reads
// or makes in memory the CA and server certificate of <data>/tls; persist
// writes the new ones once the server listens, so that a start that fails
// leaves nothing behind). It returns nil when cfg does not ask for TLS.
func newLiveTLS(cfg config.Config, log *slog.Logger, rand io.Reader) (*liveTLS, error) {
	if !cfg.TLS() {
		return nil, nil
	}
	l := &liveTLS{cfg: cfg, log: log, rand: rand, now: time.Now}
	c, ss, err := l.load()
	if err != nil {
		return nil, err
	}
	l.current.Store(c)
	if ss != nil {
		l.pending = ss
		l.caFile = ss.caFile()
	}
	return l, nil
}

// listenerConfig returns the tls.Config to wrap the listener with: TLS 1.2
// or later, HTTP/2 and HTTP/1.1 by ALPN, and for each handshake the
// configuration in force.
func (l *liveTLS) listenerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return l.current.Load(), nil
		},
	}
}

// persist writes the self-signed files that newLiveTLS made (nothing for
// --tls-cert) and logs how to trust the CA.
func (l *liveTLS) persist() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.persisted = true
	if l.pending != nil {
		if err := l.pending.write(); err != nil {
			return err
		}
		l.logSelfSigned(l.pending)
		l.pending = nil
	}
	if l.caFile != "" {
		l.log.Info("TLS with a self-signed certificate for localhost, 127.0.0.1 and ::1; "+
			"to connect, trust its CA: aws --ca-bundle "+l.caFile+", AWS_CA_BUNDLE="+l.caFile+
			", boto3 verify=\""+l.caFile+"\", or add it to the system's trust store", "ca", l.caFile)
	}
	return nil
}

func (l *liveTLS) logSelfSigned(ss *selfSigned) {
	if ss.newCA {
		l.log.Info("created a TLS CA for --tls-self-signed", "ca", ss.caFile(), "not_after", ss.caNotAfter.Format(time.RFC3339))
	}
	if ss.newCert {
		l.log.Info("created a TLS server certificate for --tls-self-signed", "cert", ss.certFile(),
			"not_after", ss.certNotAfter.Format(time.RFC3339), "reason", ss.reason)
	}
}

// reload reads the TLS files again (as SIGHUP asks). Good files replace the
// configuration in force; with a bad one the error is logged in one line
// and returned, and the configuration in force stays.
func (l *liveTLS) reload() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ss, err := l.load()
	if err == nil && ss != nil {
		if l.persisted {
			err = ss.write()
			if err == nil {
				l.logSelfSigned(ss)
			}
		} else {
			l.pending = ss
		}
	}
	if err != nil {
		l.log.Error("TLS certificate not reloaded; the previous one stays in force", "error", err.Error())
		return err
	}
	l.current.Store(c)
	attrs := []any{"client_ca", l.cfg.TLSClientCA}
	if leaf := c.Certificates[0].Leaf; leaf != nil {
		attrs = append(attrs, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter.Format(time.RFC3339))
	}
	l.log.Info("TLS certificate reloaded", attrs...)
	return nil
}

// load reads the certificate, its key and the client CAs and builds the
// configuration handshakes use. With --tls-self-signed it also returns the
// self-signed files (some possibly made now and not yet written).
func (l *liveTLS) load() (*tls.Config, *selfSigned, error) {
	var (
		pair tls.Certificate
		ss   *selfSigned
		err  error
	)
	if l.cfg.TLSSelfSigned {
		if ss, err = loadSelfSigned(l.cfg.TLSDirectory(), l.now(), l.rand); err != nil {
			return nil, nil, err
		}
		if pair, err = tls.X509KeyPair(ss.certPEM, ss.keyPEM); err != nil {
			return nil, nil, fmt.Errorf("tls-self-signed: %v", err)
		}
	} else if pair, err = loadKeyPair(l.cfg.TLSCert, l.cfg.TLSKey); err != nil {
		return nil, nil, err
	}
	if leaf := pair.Leaf; leaf != nil && l.now().After(leaf.NotAfter) {
		l.log.Warn("the TLS certificate has expired: clients will refuse it", "subject", leaf.Subject.String(),
			"not_after", leaf.NotAfter.Format(time.RFC3339))
	}
	c := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
		Certificates: []tls.Certificate{pair},
	}
	if l.cfg.TLSClientCA != "" {
		pool, err := loadCertPool(l.cfg.TLSClientCA)
		if err != nil {
			return nil, nil, err
		}
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = pool
	}
	return c, ss, nil
}

// loadKeyPair reads --tls-cert and --tls-key; errors name the setting at
// fault in one line.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls-cert: %w", err)
	}
	if _, err := parseCertificates(certPEM); err != nil {
		return tls.Certificate{}, fmt.Errorf("tls-cert: %s: %v", certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls-key: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	clear(keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls-key: %s: %v", keyFile, err)
	}
	return pair, nil
}

// loadCertPool reads --tls-client-ca: one or more PEM certificates.
func loadCertPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tls-client-ca: %w", err)
	}
	certs, err := parseCertificates(b)
	if err != nil {
		return nil, fmt.Errorf("tls-client-ca: %s: %v", file, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// parseCertificates parses every CERTIFICATE block of PEM text; it is an
// error if there is none or one does not parse.
func parseCertificates(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %v", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate (-----BEGIN CERTIFICATE-----) found")
	}
	return certs, nil
}
