package awsjson

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/keyfort/keyfort/internal/awserr"
)

// TestContentLengthMatchesItoa checks contentLength against the
// []string{strconv.Itoa(n)} it replaces, in and beyond the table, and that
// a tabled value cannot be appended to over its neighbour.
func TestContentLengthMatchesItoa(t *testing.T) {
	ns := []int{maxTabledLength + 1, maxTabledLength + 2, 9999, 10000, 65536, 1 << 20}
	for n := range maxTabledLength + 1 {
		ns = append(ns, n)
	}
	for _, n := range ns {
		got := contentLength(n)
		if len(got) != 1 || got[0] != strconv.Itoa(n) || cap(got) != 1 {
			t.Fatalf("contentLength(%d) = %q (cap %d), want [%q] (cap 1)", n, got, cap(got), strconv.Itoa(n))
		}
	}
}

// refWriteOutput and refWriteError are WriteOutput and WriteError as they
// were before contentLength: the references of TestWriteOutputWire.
func refWriteOutput(w http.ResponseWriter, body []byte) error {
	h := w.Header()
	h["Content-Type"] = contentTypeValue
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(body)
	return err
}

func refWriteError(w http.ResponseWriter, e *awserr.Error, messageField string) error {
	body := AppendError(make([]byte, 0, 64+len(e.Code)+len(e.Message)), e, messageField)
	h := w.Header()
	h["Content-Type"] = contentTypeValue
	h[canonicalErrorType] = []string{e.Code}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	w.WriteHeader(status)
	_, err := w.Write(body)
	return err
}

// TestWriteOutputWire checks the bytes a client reads of responses written
// by WriteOutput and WriteError through a real net/http server against
// those of the references (the Date header aside), for bodies around the
// table's end and net/http's own buffer (2048 bytes, beyond which it would
// send a body without Content-Length chunked).
func TestWriteOutputWire(t *testing.T) {
	sizes := []int{0, 2, 9, 10, 99, 100, 999, 1000, 2047, 2048, 2049, maxTabledLength, maxTabledLength + 1, 70000}
	var body []byte
	var errCase, ref bool
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case errCase && ref:
			_ = refWriteError(w, awserr.New("NotFoundException", string(body)), "message")
		case errCase:
			_ = (JSON11{}).WriteError(w, awserr.New("NotFoundException", string(body)), "message")
		case ref:
			_ = refWriteOutput(w, body)
		default:
			_ = (JSON11{}).WriteOutput(w, body)
		}
	}))
	defer ts.Close()
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	// response reads one response, whose body is of n bytes when its
	// header says so.
	response := func() string {
		if _, err := conn.Write([]byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		var resp strings.Builder
		n := -1
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(line, "Date: ") {
				line = "Date: -\r\n"
			}
			if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
				if n, err = strconv.Atoi(strings.TrimSpace(v)); err != nil {
					t.Fatal(err)
				}
			}
			resp.WriteString(line)
			if line == "\r\n" {
				break
			}
		}
		if n < 0 {
			t.Fatalf("response without Content-Length: %q", resp.String())
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(br, b); err != nil {
			t.Fatal(err)
		}
		resp.Write(b)
		return resp.String()
	}
	for _, e := range []bool{false, true} {
		for _, n := range sizes {
			errCase, body = e, bytes.Repeat([]byte("a"), n)
			ref = true
			want := response()
			ref = false
			if got := response(); got != want {
				t.Errorf("error %t, %d bytes: response differs from the reference's:\n%.300q\nwant\n%.300q", e, n, got, want)
			}
		}
	}
}
