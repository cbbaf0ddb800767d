package audit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// crash leaves s as a killed process would: nothing more is written to the
// file, and the journal's mapping goes away with what it holds in the page
// cache.
func crash(t *testing.T, s *FileSink) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
	}
	s.closed = true
	if s.j != nil {
		if err := s.j.unmap(); err != nil {
			t.Fatal(err)
		}
		s.j = nil
	}
	s.f.Close()
}

// checkOnce fails unless events hold each of want exactly once, in order.
func checkOnce(t *testing.T, events []Event, want []string) {
	t.Helper()
	if len(events) != len(want) {
		t.Errorf("the files hold %d events, want %d", len(events), len(want))
	}
	for i := range min(len(events), len(want)) {
		if events[i].RequestID != want[i] {
			t.Fatalf("event %d is %q, want %q (lost, repeated or out of order)", i, events[i].RequestID, want[i])
		}
	}
}

// reopenAfterCrash ends s as a kill would (crash), opens a sink with a
// journal on dir again, closes it and returns the events the files hold.
func reopenAfterCrash(t *testing.T, s *FileSink, dir string) []Event {
	t.Helper()
	crash(t, s)
	s, err := NewFileSink(dir, FileOptions{Journal: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	events, _ := readLines(t, dir)
	return events
}

// queuedLines is the lines of ws, one after the other: what their group
// write puts in the file.
func queuedLines(ws []*lineWaiter) []byte {
	var b []byte
	for _, w := range ws {
		b = append(b, w.line...)
	}
	return b
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%05d", prefix, i)
	}
	return out
}

// TestJournalWrites: with a journal, Write returns before the file holds
// the line; Flush and Close put every line in the file, in order, across
// rotations, and concurrent writers lose and repeat nothing.
func TestJournalWrites(t *testing.T) {
	dir := t.TempDir()
	s, err := NewFileSink(dir, FileOptions{MaxBytes: 64 << 10, Journal: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.j == nil {
		t.Fatal("no journal on this system")
	}
	const writers, each = 8, 400
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				e := testEvent(fmt.Sprintf("w%d-%05d", w, i))
				e.UserAgent = strings.Repeat("x", (w*37+i)%300)
				if err := s.Write(t.Context(), e); err != nil {
					t.Errorf("Write = %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	events, files := readLines(t, dir)
	if len(events) != writers*each {
		t.Errorf("after Flush the files hold %d events, want %d", len(events), writers*each)
	}
	if len(files) < 2 {
		t.Errorf("%d files, want rotations", len(files))
	}
	last := map[int]int{}
	for _, e := range events {
		var w, i int
		fmt.Sscanf(e.RequestID, "w%d-%d", &w, &i)
		if prev, ok := last[w]; ok && i != prev+1 {
			t.Fatalf("writer %d: event %d after %d", w, i, prev)
		}
		last[w] = i
	}
	if err := s.Write(t.Context(), testEvent("after-flush")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if events, _ := readLines(t, dir); len(events) != writers*each+1 || events[len(events)-1].RequestID != "after-flush" {
		t.Errorf("after Close the files hold %d events, want %d ending with after-flush", len(events), writers*each+1)
	}
	// A clean close leaves nothing for the next open to append.
	s, err = NewFileSink(dir, FileOptions{MaxBytes: 64 << 10, Journal: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if events, _ := readLines(t, dir); len(events) != writers*each+1 {
		t.Errorf("a reopen after a clean close changed the files: %d events", len(events))
	}
}

// TestJournalAfterCrash: lines journaled but not yet in the file when the
// process ends are appended at the next open, exactly once and in order,
// also after the ring has wrapped several times, with or without the
// journal option at that open (without it the journal file is removed).
func TestJournalAfterCrash(t *testing.T) {
	for _, reopenWith := range []bool{true, false} {
		t.Run(fmt.Sprint("reopen journal=", reopenWith), func(t *testing.T) {
			dir := t.TempDir()
			s, err := NewFileSink(dir, FileOptions{Journal: true})
			if err != nil {
				t.Fatal(err)
			}
			s.delay = time.Hour // only the flushBytes group writes
			// About 4 MB of lines: the ring wraps many times.
			want := ids("c", 3000)
			for _, id := range want {
				e := testEvent(id)
				e.UserAgent = strings.Repeat("u", 1000)
				if err := s.Write(t.Context(), e); err != nil {
					t.Fatal(err)
				}
			}
			s.mu.Lock()
			queued := len(s.queue)
			s.mu.Unlock()
			crash(t, s)
			if queued == 0 {
				t.Fatal("nothing was left unwritten: the test does not reach the journal")
			}
			before, _ := readLines(t, dir)
			if len(before) == len(want) {
				t.Fatal("the file holds every line before reopening")
			}
			s, err = NewFileSink(dir, FileOptions{Journal: reopenWith})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			events, _ := readLines(t, dir)
			checkOnce(t, events, want)
			_, err = os.Stat(filepath.Join(dir, journalName))
			if reopenWith == (err != nil) {
				t.Errorf("journal file after reopen with journal=%v: stat error %v", reopenWith, err)
			}
		})
	}
}

// TestJournalLargeRecord: lines too large for the journal are written by
// their own request, after every journaled line, and before the lines
// journaled after them.
func TestJournalLargeRecord(t *testing.T) {
	dir := t.TempDir()
	s, err := NewFileSink(dir, FileOptions{Journal: true})
	if err != nil {
		t.Fatal(err)
	}
	s.delay = time.Hour // only explicit group writes
	line := func(id string, pad int) []byte {
		e := testEvent(id)
		e.UserAgent = strings.Repeat("p", pad)
		return append(e.AppendJSON(nil), '\n')
	}
	for _, id := range []string{"a", "b"} {
		if err := s.writeLines(line(id, 10), nil); err != nil {
			t.Fatal(err)
		}
	}
	// Several events of one request too large for one record.
	var big []byte
	for i := range 40 {
		big = append(big, line(fmt.Sprint("big-", i), 8000)...)
	}
	if len(big) <= s.j.maxRecord() {
		t.Fatalf("%d bytes fit in a record (%d): the test does not reach the path", len(big), s.j.maxRecord())
	}
	if err := s.writeLines(big, nil); err != nil {
		t.Fatal(err)
	}
	// Written when writeLines returned, after a and b.
	events, _ := readLines(t, dir)
	if len(events) != 42 || events[0].RequestID != "a" || events[2].RequestID != "big-0" {
		t.Fatalf("after the large write the file holds %d events, want a, b and the 40 large ones in order", len(events))
	}
	if err := s.writeLines(line("c", 10), nil); err != nil {
		t.Fatal(err)
	}
	events = reopenAfterCrash(t, s, dir)
	want := append([]string{"a", "b"}, ids("big-", 40)...)
	for i := range 40 {
		want[2+i] = fmt.Sprint("big-", i)
	}
	checkOnce(t, events, append(want, "c"))
}

// TestJournalWrittenNotMarked: the process ended after a group write reached
// the file but before the journal marked its lines written. The next open
// appends only the lines after them.
func TestJournalWrittenNotMarked(t *testing.T) {
	dir := t.TempDir()
	s, err := NewFileSink(dir, FileOptions{Journal: true})
	if err != nil {
		t.Fatal(err)
	}
	want := ids("m", 30)
	s.mu.Lock() // no group write runs meanwhile
	for _, id := range want[:10] {
		w := &lineWaiter{line: append(testEvent(id).AppendJSON(nil), '\n')}
		if err := s.journalLocked(w); err != nil {
			t.Fatal(err)
		}
	}
	s.flushLocked() // written and marked
	for _, id := range want[10:] {
		w := &lineWaiter{line: append(testEvent(id).AppendJSON(nil), '\n')}
		if err := s.journalLocked(w); err != nil {
			t.Fatal(err)
		}
	}
	// The next 7 reach the file, unmarked.
	if _, err := s.f.Write(queuedLines(s.queue[:7])); err != nil {
		t.Fatal(err)
	}
	s.mu.Unlock()
	checkOnce(t, reopenAfterCrash(t, s, dir), want)
}

// TestJournalWriteCutInRecord: a kill during a group write of several
// pages may leave only its first pages in the file; open cuts the torn
// line, which can leave the first lines of a record of several lines (one
// request's events). The next open appends only the lines missing.
func TestJournalWriteCutInRecord(t *testing.T) {
	dir := t.TempDir()
	s, err := NewFileSink(dir, FileOptions{Journal: true})
	if err != nil {
		t.Fatal(err)
	}
	want := ids("p", 12)
	s.mu.Lock() // no group write runs meanwhile
	// 4 requests of 3 events each.
	for r := range 4 {
		var b []byte
		for _, id := range want[3*r : 3*r+3] {
			b = append(append(b, testEvent(id).AppendJSON(nil)...), '\n')
		}
		if err := s.journalLocked(&lineWaiter{line: b}); err != nil {
			t.Fatal(err)
		}
	}
	// The group write reached the file up to the middle of the 6th line
	// (in the second record), unmarked.
	b := queuedLines(s.queue)
	cut := 0
	for range 5 {
		cut += bytes.IndexByte(b[cut:], '\n') + 1
	}
	if _, err := s.f.Write(b[:cut+40]); err != nil {
		t.Fatal(err)
	}
	s.mu.Unlock()
	checkOnce(t, reopenAfterCrash(t, s, dir), want)
}

// TestJournalFailsClosed: when the file cannot be written, the lines
// already answered stay in the journal, the next writes fail, and the next
// open appends the journaled lines.
func TestJournalFailsClosed(t *testing.T) {
	dir := t.TempDir()
	s, err := NewFileSink(dir, FileOptions{Journal: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(t.Context(), testEvent("ok-0")); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.f.Close() // the file fails underneath the sink
	s.mu.Unlock()
	if err := s.Write(t.Context(), testEvent("answered-1")); err != nil {
		t.Fatalf("Write into the journal = %v", err)
	}
	if err := s.Flush(); err == nil {
		t.Fatal("Flush onto a failing file = nil, want its error")
	}
	if err := s.Write(t.Context(), testEvent("refused-2")); err == nil {
		t.Fatal("Write after the file failed = nil, want an error (fail closed)")
	}
	checkOnce(t, reopenAfterCrash(t, s, dir), []string{"ok-0", "answered-1"})
}

// TestJournalNotOurs: a .journal that is not a Keyfort journal is refused,
// not overwritten.
func TestJournalNotOurs(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, journalName), append([]byte("JUNK"), make([]byte, journalSize-4)...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewFileSink(dir, FileOptions{Journal: true}); err == nil || !strings.Contains(err.Error(), "not a Keyfort journal") {
		t.Fatalf("NewFileSink over a foreign .journal = %v, want a refusal", err)
	}
	if err := os.WriteFile(filepath.Join(dir, journalName), []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewFileSink(dir, FileOptions{Journal: true}); err == nil || !strings.Contains(err.Error(), "bytes, not") {
		t.Fatalf("NewFileSink over a short .journal = %v, want a refusal", err)
	}
}

// TestJournalRecordChecks: a record whose bytes were altered ends the scan
// there, and bytes of earlier laps are never taken for records.
func TestJournalRecordChecks(t *testing.T) {
	dir := t.TempDir()
	j, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.unmap()
	j.reset(0)
	var ends []int
	for i := range 5 {
		_, end, ok, err := j.append([]byte(fmt.Sprintf("line %d\n", i)))
		if !ok || err != nil {
			t.Fatal(ok, err)
		}
		ends = append(ends, end)
	}
	j.confirm(2, ends[1])
	recs, flushed := j.pendingRecords()
	if flushed != 2 || len(recs) != 3 || string(recs[0]) != "line 2\n" || string(recs[2]) != "line 4\n" {
		t.Fatalf("pending = %q (flushed %d), want lines 2-4 after 2", recs, flushed)
	}
	j.ring()[ends[2]+recordHeaderSize] ^= 1 // line 3's first byte
	if recs, _ := j.pendingRecords(); len(recs) != 1 || string(recs[0]) != "line 2\n" {
		t.Fatalf("pending after altering line 3 = %q, want line 2 only", recs)
	}
	j.ring()[ends[2]+recordHeaderSize] ^= 1
	// Everything written: the next lap starts at the ring's start, over
	// the old records, which a scan must not follow.
	j.confirm(5, ends[4])
	if _, _, ok, err := j.append([]byte("new 6\n")); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if recs, flushed := j.pendingRecords(); flushed != 5 || len(recs) != 1 || string(recs[0]) != "new 6\n" {
		t.Fatalf("pending after a new lap = %q (flushed %d), want only new 6", recs, flushed)
	}
}

// TestJournalSurvivesKill: a child process journals lines, is stopped from
// writing them to the file, and is killed with SIGKILL; every line it
// acknowledged is in the file after the next open.
func TestJournalSurvivesKill(t *testing.T) {
	if dir := os.Getenv("KEYFORT_JOURNAL_CHILD_DIR"); dir != "" {
		s, err := NewFileSink(dir, FileOptions{Journal: true})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		for _, id := range ids("k", 200) {
			if err := s.Write(t.Context(), testEvent(id)); err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
		}
		s.mu.Lock() // no group write from here on
		fmt.Println("acknowledged", len(s.queue) > 0)
		_, _ = os.Stdin.Read(make([]byte, 1)) // wait to be killed
		os.Exit(0)
	}
	if runtime.GOOS == "windows" {
		t.Skip("no SIGKILL")
	}
	dir := t.TempDir()
	// "true": lines were left to the journal when the child was killed.
	killChild(t, "TestJournalSurvivesKill", "KEYFORT_JOURNAL_CHILD_DIR="+dir, "acknowledged true\n")
	s, err := NewFileSink(dir, FileOptions{Journal: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	events, _ := readLines(t, dir)
	checkOnce(t, events, ids("k", 200))
}

// TestJournalInlineFlush: lines wait in the journal until the request
// whose lines bring those waiting to flushBytes, which writes them all to
// the file before its Write returns; no timer is involved.
func TestJournalInlineFlush(t *testing.T) {
	dir := t.TempDir()
	s, err := NewFileSink(dir, FileOptions{Journal: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.j == nil {
		t.Fatal("no journal on this system")
	}
	s.mu.Lock()
	s.delay = time.Hour // only the flushBytes group writes
	s.mu.Unlock()
	inFile := 0
	for round := range 3 {
		waiting := 0
		var want []string
		for i := 0; ; i++ {
			e := testEvent(fmt.Sprintf("r%d-%05d", round, i))
			waiting += len(e.AppendJSON(nil)) + 1
			want = append(want, e.RequestID)
			if err := s.Write(t.Context(), e); err != nil {
				t.Fatal(err)
			}
			events, _ := readLines(t, dir)
			if waiting < flushBytes {
				if len(events) != inFile {
					t.Fatalf("round %d: %d bytes waiting (< %d), yet the file holds %d events, not %d", round, waiting, flushBytes, len(events), inFile)
				}
				continue
			}
			if len(events) != inFile+len(want) {
				t.Fatalf("round %d: after the %d-byte group write the file holds %d events, want %d", round, waiting, len(events), inFile+len(want))
			}
			inFile = len(events)
			// This Write's lines reached flushBytes: it wrote them all.
			got := events[len(events)-len(want):]
			for k := range want {
				if got[k].RequestID != want[k] {
					t.Fatalf("round %d: after the %d-byte group write, event %d is %q, want %q", round, waiting, k, got[k].RequestID, want[k])
				}
			}
			break
		}
		s.mu.Lock()
		pending, queued := s.pending, len(s.queue)
		s.mu.Unlock()
		if pending != 0 || queued != 0 {
			t.Fatalf("round %d: after the inline group write %d bytes (%d writes) still wait", round, pending, queued)
		}
	}
}

// TestJournalTimerFlush: a few lines, far from flushBytes, reach the file
// once the slow timer fires, without any other write or reader.
func TestJournalTimerFlush(t *testing.T) {
	dir := t.TempDir()
	s, err := NewFileSink(dir, FileOptions{Journal: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.j == nil {
		t.Fatal("no journal on this system")
	}
	start := time.Now()
	want := ids("tail-", 3)
	for _, id := range want {
		if err := s.Write(t.Context(), testEvent(id)); err != nil {
			t.Fatal(err)
		}
	}
	if events, _ := readLines(t, dir); len(events) != 0 && time.Since(start) < flushDelay {
		t.Fatalf("the file holds %d events before the timer (%v)", len(events), flushDelay)
	}
	for {
		events, _ := readLines(t, dir)
		if len(events) == len(want) {
			checkOnce(t, events, want)
			if d := time.Since(start); d < flushDelay {
				t.Errorf("written after %v, before the timer's %v", d, flushDelay)
			}
			return
		}
		if time.Since(start) > 20*flushDelay {
			t.Fatalf("after %v the file holds %d of %d events", time.Since(start), len(events), len(want))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestJournalReaderSeesLines: CatchUp (what LookupEvents calls) and Flush
// see every event written just before them, without waiting for the timer
// or flushBytes, with writers still writing meanwhile.
func TestJournalReaderSeesLines(t *testing.T) { bothModes(t, testJournalReaderSeesLines) }

func testJournalReaderSeesLines(t *testing.T, lazy bool) {
	dir := t.TempDir()
	store := openTestStore(t)
	tr, err := OpenTrail(t.Context(), dir, store, TrailOptions{File: FileOptions{Journal: true},
		Linger: time.Millisecond, Lazy: lazy})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if tr.file.j == nil {
		t.Fatal("no journal on this system")
	}
	tr.file.mu.Lock()
	tr.file.delay = time.Hour // only flushBytes and the readers write
	tr.file.mu.Unlock()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // other requests, meanwhile
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := tr.Write(t.Context(), trailEvent(fmt.Sprintf("other-%06d", i))); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(100 * time.Microsecond)
		}
	})
	defer func() { close(stop); wg.Wait() }()
	for round := range 5 {
		want := ids(fmt.Sprintf("r%d-", round), 3)
		for _, id := range want {
			if err := tr.Write(t.Context(), trailEvent(id)); err != nil {
				t.Fatal(err)
			}
		}
		if err := tr.CatchUp(t.Context()); err != nil {
			t.Fatal(err)
		}
		got := stored(t, store)
		inFiles := fileEvents(t, dir)
		for _, id := range want {
			if got[id] == nil {
				t.Errorf("round %d: %s written before CatchUp is not in the store", round, id)
			}
			if inFiles[id] != 1 {
				t.Errorf("round %d: %s is %d times in the files, want 1", round, id, inFiles[id])
			}
		}
	}
	// FileSink.Flush alone: the file holds a line written just before.
	if err := tr.Write(t.Context(), trailEvent("last")); err != nil {
		t.Fatal(err)
	}
	if err := tr.file.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := fileEvents(t, dir)["last"]; n != 1 {
		t.Errorf("after Flush the files hold the event written before it %d times, want 1", n)
	}
}
