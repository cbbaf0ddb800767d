package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// gen holds the state of generating one package from one model.
type gen struct {
	m   *model
	svc service

	// structs are the Go structure types, sorted by Go name.
	structs []*goStruct
	// structName maps a non-operation structure shape to its Go name.
	structName map[string]string
	// enums are the enum shapes reachable from an operation, sorted by name.
	enums []*shape
	// enumConsts maps an enum shape and value to its constant name.
	enumConsts map[string]map[string]string
	// validated marks structures (Go names) reachable from an input.
	validated map[string]bool
	// encoded marks structures (Go names) reachable from an output.
	encoded map[string]bool
	// validEnums marks enum shapes checked by validation.
	validEnums map[string]bool
	// patterns maps a string shape to its compiled-pattern variable, for
	// patterns checked by validation; skipped lists those RE2 rejects.
	patterns map[string]string
	skipped  []string
	// names holds every exported identifier, to catch collisions.
	names map[string]string
}

// goStruct is one generated structure type.
type goStruct struct {
	Name  string // Go type name
	Shape *shape
	Op    string // operation name for inputs and outputs
	Role  string // "input", "output" or "" for other structures
}

// reserved are exported identifiers generated besides the model's shapes.
var reserved = []string{"Service", "UnimplementedService", "Operations", "Errors", "TargetPrefix", "ServiceID", "MaxBody"}

// generate returns the generated files of svc from m, by base name.
func generate(m *model, svc service) (files map[string][]byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			ge, ok := r.(genError)
			if !ok {
				panic(r)
			}
			files, err = nil, fmt.Errorf("generate %s: %w", svc.Package, ge.err)
		}
	}()
	g := &gen{
		m: m, svc: svc,
		structName: map[string]string{},
		enumConsts: map[string]map[string]string{},
		validated:  map[string]bool{},
		encoded:    map[string]bool{},
		validEnums: map[string]bool{},
		patterns:   map[string]string{},
		names:      map[string]string{},
	}
	g.collect()
	files = map[string][]byte{}
	var all bytes.Buffer
	for _, part := range []struct {
		name string
		body func(w *writer)
	}{
		{"types_gen.go", g.genTypes},
		{"validate_gen.go", g.genValidate},
		{"json_gen.go", g.genJSON},
		{"decode_gen.go", g.genDecode},
		{"audit_gen.go", g.genAudit},
		{"ops_gen.go", g.genOps},
		{"helpers_gen.go", func(w *writer) { genHelpers(w, all.Bytes()) }},
	} {
		w := &writer{}
		part.body(w)
		all.Write(w.Bytes())
		src, err := w.source(m.Metadata.ServiceID, svc.Package)
		if err != nil {
			return nil, fmt.Errorf("generate %s/%s: %w", svc.Package, part.name, err)
		}
		files[part.name] = src
	}
	return files, nil
}

// claim registers an exported identifier and fails on a collision.
func (g *gen) claim(name, what string) {
	if !token.IsExported(name) || !token.IsIdentifier(name) {
		failf("%s: %q is not an exported Go identifier", what, name)
	}
	if prev, ok := g.names[name]; ok {
		failf("identifier %s is used by %s and %s", name, prev, what)
	}
	g.names[name] = what
}

// collect walks the model from the operations, names the types and marks
// what needs validation and encoding.
func (g *gen) collect() {
	for _, r := range reserved {
		g.claim(r, "the generator")
	}
	opShapes := map[string]bool{}
	for _, op := range g.m.Operations {
		if op.Input != nil {
			opShapes[op.Input.Shape] = true
		}
		if op.Output != nil {
			opShapes[op.Output.Shape] = true
		}
	}
	// Operation inputs and outputs, one Go type per operation and role, so a
	// shape shared by two operations (ListGrantsResponse) yields two types.
	for _, name := range g.m.operationNames() {
		op := g.m.Operations[name]
		for _, role := range []string{"input", "output"} {
			ref := op.Input
			suffix := "Input"
			if role == "output" {
				ref, suffix = op.Output, "Output"
			}
			s := &shape{Name: name + suffix, Type: "structure"}
			if ref != nil {
				s = g.m.shape(ref.Shape)
				if s.Type != "structure" {
					failf("operation %s: %s shape %s is a %s", name, role, s.Name, s.Type)
				}
			}
			st := &goStruct{Name: name + suffix, Shape: s, Op: name, Role: role}
			g.claim(st.Name, "operation "+name)
			g.structs = append(g.structs, st)
		}
	}
	// Other shapes reachable from operations.
	seen := map[string]bool{}
	var walk func(name string)
	walk = func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		s := g.m.shape(name)
		switch s.Type {
		case "structure":
			if s.Exception {
				failf("exception shape %s is used as a member", name)
			}
			if !opShapes[name] {
				g.structName[name] = name
			}
			for _, mem := range s.Members {
				if opShapes[mem.Shape] {
					failf("operation shape %s is used as a member of %s", mem.Shape, name)
				}
				walk(mem.Shape)
			}
		case "list":
			walk(s.Member.Shape)
		case "map":
			walk(s.Key.Shape)
			walk(s.Value.Shape)
		case "string":
			if len(s.Enum) > 0 {
				g.enums = append(g.enums, s)
			}
		}
	}
	for _, name := range g.m.operationNames() {
		op := g.m.Operations[name]
		for _, ref := range []*shapeRef{op.Input, op.Output} {
			if ref != nil {
				seen[ref.Shape] = true
				for _, mem := range g.m.shape(ref.Shape).Members {
					walk(mem.Shape)
				}
			}
		}
	}
	// Non-operation structures keep their model name unless it collides.
	names := make([]string, 0, len(g.structName))
	for n := range g.structName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		goName := n
		if _, taken := g.names[goName]; taken || !token.IsExported(goName) {
			goName = exportName(n) + "Shape"
		}
		g.structName[n] = goName
		g.claim(goName, "structure "+n)
		g.structs = append(g.structs, &goStruct{Name: goName, Shape: g.m.shape(n)})
	}
	sort.Slice(g.structs, func(i, j int) bool { return g.structs[i].Name < g.structs[j].Name })
	sort.Slice(g.enums, func(i, j int) bool { return g.enums[i].Name < g.enums[j].Name })
	for _, e := range g.enums {
		g.claim(e.Name, "enum "+e.Name)
		consts := map[string]string{}
		for _, v := range e.Enum {
			c := e.Name + enumValueName(v)
			g.claim(c, fmt.Sprintf("enum %s value %q", e.Name, v))
			consts[v] = c
		}
		g.enumConsts[e.Name] = consts
	}
	// Reachability for validation and encoding.
	for _, st := range g.structs {
		switch st.Role {
		case "input":
			g.markValidated(st.Name, st.Shape)
		case "output":
			g.markEncoded(st.Name, st.Shape)
		}
	}
	// Field names must not clash with the methods the generator adds.
	for _, st := range g.structs {
		for _, mem := range st.Shape.Members {
			switch fieldName(mem.Name) {
			case "Validate", "AppendJSON", "UnmarshalJSON", "DecodeJSON", "UnmarshalAWSJSON":
				failf("structure %s: member %s clashes with a generated method", st.Name, mem.Name)
			}
		}
	}
}

// markValidated marks a structure reachable from an input, with the enums
// and patterns its members check.
func (g *gen) markValidated(goName string, s *shape) {
	if g.validated[goName] {
		return
	}
	g.validated[goName] = true
	for _, mem := range s.Members {
		g.markValidatedShape(g.m.shape(mem.Shape))
	}
}

func (g *gen) markValidatedShape(s *shape) {
	switch s.Type {
	case "structure":
		g.markValidated(g.structName[s.Name], s)
	case "list":
		g.markValidatedShape(g.m.shape(s.Member.Shape))
	case "map":
		k, v := g.m.shape(s.Key.Shape), g.m.shape(s.Value.Shape)
		for _, e := range []*shape{k, v} {
			if e.Type != "string" && hasConstraints(e) {
				failf("map %s: constraints on %s keys or values are not supported", s.Name, e.Type)
			}
			g.markValidatedShape(e)
		}
	case "string":
		if len(s.Enum) > 0 {
			g.validEnums[s.Name] = true
		}
		if s.Pattern != nil {
			g.addPattern(s)
		}
	}
}

// markEncoded marks a structure reachable from an output.
func (g *gen) markEncoded(goName string, s *shape) {
	if g.encoded[goName] {
		return
	}
	g.encoded[goName] = true
	for _, mem := range s.Members {
		g.markEncodedShape(g.m.shape(mem.Shape))
	}
}

func (g *gen) markEncodedShape(s *shape) {
	switch s.Type {
	case "structure":
		g.markEncoded(g.structName[s.Name], s)
	case "list":
		g.markEncodedShape(g.m.shape(s.Member.Shape))
	case "map":
		g.markEncodedShape(g.m.shape(s.Value.Shape))
	}
}

// hasConstraints reports whether validating a value of s checks anything
// besides presence.
func hasConstraints(s *shape) bool {
	switch s.Type {
	case "structure":
		return true // checked by its own validate method
	case "list", "map":
		return s.Min != nil && *s.Min > 0 || s.Max != nil
	}
	return s.Min != nil && *s.Min > 0 || s.Max != nil || len(s.Enum) > 0 || s.Pattern != nil
}

// addPattern compiles the pattern of a string shape for validation. Java
// regular expressions are translated where RE2 spells the same thing
// differently (\uXXXX); a pattern RE2 cannot compile is skipped and listed.
func (g *gen) addPattern(s *shape) {
	if _, ok := g.patterns[s.Name]; ok {
		return
	}
	for _, sk := range g.skipped {
		if sk == s.Name {
			return
		}
	}
	re := "^(?:" + javaToRE2(*s.Pattern) + ")$"
	if _, err := regexp.Compile(re); err != nil {
		g.skipped = append(g.skipped, s.Name)
		sort.Strings(g.skipped)
		return
	}
	g.patterns[s.Name] = "pattern" + exportName(s.Name)
}

// javaToRE2 rewrites Java-only escapes: \uXXXX becomes \x{XXXX}.
func javaToRE2(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c != '\\' || i+1 >= len(p) {
			b.WriteByte(c)
			continue
		}
		next := p[i+1]
		if next == 'u' && i+6 <= len(p) && isHex(p[i+2:i+6]) {
			b.WriteString(`\x{` + p[i+2:i+6] + `}`)
			i += 5
			continue
		}
		b.WriteByte(c)
		b.WriteByte(next)
		i++
	}
	return b.String()
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// exportName returns s with an upper-case first letter.
func exportName(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// fieldName returns the Go field name of a member: the model's spelling,
// with the first letter upper-cased if needed so the field is exported
// (which also avoids Go keywords, all lower case).
func fieldName(member string) string {
	name := exportName(member)
	if !token.IsIdentifier(name) {
		failf("member %q is not a Go identifier", member)
	}
	return name
}

// enumValueName turns an enum value into the SDK-style suffix of its
// constant: words split at non-alphanumerics, each capitalized; an
// all-caps word is lower-cased after its first letter (RSA_2048 -> Rsa2048,
// created-date -> CreatedDate, PendingDeletion stays).
func enumValueName(v string) string {
	words := strings.FieldsFunc(v, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
	})
	var b strings.Builder
	for _, w := range words {
		if strings.ToUpper(w) == w {
			w = strings.ToLower(w)
		}
		b.WriteString(exportName(w))
	}
	if b.Len() == 0 {
		failf("enum value %q has no letters or digits", v)
	}
	return b.String()
}

// goType returns the Go type of a structure member of shape s.
func (g *gen) goType(s *shape, sensitive bool) string {
	switch s.Type {
	case "string":
		if len(s.Enum) > 0 {
			return s.Name
		}
		if sensitive || s.Sensitive {
			return "*sensitive.String"
		}
		return "*string"
	case "integer":
		return "*int32"
	case "long":
		return "*int64"
	case "double":
		return "*float64"
	case "float":
		return "*float32"
	case "boolean":
		return "*bool"
	case "timestamp":
		return "*time.Time"
	case "blob", "list", "map":
		return g.elemType(s, sensitive)
	case "structure":
		return "*" + g.structName[s.Name]
	}
	failf("shape %s: unsupported type %q", s.Name, s.Type)
	return ""
}

// elemType returns the Go type of a list element or map value of shape s:
// values, not pointers.
func (g *gen) elemType(s *shape, sensitive bool) string {
	switch s.Type {
	case "string":
		if len(s.Enum) > 0 {
			return s.Name
		}
		if sensitive || s.Sensitive {
			return "sensitive.String"
		}
		return "string"
	case "integer":
		return "int32"
	case "long":
		return "int64"
	case "boolean":
		return "bool"
	case "double":
		return "float64"
	case "float":
		return "float32"
	case "timestamp":
		return "time.Time"
	case "blob":
		if sensitive || s.Sensitive {
			return "sensitive.Bytes"
		}
		return "[]byte"
	case "list":
		return "[]" + g.elemType(g.m.shape(s.Member.Shape), false)
	case "map":
		k := g.m.shape(s.Key.Shape)
		if k.Type != "string" || k.Sensitive { // enum keys are strings checked by validation
			failf("map %s: key shape %s is not a plain string", s.Name, k.Name)
		}
		return "map[string]" + g.elemType(g.m.shape(s.Value.Shape), false)
	case "structure":
		return g.structName[s.Name]
	}
	failf("shape %s: unsupported type %q", s.Name, s.Type)
	return ""
}

// isSensitive reports whether a member's value must not be echoed.
func isSensitive(mem member, s *shape) bool { return mem.Sensitive || s.Sensitive }

// goString returns a Go literal for s, raw when possible for readability.
func goString(s string) string {
	if strconv.CanBackquote(s) {
		return "`" + s + "`"
	}
	return strconv.Quote(s)
}

// writer accumulates Go source.
type writer struct{ bytes.Buffer }

// p writes one formatted line.
func (w *writer) p(format string, args ...any) {
	fmt.Fprintf(w, format, args...)
	w.WriteByte('\n')
}

// imports that generated code may use, found by their selector in the body.
var knownImports = []struct{ name, path string }{
	{"base64", "encoding/base64"},
	{"context", "context"},
	{"errors", "errors"},
	{"fmt", "fmt"},
	{"json", "encoding/json"},
	{"maps", "maps"},
	{"math", "math"},
	{"regexp", "regexp"},
	{"slices", "slices"},
	{"strconv", "strconv"},
	{"strings", "strings"},
	{"time", "time"},
	{"utf8", "unicode/utf8"},
	{"awserr", "github.com/keyfort/keyfort/internal/awserr"},
	{"jsonread", "github.com/keyfort/keyfort/internal/jsonread"},
	{"operation", "github.com/keyfort/keyfort/internal/operation"},
	{"sensitive", "github.com/keyfort/keyfort/internal/sensitive"},
}

// source returns the gofmt'd file with its header and the imports the body
// uses.
func (w *writer) source(serviceID, pkg string) ([]byte, error) {
	body := w.String()
	var out bytes.Buffer
	fmt.Fprintf(&out, "// Code generated by tools/apigen from botocore's %s model. DO NOT EDIT.\n\n", serviceID)
	fmt.Fprintf(&out, "package %s\n\n", pkg)
	imps, err := usedImports(pkg, body)
	if err != nil {
		return nil, fmt.Errorf("parse: %w\n%s", err, numbered(body))
	}
	if len(imps) > 0 {
		out.WriteString("import (\n")
		for i, p := range imps {
			if i > 0 && !strings.Contains(imps[i-1], ".") && strings.Contains(p, ".") {
				out.WriteString("\n") // standard library first, then the module
			}
			fmt.Fprintf(&out, "\t%q\n", p)
		}
		out.WriteString(")\n\n")
	}
	out.WriteString(body)
	src, err := format.Source(out.Bytes())
	if err != nil {
		return nil, fmt.Errorf("gofmt: %w\n%s", err, numbered(out.String()))
	}
	return src, nil
}

// usedImports returns the import paths of knownImports whose package name
// the body uses as a selector (pkg.Name), found by parsing the body.
func usedImports(pkg, body string) ([]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), "", "package "+pkg+"\n"+body, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok {
				used[id.Name] = true
			}
		}
		return true
	})
	var imps []string
	for _, imp := range knownImports {
		if used[imp.name] {
			imps = append(imps, imp.path)
		}
	}
	return imps, nil
}

// numbered prefixes lines with their numbers, to debug generated code.
func numbered(s string) string {
	var b strings.Builder
	for i, line := range strings.Split(s, "\n") {
		fmt.Fprintf(&b, "%5d %s\n", i+1, line)
	}
	return b.String()
}
