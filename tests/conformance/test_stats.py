"""Honest stats: after every kind of write, every place that reports a table's rows and bytes says
the same, on every backend.

The places: the import response (table_rows, table_bytes), GET table, the bucket's table list,
the project's stats (sums over its tables) and the driver protocol's ObjectInfo (rowsCount,
sizeBytes; DeleteTableRowsResponse's tableRowsCount and tableSizeBytes). The writes: full import,
incremental import, delete rows, add column, drop column, drop table. The figure is the table's stored bytes (docs/api.md); it is positive once the table holds
rows and grows when an incremental import adds rows.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "grpc"))

from conftest import backend_env  # noqa: E402
from driver_lib import Driver, GrpcServer, info_pb2, table_pb2  # noqa: E402
from e2e_lib import expect, server_factory_fixture  # noqa: E402
from helpers import Proj  # noqa: E402


@pytest.fixture
def grpc_server(tmp_path, pg, pg_db):
    factory = server_factory_fixture(tmp_path, GrpcServer)
    make = next(factory)
    yield make(env=backend_env(pg, pg_db))
    next(factory, None)


def figures(proj, driver, tables):
    """{table: (rows, bytes)} as GET table, the table list, ObjectInfo say (each must agree), and the
    project's stats (which must be the sums)."""
    listed = {t["name"]: t for t in expect(proj.api.get(f"{proj.base}/buckets/{proj.bucket}/tables"), 200)["items"]}
    assert sorted(listed) == sorted(tables), listed
    out = {}
    for name in tables:
        t = proj.table(name)
        got = (t["rows"], t["bytes"])
        assert (listed[name]["rows"], listed[name]["bytes"]) == got, f"{name}: list {listed[name]} vs GET {t}"
        info = driver.run(info_pb2.ObjectInfoCommand(path=[proj.bucket, name], expectedObjectType=info_pb2.TABLE),
                          proj.key, proj.pid, info_pb2.ObjectInfoResponse).tableInfo
        assert (info.rowsCount, info.sizeBytes) == got, f"{name}: ObjectInfo {info.rowsCount}/{info.sizeBytes} vs {got}"
        out[name] = got
    stats = expect(proj.api.get(proj.base), 200)["stats"]
    assert stats["tables"] == len(tables), stats
    assert stats["rows"] == sum(r for r, _ in out.values()), (stats, out)
    assert stats["bytes"] == sum(b for _, b in out.values()), (stats, out)
    return out


def test_every_place_agrees_after_every_write(grpc_server, backend):
    proj = Proj(grpc_server, grpc_server.api(), "p1", backend)
    proj.key = proj.api.key
    driver = Driver(grpc_server, "grpc")
    try:
        proj.create_table("t", ["id", "v"], primary_key=["id"])
        proj.create_table("other", ["a"])
        f = figures(proj, driver, ["t", "other"])
        assert f["t"][0] == 0 and f["other"][0] == 0, f

        res = proj.load("t", ["id", "v"], [[str(i), "x" * 20] for i in range(2000)])
        f = figures(proj, driver, ["t", "other"])
        assert (res["table_rows"], res["table_bytes"]) == f["t"] and f["t"][0] == 2000 and f["t"][1] > 0, (res, f)

        res = proj.load("t", ["id", "v"], [[str(i), "y" * 20] for i in range(1000, 6000)], incremental=True)
        g = figures(proj, driver, ["t", "other"])
        assert (res["table_rows"], res["table_bytes"]) == g["t"] and g["t"][0] == 6000, (res, g)
        assert g["t"][1] > f["t"][1], f"bytes did not grow with 4000 more rows: {f} -> {g}"

        proj.load("other", ["a"], [["1"], ["2"]])
        g = figures(proj, driver, ["t", "other"])
        assert g["other"][0] == 2 and g["other"][1] > 0, g

        # Delete rows over the driver protocol: its response carries the table's rows and bytes too.
        X = table_pb2.ImportExportShared
        resp = driver.run(table_pb2.DeleteTableRowsCommand(path=[proj.bucket], tableName="t", whereFilters=[
            X.TableWhereFilter(columnsName="id", operator=X.TableWhereFilter.lt, values=["3000"],
                               dataType=X.INTEGER)]), proj.key, proj.pid, table_pb2.DeleteTableRowsResponse)
        f = figures(proj, driver, ["t", "other"])
        assert resp.deletedRowsCount == 3000 and (resp.tableRowsCount, resp.tableSizeBytes) == f["t"], (resp, f)

        expect(proj.api.post(proj.tpath("t") + "/columns", {"name": "extra"}), 201)
        assert figures(proj, driver, ["t", "other"])["t"][0] == 3000
        r = proj.api.delete(proj.tpath("t") + "/columns/extra")
        assert r.status_code in (200, 204), r.text
        assert figures(proj, driver, ["t", "other"])["t"][0] == 3000

        assert proj.api.delete(proj.tpath("other")).status_code == 204
        assert figures(proj, driver, ["t"])["t"][0] == 3000
    finally:
        driver.close()
