package audittest

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/audit"
)

func testEvent(requestID string) *audit.Event {
	e := audit.New("kms.amazonaws.com", "Encrypt", time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	e.RequestParameters = json.RawMessage(`{"keyId":"alias/x","encryptionContext":{"a":"b"}}`)
	e.Resources = []audit.Resource{{AccountID: "123456789012", Type: "AWS::KMS::Key", ARN: "arn:aws:kms:us-east-1:123456789012:key/k"}}
	e.RequestID = requestID
	return e
}

func TestMemorySink(t *testing.T) {
	var m MemorySink
	e := testEvent("a")
	if err := m.Write(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	e.RequestParameters[2] = 'X' // the sink kept a copy
	e.RequestID = "changed"
	e.Resources[0].ARN = "changed"
	got := m.Events()
	if len(got) != 1 || got[0].RequestID != "a" || got[0].RequestParameters[2] != 'k' || got[0].Resources[0].ARN == "changed" {
		t.Errorf("Events() = %+v, want an unchanged copy", got)
	}
	got[0].RequestParameters[2] = 'Y' // and Events returns copies
	if again := m.Events(); again[0].RequestParameters[2] != 'k' {
		t.Errorf("Events() after changing an earlier result = %s, want an unchanged copy", again[0].RequestParameters)
	}
	boom := errors.New("disk full")
	m.SetError(boom)
	if err := m.Write(t.Context(), e); err != boom {
		t.Errorf("Write after SetError = %v, want %v", err, boom)
	}
	m.SetError(nil)
	m.Reset()
	if err := m.Write(t.Context(), e); err != nil || len(m.Events()) != 1 {
		t.Errorf("after Reset: Write = %v, %d events, want nil, 1", err, len(m.Events()))
	}
}

// TestSinkContract checks that MemorySink obeys the audit.Sink contract, as
// audit's TestSinkContract checks the package's own sinks: concurrent
// Writes, Close more than once, audit.ErrClosed after Close.
func TestSinkContract(t *testing.T) {
	var s audit.Sink = &MemorySink{}
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
	if err := s.Write(t.Context(), testEvent("late")); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
}

// TestWriteAll checks audit.WriteAll on a sink other than a FileSink: one
// Write after another, in order.
func TestWriteAll(t *testing.T) {
	var m MemorySink
	if err := audit.WriteAll(t.Context(), &m, []*audit.Event{testEvent("a"), testEvent("b")}); err != nil {
		t.Fatal(err)
	}
	if got := m.Events(); len(got) != 2 || got[0].RequestID != "a" || got[1].RequestID != "b" {
		t.Errorf("MemorySink after WriteAll = %+v, want a then b", got)
	}
}
