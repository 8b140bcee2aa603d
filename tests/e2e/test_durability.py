"""Process lifecycle: SIGTERM, restart on the same data directory, SIGKILL mid-burst, admin key file."""

import os
import random
import re
import stat
import threading
import time

import pytest
import requests

from e2e_lib import (NO_KEY, Api, create_bucket, create_project, create_table, expect,
                     expect_error, list_items, project_stats)


def test_sigterm_exits_zero(server, admin):
    create_project(admin, "x")
    url = server.url
    rc = server.stop(check=False)
    assert rc == 0, f"exit code {rc} after SIGTERM; stderr:\n{server.log_tail()}"
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/health", timeout=2)


def test_sigterm_while_requests_are_in_flight(server, admin):
    """SIGTERM during a stream of writes: exit 0, and every acknowledged write survives."""
    create_project(admin, "busy")
    create_bucket(admin, "busy", "c-a")
    acked = []
    stop = threading.Event()

    def writer(w):
        api = Api(server, server.admin_key)
        k = 0
        while not stop.is_set():
            try:
                r = api.post("/projects/busy/buckets/in.c-a/tables",
                             {"name": f"w{w}_{k}", "columns": [{"name": "a", "type": "INTEGER"}]})
            except requests.RequestException:
                return
            if r.status_code == 201:
                acked.append(f"w{w}_{k}")
            k += 1

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(acked) < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.stop()  # asserts exit code 0
    stop.set()
    for t in threads:
        t.join(timeout=40)
    assert acked, "no write was acknowledged before SIGTERM"
    server.start()
    admin = server.api()
    names = {t["name"] for t in list_items(admin, "/projects/busy/buckets/in.c-a/tables")}
    missing = set(acked) - names
    assert not missing, f"acknowledged tables lost over a graceful restart: {sorted(missing)}"


def _populate(admin):
    """Two projects with varied buckets and tables; returns the project create answers."""
    p1 = create_project(admin, "r1", name="Retail")
    p2 = create_project(admin, "r2", name="Logistics")
    create_bucket(admin, "r1", "c-crm", description="CRM")
    create_bucket(admin, "r1", "c-out", stage="out")
    create_bucket(admin, "r2", "c-wh")
    create_table(admin, "r1", "in.c-crm", "orders",
                 [{"name": "id", "type": "INTEGER", "nullable": False},
                  {"name": "amount", "type": "DECIMAL(12,2)"},
                  {"name": "placed", "type": "TIMESTAMP"},
                  {"name": "paid", "type": "BOOLEAN", "default": "false"},
                  {"name": "note"}],
                 primary_key=["id"])
    create_table(admin, "r1", "in.c-crm", "customers",
                 [{"name": "region", "type": "VARCHAR", "nullable": False},
                  {"name": "cid", "type": "BIGINT", "nullable": False},
                  {"name": "since", "type": "DATE"},
                  {"name": "score", "type": "DOUBLE"}],
                 primary_key=["region", "cid"])
    create_table(admin, "r1", "out.c-out", "report", [{"name": "a"}, {"name": "b"}])
    create_table(admin, "r2", "in.c-wh", "stock",
                 [{"name": "sku", "type": "STRING"}, {"name": "qty", "type": "INTEGER"},
                  {"name": "price", "type": "NUMERIC"}, {"name": "w", "type": "FLOAT"}],
                 primary_key=["sku"])
    expect(admin.put("/projects/r2", {"name": "Logistics EU"}), 200)
    create_project(admin, "gone")
    expect(admin.delete("/projects/gone"), 204)
    return {"r1": p1, "r2": p2}


def _snapshot(admin):
    """Everything GET shows about every project (without volatile byte counts)."""
    snap = {}
    for p in sorted(list_items(admin, "/projects"), key=lambda x: x["id"]):
        pid = p["id"]
        got = expect(admin.get(f"/projects/{pid}"), 200)
        stats = got["stats"]
        entry = {"name": got["name"], "backend": got["backend"], "created_at": got["created_at"],
                 "stats": (stats["buckets"], stats["tables"], stats["rows"]), "buckets": {}}
        for b in sorted(list_items(admin, f"/projects/{pid}/buckets"), key=lambda x: x["id"]):
            tables = {}
            for t in list_items(admin, f"/projects/{pid}/buckets/{b['id']}/tables"):
                full = expect(admin.get(f"/projects/{pid}/buckets/{b['id']}/tables/{t['name']}"), 200)
                tables[t["name"]] = {k: full[k] for k in ("id", "columns", "primary_key", "rows", "created_at")}
            entry["buckets"][b["id"]] = {"stage": b["stage"], "name": b["name"],
                                         "description": b.get("description"), "created_at": b["created_at"],
                                         "table_count": b["table_count"], "tables": tables}
        snap[pid] = entry
    return snap


def test_restart_keeps_everything(server, admin):
    created = _populate(admin)
    before = _snapshot(admin)
    assert sorted(before) == ["r1", "r2"]
    assert before["r1"]["stats"] == (2, 3, 0)
    assert before["r2"]["name"] == "Logistics EU"

    server.restart()  # SIGTERM (exit 0 asserted), then start on the same data dir
    admin = server.api()
    after = _snapshot(admin)
    assert after == before, "state differs after restart"
    # Spot-check what a user would look at first.
    orders = after["r1"]["buckets"]["in.c-crm"]["tables"]["orders"]
    assert [(c["name"], c["type"], c["nullable"]) for c in orders["columns"]] == [
        ("id", "INTEGER", False), ("amount", "DECIMAL(12,2)", True), ("placed", "TIMESTAMP", True),
        ("paid", "BOOLEAN", True), ("note", "VARCHAR", True)]
    assert orders["primary_key"] == ["id"]
    assert after["r1"]["buckets"]["in.c-crm"]["tables"]["customers"]["primary_key"] == ["region", "cid"]
    # Project keys survive, and still only open their own project.
    for pid, p in created.items():
        proj = admin.with_key(p["api_key"])
        expect(proj.get(f"/projects/{pid}"), 200)
        other = "r2" if pid == "r1" else "r1"
        expect_error(proj.get(f"/projects/{other}"), 403, "permission_denied")
    # The deleted project stays deleted, and the data dir has no stray files.
    expect_error(admin.get("/projects/gone"), 404, "not_found")
    assert not server.project_file("gone").exists()
    # Writes work after the restart.
    create_table(admin, "r1", "in.c-crm", "after_restart", [{"name": "x"}])
    assert project_stats(admin, "r1")["tables"] == 4

    server.restart()
    assert _snapshot(server.api())["r1"]["stats"] == (2, 4, 0)


def _owner(filename, project_ids):
    return [pid for pid in project_ids if filename.startswith(f"project_{pid}_")]


@pytest.mark.parametrize("kill_after", [3, 12])
def test_kill_9_during_project_and_table_creation(server, kill_after):
    admin = server.api()
    lock = threading.Lock()
    acked_projects = {}  # pid -> api_key
    acked_tables = set()  # (pid, table)
    attempted = set()
    dead = threading.Event()

    def worker(w):
        api = Api(server, server.admin_key)
        for k in range(1000):
            pid = f"k{w}_{k}"
            with lock:
                attempted.add(pid)
            try:
                r = api.post("/projects", {"id": pid})
                if r.status_code != 201:
                    return
                with lock:
                    acked_projects[pid] = r.json()["api_key"]
                r = api.post(f"/projects/{pid}/buckets", {"stage": "in", "name": "c-b"})
                if r.status_code != 201:
                    return
                for t in range(3):
                    r = api.post(f"/projects/{pid}/buckets/in.c-b/tables",
                                 {"name": f"t{t}", "columns": [{"name": "id", "type": "INTEGER"}, {"name": "v"}],
                                  "primary_key": ["id"]})
                    if r.status_code != 201:
                        return
                    with lock:
                        acked_tables.add((pid, f"t{t}"))
            except requests.RequestException:
                dead.set()
                return

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acked_projects) < kill_after and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(random.uniform(0, 0.05))
    server.kill()
    for t in threads:
        t.join(timeout=40)
        assert not t.is_alive()
    assert acked_projects, "no project was created before the kill"
    files_at_kill = {f for f in os.listdir(server.project_dir) if f.endswith(".duckdb")}

    server.start()
    admin = server.api()
    listed = {p["id"] for p in list_items(admin, "/projects")}

    # Acknowledged writes are durable (a write is acknowledged only after it committed).
    lost = set(acked_projects) - listed
    assert not lost, f"acknowledged projects lost after kill -9: {sorted(lost)}"
    assert listed <= attempted, f"projects nobody created: {sorted(listed - attempted)}"

    for pid in sorted(listed):
        assert server.project_file(pid).is_file(), f"listed project {pid} has no file"
        got = expect(admin.get(f"/projects/{pid}"), 200)
        n_tables = 0
        for b in list_items(admin, f"/projects/{pid}/buckets"):
            tables = list_items(admin, f"/projects/{pid}/buckets/{b['id']}/tables")
            assert b["table_count"] == len(tables), f"{pid}/{b['id']}: table_count {b['table_count']} " \
                                                    f"but {len(tables)} listed"
            for t in tables:
                full = expect(admin.get(f"/projects/{pid}/buckets/{b['id']}/tables/{t['name']}"), 200)
                assert [c["name"] for c in full["columns"]] == ["id", "v"], full
                assert full["primary_key"] == ["id"], full
            n_tables += len(tables)
        assert got["stats"]["tables"] == n_tables, f"{pid}: stats {got['stats']} but {n_tables} tables listed"
    for pid, table in sorted(acked_tables):
        expect(admin.get(f"/projects/{pid}/buckets/in.c-b/tables/{table}"), 200)
    for pid, key in acked_projects.items():
        expect(admin.with_key(key).get(f"/projects/{pid}"), 200)

    # No orphan files: every file in duckdb/ belongs to a listed project.
    for f in sorted(os.listdir(server.project_dir)):
        assert _owner(f, listed), f"orphan file {f} in {server.project_dir} (listed: {sorted(listed)})"
    # And recovery deleted none: a project file it did not keep (a creation cut off by the kill) is
    # in the quarantine, with the reason.
    quarantine = server.data_dir / "quarantine"
    set_aside = {p.name: p.parent.name for p in quarantine.glob("*/*.duckdb")} if quarantine.exists() else {}
    for f in sorted(files_at_kill):
        assert (server.project_dir / f).exists() or f in set_aside, f"recovery deleted {f}"
        if f in set_aside:
            assert re.search(r"-half-created(-[0-9]+)?$", set_aside[f]), f"{f} quarantined as {set_aside[f]}"

    # Ids whose creation was cut off are not half-taken: creating them now either succeeds or
    # they are already complete projects.
    for pid in sorted(attempted - listed):
        expect(admin.post("/projects", {"id": pid}), 201)
        assert server.project_file(pid).is_file()
        expect(admin.post(f"/projects/{pid}/buckets", {"stage": "in", "name": "c-b"}), 201)

    # And the service is healthy for new work and a clean restart.
    create_project(admin, "after_kill")
    server.restart()
    assert "after_kill" in {p["id"] for p in list_items(server.api(), "/projects")}


def test_generated_admin_key(server_factory):
    server = server_factory(admin_key=NO_KEY)
    key_file = server.data_dir / "admin.key"
    assert key_file.is_file(), "no <data>/admin.key generated"
    mode = stat.S_IMODE(key_file.stat().st_mode)
    assert mode == 0o600, f"admin.key mode is {oct(mode)}, expected 0o600"
    text = key_file.read_text()
    lines = text.splitlines()
    assert len(lines) == 1 and lines[0].strip() == lines[0] and lines[0], f"admin.key is not one line: {text!r}"
    key = lines[0]
    assert len(key) >= 20, "generated admin key is too short"

    admin = server.api(key=key)
    assert list_items(admin, "/projects") == []
    expect_error(server.api(key=key + "x").get("/projects"), 401, "unauthenticated")
    expect_error(server.api(key=None).get("/projects"), 401, "unauthenticated")
    p = create_project(admin, "gk")

    server.restart()
    assert key_file.read_text() == text, "admin.key changed on restart"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    admin = server.api(key=key)
    assert [x["id"] for x in list_items(admin, "/projects")] == ["gk"]
    expect(admin.with_key(p["api_key"]).get("/projects/gk"), 200)
    server.stop()
    log = server.log_bytes()
    assert key.encode() not in log, "the generated admin key is in the log"
    for out in server.base_dir.glob("*.stdout.log"):
        assert key.encode() not in out.read_bytes(), "the generated admin key is printed on stdout"
