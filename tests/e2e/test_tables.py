"""Tables: create (typed, string, Keboola base types), list, get, delete, and every rejection."""

import pytest

from e2e_lib import (assert_time, create_bucket, create_table, expect,
                     expect_error, list_items, project_api, project_stats, table_names)

T = "/projects/p1/buckets/in.c-crm/tables"


@pytest.fixture
def crm(admin):
    """Project p1 with bucket in.c-crm; returns the project-key client."""
    _, proj = project_api(admin, "p1")
    create_bucket(proj, "p1", "c-crm")
    return proj


def cols(table):
    return [(c["name"], c["type"], c["nullable"]) for c in table["columns"]]


def assert_nothing_created(api, name="orders"):
    assert table_names(api, "p1", "in.c-crm") == [], "a rejected create left a table"
    expect_error(api.get(f"{T}/{name}"), 404, "not_found")
    assert project_stats(api, "p1")["tables"] == 0
    assert expect(api.get("/projects/p1/buckets/in.c-crm"), 200)["table_count"] == 0


def test_create_typed_table(crm):
    body = {"name": "orders",
            "columns": [{"name": "id", "type": "INTEGER", "nullable": False},
                        {"name": "note", "type": "VARCHAR"}],
            "primary_key": ["id"]}
    t = expect(crm.post(T, body), 201)
    assert t["id"] == "in.c-crm.orders"
    assert t["name"] == "orders"
    assert t["bucket"] == "in.c-crm"
    assert cols(t) == [("id", "INTEGER", False), ("note", "VARCHAR", True)]
    for c in t["columns"]:
        assert set(c) >= {"name", "type", "nullable", "default"}, c
        assert c["default"] is None
    assert t["primary_key"] == ["id"]
    assert t["rows"] == 0
    assert isinstance(t["bytes"], int) and t["bytes"] >= 0
    assert_time(t["created_at"], "created_at")
    assert "last_import_at" in t and "last_change_at" in t
    assert all(c["name"] != "_timestamp" for c in t["columns"]), "_timestamp must not be listed"
    got = expect(crm.get(f"{T}/orders"), 200)
    assert got == t, f"GET differs from the create answer:\n{got}\n{t}"


def test_untyped_columns_are_varchar(crm):
    t = create_table(crm, "p1", "in.c-crm", "strings", [{"name": "a"}, {"name": "b"}, {"name": "c"}])
    assert cols(t) == [("a", "VARCHAR", True), ("b", "VARCHAR", True), ("c", "VARCHAR", True)]
    assert t["primary_key"] == []


def test_duckdb_types_round_trip(crm):
    types = ["VARCHAR", "INTEGER", "BIGINT", "DOUBLE", "BOOLEAN", "DATE", "TIMESTAMP", "DECIMAL(12,2)"]
    columns = [{"name": f"c{i}", "type": ty} for i, ty in enumerate(types)]
    t = create_table(crm, "p1", "in.c-crm", "typed", columns)
    assert [c["type"] for c in t["columns"]] == types
    got = expect(crm.get(f"{T}/typed"), 200)
    assert [c["type"] for c in got["columns"]] == types


def test_keboola_base_types(crm):
    base = ["STRING", "NUMERIC", "FLOAT", "INTEGER", "BOOLEAN", "DATE", "TIMESTAMP"]
    columns = [{"name": f"k_{b.lower()}", "type": b} for b in base]
    t = create_table(crm, "p1", "in.c-crm", "kbc", columns)
    got = {c["name"]: c["type"] for c in t["columns"]}
    assert got["k_string"] == "VARCHAR"
    assert got["k_numeric"].startswith("DECIMAL") or got["k_numeric"].startswith("NUMERIC"), got
    assert got["k_float"] in ("DOUBLE", "FLOAT", "REAL"), got
    assert got["k_integer"] in ("INTEGER", "BIGINT"), got
    assert got["k_boolean"] == "BOOLEAN"
    assert got["k_date"] == "DATE"
    assert got["k_timestamp"].startswith("TIMESTAMP"), got
    assert [c["name"] for c in t["columns"]] == [c["name"] for c in columns], "column order changed"
    assert expect(crm.get(f"{T}/kbc"), 200)["columns"] == t["columns"]


def test_nullable_default_and_composite_primary_key(crm):
    columns = [{"name": "tenant", "type": "VARCHAR", "nullable": False},
               {"name": "id", "type": "BIGINT", "nullable": False},
               {"name": "qty", "type": "INTEGER", "default": "0"},
               {"name": "price", "type": "DECIMAL(12,2)", "nullable": True}]
    t = create_table(crm, "p1", "in.c-crm", "lines", columns, primary_key=["tenant", "id"])
    assert t["primary_key"] == ["tenant", "id"]
    by = {c["name"]: c for c in t["columns"]}
    assert by["tenant"]["nullable"] is False and by["id"]["nullable"] is False
    assert by["price"]["nullable"] is True
    assert str(by["qty"]["default"]) == "0", by["qty"]
    assert by["price"]["default"] is None
    assert expect(crm.get(f"{T}/lines"), 200) == t


def test_list_and_get_tables(admin, crm):
    create_bucket(crm, "p1", "c-other", stage="out")
    create_table(crm, "p1", "in.c-crm", "b", [{"name": "x"}])
    create_table(crm, "p1", "in.c-crm", "a", [{"name": "y", "type": "INTEGER"}], primary_key=["y"])
    create_table(crm, "p1", "out.c-other", "a", [{"name": "z"}])
    items = list_items(crm, T)
    assert sorted(t["id"] for t in items) == ["in.c-crm.a", "in.c-crm.b"]
    by = {t["name"]: t for t in items}
    assert cols(by["a"]) == [("y", "INTEGER", True)] or cols(by["a"]) == [("y", "INTEGER", False)]
    assert by["a"]["primary_key"] == ["y"]
    assert table_names(crm, "p1", "out.c-other") == ["a"]
    other = expect(crm.get("/projects/p1/buckets/out.c-other/tables/a"), 200)
    assert other["id"] == "out.c-other.a" and cols(other) == [("z", "VARCHAR", True)]
    # The admin key sees the same.
    assert sorted(t["id"] for t in list_items(admin, T)) == ["in.c-crm.a", "in.c-crm.b"]
    assert project_stats(crm, "p1")["tables"] == 3


def test_delete_table(crm):
    create_table(crm, "p1", "in.c-crm", "t1", [{"name": "x"}])
    create_table(crm, "p1", "in.c-crm", "t2", [{"name": "x"}])
    expect(crm.delete(f"{T}/t1"), 204)
    expect_error(crm.get(f"{T}/t1"), 404, "not_found")
    assert table_names(crm, "p1", "in.c-crm") == ["t2"]
    expect_error(crm.delete(f"{T}/t1"), 404, "not_found")
    assert project_stats(crm, "p1")["tables"] == 1
    # The name is free again, with a new definition.
    t = create_table(crm, "p1", "in.c-crm", "t1", [{"name": "n", "type": "BIGINT"}])
    assert cols(t) == [("n", "BIGINT", True)]


def test_table_not_found(crm):
    expect_error(crm.get(f"{T}/nope"), 404, "not_found")
    expect_error(crm.get("/projects/p1/buckets/in.c-nope/tables"), 404, "not_found")
    expect_error(crm.get("/projects/p1/buckets/in.c-nope/tables/x"), 404, "not_found")


def test_create_table_in_missing_bucket(crm):
    r = crm.post("/projects/p1/buckets/in.c-nope/tables", {"name": "t", "columns": [{"name": "a"}]})
    expect_error(r, 404, "not_found")
    assert [b["id"] for b in list_items(crm, "/projects/p1/buckets")] == ["in.c-crm"]
    assert project_stats(crm, "p1")["tables"] == 0


def test_create_table_in_missing_project(admin):
    r = admin.post("/projects/nope/buckets/in.c-crm/tables", {"name": "t", "columns": [{"name": "a"}]})
    expect_error(r, 404, "not_found")


def test_create_duplicate_table(crm):
    create_table(crm, "p1", "in.c-crm", "orders", [{"name": "id", "type": "INTEGER"}], primary_key=["id"])
    r = crm.post(T, {"name": "orders", "columns": [{"name": "other"}]})
    expect_error(r, 409, "already_exists")
    t = expect(crm.get(f"{T}/orders"), 200)
    assert cols(t) == [("id", "INTEGER", True)] or cols(t) == [("id", "INTEGER", False)]
    assert t["primary_key"] == ["id"]


def test_unknown_type_names_the_column(crm):
    body = {"name": "orders", "columns": [{"name": "id", "type": "INTEGER"},
                                          {"name": "weird_col", "type": "NOT_A_TYPE"}]}
    expect_error(crm.post(T, body), 400, "invalid_argument", mentions=["weird_col"])
    assert_nothing_created(crm)


@pytest.mark.parametrize("bad_type", ["INTEGER); DROP TABLE x; --", "VARCHAR(", "DECIMAL(99,2)", "",
                                      "INT EGER"],
                         ids=["injection", "unclosed", "bad-precision", "empty", "space"])
def test_malformed_types_rejected(crm, bad_type):
    body = {"name": "orders", "columns": [{"name": "bad_col", "type": bad_type}]}
    expect_error(crm.post(T, body), 400, "invalid_argument", mentions=["bad_col"])
    assert_nothing_created(crm)


def test_primary_key_not_among_columns(crm):
    body = {"name": "orders", "columns": [{"name": "id", "type": "INTEGER"}], "primary_key": ["missing_pk"]}
    expect_error(crm.post(T, body), 400, "invalid_argument", mentions=["missing_pk"])
    assert_nothing_created(crm)


def test_duplicate_column(crm):
    body = {"name": "orders", "columns": [{"name": "dup_col"}, {"name": "x"}, {"name": "dup_col"}]}
    expect_error(crm.post(T, body), 400, "invalid_argument", mentions=["dup_col"])
    assert_nothing_created(crm)


def test_no_columns(crm):
    expect_error(crm.post(T, {"name": "orders", "columns": []}), 400, "invalid_argument")
    expect_error(crm.post(T, {"name": "orders"}), 400, "invalid_argument", mentions=["columns"])
    assert_nothing_created(crm)


@pytest.mark.parametrize("name", ["a b", "a-b", "x" * 65, "", "123", "t;drop", "caf\u00e9", "a.b"],
                         ids=["space", "dash", "65-chars", "empty", "digits-only", "semicolon", "non-ascii", "dot"])
def test_invalid_table_name(crm, name):
    expect_error(crm.post(T, {"name": name, "columns": [{"name": "a"}]}), 400, "invalid_argument")
    assert table_names(crm, "p1", "in.c-crm") == []
    assert project_stats(crm, "p1")["tables"] == 0


@pytest.mark.parametrize("name", ["a b", "a-b", "x" * 65, "", "123", 'q"uote', "caf\u00e9"],
                         ids=["space", "dash", "65-chars", "empty", "digits-only", "quote", "non-ascii"])
def test_invalid_column_name(crm, name):
    body = {"name": "orders", "columns": [{"name": "ok"}, {"name": name}]}
    expect_error(crm.post(T, body), 400, "invalid_argument")
    assert_nothing_created(crm)


def test_64_char_names_accepted(crm):
    name = "t" * 64
    col = "c" * 64
    t = create_table(crm, "p1", "in.c-crm", name, [{"name": col, "type": "INTEGER"}], primary_key=[col])
    assert t["name"] == name and t["columns"][0]["name"] == col
    expect(crm.get(f"{T}/{name}"), 200)


@pytest.mark.parametrize("body,field", [
    ({"name": 5, "columns": [{"name": "a"}]}, "name"),
    ({"name": "orders", "columns": "a,b"}, "columns"),
    ({"name": "orders", "columns": [{"name": "a", "type": 5}]}, "type"),
    ({"name": "orders", "columns": [{"name": "a", "nullable": "no"}]}, "nullable"),
    ({"name": "orders", "columns": [{"name": "a"}], "primary_key": "a"}, "primary_key"),
    ({"name": "orders", "columns": [5]}, "columns"),
], ids=["name-number", "columns-string", "type-number", "nullable-string", "pk-string", "column-number"])
def test_wrong_field_types(crm, body, field):
    expect_error(crm.post(T, body), 400, "invalid_argument", mentions=[field])
    assert_nothing_created(crm)


def test_branch_default_is_main(crm):
    """REST.md: every table route also exists under /branches/default/ and means main."""
    create_table(crm, "p1", "in.c-crm", "main_t", [{"name": "a", "type": "INTEGER"}])
    bt = "/projects/p1/branches/default/buckets/in.c-crm/tables"
    got = expect(crm.get(f"{bt}/main_t"), 200)
    assert got["id"] == "in.c-crm.main_t" and cols(got) == [("a", "INTEGER", True)]
    expect(crm.post(bt, {"name": "via_branch", "columns": [{"name": "b"}]}), 201)
    assert table_names(crm, "p1", "in.c-crm") == ["main_t", "via_branch"]
    assert sorted(t["name"] for t in list_items(crm, bt)) == ["main_t", "via_branch"]


def test_list_bytes_are_each_tables_own_answer(crm):
    """The list writes its JSON by hand (thousands of tables); each item must be, byte for byte, what GET of
    that table answers (built as a JSON tree), escapes, numbers, times and key order included, in byte order
    of names even where ignoring case would order them differently."""
    tricky = 'say "hi"\\ back\nslash/\ttab\x01\x1f caf\u00e9 \u2603'
    create_table(crm, "p1", "in.c-crm", "alpha",
                 [{"name": "id", "type": "BIGINT", "nullable": False},
                  {"name": "note", "type": "VARCHAR", "default": tricky},
                  {"name": "price", "type": "DECIMAL(12,2)"}], primary_key=["id"])
    create_table(crm, "p1", "in.c-crm", "Zeta", [{"name": "x"}, {"name": "y", "default": ""}])
    create_table(crm, "p1", "in.c-crm", "_under", [{"name": "k", "type": "INTEGER"}], primary_key=["k"])
    create_table(crm, "p1", "in.c-crm", "empty_key", [{"name": "v"}])
    by_default = {c["name"]: c for c in expect(crm.get(f"{T}/alpha"), 200)["columns"]}
    assert by_default["note"]["default"] == tricky, "the default did not survive the round trip"
    r = crm.get(T)
    assert r.status_code == 200, r.text
    names = [t["name"] for t in r.json()["items"]]
    assert names == sorted(names) == ["Zeta", "_under", "alpha", "empty_key"], names
    parts = []
    for name in names:
        g = crm.get(f"{T}/{name}")
        assert g.status_code == 200 and g.content.endswith(b"\n"), g.text
        parts.append(g.content[:-1])
    assert r.content == b'{"items":[' + b",".join(parts) + b"]}\n"
    assert b"\\u0001" in r.content and b"\\u001F" in r.content and b'\\"hi\\"' in r.content
