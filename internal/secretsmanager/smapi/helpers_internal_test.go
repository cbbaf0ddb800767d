package smapi

import (
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestAppendTime checks the integer formatting of timestamps against the
// float formatting it replaced, around the epoch and at today's magnitudes.
func TestAppendTime(t *testing.T) {
	ref := func(ms int64) string {
		if ms%1000 == 0 {
			return strconv.FormatInt(ms/1000, 10)
		}
		return strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64)
	}
	var cases []int64
	for _, base := range []int64{0, 1523477145000, 1795000000000, -86400000, -1523477145000} {
		for d := int64(-1001); d <= 1001; d++ {
			cases = append(cases, base+d)
		}
	}
	for _, ms := range cases {
		got := string(appendTime(nil, time.UnixMilli(ms)))
		if want := ref(ms); got != want {
			t.Fatalf("appendTime(%d ms) = %s, want %s", ms, got, want)
		}
	}
}

// TestSortedKeys checks that map keys come out sorted whether or not they fit
// the caller's array.
func TestSortedKeys(t *testing.T) {
	for _, n := range []int{0, 1, 2, 8, 9, 40} {
		m := map[string]int{}
		var want []string
		for i := range n {
			k := strconv.Itoa(i * 7919 % 1000)
			m[k] = i
			want = append(want, k)
		}
		slices.Sort(want)
		var kb [8]string
		if got := sortedKeys(m, kb[:]); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("sortedKeys(%d keys) = %v, want %v", n, got, want)
		}
	}
}
