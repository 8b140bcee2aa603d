"""Buckets: create, list, get, delete (with and without force)."""

import pytest

from e2e_lib import (assert_time, create_bucket, create_project, create_table, expect,
                     expect_error, list_items, project_api, project_stats, table_names)


def bucket_ids(api, pid):
    return sorted(b["id"] for b in list_items(api, f"/projects/{pid}/buckets"))


def test_create_bucket(admin):
    _, proj = project_api(admin, "p1")
    b = expect(proj.post("/projects/p1/buckets", {"stage": "in", "name": "c-crm", "description": "CRM data"}), 201)
    assert b["id"] == "in.c-crm"
    assert b["stage"] == "in"
    assert b["name"] == "c-crm"
    assert b["description"] == "CRM data"
    assert b["table_count"] == 0
    assert_time(b["created_at"], "created_at")
    got = expect(proj.get("/projects/p1/buckets/in.c-crm"), 200)
    for k in ("id", "stage", "name", "description", "created_at", "table_count"):
        assert got[k] == b[k], f"GET bucket differs in {k}: {got} vs {b}"


def test_create_bucket_adds_c_prefix(admin):
    create_project(admin, "p1")
    b = create_bucket(admin, "p1", "crm")
    assert (b["id"], b["name"]) == ("in.c-crm", "c-crm")
    b = create_bucket(admin, "p1", "sales", stage="out")
    assert (b["id"], b["stage"], b["name"]) == ("out.c-sales", "out", "c-sales")
    assert bucket_ids(admin, "p1") == ["in.c-crm", "out.c-sales"]
    expect(admin.get("/projects/p1/buckets/out.c-sales"), 200)


def test_same_bucket_name_in_both_stages(admin):
    create_project(admin, "p1")
    create_bucket(admin, "p1", "c-x", stage="in")
    create_bucket(admin, "p1", "c-x", stage="out")
    assert bucket_ids(admin, "p1") == ["in.c-x", "out.c-x"]


def test_create_bucket_bad_stage(admin):
    create_project(admin, "p1")
    for stage in ("foo", "", "IN ", "sys"):
        expect_error(admin.post("/projects/p1/buckets", {"stage": stage, "name": "c-crm"}), 400,
                     "invalid_argument", mentions=["stage"])
    assert bucket_ids(admin, "p1") == []


@pytest.mark.parametrize("name", ["a b", "", "x" * 200, "c-a/b", "c-a;drop", "c-\u00e9"],
                         ids=["space", "empty", "too-long", "slash", "semicolon", "non-ascii"])
def test_create_bucket_invalid_name(admin, name):
    create_project(admin, "p1")
    expect_error(admin.post("/projects/p1/buckets", {"stage": "in", "name": name}), 400, "invalid_argument")
    assert bucket_ids(admin, "p1") == []


@pytest.mark.parametrize("body,field", [
    ({"stage": "in", "name": 5}, "name"),
    ({"stage": "in"}, "name"),
    ({"stage": 1, "name": "c-x"}, "stage"),
    ({"stage": "in", "name": "c-x", "description": 5}, "description"),
], ids=["name-number", "name-missing", "stage-number", "description-number"])
def test_create_bucket_wrong_field_type(admin, body, field):
    create_project(admin, "p1")
    expect_error(admin.post("/projects/p1/buckets", body), 400, "invalid_argument", mentions=[field])
    assert bucket_ids(admin, "p1") == []


def test_create_duplicate_bucket(admin):
    create_project(admin, "p1")
    create_bucket(admin, "p1", "c-crm", description="first")
    create_table(admin, "p1", "in.c-crm", "t", [{"name": "a"}])
    expect_error(admin.post("/projects/p1/buckets", {"stage": "in", "name": "c-crm", "description": "2"}),
                 409, "already_exists")
    # "crm" is the same bucket as "c-crm".
    expect_error(admin.post("/projects/p1/buckets", {"stage": "in", "name": "crm"}), 409, "already_exists")
    got = expect(admin.get("/projects/p1/buckets/in.c-crm"), 200)
    assert got["description"] == "first"
    assert got["table_count"] == 1
    assert table_names(admin, "p1", "in.c-crm") == ["t"]


def test_bucket_in_missing_project(admin):
    expect_error(admin.post("/projects/nope/buckets", {"stage": "in", "name": "c-x"}), 404, "not_found")
    expect_error(admin.get("/projects/nope/buckets"), 404, "not_found")
    expect_error(admin.get("/projects/nope/buckets/in.c-x"), 404, "not_found")


def test_list_and_get_buckets(admin):
    _, proj = project_api(admin, "p1")
    create_project(admin, "p2")
    create_bucket(proj, "p1", "c-a", description="A")
    create_bucket(proj, "p1", "c-b", stage="out")
    create_bucket(admin, "p2", "c-other")
    items = list_items(proj, "/projects/p1/buckets")
    assert sorted(b["id"] for b in items) == ["in.c-a", "out.c-b"]
    by_id = {b["id"]: b for b in items}
    assert by_id["in.c-a"]["description"] == "A"
    assert by_id["out.c-b"]["stage"] == "out"
    assert bucket_ids(admin, "p2") == ["in.c-other"]
    expect_error(proj.get("/projects/p1/buckets/in.c-other"), 404, "not_found")
    expect_error(proj.get("/projects/p1/buckets/in.c-nope"), 404, "not_found")


def test_table_count(admin):
    create_project(admin, "p1")
    create_bucket(admin, "p1", "c-a")
    for t in ("t1", "t2", "t3"):
        create_table(admin, "p1", "in.c-a", t, [{"name": "x"}])
    assert expect(admin.get("/projects/p1/buckets/in.c-a"), 200)["table_count"] == 3
    assert [b["table_count"] for b in list_items(admin, "/projects/p1/buckets")] == [3]
    expect(admin.delete("/projects/p1/buckets/in.c-a/tables/t2"), 204)
    assert expect(admin.get("/projects/p1/buckets/in.c-a"), 200)["table_count"] == 2


def test_delete_empty_bucket(admin):
    create_project(admin, "p1")
    create_bucket(admin, "p1", "c-a")
    create_bucket(admin, "p1", "c-b")
    expect(admin.delete("/projects/p1/buckets/in.c-a"), 204)
    expect_error(admin.get("/projects/p1/buckets/in.c-a"), 404, "not_found")
    assert bucket_ids(admin, "p1") == ["in.c-b"]
    expect_error(admin.delete("/projects/p1/buckets/in.c-a"), 404, "not_found")
    assert project_stats(admin, "p1")["buckets"] == 1
    # The name is free again.
    create_bucket(admin, "p1", "c-a")


@pytest.mark.parametrize("query", ["", "?force=false"])
def test_delete_non_empty_bucket_needs_force(admin, query):
    create_project(admin, "p1")
    create_bucket(admin, "p1", "c-a")
    create_table(admin, "p1", "in.c-a", "t1", [{"name": "id", "type": "INTEGER"}], primary_key=["id"])
    create_table(admin, "p1", "in.c-a", "t2", [{"name": "x"}])
    expect_error(admin.delete(f"/projects/p1/buckets/in.c-a{query}"), 409, "conflict")
    # Nothing was removed.
    assert expect(admin.get("/projects/p1/buckets/in.c-a"), 200)["table_count"] == 2
    assert table_names(admin, "p1", "in.c-a") == ["t1", "t2"]
    t1 = expect(admin.get("/projects/p1/buckets/in.c-a/tables/t1"), 200)
    assert t1["primary_key"] == ["id"]
    stats = project_stats(admin, "p1")
    assert (stats["buckets"], stats["tables"]) == (1, 2)


def test_delete_non_empty_bucket_with_force(admin):
    create_project(admin, "p1")
    create_bucket(admin, "p1", "c-a")
    create_bucket(admin, "p1", "c-keep")
    create_table(admin, "p1", "in.c-a", "t1", [{"name": "x"}])
    create_table(admin, "p1", "in.c-keep", "t1", [{"name": "x"}])
    expect(admin.delete("/projects/p1/buckets/in.c-a?force=true"), 204)
    expect_error(admin.get("/projects/p1/buckets/in.c-a"), 404, "not_found")
    expect_error(admin.get("/projects/p1/buckets/in.c-a/tables/t1"), 404, "not_found")
    assert bucket_ids(admin, "p1") == ["in.c-keep"]
    expect(admin.get("/projects/p1/buckets/in.c-keep/tables/t1"), 200)
    stats = project_stats(admin, "p1")
    assert (stats["buckets"], stats["tables"]) == (1, 1)
    # Re-creating the bucket gives an empty one.
    assert create_bucket(admin, "p1", "c-a")["table_count"] == 0
    assert table_names(admin, "p1", "in.c-a") == []
