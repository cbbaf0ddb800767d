package server

import (
	"bytes"
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/audit"
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
	for _, r := range c.notes.Resources() { // nil before authentication
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
							ctx := operation.WithNotes(context.Background(), c.notes)
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
