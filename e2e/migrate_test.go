package e2e

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/keyfort/keyfort/internal/envelope"
	"github.com/keyfort/keyfort/internal/keyfortest"
	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/storage/postgres"
	"github.com/keyfort/keyfort/internal/storage/postgres/pgtest"
	"github.com/keyfort/keyfort/internal/storage/sqlite"
)

// TestMigrate builds a store on the embedded store with the binary (keys of
// several specs in two regions, aliases, grants, tags, a key pending
// deletion, secrets with versions, staging labels, tags and a replica),
// migrates it to a new PostgreSQL schema, serves that with the same root
// key, migrates it back into a new data directory and serves that: each
// server answers every listing, description, decryption, verification,
// secret value and CloudTrail lookup as the original did, and each copy
// holds its source's rows byte for byte. Then the refusals: a destination
// that holds records (either way), and a source a server is serving.
func TestMigrate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary; skipped in -short mode")
	}
	dsn := pgtest.DSN(t)
	ctx := ctxT(t)
	dirA := t.TempDir()
	p := startBinary(t, dirA)
	fx := makeMigrateFixture(t, p)
	want := observeStore(t, p)
	fx.check(t, p)
	p.stop(t)
	rootKeyFile := filepath.Join(dirA, "root.key")
	rootKey, _, err := envelope.LoadRootKey(envelope.RootKeyOptions{File: rootKeyFile})
	mustNoErr(t, err, "load the root key")

	// Embedded -> PostgreSQL.
	original := dumpStore(t, openSQLiteDump(t, dirA))
	pgURL := pgtest.CreateSchema(t, dsn, "keyfort_migrate_")
	out, errOut, status := runKeyfort(t, "migrate", "--data", dirA, "--to", pgURL)
	if status != 0 {
		t.Fatalf("keyfort migrate --to: status %d\n%s%s", status, out, errOut)
	}
	if !strings.Contains(out, fmt.Sprintf("root key %x", rootKey.ID())) || !strings.Contains(out, fmt.Sprintf("copied %d records and", len(original.records))) {
		t.Errorf("keyfort migrate --to output:\n%s\nwant the counts and the root key id", out)
	}
	if !strings.Contains(errOut, "migrate: copying records and audit events ") || !strings.Contains(errOut, "(100%)") {
		t.Errorf("keyfort migrate --to stderr:\n%s\nwant the progress line", errOut)
	}
	if strings.Contains(out+errOut, "postgres://") {
		t.Errorf("keyfort migrate printed the PostgreSQL URL (it may hold a password):\n%s%s", out, errOut)
	}
	// The migration caught the source's lazy audit trail up (the events
	// LookupEvents would have stored from the files) and changed nothing
	// else there.
	caughtUp := dumpStore(t, openSQLiteDump(t, dirA))
	compareDumps(t, "the source before and after migrate", storeDump{original.records, caughtUp.events}, caughtUp)
	for id := range original.events {
		if _, ok := caughtUp.events[id]; !ok {
			t.Errorf("event %s is gone from the source after migrate", id)
		}
	}
	compareDumps(t, "SQLite -> PostgreSQL", caughtUp, dumpStore(t, openPGDump(t, pgURL)))

	_, errOut, status = runKeyfort(t, "migrate", "--data", dirA, "--to", pgURL)
	wantRefused(t, "migrate into a PostgreSQL schema that holds records", errOut, status, "already holds")

	q := startBinary(t, t.TempDir(), "KEYFORT_STORE="+pgURL, "KEYFORT_ROOT_KEY_FILE="+rootKeyFile)
	fx.check(t, q)
	if got := observeStore(t, q); !equalMaps(got, want) {
		t.Errorf("on PostgreSQL after migrate:\n%s", diffFacts(got, want))
	}
	q.stop(t)

	// PostgreSQL -> embedded.
	served := dumpStore(t, openPGDump(t, pgURL))
	dirC := filepath.Join(t.TempDir(), "back")
	out, errOut, status = runKeyfort(t, "migrate", "--from", pgURL, "--data", dirC)
	if status != 0 || !strings.Contains(out, fmt.Sprintf("root key %x", rootKey.ID())) {
		t.Fatalf("keyfort migrate --from: status %d\n%s%s", status, out, errOut)
	}
	if des, err := os.ReadDir(dirC); err != nil || len(des) != 2 {
		t.Errorf("%s after migrate --from = %v, %v; want keyfort.db and keyfort.lock only", dirC, des, err)
	}
	back := dumpStore(t, openSQLiteDump(t, dirC))
	compareDumps(t, "PostgreSQL -> SQLite", served, back)
	// The round trip left every sealed record as it was.
	sealed := 0
	for k, rec := range original.records {
		if rec.Sealed == nil {
			continue
		}
		sealed++
		if got, ok := back.records[k]; !ok || !bytes.Equal(got.Sealed, rec.Sealed) {
			t.Errorf("record %s: Sealed after SQLite -> PostgreSQL -> SQLite differs (present %v)", k, ok)
		}
	}
	if sealed < 10 {
		t.Errorf("only %d sealed records in the original store", sealed)
	}

	r := startBinary(t, dirC, "KEYFORT_ROOT_KEY_FILE="+rootKeyFile)
	fx.check(t, r)
	if got := observeStore(t, r); !equalMaps(got, want) {
		t.Errorf("on SQLite after migrating back:\n%s", diffFacts(got, want))
	}
	r.stop(t)
	t.Logf("migrated %d records (%d sealed) and %d audit events there and back\n%s", len(original.records), sealed, len(caughtUp.events), out)

	// Refusals.
	_, errOut, status = runKeyfort(t, "migrate", "--from", pgURL, "--data", dirC)
	wantRefused(t, "migrate into a data directory that holds a store", errOut, status, "is not empty")
	if _, err := os.Stat(filepath.Join(dirC, "keyfort.db.migrate")); !os.IsNotExist(err) {
		t.Errorf("a refused migrate left keyfort.db.migrate (%v)", err)
	}
	missing := filepath.Join(t.TempDir(), "none")
	_, errOut, status = runKeyfort(t, "migrate", "--data", missing, "--to", pgtest.CreateSchema(t, dsn, "keyfort_migrate_"))
	wantRefused(t, "migrate from a directory without a store", errOut, status, "no Keyfort store")

	p2 := startBinary(t, dirA)
	_, err = p2.kms().CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("after the migration")})
	mustNoErr(t, err, "CreateKey on the original")
	empty := pgtest.CreateSchema(t, dsn, "keyfort_migrate_")
	_, errOut, status = runKeyfort(t, "migrate", "--data", dirA, "--to", empty)
	wantRefused(t, "migrate from a served data directory", errOut, status, "is in use by another keyfort process")
	if d := dumpStore(t, openPGDump(t, empty)); len(d.records)+len(d.events) != 0 {
		t.Errorf("a refused migrate wrote %d records and %d events", len(d.records), len(d.events))
	}
	p2.stop(t)

	// A second copy of the original, served and changed meanwhile, cannot
	// go into the PostgreSQL schema that holds the first.
	_, errOut, status = runKeyfort(t, "migrate", "--data", dirA, "--to", pgURL)
	wantRefused(t, "migrate a changed store over a migrated one", errOut, status, "already holds")
	if after := dumpStore(t, openPGDump(t, pgURL)); len(after.records) != len(served.records) {
		t.Errorf("a refused migrate changed the destination: %d records, had %d", len(after.records), len(served.records))
	}
}

// migrateFixture is what makeMigrateFixture made and what every copy must
// answer alike: ciphertexts to decrypt, signatures to verify, secret
// versions to read.
type migrateFixture struct {
	cts    []fixtureCiphertext
	sigs   []fixtureSignature
	values []struct{ region, name, id, value string }
}

type fixtureCiphertext struct {
	region, keyID string
	blob, plain   []byte
	context       map[string]string
	alg           types.EncryptionAlgorithmSpec // asymmetric: Decrypt names the key and algorithm
}

type fixtureSignature struct {
	keyID    string
	msg, sig []byte
	alg      types.SigningAlgorithmSpec
}

func makeMigrateFixture(t *testing.T, p *proc) *migrateFixture {
	t.Helper()
	ctx := ctxT(t)
	fx := &migrateFixture{}
	k, eu := p.kms(), p.kmsIn("eu-west-1")
	encrypt := func(c *kms.Client, region, keyID, plain string, ec map[string]string) {
		out, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte(plain), EncryptionContext: ec})
		mustNoErr(t, err, "Encrypt")
		fx.cts = append(fx.cts, fixtureCiphertext{region: region, keyID: aws.ToString(out.KeyId), blob: out.CiphertextBlob, plain: []byte(plain), context: ec})
	}

	sym := createKey(t, k, &kms.CreateKeyInput{Description: aws.String("symmetric"), Tags: []types.Tag{tg("team", "blue"), tg("env", "prod")}})
	_, err := k.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/migrate-sym"), TargetKeyId: sym.KeyId})
	mustNoErr(t, err, "CreateAlias")
	encrypt(k, "us-east-1", aws.ToString(sym.KeyId), "before rotation", map[string]string{"purpose": "migrate"})
	_, err = k.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: sym.KeyId})
	mustNoErr(t, err, "RotateKeyOnDemand")
	encrypt(k, "us-east-1", "alias/migrate-sym", "after rotation", nil)
	_, err = k.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: sym.KeyId, Name: aws.String("migrate-grant"),
		GranteePrincipal: aws.String("arn:aws:iam::123456789012:role/app"),
		Operations:       []types.GrantOperation{types.GrantOperationDecrypt, types.GrantOperationEncrypt}})
	mustNoErr(t, err, "CreateGrant")

	for _, spec := range []struct {
		spec types.KeySpec
		alg  types.SigningAlgorithmSpec
	}{{types.KeySpecRsa2048, types.SigningAlgorithmSpecRsassaPssSha256}, {types.KeySpecEccNistP256, types.SigningAlgorithmSpecEcdsaSha256}} {
		md := createKey(t, k, &kms.CreateKeyInput{KeySpec: spec.spec, KeyUsage: types.KeyUsageTypeSignVerify})
		msg := []byte("signed before the migration with " + string(spec.spec))
		out, err := k.Sign(ctx, &kms.SignInput{KeyId: md.KeyId, Message: msg, SigningAlgorithm: spec.alg})
		mustNoErr(t, err, "Sign")
		fx.sigs = append(fx.sigs, fixtureSignature{aws.ToString(md.KeyId), msg, out.Signature, spec.alg})
	}
	rsaEnc := createKey(t, k, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeEncryptDecrypt})
	out, err := k.Encrypt(ctx, &kms.EncryptInput{KeyId: rsaEnc.KeyId, Plaintext: []byte("rsa oaep"), EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
	mustNoErr(t, err, "Encrypt RSAES_OAEP_SHA_256")
	fx.cts = append(fx.cts, fixtureCiphertext{region: "us-east-1", keyID: aws.ToString(rsaEnc.KeyId), blob: out.CiphertextBlob,
		plain: []byte("rsa oaep"), alg: types.EncryptionAlgorithmSpecRsaesOaepSha256})

	doomed := createKey(t, k, &kms.CreateKeyInput{Description: aws.String("pending deletion")})
	_, err = k.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: doomed.KeyId, PendingWindowInDays: aws.Int32(7)})
	mustNoErr(t, err, "ScheduleKeyDeletion")

	euKey := createKey(t, eu, &kms.CreateKeyInput{Description: aws.String("eu")})
	_, err = eu.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/migrate-eu"), TargetKeyId: euKey.KeyId})
	mustNoErr(t, err, "CreateAlias eu")
	encrypt(eu, "eu-west-1", aws.ToString(euKey.KeyId), "in eu-west-1", map[string]string{"region": "eu"})

	sm := p.sm()
	value := func(region, name, id, v string) {
		fx.values = append(fx.values, struct{ region, name, id, value string }{region, name, id, v})
	}
	for s := range 2 {
		name := fmt.Sprintf("app/migrate-%d", s)
		in := &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(name + " v0"),
			Tags: []smtypes.Tag{{Key: aws.String("owner"), Value: aws.String(fmt.Sprint("team-", s))}}}
		if s == 1 {
			in.KmsKeyId = sym.KeyId
			in.AddReplicaRegions = []smtypes.ReplicaRegionType{{Region: aws.String("eu-west-1"), KmsKeyId: euKey.KeyId}}
		}
		out, err := sm.CreateSecret(ctx, in)
		mustNoErr(t, err, "CreateSecret")
		value("us-east-1", name, aws.ToString(out.VersionId), name+" v0")
		for v := 1; v <= 3; v++ {
			val := fmt.Sprintf("%s v%d", name, v)
			in := &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(val)}
			if v == 2 {
				in.VersionStages = []string{"custom-label"}
			}
			out, err := sm.PutSecretValue(ctx, in)
			mustNoErr(t, err, "PutSecretValue")
			value("us-east-1", name, aws.ToString(out.VersionId), val)
			if s == 1 {
				value("eu-west-1", name, aws.ToString(out.VersionId), val)
			}
		}
	}
	_, err = sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("app/binary"), SecretBinary: []byte{0, 1, 2, 0xff}})
	mustNoErr(t, err, "CreateSecret binary")
	return fx
}

// check decrypts every ciphertext, verifies every signature and reads every
// secret version on p.
func (fx *migrateFixture) check(t *testing.T, p *proc) {
	t.Helper()
	ctx := ctxT(t)
	for i, ct := range fx.cts {
		in := &kms.DecryptInput{CiphertextBlob: ct.blob, EncryptionContext: ct.context}
		if ct.alg != "" {
			in.KeyId, in.EncryptionAlgorithm = aws.String(ct.keyID), ct.alg
		}
		out, err := p.kmsIn(ct.region).Decrypt(ctx, in)
		if err != nil || !bytes.Equal(out.Plaintext, ct.plain) {
			t.Errorf("Decrypt of ciphertext %d (%q under %s) = %v", i, ct.plain, ct.keyID, err)
		}
	}
	for _, s := range fx.sigs {
		out, err := p.kms().Verify(ctx, &kms.VerifyInput{KeyId: aws.String(s.keyID), Message: s.msg, Signature: s.sig, SigningAlgorithm: s.alg})
		if err != nil || !out.SignatureValid {
			t.Errorf("Verify of a %s signature made before the migration: %v", s.alg, err)
		}
	}
	for _, v := range fx.values {
		out, err := smIn(p, v.region).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(v.name), VersionId: aws.String(v.id)})
		if err != nil || aws.ToString(out.SecretString) != v.value {
			t.Errorf("GetSecretValue(%s, %s) in %s = %v, want %q", v.name, v.id, v.region, err, v.value)
		}
	}
}

func smIn(p *proc, region string) *secretsmanager.Client {
	return secretsmanager.New(secretsmanager.Options{
		Region:       region,
		BaseEndpoint: aws.String("http://" + p.addr),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		Retryer:      keyfortest.ClosedConnRetryer(),
	})
}

// observeStore returns what p answers to the listing and description
// calls, as facts "what -> answer" (an error answers its code), and the
// CloudTrail events of CreateKey and CreateSecret.
func observeStore(t *testing.T, p *proc) map[string]string {
	t.Helper()
	ctx := ctxT(t)
	facts := map[string]string{}
	answer := func(v string, err error) string {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return "error " + ae.ErrorCode()
		}
		if err != nil {
			t.Fatalf("observe: %v", err)
		}
		return v
	}
	for _, region := range []string{"us-east-1", "eu-west-1"} {
		k := p.kmsIn(region)
		pager := kms.NewListKeysPaginator(k, &kms.ListKeysInput{Limit: aws.Int32(3)})
		for pager.HasMorePages() {
			page, err := pager.NextPage(ctx)
			mustNoErr(t, err, "ListKeys")
			for _, e := range page.Keys {
				id := aws.ToString(e.KeyId)
				pre := region + " key " + id
				facts[pre] = aws.ToString(e.KeyArn)
				md, err := k.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: e.KeyId})
				mustNoErr(t, err, "DescribeKey")
				m := md.KeyMetadata
				facts[pre+" metadata"] = fmt.Sprintf("%s %s %s %s enabled=%v %q created=%v deletion=%v", m.KeyState, m.KeySpec, m.KeyUsage,
					m.KeyManager, m.Enabled, aws.ToString(m.Description), aws.ToTime(m.CreationDate).Unix(), aws.ToTime(m.DeletionDate).Unix())
				tags, err := k.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: e.KeyId})
				var ts []string
				if err == nil {
					for _, tg := range tags.Tags {
						ts = append(ts, aws.ToString(tg.TagKey)+"="+aws.ToString(tg.TagValue))
					}
					sort.Strings(ts)
				}
				facts[pre+" tags"] = answer(strings.Join(ts, ","), err)
				grants, err := k.ListGrants(ctx, &kms.ListGrantsInput{KeyId: e.KeyId})
				var gs []string
				if err == nil {
					for _, g := range grants.Grants {
						gs = append(gs, fmt.Sprintf("%s %s %s %v", aws.ToString(g.GrantId), aws.ToString(g.Name), aws.ToString(g.GranteePrincipal), g.Operations))
					}
					sort.Strings(gs)
				}
				facts[pre+" grants"] = answer(strings.Join(gs, "; "), err)
				rot, err := k.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: e.KeyId})
				n := 0
				if err == nil {
					n = len(rot.Rotations)
				}
				facts[pre+" rotations"] = answer(fmt.Sprint(n), err)
				if m.KeySpec != types.KeySpecSymmetricDefault {
					pub, err := k.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: e.KeyId})
					v := ""
					if err == nil {
						v = hex.EncodeToString(pub.PublicKey)
					}
					facts[pre+" public key"] = answer(v, err)
				}
			}
		}
		apager := kms.NewListAliasesPaginator(k, &kms.ListAliasesInput{Limit: aws.Int32(2)})
		for apager.HasMorePages() {
			page, err := apager.NextPage(ctx)
			mustNoErr(t, err, "ListAliases")
			for _, a := range page.Aliases {
				facts[region+" alias "+aws.ToString(a.AliasName)] = aws.ToString(a.TargetKeyId) + " " + aws.ToString(a.AliasArn)
			}
		}
		sm := smIn(p, region)
		spager := secretsmanager.NewListSecretsPaginator(sm, &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(2)})
		for spager.HasMorePages() {
			page, err := spager.NextPage(ctx)
			mustNoErr(t, err, "ListSecrets")
			for _, s := range page.SecretList {
				var stages, tags []string
				for v, st := range s.SecretVersionsToStages {
					stages = append(stages, v+"="+strings.Join(slices.Sorted(slices.Values(st)), "+"))
				}
				for _, tg := range s.Tags {
					tags = append(tags, aws.ToString(tg.Key)+"="+aws.ToString(tg.Value))
				}
				sort.Strings(stages)
				sort.Strings(tags)
				facts[region+" secret "+aws.ToString(s.Name)] = fmt.Sprintf("%s kms=%s primary=%s created=%v tags=%v stages=%v",
					aws.ToString(s.ARN), aws.ToString(s.KmsKeyId), aws.ToString(s.PrimaryRegion), aws.ToTime(s.CreatedDate).Unix(), tags, stages)
				d, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: s.ARN})
				mustNoErr(t, err, "DescribeSecret")
				var repl []string
				for _, r := range d.ReplicationStatus {
					repl = append(repl, fmt.Sprintf("%s %s %s", aws.ToString(r.Region), r.Status, aws.ToString(r.KmsKeyId)))
				}
				facts[region+" secret "+aws.ToString(s.Name)+" replication"] = strings.Join(repl, "; ")
				for v := range s.SecretVersionsToStages {
					out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: s.ARN, VersionId: aws.String(v)})
					val := ""
					if err == nil {
						val = aws.ToString(out.SecretString) + hex.EncodeToString(out.SecretBinary)
					}
					facts[region+" secret "+aws.ToString(s.Name)+" version "+v] = answer(val, err)
				}
			}
		}
	}
	for _, name := range []string{"CreateKey", "CreateSecret", "ScheduleKeyDeletion"} {
		evs := lookupAll(t, p.cloudtrail(), cloudtrail.LookupEventsInput{
			LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyEventName, AttributeValue: aws.String(name)}}}, 50)
		for _, e := range evs {
			facts["event "+aws.ToString(e.EventId)] = fmt.Sprintf("%s %v %s", aws.ToString(e.EventName), aws.ToTime(e.EventTime).Unix(), aws.ToString(e.CloudTrailEvent))
		}
		if len(evs) == 0 {
			t.Errorf("LookupEvents found no %s event", name)
		}
	}
	return facts
}

// diffFacts lists how got differs from want.
func diffFacts(got, want map[string]string) string {
	var d []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			d = append(d, fmt.Sprintf("missing %s (want %s)", k, w))
		} else if g != w {
			d = append(d, fmt.Sprintf("%s = %s\n\twant %s", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			d = append(d, fmt.Sprintf("extra %s = %s", k, g))
		}
	}
	sort.Strings(d)
	return strings.Join(d, "\n")
}

// storeDump is every row of a store: records by "kind account region id",
// events by id.
type storeDump struct {
	records map[string]*storage.Record
	events  map[string]*storage.EventRecord
}

func openSQLiteDump(t *testing.T, dir string) storage.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(dir, "keyfort.db"), sqlite.Options{})
	mustNoErr(t, err, "open "+dir)
	return s
}

func openPGDump(t *testing.T, dsn string) storage.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	mustNoErr(t, err, "open the PostgreSQL store")
	return s
}

// dumpStore reads every record and event of s, then closes it.
func dumpStore(t *testing.T, s storage.Store) storeDump {
	t.Helper()
	defer s.Close()
	ctx := ctxT(t)
	d := storeDump{records: map[string]*storage.Record{}, events: map[string]*storage.EventRecord{}}
	err := s.View(ctx, func(r storage.Reader) error {
		ex := r.(storage.Exporter)
		kinds, err := ex.Kinds(ctx)
		if err != nil {
			return err
		}
		for _, k := range kinds {
			recs, err := r.Scan(ctx, k.Kind, storage.Position{}, 0)
			if err != nil {
				return err
			}
			for _, rec := range recs {
				d.records[fmt.Sprintf("%s %s %s %s", rec.Kind, rec.Scope.Account, rec.Scope.Region, rec.ID)] = rec
			}
		}
		evs, err := ex.ScanEvents(ctx, "", 0)
		for _, e := range evs {
			d.events[e.ID] = e
		}
		return err
	})
	mustNoErr(t, err, "dump the store")
	return d
}

// compareDumps checks that every row of src is in dst, identical but for
// the revision, and that dst holds nothing else.
func compareDumps(t *testing.T, what string, src, dst storeDump) {
	t.Helper()
	if len(src.records) == 0 || len(src.events) == 0 {
		t.Fatalf("%s: the source holds %d records and %d events", what, len(src.records), len(src.events))
	}
	for k, want := range src.records {
		got, ok := dst.records[k]
		switch {
		case !ok:
			t.Errorf("%s: record %s is missing", what, k)
		case got.Parent != want.Parent || got.Due != want.Due || got.Created != want.Created ||
			!sameBytes(got.Data, want.Data) || !sameBytes(got.Sealed, want.Sealed):
			t.Errorf("%s: record %s = %+v, want %+v", what, k, got, want)
		}
	}
	for k := range dst.records {
		if _, ok := src.records[k]; !ok {
			t.Errorf("%s: record %s was not in the source", what, k)
		}
	}
	for id, want := range src.events {
		got, ok := dst.events[id]
		if !ok || fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", *want) {
			t.Errorf("%s: event %s = %+v, want %+v", what, id, got, want)
		}
	}
	if len(dst.events) != len(src.events) {
		t.Errorf("%s: %d events, the source %d", what, len(dst.events), len(src.events))
	}
}

// sameBytes compares bytes, nil (NULL) apart from empty.
func sameBytes(a, b []byte) bool { return bytes.Equal(a, b) && (a == nil) == (b == nil) }

// TestMigrateManyPages migrates a store of N keys and N secrets (more rows
// of several kinds, and more events, than one page of the copy) to
// PostgreSQL and back, checks every row of each copy, and logs the times.
// KEYFORT_MIGRATE_SIZE=N measures a larger store (600 by default).
func TestMigrateManyPages(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary; skipped in -short mode")
	}
	dsn := pgtest.DSN(t)
	n := 600
	if v, err := strconv.Atoi(os.Getenv("KEYFORT_MIGRATE_SIZE")); err == nil && v > 0 {
		n = v
	}
	dir := t.TempDir()
	p := startBinary(t, dir)
	fillStore(t, p, n)
	p.stop(t)
	pgURL := pgtest.CreateSchema(t, dsn, "keyfort_migrate_")
	start := time.Now()
	out, errOut, status := runKeyfort(t, "migrate", "--data", dir, "--to", pgURL)
	to := time.Since(start)
	if status != 0 {
		t.Fatalf("migrate --to: %s%s", out, errOut)
	}
	if want := fmt.Sprintf("%d keys, %d secrets", n+1, n); !strings.Contains(out, want) { // and aws/secretsmanager
		t.Errorf("migrate --to: %s\nwant %s", out, want)
	}
	source := dumpStore(t, openSQLiteDump(t, dir))
	perKind := map[storage.Kind]int{}
	for _, r := range source.records {
		perKind[r.Kind]++
	}
	if perKind["kms.key"] <= copyPageRows || perKind["sm.version"] <= copyPageRows || len(source.events) <= copyPageRows {
		t.Errorf("%v and %d events: no more than a page of the copy, which the test is about", perKind, len(source.events))
	}
	onPG := dumpStore(t, openPGDump(t, pgURL))
	compareDumps(t, "SQLite -> PostgreSQL", source, onPG)
	back := filepath.Join(t.TempDir(), "back")
	start = time.Now()
	out2, errOut2, status := runKeyfort(t, "migrate", "--from", pgURL, "--data", back)
	if status != 0 {
		t.Fatalf("migrate --from: %s%s", out2, errOut2)
	}
	took := time.Since(start)
	compareDumps(t, "PostgreSQL -> SQLite", onPG, dumpStore(t, openSQLiteDump(t, back)))
	t.Logf("%d records, %d events: to PostgreSQL in %v, back in %v\n%s%s%s%s", len(source.records), len(source.events),
		to.Round(time.Millisecond), took.Round(time.Millisecond), out, errOut, out2, errOut2)
}

// copyPageRows is app.copyPage: the rows the copy reads and writes at a time.
const copyPageRows = 500

// TestMigrateFromServedPostgres migrates a PostgreSQL store while writers
// keep writing to it: the copy is one snapshot, so every write answered
// before the migration began is in it, and every key and secret in it is
// whole (no key without its material, no version without its value).
func TestMigrateFromServedPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary; skipped in -short mode")
	}
	dsn := pgtest.DSN(t)
	pgURL := pgtest.CreateSchema(t, dsn, "keyfort_migrate_")
	dirB := t.TempDir()
	p := startBinary(t, dirB, "KEYFORT_STORE="+pgURL)
	k, sm := p.kms(), p.sm()
	ctx := ctxT(t)
	_, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("busy"), SecretString: aws.String("busy start")})
	mustNoErr(t, err, "CreateSecret")

	type ack struct {
		at           time.Time
		keyID        string
		version, val string
	}
	var (
		mu    sync.Mutex
		acks  []ack
		count atomic.Int64
	)
	wctx, stopWriters := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; wctx.Err() == nil; i++ {
				if w%2 == 0 {
					out, err := k.CreateKey(wctx, &kms.CreateKeyInput{})
					if err == nil {
						mu.Lock()
						acks = append(acks, ack{at: time.Now(), keyID: aws.ToString(out.KeyMetadata.KeyId)})
						mu.Unlock()
						count.Add(1)
					}
					continue
				}
				val := fmt.Sprintf("busy %d %d", w, i)
				out, err := sm.PutSecretValue(wctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("busy"), SecretString: aws.String(val)})
				if err == nil {
					mu.Lock()
					acks = append(acks, ack{at: time.Now(), version: aws.ToString(out.VersionId), val: val})
					mu.Unlock()
					count.Add(1)
				}
			}
		}()
	}
	for deadline := time.Now().Add(20 * time.Second); count.Load() < 40 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	dirC := filepath.Join(t.TempDir(), "copy")
	began := time.Now()
	out, errOut, status := runKeyfort(t, "migrate", "--from", pgURL, "--data", dirC)
	during := count.Load()
	time.Sleep(100 * time.Millisecond)
	stopWriters()
	wg.Wait()
	p.stop(t)
	if status != 0 {
		t.Fatalf("keyfort migrate --from a served store: status %d\n%s%s", status, out, errOut)
	}

	r := startBinary(t, dirC, "KEYFORT_ROOT_KEY_FILE="+filepath.Join(dirB, "root.key"))
	rk, rsm := r.kms(), r.sm()
	present := map[string]bool{}
	pager := kms.NewListKeysPaginator(rk, &kms.ListKeysInput{})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		mustNoErr(t, err, "ListKeys on the copy")
		for _, e := range page.Keys {
			present[aws.ToString(e.KeyId)] = true
			md, err := rk.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: e.KeyId})
			if err != nil {
				t.Errorf("key %s is listed but DescribeKey fails: %v", aws.ToString(e.KeyId), err)
				continue
			}
			if md.KeyMetadata.KeyManager != types.KeyManagerTypeCustomer {
				continue
			}
			if _, err := rk.Encrypt(ctx, &kms.EncryptInput{KeyId: e.KeyId, Plaintext: []byte("x")}); err != nil {
				t.Errorf("key %s of the copy is half there: Encrypt %v", aws.ToString(e.KeyId), err)
			}
		}
	}
	versions := versionValues(t, ctx, rsm, "busy", "the copy")
	r.stop(t)
	before := 0
	for _, a := range acks {
		if !a.at.Before(began) {
			continue
		}
		before++
		if a.keyID != "" && !present[a.keyID] {
			t.Errorf("key %s, answered before the migration began, is not in the copy", a.keyID)
		}
		if a.version != "" && versions[a.version] != a.val {
			t.Errorf("version %s (%q), answered before the migration began, reads %q in the copy", a.version, a.val, versions[a.version])
		}
	}
	t.Logf("%d writes answered before the migration began (all in the copy), %d during it; the copy holds %d keys and %d versions", before, during-int64(before), len(present), len(versions))
	if before < 20 {
		t.Errorf("only %d writes answered before the migration: the test means little", before)
	}
}
