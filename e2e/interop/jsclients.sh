#!/usr/bin/env bash
# Manual interop check: the AWS Encryption SDK for JavaScript (@aws-crypto/client-node),
# the AWS SDK for JavaScript v3 (@aws-sdk/client-kms, client-secrets-manager) and
# v2 (aws-sdk) against Keyfort. The v3 KMS client also drives an external key
# store against real XKS proxies: e2e/smoke/xksproxy.py, started by gov1xks.py.
# NOT run by CI (CI has no Node.js and no npm registry).
#
#   e2e/interop/jsclients.sh            # KEEP=1 keeps the temp dir
#   STRICT=1 e2e/interop/jsclients.sh   # keyfort in strict auth mode: every signature verified
#
# Needs: Go (builds keyfort from this repo), Node.js >= 20 and npm with the npm
# registry reachable (npm ci of jsclients/package-lock.json into the temp dir),
# python3 with botocore (the KMS and Secrets Manager models the responses are
# checked against) and cryptography (the XKS proxies), curl. Everything happens
# in a fresh temp dir; the server and the XKS proxies are stopped on exit. Every check prints a PASS line. Exit status: 0 all passed;
# 1 a check failed (stops at once, prints the server log's tail); 3 every check
# passed but Keyfort answered differently from AWS in a way these clients
# expose (printed as DEVIATION lines). See e2e/interop/README.md.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" jsclients go node npm python3 curl

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# ---- 1. the JS clients: npm ci of the pinned lock file into the temp dir -----
echo "== npm ci (jsclients/package-lock.json) into $WORK/js"
mkdir -p "$WORK/js"
cp "$HERE/jsclients/package.json" "$HERE/jsclients/package-lock.json" "$HERE/jsclients/check.mjs" "$HERE/jsclients/v2.mjs" "$WORK/js/"
(cd "$WORK/js" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >"$WORK/npm.log" 2>&1) \
	|| { cat "$WORK/npm.log" >&2; fail "npm ci"; }
ver() { node -p "require('$WORK/js/node_modules/$1/package.json').version"; }
pass "node $(node --version), @aws-crypto/client-node $(ver @aws-crypto/client-node), @aws-sdk/client-kms $(ver @aws-sdk/client-kms), @aws-sdk/client-secrets-manager $(ver @aws-sdk/client-secrets-manager), aws-sdk (v2) $(ver aws-sdk)"

# ---- 2. the botocore models the responses are checked against ---------------
mkdir -p "$WORK/models"
python3 - "$WORK/models" <<'PY'
import botocore, gzip, os, sys
base = os.path.join(os.path.dirname(botocore.__file__), "data")
for name, path in (("kms", "kms/2014-11-01"), ("secretsmanager", "secretsmanager/2017-10-17")):
    with gzip.open(os.path.join(base, path, "service-2.json.gz")) as f, open(os.path.join(sys.argv[1], name + ".json"), "wb") as out:
        out.write(f.read())
print("PASS: botocore %s models (kms 2014-11-01, secretsmanager 2017-10-17)" % botocore.__version__)
PY

# ---- 3. the external key store proxies ----------------------------------------
# gov1xks.py (as gov1.sh uses it): e2e/smoke/xksproxy.py's XksProxy over TLS
# on loopback, one credential, the external key XKS_KEY: the store check.mjs
# connects, at https://XKS_HOST + XKS_PATH, and a second store's (a proxy
# serves one URI path), which check.mjs creates and deletes. Keyfort trusts
# their self-signed certificates and reaches their host names on their
# loopback ports. Stopped on exit, before the server.
XKS_HOST=xks.jsclients.test XKS_PATH=/js/kms/xks/v1
XKS_HOST2=xks2.jsclients.test XKS_PATH2=/js/second/kms/xks/v1
XKS_KEY=js-ext-key-1
start_xks_proxies
pass "$(head -n 1 "$WORK/xks.log") (e2e/smoke/xksproxy.py via gov1xks.py), external key $XKS_KEY"

# ---- 4. build and start keyfort (plain HTTP on loopback, dev auth) ----------
# STRICT=1: strict auth, one principal allowed everything on both services
# and a role session with a session token (lib.sh); check.mjs signs with the
# principal's key and adds the negative and session token checks.
build_keyfort
unset KF_STRICT KF_ACCESS_KEY_ID KF_SECRET_ACCESS_KEY KF_ROLE_ACCESS_KEY_ID KF_ROLE_SECRET_ACCESS_KEY KF_ROLE_SESSION_TOKEN KF_ROLE_SESSION_ARN KF_CN_ACCESS_KEY_ID
AUTH=()
AUTH_MODE="dev auth"
if [ "${STRICT:-0}" = 1 ]; then
	write_strict_credentials "$WORK/credentials.yaml"
	AUTH=(--auth strict --credentials "$WORK/credentials.yaml")
	AUTH_MODE="strict auth, $STRICT_KEY_ID of arn:aws:iam::123456789012:user/interop"
	export KF_STRICT=1 KF_ACCESS_KEY_ID="$STRICT_KEY_ID" KF_SECRET_ACCESS_KEY="$STRICT_SECRET" KF_CN_ACCESS_KEY_ID="$STRICT_CN_KEY_ID"
	# The role session's temporary credentials, for the session token checks.
	export KF_ROLE_ACCESS_KEY_ID="$STRICT_ROLE_KEY_ID" KF_ROLE_SECRET_ACCESS_KEY="$STRICT_ROLE_SECRET" \
		KF_ROLE_SESSION_TOKEN="$STRICT_ROLE_TOKEN" KF_ROLE_SESSION_ARN="$STRICT_ROLE_SESSION_ARN"
fi
start_keyfort "${AUTH[@]}" \
	--xks-proxy-ca "$WORK/xks/ca.pem" --xks-proxy-address "$XKS_ADDRESSES" --xks-proxy-timeout 2s
pass "$("$WORK/keyfort" version) serving HTTP on 127.0.0.1:$PORT ($AUTH_MODE; --xks-proxy-address $XKS_ADDRESSES)"

# ---- 5. the checks (check.mjs prints PASS/DEVIATION/FAIL; exit 0, 1 or 3) ---
# Every response it saw goes to $WORK/wire.jsonl (KEEP=1 keeps it).
# No shared config, no instance metadata: the clients get endpoint, region and
# static credentials in code; these only keep the environment from leaking in.
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_ENDPOINT_URL AWS_ENDPOINT_URL_KMS AWS_ENDPOINT_URL_SECRETS_MANAGER HTTP_PROXY HTTPS_PROXY http_proxy https_proxy
rc=0
# The XKS proxies' URIs, key and credential for the xks step (the secret in
# the environment, not on a command line).
KF_ENDPOINT="http://127.0.0.1:$PORT" KF_MODELS="$WORK/models" KF_DUMP="$WORK/wire.jsonl" \
	KF_XKS_ENDPOINT="https://$XKS_HOST" KF_XKS_PATH="$XKS_PATH" KF_XKS_ENDPOINT2="https://$XKS_HOST2" KF_XKS_PATH2="$XKS_PATH2" \
	KF_XKS_KEY="$XKS_KEY" KF_XKS_ACCESS_KEY_ID="$(cat "$WORK/xks/access-key-id")" KF_XKS_SECRET="$(cat "$WORK/xks/secret")" \
	timeout 300 node "$WORK/js/check.mjs" || rc=$?
case $rc in
0) ;;
3) echo "FAIL: Keyfort differs from AWS (DEVIATION lines above; every other check passed)" >&2; exit 3 ;;
*) fail "check.mjs exited $rc" ;;
esac

# ---- 6. what the XKS proxies saw: Keyfort's calls for the v3 client's KMS
# operations, nothing refused (and, STRICT=1, the caller named to them).
check_xks_requests

# ---- 7. STRICT=1: the role session in the audit trail --------------------------
# CloudTrail LookupEvents by the session's access key, signed by botocore with
# the session token (the role may call cloudtrail:LookupEvents): the events of
# check.mjs's calls with the token name the caller as AWS does for a role
# session, userIdentity type AssumedRole with the session's ARN.
if [ "${STRICT:-0}" = 1 ]; then
	KF_ENDPOINT="http://127.0.0.1:$PORT" STRICT_ROLE_ARN="$STRICT_ROLE_ARN" python3 - <<'PY' || fail "CloudTrail events of the role session"
import collections, json, os, sys
import botocore.session

key, arn = os.environ["KF_ROLE_ACCESS_KEY_ID"], os.environ["KF_ROLE_SESSION_ARN"]
ct = botocore.session.get_session().create_client(
    "cloudtrail", region_name="us-east-1", endpoint_url=os.environ["KF_ENDPOINT"],
    aws_access_key_id=key, aws_secret_access_key=os.environ["KF_ROLE_SECRET_ACCESS_KEY"],
    aws_session_token=os.environ["KF_ROLE_SESSION_TOKEN"])
events = []
for page in ct.get_paginator("lookup_events").paginate(
        LookupAttributes=[{"AttributeKey": "AccessKeyId", "AttributeValue": key}]):
    events += [json.loads(e["CloudTrailEvent"]) for e in page["Events"]]
names = collections.Counter(e["eventName"] for e in events if "errorCode" not in e)
bad = [e for e in events if e["userIdentity"].get("type") != "AssumedRole" or e["userIdentity"].get("arn") != arn
       or e["userIdentity"].get("accessKeyId") != key]
want = {"ListKeys", "ListSecrets", "CreateKey", "Encrypt", "Decrypt"}
if bad or not want <= set(names):
    print("FAIL: CloudTrail events of %s: %d with another userIdentity (first: %s); calls %s, want %s"
          % (key, len(bad), bad[0]["userIdentity"] if bad else None, dict(names), sorted(want)))
    sys.exit(1)
role = os.environ["STRICT_ROLE_ARN"]
no_issuer = [e for e in events if e["userIdentity"].get("sessionContext", {}).get("sessionIssuer", {}).get("arn") != role]
if no_issuer:
    print("FAIL: CloudTrail events of %s without sessionContext.sessionIssuer.arn %s: %d (first: %s)"
          % (key, role, len(no_issuer), no_issuer[0]["userIdentity"]))
    sys.exit(1)
js = [e for e in events if "errorCode" not in e and "aws-sdk-js" in e.get("userAgent", "")]
u = next(e for e in events if e["eventName"] == "Encrypt")["userIdentity"]
issuer = u.get("sessionContext", {}).get("sessionIssuer", {})
print("PASS: CloudTrail LookupEvents (botocore, with the session token) by AccessKeyId %s: %d events (%s), %d of them by the JS SDK; "
      "every userIdentity type AssumedRole, arn %s, principalId %s, sessionIssuer %s"
      % (key, len(events), ", ".join("%s %d" % kv for kv in sorted(names.items())), len(js), arn,
         u.get("principalId"), issuer.get("arn") or "(none)"))
PY
fi
echo "== all checks passed"
