"""API keys: project keys with scopes (admin, read, branch), listing without secrets, rotation with a
grace period, admin key rotation without a restart, and the read-only scope refusing every write."""

import json
import time

import pytest

from e2e_lib import NO_KEY, create_bucket, create_table, expect, expect_error, project_api
from data_helpers import csv_text

PID = "kp"
T = f"/projects/{PID}/buckets/in.c-b/tables/t"


def _setup(admin):
    p, api = project_api(admin, PID)
    create_bucket(api, PID, "c-b")
    create_table(api, PID, "in.c-b", "t", [{"name": "a"}, {"name": "b"}])
    create_table(api, PID, "in.c-b", "t2", [{"name": "a"}, {"name": "b"}])
    up = api.request("POST", f"/projects/{PID}/files", data=csv_text([["1", "x"], ["2", "y"]], header=["a", "b"]),
                     params={"name": "in/seed.csv"}, headers={"Content-Type": "application/octet-stream"})
    f = expect(up, 201)
    expect(api.post(T + "/import/file", {"file_id": f["id"]}), 200)
    return p, api, f["id"]


def _new_key(api, scope, **extra):
    body = {"scope": scope, **extra}
    k = expect(api.post(f"/projects/{PID}/keys", body), 201)
    assert k["scope"] == scope and k["id"] and k["key"], k
    return k


def _state(admin):
    """Everything a client can see of the project, read with the admin key."""
    proj = expect(admin.get(f"/projects/{PID}"), 200)
    tables = expect(admin.get(f"/projects/{PID}/buckets/in.c-b/tables"), 200)["items"]
    rows = expect(admin.get(T + "/preview", params={"limit": 1000}), 200)["rows"]
    files = expect(admin.get(f"/projects/{PID}/files"), 200)["items"]
    keys = expect(admin.get(f"/projects/{PID}/keys"), 200)["items"]
    projects = expect(admin.get("/projects"), 200)["items"]
    return {
        "project": (proj["name"], proj["stats"]),
        "projects": sorted(p["id"] for p in projects),
        "buckets": sorted(b["id"] for b in expect(admin.get(f"/projects/{PID}/buckets"), 200)["items"]),
        "tables": sorted(json.dumps({k: v for k, v in t.items()}, sort_keys=True) for t in tables),
        "rows": sorted(rows),
        # Exports (reads that a read key may run) write their result as a Storage File.
        "files": sorted((f["id"], f["name"]) for f in files if not f["name"].startswith(("exports/", "out/"))),
        "keys": sorted(k["id"] for k in keys),
    }


def test_keys_are_listed_without_secrets_and_bad_input_changes_nothing(server, admin):
    p, api, _ = _setup(admin)
    items = expect(api.get(f"/projects/{PID}/keys"), 200)["items"]
    assert [k["id"] for k in items] == ["main"] and items[0]["scope"] == "admin"
    r = _new_key(api, "read", description="dashboards")
    b = _new_key(api, "branch", branch="dev_1")
    assert b["branch"] == "dev_1" and r["branch"] is None
    items = expect(api.get(f"/projects/{PID}/keys"), 200)["items"]
    assert items[0]["id"] == "main" and sorted(k["id"] for k in items[1:]) == sorted([r["id"], b["id"]])
    assert all("key" not in k for k in items), items
    listed = json.dumps(items)
    for secret in (p["api_key"], r["key"], b["key"]):
        assert secret not in listed
    assert {k["id"]: k["description"] for k in items}[r["id"]] == "dashboards"
    before = _state(admin)
    expect_error(api.post(f"/projects/{PID}/keys", {"scope": "owner"}), 400, "invalid_argument", ["scope"])
    expect_error(api.post(f"/projects/{PID}/keys", {"scope": "branch"}), 400, "invalid_argument", ["branch"])
    expect_error(api.post(f"/projects/{PID}/keys", {"scope": "read", "branch": "dev"}), 400, "invalid_argument",
                 ["branch"])
    expect_error(api.post(f"/projects/{PID}/keys", {"scope": "branch", "branch": "default"}), 400,
                 "invalid_argument", ["branch"])
    expect_error(api.delete(f"/projects/{PID}/keys/main"), 400, "invalid_argument", ["rotate"])
    expect_error(api.delete(f"/projects/{PID}/keys/k-0000000000000000"), 404, "not_found")
    assert _state(admin) == before
    # Keys of other scopes cannot manage keys, not even list them.
    for k in (r, b):
        other = server.api(key=k["key"])
        expect_error(other.get(f"/projects/{PID}/keys"), 403, "permission_denied", ["scope"])
        expect_error(other.post(f"/projects/{PID}/keys", {"scope": "admin"}), 403, "permission_denied")
    # An admin-scope key manages keys like the main key; a deleted key stops working at once.
    a = _new_key(api, "admin")
    adm2 = server.api(key=a["key"])
    expect(adm2.delete(f"/projects/{PID}/keys/{r['id']}"), 204)
    expect_error(server.api(key=r["key"]).get(T), 401, "unauthenticated")
    # Another project's key sees nothing of this one's keys.
    _, other_api = project_api(admin, "kq")
    expect_error(other_api.get(f"/projects/{PID}/keys"), 403, "permission_denied")
    # No secret ever reaches the log.
    log = server.log_text()
    for secret in (p["api_key"], r["key"], b["key"], a["key"]):
        assert secret not in log


def _concrete(pattern, fid, key_id):
    values = {"id": PID, "bucket": "in.c-b", "table": "t", "column": "a", "fid": fid, "key_id": key_id,
              "name": "duckdb", "snapshot": "s1", "branch": "dev_1", "workspace": "w1",
              "target": "kp2"}
    out = pattern
    for k, v in values.items():
        out = out.replace("{" + k + "}", v)
    assert "{" not in out, f"test has no value for a parameter of {pattern}"
    return out


# Bodies that would succeed with a writing key, so that a 403 is the scope's doing and nothing else.
WRITE_BODIES = {
    ("POST", "/projects/{id}/workspaces/{workspace}/load"): {"source": {"bucket": "in.c-b", "table": "t"}},
    ("POST", "/projects"): {"id": "intruder"},
    ("PUT", "/projects/{id}"): {"name": "hijacked"},
    ("POST", "/projects/{id}/buckets"): {"stage": "in", "name": "c-intruder"},
    ("POST", "/projects/{id}/buckets/{bucket}/tables"): {"name": "intruder", "columns": [{"name": "a"}]},
    ("POST", "/projects/{id}/buckets/{bucket}/tables/{table}/import/table"):
        {"source": {"bucket": "in.c-b", "table": "t2"}, "incremental": True},
    ("DELETE", "/projects/{id}/buckets/{bucket}/tables/{table}/rows"): {},
    ("POST", "/projects/{id}/buckets/{bucket}/tables/{table}/columns"): {"name": "c"},
    ("PUT", "/projects/{id}/buckets/{bucket}/tables/{table}/columns/{column}"): {"nullable": True},
    ("POST", "/projects/{id}/buckets/{bucket}/tables/{table}/primary-key"): {"columns": ["a"]},
    ("POST", "/projects/{id}/buckets/{bucket}/tables/{table}/time-travel"):
        {"timestamp": "now", "destination": {"bucket": "in.c-b", "table": "t_then"}},
    ("POST", "/projects/{id}/buckets/{bucket}/time-travel"):
        {"table": "t", "timestamp": "now", "destination": {"bucket": "in.c-b", "table": "t_then"}},
    ("POST", "/projects/{id}/buckets/{bucket}/tables/{table}/alias"): {"bucket": "in.c-b", "name": "intruder"},
    ("PUT", "/projects/{id}/buckets/{bucket}/tables/{table}/alias-filter"): {"column": "a", "values": ["x"]},
    ("PUT", "/projects/{id}/buckets/{bucket}/tables/{table}/alias-sync"): {"auto_sync": False},
    ("POST", "/projects/{id}/files/prepare"): {"name": "in/prepared.csv"},
    ("POST", "/projects/{id}/keys"): {"scope": "read"},
    ("POST", "/projects/{id}/keys/{key_id}/rotate"): {"grace_seconds": 0},
    ("POST", "/admin/keys/rotate"): {"grace_seconds": 0},
    ("POST", "/backends"): {"name": "postgres"},
    ("POST", "/projects/{id}/buckets/{bucket}/share"): {"to": "organization"},
    ("POST", "/projects/{id}/buckets/{bucket}/link"): {"source_project": "other", "source_bucket": "in.c-b"},
}
# POST routes that only read: a read key may use them.
READ_POSTS = {"/projects/{id}/buckets/{bucket}/tables/{table}/export",
              "/projects/{id}/buckets/{bucket}/tables/{table}/profile",
              "/projects/{id}/query", "/projects/{id}/branches/{branch}/query",
              "/projects/{id}/workspaces/{workspace}/query"}


def test_read_key_is_refused_every_write_on_every_route(server, admin):
    p, api, fid = _setup(admin)
    expect(api.post(T + "/import/file", {"file_id": fid, "incremental": True}), 200)
    extra = _new_key(api, "admin")
    expect(api.post(f"/projects/{PID}/branches", {"id": "dev_1"}), 201)  # branch routes reach their scope check
    read = server.api(key=_new_key(api, "read")["key"])
    before = _state(admin)
    doc = expect(server.api(key=None).get("/openapi.json"), 200)
    tried = 0
    for pattern, ops in sorted(doc["paths"].items()):
        for method in sorted(m.upper() for m in ops):
            if method == "GET":
                continue
            path = _concrete(pattern, fid, extra["id"])
            if pattern in READ_POSTS:
                r = read.request(method, path, json_body={})
                assert r.status_code != 403, f"read key refused a read: {method} {path} -> {r.text}"
                continue
            if pattern == "/projects/{id}/files" or pattern.endswith("/content"):
                r = read.request(method, path, data=b"a,b\n9,z\n", params={"name": "in/new.csv"},
                                 headers={"Content-Type": "application/octet-stream"})
            elif pattern.endswith("/import/file"):
                r = read.request(method, path, json_body={"file_id": fid, "incremental": True})
            elif pattern == "/driver/execute":
                continue  # the driver commands are covered in tests/grpc
            else:
                r = read.request(method, path, json_body=WRITE_BODIES.get((method, pattern), {}))
            tried += 1
            if r.status_code == 501:
                # Only a route the API itself lists as not available yet may answer 501; any other must refuse.
                summary = ops[method.lower()].get("summary", "")
                assert summary.startswith("Not available yet"), f"{method} {path} answered 501 to a read key"
                continue
            expect_error(r, 403, "permission_denied")
    assert tried >= 25, f"only {tried} write routes found in /openapi.json"
    assert _state(admin) == before
    # Reads work with the read key.
    expect(read.get(T), 200)
    assert sorted(expect(read.get(T + "/preview"), 200)["rows"]) == before["rows"]
    expect(read.post(T + "/export", {"file_name": "out/read.csv"}), 201)
    expect(read.post(T + "/profile", {}), 200)


def test_branch_key_reads_but_cannot_write_main(server, admin):
    _, api, fid = _setup(admin)
    b = _new_key(api, "branch", branch="dev_1")
    bk = server.api(key=b["key"])
    before = _state(admin)
    expect(bk.get(T), 200)
    expect(bk.get(T + "/preview"), 200)
    e = expect_error(bk.post(T + "/import/file", {"file_id": fid, "incremental": True}), 403, "permission_denied",
                     ["dev_1", "main"])
    assert "branch" in e["message"]
    expect_error(bk.post(f"/projects/{PID}/buckets", {"stage": "in", "name": "c-x"}), 403, "permission_denied")
    # The same table addressed through the default branch's path is main too.
    expect_error(bk.delete(f"/projects/{PID}/branches/default/buckets/in.c-b/tables/t/rows", json_body={}), 403,
                 "permission_denied", ["dev_1"])
    expect_error(bk.delete(f"/projects/{PID}/files/{fid}"), 403, "permission_denied")
    assert _state(admin) == before


def test_rotation_keeps_the_old_secret_for_the_grace_period_only(server, admin):
    p, api, _ = _setup(admin)
    k = _new_key(api, "read")
    rot = expect(api.post(f"/projects/{PID}/keys/{k['id']}/rotate", {"grace_seconds": 2}), 200)
    assert rot["id"] == k["id"] and rot["key"] != k["key"] and rot["scope"] == "read"
    old, new = server.api(key=k["key"]), server.api(key=rot["key"])
    expect(old.get(T), 200)
    expect(new.get(T), 200)
    expect_error(new.post(f"/projects/{PID}/buckets", {"stage": "in", "name": "c-y"}), 403, "permission_denied")
    expect_error(old.post(f"/projects/{PID}/buckets", {"stage": "in", "name": "c-y"}), 403, "permission_denied")
    time.sleep(3)
    expect_error(old.get(T), 401, "unauthenticated")
    expect(new.get(T), 200)
    # The main key: no grace, the old one is refused at once; the new one survives a restart.
    m = expect(api.post(f"/projects/{PID}/keys/main/rotate", {}), 200)
    assert m["id"] == "main" and m["key"] != p["api_key"]
    expect_error(api.get(T), 401, "unauthenticated")
    main = server.api(key=m["key"])
    expect(main.get(T), 200)
    expect_error(main.post(f"/projects/{PID}/keys/main/rotate", {"grace_seconds": -1}), 400, "invalid_argument",
                 ["grace_seconds"])
    server.restart()
    expect(main.get(T), 200)
    expect(new.get(T), 200)
    expect_error(api.get(T), 401, "unauthenticated")
    expect_error(old.get(T), 401, "unauthenticated")
    # Deleting the project drops its keys: a project re-created with the id does not accept them.
    expect(admin.delete(f"/projects/{PID}"), 204)
    project_api(admin, PID)
    expect_error(new.get(f"/projects/{PID}"), 401, "unauthenticated")
    log = server.log_text()
    assert rot["key"] not in log and m["key"] not in log


def test_admin_key_rotation_without_restart(server_factory):
    srv = server_factory(admin_key=NO_KEY)
    path = srv.data_dir / "admin.key"
    first = path.read_text().strip()
    old = srv.api(key=first)
    expect(old.get("/projects"), 200)
    r = expect(old.post("/admin/keys/rotate", {"grace_seconds": 2}), 200)
    assert r["key"] != first and path.read_text().strip() == r["key"]
    new = srv.api(key=r["key"])
    expect(new.get("/projects"), 200)
    expect(old.get("/projects"), 200)
    time.sleep(3)
    expect_error(old.get("/projects"), 401, "unauthenticated")
    expect(new.get("/projects"), 200)
    srv.restart()
    expect(new.get("/projects"), 200)
    expect_error(old.get("/projects"), 401, "unauthenticated")
    assert r["key"] not in srv.log_text() and first not in srv.log_text()


def test_admin_key_from_the_environment_is_not_rotated(server, admin):
    e = expect_error(admin.post("/admin/keys/rotate", {}), 409, "conflict", ["DUCKSTORE_ADMIN_KEY"])
    expect(admin.get("/projects"), 200)
    _, api = project_api(admin, "pk")
    expect_error(api.post("/admin/keys/rotate", {}), 403, "permission_denied")
    assert e


def test_branch_key_writes_its_own_branch_only(server, admin):
    """A branch-scoped key writes in its branch (copy on write there), never main or another branch."""
    _, api, fid = _setup(admin)
    for br in ("dev_1", "dev_2"):
        expect(api.post(f"/projects/{PID}/branches", {"id": br}), 201)
    bk = server.api(key=_new_key(api, "branch", branch="dev_1")["key"])
    before = _state(admin)
    own = f"/projects/{PID}/branches/dev_1/buckets/in.c-b/tables/t"
    r = expect(bk.post(own + "/import/file", {"file_id": fid, "incremental": True}), 200)
    assert r["table_rows"] == 4
    assert len(expect(bk.get(own + "/preview"), 200)["rows"]) == 4
    expect(bk.post(f"/projects/{PID}/branches/dev_1/buckets", {"stage": "out", "name": "c-mine"}), 201)
    # main and the other branch are refused, and unchanged
    expect_error(bk.post(f"/projects/{PID}/branches/dev_2/buckets/in.c-b/tables/t/import/file",
                         {"file_id": fid, "incremental": True}), 403, "permission_denied", ["dev_1", "dev_2"])
    expect_error(bk.post(f"/projects/{PID}/branches/dev_2/merge", {}), 403, "permission_denied")
    expect_error(bk.post(T + "/import/file", {"file_id": fid, "incremental": True}), 403, "permission_denied")
    after = _state(admin)
    # The project's stats count what is stored, the branch's own copy included (docs/api.md); every
    # table, row, file and key of main is as it was.
    after.pop("project"), before.pop("project")
    assert after == before
    assert len(expect(admin.get(f"/projects/{PID}/branches/dev_2/buckets/in.c-b/tables/t/preview"), 200)["rows"]) == 2
