package cloudtrail

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/keyfort/keyfort/internal/awserr"
)

// A NextToken is opaque to clients:
//
//	base64url( version 1 | from (int64 unix ns) | to (int64 unix ns) |
//	           cursor time (int64 unix ns) | cursor id length (1) | cursor id |
//	           check (16) )
//
// check is the first 16 bytes of SHA-256 over the parameters the token is
// bound to (account, region, lookup attribute and value, StartTime and
// EndTime as given, EventCategory; not MaxResults, which may change from
// page to page) and the token's other bytes. A token that does not decode,
// was altered, or comes from a request with other parameters (or another
// account or region) is InvalidNextTokenException. No secret is needed:
// a token only says where to continue within the caller's own events,
// which the caller may ask for directly, and the account and region always
// come from the caller, never from the token. The window (from, to) is
// carried so that the pages of one lookup without StartTime or EndTime do
// not shift with the clock.

const (
	tokenVersion = 1
	checkLen     = 16
	maxIDLen     = 255
	// maxTokenLen bounds the NextToken text decoded.
	maxTokenLen = 512
)

// token is a decoded NextToken.
type token struct {
	from, to time.Time
	after    Cursor
}

// encode returns the NextToken of t for a request with parameters p.
func (t token) encode(p params) string {
	id := t.after.ID
	if len(id) > maxIDLen {
		id = id[:maxIDLen] // event ids are UUIDs; never reached
	}
	b := make([]byte, 0, 1+3*8+1+len(id)+checkLen)
	b = append(b, tokenVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(t.from.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, uint64(t.to.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, uint64(t.after.Time.UnixNano()))
	b = append(b, byte(len(id)))
	b = append(b, id...)
	b = append(b, check(p, b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// parseToken decodes s, a NextToken for a request with parameters p.
func parseToken(s string, p params) (token, error) {
	bad := awserr.New(codeInvalidNextToken, "The NextToken is not valid.")
	if len(s) == 0 || len(s) > maxTokenLen {
		return token{}, bad
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) < 1+3*8+1+checkLen || b[0] != tokenVersion {
		return token{}, bad
	}
	n := int(b[25])
	if len(b) != 26+n+checkLen {
		return token{}, bad
	}
	body, sum := b[:26+n], b[26+n:]
	if !bytes.Equal(sum, check(p, body)) {
		return token{}, awserr.New(codeInvalidNextToken,
			"The NextToken is not valid for this request: pass it with the same parameters as the request that returned it.")
	}
	ns := func(i int) time.Time { return time.Unix(0, int64(binary.BigEndian.Uint64(b[i:]))) }
	return token{from: ns(1), to: ns(9), after: Cursor{Time: ns(17), ID: string(b[26 : 26+n])}}, nil
}

// check returns the check bytes of a token body for parameters p.
func check(p params, body []byte) []byte {
	h := sha256.New()
	field := func(s string) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	stamp := func(t *time.Time) {
		if t == nil {
			field("")
			return
		}
		field(t.UTC().Format(time.RFC3339Nano))
	}
	field("keyfort cloudtrail NextToken")
	field(p.account)
	field(p.region)
	field(p.attribute)
	field(p.value)
	stamp(p.start)
	stamp(p.end)
	field(p.category)
	field(string(body))
	return h.Sum(nil)[:checkLen]
}
