"""Automatic snapshots over the driver protocol (gRPC and the bridge): a full load, a delete of all
rows, a column drop and a table drop made by Keboola's driver commands keep the table's content in
an automatic snapshot first (listed through REST), and the owner restores the dropped table from
it with every row and value. A delete with a filter and an incremental load take none."""

from driver_lib import info_pb2, table_pb2
from test_branches_driver import B, Project, T, X

import pytest


@pytest.fixture
def proj(server, driver):
    p = Project(server, driver)
    p.run(table_pb2.CreateTableCommand(path=[B], tableName="t", columns=[T(name="id"), T(name="v"), T(name="w")],
                                       primaryKeysNames=["id"]), info_pb2.ObjectInfoResponse)
    p.load(B, "t", b'"id","v","w"\n"1","a","x"\n"2","b","y"\n"3","c","z"\n')
    return p


def autos(p):
    r = p.rest("GET", "/snapshots")
    assert r.status_code == 200, r.text
    return [(s["trigger"], s["rows"]) for s in r.json()["items"] if s["kind"] == "auto"]


def test_driver_destructive_commands_take_automatic_snapshots(proj):
    p = proj
    p.load(B, "t", b'"id","v","w"\n"4","d","q"\n', incremental=True)
    p.run(table_pb2.DeleteTableRowsCommand(path=[B], tableName="t", whereFilters=[
        X.TableWhereFilter(columnsName="id", operator=X.TableWhereFilter.eq, values=["4"])]),
          table_pb2.DeleteTableRowsResponse)
    assert autos(p) == []
    p.load(B, "t", b'"id","v","w"\n"1","a","x"\n"2","b","y"\n"3","c","z"\n"5","e","r"\n')
    assert autos(p) == [("truncate", 3)]
    p.run(table_pb2.DropColumnCommand(path=[B], tableName="t", columnName="w"))
    assert sorted(autos(p)) == [("drop_column", 4), ("truncate", 3)]
    p.run(table_pb2.DeleteTableRowsCommand(path=[B], tableName="t"), table_pb2.DeleteTableRowsResponse)
    assert p.info(B, "t").tableInfo.rowsCount == 0
    assert sorted(autos(p)) == [("delete_all_rows", 4), ("drop_column", 4), ("truncate", 3)]
    p.load(B, "t", b'"id","v"\n"7","g"\n')
    p.run(table_pb2.DropTableCommand(path=[B], tableName="t"))
    drops = [s for s in p.rest("GET", "/snapshots").json()["items"] if s["trigger"] == "drop_table"]
    assert len(drops) == 1 and drops[0]["rows"] == 1
    # The owner restores the dropped table, through REST, with its rows.
    r = p.rest("POST", f"/snapshots/{drops[0]['id']}/restore", json={})
    assert r.status_code == 201, r.text
    assert p.ids(B, "t") == ["7"]
    assert p.info(B, "t").tableInfo.rowsCount == 1
