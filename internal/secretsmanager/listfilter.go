package secretsmanager

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
)

// The ListSecrets filters (also BatchGetSecretValue's), as AWS matches them:
//
//   - name, tag-key, tag-value and primary-region: the value is a
//     case-sensitive prefix of the secret's name, of one of its tag keys or
//     values, or of its primary Region (the API reference; LocalStack's
//     AWS-validated test_list_secrets_filtering: name "/" finds the names
//     that start with "/", and "testing1 one" finds nothing).
//   - description and all: word matching, not case-sensitive. "all" looks at
//     the name, the description, every tag key and every tag value, each on
//     its own. AWS documents prefix matching for description, but answers
//     with word matching (test_list_secrets_filtering: "a" finds "a secret",
//     "an secret" and "asecret" but not "thesecret"; "a secret" finds the
//     first two only; moto's AWS-verified test_with_filter_with_value_with_
//     multiple_words).
//   - owning-service: Keyfort has no secrets owned by a service, so no value
//     matches one.
//
// Word matching splits the filter value and each attribute into words
// (words): a value matches an attribute when every word of the value is a
// prefix of some word of that attribute, ignoring case, and a value without
// words ("+", "/") matches nothing. A value that starts with "!" matches the
// secrets that the rest of it does not match. The values of one filter are
// ORed and the filters ANDed (moto's AWS-verified test_with_duplicate_
// filter_keys).

// listFilter is a ListSecrets filter with its values parsed once per request.
type listFilter struct {
	key     smapi.FilterNameStringType
	byWords bool // word matching (description, all), else prefix matching
	values  []filterValue
}

// filterValue is one value of a filter.
type filterValue struct {
	not   bool     // the value started with "!"
	text  string   // the value without the "!"
	words []string // for word matching: the words of text, in lower case
}

// compileFilters parses the filters of a request.
func compileFilters(fs []smapi.Filter) []listFilter {
	out := make([]listFilter, len(fs))
	for i, f := range fs {
		out[i].key = f.Key
		out[i].byWords = f.Key == smapi.FilterNameStringTypeDescription || f.Key == smapi.FilterNameStringTypeAll
		for _, v := range f.Values {
			var fv filterValue
			fv.text, fv.not = strings.CutPrefix(v, "!")
			if out[i].byWords {
				fv.words = appendWords(nil, fv.text)
				for j, w := range fv.words {
					fv.words[j] = strings.ToLower(w)
				}
			}
			out[i].values = append(out[i].values, fv)
		}
	}
	return out
}

// matchAll reports whether the secret with metadata m passes every filter.
func matchAll(m *secretMeta, filters []listFilter) bool {
	for i := range filters {
		if !filters[i].match(m) {
			return false
		}
	}
	return true
}

// match reports whether any value of f matches m.
func (f *listFilter) match(m *secretMeta) bool {
	var buf []string // words of an attribute, reused
	for i := range f.values {
		v := &f.values[i]
		hit := false
		attr := func(s string) { // one attribute of the secret
			switch {
			case hit:
			case f.byWords:
				buf = appendWords(buf[:0], s)
				hit = wordsMatch(v.words, buf)
			default:
				hit = strings.HasPrefix(s, v.text)
			}
		}
		switch f.key {
		case smapi.FilterNameStringTypeName:
			attr(m.Name)
		case smapi.FilterNameStringTypeTagKey:
			for _, t := range m.Tags {
				attr(t.Key)
			}
		case smapi.FilterNameStringTypeTagValue:
			for _, t := range m.Tags {
				attr(t.Value)
			}
		case smapi.FilterNameStringTypePrimaryRegion:
			if m.PrimaryRegion != "" { // primaries with replicas and replicas (replication.go)
				attr(m.PrimaryRegion)
			}
		case smapi.FilterNameStringTypeDescription:
			if m.Description != nil {
				attr(*m.Description)
			}
		case smapi.FilterNameStringTypeAll:
			attr(m.Name)
			if m.Description != nil {
				attr(*m.Description)
			}
			for _, t := range m.Tags {
				attr(t.Key)
				attr(t.Value)
			}
		case smapi.FilterNameStringTypeOwningService:
			// Keyfort has no service-owned secrets.
		}
		if hit != v.not {
			return true
		}
	}
	return false
}

// wordsMatch reports whether every word of pattern (in lower case) is a
// prefix of some word of attr, ignoring case. A pattern without words
// matches nothing.
func wordsMatch(pattern, attr []string) bool {
	if len(pattern) == 0 {
		return false
	}
	for _, p := range pattern {
		found := false
		for _, w := range attr {
			if hasPrefixFold(w, p) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// hasPrefixFold reports whether s starts with prefix, a lower-case string,
// ignoring the case of s.
func hasPrefixFold(s, prefix string) bool {
	for _, pr := range prefix {
		if s == "" {
			return false
		}
		r, n := utf8.DecodeRuneInString(s)
		s = s[n:]
		if r != pr && unicode.ToLower(r) != pr {
			return false
		}
	}
	return true
}

// wordSeparators are the characters at which AWS splits an attribute into
// words, when only one of them occurs in it.
const wordSeparators = "/-_+=.@"

// appendWords appends the words of s to dst, as AWS splits an attribute or
// a filter value for word matching (moto's AWS-verified
// test_with_all_filter_special_characters):
//
//  1. at white space;
//  2. in each piece, at its separator when it has one kind of
//     wordSeparators ("prod/AppBeta/x" and "prod_AppBeta_x" are prod,
//     AppBeta, x); a piece with two kinds ("prod-AppBeta/x") is one word;
//  3. then where the case of the letters changes: before an upper-case
//     letter that follows a lower-case one ("AppBeta": App, Beta), and
//     before the last of a run of upper-case letters that a lower-case one
//     follows ("COMPANYthings": COMPAN, Ythings; "COMPANY" stays whole).
//
// Digits and other characters belong to the word they are in. The words
// are substrings of s; empty ones are left out.
func appendWords(dst []string, s string) []string {
	for _, piece := range strings.Fields(s) {
		sep := rune(-1)
		mixed := false
		for _, r := range piece {
			if strings.ContainsRune(wordSeparators, r) {
				if sep >= 0 && r != sep {
					mixed = true
					break
				}
				sep = r
			}
		}
		switch {
		case mixed:
			dst = append(dst, piece)
		case sep < 0:
			dst = appendCaseWords(dst, piece)
		default:
			for part := range strings.SplitSeq(piece, string(sep)) {
				dst = appendCaseWords(dst, part)
			}
		}
	}
	return dst
}

// appendCaseWords appends the words of s split where the case of its
// letters changes (step 3 of appendWords).
func appendCaseWords(dst []string, s string) []string {
	start := 0
	prev := rune(-1)
	for i, r := range s {
		if i > start && unicode.IsUpper(r) {
			cut := unicode.IsLower(prev)
			if !cut && unicode.IsUpper(prev) {
				next, _ := utf8.DecodeRuneInString(s[i+utf8.RuneLen(r):])
				cut = unicode.IsLower(next)
			}
			if cut {
				dst = append(dst, s[start:i])
				start = i
			}
		}
		prev = r
	}
	if start < len(s) {
		dst = append(dst, s[start:])
	}
	return dst
}
