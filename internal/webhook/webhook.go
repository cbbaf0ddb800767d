// Package webhook delivers Secrets Manager rotation steps to HTTP webhooks.
//
// Keyfort cannot run AWS Lambda functions. The operator maps each rotation
// Lambda ARN to a webhook URL (the rotation_webhooks setting); an Invoker
// POSTs the JSON event AWS would pass to the Lambda function
// ({"Step", "SecretId", "ClientRequestToken", "RotationToken"}) to that URL.
// The webhook does the work of the step by calling Keyfort's Secrets
// Manager API, as a rotation Lambda calls AWS, and answers 2xx on success.
//
// An Invoker contacts only the configured URLs: it does not follow
// redirects, bounds each call with a timeout and reads at most a small part
// of the answer. Its errors name the function and the HTTP status, never
// the URL (it may hold a credential) or the answer's body.
package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Defaults.
const (
	// DefaultTimeout bounds one step; four steps fit well within a
	// request's 60-second write timeout.
	DefaultTimeout = 10 * time.Second
	// maxAnswer is how much of an answer is read (and discarded) so the
	// connection can be reused.
	maxAnswer = 64 << 10
)

// Options configure an Invoker.
type Options struct {
	// Timeout bounds each call; 0 means DefaultTimeout.
	Timeout time.Duration
	// Transport sends the requests; nil means a transport of the
	// Invoker's own.
	Transport http.RoundTripper
}

// Invoker delivers rotation events to webhooks. It is safe for concurrent
// use.
type Invoker struct {
	targets map[string]string
	client  *http.Client
	timeout time.Duration
}

// CheckURL reports whether u is a URL an Invoker can call: absolute, http
// or https, with a host. The error does not repeat the URL.
func CheckURL(u string) error {
	p, err := url.Parse(u)
	if err != nil {
		return errors.New("not a valid URL")
	}
	if p.Scheme != "http" && p.Scheme != "https" {
		return errors.New("must be an http:// or https:// URL")
	}
	if p.Host == "" || p.Hostname() == "" {
		return errors.New("has no host")
	}
	if p.Fragment != "" {
		return errors.New("must not have a #fragment")
	}
	return nil
}

// New returns an Invoker for targets (Lambda function ARN -> webhook URL).
func New(targets map[string]string, opts Options) (*Invoker, error) {
	inv := &Invoker{targets: make(map[string]string, len(targets)), timeout: opts.Timeout}
	for arn, u := range targets {
		if arn == "" {
			return nil, errors.New("webhook: empty function ARN")
		}
		if err := CheckURL(u); err != nil {
			return nil, fmt.Errorf("webhook: URL of %s: %w", arn, err)
		}
		inv.targets[arn] = u
	}
	if inv.timeout <= 0 {
		inv.timeout = DefaultTimeout
	}
	tr := opts.Transport
	if tr == nil {
		tr = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   inv.timeout,
			ResponseHeaderTimeout: inv.timeout,
		}
	}
	inv.client = &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // only the configured URL is called
		},
	}
	return inv, nil
}

// CanInvoke reports whether a webhook is configured for lambdaARN.
func (i *Invoker) CanInvoke(lambdaARN string) bool {
	_, ok := i.targets[lambdaARN]
	return ok
}

// Invoke POSTs event (JSON) to the webhook of lambdaARN and returns nil when
// it answers 2xx.
func (i *Invoker) Invoke(ctx context.Context, lambdaARN string, event []byte) error {
	u, ok := i.targets[lambdaARN]
	if !ok {
		return fmt.Errorf("webhook: no webhook for function %s", lambdaARN)
	}
	ctx, cancel := context.WithTimeout(ctx, i.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(event))
	if err != nil {
		return fmt.Errorf("webhook: function %s: build request: %w", lambdaARN, stripURL(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "keyfort-rotation")
	resp, err := i.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: function %s: %w", lambdaARN, stripURL(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook: function %s: answered HTTP %d", lambdaARN, resp.StatusCode)
	}
	return nil
}

// stripURL drops the URL from a *url.Error, keeping its cause.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
