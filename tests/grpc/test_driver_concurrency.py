"""Many Execute calls at once, over one shared HTTP/2 connection and over many, and over the bridge:
every call is answered correctly and nothing is lost."""

import threading

import grpc
import requests

from driver_lib import (METHOD, REQUEST_TIMEOUT, Driver, bucket_pb2, common_pb2, info_pb2, project_pb2, request,
                        table_pb2)

CALLS = 32
PROJECTS = 4
T = table_pb2.TableColumnShared


def setup_projects(server):
    d = Driver(server, "grpc")
    keys = {}
    for i in range(PROJECTS):
        pid = f"c{i}"
        keys[pid] = d.run(project_pb2.CreateProjectCommand(projectId=pid), server.admin_key,
                          response_type=project_pb2.CreateProjectResponse).projectPassword
        d.run(bucket_pb2.CreateBucketCommand(bucketId="in.c-load"), keys[pid], pid, bucket_pb2.CreateBucketResponse)
    d.close()
    return keys


def run_together(n, fn):
    barrier = threading.Barrier(n)
    results, errors = [None] * n, [None] * n

    def body(i):
        try:
            barrier.wait(timeout=30)
            results[i] = fn(i)
        except BaseException as e:  # noqa: BLE001 - re-raised below
            errors[i] = e

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=REQUEST_TIMEOUT * 2)
        assert not t.is_alive(), "a client hung"
    for e in errors:
        if e is not None:
            raise e
    return results


def check_tables(server, keys, names):
    d = Driver(server, "grpc")
    for pid, key in keys.items():
        info = d.run(info_pb2.ObjectInfoCommand(path=["in.c-load"], expectedObjectType=info_pb2.SCHEMA), key, pid,
                     info_pb2.ObjectInfoResponse)
        got = sorted(o.objectName for o in info.schemaInfo.objects)
        assert got == sorted(n for p, n in names if p == pid), f"{pid}: {got}"
    d.close()


def create_and_describe(driver, keys, i):
    pid = f"c{i % PROJECTS}"
    name = f"t{i:02d}"
    created = driver.run(table_pb2.CreateTableCommand(
        path=["in.c-load"], tableName=name,
        columns=[T(name="id", type="BIGINT"), T(name=f"v{i}", type="DOUBLE", nullable=True)],
        primaryKeysNames=["id"]), keys[pid], pid, info_pb2.ObjectInfoResponse)
    assert created.tableInfo.tableName == name
    info = driver.run(info_pb2.ObjectInfoCommand(path=["in.c-load", name], expectedObjectType=info_pb2.TABLE),
                      keys[pid], pid, info_pb2.ObjectInfoResponse)
    assert [(c.name, c.type) for c in info.tableInfo.columns] == [("id", "BIGINT"), (f"v{i}", "DOUBLE")]
    return pid, name


def test_32_concurrent_calls_on_one_channel(server):
    """One HTTP/2 connection multiplexing 32 calls at once (how a real driver client behaves)."""
    keys = setup_projects(server)
    channel = grpc.insecure_channel(server.grpc_target)
    stub = channel.unary_unary(METHOD, request_serializer=common_pb2.DriverRequest.SerializeToString,
                               response_deserializer=common_pb2.DriverResponse.FromString)

    def call(i):
        pid = f"c{i % PROJECTS}"
        name = f"t{i:02d}"
        req = request(table_pb2.CreateTableCommand(path=["in.c-load"], tableName=name,
                                                   columns=[T(name="id", type="INTEGER")]), keys[pid], pid)
        resp = stub(req, timeout=REQUEST_TIMEOUT)
        out = info_pb2.ObjectInfoResponse()
        assert resp.commandResponse.Unpack(out) and out.tableInfo.tableName == name
        return pid, name

    names = run_together(CALLS, call)
    channel.close()
    check_tables(server, keys, names)


def test_32_concurrent_calls_on_separate_channels(server):
    keys = setup_projects(server)

    def call(i):
        d = Driver(server, "grpc")
        try:
            return create_and_describe(d, keys, i)
        finally:
            d.close()

    check_tables(server, keys, run_together(CALLS, call))


def test_32_concurrent_bridge_calls(server):
    keys = setup_projects(server)

    def call(i):
        d = Driver(server, "bridge")
        try:
            return create_and_describe(d, keys, i)
        finally:
            d.close()

    check_tables(server, keys, run_together(CALLS, call))


def test_long_import_does_not_block_other_calls(server):
    """While one call runs a long import, other calls (other projects, the same project's reads)
    keep being answered promptly: commands never run on the threads that serve the connection."""
    import time

    keys = setup_projects(server)
    d = Driver(server, "grpc")
    X = table_pb2.ImportExportShared
    d.run(table_pb2.CreateTableCommand(path=["in.c-load"], tableName="big", columns=[
        T(name="a", nullable=True), T(name="b", nullable=True), T(name="c", nullable=True)]),
        keys["c0"], "c0", info_pb2.ObjectInfoResponse)
    data = b"a,b,c\n" + b"".join(b"%d,value-%d,%d\n" % (i, i, i * 7) for i in range(1_000_000))
    r = requests.post(f"{server.url}/projects/c0/files", params={"name": "big.csv"}, data=data,
                      headers={"Authorization": f"Bearer {keys['c0']}"}, timeout=REQUEST_TIMEOUT * 4)
    assert r.status_code == 201, r.text

    done = {}

    def long_import():
        big = Driver(server, "grpc")
        try:
            cmd = table_pb2.TableImportFromFileCommand(
                fileProvider=X.S3, fileFormat=X.CSV, filePath=X.FilePath(fileName="big.csv"),
                destination=X.Table(path=["in.c-load"], tableName="big"),
                importOptions=X.ImportOptions(numberOfIgnoredLines=1))
            done["rows"] = big.run(cmd, keys["c0"], "c0", table_pb2.TableImportResponse).tableRowsCount
        except BaseException as e:  # noqa: BLE001 - reported below
            done["error"] = e
        finally:
            done["at"] = time.monotonic()
            big.close()

    t = threading.Thread(target=long_import, daemon=True)
    t.start()
    answered, slowest, i = [], 0.0, 0
    while t.is_alive() and i < 2000:
        pid = f"c{1 + i % (PROJECTS - 1)}"
        start = time.monotonic()
        if i % 2:
            d.run(info_pb2.ListSchemasCommand(), keys[pid], pid, info_pb2.ListSchemasResponse)
        else:
            d.run(info_pb2.ObjectInfoCommand(path=["in.c-load"], expectedObjectType=info_pb2.SCHEMA), keys["c0"],
                  "c0", info_pb2.ObjectInfoResponse)
        end = time.monotonic()
        slowest = max(slowest, end - start)
        answered.append(end)
        i += 1
    t.join(timeout=REQUEST_TIMEOUT * 4)
    assert not t.is_alive(), "the import hung"
    assert "error" not in done, done.get("error")
    assert done["rows"] == 1_000_000
    during = [a for a in answered if a < done["at"]]
    assert len(during) >= 5, f"only {len(during)} calls were answered while the import ran"
    assert slowest < 5.0, f"a small call took {slowest:.2f}s during the import"
    d.close()
