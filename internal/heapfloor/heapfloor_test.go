package heapfloor

import (
	"context"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, floor uint64
		base, want  int
	}{
		{0, 12 * mib, 100, 100},         // nothing measured yet
		{2 * mib, 12 * mib, 100, 500},   // 2 MiB * 6 = 12 MiB
		{3 * mib, 12 * mib, 100, 300},   // 3 MiB * 4 = 12 MiB
		{5 * mib, 12 * mib, 100, 140},   // 5 MiB * 2.4 = 12 MiB
		{6 * mib, 12 * mib, 100, 100},   // the base already reaches the floor
		{20 * mib, 12 * mib, 100, 100},  // a large heap: the base
		{5*mib + 1, 12 * mib, 100, 140}, // rounded up, never below the floor
		{2 * mib, 12 * mib, 300, 500},   // a higher base
		{4 * mib, 12 * mib, 300, 300},   // a base that reaches the floor
		{1, 12 * mib, 100, 100000},      // bounded
		{2 * mib, 12 * mib, -1, -1},     // collection off stays off
	} {
		got := Percent(c.live, c.floor, c.base)
		if got != c.want {
			t.Errorf("Percent(%d, %d, %d) = %d, want %d", c.live, c.floor, c.base, got, c.want)
		}
		if c.base > 0 && c.live > 0 && got < 100000 && c.live*uint64(100+got)/100 < c.floor {
			t.Errorf("Percent(%d, %d, %d) = %d: goal %d is below the floor", c.live, c.floor, c.base, got, c.live*uint64(100+got)/100)
		}
	}
}

// TestRun: with a small live heap and a floor far above it, Run raises the
// collector's percent after a collection and restores the base when its
// context ends.
func TestRun(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		Run(ctx, 1<<30, 100, time.Millisecond)
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	raised := 0
	for time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
		// SetGCPercent returns the previous value; set it back at once.
		if p := debug.SetGCPercent(-1); p > 100 {
			raised = p
			debug.SetGCPercent(p)
			break
		} else {
			debug.SetGCPercent(p)
		}
	}
	if raised == 0 {
		t.Fatal("Run did not raise the percent above 100 with a 1 GiB floor")
	}
	cancel()
	<-done
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("after Run ended the percent is %d, want the base 100", p)
	}
}
