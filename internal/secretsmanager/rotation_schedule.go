package secretsmanager

import (
	"strconv"
	"strings"
	"time"

	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
)

// Rotation schedules, as the Secrets Manager User Guide ("Rotation
// schedules") describes them. All times are UTC.
//
//   - AutomaticallyAfterDays N (1-1000): the window is the whole UTC day N
//     days after the last rotation (or the last change of the AWSCURRENT
//     value, which AWS counts as a rotation).
//   - rate(N hours) (4-23) or rate(N days) (1-999): windows start at
//     midnight; an hourly rate restarts each day.
//   - cron(Minutes Hours Day-of-month Month Day-of-week Year): Minutes must
//     be 0 and Year must be *; one of the two day fields must be ?.
//   - Duration "Nh" (1-24): the window length. Without it a window closes
//     after one hour for schedules in hours and at the end of the UTC day for
//     schedules in days. A window may not reach into the next UTC day or
//     into the next window.
//
// A secret may be rotated at most every four hours.
const (
	minRotationGap   = 4 * time.Hour
	maxRateHours     = 23
	maxRateDays      = 999 // "The maximum rotation period is 999 days."
	maxRotationDays  = 1000
	cronSearchDays   = 366 + 31 // a valid schedule repeats within a year
	maxScheduleItems = 64       // bound on comma-separated items per field
)

// schedule is a parsed rotation rule.
type schedule struct {
	days   int           // AutomaticallyAfterDays or rate(N days)
	hours  int           // rate(N hours)
	cron   *cronExpr     // cron(...)
	window time.Duration // Duration; 0 means the default window
}

func errBadSchedule(expr string) error {
	return errInvalidParameter("The schedule expression " + expr + " is not valid. Use rate(N hours) with N from 4 to 23, " +
		"rate(N days) with N from 1 to 999, or cron(0 Hours Day-of-month Month Day-of-week *).")
}

// parseRules validates RotationRules. now anchors the checks of cron
// schedules (that they fire at all, and at most every four hours).
func parseRules(r *smapi.RotationRulesType, now time.Time) (*schedule, error) {
	if r.AutomaticallyAfterDays != nil && r.ScheduleExpression != nil {
		return nil, errInvalidParameter("You can't specify both AutomaticallyAfterDays and ScheduleExpression in RotationRules.")
	}
	sch := &schedule{}
	switch {
	case r.AutomaticallyAfterDays != nil:
		n := *r.AutomaticallyAfterDays
		if n < 1 || n > maxRotationDays {
			return nil, errInvalidParameter("The AutomaticallyAfterDays value must be between 1 and 1000 days (inclusive).")
		}
		sch.days = int(n)
	case r.ScheduleExpression != nil:
		var err error
		if sch, err = parseScheduleExpression(*r.ScheduleExpression, now); err != nil {
			return nil, err
		}
	default:
		return nil, errInvalidParameter("RotationRules must contain AutomaticallyAfterDays or ScheduleExpression.")
	}
	if r.Duration != nil {
		d, err := parseWindow(*r.Duration)
		if err != nil {
			return nil, err
		}
		sch.window = d
		if err := sch.checkWindow(now); err != nil {
			return nil, err
		}
	}
	return sch, nil
}

// scheduleOf returns the stored schedule of a secret, or nil when it has
// none. Stored rules were validated when they were set.
func scheduleOf(m *secretMeta, now time.Time) *schedule {
	r := &smapi.RotationRulesType{}
	switch {
	case m.RotationSchedule != "":
		r.ScheduleExpression = ptr(m.RotationSchedule)
	case m.RotationDays > 0:
		r.AutomaticallyAfterDays = ptr(m.RotationDays)
	default:
		return nil
	}
	if m.RotationDuration != "" {
		r.Duration = ptr(m.RotationDuration)
	}
	sch, err := parseRules(r, now)
	if err != nil {
		return nil
	}
	return sch
}

func parseWindow(s string) (time.Duration, error) {
	n, err := strconv.Atoi(strings.TrimSuffix(s, "h"))
	if !strings.HasSuffix(s, "h") || err != nil || n < 1 || n > 24 {
		return 0, errInvalidParameter("The Duration " + s + " is not valid. Specify the rotation window in hours, from 1h to 24h.")
	}
	return time.Duration(n) * time.Hour, nil
}

func parseScheduleExpression(expr string, now time.Time) (*schedule, error) {
	switch {
	case strings.HasPrefix(expr, "rate(") && strings.HasSuffix(expr, ")"):
		f := strings.Fields(expr[len("rate(") : len(expr)-1])
		if len(f) != 2 {
			return nil, errBadSchedule(expr)
		}
		n, err := strconv.Atoi(f[0])
		if err != nil || f[0][0] == '+' || f[0][0] == '-' {
			return nil, errBadSchedule(expr)
		}
		switch f[1] {
		case "hour", "hours":
			if n < int(minRotationGap/time.Hour) || n > maxRateHours {
				return nil, errBadSchedule(expr)
			}
			return &schedule{hours: n}, nil
		case "day", "days":
			if n < 1 || n > maxRateDays {
				return nil, errBadSchedule(expr)
			}
			return &schedule{days: n}, nil
		}
		return nil, errBadSchedule(expr)
	case strings.HasPrefix(expr, "cron(") && strings.HasSuffix(expr, ")"):
		c, err := parseCron(expr[len("cron(") : len(expr)-1])
		if err != nil {
			return nil, errBadSchedule(expr)
		}
		starts := c.startsBetween(now, now.Add(cronSearchDays*day))
		if len(starts) == 0 {
			return nil, errBadSchedule(expr) // never fires
		}
		for i := 1; i < len(starts); i++ {
			if starts[i].Sub(starts[i-1]) < minRotationGap {
				return nil, errInvalidParameter("The schedule expression " + expr + " rotates the secret more often than every four hours.")
			}
		}
		return &schedule{cron: c}, nil
	}
	return nil, errBadSchedule(expr)
}

// inHours reports whether the schedule rotates more than once on some days.
func (s *schedule) inHours() bool {
	if s.hours > 0 {
		return true
	}
	if s.cron == nil {
		return false
	}
	n := 0
	for _, on := range s.cron.hours {
		if on {
			n++
		}
	}
	return n > 1
}

// checkWindow verifies that the window neither reaches into the next UTC
// day nor into the next window.
func (s *schedule) checkWindow(now time.Time) error {
	bad := errInvalidParameter("The rotation window (Duration) must not extend into the next UTC day or into the next rotation window.")
	switch {
	case s.hours > 0:
		if s.window > time.Duration(s.hours)*time.Hour {
			return bad
		}
	case s.cron != nil:
		starts := s.cron.startsBetween(now, now.Add(cronSearchDays*day))
		for i, st := range starts {
			end := st.Add(s.window)
			if end.After(st.Truncate(day).Add(day)) {
				return bad
			}
			if i+1 < len(starts) && end.After(starts[i+1]) {
				return bad
			}
		}
	default: // days: the window opens at midnight
		if s.window > day {
			return bad
		}
	}
	return nil
}

// windowAfter returns the first rotation window that opens after t (for
// AutomaticallyAfterDays and day rates: the day that is the interval after
// base), as its opening time and its last second (NextRotationDate).
func (s *schedule) windowAfter(base, t time.Time) (start, last time.Time, ok bool) {
	switch {
	case s.hours > 0:
		d := t.Truncate(day)
		start = d
		for !start.After(t) { // bounded: at most 24/hours+1 steps
			start = start.Add(time.Duration(s.hours) * time.Hour)
			if !start.Before(d.Add(day)) {
				start = d.Add(day)
				break
			}
		}
	case s.cron != nil:
		starts := s.cron.startsBetween(t.Add(time.Second), t.Add(cronSearchDays*day))
		if len(starts) == 0 {
			return time.Time{}, time.Time{}, false
		}
		start = starts[0]
	case s.days > 0:
		start = base.UTC().Truncate(day).Add(time.Duration(s.days) * day)
	default:
		return time.Time{}, time.Time{}, false
	}
	w := s.window
	if w == 0 {
		if s.inHours() {
			w = time.Hour
		} else {
			w = start.Truncate(day).Add(day).Sub(start)
		}
	}
	return start, start.Add(w - time.Second), true
}

// intervalDays is the AutomaticallyAfterDays DescribeSecret shows for a
// schedule: the days between two windows, at least 1.
func (s *schedule) intervalDays(now time.Time) int64 {
	switch {
	case s.days > 0:
		return int64(s.days)
	case s.cron != nil:
		starts := s.cron.startsBetween(now, now.Add(cronSearchDays*day))
		if len(starts) >= 2 {
			if d := int64(starts[1].Sub(starts[0]) / day); d > 1 {
				return d
			}
		}
	}
	return 1
}

// cronExpr is a parsed Secrets Manager cron expression (minutes are 0 and
// the year is *).
type cronExpr struct {
	hours  []bool // 0-23
	months []bool // 1-12
	dom    []bool // 1-31; nil when the field is ? or L
	domL   bool   // L: the last day of the month
	dow    []bool // 1-7 (1 = SUN); nil when the field is ?, L, X#n or XL
	dowL   int    // XL: the last weekday X of the month (L alone is 7)
	dowNth [2]int // X#n: the n-th weekday X of the month
}

var (
	monthNames = []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}
	dayNames   = []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}
)

func parseCron(s string) (*cronExpr, error) {
	f := strings.Fields(s)
	if len(f) != 6 || f[0] != "0" || f[5] != "*" {
		return nil, errBadSchedule("")
	}
	c := &cronExpr{}
	var err error
	if c.hours, err = parseCronField(f[1], 0, 23, nil); err != nil {
		return nil, err
	}
	if c.months, err = parseCronField(f[3], 1, 12, monthNames); err != nil {
		return nil, err
	}
	domQ, dowQ := f[2] == "?", f[4] == "?"
	if domQ == dowQ { // exactly one of the day fields is ?
		return nil, errBadSchedule("")
	}
	if !domQ {
		if f[2] == "L" {
			c.domL = true
		} else if c.dom, err = parseCronField(f[2], 1, 31, nil); err != nil {
			return nil, err
		}
	}
	if !dowQ {
		switch {
		case f[4] == "L":
			c.dowL = 7
		case strings.Contains(f[4], "#"):
			x, n, _ := strings.Cut(f[4], "#")
			wd, err1 := cronValue(x, 1, 7, dayNames)
			nth, err2 := strconv.Atoi(n)
			if err1 != nil || err2 != nil || nth < 1 || nth > 5 {
				return nil, errBadSchedule("")
			}
			c.dowNth = [2]int{wd, nth}
		case len(f[4]) > 1 && strings.HasSuffix(f[4], "L"):
			wd, err := cronValue(strings.TrimSuffix(f[4], "L"), 1, 7, dayNames)
			if err != nil {
				return nil, err
			}
			c.dowL = wd
		default:
			if c.dow, err = parseCronField(f[4], 1, 7, dayNames); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

// parseCronField parses "*", "a", "a-b", "a/s", "*/s", "a-b/s" and lists of
// them into a set indexed by value.
func parseCronField(s string, lo, hi int, names []string) ([]bool, error) {
	set := make([]bool, hi+1)
	items := strings.Split(s, ",")
	if len(items) > maxScheduleItems {
		return nil, errBadSchedule("")
	}
	for _, item := range items {
		rng, stepStr, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || n < 1 || n > hi {
				return nil, errBadSchedule("")
			}
			step = n
		}
		a, b := lo, hi
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			x, y, _ := strings.Cut(rng, "-")
			var err error
			if a, err = cronValue(x, lo, hi, names); err != nil {
				return nil, err
			}
			if b, err = cronValue(y, lo, hi, names); err != nil {
				return nil, err
			}
			if b < a {
				return nil, errBadSchedule("")
			}
		default:
			var err error
			if a, err = cronValue(rng, lo, hi, names); err != nil {
				return nil, err
			}
			if !hasStep {
				b = a
			}
		}
		for v := a; v <= b; v += step {
			set[v] = true
		}
	}
	return set, nil
}

func cronValue(s string, lo, hi int, names []string) (int, error) {
	for i, n := range names {
		if strings.EqualFold(s, n) {
			return lo + i, nil
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi || s[0] == '+' || s[0] == '-' {
		return 0, errBadSchedule("")
	}
	return v, nil
}

func (c *cronExpr) matchesDay(d time.Time) bool {
	if !c.months[int(d.Month())] {
		return false
	}
	last := time.Date(d.Year(), d.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
	wd := int(d.Weekday()) + 1 // 1 = SUN
	switch {
	case c.domL:
		return d.Day() == last
	case c.dom != nil:
		return c.dom[d.Day()]
	case c.dowNth[0] != 0:
		return wd == c.dowNth[0] && (d.Day()-1)/7+1 == c.dowNth[1]
	case c.dowL != 0:
		return wd == c.dowL && d.Day()+7 > last
	case c.dow != nil:
		return c.dow[wd]
	}
	return false
}

// startsBetween returns the window openings in [from, to), in order.
func (c *cronExpr) startsBetween(from, to time.Time) []time.Time {
	var out []time.Time
	from = from.UTC()
	for d := from.Truncate(day); d.Before(to); d = d.Add(day) {
		if !c.matchesDay(d) {
			continue
		}
		for h := range 24 {
			t := d.Add(time.Duration(h) * time.Hour)
			if c.hours[h] && !t.Before(from) && t.Before(to) {
				out = append(out, t)
			}
		}
	}
	return out
}
