package audit

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestAppendEventTimeMatchesFormat checks the hand-written eventTime
// formatter against the AppendFormat it replaces, over random instants of
// every year from -20000 to 20000 in several zones, and the edges of the
// years 0 and 9999 it formats by hand.
func TestAppendEventTimeMatchesFormat(t *testing.T) {
	old := func(t time.Time) string { return t.UTC().Format(TimeFormat) }
	zones := []*time.Location{time.UTC, time.FixedZone("CET", 3600), time.FixedZone("-1130", -(11*3600 + 1800)), time.FixedZone("+14", 14*3600)}
	check := func(tm time.Time) {
		t.Helper()
		if got, want := string(appendEventTime([]byte("x"), tm)), "x"+old(tm); got != want {
			t.Fatalf("appendEventTime(%v) = %q, want %q", tm, got, want)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for year := -20000; year <= 20000; year++ {
		for range 3 {
			tm := time.Date(year, time.Month(1+r.IntN(12)), 1+r.IntN(31), r.IntN(24), r.IntN(60), r.IntN(61), r.IntN(1e9), zones[r.IntN(len(zones))])
			check(tm)
		}
	}
	for _, year := range []int{-1, 0, 1, 999, 1000, 1969, 1970, 2000, 2026, 9999, 10000} {
		for _, z := range zones {
			check(time.Date(year, 1, 1, 0, 0, 0, 0, z))
			check(time.Date(year, 12, 31, 23, 59, 59, 999999999, z))
			check(time.Date(year, 2, 29, 12, 30, 30, 0, z))
		}
	}
	check(time.Time{})
	check(time.Unix(0, 0))
	check(time.Unix(1<<40, 0))
	check(time.Unix(-1<<40, 0))
	for range 100000 {
		check(time.Unix(r.Int64N(1<<38)-1<<37, r.Int64N(1e9)))
	}
}
