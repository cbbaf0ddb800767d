// Package sensitive holds types for values that must never be printed:
// plaintexts, secret values, key material and passwords.
//
// Bytes and String print as [REDACTED] through fmt (every verb), log/slog
// (LogValue) and encoding/json (MarshalJSON). Reveal is the only way to read
// the value, so every read can be found with grep. The wire codec does not use
// encoding/json for output; generated encoders call Reveal explicitly.
package sensitive

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
)

// Redacted is what a sensitive value prints as.
const Redacted = "[REDACTED]"

// Bytes is a byte slice that is redacted when printed.
type Bytes []byte

// Reveal returns the underlying bytes. Callers must not log them.
func (b Bytes) Reveal() []byte { return []byte(b) }

// String implements fmt.Stringer.
func (b Bytes) String() string { return Redacted }

// GoString implements fmt.GoStringer.
func (b Bytes) GoString() string { return Redacted }

// Format implements fmt.Formatter so that every verb (%x, %v, %s, %q) redacts.
func (b Bytes) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue implements slog.LogValuer.
func (b Bytes) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON implements json.Marshaler and redacts.
func (b Bytes) MarshalJSON() ([]byte, error) { return json.Marshal(Redacted) }

// UnmarshalJSON decodes a base64 JSON string, as AWS JSON sends blobs.
func (b *Bytes) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*b = nil
		return nil
	}
	// Fast path: a quoted string without escapes (base64 needs none) is
	// decoded in place, without an intermediate string.
	if n := len(data); n >= 2 && data[0] == '"' && data[n-1] == '"' && bytes.IndexByte(data[1:n-1], '\\') < 0 {
		raw := data[1 : n-1]
		v := make([]byte, base64.StdEncoding.DecodedLen(len(raw)))
		m, err := base64.StdEncoding.Decode(v, raw)
		if err != nil {
			return err
		}
		*b = v[:m]
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	v, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// Zero overwrites the bytes with zeros.
func (b Bytes) Zero() { clear(b) }

// String is a string that is redacted when printed.
type String string

// Reveal returns the underlying string. Callers must not log it.
func (s String) Reveal() string { return string(s) }

// String implements fmt.Stringer.
func (s String) String() string { return Redacted }

// GoString implements fmt.GoStringer.
func (s String) GoString() string { return Redacted }

// Format implements fmt.Formatter so that every verb redacts.
func (s String) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue implements slog.LogValuer.
func (s String) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON implements json.Marshaler and redacts.
func (s String) MarshalJSON() ([]byte, error) { return json.Marshal(Redacted) }

// UnmarshalJSON decodes a JSON string.
func (s *String) UnmarshalJSON(data []byte) error {
	var v string
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	*s = String(v)
	return nil
}
