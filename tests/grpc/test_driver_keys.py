"""API key scopes and idempotent retries over the driver protocol (gRPC and the HTTP bridge): a
read-only key is refused every command that changes something, and a command repeated with the same
idempotency key (gRPC metadata / bridge header "idempotency-key") answers the first outcome without
applying it again."""

import grpc
import requests

from driver_lib import (REQUEST_TIMEOUT, DriverError, backend_pb2, bucket_pb2, common_pb2, executeQuery_pb2,
                        expect_error, info_pb2, project_pb2, request, table_pb2, workspace_pb2)
from test_driver_data import BUCKET, CSV, Project, T, X, csv_bytes

S = grpc.StatusCode


def _setup(server, driver):
    proj = Project(server, driver, pid="dk")
    proj.create_table("t", [T(name="id", nullable=True), T(name="v", nullable=True)])
    proj.create_table("src", [T(name="id", nullable=True), T(name="v", nullable=True)])
    proj.upload("in/t.csv", csv_bytes([["1", "a"], ["2", "b"]], header=["id", "v"]))
    r = proj.run(proj.import_file("t", "in", "t.csv", CSV(), numberOfIgnoredLines=1,
                                  importType=X.ImportOptions.INCREMENTAL), table_pb2.TableImportResponse)
    assert r.tableRowsCount == 2
    return proj


def _rest_key(server, proj, scope, **extra):
    r = proj.http.post(f"{server.url}/projects/{proj.pid}/keys", json={"scope": scope, **extra},
                       timeout=REQUEST_TIMEOUT)
    assert r.status_code == 201, r.text
    return r.json()["key"]


def _state(server, proj):
    def get(path):
        r = proj.http.get(server.url + path, timeout=REQUEST_TIMEOUT)
        assert r.status_code == 200, r.text
        return r.json()
    tables = get(f"/projects/{proj.pid}/buckets/{BUCKET}/tables")["items"]
    rows = get(f"/projects/{proj.pid}/buckets/{BUCKET}/tables/t/preview")["rows"]
    return (sorted(b["id"] for b in get(f"/projects/{proj.pid}/buckets")["items"]),
            sorted((t["name"], [c["name"] for c in t["columns"]], t["primary_key"], t["rows"]) for t in tables),
            sorted(rows), get(f"/projects/{proj.pid}")["name"])


def _writes(proj):
    """A valid instance of every command that changes something, by message name."""
    imp = proj.import_file("t", "in", "t.csv", CSV(), numberOfIgnoredLines=1, importType=X.ImportOptions.INCREMENTAL)
    copy = table_pb2.TableImportFromTableCommand(
        source=table_pb2.TableImportFromTableCommand.SourceTableMapping(path=[BUCKET], tableName="t"),
        destination=X.Table(path=[BUCKET], tableName="src"),
        importOptions=X.ImportOptions(importType=X.ImportOptions.INCREMENTAL))
    cmds = [
        backend_pb2.InitBackendCommand(), backend_pb2.RemoveBackendCommand(),
        project_pb2.CreateProjectCommand(projectId="intruder"), project_pb2.UpdateProjectCommand(projectId="dk"),
        project_pb2.DropProjectCommand(projectUserName="dk"),
        bucket_pb2.CreateBucketCommand(bucketId="in.c-new"), bucket_pb2.DropBucketCommand(bucketObjectName=BUCKET),
        table_pb2.CreateTableCommand(path=[BUCKET], tableName="new", columns=[T(name="a", nullable=True)]),
        table_pb2.DropTableCommand(path=[BUCKET], tableName="t"),
        table_pb2.AddColumnCommand(path=[BUCKET], tableName="t", columnDefinition=T(name="w", nullable=True)),
        table_pb2.AlterColumnCommand(path=[BUCKET], tableName="t", desiredDefiniton=T(name="v", nullable=False),
                                     attributesToUpdate=["nullable"]),
        table_pb2.DropColumnCommand(path=[BUCKET], tableName="t", columnName="v"),
        table_pb2.AddPrimaryKeyCommand(path=[BUCKET], tableName="t", primaryKeysNames=["id"]),
        table_pb2.DropPrimaryKeyCommand(path=[BUCKET], tableName="t"),
        imp, copy,
        table_pb2.DeleteTableRowsCommand(path=[BUCKET], tableName="t"),
    ]
    return {c.DESCRIPTOR.full_name: c for c in cmds}


READS = {"PreviewTableCommand", "TableExportToFileCommand", "CreateProfileTableCommand", "ObjectInfoCommand",
         "ListSchemasCommand", "ExecuteQueryCommand"}


def test_read_key_is_refused_every_driver_write(server, driver):
    proj = _setup(server, driver)
    read = _rest_key(server, proj, "read")
    before = _state(server, proj)
    writes = _writes(proj)
    modules = (backend_pb2, project_pb2, bucket_pb2, table_pb2, workspace_pb2, info_pb2, executeQuery_pb2)
    every = [(m, d) for m in modules for n, d in m.DESCRIPTOR.message_types_by_name.items()
             if n.endswith("Command")]
    assert len(every) > 30
    refused = 0
    for module, desc in every:
        if desc.name in READS:
            continue
        cmd = writes.get(desc.full_name)
        if cmd is None:
            cmd = getattr(module, desc.name)()
            # A command this build has no handler for, or new: nothing may change whatever it answers.
            try:
                driver.execute(cmd, read, proj.pid)
                raise AssertionError(f"{desc.name} succeeded with a read-only key")
            except DriverError as e:
                assert e.code in (S.PERMISSION_DENIED, S.UNIMPLEMENTED, S.INVALID_ARGUMENT), (desc.name, e)
            continue
        expect_error(lambda: driver.execute(cmd, read, proj.pid), S.PERMISSION_DENIED)
        refused += 1
    assert refused == len(writes)
    assert _state(server, proj) == before
    # The reads work with the key.
    driver.run(table_pb2.PreviewTableCommand(path=[BUCKET], tableName="t"), read, proj.pid,
               table_pb2.PreviewTableResponse)
    driver.run(info_pb2.ObjectInfoCommand(path=[BUCKET, "t"], expectedObjectType=info_pb2.TABLE), read, proj.pid,
               info_pb2.ObjectInfoResponse)
    # A branch-scoped key cannot write main either.
    branch = _rest_key(server, proj, "branch", branch="dev_1")
    e = expect_error(lambda: driver.execute(writes["keboola.storageDriver.command.table.DeleteTableRowsCommand"],
                                            branch, proj.pid), S.PERMISSION_DENIED)
    assert "dev_1" in e.message
    assert _state(server, proj) == before


def _send(server, driver, command, key, host, idem):
    """Executes with an idempotency key; returns (ok, bytes of the DriverResponse or error text)."""
    body = request(command, key, host).SerializeToString()
    if driver.transport == "grpc":
        try:
            return True, driver.stub(body, timeout=REQUEST_TIMEOUT, metadata=(("idempotency-key", idem),))
        except grpc.RpcError as e:
            return False, (e.code(), e.details())
    r = requests.post(server.url + "/driver/execute", data=body, timeout=REQUEST_TIMEOUT,
                      headers={"Content-Type": "application/x-protobuf", "Idempotency-Key": idem})
    return r.status_code == 200, (r.content if r.status_code == 200 else (r.status_code, r.content))


def test_a_repeated_driver_import_applies_once(server, driver):
    proj = _setup(server, driver)
    cmd = proj.import_file("t", "in", "t.csv", CSV(), numberOfIgnoredLines=1, importType=X.ImportOptions.INCREMENTAL)
    ok, first = _send(server, driver, cmd, proj.key, proj.pid, "imp-1")
    assert ok, first
    resp = common_pb2.DriverResponse.FromString(first)
    out = table_pb2.TableImportResponse()
    assert resp.commandResponse.Unpack(out) and out.tableRowsCount == 4
    ok, again = _send(server, driver, cmd, proj.key, proj.pid, "imp-1")
    assert ok and again == first
    assert proj.table_info("t").rowsCount == 4
    # The same key for another command: conflict, nothing applied.
    other = proj.import_file("t", "in", "t.csv", CSV(), numberOfIgnoredLines=0, importType=X.ImportOptions.INCREMENTAL)
    ok, err = _send(server, driver, other, proj.key, proj.pid, "imp-1")
    assert not ok and (err[0] in (S.FAILED_PRECONDITION, 409)), err
    assert proj.table_info("t").rowsCount == 4
    # A failed command's outcome is kept too (same error again); a new key applies.
    missing = proj.import_file("nope", "in", "t.csv", CSV(), importType=X.ImportOptions.INCREMENTAL)
    e1 = _send(server, driver, missing, proj.key, proj.pid, "imp-2")
    e2 = _send(server, driver, missing, proj.key, proj.pid, "imp-2")
    assert not e1[0] and e1 == e2
    ok, _ = _send(server, driver, cmd, proj.key, proj.pid, "imp-3")
    assert ok and proj.table_info("t").rowsCount == 6


def _crash_then_retry(server, driver, send, hook):
    """Starts the server with the kill -9 hook after hook's commit, sends, restarts, sends again."""
    def reconnect():
        driver.close()
        driver._channel = None

    def send_on_a_new_channel():
        reconnect()
        return send()

    server.die_after_commit(hook, send_on_a_new_channel, died=lambda r: not r[0] and r[1][0] == S.UNAVAILABLE)
    reconnect()
    return send()


def test_a_driver_create_table_and_add_column_retried_after_a_crash_answer_the_first_result(server, driver):
    proj = Project(server, driver, pid="dc")
    create = table_pb2.CreateTableCommand(path=[BUCKET], tableName="c", primaryKeysNames=["id"],
                                          columns=[T(name="id"), T(name="v", nullable=True)])
    send = lambda cmd, idem: lambda: _send(server, driver, cmd, proj.key, proj.pid, idem)  # noqa: E731
    ok, first = _crash_then_retry(server, driver, send(create, "ct-1"), "table_create")
    assert ok, first
    resp = common_pb2.DriverResponse.FromString(first)
    info = info_pb2.ObjectInfoResponse()
    assert resp.commandResponse.Unpack(info)
    assert [c.name for c in info.tableInfo.columns] == ["id", "v"] and list(info.tableInfo.primaryKeysNames) == ["id"]
    ok, again = send(create, "ct-1")()
    assert ok and again == first
    # Without the record the same create is refused: a new key is a new request.
    ok, err = send(create, "ct-2")()
    assert not ok and err[0] in (S.ALREADY_EXISTS, 409), err
    add = table_pb2.AddColumnCommand(path=[BUCKET], tableName="c", columnDefinition=T(name="w", nullable=True))
    ok, first = _crash_then_retry(server, driver, send(add, "ac-1"), "column_add")
    assert ok, first
    assert [c.name for c in proj.table_info("c").columns] == ["id", "v", "w"]
    ok, again = send(add, "ac-1")()
    assert ok and again == first
    ok, err = send(add, "ac-2")()
    assert not ok and err[0] in (S.ALREADY_EXISTS, 409), err
    assert [c.name for c in proj.table_info("c").columns] == ["id", "v", "w"]


def test_a_repeat_never_returns_a_password(server, driver):
    """CreateWorkspace and ResetWorkspacePassword answer a password once: a repeat with the same idempotency key
    is a conflict saying the secret is not kept (gRPC FAILED_PRECONDITION / bridge 409), never the password."""
    proj = _setup(server, driver)

    def once_then_refused(idem, cmd, resp_type):
        ok, first = _send(server, driver, cmd, proj.key, proj.pid, idem)
        assert ok, first
        out = resp_type()
        assert common_pb2.DriverResponse.FromString(first).commandResponse.Unpack(out)
        assert out.workspacePassword
        ok, again = _send(server, driver, cmd, proj.key, proj.pid, idem)
        assert not ok and again[0] in (S.FAILED_PRECONDITION, 409), again
        text = again[1] if isinstance(again[1], str) else again[1].decode(errors="replace")
        assert "shown only once" in text and out.workspacePassword not in text
        return out

    ws = once_then_refused("ws-1", workspace_pb2.CreateWorkspaceCommand(workspaceId="w"),
                           workspace_pb2.CreateWorkspaceResponse)
    once_then_refused("ws-2", workspace_pb2.ResetWorkspacePasswordCommand(workspaceUserName=ws.workspaceUserName),
                      workspace_pb2.ResetWorkspacePasswordResponse)
