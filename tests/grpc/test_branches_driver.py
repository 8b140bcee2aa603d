"""Dev branches over the driver protocol, once over gRPC and once over the bridge, with the
generated Python stubs: CreateDevBranch answers devBranchReadOnlyRoleName, CreateBucket with
branchId creates a bucket only in that branch and answers its path "<branch>/<bucket>", commands
on "<branch>/<bucket>" paths read through to main and copy on first write (main unchanged, checked
through REST), and DropDevBranch with the role name removes the branch."""

import uuid

import grpc
import pytest
import requests

from driver_lib import REQUEST_TIMEOUT, bucket_pb2, expect_error, info_pb2, project_pb2, table_pb2

S = grpc.StatusCode
T = table_pb2.TableColumnShared
X = table_pb2.ImportExportShared
CSV = table_pb2.TableImportFromFileCommand.CsvTypeOptions
B = "in.c-main"


class Project:
    def __init__(self, server, driver, pid="d1"):
        self.server, self.driver, self.pid = server, driver, pid
        self.key = driver.run(project_pb2.CreateProjectCommand(projectId=pid), server.admin_key,
                              response_type=project_pb2.CreateProjectResponse).projectPassword
        driver.run(bucket_pb2.CreateBucketCommand(bucketId=B), self.key, pid, bucket_pb2.CreateBucketResponse)
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.key}"

    def run(self, command, response_type=None):
        return self.driver.run(command, self.key, self.pid, response_type)

    def rest(self, method, path, **kw):
        return self.http.request(method, f"{self.server.url}/projects/{self.pid}{path}", timeout=REQUEST_TIMEOUT, **kw)

    def upload(self, data):
        name = f"in/{uuid.uuid4().hex}.csv"
        r = self.rest("POST", "/files", params={"name": name}, data=data)
        assert r.status_code == 201, r.text
        return name

    def load(self, bucket_path, table, data, incremental=False):
        name = self.upload(data)
        cmd = table_pb2.TableImportFromFileCommand(
            fileProvider=X.S3, fileFormat=X.CSV,
            filePath=X.FilePath(root="r", path="in", fileName=name.split("/", 1)[1]),
            destination=X.Table(path=[bucket_path], tableName=table),
            importOptions=X.ImportOptions(timestampColumn="_timestamp", numberOfIgnoredLines=1,
                                          importType=X.ImportOptions.INCREMENTAL if incremental else X.ImportOptions.FULL))
        cmd.formatTypeOptions.Pack(CSV(delimiter=",", enclosure='"'))
        return self.run(cmd, table_pb2.TableImportResponse)

    def info(self, bucket_path, table):
        return self.run(info_pb2.ObjectInfoCommand(path=[bucket_path, table], expectedObjectType=info_pb2.TABLE),
                        info_pb2.ObjectInfoResponse)

    def ids(self, bucket_path, table):
        resp = self.run(table_pb2.PreviewTableCommand(path=[bucket_path], tableName=table),
                        table_pb2.PreviewTableResponse)
        return sorted(row.columns[0].value.string_value for row in resp.rows)

    def main_digest(self):
        """Every main table's info and rows, through REST."""
        out = {}
        for t in self.rest("GET", f"/buckets/{B}/tables").json()["items"]:
            info = self.rest("GET", f"/buckets/{B}/tables/{t['name']}").json()
            rows = self.rest("GET", f"/buckets/{B}/tables/{t['name']}/preview", params={"limit": 1000}).json()["rows"]
            out[t["name"]] = (info["columns"], info["rows"], info["last_change_at"], sorted(map(tuple, rows)))
        return out


@pytest.fixture
def proj(server, driver):
    p = Project(server, driver)
    p.run(table_pb2.CreateTableCommand(path=[B], tableName="t", columns=[T(name="id"), T(name="v")],
                                       primaryKeysNames=["id"]), info_pb2.ObjectInfoResponse)
    p.load(B, "t", b'"id","v"\n"1","a"\n"2","b"\n')
    return p


def create_branch(p, br):
    r = p.run(project_pb2.CreateDevBranchCommand(projectId=p.pid, branchId=br), project_pb2.CreateDevBranchResponse)
    assert r.devBranchReadOnlyRoleName == f"{p.pid}/{br}"
    return r.devBranchReadOnlyRoleName


def test_dev_branch_lifecycle_and_branch_bucket(proj):
    p = proj
    role = create_branch(p, "123")
    assert [b["id"] for b in p.rest("GET", "/branches").json()["items"]] == ["123"]
    expect_error(lambda: create_branch(p, "123"), S.ALREADY_EXISTS, mentions=["123"])
    # CreateBucket with branchId: a bucket of that branch only, path "<branch>/<bucket>"
    r = p.run(bucket_pb2.CreateBucketCommand(bucketId="out.c-dev", branchId="123", isBranchDefault=False),
              bucket_pb2.CreateBucketResponse)
    assert list(r.path) == ["123/out.c-dev"] and r.createBucketObjectName == "123/out.c-dev"
    # isBranchDefault: the default branch is main
    r = p.run(bucket_pb2.CreateBucketCommand(bucketId="out.c-prod", branchId="1", isBranchDefault=True),
              bucket_pb2.CreateBucketResponse)
    assert list(r.path) == ["out.c-prod"]
    assert sorted(b["id"] for b in p.rest("GET", "/buckets").json()["items"]) == [B, "out.c-prod"]
    assert sorted(b["id"] for b in p.rest("GET", "/branches/123/buckets").json()["items"]) == [B, "out.c-dev", "out.c-prod"]
    info = p.run(table_pb2.CreateTableCommand(path=["123/out.c-dev"], tableName="n", columns=[T(name="a")]),
                 info_pb2.ObjectInfoResponse)
    assert list(info.tableInfo.path) == ["123/out.c-dev"]
    expect_error(lambda: p.info("out.c-dev", "n"), S.NOT_FOUND)
    schema = p.run(info_pb2.ObjectInfoCommand(path=["123/out.c-dev"], expectedObjectType=info_pb2.SCHEMA),
                   info_pb2.ObjectInfoResponse)
    assert [o.objectName for o in schema.schemaInfo.objects] == ["n"]
    # a branch that does not exist, and two branches in one command
    expect_error(lambda: p.info("nope/" + B, "t"), S.NOT_FOUND, mentions=["nope"])
    expect_error(lambda: p.run(table_pb2.DeleteTableRowsCommand(path=["123/" + B], tableName="t", whereRefTableFilters=[
        table_pb2.DeleteTableRowsCommand.WhereRefTableFilter(column="id", refPath=["other/" + B], refTable="t",
                                                             refColumn="id")])),
        S.INVALID_ARGUMENT, mentions=["branch"])
    # DropDevBranch with the role name CreateDevBranch answered
    p.run(project_pb2.DropDevBranchCommand(devBranchReadOnlyRoleName=role))
    assert p.rest("GET", "/branches").json()["items"] == []
    expect_error(lambda: p.info("123/out.c-dev", "n"), S.NOT_FOUND)
    expect_error(lambda: p.run(project_pb2.DropDevBranchCommand(devBranchReadOnlyRoleName=role)), S.NOT_FOUND)
    expect_error(lambda: p.run(project_pb2.DropDevBranchCommand(devBranchReadOnlyRoleName="garbage")),
                 S.INVALID_ARGUMENT, mentions=["devBranchReadOnlyRoleName"])


def test_branch_paths_read_through_and_copy_on_write(proj):
    p = proj
    create_branch(p, "7")
    before = p.main_digest()
    bp = "7/" + B
    info = p.info(bp, "t")
    assert list(info.path) == [bp, "t"] and info.tableInfo.rowsCount == 2
    assert p.ids(bp, "t") == ["1", "2"]
    # main changes: the branch reads them
    p.load(B, "t", b'"id","v"\n"3","c"\n', incremental=True)
    before = p.main_digest()
    assert p.ids(bp, "t") == ["1", "2", "3"]
    # writes in the branch: import, delete rows, add column
    r = p.load(bp, "t", b'"id","v"\n"9","z"\n', incremental=True)
    assert r.tableRowsCount == 4
    p.run(table_pb2.DeleteTableRowsCommand(path=[bp], tableName="t", whereFilters=[
        X.TableWhereFilter(columnsName="id", operator=X.TableWhereFilter.eq, values=["1"])]),
        table_pb2.DeleteTableRowsResponse)
    p.run(table_pb2.AddColumnCommand(path=[bp], tableName="t", columnDefinition=T(name="extra", nullable=True)),
          info_pb2.ObjectInfoResponse)
    assert p.ids(bp, "t") == ["2", "3", "9"]
    assert p.main_digest() == before, "a branch write changed main"
    assert p.ids(B, "t") == ["1", "2", "3"]
    src = {t["id"]: t["source"] for t in p.rest("GET", "/branches/7").json()["tables"]}
    assert src == {f"{B}.t": "branch"}
    # DropTable in the branch hides it there only
    p.run(table_pb2.DropTableCommand(path=[bp], tableName="t"))
    expect_error(lambda: p.info(bp, "t"), S.NOT_FOUND)
    assert p.info(B, "t").tableInfo.rowsCount == 3
    assert p.main_digest() == before


def database(p, path):
    resp = p.run(info_pb2.ObjectInfoCommand(path=path, expectedObjectType=info_pb2.DATABASE), info_pb2.ObjectInfoResponse)
    assert all(o.objectType == info_pb2.SCHEMA for o in resp.databaseInfo.objects)
    return sorted(o.objectName for o in resp.databaseInfo.objects)


def test_database_info_lists_a_branchs_view(proj):
    p = proj
    role = create_branch(p, "42")
    p.run(bucket_pb2.CreateBucketCommand(bucketId="out.c-dev", branchId="42"), bucket_pb2.CreateBucketResponse)
    # main: [] or [project]; the branch: [the role name, "<project>/<branch>"], buckets as "<branch>/<bucket>"
    assert database(p, []) == [B] and database(p, [p.pid]) == [B]
    assert database(p, [role]) == ["42/" + B, "42/out.c-dev"]
    # every listed path works as a SCHEMA path
    for path in database(p, [role]):
        p.run(info_pb2.ObjectInfoCommand(path=[path], expectedObjectType=info_pb2.SCHEMA), info_pb2.ObjectInfoResponse)
    expect_error(lambda: database(p, [f"{p.pid}/nope"]), S.NOT_FOUND, mentions=["nope"])
    expect_error(lambda: database(p, ["other/42"]), S.INVALID_ARGUMENT, mentions=["path"])
    expect_error(lambda: database(p, [f"{p.pid}/"]), S.INVALID_ARGUMENT, mentions=["path"])


def test_drop_bucket_of_main_in_a_branch(proj):
    p = proj
    role = create_branch(p, "5")
    bp = "5/" + B
    p.load(bp, "t", b'"id","v"\n"9","z"\n', incremental=True)  # the branch owns a copy of t
    before = p.main_digest()
    expect_error(lambda: p.run(bucket_pb2.DropBucketCommand(bucketObjectName=bp)), S.FAILED_PRECONDITION,
                 mentions=[B, "force"])
    p.run(bucket_pb2.DropBucketCommand(bucketObjectName=bp, isCascade=True))
    expect_error(lambda: p.info(bp, "t"), S.NOT_FOUND)
    expect_error(lambda: p.run(info_pb2.ObjectInfoCommand(path=[bp], expectedObjectType=info_pb2.SCHEMA)), S.NOT_FOUND)
    assert database(p, [role]) == []
    # main is unchanged, byte for byte, and still lists the bucket
    assert p.main_digest() == before
    assert database(p, []) == [B]
    assert p.ids(B, "t") == ["1", "2"]
