package jsonread_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/jsonread"
)

// tag and input are decoded by hand here as tools/apigen generates it.
type tag struct {
	Key   *string
	Value *string
}

func (v *tag) decode(d *jsonread.Decoder) {
	var seen uint64
	for more := d.BeginStruct(); more; more = d.NextMember() {
		switch string(d.Name()) {
		case "Key":
			if d.Seen(&seen, 0) || d.Null() {
				continue
			}
			s := d.String()
			v.Key = &s
		case "Value":
			if d.Seen(&seen, 1) || d.Null() {
				continue
			}
			s := d.String()
			v.Value = &s
		default:
			d.Skip()
		}
	}
}

type input struct {
	S      *string
	I      *int32
	L      *int64
	B      *bool
	Blob   []byte
	T      *time.Time
	List   []string
	Map    map[string]string
	Tags   []tag
	Nested *tag
}

func (v *input) decode(d *jsonread.Decoder) {
	var seen uint64
	for more := d.BeginStruct(); more; more = d.NextMember() {
		switch string(d.Name()) {
		case "S":
			if d.Seen(&seen, 0) || d.Null() {
				continue
			}
			s := d.String()
			v.S = &s
		case "I":
			if d.Seen(&seen, 1) || d.Null() {
				continue
			}
			n := d.Int32()
			v.I = &n
		case "L":
			if d.Seen(&seen, 2) || d.Null() {
				continue
			}
			n := d.Int64()
			v.L = &n
		case "B":
			if d.Seen(&seen, 3) || d.Null() {
				continue
			}
			b := d.Bool()
			v.B = &b
		case "Blob":
			if d.Seen(&seen, 4) || d.Null() {
				continue
			}
			v.Blob = d.Blob()
		case "T":
			if d.Seen(&seen, 5) || d.Null() {
				continue
			}
			t := d.Time()
			v.T = &t
		case "List":
			if d.Seen(&seen, 6) || d.Null() {
				continue
			}
			l := []string{}
			for more := d.BeginList(); more; more = d.NextElem() {
				l = append(l, d.String())
			}
			v.List = l
		case "Map":
			if d.Seen(&seen, 7) || d.Null() {
				continue
			}
			m := map[string]string{}
			for more := d.BeginMap(); more; more = d.NextMember() {
				k := d.Key()
				if _, dup := m[k]; dup {
					d.DuplicateKey("Map")
					break
				}
				m[k] = d.String()
			}
			v.Map = m
		case "Tags":
			if d.Seen(&seen, 8) || d.Null() {
				continue
			}
			l := []tag{}
			for more := d.BeginList(); more; more = d.NextElem() {
				var e tag
				e.decode(d)
				l = append(l, e)
			}
			v.Tags = l
		case "Nested":
			if d.Seen(&seen, 9) || d.Null() {
				continue
			}
			v.Nested = new(tag)
			v.Nested.decode(d)
		default:
			d.Skip()
		}
	}
}

func decode(body string) (*input, error) {
	var in input
	d := jsonread.NewDecoder([]byte(body))
	in.decode(&d)
	return &in, d.Finish()
}

func ptr[T any](v T) *T { return &v }

func TestDecodeAccepts(t *testing.T) {
	tests := []struct {
		name string
		body string
		want input
	}{
		{name: "empty object", body: `{}`},
		{name: "whitespace", body: " \t\r\n{ \"S\" : \"x\" } \n", want: input{S: ptr("x")}},
		{name: "all types", body: `{"S":"é✓😀","I":-2147483648,"L":9223372036854775807,"B":true,"Blob":"aGk=","T":1700000000.5,` +
			`"List":["a",""],"Map":{"k":"v","":""},"Tags":[{"Key":"a","Value":"b"},{}],"Nested":{"Key":"n"}}`,
			want: input{S: ptr("é✓😀"), I: ptr(int32(-1 << 31)), L: ptr(int64(1<<63 - 1)), B: ptr(true), Blob: []byte("hi"),
				T: ptr(time.Unix(1700000000, 5e8).UTC()), List: []string{"a", ""}, Map: map[string]string{"k": "v", "": ""},
				Tags: []tag{{Key: ptr("a"), Value: ptr("b")}, {}}, Nested: &tag{Key: ptr("n")}}},
		{name: "null member is absent", body: `{"S":null,"I":null,"B":null,"Blob":null,"List":null,"Map":null,"Tags":null,"Nested":null,"T":null}`},
		{name: "empty containers are not absent", body: `{"List":[],"Map":{},"Tags":[],"Blob":""}`,
			want: input{List: []string{}, Map: map[string]string{}, Tags: []tag{}, Blob: []byte{}}},
		{name: "unknown members skipped", body: `{"Other":{"a":[1,-2.5e+3,true,false,null,"x\u00e9",{}]},"s":"case differs","S":"x","SS":[]}`,
			want: input{S: ptr("x")}},
		{name: "escapes", body: `{"S":"\"\\\/\b\f\n\r\t\u0000\u00e9\uD83D\uDE00"}`, want: input{S: ptr("\"\\/\b\f\n\r\t\x00é😀")}},
		{name: "escaped member name matches", body: `{"\u0053":"x"}`, want: input{S: ptr("x")}},
		{name: "escaped blob", body: `{"Blob":"aGk\u003d"}`, want: input{Blob: []byte("hi")}},
		{name: "integral decimal", body: `{"I":1.0,"L":12e2}`, want: input{I: ptr(int32(1)), L: ptr(int64(1200))}},
		{name: "integral decimal spellings", body: `{"I":700e-2,"L":-0.000}`, want: input{I: ptr(int32(7)), L: ptr(int64(0))}},
		{name: "zero with a large exponent", body: `{"I":0e999999999999}`, want: input{I: ptr(int32(0))}},
		{name: "int64 minimum", body: `{"L":-9223372036854775808}`, want: input{L: ptr(int64(-1 << 63))}},
		{name: "false", body: `{"B":false}`, want: input{B: ptr(false)}},
		{name: "timestamp", body: `{"T":-1.000000001000}`, want: input{T: ptr(time.Unix(-1, -1).UTC())}},
		{name: "timestamp integer", body: `{"T":0}`, want: input{T: ptr(time.Unix(0, 0).UTC())}},
		{name: "deep unknown member", body: `{"x":` + strings.Repeat("[", 99) + strings.Repeat("]", 99) + `}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decode(tt.body)
			if err != nil {
				t.Fatalf("decode(%q) = %v, want success", tt.body, err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("decode(%q) = %+v, want %+v", tt.body, *got, tt.want)
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		kind    jsonread.Kind
		message string
	}{
		// The body.
		{"empty", ``, jsonread.Syntax, "Malformed JSON in request body: unexpected end of input"},
		{"null body", `null`, jsonread.Null, "Request body must be a JSON object"},
		{"string body", `"x"`, jsonread.Type, "Request body must be a JSON object"},
		{"array body", `[]`, jsonread.Type, "Start of list found where not expected"},
		{"garbage", `hello`, jsonread.Syntax, "Malformed JSON in request body at byte offset 0"},
		{"trailing data", `{} {}`, jsonread.Syntax, "Malformed JSON in request body at byte offset 3"},
		{"trailing comma", `{"S":"x",}`, jsonread.Syntax, "Malformed JSON in request body at byte offset 9"},
		{"missing colon", `{"S" "x"}`, jsonread.Syntax, "Malformed JSON in request body at byte offset 5"},
		{"unterminated", `{"S":"x`, jsonread.Syntax, "Malformed JSON in request body: unexpected end of input"},
		{"truncated", `{"S":`, jsonread.Syntax, "Malformed JSON in request body: unexpected end of input"},
		{"bad literal", `{"x":nul}`, jsonread.Syntax, "Malformed JSON in request body at byte offset 8"},
		{"bad number", `{"x":01}`, jsonread.Syntax, "Malformed JSON in request body at byte offset 6"},
		{"bad number in member", `{"I":-}`, jsonread.Syntax, "Malformed JSON in request body at byte offset 5"},
		{"too deep", `{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, jsonread.Depth, "Request body nests deeper than 100 levels"},
		// Names and duplicates.
		{"duplicate member", `{"S":"a","S":"b"}`, jsonread.Duplicate, "Duplicate field 'S'"},
		{"duplicate null member", `{"S":null,"S":"b"}`, jsonread.Duplicate, "Duplicate field 'S'"},
		{"duplicate escaped member", `{"S":"a","\u0053":"b"}`, jsonread.Duplicate, "Duplicate field 'S'"},
		{"duplicate nested member", `{"Tags":[{"Key":"a","Key":"a"}]}`, jsonread.Duplicate, "Duplicate field 'Key'"},
		{"duplicate map key", `{"Map":{"k":"a","k":"b"}}`, jsonread.Duplicate, "Duplicate key in map 'Map'"},
		// Wrong types.
		{"number for string", `{"S":12}`, jsonread.Type, "NUMBER_VALUE can not be converted to a String"},
		{"decimal for string", `{"S":1.5}`, jsonread.Type, "DECIMAL_VALUE can not be converted to a String"},
		{"true for string", `{"S":true}`, jsonread.Type, "TRUE_VALUE can not be converted to a String"},
		{"false for string", `{"S":false}`, jsonread.Type, "FALSE_VALUE can not be converted to a String"},
		{"object for string", `{"S":{}}`, jsonread.Type, "Start of structure or map found where not expected."},
		{"array for string", `{"S":[]}`, jsonread.Type, "Start of list found where not expected"},
		{"string for integer", `{"I":"32"}`, jsonread.Type, "STRING_VALUE can not be converted to an Integer"},
		{"true for integer", `{"I":true}`, jsonread.Type, "TRUE_VALUE can not be converted to an Integer"},
		{"string for long", `{"L":"1"}`, jsonread.Type, "STRING_VALUE can not be converted to a Long"},
		{"string for boolean", `{"B":"true"}`, jsonread.Type, "STRING_VALUE can not be converted to an Boolean"},
		{"number for boolean", `{"B":1}`, jsonread.Type, "NUMBER_VALUE can not be converted to a Boolean"},
		{"number for blob", `{"Blob":1}`, jsonread.Type, "only base-64-encoded strings are convertible to bytes"},
		{"string for timestamp", `{"T":"2024-01-01T00:00:00Z"}`, jsonread.Type, "STRING_VALUE can not be converted to a Timestamp"},
		{"scalar for list", `{"List":"a"}`, jsonread.Type, "Expected list or null"},
		{"object for list", `{"List":{}}`, jsonread.Type, "Start of structure or map found where not expected."},
		{"scalar for map", `{"Map":"a"}`, jsonread.Type, "Expected map or null"},
		{"array for map", `{"Map":[]}`, jsonread.Type, "Start of list found where not expected"},
		{"scalar for structure", `{"Nested":"a"}`, jsonread.Type, "Expected null"},
		{"array for structure", `{"Nested":[]}`, jsonread.Type, "Start of list found where not expected"},
		{"number in list", `{"List":[1]}`, jsonread.Type, "NUMBER_VALUE can not be converted to a String"},
		{"number in map", `{"Map":{"a":1}}`, jsonread.Type, "NUMBER_VALUE can not be converted to a String"},
		{"nested wrong type", `{"Tags":[{"Key":true}]}`, jsonread.Type, "TRUE_VALUE can not be converted to a String"},
		// Nulls inside containers.
		{"null list element", `{"List":["a",null]}`, jsonread.Null, "Null value found where not expected"},
		{"null map value", `{"Map":{"a":null}}`, jsonread.Null, "Null value found where not expected"},
		{"null structure element", `{"Tags":[null]}`, jsonread.Null, "Null value found where not expected"},
		// Numbers.
		{"fraction for integer", `{"I":1.5}`, jsonread.Number, "DECIMAL_VALUE can not be converted to an Integer"},
		{"small fraction for integer", `{"I":1e-1}`, jsonread.Number, "DECIMAL_VALUE can not be converted to an Integer"},
		{"integer overflow", `{"I":2147483648}`, jsonread.Number, "NUMBER_VALUE can not be converted to an Integer"},
		{"integer underflow", `{"I":-2147483649}`, jsonread.Number, "NUMBER_VALUE can not be converted to an Integer"},
		{"exponent overflow", `{"I":1e10}`, jsonread.Number, "NUMBER_VALUE can not be converted to an Integer"},
		{"huge exponent", `{"L":1e999999999999}`, jsonread.Number, "NUMBER_VALUE can not be converted to a Long"},
		{"long overflow", `{"L":9223372036854775808}`, jsonread.Number, "NUMBER_VALUE can not be converted to a Long"},
		{"long overflow 20 digits", `{"L":18446744073709551616}`, jsonread.Number, "NUMBER_VALUE can not be converted to a Long"},
		{"timestamp exponent", `{"T":1.7e9}`, jsonread.Number, "Timestamp must be epoch seconds with at most 9 fractional digits"},
		{"timestamp beyond nanoseconds", `{"T":1.0000000001}`, jsonread.Number, "Timestamp must be epoch seconds with at most 9 fractional digits"},
		{"timestamp too far", `{"T":9007199254740993}`, jsonread.Number, "Timestamp must be epoch seconds with at most 9 fractional digits"},
		// Strings.
		{"invalid utf-8", "{\"S\":\"a\xffb\"}", jsonread.UTF8, "Invalid UTF-8 in a JSON string"},
		{"invalid utf-8 with escape", "{\"S\":\"\\n\xc3\"}", jsonread.UTF8, "Invalid UTF-8 in a JSON string"},
		{"invalid utf-8 in unknown member", "{\"x\":\"\xed\xa0\x80\"}", jsonread.UTF8, "Invalid UTF-8 in a JSON string"},
		{"invalid utf-8 in name", "{\"\xff\":1}", jsonread.UTF8, "Invalid UTF-8 in a JSON string"},
		{"lone high surrogate", `{"S":"\ud800"}`, jsonread.UTF8, "Unpaired surrogate in a JSON string escape"},
		{"lone low surrogate", `{"S":"\udc00x"}`, jsonread.UTF8, "Unpaired surrogate in a JSON string escape"},
		{"high surrogate then non-surrogate", `{"S":"\ud800\u0041"}`, jsonread.UTF8, "Unpaired surrogate in a JSON string escape"},
		{"surrogate in unknown member", `{"x":"\udfff"}`, jsonread.UTF8, "Unpaired surrogate in a JSON string escape"},
		{"bad escape", `{"S":"\x"}`, jsonread.Syntax, "Malformed JSON in request body at byte offset 6"},
		{"short unicode escape", `{"S":"\u12"}`, jsonread.Syntax, "Malformed JSON in request body at byte offset 6"},
		{"raw control character", "{\"S\":\"a\nb\"}", jsonread.Syntax, "Malformed JSON in request body at byte offset 7"},
		// Blobs.
		{"base64 bad character", `{"Blob":"aGk!"}`, jsonread.Base64, "Invalid Base64 character"},
		{"base64 unpadded", `{"Blob":"aGk"}`, jsonread.Base64, "Base64 encoded length is expected a multiple of 4 bytes but found: 3"},
		{"base64 escaped newline", `{"Blob":"aGVs\nbG8="}`, jsonread.Base64, "Base64 encoded length is expected a multiple of 4 bytes but found: 9"},
		{"base64 escaped CRLF", `{"Blob":"aGVs\r\nbG8=\r\n"}`, jsonread.Base64, "Invalid Base64 character"},
		{"base64 escaped space", `{"Blob":"aG\u0020k"}`, jsonread.Base64, "Invalid Base64 character"},
		{"base64 url alphabet", `{"Blob":"-_-_"}`, jsonread.Base64, "Invalid Base64 character"},
		{"base64 padding inside", `{"Blob":"aG==aGk="}`, jsonread.Base64, "Invalid Base64 character"},
		{"array for blob", `{"Blob":[104,105]}`, jsonread.Base64, "Start of list found where not expected"},
		{"base64 non-canonical bits", `{"Blob":"aGl="}`, jsonread.Base64, "Invalid last non-pad Base64 character dectected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode(tt.body)
			var e *jsonread.Error
			if !errors.As(err, &e) {
				t.Fatalf("decode(%q) = %v, want *jsonread.Error", tt.body, err)
			}
			if e.Kind != tt.kind || e.Message != tt.message {
				t.Errorf("decode(%q) = kind %d %q, want kind %d %q", tt.body, e.Kind, e.Message, tt.kind, tt.message)
			}
		})
	}
}

// TestMessagesNeverEchoValues checks that no error message carries a
// value from the body: values may be plaintexts or secrets.
func TestMessagesNeverEchoValues(t *testing.T) {
	const secret = "s3cr3tVALUE"
	bodies := []string{
		`{"I":"` + secret + `"}`,
		`{"S":["` + secret + `"]}`,
		`{"Blob":"` + secret + `!"}`,
		`{"Blob":"` + secret + `=="}`,
		`{"S":"` + secret + `"`,
		`{"` + secret + `"}`,
		`{"S":"` + secret + "\xff\"}",
		`{"S":"` + secret + `\ud800"}`,
		`{"Map":{"` + secret + `":"a","` + secret + `":"b"}}`,
		`{"I":1234567890123}`,
		`{"I":12345.678}`,
		`{"T":1234567890.1234567891}`,
	}
	for _, body := range bodies {
		_, err := decode(body)
		if err == nil {
			t.Fatalf("decode(%q) = nil, want an error", body)
		}
		for _, v := range []string{secret, "1234567890123", "12345", "1234567890"} {
			if strings.Contains(err.Error(), v) {
				t.Errorf("decode(%q) = %q, echoes a value", body, err)
			}
		}
	}
}

// TestResultsDoNotAliasTheBody checks that decoded strings and blobs are
// copies: the server reuses the body's buffer for the response.
func TestResultsDoNotAliasTheBody(t *testing.T) {
	body := []byte(`{"S":"plain","Blob":"aGk=","List":["e\u00e9"],"Map":{"k":"v"}}`)
	var in input
	d := jsonread.NewDecoder(body)
	in.decode(&d)
	if err := d.Finish(); err != nil {
		t.Fatal(err)
	}
	clear(body)
	if *in.S != "plain" || string(in.Blob) != "hi" || in.List[0] != "eé" || in.Map["k"] != "v" {
		t.Errorf("decoded values changed with the body: %+v", in)
	}
}

func TestZeroDecoder(t *testing.T) {
	var d jsonread.Decoder
	if d.BeginStruct() || d.Finish() == nil {
		t.Errorf("zero Decoder: want an error for the empty body")
	}
}

// TestAgreesWithEncodingJSON checks valid bodies decode as encoding/json
// decodes them.
func TestAgreesWithEncodingJSON(t *testing.T) {
	for _, body := range []string{
		`{"S":"a\u2028\"b","I":7,"L":-12,"B":false,"Blob":"AAECAw==","List":["x","\ud83d\ude00"],"Map":{"a":"b"},"Tags":[{"Key":"k"}],"Nested":{}}`,
		`{"Unknown":[{"S":"ignored"}],"S":""}`,
	} {
		got, err := decode(body)
		if err != nil {
			t.Fatalf("decode(%q) = %v", body, err)
		}
		var want input
		if err := json.Unmarshal([]byte(body), &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("decode(%q) = %+v, encoding/json %+v", body, *got, want)
		}
	}
}

// FuzzDecoder checks that any body either decodes, consuming all of it,
// or fails with an *Error of a known kind and a non-empty message; and
// that a body decoding without error decodes as encoding/json decodes it
// unless it spells a member name in another case (which encoding/json
// matches) or an integer as a decimal (which it refuses).
func FuzzDecoder(f *testing.F) {
	for _, s := range []string{"", "{}", `{"S":"x","I":1,"L":2,"B":true,"Blob":"aGk=","T":1.5,"List":["a"],"Map":{"a":"b"},"Tags":[{"Key":"k"}],"Nested":{}}`,
		`{"S":"\ud83d\ude00\u00e9\n"}`, `{"x":[{"y":null}]}`, `{"I":1.0}`, `{"S":"a","S":"b"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := decode(string(body))
		if err != nil {
			var e *jsonread.Error
			if !errors.As(err, &e) || e.Kind < jsonread.Syntax || e.Kind > jsonread.Depth || e.Message == "" {
				t.Fatalf("decode(%q) = %#v, want an *Error of a known kind", body, err)
			}
			return
		}
		var want input
		if json.Unmarshal(body, &want) != nil {
			return
		}
		if strings.Contains(string(body), `\u`) || strings.ContainsAny(string(body), "\u212a\u017f") {
			return // escapes or Unicode folds may spell a name in another case
		}
		lower := strings.ToLower(string(body))
		for _, n := range []string{"S", "I", "L", "B", "Blob", "T", "List", "Map", "Tags", "Nested", "Key", "Value"} {
			if strings.Count(lower, strings.ToLower(`"`+n+`"`)) != strings.Count(string(body), `"`+n+`"`) {
				return // a name in another case, which encoding/json matches
			}
		}
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("decode(%q) = %+v, encoding/json %+v", body, *got, want)
		}
	})
}
