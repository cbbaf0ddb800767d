package iam

import "strings"

// RequestTags answers the tag condition keys of a request: aws:TagKeys and
// aws:RequestTag/<key>. A nil *RequestTags (a request that names no tags)
// has neither.
type RequestTags struct {
	// Keys are the tag keys the request names (aws:TagKeys); empty, not
	// nil, for a request that names none but could.
	Keys []string
	// Values are the values of the tags the request sets, parallel to
	// Keys; nil for a request that only removes tags (UntagResource),
	// which has no aws:RequestTag.
	Values []string
}

// SetTags returns the RequestTags of a request that sets tags, from its
// keys and values (each pair read through kv).
func SetTags[T any](tags []T, kv func(T) (key, value string)) *RequestTags {
	t := &RequestTags{Keys: make([]string, len(tags)), Values: make([]string, len(tags))}
	for i, x := range tags {
		t.Keys[i], t.Values[i] = kv(x)
	}
	return t
}

// RemoveTags returns the RequestTags of a request that removes the tags
// keys.
func RemoveTags(keys []string) *RequestTags {
	if keys == nil {
		keys = []string{}
	}
	return &RequestTags{Keys: keys}
}

// Value answers aws:TagKeys and aws:RequestTag/<key> (tag keys compared
// case-insensitively); ok is false for any other key.
func (t *RequestTags) Value(key string) (values []string, ok bool) {
	if t == nil {
		return nil, false
	}
	if key == "aws:tagkeys" {
		return t.Keys, true
	}
	name, isTag := strings.CutPrefix(key, "aws:requesttag/")
	if !isTag || t.Values == nil {
		return nil, false
	}
	for i, k := range t.Keys {
		if strings.EqualFold(k, name) {
			return []string{t.Values[i]}, true
		}
	}
	return nil, false
}

// IsAccountID reports whether s is a 12-digit AWS account id.
func IsAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
