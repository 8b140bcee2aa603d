"""Letter case over the driver protocol (gRPC and the bridge): any spelling of a bucket, table or
column reaches the one stored table through the same command layer and write queue, and the
responses use the stored spelling."""

import threading

import grpc

from driver_lib import Driver, DriverError, expect_error, info_pb2, table_pb2
from test_driver_data import BUCKET, CSV, T, X, csv_bytes, proj  # noqa: F401 (fixture)

S = grpc.StatusCode


def test_mixed_case_names_reach_the_stored_table(proj):
    proj.create_table("Orders", [T(name="Id", nullable=True), T(name="City", nullable=True)], pk=["ID"])
    proj.upload("in/o.csv", csv_bytes([["1", "Brno"], ["2", "Prague"], ["3", "Brno"]], header=["ID", "CITY"]))
    cmd = table_pb2.TableImportFromFileCommand(
        fileProvider=X.S3, fileFormat=X.CSV, filePath=X.FilePath(root="r", path="in", fileName="o.csv"),
        destination=X.Table(path=["IN.C-MAIN"], tableName="ORDERS"),
        importOptions=X.ImportOptions(timestampColumn="_timestamp", numberOfIgnoredLines=1,
                                      importType=X.ImportOptions.INCREMENTAL,
                                      dedupType=X.ImportOptions.UPDATE_DUPLICATES, dedupColumnsNames=["id"]))
    cmd.formatTypeOptions.Pack(CSV(delimiter=",", enclosure='"'))
    r = proj.run(cmd, table_pb2.TableImportResponse)
    assert sorted(r.importedColumns) == ["City", "Id"] and r.tableRowsCount == 3, r

    info = proj.run(info_pb2.ObjectInfoCommand(path=["in.C-MAIN", "oRdErS"], expectedObjectType=info_pb2.TABLE),
                    info_pb2.ObjectInfoResponse).tableInfo
    assert info.tableName == "Orders" and list(info.primaryKeysNames) == ["Id"], info

    resp = proj.run(table_pb2.PreviewTableCommand(path=[BUCKET.upper()], tableName="orders", columns=["CITY", "id"],
                                                  orderBy=[X.ExportOrderBy(columnName="ID")]),
                    table_pb2.PreviewTableResponse)
    assert list(resp.columns) == ["City", "Id"]

    r = proj.run(table_pb2.DeleteTableRowsCommand(path=[BUCKET], tableName="ORDERS", whereFilters=[
        X.TableWhereFilter(columnsName="CITY", operator=X.TableWhereFilter.eq, values=["Brno"])]),
        table_pb2.DeleteTableRowsResponse)
    assert (r.deletedRowsCount, r.tableRowsCount) == (2, 1)

    proj.run(table_pb2.DropColumnCommand(path=[BUCKET], tableName="oRDERS", columnName="CITY"))
    assert [c.name for c in proj.table_info("Orders").columns] == ["Id"]
    proj.run(table_pb2.DropTableCommand(path=["IN.c-main"], tableName="orders"))
    expect_error(lambda: proj.table_info("Orders"), S.NOT_FOUND)


def test_concurrent_fail_on_duplicates_through_two_spellings(proj, server, driver):
    proj.create_table("t", [T(name="id", nullable=True), T(name="v", nullable=True)], pk=["id"])
    for rnd in range(4):
        keys = range(rnd * 2000, (rnd + 1) * 2000)
        for who in "ab":
            proj.upload(f"in/{rnd}{who}.csv", csv_bytes([[str(k), who] for k in keys]))
        barrier = threading.Barrier(2)
        results = {}

        def run(who, table):
            cmd = proj.import_file(table, "in", f"{rnd}{who}.csv", CSV(columnsNames=["id", "v"]),
                                   importType=X.ImportOptions.INCREMENTAL,
                                   dedupType=X.ImportOptions.FAIL_ON_DUPLICATES)
            d = Driver(server, driver.transport)  # own channel or session per thread
            try:
                barrier.wait()
                d.run(cmd, proj.key, proj.pid, table_pb2.TableImportResponse)
                results[who] = "ok"
            except DriverError as e:
                results[who] = e
            finally:
                d.close()

        threads = [threading.Thread(target=run, args=("a", "t")), threading.Thread(target=run, args=("b", "T"))]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        oks = [w for w, v in results.items() if v == "ok"]
        errors = [v for v in results.values() if v != "ok"]
        assert len(oks) == 1 and len(errors) == 1, results
        assert errors[0].code == S.INVALID_ARGUMENT and "fail_on_duplicates" in errors[0].message, errors[0]
        assert proj.table_info("T").rowsCount == (rnd + 1) * 2000
