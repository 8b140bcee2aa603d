"""Shared and linked buckets, and the workspaces' read-only role, over REST (REST.md "Sharing, linking").

A project shares a bucket with the organization or with listed projects; a project the share
includes links it under a bucket id of its own and reads its tables as its own, always the source's
current data, never writing them. The share is read again on every request through a link, so a
revoked share or a removed link holds from the very next request. Linked reads open the source
project for that request only (DUCKSTORE_MAX_OPEN_PROJECTS=1 case), and links survive a restart.
"""

import base64


from data_helpers import Proj, csv_text
from e2e_lib import expect, expect_error, get_metrics, metric

B = "in.c-main"
L = "in.c-linked"


def fill(p, rows, table="orders"):
    p.create_table(table, [{"name": "id", "type": "INTEGER"}, {"name": "state"}], primary_key=["id"])
    f = p.upload(f"{table}.csv", csv_text(rows, header=["id", "state"]))
    expect(p.api.post(p.tpath(table) + "/import/file", {"file_id": f["id"]}), 200)


def projects(server, admin, n=2):
    """p1 shares in.c-main (table orders, 3 rows) with p2; p2 links it as in.c-linked."""
    ps = [Proj(server, admin, f"p{i + 1}") for i in range(n)]
    fill(ps[0], [["1", "TX"], ["2", "CA"], ["3", "TX"]])
    return ps


def share(p, to, bucket=B, status=200):
    return expect(p.api.post(f"/projects/{p.pid}/buckets/{bucket}/share", {"to": to}), status)


def link(p, src, bucket=L, src_bucket=B, status=201):
    return expect(p.api.post(f"/projects/{p.pid}/buckets/{bucket}/link",
                             {"source_project": src.pid, "source_bucket": src_bucket}), status)


def lpath(p, table="orders", bucket=L):
    return f"/projects/{p.pid}/buckets/{bucket}/tables/{table}"


def preview(p, path, **params):
    return expect(p.api.get(path + "/preview", params=params), 200)


def test_share_link_read_and_propagate(server, admin):
    p1, p2 = projects(server, admin)
    s = share(p1, ["p2"])
    assert s["id"] == B and s["sharing"]["type"] == "selected-projects" and s["sharing"]["projects"] == ["p2"]
    b = link(p2, p1)
    assert b["id"] == L and b["linked_from"] == {"project": "p1", "bucket": B}
    assert b["table_count"] == 1

    # lists and gets show the link; the source shows who links it
    items = {x["id"]: x for x in expect(p2.api.get("/projects/p2/buckets"), 200)["items"]}
    assert items[L]["linked_from"] == {"project": "p1", "bucket": B}
    assert expect(p2.api.get(f"/projects/p2/buckets/{L}"), 200)["linked_from"]["bucket"] == B
    src = expect(p1.api.get(f"/projects/p1/buckets/{B}"), 200)
    assert src["sharing"]["linked_by"] == [{"project": "p2", "bucket": L}]
    tables = expect(p2.api.get(f"/projects/p2/buckets/{L}/tables"), 200)["items"]
    assert [(t["id"], t["bucket"], t["rows"]) for t in tables] == [(f"{L}.orders", L, 3)]

    # every read: table info, preview with filters, export, profile
    t = expect(p2.api.get(lpath(p2)), 200)
    assert t["id"] == f"{L}.orders" and t["rows"] == 3 and t["primary_key"] == ["id"]
    pv = preview(p2, lpath(p2), where="state:eq:TX", order_by="id")
    assert pv["rows"] == [["1", "TX"], ["3", "TX"]]
    _, ex = p2.export_rows("orders", {"where_filters": [{"column": "state", "operator": "eq", "values": ["CA"]}]},
                           bucket=L)
    assert ex == [["2", "CA"]]
    prof = expect(p2.api.post(lpath(p2) + "/profile", {}), 200)
    assert prof["rows"] == 3

    # a linked table is a source for import-from-table (filters and columns apply)
    expect(p2.api.post("/projects/p2/buckets", {"stage": "in", "name": "c-own"}), 201)
    p2.create_table("copy", [{"name": "id", "type": "INTEGER"}, {"name": "state"}], bucket="in.c-own")
    r = expect(p2.api.post(p2.tpath("copy", "in.c-own") + "/import/table",
                           {"source": {"bucket": L, "table": "orders"},
                            "where_filters": [{"column": "state", "operator": "eq", "values": ["TX"]}]}), 200)
    assert r["imported_rows"] == 2 and r["table_rows"] == 2
    assert preview(p2, p2.tpath("copy", "in.c-own"), order_by="id")["rows"] == [["1", "TX"], ["3", "TX"]]
    expect_error(p2.api.post(p2.tpath("copy", "in.c-own") + "/import/table",
                             {"source": {"bucket": L, "table": "orders"},
                              "columns_mapping": [{"source": "state", "destination": "id"}]}), 400,
                 "invalid_argument", [L])

    # changes of the source show at once: rows and columns
    p1.load_csv("orders", csv_text([["4", "NY"]], header=["id", "state"]), incremental=True)
    expect(p1.api.post(p1.tpath("orders") + "/columns", {"name": "note"}), 201)
    t = expect(p2.api.get(lpath(p2)), 200)
    assert t["rows"] == 4 and [c["name"] for c in t["columns"]] == ["id", "state", "note"]

    # size counts in the source only
    s1 = expect(admin.get("/projects/p1"), 200)["stats"]
    s2 = expect(admin.get("/projects/p2"), 200)["stats"]
    assert s1["tables"] == 1 and s1["bytes"] > 0
    # p2 holds its own copy only: the linked bucket adds neither buckets, tables nor bytes
    assert s2["buckets"] == 2 and s2["tables"] == 1
    assert s2["bytes"] == p2.table("copy", bucket="in.c-own")["bytes"]


def test_linked_bucket_is_read_only(server, admin):
    p1, p2 = projects(server, admin)
    share(p1, "organization")
    link(p2, p1)
    f = p2.upload("x.csv", csv_text([["9", "ZZ"]], header=["id", "state"]))
    attempts = [
        p2.api.post(lpath(p2) + "/import/file", {"file_id": f["id"]}),
        p2.api.post(lpath(p2) + "/import/file", {"file_id": f["id"], "incremental": True}),
        p2.api.delete(lpath(p2) + "/rows", json_body={"where_filters": [{"column": "id", "operator": "eq", "values": ["1"]}]}),
        p2.api.post(lpath(p2) + "/columns", {"name": "x"}),
        p2.api.delete(lpath(p2) + "/columns/state"),
        p2.api.delete(lpath(p2)),
        p2.api.post(f"/projects/p2/buckets/{L}/tables", {"name": "n", "columns": [{"name": "a"}]}),
        p2.api.delete(f"/projects/p2/buckets/{L}"),
        p2.api.delete(f"/projects/p2/buckets/{L}", params={"force": "true"}),
        p2.api.post(lpath(p2, "fresh") + "/import/file", {"file_id": f["id"], "create_mode": "create"}),
    ]
    for r in attempts:
        assert r.status_code in (400, 403), r.text
        e = r.json()["error"]
        assert L in e["message"], e
    # nothing changed in the source
    t = p1.table("orders")
    assert t["rows"] == 3 and [c["name"] for c in t["columns"]] == ["id", "state"]
    assert [x["name"] for x in expect(p1.api.get(f"/projects/p1/buckets/{B}/tables"), 200)["items"]] == ["orders"]
    # in a development branch the link reads the source's main table, and stays read-only
    expect(p2.api.post("/projects/p2/branches", {"id": "dev"}), 201)
    bpath = f"/projects/p2/branches/dev/buckets/{L}/tables/orders"
    assert expect(p2.api.get(bpath), 200)["rows"] == 3
    expect_error(p2.api.post(bpath + "/import/file", {"file_id": f["id"]}), 403, "permission_denied", [L])
    expect_error(p2.api.delete(bpath), 403, "permission_denied", [L])
    assert L in [b["id"] for b in expect(p2.api.get("/projects/p2/branches/dev/buckets"), 200)["items"]]
    assert p1.table("orders")["rows"] == 3
    # a bucket of the link's id cannot be created in the target while the link exists
    expect_error(p2.api.post("/projects/p2/buckets", {"stage": "in", "name": "c-linked"}), 409, "already_exists",
                 [L])
    # a linked bucket cannot be shared again
    expect_error(p2.api.post(f"/projects/p2/buckets/{L}/share", {"to": "organization"}), 400, "invalid_argument",
                 ["linked"])


def test_source_rules_while_linked(server, admin):
    p1, p2, p3 = projects(server, admin, 3)
    share(p1, ["p2", "p3"])
    link(p2, p1)
    link(p3, p1, bucket="out.c-theirs")
    for r in (p1.api.delete(f"/projects/p1/buckets/{B}", params={"force": "true"}),
              p1.api.delete(p1.tpath("orders")),
              p1.api.delete(p1.tpath("orders") + "/columns/state"),
              p1.api.delete(f"/projects/p1/buckets/{B}/share")):
        e = expect_error(r, 409, "conflict", ["p2", "p3"])
        assert "unlink" in e["message"]
    # re-sharing that leaves a linking project out is refused too (unless forced)
    expect_error(p1.api.post(f"/projects/p1/buckets/{B}/share", {"to": ["p2"]}), 409, "conflict", ["p3"])
    assert p1.table("orders")["rows"] == 3
    # adding a column is allowed and propagates
    expect(p1.api.post(p1.tpath("orders") + "/columns", {"name": "note"}), 201)
    # once both unlink, everything goes
    expect(p2.api.delete(f"/projects/p2/buckets/{L}/link"), 204)
    expect_error(p2.api.get(lpath(p2)), 404, "not_found")
    expect_error(p2.api.delete(f"/projects/p2/buckets/{L}/link"), 404, "not_found", [L])
    expect(p3.api.delete("/projects/p3/buckets/out.c-theirs/link"), 204)
    expect(p1.api.delete(p1.tpath("orders") + "/columns/state"), 204)
    expect(p1.api.delete(f"/projects/p1/buckets/{B}/share"), 204)
    expect_error(p1.api.delete(f"/projects/p1/buckets/{B}/share"), 404, "not_found", ["not shared"])
    expect(p1.api.delete(f"/projects/p1/buckets/{B}", params={"force": "true"}), 204)


def test_share_and_link_bad_input(server, admin):
    p1, p2 = projects(server, admin)
    base = f"/projects/p1/buckets/{B}/share"
    for body, field in (({}, "to"), ({"to": "everyone"}, "to"), ({"to": []}, "to"), ({"to": [1]}, "to"),
                        ({"to": ["p2"], "x": 1}, "x"), ({"to": ["p1"]}, "itself")):
        expect_error(p1.api.post(base, body), 400, "invalid_argument", [field])
    expect_error(p1.api.post(base, {"to": ["nope"]}), 404, "not_found", ["nope"])
    expect_error(p1.api.post("/projects/p1/buckets/in.c-none/share", {"to": ["p2"]}), 404, "not_found")
    # a read key shares nothing; another project's key neither
    rk = expect(p1.api.post("/projects/p1/keys", {"scope": "read"}), 201)["key"]
    expect_error(admin.with_key(rk).post(base, {"to": ["p2"]}), 403, "permission_denied")
    expect_error(p2.api.post(base, {"to": ["p2"]}), 403, "permission_denied")
    assert "sharing" not in expect(p1.api.get(f"/projects/p1/buckets/{B}"), 200)

    lk = f"/projects/p2/buckets/{L}/link"
    # not shared (yet): the same answer as a project or bucket that does not exist
    for body in ({"source_project": "p1", "source_bucket": B}, {"source_project": "p9", "source_bucket": B},
                 {"source_project": "p1", "source_bucket": "in.c-none"}):
        expect_error(p2.api.post(lk, body), 403, "permission_denied", ["not shared"])
    share(p1, ["p2"])
    for body, field in (({"source_project": "p1"}, "source_bucket"), ({"source_bucket": B}, "source_project"),
                        ({"source_project": "p1", "source_bucket": "bad bucket"}, "source_bucket"),
                        ({"source_project": "p1", "source_bucket": B, "y": 1}, "y")):
        expect_error(p2.api.post(lk, body), 400, "invalid_argument", [field])
    expect_error(p1.api.post(f"/projects/p1/buckets/{L}/link", {"source_project": "p1", "source_bucket": B}), 400,
                 "invalid_argument", ["own"])
    # the link's id must be free
    expect_error(p2.api.post(f"/projects/p2/buckets/{B}/link", {"source_project": "p1", "source_bucket": B}), 409,
                 "already_exists", [B])
    link(p2, p1)
    expect_error(p2.api.post(lk, {"source_project": "p1", "source_bucket": B}), 409, "already_exists", [L])
    # a read key of the target cannot link or unlink
    rk2 = expect(p2.api.post("/projects/p2/keys", {"scope": "read"}), 201)["key"]
    expect_error(admin.with_key(rk2).delete(lk), 403, "permission_denied")
    expect_error(admin.with_key(rk2).post("/projects/p2/buckets/out.c-x/link",
                                          {"source_project": "p1", "source_bucket": B}), 403, "permission_denied")
    # but reads the linked table
    assert expect(admin.with_key(rk2).get(lpath(p2)), 200)["rows"] == 3


def test_revoke_and_unlink_hold_for_the_next_request(server, admin):
    p1, p2 = projects(server, admin)
    share(p1, ["p2"])
    link(p2, p1)
    assert expect(p2.api.get(lpath(p2)), 200)["rows"] == 3
    # forced unshare: the link stays listed but reads nothing from the very next request
    expect(p1.api.delete(f"/projects/p1/buckets/{B}/share", params={"force": "true"}), 204)
    for r in (p2.api.get(lpath(p2)), p2.api.get(lpath(p2) + "/preview"),
              p2.api.get(f"/projects/p2/buckets/{L}/tables"), p2.api.post(lpath(p2) + "/export", {})):
        expect_error(r, 403, "permission_denied", [L, "no longer shares"])
    # sharing again restores it
    share(p1, ["p2"])
    assert expect(p2.api.get(lpath(p2)), 200)["rows"] == 3
    expect(p2.api.delete(f"/projects/p2/buckets/{L}/link"), 204)
    expect_error(p2.api.get(lpath(p2)), 404, "not_found")


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_workspace_reads_linked_table_and_readonly_role(server, admin):
    p1, p2 = projects(server, admin)
    share(p1, ["p2"])
    link(p2, p1)
    expect(p2.api.post("/projects/p2/workspaces", {"id": "w"}), 201)
    q = "/projects/p2/workspaces/w/query"
    sql = f'SELECT id, state FROM "{L}"."orders" ORDER BY id'
    assert expect(p2.api.post(q, {"sql": sql}), 200)["rows"] == [["1", "TX"], ["2", "CA"], ["3", "TX"]]
    r = expect(p2.api.post("/projects/p2/workspaces/w/load",
                           {"source": {"bucket": L, "table": "orders"}, "destination": "copy"}), 200)
    assert r["rows"] == 3
    expect(p2.api.post("/projects/p2/workspaces/w/load",
                       {"source": {"bucket": L, "table": "orders"}, "destination": "v", "type": "view"}), 200)
    # read-only role: revoked, the workspace cannot read it (also through the view made before)
    expect(p2.api.delete(f"/projects/p2/buckets/{L}/grant-readonly"), 204)
    assert expect(p2.api.get(f"/projects/p2/buckets/{L}"), 200)["readonly_access"] is False
    expect_error(p2.api.post(q, {"sql": sql}), 400, "query_failed", ["read-only role", L])
    expect_error(p2.api.post(q, {"sql": "SELECT count(*) FROM v"}), 400, "query_failed", ["read-only role"])
    r = p2.api.post("/projects/p2/workspaces/w/load", {"source": {"bucket": L, "table": "orders"}, "destination": "c2"})
    expect_error(r, 403, "permission_denied", ["read-only role", L])
    # the API key still reads it; granting again lets the workspace read
    assert expect(p2.api.get(lpath(p2)), 200)["rows"] == 3
    g = expect(p2.api.post(f"/projects/p2/buckets/{L}/grant-readonly"), 200)
    assert g["readonly_access"] is True
    assert expect(p2.api.post(q, {"sql": "SELECT count(*) FROM v"}), 200)["rows"] == [["3"]]
    # the read-only role also covers the project's own buckets
    expect(p1.api.post("/projects/p1/workspaces", {"id": "w1"}), 201)
    own = f'SELECT count(*) FROM "{B}"."orders"'
    assert expect(p1.api.post("/projects/p1/workspaces/w1/query", {"sql": own}), 200)["rows"] == [["3"]]
    expect(p1.api.delete(f"/projects/p1/buckets/{B}/grant-readonly"), 204)
    expect_error(p1.api.post("/projects/p1/workspaces/w1/query", {"sql": own}), 400, "query_failed",
                 ["read-only role"])
    expect_error(p1.api.post("/projects/p1/buckets/in.c-none/grant-readonly"), 404, "not_found")
    # a running workspace loses the link at once when it is removed
    expect(p2.api.delete(f"/projects/p2/buckets/{L}/link"), 204)
    expect_error(p2.api.post(q, {"sql": "SELECT count(*) FROM v"}), 400, "query_failed")
    # what was copied while the link held stays the workspace's own table
    assert expect(p2.api.post(q, {"sql": "SELECT count(*) FROM copy"}), 200)["rows"] == [["3"]]


def test_links_survive_restart_and_detach(server_factory):
    server = server_factory(env={"DUCKSTORE_MAX_OPEN_PROJECTS": "1"})
    admin = server.api()
    p1, p2, p3 = projects(server, admin, 3)
    share(p1, "organization")
    link(p2, p1)
    # p3 and p2 are used in turn: with a cap of one open project each request detaches the others
    fill(p3, [["7", "WA"]])
    for _ in range(3):
        assert expect(p2.api.get(lpath(p2)), 200)["rows"] == 3
        assert p3.table("orders")["rows"] == 1
        p1.load_csv("orders", csv_text([["1", "TX"]], header=["id", "state"]), incremental=True)
    assert preview(p2, lpath(p2), order_by="id")["rows"][0] == ["1", "TX"]
    # the source was opened for those requests only: once they ended, the cap holds again
    assert metric(get_metrics(admin), "duckstore_open_projects") <= 1
    server.restart()
    items = {x["id"]: x for x in expect(p2.api.get("/projects/p2/buckets"), 200)["items"]}
    assert items[L]["linked_from"] == {"project": "p1", "bucket": B}
    assert expect(p2.api.get(lpath(p2)), 200)["rows"] == 3
    assert expect(p1.api.get(f"/projects/p1/buckets/{B}"), 200)["sharing"]["type"] == "organization"
    expect_error(p1.api.delete(f"/projects/p1/buckets/{B}", params={"force": "true"}), 409, "conflict", ["p2"])


def test_project_delete_forgets_links(server, admin):
    p1, p2 = projects(server, admin)
    share(p1, ["p2"])
    link(p2, p1)
    expect(admin.delete("/projects/p1"), 204)
    expect_error(p2.api.get(lpath(p2)), 404, "not_found")
    assert [x["id"] for x in expect(p2.api.get("/projects/p2/buckets"), 200)["items"]] == [B]
    # a new project of that id shares nothing
    Proj(server, admin, "p1")
    expect_error(p2.api.post(f"/projects/p2/buckets/{L}/link", {"source_project": "p1", "source_bucket": B}), 403,
                 "permission_denied")


def test_idempotent_share_and_link(server, admin):
    p1, p2 = projects(server, admin)
    h = {"Idempotency-Key": "s-1"}
    a = p1.api.post(f"/projects/p1/buckets/{B}/share", {"to": ["p2"]}, headers=h)
    b = p1.api.post(f"/projects/p1/buckets/{B}/share", {"to": ["p2"]}, headers=h)
    assert a.status_code == b.status_code == 200 and a.json() == b.json()
    expect_error(p1.api.post(f"/projects/p1/buckets/{B}/share", {"to": "organization"}, headers=h), 409, "conflict")
    h = {"Idempotency-Key": "l-1"}
    body = {"source_project": "p1", "source_bucket": B}
    a = p2.api.post(f"/projects/p2/buckets/{L}/link", body, headers=h)
    b = p2.api.post(f"/projects/p2/buckets/{L}/link", body, headers=h)
    assert a.status_code == b.status_code == 201 and a.json() == b.json()


def crash_at(server, hook, send):
    server.die_after_commit(hook, send)


def test_drop_of_a_shared_bucket_killed_between_its_steps(server, admin):
    """Dropping a shared bucket removes the share (catalog) first, then the bucket (project file):
    killed in between, the bucket is left unshared (nothing can link it by accident); killed after
    both, a bucket created again under that id is not shared."""
    p1, p2 = projects(server, admin)
    share(p1, ["p2"])
    drop = lambda: p1.api.delete(f"/projects/p1/buckets/{B}", params={"force": "true"})
    crash_at(server, "bucket_drop_unshared", drop)
    b = expect(p1.api.get(f"/projects/p1/buckets/{B}"), 200)
    assert "sharing" not in b and p1.table("orders")["rows"] == 3
    expect_error(p2.api.post(f"/projects/p2/buckets/{L}/link", {"source_project": "p1", "source_bucket": B}), 403,
                 "permission_denied", ["not shared"])
    share(p1, "organization")
    crash_at(server, "bucket_drop", drop)
    expect_error(p1.api.get(f"/projects/p1/buckets/{B}"), 404, "not_found")
    expect(p1.api.post("/projects/p1/buckets", {"stage": "in", "name": "c-main"}), 201)
    assert "sharing" not in expect(p1.api.get(f"/projects/p1/buckets/{B}"), 200)
    expect_error(p2.api.post(f"/projects/p2/buckets/{L}/link", {"source_project": "p1", "source_bucket": B}), 403,
                 "permission_denied", ["not shared"])


def test_aliases_are_shared_with_their_bucket(server, admin):
    """An alias in a shared bucket reads through the link like its bucket's tables: filtered as
    the alias says, shown under the link's bucket id, read-only, and gone for the linking project
    when the share is."""
    p1, p2 = projects(server, admin)
    expect(p1.api.post(p1.tpath("orders") + "/alias",
                       {"bucket": B, "name": "tx", "filter": {"column": "state", "operator": "eq", "values": ["TX"]}}),
           201)
    share(p1, ["p2"])
    link(p2, p1)
    rows = sorted(r[0] for r in preview(p2, lpath(p2, "tx"))["rows"])
    assert rows == ["1", "3"]
    info = expect(p2.api.get(lpath(p2, "tx")), 200)
    assert info["bucket"] == L and info["rows"] == 2
    listed = {t["name"]: t for t in expect(p2.api.get(f"/projects/p2/buckets/{L}/tables"), 200)["items"]}
    assert set(listed) == {"orders", "tx"} and listed["tx"]["bucket"] == L
    expect_error(p2.api.delete(lpath(p2, "tx") + "/rows", json_body={}), 403, "permission_denied")
    # the source's data propagates at once
    f = p1.upload("more.csv", csv_text([["4", "TX"]], header=["id", "state"]))
    expect(p1.api.post(p1.tpath("orders") + "/import/file", {"file_id": f["id"], "incremental": True}), 200)
    assert sorted(r[0] for r in preview(p2, lpath(p2, "tx"))["rows"]) == ["1", "3", "4"]
    expect(p1.api.delete(f"/projects/p1/buckets/{B}/share", params={"force": "true"}), 204)
    expect_error(p2.api.get(lpath(p2, "tx") + "/preview"), 403, "permission_denied")
