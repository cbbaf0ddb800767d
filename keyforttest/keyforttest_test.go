package keyforttest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/keyfort/keyfort/internal/storage/postgres/pgtest"
	"github.com/keyfort/keyfort/internal/xks/xkstest"
	"github.com/keyfort/keyfort/keyforttest"
)

func TestStartDefaults(t *testing.T) {
	srv := keyforttest.Start(t)
	if got := srv.Endpoint(); !strings.HasPrefix(got, "http://127.0.0.1:") {
		t.Errorf("Endpoint() = %q, want http://127.0.0.1:PORT", got)
	}
	if got, want := srv.Region(), "us-east-1"; got != want || got != keyforttest.DefaultRegion {
		t.Errorf("Region() = %q, want %q (DefaultRegion %q)", got, want, keyforttest.DefaultRegion)
	}
	if got, want := srv.Account(), "123456789012"; got != want || got != keyforttest.DefaultAccount {
		t.Errorf("Account() = %q, want %q (DefaultAccount %q)", got, want, keyforttest.DefaultAccount)
	}
	res, err := http.Get(srv.Endpoint() + "/health")
	if err != nil {
		t.Fatalf("GET /health: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET /health = %d, want 200", res.StatusCode)
	}
	key, err := srv.KMS().CreateKey(t.Context(), &kms.CreateKeyInput{})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	if got, want := aws.ToString(key.KeyMetadata.Arn), "arn:aws:kms:us-east-1:123456789012:key/"+aws.ToString(key.KeyMetadata.KeyId); got != want {
		t.Errorf("CreateKey ARN = %q, want %q", got, want)
	}
	sec, err := srv.SecretsManager().CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String("db"), SecretString: aws.String("pw")})
	if err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	if got, want := aws.ToString(sec.ARN), "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-"; !strings.HasPrefix(got, want) {
		t.Errorf("CreateSecret ARN = %q, want prefix %q", got, want)
	}
}

// A test's server is its own: another test's server has none of its keys.
func TestServersAreSeparate(t *testing.T) {
	a, b := keyforttest.Start(t), keyforttest.Start(t)
	if a.Endpoint() == b.Endpoint() {
		t.Fatalf("two servers share the endpoint %s", a.Endpoint())
	}
	if _, err := a.KMS().CreateKey(t.Context(), &kms.CreateKeyInput{}); err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	keys, err := b.KMS().ListKeys(t.Context(), &kms.ListKeysInput{})
	if err != nil {
		t.Fatalf("ListKeys: %v", err)
	}
	if len(keys.Keys) != 0 {
		t.Errorf("ListKeys on the other server = %d keys, want 0", len(keys.Keys))
	}
}

func TestWithRegionAndAccount(t *testing.T) {
	tests := []struct {
		name, region, account string
		keyARN, secretARN     string // prefixes
	}{
		{"eu-west-1", "eu-west-1", "111122223333",
			"arn:aws:kms:eu-west-1:111122223333:key/", "arn:aws:secretsmanager:eu-west-1:111122223333:secret:app-"},
		{"China partition", "cn-north-1", "444455556666",
			"arn:aws-cn:kms:cn-north-1:444455556666:key/", "arn:aws-cn:secretsmanager:cn-north-1:444455556666:secret:app-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := keyforttest.Start(t, keyforttest.WithRegion(tt.region), keyforttest.WithAccount(tt.account))
			if srv.Region() != tt.region || srv.Account() != tt.account {
				t.Errorf("Region(), Account() = %q, %q; want %q, %q", srv.Region(), srv.Account(), tt.region, tt.account)
			}
			key, err := srv.KMS().CreateKey(t.Context(), &kms.CreateKeyInput{})
			if err != nil {
				t.Fatalf("CreateKey: %v", err)
			}
			if got := aws.ToString(key.KeyMetadata.Arn); !strings.HasPrefix(got, tt.keyARN) {
				t.Errorf("CreateKey ARN = %q, want prefix %q", got, tt.keyARN)
			}
			sec, err := srv.SecretsManager().CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String("app"), SecretString: aws.String("v")})
			if err != nil {
				t.Fatalf("CreateSecret: %v", err)
			}
			if got := aws.ToString(sec.ARN); !strings.HasPrefix(got, tt.secretARN) {
				t.Errorf("CreateSecret ARN = %q, want prefix %q", got, tt.secretARN)
			}
		})
	}
}

func TestAWSConfig(t *testing.T) {
	srv := keyforttest.Start(t, keyforttest.WithAccount("111122223333"), keyforttest.WithRegion("eu-central-1"))
	ctx := t.Context()
	cfg := srv.AWSConfig()
	if got := aws.ToString(cfg.BaseEndpoint); got != srv.Endpoint() {
		t.Errorf("AWSConfig().BaseEndpoint = %q, want Endpoint() %q", got, srv.Endpoint())
	}
	if cfg.Region != "eu-central-1" {
		t.Errorf("AWSConfig().Region = %q, want eu-central-1", cfg.Region)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatalf("AWSConfig().Credentials.Retrieve: %v", err)
	}
	if creds.AccessKeyID != "111122223333" {
		t.Errorf("AWSConfig() access key id = %q, want the account 111122223333", creds.AccessKeyID)
	}

	// A client made from it is the server's account and region.
	key, err := kms.NewFromConfig(cfg).CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	if got, want := aws.ToString(key.KeyMetadata.Arn), "arn:aws:kms:eu-central-1:111122223333:key/"; !strings.HasPrefix(got, want) {
		t.Errorf("CreateKey ARN = %q, want prefix %q", got, want)
	}

	// Another region, as the doc says: the key is not there.
	other := srv.AWSConfig()
	other.Region = "eu-west-1"
	_, err = kms.NewFromConfig(other).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: key.KeyMetadata.KeyId})
	var notFound *kmstypes.NotFoundException
	if !errors.As(err, &notFound) {
		t.Errorf("DescribeKey from eu-west-1 = %v, want NotFoundException", err)
	}
	// Another account, as the doc says: a 12-digit access key id.
	other = srv.AWSConfig()
	other.Credentials = credentials.NewStaticCredentialsProvider("999988887777", "x", "")
	key2, err := kms.NewFromConfig(other).CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatalf("CreateKey as 999988887777: %v", err)
	}
	if got, want := aws.ToString(key2.KeyMetadata.Arn), "arn:aws:kms:eu-central-1:999988887777:key/"; !strings.HasPrefix(got, want) {
		t.Errorf("CreateKey ARN = %q, want prefix %q", got, want)
	}
	// Changing a returned config changes no other.
	if got := srv.AWSConfig().Region; got != "eu-central-1" {
		t.Errorf("AWSConfig().Region after a caller changed a copy = %q, want eu-central-1", got)
	}
}

// recorder is a testing.TB whose Fatalf and Errorf record the message
// (Fatalf then ends the goroutine, as testing does), so tests can check how
// Start fails a test.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

// startFailure runs Start in a goroutine of its own with a recorder and
// returns what it failed the test with ("" if it did not).
func startFailure(t *testing.T, opts ...keyforttest.Option) string {
	t.Helper()
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		keyforttest.Start(r, opts...)
	}()
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.msgs, "\n")
}

func TestStartRefusesBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opt  keyforttest.Option
		want string
	}{
		{"region", keyforttest.WithRegion("Narnia"), `keyforttest: WithRegion("Narnia"): not a region name such as us-east-1`},
		{"empty region", keyforttest.WithRegion(""), `keyforttest: WithRegion(""): not a region name such as us-east-1`},
		{"short account", keyforttest.WithAccount("12345"), `keyforttest: WithAccount("12345"): an account id is 12 digits`},
		{"access key as account", keyforttest.WithAccount("AKIAIOSFODNN7EXAMPLE"), `keyforttest: WithAccount("AKIAIOSFODNN7EXAMPLE"): an account id is 12 digits`},
		{"empty DSN", keyforttest.WithPostgres(""), `keyforttest: WithPostgres: the DSN is empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := startFailure(t, tt.opt); got != tt.want {
				t.Errorf("Start(%s) failed the test with %q, want %q", tt.name, got, tt.want)
			}
		})
	}
}

func TestWithPostgresUnreachable(t *testing.T) {
	got := startFailure(t, keyforttest.WithPostgres("postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=5"))
	if !strings.HasPrefix(got, "keyforttest: start: ") {
		t.Errorf("Start(WithPostgres(unreachable)) failed the test with %q, want keyforttest: start: ...", got)
	}
}

func TestWithPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := t.Context()
	srv := keyforttest.Start(t, keyforttest.WithPostgres(dsn))
	key, err := srv.KMS().CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	enc, err := srv.KMS().Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("pg")})
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	dec, err := srv.KMS().Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	if err != nil || string(dec.Plaintext) != "pg" {
		t.Fatalf("Decrypt = %q, %v; want \"pg\"", dec.Plaintext, err)
	}
	// Another test's server on the same database sees none of it.
	other := keyforttest.Start(t, keyforttest.WithPostgres(dsn))
	keys, err := other.KMS().ListKeys(ctx, &kms.ListKeysInput{})
	if err != nil {
		t.Fatalf("ListKeys: %v", err)
	}
	if len(keys.Keys) != 0 {
		t.Errorf("ListKeys on another server of the database = %d keys, want 0", len(keys.Keys))
	}
}

func TestClock(t *testing.T) {
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	c := keyforttest.NewClock(start)
	if got := c.Now(); !got.Equal(start) {
		t.Errorf("NewClock(%v).Now() = %v", start, got)
	}
	c.Advance(36 * time.Hour)
	if got, want := c.Now(), start.Add(36*time.Hour); !got.Equal(want) {
		t.Errorf("after Advance(36h) Now() = %v, want %v", got, want)
	}
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "negative") {
				t.Errorf("Advance(-1s) panic = %v, want a panic about a negative duration", r)
			}
		}()
		c.Advance(-time.Second)
	}()

	// Safe for concurrent use (go test -race).
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				c.Advance(time.Second)
				_ = c.Now()
			}
		})
	}
	wg.Wait()
	if got, want := c.Now(), start.Add(36*time.Hour+400*time.Second); !got.Equal(want) {
		t.Errorf("after 400 concurrent Advance(1s) Now() = %v, want %v", got, want)
	}
}

func TestWithClockDatesTheServer(t *testing.T) {
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := keyforttest.NewClock(start)
	srv := keyforttest.Start(t, keyforttest.WithClock(clock))
	ctx := t.Context()
	key, err := srv.KMS().CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	if got := aws.ToTime(key.KeyMetadata.CreationDate); !got.Equal(start) {
		t.Errorf("CreateKey CreationDate = %v, want the clock's %v", got, start)
	}
	clock.Advance(24 * time.Hour)
	sec, err := srv.SecretsManager().CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("s"), SecretString: aws.String("v")})
	if err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	desc, err := srv.SecretsManager().DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: sec.ARN})
	if err != nil {
		t.Fatalf("DescribeSecret: %v", err)
	}
	if got, want := aws.ToTime(desc.CreatedDate), start.Add(24*time.Hour); !got.Equal(want) {
		t.Errorf("DescribeSecret CreatedDate = %v, want the clock's %v", got, want)
	}
}

// RunJobs does what is due and nothing that is not: a key and a secret
// survive until their windows pass, then are gone.
func TestRunJobsDeletes(t *testing.T) {
	clock := keyforttest.NewClock(time.Now())
	srv := keyforttest.Start(t, keyforttest.WithClock(clock))
	ctx := t.Context()
	kc, sc := srv.KMS(), srv.SecretsManager()
	key, err := kc.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	id := key.KeyMetadata.KeyId
	if _, err := kc.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatalf("ScheduleKeyDeletion: %v", err)
	}
	if _, err := sc.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("old"), SecretString: aws.String("v")}); err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	if _, err := sc.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("old"), RecoveryWindowInDays: aws.Int64(7)}); err != nil {
		t.Fatalf("DeleteSecret: %v", err)
	}

	clock.Advance(7*24*time.Hour - time.Minute)
	srv.RunJobs(t)
	desc, err := kc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: id})
	if err != nil {
		t.Fatalf("DescribeKey a minute before the window ends: %v", err)
	}
	if desc.KeyMetadata.KeyState != kmstypes.KeyStatePendingDeletion {
		t.Errorf("KeyState a minute before the window ends = %s, want PendingDeletion", desc.KeyMetadata.KeyState)
	}
	if _, err := sc.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("old")}); err != nil {
		t.Errorf("DescribeSecret a minute before the window ends: %v", err)
	}

	clock.Advance(2 * time.Minute)
	srv.RunJobs(t)
	_, err = kc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: id})
	var keyNotFound *kmstypes.NotFoundException
	if !errors.As(err, &keyNotFound) {
		t.Errorf("DescribeKey after the window = %v, want NotFoundException", err)
	}
	_, err = sc.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("old")})
	var secretNotFound *smtypes.ResourceNotFoundException
	if !errors.As(err, &secretNotFound) {
		t.Errorf("DescribeSecret after the window = %v, want ResourceNotFoundException", err)
	}
}

// RunJobs rotates a key whose rotation period has passed, and not before.
func TestRunJobsRotates(t *testing.T) {
	clock := keyforttest.NewClock(time.Now())
	srv := keyforttest.Start(t, keyforttest.WithClock(clock))
	ctx := t.Context()
	c := srv.KMS()
	key, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	id := key.KeyMetadata.KeyId
	if _, err := c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: id, RotationPeriodInDays: aws.Int32(90)}); err != nil {
		t.Fatalf("EnableKeyRotation: %v", err)
	}
	rotations := func() []kmstypes.RotationsListEntry {
		t.Helper()
		out, err := c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: id})
		if err != nil {
			t.Fatalf("ListKeyRotations: %v", err)
		}
		return out.Rotations
	}
	clock.Advance(89 * 24 * time.Hour)
	srv.RunJobs(t)
	if r := rotations(); len(r) != 0 {
		t.Errorf("ListKeyRotations after 89 of 90 days = %d rotations, want 0", len(r))
	}
	clock.Advance(2 * 24 * time.Hour)
	srv.RunJobs(t)
	if r := rotations(); len(r) != 1 || r[0].RotationType != kmstypes.RotationTypeAutomatic {
		t.Errorf("ListKeyRotations after 91 days = %+v, want one AUTOMATIC rotation", r)
	}
}

// lockedBuffer is an io.Writer safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestWithLogger(t *testing.T) {
	var buf lockedBuffer
	srv := keyforttest.Start(t, keyforttest.WithLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	addr := strings.TrimPrefix(srv.Endpoint(), "http://")
	if got := buf.String(); !strings.Contains(got, addr) {
		t.Errorf("the server's log does not name its address %s:\n%s", addr, got)
	}
}

func TestWithSetup(t *testing.T) {
	var order []string
	srv := keyforttest.Start(t,
		keyforttest.WithSetup(func(ctx context.Context, s *keyforttest.Server) error {
			order = append(order, "key")
			key, err := s.KMS().CreateKey(ctx, &kms.CreateKeyInput{})
			if err != nil {
				return err
			}
			_, err = s.KMS().CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: key.KeyMetadata.KeyId})
			return err
		}),
		keyforttest.WithSetup(func(ctx context.Context, s *keyforttest.Server) error {
			order = append(order, "secret")
			_, err := s.SecretsManager().CreateSecret(ctx, &secretsmanager.CreateSecretInput{
				Name: aws.String("app/db"), SecretString: aws.String("pw"), KmsKeyId: aws.String("alias/app")})
			return err
		}),
	)
	if got, want := strings.Join(order, ","), "key,secret"; got != want {
		t.Errorf("setups ran in the order %s, want %s", got, want)
	}
	val, err := srv.SecretsManager().GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/db")})
	if err != nil {
		t.Fatalf("GetSecretValue of the secret a setup made: %v", err)
	}
	if got := aws.ToString(val.SecretString); got != "pw" {
		t.Errorf("GetSecretValue = %q, want %q", got, "pw")
	}
}

func TestWithSetupError(t *testing.T) {
	ran := false
	got := startFailure(t,
		keyforttest.WithSetup(func(ctx context.Context, s *keyforttest.Server) error {
			_, err := s.KMS().DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/missing")})
			return err
		}),
		keyforttest.WithSetup(func(context.Context, *keyforttest.Server) error { ran = true; return nil }),
	)
	if want := "keyforttest: setup 1 of 2: "; !strings.HasPrefix(got, want) || !strings.Contains(got, "NotFoundException") {
		t.Errorf("Start with a failing setup failed the test with %q, want %q and the NotFoundException", got, want)
	}
	if ran {
		t.Error("the setup after a failed one ran")
	}
}

func TestClose(t *testing.T) {
	srv := keyforttest.Start(t)
	c := srv.KMS()
	if _, err := c.ListKeys(t.Context(), &kms.ListKeysInput{}); err != nil {
		t.Fatalf("ListKeys before Close: %v", err)
	}
	srv.Close()
	_, err := c.ListKeys(t.Context(), &kms.ListKeysInput{})
	var apiErr smithy.APIError
	if err == nil || errors.As(err, &apiErr) {
		t.Errorf("ListKeys after Close = %v, want a connection error", err)
	}
	srv.Close() // again: no panic, and t.Cleanup calls it a third time
}

// TestWithSeed: a seeded key has its fixed id and material (the same on
// every server) and a seeded secret its fixed name and ARN; a bad file
// fails the test with one line naming the entry.
func TestWithSeed(t *testing.T) {
	material := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	seed := `keys:
  - key_id: 0123abcd-0000-4000-8000-000000000001
    material_base64: ` + material + `
    aliases: [alias/fixture]
secrets:
  - name: fixture/db
    secret_string: '{"user":"app"}'
`
	a := keyforttest.Start(t, keyforttest.WithSeed(seed))
	b := keyforttest.Start(t, keyforttest.WithSeed(seed))
	ctx := t.Context()
	enc, err := a.KMS().Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/fixture"), Plaintext: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := b.KMS().Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	if err != nil || string(dec.Plaintext) != "x" || !strings.HasSuffix(aws.ToString(dec.KeyId), "key/0123abcd-0000-4000-8000-000000000001") {
		t.Fatalf("Decrypt on a second seeded server: %v", err)
	}
	va, err := a.SecretsManager().GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("fixture/db")})
	if err != nil {
		t.Fatal(err)
	}
	vb, err := b.SecretsManager().GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: va.ARN})
	if err != nil || aws.ToString(vb.SecretString) != `{"user":"app"}` || aws.ToString(vb.ARN) != aws.ToString(va.ARN) {
		t.Fatalf("the seeded secret differs between servers: %v", err)
	}
	got := startFailure(t, keyforttest.WithSeed("keys:\n  - key_id: not-a-uuid\n"))
	if !strings.Contains(got, "keys[0] (key not-a-uuid): key_id must be a lower-case UUID") || strings.Count(got, "\n") > 0 {
		t.Fatalf("a bad seed failed the test with %q", got)
	}
}

// TestWithXKSProxy: a test's own XKS proxy, reached by its host name, backs
// a KMS key in an external key store.
func TestWithXKSProxy(t *testing.T) {
	p, err := xkstest.Start(xkstest.Options{Hosts: []string{"xks.test.internal"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	p.AddKey("external-1")
	srv := keyforttest.Start(t, keyforttest.WithXKSProxy("xks.test.internal", p.Address(), p.CertPEM()))
	c := srv.KMS()
	ctx := t.Context()
	out, err := c.CreateCustomKeyStore(ctx, &kms.CreateCustomKeyStoreInput{
		CustomKeyStoreName: aws.String("test"), CustomKeyStoreType: kmstypes.CustomKeyStoreTypeExternalKeyStore,
		XksProxyConnectivity: kmstypes.XksProxyConnectivityTypePublicEndpoint,
		XksProxyUriEndpoint:  aws.String("https://xks.test.internal"), XksProxyUriPath: aws.String(p.Path()),
		XksProxyAuthenticationCredential: &kmstypes.XksProxyAuthenticationCredentialType{
			AccessKeyId: aws.String(p.AccessKeyID()), RawSecretAccessKey: aws.String(p.Secret().Reveal())},
	})
	if err != nil {
		t.Fatalf("CreateCustomKeyStore: %v", err)
	}
	if _, err := c.ConnectCustomKeyStore(ctx, &kms.ConnectCustomKeyStoreInput{CustomKeyStoreId: out.CustomKeyStoreId}); err != nil {
		t.Fatalf("ConnectCustomKeyStore: %v", err)
	}
	key, err := c.CreateKey(ctx, &kms.CreateKeyInput{Origin: kmstypes.OriginTypeExternalKeyStore, CustomKeyStoreId: out.CustomKeyStoreId, XksKeyId: aws.String("external-1")})
	if err != nil {
		t.Fatalf("CreateKey in the external key store: %v", err)
	}
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("through the proxy")})
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	if err != nil || string(dec.Plaintext) != "through the proxy" {
		t.Fatalf("Decrypt = %q, %v", dec.Plaintext, err)
	}
}
