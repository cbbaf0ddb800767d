package metrics

import (
	"os"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
)

// runtimeGauges are the Go runtime's figures RegisterRuntime exposes, under
// the names the Prometheus Go client gives the same runtime/metrics samples
// (so that existing dashboards and alerts find them).
var runtimeGauges = []struct{ name, sample, help string }{
	{"go_goroutines", "/sched/goroutines:goroutines", "Number of goroutines that currently exist."},
	{"go_gc_heap_live_bytes", "/gc/heap/live:bytes", "Heap memory occupied by live objects that were marked by the previous GC."},
	{"go_gc_heap_goal_bytes", "/gc/heap/goal:bytes", "Heap size target for the end of the GC cycle."},
	{"go_gc_gomemlimit_bytes", "/gc/gomemlimit:bytes", "Go runtime memory limit (--memory-limit or GOMEMLIMIT)."},
	{"go_gc_gogc_percent", "/gc/gogc:percent", "Heap size target percentage (GOGC) in effect."},
	{"go_memory_classes_total_bytes", "/memory/classes/total:bytes", "All memory mapped by the Go runtime into the current process as read-write."},
}

// RegisterRuntime adds the Go runtime's memory and collector figures to r,
// read at each scrape: the live heap against the memory limit
// (go_gc_heap_live_bytes, go_gc_gomemlimit_bytes; a live heap near the
// limit makes the collector run often), the collections so far
// (go_gc_cycles_total_gc_cycles_total), goroutines, and the process's
// resident memory (process_resident_memory_bytes, where /proc has it).
func RegisterRuntime(r *Registry) {
	if r == nil {
		return
	}
	for _, g := range runtimeGauges {
		if _, ok := readSample(g.sample); ok {
			name := g.sample
			r.GaugeFunc(g.name, g.help, func() float64 {
				v, _ := readSample(name)
				return v
			})
		}
	}
	if _, ok := readSample("/gc/cycles/total:gc-cycles"); ok {
		r.CounterFunc("go_gc_cycles_total_gc_cycles_total", "Count of all completed GC cycles.", func() float64 {
			v, _ := readSample("/gc/cycles/total:gc-cycles")
			return v
		})
	}
	if _, ok := residentBytes(); ok {
		r.GaugeFunc("process_resident_memory_bytes", "Resident memory size in bytes.", func() float64 {
			v, _ := residentBytes()
			return v
		})
	}
}

// readSample returns the runtime/metrics sample name as a float, and
// whether this runtime has it.
func readSample(name string) (float64, bool) {
	s := []rtmetrics.Sample{{Name: name}}
	rtmetrics.Read(s)
	switch s[0].Value.Kind() {
	case rtmetrics.KindUint64:
		return float64(s[0].Value.Uint64()), true
	case rtmetrics.KindFloat64:
		return s[0].Value.Float64(), true
	default:
		return 0, false
	}
}

// residentBytes is the process's resident set size from /proc/self/statm
// (its second field, in pages), and whether the system has it.
func residentBytes() (float64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	fields := strings.Fields(string(b))
	if len(fields) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseUint(fields[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return float64(pages) * float64(os.Getpagesize()), true
}
