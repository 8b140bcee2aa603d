"""Bad-input catalogue over the driver protocol, once over gRPC and once over the HTTP bridge: every
case gets a clean INVALID_ARGUMENT (400 on the bridge, or NOT_FOUND where a name does not exist)
whose message names the problem, and changes nothing.

A snapshot of the project (through REST: buckets, tables with columns, primary keys and exact rows,
a content checksum of every table from a full export, the Storage File list) is taken after the
case's setup and again after the command; the two must be equal. The REST half of the catalogue is
tests/e2e/test_bad_input.py.
"""

import hashlib
import re

import grpc
import pytest
import requests

from driver_lib import (REQUEST_TIMEOUT, TYPE_PREFIX, Driver, GrpcServer, any_pb2, bucket_pb2, expect_error,
                        project_pb2, request, table_pb2)

S = grpc.StatusCode
T = table_pb2.TableColumnShared
X = table_pb2.ImportExportShared
CSV = table_pb2.TableImportFromFileCommand.CsvTypeOptions
PID = "badg"
BUCKET = "in.c-main"
TYPED = "typed"
STRS = "strs"
BIG = "x" * (10 * 1024 * 1024)


class World:
    def __init__(self, server):
        self.server = server
        d = Driver(server, "grpc")
        self.key = d.run(project_pb2.CreateProjectCommand(projectId=PID), server.admin_key,
                         response_type=project_pb2.CreateProjectResponse).projectPassword
        d.execute(bucket_pb2.CreateBucketCommand(bucketId=BUCKET), self.key, PID)
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.key}"
        d.execute(table_pb2.CreateTableCommand(path=[BUCKET], tableName=TYPED, primaryKeysNames=["id"], columns=[
            T(name="id", type="INTEGER", nullable=False), T(name="name", type="VARCHAR", nullable=True),
            T(name="amount", type="DECIMAL", length="10,2", nullable=True)]), self.key, PID)
        for name in (STRS, "victim"):
            d.execute(table_pb2.CreateTableCommand(path=[BUCKET], tableName=name, columns=[T(name="a"), T(name="b")]),
                      self.key, PID)
        self.upload("seed/typed.csv", b"id,name,amount\n1,Ann,10.50\n2,Bob,-3\n")
        d.execute(import_cmd(TYPED, "seed", "typed.csv", incremental=True), self.key, PID)
        self.upload("seed/strs.csv", b"a,b\nx,1\ny,2\n")
        d.execute(import_cmd(STRS, "seed", "strs.csv", incremental=True), self.key, PID)
        d.close()

    def rest(self, method, path, **kw):
        return self.http.request(method, f"{self.server.url}/projects/{PID}{path}", timeout=REQUEST_TIMEOUT, **kw)

    def upload(self, key, data):
        r = self.rest("POST", "/files", params={"name": key, "overwrite": "true"}, data=data,
                      headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
        return r.json()

    def snapshot(self):
        files = sorted((f["id"], f["name"], f["size"], f["sha256"]) for f in self.rest("GET", "/files").json()["items"])
        tables = {}
        for b in self.rest("GET", "/buckets").json()["items"]:
            for t in self.rest("GET", f"/buckets/{b['id']}/tables").json()["items"]:
                info = self.rest("GET", f"/buckets/{b['id']}/tables/{t['name']}").json()
                cols = [c["name"] for c in info["columns"]] + ["_timestamp"]
                r = self.rest("POST", f"/buckets/{b['id']}/tables/{t['name']}/export",
                              json={"columns": cols, "file_name": "snapshots/export.csv"})
                assert r.status_code == 201, r.text
                fid = r.json()["file_id"]
                data = self.rest("GET", f"/files/{fid}/download").content
                assert self.rest("DELETE", f"/files/{fid}").status_code == 204
                tables[(b["id"], t["name"])] = (info["columns"], info["primary_key"], info["rows"],
                                                hashlib.sha256(b"\n".join(sorted(data.split(b"\n")))).hexdigest())
        return {"files": files, "tables": tables}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    server = GrpcServer(tmp_path_factory.mktemp("bad-driver")).start()
    yield World(server)
    rc = server.stop(check=False)
    assert rc == 0, f"exit code {rc} after SIGTERM:\n{server.log_tail()}"


def import_cmd(table, path, name, csv=None, incremental=False, **options):
    cmd = table_pb2.TableImportFromFileCommand(
        fileProvider=X.S3, fileFormat=X.CSV, filePath=X.FilePath(root="r", path=path, fileName=name),
        destination=X.Table(path=[BUCKET], tableName=table),
        importOptions=X.ImportOptions(importType=X.ImportOptions.INCREMENTAL if incremental else X.ImportOptions.FULL,
                                      numberOfIgnoredLines=1, timestampColumn="_timestamp", **options))
    cmd.formatTypeOptions.Pack(csv or CSV(delimiter=",", enclosure='"'))
    return cmd


def csv_case(content, table=STRS, csv=None, **options):
    """Uploads content as bad/input.csv (setup), then imports it incrementally."""
    def setup(w):
        w.upload("bad/input.csv", content)
        return import_cmd(table, "bad", "input.csv", csv=csv, incremental=True, **options)
    return setup


def raw_any(command_cls, value):
    return any_pb2.Any(type_url=TYPE_PREFIX + command_cls.DESCRIPTOR.full_name, value=value)


def encode_len(field, payload):
    out, n = bytearray([(field << 3) | 2]), len(payload)
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out) + payload


def create_table(name, columns=None, pk=(), path=(BUCKET,)):
    return table_pb2.CreateTableCommand(path=list(path), tableName=name, primaryKeysNames=list(pk),
                                        columns=columns if columns is not None else [T(name="a")])


def delete_rows(op, values, data_type=X.INTEGER, column="id"):
    return table_pb2.DeleteTableRowsCommand(path=[BUCKET], tableName=TYPED, whereFilters=[
        X.TableWhereFilter(columnsName=column, operator=op, values=values, dataType=data_type)])


OPS = X.TableWhereFilter
ENGINE_WORDING = re.compile(r"(?:\[\d+\] )?(?:(?:Conversion|Binder|Parser|Catalog|Constraint|Invalid Input|Out of Range|"
                            r"Mismatch Type|Invalid Type|Not implemented|Dependency|Transaction|IO|Serialization) Error|"
                            r"PostgreSQL:|ERROR:)", re.I)
# (id, command or setup(world) -> command, gRPC status, words the message must contain)
CASES = [
    # -- malformed protobuf --------------------------------------------------------------------
    ("pb-truncated-command", raw_any(table_pb2.CreateTableCommand, b"\x12\x05ab"), S.INVALID_ARGUMENT, ["malformed"]),
    ("pb-wrong-wire-type", raw_any(table_pb2.CreateTableCommand, b"\x10\x05"), S.INVALID_ARGUMENT, ["malformed"]),
    ("pb-length-beyond-end", raw_any(table_pb2.DropTableCommand, b"\x0a\xff\xff\xff\x0f"), S.INVALID_ARGUMENT,
     ["malformed"]),
    ("pb-invalid-utf8-table-name", raw_any(table_pb2.CreateTableCommand,
                                           encode_len(1, BUCKET.encode()) + encode_len(2, b"t\xff\xfe")
                                           + encode_len(3, encode_len(1, b"a"))), S.INVALID_ARGUMENT, []),
    ("pb-invalid-utf8-bucket-id", raw_any(bucket_pb2.CreateBucketCommand, encode_len(1, b"in.c-\xc3(")),
     S.INVALID_ARGUMENT, []),
    # -- names -----------------------------------------------------------------------------------
    ("name-empty-table", create_table(""), S.INVALID_ARGUMENT, ["tableName"]),
    ("name-nul-in-table", create_table("made\x00x"), S.INVALID_ARGUMENT, ["table"]),
    ("name-too-long-table", create_table("t" * 65), S.INVALID_ARGUMENT, ["table"]),
    ("name-10mb-table", create_table(BIG), S.INVALID_ARGUMENT, ["table"]),
    ("name-ds-table", create_table("_ds_meta"), S.INVALID_ARGUMENT, ["_ds"]),
    ("name-timestamp-column", create_table("t", [T(name="_timestamp")]), S.INVALID_ARGUMENT, ["_timestamp"]),
    ("name-empty-column", create_table("t", [T(name="")]), S.INVALID_ARGUMENT, ["column"]),
    ("name-too-long-column", create_table("t", [T(name="c" * 65)]), S.INVALID_ARGUMENT, ["column"]),
    ("name-duplicate-columns", create_table("t", [T(name="a"), T(name="a")]), S.INVALID_ARGUMENT, ["a"]),
    ("name-unknown-type", create_table("t", [T(name="a", type="BLOBBY")]), S.INVALID_ARGUMENT, ["BLOBBY"]),
    ("name-type-injection", create_table("t", [T(name="a", type="INTEGER); DROP TABLE x; --")]), S.INVALID_ARGUMENT,
     ["type"]),
    ("name-bad-length", create_table("t", [T(name="a", type="DECIMAL", length="10,2); DROP TABLE x; --")]),
     S.INVALID_ARGUMENT, ["type"]),
    ("name-pk-unknown", create_table("t", pk=["zz"]), S.INVALID_ARGUMENT, ["zz"]),
    ("name-existing-table", create_table(TYPED), S.ALREADY_EXISTS, [TYPED]),
    ("name-path-too-deep", create_table("t", path=(PID, BUCKET, "x")), S.INVALID_ARGUMENT, ["path"]),
    ("name-bucket-nul", bucket_pb2.CreateBucketCommand(bucketId="in.c-made\x00b"), S.INVALID_ARGUMENT, ["bucket"]),
    ("name-bucket-too-long", bucket_pb2.CreateBucketCommand(bucketId="in.c-" + "b" * 200), S.INVALID_ARGUMENT,
     ["bucket"]),
    ("name-add-timestamp-column", table_pb2.AddColumnCommand(path=[BUCKET], tableName=STRS,
                                                             columnDefinition=T(name="_timestamp")),
     S.INVALID_ARGUMENT, ["_timestamp"]),
    ("name-drop-pk-column", table_pb2.DropColumnCommand(path=[BUCKET], tableName=TYPED, columnName="id"),
     S.INVALID_ARGUMENT, ["id"]),
    ("name-drop-table-nul", table_pb2.DropTableCommand(path=[BUCKET], tableName="victim\x00x"), S.INVALID_ARGUMENT,
     ["table"]),
    # -- every filter operator with a value of the wrong type -----------------------------------
    *[(f"filter-{name}-text-for-integer", delete_rows(op, ["abc"]), S.INVALID_ARGUMENT, ["abc"])
      for name, op in (("eq", OPS.eq), ("ne", OPS.ne), ("gt", OPS.gt), ("ge", OPS.ge), ("lt", OPS.lt), ("le", OPS.le))],
    ("filter-unknown-column", delete_rows(OPS.eq, ["1"], column="nope"), S.INVALID_ARGUMENT, ["nope"]),
    ("filter-empty-values", delete_rows(OPS.eq, []), S.INVALID_ARGUMENT, ["value"]),
    ("filter-gt-two-values", delete_rows(OPS.gt, ["1", "2"]), S.INVALID_ARGUMENT, ["one value"]),
    ("filter-decimal-text", delete_rows(OPS.lt, ["ten"], data_type=X.DECIMAL, column="amount"), S.INVALID_ARGUMENT,
     ["ten"]),
    ("filter-nul-in-column", delete_rows(OPS.eq, ["1"], column="id\x00x"), S.INVALID_ARGUMENT, ["column"]),
    ("filter-timestamp-text", delete_rows(OPS.ge, ["yesterday"], data_type=X.TIMESTAMP), S.INVALID_ARGUMENT,
     ["yesterday", "TIMESTAMP"]),
    *[(f"filter-{field}-{v.replace(' ', '-')}",
       table_pb2.DeleteTableRowsCommand(path=[BUCKET], tableName=TYPED, **{field: v}), S.INVALID_ARGUMENT,
       ["changed_" + field[6:].lower(), "-15 minutes"])
      for field, v in (("changeSince", "-1 month"), ("changeUntil", "2026-02-30"))],
    ("default-text-for-integer", table_pb2.AddColumnCommand(path=[BUCKET], tableName=TYPED, columnDefinition=T(
        name="c", type="INTEGER", nullable=True, default="abc")), S.INVALID_ARGUMENT, ["default", "abc", "INTEGER"]),
    # -- CSV imports -------------------------------------------------------------------------------
    ("csv-ragged-long-row", csv_case(b"a,b\n1,2\n3,4,5\n"), S.INVALID_ARGUMENT, ["line"]),
    ("csv-ragged-short-row", csv_case(b"a,b\n1,2\n3\n"), S.INVALID_ARGUMENT, ["line"]),
    ("csv-mixed-line-endings-ragged", csv_case(b"a,b\r\n1,2\n3,4,5\r\n"), S.INVALID_ARGUMENT, ["line"]),
    ("csv-invalid-utf8", csv_case(b"a,b\n\xff\xfe,2\n"), S.INVALID_ARGUMENT, ["utf-8"]),
    ("csv-bom-mid-file-typed", csv_case(b"id,name,amount\n9,x,\xef\xbb\xbf1.00\n", table=TYPED), S.INVALID_ARGUMENT,
     ["amount"]),
    ("csv-text-in-integer", csv_case(b"id,name,amount\n10,x,1\neleven,y,1\n", table=TYPED), S.INVALID_ARGUMENT,
     ["eleven"]),
    ("csv-10mb-field-in-integer", csv_case(b"id,name,amount\n" + b"9" * (10 * 1024 * 1024) + b",x,1\n", table=TYPED),
     S.INVALID_ARGUMENT, ["id"]),
    ("csv-null-primary-key", csv_case(b"id,name,amount\n,x,1\n", table=TYPED), S.INVALID_ARGUMENT, ["id"]),
    ("csv-unknown-column", csv_case(b"id,name,amount,zzz\n1,x,1,2\n", table=TYPED), S.INVALID_ARGUMENT, ["zzz"]),
    ("csv-two-char-delimiter", csv_case(b"a,b\n1,2\n", csv=CSV(delimiter=",,", enclosure='"')), S.INVALID_ARGUMENT,
     ["delimiter"]),
    ("csv-missing-file", lambda w: import_cmd(STRS, "bad", "nope.csv", incremental=True), S.NOT_FOUND, ["nope.csv"]),
]


@pytest.mark.parametrize("transport", ["grpc", "bridge"])
@pytest.mark.parametrize("case,code,mentions", [pytest.param(c, s, m, id=i) for i, c, s, m in CASES])
def test_bad_command_is_a_clear_error_and_changes_nothing(world, transport, case, code, mentions):
    command = case(world) if callable(case) else case
    before = world.snapshot()
    # The key also as a Bearer header: bridge bodies above 64 KiB (the 10 MB names) need it.
    d = Driver(world.server, transport, bearer=world.key)
    try:
        e = expect_error(lambda: d.execute(command, world.key, PID), code, mentions=mentions)
    finally:
        d.close()
    # The engine's wording (DuckDB's "Conversion Error: ...") never comes first: duckstore says what is wrong.
    m = ENGINE_WORDING.search(e.message)
    assert m is None or m.start() > 0, f"{transport}: the message starts with the engine's wording: {e.message!r}"
    assert world.server.health() == 200
    assert world.snapshot() == before, f"{transport}: the failed command changed the project"


@pytest.mark.parametrize("transport", ["grpc", "bridge"])
def test_malformed_driver_request_changes_nothing(world, transport):
    """A DriverRequest that is not protobuf at all, or whose credentials are garbage."""
    before = world.snapshot()
    d = Driver(world.server, transport)
    try:
        for body in (b"\xff\xff\xff", b"\x0a\x05abc", b"\x12\x03\x0a\x05ab"):
            expect_error(lambda: d.execute_raw(body), S.INVALID_ARGUMENT)
        req = request(create_table("t"), world.key, PID)
        req.credentials.value = b"\xff\x00"
        expect_error(lambda: d.execute_raw(req.SerializeToString()), S.INVALID_ARGUMENT)
    finally:
        d.close()
    assert world.snapshot() == before


def test_catalogue_is_big_enough():
    assert len(CASES) >= 30, len(CASES)
