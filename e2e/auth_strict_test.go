package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/keyfort/keyfort/internal/keyfortest"
)

// The account roots of the signature tests (authorization of other
// principals is tested in authz_strict_test.go).
const (
	sigAccount    = "444455556666"
	sigRootKey    = "AKIASIGROOT000000001"
	sigTokenKey   = "ASIASIGROOT000000001"
	sigTokenKeyS  = "token-key-secret"
	sigToken      = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN"
	sigOtherAcct  = "777788889999"
	sigOtherKey   = "AKIASIGOTHER00000001"
	sigBadKeyText = "The security token included in the request is invalid."
)

const sigCredentials = `principals:
  - arn: arn:aws:iam::` + sigAccount + `:root
    access_keys:
      - id: ` + sigRootKey + `
        secret: ` + keyfortest.DefaultSecretKey + `
      - id: ` + sigTokenKey + `
        secret: ` + sigTokenKeyS + `
        session_token: ` + sigToken + `
  - arn: arn:aws:iam::` + sigOtherAcct + `:root
    access_keys:
      - {id: ` + sigOtherKey + `, secret: other-secret}
`

// wantStatus400 asserts that err came with HTTP status 400.
func wantStatus400(t *testing.T, err error) {
	t.Helper()
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != 400 {
		t.Errorf("error %v: want HTTP 400", err)
	}
}

// TestStrictAuthSignatures drives a strict-auth server with the SDK:
// correctly signed requests of an account root succeed in its account;
// unknown keys, wrong secrets and missing or wrong session tokens are
// refused with AWS's codes and texts.
func TestStrictAuthSignatures(t *testing.T) {
	srv := keyfortest.Start(t, keyfortest.WithCredentials(sigCredentials))
	ctx := ctxT(t)
	kmsAs := func(id, secret, token string) *kms.Client {
		return kms.NewFromConfig(srv.AWSConfigFor(id, secret, token, "eu-west-1"))
	}

	t.Run("root signs KMS and Secrets Manager requests", func(t *testing.T) {
		out, err := srv.KMSAs(sigRootKey, "eu-west-1").CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("strict")})
		mustNoErr(t, err, "CreateKey")
		if got := aws.ToString(out.KeyMetadata.AWSAccountId); got != sigAccount {
			t.Errorf("CreateKey account = %s, want %s", got, sigAccount)
		}
		if arn := aws.ToString(out.KeyMetadata.Arn); !strings.HasPrefix(arn, "arn:aws:kms:eu-west-1:"+sigAccount+":key/") {
			t.Errorf("CreateKey ARN = %s, want a key of %s in eu-west-1", arn, sigAccount)
		}
		_, err = srv.SecretsManagerAs(sigRootKey, "eu-west-1").ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
		mustNoErr(t, err, "ListSecrets")
		// Another account's root does not see the key.
		_, err = kms.NewFromConfig(srv.AWSConfigFor(sigOtherKey, "other-secret", "", "eu-west-1")).
			DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: out.KeyMetadata.KeyId})
		wantAPIError(t, err, "NotFoundException", "")
	})

	t.Run("unknown access key", func(t *testing.T) {
		_, err := kmsAs("AKIAUNKNOWN000000001", keyfortest.DefaultSecretKey, "").ListKeys(ctx, &kms.ListKeysInput{})
		wantExactAPIError(t, err, "UnrecognizedClientException", sigBadKeyText)
		wantStatus400(t, err)
		_, err = secretsmanager.NewFromConfig(srv.AWSConfigFor("AKIAUNKNOWN000000001", "x", "", "eu-west-1")).
			ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
		wantExactAPIError(t, err, "UnrecognizedClientException", sigBadKeyText)
	})

	t.Run("wrong secret", func(t *testing.T) {
		_, err := kmsAs(sigRootKey, "not-the-secret", "").ListKeys(ctx, &kms.ListKeysInput{})
		wantAPIError(t, err, "InvalidSignatureException",
			"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\nThe Canonical String for this request should have been\n'POST\n/\n\n")
		wantStatus400(t, err)
		if ae := apiMessage(err); strings.Contains(ae, "not-the-secret") || strings.Contains(ae, keyfortest.DefaultSecretKey) {
			t.Errorf("the mismatch message quotes a secret: %q", ae)
		}
	})

	t.Run("session token", func(t *testing.T) {
		_, err := kmsAs(sigTokenKey, sigTokenKeyS, sigToken).ListKeys(ctx, &kms.ListKeysInput{})
		mustNoErr(t, err, "ListKeys with the session token")
		_, err = kmsAs(sigTokenKey, sigTokenKeyS, "").ListKeys(ctx, &kms.ListKeysInput{})
		wantExactAPIError(t, err, "UnrecognizedClientException", sigBadKeyText)
		_, err = kmsAs(sigTokenKey, sigTokenKeyS, sigToken+"x").ListKeys(ctx, &kms.ListKeysInput{})
		wantExactAPIError(t, err, "UnrecognizedClientException", sigBadKeyText)
		_, err = kmsAs(sigRootKey, keyfortest.DefaultSecretKey, sigToken).ListKeys(ctx, &kms.ListKeysInput{})
		wantExactAPIError(t, err, "UnrecognizedClientException", sigBadKeyText)
	})

	t.Run("expired date", func(t *testing.T) {
		signedAt := time.Now().UTC().Add(-20 * time.Minute)
		status, body := sigRawCall(t, srv, sigRootKey, keyfortest.DefaultSecretKey, signedAt)
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("response %s: %v", body, err)
		}
		want := "Signature expired: " + signedAt.Format("20060102T150405Z") + " is now earlier than "
		if status != 400 || e.Type != "InvalidSignatureException" || !strings.HasPrefix(e.Message, want) || !strings.HasSuffix(e.Message, " - 15 min.)") {
			t.Errorf("request signed 20 minutes ago = %d %s, want 400 InvalidSignatureException %q...(... - 15 min.)", status, body, want)
		}
		// The same request signed now passes.
		if status, body := sigRawCall(t, srv, sigRootKey, keyfortest.DefaultSecretKey, time.Now()); status != 200 {
			t.Errorf("request signed now = %d %s, want 200", status, body)
		}
	})
}

// sigRawCall sends KMS ListKeys signed by the SDK's v4 signer at signedAt
// and returns the status and body.
func sigRawCall(t *testing.T, srv *keyfortest.Server, id, secret string, signedAt time.Time) (int, []byte) {
	t.Helper()
	body := []byte("{}")
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, srv.URL+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "TrentService.ListKeys")
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(ctxT(t), creds, req, hex.EncodeToString(sum[:]), "kms", "eu-west-1", signedAt); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, raw
}

// apiMessage returns the message of an API error, or err's text.
func apiMessage(err error) string {
	var ae interface{ ErrorMessage() string }
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return err.Error()
}
