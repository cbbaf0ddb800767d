package server

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
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
//
// The ConnState hook runs twice per request (active, idle): it finds the
// connection in a sync.Map, whose loads take no lock, and sets its state
// and time with one atomic store.
type connLimiter struct {
	sem   chan struct{} // one value per open connection
	grace time.Duration
	log   *slog.Logger
	start time.Time // origin of the connections' times (monotonic)

	conns sync.Map // net.Conn -> *connInfo

	mu       sync.Mutex // serializes evictOne
	lastWarn time.Time
}

type connInfo struct {
	// at is when the connection entered its state, in nanoseconds since
	// the limiter's start, shifted left by one; the low bit is set while
	// a request is in progress (StateActive). A connection's states are
	// set by its own goroutine, one at a time.
	at      atomic.Int64
	evicted bool // closed by the limiter, its slot comes back on StateClosed; under mu
}

// activeBit marks connInfo.at of a connection with a request in progress.
const activeBit = 1

// stamp is the time, in nanoseconds since the limiter's start.
func (cl *connLimiter) stamp() int64 { return int64(time.Since(cl.start)) }

// evictGrace is how long a connection is spared after it is accepted or
// goes idle.
const evictGrace = 25 * time.Millisecond

func newConnLimiter(max int, log *slog.Logger) *connLimiter {
	return &connLimiter{
		sem:   make(chan struct{}, max),
		grace: evictGrace,
		log:   log,
		start: time.Now(),
	}
}

// connState is the http.Server's ConnState hook.
func (cl *connLimiter) connState(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		ci := new(connInfo)
		ci.at.Store(cl.stamp() << 1)
		cl.conns.Store(c, ci)
	case http.StateActive:
		// An active connection is never evicted, whatever its time: the
		// time is set when it goes idle.
		if v, ok := cl.conns.Load(c); ok {
			ci := v.(*connInfo)
			ci.at.Store(ci.at.Load() | activeBit)
		}
	case http.StateIdle:
		if v, ok := cl.conns.Load(c); ok {
			v.(*connInfo).at.Store(cl.stamp() << 1)
		}
	case http.StateClosed, http.StateHijacked:
		if _, ok := cl.conns.LoadAndDelete(c); ok {
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
	now, wall := cl.stamp(), time.Now()
	cl.mu.Lock()
	var (
		oldest net.Conn
		info   *connInfo
		since  int64
	)
	cl.conns.Range(func(k, v any) bool {
		ci := v.(*connInfo)
		at := ci.at.Load()
		if ci.evicted || at&activeBit != 0 || now-at>>1 < int64(cl.grace) {
			return true
		}
		if info == nil || at>>1 < since {
			oldest, info, since = k.(net.Conn), ci, at>>1
		}
		return true
	})
	warn := false
	if wall.Sub(cl.lastWarn) >= time.Minute {
		cl.lastWarn, warn = wall, true
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
