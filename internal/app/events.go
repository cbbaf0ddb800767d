package app

import (
	"context"
	"errors"
	"time"

	"github.com/keyfort/keyfort/internal/audit"
	"github.com/keyfort/keyfort/internal/cloudtrail"
	"github.com/keyfort/keyfort/internal/storage"
)

// trailFinder is how CloudTrail's LookupEvents reads the audit trail: the
// events the store keeps (every node's, on a shared store), once the
// trail has handed it what this node wrote (CatchUp).
type trailFinder struct {
	trail *audit.Trail
	store storage.Trail
}

// catchUpWait bounds how long a lookup waits for this node's shipper on a
// shared store; a read's event may reach the store a moment after its
// response, as CloudTrail delivers events within minutes.
const catchUpWait = 2 * time.Second

// Find implements cloudtrail.Finder.
func (f trailFinder) Find(ctx context.Context, q cloudtrail.Query) ([]cloudtrail.Event, error) {
	wctx, cancel := context.WithTimeout(ctx, catchUpWait)
	err := f.trail.CatchUp(wctx)
	cancel()
	if err != nil && !(errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil) {
		return nil, err
	}
	sq := storage.EventQuery{
		Account: q.Account, Region: q.Region,
		From: q.From.UnixNano(), To: q.To.UnixNano(),
		Attribute: q.Attribute, Value: q.Value, Limit: q.Limit,
	}
	if !q.After.IsZero() {
		sq.Before = storage.EventCursor{Time: q.After.Time.UnixNano(), ID: q.After.ID}
	}
	recs, err := f.store.LookupEvents(ctx, sq)
	if err != nil {
		return nil, err
	}
	out := make([]cloudtrail.Event, len(recs))
	for i, r := range recs {
		e := cloudtrail.Event{ID: r.ID, Time: time.Unix(0, r.Time).UTC(), Name: r.Name, Source: r.Source,
			Username: r.Username, AccessKeyID: r.AccessKeyID, ReadOnly: r.ReadOnly, JSON: r.JSON}
		for _, x := range r.Resources {
			e.Resources = append(e.Resources, cloudtrail.Resource{Type: x.Type, Name: x.Name})
		}
		out[i] = e
	}
	return out, nil
}
