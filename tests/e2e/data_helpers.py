"""Helpers for the table-data end-to-end tests (import, export, preview, profile, delete rows, schema).

    Proj            one project on a running server: its key-bound Api, id, default bucket, and
                    helpers for Storage Files (upload/download) and table data (import/export/preview)
    proj            fixture: Proj "p1" with bucket in.c-main on a fresh server
    csv_text(rows)  RFC 4180 text of rows (every value enclosed, LF), as bytes
    parse_csv(b)    bytes -> list of rows (lists of str)

Everything here talks to the server through its public REST API only, except where a test needs
to put something on disk itself (symlinks in the project's files area): Proj.objects_dir.
"""

import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import uuid

import pytest

from e2e_lib import create_bucket, describe, expect, expect_error, project_api

BUCKET = "in.c-main"


# -- CSV -------------------------------------------------------------------------------------------

def csv_text(rows, header=None, delimiter=",", quote='"', newline="\n"):
    """Rows (lists of values) as CSV bytes, every value enclosed, quotes doubled."""
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, quotechar=quote, doublequote=True, quoting=csv.QUOTE_ALL,
                   lineterminator=newline)
    if header is not None:
        w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def parse_csv(data):
    """CSV bytes (RFC 4180, LF or CRLF) -> list of rows."""
    text = data.decode("utf-8")
    return [row for row in csv.reader(io.StringIO(text, newline=""), strict=True)]


def canonical_digest(rows):
    """sha256 of the rows sorted (values joined by US, rows by RS): equal for equal multisets of rows.

    Values must be strings without the ASCII separators \x1e and \x1f (test data never has them).
    """
    lines = sorted("\x1f".join(r) for r in rows)
    return hashlib.sha256("\x1e".join(lines).encode("utf-8")).hexdigest()


def parse_ts(value):
    """A _timestamp value as previewed ("2026-01-02 03:04:05.123456") -> naive UTC datetime."""
    assert value is not None, "_timestamp is NULL"
    v = value.replace("T", " ").rstrip("Z")
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            return dt.datetime.strptime(v, fmt)
        except ValueError:
            pass
    raise AssertionError(f"_timestamp {value!r} is not a timestamp")


def utcnow():
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


# -- a project -------------------------------------------------------------------------------------

class Proj:
    def __init__(self, server, admin, pid, bucket=BUCKET):
        self.server = server
        self.admin = admin
        self.pid = pid
        body, self.api = project_api(admin, pid)
        self.key = body["api_key"]
        self.bucket = bucket
        stage, name = bucket.split(".", 1)
        create_bucket(self.api, pid, name, stage=stage)

    # paths
    def tpath(self, table, bucket=None):
        return f"/projects/{self.pid}/buckets/{bucket or self.bucket}/tables/{table}"

    @property
    def objects_dir(self):
        """Where the server keeps this project's Storage Files by key."""
        return self.server.data_dir / "files" / f"project_{self.pid}" / "objects"

    # tables
    def create_table(self, name, columns, primary_key=None, bucket=None):
        cols = [c if isinstance(c, dict) else {"name": c} for c in columns]
        body = {"name": name, "columns": cols}
        if primary_key is not None:
            body["primary_key"] = primary_key
        return expect(self.api.post(f"/projects/{self.pid}/buckets/{bucket or self.bucket}/tables", body), 201)

    def table(self, name, bucket=None):
        return expect(self.api.get(self.tpath(name, bucket)), 200)

    # files
    def upload_raw(self, name, data, **params):
        q = {"name": name}
        q.update({k: ("true" if v is True else "false" if v is False else v) for k, v in params.items()})
        return self.api.request("POST", f"/projects/{self.pid}/files", data=data, params=q,
                                headers={"Content-Type": "application/octet-stream"})

    def upload(self, name, data, **params):
        """Uploads bytes under key name; returns the file's JSON (201 required)."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        f = expect(self.upload_raw(name, data, **params), 201)
        assert isinstance(f.get("id"), str) and f["id"], f"upload without an id: {f}"
        return f

    def upload_manifest(self, name, keys):
        body = json.dumps({"entries": [{"url": k} for k in keys]}).encode()
        return self.upload(name, body, sliced=True)

    def download(self, file_id):
        r = self.api.get(f"/projects/{self.pid}/files/{file_id}/download")
        assert r.status_code == 200, f"download failed:\n{describe(r)}"
        return r.content

    def files(self, prefix=None):
        params = {"prefix": prefix} if prefix else None
        return expect(self.api.get(f"/projects/{self.pid}/files", params=params), 200)["items"]

    def file_by_key(self, key):
        found = [f for f in self.files() if f["name"] == key]
        assert len(found) == 1, f"file {key!r} not listed (or listed twice): {[f['name'] for f in self.files()]}"
        return found[0]

    # data
    def import_file_raw(self, table, body, bucket=None):
        return self.api.post(self.tpath(table, bucket) + "/import/file", body)

    def import_file(self, table, body, bucket=None):
        return expect(self.import_file_raw(table, body, bucket), 200)

    def load_csv(self, table, data, key=None, bucket=None, **options):
        """Uploads data (bytes/str) and imports it; returns the import result (200 required)."""
        f = self.upload(key or f"in/{uuid.uuid4().hex}.csv", data)
        body = {"file_id": f["id"]}
        body.update(options)
        return self.import_file(table, body, bucket)

    def load_rows(self, table, header, rows, **options):
        return self.load_csv(table, csv_text(rows, header=header), **options)

    def import_table_raw(self, table, body, bucket=None):
        return self.api.post(self.tpath(table, bucket) + "/import/table", body)

    def export_raw(self, table, body=None, bucket=None, unique_name=True):
        body = dict(body or {})
        if unique_name and "file_name" not in body:
            # A unique key per export, so that tests of filters never depend on the default
            # file naming (which has its own test).
            ext = "parquet" if body.get("format") == "parquet" else "csv.gz" if body.get("gzip") else "csv"
            body["file_name"] = f"e2e-exports/{uuid.uuid4().hex}.{ext}"
        return self.api.post(self.tpath(table, bucket) + "/export", body)

    def export(self, table, body=None, bucket=None, unique_name=True):
        res = expect(self.export_raw(table, body, bucket, unique_name), 201)
        assert isinstance(res.get("file_id"), str) and res["file_id"], f"export without file_id: {res}"
        return res

    def export_bytes(self, table, body=None, bucket=None):
        """Exports (one file, not sliced) and downloads it; returns (result, bytes)."""
        res = self.export(table, body, bucket)
        assert res.get("sliced") in (False, None), f"unexpected sliced export: {res}"
        return res, self.download(res["file_id"])

    def export_rows(self, table, body=None, bucket=None):
        """Exports as CSV and parses it; returns (header, rows)."""
        res, data = self.export_bytes(table, body, bucket)
        if (body or {}).get("gzip"):
            data = gzip.decompress(data)
        rows = parse_csv(data)
        assert rows, f"export has no header line: {data[:200]!r}"
        assert res["rows"] == len(rows) - 1, f"export says rows={res['rows']}, file has {len(rows) - 1}"
        return rows[0], rows[1:]

    def manifest_parts(self, file_id):
        """Downloads a manifest; returns [(key, bytes)] of its entries in order."""
        m = json.loads(self.download(file_id))
        assert isinstance(m, dict) and isinstance(m.get("entries"), list), f"not a manifest: {m}"
        by_key = {f["name"]: f for f in self.files()}
        out = []
        for e in m["entries"]:
            url = e["url"]
            key = url.split("/", 3)[3] if url.startswith("s3://") else url
            assert key in by_key, f"manifest entry {url!r} is not a file of the project: {sorted(by_key)}"
            out.append((key, self.download(by_key[key]["id"])))
        return out

    def preview_raw(self, table, bucket=None, **params):
        return self.api.get(self.tpath(table, bucket) + "/preview", params=params or None)

    def preview(self, table, bucket=None, **params):
        p = expect(self.preview_raw(table, bucket, **params), 200)
        assert isinstance(p.get("columns"), list) and isinstance(p.get("rows"), list), p
        for row in p["rows"]:
            assert len(row) == len(p["columns"]), f"row width differs from columns: {p}"
        return p

    def rows(self, table, columns=None, bucket=None, **params):
        """All rows (<= 1000) of a table via preview, sorted (None sorts first)."""
        if columns:
            params["columns"] = ",".join(columns)
        p = self.preview(table, bucket, limit=1000, **params)
        return sorted(p["rows"], key=lambda r: [(v is not None, v or "") for v in r])

    def row_map(self, table, key, columns=None, bucket=None):
        """{key value: {column: value}} over all rows (<= 1000)."""
        params = {"limit": 1000}
        if columns:
            params["columns"] = ",".join(columns)
        p = self.preview(table, bucket, **params)
        cols = p["columns"]
        out = {}
        for r in p["rows"]:
            d = dict(zip(cols, r))
            assert d[key] not in out, f"key {d[key]!r} twice in {table}: {p}"
            out[d[key]] = d
        return out

    def snapshot(self, table, bucket=None):
        """Everything observable about a (small) table: its info and every row with _timestamp."""
        info = self.table(table, bucket)
        names = [c["name"] for c in info["columns"]] + ["_timestamp"]
        assert info["rows"] <= 1000, "snapshot is for small tables"
        return info, self.rows(table, names, bucket)

    def assert_unchanged(self, table, before, bucket=None, what="a failed request"):
        after = self.snapshot(table, bucket)
        assert after[0] == before[0], f"{what} changed the table's info:\nbefore {before[0]}\nafter  {after[0]}"
        assert after[1] == before[1], f"{what} changed the table's rows:\nbefore {before[1]}\nafter  {after[1]}"


@pytest.fixture
def proj(server, admin):
    return Proj(server, admin, "p1")


def expect_400(resp, mentions=()):
    """A 400 in the contract's error shape (code not pinned: invalid_argument or similar)."""
    assert resp.status_code == 400, f"expected 400, got:\n{describe(resp)}"
    err = resp.json().get("error") or {}
    out = expect_error(resp, 400, err.get("code"), mentions)
    assert_clear_message(out["message"])
    return out


def assert_clear_message(msg):
    """A message says its thing once: its opening words do not come back (no garbled, repeated text)."""
    head = msg[:24]
    assert len(msg) < 24 or msg.find(head, 1) < 0, f"the error message repeats itself: {msg!r}"


def expect_4xx(resp, mentions=()):
    assert 400 <= resp.status_code < 500, f"expected a 4xx, got:\n{describe(resp)}"
    err = resp.json().get("error") or {}
    out = expect_error(resp, resp.status_code, err.get("code"), mentions)
    assert_clear_message(out["message"])
    return out


# The five-row "people" table the export and misc suites filter, order and delete on.
PEOPLE_HDR = ["id", "name", "city", "amount"]
PEOPLE_ROWS = [["1", "Ann", "Prague", "10"],
               ["2", "Bob", "Brno", "9"],
               ["3", "Cid", "Brno", "100"],
               ["4", "Dan", "Ostrava", "-5"],
               ["5", "Eve", "Pilsen", "9.5"]]


@pytest.fixture
def people(proj):
    proj.create_table("people", PEOPLE_HDR, primary_key=["id"])
    proj.load_rows("people", PEOPLE_HDR, PEOPLE_ROWS)
    return proj


def ids(rows):
    return sorted(r[0] for r in rows)
