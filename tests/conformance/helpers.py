"""Helpers of the conformance suite: a project on a given backend, and its table data over REST.

Everything goes through the public REST API only, so the assertions are the same for every backend.
"""

import csv
import datetime as dt
import gzip
import io
import uuid

from e2e_lib import describe, expect, expect_error

BUCKET = "in.c-main"


def csv_bytes(rows, header=None):
    """Rows as CSV bytes, every value enclosed, LF line ends."""
    out = []
    for row in ([header] if header else []) + list(rows):
        out.append(",".join('"' + str(v).replace('"', '""') + '"' for v in row))
    return ("\n".join(out) + "\n").encode()


def parse_csv(data):
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline=""), strict=True))


def parse_ts(value):
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


def expect_400(resp, mentions=()):
    assert resp.status_code == 400, f"expected 400, got:\n{describe(resp)}"
    return expect_error(resp, 400, resp.json()["error"]["code"], mentions)


def table_info(info):
    """A table's info without what depends on the storage engine's bookkeeping (bytes)."""
    return {k: v for k, v in info.items() if k != "bytes"}


class Proj:
    """Project `pid` on `backend`, with bucket in.c-main, and a key-bound Api."""

    def __init__(self, server, admin, pid, backend, bucket=BUCKET):
        self.server = server
        self.admin = admin
        self.pid = pid
        self.backend = backend
        body = expect(admin.post("/projects", {"id": pid, "backend": backend}), 201)
        assert body["backend"] == backend, body
        self.api = admin.with_key(body["api_key"])
        self.bucket = bucket
        stage, name = bucket.split(".", 1)
        expect(self.api.post(f"/projects/{pid}/buckets", {"stage": stage, "name": name}), 201)

    @property
    def base(self):
        return f"/projects/{self.pid}"

    def tpath(self, table, bucket=None):
        return f"{self.base}/buckets/{bucket or self.bucket}/tables/{table}"

    def create_table(self, name, columns, primary_key=None, bucket=None):
        cols = [c if isinstance(c, dict) else {"name": c} for c in columns]
        body = {"name": name, "columns": cols}
        if primary_key is not None:
            body["primary_key"] = primary_key
        return expect(self.api.post(f"{self.base}/buckets/{bucket or self.bucket}/tables", body), 201)

    def table(self, name, bucket=None):
        return expect(self.api.get(self.tpath(name, bucket)), 200)

    def upload(self, data, name=None):
        if isinstance(data, str):
            data = data.encode()
        r = self.api.request("POST", f"{self.base}/files", data=data,
                             params={"name": name or f"in/{uuid.uuid4().hex}.csv"},
                             headers={"Content-Type": "application/octet-stream"})
        return expect(r, 201)

    def download(self, file_id):
        r = self.api.get(f"{self.base}/files/{file_id}/download")
        assert r.status_code == 200, describe(r)
        return r.content

    def import_raw(self, table, data, bucket=None, **options):
        body = {"file_id": self.upload(data)["id"]}
        body.update(options)
        return self.api.post(self.tpath(table, bucket) + "/import/file", body)

    def load(self, table, header, rows, bucket=None, **options):
        return expect(self.import_raw(table, csv_bytes(rows, header), bucket, **options), 200)

    def preview_raw(self, table, **params):
        return self.api.get(self.tpath(table) + "/preview", params=params or None)

    def preview(self, table, **params):
        return expect(self.preview_raw(table, **params), 200)

    def rows(self, table, columns=None, **params):
        if columns:
            params["columns"] = ",".join(columns)
        p = self.preview(table, limit=1000, **params)
        return sorted(p["rows"], key=lambda r: [(v is not None, v or "") for v in r])

    def row_map(self, table, key, columns=None):
        params = {"limit": 1000}
        if columns:
            params["columns"] = ",".join(columns)
        p = self.preview(table, **params)
        return {dict(zip(p["columns"], r))[key]: dict(zip(p["columns"], r)) for r in p["rows"]}

    def export_raw(self, table, body=None):
        body = dict(body or {})
        body.setdefault("file_name", f"exports/{uuid.uuid4().hex}.csv" + (".gz" if body.get("gzip") else ""))
        return self.api.post(self.tpath(table) + "/export", body)

    def export_rows(self, table, body=None):
        res = expect(self.export_raw(table, body), 201)
        data = self.download(res["file_id"])
        if (body or {}).get("gzip"):
            data = gzip.decompress(data)
        rows = parse_csv(data)
        assert rows, f"export without a header: {data[:200]!r}"
        assert res["rows"] == len(rows) - 1, (res, len(rows) - 1)
        return rows[0], rows[1:]

    def snapshot(self, table):
        info = self.table(table)
        names = [c["name"] for c in info["columns"]] + ["_timestamp"]
        return table_info(info), self.rows(table, names)

    def assert_unchanged(self, table, before, what="a failed request"):
        after = self.snapshot(table)
        assert after == before, f"{what} changed the table:\nbefore {before}\nafter  {after}"
