#!/usr/bin/env bash
# Manual interop check: OpenTofu's state and plan encryption with the aws_kms
# key provider, through Keyfort. NOT run by CI.
#
#   TOFU=/path/to/tofu e2e/interop/tofu.sh            # KEEP=1 keeps the temp dir
#   STRICT=1 TOFU=/path/to/tofu e2e/interop/tofu.sh   # keyfort in strict auth mode
#
# TOFU is an OpenTofu binary (1.7 or later). The Go module proxy serves
# github.com/opentofu/opentofu, but `go install` refuses it (its go.mod has a
# replace directive); build it from the module's source instead (README).
# Needs: Go (builds keyfort), the AWS CLI, curl, python3.
# Everything happens in a fresh temp dir; the server is stopped on exit. Every
# check prints a PASS line. Exit status: 0 all passed; 1 a check failed (stops
# at once, prints the server log's tail); 3 every check passed but Keyfort
# answered differently from AWS in a way an OpenTofu user sees (DEVIATION
# lines). See e2e/interop/README.md.
set -euo pipefail

[ -n "${TOFU:-}" ] && [ -x "$TOFU" ] || { echo "FAIL: set TOFU to an OpenTofu binary" >&2; exit 1; }

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" tofu go aws curl python3

export GOTOOLCHAIN=local
build_keyfort
# No CLI configuration of the user's (this machine may name one).
: >"$WORK/tofurc"
export TF_CLI_CONFIG_FILE="$WORK/tofurc"
pass "$("$TOFU" version | head -n 1)"
start_keyfort_mode
isolate_env_strict
# The key provider's AWS configuration has no KMS endpoint setting: the SDK
# takes it from AWS_ENDPOINT_URL_KMS. Its credentials check calls STS
# GetCallerIdentity, which Keyfort serves (AWS_ENDPOINT_URL_STS).
export AWS_ENDPOINT_URL_KMS=$ENDPOINT AWS_ENDPOINT_URL_STS=$ENDPOINT
export TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
mkdir -p "$WORK/project"
cd "$WORK/project"

# config KEY_ID [KEY_SPEC]: a project whose state and plans must be encrypted
# with the aws_kms key provider on KEY_ID.
config() {
	cat >main.tf <<HCL
terraform {
  encryption {
    key_provider "aws_kms" "keyfort" {
      kms_key_id = "$1"
      region     = "us-east-1"
      key_spec   = "${2:-AES_256}"
    }
    method "aes_gcm" "default" {
      keys = key_provider.aws_kms.keyfort
    }
    state {
      method   = method.aes_gcm.default
      enforced = true
    }
    plan {
      method   = method.aes_gcm.default
      enforced = true
    }
  }
}

variable "token" {
  type    = string
  default = "keyfort-interop-secret-$SECRET_MARK"
}

resource "terraform_data" "app" {
  input = { token = var.token, revision = var.revision }
}

variable "revision" {
  type    = number
  default = 1
}

output "token" {
  value     = terraform_data.app.output.token
  sensitive = true
}
HCL
}
tf() { "$TOFU" "$1" -no-color "${@:2}" >"$WORK/tofu.out" 2>&1; }
must_tf() { tf "$@" || fail "tofu $*: $(tail -n 20 "$WORK/tofu.out")"; }
# the_error: what tofu printed as its error, on one line (it wraps lines
# in a box).
the_error() { sed 's/[│╷╵]//g' "$WORK/tofu.out" | tr '\n' ' ' | sed 's/  */ /g'; }
# state_blob: the KMS CiphertextBlob the state's key provider metadata holds.
state_blob() {
	python3 - "$1" <<'PY'
import base64, json, sys
s = json.load(open(sys.argv[1]))
assert s.get("encryption_version") == "v0" and s.get("encrypted_data"), sorted(s)
meta = s["meta"]["key_provider.aws_kms.keyfort"]
meta = json.loads(base64.b64decode(meta)) if isinstance(meta, str) else meta
sys.stdout.buffer.write(base64.b64decode(meta["ciphertext_blob"]))
PY
}
SECRET_MARK=$(python3 -c 'import secrets; print(secrets.token_hex(8))')

# ---- 1. apply, plan, output through the key's alias -------------------------
echo "== 1. encrypted state and plan"
K1=$(kf kms create-key --description "opentofu state" --query KeyMetadata.Arn --output text)
kf kms create-alias --alias-name alias/tofu-state --target-key-id "$K1"
config alias/tofu-state
must_tf init
must_tf apply -auto-approve
grep -q "keyfort-interop-secret-$SECRET_MARK" terraform.tfstate && fail "the state file holds the value in clear"
state_blob terraform.tfstate >"$WORK/blob1"
pass "tofu apply with kms_key_id = alias/tofu-state: terraform.tfstate is encrypted (encryption_version v0, the key provider's metadata holds a KMS blob); the value is not in it"
kf kms decrypt --ciphertext-blob "fileb://$WORK/blob1" --query KeyId --output text >"$WORK/blob1.key"
[ "$(cat "$WORK/blob1.key")" = "$K1" ] || fail "the state's data key blob is not under the key: $(cat "$WORK/blob1.key")"
kf kms decrypt --ciphertext-blob "fileb://$WORK/blob1" --query Plaintext --output text | base64 -d | wc -c >"$WORK/dk.len"
[ "$(tr -d ' ' <"$WORK/dk.len")" = 32 ] || fail "data key length $(cat "$WORK/dk.len")"
pass "the state's blob is the key's GenerateDataKey output (AES_256: 32 bytes; the AWS CLI decrypts it)"
must_tf plan -detailed-exitcode
grep -q "No changes" "$WORK/tofu.out" || fail "plan after apply: $(tail -5 "$WORK/tofu.out")"
must_tf output -raw token
[ "$(cat "$WORK/tofu.out")" = "keyfort-interop-secret-$SECRET_MARK" ] || fail "tofu output: $(cat "$WORK/tofu.out")"
pass "tofu plan reads the state (Decrypt with KeyId = the alias name): no changes; tofu output gives the value back"

must_tf plan -var revision=2 -out=plan.tfplan
python3 - plan.tfplan "$SECRET_MARK" <<'PY' || fail "the plan file is not encrypted"
import sys
b = open(sys.argv[1], "rb").read()
assert not b.startswith(b"PK"), "the plan file is a plain zip"
assert sys.argv[2].encode() not in b
PY
must_tf apply -auto-approve plan.tfplan
state_blob terraform.tfstate >"$WORK/blob2"
cmp -s "$WORK/blob1" "$WORK/blob2" && fail "the new state reused the data key"
pass "tofu plan -out writes an encrypted plan, tofu apply of it reads it; the new state has a new data key (a GenerateDataKey per write)"

# ---- 2. the key as the user changes it -------------------------------------
echo "== 2. key ARN, AES_128, disabled key, restart"
config "$K1"
must_tf plan -var revision=2 -detailed-exitcode
pass "kms_key_id = the key ARN reads the state written through the alias"
config "$K1" AES_128
must_tf apply -auto-approve -var revision=3
state_blob terraform.tfstate >"$WORK/blob3"
kf kms decrypt --ciphertext-blob "fileb://$WORK/blob3" --query Plaintext --output text | base64 -d | wc -c >"$WORK/dk.len"
[ "$(tr -d ' ' <"$WORK/dk.len")" = 16 ] || fail "AES_128 data key length $(cat "$WORK/dk.len")"
pass "key_spec = AES_128: a 16-byte data key, state written and read"

kf kms disable-key --key-id "$K1"
tf plan -var revision=3 && fail "tofu plan worked with the key disabled"
got=$(the_error)
case "$got" in
*"DisabledException: $K1 is disabled."*) pass "key disabled: tofu plan fails, showing DisabledException: $K1 is disabled." ;;
*) deviation "key disabled: tofu printed '$got', AWS answers DisabledException: <key ARN> is disabled." ;;
esac
kf kms enable-key --key-id "$K1"

K2=$(kf kms create-key --query KeyMetadata.Arn --output text)
kf kms update-alias --alias-name alias/tofu-state --target-key-id "$K2"
config alias/tofu-state AES_128
tf plan -var revision=3 && fail "tofu plan decrypted a state of $K1 through an alias now on $K2"
got=$(the_error)
case "$got" in
*"IncorrectKeyException: The key ID in the request does not identify a CMK that can perform this operation."*)
	pass "alias moved to another key: Decrypt with the alias is IncorrectKeyException (AWS's text), tofu plan fails" ;;
*) deviation "alias moved: tofu printed '$got', AWS answers IncorrectKeyException: The key ID in the request does not identify a CMK that can perform this operation." ;;
esac
config "$K1" AES_128
stop_server
start_keyfort "${AUTH[@]}"
must_tf plan -var revision=3 -detailed-exitcode
pass "Keyfort restarted on its data: tofu plan reads the state"

# ---- 3. strict mode: a wrong secret ----------------------------------------
if [ "${STRICT:-0}" = 1 ]; then
	echo "== 3. strict: a wrong secret"
	AWS_SECRET_ACCESS_KEY=wrong-secret tf plan -var revision=3 && fail "tofu plan worked with a wrong secret"
	got=$(the_error)
	# The key provider first checks its credentials with STS
	# GetCallerIdentity (Query protocol): AWS's code there is
	# SignatureDoesNotMatch.
	want="SignatureDoesNotMatch: The request signature we calculated does not match the signature you provided."
	case "$got" in
	*"GetCallerIdentity"*"$want"*) pass "a wrong secret: tofu fails at its STS credentials check with $want" ;;
	*) deviation "wrong secret: tofu printed '$got', AWS's STS answers $want" ;;
	esac
	# Without that check the first call is KMS's (JSON protocol).
	sed -i 's/^      key_spec   = .*/&\n      skip_credentials_validation = true/' main.tf
	AWS_SECRET_ACCESS_KEY=wrong-secret tf plan -var revision=3 && fail "tofu plan worked with a wrong secret"
	got=$(the_error)
	want="InvalidSignatureException: The request signature we calculated does not match the signature you provided."
	case "$got" in
	*"GenerateDataKey"*"$want"*) pass "a wrong secret, skip_credentials_validation = true: tofu fails at GenerateDataKey with $want" ;;
	*) deviation "wrong secret at KMS: tofu printed '$got', AWS's KMS answers $want" ;;
	esac
	grep -q skip_credentials_validation main.tf || fail "main.tf was not changed"
fi

# ---- CloudTrail ---------------------------------------------------------------
echo "== CloudTrail"
: >"$WORK/trail.jsonl"
trail_events "$WORK/trail.jsonl" GenerateDataKey Decrypt GetCallerIdentity
python3 - "$WORK/trail.jsonl" "$K1" "${STRICT:-0}" <<'PY' || fail "CloudTrail events of tofu's calls"
import collections, json, sys
events = [json.loads(l) for l in open(sys.argv[1])]
key, strict = sys.argv[2], sys.argv[3] == "1"
tofu = [e for e in events if "OpenTofu" in e.get("userAgent", "") or "opentofu" in e.get("userAgent", "").lower()]
count = collections.Counter((e["eventName"], e.get("errorCode", "")) for e in tofu)
specs = collections.Counter(e["requestParameters"].get("keySpec") for e in tofu if e["eventName"] == "GenerateDataKey")
# The key provider calls GenerateDataKey before Decrypt: a disabled key stops it there.
for want in [("GenerateDataKey", ""), ("Decrypt", ""), ("GenerateDataKey", "DisabledException"), ("Decrypt", "IncorrectKeyException")]:
    assert count[want] > 0, (want, count)
assert specs["AES_256"] and specs["AES_128"], specs
for e in tofu:
    if strict and not e.get("errorCode"):
        assert e["userIdentity"]["arn"] == "arn:aws:iam::123456789012:user/interop", e["userIdentity"]
print("PASS: CloudTrail, tofu's calls (user agent names OpenTofu): " + ", ".join(f"{n}{' ' + c if c else ''} {k}" for (n, c), k in sorted(count.items())) +
      f"; GenerateDataKey keySpec {dict(specs)}")
PY
finish
