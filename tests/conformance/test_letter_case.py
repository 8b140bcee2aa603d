"""Conformance: letter case. Both backends treat names case-insensitively (their case_rule): any
spelling of a bucket, table or column reaches the one stored object, answers use the stored
spelling, and two spellings of one table share its write queue."""

import threading

from e2e_lib import expect, expect_error
from helpers import csv_bytes


def test_any_spelling_reaches_the_stored_table(proj):
    proj.create_table("Orders", ["Id", "City"], primary_key=["ID"])
    t = proj.table("Orders")
    assert t["primary_key"] == ["Id"], t
    res = proj.load("ORDERS", ["id", "CITY"], [["1", "Brno"], ["2", "Prague"]], bucket="IN.C-MAIN",
                    incremental=True, dedup_columns=["iD"])
    assert res["imported_columns"] == ["Id", "City"] and res["table_rows"] == 2, res
    got = proj.table("orders", bucket="in.C-Main")
    assert (got["name"], got["bucket"]) == ("Orders", "in.c-main"), got
    p = expect(proj.api.get(proj.tpath("oRdErS") + "/preview", params={"columns": "CITY,id", "order_by": "ID"}), 200)
    assert p["columns"] == ["City", "Id"] and p["rows"] == [["Brno", "1"], ["Prague", "2"]], p
    r = expect(proj.api.delete(proj.tpath("ORDERS") + "/rows",
                               json_body={"where_filters": [{"column": "city", "operator": "eq", "values": ["Brno"]}]}),
               200)
    assert r["deleted_rows"] == 1 and r["table_rows"] == 1, r
    expect(proj.api.delete(proj.tpath("orders")), 204)
    expect_error(proj.api.get(proj.tpath("Orders")), 404, "not_found")


def test_concurrent_fail_on_duplicates_through_two_spellings(proj):
    proj.create_table("t", ["id", "v"], primary_key=["id"])
    for rnd in range(4):
        keys = range(rnd * 2000, (rnd + 1) * 2000)
        files = {w: proj.upload(csv_bytes([[str(k), f"{w}{k}"] for k in keys], ["id", "v"]))["id"] for w in "ab"}
        barrier = threading.Barrier(2)
        results = {}

        def run(who, table):
            api = proj.api.with_key(proj.api.key)  # own session per thread
            barrier.wait()
            results[who] = api.post(proj.tpath(table) + "/import/file",
                                    {"file_id": files[who], "incremental": True, "dedup": "fail_on_duplicates"})

        threads = [threading.Thread(target=run, args=("a", "t")), threading.Thread(target=run, args=("b", "T"))]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        codes = sorted(r.status_code for r in results.values())
        assert codes == [200, 400], {w: (r.status_code, r.text[:200]) for w, r in results.items()}
        assert proj.table("T")["rows"] == (rnd + 1) * 2000
        _, rows = proj.export_rows("t", {"columns": ["id"]})
        ids = [r[0] for r in rows]
        assert len(ids) == len(set(ids)) == (rnd + 1) * 2000, f"round {rnd}: duplicate keys stored"
