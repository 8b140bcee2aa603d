"""Workspaces over REST: lifecycle, loads, queries, unload, and the workspace's own login.

The Keboola-style flow (test_transformation_flow): create a workspace, load two storage tables,
run a join into a new workspace table, unload it into storage, drop the workspace.
"""

import json
import base64

from data_helpers import Proj, csv_text
from e2e_lib import expect, expect_error, get_metrics, metric

B = "in.c-main"


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def setup_orders(p):
    p.create_table("customers", [{"name": "id", "type": "INTEGER"}, {"name": "name"}], primary_key=["id"])
    p.create_table("orders", [{"name": "id", "type": "INTEGER"}, {"name": "customer", "type": "INTEGER"},
                              {"name": "amount", "type": "DECIMAL(10,2)"}, {"name": "state"}], primary_key=["id"])
    f = p.upload("customers.csv", csv_text([["1", "Ann"], ["2", "Bob"], ["3", "Cid"]], header=["id", "name"]))
    expect(p.api.post(p.tpath("customers") + "/import/file", {"file_id": f["id"]}), 200)
    rows = [["10", "1", "5.50", "TX"], ["11", "1", "4.50", "CA"], ["12", "2", "10.00", "TX"], ["13", "3", "1.25", "NY"]]
    f = p.upload("orders.csv", csv_text(rows, header=["id", "customer", "amount", "state"]))
    expect(p.api.post(p.tpath("orders") + "/import/file", {"file_id": f["id"]}), 200)


def ws_path(p, ws, rest=""):
    return f"/projects/{p.pid}/workspaces/{ws}{rest}"


def query(p, ws, sql, **kw):
    body = {"sql": sql}
    body.update(kw)
    return p.api.post(ws_path(p, ws, "/query"), body)


def test_transformation_flow(server, admin):
    p = Proj(server, admin, "p1")
    setup_orders(p)
    ws = expect(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "tr1"}), 201)
    assert ws["id"] == "tr1" and ws["branch"] == "default" and ws["password"] and ws["user"] and ws["object_name"]
    # the password is shown once: never again in get or list
    got = expect(p.api.get(ws_path(p, "tr1")), 200)
    assert "password" not in got and got["user"] == ws["user"]
    listed = expect(p.api.get(f"/projects/{p.pid}/workspaces"), 200)["items"]
    assert [w["id"] for w in listed] == ["tr1"] and all("password" not in w for w in listed)

    r = expect(p.api.post(ws_path(p, "tr1", "/load"), {"source": {"bucket": B, "table": "customers"},
                                                        "destination": "customers"}), 200)
    assert r == {"destination": "customers", "rows": 3}
    r = expect(p.api.post(ws_path(p, "tr1", "/load"), {"source": {"bucket": B, "table": "orders"},
                                                        "destination": "tx_orders", "type": "full",
                                                        "where_filters": [{"column": "state", "operator": "eq",
                                                                           "values": ["TX"]}]}), 200)
    assert r["rows"] == 2
    r = expect(query(p, "tr1", "CREATE TABLE totals AS SELECT c.name, sum(o.amount) AS total, count(*) AS n "
                               "FROM tx_orders o JOIN customers c ON c.id = o.customer GROUP BY c.name"), 200)
    assert r["rows_affected"] == 2
    r = expect(query(p, "tr1", "SELECT name, total, n FROM totals ORDER BY name"), 200)
    assert [c["name"] for c in r["columns"]] == ["name", "total", "n"]
    assert [c["type"] for c in r["columns"]] == ["VARCHAR", "DECIMAL(38,2)", "BIGINT"]
    assert r["rows"] == [["Ann", "5.50", "1"], ["Bob", "10.00", "1"]] and r["truncated"] is False

    # unload: the workspace table becomes a storage table, through the usual import
    expect(p.api.post(f"/projects/{p.pid}/buckets", {"stage": "out", "name": "c-report"}), 201)
    imp = expect(p.api.post(f"/projects/{p.pid}/buckets/out.c-report/tables/totals/import/table",
                            {"source": {"workspace": "tr1", "table": "totals"}, "create_mode": "create"}), 200)
    assert imp["imported_rows"] == 2 and imp["table_rows"] == 2
    prev = expect(p.api.get(f"/projects/{p.pid}/buckets/out.c-report/tables/totals/preview",
                            params={"order_by": "name"}), 200)
    assert prev["rows"] == [["Ann", "5.50", "1"], ["Bob", "10.00", "1"]]
    # the unload left no Storage File behind
    assert [f["name"] for f in p.files() if f["name"].startswith("unloads/")] == []
    # columns_mapping picks and renames the workspace table's columns (Keboola's output mapping)
    imp = expect(p.api.post(f"/projects/{p.pid}/buckets/out.c-report/tables/named/import/table",
                            {"source": {"workspace": "tr1", "table": "totals"}, "create_mode": "create",
                             "columns_mapping": [{"source": "n", "destination": "orders"},
                                                 {"source": "name", "destination": "customer"}]}), 200)
    assert imp["imported_rows"] == 2
    prev = expect(p.api.get(f"/projects/{p.pid}/buckets/out.c-report/tables/named/preview",
                            params={"order_by": "customer"}), 200)
    assert prev["columns"] == ["orders", "customer"] and prev["rows"] == [["1", "Ann"], ["1", "Bob"]]
    expect_error(p.api.post(f"/projects/{p.pid}/buckets/out.c-report/tables/named/import/table",
                            {"source": {"workspace": "tr1", "table": "totals"},
                             "columns_mapping": [{"source": "nope", "destination": "orders"}]}),
                 400, "invalid_argument", ["nope"])

    ws_file = server.data_dir / "workspaces" / "ws_p1.tr1.duckdb"
    assert ws_file.exists()
    expect(p.api.delete(ws_path(p, "tr1")), 204)
    assert not ws_file.exists()
    expect_error(p.api.get(ws_path(p, "tr1")), 404, "not_found", ["tr1"])
    expect_error(query(p, "tr1", "SELECT 1"), 404, "not_found")


def test_view_load_reads_current_storage_and_is_read_only(server, admin):
    p = Proj(server, admin, "p1")
    setup_orders(p)
    expect(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "v"}), 201)
    r = expect(p.api.post(ws_path(p, "v", "/load"), {"source": {"bucket": B, "table": "customers"},
                                                      "destination": "cv", "type": "view",
                                                      "columns": ["name"]}), 200)
    assert r["rows"] == 3
    assert expect(query(p, "v", "SELECT count(*) FROM cv"), 200)["rows"] == [["3"]]
    # a new storage row is visible through the view at once (no copy)
    f = p.upload("more.csv", csv_text([["4", "Dan"]], header=["id", "name"]))
    expect(p.api.post(p.tpath("customers") + "/import/file", {"file_id": f["id"], "incremental": True}), 200)
    r = expect(query(p, "v", "SELECT * FROM cv ORDER BY name"), 200)
    assert [c["name"] for c in r["columns"]] == ["name"]
    assert r["rows"] == [["Ann"], ["Bob"], ["Cid"], ["Dan"]]
    expect_error(query(p, "v", "INSERT INTO cv VALUES ('x')"), 400, "query_failed")
    expect_error(query(p, "v", "DELETE FROM cv"), 400, "query_failed")
    assert expect(p.api.get(p.tpath("customers")), 200)["rows"] == 4
    # filters need a copy: refused for views, with the reason
    expect_error(p.api.post(ws_path(p, "v", "/load"), {"source": {"bucket": B, "table": "customers"},
                                                        "type": "view", "limit": 1}), 400, "invalid_argument",
                 ["view"])


def test_incremental_and_clone_loads(server, admin):
    p = Proj(server, admin, "p1")
    setup_orders(p)
    expect(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "w"}), 201)
    load = ws_path(p, "w", "/load")
    src = {"bucket": B, "table": "orders"}
    assert expect(p.api.post(load, {"source": src, "destination": "o", "type": "clone"}), 200)["rows"] == 4
    assert expect(p.api.post(load, {"source": src, "destination": "o", "type": "incremental", "limit": 1,
                                    "columns": ["id", "state"]}), 200)["rows"] == 1
    # the key (id) of the one row loaded was there: that row is replaced, without the columns not loaded
    r = expect(query(p, "w", "SELECT count(*), count(amount) FROM o"), 200)
    assert r["rows"] == [["4", "3"]]
    # full replaces
    assert expect(p.api.post(load, {"source": src, "destination": "o"}), 200)["rows"] == 4
    assert expect(query(p, "w", "SELECT count(*) FROM o"), 200)["rows"] == [["4"]]
    # incremental on a table with a primary key replaces the rows whose key comes again
    expect(query(p, "w", "UPDATE o SET state = 'old'"), 200)
    expect(query(p, "w", "INSERT INTO o (id, state) VALUES (99, 'mine')"), 200)
    f = p.upload("o2.csv", csv_text([["11", "1", "7.00", "WA"]], header=["id", "customer", "amount", "state"]))
    expect(p.api.post(p.tpath("orders") + "/import/file", {"file_id": f["id"], "incremental": True}), 200)
    r = expect(p.api.post(load, {"source": src, "destination": "o", "type": "incremental",
                                 "where_filters": [{"column": "id", "operator": "ge", "values": ["11"],
                                                    "data_type": "integer"}]}), 200)
    assert r["rows"] == 3
    r = expect(query(p, "w", "SELECT id, state FROM o ORDER BY id"), 200)
    assert r["rows"] == [["10", "old"], ["11", "WA"], ["12", "TX"], ["13", "NY"], ["99", "mine"]]


def test_load_dedup_options(server, admin):
    """dedup and dedup_columns mean for a workspace load what they mean for a table import: update_duplicates
    replaces the destination's rows of keys the input holds and collapses the input to one row per key;
    insert_duplicates appends; fail_on_duplicates fails (changing nothing) on a key the input holds twice or,
    incremental, one the destination holds already."""
    p = Proj(server, admin, "p1")
    setup_orders(p)
    expect(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "w"}), 201)
    load = ws_path(p, "w", "/load")
    src = {"bucket": B, "table": "orders"}

    def rows(sql):
        return expect(query(p, "w", sql), 200)["rows"]

    def one_key(value):
        return [{"column": "id", "operator": "eq", "values": [value], "data_type": "integer"}]

    expect(p.api.post(load, {"source": src, "destination": "o"}), 200)
    expect(query(p, "w", "UPDATE o SET state = 'old'"), 200)
    # update_duplicates (the default) on the primary key: row 10 comes back as stored
    expect(p.api.post(load, {"source": src, "destination": "o", "type": "incremental",
                             "where_filters": one_key("10")}), 200)
    assert rows("SELECT id, state FROM o ORDER BY id") == [["10", "TX"], ["11", "old"], ["12", "old"], ["13", "old"]]
    # insert_duplicates: appended next to the row of the same key
    expect(p.api.post(load, {"source": src, "destination": "o", "type": "incremental", "dedup": "insert_duplicates",
                             "where_filters": one_key("11")}), 200)
    assert rows("SELECT id, state FROM o WHERE id = 11 ORDER BY state") == [["11", "CA"], ["11", "old"]]
    # fail_on_duplicates: key 12 is in the destination already; nothing changes
    before = rows("SELECT * FROM o ORDER BY ALL")
    expect_error(p.api.post(load, {"source": src, "destination": "o", "type": "incremental",
                                   "dedup": "fail_on_duplicates", "where_filters": one_key("12")}),
                 400, "invalid_argument", ["fail_on_duplicates", "12", "destination"])
    assert rows("SELECT * FROM o ORDER BY ALL") == before
    # a key of its own (dedup_columns): state, which the input holds twice (TX)
    expect_error(p.api.post(load, {"source": src, "destination": "s", "dedup": "fail_on_duplicates",
                                   "dedup_columns": ["state"]}), 400, "invalid_argument",
                 ["fail_on_duplicates", "tx", "more than once"])
    assert rows("SELECT count(*) FROM information_schema.tables WHERE table_name = 's'") == [["0"]]
    r = expect(p.api.post(load, {"source": src, "destination": "s", "dedup_columns": ["state"]}), 200)
    assert r["rows"] == 3
    assert rows("SELECT state FROM s ORDER BY state") == [["CA"], ["NY"], ["TX"]]
    # an incremental load on state replaces the rows of the states the input holds
    expect(query(p, "w", "UPDATE s SET amount = 0"), 200)
    expect(p.api.post(load, {"source": src, "destination": "s", "type": "incremental", "dedup_columns": ["state"],
                             "where_filters": [{"column": "state", "operator": "eq", "values": ["NY"]}]}), 200)
    assert rows("SELECT state, amount FROM s ORDER BY state") == [["CA", "0.00"], ["NY", "1.25"], ["TX", "0.00"]]
    # bad options: named, nothing changed
    before = rows("SELECT * FROM s ORDER BY ALL")
    for body, words in [({"dedup": "merge"}, ["dedup"]),
                        ({"dedup_columns": ["nope"]}, ["dedup_columns", "nope"]),
                        ({"dedup_columns": ["state"], "columns": ["id", "amount"]}, ["dedup_columns", "state", "loaded"]),
                        ({"dedup_columns": ["state"], "type": "view"}, ["view", "dedup"])]:
        expect_error(p.api.post(load, {"source": src, "destination": "s", **body}), 400, "invalid_argument", words)
    assert rows("SELECT * FROM s ORDER BY ALL") == before


def test_bad_loads_change_nothing(server, admin):
    p = Proj(server, admin, "p1")
    setup_orders(p)
    expect(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "w"}), 201)
    load = ws_path(p, "w", "/load")
    expect(p.api.post(load, {"source": {"bucket": B, "table": "customers"}, "destination": "c"}), 200)
    expect_error(p.api.post(load, {"source": {"bucket": B, "table": "nope"}, "destination": "c"}), 404,
                 "not_found", ["nope"])
    expect_error(p.api.post(load, {"source": {"bucket": B, "table": "orders"}, "destination": "c",
                                   "columns": ["nope"]}), 400, "invalid_argument", ["nope"])
    expect_error(p.api.post(load, {"source": {"bucket": B, "table": "orders"}, "destination": "bad name"}), 400,
                 "invalid_argument")
    expect_error(p.api.post(load, {"source": {"bucket": B, "table": "orders"}, "type": "copy"}), 400,
                 "invalid_argument", ["type"])
    # c is still the customers copy
    r = expect(query(p, "w", "SELECT count(*) FROM c"), 200)
    assert r["rows"] == [["3"]]


def test_clear_drop_object_and_password_reset(server, admin):
    p = Proj(server, admin, "p1")
    setup_orders(p)
    ws = expect(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "w"}), 201)
    expect(p.api.post(ws_path(p, "w", "/load"), {"source": {"bucket": B, "table": "customers"}}), 200)
    expect(p.api.post(ws_path(p, "w", "/load"), {"source": {"bucket": B, "table": "orders"}, "type": "view"}), 200)
    expect(query(p, "w", "CREATE TABLE extra AS SELECT 1 AS x"), 200)
    expect(p.api.delete(ws_path(p, "w", "/objects/extra")), 204)
    expect_error(query(p, "w", "SELECT * FROM extra"), 400, "query_failed", ["extra"])
    expect_error(p.api.delete(ws_path(p, "w", "/objects/extra")), 404, "not_found", ["extra"])
    expect(p.api.post(ws_path(p, "w", "/clear")), 204)
    r = expect(query(p, "w", "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main'"), 200)
    assert r["rows"] == [["0"]]

    anon = p.api.with_key(None)
    old = basic(ws["user"], ws["password"])
    assert expect(anon.post(ws_path(p, "w", "/query"), {"sql": "SELECT 7"}, headers=old), 200)["rows"] == [["7"]]
    new = expect(p.api.post(ws_path(p, "w", "/password")), 200)
    assert new["password"] and new["password"] != ws["password"]
    expect_error(anon.post(ws_path(p, "w", "/query"), {"sql": "SELECT 7"}, headers=old), 401, "unauthenticated")
    cred = basic(ws["user"], new["password"])
    assert expect(anon.post(ws_path(p, "w", "/query"), {"sql": "SELECT 8"}, headers=cred), 200)["rows"] == [["8"]]
    expect(anon.post(ws_path(p, "w", "/load"), {"source": {"bucket": B, "table": "customers"}}, headers=cred), 200)
    # the login dropped (DropWorkspaceUser): no password works, the objects stay, a reset brings a login back
    expect_error(anon.delete(ws_path(p, "w", "/password"), headers=cred), 401, "unauthenticated")
    expect(p.api.delete(ws_path(p, "w", "/password")), 204)
    expect_error(anon.post(ws_path(p, "w", "/query"), {"sql": "SELECT 9"}, headers=cred), 401, "unauthenticated")
    assert expect(query(p, "w", "SELECT count(*) FROM customers"), 200)["rows"] == [["3"]]
    again = expect(p.api.post(ws_path(p, "w", "/password")), 200)
    cred = basic(ws["user"], again["password"])
    assert expect(anon.post(ws_path(p, "w", "/query"), {"sql": "SELECT 10"}, headers=cred), 200)["rows"] == [["10"]]


def test_project_query_is_read_only_over_storage(server, admin):
    p = Proj(server, admin, "p1")
    setup_orders(p)
    q = f"/projects/{p.pid}/query"
    r = expect(p.api.post(q, {"sql": f'SELECT state, count(*) AS n FROM "{B}"."orders" GROUP BY state ORDER BY state'}),
               200)
    assert r["rows"] == [["CA", "1"], ["NY", "1"], ["TX", "2"]]
    r = expect(p.api.post(q, {"sql": f'SELECT id FROM "{B}"."orders" ORDER BY id', "limit": 2}), 200)
    assert r["rows"] == [["10"], ["11"]] and r["truncated"] is True
    for sql in [f'DELETE FROM "{B}"."orders"', f'DROP VIEW "{B}"."orders"', "CREATE TABLE x (a INT)",
                f'INSERT INTO "{B}"."orders" VALUES (1, 1, 1, \'x\')', f'UPDATE "{B}"."orders" SET state = \'x\'']:
        expect_error(p.api.post(q, {"sql": sql}), 400, "query_failed")
    expect_error(p.api.post(q, {"sql": "CREATE TABLE x (a INT)"}), 400, "query_failed", ["read-only"])
    assert expect(p.api.get(p.tpath("orders")), 200)["rows"] == 4


def test_unknown_branches_answer_404_and_bad_input_400(server, admin):
    p = Proj(server, admin, "p1")
    expect_error(p.api.post(f"/projects/{p.pid}/workspaces", {"branch": "dev"}), 404, "not_found", ["dev"])
    expect_error(p.api.post(f"/projects/{p.pid}/branches/dev/workspaces", {}), 404, "not_found", ["dev"])
    ws = expect(p.api.post(f"/projects/{p.pid}/branches/default/workspaces", {}), 201)
    assert ws["branch"] == "default" and ws["id"]
    expect_error(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "a/b"}), 400, "invalid_argument", ["id"])
    expect_error(p.api.post(f"/projects/{p.pid}/workspaces", {"id": ws["id"]}), 409, "already_exists")
    expect_error(p.api.post(f"/projects/{p.pid}/workspaces", {"nope": 1}), 400, "invalid_argument", ["nope"])
    expect_error(query(p, ws["id"], ""), 400, "invalid_argument", ["sql"])
    expect_error(query(p, ws["id"], "SELECT 1", timeout=-1), 400, "invalid_argument", ["timeout"])
    assert [w["id"] for w in expect(p.api.get(f"/projects/{p.pid}/workspaces"), 200)["items"]] == [ws["id"]]


def test_row_cap_and_deleting_the_project_removes_workspaces(server_factory):
    server = server_factory(env={"DUCKSTORE_WS_MAX_ROWS": "5"})
    admin = server.api()
    p = Proj(server, admin, "p1")
    expect(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "w"}), 201)
    r = expect(query(p, "w", "SELECT * FROM range(100)"), 200)
    assert len(r["rows"]) == 5 and r["truncated"] is True
    r = expect(query(p, "w", "SELECT * FROM range(5)"), 200)
    assert len(r["rows"]) == 5 and r["truncated"] is False
    # a request's limit can lower the cap, never raise it
    r = expect(query(p, "w", "SELECT * FROM range(100)", limit=3), 200)
    assert len(r["rows"]) == 3 and r["truncated"] is True
    r = expect(query(p, "w", "SELECT * FROM range(100)", limit=50), 200)
    assert len(r["rows"]) == 5 and r["truncated"] is True
    assert (server.data_dir / "workspaces" / "ws_p1.w.duckdb").exists()
    expect(admin.delete("/projects/p1"), 204)
    assert not (server.data_dir / "workspaces" / "ws_p1.w.duckdb").exists()


def test_idle_sandboxes_close_under_the_cap_and_reopen(server_factory):
    server = server_factory(env={"DUCKSTORE_WS_MAX_OPEN": "2"})
    admin = server.api()
    p = Proj(server, admin, "p1")
    for i in range(4):
        expect(p.api.post(f"/projects/{p.pid}/workspaces", {"id": f"w{i}"}), 201)
        expect(query(p, f"w{i}", f"CREATE TABLE t AS SELECT {i} AS v"), 200)
    # every workspace keeps its data across closes and reopens, and no more than 2 stay open
    for i in range(4):
        assert expect(query(p, f"w{i}", "SELECT v FROM t"), 200)["rows"] == [[str(i)]]
    assert metric(get_metrics(admin), "duckstore_workspace_sandboxes_open") == 2
    server.restart()
    p.api = p.api.with_key(p.key)
    for i in range(4):
        assert expect(query(p, f"w{i}", "SELECT v FROM t"), 200)["rows"] == [[str(i)]]


def test_unused_sandboxes_close_after_the_idle_time(server_factory):
    """DUCKSTORE_WS_IDLE_CLOSE: a sandbox nobody used for that long is closed (its memory returned) and opened
    again, with its data, by the next use; one in use stays open."""
    import time
    server = server_factory(env={"DUCKSTORE_WS_IDLE_CLOSE": "1s"})
    admin = server.api()
    p = Proj(server, admin, "p1")
    for ws in ("a", "b"):
        expect(p.api.post(f"/projects/{p.pid}/workspaces", {"id": ws}), 201)
        expect(query(p, ws, f"CREATE TABLE t AS SELECT '{ws}' AS v"), 200)
    assert metric(get_metrics(admin), "duckstore_workspace_sandboxes_open") == 2
    # b is used every 0.3 s; a is not
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        assert expect(query(p, "b", "SELECT v FROM t"), 200)["rows"] == [["b"]]
        time.sleep(0.3)
    assert metric(get_metrics(admin), "duckstore_workspace_sandboxes_open") == 1
    time.sleep(2.5)
    assert metric(get_metrics(admin), "duckstore_workspace_sandboxes_open") == 0
    for ws in ("a", "b"):
        assert expect(query(p, ws, "SELECT v FROM t"), 200)["rows"] == [[ws]]


def test_csv_answers_carry_every_row(server_factory):
    server = server_factory(env={"DUCKSTORE_WS_MAX_ROWS": "5"})
    admin = server.api()
    p = Proj(server, admin, "p1")
    setup_orders(p)
    expect(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "w"}), 201)
    r = query(p, "w", "SELECT range AS n, CASE WHEN range = 1 THEN NULL ELSE 'a\"b,' || range END AS s "
                      "FROM range(20) ORDER BY n;", format="csv")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    lines = r.content.decode().splitlines()
    assert len(lines) == 21 and lines[0] == '"n","s"'
    assert lines[1] == '"0","a""b,0"' and lines[2] == '"1",'
    r = p.api.post(f"/projects/{p.pid}/query", {"sql": f'SELECT id FROM "{B}"."orders" ORDER BY id', "format": "csv"})
    assert r.status_code == 200 and r.content.decode().splitlines() == ['"id"', '"10"', '"11"', '"12"', '"13"']
    # the same rules as JSON answers: one statement, and only a SELECT
    expect_error(query(p, "w", "CREATE TABLE x AS SELECT 1", format="csv"), 400, "query_failed", ["SELECT"])
    expect_error(query(p, "w", "SELECT 1; SELECT 2", format="csv"), 400, "query_failed", ["one sql statement"])
    expect_error(query(p, "w", "SELECT * FROM read_csv('/etc/passwd')", format="csv"), 400, "query_failed")
    expect_error(query(p, "w", "SELECT 1", format="xml"), 400, "invalid_argument", ["format"])
    expect_error(query(p, "w", "SELECT 1", format="csv", limit=3), 400, "invalid_argument", ["limit"])
    assert expect(query(p, "w", "SELECT count(*) FROM information_schema.tables WHERE table_name = 'x'"),
                  200)["rows"] == [["0"]]
    # nothing is left behind in the project's area
    leftovers = [f for f in (server.data_dir / "files" / "project_p1").rglob("query.*")]
    assert leftovers == []


def test_json_lines_answers_carry_every_row(server_factory):
    server = server_factory(env={"DUCKSTORE_WS_MAX_ROWS": "5"})
    admin = server.api()
    p = Proj(server, admin, "p1")
    setup_orders(p)
    expect(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "w"}), 201)
    tricky = 'a"b\\c\n\t\u00e9\u0001'
    r = query(p, "w", "SELECT range AS n, CASE WHEN range = 1 THEN NULL ELSE $$" + tricky
              + "$$ || range END AS s FROM range(20) ORDER BY n", format="jsonl")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/x-ndjson")
    lines = r.content.decode().split("\n")
    assert lines[-1] == "" and len(lines) == 22  # the header line, 20 rows, the final newline
    docs = [json.loads(line) for line in lines[:-1]]
    assert docs[0] == {"columns": [{"name": "n", "type": "BIGINT"}, {"name": "s", "type": "VARCHAR"}]}
    assert docs[1] == ["0", tricky + "0"] and docs[2] == ["1", None] and docs[20] == ["19", tricky + "19"]
    r = p.api.post(f"/projects/{p.pid}/query", {"sql": f'SELECT id FROM "{B}"."orders" ORDER BY id', "format": "jsonl"})
    assert r.status_code == 200
    assert [json.loads(x) for x in r.content.decode().splitlines()[1:]] == [["10"], ["11"], ["12"], ["13"]]
    expect_error(query(p, "w", "DROP TABLE IF EXISTS x", format="jsonl"), 400, "query_failed", ["SELECT"])
    expect_error(query(p, "w", "SELECT 1", format="jsonl", limit=3), 400, "invalid_argument", ["limit"])
    assert [f for f in (server.data_dir / "files" / "project_p1").rglob("query.*")] == []


def test_dropping_a_workspace_interrupts_its_running_query(server, admin):
    import threading
    import time
    p = Proj(server, admin, "p1")
    expect(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "w"}), 201)
    out = {}

    def long_query():
        out["r"] = query(p, "w", "SELECT count(*) FROM range(1000000000) a, range(1000000000) b", timeout=60)

    th = threading.Thread(target=long_query, daemon=True)
    th.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    expect(p.api.delete(ws_path(p, "w")), 204)
    th.join(30)
    assert time.monotonic() - t0 < 20, "the drop waited for the query's timeout"
    expect_error(out["r"], 400, "query_failed")
    assert not (server.data_dir / "workspaces" / "ws_p1.w.duckdb").exists()


def test_workspace_logins_follow_drop_recreate_reset_and_restart(server_factory):
    """The workspace records a request reads are kept in memory: every change to them (create, password
    reset, drop, the project's deletion) shows at once and after a restart, in any spelling of the id."""
    server = server_factory()
    admin = server.api()
    p = Proj(server, admin, "p1")
    anon = p.api.with_key(None)
    first = expect(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "w"}), 201)
    first_cred = basic(first["user"], first["password"])
    assert expect(anon.post(ws_path(p, "W", "/query"), {"sql": "SELECT 1"}, headers=first_cred), 200)["rows"] == [["1"]]
    expect_error(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "W"}), 409, "already_exists")

    expect(p.api.delete(ws_path(p, "w")), 204)
    expect_error(anon.post(ws_path(p, "w", "/query"), {"sql": "SELECT 1"}, headers=first_cred), 401, "unauthenticated")
    expect_error(query(p, "w", "SELECT 1"), 404, "not_found")
    second = expect(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "W"}), 201)
    assert second["password"] != first["password"]
    expect_error(anon.post(ws_path(p, "W", "/query"), {"sql": "SELECT 1"}, headers=first_cred), 401, "unauthenticated")
    second_cred = basic(second["user"], second["password"])
    assert expect(anon.post(ws_path(p, "w", "/query"), {"sql": "SELECT 2"}, headers=second_cred), 200)["rows"] == [["2"]]
    reset = expect(p.api.post(ws_path(p, "W", "/password")), 200)
    reset_cred = basic(second["user"], reset["password"])

    server.restart()
    p.api = p.api.with_key(p.key)
    anon = p.api.with_key(None)
    expect_error(anon.post(ws_path(p, "W", "/query"), {"sql": "SELECT 3"}, headers=second_cred), 401, "unauthenticated")
    assert expect(anon.post(ws_path(p, "W", "/query"), {"sql": "SELECT 3"}, headers=reset_cred), 200)["rows"] == [["3"]]
    assert [w["id"] for w in expect(p.api.get(f"/projects/{p.pid}/workspaces"), 200)["items"]] == ["W"]

    # the project goes, and a new project of the same id has no workspace of that name
    expect(admin.delete("/projects/p1"), 204)
    p2 = Proj(server, admin, "p1")
    expect_error(p2.api.with_key(None).post(ws_path(p2, "W", "/query"), {"sql": "SELECT 4"}, headers=reset_cred), 401,
                 "unauthenticated")
    expect_error(query(p2, "W", "SELECT 4"), 404, "not_found")
    third = expect(p2.api.post(f"/projects/{p2.pid}/workspaces", {"id": "W"}), 201)
    assert expect(query(p2, "w", "SELECT 5"), 200)["rows"] == [["5"]] and third["id"] == "W"
