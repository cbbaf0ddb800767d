package clock

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	ok := []struct {
		in   string
		want time.Duration
	}{
		{"8d", 8 * Day},
		{"36h", 36 * time.Hour},
		{"1d12h", 36 * time.Hour},
		{"0d", 0},
		{"0s", 0},
		{"+2d", 2 * Day},
		{"1d30m", Day + 30*time.Minute},
		{"91d", 91 * Day},
		{"1.5h", 90 * time.Minute},
		{"100000d", 100000 * Day},
	}
	for _, c := range ok {
		got, err := ParseDuration(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseDuration(%q) = %v, %v, want %v", c.in, got, err, c.want)
		}
	}
	bad := []struct{ in, want string }{
		{"", "required"},
		{"-1d", "negative"},
		{"-36h", "negative"},
		{"1d-2h", "negative"},
		{"1.5d", "whole number"},
		{"d", "whole number"},
		{"12h1d", "whole number"},
		{"+-1d", "whole number"},
		{"8 days", "whole number"},
		{"8", "not a duration"},
		{"8x", "not a duration"},
		{"1dd", "not a duration"},
		{"999999999999d", "too long"},
		{"106751d23h47m17s", "too long"},
		{"99999999999999999999d", "whole number"},
	}
	for _, c := range bad {
		got, err := ParseDuration(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseDuration(%q) = %v, %v, want an error saying %q", c.in, got, err, c.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for _, c := range []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{8 * Day, "8d"},
		{36 * time.Hour, "1d12h"},
		{Day + 10*time.Minute, "1d10m"},
		{time.Hour, "1h"},
		{10 * time.Second, "10s"},
		{90 * time.Minute, "1h30m"},
		{Day + 1500*time.Millisecond, "1d1.5s"},
	} {
		got := FormatDuration(c.in)
		if got != c.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", c.in, got, c.want)
		}
		if back, err := ParseDuration(got); err != nil || back != c.in {
			t.Errorf("ParseDuration(FormatDuration(%v)) = %v, %v", c.in, back, err)
		}
	}
}

func TestClockOnlyMovesForward(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := New(func() time.Time { return base })
	if !c.Now().Equal(base) || c.Offset() != 0 {
		t.Fatalf("new clock = %v offset %v, want %v and 0", c.Now(), c.Offset(), base)
	}
	if off := c.AdvanceTo(base.Add(8 * Day)); off != 8*Day || !c.Now().Equal(base.Add(8*Day)) {
		t.Fatalf("AdvanceTo(+8d) = offset %v now %v, want 8d", off, c.Now())
	}
	if off := c.AdvanceTo(base.Add(Day)); off != 8*Day {
		t.Fatalf("AdvanceTo(an earlier time) = offset %v, want 8d kept", off)
	}
	if off := c.AdvanceOffsetTo(9 * Day); off != 9*Day || !c.Now().Equal(base.Add(9*Day)) {
		t.Fatalf("AdvanceOffsetTo(9d) = offset %v now %v, want 9d", off, c.Now())
	}
	if off := c.AdvanceOffsetTo(2 * Day); off != 9*Day {
		t.Fatalf("AdvanceOffsetTo(2d) = offset %v, want 9d kept", off)
	}
	if off := c.AdvanceTo(base.AddDate(1000, 0, 0)); off != MaxOffset {
		t.Fatalf("AdvanceTo(+1000 years) = offset %v, want MaxOffset", off)
	}
}

func TestClockConcurrentAdvance(t *testing.T) {
	c := New(nil)
	start := c.Now()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { c.AdvanceTo(start.Add(time.Duration(i+1) * Day)) })
	}
	wg.Wait()
	if c.Offset() < 8*Day-time.Minute || c.Offset() > 8*Day {
		t.Fatalf("after concurrent advances the offset is %v, want about 8d (the largest)", c.Offset())
	}
}
