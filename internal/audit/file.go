package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/keyfort/keyfort/internal/durable"
	"github.com/keyfort/keyfort/internal/storage"
)

// FileName is the name of the file a FileSink appends to.
const FileName = "keyfort-audit.jsonl"

// DefaultMaxBytes is the size at which a FileSink rotates by default.
const DefaultMaxBytes = 64 << 20

// rotatedTimeFormat names rotated files; names sort in rotation order.
const rotatedTimeFormat = "20060102T150405.000000000Z"

// FileOptions configures a FileSink.
type FileOptions struct {
	// MaxBytes is the size after which the file is rotated (a line is never
	// split across files). Zero or less means DefaultMaxBytes.
	MaxBytes int64
	// Now names rotated files (nil means time.Now).
	Now func() time.Time
	// Sync makes Write return only after the line is fsynced. Concurrent
	// writers share one fsync (group commit).
	Sync bool
	// MaxAge deletes rotated files rotated more than MaxAge ago (by the
	// time in their name, which is after their last event). Zero keeps
	// them whatever their age.
	MaxAge time.Duration
	// MaxTotalBytes deletes the oldest rotated files while the rotated
	// files and the current file together are larger. Zero keeps them
	// whatever their size. The current file is never deleted, so it alone
	// may be larger.
	MaxTotalBytes int64
	// Logger reports rotated files that retention could not delete (nil
	// discards). Such a failure does not fail writes.
	Logger *slog.Logger
	// Journal makes Write return once the lines are copied into the
	// memory-mapped journal (<dir>/.journal; see journal.go) rather than
	// after their own write(2): they then survive the process being killed
	// as they would after write(2), and reach the file grouped with other
	// requests' lines: the request whose lines bring those waiting to
	// flushBytes writes them all, a timer writes what waits after
	// flushDelay, and readers of the files (Flush) write what waits before
	// they read. Ignored with Sync, and where the
	// system has no memory-mapped files. Whatever the option, opening a
	// sink appends to the file what a journal left there holds.
	Journal bool
}

// flushBytes and flushDelay bound how long journaled lines wait for their
// group write to the file: the request whose copy brings the lines waiting
// to flushBytes or more writes them, inline (one write(2) for some 30
// requests); a timer writes what waits after flushDelay, for when traffic
// is low. The timer is slow so that its wake-ups (at most 1/flushDelay a
// second) cost nothing on a busy server; a reader of the files does not
// wait for it (Flush).
const (
	flushBytes = 32 << 10
	flushDelay = 200 * time.Millisecond
)

// FileSink appends events as JSON lines to <dir>/keyfort-audit.jsonl and
// rotates it by size to keyfort-audit-<UTC timestamp>.jsonl. Files are mode
// 0600 and a directory it creates is mode 0700. It is safe for concurrent
// use. Retention (FileOptions.MaxAge, FileOptions.MaxTotalBytes) deletes
// rotated files when the sink opens and after each rotation.
//
// Write returns only after the line has been handed to the kernel with
// write(2), so it survives the process being killed; with
// FileOptions.Sync it also survives power loss. After an fsync or rotation
// error the sink fails every later Write (fail closed): data may have been
// lost, and retrying an fsync cannot tell.
type FileSink struct {
	dir      string
	max      int64
	now      func() time.Time
	sync     bool
	maxAge   time.Duration
	maxTotal int64
	log      *slog.Logger

	mu      sync.Mutex
	cond    sync.Cond // on mu; signals the end of an fsync
	f       *os.File
	size    int64
	written uint64 // lines written so far
	synced  uint64 // lines known to be durable
	syncing bool   // an fsync runs without mu held
	err     error  // sticky failure
	closed  bool

	queue    []*lineWaiter // lines waiting for the next group write
	flushing bool          // a group write runs without mu held
	buf      []byte        // the group write's buffer, reused

	// lineBufs holds *[]byte buffers that Write and writeAll encode lines
	// into and take back once writeLines returns (flushLocked copies a
	// line into buf, and nothing keeps it after; a journaled line's waiter
	// refers to the journal's copy instead, see journalLocked).
	lineBufs sync.Pool

	j       *journal    // nil: every Write writes its own lines
	pending int         // bytes journaled and not yet written to the file
	timer   *time.Timer // writes what the journal holds after delay
	armed   bool        // timer is set
	delay   time.Duration

	// onWrite, if set, is called with mu held for each waiter whose lines
	// were written, in file order, with the file's size after them; and
	// onRotate after the file was renamed to rotated (a base name). Trail
	// ships what was written to the store through them.
	onWrite  func(w *lineWaiter, end int64)
	onRotate func(rotated string)
}

// NewFileSink opens (creating if needed) the audit file in dir.
func NewFileSink(dir string, opts FileOptions) (*FileSink, error) {
	if opts.MaxAge < 0 || opts.MaxTotalBytes < 0 {
		return nil, fmt.Errorf("audit: negative retention (MaxAge %v, MaxTotalBytes %d); zero keeps every file", opts.MaxAge, opts.MaxTotalBytes)
	}
	s := &FileSink{dir: dir, max: opts.MaxBytes, now: opts.Now, sync: opts.Sync, delay: flushDelay,
		maxAge: opts.MaxAge, maxTotal: opts.MaxTotalBytes, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.max <= 0 {
		s.max = DefaultMaxBytes
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.cond.L = &s.mu
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: create directory: %w", err)
	}
	if err := s.open(); err != nil {
		return nil, err
	}
	if err := s.openJournal(opts.Journal && !opts.Sync); err != nil {
		s.f.Close()
		return nil, err
	}
	if err := s.prune(); err != nil {
		s.closeJournal()
		s.f.Close()
		return nil, err
	}
	return s, nil
}

// openJournal appends to the file the lines a journal left in dir that it
// does not hold yet, then keeps the journal when use (else removes it).
func (s *FileSink) openJournal(use bool) error {
	if _, err := os.Stat(filepath.Join(s.dir, journalName)); err != nil && !use {
		return nil // none left, none wanted
	}
	j, err := openJournal(s.dir)
	if errors.Is(err, errNoJournal) {
		return nil
	}
	if err != nil {
		return err
	}
	records, flushed := j.pendingRecords()
	if len(records) > 0 {
		// The last group write before the process ended may have reached
		// the file without its records being marked: then the file ends
		// with the first k of their lines, written in one piece after the
		// end of the last line marked. Lines, not records: a process
		// killed during a write(2) of several pages may leave only its
		// first pages, and open cut the torn line, which can leave part
		// of a record of several lines (one request's events). Only the
		// other lines are appended.
		var lines [][]byte
		for _, r := range records {
			for len(r) > 0 {
				n := bytes.IndexByte(r, '\n') + 1
				if n == 0 {
					n = len(r) // not written by writeLines; kept whole
				}
				lines, r = append(lines, r[:n]), r[n:]
			}
		}
		k, err := s.writtenPrefix(lines)
		if err != nil {
			j.unmap()
			return err
		}
		var rest []byte
		for _, l := range lines[k:] {
			rest = append(rest, l...)
		}
		if len(rest) > 0 {
			w := &lineWaiter{line: rest}
			s.mu.Lock()
			s.queue = append(s.queue, w)
			s.flushLocked()
			s.mu.Unlock()
			if w.err != nil {
				j.unmap()
				return fmt.Errorf("audit: append the journal's lines: %w", w.err)
			}
		}
		s.log.Info("audit: appended the lines of answered requests the journal held", "records", len(records), "lines", len(lines)-k, "lines_already_in_file", k)
	}
	j.reset(flushed + uint64(len(records)))
	if !use {
		if err := j.unmap(); err != nil {
			return fmt.Errorf("audit: unmap journal: %w", err)
		}
		return removeJournal(s.dir)
	}
	s.j = j
	return nil
}

// writtenPrefix returns the largest k such that the current file ends with
// records[0..k) written one after the other (openJournal passes lines).
func (s *FileSink) writtenPrefix(records [][]byte) (int, error) {
	total := 0
	for _, r := range records {
		total += len(r)
	}
	n := min(int64(total), s.size)
	tail := make([]byte, n)
	if n > 0 {
		r, err := os.Open(filepath.Join(s.dir, FileName))
		if err != nil {
			return 0, fmt.Errorf("audit: open %s: %w", FileName, err)
		}
		defer r.Close()
		if _, err := r.ReadAt(tail, s.size-n); err != nil {
			return 0, fmt.Errorf("audit: read %s: %w", FileName, err)
		}
	}
	for k := len(records); k > 0; k-- {
		size := 0
		for _, r := range records[:k] {
			size += len(r)
		}
		if size > len(tail) {
			continue
		}
		end := tail[len(tail)-size:]
		match := true
		for _, r := range records[:k] {
			if !bytes.Equal(end[:len(r)], r) {
				match = false
				break
			}
			end = end[len(r):]
		}
		if match {
			return k, nil
		}
	}
	return 0, nil
}

// closeJournal unmaps the journal. Called with mu held or before the sink
// is shared.
func (s *FileSink) closeJournal() {
	if s.j == nil {
		return
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	if err := s.j.unmap(); err != nil {
		s.log.Warn("audit: unmap journal", "err", err)
	}
	s.j = nil
}

const rotatedPrefix, rotatedSuffix = "keyfort-audit-", ".jsonl"

// prune applies retention to the rotated files in s.dir. The caller holds
// s.mu or is the constructor. It returns an error only when the directory
// cannot be read or a file cannot be deleted.
func (s *FileSink) prune() error {
	if s.maxAge <= 0 && s.maxTotal <= 0 {
		return nil
	}
	entries, err := os.ReadDir(s.dir) // sorted by name: oldest rotation first
	if err != nil {
		return fmt.Errorf("audit: retention: %w", err)
	}
	type rotated struct {
		name    string
		rotated time.Time
		size    int64
	}
	var files []rotated
	total := s.size
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(name, rotatedPrefix) || !strings.HasSuffix(name, rotatedSuffix) {
			continue
		}
		t, err := time.Parse(rotatedTimeFormat, name[len(rotatedPrefix):len(name)-len(rotatedSuffix)])
		if err != nil {
			continue // not a name this sink gives
		}
		fi, err := e.Info()
		if err != nil {
			continue // deleted meanwhile
		}
		files = append(files, rotated{name, t, fi.Size()})
		total += fi.Size()
	}
	cutoff := s.now().Add(-s.maxAge)
	var errs []error
	removed := false
	for _, f := range files {
		tooOld := s.maxAge > 0 && f.rotated.Before(cutoff)
		tooBig := s.maxTotal > 0 && total > s.maxTotal
		if !tooOld && !tooBig {
			break // the files after f are newer, and the total only fell
		}
		if err := os.Remove(filepath.Join(s.dir, f.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("audit: retention: %w", err))
			continue
		}
		removed = true
		total -= f.size
	}
	if removed && s.sync {
		if err := durable.SyncDir(s.dir); err != nil {
			errs = append(errs, fmt.Errorf("audit: retention: sync directory %s: %w", s.dir, err))
		}
	}
	return errors.Join(errs...)
}

// open opens the current file for appending and cuts a torn last line.
func (s *FileSink) open() error {
	path := filepath.Join(s.dir, FileName)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: open %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit: stat %s: %w", path, err)
	}
	size := fi.Size()
	if size > 0 {
		// A crash may have left a partial last line: cut the file back to
		// the end of its last complete line, so that every line in it is a
		// whole event (a torn line is never left inside a file).
		keep, err := completeLinesEnd(path, size)
		if err != nil {
			f.Close()
			return err
		}
		if keep != size {
			if err := f.Truncate(keep); err != nil {
				f.Close()
				return fmt.Errorf("audit: repair %s: %w", path, err)
			}
			size = keep
		}
	}
	if s.sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("audit: sync %s: %w", path, err)
		}
		if err := durable.SyncDir(s.dir); err != nil {
			f.Close()
			return fmt.Errorf("audit: sync directory %s: %w", s.dir, err)
		}
	}
	s.f, s.size = f, size
	return nil
}

// ApplyRetention deletes the rotated files that FileOptions.MaxAge and
// FileOptions.MaxTotalBytes no longer keep. The sink does so itself at open
// and after each rotation; call it periodically so that files also age out
// while little is written. It returns an error when the directory cannot be
// read or a file cannot be deleted; writes go on either way.
func (s *FileSink) ApplyRetention() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return s.prune()
}

// completeLinesEnd returns the length of the longest prefix of the file at
// path (size bytes long) that ends with a newline: 0 if it has none.
func completeLinesEnd(path string, size int64) (int64, error) {
	r, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("audit: open %s: %w", path, err)
	}
	defer r.Close()
	buf := make([]byte, 64<<10)
	for end := size; end > 0; {
		start := max(end-int64(len(buf)), 0)
		chunk := buf[:end-start]
		if _, err := r.ReadAt(chunk, start); err != nil {
			return 0, fmt.Errorf("audit: read %s: %w", path, err)
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// Write appends e as one JSON line. ctx is not used to abandon the write:
// a request that was cancelled is still recorded.
func (s *FileSink) Write(ctx context.Context, e *Event) error {
	return s.writeAll(ctx, []*Event{e})
}

// writeAll appends the events as consecutive lines with one write(2) (see
// WriteAll): all of them reach the file, in one file, or none.
func (s *FileSink) writeAll(_ context.Context, events []*Event) error {
	bp := s.lineBuf()
	lines, err := encodeLines((*bp)[:0], events)
	if err == nil {
		err = s.writeLines(lines, nil)
	}
	*bp = lines
	s.putLineBuf(bp)
	return err
}

// maxPooledLineBuf is the largest line buffer kept for reuse: an event near
// MaxFieldBytes is rare, and its buffer is left to the garbage collector.
const maxPooledLineBuf = 16 << 10

// lineBuf returns a buffer for encodeLines, to give back with putLineBuf
// once no one refers to the lines.
func (s *FileSink) lineBuf() *[]byte {
	if bp, ok := s.lineBufs.Get().(*[]byte); ok {
		return bp
	}
	b := make([]byte, 0, 4096)
	return &b
}

func (s *FileSink) putLineBuf(bp *[]byte) {
	if cap(*bp) <= maxPooledLineBuf {
		s.lineBufs.Put(bp)
	}
}

// encodeLines appends events to b as consecutive JSON lines. A line holds
// no other newline: JSON escapes it inside strings. On error it returns b
// (possibly grown) with unspecified content.
func encodeLines(b []byte, events []*Event) ([]byte, error) {
	for _, e := range events {
		if err := e.checkRaw(); err != nil {
			return b, err
		}
		b = append(e.AppendJSON(b), '\n')
	}
	return b, nil
}

// writeLines appends whole lines, durably when the sink syncs. recs, if
// not nil, are the lines' records, handed to onWrite once written.
func (s *FileSink) writeLines(lines []byte, recs []*storage.EventRecord) error {
	w := &lineWaiter{line: lines, recs: recs}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.err != nil {
		return s.err
	}
	if s.j != nil {
		if len(lines) <= s.j.maxRecord() {
			return s.journalLocked(w)
		}
		// Too large for the journal: written alone, after every journaled
		// line (a group write never holds journaled lines after it).
		if err := s.flushJournaledLocked(); err != nil {
			return err
		}
	}
	// Group write: concurrent callers queue their lines; whoever finds no
	// write in progress writes every queued line with one write(2) per
	// file, and each caller returns once its own line is written.
	s.queue = append(s.queue, w)
	for !w.done {
		if s.flushing {
			s.cond.Wait()
			continue
		}
		s.flushLocked()
	}
	if w.err != nil || !s.sync {
		return w.err
	}
	return s.waitSyncedLocked(w.seq)
}

// journalLocked copies w's lines into the journal and queues them for the
// next group write, which it runs itself when its lines bring those
// waiting to flushBytes (else a later request, the timer or a reader runs
// it). A full journal waits for a group write to free room.
func (s *FileSink) journalLocked(w *lineWaiter) error {
	for {
		if s.err != nil {
			return s.err
		}
		copied, end, ok, err := s.j.append(w.line)
		if err != nil {
			s.err = err
			return err
		}
		if ok {
			// The group write reads the journal's copy: the caller may
			// reuse its buffer (FileSink.lineBufs) once Write returns.
			w.line, w.jseq, w.jend = copied, s.j.seq, end
			break
		}
		if s.flushing {
			s.cond.Wait()
			continue
		}
		if len(s.queue) == 0 {
			// Nothing to write, yet no room: cannot happen while the
			// journal only holds queued records.
			s.err = errors.New("audit: journal full with nothing to write")
			return s.err
		}
		s.flushLocked()
	}
	s.queue = append(s.queue, w)
	s.pending += len(w.line)
	if s.pending >= flushBytes && !s.flushing {
		s.flushLocked()
		return nil
	}
	if !s.armed {
		s.armed = true
		if s.timer == nil {
			s.timer = time.AfterFunc(s.delay, s.timedFlush)
		} else {
			s.timer.Reset(s.delay)
		}
	}
	return nil
}

// timedFlush writes the journaled lines that waited s.delay.
func (s *FileSink) timedFlush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed = false
	if s.closed || s.flushing || len(s.queue) == 0 {
		return // Close or the running group write takes them
	}
	s.flushLocked()
}

// flushJournaledLocked returns once every line journaled before the call
// is written to the file, or the sink failed or was closed. Unlike
// flushAllLocked it does not also wait for lines journaled meanwhile,
// which under steady traffic could keep it writing. Lines not journaled
// are in the file once their Write returned.
func (s *FileSink) flushJournaledLocked() error {
	if s.j == nil {
		return s.err
	}
	target := s.j.seq
	for s.err == nil && !s.closed && s.j.flushed < target {
		if s.flushing {
			s.cond.Wait()
			continue
		}
		s.flushLocked()
	}
	if s.err == nil && s.closed && s.j.flushed < target {
		return ErrClosed
	}
	return s.err
}

// flushAllLocked returns once every queued line is written (or failed).
// Close uses it; while requests come, prefer flushJournaledLocked.
func (s *FileSink) flushAllLocked() error {
	for s.flushing || len(s.queue) > 0 {
		if s.flushing {
			s.cond.Wait()
			continue
		}
		s.flushLocked()
	}
	return s.err
}

// Flush returns once every line written before the call is in the file.
// With a journal, Write returns before that; readers of the files call
// Flush (or flushJournaledLocked, with mu held) first.
func (s *FileSink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return s.flushJournaledLocked()
}

// lineWaiter is one Write waiting for its line (or writeAll for its lines)
// to reach the file.
type lineWaiter struct {
	line []byte
	recs []*storage.EventRecord // the lines' records, for onWrite
	done bool                   // the line was written, or failed with err
	err  error                  // set with done when the line was not written
	seq  uint64                 // the line's number (FileSink.written after it)
	jseq uint64                 // its journal record's seq (0: not journaled)
	jend int                    // the ring offset after its record
}

// flushLocked writes every queued line, rotating between lines where the
// file would pass its size, and marks each waiter done. It releases s.mu
// around each write(2); s.flushing keeps other writers waiting meanwhile.
func (s *FileSink) flushLocked() {
	batch := s.queue
	s.queue = nil
	s.flushing = true
	defer func() {
		s.flushing = false
		s.cond.Broadcast()
	}()
	fail := func(from int, err error) {
		for _, w := range batch[from:] {
			w.done, w.err = true, err
		}
	}
	for i := 0; i < len(batch); {
		if s.closed {
			fail(i, ErrClosed)
			return
		}
		if s.err != nil {
			fail(i, s.err)
			return
		}
		// Rotate before a line that would pass the size (never split one).
		if s.size != 0 && s.size+int64(len(batch[i].line)) > s.max {
			for s.syncing {
				s.cond.Wait() // never close a file that is being fsynced
			}
			if err := s.rotateLocked(); err != nil {
				s.err = err
				fail(i, err)
				return
			}
		}
		// The lines that fit in the current file go out together.
		j, size := i, s.size
		s.buf = s.buf[:0]
		for j < len(batch) && (j == i || size+int64(len(batch[j].line)) <= s.max) {
			s.buf = append(s.buf, batch[j].line...)
			size += int64(len(batch[j].line))
			j++
		}
		f, buf, before := s.f, s.buf, s.size
		s.mu.Unlock()
		n, err := f.Write(buf)
		s.mu.Lock()
		if err != nil {
			werr := fmt.Errorf("audit: write %s: %w", FileName, err)
			if n > 0 {
				// Take back the partial lines so the next line starts clean.
				if terr := f.Truncate(before); terr != nil {
					s.err = fmt.Errorf("audit: write %s: %w (and cannot remove the partial line: %v)", FileName, err, terr)
					werr = s.err
				}
			}
			if s.j != nil {
				// Journaled lines were answered already: they stay in the
				// journal (the next start appends them), and no later line
				// may be marked written before them. Fail closed.
				s.err = werr
				s.log.Error("audit: cannot write the file; requests fail until restart, and the journal keeps the lines of those answered", "err", err)
			}
			fail(i, werr)
			return
		}
		end := before
		var jseq uint64
		var jend int
		for ; i < j; i++ {
			s.written++
			batch[i].done, batch[i].seq = true, s.written
			end += int64(len(batch[i].line))
			if batch[i].jseq != 0 {
				jseq, jend = batch[i].jseq, batch[i].jend
				s.pending -= len(batch[i].line)
			}
			if s.onWrite != nil {
				s.onWrite(batch[i], end)
			}
		}
		s.size = end
		if jseq != 0 {
			s.j.confirm(jseq, jend)
		}
	}
}

// waitSyncedLocked returns once line seq is durable. The first waiter runs
// one fsync for every line written so far; the others wait for it.
func (s *FileSink) waitSyncedLocked(seq uint64) error {
	for s.synced < seq {
		if s.err != nil {
			return s.err
		}
		if s.syncing {
			s.cond.Wait()
			continue
		}
		s.syncing = true
		target, f := s.written, s.f
		s.mu.Unlock()
		err := f.Sync()
		s.mu.Lock()
		s.syncing = false
		if err != nil {
			s.err = fmt.Errorf("audit: fsync %s: %w", FileName, err)
		} else if target > s.synced {
			s.synced = target
		}
		s.cond.Broadcast()
	}
	return nil
}

// rotateLocked moves the full file aside and opens a new one. No fsync is
// running.
func (s *FileSink) rotateLocked() error {
	cur := filepath.Join(s.dir, FileName)
	if s.sync {
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("audit: rotate: fsync %s: %w", cur, err)
		}
	}
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("audit: rotate: close %s: %w", cur, err)
	}
	s.synced = s.written
	t := s.now().UTC()
	var dst string
	for i := 0; ; i++ {
		dst = filepath.Join(s.dir, rotatedPrefix+t.Format(rotatedTimeFormat)+rotatedSuffix)
		if _, err := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
			break
		}
		if i == 1000 {
			return fmt.Errorf("audit: rotate: no free file name near %s", dst)
		}
		t = t.Add(time.Nanosecond)
	}
	if err := os.Rename(cur, dst); err != nil {
		return fmt.Errorf("audit: rotate: %w", err)
	}
	if s.onRotate != nil {
		s.onRotate(filepath.Base(dst))
	}
	if err := s.open(); err != nil {
		return fmt.Errorf("audit: rotate: %w", err)
	}
	if !s.sync {
		// open synced the directory already when s.sync; make the rename
		// durable otherwise too, as rotation is rare.
		if err := durable.SyncDir(s.dir); err != nil {
			return fmt.Errorf("audit: rotate: sync directory: %w", err)
		}
	}
	// Old files that stay are no lost event: report, do not fail writes.
	if err := s.prune(); err != nil {
		s.log.Error("audit retention could not delete rotated files", "err", err)
	}
	return nil
}

// Close flushes (fsyncs, with FileOptions.Sync) and closes the file. Later
// Writes return ErrClosed.
func (s *FileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if s.j != nil && s.err == nil {
		// Journaled lines were answered: write them before closing.
		if err := s.flushAllLocked(); err != nil {
			s.log.Error("audit: lines left in the journal at close; the next start appends them", "err", err)
		}
	}
	s.closed = true
	for s.syncing || s.flushing {
		s.cond.Wait()
	}
	defer s.closeJournal()
	for _, w := range s.queue { // queued but never written
		w.done, w.err = true, ErrClosed
	}
	s.queue = nil
	var serr error
	if s.sync && s.err == nil {
		if err := s.f.Sync(); err != nil {
			serr = fmt.Errorf("audit: fsync %s: %w", FileName, err)
			s.err = serr
		} else {
			s.synced = s.written
		}
	}
	if s.err == nil {
		s.synced = s.written
	}
	s.cond.Broadcast()
	var cerr error
	if s.f != nil {
		if err := s.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
			cerr = fmt.Errorf("audit: close %s: %w", FileName, err)
		}
	}
	return errors.Join(serr, cerr)
}
