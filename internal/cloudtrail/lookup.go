package cloudtrail

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/cloudtrail/ctapi"
	"github.com/keyfort/keyfort/internal/iam"
	"github.com/keyfort/keyfort/internal/identity"
)

// Exception codes of LookupEvents (the model's errors of the operation).
const (
	codeInvalidLookupAttributes = "InvalidLookupAttributesException"
	codeInvalidTimeRange        = "InvalidTimeRangeException"
	codeInvalidMaxResults       = "InvalidMaxResultsException"
	codeInvalidNextToken        = "InvalidNextTokenException"
	codeInvalidEventCategory    = "InvalidEventCategoryException"
	codeUnsupportedOperation    = "UnsupportedOperationException"
)

// LookupEvents limits, from the CloudTrail API reference and model.
const (
	// DefaultMaxResults is the page size when MaxResults is absent, and
	// the largest one allowed.
	DefaultMaxResults = 50
	// maxAttributeValue is LookupAttributeValue's maximum length.
	maxAttributeValue = 2000
	// Lookback is how far back LookupEvents looks when StartTime is absent:
	// CloudTrail's event history covers the last 90 days.
	Lookback = 90 * 24 * time.Hour
)

var errNoCaller = errors.New("cloudtrail: no caller in the request context")

// LookupEvents returns the caller's account and region's events, newest
// first, as AWS's CloudTrail does:
//   - at most one LookupAttribute, of a key the model lists and a value of
//     1 to 2000 characters, else InvalidLookupAttributesException; a
//     ReadOnly value other than "true" or "false" matches nothing;
//   - StartTime and EndTime bound the event time, both inclusive; without
//     StartTime the last 90 days (Lookback), without EndTime up to now; a
//     StartTime after the EndTime is InvalidTimeRangeException;
//   - MaxResults 1 to 50, by default 50, else InvalidMaxResultsException;
//   - NextToken is the token of the previous page, for a request with the
//     same parameters (MaxResults may change); any other is
//     InvalidNextTokenException;
//   - EventCategory "insight" asks for CloudTrail Insights events, of which
//     Keyfort has none: an empty list; another value is
//     InvalidEventCategoryException.
//
// Each event's EventTime is the event time in whole seconds, as CloudTrail
// records it; ReadOnly is "true" or "false"; CloudTrailEvent is the event's
// JSON. The caller's identity policies must allow cloudtrail:LookupEvents
// (the account root always may), else AccessDeniedException.
func (s *Service) LookupEvents(ctx context.Context, in *ctapi.LookupEventsInput) (*ctapi.LookupEventsOutput, error) {
	c := identity.From(ctx)
	if c == nil {
		return nil, errNoCaller
	}
	if err := s.authorize(ctx, c, in.IAMAction()); err != nil {
		return nil, err
	}
	if err := validateLookup(in); err != nil {
		return nil, err
	}
	p := lookupParams(c, in)
	limit := DefaultMaxResults
	if in.MaxResults != nil {
		limit = int(*in.MaxResults)
	}
	now := s.now()
	q := Query{Account: c.Account, Region: c.Region, Attribute: p.attribute, Value: p.value, Limit: limit + 1}
	if in.NextToken != nil {
		tok, err := parseToken(*in.NextToken, p)
		if err != nil {
			return nil, err
		}
		q.From, q.To, q.After = tok.from, tok.to, tok.after
	} else {
		q.To = now
		if in.EndTime != nil {
			q.To = *in.EndTime
		}
		q.From = now.Add(-Lookback)
		if in.StartTime != nil {
			q.From = *in.StartTime
			if q.From.After(q.To) {
				return nil, awserr.New(codeInvalidTimeRange, "Start time must be before or equal to end time.")
			}
		}
	}
	q.From, q.To = clampTime(q.From), clampTime(q.To)
	out := &ctapi.LookupEventsOutput{Events: []ctapi.Event{}}
	if in.EventCategory == ctapi.EventCategoryInsight || q.From.After(q.To) || p.matchesNothing {
		// No Insights events; a window that ends before the last 90 days
		// begin; a ReadOnly value that is neither "true" nor "false".
		return out, nil
	}
	events, err := s.find.Find(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("cloudtrail: find events: %w", err)
	}
	more := len(events) > limit
	if more {
		events = events[:limit]
	}
	for i := range events {
		out.Events = append(out.Events, eventOf(&events[i]))
	}
	if more {
		last := events[len(events)-1]
		tok := token{from: q.From, to: q.To, after: Cursor{Time: last.Time, ID: last.ID}}
		t := tok.encode(p)
		out.NextToken = &t
	}
	return out, nil
}

// Times a Query carries: what int64 unix nanoseconds can hold (about 1678
// to 2262), as the store and NextTokens keep them.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// clampTime returns t within [minTime, maxTime]: a StartTime or EndTime
// beyond them bounds nothing more.
func clampTime(t time.Time) time.Time {
	switch {
	case t.Before(minTime):
		return minTime
	case t.After(maxTime):
		return maxTime
	}
	return t
}

// eventOf returns the LookupEvents entry of e.
func eventOf(e *Event) ctapi.Event {
	t := e.Time.Truncate(time.Second)
	out := ctapi.Event{
		EventId:         strPtr(e.ID),
		EventName:       strPtr(e.Name),
		ReadOnly:        strPtr(strconv.FormatBool(e.ReadOnly)),
		EventTime:       &t,
		EventSource:     strPtr(e.Source),
		Resources:       []ctapi.Resource{},
		CloudTrailEvent: strPtr(string(e.JSON)),
	}
	if e.AccessKeyID != "" {
		out.AccessKeyId = strPtr(e.AccessKeyID)
	}
	if e.Username != "" {
		out.Username = strPtr(e.Username)
	}
	for _, r := range e.Resources {
		out.Resources = append(out.Resources, ctapi.Resource{ResourceType: strPtr(r.Type), ResourceName: strPtr(r.Name)})
	}
	return out
}

func strPtr(s string) *string { return &s }

// validateLookup checks what the model constrains in a LookupEvents request
// and answers with the operation's own exceptions, as CloudTrail does (not
// the generic ValidationException). Time range and token checks need the
// caller and the clock: LookupEvents makes them.
func validateLookup(in *ctapi.LookupEventsInput) error {
	switch n := len(in.LookupAttributes); {
	case n > 1:
		return awserr.New(codeInvalidLookupAttributes, "LookupAttributes can contain only one item.")
	case n == 1:
		a := in.LookupAttributes[0]
		if !validKey(a.AttributeKey) {
			return awserr.New(codeInvalidLookupAttributes, "AttributeKey must be one of "+keyList()+".")
		}
		if a.AttributeValue == nil {
			return awserr.New(codeInvalidLookupAttributes, "AttributeValue must be specified.")
		}
		if n := utf8.RuneCountInString(*a.AttributeValue); n < 1 || n > maxAttributeValue {
			return awserr.New(codeInvalidLookupAttributes, "AttributeValue must have a length between 1 and "+strconv.Itoa(maxAttributeValue)+" characters.")
		}
	}
	if in.MaxResults != nil && (*in.MaxResults < 1 || *in.MaxResults > DefaultMaxResults) {
		return awserr.New(codeInvalidMaxResults, "MaxResults must be between 1 and "+strconv.Itoa(DefaultMaxResults)+".")
	}
	if in.EventCategory != "" && in.EventCategory != ctapi.EventCategoryInsight {
		return awserr.New(codeInvalidEventCategory, "EventCategory must be insight.")
	}
	return nil
}

func validKey(k ctapi.LookupAttributeKey) bool {
	for _, v := range k.Values() {
		if k == v {
			return true
		}
	}
	return false
}

func keyList() string {
	var names []string
	for _, v := range ctapi.LookupAttributeKey("").Values() {
		names = append(names, string(v))
	}
	return strings.Join(names, ", ")
}

// params are the parameters of a LookupEvents request that a NextToken is
// bound to: a token is valid only for the request it continues.
type params struct {
	account, region  string
	attribute, value string
	start, end       *time.Time
	category         string
	// matchesNothing is set for a ReadOnly value other than "true" or
	// "false".
	matchesNothing bool
}

// lookupParams returns the parameters of a validated request.
func lookupParams(c *identity.Caller, in *ctapi.LookupEventsInput) params {
	p := params{account: c.Account, region: c.Region, start: in.StartTime, end: in.EndTime, category: string(in.EventCategory)}
	if len(in.LookupAttributes) == 1 {
		a := in.LookupAttributes[0]
		p.attribute, p.value = string(a.AttributeKey), *a.AttributeValue
		if p.attribute == AttrReadOnly && p.value != "true" && p.value != "false" {
			p.matchesNothing = true
		}
	}
	return p
}

// authorize decides cloudtrail:LookupEvents, an action on no resource: the
// caller's identity policies on "*" (the account root is always allowed).
func (s *Service) authorize(ctx context.Context, c *identity.Caller, action string) error {
	res := iam.Authorize(iam.Authorization{
		Request:  &iam.Request{Action: action, Resource: "*", Principal: &c.Principal, Context: &ctContext{caller: c, via: identity.ViaFrom(ctx), now: s.now()}},
		Identity: c.Policies,
	})
	if res.Allowed() {
		return nil
	}
	return awserr.New(awserr.CodeAccessDenied, res.DeniedMessage(c.ARN, action, ""))
}

// ctContext answers the condition keys of a CloudTrail request: the global
// ones (CloudTrail's LookupEvents has no service-specific keys).
type ctContext struct {
	caller *identity.Caller
	via    *identity.Via
	now    time.Time
}

// Value implements iam.Context.
func (c *ctContext) Value(key string) ([]string, bool) {
	return identity.GlobalValue(c.caller, c.via, c.now, key)
}
