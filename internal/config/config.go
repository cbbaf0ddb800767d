// Package config holds Keyfort's server configuration: the typed [Config],
// its defaults, the YAML file format (with ${VAR} expansion) and the
// precedence of flags over environment variables over the file over
// defaults.
//
// Configuration is read once at start-up by cmd/keyfort (or by tests
// through the app package) and passed down as values; nothing here is a
// global.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/keyfort/keyfort/internal/webhook"
)

// Auth modes.
const (
	AuthDev    = "dev"
	AuthStrict = "strict"
)

// Log formats.
const (
	LogFormatAuto = "auto"
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// Defaults.
const (
	DefaultListen          = "127.0.0.1:4599"
	DefaultDataDir         = "./keyfort-data"
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultMemoryLimit is the Go runtime's default soft memory limit
	// for the server (see Config.MemoryLimit).
	DefaultMemoryLimit = 40 << 20
	// DefaultMaxConnections, DefaultReadHeaderTimeout and
	// DefaultIdleTimeout are the connection settings' defaults (the same
	// as the server package's).
	DefaultMaxConnections    = 4096
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
)

// Config is the server configuration.
type Config struct {
	// Listen is the host:port to listen on (port 0 picks a free port).
	Listen string
	// DataDir holds the embedded database, the generated root key and the
	// audit trail.
	DataDir string
	// Store is empty for the embedded SQLite store at <DataDir>/keyfort.db,
	// or a postgres:// or postgresql:// URL.
	Store string
	// StoreReadThrough keeps no caches on a PostgreSQL store: every request
	// reads it, and the nodes need no LISTEN/NOTIFY (for a pooler in
	// transaction mode, which does not deliver notifications).
	StoreReadThrough bool
	// Auth is the authentication mode: "dev" (any well-formed SigV4
	// header; the access key picks the account) or "strict" (signatures
	// verified against Credentials).
	Auth string
	// Credentials is the credentials file of strict auth: the principals,
	// their access keys, tags and policies (see package credentials).
	// Required with strict auth, refused with dev auth.
	Credentials string
	// InsecureDevAuth allows dev auth on a non-loopback address.
	InsecureDevAuth bool
	// Seed is the seed file (package seed): keys and secrets with fixed
	// ids and material, made at start when missing. Empty: none.
	Seed string
	// RootKeyFile is the file holding the root key. Empty means
	// KEYFORT_ROOT_KEY, else <DataDir>/root.key (generated on first start).
	RootKeyFile string
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// LogFormat is auto (text on a terminal, JSON otherwise), text or json.
	LogFormat string
	// AuditDir is the directory of the audit trail. Empty means
	// <DataDir>/audit; see [Config.AuditDirectory].
	AuditDir string
	// ShutdownTimeout bounds the wait for in-flight requests on shutdown.
	ShutdownTimeout time.Duration
	// MemoryLimit is the Go runtime's soft memory limit in bytes
	// (runtime/debug.SetMemoryLimit): the garbage collector works harder as
	// the heap nears it, which keeps the process small; it is not a hard
	// cap (above it the collector uses at most about half the CPU). 0 leaves
	// the runtime's default (GOMEMLIMIT, or none). Raise it for large data
	// sets. Written as bytes or with a unit: 40MiB, 1GiB, 512MB.
	MemoryLimit int64
	// RotationWebhooks maps rotation Lambda function ARNs to the http(s)
	// webhook URLs that run their rotation steps (Keyfort cannot run Lambda
	// functions; see package webhook). Secrets Manager's RotateSecret
	// answers AccessDeniedException for a function not listed here. Set
	// only in the config file, as a mapping:
	//
	//	rotation_webhooks:
	//	  arn:aws:lambda:us-east-1:123456789012:function:rotate-db: https://rotator.internal/rotate
	RotationWebhooks map[string]string
	// TLSCert and TLSKey are the PEM files of the server's certificate
	// (chain) and private key: both or neither. With them the listener
	// serves HTTPS only (TLS 1.2 or later, HTTP/1.1 and HTTP/2); SIGHUP
	// reads them again.
	TLSCert string
	TLSKey  string
	// TLSClientCA is a PEM file of CA certificates for mutual TLS: clients
	// must present a certificate signed by one of them. It needs TLS
	// (TLSCert and TLSKey, or TLSSelfSigned); SIGHUP reads it again.
	TLSClientCA string
	// TLSSelfSigned serves HTTPS with a certificate for localhost,
	// 127.0.0.1 and ::1 signed by a CA that Keyfort creates once in
	// <DataDir>/tls (see [Config.TLSDirectory]). Not with TLSCert/TLSKey.
	TLSSelfSigned bool
	// MaxConnections caps the connections the server holds open at once;
	// at the cap it closes the oldest connection that is idle or still
	// sending its request's header to make room, so idle connections
	// cannot lock legitimate clients out. Each connection costs a file
	// descriptor: keep it under the process's limit (ulimit -n).
	MaxConnections int
	// ReadHeaderTimeout bounds the wait for a request's header.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection after this long without
	// a request.
	IdleTimeout time.Duration
	// AuditMaxFileBytes is the size at which the audit file is rotated
	// (0: the audit package's default, 64 MiB).
	AuditMaxFileBytes int64
	// AuditMaxAge deletes rotated audit files older than it (0 keeps them).
	AuditMaxAge time.Duration
	// AuditMaxTotalBytes deletes the oldest rotated audit files while all
	// of them with the current one exceed it (0 keeps them).
	AuditMaxTotalBytes int64
	// AuditSync writes and fsyncs each request's audit lines to the file
	// before its response (concurrent requests share one fsync), so that
	// they survive power loss; by default they survive kill -9 only and
	// reach the file grouped (see audit.FileOptions.Journal).
	AuditSync bool
	// MetricsListen, if not empty, is the host:port of a second listener
	// that serves Prometheus metrics on GET /metrics (plain HTTP, nothing
	// else). It must differ from Listen. Empty means no metrics listener.
	MetricsListen string
	// LogRequests logs one line per AWS request at info level (operation,
	// status, duration, request id; never a value).
	LogRequests bool
	// XKSProxyCA is a PEM file of CA certificates trusted, besides the
	// system's, for the TLS certificates of external key store proxies.
	XKSProxyCA string
	// XKSProxyAddresses maps external key store proxy host names to the
	// host:port Keyfort connects to instead of <host>:443 (as curl's
	// --resolve does), for a proxy on another port or not in DNS: AWS's
	// XksProxyUriEndpoint cannot hold a port. The TLS certificate is still
	// checked against the host name.
	XKSProxyAddresses map[string]string
	// XKSProxyTimeout bounds each call to an external key store proxy
	// (0: AWS's 250ms).
	XKSProxyTimeout time.Duration
}

// Default returns the default configuration.
func Default() Config {
	return Config{
		Listen:          DefaultListen,
		DataDir:         DefaultDataDir,
		Auth:            AuthDev,
		LogLevel:        "info",
		LogFormat:       LogFormatAuto,
		ShutdownTimeout: DefaultShutdownTimeout,
		MemoryLimit:     DefaultMemoryLimit,

		MaxConnections:    DefaultMaxConnections,
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		IdleTimeout:       DefaultIdleTimeout,
	}
}

// AuditDirectory returns AuditDir, or <DataDir>/audit when it is empty.
func (c Config) AuditDirectory() string {
	if c.AuditDir != "" {
		return c.AuditDir
	}
	return filepath.Join(c.DataDir, "audit")
}

// TLS reports whether the server serves HTTPS (TLSCert and TLSKey, or
// TLSSelfSigned).
func (c Config) TLS() bool { return c.TLSSelfSigned || c.TLSCert != "" || c.TLSKey != "" }

// TLSDirectory returns <DataDir>/tls, where TLSSelfSigned keeps its CA and
// server certificate.
func (c Config) TLSDirectory() string { return filepath.Join(c.DataDir, "tls") }

// SQLitePath returns the path of the embedded database.
func (c Config) SQLitePath() string { return filepath.Join(c.DataDir, "keyfort.db") }

// IsPostgres reports whether Store names a PostgreSQL database.
func (c Config) IsPostgres() bool {
	return strings.HasPrefix(c.Store, "postgres://") || strings.HasPrefix(c.Store, "postgresql://")
}

// Error is a configuration error naming the setting and what is wrong.
type Error struct {
	// Setting is the setting's name as written in the file and in flags
	// (e.g. "listen"), or "config" for the file as a whole.
	Setting string
	// Line is the line in the config file, or 0.
	Line int
	// Problem says what is wrong.
	Problem string
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("config: line %d: %s: %s", e.Line, e.Setting, e.Problem)
	}
	return "config: " + e.Setting + ": " + e.Problem
}

func errorf(setting, format string, args ...any) *Error {
	return &Error{Setting: setting, Problem: fmt.Sprintf(format, args...)}
}

// Validate checks every setting and returns an *Error naming the first
// setting that is wrong.
func (c Config) Validate() error {
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return errorf("listen", "%q is not a host:port address", c.Listen)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return errorf("listen", "port %q is not a number from 0 to 65535", port)
	}
	if c.DataDir == "" {
		return errorf("data", "must not be empty")
	}
	if c.StoreReadThrough && !c.IsPostgres() {
		return errorf("store-read-through", "applies only to a postgres:// store (the embedded store's caches are always exact)")
	}
	if c.Store != "" {
		if !c.IsPostgres() {
			return errorf("store", "must be empty (embedded SQLite) or a postgres:// URL")
		}
		if _, err := url.Parse(c.Store); err != nil {
			return errorf("store", "not a valid URL") // url errors would echo the password
		}
	}
	switch c.Auth {
	case AuthDev:
		if c.Credentials != "" {
			return errorf("credentials", "is used only with --auth strict; dev auth accepts any credentials")
		}
		if !c.InsecureDevAuth && !IsLoopback(host) {
			return errorf("listen", "%s is not a loopback address; dev auth accepts any credentials, "+
				"so listening there needs --insecure-dev-auth", c.Listen)
		}
	case AuthStrict:
		// Signatures are verified: any address will do.
		if c.Credentials == "" {
			return errorf("credentials", "strict auth needs a credentials file "+
				"(--credentials FILE, KEYFORT_CREDENTIALS or credentials: in the config file)")
		}
	default:
		return errorf("auth", "%q is not one of dev, strict", c.Auth)
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		return errorf("log-level", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	switch c.LogFormat {
	case LogFormatAuto, LogFormatText, LogFormatJSON:
	default:
		return errorf("log-format", "%q is not one of auto, text, json", c.LogFormat)
	}
	if err := c.validateTLS(); err != nil {
		return err
	}
	if err := c.validateMetricsListen(host, port); err != nil {
		return err
	}
	if c.MemoryLimit < 0 {
		return errorf("memory-limit", "must not be negative")
	}
	if c.ShutdownTimeout <= 0 {
		return errorf("shutdown-timeout", "must be positive")
	}
	if c.MaxConnections <= 0 {
		return errorf("max-connections", "must be at least 1")
	}
	if c.ReadHeaderTimeout <= 0 {
		return errorf("read-header-timeout", "must be positive")
	}
	if c.IdleTimeout <= 0 {
		return errorf("idle-timeout", "must be positive")
	}
	if c.AuditMaxFileBytes < 0 {
		return errorf("audit-max-file-size", "must not be negative")
	}
	if c.AuditMaxAge < 0 {
		return errorf("audit-max-age", "must not be negative")
	}
	if c.AuditMaxTotalBytes < 0 {
		return errorf("audit-max-total-size", "must not be negative")
	}
	if c.AuditMaxTotalBytes > 0 && c.AuditMaxTotalBytes < c.AuditMaxFileBytes {
		return errorf("audit-max-total-size", "is smaller than --audit-max-file-size: the trail would keep only its current file")
	}
	if c.XKSProxyTimeout < 0 {
		return errorf("xks-proxy-timeout", "must not be negative")
	}
	for host, addr := range c.XKSProxyAddresses {
		h, port, err := net.SplitHostPort(addr)
		if host == "" || strings.ContainsAny(host, ":/ ") || err != nil || h == "" || port == "" {
			return errorf("xks-proxy-address", "%q=%q is not HOST=HOST:PORT", host, addr)
		}
	}
	for arn, u := range c.RotationWebhooks {
		if !lambdaARNRE.MatchString(arn) {
			return errorf("rotation-webhooks", "%q is not a Lambda function ARN (arn:aws:lambda:<region>:<account>:function:<name>)", arn)
		}
		if err := webhook.CheckURL(u); err != nil {
			return errorf("rotation-webhooks", "the webhook of %s %v", arn, err) // never echo the URL: it may hold a credential
		}
	}
	return nil
}

// validateMetricsListen checks --metrics-listen: a host:port that is not
// the address of --listen (host and port as given in listen).
func (c Config) validateMetricsListen(host, port string) error {
	if c.MetricsListen == "" {
		return nil
	}
	mhost, mport, err := net.SplitHostPort(c.MetricsListen)
	if err != nil {
		return errorf("metrics-listen", "%q is not a host:port address", c.MetricsListen)
	}
	if p, err := strconv.Atoi(mport); err != nil || p < 0 || p > 65535 {
		return errorf("metrics-listen", "port %q is not a number from 0 to 65535", mport)
	}
	if mport != "0" && mport == port && (mhost == host || mhost == "" || host == "" ||
		net.ParseIP(mhost).IsUnspecified() || net.ParseIP(host).IsUnspecified()) {
		return errorf("metrics-listen", "%s is the address of --listen (%s); metrics need a listener of their own", c.MetricsListen, c.Listen)
	}
	return nil
}

// validateTLS checks the combination of the TLS settings (the files are
// read when the server starts).
func (c Config) validateTLS() error {
	switch {
	case c.TLSSelfSigned && (c.TLSCert != "" || c.TLSKey != ""):
		return errorf("tls-self-signed", "cannot be used with --tls-cert and --tls-key: "+
			"it makes its own certificate; give either one or the other")
	case c.TLSCert != "" && c.TLSKey == "":
		return errorf("tls-key", "is missing: --tls-cert needs the certificate's private key (--tls-key FILE)")
	case c.TLSKey != "" && c.TLSCert == "":
		return errorf("tls-cert", "is missing: --tls-key needs its certificate (--tls-cert FILE)")
	case c.TLSClientCA != "" && !c.TLS():
		return errorf("tls-client-ca", "mutual TLS needs TLS: give --tls-cert and --tls-key, or --tls-self-signed")
	}
	return nil
}

// lambdaARNRE matches a Lambda function ARN, optionally with a version or
// alias qualifier.
var lambdaARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[a-zA-Z0-9_-]{1,140}(:[a-zA-Z0-9_$-]{1,128})?$`)

// IsLoopback reports whether host (from a host:port address) is a loopback
// address or "localhost". An empty host (all interfaces) is not.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// setting describes one configuration setting: its name in flags and files,
// its environment variable and how to set it from a string.
type setting struct {
	name  string // flag and YAML name (YAML accepts '_' for '-')
	env   string
	usage string
	set   func(c *Config, v string) error
}

// boolean reports whether the setting's flag is given without a value
// (--insecure-dev-auth, or --insecure-dev-auth=false). A setting made with
// settings' boolean helper must be named here.
func (s setting) boolean() bool {
	return s.name == "insecure-dev-auth" || s.name == "tls-self-signed" || s.name == "log-requests" || s.name == "audit-sync"
}

func settings() []setting {
	str := func(f func(c *Config) *string) func(*Config, string) error {
		return func(c *Config, v string) error { *f(c) = v; return nil }
	}
	boolean := func(f func(c *Config) *bool) func(*Config, string) error {
		return func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%q is not a boolean", v)
			}
			*f(c) = b
			return nil
		}
	}
	duration := func(f func(c *Config) *time.Duration) func(*Config, string) error {
		return func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%q is not a duration such as 10s", v)
			}
			*f(c) = d
			return nil
		}
	}
	return []setting{
		{"listen", "KEYFORT_LISTEN", "address to listen on (host:port)", str(func(c *Config) *string { return &c.Listen })},
		{"data", "KEYFORT_DATA", "data directory", str(func(c *Config) *string { return &c.DataDir })},
		{"store", "KEYFORT_STORE", "empty for embedded SQLite, or a postgres:// URL", str(func(c *Config) *string { return &c.Store })},
		{"store-read-through", "KEYFORT_STORE_READ_THROUGH", "on PostgreSQL, keep no caches and read the store on every request (for a pooler in transaction mode, such as PgBouncer's, which does not deliver LISTEN/NOTIFY)", boolean(func(c *Config) *bool { return &c.StoreReadThrough })},
		{"auth", "KEYFORT_AUTH", "authentication mode: dev or strict", str(func(c *Config) *string { return &c.Auth })},
		{"credentials", "KEYFORT_CREDENTIALS", "credentials file of strict auth (principals, access keys, policies; reloaded on SIGHUP)", str(func(c *Config) *string { return &c.Credentials })},
		{"seed", "KEYFORT_SEED", "seed file: keys and secrets with fixed ids, made at every start when missing (README \"Fixtures\")", str(func(c *Config) *string { return &c.Seed })},
		{"insecure-dev-auth", "KEYFORT_INSECURE_DEV_AUTH", "allow dev auth on a non-loopback address", boolean(func(c *Config) *bool { return &c.InsecureDevAuth })},
		{"root-key-file", "KEYFORT_ROOT_KEY_FILE", "file holding the root key", str(func(c *Config) *string { return &c.RootKeyFile })},
		{"log-level", "KEYFORT_LOG_LEVEL", "debug, info, warn or error", str(func(c *Config) *string { return &c.LogLevel })},
		{"log-format", "KEYFORT_LOG_FORMAT", "auto, text or json", str(func(c *Config) *string { return &c.LogFormat })},
		{"audit-dir", "KEYFORT_AUDIT_DIR", "audit trail directory (default <data>/audit)", str(func(c *Config) *string { return &c.AuditDir })},
		{"shutdown-timeout", "KEYFORT_SHUTDOWN_TIMEOUT", "bound on graceful shutdown (e.g. 10s)", duration(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
		{"max-connections", "KEYFORT_MAX_CONNECTIONS", "most connections held open at once; at the cap the oldest idle ones are closed (default 4096)", func(c *Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("%q is not a whole number", v)
			}
			c.MaxConnections = n
			return nil
		}},
		{"read-header-timeout", "KEYFORT_READ_HEADER_TIMEOUT", "bound on the wait for a request's header (default 5s)", duration(func(c *Config) *time.Duration { return &c.ReadHeaderTimeout })},
		{"idle-timeout", "KEYFORT_IDLE_TIMEOUT", "closes a keep-alive connection idle this long (default 60s)", duration(func(c *Config) *time.Duration { return &c.IdleTimeout })},
		{"audit-max-file-size", "KEYFORT_AUDIT_MAX_FILE_SIZE", "size at which the audit file is rotated (e.g. 64MiB; 0 for the default, 64MiB)", func(c *Config, v string) error {
			n, err := parseSize(v)
			if err != nil {
				return err
			}
			c.AuditMaxFileBytes = n
			return nil
		}},
		{"audit-max-age", "KEYFORT_AUDIT_MAX_AGE", "delete rotated audit files older than this (e.g. 2160h; 0 keeps them)", duration(func(c *Config) *time.Duration { return &c.AuditMaxAge })},
		{"audit-max-total-size", "KEYFORT_AUDIT_MAX_TOTAL_SIZE", "delete the oldest rotated audit files while the trail exceeds this (e.g. 1GiB; 0 keeps them)", func(c *Config, v string) error {
			n, err := parseSize(v)
			if err != nil {
				return err
			}
			c.AuditMaxTotalBytes = n
			return nil
		}},
		{"audit-sync", "KEYFORT_AUDIT_SYNC", "write and fsync each request's audit lines to the file before its response (survives power loss; slower)", boolean(func(c *Config) *bool { return &c.AuditSync })},
		{"memory-limit", "KEYFORT_MEMORY_LIMIT", "Go runtime soft memory limit (e.g. 40MiB, 1GiB; 0 for the runtime default)", func(c *Config, v string) error {
			n, err := parseSize(v)
			if err != nil {
				return err
			}
			c.MemoryLimit = n
			return nil
		}},
		{"tls-cert", "KEYFORT_TLS_CERT", "PEM certificate (chain) to serve HTTPS with; needs --tls-key (reloaded on SIGHUP)", str(func(c *Config) *string { return &c.TLSCert })},
		{"tls-key", "KEYFORT_TLS_KEY", "PEM private key of --tls-cert", str(func(c *Config) *string { return &c.TLSKey })},
		{"tls-client-ca", "KEYFORT_TLS_CLIENT_CA", "PEM CA certificates for mutual TLS: clients must present a certificate they signed", str(func(c *Config) *string { return &c.TLSClientCA })},
		{"tls-self-signed", "KEYFORT_TLS_SELF_SIGNED", "serve HTTPS with a CA and certificate for localhost created in <data>/tls", boolean(func(c *Config) *bool { return &c.TLSSelfSigned })},
		{"metrics-listen", "KEYFORT_METRICS_LISTEN", "address (host:port) of a second listener serving Prometheus metrics on GET /metrics (default off)", str(func(c *Config) *string { return &c.MetricsListen })},
		{"log-requests", "KEYFORT_LOG_REQUESTS", "log one line per request at info level (operation, status, duration, request id)", boolean(func(c *Config) *bool { return &c.LogRequests })},
		{"xks-proxy-ca", "KEYFORT_XKS_PROXY_CA", "PEM CA certificates trusted, besides the system's, for external key store proxies' TLS certificates", str(func(c *Config) *string { return &c.XKSProxyCA })},
		{"xks-proxy-address", "KEYFORT_XKS_PROXY_ADDRESS", "HOST=HOST:PORT[,...]: connect to this address for an external key store proxy's host instead of HOST:443", func(c *Config, v string) error {
			m := map[string]string{}
			for _, pair := range strings.Split(v, ",") {
				if pair = strings.TrimSpace(pair); pair == "" {
					continue
				}
				host, addr, ok := strings.Cut(pair, "=")
				if !ok {
					return fmt.Errorf("%q is not HOST=HOST:PORT", pair)
				}
				m[strings.TrimSpace(host)] = strings.TrimSpace(addr)
			}
			c.XKSProxyAddresses = m
			return nil
		}},
		{"xks-proxy-timeout", "KEYFORT_XKS_PROXY_TIMEOUT", "bound on each call to an external key store proxy (default 250ms, AWS's)", duration(func(c *Config) *time.Duration { return &c.XKSProxyTimeout })},
	}
}

// parseSize reads a byte count: a number with an optional unit (B, KB, MB,
// GB, KiB, MiB, GiB).
func parseSize(v string) (int64, error) {
	s := strings.TrimSpace(v)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}} {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(rest), u.n
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size such as 40MiB", v)
	}
	return n * mult, nil
}

// Parse reads a YAML configuration file onto the defaults. Keys are the
// flag names (listen, data, store, auth, credentials, seed, insecure-dev-auth, root-key-file,
// log-level, log-format, audit-dir, shutdown-timeout, memory-limit, tls-cert, tls-key,
// tls-client-ca, tls-self-signed, max-connections, read-header-timeout, idle-timeout,
// metrics-listen, log-requests, xks-proxy-ca, xks-proxy-address, xks-proxy-timeout;
// '_' may be written for '-'), plus rotation-webhooks,
// a mapping of Lambda function ARN to webhook URL that only the file can set (see [Config.RotationWebhooks]). A value
// may contain ${VAR}, replaced by the environment variable VAR (an unset
// variable is an error). Errors name the line.
func Parse(r io.Reader) (Config, error) {
	c := Default()
	err := c.applyFile(r, os.LookupEnv)
	return c, err
}

func (c *Config) applyFile(r io.Reader, lookup func(string) (string, bool)) error {
	var doc yaml.Node
	dec := yaml.NewDecoder(r)
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty file
		}
		return &Error{Setting: "config", Problem: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return &Error{Setting: "config", Line: root.Line, Problem: "must be a mapping of setting: value"}
	}
	byName := make(map[string]setting)
	for _, s := range settings() {
		byName[s.name] = s
	}
	seen := make(map[string]bool)
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		name := strings.ReplaceAll(k.Value, "_", "-")
		if name == "rotation-webhooks" {
			if seen[name] {
				return &Error{Setting: k.Value, Line: k.Line, Problem: "set twice"}
			}
			seen[name] = true
			if err := c.applyWebhooks(k.Value, v, lookup); err != nil {
				return err
			}
			continue
		}
		s, ok := byName[name]
		if !ok {
			return &Error{Setting: k.Value, Line: k.Line, Problem: "unknown setting"}
		}
		if seen[name] {
			return &Error{Setting: k.Value, Line: k.Line, Problem: "set twice"}
		}
		seen[name] = true
		if v.Kind != yaml.ScalarNode {
			return &Error{Setting: k.Value, Line: v.Line, Problem: "must be a single value"}
		}
		val, err := expand(v.Value, lookup)
		if err != nil {
			return &Error{Setting: k.Value, Line: v.Line, Problem: err.Error()}
		}
		if err := s.set(c, val); err != nil {
			return &Error{Setting: k.Value, Line: v.Line, Problem: err.Error()}
		}
	}
	return nil
}

// applyWebhooks reads the rotation-webhooks mapping (function ARN: URL).
func (c *Config) applyWebhooks(key string, v *yaml.Node, lookup func(string) (string, bool)) error {
	if v.Kind != yaml.MappingNode {
		return &Error{Setting: key, Line: v.Line, Problem: "must be a mapping of Lambda function ARN: webhook URL"}
	}
	m := make(map[string]string, len(v.Content)/2)
	for i := 0; i+1 < len(v.Content); i += 2 {
		fk, fv := v.Content[i], v.Content[i+1]
		if fk.Kind != yaml.ScalarNode || fv.Kind != yaml.ScalarNode {
			return &Error{Setting: key, Line: fk.Line, Problem: "must be a mapping of Lambda function ARN: webhook URL"}
		}
		if _, dup := m[fk.Value]; dup {
			return &Error{Setting: key, Line: fk.Line, Problem: fk.Value + " is set twice"}
		}
		u, err := expand(fv.Value, lookup)
		if err != nil {
			return &Error{Setting: key, Line: fv.Line, Problem: err.Error()}
		}
		m[fk.Value] = u
	}
	c.RotationWebhooks = m
	return nil
}

// expand replaces each ${VAR} in s by the value of VAR. Other '$'
// characters are kept, so a password such as "pa$$word" survives.
func expand(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var missing string
	out := os.Expand(escapeBareDollars(s), func(name string) string {
		if name == "$" {
			return "$"
		}
		v, ok := lookup(name)
		if !ok && missing == "" {
			missing = name
		}
		return v
	})
	if missing != "" {
		return "", fmt.Errorf("environment variable %s is not set", missing)
	}
	return out, nil
}

// escapeBareDollars rewrites every '$' not followed by '{' as "${$}" so that
// os.Expand leaves it alone (the mapping returns "$" for the name "$").
func escapeBareDollars(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '$' && (i+1 >= len(s) || s[i+1] != '{') {
			b.WriteString("${$}")
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Load builds the configuration from its sources, in increasing precedence:
// defaults, the YAML file named by --config (or KEYFORT_CONFIG), the
// KEYFORT_* environment variables, and the flags in args. It defines its
// flags on fs (which should use flag.ContinueOnError) and returns the
// result of fs.Parse unchanged when the flags are wrong. lookup reads the
// environment (os.LookupEnv in production). Load does not call Validate.
func Load(fs *flag.FlagSet, args []string, lookup func(string) (string, bool)) (Config, error) {
	c := Default()
	all := settings()
	values := make([]string, len(all))
	for i, s := range all {
		if s.boolean() {
			fs.BoolFunc(s.name, s.usage+" (env "+s.env+")", func(v string) error { values[i] = v; return nil })
			continue
		}
		fs.StringVar(&values[i], s.name, "", s.usage+" (env "+s.env+")")
	}
	var file string
	fs.StringVar(&file, "config", "", "YAML configuration file (env KEYFORT_CONFIG)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	err := c.applySources(fs, all, values, file, lookup)
	return c, err
}

// applySources applies, in increasing precedence, the config file (file,
// else KEYFORT_CONFIG), the environment variables of the settings all, and
// those of their flags that were set on fs (values, in all's order).
func (c *Config) applySources(fs *flag.FlagSet, all []setting, values []string, file string, lookup func(string) (string, bool)) error {
	if file == "" {
		file, _ = lookup("KEYFORT_CONFIG")
	}
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return &Error{Setting: "config", Problem: "cannot open " + file + ": " + pathErr(err)}
		}
		err = c.applyFile(f, lookup)
		f.Close()
		if err != nil {
			var ce *Error
			if errors.As(err, &ce) && ce.Line > 0 {
				ce.Problem += " (in " + file + ")"
			}
			return err
		}
	}
	for _, s := range all {
		if v, ok := lookup(s.env); ok && v != "" {
			if err := s.set(c, v); err != nil {
				return &Error{Setting: s.env, Problem: err.Error()}
			}
		}
	}
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for i, s := range all {
		if !set[s.name] {
			continue
		}
		if err := s.set(c, values[i]); err != nil {
			return &Error{Setting: "--" + s.name, Problem: err.Error()}
		}
	}
	return nil
}

// LoadCommand is Load for an operator command (keyfort backup, restore)
// whose flags are only the settings named (and --config) besides those
// already defined on fs: its -h lists just them, with their defaults. The
// config file and the KEYFORT_* variables are read as for Load, every
// setting of them (so that, say, KEYFORT_STORE still says the store is
// PostgreSQL). Positional arguments may come before, between or after
// the flags; they are returned in order.
func LoadCommand(fs *flag.FlagSet, args []string, lookup func(string) (string, bool), names ...string) (Config, []string, error) {
	c := Default()
	def := map[string]string{"data": c.DataDir}
	all := settings()
	values := make([]string, len(all))
	for i, s := range all {
		for _, n := range names {
			if s.name == n {
				fs.StringVar(&values[i], s.name, def[s.name], s.usage+" (env "+s.env+")")
			}
		}
	}
	var file string
	fs.StringVar(&file, "config", "", "YAML configuration file (env KEYFORT_CONFIG)")
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return c, nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if err := c.applySources(fs, all, values, file, lookup); err != nil {
		return c, nil, err
	}
	return c, positional, nil
}

func pathErr(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
