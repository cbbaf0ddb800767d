package audit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/uuid"
)

// Committer is implemented by sinks that keep the trail in the store: the
// server calls Pending for every request that may change the store, so that
// the request's event commits with its change (see storage.PendingEvent).
type Committer interface {
	// Pending returns ctx carrying the event event() makes, to be committed
	// by the request's first Store.Update that commits.
	Pending(ctx context.Context, event func() *Event) context.Context
}

// TrailOptions configures a Trail.
type TrailOptions struct {
	// File configures the JSON-lines files.
	File FileOptions
	// Linger is how long the shipper gathers events before it stores
	// them (0 means 20ms).
	Linger time.Duration
	// MaxAge is how long the store keeps events for LookupEvents (0 means
	// 90 days, as CloudTrail's event history); Prune deletes older ones.
	MaxAge time.Duration
	// Now is the clock (nil means time.Now).
	Now func() time.Time
	// Logger reports what cannot fail a request (nil discards).
	Logger *slog.Logger
	// Lazy leaves the store behind the files until CatchUp (which
	// LookupEvents and the jobs call) ships what was written since: for a
	// store of one node, where nothing else reads the events, so that no
	// request pays for storing them. Without Lazy every event is shipped
	// within Linger of its write, so every node of a shared store sees it.
	Lazy bool
}

// DefaultMaxAge is how long the store keeps events by default: CloudTrail's
// event history covers the past 90 days.
const DefaultMaxAge = 90 * 24 * time.Hour

// checkpointName is the file in the audit directory that records how far
// the files have been shipped to the store; nodeName holds the node id.
const (
	checkpointName = ".shipped"
	nodeName       = ".node"
)

// Trail is the audit trail: every event is written to the JSON-lines files
// (FileSink) and kept in the store, which LookupEvents reads and which every
// node of a shared store sees.
//
//   - The event of a request that changes the store is committed in the
//     change's transaction (Pending), so no change is ever committed
//     without its event; its complete form (with the response) follows.
//   - Every event is written to the file before the response and then
//     shipped to the store in batches, in file order; a checkpoint file
//     records how far, so that a restart ships what a crash left behind.
//     A Lazy trail ships only when asked (CatchUp: LookupEvents), so that
//     no request pays for it where no other node reads the store.
//   - At open, and in Finish, the events a crash left incomplete in the
//     store whose line is in no file (a change committed, the process gone
//     before its line was written) are written to the file and completed.
type Trail struct {
	file   *FileSink
	store  storage.Trail
	node   string
	dir    string
	linger time.Duration
	maxAge time.Duration
	now    func() time.Time
	log    *slog.Logger
	lazy   bool

	catchMu sync.Mutex // one CatchUp at a time

	mu       sync.Mutex
	cond     sync.Cond // on mu: items queued, items shipped, closing
	items    []shipItem
	cur      *fileRef // the current file, renamed when rotated
	queued   uint64   // items queued so far
	shipped  uint64   // items shipped so far
	overflow bool     // items were dropped: the checkpoint must not move
	closing  bool
	done     chan struct{}
	lastCP   time.Time
	// cpName and cpOff are the checkpoint (as in the checkpoint file):
	// every line before cpOff in file cpName, and every earlier file, is
	// in the store.
	cpName string
	cpOff  int64
	cpOK   bool

	failed atomic.Bool // a committed change's event missed the file
}

// shipItem is one group of records written to the file together.
type shipItem struct {
	recs []*storage.EventRecord
	file *fileRef // nil: not in a file (its position is not a checkpoint)
	end  int64
}

// fileRef names the file items were written to; rotation renames it.
type fileRef struct{ name string }

// maxQueued bounds the items waiting for the store; past it, items are
// dropped from memory (they are in the files, and the next start ships
// them from the checkpoint).
const maxQueued = 100_000

// maxShip is the most records one PutEvents stores.
const maxShip = 1000

// OpenTrail opens the files in dir, ships to store what the files hold
// past the checkpoint, completes this node's incomplete events, and starts
// shipping.
func OpenTrail(ctx context.Context, dir string, store storage.Trail, opts TrailOptions) (*Trail, error) {
	file, err := NewFileSink(dir, opts.File)
	if err != nil {
		return nil, err
	}
	t := &Trail{file: file, store: store, dir: dir, linger: opts.Linger, maxAge: opts.MaxAge,
		now: opts.Now, log: opts.Logger, cur: &fileRef{name: FileName}, done: make(chan struct{}), lazy: opts.Lazy}
	if t.linger <= 0 {
		t.linger = 20 * time.Millisecond
	}
	if t.maxAge <= 0 {
		t.maxAge = DefaultMaxAge
	}
	if t.now == nil {
		t.now = time.Now
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	t.cond.L = &t.mu
	t.cpName, t.cpOff, t.cpOK = readCheckpoint(dir)
	if t.node, err = nodeID(dir); err != nil {
		file.Close()
		return nil, err
	}
	if err := t.recover(ctx); err != nil {
		file.Close()
		return nil, err
	}
	file.mu.Lock()
	file.onRotate = t.rotated
	if !t.lazy {
		file.onWrite = t.queue
	}
	file.mu.Unlock()
	if t.lazy {
		close(t.done)
	} else {
		go t.ship()
	}
	return t, nil
}

// nodeID returns the id of the node that writes dir, made at first use.
func nodeID(dir string) (string, error) {
	path := filepath.Join(dir, nodeName)
	b, err := os.ReadFile(path)
	if err == nil && len(bytes.TrimSpace(b)) > 0 {
		return string(bytes.TrimSpace(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("audit: read node id: %w", err)
	}
	id := uuid.New()
	if err := writeFileAtomic(path, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("audit: write node id: %w", err)
	}
	return id, nil
}

// Node returns the id of this node's trail.
func (t *Trail) Node() string { return t.node }

// Pending implements Committer.
func (t *Trail) Pending(ctx context.Context, event func() *Event) context.Context {
	return storage.WithPendingEvent(ctx, &storage.PendingEvent{Record: func() *storage.EventRecord {
		e := event()
		return t.record(e, e.AppendJSON(make([]byte, 0, 1024)), false)
	}})
}

// Record returns the store's record of e as a transaction appends it with
// its change (storage.Tx.AppendEvent), incomplete until its line is in the
// file: what a background job's change (a KMS service event) commits with,
// to be written to the file by WriteCommitted once the transaction
// commits, or by Finish if the process dies before that.
func (t *Trail) Record(e *Event) *storage.EventRecord {
	return t.record(e, e.AppendJSON(make([]byte, 0, 1024)), false)
}

// WriteCommitted writes events whose records (Record) committed with their
// change. A file that cannot take them leaves them to Finish, as a
// request's committed event: the error is logged, not returned, for the
// change is done.
func (t *Trail) WriteCommitted(ctx context.Context, events []*Event) error {
	if len(events) == 0 {
		return nil
	}
	lines, err := encodeLines(make([]byte, 0, 1024*len(events)), events)
	if err != nil {
		return err
	}
	var recs []*storage.EventRecord
	if !t.lazy {
		recs = t.records(events, lines)
	}
	if err := t.file.writeLines(lines, recs); err != nil {
		t.failed.Store(true)
		t.log.ErrorContext(ctx, "audit file write failed after the change committed; its events are in the store and are written to the file later",
			"event_id", events[0].EventID, "events", len(events), "err", err)
	}
	return nil
}

// record returns the store's form of e, whose JSON is b. Its Time is the
// eventTime as the JSON holds it, in whole seconds, so that an event read
// back from a file sorts where it did when it was written.
func (t *Trail) record(e *Event, b []byte, complete bool) *storage.EventRecord {
	r := &storage.EventRecord{
		ID: e.EventID, Time: e.EventTime.Unix() * int64(time.Second), Account: e.RecipientAccountID, Region: e.AWSRegion,
		Source: e.EventSource, Name: e.EventName, ReadOnly: e.ReadOnly, Username: Username(e.UserIdentity),
		AccessKeyID: e.UserIdentity.AccessKeyID, Node: t.node, Complete: complete, JSON: b,
	}
	if len(e.Resources) > 0 {
		r.Resources = make([]storage.EventResource, len(e.Resources))
		for i, x := range e.Resources {
			r.Resources[i] = storage.EventResource{Type: x.Type, Name: x.ARN}
		}
	}
	return r
}

// Username is what CloudTrail's event history shows as an event's user
// name: the IAM user's name, "root" for the account root, else the last
// part of the principal's ARN (a role's session name).
func Username(u UserIdentity) string {
	switch {
	case u.UserName != "":
		return u.UserName
	case u.Type == "Root":
		return "root"
	case u.ARN != "":
		return u.ARN[strings.LastIndexByte(u.ARN, '/')+1:]
	}
	return ""
}

// Write implements Sink.
func (t *Trail) Write(ctx context.Context, e *Event) error {
	return t.writeAll(ctx, []*Event{e})
}

// writeAll writes the events to the file with one write(2) and queues them
// for the store. When the file cannot be written, the request fails, unless
// its change (and so its event) is already committed: then the answer is
// the truth, the error is logged, the other events go to the store, and the
// committed event stays incomplete until Finish writes it to the file.
func (t *Trail) writeAll(ctx context.Context, events []*Event) error {
	if t.lazy {
		// No record refers to the lines once the file has them (they are
		// made only when it fails, from a copy): encode them into a buffer
		// the file reuses.
		bp := t.file.lineBuf()
		lines, err := encodeLines((*bp)[:0], events)
		var failed []byte
		if err == nil {
			if err = t.file.writeLines(lines, nil); err != nil {
				failed = bytes.Clone(lines)
			}
		}
		*bp = lines
		t.file.putLineBuf(bp)
		if failed == nil {
			return err
		}
		return t.writeFailed(ctx, events, failed, nil, err)
	}
	lines, err := encodeLines(make([]byte, 0, 1024*len(events)), events)
	if err != nil {
		return err
	}
	// The shipper's records. Each holds its event's line, without the newline.
	recs := t.records(events, lines)
	err = t.file.writeLines(lines, recs)
	if err == nil {
		return nil
	}
	return t.writeFailed(ctx, events, lines, recs, err)
}

// records returns the store's records of events, whose lines are lines.
// Each holds its event's line, without the newline.
func (t *Trail) records(events []*Event, lines []byte) []*storage.EventRecord {
	recs := make([]*storage.EventRecord, len(events))
	rest := lines
	for i, e := range events {
		n := bytes.IndexByte(rest, '\n')
		recs[i] = t.record(e, rest[:n:n], true)
		rest = rest[n+1:]
	}
	return recs
}

// writeFailed handles err, the failure to write events (encoded as lines,
// with their records recs, nil if not made yet) to the file: see writeAll.
func (t *Trail) writeFailed(ctx context.Context, events []*Event, lines []byte, recs []*storage.EventRecord, err error) error {
	p := storage.PendingEventOf(ctx)
	if p == nil || !p.Committed() {
		return err
	}
	if recs == nil {
		recs = t.records(events, lines)
	}
	t.failed.Store(true)
	t.log.Error("audit file write failed after the change committed; its event is in the store and is written to the file later",
		"event_id", events[0].EventID, "err", err)
	rest := recs[:0:0]
	for _, r := range recs {
		if r.ID != events[0].EventID {
			rest = append(rest, r)
		}
	}
	if len(rest) > 0 {
		// Not in the file: only the store can keep them.
		if err := t.store.PutEvents(context.WithoutCancel(ctx), rest); err != nil {
			t.log.Error("audit: events of a committed change lost: neither the file nor the store took them",
				"event_id", events[0].EventID, "err", err)
		}
	}
	return nil
}

// queue is the file's onWrite: it runs with the file's lock held, in file
// order.
func (t *Trail) queue(w *lineWaiter, end int64) {
	if w.recs == nil {
		return
	}
	t.mu.Lock()
	t.enqueueLocked(shipItem{recs: w.recs, file: t.cur, end: end})
	t.mu.Unlock()
}

func (t *Trail) enqueueLocked(it shipItem) {
	if t.closing {
		t.overflow = true // Close gave up on these: the next start ships them
		return
	}
	if len(t.items) >= maxQueued {
		if !t.overflow {
			t.log.Error("audit: the store is not taking events; they stay in the files and are shipped at the next start")
		}
		t.overflow = true
		return
	}
	t.items = append(t.items, it)
	t.queued++
	t.cond.Broadcast()
}

// rotated is the file's onRotate.
func (t *Trail) rotated(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cur.name = name
	t.cur = &fileRef{name: FileName}
	if t.cpOK && t.cpName == FileName {
		// The checkpoint's file has a new name.
		t.saveCheckpointLocked(name, t.cpOff)
	}
}

// saveCheckpointLocked records the checkpoint, in memory and in its file.
func (t *Trail) saveCheckpointLocked(name string, off int64) {
	t.cpName, t.cpOff, t.cpOK = name, off, true
	if err := writeCheckpoint(t.dir, name, off); err != nil {
		t.log.Warn("audit: write checkpoint", "err", err)
	}
}

// ship stores queued items in batches until Close.
func (t *Trail) ship() {
	defer close(t.done)
	for {
		t.mu.Lock()
		for len(t.items) == 0 && !t.closing {
			t.cond.Wait()
		}
		if len(t.items) == 0 {
			t.mu.Unlock()
			return
		}
		closing := t.closing
		t.mu.Unlock()
		if !closing {
			time.Sleep(t.linger)
		}
		t.mu.Lock()
		n, count := 0, 0
		for n < len(t.items) && (n == 0 || count+len(t.items[n].recs) <= maxShip) {
			count += len(t.items[n].recs)
			n++
		}
		batch := append([]shipItem(nil), t.items[:n]...)
		t.mu.Unlock()
		recs := make([]*storage.EventRecord, 0, count)
		for _, it := range batch {
			recs = append(recs, it.recs...)
		}
		if !t.put(recs) {
			return // closing and the store does not answer
		}
		t.mu.Lock()
		t.items = t.items[n:]
		t.shipped += uint64(n)
		var cp *shipItem
		for i := len(batch) - 1; i >= 0; i-- {
			if batch[i].file != nil {
				cp = &batch[i]
				break
			}
		}
		if cp != nil && !t.overflow && (len(t.items) == 0 || t.now().Sub(t.lastCP) >= time.Second) {
			t.lastCP = t.now()
			t.saveCheckpointLocked(cp.file.name, cp.end)
		}
		t.cond.Broadcast()
		t.mu.Unlock()
	}
}

// put stores recs, retrying while the store fails, until it succeeds or
// the trail closes (false).
func (t *Trail) put(recs []*storage.EventRecord) bool {
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := t.store.PutEvents(ctx, recs)
		cancel()
		if err == nil {
			return true
		}
		t.mu.Lock()
		closing := t.closing
		t.mu.Unlock()
		if closing && attempt >= 2 {
			t.log.Error("audit: events not stored before close; the next start ships them from the files", "err", err)
			return false
		}
		if attempt == 0 || attempt%30 == 0 {
			t.log.Error("audit: store events (retrying)", "err", err, "attempt", attempt+1)
		}
		time.Sleep(min(time.Duration(attempt+1)*100*time.Millisecond, 2*time.Second))
	}
}

// Flush waits until every event written so far is in the store.
func (t *Trail) Flush(ctx context.Context) error {
	// Journaled lines first. A file that fails keeps its lines in the
	// journal and fails the requests; what the files hold is shipped.
	_ = t.file.Flush()
	t.mu.Lock()
	target := t.queued
	t.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		t.mu.Lock()
		t.cond.Broadcast()
		t.mu.Unlock()
	})
	defer stop()
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.shipped < target {
		if err := ctx.Err(); err != nil {
			return err
		}
		if t.closing && t.items == nil {
			return ErrClosed
		}
		t.cond.Wait()
	}
	return nil
}

// Finish writes to the file, and completes in the store, this node's events
// left incomplete before cutoff whose line is not in the files (a change
// committed, then the process gone, or the file failing, before its line
// was written); the zero cutoff takes them all. OpenTrail runs it for every
// incomplete event; jobs run it after a failed write. In a Lazy trail an
// incomplete event whose line is in the files stays as it is until CatchUp
// ships that line.
func (t *Trail) Finish(ctx context.Context, cutoff time.Time) (int, error) {
	t.failed.Store(false)
	var inFiles map[string]bool
	if t.lazy {
		var err error
		if inFiles, err = t.idsPastCheckpoint(); err != nil {
			t.failed.Store(true)
			return 0, err
		}
	}
	total := 0
	var after storage.EventCursor
	for {
		evs, err := t.store.IncompleteEvents(ctx, t.node, after, 500)
		if err != nil {
			return total, fmt.Errorf("audit: read incomplete events: %w", err)
		}
		var due []*storage.EventRecord
		for _, e := range evs {
			if (cutoff.IsZero() || e.Time < cutoff.UnixNano()) && !inFiles[e.ID] {
				due = append(due, e)
			}
		}
		if len(due) > 0 {
			var lines []byte
			for _, e := range due {
				lines = append(append(lines, e.JSON...), '\n')
				e.Complete = true
			}
			if err := t.file.writeLines(lines, nil); err != nil {
				t.failed.Store(true)
				return total, err
			}
			if err := t.store.PutEvents(ctx, due); err != nil {
				return total, fmt.Errorf("audit: complete events: %w", err)
			}
			total += len(due)
		}
		if len(evs) < 500 || (!cutoff.IsZero() && evs[len(evs)-1].Time >= cutoff.UnixNano()) {
			return total, nil
		}
		after = storage.EventCursor{Time: evs[len(evs)-1].Time, ID: evs[len(evs)-1].ID}
	}
}

// Failed reports whether a committed change's event could not be written
// to the file since the last Finish, which then has work to do.
func (t *Trail) Failed() bool { return t.failed.Load() }

// idsPastCheckpoint returns the event ids of the lines past the checkpoint
// (read as bytes: the eventID member of each line, never inside a string,
// where its quotes would be escaped).
func (t *Trail) idsPastCheckpoint() (map[string]bool, error) {
	t.catchMu.Lock()
	defer t.catchMu.Unlock()
	t.mu.Lock()
	name, off, ok := t.cpName, t.cpOff, t.cpOK
	t.mu.Unlock()
	t.file.mu.Lock()
	if !t.file.closed {
		// Journaled lines first (a failure leaves them in the journal,
		// and requests fail meanwhile: ship what the files hold).
		_ = t.file.flushJournaledLocked()
	}
	files, err := trailFiles(t.dir)
	t.file.mu.Unlock()
	if err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	key := []byte(`"eventID":"`)
	for _, f := range files {
		from, past := pastCheckpoint(f, name, off, ok)
		if !past {
			continue
		}
		b, err := readRegular(filepath.Join(t.dir, f))
		if err != nil {
			return nil, fmt.Errorf("audit: read %s: %w", f, err)
		}
		if from > int64(len(b)) {
			from = int64(len(b))
		}
		for rest := b[from:]; len(rest) > 0; {
			line := rest
			if i := bytes.IndexByte(rest, '\n'); i >= 0 {
				line, rest = rest[:i], rest[i+1:]
			} else {
				rest = nil
			}
			if i := bytes.LastIndex(line, key); i >= 0 {
				v := line[i+len(key):]
				if j := bytes.IndexByte(v, '"'); j >= 0 {
					ids[string(v[:j])] = true
				}
			}
		}
	}
	return ids, nil
}

// Prune deletes from the store the events older than TrailOptions.MaxAge.
func (t *Trail) Prune(ctx context.Context) (int, error) {
	n, err := t.store.PruneEvents(ctx, t.now().Add(-t.maxAge).UnixNano())
	if err != nil {
		return n, fmt.Errorf("audit: prune stored events: %w", err)
	}
	return n, nil
}

// ApplyRetention applies the files' retention (see FileSink.ApplyRetention).
func (t *Trail) ApplyRetention() error { return t.file.ApplyRetention() }

// Close closes the file, then gives the shipper a few seconds to store what
// is queued (what it cannot is shipped at the next start) and records the
// checkpoint.
func (t *Trail) Close() error {
	err := t.file.Close()
	t.mu.Lock()
	already := t.closing
	t.closing = true
	t.cond.Broadcast()
	t.mu.Unlock()
	if !already {
		select {
		case <-t.done:
		case <-time.After(15 * time.Second):
			t.log.Error("audit: shipper did not finish; the next start ships the rest from the files")
		}
	}
	return err
}

// recover ships the files past the checkpoint and completes the node's
// incomplete events.
func (t *Trail) recover(ctx context.Context) error {
	if !t.lazy {
		if err := t.catchUp(ctx); err != nil {
			return err
		}
	}
	if _, err := t.Finish(ctx, time.Time{}); err != nil {
		return err
	}
	return nil
}

// CatchUp ships to the store what the files hold past the checkpoint, so
// that the store has every event written so far; in a Lazy trail,
// LookupEvents calls it first. Otherwise it only waits for the shipper
// (Flush).
func (t *Trail) CatchUp(ctx context.Context) error {
	if !t.lazy {
		return t.Flush(ctx)
	}
	return t.catchUp(ctx)
}

// catchUp ships the lines written past the checkpoint, up to what was
// written when it began, and moves the checkpoint after them.
func (t *Trail) catchUp(ctx context.Context) error {
	t.catchMu.Lock()
	defer t.catchMu.Unlock()
	t.mu.Lock()
	name, off, ok := t.cpName, t.cpOff, t.cpOK
	t.mu.Unlock()
	// With the file's lock held: the files as they are, the current one
	// opened (a rotation may rename it later; the descriptor stays), its
	// size (every byte of it written by a finished write(2)), and the
	// reference that follows its name through a rotation.
	t.file.mu.Lock()
	if !t.file.closed {
		// Journaled lines first, so that the lines written before
		// catchUp began are in the files (a failure leaves them in the
		// journal, and requests fail meanwhile: ship what the files hold).
		_ = t.file.flushJournaledLocked()
	}
	files, err := trailFiles(t.dir)
	var cur *os.File
	if err == nil {
		cur, err = os.Open(filepath.Join(t.dir, FileName))
	}
	size := t.file.size
	t.mu.Lock()
	ref := t.cur
	t.mu.Unlock()
	t.file.mu.Unlock()
	if err != nil {
		return fmt.Errorf("audit: catch up: %w", err)
	}
	defer cur.Close()
	end := int64(0)
	for _, f := range files {
		from, past := pastCheckpoint(f, name, off, ok)
		if !past {
			continue
		}
		if f == FileName {
			if end, err = t.shipLines(ctx, cur, f, from, size); err != nil {
				return err
			}
			continue
		}
		if err := t.shipRotated(ctx, f, from); err != nil {
			return err
		}
	}
	t.mu.Lock()
	t.saveCheckpointLocked(ref.name, end)
	t.mu.Unlock()
	return nil
}

// pastCheckpoint reports whether file f (a name trailFiles returns) holds
// lines past the checkpoint (name, off; ok false when there is none), and
// from which offset.
func pastCheckpoint(f, name string, off int64, ok bool) (from int64, past bool) {
	switch {
	case !ok:
		return 0, true
	case name == FileName && f != FileName:
		return 0, false // rotated before the checkpoint was taken
	case f == name:
		return off, true
	case f != FileName && f < name:
		return 0, false // rotated before the checkpoint's file
	}
	return 0, true
}

// trailFiles returns the rotated files of dir, oldest first, then the
// current file.
func trailFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: read %s: %w", dir, err)
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasPrefix(n, rotatedPrefix) && strings.HasSuffix(n, rotatedSuffix) {
			out = append(out, n)
		}
	}
	return append(out, FileName), nil
}

// shipRotated ships the lines of the rotated file dir/name from offset on.
func (t *Trail) shipRotated(ctx context.Context, name string, from int64) error {
	f, err := os.Open(filepath.Join(t.dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil // deleted by retention meanwhile
	}
	if err != nil {
		return fmt.Errorf("audit: ship %s: %w", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("audit: ship %s: %w", name, err)
	}
	_, err = t.shipLines(ctx, f, name, from, fi.Size())
	return err
}

// shipLines stores the events of the whole lines of f (named name) between
// from and to, and returns the offset after the last whole line.
func (t *Trail) shipLines(ctx context.Context, f *os.File, name string, from, to int64) (int64, error) {
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || to <= from {
		return from, nil // nothing past the checkpoint (or not a file to read)
	}
	r := bufio.NewReaderSize(io.NewSectionReader(f, from, to-from), 256<<10)
	var batch []*storage.EventRecord
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := t.store.PutEvents(ctx, batch); err != nil {
			return fmt.Errorf("audit: ship %s: %w", name, err)
		}
		batch = batch[:0]
		return nil
	}
	pos := from
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			pos += int64(len(line))
			b := bytes.Clone(line[:len(line)-1])
			var e Event
			if uerr := e.UnmarshalJSON(b); uerr != nil || e.EventID == "" {
				t.log.Warn("audit: a line of the trail is not an event; not shipped", "file", name)
			} else {
				batch = append(batch, t.record(&e, b, true))
				if len(batch) == 500 {
					if err := flush(); err != nil {
						return pos, err
					}
				}
			}
		}
		if err == io.EOF {
			return pos, flush()
		}
		if err != nil {
			return pos, fmt.Errorf("audit: ship %s: %w", name, err)
		}
	}
}

// readRegular returns the content of the regular file at path as its size
// says when opened (nil when it does not exist or is not a regular file).
func readRegular(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return nil, err
	}
	b := make([]byte, fi.Size())
	n, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	return b[:n], nil
}

// readCheckpoint returns the file and offset up to which the trail was
// shipped; ok is false when there is no readable checkpoint.
func readCheckpoint(dir string) (name string, off int64, ok bool) {
	b, err := os.ReadFile(filepath.Join(dir, checkpointName))
	if err != nil {
		return "", 0, false
	}
	n, o, found := strings.Cut(strings.TrimSpace(string(b)), "\n")
	v, err := strconv.ParseInt(o, 10, 64)
	if !found || err != nil || v < 0 || n == "" || strings.ContainsAny(n, "/\\") {
		return "", 0, false
	}
	return n, v, true
}

func writeCheckpoint(dir, name string, off int64) error {
	return writeFileAtomic(filepath.Join(dir, checkpointName), []byte(name+"\n"+strconv.FormatInt(off, 10)+"\n"))
}

// writeFileAtomic replaces path with b through a temporary file and a
// rename, so a reader never sees a partial file.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
