"""Conformance: imports (full, incremental, every dedup type, _timestamp, column handling, CSV dialects,
rejections that change nothing) give the same results on every backend."""

import gzip
import json
import time

from e2e_lib import expect, expect_error
from helpers import csv_bytes, expect_400, parse_ts, utcnow

TYPED = [{"name": "id", "type": "INTEGER", "nullable": False},
         {"name": "amount", "type": "DECIMAL(10,2)"},
         {"name": "note", "type": "VARCHAR"}]


def seeded(proj, name="t"):
    proj.create_table(name, ["id", "name", "city"], primary_key=["id"])
    proj.load(name, ["id", "name", "city"], [["1", "Ann", "Prague"], ["2", "Bob", "Brno"], ["3", "Cid", "Ostrava"]])
    return proj.snapshot(name)


def ts_of(proj, table, key="id"):
    return {k: parse_ts(v["_timestamp"]) for k, v in proj.row_map(table, key, [key, "_timestamp"]).items()}


def test_full_load_replaces_and_incremental_appends(proj):
    proj.create_table("nopk", ["id", "v"])
    proj.load("nopk", ["id", "v"], [["1", "a"], ["2", "b"]])
    res = proj.load("nopk", ["id", "v"], [["3", "c"]])
    assert res["table_rows"] == 1 and res["imported_rows"] == 1, res
    assert res["imported_columns"] == ["id", "v"]
    assert proj.rows("nopk") == [["3", "c"]]
    res = proj.load("nopk", ["id", "v"], [["3", "c"], ["4", "d"]], incremental=True)
    assert res["table_rows"] == 3 and res["imported_rows"] == 2, res
    assert proj.rows("nopk") == [["3", "c"], ["3", "c"], ["4", "d"]]


def test_incremental_upsert_on_primary_key(proj):
    proj.create_table("t", ["id", "v"], primary_key=["id"])
    proj.load("t", ["id", "v"], [["1", "a"], ["2", "b"]])
    res = proj.load("t", ["id", "v"], [["2", "B"], ["3", "c"]], incremental=True)
    assert res["table_rows"] == 3, res
    assert proj.rows("t") == [["1", "a"], ["2", "B"], ["3", "c"]]


def test_update_duplicates_collapses_input(proj):
    proj.create_table("t", ["id", "v"], primary_key=["id"])
    rows = [["1", "a"], ["1", "a2"], ["2", "b"], ["2", "b2"], ["2", "b3"], ["3", "c"]]
    res = proj.load("t", ["id", "v"], rows, dedup="update_duplicates")
    assert res["table_rows"] == 3 and res["imported_rows"] == 3, res
    got = proj.row_map("t", "id")
    assert got["1"]["v"] in ("a", "a2") and got["2"]["v"] in ("b", "b2", "b3") and got["3"]["v"] == "c"
    res = proj.load("t", ["id", "v"], [["3", "x"], ["3", "x"], ["4", "d"]], incremental=True)
    assert res["table_rows"] == 4, res
    got = proj.row_map("t", "id")
    assert got["3"]["v"] == "x" and got["4"]["v"] == "d"


def test_insert_duplicates_keeps_duplicates(proj):
    proj.create_table("t", ["id", "v"], primary_key=["id"])
    res = proj.load("t", ["id", "v"], [["1", "a"], ["1", "a2"], ["2", "b"]], dedup="insert_duplicates")
    assert res["table_rows"] == 3, res
    res = proj.load("t", ["id", "v"], [["2", "b"]], dedup="insert_duplicates", incremental=True)
    assert res["table_rows"] == 4, res
    assert proj.rows("t").count(["2", "b"]) == 2


def test_fail_on_duplicates(proj):
    before = seeded(proj)
    expect_400(proj.import_raw("t", b'id,name,city\n7,a,b\n7,c,d\n', dedup="fail_on_duplicates"), mentions=["7"])
    proj.assert_unchanged("t", before)
    expect_400(proj.import_raw("t", b'id,name,city\n2,x,y\n8,a,b\n', dedup="fail_on_duplicates", incremental=True),
               mentions=["2"])
    proj.assert_unchanged("t", before)
    res = expect(proj.import_raw("t", b'id,name,city\n8,a,b\n9,c,d\n', dedup="fail_on_duplicates", incremental=True), 200)
    assert res["table_rows"] == 5, res


def test_dedup_columns_without_primary_key(proj):
    proj.create_table("t", ["k1", "k2", "v"])
    rows = [["a", "1", "x"], ["a", "1", "y"], ["a", "2", "z"], ["b", "1", "w"]]
    res = proj.load("t", ["k1", "k2", "v"], rows, dedup_columns=["k1", "k2"])
    assert res["table_rows"] == 3, res
    res = proj.load("t", ["k1", "k2", "v"], [["a", "2", "Z"], ["c", "1", "n"]], incremental=True,
                    dedup_columns=["k1", "k2"])
    assert res["table_rows"] == 4, res
    got = {(r[0], r[1]): r[2] for r in proj.rows("t")}
    assert got[("a", "2")] == "Z" and got[("c", "1")] == "n"
    expect_400(proj.import_raw("t", b'k1,k2,v\n1,2,3\n', dedup_columns=["nope"]), mentions=["nope"])


def test_null_keys_upsert_like_values(proj):
    proj.create_table("t", ["k", "v"], primary_key=["k"])
    proj.load("t", ["k", "v"], [["", "empty"], ["1", "one"]], convert_empty_to_null=["k"])
    proj.load("t", ["k", "v"], [["", "EMPTY"]], incremental=True, convert_empty_to_null=["k"])
    assert proj.rows("t") == [[None, "EMPTY"], ["1", "one"]]


def test_timestamp_modes(proj):
    proj.create_table("t", ["id", "v"])
    t0 = utcnow()
    proj.load("t", ["id", "v"], [["1", "a"]], timestamp_mode="current_time")
    t1 = utcnow()
    ts = ts_of(proj, "t")["1"]
    assert (t0 - ts).total_seconds() < 2 and (ts - t1).total_seconds() < 2, (t0, ts, t1)
    proj.load("t", ["id", "v"], [["2", "b"]], timestamp_mode="none")
    assert proj.rows("t", ["id", "_timestamp"]) == [["2", None]]
    res = expect(proj.import_raw("t", b'id,v,_timestamp\n3,c,2020-01-02 03:04:05\n4,d,2021-06-07T08:09:10\n',
                                 timestamp_mode="from_source"), 200)
    assert "_timestamp" not in res["imported_columns"]
    got = ts_of(proj, "t")
    assert got == {"3": parse_ts("2020-01-02 03:04:05"), "4": parse_ts("2021-06-07 08:09:10")}, got
    before = proj.snapshot("t")
    expect_400(proj.import_raw("t", b'id,v\n5,e\n', timestamp_mode="from_source"), mentions=["_timestamp"])
    expect_400(proj.import_raw("t", b'id,v,_timestamp\n5,e,yesterday-ish\n', timestamp_mode="from_source"))
    proj.assert_unchanged("t", before)


def test_string_table_unchanged_rows_keep_timestamp(proj):
    proj.create_table("t", ["id", "v"], primary_key=["id"])
    proj.load("t", ["id", "v"], [["1", "a"], ["2", "b"], ["3", "c"]])
    ts1 = ts_of(proj, "t")
    time.sleep(1.1)
    proj.load("t", ["id", "v"], [["1", "a"], ["2", "B"], ["4", "d"]], incremental=True)
    ts2 = ts_of(proj, "t")
    assert proj.rows("t") == [["1", "a"], ["2", "B"], ["3", "c"], ["4", "d"]]
    assert ts2["1"] == ts1["1"], "an unchanged re-imported row got a new _timestamp"
    assert ts2["3"] == ts1["3"]
    assert ts2["2"] > ts1["2"] and ts2["4"] > ts1["1"]


def test_typed_table_timestamp_moves_on_every_reimport(proj):
    proj.create_table("t", TYPED, primary_key=["id"])
    hdr = ["id", "amount", "note"]
    proj.load("t", hdr, [["1", "1.00", "a"], ["2", "2.00", "b"], ["3", "3.00", "c"]])
    ts1 = ts_of(proj, "t")
    time.sleep(1.1)
    proj.load("t", hdr, [["1", "1.00", "a"], ["2", "2.50", "b"]], incremental=True)
    ts2 = ts_of(proj, "t")
    assert ts2["1"] > ts1["1"] and ts2["2"] > ts1["2"] and ts2["3"] == ts1["3"]
    assert proj.rows("t") == [["1", "1.00", "a"], ["2", "2.50", "b"], ["3", "3.00", "c"]]


def test_typed_values_and_empty_fields(proj):
    proj.create_table("t", [{"name": "id", "type": "INTEGER"}, {"name": "ok", "type": "BOOLEAN"},
                            {"name": "day", "type": "DATE"}, {"name": "x", "type": "DOUBLE"},
                            {"name": "s", "type": "VARCHAR"}])
    proj.load("t", ["id", "ok", "day", "x", "s"], [["1", "true", "2024-02-29", "1.5", ""],
                                                   ["2", "false", "", "", "text"]])
    assert proj.rows("t") == [["1", "true", "2024-02-29", "1.5", ""], ["2", "false", None, None, "text"]]


def test_value_that_does_not_fit_names_row_and_column(proj):
    proj.create_table("t", TYPED, primary_key=["id"])
    proj.load("t", ["id", "amount", "note"], [["1", "1.00", "a"]])
    before = proj.snapshot("t")
    err = expect_400(proj.import_raw("t", b'id,amount,note\n2,2.00,b\n3,lots,c\n'))
    assert "amount" in err["message"] and "lots" in err["message"] and "row 2" in err["message"], err
    proj.assert_unchanged("t", before)
    expect_400(proj.import_raw("t", b'id,amount,note\n,2.00,b\n'))  # NULL into NOT NULL
    proj.assert_unchanged("t", before)


def test_string_table_gains_columns_typed_rejects(proj):
    proj.create_table("s", ["id", "a"], primary_key=["id"])
    proj.load("s", ["id", "a"], [["1", "x"]])
    res = proj.load("s", ["id", "a", "b"], [["2", "y", "B"]], incremental=True)
    assert res["table_rows"] == 2
    assert [c["name"] for c in proj.table("s")["columns"]] == ["id", "a", "b"]
    assert proj.rows("s") == [["1", "x", None], ["2", "y", "B"]]
    proj.create_table("typed", TYPED)
    before = proj.snapshot("typed")
    expect_400(proj.import_raw("typed", b'id,amount,note,extra\n2,2.00,b,e\n'), mentions=["extra"])
    proj.assert_unchanged("typed", before)


def test_column_mismatch_names_every_column(proj):
    proj.create_table("typed", [{"name": "id", "type": "INTEGER"}, {"name": "alpha", "type": "VARCHAR"},
                                {"name": "beta", "type": "DATE"}])
    err = expect_400(proj.import_raw("typed", b'id,gamma,delta\n1,x,y\n'))
    for col in ("alpha", "beta", "gamma", "delta"):
        assert col in err["message"], err


def test_csv_dialects(proj):
    proj.create_table("t", ["id", "a", "b"])
    expect(proj.import_raw("t", b'id,a,b\r\n1,x,"y"\r\n2,"multi\r\nline",last\r\n3,,end\r\n'), 200)
    assert proj.rows("t") == [["1", "x", "y"], ["2", "multi\r\nline", "last"], ["3", "", "end"]]
    expect(proj.import_raw("t", b"id;a;b\n1;'x;y';z\n", csv={"delimiter": ";", "enclosure": "'"}), 200)
    assert proj.rows("t") == [["1", "x;y", "z"]]
    expect(proj.import_raw("t", b'id,a,b\n1,"say ""hi""",z\n'), 200)
    assert proj.rows("t") == [["1", 'say "hi"', "z"]]
    expect(proj.import_raw("t", b'1,a,b\n2,c,d\n', csv={"columns": ["id", "a", "b"], "header": False}), 200)
    assert proj.rows("t") == [["1", "a", "b"], ["2", "c", "d"]]
    expect(proj.import_raw("t", b'skip me\nid,a,b\n5,e,f\n', csv={"skip_lines": 1}), 200)
    assert proj.rows("t") == [["5", "e", "f"]]
    expect(proj.import_raw("t", gzip.compress(b'id,a,b\n6,g,h\n'), csv={"compression": "gzip"}), 200)
    assert proj.rows("t") == [["6", "g", "h"]]
    expect(proj.import_raw("t", "id,a,b\n7,žluťoučký,\U0001F600\n".encode()), 200)
    assert proj.rows("t") == [["7", "žluťoučký", "\U0001F600"]]


def test_empty_string_vs_null(proj):
    proj.create_table("t", ["id", "v"])
    proj.load("t", ["id", "v"], [["1", ""], ["2", "NA"], ["3", "x"]], import_as_null=["NA"])
    assert proj.rows("t") == [["1", ""], ["2", None], ["3", "x"]]
    proj.load("t", ["id", "v"], [["1", ""]], convert_empty_to_null=["v"])
    assert proj.rows("t") == [["1", None]]


def test_bad_csv_is_400_and_changes_nothing(proj):
    before = seeded(proj)
    for data in (b'id,name,city\n1,"unterminated,x\n', b'id,name,city\n1,a\n', b'id,name,city\n1,a,b,c\n',
                 b'id,name,city\n1,\xff\xfe,b\n', b''):
        r = proj.import_raw("t", data)
        assert r.status_code == 400, (data, r.status_code, r.text)
        proj.assert_unchanged("t", before, what=f"importing {data!r}")


def test_create_mode_create_and_replace(proj):
    expect_error(proj.import_raw("fresh", b'id,v\n1,a\n'), 404, "not_found")
    res = expect(proj.import_raw("fresh", b'id,v\n1,a\n2,b\n2,b2\n', create_mode="create", dedup_columns=["id"]), 200)
    assert res["table_rows"] == 2, res
    t = proj.table("fresh")
    assert [c["name"] for c in t["columns"]] == ["id", "v"] and t["primary_key"] == ["id"]
    assert all(c["type"] == "VARCHAR" for c in t["columns"])
    res = expect(proj.import_raw("fresh", b'x,y\n9,z\n', create_mode="replace"), 200)
    assert [c["name"] for c in proj.table("fresh")["columns"]] == ["x", "y"]
    assert proj.rows("fresh") == [["9", "z"]]


def test_import_from_table(proj):
    proj.create_table("src", [{"name": "id", "type": "INTEGER"}, {"name": "state", "type": "VARCHAR"},
                              {"name": "ok", "type": "BOOLEAN"}])
    proj.load("src", ["id", "state", "ok"], [["1", "TX", "true"], ["2", "CA", "false"], ["3", "TX", "false"]])
    proj.create_table("dst", ["id", "state", "ok"])
    body = {"source": {"bucket": "in.c-main", "table": "src"},
            "where_filters": [{"column": "state", "operator": "eq", "values": ["TX"]}]}
    res = expect(proj.api.post(proj.tpath("dst") + "/import/table", body), 200)
    assert res["table_rows"] == 2, res
    assert proj.rows("dst") == [["1", "TX", "true"], ["3", "TX", "false"]]
    body = {"source": {"bucket": "in.c-main", "table": "nope"}}
    expect_error(proj.api.post(proj.tpath("dst") + "/import/table", body), 404, "not_found")


def test_sliced_manifest_import(proj):
    proj.create_table("t", ["id", "v"])
    k1 = proj.upload(csv_bytes([["1", "a"]], ["id", "v"]), name="parts/part1.csv")["name"]
    k2 = proj.upload(csv_bytes([["2", "b"], ["3", "c"]], ["id", "v"]), name="parts/part2.csv")["name"]
    manifest = json.dumps({"entries": [{"url": k1}, {"url": "s3://bucket/" + k2}]}).encode()
    r = proj.api.request("POST", f"{proj.base}/files", data=manifest, params={"name": "parts.manifest", "sliced": "true"},
                         headers={"Content-Type": "application/octet-stream"})
    m = expect(r, 201)
    res = expect(proj.api.post(proj.tpath("t") + "/import/file", {"file_id": m["id"]}), 200)
    assert res["table_rows"] == 3, res
    assert proj.rows("t") == [["1", "a"], ["2", "b"], ["3", "c"]]
