"""CreateTableFromTimeTravelCommand over gRPC and the bridge, and CreateProjectCommand's
dataRetentionTime: the table comes back as it was at the given second (unix seconds, the end of
that second), bad moments are INVALID_ARGUMENT naming the timestamp, and nothing changes then."""

import time

import grpc

from driver_lib import expect_error, info_pb2, project_pb2, table_pb2
from test_driver_data import BUCKET, Project, T

S = grpc.StatusCode


def travel_cmd(source, dest, ts):
    return table_pb2.CreateTableFromTimeTravelCommand(
        source=table_pb2.CreateTableFromTimeTravelCommand.SourceTableMapping(path=[BUCKET], tableName=source),
        destination=table_pb2.ImportExportShared.Table(path=[BUCKET], tableName=dest),
        timestamp=ts)


def load(p, table, text, incremental=False):
    name = f"{table}-{time.time_ns()}.csv"
    p.upload("in/" + name, text.encode())
    X = table_pb2.ImportExportShared
    cmd = p.import_file(table, "in", name, table_pb2.TableImportFromFileCommand.CsvTypeOptions(
                            delimiter=",", enclosure='"'),
                        importType=X.ImportOptions.INCREMENTAL if incremental else X.ImportOptions.FULL,
                        dedupType=X.ImportOptions.UPDATE_DUPLICATES, numberOfIgnoredLines=1)
    p.run(cmd, table_pb2.TableImportResponse)


def test_time_travel_to_a_second(server, driver):
    p = Project(server, driver)
    p.create_table("orders", [T(name="id", type="INTEGER", nullable=False), T(name="state", type="VARCHAR")],
                   pk=["id"])
    load(p, "orders", "id,state\n1,TX\n2,CA\n")
    # The next write lands in a later second than the moment we travel to.
    time.sleep(1.05 - time.time() % 1)
    moment = int(time.time())
    before = p.preview("orders")
    time.sleep(1.05 - time.time() % 1)
    load(p, "orders", "id,state\n2,NY\n3,WA\n", incremental=True)
    assert p.preview("orders") != before
    info = p.run(travel_cmd("orders", "orders_then", moment), info_pb2.ObjectInfoResponse)
    assert list(info.path) == [BUCKET, "orders_then"]
    assert info.tableInfo.rowsCount == 2
    assert [c.name for c in info.tableInfo.columns] == ["id", "state"]
    assert list(info.tableInfo.primaryKeysNames) == ["id"]
    assert sorted(p.preview("orders_then")[1]) == sorted(before[1])
    # REST sees the same table (one command layer).
    r = p.http.get(f"{server.url}/projects/{p.pid}/buckets/{BUCKET}/tables/orders_then")
    assert r.status_code == 200 and r.json()["rows"] == 2


def test_a_dropped_table_comes_back(server, driver):
    """The source of CreateTableFromTimeTravel may be a table dropped since (its history stays for the
    project's retention): the new table is the dropped one as it was at that second."""
    p = Project(server, driver)
    p.create_table("gone", [T(name="id", type="INTEGER", nullable=False), T(name="v", type="VARCHAR")], pk=["id"])
    load(p, "gone", "id,v\n1,a\n2,b\n")
    time.sleep(1.05 - time.time() % 1)
    moment = int(time.time())
    before = p.preview("gone")
    time.sleep(1.05 - time.time() % 1)
    p.run(table_pb2.DropTableCommand(path=[BUCKET], tableName="gone"))
    info = p.run(travel_cmd("gone", "back", moment), info_pb2.ObjectInfoResponse)
    assert info.tableInfo.rowsCount == 2 and list(info.tableInfo.primaryKeysNames) == ["id"]
    assert sorted(p.preview("back")[1]) == sorted(before[1])
    # a name that never was a table stays NOT_FOUND
    expect_error(lambda: p.execute(travel_cmd("never", "x", moment)), S.NOT_FOUND, mentions=["never"])


def test_bad_moments_and_references(server, driver):
    p = Project(server, driver)
    p.create_table("t", [T(name="id", type="INTEGER")])
    future = int(time.time()) + 3600
    e = expect_error(lambda: p.execute(travel_cmd("t", "t2", future)), S.INVALID_ARGUMENT, keboola_code=3000)
    assert "future" in e.message
    e = expect_error(lambda: p.execute(travel_cmd("t", "t2", int(time.time()) - 30 * 86400)), S.INVALID_ARGUMENT)
    assert "retention" in e.message
    e = expect_error(lambda: p.execute(travel_cmd("t", "t2", 0)), S.INVALID_ARGUMENT)
    assert "timestamp" in e.message
    e = expect_error(lambda: p.execute(table_pb2.CreateTableFromTimeTravelCommand(timestamp=int(time.time()))),
                     S.INVALID_ARGUMENT)
    assert "source" in e.message
    expect_error(lambda: p.execute(travel_cmd("missing", "t2", int(time.time()) - 1)), S.NOT_FOUND)
    r = p.http.get(f"{server.url}/projects/{p.pid}/buckets/{BUCKET}/tables")
    assert [t["name"] for t in r.json()["items"]] == ["t"]


def test_create_project_data_retention_time(server, driver):
    driver.run(project_pb2.CreateProjectCommand(projectId="r3", dataRetentionTime=3), server.admin_key,
               response_type=project_pb2.CreateProjectResponse)
    driver.run(project_pb2.CreateProjectCommand(projectId="r0"), server.admin_key,
               response_type=project_pb2.CreateProjectResponse)
    import requests
    h = {"Authorization": f"Bearer {server.admin_key}"}
    assert requests.get(f"{server.url}/projects/r3", headers=h).json()["data_retention_time"] == 3
    # proto3 cannot tell an absent field from 0: the default applies.
    assert requests.get(f"{server.url}/projects/r0", headers=h).json()["data_retention_time"] == 7
    e = expect_error(lambda: driver.execute(project_pb2.CreateProjectCommand(projectId="neg", dataRetentionTime=-1),
                                            server.admin_key), S.INVALID_ARGUMENT)
    assert "dataRetentionTime" in e.message
