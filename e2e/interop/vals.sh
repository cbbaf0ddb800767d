#!/usr/bin/env bash
# Manual interop check: helmfile/vals reads Secrets Manager secrets
# (ref+awssecrets://) and decrypts KMS ciphertexts (ref+awskms://) held by
# Keyfort. NOT run by CI (CI has no vals).
#
#   VALS=/path/to/vals e2e/interop/vals.sh
#
# Needs: Go (builds keyfort from this repo), the AWS CLI, curl, python3 with
# PyYAML.
# Everything happens in a fresh temp dir (kept with KEEP=1); the server is
# stopped on exit. Every check prints a PASS line. Exit status: 0 all passed;
# 1 a check failed (stops at once); 3 every check passed but Keyfort answered
# differently from AWS in a way vals users see (printed as DEVIATION lines).
# See e2e/interop/README.md.
set -euo pipefail

: "${VALS:?set VALS to the path of a vals binary}"
[ -x "$VALS" ] || { echo "FAIL: VALS=$VALS is not executable" >&2; exit 1; }
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" vals go aws curl python3 base64 cmp od timeout
python3 -c 'import yaml' 2>/dev/null || { echo "FAIL: python3 has no yaml module (PyYAML)" >&2; exit 1; }

# ---- build and start keyfort (plain HTTP on loopback, dev auth) ------------
build_keyfort
start_keyfort
pass "$("$WORK/keyfort" version) serving HTTP on 127.0.0.1:$PORT"

# One environment for the AWS CLI and vals. vals (pkg/awsclicompat) builds
# its clients with config.LoadDefaultConfig of the AWS SDK for Go v2 and, when
# AWS_ENDPOINT_URL is set, its own endpoint resolver that sends every service
# there. Credentials come from the env (isolate_env, lib.sh, which also
# sends anything not meant for 127.0.0.1 to a closed local port).
isolate_env
unset FORCE_AWS_PROFILE AWS_SDK_GO_LOG_LEVEL
export AWS_ENDPOINT_URL="$ENDPOINT"

vals() { timeout 60 "$VALS" "$@"; }
VALS_VERSION=$(go version -m "$VALS" 2>/dev/null | awk '$1 == "mod" && $2 == "github.com/helmfile/vals" {print $3}')
pass "vals ${VALS_VERSION:-unknown} ($VALS)"

# last_err: vals' error line (the last line of stderr).
last_err() { tail -n 1 "$WORK/last.err"; }
# expect_err WHAT WANT CMD...: CMD fails and its last stderr line ends with
# " WANT" (the SDK's "<Code>: <Message>"). Anything else with the same code
# is a DEVIATION; another code fails.
expect_err() {
	local what=$1 want=$2
	shift 2
	must_fail "$@" || fail "$what: $* worked"
	local got
	got=$(last_err)
	case "$got" in
	*" $want") pass "$what: vals exits $LAST_RC with '$want'" ;;
	*" ${want%%:*}:"*)
		deviation "$what: vals shows '${got#*RequestID: *, }', AWS answers '$want'"
		;;
	*) cat "$WORK/last.err" >&2; fail "$what: want '$want'" ;;
	esac
}
# get_is WHAT WANT REF: vals get REF prints WANT exactly.
get_is() {
	local got
	got=$(vals get "$3" 2>"$WORK/last.err") || { cat "$WORK/last.err" >&2; fail "$1: vals get $3"; }
	[ "$got" = "$2" ] || fail "$1: vals get $3 = '$got', want '$2'"
}
# secret_arn NAME
secret_arn() { kf secretsmanager describe-secret --secret-id "$1" --query ARN --output text; }
# urlsafe: standard base64 on stdin to vals' URL-safe alphabet (README of vals).
urlsafe() { tr '/+' '_-'; }

# ---- 1. ref+awssecrets://: string, JSON member, binary ---------------------
echo "== 1. ref+awssecrets://NAME, #/json/key, SecretBinary"
PLAIN='kf-vals plain 7c1e: "quoted" = /+ ü'
kf secretsmanager create-secret --name interop/plain --secret-string "$PLAIN" >/dev/null
DOC='{"db": {"user": "kf-user-3a1f", "password": "kf-pw-9d2c"}, "port": 5432, "tls": true}'
kf secretsmanager create-secret --name interop/doc --secret-string "$DOC" >/dev/null
printf 'kf\000bin\377\001\n' >bin.want
kf secretsmanager create-secret --name interop/bin --secret-binary fileb://bin.want >/dev/null
PLAIN_ARN=$(secret_arn interop/plain)

get_is "1 string" "$PLAIN" "ref+awssecrets://interop/plain"
pass "vals get ref+awssecrets://interop/plain is the SecretString exactly ('$PLAIN')"
get_is "1 json" kf-user-3a1f "ref+awssecrets://interop/doc#/db/user"
get_is "1 json" kf-pw-9d2c "ref+awssecrets://interop/doc#/db/password"
get_is "1 json" 5432 "ref+awssecrets://interop/doc#/port"
pass "vals get ref+awssecrets://interop/doc#/db/user, #/db/password, #/port give the JSON members"
vals get "ref+awssecrets://interop/bin" >bin.got 2>"$WORK/last.err" || { cat "$WORK/last.err" >&2; fail "1 binary"; }
cmp -s bin.got bin.want || { od -c bin.got >&2; fail "1 binary: vals get differs from the SecretBinary"; }
pass "vals get ref+awssecrets://interop/bin is the SecretBinary byte for byte ($(wc -c <bin.want) bytes, NUL and 0xff included)"
get_is "1 arn" "$PLAIN" "ref+awssecrets://$PLAIN_ARN"
get_is "1 partial arn" "$PLAIN" "ref+awssecrets://${PLAIN_ARN%-??????}"
pass "vals get by the secret's ARN ($PLAIN_ARN) and by its ARN without the random suffix"
cat >doc.yaml <<EOF
plain: ref+awssecrets://interop/plain
user: ref+awssecrets://interop/doc#/db/user
port: ref+awssecrets://interop/doc#/port
nested:
  password: ref+awssecrets://interop/doc#/db/password
EOF
vals eval -f doc.yaml >doc.out.yaml 2>"$WORK/last.err" || { cat "$WORK/last.err" >&2; fail "1 eval"; }
python3 - "$PLAIN" <<'EOF' || { cat doc.out.yaml >&2; fail "1 eval: unexpected output"; }
import sys, yaml
got = yaml.safe_load(open("doc.out.yaml"))
want = {"plain": sys.argv[1], "user": "kf-user-3a1f", "port": 5432, "nested": {"password": "kf-pw-9d2c"}}
sys.exit(got != want)
EOF
pass "vals eval -f doc.yaml replaces the four refs (string, JSON members, a number kept a number)"

# ---- 2. version stage and version id ----------------------------------------
echo "== 2. ?version_stage= and ?version_id="
V1=$(kf secretsmanager describe-secret --secret-id interop/plain --query 'keys(VersionIdsToStages)[0]' --output text)
kf secretsmanager put-secret-value --secret-id interop/plain --secret-string kf-vals-v2 >/dev/null
V3=$(kf secretsmanager put-secret-value --secret-id interop/plain --secret-string kf-vals-v3-staged \
	--version-stages KFSTAGE --query VersionId --output text)
get_is "2 current" kf-vals-v2 "ref+awssecrets://interop/plain"
get_is "2 previous" "$PLAIN" "ref+awssecrets://interop/plain?version_stage=AWSPREVIOUS"
get_is "2 custom" kf-vals-v3-staged "ref+awssecrets://interop/plain?version_stage=KFSTAGE"
get_is "2 id" "$PLAIN" "ref+awssecrets://interop/plain?version_id=$V1"
get_is "2 id" kf-vals-v3-staged "ref+awssecrets://interop/plain?version_id=$V3"
get_is "2 both" kf-vals-v3-staged "ref+awssecrets://interop/plain?version_id=$V3&version_stage=KFSTAGE"
get_is "2 json stage" kf-user-3a1f "ref+awssecrets://interop/doc?version_stage=AWSCURRENT#/db/user"
pass "after two put-secret-value: no query gives AWSCURRENT, version_stage=AWSPREVIOUS the first value, version_stage=KFSTAGE and version_id=<id> theirs"

# ---- 3. Secrets Manager errors -----------------------------------------------
echo "== 3. Secrets Manager errors"
expect_err "3 missing secret" "ResourceNotFoundException: Secrets Manager can't find the specified secret." \
	vals get "ref+awssecrets://interop/missing"
expect_err "3 missing secret with #/key" "ResourceNotFoundException: Secrets Manager can't find the specified secret." \
	vals get "ref+awssecrets://interop/missing#/db/user"
expect_err "3 unknown stage" "ResourceNotFoundException: Secrets Manager can't find the specified secret value for staging label: NOSUCHSTAGE" \
	vals get "ref+awssecrets://interop/plain?version_stage=NOSUCHSTAGE"
NOID=00000000-0000-4000-8000-000000000000
expect_err "3 unknown version id" "ResourceNotFoundException: Secrets Manager can't find the specified secret value for VersionId: $NOID" \
	vals get "ref+awssecrets://interop/plain?version_id=$NOID"
expect_err "3 stage not on the version" "InvalidRequestException: You provided a VersionStage that is not associated to the provided VersionId." \
	vals get "ref+awssecrets://interop/plain?version_id=$V1&version_stage=AWSCURRENT"
expect_err "3 other region" "ResourceNotFoundException: Secrets Manager can't find the specified secret." \
	vals get "ref+awssecrets://interop/plain?region=eu-west-1"
kf secretsmanager create-secret --name interop/deleted --secret-string kf-deleted >/dev/null
DELETED_ARN=$(secret_arn interop/deleted)
kf secretsmanager delete-secret --secret-id interop/deleted >/dev/null
expect_err "3 deleted secret" "InvalidRequestException: You can't perform this operation on the secret because it was marked for deletion." \
	vals get "ref+awssecrets://interop/deleted"
kf secretsmanager restore-secret --secret-id interop/deleted >/dev/null
get_is "3 restored" kf-deleted "ref+awssecrets://interop/deleted"
pass "restore-secret: vals get works again"
printf 'x: ref+awssecrets://interop/doc#/db/nokey\n' >nokey.yaml
must_fail vals eval -f nokey.yaml || fail "3 missing JSON member: vals eval worked"
[ "$(last_err)" = "expand awssecrets://interop/doc#/db/nokey: no value found for key db/nokey" ] \
	|| { cat "$WORK/last.err" >&2; fail "3 missing JSON member: unexpected error"; }
pass "missing JSON member (vals' own check): vals eval exits $LAST_RC with '$(last_err)'"
got=$(vals get "ref+awssecrets://interop/doc#/db/nokey" 2>/dev/null) || fail "3 missing JSON member: vals get failed"
note "vals get of a missing JSON member exits 0 and prints '$got' (vals' own behaviour; vals eval fails)"

# ---- 4. ref+awskms:// ----------------------------------------------------------
echo "== 4. ref+awskms://CIPHERTEXT"
K=$(kf kms create-key --description "vals interop" --query KeyMetadata.Arn --output text)
kf kms create-alias --alias-name alias/vals-interop --target-key-id "$K"
printf 'kf-kms-plain 5b7e' >kms.plain
CT=$(kf kms encrypt --key-id alias/vals-interop --plaintext fileb://kms.plain --query CiphertextBlob --output text | urlsafe)
get_is "4 decrypt" "kf-kms-plain 5b7e" "ref+awskms://$CT"
get_is "4 key alias" "kf-kms-plain 5b7e" "ref+awskms://$CT?key=alias%2Fvals-interop"
get_is "4 key arn" "kf-kms-plain 5b7e" "ref+awskms://$CT?key=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$K")"
pass "vals get ref+awskms://<URL-safe base64> gives the plaintext; with ?key=alias%2F... and ?key=<URL-encoded key ARN> too"
printf '{"app": {"token": "kf-kms-token-e41a"}}' >kms.json
CTX_CT=$(kf kms encrypt --key-id "$K" --plaintext fileb://kms.json --encryption-context app=vals,env=interop \
	--query CiphertextBlob --output text | urlsafe)
CTX_Q='context=%7B%22app%22%3A%22vals%22%2C%22env%22%3A%22interop%22%7D'
get_is "4 context" kf-kms-token-e41a "ref+awskms://$CTX_CT?$CTX_Q#/app/token"
pass "ref+awskms://...?context=<URL-encoded JSON>#/app/token: the JSON member of a plaintext encrypted under a context"
expect_err "4 context missing" "InvalidCiphertextException: " vals get "ref+awskms://$CTX_CT"
RSA=$(kf kms create-key --key-spec RSA_2048 --key-usage ENCRYPT_DECRYPT --query KeyMetadata.Arn --output text)
RSA_CT=$(kf kms encrypt --key-id "$RSA" --encryption-algorithm RSAES_OAEP_SHA_256 --plaintext fileb://kms.plain \
	--query CiphertextBlob --output text | urlsafe)
RSA_ID=${RSA##*/}
get_is "4 rsa" "kf-kms-plain 5b7e" "ref+awskms://$RSA_CT?alg=RSAES_OAEP_SHA_256&key=$RSA_ID"
pass "RSA_2048 key: ref+awskms://...?alg=RSAES_OAEP_SHA_256&key=<key id> decrypts"
K2=$(kf kms create-key --description "vals interop other" --query KeyMetadata.Arn --output text)
expect_err "4 other key" "IncorrectKeyException: The key ID in the request does not identify a CMK that can perform this operation." \
	vals get "ref+awskms://$CT?key=${K2##*/}"
kf kms disable-key --key-id "$K"
expect_err "4 disabled key" "DisabledException: $K is disabled." vals get "ref+awskms://$CT"
kf kms enable-key --key-id "$K"
get_is "4 re-enabled" "kf-kms-plain 5b7e" "ref+awskms://$CT"
pass "key re-enabled: vals get works again"
KD=$(kf kms create-key --description "vals interop deleted" --query KeyMetadata.Arn --output text)
DEL_CT=$(kf kms encrypt --key-id "$KD" --plaintext fileb://kms.plain --query CiphertextBlob --output text | urlsafe)
kf kms schedule-key-deletion --key-id "$KD" --pending-window-in-days 7 >/dev/null
expect_err "4 pending deletion" "KMSInvalidStateException: $KD is pending deletion." vals get "ref+awskms://$DEL_CT"

# ---- 5. the service-specific endpoint variables (SDK v2's own) -----------------
echo "== 5. AWS_ENDPOINT_URL_SECRETS_MANAGER / AWS_ENDPOINT_URL_KMS instead of AWS_ENDPOINT_URL"
# Both set at once: were either ignored, that call would go to the closed
# proxy port, not to AWS.
got=$(env -u AWS_ENDPOINT_URL AWS_ENDPOINT_URL_SECRETS_MANAGER="$ENDPOINT" AWS_ENDPOINT_URL_KMS="$ENDPOINT" \
	timeout 60 "$VALS" get "ref+awssecrets://interop/doc#/db/user" 2>"$WORK/last.err") || { cat "$WORK/last.err" >&2; fail "5 secrets manager"; }
[ "$got" = kf-user-3a1f ] || fail "5: got '$got'"
got=$(env -u AWS_ENDPOINT_URL AWS_ENDPOINT_URL_SECRETS_MANAGER="$ENDPOINT" AWS_ENDPOINT_URL_KMS="$ENDPOINT" \
	timeout 60 "$VALS" get "ref+awskms://$CT" 2>"$WORK/last.err") || { cat "$WORK/last.err" >&2; fail "5 kms"; }
[ "$got" = "kf-kms-plain 5b7e" ] || fail "5: got '$got'"
pass "without AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_SECRETS_MANAGER and AWS_ENDPOINT_URL_KMS reach Keyfort (the SDK's own resolution)"

# ---- CloudTrail: the calls vals made -------------------------------------------
echo "== CloudTrail lookup-events"
# count ATTR VALUE NAME [ERROR]: the trail_lines lines of NAME (with ERROR, or - for none) made by
# vals' SDK (aws-sdk-go-v2 user agent).
count() { trail_lines "$1" "$2" | awk -v n="$3" -v e="${4:--}" '$1 == n && $2 == e && $NF ~ /^aws-sdk-go-v2\// {c++} END {print c + 0}'; }
DOC_ARN=$(secret_arn interop/doc)
# interop/doc: 3 vals get (check 1), 1 for the vals eval of doc.yaml (its 3
# refs to the secret are one call: vals caches a fetched secret within a
# run), 1 with version_stage (check 2), 2 for the missing member (check 3),
# 1 through AWS_ENDPOINT_URL_SECRETS_MANAGER (check 5).
n=$(count ResourceName "$DOC_ARN" GetSecretValue)
[ "$n" = 8 ] || { trail_lines ResourceName "$DOC_ARN" >&2; fail "CloudTrail: $n GetSecretValue events by vals on interop/doc, want 8"; }
trail_lines ResourceName "$PLAIN_ARN" >plain.events
for p in '{"secretId":"interop/plain","versionStage":"AWSPREVIOUS"}' '{"secretId":"interop/plain","versionStage":"KFSTAGE"}' \
	"{\"secretId\":\"interop/plain\",\"versionId\":\"$V1\"}"; do
	grep -qF "GetSecretValue - $p aws-sdk-go-v2/" plain.events || { cat plain.events >&2; fail "CloudTrail: no GetSecretValue $p by vals"; }
done
grep -qF "GetSecretValue InvalidRequestException {\"secretId\":\"interop/plain\",\"versionId\":\"$V1\",\"versionStage\":\"AWSCURRENT\"} aws-sdk-go-v2/" plain.events \
	|| { cat plain.events >&2; fail "CloudTrail: no refused GetSecretValue (stage not on the version)"; }
pass "CloudTrail: $n GetSecretValue events by vals (aws-sdk-go-v2/...) on interop/doc; interop/plain's carry versionStage AWSPREVIOUS, KFSTAGE and versionId, the refused one errorCode InvalidRequestException"
[ "$(count ResourceName "$DELETED_ARN" GetSecretValue InvalidRequestException)" = 1 ] \
	|| { trail_lines ResourceName "$DELETED_ARN" >&2; fail "CloudTrail: no refused GetSecretValue on the deleted secret"; }
trail_lines EventName GetSecretValue >gsv.events
grep -qF 'GetSecretValue ResourceNotFoundException {"secretId":"interop/missing"} aws-sdk-go-v2/' gsv.events \
	|| fail "CloudTrail: no ResourceNotFoundException GetSecretValue for interop/missing"
grep -qF 'GetSecretValue ResourceNotFoundException {"secretId":"interop/missing/meta"} aws-sdk-go-v2/' gsv.events \
	|| fail "CloudTrail: no GetSecretValue for interop/missing/meta"
pass "CloudTrail: the deleted secret's GetSecretValue with errorCode InvalidRequestException; interop/missing and (vals' fallback for #/key) interop/missing/meta with ResourceNotFoundException"
# The key of check 4: 6 Decrypt calls that worked (no key, ?key=alias,
# ?key=ARN, context, re-enabled, check 5), 1 refused as disabled, 1 without
# the context.
[ "$(count ResourceName "$K" Decrypt)" = 6 ] || { trail_lines ResourceName "$K" >&2; fail "CloudTrail: want 6 Decrypt events by vals on the key"; }
[ "$(count ResourceName "$K" Decrypt InvalidCiphertextException)" = 1 ] || { trail_lines ResourceName "$K" >&2; fail "CloudTrail: no InvalidCiphertextException Decrypt"; }
[ "$(count ResourceName "$K" Decrypt DisabledException)" = 1 ] || { trail_lines ResourceName "$K" >&2; fail "CloudTrail: no DisabledException Decrypt"; }
trail_lines ResourceName "$K" >key.events
grep -q '^Decrypt - {.*"encryptionContext":{"app":"vals","env":"interop"}.*} aws-sdk-go-v2/' key.events ||
	{ cat key.events >&2; fail "CloudTrail: no Decrypt with the context"; }
pass "CloudTrail key: the 6 Decrypt calls vals made that worked, the refused ones with errorCode DisabledException and InvalidCiphertextException, the context one with requestParameters.encryptionContext {app: vals, env: interop}"
[ "$(count ResourceName "$KD" Decrypt KMSInvalidStateException)" = 1 ] || { trail_lines ResourceName "$KD" >&2; fail "CloudTrail: no KMSInvalidStateException Decrypt"; }
pass "CloudTrail deleted key: the Decrypt refused with KMSInvalidStateException"

finish
