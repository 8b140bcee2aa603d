"""Workspace access to another project's storage (GrantWorkspaceAccessToProject) over REST.

A workspace reads its own project's storage; a grant lets it read one more project's storage,
read-only, through ds_storage_scan(..., project := '<id>'). The grant is looked up at every storage
scan bind, so a revocation holds from the very next query, also for views made while it held.
"""

import base64

from data_helpers import Proj, csv_text
from e2e_lib import expect, expect_error

B = "in.c-main"


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def fill(p, secret):
    p.create_table("secrets", [{"name": "id", "type": "INTEGER"}, {"name": "value"}])
    f = p.upload("s.csv", csv_text([["1", secret], ["2", secret * 2]], header=["id", "value"]))
    expect(p.api.post(p.tpath("secrets") + "/import/file", {"file_id": f["id"]}), 200)


def q(api, pid, ws, sql, **kw):
    return api.post(f"/projects/{pid}/workspaces/{ws}/query", {"sql": sql}, **kw)


OTHER = "SELECT id, value FROM ds_storage_scan('in.c-main', 'secrets', project := 'p2') ORDER BY id"


def test_grant_read_revoke(server, admin):
    p1, p2 = Proj(server, admin, "p1"), Proj(server, admin, "p2")
    fill(p1, "one")
    fill(p2, "two")
    w = expect(p1.api.post("/projects/p1/workspaces", {"id": "w1"}), 201)
    g = "/projects/p1/workspaces/w1/grants"
    assert expect(admin.get(g), 200) == {"items": []}
    expect_error(q(p1.api, "p1", "w1", OTHER), 400, "query_failed", ["no grant", "p2"])

    # a project key cannot grant itself another project's storage; the admin key can
    expect_error(p1.api.put(g + "/p2"), 403, "permission_denied")
    assert expect(admin.get(g), 200) == {"items": []}
    expect(admin.put(g + "/p2"), 204)
    expect(admin.put(g + "/P2"), 204)  # granting again changes nothing
    assert expect(p1.api.get(g), 200) == {"items": [{"project": "p2"}]}

    assert expect(q(p1.api, "p1", "w1", OTHER), 200)["rows"] == [["1", "two"], ["2", "twotwo"]]
    # the workspace's own login reads it too, and a view over it reads the current rows
    c1 = basic(w["user"], w["password"])
    anon = admin.with_key(None)
    assert expect(q(anon, "p1", "w1", OTHER, headers=c1), 200)["rows"][0] == ["1", "two"]
    expect(q(p1.api, "p1", "w1", "CREATE VIEW theirs AS SELECT * FROM ds_storage_scan('in.c-main', 'secrets', "
                                  "project := 'p2')"), 200)
    expect(q(p1.api, "p1", "w1", "CREATE TABLE copied AS SELECT * FROM theirs"), 200)
    assert expect(q(p1.api, "p1", "w1", "SELECT count(*) FROM theirs"), 200)["rows"] == [["2"]]
    # its own project is still read without naming it
    own = "SELECT value FROM ds_storage_scan('in.c-main', 'secrets') ORDER BY id"
    assert expect(q(p1.api, "p1", "w1", own), 200)["rows"] == [["one"], ["oneone"]]

    # read-only: the grant never lets the workspace change the other project
    expect_error(q(p1.api, "p1", "w1", "DELETE FROM theirs"), 400, "query_failed")
    expect_error(q(p1.api, "p1", "w1", "INSERT INTO theirs VALUES (3, 'x')"), 400, "query_failed")
    assert expect(p2.api.get(p2.tpath("secrets")), 200)["rows"] == 2
    # the project query route has no grants: it reads its own project only
    expect_error(p1.api.post("/projects/p1/query", {"sql": OTHER}), 400, "query_failed", ["own project"])
    # another workspace of the same project holds no grant
    expect(p1.api.post("/projects/p1/workspaces", {"id": "w2"}), 201)
    expect_error(q(p1.api, "p1", "w2", OTHER), 400, "query_failed", ["no grant"])

    # revocation holds from the very next query, the view included
    expect(p1.api.delete(g + "/p2"), 204)
    assert expect(p1.api.get(g), 200) == {"items": []}
    expect_error(q(p1.api, "p1", "w1", OTHER), 400, "query_failed", ["no grant"])
    expect_error(q(p1.api, "p1", "w1", "SELECT * FROM theirs"), 400, "query_failed", ["no grant"])
    expect_error(q(anon, "p1", "w1", OTHER, headers=c1), 400, "query_failed", ["no grant"])
    # what was copied while the grant held stays the workspace's own table
    assert expect(q(p1.api, "p1", "w1", "SELECT count(*) FROM copied"), 200)["rows"] == [["2"]]
    expect_error(p1.api.delete(g + "/p2"), 404, "not_found", ["no access"])


def test_grant_bad_input_and_lifetime(server, admin):
    p1, p2 = Proj(server, admin, "p1"), Proj(server, admin, "p2")
    fill(p2, "two")
    w = expect(p1.api.post("/projects/p1/workspaces", {"id": "w1"}), 201)
    g = "/projects/p1/workspaces/w1/grants"
    expect_error(admin.put(g + "/p1"), 400, "invalid_argument", ["own project"])
    expect_error(admin.put(g + "/nope"), 404, "not_found", ["nope"])
    expect_error(admin.put(g + "/bad..id"), 400, "invalid_argument", ["project"])
    expect_error(admin.put("/projects/p1/workspaces/none/grants/p2"), 404, "not_found", ["none"])
    # a workspace login cannot grant (not even to itself), nor list grants
    anon = admin.with_key(None)
    expect_error(anon.put(g + "/p2", headers=basic(w["user"], w["password"])), 401, "unauthenticated")
    expect_error(anon.get(g, headers=basic(w["user"], w["password"])), 401, "unauthenticated")
    assert expect(admin.get(g), 200) == {"items": []}

    # deleting the other project removes the grant: a new project of that id is not readable
    expect(admin.put(g + "/p2"), 204)
    assert expect(q(p1.api, "p1", "w1", OTHER), 200)["rows"][0] == ["1", "two"]
    expect(admin.delete("/projects/p2"), 204)
    assert expect(admin.get(g), 200) == {"items": []}
    p2b = Proj(server, admin, "p2")
    fill(p2b, "new")
    expect_error(q(p1.api, "p1", "w1", OTHER), 400, "query_failed", ["no grant"])
    # dropping the workspace removes its grants: a new workspace of that id starts without
    expect(admin.put(g + "/p2"), 204)
    expect(p1.api.delete("/projects/p1/workspaces/w1"), 204)
    expect(p1.api.post("/projects/p1/workspaces", {"id": "w1"}), 201)
    assert expect(admin.get(g), 200) == {"items": []}
    expect_error(q(p1.api, "p1", "w1", OTHER), 400, "query_failed", ["no grant"])
