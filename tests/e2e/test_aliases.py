"""Table aliases over REST: read-only views of a table with an optional eq/ne filter and pinned or
auto-synced columns. Every read route reads through them (preview, export in both formats with the
request's own filters, profile, table info, import-from-table as a source, workspace loads); every
write is refused; dropping a source needs force; aliases work in branches and survive detaches and
restarts."""

import gzip
import uuid

from data_helpers import (PEOPLE_HDR, PEOPLE_ROWS, Proj, csv_text, expect_4xx, expect_400, ids, parse_csv,
                          people, proj)  # noqa: F401  (fixtures)
from e2e_lib import expect, expect_error

B = "in.c-main"
OUT = "out.c-views"


def apath(p, name, bucket=OUT):
    return p.tpath(name, bucket)


def make_alias(p, name, source="people", bucket=OUT, status=201, **body):
    body.update({"bucket": bucket, "name": name})
    r = p.api.post(p.tpath(source) + "/alias", body)
    if status != 201:
        return r
    return expect(r, 201)


def with_views(p):
    expect(p.api.post(f"/projects/{p.pid}/buckets", {"stage": "out", "name": "c-views"}), 201)
    return p


def alias_ids(p, name, bucket=OUT, **params):
    return ids(p.rows(name, bucket=bucket, **params))


def test_filtered_alias_reads_through_every_route(people):
    p = with_views(people)
    a = make_alias(p, "brno_prague", filter={"column": "city", "operator": "eq", "values": ["Brno", "Prague"]})
    assert a["id"] == f"{OUT}.brno_prague" and a["alias_of"] == f"{B}.people"
    assert a["rows"] == 3 and a["bytes"] == 0 and a["auto_sync"] is True
    assert a["alias_filter"] == {"column": "city", "operator": "eq", "values": ["Brno", "Prague"]}
    assert [c["name"] for c in a["columns"]] == PEOPLE_HDR and a["primary_key"] == ["id"]
    assert expect(p.api.get(apath(p, "brno_prague")), 200) == a
    ne = make_alias(p, "not_brno", filter={"column": "city", "operator": "ne", "values": ["Brno", "Prague"]})
    assert ne["rows"] == 2

    # preview, with the request's own filter ANDed to the alias's
    assert alias_ids(p, "brno_prague") == ["1", "2", "3"]
    assert alias_ids(p, "not_brno") == ["4", "5"]
    assert alias_ids(p, "brno_prague", where="city:eq:Brno") == ["2", "3"]
    assert alias_ids(p, "brno_prague", where="city:eq:Ostrava") == []

    # export CSV with own filters and columns, and Parquet
    hdr, rows = p.export_rows("brno_prague", {"columns": ["id", "name"], "where_filters": [
        {"column": "id", "operator": "ne", "values": ["1"]}]}, bucket=OUT)
    assert hdr == ["id", "name"] and sorted(rows) == [["2", "Bob"], ["3", "Cid"]]
    res, data = p.export_bytes("not_brno", {"format": "parquet"}, bucket=OUT)
    assert res["rows"] == 2 and data[:4] == b"PAR1"
    p.create_table("back", PEOPLE_HDR)
    p.import_file("back", {"file_id": res["file_id"], "format": "parquet"})
    assert ids(p.rows("back")) == ["4", "5"]
    res, data = p.export_bytes("brno_prague", {"gzip": True}, bucket=OUT)
    assert sorted(r[0] for r in parse_csv(gzip.decompress(data))[1:]) == ["1", "2", "3"]

    # profile counts only the alias's rows
    prof = expect(p.api.post(apath(p, "brno_prague") + "/profile", {}), 200)
    assert prof["rows"] == 3
    city = [c for c in prof["columns"] if c["name"] == "city"][0]
    assert city["distinct"] == 2

    # the table list shows aliases with alias_of; tables have none
    items = expect(p.api.get(f"/projects/{p.pid}/buckets/{OUT}/tables"), 200)["items"]
    assert sorted((i["name"], i["alias_of"], i["rows"]) for i in items) == [
        ("brno_prague", f"{B}.people", 3), ("not_brno", f"{B}.people", 2)]
    assert all("alias_of" not in i for i in expect(p.api.get(f"/projects/{p.pid}/buckets/{B}/tables"), 200)["items"])

    # changes of the source show at once
    p.load_rows("people", PEOPLE_HDR, [["6", "Fay", "Brno", "1"]], incremental=True)
    assert alias_ids(p, "brno_prague") == ["1", "2", "3", "6"]
    assert expect(p.api.get(apath(p, "brno_prague")), 200)["rows"] == 4

    # update the filter, then remove it
    upd = expect(p.api.put(apath(p, "brno_prague") + "/alias-filter",
                           {"column": "amount", "operator": "eq", "values": ["9", "10"]}), 200)
    assert upd["alias_filter"]["column"] == "amount" and upd["rows"] == 2
    assert alias_ids(p, "brno_prague") == ["1", "2"]
    gone = expect(p.api.delete(apath(p, "brno_prague") + "/alias-filter"), 200)
    assert gone["alias_filter"] is None and gone["rows"] == 6
    assert alias_ids(p, "brno_prague") == ["1", "2", "3", "4", "5", "6"]

    # import-from-table with an alias as the source copies only its rows
    p.create_table("copy", PEOPLE_HDR)
    r = expect(p.import_table_raw("copy", {"source": {"bucket": OUT, "table": "not_brno"}}), 200)
    assert r["imported_rows"] == 2 and ids(p.rows("copy")) == ["4", "5"]

    # a workspace loads from an alias
    expect(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "w1"}), 201)
    r = expect(p.api.post(f"/projects/{p.pid}/workspaces/w1/load",
                          {"source": {"bucket": OUT, "table": "not_brno"}, "destination": "nb"}), 200)
    assert r["rows"] == 2
    q = expect(p.api.post(f"/projects/{p.pid}/workspaces/w1/query", {"sql": "SELECT count(*) FROM nb"}), 200)
    assert q["rows"] == [[2]] or q["rows"] == [["2"]]
    r = expect(p.api.post(f"/projects/{p.pid}/workspaces/w1/load", {"source": {"bucket": OUT, "table": "not_brno"},
                                                                   "destination": "nb_view", "type": "view"}), 200)
    assert r["rows"] == 2
    q = expect(p.api.post(f"/projects/{p.pid}/workspaces/w1/query", {"sql": "SELECT count(*) FROM nb_view"}), 200)
    assert q["rows"] in ([[2]], [["2"]])
    # workspace SQL and project queries read an alias by its name, filtered
    sql = f'SELECT id FROM "{OUT}"."not_brno" ORDER BY id'
    for path in (f"/projects/{p.pid}/workspaces/w1/query", f"/projects/{p.pid}/query"):
        q = expect(p.api.post(path, {"sql": sql}), 200)
        assert [r[0] for r in q["rows"]] in (["4", "5"], [4, 5]), (path, q)


def test_bad_alias_requests_change_nothing(people):
    p = with_views(people)
    cases = [
        ({"filter": {"column": "city", "operator": "gt", "values": ["B"]}}, "operator"),
        ({"filter": {"column": "city", "operator": "eq", "values": []}}, "value"),
        ({"filter": {"column": "nope", "operator": "eq", "values": ["x"]}}, "nope"),
        ({"columns": ["id", "nope"]}, "nope"),
        ({"columns": ["id", "id"]}, "twice"),
        ({"columns": ["id"], "auto_sync": True}, "auto_sync"),
        ({"name": "bad name!"}, "name"),
    ]
    for extra, mention in cases:
        body = {"bucket": OUT, "name": "a"}
        body.update(extra)
        expect_400(p.api.post(p.tpath("people") + "/alias", body), [mention])
    expect_error(p.api.post(p.tpath("nope") + "/alias", {"bucket": OUT, "name": "a"}), 404, "not_found")
    expect_error(p.api.post(p.tpath("people") + "/alias", {"bucket": "out.c-nope", "name": "a"}), 404, "not_found")
    assert expect(p.api.get(f"/projects/{p.pid}/buckets/{OUT}/tables"), 200)["items"] == []


def test_pinned_alias_keeps_its_columns_auto_sync_follows(people):
    p = with_views(people)
    auto = make_alias(p, "auto")
    pinned = make_alias(p, "pinned", columns=["name", "id"])
    assert pinned["auto_sync"] is False and [c["name"] for c in pinned["columns"]] == ["name", "id"]
    assert [c["name"] for c in auto["columns"]] == PEOPLE_HDR
    r = p.api.post(p.tpath("people") + "/columns", {"name": "extra"})
    assert r.status_code in (200, 201), r.text
    assert [c["name"] for c in p.table("auto", OUT)["columns"]] == PEOPLE_HDR + ["extra"]
    assert [c["name"] for c in p.table("pinned", OUT)["columns"]] == ["name", "id"]
    prev = p.preview("pinned", OUT)
    assert prev["columns"] == ["name", "id"]
    assert p.preview("auto", OUT)["columns"] == PEOPLE_HDR + ["extra"]
    hdr, _ = p.export_rows("pinned", bucket=OUT)
    assert hdr == ["name", "id"]
    # a column outside the pinned set is not the alias's
    expect_400(p.preview_raw("pinned", OUT, columns="city"), ["city"])
    expect_400(p.export_raw("pinned", {"columns": ["id", "city"]}, bucket=OUT), ["city"])
    prof = expect(p.api.post(apath(p, "pinned") + "/profile", {}), 200)
    assert [c["name"] for c in prof["columns"]] == ["name", "id"]
    # a pinned alias may filter on a column it does not show
    make_alias(p, "brno_names", columns=["id", "name"], filter={"column": "city", "values": ["Brno"]})
    assert p.preview("brno_names", OUT)["columns"] == ["id", "name"]
    assert alias_ids(p, "brno_names") == ["2", "3"]
    prof = expect(p.api.post(apath(p, "brno_names") + "/profile", {}), 200)
    assert prof["rows"] == 2 and [c["name"] for c in prof["columns"]] == ["id", "name"]
    # sync off pins the current columns; on again follows the source
    off = expect(p.api.put(apath(p, "auto") + "/alias-sync", {"auto_sync": False}), 200)
    assert off["auto_sync"] is False
    r = p.api.post(p.tpath("people") + "/columns", {"name": "later"})
    assert r.status_code in (200, 201), r.text
    assert [c["name"] for c in p.table("auto", OUT)["columns"]] == PEOPLE_HDR + ["extra"]
    on = expect(p.api.put(apath(p, "auto") + "/alias-sync", {"auto_sync": True}), 200)
    assert [c["name"] for c in on["columns"]] == PEOPLE_HDR + ["extra", "later"]
    expect_400(p.api.put(apath(p, "auto") + "/alias-sync", {}), ["auto_sync"])
    # a pinned or filtered column cannot be dropped from the source
    expect_error(p.api.delete(p.tpath("people") + "/columns/name"), 409, "conflict", ["pinned"])
    assert "name" in [c["name"] for c in p.table("people")["columns"]]


def test_alias_of_alias_rules(people):
    p = with_views(people)
    make_alias(p, "base")
    make_alias(p, "filtered", filter={"column": "city", "values": ["Brno"]})
    make_alias(p, "pinned", columns=["id"])
    # an alias of an alias is created from the alias's path
    chained = expect(p.api.post(apath(p, "base") + "/alias", {"bucket": OUT, "name": "chained", "filter": {
        "column": "city", "operator": "ne", "values": ["Brno"]}}), 201)
    assert chained["alias_of"] == f"{OUT}.base"
    assert alias_ids(p, "chained") == ["1", "4", "5"]
    for src in ("filtered", "pinned"):
        r = p.api.post(apath(p, src) + "/alias", {"bucket": OUT, "name": f"of_{src}"})
        expect_400(r, [src])
    # the chained source cannot get a filter or lose its sync while an alias reads it
    expect_error(p.api.put(apath(p, "base") + "/alias-filter", {"column": "city", "values": ["Brno"]}), 409,
                 "conflict", ["chained"])
    expect_error(p.api.put(apath(p, "base") + "/alias-sync", {"auto_sync": False}), 409, "conflict", ["chained"])
    # a column added to the table reaches the chained alias
    r = p.api.post(p.tpath("people") + "/columns", {"name": "extra"})
    assert r.status_code in (200, 201), r.text
    assert [c["name"] for c in p.table("chained", OUT)["columns"]] == PEOPLE_HDR + ["extra"]


def test_writes_to_an_alias_are_refused(people):
    p = with_views(people)
    make_alias(p, "a", filter={"column": "city", "values": ["Brno"]})
    before_alias = p.table("a", OUT)
    before = p.snapshot("people")
    f = p.upload("rows.csv", csv_text([["9", "Zed", "Brno", "1"]], header=PEOPLE_HDR))
    path = apath(p, "a")
    attempts = {
        "import file": p.api.post(path + "/import/file", {"file_id": f["id"]}),
        "import file incremental": p.api.post(path + "/import/file", {"file_id": f["id"], "incremental": True}),
        "import table": p.api.post(path + "/import/table", {"source": {"bucket": B, "table": "people"}}),
        "delete rows": p.api.request("DELETE", path + "/rows", json_body={}),
        "add column": p.api.post(path + "/columns", {"name": "x"}),
        "drop column": p.api.delete(path + "/columns/name"),
        "alter column": p.api.put(path + "/columns/name", {"nullable": True}),
        "set primary key": p.api.post(path + "/primary-key", {"columns": ["id"]}),
        "drop primary key": p.api.delete(path + "/primary-key"),
    }
    for what, r in attempts.items():
        err = expect_4xx(r, ["alias"])
        assert r.status_code == 400, f"{what}: {r.status_code} {err}"
    # names are shared: no table over an alias, no alias over a table
    expect_error(p.api.post(f"/projects/{p.pid}/buckets/{OUT}/tables", {"name": "a", "columns": ["id"]}), 409,
                 "already_exists")
    p.create_table("t", ["id"], bucket=OUT)
    expect_error(make_alias(p, "t", status=409), 409, "already_exists")
    expect_error(make_alias(p, "a", status=409), 409, "already_exists")
    # a read-only key reads the alias but cannot create or change one
    rk = expect(p.api.post(f"/projects/{p.pid}/keys", {"scope": "read"}), 201)["key"]
    ro = p.api.with_key(rk)
    expect(ro.get(path + "/preview"), 200)
    expect_error(ro.post(p.tpath("people") + "/alias", {"bucket": OUT, "name": "b"}), 403, "permission_denied")
    expect_error(ro.put(path + "/alias-filter", {"column": "city", "values": ["Prague"]}), 403, "permission_denied")
    expect_error(ro.put(path + "/alias-sync", {"auto_sync": False}), 403, "permission_denied")
    expect_error(ro.delete(path), 403, "permission_denied")
    p.assert_unchanged("people", before, what="a write to its alias")
    assert p.table("a", OUT) == before_alias


def test_dropping_a_source_needs_force(people):
    p = with_views(people)
    make_alias(p, "a1", filter={"column": "city", "values": ["Brno"]})
    make_alias(p, "a2")
    expect(p.api.post(apath(p, "a2") + "/alias", {"bucket": OUT, "name": "a3"}), 201)
    err = expect_error(p.api.delete(p.tpath("people")), 409, "conflict", ["a1", "a2", "a3", "force"])
    assert p.table("people")["rows"] == 5
    # dropping an alias that an alias reads needs force too
    expect_error(p.api.delete(apath(p, "a2")), 409, "conflict", ["a3"])
    # the bucket holding aliases is not empty
    expect_error(p.api.delete(f"/projects/{p.pid}/buckets/{OUT}"), 409, "conflict", ["a1"])
    # an alias is dropped like a table
    expect(p.api.delete(apath(p, "a1")), 204)
    expect_error(p.api.get(apath(p, "a1")), 404, "not_found")
    # forced: the table and every alias reading it (also through another alias) go
    expect(p.api.delete(p.tpath("people"), params={"force": "true"}), 204)
    for name in ("a2", "a3"):
        expect_error(p.api.get(apath(p, name)), 404, "not_found")
    assert expect(p.api.get(f"/projects/{p.pid}/buckets/{OUT}/tables"), 200)["items"] == []
    assert err["message"]


def test_idempotent_alias_create(people):
    p = with_views(people)
    h = {"Idempotency-Key": "alias-1"}
    body = {"bucket": OUT, "name": "a", "filter": {"column": "city", "values": ["Brno"]}}
    r1 = p.api.post(p.tpath("people") + "/alias", body, headers=h)
    r2 = p.api.post(p.tpath("people") + "/alias", body, headers=h)
    assert r1.status_code == r2.status_code == 201 and r1.json() == r2.json()
    expect_error(p.api.post(p.tpath("people") + "/alias", dict(body, name="b"), headers=h), 409, "conflict",
                 ["Idempotency-Key"])
    assert [i["name"] for i in expect(p.api.get(f"/projects/{p.pid}/buckets/{OUT}/tables"), 200)["items"]] == ["a"]


def test_aliases_in_branches(people):
    p = with_views(people)
    make_alias(p, "main_alias", filter={"column": "city", "values": ["Brno"]})
    expect(p.api.post(f"/projects/{p.pid}/branches", {"id": "dev"}), 201)
    bp = f"/projects/{p.pid}/branches/dev"
    # main's alias reads the branch's view of the source
    expect(p.api.request("DELETE", f"{bp}/buckets/{B}/tables/people/rows",
                         json_body={"where_filters": [{"column": "id", "operator": "eq", "values": ["2"]}]}), 200)
    prev = expect(p.api.get(f"{bp}/buckets/{OUT}/tables/main_alias/preview"), 200)
    assert sorted(r[0] for r in prev["rows"]) == ["3"]
    info = expect(p.api.get(f"{bp}/buckets/{OUT}/tables/main_alias"), 200)
    assert info["rows"] == 1 and info["alias_of"] == f"{B}.people"
    listed = expect(p.api.get(f"{bp}/buckets/{OUT}/tables"), 200)["items"]
    assert [(i["name"], i["rows"]) for i in listed] == [("main_alias", 1)]
    prof = expect(p.api.post(f"{bp}/buckets/{OUT}/tables/main_alias/profile", {}), 200)
    assert prof["rows"] == 1
    assert alias_ids(p, "main_alias") == ["2", "3"]
    # an alias made in the branch exists only there
    r = expect(p.api.post(f"{bp}/buckets/{B}/tables/people/alias", {"bucket": OUT, "name": "dev_alias"}), 201)
    assert r["rows"] == 4
    expect_error(p.api.get(apath(p, "dev_alias")), 404, "not_found")
    names = sorted(i["name"] for i in expect(p.api.get(f"{bp}/buckets/{OUT}/tables"), 200)["items"])
    assert names == ["dev_alias", "main_alias"]
    # in the branch too, a table cannot take an alias's name, and an alias is read-only
    expect_error(p.api.post(f"{bp}/buckets/{OUT}/tables", {"name": "main_alias", "columns": ["id"]}), 409,
                 "already_exists")
    expect_400(p.api.post(f"{bp}/buckets/{OUT}/tables/dev_alias/columns", {"name": "x"}), ["alias"])
    # dropping main's alias in the branch hides it there only
    expect(p.api.delete(f"{bp}/buckets/{OUT}/tables/main_alias"), 204)
    expect_error(p.api.get(f"{bp}/buckets/{OUT}/tables/main_alias"), 404, "not_found")
    assert alias_ids(p, "main_alias") == ["2", "3"]
    # deleting the branch removes its aliases
    expect(p.api.delete(f"/projects/{p.pid}/branches/dev"), 204)
    expect(p.api.post(f"/projects/{p.pid}/branches", {"id": "dev"}), 201)
    names = sorted(i["name"] for i in expect(p.api.get(f"{bp}/buckets/{OUT}/tables"), 200)["items"])
    assert names == ["main_alias"]


def test_aliases_survive_detach_and_restart(server_factory):
    srv = server_factory(env={"DUCKSTORE_MAX_OPEN_PROJECTS": "1"})
    admin = srv.api()
    p1 = with_views(Proj(srv, admin, "p1"))
    p1.create_table("people", PEOPLE_HDR, primary_key=["id"])
    p1.load_rows("people", PEOPLE_HDR, PEOPLE_ROWS)
    make_alias(p1, "brno", filter={"column": "city", "values": ["Brno"]})
    make_alias(p1, "names", columns=["id", "name"])
    p2 = Proj(srv, admin, "p2")
    for _ in range(2):
        # p2's use detaches p1 (cap 1); p1's aliases read the same afterwards
        p2.create_table(f"t{uuid.uuid4().hex[:8]}", ["id"])
        assert alias_ids(p1, "brno") == ["2", "3"]
        assert p1.preview("names", OUT)["columns"] == ["id", "name"]
    srv.restart()
    assert alias_ids(p1, "brno") == ["2", "3"]
    info = p1.table("names", OUT)
    assert info["alias_of"] == f"{B}.people" and [c["name"] for c in info["columns"]] == ["id", "name"]
    expect_error(p1.api.delete(p1.tpath("people")), 409, "conflict", ["brno"])


def test_a_recreated_project_has_no_old_aliases(server, admin):
    p = with_views(Proj(server, admin, "p1"))
    p.create_table("people", PEOPLE_HDR)
    make_alias(p, "a")
    assert alias_ids(p, "a") == []
    expect(admin.delete("/projects/p1"), 204)
    p = with_views(Proj(server, admin, "p1"))
    p.create_table("people", PEOPLE_HDR)
    expect_error(p.api.get(apath(p, "a")), 404, "not_found")
    assert expect(p.api.get(f"/projects/{p.pid}/buckets/{OUT}/tables"), 200)["items"] == []
    p.create_table("a", ["id"], bucket=OUT)
    assert "alias_of" not in p.table("a", OUT)


def alias_rows_of(p, path):
    """Every alias row visible under path (a project or branch prefix): {(bucket, name): alias_of}."""
    out = {}
    for b in expect(p.api.get(f"{path}/buckets"), 200)["items"]:
        for t in expect(p.api.get(f"{path}/buckets/{b['id']}/tables"), 200)["items"]:
            if "alias_of" in t:
                out[(b["id"], t["name"])] = (t["alias_of"], t.get("alias_filter"))
    return out


def test_merge_applies_the_branchs_aliases_to_main(people):
    p = with_views(people)
    make_alias(p, "gone", filter={"column": "city", "values": ["Brno"]})
    make_alias(p, "changed")
    expect(p.api.post(f"/projects/{p.pid}/branches", {"id": "dev"}), 201)
    bp = f"/projects/{p.pid}/branches/dev"
    # made in the branch: one in main's bucket, one in a bucket only the branch has
    expect(p.api.post(f"{bp}/buckets/{B}/tables/people/alias",
                      {"bucket": OUT, "name": "made", "filter": {"column": "city", "values": ["Prague"]}}), 201)
    expect(p.api.post(f"{bp}/buckets", {"stage": "out", "name": "c-new"}), 201)
    expect(p.api.post(f"{bp}/buckets/{B}/tables/people/alias", {"bucket": "out.c-new", "name": "all"}), 201)
    # dropped and changed in the branch
    expect(p.api.delete(f"{bp}/buckets/{OUT}/tables/gone"), 204)
    expect(p.api.put(f"{bp}/buckets/{OUT}/tables/changed/alias-filter",
                     {"column": "city", "operator": "ne", "values": ["Brno"]}), 200)
    assert alias_rows_of(p, f"/projects/{p.pid}") == {
        (OUT, "gone"): (f"{B}.people", {"column": "city", "operator": "eq", "values": ["Brno"]}),
        (OUT, "changed"): (f"{B}.people", None)}
    seen_in_branch = alias_rows_of(p, bp)
    # main's data changes after the branch made its aliases: the merged aliases read main's data
    p.load_rows("people", PEOPLE_HDR, [["9", "Ida", "Prague", "1"]], incremental=True)

    res = expect(p.api.post(f"{bp}/merge", {}), 200)
    assert res["merged_tables"] == []
    assert alias_rows_of(p, f"/projects/{p.pid}") == seen_in_branch
    expect_error(p.api.get(apath(p, "gone")), 404, "not_found")
    assert alias_ids(p, "made") == ["1", "9"]
    assert alias_ids(p, "all", bucket="out.c-new") == ["1", "2", "3", "4", "5", "9"]
    assert alias_ids(p, "changed") == ["1", "4", "5", "9"]
    # the branch holds nothing of its own any more, and the merge survives a restart of the reads' cache
    assert alias_rows_of(p, bp) == alias_rows_of(p, f"/projects/{p.pid}")
    p.server.restart()
    assert alias_rows_of(p, f"/projects/{p.pid}") == seen_in_branch
    assert alias_ids(p, "made") == ["1", "9"]


def test_merge_refuses_an_alias_whose_source_main_dropped(people):
    p = with_views(people)
    p.create_table("other", ["id"])
    expect(p.api.post(f"/projects/{p.pid}/branches", {"id": "dev"}), 201)
    bp = f"/projects/{p.pid}/branches/dev"
    expect(p.api.post(f"{bp}/buckets/{B}/tables/other/alias", {"bucket": OUT, "name": "of_other"}), 201)
    # the branch also wrote a table: the refused merge must not apply it either
    p.api.post(f"{bp}/buckets/{B}/tables", {"name": "branch_only", "columns": ["id"]})
    # main drops the table the branch's alias reads (main does not see that alias)
    expect(p.api.delete(p.tpath("other")), 204)
    main_before = (alias_rows_of(p, f"/projects/{p.pid}"),
                   sorted(t["name"] for t in expect(p.api.get(f"/projects/{p.pid}/buckets/{B}/tables"), 200)["items"]))
    for force in (False, True):
        err = expect_error(p.api.post(f"{bp}/merge", {"force": force}), 409, "merge_conflict",
                           [f"{OUT}.of_other", f"{B}.other"])
        assert err["details"]["tables"] == []
        assert (alias_rows_of(p, f"/projects/{p.pid}"),
                sorted(t["name"] for t in expect(p.api.get(f"/projects/{p.pid}/buckets/{B}/tables"),
                                                  200)["items"])) == main_before
    # a table main created under the name of the branch's alias conflicts too
    expect(p.api.delete(f"{bp}/buckets/{OUT}/tables/of_other"), 204)
    expect(p.api.post(f"{bp}/buckets/{B}/tables/people/alias", {"bucket": OUT, "name": "clash"}), 201)
    p.create_table("clash", ["id"], bucket=OUT)
    expect_error(p.api.post(f"{bp}/merge", {}), 409, "merge_conflict", [f"{OUT}.clash", "table"])
    assert "alias_of" not in p.table("clash", OUT)
    # once main is consistent again the merge goes through
    expect(p.api.delete(p.tpath("clash", OUT)), 204)
    res = expect(p.api.post(f"{bp}/merge", {}), 200)
    assert res["merged_tables"] == [f"{B}.branch_only"]
    assert alias_ids(p, "clash") == ["1", "2", "3", "4", "5"]
    expect_error(p.api.get(apath(p, "of_other")), 404, "not_found")
