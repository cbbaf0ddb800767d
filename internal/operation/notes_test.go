package operation

import (
	"context"
	"slices"
	"sync"
	"testing"
)

// withNotes returns a copy of ctx carrying n, as the contexts the server
// and Secrets Manager build with ContextValue carry theirs.
func withNotes(ctx context.Context, n *Notes) context.Context {
	return context.WithValue(ctx, notesKey{}, n)
}

func TestNotes(t *testing.T) {
	key := Resource{Type: "AWS::KMS::Key", ARN: "arn:aws:kms:us-east-1:111122223333:key/k", Account: "111122223333"}
	alias := Resource{Type: "AWS::KMS::Key", ARN: "arn:aws:kms:us-east-1:111122223333:alias/a", Account: "111122223333"}

	AddResource(context.Background(), key) // no collector: nothing happens, no panic

	rs := new(Notes)
	ctx := withNotes(context.Background(), rs)
	var wg sync.WaitGroup
	for range 4 { // as a transaction run again, from another goroutine
		wg.Go(func() { AddResource(ctx, alias) })
	}
	wg.Wait()
	AddResource(ctx, key)
	AddResource(ctx, alias)
	if got, want := slices.Collect(rs.AllResources()), []Resource{alias, key}; !slices.Equal(got, want) {
		t.Errorf("Resources() = %v, want %v", got, want)
	}

	AddResource(WithoutNotes(ctx), Resource{Type: "x", ARN: "other"})
	AddEvent(WithoutNotes(ctx), Event{Name: "Other"})
	if got := slices.Collect(rs.AllResources()); len(got) != 2 {
		t.Errorf("Resources() after an add under WithoutNotes = %v, want the 2 earlier resources", got)
	}

	AddEvent(ctx, Event{Name: "GetSecretValue", ReadOnly: true})
	AddEvent(ctx, Event{Name: "GetSecretValue", ErrorCode: "ResourceNotFoundException"})
	if got := slices.Collect(rs.AllEvents()); len(got) != 2 || got[0].Name != "GetSecretValue" || got[1].ErrorCode != "ResourceNotFoundException" {
		t.Errorf("Events() = %+v, want the two events added, in order", got)
	}
}

// TestNotesFirstResource checks that the first resource is kept without an
// allocation, and that what was collected from AllResources does not change
// with later additions (also for the inline first resource).
func TestNotesFirstResource(t *testing.T) {
	a := Resource{Type: "AWS::KMS::Key", ARN: "arn:aws:kms:us-east-1:111122223333:key/a", Account: "111122223333"}
	b := Resource{Type: "AWS::KMS::Key", ARN: "arn:aws:kms:us-east-1:111122223333:key/b", Account: "111122223333"}
	var n *Notes
	var ctx context.Context
	allocs := testing.AllocsPerRun(100, func() {
		n = new(Notes)
		ctx = withNotes(context.Background(), n)
		AddResource(ctx, a)
	})
	if allocs > 2 { // the Notes and the context node
		t.Errorf("new Notes with one resource: %v allocations, want 2", allocs)
	}
	got := slices.Collect(n.AllResources())
	AddResource(ctx, b)
	AddResource(ctx, a)
	if !slices.Equal(got, []Resource{a}) || !slices.Equal(slices.Collect(n.AllResources()), []Resource{a, b}) {
		t.Errorf("AllResources() = %v then %v, want [a] then [a b]", got, slices.Collect(n.AllResources()))
	}
}

// TestNotesAllResources checks that AllResources yields each resource
// added once, in the order first added, stops when yield does, and yields
// nothing on nil Notes.
func TestNotesAllResources(t *testing.T) {
	a := Resource{Type: "AWS::KMS::Key", ARN: "arn:aws:kms:us-east-1:111122223333:key/a", Account: "111122223333"}
	b := Resource{Type: "AWS::KMS::Key", ARN: "arn:aws:kms:us-east-1:111122223333:alias/b", Account: "111122223333"}
	for _, rs := range [][]Resource{nil, {a}, {a, b}, {b, a}} {
		n := new(Notes)
		ctx := withNotes(context.Background(), n)
		for _, r := range rs {
			AddResource(ctx, r)
			AddResource(ctx, r)
		}
		if got := slices.Collect(n.AllResources()); !slices.Equal(got, rs) {
			t.Errorf("AllResources() = %v, want %v", got, rs)
		}
		var first []Resource
		for r := range n.AllResources() {
			first = append(first, r)
			break
		}
		if len(rs) > 0 && !slices.Equal(first, rs[:1]) {
			t.Errorf("AllResources() stopped after one = %v, want %v", first, rs[:1])
		}
	}
	var none *Notes
	if got := slices.Collect(none.AllResources()); got != nil {
		t.Errorf("nil Notes: AllResources() = %v, want nothing", got)
	}
}

// TestNotesAllEvents checks that AllEvents yields the events added, in
// order, and nothing on nil Notes.
func TestNotesAllEvents(t *testing.T) {
	n := new(Notes)
	ctx := withNotes(context.Background(), n)
	var want []Event
	for _, name := range []string{"Decrypt", "GetSecretValue", "Decrypt"} {
		e := Event{Name: name, Resources: []Resource{{ARN: name}}}
		AddEvent(ctx, e)
		want = append(want, e)
		got := slices.Collect(n.AllEvents())
		if len(got) != len(want) {
			t.Fatalf("AllEvents() = %+v, want %+v", got, want)
		}
		for i := range want {
			if got[i].Name != want[i].Name || !slices.Equal(got[i].Resources, want[i].Resources) {
				t.Errorf("AllEvents()[%d] = %+v, want %+v", i, got[i], want[i])
			}
		}
	}
	var none *Notes
	if got := slices.Collect(none.AllEvents()); got != nil {
		t.Errorf("nil Notes: AllEvents() = %+v, want nothing", got)
	}
}
