#!/usr/bin/env bash
# Manual interop check: segmentio/chamber (v2) writes, reads, lists, exports
# and deletes secrets with its Secrets Manager backend against Keyfort.
# NOT run by CI (CI has no chamber).
#
#   CHAMBER=/path/to/chamber e2e/interop/chamber.sh
#
# Needs: Go (builds keyfort from this repo), the AWS CLI, curl, python3.
# Everything happens in a fresh temp dir (kept with KEEP=1); the server is
# stopped on exit. Every check prints a PASS line. Exit status: 0 all passed;
# 1 a check failed (stops at once); 3 every check passed but Keyfort answered
# differently from AWS in a way chamber users see (printed as DEVIATION lines).
# See e2e/interop/README.md.
set -euo pipefail

: "${CHAMBER:?set CHAMBER to the path of a chamber binary}"
[ -x "$CHAMBER" ] || { echo "FAIL: CHAMBER=$CHAMBER is not executable" >&2; exit 1; }
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" chamber go aws curl python3 cmp timeout

# ---- build and start keyfort (plain HTTP on loopback, dev auth) ------------
build_keyfort
start_keyfort
pass "$("$WORK/keyfort" version) serving HTTP on 127.0.0.1:$PORT"

# One environment for the AWS CLI and chamber. chamber v2 (store/shared.go)
# builds an aws-sdk-go v1 session whose endpoint resolver sends every
# service (Secrets Manager, and STS for the user name) to
# CHAMBER_AWS_SSM_ENDPOINT when it is set; the SDK v1 reads no
# AWS_ENDPOINT_URL*. Credentials and region come from the env (isolate_env,
# lib.sh, which also sends anything not meant for 127.0.0.1 to a closed
# local port).
isolate_env
unset AWS_SDK_LOAD_CONFIG CHAMBER_AWS_REGION CHAMBER_KMS_KEY_ALIAS CHAMBER_S3_BUCKET CHAMBER_RETRIES
export CHAMBER_SECRET_BACKEND=secretsmanager CHAMBER_AWS_SSM_ENDPOINT="$ENDPOINT"

chamber() { timeout 60 "$CHAMBER" "$@"; }
CHAMBER_VERSION=$(go version -m "$CHAMBER" 2>/dev/null | awk '$1 == "mod" && $2 ~ /^github.com\/segmentio\/chamber/ {print $2 "@" $3}')
pass "chamber ${CHAMBER_VERSION:-unknown} ($CHAMBER), CHAMBER_SECRET_BACKEND=secretsmanager, CHAMBER_AWS_SSM_ENDPOINT=$ENDPOINT"

last_err() { tail -n 1 "$WORK/last.err"; }
# expect_err WHAT WANT CMD...: CMD fails and its last stderr line is WANT
# (chamber prints "Error: <what failed>: <Code>: <Message>" for an AWS error).
# The same code with another message is a DEVIATION; anything else fails.
expect_err() {
	local what=$1 want=$2
	shift 2
	must_fail "$@" || fail "$what: $* worked"
	local got code
	got=$(last_err)
	code=$(printf '%s' "$want" | grep -o '[A-Za-z]*Exception: ' || true)
	if [ "$got" = "$want" ]; then
		pass "$what: chamber exits $LAST_RC with '$want'"
	elif [ -n "$code" ] && [[ "$got" == *"$code"* ]]; then
		deviation "$what: chamber shows '$got', AWS answers '$want'"
	else
		cat "$WORK/last.err" >&2
		fail "$what: want '$want'"
	fi
}
# read_is WHAT WANT ARGS...: chamber read -q ARGS prints WANT.
read_is() {
	local what=$1 want=$2 got
	shift 2
	got=$(chamber read -q "$@" 2>"$WORK/last.err") || { cat "$WORK/last.err" >&2; fail "$what: chamber read -q $*"; }
	[ "$got" = "$want" ] || fail "$what: chamber read -q $* = '$got', want '$want'"
}
# labels SECRET [--include-deprecated]: "VERSION_ID LABEL,LABEL" per version
# (labels sorted), as ListSecretVersionIds gives them.
labels() {
	local s=$1
	shift
	kf secretsmanager list-secret-version-ids --secret-id "$s" "$@" --output json |
		python3 -c 'import json, sys
for v in json.load(sys.stdin)["Versions"]:
    print(v["VersionId"], ",".join(sorted(v.get("VersionStages") or [])) or "-")' | sort
}
# stages_of SECRET: "VERSION_ID LABEL,LABEL" per version from DescribeSecret.
stages_of() {
	kf secretsmanager describe-secret --secret-id "$1" --output json |
		python3 -c 'import json, sys
for k, v in json.load(sys.stdin).get("VersionIdsToStages", {}).items():
    print(k, ",".join(sorted(v)) or "-")' | sort
}
# value_of SECRET VERSION_ID: that version's SecretString.
value_of() { kf secretsmanager get-secret-value --secret-id "$1" --version-id "$2" --query SecretString --output text; }
# key_versions SECRET KEY: the chamber versions of KEY in the _chamber_metadata
# of every version ListSecretVersionIds lists (no deprecated ones), sorted:
# what chamber's history should show.
key_versions() {
	local id
	for id in $(labels "$1" | awk '{print $1}'); do
		value_of "$1" "$id" | python3 -c 'import json, sys
m = json.loads(json.load(sys.stdin).get("_chamber_metadata", "{}"))
if sys.argv[1] in m: print(m[sys.argv[1]]["version"])' "$2"
	done | sort -n -u | tr '\n' ' '
}
# history_versions SERVICE KEY: the Version column of chamber history.
history_versions() { chamber history "$1" "$2" | awk 'NR > 1 {print $2}' | sort -n | tr '\n' ' '; }

# ---- 1. write and read ---------------------------------------------------------
echo "== 1. chamber write / read"
chamber write kfsvc db_password 'kf-pw-1 a3f0'
ARN=$(kf secretsmanager describe-secret --secret-id kfsvc --query ARN --output text)
read_is "1" 'kf-pw-1 a3f0' kfsvc db_password
kf secretsmanager get-secret-value --secret-id kfsvc --query SecretString --output text | python3 -c 'import json, sys
d = json.load(sys.stdin)
m = json.loads(d["_chamber_metadata"])
sys.exit(not (d["db_password"] == "kf-pw-1 a3f0" and m["db_password"]["version"] == 1 and m["db_password"]["created_by"] == "arn:aws:iam::123456789012:root"))' \
	|| fail "1: the secret's JSON is not chamber's layout"
pass "chamber write kfsvc db_password: secret kfsvc ($ARN) holds {db_password, _chamber_metadata}; created_by is GetCallerIdentity's ARN; chamber read -q gives the value"

# ---- 2. more versions, list, export -------------------------------------------
echo "== 2. versions, list, export"
chamber write kfsvc db_password kf-pw-2
chamber write kfsvc api_key kf-key-1
chamber write kfsvc db_password kf-pw-3
read_is "2 latest" kf-pw-3 kfsvc db_password
read_is "2 -v 2" kf-pw-2 -v 2 kfsvc db_password
read_is "2 api_key" kf-key-1 kfsvc api_key
pass "after 4 writes: chamber read -q gives kf-pw-3, read -v 2 kf-pw-2, api_key kf-key-1"
chamber list kfsvc | awk 'NR > 1 {print $1, $2}' >list.out
printf 'api_key 1\ndb_password 3\n' | cmp -s - list.out || { cat list.out >&2; fail "2 list"; }
chamber list -e kfsvc | awk 'NR > 1 {print $1, $NF}' >liste.out
printf 'api_key kf-key-1\ndb_password kf-pw-3\n' | cmp -s - liste.out || { cat liste.out >&2; fail "2 list -e"; }
pass "chamber list kfsvc: api_key 1, db_password 3; list -e shows the values"
chamber export kfsvc >export.json
python3 -c 'import json, sys
d = json.load(open("export.json"))
sys.exit(not (d["db_password"] == "kf-pw-3" and d["api_key"] == "kf-key-1" and set(d) == {"db_password", "api_key", "_chamber_metadata"}))' \
	|| { cat export.json >&2; fail "2 export"; }
chamber export -f dotenv kfsvc >export.env
grep -qx 'DB_PASSWORD="kf-pw-3"' export.env && grep -qx 'API_KEY="kf-key-1"' export.env || { cat export.env >&2; fail "2 export dotenv"; }
pass "chamber export (json, dotenv): db_password kf-pw-3, api_key kf-key-1 (plus chamber's own _chamber_metadata entry)"

# ---- 3. history against ListSecretVersionIds / DescribeSecret ------------------
echo "== 3. history and staging labels"
# Each write after the first is PutSecretValue with VersionStages
# [AWSCURRENT, CHAMBER<n>]; AWS moves a label to the new version and
# AWSPREVIOUS to the version AWSCURRENT left. So: the CreateSecret version
# ends with no label (deprecated), db_password v2 keeps CHAMBER2, api_key v1
# has CHAMBER1 and AWSPREVIOUS, db_password v3 AWSCURRENT and CHAMBER3.
labels kfsvc >labels.out
labels kfsvc --include-deprecated >labels.all
stages_of kfsvc >stages.out
cmp -s labels.out stages.out || { diff labels.out stages.out >&2; fail "3: ListSecretVersionIds and DescribeSecret.VersionIdsToStages differ"; }
[ "$(awk '{print $2}' labels.out | sort | tr '\n' ' ')" = "AWSCURRENT,CHAMBER3 AWSPREVIOUS,CHAMBER1 CHAMBER2 " ] || { cat labels.out >&2; fail "3: labels"; }
[ "$(grep -c ' -$' labels.all)" = 1 ] && [ "$(wc -l <labels.all)" = 4 ] || { cat labels.all >&2; fail "3: --include-deprecated"; }
pass "ListSecretVersionIds = DescribeSecret.VersionIdsToStages: {AWSCURRENT,CHAMBER3} {AWSPREVIOUS,CHAMBER1} {CHAMBER2}; --include-deprecated adds the CreateSecret version with no label"
want=$(key_versions kfsvc db_password)
got=$(history_versions kfsvc db_password)
[ "$got" = "$want" ] && [ "$got" = "2 3 " ] || { chamber history kfsvc db_password >&2; fail "3: history db_password: versions '$got', ListSecretVersionIds gives '$want'"; }
chamber history kfsvc db_password | awk 'NR > 1 {print $1}' | tr '\n' ' ' | grep -qx 'Updated Updated ' || fail "3: history events"
pass "chamber history kfsvc db_password: versions $got(Updated, Updated), the db_password versions in the metadata of the versions ListSecretVersionIds lists"
got=$(history_versions kfsvc api_key)
[ "$got" = "$(key_versions kfsvc api_key)" ] && [ "$got" = "1 " ] || fail "3: history api_key: '$got'"
pass "chamber history kfsvc api_key: version 1 (Created)"
expect_err "3 read -v 1" "Error: Failed to read: secret not found" chamber read -v 1 kfsvc db_password
note "read -v 1 and history miss db_password v1: it lives only in the CreateSecret version, which lost its last label (AWS's label rules) and chamber lists without IncludeDeprecated (chamber's own)"

# ---- 4. delete -------------------------------------------------------------------
echo "== 4. chamber delete"
chamber delete kfsvc api_key
chamber list kfsvc | awk 'NR > 1 {print $1}' | tr '\n' ' ' | grep -qx 'db_password ' || fail "4: list after delete"
expect_err "4 read deleted key" "Error: Failed to read: secret not found" chamber read kfsvc api_key
expect_err "4 delete again" "Error: secret not found" chamber delete kfsvc api_key
read_is "4 other key" kf-pw-3 kfsvc db_password
labels kfsvc >labels.out
[ "$(awk '{print $2}' labels.out | sort | tr '\n' ' ')" = "AWSCURRENT,CHAMBER1 AWSPREVIOUS,CHAMBER3 CHAMBER2 " ] || { cat labels.out >&2; fail "4: labels"; }
pass "chamber delete kfsvc api_key: a new AWSCURRENT version without it (labels {AWSCURRENT,CHAMBER1} {AWSPREVIOUS,CHAMBER3} {CHAMBER2}); db_password still kf-pw-3"

# ---- 5. errors ---------------------------------------------------------------------
echo "== 5. errors"
NF="ResourceNotFoundException: Secrets Manager can't find the specified secret."
expect_err "5 read missing service" "Error: Failed to read: $NF" chamber read nosvc k
expect_err "5 list missing service" "Error: Failed to list store contents: $NF" chamber list nosvc
expect_err "5 history missing service" "Error: Failed to get history: $NF" chamber history nosvc k
chamber write kfgone token kf-gone-1
kf secretsmanager delete-secret --secret-id kfgone >/dev/null
GONE_ARN=$(kf secretsmanager describe-secret --secret-id kfgone --query ARN --output text)
DEL="InvalidRequestException: You can't perform this operation on the secret because it was marked for deletion."
expect_err "5 read deleted secret" "Error: Failed to read: $DEL" chamber read kfgone token
expect_err "5 write deleted secret" "Error: $DEL" chamber write kfgone token kf-gone-2
expect_err "5 history deleted secret" "Error: Failed to get history: $DEL" chamber history kfgone token
expect_err "5 export deleted secret" "Error: Failed to list store contents for service kfgone: $DEL" chamber export kfgone
kf secretsmanager restore-secret --secret-id kfgone >/dev/null
read_is "5 restored" kf-gone-1 kfgone token
pass "restore-secret: chamber read works again"

# ---- 6. KMS alias ---------------------------------------------------------------------
echo "== 6. CHAMBER_KMS_KEY_ALIAS"
# chamber's Secrets Manager backend never names a KMS key (CreateSecret has
# no KmsKeyId); CHAMBER_KMS_KEY_ALIAS is read by the SSM and S3-KMS backends
# only, so an alias that does not exist changes nothing.
CHAMBER_KMS_KEY_ALIAS=alias/kf-chamber-none chamber write kfkms k v1
read_is "6" v1 kfkms k
[ "$(kf secretsmanager describe-secret --secret-id kfkms --query KmsKeyId --output text)" = None ] || fail "6: KmsKeyId set"
pass "CHAMBER_KMS_KEY_ALIAS=alias/kf-chamber-none: ignored by the secretsmanager backend; the secret has no KmsKeyId (the account's aws/secretsmanager key)"

# ---- CloudTrail: the calls chamber made ---------------------------------------------
echo "== CloudTrail lookup-events"
# count FILE NAME [ERROR]: the trail_lines lines of NAME (with ERROR, or -) by chamber's SDK
# (aws-sdk-go v1 user agent) in FILE.
count() { awk -v n="$2" -v e="${3:--}" '$1 == n && $2 == e && $NF ~ /^aws-sdk-go\// {c++} END {print c + 0}' "$1"; }
trail_lines ResourceName "$ARN" >svc.events
[ "$(count svc.events CreateSecret)" = 1 ] || { cat svc.events >&2; fail "CloudTrail: want 1 CreateSecret by chamber"; }
[ "$(count svc.events PutSecretValue)" = 4 ] || { cat svc.events >&2; fail "CloudTrail: want 4 PutSecretValue by chamber"; }
grep -q '^PutSecretValue - {.*"versionStages":\["AWSCURRENT","CHAMBER3"\].*} aws-sdk-go/' svc.events || { cat svc.events >&2; fail "CloudTrail: no PutSecretValue with versionStages [AWSCURRENT, CHAMBER3]"; }
grep -q '^ListSecretVersionIds - {"includeDeprecated":false,"secretId":"kfsvc"} aws-sdk-go/' svc.events || { cat svc.events >&2; fail "CloudTrail: no ListSecretVersionIds by chamber"; }
pass "CloudTrail kfsvc: 1 CreateSecret, 4 PutSecretValue (versionStages [AWSCURRENT, CHAMBER<n>]), $(count svc.events GetSecretValue) GetSecretValue, $(count svc.events ListSecretVersionIds) ListSecretVersionIds (includeDeprecated false), $(count svc.events DescribeSecret) DescribeSecret by chamber (user agent aws-sdk-go/...)"
trail_lines EventName GetCallerIdentity >sts.events
n=$(count sts.events GetCallerIdentity)
[ "$n" = 6 ] || { cat sts.events >&2; fail "CloudTrail: $n GetCallerIdentity by chamber, want 6 (one per write of a value that got past its first read)"; }
pass "CloudTrail: 6 STS GetCallerIdentity by chamber, one per write of a value (the created_by user; the write to the deleted secret stops at its GetSecretValue)"
trail_lines ResourceName "$GONE_ARN" >gone.events
[ "$(count gone.events GetSecretValue InvalidRequestException)" = 4 ] || { cat gone.events >&2; fail "CloudTrail: want 4 refused GetSecretValue on the deleted secret"; }
pass "CloudTrail kfgone: chamber's 4 GetSecretValue calls on the deleted secret with errorCode InvalidRequestException"
trail_lines EventName GetSecretValue >gsv.events
[ "$(grep -c '^GetSecretValue ResourceNotFoundException {"secretId":"nosvc"} aws-sdk-go/' gsv.events)" = 2 ] || { cat gsv.events >&2; fail "CloudTrail: nosvc"; }
trail_lines EventName ListSecretVersionIds >lsv.events
grep -q '^ListSecretVersionIds ResourceNotFoundException {"includeDeprecated":false,"secretId":"nosvc"} aws-sdk-go/' lsv.events || { cat lsv.events >&2; fail "CloudTrail: nosvc history"; }
pass "CloudTrail: chamber's read and list of nosvc as GetSecretValue, its history as ListSecretVersionIds, with errorCode ResourceNotFoundException"

finish
