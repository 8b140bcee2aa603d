"""Letter case: one table, one name. A bucket, table or column may be spelled in any case (the
DuckDB backend treats "t" and "T" as one name), and every route reaches the same table, through
the same write queue, and answers with the spelling the object was created with."""

import csv
import io
import threading

from data_helpers import Proj, csv_text, expect_400
from e2e_lib import create_bucket, expect, expect_error

ROUNDS = 6
ROWS_PER_IMPORT = 3000


def test_concurrent_fail_on_duplicates_through_two_spellings(server, admin):
    """Two imports of the same keys, one via tables/t and one via tables/T, released together:
    exactly one succeeds, the other is refused as a duplicate, and no key is ever stored twice."""
    p = Proj(server, admin, "case1")
    p.create_table("t", ["id", "v"], primary_key=["id"])
    for rnd in range(ROUNDS):
        keys = range(rnd * ROWS_PER_IMPORT, (rnd + 1) * ROWS_PER_IMPORT)
        files = {}
        for who in ("a", "b"):
            data = csv_text([[str(k), f"{who}{k}"] for k in keys], header=["id", "v"])
            files[who] = p.upload(f"in/r{rnd}-{who}.csv", data)["id"]
        barrier = threading.Barrier(2)
        results = {}

        def run(who, table):
            api = server.api(p.key)  # own session per thread
            barrier.wait()
            results[who] = api.post(p.tpath(table) + "/import/file",
                                    {"file_id": files[who], "incremental": True, "dedup": "fail_on_duplicates"})

        threads = [threading.Thread(target=run, args=("a", "t")), threading.Thread(target=run, args=("b", "T"))]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        codes = sorted(r.status_code for r in results.values())
        assert codes == [200, 400], f"round {rnd}: " + "; ".join(f"{w}: {r.status_code} {r.text[:200]}"
                                                                  for w, r in results.items())
        loser = next(r for r in results.values() if r.status_code == 400)
        expect_error(loser, 400, "invalid_argument", mentions=["fail_on_duplicates"])
        t = p.table("T")
        assert t["rows"] == (rnd + 1) * ROWS_PER_IMPORT, f"round {rnd}: {t['rows']} rows: {t}"
        # Every key once: an export counts distinct ids against rows.
        _, rows = p.export_rows("t", {"columns": ["id"]})
        ids = [r[0] for r in rows]
        assert len(ids) == len(set(ids)) == (rnd + 1) * ROWS_PER_IMPORT, f"round {rnd}: duplicate keys stored"


def test_every_route_resolves_mixed_case_names_to_the_stored_spelling(server, admin):
    p = Proj(server, admin, "case2")
    create_bucket(p.api, p.pid, "c-Sales")  # bucket id in.c-Sales
    b = "in.c-Sales"
    expect(p.api.post(f"/projects/{p.pid}/buckets/{b}/tables",
                      {"name": "Orders", "columns": [{"name": "Id"}, {"name": "Name"}, {"name": "City"}],
                       "primary_key": ["ID"]}), 201)
    t = p.table("Orders", bucket=b)
    assert t["primary_key"] == ["Id"], "the key must name its column as the column is spelled"

    # get, under any spelling of bucket and table
    for bucket, table in (("in.c-sales", "orders"), ("IN.C-SALES", "ORDERS"), (b, "oRdErS")):
        got = p.table(table, bucket=bucket)
        assert (got["name"], got["bucket"]) == ("Orders", b), got
    assert expect(p.api.get(f"/projects/{p.pid}/buckets/in.c-SALES"), 200)["id"] == b
    listed = expect(p.api.get(f"/projects/{p.pid}/buckets/IN.C-sales/tables"), 200)["items"]
    assert [x["name"] for x in listed] == ["Orders"]

    # import: dedup and column names in another case; the result names the stored columns
    rows = [["1", "Ann", "Prague"], ["2", "Bob", "Brno"], ["3", "Cid", "Brno"]]
    res = p.load_csv("orders", csv_text(rows, header=["ID", "NAME", "CITY"]), bucket="in.c-sales",
                     incremental=True, dedup="update_duplicates", dedup_columns=["iD"],
                     convert_empty_to_null=["name"])
    assert res["imported_columns"] == ["Id", "Name", "City"], res
    assert res["table_rows"] == 3

    # preview: columns, order and filters in other cases; the answer uses the stored spelling
    pv = p.preview("ORDERS", bucket="in.c-sales", columns="NAME,id", order_by="ID:desc")
    assert pv["columns"] == ["Name", "Id"]
    assert pv["rows"] == [["Cid", "3"], ["Bob", "2"], ["Ann", "1"]]

    # export: columns in another case; the header and the default file name use the stored spelling
    ex = expect(p.api.post(p.tpath("ORDERS", "IN.C-SALES") + "/export", {"columns": ["CITY", "id"]}), 201)
    assert ex["file_name"].startswith("exports/in.c-Sales.Orders-"), ex
    data = p.download(ex["file_id"])
    assert next(csv.reader(io.StringIO(data.decode()))) == ["City", "Id"]

    # delete rows: filter column in another case
    r = expect(p.api.delete(p.tpath("oRDERS", "in.C-sales") + "/rows",
                            json_body={"where_filters": [{"column": "CITY", "operator": "eq", "values": ["Prague"]}]}),
               200)
    assert r == {"deleted_rows": 1, "table_rows": 2}, r

    # import from table: a source spelled differently is still the destination itself
    expect_400(p.import_table_raw("orders", {"source": {"bucket": "IN.c-SALES", "table": "ORDERS"}}, bucket=b),
               mentions=["itself"])

    # schema changes
    t = expect(p.api.post(p.tpath("ORDERS", "in.c-sales") + "/columns", {"name": "Note"}), 201)
    assert [c["name"] for c in t["columns"]] == ["Id", "Name", "City", "Note"]
    t = expect(p.api.put(p.tpath("orders", "in.c-sales") + "/columns/NOTE", {"default": "x"}), 200)
    assert [c["name"] for c in t["columns"]] == ["Id", "Name", "City", "Note"]
    expect(p.api.delete(p.tpath("orders", "IN.C-SALES") + "/columns/nOtE"), 204)
    expect(p.api.delete(p.tpath("ORDERS", b) + "/primary-key"), 204)
    t = expect(p.api.post(p.tpath("orders", b) + "/primary-key", {"columns": ["NAME", "id"]}), 200)
    assert t["primary_key"] == ["Name", "Id"], t
    t = p.table("Orders", bucket=b)
    assert [c["name"] for c in t["columns"]] == ["Id", "Name", "City"] and t["rows"] == 2

    # drop under another spelling; a table created under a third spelling starts empty
    expect(p.api.delete(p.tpath("ORDERS", "in.c-SALES")), 204)
    expect_error(p.api.get(p.tpath("Orders", b)), 404, "not_found")
    expect(p.api.post(f"/projects/{p.pid}/buckets/IN.c-sales/tables", {"name": "oRDERS", "columns": [{"name": "x"}]}),
           201)
    t = p.table("orders", bucket=b)
    assert (t["name"], t["bucket"], t["rows"]) == ("oRDERS", b, 0), t


def test_import_creating_a_table_takes_the_buckets_spelling(server, admin):
    p = Proj(server, admin, "case3")
    create_bucket(p.api, p.pid, "c-Raw")
    f = p.upload("in/x.csv", csv_text([["1"]], header=["id"]))
    expect(p.api.post(p.tpath("New", "IN.C-RAW") + "/import/file", {"file_id": f["id"], "create_mode": "create"}),
           200)
    t = p.table("new", bucket="in.c-raw")
    assert (t["bucket"], t["name"]) == ("in.c-Raw", "New"), t


def test_project_ids_in_any_case_reach_the_one_project(server, admin):
    """Project ids are unique regardless of case: /projects/Mixed and /projects/MIXED are the same
    project (its data, its key, its lifecycle), answered with the stored spelling."""
    p = Proj(server, admin, "Mixed")
    p.create_table("t", ["id", "v"], primary_key=["id"])
    fid = p.upload("in/one.csv", csv_text([["1", "a"], ["2", "b"]], header=["id", "v"]))["id"]
    for spelling in ("mixed", "MIXED"):
        t = expect(p.api.get(f"/projects/{spelling}/buckets/{p.bucket}/tables/t"), 200)
        assert t["rows"] == 0, t
    expect(p.api.post(f"/projects/mIxEd/buckets/{p.bucket}/tables/t/import/file", {"file_id": fid}), 200)
    assert p.table("t")["rows"] == 2
    got = expect(admin.get("/projects/MIXED"), 200)
    assert got["id"] == "Mixed", got
    expect_error(admin.post("/projects", {"id": "mixed", "name": "dup"}), 409, "already_exists")
    # Deleted through another spelling: gone under every spelling, and a new "mixed" starts empty.
    expect(admin.delete("/projects/mixed"), 204)
    for spelling in ("Mixed", "MIXED"):
        expect_error(admin.get(f"/projects/{spelling}"), 404, "not_found")
    q = Proj(server, admin, "mixed")
    tables = expect(q.api.get(f"/projects/MIXED/buckets/{q.bucket}/tables"), 200)["items"]
    assert tables == [], tables
