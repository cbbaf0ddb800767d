package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var testTime = time.Date(2026, 3, 4, 5, 6, 7, 890, time.FixedZone("CET", 3600))

func testEvent(requestID string) *Event {
	e := New("kms.amazonaws.com", "Encrypt", testTime)
	e.UserIdentity = UserIdentity{Type: "Root", PrincipalID: "123456789012", ARN: "arn:aws:iam::123456789012:root", AccountID: "123456789012", AccessKeyID: "AKIAEXAMPLE"}
	e.AWSRegion = "us-east-1"
	e.SourceIPAddress = "127.0.0.1"
	e.UserAgent = "aws-sdk-go-v2/1.0"
	e.RequestParameters = json.RawMessage(`{"keyId":"alias/x","encryptionContext":{"a":"b"}}`)
	e.RequestID = requestID
	e.ReadOnly = true
	e.Resources = []Resource{{AccountID: "123456789012", Type: "AWS::KMS::Key", ARN: "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"}}
	e.RecipientAccountID = "123456789012"
	return e
}

func TestEventJSON(t *testing.T) {
	e := testEvent("req-1")
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("event JSON %s: %v", b, err)
	}
	want := map[string]any{
		"eventVersion":       "1.08",
		"userIdentity":       map[string]any{"type": "Root", "principalId": "123456789012", "arn": "arn:aws:iam::123456789012:root", "accountId": "123456789012", "accessKeyId": "AKIAEXAMPLE"},
		"eventTime":          "2026-03-04T04:06:07Z",
		"eventSource":        "kms.amazonaws.com",
		"eventName":          "Encrypt",
		"awsRegion":          "us-east-1",
		"sourceIPAddress":    "127.0.0.1",
		"userAgent":          "aws-sdk-go-v2/1.0",
		"requestParameters":  map[string]any{"keyId": "alias/x", "encryptionContext": map[string]any{"a": "b"}},
		"responseElements":   nil,
		"requestID":          "req-1",
		"eventID":            e.EventID,
		"readOnly":           true,
		"resources":          []any{map[string]any{"accountId": "123456789012", "type": "AWS::KMS::Key", "ARN": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"}},
		"eventType":          "AwsApiCall",
		"managementEvent":    true,
		"recipientAccountId": "123456789012",
		"eventCategory":      "Management",
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("event JSON =\n%s\nwant members %v", b, want)
	}
	// CloudTrail's member order.
	if !bytes.HasPrefix(b, []byte(`{"eventVersion":"1.08","userIdentity":{"type":"Root"`)) || !bytes.Contains(b, []byte(`"userAgent":"aws-sdk-go-v2/1.0","requestParameters"`)) {
		t.Errorf("event JSON member order = %s", b)
	}

	e.ErrorCode, e.ErrorMessage = "NotFoundException", "Key 'x' does not exist"
	e.Resources = nil
	b, _ = json.Marshal(e)
	m = nil
	_ = json.Unmarshal(b, &m)
	if m["errorCode"] != "NotFoundException" || m["errorMessage"] != "Key 'x' does not exist" {
		t.Errorf("error members = %v, %v", m["errorCode"], m["errorMessage"])
	}
	if _, ok := m["resources"]; ok {
		t.Errorf("empty resources written: %s", b)
	}

	var back Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("Unmarshal(event) = %v", err)
	}
	wantBack := *e
	wantBack.EventTime = testTime.UTC().Truncate(time.Second)
	if !back.EventTime.Equal(wantBack.EventTime) {
		t.Errorf("EventTime round trip = %v, want %v", back.EventTime, wantBack.EventTime)
	}
	back.EventTime = wantBack.EventTime
	back.ResponseElements = nil // "null" comes back as the raw text null
	if !reflect.DeepEqual(back, wantBack) {
		t.Errorf("round trip = %+v, want %+v", back, wantBack)
	}
}

func TestEventBadRawJSON(t *testing.T) {
	e := testEvent("r")
	e.RequestParameters = json.RawMessage(`{"unterminated"`)
	s, err := NewFileSink(t.TempDir(), FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Write(t.Context(), e); err == nil {
		t.Errorf("Write(invalid requestParameters) = nil, want error")
	}
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewEventID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := NewEventID()
		if !uuidV4.MatchString(id) {
			t.Fatalf("NewEventID() = %q, want a v4 UUID", id)
		}
		if seen[id] {
			t.Fatalf("NewEventID() repeated %q", id)
		}
		seen[id] = true
	}
}

// readLines reads every audit file in dir, rotated files first in name
// order, and decodes each line.
func readLines(t *testing.T, dir string) (events []Event, files map[string]int64) {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "keyfort-audit-*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	names = append(names, filepath.Join(dir, FileName))
	files = map[string]int64{}
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = int64(len(b))
		if len(b) > 0 && b[len(b)-1] != '\n' {
			t.Errorf("%s does not end with a newline", name)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var e Event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("%s: line %q: %v", name, sc.Text(), err)
			}
			events = append(events, e)
		}
	}
	return events, files
}

func TestFileSinkWrites(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	s, err := NewFileSink(dir, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := s.Write(t.Context(), testEvent(fmt.Sprint("req-", i))); err != nil {
			t.Fatalf("Write = %v", err)
		}
	}
	// Written before Write returned, without Close.
	events, _ := readLines(t, dir)
	if len(events) != 3 || events[2].RequestID != "req-2" || events[0].EventVersion != EventVersion {
		t.Errorf("file holds %d events (%+v), want 3 in order", len(events), events)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if runtime.GOOS != "windows" {
		fi, _ := os.Stat(dir)
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("dir mode = %04o, want 0700", fi.Mode().Perm())
		}
		fi, _ = os.Stat(filepath.Join(dir, FileName))
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("file mode = %04o, want 0600", fi.Mode().Perm())
		}
	}
	// Reopen appends.
	s, err = NewFileSink(dir, FileOptions{Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(t.Context(), testEvent("req-3")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if events, _ := readLines(t, dir); len(events) != 4 {
		t.Errorf("after reopen file holds %d events, want 4", len(events))
	}
}

func TestFileSinkCutsTornLine(t *testing.T) {
	whole := `{"eventVersion":"1.08","requestID":"before"}` + "\n"
	for name, tc := range map[string]struct {
		content string
		sync    bool
		want    []string // request ids left, in order
	}{
		"partial last line":       {content: whole + `{"eventVersion":"1.0`, want: []string{"before", "after"}},
		"partial line only":       {content: `{"eventVers`, want: []string{"after"}},
		"partial line, sync":      {content: whole + `{"eventVersion":"1.0`, sync: true, want: []string{"before", "after"}},
		"long partial line":       {content: whole + `{"x":"` + strings.Repeat("a", 200<<10), want: []string{"before", "after"}},
		"whole lines are kept":    {content: whole + whole, want: []string{"before", "before", "after"}},
		"empty file":              {content: "", want: []string{"after"}},
		"partial after long line": {content: `{"requestID":"` + strings.Repeat("b", 100<<10) + `"}` + "\n" + `{"req`, want: []string{strings.Repeat("b", 100<<10), "after"}},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, FileName), []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := NewFileSink(dir, FileOptions{Sync: tc.sync})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Write(t.Context(), testEvent("after")); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(filepath.Join(dir, FileName))
			if !bytes.HasSuffix(b, []byte("\n")) {
				t.Errorf("file does not end with a newline")
			}
			var got []string
			for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
				var e struct{ RequestID string }
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					t.Fatalf("line %d is not JSON (%v): %.80q", i+1, err, line)
				}
				got = append(got, e.RequestID)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("request ids = %.100q, want %.100q", got, tc.want)
			}
		})
	}
}

func TestFileSinkRotation(t *testing.T) {
	for _, syncMode := range []bool{false, true} {
		t.Run(fmt.Sprint("sync=", syncMode), func(t *testing.T) {
			dir := t.TempDir()
			line, _ := json.Marshal(testEvent("req-000"))
			max := int64(len(line)+1)*3 + 10 // three lines per file
			// A frozen clock makes every rotated name collide.
			s, err := NewFileSink(dir, FileOptions{MaxBytes: max, Sync: syncMode, Now: func() time.Time { return testTime }})
			if err != nil {
				t.Fatal(err)
			}
			const n = 20
			for i := range n {
				if err := s.Write(t.Context(), testEvent(fmt.Sprintf("req-%03d", i))); err != nil {
					t.Fatalf("Write(%d) = %v", i, err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			events, files := readLines(t, dir)
			if len(files) != 7 {
				t.Errorf("got %d files, want 7 (6 rotated + current): %v", len(files), files)
			}
			for name, size := range files {
				if size > max {
					t.Errorf("%s is %d bytes, over MaxBytes %d", name, size, max)
				}
				if base := filepath.Base(name); base != FileName && !regexp.MustCompile(`^keyfort-audit-20260304T040607\.\d{9}Z\.jsonl$`).MatchString(base) {
					t.Errorf("rotated file name %q", base)
				}
			}
			if len(events) != n {
				t.Fatalf("read %d events, want %d", len(events), n)
			}
			for i, e := range events {
				if want := fmt.Sprintf("req-%03d", i); e.RequestID != want {
					t.Errorf("event %d = %q, want %q (lost or reordered)", i, e.RequestID, want)
				}
			}
		})
	}
}

func TestFileSinkRetention(t *testing.T) {
	line, _ := json.Marshal(testEvent("req-000"))
	lineLen := int64(len(line) + 1)
	perFile := lineLen*3 + 10 // three lines per file
	for _, tc := range []struct {
		name     string
		maxAge   time.Duration
		maxTotal int64
		step     time.Duration // the clock's advance per Write
		// wantFirst is the first request left; the files must hold
		// every later one, in order.
		wantFirst int
		wantFiles int
	}{
		// 20 events, 3 per file: rotations before events 3, 6, ..., 18.
		{name: "keep all", wantFirst: 0, wantFiles: 7},
		// Total at most 2 full files + the current one (2 lines): the
		// rotated files of events 12-14 and 15-17 stay.
		{name: "size", maxTotal: lineLen * 8, step: time.Second, wantFirst: 12, wantFiles: 3},
		// Smaller than the current file: only the current file stays.
		{name: "size below current", maxTotal: 1, step: time.Second, wantFirst: 18, wantFiles: 1},
		// Event i is written at minute i; the last rotation (before event
		// 18) happens at minute 18 and deletes files rotated before
		// minute 18-7 = 11: those rotated at 3, 6 and 9.
		{name: "age", maxAge: 7 * time.Minute, step: time.Minute, wantFirst: 9, wantFiles: 4},
		{name: "age and size", maxAge: 7 * time.Minute, maxTotal: lineLen * 8, step: time.Minute, wantFirst: 12, wantFiles: 3},
	} {
		for _, syncMode := range []bool{false, true} {
			t.Run(fmt.Sprint(tc.name, "/sync=", syncMode), func(t *testing.T) {
				dir := t.TempDir()
				// Neither ours nor deleted, whatever its age.
				other := filepath.Join(dir, "keyfort-audit-notes.jsonl")
				if err := os.WriteFile(other, []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
				now := testTime
				s, err := NewFileSink(dir, FileOptions{MaxBytes: perFile, Sync: syncMode, MaxAge: tc.maxAge, MaxTotalBytes: tc.maxTotal,
					Now: func() time.Time { return now }})
				if err != nil {
					t.Fatal(err)
				}
				const n = 20
				for i := range n {
					now = testTime.Add(time.Duration(i) * tc.step)
					if err := s.Write(t.Context(), testEvent(fmt.Sprintf("req-%03d", i))); err != nil {
						t.Fatalf("Write(%d) = %v", i, err)
					}
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				os.Remove(other)
				events, files := readLines(t, dir)
				if len(files) != tc.wantFiles {
					t.Errorf("%d files left, want %d: %v", len(files), tc.wantFiles, files)
				}
				if _, ok := files[filepath.Join(dir, FileName)]; !ok {
					t.Errorf("the current file was deleted")
				}
				if len(events) != n-tc.wantFirst {
					t.Fatalf("%d events left, want %d (requests %d..%d)", len(events), n-tc.wantFirst, tc.wantFirst, n-1)
				}
				for i, e := range events {
					if want := fmt.Sprintf("req-%03d", tc.wantFirst+i); e.RequestID != want {
						t.Errorf("event %d = %q, want %q", i, e.RequestID, want)
					}
				}
			})
		}
	}
}

// TestFileSinkRetentionAtOpen checks that opening a sink applies retention
// to the files an earlier run left, and never deletes the current file.
func TestFileSinkRetentionAtOpen(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), bytes.Repeat([]byte("{}\n"), size/3), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rotated := func(d time.Duration) string {
		return "keyfort-audit-" + testTime.UTC().Add(-d).Format(rotatedTimeFormat) + ".jsonl"
	}
	write(rotated(72*time.Hour), 300) // too old
	write(rotated(48*time.Hour), 300) // too old
	write(rotated(2*time.Hour), 300)  // deleted for size
	write(rotated(time.Hour), 300)
	write(FileName, 600)
	write("keyfort-audit-20260101T000000Z.jsonl", 3) // not a name the sink gives
	write("unrelated.txt", 3)
	s, err := NewFileSink(dir, FileOptions{MaxAge: 24 * time.Hour, MaxTotalBytes: 1000, Now: func() time.Time { return testTime }})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	var left []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	want := []string{FileName, rotated(time.Hour), "keyfort-audit-20260101T000000Z.jsonl", "unrelated.txt"}
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Errorf("files left = %q, want %q", left, want)
	}

	// The current file alone over MaxTotalBytes: every rotated file goes,
	// the current one stays.
	s, err = NewFileSink(dir, FileOptions{MaxTotalBytes: 1, Now: func() time.Time { return testTime }})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(filepath.Join(dir, FileName)); err != nil {
		t.Errorf("current file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, rotated(time.Hour))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("rotated file left over MaxTotalBytes: %v", err)
	}

	// ApplyRetention ages files out between rotations.
	now := testTime
	s, err = NewFileSink(dir, FileOptions{MaxAge: time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	write(rotated(30*time.Minute), 300)
	if err := s.ApplyRetention(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, rotated(30*time.Minute))); err != nil {
		t.Errorf("a file rotated 30 minutes ago with MaxAge 1h: %v", err)
	}
	now = now.Add(time.Hour)
	if err := s.ApplyRetention(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, rotated(30*time.Minute))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file rotated 90 minutes ago with MaxAge 1h is still there: %v", err)
	}
	s.Close()
	if err := s.ApplyRetention(); !errors.Is(err, ErrClosed) {
		t.Errorf("ApplyRetention after Close = %v, want ErrClosed", err)
	}

	if _, err := NewFileSink(dir, FileOptions{MaxAge: -time.Second}); err == nil {
		t.Errorf("NewFileSink(MaxAge < 0) = nil error")
	}
}

func TestFileSinkOversizedLine(t *testing.T) {
	dir := t.TempDir()
	s, err := NewFileSink(dir, FileOptions{MaxBytes: 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := s.Write(t.Context(), testEvent(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	events, files := readLines(t, dir)
	if len(events) != 3 || len(files) != 3 {
		t.Errorf("got %d events in %d files, want 3 in 3 (one line per file)", len(events), len(files))
	}
}

func TestFileSinkConcurrent(t *testing.T) {
	for _, syncMode := range []bool{false, true} {
		t.Run(fmt.Sprint("sync=", syncMode), func(t *testing.T) {
			dir := t.TempDir()
			s, err := NewFileSink(dir, FileOptions{MaxBytes: 16 << 10, Sync: syncMode})
			if err != nil {
				t.Fatal(err)
			}
			const writers, each = 8, 100
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for i := range each {
						e := testEvent(fmt.Sprintf("w%d-%03d", w, i))
						e.UserAgent = strings.Repeat("x", (w*37+i)%300) // lines of varying length
						if err := s.Write(t.Context(), e); err != nil {
							t.Errorf("Write = %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			events, files := readLines(t, dir)
			if len(files) < 2 {
				t.Errorf("got %d files, want rotation to have happened", len(files))
			}
			seen := map[string]bool{}
			last := map[string]int{}
			for _, e := range events {
				if seen[e.RequestID] {
					t.Errorf("event %s written twice", e.RequestID)
				}
				seen[e.RequestID] = true
				var w, i int
				fmt.Sscanf(e.RequestID, "w%d-%d", &w, &i)
				key := fmt.Sprint(w)
				if prev, ok := last[key]; ok && i <= prev {
					t.Errorf("writer %d: event %d after %d", w, i, prev)
				}
				last[key] = i
			}
			if len(seen) != writers*each {
				t.Errorf("read %d distinct events, want %d", len(seen), writers*each)
			}
		})
	}
}

func TestFileSinkWriteError(t *testing.T) {
	s, err := NewFileSink(t.TempDir(), FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.f.Close() // simulate an I/O failure underneath the sink
	if err := s.Write(t.Context(), testEvent("x")); err == nil {
		t.Errorf("Write with a failing file = nil, want error")
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close = %v, want nil", err)
	}
}

// Each sink obeys the Sink contract (audittest's TestSinkContract checks
// MemorySink's).
func TestSinkContract(t *testing.T) {
	sinks := map[string]func(t *testing.T) Sink{
		"file": func(t *testing.T) Sink {
			s, err := NewFileSink(t.TempDir(), FileOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"file sync": func(t *testing.T) Sink {
			s, err := NewFileSink(t.TempDir(), FileOptions{Sync: true})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"discard": func(t *testing.T) Sink { return Discard },
	}
	for name, open := range sinks {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for range 25 {
						if err := s.Write(t.Context(), testEvent("c")); err != nil {
							t.Errorf("Write = %v", err)
						}
					}
				})
			}
			wg.Wait()
			if err := s.Close(); err != nil {
				t.Fatalf("Close = %v", err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("second Close = %v, want nil", err)
			}
			err := s.Write(t.Context(), testEvent("late"))
			if name == "discard" {
				if err != nil {
					t.Errorf("Discard.Write = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrClosed) {
				t.Errorf("Write after Close = %v, want ErrClosed", err)
			}
		})
	}
}

// TestFileSinkSurvivesKill writes from a child process that is then killed
// with SIGKILL; every acknowledged line must be in the file.
func TestFileSinkSurvivesKill(t *testing.T) {
	if dir := os.Getenv("KEYFORT_AUDIT_CHILD_DIR"); dir != "" {
		s, err := NewFileSink(dir, FileOptions{})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		for i := range 50 {
			if err := s.Write(t.Context(), testEvent(fmt.Sprint("k", i))); err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
		}
		fmt.Println("acknowledged 50")
		_, _ = os.Stdin.Read(make([]byte, 1)) // wait to be killed
		os.Exit(0)
	}
	if runtime.GOOS == "windows" {
		t.Skip("no SIGKILL")
	}
	dir := t.TempDir()
	killChild(t, "TestFileSinkSurvivesKill", "KEYFORT_AUDIT_CHILD_DIR="+dir, "acknowledged 50\n")
	events, _ := readLines(t, dir)
	if len(events) != 50 {
		t.Errorf("after kill -9 the file holds %d events, want 50", len(events))
	}
}

func BenchmarkFileSinkWrite(b *testing.B) {
	for _, syncMode := range []bool{false, true} {
		b.Run(fmt.Sprint("sync=", syncMode), func(b *testing.B) {
			s, err := NewFileSink(b.TempDir(), FileOptions{Sync: syncMode})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			e := testEvent("bench")
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.Write(b.Context(), e); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// TestAppendJSONMatchesReflection pins the hand-written encoder to what
// encoding/json writes for the same record (the encoder it replaced).
func TestAppendJSONMatchesReflection(t *testing.T) {
	full := &Event{
		EventVersion: EventVersion,
		UserIdentity: UserIdentity{Type: "Root", PrincipalID: "123456789012", ARN: "arn:aws:iam::123456789012:root", AccountID: "123456789012", AccessKeyID: "AKID\"x"},
		EventTime:    time.Date(2026, 11, 23, 16, 0, 0, 999, time.FixedZone("x", 3600)),
		EventSource:  "kms.amazonaws.com", EventName: "Encrypt", AWSRegion: "us-east-1",
		SourceIPAddress: "127.0.0.1", UserAgent: "ua <&> \u2028\n",
		ErrorCode: "NotFoundException", ErrorMessage: "Key 'x' does not exist",
		RequestParameters:   json.RawMessage(`{"KeyId":"k","Plaintext":"[REDACTED]"}`),
		ResponseElements:    json.RawMessage(`{"a":1}`),
		AdditionalEventData: json.RawMessage(`{"b":true}`),
		RequestID:           "r", EventID: "e", ReadOnly: true,
		Resources: []Resource{{AccountID: "1", Type: "AWS::KMS::Key", ARN: "arn:a"}, {AccountID: "2", Type: "t", ARN: "b"}},
		EventType: EventTypeAPICall, ManagementEvent: true, RecipientAccountID: "123456789012", EventCategory: CategoryManagement,
	}
	minimal := New("secretsmanager.amazonaws.com", "GetSecretValue", time.Unix(0, 0))
	role := New("kms.amazonaws.com", "Decrypt", time.Unix(0, 0))
	role.UserIdentity = UserIdentity{Type: "AssumedRole", PrincipalID: "AROAX:ASIAX", ARN: "arn:aws:sts::123456789012:assumed-role/r/ASIAX",
		AccountID: "123456789012", AccessKeyID: "ASIAX", InvokedBy: "secretsmanager.amazonaws.com",
		SessionContext: &SessionContext{
			SessionIssuer: SessionIssuer{Type: "Role", PrincipalID: "AROAX", ARN: "arn:aws:iam::123456789012:role/path/r", AccountID: "123456789012", UserName: "r"},
			Attributes:    SessionAttributes{CreationDate: "2026-12-06T01:00:00Z", MFAAuthenticated: "false"},
		}}
	undated := New("kms.amazonaws.com", "Decrypt", time.Unix(0, 0))
	undated.UserIdentity = role.UserIdentity
	undated.UserIdentity.SessionContext = &SessionContext{SessionIssuer: role.UserIdentity.SessionContext.SessionIssuer,
		Attributes: SessionAttributes{MFAAuthenticated: "false"}}
	for name, e := range map[string]*Event{"full": full, "minimal": minimal, "role session": role, "role session without a date": undated} {
		want, err := json.Marshal(&eventJSON{
			EventVersion: e.EventVersion, UserIdentity: e.UserIdentity, EventTime: e.EventTime.UTC().Format(TimeFormat),
			EventSource: e.EventSource, EventName: e.EventName, AWSRegion: e.AWSRegion, SourceIPAddress: e.SourceIPAddress,
			UserAgent: e.UserAgent, ErrorCode: e.ErrorCode, ErrorMessage: e.ErrorMessage,
			RequestParameters: e.RequestParameters, ResponseElements: e.ResponseElements, AdditionalEventData: e.AdditionalEventData,
			RequestID: e.RequestID, EventID: e.EventID, ReadOnly: e.ReadOnly, Resources: e.Resources, EventType: e.EventType,
			ManagementEvent: e.ManagementEvent, RecipientAccountID: e.RecipientAccountID, EventCategory: e.EventCategory,
		})
		if err != nil {
			t.Fatal(err)
		}
		// encoding/json escapes <, > and & (and writes \u2028 as is not);
		// compare the decoded values, then the member order.
		got := e.AppendJSON(nil)
		var a, b map[string]any
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("%s: AppendJSON is not JSON: %v\n%s", name, err, got)
		}
		_ = json.Unmarshal(want, &b)
		ga, _ := json.Marshal(a)
		gb, _ := json.Marshal(b)
		if !bytes.Equal(ga, gb) {
			t.Errorf("%s: AppendJSON =\n%s\nwant\n%s", name, got, want)
		}
		var back Event
		if err := json.Unmarshal(got, &back); err != nil || back.EventName != e.EventName || back.RequestID != e.RequestID {
			t.Errorf("%s: round trip = %+v, %v", name, back, err)
		}
	}
}

// TestEventBoundsWhatAClientControls writes an event whose request
// parameters, response elements, user agent and error message are each
// 1 MB: the line stays small, and the oversized fields are recorded as
// CloudTrail records a field too large.
func TestEventBoundsWhatAClientControls(t *testing.T) {
	huge := strings.Repeat("é", 1<<19) // 1 MiB of two-byte runes
	params, _ := json.Marshal(map[string]string{"name": huge})
	e := testEvent("big")
	e.RequestParameters = params
	e.ResponseElements = params
	e.UserAgent = huge
	e.ErrorCode, e.ErrorMessage = "ValidationException", huge
	dir := t.TempDir()
	s, err := NewFileSink(dir, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	s.Close()
	b, _ := os.ReadFile(filepath.Join(dir, FileName))
	if len(b) > 3*MaxTextBytes+4<<10 {
		t.Errorf("the line is %d bytes for 1 MB fields, want at most %d", len(b), 3*MaxTextBytes+4<<10)
	}
	var got struct {
		UserAgent, ErrorMessage string
		RequestParameters       map[string]any
		ResponseElements        map[string]any
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("line is not JSON: %v", err)
	}
	for name, v := range map[string]map[string]any{"requestParameters": got.RequestParameters, "responseElements": got.ResponseElements} {
		want := map[string]any{"reason": name + " too large", "omitted": true, "originalSize": float64(len(params))}
		if !reflect.DeepEqual(v, want) {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	for name, v := range map[string]string{"userAgent": got.UserAgent, "errorMessage": got.ErrorMessage} {
		if want := huge[:MaxTextBytes] + "..."; v != want {
			t.Errorf("%s = %d bytes %.20q...%q, want the first %d bytes then ...", name, len(v), v, v[max(len(v)-10, 0):], MaxTextBytes)
		}
	}

	// At the limit, a field is kept whole.
	e = testEvent("limit")
	e.RequestParameters = json.RawMessage(`{"a":"` + strings.Repeat("x", MaxFieldBytes-8) + `"}`)
	if got := e.AppendJSON(nil); !bytes.Contains(got, e.RequestParameters) {
		t.Errorf("requestParameters of exactly MaxFieldBytes were not kept")
	}
}

// TestWriteAll checks that WriteAll records every event in order, on a
// FileSink as whole lines of one file (never split by rotation), and none
// when one of them cannot be encoded. audittest's TestWriteAll checks it on
// other sinks: one Write after another.
func TestWriteAll(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	one := len(testEvent("req-0").AppendJSON(nil)) + 1
	s, err := NewFileSink(dir, FileOptions{MaxBytes: int64(2*one + one/2), Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	if err := s.Write(ctx, testEvent("req-0")); err != nil {
		t.Fatal(err)
	}
	if err := WriteAll(ctx, s, []*Event{testEvent("req-1"), testEvent("req-2")}); err != nil {
		t.Fatalf("WriteAll = %v", err)
	}
	bad := testEvent("req-bad")
	bad.RequestParameters = json.RawMessage(`{"unterminated"`)
	if err := WriteAll(ctx, s, []*Event{testEvent("req-3"), bad}); err == nil {
		t.Errorf("WriteAll(with an invalid event) = nil, want error")
	}
	events, files := readLines(t, dir)
	var ids []string
	for _, e := range events {
		ids = append(ids, e.RequestID)
	}
	if !slices.Equal(ids, []string{"req-0", "req-1", "req-2"}) {
		t.Errorf("events = %v, want req-0 req-1 req-2 (nothing of the refused pair)", ids)
	}
	// req-1 and req-2 did not fit beside req-0, so they went to a new file
	// together.
	if len(files) != 2 || files[filepath.Join(dir, FileName)] != int64(2*one) {
		t.Errorf("files = %v, want the pair alone in the current file (%d bytes)", files, 2*one)
	}

}

// benchEvents returns events shaped like the server's: an Encrypt event, and
// a GetSecretValue event with the KMS Decrypt event Secrets Manager made.
func benchEvents() (encrypt []*Event, getSecretValue []*Event) {
	id := UserIdentity{Type: "IAMUser", PrincipalID: "AIDAEXAMPLEEXAMPLE01", ARN: "arn:aws:iam::111122223333:user/bench",
		AccountID: "111122223333", AccessKeyID: "AKIAIOSFODNN7EXAMPLE", UserName: "bench"}
	keyARN := "arn:aws:kms:us-east-1:111122223333:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	secretARN := "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/db-AbCdEf"
	at := time.Date(2026, 12, 5, 19, 18, 59, 123456789, time.UTC)
	common := func(e *Event) *Event {
		e.UserIdentity = id
		e.AWSRegion = "us-east-1"
		e.SourceIPAddress = "127.0.0.1"
		e.UserAgent = "aws-sdk-go-v2/1.36.3 ua/2.1 os/linux lang/go#1.25.0 md/GOOS#linux md/GOARCH#amd64 api/kms#1.38.1"
		e.RequestID = "5b7c1b0e-8f3a-4c9d-9e2f-0a1b2c3d4e5f"
		e.RecipientAccountID = "111122223333"
		return e
	}
	enc := common(New("kms.amazonaws.com", "Encrypt", at))
	enc.RequestParameters = json.RawMessage(`{"keyId":"` + keyARN + `","encryptionAlgorithm":"SYMMETRIC_DEFAULT"}`)
	enc.Resources = []Resource{{AccountID: "111122223333", Type: "AWS::KMS::Key", ARN: keyARN}}
	gsv := common(New("secretsmanager.amazonaws.com", "GetSecretValue", at))
	gsv.ReadOnly = true
	gsv.RequestParameters = json.RawMessage(`{"secretId":"app/db"}`)
	gsv.Resources = []Resource{{AccountID: "111122223333", Type: "AWS::SecretsManager::Secret", ARN: secretARN}}
	dec := common(New("kms.amazonaws.com", "Decrypt", at))
	dec.UserIdentity.InvokedBy = "secretsmanager.amazonaws.com"
	dec.SourceIPAddress, dec.UserAgent = dec.UserIdentity.InvokedBy, dec.UserIdentity.InvokedBy
	dec.ReadOnly = true
	dec.RequestParameters = json.RawMessage(`{"encryptionContext":{"SecretARN":"` + secretARN + `","SecretVersionId":"EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE"},"encryptionAlgorithm":"SYMMETRIC_DEFAULT"}`)
	dec.Resources = []Resource{{AccountID: "111122223333", Type: "AWS::KMS::Key", ARN: keyARN}}
	return []*Event{enc}, []*Event{gsv, dec}
}

// BenchmarkWriteEvents writes an Encrypt-like event and a GetSecretValue-like
// pair through WriteAll to a FileSink, as the server does: encoding,
// validation and the write(2).
func BenchmarkWriteEvents(b *testing.B) {
	enc, gsv := benchEvents()
	for name, events := range map[string][]*Event{"Encrypt": enc, "GetSecretValue": gsv} {
		b.Run(name, func(b *testing.B) {
			s, err := NewFileSink(b.TempDir(), FileOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.ReportAllocs()
			for b.Loop() {
				if err := WriteAll(b.Context(), s, events); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncodeEvents is the encoding part alone: the JSON checks and
// AppendJSON of each event.
func BenchmarkEncodeEvents(b *testing.B) {
	enc, gsv := benchEvents()
	for name, events := range map[string][]*Event{"Encrypt": enc, "GetSecretValue": gsv} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				buf = buf[:0]
				for _, e := range events {
					if err := e.checkRaw(); err != nil {
						b.Fatal(err)
					}
					buf = append(e.AppendJSON(buf), '\n')
				}
			}
		})
	}
}

// TestFileSinkReusedBuffersKeepLines writes events of different sizes from
// several goroutines, singly and in pairs, so that the sink's reused
// encoding buffers pass between writers and grow: every line in the file is
// exactly one event's encoding, each as often as it was written.
func TestFileSinkReusedBuffersKeepLines(t *testing.T) {
	dir := t.TempDir()
	s, err := NewFileSink(dir, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				a := testEvent(fmt.Sprintf("g%d-%d", g, i))
				a.UserAgent = strings.Repeat("u", (g*200+i)*37%5000)
				b := testEvent(fmt.Sprintf("g%d-%d-b", g, i))
				var err error
				if i%2 == 0 {
					err = s.Write(t.Context(), a)
				} else {
					err = WriteAll(t.Context(), s, []*Event{a, b})
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				want[string(a.AppendJSON(nil))]++
				if i%2 != 0 {
					want[string(b.AppendJSON(nil))]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for line := range strings.Lines(string(b)) {
		got[strings.TrimSuffix(line, "\n")]++
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the file holds %d distinct lines, want %d; a line is not an event as written", len(got), len(want))
	}
}

// killChild runs the test named test in a child process of this test
// binary, with env added to its environment, waits for its first line of
// output, which must be want (what it acknowledged), and kills it with
// SIGKILL while it waits on its standard input.
func killChild(t *testing.T, test, env, want string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), env)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != want {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child said %q, %v, want %q", line, err, want)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
}
