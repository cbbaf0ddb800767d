package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyfort/keyfort/internal/keyfortest"
)

// tfPluginsDefault is the filesystem mirror of Terraform providers on the
// CI machines (KEYFORT_TF_PLUGINS overrides it); it must hold
// registry.terraform.io/hashicorp/aws/5.100.0.
const tfPluginsDefault = "/opt/tf-plugins"

// tfMain is the configuration TestTerraform applies: the AWS provider
// pointed at Keyfort for KMS, Secrets Manager and STS, with credential
// validation (STS GetCallerIdentity) and the account id lookup left on.
const tfMain = `terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }
}

variable "endpoint" { type = string }

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "` + keyfortest.DefaultAccessKey + `"
  secret_key                  = "` + keyfortest.DefaultSecretKey + `"
  skip_metadata_api_check     = true
  skip_region_validation      = true
  endpoints {
    kms            = var.endpoint
    secretsmanager = var.endpoint
    sts            = var.endpoint
  }
}

data "aws_caller_identity" "me" {}

resource "aws_kms_key" "k" {
  description             = "terraform test key"
  deletion_window_in_days = 7
  enable_key_rotation     = true
  tags                    = { team = "blue" }
}

resource "aws_kms_alias" "a" {
  name          = "alias/terraform-test"
  target_key_id = aws_kms_key.k.key_id
}

resource "aws_kms_grant" "g" {
  name              = "terraform-grant"
  key_id            = aws_kms_key.k.key_id
  grantee_principal = "arn:aws:iam::${data.aws_caller_identity.me.account_id}:root"
  operations        = ["Encrypt", "Decrypt", "GenerateDataKey"]
}

resource "aws_secretsmanager_secret" "s" {
  name                    = "terraform/test"
  description             = "terraform test secret"
  kms_key_id              = aws_kms_key.k.arn
  recovery_window_in_days = 7
  tags                    = { team = "blue" }
}

resource "aws_secretsmanager_secret_version" "v" {
  secret_id     = aws_secretsmanager_secret.s.id
  secret_string = jsonencode({ password = "terraform-test" })
}

output "account_id" { value = data.aws_caller_identity.me.account_id }
output "caller_arn" { value = data.aws_caller_identity.me.arn }
output "key_id" { value = aws_kms_key.k.key_id }
output "alias_arn" { value = aws_kms_alias.a.arn }
output "grant_id" { value = aws_kms_grant.g.grant_id }
output "secret_arn" { value = aws_secretsmanager_secret.s.arn }
`

// TestTerraform runs terraform init, apply, a second plan (no drift) and
// destroy with the Terraform AWS provider 5.100.0 from a filesystem mirror
// (no network) against a Keyfort server, over a key, an alias, a grant, a
// secret and its version; the SDK checks what exists after apply and after
// destroy. It is skipped only when the terraform command is absent.
func TestTerraform(t *testing.T) {
	tf, err := exec.LookPath("terraform")
	if err != nil {
		t.Skip("terraform is not installed")
	}
	plugins := tfPluginsDefault
	if p := os.Getenv("KEYFORT_TF_PLUGINS"); p != "" {
		plugins = p
	}
	if _, err := os.Stat(filepath.Join(plugins, "registry.terraform.io/hashicorp/aws/5.100.0")); err != nil {
		t.Fatalf("the Terraform AWS provider 5.100.0 is not in the filesystem mirror %s (KEYFORT_TF_PLUGINS): %v", plugins, err)
	}
	srv := keyfortest.Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	home := filepath.Join(dir, "home")
	for _, d := range []string{work, home} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	cliConfig := filepath.Join(dir, "terraform.rc")
	writeFile(t, cliConfig, `provider_installation {
  filesystem_mirror {
    path    = "`+plugins+`"
    include = ["registry.terraform.io/hashicorp/aws"]
  }
}
`)
	writeFile(t, filepath.Join(work, "main.tf"), tfMain)
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"TF_CLI_CONFIG_FILE=" + cliConfig,
		"TF_IN_AUTOMATION=1",
		"TF_INPUT=0",
		"CHECKPOINT_DISABLE=1",
		"TF_VAR_endpoint=" + srv.URL,
		"AWS_CONFIG_FILE=" + filepath.Join(home, "none"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none"),
		"AWS_EC2_METADATA_DISABLED=true",
	}
	if l := os.Getenv("KEYFORT_TF_LOG"); l != "" { // e.g. KEYFORT_TF_LOG=/tmp/tf.log: the provider's debug log
		env = append(env, "TF_LOG=DEBUG", "TF_LOG_PATH="+l)
	}
	run := func(wantExit int, args ...string) string {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		start := time.Now()
		cmd := exec.CommandContext(cctx, tf, append(args, "-no-color")...)
		cmd.Dir, cmd.Env = work, env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		exit := 0
		if ee, ok := err.(*exec.ExitError); ok {
			exit = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("terraform %s: %v", args[0], err)
		}
		t.Logf("terraform %s: exit %d in %v", args[0], exit, time.Since(start).Round(10*time.Millisecond))
		if exit != wantExit {
			t.Fatalf("terraform %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), exit, wantExit,
				stdout.String(), stderr.String())
		}
		return stdout.String()
	}

	run(0, "init", "-input=false")
	// The provider (700 MB) takes 3-5 s to start, and terraform starts it
	// several times per command: one started here in debug mode serves
	// them all (TF_REATTACH_PROVIDERS), which halves the test's time.
	env = append(env, "TF_REATTACH_PROVIDERS="+startProvider(t, ctx, filepath.Join(work, ".terraform/providers/registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64/terraform-provider-aws_v5.100.0_x5"), env))
	run(0, "apply", "-auto-approve", "-input=false")
	var outputs map[string]struct{ Value string }
	if err := json.Unmarshal([]byte(run(0, "output", "-json")), &outputs); err != nil {
		t.Fatal(err)
	}
	if outputs["account_id"].Value != "123456789012" || outputs["caller_arn"].Value != "arn:aws:iam::123456789012:root" {
		t.Errorf("caller identity: %+v", outputs)
	}
	keyID, secretARN := outputs["key_id"].Value, outputs["secret_arn"].Value

	km, sm := srv.KMS(), srv.SecretsManager()
	desc, err := km.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/terraform-test")})
	mustNoErr(t, err, "DescribeKey alias/terraform-test")
	if aws.ToString(desc.KeyMetadata.KeyId) != keyID || desc.KeyMetadata.KeyState != kmstypes.KeyStateEnabled {
		t.Errorf("alias/terraform-test: key %s state %s, want %s Enabled", aws.ToString(desc.KeyMetadata.KeyId), desc.KeyMetadata.KeyState, keyID)
	}
	rot, err := km.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(keyID)})
	mustNoErr(t, err, "GetKeyRotationStatus")
	if !rot.KeyRotationEnabled {
		t.Error("key rotation is not enabled")
	}
	grants, err := km.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(keyID)})
	mustNoErr(t, err, "ListGrants")
	if len(grants.Grants) != 1 || aws.ToString(grants.Grants[0].GrantId) != outputs["grant_id"].Value ||
		aws.ToString(grants.Grants[0].Name) != "terraform-grant" {
		t.Errorf("grants = %+v, want the grant %s", grants.Grants, outputs["grant_id"].Value)
	}
	val, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretARN)})
	mustNoErr(t, err, "GetSecretValue")
	if aws.ToString(val.SecretString) != `{"password":"terraform-test"}` {
		t.Errorf("secret value = %q", aws.ToString(val.SecretString))
	}

	// A second plan sees no difference (exit 0; 2 would mean drift).
	run(0, "plan", "-detailed-exitcode", "-input=false")
	// The plan above refreshed every resource: destroy need not again.
	run(0, "destroy", "-auto-approve", "-input=false", "-refresh=false")

	desc, err = km.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
	mustNoErr(t, err, "DescribeKey after destroy")
	if desc.KeyMetadata.KeyState != kmstypes.KeyStatePendingDeletion {
		t.Errorf("key state after destroy = %s, want PendingDeletion", desc.KeyMetadata.KeyState)
	}
	_, err = km.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/terraform-test")})
	wantAPIError(t, err, "NotFoundException", "")
	grants, err = km.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(keyID)})
	mustNoErr(t, err, "ListGrants after destroy")
	if len(grants.Grants) != 0 {
		t.Errorf("grants after destroy = %+v", grants.Grants)
	}
	ds, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(secretARN)})
	mustNoErr(t, err, "DescribeSecret after destroy")
	if ds.DeletedDate == nil {
		t.Error("the secret is not scheduled for deletion after destroy")
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startProvider starts the provider binary in debug mode for the test's
// duration and returns the TF_REATTACH_PROVIDERS value it prints.
func startProvider(t *testing.T, ctx context.Context, bin string, env []string) string {
	t.Helper()
	cmd := exec.Command(bin, "-debug")
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the provider: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	found := make(chan string, 1)
	go func() {
		defer close(found)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if v, ok := strings.CutPrefix(line, "TF_REATTACH_PROVIDERS='"); ok {
				found <- strings.TrimSuffix(v, "'")
				_, _ = io.Copy(io.Discard, stdout)
				return
			}
		}
	}()
	select {
	case v, ok := <-found:
		if !ok || v == "" {
			t.Fatalf("the provider printed no TF_REATTACH_PROVIDERS; stderr:\n%s", stderr.String())
		}
		return v
	case <-time.After(time.Minute):
		t.Fatal("the provider did not start within a minute")
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	return ""
}
