package secretsmanager

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/identity"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/operation"
	"github.com/keyfort/keyfort/internal/operation/operationtest"
	"github.com/keyfort/keyfort/internal/partition"
	"github.com/keyfort/keyfort/internal/storage"
)

// TestAccountOfMatchesSplitN checks the scanning accountOf against the
// SplitN it replaces.
func TestAccountOfMatchesSplitN(t *testing.T) {
	splitN := func(arn string) string {
		parts := strings.SplitN(arn, ":", 6)
		if len(parts) < 6 {
			return ""
		}
		return parts[4]
	}
	for _, arn := range []string{
		"", ":", "arn", "arn:aws:kms:us-east-1:111122223333:key/1234",
		"arn:aws:kms:us-east-1:111122223333", "arn:aws:kms:us-east-1:111122223333:",
		"arn:aws:secretsmanager:eu-west-1:444455556666:secret:a:b:c", "::::::", ":::::", "a:b:c:d:e:f",
	} {
		if got, want := accountOf(arn), splitN(arn); got != want {
			t.Errorf("accountOf(%q) = %q, want %q", arn, got, want)
		}
	}
}

// TestDecryptParamsSize checks that the Decrypt inputs Secrets Manager makes
// fit the buffer decryptParamsSize sizes, so their audit parameters are
// written without growing it.
func TestDecryptParamsSize(t *testing.T) {
	arn := "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/db-AbCdEf"
	keyARN := "arn:aws:kms:us-east-1:111122223333:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	for _, in := range []*kmsapi.DecryptInput{
		{EncryptionContext: encryptionContext(arn, "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE")},
		{EncryptionContext: encryptionContext(arn, "v1"), KeyId: &keyARN},
		{EncryptionContext: encryptionContext(arn, "v1"), KeyId: &keyARN, EncryptionAlgorithm: "SYMMETRIC_DEFAULT"},
		{},
	} {
		n := decryptParamsSize(in)
		b := in.AppendAuditJSON(make([]byte, 0, n))
		if cap(b) != n || len(b) > n || n-len(b) > 32 {
			t.Errorf("%s: size %d, wrote %d bytes (cap %d)", b, n, len(b), cap(b))
		}
		if want := in.AppendAuditJSON(nil); string(b) != string(want) {
			t.Errorf("params %s, want %s", b, want)
		}
	}
}

// TestViaCache checks that the cached Via is always the region's.
func TestViaCache(t *testing.T) {
	var c viaCache
	for _, region := range []string{"us-east-1", "us-east-1", "eu-west-1", "us-east-1", "", "eu-west-1"} {
		if got, want := *c.get(region), *smVia(region); got != want {
			t.Errorf("get(%q) = %+v, want %+v", region, got, want)
		}
	}
	if a, b := c.get("ap-south-1"), c.get("ap-south-1"); a != b {
		t.Error("the same region made a second Via")
	}
}

// TestCutSecretARNPrefix checks cutSecretARNPrefix against the CutPrefix
// of the built prefix it replaces.
func TestCutSecretARNPrefix(t *testing.T) {
	for _, region := range []string{"us-east-1", "cn-north-1", "us-gov-west-1", ""} {
		for _, id := range []string{
			"", "arn:", "name", "arn:aws:secretsmanager:us-east-1:111122223333:secret:a-AbCdEf",
			"arn:aws-cn:secretsmanager:cn-north-1:111122223333:secret:a", "arn:aws-us-gov:secretsmanager:us-gov-west-1:1",
			"arn:aws:secretsmanager:us-east-1:", "arn:aws:secretsmanager:us-east-1", "arn:aws:kms:us-east-1:1:key/x",
			"arn:aws:secretsmanager::", "arn:aws:secretsmanager:eu-west-1:111122223333:secret:a",
		} {
			wantRest, wantOK := strings.CutPrefix(id, partition.ARN(region, "secretsmanager:"+region+":"))
			if rest, ok := cutSecretARNPrefix(id, region); rest != wantRest || ok != wantOK {
				t.Errorf("cutSecretARNPrefix(%q, %q) = %q, %t, want %q, %t", id, region, rest, ok, wantRest, wantOK)
			}
		}
	}
}

// TestReadOfMatchesPerRead checks the versionRead remembered on a secret
// against the record id and encryption context readValue made on every
// read before, as the version read changes back and forth, and that a
// version's context is the one made for it (never another version's).
func TestReadOfMatchesPerRead(t *testing.T) {
	arn := "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/db-AbCdEf"
	sec := &secret{rec: &storage.Record{ID: "app/db"}, meta: secretMeta{ARN: arn}}
	for _, vid := range []string{"v1", "v1", "v2", "v1", "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE", "v2", "v2"} {
		r := sec.readOf(vid)
		if want := versionRecordID("app/db", vid); r.recID != want {
			t.Errorf("readOf(%q).recID = %q, want %q", vid, r.recID, want)
		}
		if want := encryptionContext(arn, vid); !maps.Equal(r.ec, want) {
			t.Errorf("readOf(%q).ec = %v, want %v", vid, r.ec, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { sec.readOf("v2") }); n != 0 {
		t.Errorf("reading the same version again allocates %v times", n)
	}
	// Another secret's loaded copy (another ARN or name) gets its own.
	other := &secret{rec: &storage.Record{ID: "app/db2"}, meta: secretMeta{ARN: arn + "2"}}
	other.lastRead.Store(sec.readOf("v2"))
	if r := other.readOf("v2"); r.recID != "app/db2/v2" || r.ec["SecretARN"] != arn+"2" {
		t.Errorf("readOf on another secret = %+v", r)
	}
}

// holderScan is secretMeta.holder, the walk secret.holder replaces on the
// read path.
func holderScan(m *secretMeta, label string) string { return m.holder(label) }

// TestSecretHolderMatchesScan checks secret.holder against walking the
// versions, as labels move between versions of the same loaded secret and
// for labels no version carries.
func TestSecretHolderMatchesScan(t *testing.T) {
	sec := &secret{meta: secretMeta{Versions: map[string]*versionMeta{
		"v1": {Stages: []string{stagePrevious}}, "v2": {Stages: []string{stageCurrent, "blue"}}, "v3": {},
	}}}
	check := func() {
		t.Helper()
		for _, label := range []string{stageCurrent, stagePrevious, "blue", stagePending, "none", stageCurrent} {
			got, ver := sec.holder(label)
			if want := holderScan(&sec.meta, label); got != want || ver != sec.meta.Versions[want] {
				t.Errorf("holder(%q) = %q, %p; want %q, %p", label, got, ver, want, sec.meta.Versions[want])
			}
		}
	}
	check()
	sec.holder(stageCurrent)
	sec.meta.Versions["v2"].Stages = []string{"blue"}
	sec.meta.Versions["v3"].Stages = []string{stageCurrent}
	check()
	delete(sec.meta.Versions, "v3")
	check()
	sec.meta.Versions["v3"] = &versionMeta{Stages: []string{stageCurrent}} // another version, same id
	check()
}

// BenchmarkHolder is the AWSCURRENT lookup of GetSecretValue on a secret
// with n versions.
func BenchmarkHolder(b *testing.B) {
	for _, n := range []int{1, 20} {
		sec := &secret{meta: secretMeta{Versions: map[string]*versionMeta{}}}
		for i := range n {
			sec.meta.Versions[fmt.Sprintf("%08d-0000-4000-8000-000000000000", i)] = &versionMeta{}
		}
		sec.meta.Versions["00000000-0000-4000-8000-000000000000"].Stages = []string{stageCurrent}
		b.Run(fmt.Sprintf("scan/%d", n), func(b *testing.B) {
			for b.Loop() {
				holderScan(&sec.meta, stageCurrent)
			}
		})
		b.Run(fmt.Sprintf("remembered/%d", n), func(b *testing.B) {
			for b.Loop() {
				sec.holder(stageCurrent)
			}
		})
	}
}

// TestThroughWithEventMatches checks the one context node of
// throughWithEvent against the event id's context
// (operationtest.WithEventID) over v.through(ctx) it replaces: for parents
// with and without a caller, a service call, notes, a pending event, an
// event id and a deadline, every value KMS reads
// (identity.From, identity.ViaFrom, operation.EventID, the notes AddResource
// and AddEvent write to, storage.PendingEventOf, another key) and the
// deadline and cancellation are the same.
func TestThroughWithEventMatches(t *testing.T) {
	type otherKey struct{}
	v := viaService{vias: &viaCache{}}
	caller := &identity.Caller{Account: "111122223333", Region: "eu-west-1"}
	via := &identity.Via{Service: "other.us-east-1.amazonaws.com", Region: "us-east-1", InvokedBy: "other.amazonaws.com"}
	for mask := range 64 {
		parentNotes := new(operation.Notes)
		ctx := context.WithValue(context.Background(), otherKey{}, "other")
		if mask&1 != 0 {
			ctx = identity.With(ctx, caller)
		}
		if mask&2 != 0 {
			ctx = identity.WithVia(ctx, via)
		}
		if mask&4 != 0 {
			ctx = operationtest.WithNotes(ctx, parentNotes)
		}
		if mask&8 != 0 {
			ctx = storage.WithPendingEvent(ctx, &storage.PendingEvent{})
		}
		if mask&16 != 0 {
			ctx = operationtest.WithEventID(ctx, "request-event")
		}
		var cancel context.CancelFunc = func() {}
		if mask&32 != 0 {
			ctx, cancel = context.WithTimeout(ctx, time.Hour)
		}
		want := operationtest.WithEventID(v.through(ctx), "kms-event")
		got := v.throughWithEvent(ctx, "kms-event")
		for _, c := range []context.Context{want, got} {
			operation.AddResource(c, operation.Resource{Type: "x", ARN: "not noted"})
			operation.AddEvent(c, operation.Event{Name: "NotNoted"})
		}
		if len(slices.Collect(parentNotes.AllResources())) != 0 || len(slices.Collect(parentNotes.AllEvents())) != 0 {
			t.Errorf("mask %b: the KMS call's context reached the request's notes", mask)
		}
		if identity.From(got) != identity.From(want) || *identity.ViaFrom(got) != *identity.ViaFrom(want) ||
			operation.EventID(got) != operation.EventID(want) || operation.EventID(got) != "kms-event" ||
			storage.PendingEventOf(got) != storage.PendingEventOf(want) || got.Value(otherKey{}) != want.Value(otherKey{}) {
			t.Errorf("mask %b: caller %v/%v via %v/%v event id %q/%q pending %v/%v other %v/%v", mask,
				identity.From(got), identity.From(want), identity.ViaFrom(got), identity.ViaFrom(want),
				operation.EventID(got), operation.EventID(want), storage.PendingEventOf(got), storage.PendingEventOf(want),
				got.Value(otherKey{}), want.Value(otherKey{}))
		}
		gd, gok := got.Deadline()
		wd, wok := want.Deadline()
		if gd != wd || gok != wok {
			t.Errorf("mask %b: Deadline() = %v, %t, want %v, %t", mask, gd, gok, wd, wok)
		}
		cancel()
		if !slices.Equal([]error{got.Err(), context.Cause(got)}, []error{want.Err(), context.Cause(want)}) {
			t.Errorf("mask %b: after cancel Err() = %v, want %v", mask, got.Err(), want.Err())
		}
	}
}
