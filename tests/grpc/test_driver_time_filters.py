"""changeSince / changeUntil over the driver protocol (gRPC and the bridge) take the same forms as REST:
unix seconds, ISO 8601 with zones, and Keboola's relative "-15 minutes" / "-2 hours" / "-7 days".
The rows' _timestamp values are set through REST (timestamp_mode from_source), so the expected rows
are known exactly."""

import datetime as dt

import requests

from driver_lib import REQUEST_TIMEOUT, project_pb2, table_pb2

X = table_pb2.ImportExportShared

BUCKET = "in.c-main"
FMT = "%Y-%m-%d %H:%M:%S"


def rest(server, key, method, path, **kw):
    r = requests.request(method, f"{server.url}{path}", headers={"Authorization": f"Bearer {key}"},
                         timeout=REQUEST_TIMEOUT, **kw)
    assert r.status_code < 300, r.text
    return r.json() if r.content else None


def test_relative_and_zoned_forms(server, driver):
    key = driver.run(project_pb2.CreateProjectCommand(projectId="tf"), server.admin_key,
                     response_type=project_pb2.CreateProjectResponse).projectPassword
    rest(server, key, "POST", "/projects/tf/buckets", json={"stage": "in", "name": "c-main"})
    rest(server, key, "POST", f"/projects/tf/buckets/{BUCKET}/tables", json={"name": "t", "columns": [{"name": "id"}]})
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0, tzinfo=None)
    ages = {"1": dt.timedelta(days=10), "2": dt.timedelta(hours=3), "3": dt.timedelta(minutes=20),
            "4": dt.timedelta(minutes=1)}
    data = "id,_timestamp\n" + "".join(f"{i},{(now - a).strftime(FMT)}\n" for i, a in ages.items())
    f = rest(server, key, "POST", "/projects/tf/files", params={"name": "in/t.csv"}, data=data.encode())
    rest(server, key, "POST", f"/projects/tf/buckets/{BUCKET}/tables/t/import/file",
         json={"file_id": f["id"], "timestamp_mode": "from_source"})

    def preview(**filters):
        resp = driver.run(table_pb2.PreviewTableCommand(path=[BUCKET], tableName="t", columns=["id"],
                                                        filters=X.ExportFilters(**filters)), key, "tf",
                          table_pb2.PreviewTableResponse)
        return sorted(r.columns[0].value.string_value for r in resp.rows)

    assert preview(changeSince="-15 minutes") == ["4"]
    assert preview(changeSince="-2 hours") == ["3", "4"]
    assert preview(changeSince="-7 days") == ["2", "3", "4"]
    assert preview(changeSince="-1 day", changeUntil="-15 minutes") == ["2", "3"]
    cut = now - dt.timedelta(hours=1)
    assert preview(changeSince=(cut + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00")) == ["3", "4"]
    assert preview(changeUntil=str(int(cut.replace(tzinfo=dt.timezone.utc).timestamp()))) == ["1", "2"]
    resp = driver.run(table_pb2.DeleteTableRowsCommand(path=[BUCKET], tableName="t", changeSince="-2 hours"), key,
                      "tf", table_pb2.DeleteTableRowsResponse)
    assert resp.deletedRowsCount == 2
    assert preview() == ["1", "2"]
