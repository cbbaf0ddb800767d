#!/usr/bin/env bash
# Manual interop check: getsops/sops encrypts and decrypts YAML and JSON files
# with AWS KMS master keys held by Keyfort. NOT run by CI (CI has no sops).
#
#   SOPS=/path/to/sops e2e/interop/sops.sh
#
# Needs: Go (builds keyfort from this repo), the AWS CLI, curl, python3 with
# PyYAML.
# Everything happens in a fresh temp dir (kept with KEEP=1); the server is
# stopped on exit. Every check prints a PASS line. Exit status: 0 all passed;
# 1 a check failed (stops at once); 3 every check passed but Keyfort answered
# differently from AWS in a way sops users see (printed as DEVIATION lines).
# See e2e/interop/README.md.
set -euo pipefail

: "${SOPS:?set SOPS to the path of a sops v3 binary}"
[ -x "$SOPS" ] || { echo "FAIL: SOPS=$SOPS is not executable" >&2; exit 1; }
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" sops go aws curl python3 base64 cmp diff od
python3 -c 'import yaml' 2>/dev/null || { echo "FAIL: python3 has no yaml module (PyYAML)" >&2; exit 1; }

# last_err_has TEXT...: every TEXT occurs in $WORK/last.err once sops' line
# wrapping ("| " prefixes, line breaks) is undone.
last_err_has() {
	local flat t
	flat=$(sed -e 's/^ *|\{0,1\} *//' "$WORK/last.err" | tr '\n' ' ' | tr -s ' ')
	for t in "$@"; do
		case "$flat" in *"$t"*) ;; *) return 1 ;; esac
	done
}
# show_err: sops' KMS error lines from $WORK/last.err, indented.
show_err() { grep -v '^ *$' "$WORK/last.err" | sed 's/^/    /' || true; }

# ---- build and start keyfort (plain HTTP on loopback, dev auth) ------------
build_keyfort
start_keyfort
pass "$("$WORK/keyfort" version) serving HTTP on 127.0.0.1:$PORT"

# One environment for the AWS CLI and sops. sops (kms/keysource.go) builds its
# client with config.LoadDefaultConfig + kms.NewFromConfig of the AWS SDK for
# Go v2, region taken from the key ARN: AWS_ENDPOINT_URL (or
# AWS_ENDPOINT_URL_KMS) points it at Keyfort, credentials come from the env.
# No sops config from the environment or $HOME (isolate_env, lib.sh).
isolate_env
unset SOPS_KMS_ARN SOPS_CONFIG SOPS_DECRYPTION_ORDER SOPS_KEYSERVICE SOPS_AGE_RECIPIENTS SOPS_PGP_FP
export AWS_ENDPOINT_URL="$ENDPOINT" SOPS_DISABLE_VERSION_CHECK=1

sops() { "$SOPS" "$@"; }
new_key() { kf kms create-key --description "sops interop $1" --query KeyMetadata.Arn --output text; }

SOPS_VERSION=$("$SOPS" --version --disable-version-check 2>&1 | awk '/^sops / {print $2; exit}')
pass "sops ${SOPS_VERSION:-unknown} ($SOPS)"

# Plaintexts in the layout sops writes (YAML: 4-space indent; JSON: tabs), so
# that the decrypted file can be compared byte for byte. Distinct values so a
# leak shows up in a grep.
cat >plain.yaml <<'EOF'
db:
    user: kf-user-7f3a
    password: kf-yaml-secret-91c2
tokens:
    - kf-token-one-4b1e
    - kf-token-two-d07c
port: 5432
EOF
printf '{\n\t"api_key": "kf-json-secret-5e8d",\n\t"nested": {\n\t\t"flag": true,\n\t\t"name": "kf-json-name-22af"\n\t},\n\t"count": 42\n}\n' >plain.json
SECRETS=(kf-user-7f3a kf-yaml-secret-91c2 kf-token-one-4b1e kf-token-two-d07c kf-json-secret-5e8d kf-json-name-22af)

# no_plaintext FILE: none of the plaintext values is in FILE.
no_plaintext() {
	local s
	for s in "${SECRETS[@]}"; do
		! grep -q -- "$s" "$1" || fail "$1 holds the plaintext value $s"
	done
}
# roundtrip ENC PLAIN WHAT: sops --decrypt ENC is PLAIN byte for byte.
roundtrip() {
	sops --decrypt "$1" >"$1.dec" 2>"$WORK/last.err" || { cat "$WORK/last.err" >&2; fail "$3: sops --decrypt $1"; }
	cmp -s "$1.dec" "$2" || { diff "$2" "$1.dec" >&2 || true; fail "$3: sops --decrypt $1 differs from $2"; }
}
# data_key ENC [INDEX]: the data key in ENC's INDEX-th KMS entry, decrypted with
# aws kms decrypt (the entry's context passed along), as hex.
data_key() {
	kms_meta "$1" "${2:-0}" 'print(k["enc"]); print(",".join("%s=%s" % i for i in sorted((k.get("context") or {}).items())))' >"$WORK/dk.args"
	local enc ctx
	enc=$(sed -n 1p "$WORK/dk.args")
	ctx=$(sed -n 2p "$WORK/dk.args")
	printf '%s' "$enc" | base64 -d >"$WORK/dk.bin"
	kf kms decrypt --ciphertext-blob "fileb://$WORK/dk.bin" ${ctx:+--encryption-context "$ctx"} \
		--query Plaintext --output text | base64 -d | od -An -tx1 | tr -d ' \n'
}
# kms_meta FILE INDEX CODE: runs the python CODE with ks = FILE's sops.kms
# list and k = ks[INDEX] (FILE read as JSON or YAML by its extension).
kms_meta() {
	python3 -c 'import json, sys, yaml
f = sys.argv[1]
doc = json.load(open(f)) if f.endswith(".json") else yaml.safe_load(open(f))
ks = doc["sops"]["kms"]
k = ks[int(sys.argv[2])] if ks else None
exec(sys.argv[3])' "$@"
}
kms_arns() { kms_meta "$1" 0 'print(" ".join(x["arn"] for x in ks))'; }

# ---- 1. one key: YAML and JSON round trips ----------------------------------
echo "== 1. sops --encrypt --kms KEY_ARN, then --decrypt"
K1=$(new_key k1)
sops --encrypt --kms "$K1" plain.yaml >k1.enc.yaml
sops --encrypt --kms "$K1" plain.json >k1.enc.json
for f in k1.enc.yaml k1.enc.json; do
	no_plaintext "$f"
	[ "$(kms_arns "$f")" = "$K1" ] || fail "$f: sops.kms lists $(kms_arns "$f"), want $K1"
done
pass "sops --encrypt --kms $K1 of plain.yaml and plain.json: no plaintext value in either, sops.kms[0].arn is the key"
roundtrip k1.enc.yaml plain.yaml "1 yaml"
roundtrip k1.enc.json plain.json "1 json"
pass "sops --decrypt gives back plain.yaml and plain.json byte for byte"
[ "$(data_key k1.enc.yaml | wc -c)" = 64 ] || fail "data key of k1.enc.yaml is not 32 bytes"
pass "aws kms decrypt of sops.kms[0].enc gives sops' 32-byte data key"

# ---- 2. two keys: either one decrypts; both disabled fails ------------------
echo "== 2. two KMS keys"
KA=$(new_key a)
KB=$(new_key b)
sops --encrypt --kms "$KA,$KB" plain.yaml >ab.enc.yaml
[ "$(kms_arns ab.enc.yaml)" = "$KA $KB" ] || fail "ab.enc.yaml lists $(kms_arns ab.enc.yaml)"
[ "$(data_key ab.enc.yaml 0)" = "$(data_key ab.enc.yaml 1)" ] || fail "the two KMS entries hold different data keys"
pass "sops --encrypt --kms \"A,B\": two entries, the same data key under each"
kf kms disable-key --key-id "$KA"
roundtrip ab.enc.yaml plain.yaml "2 A disabled"
pass "key A disabled: sops --decrypt works through key B"
kf kms disable-key --key-id "$KB"
must_fail sops --decrypt ab.enc.yaml || fail "sops --decrypt worked with both keys disabled"
last_err_has "DisabledException: $KA is disabled." "DisabledException: $KB is disabled." \
	"Recovery failed because no master key was able to decrypt the file." \
	|| { cat "$WORK/last.err" >&2; fail "both disabled: unexpected error"; }
pass "both disabled: sops --decrypt exits $LAST_RC with DisabledException '<key ARN> is disabled.' for each key:"
show_err
kf kms enable-key --key-id "$KA"
kf kms enable-key --key-id "$KB"
roundtrip ab.enc.yaml plain.yaml "2 re-enabled"
pass "both re-enabled: sops --decrypt works again"

# ---- 3. encryption context --------------------------------------------------
echo "== 3. --encryption-context"
KC=$(new_key ctx)
sops --encrypt --kms "$KC" --encryption-context "app:keyfort,env:interop" plain.yaml >ctx.enc.yaml
kms_meta ctx.enc.yaml 0 'sys.exit(k.get("context") != {"app": "keyfort", "env": "interop"})' \
	|| fail "ctx.enc.yaml does not store the context"
roundtrip ctx.enc.yaml plain.yaml "3 context"
pass "sops --encrypt --encryption-context app:keyfort,env:interop stores the context; --decrypt works"
kms_meta ctx.enc.yaml 0 'print(k["enc"])' | base64 -d >ctx.blob
must_fail kf kms decrypt --ciphertext-blob fileb://ctx.blob || fail "aws kms decrypt without the context worked"
grep -q InvalidCiphertextException "$WORK/last.err" || { cat "$WORK/last.err" >&2; fail "decrypt without context: not InvalidCiphertextException"; }
pass "the data key was encrypted under the context: aws kms decrypt without it gives InvalidCiphertextException"
sed 's/^\( *\)env: interop$/\1env: prod/' ctx.enc.yaml >ctx.altered.yaml
! cmp -s ctx.enc.yaml ctx.altered.yaml || fail "could not alter the stored context"
must_fail sops --decrypt ctx.altered.yaml || fail "sops --decrypt worked with an altered context"
last_err_has "InvalidCiphertextException" || { cat "$WORK/last.err" >&2; fail "altered context: not InvalidCiphertextException"; }
pass "stored context altered (env: prod): sops --decrypt exits $LAST_RC with InvalidCiphertextException:"
show_err

# ---- 4. alias ARN; role ARN -------------------------------------------------
echo "== 4. alias ARN and ARN+role"
KAL=$(new_key alias)
kf kms create-alias --alias-name alias/sops-interop --target-key-id "$KAL"
ALIAS_ARN="arn:aws:kms:us-east-1:123456789012:alias/sops-interop"
sops --encrypt --kms "$ALIAS_ARN" plain.yaml >alias.enc.yaml
[ "$(kms_arns alias.enc.yaml)" = "$ALIAS_ARN" ] || fail "alias.enc.yaml lists $(kms_arns alias.enc.yaml)"
roundtrip alias.enc.yaml plain.yaml "4 alias"
pass "sops --kms $ALIAS_ARN: encrypts, stores the alias ARN, decrypts (Decrypt with KeyId = alias ARN)"
# Re-pointing the alias: Decrypt names the alias, the blob another key.
kf kms update-alias --alias-name alias/sops-interop --target-key-id "$K1"
must_fail sops --decrypt alias.enc.yaml || fail "sops --decrypt worked with the alias pointing at another key"
last_err_has "IncorrectKeyException: The key ID in the request does not identify a CMK that can perform this operation." \
	|| { cat "$WORK/last.err" >&2; fail "alias re-pointed: unexpected error"; }
pass "alias re-pointed to another key: sops --decrypt exits $LAST_RC with IncorrectKeyException:"
show_err
kf kms update-alias --alias-name alias/sops-interop --target-key-id "$KAL"
roundtrip alias.enc.yaml plain.yaml "4 alias back"
pass "alias pointed back: sops --decrypt works again"
# KEY_ARN+ROLE_ARN makes sops call STS AssumeRole first, with the same
# endpoint; Keyfort's STS serves only GetCallerIdentity.
ROLE="arn:aws:iam::123456789012:role/sops-interop"
if must_fail sops --encrypt --kms "$K1+$ROLE" plain.yaml; then
	last_err_has "failed to assume role '$ROLE'" "AssumeRole" \
		|| { cat "$WORK/last.err" >&2; fail "ARN+role: unexpected error"; }
	note "sops --kms KEY_ARN+ROLE_ARN needs STS AssumeRole, which Keyfort does not serve (exit $LAST_RC): $(tail -n 1 "$WORK/last.err")"
else
	no_plaintext "$WORK/last.out"
	pass "sops --kms KEY_ARN+ROLE_ARN encrypts"
fi

# ---- 5. rotate, --add-kms, updatekeys ---------------------------------------
echo "== 5. sops rotate, --add-kms, updatekeys"
KR1=$(new_key r1)
KR2=$(new_key r2)
KR3=$(new_key r3)
sops --encrypt --kms "$KR1" plain.yaml >rot.yaml
dk0=$(data_key rot.yaml)
cp rot.yaml rot.before.yaml
sops rotate --in-place rot.yaml
dk1=$(data_key rot.yaml)
[ "$dk0" != "$dk1" ] || fail "sops rotate kept the data key"
[ "$(grep -c 'ENC\[' rot.yaml)" = "$(grep -c 'ENC\[' rot.before.yaml)" ] || fail "sops rotate changed the number of values"
! grep -F -q -f <(grep -o 'ENC\[[^]]*\]' rot.before.yaml) rot.yaml || fail "sops rotate left a value encrypted as before"
roundtrip rot.yaml plain.yaml "5 rotate"
pass "sops rotate -i: new data key (aws kms decrypt of enc differs), every value re-encrypted, --decrypt works"
sops rotate --in-place --add-kms "$KR2" rot.yaml
[ "$(kms_arns rot.yaml)" = "$KR1 $KR2" ] || fail "after --add-kms rot.yaml lists $(kms_arns rot.yaml)"
kf kms disable-key --key-id "$KR1"
roundtrip rot.yaml plain.yaml "5 add-kms"
pass "sops rotate -i --add-kms KEY2: KEY1 disabled, --decrypt works with KEY2 alone"
kf kms enable-key --key-id "$KR1"
printf 'creation_rules:\n    - path_regex: rot\\.yaml$\n      kms: "%s"\n' "$KR3" >sops-config.yaml
sops --config sops-config.yaml updatekeys --yes rot.yaml >"$WORK/last.out" 2>"$WORK/last.err" \
	|| { cat "$WORK/last.out" "$WORK/last.err" >&2; fail "sops updatekeys"; }
[ "$(kms_arns rot.yaml)" = "$KR3" ] || fail "after updatekeys rot.yaml lists $(kms_arns rot.yaml)"
kf kms disable-key --key-id "$KR1"
kf kms disable-key --key-id "$KR2"
roundtrip rot.yaml plain.yaml "5 updatekeys"
pass "sops updatekeys --yes (config: kms KEY3): KEY1 and KEY2 disabled, --decrypt works with KEY3 alone"
kf kms enable-key --key-id "$KR1"
kf kms enable-key --key-id "$KR2"

# ---- 6. the only key pending deletion ----------------------------------------
echo "== 6. schedule-key-deletion"
KD=$(new_key deleted)
sops --encrypt --kms "$KD" plain.json >del.enc.json
roundtrip del.enc.json plain.json "6 before"
kf kms schedule-key-deletion --key-id "$KD" --pending-window-in-days 7 >/dev/null
must_fail sops --decrypt del.enc.json || fail "sops --decrypt worked with the key pending deletion"
last_err_has "KMSInvalidStateException: $KD is pending deletion." \
	"Recovery failed because no master key was able to decrypt the file." \
	|| { cat "$WORK/last.err" >&2; fail "pending deletion: unexpected error"; }
pass "key pending deletion: sops --decrypt exits $LAST_RC with KMSInvalidStateException '<key ARN> is pending deletion.':"
show_err

# ---- 7. a key sops cannot use: SIGN_VERIFY -----------------------------------
echo "== 7. a SIGN_VERIFY key"
KS=$(kf kms create-key --key-spec RSA_2048 --key-usage SIGN_VERIFY --description "sops interop sign" --query KeyMetadata.Arn --output text)
must_fail sops --encrypt --kms "$KS" plain.yaml || fail "sops --encrypt worked with a SIGN_VERIFY key"
# AWS's text (LocalStack's AWS-validated snapshot
# test_error_messaging_for_invalid_keys, encrypt-invalid-key-id).
want_usage="InvalidKeyUsageException: $KS key usage is SIGN_VERIFY which is not valid for Encrypt."
if last_err_has "$want_usage"; then
	pass "SIGN_VERIFY key: sops --encrypt exits $LAST_RC with '$want_usage'"
elif last_err_has "InvalidKeyUsageException"; then
	deviation "SIGN_VERIFY key: sops --encrypt shows '$(sed 's/.*\(InvalidKeyUsageException: [^]]*\).*/\1/' "$WORK/last.err" | tail -n 1)', AWS answers '$want_usage'"
else
	cat "$WORK/last.err" >&2
	fail "SIGN_VERIFY key: not InvalidKeyUsageException"
fi

# ---- CloudTrail: the calls sops made -----------------------------------------
echo "== CloudTrail lookup-events"
# events KEY_ARN: one line per event on the key: name, error code or -, user agent.
events() {
	kf cloudtrail lookup-events --lookup-attributes "AttributeKey=ResourceName,AttributeValue=$1" --output json |
		python3 -c 'import json, sys
for e in json.load(sys.stdin)["Events"]:
    c = json.loads(e["CloudTrailEvent"])
    print(e["EventName"], c.get("errorCode", "-"), json.dumps(c.get("requestParameters", {}).get("encryptionContext", {}), sort_keys=True), c.get("userAgent", "").split(" ")[0])'
}
# count KEY_ARN NAME [ERROR]: events NAME (with ERROR, or - for none) that
# sops' SDK (aws-sdk-go-v2 user agent) made on the key.
count() { events "$1" | awk -v n="$2" -v e="${3:--}" '$1 == n && $2 == e && $NF ~ /^aws-sdk-go-v2\// {c++} END {print c + 0}'; }
# K1 (check 1): two encrypts, two decrypts, no GenerateDataKey (sops makes
# its own data key and wraps it with Encrypt).
[ "$(count "$K1" Encrypt)" = 2 ] || { events "$K1" >&2; fail "CloudTrail: want 2 sops Encrypt events on K1"; }
[ "$(count "$K1" Decrypt)" = 2 ] || { events "$K1" >&2; fail "CloudTrail: want 2 sops Decrypt events on K1"; }
[ "$(count "$K1" GenerateDataKey)" = 0 ] || fail "CloudTrail: sops GenerateDataKey on K1"
pass "CloudTrail K1: $(count "$K1" Encrypt) Encrypt and $(count "$K1" Decrypt) Decrypt events by sops (user agent aws-sdk-go-v2/...), no GenerateDataKey"
[ "$(count "$KB" Decrypt DisabledException)" -ge 1 ] || { events "$KB" >&2; fail "CloudTrail: no failed Decrypt (DisabledException) on key B"; }
pass "CloudTrail key B: the refused Decrypt is recorded with errorCode DisabledException"
events "$KC" | grep -q '^Encrypt - {"app": "keyfort", "env": "interop"} aws-sdk-go-v2/' \
	|| { events "$KC" >&2; fail "CloudTrail: sops Encrypt on the context key without its encryptionContext"; }
[ "$(count "$KC" Decrypt InvalidCiphertextException)" -ge 1 ] || { events "$KC" >&2; fail "CloudTrail: no InvalidCiphertextException Decrypt on the context key"; }
pass "CloudTrail context key: Encrypt with encryptionContext {app: keyfort, env: interop}, the altered-context Decrypt with errorCode InvalidCiphertextException"
[ "$(count "$KD" Decrypt KMSInvalidStateException)" = 1 ] || { events "$KD" >&2; fail "CloudTrail: no KMSInvalidStateException Decrypt on the deleted key"; }
pass "CloudTrail deleted key: the Decrypt refused with KMSInvalidStateException"

finish
