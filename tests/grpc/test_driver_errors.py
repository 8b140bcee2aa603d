"""Every error class of the driver protocol, over gRPC and over the bridge: the gRPC status (or
its HTTP status on the bridge), a message that says what is wrong, and Keboola's numeric code
("[2004] ..." in the message, trailing metadata "keboola-code" over gRPC, the error LogMessage's
context over the bridge). INTERNAL is not provoked here: no request may reach it on purpose."""

import threading

import grpc
import pytest
import requests

from driver_lib import (REQUEST_TIMEOUT, TYPE_PREFIX, Driver, DriverError, any_pb2, backend_pb2, bucket_pb2,
                        common_pb2, credentials_pb2, executeQuery_pb2, expect_error, info_pb2, pack, project_pb2,
                        request, table_pb2, workspace_pb2)

S = grpc.StatusCode
T = table_pb2.TableColumnShared


def make_project(driver, server, pid):
    created = driver.run(project_pb2.CreateProjectCommand(projectId=pid), server.admin_key,
                         response_type=project_pb2.CreateProjectResponse)
    return created.projectPassword


def make_bucket(driver, key, pid, bucket_id="in.c-b"):
    driver.run(bucket_pb2.CreateBucketCommand(bucketId=bucket_id), key, pid, bucket_pb2.CreateBucketResponse)


# ---- UNIMPLEMENTED ----------------------------------------------------------------------------

PROTOCOL_MODULES = (backend_pb2, bucket_pb2, executeQuery_pb2, info_pb2, project_pb2, table_pb2, workspace_pb2)


def test_every_protocol_command_is_dispatched(server, driver):
    """Every command message of the protocol is in the command table with a handler: with a key that is
    no key each one gets past the table (which answers UNIMPLEMENTED) to UNAUTHENTICATED."""
    commands = [getattr(mod, name) for mod in PROTOCOL_MODULES for name in mod.DESCRIPTOR.message_types_by_name
                if name.endswith("Command")]
    assert len(commands) == 46  # the command list of the protocol reference
    for cls in commands:
        expect_error(lambda: driver.execute(cls(), "no-such-key", "p"), S.UNAUTHENTICATED)


def test_unknown_command_type_is_unimplemented(server, driver):
    for url in (TYPE_PREFIX + "keboola.storageDriver.command.table.NoSuchCommand", "example.com/other.Message"):
        e = expect_error(lambda: driver.execute(any_pb2.Any(type_url=url, value=b"\x08\x01"), server.admin_key),
                         S.UNIMPLEMENTED, keboola_code=900)
        assert url.rsplit("/", 1)[1] in e.message


def test_dev_branch_bucket_needs_the_branch(server, driver):
    """A bucket in a dev branch that was never created (CreateDevBranch) is NOT_FOUND naming it."""
    key = make_project(driver, server, "br")
    e = expect_error(lambda: driver.execute(bucket_pb2.CreateBucketCommand(bucketId="in.c-x", branchId="123"),
                                            key, "br"), S.NOT_FOUND)
    assert "branch" in e.message and "123" in e.message
    # The default branch is the project itself.
    driver.run(bucket_pb2.CreateBucketCommand(bucketId="in.c-x", branchId="1", isBranchDefault=True), key, "br",
               bucket_pb2.CreateBucketResponse)


def test_command_is_decoded_only_after_authentication(server, driver):
    """The envelope (command type) is checked first; the command itself is decoded only once the key
    is authenticated: a malformed command without credentials, or with a key that is no key, is
    UNAUTHENTICATED; with the admin key it is reported as malformed."""
    unknown = any_pb2.Any(type_url=TYPE_PREFIX + "keboola.Nope", value=b"")
    expect_error(lambda: driver.execute(unknown), S.UNIMPLEMENTED)
    garbage = any_pb2.Any(type_url=TYPE_PREFIX + table_pb2.CreateTableCommand.DESCRIPTOR.full_name,
                          value=b"\xff\xff\xff\xff")
    expect_error(lambda: driver.execute(garbage), S.UNAUTHENTICATED, keboola_code=1002)
    expect_error(lambda: driver.execute(garbage, key="not-a-key", host="p"), S.UNAUTHENTICATED,
                 keboola_code=1002, mentions=["invalid API key"])
    e = expect_error(lambda: driver.execute(garbage, key=server.admin_key, host="p"), S.INVALID_ARGUMENT,
                     keboola_code=3000)
    assert "malformed" in e.message and "CreateTableCommand" in e.message
    expect_error(lambda: driver.execute(info_pb2.ListSchemasCommand()), S.UNAUTHENTICATED)


# ---- INVALID_ARGUMENT -------------------------------------------------------------------------

def test_invalid_arguments(server, driver):
    key = make_project(driver, server, "inv")
    make_bucket(driver, key, "inv")
    cases = [
        (table_pb2.CreateTableCommand(path=["inv", "in.c-b"], tableName="t", columns=[T(name="a")]), ["path"]),
        (table_pb2.CreateTableCommand(path=["in.c-b"], tableName="", columns=[T(name="a")]), ["tableName"]),
        (table_pb2.CreateTableCommand(path=["in.c-b"], tableName="t", columns=[T(name="a", type="NOPE")]), ["NOPE"]),
        (table_pb2.CreateTableCommand(path=["in.c-b"], tableName="t", columns=[]), ["column"]),
        (table_pb2.CreateTableCommand(path=["in.c-b"], tableName="t", columns=[T(name="a")],
                                      primaryKeysNames=["zz"]), ["zz"]),
        (bucket_pb2.CreateBucketCommand(bucketId=""), ["bucketId"]),
        (bucket_pb2.CreateBucketCommand(bucketId="in.bad name!"), []),
        (bucket_pb2.DropBucketCommand(bucketObjectName=""), ["bucketObjectName"]),
        (info_pb2.ObjectInfoCommand(path=["in.c-b"], expectedObjectType=info_pb2.TABLE), ["path"]),
        (info_pb2.ObjectInfoCommand(path=["a", "b", "c"], expectedObjectType=info_pb2.SCHEMA), ["path"]),
        (info_pb2.ObjectInfoCommand(path=["other"], expectedObjectType=info_pb2.DATABASE), ["path"]),
    ]
    for command, mentions in cases:
        expect_error(lambda: driver.execute(command, key, "inv"), S.INVALID_ARGUMENT, keboola_code=3000,
                     mentions=mentions)
    # The project comes from credentials.host.
    expect_error(lambda: driver.execute(info_pb2.ListSchemasCommand(), key, ""), S.INVALID_ARGUMENT,
                 mentions=["host"])
    # Project lifecycle commands need the project's name.
    for command in (project_pb2.CreateProjectCommand(), project_pb2.UpdateProjectCommand(),
                    project_pb2.DropProjectCommand()):
        expect_error(lambda: driver.execute(command, server.admin_key), S.INVALID_ARGUMENT, keboola_code=3000)
    # Credentials of another type.
    other = pack(bucket_pb2.CreateBucketResponse(createBucketObjectName="x"))
    expect_error(lambda: driver.execute(info_pb2.ListSchemasCommand(), creds=other), S.INVALID_ARGUMENT,
                 mentions=["GenericBackendCredentials"])
    # Nothing was created by any of them.
    schema = driver.run(info_pb2.ObjectInfoCommand(path=["in.c-b"], expectedObjectType=info_pb2.SCHEMA), key, "inv",
                        info_pb2.ObjectInfoResponse)
    assert list(schema.schemaInfo.objects) == []
    assert list(driver.run(info_pb2.ListSchemasCommand(), key, "inv", info_pb2.ListSchemasResponse).schemas) == \
        ["in.c-b"]


# ---- NOT_FOUND --------------------------------------------------------------------------------

def test_not_found(server, driver):
    key = make_project(driver, server, "nf")
    make_bucket(driver, key, "nf")
    e = expect_error(lambda: driver.execute(
        info_pb2.ObjectInfoCommand(path=["in.c-b", "missing"], expectedObjectType=info_pb2.TABLE), key, "nf"),
        S.NOT_FOUND, keboola_code=2004, mentions=["missing"])
    assert e.message.startswith("[2004] ")
    expect_error(lambda: driver.execute(
        info_pb2.ObjectInfoCommand(path=["in.c-nope"], expectedObjectType=info_pb2.SCHEMA), key, "nf"),
        S.NOT_FOUND, keboola_code=2003, mentions=["in.c-nope"])
    expect_error(lambda: driver.execute(table_pb2.DropTableCommand(path=["in.c-b"], tableName="missing"), key, "nf"),
                 S.NOT_FOUND, keboola_code=2004)
    expect_error(lambda: driver.execute(bucket_pb2.DropBucketCommand(bucketObjectName="in.c-zz"), key, "nf"),
                 S.NOT_FOUND)
    expect_error(lambda: driver.execute(info_pb2.ListSchemasCommand(), server.admin_key, "ghost"),
                 S.NOT_FOUND, mentions=["ghost"])
    expect_error(lambda: driver.execute(project_pb2.DropProjectCommand(projectDatabaseName="ghost"),
                                        server.admin_key), S.NOT_FOUND)


# ---- UNAUTHENTICATED / PERMISSION_DENIED ------------------------------------------------------

def test_unauthenticated(server, driver):
    make_project(driver, server, "ua")
    cmd = info_pb2.ListSchemasCommand()
    expect_error(lambda: driver.execute(cmd), S.UNAUTHENTICATED, keboola_code=1002, mentions=["credentials"])
    expect_error(lambda: driver.execute(cmd, creds=pack(credentials_pb2.GenericBackendCredentials(host="ua"))),
                 S.UNAUTHENTICATED, keboola_code=1002)
    expect_error(lambda: driver.execute(cmd, "not-a-key", "ua"), S.UNAUTHENTICATED, keboola_code=1002)
    expect_error(lambda: driver.execute(backend_pb2.InitBackendCommand(), "not-a-key"), S.UNAUTHENTICATED)


def test_permission_denied(server, driver):
    key_a = make_project(driver, server, "pa")
    make_project(driver, server, "pb")
    expect_error(lambda: driver.execute(info_pb2.ListSchemasCommand(), key_a, "pb"), S.PERMISSION_DENIED,
                 keboola_code=2007, mentions=["pb"])
    expect_error(lambda: driver.execute(bucket_pb2.CreateBucketCommand(bucketId="in.c-x"), key_a, "pb"),
                 S.PERMISSION_DENIED)
    # Backend and project lifecycle need the admin key.
    for command in (backend_pb2.InitBackendCommand(), backend_pb2.RemoveBackendCommand(),
                    project_pb2.CreateProjectCommand(projectId="pc"), project_pb2.UpdateProjectCommand(projectId="pa"),
                    project_pb2.DropProjectCommand(projectDatabaseName="pa")):
        expect_error(lambda: driver.execute(command, key_a, "pa"), S.PERMISSION_DENIED, keboola_code=2007)
    # Nothing happened to project pb or pa.
    assert list(driver.run(info_pb2.ListSchemasCommand(), key_a, "pa", info_pb2.ListSchemasResponse).schemas) == []


# ---- ALREADY_EXISTS / FAILED_PRECONDITION -----------------------------------------------------

def test_already_exists(server, driver):
    key = make_project(driver, server, "ae")
    expect_error(lambda: driver.execute(project_pb2.CreateProjectCommand(projectId="ae"), server.admin_key),
                 S.ALREADY_EXISTS, keboola_code=2006)
    make_bucket(driver, key, "ae")
    expect_error(lambda: driver.execute(bucket_pb2.CreateBucketCommand(bucketId="in.c-b"), key, "ae"),
                 S.ALREADY_EXISTS, mentions=["in.c-b"])
    create = table_pb2.CreateTableCommand(path=["in.c-b"], tableName="t", columns=[T(name="a", nullable=True)])
    driver.run(create, key, "ae", info_pb2.ObjectInfoResponse)
    expect_error(lambda: driver.execute(create, key, "ae"), S.ALREADY_EXISTS, keboola_code=2006)


def test_remove_backend_with_projects_is_a_failed_precondition(server, driver):
    make_project(driver, server, "fp")
    expect_error(lambda: driver.execute(backend_pb2.RemoveBackendCommand(), server.admin_key),
                 S.FAILED_PRECONDITION, keboola_code=3000)


# ---- RESOURCE_EXHAUSTED -----------------------------------------------------------------------

@pytest.mark.parametrize("transport", ["grpc", "bridge"])
def test_full_write_queue_is_resource_exhausted(server_factory, transport):
    """With DUCKSTORE_QUEUE_DEPTH=1 a burst of DDL on one project overflows the queue: the overflow
    is RESOURCE_EXHAUSTED (429 on the bridge), the rest succeed, nothing hangs or half-happens."""
    server = server_factory(env={"DUCKSTORE_QUEUE_DEPTH": "1"})
    setup = Driver(server, transport)
    key = make_project(setup, server, "q")
    make_bucket(setup, key, "q")
    created, exhausted = set(), []
    for attempt in range(5):
        barrier = threading.Barrier(48)
        results = [None] * 48

        def client(i, attempt=attempt):
            d = Driver(server, transport)
            name = f"t{attempt}_{i}"
            cmd = table_pb2.CreateTableCommand(path=["in.c-b"], tableName=name,
                                               columns=[T(name="a", type="INTEGER", nullable=True)])
            barrier.wait(timeout=30)
            try:
                d.execute(cmd, key, "q")
                results[i] = (name, None)
            except DriverError as e:
                results[i] = (name, e)
            finally:
                d.close()

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(48)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=REQUEST_TIMEOUT * 2)
            assert not t.is_alive(), "a client hung"
        for name, e in results:
            if e is None:
                created.add(name)
            else:
                assert e.code == S.RESOURCE_EXHAUSTED, e
                assert e.keboola_code == 2006, e
                exhausted.append(e)
        if exhausted:
            break
    assert exhausted, "no call was turned away by a full queue"
    listed = driver_tables(setup, key, "q")
    assert listed == created, f"listed {sorted(listed)} but acknowledged {sorted(created)}"
    setup.close()


def driver_tables(driver, key, pid):
    info = driver.run(info_pb2.ObjectInfoCommand(path=["in.c-b"], expectedObjectType=info_pb2.SCHEMA), key, pid,
                      info_pb2.ObjectInfoResponse)
    return {o.objectName for o in info.schemaInfo.objects}


# ---- UNAVAILABLE ------------------------------------------------------------------------------

def test_backend_down_is_unavailable(server, driver):
    """The project directory vanishing makes the DuckDB backend unhealthy: UNAVAILABLE (503)."""
    driver.run(backend_pb2.InitBackendCommand(), server.admin_key, response_type=backend_pb2.InitBackendResponse)
    away = server.data_dir / "duckdb.away"
    server.project_dir.rename(away)
    try:
        expect_error(lambda: driver.execute(backend_pb2.InitBackendCommand(), server.admin_key), S.UNAVAILABLE,
                     keboola_code=1001)
    finally:
        away.rename(server.project_dir)
    driver.run(backend_pb2.InitBackendCommand(), server.admin_key, response_type=backend_pb2.InitBackendResponse)


# ---- the bridge's HTTP view of an error ---------------------------------------------------------

def test_bridge_error_body(server):
    """On error the bridge answers the mapped HTTP status with a DriverResponse whose messages end
    with an Error LogMessage carrying the message and the Keboola code."""
    d = Driver(server, "grpc")
    key = make_project(d, server, "hb")
    d.close()
    body = request(info_pb2.ObjectInfoCommand(path=["in.c-x", "t"], expectedObjectType=info_pb2.TABLE), key,
                   "hb").SerializeToString()
    r = requests.post(server.url + "/driver/execute", data=body, timeout=REQUEST_TIMEOUT,
                      headers={"Content-Type": "application/x-protobuf"})
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("application/x-protobuf")
    resp = common_pb2.DriverResponse.FromString(r.content)
    assert not resp.HasField("commandResponse")
    last = resp.messages[-1]
    assert last.level == common_pb2.LogMessage.Error
    assert last.message.startswith("[2004] ") and "in.c-x" in last.message, last.message


def test_bridge_error_headers(server):
    body = request(info_pb2.ListSchemasCommand(), "bad-key", "x").SerializeToString()
    r = requests.post(server.url + "/driver/execute", data=body, timeout=REQUEST_TIMEOUT,
                      headers={"Content-Type": "application/x-protobuf"})
    assert r.status_code == 401
    assert r.headers.get("grpc-status") == str(S.UNAUTHENTICATED.value[0])
    assert "1002" in r.headers.get("grpc-message", "")
    assert r.headers.get("keboola-code") == "1002"
