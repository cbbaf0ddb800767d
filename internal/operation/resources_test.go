package operation

import (
	"context"
	"slices"
	"sync"
	"testing"
)

func TestResources(t *testing.T) {
	key := Resource{Type: "AWS::KMS::Key", ARN: "arn:aws:kms:us-east-1:111122223333:key/k", Account: "111122223333"}
	alias := Resource{Type: "AWS::KMS::Key", ARN: "arn:aws:kms:us-east-1:111122223333:alias/a", Account: "111122223333"}

	AddResource(context.Background(), key) // no collector: nothing happens, no panic

	rs := new(Resources)
	ctx := WithResources(context.Background(), rs)
	var wg sync.WaitGroup
	for range 4 { // as a transaction run again, from another goroutine
		wg.Go(func() { AddResource(ctx, alias) })
	}
	wg.Wait()
	AddResource(ctx, key)
	AddResource(ctx, alias)
	if got, want := rs.List(), []Resource{alias, key}; !slices.Equal(got, want) {
		t.Errorf("List() = %v, want %v", got, want)
	}

	AddResource(WithoutResources(ctx), Resource{Type: "x", ARN: "other"})
	if got := rs.List(); len(got) != 2 {
		t.Errorf("List() after an add under WithoutResources = %v, want the 2 earlier resources", got)
	}
}
