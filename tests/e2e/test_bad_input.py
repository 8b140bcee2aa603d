"""Bad-input catalogue over REST: every case gets a clear 4xx whose message names the problem, and
changes nothing.

Each case is one request (after an optional setup step, e.g. uploading the broken CSV it imports).
A snapshot of the project is taken after the setup and again after the request: buckets, tables
(columns, primary key, exact rows), a content checksum of every table (full CSV export, the export's
file deleted again), and the Storage File list. The two must be equal. The gRPC/bridge half of the
catalogue is tests/grpc/test_bad_input_driver.py.
"""

import hashlib
import json
import re

import pytest

from data_helpers import Proj, csv_text, expect_4xx
from e2e_lib import describe, expect, list_items

PID = "bad"
TYPED = "typed"     # id INTEGER PK, name VARCHAR, amount DECIMAL(10,2), at TIMESTAMP, ok BOOLEAN
STRS = "strs"       # a, b (a string table)
TYPED_HDR = ["id", "name", "amount", "at", "ok"]
TYPED_ROWS = [["1", "Ann", "10.50", "2026-01-02 03:04:05", "true"],
              ["2", "Bob", "-3.00", "2026-02-03 04:05:06", "false"],
              ["3", "Cid", "0.00", "", ""]]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One server and project for the whole catalogue (every case leaves it unchanged, or fails)."""
    from e2e_lib import Server

    server = Server(tmp_path_factory.mktemp("bad-input")).start()
    p = Proj(server, server.api(), PID)
    p.create_table(TYPED, [{"name": "id", "type": "INTEGER", "nullable": False}, {"name": "name"},
                           {"name": "amount", "type": "DECIMAL(10,2)"}, {"name": "at", "type": "TIMESTAMP"},
                           {"name": "ok", "type": "BOOLEAN"}], primary_key=["id"])
    p.load_rows(TYPED, TYPED_HDR, TYPED_ROWS)
    p.create_table(STRS, ["a", "b"])
    p.load_rows(STRS, ["a", "b"], [["x", "1"], ["y", "2"]])
    yield p
    rc = server.stop(check=False)
    assert rc == 0, f"exit code {rc} after SIGTERM:\n{server.log_tail()}"


def snapshot(p):
    files = sorted((f["id"], f["name"], f["size"], f["sha256"]) for f in p.files())
    buckets = sorted((b["id"], b.get("description")) for b in list_items(p.api, f"/projects/{PID}/buckets"))
    tables = {}
    for b, _ in buckets:
        for t in list_items(p.api, f"/projects/{PID}/buckets/{b}/tables"):
            info = expect(p.api.get(f"/projects/{PID}/buckets/{b}/tables/{t['name']}"), 200)
            res, data = p.export_bytes(t["name"], {"columns": [c["name"] for c in info["columns"]] + ["_timestamp"]},
                                       bucket=b)
            expect(p.api.delete(f"/projects/{PID}/files/{res['file_id']}"), 204)
            lines = sorted(data.split(b"\n"))
            tables[(b, t["name"])] = (info["columns"], info["primary_key"], info["rows"],
                                      hashlib.sha256(b"\n".join(lines)).hexdigest())
    return {"files": files, "buckets": buckets, "tables": tables}


def upload_key(p, key, data):
    """Setup step: stores data under key (replacing an earlier one); returns the file id."""
    return p.upload(key, data, overwrite=True)["id"]


T = f"/projects/{PID}/buckets/in.c-main/tables"
TY = f"{T}/{TYPED}"
ST = f"{T}/{STRS}"
BIG = "x" * (10 * 1024 * 1024)


def raw(data):
    return {"raw": data}


def csv_import(content, table=STRS, **options):
    """A case that uploads content (bytes) as a CSV and imports it into table."""
    def setup(p):
        body = {"file_id": upload_key(p, "bad/input.csv", content)}
        body.update(options)
        return body
    return {"method": "POST", "path": f"{T}/{table}/import/file", "setup": setup}


def filt(op, values, data_type="INTEGER", column="id"):
    f = {"column": column, "operator": op, "values": values}
    if data_type:
        f["data_type"] = data_type
    return {"where_filters": [f]}


# DuckDB's and PostgreSQL's own error labels: a message may quote them only after saying, in duckstore's
# words, what was wrong with which field.
ENGINE_WORDING = re.compile(r"(?:Conversion|Binder|Parser|Catalog|Constraint|Invalid Input|Out of Range|Mismatch Type|"
                            r"Invalid Type|Not implemented|Dependency|Transaction|IO|Serialization) Error|"
                            r"PostgreSQL:|ERROR:", re.I)


# (id, case, words the message must contain)
CASES = [
    # -- malformed JSON --------------------------------------------------------------------------
    ("json-truncated", {"method": "POST", "path": T, **raw(b'{"name": "t", "columns": [')}, ["json"]),
    ("json-trailing-garbage", {"method": "POST", "path": T, **raw(b'{"name": "t", "columns": [{"name": "a"}]} x')},
     ["json"]),
    ("json-top-level-array", {"method": "POST", "path": T, **raw(b'[{"name": "t"}]')}, ["object"]),
    ("json-top-level-string", {"method": "POST", "path": f"/projects/{PID}/buckets", **raw(b'"in.c-x"')}, ["expected"]),
    ("json-empty-body", {"method": "POST", "path": T, **raw(b"")}, ["body"]),
    ("json-invalid-utf8", {"method": "POST", "path": T, **raw(b'{"name": "t\xff\xfe", "columns": [{"name": "a"}]}')},
     ["byte 0xff"]),
    ("json-nul-escape-in-name", {"method": "POST", "path": T, "json": {"name": "t\u0000x", "columns": [{"name": "a"}]}},
     ["\\u0000"]),
    ("json-lone-surrogate", {"method": "POST", "path": T, **raw(b'{"name": "t\\ud800", "columns": [{"name": "a"}]}')},
     ["json"]),
    ("json-unknown-field", {"method": "POST", "path": T, "json": {"name": "t", "columns": [{"name": "a"}], "colums": 1}},
     ["colums"]),
    ("json-nesting-bomb", {"method": "POST", "path": T, **raw(b'{"name": "t", "columns": ' + b"[" * 100000 + b"]" * 100000 + b"}")},
     []),
    # -- wrong types -----------------------------------------------------------------------------
    ("type-name-number", {"method": "POST", "path": T, "json": {"name": 5, "columns": [{"name": "a"}]}}, ["name"]),
    ("type-columns-object", {"method": "POST", "path": T, "json": {"name": "t", "columns": {"name": "a"}}}, ["columns"]),
    ("type-column-entry-number", {"method": "POST", "path": T, "json": {"name": "t", "columns": [5]}}, ["columns"]),
    ("type-nullable-string", {"method": "POST", "path": T,
                              "json": {"name": "t", "columns": [{"name": "a", "nullable": "no"}]}}, ["nullable"]),
    ("type-pk-string", {"method": "POST", "path": T, "json": {"name": "t", "columns": [{"name": "a"}], "primary_key": "a"}},
     ["primary_key"]),
    ("type-incremental-string", {"method": "POST", "path": f"{ST}/import/file", "json": {"file_id": "x", "incremental": "yes"}},
     ["incremental"]),
    ("type-limit-string", {"method": "POST", "path": f"{TY}/export", "json": {"limit": "10"}}, ["limit"]),
    ("type-values-not-array", {"method": "DELETE", "path": f"{TY}/rows",
                               "json": {"where_filters": [{"column": "id", "operator": "eq", "values": True}]}}, ["values"]),
    ("type-value-object", {"method": "DELETE", "path": f"{TY}/rows",
                           "json": {"where_filters": [{"column": "id", "operator": "eq", "values": [{"v": 1}]}]}}, ["values"]),
    ("type-bucket-stage-bool", {"method": "POST", "path": f"/projects/{PID}/buckets", "json": {"stage": True, "name": "x"}},
     ["stage"]),
    # -- huge and odd numbers ------------------------------------------------------------------
    ("num-limit-negative", {"method": "POST", "path": f"{TY}/export", "json": {"limit": -1}}, ["limit"]),
    ("num-limit-fraction", {"method": "POST", "path": f"{TY}/export", "json": {"limit": 1.5}}, ["limit"]),
    ("num-limit-huge", {"method": "POST", "path": f"{TY}/export", **raw(b'{"limit": 123456789012345678901234567890}')},
     ["limit", "out of range"]),
    ("num-limit-1e400", {"method": "POST", "path": f"{TY}/export", **raw(b'{"limit": 1e400}')}, []),
    ("num-preview-limit-huge", {"method": "GET", "path": f"{TY}/preview", "params": {"limit": "99999999999999999999"}},
     ["limit"]),
    ("num-preview-limit-text", {"method": "GET", "path": f"{TY}/preview", "params": {"limit": "ten"}}, ["limit"]),
    # -- empty strings and reserved or overlong names ------------------------------------------
    ("name-empty-table", {"method": "POST", "path": T, "json": {"name": "", "columns": [{"name": "a"}]}}, ["name"]),
    ("name-empty-column", {"method": "POST", "path": T, "json": {"name": "t", "columns": [{"name": ""}]}}, ["name"]),
    ("name-no-columns", {"method": "POST", "path": T, "json": {"name": "t", "columns": []}}, ["column"]),
    ("name-timestamp-column", {"method": "POST", "path": T, "json": {"name": "t", "columns": [{"name": "_timestamp"}]}},
     ["_timestamp"]),
    ("name-ds-table", {"method": "POST", "path": T, "json": {"name": "_ds_meta", "columns": [{"name": "a"}]}}, ["_ds"]),
    ("name-rowid-column", {"method": "POST", "path": T, "json": {"name": "t", "columns": [{"name": "ROWID"}]}},
     ["ROWID", "reserved"]),
    ("name-bucket-space", {"method": "POST", "path": f"/projects/{PID}/buckets", "json": {"stage": "in", "name": "a b"}},
     ["name"]),
    ("name-bucket-bad-stage", {"method": "POST", "path": f"/projects/{PID}/buckets", "json": {"stage": "sys", "name": "x"}},
     ["stage"]),
    ("name-too-long-table", {"method": "POST", "path": T, "json": {"name": "t" * 65, "columns": [{"name": "a"}]}},
     ["name"]),
    ("name-too-long-column", {"method": "POST", "path": T, "json": {"name": "t", "columns": [{"name": "c" * 65}]}},
     ["name"]),
    ("name-10mb-table", {"method": "POST", "path": T, "json": {"name": BIG, "columns": [{"name": "a"}]}}, ["name"]),
    ("name-10mb-description", {"method": "POST", "path": f"/projects/{PID}/buckets",
                               "json": {"stage": "in", "name": "desc", "description": BIG}}, ["description"]),
    ("name-quote-in-table", {"method": "POST", "path": T, "json": {"name": 't"; DROP TABLE x; --', "columns": [{"name": "a"}]}},
     ["name"]),
    ("name-duplicate-columns", {"method": "POST", "path": T, "json": {"name": "t", "columns": [{"name": "a"}, {"name": "a"}]}},
     ["a"]),
    ("name-unknown-type", {"method": "POST", "path": T, "json": {"name": "t", "columns": [{"name": "a", "type": "BLOBBY"}]}},
     ["BLOBBY"]),
    ("name-type-injection", {"method": "POST", "path": T,
                             "json": {"name": "t", "columns": [{"name": "a", "type": "INTEGER); DROP TABLE x; --"}]}},
     ["type"]),
    ("name-pk-unknown-column", {"method": "POST", "path": T,
                                "json": {"name": "t", "columns": [{"name": "a"}], "primary_key": ["b"]}}, ["b"]),
    ("name-existing-table", {"method": "POST", "path": T, "json": {"name": TYPED, "columns": [{"name": "a"}]}}, [TYPED]),
    ("name-add-column-timestamp", {"method": "POST", "path": f"{ST}/columns", "json": {"name": "_timestamp"}},
     ["_timestamp"]),
    ("name-drop-pk-column", {"method": "DELETE", "path": f"{TY}/columns/id"}, ["id"]),
    # -- every filter operator with a value of the wrong type -----------------------------------
    *[(f"filter-{op}-text-for-integer", {"method": "DELETE", "path": f"{TY}/rows", "json": filt(op, ["abc"])}, ["abc"])
      for op in ("eq", "ne", "gt", "ge", "lt", "le")],
    ("filter-unknown-operator", {"method": "DELETE", "path": f"{TY}/rows", "json": filt("like", ["1"])}, ["operator"]),
    ("filter-unknown-column", {"method": "DELETE", "path": f"{TY}/rows", "json": filt("eq", ["1"], column="nope")},
     ["nope"]),
    ("filter-unknown-data-type", {"method": "DELETE", "path": f"{TY}/rows", "json": filt("eq", ["1"], data_type="WIBBLE")},
     ["WIBBLE"]),
    ("filter-gt-two-values", {"method": "DELETE", "path": f"{TY}/rows", "json": filt("gt", ["1", "2"])}, ["one value"]),
    ("filter-empty-values", {"method": "DELETE", "path": f"{TY}/rows", "json": filt("eq", [])}, ["values"]),
    ("filter-decimal-text", {"method": "DELETE", "path": f"{TY}/rows",
                             "json": filt("lt", ["ten"], data_type="DECIMAL", column="amount")}, ["ten"]),
    ("filter-timestamp-text", {"method": "DELETE", "path": f"{TY}/rows",
                               "json": filt("ge", ["yesterday"], data_type="TIMESTAMP", column="at")}, ["yesterday"]),
    ("filter-changed-since-garbage", {"method": "DELETE", "path": f"{TY}/rows", "json": {"changed_since": "soon"}},
     ["changed_since"]),
    # -- points in time: the field and the accepted forms are named ------------------------------
    *[(f"time-{where}-{field}-{v.replace(' ', '-')}", {"method": method, "path": path, **(
        {"params": {field: v}} if method == "GET" else {"json": {field: v}})}, [field, "unix seconds", "-15 minutes"])
      for where, method, path in (("delete", "DELETE", f"{TY}/rows"), ("export", "POST", f"{TY}/export"),
                                  ("preview", "GET", f"{TY}/preview"))
      for field, v in (("changed_since", "-1 month"), ("changed_until", "-15 minutez"))],
    ("time-import-table-source-changed-since", {"method": "POST", "path": f"{ST}/import/table", "json": {
        "source": {"bucket": "in.c-main", "table": TYPED}, "changed_since": "last week"}}, ["changed_since"]),
    # -- values that do not convert to the compared type: named, never DuckDB's "Conversion Error" -
    *[(f"value-{col}-{dt or 'as-stored'}", {"method": "DELETE", "path": f"{TY}/rows",
                                           "json": filt("eq", [v], data_type=dt, column=col)}, [col, v])
      for col, dt, v in (("at", "TIMESTAMP", "tomorrow"), ("at", None, "tomorrow"), ("ok", None, "perhaps"),
                         ("ok", "BOOLEAN", "perhaps"), ("at", "DATE", "2026-02-30"), ("_timestamp", None, "x"))],
    ("value-preview-where-timestamp", {"method": "GET", "path": f"{TY}/preview", "params": {"where": "at:gt:noon"}},
     ["at", "noon"]),
    ("value-export-where-boolean", {"method": "POST", "path": f"{TY}/export", "json": filt("ne", ["perhaps"], None, "ok")},
     ["ok", "perhaps"]),
    ("default-create-table", {"method": "POST", "path": T, "json": {"name": "t", "columns": [
        {"name": "a", "type": "INTEGER", "default": "abc"}]}}, ["default", "abc", "INTEGER"]),
    ("default-create-table-date", {"method": "POST", "path": T, "json": {"name": "t", "columns": [
        {"name": "a", "type": "DATE", "default": "2026-13-01"}]}}, ["default", "2026-13-01"]),
    ("default-add-column", {"method": "POST", "path": f"{TY}/columns", "json": {"name": "c", "type": "INTEGER",
                                                                                "default": "abc"}},
     ["default", "abc"]),
    ("default-add-column-boolean", {"method": "POST", "path": f"{TY}/columns",
                                    "json": {"name": "c", "type": "BOOLEAN", "default": "perhaps"}}, ["perhaps"]),
    ("default-alter-column", {"method": "PUT", "path": f"{TY}/columns/at", "json": {"default": "later"}},
     ["default", "later"]),
    ("type-change-values-do-not-convert", {"method": "PUT", "path": f"{ST}/columns/a", "json": {"type": "INTEGER"}},
     ["column \"a\"", "INTEGER"]),
    ("parquet-not-parquet", csv_import(b"a,b\n1,2\n", format="parquet"), ["parquet"]),
    ("filter-preview-where-text", {"method": "GET", "path": f"{TY}/preview", "params": {"where": "id:gt:abc"}}, ["abc"]),
    ("filter-export-where-text", {"method": "POST", "path": f"{TY}/export", "json": filt("le", ["abc"])}, ["abc"]),
    # -- CSV files -------------------------------------------------------------------------------
    ("csv-ragged-long-row", csv_import(b"a,b\n1,2\n3,4,5\n6,7\n", incremental=True), ["line"]),
    ("csv-ragged-short-row", csv_import(b"a,b\n1,2\n3\n6,7\n", incremental=True), ["line"]),
    ("csv-bom-in-header", csv_import(b"\xef\xbb\xbfa,b\n1,2\n", table=TYPED, incremental=True), ["a"]),
    ("csv-bom-mid-file-typed", csv_import(b"id,name,amount,at,ok\n9,x,\xef\xbb\xbf1.00,,\n", table=TYPED,
                                          incremental=True), ["amount"]),
    ("csv-mixed-line-endings-ragged", csv_import(b"a,b\r\n1,2\n3,4,5\r\n", incremental=True), ["line"]),
    ("csv-unterminated-quote", csv_import(b'a,b\n"1,2\n3,4\n', incremental=True), []),
    ("csv-invalid-utf8", csv_import(b"a,b\n\xff\xfe,2\n", incremental=True), ["utf-8"]),
    ("csv-nul-byte-in-integer", csv_import(b"id,name,amount,at,ok\n1\x002,x,1,,\n", table=TYPED, incremental=True),
     ["id"]),
    ("csv-10mb-field-in-integer", csv_import(b"id,name,amount,at,ok\n" + b"9" * (10 * 1024 * 1024) + b",x,1,,\n",
                                             table=TYPED, incremental=True), ["id"]),
    ("csv-10mb-header-name", csv_import(b"a," + BIG.encode() + b"\n1,2\n", incremental=True), ["header"]),
    ("csv-text-in-integer", csv_import(csv_text([["10", "x", "1", "", ""], ["eleven", "y", "1", "", ""]],
                                                header=TYPED_HDR), table=TYPED, incremental=True), ["eleven"]),
    ("csv-huge-integer", csv_import(csv_text([["99999999999999999999", "x", "1", "", ""]], header=TYPED_HDR),
                                    table=TYPED, incremental=True), ["99999999999999999999"]),
    ("csv-decimal-overflow", csv_import(csv_text([["12", "x", "123456789012.5", "", ""]], header=TYPED_HDR),
                                        table=TYPED, incremental=True), ["amount"]),
    ("csv-null-primary-key", csv_import(csv_text([["", "x", "1", "", ""]], header=TYPED_HDR), table=TYPED,
                                        incremental=True), ["id"]),
    ("csv-header-only-unknown-column", csv_import(b"a,b,c\n1,2,3\n", table=TYPED, incremental=True), ["c"]),
    ("csv-bad-delimiter-option", csv_import(b"a,b\n1,2\n", csv={"delimiter": ",,"}), ["delimiter"]),
    ("csv-empty-delimiter-option", csv_import(b"a,b\n1,2\n", csv={"delimiter": ""}), ["delimiter"]),
    ("csv-nul-delimiter-option", csv_import(b"a,b\n1,2\n", csv={"delimiter": "\u0000"}), ["\\u0000"]),
    ("csv-gzip-not-gzip", csv_import(b"a,b\n1,2\n", csv={"compression": "gzip"}), ["gzip"]),
    ("csv-unknown-format", csv_import(b"a,b\n1,2\n", format="xlsx"), ["format"]),
    # -- files -----------------------------------------------------------------------------------
    ("file-key-empty", {"method": "POST", "path": f"/projects/{PID}/files", "params": {"name": ""}, **raw(b"x")}, ["key"]),
    ("file-key-dotdot", {"method": "POST", "path": f"/projects/{PID}/files", "params": {"name": "a/../../b"}, **raw(b"x")},
     ["key"]),
    ("file-key-nul", {"method": "POST", "path": f"/projects/{PID}/files", "params": {"name": "a\u0000b"}, **raw(b"x")},
     ["NUL"]),
    ("file-key-invalid-utf8", {"method": "POST", "path": f"/projects/{PID}/files?name=a%FF%FEb", **raw(b"x")}, ["key"]),
    # -- NUL bytes in the URL: C strings would cut the name there ("strs%00x" naming "strs")
    ("url-nul-in-table-drop", {"method": "DELETE", "path": f"{ST}%00x"}, ["NUL"]),
    ("url-nul-in-rows-delete", {"method": "DELETE", "path": f"{ST}%00x/rows", "json": {}}, ["NUL"]),
    ("url-nul-in-project", {"method": "DELETE", "path": f"/projects/{PID}%00x/buckets/in.c-main/tables/{STRS}"}, ["NUL"]),
    ("url-nul-in-query", {"method": "GET", "path": f"{TY}/preview?columns=id%00,name"}, ["NUL"]),
    ("file-manifest-not-json", {"method": "POST", "path": f"/projects/{PID}/files",
                                "params": {"name": "m.json", "sliced": "true"}, **raw(b"{not json")}, ["manifest"]),
]


@pytest.mark.parametrize("case,mentions", [pytest.param(c, m, id=i) for i, c, m in CASES])
def test_bad_input_is_a_clear_4xx_and_changes_nothing(world, case, mentions):
    p = world
    body = case["setup"](p) if "setup" in case else case.get("json")
    before = snapshot(p)
    if "raw" in case:
        r = p.api.request(case["method"], case["path"], data=case["raw"], params=case.get("params"),
                          headers={"Content-Type": "application/json" if "files" not in case["path"]
                                   else "application/octet-stream"})
    elif body is not None:
        r = p.api.request(case["method"], case["path"], data=json.dumps(body), params=case.get("params"),
                          headers={"Content-Type": "application/json"})
    else:
        r = p.api.request(case["method"], case["path"], params=case.get("params"))
    assert 400 <= r.status_code < 500, f"expected a 4xx:\n{describe(r)}"
    err = expect_4xx(r, mentions)
    m = ENGINE_WORDING.search(err["message"])
    assert m is None or m.start() > 0, f"the message starts with the engine's wording:\n{describe(r)}"
    expect(p.server.api().get("/health"), 200)
    assert snapshot(p) == before, f"the failed request changed the project:\n{describe(r)}"


def test_catalogue_is_big_enough():
    assert len(CASES) >= 50, len(CASES)
