// Package keyforttest starts a Keyfort server inside a Go test, so that code
// which calls AWS KMS or AWS Secrets Manager through aws-sdk-go-v2 can be
// tested against real cryptography and AWS's own error codes, without AWS
// and without a server to install.
//
// One call starts the server on 127.0.0.1 (a free port) with a temporary
// embedded store; the test's Cleanup stops it and removes the store:
//
//	func TestMyCode(t *testing.T) {
//		srv := keyforttest.Start(t)
//		kmsClient := srv.KMS()           // *kms.Client, ready to use
//		smClient := srv.SecretsManager() // *secretsmanager.Client
//		cfg := srv.AWSConfig()           // aws.Config, for any other SDK v2 client
//		url := srv.Endpoint()            // "http://127.0.0.1:PORT", for code that takes a URL
//		...
//	}
//
// The server is the one `keyfort serve` runs, in development auth: every
// request must be SigV4-signed, any credentials are accepted, and the caller
// is the root of the account its access key names (see [WithAccount]).
// Resources belong to one account and one region, as on AWS.
//
// Deletion windows and rotation periods are days long. A test moves time
// instead of waiting: start the server [WithClock], [Clock.Advance] it and
// call [Server.RunJobs] to run the work that is due (deleting keys and
// secrets whose window has passed, rotating keys and secrets). The example
// test in this package's example_test.go shows a whole test.
//
// The package's API uses only its own types, the standard library's and
// aws-sdk-go-v2's. Only tests should import it: it imports package testing
// and the AWS SDK, which the keyfort binary never links.
package keyforttest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyfort/keyfort/internal/config"
	"github.com/keyfort/keyfort/internal/keyfortest"
	"github.com/keyfort/keyfort/internal/sigv4"
)

// DefaultRegion is the region of a server started without [WithRegion].
const DefaultRegion = "us-east-1"

// DefaultAccount is the account of a server started without [WithAccount].
const DefaultAccount = "123456789012"

// Server is a Keyfort server started by [Start]. Its methods are safe for
// concurrent use.
type Server struct {
	h       *keyfortest.Server
	region  string
	account string
}

// options are what the Options given to Start set.
type options struct {
	region  string
	account string
	clock   *Clock
	dsn     *string
	logger  *slog.Logger
	seed    *string
	setup   []func(context.Context, *Server) error
	// xks are the external key store proxies of WithXKSProxy.
	xks []xksProxy
}

// xksProxy is one WithXKSProxy.
type xksProxy struct {
	host, address string
	caPEM         []byte
}

// Option changes how [Start] starts the server.
type Option struct {
	apply func(*options)
}

// WithRegion makes region (such as "eu-west-1" or "cn-north-1") the region
// of the clients and configuration the server gives: [Server.KMS],
// [Server.SecretsManager] and [Server.AWSConfig]. The default is
// [DefaultRegion]. Start fails the test if region is not a region name.
func WithRegion(region string) Option {
	return Option{func(o *options) { o.region = region }}
}

// WithAccount makes account, a 12-digit AWS account id, the account of the
// clients and configuration the server gives; ARNs then name it. The default
// is [DefaultAccount]. The clients' access key id is the account id: in
// Keyfort's development auth an access key id of exactly 12 digits is the
// root of that account. Start fails the test if account is not 12 digits.
func WithAccount(account string) Option {
	return Option{func(o *options) { o.account = account }}
}

// WithClock makes c the server's clock: every date it records and every
// deadline it checks (deletion windows, rotation schedules) is read from c,
// which stands still until the test moves it with [Clock.Advance]. Without
// it the server uses the time of day.
func WithClock(c *Clock) Option {
	return Option{func(o *options) { o.clock = c }}
}

// WithPostgres stores the server's data in the PostgreSQL database at dsn
// (a postgres:// URL) instead of a temporary embedded store. The server's
// tables live in a schema of their own, created for it and dropped when the
// test ends, so tests may share the database. Start fails the test if dsn
// is empty or the database cannot be reached.
func WithPostgres(dsn string) Option {
	return Option{func(o *options) { o.dsn = &dsn }}
}

// WithLogger sends the server's logs to l; by default they are discarded.
// The log names the cause of every internal error a client receives.
func WithLogger(l *slog.Logger) Option {
	return Option{func(o *options) { o.logger = l }}
}

// WithSeed starts the server with a seed file whose content is seedYAML
// (the README's "Fixtures (--seed)" gives its form): KMS keys with fixed key
// ids and, optionally, fixed key material, their aliases, tags, policies and
// rotation, and secrets with fixed names, ARNs and versions, made before the
// server answers. The file's account and region default to [DefaultAccount]
// and [DefaultRegion], whatever [WithAccount] and [WithRegion] say: write
// account: and region: in it for others. Start fails the test with the
// file's error, one line naming the entry.
func WithSeed(seedYAML string) Option {
	return Option{func(o *options) { o.seed = &seedYAML }}
}

// WithXKSProxy lets the server reach an external key store proxy (the XKS
// Proxy API) that a test runs: a custom key store whose
// XksProxyUriEndpoint is https://host is reached at address (host:port,
// typically 127.0.0.1 and the proxy's port, since AWS's endpoint holds no
// port), and the certificates of caPEM (PEM) are trusted for the proxy's
// TLS certificate, which must be for host. Give it once per proxy. The
// server gives each proxy call 250 ms, as AWS KMS does.
func WithXKSProxy(host, address string, caPEM []byte) Option {
	return Option{func(o *options) { o.xks = append(o.xks, xksProxy{host, address, caPEM}) }}
}

// WithSetup runs f once the server is up, before Start returns, with a
// context that ends with the test. f makes what the test needs through the
// server's clients (keys, aliases, secrets); Start fails the test with f's
// error. Setups run in the order given.
func WithSetup(f func(ctx context.Context, s *Server) error) Option {
	return Option{func(o *options) { o.setup = append(o.setup, f) }}
}

// Start starts a Keyfort server on 127.0.0.1 with a free port and a store
// of its own, runs the setups of [WithSetup], and registers with t.Cleanup
// the server's shutdown and the removal of its store. It fails the test if
// an option is invalid or the server cannot start, and later if the server
// answers an error code that the operation's AWS model does not declare (a
// Keyfort bug, since AWS never answers one; please report it).
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := options{region: DefaultRegion, account: DefaultAccount}
	for _, opt := range opts {
		if opt.apply != nil {
			opt.apply(&o)
		}
	}
	if !sigv4.ValidRegion(o.region) {
		t.Fatalf("keyforttest: WithRegion(%q): not a region name such as us-east-1", o.region)
	}
	if !sigv4.IsAccountID(o.account) {
		t.Fatalf("keyforttest: WithAccount(%q): an account id is 12 digits", o.account)
	}
	hopts := []keyfortest.Option{keyfortest.WithName("keyforttest")}
	if o.clock != nil {
		hopts = append(hopts, keyfortest.WithNow(o.clock.Now))
	}
	if o.dsn != nil {
		if *o.dsn == "" {
			t.Fatalf("keyforttest: WithPostgres: the DSN is empty")
		}
		hopts = append(hopts, keyfortest.WithStore(*o.dsn))
	}
	if o.logger != nil {
		hopts = append(hopts, keyfortest.WithLogger(o.logger))
	}
	if o.seed != nil {
		file := filepath.Join(t.TempDir(), "seed.yaml")
		if err := os.WriteFile(file, []byte(*o.seed), 0o600); err != nil {
			t.Fatalf("keyforttest: WithSeed: %v", err)
		}
		hopts = append(hopts, keyfortest.WithConfig(func(c *config.Config) { c.Seed = file }))
	}
	for _, x := range o.xks {
		hopts = append(hopts, keyfortest.WithXKSProxy(x.host, x.address, x.caPEM))
	}
	s := &Server{h: keyfortest.Start(t, hopts...), region: o.region, account: o.account}
	for i, f := range o.setup {
		if err := f(t.Context(), s); err != nil {
			t.Fatalf("keyforttest: setup %d of %d: %v", i+1, len(o.setup), err)
		}
	}
	return s
}

// Endpoint returns the server's URL, such as "http://127.0.0.1:40123": the
// endpoint URL for AWS clients (BaseEndpoint in aws-sdk-go-v2,
// --endpoint-url for the AWS CLI, endpoint_url in boto3).
func (s *Server) Endpoint() string { return s.h.URL }

// Region returns the region of the server's clients and configuration.
func (s *Server) Region() string { return s.region }

// Account returns the account of the server's clients and configuration.
func (s *Server) Account() string { return s.account }

// AWSConfig returns an aws-sdk-go-v2 configuration for the server: its
// endpoint, the region, static credentials of the account, and nothing read
// from the environment or ~/.aws. Pass it to any service's NewFromConfig.
// Its retryer retries nothing the server answers (throttling and 5xx errors
// reach the caller at once); it retries only a request whose connection the
// SDK's HTTP client closed under it. Each call returns a new value, which
// the caller may change: another Region is that region, and static
// credentials whose access key id is another 12-digit account id act as
// that account's root.
func (s *Server) AWSConfig() aws.Config {
	return s.h.AWSConfig(s.account, s.region)
}

// KMS returns a KMS client for the server, made from [Server.AWSConfig].
func (s *Server) KMS() *kms.Client {
	return kms.NewFromConfig(s.AWSConfig())
}

// SecretsManager returns a Secrets Manager client for the server, made from
// [Server.AWSConfig].
func (s *Server) SecretsManager() *secretsmanager.Client {
	return secretsmanager.NewFromConfig(s.AWSConfig())
}

// RunJobs runs the server's background work that is due now, as its timer
// would: it deletes the keys and secrets whose waiting period has passed
// and runs the key and secret rotations that are due. It returns when the
// work is done, and fails the test on an error. Tests call it after
// [Clock.Advance].
func (s *Server) RunJobs(t testing.TB) {
	t.Helper()
	s.h.RunJobs(t)
}

// Close stops the server at once; later requests fail to connect. Start
// registers Close with t.Cleanup, so a test calls it only to see what its
// code does when the server is gone. It is safe to call more than once.
func (s *Server) Close() { s.h.Close() }

// Clock is a clock that stands still until the test moves it: pass it to
// [WithClock] and call [Clock.Advance]. It is safe for concurrent use.
type Clock struct{ c *keyfortest.Clock }

// NewClock returns a clock that reads start until it is advanced.
func NewClock(start time.Time) *Clock { return &Clock{c: keyfortest.NewClock(start)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return c.c.Now() }

// Advance moves the clock forward by d. The server does the work that
// became due at the next [Server.RunJobs] (or when its timer next fires, in
// at most ten seconds). Advance panics if d is negative: a clock that goes
// back would let the server see deadlines pass twice.
func (c *Clock) Advance(d time.Duration) {
	if d < 0 {
		panic("keyforttest: Clock.Advance(" + d.String() + "): the duration is negative")
	}
	c.c.Advance(d)
}
