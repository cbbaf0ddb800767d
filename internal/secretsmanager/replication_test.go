package secretsmanager

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/replication"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/storage"
)

const replRegion = "eu-west-1"

// in returns the env's context moved to region.
func (e *env) in(region string) context.Context {
	return asCaller(e.ctx, testAccount, region)
}

// createReplicated creates name in us-east-1 with a replica in eu-west-1.
func (e *env) createReplicated(t *testing.T, name, value string, replicas ...smapi.ReplicaRegionType) *smapi.CreateSecretOutput {
	t.Helper()
	if len(replicas) == 0 {
		replicas = []smapi.ReplicaRegionType{{Region: str(replRegion)}}
	}
	out, err := e.sm.CreateSecret(e.ctx, &smapi.CreateSecretInput{
		Name: str(name), SecretString: secretString(value), AddReplicaRegions: replicas,
	})
	mustOK(t, err, "CreateSecret("+name+") with replicas")
	return out
}

func (e *env) getIn(t *testing.T, region, id string) *smapi.GetSecretValueOutput {
	t.Helper()
	out, err := e.sm.GetSecretValue(e.in(region), &smapi.GetSecretValueInput{SecretId: str(id)})
	mustOK(t, err, "GetSecretValue("+id+") in "+region)
	return out
}

func (e *env) describeIn(t *testing.T, region, id string) *smapi.DescribeSecretOutput {
	t.Helper()
	out, err := e.sm.DescribeSecret(e.in(region), &smapi.DescribeSecretInput{SecretId: str(id)})
	mustOK(t, err, "DescribeSecret("+id+") in "+region)
	return out
}

func wantStatus(t *testing.T, got []smapi.ReplicationStatusType, want ...smapi.ReplicationStatusType) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("ReplicationStatus = %s, want %d entries", renderStatus(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if deref(g.Region) != deref(w.Region) || g.Status != w.Status || deref(g.KmsKeyId) != deref(w.KmsKeyId) ||
			!strings.HasPrefix(deref(g.StatusMessage), deref(w.StatusMessage)) {
			t.Fatalf("ReplicationStatus[%d] = %s, want %s", i, renderStatus(got[i:i+1]), renderStatus(want[i:i+1]))
		}
	}
}

func renderStatus(st []smapi.ReplicationStatusType) string {
	var b strings.Builder
	for _, s := range st {
		b.WriteString("{" + deref(s.Region) + " " + deref(s.KmsKeyId) + " " + string(s.Status) + " " + deref(s.StatusMessage) + "}")
	}
	return b.String()
}

func inSync(region string) smapi.ReplicationStatusType {
	return smapi.ReplicationStatusType{Region: str(region), KmsKeyId: str("alias/aws/secretsmanager"), Status: smapi.StatusTypeInSync, StatusMessage: str("Replication succeeded")}
}

func TestReplicaCreatedWithSecret(t *testing.T) {
	e := newEnv(t)
	out := e.createReplicated(t, "app/db", "v1")
	wantStatus(t, out.ReplicationStatus, inSync(replRegion))
	arn := deref(out.ARN)
	repARN := strings.Replace(arn, ":us-east-1:", ":eu-west-1:", 1)

	for _, id := range []string{"app/db", repARN, repARN[:len(repARN)-7]} {
		g := e.getIn(t, replRegion, id)
		if g.SecretString.Reveal() != "v1" || deref(g.ARN) != repARN || deref(g.VersionId) != deref(out.VersionId) ||
			!slices.Equal(g.VersionStages, []string{"AWSCURRENT"}) {
			t.Fatalf("GetSecretValue(%q) in eu-west-1 = %s %s %s %v, want v1 %s %s [AWSCURRENT]", id,
				g.SecretString.Reveal(), deref(g.ARN), deref(g.VersionId), g.VersionStages, repARN, deref(out.VersionId))
		}
	}
	// The primary's ARN names nothing in the replica region.
	_, err := e.sm.GetSecretValue(e.in(replRegion), &smapi.GetSecretValueInput{SecretId: str(arn)})
	wantCode(t, err, codeNotFound, "")

	pd := e.describe(t, arn)
	if deref(pd.PrimaryRegion) != "us-east-1" {
		t.Fatalf("primary PrimaryRegion = %v, want us-east-1", pd.PrimaryRegion)
	}
	wantStatus(t, pd.ReplicationStatus, inSync(replRegion))
	rd := e.describeIn(t, replRegion, "app/db")
	if deref(rd.PrimaryRegion) != "us-east-1" || rd.ReplicationStatus != nil || deref(rd.ARN) != repARN {
		t.Fatalf("replica DescribeSecret = PrimaryRegion %v, ReplicationStatus %s, ARN %s", rd.PrimaryRegion, renderStatus(rd.ReplicationStatus), deref(rd.ARN))
	}
	if !reflect.DeepEqual(rd.VersionIdsToStages, pd.VersionIdsToStages) {
		t.Fatalf("replica VersionIdsToStages = %v, want %v", rd.VersionIdsToStages, pd.VersionIdsToStages)
	}
	// The replica's value is encrypted under a key of its own region.
	vs, err := e.sm.ListSecretVersionIds(e.in(replRegion), &smapi.ListSecretVersionIdsInput{SecretId: str("app/db")})
	mustOK(t, err, "ListSecretVersionIds in eu-west-1")
	// AWS lists the AWS managed key as DefaultEncryptionKey; here it is the
	// managed key of eu-west-1 (ListSecretVersionIds ran in that region).
	if k := vs.Versions[0].KmsKeyIds; !slices.Equal(k, []string{defaultKeyName}) {
		t.Fatalf("replica KmsKeyIds = %v, want [%s]", k, defaultKeyName)
	}
	if mk := e.sm.managedKeyARNIfExists(e.in(replRegion)); !strings.HasPrefix(mk, "arn:aws:kms:eu-west-1:") {
		t.Fatalf("eu-west-1 managed key = %q, want a key in eu-west-1", mk)
	}
	// A secret without replicas shows neither field.
	e.create(t, "plain", "x")
	if d := e.describe(t, "plain"); d.PrimaryRegion != nil || d.ReplicationStatus != nil {
		t.Fatalf("plain DescribeSecret = PrimaryRegion %v, ReplicationStatus %s, want neither", d.PrimaryRegion, renderStatus(d.ReplicationStatus))
	}
}

func TestReplicaFollowsPrimary(t *testing.T) {
	e := newEnv(t)
	e.createReplicated(t, "s", "v1")
	put, err := e.sm.PutSecretValue(e.ctx, &smapi.PutSecretValueInput{SecretId: str("s"), SecretString: secretString("v2")})
	mustOK(t, err, "PutSecretValue")
	_, err = e.sm.UpdateSecret(e.ctx, &smapi.UpdateSecretInput{SecretId: str("s"), Description: str("the db")})
	mustOK(t, err, "UpdateSecret")
	_, err = e.sm.TagResource(e.ctx, &smapi.TagResourceInput{SecretId: str("s"), Tags: []smapi.Tag{{Key: str("team"), Value: str("a")}, {Key: str("env"), Value: str("p")}}})
	mustOK(t, err, "TagResource")
	_, err = e.sm.UntagResource(e.ctx, &smapi.UntagResourceInput{SecretId: str("s"), TagKeys: []string{"env"}})
	mustOK(t, err, "UntagResource")
	_, err = e.sm.UpdateSecretVersionStage(e.ctx, &smapi.UpdateSecretVersionStageInput{SecretId: str("s"), VersionStage: str("blue"), MoveToVersionId: put.VersionId})
	mustOK(t, err, "UpdateSecretVersionStage")

	if g := e.getIn(t, replRegion, "s"); g.SecretString.Reveal() != "v2" || deref(g.VersionId) != deref(put.VersionId) {
		t.Fatalf("replica value = %s (version %s), want v2 (%s)", g.SecretString.Reveal(), deref(g.VersionId), deref(put.VersionId))
	}
	prev, err := e.sm.GetSecretValue(e.in(replRegion), &smapi.GetSecretValueInput{SecretId: str("s"), VersionStage: str("AWSPREVIOUS")})
	mustOK(t, err, "GetSecretValue(AWSPREVIOUS) in eu-west-1")
	if prev.SecretString.Reveal() != "v1" {
		t.Fatalf("replica AWSPREVIOUS = %s, want v1", prev.SecretString.Reveal())
	}
	pd, rd := e.describe(t, "s"), e.describeIn(t, replRegion, "s")
	if deref(rd.Description) != "the db" || !reflect.DeepEqual(rd.Tags, pd.Tags) || len(rd.Tags) != 1 ||
		!reflect.DeepEqual(rd.VersionIdsToStages, pd.VersionIdsToStages) {
		t.Fatalf("replica = desc %q tags %v stages %v, want desc %q tags %v stages %v",
			deref(rd.Description), rd.Tags, rd.VersionIdsToStages, deref(pd.Description), pd.Tags, pd.VersionIdsToStages)
	}
	// A new KMS key on the primary re-encrypts the primary only.
	key := e.createKey(t)
	_, err = e.sm.UpdateSecret(e.ctx, &smapi.UpdateSecretInput{SecretId: str("s"), KmsKeyId: str(key)})
	mustOK(t, err, "UpdateSecret(KmsKeyId)")
	if g := e.getIn(t, replRegion, "s"); g.SecretString.Reveal() != "v2" {
		t.Fatalf("replica value after primary key change = %s, want v2", g.SecretString.Reveal())
	}
	if rd := e.describeIn(t, replRegion, "s"); rd.KmsKeyId != nil {
		t.Fatalf("replica KmsKeyId = %s, want the default key (absent)", deref(rd.KmsKeyId))
	}
}

func TestReplicaWritesRefused(t *testing.T) {
	e := newEnv(t)
	e.createReplicated(t, "s", "v1")
	rctx := e.in(replRegion)
	const msg = "Operation not permitted on a replica secret. Call must be made in primary secret's region."
	cases := []struct {
		name string
		call func() error
	}{
		{"PutSecretValue", func() error {
			_, err := e.sm.PutSecretValue(rctx, &smapi.PutSecretValueInput{SecretId: str("s"), SecretString: secretString("x")})
			return err
		}},
		{"UpdateSecret", func() error {
			_, err := e.sm.UpdateSecret(rctx, &smapi.UpdateSecretInput{SecretId: str("s"), Description: str("d")})
			return err
		}},
		{"TagResource", func() error {
			_, err := e.sm.TagResource(rctx, &smapi.TagResourceInput{SecretId: str("s"), Tags: []smapi.Tag{{Key: str("k"), Value: str("v")}}})
			return err
		}},
		{"DeleteSecret", func() error {
			_, err := e.sm.DeleteSecret(rctx, &smapi.DeleteSecretInput{SecretId: str("s")})
			return err
		}},
		{"DeleteSecretForce", func() error {
			_, err := e.sm.DeleteSecret(rctx, &smapi.DeleteSecretInput{SecretId: str("s"), ForceDeleteWithoutRecovery: ptr(true)})
			return err
		}},
		{"ReplicateSecretToRegions", func() error {
			_, err := e.sm.ReplicateSecretToRegions(rctx, &smapi.ReplicateSecretToRegionsInput{SecretId: str("s"), AddReplicaRegions: []smapi.ReplicaRegionType{{Region: str("us-west-2")}}})
			return err
		}},
		{"RemoveRegionsFromReplication", func() error {
			_, err := e.sm.RemoveRegionsFromReplication(rctx, &smapi.RemoveRegionsFromReplicationInput{SecretId: str("s"), RemoveReplicaRegions: []string{"us-east-1"}})
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantCode(t, c.call(), codeInvalidParameter, msg)
		})
	}
	// Reads work and record the access date, which the primary shows.
	e.getIn(t, replRegion, "s")
	if d := e.describeIn(t, replRegion, "s"); d.LastAccessedDate == nil || deref(d.Description) != "" {
		t.Fatalf("replica after refused writes = LastAccessedDate %v, Description %q", d.LastAccessedDate, deref(d.Description))
	}
	st := e.describe(t, "s").ReplicationStatus
	if len(st) != 1 || st[0].LastAccessedDate == nil {
		t.Fatalf("primary ReplicationStatus = %s (LastAccessedDate %v), want the replica's access date", renderStatus(st), st)
	}
	if g := e.getIn(t, replRegion, "s"); g.SecretString.Reveal() != "v1" {
		t.Fatalf("replica value = %s, want v1", g.SecretString.Reveal())
	}
}

func TestDeletePrimaryWithReplicas(t *testing.T) {
	e := newEnv(t)
	out := e.createReplicated(t, "s", "v1", smapi.ReplicaRegionType{Region: str(replRegion)}, smapi.ReplicaRegionType{Region: str("us-west-2")})
	want := "You can't delete secret " + deref(out.ARN) + " that still has replica regions [eu-west-1, us-west-2]."
	_, err := e.sm.DeleteSecret(e.ctx, &smapi.DeleteSecretInput{SecretId: str("s")})
	wantCode(t, err, codeInvalidParameter, want)
	_, err = e.sm.DeleteSecret(e.ctx, &smapi.DeleteSecretInput{SecretId: str("s"), ForceDeleteWithoutRecovery: ptr(true)})
	wantCode(t, err, codeInvalidParameter, want)
	e.get(t, "s")

	rm, err := e.sm.RemoveRegionsFromReplication(e.ctx, &smapi.RemoveRegionsFromReplicationInput{SecretId: str("s"), RemoveReplicaRegions: []string{replRegion}})
	mustOK(t, err, "RemoveRegionsFromReplication")
	wantStatus(t, rm.ReplicationStatus, inSync("us-west-2"))
	_, err = e.sm.DescribeSecret(e.in(replRegion), &smapi.DescribeSecretInput{SecretId: str("s")})
	wantCode(t, err, codeNotFound, "")
	e.getIn(t, "us-west-2", "s")
	// Removing a region again is a no-op.
	rm, err = e.sm.RemoveRegionsFromReplication(e.ctx, &smapi.RemoveRegionsFromReplicationInput{SecretId: str("s"), RemoveReplicaRegions: []string{replRegion, "us-west-2"}})
	mustOK(t, err, "RemoveRegionsFromReplication (rest)")
	if rm.ReplicationStatus == nil || len(rm.ReplicationStatus) != 0 {
		t.Fatalf("ReplicationStatus after removing all = %s (nil %t), want []", renderStatus(rm.ReplicationStatus), rm.ReplicationStatus == nil)
	}
	if d := e.describe(t, "s"); d.PrimaryRegion != nil || d.ReplicationStatus != nil {
		t.Fatalf("DescribeSecret without replicas = PrimaryRegion %v, ReplicationStatus %s", d.PrimaryRegion, renderStatus(d.ReplicationStatus))
	}
	_, err = e.sm.DeleteSecret(e.ctx, &smapi.DeleteSecretInput{SecretId: str("s"), ForceDeleteWithoutRecovery: ptr(true)})
	mustOK(t, err, "DeleteSecret without replicas")
}

func TestReplicateToRegionWithSameName(t *testing.T) {
	e := newEnv(t)
	e.create(t, "s", "primary")
	other, err := e.sm.CreateSecret(e.in(replRegion), &smapi.CreateSecretInput{Name: str("s"), SecretString: secretString("theirs")})
	mustOK(t, err, "CreateSecret in eu-west-1")

	out, err := e.sm.ReplicateSecretToRegions(e.ctx, &smapi.ReplicateSecretToRegionsInput{SecretId: str("s"), AddReplicaRegions: []smapi.ReplicaRegionType{{Region: str(replRegion)}}})
	mustOK(t, err, "ReplicateSecretToRegions")
	wantStatus(t, out.ReplicationStatus, smapi.ReplicationStatusType{Region: str(replRegion), KmsKeyId: str("alias/aws/secretsmanager"), Status: smapi.StatusTypeFailed, StatusMessage: str("Secret with this name already exists in this region")})
	if g := e.getIn(t, replRegion, "s"); g.SecretString.Reveal() != "theirs" || deref(g.ARN) != deref(other.ARN) {
		t.Fatalf("eu-west-1 secret = %s %s, want it untouched", g.SecretString.Reveal(), deref(g.ARN))
	}
	// A write to the primary retries, and fails again.
	_, err = e.sm.PutSecretValue(e.ctx, &smapi.PutSecretValueInput{SecretId: str("s"), SecretString: secretString("primary2")})
	mustOK(t, err, "PutSecretValue")
	wantStatus(t, e.describe(t, "s").ReplicationStatus, smapi.ReplicationStatusType{Region: str(replRegion), KmsKeyId: str("alias/aws/secretsmanager"), Status: smapi.StatusTypeFailed, StatusMessage: str("Secret with this name")})

	out, err = e.sm.ReplicateSecretToRegions(e.ctx, &smapi.ReplicateSecretToRegionsInput{
		SecretId: str("s"), AddReplicaRegions: []smapi.ReplicaRegionType{{Region: str(replRegion)}}, ForceOverwriteReplicaSecret: ptr(true),
	})
	mustOK(t, err, "ReplicateSecretToRegions(ForceOverwriteReplicaSecret)")
	wantStatus(t, out.ReplicationStatus, inSync(replRegion))
	g := e.getIn(t, replRegion, "s")
	if g.SecretString.Reveal() != "primary2" || deref(g.ARN) == deref(other.ARN) {
		t.Fatalf("eu-west-1 secret after overwrite = %s %s, want the replica", g.SecretString.Reveal(), deref(g.ARN))
	}
	vs, err := e.sm.ListSecretVersionIds(e.in(replRegion), &smapi.ListSecretVersionIdsInput{SecretId: str("s"), IncludeDeprecated: ptr(true)})
	mustOK(t, err, "ListSecretVersionIds")
	if len(vs.Versions) != 2 {
		t.Fatalf("replica has %d versions, want the primary's 2", len(vs.Versions))
	}
}

func TestReplicationParameterErrors(t *testing.T) {
	e := newEnv(t)
	e.create(t, "s", "v")
	cases := []struct {
		name    string
		regions []string
	}{
		{"unknown region", []string{"xx-nowhere-1"}},
		{"own region", []string{"us-east-1"}},
		{"twice", []string{replRegion, replRegion}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var add []smapi.ReplicaRegionType
			for _, r := range c.regions {
				add = append(add, smapi.ReplicaRegionType{Region: str(r)})
			}
			_, err := e.sm.ReplicateSecretToRegions(e.ctx, &smapi.ReplicateSecretToRegionsInput{SecretId: str("s"), AddReplicaRegions: add})
			wantCode(t, err, codeInvalidParameter, "Invalid replica region.")
			_, err = e.sm.CreateSecret(e.ctx, &smapi.CreateSecretInput{Name: str("new-" + strings.ReplaceAll(c.name, " ", "-")), AddReplicaRegions: add})
			wantCode(t, err, codeInvalidParameter, "Invalid replica region.")
		})
	}
	if d := e.describe(t, "s"); d.ReplicationStatus != nil {
		t.Fatalf("ReplicationStatus after refused calls = %s", renderStatus(d.ReplicationStatus))
	}
	_, err := e.sm.ReplicateSecretToRegions(e.ctx, &smapi.ReplicateSecretToRegionsInput{SecretId: str("missing"), AddReplicaRegions: []smapi.ReplicaRegionType{{Region: str(replRegion)}}})
	wantCode(t, err, codeNotFound, "")
	_, err = e.sm.DeleteSecret(e.ctx, &smapi.DeleteSecretInput{SecretId: str("s")})
	mustOK(t, err, "DeleteSecret")
	_, err = e.sm.ReplicateSecretToRegions(e.ctx, &smapi.ReplicateSecretToRegionsInput{SecretId: str("s"), AddReplicaRegions: []smapi.ReplicaRegionType{{Region: str(replRegion)}}})
	wantCode(t, err, codeInvalidRequest, "marked for deletion")
	_, err = e.sm.StopReplicationToReplica(e.ctx, &smapi.StopReplicationToReplicaInput{SecretId: str("s")})
	wantCode(t, err, codeInvalidRequest, "not a replica")
}

func TestReplicaKMSKeyInItsRegion(t *testing.T) {
	e := newEnv(t)
	kout, err := e.kms.CreateKey(e.in(replRegion), &kmsapi.CreateKeyInput{})
	mustOK(t, err, "kms.CreateKey in eu-west-1")
	euKey := deref(kout.KeyMetadata.Arn)
	usKey := e.createKey(t)

	out := e.createReplicated(t, "s", "v1",
		smapi.ReplicaRegionType{Region: str(replRegion), KmsKeyId: str(euKey)},
		smapi.ReplicaRegionType{Region: str("us-west-2"), KmsKeyId: str(usKey)}) // a us-east-1 key: not in us-west-2
	wantStatus(t, out.ReplicationStatus,
		smapi.ReplicationStatusType{Region: str(replRegion), KmsKeyId: str(euKey), Status: smapi.StatusTypeInSync},
		smapi.ReplicationStatusType{Region: str("us-west-2"), KmsKeyId: str(usKey), Status: smapi.StatusTypeFailed, StatusMessage: str("Replication failed: Secrets Manager can't encrypt")})
	_, err = e.sm.DescribeSecret(e.in("us-west-2"), &smapi.DescribeSecretInput{SecretId: str("s")})
	wantCode(t, err, codeNotFound, "")

	vs, err := e.sm.ListSecretVersionIds(e.in(replRegion), &smapi.ListSecretVersionIdsInput{SecretId: str("s")})
	mustOK(t, err, "ListSecretVersionIds")
	if k := vs.Versions[0].KmsKeyIds; !slices.Equal(k, []string{euKey}) {
		t.Fatalf("replica KmsKeyIds = %v, want [%s]", k, euKey)
	}
	if d := e.describeIn(t, replRegion, "s"); deref(d.KmsKeyId) != euKey {
		t.Fatalf("replica KmsKeyId = %s, want %s", deref(d.KmsKeyId), euKey)
	}

	// The replica's key disabled: the replica cannot be read, the primary can,
	// and new values fail to replicate.
	_, err = e.kms.DisableKey(e.in(replRegion), &kmsapi.DisableKeyInput{KeyId: str(euKey)})
	mustOK(t, err, "DisableKey")
	_, err = e.sm.GetSecretValue(e.in(replRegion), &smapi.GetSecretValueInput{SecretId: str("s")})
	wantCode(t, err, codeDecryption, "")
	if g := e.get(t, "s"); g.SecretString.Reveal() != "v1" {
		t.Fatalf("primary value = %s, want v1", g.SecretString.Reveal())
	}
	_, err = e.sm.PutSecretValue(e.ctx, &smapi.PutSecretValueInput{SecretId: str("s"), SecretString: secretString("v2")})
	mustOK(t, err, "PutSecretValue with the replica's key disabled")
	st := e.describe(t, "s").ReplicationStatus
	if st[0].Status != smapi.StatusTypeFailed || !strings.Contains(deref(st[0].StatusMessage), "can't encrypt") {
		t.Fatalf("eu-west-1 status = %s, want Failed (encryption)", renderStatus(st[:1]))
	}

	// Enabled again, a retry brings the replica up to date.
	_, err = e.kms.EnableKey(e.in(replRegion), &kmsapi.EnableKeyInput{KeyId: str(euKey)})
	mustOK(t, err, "EnableKey")
	rep, err := e.sm.ReplicateSecretToRegions(e.ctx, &smapi.ReplicateSecretToRegionsInput{SecretId: str("s"), AddReplicaRegions: []smapi.ReplicaRegionType{{Region: str(replRegion), KmsKeyId: str(euKey)}}})
	mustOK(t, err, "ReplicateSecretToRegions (retry)")
	if rep.ReplicationStatus[0].Status != smapi.StatusTypeInSync {
		t.Fatalf("eu-west-1 status after retry = %s", renderStatus(rep.ReplicationStatus))
	}
	if g := e.getIn(t, replRegion, "s"); g.SecretString.Reveal() != "v2" {
		t.Fatalf("replica value after retry = %s, want v2", g.SecretString.Reveal())
	}

	// A new KmsKeyId for an existing replica re-encrypts it.
	_, err = e.sm.ReplicateSecretToRegions(e.ctx, &smapi.ReplicateSecretToRegionsInput{SecretId: str("s"), AddReplicaRegions: []smapi.ReplicaRegionType{{Region: str(replRegion)}}})
	mustOK(t, err, "ReplicateSecretToRegions (default key)")
	vs, err = e.sm.ListSecretVersionIds(e.in(replRegion), &smapi.ListSecretVersionIdsInput{SecretId: str("s")})
	mustOK(t, err, "ListSecretVersionIds")
	for _, v := range vs.Versions {
		if !slices.Equal(v.KmsKeyIds, []string{defaultKeyName}) {
			t.Fatalf("version %s KmsKeyIds = %v, want the eu-west-1 managed key [%s]", deref(v.VersionId), v.KmsKeyIds, defaultKeyName)
		}
	}
}

func TestStopReplicationToReplica(t *testing.T) {
	e := newEnv(t)
	out := e.createReplicated(t, "s", "v1", smapi.ReplicaRegionType{Region: str(replRegion)}, smapi.ReplicaRegionType{Region: str("us-west-2")})
	repARN := strings.Replace(deref(out.ARN), ":us-east-1:", ":eu-west-1:", 1)
	st, err := e.sm.StopReplicationToReplica(e.in(replRegion), &smapi.StopReplicationToReplicaInput{SecretId: str(repARN)})
	mustOK(t, err, "StopReplicationToReplica")
	if deref(st.ARN) != repARN {
		t.Fatalf("StopReplicationToReplica ARN = %s, want %s", deref(st.ARN), repARN)
	}
	wantStatus(t, e.describe(t, "s").ReplicationStatus, inSync("us-west-2"))
	if d := e.describeIn(t, replRegion, "s"); d.PrimaryRegion != nil {
		t.Fatalf("promoted PrimaryRegion = %s, want absent", deref(d.PrimaryRegion))
	}
	// The promoted secret is writable and no longer follows the primary.
	_, err = e.sm.PutSecretValue(e.in(replRegion), &smapi.PutSecretValueInput{SecretId: str("s"), SecretString: secretString("mine")})
	mustOK(t, err, "PutSecretValue on the promoted secret")
	_, err = e.sm.PutSecretValue(e.ctx, &smapi.PutSecretValueInput{SecretId: str("s"), SecretString: secretString("v2")})
	mustOK(t, err, "PutSecretValue on the primary")
	if g := e.getIn(t, replRegion, "s"); g.SecretString.Reveal() != "mine" {
		t.Fatalf("promoted value = %s, want mine", g.SecretString.Reveal())
	}
	if g := e.getIn(t, "us-west-2", "s"); g.SecretString.Reveal() != "v2" {
		t.Fatalf("us-west-2 replica value = %s, want v2", g.SecretString.Reveal())
	}
	_, err = e.sm.StopReplicationToReplica(e.in(replRegion), &smapi.StopReplicationToReplicaInput{SecretId: str("s")})
	wantCode(t, err, codeInvalidRequest, "")
}

func TestListSecretsPrimaryRegionFilter(t *testing.T) {
	e := newEnv(t)
	e.create(t, "plain", "x")
	e.createReplicated(t, "dup", "y")
	names := func(ctx context.Context, values ...string) []string {
		t.Helper()
		out, err := e.sm.ListSecrets(ctx, &smapi.ListSecretsInput{Filters: []smapi.Filter{{Key: smapi.FilterNameStringTypePrimaryRegion, Values: values}}})
		mustOK(t, err, "ListSecrets")
		var n []string
		for _, s := range out.SecretList {
			n = append(n, deref(s.Name))
			if deref(s.Name) == "dup" && deref(s.PrimaryRegion) != "us-east-1" {
				t.Fatalf("ListSecrets PrimaryRegion of dup = %v, want us-east-1", s.PrimaryRegion)
			}
		}
		slices.Sort(n)
		return n
	}
	cases := []struct {
		name   string
		ctx    context.Context
		values []string
		want   []string
	}{
		{"primary region", e.ctx, []string{"us-east-1"}, []string{"dup"}},
		{"prefix", e.ctx, []string{"us-"}, []string{"dup"}},
		{"other region", e.ctx, []string{"eu-west-1"}, nil},
		{"negated", e.ctx, []string{"!us-east-1"}, []string{"plain"}},
		{"replica region", e.in(replRegion), []string{"us-east-1"}, []string{"dup"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := names(c.ctx, c.values...); !slices.Equal(got, c.want) {
				t.Fatalf("ListSecrets(primary-region %v) = %v, want %v", c.values, got, c.want)
			}
		})
	}
}

// TestReplicationResumesInRunJobs: a committed write whose sync did not run
// (a crash) is synced by RunJobs.
func TestReplicationResumesInRunJobs(t *testing.T) {
	e := newEnv(t)
	e.createReplicated(t, "s", "v1")
	scope := storage.Scope{Account: testAccount, Region: testRegion}
	err := e.sm.store.Update(e.ctx, func(tx storage.Tx) error {
		sec, err := getSecret(e.ctx, tx, scope, "s")
		if err != nil {
			return err
		}
		sec.meta.Description = str("changed before a crash")
		if err := saveSecret(e.ctx, tx, sec); err != nil {
			return err
		}
		return e.sm.repl.Mark(e.ctx, tx, scope, "s")
	})
	mustOK(t, err, "write without sync")
	if d := e.describeIn(t, replRegion, "s"); d.Description != nil {
		t.Fatalf("replica description before RunJobs = %q, want none", deref(d.Description))
	}
	mustOK(t, e.sm.RunJobs(e.ctx), "RunJobs")
	if d := e.describeIn(t, replRegion, "s"); deref(d.Description) != "changed before a crash" {
		t.Fatalf("replica description after RunJobs = %q", deref(d.Description))
	}
	if _, err := e.sm.store.Get(e.ctx, kindReplSync, scope, "s"); err == nil {
		t.Fatalf("replication mark still present after RunJobs")
	}
}

// TestReplicaConvergesUnderConcurrentWrites: concurrent writes to the
// primary through two services on one store (two nodes) leave the replica
// exactly in line with it, on every backend.
func TestReplicaConvergesUnderConcurrentWrites(t *testing.T) {
	for name, store := range openBackends(t) {
		t.Run(name, func(t *testing.T) {
			e := envOn(t, store)
			node2 := New(Config{Store: store, KMS: e.kms, Now: e.clock.Now})
			e.createReplicated(t, "s", "v0")
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for i := range 8 {
				sm := e.sm
				if i%2 == 1 {
					sm = node2
				}
				wg.Go(func() {
					_, err := sm.PutSecretValue(e.ctx, &smapi.PutSecretValueInput{SecretId: str("s"), SecretString: secretString(fmt.Sprintf("v%d", i+1))})
					errs <- err
					_, err = sm.TagResource(e.ctx, &smapi.TagResourceInput{SecretId: str("s"), Tags: []smapi.Tag{{Key: str(fmt.Sprintf("k%d", i)), Value: str("v")}}})
					errs <- err
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				mustOK(t, err, "concurrent write")
			}
			pd, rd := e.describe(t, "s"), e.describeIn(t, replRegion, "s")
			if !reflect.DeepEqual(pd.VersionIdsToStages, rd.VersionIdsToStages) || !reflect.DeepEqual(pd.Tags, rd.Tags) || len(rd.Tags) != 8 {
				t.Fatalf("replica stages %v tags %d, want primary's %v tags %d", rd.VersionIdsToStages, len(rd.Tags), pd.VersionIdsToStages, len(pd.Tags))
			}
			if p, r := e.get(t, "s"), e.getIn(t, replRegion, "s"); p.SecretString.Reveal() != r.SecretString.Reveal() {
				t.Fatalf("replica value %s, primary %s", r.SecretString.Reveal(), p.SecretString.Reveal())
			}
			wantStatus(t, pd.ReplicationStatus, inSync(replRegion))
		})
	}
}

// sealCounter is a KMS that counts the data keys made for each secret ARN
// and version (the sealing of one version's value).
type sealCounter struct {
	KMS
	mu sync.Mutex
	n  map[string]int
}

func (c *sealCounter) GenerateDataKey(ctx context.Context, in *kmsapi.GenerateDataKeyInput) (*kmsapi.GenerateDataKeyOutput, error) {
	c.mu.Lock()
	c.n[in.EncryptionContext["SecretARN"]+" "+in.EncryptionContext["SecretVersionId"]]++
	c.mu.Unlock()
	return c.KMS.GenerateDataKey(ctx, in)
}

func (c *sealCounter) count(arn, vid string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[arn+" "+vid]
}

// TestReplicaSyncedOnceOnTwoNodes: writes to the primary through two nodes
// of one store, concurrently, converge on the replica, and each version is
// sealed for the replica once: one node runs each sync, however many
// writes it covers.
func TestReplicaSyncedOnceOnTwoNodes(t *testing.T) {
	for name, store := range openBackends(t) {
		t.Run(name, func(t *testing.T) {
			e := envOn(t, store)
			seals := &sealCounter{KMS: e.kms, n: map[string]int{}}
			node1 := New(Config{Store: store, KMS: seals, Now: e.clock.Now})
			node2 := New(Config{Store: store, KMS: seals, Now: e.clock.Now})
			e.sm = node1
			out := e.createReplicated(t, "s", "v0")
			repARN := strings.Replace(deref(out.ARN), ":us-east-1:", ":eu-west-1:", 1)
			var wg sync.WaitGroup
			errs := make(chan error, 24)
			for i := range 12 {
				sm := []*Service{node1, node2}[i%2]
				wg.Go(func() {
					_, err := sm.PutSecretValue(e.ctx, &smapi.PutSecretValueInput{SecretId: str("s"), SecretString: secretString(fmt.Sprintf("v%d", i+1))})
					errs <- err
					_, err = sm.TagResource(e.ctx, &smapi.TagResourceInput{SecretId: str("s"), Tags: []smapi.Tag{{Key: str(fmt.Sprintf("k%d", i)), Value: str("v")}}})
					errs <- err
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				mustOK(t, err, "concurrent write")
			}
			pd, rd := e.describe(t, "s"), e.describeIn(t, replRegion, "s")
			if !reflect.DeepEqual(pd.VersionIdsToStages, rd.VersionIdsToStages) || !reflect.DeepEqual(pd.Tags, rd.Tags) || len(rd.Tags) != 12 {
				t.Fatalf("replica stages %v tags %d, want primary's %v tags %d", rd.VersionIdsToStages, len(rd.Tags), pd.VersionIdsToStages, len(pd.Tags))
			}
			wantStatus(t, pd.ReplicationStatus, inSync(replRegion))
			pv, err := e.sm.ListSecretVersionIds(e.ctx, &smapi.ListSecretVersionIdsInput{SecretId: str("s"), IncludeDeprecated: ptr(true)})
			mustOK(t, err, "ListSecretVersionIds")
			rv, err := node2.ListSecretVersionIds(e.in(replRegion), &smapi.ListSecretVersionIdsInput{SecretId: str("s"), IncludeDeprecated: ptr(true)})
			mustOK(t, err, "ListSecretVersionIds in eu-west-1")
			if len(pv.Versions) != 13 || len(rv.Versions) != 13 {
				t.Fatalf("versions: primary %d, replica %d; want 13", len(pv.Versions), len(rv.Versions))
			}
			for _, v := range pv.Versions {
				vid := deref(v.VersionId)
				p, err := e.sm.GetSecretValue(e.ctx, &smapi.GetSecretValueInput{SecretId: str("s"), VersionId: str(vid)})
				mustOK(t, err, "GetSecretValue(primary, "+vid+")")
				r, err := node2.GetSecretValue(e.in(replRegion), &smapi.GetSecretValueInput{SecretId: str("s"), VersionId: str(vid)})
				mustOK(t, err, "GetSecretValue(replica, "+vid+")")
				if p.SecretString.Reveal() != r.SecretString.Reveal() {
					t.Fatalf("version %s: replica %s, primary %s", vid, r.SecretString.Reveal(), p.SecretString.Reveal())
				}
				if n := seals.count(repARN, vid); n != 1 {
					t.Fatalf("version %s sealed %d times for the replica, want once", vid, n)
				}
			}
			if _, err := store.Get(e.ctx, kindReplSync, scopeT(), "s"); err == nil {
				t.Fatalf("replica sync to-do left after the writes answered")
			}
		})
	}
}

// TestReplicaSyncAfterACrashOnTheOtherNode: a node that committed a change
// to a primary and died before its sync (the to-do left due), or while
// holding the sync's claim, leaves it to RunJobs on another node; a claim
// keeps other nodes off until its lease runs out.
func TestReplicaSyncAfterACrashOnTheOtherNode(t *testing.T) {
	for name, store := range openBackends(t) {
		t.Run(name, func(t *testing.T) {
			e := envOn(t, store)
			node2 := New(Config{Store: store, KMS: e.kms, Now: e.clock.Now})
			e.createReplicated(t, "s", "v1")
			jobs := t.Context() // RunJobs runs without a caller, as the app's ticker
			// crashedWrite commits a change to the primary as UpdateSecret
			// does on node 1 (e.sm), and dies before it runs the sync.
			crashedWrite := func(desc string) {
				t.Helper()
				err := e.sm.store.Update(e.ctx, func(tx storage.Tx) error {
					sec, err := getSecret(e.ctx, tx, scopeT(), "s")
					if err != nil {
						return err
					}
					sec.meta.Description = str(desc)
					var after syncAfter
					return e.sm.saveChange(e.ctx, tx, sec, &after)
				})
				mustOK(t, err, "write without sync")
			}
			replicaDesc := func() string { return deref(e.describeIn(t, replRegion, "s").Description) }

			crashedWrite("after a crash")
			if d := replicaDesc(); d != "" {
				t.Fatalf("replica description before RunJobs = %q, want none", d)
			}
			mustOK(t, node2.RunJobs(jobs), "RunJobs on node 2")
			if d := replicaDesc(); d != "after a crash" {
				t.Fatalf("replica description after node 2's RunJobs = %q", d)
			}
			if _, err := store.Get(e.ctx, kindReplSync, scopeT(), "s"); err == nil {
				t.Fatalf("replica sync to-do left after RunJobs")
			}

			// Node 1 claims the sync and dies while it runs.
			crashedWrite("claimed, then a crash")
			claimed, dead := make(chan struct{}), make(chan struct{})
			node1 := replication.New(replication.Config{Store: store, Kind: kindReplSync, Now: e.clock.Now,
				Sync: func(context.Context, *replication.Job) error { close(claimed); <-dead; return nil }})
			done := make(chan error, 1)
			go func() { done <- node1.RunDue(jobs) }()
			<-claimed
			mustOK(t, node2.RunJobs(jobs), "RunJobs on node 2 during node 1's claim")
			if d := replicaDesc(); d != "after a crash" {
				t.Fatalf("replica description during node 1's claim = %q, want the previous one", d)
			}
			e.clock.Add(replication.DefaultLease + time.Second)
			mustOK(t, node2.RunJobs(jobs), "RunJobs on node 2 after the lease")
			close(dead)
			mustOK(t, <-done, "node 1's RunDue")
			if d := replicaDesc(); d != "claimed, then a crash" {
				t.Fatalf("replica description after node 2's RunJobs = %q", d)
			}
			if _, err := store.Get(e.ctx, kindReplSync, scopeT(), "s"); err == nil {
				t.Fatalf("replica sync to-do left after RunJobs")
			}
		})
	}
}

// TestReplicaSyncReadsOlderToDos: sm.replsync to-dos as the replication
// queue wrote them before it used package job's claims (Data {} when
// unclaimed, {"claim":UUID} or {"claim":UUID,"again":true} with Due at the
// lease's end when a node held it; Created in nanoseconds), left in a
// store upgraded in place, are run: an unclaimed one by RunJobs at once,
// a claimed one by RunJobs when its lease ends, or at once by the next
// write's sync.
func TestReplicaSyncReadsOlderToDos(t *testing.T) {
	for name, store := range openBackends(t) {
		t.Run(name, func(t *testing.T) {
			e := envOn(t, store)
			e.createReplicated(t, "s", "v1")
			// oldWrite commits a change to the primary whose sync the old
			// code left undone, its to-do as the old code wrote it.
			oldWrite := func(desc, data string, due time.Time) {
				t.Helper()
				err := store.Update(e.ctx, func(tx storage.Tx) error {
					sec, err := getSecret(e.ctx, tx, scopeT(), "s")
					if err != nil {
						return err
					}
					sec.meta.Description = str(desc)
					if err := saveSecret(e.ctx, tx, sec); err != nil {
						return err
					}
					return tx.Insert(e.ctx, &storage.Record{Kind: kindReplSync, Scope: scopeT(), ID: "s",
						Due: due.Unix(), Created: e.clock.Now().UnixNano(), Data: []byte(data)})
				})
				mustOK(t, err, "write with an old to-do")
			}
			replicaDesc := func() string { return deref(e.describeIn(t, replRegion, "s").Description) }
			noToDo := func(when string) {
				t.Helper()
				if _, err := store.Get(e.ctx, kindReplSync, scopeT(), "s"); err == nil {
					t.Fatalf("replica sync to-do left %s", when)
				}
			}
			jobs := t.Context()

			oldWrite("unclaimed", `{}`, e.clock.Now())
			mustOK(t, e.sm.RunJobs(jobs), "RunJobs")
			if d := replicaDesc(); d != "unclaimed" {
				t.Fatalf("replica description after RunJobs = %q, want %q", d, "unclaimed")
			}
			noToDo("after RunJobs")

			oldWrite("claimed", `{"claim":"2b0f6c1e-8d3a-4f57-9e21-6c4d8a1b3f90"}`, e.clock.Now().Add(replication.DefaultLease))
			mustOK(t, e.sm.RunJobs(jobs), "RunJobs during the old lease")
			if d := replicaDesc(); d != "unclaimed" {
				t.Fatalf("replica description during the old lease = %q, want the previous one", d)
			}
			e.clock.Add(replication.DefaultLease + time.Second)
			mustOK(t, e.sm.RunJobs(jobs), "RunJobs after the old lease")
			if d := replicaDesc(); d != "claimed" {
				t.Fatalf("replica description after the old lease = %q, want %q", d, "claimed")
			}
			noToDo("after the old lease")

			oldWrite("claimed again", `{"claim":"9c7e2d40-1a5b-4c8e-b3f6-0d2e4a6c8b1f","again":true}`, e.clock.Now().Add(replication.DefaultLease))
			_, err := e.sm.UpdateSecret(e.ctx, &smapi.UpdateSecretInput{SecretId: str("s"), Description: str("new write")})
			mustOK(t, err, "UpdateSecret")
			if d := replicaDesc(); d != "new write" {
				t.Fatalf("replica description when UpdateSecret answered = %q, want %q", d, "new write")
			}
			noToDo("after UpdateSecret")
		})
	}
}
