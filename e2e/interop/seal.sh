#!/usr/bin/env bash
# Manual interop check: the awskms wrapper that HashiCorp Vault's and OpenBao's
# `seal "awskms"` auto-unseal runs (go-kms-wrapping wrappers/awskms/v2, built
# from e2e/interop/sealcheck, its own module) seals and unseals a root key
# through Keyfort, over HTTP and over TLS. NOT run by CI.
#
#   e2e/interop/seal.sh            # KEEP=1 keeps the temp dir
#
# Needs: Go (builds keyfort and sealcheck; sealcheck's dependencies come from
# the Go module proxy), the AWS CLI, curl, python3, cmp, head.
# Everything happens in a fresh temp dir; the server is stopped on exit. Every
# check prints a PASS line. Exit status: 0 all passed; 1 a check failed (stops
# at once, prints the server log's tail); 3 every check passed but Keyfort
# answered differently from AWS in a way a Vault or OpenBao operator sees
# (printed as DEVIATION lines). See e2e/interop/README.md.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" seal go aws curl python3 cmp head

IMPLS=(vault openbao)

# ---- build -------------------------------------------------------------------
echo "== building keyfort and sealcheck from $REPO"
(cd "$REPO" && CGO_ENABLED=0 go build -o "$WORK/keyfort" ./cmd/keyfort)
(cd "$REPO/e2e/interop/sealcheck" && GOTOOLCHAIN=local CGO_ENABLED=0 go build -o "$WORK/sealcheck" .)
SEALCHECK_DEPS=$(cd "$REPO/e2e/interop/sealcheck" && GOTOOLCHAIN=local go list -m -f '{{.Path}} {{.Version}}' \
	github.com/hashicorp/go-kms-wrapping/wrappers/awskms/v2 github.com/openbao/go-kms-wrapping/wrappers/awskms/v2 \
	github.com/aws/aws-sdk-go github.com/hashicorp/go-secure-stdlib/awsutil | paste -sd, -)
pass "sealcheck built with $(go env GOVERSION): $SEALCHECK_DEPS"

PORT=$(free_port)
DATA="$WORK/data"
CA="$DATA/tls/ca.pem"
SCHEME=http

# start_server [--tls-self-signed]: keyfort on 127.0.0.1:$PORT with $DATA (dev auth).
start_server() {
	SCHEME=http
	[ "${1:-}" = --tls-self-signed ] && SCHEME=https
	"$WORK/keyfort" serve --listen "127.0.0.1:$PORT" --data "$DATA" "$@" >>"$WORK/server.log" 2>&1 &
	SERVER_PID=$!
	local curlopts=(-sf)
	[ "$SCHEME" = https ] && curlopts+=(--cacert "$CA")
	for _ in $(seq 1 100); do
		if { [ "$SCHEME" = http ] || [ -s "$CA" ]; } && curl "${curlopts[@]}" "$SCHEME://127.0.0.1:$PORT/health" >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "$SERVER_PID" 2>/dev/null || fail "keyfort exited at start"
		sleep 0.1
	done
	fail "keyfort not healthy on $SCHEME://127.0.0.1:$PORT"
}

# Dev-mode credentials for the AWS CLI (the seal gets its own in the stanza),
# no shared config, no instance metadata, no seal key id from the environment
# (the wrapper would prefer it to kms_key_id).
export AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=anything
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_KMS AWS_KMS_ENDPOINT
unset AWSKMS_WRAPPER_KEY_ID VAULT_AWSKMS_SEAL_KEY_ID AWS_CA_BUNDLE SSL_CERT_FILE
export HOME="$WORK/home"
mkdir -p "$HOME"

kf() {
	if [ "$SCHEME" = https ]; then
		aws --endpoint-url "https://127.0.0.1:$PORT" --ca-bundle "$CA" --region us-east-1 "$@"
	else
		aws --endpoint-url "http://127.0.0.1:$PORT" --region us-east-1 "$@"
	fi
}
json() { python3 -c 'import json, sys; d = json.load(sys.stdin)
for k in sys.argv[1].split("."): d = d[k] if not k.isdigit() else d[int(k)]
print(d)' "$1"; }

# seal IMPL KEY CMD [ARGS]: run the wrapper as the seal stanza
#   seal "awskms" { region = "us-east-1"  kms_key_id = KEY  endpoint = ...
#                   access_key = ...  secret_key = ... }
# configures it. Output in $WORK/seal.out; returns sealcheck's status.
seal() {
	local impl=$1 key=$2
	shift 2
	"$WORK/sealcheck" -impl "$impl" -endpoint "$SCHEME://127.0.0.1:$PORT" -region us-east-1 \
		-key "$key" -access-key AKIDEXAMPLE -secret-key anything "$@" >"$WORK/seal.out" 2>"$WORK/seal.err"
}
out() { sed -n "s/^$1=//p" "$WORK/seal.out" | head -n 1; }
# seal_err: the wrapper's error, on one line. aws-sdk-go v1 turns a modelled
# KMS exception into its typed error, whose text is "Code: Message" (no status
# code or request id); other errors may span lines.
seal_err() { sed -n '/^error=/,$p' "$WORK/seal.out" | sed '1s/^error=//' | tr '\n\t' '  ' | sed 's/  */ /g; s/ $//'; }
must_seal() { seal "$@" || fail "sealcheck -impl $1 -key $2 ${*:3}: $(seal_err)$(cat "$WORK/seal.err")"; }

# expect_error WHAT CODE MESSAGE IMPL KEY CMD [ARGS]: the wrapper must fail; a
# different exception or message from AWS's is a deviation.
expect_error() {
	local what=$1 code=$2 msg=$3
	shift 3
	local rc=0
	seal "$@" || rc=$?
	[ "$rc" = 2 ] || fail "$what: sealcheck -impl $1 ${*:3} exited $rc, want the wrapper to fail (2): $(cat "$WORK/seal.out" "$WORK/seal.err")"
	local got
	got=$(seal_err)
	echo "    $1 operator sees: $got"
	case "$got" in
	*": $code: $msg") pass "$1: $what fails with $code: $msg" ;;
	*) deviation "$1: $what: got '$got', AWS answers $code: $msg" ;;
	esac
}

head -c 32 /dev/urandom >"$WORK/rootkey.bin"
head -c 65536 /dev/urandom >"$WORK/large.bin"

# ---- 1. SetConfig by key id, key ARN, alias; seal and unseal ---------------
start_server
pass "$("$WORK/keyfort" version) serving HTTP on 127.0.0.1:$PORT (data $DATA)"

echo "== 1. SetConfig, Encrypt, Decrypt"
kf kms create-key --description "vault awskms seal" >"$WORK/k1.json"
K1=$(json KeyMetadata.KeyId <"$WORK/k1.json")
K1ARN=$(json KeyMetadata.Arn <"$WORK/k1.json")
ACCOUNT=$(echo "$K1ARN" | cut -d: -f5)
kf kms create-alias --alias-name alias/vault-unseal --target-key-id "$K1"
pass "key $K1 ($K1ARN), alias/vault-unseal"

for impl in "${IMPLS[@]}"; do
	for ref in "$K1" "$K1ARN" alias/vault-unseal "arn:aws:kms:us-east-1:$ACCOUNT:alias/vault-unseal"; do
		must_seal "$impl" "$ref" setconfig
		# DescribeKey's KeyMetadata.KeyId is the bare key id on AWS, whatever the reference.
		[ "$(out setconfig_key_id)" = "$K1" ] || fail "$impl: SetConfig(kms_key_id=$ref) KeyId() = $(out setconfig_key_id), want $K1"
		[ "$(out config_key_id)" = "$ref" ] || fail "$impl: SetConfig(kms_key_id=$ref) metadata key_id = $(out config_key_id)"
		for f in rootkey large; do
			must_seal "$impl" "$ref" encrypt "$WORK/$f.bin" "$WORK/$impl-$f-1.blob"
			# Encrypt's KeyId is the key ARN on AWS; the wrapper stores it in
			# the blob and reports it from KeyId() for rewrap decisions.
			[ "$(out blob_key_id)" = "$K1ARN" ] || fail "$impl: Encrypt via $ref: blob KeyInfo.KeyId = $(out blob_key_id), want $K1ARN"
			[ "$(out key_id)" = "$K1ARN" ] || fail "$impl: KeyId() after Encrypt = $(out key_id), want $K1ARN"
			[ "$(out blob_mechanism)" = 1 ] || fail "$impl: mechanism $(out blob_mechanism), want 1 (AwsKmsEnvelopeAesGcmEncrypt)"
			must_seal "$impl" "$ref" decrypt "$WORK/$impl-$f-1.blob" "$WORK/out.bin"
			cmp -s "$WORK/$f.bin" "$WORK/out.bin" || fail "$impl: Decrypt via $ref gave other bytes ($f)"
		done
	done
	pass "$impl: SetConfig(kms_key_id = key id, key ARN, alias, alias ARN) reports KeyId() $K1; Encrypt+Decrypt of a 32-byte root key and a 64 KiB blob round-trip; blob KeyInfo.KeyId (what Vault stores) = $K1ARN, mechanism 1"
done
must_seal openbao alias/vault-unseal decrypt "$WORK/vault-rootkey-1.blob" "$WORK/out.bin"
cmp -s "$WORK/rootkey.bin" "$WORK/out.bin" || fail "openbao could not open vault's blob"
pass "a Vault-sealed blob unseals with OpenBao's wrapper (same format)"

# ---- 2. rotation --------------------------------------------------------------
echo "== 2. key rotation"
kf kms enable-key-rotation --key-id "$K1"
kf kms rotate-key-on-demand --key-id "$K1" >/dev/null
for _ in $(seq 1 50); do
	n=$(kf kms list-key-rotations --key-id "$K1" --query 'length(Rotations)' --output text)
	[ "$n" = 1 ] && break
	sleep 0.2
done
[ "$n" = 1 ] || fail "list-key-rotations shows $n rotations after rotate-key-on-demand, want 1"
[ "$(kf kms get-key-rotation-status --key-id "$K1" --query KeyRotationEnabled --output text)" = True ] || fail "rotation not enabled"
pass "enable-key-rotation and rotate-key-on-demand: 1 rotation listed"
for impl in "${IMPLS[@]}"; do
	for f in rootkey large; do
		must_seal "$impl" alias/vault-unseal decrypt "$WORK/$impl-$f-1.blob" "$WORK/out.bin"
		cmp -s "$WORK/$f.bin" "$WORK/out.bin" || fail "$impl: pre-rotation $f blob gave other bytes"
		must_seal "$impl" alias/vault-unseal encrypt "$WORK/$f.bin" "$WORK/$impl-$f-2.blob"
		[ "$(out blob_key_id)" = "$K1ARN" ] || fail "$impl: post-rotation blob KeyId $(out blob_key_id), want $K1ARN"
		must_seal "$impl" alias/vault-unseal decrypt "$WORK/$impl-$f-2.blob" "$WORK/out.bin"
		cmp -s "$WORK/$f.bin" "$WORK/out.bin" || fail "$impl: post-rotation $f blob gave other bytes"
	done
	pass "$impl: after rotation pre-rotation blobs unseal, new blobs seal and unseal, KeyInfo.KeyId still $K1ARN (no rewrap triggered)"
done

# ---- 3. disabled, re-enabled, pending deletion -----------------------------
echo "== 3. key state"
kf kms create-key --description "vault awskms seal, state checks" >"$WORK/k2.json"
K2=$(json KeyMetadata.KeyId <"$WORK/k2.json")
K2ARN=$(json KeyMetadata.Arn <"$WORK/k2.json")
for impl in "${IMPLS[@]}"; do
	must_seal "$impl" "$K2" encrypt "$WORK/rootkey.bin" "$WORK/$impl-k2.blob"
done
kf kms disable-key --key-id "$K2"
for impl in "${IMPLS[@]}"; do
	# Vault's start: SetConfig (DescribeKey works on a disabled key), then Decrypt.
	expect_error "unseal with the key disabled" DisabledException "$K2ARN is disabled." \
		"$impl" "$K2" decrypt "$WORK/$impl-k2.blob" "$WORK/out.bin"
	expect_error "Encrypt with the key disabled" DisabledException "$K2ARN is disabled." \
		"$impl" "$K2" encrypt "$WORK/rootkey.bin" "$WORK/x.blob"
done
kf kms enable-key --key-id "$K2"
for impl in "${IMPLS[@]}"; do
	must_seal "$impl" "$K2" decrypt "$WORK/$impl-k2.blob" "$WORK/out.bin"
	cmp -s "$WORK/rootkey.bin" "$WORK/out.bin" || fail "$impl: re-enabled key gave other bytes"
	pass "$impl: re-enabled, the blob unseals"
done
kf kms schedule-key-deletion --key-id "$K2" --pending-window-in-days 7 >/dev/null
for impl in "${IMPLS[@]}"; do
	expect_error "unseal with the key pending deletion" KMSInvalidStateException "$K2ARN is pending deletion." \
		"$impl" "$K2" decrypt "$WORK/$impl-k2.blob" "$WORK/out.bin"
done

# ---- 4. wrong key id at SetConfig -------------------------------------------
echo "== 4. unknown key at SetConfig"
NOKEY=0b5b1d9e-6f1c-4c36-9b3a-2d8d7f4e1a00
for impl in "${IMPLS[@]}"; do
	expect_error "SetConfig(kms_key_id = unknown key id)" NotFoundException \
		"Key 'arn:aws:kms:us-east-1:$ACCOUNT:key/$NOKEY' does not exist" "$impl" "$NOKEY" setconfig
	expect_error "SetConfig(kms_key_id = unknown key ARN)" NotFoundException \
		"Key 'arn:aws:kms:us-east-1:$ACCOUNT:key/$NOKEY' does not exist" "$impl" "arn:aws:kms:us-east-1:$ACCOUNT:key/$NOKEY" setconfig
	expect_error "SetConfig(kms_key_id = unknown alias)" NotFoundException \
		"Alias arn:aws:kms:us-east-1:$ACCOUNT:alias/no-such-seal is not found." "$impl" alias/no-such-seal setconfig
	# Two stanza mistakes: the alias name without "alias/", and a key ARN of
	# another region than the stanza's (AWS's texts as LocalStack's
	# AWS-validated snapshots test_get_key_invalid_uuid and
	# test_get_key_in_different_region record them).
	expect_error "SetConfig(kms_key_id = alias name without alias/)" NotFoundException \
		"Invalid keyId 'vault-unseal'" "$impl" vault-unseal setconfig
	expect_error "SetConfig(kms_key_id = key ARN of another region)" NotFoundException \
		"Invalid arn eu-west-1" "$impl" "arn:aws:kms:eu-west-1:$ACCOUNT:key/$K1" setconfig
done

# ---- 5. restart of the KMS between seal and unseal ---------------------------
echo "== 5. Keyfort restart"
for impl in "${IMPLS[@]}"; do
	must_seal "$impl" alias/vault-unseal encrypt "$WORK/rootkey.bin" "$WORK/$impl-rootkey-3.blob"
done
ROOTKEY_SUM=$(cksum <"$DATA/root.key")
stop_server
start_server
[ "$(cksum <"$DATA/root.key")" = "$ROOTKEY_SUM" ] || fail "the restart changed <data>/root.key"
[ "$(grep -c 'generated a new root key' "$WORK/server.log")" = 1 ] || fail "the restart generated another root key"
pass "keyfort restarted on the same data dir and root key (<data>/root.key)"
for impl in "${IMPLS[@]}"; do
	for b in rootkey-1 rootkey-2 rootkey-3; do
		must_seal "$impl" alias/vault-unseal decrypt "$WORK/$impl-$b.blob" "$WORK/out.bin"
		cmp -s "$WORK/rootkey.bin" "$WORK/out.bin" || fail "$impl: $b blob after restart gave other bytes"
	done
	pass "$impl: after a Keyfort restart (same data dir) blobs sealed before it, before and after rotation, unseal"
done
stop_server

# ---- 6. TLS -------------------------------------------------------------------
echo "== 6. TLS (--tls-self-signed)"
start_server --tls-self-signed
pass "keyfort serving HTTPS on 127.0.0.1:$PORT (CA $CA), same data dir"
for impl in "${IMPLS[@]}"; do
	rc=0
	seal "$impl" alias/vault-unseal setconfig || rc=$?
	[ "$rc" = 2 ] || fail "$impl: SetConfig over https without trusting the CA exited $rc"
	case "$(seal_err)" in
	*"certificate signed by unknown authority"*) pass "$impl: without the CA trusted SetConfig fails: $(seal_err | cut -c1-160)..." ;;
	*) fail "$impl: unexpected error without the CA: $(seal_err)" ;;
	esac
done
# aws-sdk-go v1 loads AWS_CA_BUNDLE into the wrapper's transport (in place
# of the system roots); SSL_CERT_FILE is Go's system roots. Check each alone.
for var in AWS_CA_BUNDLE SSL_CERT_FILE; do
	export "$var=$CA"
	for impl in "${IMPLS[@]}"; do
		must_seal "$impl" alias/vault-unseal decrypt "$WORK/$impl-rootkey-3.blob" "$WORK/out.bin"
		cmp -s "$WORK/rootkey.bin" "$WORK/out.bin" || fail "$impl: TLS unseal of the HTTP-sealed blob gave other bytes"
		must_seal "$impl" alias/vault-unseal encrypt "$WORK/large.bin" "$WORK/$impl-tls.blob"
		[ "$(out blob_key_id)" = "$K1ARN" ] || fail "$impl: TLS blob KeyId $(out blob_key_id)"
		must_seal "$impl" "$K1ARN" decrypt "$WORK/$impl-tls.blob" "$WORK/out.bin"
		cmp -s "$WORK/large.bin" "$WORK/out.bin" || fail "$impl: TLS round trip gave other bytes"
		pass "$impl: over https with $var=<data>/tls/ca.pem: SetConfig, unseal of an HTTP-sealed blob, seal+unseal of 64 KiB"
	done
	unset "$var"
done
stop_server

finish
