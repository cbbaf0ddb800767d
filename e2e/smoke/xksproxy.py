"""A minimal external key store proxy (XKS Proxy API specification v1) for the smoke test.

Written from the specification (github.com/aws/aws-kms-xksproxy-api-spec,
xks_proxy_api_spec.md), independently of Keyfort's Go code and of its Go test
proxy: Python's http.server (ThreadingHTTPServer) over TLS (ssl) on 127.0.0.1,
a self-signed certificate for the DNS name given (made with the `cryptography`
package), AES-256-GCM keys held in memory (cryptography's AESGCM), and SigV4
verification by recomputing the signature with botocore's signer.

    proxy = XksProxy("xks.example.test", "/example/kms/xks/v1", "us-east-1")
    proxy.add_key("key-1")
    proxy.start()            # listens on 127.0.0.1:<proxy.port>
    ... proxy.cert_pem ... proxy.requests() ...
    proxy.close()

It serves, all by POST under {path}:
  /health                     GetHealthStatus
  /keys/{externalKeyId}/metadata  GetKeyMetadata
  /keys/{externalKeyId}/encrypt   Encrypt
  /keys/{externalKeyId}/decrypt   Decrypt
and answers GET (or any other method) to those URIs with 405, any other path
with 404 InvalidUriPathException, an unverifiable signature with 401
AuthenticationFailedException, an unknown key with 404 KeyNotFoundException, a
DISABLED key (Encrypt, Decrypt) with 400 InvalidStateException, a ciphertext
that does not open with 400 InvalidCiphertextException, and a malformed request
with 400 ValidationException. Error bodies are {"errorName", "errorMessage"}.

For tests only: keys live in memory and vanish with the process.
"""

import base64
import datetime
import hashlib
import hmac
import http.server
import ipaddress
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import struct
import tempfile
import threading

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVICE = "kms-xks-proxy"
# The specification's bound on the distance between X-Amz-Date and the
# proxy's clock, either way.
MAX_SKEW = datetime.timedelta(minutes=5)
MAX_BODY = 1 << 20
MAX_CIPHERTEXT_METADATA = 20
AMZ_DATE = "%Y%m%dT%H%M%SZ"

OP_HEALTH = "GetHealthStatus"
OP_METADATA = "GetKeyMetadata"
OP_ENCRYPT = "Encrypt"
OP_DECRYPT = "Decrypt"

# errorName -> HTTP status (the specification's "Error codes" table).
ERROR_STATUS = {
    "ValidationException": 400,
    "InvalidStateException": 400,
    "InvalidCiphertextException": 400,
    "InvalidKeyUsageException": 400,
    "AuthenticationFailedException": 401,
    "AccessDeniedException": 403,
    "KeyNotFoundException": 404,
    "InvalidUriPathException": 404,
    "ThrottlingException": 429,
    "InternalException": 500,
    "UnsupportedOperationException": 501,
    "DependencyTimeoutException": 503,
}

# requestMetadata members each operation requires.
REQUIRED_METADATA = {
    OP_HEALTH: ("kmsRequestId", "kmsOperation"),
    OP_METADATA: ("awsPrincipalArn", "kmsOperation", "kmsRequestId"),
    OP_ENCRYPT: ("awsPrincipalArn", "kmsKeyArn", "kmsOperation", "kmsRequestId"),
    OP_DECRYPT: ("awsPrincipalArn", "kmsKeyArn", "kmsOperation", "kmsRequestId"),
}

KEY_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request,\s*"
    r"SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$"
)


class ProxyError(Exception):
    """An error answer of the proxy."""

    def __init__(self, name, message):
        super().__init__("%s: %s" % (name, message))
        self.name = name
        self.message = message


def random_access_key_id():
    """26 characters of A-Z and 2-7 (the specification's form: 20-30)."""
    return base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=")


def random_secret():
    """The Base64 of 32 random bytes: 44 characters (43-64 allowed)."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def bound_aad(aad, metadata):
    """The AES-GCM additional data the specification prescribes:
    uint16be(len(AAD)) || AAD || uint8(len(metadata)) || metadata."""
    if len(aad) > 0xFFFF or len(metadata) > 0xFF:
        raise ProxyError("ValidationException", "additional data too long")
    return struct.pack(">H", len(aad)) + aad + struct.pack(">B", len(metadata)) + metadata


def integrity_value(aad, metadata, iv, ciphertext, tag):
    """ciphertextDataIntegrityValue for SHA_256: Base64(SHA-256(AAD ||
    ciphertextMetadata || IV || ciphertext || tag)) (Appendix C)."""
    return base64.b64encode(hashlib.sha256(aad + metadata + iv + ciphertext + tag).digest()).decode()


def self_signed(host):
    """(certificate PEM, private key PEM): ECDSA P-256, for DNS name host
    and 127.0.0.1, valid for a day, signed by itself (so that it is its own
    trust anchor)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smoke XKS proxy")])
    now = datetime.datetime.now(datetime.timezone.utc)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=False,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(host), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()),
    )


class _Key:
    def __init__(self):
        self.material = AESGCM.generate_key(bit_length=256)
        self.status = "ENABLED"
        self.spec = "AES_256"
        self.usage = ["ENCRYPT", "DECRYPT"]


class _TLSServer(http.server.ThreadingHTTPServer):
    """ThreadingHTTPServer whose connections are TLS: the handshake is done
    in the connection's thread, so a slow client does not hold the accept
    loop. Open connections are tracked so that close() can end them."""

    daemon_threads = False
    block_on_close = True
    # A connection idle this long (seconds) is closed by the proxy.
    idle_timeout = 30

    def __init__(self, address, handler, tls, proxy):
        self.tls = tls
        self.proxy = proxy
        self.conns = set()
        self.conns_lock = threading.Lock()
        super().__init__(address, handler)

    def finish_request(self, request, client_address):
        request.settimeout(self.idle_timeout)
        with self.conns_lock:
            self.conns.add(request)
        try:
            try:
                conn = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return  # a failed handshake: nothing to answer
            with self.conns_lock:
                self.conns.discard(request)
                self.conns.add(conn)
            try:
                self.RequestHandlerClass(conn, client_address, self)
            finally:
                with self.conns_lock:
                    self.conns.discard(conn)
                try:
                    conn.close()
                except OSError:
                    pass
        finally:
            with self.conns_lock:
                self.conns.discard(request)

    def end_connections(self):
        with self.conns_lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):
        pass  # a client that goes away is not the proxy's error


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # the specification requires HTTP/1.1
    server_version = "smoke-xks-proxy/1"
    sys_version = ""

    def do_POST(self):
        self.server.proxy._serve(self, "POST")

    def do_GET(self):
        self.server.proxy._serve(self, "GET")

    def do_PUT(self):
        self.server.proxy._serve(self, "PUT")

    def do_DELETE(self):
        self.server.proxy._serve(self, "DELETE")

    def log_message(self, *args):
        pass

    def answer(self, status, body, content_type="application/json", extra=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def answer_error(self, e):
        status = ERROR_STATUS.get(e.name, 400)
        self.answer(status, {"errorName": e.name, "errorMessage": e.message})


class XksProxy:
    """An XKS proxy for host (the DNS name of its certificate) serving the
    URI path path ([/prefix]/kms/xks/v1), accepting requests signed for
    region with the credential given (random ones by default). Thread-safe.
    """

    def __init__(self, host, path, region, access_key_id=None, secret=None, ciphertext_metadata=b""):
        if not re.match(r"^(/[A-Za-z0-9._~-]+)*/kms/xks/v1$", path):
            raise ValueError("path %r is not [/prefix]/kms/xks/v1" % path)
        if len(ciphertext_metadata) > MAX_CIPHERTEXT_METADATA:
            raise ValueError("ciphertext_metadata is longer than 20 bytes")
        self.host = host
        self.path = path
        self.region = region
        self.access_key_id = access_key_id or random_access_key_id()
        self.secret = secret or random_secret()
        # Returned by every Encrypt and bound into the tag (b"": none).
        self.ciphertext_metadata = bytes(ciphertext_metadata)
        self.cert_pem, self._key_pem = self_signed(host)
        self._lock = threading.Lock()
        self._creds = {self.access_key_id: self.secret}
        self._keys = {}
        self._requests = []
        self._rejected = []
        self._health = "ACTIVE"
        self._httpd = None
        self._thread = None
        self._dir = None
        self.port = None

    # ---- control ------------------------------------------------------

    def start(self):
        """Listens on 127.0.0.1 (a port chosen by the kernel) and serves in
        a thread. Returns self."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_alpn_protocols(["http/1.1"])
        # load_cert_chain reads files: write them to a private directory.
        self._dir = tempfile.mkdtemp(prefix="smoke-xks-proxy-")
        cert_file = os.path.join(self._dir, "cert.pem")
        key_file = os.path.join(self._dir, "key.pem")
        with open(cert_file, "wb") as f:
            f.write(self.cert_pem)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self._key_pem)
        try:
            ctx.load_cert_chain(cert_file, key_file)
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        self._httpd = _TLSServer(("127.0.0.1", 0), _Handler, ctx, self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="xks-proxy", daemon=True)
        self._thread.start()
        return self

    def close(self):
        """Stops serving, ends open connections and waits for their threads."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        self._thread.join(timeout=10)
        httpd.end_connections()
        httpd.server_close()  # joins the connection threads

    def add_key(self, key_id):
        """A new AES-256 external key, ENABLED, for ENCRYPT and DECRYPT."""
        with self._lock:
            self._keys[key_id] = _Key()

    def set_key_status(self, key_id, status):
        """ENABLED or DISABLED."""
        with self._lock:
            self._keys[key_id].status = status

    def set_health(self, status):
        """ACTIVE, DEGRADED or UNAVAILABLE: GetHealthStatus's healthStatus."""
        with self._lock:
            self._health = status

    def add_credential(self, access_key_id, secret):
        with self._lock:
            self._creds[access_key_id] = secret

    def remove_credential(self, access_key_id):
        with self._lock:
            self._creds.pop(access_key_id, None)

    def requests(self, operation=None):
        """The authenticated, well-formed requests received so far, oldest
        first: dicts with operation, key_id, access_key_id, signed_headers,
        metadata (requestMetadata), aad (additionalAuthenticatedData sent),
        integrity (ciphertextDataIntegrityValueAlgorithm sent)."""
        with self._lock:
            reqs = [dict(r, metadata=dict(r["metadata"])) for r in self._requests]
        return [r for r in reqs if operation is None or r["operation"] == operation]

    def rejected(self):
        """The requests answered with an error before they were recorded:
        (method, path, errorName, errorMessage)."""
        with self._lock:
            return list(self._rejected)

    def reset(self):
        with self._lock:
            self._requests = []
            self._rejected = []

    # ---- serving ------------------------------------------------------

    def _route(self, path):
        prefix = self.path + "/"
        if not path.startswith(prefix):
            return None, None
        rest = path[len(prefix):]
        if rest == "health":
            return OP_HEALTH, None
        parts = rest.split("/")
        if len(parts) == 3 and parts[0] == "keys" and parts[1]:
            op = {"metadata": OP_METADATA, "encrypt": OP_ENCRYPT, "decrypt": OP_DECRYPT}.get(parts[2])
            if op:
                return op, parts[1]
        return None, None

    def _serve(self, h, method):
        try:
            body = self._read_body(h)
        except ProxyError as e:
            h.close_connection = True
            self._reject(method, h.path, e)
            h.answer_error(e)
            return
        op, key_id = self._route(h.path)
        if op is None:
            e = ProxyError("InvalidUriPathException", "the URI path is not valid")
            self._reject(method, h.path, e)
            h.answer_error(e)
            return
        if method != "POST":
            h.answer(405, b"method not allowed\n", "text/plain", {"Allow": "POST"})
            return
        try:
            akid, signed = self._authenticate(h, body)
            doc, md = self._parse(op, h, body)
        except ProxyError as e:
            self._reject(method, h.path, e)
            h.answer_error(e)
            return
        with self._lock:
            self._requests.append({
                "operation": op, "key_id": key_id, "access_key_id": akid, "signed_headers": signed,
                "metadata": md, "aad": "additionalAuthenticatedData" in doc and op in (OP_ENCRYPT, OP_DECRYPT),
                "integrity": "ciphertextDataIntegrityValueAlgorithm" in doc and op == OP_ENCRYPT,
            })
        try:
            if op != OP_HEALTH and not KEY_ID_RE.match(key_id):
                raise ProxyError("ValidationException", "the external key id is not valid")
            if op == OP_HEALTH:
                answer = self._health_status()
            elif op == OP_METADATA:
                answer = self._key_metadata(key_id)
            elif op == OP_ENCRYPT:
                answer = self._encrypt(key_id, doc)
            else:
                answer = self._decrypt(key_id, doc)
        except ProxyError as e:
            h.answer_error(e)
            return
        h.answer(200, answer)

    def _reject(self, method, path, e):
        with self._lock:
            self._rejected.append((method, path, e.name, e.message))

    @staticmethod
    def _read_body(h):
        if h.headers.get("Transfer-Encoding"):
            raise ProxyError("ValidationException", "a chunked body is not supported")
        try:
            n = int(h.headers.get("Content-Length") or 0)
        except ValueError:
            raise ProxyError("ValidationException", "bad Content-Length")
        if n < 0 or n > MAX_BODY:
            raise ProxyError("ValidationException", "the body is too large")
        return h.rfile.read(n) if n else b""

    def _authenticate(self, h, body):
        """Verifies the SigV4 signature: recomputes the Authorization header
        with botocore's SigV4Auth over the method, the path, the headers the
        request signed (host and x-amz-date at least) and the body, for the
        service kms-xks-proxy in the proxy's region, and compares the two in
        constant time. Returns (access key id, SignedHeaders)."""
        fail = ProxyError("AuthenticationFailedException", "the request signature could not be verified")
        auth = h.headers.get("Authorization", "")
        m = AUTH_RE.match(auth)
        if not m:
            raise fail
        akid, day, _, _, signed, _ = m.groups()
        names = signed.split(";")
        if "host" not in names or "x-amz-date" not in names or names != sorted(set(names)):
            raise fail
        amz_date = h.headers.get("X-Amz-Date", "")
        try:
            at = datetime.datetime.strptime(amz_date, AMZ_DATE).replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            raise fail
        if abs(datetime.datetime.now(datetime.timezone.utc) - at) > MAX_SKEW or day != amz_date[:8]:
            raise fail
        with self._lock:
            secret = self._creds.get(akid)
        if secret is None:
            raise fail
        host = h.headers.get("Host", "")
        if not host or "?" in h.path:
            raise fail
        headers = {}
        for name in names:
            values = h.headers.get_all(name)
            if not values:
                raise fail
            headers[name] = ",".join(values)
        # The request as it was signed: these headers and nothing else.
        req = AWSRequest(method=h.command, url="https://%s%s" % (host, h.path), data=body, headers=headers)
        req.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(akid, secret), SERVICE, self.region)
        canonical = signer.canonical_request(req)
        signature = signer.signature(signer.string_to_sign(req, canonical), req)
        want = "AWS4-HMAC-SHA256 Credential=%s, SignedHeaders=%s, Signature=%s" % (
            signer.scope(req), signer.signed_headers(signer.headers_to_sign(req)), signature)
        if not hmac.compare_digest(want.encode(), auth.encode()):
            raise fail
        return akid, signed

    @staticmethod
    def _parse(op, h, body):
        ctype = h.headers.get("Content-Type", "")
        if ctype.split(";")[0].strip().lower() != "application/json":
            raise ProxyError("ValidationException", "the Content-Type must be application/json")
        try:
            doc = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ProxyError("ValidationException", "the body is not JSON")
        if not isinstance(doc, dict):
            raise ProxyError("ValidationException", "the body is not a JSON object")
        md = doc.get("requestMetadata")
        if not isinstance(md, dict):
            raise ProxyError("ValidationException", "requestMetadata is missing or not an object")
        for name, value in md.items():
            if not isinstance(value, str):
                raise ProxyError("ValidationException", "requestMetadata.%s is not a string" % name)
        for name in REQUIRED_METADATA[op]:
            if name not in md:
                raise ProxyError("ValidationException", "requestMetadata.%s is missing" % name)
        return doc, md

    def _health_status(self):
        with self._lock:
            status = self._health
        return {
            "xksProxyFleetSize": 1,
            "xksProxyVendor": "Keyfort smoke test",
            "xksProxyModel": "smoke xksproxy.py 1.0",
            "ekmVendor": "Keyfort smoke test",
            "ekmFleetDetails": [{"id": "smoke-ekm-1", "model": "in-memory AES-256-GCM", "healthStatus": status}],
        }

    def _key(self, key_id):
        with self._lock:
            k = self._keys.get(key_id)
            if k is None:
                raise ProxyError("KeyNotFoundException", "the external key is not found")
            return k.material, k.status, k.spec, list(k.usage)

    def _key_metadata(self, key_id):
        _, status, spec, usage = self._key(key_id)
        return {"keySpec": spec, "keyUsage": usage, "keyStatus": status}

    def _usable(self, key_id, usage):
        material, status, _, usages = self._key(key_id)
        if status != "ENABLED":
            raise ProxyError("InvalidStateException", "the external key is not enabled")
        if usage not in usages:
            raise ProxyError("InvalidKeyUsageException", "the external key does not allow this operation")
        return material

    @staticmethod
    def _b64(doc, name, required):
        if name not in doc:
            if required:
                raise ProxyError("ValidationException", "%s is missing" % name)
            return b""
        v = doc[name]
        if not isinstance(v, str):
            raise ProxyError("ValidationException", "%s is not a string" % name)
        try:
            return base64.b64decode(v, validate=True)
        except ValueError:
            raise ProxyError("ValidationException", "%s is not Base64" % name)

    @staticmethod
    def _algorithm(doc):
        if doc.get("encryptionAlgorithm") != "AES_GCM":
            raise ProxyError("ValidationException", "encryptionAlgorithm must be AES_GCM")

    def _encrypt(self, key_id, doc):
        plaintext = self._b64(doc, "plaintext", True)
        aad = self._b64(doc, "additionalAuthenticatedData", False)
        self._algorithm(doc)
        cdiv = "ciphertextDataIntegrityValueAlgorithm" in doc
        if cdiv and doc["ciphertextDataIntegrityValueAlgorithm"] != "SHA_256":
            raise ProxyError("ValidationException", "ciphertextDataIntegrityValueAlgorithm must be SHA_256")
        material = self._usable(key_id, "ENCRYPT")
        meta = self.ciphertext_metadata
        gcm_aad = bound_aad(aad, meta)
        iv = secrets.token_bytes(12)
        sealed = AESGCM(material).encrypt(iv, plaintext, gcm_aad)
        ciphertext, tag = sealed[:-16], sealed[-16:]
        answer = {
            "ciphertext": base64.b64encode(ciphertext).decode(),
            "initializationVector": base64.b64encode(iv).decode(),
            "authenticationTag": base64.b64encode(tag).decode(),
        }
        if meta:
            answer["ciphertextMetadata"] = base64.b64encode(meta).decode()
        if cdiv:
            # Appendix C: the integrity value first, then a decrypt of the
            # answer, and only then the answer.
            value = integrity_value(aad, meta, iv, ciphertext, tag)
            try:
                AESGCM(material).decrypt(iv, ciphertext + tag, gcm_aad)
            except InvalidTag:
                raise ProxyError("InternalException", "the ciphertext does not decrypt")
            answer["ciphertextDataIntegrityValue"] = value
        return answer

    def _decrypt(self, key_id, doc):
        ciphertext = self._b64(doc, "ciphertext", True)
        meta = self._b64(doc, "ciphertextMetadata", False)
        aad = self._b64(doc, "additionalAuthenticatedData", False)
        tag = self._b64(doc, "authenticationTag", True)
        iv = self._b64(doc, "initializationVector", True)
        self._algorithm(doc)
        if len(meta) > MAX_CIPHERTEXT_METADATA:
            raise ProxyError("ValidationException", "ciphertextMetadata is longer than 20 bytes")
        material = self._usable(key_id, "DECRYPT")
        if len(iv) != 12 or len(tag) != 16:  # this proxy makes 12-byte IVs only
            raise ProxyError("InvalidCiphertextException", "the ciphertext is not valid")
        try:
            plaintext = AESGCM(material).decrypt(iv, ciphertext + tag, bound_aad(aad, meta))
        except InvalidTag:
            raise ProxyError("InvalidCiphertextException", "the ciphertext is not valid")
        return {"plaintext": base64.b64encode(plaintext).decode()}
