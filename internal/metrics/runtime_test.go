package metrics

import (
	"bytes"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

// samples parses WriteText's output into series -> value.
func samples(t *testing.T, r *Registry) (map[string]float64, string) {
	t.Helper()
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]float64)
	for _, line := range strings.Split(buf.String(), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out, buf.String()
}

func TestRegisterRuntime(t *testing.T) {
	r := NewRegistry()
	RegisterRuntime(r)
	RegisterRuntime(nil) // a nil registry: nothing

	limit := int64(3 << 30)
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(limit))
	defer debug.SetGCPercent(debug.SetGCPercent(150))
	runtime.GC()
	before, _ := samples(t, r)
	runtime.GC()
	after, text := samples(t, r)

	if got := after["go_gc_gomemlimit_bytes"]; got != float64(limit) {
		t.Errorf("go_gc_gomemlimit_bytes = %v, want %d (the limit set)", got, limit)
	}
	if d := after["go_gc_cycles_total_gc_cycles_total"] - before["go_gc_cycles_total_gc_cycles_total"]; d < 1 {
		t.Errorf("go_gc_cycles_total_gc_cycles_total grew by %v over a runtime.GC, want at least 1", d)
	}
	if after["go_goroutines"] < 1 {
		t.Errorf("go_goroutines = %v, want at least 1", after["go_goroutines"])
	}
	live, goal, total := after["go_gc_heap_live_bytes"], after["go_gc_heap_goal_bytes"], after["go_memory_classes_total_bytes"]
	if live <= 0 || goal < live || total < live {
		t.Errorf("heap live %v, goal %v, runtime total %v: want 0 < live <= goal and live <= total", live, goal, total)
	}
	if got := after["go_gc_gogc_percent"]; got != 150 {
		t.Errorf("go_gc_gogc_percent = %v, want 150 (the percent set)", got)
	}
	if runtime.GOOS == "linux" && after["process_resident_memory_bytes"] < total/4 {
		t.Errorf("process_resident_memory_bytes = %v, runtime total %v", after["process_resident_memory_bytes"], total)
	}
	for _, want := range []string{
		"# TYPE go_gc_cycles_total_gc_cycles_total counter\n",
		"# TYPE go_gc_heap_live_bytes gauge\n",
		"# TYPE go_goroutines gauge\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in:\n%s", want, text)
		}
	}
}
