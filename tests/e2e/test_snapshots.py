"""Snapshots (REST.md "Snapshots and time travel"; issue 14 items 1, 2, 3 and 5):

  - manual snapshots of a table or a whole bucket: create, list, get (rows, columns with types and
    primary key, size, when, who, why), delete, restore into a new table or over the original;
  - a snapshot is independent of later changes and survives the table's drop;
  - automatic snapshots before drop table, full load, delete of all rows and drop column, and their
    switches per project, bucket and table;
  - retention: automatic snapshots expire after DUCKSTORE_SNAPSHOT_RETENTION, manual ones after their
    expires_in; the sweep removes them from disk;
  - read keys are refused, bad input changes nothing, branches snapshot and restore their own view;
  - kill -9 while a snapshot is written or a restore runs leaves no half snapshot and no half table.
"""

import random
import time
from datetime import datetime, timezone

import pytest

from data_helpers import Proj, proj  # noqa: F401  (fixture)
from e2e_lib import expect, expect_error

COLS = [{"name": "id", "type": "INTEGER", "nullable": False},
        {"name": "name", "type": "VARCHAR"},
        {"name": "amount", "type": "DECIMAL(12,2)"},
        {"name": "seen", "type": "TIMESTAMP"}]
HDR = ["id", "name", "amount", "seen"]
ROWS = [["1", "Ann", "10.50", "2024-01-02 03:04:05"],
        ["2", "Bob", "-3.25", "2024-02-03 04:05:06"],
        ["3", "Cid", "", ""]]
ALL = ["id", "name", "amount", "seen", "_timestamp"]


def _orders(proj, name="orders"):
    proj.create_table(name, COLS, primary_key=["id"])
    proj.load_rows(name, HDR, ROWS, convert_empty_to_null=["amount", "seen"])
    return proj.snapshot(name)


def _snap(proj, table="orders", **extra):
    body = {"bucket": proj.bucket, "table": table}
    body.update(extra)
    return expect(proj.api.post(f"/projects/{proj.pid}/snapshots", body), 201)


def _list(proj):
    return expect(proj.api.get(f"/projects/{proj.pid}/snapshots"), 200)["items"]


def _restore(proj, sid, body=None, status=201):
    return expect(proj.api.post(f"/projects/{proj.pid}/snapshots/{sid}/restore", body or {}), status)


def _snap_dirs(proj):
    area = proj.server.data_dir / "snapshots" / f"project_{proj.pid}"
    return sorted(p.name for p in area.iterdir() if p.is_dir()) if area.exists() else []


def _autos(proj, trigger=None):
    return [s for s in _list(proj) if s["kind"] == "auto" and (trigger is None or s["trigger"] == trigger)]


def test_create_list_get_delete(proj):
    before = _orders(proj)
    s = _snap(proj, description="before the migration")
    assert s["bucket"] == proj.bucket and s["table"] == "orders" and s["kind"] == "manual"
    assert s["rows"] == 3 and s["bytes"] > 0 and s["description"] == "before the migration"
    assert s["reason"] == "manual" and s["created_by"]["key_id"] == "main" and s["expires_at"] is None
    assert s["created_at"].endswith("Z")
    assert [c["name"] for c in s["columns"]] == HDR
    assert [c["type"] for c in s["columns"]] == [c["type"] for c in before[0]["columns"]]
    assert s["columns"][0]["nullable"] is False and s["primary_key"] == ["id"]
    got = expect(proj.api.get(f"/projects/{proj.pid}/snapshots/{s['id']}"), 200)
    assert got == s
    assert [x["id"] for x in _list(proj)] == [s["id"]]
    assert _snap_dirs(proj) == [s["id"]]
    assert proj.api.delete(f"/projects/{proj.pid}/snapshots/{s['id']}").status_code == 204
    expect_error(proj.api.get(f"/projects/{proj.pid}/snapshots/{s['id']}"), 404, "not_found")
    expect_error(proj.api.delete(f"/projects/{proj.pid}/snapshots/{s['id']}"), 404, "not_found")
    assert _list(proj) == [] and _snap_dirs(proj) == []


def test_restore_new_and_over_original_independent_of_later_changes(proj):
    before = _orders(proj)
    s = _snap(proj)
    # Later changes: an upsert, a new row, a deleted row.
    proj.load_rows("orders", HDR, [["1", "Ann2", "1.00", ""], ["9", "New", "2.00", ""]], incremental=True,
                   convert_empty_to_null=["seen"])
    expect(proj.api.delete(proj.tpath("orders") + "/rows",
                           json_body={"where_filters": [{"column": "id", "operator": "eq", "values": ["2"]}]}), 200)
    changed = proj.snapshot("orders")
    assert changed[1] != before[1]
    # Into a new table: the snapshot's rows (with _timestamp), types and key.
    t = _restore(proj, s["id"], {"table": "orders_back"})
    assert t["name"] == "orders_back" and t["rows"] == 3 and t["primary_key"] == ["id"]
    info, rows = proj.snapshot("orders_back")
    assert rows == before[1]
    assert info["columns"] == before[0]["columns"]
    assert proj.snapshot("orders") == changed
    # Over the original: refused without overwrite, and nothing changes.
    expect_error(proj.api.post(f"/projects/{proj.pid}/snapshots/{s['id']}/restore", {}), 409, "already_exists",
                 mentions=["overwrite"])
    assert proj.snapshot("orders") == changed
    t = _restore(proj, s["id"], {"overwrite": True})
    assert t["name"] == "orders" and t["rows"] == 3
    assert proj.snapshot("orders")[1] == before[1]
    # The snapshot is still the same after being restored twice.
    assert expect(proj.api.get(f"/projects/{proj.pid}/snapshots/{s['id']}"), 200)["rows"] == 3


def test_snapshot_survives_drop_and_owner_restores(proj):
    before = _orders(proj)
    s = _snap(proj)
    assert proj.api.delete(proj.tpath("orders")).status_code == 204
    expect_error(proj.api.get(proj.tpath("orders")), 404, "not_found")
    _restore(proj, s["id"])
    assert proj.snapshot("orders")[1] == before[1]


def test_bucket_snapshot(proj):
    a = _orders(proj, "a")
    b = _orders(proj, "b")
    s = expect(proj.api.post(f"/projects/{proj.pid}/snapshots", {"bucket": proj.bucket}), 201)
    assert s["table"] is None and s["rows"] == 6 and sorted(t["name"] for t in s["tables"]) == ["a", "b"]
    for t in ("a", "b"):
        assert proj.api.delete(proj.tpath(t)).status_code == 204
    out = _restore(proj, s["id"])
    assert sorted(t["name"] for t in out["tables"]) == ["a", "b"]
    assert proj.snapshot("a")[1] == a[1] and proj.snapshot("b")[1] == b[1]


@pytest.mark.parametrize("op", ["drop_table", "truncate", "delete_all_rows", "drop_column"])
def test_auto_snapshot_before_destructive_operation(proj, op):
    before = _orders(proj)
    if op == "drop_table":
        assert proj.api.delete(proj.tpath("orders")).status_code == 204
    elif op == "truncate":
        proj.load_rows("orders", HDR, [["7", "Zed", "1.00", "2024-01-01 00:00:00"]])
        assert proj.table("orders")["rows"] == 1
    elif op == "delete_all_rows":
        assert expect(proj.api.delete(proj.tpath("orders") + "/rows", json_body={}), 200)["deleted_rows"] == 3
    else:
        assert proj.api.delete(proj.tpath("orders") + "/columns/amount").status_code in (200, 204)
    autos = _autos(proj)
    assert len(autos) == 1, autos
    a = autos[0]
    assert a["trigger"] == op and a["reason"] == f"auto before {op}" and a["rows"] == 3 and a["expires_at"]
    t = _restore(proj, a["id"], {"table": "recovered"})
    assert t["rows"] == 3
    info, rows = proj.snapshot("recovered")
    assert rows == before[1] and info["columns"] == before[0]["columns"]


def test_forced_bucket_delete_snapshots_every_table(proj):
    a = _orders(proj, "a")
    b = _orders(proj, "b")
    assert proj.api.delete(f"/projects/{proj.pid}/buckets/{proj.bucket}", params={"force": "true"}).status_code == 204
    autos = {s["table"]: s for s in _autos(proj, "drop_table")}
    assert sorted(autos) == ["a", "b"] and autos["a"]["rows"] == 3
    expect(proj.api.post(f"/projects/{proj.pid}/buckets", {"stage": "in", "name": proj.bucket.split(".c-", 1)[1]}), 201)
    _restore(proj, autos["a"]["id"])
    _restore(proj, autos["b"]["id"])
    assert proj.snapshot("a")[1] == a[1] and proj.snapshot("b")[1] == b[1]


def test_failed_destructive_operation_leaves_no_snapshot(proj):
    before = _orders(proj)
    f = proj.upload("in/bad.csv", "id,name,amount,seen\nnot-a-number,Bad,1.00,\n")
    r = proj.import_file_raw("orders", {"file_id": f["id"]})
    expect_error(r, 400, r.json()["error"]["code"])
    r = proj.api.delete(proj.tpath("orders") + "/columns/id")
    assert 400 <= r.status_code < 500, r.text
    assert _autos(proj) == [] and _snap_dirs(proj) == []
    assert proj.snapshot("orders") == before
    assert "removed: the operation it was taken for failed" in proj.server.log_text()


def test_no_auto_snapshot_for_filtered_delete_and_incremental_load(proj):
    _orders(proj)
    expect(proj.api.delete(proj.tpath("orders") + "/rows",
                           json_body={"where_filters": [{"column": "id", "operator": "eq", "values": ["1"]}]}), 200)
    proj.load_rows("orders", HDR, [["8", "X", "1.00", ""]], incremental=True, convert_empty_to_null=["seen"])
    assert _autos(proj) == []


def test_auto_snapshot_switches(proj):
    _orders(proj, "t1")
    _orders(proj, "t2")
    path = f"/projects/{proj.pid}/snapshot-settings"
    got = expect(proj.api.get(path), 200)
    assert got["project"]["auto"] == {"drop_table": True, "truncate": True, "delete_all_rows": True,
                                      "drop_column": True}
    # Project off: no snapshot.
    expect(proj.api.put(path, {"auto": {"drop_table": False, "delete_all_rows": False}}), 200)
    assert proj.api.delete(proj.tpath("t1")).status_code == 204
    assert _autos(proj) == []
    # The bucket turns it on again for its tables; one table turns it off.
    expect(proj.api.put(path, {"bucket": proj.bucket, "auto": {"delete_all_rows": True}}), 200)
    got = expect(proj.api.put(path, {"bucket": proj.bucket, "table": "t2", "auto": {"truncate": False}}), 200)
    assert got["project"]["auto"]["drop_table"] is False
    assert got["buckets"][proj.bucket]["delete_all_rows"] is True
    assert got["tables"][f"{proj.bucket}.t2"]["truncate"] is False
    expect(proj.api.delete(proj.tpath("t2") + "/rows", json_body={}), 200)
    assert [a["trigger"] for a in _autos(proj)] == ["delete_all_rows"]
    proj.load_rows("t2", HDR, ROWS[:1])
    proj.load_rows("t2", HDR, ROWS[1:2])
    assert [a["trigger"] for a in _autos(proj)] == ["delete_all_rows"]
    # null removes a level's own value: the table inherits again (on by default).
    got = expect(proj.api.put(path, {"bucket": proj.bucket, "table": "t2", "auto": {"truncate": None}}), 200)
    assert f"{proj.bucket}.t2" not in got["tables"]
    proj.load_rows("t2", HDR, ROWS)
    assert sorted(a["trigger"] for a in _autos(proj)) == ["delete_all_rows", "truncate"]
    # Bad switches: 400, nothing changes.
    for body in ({"auto": {"drop_everything": False}}, {"auto": {"truncate": "no"}}, {"auto": {}},
                 {"table": "t2", "auto": {"truncate": False}}, {"auto": {"truncate": False}, "x": 1}):
        expect_error(proj.api.put(path, body), 400, "invalid_argument")
    expect_error(proj.api.put(path, {"bucket": proj.bucket, "table": "nope", "auto": {"truncate": False}}), 404,
                 "not_found")
    assert expect(proj.api.get(path), 200) == got


def _secs(ts):
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def test_retention_with_short_ttl(server_factory):
    server = server_factory(env={"DUCKSTORE_SNAPSHOT_RETENTION": "6"})
    proj = Proj(server, server.api(), "ret")
    _orders(proj, "t")
    keep = _snap(proj, "t")
    short = _snap(proj, "t", expires_in=5)
    assert keep["expires_at"] is None
    assert _secs(short["expires_at"]) - _secs(short["created_at"]) == 5
    proj.load_rows("t", HDR, ROWS[:1])  # full load: an automatic snapshot, kept 6 s
    auto = _autos(proj, "truncate")
    assert len(auto) == 1 and _secs(auto[0]["expires_at"]) - _secs(auto[0]["created_at"]) == 6
    assert {keep["id"], short["id"], auto[0]["id"]} <= set(_snap_dirs(proj))
    deadline = time.time() + 20
    while time.time() < deadline and len(_snap_dirs(proj)) > 1:
        time.sleep(0.25)
    assert _snap_dirs(proj) == [keep["id"]], "the sweep did not remove the expired snapshots from disk"
    assert [s["id"] for s in _list(proj)] == [keep["id"]]
    expect_error(proj.api.get(f"/projects/{proj.pid}/snapshots/{auto[0]['id']}"), 404, "not_found")


def test_read_key_refused(proj):
    _orders(proj)
    s = _snap(proj)
    rk = expect(proj.api.post(f"/projects/{proj.pid}/keys", {"scope": "read"}), 201)["key"]
    ro = proj.api.with_key(rk)
    expect_error(ro.post(f"/projects/{proj.pid}/snapshots", {"bucket": proj.bucket, "table": "orders"}), 403,
                 "permission_denied")
    # Refused before the body is looked at: a read key never learns about its bad body instead.
    expect_error(ro.post(f"/projects/{proj.pid}/snapshots", {}), 403, "permission_denied")
    expect_error(ro.put(f"/projects/{proj.pid}/snapshot-settings", {}), 403, "permission_denied")
    expect_error(ro.post(f"/projects/{proj.pid}/snapshots/{s['id']}/restore", {"x": 1}), 403, "permission_denied")
    expect_error(ro.post(f"/projects/{proj.pid}/snapshots/{s['id']}/restore", {"table": "x"}), 403,
                 "permission_denied")
    expect_error(ro.delete(f"/projects/{proj.pid}/snapshots/{s['id']}"), 403, "permission_denied")
    expect_error(ro.put(f"/projects/{proj.pid}/snapshot-settings", {"auto": {"truncate": False}}), 403,
                 "permission_denied")
    assert [x["id"] for x in expect(ro.get(f"/projects/{proj.pid}/snapshots"), 200)["items"]] == [s["id"]]
    assert len(_list(proj)) == 1 and len(_snap_dirs(proj)) == 1
    expect_error(proj.api.get(proj.tpath("x")), 404, "not_found")


def test_bad_input_changes_nothing(proj):
    before = _orders(proj)
    base = f"/projects/{proj.pid}/snapshots"
    expect_error(proj.api.post(base, {"bucket": proj.bucket, "table": "nope"}), 404, "not_found", mentions=["nope"])
    expect_error(proj.api.post(base, {"bucket": "in.c-none", "table": "orders"}), 404, "not_found")
    for body in ({"table": "orders"}, {"bucket": proj.bucket, "table": "bad name!"},
                 {"bucket": "../etc", "table": "orders"}, {"bucket": proj.bucket, "table": "orders", "extra": 1},
                 {"bucket": proj.bucket, "table": "orders", "expires_in": -5},
                 {"bucket": proj.bucket, "table": "orders", "expires_in": "soon"}):
        expect_error(proj.api.post(base, body), 400, "invalid_argument")
    expect_error(proj.api.get(f"{base}/0123456789abcdef0123"), 404, "not_found")
    expect_error(proj.api.get(f"{base}/..%2F..%2Fetc"), 404, "not_found")
    expect_error(proj.api.post(f"{base}/nope/restore", {}), 404, "not_found")
    assert _list(proj) == [] and _snap_dirs(proj) == []
    s = _snap(proj)
    for body in ({"table": "bad name!"}, {"bucket": "x y"}, {"table": "t", "what": 1}):
        expect_error(proj.api.post(f"{base}/{s['id']}/restore", body), 400, "invalid_argument")
    expect_error(proj.api.post(f"{base}/{s['id']}/restore", {"bucket": "in.c-none", "table": "t"}), 404, "not_found")
    assert proj.snapshot("orders") == before
    assert [t["name"] for t in expect(proj.api.get(f"/projects/{proj.pid}/buckets/{proj.bucket}/tables"), 200)["items"]] == ["orders"]


def test_branch_snapshot_and_restore_are_the_branchs(proj):
    main_before = _orders(proj)
    expect(proj.api.post(f"/projects/{proj.pid}/branches", {"id": "dev"}), 201)
    br = f"/projects/{proj.pid}/branches/dev"
    bproj_path = f"{br}/buckets/{proj.bucket}/tables/orders"
    f = proj.upload("in/branch.csv", "id,name,amount,seen\n5,Br,1.00,2024-05-05 00:00:00\n")
    expect(proj.api.post(bproj_path + "/import/file", {"file_id": f["id"], "incremental": True}), 200)
    s = expect(proj.api.post(f"{br}/snapshots", {"bucket": proj.bucket, "table": "orders"}), 201)
    assert s["rows"] == 4 and s["branch"] == "dev"
    # A full load in the branch: its automatic snapshot is of the branch's 4 rows.
    f2 = proj.upload("in/branch2.csv", "id,name,amount,seen\n6,Only,1.00,2024-05-05 00:00:00\n")
    expect(proj.api.post(bproj_path + "/import/file", {"file_id": f2["id"]}), 200)
    autos = [a for a in _autos(proj, "truncate") if a["branch"] == "dev"]
    assert len(autos) == 1 and autos[0]["rows"] == 4
    # Restore in the branch over its table: the branch has 4 rows again, main keeps its 3.
    t = expect(proj.api.post(f"{br}/snapshots/{s['id']}/restore", {"overwrite": True}), 201)
    assert t["rows"] == 4
    assert expect(proj.api.get(bproj_path), 200)["rows"] == 4
    assert proj.snapshot("orders") == main_before


def _crash(server, hook, send):
    server.die_after_commit(hook, send)


def test_kill_during_snapshot_and_restore(proj):
    server = proj.server
    before = _orders(proj)
    # Killed after the Parquet and metadata were written, before the rename: no snapshot, no leftovers.
    _crash(server, "snapshot_files",
           lambda: proj.api.post(f"/projects/{proj.pid}/snapshots", {"bucket": proj.bucket, "table": "orders"}))
    assert _list(proj) == [] and _snap_dirs(proj) == []
    assert "removed unfinished snapshot" in server.log_text()
    s = _snap(proj)
    proj.load_rows("orders", HDR, [["4", "Dee", "4.00", ""]], incremental=True, convert_empty_to_null=["seen"])
    after = proj.snapshot("orders")
    # Killed inside the restore's transaction: no half table, the original as it was.
    _crash(server, "snapshot_restore_uncommitted",
           lambda: proj.api.post(f"/projects/{proj.pid}/snapshots/{s['id']}/restore", {"table": "copy"}))
    expect_error(proj.api.get(proj.tpath("copy")), 404, "not_found")
    _crash(server, "snapshot_restore_uncommitted",
           lambda: proj.api.post(f"/projects/{proj.pid}/snapshots/{s['id']}/restore", {"overwrite": True}))
    assert proj.snapshot("orders") == after
    # The snapshot is intact and restores fully afterwards.
    _restore(proj, s["id"], {"overwrite": True})
    assert proj.snapshot("orders")[1] == before[1]


def test_automatic_snapshots_live_the_projects_data_retention(server_factory):
    """Without a server-wide DUCKSTORE_SNAPSHOT_RETENTION an automatic snapshot lives as long as
    its project's data retention (data_retention_time days; 7 days for a project without time
    travel), and the settings answer says so."""
    server = server_factory()
    admin = server.api()
    for pid, days, want in (("r3", 3, 3 * 86400), ("r0", 0, 7 * 86400)):
        p = Proj(server, admin, pid)
        assert expect(admin.put(f"/projects/{pid}", {"data_retention_time": days}), 200)["data_retention_time"] == days
        p.create_table("t", [{"name": "id", "type": "INTEGER"}])
        p.load_rows("t", ["id"], [["1"], ["2"]])
        assert p.api.delete(p.tpath("t")).status_code == 204
        auto = [s for s in expect(p.api.get(f"/projects/{pid}/snapshots"), 200)["items"] if s["kind"] == "auto"]
        assert len(auto) == 1 and _secs(auto[0]["expires_at"]) - _secs(auto[0]["created_at"]) == want, auto
        settings = expect(p.api.get(f"/projects/{pid}/snapshot-settings"), 200)
        assert settings["auto_retention_seconds"] == want


def _branch_rows(proj, br, table):
    p = expect(proj.api.get(f"{br}/buckets/{proj.bucket}/tables/{table}/preview",
                            params={"columns": ",".join(ALL), "limit": 1000}), 200)
    return sorted(p["rows"], key=lambda r: [(v is not None, v or "") for v in r])


def test_bucket_snapshot_restores_in_a_branch_into_the_branchs_own_tables(proj):
    a = _orders(proj, "a")
    b = _orders(proj, "b")
    s = expect(proj.api.post(f"/projects/{proj.pid}/snapshots", {"bucket": proj.bucket}), 201)
    # main changes after the snapshot; the branch then writes b (it owns a copy) and leaves a to main
    proj.load_rows("a", HDR, [["7", "New", "1.00", ""]], incremental=True, convert_empty_to_null=["seen"])
    expect(proj.api.post(f"/projects/{proj.pid}/branches", {"id": "dev"}), 201)
    br = f"/projects/{proj.pid}/branches/dev"
    f = proj.upload("in/b.csv", "id,name,amount,seen\n9,Br,2.00,2024-05-05 00:00:00\n")
    expect(proj.api.post(f"{br}/buckets/{proj.bucket}/tables/b/import/file", {"file_id": f["id"]}), 200)
    main_a, main_b = proj.snapshot("a"), proj.snapshot("b")
    branch_b = _branch_rows(proj, br, "b")
    # without overwrite: refused naming a table the branch sees, nothing changes
    expect_error(proj.api.post(f"{br}/snapshots/{s['id']}/restore", {}), 409, "already_exists", [f"{proj.bucket}.a"])
    assert _branch_rows(proj, br, "b") == branch_b and proj.snapshot("a") == main_a
    out = expect(proj.api.post(f"{br}/snapshots/{s['id']}/restore", {"overwrite": True}), 201)
    assert sorted((t["name"], t["rows"]) for t in out["tables"]) == [("a", 3), ("b", 3)]
    assert all(t["bucket"] == proj.bucket for t in out["tables"])
    # the branch reads the snapshot's rows (with their _timestamp); main is as it was
    assert _branch_rows(proj, br, "a") == a[1] and _branch_rows(proj, br, "b") == b[1]
    assert proj.snapshot("a") == main_a and proj.snapshot("b") == main_b
    # the branch took a over from main with main's version: main changing a is a merge conflict
    proj.load_rows("a", HDR, [["8", "Late", "1.00", ""]], incremental=True, convert_empty_to_null=["seen"])
    expect_error(proj.api.post(f"{br}/merge", {}), 409, "merge_conflict", [f"{proj.bucket}.a"])
    res = expect(proj.api.post(f"{br}/merge", {"force": True}), 200)
    assert sorted(res["merged_tables"]) == [f"{proj.bucket}.a", f"{proj.bucket}.b"]
    assert proj.snapshot("a")[1] == a[1] and proj.snapshot("b")[1] == b[1]


def test_bucket_snapshot_restore_in_a_branch_is_one_transaction(proj):
    server = proj.server
    _orders(proj, "a")
    _orders(proj, "b")
    s = expect(proj.api.post(f"/projects/{proj.pid}/snapshots", {"bucket": proj.bucket}), 201)
    for t in ("a", "b"):
        proj.load_rows(t, HDR, [["7", "New", "1.00", ""]], incremental=True, convert_empty_to_null=["seen"])
    expect(proj.api.post(f"/projects/{proj.pid}/branches", {"id": "dev"}), 201)
    br = f"/projects/{proj.pid}/branches/dev"
    main_a, main_b = proj.snapshot("a"), proj.snapshot("b")
    _crash(server, "snapshot_restore_uncommitted",
           lambda: proj.api.post(f"{br}/snapshots/{s['id']}/restore", {"overwrite": True}))
    # nothing of it stayed: the branch still reads main's tables and owns nothing (a merge applies nothing)
    assert _branch_rows(proj, br, "a") == main_a[1] and _branch_rows(proj, br, "b") == main_b[1]
    assert proj.snapshot("a") == main_a and proj.snapshot("b") == main_b
    assert expect(proj.api.post(f"{br}/merge", {}), 200)["merged_tables"] == []
    assert proj.snapshot("a") == main_a and proj.snapshot("b") == main_b


def test_kill_at_random_moments_leaves_whole_snapshots_and_tables(proj):
    """kill -9 at a random moment while three snapshots are written and three restores run, three rounds:
    afterwards every listed snapshot is whole (its folder, its rows, and it restores whole), no folder
    is left without its snapshot, a snapshot answered 201 is listed, and each restored table is whole
    or absent (then its answer was not 201)."""
    server = proj.server
    n = 200000
    proj.create_table("big", [{"name": "id", "type": "INTEGER", "nullable": False}, {"name": "v"}],
                      primary_key=["id"])
    proj.load_rows("big", ["id", "v"], [[str(i), f"value {i}"] for i in range(n)])
    base = _snap(proj, table="big")
    rng = random.Random(14)
    made = set()
    cut_off = 0
    for rnd in range(3):
        jobs = [(f"s{i}", f"/projects/{proj.pid}/snapshots", {"bucket": proj.bucket, "table": "big"})
                for i in range(3)]
        jobs += [(f"r{rnd}_{i}", f"/projects/{proj.pid}/snapshots/{base['id']}/restore", {"table": f"r{rnd}_{i}"})
                 for i in range(3)]
        got = server.kill_while([lambda path=path, body=body: proj.api.post(path, body) for _, path, body in jobs],
                                rng.uniform(0.01, 0.3))
        answers = {name: r for (name, _, _), r in zip(jobs, got)}
        cut_off += sum(r is None for r in got)
        listed = _list(proj)
        assert all(s["rows"] == n for s in listed), listed
        assert _snap_dirs(proj) == sorted(s["id"] for s in listed), "a folder without its snapshot"
        for name, r in answers.items():
            if r is not None and r.status_code == 201 and name.startswith("s"):
                made.add(r.json()["id"])
        assert made <= {s["id"] for s in listed}, "a snapshot answered 201 is gone"
        names = {t["name"] for t in expect(proj.api.get(f"/projects/{proj.pid}/buckets/{proj.bucket}/tables"),
                                           200)["items"]}
        for i in range(3):
            name = f"r{rnd}_{i}"
            if name in names:
                assert proj.table(name)["rows"] == n, f"{name} is half a table"
            else:
                r = answers[name]
                assert r is None or r.status_code != 201, f"{name} answered 201 and is gone"
    # Only a kill that lands while the work runs tests anything: some answer must have been broken off.
    assert cut_off > 0, "every request finished before its kill: the drill tested no crash mid-work"
    for k, s in enumerate(_list(proj)):
        assert _restore(proj, s["id"], {"table": f"check{k}"})["rows"] == n
