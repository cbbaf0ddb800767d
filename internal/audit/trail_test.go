package audit

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/storage/sqlite"
)

// countingStore counts the events PutEvents is given.
type countingStore struct {
	*sqlite.Store
	put atomic.Int64
}

func (c *countingStore) PutEvents(ctx context.Context, evs []*storage.EventRecord) error {
	c.put.Add(int64(len(evs)))
	return c.Store.PutEvents(ctx, evs)
}

func openTestStore(t *testing.T) *countingStore {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &countingStore{Store: s}
}

// bothModes runs fn with a shipping trail and with a Lazy one.
func bothModes(t *testing.T, fn func(t *testing.T, lazy bool)) {
	for _, lazy := range []bool{false, true} {
		t.Run(map[bool]string{false: "shipping", true: "lazy"}[lazy], func(t *testing.T) { fn(t, lazy) })
	}
}

func openTestTrail(t *testing.T, dir string, store storage.Trail, maxBytes int64, lazy bool) *Trail {
	t.Helper()
	tr, err := OpenTrail(context.Background(), dir, store, TrailOptions{File: FileOptions{MaxBytes: maxBytes},
		Linger: time.Millisecond, Lazy: lazy})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func trailEvent(id string) *Event {
	e := New("kms.amazonaws.com", "CreateKey", time.Now())
	e.EventID = id
	e.AWSRegion, e.RecipientAccountID = "us-east-1", "111111111111"
	e.UserIdentity = UserIdentity{Type: "IAMUser", UserName: "alice", AccessKeyID: "AKIAALICE"}
	e.Resources = []Resource{{AccountID: "111111111111", Type: "AWS::KMS::Key", ARN: "arn:aws:kms:us-east-1:111111111111:key/" + id}}
	return e
}

func stored(t *testing.T, s storage.Trail) map[string]*storage.EventRecord {
	t.Helper()
	evs, err := s.LookupEvents(context.Background(), storage.EventQuery{Account: "111111111111", Region: "us-east-1",
		To: 1 << 62, Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*storage.EventRecord{}
	for _, e := range evs {
		out[e.ID] = e
	}
	return out
}

// fileEvents returns the event ids of every line of every file in dir.
func fileEvents(t *testing.T, dir string) map[string]int {
	t.Helper()
	files, err := trailFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, name := range files {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var e Event
			if err := e.UnmarshalJSON(sc.Bytes()); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			out[e.EventID]++
		}
		f.Close()
	}
	return out
}

func TestTrailShipsEveryEventOnce(t *testing.T) { bothModes(t, testTrailShipsEveryEventOnce) }

func testTrailShipsEveryEventOnce(t *testing.T, lazy bool) {
	dir := t.TempDir()
	store := openTestStore(t)
	tr := openTestTrail(t, dir, store, 2048, lazy) // rotates every few events
	ctx := context.Background()
	for i := range 40 {
		e := trailEvent("e" + string(rune('A'+i)))
		if i%2 == 0 {
			if err := tr.Write(ctx, e); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := WriteAll(ctx, tr, []*Event{e, trailEvent(e.EventID + "-noted")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	got := stored(t, store)
	if len(got) != 60 {
		t.Fatalf("stored %d events, want 60", len(got))
	}
	r := got["eA"]
	if !r.Complete || r.Username != "alice" || r.AccessKeyID != "AKIAALICE" || r.Name != "CreateKey" ||
		r.Source != "kms.amazonaws.com" || len(r.Resources) != 1 || r.Resources[0].Type != "AWS::KMS::Key" {
		t.Errorf("stored event = %+v", r)
	}
	files, _ := trailFiles(dir)
	if len(files) < 3 {
		t.Fatalf("files = %v: the test wants rotations", files)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	// The checkpoint is at the end: a restart ships nothing again.
	store.put.Store(0)
	tr = openTestTrail(t, dir, store, 2048, lazy)
	if n := store.put.Load(); n != 0 {
		t.Errorf("a restart after a clean close shipped %d events again", n)
	}
	tr.Close()

	// Lines past the checkpoint (written, the process killed before they
	// were shipped) are shipped at the next start.
	for _, id := range []string{"late1", "late2"} {
		line := append(trailEvent(id).AppendJSON(nil), '\n')
		f, err := os.OpenFile(filepath.Join(dir, FileName), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(line)
		f.Close()
	}
	store.put.Store(0)
	tr = openTestTrail(t, dir, store, 2048, lazy)
	if err := tr.CatchUp(ctx); err != nil { // a Lazy trail ships when asked
		t.Fatal(err)
	}
	if n := store.put.Load(); n != 2 {
		t.Errorf("the restart shipped %d events, want the 2 past the checkpoint", n)
	}
	if got := stored(t, store); got["late1"] == nil || got["late2"] == nil || len(got) != 62 {
		t.Errorf("stored %d events; late1 %v, late2 %v", len(got), got["late1"] != nil, got["late2"] != nil)
	}
}

func TestTrailShipsAllWithoutCheckpoint(t *testing.T) {
	bothModes(t, testTrailShipsAllWithoutCheckpoint)
}

func testTrailShipsAllWithoutCheckpoint(t *testing.T, lazy bool) {
	dir := t.TempDir()
	store := openTestStore(t)
	tr := openTestTrail(t, dir, store, 2048, lazy)
	for i := range 10 {
		if err := tr.Write(context.Background(), trailEvent("n"+string(rune('0'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	tr.Close()
	if err := os.Remove(filepath.Join(dir, checkpointName)); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	other := openTestStore(t) // a store that never saw them
	if err := openTestTrail(t, dir, other, 2048, lazy).CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, other); len(got) != 10 {
		t.Errorf("a start without checkpoint shipped %d events, want all 10 in the files", len(got))
	}
}

// TestTrailPendingEvent checks the event of a change: committed in its
// transaction, incomplete until the complete event is written; a crash in
// between leaves it to the next start, which writes it to the file.
func TestTrailPendingEvent(t *testing.T) { bothModes(t, testTrailPendingEvent) }

func testTrailPendingEvent(t *testing.T, lazy bool) {
	dir := t.TempDir()
	store := openTestStore(t)
	tr := openTestTrail(t, dir, store, 0, lazy)
	change := func(ctx context.Context, id string) {
		t.Helper()
		err := store.Update(ctx, func(tx storage.Tx) error {
			return tx.Insert(ctx, &storage.Record{Kind: "test", Scope: storage.Scope{Account: "111111111111", Region: "us-east-1"}, ID: id})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// A request that completes.
	e := trailEvent("done")
	ctx := tr.Pending(context.Background(), func() *Event { return trailEvent("done") })
	change(ctx, "r1")
	if r := stored(t, store)["done"]; r == nil || r.Complete {
		t.Fatalf("after the commit: %+v, want an incomplete event", r)
	}
	e.ResponseElements = []byte(`{"keyId":"done"}`)
	if err := tr.Write(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := tr.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := stored(t, store)["done"]; r == nil || !r.Complete || string(r.JSON) != string(e.AppendJSON(nil)) {
		t.Fatalf("after the response: %+v, want the complete event", r)
	}
	// A request whose process dies after the commit.
	ctx = tr.Pending(context.Background(), func() *Event { return trailEvent("crashed") })
	change(ctx, "r2")
	tr.Close()
	tr = openTestTrail(t, dir, store, 0, lazy)
	if r := stored(t, store)["crashed"]; r == nil || !r.Complete {
		t.Fatalf("after the restart: %+v, want it completed", r)
	}
	if n := fileEvents(t, dir); n["crashed"] != 1 || n["done"] != 1 {
		t.Fatalf("file lines per event = %v, want each once", n)
	}

	// The file fails after the change committed: the request still
	// succeeds, its event stays in the store, and Finish writes it to the
	// file once it can.
	ctx = tr.Pending(context.Background(), func() *Event { return trailEvent("nofile") })
	change(ctx, "r3")
	tr.file.mu.Lock()
	tr.file.err = errors.New("no space left on device")
	tr.file.mu.Unlock()
	noted := trailEvent("noted")
	if err := WriteAll(ctx, tr, []*Event{trailEvent("nofile"), noted}); err != nil {
		t.Fatalf("a committed change's event write failed the request: %v", err)
	}
	// A request whose change was not committed fails.
	if err := tr.Write(tr.Pending(context.Background(), func() *Event { return trailEvent("x") }), trailEvent("x")); err == nil {
		t.Fatal("a failing file did not fail a request with no committed change")
	}
	if err := tr.Write(context.Background(), trailEvent("read")); err == nil {
		t.Fatal("a failing file did not fail a read")
	}
	if err := tr.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := stored(t, store); r["nofile"] == nil || r["nofile"].Complete || r["noted"] == nil {
		t.Fatalf("stored: nofile %+v, noted %v", r["nofile"], r["noted"] != nil)
	}
	// The stored record is the line as written, not what later writes
	// (which reuse the encoding buffer) left in its place.
	if got, want := string(stored(t, store)["noted"].JSON), string(noted.AppendJSON(nil)); got != want {
		t.Fatalf("stored noted event =\n%s\nwant\n%s", got, want)
	}
	tr.file.mu.Lock()
	tr.file.err = nil
	tr.file.mu.Unlock()
	if n, err := tr.Finish(context.Background(), time.Now().Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("Finish = %d, %v; want 1", n, err)
	}
	if n := fileEvents(t, dir); n["nofile"] != 1 {
		t.Fatalf("nofile is %d times in the files, want once", n["nofile"])
	}
	if r := stored(t, store)["nofile"]; !r.Complete {
		t.Fatal("Finish left the event incomplete")
	}
}

func TestTrailCommittedServiceEvents(t *testing.T) { bothModes(t, testTrailCommittedServiceEvents) }

// testTrailCommittedServiceEvents: a background job's events, whose
// records (Record) committed with its change, reach the file through
// WriteCommitted; a process that dies before that, or a file that fails,
// leaves them to Finish, which writes each once.
func testTrailCommittedServiceEvents(t *testing.T, lazy bool) {
	dir := t.TempDir()
	store := openTestStore(t)
	tr := openTestTrail(t, dir, store, 0, lazy)
	commit := func(events ...*Event) {
		t.Helper()
		err := store.Update(context.Background(), func(tx storage.Tx) error {
			for _, e := range events {
				if err := tx.AppendEvent(context.Background(), tr.Record(e)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	service := func(id string) *Event {
		return NewServiceEvent("kms.amazonaws.com", "DeleteKey", time.Now().UTC().Truncate(time.Second), id, "111111111111", "us-east-1", nil, nil)
	}
	// Written after the commit.
	written := service("written")
	commit(written)
	if r := stored(t, store)["written"]; r == nil || r.Complete {
		t.Fatalf("after the commit: %+v, want an incomplete event", r)
	}
	if err := tr.WriteCommitted(context.Background(), []*Event{written}); err != nil {
		t.Fatal(err)
	}
	// The process dies after the commit, before the write.
	commit(service("crashed"))
	tr.Close()
	tr = openTestTrail(t, dir, store, 0, lazy)
	// The file fails after the commit: no error (the change is done),
	// Failed, and Finish writes it once the file can take it.
	failing := service("nofile")
	commit(failing)
	tr.file.mu.Lock()
	tr.file.err = errors.New("no space left on device")
	tr.file.mu.Unlock()
	if err := tr.WriteCommitted(context.Background(), []*Event{failing}); err != nil {
		t.Fatalf("WriteCommitted with a failing file = %v, want nil", err)
	}
	if !tr.Failed() {
		t.Fatal("a failed write of committed events did not mark the trail Failed")
	}
	tr.file.mu.Lock()
	tr.file.err = nil
	tr.file.mu.Unlock()
	if _, err := tr.Finish(context.Background(), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := tr.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := fileEvents(t, dir); n["written"] != 1 || n["crashed"] != 1 || n["nofile"] != 1 {
		t.Fatalf("file lines per event = %v, want each once", n)
	}
	for _, id := range []string{"written", "crashed", "nofile"} {
		if r := stored(t, store)[id]; r == nil || !r.Complete {
			t.Errorf("%s stored as %+v, want complete", id, r)
		}
	}
}
