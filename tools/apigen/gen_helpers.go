package main

import (
	"regexp"
	"strings"
)

// helper is one piece of helpers_gen.go, included when the other generated
// files (or another included helper) use its name.
type helper struct {
	name string
	code string
}

// helpers are written into each package, so kmsapi and smapi stay
// independent of each other.
var helpers = []helper{
	{"validationErrors", `
// validationErrors collects constraint violations in AWS's wording. It
// keeps the first maxValidationMessages of them (and counts the rest), so
// a request of many bad elements cannot make a message many times its
// size.
type validationErrors struct {
	msgs []string
	n    int // violations, including those not kept
}

// maxValidationMessages bounds the violations a ValidationException lists.
const maxValidationMessages = 100

// maxEchoBytes bounds how much of a request value a validation message
// echoes; a longer value is cut (on a UTF-8 boundary) and ends in "...".
const maxEchoBytes = 1024

// clipEcho returns s cut to maxEchoBytes, with "..." when it was cut.
func clipEcho(s string) string {
	if len(s) <= maxEchoBytes {
		return s
	}
	i := maxEchoBytes
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}

// add records one violation message.
func (e *validationErrors) add(msg string) {
	e.n++
	if len(e.msgs) < maxValidationMessages {
		e.msgs = append(e.msgs, msg)
	}
}

// null records a missing required member.
func (e *validationErrors) null(path, name string) {
	e.add("Value null at '" + joinPath(path, name) + "' failed to satisfy constraint: Member must not be null")
}

// value records a violation and echoes the value, cut to maxEchoBytes.
func (e *validationErrors) value(path, name, value, constraint string) {
	e.add("Value '" + clipEcho(value) + "' at '" + joinPath(path, name) + "' failed to satisfy constraint: " + constraint)
}

// noValue records a violation without echoing the value (sensitive members,
// blobs, lists, maps and structures).
func (e *validationErrors) noValue(path, name, constraint string) {
	e.add("Value at '" + joinPath(path, name) + "' failed to satisfy constraint: " + constraint)
}

// err returns the ValidationException for the recorded violations, or nil.
func (e *validationErrors) err() error {
	switch e.n {
	case 0:
		return nil
	case 1:
		return awserr.Validation("1 validation error detected: " + e.msgs[0])
	}
	return awserr.Validation(strconv.Itoa(e.n) + " validation errors detected: " + strings.Join(e.msgs, "; "))
}
`},
	{"joinPath", `
// joinPath returns the path of member name below path.
func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
`},
	{"elemPath", `
// elemPath returns the path of element i (from 0) of list member name:
// name.<i+1>.member.
func elemPath(path, name string, i int) string {
	return joinPath(path, name) + "." + strconv.Itoa(i+1) + ".member"
}
`},
	{"memberConstraint", `
// memberConstraint returns AWS's text for list elements that failed the
// constraints texts[i] for which bad[i] is set.
func memberConstraint(bad []bool, texts ...string) string {
	var b strings.Builder
	b.WriteString("Member must satisfy constraint: [")
	n := 0
	for i, t := range texts {
		if !bad[i] {
			continue
		}
		if n > 0 {
			b.WriteString(", ")
		}
		b.WriteString(t)
		n++
	}
	b.WriteString("]")
	return b.String()
}
`},
	{"listString", `
// listString renders a list of strings as AWS echoes it: [a, b]. It stops
// once the text is longer than maxEchoBytes (which clipEcho then cuts).
func listString[T ~string](l []T) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range l {
		if b.Len() > maxEchoBytes {
			return b.String()
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(s[:min(len(s), maxEchoBytes+1)]))
	}
	b.WriteByte(']')
	return b.String()
}
`},
	{"appendString", `
// appendString appends s as a JSON string. Quotes, backslashes and control
// characters are escaped, U+2028 and U+2029 too (as encoding/json does), and
// invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\\ufffd"...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
`},
	{"appendBlob", `
// appendBlob appends p as a JSON string in standard base64.
func appendBlob(b, p []byte) []byte {
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, p)
	return append(b, '"')
}
`},
	{"appendFloat", `
// appendFloat appends a double or float as AWS JSON does: a JSON number in
// the shortest form that reads back exactly, or the strings "NaN",
// "Infinity" and "-Infinity", which JSON numbers cannot spell.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "\"NaN\""...)
	case math.IsInf(f, 1):
		return append(b, "\"Infinity\""...)
	case math.IsInf(f, -1):
		return append(b, "\"-Infinity\""...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}
`},
	{"mapConstraint", `
// mapConstraint returns AWS's text for the keys or values of a map (what
// is "keys" or "value") that failed the constraints texts[i] for which
// bad[i] is set.
func mapConstraint(what string, bad []bool, texts ...string) string {
	return "Map " + what + " must satisfy constraint: " + strings.TrimPrefix(memberConstraint(bad, texts...), "Member must satisfy constraint: ")
}
`},
	{"appendTime", `
// appendTime appends t as epoch seconds, a JSON number with a fraction only
// when t has milliseconds (AWS's precision).
func appendTime(b []byte, t time.Time) []byte {
	ms := t.UnixMilli()
	if ms < 0 {
		b = append(b, '-')
		ms = -ms
	}
	b = strconv.AppendUint(b, uint64(ms)/1000, 10)
	if frac := ms % 1000; frac != 0 {
		d := [4]byte{'.', byte('0' + frac/100), byte('0' + frac/10%10), byte('0' + frac%10)}
		n := len(d)
		for d[n-1] == '0' {
			n--
		}
		b = append(b, d[:n]...)
	}
	return b
}
`},
	{"sortedKeys", `
// sortedKeys returns the keys of m in byte order, in buf's array when they
// fit, so that encoding a small map allocates nothing.
func sortedKeys[V any](m map[string]V, buf []string) []string {
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
`},
	{"appendStringMap", `
// appendStringMap appends m as a JSON object with sorted keys.
func appendStringMap(b []byte, m map[string]string) []byte {
	b = append(b, '{')
	var kb [8]string
	for i, k := range sortedKeys(m, kb[:]) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, m[k])
	}
	return append(b, '}')
}
`},
	{"appendAuditString", `
// maxAuditBytes bounds each string the audit trail records of a request
// or response: a longer one keeps its first maxAuditBytes bytes (cut on a
// UTF-8 boundary) followed by "...[truncated, N bytes]", N its length.
const maxAuditBytes = 1024

// appendAuditString appends s as a JSON string for the audit trail, cut to
// maxAuditBytes.
func appendAuditString(b []byte, s string) []byte {
	if len(s) <= maxAuditBytes {
		return appendString(b, s)
	}
	i := maxAuditBytes
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return appendString(b, s[:i]+"...[truncated, "+strconv.Itoa(len(s))+" bytes]")
}
`},
	{"maxAuditEntries", `
// maxAuditEntries bounds the elements of each list and the entries of each
// map the audit trail records: a longer list ends with the string
// "...[N more entries]", a larger map (keys in order) with the member
// "...": "[N more entries]".
const maxAuditEntries = 100

// auditMore returns the marker of n entries left out.
func auditMore(n int) string {
	return "[" + strconv.Itoa(n) + " more entries]"
}
`},
	{"appendAuditStringMap", `
// appendAuditStringMap appends m as a JSON object with sorted keys for the
// audit trail: at most maxAuditEntries entries, keys and values cut to
// maxAuditBytes.
func appendAuditStringMap(b []byte, m map[string]string) []byte {
	b = append(b, '{')
	var kb [8]string
	keys := sortedKeys(m, kb[:])
	for i, k := range keys[:min(len(keys), maxAuditEntries)] {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendAuditString(b, k)
		b = append(b, ':')
		b = appendAuditString(b, m[k])
	}
	if len(keys) > maxAuditEntries {
		b = append(b, ",\"...\":"...)
		b = appendString(b, auditMore(len(keys)-maxAuditEntries))
	}
	return append(b, '}')
}
`},
	{"epochTime", `
// epochTime decodes an AWS JSON timestamp: epoch seconds as a JSON number
// (possibly fractional) or an RFC 3339 string.
type epochTime time.Time

// UnmarshalJSON implements json.Unmarshaler.
func (t *epochTime) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return errors.New("timestamp: want epoch seconds or an RFC 3339 string")
		}
		*t = epochTime(v.UTC())
		return nil
	}
	v, err := parseEpochSeconds(string(b))
	if err != nil {
		return err
	}
	*t = epochTime(v)
	return nil
}

// parseEpochSeconds parses a JSON number of seconds since the epoch without
// losing sub-second digits to float rounding (down to nanoseconds).
func parseEpochSeconds(s string) (time.Time, error) {
	bad := errors.New("timestamp: want epoch seconds or an RFC 3339 string")
	if strings.ContainsAny(s, "eE") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.Abs(f) > 1<<53 {
			return time.Time{}, bad
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), nil
	}
	neg := strings.HasPrefix(s, "-")
	intPart, fracPart, _ := strings.Cut(strings.TrimPrefix(s, "-"), ".")
	sec, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil || sec > 1<<53 {
		return time.Time{}, bad
	}
	var nsec int64
	for i := 0; i < 9; i++ {
		nsec *= 10
		if i < len(fracPart) {
			c := fracPart[i]
			if c < '0' || c > '9' {
				return time.Time{}, bad
			}
			nsec += int64(c - '0')
		}
	}
	if neg {
		sec, nsec = -sec, -nsec
	}
	return time.Unix(sec, nsec).UTC(), nil
}
`},
}

// genHelpers writes the helpers that the other files of the package use.
func genHelpers(w *writer, others []byte) {
	used := map[string]bool{}
	text := string(others)
	for changed := true; changed; {
		changed = false
		for _, h := range helpers {
			if used[h.name] {
				continue
			}
			if regexp.MustCompile(`\b` + h.name + `\b`).MatchString(text) {
				used[h.name] = true
				text += h.code
				changed = true
			}
		}
	}
	for _, h := range helpers {
		if used[h.name] {
			w.WriteString(strings.TrimLeft(h.code, "\n"))
			w.WriteString("\n")
		}
	}
}
