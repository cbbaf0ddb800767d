#!/usr/bin/env bash
# Manual interop check: Pulumi's `awskms://` secrets provider (the Go CDK's
# gocloud.dev/secrets/awskms) through Keyfort: a stack's data key and its
# secret configuration. NOT run by CI.
#
#   PULUMI=/path/to/pulumi e2e/interop/pulumi.sh            # KEEP=1 keeps the temp dir
#   STRICT=1 PULUMI=/path/to/pulumi e2e/interop/pulumi.sh   # keyfort in strict auth mode
#
# PULUMI is a Pulumi CLI binary. The Go module proxy serves
# github.com/pulumi/pulumi/pkg/v3, but its go.mod replaces the sdk module with
# ../sdk: build it from the two modules' sources (README). No Pulumi program
# runs (no language plugin is needed): the checks are the stack and
# configuration commands, with a local file backend.
# Needs: Go (builds keyfort), the AWS CLI, curl, python3.
# Everything happens in a fresh temp dir; the server is stopped on exit. Every
# check prints a PASS line. Exit status: 0 all passed; 1 a check failed (stops
# at once, prints the server log's tail); 3 every check passed but Keyfort
# answered differently from AWS in a way a Pulumi user sees (DEVIATION lines).
# See e2e/interop/README.md.
set -euo pipefail

[ -n "${PULUMI:-}" ] && [ -x "$PULUMI" ] || { echo "FAIL: set PULUMI to a Pulumi CLI binary" >&2; exit 1; }

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" pulumi go aws curl python3

export GOTOOLCHAIN=local
build_keyfort
start_keyfort_mode
isolate_env_strict
# A local backend, no update checks, no plugin downloads, Pulumi's state and
# home in the temp dir.
export PULUMI_HOME="$WORK/pulumi-home" PULUMI_BACKEND_URL="file://$WORK/state"
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true PULUMI_SKIP_CONFIRMATIONS=true
mkdir -p "$WORK/state" "$WORK/project"
cd "$WORK/project"
printf 'name: kfinterop\nruntime: yaml\n' >Pulumi.yaml
ver=$("$PULUMI" version 2>/dev/null || true)
pass "Pulumi CLI ${ver:-(a source build names no version)} with a file backend"

pl() { "$PULUMI" --non-interactive --color never "$@" >"$WORK/pulumi.out" 2>&1; }
must_pl() { pl "$@" || fail "pulumi $*: $(tail -n 5 "$WORK/pulumi.out")"; }
the_error() { tr '\n' ' ' <"$WORK/pulumi.out" | sed 's/  */ /g'; }
# encrypted_key STACK: the stack's data key blob (Pulumi.STACK.yaml's encryptedkey).
encrypted_key() { sed -n 's/^encryptedkey: //p' "Pulumi.$1.yaml" | base64 -d; }
# expect_error WHAT CODE TEXT: the last pulumi command failed showing CODE: TEXT.
expect_error() {
	local got
	got=$(the_error)
	case "$got" in
	*"$2: $3"*) pass "$1: pulumi fails, showing $2: $3" ;;
	*) deviation "$1: pulumi printed '$got', AWS answers $2: $3" ;;
	esac
}
# The Go CDK takes the endpoint, region and encryption context from the URL.
url() { echo "awskms://$1?region=us-east-1&endpoint=$ENDPOINT&context_project=kfinterop"; }

# ---- 1. a stack on an alias, secret configuration -----------------------
echo "== 1. stack init and secret configuration"
K1=$(kf kms create-key --description "pulumi secrets" --query KeyMetadata.Arn --output text)
kf kms create-alias --alias-name alias/pulumi-secrets --target-key-id "$K1"
must_pl stack init dev --secrets-provider "$(url alias/pulumi-secrets)"
grep -q '^secretsprovider: awskms://alias/pulumi-secrets' Pulumi.dev.yaml || fail "Pulumi.dev.yaml: $(cat Pulumi.dev.yaml)"
encrypted_key dev >"$WORK/dk.blob"
kf kms decrypt --ciphertext-blob "fileb://$WORK/dk.blob" --encryption-context project=kfinterop --output json >"$WORK/dk.json"
python3 - "$WORK/dk.json" "$K1" <<'PY' || fail "the stack's data key"
import base64, json, sys
d = json.load(open(sys.argv[1]))
assert d["KeyId"] == sys.argv[2], d["KeyId"]
assert len(base64.b64decode(d["Plaintext"])) == 32
PY
must_fail kf kms decrypt --ciphertext-blob "fileb://$WORK/dk.blob" || fail "the data key decrypted without its encryption context"
grep -q InvalidCiphertextException "$WORK/last.err" || fail "without context: $(cat "$WORK/last.err")"
pass "pulumi stack init with awskms://alias/pulumi-secrets: Pulumi.dev.yaml's encryptedkey is a KMS blob of the key (KMS Encrypt of a 32-byte data key) that decrypts only with context project=kfinterop"

SECRET="kf-pulumi-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
must_pl config set --secret dbPassword "$SECRET"
grep -q "$SECRET" Pulumi.dev.yaml && fail "Pulumi.dev.yaml holds the secret in clear"
grep -q 'secure: v1:' Pulumi.dev.yaml || fail "no secure value in Pulumi.dev.yaml"
must_pl config get dbPassword
[ "$(cat "$WORK/pulumi.out")" = "$SECRET" ] || fail "config get: $(cat "$WORK/pulumi.out")"
must_pl config --show-secrets --json
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["kfinterop:dbPassword"]["value"] == sys.argv[2] and d["kfinterop:dbPassword"]["secret"]' \
	"$WORK/pulumi.out" "$SECRET" || fail "config --show-secrets: $(cat "$WORK/pulumi.out")"
pass "pulumi config set --secret stores a secure value (not the secret); config get and config --show-secrets decrypt it (KMS Decrypt of the data key)"

# ---- 2. another key, states of the key ------------------------------------
echo "== 2. change-secrets-provider, a disabled key, a wrong context, a restart"
K2=$(kf kms create-key --description "pulumi secrets 2" --query KeyMetadata.Arn --output text)
must_pl stack change-secrets-provider "$(url "/$K2")"
encrypted_key dev >"$WORK/dk2.blob"
[ "$(kf kms decrypt --ciphertext-blob "fileb://$WORK/dk2.blob" --encryption-context project=kfinterop --query KeyId --output text)" = "$K2" ] ||
	fail "the new data key is not under $K2"
must_pl config get dbPassword
[ "$(cat "$WORK/pulumi.out")" = "$SECRET" ] || fail "config get after the change: $(cat "$WORK/pulumi.out")"
pass "pulumi stack change-secrets-provider awskms:///<key ARN>: a new data key under the second key; the secret reads back"

kf kms disable-key --key-id "$K2"
pl config get dbPassword && fail "config get worked with the key disabled"
expect_error "key disabled" DisabledException "$K2 is disabled."
kf kms enable-key --key-id "$K2"

sed -i 's/context_project=kfinterop/context_project=other/' Pulumi.dev.yaml
pl config get dbPassword && fail "config get worked under another encryption context"
expect_error "another encryption context in the URL" InvalidCiphertextException ""
sed -i 's/context_project=other/context_project=kfinterop/' Pulumi.dev.yaml

stop_server
start_keyfort "${AUTH[@]}"
must_pl config get dbPassword
[ "$(cat "$WORK/pulumi.out")" = "$SECRET" ] || fail "config get after restart"
pass "Keyfort restarted on its data: the secret reads back"

pl stack init prod --secrets-provider "$(url alias/pulumi-missing)" && fail "stack init worked with an unknown alias"
expect_error "stack init on an unknown alias" NotFoundException "Alias arn:aws:kms:us-east-1:123456789012:alias/pulumi-missing is not found."

# ---- 3. strict mode: a wrong secret ----------------------------------------
if [ "${STRICT:-0}" = 1 ]; then
	echo "== 3. strict: a wrong secret"
	AWS_SECRET_ACCESS_KEY=wrong-secret pl config get dbPassword && fail "config get worked with a wrong secret"
	expect_error "a wrong secret" InvalidSignatureException "The request signature we calculated does not match the signature you provided."
fi

# ---- CloudTrail ---------------------------------------------------------------
echo "== CloudTrail"
: >"$WORK/trail.jsonl"
trail_events "$WORK/trail.jsonl" Encrypt Decrypt
python3 - "$WORK/trail.jsonl" "${STRICT:-0}" <<'PY' || fail "CloudTrail events of pulumi's calls"
import collections, json, sys
events = [json.loads(l) for l in open(sys.argv[1])]
strict = sys.argv[2] == "1"
mine = [e for e in events if "aws-sdk-go-v2" in e.get("userAgent", "") and "aws-cli" not in e.get("userAgent", "")]
count = collections.Counter((e["eventName"], e.get("errorCode", "")) for e in mine)
for want in [("Encrypt", ""), ("Decrypt", ""), ("Decrypt", "DisabledException"), ("Decrypt", "InvalidCiphertextException")]:
    assert count[want] > 0, (want, count)
for e in mine:
    p = e["requestParameters"] or {}
    assert "plaintext" not in p, p
    if not e.get("errorCode") or e["errorCode"] != "InvalidCiphertextException":
        assert p.get("encryptionContext", {}).get("project") in ("kfinterop", None), p
    if strict:
        assert e["userIdentity"]["arn"] == "arn:aws:iam::123456789012:user/interop", e["userIdentity"]
print("PASS: CloudTrail, pulumi's calls: " + ", ".join(f"{n}{' ' + c if c else ''} {k}" for (n, c), k in sorted(count.items())))
PY
finish
