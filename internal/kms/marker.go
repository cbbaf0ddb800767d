package kms

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"

	"github.com/keyfort/keyfort/internal/awserr"
)

// markerCodec makes the opaque page markers of the List operations. A marker
// carries the last id of the previous page and a MAC, so a forged or
// corrupted marker is InvalidMarkerException rather than a wrong page.
type markerCodec struct{ key []byte }

const markerMACLen = 12

func (m markerCodec) mac(list, last string) []byte {
	h := hmac.New(sha256.New, m.key)
	h.Write([]byte(list))
	h.Write([]byte{0})
	h.Write([]byte(last))
	return h.Sum(nil)[:markerMACLen]
}

// encode returns the marker for a page of list that ended at last.
func (m markerCodec) encode(list, last string) string {
	b := append(m.mac(list, last), last...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decode returns the last id a marker names, or InvalidMarkerException.
func (m markerCodec) decode(list, marker string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(marker)
	if err != nil || len(b) < markerMACLen {
		return "", errInvalidMarker()
	}
	last := string(b[markerMACLen:])
	if !hmac.Equal(b[:markerMACLen], m.mac(list, last)) {
		return "", errInvalidMarker()
	}
	return last, nil
}

func errInvalidMarker() error {
	return awserr.New(codeInvalidMarker, "The marker is invalid.")
}

// pageLimit returns the page size for a Limit parameter (AWS default 100).
func pageLimit(limit *int32, def int) int {
	if limit == nil {
		return def
	}
	return int(*limit)
}
