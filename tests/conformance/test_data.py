"""Conformance: export, preview with filters, profile, delete rows and schema changes give the same
results on every backend; a format a backend lacks is a 501 naming it."""

import datetime as dt
import time

from e2e_lib import expect, expect_error
from helpers import expect_400, parse_ts

COLS = [{"name": "id", "type": "INTEGER", "nullable": False},
        {"name": "state", "type": "VARCHAR"},
        {"name": "amount", "type": "DECIMAL(10,2)"},
        {"name": "ok", "type": "BOOLEAN"}]
HDR = ["id", "state", "amount", "ok"]
ROWS = [["1", "TX", "10.50", "true"], ["2", "CA", "3.00", "false"], ["3", "TX", "7.25", "false"],
        ["4", "NY", "", "true"], ["5", "ca", "1.00", ""]]


def orders(proj):
    proj.create_table("o", COLS, primary_key=["id"])
    proj.load("o", HDR, ROWS)


def test_export_csv(proj):
    orders(proj)
    header, rows = proj.export_rows("o")
    assert header == HDR
    assert sorted(rows) == sorted([r[:2] + [r[2], r[3]] for r in ROWS])
    header, rows = proj.export_rows("o", {"columns": ["state", "id"], "order_by": [{"column": "id", "order": "desc"}],
                                          "limit": 2})
    assert header == ["state", "id"] and rows == [["ca", "5"], ["NY", "4"]]
    _, rows = proj.export_rows("o", {"where_filters": [{"column": "state", "operator": "eq", "values": ["TX", "CA"]}],
                                     "columns": ["id"], "order_by": [{"column": "id"}]})
    assert rows == [["1"], ["2"], ["3"]]
    _, rows = proj.export_rows("o", {"gzip": True, "columns": ["id"], "order_by": [{"column": "id"}]})
    assert rows == [["1"], ["2"], ["3"], ["4"], ["5"]]


def test_export_with_typed_filters_and_empty_result(proj):
    orders(proj)
    _, rows = proj.export_rows("o", {"where_filters": [{"column": "amount", "operator": "ge", "values": ["7"],
                                                        "data_type": "DOUBLE"}],
                                     "columns": ["id"], "order_by": [{"column": "id"}]})
    assert rows == [["1"], ["3"]]
    proj.create_table("s", ["n"])
    proj.load("s", ["n"], [["10"], ["9"], ["100"], ["x"]])
    _, rows = proj.export_rows("s", {"order_by": [{"column": "n", "data_type": "INTEGER"}],
                                     "where_filters": [{"column": "n", "operator": "gt", "values": ["9"],
                                                        "data_type": "INTEGER"}]})
    assert rows == [["10"], ["100"]]
    header, rows = proj.export_rows("o", {"where_filters": [{"column": "state", "operator": "eq", "values": ["ZZ"]}]})
    assert header == HDR and rows == []


def test_parquet_follows_capabilities(proj, admin, backend):
    orders(proj)
    backends = {b["name"]: b for b in expect(admin.get("/backends"), 200)["items"]}
    caps = backends[backend]["capabilities"]
    r = proj.export_raw("o", {"format": "parquet", "file_name": "exports/o.parquet"})
    if "parquet" in caps["export_formats"]:
        expect(r, 201)
    else:
        err = expect_error(r, 501, "not_supported", mentions=[backend, "parquet"])
        assert "format_parquet" in err["message"]
    f = proj.upload(b"PAR1", name="in/x.parquet")
    r = proj.api.post(proj.tpath("o") + "/import/file", {"file_id": f["id"], "format": "parquet"})
    if "parquet" in caps["import_formats"]:
        assert r.status_code == 400, r.text  # not a real Parquet file
    else:
        expect_error(r, 501, "not_supported", mentions=[backend, "parquet"])


def test_preview_filters_order_limit(proj):
    orders(proj)
    p = proj.preview("o", columns="id,state", order_by="id")
    assert p["columns"] == ["id", "state"]
    assert p["rows"] == [["1", "TX"], ["2", "CA"], ["3", "TX"], ["4", "NY"], ["5", "ca"]]
    assert proj.preview("o", columns="id", where="state:eq:TX", order_by="id")["rows"] == [["1"], ["3"]]
    assert proj.preview("o", columns="id", where="state:ne:TX|NY", order_by="id")["rows"] == [["2"], ["5"]]
    assert proj.preview("o", columns="id", where="id:gt:3", order_by="id:desc")["rows"] == [["5"], ["4"]]
    assert proj.preview("o", columns="id", where="id:le:2;state:eq:CA")["rows"] == [["2"]]
    assert proj.preview("o", columns="id", order_by="id", limit=2)["rows"] == [["1"], ["2"]]
    # Byte order for text, NULLs last, values as the API shows them.
    assert [r[0] for r in proj.preview("o", columns="state", order_by="state")["rows"]] == ["CA", "NY", "TX", "TX", "ca"]
    expect_400(proj.preview_raw("o", where="nope:eq:1"), mentions=["nope"])
    expect_400(proj.preview_raw("o", columns="nope"), mentions=["nope"])
    # Typed columns sort by value, not by their text.
    p = proj.preview("o", columns="amount,ok", order_by="amount")
    assert p["rows"] == [["1.00", None], ["3.00", "false"], ["7.25", "false"], ["10.50", "true"], [None, "true"]]


def test_changed_since_until(proj):
    proj.create_table("t", ["id"])
    proj.load("t", ["id"], [["1"]])
    time.sleep(1.1)
    mid = int(time.time())
    time.sleep(0.1)
    proj.load("t", ["id"], [["2"]], incremental=True)
    ts = {r[0]: parse_ts(r[1]) for r in proj.rows("t", ["id", "_timestamp"])}
    assert ts["2"] > ts["1"]
    assert proj.preview("t", columns="id", changed_since=str(mid))["rows"] == [["2"]]
    assert proj.preview("t", columns="id", changed_until=str(mid))["rows"] == [["1"]]


def test_profile(proj):
    orders(proj)
    p = expect(proj.api.post(proj.tpath("o") + "/profile", {}), 200)
    assert p["rows"] == 5
    cols = {c["name"]: c for c in p["columns"]}
    assert cols["id"]["count"] == 5 and cols["id"]["distinct"] == 5 and cols["id"]["nulls"] == 0
    assert cols["id"]["min"] == "1" and cols["id"]["max"] == "5" and float(cols["id"]["avg"]) == 3.0
    assert cols["state"]["distinct"] == 4 and cols["state"]["min"] == "CA" and cols["state"]["max"] == "ca"
    assert cols["state"]["avg"] is None
    assert cols["state"]["top"][0] == {"value": "TX", "count": 2} or cols["state"]["top"][0]["value"] == "TX"
    assert cols["amount"]["nulls"] == 1 and cols["amount"]["min"] == "1.00" and cols["amount"]["max"] == "10.50"
    assert abs(float(cols["amount"]["avg"]) - 5.4375) < 1e-9
    assert cols["ok"]["nulls"] == 1 and cols["ok"]["min"] == "false" and cols["ok"]["max"] == "true"


def test_delete_rows(proj):
    orders(proj)
    res = expect(proj.api.delete(proj.tpath("o") + "/rows", json_body={
        "where_filters": [{"column": "state", "operator": "eq", "values": ["TX"]}]}), 200)
    assert res == {"deleted_rows": 2, "table_rows": 3}
    res = expect(proj.api.delete(proj.tpath("o") + "/rows", json_body={
        "where_filters": [{"column": "amount", "operator": "lt", "values": ["2"], "data_type": "DOUBLE"}]}), 200)
    assert res == {"deleted_rows": 1, "table_rows": 2}
    proj.create_table("ref", [{"name": "id", "type": "INTEGER"}])
    proj.load("ref", ["id"], [["4"]])
    res = expect(proj.api.delete(proj.tpath("o") + "/rows", json_body={
        "where_in": {"column": "id", "bucket": "in.c-main", "table": "ref", "ref_column": "id"}}), 200)
    assert res == {"deleted_rows": 1, "table_rows": 1}
    assert proj.rows("o", ["id"]) == [["2"]]
    expect_400(proj.api.delete(proj.tpath("o") + "/rows", json_body={
        "where_filters": [{"column": "nope", "operator": "eq", "values": ["1"]}]}), mentions=["nope"])
    res = expect(proj.api.delete(proj.tpath("o") + "/rows", json_body={}), 200)
    assert res == {"deleted_rows": 1, "table_rows": 0}


def test_schema_changes(proj):
    orders(proj)
    t = expect(proj.api.post(proj.tpath("o") + "/columns", {"name": "region", "type": "VARCHAR", "default": "EU"}), 201)
    assert [c["name"] for c in t["columns"]] == HDR + ["region"]
    region = t["columns"][-1]
    assert region["type"] == "VARCHAR" and region["default"] == "EU"
    assert {r[0] for r in proj.rows("o", ["region"])} == {"EU"}
    expect_error(proj.api.post(proj.tpath("o") + "/columns", {"name": "region"}), 409, "already_exists")
    # Type change that fits, then one that does not.
    t = expect(proj.api.put(proj.tpath("o") + "/columns/amount", {"type": "DOUBLE"}), 200)
    assert {c["name"]: c["type"] for c in t["columns"]}["amount"] == "DOUBLE"
    assert proj.row_map("o", "id", ["id", "amount"])["1"]["amount"] == "10.5"
    expect_400(proj.api.put(proj.tpath("o") + "/columns/state", {"type": "INTEGER"}), mentions=["state"])
    t = expect(proj.api.put(proj.tpath("o") + "/columns/state", {"nullable": False}), 200)
    assert {c["name"]: c["nullable"] for c in t["columns"]}["state"] is False
    t = expect(proj.api.put(proj.tpath("o") + "/columns/state", {"default": "XX"}), 200)
    assert {c["name"]: c["default"] for c in t["columns"]}["state"] == "XX"
    # Dropping: not a key column, not the last one.
    expect_400(proj.api.delete(proj.tpath("o") + "/columns/id"), mentions=["primary key"])
    expect(proj.api.delete(proj.tpath("o") + "/columns/region"), 204)
    assert [c["name"] for c in proj.table("o")["columns"]] == HDR
    expect_error(proj.api.delete(proj.tpath("o") + "/columns/region"), 404, "not_found")


def test_primary_key_changes(proj):
    proj.create_table("t", ["a", "b"])
    proj.load("t", ["a", "b"], [["1", "x"], ["1", "y"], ["2", "x"]])
    expect_400(proj.api.post(proj.tpath("t") + "/primary-key", {"columns": ["a"]}), mentions=["duplicate"])
    t = expect(proj.api.post(proj.tpath("t") + "/primary-key", {"columns": ["a", "b"]}), 200)
    assert t["primary_key"] == ["a", "b"]
    expect_400(proj.api.post(proj.tpath("t") + "/primary-key", {"columns": ["b"]}))
    expect(proj.api.delete(proj.tpath("t") + "/primary-key"), 204)
    assert proj.table("t")["primary_key"] == []
    t = expect(proj.api.post(proj.tpath("t") + "/primary-key", {"columns": ["A", "b"]}), 200)
    assert t["primary_key"] == ["a", "b"]
    proj.load("t", ["a", "b", ], [["1", "x"], ["3", "z"]], incremental=True)
    assert proj.table("t")["rows"] == 4


def test_branches_follow_capabilities(proj, admin, backend):
    """Development branches: a backend reporting "branches" serves them (reads through to main);
    one without answers 501 naming itself, on the branch routes and on branch paths alike, and
    main stays as it was."""
    orders(proj)
    caps = {b["name"]: b for b in expect(admin.get("/backends"), 200)["items"]}[backend]["capabilities"]
    base = f"/projects/{proj.pid}/branches"
    r = proj.api.post(base, {"id": "dev"})
    if caps["branches"]:
        expect(r, 201)
        t = expect(proj.api.get(f"{base}/dev/buckets/{proj.bucket}/tables/o"), 200)
        assert t["rows"] == expect(proj.api.get(proj.tpath("o")), 200)["rows"]
        return
    expect_error(r, 501, "not_supported", mentions=[backend, "branches"])
    expect_error(proj.api.get(base), 501, "not_supported", mentions=[backend])
    expect_error(proj.api.get(f"{base}/dev/buckets/{proj.bucket}/tables/o"), 501, "not_supported", mentions=[backend])
    assert expect(proj.api.get(proj.tpath("o")), 200)["name"] == "o"


def test_time_travel_follows_capabilities(proj, admin, backend):
    """Time travel: a backend reporting "time_travel" restores a table as it was; one without
    answers 501 naming itself and creates nothing."""
    orders(proj)
    rows = expect(proj.api.get(proj.tpath("o")), 200)["rows"]
    moment = dt.datetime.fromtimestamp(time.time(), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    time.sleep(0.01)
    caps = {b["name"]: b for b in expect(admin.get("/backends"), 200)["items"]}[backend]["capabilities"]
    body = {"timestamp": moment, "destination": {"bucket": proj.bucket, "table": "o_then"}}
    r = proj.api.post(proj.tpath("o") + "/time-travel", body)
    if caps["time_travel"]:
        assert expect(r, 201)["rows"] == rows
        return
    expect_error(r, 501, "not_supported", mentions=[backend, "time_travel"])
    names = [t["name"] for t in expect(proj.api.get(f"/projects/{proj.pid}/buckets/{proj.bucket}/tables"), 200)["items"]]
    assert "o_then" not in names


def test_aliases_follow_capabilities(proj, admin, backend):
    """Aliases: a backend reporting "aliases" serves them (a filtered read of the table); one
    without answers 501 naming itself on every alias route, and the table reads and drops as
    before."""
    orders(proj)
    caps = {b["name"]: b for b in expect(admin.get("/backends"), 200)["items"]}[backend]["capabilities"]
    body = {"bucket": proj.bucket, "name": "tx", "filter": {"column": "state", "operator": "eq", "values": ["TX"]}}
    r = proj.api.post(proj.tpath("o") + "/alias", body)
    if caps["aliases"]:
        a = expect(r, 201)
        assert a["alias_of"] == f"{proj.bucket}.o" and a["rows"] == 2
        prev = expect(proj.api.get(proj.tpath("tx") + "/preview"), 200)
        assert sorted(row[0] for row in prev["rows"]) == ["1", "3"]
        return
    expect_error(r, 501, "not_supported", mentions=[backend, "aliases"])
    for method, suffix, b in (("PUT", "/alias-filter", body["filter"]), ("DELETE", "/alias-filter", None),
                              ("PUT", "/alias-sync", {"auto_sync": False})):
        expect_error(proj.api.request(method, proj.tpath("o") + suffix, json_body=b), 501, "not_supported",
                     mentions=[backend])
    assert expect(proj.api.get(proj.tpath("o")), 200)["rows"] == 5
    expect_error(proj.api.get(proj.tpath("tx")), 404, "not_found")
    expect(proj.api.delete(proj.tpath("o")), 204)


def test_compaction_follows_capabilities(proj, admin, backend):
    """Compaction: a backend reporting "compact" rewrites the project and keeps every row; one
    without answers 501 naming itself, and the project is as before."""
    orders(proj)
    caps = {b["name"]: b for b in expect(admin.get("/backends"), 200)["items"]}[backend]["capabilities"]
    r = admin.post(f"/projects/{proj.pid}/compact")
    if caps["compact"]:
        res = expect(r, 200)
        assert res["bytes_after"] > 0 and res["seconds"] >= 0
    else:
        expect_error(r, 501, "not_supported", mentions=[backend, "compact"])
    assert expect(proj.api.get(proj.tpath("o")), 200)["rows"] == 5
