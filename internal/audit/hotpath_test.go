package audit

import (
	"encoding/json"
	"github.com/keyfort/keyfort/internal/jsonstr"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAppendEventTimeMatchesFormat checks the hand-written eventTime
// formatter against the AppendFormat it replaces, over random instants of
// every year from -20000 to 20000 in several zones, and the edges of the
// years 0 and 9999 it formats by hand.
func TestAppendEventTimeMatchesFormat(t *testing.T) {
	old := func(t time.Time) string { return t.UTC().Format(TimeFormat) }
	zones := []*time.Location{time.UTC, time.FixedZone("CET", 3600), time.FixedZone("-1130", -(11*3600 + 1800)), time.FixedZone("+14", 14*3600)}
	check := func(tm time.Time) {
		t.Helper()
		if got, want := string(appendEventTime([]byte("x"), tm)), "x"+old(tm); got != want {
			t.Fatalf("appendEventTime(%v) = %q, want %q", tm, got, want)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for year := -20000; year <= 20000; year++ {
		for range 3 {
			tm := time.Date(year, time.Month(1+r.IntN(12)), 1+r.IntN(31), r.IntN(24), r.IntN(60), r.IntN(61), r.IntN(1e9), zones[r.IntN(len(zones))])
			check(tm)
		}
	}
	for _, year := range []int{-1, 0, 1, 999, 1000, 1969, 1970, 2000, 2026, 9999, 10000} {
		for _, z := range zones {
			check(time.Date(year, 1, 1, 0, 0, 0, 0, z))
			check(time.Date(year, 12, 31, 23, 59, 59, 999999999, z))
			check(time.Date(year, 2, 29, 12, 30, 30, 0, z))
		}
	}
	check(time.Time{})
	check(time.Unix(0, 0))
	check(time.Unix(1<<40, 0))
	check(time.Unix(-1<<40, 0))
	for range 100000 {
		check(time.Unix(r.Int64N(1<<38)-1<<37, r.Int64N(1e9)))
	}
}

// validVectors are JSON texts and near misses for validJSON.
var validVectors = []string{
	``, ` `, `null`, `true`, `false`, `nul`, `nulll`, `True`, `0`, `-0`, `-`, `01`, `-01`, `1.`, `1.5`, `.5`, `1e5`, `1E+5`, `1e-5`, `1e`, `1e+`,
	`1.e5`, `12345678901234567890`, `-1.5e-300`, `0x1`, `+1`, `1 2`, ` 1 `, "\t\r\n1\n", "\v1", `"`, `""`, `"a`, `"\"`, `"\\"`, `"\/"`,
	`"\b\f\n\r\t"`, `"\u00e9"`, `"\u00E9"`, `"\u00g9"`, `"\u00"`, `"\x"`, `"\'"`, "\"\x00\"", "\"\x1f\"", "\"\x7f\"", "\"\xff\xfe\"",
	`"é€😀"`, `[]`, `[ ]`, `[`, `]`, `[1,]`, `[,1]`, `[1 2]`, `[1,2]`, `[[[]]]`, `[[]`, `[]]`, `{}`, `{ }`, `{`, `}`, `{"a"}`, `{"a":}`,
	`{"a":1}`, `{"a":1,}`, `{,"a":1}`, `{"a" : 1 , "b" : [ true , null ] }`, `{a:1}`, `{"a":1 "b":2}`, `{"a":1]`, `[1}`, `{1:2}`,
	`{"a":{"b":{"c":[1,{"d":"e"}]}}}`, `{"keyId":"alias/x","encryptionContext":{"a":"b"}}`, `{"a":1}{}`, `[]x`, `{}  `, `"a"b`,
	`{"":""}`, `[-]`, `[-0.0e0]`, `[1e01]`, `[00]`, `{"a":tru}`, `{"a":nulls}`, `[true,false,null]`, "[\n]", "{\"a\"\n:\n1\n}",
}

// TestValidJSONMatchesEncodingJSON checks validJSON against json.Valid, which
// checkRaw called before: on fixed vectors, their prefixes, the nesting limit
// and random edits of them.
func TestValidJSONMatchesEncodingJSON(t *testing.T) {
	check := func(b []byte) {
		t.Helper()
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid = %v", b, got, want)
		}
	}
	for _, v := range validVectors {
		for n := 0; n <= len(v); n++ {
			check([]byte(v[:n]))
		}
	}
	for _, depth := range []int{maxNestingDepth - 1, maxNestingDepth, maxNestingDepth + 1} {
		check([]byte(strings.Repeat("[", depth) + strings.Repeat("]", depth)))
		check([]byte(strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)))
		check([]byte(strings.Repeat(`[{"a":`, depth/2) + "1" + strings.Repeat("}]", depth/2)))
		check([]byte(strings.Repeat("[", depth)))
	}
	const alphabet = "{}[]\",:\\/ \t\n\r0123456789-+.eEtrufalsn\x00\x1f\x7f\xc3\xa9\xffbux"
	r := rand.New(rand.NewPCG(3, 4))
	for range 300000 {
		b := []byte(validVectors[r.IntN(len(validVectors))])
		for range 1 + r.IntN(4) {
			switch op := r.IntN(4); {
			case op == 0 || len(b) == 0:
				p := r.IntN(len(b) + 1)
				b = append(b[:p:p], append([]byte{alphabet[r.IntN(len(alphabet))]}, b[p:]...)...)
			case op == 1:
				b[r.IntN(len(b))] = alphabet[r.IntN(len(alphabet))]
			case op == 2:
				p := r.IntN(len(b))
				b = append(b[:p:p], b[p+1:]...)
			default:
				p, q := r.IntN(len(b)), r.IntN(len(validVectors))
				b = append(b[:p:p], append([]byte(validVectors[q]), b[p:]...)...)
			}
		}
		check(b)
	}
}

// FuzzValidJSON compares validJSON with json.Valid on any input.
func FuzzValidJSON(f *testing.F) {
	for _, v := range validVectors {
		f.Add([]byte(v))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid = %v", b, got, want)
		}
	})
}

// TestNewWithEventID checks that New is NewWithEventID with a new random
// id: the same event otherwise.
func TestNewWithEventID(t *testing.T) {
	a := New("kms.amazonaws.com", "Encrypt", testTime)
	b := NewWithEventID("kms.amazonaws.com", "Encrypt", testTime, "chosen")
	if b.EventID != "chosen" || !uuidV4.MatchString(a.EventID) {
		t.Fatalf("event ids %q and %q, want a v4 UUID and chosen", a.EventID, b.EventID)
	}
	b.EventID = a.EventID
	if string(a.AppendJSON(nil)) != string(b.AppendJSON(nil)) {
		t.Errorf("NewWithEventID =\n%s\nNew =\n%s", b.AppendJSON(nil), a.AppendJSON(nil))
	}
}

// oldAppendJSON is Event.AppendJSON before its speed work (AppendFormat for
// eventTime, a member name appended in three steps), the reference the
// faster one must match byte for byte.
func oldAppendJSON(e *Event, b []byte) []byte {
	str := func(name, v string) {
		b = append(b, ',', '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		b = jsonstr.Append(b, v)
	}
	raw := func(name string, v json.RawMessage) {
		b = append(b, ',', '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		switch {
		case len(v) == 0:
			b = append(b, "null"...)
		case len(v) > MaxFieldBytes:
			b = append(b, `{"reason":"`...)
			b = append(b, name...)
			b = append(b, ` too large","omitted":true,"originalSize":`...)
			b = strconv.AppendInt(b, int64(len(v)), 10)
			b = append(b, '}')
		default:
			b = append(b, v...)
		}
	}
	boolean := func(name string, v bool) {
		b = append(b, ',', '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		b = strconv.AppendBool(b, v)
	}
	b = append(b, `{"eventVersion":`...)
	b = jsonstr.Append(b, e.EventVersion)
	u := e.UserIdentity
	// Since service events (no type, no requestID, serviceEventDetails):
	// each userIdentity member only when set.
	b = append(b, `,"userIdentity":{`...)
	start := len(b)
	for _, f := range [...]struct{ name, v string }{
		{"type", u.Type}, {"principalId", u.PrincipalID}, {"arn", u.ARN}, {"accountId", u.AccountID}, {"accessKeyId", u.AccessKeyID},
		{"userName", u.UserName}, {"invokedBy", u.InvokedBy},
	} {
		if f.v != "" {
			str(f.name, f.v)
		}
	}
	if len(b) > start {
		b = append(b[:start], b[start+1:]...) // the first member's comma
	}
	b = append(b, '}')
	b = append(b, `,"eventTime":"`...)
	b = e.EventTime.UTC().AppendFormat(b, TimeFormat)
	b = append(b, '"')
	str("eventSource", e.EventSource)
	str("eventName", e.EventName)
	str("awsRegion", e.AWSRegion)
	str("sourceIPAddress", e.SourceIPAddress)
	str("userAgent", clipText(e.UserAgent))
	if e.ErrorCode != "" {
		str("errorCode", e.ErrorCode)
	}
	if e.ErrorMessage != "" {
		str("errorMessage", clipText(e.ErrorMessage))
	}
	raw("requestParameters", e.RequestParameters)
	raw("responseElements", e.ResponseElements)
	if len(e.AdditionalEventData) > 0 {
		raw("additionalEventData", e.AdditionalEventData)
	}
	if e.RequestID != "" {
		str("requestID", e.RequestID)
	}
	str("eventID", e.EventID)
	boolean("readOnly", e.ReadOnly)
	if len(e.Resources) > 0 {
		b = append(b, `,"resources":[`...)
		for i, r := range e.Resources {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"accountId":`...)
			b = jsonstr.Append(b, r.AccountID)
			b = append(b, `,"type":`...)
			b = jsonstr.Append(b, r.Type)
			b = append(b, `,"ARN":`...)
			b = jsonstr.Append(b, r.ARN)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	str("eventType", e.EventType)
	boolean("managementEvent", e.ManagementEvent)
	str("recipientAccountId", e.RecipientAccountID)
	if len(e.ServiceEventDetails) > 0 {
		raw("serviceEventDetails", e.ServiceEventDetails)
	}
	str("eventCategory", e.EventCategory)
	return append(b, '}')
}

// TestAppendJSONMatchesOld checks AppendJSON against oldAppendJSON on the
// benchmark events, and on random events: each member empty or set to text
// with characters JSON escapes, raw members past MaxFieldBytes, text past
// MaxTextBytes, times of many years.
func TestAppendJSONMatchesOld(t *testing.T) {
	check := func(e *Event) {
		t.Helper()
		if got, want := string(e.AppendJSON([]byte("x"))), string(oldAppendJSON(e, []byte("x"))); got != want {
			t.Fatalf("AppendJSON =\n%s\nwant\n%s", got, want)
		}
	}
	enc, gsv := benchEvents()
	check(enc[0])
	check(gsv[0])
	check(gsv[1])
	r := rand.New(rand.NewPCG(7, 8))
	texts := []string{"", "a", "us-east-1", "arn:aws:kms:us-east-1:111122223333:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
		"q\"b\\s\n\t\x00é\u2028\xff<&>", strings.Repeat("ü", MaxTextBytes/2+1), strings.Repeat("x", MaxTextBytes+5)}
	raws := []json.RawMessage{nil, json.RawMessage(`{}`), json.RawMessage(`{"keyId":"k","n":1,"l":[true,null]}`),
		json.RawMessage(`{"a":"` + strings.Repeat("b", MaxFieldBytes) + `"}`)}
	txt := func() string { return texts[r.IntN(len(texts))] }
	for range 3000 {
		e := &Event{
			EventVersion: txt(),
			UserIdentity: UserIdentity{Type: txt(), PrincipalID: txt(), ARN: txt(), AccountID: txt(), AccessKeyID: txt(), UserName: txt(), InvokedBy: txt()},
			EventTime:    time.Unix(r.Int64N(1<<36)-1<<35, r.Int64N(1e9)).In(time.FixedZone("z", r.IntN(50000)-25000)),
			EventSource:  txt(), EventName: txt(), AWSRegion: txt(), SourceIPAddress: txt(), UserAgent: txt(),
			ErrorCode: txt(), ErrorMessage: txt(),
			RequestParameters: raws[r.IntN(len(raws))], ResponseElements: raws[r.IntN(len(raws))], AdditionalEventData: raws[r.IntN(len(raws))],
			RequestID: txt(), EventID: txt(), ReadOnly: r.IntN(2) == 0,
			EventType: txt(), ManagementEvent: r.IntN(2) == 0, RecipientAccountID: txt(), EventCategory: txt(),
			ServiceEventDetails: raws[r.IntN(len(raws))],
		}
		for range r.IntN(3) {
			e.Resources = append(e.Resources, Resource{AccountID: txt(), Type: txt(), ARN: txt()})
		}
		check(e)
	}
}

// TestServiceEvent: a service event is written as CloudTrail's examples of
// KMS's (DeleteExpiredKeyMaterial): a userIdentity of the account invoked
// by "AWS Internal", no requestID, serviceEventDetails before
// eventCategory; it reads back the same.
func TestServiceEvent(t *testing.T) {
	at := time.Date(2025, 5, 22, 19, 55, 11, 0, time.UTC)
	e := NewServiceEvent("kms.amazonaws.com", "DeleteExpiredKeyMaterial", at, "cfa932fd-0d3a-4a76-a8b8-616863a2b547", "111122223333", "us-west-2",
		[]Resource{{AccountID: "111122223333", Type: "AWS::KMS::Key", ARN: "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}},
		json.RawMessage(`{"keyId":"1234abcd-12ab-34cd-56ef-1234567890ab","keyMaterialId":"ab"}`))
	want := `{"eventVersion":"1.08","userIdentity":{"accountId":"111122223333","invokedBy":"AWS Internal"},"eventTime":"2025-05-22T19:55:11Z",` +
		`"eventSource":"kms.amazonaws.com","eventName":"DeleteExpiredKeyMaterial","awsRegion":"us-west-2","sourceIPAddress":"AWS Internal",` +
		`"userAgent":"AWS Internal","requestParameters":null,"responseElements":null,"eventID":"cfa932fd-0d3a-4a76-a8b8-616863a2b547",` +
		`"readOnly":false,"resources":[{"accountId":"111122223333","type":"AWS::KMS::Key","ARN":"arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}],` +
		`"eventType":"AwsServiceEvent","managementEvent":true,"recipientAccountId":"111122223333",` +
		`"serviceEventDetails":{"keyId":"1234abcd-12ab-34cd-56ef-1234567890ab","keyMaterialId":"ab"},"eventCategory":"Management"}`
	got, err := e.MarshalJSON()
	if err != nil || string(got) != want {
		t.Fatalf("service event =\n%s, %v\nwant\n%s", got, err, want)
	}
	var back Event
	if err := back.UnmarshalJSON(got); err != nil {
		t.Fatal(err)
	}
	if again := back.AppendJSON(nil); string(again) != want {
		t.Fatalf("read back and written again =\n%s", again)
	}
	bad := *e
	bad.ServiceEventDetails = json.RawMessage(`{"open":`)
	if _, err := bad.MarshalJSON(); err == nil {
		t.Error("a service event with invalid serviceEventDetails was written")
	}
}
