package keyforttest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestAPIShowsNoInternalType checks that the exported API (functions,
// methods, exported fields and constants' types) names only this package's
// types, the standard library's and aws-sdk-go-v2's: users cannot name
// Keyfort's internal packages, and the API must stay stable without them.
func TestAPIShowsNoInternalType(t *testing.T) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		imports := map[string]string{} // local name -> path
		for _, spec := range f.Imports {
			path, _ := strconv.Unquote(spec.Path.Value)
			local := path[strings.LastIndex(path, "/")+1:]
			if spec.Name != nil {
				local = spec.Name.Name
			}
			imports[local] = path
		}
		check := func(where string, n ast.Node) {
			if n == nil {
				return
			}
			ast.Inspect(n, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				id, ok := sel.X.(*ast.Ident)
				if !ok {
					return true
				}
				path := imports[id.Name]
				if strings.Contains(path, ".") && !strings.HasPrefix(path, "github.com/aws/aws-sdk-go-v2/") {
					t.Errorf("%s: %s shows %s.%s (%s): the API may show only its own, the standard library's and aws-sdk-go-v2's types",
						name, where, id.Name, sel.Sel.Name, path)
				}
				return false
			})
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Name.IsExported() && (d.Recv == nil || isExportedRecv(d.Recv)) {
					check(d.Name.Name, d.Type)
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.TypeSpec:
						if !s.Name.IsExported() {
							continue
						}
						if st, ok := s.Type.(*ast.StructType); ok {
							for _, field := range st.Fields.List {
								for _, fn := range field.Names {
									if fn.IsExported() {
										check(s.Name.Name+"."+fn.Name, field.Type)
									}
								}
							}
						} else {
							check(s.Name.Name, s.Type)
						}
					case *ast.ValueSpec:
						for i, n := range s.Names {
							if n.IsExported() {
								check(n.Name, s.Type)
								if i < len(s.Values) {
									check(n.Name, s.Values[i])
								}
							}
						}
					}
				}
			}
		}
	}
}

func isExportedRecv(recv *ast.FieldList) bool {
	typ := recv.List[0].Type
	if star, ok := typ.(*ast.StarExpr); ok {
		typ = star.X
	}
	id, ok := typ.(*ast.Ident)
	return ok && id.IsExported()
}
