"""Table export: the CSV Keboola writes, gzip, Parquet, column/order/limit/time/where filters,
_timestamp on request, sliced exports, the result as a Storage File, and a 1,000,000-row round trip
CSV -> table -> CSV / Parquet -> table -> CSV compared by checksums."""

import gzip
import hashlib
import time

import pytest

from data_helpers import (PEOPLE_HDR as HDR, PEOPLE_ROWS as ROWS, canonical_digest, csv_text, expect_400,  # noqa: F401
                          ids, parse_csv, people, proj)
from e2e_lib import expect, expect_error



# -- format ----------------------------------------------------------------------------------------

def test_csv_is_written_the_keboola_way(proj):
    proj.create_table("t", ["id", "text"], primary_key=["id"])
    proj.load_csv("t", ('id,text\n1,plain\n2,"say ""hi"", ok"\n3,"two\nlines"\n4,Žluť 🦆\n5,\n').encode())
    res, data = proj.export_bytes("t", {"order_by": [{"column": "id", "order": "asc"}]})
    assert res["rows"] == 5, res
    want = ('"id","text"\n'
            '"1","plain"\n'
            '"2","say ""hi"", ok"\n'
            '"3","two\nlines"\n'
            '"4","Žluť 🦆"\n'
            '"5",""\n').encode()
    assert data == want, f"export differs:\n{data!r}\n{want!r}"
    assert b"\r" not in data


def test_typed_values_are_enclosed_too(proj):
    proj.create_table("t", [{"name": "id", "type": "INTEGER"}, {"name": "amount", "type": "DECIMAL(10,2)"},
                            {"name": "ok", "type": "BOOLEAN"}, {"name": "day", "type": "DATE"}])
    proj.load_csv("t", b'id,amount,ok,day\n1,10.5,true,2024-02-29\n')
    _, data = proj.export_bytes("t")
    assert data == b'"id","amount","ok","day"\n"1","10.50","true","2024-02-29"\n', data


def test_export_of_an_empty_table_has_the_header(proj):
    proj.create_table("t", ["id", "v"])
    res, data = proj.export_bytes("t")
    assert res["rows"] == 0 and data == b'"id","v"\n', (res, data)


def test_gzip(people):
    res, plain = people.export_bytes("people", {"order_by": ["id"]})
    gres, gz = people.export_bytes("people", {"order_by": ["id"], "gzip": True})
    assert gz[:2] == b"\x1f\x8b", f"not gzip: {gz[:10]!r}"
    assert gzip.decompress(gz) == plain
    assert gres["rows"] == 5


def test_parquet(people):
    res, blob = people.export_bytes("people", {"format": "parquet", "columns": ["id", "city"],
                                               "where_filters": [{"column": "city", "operator": "eq",
                                                                  "values": ["Brno"]}]})
    assert res["rows"] == 2, res
    assert blob[:4] == b"PAR1" and blob[-4:] == b"PAR1", blob[:16]
    people.create_table("back", ["id", "city"])
    people.import_file("back", {"file_id": res["file_id"], "format": "parquet"})
    assert people.rows("back") == [["2", "Brno"], ["3", "Brno"]]


def test_result_is_a_storage_file(people):
    res = people.export("people", {})
    info = expect(people.api.get(f"/projects/p1/files/{res['file_id']}"), 200)
    data = people.download(res["file_id"])
    assert info["id"] == res["file_id"]
    assert info["size"] == len(data) == res["bytes"], (info, res, len(data))
    assert info["sha256"] == hashlib.sha256(data).hexdigest()
    assert info["name"] == res["file_name"]
    assert res["file_id"] in [f["id"] for f in people.files()]


def test_repeated_exports_with_default_names_all_succeed(people):
    """Each export is a new Storage File, also when the same table is exported twice in one second."""
    seen = set()
    for body in ({}, {}, {"gzip": True}, {"gzip": True}, {"format": "parquet"}, {"format": "parquet"}):
        r = people.export_raw("people", body, unique_name=False)
        res = expect(r, 201)
        assert res["file_id"] not in seen
        seen.add(res["file_id"])
        assert res["rows"] == 5


# -- what is exported ------------------------------------------------------------------------------

def test_columns(people):
    header, rows = people.export_rows("people", {"columns": ["city", "id"]})
    assert header == ["city", "id"]
    assert sorted(rows) == sorted([[r[2], r[0]] for r in ROWS])
    expect_400(people.export_raw("people", {"columns": ["id", "nope"]}), mentions=["nope"])


def test_order_by_and_limit(people):
    _, rows = people.export_rows("people", {"order_by": [{"column": "city", "order": "asc"},
                                                         {"column": "id", "order": "desc"}]})
    assert [r[0] for r in rows] == ["3", "2", "4", "5", "1"]
    # As text "9" > "100"; as a number it is not.
    _, rows = people.export_rows("people", {"order_by": [{"column": "amount", "order": "desc"}]})
    assert [r[3] for r in rows] == ["9.5", "9", "100", "10", "-5"]
    _, rows = people.export_rows("people", {"order_by": [{"column": "amount", "order": "desc",
                                                          "data_type": "DOUBLE"}]})
    assert [r[3] for r in rows] == ["100", "10", "9.5", "9", "-5"]
    _, rows = people.export_rows("people", {"order_by": [{"column": "id", "order": "asc"}], "limit": 2})
    assert [r[0] for r in rows] == ["1", "2"]
    res = people.export("people", {"limit": 3})
    assert res["rows"] == 3
    expect_400(people.export_raw("people", {"limit": -1}), mentions=["limit"])
    expect_400(people.export_raw("people", {"order_by": [{"column": "ghost"}]}), mentions=["ghost"])


def test_timestamp_only_when_asked(people):
    header, _ = people.export_rows("people")
    assert header == HDR, "_timestamp must not be exported unless asked for"
    header, rows = people.export_rows("people", {"columns": ["id", "_timestamp"]})
    assert header == ["id", "_timestamp"]
    assert all(r[1] for r in rows), rows


def wait_past_second():
    """Returns a whole unix second T such that everything before the call is < T <= everything after."""
    t = int(time.time()) + 1
    while time.time() < t + 0.05:
        time.sleep(0.05)
    return t


def test_changed_since_and_until(proj):
    proj.create_table("t", ["id", "v"], primary_key=["id"])
    proj.load_rows("t", ["id", "v"], [["1", "a"], ["2", "b"]])
    t = wait_past_second()
    proj.load_rows("t", ["id", "v"], [["2", "B"], ["3", "c"]], incremental=True)
    _, rows = proj.export_rows("t", {"changed_since": t})
    assert ids(rows) == ["2", "3"], rows
    _, rows = proj.export_rows("t", {"changed_until": t})
    assert ids(rows) == ["1"], rows
    _, rows = proj.export_rows("t", {"changed_since": str(t)})
    assert ids(rows) == ["2", "3"], rows
    text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))
    _, rows = proj.export_rows("t", {"changed_since": text})
    assert ids(rows) == ["2", "3"], f"changed_since {text!r} (UTC): {rows}"
    _, rows = proj.export_rows("t", {"changed_since": t - 3600, "changed_until": t})
    assert ids(rows) == ["1"], rows
    _, rows = proj.export_rows("t", {"changed_since": t + 3600})
    assert rows == []


def where(column, op, values, data_type=None):
    f = {"column": column, "operator": op, "values": values}
    if data_type:
        f["data_type"] = data_type
    return {"where_filters": [f]}


@pytest.mark.parametrize("op,values,data_type,want", [
    ("eq", ["Brno"], None, ["2", "3"]),
    ("eq", ["Brno", "Prague"], None, ["1", "2", "3"]),
    ("ne", ["Brno"], None, ["1", "4", "5"]),
    ("ne", ["Brno", "Prague", "Nowhere"], None, ["4", "5"]),
])
def test_where_eq_ne_on_text(people, op, values, data_type, want):
    _, rows = people.export_rows("people", where("city", op, values, data_type))
    assert ids(rows) == want, rows


@pytest.mark.parametrize("op,value,want", [
    ("eq", "9", ["2"]),
    ("ne", "9", ["1", "3", "4", "5"]),
    ("gt", "9", ["1", "3", "5"]),
    ("ge", "9", ["1", "2", "3", "5"]),
    ("lt", "9.5", ["2", "4"]),
    ("le", "9.5", ["2", "4", "5"]),
])
def test_where_operators_with_numeric_cast(people, op, value, want):
    _, rows = people.export_rows("people", where("amount", op, [value], "DOUBLE"))
    assert ids(rows) == want, rows


def test_where_cast_changes_the_comparison(people):
    # As text, "10" and "100" sort before "9"; cast to a number they do not.
    _, rows = people.export_rows("people", where("amount", "gt", ["9"]))
    assert ids(rows) == ["5"], rows
    _, rows = people.export_rows("people", where("amount", "gt", ["9"], "DECIMAL(10,2)"))
    assert ids(rows) == ["1", "3", "5"], rows
    _, rows = people.export_rows("people", where("amount", "eq", ["9", "10"], "DOUBLE"))
    assert ids(rows) == ["1", "2"], rows


def test_several_filters_combine_with_and(people):
    body = {"where_filters": [{"column": "city", "operator": "eq", "values": ["Brno", "Prague"]},
                              {"column": "amount", "operator": "ge", "values": ["10"], "data_type": "DOUBLE"}]}
    _, rows = people.export_rows("people", body)
    assert ids(rows) == ["1", "3"], rows


def test_bad_filters_are_400(people):
    expect_400(people.export_raw("people", where("ghost", "eq", ["x"])), mentions=["ghost"])
    expect_400(people.export_raw("people", where("city", "like", ["x"])), mentions=["operator"])
    expect_400(people.export_raw("people", where("amount", "gt", ["1", "2"], "DOUBLE")))
    expect_400(people.export_raw("people", where("city", "eq", [])))
    expect_400(people.export_raw("people", where("amount", "gt", ["1"], "NOT_A_TYPE")))
    expect_400(people.export_raw("people", {"format": "xml"}), mentions=["format"])
    expect_error(people.export_raw("ghost", {}), 404, "not_found")


# -- sliced ----------------------------------------------------------------------------------------

def rows_of_parts(parts, header):
    rows = []
    for key, data in parts:
        if key.endswith(".gz"):
            data = gzip.decompress(data)
        part = parse_csv(data)
        if part and part[0] == header:
            part = part[1:]
        rows.extend(part)
    return rows


def test_sliced_export_on_request(people):
    res = people.export("people", {"sliced": True})
    assert res["sliced"] is True, res
    assert res["rows"] == 5
    info = expect(people.api.get(f"/projects/p1/files/{res['file_id']}"), 200)
    assert info.get("sliced") in (True, None), info
    parts = people.manifest_parts(res["file_id"])
    assert len(parts) >= 1
    assert sorted(rows_of_parts(parts, HDR)) == sorted(ROWS)


def test_large_exports_are_sliced(server_factory):
    from data_helpers import Proj
    server = server_factory(env={"DUCKSTORE_EXPORT_SLICE_BYTES": "64KiB"})
    p = Proj(server, server.api(), "p1")
    p.create_table("t", ["id", "v"])
    rows = [[str(i), f"value {i} " + "x" * 40] for i in range(20000)]  # ~1 MB of CSV
    p.load_rows("t", ["id", "v"], rows)
    res = p.export("t", {})
    assert res["sliced"] is True, f"an export over DUCKSTORE_EXPORT_SLICE_BYTES must be sliced: {res}"
    parts = p.manifest_parts(res["file_id"])
    assert len(parts) >= 2, f"expected several parts, got {len(parts)}"
    got = rows_of_parts(parts, ["id", "v"])
    assert len(got) == 20000 == res["rows"]
    assert canonical_digest(got) == canonical_digest(rows)
    # The manifest imports back like a single file.
    p.create_table("back", ["id", "v"])
    has_header = parse_csv(parts[0][1])[0] == ["id", "v"]
    body = {"file_id": res["file_id"]}
    if not has_header:
        body["csv"] = {"columns": ["id", "v"]}
    r = p.import_file("back", body)
    assert r["table_rows"] == 20000, r


# -- 1,000,000 rows ----------------------------------------------------------------------------------

N = 1_000_000


def million_rows():
    for i in range(N):
        if i % 1000 == 0:
            tag = f"multi\nline \"{i}\""
        elif i % 7 == 0:
            tag = "comma, \"quote\""
        elif i % 10 == 0:
            tag = "žluťoučký 🦆"
        else:
            tag = ""
        yield [str(i), f"name{i % 5000}", f"{(i * 37) % 1000000 / 100:.2f}", tag]


def export_digest(p, table):
    res, data = p.export_bytes(table, {})
    rows = parse_csv(data)
    assert rows[0] == ["id", "name", "amount", "tag"], rows[0]
    assert res["rows"] == N == len(rows) - 1, (res["rows"], len(rows) - 1)
    return canonical_digest(rows[1:])


def test_million_row_round_trip(proj):
    cols = ["id", "name", "amount", "tag"]
    data = csv_text(million_rows(), header=cols)
    want = canonical_digest(million_rows())

    proj.create_table("strs", cols, primary_key=["id"])
    res = proj.load_csv("strs", data, key="big/million.csv")
    del data
    assert res["imported_rows"] == N and res["table_rows"] == N, res
    assert proj.table("strs")["rows"] == N
    assert export_digest(proj, "strs") == want, "CSV -> table -> CSV changed the data"

    # -> Parquet -> a typed table -> CSV
    pq = proj.export("strs", {"format": "parquet"})
    assert pq["rows"] == N
    assert proj.download(pq["file_id"])[:4] == b"PAR1"
    proj.create_table("typed", [{"name": "id", "type": "BIGINT", "nullable": False},
                                {"name": "name", "type": "VARCHAR"},
                                {"name": "amount", "type": "DECIMAL(12,2)"},
                                {"name": "tag", "type": "VARCHAR"}], primary_key=["id"])
    res = proj.import_file("typed", {"file_id": pq["file_id"], "format": "parquet"})
    assert res["table_rows"] == N, res
    assert export_digest(proj, "typed") == want, "table -> Parquet -> typed table -> CSV changed the data"

    # A typed table's own Parquet export imports back into a string table unchanged too.
    pq2 = proj.export("typed", {"format": "parquet"})
    res = proj.import_file("strs", {"file_id": pq2["file_id"], "format": "parquet"})
    assert res["table_rows"] == N, res
    assert export_digest(proj, "strs") == want, "typed table -> Parquet -> string table changed the data"
