package e2e

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"regexp"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyfort/keyfort/internal/keyfortest"
)

// regionsOf lists a MultiRegionConfiguration as primary region and
// replica regions.
func regionsOf(t *testing.T, md *types.KeyMetadata) (types.MultiRegionKeyType, string, []string) {
	t.Helper()
	c := md.MultiRegionConfiguration
	if c == nil || c.PrimaryKey == nil {
		t.Fatalf("%s: no MultiRegionConfiguration", aws.ToString(md.Arn))
	}
	if want := "arn:aws:kms:" + aws.ToString(c.PrimaryKey.Region) + ":" + aws.ToString(md.AWSAccountId) + ":key/" + aws.ToString(md.KeyId); aws.ToString(c.PrimaryKey.Arn) != want {
		t.Errorf("PrimaryKey.Arn = %s, want %s", aws.ToString(c.PrimaryKey.Arn), want)
	}
	var reps []string
	for _, r := range c.ReplicaKeys {
		if want := "arn:aws:kms:" + aws.ToString(r.Region) + ":" + aws.ToString(md.AWSAccountId) + ":key/" + aws.ToString(md.KeyId); aws.ToString(r.Arn) != want {
			t.Errorf("ReplicaKeys Arn = %s, want %s", aws.ToString(r.Arn), want)
		}
		reps = append(reps, aws.ToString(r.Region))
	}
	return c.MultiRegionKeyType, aws.ToString(c.PrimaryKey.Region), reps
}

func wantRegions(t *testing.T, c *kms.Client, id string, kind types.MultiRegionKeyType, primary string, replicas ...string) *types.KeyMetadata {
	t.Helper()
	md := describe(t, c, id)
	k, p, r := regionsOf(t, md)
	if !aws.ToBool(md.MultiRegion) || k != kind || p != primary || len(r) != len(replicas) {
		t.Fatalf("%s: MultiRegion %v, %s, primary %s, replicas %v; want %s, %s, %v", aws.ToString(md.Arn), md.MultiRegion, k, p, r, kind, primary, replicas)
	}
	for i := range r {
		if r[i] != replicas[i] {
			t.Fatalf("%s: replicas %v, want %v", aws.ToString(md.Arn), r, replicas)
		}
	}
	return md
}

// TestKMSMultiRegionKeys: a multi-Region primary key, its replicas in two
// other regions, ciphertexts that open in every region, rotation shared
// from the primary, state and description each key's own, a new primary
// Region, and deletion waiting for the replicas.
func TestKMSMultiRegionKeys(t *testing.T) {
	srv := keyfortest.Start(t)
	use1, euw1, apse2 := srv.KMS("us-east-1"), srv.KMS("eu-west-1"), srv.KMS("ap-southeast-2")
	ctx := ctxT(t)

	single := createKey(t, use1, nil)
	if aws.ToBool(single.MultiRegion) || single.MultiRegionConfiguration != nil {
		t.Fatalf("a single-Region key: MultiRegion %v, configuration %+v", single.MultiRegion, single.MultiRegionConfiguration)
	}
	md := createKey(t, use1, &kms.CreateKeyInput{MultiRegion: aws.Bool(true), Description: aws.String("primary")})
	id, arn := aws.ToString(md.KeyId), aws.ToString(md.Arn)
	if !regexp.MustCompile(`^mrk-[0-9a-f]{32}$`).MatchString(id) {
		t.Fatalf("multi-Region key id %q, want mrk- and 32 hex digits", id)
	}
	wantRegions(t, use1, id, types.MultiRegionKeyTypePrimary, "us-east-1")
	ec := map[string]string{"app": "mrk"}
	enc, err := use1.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("from us-east-1"), EncryptionContext: ec})
	mustNoErr(t, err, "Encrypt with the primary")

	// Replicas: errors first.
	_, err = use1.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: single.KeyId, ReplicaRegion: aws.String("eu-west-1")})
	wantExactAPIError(t, err, "UnsupportedOperationException", aws.ToString(single.Arn)+" is not a multi-region primary key.")
	_, err = use1.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String("us-east-1")})
	wantAPIError(t, err, "ValidationException", "own Region")
	_, err = use1.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String("cn-north-1")})
	wantAPIError(t, err, "ValidationException", "partition")
	_, err = use1.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String("Not a region")})
	wantAPIError(t, err, "ValidationException", "replicaRegion")

	rep, err := use1.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(arn), ReplicaRegion: aws.String("eu-west-1"),
		Description: aws.String("replica in Ireland"), Tags: []types.Tag{{TagKey: aws.String("site"), TagValue: aws.String("dublin")}}})
	mustNoErr(t, err, "ReplicateKey eu-west-1")
	rmd := rep.ReplicaKeyMetadata
	euARN := "arn:aws:kms:eu-west-1:" + aws.ToString(md.AWSAccountId) + ":key/" + id
	if aws.ToString(rmd.Arn) != euARN || aws.ToString(rmd.KeyId) != id || rmd.KeyState != types.KeyStateCreating || rmd.Enabled ||
		aws.ToString(rmd.Description) != "replica in Ireland" || len(rep.ReplicaTags) != 1 || aws.ToString(rep.ReplicaPolicy) == "" {
		t.Fatalf("ReplicateKey = %+v, tags %v, policy %q", rmd, rep.ReplicaTags, aws.ToString(rep.ReplicaPolicy))
	}
	if k, p, r := regionsOf(t, rmd); k != types.MultiRegionKeyTypeReplica || p != "us-east-1" || len(r) != 1 || r[0] != "eu-west-1" {
		t.Fatalf("ReplicateKey configuration %s %s %v", k, p, r)
	}
	_, err = use1.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String("eu-west-1")})
	wantExactAPIError(t, err, "AlreadyExistsException", "You can create only one replica of each primary key in each AWS Region.")
	_, err = euw1.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String("ap-southeast-2")})
	wantExactAPIError(t, err, "UnsupportedOperationException", euARN+" is not a multi-region primary key.")

	emd := wantRegions(t, euw1, id, types.MultiRegionKeyTypeReplica, "us-east-1", "eu-west-1")
	pmd := wantRegions(t, use1, id, types.MultiRegionKeyTypePrimary, "us-east-1", "eu-west-1")
	if emd.KeyState != types.KeyStateEnabled || aws.ToString(emd.CurrentKeyMaterialId) != aws.ToString(pmd.CurrentKeyMaterialId) || aws.ToString(pmd.Description) != "primary" {
		t.Fatalf("replica: %s, material %s (primary's %s), primary description %q", emd.KeyState, aws.ToString(emd.CurrentKeyMaterialId), aws.ToString(pmd.CurrentKeyMaterialId), aws.ToString(pmd.Description))
	}
	pol, err := euw1.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(id)})
	mustNoErr(t, err, "GetKeyPolicy of the replica")
	if aws.ToString(pol.Policy) != aws.ToString(rep.ReplicaPolicy) {
		t.Errorf("replica policy %s, ReplicaPolicy %s", aws.ToString(pol.Policy), aws.ToString(rep.ReplicaPolicy))
	}

	// The primary's ciphertext opens in the replica's region, with and
	// without KeyId, and the other way round.
	dec, err := euw1.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	mustNoErr(t, err, "Decrypt in eu-west-1")
	if string(dec.Plaintext) != "from us-east-1" || aws.ToString(dec.KeyId) != euARN {
		t.Fatalf("Decrypt in eu-west-1 = %q under %s", dec.Plaintext, aws.ToString(dec.KeyId))
	}
	_, err = euw1.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec, KeyId: aws.String(euARN)})
	mustNoErr(t, err, "Decrypt in eu-west-1 with the replica's ARN")
	_, err = euw1.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"app": "other"}})
	wantExactAPIError(t, err, "InvalidCiphertextException", "")
	back, err := euw1.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("from eu-west-1")})
	mustNoErr(t, err, "Encrypt with the replica")
	dec, err = use1.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: back.CiphertextBlob})
	mustNoErr(t, err, "Decrypt in us-east-1")
	if string(dec.Plaintext) != "from eu-west-1" || aws.ToString(dec.KeyId) != arn {
		t.Fatalf("Decrypt in us-east-1 = %q under %s", dec.Plaintext, aws.ToString(dec.KeyId))
	}
	// A region without a replica does not know the key.
	_, err = apse2.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	wantExactAPIError(t, err, "InvalidCiphertextException", "")

	// Rotation is the primary's, shared with every replica.
	_, err = euw1.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(id)})
	wantExactAPIError(t, err, "UnsupportedOperationException", euARN+" is not a multi-region primary key.")
	_, err = euw1.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)})
	wantExactAPIError(t, err, "UnsupportedOperationException", euARN+" is not a multi-region primary key.")
	_, err = use1.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(id), RotationPeriodInDays: aws.Int32(120)})
	mustNoErr(t, err, "EnableKeyRotation on the primary")
	st, err := euw1.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(id)})
	mustNoErr(t, err, "GetKeyRotationStatus of the replica")
	if !st.KeyRotationEnabled || aws.ToInt32(st.RotationPeriodInDays) != 120 || aws.ToString(st.KeyId) != euARN {
		t.Fatalf("replica rotation status = %v, %d, %s", st.KeyRotationEnabled, aws.ToInt32(st.RotationPeriodInDays), aws.ToString(st.KeyId))
	}
	_, err = use1.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)})
	mustNoErr(t, err, "RotateKeyOnDemand on the primary")
	pmd, emd = describe(t, use1, id), describe(t, euw1, id)
	if aws.ToString(emd.CurrentKeyMaterialId) != aws.ToString(pmd.CurrentKeyMaterialId) {
		t.Fatalf("after rotation the replica's material %s, the primary's %s", aws.ToString(emd.CurrentKeyMaterialId), aws.ToString(pmd.CurrentKeyMaterialId))
	}
	rots, err := euw1.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(id)})
	mustNoErr(t, err, "ListKeyRotations of the replica")
	if len(rots.Rotations) != 1 || rots.Rotations[0].RotationType != types.RotationTypeOnDemand {
		t.Fatalf("replica rotations = %+v", rots.Rotations)
	}
	after, err := use1.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("rotated")})
	mustNoErr(t, err, "Encrypt after rotation")
	for _, blob := range [][]byte{after.CiphertextBlob, back.CiphertextBlob} {
		_, err = euw1.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob})
		mustNoErr(t, err, "Decrypt in the replica after rotation")
	}

	// A second replica, made after the rotation, has every material.
	_, err = use1.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String("ap-southeast-2")})
	mustNoErr(t, err, "ReplicateKey ap-southeast-2")
	for _, c := range []*kms.Client{use1, euw1, apse2} {
		kind := types.MultiRegionKeyTypeReplica
		if c == use1 {
			kind = types.MultiRegionKeyTypePrimary
		}
		wantRegions(t, c, id, kind, "us-east-1", "eu-west-1", "ap-southeast-2")
	}
	_, err = apse2.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	mustNoErr(t, err, "Decrypt of a ciphertext older than the rotation in the new replica")

	// State and description are each key's own.
	_, err = euw1.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(id)})
	mustNoErr(t, err, "DisableKey of the replica")
	if d := describe(t, use1, id); d.KeyState != types.KeyStateEnabled {
		t.Fatalf("disabling the replica made the primary %s", d.KeyState)
	}
	_, err = euw1.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	wantExactAPIError(t, err, "DisabledException", euARN+" is disabled.")

	// A new primary Region: both keys must be enabled.
	_, err = use1.UpdatePrimaryRegion(ctx, &kms.UpdatePrimaryRegionInput{KeyId: aws.String(id), PrimaryRegion: aws.String("eu-west-1")})
	wantExactAPIError(t, err, "DisabledException", euARN+" is disabled.")
	_, err = use1.UpdatePrimaryRegion(ctx, &kms.UpdatePrimaryRegionInput{KeyId: aws.String(id), PrimaryRegion: aws.String("sa-east-1")})
	wantAPIError(t, err, "NotFoundException", "arn:aws:kms:sa-east-1:")
	_, err = euw1.UpdatePrimaryRegion(ctx, &kms.UpdatePrimaryRegionInput{KeyId: aws.String(id), PrimaryRegion: aws.String("ap-southeast-2")})
	wantExactAPIError(t, err, "UnsupportedOperationException", euARN+" is not a multi-region primary key.")
	_, err = euw1.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(id)})
	mustNoErr(t, err, "EnableKey of the replica")
	_, err = use1.UpdatePrimaryRegion(ctx, &kms.UpdatePrimaryRegionInput{KeyId: aws.String(arn), PrimaryRegion: aws.String("eu-west-1")})
	mustNoErr(t, err, "UpdatePrimaryRegion eu-west-1")
	wantRegions(t, euw1, id, types.MultiRegionKeyTypePrimary, "eu-west-1", "ap-southeast-2", "us-east-1")
	wantRegions(t, use1, id, types.MultiRegionKeyTypeReplica, "eu-west-1", "ap-southeast-2", "us-east-1")
	wantRegions(t, apse2, id, types.MultiRegionKeyTypeReplica, "eu-west-1", "ap-southeast-2", "us-east-1")
	if st, err := apse2.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(id)}); err != nil || !st.KeyRotationEnabled || aws.ToInt32(st.RotationPeriodInDays) != 120 {
		t.Fatalf("rotation after the primary moved: %+v, %v", st, err)
	}
	_, err = use1.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)})
	wantExactAPIError(t, err, "UnsupportedOperationException", arn+" is not a multi-region primary key.")
	_, err = euw1.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)})
	mustNoErr(t, err, "RotateKeyOnDemand on the new primary")
	if a, b := describe(t, euw1, id), describe(t, use1, id); aws.ToString(a.CurrentKeyMaterialId) != aws.ToString(b.CurrentKeyMaterialId) {
		t.Fatal("after a rotation by the new primary the old primary has another material")
	}

	// Everything survives a restart.
	srv.Restart(t)
	use1, euw1, apse2 = srv.KMS("us-east-1"), srv.KMS("eu-west-1"), srv.KMS("ap-southeast-2")
	wantRegions(t, use1, id, types.MultiRegionKeyTypeReplica, "eu-west-1", "ap-southeast-2", "us-east-1")
	_, err = apse2.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: back.CiphertextBlob})
	mustNoErr(t, err, "Decrypt after restart")

	// Deleting the primary waits for its replicas.
	sched, err := euw1.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)})
	mustNoErr(t, err, "ScheduleKeyDeletion of the primary")
	if sched.KeyState != types.KeyStatePendingReplicaDeletion || sched.DeletionDate != nil || aws.ToInt32(sched.PendingWindowInDays) != 7 {
		t.Fatalf("ScheduleKeyDeletion of a primary with replicas = %s, %v, %d", sched.KeyState, sched.DeletionDate, aws.ToInt32(sched.PendingWindowInDays))
	}
	if d := describe(t, euw1, id); d.KeyState != types.KeyStatePendingReplicaDeletion || aws.ToInt32(d.PendingDeletionWindowInDays) != 7 || d.DeletionDate != nil || d.Enabled {
		t.Fatalf("primary pending replica deletion: %+v", d)
	}
	_, err = euw1.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")})
	wantExactAPIError(t, err, "KMSInvalidStateException", "arn:aws:kms:eu-west-1:"+aws.ToString(md.AWSAccountId)+":key/"+id+" is pending replica deletion.")
	_, err = use1.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")})
	mustNoErr(t, err, "Encrypt with a replica while the primary waits")
	for _, c := range []*kms.Client{use1, apse2} {
		_, err = c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)})
		mustNoErr(t, err, "ScheduleKeyDeletion of a replica")
	}
	srv.AdvanceClock(t, "8d")
	_, err = use1.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
	wantAPIError(t, err, "NotFoundException", "does not exist")
	d := wantRegions(t, euw1, id, types.MultiRegionKeyTypePrimary, "eu-west-1")
	if d.KeyState != types.KeyStatePendingDeletion || d.DeletionDate == nil {
		t.Fatalf("the primary after its replicas were deleted: %s, DeletionDate %v", d.KeyState, d.DeletionDate)
	}
	srv.AdvanceClock(t, "8d")
	_, err = euw1.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
	wantAPIError(t, err, "NotFoundException", "does not exist")
}

// TestKMSMultiRegionAsymmetric: a multi-Region signing key's replica has the
// same public key and signs what the primary's public key verifies.
func TestKMSMultiRegionAsymmetric(t *testing.T) {
	srv := keyfortest.Start(t)
	use1, euw1 := srv.KMS("us-east-1"), srv.KMS("eu-west-1")
	ctx := ctxT(t)
	md := createKey(t, use1, &kms.CreateKeyInput{MultiRegion: aws.Bool(true), KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify})
	_, err := use1.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: md.KeyId, ReplicaRegion: aws.String("eu-west-1")})
	mustNoErr(t, err, "ReplicateKey")
	// The replica is listed in its region (ListKeys, and ListAliases after
	// an alias of its own).
	keys, err := euw1.ListKeys(ctx, &kms.ListKeysInput{})
	mustNoErr(t, err, "ListKeys in eu-west-1")
	if len(keys.Keys) != 1 || aws.ToString(keys.Keys[0].KeyId) != aws.ToString(md.KeyId) {
		t.Fatalf("ListKeys in eu-west-1 = %+v", keys.Keys)
	}
	_, err = euw1.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/signer"), TargetKeyId: md.KeyId})
	mustNoErr(t, err, "CreateAlias of the replica")
	_, err = use1.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/signer")})
	wantAPIError(t, err, "NotFoundException", "alias/signer")
	p1, err := use1.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: md.KeyId})
	mustNoErr(t, err, "GetPublicKey primary")
	p2, err := euw1.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: md.KeyId})
	mustNoErr(t, err, "GetPublicKey replica")
	if string(p1.PublicKey) != string(p2.PublicKey) {
		t.Fatal("the replica's public key is not the primary's")
	}
	digest := sha256.Sum256([]byte("multi-Region"))
	sig, err := euw1.Sign(ctx, &kms.SignInput{KeyId: aws.String("alias/signer"), Message: digest[:], MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	mustNoErr(t, err, "Sign with the replica")
	pub, err := x509.ParsePKIXPublicKey(p1.PublicKey)
	mustNoErr(t, err, "ParsePKIXPublicKey")
	if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest[:], sig.Signature) {
		t.Fatal("the replica's signature does not verify with the primary's public key")
	}
}

// TestStrictMultiRegionConditions: kms:ReplicaRegion limits where alice may
// replicate; the replica needs kms:CreateKey (and kms:TagResource for its
// tags) from her identity policy; kms:PrimaryRegion limits
// UpdatePrimaryRegion, which needs the permission on both keys.
func TestStrictMultiRegionConditions(t *testing.T) {
	srv := startStrict(t, strictCredentials)
	root, alice := kmsFor(srv, "AKIAROOT000000000001", "root-secret"), kmsFor(srv, "AKIAALICE0000000001", "alice-secret")
	ctx := ctxT(t)
	policy := `{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + strictAccount + `:root"},"Action":"kms:*","Resource":"*"},
 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + strictAccount + `:user/alice"},"Action":"kms:ReplicateKey","Resource":"*",
  "Condition":{"StringEquals":{"kms:ReplicaRegion":"eu-west-1"}}},
 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + strictAccount + `:user/alice"},"Action":"kms:UpdatePrimaryRegion","Resource":"*",
  "Condition":{"StringEquals":{"kms:PrimaryRegion":["eu-west-1","ap-southeast-2"]}}}
]}`
	md := createKey(t, root, &kms.CreateKeyInput{MultiRegion: aws.Bool(true), Policy: aws.String(policy)})
	id := aws.ToString(md.KeyId)
	_, err := alice.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: md.KeyId, ReplicaRegion: aws.String("ap-southeast-2"), Tags: teamTag("blue")})
	wantAPIError(t, err, "AccessDeniedException", "kms:ReplicateKey")
	// Her identity policy lets her create keys only with her team's tag.
	_, err = alice.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: md.KeyId, ReplicaRegion: aws.String("eu-west-1")})
	wantAPIError(t, err, "AccessDeniedException", "kms:CreateKey")
	_, err = alice.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: md.KeyId, ReplicaRegion: aws.String("eu-west-1"), Tags: teamTag("red")})
	wantAPIError(t, err, "AccessDeniedException", "kms:CreateKey")
	_, err = alice.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: md.KeyId, ReplicaRegion: aws.String("eu-west-1"), Tags: teamTag("blue"),
		Policy: aws.String(policy)})
	mustNoErr(t, err, "ReplicateKey eu-west-1 with her team's tag")
	_, err = root.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: md.KeyId, ReplicaRegion: aws.String("ap-southeast-2")})
	mustNoErr(t, err, "ReplicateKey ap-southeast-2 by root")
	_, err = alice.UpdatePrimaryRegion(ctx, &kms.UpdatePrimaryRegionInput{KeyId: md.KeyId, PrimaryRegion: aws.String("sa-east-1")})
	wantAPIError(t, err, "AccessDeniedException", "kms:UpdatePrimaryRegion")
	// The primary's policy allows ap-southeast-2, but that replica has the
	// default key policy and no team tag: alice may not act on it.
	_, err = alice.UpdatePrimaryRegion(ctx, &kms.UpdatePrimaryRegionInput{KeyId: md.KeyId, PrimaryRegion: aws.String("ap-southeast-2")})
	wantAPIError(t, err, "AccessDeniedException", "arn:aws:kms:ap-southeast-2:"+strictAccount+":key/"+id)
	_, err = alice.UpdatePrimaryRegion(ctx, &kms.UpdatePrimaryRegionInput{KeyId: md.KeyId, PrimaryRegion: aws.String("eu-west-1")})
	mustNoErr(t, err, "UpdatePrimaryRegion eu-west-1 (both policies allow it)")
	rootEU := kms.NewFromConfig(signedConfigIn(srv, "AKIAROOT000000000001", "root-secret", "eu-west-1"))
	wantRegions(t, rootEU, id, types.MultiRegionKeyTypePrimary, "eu-west-1", "ap-southeast-2", "us-east-1")
}

// signedConfigIn is signedConfig in another region.
func signedConfigIn(srv *keyfortest.Server, id, secret, region string) aws.Config {
	cfg := srv.AWSConfig(id, region)
	cfg.Credentials = credentials.NewStaticCredentialsProvider(id, secret, "")
	return cfg
}

// TestSMSecretUnderMultiRegionKey: a secret encrypted under a multi-Region
// key, replicated with the key's replica as its KmsKeyId, reads in both
// regions; disabling the replica key stops the replica's reads only.
func TestSMSecretUnderMultiRegionKey(t *testing.T) {
	srv := keyfortest.Start(t)
	use1, euw1 := srv.KMS("us-east-1"), srv.KMS("eu-west-1")
	smUS, smEU := srv.SecretsManager("us-east-1"), srv.SecretsManager("eu-west-1")
	ctx := ctxT(t)
	md := createKey(t, use1, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)})
	rep, err := use1.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: md.KeyId, ReplicaRegion: aws.String("eu-west-1")})
	mustNoErr(t, err, "ReplicateKey")
	sec, err := smUS.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("mrk/db"), SecretString: aws.String("s3cr3t"),
		KmsKeyId: md.Arn, AddReplicaRegions: []smtypes.ReplicaRegionType{{Region: aws.String("eu-west-1"), KmsKeyId: rep.ReplicaKeyMetadata.Arn}}})
	mustNoErr(t, err, "CreateSecret under the multi-Region key")
	if len(sec.ReplicationStatus) != 1 || sec.ReplicationStatus[0].Status != smtypes.StatusTypeInSync {
		t.Fatalf("replication status %+v", sec.ReplicationStatus)
	}
	for _, c := range []*secretsmanager.Client{smUS, smEU} {
		if got := secretValue(t, c, "mrk/db"); got != "s3cr3t" {
			t.Fatalf("secret value = %q", got)
		}
	}
	_, err = euw1.DisableKey(ctx, &kms.DisableKeyInput{KeyId: md.KeyId})
	mustNoErr(t, err, "DisableKey of the replica key")
	_, err = smEU.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("mrk/db")})
	wantAPIError(t, err, "DecryptionFailure", "")
	if got := secretValue(t, smUS, "mrk/db"); got != "s3cr3t" {
		t.Fatalf("primary region value after the replica key was disabled = %q", got)
	}
}

// TestKMSMultiRegionCancelDeletion: a primary waiting for its replicas'
// deletion can be scheduled only once and cancelled (it is then Disabled,
// as any key whose deletion is cancelled).
func TestKMSMultiRegionCancelDeletion(t *testing.T) {
	srv := keyfortest.Start(t)
	use1 := srv.KMS("us-east-1")
	ctx := ctxT(t)
	md := createKey(t, use1, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)})
	_, err := use1.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: md.KeyId, ReplicaRegion: aws.String("eu-west-1")})
	mustNoErr(t, err, "ReplicateKey")
	_, err = use1.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: md.KeyId})
	mustNoErr(t, err, "EnableKeyRotation")
	rotation := func() bool {
		st, err := use1.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: md.KeyId})
		mustNoErr(t, err, "GetKeyRotationStatus")
		return st.KeyRotationEnabled
	}
	_, err = use1.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: md.KeyId})
	mustNoErr(t, err, "ScheduleKeyDeletion")
	if rotation() {
		t.Error("rotation reported on while the key is pending replica deletion")
	}
	if d := describe(t, use1, aws.ToString(md.KeyId)); d.KeyState != types.KeyStatePendingReplicaDeletion || aws.ToInt32(d.PendingDeletionWindowInDays) != 30 {
		t.Fatalf("after ScheduleKeyDeletion without a window: %s, %d", d.KeyState, aws.ToInt32(d.PendingDeletionWindowInDays))
	}
	_, err = use1.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: md.KeyId})
	wantExactAPIError(t, err, "KMSInvalidStateException", aws.ToString(md.Arn)+" is pending replica deletion.")
	_, err = use1.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: md.KeyId, ReplicaRegion: aws.String("us-west-2")})
	wantExactAPIError(t, err, "KMSInvalidStateException", aws.ToString(md.Arn)+" is pending replica deletion.")
	// As a key pending deletion, it cannot be changed.
	pending := aws.ToString(md.Arn) + " is pending replica deletion."
	_, err = use1.TagResource(ctx, &kms.TagResourceInput{KeyId: md.KeyId, Tags: []types.Tag{{TagKey: aws.String("k"), TagValue: aws.String("v")}}})
	wantExactAPIError(t, err, "KMSInvalidStateException", pending)
	_, err = use1.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/leaving"), TargetKeyId: md.KeyId})
	wantExactAPIError(t, err, "KMSInvalidStateException", pending)
	_, err = use1.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: md.KeyId, Description: aws.String("x")})
	wantExactAPIError(t, err, "KMSInvalidStateException", pending)
	_, err = use1.EnableKey(ctx, &kms.EnableKeyInput{KeyId: md.KeyId})
	wantExactAPIError(t, err, "KMSInvalidStateException", pending)
	c, err := use1.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: md.KeyId})
	mustNoErr(t, err, "CancelKeyDeletion")
	if aws.ToString(c.KeyId) != aws.ToString(md.Arn) {
		t.Errorf("CancelKeyDeletion KeyId = %s", aws.ToString(c.KeyId))
	}
	if d := describe(t, use1, aws.ToString(md.KeyId)); d.KeyState != types.KeyStateDisabled || d.PendingDeletionWindowInDays != nil {
		t.Fatalf("after CancelKeyDeletion: %s, window %v", d.KeyState, d.PendingDeletionWindowInDays)
	}
	if !rotation() {
		t.Error("rotation reported off after the deletion was cancelled")
	}
}

// TestKMSMultiRegionImported: a multi-Region key with imported material.
// Its replica has no material until the same material is imported into it;
// new material imported into the primary waits for every replica before
// RotateKeyOnDemand makes it current everywhere; each key's material comes
// and goes on its own.
func TestKMSMultiRegionImported(t *testing.T) {
	srv := keyfortest.Start(t)
	use1, euw1 := srv.KMS("us-east-1"), srv.KMS("eu-west-1")
	ctx := ctxT(t)
	oaep, w2048 := types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048
	noExpiry := func() *kms.ImportKeyMaterialInput {
		return &kms.ImportKeyMaterialInput{ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire}
	}
	md := createKey(t, use1, &kms.CreateKeyInput{MultiRegion: aws.Bool(true), Origin: types.OriginTypeExternal})
	id, arn := aws.ToString(md.KeyId), aws.ToString(md.Arn)
	euARN := "arn:aws:kms:eu-west-1:" + aws.ToString(md.AWSAccountId) + ":key/" + id
	if md.KeyState != types.KeyStatePendingImport || !aws.ToBool(md.MultiRegion) {
		t.Fatalf("new multi-Region EXTERNAL key: %s, MultiRegion %v", md.KeyState, aws.ToBool(md.MultiRegion))
	}
	_, err := use1.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: md.KeyId, ReplicaRegion: aws.String("eu-west-1")})
	wantExactAPIError(t, err, "KMSInvalidStateException", arn+" is pending import.")

	matA, matB, matC := randomBytes(t, 32), randomBytes(t, 32), randomBytes(t, 32)
	in := noExpiry()
	in.KeyMaterialDescription = aws.String("A")
	a, err := importMaterial(t, use1, id, oaep, w2048, matA, in)
	mustNoErr(t, err, "import A into the primary")
	enc, err := use1.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("under A")})
	mustNoErr(t, err, "Encrypt under A")

	_, err = use1.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: md.KeyId, ReplicaRegion: aws.String("eu-west-1")})
	mustNoErr(t, err, "ReplicateKey")
	if d := describe(t, euw1, id); d.KeyState != types.KeyStatePendingImport || d.Origin != types.OriginTypeExternal {
		t.Fatalf("replica of an imported key: %s, %s; want PendingImport, EXTERNAL", d.KeyState, d.Origin)
	}
	rl, err := euw1.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: md.KeyId, IncludeKeyMaterial: types.IncludeKeyMaterialAllKeyMaterial})
	mustNoErr(t, err, "ListKeyRotations of the replica")
	if len(rl.Rotations) != 1 || aws.ToString(rl.Rotations[0].KeyMaterialId) != aws.ToString(a.KeyMaterialId) || rl.Rotations[0].ImportState != types.ImportStatePendingImport ||
		aws.ToString(rl.Rotations[0].KeyMaterialDescription) != "A" {
		t.Fatalf("replica's materials before import = %+v", rl.Rotations)
	}
	_, err = euw1.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	wantExactAPIError(t, err, "KMSInvalidStateException", euARN+" is pending import.")
	_, err = importMaterial(t, euw1, id, oaep, w2048, matB, nil)
	wantAPIError(t, err, "IncorrectKeyMaterialException", euARN)
	in = noExpiry()
	in.ImportType = types.ImportTypeNewKeyMaterial
	_, err = importMaterial(t, euw1, id, oaep, w2048, matB, in)
	wantAPIError(t, err, "ValidationException", "replica")
	ra, err := importMaterial(t, euw1, id, oaep, w2048, matA, nil)
	mustNoErr(t, err, "import A into the replica")
	if aws.ToString(ra.KeyMaterialId) != aws.ToString(a.KeyMaterialId) {
		t.Errorf("A's KeyMaterialId in the replica %s, in the primary %s", aws.ToString(ra.KeyMaterialId), aws.ToString(a.KeyMaterialId))
	}
	dec, err := euw1.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	mustNoErr(t, err, "Decrypt in the replica after its import")
	if string(dec.Plaintext) != "under A" {
		t.Fatalf("Decrypt = %q", dec.Plaintext)
	}

	// New material B: imported into the primary, it waits for the
	// replica before the rotation.
	in = noExpiry()
	in.ImportType, in.KeyMaterialDescription = types.ImportTypeNewKeyMaterial, aws.String("B")
	b, err := importMaterial(t, use1, id, oaep, w2048, matB, in)
	mustNoErr(t, err, "import B into the primary")
	stateOf := func(c *kms.Client, mat string) types.KeyMaterialState {
		out, err := c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: md.KeyId, IncludeKeyMaterial: types.IncludeKeyMaterialAllKeyMaterial})
		mustNoErr(t, err, "ListKeyRotations")
		for _, r := range out.Rotations {
			if aws.ToString(r.KeyMaterialId) == mat {
				return r.KeyMaterialState
			}
		}
		return ""
	}
	if st := stateOf(use1, aws.ToString(b.KeyMaterialId)); st != types.KeyMaterialStatePendingMultiRegionImportAndRotation {
		t.Fatalf("B before the replica has it: %s", st)
	}
	_, err = use1.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: md.KeyId})
	wantExactAPIError(t, err, "KMSInvalidStateException", "No available key material pending rotation for the key: "+arn+".")
	_, err = importMaterial(t, euw1, id, oaep, w2048, matB, nil)
	mustNoErr(t, err, "import B into the replica")
	if st := stateOf(use1, aws.ToString(b.KeyMaterialId)); st != types.KeyMaterialStatePendingRotation {
		t.Fatalf("B once the replica has it: %s", st)
	}
	_, err = use1.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: md.KeyId})
	mustNoErr(t, err, "RotateKeyOnDemand")
	for _, c := range []*kms.Client{use1, euw1} {
		if d := describe(t, c, id); aws.ToString(d.CurrentKeyMaterialId) != aws.ToString(b.KeyMaterialId) || d.KeyState != types.KeyStateEnabled {
			t.Fatalf("%s after rotation: current %s, %s", aws.ToString(d.Arn), aws.ToString(d.CurrentKeyMaterialId), d.KeyState)
		}
	}
	encB, err := euw1.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("under B")})
	mustNoErr(t, err, "Encrypt in the replica after rotation")
	_, err = use1.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: encB.CiphertextBlob})
	mustNoErr(t, err, "Decrypt in the primary")

	// Each key's material is its own: A deleted in the replica makes only
	// the replica PendingImport.
	_, err = euw1.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: md.KeyId, KeyMaterialId: a.KeyMaterialId})
	mustNoErr(t, err, "DeleteImportedKeyMaterial A in the replica")
	if d1, d2 := describe(t, use1, id), describe(t, euw1, id); d1.KeyState != types.KeyStateEnabled || d2.KeyState != types.KeyStatePendingImport {
		t.Fatalf("after deleting A in the replica: primary %s, replica %s", d1.KeyState, d2.KeyState)
	}
	_, err = importMaterial(t, euw1, id, oaep, w2048, matA, nil)
	mustNoErr(t, err, "reimport A into the replica")

	// Material pending rotation deleted on the primary is deleted in the
	// replica too.
	in = noExpiry()
	in.ImportType = types.ImportTypeNewKeyMaterial
	cImp, err := importMaterial(t, use1, id, oaep, w2048, matC, in)
	mustNoErr(t, err, "import C into the primary")
	if st := stateOf(euw1, aws.ToString(cImp.KeyMaterialId)); st != types.KeyMaterialStatePendingMultiRegionImportAndRotation {
		t.Fatalf("C in the replica: %s", st)
	}
	_, err = use1.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: md.KeyId, KeyMaterialId: cImp.KeyMaterialId})
	mustNoErr(t, err, "DeleteImportedKeyMaterial of pending C on the primary")
	if st := stateOf(euw1, aws.ToString(cImp.KeyMaterialId)); st != "" {
		t.Fatalf("C in the replica after the primary deleted it: %s", st)
	}
	if d := describe(t, euw1, id); d.KeyState != types.KeyStateEnabled {
		t.Fatalf("replica after C was deleted: %s", d.KeyState)
	}
}

// TestKMSMultiRegionCloudTrail: ReplicateKey is recorded in the primary's
// region and, as KMS's CreateKey on the caller's behalf, in the replica's;
// UpdatePrimaryRegion in both regions, the new primary's invoked by KMS.
func TestKMSMultiRegionCloudTrail(t *testing.T) {
	srv := startAudited(t)
	use1 := srv.KMS("us-east-1")
	ctx := ctxT(t)
	md := createKey(t, use1, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)})
	rep, err := use1.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: md.KeyId, ReplicaRegion: aws.String("eu-west-1")})
	mustNoErr(t, err, "ReplicateKey")
	_, err = use1.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: md.KeyId, ReplicaRegion: aws.String("eu-west-1")})
	wantAPIError(t, err, "AlreadyExistsException", "")
	_, err = use1.UpdatePrimaryRegion(ctx, &kms.UpdatePrimaryRegionInput{KeyId: md.KeyId, PrimaryRegion: aws.String("eu-west-1")})
	mustNoErr(t, err, "UpdatePrimaryRegion")
	var got []string
	for _, e := range readAudit(t, srv) {
		switch e.EventName {
		case "ReplicateKey", "UpdatePrimaryRegion":
		case "CreateKey":
			if e.AWSRegion != "eu-west-1" {
				continue
			}
			if e.UserIdentity.InvokedBy != "kms.amazonaws.com" || len(e.Resources) != 1 || e.Resources[0].ARN != aws.ToString(rep.ReplicaKeyMetadata.Arn) {
				t.Errorf("replica's CreateKey event: invokedBy %q, resources %+v", e.UserIdentity.InvokedBy, e.Resources)
			}
		default:
			continue
		}
		got = append(got, e.EventName+" "+e.AWSRegion+" "+e.ErrorCode+" "+e.UserIdentity.InvokedBy)
	}
	want := []string{"ReplicateKey us-east-1  ", "CreateKey eu-west-1  kms.amazonaws.com", "ReplicateKey us-east-1 AlreadyExistsException ",
		"UpdatePrimaryRegion us-east-1  ", "UpdatePrimaryRegion eu-west-1  kms.amazonaws.com"}
	if len(got) != len(want) {
		t.Fatalf("events = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events = %q, want %q", got, want)
		}
	}
}
