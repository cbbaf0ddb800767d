package postgres

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyfort/keyfort/internal/storage"
)

// Change notifications across nodes ([storage.ChangeNotifier]).
//
// Every Update that writes records sends, inside its transaction, one
// NOTIFY on the store's channel naming them; PostgreSQL delivers it to every
// listening session when, and only if, the transaction commits. Each Store
// keeps one connection of its own that LISTENs and calls the subscribers.
// The committing node calls its own subscribers directly after COMMIT (as
// the embedded store does) and ignores the echo.
//
// Sync is the barrier that makes the caches exact: it sends a NOTIFY of its
// own (a "barrier", on a channel only this store listens to, so that other
// nodes do not pay for it) and returns when that notification comes back on
// the listening connection. PostgreSQL appends the notifications of a
// committing transaction to one queue before the commit is acknowledged,
// and a listener reads that queue in order, never past an entry of a
// transaction still in progress. So every change whose Update returned
// before Sync was called is queued before the barrier and has reached the
// subscribers when Sync returns. Concurrent Sync calls share one barrier
// (a call joins only a barrier not yet sent), so under load a barrier costs
// a fraction of a round trip per request.
//
// When the listening connection is lost, no notification can be trusted
// until a new one LISTENs: Sync waits; once listening again, the
// subscribers are told that anything may have changed (kind "") and every
// waiting Sync returns.

// maxPayload keeps a NOTIFY under PostgreSQL's limit of 8000 bytes; a
// transaction whose changes do not fit tells the other nodes that anything
// may have changed instead.
const maxPayload = 7000

// notifier is the listening half of a Store.
type notifier struct {
	pool    *pgxpool.Pool
	channel string // the store's channel (derived from database and schema)
	node    string // this Store's id: its own changes are not delivered twice
	logger  *slog.Logger

	subMu sync.Mutex
	subs  []func(kind storage.Kind, scope storage.Scope, id string)

	mu        sync.Mutex
	started   bool
	listening bool
	seq       uint64
	next      *barrier            // the barrier new Sync calls join (not yet sent)
	sending   bool                // a goroutine is sending barriers
	waiting   map[string]*barrier // sent barriers by token, until they come back
	stop      context.CancelFunc
	stopped   chan struct{}
	// kick ends the current listening connection, so that a new one
	// starts over (a barrier that does not come back on a connection that
	// seems alive).
	kick context.CancelFunc
}

// barrier is one round of Sync calls.
type barrier struct {
	done    chan struct{}
	waiters int // Sync calls still waiting on it (guarded by notifier.mu)
}

// channelName derives the notification channel from the database and the
// schema the store's tables live in, so that stores in other schemas of the
// same database (tests, several deployments) do not hear each other.
func channelName(ctx context.Context, pool *pgxpool.Pool) (string, error) {
	var db, schema string
	if err := pool.QueryRow(ctx, "SELECT current_database(), current_schema()").Scan(&db, &schema); err != nil {
		return "", fmt.Errorf("notification channel: %w", err)
	}
	sum := sha256.Sum256([]byte(db + "\x00" + schema))
	return "keyfort_" + hex.EncodeToString(sum[:12]), nil
}

func newNotifier(pool *pgxpool.Pool, channel string, logger *slog.Logger) *notifier {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return &notifier{pool: pool, channel: channel, node: hex.EncodeToString(b), logger: logger,
		waiting: make(map[string]*barrier)}
}

// barrierChannel is the channel of this store's barriers (63 bytes at
// most: PostgreSQL's limit on a name).
func (n *notifier) barrierChannel() string { return n.channel + "_" + n.node }

// subscribe registers fn and starts listening (once).
func (n *notifier) subscribe(fn func(kind storage.Kind, scope storage.Scope, id string)) {
	n.add(fn)
	n.start()
}

// add registers fn for this Store's own commits.
func (n *notifier) add(fn func(kind storage.Kind, scope storage.Scope, id string)) {
	n.subMu.Lock()
	n.subs = append(n.subs[:len(n.subs):len(n.subs)], fn)
	n.subMu.Unlock()
}

func (n *notifier) start() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.started {
		return
	}
	n.started = true
	ctx, cancel := context.WithCancel(context.Background())
	n.stop = cancel
	n.stopped = make(chan struct{})
	go n.listen(ctx)
}

// close stops listening; waiting Sync calls return when their contexts end.
func (n *notifier) close() {
	n.mu.Lock()
	stop, stopped := n.stop, n.stopped
	n.mu.Unlock()
	if stop != nil {
		stop()
		<-stopped
	}
}

// tell calls the subscribers for each change (kind "" for all).
func (n *notifier) tell(changes []change) {
	n.subMu.Lock()
	subs := n.subs
	n.subMu.Unlock()
	for _, c := range changes {
		for _, fn := range subs {
			fn(c.kind, c.scope, c.id)
		}
	}
}

// listen keeps one LISTENing connection, reconnecting after a loss.
func (n *notifier) listen(ctx context.Context) {
	defer close(n.stopped)
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		err := n.listenOnce(ctx)
		n.mu.Lock()
		if n.listening {
			backoff = 50 * time.Millisecond // it had listened: a new loss
		}
		n.listening = false
		n.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		n.logger.Warn("postgres: change notifications interrupted; caches wait until listening again", "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func (n *notifier) listenOnce(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n.mu.Lock()
	n.kick = cancel
	n.mu.Unlock()
	conn, err := pgx.ConnectConfig(ctx, n.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// The store's channel, and this store's own for its barriers: other
	// nodes do not hear them, yet they are queued in the one queue of every
	// notification, behind every change committed before them.
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{n.channel}.Sanitize()+"; LISTEN "+pgx.Identifier{n.barrierChannel()}.Sanitize()); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Whatever changed while nobody listened is unknown: every subscriber
	// starts over, then every barrier sent so far is released (those sent
	// before LISTEN may never come back; the reset covers them).
	n.tell([]change{{}})
	n.mu.Lock()
	n.listening = true
	for tok, b := range n.waiting {
		close(b.done)
		delete(n.waiting, tok)
	}
	n.mu.Unlock()
	for {
		msg, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait: %w", err)
		}
		n.received(msg.Payload)
	}
}

// received handles one payload: "b <token>" (a barrier), "c <node> <fields>"
// (changes) or "r <node>" (anything may have changed).
func (n *notifier) received(p string) {
	kind, rest, _ := strings.Cut(p, " ")
	switch kind {
	case "b":
		n.mu.Lock()
		if b := n.waiting[rest]; b != nil {
			close(b.done)
			delete(n.waiting, rest)
		}
		n.mu.Unlock()
	case "c", "r":
		node, fields, _ := strings.Cut(rest, " ")
		if node == n.node {
			return // told at commit
		}
		if kind == "r" {
			n.tell([]change{{}})
			return
		}
		changes, err := decodeChanges(fields)
		if err != nil {
			n.logger.Warn("postgres: malformed change notification; caches start over", "err", err)
			changes = []change{{}}
		}
		n.tell(changes)
	}
}

// sync implements [storage.ChangeNotifier.Sync].
func (n *notifier) sync(ctx context.Context) (err error) {
	n.start()
	n.mu.Lock()
	b := n.next
	if b == nil {
		b = &barrier{done: make(chan struct{})}
		n.next = b
	}
	b.waiters++
	if !n.sending {
		n.sending = true
		go n.send(context.WithoutCancel(ctx))
	}
	n.mu.Unlock()
	t := time.NewTimer(syncTimeout)
	defer t.Stop()
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-t.C:
		err = fmt.Errorf("not in step with the store's changes after %s (is the listening connection down?)", syncTimeout)
	}
	n.mu.Lock()
	b.waiters--
	n.mu.Unlock()
	return fmt.Errorf("postgres: sync: %w", err)
}

// syncTimeout bounds a Sync: a store that cannot confirm it has heard every
// other node's changes (e.g. while it listens anew) fails the request rather
// than hang it.
const syncTimeout = 10 * time.Second

// echoTimeout is how long a sent barrier may take to come back on a
// listening connection before that connection is taken for dead.
const echoTimeout = 5 * time.Second

// send sends the barriers that Sync calls wait for, one at a time, until
// none is wanted.
func (n *notifier) send(ctx context.Context) {
	failures := 0
	for {
		n.mu.Lock()
		b := n.next
		n.next = nil
		if b == nil {
			n.sending = false
			n.mu.Unlock()
			return
		}
		n.seq++
		tok := n.node + "." + strconv.FormatUint(n.seq, 10)
		n.waiting[tok] = b
		n.mu.Unlock()
		// Simple protocol, one implicit transaction: the barrier carries no
		// data, so its commit need not wait for the disk.
		_, err := n.pool.Exec(ctx, "SET LOCAL synchronous_commit = off; SELECT pg_notify('"+n.barrierChannel()+"', 'b "+tok+"')")
		if err == nil {
			failures = 0
			// One barrier in flight at a time: the calls that arrive
			// meanwhile share the next one.
			t := time.NewTimer(echoTimeout)
			select {
			case <-b.done:
			case <-t.C:
				n.mu.Lock()
				kick, listening := n.kick, n.listening
				n.mu.Unlock()
				if listening && kick != nil {
					n.logger.Warn("postgres: a sync barrier did not come back; listening anew (a pooler in transaction mode, such as PgBouncer's, does not deliver notifications: give Keyfort a direct or session-pooled connection)", "after", echoTimeout)
					kick() // the new connection starts over and releases b
				}
			}
			t.Stop()
			continue
		}
		failures++
		if failures == 1 || failures%100 == 0 {
			n.logger.Warn("postgres: sync barrier not sent; retrying while requests wait", "err", err, "failures", failures)
		}
		n.mu.Lock()
		delete(n.waiting, tok)
		switch {
		case b.waiters == 0:
			close(b.done) // nobody waits any more
		case n.next == nil:
			n.next = b
		default:
			// Merge: b's callers wait on the next barrier's round.
			nb := n.next
			nb.waiters += b.waiters
			go func() { <-nb.done; close(b.done) }()
		}
		n.mu.Unlock()
		time.Sleep(min(time.Duration(failures)*50*time.Millisecond, time.Second))
	}
}

// change names one record an Update wrote; the zero change means "any
// record may have changed".
type change struct {
	kind  storage.Kind
	scope storage.Scope
	id    string
}

// payload encodes changes for the other nodes: "c <node> " then each field
// as its length, ':' and its bytes. Too many changes for one NOTIFY become
// "r <node>".
func (n *notifier) payload(changes []change) string {
	var b strings.Builder
	b.WriteString("c ")
	b.WriteString(n.node)
	b.WriteByte(' ')
	for _, c := range changes {
		for _, f := range [...]string{string(c.kind), c.scope.Account, c.scope.Region, c.id} {
			b.WriteString(strconv.Itoa(len(f)))
			b.WriteByte(':')
			b.WriteString(f)
		}
		if b.Len() > maxPayload {
			return "r " + n.node
		}
	}
	return b.String()
}

func decodeChanges(s string) ([]change, error) {
	var out []change
	for s != "" {
		var f [4]string
		for i := range f {
			l, rest, ok := strings.Cut(s, ":")
			size, err := strconv.Atoi(l)
			if !ok || err != nil || size < 0 || size > len(rest) {
				return nil, errors.New("bad field length")
			}
			f[i], s = rest[:size], rest[size:]
		}
		out = append(out, change{kind: storage.Kind(f[0]), scope: storage.Scope{Account: f[1], Region: f[2]}, id: f[3]})
	}
	return out, nil
}
