package secretsmanager

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strconv"

	"github.com/keyfort/keyfort/internal/awserr"
)

// Page tokens (NextToken) are opaque to clients and validated here:
// base64url("1" | first 8 bytes of SHA-256 of the list's identity | position).
// The list identity covers the request parameters that shape the list
// (secret, filters, sort), so a token from another list is
// InvalidNextTokenException rather than a wrong page. A token only says where
// to continue; forging one reveals nothing the caller could not list anyway.
const (
	tokenVersion = '1'
	tokenHashLen = 8
	maxTokenPos  = 4096
	defaultLimit = 100
)

func tokenHash(listID string) []byte {
	h := sha256.Sum256([]byte(listID))
	return h[:tokenHashLen]
}

func encodeToken(listID, pos string) string {
	b := make([]byte, 0, 1+tokenHashLen+len(pos))
	b = append(b, tokenVersion)
	b = append(b, tokenHash(listID)...)
	b = append(b, pos...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(listID, token string) (string, error) {
	if len(token) > 2*maxTokenPos {
		return "", errInvalidNextToken()
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) <= 1+tokenHashLen || b[0] != tokenVersion {
		return "", errInvalidNextToken()
	}
	if string(b[1:1+tokenHashLen]) != string(tokenHash(listID)) {
		return "", errInvalidNextToken()
	}
	return string(b[1+tokenHashLen:]), nil
}

func errInvalidNextToken() error {
	return awserr.New(codeInvalidNextToken, "The NextToken value is invalid.")
}

func formatSeq(n int64) string { return strconv.FormatInt(n, 10) }

func parseSeq(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, errInvalidNextToken()
	}
	return n, nil
}

// maxResults returns the page size for a MaxResults parameter (1-100).
func maxResults(p *int32) (int, error) {
	if p == nil {
		return defaultLimit, nil
	}
	if *p < 1 || *p > 100 {
		return 0, errInvalidParameter("MaxResults must be between 1 and 100.")
	}
	return int(*p), nil
}

func jsonMarshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, wrap("encode", err)
	}
	return b, nil
}
