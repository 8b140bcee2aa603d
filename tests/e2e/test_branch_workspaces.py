"""Workspaces of development branches: a workspace created in a branch reads the branch's view of
storage (its own copies, main's tables read through), never main's data the branch replaced; and
unloading from it writes the branch only."""

from data_helpers import Proj
from e2e_lib import expect, expect_error

B = "in.c-main"


def ws_query(p, ws, sql):
    return expect(p.api.post(f"/projects/{p.pid}/workspaces/{ws}/query", {"sql": sql}), 200)


def load(p, ws, table, typ="full"):
    return expect(p.api.post(f"/projects/{p.pid}/workspaces/{ws}/load",
                             {"source": {"bucket": B, "table": table}, "destination": table, "type": typ}), 200)


def ids(p, ws, table):
    return sorted(r[0] for r in ws_query(p, ws, f"SELECT id FROM {table} ORDER BY id")["rows"])


def branch_project(server, admin):
    p = Proj(server, admin, "bw")
    p.create_table("people", ["id", "name"], primary_key=["id"])
    p.load_rows("people", ["id", "name"], [["1", "Ann"], ["2", "Bob"]])
    p.create_table("pets", ["id", "kind"])
    p.load_rows("pets", ["id", "kind"], [["7", "cat"]])
    expect(p.api.post(f"/projects/{p.pid}/branches", {"id": "dev"}), 201)
    # the branch writes its own copy of people; pets it only reads through
    expect(p.api.post(f"/projects/{p.pid}/branches/dev/buckets/{B}/tables/people/import/file",
                      {"file_id": p.upload("b.csv", b"id,name\n1,Ann\n2,Bob\n3,Cid\n")["id"], "incremental": True}), 200)
    return p


def test_a_branch_workspace_reads_the_branchs_view(server, admin):
    p = branch_project(server, admin)
    ws = expect(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "wdev", "branch": "dev"}), 201)
    assert ws["branch"] == "dev"
    assert expect(p.api.get(f"/projects/{p.pid}/workspaces/wdev"), 200)["branch"] == "dev"
    main_ws = expect(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "wmain"}), 201)
    assert main_ws["branch"] == "default"
    for typ in ("full", "view"):
        load(p, "wdev", "people", typ)
        load(p, "wmain", "people", typ)
        assert ids(p, "wdev", "people") == ["1", "2", "3"], typ  # the branch's copy
        assert ids(p, "wmain", "people") == ["1", "2"], typ  # main
        expect(p.api.post(f"/projects/{p.pid}/workspaces/wdev/clear", {}), 204)
        expect(p.api.post(f"/projects/{p.pid}/workspaces/wmain/clear", {}), 204)
    # a table the branch has not written reads main's current data, also after main changes
    load(p, "wdev", "pets", "view")
    p.load_rows("pets", ["id", "kind"], [["8", "dog"]], incremental=True)
    assert ids(p, "wdev", "pets") == ["7", "8"]


def test_a_workspace_created_under_the_branch_path_belongs_to_it(server, admin):
    p = branch_project(server, admin)
    ws = expect(p.api.post(f"/projects/{p.pid}/branches/dev/workspaces", {"id": "wpath"}), 201)
    assert ws["branch"] == "dev"
    load(p, "wpath", "people")
    assert ids(p, "wpath", "people") == ["1", "2", "3"]
    # body and path naming two branches: refused, nothing created
    expect(p.api.post(f"/projects/{p.pid}/branches", {"id": "other"}), 201)
    e = expect_error(p.api.post(f"/projects/{p.pid}/branches/dev/workspaces", {"id": "wx", "branch": "other"}),
                     400, "invalid_argument", ["branch"])
    assert "other" in e["message"]
    expect_error(p.api.get(f"/projects/{p.pid}/workspaces/wx"), 404, "not_found")
    # a branch that does not exist
    expect_error(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "wy", "branch": "nope"}), 404, "not_found",
                 ["nope"])
    expect_error(p.api.get(f"/projects/{p.pid}/workspaces/wy"), 404, "not_found")


def test_unload_from_a_branch_workspace_writes_the_branch_only(server, admin):
    p = branch_project(server, admin)
    expect(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "wu", "branch": "dev"}), 201)
    ws_query(p, "wu", "CREATE TABLE result AS SELECT '9' AS id, 'kind9' AS kind")
    expect(p.api.post(f"/projects/{p.pid}/branches/dev/buckets/{B}/tables/pets/import/table",
                      {"source": {"workspace": "wu", "table": "result"}, "incremental": True}), 200)
    branch_ids = sorted(r[0] for r in expect(
        p.api.get(f"/projects/{p.pid}/branches/dev/buckets/{B}/tables/pets/preview"), 200)["rows"])
    assert branch_ids == ["7", "9"]
    main_ids = sorted(r[0] for r in expect(p.api.get(p.tpath("pets") + "/preview"), 200)["rows"])
    assert main_ids == ["7"]


def test_unload_from_a_branch_workspace_into_main_writes_main(server, admin):
    """The destination of an unload is the request's branch, whatever branch the workspace reads."""
    p = branch_project(server, admin)
    expect(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "wm", "branch": "dev"}), 201)
    ws_query(p, "wm", "CREATE TABLE result AS SELECT '5' AS id, 'kind5' AS kind")
    expect(p.api.post(p.tpath("pets") + "/import/table",
                      {"source": {"workspace": "wm", "table": "result"}, "incremental": True}), 200)
    assert sorted(r[0] for r in expect(p.api.get(p.tpath("pets") + "/preview"), 200)["rows"]) == ["5", "7"]
    branch = expect(p.api.get(f"/projects/{p.pid}/branches/dev"), 200)
    assert {t["id"]: t["source"] for t in branch["tables"]}[f"{B}.pets"] == "main"


def test_deleting_a_branch_removes_its_workspaces_only(server, admin):
    p = branch_project(server, admin)
    expect(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "wd", "branch": "dev"}), 201)
    expect(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "wkeep"}), 201)
    load(p, "wd", "people")
    files = list((server.data_dir / "workspaces").glob("*wd*"))
    assert files, "the branch workspace has a sandbox file"
    expect(p.api.delete(f"/projects/{p.pid}/branches/dev"), 204)
    expect_error(p.api.get(f"/projects/{p.pid}/workspaces/wd"), 404, "not_found")
    assert not any(f.exists() for f in files)
    assert [w["id"] for w in expect(p.api.get(f"/projects/{p.pid}/workspaces"), 200)["items"]] == ["wkeep"]


def test_project_query_and_workspace_list_under_a_branch_path(server, admin):
    p = branch_project(server, admin)
    q = {"sql": f'SELECT id FROM "{B}"."people" ORDER BY id'}
    got = expect(p.api.post(f"/projects/{p.pid}/branches/dev/query", q), 200)
    assert [r[0] for r in got["rows"]] == ["1", "2", "3"]  # the branch's copy
    got = expect(p.api.post(f"/projects/{p.pid}/query", q), 200)
    assert [r[0] for r in got["rows"]] == ["1", "2"]  # main
    # a bucket created only in the branch is visible to the branch's query only
    expect(p.api.post(f"/projects/{p.pid}/branches/dev/buckets", {"stage": "out", "name": "c-dev"}), 201)
    expect(p.api.post(f"/projects/{p.pid}/branches/dev/buckets/out.c-dev/tables",
                      {"name": "n", "columns": [{"name": "a"}]}), 201)
    expect(p.api.post(f"/projects/{p.pid}/branches/dev/query", {"sql": 'SELECT count(*) FROM "out.c-dev"."n"'}), 200)
    expect_error(p.api.post(f"/projects/{p.pid}/query", {"sql": 'SELECT count(*) FROM "out.c-dev"."n"'}),
                 400, "query_failed")
    expect(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "wa", "branch": "dev"}), 201)
    expect(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "wb"}), 201)
    ids_of = lambda path: sorted(w["id"] for w in expect(p.api.get(path), 200)["items"])
    assert ids_of(f"/projects/{p.pid}/branches/dev/workspaces") == ["wa"]
    assert ids_of(f"/projects/{p.pid}/branches/default/workspaces") == ["wb"]
    assert ids_of(f"/projects/{p.pid}/workspaces") == ["wa", "wb"]
