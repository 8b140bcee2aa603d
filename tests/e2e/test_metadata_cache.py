"""Metadata answers through the real binary: the in-memory metadata catalog of the DuckDB backend and
the REST table list written without a JSON tree.

- Every write is visible in the next read (GET table, the table list, the bucket and the project's
  stats agree), a failed import changes nothing that is read, and after a restart (the catalog read
  back from the project file) every answer is the same as before it.
- The table list's items are exactly the GET answers, also for column defaults holding quotes,
  backslashes, control characters and non-ASCII text.
"""

from data_helpers import Proj
from e2e_lib import expect

TRICKY = ['say "hi"', "back\\slash", "line\nbreak\ttab", "ctl\x01\x1f", "čeština ✓", "</script>"]


def snapshot(p):
    """Everything a client reads about p's metadata."""
    items = expect(p.api.get(f"/projects/{p.pid}/buckets/{p.bucket}/tables"), 200)["items"]
    gets = {t["name"]: p.table(t["name"]) for t in items}
    bucket = expect(p.api.get(f"/projects/{p.pid}/buckets/{p.bucket}"), 200)
    stats = expect(p.api.get(f"/projects/{p.pid}"), 200).get("stats")
    return items, gets, bucket, stats


def check_consistent(p, tables):
    items, gets, bucket, stats = snapshot(p)
    assert [t["name"] for t in items] == sorted(tables), items
    for t in items:
        assert t == gets[t["name"]], f"list item differs from GET:\n{t}\n{gets[t['name']]}"
    assert bucket["table_count"] == len(tables)
    if stats is not None:
        assert stats["tables"] == len(tables), stats
        assert stats["rows"] == sum(t["rows"] for t in items), stats
    return items, gets, bucket, stats


def test_list_items_equal_get_with_any_default_text(server, admin):
    p = Proj(server, admin, "mc1")
    cols = [{"name": "id", "type": "INTEGER", "nullable": False}]
    cols += [{"name": f"c{i}", "type": "VARCHAR", "default": text} for i, text in enumerate(TRICKY)]
    made = p.create_table("tricky", cols, primary_key=["id"])
    assert [c["default"] for c in made["columns"][1:]] == TRICKY
    p.create_table("plain", ["a", "b"])
    items, gets, _, _ = check_consistent(p, ["plain", "tricky"])
    assert gets["tricky"] == made


def test_every_write_is_read_back_at_once_and_after_a_restart(server, admin):
    p = Proj(server, admin, "mc2")
    p.create_table("t", [{"name": "id", "type": "INTEGER", "nullable": False}, {"name": "v"}], primary_key=["id"])
    p.create_table("s", ["a", "b"])
    check_consistent(p, ["s", "t"])

    p.load_rows("t", ["id", "v"], [["1", "a"], ["2", "b"]])
    assert p.table("t")["rows"] == 2
    p.load_rows("t", ["id", "v"], [["2", "B"], ["3", "c"]], incremental=True)
    assert p.table("t")["rows"] == 3
    before = check_consistent(p, ["s", "t"])

    f = p.upload("in/bad.csv", "id,v\nnot-a-number,x\n")
    r = p.import_file_raw("t", {"file_id": f["id"], "incremental": True})
    assert r.status_code == 400, r.text
    assert check_consistent(p, ["s", "t"]) == before, "a failed import changed what is read"

    p.load_rows("fresh", ["x", "y"], [["1", "2"]], create_mode="create")  # an import that creates its table
    assert p.table("fresh")["rows"] == 1
    expect(p.api.post(p.tpath("s") + "/columns", {"name": "extra", "type": "VARCHAR"}), 201)
    assert [c["name"] for c in p.table("s")["columns"]] == ["a", "b", "extra"]
    expect(p.api.request("DELETE", p.tpath("t") + "/rows",
                         json_body={"where_filters": [{"column": "id", "operator": "eq", "values": ["1"]}]}), 200)
    assert p.table("t")["rows"] == 2
    expect(p.api.delete(p.tpath("fresh")), 204)
    after = check_consistent(p, ["s", "t"])

    server.restart()
    assert check_consistent(p, ["s", "t"]) == after, "the metadata read back after a restart differs"
