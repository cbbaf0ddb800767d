// Package keyfortest starts a real Keyfort server for tests: the same
// wiring as `keyfort serve` (package app) on 127.0.0.1:0 with a temporary
// data directory, and aws-sdk-go-v2 KMS, Secrets Manager and CloudTrail
// clients that talk to it over HTTP (or HTTPS, WithTLS).
//
// Only _test.go files and package keyforttest (the public harness for
// users' tests, built on this one) import this package; the keyfort binary
// never links it (or the AWS SDK). internal/deps_test.go checks both.
package keyfortest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyfort/keyfort/internal/app"
	"github.com/keyfort/keyfort/internal/clock"
	ctsvc "github.com/keyfort/keyfort/internal/cloudtrail"
	"github.com/keyfort/keyfort/internal/config"
	"github.com/keyfort/keyfort/internal/storage/postgres/pgtest"
)

// DefaultRegion is the region of clients made without one.
const DefaultRegion = "us-east-1"

// DefaultAccessKey is the access key of clients made without one; in dev
// auth it maps to account 123456789012.
const DefaultAccessKey = "AKIAKEYFORTTEST00000"

// DefaultSecretKey is the secret access key of the clients that AWSConfig,
// KMS, KMSAs, SecretsManager and SecretsManagerAs make. A credentials file
// (WithCredentials) lists it for the keys those clients should use.
const DefaultSecretKey = "keyfort-test-secret"

// CredentialsFileName is the name of the credentials file WithCredentials
// writes into the data directory.
const CredentialsFileName = "credentials.yaml"

// Server is a running Keyfort server.
type Server struct {
	// URL is the server's base URL, e.g. "http://127.0.0.1:40123", or
	// "https://127.0.0.1:40123" with TLS.
	URL string
	// DataDir is the server's data directory.
	DataDir string
	// App is the running application.
	App *app.App

	o         options
	http      *http.Client
	clientTLS *tls.Config // what the clients use with TLS, else nil
}

type options struct {
	name      string // what failure messages start with (WithName)
	schema    string // PostgreSQL schema of this server (WithStore only)
	dataDir   string
	now       func() time.Time
	store     string
	rootKey   string
	logger    *slog.Logger
	configure func(*config.Config)
	creds     *string // WithCredentials
	tls       bool    // WithTLS
	clientTLS func(*tls.Config)
	events    ctsvc.Finder // WithEventFinder
	xks       []xksProxy   // WithXKSProxy
}

// xksProxy is one WithXKSProxy.
type xksProxy struct {
	host, address string
	caPEM         []byte
}

// Option configures Start.
type Option func(*options)

// WithName makes name the word that the harness's failure and log messages
// start with (by default "keyfortest"): package keyforttest, which starts
// servers through this harness for users' tests, gives its own.
func WithName(name string) Option { return func(o *options) { o.name = name } }

// WithEventFinder makes CloudTrail's LookupEvents read the trail through f
// (app.Options.EventFinder) instead of the app's default.
func WithEventFinder(f ctsvc.Finder) Option { return func(o *options) { o.events = f } }

// WithDataDir uses dir as the data directory instead of t.TempDir().
func WithDataDir(dir string) Option { return func(o *options) { o.dataDir = dir } }

// WithNow sets the server's clock.
func WithNow(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithStore uses a PostgreSQL store (a postgres:// URL) instead of SQLite.
// The server's tables live in a schema of their own, created for it and
// dropped when the test ends, so tests sharing the database do not see each
// other's data; Restart keeps the schema.
func WithStore(dsn string) Option { return func(o *options) { o.store = dsn } }

// WithNodeOf starts another node of other's PostgreSQL store (its schema,
// which other's test drops): two servers, one shared store, each with its
// own data directory.
func WithNodeOf(other *Server) Option {
	return func(o *options) { o.store, o.schema = other.o.store, other.o.schema }
}

// WithRootKey sets the 32-byte root key (by default a key is generated in
// the data directory on first start).
func WithRootKey(key []byte) Option {
	return func(o *options) { o.rootKey = base64.StdEncoding.EncodeToString(key) }
}

// WithLogger sends the server's logs to l (by default they are discarded).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithXKSProxy lets the server reach an external key store proxy a test
// runs: a custom key store whose XksProxyUriEndpoint is https://host is
// reached at address (host:port; AWS's endpoint holds no port), and the
// certificates of caPEM are trusted for the proxy's TLS certificate
// (--xks-proxy-address and --xks-proxy-ca; the file is written into the
// data directory). Give it once per proxy.
func WithXKSProxy(host, address string, caPEM []byte) Option {
	return func(o *options) { o.xks = append(o.xks, xksProxy{host, address, caPEM}) }
}

// WithConfig lets f change the configuration before the server starts.
// Several apply in the order given.
func WithConfig(f func(*config.Config)) Option {
	return func(o *options) {
		prev := o.configure
		o.configure = func(c *config.Config) {
			if prev != nil {
				prev(c)
			}
			f(c)
		}
	}
}

// WithCredentials starts the server in strict auth with a credentials file
// holding yaml (see package credentials), written into the data directory
// as CredentialsFileName when the server starts. Clients must then sign
// with a key the file lists; the default clients use DefaultAccessKey and
// DefaultSecretKey.
func WithCredentials(yaml string) Option { return func(o *options) { o.creds = &yaml } }

// WithTLS serves HTTPS only, as `keyfort serve --tls-self-signed` does: a
// CA and a server certificate for 127.0.0.1 made in <data>/tls on first
// start. URL is then https and the SDK clients (and HTTPClient) trust the
// CA. For --tls-cert/--tls-key, use WithConfig (URL is https then too) and
// WithClientTLS to trust their CA.
func WithTLS() Option { return func(o *options) { o.tls = true } }

// WithClientTLS lets f change the TLS configuration of the clients that
// the server's helpers make (AWSConfig, KMS, SecretsManager, HTTPClient):
// a client certificate for mutual TLS, other root CAs.
func WithClientTLS(f func(*tls.Config)) Option { return func(o *options) { o.clientTLS = f } }

// Start starts a server on 127.0.0.1:0 and registers its Close with
// t.Cleanup. It fails the test if the server cannot start.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := options{name: "keyfortest"}
	for _, opt := range opts {
		opt(&o)
	}
	if o.dataDir == "" {
		o.dataDir = t.TempDir()
	}
	s := &Server{DataDir: o.dataDir, o: o, http: &http.Client{}}
	if o.creds != nil {
		if err := os.WriteFile(s.CredentialsFile(), []byte(*o.creds), 0o600); err != nil {
			t.Fatalf("%s: write credentials: %v", o.name, err)
		}
	}
	if o.store != "" && o.schema == "" {
		s.o.schema = pgtest.Schema(t, o.store, "keyfortest_")
	}
	s.start(t)
	t.Cleanup(s.Close)
	return s
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = s.DataDir
	cfg.Store = s.o.store
	cfg.ShutdownTimeout = 5 * time.Second
	if s.o.creds != nil {
		cfg.Auth = config.AuthStrict
		cfg.Credentials = s.CredentialsFile()
	}
	cfg.TLSSelfSigned = s.o.tls
	if len(s.o.xks) > 0 {
		file := filepath.Join(s.DataDir, "xks-ca.pem")
		var pem []byte
		cfg.XKSProxyAddresses = map[string]string{}
		for _, x := range s.o.xks {
			pem = append(append(pem, x.caPEM...), '\n')
			cfg.XKSProxyAddresses[x.host] = x.address
		}
		if err := os.WriteFile(file, pem, 0o600); err != nil {
			t.Fatalf("%s: WithXKSProxy: %v", s.o.name, err)
		}
		cfg.XKSProxyCA = file
	}
	if s.o.configure != nil {
		s.o.configure(&cfg)
	}
	a, err := app.New(context.Background(), cfg, app.Options{
		Logger:         s.o.logger,
		Now:            s.o.now,
		RootKey:        s.o.rootKey,
		PostgresSchema: s.o.schema,
		EventFinder:    s.o.events,
		LookupEnv:      func(string) (string, bool) { return "", false }, // hermetic
		// Every test through this server fails on an error code its
		// operation's model does not declare (nor the protocol's common
		// ones): AWS never answers one.
		OnUndeclaredError: func(target, code string) {
			t.Errorf("%s: %s answered %s, which its model does not declare", s.o.name, target, code)
		},
	})
	if err != nil {
		t.Fatalf("%s: start: %v", s.o.name, err)
	}
	if err := a.Start(); err != nil {
		a.Close()
		t.Fatalf("%s: start: %v", s.o.name, err)
	}
	s.App = a
	s.URL = a.URL()
	s.setTransport(t, cfg.TLS())
}

// setTransport gives the server's HTTP client a new transport: for HTTPS,
// one that trusts the self-signed CA (and what WithClientTLS adds) and
// speaks HTTP/2.
func (s *Server) setTransport(t testing.TB, useTLS bool) {
	t.Helper()
	tr := &http.Transport{
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	}
	s.clientTLS = nil
	if useTLS {
		c := &tls.Config{MinVersion: tls.VersionTLS12}
		if ca := s.App.TLSCAFile(); ca != "" {
			pem, err := os.ReadFile(ca)
			if err != nil {
				t.Fatalf("%s: read the CA: %v", s.o.name, err)
			}
			c.RootCAs = x509.NewCertPool()
			if !c.RootCAs.AppendCertsFromPEM(pem) {
				t.Fatalf("%s: no certificate in %s", s.o.name, ca)
			}
		}
		if s.o.clientTLS != nil {
			s.o.clientTLS(c)
		}
		s.clientTLS = c
		tr.TLSClientConfig = c.Clone()
		tr.ForceAttemptHTTP2 = true // a custom TLSClientConfig turns HTTP/2 off otherwise
	}
	s.http.Transport = tr
}

// CAFile returns the CA certificate the server's self-signed certificate
// chains to (WithTLS), or "".
func (s *Server) CAFile() string { return s.App.TLSCAFile() }

// ClientTLSConfig returns a copy of the TLS configuration the server's
// clients use (trusting the CA of WithTLS, changed by WithClientTLS), or
// nil without TLS. Tests change it to make other clients.
func (s *Server) ClientTLSConfig() *tls.Config {
	if s.clientTLS == nil {
		return nil
	}
	return s.clientTLS.Clone()
}

// HTTPClient returns the HTTP client the SDK clients of AWSConfig use, for
// raw requests to URL.
func (s *Server) HTTPClient() *http.Client { return s.http }

// CredentialsFile returns the path of the credentials file that
// WithCredentials writes (tests may rewrite it and call App.Reload).
func (s *Server) CredentialsFile() string { return filepath.Join(s.DataDir, CredentialsFileName) }

// DBPath returns the path of the embedded database file.
func (s *Server) DBPath() string { return filepath.Join(s.DataDir, "keyfort.db") }

// Restart closes the server and starts it again on the same data directory,
// store and root key (on a new port; URL changes, and clients made before
// must be made again).
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	// Idle connections first: the server waits up to a second for an idle
	// HTTP/2 connection to go after telling it to (GOAWAY).
	s.http.CloseIdleConnections()
	if err := s.App.Close(); err != nil {
		t.Fatalf("%s: restart: close: %v", s.o.name, err)
	}
	s.start(t)
}

// Close shuts the server down. It is registered with t.Cleanup by Start and
// safe to call more than once.
func (s *Server) Close() {
	s.http.CloseIdleConnections() // first, as in Restart
	if s.App != nil {
		_ = s.App.Close()
	}
}

// AWSConfig returns an SDK configuration for the server with static
// credentials (accessKey, DefaultSecretKey), the region, retries disabled
// and nothing read from the environment or ~/.aws.
func (s *Server) AWSConfig(accessKey, region string) aws.Config {
	return s.AWSConfigFor(accessKey, DefaultSecretKey, "", region)
}

// AWSConfigFor is AWSConfig with the given secret access key and session
// token ("" for none), for servers in strict auth.
func (s *Server) AWSConfigFor(accessKey, secretKey, sessionToken, region string) aws.Config {
	return aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, sessionToken),
		BaseEndpoint: aws.String(s.URL),
		HTTPClient:   s.http,
		Retryer:      func() aws.Retryer { return ClosedConnRetryer() },
	}
}

// KMS returns a KMS client for region (default us-east-1) as the default
// access key (account 123456789012).
func (s *Server) KMS(region ...string) *kms.Client {
	return s.KMSAs(DefaultAccessKey, pick(region))
}

// KMSAs returns a KMS client acting as accessKey in region. In dev auth a
// 12-digit access key is that account.
func (s *Server) KMSAs(accessKey, region string) *kms.Client {
	return kms.NewFromConfig(s.AWSConfig(accessKey, region))
}

// SecretsManager returns a Secrets Manager client for region (default
// us-east-1) as the default access key.
func (s *Server) SecretsManager(region ...string) *secretsmanager.Client {
	return s.SecretsManagerAs(DefaultAccessKey, pick(region))
}

// SecretsManagerAs returns a Secrets Manager client acting as accessKey in
// region.
func (s *Server) SecretsManagerAs(accessKey, region string) *secretsmanager.Client {
	return secretsmanager.NewFromConfig(s.AWSConfig(accessKey, region))
}

// CloudTrail returns a CloudTrail client for region (default us-east-1) as
// the default access key.
func (s *Server) CloudTrail(region ...string) *cloudtrail.Client {
	return s.CloudTrailAs(DefaultAccessKey, pick(region))
}

// CloudTrailAs returns a CloudTrail client acting as accessKey in region.
func (s *Server) CloudTrailAs(accessKey, region string) *cloudtrail.Client {
	return cloudtrail.NewFromConfig(s.AWSConfig(accessKey, region))
}

func pick(region []string) string {
	if len(region) > 0 && region[0] != "" {
		return region[0]
	}
	return DefaultRegion
}

// Clock is a settable clock for tests: the server reads it through
// WithClock, the test moves it with Advance. Safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock set to t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// WithClock sets the server's clock to c.
func WithClock(c *Clock) Option { return WithNow(c.Now) }

// RunJobs runs the server's due background work now (deletions whose window
// has passed, automatic rotations), as the ticker would, and fails the test
// on error. Tests call it after moving the clock.
func (s *Server) RunJobs(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.App.RunJobs(ctx); err != nil {
		t.Fatalf("%s: RunJobs: %v", s.o.name, err)
	}
}

// AdvanceClock moves the server's clock forward by duration ("8d", "36h",
// "1d12h") through its admin endpoint, POST /keyfort/clock/advance, as
// `keyfort clock advance` does: the background work due in the span runs,
// in order, before it returns. It fails the test unless the server answers
// 200, and returns the answer.
func (s *Server) AdvanceClock(t testing.TB, duration string) clock.State {
	t.Helper()
	status, body, err := s.PostClock(`{"duration":` + strconv.Quote(duration) + `}`)
	if err != nil || status != http.StatusOK {
		t.Fatalf("keyfortest: advance the clock by %s: %d %s %v", duration, status, body, err)
	}
	var st clock.State
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("keyfortest: advance the clock: answer %s: %v", body, err)
	}
	return st
}

// PostClock posts body (JSON) to the server's POST /keyfort/clock/advance
// and returns the status and body of the answer, for tests of refusals.
func (s *Server) PostClock(body string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+clock.PathAdvance, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, b, fmt.Errorf("read the answer: %w", err)
	}
	return resp.StatusCode, b, nil
}

// ClosedConnRetryer returns an SDK retryer that retries only a request whose
// connection the client itself closed under it (net.ErrClosed: a known race
// in the SDK's HTTP client, aws/aws-sdk-go-v2#2737, which its default
// retryer also retries). Every answer of the server, including throttling
// and 5xx, reaches the test unretried.
func ClosedConnRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 3
		o.Retryables = []retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
			if errors.Is(err, net.ErrClosed) {
				return aws.TrueTernary
			}
			return aws.FalseTernary
		})}
		o.RateLimiter = ratelimit.None
	})
}
