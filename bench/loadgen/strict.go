package main

// The strict-mode rows: a second keyfort process in --auth strict with a
// credentials file, driven by a principal whose identity policy allows
// what it does only on resources tagged with its team (a condition and a
// policy variable per request), beside the dev-mode rows of the same run.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

const (
	strictKeyID  = "AKIALOADGENAPP00001"
	strictSecret = "loadgen-app-secret"
)

// strictCredentials is the credentials file of the strict server: one IAM
// user of team blue whose policy allows using keys and reading secrets of
// its team (ABAC), so every request evaluates a condition with a policy
// variable, besides the key policy (default) and, for secrets, the AWS
// managed key's policy (kms:ViaService, kms:CallerAccount).
const strictCredentials = `principals:
  - arn: arn:aws:iam::111122223333:user/app
    access_keys:
      - {id: ` + strictKeyID + `, secret: ` + strictSecret + `}
    tags: {team: blue}
    policies:
      - |
        {"Version": "2012-10-17", "Statement": [
          {"Effect": "Allow", "Action": ["kms:CreateKey", "kms:TagResource", "secretsmanager:CreateSecret", "secretsmanager:TagResource"], "Resource": "*",
           "Condition": {"StringEquals": {"aws:RequestTag/team": "${aws:PrincipalTag/team}"}}},
          {"Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"], "Resource": "arn:aws:kms:*:111122223333:key/*",
           "Condition": {"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}}},
          {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "arn:aws:secretsmanager:*:111122223333:secret:bench/*",
           "Condition": {"StringEquals": {"secretsmanager:ResourceTag/team": "${aws:PrincipalTag/team}"}}}]}
`

// startStrictServer starts keyfort in strict mode with strictCredentials.
func startStrictServer(binary string) (*server, error) {
	var werr error
	s, err := startProcess(binary, func(addr, dir string) []string {
		path := filepath.Join(dir, "credentials.yaml")
		werr = os.WriteFile(path, []byte(strictCredentials), 0o600)
		return []string{"serve", "--listen", addr, "--data", filepath.Join(dir, "data"), "--log-level", "warn",
			"--auth", "strict", "--credentials", path}
	})
	if werr != nil {
		if s != nil {
			s.stop()
		}
		return nil, werr
	}
	return s, err
}

// strictOps seeds the strict server (a key and a secret of team blue) and
// returns its rows.
func strictOps(ctx context.Context, endpoint string, conc int) (map[string]func(ctx context.Context, w, i int) error, error) {
	tr := &http.Transport{MaxIdleConns: conc * 2, MaxIdleConnsPerHost: conc * 2, IdleConnTimeout: time.Minute}
	creds := credentials.NewStaticCredentialsProvider(strictKeyID, strictSecret, "")
	kc := kms.New(kms.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), Credentials: creds,
		Retryer: closedConnRetryer(), HTTPClient: &http.Client{Transport: tr}})
	sc := secretsmanager.New(secretsmanager.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), Credentials: creds,
		Retryer: closedConnRetryer(), HTTPClient: &http.Client{Transport: tr}})
	key, err := kc.CreateKey(ctx, &kms.CreateKeyInput{Tags: []types.Tag{{TagKey: aws.String("team"), TagValue: aws.String("blue")}}})
	if err != nil {
		return nil, fmt.Errorf("strict seed key: %w", err)
	}
	_, err = sc.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("bench/db"), SecretString: aws.String(fmt.Sprintf("%064d", 7)),
		Tags: []smtypes.Tag{{Key: aws.String("team"), Value: aws.String("blue")}}})
	if err != nil {
		return nil, fmt.Errorf("strict seed secret: %w", err)
	}
	keyID := key.KeyMetadata.KeyId
	return map[string]func(ctx context.Context, w, i int) error{
		"EncryptStrict": func(ctx context.Context, w, i int) error {
			_, err := kc.Encrypt(ctx, &kms.EncryptInput{KeyId: keyID, Plaintext: make([]byte, 64)})
			return err
		},
		"GetSecretValueStrict": func(ctx context.Context, w, i int) error {
			_, err := sc.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("bench/db")})
			return err
		},
	}, nil
}
