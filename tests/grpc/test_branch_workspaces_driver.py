"""A workspace of a development branch over the driver protocol (gRPC and the bridge):
CreateWorkspace with branchId reads the branch's view of storage through every load, while a
workspace of the same project in main reads main."""

from driver_lib import executeQuery_pb2, project_pb2, table_pb2, workspace_pb2
from test_workspaces_driver import query, rows, setup_project

X = table_pb2.ImportExportShared
Q = executeQuery_pb2.ExecuteQueryResponse


def test_a_branch_workspace_reads_the_branch(server, driver):
    key, http = setup_project(server, driver, "bw")
    driver.run(project_pb2.CreateDevBranchCommand(projectId="bw", branchId="42"), key, "bw",
               project_pb2.CreateDevBranchResponse)
    # the branch deletes customer 3 (its own copy); main keeps all three
    r = http.delete(f"{server.url}/projects/bw/branches/42/buckets/in.c-main/tables/customers/rows",
                    json={"where_filters": [{"column": "id", "operator": "eq", "values": ["3"]}]}, timeout=30)
    assert r.status_code == 200, r.text
    for ws, branch in (("wb", "42"), ("wm", None)):
        cmd = workspace_pb2.CreateWorkspaceCommand(projectId="bw", workspaceId=ws)
        if branch:
            cmd.branchId = branch
        driver.run(cmd, key, "bw", workspace_pb2.CreateWorkspaceResponse)
        load = workspace_pb2.LoadTableToWorkspaceCommand
        for typ in (X.ImportOptions.FULL, X.ImportOptions.VIEW):
            name = "c_full" if typ == X.ImportOptions.FULL else "c_view"
            driver.run(load(source=load.SourceTableMapping(path=["in.c-main"], tableName="customers"),
                            destination=X.Table(path=[f"WORKSPACE_{ws}"], tableName=name),
                            importOptions=X.ImportOptions(importType=typ)), key, "bw")
    for name in ("c_full", "c_view"):
        r = query(driver, key, "bw", f"SELECT id FROM {name} ORDER BY id", ws="WORKSPACE_wb")
        assert r.status == Q.Success, r.message
        assert rows(r, "id") == [["1"], ["2"]]
        r = query(driver, key, "bw", f"SELECT id FROM {name} ORDER BY id", ws="WORKSPACE_wm")
        assert rows(r, "id") == [["1"], ["2"], ["3"]]


def test_a_branch_workspace_lifecycle(server, driver):
    """Every workspace command works on a workspace of a branch: logins (reset, drop, create user), objects
    (drop one, clear), access to another project (grant, revoke) and the drop, which removes its file."""
    import requests
    from driver_lib import REQUEST_TIMEOUT

    key, _http = setup_project(server, driver, "bl")
    setup_project(server, driver, "bo")
    driver.run(project_pb2.CreateDevBranchCommand(projectId="bl", branchId="9"), key, "bl",
               project_pb2.CreateDevBranchResponse)
    ws = driver.run(workspace_pb2.CreateWorkspaceCommand(projectId="bl", workspaceId="wb", branchId="9"), key, "bl",
                    workspace_pb2.CreateWorkspaceResponse)
    obj = "WORKSPACE_wb"

    def login_ok(user, password):
        r = requests.post(f"{server.url}/projects/bl/workspaces/wb/query", json={"sql": "SELECT 1"},
                          auth=(user, password), timeout=REQUEST_TIMEOUT)
        return r.status_code == 200

    assert login_ok(ws.workspaceUserName, ws.workspacePassword)
    reset = driver.run(workspace_pb2.ResetWorkspacePasswordCommand(workspaceUserName=ws.workspaceUserName), key,
                       "bl", workspace_pb2.ResetWorkspacePasswordResponse)
    assert not login_ok(ws.workspaceUserName, ws.workspacePassword)
    assert login_ok(ws.workspaceUserName, reset.workspacePassword)
    driver.run(workspace_pb2.DropWorkspaceUserCommand(workspaceUserName=ws.workspaceUserName), key, "bl")
    assert not login_ok(ws.workspaceUserName, reset.workspacePassword)
    user = driver.run(workspace_pb2.CreateWorkspaceUserCommand(workspaceObjectName=obj), key, "bl",
                      workspace_pb2.CreateWorkspaceUserResponse)
    assert login_ok(user.workspaceUserName, user.workspacePassword)

    for t in ("a", "b", "c"):
        assert query(driver, key, "bl", f"CREATE TABLE {t} AS SELECT 1 AS x", ws=obj).status == Q.Success
    driver.run(workspace_pb2.DropWorkspaceObjectCommand(workspaceObjectName=obj, objectNameToDrop="a"), key, "bl")
    driver.run(workspace_pb2.ClearWorkspaceCommand(workspaceObjectName=obj, objectsToPreserve=["c"]), key, "bl")
    r = query(driver, key, "bl", "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'",
              ws=obj)
    assert rows(r, "table_name") == [["c"]]

    other = "SELECT count(*) AS n FROM ds_storage_scan('in.c-main', 'customers', project := 'bo')"
    assert query(driver, key, "bl", other, ws=obj).status == Q.Error
    grant = workspace_pb2.GrantWorkspaceAccessToProjectCommand
    revoke = workspace_pb2.RevokeWorkspaceAccessToProjectCommand
    driver.run(grant(workspaceObjectName=obj, projectUserName="bo", projectRoleName="bo"), server.admin_key, "bl")
    r = query(driver, key, "bl", other, ws=obj)
    assert r.status == Q.Success and rows(r, "n") == [["3"]]
    driver.run(revoke(workspaceObjectName=obj, projectUserName="bo", projectRoleName="bo"), server.admin_key, "bl")
    assert query(driver, key, "bl", other, ws=obj).status == Q.Error

    driver.run(workspace_pb2.DropWorkspaceCommand(workspaceObjectName=obj), key, "bl")
    assert not list((server.data_dir / "workspaces").glob("ws_bl.wb*"))
