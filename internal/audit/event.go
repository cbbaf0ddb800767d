// Package audit records every request as a CloudTrail-format event and
// writes events to a sink: a JSON-lines file rotated by size (FileSink) or
// nowhere (Discard); tests keep them in memory (audittest.MemorySink).
//
// Events must never carry a plaintext, a secret value, key material or a
// password: leaving sensitive request and response members out of
// RequestParameters and ResponseElements is the caller's job. A sink that
// cannot write returns an error, and the server then fails the request
// (fail closed) rather than let it go unrecorded.
//
// This package imports only the standard library and Keyfort leaf packages (jsonstr, uuid, durable).
package audit

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/keyfort/keyfort/internal/jsonstr"
	"github.com/keyfort/keyfort/internal/uuid"
)

// Constant CloudTrail values.
const (
	// EventVersion is the CloudTrail record format version Keyfort writes.
	EventVersion = "1.08"
	// EventTypeAPICall is the eventType of an API call.
	EventTypeAPICall = "AwsApiCall"
	// EventTypeServiceEvent is the eventType of what a service records of
	// its own work (KMS's DeleteKey at the end of a waiting period).
	EventTypeServiceEvent = "AwsServiceEvent"
	// AWSInternal is the invokedBy, sourceIPAddress and userAgent of a
	// service event.
	AWSInternal = "AWS Internal"
	// CategoryManagement is the eventCategory of a management event.
	CategoryManagement = "Management"
	// TimeFormat is how eventTime is written (always UTC, whole seconds).
	TimeFormat = "2006-01-02T15:04:05Z"
)

// UserIdentity is CloudTrail's userIdentity element.
type UserIdentity struct {
	// Type is "Root", "IAMUser", "AssumedRole", ...
	Type        string `json:"type,omitempty"`
	PrincipalID string `json:"principalId,omitempty"`
	ARN         string `json:"arn,omitempty"`
	AccountID   string `json:"accountId,omitempty"`
	AccessKeyID string `json:"accessKeyId,omitempty"`
	// UserName is the IAM user's name (IAMUser only).
	UserName string `json:"userName,omitempty"`
	// SessionContext is an assumed-role session's (AssumedRole only).
	SessionContext *SessionContext `json:"sessionContext,omitempty"`
	// InvokedBy names the AWS service that made the call on the
	// principal's behalf ("secretsmanager.amazonaws.com" for Secrets
	// Manager's calls to KMS); empty for the principal's own calls.
	InvokedBy string `json:"invokedBy,omitempty"`
}

// SessionContext is CloudTrail's userIdentity.sessionContext of a role
// session: the role that issued it and when.
type SessionContext struct {
	SessionIssuer SessionIssuer     `json:"sessionIssuer"`
	Attributes    SessionAttributes `json:"attributes"`
}

// SessionIssuer is the role of a session: type "Role", the role's unique
// id, ARN, account and name.
type SessionIssuer struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId"`
	ARN         string `json:"arn"`
	AccountID   string `json:"accountId"`
	UserName    string `json:"userName"`
}

// SessionAttributes are when the session's credentials were issued
// (TimeFormat) and whether with MFA ("true" or "false").
type SessionAttributes struct {
	CreationDate     string `json:"creationDate,omitempty"`
	MFAAuthenticated string `json:"mfaAuthenticated"`
}

// Resource is one element of CloudTrail's resources list.
type Resource struct {
	AccountID string `json:"accountId"`
	// Type is the resource type, e.g. "AWS::KMS::Key" or
	// "AWS::SecretsManager::Secret".
	Type string `json:"type"`
	ARN  string `json:"ARN"`
}

// Event is one CloudTrail record. Its JSON form uses CloudTrail's member
// names; EventTime is written in UTC as TimeFormat. RequestParameters and
// ResponseElements are written as given (null when nil, as CloudTrail does)
// and must already have sensitive members removed.
type Event struct {
	EventVersion        string          `json:"eventVersion"`
	UserIdentity        UserIdentity    `json:"userIdentity"`
	EventTime           time.Time       `json:"eventTime"`
	EventSource         string          `json:"eventSource"`
	EventName           string          `json:"eventName"`
	AWSRegion           string          `json:"awsRegion"`
	SourceIPAddress     string          `json:"sourceIPAddress"`
	UserAgent           string          `json:"userAgent"`
	ErrorCode           string          `json:"errorCode,omitempty"`
	ErrorMessage        string          `json:"errorMessage,omitempty"`
	RequestParameters   json.RawMessage `json:"requestParameters"`
	ResponseElements    json.RawMessage `json:"responseElements"`
	AdditionalEventData json.RawMessage `json:"additionalEventData,omitempty"`
	RequestID           string          `json:"requestID,omitempty"`
	EventID             string          `json:"eventID"`
	ReadOnly            bool            `json:"readOnly"`
	Resources           []Resource      `json:"resources,omitempty"`
	EventType           string          `json:"eventType"`
	ManagementEvent     bool            `json:"managementEvent"`
	RecipientAccountID  string          `json:"recipientAccountId"`
	// ServiceEventDetails is a service event's serviceEventDetails (a
	// JSON object), or nil.
	ServiceEventDetails json.RawMessage `json:"serviceEventDetails,omitempty"`
	EventCategory       string          `json:"eventCategory"`
}

// NewServiceEvent returns a service event (eventType AwsServiceEvent) of
// source in account and region at t, with eventID id, about resources,
// with details as its serviceEventDetails (nil for none), as CloudTrail
// records them: a userIdentity of the account invoked by "AWS Internal",
// no request.
func NewServiceEvent(source, name string, t time.Time, id, account, region string, resources []Resource, details json.RawMessage) *Event {
	e := NewWithEventID(source, name, t, id)
	e.EventType = EventTypeServiceEvent
	e.UserIdentity = UserIdentity{AccountID: account, InvokedBy: AWSInternal}
	e.AWSRegion = region
	e.SourceIPAddress, e.UserAgent = AWSInternal, AWSInternal
	e.Resources = resources
	e.RecipientAccountID = account
	e.ServiceEventDetails = details
	return e
}

// New returns an event with the constant members set (eventVersion,
// eventType, managementEvent, eventCategory), the given source, name and
// time, and a new random eventID.
func New(source, name string, t time.Time) *Event {
	return NewWithEventID(source, name, t, NewEventID())
}

// NewWithEventID is New with eventID id instead of a new random one, for
// an event whose id was chosen earlier (the server's, once it
// authenticated the request).
func NewWithEventID(source, name string, t time.Time, id string) *Event {
	return &Event{
		EventVersion:    EventVersion,
		EventTime:       t,
		EventSource:     source,
		EventName:       name,
		EventID:         id,
		EventType:       EventTypeAPICall,
		ManagementEvent: true,
		EventCategory:   CategoryManagement,
	}
}

// NewEventID returns a random version 4 UUID in canonical text form.
func NewEventID() string { return uuid.New() }

// eventJSON is Event with eventTime as text; field order is CloudTrail's.
type eventJSON struct {
	EventVersion        string          `json:"eventVersion"`
	UserIdentity        UserIdentity    `json:"userIdentity"`
	EventTime           string          `json:"eventTime"`
	EventSource         string          `json:"eventSource"`
	EventName           string          `json:"eventName"`
	AWSRegion           string          `json:"awsRegion"`
	SourceIPAddress     string          `json:"sourceIPAddress"`
	UserAgent           string          `json:"userAgent"`
	ErrorCode           string          `json:"errorCode,omitempty"`
	ErrorMessage        string          `json:"errorMessage,omitempty"`
	RequestParameters   json.RawMessage `json:"requestParameters"`
	ResponseElements    json.RawMessage `json:"responseElements"`
	AdditionalEventData json.RawMessage `json:"additionalEventData,omitempty"`
	RequestID           string          `json:"requestID,omitempty"`
	EventID             string          `json:"eventID"`
	ReadOnly            bool            `json:"readOnly"`
	Resources           []Resource      `json:"resources,omitempty"`
	EventType           string          `json:"eventType"`
	ManagementEvent     bool            `json:"managementEvent"`
	RecipientAccountID  string          `json:"recipientAccountId"`
	ServiceEventDetails json.RawMessage `json:"serviceEventDetails,omitempty"`
	EventCategory       string          `json:"eventCategory"`
}

// MarshalJSON writes e as a CloudTrail record (see [Event.AppendJSON]).
func (e *Event) MarshalJSON() ([]byte, error) {
	if err := e.checkRaw(); err != nil {
		return nil, err
	}
	return e.AppendJSON(nil), nil
}

// MaxFieldBytes is the largest requestParameters, responseElements or
// additionalEventData a record holds. A larger one is replaced, as
// CloudTrail replaces a field over its maximum size, by
// {"reason":"<field> too large","omitted":true,"originalSize":<bytes>}
// (CloudTrail does so above about 100 KB).
const MaxFieldBytes = 100 << 10

// MaxTextBytes is the longest userAgent or errorMessage a record holds; a
// longer one is cut on a UTF-8 boundary and ends with "...".
const MaxTextBytes = 8 << 10

// clipText returns s cut to MaxTextBytes, with "..." when it was cut.
func clipText(s string) string {
	if len(s) <= MaxTextBytes {
		return s
	}
	i := MaxTextBytes
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}

// AppendJSON appends e as one compact CloudTrail record, members in
// CloudTrail's order, without reflection (it is on every request's path).
// RequestParameters, ResponseElements and AdditionalEventData are copied as
// given: they must be valid JSON (encoding/json output); empty means null,
// or, for additionalEventData, absent. What a client controls is bounded:
// see MaxFieldBytes and MaxTextBytes.
func (e *Event) AppendJSON(b []byte) []byte {
	// key is a member's ,"name": as one literal.
	str := func(key, v string) {
		b = append(b, key...)
		b = jsonstr.Append(b, v)
	}
	raw := func(key, name string, v json.RawMessage) {
		b = append(b, key...)
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
	b = append(b, `{"eventVersion":`...)
	b = jsonstr.Append(b, e.EventVersion)
	u := e.UserIdentity
	// Members in encoding/json's order, each only when set (a service
	// event's userIdentity has neither type nor principal: its first
	// member is accountId).
	b = append(b, `,"userIdentity":{`...)
	sep := ""
	for _, f := range [...]struct{ key, v string }{
		{`"type":`, u.Type}, {`"principalId":`, u.PrincipalID}, {`"arn":`, u.ARN}, {`"accountId":`, u.AccountID},
		{`"accessKeyId":`, u.AccessKeyID}, {`"userName":`, u.UserName},
	} {
		if f.v != "" {
			b = append(b, sep...)
			str(f.key, f.v)
			sep = ","
		}
	}
	if sc := u.SessionContext; sc != nil {
		si := sc.SessionIssuer
		b = append(b, sep...)
		sep = ","
		str(`"sessionContext":{"sessionIssuer":{"type":`, si.Type)
		str(`,"principalId":`, si.PrincipalID)
		str(`,"arn":`, si.ARN)
		str(`,"accountId":`, si.AccountID)
		str(`,"userName":`, si.UserName)
		b = append(b, `},"attributes":{`...)
		if sc.Attributes.CreationDate != "" {
			str(`"creationDate":`, sc.Attributes.CreationDate)
			b = append(b, ',')
		}
		str(`"mfaAuthenticated":`, sc.Attributes.MFAAuthenticated)
		b = append(b, `}}`...)
	}
	if u.InvokedBy != "" {
		b = append(b, sep...)
		str(`"invokedBy":`, u.InvokedBy)
	}
	b = append(b, `},"eventTime":"`...)
	b = appendEventTime(b, e.EventTime)
	b = append(b, '"')
	str(`,"eventSource":`, e.EventSource)
	str(`,"eventName":`, e.EventName)
	str(`,"awsRegion":`, e.AWSRegion)
	str(`,"sourceIPAddress":`, e.SourceIPAddress)
	str(`,"userAgent":`, clipText(e.UserAgent))
	if e.ErrorCode != "" {
		str(`,"errorCode":`, e.ErrorCode)
	}
	if e.ErrorMessage != "" {
		str(`,"errorMessage":`, clipText(e.ErrorMessage))
	}
	raw(`,"requestParameters":`, "requestParameters", e.RequestParameters)
	raw(`,"responseElements":`, "responseElements", e.ResponseElements)
	if len(e.AdditionalEventData) > 0 {
		raw(`,"additionalEventData":`, "additionalEventData", e.AdditionalEventData)
	}
	if e.RequestID != "" { // a service event has none
		str(`,"requestID":`, e.RequestID)
	}
	str(`,"eventID":`, e.EventID)
	b = append(b, `,"readOnly":`...)
	b = strconv.AppendBool(b, e.ReadOnly)
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
	str(`,"eventType":`, e.EventType)
	b = append(b, `,"managementEvent":`...)
	b = strconv.AppendBool(b, e.ManagementEvent)
	str(`,"recipientAccountId":`, e.RecipientAccountID)
	if len(e.ServiceEventDetails) > 0 {
		raw(`,"serviceEventDetails":`, "serviceEventDetails", e.ServiceEventDetails)
	}
	str(`,"eventCategory":`, e.EventCategory)
	return append(b, '}')
}

// appendEventTime appends t in UTC as TimeFormat: by hand for years 0 to
// 9999 (every eventTime the server writes), else with AppendFormat.
func appendEventTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, TimeFormat)
	}
	hour, minute, sec := t.Clock()
	return append(b,
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+month/10), byte('0'+month%10), '-',
		byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':',
		byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+sec/10), byte('0'+sec%10), 'Z')
}

// checkRaw refuses an event whose pre-encoded members are not valid JSON
// (as json.Valid judges it), so that a bad caller cannot corrupt a line of
// the trail.
func (e *Event) checkRaw() error {
	for _, f := range [...]struct {
		name string
		v    json.RawMessage
	}{{"requestParameters", e.RequestParameters}, {"responseElements", e.ResponseElements}, {"additionalEventData", e.AdditionalEventData},
		{"serviceEventDetails", e.ServiceEventDetails}} {
		if len(f.v) > 0 && !validJSON(f.v) {
			return fmt.Errorf("audit: encode event: %s is not valid JSON", f.name)
		}
	}
	return nil
}

// UnmarshalJSON reads a CloudTrail record written by MarshalJSON.
func (e *Event) UnmarshalJSON(b []byte) error {
	var j eventJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("audit: decode event: %w", err)
	}
	var t time.Time
	if j.EventTime != "" {
		var err error
		if t, err = time.Parse(TimeFormat, j.EventTime); err != nil {
			return fmt.Errorf("audit: decode event: eventTime: %w", err)
		}
	}
	*e = Event{
		EventVersion:        j.EventVersion,
		UserIdentity:        j.UserIdentity,
		EventTime:           t,
		EventSource:         j.EventSource,
		EventName:           j.EventName,
		AWSRegion:           j.AWSRegion,
		SourceIPAddress:     j.SourceIPAddress,
		UserAgent:           j.UserAgent,
		ErrorCode:           j.ErrorCode,
		ErrorMessage:        j.ErrorMessage,
		RequestParameters:   j.RequestParameters,
		ResponseElements:    j.ResponseElements,
		AdditionalEventData: j.AdditionalEventData,
		RequestID:           j.RequestID,
		EventID:             j.EventID,
		ReadOnly:            j.ReadOnly,
		Resources:           j.Resources,
		EventType:           j.EventType,
		ManagementEvent:     j.ManagementEvent,
		RecipientAccountID:  j.RecipientAccountID,
		ServiceEventDetails: j.ServiceEventDetails,
		EventCategory:       j.EventCategory,
	}
	return nil
}
