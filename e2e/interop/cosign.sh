#!/usr/bin/env bash
# Manual interop check: sigstore cosign signs and verifies a blob through its
# awskms:// provider against Keyfort over TLS. NOT run by CI (CI has no cosign).
#
#   COSIGN=/path/to/cosign e2e/interop/cosign.sh
#
# Needs: Go (builds keyfort from this repo), the AWS CLI, openssl, curl, python3.
# Everything happens in a fresh temp dir (kept with KEEP=1); the server is
# stopped on exit. Every check prints a PASS line. Exit status: 0 all passed;
# 1 a check failed (stops at once); 3 every check passed but Keyfort answered
# differently from AWS in a way cosign users see (printed as DEVIATION lines).
# See e2e/interop/README.md.
set -euo pipefail

: "${COSIGN:?set COSIGN to the path of a cosign v2 binary}"
[ -x "$COSIGN" ] || { echo "FAIL: COSIGN=$COSIGN is not executable" >&2; exit 1; }
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" cosign go aws openssl curl python3 base64 cmp

# ---- 1. build and start keyfort with a self-signed TLS certificate ----------
echo "== building keyfort from $REPO"
(cd "$REPO" && CGO_ENABLED=0 go build -o "$WORK/keyfort" ./cmd/keyfort)
PORT=$(free_port)
"$WORK/keyfort" serve --listen "127.0.0.1:$PORT" --data "$WORK/data" --tls-self-signed \
	>"$WORK/server.log" 2>&1 &
SERVER_PID=$!
CA="$WORK/data/tls/ca.pem"
for _ in $(seq 1 100); do
	if [ -s "$CA" ] && curl -sf --cacert "$CA" "https://127.0.0.1:$PORT/health" >/dev/null 2>&1; then
		break
	fi
	kill -0 "$SERVER_PID" 2>/dev/null || fail "keyfort exited at start"
	sleep 0.1
done
curl -sf --cacert "$CA" "https://127.0.0.1:$PORT/health" >/dev/null || fail "keyfort not healthy on https://127.0.0.1:$PORT"
pass "$("$WORK/keyfort" version) serving HTTPS on 127.0.0.1:$PORT (CA $CA)"

# One environment for the AWS CLI and cosign: dev-mode credentials, a region
# (cosign's awskms provider takes it from AWS_REGION), no shared config, no
# instance metadata, and trust in Keyfort's CA. cosign's provider always calls
# https://<ENDPOINT>; its AWS SDK for Go v2 trusts AWS_CA_BUNDLE *instead of*
# the system roots when that is set (an inherited AWS_CA_BUNDLE pointing at the
# system bundle gives "x509: certificate signed by unknown authority"), and
# Go's system roots otherwise, which SSL_CERT_FILE names: set both to the CA.
export AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=anything
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_KMS AWS_TLS_INSECURE_SKIP_VERIFY
export AWS_CA_BUNDLE="$CA" SSL_CERT_FILE="$CA"
export TUF_ROOT="$WORK/sigstore-tuf" HOME="$WORK/home"
mkdir -p "$HOME"

kf() { aws --endpoint-url "https://127.0.0.1:$PORT" --ca-bundle "$CA" --region us-east-1 "$@"; }
json() { python3 -c 'import json, sys; d = json.load(sys.stdin)
for k in sys.argv[1].split("."): d = d[k] if not k.isdigit() else d[int(k)]
print(d)' "$1"; }

COSIGN_VERSION=$("$COSIGN" version 2>&1 | awk '/^GitVersion:/ {print $2}')
pass "cosign ${COSIGN_VERSION:-unknown} ($COSIGN)"

printf 'Keyfort cosign interop blob, %s\n' "$(date -u +%FT%TZ)" >"$WORK/blob.txt"
{ cat "$WORK/blob.txt"; echo "tampered"; } >"$WORK/tampered.txt"

# ---- 2-3. per key spec: create key + alias, then cosign against it ----------
check_spec() {
	local spec=$1 name=$2
	local d="$WORK/$name"
	mkdir -p "$d"
	echo "== $spec (alias/$name)"

	kf kms create-key --key-spec "$spec" --key-usage SIGN_VERIFY --description "cosign interop $spec" >"$d/create.json"
	local kid arn alg
	kid=$(json KeyMetadata.KeyId <"$d/create.json")
	arn=$(json KeyMetadata.Arn <"$d/create.json")
	kf kms create-alias --alias-name "alias/$name" --target-key-id "$kid"
	kf kms describe-key --key-id "alias/$name" >"$d/describe.json"
	[ "$(json KeyMetadata.KeyId <"$d/describe.json")" = "$kid" ] || fail "describe-key alias/$name names another key"
	# cosign's awskms provider signs and verifies with SigningAlgorithms[0].
	alg=$(json KeyMetadata.SigningAlgorithms.0 <"$d/describe.json")
	pass "$spec: key $kid, alias/$name, cosign will use SigningAlgorithms[0] = $alg"

	local ref="awskms://127.0.0.1:$PORT/alias/$name"

	# public-key: cosign's PEM must be the key GetPublicKey returns.
	"$COSIGN" public-key --key "$ref" >"$d/cosign-pub.pem"
	kf kms get-public-key --key-id "alias/$name" --query PublicKey --output text | base64 -d >"$d/aws-pub.der"
	openssl pkey -pubin -inform DER -in "$d/aws-pub.der" -out "$d/aws-pub.pem"
	openssl pkey -pubin -in "$d/cosign-pub.pem" -outform DER -out "$d/cosign-pub.der"
	cmp -s "$d/aws-pub.der" "$d/cosign-pub.der" || fail "$spec: cosign public-key differs from GetPublicKey"
	pass "$spec: cosign public-key --key $ref matches GetPublicKey"

	# The other reference forms cosign accepts: key id, key ARN, alias ARN.
	local other
	for other in "$kid" "$arn" "arn:aws:kms:us-east-1:123456789012:alias/$name"; do
		"$COSIGN" public-key --key "awskms://127.0.0.1:$PORT/$other" >"$d/other.pem"
		cmp -s "$d/cosign-pub.pem" "$d/other.pem" || fail "$spec: public-key via awskms://.../$other differs"
	done
	pass "$spec: cosign public-key by key id, key ARN and alias ARN give the same key"

	# sign-blob through KMS (no transparency log: loopback only).
	"$COSIGN" sign-blob --yes --key "$ref" --tlog-upload=false \
		--output-signature "$d/blob.sig" "$WORK/blob.txt" 2>"$d/sign.err" || { cat "$d/sign.err" >&2; fail "$spec: sign-blob"; }
	base64 -d "$d/blob.sig" >"$d/blob.sig.der"
	[ -s "$d/blob.sig.der" ] || fail "$spec: empty signature"
	pass "$spec: cosign sign-blob --key $ref ($(wc -c <"$d/blob.sig.der") byte signature)"

	# verify-blob with the KMS key (verifies locally with GetPublicKey's key and $alg).
	"$COSIGN" verify-blob --key "$ref" --signature "$d/blob.sig" --insecure-ignore-tlog=true \
		"$WORK/blob.txt" 2>"$d/verify.err" || { cat "$d/verify.err" >&2; fail "$spec: verify-blob --key $ref"; }
	pass "$spec: cosign verify-blob --key $ref"
	if must_fail "$COSIGN" verify-blob --key "$ref" --signature "$d/blob.sig" --insecure-ignore-tlog=true "$WORK/tampered.txt"; then
		pass "$spec: cosign verify-blob --key $ref rejects a tampered blob"
	else
		fail "$spec: verify-blob --key $ref accepted a tampered blob"
	fi

	# KMS Verify on the digest (what a KMS-side check would answer).
	openssl dgst -sha256 -binary "$WORK/blob.txt" >"$d/blob.sha256"
	[ "$(kf kms verify --key-id "alias/$name" --message "fileb://$d/blob.sha256" --message-type DIGEST \
		--signing-algorithm "$alg" --signature "fileb://$d/blob.sig.der" \
		--query SignatureValid --output text)" = True ] || fail "$spec: kms verify"
	pass "$spec: aws kms verify --message-type DIGEST --signing-algorithm $alg accepts cosign's signature"

	# openssl, independently of cosign and Keyfort, with the algorithm cosign used.
	local sigopts=()
	case "$alg" in
	ECDSA_SHA_256 | RSASSA_PKCS1_V1_5_SHA_256) ;;
	RSASSA_PSS_SHA_256) sigopts=(-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 -sigopt rsa_mgf1_md:sha256) ;;
	*) fail "$spec: no openssl check for $alg" ;;
	esac
	openssl dgst -sha256 "${sigopts[@]}" -verify "$d/aws-pub.pem" -signature "$d/blob.sig.der" "$WORK/blob.txt" >/dev/null \
		|| fail "$spec: openssl rejects cosign's signature"
	pass "$spec: openssl dgst -sha256 ${sigopts[*]:+${sigopts[*]} }-verify pub.pem accepts cosign's signature ($alg)"
	if openssl dgst -sha256 "${sigopts[@]}" -verify "$d/aws-pub.pem" -signature "$d/blob.sig.der" "$WORK/tampered.txt" >/dev/null 2>&1; then
		fail "$spec: openssl accepted a tampered blob"
	fi
	pass "$spec: openssl rejects the signature on a tampered blob"

	# verify-blob with the exported PEM: cosign then knows no KMS algorithm and
	# uses its default for the key type (ECDSA; RSA PKCS#1 v1.5).
	local pem_expect=ok
	case "$alg" in
	RSASSA_PSS_*)
		pem_expect=fail
		DEVIATIONS+=("$spec: DescribeKey lists SigningAlgorithms [$(python3 -c 'import json,sys; print(", ".join(json.load(sys.stdin)["KeyMetadata"]["SigningAlgorithms"]))' <"$d/describe.json")]; AWS lists RSASSA_PKCS1_V1_5_SHA_256 first, so cosign signs with PKCS#1 v1.5 on AWS and with PSS on Keyfort, and 'cosign verify-blob --key pub.pem' rejects Keyfort's signature")
		;;
	esac
	if [ "$pem_expect" = ok ]; then
		"$COSIGN" verify-blob --key "$d/cosign-pub.pem" --signature "$d/blob.sig" --insecure-ignore-tlog=true \
			"$WORK/blob.txt" 2>"$d/verify-pem.err" || { cat "$d/verify-pem.err" >&2; fail "$spec: verify-blob --key pub.pem"; }
		pass "$spec: cosign verify-blob --key pub.pem (exported public key)"
	else
		if must_fail "$COSIGN" verify-blob --key "$d/cosign-pub.pem" --signature "$d/blob.sig" --insecure-ignore-tlog=true "$WORK/blob.txt"; then
			echo "DEVIATION: $spec: cosign verify-blob --key pub.pem rejects the $alg signature: $(tail -n 1 "$WORK/last.err")" >&2
		else
			fail "$spec: verify-blob --key pub.pem accepted a $alg signature (expected PKCS#1 v1.5 only)"
		fi
		# What cosign would have made on AWS (SigningAlgorithms[0] =
		# RSASSA_PKCS1_V1_5_SHA_256): sign the digest so through KMS and check
		# that cosign accepts it with the exported public key.
		kf kms sign --key-id "alias/$name" --message "fileb://$d/blob.sha256" --message-type DIGEST \
			--signing-algorithm RSASSA_PKCS1_V1_5_SHA_256 --query Signature --output text >"$d/blob-pkcs1.sig"
		"$COSIGN" verify-blob --key "$d/cosign-pub.pem" --signature "$d/blob-pkcs1.sig" --insecure-ignore-tlog=true \
			"$WORK/blob.txt" 2>"$d/verify-pkcs1.err" || { cat "$d/verify-pkcs1.err" >&2; fail "$spec: verify-blob --key pub.pem of a PKCS#1 v1.5 KMS signature"; }
		pass "$spec: cosign verify-blob --key pub.pem accepts a RSASSA_PKCS1_V1_5_SHA_256 signature from kms sign (what cosign signs with on AWS)"
	fi
	if must_fail "$COSIGN" verify-blob --key "$d/cosign-pub.pem" --signature "$d/blob.sig" --insecure-ignore-tlog=true "$WORK/tampered.txt"; then
		pass "$spec: cosign verify-blob --key pub.pem rejects a tampered blob"
	else
		fail "$spec: verify-blob --key pub.pem accepted a tampered blob"
	fi
}

check_spec ECC_NIST_P256 cosign
check_spec RSA_2048 cosign-rsa

finish
