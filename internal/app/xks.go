package app

import (
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/keyfort/keyfort/internal/config"
	"github.com/keyfort/keyfort/internal/xks/xksclient"
)

// newXKSClient is the client of external key store proxies: the system's
// certificate authorities and those of --xks-proxy-ca, --xks-proxy-address
// and --xks-proxy-timeout. Requests are signed with the wall clock, not
// the server's (a dev clock moves; the proxy checks dates against its
// own).
func newXKSClient(cfg config.Config) (*xksclient.Client, error) {
	var roots *x509.CertPool // nil: the system's, read at the first handshake
	if cfg.XKSProxyCA != "" {
		var err error
		if roots, err = x509.SystemCertPool(); err != nil || roots == nil {
			roots = x509.NewCertPool()
		}
		b, err := os.ReadFile(cfg.XKSProxyCA)
		if err != nil {
			return nil, fmt.Errorf("app: xks-proxy-ca: %w", err)
		}
		certs, err := parseCertificates(b)
		if err != nil {
			return nil, fmt.Errorf("app: xks-proxy-ca: %s: %v", cfg.XKSProxyCA, err)
		}
		for _, c := range certs {
			roots.AddCert(c)
		}
	}
	c := xksclient.New(roots, cfg.XKSProxyTimeout, time.Now)
	c.SetAddresses(cfg.XKSProxyAddresses)
	return c, nil
}
