package server

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// connLimiter caps the connections the server holds open. Its listeners
// take a slot before each Accept, and the http.Server's ConnState hook
// gives it back when the connection closes; the connections themselves are
// not wrapped, so net/http still sees a *tls.Conn as one.
//
// When every slot is taken, the limiter makes room by closing the
// connection that has waited longest without a request in progress: idle
// between requests (keep-alive) or not yet done sending its request's
// header. A connection is spared for its first evictGrace in that state,
// time enough for a legitimate client, which sends its request at once, to
// start being served. So idle connections, however many, delay a new one
// by little more than the time to close as many of them as are queued
// before it; connections whose requests are in progress are never closed
// and, when they fill every slot, new ones wait in the kernel's queue.
type connLimiter struct {
	sem   chan struct{} // one value per open connection
	grace time.Duration
	log   *slog.Logger

	mu       sync.Mutex
	conns    map[net.Conn]*connInfo
	lastWarn time.Time
}

type connInfo struct {
	state   http.ConnState
	since   time.Time // when the connection entered state
	evicted bool      // closed by the limiter; its slot comes back on StateClosed
}

// evictGrace is how long a connection is spared after it is accepted or
// goes idle.
const evictGrace = 25 * time.Millisecond

func newConnLimiter(max int, log *slog.Logger) *connLimiter {
	return &connLimiter{
		sem:   make(chan struct{}, max),
		grace: evictGrace,
		log:   log,
		conns: make(map[net.Conn]*connInfo),
	}
}

// connState is the http.Server's ConnState hook.
func (cl *connLimiter) connState(c net.Conn, st http.ConnState) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	switch st {
	case http.StateNew:
		cl.conns[c] = &connInfo{state: st, since: time.Now()}
	case http.StateActive, http.StateIdle:
		if ci := cl.conns[c]; ci != nil {
			ci.state, ci.since = st, time.Now()
		}
	case http.StateClosed, http.StateHijacked:
		if _, ok := cl.conns[c]; ok {
			delete(cl.conns, c)
			<-cl.sem
		}
	}
}

// acquire takes a slot, closing the oldest waiting connection when there
// is none, until it gets one or done is closed.
func (cl *connLimiter) acquire(done <-chan struct{}) error {
	for {
		select {
		case cl.sem <- struct{}{}:
			return nil
		default:
		}
		cl.evictOne()
		t := time.NewTimer(cl.grace)
		select {
		case cl.sem <- struct{}{}:
			t.Stop()
			return nil
		case <-done:
			t.Stop()
			return net.ErrClosed
		case <-t.C:
		}
	}
}

// evictOne closes the connection that has waited longest, idle or before
// its first request, if it has waited at least the grace period.
func (cl *connLimiter) evictOne() {
	now := time.Now()
	cl.mu.Lock()
	var (
		oldest net.Conn
		info   *connInfo
	)
	for c, ci := range cl.conns {
		if ci.evicted || ci.state == http.StateActive || now.Sub(ci.since) < cl.grace {
			continue
		}
		if info == nil || ci.since.Before(info.since) {
			oldest, info = c, ci
		}
	}
	warn := false
	if now.Sub(cl.lastWarn) >= time.Minute {
		cl.lastWarn, warn = now, true
	}
	if info != nil {
		info.evicted = true
	}
	cl.mu.Unlock()
	if warn {
		cl.log.LogAttrs(context.Background(), slog.LevelWarn, "connection limit reached: closing idle connections to accept new ones",
			slog.Int("max_connections", cap(cl.sem)))
	}
	if oldest != nil {
		cl.log.LogAttrs(context.Background(), slog.LevelDebug, "closed a waiting connection at the connection limit",
			slog.String("remote", oldest.RemoteAddr().String()))
		_ = oldest.Close()
	}
}

// listener returns l limited by cl.
func (cl *connLimiter) listener(l net.Listener) net.Listener {
	return &limitListener{Listener: l, cl: cl, done: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	cl   *connLimiter
	once sync.Once
	done chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	if err := l.cl.acquire(l.done); err != nil {
		return nil, err
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.cl.sem
		return nil, err
	}
	return c, nil
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}
