#!/usr/bin/env bash
# Manual interop check: Kubernetes secret encryption through Keyfort. The
# AWS KMS plugin of Kubernetes (kubernetes-sigs/aws-encryption-provider, the
# plugin EKS runs) is built from its source, pointed at Keyfort with its
# --kms-endpoint, and called over its unix socket as kube-apiserver calls it
# (KMS v2 and v1 gRPC APIs, e2e/interop/k8skmscheck, its own module). NOT run
# by CI.
#
#   AEP_SRC=DIR e2e/interop/k8skms.sh            # KEEP=1 keeps the temp dir
#   STRICT=1 AEP_SRC=DIR e2e/interop/k8skms.sh   # keyfort in strict auth mode
#
# AEP_SRC is a checkout (or a bare git directory) of
# https://github.com/kubernetes-sigs/aws-encryption-provider: the Go module
# proxy does not serve that module. Its dependencies come from the proxy.
# Needs: Go, the AWS CLI, curl, python3, git, cmp, head.
# Everything happens in a fresh temp dir; the servers are stopped on exit.
# Every check prints a PASS line. Exit status: 0 all passed; 1 a check failed
# (stops at once, prints the server log's tail); 3 every check passed but
# Keyfort answered differently from AWS in a way a cluster operator sees
# (DEVIATION lines). See e2e/interop/README.md.
set -euo pipefail

[ -n "${AEP_SRC:-}" ] || { echo "FAIL: set AEP_SRC to a checkout of kubernetes-sigs/aws-encryption-provider" >&2; exit 1; }
AEP_SRC=$(cd "$AEP_SRC" && pwd)

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" k8skms go aws curl python3 git cmp head

PLUGIN_PIDS=()
stop_plugins() {
	for p in "${PLUGIN_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PLUGIN_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	PLUGIN_PIDS=()
}
trap 'rc=$?; stop_plugins; (exit "$rc"); cleanup' EXIT

# ---- build -------------------------------------------------------------------
export GOTOOLCHAIN=local
build_keyfort
echo "== building the plugin from $AEP_SRC"
mkdir -p "$WORK/aep"
if [ -d "$AEP_SRC/.git" ] || [ -f "$AEP_SRC/HEAD" ]; then
	GITDIR=$AEP_SRC
	[ -d "$AEP_SRC/.git" ] && GITDIR=$AEP_SRC/.git
	git --git-dir "$GITDIR" archive HEAD | tar -x -C "$WORK/aep"
	AEP_COMMIT=$(git --git-dir "$GITDIR" log -1 --format='%h %cs')
else
	cp -r "$AEP_SRC/." "$WORK/aep"
	AEP_COMMIT="(not a git checkout)"
fi
(cd "$WORK/aep" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -o "$WORK/plugin" ./cmd/server)
AEP_SDK=$(cd "$WORK/aep" && GOFLAGS=-mod=mod go list -m -f '{{.Path}} {{.Version}}' github.com/aws/aws-sdk-go-v2/service/kms)
pass "aws-encryption-provider $AEP_COMMIT built with $(go env GOVERSION) ($AEP_SDK)"
(cd "$REPO/e2e/interop/k8skmscheck" && CGO_ENABLED=0 go build -o "$WORK/k8skmscheck" .)
pass "k8skmscheck built ($(cd "$REPO/e2e/interop/k8skmscheck" && go list -m -f '{{.Path}} {{.Version}}' k8s.io/kms))"

# STRICT=1: strict auth with lib.sh's principals; the plugin signs with the
# IAM user's key (or a role session's, with its token) from the environment,
# as on a node whose credentials come from the environment.
start_keyfort_mode
isolate_env_strict

# plugin NAME KEY [FLAGS]: start the plugin for KEY on $WORK/NAME.sock with
# its health and metrics server on a free port (HEALTH_NAME) and the
# encryption context cluster=interop unless FLAGS give one; credentials from
# the environment (PLUGIN_ENV adds to it).
declare -A HEALTH
PLUGIN_ENV=()
plugin() {
	local name=$1 key=$2
	shift 2
	local port ctx=(--encryption-context cluster=interop)
	port=$(free_port)
	for a in "$@"; do [ "$a" = --encryption-context ] && ctx=(); done
	rm -f "$WORK/$name.sock"
	env "${PLUGIN_ENV[@]}" "$WORK/plugin" --listen "$WORK/$name.sock" --key "$key" --region us-east-1 \
		--kms-endpoint "$ENDPOINT" --health-port "127.0.0.1:$port" --health-kms-version v2 "${ctx[@]}" "$@" \
		>"$WORK/$name.log" 2>&1 &
	PLUGIN_PIDS+=($!)
	HEALTH[$name]="http://127.0.0.1:$port"
	for _ in $(seq 1 100); do
		[ -S "$WORK/$name.sock" ] && curl -s -o /dev/null "${HEALTH[$name]}/metrics" && return 0
		sleep 0.1
	done
	fail "plugin $name did not start: $(tail -5 "$WORK/$name.log")"
}
# call NAME API OP [IN OUT]: k8skmscheck on NAME's socket; output in
# $WORK/call.out; returns its status (2: the plugin refused the call).
call() {
	local name=$1 api=$2 op=$3
	local args=(-socket "$WORK/$name.sock" -api "$api" -op "$op")
	[ $# -ge 5 ] && args+=(-in "$4" -out "$5")
	"$WORK/k8skmscheck" "${args[@]}" >"$WORK/call.out"
}
must_call() { call "$@" || fail "$1 $2 $3: $(cat "$WORK/call.out")"; }
out() { sed -n "s/^$1=//p" "$WORK/call.out" | head -n 1; }
# health NAME PATH: "<status code> <body>" of the plugin's /healthz or /livez.
health() { curl -s -w '\n%{http_code}' "${HEALTH[$1]}$2" | python3 -c 'import sys; b = sys.stdin.read().rsplit("\n", 1); print(b[1], b[0])'; }
# metric NAME OPERATION STATUS: the plugin's kms_operations_total for its key.
metric() {
	curl -s "${HEALTH[$1]}/metrics" | python3 -c 'import sys
total = 0
for line in sys.stdin:
    if line.startswith("aws_encryption_provider_kms_operations_total{") and "operation=\"%s\"" % sys.argv[1] in line and "status=\"%s\"" % sys.argv[2] in line:
        total += float(line.rsplit(" ", 1)[1])
print(int(total))' "$2" "$3"
}
# expect_refusal NAME WHAT CODE TEXT: the last call failed with the KMS
# exception CODE and a message containing TEXT, as the plugin reports it.
expect_refusal() {
	local got
	got=$(out error)
	case "$got" in
	*"$3: "*"$4"*) pass "$1: $2: the plugin reports $3 (${got##*$3: })" ;;
	*) deviation "$1: $2: the plugin reports '$got', AWS answers $3 with '$4'" ;;
	esac
}

# refused NAME KEY WHAT CODE TEXT LIVEZ: a plugin NAME on KEY is refused its
# Encrypt with the KMS exception CODE (message containing TEXT), and its
# /livez then answers LIVEZ (200: the plugin takes CODE as the user's doing).
refused() {
	plugin "$1" "$2"
	call "$1" v2 encrypt "$WORK/dek" "$WORK/x" && fail "$3: encrypted"
	expect_refusal "$1" "$3" "$4" "$5"
	local code body
	read -r code body < <(health "$1" /livez)
	[ "$code" = "$6" ] || fail "$3: /livez $code $body, want $6"
	pass "$1: /livez $6 after $4"
}

head -c 32 /dev/urandom >"$WORK/dek"
head -c 4096 /dev/urandom >"$WORK/max"
head -c 4097 /dev/urandom >"$WORK/over"

# ---- 1. the plugin on a key: Status, v2 and v1 round trips -----------------
echo "== 1. KMS v2 and v1 through the plugin"
K1=$(kf kms create-key --description "kubernetes secrets" --query KeyMetadata.Arn --output text)
kf kms create-alias --alias-name alias/k8s-secrets --target-key-id "$K1"
plugin p1 "$K1"
must_call p1 v2 status
[ "$(out healthz)" = ok ] && [ "$(out version)" = v2beta1 ] && [ "$(out keyid)" = "$K1" ] ||
	fail "v2 Status: $(cat "$WORK/call.out")"
pass "v2 Status: healthz ok, version v2beta1, keyid the key ARN (the plugin's health check encrypted and decrypted through Keyfort)"
must_call p1 v2 encrypt "$WORK/dek" "$WORK/ct.v2"
[ "$(out keyid)" = "$K1" ] || fail "v2 Encrypt keyid: $(cat "$WORK/call.out")"
[ "$(head -c 1 "$WORK/ct.v2")" = 1 ] || fail "v2 ciphertext does not start with the plugin's storage version 1"
must_call p1 v2 decrypt "$WORK/ct.v2" "$WORK/pt.v2"
cmp -s "$WORK/dek" "$WORK/pt.v2" || fail "v2 Decrypt did not give back the DEK seed"
pass "v2 Encrypt of a 32-byte DEK seed ($(wc -c <"$WORK/ct.v2") bytes of ciphertext) and Decrypt give it back"

# The ciphertext is a KMS CiphertextBlob under the plugin's encryption context.
tail -c +2 "$WORK/ct.v2" >"$WORK/blob"
kf kms decrypt --ciphertext-blob "fileb://$WORK/blob" --encryption-context cluster=interop \
	--query Plaintext --output text | base64 -d >"$WORK/pt.cli"
cmp -s "$WORK/dek" "$WORK/pt.cli" || fail "the AWS CLI did not decrypt the plugin's blob to the DEK seed"
must_fail kf kms decrypt --ciphertext-blob "fileb://$WORK/blob" || fail "the blob decrypted without its encryption context"
grep -q InvalidCiphertextException "$WORK/last.err" || fail "blob without its context: $(cat "$WORK/last.err")"
pass "the ciphertext is a KMS blob: the AWS CLI decrypts it with --encryption-context cluster=interop; without it, InvalidCiphertextException"

must_call p1 v1 status
[ "$(out version)" = v1beta1 ] && [ "$(out runtime)" = AWSKMS ] || fail "v1 Version: $(cat "$WORK/call.out")"
must_call p1 v1 encrypt "$WORK/dek" "$WORK/ct.v1"
must_call p1 v1 decrypt "$WORK/ct.v1" "$WORK/pt.v1"
cmp -s "$WORK/dek" "$WORK/pt.v1" || fail "v1 Decrypt did not give back the DEK"
pass "v1 Version (v1beta1, AWSKMS), Encrypt and Decrypt"

must_call p1 v2 encrypt "$WORK/max" "$WORK/ct.max"
must_call p1 v2 decrypt "$WORK/ct.max" "$WORK/pt.max"
cmp -s "$WORK/max" "$WORK/pt.max" || fail "4096-byte round trip"
pass "a 4096-byte plaintext (KMS Encrypt's most) round trips"
call p1 v2 encrypt "$WORK/over" "$WORK/ct.over" && fail "a 4097-byte plaintext was encrypted"
expect_refusal p1 "a 4097-byte plaintext" ValidationException \
	"1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096"

# Tampering, and a plugin with another encryption context: corruption.
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[-1] ^= 1; open(sys.argv[2], "wb").write(b)' "$WORK/ct.v2" "$WORK/ct.bad"
call p1 v2 decrypt "$WORK/ct.bad" "$WORK/x" && fail "a tampered ciphertext decrypted"
expect_refusal p1 "a tampered ciphertext" InvalidCiphertextException ""
[ "$(metric p1 decrypt failure-corruption)" = 1 ] || fail "the plugin did not count the tampered ciphertext as corruption"
pass "p1: the plugin counts it as failure-corruption (its metric), as it does for InvalidCiphertextException"
plugin p1ctx "$K1" --encryption-context cluster=other
call p1ctx v2 decrypt "$WORK/ct.v2" "$WORK/x" && fail "decrypted under another encryption context"
expect_refusal p1ctx "a ciphertext made under cluster=interop, decrypted under cluster=other" InvalidCiphertextException ""

# ---- 2. key rotation as Kubernetes does it ----------------------------------
echo "== 2. a second key: old DEKs still decrypt"
K2=$(kf kms create-key --description "kubernetes secrets, rotated" --query KeyMetadata.Arn --output text)
plugin p2 "$K2"
must_call p2 v2 status
[ "$(out keyid)" = "$K2" ] && [ "$(out healthz)" = ok ] || fail "p2 Status: $(cat "$WORK/call.out")"
must_call p2 v2 decrypt "$WORK/ct.v2" "$WORK/pt.rot"
cmp -s "$WORK/dek" "$WORK/pt.rot" || fail "p2 did not decrypt p1's DEK"
pass "the plugin of the new key decrypts a DEK the old key encrypted (Decrypt without KeyId finds the key in the blob; Kubernetes' key rotation relies on it)"
plugin palias "arn:aws:kms:us-east-1:123456789012:alias/k8s-secrets"
must_call palias v2 encrypt "$WORK/dek" "$WORK/ct.alias"
must_call p1 v2 decrypt "$WORK/ct.alias" "$WORK/pt.alias"
cmp -s "$WORK/dek" "$WORK/pt.alias" || fail "alias round trip"
pass "a plugin configured with the alias ARN encrypts; the key's plugin decrypts"
kf kms rotate-key-on-demand --key-id "$K1" >/dev/null
must_call p1 v2 decrypt "$WORK/ct.v2" "$WORK/pt.after"
must_call p1 v2 encrypt "$WORK/dek" "$WORK/ct.after"
cmp -s "$WORK/dek" "$WORK/pt.after" || fail "decrypt after rotation"
pass "after RotateKeyOnDemand of the key, the DEK made before decrypts and new ones encrypt"

# ---- 3. what the operator sees when the key is not usable ------------------
echo "== 3. disabled, pending deletion and unknown keys"
K3=$(kf kms create-key --query KeyMetadata.Arn --output text)
kf kms disable-key --key-id "$K3"
plugin pdis "$K3"
must_call pdis v2 status
[ "$(out healthz)" = err ] || fail "Status of a disabled key's plugin: $(cat "$WORK/call.out")"
call pdis v2 encrypt "$WORK/dek" "$WORK/x" && fail "encrypted with a disabled key"
expect_refusal pdis "Encrypt with a disabled key" DisabledException "$K3 is disabled."
read -r code body < <(health pdis /livez)
[ "$code" = 200 ] || fail "livez of a disabled key: $code $body"
read -r code body < <(health pdis /healthz)
[ "$code" = 500 ] && [[ "$body" == *DisabledException* ]] || fail "healthz of a disabled key: $code $body"
pass "disabled key: Status healthz err, /healthz 500 naming DisabledException, /livez 200 (the plugin takes DisabledException as the user's doing and stays alive)"

K4=$(kf kms create-key --query KeyMetadata.Arn --output text)
kf kms schedule-key-deletion --key-id "$K4" --pending-window-in-days 7 >/dev/null
refused pdel "$K4" "Encrypt with a key pending deletion" KMSInvalidStateException "$K4 is pending deletion." 200

K5="arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-000000000000"
refused pnone "$K5" "Encrypt with an unknown key" NotFoundException "Key '$K5' does not exist" 500

# ---- 4. confused-deputy headers, restart, CloudTrail -----------------------
echo "== 4. --source-arn, a Keyfort restart, CloudTrail"
plugin psrc "$K1" --source-arn arn:aws:eks:us-east-1:123456789012:cluster/interop
must_call psrc v2 encrypt "$WORK/dek" "$WORK/ct.src"
must_call psrc v2 decrypt "$WORK/ct.src" "$WORK/pt.src"
cmp -s "$WORK/dek" "$WORK/pt.src" || fail "round trip with --source-arn"
pass "with --source-arn (x-amz-source-arn and x-amz-source-account on every request) the calls succeed"
note "Keyfort does not read x-amz-source-arn / x-amz-source-account (aws:SourceArn and aws:SourceAccount are set only for calls an AWS service makes; not checked against AWS for these headers)"

stop_server
PORT_KEEP=$PORT
start_keyfort "${AUTH[@]}"
[ "$PORT" = "$PORT_KEEP" ] || fail "keyfort restarted on another port"
must_call p1 v2 decrypt "$WORK/ct.v2" "$WORK/pt.restart"
cmp -s "$WORK/dek" "$WORK/pt.restart" || fail "decrypt after restart"
must_call p2 v2 decrypt "$WORK/ct.alias" "$WORK/pt.restart2"
pass "after a Keyfort restart the running plugins decrypt the DEKs encrypted before it"

# In strict mode the role may look events up (the IAM user may not).
env "${STRICT_ROLE_ENV[@]}" aws --endpoint-url "$ENDPOINT" --region us-east-1 cloudtrail lookup-events --lookup-attributes "AttributeKey=ResourceName,AttributeValue=$K1" \
	--max-results 50 --output json >"$WORK/trail.json"
python3 - "$WORK/trail.json" "$K1" "${STRICT:-0}" <<'PY' || fail "CloudTrail events of the plugin's calls"
import json, sys
events = [json.loads(e["CloudTrailEvent"]) for e in json.load(open(sys.argv[1]))["Events"]]
key, strict = sys.argv[2], sys.argv[3] == "1"
calls = [e for e in events if e["eventName"] in ("Encrypt", "Decrypt") and "aws-sdk-go-v2" in e.get("userAgent", "")]
assert len(calls) >= 10, f"{len(calls)} Encrypt/Decrypt events from the plugin"
for e in calls:
    p = e["requestParameters"]
    assert e["eventSource"] == "kms.amazonaws.com", e["eventSource"]
    assert e["resources"][0]["ARN"] == key, e["resources"]
    if e["eventName"] == "Encrypt":
        assert p["keyId"] in (key, "arn:aws:kms:us-east-1:123456789012:alias/k8s-secrets"), p
    # AWS documents that a Decrypt event always records the algorithm; the
    # plugin's Encrypt names none, and its event records what was sent.
    if e["eventName"] == "Decrypt":
        assert p.get("encryptionAlgorithm") == "SYMMETRIC_DEFAULT", p
    assert "plaintext" not in p and "ciphertextBlob" not in p, p
    if strict:
        assert e["userIdentity"]["arn"] == "arn:aws:iam::123456789012:user/interop", e["userIdentity"]
ctxs = {json.dumps(e["requestParameters"].get("encryptionContext"), sort_keys=True) for e in calls}
assert '{"cluster": "interop"}' in ctxs, ctxs
failed = [e for e in calls if e.get("errorCode")]
print(f"PASS: CloudTrail holds {len(calls)} Encrypt/Decrypt events of the plugin on the key (encryption context, key, algorithm, no plaintext; {len(failed)} with errorCode: {sorted({e['errorCode'] for e in failed})})")
PY

# ---- 5. strict mode: signatures, sessions, refusals ------------------------
if [ "${STRICT:-0}" = 1 ]; then
	echo "== 5. strict: a role session, a wrong secret, an unknown key id"
	PLUGIN_ENV=("${STRICT_ROLE_ENV[@]}")
	plugin prole "$K1"
	must_call prole v2 encrypt "$WORK/dek" "$WORK/ct.role"
	must_call p1 v2 decrypt "$WORK/ct.role" "$WORK/pt.role"
	cmp -s "$WORK/dek" "$WORK/pt.role" || fail "role session round trip"
	pass "a role session's credentials with AWS_SESSION_TOKEN: the plugin signs x-amz-security-token; Keyfort accepts"
	PLUGIN_ENV=(AWS_SECRET_ACCESS_KEY=wrong-secret)
	refused pbad "$K1" "a wrong secret key" InvalidSignatureException \
		"The request signature we calculated does not match the signature you provided." 500
	PLUGIN_ENV=(AWS_ACCESS_KEY_ID=AKIAUNKNOWN000000000)
	refused punk "$K1" "an unknown access key id" UnrecognizedClientException \
		"The security token included in the request is invalid." 500
	PLUGIN_ENV=()
	K6=$(kf kms create-key --query KeyMetadata.Arn --output text)
	kf kms put-key-policy --key-id "$K6" --policy-name default --policy '{"Version": "2012-10-17", "Statement": [
		{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"},
		{"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::123456789012:user/interop"}, "Action": "kms:Encrypt", "Resource": "*"}]}'
	refused pdeny "$K6" "Encrypt denied by the key policy" AccessDeniedException \
		"User: arn:aws:iam::123456789012:user/interop is not authorized to perform: kms:Encrypt on resource: $K6 with an explicit deny in a resource-based policy" 500
fi

stop_plugins
finish
