// Package jsonread is a strict, reflection-free JSON reader for AWS JSON 1.1
// request bodies: the runtime of the decoders that tools/apigen generates
// for every operation input (DecodeJSON and UnmarshalAWSJSON in kmsapi and
// smapi).
//
// A [Decoder] reads one body from start to end without building a tree. The
// generated code drives it member by member; what it accepts is what AWS
// sends and nothing looser:
//
//   - member names match exactly (the caller switches on [Decoder.Name]);
//     unknown members are skipped with [Decoder.Skip], which still checks
//     that their value is valid JSON;
//   - a member given twice is refused ([Decoder.Seen]); so is a map key
//     given twice;
//   - strings hold valid UTF-8 and only valid escapes; an escaped unpaired
//     surrogate is refused, never replaced by U+FFFD;
//   - blobs are padded standard base64 with canonical trailing bits and no
//     whitespace;
//   - integers must be exactly integral and in range (1.0 and 1e2 are
//     accepted, 1.5 and 2147483648 for an Integer are not); timestamps are
//     epoch seconds with at most nanosecond precision and no exponent;
//   - null in a member position means absent ([Decoder.Null]); null as a
//     list element, a map value or the whole body is refused;
//   - nesting is bounded by [MaxDepth] and nothing may follow the body.
//
// Every failure is an *[Error] whose Message names at most a member or a
// JSON type, never a value from the body: request values may be plaintexts
// or secrets. Errors are sticky: after the first one, every method returns
// a zero value and iteration stops, so generated code checks [Decoder.Err]
// (or [Decoder.Finish]) once at the end.
//
// Strings and blobs are copied once, into the value returned; nothing
// returned aliases the body, which the server reuses for the response.
// Text that had to be unescaped passes through a scratch buffer that is
// cleared after each use. This package imports only the standard library.
package jsonread

import (
	"encoding/base64"
	"strconv"
	"time"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting of objects and arrays a Decoder accepts.
const MaxDepth = 100

// Kind classifies an [Error].
type Kind uint8

// The kinds of error. Syntax and Type errors are what any JSON decoder
// refuses; the others are where this reader is stricter than
// encoding/json, which the tests rely on.
const (
	// Syntax: not JSON, or something after the body.
	Syntax Kind = iota + 1
	// Type: a JSON value of the wrong type for its member.
	Type
	// Null: null as a list element, a map value or the whole body.
	Null
	// Duplicate: a member or a map key given twice.
	Duplicate
	// UTF8: a string that is not valid UTF-8, or an escaped unpaired
	// surrogate.
	UTF8
	// Base64: a blob that is not a string of padded, canonical standard
	// base64 (an array of numbers included).
	Base64
	// Number: a number that does not fit its member's type exactly.
	Number
	// Depth: objects and arrays nested deeper than MaxDepth.
	Depth
)

// Error is a decoding failure. Message is safe to show to the client: it
// never contains a value from the body.
type Error struct {
	Kind    Kind
	Offset  int // byte offset in the body where the problem was found
	Message string
}

// Error implements error.
func (e *Error) Error() string { return e.Message }

// Messages. Where AWS's JSON services have a wording for the case, it is
// theirs, verbatim (including "an Boolean" and "dectected"); the others are
// Keyfort's, in the same style.
const (
	msgStartList      = "Start of list found where not expected"
	msgStartStructure = "Start of structure or map found where not expected."
	msgExpectedStruct = "Expected null"
	msgExpectedList   = "Expected list or null"
	msgExpectedMap    = "Expected map or null"
	msgNull           = "Null value found where not expected"
	msgNotObject      = "Request body must be a JSON object"
	msgBlobType       = "only base-64-encoded strings are convertible to bytes"
	msgBase64Char     = "Invalid Base64 character"
	msgBase64Last     = "Invalid last non-pad Base64 character dectected"
	msgBase64Length   = "Base64 encoded length is expected a multiple of 4 bytes but found: "
	msgUTF8           = "Invalid UTF-8 in a JSON string"
	msgSurrogate      = "Unpaired surrogate in a JSON string escape"
	msgDepth          = "Request body nests deeper than 100 levels"
	msgEOF            = "Malformed JSON in request body: unexpected end of input"
	msgSyntax         = "Malformed JSON in request body at byte offset "
	msgTimestamp      = "Timestamp must be epoch seconds with at most 9 fractional digits"
)

// target is the model type a scalar reader converts to, named as AWS's
// messages name it ("... can not be converted to an Integer").
type target uint8

const (
	tString target = iota
	tInteger
	tLong
	tBoolean
	tBlob
	tTimestamp
)

var targetNames = [...]string{
	tString:    "a String",
	tInteger:   "an Integer",
	tLong:      "a Long",
	tBoolean:   "a Boolean",
	tBlob:      "a Blob",
	tTimestamp: "a Timestamp",
}

// Decoder reads one JSON body. The zero value reads an empty body; use
// [NewDecoder]. A Decoder is not safe for concurrent use.
type Decoder struct {
	data    []byte
	pos     int
	depth   int
	err     *Error
	name    []byte // current member name or map key (body or scratch)
	scratch []byte // unescaped text; cleared after each use
}

// NewDecoder returns a Decoder reading data. The Decoder does not modify
// data, and nothing it returns refers to it.
func NewDecoder(data []byte) Decoder { return Decoder{data: data} }

// Err returns the first error, or nil.
func (d *Decoder) Err() error {
	if d.err == nil {
		return nil
	}
	return d.err
}

// Finish ends a body: only whitespace may follow the value read. It
// returns the first error, or nil.
func (d *Decoder) Finish() error {
	if d.err == nil {
		d.skipSpace()
		if d.pos < len(d.data) {
			d.syntax()
		}
	}
	clear(d.scratch[:cap(d.scratch)])
	return d.Err()
}

// Fail records an error of kind k with message msg (if none was recorded
// yet); msg must not contain request values.
func (d *Decoder) Fail(k Kind, msg string) {
	if d.err == nil {
		d.err = &Error{Kind: k, Offset: d.pos, Message: msg}
	}
}

func (d *Decoder) syntax() {
	if d.pos >= len(d.data) {
		d.Fail(Syntax, msgEOF)
		return
	}
	d.Fail(Syntax, msgSyntax+strconv.Itoa(d.pos))
}

func (d *Decoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// peek skips whitespace and returns the next byte, or 0 at the end.
func (d *Decoder) peek() byte {
	d.skipSpace()
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

// BeginStruct starts reading a structure: the next value must be an
// object. It reports whether the object has a first member, whose name
// [Decoder.Name] then returns; continue with [Decoder.NextMember]:
//
//	for more := d.BeginStruct(); more; more = d.NextMember() {
//		switch string(d.Name()) { ... default: d.Skip() }
//	}
//
// At the top level (the body itself) anything but an object is refused.
func (d *Decoder) BeginStruct() bool {
	return d.begin(msgExpectedStruct)
}

// BeginMap starts reading a map, as BeginStruct does; [Decoder.Key]
// returns each key.
func (d *Decoder) BeginMap() bool {
	return d.begin(msgExpectedMap)
}

func (d *Decoder) begin(scalarMsg string) bool {
	if d.err != nil {
		return false
	}
	c := d.peek()
	if c != '{' {
		top := d.depth == 0
		switch {
		case c == '[':
			d.Fail(Type, msgStartList)
		case c == 'n' && top:
			d.Fail(Null, msgNotObject)
		case c == 'n':
			d.Fail(Null, msgNull)
		case !isValueStart(c):
			d.syntax()
		case top:
			d.Fail(Type, msgNotObject)
		default:
			d.Fail(Type, scalarMsg)
		}
		return false
	}
	if !d.enter() {
		return false
	}
	if d.peek() == '}' {
		d.pos++
		d.depth--
		return false
	}
	return d.readName()
}

// NextMember moves to the next member of the object being read and
// reports whether there is one. The previous member's value must have
// been read (or skipped).
func (d *Decoder) NextMember() bool {
	if d.err != nil {
		return false
	}
	switch d.peek() {
	case ',':
		d.pos++
		return d.readName()
	case '}':
		d.pos++
		d.depth--
		return false
	}
	d.syntax()
	return false
}

// enter consumes an opening bracket.
func (d *Decoder) enter() bool {
	if d.depth >= MaxDepth {
		d.Fail(Depth, msgDepth)
		return false
	}
	d.depth++
	d.pos++
	return true
}

// readName reads a member name and its colon.
func (d *Decoder) readName() bool {
	if d.peek() != '"' {
		d.syntax()
		return false
	}
	name, _, ok := d.scanString()
	if !ok {
		return false
	}
	if d.peek() != ':' {
		d.syntax()
		return false
	}
	d.pos++
	d.name = name
	return true
}

// Name returns the current member name, unescaped. It is valid until the
// member's value has been read; compare it, do not keep it.
func (d *Decoder) Name() []byte { return d.name }

// Key returns the current map key as a new string.
func (d *Decoder) Key() string { return string(d.name) }

// Seen records member number bit (0-63) of the structure being read in
// *seen and reports whether it had been seen before, in which case it
// records a Duplicate error naming the member.
func (d *Decoder) Seen(seen *uint64, bit uint) bool {
	m := uint64(1) << bit
	if d.err == nil && *seen&m == 0 {
		*seen |= m
		return false
	}
	d.duplicateField()
	return true
}

func (d *Decoder) duplicateField() {
	if d.err == nil {
		d.err = &Error{Kind: Duplicate, Offset: d.pos, Message: "Duplicate field '" + string(d.name) + "'"}
	}
}

// DuplicateKey records a Duplicate error for a key given twice in the map
// member named member.
func (d *Decoder) DuplicateKey(member string) {
	d.Fail(Duplicate, "Duplicate key in map '"+member+"'")
}

// Null consumes a null and reports true if the next value is null, which
// in a member position means the member is absent. It also reports true
// once the decoder has failed, so that callers skip the value.
func (d *Decoder) Null() bool {
	if d.err != nil {
		return true
	}
	if d.peek() != 'n' {
		return false
	}
	d.literal("null")
	return true
}

// BeginList starts reading a list: the next value must be an array. It
// reports whether the array has a first element; continue with
// [Decoder.NextElem]:
//
//	l := []string{}
//	for more := d.BeginList(); more; more = d.NextElem() {
//		l = append(l, d.String())
//	}
func (d *Decoder) BeginList() bool {
	if d.err != nil {
		return false
	}
	c := d.peek()
	if c != '[' {
		switch {
		case c == '{':
			d.Fail(Type, msgStartStructure)
		case c == 'n':
			d.Fail(Null, msgNull)
		case !isValueStart(c):
			d.syntax()
		default:
			d.Fail(Type, msgExpectedList)
		}
		return false
	}
	if !d.enter() {
		return false
	}
	if d.peek() == ']' {
		d.pos++
		d.depth--
		return false
	}
	return true
}

// NextElem moves to the next element of the array being read and reports
// whether there is one.
func (d *Decoder) NextElem() bool {
	if d.err != nil {
		return false
	}
	switch d.peek() {
	case ',':
		d.pos++
		return true
	case ']':
		d.pos++
		d.depth--
		return false
	}
	d.syntax()
	return false
}

// String reads a string value.
func (d *Decoder) String() string {
	b, escaped, ok := d.stringValue(tString)
	if !ok {
		return ""
	}
	s := string(b)
	if escaped {
		clear(b)
	}
	return s
}

// Blob reads a base64 string value and returns the decoded bytes in a new
// slice (empty, not nil, for ""). Nothing else holds the decoded bytes.
func (d *Decoder) Blob() []byte {
	if d.err == nil && d.peek() == '[' {
		// A Base64 error, not a Type one: encoding/json takes an array of
		// byte values for a []byte.
		d.Fail(Base64, msgStartList)
		return nil
	}
	b, escaped, ok := d.stringValue(tBlob)
	if !ok {
		return nil
	}
	out := d.base64(b, escaped)
	if escaped {
		clear(b)
	}
	return out
}

var strictStd = base64.StdEncoding.Strict()

func (d *Decoder) base64(b []byte, escaped bool) []byte {
	if len(b)%4 != 0 {
		d.Fail(Base64, msgBase64Length+strconv.Itoa(len(b)))
		return nil
	}
	if escaped {
		// The standard decoder skips CR and LF; only an escape can put
		// them in a JSON string.
		for _, c := range b {
			if c == '\r' || c == '\n' {
				d.Fail(Base64, msgBase64Char)
				return nil
			}
		}
	}
	out := make([]byte, len(b)/4*3)
	n, err := strictStd.Decode(out, b)
	if err != nil {
		clear(out)
		d.Fail(Base64, base64Problem(b))
		return nil
	}
	return out[:n:n]
}

// base64Problem names what is wrong with b, which the strict decoder
// refused: a character outside the alphabet (or misplaced padding), else
// non-zero bits after the last character.
func base64Problem(b []byte) string {
	pad := 0
	for pad < 2 && len(b) > pad && b[len(b)-1-pad] == '=' {
		pad++
	}
	for _, c := range b[:len(b)-pad] {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return msgBase64Char
		}
	}
	return msgBase64Last
}

// Int32 reads an integer that fits an int32 exactly.
func (d *Decoder) Int32() int32 {
	v, ok := d.integer(tInteger, -1<<31, 1<<31-1)
	if !ok {
		return 0
	}
	return int32(v)
}

// Int64 reads an integer that fits an int64 exactly.
func (d *Decoder) Int64() int64 {
	v, _ := d.integer(tLong, -1<<63, 1<<63-1)
	return v
}

// Bool reads true or false.
func (d *Decoder) Bool() bool {
	if d.err != nil {
		return false
	}
	switch c := d.peek(); c {
	case 't':
		return d.literal("true")
	case 'f':
		d.literal("false")
		return false
	case '"':
		// AWS's wording, with its article.
		d.Fail(Type, "STRING_VALUE can not be converted to an Boolean")
	default:
		d.typeError(c, tBoolean)
	}
	return false
}

// Time reads a timestamp: epoch seconds as a JSON number, without an
// exponent, with at most 9 significant fractional digits (nanoseconds)
// and at most 2^53 seconds either side of the epoch. The result is in UTC.
func (d *Decoder) Time() time.Time {
	if d.err != nil {
		return time.Time{}
	}
	c := d.peek()
	if c != '-' && (c < '0' || c > '9') {
		d.typeError(c, tTimestamp)
		return time.Time{}
	}
	start := d.pos
	lit, frac, exp, ok := d.number()
	if !ok {
		return time.Time{}
	}
	if exp {
		d.pos = start
		d.Fail(Number, msgTimestamp)
		return time.Time{}
	}
	neg := lit[0] == '-'
	if neg {
		lit = lit[1:]
	}
	var sec, nsec int64
	i := 0
	for ; i < len(lit) && lit[i] != '.'; i++ {
		if sec > 1<<53 {
			break
		}
		sec = sec*10 + int64(lit[i]-'0')
	}
	if sec > 1<<53 {
		d.pos = start
		d.Fail(Number, msgTimestamp)
		return time.Time{}
	}
	if frac {
		digits := lit[i+1:]
		for j := 0; j < 9; j++ {
			nsec *= 10
			if j < len(digits) {
				nsec += int64(digits[j] - '0')
			}
		}
		for j := 9; j < len(digits); j++ {
			if digits[j] != '0' {
				d.pos = start
				d.Fail(Number, msgTimestamp)
				return time.Time{}
			}
		}
	}
	if neg {
		sec, nsec = -sec, -nsec
	}
	return time.Unix(sec, nsec).UTC()
}

// Skip reads and discards one value of any type, checking that it is
// valid JSON (strings valid UTF-8, nesting within MaxDepth).
func (d *Decoder) Skip() {
	if d.err != nil {
		return
	}
	switch c := d.peek(); c {
	case '"':
		b, escaped, ok := d.scanString()
		if ok && escaped {
			clear(b)
		}
	case '{':
		if !d.enter() {
			return
		}
		if d.peek() == '}' {
			d.pos++
			d.depth--
			return
		}
		for more := d.readName(); more; more = d.NextMember() {
			d.Skip()
		}
	case '[':
		if !d.enter() {
			return
		}
		if d.peek() == ']' {
			d.pos++
			d.depth--
			return
		}
		for more := true; more; more = d.NextElem() {
			d.Skip()
		}
	case 't':
		d.literal("true")
	case 'f':
		d.literal("false")
	case 'n':
		d.literal("null")
	default:
		d.number()
	}
}

// literal consumes lit, which the next byte starts, and reports whether it
// was there.
func (d *Decoder) literal(lit string) bool {
	if len(d.data)-d.pos < len(lit) || string(d.data[d.pos:d.pos+len(lit)]) != lit {
		for i := 0; i < len(lit) && d.pos < len(d.data) && d.data[d.pos] == lit[i]; i++ {
			d.pos++
		}
		d.syntax()
		return false
	}
	d.pos += len(lit)
	return true
}

func isValueStart(c byte) bool {
	switch c {
	case '"', '{', '[', 't', 'f', 'n', '-':
		return true
	}
	return '0' <= c && c <= '9'
}

// typeError records the error for a value starting with c where a scalar
// of type t was expected.
func (d *Decoder) typeError(c byte, t target) {
	var found string
	switch c {
	case '[':
		d.Fail(Type, msgStartList)
		return
	case '{':
		d.Fail(Type, msgStartStructure)
		return
	case 'n':
		d.Fail(Null, msgNull)
		return
	case '"':
		found = "STRING_VALUE"
	case 't':
		found = "TRUE_VALUE"
	case 'f':
		found = "FALSE_VALUE"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		found = "NUMBER_VALUE"
		if _, frac, exp, ok := d.peekNumber(); ok && (frac || exp) {
			found = "DECIMAL_VALUE"
		}
	default:
		d.syntax()
		return
	}
	if t == tBlob {
		d.Fail(Type, msgBlobType)
		return
	}
	d.Fail(Type, found+" can not be converted to "+targetNames[t])
}

// stringValue reads a string where a scalar of type t is expected. The
// bytes are in the body or, if escaped, in the scratch buffer.
func (d *Decoder) stringValue(t target) (b []byte, escaped, ok bool) {
	if d.err != nil {
		return nil, false, false
	}
	if c := d.peek(); c != '"' {
		d.typeError(c, t)
		return nil, false, false
	}
	return d.scanString()
}

// plain marks the bytes a string may hold as they are: printable ASCII
// other than the quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString reads the string at d.pos (an opening quote) and returns its
// text: a slice of the body, or of the scratch buffer when it had escapes.
func (d *Decoder) scanString() (b []byte, escaped, ok bool) {
	start := d.pos + 1
	ascii := true
	for i := start; i < len(d.data); i++ {
		c := d.data[i]
		if plain[c] {
			continue
		}
		switch {
		case c == '"':
			raw := d.data[start:i]
			if !ascii && !utf8.Valid(raw) {
				d.pos = start
				d.Fail(UTF8, msgUTF8)
				return nil, false, false
			}
			d.pos = i + 1
			return raw, false, true
		case c == '\\':
			b, ok := d.unescape(start, i)
			return b, true, ok
		case c < 0x20:
			d.pos = i
			d.syntax()
			return nil, false, false
		}
		ascii = false
	}
	d.pos = len(d.data)
	d.syntax()
	return nil, false, false
}

// unescape reads the rest of a string that has an escape at i, into the
// scratch buffer.
func (d *Decoder) unescape(start, i int) ([]byte, bool) {
	// Unescaped text is never longer than its JSON spelling: size the
	// scratch buffer for the whole string first, so that appending never
	// reallocates and leaves a partial copy behind.
	end := i
	for end < len(d.data) && d.data[end] != '"' {
		if d.data[end] == '\\' {
			end++
		}
		end++
	}
	if need := min(end, len(d.data)) - start; cap(d.scratch) < need {
		clear(d.scratch[:cap(d.scratch)])
		d.scratch = make([]byte, 0, max(need, 64))
	}
	b := append(d.scratch[:0], d.data[start:i]...)
	fail := func(k Kind, msg string) ([]byte, bool) {
		clear(b)
		d.scratch = b[:0]
		if k == Syntax {
			d.syntax()
		} else {
			d.Fail(k, msg)
		}
		return nil, false
	}
	for i < len(d.data) {
		c := d.data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			d.scratch = b[:0]
			if !utf8.Valid(b) {
				d.pos = start
				return fail(UTF8, msgUTF8)
			}
			return b, true
		case c < 0x20:
			d.pos = i
			return fail(Syntax, "")
		case c != '\\':
			b = append(b, c)
			i++
			continue
		}
		d.pos = i
		if i+1 >= len(d.data) {
			d.pos = len(d.data)
			return fail(Syntax, "")
		}
		switch e := d.data[i+1]; e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(d.data, i+2)
			if !ok {
				return fail(Syntax, "")
			}
			i += 4
			if utf16IsSurrogate(r) {
				if r >= 0xDC00 {
					return fail(UTF8, msgSurrogate)
				}
				// A high surrogate must be followed by an escaped low one.
				if i+3 >= len(d.data) || d.data[i+2] != '\\' || d.data[i+3] != 'u' {
					return fail(UTF8, msgSurrogate)
				}
				lo, ok := hex4(d.data, i+4)
				if !ok {
					d.pos = i + 2
					return fail(Syntax, "")
				}
				if lo < 0xDC00 || lo > 0xDFFF {
					return fail(UTF8, msgSurrogate)
				}
				r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
				i += 6
			}
			b = utf8.AppendRune(b, r)
		default:
			return fail(Syntax, "")
		}
		i += 2
	}
	d.pos = len(d.data)
	return fail(Syntax, "")
}

func utf16IsSurrogate(r rune) bool { return 0xD800 <= r && r <= 0xDFFF }

// hex4 parses the four hex digits at data[i:].
func hex4(data []byte, i int) (rune, bool) {
	if i+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number consumes a JSON number and returns its text and whether it has a
// fraction or an exponent.
func (d *Decoder) number() (lit []byte, frac, exp, ok bool) {
	lit, frac, exp, ok = d.peekNumber()
	if !ok {
		d.syntax()
		return nil, false, false, false
	}
	d.pos += len(lit)
	return lit, frac, exp, true
}

// peekNumber scans the JSON number at d.pos without consuming it. When it
// is malformed, d.pos is left at the offending byte's offset only by
// number.
func (d *Decoder) peekNumber() (lit []byte, frac, exp, ok bool) {
	data, i := d.data, d.pos
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && '1' <= data[i] && data[i] <= '9':
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
	default:
		return nil, false, false, false
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) || data[i] < '0' || data[i] > '9' {
			return nil, false, false, false
		}
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
		frac = true
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || data[i] < '0' || data[i] > '9' {
			return nil, false, false, false
		}
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
		exp = true
	}
	return data[d.pos:i], frac, exp, true
}

// integer reads a number that is exactly an integer within [lo, hi].
func (d *Decoder) integer(t target, lo, hi int64) (int64, bool) {
	if d.err != nil {
		return 0, false
	}
	c := d.peek()
	if c != '-' && (c < '0' || c > '9') {
		d.typeError(c, t)
		return 0, false
	}
	start := d.pos
	lit, frac, exp, ok := d.number()
	if !ok {
		return 0, false
	}
	v, integral, inRange := exactInt(lit, frac || exp, lo, hi)
	switch {
	case !integral:
		d.pos = start
		d.Fail(Number, "DECIMAL_VALUE can not be converted to "+targetNames[t])
		return 0, false
	case !inRange:
		d.pos = start
		d.Fail(Number, "NUMBER_VALUE can not be converted to "+targetNames[t])
		return 0, false
	}
	return v, true
}

// exactInt returns the value of the JSON number lit if it is an integer
// (whatever its spelling: 7, 7.0, 0.7e1, 700e-2) within [lo, hi].
func exactInt(lit []byte, decimal bool, lo, hi int64) (v int64, integral, inRange bool) {
	neg := lit[0] == '-'
	if neg {
		lit = lit[1:]
	}
	var mant []byte // significant digits, without the decimal point
	exp10 := 0
	if !decimal {
		mant = lit
	} else {
		i := 0
		for i < len(lit) && lit[i] != '.' && lit[i] != 'e' && lit[i] != 'E' {
			i++
		}
		intPart := lit[:i]
		var fracPart []byte
		if i < len(lit) && lit[i] == '.' {
			j := i + 1
			for j < len(lit) && lit[j] != 'e' && lit[j] != 'E' {
				j++
			}
			fracPart = lit[i+1 : j]
			i = j
		}
		if i < len(lit) {
			exp10 = parseExp(lit[i+1:])
		}
		// Work on intPart+fracPart with exp10 adjusted, trimming zeros.
		buf := make([]byte, 0, 24)
		buf = append(buf, intPart...)
		buf = append(buf, fracPart...)
		exp10 -= len(fracPart)
		for len(buf) > 0 && buf[0] == '0' {
			buf = buf[1:]
		}
		for len(buf) > 0 && exp10 < 0 && buf[len(buf)-1] == '0' {
			buf = buf[:len(buf)-1]
			exp10++
		}
		if len(buf) == 0 {
			return 0, true, true
		}
		if exp10 < 0 {
			return 0, false, false
		}
		if len(buf)+exp10 > 20 {
			return 0, true, false
		}
		for ; exp10 > 0; exp10-- {
			buf = append(buf, '0')
		}
		mant = buf
	}
	for len(mant) > 1 && mant[0] == '0' {
		mant = mant[1:]
	}
	if len(mant) > 20 {
		return 0, true, false
	}
	var u uint64
	for _, c := range mant {
		digit := uint64(c - '0')
		if u > (1<<64-1-digit)/10 {
			return 0, true, false
		}
		u = u*10 + digit
	}
	if neg {
		if u > 1<<63 {
			return 0, true, false
		}
		v = int64(-u) // -1<<63 wraps to itself
	} else {
		if u > 1<<63-1 {
			return 0, true, false
		}
		v = int64(u)
	}
	return v, true, lo <= v && v <= hi
}

// parseExp parses an exponent ("+12", "-3", "7"), saturating far beyond
// any useful magnitude.
func parseExp(b []byte) int {
	neg := false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg = b[0] == '-'
		b = b[1:]
	}
	n := 0
	for _, c := range b {
		if n < 1<<20 {
			n = n*10 + int(c-'0')
		}
	}
	if neg {
		return -n
	}
	return n
}
