"""gRPC call semantics beyond the command itself: deadlines and cancellation (the command's work
stops and rolls back), `authorization: Bearer` metadata, message size limits, gzip from clients."""

import threading
import time

import grpc
import pytest
import requests

from e2e_lib import wait_for
from driver_lib import (METHOD, REQUEST_TIMEOUT, Driver, DriverError, bucket_pb2, common_pb2, credentials_pb2,
                        expect_error, info_pb2, pack, project_pb2, request, table_pb2)

T = table_pb2.TableColumnShared
X = table_pb2.ImportExportShared
ROWS = 1_000_000


def raw_stub(channel):
    return channel.unary_unary(METHOD, request_serializer=lambda b: b, response_deserializer=lambda b: b)


def new_project(d, admin_key, pid):
    return d.run(project_pb2.CreateProjectCommand(projectId=pid), admin_key,
                 response_type=project_pb2.CreateProjectResponse).projectPassword


def big_import_setup(server):
    """A project with table in.c-load.big (3 string columns, 2 rows) and a Storage File big.csv of ROWS rows."""
    d = Driver(server, "grpc")
    key = new_project(d, server.admin_key, "p")
    d.run(bucket_pb2.CreateBucketCommand(bucketId="in.c-load"), key, "p", bucket_pb2.CreateBucketResponse)
    d.run(table_pb2.CreateTableCommand(path=["in.c-load"], tableName="big", columns=[
        T(name="a", nullable=True), T(name="b", nullable=True), T(name="c", nullable=True)]),
        key, "p", info_pb2.ObjectInfoResponse)
    for name, rows in [("small.csv", 2), ("big.csv", ROWS)]:
        data = b"a,b,c\n" + b"".join(b"%d,value-%d,%d\n" % (i, i, i * 7) for i in range(rows))
        r = requests.post(f"{server.url}/projects/p/files", params={"name": name}, data=data,
                          headers={"Authorization": f"Bearer {key}"}, timeout=REQUEST_TIMEOUT * 4)
        assert r.status_code == 201, r.text
    d.run(import_cmd("small.csv"), key, "p", table_pb2.TableImportResponse)
    return d, key


def import_cmd(name):
    return table_pb2.TableImportFromFileCommand(
        fileProvider=X.S3, fileFormat=X.CSV, filePath=X.FilePath(fileName=name),
        destination=X.Table(path=["in.c-load"], tableName="big"),
        importOptions=X.ImportOptions(importType=X.ImportOptions.FULL, numberOfIgnoredLines=1))


def start_long_import(server, key):
    """Starts a FULL import of big.csv on its own channel; returns the thread and a dict that gets
    "rows" (its table row count) or "error"."""
    done = {}

    def long_import():
        a = Driver(server, "grpc")
        try:
            done["rows"] = a.run(import_cmd("big.csv"), key, "p", table_pb2.TableImportResponse).tableRowsCount
        except BaseException as e:  # noqa: BLE001 - reported by the test
            done["error"] = e
        finally:
            a.close()

    t = threading.Thread(target=long_import, daemon=True)
    t.start()
    return t, done


def table_rows(d, key):
    info = d.run(info_pb2.ObjectInfoCommand(path=["in.c-load", "big"], expectedObjectType=info_pb2.TABLE), key, "p",
                 info_pb2.ObjectInfoResponse)
    return info.tableInfo.rowsCount


def import_log_records(server):
    return [r for r in server.request_records() if r.get("route", "").endswith("TableImportFromFileCommand")]


# ---- deadlines and cancellation ----------------------------------------------------------------------


def test_deadline_interrupts_a_long_import_and_rolls_it_back(server):
    d, key = big_import_setup(server)
    body = request(import_cmd("big.csv"), key, "p").SerializeToString()
    with grpc.insecure_channel(server.grpc_target) as ch:
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            raw_stub(ch)(body, timeout=0.2)
        took = time.monotonic() - t0
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert took < 2.0, f"DEADLINE_EXCEEDED came after {took:.2f}s"
    # The server stops the work: the call ends (cancelled, 499) long before a full import would.
    wait_for(lambda: len(import_log_records(server)) == 2, "the access-log line of the cancelled import")
    cancelled = import_log_records(server)[-1]
    assert cancelled["status"] == 499, cancelled
    assert table_rows(d, key) == 2, "the interrupted import changed the table"

    # The server is fine: the same import without a deadline completes, and takes far longer.
    t0 = time.monotonic()
    assert d.run(import_cmd("big.csv"), key, "p", table_pb2.TableImportResponse).tableRowsCount == ROWS
    full_ms = (time.monotonic() - t0) * 1000
    assert cancelled["duration_ms"] < full_ms / 2, (cancelled["duration_ms"], full_ms)
    assert table_rows(d, key) == ROWS
    d.close()


def test_client_cancel_interrupts_a_long_import_and_rolls_it_back(server):
    d, key = big_import_setup(server)
    body = request(import_cmd("big.csv"), key, "p").SerializeToString()
    with grpc.insecure_channel(server.grpc_target) as ch:
        fut = raw_stub(ch).future(body, timeout=120)
        time.sleep(0.3)
        assert fut.cancel(), "the call had already finished"
        with pytest.raises(grpc.FutureCancelledError):
            fut.result()
    wait_for(lambda: len(import_log_records(server)) == 2, "the access-log line of the cancelled import")
    cancelled = import_log_records(server)[-1]
    assert cancelled["status"] == 499, cancelled
    assert table_rows(d, key) == 2, "the cancelled import changed the table"
    t0 = time.monotonic()
    assert d.run(import_cmd("big.csv"), key, "p", table_pb2.TableImportResponse).tableRowsCount == ROWS
    full_ms = (time.monotonic() - t0) * 1000
    assert cancelled["duration_ms"] < full_ms / 2, (cancelled["duration_ms"], full_ms)
    d.close()


def test_deadline_while_waiting_for_the_table_gives_up_its_place(server):
    """A call queued behind a long import of the same table stops waiting at its deadline (its
    thread is free again while the import still runs), never runs later, and the queue goes on."""
    d, key = big_import_setup(server)
    t, done = start_long_import(server, key)
    time.sleep(0.3)  # the import holds the table's write slot
    body = request(import_cmd("small.csv"), key, "p").SerializeToString()
    with grpc.insecure_channel(server.grpc_target) as ch:
        with pytest.raises(grpc.RpcError) as e:
            raw_stub(ch)(body, timeout=0.3)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    wait_for(lambda: len(import_log_records(server)) == 2 or not t.is_alive(), "the queued call to end")
    assert t.is_alive(), "the queued call ended only after the import it waited for"
    assert import_log_records(server)[-1]["status"] == 499
    t.join(timeout=REQUEST_TIMEOUT * 4)
    assert "error" not in done, done.get("error")
    assert done["rows"] == ROWS
    time.sleep(0.3)
    assert table_rows(d, key) == ROWS, "the cancelled import of small.csv ran after all"
    # The queue goes on: the next import of the table runs.
    d.run(import_cmd("small.csv"), key, "p", table_pb2.TableImportResponse)
    assert table_rows(d, key) == 2
    d.close()


def test_a_write_that_would_finish_after_its_deadline_fails_at_once(server):
    """A call's deadline bounds its wait for the table's write queue: when the turns ahead and its
    own are expected to end after the deadline, it fails at once with RESOURCE_EXHAUSTED
    (queue_full) and changes nothing, rather than running out its deadline in the queue."""
    d, key = big_import_setup(server)
    started = time.monotonic()
    d.run(import_cmd("big.csv"), key, "p", table_pb2.TableImportResponse)  # the queue learns a long turn
    turn = time.monotonic() - started

    def queue_held():
        text = requests.get(server.url + "/metrics", headers={"Authorization": f"Bearer {server.admin_key}"},
                            timeout=REQUEST_TIMEOUT).text
        return any(line.startswith("duckstore_queue_held ") and float(line.split()[1]) >= 1
                   for line in text.splitlines())

    t, done = start_long_import(server, key)
    wait_for(queue_held, "the long import to take the table's turn", timeout=turn * 5 + 10)
    body = request(import_cmd("small.csv"), key, "p").SerializeToString()
    with grpc.insecure_channel(server.grpc_target) as ch:
        with pytest.raises(grpc.RpcError) as e:
            raw_stub(ch)(body, timeout=max(0.05, turn / 4))
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, f"{e.value.code()}: {e.value.details()}"
    assert "busy" in e.value.details() and "it may wait" in e.value.details(), e.value.details()
    t.join(timeout=REQUEST_TIMEOUT * 4)
    assert "error" not in done, done.get("error")
    assert done["rows"] == ROWS
    time.sleep(0.3)
    assert table_rows(d, key) == ROWS, "the refused import of small.csv ran after all"
    d.close()


# ---- authorization metadata ---------------------------------------------------------------------------


def call_md(server, command, metadata, key=None, host="", creds=None, response_type=None):
    body = request(command, key, host, creds).SerializeToString()
    with grpc.insecure_channel(server.grpc_target) as ch:
        try:
            data = raw_stub(ch)(body, timeout=REQUEST_TIMEOUT, metadata=metadata)
        except grpc.RpcError as e:
            md = dict(e.trailing_metadata() or ())
            raise DriverError("grpc", e.code(), e.details(), int(md["keboola-code"])) from None
    resp = common_pb2.DriverResponse.FromString(data)
    if response_type is None:
        return resp
    out = response_type()
    assert resp.commandResponse.Unpack(out)
    return out


def bearer(key):
    return [("authorization", f"Bearer {key}")]


def test_bearer_metadata_authenticates_like_credentials(server):
    # The admin key in metadata alone (no credentials at all) runs an admin command.
    created = call_md(server, project_pb2.CreateProjectCommand(projectId="m1"), bearer(server.admin_key),
                      response_type=project_pb2.CreateProjectResponse)
    key = created.projectPassword
    # A project key in metadata, the project in credentials.host (no secret there).
    only_host = pack(credentials_pb2.GenericBackendCredentials(host="m1"))
    out = call_md(server, bucket_pb2.CreateBucketCommand(bucketId="in.c-md"), bearer(key), creds=only_host,
                  response_type=bucket_pb2.CreateBucketResponse)
    assert out.createBucketObjectName == "in.c-md"
    # The same key in both places is fine; the scheme is case-insensitive.
    call_md(server, info_pb2.ListSchemasCommand(), [("authorization", f"bearer {key}")], key=key, host="m1")


def test_bearer_metadata_follows_the_same_rules(server):
    key1 = call_md(server, project_pb2.CreateProjectCommand(projectId="r1"), bearer(server.admin_key),
                   response_type=project_pb2.CreateProjectResponse).projectPassword
    call_md(server, project_pb2.CreateProjectCommand(projectId="r2"), bearer(server.admin_key))
    only = pack(credentials_pb2.GenericBackendCredentials(host="r2"))
    # A project key on another project, or on an admin command: PERMISSION_DENIED.
    expect_error(lambda: call_md(server, info_pb2.ListSchemasCommand(), bearer(key1), creds=only),
                 grpc.StatusCode.PERMISSION_DENIED, 2007)
    expect_error(lambda: call_md(server, project_pb2.CreateProjectCommand(projectId="r3"), bearer(key1)),
                 grpc.StatusCode.PERMISSION_DENIED, 2007)
    # An unknown key, a malformed header, an empty key: UNAUTHENTICATED, nothing created.
    expect_error(lambda: call_md(server, project_pb2.CreateProjectCommand(projectId="r4"), bearer("nope")),
                 grpc.StatusCode.UNAUTHENTICATED, 1002)
    expect_error(lambda: call_md(server, project_pb2.CreateProjectCommand(projectId="r4"),
                                 [("authorization", f"Basic {server.admin_key}")]),
                 grpc.StatusCode.UNAUTHENTICATED, 1002, mentions=["Bearer"])
    expect_error(lambda: call_md(server, project_pb2.CreateProjectCommand(projectId="r4"),
                                 [("authorization", "Bearer ")]),
                 grpc.StatusCode.UNAUTHENTICATED, 1002, mentions=["no API key"])
    # Two different keys (credentials and metadata): refused rather than guessing which one counts.
    expect_error(lambda: call_md(server, project_pb2.CreateProjectCommand(projectId="r4"), bearer(key1),
                                 key=server.admin_key),
                 grpc.StatusCode.UNAUTHENTICATED, 1002, mentions=["different"])
    r = requests.get(f"{server.url}/projects/r4", headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=10)
    assert r.status_code == 404, r.text


# ---- message sizes and compression --------------------------------------------------------------------


def padded_request(server, n):
    req = request(info_pb2.ListSchemasCommand(), server.admin_key, "none")
    req.runtimeOptions.runId = "x" * n
    return req.SerializeToString()


def test_max_receive_size_is_configurable_and_counts_after_decompression(server_factory):
    server = server_factory(env={"DUCKSTORE_GRPC_MAX_RECV_BYTES": "64KiB"})
    with grpc.insecure_channel(server.grpc_target) as ch:
        stub = raw_stub(ch)
        # Under the limit: decoded and answered (the project does not exist: NOT_FOUND, not a size error).
        with pytest.raises(grpc.RpcError) as e:
            stub(padded_request(server, 32 * 1024), timeout=REQUEST_TIMEOUT)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND, e.value.details()
        with pytest.raises(grpc.RpcError) as e:
            stub(padded_request(server, 100 * 1024), timeout=REQUEST_TIMEOUT)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e.value.details()
        # 1 MiB of one letter gzips to ~1 KiB: still refused, the limit applies to the decompressed message.
        with pytest.raises(grpc.RpcError) as e:
            stub(padded_request(server, 1 << 20), timeout=REQUEST_TIMEOUT, compression=grpc.Compression.Gzip)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e.value.details()
    assert server.health() == 200


def test_gzip_requests_are_accepted(server):
    body = request(project_pb2.CreateProjectCommand(projectId="gz"), server.admin_key)
    body.runtimeOptions.runId = "compressible " * 1000
    with grpc.insecure_channel(server.grpc_target, compression=grpc.Compression.Gzip) as ch:
        data = raw_stub(ch)(body.SerializeToString(), timeout=REQUEST_TIMEOUT, compression=grpc.Compression.Gzip)
    out = project_pb2.CreateProjectResponse()
    assert common_pb2.DriverResponse.FromString(data).commandResponse.Unpack(out)
    assert out.projectDatabaseName == "gz"
    with grpc.insecure_channel(server.grpc_target) as ch:
        data = raw_stub(ch)(request(info_pb2.ListSchemasCommand(), out.projectPassword, "gz").SerializeToString(),
                            timeout=REQUEST_TIMEOUT, compression=grpc.Compression.Deflate)
    assert common_pb2.DriverResponse.FromString(data).commandResponse.type_url.endswith("ListSchemasResponse")


def test_max_send_size_gives_a_clear_error(server_factory):
    server = server_factory(env={"DUCKSTORE_GRPC_MAX_SEND_BYTES": "2KiB"})
    d = Driver(server, "grpc")
    key = new_project(d, server.admin_key, "s")
    d.run(bucket_pb2.CreateBucketCommand(bucketId="in.c-s"), key, "s", bucket_pb2.CreateBucketResponse)
    cols = [T(name=f"column_with_a_long_name_{i:03d}", nullable=True) for i in range(100)]
    err = expect_error(lambda: d.run(table_pb2.CreateTableCommand(path=["in.c-s"], tableName="wide", columns=cols),
                                     key, "s", info_pb2.ObjectInfoResponse),
                       grpc.StatusCode.RESOURCE_EXHAUSTED, mentions=["DUCKSTORE_GRPC_MAX_SEND_BYTES", "2048"])
    assert "bytes" in err.message
    # Small answers still go out.
    assert d.run(info_pb2.ListSchemasCommand(), key, "s", info_pb2.ListSchemasResponse).schemas == ["in.c-s"]
    d.close()
