"""gRPC serving under load: a fixed pool of workers fed from a bounded queue, fairness between
callers, and authentication before any of the command is decoded (gRPC and the HTTP bridge).

Numbers measured here (threads, peak memory, latencies) are printed; run with -s to see them."""

import statistics
import threading
import time

import grpc
import pytest
import requests

from driver_lib import (METHOD, REQUEST_TIMEOUT, Driver, any_pb2, bucket_pb2, common_pb2, expect_error, info_pb2,
                        pack, project_pb2, request, table_pb2)
from reflection_client import ReflectionClient, standard_modules
from test_grpc_calls import big_import_setup, import_cmd, raw_stub

from e2e_lib import BINARY, hold_body, metric, parse_metrics, wait_for  # noqa: E402

# Under AddressSanitizer (scripts/asan.sh) memory is padded and freed memory quarantined, so peak
# memory says nothing about decoding there; the statuses are still checked.
SANITIZED = "asan" in BINARY.name or "asan" in str(BINARY.parent)

S = grpc.StatusCode
T = table_pb2.TableColumnShared
X = table_pb2.ImportExportShared


def proc_status(server, field):
    """A number from /proc/<pid>/status of the server (kB for memory fields)."""
    with open(f"/proc/{server.proc.pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{server.proc.pid}/status")


def call_error(fn):
    try:
        fn()
    except grpc.RpcError as e:
        return e
    raise AssertionError("the call succeeded")


# ---- authentication before work ------------------------------------------------------------------


def empty_columns_request(n, creds):
    """A DriverRequest with a CreateTableCommand of n empty columns (2 bytes each on the wire),
    serialized by hand: building millions of Python messages would take minutes."""
    cmd = table_pb2.CreateTableCommand(path=["in.c-b"], tableName="t").SerializeToString()
    cmd += b"\x1a\x00" * n  # field 3 (columns), length 0
    any_cmd = any_pb2.Any(type_url="type.googleapis.com/" + table_pb2.CreateTableCommand.DESCRIPTOR.full_name,
                          value=cmd)
    req = common_pb2.DriverRequest(command=any_cmd)
    if creds is not None:
        req.credentials.CopyFrom(creds)
    return req.SerializeToString()


def bad_credentials():
    from driver_lib import credentials
    return pack(credentials("not-a-key-of-this-server", "p"))


@pytest.mark.parametrize("creds", ["none", "invalid"])
def test_unauthenticated_command_is_never_decoded(server, creds):
    """A 16 MB CreateTableCommand of 8 million empty columns, or one of 999,999 (just under the
    repeated-field bound, so the bounds check alone would let it through to the decoder), without
    credentials or with a key that is no key: UNAUTHENTICATED / 401, and the server's peak memory
    barely moves. Decoding would allocate a column struct per entry (over 1 GB for 8 million)."""
    c = None if creds == "none" else bad_credentials()
    huge = empty_columns_request(8_000_000, c)
    under_bound = empty_columns_request(999_999, c)
    assert 15_000_000 < len(huge) <= 16 * 1024 * 1024
    with grpc.insecure_channel(server.grpc_target,
                               options=[("grpc.max_send_message_length", 32 << 20)]) as ch:
        for body in (under_bound, huge):
            before = proc_status(server, "VmHWM")
            e = call_error(lambda: raw_stub(ch)(body, timeout=REQUEST_TIMEOUT * 2))
            grown = proc_status(server, "VmHWM") - before
            print(f"\ngRPC {len(body)} bytes, credentials {creds}: {e.code()}, VmHWM +{grown} kB")
            assert e.code() == S.UNAUTHENTICATED, e.details()
            # gRPC core must hold the received message; the dispatcher reads the envelope across its
            # slices without joining or copying them, so nothing more than the message itself is
            # added (a flat copy would double it; decoding the columns costs 50 times the body).
            assert SANITIZED or grown < len(body) // 1024 + 3 * 1024, f"peak memory grew by {grown} kB"
    for body in (under_bound, huge):
        before = proc_status(server, "VmHWM")
        r = requests.post(server.url + "/driver/execute", data=body, timeout=REQUEST_TIMEOUT * 2,
                          headers={"Content-Type": "application/x-protobuf"})
        grown = proc_status(server, "VmHWM") - before
        print(f"bridge {len(body)} bytes, credentials {creds}: HTTP {r.status_code}, VmHWM +{grown} kB")
        assert r.status_code == 401, r.content[:300]
        msg = common_pb2.DriverResponse.FromString(r.content).messages[-1].message
        assert "Authorization: Bearer" in msg and "DUCKSTORE_UNAUTH_BODY_BYTES" in msg, msg
        # Nothing of an unauthenticated body beyond the 64 KiB cap is kept.
        assert SANITIZED or grown < 4 * 1024, f"peak memory grew by {grown} kB"
    assert server.health() == 200


def test_envelope_is_read_across_received_pieces_in_any_field_order(server):
    """gRPC hands a large message over in many slices; the dispatcher reads the envelope across them
    without joining them. Credentials placed after a 1 MB command (protobuf allows any field order),
    so their bytes come in a late slice, still authenticate, and the command runs."""
    d = Driver(server, "grpc")
    key = d.run(project_pb2.CreateProjectCommand(projectId="order"), server.admin_key,
                response_type=project_pb2.CreateProjectResponse).projectPassword
    d.run(bucket_pb2.CreateBucketCommand(bucketId="in.c-b"), key, "order", bucket_pb2.CreateBucketResponse)
    cmd_any = pack(table_pb2.CreateTableCommand(path=["in.c-b"], tableName="wide", columns=[T(name="a")]))
    # An unknown 1 MiB field in the Any makes the message large without changing the command.
    cmd_any_bytes = cmd_any.SerializeToString() + b"\x1a" + encode_varint(1 << 20) + b"\x00" * (1 << 20)
    from driver_lib import credentials
    creds = common_pb2.DriverRequest(credentials=pack(credentials(key, "order"))).SerializeToString()
    body = b"\x12" + encode_varint(len(cmd_any_bytes)) + cmd_any_bytes + creds
    with grpc.insecure_channel(server.grpc_target) as ch:
        resp = common_pb2.DriverResponse.FromString(raw_stub(ch)(body, timeout=REQUEST_TIMEOUT))
    info = info_pb2.ObjectInfoResponse()
    assert resp.commandResponse.Unpack(info) and info.tableInfo.tableName == "wide"
    assert [c.name for c in info.tableInfo.columns] == ["a"]
    # The same bytes with a key that is no key: refused before the command is looked at.
    bad = b"\x12" + encode_varint(len(cmd_any_bytes)) + cmd_any_bytes + \
        common_pb2.DriverRequest(credentials=bad_credentials()).SerializeToString()
    with grpc.insecure_channel(server.grpc_target) as ch:
        e = call_error(lambda: raw_stub(ch)(bad, timeout=REQUEST_TIMEOUT))
    assert e.code() == S.UNAUTHENTICATED
    d.close()


def encode_varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def test_bridge_body_cap_depends_on_a_valid_bearer_header(server_factory):
    """Without a valid Authorization: Bearer key a bridge body may be at most
    DUCKSTORE_UNAUTH_BODY_BYTES (401 beyond, even with a valid key inside the DriverRequest); with
    one, up to DUCKSTORE_MAX_JSON_BYTES (413 beyond)."""
    server = server_factory(env={"DUCKSTORE_UNAUTH_BODY_BYTES": "2KiB", "DUCKSTORE_MAX_JSON_BYTES": "64KiB"})
    d = Driver(server, "grpc")
    key = d.run(project_pb2.CreateProjectCommand(projectId="cap"), server.admin_key,
                response_type=project_pb2.CreateProjectResponse).projectPassword
    d.run(bucket_pb2.CreateBucketCommand(bucketId="in.c-b"), key, "cap", bucket_pb2.CreateBucketResponse)
    d.close()
    cols = [T(name=f"column_{i:04d}") for i in range(300)]
    body = request(table_pb2.CreateTableCommand(path=["in.c-b"], tableName="wide", columns=cols), key,
                   "cap").SerializeToString()
    assert 2048 < len(body) < 64 * 1024
    url = server.url + "/driver/execute"
    ctype = {"Content-Type": "application/x-protobuf"}
    for headers in ({}, {"Authorization": "Bearer not-a-key"}, {"X-StorageApi-Token": key}):
        r = requests.post(url, data=body, headers={**ctype, **headers}, timeout=REQUEST_TIMEOUT)
        assert r.status_code == 401, (headers, r.content[:300])
        assert r.headers.get("keboola-code") == "1002"
    # A small body needs no header: the credentials inside authenticate it.
    small = request(info_pb2.ObjectInfoCommand(path=["in.c-b"], expectedObjectType=info_pb2.SCHEMA), key,
                    "cap").SerializeToString()
    assert len(small) < 2048
    assert requests.post(url, data=small, headers=ctype, timeout=REQUEST_TIMEOUT).status_code == 200
    r = requests.post(url, data=body, headers={**ctype, "Authorization": f"Bearer {key}"}, timeout=REQUEST_TIMEOUT)
    assert r.status_code == 200, r.content[:300]
    resp = common_pb2.DriverResponse.FromString(r.content)
    out = info_pb2.ObjectInfoResponse()
    assert resp.commandResponse.Unpack(out) and len(out.tableInfo.columns) == 300
    big = request(table_pb2.CreateTableCommand(path=["in.c-b"], tableName="wider",
                                               columns=[T(name=f"c{i:05d}_{'x' * 40}") for i in range(2000)]),
                  key, "cap").SerializeToString()
    assert len(big) > 64 * 1024
    r = requests.post(url, data=big, headers={**ctype, "Authorization": f"Bearer {key}"}, timeout=REQUEST_TIMEOUT)
    assert r.status_code == 413, r.content[:300]


# ---- the pool and its queue ----------------------------------------------------------------------


def test_full_pool_and_queue_answer_resource_exhausted_and_queued_calls_drop_at_their_deadline(server_factory):
    """One worker, one queue slot: a long import runs, a second call waits, a third is
    RESOURCE_EXHAUSTED at once. The waiting call's deadline passes while it waits: it is answered
    DEADLINE_EXCEEDED and never runs (its bucket never appears)."""
    server = server_factory(env={"DUCKSTORE_GRPC_WORKERS": "1", "DUCKSTORE_GRPC_QUEUE": "1",
                                 "DUCKSTORE_GRPC_CALLER_SHARE": "100"})
    d, key = big_import_setup(server)
    with grpc.insecure_channel(server.grpc_target) as ch:
        stub = raw_stub(ch)
        long_call = stub.future(request(import_cmd("big.csv"), key, "p").SerializeToString(), timeout=120)
        time.sleep(0.2)  # the import is on the one worker
        waiting = stub.future(request(bucket_pb2.CreateBucketCommand(bucketId="in.c-never"), key,
                                      "p").SerializeToString(), timeout=0.6)
        time.sleep(0.1)
        t0 = time.monotonic()
        e = call_error(lambda: stub(request(info_pb2.ObjectInfoCommand(path=["in.c-load"],
                                                                       expectedObjectType=info_pb2.SCHEMA),
                                            key, "p").SerializeToString(), timeout=REQUEST_TIMEOUT))
        assert e.code() == S.RESOURCE_EXHAUSTED, e.details()
        assert "DUCKSTORE_GRPC_QUEUE" in e.details()
        assert time.monotonic() - t0 < 1.0
        with pytest.raises(grpc.RpcError) as e:
            waiting.result()
        assert e.value.code() == S.DEADLINE_EXCEEDED
        assert not long_call.done(), "the import ended before the queued call's deadline: the test proves nothing"
        long_call.result()
    dropped = [r for r in server.request_records() if r.get("route", "").endswith("CreateBucketCommand")
               and r.get("status") == 499]
    assert dropped, "the dropped call was not logged as 499"
    with pytest.raises(Exception):
        d.run(info_pb2.ObjectInfoCommand(path=["in.c-never"], expectedObjectType=info_pb2.SCHEMA), key, "p",
              info_pb2.ObjectInfoResponse)
    # The pool serves again.
    d.run(bucket_pb2.CreateBucketCommand(bucketId="in.c-after"), key, "p", bucket_pb2.CreateBucketResponse)
    d.close()


def test_threads_stay_bounded_under_500_concurrent_calls(server):
    """400 calls that never send their message and 100 slow imports (one table: they queue behind
    each other) at once: the server's threads stay at the fixed bound (pollers + workers + health,
    plus gRPC's and DuckDB's own), not one per call; the imports beyond the caller's share are
    RESOURCE_EXHAUSTED; health Check, Watch and reflection keep answering meanwhile."""
    d, key = big_import_setup(server)
    base = proc_status(server, "Threads")
    release = threading.Event()

    def idle():
        release.wait(120)
        return
        yield  # a request iterator that never yields a message

    h = standard_modules()["health"]
    with grpc.insecure_channel(server.grpc_target) as ch:
        idle_stub = ch.stream_unary(METHOD, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        idle_calls = [idle_stub.future(idle(), timeout=120) for _ in range(400)]
        body = request(import_cmd("big.csv"), key, "p").SerializeToString()
        slow = [raw_stub(ch).future(body, timeout=6) for _ in range(100)]
        time.sleep(2.0)
        peak = proc_status(server, "Threads")
        check = ch.unary_unary("/grpc.health.v1.Health/Check", request_serializer=lambda m: m.SerializeToString(),
                               response_deserializer=h.HealthCheckResponse.FromString)
        watch = ch.unary_stream("/grpc.health.v1.Health/Watch", request_serializer=lambda m: m.SerializeToString(),
                                response_deserializer=h.HealthCheckResponse.FromString)
        t0 = time.monotonic()
        assert check(h.HealthCheckRequest(), timeout=5).status == h.HealthCheckResponse.SERVING
        check_ms = (time.monotonic() - t0) * 1000
        stream = watch(h.HealthCheckRequest(), timeout=10)
        assert next(stream).status == h.HealthCheckResponse.SERVING
        stream.cancel()
        refl = ReflectionClient(server.grpc_target)
        try:
            names = [s.name for s in refl.ask_one(list_services="").list_services_response.service]
        finally:
            refl.close()
        assert "grpc.health.v1.Health" in names
        running = proc_status(server, "Threads")
        release.set()
        for f in idle_calls:
            try:
                f.result(timeout=30)
            except grpc.RpcError:
                pass  # no message: INVALID_ARGUMENT or cancelled, either is fine here
        outcomes = []
        for f in slow:
            try:
                f.result()
                outcomes.append("OK")
            except grpc.RpcError as e:
                outcomes.append(e.code().name)
    counts = {o: outcomes.count(o) for o in set(outcomes)}
    print(f"\nthreads: idle {base}, with 500 calls {peak} / {running}; Check took {check_ms:.1f} ms; "
          f"imports: {counts}")
    # 16 workers are started with the server: nothing per call. gRPC core may add a few threads of its own.
    assert max(peak, running) <= base + 8, (base, peak, running)
    assert "RESOURCE_EXHAUSTED" in outcomes and set(outcomes) <= {"OK", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"}
    d.close()


# ---- fairness ------------------------------------------------------------------------------------

# The flood runs in a process of its own, so its 64 client threads do not share the measuring
# client's interpreter (and its lock): the latencies measured are the server's.
FLOOD_SCRIPT = r"""
import json, pickle, sys, threading, time
import grpc
target, bodies_path, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
bodies = pickle.load(open(bodies_path, "rb"))
codes, lock = {}, threading.Lock()
end = time.monotonic() + seconds
def flooder(i):
    with grpc.insecure_channel(target) as ch:
        stub = ch.unary_unary("%s", request_serializer=lambda b: b, response_deserializer=lambda b: b)
        n = i
        while time.monotonic() < end:
            body = bodies[n %% len(bodies)]
            n += 1
            try:
                stub(body, timeout=120)
                code = "OK"
            except grpc.RpcError as e:
                code = e.code().name
                if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    time.sleep(0.1)  # a polite client backs off a little
            with lock:
                codes[code] = codes.get(code, 0) + 1
threads = [threading.Thread(target=flooder, args=(i,)) for i in range(64)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(codes))
""" % METHOD


def measure_under_flood(server_factory, tmp_path, share):
    """Starts a server (8 workers, 32 queue slots, the given caller share), floods project "flood"
    with 64 clients of imports and previews, and measures 200 ObjectInfo calls of project "calm".
    Returns (latencies in ms sorted, calm's errors, the flood's outcomes)."""
    import json
    import pickle
    import subprocess
    import sys

    server = server_factory(env={"DUCKSTORE_GRPC_WORKERS": "8", "DUCKSTORE_GRPC_QUEUE": "32",
                                 "DUCKSTORE_GRPC_CALLER_SHARE": str(share)})
    d = Driver(server, "grpc")
    keys = {}
    for pid in ("flood", "calm"):
        keys[pid] = d.run(project_pb2.CreateProjectCommand(projectId=pid), server.admin_key,
                          response_type=project_pb2.CreateProjectResponse).projectPassword
        d.run(bucket_pb2.CreateBucketCommand(bucketId="in.c-b"), keys[pid], pid, bucket_pb2.CreateBucketResponse)
    for i in range(4):
        d.run(table_pb2.CreateTableCommand(path=["in.c-b"], tableName=f"t{i}", columns=[
            T(name="a", nullable=True), T(name="b", nullable=True)]), keys["flood"], "flood",
            info_pb2.ObjectInfoResponse)
    d.run(table_pb2.CreateTableCommand(path=["in.c-b"], tableName="t", columns=[T(name="a", nullable=True)]),
          keys["calm"], "calm", info_pb2.ObjectInfoResponse)
    d.close()
    data = b"a,b\n" + b"".join(b"%d,row-%d\n" % (i, i) for i in range(50_000))
    r = requests.post(f"{server.url}/projects/flood/files", params={"name": "rows.csv"}, data=data,
                      headers={"Authorization": f"Bearer {keys['flood']}"}, timeout=REQUEST_TIMEOUT)
    assert r.status_code == 201, r.text
    bodies = []
    for i in range(4):
        bodies.append(request(table_pb2.TableImportFromFileCommand(
            fileProvider=X.S3, fileFormat=X.CSV, filePath=X.FilePath(fileName="rows.csv"),
            destination=X.Table(path=["in.c-b"], tableName=f"t{i}"),
            importOptions=X.ImportOptions(importType=X.ImportOptions.FULL, numberOfIgnoredLines=1)),
            keys["flood"], "flood").SerializeToString())
        bodies.append(request(table_pb2.PreviewTableCommand(path=["in.c-b"], tableName=f"t{i}"), keys["flood"],
                              "flood").SerializeToString())
    bodies_path = tmp_path / f"flood-{share}.pickle"
    bodies_path.write_bytes(pickle.dumps(bodies))
    info = request(info_pb2.ObjectInfoCommand(path=["in.c-b", "t"], expectedObjectType=info_pb2.TABLE),
                   keys["calm"], "calm").SerializeToString()
    with grpc.insecure_channel(server.grpc_target) as ch:
        raw_stub(ch)(info, timeout=REQUEST_TIMEOUT)  # warm: the project is open before the flood
    flood = subprocess.Popen([sys.executable, "-c", FLOOD_SCRIPT, server.grpc_target, str(bodies_path), "12"],
                             stdout=subprocess.PIPE, text=True)
    latencies, calm_errors = [], []
    try:
        time.sleep(3.0)  # the flood is in full swing: its workers busy, its queue share full
        with grpc.insecure_channel(server.grpc_target) as ch:
            stub = raw_stub(ch)
            while len(latencies) < 200 and flood.poll() is None:
                t0 = time.monotonic()
                try:
                    stub(info, timeout=REQUEST_TIMEOUT)
                except grpc.RpcError as e:
                    calm_errors.append(e.code().name)
                latencies.append((time.monotonic() - t0) * 1000)
                time.sleep(0.01)
    finally:
        out, _ = flood.communicate(timeout=240)
    return sorted(latencies), calm_errors, json.loads(out)


def test_one_project_flooding_does_not_slow_another(server_factory, tmp_path):
    """64 clients of project "flood" run imports and previews back to back; project "calm" asks
    ObjectInfo meanwhile. With the default share (50%) the flood holds at most 4 of the 8 workers
    and 16 of the 32 queue slots: calm's calls find a free worker at once, its p99 stays low and it
    is never refused, while the flood is held to its share (RESOURCE_EXHAUSTED). (The same flood
    with the share at 100% once made calm's p99 seconds; since imports waiting for a table park
    without a worker and ObjectInfo is served from memory, it no longer does, so that run is no
    longer a useful contrast and is not repeated here.)"""
    lat, calm_errors, flood = measure_under_flood(server_factory, tmp_path, 50)
    p50, p99 = statistics.median(lat), lat[int(len(lat) * 0.99) - 1]
    print(f"\nshare 50%: calm ObjectInfo p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {lat[-1]:.1f} ms; "
          f"calm errors {len(calm_errors)}; flood {flood}")
    assert not calm_errors, calm_errors
    assert len(lat) == 200, f"only {len(lat)} calls were measured while the flood lasted"
    assert flood.get("OK", 0) > 0
    assert flood.get("RESOURCE_EXHAUSTED", 0) > 0, "the flood was never held to its share"
    # 50 ms is the goal, met on a quiet machine (p50 is a few ms); the bound is wider because on a
    # small shared machine the flood's imports compete with the calm calls for the CPU, not for
    # workers.
    assert p99 < 250, f"p99 {p99:.1f} ms"


# ---- parking: commands waiting for a write slot hold no worker ------------------------------------


def _queued_imports_setup(server):
    """Project q with tables big and small and a 60,000-row file: the driver, the project's key, the
    rows, a serialized incremental import of the file into big and a serialized ObjectInfo of small."""
    d = Driver(server, "grpc")
    key = d.run(project_pb2.CreateProjectCommand(projectId="q"), server.admin_key,
                response_type=project_pb2.CreateProjectResponse).projectPassword
    d.run(bucket_pb2.CreateBucketCommand(bucketId="in.c-b"), key, "q", bucket_pb2.CreateBucketResponse)
    for name in ("big", "small"):
        d.run(table_pb2.CreateTableCommand(path=["in.c-b"], tableName=name, columns=[
            T(name="a", nullable=True), T(name="b", nullable=True)]), key, "q", info_pb2.ObjectInfoResponse)
    rows = 60_000
    data = b"a,b\n" + b"".join(b"%d,%s\n" % (i, b"x" * 40) for i in range(rows))
    r = requests.post(f"{server.url}/projects/q/files", params={"name": "rows.csv"}, data=data,
                      headers={"Authorization": f"Bearer {key}"}, timeout=REQUEST_TIMEOUT)
    assert r.status_code == 201, r.text
    body = request(table_pb2.TableImportFromFileCommand(
        fileProvider=X.S3, fileFormat=X.CSV, filePath=X.FilePath(fileName="rows.csv"),
        destination=X.Table(path=["in.c-b"], tableName="big"),
        importOptions=X.ImportOptions(importType=X.ImportOptions.INCREMENTAL, numberOfIgnoredLines=1)),
        key, "q").SerializeToString()
    info = request(info_pb2.ObjectInfoCommand(path=["in.c-b", "small"], expectedObjectType=info_pb2.TABLE),
                   key, "q").SerializeToString()
    return d, key, rows, body, info


@pytest.mark.parametrize("transport", ["grpc", "bridge"])
def test_driver_writes_waiting_for_a_table_hold_no_worker(server_factory, transport):
    """Twelve imports into one table, over gRPC or the HTTP bridge (POST /driver/execute), on a
    server with 4 workers of that transport, all of which the caller may use. The imports waiting
    for the table's write slot are parked without a worker (the prepared call runs again from the
    start when its turn comes), so ObjectInfo calls of the same project still find a free worker
    and every import runs, one after the other, exactly once. (Before, a bridge import waiting for
    its slot held its HTTP worker, and the reads queued behind them.)"""
    from e2e_lib import get_metrics

    workers = 4
    if transport == "grpc":
        env = {"DUCKSTORE_GRPC_WORKERS": str(workers), "DUCKSTORE_GRPC_QUEUE": "64",
               "DUCKSTORE_GRPC_CALLER_SHARE": "100"}
        # Parked calls have a gauge of their own; a gRPC worker is not busy for /metrics.
        waiting_gauge, busy_gauge, metrics_workers = "duckstore_grpc_calls_parked", "duckstore_grpc_workers_busy", 0
    else:
        env = {"DUCKSTORE_HTTP_WORKERS": str(workers), "DUCKSTORE_HTTP_PROJECT_WORKERS": str(workers)}
        waiting_gauge, busy_gauge, metrics_workers = "duckstore_queue_waiting", "duckstore_http_workers_busy", 1
    server = server_factory(env=env)
    d, key, rows, body, info = _queued_imports_setup(server)
    admin = server.api()
    channel = grpc.insecure_channel(server.grpc_target)
    stub = raw_stub(channel)
    headers = {"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {key}"}

    def send(data, timeout):
        """True when the command succeeded."""
        if transport == "grpc":
            try:
                stub(data, timeout=timeout)
                return True
            except grpc.RpcError:
                return False
        return requests.post(f"{server.url}/driver/execute", data=data, headers=headers,
                             timeout=timeout).status_code == 200

    def gauges():
        m = {n: v for n, _, v in get_metrics(admin)}
        return m[waiting_gauge], m[busy_gauge] - metrics_workers

    n_writers = 3 * workers
    done = []
    ts = [threading.Thread(target=lambda: done.append(send(body, 120)), daemon=True) for _ in range(n_writers)]
    for t in ts:
        t.start()
    waiting = 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and waiting < workers:
        waiting = gauges()[0]
        time.sleep(0.02)
    assert waiting >= workers, f"only {waiting} imports parked"
    reads, busy, seen_waiting = [], [], []
    while any(t.is_alive() for t in ts) and len(reads) < 30:
        t0 = time.monotonic()
        assert send(info, REQUEST_TIMEOUT)
        reads.append(time.monotonic() - t0)
        time.sleep(0.05)  # a worker counts as busy until just after its answer went out
        w, b = gauges()
        seen_waiting.append(w)
        busy.append(b)
    for t in ts:
        t.join(120)
    channel.close()
    assert done == [True] * n_writers, done
    assert len(reads) >= 5, f"only {len(reads)} reads while the imports waited"
    assert statistics.median(reads) < 0.2, f"ObjectInfo of the same project while imports waited: {reads}"
    # More imports waited than there are workers, yet at most the running import (and one starting
    # at a hand-over) held a worker: blocked imports would have held all 4 and the reads would queue.
    assert max(seen_waiting) > workers, seen_waiting
    assert max(busy) <= 2, f"{transport} workers busy while imports were parked: {busy}"
    assert gauges()[0] == 0
    info_resp = d.run(info_pb2.ObjectInfoCommand(path=["in.c-b", "big"], expectedObjectType=info_pb2.TABLE), key, "q",
                      info_pb2.ObjectInfoResponse)
    assert info_resp.tableInfo.rowsCount == n_writers * rows
    d.close()


def test_driver_requests_share_the_body_memory_budget_with_rest(server_factory):
    """A gRPC DriverRequest counts against DUCKSTORE_BODY_MEMORY, the budget REST's bodies use, from
    its arrival until its answer: while a slow REST client holds most of it, an Execute whose message
    does not fit is answered RESOURCE_EXHAUSTED naming the setting, and its command never ran; once
    the client goes the same call is served, and every byte is given back."""
    server = server_factory(env={"DUCKSTORE_MAX_JSON_BYTES": "1MiB", "DUCKSTORE_BODY_MEMORY": "1MiB"})
    d = Driver(server, "grpc")
    key = d.run(project_pb2.CreateProjectCommand(projectId="mem"), server.admin_key,
                response_type=project_pb2.CreateProjectResponse).projectPassword
    d.run(bucket_pb2.CreateBucketCommand(bucketId="in.c-b"), key, "mem", bucket_pb2.CreateBucketResponse)
    # The message is made large by 3,000 feature names (a wide table's 3,000 columns made it large too,
    # but creating them took 20-30 s, near the client's deadline): the command itself stays cheap.
    req = request(table_pb2.CreateTableCommand(path=["in.c-b"], tableName="wide", columns=[T(name="id")]), key, "mem")
    req.features.extend(f"f{i:05d}_{'x' * 50}" for i in range(3000))
    body = req.SerializeToString()
    assert 150_000 < len(body) < 1 << 20
    admin = server.api()

    def held():
        return metric(parse_metrics(admin.get("/metrics").text), "duckstore_http_body_bytes")

    slow = hold_body(server, 900_000)
    try:
        expect_error(lambda: d.execute_raw(body), S.RESOURCE_EXHAUSTED, mentions=("DUCKSTORE_BODY_MEMORY",))
        info = info_pb2.ObjectInfoCommand(path=["in.c-b"], expectedObjectType=info_pb2.SCHEMA)
        schema = d.run(info, key, "mem", info_pb2.ObjectInfoResponse)
        assert [o.objectName for o in schema.schemaInfo.objects] == [], "the refused command ran"
    finally:
        slow.close()
    wait_for(lambda: held() == 0, "the slow client's bytes to be given back", timeout=20)
    d.execute_raw(body)
    wait_for(lambda: held() == 0, "the DriverRequest's bytes to be given back")
    schema = d.run(info_pb2.ObjectInfoCommand(path=["in.c-b"], expectedObjectType=info_pb2.SCHEMA), key, "mem",
                   info_pb2.ObjectInfoResponse)
    assert [o.objectName for o in schema.schemaInfo.objects] == ["wide"]
    d.close()
