"""Shared machinery for duckstore's end-to-end tests.

`Server` runs the real binary exactly as an operator would:

    build/duckstore serve --data-dir <tmp>/data --http-addr 127.0.0.1:<free port> --grpc-addr off

with DUCKSTORE_ADMIN_KEY (unless a test wants the generated key) plus per-test environment, its
stderr (JSON log lines) captured to a file in the test's temporary directory. It can be stopped
(SIGTERM), killed (SIGKILL) and started again on the same data directory; every start picks a new
free port so a restart never depends on the old socket being released.

`Api` is a thin HTTP client bound to a server and a key. The helpers below it turn a response
into a parsed body or an assertion error that says which request failed and what came back.
"""

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("DUCKSTORE_TEST_BINARY", str(ROOT / "build" / "duckstore")))

START_TIMEOUT = 15.0  # seconds until GET /health must answer 200
STOP_TIMEOUT = 20.0  # seconds the process gets to exit after SIGTERM
REQUEST_TIMEOUT = 30.0  # per HTTP request; a hang fails the test instead of blocking the suite

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)$")

GENERATE = object()  # admin_key sentinel: let the test pick a random key
NO_KEY = None  # admin_key value: start without DUCKSTORE_ADMIN_KEY (server generates one)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_key():
    return "e2e-admin-" + secrets.token_urlsafe(24)


class ServerError(AssertionError):
    pass


class Server:
    """One duckstore process (at a time) on one data directory."""

    def __init__(self, base_dir, admin_key=GENERATE, env=None, name="server"):
        self.base_dir = Path(base_dir)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.data_dir = self.base_dir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.admin_key = random_key() if admin_key is GENERATE else admin_key
        self.extra_env = dict(env or {})
        self.proc = None
        self.port = None
        self.starts = 0
        self.log_paths = []
        self.exit_codes = []
        self._stdout = None

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def url(self):
        assert self.port is not None, "server was never started"
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def project_dir(self):
        return self.data_dir / "duckdb"

    def project_file(self, project_id):
        return self.project_dir / f"project_{project_id}_main.duckdb"

    def start(self):
        if not BINARY.exists():
            raise ServerError(f"{BINARY} does not exist: build it with `make` in {ROOT}")
        assert self.proc is None, "server already running"
        # A free port can be taken by another process between the probe and the bind: then this
        # server fails to start, or /health answers from someone else's server. Either way, try
        # another port (a few times) rather than talk to the wrong process.
        for attempt in range(5):
            self.port = free_port()
            try:
                self._launch()
                if self._answers_as_us():
                    return self
                self.proc.kill()
                self.proc.wait()
                self.proc = None
            except ServerError:
                if attempt == 4 or not self._port_clash():
                    raise
        raise ServerError(f"no free port found for {self.name} after 5 attempts")

    def _launch(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("DUCKSTORE_")}
        if self.admin_key is not None:
            env["DUCKSTORE_ADMIN_KEY"] = self.admin_key
        env.update({k: str(v) for k, v in self.extra_env.items()})
        log_path = self.base_dir / f"{self.name}-{self.starts}.stderr.log"
        out_path = self.base_dir / f"{self.name}-{self.starts}.stdout.log"
        self.starts += 1
        self.log_paths.append(log_path)
        argv = [
            str(BINARY), "serve",
            "--data-dir", str(self.data_dir),
            "--http-addr", f"127.0.0.1:{self.port}",
        ] + self._listen_args()
        with open(log_path, "wb") as err, open(out_path, "wb") as out:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err)
        self._wait_healthy()

    def _listen_args(self):
        """The listeners besides REST (subclasses add gRPC; a fresh port on every attempt)."""
        return ["--grpc-addr", "off"]

    def _answers_as_us(self):
        """True when the process on our port is ours: it stays alive and its own log says it serves
        REST on that port. The line comes once every listener is up (gRPC starts after REST, so
        /health can answer a moment before it): wait for it, or for the process to exit (a bind
        that failed because another process has the port)."""
        deadline = time.monotonic() + START_TIMEOUT
        while self.proc is not None and self.proc.poll() is None:
            if f"serving REST on 127.0.0.1:{self.port}," in self.log_text():
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return False

    def _port_clash(self):
        tail = self.log_tail().lower()
        return "in use" in tail or "bind" in tail or "not 200 within" in tail

    def _wait_healthy(self):
        deadline = time.monotonic() + START_TIMEOUT
        last = "no answer"
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                raise ServerError(f"duckstore exited with {rc} during startup; stderr:\n{self.log_tail()}")
            try:
                r = requests.get(self.url + "/health", timeout=2)
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text[:200]}"
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.01)  # a start costs ~0.1 s; a coarser poll added a quarter of it to every test
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        raise ServerError(f"GET /health not 200 within {START_TIMEOUT}s (last: {last}); stderr:\n{self.log_tail()}")

    def stop(self, check=True):
        """SIGTERM, wait, return the exit code; with check, assert it is 0."""
        assert self.proc is not None, "server not running"
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise ServerError(f"duckstore did not exit within {STOP_TIMEOUT}s of SIGTERM; stderr:\n{self.log_tail()}")
        self.exit_codes.append(rc)
        if check:
            assert rc == 0, f"duckstore exited with {rc} after SIGTERM (expected 0); stderr:\n{self.log_tail()}"
        return rc

    def kill(self):
        """SIGKILL: no chance to flush or clean up, like a power cut of the process."""
        assert self.proc is not None, "server not running"
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT)
        self.exit_codes.append(proc.returncode)

    def restart(self):
        self.stop()
        return self.start()

    def kill_while(self, calls, delay):
        """Runs each of calls (functions of no argument) in a thread of its own, kills the server with
        SIGKILL after delay seconds, waits for the calls and starts the server again. Returns each call's
        result, or None where it raised (the connection broke)."""
        results = [None] * len(calls)

        def run(i):
            try:
                results[i] = calls[i]()
            except Exception:
                results[i] = None

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
        for th in threads:
            th.start()
        time.sleep(delay)
        self.kill()
        for th in threads:
            th.join()
        self.start()
        return results

    def die_after_commit(self, hook, send, died=None):
        """Restarts the server with the test hook that kills it like kill -9 right after the commit of
        hook (ds_cmd_test_crash_point), calls send(), checks that the server died that way, and starts
        it again without the hook. send() may raise requests.ConnectionError; when it returns instead,
        died(its result) must say the answer was the dead server's (the default accepts none)."""
        self.stop()
        self.extra_env.update({"DUCKSTORE_TEST_HOOKS": "1", "DUCKSTORE_TEST_CRASH_AFTER_COMMIT": hook})
        self.start()
        try:
            r = send()
            if died is None or not died(r):
                shown = describe(r) if isinstance(r, requests.Response) else repr(r)
                raise AssertionError(f"the server answered instead of dying after the commit of {hook}: {shown}")
        except requests.ConnectionError:
            pass
        proc, self.proc = self.proc, None
        assert proc.wait(timeout=20) == -9, f"the test hook did not kill the server at {hook}"
        del self.extra_env["DUCKSTORE_TEST_CRASH_AFTER_COMMIT"]
        self.start()

    # -- logs -------------------------------------------------------------------------------------

    def log_text(self):
        return "".join(p.read_text(errors="replace") for p in self.log_paths if p.exists())

    def log_bytes(self):
        return b"".join(p.read_bytes() for p in self.log_paths if p.exists())

    def log_tail(self, n=40):
        lines = self.log_text().splitlines()
        return "\n".join(lines[-n:])

    def log_lines(self):
        return [line for line in self.log_text().splitlines() if line.strip()]

    def log_records(self):
        """Every stderr line parsed as JSON (a line that is not JSON fails the caller)."""
        out = []
        for line in self.log_lines():
            try:
                out.append(json.loads(line))
            except ValueError:
                raise AssertionError(f"stderr line is not JSON: {line!r}")
        return out

    def request_records(self):
        """The access-log lines (JSON objects with a request_id); other lines are skipped."""
        out = []
        for line in self.log_lines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and "request_id" in rec:
                out.append(rec)
        return out

    # -- clients ----------------------------------------------------------------------------------

    def api(self, key=GENERATE, header="bearer"):
        return Api(self, self.admin_key if key is GENERATE else key, header=header)


class Api:
    """HTTP client for one server and one key (None: send no key)."""

    def __init__(self, server, key, header="bearer"):
        self.server = server
        self.key = key
        self.header = header
        self.session = requests.Session()

    def with_key(self, key, header="bearer"):
        return Api(self.server, key, header=header)

    def auth_headers(self, key, header):
        if key is None:
            return {}
        if header == "bearer":
            return {"Authorization": f"Bearer {key}"}
        if header == "token":
            return {"X-StorageApi-Token": key}
        raise ValueError(header)

    def request(self, method, path, *, json_body=None, data=None, params=None, headers=None,
                key=GENERATE, header=None):
        h = self.auth_headers(self.key if key is GENERATE else key, header or self.header)
        if json_body is not None:
            data = json.dumps(json_body)
            h["Content-Type"] = "application/json"
        elif data is not None and "Content-Type" not in (headers or {}):
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        return self.session.request(method, self.server.url + path, data=data, params=params,
                                    headers=h, timeout=REQUEST_TIMEOUT)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, json_body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, json_body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


def wait_for(cond, what, timeout=30.0, detail=None):
    """Polls cond every 50 ms until it holds; after timeout seconds fails naming what (and detail())."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for: {what}"
                                 + (f"\n{detail()}" if detail else ""))
        time.sleep(0.05)


# -- response checks -------------------------------------------------------------------------------

def describe(resp):
    req = resp.request
    body = req.body
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if body and len(body) > 300:
        body = body[:300] + "..."
    return (f"{req.method} {req.url}" + (f" body={body}" if body else "")
            + f"\n  -> {resp.status_code} {resp.text[:800]}")


def expect(resp, status):
    """Assert the status; return the parsed JSON body (None for an empty body)."""
    assert resp.status_code == status, f"expected {status}, got:\n{describe(resp)}"
    if status == 204:
        assert resp.content == b"", f"204 with a body:\n{describe(resp)}"
        return None
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.startswith("application/json"), f"Content-Type {ctype!r} is not JSON:\n{describe(resp)}"
    try:
        return resp.json()
    except ValueError:
        raise AssertionError(f"body is not JSON:\n{describe(resp)}")


def expect_error(resp, status, code, mentions=()):
    """Assert an error response in the contract's shape; return the error object.

    mentions: strings that must appear (case-insensitively) in the message, e.g. the field name.
    """
    assert resp.status_code == status, f"expected {status} {code}, got:\n{describe(resp)}"
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.startswith("application/json"), f"error Content-Type {ctype!r} is not JSON:\n{describe(resp)}"
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON:\n{describe(resp)}")
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), f"no error object:\n{describe(resp)}"
    err = body["error"]
    assert err.get("code") == code, f"expected error code {code!r}:\n{describe(resp)}"
    msg = err.get("message")
    assert isinstance(msg, str) and msg.strip(), f"error without a message:\n{describe(resp)}"
    if "keboola_code" in err:
        assert isinstance(err["keboola_code"], int) and not isinstance(err["keboola_code"], bool), \
            f"keboola_code is not an int:\n{describe(resp)}"
    for m in mentions:
        assert m.lower() in msg.lower(), f"error message does not mention {m!r}:\n{describe(resp)}"
    return err


def assert_time(value, what="timestamp"):
    assert isinstance(value, str) and RFC3339_UTC.match(value), f"{what} {value!r} is not RFC 3339 UTC"


# -- resource helpers ------------------------------------------------------------------------------

def create_project(admin, pid, name=None):
    body = {"id": pid}
    if name is not None:
        body["name"] = name
    return expect(admin.post("/projects", body), 201)


def project_api(admin, pid, name=None):
    """Create a project; return (created body, Api bound to the project's key)."""
    p = create_project(admin, pid, name)
    return p, admin.with_key(p["api_key"])


def create_bucket(api, pid, name, stage="in", description=None):
    body = {"stage": stage, "name": name}
    if description is not None:
        body["description"] = description
    return expect(api.post(f"/projects/{pid}/buckets", body), 201)


def create_table(api, pid, bucket, name, columns, primary_key=None):
    body = {"name": name, "columns": columns}
    if primary_key is not None:
        body["primary_key"] = primary_key
    return expect(api.post(f"/projects/{pid}/buckets/{bucket}/tables", body), 201)


def list_items(api, path):
    body = expect(api.get(path), 200)
    assert isinstance(body, dict) and isinstance(body.get("items"), list), f"GET {path}: no items list: {body}"
    return body["items"]


def table_names(api, pid, bucket):
    return sorted(t["name"] for t in list_items(api, f"/projects/{pid}/buckets/{bucket}/tables"))


def project_stats(api, pid):
    body = expect(api.get(f"/projects/{pid}"), 200)
    return body["stats"]


# -- metrics ---------------------------------------------------------------------------------------

_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


def parse_metrics(text):
    """Prometheus text format -> list of (name, {labels}, float value)."""
    samples = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)", line)
        assert m, f"bad metrics line {line!r}"
        name, rest = m.group(1), line[m.end():]
        labels = {}
        if rest.startswith("{"):
            rest = rest[1:]
            while True:
                rest = rest.lstrip()
                if rest.startswith("}"):
                    rest = rest[1:]
                    break
                lm = _LABEL.match(rest)
                assert lm, f"bad labels in metrics line {line!r}"
                labels[lm.group(1)] = lm.group(2).replace('\\"', '"').replace("\\\\", "\\")
                rest = rest[lm.end():]
        parts = rest.split()
        assert parts, f"metrics line without a value {line!r}"
        samples.append((name, labels, float(parts[0])))
    return samples


def metric(samples, name, **labels):
    """The single value of a sample matching name and labels (labels may be a subset)."""
    found = [v for n, l, v in samples if n == name and all(l.get(k) == v2 for k, v2 in labels.items())]
    assert len(found) == 1, f"expected one sample {name}{labels}, found {len(found)}"
    return found[0]


def get_metrics(admin):
    r = admin.get("/metrics")
    assert r.status_code == 200, describe(r)
    return parse_metrics(r.text)


# -- threads ---------------------------------------------------------------------------------------

def hold_body(server, n):
    """Opens a connection that sends a POST /projects announcing 1 MiB of JSON and only its first n bytes
    (the rest never comes), and waits until the server holds them in DUCKSTORE_BODY_MEMORY (the metric
    duckstore_http_body_bytes). Returns the socket: closing it gives the bytes back."""
    admin = server.api()
    host, port = server.url.split("//", 1)[1].rsplit(":", 1)
    slow = socket.create_connection((host, int(port)), timeout=10)
    head = (f"POST /projects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.admin_key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {1 << 20}\r\n\r\n").encode()
    slow.sendall(head + b'{"id": "slow", "name": "' + b"s" * (n - 24))
    wait_for(lambda: metric(parse_metrics(admin.get("/metrics").text), "duckstore_http_body_bytes") >= n,
             "the server to hold the slow client's body", timeout=20)
    return slow


def run_threads(n, fn):
    """Run fn(i) in n threads released together; return results (exceptions re-raised)."""
    barrier = threading.Barrier(n)
    results = [None] * n
    errors = [None] * n

    def body(i):
        try:
            barrier.wait(timeout=30)
            results[i] = fn(i)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors[i] = e

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=REQUEST_TIMEOUT * 4)
        assert not t.is_alive(), "a client thread hung"
    for e in errors:
        if e is not None:
            raise e
    return results


def server_factory_fixture(tmp_path, server_cls=None):
    """The body of every suite's `server_factory` fixture (a generator: use `yield from`).

    Yields make(env=None, admin_key=GENERATE, start=True) -> server_cls instance, each in its own
    directory under tmp_path. At teardown every server still running is stopped with SIGTERM and
    must exit with code 0, or the test fails.
    """
    import pytest

    server_cls = server_cls or Server
    servers = []

    def make(env=None, admin_key=GENERATE, start=True):
        s = server_cls(tmp_path / f"s{len(servers)}", admin_key=admin_key, env=env)
        servers.append(s)
        if start:
            s.start()
        return s

    yield make

    problems = []
    for s in servers:
        if s.running:
            rc = s.stop(check=False)
            if rc != 0:
                problems.append(f"{s.base_dir}: exit code {rc} after SIGTERM (expected 0)\n{s.log_tail()}")
    if problems:
        pytest.fail("\n".join(problems))
