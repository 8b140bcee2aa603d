"""pytest plugin: records the requests a test suite sends, as seed inputs for the fuzz harnesses.

    FUZZ_SEED_DIR=/tmp/seeds /usr/bin/python3 -m pytest -q -p record_seeds tests/grpc tests/e2e
    (with tests/fuzz on PYTHONPATH)

Every serialized DriverRequest the storage-driver tests send (gRPC or bridge) becomes a file in
<dir>/driver/, with its credentials rewritten to the fuzz harnesses' admin key and, for commands
that name a project, project "p" (the fixture of tests/fuzz/fuzz_util.h). Every HTTP request the
end-to-end tests send through `requests` becomes a file in <dir>/rest/ in fuzz_rest's input format
(request line, headers, blank line, body) with project paths rewritten to /projects/p. The files
are then minimized into tests/fuzz/corpus/ with libFuzzer's -merge=1 (see scripts/fuzz.sh).
"""

import hashlib
import os
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

import requests

ADMIN = "fuzz-admin-key-0123456789abcdef0123456789"
OUT = Path(os.environ.get("FUZZ_SEED_DIR", "build-fuzz/seeds"))
MAX = 16384


def _save(kind, data):
    if len(data) > MAX:
        return
    d = OUT / kind
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def _driver(body):
    try:
        sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "build" / "gen" / "python"))
        from proto import common_pb2, credentials_pb2
        req = common_pb2.DriverRequest.FromString(body)
        if req.HasField("credentials"):
            c = credentials_pb2.GenericBackendCredentials()
            if req.credentials.Unpack(c):
                c.secret = ADMIN
                if c.host:
                    c.host = "p"
                req.credentials.Pack(c)
        _save("driver", req.SerializeToString())
    except Exception:  # not a DriverRequest: keep the bytes as sent (malformed-input tests)
        _save("driver", bytes(body))


def _rest(method, url, headers, body):
    u = urlsplit(url)
    path = re.sub(r"^/projects/[^/]+", "/projects/p", u.path) if not (method == "POST" and u.path == "/projects") \
        else u.path
    line = f"{method} {path}{'?' + u.query if u.query else ''}\n"
    hdrs = ""
    for k, v in (headers or {}).items():
        if k.lower() in ("content-type", "x-storageapi-token", "authorization") and isinstance(v, str):
            hdrs += f"{k}: {ADMIN if k.lower() != 'content-type' else v}\n"
    if body is None:
        body = b""
    if isinstance(body, str):
        body = body.encode()
    if not isinstance(body, bytes):
        return
    if path == "/driver/execute":
        _driver(body)
    _save("rest", line.encode() + hdrs.encode() + b"\n" + body)


_send = requests.Session.send


def _recording_send(self, request, **kw):
    try:
        _rest(request.method, request.url, dict(request.headers), request.body)
    except Exception:
        pass
    return _send(self, request, **kw)


requests.Session.send = _recording_send


def pytest_collection_finish(session):
    driver_lib = sys.modules.get("driver_lib")
    if driver_lib is None:
        return
    orig = driver_lib.Driver.execute_raw

    def execute_raw(self, body):
        if self.transport == "grpc":
            _driver(body)
        return orig(self, body)

    driver_lib.Driver.execute_raw = execute_raw
