"""Sharing over the driver protocol, once over gRPC and once over the bridge: ShareBucket answers
bucketShareRoleName "<project>/<bucket>", LinkBucket takes it as sourceShareRoleName and answers the
linked bucket's object name, reads through the link (ObjectInfo DATABASE/SCHEMA/TABLE, preview,
export, ListSchemas-style listing) see the source's current data, writes are refused, Unlink and
Unshare remove them, and Grant/RevokeBucketAccessToReadOnlyRole decide whether workspaces read it.

The access catalogue (test_access_catalogue) makes more than twenty attempts, by REST, by the
driver and by workspace SQL, to reach a bucket that was never shared with the project, or whose
share or link was removed; every one must fail and none may show the source's rows."""

import uuid

import grpc
import pytest
import requests

from driver_lib import REQUEST_TIMEOUT, bucket_pb2, expect_error, info_pb2, project_pb2, table_pb2
from driver_lib import DriverError

S = grpc.StatusCode
T = table_pb2.TableColumnShared
X = table_pb2.ImportExportShared
CSV = table_pb2.TableImportFromFileCommand.CsvTypeOptions
B = "in.c-main"
L = "in.c-linked"
SECRET = "s3cr3t-row"


class Project:
    def __init__(self, server, driver, pid):
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

    def import_cmd(self, bucket, table, name, incremental=False):
        cmd = table_pb2.TableImportFromFileCommand(
            fileProvider=X.S3, fileFormat=X.CSV,
            filePath=X.FilePath(root="r", path="in", fileName=name.split("/", 1)[1]),
            destination=X.Table(path=[bucket], tableName=table),
            importOptions=X.ImportOptions(timestampColumn="_timestamp", numberOfIgnoredLines=1,
                                          importType=X.ImportOptions.INCREMENTAL if incremental else X.ImportOptions.FULL))
        cmd.formatTypeOptions.Pack(CSV(delimiter=",", enclosure='"'))
        return cmd

    def load(self, bucket, table, data, incremental=False):
        return self.run(self.import_cmd(bucket, table, self.upload(data), incremental), table_pb2.TableImportResponse)

    def info(self, path, kind):
        return self.run(info_pb2.ObjectInfoCommand(path=path, expectedObjectType=kind), info_pb2.ObjectInfoResponse)

    def preview(self, bucket, table):
        resp = self.run(table_pb2.PreviewTableCommand(path=[bucket], tableName=table), table_pb2.PreviewTableResponse)
        return sorted([c.value.string_value for c in row.columns] for row in resp.rows)


def make(server, driver):
    p1, p2, p3 = (Project(server, driver, f"{pfx}{uuid.uuid4().hex[:6]}") for pfx in ("a", "b", "c"))
    p1.run(table_pb2.CreateTableCommand(path=[B], tableName="t", columns=[T(name="id"), T(name="v")],
                                        primaryKeysNames=["id"]), info_pb2.ObjectInfoResponse)
    p1.load(B, "t", f'"id","v"\n"1","{SECRET}"\n"2","b"\n'.encode())
    return p1, p2, p3


def share(p):
    return p.run(bucket_pb2.ShareBucketCommand(sourceBucketObjectName=B, sourceProjectId=p.pid),
                 bucket_pb2.ShareBucketResponse).bucketShareRoleName


def link(p, role, bucket=L):
    return p.run(bucket_pb2.LinkBucketCommand(targetProjectId=p.pid, targetBucketId=bucket, sourceShareRoleName=role),
                 bucket_pb2.LinkedBucketResponse).linkedBucketObjectName


def test_share_link_read_unlink(server, driver):
    p1, p2, _ = make(server, driver)
    role = share(p1)
    assert role == f"{p1.pid}/{B}"
    assert link(p2, role) == L
    # ObjectInfo: the database lists the linked bucket, the schema its tables, the table its info
    db = p2.info([], info_pb2.DATABASE)
    assert [o.objectName for o in db.databaseInfo.objects] == sorted([B, L])
    sc = p2.info([L], info_pb2.SCHEMA)
    assert [o.objectName for o in sc.schemaInfo.objects] == ["t"]
    ti = p2.info([L, "t"], info_pb2.TABLE).tableInfo
    assert list(ti.path) == [L] and ti.tableName == "t" and ti.rowsCount == 2 and list(ti.primaryKeysNames) == ["id"]
    assert p2.preview(L, "t") == [["1", SECRET], ["2", "b"]]
    # a linked table is a source of TableImportFromTable (filters apply)
    p2.run(table_pb2.CreateTableCommand(path=[B], tableName="copy", columns=[T(name="id"), T(name="v")]),
           info_pb2.ObjectInfoResponse)
    imp = table_pb2.TableImportFromTableCommand(
        source=table_pb2.TableImportFromTableCommand.SourceTableMapping(
            path=[L], tableName="t",
            whereFilters=[X.TableWhereFilter(columnsName="id", operator=X.TableWhereFilter.eq, values=["1"])]),
        destination=X.Table(path=[B], tableName="copy"),
        importOptions=X.ImportOptions(importType=X.ImportOptions.FULL))
    assert p2.run(imp, table_pb2.TableImportResponse).tableRowsCount == 1
    assert p2.preview(B, "copy") == [["1", SECRET]]
    # changes of the source show at once
    p1.load(B, "t", b'"id","v"\n"3","c"\n', incremental=True)
    p1.run(table_pb2.AddColumnCommand(path=[B], tableName="t", columnDefinition=T(name="extra", nullable=True)), info_pb2.ObjectInfoResponse)
    ti = p2.info([L, "t"], info_pb2.TABLE).tableInfo
    assert ti.rowsCount == 3 and [c.name for c in ti.columns] == ["id", "v", "extra"]
    # writes through the link are refused, naming it
    name = p2.upload(b'"id","v"\n"9","z"\n')
    for cmd in (p2.import_cmd(L, "t", name), p2.import_cmd(L, "t", name, incremental=True),
                table_pb2.DropTableCommand(path=[L], tableName="t"),
                table_pb2.AddColumnCommand(path=[L], tableName="t", columnDefinition=T(name="x")),
                table_pb2.DropColumnCommand(path=[L], tableName="t", columnName="v"),
                table_pb2.DeleteTableRowsCommand(path=[L], tableName="t"),
                table_pb2.CreateTableCommand(path=[L], tableName="n", columns=[T(name="a")]),
                bucket_pb2.DropBucketCommand(bucketObjectName=L)):
        expect_error(lambda: p2.run(cmd), S.PERMISSION_DENIED, mentions=[L])
    # the source cannot drop the linked bucket, nor unshare it
    expect_error(lambda: p1.run(bucket_pb2.DropBucketCommand(bucketObjectName=B, isCascade=True)),
                 S.FAILED_PRECONDITION, mentions=[p2.pid])
    expect_error(lambda: p1.run(table_pb2.DropTableCommand(path=[B], tableName="t")), S.FAILED_PRECONDITION,
                 mentions=[p2.pid])
    expect_error(lambda: p1.run(bucket_pb2.UnshareBucketCommand(bucketObjectName=B, bucketShareRoleName=role)),
                 S.FAILED_PRECONDITION, mentions=[p2.pid])
    assert p1.preview(B, "t")[0][:2] == ["1", SECRET]
    # unlink, unshare, drop
    p2.run(bucket_pb2.UnlinkBucketCommand(bucketObjectName=L))
    expect_error(lambda: p2.info([L, "t"], info_pb2.TABLE), S.NOT_FOUND)
    p1.run(bucket_pb2.UnshareBucketCommand(bucketObjectName=B, bucketShareRoleName=role))
    p1.run(bucket_pb2.DropBucketCommand(bucketObjectName=B, isCascade=True))


def test_readonly_role(server, driver):
    p1, p2, _ = make(server, driver)
    link(p2, share(p1))
    r = p2.run(bucket_pb2.GrantBucketAccessToReadOnlyRoleCommand(path=[L], projectReadOnlyRoleName="ro"),
               bucket_pb2.GrantBucketAccessToReadOnlyRoleResponse)
    assert r.createBucketObjectName == L and r.sourceListing == f"{p1.pid}/{B}"
    assert r.sourceListingSharingAllowed is False
    own = p1.run(bucket_pb2.GrantBucketAccessToReadOnlyRoleCommand(path=[B]),
                 bucket_pb2.GrantBucketAccessToReadOnlyRoleResponse)
    assert own.createBucketObjectName == B and own.sourceListing == "" and own.sourceListingSharingAllowed is True
    ws = p2.rest("POST", "/workspaces", json={"id": "w"})
    assert ws.status_code == 201, ws.text
    q = {"sql": f'SELECT count(*) FROM "{L}"."t"'}
    assert p2.rest("POST", "/workspaces/w/query", json=q).json()["rows"] == [["2"]]
    p2.run(bucket_pb2.RevokeBucketAccessFromReadOnlyRoleCommand(bucketObjectName=L, projectReadOnlyRoleName="ro"))
    r = p2.rest("POST", "/workspaces/w/query", json=q)
    assert r.status_code == 400 and "read-only role" in r.json()["error"]["message"], r.text
    # the project's key still reads it
    assert p2.preview(L, "t")[0] == ["1", SECRET]
    expect_error(lambda: p2.run(bucket_pb2.RevokeBucketAccessFromReadOnlyRoleCommand()), S.INVALID_ARGUMENT,
                 mentions=["bucketObjectName"])
    expect_error(lambda: p2.run(bucket_pb2.GrantBucketAccessToReadOnlyRoleCommand(path=["in.c-none"])), S.NOT_FOUND)


def sharing(p):
    """The REST view of p's bucket B's share: None when not shared."""
    r = p.rest("GET", f"/buckets/{B}")
    assert r.status_code == 200, r.text
    return r.json().get("sharing")


def subscriber(p, listing, member, grant=True):
    cls = bucket_pb2.GrantExternalBucketSubscriberCommand if grant else bucket_pb2.RevokeExternalBucketSubscriberCommand
    return p.run(cls(listingName=listing, subscriberServiceAccountEmail=member))


def test_external_bucket_subscribers(server, driver):
    """Grant/RevokeExternalBucketSubscriber add and remove one project among those a share lets link the
    bucket: the listing is "<project>/<bucket>", the subscriber a project id."""
    p1, p2, p3 = make(server, driver)
    listing = f"{p1.pid}/{B}"
    assert sharing(p1) is None
    # granting on a bucket not shared yet shares it with that project alone
    subscriber(p1, listing, p2.pid)
    assert sharing(p1)["type"] == "selected-projects" and sharing(p1)["projects"] == [p2.pid]
    expect_error(lambda: link(p3, listing), S.PERMISSION_DENIED, mentions=["not shared"])
    assert link(p2, listing) == L and p2.preview(L, "t")[0] == ["1", SECRET]
    subscriber(p1, listing, p2.pid)  # granted already: nothing changes
    subscriber(p1, listing, p3.pid)
    assert sorted(sharing(p1)["projects"]) == sorted([p2.pid, p3.pid])
    assert link(p3, listing) == L
    # revoking a project that links the bucket is refused and changes nothing
    expect_error(lambda: subscriber(p1, listing, p2.pid, grant=False), S.FAILED_PRECONDITION,
                 mentions=[p2.pid, "unlink"])
    assert sorted(sharing(p1)["projects"]) == sorted([p2.pid, p3.pid]) and p2.preview(L, "t")[0] == ["1", SECRET]
    p2.run(bucket_pb2.UnlinkBucketCommand(bucketObjectName=L))
    subscriber(p1, listing, p2.pid, grant=False)
    assert sharing(p1)["projects"] == [p3.pid]
    expect_error(lambda: link(p2, listing), S.PERMISSION_DENIED, mentions=["not shared"])
    assert p3.preview(L, "t")[0] == ["1", SECRET]
    subscriber(p1, listing, p2.pid, grant=False)  # not a subscriber: nothing changes
    assert sharing(p1)["projects"] == [p3.pid]
    # the last subscriber revoked ends the share; a revoke then finds no listing, a grant starts one again
    p3.run(bucket_pb2.UnlinkBucketCommand(bucketObjectName=L))
    subscriber(p1, listing, p3.pid, grant=False)
    assert sharing(p1) is None
    expect_error(lambda: subscriber(p1, listing, p3.pid, grant=False), S.NOT_FOUND, mentions=[B, "not shared"])
    subscriber(p1, listing, p3.pid)
    assert sharing(p1)["projects"] == [p3.pid]
    # a share with the whole organization includes every project: granting changes nothing, revoking is refused
    share(p1)
    subscriber(p1, listing, p2.pid)
    assert sharing(p1)["type"] == "organization"
    expect_error(lambda: subscriber(p1, listing, p2.pid, grant=False), S.FAILED_PRECONDITION,
                 mentions=["organization"])
    assert sharing(p1)["type"] == "organization"


def test_external_bucket_subscribers_bad_input(server, driver):
    """Each bad listing or subscriber is refused naming the problem and leaves the share as it was."""
    p1, p2, _ = make(server, driver)
    listing = f"{p1.pid}/{B}"
    subscriber(p1, listing, p2.pid)
    before = sharing(p1)
    for grant in (True, False):
        name = "GrantExternalBucketSubscriberCommand" if grant else "RevokeExternalBucketSubscriberCommand"
        for lst, member, status, mentions in (
                ("garbage", p2.pid, S.INVALID_ARGUMENT, ["listingName"]),
                ("", p2.pid, S.INVALID_ARGUMENT, ["listingName"]),
                (listing, "", S.INVALID_ARGUMENT, [name, "subscriberServiceAccountEmail"]),
                (listing, "not a project!", S.INVALID_ARGUMENT, ["subscriberServiceAccountEmail"]),
                (f"{p1.pid}/in.c-none", p2.pid, S.NOT_FOUND, ["in.c-none"])):
            expect_error(lambda: subscriber(p1, lst, member, grant), status, mentions=mentions)
        # another project's key cannot change p1's share, nor can p2 name itself on it
        expect_error(lambda: subscriber(p2, listing, p2.pid, grant), S.PERMISSION_DENIED)
    expect_error(lambda: subscriber(p1, listing, "nobody"), S.NOT_FOUND, mentions=["nobody"])
    expect_error(lambda: subscriber(p1, listing, p1.pid), S.INVALID_ARGUMENT, mentions=["itself"])
    # a linked bucket is no listing of its own
    link(p2, listing)
    expect_error(lambda: subscriber(p2, f"{p2.pid}/{L}", p1.pid), S.INVALID_ARGUMENT, mentions=["linked"])
    assert sharing(p1) == {**before, "linked_by": [{"project": p2.pid, "bucket": L}]}


def test_external_bucket_sharing_status(server, driver):
    """BigQueryExternalBucketSharingStatus: a linked bucket answers the listing it reads, not shareable
    again; an own bucket no listing, shareable."""
    p1, p2, _ = make(server, driver)
    link(p2, share(p1))
    status = bucket_pb2.BigQueryExternalBucketSharingStatusCommand
    r = p2.run(status(destinationDatasetName=L.upper()), bucket_pb2.BigQueryExternalBucketSharingStatusResponse)
    assert r.sourceListing == f"{p1.pid}/{B}" and r.sourceListingSharingAllowed is False
    r = p1.run(status(destinationDatasetName=B), bucket_pb2.BigQueryExternalBucketSharingStatusResponse)
    assert r.sourceListing == "" and r.sourceListingSharingAllowed is True
    expect_error(lambda: p2.run(status()), S.INVALID_ARGUMENT, mentions=["destinationDatasetName"])
    expect_error(lambda: p2.run(status(destinationDatasetName="in.c-none")), S.NOT_FOUND, mentions=["in.c-none"])
    # after the unlink the bucket id is gone from p2
    p2.run(bucket_pb2.UnlinkBucketCommand(bucketObjectName=L))
    expect_error(lambda: p2.run(status(destinationDatasetName=L)), S.NOT_FOUND, mentions=[L])


def test_bad_input(server, driver):
    p1, p2, _ = make(server, driver)
    for cmd, field in ((bucket_pb2.ShareBucketCommand(), "sourceBucketObjectName"),
                       (bucket_pb2.LinkBucketCommand(sourceShareRoleName=f"{p1.pid}/{B}"), "targetBucketId"),
                       (bucket_pb2.LinkBucketCommand(targetBucketId=L, sourceShareRoleName="garbage"),
                        "sourceShareRoleName"),
                       (bucket_pb2.UnlinkBucketCommand(), "bucketObjectName"),
                       (bucket_pb2.UnshareBucketCommand(), "bucketObjectName")):
        expect_error(lambda: p2.run(cmd), S.INVALID_ARGUMENT, mentions=[field])
    # not shared: refused, and the same for a bucket or project that does not exist
    for role in (f"{p1.pid}/{B}", f"{p1.pid}/in.c-none", f"nobody/{B}"):
        expect_error(lambda: link(p2, role), S.PERMISSION_DENIED, mentions=["not shared"])
    # another project's key cannot share p1's bucket
    expect_error(lambda: p2.run(bucket_pb2.ShareBucketCommand(sourceBucketObjectName=B, sourceProjectId=p1.pid)),
                 S.PERMISSION_DENIED)
    expect_error(lambda: p2.run(bucket_pb2.UnlinkBucketCommand(bucketObjectName=L)), S.NOT_FOUND, mentions=[L])


def test_access_catalogue(server, driver):
    """A project key reaches no bucket that is not shared with its project, by any route."""
    p1, p2, p3 = make(server, driver)
    role = share(p1)
    link(p2, role)
    # p3 links a bucket that is later revoked; and p3 tries p1's bucket without any link
    link(p3, role, bucket="in.c-gone")
    p3.rest("POST", "/workspaces", json={"id": "w3"})
    view = p3.rest("POST", "/workspaces/w3/load",
                   json={"source": {"bucket": "in.c-gone", "table": "t"}, "destination": "v", "type": "view"})
    assert view.status_code == 200, view.text
    p3.run(bucket_pb2.UnlinkBucketCommand(bucketObjectName="in.c-gone"))
    ws3 = "/workspaces/w3"
    base = f"/projects/{p1.pid}/buckets/{B}/tables/t"
    foreign = requests.Session()
    foreign.headers["Authorization"] = f"Bearer {p3.key}"

    def rest_abs(method, path, **kw):
        return foreign.request(method, f"{server.url}{path}", timeout=REQUEST_TIMEOUT, **kw)

    p3.run(table_pb2.CreateTableCommand(path=[B], tableName="mine", columns=[T(name="id"), T(name="v")]),
           info_pb2.ObjectInfoResponse)
    rest_attempts = [
        ("GET", base, {}), ("GET", base + "/preview", {}), ("POST", base + "/export", {"json": {}}),
        ("POST", base + "/profile", {"json": {}}), ("GET", f"/projects/{p1.pid}/buckets", {}),
        ("GET", f"/projects/{p1.pid}/buckets/{B}/tables", {}),
        ("POST", f"/projects/{p3.pid}/buckets/in.c-x/link", {"json": {"source_project": p1.pid, "source_bucket": "in.c-secret"}}),
        ("GET", f"/projects/{p3.pid}/buckets/in.c-gone/tables/t", {}),
        ("GET", f"/projects/{p3.pid}/buckets/in.c-gone/tables/t/preview", {}),
        ("POST", f"/projects/{p3.pid}/buckets/{B}/tables/mine/import/table",
         {"json": {"source": {"bucket": "in.c-gone", "table": "t"}}}),
        ("POST", f"/projects/{p3.pid}/buckets/{B}/tables/mine/import/table",
         {"json": {"source": {"bucket": L, "table": "t"}}}),
        ("POST", f"/projects/{p3.pid}/workspaces/w3/load", {"json": {"source": {"bucket": "in.c-gone", "table": "t"},
                                                                       "destination": "x"}}),
        ("GET", f"/projects/{p3.pid}/branches/default/buckets/in.c-gone/tables/t", {}),
    ]
    sql_attempts = [
        'SELECT * FROM "in.c-gone"."t"',
        f'SELECT * FROM "{L}"."t"',
        "SELECT * FROM v",
        f"SELECT * FROM ds_storage_scan('{B}', 't', project := '{p1.pid}')",
        f"SELECT * FROM ds_storage_scan('in.c-gone', 't')",
        f"SELECT * FROM ds_storage_scan('{L}', 't', project := '{p2.pid}')",
    ]
    driver_attempts = [
        table_pb2.PreviewTableCommand(path=["in.c-gone"], tableName="t"),
        info_pb2.ObjectInfoCommand(path=["in.c-gone", "t"], expectedObjectType=info_pb2.TABLE),
        info_pb2.ObjectInfoCommand(path=["in.c-gone"], expectedObjectType=info_pb2.SCHEMA),
        info_pb2.ObjectInfoCommand(path=[L, "t"], expectedObjectType=info_pb2.TABLE),
        table_pb2.PreviewTableCommand(path=[L], tableName="t"),
        table_pb2.TableImportFromTableCommand(
            source=table_pb2.TableImportFromTableCommand.SourceTableMapping(path=["in.c-gone"], tableName="t"),
            destination=X.Table(path=[B], tableName="mine"),
            importOptions=X.ImportOptions(importType=X.ImportOptions.INCREMENTAL)),
        bucket_pb2.LinkBucketCommand(targetProjectId=p3.pid, targetBucketId="in.c-again",
                                     sourceShareRoleName=f"{p1.pid}/in.c-other"),
    ]
    n = 0
    for method, path, kw in rest_attempts:
        r = rest_abs(method, path, **kw)
        assert r.status_code in (403, 404), f"{method} {path}: {r.status_code} {r.text}"
        assert SECRET not in r.text
        n += 1
    for sql in sql_attempts:
        r = p3.rest("POST", ws3 + "/query", json={"sql": sql})
        assert r.status_code == 400, f"{sql}: {r.status_code} {r.text}"
        assert SECRET not in r.text
        n += 1
    for cmd in driver_attempts:
        try:
            p3.run(cmd)
        except DriverError as e:
            assert e.code in (S.NOT_FOUND, S.PERMISSION_DENIED), f"{type(cmd).__name__}: {e}"
            assert SECRET not in e.message
        else:
            raise AssertionError(f"{type(cmd).__name__} succeeded")
        n += 1
    # revoked share: p2's link stops at once
    r = requests.delete(f"{server.url}/projects/{p1.pid}/buckets/{B}/share", params={"force": "true"},
                        headers={"Authorization": f"Bearer {p1.key}"}, timeout=REQUEST_TIMEOUT)
    assert r.status_code == 204, r.text
    for cmd in (table_pb2.PreviewTableCommand(path=[L], tableName="t"),
                info_pb2.ObjectInfoCommand(path=[L, "t"], expectedObjectType=info_pb2.TABLE)):
        expect_error(lambda: p2.run(cmd), S.PERMISSION_DENIED, mentions=["no longer shares"])
        n += 1
    assert n >= 20
    # nothing of p1 changed
    assert p1.preview(B, "t") == [["1", SECRET], ["2", "b"]]
