// Package metrics is Keyfort's small Prometheus instrumentation: counters,
// gauges and histograms with fixed buckets, grouped in families with
// labels, written in the Prometheus text exposition format 0.0.4
// (Registry.WriteText). It imports no net/http, so that the services,
// which must not, can take a Registry; the app serves WriteText's output.
//
// It is a leaf (standard library only) and holds no global state: the app
// makes one Registry and gives it to each package through its Config.
// Every method is safe on nil: a package given no Registry gets nil
// families, nil series, and updates that do nothing.
//
// The hot path is an atomic add: callers look a series up once, at start
// (CounterVec.With for each label set they will use), and keep the
// pointer. With is for set-up and for rare label sets (error codes); it
// takes a lock and builds a key.
package metrics

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// CacheRequests is the name of the counter family that caches share,
// labelled cache and result (hit or miss): the hit ratio is
// hit / (hit + miss).
const (
	CacheRequests     = "keyfort_cache_requests_total"
	CacheRequestsHelp = "Lookups in a read cache, by cache and result (hit or miss)."
)

// ContentType is the content type of the text exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// DurationBuckets are the default upper bounds, in seconds, of latency
// histograms: 100 µs to 10 s.
var DurationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// kind is a family's metric type.
type kind int

const (
	kindCounter kind = iota
	kindGauge
	kindHistogram
)

func (k kind) String() string {
	switch k {
	case kindCounter:
		return "counter"
	case kindGauge:
		return "gauge"
	default:
		return "histogram"
	}
}

// Registry holds metric families. Create it with NewRegistry.
type Registry struct {
	mu       sync.Mutex
	families map[string]*family
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{families: make(map[string]*family)}
}

// family is one metric name with its series, one per label set.
type family struct {
	name    string
	help    string
	kind    kind
	labels  []string
	buckets []float64      // histograms
	fn      func() float64 // GaugeFunc, CounterFunc: the one value, read at scrape

	mu     sync.Mutex
	series map[string]*series // by joined label values
}

// series is one label set's value.
type series struct {
	values []string
	c      *Counter
	g      *Gauge
	h      *Histogram
}

// register adds a family, or returns the one of that name when it matches
// (the same type, labels and buckets). A name registered twice in another
// shape is a programming error: it panics.
func (r *Registry) register(name, help string, k kind, buckets []float64, labels []string) *family {
	if r == nil {
		return nil
	}
	if !validName(name) {
		panic("metrics: invalid metric name " + strconv.Quote(name))
	}
	for _, l := range labels {
		if !validName(l) || strings.HasPrefix(l, "__") || l == "le" {
			panic("metrics: invalid label name " + strconv.Quote(l) + " of " + name)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if f := r.families[name]; f != nil {
		if f.kind != k || !slices.Equal(f.labels, labels) || !slices.Equal(f.buckets, buckets) || f.fn != nil {
			panic("metrics: " + name + " registered twice in different shapes")
		}
		return f
	}
	f := &family{name: name, help: help, kind: k, labels: slices.Clone(labels), buckets: slices.Clone(buckets),
		series: make(map[string]*series)}
	r.families[name] = f
	return f
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// get returns the series of values, creating it.
func (f *family) get(values []string) *series {
	if len(values) != len(f.labels) {
		panic(fmt.Sprintf("metrics: %s takes %d label values, got %d", f.name, len(f.labels), len(values)))
	}
	key := strings.Join(values, "\xff")
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.series[key]; s != nil {
		return s
	}
	s := &series{values: slices.Clone(values)}
	switch f.kind {
	case kindCounter:
		s.c = new(Counter)
	case kindGauge:
		s.g = new(Gauge)
	case kindHistogram:
		s.h = newHistogram(f.buckets)
	}
	f.series[key] = s
	return s
}

// CounterVec is a counter family with labels.
type CounterVec struct{ f *family }

// Counter registers (or returns) the counter family name with the given
// label names.
func (r *Registry) Counter(name, help string, labels ...string) *CounterVec {
	f := r.register(name, help, kindCounter, nil, labels)
	if f == nil {
		return nil
	}
	return &CounterVec{f}
}

// With returns the counter of the label values (in the order of the
// family's label names), creating it at 0: it then shows in the output.
func (v *CounterVec) With(values ...string) *Counter {
	if v == nil {
		return nil
	}
	return v.f.get(values).c
}

// Counter is a value that only goes up.
type Counter struct{ n atomic.Uint64 }

// Inc adds 1.
func (c *Counter) Inc() {
	if c != nil {
		c.n.Add(1)
	}
}

// Add adds n.
func (c *Counter) Add(n uint64) {
	if c != nil {
		c.n.Add(n)
	}
}

// Value returns the count.
func (c *Counter) Value() uint64 {
	if c == nil {
		return 0
	}
	return c.n.Load()
}

// GaugeVec is a gauge family with labels.
type GaugeVec struct{ f *family }

// Gauge registers (or returns) the gauge family name with the given label
// names.
func (r *Registry) Gauge(name, help string, labels ...string) *GaugeVec {
	f := r.register(name, help, kindGauge, nil, labels)
	if f == nil {
		return nil
	}
	return &GaugeVec{f}
}

// With returns the gauge of the label values, creating it at 0.
func (v *GaugeVec) With(values ...string) *Gauge {
	if v == nil {
		return nil
	}
	return v.f.get(values).g
}

// GaugeFunc registers a gauge without labels whose value fn returns at
// each scrape. fn must be safe for concurrent use.
func (r *Registry) GaugeFunc(name, help string, fn func() float64) {
	r.registerFunc(name, help, kindGauge, fn)
}

// registerFunc registers a family without labels of kind k whose one value
// fn returns at each scrape.
func (r *Registry) registerFunc(name, help string, k kind, fn func() float64) {
	f := r.register(name, help, k, nil, nil)
	if f == nil {
		return
	}
	f.mu.Lock()
	f.fn = fn
	f.mu.Unlock()
}

// CounterFunc registers a counter without labels whose value fn returns at
// each scrape (a count kept elsewhere, such as the runtime's). fn must be
// safe for concurrent use and never decrease.
func (r *Registry) CounterFunc(name, help string, fn func() float64) {
	r.registerFunc(name, help, kindCounter, fn)
}

// Gauge is a value that goes up and down.
type Gauge struct{ bits atomic.Uint64 }

// Set sets the value.
func (g *Gauge) Set(v float64) {
	if g != nil {
		g.bits.Store(math.Float64bits(v))
	}
}

// Add adds d (which may be negative).
func (g *Gauge) Add(d float64) {
	if g != nil {
		addFloat(&g.bits, d)
	}
}

// Value returns the value.
func (g *Gauge) Value() float64 {
	if g == nil {
		return 0
	}
	return math.Float64frombits(g.bits.Load())
}

func addFloat(bits *atomic.Uint64, d float64) {
	for {
		old := bits.Load()
		if bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+d)) {
			return
		}
	}
}

// HistogramVec is a histogram family with labels; its series share the
// family's buckets.
type HistogramVec struct{ f *family }

// Histogram registers (or returns) the histogram family name with the
// given upper bounds (increasing; +Inf is implied) and label names.
func (r *Registry) Histogram(name, help string, buckets []float64, labels ...string) *HistogramVec {
	if !slices.IsSorted(buckets) || slices.Contains(buckets, math.Inf(1)) {
		panic("metrics: " + name + ": buckets must increase and leave out +Inf")
	}
	f := r.register(name, help, kindHistogram, buckets, labels)
	if f == nil {
		return nil
	}
	return &HistogramVec{f}
}

// With returns the histogram of the label values, creating it empty.
func (v *HistogramVec) With(values ...string) *Histogram {
	if v == nil {
		return nil
	}
	return v.f.get(values).h
}

// Histogram counts observations in fixed buckets.
type Histogram struct {
	upper  []float64
	counts []atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	count  atomic.Uint64
	sum    atomic.Uint64 // float64 bits
}

func newHistogram(upper []float64) *Histogram {
	return &Histogram{upper: upper, counts: make([]atomic.Uint64, len(upper)+1)}
}

// Observe records v.
func (h *Histogram) Observe(v float64) {
	if h == nil {
		return
	}
	i := 0
	for i < len(h.upper) && v > h.upper[i] {
		i++
	}
	h.counts[i].Add(1)
	addFloat(&h.sum, v)
	h.count.Add(1)
}

// ObserveDuration records d in seconds.
func (h *Histogram) ObserveDuration(d time.Duration) {
	if h != nil {
		h.Observe(d.Seconds())
	}
}

// Count returns the number of observations.
func (h *Histogram) Count() uint64 {
	if h == nil {
		return 0
	}
	return h.count.Load()
}

// WriteText writes every family in the text exposition format 0.0.4:
// families sorted by name, each with its HELP and TYPE lines, series sorted
// by label values; histograms as cumulative _bucket series (le ending in
// +Inf), _sum and _count.
func (r *Registry) WriteText(w io.Writer) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	fams := make([]*family, 0, len(r.families))
	for _, f := range r.families {
		fams = append(fams, f)
	}
	r.mu.Unlock()
	slices.SortFunc(fams, func(a, b *family) int { return strings.Compare(a.name, b.name) })

	bw := bufio.NewWriter(w)
	var line []byte
	for _, f := range fams {
		line = append(line[:0], "# HELP "...)
		line = append(line, f.name...)
		line = append(line, ' ')
		line = appendEscaped(line, f.help, false)
		line = append(line, "\n# TYPE "...)
		line = append(line, f.name...)
		line = append(line, ' ')
		line = append(line, f.kind.String()...)
		line = append(line, '\n')

		f.mu.Lock()
		fn := f.fn
		ss := make([]*series, 0, len(f.series))
		for _, s := range f.series {
			ss = append(ss, s)
		}
		f.mu.Unlock()
		slices.SortFunc(ss, func(a, b *series) int { return slices.Compare(a.values, b.values) })

		if fn != nil {
			line = appendSample(line, f.name, "", nil, nil, "", fn())
		}
		for _, s := range ss {
			switch f.kind {
			case kindCounter:
				line = appendSample(line, f.name, "", f.labels, s.values, "", float64(s.c.Value()))
			case kindGauge:
				line = appendSample(line, f.name, "", f.labels, s.values, "", s.g.Value())
			case kindHistogram:
				h := s.h
				// _count is written as the buckets' total, so that +Inf
				// and _count agree even while observations land.
				var cum uint64
				for i := range h.counts {
					cum += h.counts[i].Load()
					le := "+Inf"
					if i < len(h.upper) {
						le = formatFloat(h.upper[i])
					}
					line = appendSample(line, f.name, "_bucket", f.labels, s.values, le, float64(cum))
				}
				line = appendSample(line, f.name, "_sum", f.labels, s.values, "", math.Float64frombits(h.sum.Load()))
				line = appendSample(line, f.name, "_count", f.labels, s.values, "", float64(cum))
			}
		}
		if _, err := bw.Write(line); err != nil {
			return err
		}
		line = line[:0]
	}
	return bw.Flush()
}

// appendSample appends one sample line: name+suffix, the labels (and le,
// for buckets) and the value.
func appendSample(b []byte, name, suffix string, labels, values []string, le string, v float64) []byte {
	b = append(b, name...)
	b = append(b, suffix...)
	if len(labels) > 0 || le != "" {
		b = append(b, '{')
		for i, l := range labels {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, l...)
			b = append(b, `="`...)
			b = appendEscaped(b, values[i], true)
			b = append(b, '"')
		}
		if le != "" {
			if len(labels) > 0 {
				b = append(b, ',')
			}
			b = append(b, `le="`...)
			b = append(b, le...)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	b = append(b, ' ')
	b = append(b, formatFloat(v)...)
	return append(b, '\n')
}

// appendEscaped escapes backslash and newline (HELP text) and, in label
// values, the double quote.
func appendEscaped(b []byte, s string, quote bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
