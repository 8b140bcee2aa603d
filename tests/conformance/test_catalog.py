"""Conformance: projects, buckets and tables behave the same on every backend."""

from e2e_lib import expect, expect_error
from helpers import table_info

TYPED = [
    {"name": "id", "type": "INTEGER", "nullable": False},
    {"name": "amount", "type": "DECIMAL(12,2)"},
    {"name": "big", "type": "BIGINT"},
    {"name": "ratio", "type": "DOUBLE"},
    {"name": "ok", "type": "BOOLEAN"},
    {"name": "day", "type": "DATE"},
    {"name": "at", "type": "TIMESTAMP"},
    {"name": "note", "type": "VARCHAR", "default": "none"},
]


def test_project_records_its_backend(proj, admin, backend):
    got = expect(admin.get("/projects/p1"), 200)
    assert got["backend"] == backend
    assert got["stats"]["buckets"] == 1 and got["stats"]["tables"] == 0


def test_buckets(proj):
    api, base = proj.api, proj.base
    b = expect(api.post(f"{base}/buckets", {"stage": "out", "name": "c-sales", "description": "Sales"}), 201)
    assert b["id"] == "out.c-sales" and b["stage"] == "out" and b["name"] == "c-sales"
    assert b["description"] == "Sales" and b["table_count"] == 0
    expect_error(api.post(f"{base}/buckets", {"stage": "out", "name": "c-sales"}), 409, "already_exists")
    ids = [x["id"] for x in expect(api.get(f"{base}/buckets"), 200)["items"]]
    assert ids == ["in.c-main", "out.c-sales"]
    assert expect(api.get(f"{base}/buckets/out.c-sales"), 200)["description"] == "Sales"
    expect_error(api.get(f"{base}/buckets/out.c-nope"), 404, "not_found")
    proj.create_table("t", ["a"], bucket="out.c-sales")
    assert expect(api.get(f"{base}/buckets/out.c-sales"), 200)["table_count"] == 1
    expect_error(api.delete(f"{base}/buckets/out.c-sales"), 409, "conflict")
    expect(api.delete(f"{base}/buckets/out.c-sales", params={"force": "true"}), 204)
    expect_error(api.get(f"{base}/buckets/out.c-sales"), 404, "not_found")
    expect_error(api.delete(f"{base}/buckets/out.c-sales"), 404, "not_found")


def test_typed_table_round_trip(proj):
    t = proj.create_table("orders", TYPED, primary_key=["id"])
    assert t["id"] == "in.c-main.orders" and t["bucket"] == "in.c-main"
    cols = {c["name"]: c for c in t["columns"]}
    assert [c["name"] for c in t["columns"]] == [c["name"] for c in TYPED]
    assert cols["id"]["type"] == "INTEGER" and cols["id"]["nullable"] is False
    assert cols["amount"]["type"] == "DECIMAL(12,2)" and cols["amount"]["nullable"] is True
    assert cols["ok"]["type"] == "BOOLEAN" and cols["at"]["type"] == "TIMESTAMP"
    assert cols["note"]["default"] == "none"
    assert t["primary_key"] == ["id"] and t["rows"] == 0
    assert table_info(proj.table("orders")) == table_info(t)


def test_string_table_and_keboola_types(proj):
    t = proj.create_table("s", ["a", "b", {"name": "n", "type": "numeric(10,2)"}, {"name": "i", "type": "int"}])
    types = [c["type"] for c in t["columns"]]
    assert types == ["VARCHAR", "VARCHAR", "DECIMAL(10,2)", "INTEGER"]


def test_table_list_get_drop(proj):
    proj.create_table("b_tab", ["x"])
    proj.create_table("a_tab", ["x"], primary_key=["x"])
    items = expect(proj.api.get(f"{proj.base}/buckets/in.c-main/tables"), 200)["items"]
    assert [i["name"] for i in items] == ["a_tab", "b_tab"]
    expect_error(proj.api.post(f"{proj.base}/buckets/in.c-main/tables", {"name": "a_tab", "columns": [{"name": "x"}]}),
                 409, "already_exists")
    expect(proj.api.delete(proj.tpath("a_tab")), 204)
    expect_error(proj.api.get(proj.tpath("a_tab")), 404, "not_found")
    expect_error(proj.api.get(f"{proj.base}/buckets/in.c-nope/tables"), 404, "not_found")
    expect_error(proj.api.post(f"{proj.base}/buckets/in.c-nope/tables", {"name": "t", "columns": [{"name": "x"}]}),
                 404, "not_found")


def test_64_character_names(proj):
    tname = "t" * 64
    cname = "c" * 63 + "X"
    t = proj.create_table(tname, [cname, "c" * 63 + "Y"], primary_key=[cname])
    assert t["name"] == tname
    assert [c["name"] for c in t["columns"]] == [cname, "c" * 63 + "Y"]
    proj.load(tname, [cname, "c" * 63 + "Y"], [["1", "a"], ["2", "b"]])
    assert proj.rows(tname) == [["1", "a"], ["2", "b"]]
    assert proj.table(tname)["rows"] == 2


def test_project_stats_and_delete(proj, admin):
    proj.create_table("t", ["id", "v"])
    proj.load("t", ["id", "v"], [["1", "a"], ["2", "b"]])
    stats = expect(admin.get("/projects/p1"), 200)["stats"]
    assert stats["buckets"] == 1 and stats["tables"] == 1 and stats["rows"] == 2
    expect(admin.delete("/projects/p1"), 204)
    expect_error(admin.get("/projects/p1"), 404, "not_found")
    # The id can be used again, on the same backend, from scratch.
    again = expect(admin.post("/projects", {"id": "p1", "backend": proj.backend}), 201)
    key_api = admin.with_key(again["api_key"])
    assert expect(key_api.get("/projects/p1/buckets"), 200)["items"] == []
