#!/usr/bin/env bash
# Manual interop check: the AWS SDK for Go v1 (github.com/aws/aws-sdk-go,
# its own JSON protocol code) over every KMS and Secrets Manager operation,
# and AWS's Secrets Manager caching client (aws-secretsmanager-caching-go v1
# and v2), against a Keyfort built from this tree. The client is
# e2e/interop/gov1check, its own module. The external key store operations
# go to real XKS proxies: e2e/smoke/xksproxy.py, started by gov1xks.py.
# NOT run by CI.
#
#   e2e/interop/gov1.sh            # KEEP=1 keeps the temp dir (wire.jsonl: every response)
#   STRICT=1 e2e/interop/gov1.sh   # keyfort in strict auth mode: every signature verified
#
# Needs: Go (builds keyfort and gov1check; gov1check's dependencies come from
# the Go module proxy), python3 with botocore (the models) and cryptography
# (the XKS proxies), curl.
# Everything happens in a fresh temp dir; the server and the XKS proxies are
# stopped on exit. Every check prints a PASS line. Exit status: 0 all passed;
# 1 a check failed (stops at once, prints the server log's tail); 3 every
# check passed but Keyfort answered differently from AWS in a way a client
# sees (DEVIATION lines).
# See e2e/interop/README.md.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" gov1 go python3 curl timeout

export GOTOOLCHAIN=local
build_keyfort
echo "== building gov1check"
(cd "$REPO/e2e/interop/gov1check" && CGO_ENABLED=0 go build -o "$WORK/gov1check" .)
DEPS=$(cd "$REPO/e2e/interop/gov1check" && go list -m -f '{{.Path}} {{.Version}}' \
	github.com/aws/aws-sdk-go github.com/aws/aws-secretsmanager-caching-go \
	github.com/aws/aws-secretsmanager-caching-go/v2 github.com/aws/aws-sdk-go-v2/service/secretsmanager | paste -sd, -)
pass "gov1check built with $(go env GOVERSION): $DEPS"
MODELS=$(python3 -c 'import botocore, os; print(os.path.join(os.path.dirname(botocore.__file__), "data"))')
pass "botocore $(python3 -c 'import botocore; print(botocore.__version__)') models in $MODELS"

# The external key store proxies (gov1xks.py: e2e/smoke/xksproxy.py's
# XksProxy over TLS on loopback, one credential, the external key XKS_KEY):
# the store gov1check connects, at https://XKS_HOST + XKS_PATH, and a second
# store's (the proxy serves one URI path), which gov1check creates and
# deletes. Keyfort trusts their self-signed certificates and reaches their
# host names on their loopback ports. Stopped on exit, before the server.
XKS_HOST=xks.gov1.test XKS_PATH=/gov1/kms/xks/v1
XKS_HOST2=xks2.gov1.test XKS_PATH2=/gov1/second/kms/xks/v1
XKS_KEY=gov1-ext-key-1
start_xks_proxies
pass "$(head -n 1 "$WORK/xks.log") (e2e/smoke/xksproxy.py), external key $XKS_KEY"

PORT=$(free_port)
HOOK_PORT=$(free_port)
[ "$PORT" != "$HOOK_PORT" ] || HOOK_PORT=$(free_port)
# The rotation webhook is served by gov1check itself (a rotation Lambda's
# four steps, calling back with the v1 client).
cat >"$WORK/keyfort.yaml" <<YAML
rotation_webhooks:
  arn:aws:lambda:us-east-1:123456789012:function:gov1-rotate: http://127.0.0.1:$HOOK_PORT/rotate
YAML

# STRICT=1: strict auth, one principal allowed everything on both services
# and a role session with a session token (lib.sh); gov1check signs with the
# principal's key and adds the negative and session token checks.
AUTH=()
AUTH_MODE="dev auth"
CLIENT_AUTH=()
if [ "${STRICT:-0}" = 1 ]; then
	write_strict_credentials "$WORK/credentials.yaml"
	AUTH=(--auth strict --credentials "$WORK/credentials.yaml")
	AUTH_MODE="strict auth, $STRICT_KEY_ID of arn:aws:iam::123456789012:user/interop"
	CLIENT_AUTH=(-strict -access-key "$STRICT_KEY_ID" -secret-key "$STRICT_SECRET" -cn-access-key "$STRICT_CN_KEY_ID"
		-role-access-key "$STRICT_ROLE_KEY_ID" -role-secret-key "$STRICT_ROLE_SECRET"
		-role-session-token "$STRICT_ROLE_TOKEN" -role-session-arn "$STRICT_ROLE_SESSION_ARN")
fi
start_keyfort --config "$WORK/keyfort.yaml" "${AUTH[@]}" \
	--xks-proxy-ca "$WORK/xks/ca.pem" --xks-proxy-address "$XKS_ADDRESSES" --xks-proxy-timeout 2s
pass "$("$WORK/keyfort" version) serving HTTP on 127.0.0.1:$PORT ($AUTH_MODE, data $WORK/data; --xks-proxy-address $XKS_ADDRESSES)"

# No shared config, no instance metadata, no inherited endpoint: gov1check
# sets region, endpoint and static credentials in code.
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_ENDPOINT_URL AWS_ENDPOINT_URL_KMS AWS_ENDPOINT_URL_SECRETS_MANAGER AWS_CA_BUNDLE

rc=0
# The proxies' secret goes in the environment, not on a command line.
GOV1CHECK_XKS_SECRET=$(cat "$WORK/xks/secret") timeout 300 "$WORK/gov1check" -endpoint "http://127.0.0.1:$PORT" -models "$MODELS" \
	-webhook "127.0.0.1:$HOOK_PORT" -wire "$WORK/wire.jsonl" \
	-xks-endpoint "https://$XKS_HOST" -xks-path "$XKS_PATH" -xks-endpoint2 "https://$XKS_HOST2" -xks-path2 "$XKS_PATH2" \
	-xks-key "$XKS_KEY" -xks-access-key "$(cat "$WORK/xks/access-key-id")" "${CLIENT_AUTH[@]}" "$@" || rc=$?
case "$rc" in
0)
	# What the proxies saw (nothing when gov1check skipped its KMS part).
	check_xks_requests --allow-none
	echo "== all checks passed"
	;;
3)
	echo "FAIL: deviation(s) from AWS (every other check passed); see the DEVIATION lines" >&2
	exit 3
	;;
*) exit 1 ;;
esac
