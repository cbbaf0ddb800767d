package ctapi

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/awserr"
)

func TestFacts(t *testing.T) {
	f := Facts()
	if f.TargetPrefix != "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101" || f.SigningName != "cloudtrail" ||
		f.EventSource != "cloudtrail.amazonaws.com" || f.MessageField != "Message" || f.InternalErrorCode != "InternalFailure" {
		t.Errorf("Facts() = %+v", f)
	}
	if e := Errors["InvalidNextTokenException"]; e.Status != 400 || e.MessageField != "Message" {
		t.Errorf("Errors[InvalidNextTokenException] = %+v", e)
	}
	for _, op := range Operations(UnimplementedService{}) {
		if op.Name == "LookupEvents" && (!op.ReadOnly || op.Action != "cloudtrail:LookupEvents") {
			t.Errorf("LookupEvents operation = %+v, want read-only cloudtrail:LookupEvents", op)
		}
	}
}

func TestLookupEventsWire(t *testing.T) {
	var in LookupEventsInput
	err := in.UnmarshalAWSJSON([]byte(`{"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":"Encrypt"}],` +
		`"StartTime":1700000000,"EndTime":1700000100.5,"MaxResults":10,"NextToken":"t"}`))
	if err != nil {
		t.Fatal(err)
	}
	if in.LookupAttributes[0].AttributeKey != LookupAttributeKeyEventName || *in.LookupAttributes[0].AttributeValue != "Encrypt" ||
		!in.StartTime.Equal(time.Unix(1700000000, 0)) || !in.EndTime.Equal(time.Unix(1700000100, 5e8)) || *in.MaxResults != 10 {
		t.Errorf("decoded %+v", in)
	}
	when := time.Unix(1700000000, 0)
	out := &LookupEventsOutput{Events: []Event{{EventId: ptr("id"), ReadOnly: ptr("true"), EventTime: &when,
		Resources: []Resource{{ResourceType: ptr("AWS::KMS::Key"), ResourceName: ptr("k")}}, CloudTrailEvent: ptr(`{"a":1}`)}}}
	got := string(out.AppendJSON(nil))
	want := `{"Events":[{"EventId":"id","ReadOnly":"true","EventTime":1700000000,"Resources":[{"ResourceType":"AWS::KMS::Key","ResourceName":"k"}],"CloudTrailEvent":"{\"a\":1}"}]}`
	if got != want {
		t.Errorf("AppendJSON = %s, want %s", got, want)
	}
}

// TestShapesBeyondKMSAndSM covers what only the CloudTrail model has:
// doubles and floats, timestamps in lists, and constrained map keys and
// values.
func TestShapesBeyondKMSAndSM(t *testing.T) {
	when := time.Unix(1700000000, 250e6)
	out := &ListInsightsMetricDataOutput{Timestamps: []time.Time{when}, Values: []float64{1.5, math.NaN(), math.Inf(-1)}}
	if got, want := string(out.AppendJSON(nil)), `{"Timestamps":[1700000000.25],"Values":[1.5,"NaN","-Infinity"]}`; got != want {
		t.Errorf("AppendJSON = %s, want %s", got, want)
	}
	r := float32(0.5)
	if got, want := string((&SearchSampleQueriesSearchResult{Relevance: &r}).AppendJSON(nil)), `{"Relevance":0.5}`; got != want {
		t.Errorf("AppendJSON = %s, want %s", got, want)
	}
	in := &ListInsightsDataInput{InsightSource: ptr("arn:aws:cloudtrail:us-east-1:111122223333:trail/t"), DataType: ListInsightsDataTypeInsightsEvents,
		Dimensions: map[string]string{"Nope": strings.Repeat("v", 2001)}}
	err := in.Validate()
	e, ok := awserr.As(err)
	if !ok || e.Code != "ValidationException" ||
		!strings.Contains(e.Message, "Value at 'dimensions' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy enum value set: [EventId, EventName, EventSource]]") ||
		!strings.Contains(e.Message, "Map value must satisfy constraint: [Member must have length less than or equal to 2000]") {
		t.Errorf("Validate() = %v", err)
	}
	in.Dimensions = map[string]string{"EventName": "Encrypt"}
	if err := in.Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil", err)
	}
}

func ptr[T any](v T) *T { return &v }
