package server

import (
	"bytes"
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/audit"
	"github.com/keyfort/keyfort/internal/audit/audittest"
	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/identity"
	"github.com/keyfort/keyfort/internal/operation"
)

// refEvent is event as it was before fillEvent: the reference of
// TestFillEventMatchesEvent.
func refEvent(s *Server, c *call) *audit.Event {
	op := c.rt.op
	id := c.eventID
	if id == "" {
		id = audit.NewEventID()
	}
	e := audit.NewWithEventID(c.rt.svc.EventSource, op.Name, c.start, id)
	e.RequestID = c.reqID
	e.ReadOnly = op.ReadOnly
	if c.caller != nil {
		e.UserIdentity = audit.UserIdentity{
			Type:        c.caller.Type,
			PrincipalID: c.caller.Principal.UserID,
			ARN:         c.caller.ARN,
			AccountID:   c.caller.Account,
			AccessKeyID: c.caller.AccessKeyID,
			UserName:    c.caller.UserName,
		}
		e.AWSRegion = c.caller.Region
		e.SourceIPAddress = c.caller.SourceIP
		e.UserAgent = c.caller.UserAgent
		e.RecipientAccountID = c.caller.Account
	}
	if c.decoded {
		e.RequestParameters = auditJSON(c.in)
	}
	for _, r := range slices.Collect(c.notes.AllResources()) { // nil before authentication
		e.Resources = append(e.Resources, audit.Resource{AccountID: r.Account, Type: r.Type, ARN: r.ARN})
	}
	if c.err != nil {
		e.ErrorCode = c.err.Code
		e.ErrorMessage = c.err.Message
	} else if b := c.notes.ResponseElements(); b != nil {
		e.ResponseElements = b
	} else if c.out != nil && !op.ReadOnly && !c.rt.svc.NoResponseElements[op.Name] {
		e.ResponseElements = auditJSON(c.out)
	}
	return e
}

// TestFillEventMatchesEvent checks that the event writeAudit fills in the
// call (and event, for the Committer's pending event) is the event the
// reference built, field for field and byte for byte, for calls with and
// without a caller, input, resources, error and response elements.
func TestFillEventMatchesEvent(t *testing.T) {
	srv, err := New(Config{Services: []Service{kmsService(fakeOps("TrentService"), kmsErrors)}, Audit: audit.Discard})
	if err != nil {
		t.Fatal(err)
	}
	key := operation.Resource{Type: "AWS::KMS::Key", ARN: "arn:aws:kms:us-east-1:111122223333:key/k1", Account: "111122223333"}
	alias := operation.Resource{Type: "AWS::KMS::Key", ARN: "arn:aws:kms:us-east-1:111122223333:alias/a", Account: "111122223333"}
	kid := "k1"
	caller := &identity.Caller{Type: "IAMUser", ARN: "arn:aws:iam::111122223333:user/u", Account: "111122223333",
		AccessKeyID: "AKIA", UserName: "u", Region: "us-east-1", SourceIP: "127.0.0.1", UserAgent: "ua"}
	caller.Principal.UserID = "AIDA"
	start := time.Date(2026, 12, 5, 20, 0, 0, 123, time.UTC)
	for _, target := range []string{"TrentService.Encrypt", "TrentService.CreateKey", "TrentService.DescribeKey"} {
		for _, authed := range []bool{false, true} {
			for _, decoded := range []bool{false, true} {
				for nres := range 3 {
					for _, outcome := range []string{"ok", "error", "elements", "none"} {
						c := &call{rt: srv.routes[target], start: start, reqID: "req", target: target}
						if c.rt == nil {
							t.Fatalf("no route %s", target)
						}
						if authed {
							c.caller, c.notes, c.eventID = caller, &c.notesBuf, "eid"
							ctx := &callCtx{Context: context.Background(), c: c} // the request's own context
							for _, r := range []operation.Resource{key, alias}[:nres] {
								operation.AddResource(ctx, r)
							}
							if outcome == "elements" {
								operation.SetResponseElements(ctx, []byte(`{"keyId":"k1"}`))
							}
						}
						if decoded {
							c.in, c.decoded = &fakeInput{KeyId: &kid, Plaintext: []byte("secret")}, true
						}
						switch outcome {
						case "ok", "elements":
							c.out = &fakeOutput{KeyId: "k1", Account: "111122223333", Region: "us-east-1", Plaintext: []byte("secret")}
						case "error":
							c.err = awserr.WithStatus(400, "NotFoundException", "no such key")
						}
						want := refEvent(srv, c)
						if want.EventID != "eid" {
							want.EventID = "" // random: compared apart
						}
						for name, got := range map[string]*audit.Event{"event": srv.event(c), "fillEvent": func() *audit.Event {
							srv.fillEvent(c, &c.event, c.eventRes[:0])
							return &c.event
						}()} {
							if (got.EventID == "") || (want.EventID != "" && got.EventID != want.EventID) {
								t.Fatalf("%s %s authed=%t decoded=%t: eventID %q, want %q", name, target, authed, decoded, got.EventID, want.EventID)
							}
							g := *got
							if want.EventID == "" {
								g.EventID = ""
							}
							if !reflect.DeepEqual(&g, want) || !bytes.Equal(g.AppendJSON(nil), want.AppendJSON(nil)) {
								t.Errorf("%s %s authed=%t decoded=%t resources=%d %s:\n got %s\nwant %s",
									name, target, authed, decoded, nres, outcome, g.AppendJSON(nil), want.AppendJSON(nil))
							}
						}
					}
				}
			}
		}
	}
}

// refWriteAudit is writeAudit as it was before the events lived in the
// call: the reference of TestWriteAuditMatches.
func refWriteAudit(ctx context.Context, s *Server, c *call) error {
	main := refEvent(s, c)
	noted := slices.Collect(c.notes.AllEvents())
	if len(noted) == 0 {
		return s.audit.Write(ctx, main)
	}
	events := make([]*audit.Event, 1, 1+len(noted))
	events[0] = main
	for _, x := range noted {
		if c.err != nil && !x.Always {
			continue
		}
		source := main.EventSource
		if x.Source != "" {
			source = x.Source
		}
		id := x.EventID
		if id == "" {
			id = audit.NewEventID()
		}
		e := audit.NewWithEventID(source, x.Name, c.start, id)
		e.RequestID = main.RequestID
		e.UserIdentity = main.UserIdentity
		e.AWSRegion = main.AWSRegion
		e.SourceIPAddress = main.SourceIPAddress
		e.UserAgent = main.UserAgent
		if x.InvokedBy != "" {
			e.UserIdentity.InvokedBy = x.InvokedBy
			e.SourceIPAddress = x.InvokedBy
			e.UserAgent = x.InvokedBy
		}
		e.RecipientAccountID = main.RecipientAccountID
		e.ReadOnly = x.ReadOnly
		e.RequestParameters = x.RequestParameters
		e.ErrorCode = x.ErrorCode
		e.ErrorMessage = x.ErrorMessage
		for _, r := range x.Resources {
			e.Resources = append(e.Resources, audit.Resource{AccountID: r.Account, Type: r.Type, ARN: r.ARN})
		}
		events = append(events, e)
	}
	return audit.WriteAll(ctx, s.audit, events)
}

// TestWriteAuditMatches checks the events writeAudit writes (the request's
// and the further ones the service noted, in the call's storage and beyond
// it) against the reference's, field for field and byte for byte, for
// requests that succeed and fail with 0 to 3 noted events of every kind.
func TestWriteAuditMatches(t *testing.T) {
	var sink audittest.MemorySink
	srv, err := New(Config{Services: []Service{smService(fakeOps("secretsmanager"), smErrors)}, Audit: &sink})
	if err != nil {
		t.Fatal(err)
	}
	key := operation.Resource{Type: "AWS::KMS::Key", ARN: "arn:aws:kms:us-east-1:111122223333:key/k1", Account: "111122223333"}
	other := operation.Resource{Type: "AWS::KMS::Key", ARN: "arn:aws:kms:us-east-1:444455556666:key/k2", Account: "444455556666"}
	kinds := []operation.Event{
		{Source: "kms.amazonaws.com", InvokedBy: "secretsmanager.amazonaws.com", Always: true, EventID: "kms-eid", Name: "Decrypt",
			ReadOnly: true, RequestParameters: []byte(`{"keyId":"k1"}`), Resources: []operation.Resource{key}},
		{Name: "GetSecretValue", ReadOnly: true, Resources: []operation.Resource{key, other}},
		{Name: "GetSecretValue", ErrorCode: "ResourceNotFoundException", ErrorMessage: "gone", Always: true},
		{Source: "kms.amazonaws.com", Name: "GenerateDataKey", ErrorCode: "KMSInternalException"},
	}
	caller := &identity.Caller{Type: "IAMUser", ARN: "arn:aws:iam::111122223333:user/u", Account: "111122223333",
		AccessKeyID: "AKIA", UserName: "u", Region: "us-east-1", SourceIP: "127.0.0.1", UserAgent: "ua"}
	start := time.Date(2026, 12, 5, 20, 0, 0, 0, time.UTC)
	ctx := context.Background()
	for _, failed := range []bool{false, true} {
		for count := range 4 {
			for first := range kinds {
				newCall := func() *call {
					c := &call{rt: srv.routes["secretsmanager.DescribeKey"], start: start, reqID: "req",
						caller: caller, eventID: "eid"}
					if c.rt == nil {
						t.Fatal("no route secretsmanager.DescribeKey")
					}
					c.notes = &c.notesBuf
					nctx := &callCtx{Context: ctx, c: c} // the request's own context
					operation.AddResource(nctx, key)
					for i := range count {
						operation.AddEvent(nctx, kinds[(first+i)%len(kinds)])
					}
					if failed {
						c.err = awserr.WithStatus(400, "ResourceNotFoundException", "no such secret")
					} else {
						c.out = &fakeOutput{KeyId: "k1"}
					}
					return c
				}
				sink.Reset()
				if err := refWriteAudit(ctx, srv, newCall()); err != nil {
					t.Fatal(err)
				}
				want := sink.Events()
				sink.Reset()
				if err := srv.writeAudit(ctx, newCall()); err != nil {
					t.Fatal(err)
				}
				got := sink.Events()
				if len(got) != len(want) {
					t.Fatalf("failed=%t count=%d first=%d: %d events, want %d", failed, count, first, len(got), len(want))
				}
				for i := range want {
					g, w := got[i], want[i]
					if w.EventID != "eid" && w.EventID != "kms-eid" { // random in both
						if g.EventID == "" || g.EventID == w.EventID {
							t.Errorf("event %d: eventID %q (reference's %q), want a new one", i, g.EventID, w.EventID)
						}
						g.EventID, w.EventID = "", ""
					}
					if !reflect.DeepEqual(g, w) || !bytes.Equal(g.AppendJSON(nil), w.AppendJSON(nil)) {
						t.Errorf("failed=%t count=%d first=%d event %d:\n got %s\nwant %s", failed, count, first, i, g.AppendJSON(nil), w.AppendJSON(nil))
					}
				}
			}
		}
	}
}
