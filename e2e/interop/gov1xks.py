#!/usr/bin/env python3
"""The external key store proxies of gov1.sh: e2e/smoke/xksproxy.py (the
smoke test's XKS proxy, XKS Proxy API v1 over TLS on 127.0.0.1), one
XksProxy for each HOST=PATH given, all with one credential and the external
key KEY, signed for REGION. Not run on its own: gov1.sh starts it and stops
it (SIGTERM) on exit.

    gov1xks.py DIR REGION KEY HOST=PATH...

Once every proxy listens it writes, in DIR: ca.pem (every proxy's
self-signed certificate, for keyfort --xks-proxy-ca), addresses
(HOST=127.0.0.1:PORT,... for --xks-proxy-address), access-key-id and secret
(the proxies' credential, the secret mode 0600), and last ready. It serves
until SIGTERM (or until its parent goes away), then writes requests: a line
for each request a proxy took ("HOST OPERATION kmsOperation KEY
awsPrincipalArn", "-" for none) and one for each it refused ("HOST REFUSED
METHOD PATH errorName"). Needs the cryptography package and botocore.
"""

import os
import signal
import sys
import threading

sys.dont_write_bytecode = True  # no __pycache__ in e2e/smoke
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "smoke"))
import xksproxy  # noqa: E402


def write(path, data, mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def main():
    if len(sys.argv) < 5:
        sys.exit("usage: gov1xks.py DIR REGION KEY HOST=PATH...")
    out, region, key = sys.argv[1:4]
    proxies = []
    for arg in sys.argv[4:]:
        host, sep, path = arg.partition("=")
        if not sep:
            sys.exit("%r is not HOST=PATH" % arg)
        first = proxies[0] if proxies else None
        p = xksproxy.XksProxy(host, path, region,
                              access_key_id=first.access_key_id if first else None,
                              secret=first.secret if first else None)
        p.add_key(key)
        proxies.append(p)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    parent = os.getppid()
    try:
        for p in proxies:
            p.start()
        os.makedirs(out, exist_ok=True)
        write(os.path.join(out, "ca.pem"), b"".join(p.cert_pem for p in proxies))
        write(os.path.join(out, "addresses"), ",".join("%s=127.0.0.1:%d" % (p.host, p.port) for p in proxies))
        write(os.path.join(out, "access-key-id"), proxies[0].access_key_id)
        write(os.path.join(out, "secret"), proxies[0].secret, 0o600)
        write(os.path.join(out, "ready"), "")
        print("xks proxies up: %s" % ", ".join("https://%s%s on 127.0.0.1:%d" % (p.host, p.path, p.port) for p in proxies),
              flush=True)
        while not stop.wait(0.5):
            if os.getppid() != parent:
                break  # gov1.sh is gone
    finally:
        for p in proxies:
            p.close()
    lines = []
    for p in proxies:
        for r in p.requests():
            md = r["metadata"]
            lines.append(" ".join([p.host, r["operation"], md.get("kmsOperation") or "-", r["key_id"] or "-",
                                   md.get("awsPrincipalArn") or "-"]))
        for method, path, name, _ in p.rejected():
            lines.append(" ".join([p.host, "REFUSED", method, path, name]))
    write(os.path.join(out, "requests"), "".join(line + "\n" for line in lines))
    print("xks proxies stopped: %d requests" % len(lines), flush=True)


if __name__ == "__main__":
    main()
