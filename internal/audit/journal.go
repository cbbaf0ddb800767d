package audit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime/debug"
)

// The journal lets a request's audit lines be written before its response
// without a system call per request. FileSink copies each request's lines
// into a file mapped into memory (<audit>/.journal): once copied they are
// in the kernel's page cache, as after write(2), so they survive the
// process being killed. The lines reach the JSON-lines file in groups,
// with one write(2) for many requests (FileSink.flushLocked): by the
// request that brings the lines waiting to flushBytes, by a timer after
// flushDelay, or before a reader reads the files; the journal's header then
// records them as written, which frees their space. At open, FileSink
// appends to the file the records the header does not mark written and the
// file does not already end with.
//
// Layout: a header page, then a ring of records, each
//
//	magic "KFR1" | length uint32 | seq uint64 | crc32c(seq, lines) uint32 | 0 uint32 | lines | padding to 8
//
// A record that would cross the ring's end starts at the ring's start
// instead (a wrap marker "KFRW" is left where it would have begun, when it
// fits). Records have consecutive seq numbers; a scan stops at the first
// place that does not hold the next one, so bytes left from earlier laps
// are never taken for records.
const (
	journalName       = ".journal"
	journalSize       = 256 << 10
	journalHeaderSize = 4096
	recordHeaderSize  = 24
	journalMagic      = "KFJ1"
	recordMagic       = "KFR1"
	wrapMagic         = "KFRW"

	// headerFlushed holds the seq of the last record written to the file,
	// headerTail the ring offset of the record after it.
	headerFlushed = 8
	headerTail    = 16
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// journal is the mapped ring. Its methods are called with FileSink.mu held.
type journal struct {
	m     []byte // the whole mapping
	unmap func() error
	head  int    // ring offset where the next record goes
	tail  int    // ring offset of the oldest record not yet written to the file
	seq   uint64 // seq of the last record appended
	// flushed is the seq of the last record written to the file (as in
	// the header): records up to it are in the file.
	flushed uint64
}

// ring returns the ring's bytes (the mapping after the header).
func (j *journal) ring() []byte { return j.m[journalHeaderSize:] }

// recordLen is the space a record of n bytes of lines takes in the ring.
func recordLen(n int) int { return (recordHeaderSize + n + 7) &^ 7 }

// maxRecord is the most bytes of lines one record holds: a quarter of the
// ring, so that one large write cannot hold up the others for long.
func (j *journal) maxRecord() int { return len(j.ring())/4 - recordHeaderSize }

// free returns the ring bytes a new record may use before reaching the tail
// (one byte always stays free, so that head == tail means empty).
func (j *journal) free() int {
	if j.head >= j.tail {
		return len(j.ring()) - j.head + j.tail - 1
	}
	return j.tail - j.head - 1
}

// append copies lines into the ring as record seq+1 and returns the copy
// (valid until confirm frees its record) and the ring offset after it, or
// ok false when the ring has no room for it now. A
// fault while copying (the file system could not give the mapping a page:
// a full disk on a copy-on-write file system) is returned as an error
// rather than ending the process.
func (j *journal) append(lines []byte) (copied []byte, end int, ok bool, err error) {
	ring := j.ring()
	n := recordLen(len(lines))
	at := j.head
	if at+n > len(ring) {
		// Wrap: the bytes to the ring's end are given up.
		if j.head < j.tail || j.tail == 0 || n > j.tail-1 {
			return nil, 0, false, nil
		}
		at = 0
	} else if n > j.free() {
		return nil, 0, false, nil
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("audit: write journal: %v", p)
		}
	}()
	if at != j.head && j.head+4 <= len(ring) {
		copy(ring[j.head:], wrapMagic)
	}
	seq := j.seq + 1
	r := ring[at : at+n]
	copy(r[recordHeaderSize:], lines)
	binary.LittleEndian.PutUint32(r[4:], uint32(len(lines)))
	binary.LittleEndian.PutUint64(r[8:], seq)
	binary.LittleEndian.PutUint32(r[16:], recordCRC(seq, lines))
	binary.LittleEndian.PutUint32(r[20:], 0)
	// The magic last: a record is whole once it is there (a process
	// killed midway leaves no record, and its request was not answered).
	copy(r, recordMagic)
	j.seq, j.head = seq, at+n
	return r[recordHeaderSize : recordHeaderSize+len(lines) : recordHeaderSize+len(lines)], j.head, true, nil
}

func recordCRC(seq uint64, lines []byte) uint32 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], seq)
	return crc32.Update(crc32.Update(0, crc32c, b[:]), crc32c, lines)
}

// confirm records that every record up to seq, which ends at ring offset
// end, is in the file, freeing their space.
func (j *journal) confirm(seq uint64, end int) {
	// flushed before tail: a process killed between the two leaves an old
	// tail and a newer flushed seq, and a scan skips what is flushed.
	binary.LittleEndian.PutUint64(j.m[headerFlushed:], seq)
	binary.LittleEndian.PutUint64(j.m[headerTail:], uint64(end))
	j.tail, j.flushed = end, seq
	if j.tail == j.head {
		// Empty: start the next lap at the ring's start, leaving no
		// record's bytes after the head that the next scan could follow.
		j.head, j.tail = 0, 0
		binary.LittleEndian.PutUint64(j.m[headerTail:], 0)
	}
}

// pendingRecords returns the lines of the records in the ring not yet
// marked written to the file, oldest first, with the seq of the last one
// marked written.
func (j *journal) pendingRecords() (records [][]byte, flushed uint64) {
	ring := j.ring()
	flushed = binary.LittleEndian.Uint64(j.m[headerFlushed:])
	at := int(binary.LittleEndian.Uint64(j.m[headerTail:]))
	if at < 0 || at >= len(ring) {
		return nil, flushed
	}
	next := uint64(0) // the seq the next record must have; 0: any after flushed
	for wrapped := false; ; {
		if at+recordHeaderSize > len(ring) || string(ring[at:at+4]) == wrapMagic {
			if wrapped {
				break
			}
			at, wrapped = 0, true
			continue
		}
		if string(ring[at:at+4]) != recordMagic {
			break
		}
		n := int(binary.LittleEndian.Uint32(ring[at+4:]))
		seq := binary.LittleEndian.Uint64(ring[at+8:])
		if n < 0 || at+recordLen(n) > len(ring) || (next != 0 && seq != next) {
			break
		}
		lines := ring[at+recordHeaderSize : at+recordHeaderSize+n]
		if binary.LittleEndian.Uint32(ring[at+16:]) != recordCRC(seq, lines) {
			break
		}
		if seq > flushed {
			records = append(records, bytes.Clone(lines))
		}
		next = seq + 1
		at += recordLen(n)
		if at == len(ring) {
			if wrapped {
				break
			}
			at, wrapped = 0, true
		}
	}
	return records, flushed
}

// reset empties the journal: every record is in the file.
func (j *journal) reset(seq uint64) {
	j.seq, j.flushed = seq, seq
	j.head, j.tail = 0, 0
	binary.LittleEndian.PutUint64(j.m[headerFlushed:], seq)
	binary.LittleEndian.PutUint64(j.m[headerTail:], 0)
}

// openJournal maps dir's journal, making it when there is none.
func openJournal(dir string) (*journal, error) {
	m, unmap, err := mapJournal(filepath.Join(dir, journalName), journalSize)
	if err != nil {
		return nil, err
	}
	j := &journal{m: m, unmap: unmap}
	if string(m[:4]) != journalMagic {
		if !bytes.Equal(m[:4], make([]byte, 4)) {
			unmap()
			return nil, fmt.Errorf("audit: %s is not a Keyfort journal", filepath.Join(dir, journalName))
		}
		copy(m, journalMagic) // a new journal: nothing pending
	}
	return j, nil
}

// errNoJournal is mapJournal's error where memory-mapped files are not
// available: the sink then writes each request's lines itself.
var errNoJournal = errors.New("audit: no memory-mapped journal on this system")

// removeJournal deletes dir's journal file, if any.
func removeJournal(dir string) error {
	if err := os.Remove(filepath.Join(dir, journalName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("audit: remove journal: %w", err)
	}
	return nil
}
