package server

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/sigv4"
)

// serve runs ts on a loopback listener until the test ends and returns its
// address. Options may change the http.Server before it starts.
func serve(t *testing.T, ts *testServer) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ts.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ts.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown = %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve = %v", err)
		}
	})
	return l.Addr().String()
}

// rawHead is the head of a KMS CreateKey request announcing a body of n
// bytes.
func rawHead(host string, n int) string {
	return "POST / HTTP/1.1\r\nHost: " + host + "\r\nX-Amz-Target: TrentService.CreateKey\r\n" +
		"Content-Type: application/x-amz-json-1.1\r\nAuthorization: " + authHeader("111122223333", "eu-west-1", "kms") +
		"\r\nContent-Length: " + itoa(n) + "\r\n\r\n"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// waitLog waits until the server's logs contain s.
func waitLog(t *testing.T, ts *testServer, s string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strings.Contains(ts.logs.String(), s) {
			return
		}
	}
	t.Fatalf("logs lack %q:\n%s", s, ts.logs.String())
}

func noInternalError(t *testing.T, ts *testServer) {
	t.Helper()
	logs := ts.logs.String()
	if strings.Contains(logs, "internal error") || strings.Contains(logs, "level=ERROR") {
		t.Errorf("a client's fault logged as an internal error:\n%s", logs)
	}
	if strings.Contains(logs, "status=500") {
		t.Errorf("a client's fault answered 500:\n%s", logs)
	}
}

func TestBodyCutShortOrSlow(t *testing.T) {
	tests := []struct {
		name    string
		send    func(c *net.TCPConn, addr string)
		wantMsg string
	}{
		{"short body then half-close", func(c *net.TCPConn, addr string) {
			c.Write([]byte(rawHead(addr, 100) + `{"KeyId":`))
			c.CloseWrite()
		}, "ended before its Content-Length"},
		{"body too slow", func(c *net.TCPConn, addr string) {
			c.Write([]byte(rawHead(addr, 100) + `{"KeyId":`)) // and nothing more: the read timeout ends it
		}, "not received in time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t)
			ts.http.ReadTimeout = 300 * time.Millisecond
			addr := serve(t, ts)
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			tt.send(c.(*net.TCPConn), addr)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("read response: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(body), tt.wantMsg) {
				t.Errorf("body %s, want the message %q", body, tt.wantMsg)
			}
			if resp.StatusCode != 400 || resp.Header.Get("X-Amzn-ErrorType") != "SerializationException" {
				t.Errorf("status %d %q, want 400 SerializationException", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
			}
			waitLog(t, ts, "client's fault")
			noInternalError(t, ts)
		})
	}
}

func TestClientDisconnectsMidBody(t *testing.T) {
	ts := newTestServer(t)
	addr := serve(t, ts)
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte(rawHead(addr, 100) + `{"KeyId":`))
	time.Sleep(50 * time.Millisecond)
	c.(*net.TCPConn).SetLinger(0) // reset, as a client that gives up
	c.Close()
	waitLog(t, ts, "client's fault")
	waitLog(t, ts, "status=400")
	noInternalError(t, ts)
}

func TestClientGoneDuringInvoke(t *testing.T) {
	ts := newTestServer(t)
	addr := serve(t, ts)
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"KeyId":"gone"}`
	head := strings.Replace(rawHead(addr, len(body)), "TrentService.CreateKey", "secretsmanager.PutSecretValue", 1)
	head = strings.Replace(head, "/kms/", "/secretsmanager/", 1)
	c.Write([]byte(head + body))
	time.Sleep(50 * time.Millisecond)
	c.Close()
	waitLog(t, ts, "client went away before the response (client's fault)")
	waitLog(t, ts, "status=499")
	noInternalError(t, ts)
	for deadline := time.Now().Add(5 * time.Second); len(ts.audit.Events()) == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
	}
	if ev := ts.audit.Events(); len(ev) != 1 || ev[0].ErrorCode != "InternalServiceError" {
		t.Errorf("audit events %+v, want one with the service's error code", ev)
	}
}

// fdListener fails its first Accept calls as a process out of file
// descriptors does.
type fdListener struct {
	net.Listener
	fails atomic.Int32
}

func (l *fdListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return l.Listener.Accept()
}

func TestAcceptErrorLoggedAtErrorLevel(t *testing.T) {
	ts := newTestServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &fdListener{Listener: l}
	fl.fails.Store(2)
	done := make(chan error, 1)
	go func() { done <- ts.Serve(fl) }()
	defer func() {
		ts.Shutdown(context.Background())
		<-done
	}()
	resp, err := http.Get("http://" + l.Addr().String() + "/health") // served once the errors are over
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	logs := ts.logs.String()
	if !strings.Contains(logs, `level=ERROR msg="http: Accept error: accept tcp: too many open files`) {
		t.Errorf("accept error not at error level:\n%s", logs)
	}

	// Other net/http lines (here a failed TLS handshake) stay at debug.
	ts.logs.mu.Lock()
	ts.logs.b.Reset()
	ts.logs.mu.Unlock()
	httpErrorLog{ts.log}.Write([]byte("http: TLS handshake error from 127.0.0.1:1234: EOF\n"))
	if logs := ts.logs.String(); !strings.Contains(logs, `level=DEBUG msg="http: TLS handshake error`) {
		t.Errorf("other net/http line:\n%s", logs)
	}
}

// strictAuth is an authenticator that verifies (as strict mode's).
type strictAuth struct{ sigv4.Dev }

func (strictAuth) Verifies() bool { return true }

func TestDevModeHostCheck(t *testing.T) {
	get := func(t *testing.T, addr, host string) *http.Response {
		t.Helper()
		r, _ := http.NewRequest("POST", "http://"+addr+"/", strings.NewReader(`{}`))
		r.Host = host
		r.Header.Set("X-Amz-Target", "TrentService.CreateKey")
		r.Header.Set("Authorization", authHeader("111122223333", "eu-west-1", "kms"))
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	t.Run("dev", func(t *testing.T) {
		ts := newTestServer(t)
		addr := serve(t, ts)
		_, port, _ := net.SplitHostPort(addr)
		for _, host := range []string{addr, "localhost", "LOCALHOST:" + port, "localhost:1", "127.0.0.1", "127.1.2.3:80", "[::1]", "[::1]:4599"} {
			if resp := get(t, addr, host); resp.StatusCode != 200 {
				t.Errorf("Host %q: status %d, want 200", host, resp.StatusCode)
			}
		}
		for _, host := range []string{"evil.example", "evil.example:" + port, "localhost.evil.example", "192.0.2.1:" + port, "127.0.0.1.nip.io", "[::2]"} {
			resp := get(t, addr, host)
			if resp.StatusCode != 403 || resp.Header.Get("X-Amzn-ErrorType") != "AccessDeniedException" {
				t.Errorf("Host %q: status %d %q, want 403 AccessDeniedException", host, resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
			}
		}
		if len(ts.audit.Events()) != 8 {
			t.Errorf("%d audit events, want 8 (refused requests are not served)", len(ts.audit.Events()))
		}
	})
	t.Run("dev on all interfaces", func(t *testing.T) {
		ts := newTestServer(t)
		ts.insecure = true
		l, err := net.Listen("tcp", "0.0.0.0:0")
		if err != nil {
			t.Skip(err)
		}
		go ts.Serve(l)
		defer ts.Shutdown(context.Background())
		_, port, _ := net.SplitHostPort(l.Addr().String())
		addr := "127.0.0.1:" + port
		if resp := get(t, addr, "192.0.2.1:"+port); resp.StatusCode != 200 {
			t.Errorf("an IP address of all interfaces: status %d, want 200", resp.StatusCode)
		}
		if resp := get(t, addr, "evil.example:"+port); resp.StatusCode != 403 {
			t.Errorf("a host name: status %d, want 403", resp.StatusCode)
		}
	})
	t.Run("strict", func(t *testing.T) {
		ts := newTestServer(t)
		ts.auth, ts.devAuth = strictAuth{}, false
		addr := serve(t, ts)
		for _, host := range []string{"evil.example", "kms.internal.example:443", "192.0.2.1"} {
			if resp := get(t, addr, host); resp.StatusCode != 200 {
				t.Errorf("Host %q: status %d, want 200", host, resp.StatusCode)
			}
		}
	})
}

// TestManyIdleConnections opens 2,000 connections that never send a byte
// against a server capped at 100, then checks that a legitimate request is
// still answered promptly, that the server never held more than its cap,
// and that everything closes.
func TestManyIdleConnections(t *testing.T) {
	const (
		capacity = 100
		idle     = 2000
	)
	ts := newTestServer(t, func(c *Config) {
		c.MaxConnections = capacity
		c.ReadHeaderTimeout = 30 * time.Second // longer than the test: only the cap may help
		c.IdleTimeout = 30 * time.Second
	})
	var open, peak atomic.Int32
	hook := ts.http.ConnState
	ts.http.ConnState = func(c net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			n := open.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
		hook(c, st)
	}
	addr := serve(t, ts)

	// A request in progress (its body half sent) is never closed to make
	// room.
	busy, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busy.SetDeadline(time.Now().Add(20 * time.Second))
	body := `{"KeyId":"busy"}`
	busy.Write([]byte(rawHead(addr, len(body)) + body[:5]))
	time.Sleep(100 * time.Millisecond)

	conns := make([]net.Conn, idle)
	var wg sync.WaitGroup
	errs := make(chan error, idle)
	for w := 0; w < 50; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < idle; i += 50 {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					errs <- err
					return
				}
				conns[i] = c
			}
		}(w)
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	close(errs)
	for err := range errs {
		t.Fatalf("dial: %v", err)
	}

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	r, _ := http.NewRequest("POST", "http://"+addr+"/", strings.NewReader(`{"KeyId":"k"}`))
	r.Header.Set("X-Amz-Target", "TrentService.CreateKey")
	r.Header.Set("Authorization", authHeader("111122223333", "eu-west-1", "kms"))
	resp, err := client.Do(r)
	if err != nil {
		t.Fatalf("a legitimate request behind %d idle connections: %v", idle, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	t.Logf("answered in %v behind %d idle connections (cap %d)", took, idle, capacity)
	if resp.StatusCode != 200 {
		t.Errorf("status %d, want 200", resp.StatusCode)
	}
	if took > 3*time.Second {
		t.Errorf("answered in %v, want under 3s", took)
	}
	if p := peak.Load(); p > capacity {
		t.Errorf("the server held %d connections at once, cap %d", p, capacity)
	}

	busy.Write([]byte(body[5:]))
	if resp, err := http.ReadResponse(bufio.NewReader(busy), nil); err != nil {
		t.Errorf("the request in progress: %v", err)
	} else if resp.StatusCode != 200 {
		t.Errorf("the request in progress: status %d, want 200", resp.StatusCode)
	}

	busy.Close()
	for _, c := range conns {
		c.Close()
	}
	for deadline := time.Now().Add(5 * time.Second); open.Load() > 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
	}
	if n := open.Load(); n != 0 {
		t.Errorf("%d connections still open after the clients closed theirs", n)
	}
}

// TestAdminPaths: Config.Admin serves the paths under /keyfort/, after dev
// mode's Host check (a page that rebinds its name cannot reach it either);
// without it they are unknown paths.
func TestAdminPaths(t *testing.T) {
	admin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(299)
		io.WriteString(w, r.URL.Path)
	})
	ts := newTestServer(t, func(c *Config) { c.Admin = admin })
	addr := serve(t, ts)
	do := func(host, path string) (int, string) {
		t.Helper()
		r, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		r.Host = host
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := do(addr, "/keyfort/clock"); status != 299 || body != "/keyfort/clock" {
		t.Errorf("GET /keyfort/clock = %d %q, want the admin handler's 299", status, body)
	}
	for _, p := range []string{"/keyfort", "/keyfortx/clock", "/health/keyfort/"} {
		if status, _ := do(addr, p); status != 404 {
			t.Errorf("GET %s = %d, want 404 (not an admin path)", p, status)
		}
	}
	if status, _ := do("evil.example", "/keyfort/clock"); status != 403 {
		t.Errorf("GET /keyfort/clock with Host evil.example = %d, want 403 (dev mode's Host check)", status)
	}
	plain := newTestServer(t)
	w := httptest.NewRecorder()
	plain.ServeHTTP(w, httptest.NewRequest("GET", "/keyfort/clock", nil))
	if w.Code != 404 {
		t.Errorf("GET /keyfort/clock without Admin = %d, want 404", w.Code)
	}
}
