package iam

import (
	"bytes"
	"encoding/base64"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// qualifier is a condition set operator.
type qualifier uint8

const (
	qualNone qualifier = iota
	qualForAnyValue
	qualForAllValues
)

// operator is a base condition operator (without IfExists and qualifier).
type operator uint8

const (
	opStringEquals operator = iota + 1
	opStringNotEquals
	opStringEqualsIgnoreCase
	opStringNotEqualsIgnoreCase
	opStringLike
	opStringNotLike
	opNumericEquals
	opNumericNotEquals
	opNumericLessThan
	opNumericLessThanEquals
	opNumericGreaterThan
	opNumericGreaterThanEquals
	opDateEquals
	opDateNotEquals
	opDateLessThan
	opDateLessThanEquals
	opDateGreaterThan
	opDateGreaterThanEquals
	opBool
	opBinaryEquals
	opIPAddress
	opNotIPAddress
	opArnEquals
	opArnLike
	opArnNotEquals
	opArnNotLike
	opNull
)

var operators = map[string]operator{
	"StringEquals": opStringEquals, "StringNotEquals": opStringNotEquals,
	"StringEqualsIgnoreCase": opStringEqualsIgnoreCase, "StringNotEqualsIgnoreCase": opStringNotEqualsIgnoreCase,
	"StringLike": opStringLike, "StringNotLike": opStringNotLike,
	"NumericEquals": opNumericEquals, "NumericNotEquals": opNumericNotEquals,
	"NumericLessThan": opNumericLessThan, "NumericLessThanEquals": opNumericLessThanEquals,
	"NumericGreaterThan": opNumericGreaterThan, "NumericGreaterThanEquals": opNumericGreaterThanEquals,
	"DateEquals": opDateEquals, "DateNotEquals": opDateNotEquals,
	"DateLessThan": opDateLessThan, "DateLessThanEquals": opDateLessThanEquals,
	"DateGreaterThan": opDateGreaterThan, "DateGreaterThanEquals": opDateGreaterThanEquals,
	"Bool": opBool, "BinaryEquals": opBinaryEquals,
	"IpAddress": opIPAddress, "NotIpAddress": opNotIPAddress,
	"ArnEquals": opArnEquals, "ArnLike": opArnLike, "ArnNotEquals": opArnNotEquals, "ArnNotLike": opArnNotLike,
	"Null": opNull,
}

// negated reports whether op is true when the value matches none of the
// policy's values (and so true when the key is absent).
func (op operator) negated() bool {
	switch op {
	case opStringNotEquals, opStringNotEqualsIgnoreCase, opStringNotLike, opNumericNotEquals,
		opDateNotEquals, opNotIPAddress, opArnNotEquals, opArnNotLike:
		return true
	}
	return false
}

// parseOperator splits a condition operator into its qualifier
// (ForAnyValue/ForAllValues or none), base operator and IfExists suffix.
// Operator names are case-sensitive, as in IAM.
func parseOperator(op string) (q qualifier, base operator, ifExists, ok bool) {
	name := op
	if qs, rest, found := strings.Cut(op, ":"); found {
		switch qs {
		case "ForAnyValue":
			q = qualForAnyValue
		case "ForAllValues":
			q = qualForAllValues
		default:
			return 0, 0, false, false
		}
		name = rest
	}
	if b, found := strings.CutSuffix(name, "IfExists"); found {
		name, ifExists = b, true
	}
	base, ok = operators[name]
	if !ok || (base == opNull && (ifExists || q != qualNone)) {
		return 0, 0, false, false
	}
	return q, base, ifExists, true
}

// Context answers condition keys for one request.
type Context interface {
	// Value returns the values of the condition key (given in lower case)
	// and whether the request has the key at all. A single-valued key
	// returns one value; a multivalued key (aws:TagKeys,
	// kms:EncryptionContextKeys, ...) may return none.
	Value(key string) (values []string, present bool)
}

// MapContext is a Context backed by a map from lower-case key to values.
type MapContext map[string][]string

// Value implements Context.
func (m MapContext) Value(key string) ([]string, bool) {
	v, ok := m[key]
	return v, ok
}

// eval evaluates the condition against ctx; vars resolves policy variables
// in the policy's values (nil in 2008-10-17 policies).
func (c *Condition) eval(ctx Context, vars bool) bool {
	got, present := ctx.Value(c.key)
	if c.base == opNull {
		isNull := !present || len(got) == 0
		for _, v := range c.vals {
			switch strings.ToLower(v) {
			case "true":
				if isNull {
					return true
				}
			case "false":
				if !isNull {
					return true
				}
			}
		}
		return false
	}
	if !present {
		if c.ifExists || c.qualifier == qualForAllValues {
			return true
		}
		if c.qualifier == qualForAnyValue {
			return false
		}
		return c.base.negated()
	}
	switch c.qualifier {
	case qualForAllValues:
		// Every value of the request matches (vacuously true for none).
		for _, g := range got {
			if !c.matchOne(ctx, vars, g) {
				return false
			}
		}
		return true
	default:
		// ForAnyValue, and a plain operator on a multivalued key: some value
		// of the request matches.
		if len(got) == 0 {
			return c.qualifier == qualNone && c.base.negated()
		}
		for _, g := range got {
			if c.matchOne(ctx, vars, g) {
				return true
			}
		}
		return false
	}
}

// matchOne applies the operator to one request value: for a positive
// operator, it matches some policy value; for a negated one, it matches
// none of them.
func (c *Condition) matchOne(ctx Context, vars bool, got string) bool {
	neg := c.base.negated()
	for _, want := range c.vals {
		m, ok := c.compare(ctx, vars, want, got)
		if !ok {
			continue // an unusable policy value (bad number, unknown variable) matches nothing
		}
		if m {
			return !neg
		}
	}
	return neg
}

// compare compares one policy value with one request value under the
// positive form of the operator. ok is false when the policy value cannot
// be used (malformed, or a variable the request does not have).
func (c *Condition) compare(ctx Context, vars bool, want, got string) (match, ok bool) {
	switch c.base {
	case opStringEquals, opStringNotEquals:
		w, ok := expandLiteral(ctx, vars, want)
		return ok && w == got, ok
	case opStringEqualsIgnoreCase, opStringNotEqualsIgnoreCase:
		w, ok := expandLiteral(ctx, vars, want)
		return ok && strings.EqualFold(w, got), ok
	case opStringLike, opStringNotLike:
		p, ok := compilePattern(ctx, vars, want)
		return ok && p.match(got, false), ok
	case opNumericEquals, opNumericNotEquals, opNumericLessThan, opNumericLessThanEquals,
		opNumericGreaterThan, opNumericGreaterThanEquals:
		w, err1 := strconv.ParseFloat(want, 64)
		g, err2 := strconv.ParseFloat(got, 64)
		if err1 != nil {
			return false, false
		}
		if err2 != nil {
			return false, true
		}
		return compareOrdered(c.base, w, g), true
	case opDateEquals, opDateNotEquals, opDateLessThan, opDateLessThanEquals,
		opDateGreaterThan, opDateGreaterThanEquals:
		w, ok1 := parseDate(want)
		g, ok2 := parseDate(got)
		if !ok1 {
			return false, false
		}
		if !ok2 {
			return false, true
		}
		return compareOrdered(c.base, float64(w.UnixNano()), float64(g.UnixNano())), true
	case opBool:
		w, ok := expandLiteral(ctx, vars, want)
		return ok && strings.EqualFold(w, got), ok
	case opBinaryEquals:
		w, err1 := base64.StdEncoding.DecodeString(want)
		g, err2 := base64.StdEncoding.DecodeString(got)
		if err1 != nil {
			return false, false
		}
		return err2 == nil && bytes.Equal(w, g), true
	case opIPAddress, opNotIPAddress:
		pfx, err := parsePrefix(want)
		if err != nil {
			return false, false
		}
		ip, err := netip.ParseAddr(got)
		if err != nil {
			return false, true
		}
		return pfx.Contains(ip.Unmap()), true
	case opArnEquals, opArnLike, opArnNotEquals, opArnNotLike:
		return arnMatch(ctx, vars, want, got)
	}
	return false, false
}

// compareOrdered applies a numeric or date operator to want (the policy's
// value) and got (the request's): NumericLessThan is true when got < want.
func compareOrdered(op operator, want, got float64) bool {
	switch op {
	case opNumericEquals, opNumericNotEquals, opDateEquals, opDateNotEquals:
		return got == want
	case opNumericLessThan, opDateLessThan:
		return got < want
	case opNumericLessThanEquals, opDateLessThanEquals:
		return got <= want
	case opNumericGreaterThan, opDateGreaterThan:
		return got > want
	case opNumericGreaterThanEquals, opDateGreaterThanEquals:
		return got >= want
	}
	return false
}

// parseDate reads a date condition value: ISO 8601 (a date, or a date and
// time with a zone) or epoch seconds.
func parseDate(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04Z07:00", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), true
	}
	return time.Time{}, false
}

// parsePrefix reads an IpAddress value: a CIDR block or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, err
		}
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
