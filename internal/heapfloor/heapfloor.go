// Package heapfloor keeps the garbage collector's heap goal from falling
// below a floor while the live heap is small.
//
// The runtime collects each time the heap grows by GOGC percent of what the
// last collection left live (and never below a 4 MiB goal). A server whose
// live heap is a few MiB and which allocates a few KiB per request then
// collects every few hundred requests, and each collection has a fixed cost
// (two stop-the-world pauses, every goroutine's stack scanned) that its
// small heap does not amortize: with 2 MiB live, Keyfort collected 16 times
// a second under load, about 5 µs of CPU per request. Raising GOGC while
// the live heap is below the floor makes the goal the floor instead; once
// the live heap passes half the floor the configured GOGC applies
// unchanged, and the soft memory limit still bounds the heap as before.
package heapfloor

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Percent returns the GOGC that puts the heap goal (live bytes grown by the
// percent) at floor bytes or more: base, or more when live is small. A live
// heap of 0 (none measured yet) gives base.
func Percent(live, floor uint64, base int) int {
	if live == 0 || base <= 0 {
		return base
	}
	if live*uint64(100+base)/100 >= floor {
		return base
	}
	// The smallest p with live*(100+p)/100 >= floor.
	p := (floor*100+live-1)/live - 100
	const most = 100000 // bounds the arithmetic; a live heap of a few KiB
	if p > most {
		return most
	}
	return int(p)
}

// Run sets the collector's percent to Percent(live heap, floor, base) after
// each collection, checking every interval, until ctx ends; then it
// restores base. It is meant for one process-wide caller (the server's
// main): the percent is process state.
func Run(ctx context.Context, floor uint64, base int, interval time.Duration) {
	samples := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/gc/heap/live:bytes"}}
	t := time.NewTicker(interval)
	defer t.Stop()
	var cycles uint64
	current := base
	for {
		select {
		case <-ctx.Done():
			if current != base {
				debug.SetGCPercent(base)
			}
			return
		case <-t.C:
		}
		metrics.Read(samples)
		if samples[0].Value.Kind() != metrics.KindUint64 || samples[1].Value.Kind() != metrics.KindUint64 {
			return // not measured by this runtime: leave the default
		}
		if c := samples[0].Value.Uint64(); c == cycles {
			continue
		} else {
			cycles = c
		}
		p := Percent(samples[1].Value.Uint64(), floor, base)
		// Small changes of the live heap do not move the goal much; a new
		// percent is set only when it differs by a tenth or more.
		if p != current && (p > current*11/10 || p < current*9/10) {
			debug.SetGCPercent(p)
			current = p
		}
	}
}
