"""Views (table aliases) over the driver protocol, once over gRPC and once over the bridge:
CreateViewCommand with and without a filter and pinned columns, ObjectInfo answering VIEW (and
listing views in a SCHEMA), preview, export and profile through a view, writes refused, DropTable
of a source with views refused and of the view itself accepted. REST sees the same aliases."""

import csv
import io
import json

import grpc
import pytest

from driver_lib import expect_error, info_pb2, table_pb2
from test_driver_data import BUCKET, Project, csv_bytes

S = grpc.StatusCode
T = table_pb2.TableColumnShared
X = table_pb2.ImportExportShared
CSV = table_pb2.TableImportFromFileCommand.CsvTypeOptions
F = X.TableWhereFilter


@pytest.fixture
def proj(server, driver):
    p = Project(server, driver)
    p.create_table("orders", [T(name="id"), T(name="state", nullable=True), T(name="amount", nullable=True)],
                   pk=["id"])
    p.upload("orders.csv", csv_bytes([["1", "TX", "10"], ["2", "CA", "20"], ["3", "NY", "30"], ["4", "TX", "40"]],
                                     header=["id", "state", "amount"]))
    p.run(p.import_file("orders", "", "orders.csv", CSV(delimiter=",", enclosure='"'), numberOfIgnoredLines=1),
          table_pb2.TableImportResponse)
    return p


def create_view(p, name, columns=(), filters=()):
    return p.run(table_pb2.CreateViewCommand(path=[BUCKET], viewName=name, sourcePath=[BUCKET],
                                             sourceTableName="orders", columns=list(columns),
                                             whereFilters=list(filters)))


def object_info(p, name, kind=info_pb2.VIEW):
    return p.run(info_pb2.ObjectInfoCommand(path=[BUCKET, name], expectedObjectType=kind), info_pb2.ObjectInfoResponse)


def test_create_view_and_read_it(proj):
    p = proj
    assert create_view(p, "tx_ny", filters=[F(columnsName="state", operator=F.eq, values=["TX", "NY"])]) is None
    create_view(p, "not_tx", columns=["id", "amount"], filters=[F(columnsName="state", operator=F.ne, values=["TX"])])
    create_view(p, "all_orders")

    info = object_info(p, "tx_ny")
    assert info.objectType == info_pb2.VIEW and info.WhichOneof("objectInfo") == "viewInfo"
    v = info.viewInfo
    assert list(v.path) == [BUCKET] and v.viewName == "tx_ny" and v.rowsCount == 3
    assert [c.name for c in v.columns] == ["id", "state", "amount"] and list(v.primaryKeysNames) == ["id"]
    # asked as a TABLE, a view still answers as what it is
    info = object_info(p, "not_tx", info_pb2.TABLE)
    assert info.objectType == info_pb2.VIEW and [c.name for c in info.viewInfo.columns] == ["id", "amount"]
    assert info.viewInfo.rowsCount == 2
    # a table is not a view
    expect_error(lambda: object_info(p, "orders"), S.NOT_FOUND, mentions=["table"])

    schema = p.run(info_pb2.ObjectInfoCommand(path=[BUCKET], expectedObjectType=info_pb2.SCHEMA),
                   info_pb2.ObjectInfoResponse)
    kinds = {o.objectName: o.objectType for o in schema.schemaInfo.objects}
    assert kinds == {"orders": info_pb2.TABLE, "tx_ny": info_pb2.VIEW, "not_tx": info_pb2.VIEW,
                     "all_orders": info_pb2.VIEW}

    cols, rows = p.preview("tx_ny", orderBy=[X.ExportOrderBy(columnName="id")])
    assert cols == ["id", "state", "amount"] and [r[0] for r in rows] == ["1", "3", "4"]
    cols, rows = p.preview("tx_ny", filters=X.ExportFilters(whereFilters=[F(columnsName="amount", operator=F.ge,
                                                                             values=["30"], dataType=X.INTEGER)]))
    assert sorted(r[0] for r in rows) == ["3", "4"]
    cols, rows = p.preview("not_tx")
    assert cols == ["id", "amount"] and sorted(rows) == [["2", "20"], ["3", "30"]]

    resp = p.execute(table_pb2.TableExportToFileCommand(
        source=X.Table(path=[BUCKET], tableName="tx_ny"), fileProvider=X.S3, fileFormat=X.CSV,
        filePath=X.FilePath(root="ignored", path="exports", fileName="tx.csv"),
        exportOptions=X.ExportOptions(columnsToExport=["id"], orderBy=[X.ExportOrderBy(columnName="id")])))
    out = table_pb2.TableExportToFileResponse()
    assert resp.commandResponse.Unpack(out)
    assert list(csv.reader(io.StringIO(p.download("exports/tx.csv").decode()))) == [["id"], ["1"], ["3"], ["4"]]

    prof = p.run(table_pb2.CreateProfileTableCommand(path=[BUCKET], tableName="not_tx"),
                 table_pb2.CreateProfileTableResponse)
    assert json.loads(prof.profile)["rowCount"] == 2 and {c.name for c in prof.columns} == {"id", "amount"}

    # a new source column reaches the auto-sync view, not the pinned one
    p.run(table_pb2.AddColumnCommand(path=[BUCKET], tableName="orders", columnDefinition=T(name="note", nullable=True)),
          info_pb2.ObjectInfoResponse)
    assert [c.name for c in object_info(p, "all_orders").viewInfo.columns] == ["id", "state", "amount", "note"]
    assert [c.name for c in object_info(p, "not_tx").viewInfo.columns] == ["id", "amount"]

    # REST shows the same aliases
    r = p.http.get(f"{p.server.url}/projects/{p.pid}/buckets/{BUCKET}/tables/tx_ny")
    assert r.status_code == 200 and r.json()["alias_of"] == f"{BUCKET}.orders" and r.json()["rows"] == 3


def test_bad_views_and_writes_refused(proj):
    p = proj
    expect_error(lambda: create_view(p, "v", filters=[F(columnsName="amount", operator=F.gt, values=["1"])]),
                 S.INVALID_ARGUMENT, mentions=["eq or ne"])
    expect_error(lambda: create_view(p, "v", filters=[F(columnsName="state", values=["TX"]),
                                                      F(columnsName="id", values=["1"])]),
                 S.INVALID_ARGUMENT, mentions=["at most one"])
    expect_error(lambda: create_view(p, "v", columns=["id", "nope"]), S.INVALID_ARGUMENT, mentions=["nope"])
    expect_error(lambda: create_view(p, "orders"), S.ALREADY_EXISTS)
    expect_error(lambda: p.run(table_pb2.CreateViewCommand(path=[BUCKET], viewName="v", sourcePath=[BUCKET],
                                                           sourceTableName="missing")), S.NOT_FOUND)
    create_view(p, "tx", filters=[F(columnsName="state", values=["TX"])])
    expect_error(lambda: create_view(p, "tx"), S.ALREADY_EXISTS)

    writes = [
        table_pb2.DeleteTableRowsCommand(path=[BUCKET], tableName="tx"),
        table_pb2.AddColumnCommand(path=[BUCKET], tableName="tx", columnDefinition=T(name="x", nullable=True)),
        table_pb2.DropColumnCommand(path=[BUCKET], tableName="tx", columnName="amount"),
        table_pb2.DropPrimaryKeyCommand(path=[BUCKET], tableName="tx"),
        p.import_file("tx", "", "orders.csv", CSV(delimiter=",", enclosure='"'), numberOfIgnoredLines=1),
    ]
    for cmd in writes:
        expect_error(lambda: p.run(cmd), S.INVALID_ARGUMENT, mentions=["alias", "read-only"])
    assert object_info(p, "tx").viewInfo.rowsCount == 2
    assert p.table_info("orders").rowsCount == 4

    # the source cannot be dropped while a view reads it; the view can
    expect_error(lambda: p.run(table_pb2.DropTableCommand(path=[BUCKET], tableName="orders")), S.FAILED_PRECONDITION,
                 mentions=["tx"])
    p.run(table_pb2.DropTableCommand(path=[BUCKET], tableName="tx"))
    expect_error(lambda: object_info(p, "tx"), S.NOT_FOUND)
    p.run(table_pb2.DropTableCommand(path=[BUCKET], tableName="orders"))
    expect_error(lambda: p.table_info("orders"), S.NOT_FOUND)
