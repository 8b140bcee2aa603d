"""Table data over the driver protocol, once over gRPC and once over the bridge: files uploaded
through REST (Storage Files) are imported full and incremental, previewed, exported back to
Storage Files, profiled, rows deleted, tables copied; columns and primary keys changed. The
results are checked through the protocol and through REST (one command layer)."""

import csv
import io
import json

import grpc
import pytest
import requests

from driver_lib import (REQUEST_TIMEOUT, Driver, bucket_pb2, expect_error, info_pb2, project_pb2, table_pb2)

S = grpc.StatusCode
T = table_pb2.TableColumnShared
X = table_pb2.ImportExportShared
CSV = table_pb2.TableImportFromFileCommand.CsvTypeOptions
BUCKET = "in.c-main"


class Project:
    """A project on a server: its key, REST access to its Storage Files, and driver shortcuts."""

    def __init__(self, server, driver, pid="d1"):
        self.server, self.driver, self.pid = server, driver, pid
        self.key = driver.run(project_pb2.CreateProjectCommand(projectId=pid), server.admin_key,
                              response_type=project_pb2.CreateProjectResponse).projectPassword
        driver.run(bucket_pb2.CreateBucketCommand(bucketId=BUCKET), self.key, pid, bucket_pb2.CreateBucketResponse)
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.key}"

    def run(self, command, response_type=None):
        return self.driver.run(command, self.key, self.pid, response_type)

    def execute(self, command):
        return self.driver.execute(command, self.key, self.pid)

    def upload(self, name, data):
        r = self.http.post(f"{self.server.url}/projects/{self.pid}/files", params={"name": name}, data=data,
                           timeout=REQUEST_TIMEOUT)
        assert r.status_code == 201, r.text
        return r.json()

    def download(self, name):
        r = self.http.get(f"{self.server.url}/projects/{self.pid}/files", params={"prefix": name},
                          timeout=REQUEST_TIMEOUT)
        assert r.status_code == 200, r.text
        found = [f for f in r.json()["items"] if f["name"] == name]
        assert len(found) == 1, f"no single Storage File {name!r}: {r.json()}"
        r = self.http.get(f"{self.server.url}/projects/{self.pid}/files/{found[0]['id']}/download",
                          timeout=REQUEST_TIMEOUT)
        assert r.status_code == 200, r.text
        return r.content

    def create_table(self, name, columns, pk=()):
        return self.run(table_pb2.CreateTableCommand(path=[BUCKET], tableName=name, columns=columns,
                                                     primaryKeysNames=list(pk)), info_pb2.ObjectInfoResponse)

    def table_info(self, name):
        return self.run(info_pb2.ObjectInfoCommand(path=[BUCKET, name], expectedObjectType=info_pb2.TABLE),
                        info_pb2.ObjectInfoResponse).tableInfo

    def preview(self, name, **kw):
        resp = self.run(table_pb2.PreviewTableCommand(path=[BUCKET], tableName=name, **kw),
                        table_pb2.PreviewTableResponse)
        rows = []
        for row in resp.rows:
            assert [c.columnName for c in row.columns] == list(resp.columns)
            rows.append([None if c.value.WhichOneof("kind") == "null_value" else c.value.string_value
                         for c in row.columns])
        return list(resp.columns), rows

    def import_file(self, table, path, file_name, csv_options=None, **options):
        cmd = table_pb2.TableImportFromFileCommand(
            fileProvider=X.S3, fileFormat=X.CSV,
            filePath=X.FilePath(root="ignored-bucket", path=path, fileName=file_name),
            destination=X.Table(path=[BUCKET], tableName=table),
            importOptions=X.ImportOptions(timestampColumn="_timestamp", **options))
        if csv_options is not None:
            cmd.formatTypeOptions.Pack(csv_options)
        return cmd


def csv_bytes(rows, header=None):
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
    if header:
        w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode()


@pytest.fixture
def proj(server, driver):
    return Project(server, driver)


def test_import_preview_export_delete(proj):
    proj.create_table("orders", [T(name="id", nullable=True), T(name="name", nullable=True),
                                 T(name="amount", nullable=True)], pk=["id"])
    # Full load of a file with a header line (Keboola counts it among the ignored lines).
    proj.upload("in/orders.csv", csv_bytes([["1", "a", "10"], ["2", "b", "20"], ["3", "c", "30"]],
                                           header=["id", "name", "amount"]))
    cmd = proj.import_file("orders", "/in/", "orders.csv", CSV(delimiter=",", enclosure='"'),
                           importType=X.ImportOptions.FULL, numberOfIgnoredLines=1)
    r = proj.run(cmd, table_pb2.TableImportResponse)
    assert (r.importedRowsCount, r.tableRowsCount) == (3, 3)
    assert sorted(r.importedColumns) == ["amount", "id", "name"]
    assert r.tableSizeBytes > 0 and all(t.name and float(t.duration) >= 0 for t in r.timers)

    # Incremental load of a headless file with named columns: upsert on the primary key.
    proj.upload("in/orders_inc.csv", csv_bytes([["2", "B", "21"], ["4", "d", "40"]]))
    cmd = proj.import_file("orders", "in", "orders_inc.csv", CSV(columnsNames=["id", "name", "amount"]),
                           importType=X.ImportOptions.INCREMENTAL,
                           dedupType=X.ImportOptions.UPDATE_DUPLICATES)
    r = proj.run(cmd, table_pb2.TableImportResponse)
    assert (r.importedRowsCount, r.tableRowsCount) == (2, 4)
    cols, rows = proj.preview("orders", orderBy=[X.ExportOrderBy(columnName="id")])
    assert cols == ["id", "name", "amount"]
    assert rows == [["1", "a", "10"], ["2", "B", "21"], ["3", "c", "30"], ["4", "d", "40"]]

    # Preview with columns, descending order, filters and a limit.
    cols, rows = proj.preview("orders", columns=["name", "id"],
                              orderBy=[X.ExportOrderBy(columnName="id", order=X.ExportOrderBy.DESC,
                                                       dataType=X.INTEGER)],
                              filters=X.ExportFilters(limit=2, whereFilters=[X.TableWhereFilter(
                                  columnsName="amount", operator=X.TableWhereFilter.ge, values=["20"],
                                  dataType=X.INTEGER)]))
    assert cols == ["name", "id"] and rows == [["d", "4"], ["c", "3"]]
    assert proj.table_info("orders").rowsCount == 4

    # Export to a Storage File named by the FilePath; the response describes the table.
    resp = proj.execute(table_pb2.TableExportToFileCommand(
        source=X.Table(path=[BUCKET], tableName="orders"), fileProvider=X.S3, fileFormat=X.CSV,
        filePath=X.FilePath(root="ignored", path="exports", fileName="orders.csv"),
        exportOptions=X.ExportOptions(columnsToExport=["id", "amount"],
                                      orderBy=[X.ExportOrderBy(columnName="id")])))
    out = table_pb2.TableExportToFileResponse()
    assert resp.commandResponse.Unpack(out)
    assert out.tableInfo.tableName == "orders" and out.tableInfo.rowsCount == 4
    assert any("exports/orders.csv" in m.message for m in resp.messages)
    exported = list(csv.reader(io.StringIO(proj.download("exports/orders.csv").decode())))
    assert exported == [["id", "amount"], ["1", "10"], ["2", "21"], ["3", "30"], ["4", "40"]]

    # Delete rows by a filter.
    r = proj.run(table_pb2.DeleteTableRowsCommand(path=[BUCKET], tableName="orders", whereFilters=[
        X.TableWhereFilter(columnsName="id", operator=X.TableWhereFilter.eq, values=["1", "3"])]),
        table_pb2.DeleteTableRowsResponse)
    assert (r.deletedRowsCount, r.tableRowsCount) == (2, 2)
    assert r.tableSizeBytes > 0
    assert [row[0] for row in proj.preview("orders", orderBy=[X.ExportOrderBy(columnName="id")])[1]] == ["2", "4"]


def test_typed_table_import_and_copy(proj):
    proj.create_table("typed", [T(name="id", type="INTEGER"), T(name="price", type="NUMERIC", length="10,2",
                                                                 nullable=True),
                                T(name="note", nullable=True)], pk=["id"])
    proj.upload("typed.csv", csv_bytes([["1", "1.50", "x"], ["2", "", "y"]], header=["id", "price", "note"]))
    cmd = proj.import_file("typed", "", "typed.csv", None, numberOfIgnoredLines=1,
                           importStrategy=X.ImportOptions.USER_DEFINED_TABLE,
                           convertEmptyValuesToNullOnColumns=["price"])
    r = proj.run(cmd, table_pb2.TableImportResponse)
    assert r.tableRowsCount == 2
    _, rows = proj.preview("typed", orderBy=[X.ExportOrderBy(columnName="id")])
    assert rows == [["1", "1.50", "x"], ["2", None, "y"]]

    # Import from table: a copy with a column mapping and a filter.
    proj.create_table("copy", [T(name="id", type="INTEGER", nullable=True), T(name="label", nullable=True)])
    cmd = table_pb2.TableImportFromTableCommand(
        source=table_pb2.TableImportFromTableCommand.SourceTableMapping(
            path=[BUCKET], tableName="typed",
            columnMappings=[
                table_pb2.TableImportFromTableCommand.SourceTableMapping.ColumnMapping(
                    sourceColumnName="id", destinationColumnName="id"),
                table_pb2.TableImportFromTableCommand.SourceTableMapping.ColumnMapping(
                    sourceColumnName="note", destinationColumnName="label")],
            whereFilters=[X.TableWhereFilter(columnsName="id", operator=X.TableWhereFilter.gt, values=["1"],
                                             dataType=X.INTEGER)]),
        destination=X.Table(path=[BUCKET], tableName="copy"),
        importOptions=X.ImportOptions(importType=X.ImportOptions.FULL,
                                      importStrategy=X.ImportOptions.USER_DEFINED_TABLE))
    r = proj.run(cmd, table_pb2.TableImportResponse)
    assert r.tableRowsCount == 1
    assert proj.preview("copy")[1] == [["2", "y"]]

    # Profile.
    p = proj.run(table_pb2.CreateProfileTableCommand(path=[BUCKET], tableName="typed"),
                 table_pb2.CreateProfileTableResponse)
    assert list(p.path) == [BUCKET] and p.tableName == "typed"
    assert json.loads(p.profile)["rowCount"] == 2
    cols = {c.name: json.loads(c.profile) for c in p.columns}
    assert set(cols) == {"id", "price", "note"}
    assert cols["price"]["nullCount"] == 1 and cols["id"]["distinctCount"] == 2


def test_directory_and_gzip_sources(proj):
    import gzip

    proj.create_table("parts", [T(name="a", nullable=True), T(name="b", nullable=True)])
    proj.upload("batch/p1.csv", csv_bytes([["1", "x"]], header=["a", "b"]))
    proj.upload("batch/p2.csv", csv_bytes([["2", "y"], ["3", "z"]], header=["a", "b"]))
    cmd = proj.import_file("parts", "batch", "", CSV(sourceType=CSV.DIRECTORY), numberOfIgnoredLines=1)
    assert proj.run(cmd, table_pb2.TableImportResponse).tableRowsCount == 3
    proj.upload("z/more.csv.gz", gzip.compress(csv_bytes([["4", "w"]], header=["a", "b"])))
    cmd = proj.import_file("parts", "z", "more.csv.gz", CSV(compression=CSV.GZIP), numberOfIgnoredLines=1,
                           importType=X.ImportOptions.INCREMENTAL)
    assert proj.run(cmd, table_pb2.TableImportResponse).tableRowsCount == 4


def test_schema_changes(proj):
    proj.create_table("s", [T(name="id", type="INTEGER"), T(name="v", nullable=True)])
    info = proj.run(table_pb2.AddColumnCommand(path=[BUCKET], tableName="s", columnDefinition=T(
        name="amount", type="NUMERIC", length="8,2", nullable=True, default="0")), info_pb2.ObjectInfoResponse)
    assert [(c.name, c.type, c.length, c.default) for c in info.tableInfo.columns][-1] == \
        ("amount", "DECIMAL", "8,2", "0")
    info = proj.run(table_pb2.AlterColumnCommand(path=[BUCKET], tableName="s",
                                                 desiredDefiniton=T(name="v", nullable=False),
                                                 attributesToUpdate=["nullable"]), info_pb2.ObjectInfoResponse)
    assert {c.name: c.nullable for c in info.tableInfo.columns}["v"] is False
    proj.run(table_pb2.AddPrimaryKeyCommand(path=[BUCKET], tableName="s", primaryKeysNames=["id"]))
    assert list(proj.table_info("s").primaryKeysNames) == ["id"]
    proj.run(table_pb2.DropPrimaryKeyCommand(path=[BUCKET], tableName="s"))
    assert list(proj.table_info("s").primaryKeysNames) == []
    proj.run(table_pb2.DropColumnCommand(path=[BUCKET], tableName="s", columnName="amount"))
    assert [c.name for c in proj.table_info("s").columns] == ["id", "v"]
    expect_error(lambda: proj.execute(table_pb2.AlterColumnCommand(path=[BUCKET], tableName="s",
                                                                   desiredDefiniton=T(name="v"))),
                 S.INVALID_ARGUMENT, mentions=["attributesToUpdate"])
    expect_error(lambda: proj.execute(table_pb2.DropColumnCommand(path=[BUCKET], tableName="s",
                                                                  columnName="nope")), S.NOT_FOUND)


def test_data_errors(proj):
    proj.create_table("e", [T(name="a", nullable=True)])
    # A key leaving the project's area.
    for path, name in (("..", "x.csv"), ("a/../../b", "x.csv"), ("", "../etc/passwd")):
        expect_error(lambda: proj.execute(proj.import_file("e", path, name)), S.INVALID_ARGUMENT)
    # A missing file: Keboola's "file not found" (4201).
    expect_error(lambda: proj.execute(proj.import_file("e", "no", "such.csv")), S.NOT_FOUND, keboola_code=4201)
    # Other file providers, and a VIEW import of a file: things a file import cannot do here.
    cmd = proj.import_file("e", "", "x.csv")
    cmd.fileProvider = X.GCS
    expect_error(lambda: proj.execute(cmd), S.UNIMPLEMENTED, mentions=["fileProvider"])
    expect_error(lambda: proj.execute(proj.import_file("e", "", "x.csv", importType=X.ImportOptions.VIEW)),
                 S.UNIMPLEMENTED, mentions=["VIEW"])
    # formatTypeOptions of the wrong type.
    cmd = proj.import_file("e", "", "x.csv", X.FilePath(fileName="wrong"))
    expect_error(lambda: proj.execute(cmd), S.INVALID_ARGUMENT, mentions=["formatTypeOptions"])
    # The destination must exist (tables are created with CreateTableCommand).
    proj.upload("ok.csv", csv_bytes([["1"]], header=["a"]))
    expect_error(lambda: proj.execute(proj.import_file("missing", "", "ok.csv", numberOfIgnoredLines=1)),
                 S.NOT_FOUND, keboola_code=2004)
    # A failed import changes nothing.
    assert proj.table_info("e").rowsCount == 0


def test_import_from_table_seconds_and_limit(proj):
    """SourceTableMapping.seconds is Keboola's "changed in the last N seconds"; limit caps the rows."""
    import time

    cols = [T(name="id", nullable=True), T(name="city", nullable=True)]
    proj.create_table("src", cols)
    proj.create_table("dst", cols)
    proj.upload("in/old.csv", csv_bytes([["1", "Brno"], ["2", "Brno"], ["3", "Zlin"]], header=["id", "city"]))
    proj.run(proj.import_file("src", "in", "old.csv", CSV(), importType=X.ImportOptions.FULL,
                              numberOfIgnoredLines=1), table_pb2.TableImportResponse)
    time.sleep(2.1)
    proj.upload("in/new.csv", csv_bytes([["4", "Brno"], ["5", "Zlin"]], header=["id", "city"]))
    proj.run(proj.import_file("src", "in", "new.csv", CSV(), importType=X.ImportOptions.INCREMENTAL,
                              numberOfIgnoredLines=1), table_pb2.TableImportResponse)

    def copy(**source):
        cmd = table_pb2.TableImportFromTableCommand(
            source=table_pb2.TableImportFromTableCommand.SourceTableMapping(path=[BUCKET], tableName="src", **source),
            destination=X.Table(path=[BUCKET], tableName="dst"),
            importOptions=X.ImportOptions(importType=X.ImportOptions.FULL))
        return proj.run(cmd, table_pb2.TableImportResponse)

    def ids():
        return [r[0] for r in proj.preview("dst", orderBy=[X.ExportOrderBy(columnName="id")])[1]]

    assert copy(seconds=1).tableRowsCount == 2
    assert ids() == ["4", "5"]
    assert copy(seconds=3600).tableRowsCount == 5
    r = copy(seconds=3600, limit=2, whereFilters=[X.TableWhereFilter(columnsName="city",
                                                                     operator=X.TableWhereFilter.eq,
                                                                     values=["Brno"])])
    assert r.tableRowsCount == 2
    assert set(ids()) <= {"1", "2", "4"}
    assert copy(limit=3).tableRowsCount == 3
    before = ids()
    expect_error(lambda: copy(seconds=-1), S.INVALID_ARGUMENT, mentions=["seconds"])
    expect_error(lambda: copy(limit=-1), S.INVALID_ARGUMENT, mentions=["limit"])
    assert ids() == before


def test_a_repeated_preview_follows_every_driver_write(proj):
    """The same PreviewTableCommand asked again is answered from the server's cache of recent
    previews (the hit counter moves, the answer is the same), and every driver write before the
    next one shows in it: import, delete rows, add and drop a column."""
    def hits():
        r = requests.get(f"{proj.server.url}/metrics", headers={"Authorization": f"Bearer {proj.server.admin_key}"},
                         timeout=REQUEST_TIMEOUT)
        assert r.status_code == 200, r.text
        line = [x for x in r.text.splitlines() if x.startswith("duckstore_preview_cache_hits_total")]
        assert len(line) == 1, line
        return float(line[0].split()[-1])

    def primed():
        first = proj.preview("t", orderBy=[X.ExportOrderBy(columnName="id")])
        h = hits()
        second = proj.preview("t", orderBy=[X.ExportOrderBy(columnName="id")])
        assert hits() == h + 1, "the repeated preview was not answered from the cache"
        assert second == first
        return second

    proj.create_table("t", [T(name="id", nullable=True), T(name="v", nullable=True)], pk=["id"])
    proj.upload("in/t1.csv", csv_bytes([["1", "a"], ["2", "b"]], header=["id", "v"]))
    proj.run(proj.import_file("t", "in", "t1.csv", CSV(), importType=X.ImportOptions.FULL, numberOfIgnoredLines=1),
             table_pb2.TableImportResponse)
    assert primed() == (["id", "v"], [["1", "a"], ["2", "b"]])
    proj.upload("in/t2.csv", csv_bytes([["2", "B"], ["3", None]], header=["id", "v"]))
    proj.run(proj.import_file("t", "in", "t2.csv", CSV(), importType=X.ImportOptions.INCREMENTAL,
                              numberOfIgnoredLines=1, dedupType=X.ImportOptions.UPDATE_DUPLICATES),
             table_pb2.TableImportResponse)
    assert primed() == (["id", "v"], [["1", "a"], ["2", "B"], ["3", ""]])
    proj.run(table_pb2.DeleteTableRowsCommand(path=[BUCKET], tableName="t", whereFilters=[
        X.TableWhereFilter(columnsName="id", operator=X.TableWhereFilter.eq, values=["1"])]),
        table_pb2.DeleteTableRowsResponse)
    assert primed() == (["id", "v"], [["2", "B"], ["3", ""]])
    proj.run(table_pb2.AddColumnCommand(path=[BUCKET], tableName="t", columnDefinition=T(
        name="w", nullable=True, default="z")), info_pb2.ObjectInfoResponse)
    assert primed() == (["id", "v", "w"], [["2", "B", "z"], ["3", "", "z"]])
    proj.run(table_pb2.DropColumnCommand(path=[BUCKET], tableName="t", columnName="w"))
    assert proj.preview("t", orderBy=[X.ExportOrderBy(columnName="id")]) == (["id", "v"], [["2", "B"], ["3", ""]])
