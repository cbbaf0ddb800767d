package kms

import (
	"io"

	"github.com/keyfort/keyfort/internal/uuid"
)

// newUUID returns a random (version 4) UUID in canonical form, or "" if the
// random source fails.
func newUUID(r io.Reader) string {
	s, err := uuid.NewV4(r)
	if err != nil {
		return ""
	}
	return s
}
