package main

import "fmt"

// genDecode writes the request decoders: DecodeJSON on every structure
// reachable from an operation input, driving an internal/jsonread Decoder
// member by member, and UnmarshalAWSJSON on every operation input (the
// operation.Input method the codec calls). Member names match exactly;
// unknown members are skipped; a member given twice, a null list element
// or map value, and a map key given twice are refused; null for a member
// leaves it absent. No reflection, no encoding/json.
func (g *gen) genDecode(w *writer) {
	for _, st := range g.structs {
		if !g.validated[st.Name] {
			continue
		}
		if len(st.Shape.Members) > 64 {
			failf("structure %s: %d members, the decoder tracks at most 64", st.Name, len(st.Shape.Members))
		}
		if st.Role == "input" {
			w.p("// UnmarshalAWSJSON decodes a complete AWS JSON 1.1 request body, a JSON object,")
			w.p("// into v (operation.Input). It returns a *jsonread.Error on malformed input.")
			w.p("func (v *%s) UnmarshalAWSJSON(body []byte) error {", st.Name)
			w.p("d := jsonread.NewDecoder(body)")
			w.p("v.DecodeJSON(&d)")
			w.p("return d.Finish()")
			w.p("}")
			w.p("")
		}
		w.p("// DecodeJSON decodes the JSON object at d's position into v. Errors are")
		w.p("// recorded in d (see jsonread.Decoder.Err).")
		w.p("func (v *%s) DecodeJSON(d *jsonread.Decoder) {", st.Name)
		if len(st.Shape.Members) == 0 {
			w.p("for more := d.BeginStruct(); more; more = d.NextMember() {")
			w.p("d.Skip()")
			w.p("}")
			w.p("}")
			w.p("")
			continue
		}
		w.p("var seen uint64")
		w.p("for more := d.BeginStruct(); more; more = d.NextMember() {")
		w.p("switch string(d.Name()) {")
		for i, mem := range st.Shape.Members {
			s := g.m.shape(mem.Shape)
			f := "v." + fieldName(mem.Name)
			w.p("case %s:", goString(mem.Name))
			w.p("if d.Seen(&seen, %d) || d.Null() {", i)
			w.p("continue")
			w.p("}")
			sens := isSensitive(mem, s)
			switch s.Type {
			case "structure":
				w.p("%s = new(%s)", f, g.structName[s.Name])
				w.p("%s.DecodeJSON(d)", f)
			case "string":
				if len(s.Enum) > 0 {
					w.p("%s = %s", f, g.decodeValue(w, s, sens, mem.Name, 0))
					break
				}
				w.p("x := %s", g.decodeValue(w, s, sens, mem.Name, 0))
				w.p("%s = &x", f)
			case "integer", "long", "boolean", "timestamp":
				w.p("x := %s", g.decodeValue(w, s, sens, mem.Name, 0))
				w.p("%s = &x", f)
			default:
				w.p("%s = %s", f, g.decodeValue(w, s, sens, mem.Name, 0))
			}
		}
		w.p("default:")
		w.p("d.Skip()")
		w.p("}")
		w.p("}")
		w.p("}")
		w.p("")
	}
}

// decodeValue writes any statements needed to decode a value of shape s
// (a list element, a map value, or a member past its null check) and
// returns the Go expression of the decoded value, of the type elemType
// gives (goType's for members, without the pointer). member names the
// structure member, for error messages; depth names the variables of
// nested containers.
func (g *gen) decodeValue(w *writer, s *shape, sens bool, member string, depth int) string {
	switch s.Type {
	case "string":
		switch {
		case len(s.Enum) > 0:
			return s.Name + "(d.String())"
		case sens || s.Sensitive:
			return "sensitive.String(d.String())"
		}
		return "d.String()"
	case "integer":
		return "d.Int32()"
	case "long":
		return "d.Int64()"
	case "boolean":
		return "d.Bool()"
	case "timestamp":
		return "d.Time()"
	case "blob":
		if sens || s.Sensitive {
			return "sensitive.Bytes(d.Blob())"
		}
		return "d.Blob()"
	case "structure":
		e := fmt.Sprintf("e%d", depth)
		w.p("var %s %s", e, g.structName[s.Name])
		w.p("%s.DecodeJSON(d)", e)
		return e
	case "list":
		l := fmt.Sprintf("l%d", depth)
		elem := g.m.shape(s.Member.Shape)
		w.p("%s := %s{}", l, g.elemType(s, false))
		w.p("for more := d.BeginList(); more; more = d.NextElem() {")
		x := g.decodeValue(w, elem, false, member, depth+1)
		w.p("%s = append(%s, %s)", l, l, x)
		w.p("}")
		return l
	case "map":
		m := fmt.Sprintf("m%d", depth)
		k := fmt.Sprintf("k%d", depth)
		val := g.m.shape(s.Value.Shape)
		w.p("%s := %s{}", m, g.elemType(s, false))
		w.p("for more := d.BeginMap(); more; more = d.NextMember() {")
		w.p("%s := d.Key()", k)
		w.p("if _, dup := %s[%s]; dup {", m, k)
		w.p("d.DuplicateKey(%s)", goString(member))
		w.p("break")
		w.p("}")
		x := g.decodeValue(w, val, false, member, depth+1)
		w.p("%s[%s] = %s", m, k, x)
		w.p("}")
		return m
	}
	failf("shape %s: cannot decode type %q", s.Name, s.Type)
	return ""
}
