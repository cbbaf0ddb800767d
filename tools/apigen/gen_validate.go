package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// genValidate writes Validate on every operation input, validate on every
// structure reachable from an input, the compiled patterns and the enum
// membership checks.
//
// Errors follow AWS's (Coral's) wording and are collected in model member
// order. Per member the checks run in the order: required, length minimum,
// length maximum, value minimum, value maximum, enum, pattern. Lists of
// structures report element errors at path.N.member.field (N from 1); lists
// of strings report once for the list, as AWS does: "Member must satisfy
// constraint: [<failed element rules>]".
func (g *gen) genValidate(w *writer) {
	if len(g.skipped) > 0 {
		w.p("// These patterns of the model do not compile in Go's RE2 and are not checked:")
		for _, name := range g.skipped {
			w.p("//   - %s: %s", name, *g.m.shape(name).Pattern)
		}
		w.p("")
	}
	if len(g.patterns) > 0 {
		names := make([]string, 0, len(g.patterns))
		for n := range g.patterns {
			names = append(names, n)
		}
		sort.Strings(names)
		w.p("// Patterns of the model, matched against the whole value as Java's")
		w.p("// String.matches does (\\uXXXX escapes are rewritten for RE2).")
		w.p("var (")
		for _, n := range names {
			w.p("\t%s = regexp.MustCompile(%s)", g.patterns[n], goString("^(?:"+javaToRE2(*g.m.shape(n).Pattern)+")$"))
		}
		w.p(")")
		w.p("")
	}
	for _, st := range g.structs {
		if !g.validated[st.Name] {
			continue
		}
		if st.Role == "input" {
			w.p("// Validate checks v against the constraints of the %s model and returns a", g.m.Metadata.ServiceID)
			w.p("// ValidationException (*awserr.Error) naming every violation, or nil.")
			w.p("func (v *%s) Validate() error {", st.Name)
			w.p("\tif v == nil {")
			w.p("\t\tv = &%s{}", st.Name)
			w.p("\t}")
			w.p("\tvar errs validationErrors")
			w.p("\tv.validate(\"\", &errs)")
			var tokens []member
			for _, mem := range st.Shape.Members {
				if mem.IdempotencyToken {
					tokens = append(tokens, mem)
				}
			}
			if len(tokens) == 0 {
				w.p("\treturn errs.err()")
			} else {
				// The SDKs fill an idempotency token in; a raw request
				// without one is refused, after the model's checks, by
				// missingIdempotencyToken (hand-written in the package).
				w.p("\tif err := errs.err(); err != nil {")
				w.p("\t\treturn err")
				w.p("\t}")
				op := strings.TrimSuffix(st.Name, "Input")
				for _, mem := range tokens {
					w.p("\tif v.%s == nil {", fieldName(mem.Name))
					w.p("\t\treturn missingIdempotencyToken(%q, %q)", op, mem.Name)
					w.p("\t}")
				}
				w.p("\treturn nil")
			}
			w.p("}")
			w.p("")
		}
		w.p("// validate adds the violations of v to errs; path is v's own path.")
		w.p("func (v *%s) validate(path string, errs *validationErrors) {", st.Name)
		for _, mem := range st.Shape.Members {
			g.validateMember(w, st.Shape, mem)
		}
		w.p("}")
		w.p("")
	}
	names := make([]string, 0, len(g.validEnums))
	for n := range g.validEnums {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		consts := make([]string, 0)
		for _, v := range g.m.shape(n).Enum {
			consts = append(consts, g.enumConsts[n][v])
		}
		w.p("// valid reports whether e is a value of %s.", n)
		w.p("func (e %s) valid() bool {", n)
		w.p("\tswitch e {")
		w.p("\tcase %s:", strings.Join(consts, ", "))
		w.p("\t\treturn true")
		w.p("\t}")
		w.p("\treturn false")
		w.p("}")
		w.p("")
	}
}

// check is one constraint test on a scalar value.
type check struct {
	cond string // Go condition that is true when the constraint fails
	text string // AWS's constraint text
}

// scalarChecks returns the checks of a string, enum or number shape on the
// Go expression val (a string for strings and enums, the number otherwise).
// setup is code to run first (it may declare n, the rune count).
func (g *gen) scalarChecks(s *shape, val, enumVal string) (setup string, checks []check) {
	switch s.Type {
	case "string":
		hasMin := s.Min != nil && *s.Min > 0
		if hasMin || s.Max != nil {
			setup = fmt.Sprintf("n := utf8.RuneCountInString(%s)", val)
		}
		if hasMin {
			checks = append(checks, check{fmt.Sprintf("n < %d", *s.Min), fmt.Sprintf("Member must have length greater than or equal to %d", *s.Min)})
		}
		if s.Max != nil {
			checks = append(checks, check{fmt.Sprintf("n > %d", *s.Max), fmt.Sprintf("Member must have length less than or equal to %d", *s.Max)})
		}
		if len(s.Enum) > 0 {
			checks = append(checks, check{fmt.Sprintf("!%s.valid()", enumVal), "Member must satisfy enum value set: " + quoteList(s.Enum)})
		}
		if s.Pattern != nil {
			if v, ok := g.patterns[s.Name]; ok {
				checks = append(checks, check{fmt.Sprintf("!%s.MatchString(%s)", v, val), "Member must satisfy regular expression pattern: " + *s.Pattern})
			}
		}
	case "integer", "long":
		if s.Min != nil {
			checks = append(checks, check{fmt.Sprintf("%s < %d", val, *s.Min), fmt.Sprintf("Member must have value greater than or equal to %d", *s.Min)})
		}
		if s.Max != nil {
			checks = append(checks, check{fmt.Sprintf("%s > %d", val, *s.Max), fmt.Sprintf("Member must have value less than or equal to %d", *s.Max)})
		}
	}
	return setup, checks
}

// validateMember writes the checks of one member of structure parent.
func (g *gen) validateMember(w *writer, parent *shape, mem member) {
	s := g.m.shape(mem.Shape)
	name := strconv.Quote(lowerFirst(mem.Name))
	f := "v." + fieldName(mem.Name)
	req := parent.isRequired(mem.Name)
	sens := isSensitive(mem, s)

	var absent, present string
	var body []string // checks run when present
	report := func(value, text string) string {
		if sens || value == "" {
			return fmt.Sprintf("errs.noValue(path, %s, %q)", name, text)
		}
		return fmt.Sprintf("errs.value(path, %s, %s, %q)", name, value, text)
	}
	switch s.Type {
	case "string":
		val, enumVal := "*"+f, ""
		absent, present = f+" == nil", f+" != nil"
		switch {
		case len(s.Enum) > 0:
			val, enumVal = "string("+f+")", f
			absent, present = f+` == ""`, f+` != ""`
		case sens:
			val = f + ".Reveal()"
		}
		setup, checks := g.scalarChecks(s, "s", enumVal)
		if len(checks) > 0 {
			body = append(body, "s := "+val)
			if setup != "" {
				body = append(body, setup)
			}
			for _, c := range checks {
				body = append(body, fmt.Sprintf("if %s {\n%s\n}", c.cond, report("s", c.text)))
			}
		}
	case "integer", "long":
		absent, present = f+" == nil", f+" != nil"
		_, checks := g.scalarChecks(s, "*"+f, "")
		for _, c := range checks {
			body = append(body, fmt.Sprintf("if %s {\n%s\n}", c.cond, report("strconv.FormatInt(int64(*"+f+"), 10)", c.text)))
		}
	case "boolean", "timestamp":
		absent, present = f+" == nil", f+" != nil"
	case "blob", "list", "map":
		absent, present = f+" == nil", f+" != nil"
		if s.Min != nil && *s.Min > 0 {
			body = append(body, fmt.Sprintf("if len(%s) < %d {\n%s\n}", f, *s.Min, report("", fmt.Sprintf("Member must have length greater than or equal to %d", *s.Min))))
		}
		if s.Max != nil {
			body = append(body, fmt.Sprintf("if len(%s) > %d {\n%s\n}", f, *s.Max, report("", fmt.Sprintf("Member must have length less than or equal to %d", *s.Max))))
		}
		if s.Type == "list" {
			body = append(body, g.validateElements(s, f, name)...)
		}
		if s.Type == "map" {
			body = append(body, g.validateEntries(s, f, name)...)
		}
	case "structure":
		absent, present = f+" == nil", f+" != nil"
		body = append(body, fmt.Sprintf("%s.validate(joinPath(path, %s), errs)", f, name))
	default:
		failf("shape %s: unsupported type %q", s.Name, s.Type)
	}
	switch {
	case req && len(body) > 0:
		w.p("if %s {", absent)
		w.p("errs.null(path, %s)", name)
		w.p("} else {")
		w.p("%s", strings.Join(body, "\n"))
		w.p("}")
	case req:
		w.p("if %s {", absent)
		w.p("errs.null(path, %s)", name)
		w.p("}")
	case len(body) > 0:
		w.p("if %s {", present)
		w.p("%s", strings.Join(body, "\n"))
		w.p("}")
	}
}

// validateElements returns the checks of the elements of list shape s held
// in the Go expression f.
func (g *gen) validateElements(s *shape, f, name string) []string {
	e := g.m.shape(s.Member.Shape)
	switch e.Type {
	case "structure":
		return []string{fmt.Sprintf("for i := range %s {\n%s[i].validate(elemPath(path, %s, i), errs)\n}", f, f, name)}
	case "string":
		val, enumVal := "string(e)", "e"
		if len(e.Enum) == 0 {
			val, enumVal = "e", ""
			if e.Sensitive {
				val = "e.Reveal()"
			}
		}
		setup, checks := g.scalarChecks(e, val, enumVal)
		if len(checks) == 0 {
			return nil
		}
		var b strings.Builder
		fmt.Fprintf(&b, "var bad [%d]bool\n", len(checks))
		fmt.Fprintf(&b, "for _, e := range %s {\n", f)
		if setup != "" {
			b.WriteString(setup + "\n")
		}
		texts := make([]string, len(checks))
		for i, c := range checks {
			fmt.Fprintf(&b, "if %s {\nbad[%d] = true\n}\n", c.cond, i)
			texts[i] = strconv.Quote(c.text)
		}
		b.WriteString("}\n")
		fmt.Fprintf(&b, "if bad != ([%d]bool{}) {\n", len(checks))
		c := fmt.Sprintf("memberConstraint(bad[:], %s)", strings.Join(texts, ", "))
		if e.Sensitive {
			fmt.Fprintf(&b, "errs.noValue(path, %s, %s)\n", name, c)
		} else {
			fmt.Fprintf(&b, "errs.value(path, %s, listString(%s), %s)\n", name, f, c)
		}
		b.WriteString("}")
		return []string{b.String()}
	default:
		if hasConstraints(e) {
			failf("list %s: constraints on %s elements are not supported", s.Name, e.Type)
		}
		return nil
	}
}

// validateEntries returns the checks of the keys and values of map shape s
// held in the Go expression f (string keys and values only; markValidated
// refuses other constrained entries). As for lists of strings, AWS reports
// once for the map: "Map keys must satisfy constraint: [<failed rules>]",
// and likewise "Map value ...". The map itself is not echoed.
func (g *gen) validateEntries(s *shape, f, name string) []string {
	var out []string
	for _, part := range []struct {
		what, v string
		e       *shape
	}{
		{"keys", "k", g.m.shape(s.Key.Shape)},
		{"value", "e", g.m.shape(s.Value.Shape)},
	} {
		e := part.e
		if e.Type != "string" || !hasConstraints(e) {
			continue
		}
		val, enumVal := part.v, ""
		if e.Sensitive {
			val = part.v + ".Reveal()"
		}
		if len(e.Enum) > 0 {
			val, enumVal = "string("+part.v+")", e.Name+"("+part.v+")"
		}
		setup, checks := g.scalarChecks(e, val, enumVal)
		var b strings.Builder
		fmt.Fprintf(&b, "{\nvar bad [%d]bool\n", len(checks))
		if part.v == "k" {
			fmt.Fprintf(&b, "for k := range %s {\n", f)
		} else {
			fmt.Fprintf(&b, "for _, e := range %s {\n", f)
		}
		if setup != "" {
			b.WriteString(setup + "\n")
		}
		texts := make([]string, len(checks))
		for i, c := range checks {
			fmt.Fprintf(&b, "if %s {\nbad[%d] = true\n}\n", c.cond, i)
			texts[i] = strconv.Quote(c.text)
		}
		b.WriteString("}\n")
		fmt.Fprintf(&b, "if bad != ([%d]bool{}) {\n", len(checks))
		fmt.Fprintf(&b, "errs.noValue(path, %s, mapConstraint(%q, bad[:], %s))\n", name, part.what, strings.Join(texts, ", "))
		b.WriteString("}\n}")
		out = append(out, b.String())
	}
	return out
}
