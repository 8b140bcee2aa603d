"""/backend/init, /backend/remove and the project lifecycle."""

import os

import pytest

from e2e_lib import (assert_time, create_bucket, create_project, create_table, describe, expect,
                     expect_error, list_items, project_stats)


# -- backend ---------------------------------------------------------------------------------------

def test_backend_init_is_idempotent(admin):
    first = expect(admin.post("/backend/init", {}), 200)
    assert first.get("status") == "ok", first
    second = expect(admin.post("/backend/init", {}), 200)
    assert second.get("status") == "ok", second
    # The backend still works after a second init.
    create_project(admin, "b1")


def test_backend_remove_without_projects(admin):
    expect(admin.post("/backend/init", {}), 200)
    expect(admin.post("/backend/remove", {}), 200)
    # Removing is not a dead end: init brings the backend back.
    expect(admin.post("/backend/init", {}), 200)


def test_backend_remove_with_projects_is_a_conflict(server, admin):
    p = create_project(admin, "b1")
    create_bucket(admin, "b1", "c-keep")
    expect_error(admin.post("/backend/remove", {}), 409, "conflict")
    # Nothing was removed.
    assert [x["id"] for x in list_items(admin, "/projects")] == ["b1"]
    assert server.project_file("b1").exists()
    assert expect(admin.with_key(p["api_key"]).get("/projects/b1/buckets/in.c-keep"), 200)["id"] == "in.c-keep"
    # Once the project is gone, remove succeeds.
    expect(admin.delete("/projects/b1"), 204)
    expect(admin.post("/backend/remove", {}), 200)


# -- create ----------------------------------------------------------------------------------------

def test_create_project(server, admin):
    r = admin.post("/projects", {"id": "123", "name": "Sales", "backend": "duckdb"})
    p = expect(r, 201)
    assert p["id"] == "123"
    assert p["name"] == "Sales"
    assert p["backend"] == "duckdb"
    assert isinstance(p["api_key"], str) and p["api_key"]
    assert_time(p["created_at"], "created_at")
    assert_time(p["updated_at"], "updated_at")
    assert server.project_file("123").is_file(), "project file missing after create"
    # The key shown once works in the project.
    assert expect(admin.with_key(p["api_key"]).get("/projects/123"), 200)["id"] == "123"


def test_create_project_defaults(server, admin):
    p = expect(admin.post("/projects", {"id": "plain"}), 201)
    assert p["id"] == "plain"
    assert p["backend"] == "duckdb"
    assert "name" in p


def test_create_project_64_char_id(server, admin):
    pid = "a" * 60 + "_-Z9"
    assert len(pid) == 64
    expect(admin.post("/projects", {"id": pid}), 201)
    assert server.project_file(pid).is_file()
    expect(admin.get(f"/projects/{pid}"), 200)


def test_create_duplicate_project(server, admin):
    p = create_project(admin, "dup", name="first")
    expect_error(admin.post("/projects", {"id": "dup", "name": "second"}), 409, "already_exists")
    # The original project is untouched and its key still works.
    got = expect(admin.with_key(p["api_key"]).get("/projects/dup"), 200)
    assert got["name"] == "first"
    assert got["created_at"] == p["created_at"]
    assert [x["id"] for x in list_items(admin, "/projects")] == ["dup"]


@pytest.mark.parametrize("bad_id", ["a b", "../x", "a" * 65, "", "a/b", "x.y", "caf\u00e9", "a\nb", ".."],
                         ids=["space", "dotdot-slash", "65-chars", "empty", "slash", "dot", "non-ascii",
                              "newline", "dotdot"])
def test_create_project_invalid_id(server, admin, bad_id):
    expect_error(admin.post("/projects", {"id": bad_id}), 400, "invalid_argument")
    assert list_items(admin, "/projects") == []
    files = sorted(os.listdir(server.project_dir)) if server.project_dir.exists() else []
    assert files == [], f"a rejected create left files: {files}"


@pytest.mark.parametrize("body,field", [
    ({"id": 5}, "id"),
    ({"id": None}, "id"),
    ({}, "id"),
    ({"id": "p1", "name": 5}, "name"),
    ({"id": "p1", "name": ["x"]}, "name"),
    ({"id": "p1", "backend": 7}, "backend"),
], ids=["id-number", "id-null", "id-missing", "name-number", "name-list", "backend-number"])
def test_create_project_wrong_field_type(server, admin, body, field):
    expect_error(admin.post("/projects", body), 400, "invalid_argument", mentions=[field])
    assert list_items(admin, "/projects") == []


def test_create_project_unknown_backend(server, admin):
    r = admin.post("/projects", {"id": "p1", "backend": "no-such-backend"})
    assert r.status_code in (400, 501), f"unknown backend: {r.status_code} {r.text}"
    expect_error(r, r.status_code, "invalid_argument" if r.status_code == 400 else "not_supported")
    assert list_items(admin, "/projects") == []
    expect_error(admin.get("/projects/p1"), 404, "not_found")


# -- read ------------------------------------------------------------------------------------------

def test_list_projects(server, admin):
    created = {pid: create_project(admin, pid, name=f"name {pid}") for pid in ("p3", "p1", "p2")}
    items = list_items(admin, "/projects")
    assert sorted(p["id"] for p in items) == ["p1", "p2", "p3"]
    for p in items:
        assert "api_key" not in p, f"project list leaks api_key: {p}"
        assert p["name"] == f"name {p['id']}"
        assert p["backend"] == "duckdb"
        assert p["created_at"] == created[p["id"]]["created_at"]


def test_get_project_with_stats(server, admin):
    p = create_project(admin, "s1", name="Stats")
    proj = admin.with_key(p["api_key"])
    for api in (admin, proj):
        got = expect(api.get("/projects/s1"), 200)
        assert "api_key" not in got, f"GET project leaks api_key: {got}"
        assert got["id"] == "s1" and got["name"] == "Stats" and got["backend"] == "duckdb"
        assert got["created_at"] == p["created_at"]
        stats = got["stats"]
        assert {k: stats[k] for k in ("buckets", "tables", "rows")} == {"buckets": 0, "tables": 0, "rows": 0}
        assert isinstance(stats["bytes"], int) and stats["bytes"] >= 0

    create_bucket(admin, "s1", "c-a")
    create_bucket(proj, "s1", "c-b", stage="out")
    create_table(proj, "s1", "in.c-a", "t1", [{"name": "x"}])
    create_table(proj, "s1", "in.c-a", "t2", [{"name": "x", "type": "INTEGER"}])
    create_table(proj, "s1", "out.c-b", "t3", [{"name": "y"}])
    stats = project_stats(proj, "s1")
    assert (stats["buckets"], stats["tables"], stats["rows"]) == (2, 3, 0), stats
    assert isinstance(stats["bytes"], int) and stats["bytes"] >= 0


def test_get_missing_project(admin):
    expect_error(admin.get("/projects/nope"), 404, "not_found")


# -- update ----------------------------------------------------------------------------------------

def test_update_project_name(server, admin):
    p = create_project(admin, "u1", name="before")
    got = expect(admin.put("/projects/u1", {"name": "after"}), 200)
    assert got["id"] == "u1" and got["name"] == "after"
    assert "api_key" not in got
    assert got["created_at"] == p["created_at"]
    assert_time(got["updated_at"], "updated_at")
    assert got["updated_at"] >= p["updated_at"]
    assert expect(admin.get("/projects/u1"), 200)["name"] == "after"
    assert [x["name"] for x in list_items(admin, "/projects")] == ["after"]
    # The key is unchanged by an update.
    expect(admin.with_key(p["api_key"]).get("/projects/u1"), 200)


def test_update_missing_project(admin):
    expect_error(admin.put("/projects/nope", {"name": "x"}), 404, "not_found")
    assert list_items(admin, "/projects") == []


def test_update_project_wrong_type(admin):
    create_project(admin, "u1", name="before")
    expect_error(admin.put("/projects/u1", {"name": 5}), 400, "invalid_argument", mentions=["name"])
    assert expect(admin.get("/projects/u1"), 200)["name"] == "before"


# -- delete ----------------------------------------------------------------------------------------

def test_delete_project(server, admin):
    create_project(admin, "d1")
    create_project(admin, "d2")
    assert server.project_file("d1").exists()
    expect(admin.delete("/projects/d1"), 204)
    assert not server.project_file("d1").exists(), "project file still on disk after delete"
    expect_error(admin.get("/projects/d1"), 404, "not_found")
    assert [x["id"] for x in list_items(admin, "/projects")] == ["d2"]
    expect_error(admin.delete("/projects/d1"), 404, "not_found")
    # The other project is untouched.
    assert server.project_file("d2").exists()
    expect(admin.get("/projects/d2"), 200)


def test_delete_project_with_content_and_reuse_id(server, admin):
    p = create_project(admin, "d1")
    create_bucket(admin, "d1", "c-a")
    create_table(admin, "d1", "in.c-a", "t", [{"name": "x", "type": "INTEGER"}], primary_key=["x"])
    expect(admin.delete("/projects/d1"), 204)
    assert not server.project_file("d1").exists()
    leftovers = [f for f in os.listdir(server.project_dir) if f.startswith("project_d1_")]
    assert leftovers == [], f"files of a deleted project remain: {leftovers}"
    # The id can be used again, and the new project starts empty.
    p2 = create_project(admin, "d1")
    assert p2["api_key"] != p["api_key"]
    assert list_items(admin, "/projects/d1/buckets") == []
    stats = project_stats(admin, "d1")
    assert (stats["buckets"], stats["tables"]) == (0, 0)


def test_project_ids_differing_only_in_case(server, admin):
    """Ids are unique regardless of case: "P1" is project "p1" (answered with the stored spelling),
    and creating "P1" next to "p1" is refused as a duplicate, never a 400 or an engine error."""
    p = create_project(admin, "p1", name="lower")
    create_bucket(admin, "p1", "c-a")
    got = expect(admin.get("/projects/P1"), 200)
    assert got["id"] == "p1" and got["name"] == "lower", got
    expect_error(admin.post("/projects", {"id": "P1", "name": "upper"}), 409, "already_exists")
    assert [x["id"] for x in list_items(admin, "/projects")] == ["p1"]
    assert not server.project_file("P1").is_file() or server.project_file("P1").samefile(server.project_file("p1"))
    # The first project is untouched, under either spelling.
    got = expect(admin.with_key(p["api_key"]).get("/projects/p1"), 200)
    assert got["name"] == "lower"
    assert [b["id"] for b in list_items(admin, "/projects/P1/buckets")] == ["in.c-a"]