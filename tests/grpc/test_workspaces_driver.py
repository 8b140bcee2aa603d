"""Workspaces and ExecuteQuery over the storage driver protocol, once over gRPC and once over the
HTTP bridge: the Keboola-style transformation flow (create a workspace, load two tables, run a join
into a new workspace table, unload it into storage, drop the workspace), in-band query errors,
timeouts, users and passwords, clear and drop object."""

import grpc
import requests

from driver_lib import (REQUEST_TIMEOUT, executeQuery_pb2, expect_error, project_pb2, table_pb2,
                        workspace_pb2)

X = table_pb2.ImportExportShared
Q = executeQuery_pb2.ExecuteQueryResponse
S = grpc.StatusCode


def setup_project(server, driver, pid):
    created = driver.run(project_pb2.CreateProjectCommand(stackPrefix="kbc", projectId=pid), server.admin_key,
                         response_type=project_pb2.CreateProjectResponse)
    key = created.projectPassword
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {key}"
    base = f"{server.url}/projects/{pid}"
    assert http.post(f"{base}/buckets", json={"stage": "in", "name": "c-main"}, timeout=REQUEST_TIMEOUT).status_code == 201
    for name, cols, data in (
            ("customers", [{"name": "id", "type": "INTEGER"}, {"name": "name"}],
             b'"id","name"\n"1","Ann"\n"2","Bob"\n"3","Cid"\n'),
            ("orders", [{"name": "id", "type": "INTEGER"}, {"name": "customer", "type": "INTEGER"},
                        {"name": "amount", "type": "INTEGER"}, {"name": "state"}],
             b'"id","customer","amount","state"\n"10","1","5","TX"\n"11","1","4","CA"\n"12","2","10","TX"\n')):
        r = http.post(f"{base}/buckets/in.c-main/tables", json={"name": name, "columns": cols}, timeout=REQUEST_TIMEOUT)
        assert r.status_code == 201, r.text
        f = http.post(f"{base}/files", params={"name": f"{name}.csv"}, data=data, timeout=REQUEST_TIMEOUT).json()
        r = http.post(f"{base}/buckets/in.c-main/tables/{name}/import/file", json={"file_id": f["id"]},
                      timeout=REQUEST_TIMEOUT)
        assert r.status_code == 200, r.text
    return key, http


def query(driver, key, pid, sql, ws="WORKSPACE_tr", timeout=0):
    cmd = executeQuery_pb2.ExecuteQueryCommand(query=sql, timeout=timeout, pathRestriction=[ws] if ws else [])
    return driver.run(cmd, key, pid, executeQuery_pb2.ExecuteQueryResponse)


def rows(resp, *cols):
    return [[r.fields[c] if c in r.fields else None for c in cols] for r in resp.data.rows]


def test_transformation_flow(server, driver):
    key, http = setup_project(server, driver, "flow")
    ws = driver.run(workspace_pb2.CreateWorkspaceCommand(projectId="flow", workspaceId="tr"), key, "flow",
                    workspace_pb2.CreateWorkspaceResponse)
    assert ws.workspaceObjectName == "WORKSPACE_tr" and ws.workspaceUserName and ws.workspacePassword

    load = workspace_pb2.LoadTableToWorkspaceCommand
    driver.run(load(source=load.SourceTableMapping(path=["in.c-main"], tableName="customers"),
                    destination=X.Table(path=["WORKSPACE_tr"], tableName="customers"),
                    importOptions=X.ImportOptions(importType=X.ImportOptions.FULL)), key, "flow")
    driver.run(load(source=load.SourceTableMapping(
        path=["in.c-main"], tableName="orders",
        whereFilters=[X.TableWhereFilter(columnsName="state", operator=X.TableWhereFilter.eq, values=["TX"])]),
        destination=X.Table(path=["WORKSPACE_tr"], tableName="orders"),
        importOptions=X.ImportOptions(importType=X.ImportOptions.FULL)), key, "flow")
    driver.run(load(source=load.SourceTableMapping(path=["in.c-main"], tableName="orders"),
                    destination=X.Table(path=["WORKSPACE_tr"], tableName="all_orders"),
                    importOptions=X.ImportOptions(importType=X.ImportOptions.VIEW)), key, "flow")

    r = query(driver, key, "flow", "CREATE TABLE report AS SELECT c.name, sum(o.amount) AS total "
                                   "FROM orders o JOIN customers c ON c.id = o.customer GROUP BY c.name")
    assert r.status == Q.Success, r.message
    r = query(driver, key, "flow", "SELECT name, total FROM report ORDER BY name")
    assert r.status == Q.Success and list(r.data.columns) == ["name", "total"]
    assert rows(r, "name", "total") == [["Ann", "5"], ["Bob", "10"]]
    r = query(driver, key, "flow", "SELECT count(*) AS n FROM all_orders")
    assert rows(r, "n") == [["3"]]

    # unload: TableImportFromTable with the workspace as the source
    imp = driver.run(table_pb2.TableImportFromTableCommand(
        source=table_pb2.TableImportFromTableCommand.SourceTableMapping(path=["WORKSPACE_tr"], tableName="report"),
        destination=X.Table(path=["in.c-main"], tableName="report"),
        importOptions=X.ImportOptions(importType=X.ImportOptions.FULL, createMode=X.ImportOptions.REPLACE)),
        key, "flow", table_pb2.TableImportResponse)
    assert imp.importedRowsCount == 2
    t = http.get(f"{server.url}/projects/flow/buckets/in.c-main/tables/report/preview",
                 params={"order_by": "name"}, timeout=REQUEST_TIMEOUT).json()
    assert t["rows"] == [["Ann", "5"], ["Bob", "10"]]
    # with columnMappings (Keboola's output mapping): the mapped columns, under their destination names
    M = table_pb2.TableImportFromTableCommand.SourceTableMapping.ColumnMapping
    imp = driver.run(table_pb2.TableImportFromTableCommand(
        source=table_pb2.TableImportFromTableCommand.SourceTableMapping(
            path=["WORKSPACE_tr"], tableName="report",
            columnMappings=[M(sourceColumnName="total", destinationColumnName="amount"),
                            M(sourceColumnName="name", destinationColumnName="customer")]),
        destination=X.Table(path=["in.c-main"], tableName="report_named"),
        importOptions=X.ImportOptions(importType=X.ImportOptions.FULL, createMode=X.ImportOptions.REPLACE)),
        key, "flow", table_pb2.TableImportResponse)
    assert imp.importedRowsCount == 2
    t = http.get(f"{server.url}/projects/flow/buckets/in.c-main/tables/report_named/preview",
                 params={"order_by": "customer"}, timeout=REQUEST_TIMEOUT).json()
    assert t["columns"] == ["amount", "customer"] and t["rows"] == [["5", "Ann"], ["10", "Bob"]]

    # read-only query over the project's storage (no pathRestriction)
    r = query(driver, key, "flow", 'SELECT count(*) AS n FROM "in.c-main"."report"', ws=None)
    assert r.status == Q.Success and rows(r, "n") == [["2"]]

    driver.run(workspace_pb2.DropWorkspaceCommand(workspaceObjectName="WORKSPACE_tr"), key, "flow")
    expect_error(lambda: query(driver, key, "flow", "SELECT 1"), S.NOT_FOUND, mentions=["tr"])
    assert not (server.data_dir / "workspaces" / "ws_flow.tr.duckdb").exists()


def test_query_errors_are_in_band(server, driver):
    key, _ = setup_project(server, driver, "q")
    driver.run(workspace_pb2.CreateWorkspaceCommand(workspaceId="tr"), key, "q", workspace_pb2.CreateWorkspaceResponse)
    r = query(driver, key, "q", "SELECT * FROM nope")
    assert r.status == Q.Error and "nope" in r.message
    r = query(driver, key, "q", "SELECT * FROM read_csv('/etc/passwd')")
    assert r.status == Q.Error and "/etc/passwd" not in r.message
    r = query(driver, key, "q", "SELECT count(*) FROM range(1000000000) a, range(1000000000) b", timeout=1)
    assert r.status == Q.Error and "timeout" in r.message
    r = query(driver, key, "q", "SELECT 1; SELECT 2")
    assert r.status == Q.Error and "one sql statement" in r.message.lower()
    r = query(driver, key, "q", "CREATE TABLE x AS SELECT 1 AS a", ws=None)
    assert r.status == Q.Error and "read-only" in r.message
    r = query(driver, key, "q", "SELECT NULL AS a, 'x' AS b")
    assert r.status == Q.Success and rows(r, "a", "b") == [[None, "x"]]
    expect_error(lambda: query(driver, key, "q", "SELECT 1", ws="in.c-main"), S.INVALID_ARGUMENT,
                 mentions=["pathRestriction"])


def test_users_passwords_clear_and_objects(server, driver):
    key, http = setup_project(server, driver, "u")
    ws = driver.run(workspace_pb2.CreateWorkspaceCommand(workspaceId="tr"), key, "u",
                    workspace_pb2.CreateWorkspaceResponse)
    base = f"{server.url}/projects/u/workspaces/tr/query"

    def basic_ok(user, password):
        r = requests.post(base, json={"sql": "SELECT 1"}, auth=(user, password), timeout=REQUEST_TIMEOUT)
        return r.status_code == 200

    assert basic_ok(ws.workspaceUserName, ws.workspacePassword)
    reset = driver.run(workspace_pb2.ResetWorkspacePasswordCommand(workspaceUserName=ws.workspaceUserName), key, "u",
                       workspace_pb2.ResetWorkspacePasswordResponse)
    assert reset.workspacePassword != ws.workspacePassword
    assert not basic_ok(ws.workspaceUserName, ws.workspacePassword)
    assert basic_ok(ws.workspaceUserName, reset.workspacePassword)
    driver.run(workspace_pb2.DropWorkspaceUserCommand(workspaceUserName=ws.workspaceUserName), key, "u")
    assert not basic_ok(ws.workspaceUserName, reset.workspacePassword)
    user = driver.run(workspace_pb2.CreateWorkspaceUserCommand(workspaceObjectName="WORKSPACE_tr"), key, "u",
                      workspace_pb2.CreateWorkspaceUserResponse)
    assert basic_ok(user.workspaceUserName, user.workspacePassword)

    for t in ("a", "b", "c"):
        assert query(driver, key, "u", f"CREATE TABLE {t} AS SELECT 1 AS x").status == Q.Success
    driver.run(workspace_pb2.DropWorkspaceObjectCommand(workspaceObjectName="WORKSPACE_tr", objectNameToDrop="a"),
               key, "u")
    expect_error(lambda: driver.run(workspace_pb2.DropWorkspaceObjectCommand(
        workspaceObjectName="WORKSPACE_tr", objectNameToDrop="a"), key, "u"), S.NOT_FOUND, mentions=["a"])
    driver.run(workspace_pb2.DropWorkspaceObjectCommand(workspaceObjectName="WORKSPACE_tr", objectNameToDrop="a",
                                                        ignoreIfNotExists=True), key, "u")
    driver.run(workspace_pb2.ClearWorkspaceCommand(workspaceObjectName="WORKSPACE_tr", objectsToPreserve=["c"]),
               key, "u")
    r = query(driver, key, "u", "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'")
    assert rows(r, "table_name") == [["c"]]
    expect_error(lambda: driver.run(workspace_pb2.DropWorkspaceCommand(workspaceObjectName="nope"), key, "u"),
                 S.INVALID_ARGUMENT, mentions=["workspaceObjectName"])
    expect_error(lambda: driver.run(workspace_pb2.CreateWorkspaceCommand(workspaceId="x", branchId="7"), key, "u"),
                 S.NOT_FOUND, mentions=["branch", "7"])
    expect_error(lambda: driver.run(workspace_pb2.GrantWorkspaceAccessToProjectCommand(
        workspaceObjectName="WORKSPACE_tr"), key, "u"), S.INVALID_ARGUMENT, mentions=["projectUserName"])
    # another project's key reaches nothing here
    other = driver.run(project_pb2.CreateProjectCommand(stackPrefix="kbc", projectId="other"), server.admin_key,
                       response_type=project_pb2.CreateProjectResponse).projectPassword
    expect_error(lambda: query(driver, other, "u", "SELECT 1"), S.PERMISSION_DENIED)
    expect_error(lambda: query(driver, other, "other", "SELECT 1"), S.NOT_FOUND)


def test_workspace_access_to_another_project(server, driver):
    """GrantWorkspaceAccessToProject: the workspace reads the other project's storage, read-only,
    through ds_storage_scan(..., project := id) until RevokeWorkspaceAccessToProject; the grant is
    checked at every scan bind, so the next query after the revocation fails."""
    key, _ = setup_project(server, driver, "ga")
    setup_project(server, driver, "gb")
    driver.run(workspace_pb2.CreateWorkspaceCommand(projectId="ga", workspaceId="tr"), key, "ga",
               workspace_pb2.CreateWorkspaceResponse)
    other = "SELECT name FROM ds_storage_scan('in.c-main', 'customers', project := 'gb') ORDER BY id"
    r = query(driver, key, "ga", other)
    assert r.status == Q.Error and "no grant" in r.message

    grant = workspace_pb2.GrantWorkspaceAccessToProjectCommand
    revoke = workspace_pb2.RevokeWorkspaceAccessToProjectCommand
    # project ga's key may not open gb: it cannot grant itself gb's storage
    expect_error(lambda: driver.run(grant(workspaceObjectName="WORKSPACE_tr", projectUserName="gb"), key, "ga"),
                 S.PERMISSION_DENIED)
    expect_error(lambda: driver.run(grant(workspaceObjectName="WORKSPACE_tr", projectUserName="ga"),
                                    server.admin_key, "ga"), S.INVALID_ARGUMENT, mentions=["own project"])
    expect_error(lambda: driver.run(grant(workspaceObjectName="WORKSPACE_nope", projectUserName="gb"),
                                    server.admin_key, "ga"), S.NOT_FOUND, mentions=["nope"])
    assert query(driver, key, "ga", other).status == Q.Error

    driver.run(grant(workspaceObjectName="WORKSPACE_tr", projectUserName="gb", projectRoleName="gb"),
               server.admin_key, "ga")
    r = query(driver, key, "ga", other)
    assert r.status == Q.Success, r.message
    assert rows(r, "name") == [["Ann"], ["Bob"], ["Cid"]]
    r = query(driver, key, "ga", "CREATE VIEW gb_orders AS SELECT * FROM ds_storage_scan('in.c-main', 'orders', "
                                 "project := 'gb')")
    assert r.status == Q.Success, r.message
    r = query(driver, key, "ga", "DELETE FROM gb_orders")
    assert r.status == Q.Error

    # revoked by the workspace user name and the project role name this time
    driver.run(revoke(workspaceUserName="ws_ga_tr", projectRoleName="gb"), key, "ga")
    for sql in (other, "SELECT count(*) AS n FROM gb_orders"):
        r = query(driver, key, "ga", sql)
        assert r.status == Q.Error and "no grant" in r.message, r.message
    expect_error(lambda: driver.run(revoke(workspaceObjectName="WORKSPACE_tr", projectUserName="gb"), key, "ga"),
                 S.NOT_FOUND, mentions=["no access"])


def test_load_renames_columns_through_column_mappings(server, driver):
    """LoadTableToWorkspace columnMappings: the listed columns, in that order, each under its
    destinationColumnName, for FULL, INCREMENTAL (the primary key compared under its new name) and
    VIEW loads; a bad mapping is INVALID_ARGUMENT naming the field and loads nothing."""
    key, http = setup_project(server, driver, "cm")
    r = http.post(f"{server.url}/projects/cm/buckets/in.c-main/tables",
                  json={"name": "keyed", "columns": [{"name": "id", "type": "INTEGER"}, {"name": "v"}],
                        "primary_key": ["id"]}, timeout=REQUEST_TIMEOUT)
    assert r.status_code == 201, r.text
    f = http.post(f"{server.url}/projects/cm/files", params={"name": "k.csv"}, data=b'"id","v"\n"1","a"\n"2","b"\n',
                  timeout=REQUEST_TIMEOUT).json()
    assert http.post(f"{server.url}/projects/cm/buckets/in.c-main/tables/keyed/import/file",
                     json={"file_id": f["id"]}, timeout=REQUEST_TIMEOUT).status_code == 200
    driver.run(workspace_pb2.CreateWorkspaceCommand(projectId="cm", workspaceId="tr"), key, "cm",
               workspace_pb2.CreateWorkspaceResponse)
    load = workspace_pb2.LoadTableToWorkspaceCommand
    M = load.SourceTableMapping.ColumnMapping

    def run(table, dest, kind, mappings):
        driver.run(load(source=load.SourceTableMapping(path=["in.c-main"], tableName=table, columnMappings=mappings),
                        destination=X.Table(path=["WORKSPACE_tr"], tableName=dest),
                        importOptions=X.ImportOptions(importType=kind)), key, "cm")

    run("customers", "people", X.ImportOptions.FULL,
        [M(sourceColumnName="name", destinationColumnName="full_name"), M(sourceColumnName="id")])
    r = query(driver, key, "cm", "SELECT * FROM people ORDER BY id")
    assert list(r.data.columns) == ["full_name", "id"]
    assert rows(r, "full_name", "id") == [["Ann", "1"], ["Bob", "2"], ["Cid", "3"]]

    run("customers", "people_view", X.ImportOptions.VIEW,
        [M(sourceColumnName="id", destinationColumnName="customer_id")])
    r = query(driver, key, "cm", "SELECT * FROM people_view ORDER BY customer_id")
    assert list(r.data.columns) == ["customer_id"] and rows(r, "customer_id") == [["1"], ["2"], ["3"]]

    keyed = [M(sourceColumnName="id", destinationColumnName="k"), M(sourceColumnName="v", destinationColumnName="w")]
    run("keyed", "kk", X.ImportOptions.FULL, keyed)
    assert query(driver, key, "cm", "UPDATE kk SET w = 'old'").status == Q.Success
    run("keyed", "kk", X.ImportOptions.INCREMENTAL, keyed)
    r = query(driver, key, "cm", "SELECT k, w FROM kk ORDER BY k")
    assert rows(r, "k", "w") == [["1", "a"], ["2", "b"]]

    for bad, words in (([M(sourceColumnName="id", destinationColumnName="x"),
                         M(sourceColumnName="name", destinationColumnName="X")], ["columnMappings", "twice"]),
                       ([M(sourceColumnName="", destinationColumnName="y")], ["sourceColumnName"]),
                       ([M(sourceColumnName="id", destinationColumnName="a" * 300)], ["destinationColumnName"])):
        expect_error(lambda: run("customers", "bad", X.ImportOptions.FULL, bad), S.INVALID_ARGUMENT, mentions=words)
    expect_error(lambda: run("customers", "bad", X.ImportOptions.FULL,
                             [M(sourceColumnName="nope", destinationColumnName="y")]), S.INVALID_ARGUMENT,
                 mentions=["nope"])
    r = query(driver, key, "cm", "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'bad'")
    assert rows(r, "n") == [["0"]]


def test_load_dedup_options(server, driver):
    """importOptions.dedupType and dedupColumnsNames of LoadTableToWorkspace: INSERT_DUPLICATES appends,
    UPDATE_DUPLICATES with a key of its own keeps one row per key, FAIL_ON_DUPLICATES fails naming the key
    and loads nothing; CLONE copies like FULL."""
    key, _http = setup_project(server, driver, "dd")
    driver.run(workspace_pb2.CreateWorkspaceCommand(projectId="dd", workspaceId="tr"), key, "dd",
               workspace_pb2.CreateWorkspaceResponse)
    load = workspace_pb2.LoadTableToWorkspaceCommand

    def run(dest, kind, dedup=X.ImportOptions.UPDATE_DUPLICATES, columns=()):
        driver.run(load(source=load.SourceTableMapping(path=["in.c-main"], tableName="orders"),
                        destination=X.Table(path=["WORKSPACE_tr"], tableName=dest),
                        importOptions=X.ImportOptions(importType=kind, dedupType=dedup,
                                                      dedupColumnsNames=list(columns))), key, "dd")

    run("o", X.ImportOptions.CLONE)
    run("o", X.ImportOptions.INCREMENTAL, X.ImportOptions.INSERT_DUPLICATES)
    r = query(driver, key, "dd", "SELECT count(*) AS n FROM o")
    assert rows(r, "n") == [["6"]]
    run("s", X.ImportOptions.FULL, columns=["state"])
    r = query(driver, key, "dd", "SELECT state FROM s ORDER BY state")
    assert rows(r, "state") == [["CA"], ["TX"]]
    expect_error(lambda: run("f", X.ImportOptions.FULL, X.ImportOptions.FAIL_ON_DUPLICATES, ["state"]),
                 S.INVALID_ARGUMENT, mentions=["fail_on_duplicates", "TX"])
    r = query(driver, key, "dd", "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'f'")
    assert rows(r, "n") == [["0"]]
    expect_error(lambda: run("s", X.ImportOptions.FULL, columns=["nope"]), S.INVALID_ARGUMENT,
                 mentions=["dedup_columns", "nope"])
