"""A Keboola-style session over the storage driver protocol, once over gRPC and once over the HTTP
bridge: init the backend, create a project, a bucket, a typed and a string table, load files
uploaded through REST (full and incremental), preview, export, inspect with ObjectInfo /
ListSchemas, delete rows, drop everything again. What the driver reports must match what the
REST API (the same command layer) sees."""

import csv
import io

import grpc
import requests

from driver_lib import (REQUEST_TIMEOUT, backend_pb2, bucket_pb2, common_pb2, credentials_pb2, expect_error,
                        info_pb2, pack, project_pb2, request, table_pb2)

T = table_pb2.TableColumnShared
X = table_pb2.ImportExportShared


def rest(server, key, path):
    r = requests.get(server.url + path, headers={"Authorization": f"Bearer {key}"}, timeout=REQUEST_TIMEOUT)
    assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text}"
    return r.json()


def upload(server, http, name, data):
    r = http.post(f"{server.url}/projects/flow/files", params={"name": name}, data=data, timeout=REQUEST_TIMEOUT)
    assert r.status_code == 201, r.text


def download(server, http, name):
    files = http.get(f"{server.url}/projects/flow/files", params={"prefix": name}, timeout=REQUEST_TIMEOUT).json()
    (f,) = [f for f in files["items"] if f["name"] == name]
    r = http.get(f"{server.url}/projects/flow/files/{f['id']}/download", timeout=REQUEST_TIMEOUT)
    assert r.status_code == 200, r.text
    return r.content


def import_file(table, path, file_name, import_type, columnsNames=(), numberOfIgnoredLines=0):
    cmd = table_pb2.TableImportFromFileCommand(
        fileProvider=X.S3, fileFormat=X.CSV, filePath=X.FilePath(root="kbc-files", path=path, fileName=file_name),
        destination=X.Table(path=["in.c-main"], tableName=table),
        importOptions=X.ImportOptions(importType=import_type, numberOfIgnoredLines=numberOfIgnoredLines,
                                      timestampColumn="_timestamp"))
    cmd.formatTypeOptions.Pack(table_pb2.TableImportFromFileCommand.CsvTypeOptions(
        columnsNames=list(columnsNames), delimiter=",", enclosure='"'))
    return cmd


def columns_of(table_info):
    return [(c.name, c.type, c.length, c.nullable, c.default) for c in table_info.columns]


def create_project(driver, admin, pid):
    created = driver.run(project_pb2.CreateProjectCommand(stackPrefix="kbc", projectId=pid), admin,
                         response_type=project_pb2.CreateProjectResponse)
    assert created.projectUserName == pid
    assert created.projectDatabaseName == pid
    assert created.projectPassword and created.projectPassword != admin
    return created.projectPassword


def test_keboola_flow(server, driver):
    admin = server.admin_key

    # Backend and project lifecycle take the admin key.
    resp = driver.execute(backend_pb2.InitBackendCommand(), admin)
    assert resp.commandResponse.type_url.endswith("keboola.storageDriver.command.backend.InitBackendResponse")
    assert all(m.level != common_pb2.LogMessage.Error for m in resp.messages)
    key = create_project(driver, admin, "flow")
    assert rest(server, key, "/projects/flow")["id"] == "flow"  # the password is the project's API key

    resp = driver.execute(project_pb2.UpdateProjectCommand(projectId="flow", timezone="Europe/Prague"), admin)
    assert not resp.HasField("commandResponse")
    assert [m.level for m in resp.messages] == [common_pb2.LogMessage.Warning], resp

    # Bucket: Keboola's bucket id is the path of everything inside it.
    b = driver.run(bucket_pb2.CreateBucketCommand(stackPrefix="kbc", projectId="flow", bucketId="in.c-main"),
                   key, "flow", bucket_pb2.CreateBucketResponse)
    assert list(b.path) == ["in.c-main"]
    assert b.createBucketObjectName == "in.c-main"
    assert rest(server, key, "/projects/flow/buckets/in.c-main")["stage"] == "in"

    # A typed table: types (with length), nullability, defaults and primary key survive the round trip.
    typed = table_pb2.CreateTableCommand(
        path=["in.c-main"], tableName="orders",
        columns=[T(name="id", type="INTEGER", nullable=False),
                 T(name="amount", type="NUMERIC", length="12,2", nullable=True, default="0"),
                 T(name="note", type="VARCHAR", nullable=True),
                 T(name="ordered_at", type="TIMESTAMP", nullable=True)],
        primaryKeysNames=["id"])
    info = driver.run(typed, key, "flow", info_pb2.ObjectInfoResponse)
    assert info.objectType == info_pb2.TABLE
    assert list(info.path) == ["in.c-main", "orders"]
    assert info.WhichOneof("objectInfo") == "tableInfo"
    ti = info.tableInfo
    assert list(ti.path) == ["in.c-main"] and ti.tableName == "orders"
    assert columns_of(ti) == [("id", "INTEGER", "", False, ""), ("amount", "DECIMAL", "12,2", True, "0"),
                              ("note", "VARCHAR", "", True, ""), ("ordered_at", "TIMESTAMP", "", True, "")]
    assert list(ti.primaryKeysNames) == ["id"]
    assert ti.rowsCount == 0 and ti.tableType == info_pb2.NORMAL

    # A string table (Keboola's default): columns without a type are VARCHAR.
    strings = table_pb2.CreateTableCommand(path=["in.c-main"], tableName="raw",
                                           columns=[T(name="a", nullable=True), T(name="b", nullable=True)])
    info = driver.run(strings, key, "flow", info_pb2.ObjectInfoResponse)
    assert columns_of(info.tableInfo) == [("a", "VARCHAR", "", True, ""), ("b", "VARCHAR", "", True, "")]
    assert list(info.tableInfo.primaryKeysNames) == []

    # ObjectInfo: database (= the project) lists schemas (= buckets), a schema lists tables.
    db = driver.run(info_pb2.ObjectInfoCommand(path=[], expectedObjectType=info_pb2.DATABASE), key, "flow",
                    info_pb2.ObjectInfoResponse)
    assert db.objectType == info_pb2.DATABASE and db.WhichOneof("objectInfo") == "databaseInfo"
    assert [(o.objectName, o.objectType) for o in db.databaseInfo.objects] == [("in.c-main", info_pb2.SCHEMA)]
    db2 = driver.run(info_pb2.ObjectInfoCommand(path=["flow"], expectedObjectType=info_pb2.DATABASE), key, "flow",
                     info_pb2.ObjectInfoResponse)
    assert db2.databaseInfo == db.databaseInfo
    schema = driver.run(info_pb2.ObjectInfoCommand(path=["in.c-main"], expectedObjectType=info_pb2.SCHEMA), key,
                        "flow", info_pb2.ObjectInfoResponse)
    assert schema.WhichOneof("objectInfo") == "schemaInfo"
    assert sorted((o.objectName, o.objectType) for o in schema.schemaInfo.objects) == \
        [("orders", info_pb2.TABLE), ("raw", info_pb2.TABLE)]
    table = driver.run(info_pb2.ObjectInfoCommand(path=["in.c-main", "orders"], expectedObjectType=info_pb2.TABLE),
                       key, "flow", info_pb2.ObjectInfoResponse)
    assert table.tableInfo == ti
    schemas = driver.run(info_pb2.ListSchemasCommand(), key, "flow", info_pb2.ListSchemasResponse)
    assert list(schemas.schemas) == ["in.c-main"]

    # The REST API sees exactly the same tables (one command layer).
    rest_tables = rest(server, key, "/projects/flow/buckets/in.c-main/tables")["items"]
    assert sorted(t["name"] for t in rest_tables) == ["orders", "raw"]
    orders = next(t for t in rest_tables if t["name"] == "orders")
    assert [(c["name"], c["type"]) for c in orders["columns"]] == \
        [("id", "INTEGER"), ("amount", "DECIMAL(12,2)"), ("note", "VARCHAR"), ("ordered_at", "TIMESTAMP")]

    # Data: files uploaded through REST (Storage Files) are loaded full, then incrementally.
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {key}"
    upload(server, http, "loads/raw-1.csv", b'"a","b"\n"1","x"\n"2","y"\n')
    upload(server, http, "loads/raw-2.csv", b'"3","z"\n')
    r = driver.run(import_file("raw", "loads", "raw-1.csv", X.ImportOptions.FULL, numberOfIgnoredLines=1), key, "flow",
                   table_pb2.TableImportResponse)
    assert (r.importedRowsCount, r.tableRowsCount) == (2, 2)
    r = driver.run(import_file("raw", "loads", "raw-2.csv", X.ImportOptions.INCREMENTAL, columnsNames=["a", "b"]),
                   key, "flow", table_pb2.TableImportResponse)
    assert (r.importedRowsCount, r.tableRowsCount) == (1, 3)
    preview = driver.run(table_pb2.PreviewTableCommand(path=["in.c-main"], tableName="raw",
                                                       orderBy=[X.ExportOrderBy(columnName="a")]),
                         key, "flow", table_pb2.PreviewTableResponse)
    assert list(preview.columns) == ["a", "b"]
    assert [[c.value.string_value for c in row.columns] for row in preview.rows] == [["1", "x"], ["2", "y"], ["3", "z"]]
    exported = driver.run(table_pb2.TableExportToFileCommand(
        source=X.Table(path=["in.c-main"], tableName="raw"), fileProvider=X.S3, fileFormat=X.CSV,
        filePath=X.FilePath(root="kbc-files", path="exports", fileName="raw.csv"),
        exportOptions=X.ExportOptions(orderBy=[X.ExportOrderBy(columnName="a")])), key, "flow",
        table_pb2.TableExportToFileResponse)
    assert exported.tableInfo.tableName == "raw" and exported.tableInfo.rowsCount == 3
    rows = list(csv.reader(io.StringIO(download(server, http, "exports/raw.csv").decode())))
    assert rows == [["a", "b"], ["1", "x"], ["2", "y"], ["3", "z"]]
    info = driver.run(info_pb2.ObjectInfoCommand(path=["in.c-main", "raw"], expectedObjectType=info_pb2.TABLE), key,
                      "flow", info_pb2.ObjectInfoResponse)
    assert info.tableInfo.rowsCount == 3
    deleted = driver.run(table_pb2.DeleteTableRowsCommand(path=["in.c-main"], tableName="raw", whereFilters=[
        X.TableWhereFilter(columnsName="b", operator=X.TableWhereFilter.eq, values=["y"])]), key, "flow",
        table_pb2.DeleteTableRowsResponse)
    assert (deleted.deletedRowsCount, deleted.tableRowsCount) == (1, 2)
    assert rest(server, key, "/projects/flow/buckets/in.c-main/tables/raw")["rows"] == 2

    # Drops.
    assert driver.run(table_pb2.DropTableCommand(path=["in.c-main"], tableName="raw"), key, "flow") is None
    schema = driver.run(info_pb2.ObjectInfoCommand(path=["in.c-main"], expectedObjectType=info_pb2.SCHEMA), key,
                        "flow", info_pb2.ObjectInfoResponse)
    assert [o.objectName for o in schema.schemaInfo.objects] == ["orders"]
    # A bucket with tables needs isCascade; without it nothing is removed.
    expect_error(lambda: driver.execute(bucket_pb2.DropBucketCommand(bucketObjectName="in.c-main"), key, "flow"),
                 grpc.StatusCode.FAILED_PRECONDITION)
    assert [t["name"] for t in rest(server, key, "/projects/flow/buckets/in.c-main/tables")["items"]] == ["orders"]
    driver.run(bucket_pb2.DropBucketCommand(bucketObjectName="in.c-main", isCascade=True), key, "flow")
    assert list(driver.run(info_pb2.ListSchemasCommand(), key, "flow", info_pb2.ListSchemasResponse).schemas) == []

    # Dropping the project (named by projectDatabaseName) revokes its key; then the backend can go.
    expect_error(lambda: driver.execute(backend_pb2.RemoveBackendCommand(), admin), grpc.StatusCode.FAILED_PRECONDITION,
                 mentions=["projects"])
    driver.run(project_pb2.DropProjectCommand(projectDatabaseName="flow"), admin)
    expect_error(lambda: driver.execute(info_pb2.ListSchemasCommand(), key, "flow"),
                 grpc.StatusCode.UNAUTHENTICATED, keboola_code=1002)
    driver.run(backend_pb2.RemoveBackendCommand(), admin)


def test_key_from_principal_when_secret_is_empty(server, driver):
    """GenericBackendCredentials: the key is `secret`, or `principal` when `secret` is empty."""
    key = create_project(driver, server.admin_key, "pp")
    for creds in (credentials_pb2.GenericBackendCredentials(host="pp", principal=key),
                  credentials_pb2.GenericBackendCredentials(host="pp", principal="someone", secret=key)):
        resp = driver.execute(info_pb2.ListSchemasCommand(), creds=pack(creds))
        out = info_pb2.ListSchemasResponse()
        assert resp.commandResponse.Unpack(out) and list(out.schemas) == []
    # secret wins over principal: a wrong secret fails even with the right principal.
    wrong = pack(credentials_pb2.GenericBackendCredentials(host="pp", principal=key, secret="wrong"))
    expect_error(lambda: driver.execute(info_pb2.ListSchemasCommand(), creds=wrong), grpc.StatusCode.UNAUTHENTICATED)


def test_admin_key_works_on_any_project(server, driver):
    admin = server.admin_key
    create_project(driver, admin, "a1")
    b = driver.run(bucket_pb2.CreateBucketCommand(bucketId="out.c-x"), admin, "a1", bucket_pb2.CreateBucketResponse)
    assert b.createBucketObjectName == "out.c-x"
    # A bare bucket name goes to stage "in" and gets Keboola's "c-" prefix.
    b = driver.run(bucket_pb2.CreateBucketCommand(bucketId="plain"), admin, "a1", bucket_pb2.CreateBucketResponse)
    assert b.createBucketObjectName == "in.c-plain"
    schemas = driver.run(info_pb2.ListSchemasCommand(), admin, "a1", info_pb2.ListSchemasResponse)
    assert sorted(schemas.schemas) == ["in.c-plain", "out.c-x"]


def test_bridge_takes_a_bearer_header_and_ignores_other_http_credentials(server):
    """The bridge authenticates with the DriverRequest's credentials or an "Authorization: Bearer"
    header (like gRPC's authorization metadata); X-StorageApi-Token is not a bridge credential, and a
    Bearer key that disagrees with the request's is UNAUTHENTICATED."""
    body = request(backend_pb2.InitBackendCommand()).SerializeToString()
    r = requests.post(server.url + "/driver/execute", data=body, timeout=REQUEST_TIMEOUT,
                      headers={"Content-Type": "application/x-protobuf",
                               "Authorization": f"Bearer {server.admin_key}"})
    assert r.status_code == 200, r.content
    r = requests.post(server.url + "/driver/execute", data=body, timeout=REQUEST_TIMEOUT,
                      headers={"Content-Type": "application/x-protobuf", "X-StorageApi-Token": server.admin_key})
    assert r.status_code == 401, r.content
    resp = common_pb2.DriverResponse.FromString(r.content)
    assert resp.messages[-1].level == common_pb2.LogMessage.Error
    assert "credentials" in resp.messages[-1].message
    other = request(backend_pb2.InitBackendCommand(), "another-key").SerializeToString()
    r = requests.post(server.url + "/driver/execute", data=other, timeout=REQUEST_TIMEOUT,
                      headers={"Content-Type": "application/x-protobuf",
                               "Authorization": f"Bearer {server.admin_key}"})
    assert r.status_code == 401, r.content
    assert "different API keys" in common_pb2.DriverResponse.FromString(r.content).messages[-1].message
