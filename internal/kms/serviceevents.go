package kms

// The service events KMS records in CloudTrail of work it does on its own
// (eventType AwsServiceEvent, invoked by "AWS Internal"), as the developer
// guide's examples show them: DeleteKey when a waiting period ends,
// RotateKey for each rotation (automatic, and on demand besides the
// caller's RotateKeyOnDemand call), DeleteExpiredKeyMaterial when imported
// material expires.

import (
	"context"
	"strconv"
	"time"

	"github.com/keyfort/keyfort/internal/operation"
	"github.com/keyfort/keyfort/internal/storage"
)

// eventLog collects the service events of one RunJobs. A transaction may
// run again, so an event already logged is not logged twice: it keeps its
// id, and its record is appended again to the transaction that runs again.
type eventLog struct {
	seen   map[string]int // index in events
	events []ServiceEvent
	// newID makes an event id; record is Config.ServiceEventRecord.
	newID  func() string
	record func(ServiceEvent) *storage.EventRecord
}

// add logs a service event of k and appends its record to tx, the
// transaction of the change it records.
func (l *eventLog) add(ctx context.Context, tx storage.Tx, k *key, name string, at time.Time, details []byte) error {
	seen := name + "\x00" + k.arn + "\x00" + string(details)
	if l.seen == nil {
		l.seen = map[string]int{}
	}
	i, ok := l.seen[seen]
	if !ok {
		i = len(l.events)
		l.seen[seen] = i
		l.events = append(l.events, ServiceEvent{ID: l.newID(), Name: name, Time: at, Account: k.rec.Scope.Account, Region: k.rec.Scope.Region, KeyARN: k.arn, Details: details})
	}
	if l.record == nil {
		return nil
	}
	if err := tx.AppendEvent(ctx, l.record(l.events[i])); err != nil {
		return wrap("append service event", err)
	}
	return nil
}

// rotationDetails is RotateKey's serviceEventDetails.
func rotationDetails(k *key, how, previous string) []byte {
	b := []byte(`{"rotationType":`)
	b = strconv.AppendQuote(b, how)
	b = append(b, `,"keyOrigin":`...)
	b = strconv.AppendQuote(b, k.meta.Origin)
	b = append(b, `,"previousKeyMaterialId":`...)
	b = strconv.AppendQuote(b, displayMaterialID(previous))
	b = append(b, `,"currentKeyMaterialId":`...)
	b = strconv.AppendQuote(b, displayMaterialID(k.meta.Material))
	b = append(b, `,"keyId":`...)
	b = strconv.AppendQuote(b, k.rec.ID)
	return append(b, '}')
}

// expiredDetails is DeleteExpiredKeyMaterial's serviceEventDetails.
func expiredDetails(k *key, matID string) []byte {
	b := []byte(`{"keyId":`)
	b = strconv.AppendQuote(b, k.rec.ID)
	b = append(b, `,"keyMaterialId":`...)
	b = strconv.AppendQuote(b, displayMaterialID(matID))
	return append(b, '}')
}

// auditRotation adds to the request's audit the RotateKey service event of
// the on-demand rotation it made.
func auditRotation(ctx context.Context, k *key, previous string) {
	operation.AddEvent(ctx, operation.Event{Service: true, Name: "RotateKey",
		Resources:           []operation.Resource{{Type: resourceKey, ARN: k.arn, Account: k.rec.Scope.Account}},
		ServiceEventDetails: rotationDetails(k, "ON_DEMAND", previous)})
}

// recordServiceEvents gives the logged events to Config.ServiceEvents.
func (s *Service) recordServiceEvents(ctx context.Context, l *eventLog) error {
	if s.serviceEvents == nil || len(l.events) == 0 {
		return nil
	}
	if err := s.serviceEvents(ctx, l.events); err != nil {
		return wrap("record service events", err)
	}
	return nil
}
