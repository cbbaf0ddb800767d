package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	ctsvc "github.com/keyfort/keyfort/internal/cloudtrail"
	"github.com/keyfort/keyfort/internal/keyfortest"
)

// TestCloudTrailLookupEventsErrors drives LookupEvents through the SDK's
// CloudTrail client against the real server (with the app's default
// Finder, which finds nothing yet): an empty result, each validation error
// as the SDK's typed exception, the other operations' error, and the
// request's own audit event.
func TestCloudTrailLookupEventsErrors(t *testing.T) {
	srv := startAudited(t)
	ct := srv.CloudTrail()

	out, err := ct.LookupEvents(ctxT(t), &cloudtrail.LookupEventsInput{})
	mustNoErr(t, err, "LookupEvents")
	if len(out.Events) != 0 || out.NextToken != nil {
		t.Fatalf("LookupEvents = %d events, token %v; want none", len(out.Events), out.NextToken)
	}
	out, err = ct.LookupEvents(ctxT(t), &cloudtrail.LookupEventsInput{EventCategory: cttypes.EventCategoryInsight,
		LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyEventName, AttributeValue: aws.String("Encrypt")}}})
	mustNoErr(t, err, "LookupEvents insight")
	if len(out.Events) != 0 {
		t.Fatalf("LookupEvents(insight) = %d events", len(out.Events))
	}

	now := time.Now()
	attr := func(k cttypes.LookupAttributeKey, v string) cttypes.LookupAttribute {
		return cttypes.LookupAttribute{AttributeKey: k, AttributeValue: aws.String(v)}
	}
	tests := []struct {
		name string
		in   *cloudtrail.LookupEventsInput
		as   any
		code string
		msg  string
	}{
		{"two attributes", &cloudtrail.LookupEventsInput{LookupAttributes: []cttypes.LookupAttribute{
			attr(cttypes.LookupAttributeKeyEventName, "Encrypt"), attr(cttypes.LookupAttributeKeyUsername, "root")}},
			new(*cttypes.InvalidLookupAttributesException), "InvalidLookupAttributesException", "LookupAttributes can contain only one item."},
		{"unknown key", &cloudtrail.LookupEventsInput{LookupAttributes: []cttypes.LookupAttribute{attr("UserName", "root")}},
			new(*cttypes.InvalidLookupAttributesException), "InvalidLookupAttributesException", "AttributeKey must be one of"},
		{"empty value", &cloudtrail.LookupEventsInput{LookupAttributes: []cttypes.LookupAttribute{attr(cttypes.LookupAttributeKeyEventName, "")}},
			new(*cttypes.InvalidLookupAttributesException), "InvalidLookupAttributesException", "between 1 and 2000"},
		{"MaxResults 51", &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(51)},
			new(*cttypes.InvalidMaxResultsException), "InvalidMaxResultsException", "MaxResults must be between 1 and 50."},
		{"MaxResults 0", &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(0)},
			new(*cttypes.InvalidMaxResultsException), "InvalidMaxResultsException", ""},
		{"start after end", &cloudtrail.LookupEventsInput{StartTime: aws.Time(now), EndTime: aws.Time(now.Add(-time.Hour))},
			new(*cttypes.InvalidTimeRangeException), "InvalidTimeRangeException", "Start time must be before or equal to end time."},
		{"bad token", &cloudtrail.LookupEventsInput{NextToken: aws.String("not-a-token")},
			new(*cttypes.InvalidNextTokenException), "InvalidNextTokenException", "The NextToken is not valid."},
		{"bad category", &cloudtrail.LookupEventsInput{EventCategory: "management"},
			new(*cttypes.InvalidEventCategoryException), "InvalidEventCategoryException", "EventCategory must be insight."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ct.LookupEvents(ctxT(t), tt.in)
			wantAPIError(t, err, tt.code, tt.msg)
			if !errors.As(err, tt.as) {
				t.Errorf("error %T is not the SDK's %T", err, tt.as)
			}
		})
	}

	_, err = ct.DescribeTrails(ctxT(t), &cloudtrail.DescribeTrailsInput{})
	wantAPIError(t, err, "UnsupportedOperationException", "Keyfort serves only LookupEvents of the CloudTrail API; DescribeTrails is not supported.")
	if !errors.As(err, new(*cttypes.UnsupportedOperationException)) {
		t.Errorf("DescribeTrails error %T is not the SDK's UnsupportedOperationException", err)
	}

	// Each LookupEvents call is a CloudTrail management read event.
	var lookups, failed int
	for _, e := range readAudit(t, srv) {
		if e.EventName != "LookupEvents" {
			continue
		}
		lookups++
		if e.EventSource != "cloudtrail.amazonaws.com" || !e.ReadOnly || e.ResponseElements != nil && string(e.ResponseElements) != "null" {
			t.Errorf("LookupEvents audit event = %+v", e)
		}
		if e.ErrorCode != "" {
			failed++
		}
	}
	if lookups != 2+len(tests) || failed != len(tests) {
		t.Errorf("audit trail has %d LookupEvents events (%d failed), want %d (%d failed)", lookups, failed, 2+len(tests), len(tests))
	}
}

// sliceFinder finds events in a slice, as the Finder contract says (no
// attribute filtering but EventName, which the test uses).
type sliceFinder struct {
	mu      sync.Mutex
	events  []ctsvc.Event // newest first
	account string
	queries []ctsvc.Query
}

func (f *sliceFinder) Find(_ context.Context, q ctsvc.Query) ([]ctsvc.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	if q.Account != f.account || q.Region != keyfortest.DefaultRegion {
		return nil, nil
	}
	var out []ctsvc.Event
	past := q.After.IsZero()
	for _, e := range f.events {
		if !past {
			past = e.ID == q.After.ID
			continue
		}
		if e.Time.Before(q.From) || e.Time.After(q.To) || q.Attribute == ctsvc.AttrEventName && e.Name != q.Value {
			continue
		}
		if len(out) == q.Limit {
			break
		}
		out = append(out, e)
	}
	return out, nil
}

// TestCloudTrailLookupEventsPages pages through events a Finder holds with
// the SDK's paginator: every event once, newest first, each field as the
// SDK reads it.
func TestCloudTrailLookupEventsPages(t *testing.T) {
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	f := &sliceFinder{account: "123456789012"}
	for i := range 7 {
		id := fmt.Sprintf("6f1c2f1e-0000-4000-8000-%012d", i)
		f.events = append(f.events, ctsvc.Event{ID: id, Time: base.Add(-time.Duration(i) * time.Minute), Name: []string{"Encrypt", "Decrypt"}[i%2],
			Source: "kms.amazonaws.com", Username: "root", AccessKeyID: keyfortest.DefaultAccessKey, ReadOnly: i%2 == 1,
			Resources: []ctsvc.Resource{{Type: "AWS::KMS::Key", Name: "arn:aws:kms:us-east-1:123456789012:key/k"}},
			JSON:      []byte(`{"eventVersion":"1.08","eventID":"` + id + `"}`)})
	}
	srv := keyfortest.Start(t, keyfortest.WithEventFinder(f))
	ct := srv.CloudTrail()

	p := cloudtrail.NewLookupEventsPaginator(ct, &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(3)})
	var got []string
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctxT(t))
		mustNoErr(t, err, "LookupEvents page")
		pages++
		for _, e := range page.Events {
			got = append(got, aws.ToString(e.EventId))
		}
		if pages == 1 {
			e := page.Events[0]
			if aws.ToString(e.EventName) != "Encrypt" || aws.ToString(e.ReadOnly) != "false" || !aws.ToTime(e.EventTime).Equal(base) ||
				aws.ToString(e.EventSource) != "kms.amazonaws.com" || aws.ToString(e.Username) != "root" ||
				aws.ToString(e.AccessKeyId) != keyfortest.DefaultAccessKey || len(e.Resources) != 1 ||
				aws.ToString(e.Resources[0].ResourceType) != "AWS::KMS::Key" ||
				aws.ToString(e.CloudTrailEvent) != `{"eventVersion":"1.08","eventID":"`+aws.ToString(e.EventId)+`"}` {
				t.Errorf("first event = %+v", e)
			}
		}
	}
	var want []string
	for _, e := range f.events {
		want = append(want, e.ID)
	}
	if pages != 3 || !slices.Equal(got, want) {
		t.Errorf("paginated %d pages %v, want 3 pages %v", pages, got, want)
	}

	// One attribute; a token used with other parameters is refused.
	out, err := ct.LookupEvents(ctxT(t), &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(2),
		LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyEventName, AttributeValue: aws.String("Decrypt")}}})
	mustNoErr(t, err, "LookupEvents EventName=Decrypt")
	if len(out.Events) != 2 || aws.ToString(out.Events[0].EventName) != "Decrypt" || out.NextToken == nil {
		t.Fatalf("LookupEvents(EventName=Decrypt) = %+v", out)
	}
	_, err = ct.LookupEvents(ctxT(t), &cloudtrail.LookupEventsInput{NextToken: out.NextToken})
	wantAPIError(t, err, "InvalidNextTokenException", "same parameters")
	// Another account sees none of these events and cannot use the token.
	other := srv.CloudTrailAs("444455556666", keyfortest.DefaultRegion)
	_, err = other.LookupEvents(ctxT(t), &cloudtrail.LookupEventsInput{NextToken: out.NextToken,
		LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyEventName, AttributeValue: aws.String("Decrypt")}}})
	wantAPIError(t, err, "InvalidNextTokenException", "")
	res, err := other.LookupEvents(ctxT(t), &cloudtrail.LookupEventsInput{})
	mustNoErr(t, err, "LookupEvents as another account")
	if len(res.Events) != 0 {
		t.Errorf("another account found %d events", len(res.Events))
	}
}
