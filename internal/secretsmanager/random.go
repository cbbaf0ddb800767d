package secretsmanager

import (
	"context"
	"encoding/binary"
	"io"
	"strings"

	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/sensitive"
)

// Character classes of GetRandomPassword.
const (
	lowerChars       = "abcdefghijklmnopqrstuvwxyz"
	upperChars       = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	digitChars       = "0123456789"
	punctuationChars = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

	defaultPasswordLength = 32
	maxPasswordLength     = 4096
)

// GetRandomPassword returns a random password from the character classes
// the options leave (lowercase, uppercase, digits, punctuation, and space
// with IncludeSpace), drawn from the service's random source. With
// RequireEachIncludedType (the default) the password has at least one
// character of every included class except space.
func (s *Service) GetRandomPassword(ctx context.Context, in *smapi.GetRandomPasswordInput) (*smapi.GetRandomPasswordOutput, error) {
	if err := s.authorizeAccount(ctx, act(in.IAMAction())); err != nil {
		return nil, err
	}
	n := int64(defaultPasswordLength)
	if in.PasswordLength != nil {
		n = *in.PasswordLength
	}
	if n < 1 || n > maxPasswordLength {
		return nil, errInvalidParameter("PasswordLength must be between 1 and 4096.")
	}
	exclude := deref(in.ExcludeCharacters)
	keep := func(set string) string {
		return strings.Map(func(r rune) rune {
			if strings.ContainsRune(exclude, r) {
				return -1
			}
			return r
		}, set)
	}
	var required []string
	for _, c := range []struct {
		chars string
		off   *bool
	}{
		{lowerChars, in.ExcludeLowercase},
		{upperChars, in.ExcludeUppercase},
		{digitChars, in.ExcludeNumbers},
		{punctuationChars, in.ExcludePunctuation},
	} {
		if deref(c.off) {
			continue
		}
		if set := keep(c.chars); set != "" {
			required = append(required, set)
		}
	}
	all := strings.Join(required, "")
	if deref(in.IncludeSpace) && !strings.ContainsRune(exclude, ' ') {
		all += " "
	}
	if all == "" {
		return nil, errInvalidParameter("The password can't be generated because every character type is excluded.")
	}
	requireEach := in.RequireEachIncludedType == nil || *in.RequireEachIncludedType
	if requireEach && int64(len(required)) > n {
		return nil, errInvalidParameter("Password length is too short based on the required types.")
	}
	pw := make([]byte, n)
	defer clear(pw)
	i := 0
	if requireEach {
		for _, set := range required {
			c, err := pick(s.rand, set)
			if err != nil {
				return nil, err
			}
			pw[i] = c
			i++
		}
	}
	for ; i < len(pw); i++ {
		c, err := pick(s.rand, all)
		if err != nil {
			return nil, err
		}
		pw[i] = c
	}
	// Shuffle so the required characters are not always first.
	for j := len(pw) - 1; j > 0; j-- {
		k, err := uniform(s.rand, j+1)
		if err != nil {
			return nil, err
		}
		pw[j], pw[k] = pw[k], pw[j]
	}
	out := sensitive.String(pw)
	return &smapi.GetRandomPasswordOutput{RandomPassword: &out}, nil
}

// pick returns a uniformly random byte of set (ASCII).
func pick(r io.Reader, set string) (byte, error) {
	i, err := uniform(r, len(set))
	if err != nil {
		return 0, err
	}
	return set[i], nil
}

// uniform returns a uniformly random int in [0, n), n <= 1<<16, by rejection
// sampling.
func uniform(r io.Reader, n int) (int, error) {
	limit := uint32(1<<32 - (1<<32)%uint64(n))
	var b [4]byte
	for range 64 { // bounded: each try succeeds with probability > 1/2
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, wrap("random", err)
		}
		v := binary.BigEndian.Uint32(b[:])
		if limit == 0 || v < limit {
			return int(v % uint32(n)), nil
		}
	}
	return 0, wrap("random", io.ErrUnexpectedEOF)
}
