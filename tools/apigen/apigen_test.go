package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestGeneratedCodeIsCurrent regenerates both packages in memory and
// compares them with the committed files.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	root := filepath.Join("..", "..")
	for _, svc := range services {
		t.Run(svc.Package, func(t *testing.T) {
			files, err := generateService(root, svc)
			if err != nil {
				t.Fatalf("generate: %v", err)
			}
			outDir := filepath.Join(root, svc.Dir)
			for name, want := range files {
				got, err := os.ReadFile(filepath.Join(outDir, name))
				if err != nil {
					t.Errorf("generated code is stale: run go generate ./tools/apigen (%s: %v)", name, err)
					continue
				}
				if !bytes.Equal(got, want) {
					t.Errorf("generated code is stale: run go generate ./tools/apigen (%s/%s differs)", svc.Dir, name)
				}
			}
			onDisk, err := filepath.Glob(filepath.Join(outDir, "*_gen.go"))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range onDisk {
				if _, ok := files[filepath.Base(p)]; !ok {
					t.Errorf("generated code is stale: run go generate ./tools/apigen (%s is no longer generated)", p)
				}
			}
		})
	}
}

func TestEnumValueName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Enabled", "Enabled"},
		{"PendingDeletion", "PendingDeletion"},
		{"RSA_2048", "Rsa2048"},
		{"SYMMETRIC_DEFAULT", "SymmetricDefault"},
		{"created-date", "CreatedDate"},
		{"asc", "Asc"},
		{"ECC_NIST_P256", "EccNistP256"},
		{"aws/secretsmanager", "AwsSecretsmanager"},
	}
	for _, tt := range tests {
		if got := enumValueName(tt.in); got != tt.want {
			t.Errorf("enumValueName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestJavaToRE2(t *testing.T) {
	tests := []struct{ in, want string }{
		{`[\u0020-\u00FF]*`, `[\x{0020}-\x{00FF}]*`},
		{`^[a-z\\u]+$`, `^[a-z\\u]+$`},
		{`\d+\.\w`, `\d+\.\w`},
		{`\u12`, `\u12`},
	}
	for _, tt := range tests {
		if got := javaToRE2(tt.in); got != tt.want {
			t.Errorf("javaToRE2(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// testModel builds a small model with one operation whose input has the
// given extra shapes as members.
func testModel(members []member, shapes map[string]*shape) *model {
	m := &model{Shapes: map[string]*shape{}, Operations: map[string]*modelOperation{}}
	m.Metadata.ServiceID = "Test"
	m.Metadata.TargetPrefix = "Test"
	m.Metadata.EndpointPrefix = "test"
	m.Metadata.Protocol = "json"
	m.Shapes["DoRequest"] = &shape{Name: "DoRequest", Type: "structure", Members: members}
	m.Shapes["Str"] = &shape{Name: "Str", Type: "string"}
	m.Shapes["Oops"] = &shape{Name: "Oops", Type: "structure", Exception: true, Members: []member{{Name: "message", Shape: "Str"}}}
	m.Shapes["Boom"] = &shape{Name: "Boom", Type: "structure", Exception: true, Fault: true, Members: []member{{Name: "message", Shape: "Str"}}}
	for name, s := range shapes {
		s.Name = name
		m.Shapes[name] = s
	}
	m.Operations["Do"] = &modelOperation{Name: "Do", Input: &shapeRef{"DoRequest"}, Errors: []shapeRef{{"Oops"}}}
	return m
}

var testService = service{Package: "testapi", ServiceID: "Test", MaxBody: "1 << 10", MaxBodyDoc: "test",
	EventSource: "test.amazonaws.com", InternalErrorCode: "Boom", NoResponseElements: []string{"Do"}}

// TestGenerateFacts checks Facts() against the model: the signing name
// falls back to the endpoint prefix, and the generator refuses facts the
// model contradicts.
func TestGenerateFacts(t *testing.T) {
	files, err := generate(testModel(nil, nil), testService)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`TargetPrefix:      "Test"`, `SigningName:       "test"`, `EventSource:       "test.amazonaws.com"`,
		`MessageField:      "message"`, `InternalErrorCode: "Boom"`, `"Do",`} {
		if !strings.Contains(string(files["ops_gen.go"]), want) {
			t.Errorf("ops_gen.go lacks %s", want)
		}
	}
	tests := []struct {
		name string
		edit func(m *model, svc *service)
		want string
	}{
		{"message spelled two ways", func(m *model, _ *service) { m.Shapes["Boom"].Members[0].Name = "Message" }, "2 ways"},
		{"internal error not a fault", func(_ *model, svc *service) { svc.InternalErrorCode = "Oops" }, "not a fault"},
		{"unknown operation", func(_ *model, svc *service) { svc.NoResponseElements = []string{"Nope"} }, "not an operation"},
		{"no event source", func(_ *model, svc *service) { svc.EventSource = "" }, "no event source"},
		{"InternalFailure beside a fault", func(_ *model, svc *service) { svc.InternalErrorCode = "InternalFailure" }, "declares the fault Boom"},
		{"MessageField against the model", func(_ *model, svc *service) { svc.MessageField = "Message" }, `spell it "message"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, svc := testModel(nil, nil), testService
			tt.edit(m, &svc)
			if _, err := generate(m, svc); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("generate() error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestGenerateFactsWithoutMessageOrFault generates a model like botocore's
// CloudTrail: exceptions without members and no fault. The table's
// MessageField names the message member and AWS's common InternalFailure
// is the internal error.
func TestGenerateFactsWithoutMessageOrFault(t *testing.T) {
	m := testModel(nil, nil)
	m.Shapes["Oops"].Members = nil
	delete(m.Shapes, "Boom")
	svc := testService
	svc.InternalErrorCode, svc.MessageField = "InternalFailure", "Message"
	files, err := generate(m, svc)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`MessageField:      "Message"`, `InternalErrorCode: "InternalFailure"`,
		`"Oops": {Code: "Oops", Status: 400, Fault: false, MessageField: "Message"}`} {
		if !strings.Contains(string(files["ops_gen.go"]), want) {
			t.Errorf("ops_gen.go lacks %s", want)
		}
	}
	svc.MessageField = ""
	if _, err := generate(m, svc); err == nil || !strings.Contains(err.Error(), "0 ways") {
		t.Errorf("generate() without MessageField: error = %v, want one about 0 ways", err)
	}
}

// TestGenerateMapConstraints checks the validation of constrained map keys
// (an enum) and values (a length), reported once per map as AWS does.
func TestGenerateMapConstraints(t *testing.T) {
	m := testModel([]member{{Name: "Dims", Shape: "DimMap"}}, map[string]*shape{
		"DimKey": {Type: "string", Enum: []string{"A", "B"}},
		"DimVal": {Type: "string", Min: ptr(int64(1)), Max: ptr(int64(5))},
		"DimMap": {Type: "map", Key: &shapeRef{"DimKey"}, Value: &shapeRef{"DimVal"}},
	})
	files, err := generate(m, testService)
	if err != nil {
		t.Fatal(err)
	}
	src := string(files["validate_gen.go"])
	for _, want := range []string{"for k := range v.Dims", "!DimKey(k).valid()", `mapConstraint("keys"`,
		"for _, e := range v.Dims", `mapConstraint("value"`, `"Member must have length less than or equal to 5"`} {
		if !strings.Contains(src, want) {
			t.Errorf("validate_gen.go lacks %s:\n%s", want, src)
		}
	}
	if !strings.Contains(string(files["types_gen.go"]), "Dims map[string]string") {
		t.Errorf("types_gen.go: an enum-keyed map is not map[string]string")
	}
}

func TestGenerateRejects(t *testing.T) {
	tests := []struct {
		name    string
		members []member
		shapes  map[string]*shape
		want    string
	}{
		{
			name:    "map with a non-string key",
			members: []member{{Name: "M", Shape: "IntMap"}},
			shapes: map[string]*shape{
				"Int":    {Type: "integer"},
				"IntMap": {Type: "map", Key: &shapeRef{"Int"}, Value: &shapeRef{"Str"}},
			},
			want: "not a plain string",
		},
		{
			name:    "constraints on map values that are not strings",
			members: []member{{Name: "M", Shape: "LimitedMap"}},
			shapes: map[string]*shape{
				"Small":      {Type: "integer", Max: ptr(int64(3))},
				"LimitedMap": {Type: "map", Key: &shapeRef{"Str"}, Value: &shapeRef{"Small"}},
			},
			want: "constraints on integer keys or values",
		},
		{
			name:    "enum constant collides with a type",
			members: []member{{Name: "A", Shape: "Color"}, {Name: "B", Shape: "ColorRed"}},
			shapes: map[string]*shape{
				"Color":    {Type: "string", Enum: []string{"RED"}},
				"ColorRed": {Type: "structure"},
			},
			want: "identifier ColorRed",
		},
		{
			name:    "unknown shape",
			members: []member{{Name: "A", Shape: "Missing"}},
			want:    `unknown shape "Missing"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := generate(testModel(tt.members, tt.shapes), testService)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("generate() error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestGenerateSkipsNonRE2Pattern(t *testing.T) {
	m := testModel([]member{{Name: "A", Shape: "Look"}}, map[string]*shape{
		"Look": {Type: "string", Pattern: ptr(`(?=a)a+`)},
	})
	files, err := generate(m, testService)
	if err != nil {
		t.Fatalf("generate() error = %v", err)
	}
	src := string(files["validate_gen.go"])
	if !strings.Contains(src, "do not compile in Go's RE2") || !strings.Contains(src, "Look: (?=a)a+") {
		t.Errorf("validate_gen.go does not list the skipped pattern:\n%s", src)
	}
	if strings.Contains(src, "regexp.MustCompile") {
		t.Errorf("validate_gen.go compiles a skipped pattern:\n%s", src)
	}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	want := []string{"audit_gen.go", "decode_gen.go", "helpers_gen.go", "json_gen.go", "ops_gen.go", "types_gen.go", "validate_gen.go"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("generate() files = %v, want %v", names, want)
	}
	for _, n := range names {
		if !strings.HasPrefix(string(files[n]), "// Code generated by tools/apigen from botocore's Test model. DO NOT EDIT.\n") {
			t.Errorf("%s lacks the generated-code header", n)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestGeneratedDecoderNestedShapes generates a package whose input nests
// lists, maps and structures in ways the AWS models do not (yet), builds it
// into the module through a go build overlay, and runs a decode with it.
func TestGeneratedDecoderNestedShapes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go run")
	}
	m := testModel([]member{
		{Name: "Grid", Shape: "StrGrid"},
		{Name: "Items", Shape: "ItemList"},
		{Name: "Secret", Shape: "Blob", Sensitive: true},
		{Name: "Colors", Shape: "ColorList"},
		{Name: "Nums", Shape: "LongList"},
		{Name: "Lists", Shape: "ListMap"},
	}, map[string]*shape{
		"StrList":   {Type: "list", Member: &shapeRef{"Str"}},
		"StrGrid":   {Type: "list", Member: &shapeRef{"StrList"}},
		"Item":      {Type: "structure", Members: []member{{Name: "n", Shape: "Int"}, {Name: "On", Shape: "Bool"}, {Name: "Pw", Shape: "Pw"}}},
		"Int":       {Type: "integer"},
		"Bool":      {Type: "boolean"},
		"Pw":        {Type: "string", Sensitive: true},
		"ItemList":  {Type: "list", Member: &shapeRef{"Item"}},
		"Blob":      {Type: "blob"},
		"Color":     {Type: "string", Enum: []string{"RED"}},
		"ColorList": {Type: "list", Member: &shapeRef{"Color"}},
		"Long":      {Type: "long"},
		"LongList":  {Type: "list", Member: &shapeRef{"Long"}},
		"ListMap":   {Type: "map", Key: &shapeRef{"Str"}, Value: &shapeRef{"StrList"}},
	})
	files, err := generate(m, testService)
	if err != nil {
		t.Fatalf("generate() error = %v", err)
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	overlay := map[string]string{}
	add := func(path string, src []byte) {
		real := filepath.Join(tmp, strings.ReplaceAll(path, "/", "_"))
		if err := os.WriteFile(real, src, 0o644); err != nil {
			t.Fatal(err)
		}
		overlay[filepath.Join(root, path)] = real
	}
	for name, src := range files {
		add("internal/apigentestpkg/"+name, src)
	}
	add("internal/apigentestpkg/main/main.go", []byte(`package main

import (
	"fmt"

	"github.com/keyfort/keyfort/internal/apigentestpkg"
)

func main() {
	var in testapi.DoInput
	err := in.UnmarshalAWSJSON([]byte(`+"`"+`{"Grid":[["a"],[]],"Items":[{"n":1,"On":true,"Pw":"p"},{}],`+
		`"Secret":"aGk=","Colors":["RED"],"Nums":[-9],"Lists":{"k":["v"]},"Other":null}`+"`"+`))
	fmt.Printf("%v %q %d %v %v %d %q %v %v %v\n", err, in.Grid, *in.Items[0].N, *in.Items[0].On, in.Items[0].Pw.Reveal() == "p",
		len(in.Items), in.Secret.Reveal(), in.Colors, in.Nums, in.Lists)
	err = in.UnmarshalAWSJSON([]byte(`+"`"+`{"Lists":{"x":[],"x":[]}}`+"`"+`))
	fmt.Println(err)
	err = in.UnmarshalAWSJSON([]byte(`+"`"+`{"Items":[{"n":1,"n":2}]}`+"`"+`))
	fmt.Println(err)
}
`))
	ov, err := json.Marshal(map[string]any{"Replace": overlay})
	if err != nil {
		t.Fatal(err)
	}
	ovPath := filepath.Join(tmp, "overlay.json")
	if err := os.WriteFile(ovPath, ov, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "run", "-overlay", ovPath, "./internal/apigentestpkg/main")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run: %v\n%s", err, out)
	}
	want := `<nil> [["a"] []] 1 true true 2 "hi" [RED] [-9] map[k:[v]]
Duplicate key in map 'Lists'
Duplicate field 'n'
`
	if string(out) != want {
		t.Errorf("generated decoder printed\n%s\nwant\n%s", out, want)
	}
}

func TestStripModel(t *testing.T) {
	in := `{"b":1,"documentation":"<p>prose</p>","a":{"documentation":{"x":[1]},"pattern":"^[<>&]+$","z":[true,null,1.50,{"documentationUrl":"u","k":"v"}]}}`
	want := "{\n \"b\": 1,\n \"a\": {\n  \"pattern\": \"^[<>&]+$\",\n  \"z\": [\n   true,\n   null,\n   1.50,\n   {\n    \"k\": \"v\"\n   }\n  ]\n }\n}\n"
	got, err := stripModel([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("stripModel = %q, want %q", got, want)
	}
	for _, bad := range []string{`{"a":1} {}`, `{"a":`, `[1,]`} {
		if _, err := stripModel([]byte(bad)); err == nil {
			t.Errorf("stripModel(%q) succeeded, want an error", bad)
		}
	}
}

// TestPinnedModels checks that every model the generator reads is pinned,
// stripped as -update-models writes it, with the botocore version recorded.
func TestPinnedModels(t *testing.T) {
	root := filepath.Join("..", "..")
	v, err := os.ReadFile(filepath.Join(root, modelsDir, versionFile))
	if err != nil || !regexp.MustCompile(`^\d+\.\d+\.\d+\n$`).Match(v) {
		t.Errorf("%s/%s = %q (%v), want a botocore version", modelsDir, versionFile, v, err)
	}
	for _, svc := range services {
		p := pinnedModelPath(root, svc.Model, svc.Version)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("pinned model: %v", err)
		}
		again, err := stripModel(data)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if !bytes.Equal(again, data) {
			t.Errorf("%s is not as -update-models writes it", p)
		}
		if bytes.Contains(data, []byte(`"documentation"`)) {
			t.Errorf("%s keeps documentation", p)
		}
	}
}

// TestGenerateAuditDefaults: a member named in AuditDefaults is recorded
// with its default when the request leaves it out, and a default naming a
// member the model does not have stops the generator.
func TestGenerateAuditDefaults(t *testing.T) {
	svc := testService
	svc.AuditDefaults = map[string]map[string]string{"DoInput": {"Algo": "PLAIN"}}
	files, err := generate(testModel([]member{{Name: "Algo", Shape: "Str"}}, nil), svc)
	if err != nil {
		t.Fatal(err)
	}
	if src := string(files["audit_gen.go"]); !strings.Contains(src, "`\"algo\":\"PLAIN\"`") {
		t.Errorf("audit_gen.go does not record the default:\n%s", src)
	}
	svc.AuditDefaults = map[string]map[string]string{"DoInput": {"Missing": "x"}}
	if _, err := generate(testModel([]member{{Name: "Algo", Shape: "Str"}}, nil), svc); err == nil || !strings.Contains(err.Error(), "audit defaults name 1") {
		t.Errorf("generate with a default for a missing member: error = %v", err)
	}
}
