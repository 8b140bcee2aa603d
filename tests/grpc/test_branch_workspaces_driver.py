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
