package server

import (
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// refConnLimiter is connLimiter's bookkeeping as it was, under one mutex
// with a map, kept as the reference of TestConnLimiterEviction.
type refConnLimiter struct {
	sem   chan struct{}
	grace time.Duration
	mu    sync.Mutex
	conns map[net.Conn]*refConnInfo
}

type refConnInfo struct {
	state   http.ConnState
	since   time.Time
	evicted bool
}

func (cl *refConnLimiter) connState(c net.Conn, st http.ConnState) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	switch st {
	case http.StateNew:
		cl.conns[c] = &refConnInfo{state: st, since: time.Now()}
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

// evictOne is the old choice of evictOne, returning the connection instead
// of closing it.
func (cl *refConnLimiter) evictOne() net.Conn {
	now := time.Now()
	cl.mu.Lock()
	defer cl.mu.Unlock()
	var (
		oldest net.Conn
		info   *refConnInfo
	)
	for c, ci := range cl.conns {
		if ci.evicted || ci.state == http.StateActive || now.Sub(ci.since) < cl.grace {
			continue
		}
		if info == nil || ci.since.Before(info.since) {
			oldest, info = c, ci
		}
	}
	if info != nil {
		info.evicted = true
	}
	return oldest
}

// fakeConn records its Close.
type fakeConn struct {
	net.Conn
	id     int
	closed *int // the id of the last closed connection
}

func (c *fakeConn) Close() error             { *c.closed = c.id; return nil }
func (c *fakeConn) RemoteAddr() net.Addr     { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: c.id} }
func (c *fakeConn) String() string           { return "conn" }
func (c *fakeConn) LocalAddr() net.Addr      { return c.RemoteAddr() }
func (c *fakeConn) Read([]byte) (int, error) { return 0, nil }

// TestConnLimiterEviction drives connLimiter and the reference with the
// same random connection states (new, active, idle, closed, hijacked) and
// checks that evictOne closes the same connection as the reference picks
// (the one waiting longest, never an active or already evicted one, none
// within the grace period), each step apart in time.
func TestConnLimiterEviction(t *testing.T) {
	for _, grace := range []time.Duration{0, time.Hour} {
		rnd := rand.New(rand.NewPCG(1, uint64(grace)))
		closed := -1
		cl := newConnLimiter(1000, slog.New(slog.DiscardHandler))
		cl.grace = grace
		ref := &refConnLimiter{sem: make(chan struct{}, 1000), grace: grace, conns: make(map[net.Conn]*refConnInfo)}
		var conns []*fakeConn
		open := map[*fakeConn]bool{}
		states := []http.ConnState{http.StateActive, http.StateIdle, http.StateIdle, http.StateClosed, http.StateHijacked}
		evictions := 0
		for step := 0; step < 600; step++ {
			time.Sleep(20 * time.Microsecond) // each step at a later time
			switch n := rnd.IntN(10); {
			case n < 3 || len(open) == 0:
				c := &fakeConn{id: len(conns), closed: &closed}
				conns = append(conns, c)
				open[c] = true
				cl.sem <- struct{}{}
				ref.sem <- struct{}{}
				cl.connState(c, http.StateNew)
				ref.connState(c, http.StateNew)
			case n < 8:
				c := conns[rnd.IntN(len(conns))]
				if !open[c] {
					continue
				}
				st := states[rnd.IntN(len(states))]
				if st == http.StateClosed || st == http.StateHijacked {
					delete(open, c)
				}
				cl.connState(c, st)
				ref.connState(c, st)
			default:
				want := ref.evictOne()
				closed = -1
				cl.evictOne()
				wantID := -1
				if want != nil {
					wantID = want.(*fakeConn).id
					evictions++
				}
				if closed != wantID {
					t.Fatalf("grace %v, step %d: evictOne closed conn %d, the reference picks %d", grace, step, closed, wantID)
				}
			}
		}
		if len(cl.sem) != len(ref.sem) {
			t.Errorf("grace %v: %d slots taken, the reference %d", grace, len(cl.sem), len(ref.sem))
		}
		if grace == 0 && evictions < 20 || grace > 0 && evictions > 0 {
			t.Errorf("grace %v: %d evictions", grace, evictions)
		}
	}
}

func BenchmarkConnState(b *testing.B) {
	cl := newConnLimiter(100, slog.New(slog.DiscardHandler))
	benchConnState(b, cl.sem, cl.connState)
}

func BenchmarkRefConnState(b *testing.B) {
	cl := &refConnLimiter{sem: make(chan struct{}, 100), conns: make(map[net.Conn]*refConnInfo)}
	benchConnState(b, cl.sem, cl.connState)
}

// benchConnState runs a request's Active and Idle transitions through a
// ConnState hook, one connection per goroutine.
func benchConnState(b *testing.B, sem chan struct{}, connState func(net.Conn, http.ConnState)) {
	b.RunParallel(func(pb *testing.PB) {
		c := &fakeConn{}
		sem <- struct{}{}
		connState(c, http.StateNew)
		for pb.Next() {
			connState(c, http.StateActive)
			connState(c, http.StateIdle)
		}
		connState(c, http.StateClosed)
	})
}
