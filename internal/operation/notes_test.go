package operation

import (
	"context"
	"slices"
	"sync"
	"testing"
)

func TestNotes(t *testing.T) {
	key := Resource{Type: "AWS::KMS::Key", ARN: "arn:aws:kms:us-east-1:111122223333:key/k", Account: "111122223333"}
	alias := Resource{Type: "AWS::KMS::Key", ARN: "arn:aws:kms:us-east-1:111122223333:alias/a", Account: "111122223333"}

	AddResource(context.Background(), key) // no collector: nothing happens, no panic

	rs := new(Notes)
	ctx := WithNotes(context.Background(), rs)
	var wg sync.WaitGroup
	for range 4 { // as a transaction run again, from another goroutine
		wg.Go(func() { AddResource(ctx, alias) })
	}
	wg.Wait()
	AddResource(ctx, key)
	AddResource(ctx, alias)
	if got, want := rs.Resources(), []Resource{alias, key}; !slices.Equal(got, want) {
		t.Errorf("Resources() = %v, want %v", got, want)
	}

	AddResource(WithoutNotes(ctx), Resource{Type: "x", ARN: "other"})
	AddEvent(WithoutNotes(ctx), Event{Name: "Other"})
	if got := rs.Resources(); len(got) != 2 {
		t.Errorf("Resources() after an add under WithoutNotes = %v, want the 2 earlier resources", got)
	}

	AddEvent(ctx, Event{Name: "GetSecretValue", ReadOnly: true})
	AddEvent(ctx, Event{Name: "GetSecretValue", ErrorCode: "ResourceNotFoundException"})
	if got := rs.Events(); len(got) != 2 || got[0].Name != "GetSecretValue" || got[1].ErrorCode != "ResourceNotFoundException" {
		t.Errorf("Events() = %+v, want the two events added, in order", got)
	}
}
