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
// validationErrors collects constraint violations in AWS's wording.
type validationErrors struct{ msgs []string }

// null records a missing required member.
func (e *validationErrors) null(path, name string) {
	e.msgs = append(e.msgs, "Value null at '"+joinPath(path, name)+"' failed to satisfy constraint: Member must not be null")
}

// value records a violation and echoes the value.
func (e *validationErrors) value(path, name, value, constraint string) {
	e.msgs = append(e.msgs, "Value '"+value+"' at '"+joinPath(path, name)+"' failed to satisfy constraint: "+constraint)
}

// noValue records a violation without echoing the value (sensitive members,
// blobs, lists, maps and structures).
func (e *validationErrors) noValue(path, name, constraint string) {
	e.msgs = append(e.msgs, "Value at '"+joinPath(path, name)+"' failed to satisfy constraint: "+constraint)
}

// err returns the ValidationException for the recorded violations, or nil.
func (e *validationErrors) err() error {
	switch len(e.msgs) {
	case 0:
		return nil
	case 1:
		return awserr.Validation("1 validation error detected: " + e.msgs[0])
	}
	return awserr.Validation(strconv.Itoa(len(e.msgs)) + " validation errors detected: " + strings.Join(e.msgs, "; "))
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
// listString renders a list of strings as AWS echoes it: [a, b].
func listString[T ~string](l []T) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range l {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(s))
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
