"""Many Execute calls at once, over one shared HTTP/2 connection and over many, and over the bridge:
every call is answered correctly and nothing is lost."""

import threading

import grpc

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
