#!/usr/bin/env python3
"""Keyfort KMS and Secrets Manager smoke test through a second client: boto3 and the AWS CLI v1.

Starts the given keyfort binary on a free loopback port with a fresh data
directory, waits for GET /health, runs the checks, stops the server with
SIGTERM and prints one line per check and a final line "N passed, M failed".
Exits 1 if any check failed.

    python3 e2e/smoke/smoke.py --binary "$PWD/bin/keyfort"

Standard library and boto3, plus the cryptography package for the XKS
proxy of the external key store check (e2e/smoke/xksproxy.py). Every check
asserts what a user of the AWS SDK sees (fields, error codes, messages where
AWS's wording is stable); a check that fails because the server is wrong
stays failing.
"""

import argparse
import base64
import datetime
import http.server
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid

import boto3
import botocore.exceptions
from botocore.config import Config
from botocore.exceptions import ClientError

ACCOUNT = "123456789012"
REGION = "us-east-1"
ACCESS_KEY = "AKIDSMOKE"
SECRET_KEY = "x"

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
KEY_ARN_RE = re.compile(r"^arn:aws:kms:us-east-1:123456789012:key/(" + UUID_RE + r")$")
SECRET_NOT_FOUND = "Secrets Manager can't find the specified secret."


def secret_arn_re(name):
    return re.compile(r"^arn:aws:secretsmanager:us-east-1:123456789012:secret:" + re.escape(name) + r"-[A-Za-z0-9]{6}$")

# Plaintexts used by the checks; none may appear in the server's logs or
# audit trail.
SECRET_MARKERS = [
    b"smoke-plaintext-7f3a9c",
    b"smoke-reencrypt-51be02",
    b"smoke-rotation-c0ffee",
    b"smoke-cli-plaintext-9d1e",
    b"smoke-sm-string-4e8b21",
    b"smoke-sm-put-a93c77",
    b"smoke-sm-binary-\x00\xff\x10-5d2f",
    b"smoke-sm-cli-value-e61a04",
    b"smoke-sm-persisted-2b7d90",
    b"smoke-sm-batch-a-71c3e0",
    b"smoke-sm-batch-b-0d94f2",
    b"smoke-sm-replica-v1-5a8e13",
    b"smoke-sm-replica-v2-c47b09",
    b"smoke-sm-promoted-e2d5a6",
    b"smoke-sm-rotate-initial-93fb47",
    b"smoke-sm-rotated-6ad2f1",  # prefix of every value the rotation webhook makes
    b"smoke-xks-plaintext-3c9e51",
]
ROTATED_PREFIX = SECRET_MARKERS[15].decode() + "-"
XKS_PLAINTEXT = SECRET_MARKERS[16]

# The rotation function the config file maps to the smoke's webhook, and one
# it does not map.
ROTATION_LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:smoke-rotate"
UNMAPPED_LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:smoke-unmapped"
ROTATION_STEPS = ["createSecret", "setSecret", "testSecret", "finishSecret"]

# The external key store check: the host name of its XKS proxy (Keyfort is
# told where it is with --xks-proxy-address: XksProxyUriEndpoint holds no
# port), its URI path, the external key the proxy holds, and AWS's messages.
XKS_HOST = "xks.smoke.test"
XKS_PATH = "/smoke/kms/xks/v1"
XKS_KEY = "smoke-ext-key-1"
XKS_MSG_NOT_CONNECTED = ("This KMS key is in a custom key store that is not connected to its external key store "
                         "proxy. Connect the external key store and try the request again.")
XKS_MSG_KEY_NOT_FOUND = ("The external key associated with this KMS key in an external key store was not found in "
                         "its external key manager. If the external key ID associated with this KMS key is incorrect, "
                         "create a new KMS key with the correct external key ID.")
XKS_MSG_KEY_DISABLED = ("The external key associated with this KMS key in an external key store is not enabled in "
                        "the external key manager. Enable the external key in the external key manager and retry "
                        "the request.")
XKS_MSG_BAD_CIPHERTEXT = ("The external key store proxy rejected the request because the specified ciphertext or "
                          "encryption context is corrupted, missing, or otherwise invalid.")

HEALTH_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
CLI_TIMEOUT = 60.0


class CheckFailed(Exception):
    """A check's assertion did not hold."""


def ensure(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def eq(got, want, what):
    ensure(got == want, "%s = %r, want %r" % (what, got, want))


def short(obj, limit=300):
    """One-line, bounded rendering of a response for failure messages."""
    if isinstance(obj, dict):
        obj = {k: v for k, v in obj.items() if k != "ResponseMetadata"}
    text = repr(obj).replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."


def expect_error(call, code, status=None, message=None, contains=None, **kwargs):
    """Call call(**kwargs); it must fail with error code `code`.

    Returns the ClientError. `message` is compared exactly, `contains` is a
    list of substrings the message must hold.
    """
    name = getattr(call, "__name__", str(call))
    try:
        resp = call(**kwargs)
    except ClientError as e:
        err = e.response.get("Error", {})
        got_code = err.get("Code")
        got_msg = err.get("Message", "")
        got_status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        ensure(
            got_code == code,
            "%s(%s): error code %r (HTTP %s, message %r), want %r"
            % (name, short(kwargs, 200), got_code, got_status, got_msg, code),
        )
        if status is not None:
            ensure(
                got_status == status,
                "%s(%s): HTTP status %r, want %r" % (name, short(kwargs, 200), got_status, status),
            )
        if message is not None:
            ensure(
                got_msg == message,
                "%s(%s): %s message %r, want %r" % (name, short(kwargs, 200), code, got_msg, message),
            )
        for part in contains or []:
            ensure(
                part in got_msg,
                "%s(%s): %s message %r does not contain %r"
                % (name, short(kwargs, 200), code, got_msg, part),
            )
        return e
    raise CheckFailed(
        "%s(%s) succeeded with %s, want %s" % (name, short(kwargs, 200), short(resp), code)
    )


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def days_from_now(ts, days, slack_hours=26):
    """ts is within slack_hours of now + days."""
    target = utcnow() + datetime.timedelta(days=days)
    return abs((ts - target).total_seconds()) <= slack_hours * 3600


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A keyfort process started from the binary."""

    def __init__(self, binary, data, log_path, extra_args=(), ca_file=None):
        self.binary = binary
        self.data = data
        self.log_path = log_path
        self.extra_args = list(extra_args)
        self.port = free_port()
        # ca_file: the server speaks HTTPS with a certificate that chains to
        # it (written by the server itself with --tls-self-signed).
        self.ca_file = ca_file
        self.endpoint = "%s://127.0.0.1:%d" % ("https" if ca_file else "http", self.port)
        self.proc = None
        self.log_file = None
        self.exit_code = None

    def start(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYFORT_")}
        # Debug logs give the leak check something to read.
        env["KEYFORT_LOG_LEVEL"] = "debug"
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--listen", "127.0.0.1:%d" % self.port, "--data", self.data] + self.extra_args,
            stdin=subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def wait_healthy(self, timeout=HEALTH_TIMEOUT):
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CheckFailed(
                    "server exited with code %s before becoming healthy; log tail: %s"
                    % (self.proc.returncode, self.log_tail())
                )
            try:
                if self.ca_file and not os.path.exists(self.ca_file):
                    raise OSError("%s not written yet" % self.ca_file)
                with urllib.request.urlopen(self.endpoint + "/health", timeout=2, context=self.ssl_context()) as r:
                    if r.status == 200:
                        return
                    last = "HTTP %d" % r.status
            except urllib.error.HTTPError as e:
                last = "HTTP %d" % e.code
            except (urllib.error.URLError, OSError) as e:
                last = str(e)
            time.sleep(0.1)
        raise CheckFailed(
            "GET /health not 200 within %.0fs (last: %s); log tail: %s"
            % (timeout, last, self.log_tail())
        )

    def ssl_context(self):
        """For https: trust only the server's CA, verifying as strictly as
        Python 3.13 does by default (RFC 5280 checks on the chain)."""
        if not self.ca_file:
            return None
        ctx = ssl.create_default_context(cafile=self.ca_file)
        ctx.verify_flags |= ssl.VERIFY_X509_STRICT
        return ctx

    def stop(self):
        """SIGTERM, then SIGKILL after STOP_TIMEOUT. Returns (exit code, killed)."""
        if self.proc is None:
            return None, False
        killed = False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                killed = True
        self.exit_code = self.proc.returncode
        if self.log_file:
            self.log_file.close()
            self.log_file = None
        return self.exit_code, killed

    def log_tail(self, n=5):
        try:
            if self.log_file:
                self.log_file.flush()
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").strip().splitlines()
            return " | ".join(lines[-n:])
        except OSError:
            return "(no log)"


class RotationHook:
    """A real rotation webhook: an HTTP server on 127.0.0.1 (port chosen by
    the kernel) whose handler does the four rotation steps by calling Keyfort
    with boto3, as the AWS rotation function template does.

    Keyfort POSTs the event a rotation Lambda receives:
    {"Step", "SecretId", "ClientRequestToken", "RotationToken"}. The handler
    answers 200 when the step succeeded and 500 (with the reason kept in
    self.failures) when it did not.
    """

    def __init__(self):
        self.sm = None  # set once the server is up
        self.lock = threading.Lock()
        self.events = []
        self.failures = []
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                try:
                    n = int(self.headers.get("Content-Length") or 0)
                    ev = json.loads(self.rfile.read(n).decode("utf-8"))
                except (ValueError, UnicodeDecodeError) as e:
                    self._answer(400, "bad event: %s" % e)
                    return
                with hook.lock:
                    hook.events.append(ev)
                try:
                    hook.step(ev)
                except Exception as e:  # the step failed: Keyfort must see a 5xx
                    with hook.lock:
                        hook.failures.append("%s: %s: %s" % (ev.get("Step"), type(e).__name__, e))
                    self._answer(500, "step failed")
                    return
                self._answer(200, "ok")

            def _answer(self, code, text):
                body = text.encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d/" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="rotation-hook", daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def take(self):
        """Returns and forgets the events and failures seen so far."""
        with self.lock:
            ev, fail = self.events, self.failures
            self.events, self.failures = [], []
        return ev, fail

    def step(self, ev):
        sm = self.sm
        if sm is None:
            raise RuntimeError("no Secrets Manager client yet")
        step, arn, token = ev["Step"], ev["SecretId"], ev["ClientRequestToken"]
        d = sm.describe_secret(SecretId=arn)
        if not d.get("RotationEnabled"):
            raise RuntimeError("secret is not enabled for rotation")
        stages = d.get("VersionIdsToStages", {}).get(token)
        if stages is None:
            raise RuntimeError("version %s has no stage for rotation" % token)
        if "AWSCURRENT" in stages:
            return  # already current
        if "AWSPENDING" not in stages:
            raise RuntimeError("version %s is not AWSPENDING" % token)
        if step == "createSecret":
            sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")
            try:
                sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
                return  # already made
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                    raise
            pw = sm.get_random_password(ExcludePunctuation=True)["RandomPassword"]
            sm.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString=ROTATED_PREFIX + pw,
                                VersionStages=["AWSPENDING"], RotationToken=ev["RotationToken"])
        elif step == "setSecret":
            pass  # no database to change
        elif step == "testSecret":
            v = sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
            if not v.get("SecretString", "").startswith(ROTATED_PREFIX):
                raise RuntimeError("pending value is not the one createSecret made")
        elif step == "finishSecret":
            current = [vid for vid, st in d["VersionIdsToStages"].items() if "AWSCURRENT" in st]
            if len(current) != 1:
                raise RuntimeError("%d versions are AWSCURRENT" % len(current))
            sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT",
                                           MoveToVersionId=token, RemoveFromVersionId=current[0])
        else:
            raise RuntimeError("unknown step %r" % step)


class Smoke:
    """The checks. Each check_* method is one printed line."""

    def __init__(self, server, workdir, hook=None):
        self.server = server
        self.workdir = workdir
        self.hook = hook
        self.kms = self.client(REGION, ACCESS_KEY)
        self.kms_eu = self.client("eu-west-1", ACCESS_KEY)
        self.kms_other_account = self.client(REGION, "111122223333")
        # botocore checks a model minimum before sending; this client lets the
        # server's own validation answer (as it must for clients that do not).
        self.kms_unvalidated = self.client(REGION, ACCESS_KEY, parameter_validation=False)
        self.sm = self.client(REGION, ACCESS_KEY, service="secretsmanager")
        self.sm_unvalidated = self.client(REGION, ACCESS_KEY, parameter_validation=False, service="secretsmanager")
        self.sm_eu = self.client("eu-west-1", ACCESS_KEY, service="secretsmanager")
        self.sm_usw2 = self.client("us-west-2", ACCESS_KEY, service="secretsmanager")
        self.cli_env = self._cli_env()
        if hook is not None:
            hook.sm = self.client(REGION, ACCESS_KEY, service="secretsmanager")

    def client(self, region, access_key, parameter_validation=True, service="kms"):
        return boto3.client(
            service,
            endpoint_url=self.server.endpoint,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=SECRET_KEY,
            config=Config(
                # total_max_attempts=1 is one attempt and no retry;
                # {"max_attempts": 1} would still allow one retry.
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=5,
                read_timeout=20,
                parameter_validation=parameter_validation,
            ),
        )

    # ---- helpers -------------------------------------------------------

    def new_key(self, description="smoke", client=None):
        client = client or self.kms
        md = client.create_key(Description=description)["KeyMetadata"]
        return md["KeyId"], md["Arn"]

    def arn(self, key_id):
        return "arn:aws:kms:%s:%s:key/%s" % (REGION, ACCOUNT, key_id)

    def alias_arn(self, name):
        return "arn:aws:kms:%s:%s:%s" % (REGION, ACCOUNT, name)

    def describe(self, key_id):
        return self.kms.describe_key(KeyId=key_id)["KeyMetadata"]

    def _cli_env(self):
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("AWS_") and k not in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
        }
        env.update(
            {
                "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_CONFIG_FILE": os.path.join(self.workdir, "aws-config-absent"),
                "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.workdir, "aws-credentials-absent"),
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_MAX_ATTEMPTS": "1",
                "AWS_RETRY_MODE": "standard",
                "AWS_PAGER": "",
                "NO_PROXY": "127.0.0.1,localhost",
            }
        )
        return env

    def aws(self, *args):
        """Run the AWS CLI; returns (exit code, stdout, stderr)."""
        exe = shutil.which("aws")
        cmd = [exe] if exe else [sys.executable, "-m", "awscli"]
        cmd += ["--endpoint-url", self.server.endpoint] + list(args)
        try:
            p = subprocess.run(
                cmd,
                env=self.cli_env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=CLI_TIMEOUT,
            )
        except FileNotFoundError as e:
            raise CheckFailed("AWS CLI not runnable: %s" % e)
        except subprocess.TimeoutExpired:
            raise CheckFailed("aws %s: no answer within %.0fs" % (" ".join(args), CLI_TIMEOUT))
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")

    # ---- checks --------------------------------------------------------

    def check_health(self):
        with urllib.request.urlopen(self.server.endpoint + "/health", timeout=5) as r:
            eq(r.status, 200, "GET /health status")
            body = json.loads(r.read().decode())
        eq(body, {"status": "ok"}, "GET /health body")

    def check_create_key(self):
        resp = self.kms.create_key(Description="smoke create")
        md = resp["KeyMetadata"]
        m = KEY_ARN_RE.match(md.get("Arn", ""))
        ensure(m, "CreateKey Arn = %r, want arn:aws:kms:us-east-1:123456789012:key/<uuid>" % md.get("Arn"))
        eq(md.get("KeyId"), m.group(1), "CreateKey KeyId (uuid in Arn)")
        eq(str(uuid.UUID(md["KeyId"])), md["KeyId"], "CreateKey KeyId canonical uuid")
        for field, want in [
            ("AWSAccountId", ACCOUNT),
            ("KeyState", "Enabled"),
            ("Enabled", True),
            ("KeySpec", "SYMMETRIC_DEFAULT"),
            ("CustomerMasterKeySpec", "SYMMETRIC_DEFAULT"),
            ("KeyUsage", "ENCRYPT_DECRYPT"),
            ("KeyManager", "CUSTOMER"),
            ("Origin", "AWS_KMS"),
            ("Description", "smoke create"),
            ("EncryptionAlgorithms", ["SYMMETRIC_DEFAULT"]),
            ("MultiRegion", False),
        ]:
            eq(md.get(field), want, "CreateKey KeyMetadata.%s" % field)
        created = md.get("CreationDate")
        ensure(isinstance(created, datetime.datetime), "CreateKey CreationDate = %r, want a timestamp" % created)
        ensure(abs((created - utcnow()).total_seconds()) < 300, "CreateKey CreationDate %s not near now" % created)
        ensure("DeletionDate" not in md, "CreateKey KeyMetadata has DeletionDate %r" % md.get("DeletionDate"))
        ensure(resp["ResponseMetadata"].get("RequestId"), "CreateKey response has no x-amzn-RequestId")

    def check_describe_key(self):
        key_id, arn = self.new_key("smoke describe")
        name = "alias/smoke-describe"
        self.kms.create_alias(AliasName=name, TargetKeyId=key_id)
        for ref in (key_id, arn, name, self.alias_arn(name)):
            md = self.describe(ref)
            eq(md.get("KeyId"), key_id, "DescribeKey(%s).KeyId" % ref)
            eq(md.get("Arn"), arn, "DescribeKey(%s).Arn" % ref)
            eq(md.get("Description"), "smoke describe", "DescribeKey(%s).Description" % ref)
        expect_error(
            self.kms.describe_key,
            "NotFoundException",
            message="Alias %s is not found." % self.alias_arn("alias/missing"),
            KeyId="alias/missing",
        )
        missing = str(uuid.uuid4())
        expect_error(
            self.kms.describe_key,
            "NotFoundException",
            message="Key '%s' does not exist" % self.arn(missing),
            KeyId=missing,
        )

    def check_list_keys_paging(self):
        created = {self.new_key("smoke list %d" % i)[0] for i in range(5)}
        full = self.kms.list_keys()
        eq(full.get("Truncated"), False, "ListKeys() Truncated")
        all_ids = [k["KeyId"] for k in full["Keys"]]
        for k in full["Keys"]:
            eq(k.get("KeyArn"), self.arn(k["KeyId"]), "ListKeys entry KeyArn for %s" % k["KeyId"])
        ensure(created <= set(all_ids), "ListKeys() lacks created keys %s" % (created - set(all_ids)))
        paged, marker, pages = [], None, 0
        while True:
            pages += 1
            ensure(pages <= 100, "ListKeys(Limit=2) did not end after 100 pages")
            kwargs = {"Limit": 2}
            if marker:
                kwargs["Marker"] = marker
            page = self.kms.list_keys(**kwargs)
            ensure(len(page["Keys"]) <= 2, "ListKeys(Limit=2) page %d has %d keys" % (pages, len(page["Keys"])))
            paged += [k["KeyId"] for k in page["Keys"]]
            if not page.get("Truncated"):
                ensure("NextMarker" not in page, "ListKeys last page has NextMarker %r" % page.get("NextMarker"))
                break
            ensure(page.get("NextMarker"), "ListKeys page %d Truncated but no NextMarker" % pages)
            eq(len(page["Keys"]), 2, "ListKeys(Limit=2) truncated page %d size" % pages)
            marker = page["NextMarker"]
        eq(len(paged), len(set(paged)), "ListKeys paged key count (duplicates?)")
        eq(sorted(paged), sorted(all_ids), "ListKeys keys by pages of 2 vs one page")
        ensure(pages >= 3, "ListKeys(Limit=2) over %d keys took %d pages" % (len(all_ids), pages))
        expect_error(self.kms.list_keys, "InvalidMarkerException", Marker="forged-marker-smoke")

    def check_enable_disable_key(self):
        key_id, arn = self.new_key("smoke disable")
        blob = self.kms.encrypt(KeyId=key_id, Plaintext=SECRET_MARKERS[0])["CiphertextBlob"]
        self.kms.disable_key(KeyId=key_id)
        md = self.describe(key_id)
        eq(md.get("KeyState"), "Disabled", "DescribeKey after DisableKey KeyState")
        eq(md.get("Enabled"), False, "DescribeKey after DisableKey Enabled")
        expect_error(self.kms.encrypt, "DisabledException", message="%s is disabled." % arn,
                     KeyId=key_id, Plaintext=b"x")
        expect_error(self.kms.decrypt, "DisabledException", message="%s is disabled." % arn,
                     CiphertextBlob=blob)
        expect_error(self.kms.generate_data_key, "DisabledException", KeyId=key_id, KeySpec="AES_256")
        self.kms.enable_key(KeyId=key_id)
        md = self.describe(key_id)
        eq(md.get("KeyState"), "Enabled", "DescribeKey after EnableKey KeyState")
        eq(md.get("Enabled"), True, "DescribeKey after EnableKey Enabled")
        eq(self.kms.decrypt(CiphertextBlob=blob)["Plaintext"], SECRET_MARKERS[0], "Decrypt after EnableKey")

    def check_schedule_key_deletion(self):
        key_id, arn = self.new_key("smoke delete")
        expect_error(
            self.kms.schedule_key_deletion,
            "ValidationException",
            message="1 validation error detected: Value '6' at 'pendingWindowInDays' failed to "
            "satisfy constraint: Member must have value greater than or equal to 7",
            KeyId=key_id,
            PendingWindowInDays=6,
        )
        eq(self.describe(key_id).get("KeyState"), "Enabled", "KeyState after refused ScheduleKeyDeletion")
        resp = self.kms.schedule_key_deletion(KeyId=key_id)
        eq(resp.get("KeyId"), arn, "ScheduleKeyDeletion KeyId")
        eq(resp.get("KeyState"), "PendingDeletion", "ScheduleKeyDeletion KeyState")
        eq(resp.get("PendingWindowInDays"), 30, "ScheduleKeyDeletion PendingWindowInDays")
        dd = resp.get("DeletionDate")
        ensure(isinstance(dd, datetime.datetime) and days_from_now(dd, 30),
               "ScheduleKeyDeletion DeletionDate = %r, want about now + 30 days" % dd)
        md = self.describe(key_id)
        eq(md.get("KeyState"), "PendingDeletion", "DescribeKey KeyState")
        eq(md.get("Enabled"), False, "DescribeKey Enabled")
        ensure(isinstance(md.get("DeletionDate"), datetime.datetime) and days_from_now(md["DeletionDate"], 30),
               "DescribeKey DeletionDate = %r, want about now + 30 days" % md.get("DeletionDate"))
        expect_error(self.kms.encrypt, "KMSInvalidStateException", message="%s is pending deletion." % arn,
                     KeyId=key_id, Plaintext=b"x")

    def check_cancel_key_deletion(self):
        key_id, arn = self.new_key("smoke cancel")
        expect_error(self.kms.cancel_key_deletion, "KMSInvalidStateException", KeyId=key_id)
        self.kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
        resp = self.kms.cancel_key_deletion(KeyId=key_id)
        eq(resp.get("KeyId"), arn, "CancelKeyDeletion KeyId")
        md = self.describe(key_id)
        eq(md.get("KeyState"), "Disabled", "DescribeKey after CancelKeyDeletion KeyState")
        eq(md.get("Enabled"), False, "DescribeKey after CancelKeyDeletion Enabled")
        ensure("DeletionDate" not in md, "DescribeKey after CancelKeyDeletion has DeletionDate %r" % md.get("DeletionDate"))

    def check_update_key_description(self):
        key_id, _ = self.new_key("before")
        self.kms.update_key_description(KeyId=key_id, Description="after: smoke")
        eq(self.describe(key_id).get("Description"), "after: smoke", "Description after UpdateKeyDescription")
        self.kms.update_key_description(KeyId=key_id, Description="")
        eq(self.describe(key_id).get("Description"), "", "Description after UpdateKeyDescription('')")

    def check_aliases(self):
        k1, _ = self.new_key("smoke alias 1")
        k2, _ = self.new_key("smoke alias 2")
        name = "alias/smoke-a"
        self.kms.create_alias(AliasName=name, TargetKeyId=k1)
        aliases = self.kms.list_aliases(KeyId=k1)["Aliases"]
        eq([(a.get("AliasName"), a.get("AliasArn"), a.get("TargetKeyId")) for a in aliases],
           [(name, self.alias_arn(name), k1)], "ListAliases(KeyId=k1)")
        expect_error(
            self.kms.create_alias,
            "AlreadyExistsException",
            message="An alias with the name %s already exists" % self.alias_arn(name),
            AliasName=name,
            TargetKeyId=k2,
        )
        expect_error(self.kms.create_alias, "InvalidAliasNameException", AliasName="alias/aws/x", TargetKeyId=k1)
        self.kms.update_alias(AliasName=name, TargetKeyId=k2)
        eq(self.describe(name).get("KeyId"), k2, "DescribeKey(alias) after UpdateAlias")
        eq(self.kms.list_aliases(KeyId=k1)["Aliases"], [], "ListAliases(KeyId=k1) after UpdateAlias")
        eq([a.get("AliasName") for a in self.kms.list_aliases(KeyId=k2)["Aliases"]], [name],
           "ListAliases(KeyId=k2) after UpdateAlias")
        all_names = [a.get("AliasName") for a in self.kms.list_aliases()["Aliases"]]
        ensure(name in all_names, "ListAliases() lacks %s: %s" % (name, all_names))
        self.kms.delete_alias(AliasName=name)
        expect_error(self.kms.describe_key, "NotFoundException",
                     message="Alias %s is not found." % self.alias_arn(name), KeyId=name)
        eq(self.kms.list_aliases(KeyId=k2)["Aliases"], [], "ListAliases(KeyId=k2) after DeleteAlias")
        expect_error(self.kms.delete_alias, "NotFoundException", AliasName=name)

    def check_tags(self):
        key_id, _ = self.new_key("smoke tags")
        self.kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "team", "TagValue": "smoke"},
                                                  {"TagKey": "env", "TagValue": ""}])
        resp = self.kms.list_resource_tags(KeyId=key_id)
        eq({t["TagKey"]: t["TagValue"] for t in resp["Tags"]}, {"team": "smoke", "env": ""}, "ListResourceTags")
        eq(resp.get("Truncated"), False, "ListResourceTags Truncated")
        self.kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "team", "TagValue": "smoke2"}])
        self.kms.untag_resource(KeyId=key_id, TagKeys=["env"])
        tags = {t["TagKey"]: t["TagValue"] for t in self.kms.list_resource_tags(KeyId=key_id)["Tags"]}
        eq(tags, {"team": "smoke2"}, "ListResourceTags after overwrite + UntagResource")
        expect_error(self.kms.tag_resource, "TagException", KeyId=key_id,
                     Tags=[{"TagKey": "aws:reserved", "TagValue": "v"}])
        self.kms.create_alias(AliasName="alias/smoke-tags", TargetKeyId=key_id)
        # TagResource takes a key id or key ARN only; AWS refuses an alias.
        expect_error(self.kms.tag_resource, "InvalidArnException", message="Key Aliases are not supported for this operation.",
                     KeyId="alias/smoke-tags", Tags=[{"TagKey": "a", "TagValue": "b"}])

    def check_tag_limit(self):
        key_id, _ = self.new_key("smoke tag limit")
        self.kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "k%02d" % i, "TagValue": "v"} for i in range(50)])
        eq(len(self.kms.list_resource_tags(KeyId=key_id, Limit=50)["Tags"]), 50, "tag count after 50 tags")
        expect_error(self.kms.tag_resource, "LimitExceededException", KeyId=key_id,
                     Tags=[{"TagKey": "k50", "TagValue": "v"}])
        # Overwriting an existing tag at the limit is not a new tag.
        self.kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "k00", "TagValue": "w"}])
        resp = self.kms.list_resource_tags(KeyId=key_id, Limit=50)
        eq(len(resp["Tags"]), 50, "tag count after refused 51st tag")

    def check_encrypt_decrypt(self):
        key_id, arn = self.new_key("smoke crypto")
        other_id, other_arn = self.new_key("smoke crypto other")
        ctx = {"purpose": "smoke", "n": "1"}
        pt = SECRET_MARKERS[0]
        enc = self.kms.encrypt(KeyId=key_id, Plaintext=pt, EncryptionContext=ctx)
        eq(enc.get("KeyId"), arn, "Encrypt KeyId")
        eq(enc.get("EncryptionAlgorithm"), "SYMMETRIC_DEFAULT", "Encrypt EncryptionAlgorithm")
        blob = enc["CiphertextBlob"]
        ensure(pt not in blob, "Encrypt CiphertextBlob contains the plaintext")
        dec = self.kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)
        eq(dec.get("Plaintext"), pt, "Decrypt Plaintext")
        eq(dec.get("KeyId"), arn, "Decrypt KeyId")
        eq(dec.get("EncryptionAlgorithm"), "SYMMETRIC_DEFAULT", "Decrypt EncryptionAlgorithm")
        eq(self.kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx, KeyId=arn)["Plaintext"], pt,
           "Decrypt with KeyId=ARN")
        eq(self.kms.decrypt(CiphertextBlob=blob, EncryptionContext={"n": "1", "purpose": "smoke"})["Plaintext"],
           pt, "Decrypt with the context in another order")
        for bad in ({"purpose": "smoke", "n": "2"}, {"purpose": "smoke"}, {}):
            kwargs = {"CiphertextBlob": blob}
            if bad:
                kwargs["EncryptionContext"] = bad
            expect_error(self.kms.decrypt, "InvalidCiphertextException", **kwargs)
        expect_error(self.kms.decrypt, "IncorrectKeyException", CiphertextBlob=blob, EncryptionContext=ctx,
                     KeyId=other_id)
        tampered = bytearray(blob)
        tampered[-1] ^= 0x01
        expect_error(self.kms.decrypt, "InvalidCiphertextException", CiphertextBlob=bytes(tampered),
                     EncryptionContext=ctx)
        expect_error(self.kms.decrypt, "InvalidCiphertextException", CiphertextBlob=blob[:20],
                     EncryptionContext=ctx)
        big = SECRET_MARKERS[0] * (4097 // len(SECRET_MARKERS[0]) + 1)
        err = expect_error(self.kms.encrypt, "ValidationException", KeyId=key_id, Plaintext=big[:4097])
        ensure(SECRET_MARKERS[0].decode() not in err.response["Error"].get("Message", ""),
               "Encrypt ValidationException message echoes the plaintext")

    def check_reencrypt(self):
        k1, a1 = self.new_key("smoke re 1")
        k2, a2 = self.new_key("smoke re 2")
        pt = SECRET_MARKERS[1]
        blob = self.kms.encrypt(KeyId=k1, Plaintext=pt, EncryptionContext={"c": "1"})["CiphertextBlob"]
        resp = self.kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"c": "1"},
                                   DestinationKeyId=k2, DestinationEncryptionContext={"c": "2"})
        eq(resp.get("SourceKeyId"), a1, "ReEncrypt SourceKeyId")
        eq(resp.get("KeyId"), a2, "ReEncrypt KeyId")
        eq(resp.get("SourceEncryptionAlgorithm"), "SYMMETRIC_DEFAULT", "ReEncrypt SourceEncryptionAlgorithm")
        eq(resp.get("DestinationEncryptionAlgorithm"), "SYMMETRIC_DEFAULT",
           "ReEncrypt DestinationEncryptionAlgorithm")
        dec = self.kms.decrypt(CiphertextBlob=resp["CiphertextBlob"], EncryptionContext={"c": "2"})
        eq((dec.get("Plaintext"), dec.get("KeyId")), (pt, a2), "Decrypt of the ReEncrypt result")
        expect_error(self.kms.re_encrypt, "InvalidCiphertextException", CiphertextBlob=blob,
                     SourceEncryptionContext={"c": "wrong"}, DestinationKeyId=k2)

    def check_generate_data_key(self):
        key_id, arn = self.new_key("smoke gdk")
        resp = self.kms.generate_data_key(KeyId=key_id, KeySpec="AES_256", EncryptionContext={"f": "1"})
        eq(resp.get("KeyId"), arn, "GenerateDataKey KeyId")
        eq(len(resp.get("Plaintext", b"")), 32, "GenerateDataKey(AES_256) plaintext length")
        dec = self.kms.decrypt(CiphertextBlob=resp["CiphertextBlob"], EncryptionContext={"f": "1"})
        eq(dec.get("Plaintext"), resp["Plaintext"], "Decrypt of the GenerateDataKey blob")
        eq(len(self.kms.generate_data_key(KeyId=key_id, KeySpec="AES_128")["Plaintext"]), 16,
           "GenerateDataKey(AES_128) plaintext length")
        eq(len(self.kms.generate_data_key(KeyId=key_id, NumberOfBytes=64)["Plaintext"]), 64,
           "GenerateDataKey(NumberOfBytes=64) plaintext length")
        expect_error(self.kms.generate_data_key, "ValidationException", KeyId=key_id, KeySpec="AES_256",
                     NumberOfBytes=32)
        expect_error(self.kms.generate_data_key, "ValidationException", KeyId=key_id)

    def check_generate_data_key_without_plaintext(self):
        key_id, arn = self.new_key("smoke gdkwp")
        resp = self.kms.generate_data_key_without_plaintext(KeyId=key_id, KeySpec="AES_256")
        eq(resp.get("KeyId"), arn, "GenerateDataKeyWithoutPlaintext KeyId")
        ensure("Plaintext" not in resp, "GenerateDataKeyWithoutPlaintext returned a Plaintext")
        eq(len(self.kms.decrypt(CiphertextBlob=resp["CiphertextBlob"])["Plaintext"]), 32,
           "decrypted GenerateDataKeyWithoutPlaintext key length")

    def check_derive_shared_secret(self):
        """KEY_AGREEMENT key: both KMS keys of a pair agree; with Python's
        cryptography (when installed) the peer derives the same secret."""
        a = self.kms.create_key(KeySpec="ECC_NIST_P384", KeyUsage="KEY_AGREEMENT")["KeyMetadata"]
        b = self.kms.create_key(KeySpec="ECC_NIST_P384", KeyUsage="KEY_AGREEMENT")["KeyMetadata"]
        eq(a.get("KeyAgreementAlgorithms"), ["ECDH"], "DescribeKey KeyAgreementAlgorithms")
        pa = self.kms.get_public_key(KeyId=a["KeyId"])
        pb = self.kms.get_public_key(KeyId=b["KeyId"])
        eq((pa.get("KeyUsage"), pa.get("KeyAgreementAlgorithms")), ("KEY_AGREEMENT", ["ECDH"]), "GetPublicKey usage and algorithms")
        ab = self.kms.derive_shared_secret(KeyId=a["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=pb["PublicKey"])
        ba = self.kms.derive_shared_secret(KeyId=b["Arn"], KeyAgreementAlgorithm="ECDH", PublicKey=pa["PublicKey"])
        eq((ab.get("KeyId"), ab.get("KeyAgreementAlgorithm"), ab.get("KeyOrigin")), (a["Arn"], "ECDH", "AWS_KMS"),
           "DeriveSharedSecret KeyId, algorithm, origin")
        eq(len(ab["SharedSecret"]), 48, "P-384 shared secret length")
        eq(ab["SharedSecret"], ba["SharedSecret"], "both keys derive the same secret")
        expect_error(self.kms.derive_shared_secret, "ValidationException", KeyId=a["KeyId"],
                     KeyAgreementAlgorithm="ECDH", PublicKey=b"InvalidPublicKey")
        sign_key = self.kms.create_key(KeySpec="ECC_NIST_P384", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
        expect_error(self.kms.derive_shared_secret, "InvalidKeyUsageException",
                     message="%s key usage is SIGN_VERIFY which is not valid for DeriveSharedSecret." % sign_key["Arn"],
                     KeyId=sign_key["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=pb["PublicKey"])
        try:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import ec
        except ImportError:
            return
        peer = ec.generate_private_key(ec.SECP384R1())
        spki = peer.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        got = self.kms.derive_shared_secret(KeyId=a["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=spki)["SharedSecret"]
        want = peer.exchange(ec.ECDH(), serialization.load_der_public_key(pa["PublicKey"]))
        eq(got, want, "DeriveSharedSecret against Python cryptography's ECDH")

    def check_generate_data_key_pair(self):
        """Data key pairs: the private key (PKCS#8) decrypts from its blob
        with the context and matches the public key (SPKI)."""
        key_id, arn = self.new_key("smoke data key pair")
        resp = self.kms.generate_data_key_pair(KeyId=key_id, KeyPairSpec="ECC_NIST_P256", EncryptionContext={"p": "1"})
        eq((resp.get("KeyId"), resp.get("KeyPairSpec")), (arn, "ECC_NIST_P256"), "GenerateDataKeyPair KeyId, KeyPairSpec")
        ensure(resp.get("KeyMaterialId"), "GenerateDataKeyPair without KeyMaterialId")
        dec = self.kms.decrypt(CiphertextBlob=resp["PrivateKeyCiphertextBlob"], EncryptionContext={"p": "1"})
        eq(dec["Plaintext"], resp["PrivateKeyPlaintext"], "Decrypt of PrivateKeyCiphertextBlob")
        wo = self.kms.generate_data_key_pair_without_plaintext(KeyId=key_id, KeyPairSpec="RSA_2048")
        ensure("PrivateKeyPlaintext" not in wo, "GenerateDataKeyPairWithoutPlaintext returned PrivateKeyPlaintext")
        rsa_priv = self.kms.decrypt(CiphertextBlob=wo["PrivateKeyCiphertextBlob"])["Plaintext"]
        expect_error(self.kms.generate_data_key_pair, "UnsupportedOperationException", KeyId=key_id, KeyPairSpec="SM2")
        expect_error(self.kms.generate_data_key_pair, "DryRunOperationException", KeyId=key_id,
                     KeyPairSpec="ECC_NIST_P256", DryRun=True)
        try:
            from cryptography.hazmat.primitives import serialization
        except ImportError:
            return
        for priv_der, pub_der, what in ((resp["PrivateKeyPlaintext"], resp["PublicKey"], "ECC_NIST_P256"),
                                        (rsa_priv, wo["PublicKey"], "RSA_2048")):
            priv = serialization.load_der_private_key(priv_der, password=None)
            derived = priv.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            eq(derived, pub_der, "%s public key derived by Python cryptography from the private key" % what)

    def check_generate_random(self):
        a = self.kms.generate_random(NumberOfBytes=32)["Plaintext"]
        b = self.kms.generate_random(NumberOfBytes=32)["Plaintext"]
        eq((len(a), len(b)), (32, 32), "GenerateRandom(32) lengths")
        ensure(a != b, "two GenerateRandom(32) answers are equal")
        eq(len(self.kms.generate_random(NumberOfBytes=1024)["Plaintext"]), 1024, "GenerateRandom(1024) length")
        expect_error(
            self.kms.generate_random,
            "ValidationException",
            message="1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy "
            "constraint: Member must have value less than or equal to 1024",
            NumberOfBytes=1025,
        )

    def check_key_rotation(self):
        key_id, arn = self.new_key("smoke rotation")
        st = self.kms.get_key_rotation_status(KeyId=key_id)
        eq(st.get("KeyRotationEnabled"), False, "GetKeyRotationStatus of a new key KeyRotationEnabled")
        expect_error(
            self.kms_unvalidated.enable_key_rotation,
            "ValidationException",
            message="1 validation error detected: Value '89' at 'rotationPeriodInDays' failed to satisfy "
            "constraint: Member must have value greater than or equal to 90",
            KeyId=key_id,
            RotationPeriodInDays=89,
        )
        # No period: AWS's documented default of 365 days.
        self.kms.enable_key_rotation(KeyId=key_id)
        st = self.kms.get_key_rotation_status(KeyId=key_id)
        eq(st.get("KeyRotationEnabled"), True, "GetKeyRotationStatus KeyRotationEnabled")
        eq(st.get("RotationPeriodInDays"), 365, "GetKeyRotationStatus RotationPeriodInDays (default)")
        ensure(st.get("KeyId") in (key_id, arn), "GetKeyRotationStatus KeyId = %r" % st.get("KeyId"))
        nrd = st.get("NextRotationDate")
        ensure(isinstance(nrd, datetime.datetime) and days_from_now(nrd, 365),
               "GetKeyRotationStatus NextRotationDate = %r, want about now + 365 days" % nrd)
        # A period on an enabled key changes it.
        self.kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=180)
        st = self.kms.get_key_rotation_status(KeyId=key_id)
        eq(st.get("RotationPeriodInDays"), 180, "GetKeyRotationStatus RotationPeriodInDays after 180")
        nrd = st.get("NextRotationDate")
        ensure(isinstance(nrd, datetime.datetime) and days_from_now(nrd, 180),
               "GetKeyRotationStatus NextRotationDate = %r, want about now + 180 days" % nrd)
        self.kms.disable_key_rotation(KeyId=key_id)
        eq(self.kms.get_key_rotation_status(KeyId=key_id).get("KeyRotationEnabled"), False,
           "KeyRotationEnabled after DisableKeyRotation")

    def check_rotate_on_demand(self):
        key_id, arn = self.new_key("smoke on-demand")
        before = self.describe(key_id).get("CurrentKeyMaterialId")
        old_blob = self.kms.encrypt(KeyId=key_id, Plaintext=SECRET_MARKERS[2])["CiphertextBlob"]
        eq(self.kms.list_key_rotations(KeyId=key_id).get("Rotations"), [], "ListKeyRotations before rotation")
        resp = self.kms.rotate_key_on_demand(KeyId=key_id)
        ensure(resp.get("KeyId") in (key_id, arn), "RotateKeyOnDemand KeyId = %r" % resp.get("KeyId"))
        rot = self.kms.list_key_rotations(KeyId=key_id)
        rotations = rot.get("Rotations", [])
        eq(len(rotations), 1, "ListKeyRotations rotation count (%s)" % short(rotations))
        eq(rotations[0].get("RotationType"), "ON_DEMAND", "ListKeyRotations RotationType")
        ensure(rotations[0].get("KeyId") in (key_id, arn), "ListKeyRotations KeyId = %r" % rotations[0].get("KeyId"))
        rd = rotations[0].get("RotationDate")
        ensure(isinstance(rd, datetime.datetime) and abs((rd - utcnow()).total_seconds()) < 300,
               "ListKeyRotations RotationDate = %r, want about now" % rd)
        eq(rot.get("Truncated"), False, "ListKeyRotations Truncated")
        after = self.describe(key_id).get("CurrentKeyMaterialId")
        if before is not None:
            ensure(after and after != before, "CurrentKeyMaterialId %r -> %r after rotation" % (before, after))
        eq(self.kms.decrypt(CiphertextBlob=old_blob)["Plaintext"], SECRET_MARKERS[2],
           "Decrypt of a pre-rotation ciphertext")
        new_blob = self.kms.encrypt(KeyId=key_id, Plaintext=SECRET_MARKERS[2])["CiphertextBlob"]
        eq(self.kms.decrypt(CiphertextBlob=new_blob)["Plaintext"], SECRET_MARKERS[2],
           "Decrypt of a post-rotation ciphertext")

    def check_key_policy(self):
        key_id, _ = self.new_key("smoke policy")
        eq(self.kms.list_key_policies(KeyId=key_id).get("PolicyNames"), ["default"], "ListKeyPolicies PolicyNames")
        resp = self.kms.get_key_policy(KeyId=key_id, PolicyName="default")
        policy = json.loads(resp["Policy"])
        stmts = policy.get("Statement", [])
        root = "arn:aws:iam::%s:root" % ACCOUNT
        ensure(
            any(
                s.get("Effect") == "Allow"
                and root in _as_list(s.get("Principal", {}).get("AWS") if isinstance(s.get("Principal"), dict) else None)
                and "kms:*" in _as_list(s.get("Action"))
                and "*" in _as_list(s.get("Resource"))
                for s in stmts
            ),
            "default key policy has no Allow kms:* on * for %s: %s" % (root, resp["Policy"]),
        )
        eq(policy.get("Version"), "2012-10-17", "default key policy Version")
        if "PolicyName" in resp:
            eq(resp["PolicyName"], "default", "GetKeyPolicy PolicyName")
        new_policy = {
            "Version": "2012-10-17",
            "Id": "smoke-policy",
            "Statement": [{"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": root},
                           "Action": "kms:*", "Resource": "*"}],
        }
        self.kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(new_policy))
        got = json.loads(self.kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
        eq(got, new_policy, "GetKeyPolicy after PutKeyPolicy")
        expect_error(self.kms.put_key_policy, "MalformedPolicyDocumentException", KeyId=key_id,
                     PolicyName="default", Policy="{not json")
        eq(json.loads(self.kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]), new_policy,
           "GetKeyPolicy after a refused PutKeyPolicy")

    def check_aws_managed_key(self):
        # Until first use the alias has no key (AWS lists predefined aliases
        # without TargetKeyId, or not at all).
        before = [a for a in self.kms.list_aliases()["Aliases"] if a.get("AliasName") == "alias/aws/secretsmanager"]
        ensure(all("TargetKeyId" not in a for a in before),
               "alias/aws/secretsmanager has a key before first use: %s" % short(before))
        md = self.describe("alias/aws/secretsmanager")
        eq(md.get("KeyManager"), "AWS", "DescribeKey(alias/aws/secretsmanager) KeyManager")
        eq(md.get("KeyState"), "Enabled", "DescribeKey(alias/aws/secretsmanager) KeyState")
        ensure(KEY_ARN_RE.match(md.get("Arn", "")), "AWS managed key Arn = %r" % md.get("Arn"))
        eq(self.describe("alias/aws/secretsmanager").get("KeyId"), md["KeyId"],
           "second DescribeKey(alias/aws/secretsmanager) KeyId")
        targets = {a["AliasName"]: a.get("TargetKeyId") for a in self.kms.list_aliases(KeyId=md["KeyId"])["Aliases"]}
        eq(targets, {"alias/aws/secretsmanager": md["KeyId"]}, "ListAliases(KeyId=<aws managed key>)")

    def check_refused_custom_key_store(self):
        key_id, arn = self.new_key("smoke refused")
        # Keyfort reaches no CloudHSM cluster: every cluster id is one AWS
        # cannot find.
        expect_error(self.kms.create_custom_key_store, "CloudHsmClusterNotFoundException", status=400,
                     CustomKeyStoreName="smoke-hsm", CloudHsmClusterId="cluster-234567abcdefg",
                     TrustAnchorCertificate="x", KeyStorePassword="12345678")
        # Import on a key of origin AWS_KMS is refused as AWS refuses it.
        expect_error(self.kms.get_parameters_for_import, "UnsupportedOperationException", status=400, KeyId=key_id,
                     WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048",
                     message=arn + " origin is AWS_KMS which is not valid for this operation.")
        # No store was made on this server (the external key store check
        # runs a server of its own).
        stores = self.kms.describe_custom_key_stores()
        eq(stores.get("CustomKeyStores"), [], "DescribeCustomKeyStores CustomKeyStores")
        eq(stores.get("Truncated"), False, "DescribeCustomKeyStores Truncated")
        expect_error(self.kms.delete_custom_key_store, "CustomKeyStoreNotFoundException", status=400,
                     CustomKeyStoreId="cks-1234567890abcdef0")

    # ---- external key store: a second server and a Python XKS proxy ----

    def check_external_key_store(self):
        try:
            import xksproxy  # e2e/smoke/xksproxy.py; needs the cryptography package
        except ImportError as e:
            raise CheckFailed("cannot import e2e/smoke/xksproxy.py (python3 -m pip install cryptography): %s" % e)
        # ciphertextMetadata makes Keyfort carry the proxy's metadata in its
        # ciphertext and give it back on Decrypt.
        proxy = xksproxy.XksProxy(XKS_HOST, XKS_PATH, REGION, ciphertext_metadata=b"smoke-v1")
        proxy.add_key(XKS_KEY)
        server = None
        try:
            proxy.start()
            ca = os.path.join(self.workdir, "xks-proxy-ca.pem")
            with open(ca, "wb") as f:
                f.write(proxy.cert_pem)
            server = Server(self.server.binary, os.path.join(self.workdir, "data-xks"),
                            os.path.join(self.workdir, "server-xks.log"),
                            ["--xks-proxy-ca", ca,
                             "--xks-proxy-address", "%s=127.0.0.1:%d" % (XKS_HOST, proxy.port),
                             "--xks-proxy-timeout", "2s"])
            server.start()
            server.wait_healthy()
            try:
                self._external_key_store(server, proxy)
            except CheckFailed as e:
                raise CheckFailed("%s (proxy refused: %s; server log tail: %s)"
                                  % (e, proxy.rejected() or "nothing", server.log_tail(3)))
        finally:
            stopped = server.stop() if server is not None else None
            proxy.close()
        code, killed = stopped
        ensure(not killed and code == 0, "the external key store server: exit code %s after SIGTERM%s (log tail: %s)"
               % (code, ", killed" if killed else "", server.log_tail()))
        # Neither the proxy's secret nor the plaintext reach the disk or the log.
        paths = [server.log_path]
        for root, _, files in os.walk(server.data):
            paths += [os.path.join(root, f) for f in files]
        found = []
        for p in paths:
            with open(p, "rb") as f:
                content = f.read()
            for what, needle in (("the proxy's secret", proxy.secret.encode()), ("the plaintext", XKS_PLAINTEXT),
                                 ("the plaintext (base64)", base64.b64encode(XKS_PLAINTEXT))):
                if needle in content:
                    found.append("%s in %s" % (what, os.path.relpath(p, self.workdir)))
        ensure(not found, "found %s" % ", ".join(found))

    def _external_key_store(self, server, proxy):
        kms = boto3.client(
            "kms", endpoint_url=server.endpoint, region_name=REGION,
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=20),
        )

        def last(op, what):
            reqs = proxy.requests(op)
            ensure(reqs, "the proxy received no %s request (%s)" % (op, what))
            r = reqs[-1]
            eq((r["access_key_id"], r["signed_headers"]), (proxy.access_key_id, "host;x-amz-date"),
               "%s (%s): access key id and SignedHeaders" % (op, what))
            ensure(r["metadata"].get("kmsRequestId"), "%s (%s): no kmsRequestId: %s" % (op, what, r["metadata"]))
            return r

        def store():
            got = kms.describe_custom_key_stores(CustomKeyStoreId=store_id)["CustomKeyStores"]
            eq(len(got), 1, "DescribeCustomKeyStores(%s) entries" % store_id)
            return got[0]

        # CreateCustomKeyStore asks the proxy for its health, signed with
        # the store's credential; the store starts DISCONNECTED.
        created = kms.create_custom_key_store(
            CustomKeyStoreName="smoke-xks", CustomKeyStoreType="EXTERNAL_KEY_STORE",
            XksProxyConnectivity="PUBLIC_ENDPOINT", XksProxyUriEndpoint="https://" + XKS_HOST,
            XksProxyUriPath=XKS_PATH,
            XksProxyAuthenticationCredential={"AccessKeyId": proxy.access_key_id, "RawSecretAccessKey": proxy.secret},
        )
        store_id = created.get("CustomKeyStoreId", "")
        ensure(re.match(r"^cks-[0-9a-f]{17}$", store_id), "CreateCustomKeyStore CustomKeyStoreId = %r" % store_id)
        eq(last("GetHealthStatus", "CreateCustomKeyStore")["metadata"].get("kmsOperation"), "CreateCustomKeyStore",
           "GetHealthStatus kmsOperation at CreateCustomKeyStore")
        e = store()
        ensure(proxy.secret not in repr(e), "DescribeCustomKeyStores shows the proxy's secret")
        for field, want in [
            ("CustomKeyStoreId", store_id), ("CustomKeyStoreName", "smoke-xks"),
            ("CustomKeyStoreType", "EXTERNAL_KEY_STORE"), ("ConnectionState", "DISCONNECTED"),
            ("XksProxyConfiguration", {"Connectivity": "PUBLIC_ENDPOINT", "AccessKeyId": proxy.access_key_id,
                                       "UriEndpoint": "https://" + XKS_HOST, "UriPath": XKS_PATH}),
        ]:
            eq(e.get(field), want, "DescribeCustomKeyStores %s" % field)
        for absent in ("ConnectionErrorCode", "CloudHsmClusterId", "TrustAnchorCertificate"):
            ensure(absent not in e, "DescribeCustomKeyStores has %s %r" % (absent, e.get(absent)))
        ensure(isinstance(e.get("CreationDate"), datetime.datetime)
               and abs((e["CreationDate"] - utcnow()).total_seconds()) < 300,
               "DescribeCustomKeyStores CreationDate = %r, want about now" % e.get("CreationDate"))
        xks_key = {"Origin": "EXTERNAL_KEY_STORE", "CustomKeyStoreId": store_id}
        expect_error(kms.create_key, "CustomKeyStoreInvalidStateException", status=400,
                     message=XKS_MSG_NOT_CONNECTED, XksKeyId=XKS_KEY, **xks_key)

        eq({k: v for k, v in kms.connect_custom_key_store(CustomKeyStoreId=store_id).items()
            if k != "ResponseMetadata"}, {}, "ConnectCustomKeyStore answer")
        eq(store().get("ConnectionState"), "CONNECTED", "ConnectionState after ConnectCustomKeyStore")
        eq(last("GetHealthStatus", "ConnectCustomKeyStore")["metadata"].get("kmsOperation"), "ConnectCustomKeyStore",
           "GetHealthStatus kmsOperation at ConnectCustomKeyStore")

        # A KMS key backed by the proxy's external key.
        md = kms.create_key(XksKeyId=XKS_KEY, Description="smoke xks", **xks_key)["KeyMetadata"]
        key_id, arn = md.get("KeyId"), md.get("Arn", "")
        ensure(KEY_ARN_RE.match(arn), "CreateKey Arn = %r" % arn)
        for field, want in [
            ("KeyState", "Enabled"), ("Enabled", True), ("Origin", "EXTERNAL_KEY_STORE"),
            ("CustomKeyStoreId", store_id), ("XksKeyConfiguration", {"Id": XKS_KEY}),
            ("KeySpec", "SYMMETRIC_DEFAULT"), ("KeyUsage", "ENCRYPT_DECRYPT"), ("KeyManager", "CUSTOMER"),
            ("EncryptionAlgorithms", ["SYMMETRIC_DEFAULT"]), ("MultiRegion", False),
        ]:
            eq(md.get(field), want, "CreateKey KeyMetadata.%s" % field)
        ensure("CloudHsmClusterId" not in md, "CreateKey KeyMetadata has CloudHsmClusterId")
        r = last("GetKeyMetadata", "CreateKey")
        eq((r["key_id"], r["metadata"].get("kmsOperation")), (XKS_KEY, "CreateKey"),
           "GetKeyMetadata at CreateKey: external key id, kmsOperation")
        ensure(r["metadata"].get("awsPrincipalArn", "").startswith("arn:aws:iam::%s:" % ACCOUNT),
               "GetKeyMetadata awsPrincipalArn = %r" % r["metadata"].get("awsPrincipalArn"))
        d = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        eq((d.get("KeyState"), d.get("CustomKeyStoreId"), d.get("XksKeyConfiguration")),
           ("Enabled", store_id, {"Id": XKS_KEY}), "DescribeKey KeyState, CustomKeyStoreId, XksKeyConfiguration")
        expect_error(kms.create_key, "XksKeyNotFoundException", status=400, message=XKS_MSG_KEY_NOT_FOUND,
                     XksKeyId="smoke-no-such-key", **xks_key)
        expect_error(kms.create_key, "XksKeyAlreadyInUseException", status=400, contains=[arn],
                     XksKeyId=XKS_KEY, **xks_key)

        # Double encryption: the proxy sees each Encrypt and Decrypt with
        # the key's ARN, the KMS operation and the encryption context as
        # additional data.
        ctx = {"purpose": "smoke-xks"}
        enc = kms.encrypt(KeyId=key_id, Plaintext=XKS_PLAINTEXT, EncryptionContext=ctx)
        eq(enc.get("KeyId"), arn, "Encrypt KeyId")
        blob = enc["CiphertextBlob"]
        ensure(XKS_PLAINTEXT not in blob, "Encrypt CiphertextBlob contains the plaintext")
        r = last("Encrypt", "Encrypt")
        eq((r["key_id"], r["metadata"].get("kmsKeyArn"), r["metadata"].get("kmsOperation"), r["aad"], r["integrity"]),
           (XKS_KEY, arn, "Encrypt", True, True),
           "proxy Encrypt: external key id, kmsKeyArn, kmsOperation, AAD sent, integrity value asked")
        eq(r["metadata"].get("kmsRequestId"), enc["ResponseMetadata"].get("RequestId"),
           "proxy Encrypt kmsRequestId (the request's x-amzn-RequestId, its CloudTrail requestID)")
        dec = kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)
        eq((dec.get("Plaintext"), dec.get("KeyId")), (XKS_PLAINTEXT, arn), "Decrypt Plaintext, KeyId")
        r = last("Decrypt", "Decrypt")
        eq((r["key_id"], r["metadata"].get("kmsKeyArn"), r["metadata"].get("kmsOperation"), r["aad"]),
           (XKS_KEY, arn, "Decrypt", True), "proxy Decrypt: external key id, kmsKeyArn, kmsOperation, AAD sent")

        gdk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
        eq(len(gdk.get("Plaintext", b"")), 32, "GenerateDataKey Plaintext length")
        eq(last("Encrypt", "GenerateDataKey")["metadata"].get("kmsOperation"), "GenerateDataKey",
           "proxy Encrypt kmsOperation for GenerateDataKey")
        eq(kms.decrypt(CiphertextBlob=gdk["CiphertextBlob"], KeyId=key_id)["Plaintext"], gdk["Plaintext"],
           "Decrypt of the data key")

        # ReEncrypt within the store: the proxy decrypts and encrypts.
        proxy.reset()
        ctx2 = {"purpose": "smoke-xks-2"}
        re_enc = kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext=ctx, DestinationKeyId=key_id,
                                DestinationEncryptionContext=ctx2)
        eq((re_enc.get("SourceKeyId"), re_enc.get("KeyId")), (arn, arn), "ReEncrypt SourceKeyId, KeyId")
        eq([(r["operation"], r["metadata"].get("kmsOperation")) for r in proxy.requests()],
           [("Decrypt", "ReEncrypt"), ("Encrypt", "ReEncrypt")], "proxy requests of ReEncrypt")
        eq(kms.decrypt(CiphertextBlob=re_enc["CiphertextBlob"], EncryptionContext=ctx2)["Plaintext"], XKS_PLAINTEXT,
           "Decrypt after ReEncrypt")

        # Another encryption context: the proxy refuses the additional data.
        expect_error(kms.decrypt, "KMSInvalidStateException", status=400, message=XKS_MSG_BAD_CIPHERTEXT,
                     CiphertextBlob=blob, EncryptionContext={"purpose": "other"})

        # The external key disabled in the external key manager.
        proxy.set_key_status(XKS_KEY, "DISABLED")
        expect_error(kms.encrypt, "KMSInvalidStateException", status=400, message=XKS_MSG_KEY_DISABLED,
                     KeyId=key_id, Plaintext=b"x")
        expect_error(kms.decrypt, "KMSInvalidStateException", status=400, message=XKS_MSG_KEY_DISABLED,
                     CiphertextBlob=blob, EncryptionContext=ctx)
        eq(kms.describe_key(KeyId=key_id)["KeyMetadata"].get("KeyState"), "Enabled",
           "KeyState while the external key is disabled")
        proxy.set_key_status(XKS_KEY, "ENABLED")
        eq(kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)["Plaintext"], XKS_PLAINTEXT,
           "Decrypt once the external key is enabled again")

        # Disconnected: the key is Unavailable.
        kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
        eq(store().get("ConnectionState"), "DISCONNECTED", "ConnectionState after DisconnectCustomKeyStore")
        d = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        eq((d.get("KeyState"), d.get("Enabled")), ("Unavailable", False),
           "DescribeKey KeyState, Enabled of a key in a disconnected store")
        expect_error(kms.encrypt, "KMSInvalidStateException", status=400, message="%s is unavailable." % arn,
                     KeyId=key_id, Plaintext=b"x")
        expect_error(kms.decrypt, "KMSInvalidStateException", status=400, message="%s is unavailable." % arn,
                     CiphertextBlob=blob, EncryptionContext=ctx)

        resp = kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
        eq((resp.get("KeyId"), resp.get("KeyState")), (arn, "PendingDeletion"), "ScheduleKeyDeletion KeyId, KeyState")
        eq(kms.describe_key(KeyId=key_id)["KeyMetadata"].get("KeyState"), "PendingDeletion",
           "DescribeKey KeyState after ScheduleKeyDeletion")
        expect_error(kms.delete_custom_key_store, "CustomKeyStoreHasCMKsException", status=400,
                     CustomKeyStoreId=store_id)
        ensure(not proxy.rejected(), "the proxy refused requests: %s" % proxy.rejected())

    def check_multi_region(self):
        # A multi-Region key replicated to eu-west-1: a ciphertext of the
        # primary decrypts there without KeyId; rotation is the primary's.
        md = self.kms.create_key(MultiRegion=True, Description="smoke mrk")["KeyMetadata"]
        key_id = md["KeyId"]
        ensure(re.match(r"^mrk-[0-9a-f]{32}$", key_id), "multi-Region KeyId %r" % key_id)
        eq(md["MultiRegionConfiguration"]["MultiRegionKeyType"], "PRIMARY", "MultiRegionKeyType")
        eq(md["MultiRegionConfiguration"]["ReplicaKeys"], [], "ReplicaKeys of a new primary")
        rep = self.kms.replicate_key(KeyId=key_id, ReplicaRegion="eu-west-1", Description="smoke replica")
        eq(rep["ReplicaKeyMetadata"]["Arn"], "arn:aws:kms:eu-west-1:%s:key/%s" % (ACCOUNT, key_id), "replica ARN")
        ct = self.kms.encrypt(KeyId=key_id, Plaintext=b"smoke-mrk", EncryptionContext={"k": "v"})["CiphertextBlob"]
        out = self.kms_eu.decrypt(CiphertextBlob=ct, EncryptionContext={"k": "v"})
        eq(out["Plaintext"], b"smoke-mrk", "Decrypt in the replica's region")
        eq(out["KeyId"], rep["ReplicaKeyMetadata"]["Arn"], "Decrypt KeyId in the replica's region")
        desc = self.kms_eu.describe_key(KeyId=key_id)["KeyMetadata"]
        eq((desc["KeyState"], desc["MultiRegionConfiguration"]["MultiRegionKeyType"]), ("Enabled", "REPLICA"), "replica state and type")
        expect_error(self.kms_eu.rotate_key_on_demand, "UnsupportedOperationException", KeyId=key_id,
                     message=rep["ReplicaKeyMetadata"]["Arn"] + " is not a multi-region primary key.")
        expect_error(self.kms.replicate_key, "AlreadyExistsException", KeyId=key_id, ReplicaRegion="eu-west-1")

    def check_grants(self):
        key_id, arn = self.new_key("smoke grant")
        g = self.kms.create_grant(KeyId=key_id, GranteePrincipal="arn:aws:iam::111122223333:root",
                                  Operations=["Encrypt", "Decrypt"], Name="smoke")
        ensure(re.match(r"^[0-9a-f]{64}$", g["GrantId"]), "GrantId %r" % g["GrantId"])
        # The other account uses the key through the grant, by key ARN.
        ct = self.kms_other_account.encrypt(KeyId=arn, Plaintext=b"smoke-plaintext-7f3a9c")["CiphertextBlob"]
        pt = self.kms_other_account.decrypt(KeyId=arn, CiphertextBlob=ct, GrantTokens=[g["GrantToken"]])["Plaintext"]
        eq(pt, b"smoke-plaintext-7f3a9c", "Decrypt through the grant")
        grants = self.kms.list_grants(KeyId=key_id)["Grants"]
        eq([x["GrantId"] for x in grants], [g["GrantId"]], "ListGrants")
        eq(grants[0]["IssuingAccount"], "arn:aws:iam::%s:root" % ACCOUNT, "IssuingAccount")
        self.kms.revoke_grant(KeyId=key_id, GrantId=g["GrantId"])
        expect_error(self.kms_other_account.encrypt, "AccessDeniedException", KeyId=arn, Plaintext=b"x",
                     contains=["is not authorized to perform: kms:Encrypt"])
        expect_error(self.kms.create_grant, "InvalidGrantTokenException", KeyId=key_id,
                     GranteePrincipal="arn:aws:iam::%s:role/smoke" % ACCOUNT, Operations=["Decrypt"], GrantTokens=["bogus"])

    def check_region_isolation(self):
        key_id, arn = self.new_key("smoke region")
        self.kms.create_alias(AliasName="alias/smoke-region", TargetKeyId=key_id)
        expect_error(self.kms_eu.describe_key, "NotFoundException", KeyId=key_id)
        expect_error(self.kms_eu.encrypt, "NotFoundException", KeyId=key_id, Plaintext=b"x")
        expect_error(self.kms_eu.describe_key, "NotFoundException", KeyId="alias/smoke-region")
        eu_ids = [k["KeyId"] for k in self.kms_eu.list_keys()["Keys"]]
        ensure(key_id not in eu_ids, "ListKeys in eu-west-1 shows us-east-1 key %s" % key_id)
        md = self.kms_eu.create_key()["KeyMetadata"]
        ensure(md["Arn"].startswith("arn:aws:kms:eu-west-1:%s:key/" % ACCOUNT), "eu-west-1 CreateKey Arn = %r" % md["Arn"])
        expect_error(self.kms.describe_key, "NotFoundException", KeyId=md["KeyId"])

    def check_account_isolation(self):
        key_id, _ = self.new_key("smoke account")
        md = self.kms_other_account.create_key()["KeyMetadata"]
        ensure(md["Arn"].startswith("arn:aws:kms:us-east-1:111122223333:key/"),
               "CreateKey with access key 111122223333: Arn = %r" % md["Arn"])
        eq(md.get("AWSAccountId"), "111122223333", "AWSAccountId for access key 111122223333")
        expect_error(self.kms_other_account.describe_key, "NotFoundException", KeyId=key_id)

    def check_wire_protocol(self):
        """Protocol errors a raw AWS JSON 1.1 client sees."""
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        # Well-formed SigV4 (dev auth checks the form, not the signature).
        auth = ("AWS4-HMAC-SHA256 Credential=%s/%s/us-east-1/kms/aws4_request, "
                "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=%s"
                % (ACCESS_KEY, amz_date[:8], "0" * 64))
        cases = [
            ("unknown X-Amz-Target", "TrentService.NoSuchOperation", "{}", True, "UnknownOperationException"),
            ("malformed JSON", "TrentService.ListKeys", "{not json", True, "SerializationException"),
            ("member of the wrong type", "TrentService.ListKeys", '{"Limit":"ten"}', True, "SerializationException"),
            ("no Authorization header", "TrentService.ListKeys", "{}", False, "MissingAuthenticationTokenException"),
        ]
        for what, target, body, signed, want in cases:
            headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target,
                       "X-Amz-Date": amz_date}
            if signed:
                headers["Authorization"] = auth
            req = urllib.request.Request(self.server.endpoint + "/", data=body.encode(), headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    raise CheckFailed("%s: HTTP %d %r, want 400 %s" % (what, r.status, r.read()[:200], want))
            except urllib.error.HTTPError as e:
                raw = e.read()
                eq(e.code, 400, "%s: HTTP status" % what)
                eq(e.headers.get("X-Amzn-ErrorType"), want, "%s: X-Amzn-ErrorType" % what)
                ensure(e.headers.get("x-amzn-RequestId"), "%s: no x-amzn-RequestId header" % what)
                try:
                    doc = json.loads(raw)
                except ValueError:
                    raise CheckFailed("%s: error body is not JSON: %r" % (what, raw[:200]))
                eq(doc.get("__type"), want, "%s: body __type" % what)
                ensure(isinstance(doc.get("message"), str) and doc["message"], "%s: body has no message: %r" % (what, doc))

    def setup_persisted(self):
        """State to find again after a restart on the same data directory."""
        key_id, arn = self.new_key("smoke persisted")
        self.kms.create_alias(AliasName="alias/smoke-persisted", TargetKeyId=key_id)
        self.kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "persist", "TagValue": "yes"}])
        self.kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=200)
        blob = self.kms.encrypt(KeyId=key_id, Plaintext=SECRET_MARKERS[0],
                                EncryptionContext={"p": "1"})["CiphertextBlob"]
        self.kms.rotate_key_on_demand(KeyId=key_id)
        disabled_id, _ = self.new_key("smoke persisted disabled")
        self.kms.disable_key(KeyId=disabled_id)
        sm_vid = self.sm.create_secret(Name="smoke/persisted", SecretString=SECRET_MARKERS[8].decode(),
                                       Tags=[{"Key": "persist", "Value": "yes"}])["VersionId"]
        return {"key_id": key_id, "arn": arn, "blob": blob, "disabled_id": disabled_id, "sm_vid": sm_vid}

    def check_persisted(self, state):
        ensure(state, "nothing was set up before the restart")
        md = self.describe("alias/smoke-persisted")
        eq((md.get("KeyId"), md.get("Description"), md.get("KeyState")),
           (state["key_id"], "smoke persisted", "Enabled"), "DescribeKey(alias) after restart")
        eq(self.kms.decrypt(CiphertextBlob=state["blob"], EncryptionContext={"p": "1"})["Plaintext"],
           SECRET_MARKERS[0], "Decrypt of a pre-restart ciphertext")
        eq({t["TagKey"]: t["TagValue"] for t in self.kms.list_resource_tags(KeyId=state["key_id"])["Tags"]},
           {"persist": "yes"}, "tags after restart")
        st = self.kms.get_key_rotation_status(KeyId=state["key_id"])
        eq((st.get("KeyRotationEnabled"), st.get("RotationPeriodInDays")), (True, 200), "rotation status after restart")
        eq(len(self.kms.list_key_rotations(KeyId=state["key_id"])["Rotations"]), 1, "rotations after restart")
        eq(self.describe(state["disabled_id"]).get("KeyState"), "Disabled", "disabled key state after restart")
        got = self.sm.get_secret_value(SecretId="smoke/persisted", VersionId=state["sm_vid"])
        eq(got.get("SecretString"), SECRET_MARKERS[8].decode(), "GetSecretValue of a pre-restart secret")
        eq(self.sm.describe_secret(SecretId="smoke/persisted").get("Tags"), [{"Key": "persist", "Value": "yes"}],
           "secret tags after restart")

    def check_cli_import_key_material(self):
        # The developer guide's procedure for importing key material, with
        # the AWS CLI and the openssl command: a symmetric key's 256 random
        # bits wrapped with RSAES_OAEP_SHA_256, an EC P-256 private key
        # (PKCS#8 DER) wrapped with RSA_AES_KEY_WRAP_SHA_256 (openssl's
        # id-aes256-wrap-pad); what the imported EC key signs openssl
        # verifies with the local public key.
        tmp = tempfile.mkdtemp(prefix="smoke-import-")
        try:
            def path(name):
                return os.path.join(tmp, name)

            def openssl(args, what):
                p = subprocess.run(["openssl"] + args, capture_output=True)
                eq(p.returncode, 0, "openssl %s: %r" % (what, p.stderr))
                return p.stdout

            def cli_json(*args):
                code, out, err = self.aws("kms", "--region", REGION, "--output", "json", *args)
                eq(code, 0, "aws kms %s (stderr %r)" % (args[0], err.strip()))
                return json.loads(out) if out.strip() else {}

            def params(key_id, alg, spec, tag):
                out = cli_json("get-parameters-for-import", "--key-id", key_id, "--wrapping-algorithm", alg,
                               "--wrapping-key-spec", spec)
                for field, name in (("PublicKey", "pub"), ("ImportToken", "token")):
                    with open(path("%s-%s.bin" % (tag, name)), "wb") as f:
                        f.write(base64.b64decode(out[field]))
                return path(tag + "-pub.bin"), path(tag + "-token.bin")

            oaep = ["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256"]

            # Symmetric: create, wrap with openssl, import, use.
            md = cli_json("create-key", "--origin", "EXTERNAL", "--description", "smoke import")["KeyMetadata"]
            key_id = md["KeyId"]
            eq((md["Origin"], md["KeyState"]), ("EXTERNAL", "PendingImport"), "create-key --origin EXTERNAL")
            pub, token = params(key_id, "RSAES_OAEP_SHA_256", "RSA_2048", "sym")
            openssl(["rand", "-out", path("material.bin"), "32"], "rand")
            openssl(["pkeyutl", "-encrypt", "-in", path("material.bin"), "-out", path("wrapped.bin"), "-inkey", pub,
                     "-keyform", "DER", "-pubin"] + oaep, "wraps the material (RSAES_OAEP_SHA_256)")
            out = cli_json("import-key-material", "--key-id", key_id, "--encrypted-key-material", "fileb://" + path("wrapped.bin"),
                           "--import-token", "fileb://" + token, "--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE")
            ensure(re.match(r"^[0-9a-f]{64}$", out.get("KeyMaterialId", "")), "import-key-material KeyMaterialId %r" % out)
            eq(self.kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"], "Enabled", "state after import")
            ct = self.kms.encrypt(KeyId=key_id, Plaintext=b"smoke-import-plaintext")["CiphertextBlob"]
            # Deleted, the key is PendingImport; the same material imported
            # again (a new token) brings the ciphertext back.
            cli_json("delete-imported-key-material", "--key-id", key_id)
            expect_error(self.kms.decrypt, "KMSInvalidStateException", CiphertextBlob=ct,
                         message=md["Arn"] + " is pending import.")
            pub, token = params(key_id, "RSAES_OAEP_SHA_256", "RSA_2048", "sym2")
            openssl(["pkeyutl", "-encrypt", "-in", path("material.bin"), "-out", path("wrapped2.bin"), "-inkey", pub,
                     "-keyform", "DER", "-pubin"] + oaep, "wraps the material again")
            cli_json("import-key-material", "--key-id", key_id, "--encrypted-key-material", "fileb://" + path("wrapped2.bin"),
                     "--import-token", "fileb://" + token, "--expiration-model", "KEY_MATERIAL_EXPIRES",
                     "--valid-to", (utcnow() + datetime.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"))
            eq(self.kms.decrypt(CiphertextBlob=ct)["Plaintext"], b"smoke-import-plaintext", "Decrypt after reimport")
            eq(self.kms.describe_key(KeyId=key_id)["KeyMetadata"].get("ExpirationModel"), "KEY_MATERIAL_EXPIRES",
               "ExpirationModel after reimport")

            # EC P-256 signing key, RSA_AES_KEY_WRAP_SHA_256 as the guide
            # spells it out with openssl.
            md = cli_json("create-key", "--origin", "EXTERNAL", "--key-spec", "ECC_NIST_P256",
                          "--key-usage", "SIGN_VERIFY")["KeyMetadata"]
            ec_id = md["KeyId"]
            pub, token = params(ec_id, "RSA_AES_KEY_WRAP_SHA_256", "RSA_3072", "ec")
            openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path("ec.pem")], "genpkey")
            openssl(["pkcs8", "-topk8", "-nocrypt", "-in", path("ec.pem"), "-outform", "DER", "-out", path("ec.der")], "pkcs8")
            openssl(["pkey", "-in", path("ec.pem"), "-pubout", "-out", path("ec-pub.pem")], "public key")
            openssl(["rand", "-out", path("aes.bin"), "32"], "rand")
            aes_hex = open(path("aes.bin"), "rb").read().hex()
            openssl(["enc", "-id-aes256-wrap-pad", "-K", aes_hex, "-iv", "A65959A6", "-in", path("ec.der"),
                     "-out", path("ec-wrapped.bin")], "wraps the EC key (AES-KWP)")
            openssl(["pkeyutl", "-encrypt", "-in", path("aes.bin"), "-out", path("aes-wrapped.bin"), "-inkey", pub,
                     "-keyform", "DER", "-pubin"] + oaep, "wraps the AES key")
            with open(path("ec-import.bin"), "wb") as f:
                f.write(open(path("aes-wrapped.bin"), "rb").read() + open(path("ec-wrapped.bin"), "rb").read())
            cli_json("import-key-material", "--key-id", ec_id, "--encrypted-key-material", "fileb://" + path("ec-import.bin"),
                     "--import-token", "fileb://" + token, "--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE")
            msg = b"signed by imported material"
            with open(path("msg"), "wb") as f:
                f.write(msg)
            sig = self.kms.sign(KeyId=ec_id, Message=msg, MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
            with open(path("msg.sig"), "wb") as f:
                f.write(sig)
            openssl(["dgst", "-sha256", "-verify", path("ec-pub.pem"), "-signature", path("msg.sig"), path("msg")],
                    "verifies the signature with the local key")
            # Another key's material is refused.
            pub, token = params(ec_id, "RSA_AES_KEY_WRAP_SHA_256", "RSA_2048", "ec2")
            openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-outform", "DER",
                     "-out", path("other.der")], "genpkey")
            openssl(["pkcs8", "-topk8", "-nocrypt", "-inform", "DER", "-in", path("other.der"), "-outform", "DER",
                     "-out", path("other8.der")], "pkcs8")
            openssl(["enc", "-id-aes256-wrap-pad", "-K", aes_hex, "-iv", "A65959A6", "-in", path("other8.der"),
                     "-out", path("other-wrapped.bin")], "wraps the other key")
            openssl(["pkeyutl", "-encrypt", "-in", path("aes.bin"), "-out", path("aes-wrapped2.bin"), "-inkey", pub,
                     "-keyform", "DER", "-pubin"] + oaep, "wraps the AES key")
            expect_error(self.kms.import_key_material, "IncorrectKeyMaterialException", KeyId=ec_id,
                         ImportToken=open(token, "rb").read(),
                         EncryptedKeyMaterial=open(path("aes-wrapped2.bin"), "rb").read() + open(path("other-wrapped.bin"), "rb").read(),
                         ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def check_cli_every_key_type(self):
        # A key of every type made with the AWS CLI, used through boto3, and
        # what it signs or encrypts checked by the openssl command (OpenSSL
        # 3.0 has no ML-DSA: those signatures are checked by Verify only).
        tmp = tempfile.mkdtemp(prefix="smoke-keytypes-")
        try:
            msg = b"smoke: every key type"
            msg_file = os.path.join(tmp, "msg")
            with open(msg_file, "wb") as f:
                f.write(msg)

            def cli_key(spec, usage):
                code, out, err = self.aws("kms", "create-key", "--region", REGION, "--output", "json",
                                          "--key-spec", spec, "--key-usage", usage)
                eq(code, 0, "aws kms create-key %s %s (stderr %r)" % (spec, usage, err.strip()))
                md = json.loads(out)["KeyMetadata"]
                eq((md.get("KeySpec"), md.get("KeyUsage")), (spec, usage), "create-key metadata")
                return md["KeyId"]

            def pem_of(key_id, name):
                pub = self.kms.get_public_key(KeyId=key_id)["PublicKey"]
                der = os.path.join(tmp, name + ".der")
                with open(der, "wb") as f:
                    f.write(pub)
                pem = os.path.join(tmp, name + ".pem")
                p = subprocess.run(["openssl", "pkey", "-pubin", "-inform", "DER", "-in", der, "-out", pem],
                                   capture_output=True)
                eq(p.returncode, 0, "openssl reads GetPublicKey of %s: %r" % (name, p.stderr))
                return pem

            def openssl_ok(args, what):
                p = subprocess.run(["openssl"] + args, capture_output=True)
                eq(p.returncode, 0, "openssl %s: %r %r" % (what, p.stdout, p.stderr))

            signing = [
                ("RSA_2048", "RSASSA_PSS_SHA_256", ["dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss",
                                                   "-sigopt", "rsa_pss_saltlen:32"]),
                ("RSA_3072", "RSASSA_PKCS1_V1_5_SHA_384", ["dgst", "-sha384"]),
                ("ECC_NIST_P256", "ECDSA_SHA_256", ["dgst", "-sha256"]),
                ("ECC_NIST_P384", "ECDSA_SHA_384", ["dgst", "-sha384"]),
                ("ECC_NIST_P521", "ECDSA_SHA_512", ["dgst", "-sha512"]),
                ("ECC_SECG_P256K1", "ECDSA_SHA_256", ["dgst", "-sha256"]),
                ("ECC_NIST_EDWARDS25519", "ED25519_SHA_512", None),
                ("ML_DSA_65", "ML_DSA_SHAKE_256", None),
            ]
            for spec, alg, dgst in signing:
                key_id = cli_key(spec, "SIGN_VERIFY")
                sig = self.kms.sign(KeyId=key_id, Message=msg, MessageType="RAW", SigningAlgorithm=alg)["Signature"]
                eq(self.kms.verify(KeyId=key_id, Message=msg, MessageType="RAW", Signature=sig,
                                   SigningAlgorithm=alg).get("SignatureValid"), True, "Verify %s" % spec)
                bad = bytes([sig[0] ^ 1]) + sig[1:]
                expect_error(self.kms.verify, "KMSInvalidSignatureException", KeyId=key_id, Message=msg,
                             MessageType="RAW", Signature=bad, SigningAlgorithm=alg)
                if spec.startswith("ML_DSA"):
                    continue
                pem = pem_of(key_id, spec)
                sig_file = os.path.join(tmp, spec + ".sig")
                with open(sig_file, "wb") as f:
                    f.write(sig)
                if dgst is None:  # Ed25519: the message itself is signed
                    openssl_ok(["pkeyutl", "-verify", "-pubin", "-inkey", pem, "-rawin", "-in", msg_file,
                                "-sigfile", sig_file], "verifies the Ed25519 signature")
                else:
                    openssl_ok(dgst + ["-verify", pem, "-signature", sig_file, msg_file],
                               "verifies the %s signature" % spec)

            # SM2 in a China region (partition aws-cn): the CLI makes the key,
            # openssl verifies the SM2DSA signature (SM3, default ID).
            code, out, err = self.aws("kms", "create-key", "--region", "cn-north-1", "--output", "json",
                                      "--key-spec", "SM2", "--key-usage", "SIGN_VERIFY")
            eq(code, 0, "aws kms create-key SM2 in cn-north-1 (stderr %r)" % err.strip())
            md = json.loads(out)["KeyMetadata"]
            ensure(md.get("Arn", "").startswith("arn:aws-cn:kms:cn-north-1:"), "SM2 key ARN %r" % md.get("Arn"))
            cn = self.client("cn-north-1", ACCESS_KEY)
            sig = cn.sign(KeyId=md["KeyId"], Message=msg, MessageType="RAW", SigningAlgorithm="SM2DSA")["Signature"]
            pub = cn.get_public_key(KeyId=md["KeyId"])["PublicKey"]
            der, pem, sig_file = (os.path.join(tmp, n) for n in ("sm2.der", "sm2.pem", "sm2.sig"))
            with open(der, "wb") as f:
                f.write(pub)
            with open(sig_file, "wb") as f:
                f.write(sig)
            openssl_ok(["pkey", "-pubin", "-inform", "DER", "-in", der, "-out", pem], "reads the SM2 public key")
            openssl_ok(["dgst", "-sm3", "-sigopt", "distid:1234567812345678", "-verify", pem, "-signature", sig_file,
                        msg_file], "verifies the SM2DSA signature")
            code, out, err = self.aws("kms", "create-key", "--region", REGION, "--output", "json",
                                      "--key-spec", "SM2", "--key-usage", "SIGN_VERIFY")
            ensure(code != 0 and "UnsupportedOperationException" in err,
                   "SM2 outside the China regions: exit %d, %r" % (code, err.strip()))

            # RSA encryption: openssl encrypts to GetPublicKey's key, KMS decrypts.
            key_id = cli_key("RSA_2048", "ENCRYPT_DECRYPT")
            pem = pem_of(key_id, "rsa-enc")
            ct_file = os.path.join(tmp, "ct")
            openssl_ok(["pkeyutl", "-encrypt", "-pubin", "-inkey", pem, "-in", msg_file, "-out", ct_file,
                        "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256",
                        "-pkeyopt", "rsa_mgf1_md:sha256"], "encrypts to the RSA key (OAEP SHA-256)")
            with open(ct_file, "rb") as f:
                blob = f.read()
            got = self.kms.decrypt(KeyId=key_id, CiphertextBlob=blob, EncryptionAlgorithm="RSAES_OAEP_SHA_256")
            eq(got.get("Plaintext"), msg, "Decrypt of what openssl encrypted")

            # HMAC keys of every size.
            for spec, alg in [("HMAC_224", "HMAC_SHA_224"), ("HMAC_256", "HMAC_SHA_256"),
                              ("HMAC_384", "HMAC_SHA_384"), ("HMAC_512", "HMAC_SHA_512")]:
                key_id = cli_key(spec, "GENERATE_VERIFY_MAC")
                mac = self.kms.generate_mac(KeyId=key_id, Message=msg, MacAlgorithm=alg)["Mac"]
                eq(self.kms.verify_mac(KeyId=key_id, Message=msg, Mac=mac, MacAlgorithm=alg).get("MacValid"),
                   True, "VerifyMac %s" % spec)
                expect_error(self.kms.verify_mac, "KMSInvalidMacException", KeyId=key_id, Message=msg + b"!",
                             Mac=mac, MacAlgorithm=alg)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def check_cli_create_key(self):
        code, out, err = self.aws("kms", "create-key", "--region", REGION, "--output", "json")
        eq(code, 0, "aws kms create-key exit code (stderr %r)" % err.strip())
        md = json.loads(out)["KeyMetadata"]
        ensure(KEY_ARN_RE.match(md.get("Arn", "")), "aws kms create-key Arn = %r" % md.get("Arn"))
        eq((md.get("KeyState"), md.get("KeyManager"), md.get("KeySpec")),
           ("Enabled", "CUSTOMER", "SYMMETRIC_DEFAULT"), "aws kms create-key (KeyState, KeyManager, KeySpec)")
        # The key is the same one boto3 sees.
        eq(self.describe(md["KeyId"]).get("Arn"), md["Arn"], "boto3 DescribeKey of the CLI's key")
        code, out, err = self.aws("kms", "list-keys", "--region", REGION, "--output", "json")
        eq(code, 0, "aws kms list-keys exit code (stderr %r)" % err.strip())
        ensure(md["KeyId"] in [k["KeyId"] for k in json.loads(out)["Keys"]], "aws kms list-keys lacks the CLI's key")

    def check_cli_encrypt_decrypt(self):
        key_id, arn = self.new_key("smoke cli crypto")
        pt_path = os.path.join(self.workdir, "cli-plaintext.bin")
        with open(pt_path, "wb") as f:
            f.write(SECRET_MARKERS[3])
        code, out, err = self.aws("kms", "encrypt", "--region", REGION, "--output", "json", "--key-id", key_id,
                                  "--plaintext", "fileb://" + pt_path, "--encryption-context", "purpose=cli")
        eq(code, 0, "aws kms encrypt exit code (stderr %r)" % err.strip())
        resp = json.loads(out)
        eq(resp.get("KeyId"), arn, "aws kms encrypt KeyId")
        blob = base64.b64decode(resp["CiphertextBlob"])
        eq(self.kms.decrypt(CiphertextBlob=blob, EncryptionContext={"purpose": "cli"})["Plaintext"],
           SECRET_MARKERS[3], "boto3 Decrypt of the CLI's ciphertext")
        blob2 = self.kms.encrypt(KeyId=key_id, Plaintext=SECRET_MARKERS[3],
                                 EncryptionContext={"purpose": "cli"})["CiphertextBlob"]
        ct_path = os.path.join(self.workdir, "cli-ciphertext.bin")
        with open(ct_path, "wb") as f:
            f.write(blob2)
        code, out, err = self.aws("kms", "decrypt", "--region", REGION, "--output", "json",
                                  "--ciphertext-blob", "fileb://" + ct_path, "--encryption-context", "purpose=cli")
        eq(code, 0, "aws kms decrypt exit code (stderr %r)" % err.strip())
        eq(base64.b64decode(json.loads(out)["Plaintext"]), SECRET_MARKERS[3], "aws kms decrypt Plaintext")

    def check_cli_key_last_usage(self):
        key_id, arn = self.new_key("smoke last usage")
        code, out, err = self.aws("kms", "get-key-last-usage", "--region", REGION, "--output", "json", "--key-id", key_id)
        eq(code, 0, "aws kms get-key-last-usage exit code (stderr %r)" % err.strip())
        ensure("KeyLastUsage" not in json.loads(out), "get-key-last-usage of an unused key: %s" % short(out))
        self.kms.encrypt(KeyId=key_id, Plaintext=b"usage")
        code, out, err = self.aws("kms", "get-key-last-usage", "--region", REGION, "--output", "json", "--key-id", key_id)
        eq(code, 0, "aws kms get-key-last-usage exit code (stderr %r)" % err.strip())
        resp = json.loads(out)
        eq(resp.get("KeyId"), arn, "get-key-last-usage KeyId")
        usage = resp.get("KeyLastUsage") or {}
        eq(usage.get("Operation"), "Encrypt", "get-key-last-usage Operation")
        event_id = usage.get("CloudTrailEventId")
        with open(os.path.join(self.server.data, "audit", "keyfort-audit.jsonl")) as f:
            events = [json.loads(line) for line in f if line.strip()]
        named = [e for e in events if e.get("eventID") == event_id]
        ensure(len(named) == 1 and named[0]["eventName"] == "Encrypt" and named[0]["requestID"] == usage.get("KmsRequestId"),
               "get-key-last-usage names event %r, request %r; the audit trail has %s" % (event_id, usage.get("KmsRequestId"), short(named)))

    def check_cli_error(self):
        code, out, err = self.aws("kms", "describe-key", "--region", REGION, "--output", "json",
                                  "--key-id", "alias/missing")
        ensure(code != 0, "aws kms describe-key --key-id alias/missing exited 0 with %r" % out.strip())
        ensure("NotFoundException" in err, "aws kms describe-key --key-id alias/missing stderr %r lacks NotFoundException"
               % err.strip())
        ensure("alias/missing" in err, "aws kms describe-key stderr %r does not name alias/missing" % err.strip())

    # ---- CloudTrail -----------------------------------------------------

    def check_cloudtrail_lookup_events(self):
        # botocore sends the model's qualified target prefix
        # (com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.*).
        ct = self.client(REGION, ACCESS_KEY, service="cloudtrail")
        resp = ct.lookup_events(MaxResults=5)
        events = resp.get("Events")
        ensure(isinstance(events, list) and len(events) <= 5, "lookup_events Events %s" % short(resp))
        for e in events:
            ensure(e.get("ReadOnly") in ("true", "false") and isinstance(e.get("EventTime"), datetime.datetime)
                   and json.loads(e.get("CloudTrailEvent", "null")) is not None, "lookup_events event %s" % short(e))
        expect_error(lambda: ct.lookup_events(MaxResults=51), "InvalidMaxResultsException", status=400)
        expect_error(lambda: ct.lookup_events(LookupAttributes=[
            {"AttributeKey": "EventName", "AttributeValue": "Encrypt"},
            {"AttributeKey": "Username", "AttributeValue": "root"}]), "InvalidLookupAttributesException", status=400)
        now = utcnow()
        expect_error(lambda: ct.lookup_events(StartTime=now, EndTime=now - datetime.timedelta(hours=1)),
                     "InvalidTimeRangeException", status=400)
        expect_error(lambda: ct.lookup_events(NextToken="forged"), "InvalidNextTokenException", status=400)
        expect_error(lambda: ct.describe_trails(), "UnsupportedOperationException", status=400,
                     contains=["Keyfort serves only LookupEvents"])
        code, out, err = self.aws("cloudtrail", "lookup-events", "--region", REGION, "--output", "json", "--max-items", "3",
                                  "--lookup-attributes", "AttributeKey=EventSource,AttributeValue=kms.amazonaws.com")
        eq(code, 0, "aws cloudtrail lookup-events exit code (stderr %r)" % err.strip())
        got = json.loads(out).get("Events")
        ensure(isinstance(got, list) and got and all(e.get("EventSource") == "kms.amazonaws.com" for e in got),
               "aws cloudtrail lookup-events: %s" % short(out))
        # Who made, tagged and scheduled the deletion of a key: the CLI finds
        # each call by the key's ARN.
        kms = self.client(REGION, ACCESS_KEY, service="kms")
        arn = kms.create_key(Description="smoke lookup")["KeyMetadata"]["Arn"]
        kms.tag_resource(KeyId=arn, Tags=[{"TagKey": "who", "TagValue": "smoke"}])
        kms.schedule_key_deletion(KeyId=arn, PendingWindowInDays=7)
        code, out, err = self.aws("cloudtrail", "lookup-events", "--region", REGION, "--output", "json",
                                  "--lookup-attributes", "AttributeKey=ResourceName,AttributeValue=" + arn)
        eq(code, 0, "aws cloudtrail lookup-events by ResourceName exit code (stderr %r)" % err.strip())
        names = sorted(e.get("EventName") for e in json.loads(out).get("Events", []))
        eq(names, ["CreateKey", "ScheduleKeyDeletion", "TagResource"], "events of the key found by its ARN")
        for e in json.loads(out).get("Events", []):
            ev = json.loads(e["CloudTrailEvent"])
            eq(ev.get("eventID"), e.get("EventId"), "CloudTrailEvent eventID")

    # ---- Secrets Manager ------------------------------------------------

    def check_sm_create_get_describe(self):
        sm = self.sm
        resp = sm.create_secret(Name="smoke/app/db", Description="smoke database password",
                                SecretString=SECRET_MARKERS[4].decode(),
                                Tags=[{"Key": "team", "Value": "smoke"}])
        ensure(secret_arn_re("smoke/app/db").match(resp.get("ARN", "")),
               "CreateSecret ARN = %r, want arn:aws:secretsmanager:us-east-1:123456789012:secret:smoke/app/db-XXXXXX" % resp.get("ARN"))
        eq(resp.get("Name"), "smoke/app/db", "CreateSecret Name")
        ensure(re.match("^" + UUID_RE + "$", resp.get("VersionId", "")), "CreateSecret VersionId = %r, want a uuid" % resp.get("VersionId"))
        arn, vid = resp["ARN"], resp["VersionId"]
        for secret_id in ("smoke/app/db", arn, arn[:-7]):
            got = sm.get_secret_value(SecretId=secret_id)
            eq((got.get("ARN"), got.get("Name"), got.get("VersionId"), got.get("SecretString"), got.get("VersionStages")),
               (arn, "smoke/app/db", vid, SECRET_MARKERS[4].decode(), ["AWSCURRENT"]),
               "GetSecretValue(%s) (ARN, Name, VersionId, SecretString, VersionStages)" % secret_id)
            ensure("SecretBinary" not in got, "GetSecretValue of a string secret has SecretBinary")
            ensure(isinstance(got.get("CreatedDate"), datetime.datetime), "GetSecretValue CreatedDate = %r" % got.get("CreatedDate"))
        d = sm.describe_secret(SecretId=arn)
        eq((d.get("Name"), d.get("Description"), d.get("Tags"), d.get("VersionIdsToStages")),
           ("smoke/app/db", "smoke database password", [{"Key": "team", "Value": "smoke"}], {vid: ["AWSCURRENT"]}),
           "DescribeSecret (Name, Description, Tags, VersionIdsToStages)")
        for absent in ("KmsKeyId", "DeletedDate", "RotationEnabled", "SecretString"):
            ensure(absent not in d, "DescribeSecret has %s: %r" % (absent, d.get(absent)))
        ensure(abs((d["CreatedDate"] - utcnow()).total_seconds()) < 600, "DescribeSecret CreatedDate %r is not now" % d["CreatedDate"])

    def check_sm_binary(self):
        resp = self.sm.create_secret(Name="smoke/binary", SecretBinary=SECRET_MARKERS[6])
        got = self.sm.get_secret_value(SecretId="smoke/binary")
        eq(got.get("SecretBinary"), SECRET_MARKERS[6], "GetSecretValue SecretBinary")
        ensure("SecretString" not in got, "GetSecretValue of a binary secret has SecretString")
        eq(got.get("VersionId"), resp["VersionId"], "GetSecretValue VersionId of the binary secret")

    def check_sm_versions(self):
        sm = self.sm
        v1 = sm.create_secret(Name="smoke/versions", SecretString="first")["VersionId"]
        put = sm.put_secret_value(SecretId="smoke/versions", SecretString=SECRET_MARKERS[5].decode())
        v2 = put["VersionId"]
        eq(put.get("VersionStages"), ["AWSCURRENT"], "PutSecretValue VersionStages")
        eq(sm.get_secret_value(SecretId="smoke/versions")["SecretString"], SECRET_MARKERS[5].decode(), "GetSecretValue after PutSecretValue")
        eq(sm.get_secret_value(SecretId="smoke/versions", VersionStage="AWSPREVIOUS")["SecretString"], "first",
           "GetSecretValue(VersionStage=AWSPREVIOUS)")
        eq(sm.get_secret_value(SecretId="smoke/versions", VersionId=v1)["VersionStages"], ["AWSPREVIOUS"],
           "GetSecretValue(VersionId=v1) VersionStages")
        vs = sm.list_secret_version_ids(SecretId="smoke/versions")["Versions"]
        eq([(v["VersionId"], v["VersionStages"]) for v in vs], [(v2, ["AWSCURRENT"]), (v1, ["AWSPREVIOUS"])],
           "ListSecretVersionIds (newest first)")
        # Idempotent retry with the same ClientRequestToken and value.
        token = str(uuid.uuid4())
        a = sm.put_secret_value(SecretId="smoke/versions", SecretString="third", ClientRequestToken=token)
        b = sm.put_secret_value(SecretId="smoke/versions", SecretString="third", ClientRequestToken=token)
        eq((a["VersionId"], b["VersionId"]), (token, token), "PutSecretValue retry VersionId")
        expect_error(sm.put_secret_value, "ResourceExistsException", SecretId="smoke/versions",
                     SecretString="different", ClientRequestToken=token)
        sm.update_secret_version_stage(SecretId="smoke/versions", VersionStage="AWSCURRENT",
                                       MoveToVersionId=v1, RemoveFromVersionId=token)
        eq(sm.get_secret_value(SecretId="smoke/versions")["SecretString"], "first",
           "GetSecretValue after moving AWSCURRENT back to the first version")
        eq(sm.describe_secret(SecretId="smoke/versions")["VersionIdsToStages"],
           {v1: ["AWSCURRENT"], token: ["AWSPREVIOUS"]}, "VersionIdsToStages after UpdateSecretVersionStage")
        sm.update_secret_version_stage(SecretId="smoke/versions", VersionStage="MYLABEL", MoveToVersionId=v2)
        eq(sm.get_secret_value(SecretId="smoke/versions", VersionStage="MYLABEL")["VersionId"], v2,
           "GetSecretValue(VersionStage=MYLABEL)")
        dep = sm.list_secret_version_ids(SecretId="smoke/versions", IncludeDeprecated=True)["Versions"]
        eq(len(dep), 3, "ListSecretVersionIds(IncludeDeprecated) count")
        expect_error(sm.update_secret_version_stage, "InvalidParameterException", SecretId="smoke/versions",
                     VersionStage="AWSCURRENT", RemoveFromVersionId=v1)

    def check_sm_update_secret(self):
        sm = self.sm
        sm.create_secret(Name="smoke/update", SecretString="before")
        out = sm.update_secret(SecretId="smoke/update", Description="changed", SecretString="after")
        ensure(re.match("^" + UUID_RE + "$", out.get("VersionId", "")), "UpdateSecret with a value: VersionId = %r" % out.get("VersionId"))
        eq(sm.get_secret_value(SecretId="smoke/update")["SecretString"], "after", "GetSecretValue after UpdateSecret")
        eq(sm.describe_secret(SecretId="smoke/update").get("Description"), "changed", "Description after UpdateSecret")

    def check_sm_delete_restore(self):
        sm = self.sm
        arn = sm.create_secret(Name="smoke/delete", SecretString="v")["ARN"]
        out = sm.delete_secret(SecretId="smoke/delete", RecoveryWindowInDays=7)
        eq((out.get("ARN"), out.get("Name")), (arn, "smoke/delete"), "DeleteSecret (ARN, Name)")
        ensure(days_from_now(out["DeletionDate"], 7), "DeleteSecret DeletionDate %r is not 7 days from now" % out["DeletionDate"])
        ensure("DeletedDate" in sm.describe_secret(SecretId="smoke/delete"), "DescribeSecret of a deleted secret lacks DeletedDate")
        expect_error(sm.get_secret_value, "InvalidRequestException", contains=["marked for deletion"], SecretId="smoke/delete")
        expect_error(sm.put_secret_value, "InvalidRequestException", contains=["marked for deletion"],
                     SecretId="smoke/delete", SecretString="x")
        expect_error(sm.create_secret, "InvalidRequestException", contains=["scheduled for deletion"],
                     Name="smoke/delete", SecretString="x")
        names = [e["Name"] for e in sm.list_secrets(Filters=[{"Key": "name", "Values": ["smoke/delete"]}])["SecretList"]]
        eq(names, [], "ListSecrets without IncludePlannedDeletion")
        names = [e["Name"] for e in sm.list_secrets(IncludePlannedDeletion=True,
                                                    Filters=[{"Key": "name", "Values": ["smoke/delete"]}])["SecretList"]]
        eq(names, ["smoke/delete"], "ListSecrets(IncludePlannedDeletion=True)")
        eq(sm.restore_secret(SecretId="smoke/delete").get("ARN"), arn, "RestoreSecret ARN")
        eq(sm.get_secret_value(SecretId="smoke/delete")["SecretString"], "v", "GetSecretValue after RestoreSecret")
        sm.delete_secret(SecretId="smoke/delete", ForceDeleteWithoutRecovery=True)
        expect_error(sm.get_secret_value, "ResourceNotFoundException", message=SECRET_NOT_FOUND, SecretId="smoke/delete")

    def check_sm_tags(self):
        sm = self.sm
        sm.create_secret(Name="smoke/tags", SecretString="v")
        sm.tag_resource(SecretId="smoke/tags", Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
        sm.tag_resource(SecretId="smoke/tags", Tags=[{"Key": "a", "Value": "3"}])
        got = {t["Key"]: t["Value"] for t in sm.describe_secret(SecretId="smoke/tags")["Tags"]}
        eq(got, {"a": "3", "b": "2"}, "tags after TagResource")
        sm.untag_resource(SecretId="smoke/tags", TagKeys=["a", "absent"])
        eq(sm.describe_secret(SecretId="smoke/tags")["Tags"], [{"Key": "b", "Value": "2"}], "tags after UntagResource")
        expect_error(sm.tag_resource, "ResourceNotFoundException", message=SECRET_NOT_FOUND,
                     SecretId="smoke/no-such-secret", Tags=[{"Key": "a", "Value": "1"}])

    def check_sm_list_secrets(self):
        sm = self.sm
        for i in range(5):
            sm.create_secret(Name="smoke/list/s%d" % i, SecretString="v", Description="listing number %d" % i,
                             Tags=[{"Key": "parity", "Value": "even" if i % 2 == 0 else "odd"}])
        only_list = [{"Key": "name", "Values": ["smoke/list/"]}]
        oldest = [e["Name"] for e in sm.list_secrets(Filters=only_list)["SecretList"]]
        eq(oldest, ["smoke/list/s%d" % i for i in range(5)], "ListSecrets(name=smoke/list/) default order (created, oldest first)")
        newest = [e["Name"] for e in sm.list_secrets(Filters=only_list, SortOrder="desc")["SecretList"]]
        eq(newest, ["smoke/list/s%d" % i for i in (4, 3, 2, 1, 0)], "ListSecrets(SortOrder=desc): newest first")
        by_name = [e["Name"] for e in sm.list_secrets(Filters=only_list, SortBy="name", SortOrder="asc")["SecretList"]]
        eq(by_name, ["smoke/list/s%d" % i for i in range(5)], "ListSecrets(SortBy=name, asc)")
        even = [e["Name"] for e in sm.list_secrets(Filters=only_list + [{"Key": "tag-value", "Values": ["even"]}],
                                                   SortBy="name", SortOrder="asc")["SecretList"]]
        eq(even, ["smoke/list/s0", "smoke/list/s2", "smoke/list/s4"], "ListSecrets(name, tag-value=even)")
        not_even = [e["Name"] for e in sm.list_secrets(Filters=only_list + [{"Key": "tag-value", "Values": ["!even"]}],
                                                       SortBy="name", SortOrder="asc")["SecretList"]]
        eq(not_even, ["smoke/list/s1", "smoke/list/s3"], "ListSecrets(tag-value=!even)")
        desc = [e["Name"] for e in sm.list_secrets(Filters=[{"Key": "description", "Values": ["number 3"]}])["SecretList"]]
        eq(desc, ["smoke/list/s3"], "ListSecrets(description=number 3)")
        seen, token = [], None
        for _ in range(10):
            kw = {"Filters": only_list, "MaxResults": 2, "SortBy": "name"}
            if token:
                kw["NextToken"] = token
            page = sm.list_secrets(**kw)
            ensure(len(page["SecretList"]) <= 2, "ListSecrets(MaxResults=2) returned %d" % len(page["SecretList"]))
            seen += [e["Name"] for e in page["SecretList"]]
            token = page.get("NextToken")
            if not token:
                break
        eq(seen, ["smoke/list/s%d" % i for i in range(5)], "ListSecrets pages of 2 (SortBy=name, default ascending)")
        p = sm.get_paginator("list_secrets")
        eq(sum(len(pg["SecretList"]) for pg in p.paginate(Filters=only_list, PaginationConfig={"PageSize": 3})), 5,
           "ListSecrets through the boto3 paginator")
        expect_error(sm.list_secrets, "InvalidNextTokenException", NextToken="bm90LWEtdG9rZW4")

    def check_sm_random_password(self):
        sm = self.sm
        pw = sm.get_random_password()["RandomPassword"]
        eq(len(pw), 32, "GetRandomPassword default length")
        pw = sm.get_random_password(PasswordLength=20, ExcludePunctuation=True)["RandomPassword"]
        ensure(len(pw) == 20 and pw.isalnum(), "GetRandomPassword(20, ExcludePunctuation) = %r" % pw)
        pw = sm.get_random_password(PasswordLength=12, ExcludeNumbers=True, ExcludeUppercase=True,
                                    ExcludePunctuation=True, ExcludeCharacters="abc")["RandomPassword"]
        ensure(len(pw) == 12 and re.match("^[d-z]+$", pw), "GetRandomPassword(lowercase only, no abc) = %r" % pw)
        pw = sm.get_random_password(PasswordLength=4, RequireEachIncludedType=True, ExcludePunctuation=True)["RandomPassword"]
        ensure(any(c.isdigit() for c in pw) and any(c.islower() for c in pw) and any(c.isupper() for c in pw),
               "GetRandomPassword(RequireEachIncludedType) = %r lacks a type" % pw)
        expect_error(sm.get_random_password, "InvalidParameterException", PasswordLength=5,
                     ExcludeNumbers=True, ExcludeUppercase=True, ExcludeLowercase=True, ExcludePunctuation=True)

    def check_sm_errors(self):
        sm, raw = self.sm, self.sm_unvalidated
        expect_error(sm.get_secret_value, "ResourceNotFoundException", status=400, message=SECRET_NOT_FOUND, SecretId="smoke/missing")
        expect_error(sm.describe_secret, "ResourceNotFoundException", message=SECRET_NOT_FOUND,
                     SecretId="arn:aws:secretsmanager:us-east-1:123456789012:secret:smoke/missing-AbCdEf")
        sm.create_secret(Name="smoke/errors", SecretString="v")
        expect_error(sm.create_secret, "ResourceExistsException", contains=["smoke/errors", "already exists"],
                     Name="smoke/errors", SecretString="w")
        # AWS answers a name with characters outside [A-Za-z0-9/_+=.@!-] with a ValidationException.
        expect_error(sm.create_secret, "ValidationException",
                     message="Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!",
                     Name="bad name!", SecretString="v")
        expect_error(sm.delete_secret, "InvalidParameterException", SecretId="smoke/errors",
                     ForceDeleteWithoutRecovery=True, RecoveryWindowInDays=7)
        expect_error(sm.get_secret_value, "ResourceNotFoundException", SecretId="smoke/errors", VersionStage="NOPE")
        expect_error(raw.list_secrets, "ValidationException", contains=["maxResults"], MaxResults=0)
        expect_error(raw.get_random_password, "ValidationException", contains=["passwordLength"], PasswordLength=5000)
        expect_error(raw.create_secret, "ValidationException", contains=["512"], Name="n" * 600, SecretString="v")
        # The secret of another region or account is not visible.
        other = boto3.client("secretsmanager", endpoint_url=self.server.endpoint, region_name="eu-west-1",
                             aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                             config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))
        expect_error(other.get_secret_value, "ResourceNotFoundException", SecretId="smoke/errors")

    def check_sm_cli(self):
        code, out, err = self.aws("secretsmanager", "create-secret", "--region", REGION, "--output", "json",
                                  "--name", "smoke/cli", "--secret-string", SECRET_MARKERS[7].decode())
        eq(code, 0, "aws secretsmanager create-secret exit code (stderr %r)" % err.strip())
        created = json.loads(out)
        ensure(secret_arn_re("smoke/cli").match(created.get("ARN", "")), "aws secretsmanager create-secret ARN = %r" % created.get("ARN"))
        code, out, err = self.aws("secretsmanager", "get-secret-value", "--region", REGION, "--output", "json",
                                  "--secret-id", "smoke/cli")
        eq(code, 0, "aws secretsmanager get-secret-value exit code (stderr %r)" % err.strip())
        got = json.loads(out)
        eq((got.get("SecretString"), got.get("VersionId"), got.get("VersionStages")),
           (SECRET_MARKERS[7].decode(), created["VersionId"], ["AWSCURRENT"]), "aws secretsmanager get-secret-value")
        eq(self.sm.get_secret_value(SecretId=created["ARN"])["SecretString"], SECRET_MARKERS[7].decode(),
           "boto3 GetSecretValue of the CLI's secret")

    def check_sm_cli_error(self):
        code, out, err = self.aws("secretsmanager", "get-secret-value", "--region", REGION, "--output", "json",
                                  "--secret-id", "smoke/cli-missing")
        ensure(code != 0, "aws secretsmanager get-secret-value --secret-id smoke/cli-missing exited 0 with %r" % out.strip())
        ensure("ResourceNotFoundException" in err, "aws secretsmanager get-secret-value stderr %r lacks ResourceNotFoundException" % err.strip())
        ensure(SECRET_NOT_FOUND in err, "aws secretsmanager get-secret-value stderr %r lacks %r" % (err.strip(), SECRET_NOT_FOUND))

    # ---- STS --------------------------------------------------------------

    def check_sts_get_caller_identity(self):
        want = {"Account": ACCOUNT, "Arn": "arn:aws:iam::%s:root" % ACCOUNT, "UserId": ACCOUNT}
        out = self.client(REGION, ACCESS_KEY, service="sts").get_caller_identity()
        eq({k: out.get(k) for k in want}, want, "boto3 sts get_caller_identity")
        code, stdout, err = self.aws("sts", "get-caller-identity", "--region", REGION, "--output", "json")
        ensure(code == 0, "aws sts get-caller-identity exited %d: %s" % (code, err.strip()))
        eq(json.loads(stdout), want, "aws sts get-caller-identity")
        code, stdout, err = self.aws("sts", "assume-role", "--region", REGION, "--role-arn",
                                     "arn:aws:iam::%s:role/r" % ACCOUNT, "--role-session-name", "smoke")
        ensure(code != 0, "aws sts assume-role exited 0 with %r" % stdout.strip())
        ensure("InvalidAction" in err and "serves only the STS action GetCallerIdentity" in err,
               "aws sts assume-role stderr %r lacks InvalidAction and Keyfort's message" % err.strip())

    # ---- Secrets Manager: resource policies ------------------------------

    POLICY_ROLE = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/SmokeReader"},
        "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}
    POLICY_PUBLIC = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}

    def stored_policy(self, secret_id):
        """The secret's resource policy as a dict, or None when it has none."""
        got = self.sm.get_resource_policy(SecretId=secret_id)
        return json.loads(got["ResourcePolicy"]) if "ResourcePolicy" in got else None

    def check_sm_resource_policy(self):
        sm = self.sm
        name = "smoke/policy"
        arn = sm.create_secret(Name=name, SecretString="v")["ARN"]
        got = sm.get_resource_policy(SecretId=name)
        eq((got.get("ARN"), got.get("Name")), (arn, name), "GetResourcePolicy(no policy) (ARN, Name)")
        ensure("ResourcePolicy" not in got, "GetResourcePolicy of a secret without a policy has ResourcePolicy %r"
               % got.get("ResourcePolicy"))
        put = sm.put_resource_policy(SecretId=name, ResourcePolicy=json.dumps(self.POLICY_ROLE), BlockPublicPolicy=True)
        eq((put.get("ARN"), put.get("Name")), (arn, name), "PutResourcePolicy (ARN, Name)")
        eq(self.stored_policy(arn), self.POLICY_ROLE, "GetResourcePolicy after PutResourcePolicy")
        expect_error(sm.put_resource_policy, "MalformedPolicyDocumentException",
                     contains=["This resource policy contains a syntax error"],
                     SecretId=name, ResourcePolicy='{"Version":"2012-10-17",')
        eq(self.stored_policy(name), self.POLICY_ROLE, "GetResourcePolicy after a refused malformed PutResourcePolicy")
        expect_error(sm.put_resource_policy, "PublicPolicyException",
                     message="You can't perform this operation because the resource policy you provided is public.",
                     SecretId=name, ResourcePolicy=json.dumps(self.POLICY_PUBLIC), BlockPublicPolicy=True)
        eq(self.stored_policy(name), self.POLICY_ROLE, "GetResourcePolicy after a refused public PutResourcePolicy")
        # Public policies are not blocked by default.
        sm.put_resource_policy(SecretId=name, ResourcePolicy=json.dumps(self.POLICY_PUBLIC))
        eq(self.stored_policy(name), self.POLICY_PUBLIC, "GetResourcePolicy after PutResourcePolicy(public, no block)")
        dele = sm.delete_resource_policy(SecretId=name)
        eq((dele.get("ARN"), dele.get("Name")), (arn, name), "DeleteResourcePolicy (ARN, Name)")
        eq(self.stored_policy(name), None, "GetResourcePolicy after DeleteResourcePolicy")
        expect_error(sm.get_resource_policy, "ResourceNotFoundException", message=SECRET_NOT_FOUND,
                     SecretId="smoke/policy-missing")

    def check_sm_validate_resource_policy(self):
        sm = self.sm
        sm.create_secret(Name="smoke/policy-validate", SecretString="v")
        for secret_id in (None, "smoke/policy-validate"):
            kw = {"ResourcePolicy": json.dumps(self.POLICY_ROLE)}
            if secret_id:
                kw["SecretId"] = secret_id
            out = sm.validate_resource_policy(**kw)
            eq((out.get("PolicyValidationPassed"), out.get("ValidationErrors", [])), (True, []),
               "ValidateResourcePolicy(valid, SecretId=%s) (PolicyValidationPassed, ValidationErrors)" % secret_id)
        out = sm.validate_resource_policy(ResourcePolicy=json.dumps(self.POLICY_PUBLIC))
        errs = out.get("ValidationErrors", [])
        eq(out.get("PolicyValidationPassed"), False, "ValidateResourcePolicy(public) PolicyValidationPassed")
        eq([e.get("CheckName") for e in errs], ["BROAD_ACCESS"], "ValidateResourcePolicy(public) ValidationErrors CheckName")
        ensure(all(e.get("ErrorMessage") for e in errs), "ValidateResourcePolicy(public) entry without ErrorMessage: %s" % short(errs))
        out = sm.validate_resource_policy(ResourcePolicy='{"Version":"2012-10-17"}')
        eq((out.get("PolicyValidationPassed"), [e.get("CheckName") for e in out.get("ValidationErrors", [])]),
           (False, ["MISSING_STATEMENT"]), "ValidateResourcePolicy(no Statement)")
        expect_error(sm.validate_resource_policy, "MalformedPolicyDocumentException", ResourcePolicy='{"Statement":[')
        eq(self.stored_policy("smoke/policy-validate"), None, "GetResourcePolicy after ValidateResourcePolicy (attaches nothing)")

    # ---- Secrets Manager: BatchGetSecretValue ----------------------------

    def check_sm_batch_get(self):
        sm = self.sm
        a = sm.create_secret(Name="smoke/batch/a", SecretString=SECRET_MARKERS[9].decode())
        b = sm.create_secret(Name="smoke/batch/b", SecretString=SECRET_MARKERS[10].decode())
        out = sm.batch_get_secret_value(SecretIdList=["smoke/batch/a", b["ARN"], "smoke/batch/missing"])
        vals = out.get("SecretValues", [])
        eq([(v.get("ARN"), v.get("Name"), v.get("VersionId"), v.get("SecretString"), v.get("VersionStages")) for v in vals],
           [(a["ARN"], "smoke/batch/a", a["VersionId"], SECRET_MARKERS[9].decode(), ["AWSCURRENT"]),
            (b["ARN"], "smoke/batch/b", b["VersionId"], SECRET_MARKERS[10].decode(), ["AWSCURRENT"])],
           "BatchGetSecretValue(SecretIdList) SecretValues (ARN, Name, VersionId, SecretString, VersionStages)")
        ensure(all(isinstance(v.get("CreatedDate"), datetime.datetime) for v in vals),
               "BatchGetSecretValue SecretValues without CreatedDate")
        eq(out.get("Errors"), [{"SecretId": "smoke/batch/missing", "ErrorCode": "ResourceNotFoundException",
                                "Message": SECRET_NOT_FOUND}], "BatchGetSecretValue(SecretIdList) Errors")
        ensure("NextToken" not in out, "BatchGetSecretValue(SecretIdList) has NextToken %r" % out.get("NextToken"))
        filters = [{"Key": "name", "Values": ["smoke/batch/"]}]
        out = sm.batch_get_secret_value(Filters=filters)
        got = sorted((v.get("Name"), v.get("SecretString")) for v in out.get("SecretValues", []))
        eq(got, [("smoke/batch/a", SECRET_MARKERS[9].decode()), ("smoke/batch/b", SECRET_MARKERS[10].decode())],
           "BatchGetSecretValue(Filters name=smoke/batch/) (Name, SecretString)")
        eq(out.get("Errors", []), [], "BatchGetSecretValue(Filters) Errors")
        msg = "Either 'SecretIdList' or 'Filters' must be provided, but not both."
        expect_error(sm.batch_get_secret_value, "InvalidParameterException", message=msg,
                     SecretIdList=["smoke/batch/a"], Filters=filters)
        expect_error(sm.batch_get_secret_value, "InvalidParameterException", message=msg)

    # ---- Secrets Manager: replication -------------------------------------

    def check_sm_replication(self):
        sm, eu, usw2 = self.sm, self.sm_eu, self.sm_usw2
        name = "smoke/repl/db"
        v1, v2 = SECRET_MARKERS[11].decode(), SECRET_MARKERS[12].decode()
        out = sm.create_secret(Name=name, SecretString=v1, AddReplicaRegions=[{"Region": "eu-west-1"}])
        arn = out["ARN"]
        rep_arn = arn.replace(":us-east-1:", ":eu-west-1:", 1)
        rs = out.get("ReplicationStatus", [])
        eq([(r.get("Region"), r.get("Status"), r.get("KmsKeyId")) for r in rs],
           [("eu-west-1", "InSync", "alias/aws/secretsmanager")], "CreateSecret(AddReplicaRegions) ReplicationStatus")
        got = eu.get_secret_value(SecretId=name)
        eq((got.get("ARN"), got.get("Name"), got.get("SecretString"), got.get("VersionId"), got.get("VersionStages")),
           (rep_arn, name, v1, out["VersionId"], ["AWSCURRENT"]),
           "eu-west-1 GetSecretValue of the replica (ARN, Name, SecretString, VersionId, VersionStages)")
        eq(eu.get_secret_value(SecretId=rep_arn)["SecretString"], v1, "eu-west-1 GetSecretValue(replica ARN)")
        expect_error(eu.get_secret_value, "ResourceNotFoundException", SecretId=arn)
        put = sm.put_secret_value(SecretId=arn, SecretString=v2)
        got = eu.get_secret_value(SecretId=rep_arn)
        eq((got.get("SecretString"), got.get("VersionId")), (v2, put["VersionId"]),
           "replica (SecretString, VersionId) after PutSecretValue on the primary")
        pd = sm.describe_secret(SecretId=arn)
        eq(pd.get("PrimaryRegion"), "us-east-1", "primary DescribeSecret PrimaryRegion")
        eq([(r.get("Region"), r.get("Status")) for r in pd.get("ReplicationStatus", [])], [("eu-west-1", "InSync")],
           "primary DescribeSecret ReplicationStatus")
        rd = eu.describe_secret(SecretId=rep_arn)
        eq((rd.get("ARN"), rd.get("PrimaryRegion")), (rep_arn, "us-east-1"), "replica DescribeSecret (ARN, PrimaryRegion)")
        eq(rd.get("VersionIdsToStages", {}).get(put["VersionId"]), ["AWSCURRENT"], "replica DescribeSecret stages of the new version")
        replica_only = "Operation not permitted on a replica secret. Call must be made in primary secret's region."
        expect_error(eu.put_secret_value, "InvalidParameterException", message=replica_only,
                     SecretId=rep_arn, SecretString="written-in-the-replica")
        eq(sm.get_secret_value(SecretId=arn)["SecretString"], v2, "primary value after a refused PutSecretValue on the replica")
        expect_error(sm.delete_secret, "InvalidParameterException",
                     message="You can't delete secret %s that still has replica regions [eu-west-1]." % arn,
                     SecretId=arn, ForceDeleteWithoutRecovery=True)

        # ReplicateSecretToRegions, then RemoveRegionsFromReplication.
        rep = sm.replicate_secret_to_regions(SecretId=arn, AddReplicaRegions=[{"Region": "us-west-2"}])
        eq(rep.get("ARN"), arn, "ReplicateSecretToRegions ARN")
        eq(sorted((r.get("Region"), r.get("Status")) for r in rep.get("ReplicationStatus", [])),
           [("eu-west-1", "InSync"), ("us-west-2", "InSync")], "ReplicateSecretToRegions ReplicationStatus")
        eq(usw2.get_secret_value(SecretId=name)["SecretString"], v2, "us-west-2 GetSecretValue after ReplicateSecretToRegions")
        expect_error(sm.replicate_secret_to_regions, "InvalidParameterException", message="Invalid replica region.",
                     SecretId=arn, AddReplicaRegions=[{"Region": "us-east-1"}])
        rm = sm.remove_regions_from_replication(SecretId=arn, RemoveReplicaRegions=["us-west-2"])
        eq(rm.get("ARN"), arn, "RemoveRegionsFromReplication ARN")
        eq([(r.get("Region"), r.get("Status")) for r in rm.get("ReplicationStatus", [])], [("eu-west-1", "InSync")],
           "RemoveRegionsFromReplication ReplicationStatus")
        expect_error(usw2.get_secret_value, "ResourceNotFoundException", message=SECRET_NOT_FOUND, SecretId=name)

        # StopReplicationToReplica, called in the replica's region, promotes it.
        st = eu.stop_replication_to_replica(SecretId=rep_arn)
        eq(st.get("ARN"), rep_arn, "StopReplicationToReplica ARN")
        pd = sm.describe_secret(SecretId=arn)
        ensure("PrimaryRegion" not in pd and not pd.get("ReplicationStatus"),
               "primary DescribeSecret after StopReplicationToReplica: PrimaryRegion %r ReplicationStatus %r, want neither"
               % (pd.get("PrimaryRegion"), pd.get("ReplicationStatus")))
        rd = eu.describe_secret(SecretId=rep_arn)
        ensure(rd.get("PrimaryRegion") in (None, "eu-west-1") and not rd.get("ReplicationStatus"),
               "promoted DescribeSecret: PrimaryRegion %r ReplicationStatus %r, want a standalone secret"
               % (rd.get("PrimaryRegion"), rd.get("ReplicationStatus")))
        promoted = SECRET_MARKERS[13].decode()
        eu.put_secret_value(SecretId=rep_arn, SecretString=promoted)
        eq(eu.get_secret_value(SecretId=rep_arn)["SecretString"], promoted, "promoted secret value after PutSecretValue in eu-west-1")
        eq(sm.get_secret_value(SecretId=arn)["SecretString"], v2, "primary value after a write to the promoted secret")
        sm.put_secret_value(SecretId=arn, SecretString="primary-after-stop")
        eq(eu.get_secret_value(SecretId=rep_arn)["SecretString"], promoted,
           "promoted secret value after PutSecretValue on the former primary (no longer replicated)")

    # ---- Secrets Manager: rotation through a webhook ----------------------

    def rotation_events(self, what):
        """The webhook's events since the last call; fails on a failed step."""
        events, failures = self.hook.take()
        ensure(not failures, "%s: the rotation webhook failed: %s" % (what, "; ".join(failures)))
        return events

    def rotate(self, **kwargs):
        """RotateSecret that must succeed; a failure names the webhook's failed steps."""
        try:
            return self.sm.rotate_secret(**kwargs)
        except ClientError as e:
            _, failures = self.hook.take()
            err = e.response.get("Error", {})
            raise CheckFailed("rotate_secret(%s): %s: %s; webhook failures: %s"
                              % (short(kwargs, 200), err.get("Code"), err.get("Message"), "; ".join(failures) or "none"))

    def check_sm_rotation(self):
        sm = self.sm
        ensure(self.hook is not None, "no rotation webhook")
        self.hook.take()
        name = "smoke/rotate"
        initial = SECRET_MARKERS[14].decode()
        created = sm.create_secret(Name=name, SecretString=initial)
        arn = created["ARN"]
        out = self.rotate(SecretId=name, RotationLambdaARN=ROTATION_LAMBDA, RotationRules={"AutomaticallyAfterDays": 30})
        events = self.rotation_events("RotateSecret")
        vid = out.get("VersionId", "")
        eq((out.get("ARN"), out.get("Name")), (arn, name), "RotateSecret (ARN, Name)")
        ensure(re.match("^" + UUID_RE + "$", vid), "RotateSecret VersionId = %r, want a uuid" % vid)
        eq([e.get("Step") for e in events], ROTATION_STEPS, "rotation webhook steps")
        eq({(e.get("SecretId"), e.get("ClientRequestToken")) for e in events}, {(arn, vid)},
           "rotation events (SecretId, ClientRequestToken)")
        tokens = {e.get("RotationToken") for e in events}
        ensure(len(tokens) == 1 and all(tokens), "rotation events RotationToken = %r, want one non-empty token" % tokens)
        cur = sm.get_secret_value(SecretId=name)
        ensure(cur.get("SecretString", "").startswith(ROTATED_PREFIX) and len(cur["SecretString"]) == len(ROTATED_PREFIX) + 32,
               "AWSCURRENT value after rotation does not look like the webhook's (prefix %r + 32 characters)" % ROTATED_PREFIX)
        eq((cur.get("VersionId"), "AWSCURRENT" in cur.get("VersionStages", [])), (vid, True),
           "GetSecretValue after rotation (VersionId, AWSCURRENT)")
        prev = sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
        eq((prev.get("SecretString") == initial, prev.get("VersionId")), (True, created["VersionId"]),
           "GetSecretValue(AWSPREVIOUS) after rotation (is the initial value, VersionId)")
        d = sm.describe_secret(SecretId=name)
        eq((d.get("RotationEnabled"), d.get("RotationLambdaARN"), (d.get("RotationRules") or {}).get("AutomaticallyAfterDays")),
           (True, ROTATION_LAMBDA, 30), "DescribeSecret after RotateSecret (RotationEnabled, RotationLambdaARN, AutomaticallyAfterDays)")
        lrd, nrd = d.get("LastRotatedDate"), d.get("NextRotationDate")
        ensure(isinstance(lrd, datetime.datetime) and abs((lrd - utcnow()).total_seconds()) < 300,
               "DescribeSecret LastRotatedDate = %r, want about now" % lrd)
        ensure(isinstance(nrd, datetime.datetime) and days_from_now(nrd, 30),
               "DescribeSecret NextRotationDate = %r, want about now + 30 days" % nrd)
        stages = d.get("VersionIdsToStages", {})
        ensure("AWSCURRENT" in stages.get(vid, []) and "AWSPREVIOUS" in stages.get(created["VersionId"], []),
               "DescribeSecret VersionIdsToStages after rotation = %r" % stages)
        # AWS: after a successful rotation AWSPENDING is on the AWSCURRENT
        # version or on none (elsewhere, the next RotateSecret would fail).
        pending = [v for v, st in stages.items() if "AWSPENDING" in st]
        ensure(pending in ([], [vid]), "AWSPENDING after rotation is on %r, want none or the new version %s" % (pending, vid))

        # A second rotation reuses the stored function.
        out2 = self.rotate(SecretId=arn)
        self.rotation_events("second RotateSecret")
        vid2 = out2.get("VersionId")
        ensure(vid2 and vid2 != vid, "second RotateSecret VersionId = %r (first %r)" % (vid2, vid))
        eq(sm.get_secret_value(SecretId=name)["VersionId"], vid2, "AWSCURRENT VersionId after the second rotation")
        eq(sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["VersionId"], vid,
           "AWSPREVIOUS VersionId after the second rotation")

        expect_error(sm.rotate_secret, "AccessDeniedException", contains=["cannot invoke the specified Lambda function"],
                     SecretId=name, RotationLambdaARN=UNMAPPED_LAMBDA)
        events = self.rotation_events("RotateSecret with an unmapped function")
        eq(events, [], "webhook events for an unmapped function")
        eq(sm.get_secret_value(SecretId=name)["VersionId"], vid2, "AWSCURRENT after the refused RotateSecret")

        c = sm.cancel_rotate_secret(SecretId=name)
        eq((c.get("ARN"), c.get("Name")), (arn, name), "CancelRotateSecret (ARN, Name)")
        d = sm.describe_secret(SecretId=name)
        eq(d.get("RotationEnabled"), False, "DescribeSecret RotationEnabled after CancelRotateSecret")
        ensure("NextRotationDate" not in d, "DescribeSecret after CancelRotateSecret has NextRotationDate %r" % d.get("NextRotationDate"))

        # Out of the model's range 1-1000: a ValidationException, as for every
        # model constraint (botocore checks only the minimum itself).
        raw = self.sm_unvalidated
        for days, bound in ((1001, "less than or equal to 1000"), (0, "greater than or equal to 1")):
            expect_error(raw.rotate_secret, "ValidationException", SecretId=name,
                         contains=["rotationRules.automaticallyAfterDays", "Member must have value " + bound],
                         RotationLambdaARN=ROTATION_LAMBDA, RotationRules={"AutomaticallyAfterDays": days})
        # Rules the model admits but Secrets Manager refuses.
        for rules in ({"ScheduleExpression": "rate(1 hours)"},  # more often than every 4 hours
                      {"AutomaticallyAfterDays": 10, "Duration": "25h"},  # window longer than 24h
                      {"AutomaticallyAfterDays": 10, "ScheduleExpression": "rate(10 days)"}):  # both
            expect_error(raw.rotate_secret, "InvalidParameterException", SecretId=name,
                         RotationLambdaARN=ROTATION_LAMBDA, RotationRules=rules)
        eq(self.rotation_events("RotateSecret with rules out of range"), [], "webhook events for refused rotation rules")
        eq(sm.describe_secret(SecretId=name).get("RotationEnabled"), False,
           "RotationEnabled after RotateSecret with rules out of range")

    def check_sm_cli_rotate(self):
        ensure(self.hook is not None, "no rotation webhook")
        self.hook.take()
        created = self.sm.create_secret(Name="smoke/rotate-cli", SecretString="cli-before-rotation")
        code, out, err = self.aws("secretsmanager", "rotate-secret", "--region", REGION, "--output", "json",
                                  "--secret-id", "smoke/rotate-cli", "--rotation-lambda-arn", ROTATION_LAMBDA,
                                  "--rotation-rules", '{"AutomaticallyAfterDays": 7}')
        eq(code, 0, "aws secretsmanager rotate-secret exit code (stderr %r)" % err.strip())
        got = json.loads(out)
        eq((got.get("ARN"), got.get("Name")), (created["ARN"], "smoke/rotate-cli"), "aws secretsmanager rotate-secret (ARN, Name)")
        eq([e.get("Step") for e in self.rotation_events("aws secretsmanager rotate-secret")], ROTATION_STEPS,
           "rotation webhook steps for the CLI's rotate-secret")
        cur = self.sm.get_secret_value(SecretId="smoke/rotate-cli")
        eq((cur.get("VersionId"), cur.get("SecretString", "").startswith(ROTATED_PREFIX)), (got.get("VersionId"), True),
           "GetSecretValue after the CLI's rotate-secret (VersionId, value from the webhook)")
        code, out, err = self.aws("secretsmanager", "rotate-secret", "--region", REGION, "--output", "json",
                                  "--secret-id", "smoke/rotate-cli", "--rotation-lambda-arn", UNMAPPED_LAMBDA)
        ensure(code != 0, "aws secretsmanager rotate-secret with an unmapped function exited 0 with %r" % out.strip())
        ensure("AccessDeniedException" in err, "aws secretsmanager rotate-secret stderr %r lacks AccessDeniedException" % err.strip())


def _as_list(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


CHECKS = [
    ("GET /health", "check_health"),
    ("CreateKey metadata", "check_create_key"),
    ("DescribeKey by id, ARN, alias", "check_describe_key"),
    ("ListKeys paging (Limit, Marker)", "check_list_keys_paging"),
    ("DisableKey / EnableKey", "check_enable_disable_key"),
    ("ScheduleKeyDeletion", "check_schedule_key_deletion"),
    ("CancelKeyDeletion", "check_cancel_key_deletion"),
    ("UpdateKeyDescription", "check_update_key_description"),
    ("Create/Update/Delete/ListAliases", "check_aliases"),
    ("Tag/Untag/ListResourceTags", "check_tags"),
    ("tag limit (50)", "check_tag_limit"),
    ("Encrypt / Decrypt with EncryptionContext", "check_encrypt_decrypt"),
    ("ReEncrypt", "check_reencrypt"),
    ("GenerateDataKey", "check_generate_data_key"),
    ("GenerateDataKeyWithoutPlaintext", "check_generate_data_key_without_plaintext"),
    ("DeriveSharedSecret (ECDH, KEY_AGREEMENT)", "check_derive_shared_secret"),
    ("GenerateDataKeyPair / GenerateDataKeyPairWithoutPlaintext", "check_generate_data_key_pair"),
    ("GenerateRandom", "check_generate_random"),
    ("Enable/Disable/GetKeyRotationStatus", "check_key_rotation"),
    ("RotateKeyOnDemand + ListKeyRotations", "check_rotate_on_demand"),
    ("Get/Put/ListKeyPolicies", "check_key_policy"),
    ("AWS managed key alias/aws/secretsmanager", "check_aws_managed_key"),
    ("CreateCustomKeyStore AWS_CLOUDHSM: CloudHsmClusterNotFoundException; import refused on an AWS_KMS key; no stores listed", "check_refused_custom_key_store"),
    ("external key store: a second server and a Python XKS proxy (e2e/smoke/xksproxy.py): create/connect/disconnect, "
     "keys, Encrypt/Decrypt/GenerateDataKey/ReEncrypt through the proxy, its errors", "check_external_key_store"),
    ("multi-Region key: ReplicateKey to eu-west-1, Decrypt there", "check_multi_region"),
    ("CreateGrant / ListGrants / RevokeGrant across accounts", "check_grants"),
    ("region isolation (eu-west-1)", "check_region_isolation"),
    ("account isolation (access key 111122223333)", "check_account_isolation"),
    ("wire protocol errors (raw HTTP)", "check_wire_protocol"),
    ("aws kms create-key / list-keys (CLI)", "check_cli_create_key"),
    ("every key type from the CLI (SM2 in cn-north-1): Sign/Verify, RSA encryption, HMAC, checked by openssl", "check_cli_every_key_type"),
    ("import key material with the CLI and openssl (RSAES_OAEP_SHA_256, RSA_AES_KEY_WRAP_SHA_256)", "check_cli_import_key_material"),
    ("aws kms encrypt / decrypt (CLI)", "check_cli_encrypt_decrypt"),
    ("aws kms get-key-last-usage names the Encrypt's audit event (CLI)", "check_cli_key_last_usage"),
    ("aws kms describe-key alias/missing fails (CLI)", "check_cli_error"),
    ("CloudTrail LookupEvents errors, aws cloudtrail lookup-events (CLI)", "check_cloudtrail_lookup_events"),
    ("SM CreateSecret / GetSecretValue / DescribeSecret", "check_sm_create_get_describe"),
    ("SM SecretBinary", "check_sm_binary"),
    ("SM PutSecretValue / ListSecretVersionIds / UpdateSecretVersionStage", "check_sm_versions"),
    ("SM UpdateSecret", "check_sm_update_secret"),
    ("SM DeleteSecret / RestoreSecret", "check_sm_delete_restore"),
    ("SM Tag/UntagResource", "check_sm_tags"),
    ("SM ListSecrets filters, sort, paging", "check_sm_list_secrets"),
    ("SM GetRandomPassword", "check_sm_random_password"),
    ("SM errors", "check_sm_errors"),
    ("aws secretsmanager create-secret / get-secret-value (CLI)", "check_sm_cli"),
    ("aws secretsmanager get-secret-value missing fails (CLI)", "check_sm_cli_error"),
    ("STS GetCallerIdentity (boto3, aws sts get-caller-identity); assume-role refused (CLI)", "check_sts_get_caller_identity"),
    ("SM Put/Get/DeleteResourcePolicy", "check_sm_resource_policy"),
    ("SM ValidateResourcePolicy", "check_sm_validate_resource_policy"),
    ("SM BatchGetSecretValue (SecretIdList, Filters)", "check_sm_batch_get"),
    ("SM replication (replicas, remove, promote)", "check_sm_replication"),
    ("SM RotateSecret through a webhook / CancelRotateSecret", "check_sm_rotation"),
    ("aws secretsmanager rotate-secret through a webhook (CLI)", "check_sm_cli_rotate"),
]



# ---- strict mode: the README's credentials file, through the AWS CLI ----

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")


def readme_credentials():
    """The credentials file the README shows under "Strict mode", verbatim."""
    with open(README) as f:
        text = f.read()
    m = re.search(r"## Strict mode.*?```yaml\n(.*?)```", text, re.S)
    if not m:
        raise CheckFailed("README.md has no ```yaml credentials block under \"## Strict mode\"")
    return m.group(1)


def readme_principal(creds, user):
    """(access key id, secret) of a user of the README's credentials file."""
    m = re.search(r"user/%s\b.*?id: (\w+)\s*,?\s*\n?\s*secret: ([\w-]+)" % user, creds, re.S)
    if not m:
        raise CheckFailed("README credentials: no access key for user/%s" % user)
    return m.group(1), m.group(2)


class StrictSmoke:
    """Strict mode with the README's two principals, through the AWS CLI."""

    def __init__(self, server, workdir, creds, creds_path):
        self.server = server
        self.workdir = workdir
        self.creds = creds
        self.creds_path = creds_path
        self.alice = readme_principal(creds, "alice")
        self.bob = readme_principal(creds, "bob")
        self.key_id = None

    def aws(self, who, *args):
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("AWS_") and k not in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
        }
        env.update({
            "AWS_ACCESS_KEY_ID": who[0],
            "AWS_SECRET_ACCESS_KEY": who[1],
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.path.join(self.workdir, "aws-config-absent"),
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.workdir, "aws-credentials-absent"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_PAGER": "",
            "NO_PROXY": "127.0.0.1,localhost",
        })
        exe = shutil.which("aws")
        cmd = ([exe] if exe else [sys.executable, "-m", "awscli"]) + ["--endpoint-url", self.server.endpoint, "--output", "json"] + list(args)
        p = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=CLI_TIMEOUT)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")

    def ok(self, who, *args):
        code, out, err = self.aws(who, *args)
        ensure(code == 0, "aws %s: exit %d: %s" % (" ".join(args), code, err.strip()))
        return json.loads(out) if out.strip() else {}

    def denied(self, who, *args, contains=()):
        code, out, err = self.aws(who, *args)
        ensure(code != 0, "aws %s succeeded, want AccessDeniedException: %s" % (" ".join(args), out.strip()))
        ensure("AccessDeniedException" in err, "aws %s: %s, want AccessDeniedException" % (" ".join(args), err.strip()))
        for part in contains:
            ensure(part in err, "aws %s: %r does not contain %r" % (" ".join(args), err.strip(), part))

    def check_wrong_secret(self):
        code, _, err = self.aws((self.alice[0], "not-her-secret"), "kms", "list-keys")
        ensure(code != 0 and "InvalidSignatureException" in err and "The request signature we calculated does not match" in err,
               "wrong secret: exit %d: %s" % (code, err.strip()))
        code, _, err = self.aws(("AKIAUNKNOWN00000000", "x"), "kms", "list-keys")
        ensure(code != 0 and "UnrecognizedClientException" in err and "The security token included in the request is invalid." in err,
               "unknown key: exit %d: %s" % (code, err.strip()))

    def check_keys_by_team(self):
        self.denied(self.alice, "kms", "create-key", contains=["user/alice is not authorized to perform: kms:CreateKey"])
        md = self.ok(self.alice, "kms", "create-key", "--tags", "TagKey=team,TagValue=blue")["KeyMetadata"]
        self.key_id = md["KeyId"]
        self.ok(self.alice, "kms", "encrypt", "--key-id", self.key_id, "--plaintext", "aGk=")
        self.denied(self.bob, "kms", "encrypt", "--key-id", md["Arn"], "--plaintext", "aGk=",
                    contains=["user/bob is not authorized to perform: kms:Encrypt on resource: " + md["Arn"],
                              "because no identity-based policy allows the kms:Encrypt action"])
        self.ok(self.alice, "kms", "create-grant", "--key-id", self.key_id,
                "--grantee-principal", "arn:aws:iam::111122223333:user/bob", "--operations", "Encrypt")
        self.ok(self.bob, "kms", "encrypt", "--key-id", md["Arn"], "--plaintext", "aGk=")
        self.denied(self.bob, "kms", "decrypt", "--ciphertext-blob", "fileb://" + self._ciphertext(md["Arn"]))
        self.ok(self.alice, "kms", "tag-resource", "--key-id", self.key_id, "--tags", "TagKey=team,TagValue=red")
        self.denied(self.alice, "kms", "encrypt", "--key-id", self.key_id, "--plaintext", "aGk=")

    def _ciphertext(self, key_arn):
        out = self.ok(self.alice, "kms", "encrypt", "--key-id", key_arn, "--plaintext", "aGk=")
        path = os.path.join(self.workdir, "strict-ct.bin")
        with open(path, "wb") as f:
            f.write(base64.b64decode(out["CiphertextBlob"]))
        return path

    def check_secret_lockout(self):
        self.ok(self.alice, "secretsmanager", "create-secret", "--name", "blue/db", "--secret-string", "pw", "--tags", "Key=team,Value=blue")
        self.denied(self.alice, "secretsmanager", "untag-resource", "--secret-id", "blue/db", "--tag-keys", "team",
                    contains=["secretsmanager:UntagResource on resource: blue/db"])
        tags = self.ok(self.alice, "secretsmanager", "describe-secret", "--secret-id", "blue/db").get("Tags", [])
        eq(tags, [{"Key": "team", "Value": "blue"}], "tags after the refused untag")
        self.denied(self.bob, "secretsmanager", "get-secret-value", "--secret-id", "blue/db")

    def check_reload(self):
        # A third principal added to the file works after SIGHUP; a broken
        # file is refused and the old one stays in force.
        carol = ("AKIACAROL0000000001", "carol-secret-key")
        with open(self.creds_path, "a") as f:
            f.write("  - arn: arn:aws:iam::111122223333:root\n    access_keys:\n      - {id: %s, secret: %s}\n" % carol)
        self.server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while True:
            code, _, err = self.aws(carol, "kms", "list-keys")
            if code == 0:
                break
            ensure(time.monotonic() < deadline, "carol still refused 10s after SIGHUP: %s" % err.strip())
            time.sleep(0.2)
        with open(self.creds_path, "w") as f:
            f.write("principals: [broken\n")
        self.server.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        self.ok(carol, "kms", "list-keys")
        self.ok(self.alice, "secretsmanager", "describe-secret", "--secret-id", "blue/db")


STRICT_CHECKS = [
    ("strict: a wrong secret and an unknown key are refused with AWS's errors (AWS CLI)", "check_wrong_secret"),
    ("strict: README principals: alice's team key, bob denied, a grant, a retag (AWS CLI)", "check_keys_by_team"),
    ("strict: README principals: untagging that would lock alice out is refused (AWS CLI)", "check_secret_lockout"),
    ("strict: SIGHUP reloads the credentials file; a broken file keeps the old one", "check_reload"),
]

# ---- TLS: --tls-self-signed, through the AWS CLI (--ca-bundle) and boto3 (verify=) ----


class TLSSmoke:
    """A server started with --tls-self-signed: clients trust the CA it
    wrote in <data>/tls/ca.pem and logged at start."""

    def __init__(self, server, workdir):
        self.server = server
        self.workdir = workdir
        self.ca = server.ca_file

    def client(self, service, verify=None):
        return boto3.client(
            service,
            endpoint_url=self.server.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            verify=self.ca if verify is None else verify,
            config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=20),
        )

    def aws(self, *args, env_extra=None):
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("AWS_") and k not in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
        }
        env.update({
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.path.join(self.workdir, "aws-config-absent"),
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.workdir, "aws-credentials-absent"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_PAGER": "",
            "NO_PROXY": "127.0.0.1,localhost",
        })
        env.update(env_extra or {})
        exe = shutil.which("aws")
        cmd = ([exe] if exe else [sys.executable, "-m", "awscli"]) + ["--endpoint-url", self.server.endpoint, "--output", "json"] + list(args)
        p = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=CLI_TIMEOUT)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")

    def ok(self, *args, env_extra=None):
        code, out, err = self.aws(*args, env_extra=env_extra)
        ensure(code == 0, "aws %s: exit %d: %s" % (" ".join(args), code, err.strip()))
        return json.loads(out) if out.strip() else {}

    def check_trust_log(self):
        with open(self.server.log_path, "rb") as f:
            log = f.read().decode("utf-8", "replace")
        for want in ("aws --ca-bundle " + self.ca, "AWS_CA_BUNDLE=" + self.ca):
            ensure(want in log, "the start-up log does not say %r" % want)
        modes = {}
        for name in ("ca.pem", "ca.key", "server.pem", "server.key"):
            modes[name] = oct(os.stat(os.path.join(os.path.dirname(self.ca), name)).st_mode & 0o777)
        eq(modes, {"ca.pem": "0o644", "ca.key": "0o600", "server.pem": "0o644", "server.key": "0o600"}, "modes of <data>/tls")

    def check_cli(self):
        key_id = self.ok("--ca-bundle", self.ca, "kms", "create-key", "--description", "tls")["KeyMetadata"]["KeyId"]
        pt = os.path.join(self.workdir, "tls-plain.txt")
        with open(pt, "wb") as f:
            f.write(b"smoke-tls-cli")
        blob = self.ok("--ca-bundle", self.ca, "kms", "encrypt", "--key-id", key_id, "--plaintext", "fileb://" + pt)["CiphertextBlob"]
        ct = os.path.join(self.workdir, "tls-ct.bin")
        with open(ct, "wb") as f:
            f.write(base64.b64decode(blob))
        # The CA from the environment this time.
        out = self.ok("kms", "decrypt", "--ciphertext-blob", "fileb://" + ct, env_extra={"AWS_CA_BUNDLE": self.ca})
        eq(base64.b64decode(out["Plaintext"]), b"smoke-tls-cli", "decrypted plaintext")
        self.ok("--ca-bundle", self.ca, "secretsmanager", "create-secret", "--name", "tls/cli", "--secret-string", "smoke-tls-pw")
        out = self.ok("--ca-bundle", self.ca, "secretsmanager", "get-secret-value", "--secret-id", "tls/cli")
        eq(out["SecretString"], "smoke-tls-pw", "SecretString")
        # Without the CA the CLI refuses the certificate.
        code, _, err = self.aws("kms", "list-keys")
        ensure(code != 0 and "CERTIFICATE_VERIFY_FAILED" in err, "aws without --ca-bundle: exit %d: %s" % (code, err.strip()))

    def check_boto3(self):
        kms = self.client("kms")
        key_id = kms.create_key(Description="tls boto3")["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=key_id, Plaintext=b"smoke-tls-boto3")["CiphertextBlob"]
        eq(kms.decrypt(CiphertextBlob=blob)["Plaintext"], b"smoke-tls-boto3", "decrypted plaintext")
        sm = self.client("secretsmanager")
        sm.create_secret(Name="tls/boto3", SecretString="smoke-tls-boto3-pw")
        eq(sm.get_secret_value(SecretId="tls/boto3")["SecretString"], "smoke-tls-boto3-pw", "SecretString")
        # verify=True (the system's CAs) does not know the server's CA.
        try:
            self.client("kms", verify=True).list_keys()
        except botocore.exceptions.SSLError:
            pass
        else:
            raise CheckFailed("list_keys with verify=True succeeded; want the certificate refused")

    def check_https_only(self):
        # A plain HTTP request to the port is answered by the TLS layer.
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/health" % self.server.port, timeout=5) as r:
                raise CheckFailed("plain HTTP answered %d, want 400" % r.status)
        except urllib.error.HTTPError as e:
            eq(e.code, 400, "status of a plain HTTP request")


TLS_CHECKS = [
    ("tls: the start-up log says how to trust the CA; <data>/tls modes 0644/0600", "check_trust_log"),
    ("tls: AWS CLI with --ca-bundle / AWS_CA_BUNDLE: KMS encrypt/decrypt, Secrets Manager (refused without the CA)", "check_cli"),
    ("tls: boto3 with verify=<ca.pem>: KMS encrypt/decrypt, Secrets Manager (refused without the CA)", "check_boto3"),
    ("tls: the port serves HTTPS only", "check_https_only"),
]


class Results:
    def __init__(self, verbose):
        self.passed = 0
        self.failed = 0
        self.verbose = verbose

    def record(self, name, fn):
        try:
            fn()
        except CheckFailed as e:
            self.fail(name, str(e))
        except ClientError as e:
            err = e.response.get("Error", {})
            self.fail(name, "unexpected %s from %s: %s (HTTP %s)" % (
                err.get("Code"), e.operation_name, err.get("Message"),
                e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")))
        except Exception as e:  # a bug in the check or a transport error
            detail = "%s: %s" % (type(e).__name__, e)
            if self.verbose:
                detail += " | " + traceback.format_exc().replace("\n", " | ")
            self.fail(name, detail)
        else:
            self.passed += 1
            print("PASS  %s" % name, flush=True)

    def fail(self, name, detail):
        self.failed += 1
        print("FAIL  %s: %s" % (name, " ".join(detail.split())), flush=True)


def run_server(results, server, label):
    """Start server and wait for health as one check; True if it is up."""
    def start():
        ensure(os.path.isfile(server.binary) and os.access(server.binary, os.X_OK),
               "%s is not an executable file" % server.binary)
        server.start()
        server.wait_healthy()
    before = results.failed
    results.record("%s: %s serve on %s (health within %.0fs)"
                   % (label, os.path.basename(server.binary), server.endpoint, HEALTH_TIMEOUT), start)
    return results.failed == before


def stop_server(results, server):
    def stopped():
        code, killed = server.stop()
        ensure(not killed, "server still running %.0fs after SIGTERM; killed" % STOP_TIMEOUT)
        eq(code, 0, "exit code after SIGTERM (log tail: %s)" % server.log_tail())
    results.record("SIGTERM stops the server cleanly (%s)" % os.path.basename(server.log_path), stopped)


def leak_check(data, log_paths):
    """No plaintext used by the checks appears in the logs or the data dir."""
    paths = list(log_paths)
    for root, _, files in os.walk(data):
        paths += [os.path.join(root, f) for f in files]
    found = []
    for p in paths:
        try:
            with open(p, "rb") as f:
                content = f.read()
        except OSError:
            continue
        for marker in SECRET_MARKERS:
            for form, needle in (("raw", marker), ("base64", base64.b64encode(marker))):
                if needle in content:
                    found.append("%r (%s) in %s" % (marker, form, os.path.relpath(p, os.path.dirname(data))))
    ensure(not found, "plaintext found: %s" % ", ".join(found))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True, help="path to the keyfort binary")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (data and server log)")
    ap.add_argument("-v", "--verbose", action="store_true", help="tracebacks for unexpected exceptions")
    args = ap.parse_args()

    # boto3 and the CLI must not pick up a user's profile, proxy or endpoint.
    for k in list(os.environ):
        if k.startswith("AWS_"):
            del os.environ[k]
    workdir = tempfile.mkdtemp(prefix="keyfort-smoke-")
    os.environ["AWS_CONFIG_FILE"] = os.path.join(workdir, "aws-config-absent")
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(workdir, "aws-credentials-absent")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"

    results = Results(args.verbose)
    binary = os.path.abspath(args.binary)
    data = os.path.join(workdir, "data")
    servers = []
    # The rotation webhook, and the config file (the only place Keyfort maps a
    # rotation Lambda ARN to a webhook) that both runs start with.
    hook = RotationHook()
    config_path = os.path.join(workdir, "keyfort.yaml")
    with open(config_path, "w") as f:
        f.write("rotation_webhooks:\n  %s: %s\n" % (ROTATION_LAMBDA, hook.url))
    extra = ["--config", config_path]
    try:
        # Run 1: every check, then SIGTERM.
        server = Server(binary, data, os.path.join(workdir, "server.log"), extra)
        servers.append(server)
        if run_server(results, server, "start"):
            smoke = Smoke(server, workdir, hook)
            for name, method in CHECKS:
                results.record(name, getattr(smoke, method))
            persisted = {}

            def setup():
                persisted.update(smoke.setup_persisted())
            results.record("state for the restart check (alias, tags, rotation, ciphertext, secret)", setup)
            stop_server(results, server)
            # Run 2: the same data directory after a clean stop.
            server2 = Server(binary, data, os.path.join(workdir, "server-restart.log"), extra)
            servers.append(server2)
            if run_server(results, server2, "restart on the same data"):
                results.record("state survives a restart", lambda: Smoke(server2, workdir).check_persisted(persisted))
                stop_server(results, server2)
            results.record("no plaintext in logs or data directory", lambda: leak_check(data, [s.log_path for s in servers]))
        # Run 3: strict mode, on a data directory of its own, with the
        # README's credentials file.
        creds_path = os.path.join(workdir, "creds.yaml")
        creds = None

        def write_creds():
            nonlocal creds
            creds = readme_credentials()
            with open(creds_path, "w") as f:
                f.write(creds)
        results.record("README's strict-mode credentials file", write_creds)
        if creds is not None:
            strict = Server(binary, os.path.join(workdir, "data-strict"), os.path.join(workdir, "server-strict.log"),
                            ["--auth", "strict", "--credentials", creds_path])
            servers.append(strict)
            if run_server(results, strict, "strict mode"):
                st = StrictSmoke(strict, workdir, creds, creds_path)
                for name, method in STRICT_CHECKS:
                    results.record(name, getattr(st, method))
                stop_server(results, strict)
        # Run 4: TLS with --tls-self-signed, on a data directory of its own.
        data_tls = os.path.join(workdir, "data-tls")
        tls_server = Server(binary, data_tls, os.path.join(workdir, "server-tls.log"), ["--tls-self-signed"],
                            ca_file=os.path.join(data_tls, "tls", "ca.pem"))
        servers.append(tls_server)
        if run_server(results, tls_server, "tls"):
            ts = TLSSmoke(tls_server, workdir)
            for name, method in TLS_CHECKS:
                results.record(name, getattr(ts, method))
            stop_server(results, tls_server)
    finally:
        for s in servers:
            s.stop()
        hook.close()
        if results.failed:
            for s in servers:
                print("server log tail (%s): %s" % (os.path.basename(s.log_path), s.log_tail(3)), flush=True)
        if args.keep:
            print("kept %s" % workdir, flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print("%d passed, %d failed" % (results.passed, results.failed), flush=True)
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
