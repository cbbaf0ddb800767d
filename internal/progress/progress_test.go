package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestLineNotTerminal(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, "backup")
	clock := time.Unix(0, 0)
	l.now = func() time.Time { return clock }
	step := func(d time.Duration, phase string, done, total int64) {
		clock = clock.Add(d)
		l.Report(phase, done, total)
	}
	step(0, "copying", 0, 100<<20)                // the start is no line of its own
	step(time.Second, "copying", 10<<20, 100<<20) // rate-limited
	step(time.Second, "copying", 20<<20, 100<<20)
	step(5*time.Second, "copying", 50<<20, 100<<20)
	step(time.Second, "copying", 100<<20, 100<<20) // the end is always written
	step(0, "verifying", 0, 0)
	l.Done()
	want := []string{
		"backup: copying 50.0 MiB of 100.0 MiB (50%), about 7s left",
		"backup: copying 100.0 MiB of 100.0 MiB (100%) in 8s",
		"backup: verifying ...",
	}
	if got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestLineTerminal(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, "restore")
	l.terminal, l.every = true, 200*time.Millisecond
	clock := time.Unix(0, 0)
	l.now = func() time.Time { return clock }
	for i := int64(0); i <= 10; i++ {
		clock = clock.Add(100 * time.Millisecond)
		l.Report("copying", i<<20, 10<<20)
	}
	l.Done()
	out := buf.String()
	if n := strings.Count(out, "\r"); n != 6 {
		t.Errorf("%d redraws in 1.1s at most every 200ms (and the end), want 6:\n%q", n, out)
	}
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "(100%) in 1s\n") {
		t.Errorf("output %q: want one final newline after the complete line", out)
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{812: "812 B", 4096: "4.0 KiB", 12900000: "12.3 MiB", 1 << 30: "1.0 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestLineCompleteOnce(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, "restore")
	l.Report("copying", 10, 10)
	l.Report("copying", 10, 10)
	l.Done()
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Errorf("a phase completed twice wrote %d lines, want 1:\n%s", n, buf.String())
	}
}
