# What every interop script shares; not run on its own. A script sources it
# right after `set -euo pipefail` (and its own checks of its variables):
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh" NAME TOOL...
#
# It checks that each TOOL is on PATH, sets REPO (this repository), WORK (a
# fresh temp dir kf-NAME.XXXXXX, kept with KEEP=1), SERVER_PID (the keyfort
# the script starts, stopped on exit) and DEVIATIONS, and on a failing exit
# (not 0, not 3) prints the last 20 lines of $WORK/server.log.

for tool in "${@:2}"; do
	command -v "$tool" >/dev/null || { echo "FAIL: $tool not found" >&2; exit 1; }
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kf-$1.XXXXXX")
SERVER_PID=""
DEVIATIONS=()
PORT="" # start_keyfort's port: free unless the script sets it (not the environment's)

# stop_server stops the keyfort of SERVER_PID, if it runs.
stop_server() {
	if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	SERVER_PID=""
}

cleanup() {
	local rc=$?
	stop_server
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
		echo "--- keyfort log (last 20 lines) ---" >&2
		tail -n 20 "$WORK/server.log" >&2 2>/dev/null || true
	fi
	if [ "${KEEP:-0}" = 1 ]; then
		echo "kept $WORK" >&2
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
# deviation: Keyfort answered differently from AWS (finish then exits 3).
deviation() { echo "DEVIATION: $*" >&2; DEVIATIONS+=("$*"); }
pass() { echo "PASS: $*"; }
note() { echo "NOTE: $*"; }

# must_fail CMD...: the command has to exit non-zero (stdout to $WORK/last.out,
# stderr to $WORK/last.err); sets LAST_RC to its exit status.
LAST_RC=0
must_fail() {
	LAST_RC=0
	"$@" >"$WORK/last.out" 2>"$WORK/last.err" || LAST_RC=$?
	[ "$LAST_RC" -ne 0 ]
}

# free_port prints a TCP port free on 127.0.0.1.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# STRICT=1: write_strict_credentials FILE writes a strict-mode credentials
# file (README "Strict mode") with a user of account 123456789012 allowed
# every KMS and Secrets Manager action on every resource, and sets
# STRICT_KEY_ID and STRICT_SECRET to its access key. The script then starts
# keyfort with `--auth strict --credentials FILE` and hands its clients that
# key. Keys work in their principal's partition only, as on AWS: the same
# user of the aws-cn partition, with STRICT_CN_KEY_ID (and the same secret),
# signs for the China regions. A role session's temporary credentials, as
# apps on EC2, ECS or Lambda get them: STRICT_ROLE_KEY_ID (ASIA...),
# STRICT_ROLE_SECRET and STRICT_ROLE_TOKEN, the session token requests must
# carry in X-Amz-Security-Token, of the role STRICT_ROLE_ARN; the caller is
# the session STRICT_ROLE_SESSION_ARN (Keyfort names a role's session after
# its access key id), allowed the same and cloudtrail:LookupEvents.
STRICT_KEY_ID=AKIAINTEROP000000001
STRICT_CN_KEY_ID=AKIAINTEROPCN0000001
STRICT_SECRET=""
STRICT_ROLE_ARN=arn:aws:iam::123456789012:role/interop-role
STRICT_ROLE_KEY_ID=ASIAINTEROP000000001
STRICT_ROLE_SESSION_ARN=arn:aws:sts::123456789012:assumed-role/interop-role/$STRICT_ROLE_KEY_ID
STRICT_ROLE_SECRET=""
STRICT_ROLE_TOKEN=""
write_strict_credentials() {
	STRICT_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(30))')
	STRICT_ROLE_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(30))')
	# Shaped like an STS token: base64 (with + / =), some 600 characters.
	STRICT_ROLE_TOKEN=$(python3 -c 'import base64, secrets; print(base64.b64encode(b"IQoJb3JpZ2luX2VjE" + secrets.token_bytes(440)).decode())')
	cat >"$1" <<YAML
principals:
  - arn: arn:aws:iam::123456789012:user/interop
    access_keys:
      - id: $STRICT_KEY_ID
        secret: $STRICT_SECRET
    policies:
      - |
        {"Version": "2012-10-17", "Statement": [
          {"Effect": "Allow", "Action": ["kms:*", "secretsmanager:*"], "Resource": "*"}]}
  - arn: arn:aws-cn:iam::123456789012:user/interop
    access_keys:
      - id: $STRICT_CN_KEY_ID
        secret: $STRICT_SECRET
    policies:
      - |
        {"Version": "2012-10-17", "Statement": [
          {"Effect": "Allow", "Action": ["kms:*", "secretsmanager:*"], "Resource": "*"}]}
  - arn: $STRICT_ROLE_ARN
    access_keys:
      - id: $STRICT_ROLE_KEY_ID
        secret: $STRICT_ROLE_SECRET
        session_token: "$STRICT_ROLE_TOKEN"
    policies:
      - |
        {"Version": "2012-10-17", "Statement": [
          {"Effect": "Allow", "Action": ["kms:*", "secretsmanager:*", "cloudtrail:LookupEvents"], "Resource": "*"}]}
YAML
	chmod 600 "$1"
	STRICT_ROLE_ENV=(AWS_ACCESS_KEY_ID="$STRICT_ROLE_KEY_ID" AWS_SECRET_ACCESS_KEY="$STRICT_ROLE_SECRET" AWS_SESSION_TOKEN="$STRICT_ROLE_TOKEN")
}
# STRICT_ROLE_ENV: the role session's credentials as env(1) assignments.
STRICT_ROLE_ENV=()

# build_keyfort builds this repository's keyfort into $WORK/keyfort.
build_keyfort() {
	echo "== building keyfort from $REPO"
	(cd "$REPO" && CGO_ENABLED=0 go build -o "$WORK/keyfort" ./cmd/keyfort)
}

# start_keyfort ARG... starts $WORK/keyfort serve on 127.0.0.1:$PORT (a free
# port unless PORT is set) over plain HTTP, with its data in $WORK/data, the
# ARGs and its log in $WORK/server.log, sets SERVER_PID and ENDPOINT, and
# waits up to 10 s for GET /health.
start_keyfort() {
	PORT=${PORT:-$(free_port)}
	"$WORK/keyfort" serve --listen "127.0.0.1:$PORT" --data "$WORK/data" "$@" >"$WORK/server.log" 2>&1 &
	SERVER_PID=$!
	ENDPOINT="http://127.0.0.1:$PORT"
	for _ in $(seq 1 100); do
		curl -sf "$ENDPOINT/health" >/dev/null 2>&1 && return 0
		kill -0 "$SERVER_PID" 2>/dev/null || fail "keyfort exited at start"
		sleep 0.1
	done
	curl -sf "$ENDPOINT/health" >/dev/null || fail "keyfort not healthy on $ENDPOINT"
}

# start_keyfort_mode ARG...: start_keyfort with the ARGs, in strict auth mode
# with write_strict_credentials' file when STRICT=1 (else dev auth), and a
# PASS line naming the mode. AUTH keeps the auth arguments, for a restart
# with the same credentials (start_keyfort "${AUTH[@]}").
AUTH=()
start_keyfort_mode() {
	AUTH=()
	local mode="dev auth"
	if [ "${STRICT:-0}" = 1 ]; then
		write_strict_credentials "$WORK/credentials.yaml"
		AUTH=(--auth strict --credentials "$WORK/credentials.yaml")
		mode="strict auth, $STRICT_KEY_ID of arn:aws:iam::123456789012:user/interop"
	fi
	start_keyfort "$@" "${AUTH[@]}"
	pass "$("$WORK/keyfort" version) serving HTTP on 127.0.0.1:$PORT ($mode, data $WORK/data)"
}

# finish ends a script whose checks all ran: exit 3 listing DEVIATIONS when
# Keyfort answered differently from AWS, else "== all checks passed".
finish() {
	if [ "${#DEVIATIONS[@]}" -gt 0 ]; then
		echo "== Keyfort differs from AWS:" >&2
		printf 'DEVIATION: %s\n' "${DEVIATIONS[@]}" >&2
		echo "FAIL: ${#DEVIATIONS[@]} deviation(s) from AWS (every other check passed)" >&2
		exit 3
	fi
	echo "== all checks passed"
}

# isolate_env gives the AWS CLI and the tool under test one environment that
# reaches nothing but Keyfort: dev credentials and us-east-1 from the
# environment, no shared config or instance metadata, no inherited profile,
# session token or endpoint variable (the script sets the one its tool
# reads), every proxy variable at a closed loopback port with NO_PROXY for
# loopback (a call the tool did not mean for Keyfort cannot leave the
# machine), HOME in $WORK/home (no tool config of the user's), and $WORK as
# the working directory. Call it after start_keyfort.
isolate_env() {
	export AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=anything
	export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
	export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
	unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_KMS \
		AWS_ENDPOINT_URL_SECRETS_MANAGER AWS_ENDPOINT_URL_STS AWS_IGNORE_CONFIGURED_ENDPOINT_URLS
	export HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost
	export https_proxy=$HTTPS_PROXY http_proxy=$HTTP_PROXY no_proxy=$NO_PROXY
	export HOME="$WORK/home"
	mkdir -p "$HOME"
	cd "$WORK"
}

# isolate_env_strict: isolate_env, then with STRICT=1 the IAM user's key of
# write_strict_credentials in the environment (the tool under test and kf
# sign with it).
isolate_env_strict() {
	isolate_env
	if [ "${STRICT:-0}" = 1 ]; then
		export AWS_ACCESS_KEY_ID=$STRICT_KEY_ID AWS_SECRET_ACCESS_KEY=$STRICT_SECRET
	fi
}

# trail_events FILE NAME...: append to FILE the CloudTrail events (one JSON
# object a line) that lookup-events finds for each event NAME (at most 50
# each), asked as the role session under STRICT=1 (the IAM user may not).
trail_events() {
	local file=$1 name
	shift
	for name in "$@"; do
		env "${STRICT_ROLE_ENV[@]}" aws --endpoint-url "$ENDPOINT" --region us-east-1 cloudtrail lookup-events \
			--lookup-attributes "AttributeKey=EventName,AttributeValue=$name" --max-results 50 --output json |
			python3 -c 'import json, sys
for e in json.load(sys.stdin)["Events"]: print(e["CloudTrailEvent"])' >>"$file"
	done
}

# trail_lines ATTR VALUE: the CloudTrail events lookup-events finds for one
# lookup attribute, one line each: event name, error code or -, request
# parameters (sorted, compact JSON), the user agent's first word.
trail_lines() {
	kf cloudtrail lookup-events --lookup-attributes "AttributeKey=$1,AttributeValue=$2" --output json |
		python3 -c 'import json, sys
for e in json.load(sys.stdin)["Events"]:
    c = json.loads(e["CloudTrailEvent"])
    print(e["EventName"], c.get("errorCode", "-"), json.dumps(c.get("requestParameters") or {}, sort_keys=True, separators=(",", ":")), c.get("userAgent", "").split(" ")[0])'
}

# kf runs the AWS CLI against the Keyfort of start_keyfort (plain HTTP).
kf() { aws --endpoint-url "$ENDPOINT" --region us-east-1 "$@"; }

# start_xks_proxies starts gov1xks.py (e2e/smoke/xksproxy.py's XksProxy over
# TLS on loopback, one credential, the external key XKS_KEY) for the two
# stores XKS_HOST + XKS_PATH and XKS_HOST2 + XKS_PATH2, which the caller
# sets, and waits until they listen: their files are then in $WORK/xks and
# XKS_ADDRESSES is keyfort's --xks-proxy-address. They are stopped on exit
# (stop_xks), before lib.sh's cleanup, with their log's tail on a failure.
XKS_PID=""
stop_xks() {
	if [ -n "$XKS_PID" ] && kill -0 "$XKS_PID" 2>/dev/null; then
		kill "$XKS_PID" 2>/dev/null || true
		wait "$XKS_PID" 2>/dev/null || true
	fi
	XKS_PID=""
}
start_xks_proxies() {
	python3 -c 'import cryptography' 2>/dev/null || fail "python3 lacks the cryptography package (the XKS proxies)"
	# set +e, so that (exit "$rc") hands cleanup the exit status.
	trap 'rc=$?; set +e; stop_xks; if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
	echo "--- xks proxy log and requests (last 20 lines) ---" >&2
	cat "$WORK/xks.log" "$WORK/xks/requests" 2>/dev/null | tail -n 20 >&2 || true
fi; (exit "$rc"); cleanup' EXIT
	python3 "$REPO/e2e/interop/gov1xks.py" "$WORK/xks" us-east-1 "$XKS_KEY" "$XKS_HOST=$XKS_PATH" "$XKS_HOST2=$XKS_PATH2" >"$WORK/xks.log" 2>&1 &
	XKS_PID=$!
	for _ in $(seq 1 100); do
		[ -e "$WORK/xks/ready" ] && break
		kill -0 "$XKS_PID" 2>/dev/null || fail "the XKS proxies exited at start: $(cat "$WORK/xks.log")"
		sleep 0.1
	done
	[ -e "$WORK/xks/ready" ] || fail "the XKS proxies did not start in 10 s"
	XKS_ADDRESSES=$(cat "$WORK/xks/addresses")
}

# check_xks_requests stops the proxies and checks what they saw: Keyfort's
# calls for the KMS operations the client made (the two stores' health
# checks, the key's metadata, an Encrypt and a Decrypt), nothing refused,
# and with STRICT=1 the caller named to them (awsPrincipalArn). With
# --allow-none, a proxy that saw nothing passes (the client skipped KMS).
check_xks_requests() {
	stop_xks
	[ -e "$WORK/xks/requests" ] || fail "the XKS proxies wrote no requests file: $(cat "$WORK/xks.log")"
	if [ "${1:-}" = --allow-none ] && [ ! -s "$WORK/xks/requests" ]; then
		return 0
	fi
	if grep -q " REFUSED " "$WORK/xks/requests"; then
		fail "an XKS proxy refused requests: $(grep " REFUSED " "$WORK/xks/requests")"
	fi
	local want principals
	for want in "$XKS_HOST GetHealthStatus CreateCustomKeyStore" "$XKS_HOST GetHealthStatus ConnectCustomKeyStore" \
		"$XKS_HOST GetKeyMetadata CreateKey $XKS_KEY" "$XKS_HOST Encrypt Encrypt $XKS_KEY" "$XKS_HOST Decrypt Decrypt $XKS_KEY" \
		"$XKS_HOST2 GetHealthStatus CreateCustomKeyStore"; do
		grep -q "^$want " "$WORK/xks/requests" || fail "the XKS proxies got no \"$want\" request: $(cat "$WORK/xks/requests")"
	done
	principals=$(awk '$5 != "-" { $1 = $2 = $3 = $4 = ""; sub(/^ +/, ""); print }' "$WORK/xks/requests" | sort -u | paste -sd, -)
	if [ "${STRICT:-0}" = 1 ] && [ "$principals" != "arn:aws:iam::123456789012:user/interop" ]; then
		fail "the XKS proxies were told the caller $principals, want arn:aws:iam::123456789012:user/interop"
	fi
	pass "the XKS proxies took $(wc -l <"$WORK/xks/requests") requests, none refused: $(cut -d' ' -f1-3 "$WORK/xks/requests" | sort | uniq -c | sed 's/^ *//' | paste -sd, - | sed 's/,/, /g'); awsPrincipalArn $principals"
}
