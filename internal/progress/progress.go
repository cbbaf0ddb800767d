// Package progress writes the progress line of a long operator command
// (keyfort backup, restore): how much is done, how much is left, and about
// how long that takes. On a terminal the line is redrawn in place at most
// five times a second; elsewhere (a log file, a pipe) a whole line is
// written at most every five seconds and at the end of each phase, so that
// logs are never garbled. It imports only the standard library (leaf).
package progress

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Line is the progress line of one command. Its methods are safe for
// concurrent use.
type Line struct {
	w        io.Writer
	prefix   string
	terminal bool
	every    time.Duration
	now      func() time.Time

	mu         sync.Mutex
	phase      string
	complete   bool // the phase's last line is written
	phaseStart time.Time
	last       time.Time
	drawn      bool // a terminal line is on screen, without its newline
}

// New returns the progress line of the command named prefix (e.g.
// "backup"), written to w.
func New(w io.Writer, prefix string) *Line {
	l := &Line{w: w, prefix: prefix, terminal: IsTerminal(w), now: time.Now}
	l.every = 5 * time.Second
	if l.terminal {
		l.every = 200 * time.Millisecond
	}
	return l
}

// Report says that phase has done of total bytes (total 0: unknown);
// report done 0 when a phase begins, so that its time is measured from
// there. It writes only when the last line is old enough and when the
// phase is complete.
func (l *Line) Report(phase string, done, total int64) {
	l.report(phase, done, total, false)
}

// ReportCount is Report for a phase counted in records rather than bytes.
func (l *Line) ReportCount(phase string, done, total int64) {
	l.report(phase, done, total, true)
}

func (l *Line) report(phase string, done, total int64, count bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if phase != l.phase {
		l.endLocked()
		l.phase, l.phaseStart, l.last, l.complete = phase, now, time.Time{}, false
	}
	complete := total > 0 && done >= total
	if l.complete {
		return
	}
	if !complete && !l.last.IsZero() && now.Sub(l.last) < l.every {
		return
	}
	if !complete && l.last.IsZero() && !l.terminal && done == 0 && total > 0 {
		// Elsewhere than a terminal a phase's start is not a line of its
		// own: a quick phase shows only its end (a phase of unknown size
		// shows its start).
		l.last = now
		return
	}
	l.last, l.complete = now, complete
	text := l.prefix + ": " + phase + " " + format(done, total, now.Sub(l.phaseStart), count)
	if l.terminal {
		fmt.Fprintf(l.w, "\r\033[K%s", text)
		l.drawn = true
		if complete {
			l.endLocked()
		}
		return
	}
	fmt.Fprintln(l.w, text)
}

// Done ends the line: call it before writing anything else to w (a
// result or an error), so that it starts on a line of its own.
func (l *Line) Done() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.endLocked()
}

func (l *Line) endLocked() {
	if l.drawn {
		fmt.Fprintln(l.w)
		l.drawn = false
	}
}

// format renders done of total bytes, the share and the time left at the
// rate so far.
func format(done, total int64, elapsed time.Duration, count bool) string {
	unit := Bytes
	if count {
		unit = func(n int64) string { return strconv.FormatInt(n, 10) }
	}
	if total <= 0 {
		if done <= 0 {
			return "..."
		}
		return unit(done) + " ..."
	}
	done = min(done, total)
	var b strings.Builder
	fmt.Fprintf(&b, "%s of %s (%d%%)", unit(done), unit(total), done*100/total)
	switch {
	case done == total && elapsed < time.Second:
		fmt.Fprintf(&b, " in %s", elapsed.Round(time.Millisecond))
	case done == total:
		fmt.Fprintf(&b, " in %s", elapsed.Round(100*time.Millisecond))
	case done > 0 && elapsed > 0:
		left := time.Duration(float64(elapsed) * float64(total-done) / float64(done))
		if left < time.Second {
			b.WriteString(", under a second left")
		} else {
			fmt.Fprintf(&b, ", about %s left", left.Round(time.Second))
		}
	}
	return b.String()
}

// Bytes renders n bytes for people: 812 B, 4.0 KiB, 12.3 MiB, 1.1 GiB.
func Bytes(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}

// IsTerminal reports whether w is a terminal (a character device), where
// output may be redrawn and logs read by a person.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
