package awsjson

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/cloudtrail/ctapi"
	"github.com/keyfort/keyfort/internal/jsonread"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/operation"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/sensitive"
)

func str(s string) *string { return &s }

func ptr[T any](v T) *T { return &v }

func sstr(s string) *sensitive.String { v := sensitive.String(s); return &v }

// TestDecode runs each rule of the request decoder through JSON11.Decode
// and real generated inputs.
func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		in      operation.Input // zero input of the operation
		want    operation.Input // nil when an error is wanted
		wantMsg string
	}{
		// The body.
		{name: "empty body", body: "", in: &kmsapi.EncryptInput{}, want: &kmsapi.EncryptInput{}},
		{name: "whitespace body", body: " \r\n\t", in: &kmsapi.EncryptInput{}, want: &kmsapi.EncryptInput{}},
		{name: "empty object", body: "{}", in: &kmsapi.ListKeysInput{}, want: &kmsapi.ListKeysInput{}},
		{name: "input without members", body: `{"x":1}`, in: &kmsapi.DescribeCustomKeyStoresInput{}, want: &kmsapi.DescribeCustomKeyStoresInput{}},
		{name: "null body", body: "null", in: &kmsapi.EncryptInput{}, wantMsg: "Request body must be a JSON object"},
		{name: "array body", body: "[]", in: &kmsapi.EncryptInput{}, wantMsg: "Start of list found where not expected"},
		{name: "non-JSON whitespace is not blank", body: "\u00a0", in: &kmsapi.EncryptInput{}, wantMsg: "Malformed JSON in request body at byte offset 0"},
		{name: "malformed", body: `{"KeyId":`, in: &kmsapi.EncryptInput{}, wantMsg: "Malformed JSON in request body: unexpected end of input"},
		{name: "trailing data", body: `{} {}`, in: &kmsapi.EncryptInput{}, wantMsg: "Malformed JSON in request body at byte offset 3"},
		{name: "members", in: &kmsapi.EncryptInput{},
			body: `{"KeyId":"alias/x","Plaintext":"aGVsbG8=","EncryptionContext":{"a":"b"},"GrantTokens":["t"],"EncryptionAlgorithm":"SYMMETRIC_DEFAULT","DryRun":false}`,
			want: &kmsapi.EncryptInput{KeyId: str("alias/x"), Plaintext: sensitive.Bytes("hello"), EncryptionContext: map[string]string{"a": "b"},
				GrantTokens: []string{"t"}, EncryptionAlgorithm: kmsapi.EncryptionAlgorithmSpecSymmetricDefault, DryRun: ptr(false)}},
		{name: "nested structures", in: &kmsapi.CreateKeyInput{},
			body: `{"Tags":[{"TagKey":"a","TagValue":"b"}],"MultiRegion":true}`,
			want: &kmsapi.CreateKeyInput{Tags: []kmsapi.Tag{{TagKey: str("a"), TagValue: str("b")}}, MultiRegion: ptr(true)}},
		{name: "long and booleans", in: &smapi.GetRandomPasswordInput{},
			body: `{"PasswordLength":4096,"ExcludeNumbers":true}`,
			want: &smapi.GetRandomPasswordInput{PasswordLength: ptr(int64(4096)), ExcludeNumbers: ptr(true)}},
		{name: "sensitive string", in: &smapi.PutSecretValueInput{},
			body: `{"SecretId":"s","SecretString":"p\u00e4ss \"w\"","VersionStages":[]}`,
			want: &smapi.PutSecretValueInput{SecretId: str("s"), SecretString: sstr("päss \"w\""), VersionStages: []string{}}},
		{name: "timestamp", in: &kmsapi.ImportKeyMaterialInput{}, body: `{"ValidTo":1700000000.25}`,
			want: &kmsapi.ImportKeyMaterialInput{ValidTo: ptr(time.Unix(1700000000, 25e7).UTC())}},
		// Names.
		{name: "unknown member ignored", body: `{"KeyId":"k","SomethingNew":{"x":[1,2]}}`, in: &kmsapi.DescribeKeyInput{},
			want: &kmsapi.DescribeKeyInput{KeyId: str("k")}},
		{name: "names match case-sensitively", body: `{"keyid":"k","KEYID":"k"}`, in: &kmsapi.DescribeKeyInput{},
			want: &kmsapi.DescribeKeyInput{}},
		{name: "duplicate member", body: `{"KeyId":"a","KeyId":"b"}`, in: &kmsapi.DescribeKeyInput{}, wantMsg: "Duplicate field 'KeyId'"},
		{name: "duplicate map key", body: `{"EncryptionContext":{"a":"1","a":"2"}}`, in: &kmsapi.EncryptInput{},
			wantMsg: "Duplicate key in map 'EncryptionContext'"},
		// Nulls.
		{name: "null member is absent", body: `{"KeyId":null,"GrantTokens":null,"EncryptionContext":null}`, in: &kmsapi.EncryptInput{},
			want: &kmsapi.EncryptInput{}},
		{name: "null map value", body: `{"EncryptionContext":{"a":null}}`, in: &kmsapi.EncryptInput{}, wantMsg: "Null value found where not expected"},
		{name: "null list element", body: `{"GrantTokens":["t",null]}`, in: &kmsapi.EncryptInput{}, wantMsg: "Null value found where not expected"},
		// Wrong types.
		{name: "string for integer", body: `{"NumberOfBytes":"32"}`, in: &kmsapi.GenerateRandomInput{}, wantMsg: "STRING_VALUE can not be converted to an Integer"},
		{name: "string for long", body: `{"PasswordLength":"32"}`, in: &smapi.GetRandomPasswordInput{}, wantMsg: "STRING_VALUE can not be converted to a Long"},
		{name: "number for string", body: `{"KeyId":12345}`, in: &kmsapi.DescribeKeyInput{}, wantMsg: "NUMBER_VALUE can not be converted to a String"},
		{name: "string for boolean", body: `{"BypassPolicyLockoutSafetyCheck":"yes"}`, in: &kmsapi.CreateKeyInput{}, wantMsg: "STRING_VALUE can not be converted to an Boolean"},
		{name: "object for list", body: `{"GrantTokens":{}}`, in: &kmsapi.EncryptInput{}, wantMsg: "Start of structure or map found where not expected."},
		{name: "scalar for list", body: `{"GrantTokens":"t"}`, in: &kmsapi.EncryptInput{}, wantMsg: "Expected list or null"},
		{name: "number in map", body: `{"EncryptionContext":{"a":1}}`, in: &kmsapi.EncryptInput{}, wantMsg: "NUMBER_VALUE can not be converted to a String"},
		{name: "nested wrong type", body: `{"Tags":[{"TagKey":true}]}`, in: &kmsapi.CreateKeyInput{}, wantMsg: "TRUE_VALUE can not be converted to a String"},
		{name: "scalar for structure", body: `{"Tags":["a"]}`, in: &kmsapi.CreateKeyInput{}, wantMsg: "Expected null"},
		{name: "number for blob", body: `{"Plaintext":1}`, in: &kmsapi.EncryptInput{}, wantMsg: "only base-64-encoded strings are convertible to bytes"},
		{name: "string for timestamp", body: `{"ValidTo":"2030-01-01T00:00:00Z"}`, in: &kmsapi.ImportKeyMaterialInput{}, wantMsg: "STRING_VALUE can not be converted to a Timestamp"},
		// Numbers.
		{name: "integral decimal", body: `{"NumberOfBytes":32.0}`, in: &kmsapi.GenerateRandomInput{},
			want: &kmsapi.GenerateRandomInput{NumberOfBytes: ptr(int32(32))}},
		{name: "fraction for integer", body: `{"NumberOfBytes":1.5}`, in: &kmsapi.GenerateRandomInput{}, wantMsg: "DECIMAL_VALUE can not be converted to an Integer"},
		{name: "integer overflow", body: `{"NumberOfBytes":99999999999}`, in: &kmsapi.GenerateRandomInput{}, wantMsg: "NUMBER_VALUE can not be converted to an Integer"},
		// Strings.
		{name: "invalid UTF-8 refused, not replaced", body: "{\"SecretId\":\"s\",\"SecretString\":\"pa\xffss\"}", in: &smapi.PutSecretValueInput{},
			wantMsg: "Invalid UTF-8 in a JSON string"},
		{name: "lone surrogate refused", body: `{"SecretId":"s","SecretString":"pa\ud800ss"}`, in: &smapi.PutSecretValueInput{},
			wantMsg: "Unpaired surrogate in a JSON string escape"},
		{name: "U+FFFD sent is kept", body: `{"SecretId":"s","SecretString":"\ufffd` + "\uFFFD" + `"}`, in: &smapi.PutSecretValueInput{},
			want: &smapi.PutSecretValueInput{SecretId: str("s"), SecretString: sstr("\uFFFD\uFFFD")}},
		// Blobs.
		{name: "base64 with an escaped newline", body: `{"Plaintext":"aGVs\nbG8h"}`, in: &kmsapi.EncryptInput{}, wantMsg: "Base64 encoded length is expected a multiple of 4 bytes but found: 9"},
		{name: "base64 with escaped CRLF", body: `{"Plaintext":"aGVs\r\nbG8="}`, in: &kmsapi.EncryptInput{}, wantMsg: "Base64 encoded length is expected a multiple of 4 bytes but found: 10"},
		{name: "base64 with escaped CRLF, length a multiple of 4", body: `{"Plaintext":"aGVs\r\nbG8=\r\n"}`, in: &kmsapi.EncryptInput{}, wantMsg: "Invalid Base64 character"},
		{name: "bad base64 blob", body: `{"CiphertextBlob":"!!!!"}`, in: &kmsapi.DecryptInput{}, wantMsg: "Invalid Base64 character"},
		{name: "unpadded base64", body: `{"SecretBinary":"aGk"}`, in: &smapi.PutSecretValueInput{}, wantMsg: "Base64 encoded length is expected a multiple of 4 bytes but found: 3"},
		{name: "non-canonical base64", body: `{"Plaintext":"aGl="}`, in: &kmsapi.EncryptInput{}, wantMsg: "Invalid last non-pad Base64 character dectected"},
		{name: "empty blob", body: `{"CiphertextBlob":""}`, in: &kmsapi.DecryptInput{}, want: &kmsapi.DecryptInput{CiphertextBlob: []byte{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := JSON11{}.Decode([]byte(tt.body), tt.in)
			if tt.want != nil {
				if err != nil {
					t.Fatalf("Decode(%q) = %v, want nil", tt.body, err)
				}
				if !reflect.DeepEqual(tt.in, tt.want) {
					t.Fatalf("Decode(%q) = %+v, want %+v", tt.body, tt.in, tt.want)
				}
				return
			}
			e, ok := awserr.As(err)
			if !ok {
				t.Fatalf("Decode(%q) = %v, want *awserr.Error", tt.body, err)
			}
			if e.Code != "SerializationException" || e.Status != 400 || e.Message != tt.wantMsg {
				t.Errorf("Decode(%q) = %s/%d %q, want SerializationException/400 %q", tt.body, e.Code, e.Status, e.Message, tt.wantMsg)
			}
		})
	}
}

// TestDecodeNeverEchoesValues checks that error messages carry no request
// values, which may be plaintexts or secrets.
func TestDecodeNeverEchoesValues(t *testing.T) {
	const secret = "s3cr3tVALUE"
	bodies := []string{
		`{"NumberOfBytes":"` + secret + `"}`,
		`{"KeyId":["` + secret + `"]}`,
		`{"Plaintext":"` + secret + `!"}`,
		`{"Plaintext":"` + secret + `\u0000"}`,
		`{"KeyId":"` + secret + `"`,
		`{"` + secret + `"}`,
		`{"EncryptionContext":{"` + secret + `":"a","` + secret + `":"a"}}`,
		`{"KeyId":"` + secret + "\xc3\"}",
		`{"NumberOfBytes":1234567890123` + `}`,
		`{"NumberOfBytes":1234567890.123` + `}`,
	}
	for _, body := range bodies {
		for _, in := range []operation.Input{&kmsapi.EncryptInput{}, &kmsapi.GenerateRandomInput{}} {
			err := JSON11{}.Decode([]byte(body), in)
			if err == nil {
				continue
			}
			if msg := err.Error(); strings.Contains(msg, secret) || strings.Contains(msg, "1234567890") {
				t.Errorf("Decode(%q) = %q, echoes the value", body, err)
			}
		}
	}
}

// inputs returns a new zero input of every operation of the generated
// packages.
func inputs() []operation.Input {
	var ins []operation.Input
	for _, op := range kmsapi.Operations(kmsapi.UnimplementedService{}) {
		ins = append(ins, op.NewInput())
	}
	for _, op := range smapi.Operations(smapi.UnimplementedService{}) {
		ins = append(ins, op.NewInput())
	}
	for _, op := range ctapi.Operations(ctapi.UnimplementedService{}) {
		ins = append(ins, op.NewInput())
	}
	return ins
}

func newLike(in operation.Input) operation.Input {
	return reflect.New(reflect.TypeOf(in).Elem()).Interface().(operation.Input)
}

var (
	timeType    = reflect.TypeFor[time.Time]()
	sensBytes   = reflect.TypeFor[sensitive.Bytes]()
	sensString  = reflect.TypeFor[sensitive.String]()
	stringNames = []string{"", "plain", "é✓😀", "quote\" back\\slash", "ctl\x00\x1f\n\t", "<html>&", "\u2028\u2029", "\uFFFD", "\U0010FFFF"}
)

// populate fills v (settable) with random values of its type: members
// present or absent, lists and maps of 0 to 3 entries, every scalar's
// extremes and strings that need escaping.
func populate(r *rand.Rand, v reflect.Value, depth int) {
	switch t := v.Type(); {
	case t == timeType:
		v.Set(reflect.ValueOf(time.UnixMilli(r.Int64N(1<<42) - 1<<41).UTC()))
	case t == sensBytes || t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		v.Set(reflect.ValueOf(b).Convert(t))
	case t.Kind() == reflect.String:
		s := stringNames[r.IntN(len(stringNames))]
		if r.IntN(2) == 0 {
			s += strconv.Itoa(r.Int())
		}
		v.SetString(s)
	case t.Kind() == reflect.Int32:
		v.SetInt([]int64{0, 1, -1, 1<<31 - 1, -1 << 31, r.Int64N(1 << 20)}[r.IntN(6)])
	case t.Kind() == reflect.Int64:
		v.SetInt([]int64{0, 1, -1, 1<<63 - 1, -1 << 63, r.Int64()}[r.IntN(6)])
	case t.Kind() == reflect.Bool:
		v.SetBool(r.IntN(2) == 0)
	case t.Kind() == reflect.Pointer:
		if depth > 4 || r.IntN(4) == 0 {
			return // absent
		}
		p := reflect.New(t.Elem())
		populate(r, p.Elem(), depth+1)
		v.Set(p)
	case t.Kind() == reflect.Slice:
		if r.IntN(4) == 0 {
			return
		}
		n := r.IntN(4)
		if depth > 4 {
			n = 0
		}
		l := reflect.MakeSlice(t, n, n)
		for i := range n {
			populate(r, l.Index(i), depth+1)
		}
		v.Set(l)
	case t.Kind() == reflect.Map:
		if r.IntN(4) == 0 {
			return
		}
		m := reflect.MakeMap(t)
		for range r.IntN(4) {
			k := reflect.New(t.Key()).Elem()
			populate(r, k, depth+1)
			e := reflect.New(t.Elem()).Elem()
			populate(r, e, depth+1)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case t.Kind() == reflect.Struct:
		for i := range t.NumField() {
			if r.IntN(3) == 0 {
				continue
			}
			populate(r, v.Field(i), depth+1)
		}
	default:
		panic("populate: unsupported type " + t.String())
	}
}

// tree turns a generated input into what encoding/json marshals as AWS
// JSON: sensitive members revealed, blobs in base64, timestamps as epoch
// seconds, absent members left out.
func tree(v reflect.Value) any {
	t := v.Type()
	switch {
	case t == timeType:
		tm := v.Interface().(time.Time)
		sec, nsec := tm.Unix(), tm.Nanosecond()
		if sec < 0 && nsec > 0 {
			return json.Number("-" + strconv.FormatInt(-(sec+1), 10) + "." + fmt.Sprintf("%09d", 1e9-nsec))
		}
		return json.Number(strconv.FormatInt(sec, 10) + "." + fmt.Sprintf("%09d", nsec))
	case t == sensBytes:
		return base64.StdEncoding.EncodeToString(v.Bytes())
	case t == sensString:
		return v.String()
	case t.Kind() == reflect.Pointer:
		return tree(v.Elem())
	case t.Kind() == reflect.Struct:
		m := map[string]any{}
		for i := range t.NumField() {
			f := v.Field(i)
			if f.IsZero() && (f.Kind() != reflect.Slice || f.IsNil()) && (f.Kind() != reflect.Map || f.IsNil()) {
				continue
			}
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			m[name] = tree(f)
		}
		return m
	case t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8:
		l := make([]any, v.Len())
		for i := range l {
			l[i] = tree(v.Index(i))
		}
		return l
	case t.Kind() == reflect.Map:
		m := map[string]any{}
		for it := v.MapRange(); it.Next(); {
			m[it.Key().String()] = tree(it.Value())
		}
		return m
	}
	return v.Interface()
}

// TestDecodeRoundTrip marshals populated inputs of every operation with
// encoding/json, decodes them with the generated decoders, and checks that
// the result equals both the original and what encoding/json decodes.
func TestDecodeRoundTrip(t *testing.T) {
	for _, zero := range inputs() {
		name := reflect.TypeOf(zero).Elem().Name()
		t.Run(name, func(t *testing.T) {
			for seed := range uint64(50) {
				r := rand.New(rand.NewPCG(seed, 12))
				orig := newLike(zero)
				populate(r, reflect.ValueOf(orig).Elem(), 0)
				body, err := json.Marshal(tree(reflect.ValueOf(orig)))
				if err != nil {
					t.Fatal(err)
				}
				got := newLike(zero)
				if err := (JSON11{}).Decode(body, got); err != nil {
					t.Fatalf("Decode(%s) = %v", body, err)
				}
				if !reflect.DeepEqual(got, orig) {
					t.Fatalf("Decode(%s) = %+v, want %+v", body, got, orig)
				}
				ref := newLike(zero)
				if err := json.Unmarshal(body, ref); err != nil {
					t.Fatalf("json.Unmarshal(%s) = %v", body, err)
				}
				if !reflect.DeepEqual(got, ref) {
					t.Fatalf("Decode(%s) = %+v, encoding/json %+v", body, got, ref)
				}
			}
		})
	}
}

// fieldNames returns the JSON names of every member of t's structures.
func fieldNames(t reflect.Type, names map[string]bool) {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice:
		fieldNames(t.Elem(), names)
	case reflect.Map:
		fieldNames(t.Elem(), names)
	case reflect.Struct:
		if t == timeType {
			return
		}
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			if !names[name] {
				names[name] = true
				fieldNames(t.Field(i).Type, names)
			}
		}
	}
}

// foldedName reports whether some object key of body (valid JSON) matches
// a member name of in only case-insensitively, the one case where
// encoding/json and the generated decoder, both accepting a body, differ.
func foldedName(body []byte, in operation.Input) bool {
	names := map[string]bool{}
	fieldNames(reflect.TypeOf(in), names)
	dec := json.NewDecoder(bytes.NewReader(body))
	// One entry per open object (true) or array (false); keyNext is true
	// when the innermost object's next token is a key.
	var stack []bool
	keyNext := false
	valueDone := func() {
		keyNext = len(stack) > 0 && stack[len(stack)-1]
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{':
				stack = append(stack, true)
				keyNext = true
			case '[':
				stack = append(stack, false)
				keyNext = false
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
		case string:
			if keyNext {
				for n := range names {
					if tok != n && strings.EqualFold(tok, n) {
						return true
					}
				}
				keyNext = false
				continue
			}
			valueDone()
		default:
			valueDone()
		}
	}
}

// canonicalNumbers rewrites every number of body that is an integer in
// decimal or exponent spelling (1.0, 1e2) as a plain integer, or returns
// nil if body has none.
func canonicalNumbers(body []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil
	}
	changed := false
	var walk func(v any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case json.Number:
			if strings.ContainsAny(string(v), ".eE") {
				if r, ok := new(big.Rat).SetString(string(v)); ok && r.IsInt() {
					changed = true
					return json.Number(r.Num().String())
				}
			}
		case map[string]any:
			for k, e := range v {
				v[k] = walk(e)
			}
		case []any:
			for i, e := range v {
				v[i] = walk(e)
			}
		}
		return v
	}
	v = walk(v)
	if !changed {
		return nil
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return out
}

// checkAgainstEncodingJSON decodes body into a new input like zero with the
// generated decoder and with encoding/json. When both accept, the results
// must be equal; when only one accepts, the difference must be one the
// generated decoder documents (internal/jsonread's package comment).
func checkAgainstEncodingJSON(t *testing.T, zero operation.Input, body []byte) {
	got, ref := newLike(zero), newLike(zero)
	err := JSON11{}.Decode(body, got)
	if err != nil {
		if e, ok := awserr.As(err); !ok || e.Code != "SerializationException" {
			t.Fatalf("Decode(%q) = %v, want nil or a SerializationException", body, err)
		}
	}
	var refErr error
	if blank(body) {
		refErr = nil // the codec's rule, before either decoder
	} else {
		refErr = json.Unmarshal(body, ref)
	}
	switch {
	case err == nil && refErr == nil:
		if !reflect.DeepEqual(got, ref) && !foldedName(body, zero) {
			t.Fatalf("%T: Decode(%q) = %+v, encoding/json %+v", zero, body, got, ref)
		}
	case err == nil:
		// Accepted only here: a member matched case-insensitively by
		// encoding/json, or an integer spelled as a decimal (1.0, 1e2).
		if foldedName(body, zero) {
			return
		}
		canon := canonicalNumbers(body)
		if canon == nil {
			t.Fatalf("%T: Decode(%q) accepts what encoding/json refuses (%v)", zero, body, refErr)
		}
		ref = newLike(zero)
		if err := json.Unmarshal(canon, ref); err != nil || !reflect.DeepEqual(got, ref) {
			t.Fatalf("%T: Decode(%q) = %+v; encoding/json of %s = %+v, %v", zero, body, got, canon, ref, err)
		}
	case refErr == nil:
		// Refused only here: one of the documented strictness rules.
		var je *jsonread.Error
		if !errors.As(zero.UnmarshalAWSJSON(body), &je) {
			t.Fatalf("%T: UnmarshalAWSJSON(%q) does not return a *jsonread.Error", zero, body)
		}
		if foldedName(body, zero) {
			return
		}
		switch je.Kind {
		case jsonread.Duplicate, jsonread.Null, jsonread.Base64, jsonread.Depth:
		case jsonread.UTF8:
			if utf8.Valid(body) && !bytes.Contains(bytes.ToLower(body), []byte(`\ud`)) {
				t.Fatalf("%T: Decode(%q) = %v, but the body is valid UTF-8 with no surrogate escape", zero, body, err)
			}
		case jsonread.Type, jsonread.Number:
			if !strings.Contains(je.Message, "Timestamp") { // encoding/json's path also takes RFC 3339 and any precision
				t.Fatalf("%T: Decode(%q) = %v, encoding/json accepts it", zero, body, err)
			}
		default:
			t.Fatalf("%T: Decode(%q) = %v, encoding/json accepts it", zero, body, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	ins := inputs()
	for i, zero := range ins {
		r := rand.New(rand.NewPCG(uint64(i), 7))
		v := newLike(zero)
		populate(r, reflect.ValueOf(v).Elem(), 0)
		body, err := json.Marshal(tree(reflect.ValueOf(v)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint16(i), body)
	}
	for _, s := range []string{"", " ", "{}", "null", "[]", `{"KeyId":"x","Tags":[{"TagKey":"a"}]}`, `{"NumberOfBytes":"1"}`,
		`{"NumberOfBytes":1.0}`, `{"keyid":"x"}`, `{"KeyId":"a","KeyId":"b"}`, `{"EncryptionContext":{"a":null}}`,
		`{"Plaintext":"AA\nAA=="}`, "{\"KeyId\":\"\xff\"}", `{"KeyId":"\ud800"}`, `{"ValidTo":1.5e9}`, `{"Plaintext":"AAAA"}`} {
		for i := range ins {
			f.Add(uint16(i), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, op uint16, body []byte) {
		checkAgainstEncodingJSON(t, ins[int(op)%len(ins)], body)
	})
}

// TestDecodeDocumentedDifferences pins what FuzzDecode allows.
func TestDecodeDocumentedDifferences(t *testing.T) {
	for _, tt := range []struct {
		in   operation.Input
		body string
	}{
		{&kmsapi.DescribeKeyInput{}, `{"keyid":"x"}`},
		{&kmsapi.DescribeKeyInput{}, `{"keyid":1}`},
		{&kmsapi.DescribeKeyInput{}, `{"KeyId":"a","KeyId":"b"}`},
		{&kmsapi.EncryptInput{}, `{"EncryptionContext":{"a":null}}`},
		{&kmsapi.EncryptInput{}, `{"GrantTokens":[null]}`},
		{&kmsapi.EncryptInput{}, `null`},
		{&kmsapi.EncryptInput{}, `{"Plaintext":"AA\nAA=="}`},
		{&kmsapi.EncryptInput{}, `{"Plaintext":"QR=="}`},
		{&kmsapi.EncryptInput{}, "{\"KeyId\":\"\xff\"}"},
		{&kmsapi.EncryptInput{}, `{"KeyId":"\udfff"}`},
		{&kmsapi.GenerateRandomInput{}, `{"NumberOfBytes":1.0}`},
		{&kmsapi.GenerateRandomInput{}, `{"NumberOfBytes":3e1}`},
		{&kmsapi.ImportKeyMaterialInput{}, `{"ValidTo":"2030-01-01T00:00:00Z"}`},
		{&kmsapi.ImportKeyMaterialInput{}, `{"ValidTo":1.5e9}`},
		{&kmsapi.ImportKeyMaterialInput{}, `{"ValidTo":1.0000000001}`},
		{&kmsapi.EncryptInput{}, `{"x":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`},
	} {
		checkAgainstEncodingJSON(t, tt.in, []byte(tt.body))
	}
}

var benchBodies = []struct {
	name string
	in   func() operation.Input
	body string
}{
	{"Encrypt", func() operation.Input { return new(kmsapi.EncryptInput) },
		`{"KeyId":"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",` +
			`"Plaintext":"` + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xA5}, 64)) + `",` +
			`"EncryptionContext":{"department":"10jan","purpose":"test"}}`},
	{"GetSecretValue", func() operation.Input { return new(smapi.GetSecretValueInput) },
		`{"SecretId":"arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-AbCdEf","VersionStage":"AWSCURRENT"}`},
}

// BenchmarkDecode compares the generated decoder with encoding/json (the
// decoder it replaced) on the hot path's bodies.
func BenchmarkDecode(b *testing.B) {
	for _, bb := range benchBodies {
		body := []byte(bb.body)
		b.Run(bb.name+"/encoding_json", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := json.Unmarshal(body, bb.in()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bb.name+"/generated", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := (JSON11{}).Decode(body, bb.in()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
