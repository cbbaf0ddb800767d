// Package clock is the server's clock: a base clock (time.Now) plus an
// offset that only grows, which `keyfort clock advance` moves on a server in
// dev mode, so that deletion windows, rotation periods and rotation
// schedules elapse in a test without waiting days. It also holds the wire
// form of the admin endpoint (paths, request, answer) that the server and
// the CLI share, and ParseDuration, Go durations with a d (24-hour) unit.
// It is a leaf.
package clock

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Day is the d unit of ParseDuration: 24 hours, as AWS counts deletion
// windows and rotation periods.
const Day = 24 * time.Hour

// MaxAdvance is the most one advance may move the clock (10 years; the
// longest AWS period, a KMS rotation period, is 2560 days).
const MaxAdvance = 3650 * Day

// MaxOffset is the most the clock may be ahead of the base clock in all
// (100 years), far from the overflow of time.Duration.
const MaxOffset = 36500 * Day

// The admin endpoint, outside the AWS path (POST /).
const (
	// PathShow answers GET with the clock's State.
	PathShow = "/keyfort/clock"
	// PathAdvance takes POST with an AdvanceRequest (Content-Type
	// application/json) and answers the State after the due work ran.
	PathAdvance = "/keyfort/clock/advance"
)

// AdvanceRequest is the body of POST PathAdvance.
type AdvanceRequest struct {
	// Duration is how far to move the clock, as ParseDuration reads it
	// ("8d", "36h", "1d12h").
	Duration string `json:"duration"`
}

// State is the answer of the admin endpoint.
type State struct {
	// Now is the server's time, in UTC.
	Now time.Time `json:"now"`
	// Offset is how far the server's clock is ahead of real time, as
	// FormatDuration writes it ("0s" when it was never moved).
	Offset string `json:"offset"`
	// Steps is, after an advance, how many times the due background work
	// ran: once at each time work fell due in the skipped span, in order,
	// and once at the new time.
	Steps int `json:"steps,omitempty"`
}

// ErrorBody is the answer of the admin endpoint to a request it refuses.
type ErrorBody struct {
	Error string `json:"error"`
}

// Clock is a base clock plus an offset that only grows. The zero value is
// not usable; make one with New. Safe for concurrent use.
type Clock struct {
	base   func() time.Time
	offset atomic.Int64 // nanoseconds
}

// New returns a clock that reads base (nil means time.Now) with no offset.
func New(base func() time.Time) *Clock {
	if base == nil {
		base = time.Now
	}
	return &Clock{base: base}
}

// Now returns the base clock's time plus the offset.
func (c *Clock) Now() time.Time { return c.base().Add(c.Offset()) }

// Offset returns how far the clock is ahead of its base clock.
func (c *Clock) Offset() time.Duration { return time.Duration(c.offset.Load()) }

// AdvanceTo moves the clock forward so that Now is at least t (it keeps
// running from there); it never moves it back, and never beyond MaxOffset
// ahead of the base clock. It returns the offset then in force.
func (c *Clock) AdvanceTo(t time.Time) time.Duration {
	for {
		old := c.offset.Load()
		want := int64(min(t.Sub(c.base()), MaxOffset))
		if want <= old {
			return time.Duration(old)
		}
		if c.offset.CompareAndSwap(old, want) {
			return time.Duration(want)
		}
	}
}

// AdvanceOffsetTo raises the offset to off, so that the clock is off ahead
// of its base clock; it never lowers it, and never beyond MaxOffset. It
// returns the offset then in force.
func (c *Clock) AdvanceOffsetTo(off time.Duration) time.Duration {
	off = min(off, MaxOffset)
	for {
		old := c.offset.Load()
		if int64(off) <= old {
			return time.Duration(old)
		}
		if c.offset.CompareAndSwap(old, int64(off)) {
			return off
		}
	}
}

// ParseDuration reads a duration: a Go duration (time.ParseDuration:
// "36h", "90m", "1h30m") optionally preceded by whole days with the unit d
// ("8d", "1d12h"). A negative duration is refused: the clock never goes
// back.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New(`a duration is required, such as 8d, 36h or 1d12h`)
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("duration %q is negative: the clock only moves forward", s)
	}
	rest := strings.TrimPrefix(s, "+")
	var days int64
	if i := strings.IndexByte(rest, 'd'); i >= 0 {
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil || i == 0 || rest[0] < '0' || rest[0] > '9' {
			return 0, fmt.Errorf("duration %q: days must come first as a whole number, such as 8d or 1d12h", s)
		}
		if n > int64(math.MaxInt64/int64(Day)) {
			return 0, fmt.Errorf("duration %q is too long", s)
		}
		days, rest = n, rest[i+1:]
	}
	var d time.Duration
	if rest != "" {
		var err error
		if d, err = time.ParseDuration(rest); err != nil {
			return 0, fmt.Errorf("duration %q: not a duration such as 8d, 36h or 1d12h", s)
		}
		if d < 0 {
			return 0, fmt.Errorf("duration %q is negative: the clock only moves forward", s)
		}
	}
	if d > time.Duration(math.MaxInt64)-time.Duration(days)*Day {
		return 0, fmt.Errorf("duration %q is too long", s)
	}
	return time.Duration(days)*Day + d, nil
}

// FormatDuration writes d as ParseDuration reads it, with whole days in d
// and no zero units at the end: "8d", "1d12h", "36m", "0s".
func FormatDuration(d time.Duration) string {
	neg := d < 0
	if neg {
		d = -d
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	days, rest := d/Day, d%Day
	if days > 0 {
		b.WriteString(strconv.FormatInt(int64(days), 10))
		b.WriteByte('d')
		if rest == 0 {
			return b.String()
		}
	}
	s := rest.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	b.WriteString(s)
	return b.String()
}
