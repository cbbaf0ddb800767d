#!/usr/bin/env bash
# Manual interop check: the AWS Encryption SDK for Go (with AWS's Material
# Providers Library) against a Keyfort built from this tree: the KMS keyring,
# multi-keyring, discovery keyring, KMS RSA keyring and KMS ECDH keyring
# (e2e/interop/esdkgocheck, its own module). NOT run by CI.
#
#   e2e/interop/esdkgo.sh            # KEEP=1 keeps the temp dir
#   STRICT=1 e2e/interop/esdkgo.sh   # keyfort in strict auth mode
#
# Needs: Go (builds keyfort and esdkgocheck; its dependencies come from the
# Go module proxy), the AWS CLI, curl, python3.
# Everything happens in a fresh temp dir; the server is stopped on exit. Every
# check prints a PASS line. Exit status: 0 all passed; 1 a check failed (stops
# at once, prints the server log's tail). See e2e/interop/README.md.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" esdkgo go aws curl python3

export GOTOOLCHAIN=local
build_keyfort
echo "== building esdkgocheck"
(cd "$REPO/e2e/interop/esdkgocheck" && CGO_ENABLED=0 go build -o "$WORK/esdkgocheck" .)
DEPS=$(cd "$REPO/e2e/interop/esdkgocheck" && go list -m -f '{{.Path}} {{.Version}}' \
	github.com/aws/aws-encryption-sdk/releases/go/encryption-sdk \
	github.com/aws/aws-cryptographic-material-providers-library/releases/go/mpl \
	github.com/aws/aws-sdk-go-v2/service/kms | paste -sd, -)
pass "esdkgocheck built with $(go env GOVERSION): $DEPS"

start_keyfort_mode
isolate_env_strict
# The multi-keyring's default client supplier makes its own KMS clients:
# AWS_ENDPOINT_URL_KMS takes them to Keyfort.
export AWS_ENDPOINT_URL_KMS=$ENDPOINT

echo "== the keyrings"
"$WORK/esdkgocheck" -endpoint "$ENDPOINT" || fail "esdkgocheck"

echo "== CloudTrail"
: >"$WORK/trail.jsonl"
trail_events "$WORK/trail.jsonl" GenerateDataKey Encrypt Decrypt DeriveSharedSecret GetPublicKey
python3 - "$WORK/trail.jsonl" "${STRICT:-0}" <<'PY' || fail "CloudTrail events of the SDK's calls"
import collections, json, sys
events = [json.loads(l) for l in open(sys.argv[1])]
strict = sys.argv[2] == "1"
count = collections.Counter((e["eventName"], e.get("errorCode", "")) for e in events)
for e in events:
    p = e["requestParameters"] or {}
    assert "plaintext" not in p and "publicKey" not in json.dumps(e.get("responseElements")), e
    if e["eventName"] in ("GenerateDataKey", "Encrypt") and not e.get("errorCode"):
        assert p.get("encryptionContext", {}).get("purpose") == "interop", p
    if strict:
        assert e["userIdentity"]["arn"] == "arn:aws:iam::123456789012:user/interop", e["userIdentity"]
for want in [("GenerateDataKey", ""), ("Encrypt", ""), ("Decrypt", ""), ("DeriveSharedSecret", ""), ("GetPublicKey", ""),
             ("Decrypt", "InvalidCiphertextException"), ("Decrypt", "DisabledException"),
             ("DeriveSharedSecret", "InvalidKeyUsageException")]:
    assert count[want] > 0, (want, count)
print("PASS: CloudTrail: " + ", ".join(f"{n}{' ' + c if c else ''} {k}" for (n, c), k in sorted(count.items())) +
      "; the SDK's encryption context on GenerateDataKey and Encrypt, no plaintext")
PY
finish
