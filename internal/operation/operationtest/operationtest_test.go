package operationtest

import (
	"context"
	"slices"
	"testing"

	"github.com/keyfort/keyfort/internal/operation"
)

// TestValuesCompose checks that each context answers its own value and
// leaves the other to its parent, in either order, and that the nearer of
// two of a kind wins.
func TestValuesCompose(t *testing.T) {
	r := operation.Resource{Type: "AWS::KMS::Key", ARN: "arn:aws:kms:us-east-1:111122223333:key/k", Account: "111122223333"}
	for name, with := range map[string]func(context.Context, *operation.Notes, string) context.Context{
		"notes then event id": func(ctx context.Context, n *operation.Notes, id string) context.Context {
			return WithEventID(WithNotes(ctx, n), id)
		},
		"event id then notes": func(ctx context.Context, n *operation.Notes, id string) context.Context {
			return WithNotes(WithEventID(ctx, id), n)
		},
	} {
		outer, n := new(operation.Notes), new(operation.Notes)
		ctx := with(WithEventID(WithNotes(context.Background(), outer), "outer"), n, "inner")
		operation.AddResource(ctx, r)
		if got := operation.EventID(ctx); got != "inner" {
			t.Errorf("%s: EventID = %q, want inner", name, got)
		}
		if !slices.Equal(slices.Collect(n.AllResources()), []operation.Resource{r}) || len(slices.Collect(outer.AllResources())) != 0 {
			t.Errorf("%s: the resource went to %v (outer %v), want the inner notes only", name,
				slices.Collect(n.AllResources()), slices.Collect(outer.AllResources()))
		}
	}
	n := new(operation.Notes)
	ctx := WithEventID(WithNotes(context.Background(), n), "id")
	operation.AddResource(WithNotes(ctx, nil), operation.Resource{ARN: "not noted"})
	if got := slices.Collect(n.AllResources()); len(got) != 0 {
		t.Errorf("AddResource under WithNotes(nil) reached the notes: %v", got)
	}
	if got := operation.EventID(WithNotes(ctx, nil)); got != "id" {
		t.Errorf("EventID under WithNotes = %q, want the parent's id", got)
	}
	if got := operation.EventID(context.Background()); got != "" {
		t.Errorf("EventID without one = %q, want empty", got)
	}
}
