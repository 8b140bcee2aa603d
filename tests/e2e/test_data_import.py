"""Table data import: CSV dialects and options, sliced/directory/Parquet sources, load modes,
deduplication, _timestamp, column handling, import from a table, and every rejection of bad input
(which must leave the table exactly as it was)."""

import gzip
import json
import os
import re
import time

from data_helpers import (Proj, csv_text, expect_400, expect_4xx, parse_ts, proj, utcnow)  # noqa: F401
from e2e_lib import describe, expect, expect_error

STRING_COLS = ["id", "name", "city"]
TYPED_COLS = [{"name": "id", "type": "INTEGER", "nullable": False},
              {"name": "amount", "type": "DECIMAL(10,2)"},
              {"name": "note", "type": "VARCHAR"}]


def names(table):
    return [c["name"] for c in table["columns"]]


def seeded(proj, name="t", pk=("id",)):
    """A string table with three known rows."""
    proj.create_table(name, STRING_COLS, primary_key=list(pk) if pk else None)
    proj.load_rows(name, STRING_COLS, [["1", "Ann", "Prague"], ["2", "Bob", "Brno"], ["3", "Cid", "Ostrava"]])
    return proj.snapshot(name)


# -- CSV dialects ----------------------------------------------------------------------------------

def test_quotes_embedded_newlines_and_multibyte_utf8(proj):
    proj.create_table("t", ["id", "text"], primary_key=["id"])
    data = ('id,text\n'
            '1,"say ""hello"", then go"\n'
            '2,"first line\nsecond line\n"\n'
            '3,Žluťoučký kůň úpěl ďábelské ódy — 日本語 🦆\n'
            '4,"a,b,c"\n'
            '5,plain\n').encode("utf-8")
    res = proj.load_csv("t", data)
    assert res["imported_rows"] == 5 and res["table_rows"] == 5, res
    assert proj.rows("t") == [
        ["1", 'say "hello", then go'],
        ["2", "first line\nsecond line\n"],
        ["3", "Žluťoučký kůň úpěl ďábelské ódy — 日本語 🦆"],
        ["4", "a,b,c"],
        ["5", "plain"],
    ]


def test_crlf_line_endings(proj):
    proj.create_table("t", ["id", "a", "b"])
    data = b'id,a,b\r\n1,x,"y"\r\n2,"multi\r\nline",last\r\n3,,end\r\n'
    res = proj.load_csv("t", data)
    assert res["table_rows"] == 3, res
    assert proj.table("t")["columns"][2]["name"] == "b", "the header's CR leaked into the last column name"
    # Record separators are CRLF and are not part of any value; a CRLF inside quotes is data.
    assert proj.rows("t") == [["1", "x", "y"], ["2", "multi\r\nline", "last"], ["3", "", "end"]]


def test_empty_string_is_not_null_unless_converted(proj):
    proj.create_table("t", ["id", "a", "b"])
    data = b'id,a,b\n1,,\n2,"",x\n3,v,""\n'
    proj.load_csv("t", data)
    # In a string table an empty field is an empty string, quoted or not.
    assert proj.rows("t") == [["1", "", ""], ["2", "", "x"], ["3", "v", ""]]

    proj.load_csv("t", data, convert_empty_to_null=["a"])
    rows = proj.rows("t")
    assert rows == [["1", None, ""], ["2", None, "x"], ["3", "v", ""]], rows
    # Filtering sees real NULLs: no row has a = ''.
    assert proj.preview("t", where="a:eq:")["rows"] == [], "convert_empty_to_null left empty strings"


def test_import_as_null(proj):
    proj.create_table("t", ["id", "a"])
    proj.load_csv("t", b'id,a\n1,NA\n2,x\n3,\n', import_as_null=["NA"])
    assert proj.rows("t") == [["1", None], ["2", "x"], ["3", ""]]


def test_empty_field_in_typed_column_is_null(proj):
    proj.create_table("t", TYPED_COLS, primary_key=["id"])
    proj.load_csv("t", b'id,amount,note\n1,,\n2,3.50,x\n')
    assert proj.rows("t") == [["1", None, ""], ["2", "3.50", "x"]]


def test_delimiter_and_enclosure(proj):
    proj.create_table("t", ["id", "text"])
    data = "id;text\n1;'a;b'\n2;'it''s'\n3;\"as is\"\n".encode()
    proj.load_csv("t", data, csv={"delimiter": ";", "enclosure": "'"})
    assert proj.rows("t") == [["1", "a;b"], ["2", "it's"], ["3", '"as is"']]

    proj.load_csv("t", b'id\ttext\n1\t"tab\tinside"\n2\tcomma,ok\n', csv={"delimiter": "\t"})
    assert proj.rows("t") == [["1", "tab\tinside"], ["2", "comma,ok"]]


def test_no_enclosure(proj):
    proj.create_table("t", ["id", "text"])
    proj.load_csv("t", b'id|text\n1|"quoted"\n2|x\n', csv={"delimiter": "|", "enclosure": ""})
    assert proj.rows("t") == [["1", '"quoted"'], ["2", "x"]]


def test_escaped_by(proj):
    proj.create_table("t", ["id", "text"])
    data = b'id,text\n1,a\\,b\n2,back\\\\slash\n3,plain\n'
    proj.load_csv("t", data, csv={"enclosure": "", "escaped_by": "\\"})
    assert proj.rows("t") == [["1", "a,b"], ["2", "back\\slash"], ["3", "plain"]]


def test_enclosure_with_escaped_by_is_rejected(proj):
    before = seeded(proj)
    f = proj.upload("x.csv", b"id,name,city\n9,a,b\n")
    expect_400(proj.import_file_raw("t", {"file_id": f["id"], "csv": {"enclosure": '"', "escaped_by": "\\"}}),
               mentions=["escaped_by"])
    proj.assert_unchanged("t", before)


def test_skip_lines(proj):
    proj.create_table("t", ["id", "v"])
    data = b'exported by tool X\n"second, junk line"\nid,v\n1,a\n2,b\n'
    res = proj.load_csv("t", data, csv={"skip_lines": 2})
    assert res["imported_rows"] == 2, res
    assert proj.rows("t") == [["1", "a"], ["2", "b"]]


def test_headless_file_with_explicit_columns(proj):
    proj.create_table("t", ["id", "name", "city"])
    # Columns in another order than the table's; the first line is data.
    data = b'Prague,1,Ann\nBrno,2,Bob\n'
    res = proj.load_csv("t", data, csv={"columns": ["city", "id", "name"]})
    assert res["imported_rows"] == 2, res
    assert proj.rows("t", ["id", "name", "city"]) == [["1", "Ann", "Prague"], ["2", "Bob", "Brno"]]


def test_headless_file_needs_columns(proj):
    before = seeded(proj)
    f = proj.upload("h.csv", b"9,x,y\n")
    expect_400(proj.import_file_raw("t", {"file_id": f["id"], "csv": {"header": False}}), mentions=["columns"])
    proj.assert_unchanged("t", before)


def test_gzip_compression(proj):
    proj.create_table("t", ["id", "v"])
    raw = csv_text([[str(i), f"v{i} ž"] for i in range(500)], header=["id", "v"])
    res = proj.load_csv("t", gzip.compress(raw), key="in/data.csv.gz", csv={"compression": "gzip"})
    assert res["imported_rows"] == 500 and res["table_rows"] == 500, res
    rows = proj.rows("t")
    assert sorted(rows, key=lambda r: int(r[0])) == [[str(i), f"v{i} ž"] for i in range(500)]


# -- sliced files, directories, Parquet --------------------------------------------------------------

def test_sliced_manifest_file(proj):
    proj.create_table("t", ["id", "v"], primary_key=["id"])
    proj.upload("slices/orders.csv.part0", b'1,"a"\n2,"b"\n')
    proj.upload("slices/orders.csv.part1", b'3,"c"\n')
    proj.upload("slices/orders.csv.part2", b'4,"d"\n5,"e, f"\n')
    m = proj.upload_manifest("slices/orders.csv.manifest",
                             ["slices/orders.csv.part0", "slices/orders.csv.part1", "s3://kbc-bucket/slices/orders.csv.part2"])
    assert m.get("sliced") in (True, None), m
    res = proj.import_file("t", {"file_id": m["id"], "csv": {"columns": ["id", "v"]}})
    assert res["imported_rows"] == 5 and res["table_rows"] == 5, res
    assert proj.rows("t") == [["1", "a"], ["2", "b"], ["3", "c"], ["4", "d"], ["5", "e, f"]]

    # By key, too, and gzipped slices.
    proj.upload("gz/p0.gz", gzip.compress(b'6,x\n'))
    proj.upload("gz/p1.gz", gzip.compress(b'7,y\n'))
    proj.upload_manifest("gz/manifest", ["gz/p0.gz", "gz/p1.gz"])
    res = proj.import_file("t", {"file_key": "gz/manifest", "incremental": True,
                                 "csv": {"columns": ["id", "v"], "compression": "gzip"}})
    assert res["table_rows"] == 7, res
    assert ["7", "y"] in proj.rows("t")


def test_manifest_with_missing_entry_is_404_and_changes_nothing(proj):
    before = seeded(proj)
    proj.upload("s/p0", b'9,x,y\n')
    m = proj.upload_manifest("s/manifest", ["s/p0", "s/does-not-exist"])
    r = proj.import_file_raw("t", {"file_id": m["id"], "csv": {"columns": STRING_COLS}})
    expect_error(r, 404, "not_found", mentions=["s/does-not-exist"])
    proj.assert_unchanged("t", before)


def test_directory_import(proj):
    proj.create_table("t", ["id", "v"])
    proj.upload("dir/part-b.csv", b'3,c\n')
    proj.upload("dir/part-a.csv", b'1,a\n2,b\n')
    proj.upload("dir/sub/part-c.csv", b'4,d\n')
    proj.upload("dirx.csv", b'99,not in the folder\n')
    proj.upload("dir2/part.csv", b'98,not in the folder\n')
    res = proj.import_file("t", {"file_key": "dir/", "csv": {"columns": ["id", "v"]}})
    assert res["imported_rows"] == 4, res
    assert proj.rows("t") == [["1", "a"], ["2", "b"], ["3", "c"], ["4", "d"]]


def test_directory_import_with_headers(proj):
    proj.create_table("t", ["id", "v"])
    proj.upload("hdir/a.csv", b'id,v\n1,a\n')
    proj.upload("hdir/b.csv", b'id,v\n2,b\n')
    res = proj.import_file("t", {"file_key": "hdir/"})
    assert res["imported_rows"] == 2, res
    assert proj.rows("t") == [["1", "a"], ["2", "b"]]


def test_empty_directory_is_404(proj):
    before = seeded(proj)
    expect_error(proj.import_file_raw("t", {"file_key": "nothing-here/", "csv": {"columns": STRING_COLS}}),
                 404, "not_found")
    proj.assert_unchanged("t", before)


PARQUET_COLS = [{"name": "id", "type": "INTEGER", "nullable": False},
                {"name": "name", "type": "VARCHAR"},
                {"name": "amount", "type": "DECIMAL(12,2)"},
                {"name": "ratio", "type": "DOUBLE"},
                {"name": "day", "type": "DATE"},
                {"name": "flag", "type": "BOOLEAN"}]


def test_parquet_export_download_and_import(proj):
    proj.create_table("src", PARQUET_COLS, primary_key=["id"])
    data = ('id,name,amount,ratio,day,flag\n'
            '1,Ann,10.50,0.25,2024-01-31,true\n'
            '2,"Bob ""B""",-3.00,1.5,2023-12-01,false\n'
            '3,Žofie 🦆,,,,\n').encode()
    proj.load_csv("src", data)
    want = proj.rows("src")

    res, blob = proj.export_bytes("src", {"format": "parquet"})
    assert res["rows"] == 3, res
    assert blob[:4] == b"PAR1" and blob[-4:] == b"PAR1", f"not a Parquet file: {blob[:16]!r}...{blob[-16:]!r}"

    # The exported file by its id, into a typed table of the same schema.
    proj.create_table("dst", PARQUET_COLS, primary_key=["id"])
    r = proj.import_file("dst", {"file_id": res["file_id"], "format": "parquet"})
    assert r["imported_rows"] == 3 and r["table_rows"] == 3, r
    assert proj.rows("dst") == want

    # The downloaded bytes uploaded again, by key, into a string table.
    proj.upload("round/data.parquet", blob)
    proj.create_table("strs", [c["name"] for c in PARQUET_COLS])
    proj.import_file("strs", {"file_key": "round/data.parquet", "format": "parquet"})
    got = {r[0]: r for r in proj.rows("strs")}
    assert set(got) == {"1", "2", "3"}
    assert got["2"][1] == 'Bob "B"' and got["3"][1] == "Žofie 🦆"
    assert got["3"][2:] == [None, None, None, None], "Parquet NULLs must stay NULL in a string table"

    # And into a table that does not exist yet.
    r = proj.import_file("created", {"file_id": res["file_id"], "format": "parquet", "create_mode": "create"})
    assert r["table_rows"] == 3, r
    assert names(proj.table("created")) == [c["name"] for c in PARQUET_COLS]


def test_parquet_with_repeated_keys_loads_one_row_per_key(proj):
    """A direct Parquet load that finds repeated keys is run again with them collapsed."""
    proj.create_table("src", PARQUET_COLS)  # no key: keeps the duplicates
    proj.load_csv("src", b'id,name,amount,ratio,day,flag\n1,a,1.00,1,2024-01-01,true\n1,b,2.00,2,2024-01-02,false\n'
                         b'2,c,3.00,3,2024-01-03,true\n')
    res, _ = proj.export_bytes("src", {"format": "parquet"})
    proj.create_table("dst", PARQUET_COLS, primary_key=["id"])
    r = proj.import_file("dst", {"file_id": res["file_id"], "format": "parquet"})
    assert r["imported_rows"] == 2 and r["table_rows"] == 2, r
    assert r["timers"][0]["name"] == "direct_load", r
    got = proj.row_map("dst", "id")
    assert sorted(got) == ["1", "2"] and got["1"]["name"] in ("a", "b") and got["2"]["name"] == "c"


def test_csv_file_imported_as_parquet_is_400(proj):
    before = seeded(proj)
    f = proj.upload("not.parquet", b"id,name,city\n1,a,b\n")
    expect_400(proj.import_file_raw("t", {"file_id": f["id"], "format": "parquet"}))
    proj.assert_unchanged("t", before)


# -- load modes and deduplication ------------------------------------------------------------------

def test_full_load_replaces_and_incremental_appends(proj):
    proj.create_table("nopk", ["id", "v"])
    proj.load_rows("nopk", ["id", "v"], [["1", "a"], ["2", "b"]])
    res = proj.load_rows("nopk", ["id", "v"], [["3", "c"]])
    assert res["table_rows"] == 1, res
    assert proj.rows("nopk") == [["3", "c"]]
    # Incremental without a primary key: plain append, even of equal rows.
    res = proj.load_rows("nopk", ["id", "v"], [["3", "c"], ["4", "d"]], incremental=True)
    assert res["table_rows"] == 3 and res["imported_rows"] == 2, res
    assert proj.rows("nopk") == [["3", "c"], ["3", "c"], ["4", "d"]]


def test_incremental_with_primary_key_upserts(proj):
    proj.create_table("t", ["id", "v"], primary_key=["id"])
    proj.load_rows("t", ["id", "v"], [["1", "a"], ["2", "b"]])
    res = proj.load_rows("t", ["id", "v"], [["2", "B"], ["3", "c"]], incremental=True)
    assert res["table_rows"] == 3 and res["imported_rows"] == 2, res
    assert proj.rows("t") == [["1", "a"], ["2", "B"], ["3", "c"]]


def test_update_duplicates_collapses_input_duplicates(proj):
    proj.create_table("t", ["id", "v"], primary_key=["id"])
    rows = [["1", "a"], ["1", "a2"], ["2", "b"], ["2", "b2"], ["2", "b3"], ["3", "c"]]
    res = proj.load_rows("t", ["id", "v"], rows, dedup="update_duplicates")
    assert res["table_rows"] == 3 and res["imported_rows"] == 3, res
    got = proj.row_map("t", "id")
    assert set(got) == {"1", "2", "3"}
    assert got["1"]["v"] in ("a", "a2") and got["2"]["v"] in ("b", "b2", "b3") and got["3"]["v"] == "c"
    # The default dedup is update_duplicates, incremental too.
    res = proj.load_rows("t", ["id", "v"], [["3", "x"], ["3", "x"], ["4", "d"]], incremental=True)
    # An upsert counts the keys it brought, each once.
    assert res["table_rows"] == 4 and res["imported_rows"] == 2, res
    got = proj.row_map("t", "id")
    assert got["3"]["v"] == "x" and got["4"]["v"] == "d"


def test_typed_table_collapses_duplicate_keys_on_every_load_path(proj):
    """Duplicates are collapsed after the rows are loaded (no DISTINCT ON): a full load and an upsert
    read straight from the file, a bad value's staged fallback, and a load that creates the table."""
    proj.create_table("t", TYPED_COLS, primary_key=["id"])
    rows = [["1", "1.50", "a"], ["2", "2.00", "b"], ["1", "1.75", "a2"], ["3", "", "c"], ["2", "2.25", "b2"]]
    res = proj.load_rows("t", ["id", "amount", "note"], rows, dedup="update_duplicates")
    assert res["imported_rows"] == 3 and res["table_rows"] == 3, res
    got = proj.row_map("t", "id")
    assert sorted(got) == ["1", "2", "3"]
    assert (got["1"]["amount"], got["1"]["note"]) in (("1.50", "a"), ("1.75", "a2"))
    assert (got["2"]["amount"], got["2"]["note"]) in (("2.00", "b"), ("2.25", "b2"))
    # Upsert: 3 is replaced (twice in the input), 4 is new (three times), 1 and 2 stay.
    res = proj.load_rows("t", ["id", "amount", "note"],
                         [["3", "3.10", "x"], ["4", "4.00", "d"], ["3", "3.20", "y"], ["4", "4.00", "d"],
                          ["4", "4.50", "e"]], incremental=True)
    assert res["imported_rows"] == 2 and res["table_rows"] == 4, res
    assert res["timers"][0]["name"] == "direct_load", res  # read straight from the file, no text stage
    after = proj.row_map("t", "id")
    assert sorted(after) == ["1", "2", "3", "4"]
    assert after["1"] == got["1"] and after["2"] == got["2"]
    assert (after["3"]["amount"], after["3"]["note"]) in (("3.10", "x"), ("3.20", "y"))
    assert after["4"]["amount"] in ("4.00", "4.50")
    # An upsert without duplicates replaces every row it names, once (a typed table replaces equal rows too).
    res = proj.load_rows("t", ["id", "amount", "note"], [["1", "9.00", "z"], ["5", "5.00", "f"]], incremental=True)
    assert res["imported_rows"] == 2 and res["table_rows"] == 5, res
    assert proj.row_map("t", "id")["1"]["amount"] == "9.00"
    # A value that does not fit: the direct read fails, the staged path names row and column; nothing changes.
    before = proj.snapshot("t")
    f = proj.upload("bad.csv", csv_text([["id", "amount", "note"], ["6", "6.00", "g"], ["7", "seven", "h"]]))
    r = proj.import_file_raw("t", {"file_id": f["id"], "incremental": True})
    expect_400(r, mentions=["row 2", "amount", "seven"])
    proj.assert_unchanged("t", before)
    # A load that creates its table takes the dedup columns as its key and collapses on them.
    f = proj.upload("new.csv", csv_text([["k", "v"], ["a", "1"], ["b", "2"], ["a", "3"], ["", "4"], ["", "5"]]))
    res = proj.import_file("fresh", {"file_id": f["id"], "dedup_columns": ["k"], "create_mode": "create"})
    assert res["imported_rows"] == 3 and res["table_rows"] == 3, res
    assert sorted(r[0] for r in proj.rows("fresh", ["k"])) == ["", "a", "b"]
    # A column named rowid would hide the engine's row id, which the collapse selects the loaded rows by.
    f = proj.upload("rowid.csv", csv_text([["rowid", "k"], ["1", "a"], ["2", "a"]]))
    expect_400(proj.import_file_raw("other", {"file_id": f["id"], "dedup_columns": ["k"], "create_mode": "create"}),
               mentions=["rowid"])


def test_integer_keys_are_counted_exactly_at_every_range(proj):
    """Big loads count a one-column integer key's values in a bitmap when their range is narrow (from
    100,000 rows), by grouping otherwise (a range too wide, NULLs): every way keeps one row per key.
    A full load only learns from the count whether a key repeats; an upsert reports it
    (imported_rows), so each case is also upserted, where a wrong count fails the import."""
    n = 100_000

    def counted(res):  # how the import counted its keys: the name of its count_keys timer
        names = [t["name"] for t in res["timers"] if t["name"].startswith("count_keys")]
        assert len(names) == 1, res
        return names[0]

    bitmap, grouped = "count_keys_bitmap", "count_keys_grouped"
    proj.create_table("s", [{"name": "k", "type": "SMALLINT", "nullable": False}, {"name": "v", "type": "VARCHAR"}],
                      primary_key=["k"])
    # Every SMALLINT value, some twice: the bitmap finds the repeats, the load runs again collapsing them.
    every = [[str(i % 65536 - 32768), str(i)] for i in range(n)]
    res = proj.load_rows("s", ["k", "v"], every)
    assert res["imported_rows"] == 65536 and res["table_rows"] == 65536 and counted(res) == bitmap, res
    res = proj.load_rows("s", ["k", "v"], every, incremental=True)
    assert res["imported_rows"] == 65536 and res["table_rows"] == 65536 and counted(res) == bitmap, res
    # The staged path (import_as_null reads the files as text first) counts the same way.
    res = proj.load_rows("s", ["k", "v"], every, import_as_null=["none"])
    assert res["imported_rows"] == 65536 and res["table_rows"] == 65536 and counted(res) == bitmap, res
    assert res["timers"][0]["name"] == "stage", res
    res = proj.load_rows("s", ["k", "v"], every[:n // 2] + every, import_as_null=["none"], incremental=True)
    assert res["imported_rows"] == 65536 and res["table_rows"] == 65536 and counted(res) == bitmap, res
    # Below 100,000 rows the GROUP BY counts (it takes about a millisecond there).
    res = proj.load_rows("s", ["k", "v"], every[:1000] * 2, incremental=True)
    assert res["imported_rows"] == 1000 and res["table_rows"] == 65536 and counted(res) == grouped, res
    proj.create_table("i", [{"name": "k", "type": "INTEGER", "nullable": False}, {"name": "v", "type": "VARCHAR"}],
                      primary_key=["k"])
    # Unique keys from negative to positive: nothing collapses.
    res = proj.load_rows("i", ["k", "v"], [[str(i - n // 2), "a"] for i in range(n + 20_000)])
    assert res["imported_rows"] == n + 20_000 and res["table_rows"] == n + 20_000 and counted(res) == bitmap, res
    # An upsert naming each of 50,000 keys twice (its new rows are counted in the bitmap too).
    res = proj.load_rows("i", ["k", "v"], [[str(i // 2 - n // 2), f"b{i}"] for i in range(n)], incremental=True)
    assert res["imported_rows"] == n // 2 and res["table_rows"] == n + 20_000 and counted(res) == bitmap, res
    got = {r[0]: r[1] for r in proj.export_rows("i", {"columns": ["k", "v"]})[1]}
    assert len(got) == n + 20_000 and got[str(-n // 2)] in ("b0", "b1") and got[str(n // 2)] == "a"
    # BIGINT keys spread over its whole range: too wide for the bitmap, counted by grouping.
    lo, hi = -2 ** 63, 2 ** 63 - 1
    proj.create_table("b", [{"name": "k", "type": "BIGINT"}, {"name": "v", "type": "VARCHAR"}], primary_key=["k"])
    keys = [lo, hi] + [i * 10 ** 12 for i in range(n)] + [7 * 10 ** 12]
    res = proj.load_rows("b", ["k", "v"], [[str(k), "x"] for k in keys])
    assert res["imported_rows"] == n + 2 and res["table_rows"] == n + 2 and counted(res) == grouped, res
    res = proj.load_rows("b", ["k", "v"], [[str(k), "y"] for k in keys], incremental=True)
    assert res["imported_rows"] == n + 2 and res["table_rows"] == n + 2 and counted(res) == grouped, res
    # Keys that are NULL (empty in the file) are one key, as DISTINCT ON and GROUP BY treat them
    # (the bitmap would not count them: NULLs take the GROUP BY).
    with_nulls = [["", "a"], ["", "b"]] + [[str(i), "c"] for i in range(n)]
    res = proj.load_rows("b", ["k", "v"], with_nulls)
    assert res["imported_rows"] == n + 1 and res["table_rows"] == n + 1 and counted(res) == grouped, res
    res = proj.load_rows("b", ["k", "v"], with_nulls, incremental=True)
    assert res["imported_rows"] == n + 1 and res["table_rows"] == n + 1 and counted(res) == grouped, res


def test_insert_duplicates_keeps_duplicates(proj):
    proj.create_table("t", ["id", "v"], primary_key=["id"])
    res = proj.load_rows("t", ["id", "v"], [["1", "a"], ["1", "a2"], ["2", "b"]], dedup="insert_duplicates")
    assert res["table_rows"] == 3, res
    assert proj.rows("t") == [["1", "a"], ["1", "a2"], ["2", "b"]]
    res = proj.load_rows("t", ["id", "v"], [["2", "b"]], dedup="insert_duplicates", incremental=True)
    assert res["table_rows"] == 4, res
    assert proj.rows("t").count(["2", "b"]) == 2


def test_fail_on_duplicates(proj):
    before = seeded(proj)
    # Duplicates inside the input: 400, nothing changes (full load: not even the truncate).
    r = proj.import_file_raw("t", {"file_id": proj.upload("d1.csv", b'id,name,city\n7,a,b\n7,c,d\n')["id"],
                                   "dedup": "fail_on_duplicates"})
    expect_400(r, mentions=["7"])
    proj.assert_unchanged("t", before)
    # Incremental with a key already in the table: 400 too.
    r = proj.import_file_raw("t", {"file_id": proj.upload("d2.csv", b'id,name,city\n2,x,y\n8,a,b\n')["id"],
                                   "dedup": "fail_on_duplicates", "incremental": True})
    expect_400(r, mentions=["2"])
    proj.assert_unchanged("t", before)
    # Without duplicates it loads.
    res = proj.load_csv("t", b'id,name,city\n8,a,b\n9,c,d\n', dedup="fail_on_duplicates", incremental=True)
    assert res["table_rows"] == 5, res


def test_dedup_columns_on_a_table_without_primary_key(proj):
    proj.create_table("t", ["k1", "k2", "v"])
    rows = [["a", "1", "x"], ["a", "1", "y"], ["a", "2", "z"], ["b", "1", "w"]]
    res = proj.load_rows("t", ["k1", "k2", "v"], rows, dedup_columns=["k1", "k2"])
    assert res["table_rows"] == 3, res
    got = {(r[0], r[1]): r[2] for r in proj.rows("t")}
    assert set(got) == {("a", "1"), ("a", "2"), ("b", "1")} and got[("a", "1")] in ("x", "y")
    # Incremental with dedup_columns: upsert on that key.
    res = proj.load_rows("t", ["k1", "k2", "v"], [["a", "2", "Z"], ["c", "1", "n"]],
                         incremental=True, dedup_columns=["k1", "k2"])
    assert res["table_rows"] == 4, res
    got = {(r[0], r[1]): r[2] for r in proj.rows("t")}
    assert got[("a", "2")] == "Z" and got[("c", "1")] == "n"


def test_dedup_columns_must_be_imported_columns(proj):
    before = seeded(proj)
    f = proj.upload("x.csv", b'id,name,city\n5,a,b\n')
    expect_400(proj.import_file_raw("t", {"file_id": f["id"], "dedup_columns": ["nope"]}), mentions=["nope"])
    proj.assert_unchanged("t", before)


# -- _timestamp ------------------------------------------------------------------------------------

def ts_of(proj, table, key="id"):
    return {k: parse_ts(v["_timestamp"]) for k, v in proj.row_map(table, key, [key, "_timestamp"]).items()}


def test_timestamp_modes(proj):
    proj.create_table("t", ["id", "v"])
    t0 = utcnow()
    proj.load_rows("t", ["id", "v"], [["1", "a"]], timestamp_mode="current_time")
    t1 = utcnow()
    ts = ts_of(proj, "t")["1"]
    slack = 2  # seconds: the server's clock and the test's are the same machine's
    assert (t0 - ts).total_seconds() < slack and (ts - t1).total_seconds() < slack, (t0, ts, t1)

    proj.load_rows("t", ["id", "v"], [["2", "b"]], timestamp_mode="none")
    assert proj.rows("t", ["id", "_timestamp"]) == [["2", None]]

    data = b'id,v,_timestamp\n3,c,2020-01-02 03:04:05\n4,d,2021-06-07T08:09:10\n'
    res = proj.load_csv("t", data, timestamp_mode="from_source")
    assert "_timestamp" not in res["imported_columns"], res
    got = ts_of(proj, "t")
    assert got == {"3": parse_ts("2020-01-02 03:04:05"), "4": parse_ts("2021-06-07 08:09:10")}, got
    assert names(proj.table("t")) == ["id", "v"], "_timestamp must not become a column"


def test_from_source_without_timestamp_column_is_400(proj):
    before = seeded(proj)
    f = proj.upload("x.csv", b'id,name,city\n5,a,b\n')
    expect_400(proj.import_file_raw("t", {"file_id": f["id"], "timestamp_mode": "from_source"}),
               mentions=["_timestamp"])
    proj.assert_unchanged("t", before)


def test_string_table_timestamp_moves_only_when_values_change(proj):
    proj.create_table("t", ["id", "v"], primary_key=["id"])
    proj.load_rows("t", ["id", "v"], [["1", "a"], ["2", "b"], ["3", "c"]])
    ts1 = ts_of(proj, "t")
    time.sleep(1.1)

    proj.load_rows("t", ["id", "v"], [["1", "a"], ["2", "B"], ["4", "d"]], incremental=True)
    ts2 = ts_of(proj, "t")
    assert proj.rows("t") == [["1", "a"], ["2", "B"], ["3", "c"], ["4", "d"]]
    assert ts2["1"] == ts1["1"], "an unchanged re-imported row got a new _timestamp"
    assert ts2["3"] == ts1["3"], "a row not in the file got a new _timestamp"
    assert ts2["2"] > ts1["2"], "a changed row kept its old _timestamp"
    assert ts2["4"] > ts1["1"]
    time.sleep(1.1)

    proj.load_rows("t", ["id", "v"], [["1", "a"], ["2", "B"], ["3", "C"]], incremental=True)
    ts3 = ts_of(proj, "t")
    assert proj.rows("t") == [["1", "a"], ["2", "B"], ["3", "C"], ["4", "d"]]
    assert ts3["1"] == ts1["1"], "unchanged twice, yet a new _timestamp"
    assert ts3["2"] == ts2["2"], "unchanged since the second load, yet a new _timestamp"
    assert ts3["3"] > ts2["3"], "changed in the third load, yet the old _timestamp"
    assert ts3["4"] == ts2["4"]


def test_typed_table_timestamp_moves_on_every_reimport(proj):
    proj.create_table("t", TYPED_COLS, primary_key=["id"])
    hdr = ["id", "amount", "note"]
    proj.load_rows("t", hdr, [["1", "1.00", "a"], ["2", "2.00", "b"], ["3", "3.00", "c"]])
    ts1 = ts_of(proj, "t")
    time.sleep(1.1)

    proj.load_rows("t", hdr, [["1", "1.00", "a"], ["2", "2.50", "b"]], incremental=True)
    ts2 = ts_of(proj, "t")
    assert ts2["1"] > ts1["1"], "typed table: an unchanged re-imported key must get a new _timestamp"
    assert ts2["2"] > ts1["2"]
    assert ts2["3"] == ts1["3"], "a key not in the file got a new _timestamp"
    time.sleep(1.1)

    proj.load_rows("t", hdr, [["1", "1.00", "a"], ["2", "2.50", "b"], ["3", "3.00", "c"]], incremental=True)
    ts3 = ts_of(proj, "t")
    assert all(ts3[k] > ts2[k] for k in "123"), (ts2, ts3)
    assert proj.rows("t") == [["1", "1.00", "a"], ["2", "2.50", "b"], ["3", "3.00", "c"]]


# -- columns ---------------------------------------------------------------------------------------

def test_string_table_gains_new_columns(proj):
    proj.create_table("t", ["id", "a"], primary_key=["id"])
    proj.load_rows("t", ["id", "a"], [["1", "x"]])
    res = proj.load_rows("t", ["id", "a", "b", "c"], [["2", "y", "B", "C"]], incremental=True)
    assert res["table_rows"] == 2, res
    assert names(proj.table("t")) == ["id", "a", "b", "c"]
    assert all(c["type"] == "VARCHAR" for c in proj.table("t")["columns"])
    assert proj.rows("t") == [["1", "x", None, None], ["2", "y", "B", "C"]]


def test_typed_table_rejects_new_columns(proj):
    proj.create_table("t", TYPED_COLS, primary_key=["id"])
    proj.load_rows("t", ["id", "amount", "note"], [["1", "1.00", "a"]])
    before = proj.snapshot("t")
    f = proj.upload("x.csv", b'id,amount,note,extra\n2,2.00,b,e\n')
    expect_400(proj.import_file_raw("t", {"file_id": f["id"], "incremental": True}), mentions=["extra"])
    proj.assert_unchanged("t", before)


def test_column_mismatch_names_every_missing_and_unexpected_column(proj):
    proj.create_table("typed", [{"name": "id", "type": "INTEGER"}, {"name": "alpha", "type": "VARCHAR"},
                                {"name": "beta", "type": "DATE"}])
    before = proj.snapshot("typed")
    f = proj.upload("m.csv", b'id,gamma,delta\n1,x,y\n')
    err = expect_400(proj.import_file_raw("typed", {"file_id": f["id"]}))
    for col in ("alpha", "beta", "gamma", "delta"):
        assert col in err["message"], f"message does not name {col!r}: {err['message']}"
    assert "id" not in re.findall(r'"(\w+)"', err["message"]), f"the matching column is named: {err['message']}"
    proj.assert_unchanged("typed", before)

    strings = seeded(proj, "strs")
    f = proj.upload("m2.csv", b'id,zeta\n1,x\n')
    err = expect_400(proj.import_file_raw("strs", {"file_id": f["id"]}))
    for col in ("name", "city"):
        assert col in err["message"], f"message does not name missing {col!r}: {err['message']}"
    proj.assert_unchanged("strs", strings)


def test_create_mode_create(proj):
    r = proj.import_file_raw("fresh", {"file_id": proj.upload("a.csv", b'id,v\n1,a\n')["id"]})
    expect_error(r, 404, "not_found")
    res = proj.load_csv("fresh", b'id,v\n1,a\n2,b\n2,b2\n', create_mode="create", dedup_columns=["id"])
    assert res["table_rows"] == 2, res
    t = proj.table("fresh")
    assert names(t) == ["id", "v"] and t["primary_key"] == ["id"], t
    assert all(c["type"] == "VARCHAR" for c in t["columns"])
    assert [r[0] for r in proj.rows("fresh")] == ["1", "2"]
    tables = expect(proj.api.get(f"/projects/p1/buckets/{proj.bucket}/tables"), 200)["items"]
    assert "fresh" in [x["name"] for x in tables]


def test_create_mode_replace(proj):
    proj.create_table("t", TYPED_COLS, primary_key=["id"])
    proj.load_rows("t", ["id", "amount", "note"], [["1", "1.00", "a"]])
    res = proj.load_csv("t", b'x,y\nfoo,bar\n', create_mode="replace")
    assert res["table_rows"] == 1, res
    t = proj.table("t")
    assert names(t) == ["x", "y"], t
    assert t["primary_key"] == []
    assert proj.rows("t") == [["foo", "bar"]]


# -- import from a table ---------------------------------------------------------------------------

def test_import_from_table(proj):
    proj.create_table("src", ["id", "name", "city"])
    proj.load_rows("src", ["id", "name", "city"], [["1", "Ann", "Prague"], ["2", "Bob", "Brno"], ["3", "Cid", "Brno"]])
    proj.create_table("dst", ["id", "name", "city"], primary_key=["id"])
    proj.load_rows("dst", ["id", "name", "city"], [["9", "Old", "Zlin"]])

    src = {"bucket": proj.bucket, "table": "src"}
    res = expect(proj.import_table_raw("dst", {"source": src}), 200)
    assert res["table_rows"] == 3, res
    assert proj.rows("dst") == proj.rows("src")

    # Incremental with a filter: only Brno rows, upserted.
    proj.load_rows("src", ["id", "name", "city"], [["2", "Bobby", "Brno"], ["4", "Dan", "Brno"], ["5", "Eve", "Pilsen"]],
                   incremental=True)
    res = expect(proj.import_table_raw("dst", {
        "source": src, "incremental": True,
        "where_filters": [{"column": "city", "operator": "eq", "values": ["Brno"]}]}), 200)
    got = proj.row_map("dst", "id")
    assert set(got) == {"1", "2", "3", "4"}, got
    assert got["2"]["name"] in ("Bob", "Bobby")  # src holds both (no PK there); either may win
    assert got["4"]["name"] == "Dan"


def test_import_from_table_with_columns_mapping(proj):
    proj.create_table("src", [{"name": "sid", "type": "INTEGER"}, {"name": "label", "type": "VARCHAR"},
                              {"name": "ignored", "type": "VARCHAR"}])
    proj.load_rows("src", ["sid", "label", "ignored"], [["1", "one", "x"], ["2", "two", "y"]])
    proj.create_table("dst", ["id", "name"], primary_key=["id"])
    body = {"source": {"bucket": proj.bucket, "table": "src"},
            "columns_mapping": [{"source": "sid", "destination": "id"}, {"source": "label", "destination": "name"}]}
    res = expect(proj.import_table_raw("dst", body), 200)
    assert res["table_rows"] == 2, res
    assert names(proj.table("dst")) == ["id", "name"]
    assert proj.rows("dst") == [["1", "one"], ["2", "two"]]

    before = proj.snapshot("dst")
    body["columns_mapping"][0]["source"] = "nope"
    expect_400(proj.import_table_raw("dst", body), mentions=["nope"])
    proj.assert_unchanged("dst", before)


def two_import_times(proj, name="src"):
    """A table whose rows 1-3 were imported at least two seconds before rows 4-5 (and just now)."""
    proj.create_table(name, STRING_COLS)
    proj.load_rows(name, STRING_COLS, [["1", "Ann", "Prague"], ["2", "Bob", "Brno"], ["3", "Cid", "Brno"]])
    time.sleep(2.1)
    proj.load_rows(name, STRING_COLS, [["4", "Dan", "Brno"], ["5", "Eve", "Pilsen"]], incremental=True)


def test_import_from_table_seconds_and_limit(proj):
    """Keboola's input mapping: seconds = rows changed in the last N seconds, limit = at most N rows."""
    two_import_times(proj)
    proj.create_table("dst", STRING_COLS)
    src = {"bucket": proj.bucket, "table": "src"}
    # the last second holds only the second import
    expect(proj.import_table_raw("dst", {"source": src, "seconds": 1}), 200)
    assert [r[0] for r in proj.rows("dst")] == ["4", "5"]
    # an hour holds both; with a filter and a limit
    expect(proj.import_table_raw("dst", {"source": src, "seconds": 3600}), 200)
    assert len(proj.rows("dst")) == 5
    expect(proj.import_table_raw("dst", {"source": src, "seconds": 3600, "limit": 2,
                                         "where_filters": [{"column": "city", "operator": "eq",
                                                            "values": ["Brno"]}]}), 200)
    got = proj.rows("dst")
    assert len(got) == 2 and {r[2] for r in got} == {"Brno"}, got
    expect(proj.import_table_raw("dst", {"source": src, "limit": 4}), 200)
    assert len(proj.rows("dst")) == 4

    # bad values change nothing and name the field (both seconds and changed_since: both named)
    before = proj.snapshot("dst")
    expect_400(proj.import_table_raw("dst", {"source": src, "seconds": -5}), mentions=["seconds"])
    expect_400(proj.import_table_raw("dst", {"source": src, "limit": -1}), mentions=["limit"])
    expect_400(proj.import_table_raw("dst", {"source": src, "seconds": 10, "changed_since": "-1 hour"}),
               mentions=["seconds", "changed_since"])
    expect_400(proj.import_table_raw("dst", {"source": src, "seconds": "ten"}), mentions=["seconds"])
    proj.assert_unchanged("dst", before)


def test_workspace_load_seconds(proj):
    two_import_times(proj)
    expect(proj.api.post(f"/projects/{proj.pid}/workspaces", {"id": "w"}), 201)
    load = f"/projects/{proj.pid}/workspaces/w/load"
    src = {"bucket": proj.bucket, "table": "src"}
    assert expect(proj.api.post(load, {"source": src, "destination": "recent", "seconds": 1}), 200)["rows"] == 2
    r = expect(proj.api.post(f"/projects/{proj.pid}/workspaces/w/query",
                             {"sql": "SELECT id FROM recent ORDER BY id"}), 200)
    assert r["rows"] == [["4"], ["5"]], r
    assert expect(proj.api.post(load, {"source": src, "destination": "hour", "seconds": 3600, "limit": 3}),
                  200)["rows"] == 3
    # changed_since (a moment) and changed_until pick the same rows as for an export
    assert expect(proj.api.post(load, {"source": src, "destination": "since", "changed_since": "-1 seconds"}),
                  200)["rows"] == 2
    r = expect(proj.api.post(f"/projects/{proj.pid}/workspaces/w/query",
                             {"sql": "SELECT id FROM since ORDER BY id"}), 200)
    assert r["rows"] == [["4"], ["5"]], r
    assert expect(proj.api.post(load, {"source": src, "destination": "since", "changed_since": "-1 hour",
                                       "changed_until": "-1 seconds"}), 200)["rows"] == 3
    expect_400(proj.api.post(load, {"source": src, "destination": "x", "seconds": -1}), mentions=["seconds"])
    expect_400(proj.api.post(load, {"source": src, "destination": "x", "seconds": 5,
                                    "changed_since": "-1 hour"}), mentions=["seconds", "changed_since"])
    expect_400(proj.api.post(load, {"source": src, "destination": "x", "seconds": 5, "type": "view"}),
               mentions=["seconds"])
    # none of the refused loads made a table
    r = expect(proj.api.post(f"/projects/{proj.pid}/workspaces/w/query",
                             {"sql": "SELECT table_name FROM information_schema.tables ORDER BY 1"}), 200)
    assert r["rows"] == [["hour"], ["recent"], ["since"]], r


def test_import_from_missing_table_is_404(proj):
    before = seeded(proj)
    r = proj.import_table_raw("t", {"source": {"bucket": proj.bucket, "table": "ghost"}})
    expect_error(r, 404, "not_found")
    proj.assert_unchanged("t", before)


# -- bad input: 4xx and nothing changes -------------------------------------------------------------

def bad_import(proj, data, mentions=(), **options):
    before = seeded(proj)
    f = proj.upload("bad.csv", data)
    body = {"file_id": f["id"]}
    body.update(options)
    err = expect_400(proj.import_file_raw("t", body), mentions)
    proj.assert_unchanged("t", before, what=f"a bad import ({data[:60]!r})")
    # Also incrementally.
    body["incremental"] = True
    expect_400(proj.import_file_raw("t", body), mentions)
    proj.assert_unchanged("t", before, what=f"a bad incremental import ({data[:60]!r})")
    return err


def test_unterminated_quote(proj):
    bad_import(proj, b'id,name,city\n4,"open,Prague\n5,x,y\n')


def test_wrong_column_count(proj):
    bad_import(proj, b'id,name,city\n4,a,b\n5,too,many,fields\n')
    f = proj.upload("few.csv", b'id,name,city\n6,only-two\n')
    before = proj.snapshot("t")
    expect_400(proj.import_file_raw("t", {"file_id": f["id"]}))
    proj.assert_unchanged("t", before)


def test_invalid_utf8(proj):
    bad_import(proj, b'id,name,city\n4,caf\xe9,x\n5,\xff\xfe,y\n')


def test_empty_file(proj):
    bad_import(proj, b'')


def test_duplicate_header_column(proj):
    bad_import(proj, b'id,name,name\n4,a,b\n', mentions=["name"])


def test_value_that_does_not_fit_typed_column(proj):
    proj.create_table("typed", TYPED_COLS, primary_key=["id"])
    proj.load_rows("typed", ["id", "amount", "note"], [["1", "1.00", "a"]])
    before = proj.snapshot("typed")
    data = b'id,amount,note\n2,2.00,b\n3,3.00,c\n4,four,d\n5,5.00,e\n'
    for incremental in (False, True):
        r = proj.import_file_raw("typed", {"file_id": proj.upload(f"typed{incremental}.csv", data)["id"],
                                           "incremental": incremental})
        err = expect_400(r, mentions=["amount"])
        msg = err["message"]
        assert re.search(r"\b(row|line)\s*#?\s*(3|4)\b", msg, re.I), f"message does not name the row: {msg}"
        proj.assert_unchanged("typed", before)
    r = proj.import_file_raw("typed", {"file_id": proj.upload("nonint.csv", b'id,amount,note\nx1,1,a\n')["id"]})
    expect_400(r, mentions=["id"])
    proj.assert_unchanged("typed", before)


def test_null_into_not_null_column_is_400(proj):
    proj.create_table("typed", TYPED_COLS, primary_key=["id"])
    proj.load_rows("typed", ["id", "amount", "note"], [["1", "1.00", "a"]])
    before = proj.snapshot("typed")
    r = proj.import_file_raw("typed", {"file_id": proj.upload("n.csv", b'id,amount,note\n,2.00,b\n')["id"],
                                       "incremental": True})
    expect_400(r)
    proj.assert_unchanged("typed", before)


def test_missing_or_unknown_file(proj):
    before = seeded(proj)
    expect_400(proj.import_file_raw("t", {}), mentions=["file_id"])
    expect_400(proj.import_file_raw("t", {"file_id": "f1", "file_key": "a.csv"}))
    expect_error(proj.import_file_raw("t", {"file_id": "0123456789abcdef0123456789abcdef"}), 404, "not_found")
    expect_error(proj.import_file_raw("t", {"file_id": "no-such-file"}), 404, "not_found")
    expect_error(proj.import_file_raw("t", {"file_key": "no/such.csv"}), 404, "not_found")
    proj.assert_unchanged("t", before)


def test_unknown_option_is_400(proj):
    before = seeded(proj)
    f = proj.upload("x.csv", b'id,name,city\n5,a,b\n')
    expect_400(proj.import_file_raw("t", {"file_id": f["id"], "incrementall": True}), mentions=["incrementall"])
    expect_400(proj.import_file_raw("t", {"file_id": f["id"], "dedup": "sometimes"}), mentions=["dedup"])
    expect_400(proj.import_file_raw("t", {"file_id": f["id"], "format": "xlsx"}), mentions=["format"])
    expect_400(proj.import_file_raw("t", {"file_id": f["id"], "csv": {"delimiter": ";;"}}), mentions=["delimiter"])
    proj.assert_unchanged("t", before)


def test_file_keys_leaving_the_project(proj):
    before = seeded(proj)
    proj.upload("ok.csv", b'id,name,city\n5,a,b\n')
    for key in ("../ok.csv", "a/../../ok.csv", "../project_p1/objects/ok.csv", "/etc/passwd",
                "/" + str(proj.objects_dir / "ok.csv"), "./ok.csv", "a//b.csv"):
        expect_400(proj.import_file_raw("t", {"file_key": key}))
        expect_400(proj.import_file_raw("t", {"file_key": key if key.endswith("/") else key + "/"}))
    proj.assert_unchanged("t", before)
    for key in ("../x.csv", "/abs.csv", "a/../b.csv"):
        expect_400(proj.upload_raw(key, b"id\n1\n"))


def test_another_projects_file_is_not_found(server, admin, proj):
    p2 = Proj(server, admin, "p2")
    secret = p2.upload("secret.csv", b'id,name,city\n666,Mallory,Nowhere\n')
    before = seeded(proj)
    expect_error(proj.import_file_raw("t", {"file_id": secret["id"]}), 404, "not_found")
    expect_error(proj.import_file_raw("t", {"file_key": "secret.csv"}), 404, "not_found")
    # A manifest naming the other project's key: the key is looked up in this project only.
    m = proj.upload_manifest("m.manifest", ["secret.csv"])
    expect_4xx(proj.import_file_raw("t", {"file_id": m["id"], "csv": {"columns": STRING_COLS}}))
    m2 = proj.upload_manifest("m2.manifest", ["s3://other-bucket/secret.csv"])
    expect_4xx(proj.import_file_raw("t", {"file_id": m2["id"], "csv": {"columns": STRING_COLS}}))
    proj.assert_unchanged("t", before)
    # The other project's key cannot download it either.
    r = p2.api.get(f"/projects/p1/files/{secret['id']}/download")
    assert r.status_code in (403, 404), describe(r)


def test_manifest_entries_leaving_the_project(server, admin, proj):
    p2 = Proj(server, admin, "p2")
    p2.upload("secret.csv", b'666,Mallory,Nowhere\n')
    before = seeded(proj)
    proj.upload("ok.part", b'5,a,b\n')
    bad_entries = ["../project_p2/objects/secret.csv", "../../project_p2/objects/secret.csv",
                   "/" + str(p2.objects_dir / "secret.csv").lstrip("/"), "s3://b/../project_p2/objects/secret.csv",
                   "file:///etc/passwd", "ok.part/../../x"]
    for i, entry in enumerate(bad_entries):
        body = json.dumps({"entries": [{"url": "ok.part"}, {"url": entry}]}).encode()
        r = proj.upload_raw(f"bad{i}.manifest", body, sliced=True)
        if r.status_code == 201:
            # Accepted as a file: the import must refuse it.
            expect_4xx(proj.import_file_raw("t", {"file_id": r.json()["id"], "csv": {"columns": STRING_COLS}}))
        else:
            expect_400(r)
    proj.assert_unchanged("t", before)

    # A valid manifest whose stored bytes are then changed on disk to point outside: the import
    # checks the entries again.
    m = proj.upload_manifest("tamper.manifest", ["ok.part"])
    path = proj.objects_dir / "tamper.manifest"
    assert path.is_file(), f"the manifest is not stored at {path}"
    path.write_bytes(json.dumps({"entries": [{"url": "../../project_p2/objects/secret.csv"}]}).encode())
    expect_4xx(proj.import_file_raw("t", {"file_id": m["id"], "csv": {"columns": STRING_COLS}}))
    proj.assert_unchanged("t", before)
    assert "Mallory" not in json.dumps(proj.rows("t"))


def test_symlinks_out_of_the_files_area(proj, tmp_path):
    before = seeded(proj)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "leak.csv").write_bytes(b'id,name,city\n666,Mallory,Nowhere\n')

    # A file whose stored object is replaced by a symlink pointing outside the area.
    f = proj.upload("link.csv", b'id,name,city\n5,a,b\n')
    obj = proj.objects_dir / "link.csv"
    assert obj.is_file(), f"the file is not stored at {obj}"
    obj.unlink()
    os.symlink(outside / "leak.csv", obj)
    expect_400(proj.import_file_raw("t", {"file_id": f["id"]}))
    expect_400(proj.import_file_raw("t", {"file_key": "link.csv"}))
    proj.assert_unchanged("t", before)

    # A symlink created directly in the area (no upload at all), imported by key.
    os.symlink(outside / "leak.csv", proj.objects_dir / "planted.csv")
    expect_4xx(proj.import_file_raw("t", {"file_key": "planted.csv"}))

    # A folder replaced by a symlink to an outside folder.
    proj.upload("linkdir/a.csv", b'id,name,city\n6,a,b\n')
    (outside / "a.csv").write_bytes(b'id,name,city\n667,Mallory,Nowhere\n')
    d = proj.objects_dir / "linkdir"
    (d / "a.csv").unlink()
    d.rmdir()
    os.symlink(outside, d)
    expect_400(proj.import_file_raw("t", {"file_key": "linkdir/"}))
    expect_400(proj.import_file_raw("t", {"file_key": "linkdir/a.csv"}))

    # A manifest whose entry goes through the symlinked folder.
    m = proj.upload_manifest("via-link.manifest", ["linkdir/a.csv"])
    expect_4xx(proj.import_file_raw("t", {"file_id": m["id"]}))
    proj.assert_unchanged("t", before)
    assert "Mallory" not in json.dumps(proj.rows("t"))


def test_error_messages_do_not_reveal_server_paths(proj):
    """A client learns what is wrong with its file, not where the server keeps it."""
    seeded(proj)
    data_dir = str(proj.server.data_dir.resolve())
    for data in (b'id,name,city\n4,"open,Prague\n', b'id,name,city\n4,a,b,c\n', b'id,name,city\n4,caf\xe9,x\n'):
        f = proj.upload("leak-check.csv", data, overwrite=True)
        err = expect_400(proj.import_file_raw("t", {"file_id": f["id"]}))
        assert data_dir not in err["message"] and "/files/project_" not in err["message"], \
            f"the message shows a server path: {err['message']}"


def test_import_into_missing_bucket_or_other_project(server, admin, proj):
    f = proj.upload("x.csv", b'id,name,city\n5,a,b\n')
    expect_error(proj.import_file_raw("t", {"file_id": f["id"]}, bucket="in.c-ghost"), 404, "not_found")
    expect_error(proj.import_file_raw("t", {"file_id": f["id"], "create_mode": "create"}, bucket="in.c-ghost"),
                 404, "not_found")
    before = seeded(proj)
    p2 = Proj(server, admin, "p2")
    r = p2.api.post(proj.tpath("t") + "/import/file", {"file_id": f["id"]})
    expect_error(r, 403, r.json().get("error", {}).get("code") or "forbidden")
    for method, suffix, body in (("GET", "/preview", None), ("POST", "/export", {}), ("POST", "/profile", None),
                                 ("DELETE", "/rows", {}), ("POST", "/import/table",
                                                           {"source": {"bucket": proj.bucket, "table": "t"}})):
        r = p2.api.request(method, proj.tpath("t") + suffix, json_body=body)
        assert r.status_code == 403, describe(r)
    proj.assert_unchanged("t", before)
