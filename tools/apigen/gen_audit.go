package main

import (
	"strconv"
)

// genAudit writes AppendAuditJSON on every structure: the form CloudTrail
// records requestParameters and responseElements in. Member names start
// with a lower-case letter (CloudTrail's "keyId", "encryptionContext");
// sensitive members and blobs (plaintexts, ciphertexts, key material,
// secret values) are left out entirely.
func (g *gen) genAudit(w *writer) {
	defaults := 0
	for _, members := range g.svc.AuditDefaults {
		defaults += len(members)
	}
	for _, st := range g.structs {
		w.p("// AppendAuditJSON appends v as CloudTrail records it: lower-case member")
		w.p("// names, sensitive members and blobs left out. A nil v encodes as {}.")
		w.p("func (v *%s) AppendAuditJSON(b []byte) []byte {", st.Name)
		var members []member
		for _, mem := range st.Shape.Members {
			s := g.m.shape(mem.Shape)
			if isSensitive(mem, s) || s.Type == "blob" || g.holdsSensitive(s, map[string]bool{}) {
				continue
			}
			members = append(members, mem)
		}
		if len(members) == 0 {
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
		for _, mem := range members {
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
			w.p("b = append(b, %s...)", goString(strconv.Quote(lowerFirst(mem.Name))+":"))
			w.p("%s", g.auditValue(s, f, true, 0))
			if def, ok := g.svc.AuditDefaults[st.Name][fieldName(mem.Name)]; ok {
				if s.Type != "string" {
					failf("audit default of %s.%s: not a string member", st.Name, fieldName(mem.Name))
				}
				defaults--
				w.p("} else {")
				w.p("if len(b) != start {")
				w.p("b = append(b, ',')")
				w.p("}")
				w.p("b = append(b, %s...)", goString(strconv.Quote(lowerFirst(mem.Name))+":"+strconv.Quote(def)))
			}
			w.p("}")
		}
		w.p("return append(b, '}')")
		w.p("}")
		w.p("")
	}
	if defaults != 0 {
		failf("audit defaults name %d structure members the model does not have (or that are left out of audit records): %v", defaults, g.svc.AuditDefaults)
	}
}

// holdsSensitive reports whether a list or map of s carries sensitive or
// blob values (structures filter their own members).
func (g *gen) holdsSensitive(s *shape, seen map[string]bool) bool {
	switch s.Type {
	case "list":
		e := g.m.shape(s.Member.Shape)
		return e.Sensitive || e.Type == "blob" || g.holdsSensitive(e, seen)
	case "map":
		v := g.m.shape(s.Value.Shape)
		return v.Sensitive || v.Type == "blob" || g.holdsSensitive(v, seen)
	}
	return false
}

// auditValue is encodeValue with nested structures in their audit form and
// every request value bounded: strings (and map keys) cut to maxAuditBytes,
// lists and maps to maxAuditEntries entries, each with a marker of what was
// left out. So no request records many times its own size.
func (g *gen) auditValue(s *shape, x string, member bool, depth int) string {
	switch s.Type {
	case "structure":
		return "b = " + x + ".AppendAuditJSON(b)"
	case "string":
		v := x
		switch {
		case len(s.Enum) > 0:
			v = "string(" + x + ")"
		case member:
			v = "*" + x
		}
		return "b = appendAuditString(b, " + v + ")"
	case "list":
		e := g.m.shape(s.Member.Shape)
		i := "i" + strconv.Itoa(depth)
		return "b = append(b, '[')\nfor " + i + " := range " + x + "[:min(len(" + x + "), maxAuditEntries)] {\nif " + i + " > 0 {\nb = append(b, ',')\n}\n" +
			g.auditValue(e, x+"["+i+"]", false, depth+1) + "\n}\n" +
			"if len(" + x + ") > maxAuditEntries {\nb = append(b, ',')\nb = appendString(b, \"...\"+auditMore(len(" + x + ")-maxAuditEntries))\n}\n" +
			"b = append(b, ']')"
	case "map":
		v := g.m.shape(s.Value.Shape)
		if v.Type == "structure" || v.Type == "list" && g.m.shape(v.Member.Shape).Type == "structure" {
			failf("map %s: structure values have no audit encoding yet", s.Name)
		}
		if v.Type == "string" && len(v.Enum) == 0 {
			return "b = appendAuditStringMap(b, " + x + ")"
		}
		k, kb, keys := "k"+strconv.Itoa(depth), "kb"+strconv.Itoa(depth), "keys"+strconv.Itoa(depth)
		return "b = append(b, '{')\nvar " + kb + " [8]string\n" + keys + " := sortedKeys(" + x + ", " + kb + "[:])\n" +
			"for n, " + k + " := range " + keys + "[:min(len(" + keys + "), maxAuditEntries)] {\nif n > 0 {\nb = append(b, ',')\n}\n" +
			"b = appendAuditString(b, " + k + ")\nb = append(b, ':')\n" + g.auditValue(v, x+"["+k+"]", false, depth+1) + "\n}\n" +
			"if len(" + keys + ") > maxAuditEntries {\nb = append(b, \",\\\"...\\\":\"...)\nb = appendString(b, auditMore(len(" + keys + ")-maxAuditEntries))\n}\n" +
			"b = append(b, '}')"
	}
	return g.encodeValue(s, false, x, member, depth)
}
