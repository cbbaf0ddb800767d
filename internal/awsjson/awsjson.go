// Package awsjson is the AWS JSON 1.1 wire protocol: request body reading
// with a per-operation limit, strict decoding into generated input shapes,
// output encoding and the error envelope.
//
// The protocol sits behind the [Codec] interface so that a second protocol
// (Smithy RPC v2 CBOR) can be added without touching the services or the
// server's dispatch. This package knows nothing of services, storage or
// authentication; it imports only awserr, operation, the leaves jsonread and
// jsonstr, and the standard library. Requests are decoded by the inputs'
// generated decoders, never by encoding/json.
package awsjson

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"sync"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/jsonread"
	"github.com/keyfort/keyfort/internal/jsonstr"
	"github.com/keyfort/keyfort/internal/operation"
)

// ContentType is the media type of every AWS JSON 1.1 request and response.
const ContentType = "application/x-amz-json-1.1"

// Header names used on the wire.
const (
	HeaderTarget    = "X-Amz-Target"
	HeaderErrorType = "X-Amzn-ErrorType"
	HeaderRequestID = "X-Amzn-RequestId"
)

// DefaultMaxBody is the body limit used when an operation declares none.
const DefaultMaxBody = 1 << 20

// Codec is a wire protocol for operation inputs, outputs and errors.
//
// Implementations must be safe for concurrent use. Reading the body (with
// its size limit) is protocol-independent and done by [ReadBody]; a Codec
// only translates bytes, and sets its media type on the responses it
// writes.
type Codec interface {
	// Decode decodes a complete request body into in. An empty body is an
	// empty input. Malformed input returns an *awserr.Error with code
	// SerializationException whose message never echoes request values.
	Decode(body []byte, in operation.Input) error
	// AppendOutput appends the encoding of out to b.
	AppendOutput(b []byte, out operation.Output) []byte
	// WriteOutput writes a 200 response whose body is body (from
	// AppendOutput).
	WriteOutput(w http.ResponseWriter, body []byte) error
	// WriteError writes the error response for e. messageField is the name
	// of the message member ("message" or "Message").
	WriteError(w http.ResponseWriter, e *awserr.Error, messageField string) error
}

// JSON11 is the AWS JSON 1.1 codec. Its zero value is ready to use.
type JSON11 struct{}

var _ Codec = JSON11{}

// Decode implements Codec with the input's generated decoder
// (operation.Input.UnmarshalAWSJSON, built on internal/jsonread): member
// names match exactly, unknown members are ignored as AWS ignores them, and
// a value is stored exactly as sent or refused. A body of JSON whitespace
// only is an empty input.
func (JSON11) Decode(body []byte, in operation.Input) error {
	if blank(body) {
		return nil
	}
	if err := in.UnmarshalAWSJSON(body); err != nil {
		var e *jsonread.Error
		if errors.As(err, &e) {
			return awserr.Serialization(e.Message)
		}
		return fmt.Errorf("awsjson: decode %T: %w", in, err)
	}
	return nil
}

// blank reports whether b holds only JSON whitespace.
func blank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

// AppendOutput implements Codec.
func (JSON11) AppendOutput(b []byte, out operation.Output) []byte {
	if out == nil || isNilPointer(out) {
		return append(b, "{}"...)
	}
	return out.AppendJSON(b)
}

// WriteOutput implements Codec.
func (JSON11) WriteOutput(w http.ResponseWriter, body []byte) error {
	h := w.Header()
	h["Content-Type"] = contentTypeValue
	h["Content-Length"] = contentLength(len(body))
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(body)
	return err
}

// WriteError implements Codec: status from e (400 if unset), header
// X-Amzn-ErrorType and body {"__type":"<Code>","<messageField>":"..."}.
func (JSON11) WriteError(w http.ResponseWriter, e *awserr.Error, messageField string) error {
	body := AppendError(make([]byte, 0, 64+len(e.Code)+len(e.Message)), e, messageField)
	h := w.Header()
	h["Content-Type"] = contentTypeValue
	h[canonicalErrorType] = []string{e.Code}
	h["Content-Length"] = contentLength(len(body))
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	w.WriteHeader(status)
	_, err := w.Write(body)
	return err
}

var contentTypeValue = []string{ContentType}

// contentLength returns the Content-Length header value of a body of n
// bytes, []string{strconv.Itoa(n)}: for n up to maxTabledLength from
// contentLengths, without an allocation (the response bodies of the hot
// operations are a few hundred bytes), else made. As contentTypeValue, the
// value is shared: no one writes into a response's header values.
func contentLength(n int) []string {
	if uint(n) <= maxTabledLength {
		return contentLengths[n : n+1 : n+1]
	}
	return []string{strconv.Itoa(n)}
}

// maxTabledLength is the largest length contentLengths holds.
const maxTabledLength = 4095

// contentLengths[n] is strconv.Itoa(n) for n up to maxTabledLength, each a
// substring of one string of their digits; set once, never written.
var contentLengths = tableLengths()

func tableLengths() []string {
	digits := make([]byte, 0, 4*(maxTabledLength+1))
	ends := make([]int, maxTabledLength+1)
	for n := range ends {
		digits = strconv.AppendInt(digits, int64(n), 10)
		ends[n] = len(digits)
	}
	all := string(digits)
	t := make([]string, maxTabledLength+1)
	start := 0
	for n, end := range ends {
		t[n] = all[start:end]
		start = end
	}
	return t
}

// canonicalErrorType is HeaderErrorType in net/http's canonical form, for
// direct (allocation-free) header map writes.
var canonicalErrorType = http.CanonicalHeaderKey(HeaderErrorType)

// AppendError appends the AWS JSON 1.1 error body of e to b. An error
// without a message has no message member, as AWS sends it: KMS answers an
// InvalidCiphertextException with the body {"__type":"InvalidCiphertextException"}
// only, which SDKs show as a nil or null message, not an empty one.
func AppendError(b []byte, e *awserr.Error, messageField string) []byte {
	if messageField == "" {
		messageField = "message"
	}
	b = append(b, `{"__type":`...)
	b = AppendString(b, e.Code)
	if e.Message == "" {
		return append(b, '}')
	}
	b = append(b, ',')
	b = AppendString(b, messageField)
	b = append(b, ':')
	b = AppendString(b, e.Message)
	return append(b, '}')
}

// ReadBody reads a request body of at most limit bytes (DefaultMaxBody if
// limit <= 0), appending it to buf. A larger body returns an *awserr.Error
// RequestEntityTooLargeException with HTTP status 413; contentLength (-1 if
// unknown) lets an oversized request be refused before reading it.
func ReadBody(r io.Reader, contentLength, limit int64, buf []byte) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	if contentLength > limit {
		return buf, tooLarge(limit)
	}
	if r == nil || r == http.NoBody {
		return buf, nil
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return buf, tooLarge(limit)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return buf, tooLarge(limit)
			}
			return buf, fmt.Errorf("awsjson: read body: %w", err)
		}
	}
}

func tooLarge(limit int64) *awserr.Error {
	return awserr.WithStatus(http.StatusRequestEntityTooLarge, awserr.CodeRequestEntityTooLarge,
		"Request body must be at most "+strconv.FormatInt(limit, 10)+" bytes")
}

// bufPool holds response and request buffers; see GetBuffer.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// GetBuffer returns an empty byte slice from a pool. Return it with
// PutBuffer once nothing refers to it any more.
func GetBuffer() *[]byte { return bufPool.Get().(*[]byte) }

// PutBuffer returns b to the pool. Buffers that grew large are dropped so
// the pool does not pin memory; returned buffers are cleared first, because
// they may have held plaintexts.
func PutBuffer(b *[]byte) {
	if cap(*b) > 256<<10 {
		return
	}
	clear((*b)[:cap(*b)])
	*b = (*b)[:0]
	bufPool.Put(b)
}

func isNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// AppendString appends s to b as a JSON string (see [jsonstr.Append]).
func AppendString(b []byte, s string) []byte { return jsonstr.Append(b, s) }
