package config

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v, want nil", err)
	}
	if c.Listen != "127.0.0.1:4599" || c.DataDir != "./keyfort-data" || c.Auth != "dev" ||
		c.LogLevel != "info" || c.LogFormat != "auto" || c.ShutdownTimeout != 10*time.Second {
		t.Errorf("Default() = %+v", c)
	}
	if got, want := c.AuditDirectory(), filepath.Join("keyfort-data", "audit"); got != want {
		t.Errorf("AuditDirectory() = %q, want %q", got, want)
	}
	if got, want := c.SQLitePath(), filepath.Join("keyfort-data", "keyfort.db"); got != want {
		t.Errorf("SQLitePath() = %q, want %q", got, want)
	}
}

func TestParse(t *testing.T) {
	t.Setenv("KEYFORT_TEST_PG_PASSWORD", "pw")
	c, err := Parse(strings.NewReader(`
listen: 127.0.0.1:9000
data_dir_ignored_comment: # not a key, see below
`))
	if err == nil || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), "unknown setting") {
		t.Fatalf("Parse(unknown key) = %v, want unknown setting on line 3", err)
	}

	c, err = Parse(strings.NewReader(`# keyfort
listen: 127.0.0.1:9000
data: /var/lib/keyfort
store: postgres://keyfort:${KEYFORT_TEST_PG_PASSWORD}@db:5432/keyfort?x=$$y
auth: strict
credentials: /etc/keyfort/credentials.yaml
insecure_dev_auth: true
root-key-file: /etc/keyfort/root.key
log-level: debug
log_format: json
audit-dir: /var/log/keyfort
shutdown-timeout: 3s
tls_cert: /etc/keyfort/tls/cert.pem
tls-key: /etc/keyfort/tls/key.pem
tls_client_ca: /etc/keyfort/tls/clients.pem
rotation_webhooks:
  arn:aws:lambda:us-east-1:123456789012:function:rotate-db: https://rotator.internal/rotate?key=${KEYFORT_TEST_PG_PASSWORD}
  arn:aws:lambda:eu-west-1:123456789012:function:other:live: http://127.0.0.1:9001/
`))
	if err != nil {
		t.Fatalf("Parse = %v, want nil", err)
	}
	want := Config{
		Listen: "127.0.0.1:9000", DataDir: "/var/lib/keyfort",
		Store: "postgres://keyfort:pw@db:5432/keyfort?x=$$y", Auth: "strict",
		Credentials: "/etc/keyfort/credentials.yaml", InsecureDevAuth: true,
		RootKeyFile: "/etc/keyfort/root.key", LogLevel: "debug", LogFormat: "json",
		AuditDir: "/var/log/keyfort", ShutdownTimeout: 3 * time.Second, MemoryLimit: DefaultMemoryLimit,
		TLSCert: "/etc/keyfort/tls/cert.pem", TLSKey: "/etc/keyfort/tls/key.pem", TLSClientCA: "/etc/keyfort/tls/clients.pem",
		MaxConnections: DefaultMaxConnections, ReadHeaderTimeout: DefaultReadHeaderTimeout, IdleTimeout: DefaultIdleTimeout,
		RotationWebhooks: map[string]string{
			"arn:aws:lambda:us-east-1:123456789012:function:rotate-db":  "https://rotator.internal/rotate?key=pw",
			"arn:aws:lambda:eu-west-1:123456789012:function:other:live": "http://127.0.0.1:9001/",
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Parse = %+v\nwant    %+v", c, want)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"unset variable", "listen: 127.0.0.1:1\nstore: ${KEYFORT_TEST_UNSET_VAR}\n",
			"config: line 2: store: environment variable KEYFORT_TEST_UNSET_VAR is not set"},
		{"bad duration", "shutdown-timeout: soon\n", `config: line 1: shutdown-timeout: "soon" is not a duration`},
		{"bad bool", "\n\ninsecure-dev-auth: maybe\n", `config: line 3: insecure-dev-auth: "maybe" is not a boolean`},
		{"bad tls bool", "tls_self_signed: on\n", `config: line 1: tls_self_signed: "on" is not a boolean`},
		{"list value", "listen:\n  - a\n", "config: line 2: listen: must be a single value"},
		{"not a mapping", "- listen\n", "config: line 1: config: must be a mapping"},
		{"bad yaml", "listen: [\n", "config: config: not valid YAML"},
		{"duplicate", "auth: dev\nauth: strict\n", "config: line 2: auth: set twice"},
		{"webhooks not a mapping", "rotation_webhooks: http://x/\n", "config: line 1: rotation_webhooks: must be a mapping"},
		{"webhook list value", "rotation_webhooks:\n  arn:aws:lambda:us-east-1:123456789012:function:f:\n    - http://x/\n",
			"config: line 2: rotation_webhooks: must be a mapping"},
		{"webhook unset variable", "rotation_webhooks:\n  arn:aws:lambda:us-east-1:123456789012:function:f: ${KEYFORT_TEST_UNSET_VAR}\n",
			"config: line 2: rotation_webhooks: environment variable KEYFORT_TEST_UNSET_VAR is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.file))
			var ce *Error
			if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Parse(%q) = %v, want prefix %q", tt.file, err, tt.want)
			}
		})
	}
	if c, err := Parse(strings.NewReader("")); err != nil || !reflect.DeepEqual(c, Default()) {
		t.Errorf("Parse(empty) = %+v, %v, want defaults", c, err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string // "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"port zero", func(c *Config) { c.Listen = "127.0.0.1:0" }, ""},
		{"localhost", func(c *Config) { c.Listen = "localhost:4599" }, ""},
		{"ipv6 loopback", func(c *Config) { c.Listen = "[::1]:4599" }, ""},
		{"postgres", func(c *Config) { c.Store = "postgresql://u@h/db" }, ""},
		{"no port", func(c *Config) { c.Listen = "127.0.0.1" }, "config: listen:"},
		{"bad port", func(c *Config) { c.Listen = "127.0.0.1:99999" }, "config: listen: port"},
		{"all interfaces without insecure", func(c *Config) { c.Listen = ":4599" }, "config: listen: :4599 is not a loopback address"},
		{"public without insecure", func(c *Config) { c.Listen = "0.0.0.0:4599" }, "config: listen: 0.0.0.0:4599 is not a loopback address; dev auth accepts any credentials, so listening there needs --insecure-dev-auth"},
		{"public with insecure", func(c *Config) { c.Listen = "0.0.0.0:4599"; c.InsecureDevAuth = true }, ""},
		{"empty data", func(c *Config) { c.DataDir = "" }, "config: data: must not be empty"},
		{"mysql store", func(c *Config) { c.Store = "mysql://x" }, "config: store:"},
		{"read-through on postgres", func(c *Config) { c.Store = "postgres://u@h/db"; c.StoreReadThrough = true }, ""},
		{"read-through on the embedded store", func(c *Config) { c.StoreReadThrough = true }, "config: store-read-through: applies only to a postgres:// store"},
		{"strict auth", func(c *Config) { c.Auth = "strict"; c.Credentials = "creds.yaml" }, ""},
		{"strict auth on any address", func(c *Config) { c.Auth = "strict"; c.Credentials = "creds.yaml"; c.Listen = "0.0.0.0:4599" }, ""},
		{"strict auth on all interfaces", func(c *Config) { c.Auth = "strict"; c.Credentials = "creds.yaml"; c.Listen = ":4599" }, ""},
		{"strict auth without credentials", func(c *Config) { c.Auth = "strict" },
			"config: credentials: strict auth needs a credentials file (--credentials FILE, KEYFORT_CREDENTIALS or credentials: in the config file)"},
		{"credentials with dev auth", func(c *Config) { c.Credentials = "creds.yaml" },
			"config: credentials: is used only with --auth strict; dev auth accepts any credentials"},
		{"unknown auth", func(c *Config) { c.Auth = "none" }, `config: auth: "none" is not one of dev, strict`},
		{"bad level", func(c *Config) { c.LogLevel = "trace" }, "config: log-level:"},
		{"bad format", func(c *Config) { c.LogFormat = "xml" }, "config: log-format:"},
		{"zero timeout", func(c *Config) { c.ShutdownTimeout = 0 }, "config: shutdown-timeout: must be positive"},
		{"no connections", func(c *Config) { c.MaxConnections = 0 }, "config: max-connections: must be at least 1"},
		{"zero read-header timeout", func(c *Config) { c.ReadHeaderTimeout = 0 }, "config: read-header-timeout: must be positive"},
		{"negative idle timeout", func(c *Config) { c.IdleTimeout = -time.Second }, "config: idle-timeout: must be positive"},
		{"negative audit age", func(c *Config) { c.AuditMaxAge = -time.Hour }, "config: audit-max-age: must not be negative"},
		{"negative audit size", func(c *Config) { c.AuditMaxTotalBytes = -1 }, "config: audit-max-total-size: must not be negative"},
		{"audit total under file size", func(c *Config) { c.AuditMaxFileBytes, c.AuditMaxTotalBytes = 64<<20, 1<<20 },
			"config: audit-max-total-size: is smaller than --audit-max-file-size: the trail would keep only its current file"},
		{"audit retention", func(c *Config) {
			c.AuditMaxFileBytes, c.AuditMaxTotalBytes, c.AuditMaxAge = 1<<20, 1<<30, 90*24*time.Hour
		}, ""},
		{"webhook", func(c *Config) {
			c.RotationWebhooks = map[string]string{"arn:aws:lambda:us-east-1:123456789012:function:f": "https://h/x"}
		}, ""},
		{"webhook bad arn", func(c *Config) {
			c.RotationWebhooks = map[string]string{"arn:aws:s3:::bucket": "https://h/x"}
		}, `config: rotation-webhooks: "arn:aws:s3:::bucket" is not a Lambda function ARN`},
		{"webhook bad scheme", func(c *Config) {
			c.RotationWebhooks = map[string]string{"arn:aws:lambda:us-east-1:123456789012:function:f": "file:///sekrit"}
		}, "config: rotation-webhooks: the webhook of arn:aws:lambda:us-east-1:123456789012:function:f must be an http:// or https:// URL"},
		{"tls cert and key", func(c *Config) { c.TLSCert, c.TLSKey = "cert.pem", "key.pem" }, ""},
		{"mutual tls", func(c *Config) { c.TLSCert, c.TLSKey, c.TLSClientCA = "cert.pem", "key.pem", "ca.pem" }, ""},
		{"tls self-signed", func(c *Config) { c.TLSSelfSigned = true }, ""},
		{"mutual tls self-signed", func(c *Config) { c.TLSSelfSigned, c.TLSClientCA = true, "ca.pem" }, ""},
		{"tls cert without key", func(c *Config) { c.TLSCert = "cert.pem" },
			"config: tls-key: is missing: --tls-cert needs the certificate's private key (--tls-key FILE)"},
		{"tls key without cert", func(c *Config) { c.TLSKey = "key.pem" },
			"config: tls-cert: is missing: --tls-key needs its certificate (--tls-cert FILE)"},
		{"tls self-signed with cert and key", func(c *Config) { c.TLSSelfSigned, c.TLSCert, c.TLSKey = true, "cert.pem", "key.pem" },
			"config: tls-self-signed: cannot be used with --tls-cert and --tls-key"},
		{"tls self-signed with cert", func(c *Config) { c.TLSSelfSigned, c.TLSCert = true, "cert.pem" },
			"config: tls-self-signed: cannot be used with --tls-cert and --tls-key"},
		{"tls client ca without tls", func(c *Config) { c.TLSClientCA = "ca.pem" },
			"config: tls-client-ca: mutual TLS needs TLS: give --tls-cert and --tls-key, or --tls-self-signed"},
		{"metrics listener", func(c *Config) { c.MetricsListen = "127.0.0.1:9599" }, ""},
		{"metrics on port 0 beside listen on port 0", func(c *Config) { c.Listen, c.MetricsListen = "127.0.0.1:0", "127.0.0.1:0" }, ""},
		{"metrics on the listen address", func(c *Config) { c.MetricsListen = DefaultListen },
			"config: metrics-listen: 127.0.0.1:4599 is the address of --listen (127.0.0.1:4599); metrics need a listener of their own"},
		{"metrics on all interfaces at the listen port", func(c *Config) { c.MetricsListen = ":4599" },
			"config: metrics-listen: :4599 is the address of --listen"},
		{"metrics not host:port", func(c *Config) { c.MetricsListen = "9599" },
			`config: metrics-listen: "9599" is not a host:port address`},
		{"xks proxy address", func(c *Config) { c.XKSProxyAddresses = map[string]string{"xks.example.com": "10.0.0.5:8443"} }, ""},
		{"xks proxy address without a port", func(c *Config) { c.XKSProxyAddresses = map[string]string{"xks.example.com": "10.0.0.5"} },
			`config: xks-proxy-address: "xks.example.com"="10.0.0.5" is not HOST=HOST:PORT`},
		{"xks proxy address without a host", func(c *Config) { c.XKSProxyAddresses = map[string]string{"": "10.0.0.5:443"} },
			`config: xks-proxy-address: ""="10.0.0.5:443" is not HOST=HOST:PORT`},
		{"negative xks proxy timeout", func(c *Config) { c.XKSProxyTimeout = -time.Second }, "config: xks-proxy-timeout: must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.modify(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("Validate() = %v, want one line starting %q", err, tt.want)
			}
		})
	}
}

func TestLoadPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "keyfort.yaml")
	if err := os.WriteFile(file, []byte("listen: 127.0.0.1:1000\ndata: /from/file\nlog-level: warn\nauth: dev\naudit-dir: /audit/file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want func(Config) bool
	}{
		{"defaults only", nil, nil, func(c Config) bool { return reflect.DeepEqual(c, Default()) }},
		{"file over defaults", []string{"--config", file}, nil, func(c Config) bool {
			return c.Listen == "127.0.0.1:1000" && c.DataDir == "/from/file" && c.LogLevel == "warn" && c.LogFormat == "auto"
		}},
		{"config from env", nil, map[string]string{"KEYFORT_CONFIG": file}, func(c Config) bool {
			return c.Listen == "127.0.0.1:1000"
		}},
		{"env over file", []string{"--config", file}, map[string]string{"KEYFORT_LISTEN": "127.0.0.1:2000", "KEYFORT_DATA": "/from/env"},
			func(c Config) bool {
				return c.Listen == "127.0.0.1:2000" && c.DataDir == "/from/env" && c.LogLevel == "warn"
			}},
		{"flags over env", []string{"--config", file, "--listen", "127.0.0.1:3000", "-log-level=error"},
			map[string]string{"KEYFORT_LISTEN": "127.0.0.1:2000", "KEYFORT_LOG_LEVEL": "debug", "KEYFORT_STORE": "postgres://h/db"},
			func(c Config) bool {
				return c.Listen == "127.0.0.1:3000" && c.LogLevel == "error" && c.Store == "postgres://h/db" && c.DataDir == "/from/file"
			}},
		{"empty env is unset", nil, map[string]string{"KEYFORT_LISTEN": ""}, func(c Config) bool { return c.Listen == DefaultListen }},
		{"bool flag", []string{"--insecure-dev-auth"}, nil, func(c Config) bool { return c.InsecureDevAuth }},
		{"credentials flag", []string{"--auth", "strict", "--credentials", "/etc/creds.yaml"}, nil, func(c Config) bool {
			return c.Auth == AuthStrict && c.Credentials == "/etc/creds.yaml"
		}},
		{"credentials env", nil, map[string]string{"KEYFORT_AUTH": "strict", "KEYFORT_CREDENTIALS": "/env/creds.yaml"}, func(c Config) bool {
			return c.Auth == AuthStrict && c.Credentials == "/env/creds.yaml"
		}},
		{"bool flag false over env", []string{"--insecure-dev-auth=false"}, map[string]string{"KEYFORT_INSECURE_DEV_AUTH": "true"},
			func(c Config) bool { return !c.InsecureDevAuth }},
		{"duration env", nil, map[string]string{"KEYFORT_SHUTDOWN_TIMEOUT": "250ms"}, func(c Config) bool { return c.ShutdownTimeout == 250*time.Millisecond }},
		{"tls flags", []string{"--tls-cert", "c.pem", "--tls-key=k.pem", "--tls-client-ca", "ca.pem"}, nil, func(c Config) bool {
			return c.TLSCert == "c.pem" && c.TLSKey == "k.pem" && c.TLSClientCA == "ca.pem" && !c.TLSSelfSigned && c.TLS()
		}},
		{"tls env", nil, map[string]string{"KEYFORT_TLS_CERT": "/e/c.pem", "KEYFORT_TLS_KEY": "/e/k.pem", "KEYFORT_TLS_CLIENT_CA": "/e/ca.pem"},
			func(c Config) bool {
				return c.TLSCert == "/e/c.pem" && c.TLSKey == "/e/k.pem" && c.TLSClientCA == "/e/ca.pem"
			}},
		{"metrics and request logs flags", []string{"--metrics-listen", "127.0.0.1:9599", "--log-requests"}, nil,
			func(c Config) bool { return c.MetricsListen == "127.0.0.1:9599" && c.LogRequests }},
		{"metrics env", nil, map[string]string{"KEYFORT_METRICS_LISTEN": "127.0.0.1:9600", "KEYFORT_LOG_REQUESTS": "true"},
			func(c Config) bool { return c.MetricsListen == "127.0.0.1:9600" && c.LogRequests }},
		{"tls self-signed flag", []string{"--tls-self-signed"}, nil, func(c Config) bool { return c.TLSSelfSigned && c.TLS() }},
		{"xks flags", []string{"--xks-proxy-ca", "xks.pem", "--xks-proxy-address", "a.example=127.0.0.1:8443, b.example=[::1]:9443", "--xks-proxy-timeout", "1s"}, nil,
			func(c Config) bool {
				return c.XKSProxyCA == "xks.pem" && len(c.XKSProxyAddresses) == 2 && c.XKSProxyAddresses["a.example"] == "127.0.0.1:8443" &&
					c.XKSProxyAddresses["b.example"] == "[::1]:9443" && c.XKSProxyTimeout == time.Second
			}},
		{"xks env", nil, map[string]string{"KEYFORT_XKS_PROXY_ADDRESS": "c.example=10.1.1.1:443", "KEYFORT_XKS_PROXY_TIMEOUT": "500ms"},
			func(c Config) bool {
				return c.XKSProxyAddresses["c.example"] == "10.1.1.1:443" && c.XKSProxyTimeout == 500*time.Millisecond
			}},
		{"tls self-signed env", nil, map[string]string{"KEYFORT_TLS_SELF_SIGNED": "true"}, func(c Config) bool { return c.TLSSelfSigned }},
		{"tls self-signed flag false over env", []string{"--tls-self-signed=false"}, map[string]string{"KEYFORT_TLS_SELF_SIGNED": "1"},
			func(c Config) bool { return !c.TLSSelfSigned && !c.TLS() }},
		{"flag can set empty", []string{"--config", file, "--audit-dir="}, nil, func(c Config) bool { return c.AuditDir == "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			c, err := Load(fs, tt.args, env(tt.env))
			if err != nil {
				t.Fatalf("Load(%q) = %v", tt.args, err)
			}
			if !tt.want(c) {
				t.Errorf("Load(%q, env %v) = %+v", tt.args, tt.env, c)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"missing file", []string{"--config", "/nonexistent/keyfort.yaml"}, nil, "config: config: cannot open /nonexistent/keyfort.yaml: no such file or directory"},
		{"bad env duration", nil, map[string]string{"KEYFORT_SHUTDOWN_TIMEOUT": "x"}, `config: KEYFORT_SHUTDOWN_TIMEOUT: "x" is not a duration`},
		{"bad flag duration", []string{"--shutdown-timeout", "x"}, nil, `config: --shutdown-timeout: "x" is not a duration`},
		{"bad env tls-self-signed", nil, map[string]string{"KEYFORT_TLS_SELF_SIGNED": "yes please"}, `config: KEYFORT_TLS_SELF_SIGNED: "yes please" is not a boolean`},
		{"unknown flag", []string{"--nope"}, nil, "flag provided but not defined: -nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			_, err := Load(fs, tt.args, env(tt.env))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Load(%q) = %v, want prefix %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestMemoryLimitSetting(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"40MiB", 40 << 20, true}, {"1GiB", 1 << 30, true}, {"512MB", 512e6, true}, {"0", 0, true},
		{"123", 123, true}, {"2 KiB", 2048, true}, {"-1", 0, false}, {"lots", 0, false}, {"1.5GiB", 0, false},
	}
	for _, c := range cases {
		got, err := parseSize(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
	cfg, err := Parse(strings.NewReader("memory_limit: 64MiB\n"))
	if err != nil || cfg.MemoryLimit != 64<<20 {
		t.Errorf("Parse(memory_limit: 64MiB) = %d, %v", cfg.MemoryLimit, err)
	}
	if Default().MemoryLimit != DefaultMemoryLimit {
		t.Errorf("Default().MemoryLimit = %d", Default().MemoryLimit)
	}
}

func TestParseTLSSelfSigned(t *testing.T) {
	c, err := Parse(strings.NewReader("tls-self-signed: true\ntls-client-ca: /etc/keyfort/clients.pem\n"))
	if err != nil || !c.TLSSelfSigned || c.TLSClientCA != "/etc/keyfort/clients.pem" {
		t.Fatalf("Parse(tls-self-signed: true) = %+v, %v", c, err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil", err)
	}
	if got, want := c.TLSDirectory(), filepath.Join("keyfort-data", "tls"); got != want {
		t.Errorf("TLSDirectory() = %q, want %q", got, want)
	}
}

func TestConnectionSettings(t *testing.T) {
	d := Default()
	if d.MaxConnections != 4096 || d.ReadHeaderTimeout != 5*time.Second || d.IdleTimeout != 60*time.Second {
		t.Errorf("Default() = %d, %v, %v", d.MaxConnections, d.ReadHeaderTimeout, d.IdleTimeout)
	}
	c, err := Parse(strings.NewReader("max_connections: 100\nread-header-timeout: 2s\nidle_timeout: 15s\n"))
	if err != nil || c.MaxConnections != 100 || c.ReadHeaderTimeout != 2*time.Second || c.IdleTimeout != 15*time.Second {
		t.Errorf("Parse = %d, %v, %v, %v", c.MaxConnections, c.ReadHeaderTimeout, c.IdleTimeout, err)
	}
	if _, err := Parse(strings.NewReader("max-connections: many\n")); err == nil ||
		err.Error() != `config: line 1: max-connections: "many" is not a whole number` {
		t.Errorf("Parse(max-connections: many) = %v", err)
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c, err = Load(fs, []string{"--max-connections", "50", "--idle-timeout", "5s"},
		env(map[string]string{"KEYFORT_MAX_CONNECTIONS": "70", "KEYFORT_READ_HEADER_TIMEOUT": "1s"}))
	if err != nil || c.MaxConnections != 50 || c.IdleTimeout != 5*time.Second || c.ReadHeaderTimeout != time.Second {
		t.Errorf("Load = %d, %v, %v, %v", c.MaxConnections, c.IdleTimeout, c.ReadHeaderTimeout, err)
	}
}

func TestAuditRetentionSettings(t *testing.T) {
	d := Default()
	if d.AuditMaxAge != 0 || d.AuditMaxTotalBytes != 0 || d.AuditMaxFileBytes != 0 {
		t.Errorf("Default() keeps audit files by default: %v, %d, %d", d.AuditMaxAge, d.AuditMaxTotalBytes, d.AuditMaxFileBytes)
	}
	c, err := Parse(strings.NewReader("audit_max_age: 720h\naudit-max-total-size: 1GiB\naudit_max_file_size: 16MiB\n"))
	if err != nil || c.AuditMaxAge != 720*time.Hour || c.AuditMaxTotalBytes != 1<<30 || c.AuditMaxFileBytes != 16<<20 {
		t.Errorf("Parse = %v, %d, %d, %v", c.AuditMaxAge, c.AuditMaxTotalBytes, c.AuditMaxFileBytes, err)
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c, err = Load(fs, []string{"--audit-max-age", "48h"}, env(map[string]string{"KEYFORT_AUDIT_MAX_TOTAL_SIZE": "2GiB"}))
	if err != nil || c.AuditMaxAge != 48*time.Hour || c.AuditMaxTotalBytes != 2<<30 {
		t.Errorf("Load = %v, %d, %v", c.AuditMaxAge, c.AuditMaxTotalBytes, err)
	}
	if d.AuditSync {
		t.Error("Default() fsyncs every audit line")
	}
	for _, c := range []struct {
		args []string
		env  map[string]string
		yaml string
	}{
		{args: []string{"--audit-sync"}},
		{env: map[string]string{"KEYFORT_AUDIT_SYNC": "true"}},
		{yaml: "audit_sync: true\n"},
	} {
		var err error
		var got Config
		if c.yaml != "" {
			got, err = Parse(strings.NewReader(c.yaml))
		} else {
			got, err = Load(flag.NewFlagSet("serve", flag.ContinueOnError), c.args, env(c.env))
		}
		if err != nil || !got.AuditSync {
			t.Errorf("audit sync from %v %v %q = %v, %v; want on", c.args, c.env, c.yaml, got.AuditSync, err)
		}
	}
}

func TestLoadCommand(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "keyfort.yaml")
	if err := os.WriteFile(file, []byte("data: /from/file\nstore: postgres://file/db\nlisten: 127.0.0.1:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("keyfort backup", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	force := fs.Bool("force", false, "replace")
	c, pos, err := LoadCommand(fs, []string{"out.db", "--data", "/from/flag", "--config", file, "--force", "extra"},
		env(map[string]string{"KEYFORT_STORE": "postgres://env/db", "KEYFORT_DATA": "/from/env"}), "data")
	if err != nil {
		t.Fatalf("LoadCommand = %v", err)
	}
	if !reflect.DeepEqual(pos, []string{"out.db", "extra"}) || !*force {
		t.Errorf("positional = %q, force = %v; want [out.db extra] and true", pos, *force)
	}
	if c.DataDir != "/from/flag" || c.Store != "postgres://env/db" || c.Listen != "127.0.0.1:1" {
		t.Errorf("LoadCommand: data %q store %q listen %q; want the flag, the environment and the file", c.DataDir, c.Store, c.Listen)
	}
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name+"="+f.DefValue) })
	if want := []string{"config=", "data=./keyfort-data", "force=false"}; !reflect.DeepEqual(names, want) {
		t.Errorf("flags = %q, want only %q", names, want)
	}
	if _, _, err := LoadCommand(flag.NewFlagSet("x", flag.ContinueOnError), nil, env(nil), "data"); err != nil {
		t.Errorf("LoadCommand without arguments = %v", err)
	}
}
