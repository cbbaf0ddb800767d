package e2e

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyfort/keyfort/internal/config"
	"github.com/keyfort/keyfort/internal/keyfortest"
)

// auditEvent is the part of a CloudTrail event these tests read.
type auditEvent struct {
	EventSource       string          `json:"eventSource"`
	EventName         string          `json:"eventName"`
	AWSRegion         string          `json:"awsRegion"`
	SourceIPAddress   string          `json:"sourceIPAddress"`
	UserAgent         string          `json:"userAgent"`
	EventID           string          `json:"eventID"`
	RequestID         string          `json:"requestID"`
	ReadOnly          bool            `json:"readOnly"`
	RequestParameters json.RawMessage `json:"requestParameters"`
	ResponseElements  json.RawMessage `json:"responseElements"`
	// AdditionalEventData is null when the event has none.
	AdditionalEventData json.RawMessage `json:"additionalEventData"`
	ErrorCode           string          `json:"errorCode"`
	UserIdentity        struct {
		Type        string `json:"type"`
		ARN         string `json:"arn"`
		AccountID   string `json:"accountId"`
		AccessKeyID string `json:"accessKeyId"`
		PrincipalID string `json:"principalId"`
		UserName    string `json:"userName"`
		InvokedBy   string `json:"invokedBy"`
	} `json:"userIdentity"`
	ErrorMessage string `json:"errorMessage"`
	EventType    string `json:"eventType"`
	// ServiceEventDetails is a service event's, null otherwise.
	ServiceEventDetails json.RawMessage `json:"serviceEventDetails"`
	Resources           []struct {
		AccountID string `json:"accountId"`
		Type      string `json:"type"`
		ARN       string `json:"ARN"`
	} `json:"resources"`
}

// startAudited starts a server with --audit-sync: each request's audit lines
// are in the JSON-lines file before its response, so that readAudit can read
// them there (by default they reach it grouped, within about 200 ms).
func startAudited(t *testing.T, opts ...keyfortest.Option) *keyfortest.Server {
	t.Helper()
	return keyfortest.Start(t, append(opts, withAuditSync())...)
}

// withAuditSync is the option startAudited adds (--audit-sync).
func withAuditSync() keyfortest.Option {
	return keyfortest.WithConfig(func(c *config.Config) { c.AuditSync = true })
}

// readAudit returns the events of the audit trail of a server started by
// startAudited, oldest first.
func readAudit(t *testing.T, srv *keyfortest.Server) []auditEvent {
	t.Helper()
	if _, err := os.Stat(filepath.Join(srv.DataDir, "audit", ".journal")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("readAudit: the server keeps an audit journal (%v): start it with startAudited", err)
	}
	f, err := os.Open(filepath.Join(srv.DataDir, "audit", "keyfort-audit.jsonl"))
	if err != nil {
		t.Fatalf("open audit trail: %v", err)
	}
	defer f.Close()
	var events []auditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e auditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		events = append(events, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return events
}

// TestAuditResources checks the resources element of KMS audit events: the
// keys (and aliases) each request acted on, as CloudTrail lists them.
func TestAuditResources(t *testing.T) {
	srv := startAudited(t)
	c := srv.KMS()
	ctx := ctxT(t)
	k1, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	mustNoErr(t, err, "CreateKey")
	k2, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	mustNoErr(t, err, "CreateKey")
	arn1, arn2 := aws.ToString(k1.KeyMetadata.Arn), aws.ToString(k2.KeyMetadata.Arn)
	acct := aws.ToString(k1.KeyMetadata.AWSAccountId)
	aliasARN := "arn:aws:kms:" + "us-east-1" + ":" + acct + ":alias/audited"

	_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/audited"), TargetKeyId: k1.KeyMetadata.KeyId})
	mustNoErr(t, err, "CreateAlias")
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/audited"), Plaintext: []byte("x")})
	mustNoErr(t, err, "Encrypt")
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	mustNoErr(t, err, "Decrypt")
	_, err = c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: k2.KeyMetadata.KeyId})
	mustNoErr(t, err, "ReEncrypt")
	_, err = c.TagResource(ctx, &kms.TagResourceInput{KeyId: k2.KeyMetadata.Arn, Tags: []types.Tag{{TagKey: aws.String("a"), TagValue: aws.String("b")}}})
	mustNoErr(t, err, "TagResource")
	_, err = c.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String("alias/audited"), TargetKeyId: k2.KeyMetadata.KeyId})
	mustNoErr(t, err, "UpdateAlias")
	_, err = c.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String("alias/audited")})
	mustNoErr(t, err, "DeleteAlias")
	_, err = c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: k1.KeyMetadata.KeyId})
	mustNoErr(t, err, "DisableKey")
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: k1.KeyMetadata.KeyId, Plaintext: []byte("x")})
	wantAPIError(t, err, "DisabledException", "")
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/missing")})
	wantAPIError(t, err, "NotFoundException", "")
	_, err = c.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(8)})
	mustNoErr(t, err, "GenerateRandom")
	_, err = c.ListKeys(ctx, &kms.ListKeysInput{})
	mustNoErr(t, err, "ListKeys")
	// Secrets Manager's own use of KMS (the aws/secretsmanager key, data
	// keys) is not a resource of its callers' events: its calls to KMS are
	// events of their own (TestAuditSecretsManagerKMSCalls). Its events
	// name the secret.
	sm := srv.SecretsManager()
	created, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("audited"), SecretString: aws.String("v")})
	mustNoErr(t, err, "CreateSecret")
	secretARN := aws.ToString(created.ARN)
	_, err = sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("audited")})
	mustNoErr(t, err, "GetSecretValue")

	want := []struct {
		name, code string
		arns       []string
	}{
		{"CreateKey", "", []string{arn1}},
		{"CreateKey", "", []string{arn2}},
		{"CreateAlias", "", []string{aliasARN, arn1}},
		{"Encrypt", "", []string{arn1}},
		{"Decrypt", "", []string{arn1}},
		{"ReEncrypt", "", []string{arn1, arn2}},
		{"TagResource", "", []string{arn2}},
		{"UpdateAlias", "", []string{aliasARN, arn2}},
		{"DeleteAlias", "", []string{aliasARN, arn2}},
		{"DisableKey", "", []string{arn1}},
		{"Encrypt", "DisabledException", []string{arn1}},
		{"DescribeKey", "NotFoundException", nil},
		{"GenerateRandom", "", nil},
		{"ListKeys", "", nil},
		{"CreateSecret", "", []string{secretARN}},
		{"GenerateDataKey", "", []string{"managed"}},
		{"GetSecretValue", "", []string{secretARN}},
		{"Decrypt", "", []string{"managed"}},
	}
	events := readAudit(t, srv)
	managed, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/aws/secretsmanager")})
	mustNoErr(t, err, "DescribeKey aws/secretsmanager")
	for _, w := range want {
		if len(w.arns) == 1 && w.arns[0] == "managed" {
			w.arns[0] = aws.ToString(managed.KeyMetadata.Arn)
		}
	}
	if len(events) != len(want) {
		t.Fatalf("audit trail has %d events, want %d: %+v", len(events), len(want), events)
	}
	for i, w := range want {
		e := events[i]
		var arns []string
		for _, r := range e.Resources {
			wantType := "AWS::KMS::Key"
			if e.EventSource == "secretsmanager.amazonaws.com" {
				wantType = "AWS::SecretsManager::Secret"
			}
			if r.Type != wantType || r.AccountID != acct {
				t.Errorf("%s resource %+v, want type %s, account %s", e.EventName, r, wantType, acct)
			}
			arns = append(arns, r.ARN)
		}
		slices.Sort(arns)
		wantARNs := slices.Sorted(slices.Values(w.arns))
		if e.EventName != w.name || e.ErrorCode != w.code || !slices.Equal(arns, wantARNs) {
			t.Errorf("event %d = %s %q resources %v, want %s %q %v", i, e.EventName, e.ErrorCode, arns, w.name, w.code, wantARNs)
		}
		// AWS: "The CloudTrail log entry for a Decrypt operation always
		// includes the encryptionAlgorithm in the requestParameters even if
		// the encryption algorithm wasn't specified in the request." Neither
		// Decrypt here names one (the SDK's, then Secrets Manager's).
		if e.EventName == "Decrypt" && !strings.Contains(string(e.RequestParameters), `"encryptionAlgorithm":"SYMMETRIC_DEFAULT"`) {
			t.Errorf("Decrypt event %d requestParameters = %s, want encryptionAlgorithm SYMMETRIC_DEFAULT", i, e.RequestParameters)
		}
		// CloudTrail records the affected key's ARN as responseElements.keyId
		// for these four, though they return nothing.
		switch e.EventName {
		case "EnableKey", "DisableKey", "CreateAlias", "UpdateAlias":
			var re struct {
				KeyID string `json:"keyId"`
			}
			if err := json.Unmarshal(e.ResponseElements, &re); err != nil || re.KeyID == "" || !slices.Contains(wantARNs, re.KeyID) {
				t.Errorf("%s responseElements = %s, want keyId the key's ARN", e.EventName, e.ResponseElements)
			}
		}
	}
}

// TestAuditBatchGetSecretValue checks that, as AWS documents, a
// BatchGetSecretValue call also writes a GetSecretValue event for each secret
// it reads, with the call's request id, and one with the error for a secret
// it could not read.
func TestAuditBatchGetSecretValue(t *testing.T) {
	srv := startAudited(t)
	sm := srv.SecretsManager()
	ctx := ctxT(t)
	for _, name := range []string{"batch-a", "batch-b"} {
		_, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("value-of-" + name)})
		mustNoErr(t, err, "CreateSecret")
	}
	out, err := sm.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"batch-a", "batch-missing", "batch-b"}})
	mustNoErr(t, err, "BatchGetSecretValue")
	if len(out.SecretValues) != 2 || len(out.Errors) != 1 {
		t.Fatalf("BatchGetSecretValue = %d values, %d errors, want 2 and 1", len(out.SecretValues), len(out.Errors))
	}
	// A call refused as a whole reads no secret and writes only its own event.
	_, err = sm.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{})
	wantAPIError(t, err, "InvalidParameterException", "")

	// Secrets Manager's own calls to KMS are checked in
	// TestAuditSecretsManagerKMSCalls.
	events := slices.DeleteFunc(readAudit(t, srv), func(e auditEvent) bool { return e.UserIdentity.InvokedBy != "" })
	var names []string
	for _, e := range events {
		names = append(names, e.EventName)
	}
	want := []string{"CreateSecret", "CreateSecret", "BatchGetSecretValue", "GetSecretValue", "GetSecretValue", "GetSecretValue", "BatchGetSecretValue"}
	if !slices.Equal(names, want) {
		t.Fatalf("audit events = %v, want %v", names, want)
	}
	batch := events[2]
	ids := map[string]bool{batch.EventID: true}
	for i, secret := range []string{"batch-a", "batch-missing", "batch-b"} {
		e := events[3+i]
		var params struct {
			SecretID string `json:"secretId"`
		}
		if err := json.Unmarshal(e.RequestParameters, &params); err != nil || params.SecretID != secret {
			t.Errorf("GetSecretValue event %d requestParameters = %s, want secretId %q", i, e.RequestParameters, secret)
		}
		if e.RequestID != batch.RequestID || !e.ReadOnly || ids[e.EventID] {
			t.Errorf("GetSecretValue event %d: requestID %q readOnly %v eventID %q; want the batch's request id %q, read-only, a new event id",
				i, e.RequestID, e.ReadOnly, e.EventID, batch.RequestID)
		}
		ids[e.EventID] = true
		wantCode := ""
		if secret == "batch-missing" {
			wantCode = "ResourceNotFoundException"
		}
		if e.ErrorCode != wantCode || (wantCode != "" && e.ErrorMessage == "") {
			t.Errorf("GetSecretValue event for %s: error %q %q, want code %q with a message", secret, e.ErrorCode, e.ErrorMessage, wantCode)
		}
	}
	if events[6].ErrorCode != "InvalidParameterException" {
		t.Errorf("refused batch event errorCode = %q, want InvalidParameterException", events[6].ErrorCode)
	}
}

// TestAuditDenials checks that refused requests reach the trail: an
// AccessDeniedException with the caller's identity, and a request whose
// signature does not verify, with no identity.
func TestAuditDenials(t *testing.T) {
	srv := startStrict(t, strictCredentials, withAuditSync())
	root, nobody := kmsFor(srv, "AKIAROOT000000000001", "root-secret"), kmsFor(srv, "AKIANOBODY000000001", "nobody-secret")
	key := createKey(t, root, nil)
	_, err := nobody.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: key.KeyId})
	wantAPIError(t, err, "AccessDeniedException", "")
	_, err = kmsFor(srv, "AKIANOBODY000000001", "wrong").ListKeys(ctxT(t), &kms.ListKeysInput{})
	wantAPIError(t, err, "InvalidSignatureException", "")
	var denied, unsigned *auditEvent
	events := readAudit(t, srv)
	for i := range events {
		e := &events[i]
		switch {
		case e.EventName == "DescribeKey" && e.ErrorCode == "AccessDeniedException":
			denied = e
		case e.EventName == "ListKeys" && e.ErrorCode == "InvalidSignatureException":
			unsigned = e
		}
	}
	if denied == nil || unsigned == nil {
		t.Fatalf("trail lacks the refused requests (denied %v, bad signature %v)", denied != nil, unsigned != nil)
	}
	u := denied.UserIdentity
	if u.Type != "IAMUser" || u.ARN != "arn:aws:iam::"+strictAccount+":user/nobody" || u.UserName != "nobody" ||
		u.AccessKeyID != "AKIANOBODY000000001" || u.AccountID != strictAccount || !strings.HasPrefix(u.PrincipalID, "AIDA") {
		t.Fatalf("denied event userIdentity = %+v", u)
	}
	if !strings.Contains(denied.ErrorMessage, "is not authorized to perform: kms:DescribeKey") || len(denied.Resources) != 1 {
		t.Fatalf("denied event = %+v", denied)
	}
	if unsigned.UserIdentity.ARN != "" || unsigned.UserIdentity.AccessKeyID != "" {
		t.Fatalf("an unverified request is recorded as %+v", unsigned.UserIdentity)
	}
}

// TestAuditSecretsManagerKMSCalls checks that Secrets Manager's calls to KMS
// on a caller's behalf are KMS events as CloudTrail records them: the
// caller's identity with invokedBy, sourceIPAddress and userAgent
// secretsmanager.amazonaws.com, the key as resource, the secret's encryption
// context, the request id of the Secrets Manager request, and written also
// when KMS refuses and the Secrets Manager request fails.
func TestAuditSecretsManagerKMSCalls(t *testing.T) {
	srv := startAudited(t)
	c, sm := srv.KMS(), srv.SecretsManager()
	ctx := ctxT(t)
	k, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	mustNoErr(t, err, "CreateKey")
	keyARN := aws.ToString(k.KeyMetadata.Arn)
	sec, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("via-kms"), KmsKeyId: k.KeyMetadata.KeyId, SecretString: aws.String("s3cr3t-value-via-kms")})
	mustNoErr(t, err, "CreateSecret")
	_, err = sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("via-kms")})
	mustNoErr(t, err, "GetSecretValue")
	_, err = c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: k.KeyMetadata.KeyId})
	mustNoErr(t, err, "DisableKey")
	_, err = sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("via-kms")})
	wantAPIError(t, err, "DecryptionFailure", "")

	events := readAudit(t, srv)
	requestOf := map[string]string{} // request id -> the Secrets Manager event name and its error
	for _, e := range events {
		if e.EventSource == "secretsmanager.amazonaws.com" {
			requestOf[e.RequestID] = e.EventName + "/" + e.ErrorCode
		}
	}
	var got []string
	for _, e := range events {
		if e.UserIdentity.InvokedBy == "" {
			continue
		}
		const svc = "secretsmanager.amazonaws.com"
		if e.EventSource != "kms.amazonaws.com" || e.UserIdentity.InvokedBy != svc || e.SourceIPAddress != svc || e.UserAgent != svc || !e.ReadOnly {
			t.Errorf("%s event: source %q invokedBy %q sourceIPAddress %q userAgent %q readOnly %v; want kms.amazonaws.com, %s three times, read-only",
				e.EventName, e.EventSource, e.UserIdentity.InvokedBy, e.SourceIPAddress, e.UserAgent, e.ReadOnly, svc)
		}
		if e.UserIdentity.Type != "Root" || e.UserIdentity.AccountID != aws.ToString(k.KeyMetadata.AWSAccountId) {
			t.Errorf("%s event userIdentity = %+v, want the caller (the account root)", e.EventName, e.UserIdentity)
		}
		var params struct {
			KeyID               string            `json:"keyId"`
			EncryptionContext   map[string]string `json:"encryptionContext"`
			EncryptionAlgorithm *string           `json:"encryptionAlgorithm"`
		}
		if err := json.Unmarshal(e.RequestParameters, &params); err != nil || params.EncryptionContext["SecretARN"] != aws.ToString(sec.ARN) {
			t.Errorf("%s event requestParameters = %s, want the secret's encryption context", e.EventName, e.RequestParameters)
		}
		// AWS: a Decrypt event always names the encryption algorithm,
		// also when the request did not.
		if wantAlg := e.EventName == "Decrypt"; wantAlg != (aws.ToString(params.EncryptionAlgorithm) == "SYMMETRIC_DEFAULT") {
			t.Errorf("%s event requestParameters = %s: encryptionAlgorithm SYMMETRIC_DEFAULT %v, want %v", e.EventName, e.RequestParameters, !wantAlg, wantAlg)
		}
		if strings.Contains(string(e.RequestParameters), "s3cr3t") {
			t.Errorf("%s event carries the secret value: %s", e.EventName, e.RequestParameters)
		}
		var arns []string
		for _, r := range e.Resources {
			arns = append(arns, r.Type+" "+r.ARN)
		}
		if e.ErrorCode == "" && !slices.Equal(arns, []string{"AWS::KMS::Key " + keyARN}) {
			t.Errorf("%s event resources = %v, want the key %s", e.EventName, arns, keyARN)
		}
		got = append(got, requestOf[e.RequestID]+": "+e.EventName+"/"+e.ErrorCode)
	}
	want := []string{
		"CreateSecret/: GenerateDataKey/",
		"GetSecretValue/: Decrypt/",
		"GetSecretValue/DecryptionFailure: Decrypt/DisabledException",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Secrets Manager's KMS events (request: event/error) = %q, want %q", got, want)
	}
}

// TestAuditKeyAgreementAndDataKeyPairs checks the events of
// DeriveSharedSecret and GenerateDataKeyPair(WithoutPlaintext): the key as
// the resource, the request's key id and algorithm or spec in
// requestParameters, and neither the shared secret nor the private key
// anywhere in the event.
func TestAuditKeyAgreementAndDataKeyPairs(t *testing.T) {
	srv := startAudited(t)
	c := srv.KMS()
	ctx := ctxT(t)
	agree := createKey(t, c, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeKeyAgreement})
	pub, err := c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: agree.KeyId})
	mustNoErr(t, err, "GetPublicKey")
	shared, err := c.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: agree.KeyId, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: pub.PublicKey})
	mustNoErr(t, err, "DeriveSharedSecret")
	sym := createKey(t, c, nil)
	pair, err := c.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: sym.KeyId, KeyPairSpec: types.DataKeyPairSpecEccNistP384,
		EncryptionContext: map[string]string{"app": "audit"}})
	mustNoErr(t, err, "GenerateDataKeyPair")
	_, err = c.GenerateDataKeyPairWithoutPlaintext(ctx, &kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: sym.KeyId, KeyPairSpec: types.DataKeyPairSpecEccNistP256})
	mustNoErr(t, err, "GenerateDataKeyPairWithoutPlaintext")
	secrets := []string{
		base64.StdEncoding.EncodeToString(shared.SharedSecret), hex.EncodeToString(shared.SharedSecret),
		base64.StdEncoding.EncodeToString(pair.PrivateKeyPlaintext), hex.EncodeToString(pair.PrivateKeyPlaintext),
	}
	want := map[string]struct {
		arn    string
		params []string
	}{
		"DeriveSharedSecret":                  {aws.ToString(agree.Arn), []string{`"keyId":"` + aws.ToString(agree.KeyId) + `"`, `"keyAgreementAlgorithm":"ECDH"`}},
		"GenerateDataKeyPair":                 {aws.ToString(sym.Arn), []string{`"keyPairSpec":"ECC_NIST_P384"`, `"encryptionContext":{"app":"audit"}`}},
		"GenerateDataKeyPairWithoutPlaintext": {aws.ToString(sym.Arn), []string{`"keyPairSpec":"ECC_NIST_P256"`}},
	}
	seen := 0
	for _, e := range readAudit(t, srv) {
		w, ok := want[e.EventName]
		if !ok {
			continue
		}
		seen++
		if len(e.Resources) != 1 || e.Resources[0].ARN != w.arn || e.ErrorCode != "" {
			t.Errorf("%s event resources %+v error %q, want the key %s", e.EventName, e.Resources, e.ErrorCode, w.arn)
		}
		for _, p := range w.params {
			if !strings.Contains(string(e.RequestParameters), p) {
				t.Errorf("%s requestParameters = %s, want %s in it", e.EventName, e.RequestParameters, p)
			}
		}
	}
	if seen != len(want) {
		t.Errorf("found %d of the %d events", seen, len(want))
	}
	trail, err := os.ReadFile(filepath.Join(srv.DataDir, "audit", "keyfort-audit.jsonl"))
	mustNoErr(t, err, "read the audit trail")
	for _, s := range secrets {
		if strings.Contains(string(trail), s) {
			t.Errorf("the audit trail holds a shared secret or private key")
		}
	}
}

// TestAuditKeyMaterialID checks the additionalEventData of KMS's
// cryptographic events, as AWS's CloudTrail examples show it: the
// keyMaterialId of the key material each used (Encrypt, Decrypt,
// GenerateDataKey*, Secrets Manager's calls), ReEncrypt's
// destinationKeyMaterialId then sourceKeyMaterialId, none when the call
// failed or the key is asymmetric. Each id is the one the API answers
// (DescribeKey's CurrentKeyMaterialId, Decrypt's KeyMaterialId).
func TestAuditKeyMaterialID(t *testing.T) {
	srv := startAudited(t)
	c := srv.KMS()
	ctx := ctxT(t)
	current := func(keyID *string) string {
		t.Helper()
		d, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: keyID})
		mustNoErr(t, err, "DescribeKey")
		if aws.ToString(d.KeyMetadata.CurrentKeyMaterialId) == "" {
			t.Fatalf("DescribeKey %s: no CurrentKeyMaterialId", aws.ToString(keyID))
		}
		return aws.ToString(d.KeyMetadata.CurrentKeyMaterialId)
	}
	k1, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	mustNoErr(t, err, "CreateKey")
	k2, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	mustNoErr(t, err, "CreateKey")
	rsa, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeEncryptDecrypt})
	mustNoErr(t, err, "CreateKey RSA_2048")
	first := current(k1.KeyMetadata.KeyId)

	var want []string // eventName and the additionalEventData wanted, in order
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: k1.KeyMetadata.KeyId, Plaintext: []byte("one")})
	mustNoErr(t, err, "Encrypt")
	want = append(want, `Encrypt {"keyMaterialId":"`+first+`"}`)
	_, err = c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: k1.KeyMetadata.KeyId})
	mustNoErr(t, err, "RotateKeyOnDemand")
	second := current(k1.KeyMetadata.KeyId)
	if second == first {
		t.Fatal("RotateKeyOnDemand left the key's CurrentKeyMaterialId as it was")
	}
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: k1.KeyMetadata.KeyId, Plaintext: []byte("two")})
	mustNoErr(t, err, "Encrypt after the rotation")
	want = append(want, `Encrypt {"keyMaterialId":"`+second+`"}`)
	dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	mustNoErr(t, err, "Decrypt")
	if aws.ToString(dec.KeyMaterialId) != first {
		t.Errorf("Decrypt's KeyMaterialId = %s, want the first material %s", aws.ToString(dec.KeyMaterialId), first)
	}
	want = append(want, `Decrypt {"keyMaterialId":"`+first+`"}`)
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"wrong": "context"}})
	wantAPIError(t, err, "InvalidCiphertextException", "")
	want = append(want, "Decrypt null")
	gdk, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: k2.KeyMetadata.KeyId, KeySpec: types.DataKeySpecAes256})
	mustNoErr(t, err, "GenerateDataKey")
	k2mat := current(k2.KeyMetadata.KeyId)
	if aws.ToString(gdk.KeyMaterialId) != k2mat {
		t.Errorf("GenerateDataKey's KeyMaterialId = %s, want %s", aws.ToString(gdk.KeyMaterialId), k2mat)
	}
	want = append(want, `GenerateDataKey {"keyMaterialId":"`+k2mat+`"}`)
	_, err = c.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: k2.KeyMetadata.KeyId, KeySpec: types.DataKeySpecAes128})
	mustNoErr(t, err, "GenerateDataKeyWithoutPlaintext")
	want = append(want, `GenerateDataKeyWithoutPlaintext {"keyMaterialId":"`+k2mat+`"}`)
	_, err = c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: k2.KeyMetadata.KeyId})
	mustNoErr(t, err, "ReEncrypt")
	want = append(want, `ReEncrypt {"destinationKeyMaterialId":"`+k2mat+`","sourceKeyMaterialId":"`+first+`"}`)
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: rsa.KeyMetadata.KeyId, Plaintext: []byte("rsa"), EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
	mustNoErr(t, err, "Encrypt RSA")
	want = append(want, "Encrypt null")

	sm := srv.SecretsManager()
	_, err = sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("material"), KmsKeyId: k2.KeyMetadata.Arn, SecretString: aws.String("v")})
	mustNoErr(t, err, "CreateSecret")
	want = append(want, `GenerateDataKey {"keyMaterialId":"`+k2mat+`"}`)
	for range 2 { // the second read uses the data key the first opened
		_, err = sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("material")})
		mustNoErr(t, err, "GetSecretValue")
		want = append(want, `Decrypt {"keyMaterialId":"`+k2mat+`"}`)
	}

	var got []string
	for _, e := range readAudit(t, srv) {
		switch e.EventName {
		case "Encrypt", "Decrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncrypt":
			data := string(e.AdditionalEventData)
			if data == "" {
				data = "null"
			}
			got = append(got, e.EventName+" "+data)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("events and their additionalEventData:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
