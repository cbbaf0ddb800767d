package e2e

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyfort/keyfort/internal/keyfortest"
	"github.com/keyfort/keyfort/internal/storage/postgres/pgtest"
)

const replicaOnlyMsg = "Operation not permitted on a replica secret. Call must be made in primary secret's region."

// TestSMReplication drives multi-Region secrets through the SDK: a secret
// in us-east-1 replicated to eu-west-1 and read there, primary changes
// propagating, the replica's own KMS key, refused writes to the replica,
// and state after a restart.
func TestSMReplication(t *testing.T) { testSMReplication(t) }

// TestSMReplicationOnPostgres runs the same flow on the PostgreSQL store.
func TestSMReplicationOnPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	testSMReplication(t, keyfortest.WithStore(dsn))
}

func testSMReplication(t *testing.T, opts ...keyfortest.Option) {
	srv, use1 := startSM(t, opts...)
	euw1 := srv.SecretsManager("eu-west-1")
	euKMS := srv.KMS("eu-west-1")

	key, err := euKMS.CreateKey(ctxT(t), &kms.CreateKeyInput{})
	mustNoErr(t, err, "kms.CreateKey in eu-west-1")
	euKey := aws.ToString(key.KeyMetadata.Arn)

	out, err := use1.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{
		Name:              aws.String("app/db"),
		SecretString:      aws.String("v1"),
		AddReplicaRegions: []types.ReplicaRegionType{{Region: aws.String("eu-west-1"), KmsKeyId: aws.String(euKey)}},
	})
	mustNoErr(t, err, "CreateSecret with AddReplicaRegions")
	if len(out.ReplicationStatus) != 1 || aws.ToString(out.ReplicationStatus[0].Region) != "eu-west-1" ||
		out.ReplicationStatus[0].Status != types.StatusTypeInSync || aws.ToString(out.ReplicationStatus[0].KmsKeyId) != euKey {
		t.Fatalf("CreateSecret ReplicationStatus = %+v, want eu-west-1 InSync under %s", out.ReplicationStatus, euKey)
	}
	arn := aws.ToString(out.ARN)
	repARN := strings.Replace(arn, ":us-east-1:", ":eu-west-1:", 1)

	g, err := euw1.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/db")})
	mustNoErr(t, err, "GetSecretValue in eu-west-1")
	if aws.ToString(g.SecretString) != "v1" || aws.ToString(g.ARN) != repARN || !slices.Equal(g.VersionStages, []string{"AWSCURRENT"}) ||
		aws.ToString(g.VersionId) != aws.ToString(out.VersionId) {
		t.Fatalf("replica GetSecretValue = %q %s %v %s, want v1 %s [AWSCURRENT] %s", aws.ToString(g.SecretString),
			aws.ToString(g.ARN), g.VersionStages, aws.ToString(g.VersionId), repARN, aws.ToString(out.VersionId))
	}

	// Changes to the primary reach the replica.
	put, err := use1.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), SecretString: aws.String("v2")})
	mustNoErr(t, err, "PutSecretValue on the primary")
	_, err = use1.TagResource(ctxT(t), &secretsmanager.TagResourceInput{SecretId: aws.String(arn), Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("db")}}})
	mustNoErr(t, err, "TagResource on the primary")
	if got := secretValue(t, euw1, repARN); got != "v2" {
		t.Fatalf("replica value after PutSecretValue = %q, want v2", got)
	}
	rd, err := euw1.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String(repARN)})
	mustNoErr(t, err, "DescribeSecret in eu-west-1")
	if aws.ToString(rd.PrimaryRegion) != "us-east-1" || len(rd.Tags) != 1 || aws.ToString(rd.KmsKeyId) != euKey ||
		!slices.Equal(rd.VersionIdsToStages[aws.ToString(put.VersionId)], []string{"AWSCURRENT"}) {
		t.Fatalf("replica DescribeSecret = PrimaryRegion %v Tags %v KmsKeyId %v stages %v", rd.PrimaryRegion, rd.Tags, rd.KmsKeyId, rd.VersionIdsToStages)
	}
	pd, err := use1.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	mustNoErr(t, err, "DescribeSecret on the primary")
	if aws.ToString(pd.PrimaryRegion) != "us-east-1" || len(pd.ReplicationStatus) != 1 || pd.ReplicationStatus[0].LastAccessedDate == nil {
		t.Fatalf("primary DescribeSecret = PrimaryRegion %v ReplicationStatus %+v, want the replica with its access date", pd.PrimaryRegion, pd.ReplicationStatus)
	}
	ls, err := euw1.ListSecrets(ctxT(t), &secretsmanager.ListSecretsInput{Filters: []types.Filter{{Key: types.FilterNameStringTypePrimaryRegion, Values: []string{"us-east-1"}}}})
	mustNoErr(t, err, "ListSecrets(primary-region) in eu-west-1")
	if len(ls.SecretList) != 1 || aws.ToString(ls.SecretList[0].ARN) != repARN {
		t.Fatalf("ListSecrets(primary-region us-east-1) in eu-west-1 = %+v, want the replica", ls.SecretList)
	}

	// Writes to the replica are refused; so is deleting the primary.
	_, err = euw1.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String(repARN), SecretString: aws.String("x")})
	var ip *types.InvalidParameterException
	if !errors.As(err, &ip) {
		t.Fatalf("PutSecretValue on the replica error = %v, want InvalidParameterException", err)
	}
	wantAPIError(t, err, "InvalidParameterException", replicaOnlyMsg)
	_, err = euw1.UpdateSecret(ctxT(t), &secretsmanager.UpdateSecretInput{SecretId: aws.String(repARN), Description: aws.String("d")})
	wantAPIError(t, err, "InvalidParameterException", replicaOnlyMsg)
	_, err = euw1.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String(repARN)})
	wantAPIError(t, err, "InvalidParameterException", replicaOnlyMsg)
	_, err = use1.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String(arn)})
	wantAPIError(t, err, "InvalidParameterException", "You can't delete secret "+arn+" that still has replica regions [eu-west-1].")

	// The replica's key, in its region, disabled: only the replica fails.
	_, err = euKMS.DisableKey(ctxT(t), &kms.DisableKeyInput{KeyId: aws.String(euKey)})
	mustNoErr(t, err, "DisableKey in eu-west-1")
	_, err = euw1.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String(repARN)})
	var df *types.DecryptionFailure
	if !errors.As(err, &df) {
		t.Fatalf("GetSecretValue on the replica with its key disabled: error = %v, want DecryptionFailure", err)
	}
	if got := secretValue(t, use1, arn); got != "v2" {
		t.Fatalf("primary value with the replica's key disabled = %q, want v2", got)
	}
	_, err = euKMS.EnableKey(ctxT(t), &kms.EnableKeyInput{KeyId: aws.String(euKey)})
	mustNoErr(t, err, "EnableKey in eu-west-1")

	// Everything survives a restart.
	srv.Restart(t)
	use1, euw1 = srv.SecretsManager(), srv.SecretsManager("eu-west-1")
	if got := secretValue(t, euw1, repARN); got != "v2" {
		t.Fatalf("replica value after restart = %q, want v2", got)
	}
	_, err = use1.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), SecretString: aws.String("v3")})
	mustNoErr(t, err, "PutSecretValue after restart")
	if got := secretValue(t, euw1, repARN); got != "v3" {
		t.Fatalf("replica value after restart and PutSecretValue = %q, want v3", got)
	}
	_, err = euw1.TagResource(ctxT(t), &secretsmanager.TagResourceInput{SecretId: aws.String(repARN), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
	wantAPIError(t, err, "InvalidParameterException", replicaOnlyMsg)
}

// TestSMReplicationRemoveAndStop covers ReplicateSecretToRegions on an
// existing secret, RemoveRegionsFromReplication and StopReplicationToReplica.
func TestSMReplicationRemoveAndStop(t *testing.T) {
	srv, use1 := startSM(t)
	euw1, usw2 := srv.SecretsManager("eu-west-1"), srv.SecretsManager("us-west-2")
	arn := aws.ToString(createSecret(t, use1, "svc", "s1").ARN)

	_, err := use1.ReplicateSecretToRegions(ctxT(t), &secretsmanager.ReplicateSecretToRegionsInput{
		SecretId: aws.String(arn), AddReplicaRegions: []types.ReplicaRegionType{{Region: aws.String("us-east-1")}},
	})
	wantAPIError(t, err, "InvalidParameterException", "Invalid replica region.")

	// A secret of that name in us-west-2: Failed, until overwritten.
	createSecret(t, usw2, "svc", "theirs")
	rep, err := use1.ReplicateSecretToRegions(ctxT(t), &secretsmanager.ReplicateSecretToRegionsInput{
		SecretId:          aws.String(arn),
		AddReplicaRegions: []types.ReplicaRegionType{{Region: aws.String("eu-west-1")}, {Region: aws.String("us-west-2")}},
	})
	mustNoErr(t, err, "ReplicateSecretToRegions")
	if aws.ToString(rep.ARN) != arn || len(rep.ReplicationStatus) != 2 ||
		rep.ReplicationStatus[0].Status != types.StatusTypeInSync || aws.ToString(rep.ReplicationStatus[0].KmsKeyId) != "alias/aws/secretsmanager" ||
		rep.ReplicationStatus[1].Status != types.StatusTypeFailed || aws.ToString(rep.ReplicationStatus[1].StatusMessage) == "" {
		t.Fatalf("ReplicateSecretToRegions = %+v", rep.ReplicationStatus)
	}
	if got := secretValue(t, usw2, "svc"); got != "theirs" {
		t.Fatalf("us-west-2 value = %q, want theirs (not overwritten)", got)
	}
	rep, err = use1.ReplicateSecretToRegions(ctxT(t), &secretsmanager.ReplicateSecretToRegionsInput{
		SecretId:                    aws.String(arn),
		AddReplicaRegions:           []types.ReplicaRegionType{{Region: aws.String("us-west-2")}},
		ForceOverwriteReplicaSecret: true,
	})
	mustNoErr(t, err, "ReplicateSecretToRegions(ForceOverwriteReplicaSecret)")
	if rep.ReplicationStatus[1].Status != types.StatusTypeInSync || secretValue(t, usw2, "svc") != "s1" {
		t.Fatalf("after overwrite: status %+v, us-west-2 value %q", rep.ReplicationStatus, secretValue(t, usw2, "svc"))
	}

	rm, err := use1.RemoveRegionsFromReplication(ctxT(t), &secretsmanager.RemoveRegionsFromReplicationInput{
		SecretId: aws.String(arn), RemoveReplicaRegions: []string{"us-west-2"},
	})
	mustNoErr(t, err, "RemoveRegionsFromReplication")
	if len(rm.ReplicationStatus) != 1 || aws.ToString(rm.ReplicationStatus[0].Region) != "eu-west-1" {
		t.Fatalf("RemoveRegionsFromReplication ReplicationStatus = %+v, want eu-west-1 only", rm.ReplicationStatus)
	}
	_, err = usw2.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("svc")})
	wantAPIError(t, err, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")

	// Promote the eu-west-1 replica, called in its region.
	repARN := strings.Replace(arn, ":us-east-1:", ":eu-west-1:", 1)
	st, err := euw1.StopReplicationToReplica(ctxT(t), &secretsmanager.StopReplicationToReplicaInput{SecretId: aws.String(repARN)})
	mustNoErr(t, err, "StopReplicationToReplica")
	if aws.ToString(st.ARN) != repARN {
		t.Fatalf("StopReplicationToReplica ARN = %s, want %s", aws.ToString(st.ARN), repARN)
	}
	pd, err := use1.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	mustNoErr(t, err, "DescribeSecret on the primary")
	if len(pd.ReplicationStatus) != 0 || pd.PrimaryRegion != nil {
		t.Fatalf("primary after promotion: PrimaryRegion %v ReplicationStatus %+v, want neither", pd.PrimaryRegion, pd.ReplicationStatus)
	}
	_, err = euw1.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String(repARN), SecretString: aws.String("own")})
	mustNoErr(t, err, "PutSecretValue on the promoted secret")

	srv.Restart(t)
	use1, euw1 = srv.SecretsManager(), srv.SecretsManager("eu-west-1")
	if got := secretValue(t, euw1, repARN); got != "own" {
		t.Fatalf("promoted value after restart = %q, want own", got)
	}
	_, err = use1.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String(arn), ForceDeleteWithoutRecovery: aws.Bool(true)})
	mustNoErr(t, err, "DeleteSecret on the primary without replicas")
}

// TestSMReplicationTwoNodesOnPostgres: two servers of one PostgreSQL store.
// Concurrent writes to the primary through both converge on the replica
// (every version, its value, labels and tags), each answered once the
// replica has it, and each version is sealed for the replica once (one
// node runs each sync): CloudTrail holds one GenerateDataKey for the
// replica's ARN per version.
func TestSMReplicationTwoNodesOnPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	a := keyfortest.Start(t, keyfortest.WithStore(dsn), keyfortest.WithRootKey(key))
	b := keyfortest.Start(t, keyfortest.WithNodeOf(a), keyfortest.WithRootKey(key))
	nodes := []*secretsmanager.Client{a.SecretsManager(), b.SecretsManager()}
	start := time.Now().Add(-time.Minute)

	out, err := nodes[0].CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{
		Name: aws.String("shared"), SecretString: aws.String("v0"),
		AddReplicaRegions: []types.ReplicaRegionType{{Region: aws.String("eu-west-1")}},
	})
	mustNoErr(t, err, "CreateSecret with a replica")
	arn := aws.ToString(out.ARN)
	repARN := strings.Replace(arn, ":us-east-1:", ":eu-west-1:", 1)

	const writers = 8
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers)
	for i := range writers {
		c := nodes[i%2]
		wg.Go(func() {
			put, err := c.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), SecretString: aws.String(fmt.Sprint("v", i+1))})
			if err == nil {
				// Answered: the replica has the version, through either node.
				var g *secretsmanager.GetSecretValueOutput
				g, err = b.SecretsManager("eu-west-1").GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String(repARN), VersionId: put.VersionId})
				if err == nil && aws.ToString(g.SecretString) != fmt.Sprint("v", i+1) {
					err = fmt.Errorf("replica version %s = %q, want v%d", aws.ToString(put.VersionId), aws.ToString(g.SecretString), i+1)
				}
			}
			errs <- err
			_, err = c.TagResource(ctxT(t), &secretsmanager.TagResourceInput{SecretId: aws.String(arn), Tags: []types.Tag{{Key: aws.String(fmt.Sprint("k", i)), Value: aws.String("v")}}})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		mustNoErr(t, err, "concurrent write to the primary")
	}

	pd, err := nodes[1].DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	mustNoErr(t, err, "DescribeSecret on the primary")
	rd, err := a.SecretsManager("eu-west-1").DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String(repARN)})
	mustNoErr(t, err, "DescribeSecret on the replica")
	if len(pd.ReplicationStatus) != 1 || pd.ReplicationStatus[0].Status != types.StatusTypeInSync {
		t.Fatalf("primary ReplicationStatus = %+v, want eu-west-1 InSync", pd.ReplicationStatus)
	}
	if len(rd.Tags) != writers || len(pd.Tags) != writers {
		t.Fatalf("tags: replica %d, primary %d; want %d", len(rd.Tags), len(pd.Tags), writers)
	}
	if len(rd.VersionIdsToStages) != len(pd.VersionIdsToStages) {
		t.Fatalf("replica stages %v, primary %v", rd.VersionIdsToStages, pd.VersionIdsToStages)
	}
	for vid, st := range pd.VersionIdsToStages {
		if !slices.Equal(rd.VersionIdsToStages[vid], st) {
			t.Fatalf("replica stages %v, primary %v", rd.VersionIdsToStages, pd.VersionIdsToStages)
		}
	}
	pv, err := nodes[0].ListSecretVersionIds(ctxT(t), &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(arn), IncludeDeprecated: aws.Bool(true)})
	mustNoErr(t, err, "ListSecretVersionIds on the primary")
	if len(pv.Versions) != writers+1 {
		t.Fatalf("primary has %d versions, want %d", len(pv.Versions), writers+1)
	}

	// Every version sealed for the replica once, by whichever node ran the
	// sync: the events of both nodes reach the shared store a moment after
	// their responses.
	seals := map[string]int{}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		seals = replicaSeals(t, a.CloudTrail(), start, repARN)
		if len(seals) >= len(pv.Versions) || time.Now().After(deadline) {
			break
		}
	}
	for _, v := range pv.Versions {
		if n := seals[aws.ToString(v.VersionId)]; n != 1 {
			t.Errorf("version %s sealed %d times for the replica, want once", aws.ToString(v.VersionId), n)
		}
	}
	if len(seals) != len(pv.Versions) {
		t.Errorf("replica seals of %d versions, want %d: %v", len(seals), len(pv.Versions), seals)
	}
}

// replicaSeals counts, by version id, the GenerateDataKey events whose
// encryption context names the secret arn.
func replicaSeals(t *testing.T, ct *cloudtrail.Client, start time.Time, arn string) map[string]int {
	t.Helper()
	in := &cloudtrail.LookupEventsInput{
		StartTime:        aws.Time(start),
		LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyEventName, AttributeValue: aws.String("GenerateDataKey")}},
	}
	seals := map[string]int{}
	for page := 0; ; page++ {
		res, err := ct.LookupEvents(ctxT(t), in)
		mustNoErr(t, err, "LookupEvents(GenerateDataKey)")
		for _, e := range res.Events {
			var ev struct {
				RequestParameters struct {
					EncryptionContext map[string]string `json:"encryptionContext"`
				} `json:"requestParameters"`
			}
			if err := json.Unmarshal([]byte(aws.ToString(e.CloudTrailEvent)), &ev); err != nil {
				t.Fatalf("CloudTrailEvent of %s: %v", aws.ToString(e.EventId), err)
			}
			if ec := ev.RequestParameters.EncryptionContext; ec["SecretARN"] == arn {
				seals[ec["SecretVersionId"]]++
			}
		}
		if res.NextToken == nil || page > 100 {
			return seals
		}
		in.NextToken = res.NextToken
	}
}
