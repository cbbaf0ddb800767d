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
}

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
	// line into buf, and nothing keeps it after).
	lineBufs sync.Pool

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
	s := &FileSink{dir: dir, max: opts.MaxBytes, now: opts.Now, sync: opts.Sync,
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
	if err := s.prune(); err != nil {
		s.f.Close()
		return nil, err
	}
	return s, nil
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

// lineWaiter is one Write waiting for its line (or writeAll for its lines)
// to reach the file.
type lineWaiter struct {
	line []byte
	recs []*storage.EventRecord // the lines' records, for onWrite
	done bool                   // the line was written, or failed with err
	err  error                  // set with done when the line was not written
	seq  uint64                 // the line's number (FileSink.written after it)
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
			fail(i, werr)
			return
		}
		end := before
		for ; i < j; i++ {
			s.written++
			batch[i].done, batch[i].seq = true, s.written
			end += int64(len(batch[i].line))
			if s.onWrite != nil {
				s.onWrite(batch[i], end)
			}
		}
		s.size = end
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
	s.closed = true
	for s.syncing || s.flushing {
		s.cond.Wait()
	}
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
