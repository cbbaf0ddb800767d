package main

import (
	"fmt"
	"strings"
)

// genTypes writes the structure types, the enum types with their constants
// and Values, and UnmarshalJSON for structures with timestamp members.
func (g *gen) genTypes(w *writer) {
	for _, st := range g.structs {
		switch st.Role {
		case "input":
			w.p("// %s is the input of the %s operation.", st.Name, st.Op)
		case "output":
			w.p("// %s is the output of the %s operation.", st.Name, st.Op)
		default:
			w.p("// %s is the %s structure of the %s model.", st.Name, st.Shape.Name, g.m.Metadata.ServiceID)
		}
		if len(st.Shape.Members) == 0 {
			w.p("type %s struct{}", st.Name)
			w.p("")
			continue
		}
		w.p("type %s struct {", st.Name)
		for _, mem := range st.Shape.Members {
			ms := g.m.shape(mem.Shape)
			comment := ""
			if st.Shape.isRequired(mem.Name) {
				comment = " // required"
			}
			w.p("\t%s %s `json:%q`%s", fieldName(mem.Name), g.goType(ms, mem.Sensitive), mem.Name+",omitempty", comment)
		}
		w.p("}")
		w.p("")
		g.genUnmarshal(w, st)
	}
	for _, e := range g.enums {
		w.p("// %s is an enum of the %s model; the empty value means absent.", e.Name, g.m.Metadata.ServiceID)
		w.p("type %s string", e.Name)
		w.p("")
		w.p("// Values of %s.", e.Name)
		w.p("const (")
		for _, v := range e.Enum {
			w.p("\t%s %s = %q", g.enumConsts[e.Name][v], e.Name, v)
		}
		w.p(")")
		w.p("")
		w.p("// Values returns every value of %s, in model order.", e.Name)
		w.p("func (%s) Values() []%s {", e.Name, e.Name)
		w.p("\treturn []%s{", e.Name)
		for _, v := range e.Enum {
			w.p("\t\t%s,", g.enumConsts[e.Name][v])
		}
		w.p("\t}")
		w.p("}")
		w.p("")
	}
}

// genUnmarshal writes UnmarshalJSON for a structure with timestamp members,
// which AWS JSON sends as epoch seconds.
func (g *gen) genUnmarshal(w *writer, st *goStruct) {
	var stamps []string
	for _, mem := range st.Shape.Members {
		if g.m.shape(mem.Shape).Type == "timestamp" {
			stamps = append(stamps, fieldName(mem.Name))
		}
	}
	if len(stamps) == 0 {
		return
	}
	names := make([]string, len(stamps))
	for i, f := range stamps {
		names[i] = f
		for _, mem := range st.Shape.Members {
			if fieldName(mem.Name) == f {
				names[i] = mem.Name
			}
		}
	}
	w.p("// UnmarshalJSON decodes v from JSON, accepting timestamps as epoch seconds")
	w.p("// (a JSON number, possibly fractional) or as RFC 3339 strings.")
	w.p("func (v *%s) UnmarshalJSON(b []byte) error {", st.Name)
	w.p("\ttype plain %s", st.Name)
	w.p("\taux := struct {")
	w.p("\t\t*plain")
	for i, f := range stamps {
		w.p("\t\t%s *epochTime `json:%q`", f, names[i]+",omitempty")
	}
	w.p("\t}{plain: (*plain)(v)}")
	w.p("\tif err := json.Unmarshal(b, &aux); err != nil {")
	w.p("\t\treturn err")
	w.p("\t}")
	for _, f := range stamps {
		w.p("\tif aux.%s != nil {", f)
		w.p("\t\tt := time.Time(*aux.%s)", f)
		w.p("\t\tv.%s = &t", f)
		w.p("\t}")
	}
	w.p("\treturn nil")
	w.p("}")
	w.p("")
}

// quoteList renders enum values as AWS does in messages: [A, B, C].
func quoteList(values []string) string {
	return fmt.Sprintf("[%s]", strings.Join(values, ", "))
}
