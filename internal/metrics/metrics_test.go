package metrics

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWriteTextGolden(t *testing.T) {
	r := NewRegistry()
	req := r.Counter("keyfort_requests_total", "Requests.", "service", "operation", "code")
	req.With("kms", "Encrypt", "OK").Add(3)
	req.With("kms", "Decrypt", "InvalidCiphertextException").Inc()
	r.Gauge("a_gauge", "A gauge with \\ and\nnewline.").With().Set(-1.5)
	h := r.Histogram("lat_seconds", "Latency.", []float64{0.1, 1}, "op")
	h.With("x").Observe(0.05)
	h.With("x").Observe(0.5)
	h.With("x").Observe(5)
	r.Counter("esc_total", "Escapes.", "v").With("a\"b\\c\nd").Inc()
	r.GaugeFunc("fn_gauge", "From a function.", func() float64 { return 0.25 })

	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := `# HELP a_gauge A gauge with \\ and\nnewline.
# TYPE a_gauge gauge
a_gauge 0
# HELP esc_total Escapes.
# TYPE esc_total counter
esc_total{v="a\"b\\c\nd"} 1
# HELP fn_gauge From a function.
# TYPE fn_gauge gauge
fn_gauge 0.25
# HELP keyfort_requests_total Requests.
# TYPE keyfort_requests_total counter
keyfort_requests_total{service="kms",operation="Decrypt",code="InvalidCiphertextException"} 1
keyfort_requests_total{service="kms",operation="Encrypt",code="OK"} 3
# HELP lat_seconds Latency.
# TYPE lat_seconds histogram
lat_seconds_bucket{op="x",le="0.1"} 1
lat_seconds_bucket{op="x",le="1"} 2
lat_seconds_bucket{op="x",le="+Inf"} 3
lat_seconds_sum{op="x"} 5.55
lat_seconds_count{op="x"} 3
`
	// a_gauge was set on a series with no labels; With() made it.
	want = strings.Replace(want, "a_gauge 0\n", "a_gauge -1.5\n", 1)
	if b.String() != want {
		t.Errorf("WriteText:\n%s\nwant:\n%s", b.String(), want)
	}
	if err := parse(b.String()); err != nil {
		t.Error(err)
	}
}

// parse is a tiny parser of the text format: every family has HELP then
// TYPE, every sample line belongs to the last TYPE's family, label values
// are quoted and escaped, values parse.
func parse(text string) error {
	var family string
	seen := map[string]bool{}
	for n, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "# HELP "):
			name, _, _ := strings.Cut(line[len("# HELP "):], " ")
			if seen[name] {
				return errf(n, "family %s twice", name)
			}
			seen[name] = true
			family = name
		case strings.HasPrefix(line, "# TYPE "):
			f := strings.Fields(line)
			if len(f) != 4 || f[2] != family {
				return errf(n, "TYPE %q not after its HELP", line)
			}
		default:
			name := line[:strings.IndexAny(line, "{ ")]
			if name != family && strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count") != family {
				return errf(n, "sample %s outside its family %s", name, family)
			}
			rest := line[len(name):]
			if rest[0] == '{' {
				i := 1
				for rest[i] != '}' {
					eq := strings.IndexByte(rest[i:], '=')
					if eq < 0 || rest[i+eq+1] != '"' {
						return errf(n, "bad label in %q", line)
					}
					i += eq + 2
					for rest[i] != '"' {
						if rest[i] == '\\' {
							if !strings.ContainsRune(`\"n`, rune(rest[i+1])) {
								return errf(n, "bad escape in %q", line)
							}
							i++
						} else if rest[i] == '\n' {
							return errf(n, "raw newline")
						}
						i++
					}
					i++
					if rest[i] == ',' {
						i++
					}
				}
				rest = rest[i+1:]
			}
			if rest[0] != ' ' || len(strings.Fields(rest)) != 1 {
				return errf(n, "bad value in %q", line)
			}
		}
	}
	return nil
}

func errf(n int, format string, args ...any) error {
	return fmt.Errorf("line %d: "+format, append([]any{n + 1}, args...)...)
}

func TestNilIsNoop(t *testing.T) {
	var r *Registry
	c := r.Counter("x_total", "x", "a").With("b")
	c.Inc()
	r.Histogram("h", "h", DurationBuckets).With().ObserveDuration(time.Second)
	r.Gauge("g", "g").With().Set(1)
	r.GaugeFunc("f", "f", func() float64 { return 1 })
	if c.Value() != 0 {
		t.Error("nil counter counted")
	}
	if err := r.WriteText(&bytes.Buffer{}); err != nil {
		t.Error(err)
	}
}

func TestRegisterTwice(t *testing.T) {
	r := NewRegistry()
	a := r.Counter("x_total", "x", "a")
	if b := r.Counter("x_total", "x", "a"); a.With("1") != b.With("1") {
		t.Error("same family registered twice gave two series")
	}
	defer func() {
		if recover() == nil {
			t.Error("a name registered as another type did not panic")
		}
	}()
	r.Gauge("x_total", "x", "a")
}

func TestConcurrent(t *testing.T) {
	r := NewRegistry()
	h := r.Histogram("h_seconds", "h", []float64{1, 2}).With()
	c := r.Counter("c_total", "c").With()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				h.Observe(1.5)
				c.Inc()
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			_ = r.WriteText(&bytes.Buffer{})
		}
	})
	wg.Wait()
	var b bytes.Buffer
	_ = r.WriteText(&b)
	for _, want := range []string{"c_total 8000\n", `h_seconds_bucket{le="1"} 0`, `h_seconds_bucket{le="2"} 8000`, "h_seconds_sum 12000\n", "h_seconds_count 8000\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

func BenchmarkCounterHistogram(b *testing.B) {
	r := NewRegistry()
	c := r.Counter("c_total", "c", "a").With("x")
	h := r.Histogram("h_seconds", "h", DurationBuckets, "a").With("x")
	b.ReportAllocs()
	for b.Loop() {
		c.Inc()
		h.Observe(0.0003)
	}
}
