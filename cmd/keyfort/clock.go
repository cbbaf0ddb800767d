package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/keyfort/keyfort/internal/clock"
)

const clockUsage = `Usage:
  keyfort clock advance DURATION [--endpoint URL] [--ca-bundle FILE]
  keyfort clock show [--endpoint URL] [--ca-bundle FILE]

advance moves the clock of a running server forward by DURATION (8d, 36h,
1d12h; never back) and returns once the work that fell due ran, in order:
keys pending deletion are deleted, automatic key rotations happen, secrets
past their recovery window are deleted and scheduled secret rotations run.
show prints the server's time and how far it is ahead of real time.
Only a server in dev auth mode listening on a loopback address accepts it.
`

// clockTimeout bounds one request to the server: an advance waits for the
// rotation webhooks it calls.
const clockTimeout = 5 * time.Minute

// clockCmd runs `keyfort clock advance|show`: 0 on success, 1 when the
// server refuses or cannot be reached, 2 for bad usage.
func clockCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, clockUsage)
		return 2
	}
	sub := args[0]
	switch sub {
	case "advance", "show":
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, clockUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "keyfort: unknown command clock %q (try keyfort clock help)\n", sub)
		return 2
	}
	fs := flag.NewFlagSet("keyfort clock "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	endpoint := fs.String("endpoint", "http://127.0.0.1:4599", "the `URL` of the running Keyfort server")
	caBundle := fs.String("ca-bundle", "", "a PEM `FILE` of the CA to trust for an https endpoint\n(for --tls-self-signed: <data>/tls/ca.pem)")
	fs.Usage = func() {
		if sub == "advance" {
			fmt.Fprint(fs.Output(), "Usage: keyfort clock advance DURATION [flags]\n\nMoves the server's clock forward by DURATION (8d, 36h, 1d12h) and runs the work that fell due.\n\nFlags:\n")
		} else {
			fmt.Fprint(fs.Output(), "Usage: keyfort clock show [flags]\n\nPrints the server's time and how far it is ahead of real time.\n\nFlags:\n")
		}
		fs.PrintDefaults()
	}
	for _, a := range args[1:] {
		if len(a) > 1 && a[0] == '-' && a[1] >= '0' && a[1] <= '9' {
			fmt.Fprintf(stderr, "keyfort: duration %q is negative: the clock only moves forward\n", a)
			return 2
		}
	}
	pos, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2 // printed by fs, with the usage
	}
	want := 0
	if sub == "advance" {
		want = 1
	}
	if len(pos) != want {
		if want == 1 {
			fmt.Fprintln(stderr, "keyfort: usage: keyfort clock advance DURATION [--endpoint URL] (DURATION such as 8d, 36h or 1d12h)")
		} else {
			fmt.Fprintf(stderr, "keyfort: usage: keyfort clock show [--endpoint URL] (unexpected %q)\n", pos[0])
		}
		return 2
	}
	base, err := clockEndpoint(*endpoint)
	if err != nil {
		fmt.Fprintln(stderr, "keyfort: --endpoint:", err)
		return 2
	}
	client, err := clockClient(*caBundle)
	if err != nil {
		fmt.Fprintln(stderr, "keyfort: --ca-bundle:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, clockTimeout)
	defer cancel()

	var req *http.Request
	if sub == "advance" {
		d, err := clock.ParseDuration(pos[0])
		if err != nil {
			fmt.Fprintln(stderr, "keyfort:", err)
			return 2
		}
		body := `{"duration":` + strconv.Quote(pos[0]) + `}`
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, base+clock.PathAdvance, strings.NewReader(body))
		if err != nil {
			fmt.Fprintln(stderr, "keyfort: clock advance:", err)
			return 1
		}
		req.Header.Set("Content-Type", "application/json")
		st, ok := clockDo(client, req, stderr, "clock advance")
		if !ok {
			return 1
		}
		fmt.Fprintf(stdout, "clock advanced by %s: now %s, %s ahead of real time (due work ran in %d steps)\n",
			clock.FormatDuration(d), st.Now.UTC().Format(time.RFC3339), st.Offset, st.Steps)
		return 0
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, base+clock.PathShow, nil)
	if err != nil {
		fmt.Fprintln(stderr, "keyfort: clock show:", err)
		return 1
	}
	st, ok := clockDo(client, req, stderr, "clock show")
	if !ok {
		return 1
	}
	fmt.Fprintf(stdout, "now %s, %s ahead of real time\n", st.Now.UTC().Format(time.RFC3339), st.Offset)
	return 0
}

// parseInterspersed parses flags placed before, between or after the
// positional arguments (`advance 8d --endpoint URL`), which flag.Parse
// alone stops at, and returns the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

// clockEndpoint checks the --endpoint URL and returns it without a
// trailing slash.
func clockEndpoint(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http:// or https:// URL such as http://127.0.0.1:4599", s)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q: give the server's base URL, such as http://127.0.0.1:4599, without a path", s)
	}
	return u.Scheme + "://" + u.Host, nil
}

// clockClient returns the HTTP client of the clock commands: it trusts the
// CAs of caFile, if given, instead of the system's.
func clockClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // the server is on this machine
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no PEM certificate in %s", caFile)
		}
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	}
	return &http.Client{Transport: tr, Timeout: clockTimeout}, nil
}

// clockDo sends req and reads the clock's State; on failure it prints one
// line naming what went wrong.
func clockDo(client *http.Client, req *http.Request, stderr io.Writer, what string) (clock.State, bool) {
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "keyfort: %s: cannot reach %s: %v\n", what, req.URL.Host, unwrapURLError(err))
		return clock.State{}, false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		fmt.Fprintf(stderr, "keyfort: %s: reading the answer: %v\n", what, err)
		return clock.State{}, false
	}
	if resp.StatusCode != http.StatusOK {
		var e clock.ErrorBody
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			fmt.Fprintf(stderr, "keyfort: %s: the server answered %s (is %s a Keyfort server of this version?)\n", what, resp.Status, req.URL.Host)
			return clock.State{}, false
		}
		fmt.Fprintf(stderr, "keyfort: %s: %s (HTTP %d)\n", what, e.Error, resp.StatusCode)
		return clock.State{}, false
	}
	var st clock.State
	if err := json.Unmarshal(b, &st); err != nil || st.Now.IsZero() {
		fmt.Fprintf(stderr, "keyfort: %s: the answer is not the clock's: %.200s\n", what, b)
		return clock.State{}, false
	}
	return st, true
}

// unwrapURLError drops *url.Error's repetition of the method and URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
