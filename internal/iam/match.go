package iam

import "strings"

// WildcardMatch matches s against pattern, where * matches any run of
// characters and ? any one character. It is case-sensitive and runs in
// O(len(pattern)*len(s)).
func WildcardMatch(pattern, s string) bool { return wildcard(pattern, s, false) }

// matchFold is WildcardMatch with s compared in ASCII lower case: pattern
// must already be lower case (action patterns are lowered once, at parse
// time), so matching an action costs no allocation.
func matchFold(pattern, s string) bool { return wildcard(pattern, s, true) }

func wildcard(pattern, s string, fold bool) bool {
	px, sx := 0, 0
	starP, starS := -1, 0
	for sx < len(s) {
		c := s[sx]
		if fold && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		switch {
		case px < len(pattern) && (pattern[px] == '?' || pattern[px] == c):
			px++
			sx++
		case px < len(pattern) && pattern[px] == '*':
			starP, starS = px, sx
			px++
		case starP >= 0:
			px = starP + 1
			starS++
			sx = starS
		default:
			return false
		}
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}

// token is one element of a compiled pattern: a literal run, or a * or ?
// wildcard. Text a policy variable put in a pattern is literal, so a tag
// value such as "*" matches only itself.
type token struct {
	lit  string
	wild byte // '*' or '?' (lit is empty), or 0 for a literal
}

// pattern is a compiled StringLike / ArnLike / Resource pattern.
type pattern []token

// compilePattern turns a policy value into tokens, replacing policy
// variables when vars is set. ok is false when a variable has no value.
func compilePattern(ctx Context, vars bool, s string) (pattern, bool) {
	var p pattern
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			p = append(p, token{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '*' || c == '?':
			flush()
			p = append(p, token{wild: c})
		case c == '$' && vars && i+1 < len(s) && s[i+1] == '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				lit.WriteByte(c)
				continue
			}
			val, ok := variable(ctx, s[i+2:i+2+end])
			if !ok {
				return nil, false
			}
			lit.WriteString(val)
			i += 2 + end
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return p, true
}

// expandLiteral replaces the policy variables of s (for the Equals
// operators, where * and ? are literal).
func expandLiteral(ctx Context, vars bool, s string) (string, bool) {
	if !vars || !strings.Contains(s, "${") {
		return s, true
	}
	// A value that is one variable (the common "${aws:PrincipalTag/team}")
	// is that variable's value, without building a string.
	if strings.HasPrefix(s, "${") && strings.IndexByte(s, '}') == len(s)-1 {
		return variable(ctx, s[2:len(s)-1])
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '$' && i+1 < len(s) && s[i+1] == '{' {
			end := strings.IndexByte(s[i+2:], '}')
			if end >= 0 {
				val, ok := variable(ctx, s[i+2:i+2+end])
				if !ok {
					return "", false
				}
				b.WriteString(val)
				i += 2 + end
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String(), true
}

// variable resolves the inside of a ${...} policy variable: a condition
// key, optionally with a default (${aws:username, 'nobody'}), or one of the
// escapes ${*}, ${?} and ${$}. A key that is absent or has several values
// resolves only through its default. Parse lowers the keys of variables
// (normalizeVariables), so the lookup allocates nothing.
func variable(ctx Context, inner string) (string, bool) {
	switch inner {
	case "*", "?", "$":
		return inner, true
	}
	key, def, hasDef := strings.Cut(inner, ",")
	key = lowerASCII(strings.TrimSpace(key))
	if hasDef {
		def = strings.TrimSpace(def)
		if len(def) >= 2 && def[0] == '\'' && def[len(def)-1] == '\'' {
			def = def[1 : len(def)-1]
		} else {
			hasDef = false
		}
	}
	if ctx != nil {
		if v, ok := ctx.Value(key); ok && len(v) == 1 {
			return v[0], true
		}
	}
	if hasDef {
		return def, true
	}
	return "", false
}

// lowerASCII returns s in ASCII lower case, without allocating when it
// already is.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// normalizeVariables returns s with the condition key of each ${...}
// policy variable in lower case (condition keys are case-insensitive), so
// that evaluation need not lower them.
func normalizeVariables(s string) string {
	if !strings.Contains(s, "${") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '$' && i+1 < len(s) && s[i+1] == '{' {
			end := strings.IndexByte(s[i+2:], '}')
			if end >= 0 {
				inner := s[i+2 : i+2+end]
				key, rest, hasDef := strings.Cut(inner, ",")
				b.WriteString("${")
				b.WriteString(strings.ToLower(key))
				if hasDef {
					b.WriteByte(',')
					b.WriteString(rest)
				}
				b.WriteByte('}')
				i += 2 + end
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// match reports whether s matches the pattern; fold compares literals
// case-insensitively.
func (p pattern) match(s string, fold bool) bool {
	return matchTokens(p, s, fold)
}

func matchTokens(p pattern, s string, fold bool) bool {
	// Backtracking on the last *, as WildcardMatch, over tokens: a literal
	// token of n bytes is n one-byte literals matched at once.
	pi, si := 0, 0
	starP, starS := -1, 0
	for si < len(s) || pi < len(p) {
		if pi < len(p) {
			t := p[pi]
			switch {
			case t.wild == '*':
				starP, starS = pi, si
				pi++
				continue
			case t.wild == '?' && si < len(s):
				pi++
				si++
				continue
			case t.wild == 0 && si+len(t.lit) <= len(s) && eq(s[si:si+len(t.lit)], t.lit, fold):
				pi++
				si += len(t.lit)
				continue
			}
		}
		if starP < 0 || starS >= len(s) {
			return false
		}
		starS++
		pi, si = starP+1, starS
	}
	return true
}

func eq(a, b string, fold bool) bool {
	if fold {
		return strings.EqualFold(a, b)
	}
	return a == b
}

// matchResource matches a Resource element value against the resource
// ARN of the request: "*" matches everything (including requests without
// a resource, which use "*"); an ARN pattern is matched component by
// component, as ArnLike does.
func matchResource(ctx Context, vars bool, want, got string) bool {
	if want == "*" {
		return true
	}
	m, ok := arnMatch(ctx, vars, want, got)
	return ok && m
}

// arnMatch compares an ARN pattern with an ARN: each of the six
// colon-separated components separately (the last takes the rest), each
// with * and ? wildcards, case-sensitively. ok is false when a policy
// variable has no value. It allocates only for components with variables.
func arnMatch(ctx Context, vars bool, want, got string) (match, ok bool) {
	if !isARN(want) || !isARN(got) {
		// Not ARNs: compare whole strings with wildcards.
		return matchComponent(ctx, vars, want, got)
	}
	for i := range 6 {
		var w, g string
		w, want = nextComponent(want, i == 5)
		g, got = nextComponent(got, i == 5)
		m, ok := matchComponent(ctx, vars, w, g)
		if !ok || !m {
			return false, ok
		}
	}
	return true, true
}

// matchComponent matches one pattern with * and ? wildcards (and policy
// variables) against s.
func matchComponent(ctx Context, vars bool, want, got string) (match, ok bool) {
	if !vars || !strings.Contains(want, "${") {
		return WildcardMatch(want, got), true
	}
	p, ok := compilePattern(ctx, vars, want)
	return ok && p.match(got, false), ok
}

// isARN reports whether s has the arn:partition:service:region:account:
// prefix of six components.
func isARN(s string) bool {
	return strings.HasPrefix(s, "arn:") && strings.Count(s, ":") >= 5
}

// nextComponent returns the first colon-separated component of s and the
// rest after the colon; the last component is all of s.
func nextComponent(s string, last bool) (string, string) {
	if last {
		return s, ""
	}
	i := strings.IndexByte(s, ':')
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i+1:]
}
