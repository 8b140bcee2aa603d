"""DUCKSTORE_MAX_OPEN_PROJECTS: more projects than open slots still answer correctly, and the cap
holds (checked through /metrics). The cap is soft: a project in use is never detached, so while more
projects than the cap are in use at once, more are attached; the surplus goes when they are released."""

import pytest
from e2e_lib import (Api, create_bucket, create_project, create_table, expect, get_metrics,
                     list_items, metric, project_stats, run_threads)

N = 5
CAP = 2


def _setup(admin):
    keys = {}
    for i in range(N):
        pid = f"lru{i}"
        keys[pid] = create_project(admin, pid, name=f"project {i}")["api_key"]
        create_bucket(admin, pid, f"c-b{i}")
        create_table(admin, pid, f"in.c-b{i}", f"base{i}",
                     [{"name": f"k{i}", "type": "BIGINT", "nullable": False}, {"name": "v", "type": "DOUBLE"}],
                     primary_key=[f"k{i}"])
    return keys


def _check_cap(admin, peak_max=CAP):
    """Idle, at most CAP are attached; the peak is at most peak_max (CAP when one project was used at a
    time, the number of projects used at once otherwise)."""
    samples = get_metrics(admin)
    open_now = metric(samples, "duckstore_open_projects")
    peak = metric(samples, "duckstore_open_projects_peak")
    assert open_now <= CAP, f"duckstore_open_projects={open_now} with DUCKSTORE_MAX_OPEN_PROJECTS={CAP}"
    assert peak <= peak_max, f"duckstore_open_projects_peak={peak} with DUCKSTORE_MAX_OPEN_PROJECTS={CAP}"
    assert peak >= 1
    return peak


def _verify(api, i, extra):
    pid = f"lru{i}"
    got = expect(api.get(f"/projects/{pid}"), 200)
    assert got["name"] == f"project {i}"
    assert got["stats"]["buckets"] == 1 and got["stats"]["tables"] == 1 + len(extra), got["stats"]
    t = expect(api.get(f"/projects/{pid}/buckets/in.c-b{i}/tables/base{i}"), 200)
    assert [(c["name"], c["type"]) for c in t["columns"]] == [(f"k{i}", "BIGINT"), ("v", "DOUBLE")]
    assert t["primary_key"] == [f"k{i}"]
    names = sorted(x["name"] for x in list_items(api, f"/projects/{pid}/buckets/in.c-b{i}/tables"))
    assert names == sorted([f"base{i}", *extra]), f"{pid}: {names}"


def test_projects_in_turn_with_two_open_slots(server_factory):
    server = server_factory(env={"DUCKSTORE_MAX_OPEN_PROJECTS": str(CAP)})
    admin = server.api()
    keys = _setup(admin)
    extra = {i: [] for i in range(N)}
    for rnd in range(3):
        for i in range(N):
            api = admin.with_key(keys[f"lru{i}"])
            _verify(api, i, extra[i])
            name = f"r{rnd}_{i}"
            create_table(api, f"lru{i}", f"in.c-b{i}", name, [{"name": "x", "type": "INTEGER"}])
            extra[i].append(name)
            _verify(api, i, extra[i])
        _check_cap(admin)
    # Reverse order once, so the least recent project is the one asked for next.
    for i in reversed(range(N)):
        _verify(admin, i, extra[i])
    _check_cap(admin)
    # The evicted files are intact after a restart too.
    server.restart()
    admin = server.api()
    for i in range(N):
        _verify(admin, i, extra[i])
    _check_cap(admin)


def test_concurrent_projects_with_two_open_slots(server_factory):
    """Five clients, one per project, working at the same time: nothing is lost while projects are
    closed and reopened under each other, at most one file per client is attached at the peak, and
    once the clients are done the cap holds again."""
    server = server_factory(env={"DUCKSTORE_MAX_OPEN_PROJECTS": str(CAP)})
    admin = server.api()
    keys = _setup(admin)

    def client(i):
        api = Api(server, keys[f"lru{i}"])
        made = []
        for rnd in range(4):
            _verify(api, i, made)
            name = f"c{rnd}"
            r = api.post(f"/projects/lru{i}/buckets/in.c-b{i}/tables",
                         {"name": name, "columns": [{"name": "x", "type": "INTEGER"}]})
            expect(r, 201)
            made.append(name)
        return made

    made = run_threads(N, client)
    _check_cap(admin, peak_max=N)
    for i in range(N):
        _verify(admin, i, made[i])
        assert project_stats(admin, f"lru{i}")["tables"] == 5
    _check_cap(admin, peak_max=N)


def test_idle_projects_are_detached_and_come_back(server_factory, tmp_path):
    """DUCKSTORE_BE_DUCKDB_IDLE_DETACH: a project file no request used for that long is detached (its share
    of DuckDB's buffer pool given back) and attached again, with everything, by its next use; a project in
    use stays attached; the engine's memory (duckstore_engine_memory_bytes) goes back to 0 once none is
    attached. A bad value stops startup naming the setting."""
    import subprocess
    import time
    from e2e_lib import BINARY, free_port

    server = server_factory(env={"DUCKSTORE_BE_DUCKDB_IDLE_DETACH": "1s"})
    admin = server.api()
    keys = _setup(admin)
    for i in range(N):
        expect(admin.post(f"/projects/lru{i}/buckets/in.c-b{i}/tables/base{i}/import/file",
                          {"file_id": admin.post(f"/projects/lru{i}/files?name=d.csv",
                                                 data=f"k{i},v\n1,0.5\n2,1.5\n").json()["id"]}), 200)
    samples = get_metrics(admin)
    assert metric(samples, "duckstore_open_projects") == N
    assert metric(samples, "duckstore_engine_memory_bytes") > 0, "the engine holds nothing with 5 projects attached"
    # lru0 is used every 0.3 s, the others not
    api0 = admin.with_key(keys["lru0"])
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        _verify(api0, 0, [])
        time.sleep(0.3)
    assert metric(get_metrics(admin), "duckstore_open_projects") == 1
    time.sleep(2.5)
    samples = get_metrics(admin)
    assert metric(samples, "duckstore_open_projects") == 0
    # the detaches gave the engine's memory back (duckstore_engine_memory_bytes: DuckDB's buffer manager)
    assert metric(samples, "duckstore_engine_memory_bytes") == 0
    for i in range(N):
        _verify(admin, i, [])
        prev = expect(admin.get(f"/projects/lru{i}/buckets/in.c-b{i}/tables/base{i}/preview",
                                params={"order_by": f"k{i}"}), 200)
        assert prev["rows"] == [["1", "0.5"], ["2", "1.5"]]
    assert metric(get_metrics(admin), "duckstore_open_projects") == N

    env = {"DUCKSTORE_BE_DUCKDB_IDLE_DETACH": "soon", "PATH": "/usr/bin:/bin"}
    r = subprocess.run([str(BINARY), "serve", "--data-dir", str(tmp_path / "d"), "--http-addr",
                        f"127.0.0.1:{free_port()}", "--grpc-addr", "off"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0 and "DUCKSTORE_BE_DUCKDB_IDLE_DETACH" in r.stderr and "soon" in r.stderr, r.stderr


def test_the_history_sweep_is_no_use_to_the_idle_detach(server_factory):
    """The history sweep opens every project in turn. It must neither restart an attached project's idle
    clock (a sweep more often than the idle detach kept every project attached for ever) nor keep a
    project it attached for the whole idle period (a 5,000-table project held 210 MB of the engine's
    memory that way until the detach)."""
    import time

    # A "day" of a second: every project's history is due at every sweep (see the next test).
    server = server_factory(env={"DUCKSTORE_BE_DUCKDB_IDLE_DETACH": "3s", "DUCKSTORE_HISTORY_SWEEP_SECONDS": "2",
                                 "DUCKSTORE_RETENTION_DAY_SECONDS": "1"})
    admin = server.api()
    _setup(admin)

    def open_now():
        return metric(get_metrics(admin), "duckstore_open_projects")

    deadline = time.monotonic() + 20
    while open_now() > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_now() == 0, "idle projects stayed attached: the sweep restarts their idle clock"
    # The next sweep attaches them; the reaper (once a second) must detach them at once, not 3 s later.
    deadline = time.monotonic() + 10
    while open_now() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    rose = time.monotonic()
    assert rose < deadline, "no sweep attached a project within 10 s"
    while open_now() > 0 and time.monotonic() < rose + 10:
        time.sleep(0.05)
    held = time.monotonic() - rose
    assert held < 2.5, f"the projects a sweep attached stayed attached {held:.1f} s (idle detach 3 s)"
    assert metric(get_metrics(admin), "duckstore_engine_memory_bytes") == 0


def test_the_history_sweep_leaves_alone_projects_with_nothing_due(server_factory):
    """The history sweep opened every project every period, so an idle server attached all its projects
    every 5 minutes. A project whose history has nothing that could expire before its retention passes
    (7 days here) is now left alone, not attached, until then; duckstore_history_sweep_left_alone_total
    counts it. A project written meanwhile stays left alone: what a write records is newer than the sweep.
    (With "days" of a second or two the sweep still opens and expires: test_time_travel's retention tests.)"""
    import time

    server = server_factory(env={"DUCKSTORE_BE_DUCKDB_IDLE_DETACH": "2s", "DUCKSTORE_HISTORY_SWEEP_SECONDS": "1"})
    admin = server.api()
    _setup(admin)

    def load(i):
        body = "k0,v\n" + "".join(f"{k},{i}.5\n" for k in range(i, i + 20))
        fid = expect(admin.post(f"/projects/lru0/files?name=d{i}.csv", data=body), 201)["id"]
        expect(admin.post("/projects/lru0/buckets/in.c-b0/tables/base0/import/file",
                          {"file_id": fid, "incremental": True}), 200)

    load(0)
    load(10)  # two writes: lru0 has history rows and writes the sweep could one day expire
    time.sleep(2.5)  # two sweeps at least: every project has been swept once

    def sample():
        m = get_metrics(admin)
        return (metric(m, "duckstore_open_projects"), metric(m, "duckstore_history_sweep_projects_total"),
                metric(m, "duckstore_history_sweep_left_alone_total"))

    def stays_detached(seconds, why):
        deadline = time.monotonic() + 15
        while sample()[0] > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        _, swept0, alone0 = sample()
        assert swept0 >= N, f"the sweep opened {swept0} projects, fewer than the {N} there are"
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            open_now, swept, _ = sample()
            assert open_now == 0, f"{why}: the sweep attached a project with nothing due"
            assert swept == swept0, f"{why}: the sweep opened {swept - swept0} project(s) with nothing due"
            time.sleep(0.05)
        alone = sample()[2]
        assert alone >= alone0 + 2 * N, f"{why}: {alone - alone0} projects left alone in {seconds} s of sweeps"

    stays_detached(4, "idle")
    load(20)
    stays_detached(4, "after a write")
    assert expect(admin.get("/projects/lru0/buckets/in.c-b0/tables/base0"), 200)["rows"] == 40


def test_a_written_project_is_checkpointed_once_quiet(server_factory):
    """DUCKSTORE_BE_DUCKDB_QUIET_CHECKPOINT: small writes stay in DuckDB's WAL and in its memory (a burst
    of small imports held 50 MB of the engine in the benchmark's load phase) until the project has been
    unused for the setting; then it is checkpointed: the WAL is empty, the engine's memory falls, the rows
    are all there, and the project stays attached. With 0 the WAL keeps them. A bad value stops startup."""
    import time

    def burst(admin, pid):
        create_project(admin, pid)
        create_bucket(admin, pid, "c-b")
        create_table(admin, pid, "in.c-b", "t", [{"name": "k", "type": "BIGINT", "nullable": False},
                                                 {"name": "v", "type": "VARCHAR"}], primary_key=["k"])
        for i in range(20):
            body = "k,v\n" + "".join(f"{k},r{i}-{k}\n" for k in range(i * 10, i * 10 + 50))
            fid = expect(admin.post(f"/projects/{pid}/files?name=d{i}.csv", data=body), 201)["id"]
            expect(admin.post(f"/projects/{pid}/buckets/in.c-b/tables/t/import/file",
                              {"file_id": fid, "incremental": True}), 200)

    def wal_bytes(server, pid):
        wal = server.project_file(pid).with_name(f"project_{pid}_main.duckdb.wal")
        return wal.stat().st_size if wal.exists() else 0

    server = server_factory(env={"DUCKSTORE_BE_DUCKDB_QUIET_CHECKPOINT": "2s", "DUCKSTORE_BE_DUCKDB_IDLE_DETACH": "0"})
    admin = server.api()
    burst(admin, "quiet")
    assert wal_bytes(server, "quiet") > 0, "the imports' commits are not in the WAL"
    engine = metric(get_metrics(admin), "duckstore_engine_memory_bytes")
    deadline = time.monotonic() + 15
    while wal_bytes(server, "quiet") > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert wal_bytes(server, "quiet") == 0, "the quiet project was not checkpointed"
    samples = get_metrics(admin)
    assert metric(samples, "duckstore_engine_memory_bytes") < engine, (engine, samples)
    assert metric(samples, "duckstore_open_projects") == 1, "the checkpoint detached the project"
    rows = expect(admin.get("/projects/quiet/buckets/in.c-b/tables/t/preview", params={"order_by": "k", "limit": 1000}),
                  200)["rows"]
    assert len(rows) == 240 and rows[0] == ["0", "r0-0"] and rows[-1] == ["239", "r19-239"], rows[:3]

    off = server_factory(env={"DUCKSTORE_BE_DUCKDB_QUIET_CHECKPOINT": "0", "DUCKSTORE_BE_DUCKDB_IDLE_DETACH": "0"})
    burst(off.api(), "busy")
    time.sleep(4)
    assert wal_bytes(off, "busy") > 0, "checkpointed with DUCKSTORE_BE_DUCKDB_QUIET_CHECKPOINT=0"

    bad = server_factory(env={"DUCKSTORE_BE_DUCKDB_QUIET_CHECKPOINT": "later"}, start=False)
    with pytest.raises(AssertionError, match="exited"):
        bad.start()
    assert "DUCKSTORE_BE_DUCKDB_QUIET_CHECKPOINT" in bad.log_text() and "later" in bad.log_text(), bad.log_tail()


def test_the_engine_is_reopened_once_every_project_is_idle_detached(server_factory):
    """DuckDB keeps memory for the life of its instance (the eviction queue of every buffer queries used),
    which a DETACH does not give back. Once the idle detach has detached every project, the reaper reopens
    the instance: once per idle period (an idle server does not do it again and again), never while a
    project is attached, and the projects come back with all their rows."""
    import time

    reopened = "reopened while every project was detached"
    server = server_factory(env={"DUCKSTORE_BE_DUCKDB_IDLE_DETACH": "1s", "DUCKSTORE_LOG_LEVEL": "debug"})
    admin = server.api()
    keys = _setup(admin)
    for i in range(N):
        fid = expect(admin.post(f"/projects/lru{i}/files?name=d.csv", data=f"k{i},v\n1,0.5\n2,1.5\n"), 201)["id"]
        expect(admin.post(f"/projects/lru{i}/buckets/in.c-b{i}/tables/base{i}/import/file", {"file_id": fid}), 200)

    def wait_for(count, seconds):
        deadline = time.monotonic() + seconds
        while server.log_text().count(reopened) < count and time.monotonic() < deadline:
            time.sleep(0.2)
        return server.log_text().count(reopened)

    # lru0 stays in use: no reopen while it is attached
    api0 = admin.with_key(keys["lru0"])
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        _verify(api0, 0, [])
        time.sleep(0.3)
    assert server.log_text().count(reopened) == 0, "reopened while a project was attached"
    assert wait_for(1, 15) == 1, "not reopened once every project was detached"
    time.sleep(3)
    assert server.log_text().count(reopened) == 1, "an idle server reopened its engine again"
    assert metric(get_metrics(admin), "duckstore_open_projects") == 0
    for i in range(N):
        prev = expect(admin.get(f"/projects/lru{i}/buckets/in.c-b{i}/tables/base{i}/preview",
                                params={"order_by": f"k{i}"}), 200)
        assert prev["rows"] == [["1", "0.5"], ["2", "1.5"]]
    assert wait_for(2, 15) == 2, "not reopened after the next idle period"
