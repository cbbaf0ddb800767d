package cloudtrail

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/cloudtrail/ctapi"
	"github.com/keyfort/keyfort/internal/iam"
	"github.com/keyfort/keyfort/internal/identity"
)

const (
	account = "111122223333"
	region  = "us-east-1"
)

// memFinder is the Finder contract over a slice: the reference the store
// adapter must agree with. It records the queries it answers.
type memFinder struct {
	events  []Event // any order; every event is of account/region
	queries []Query
	err     error
}

func (f *memFinder) Find(_ context.Context, q Query) ([]Event, error) {
	f.queries = append(f.queries, q)
	if f.err != nil {
		return nil, f.err
	}
	if q.Account != account || q.Region != region || q.Limit <= 0 {
		return nil, nil
	}
	var out []Event
	for _, e := range f.events {
		if e.Time.Before(q.From) || e.Time.After(q.To) || !matches(e, q.Attribute, q.Value) {
			continue
		}
		if !q.After.IsZero() && !newerFirst(q.After, Cursor{e.Time, e.ID}) {
			continue
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Event) int {
		if newerFirst(Cursor{a.Time, a.ID}, Cursor{b.Time, b.ID}) {
			return -1
		}
		return 1
	})
	return out[:min(len(out), q.Limit)], nil
}

// newerFirst reports whether a comes before b in the newest-first order.
func newerFirst(a, b Cursor) bool {
	if c := a.Time.Compare(b.Time); c != 0 {
		return c > 0
	}
	return cmp.Compare(a.ID, b.ID) > 0
}

func matches(e Event, attr, value string) bool {
	switch attr {
	case "":
		return true
	case AttrEventID:
		return e.ID == value
	case AttrEventName:
		return e.Name == value
	case AttrReadOnly:
		return e.ReadOnly == (value == "true")
	case AttrUsername:
		return e.Username == value
	case AttrResourceType, AttrResourceName:
		for _, r := range e.Resources {
			if attr == AttrResourceType && r.Type == value || attr == AttrResourceName && r.Name == value {
				return true
			}
		}
		return false
	case AttrEventSource:
		return e.Source == value
	case AttrAccessKeyID:
		return e.AccessKeyID == value
	}
	panic("unknown attribute " + attr)
}

var now = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

// trail returns a few events of different names, sources, users, keys
// and resources, one per minute before now (index 0 the newest), plus one
// 91 days old.
func trail() []Event {
	mk := func(i int, name, src, user, key string, ro bool, res ...Resource) Event {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		return Event{ID: id, Time: now.Add(-time.Duration(i) * time.Minute).Add(-123 * time.Millisecond), Name: name, Source: src,
			Username: user, AccessKeyID: key, ReadOnly: ro, Resources: res, JSON: []byte(`{"eventID":"` + id + `"}`)}
	}
	key := Resource{Type: "AWS::KMS::Key", Name: "arn:aws:kms:us-east-1:111122223333:key/k1"}
	sec := Resource{Type: "AWS::SecretsManager::Secret", Name: "arn:aws:secretsmanager:us-east-1:111122223333:secret:db-AbCdEf"}
	events := []Event{
		mk(0, "Encrypt", "kms.amazonaws.com", "alice", "AKIAALICE", false, key),
		mk(1, "GetSecretValue", "secretsmanager.amazonaws.com", "bob", "AKIABOB", true, sec),
		mk(2, "Decrypt", "kms.amazonaws.com", "root", "AKIAROOT", false, key),
		mk(3, "DescribeKey", "kms.amazonaws.com", "alice", "AKIAALICE", true, key),
		mk(4, "CreateSecret", "secretsmanager.amazonaws.com", "alice", "AKIAALICE", false, sec, key),
		mk(5, "LookupEvents", "cloudtrail.amazonaws.com", "root", "AKIAROOT", true),
		mk(6, "CreateKey", "kms.amazonaws.com", "bob", "AKIABOB", false, key),
	}
	old := mk(99, "CreateKey", "kms.amazonaws.com", "bob", "AKIABOB", false, key)
	old.Time = now.Add(-91 * 24 * time.Hour)
	return append(events, old)
}

func rootCtx() context.Context {
	return identity.With(context.Background(), identity.Root(account, region, "AKIAROOT"))
}

func newService(f Finder) *Service {
	return New(Config{Finder: f, Now: func() time.Time { return now }})
}

func attr(k, v string) []ctapi.LookupAttribute {
	return []ctapi.LookupAttribute{{AttributeKey: ctapi.LookupAttributeKey(k), AttributeValue: &v}}
}

func ptr[T any](v T) *T { return &v }

func ids(out *ctapi.LookupEventsOutput) []string {
	var s []string
	for _, e := range out.Events {
		s = append(s, (*e.EventId)[len(*e.EventId)-2:])
	}
	return s
}

func TestLookupEventsAttributes(t *testing.T) {
	svc := newService(&memFinder{events: trail()})
	tests := []struct {
		key, value string
		want       []string
	}{
		{"", "", []string{"00", "01", "02", "03", "04", "05", "06"}},
		{AttrEventID, "00000000-0000-4000-8000-000000000003", []string{"03"}},
		{AttrEventName, "CreateKey", []string{"06"}}, // the older one is past 90 days
		{AttrEventName, "createkey", nil},
		{AttrReadOnly, "true", []string{"01", "03", "05"}},
		{AttrReadOnly, "false", []string{"00", "02", "04", "06"}},
		{AttrReadOnly, "TRUE", nil},
		{AttrUsername, "alice", []string{"00", "03", "04"}},
		{AttrResourceType, "AWS::SecretsManager::Secret", []string{"01", "04"}},
		{AttrResourceName, "arn:aws:kms:us-east-1:111122223333:key/k1", []string{"00", "02", "03", "04", "06"}},
		{AttrEventSource, "cloudtrail.amazonaws.com", []string{"05"}},
		{AttrAccessKeyID, "AKIABOB", []string{"01", "06"}},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			in := &ctapi.LookupEventsInput{}
			if tt.key != "" {
				in.LookupAttributes = attr(tt.key, tt.value)
			}
			out, err := svc.LookupEvents(rootCtx(), in)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(out); !slices.Equal(got, tt.want) {
				t.Errorf("LookupEvents(%s=%q) = %v, want %v", tt.key, tt.value, got, tt.want)
			}
			if out.NextToken != nil || out.Events == nil {
				t.Errorf("NextToken = %v, Events nil = %v; want no token and a list", out.NextToken, out.Events == nil)
			}
		})
	}
}

func TestLookupEventsFields(t *testing.T) {
	svc := newService(&memFinder{events: trail()})
	out, err := svc.LookupEvents(rootCtx(), &ctapi.LookupEventsInput{LookupAttributes: attr(AttrEventName, "CreateSecret")})
	if err != nil {
		t.Fatal(err)
	}
	got := string(out.AppendJSON(nil))
	want := `{"Events":[{"EventId":"00000000-0000-4000-8000-000000000004","EventName":"CreateSecret","ReadOnly":"false",` +
		`"AccessKeyId":"AKIAALICE","EventTime":` + fmt.Sprint(now.Add(-4*time.Minute-time.Second).Unix()) + `,"EventSource":"secretsmanager.amazonaws.com",` +
		`"Username":"alice","Resources":[{"ResourceType":"AWS::SecretsManager::Secret","ResourceName":"arn:aws:secretsmanager:us-east-1:111122223333:secret:db-AbCdEf"},` +
		`{"ResourceType":"AWS::KMS::Key","ResourceName":"arn:aws:kms:us-east-1:111122223333:key/k1"}],` +
		`"CloudTrailEvent":"{\"eventID\":\"00000000-0000-4000-8000-000000000004\"}"}]}`
	if got != want {
		t.Errorf("LookupEvents JSON =\n%s\nwant\n%s", got, want)
	}
	// An event without resources, user or access key.
	f := &memFinder{events: []Event{{ID: "e", Time: now, Name: "X", Source: "kms.amazonaws.com", ReadOnly: true, JSON: []byte(`{}`)}}}
	out, err = newService(f).LookupEvents(rootCtx(), &ctapi.LookupEventsInput{})
	if err != nil {
		t.Fatal(err)
	}
	want = `{"Events":[{"EventId":"e","EventName":"X","ReadOnly":"true","EventTime":` + fmt.Sprint(now.Unix()) +
		`,"EventSource":"kms.amazonaws.com","Resources":[],"CloudTrailEvent":"{}"}]}`
	if got := string(out.AppendJSON(nil)); got != want {
		t.Errorf("LookupEvents JSON =\n%s\nwant\n%s", got, want)
	}
}

func TestLookupEventsTimeRange(t *testing.T) {
	f := &memFinder{events: trail()}
	svc := newService(f)
	at := func(min int) *time.Time {
		t := now.Add(-time.Duration(min) * time.Minute).Add(-123 * time.Millisecond)
		return &t
	}
	tests := []struct {
		name       string
		start, end *time.Time
		want       []string
	}{
		{"inclusive bounds", at(4), at(2), []string{"02", "03", "04"}},
		{"start only", at(1), nil, []string{"00", "01"}},
		{"end only: back 90 days", nil, at(5), []string{"05", "06"}},
		{"equal bounds", at(3), at(3), []string{"03"}},
		{"explicit start beyond 90 days", ptr(now.Add(-100 * 24 * time.Hour)), at(6), []string{"06", "99"}},
		{"end before the last 90 days", nil, ptr(now.Add(-95 * 24 * time.Hour)), nil},
		{"beyond unix nanoseconds", ptr(time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)), ptr(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)),
			[]string{"00", "01", "02", "03", "04", "05", "06", "99"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := svc.LookupEvents(rootCtx(), &ctapi.LookupEventsInput{StartTime: tt.start, EndTime: tt.end})
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(out); !slices.Equal(got, tt.want) {
				t.Errorf("LookupEvents = %v, want %v", got, tt.want)
			}
		})
	}
	f.queries = nil
	if _, err := svc.LookupEvents(rootCtx(), &ctapi.LookupEventsInput{}); err != nil {
		t.Fatal(err)
	}
	if q := f.queries[0]; !q.From.Equal(now.Add(-Lookback)) || !q.To.Equal(now) || q.Limit != DefaultMaxResults+1 ||
		q.Account != account || q.Region != region || q.Attribute != "" || !q.After.IsZero() {
		t.Errorf("default query = %+v", q)
	}
	// A window beyond unix nanoseconds pages like any other.
	far := &ctapi.LookupEventsInput{StartTime: ptr(time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)), EndTime: ptr(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)),
		MaxResults: ptr(int32(4))}
	page1, err := svc.LookupEvents(rootCtx(), far)
	if err != nil || page1.NextToken == nil {
		t.Fatalf("far page 1: %+v, %v", page1, err)
	}
	far.NextToken = page1.NextToken
	page2, err := svc.LookupEvents(rootCtx(), far)
	if err != nil || !slices.Equal(ids(page2), []string{"04", "05", "06", "99"}) {
		t.Errorf("far page 2 = %v, %v; want [04 05 06 99]", ids(page2), err)
	}
	_, err = svc.LookupEvents(rootCtx(), &ctapi.LookupEventsInput{StartTime: at(1), EndTime: at(2)})
	wantErr(t, err, "InvalidTimeRangeException", "Start time must be before or equal to end time.")
	_, err = svc.LookupEvents(rootCtx(), &ctapi.LookupEventsInput{StartTime: ptr(now.Add(time.Hour))})
	wantErr(t, err, "InvalidTimeRangeException", "")
}

func TestLookupEventsPaging(t *testing.T) {
	events := trail()
	// Two events at the same instant: ties by id, descending.
	tie := events[3]
	tie.ID = "00000000-0000-4000-8000-000000000003a"
	events = append(events, tie)
	svc := newService(&memFinder{events: events})
	var pages [][]string
	in := &ctapi.LookupEventsInput{MaxResults: ptr(int32(3))}
	for {
		out, err := svc.LookupEvents(rootCtx(), in)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, ids(out))
		if out.NextToken == nil {
			break
		}
		in.NextToken = out.NextToken
		if len(pages) > 10 {
			t.Fatal("paging does not end")
		}
	}
	want := [][]string{{"00", "01", "02"}, {"3a", "03", "04"}, {"05", "06"}}
	if fmt.Sprint(pages) != fmt.Sprint(want) {
		t.Errorf("pages = %v, want %v", pages, want)
	}
	// Exactly one full page: no token.
	out, err := svc.LookupEvents(rootCtx(), &ctapi.LookupEventsInput{MaxResults: ptr(int32(8))})
	if err != nil || len(out.Events) != 8 || out.NextToken != nil {
		t.Errorf("LookupEvents(MaxResults 8) = %d events, token %v, %v; want 8, none", len(out.Events), out.NextToken, err)
	}
}

func TestLookupEventsNextToken(t *testing.T) {
	f := &memFinder{events: trail()}
	svc := newService(f)
	base := func() *ctapi.LookupEventsInput {
		return &ctapi.LookupEventsInput{LookupAttributes: attr(AttrEventSource, "kms.amazonaws.com"), MaxResults: ptr(int32(1)),
			EndTime: ptr(now)}
	}
	first, err := svc.LookupEvents(rootCtx(), base())
	if err != nil || first.NextToken == nil {
		t.Fatalf("first page: %v, %v", first, err)
	}
	tok := *first.NextToken

	// The next page's window is the first page's, whatever the clock says.
	later := New(Config{Finder: f, Now: func() time.Time { return now.Add(time.Hour) }})
	in := base()
	in.NextToken, in.MaxResults = &tok, ptr(int32(2)) // MaxResults may change
	f.queries = nil
	out, err := later.LookupEvents(rootCtx(), in)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(out); !slices.Equal(got, []string{"02", "03"}) {
		t.Errorf("second page = %v, want [02 03]", got)
	}
	if q := f.queries[0]; !q.To.Equal(now) || q.After.ID != "00000000-0000-4000-8000-000000000000" || !q.After.Time.Equal(now.Add(-123*time.Millisecond)) {
		t.Errorf("second query = %+v", q)
	}

	const mismatch = "The NextToken is not valid for this request: pass it with the same parameters as the request that returned it."
	other := []struct {
		name string
		edit func(in *ctapi.LookupEventsInput) context.Context
	}{
		{"another attribute value", func(in *ctapi.LookupEventsInput) context.Context {
			in.LookupAttributes = attr(AttrEventSource, "secretsmanager.amazonaws.com")
			return rootCtx()
		}},
		{"another attribute key", func(in *ctapi.LookupEventsInput) context.Context {
			in.LookupAttributes = attr(AttrEventName, "kms.amazonaws.com")
			return rootCtx()
		}},
		{"no attribute", func(in *ctapi.LookupEventsInput) context.Context { in.LookupAttributes = nil; return rootCtx() }},
		{"another end time", func(in *ctapi.LookupEventsInput) context.Context {
			in.EndTime = ptr(now.Add(time.Second))
			return rootCtx()
		}},
		{"no end time", func(in *ctapi.LookupEventsInput) context.Context { in.EndTime = nil; return rootCtx() }},
		{"a start time", func(in *ctapi.LookupEventsInput) context.Context {
			in.StartTime = ptr(now.Add(-time.Hour))
			return rootCtx()
		}},
		{"insight", func(in *ctapi.LookupEventsInput) context.Context {
			in.EventCategory = ctapi.EventCategoryInsight
			return rootCtx()
		}},
		{"another account", func(*ctapi.LookupEventsInput) context.Context {
			return identity.With(context.Background(), identity.Root("444455556666", region, "AKIAOTHER"))
		}},
		{"another region", func(*ctapi.LookupEventsInput) context.Context {
			return identity.With(context.Background(), identity.Root(account, "eu-west-1", "AKIAROOT"))
		}},
	}
	for _, tt := range other {
		t.Run(tt.name, func(t *testing.T) {
			in := base()
			in.NextToken = &tok
			ctx := tt.edit(in)
			_, err := svc.LookupEvents(ctx, in)
			wantErr(t, err, "InvalidNextTokenException", mismatch)
		})
	}
	raw := []byte(tok)
	for i, bad := range []string{"", "x", "not base64!", strings.Repeat("A", 600), tok[:len(tok)-2], tok + "AA",
		string(append(raw[:len(raw)-3:len(raw)-3], 'A', 'A', 'A')), tok[:10] + flip(tok[10]) + tok[11:]} {
		in := base()
		in.NextToken = &bad
		_, err := svc.LookupEvents(rootCtx(), in)
		var e *awserr.Error
		if !errors.As(err, &e) || e.Code != "InvalidNextTokenException" {
			t.Errorf("bad token %d (%.20q): error %v, want InvalidNextTokenException", i, bad, err)
		}
	}
}

func TestLookupEventsValidation(t *testing.T) {
	svc := newService(&memFinder{events: trail()})
	long := strings.Repeat("é", 2001)
	two := append(attr(AttrEventName, "a"), attr(AttrUsername, "b")...)
	tests := []struct {
		name     string
		in       *ctapi.LookupEventsInput
		code     string
		contains string
	}{
		{"two attributes", &ctapi.LookupEventsInput{LookupAttributes: two}, "InvalidLookupAttributesException", "LookupAttributes can contain only one item."},
		{"unknown key", &ctapi.LookupEventsInput{LookupAttributes: attr("UserName", "a")}, "InvalidLookupAttributesException",
			"AttributeKey must be one of EventId, EventName, ReadOnly, Username, ResourceType, ResourceName, EventSource, AccessKeyId."},
		{"missing key", &ctapi.LookupEventsInput{LookupAttributes: attr("", "a")}, "InvalidLookupAttributesException", "AttributeKey must be one of"},
		{"missing value", &ctapi.LookupEventsInput{LookupAttributes: []ctapi.LookupAttribute{{AttributeKey: ctapi.LookupAttributeKeyEventName}}},
			"InvalidLookupAttributesException", "AttributeValue must be specified."},
		{"empty value", &ctapi.LookupEventsInput{LookupAttributes: attr(AttrEventName, "")}, "InvalidLookupAttributesException",
			"AttributeValue must have a length between 1 and 2000 characters."},
		{"long value", &ctapi.LookupEventsInput{LookupAttributes: attr(AttrEventName, long)}, "InvalidLookupAttributesException", "between 1 and 2000"},
		{"MaxResults 0", &ctapi.LookupEventsInput{MaxResults: ptr(int32(0))}, "InvalidMaxResultsException", "MaxResults must be between 1 and 50."},
		{"MaxResults 51", &ctapi.LookupEventsInput{MaxResults: ptr(int32(51))}, "InvalidMaxResultsException", "MaxResults must be between 1 and 50."},
		{"event category", &ctapi.LookupEventsInput{EventCategory: "management"}, "InvalidEventCategoryException", "EventCategory must be insight."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.LookupEvents(rootCtx(), tt.in)
			wantErr(t, err, tt.code, tt.contains)
			// The operation table's input validates the same way, before
			// the call (the server's order).
			in := &lookupEventsInput{LookupEventsInput: *tt.in}
			wantErr(t, in.Validate(), tt.code, tt.contains)
		})
	}
	ok := &lookupEventsInput{LookupEventsInput: ctapi.LookupEventsInput{LookupAttributes: attr(AttrEventName, strings.Repeat("é", 2000)),
		MaxResults: ptr(int32(50)), EventCategory: ctapi.EventCategoryInsight}}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil", err)
	}
	// Insights: Keyfort has none.
	out, err := svc.LookupEvents(rootCtx(), &ok.LookupEventsInput)
	if err != nil || len(out.Events) != 0 || out.Events == nil || out.NextToken != nil {
		t.Errorf("LookupEvents(insight) = %+v, %v; want an empty list", out, err)
	}
}

func TestLookupEventsAuthorization(t *testing.T) {
	f := &memFinder{events: trail()}
	svc := newService(f)
	user := func(policy string) context.Context {
		arn := "arn:aws:iam::" + account + ":user/carol"
		c := &identity.Caller{Account: account, Region: region, AccessKeyID: "AKIACAROL", ARN: arn, Type: identity.TypeIAMUser, UserName: "carol",
			Principal: iam.Principal{ARN: arn, PrincipalARN: arn, Account: account, UserID: "AIDACAROL"}}
		if policy != "" {
			c.Policies = []*iam.Policy{iam.MustParse(policy, iam.ParseOptions{Kind: iam.IdentityPolicy})}
		}
		return identity.With(context.Background(), c)
	}
	allow := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"cloudtrail:LookupEvents","Resource":"*"}]}`
	if _, err := svc.LookupEvents(user(allow), &ctapi.LookupEventsInput{}); err != nil {
		t.Errorf("allowed user: %v", err)
	}
	f.queries = nil
	_, err := svc.LookupEvents(user(""), &ctapi.LookupEventsInput{})
	wantErr(t, err, "AccessDeniedException", "User: arn:aws:iam::111122223333:user/carol is not authorized to perform: cloudtrail:LookupEvents because no identity-based policy allows the cloudtrail:LookupEvents action")
	deny := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"cloudtrail:*","Resource":"*"},{"Effect":"Deny","Action":"cloudtrail:Lookup*","Resource":"*"}]}`
	_, err = svc.LookupEvents(user(deny), &ctapi.LookupEventsInput{})
	wantErr(t, err, "AccessDeniedException", "with an explicit deny in an identity-based policy")
	// Authorization comes before everything else, and asks nothing of the
	// trail.
	_, err = svc.LookupEvents(user(""), &ctapi.LookupEventsInput{MaxResults: ptr(int32(99))})
	wantErr(t, err, "AccessDeniedException", "")
	if len(f.queries) != 0 {
		t.Errorf("a denied caller's request reached the Finder: %+v", f.queries)
	}
	// No caller: the server's fault, not an AWS error.
	if _, err := svc.LookupEvents(context.Background(), &ctapi.LookupEventsInput{}); err == nil || errors.As(err, new(*awserr.Error)) {
		t.Errorf("LookupEvents without a caller = %v, want an internal error", err)
	}
}

func TestLookupEventsFinderError(t *testing.T) {
	boom := errors.New("store down")
	_, err := newService(&memFinder{err: boom}).LookupEvents(rootCtx(), &ctapi.LookupEventsInput{})
	if !errors.Is(err, boom) || errors.As(err, new(*awserr.Error)) {
		t.Errorf("LookupEvents with a failing Finder = %v, want the wrapped cause", err)
	}
	// The default Finder finds nothing.
	out, err := New(Config{}).LookupEvents(rootCtx(), &ctapi.LookupEventsInput{})
	if err != nil || out.Events == nil || len(out.Events) != 0 {
		t.Errorf("LookupEvents with NoEvents = %+v, %v", out, err)
	}
}

func TestOperations(t *testing.T) {
	ops := Operations(newService(&memFinder{events: trail()}))
	if len(ops) != 60 {
		t.Fatalf("%d operations, want the model's 60", len(ops))
	}
	for _, op := range ops {
		in := op.NewInput()
		if op.Name == "LookupEvents" {
			if err := in.UnmarshalAWSJSON([]byte(`{"MaxResults":51}`)); err != nil {
				t.Fatal(err)
			}
			wantErr(t, in.Validate(), "InvalidMaxResultsException", "")
			if err := in.UnmarshalAWSJSON([]byte(`{"MaxResults":2}`)); err != nil {
				t.Fatal(err)
			}
			out, err := op.Invoke(rootCtx(), in)
			if err != nil || len(out.(*ctapi.LookupEventsOutput).Events) != 2 {
				t.Errorf("LookupEvents through the table = %v, %v", out, err)
			}
			if !op.ReadOnly || op.Action != "cloudtrail:LookupEvents" {
				t.Errorf("LookupEvents operation = %+v", op)
			}
			continue
		}
		_, err := op.Invoke(rootCtx(), in)
		wantErr(t, err, "UnsupportedOperationException", "Keyfort serves only LookupEvents of the CloudTrail API; "+op.Name+" is not supported.")
	}
}

// flip returns another base64url character than c.
func flip(c byte) string {
	if c == 'B' {
		return "C"
	}
	return "B"
}

func wantErr(t *testing.T, err error, code, contains string) {
	t.Helper()
	e, ok := awserr.As(err)
	if !ok || e.Code != code || !strings.Contains(e.Message, contains) {
		t.Errorf("error = %v, want %s containing %q", err, code, contains)
	}
}
