package main

import (
	"fmt"
	"strconv"
)

// genJSON writes AppendJSON on every operation output and every structure
// reachable from one: compact JSON, members in model order, absent members
// omitted.
func (g *gen) genJSON(w *writer) {
	for _, st := range g.structs {
		if !g.encoded[st.Name] {
			continue
		}
		w.p("// AppendJSON appends the AWS JSON encoding of v to b. Absent members are")
		w.p("// omitted; sensitive members are revealed. A nil v encodes as {}.")
		w.p("func (v *%s) AppendJSON(b []byte) []byte {", st.Name)
		if len(st.Shape.Members) == 0 {
			w.p("\treturn append(b, \"{}\"...)")
			w.p("}")
			w.p("")
			continue
		}
		w.p("if v == nil {")
		w.p("return append(b, \"{}\"...)")
		w.p("}")
		w.p("b = append(b, '{')")
		w.p("start := len(b)")
		for _, mem := range st.Shape.Members {
			s := g.m.shape(mem.Shape)
			f := "v." + fieldName(mem.Name)
			present := f + " != nil"
			if s.Type == "string" && len(s.Enum) > 0 {
				present = f + ` != ""`
			}
			w.p("if %s {", present)
			w.p("if len(b) != start {")
			w.p("b = append(b, ',')")
			w.p("}")
			w.p("b = append(b, %s...)", goString(strconv.Quote(mem.Name)+":"))
			w.p("%s", g.encodeValue(s, isSensitive(mem, s), f, true, 0))
			w.p("}")
		}
		w.p("return append(b, '}')")
		w.p("}")
		w.p("")
	}
}

// encodeValue returns code appending the JSON of the Go expression x of
// shape s to b. member is true for structure members (pointers for
// scalars), false for list elements and map values. depth names loop
// variables in nested containers.
func (g *gen) encodeValue(s *shape, sens bool, x string, member bool, depth int) string {
	deref := x
	if member {
		deref = "*" + x
	}
	switch s.Type {
	case "string":
		switch {
		case len(s.Enum) > 0:
			return fmt.Sprintf("b = appendString(b, string(%s))", x)
		case sens || s.Sensitive:
			return fmt.Sprintf("b = appendString(b, %s.Reveal())", x)
		}
		return fmt.Sprintf("b = appendString(b, %s)", deref)
	case "integer", "long":
		return fmt.Sprintf("b = strconv.AppendInt(b, int64(%s), 10)", deref)
	case "double", "float":
		return fmt.Sprintf("b = appendFloat(b, float64(%s))", deref)
	case "boolean":
		return fmt.Sprintf("b = strconv.AppendBool(b, %s)", deref)
	case "timestamp":
		return fmt.Sprintf("b = appendTime(b, %s)", deref)
	case "blob":
		if sens || s.Sensitive {
			return fmt.Sprintf("b = appendBlob(b, %s.Reveal())", x)
		}
		return fmt.Sprintf("b = appendBlob(b, %s)", x)
	case "structure":
		return fmt.Sprintf("b = %s.AppendJSON(b)", x)
	case "list":
		i := fmt.Sprintf("i%d", depth)
		e := g.m.shape(s.Member.Shape)
		return fmt.Sprintf("b = append(b, '[')\nfor %s := range %s {\nif %s > 0 {\nb = append(b, ',')\n}\n%s\n}\nb = append(b, ']')",
			i, x, i, g.encodeValue(e, false, x+"["+i+"]", false, depth+1))
	case "map":
		k := fmt.Sprintf("k%d", depth)
		val := g.m.shape(s.Value.Shape)
		if val.Type == "string" && len(val.Enum) == 0 && !val.Sensitive {
			return fmt.Sprintf("b = appendStringMap(b, %s)", x)
		}
		kb := fmt.Sprintf("kb%d", depth)
		return fmt.Sprintf("b = append(b, '{')\nvar %s [8]string\nfor n, %s := range sortedKeys(%s, %s[:]) {\nif n > 0 {\nb = append(b, ',')\n}\nb = appendString(b, %s)\nb = append(b, ':')\n%s\n}\nb = append(b, '}')",
			kb, k, x, kb, k, g.encodeValue(val, false, x+"["+k+"]", false, depth+1))
	}
	failf("shape %s: cannot encode type %q", s.Name, s.Type)
	return ""
}
