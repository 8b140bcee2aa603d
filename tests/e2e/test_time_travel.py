"""Time travel over REST: a table restored exactly as it was at a moment within the retention.

The randomized test changes one table through random operations (incremental imports with and
without key dedup, with the import's own _timestamp, the source's or none, full loads, deletes
with and without filters, added, retyped and dropped columns), records its full content (every
column and _timestamp) after each, then restores every recorded moment into a new table and
compares. DS_LONG=1 runs a longer variant.
"""

import datetime as dt
import os
import random
import time

import pytest

from data_helpers import Proj, csv_text
from e2e_lib import expect, expect_error, get_metrics, metric

BUCKET = "in.c-tt"
LONG = os.environ.get("DS_LONG") == "1"


def iso(t):
    """Client time (time.time()) as RFC 3339 with microseconds."""
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_second(sec):
    return dt.datetime.fromtimestamp(sec, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def content(p, table, bucket=BUCKET, info=None):
    """The table's columns (name, type, nullable) and all its rows with _timestamp, sorted."""
    info = info or p.table(table, bucket)
    cols = [(c["name"], c["type"], c["nullable"]) for c in info["columns"]]
    names = [c[0] for c in cols] + ["_timestamp"]
    assert info["rows"] <= 1000
    rows = p.rows(table, names, bucket)
    return {"columns": cols, "primary_key": info["primary_key"], "rows": rows, "count": info["rows"]}


def travel_raw(p, table, timestamp, dest, bucket=BUCKET, dest_bucket=BUCKET):
    return p.api.post(p.tpath(table, bucket) + "/time-travel",
                      {"timestamp": timestamp, "destination": {"bucket": dest_bucket, "table": dest}})


def travel(p, table, timestamp, dest, bucket=BUCKET):
    return expect(travel_raw(p, table, timestamp, dest, bucket), 201)


@pytest.fixture
def tt(server_factory):
    server = server_factory(env={"DUCKSTORE_HISTORY_SWEEP_SECONDS": "1"})
    return Proj(server, server.api(), "p1", bucket=BUCKET)


class Model:
    """Drives random operations on one table through REST."""

    def __init__(self, p, rng):
        self.p = p
        self.rng = rng
        self.cols = ["id", "v", "n"]
        self.types = {"id": "INTEGER", "v": "VARCHAR", "n": "DOUBLE"}
        self.extra = 0
        self.keyed = True
        p.create_table("t", [{"name": "id", "type": "INTEGER", "nullable": False},
                             {"name": "v", "type": "VARCHAR"}, {"name": "n", "type": "DOUBLE"}],
                       primary_key=["id"])

    def value(self, col):
        t = self.types[col]
        if self.rng.random() < 0.1 and t == "VARCHAR":
            return ""
        if t in ("INTEGER", "BIGINT"):
            return str(self.rng.randint(-50, 50))
        if t == "DOUBLE":
            return repr(self.rng.choice([0.1, 1.5, -2.25, 1e-7, 123456.789, 3.0]) * self.rng.randint(1, 9))
        if t == "DATE":
            return f"2024-0{self.rng.randint(1, 9)}-1{self.rng.randint(0, 9)}"
        if t == "DECIMAL(10,2)":
            return f"{self.rng.randint(-999, 999)}.{self.rng.randint(0, 99):02d}"
        if t == "BOOLEAN":
            return self.rng.choice(["true", "false"])
        return self.rng.choice(["a", "b", "c", "x y", "ü", "q\"q"]) + str(self.rng.randint(0, 3))

    def rows(self, n):
        out = []
        for _ in range(n):
            row = [str(self.rng.randint(0, 40))]
            for c in self.cols[1:]:
                row.append(self.value(c))
            out.append(row)
        return out

    def op(self):
        r = self.rng.random()
        p = self.p
        if r < 0.30:
            p.load_rows("t", self.cols, self.rows(self.rng.randint(1, 12)), incremental=True,
                        dedup="update_duplicates")
            return "upsert"
        if r < 0.38:
            return self.upsert_own_timestamp()
        if r < 0.45:
            p.load_rows("t", self.cols, self.rows(self.rng.randint(1, 6)), incremental=True,
                        dedup="insert_duplicates")
            return "append"
        if r < 0.55:
            p.load_rows("t", self.cols, self.rows(self.rng.randint(0, 25)), incremental=False)
            return "full"
        if r < 0.68:
            k = str(self.rng.randint(0, 40))
            op = self.rng.choice(["lt", "ge", "eq", "ne"])
            expect(p.api.request("DELETE", p.tpath("t") + "/rows", json_body={
                "where_filters": [{"column": "id", "operator": op, "values": [k]}]}), 200)
            return "delete"
        if r < 0.72:
            expect(p.api.request("DELETE", p.tpath("t") + "/rows", json_body={}), 200)
            return "delete all"
        if r < 0.82:
            self.extra += 1
            name = f"x{self.extra}"
            body = {"name": name, "type": self.rng.choice(["VARCHAR", "INTEGER", "DATE", "DECIMAL(10,2)", "BOOLEAN"])}
            if self.rng.random() < 0.5:
                body["default"] = {"VARCHAR": "7", "INTEGER": "7", "DATE": "2024-02-29", "DECIMAL(10,2)": "7.25",
                                   "BOOLEAN": "true"}[body["type"]]
            expect(p.api.post(p.tpath("t") + "/columns", body), 201)
            self.cols.append(name)
            self.types[name] = body["type"]
            return "add column"
        if r < 0.89 and len(self.cols) > 2:
            name = self.rng.choice(self.cols[1:])
            expect(p.api.delete(p.tpath("t") + f"/columns/{name}"), 204)
            self.cols.remove(name)
            del self.types[name]
            return "drop column"
        if r < 0.94:
            # The key goes, or comes back (refused, changing nothing, while appends left a key twice).
            if self.keyed:
                expect(p.api.delete(p.tpath("t") + "/primary-key"), 204)
                self.keyed = False
                return "primary key dropped"
            resp = p.api.post(p.tpath("t") + "/primary-key", {"columns": ["id"]})
            if resp.status_code == 400:
                return "primary key refused"
            expect(resp, 200)
            self.keyed = True
            return "primary key set"
        ints = [c for c in self.cols[1:] if self.types[c] == "INTEGER"]
        if ints:
            name = self.rng.choice(ints)
            expect(p.api.put(p.tpath("t") + f"/columns/{name}", {"type": "BIGINT"}), 200)
            self.types[name] = "BIGINT"
            return "retype column"
        return self.op()


    def upsert_own_timestamp(self):
        """An upsert whose rows bring their own _timestamp (one for all, past or future, or several) or none:
        the history must tell its rows apart from older ones without relying on the import's own time."""
        rows = self.rows(self.rng.randint(1, 8))
        if self.rng.random() < 0.25:
            self.p.load_rows("t", self.cols, rows, incremental=True, dedup="update_duplicates", timestamp_mode="none")
            return "upsert without _timestamp"
        choices = ["2020-01-01 00:00:00", "2099-01-01 00:00:00", "2099-01-01 00:00:01", "2100-06-01 12:00:00",
                   iso(time.time() + 5), iso(time.time() - 5)]
        if self.rng.random() < 0.15:  # values DuckDB takes as timestamps that have no epoch
            choices += ["infinity", "-infinity"]
        one = self.rng.choice(choices)
        stamps = [one if self.rng.random() < 0.7 else self.rng.choice(choices) for _ in rows]
        self.p.load_rows("t", self.cols + ["_timestamp"], [r + [ts] for r, ts in zip(rows, stamps)],
                         incremental=True, dedup="update_duplicates", timestamp_mode="from_source")
        return "upsert with its own _timestamp"


def run_exactness(p, n_ops, seed):
    rng = random.Random(seed)
    m = Model(p, rng)
    info = p.table("t")
    moments = [(time.time(), content(p, "t", info=info), "create")]
    for _ in range(n_ops):
        what = m.op()
        # Only column changes change the table's definition; data writes reuse the last one read.
        if what.endswith("column") or what.startswith("primary key"):
            info = p.table("t")
        now = content(p, "t", info=info)
        now["count"] = len(now["rows"])
        moments.append((time.time(), now, what))
    for i, (t, want, what) in enumerate(moments):
        got_info = travel(p, "t", iso(t), f"r{i}")
        assert got_info["rows"] == want["count"], f"moment {i} (after {what}): rows {got_info['rows']} != {want['count']}"
        got = content(p, f"r{i}", info=got_info)
        assert got == want, f"moment {i} (after {what}) differs:\nwant {want}\ngot  {got}"
    kinds = {what for _, _, what in moments}
    assert kinds >= {"upsert", "upsert without _timestamp", "upsert with its own _timestamp", "append", "full",
                     "delete", "delete all", "add column", "drop column", "retype column", "primary key dropped",
                     "primary key set"}, \
        f"the random operations missed some kinds: {kinds}"
    return moments


def test_randomized_exactness(tt):
    """200 random operations; every recorded moment restores exactly (rows, values, columns, _timestamp)."""
    run_exactness(tt, 600 if LONG else 200, seed=14)


def test_whole_second_means_end_of_that_second(tt):
    """A moment given to the second covers every write committed in that second, none after it."""
    for attempt in range(5):
        name = f"s{attempt}"
        tt.create_table(name, [{"name": "id", "type": "INTEGER"}, {"name": "v"}])
        # Start right after a second boundary, so that the writes fall into one second.
        time.sleep(1.02 - (time.time() % 1))
        start = time.time()
        for i in range(2):
            tt.load_rows(name, ["id", "v"], [[str(i), f"v{i}"]], incremental=True)
        end = time.time()
        if int(start) == int(end):
            break
    else:
        pytest.fail("two small imports never fitted into one second: the machine is too loaded for this test")
    state = content(tt, name)
    time.sleep(1.05 - (time.time() % 1))
    tt.load_rows(name, ["id", "v"], [["9", "later"]], incremental=True)
    got = travel(tt, name, iso_second(int(start)), "s_at_second")
    assert got["rows"] == 2
    assert content(tt, "s_at_second") == state
    # Unix seconds name the same moment.
    expect(tt.api.post(tt.tpath(name) + "/time-travel",
                       {"timestamp": str(int(start)), "destination": {"bucket": BUCKET, "table": "s_unix"}}), 201)
    assert content(tt, "s_unix") == state


def test_dropped_table(tt):
    tt.create_table("gone", [{"name": "id", "type": "INTEGER"}, {"name": "v"}], primary_key=["id"])
    tt.load_rows("gone", ["id", "v"], [["1", "a"], ["2", "b"]])
    t1 = time.time()
    before = content(tt, "gone")
    tt.load_rows("gone", ["id", "v"], [["2", "B"], ["3", "c"]], incremental=True)
    t2 = time.time()
    latest = content(tt, "gone")
    expect(tt.api.delete(tt.tpath("gone")), 204)
    # A table of the same name created later does not hide the dropped one's history.
    tt.create_table("gone", [{"name": "other", "type": "INTEGER"}])
    for t, want, dest in ((t1, before, "back1"), (t2, latest, "back2")):
        r = expect(tt.api.post(f"/projects/p1/buckets/{BUCKET}/time-travel",
                               {"table": "gone", "timestamp": iso(t),
                                "destination": {"bucket": BUCKET, "table": dest}}), 201)
        assert r["name"] == dest and r["primary_key"] == ["id"]
        assert content(tt, dest) == want
    # The live table of that name travels through its own history only.
    expect_error(travel_raw(tt, "gone", iso(t1), "nope"), 400, "invalid_argument", ["timestamp"])
    expect_error(tt.api.post(f"/projects/p1/buckets/{BUCKET}/time-travel",
                             {"table": "never", "timestamp": iso(t1),
                              "destination": {"bucket": BUCKET, "table": "nope"}}), 404, "not_found", ["never"])


def test_bad_requests_change_nothing(tt):
    tt.create_table("b", [{"name": "id", "type": "INTEGER"}])
    tt.load_rows("b", ["id"], [["1"]])
    tables_before = sorted(x["name"] for x in expect(tt.api.get(f"/projects/p1/buckets/{BUCKET}/tables"), 200)["items"])
    now = time.time()
    cases = [
        ("2999-01-01T00:00:00Z", ["future"]),
        (iso_second(int(time.time()) + 1), ["future"]),  # a second that has not ended
        (iso(now - 30 * 86400), ["retention"]),
        ("yesterday-ish", ["timestamp"]),
        ("", ["timestamp"]),
    ]
    for ts, words in cases:
        expect_error(travel_raw(tt, "b", ts, "copy"), 400, "invalid_argument", words)
    expect_error(tt.api.post(tt.tpath("b") + "/time-travel", {"timestamp": iso(now)}), 400, "invalid_argument",
                 ["destination"])
    expect_error(tt.api.post(tt.tpath("b") + "/time-travel",
                             {"timestamp": iso(now), "destination": {"bucket": BUCKET, "table": "b"}}),
                 409, "already_exists", ["b"])
    expect_error(travel_raw(tt, "b", iso(now), "bad name!"), 400, "invalid_argument", ["table"])
    expect_error(travel_raw(tt, "missing", iso(now), "copy"), 404, "not_found", ["missing"])
    after = sorted(x["name"] for x in expect(tt.api.get(f"/projects/p1/buckets/{BUCKET}/tables"), 200)["items"])
    assert after == tables_before


def test_read_key_refused(tt):
    tt.create_table("k", [{"name": "id", "type": "INTEGER"}])
    key = expect(tt.api.post("/projects/p1/keys", {"scope": "read"}), 201)["key"]
    r = tt.api.with_key(key).post(tt.tpath("k") + "/time-travel",
                                  {"timestamp": iso(time.time()), "destination": {"bucket": BUCKET, "table": "k2"}})
    expect_error(r, 403, "permission_denied", ["read-only"])
    names = [x["name"] for x in expect(tt.api.get(f"/projects/p1/buckets/{BUCKET}/tables"), 200)["items"]]
    assert "k2" not in names


def _swept_project(server_factory, day_seconds, retention, table):
    """A server whose history sweep runs every second and whose "day" is day_seconds; project p1 with a
    retention of that many such days, bucket c-tt and an INTEGER-keyed table."""
    server = server_factory(env={"DUCKSTORE_RETENTION_DAY_SECONDS": str(day_seconds),
                                 "DUCKSTORE_HISTORY_SWEEP_SECONDS": "1"})
    admin = server.api()
    expect(admin.post("/projects", {"id": "p1", "data_retention_time": retention}), 201)
    p = Proj.__new__(Proj)
    p.server, p.admin, p.pid, p.bucket, p.api = server, admin, "p1", BUCKET, admin
    expect(admin.post("/projects/p1/buckets", {"stage": "in", "name": "c-tt"}), 201)
    p.create_table(table, [{"name": "id", "type": "INTEGER"}], primary_key=["id"])
    return server, admin, p


def test_retention_field_and_expiry(server_factory):
    """data_retention_time on create/update; the sweep drops history past it (short days for the test)."""
    server = server_factory(env={"DUCKSTORE_RETENTION_DAY_SECONDS": "2", "DUCKSTORE_HISTORY_SWEEP_SECONDS": "1"})
    admin = server.api()
    body = expect(admin.post("/projects", {"id": "p1"}), 201)
    assert body["data_retention_time"] == 7
    expect_error(admin.post("/projects", {"id": "p2", "data_retention_time": -1}), 400, "invalid_argument",
                 ["data_retention_time"])
    expect_error(admin.put("/projects/p1", {"data_retention_time": "x"}), 400, "invalid_argument",
                 ["data_retention_time"])
    assert expect(admin.put("/projects/p1", {"data_retention_time": 1}), 200)["data_retention_time"] == 1
    assert expect(admin.get("/projects/p1"), 200)["data_retention_time"] == 1
    p = Proj.__new__(Proj)
    p.server, p.admin, p.pid, p.bucket, p.api = server, admin, "p1", BUCKET, admin
    expect(admin.post("/projects/p1/buckets", {"stage": "in", "name": "c-tt"}), 201)
    p.create_table("e", [{"name": "id", "type": "INTEGER"}], primary_key=["id"])
    p.load_rows("e", ["id"], [[str(i)] for i in range(50)])
    t_old = time.time()
    p.load_rows("e", ["id"], [[str(i)] for i in range(45, 60)], incremental=True)
    # Within the retention (one "day" of 2 s) the old moment restores.
    travel(p, "e", iso(t_old), "in_time")
    hist_file = server.project_file("p1")
    time.sleep(3.5)
    expect_error(travel_raw(p, "e", iso(t_old), "too_late"), 400, "invalid_argument", ["retention"])
    # The sweep removed the history rows: the restore of a moment now within retention still works,
    # and a moment before the cut is refused by the history itself.
    # (the first load replaced an empty table: nothing to record; the incremental one recorded the 5 rows it
    # replaced, and not the 15 it appended: they carry its own _timestamp, so the history needs no copy)
    assert metric(get_metrics(admin), "duckstore_history_rows_expired_total") >= 5
    now = time.time()
    travel(p, "e", iso(now), "fresh")
    assert content(p, "fresh")["rows"] == content(p, "e")["rows"]
    assert hist_file.exists()
    # Retention 0: time travel is off, and writes keep no history.
    expect(admin.put("/projects/p1", {"data_retention_time": 0}), 200)
    expect_error(travel_raw(p, "e", iso(time.time()), "off"), 400, "invalid_argument", ["data_retention_time"])
    t_before = time.time()
    expect(admin.request("DELETE", p.tpath("e") + "/rows", json_body={}), 200)
    t_after = time.time()
    # Turned on again, the history begins after that write: the moment before it is refused.
    expect(admin.put("/projects/p1", {"data_retention_time": 1}), 200)
    expect_error(travel_raw(p, "e", iso(t_before), "gap"), 400, "invalid_argument", ["history", "begins"])
    assert travel(p, "e", iso(t_after), "after_gap")["rows"] == 0


def test_sweep_removes_history_rows(server_factory):
    """The background sweep deletes a dropped table's whole history once its drop is past the retention: the
    rows are counted in /metrics (duckstore_history_rows_expired_total; before, a dropped table's history
    counted 0 rows, so no compaction followed it) and the table can no longer be restored."""
    server, admin, p = _swept_project(server_factory, 1, 1, "w")
    for k in range(5):
        p.load_rows("w", ["id"], [[str(i + k)] for i in range(20)], incremental=False)
    t_drop = time.time()
    expect(admin.delete(p.tpath("w")), 204)
    # Right after the drop the dropped table is still restorable (as it was just before the drop).
    expect(admin.post(f"/projects/p1/buckets/{BUCKET}/time-travel",
                      {"table": "w", "timestamp": iso(t_drop),
                       "destination": {"bucket": BUCKET, "table": "w_back"}}), 201)
    assert metric(get_metrics(admin), "duckstore_history_rows_expired_total") == 0
    time.sleep(3.5)
    r = admin.post(f"/projects/p1/buckets/{BUCKET}/time-travel",
                   {"table": "w", "timestamp": iso(time.time() - 0.5),
                    "destination": {"bucket": BUCKET, "table": "w_late"}})
    # The moment is within retention but the dropped table's history expired with its drop.
    expect_error(r, 404, "not_found", ["w"])
    # 5 full loads of 20 rows: 20 appended each, 20 removed by each later one and by the drop (w_back's own
    # history is younger and stays).
    assert metric(get_metrics(admin), "duckstore_history_rows_expired_total") >= 100


def test_the_sweep_expires_on_time_though_it_leaves_the_project_alone(server_factory):
    """The sweep opens a project only when something of its history can expire (history_expire_next):
    with a retention of 20 s (2 "days" of 10 s) and a sweep every second it opens the project a few
    times, not every second, and still removes the rows an upsert recorded within a sweep or two of
    their moment passing the retention (never before)."""
    server, admin, p = _swept_project(server_factory, 10, 2, "u")
    p.load_rows("u", ["id"], [[str(i)] for i in range(20)], incremental=False)

    def swept():
        return metric(get_metrics(admin), "duckstore_history_sweep_projects_total")

    swept0 = swept()
    w_from = time.time()
    p.load_rows("u", ["id"], [[str(i)] for i in range(10, 30)], incremental=True)  # replaces 10: recorded
    w_to = time.time()
    keep = 20
    t_exp = None
    while time.time() < w_to + keep + 15:
        if metric(get_metrics(admin), "duckstore_history_rows_expired_total") > 0:
            t_exp = time.time()
            break
        time.sleep(0.1)
    assert t_exp is not None, "the upsert's history rows were not removed within 15 s of their expiry"
    assert t_exp >= w_from + keep - 0.5, f"removed {w_from + keep - t_exp:.1f} s before the retention passed"
    assert t_exp <= w_to + keep + 3, f"removed {t_exp - w_to - keep:.1f} s after the retention passed"
    opened = swept() - swept0
    assert opened <= 8, f"the sweep opened the project {opened} times in {t_exp - w_from:.0f} s of 1-s sweeps"
    assert len(content(p, "u")["rows"]) == 30


def test_branch_history_is_its_own(tt):
    tt.create_table("br", [{"name": "id", "type": "INTEGER"}, {"name": "v"}], primary_key=["id"])
    tt.load_rows("br", ["id", "v"], [["1", "main"]])
    expect(tt.api.post("/projects/p1/branches", {"id": "dev"}), 201)
    b = Proj.__new__(Proj)
    b.server, b.admin, b.pid, b.api = tt.server, tt.admin, "p1/branches/dev", tt.api
    b.bucket = BUCKET

    def branch_load(rows):
        f = tt.upload(f"in/{random.random()}.csv", csv_text(rows, header=["id", "v"]))
        expect(tt.api.post(b.tpath("br") + "/import/file", {"file_id": f["id"], "incremental": True}), 200)

    branch_load([["2", "branch"]])
    t_branch = time.time()
    in_branch = content(b, "br")
    branch_load([["3", "branch later"]])
    tt.load_rows("br", ["id", "v"], [["4", "main later"]], incremental=True)
    got = expect(travel_raw(b, "br", iso(t_branch), "br_back"), 201)
    assert got["rows"] == 2
    assert content(b, "br_back") == in_branch
    # Main's history never saw the branch's writes.
    main_then = expect(travel_raw(tt, "br", iso(t_branch), "main_back"), 201)
    assert main_then["rows"] == 1
    # The restored table lives in the branch only.
    names = [x["name"] for x in expect(tt.api.get(f"/projects/p1/buckets/{BUCKET}/tables"), 200)["items"]]
    assert "br_back" not in names


def test_kill_during_restore_leaves_no_half_table(server_factory):
    """kill -9 after the restore's commit, and at a moment while it runs: the table is whole or absent."""
    server = server_factory(env={"DUCKSTORE_TEST_HOOKS": "1", "DUCKSTORE_TEST_CRASH_AFTER_COMMIT": "time_travel"})
    p = Proj(server, server.api(), "p1", bucket=BUCKET)
    p.create_table("big", [{"name": "id", "type": "INTEGER"}, {"name": "v"}], primary_key=["id"])
    p.load_rows("big", ["id", "v"], [[str(i), f"v{i}"] for i in range(20000)])
    t = time.time()
    p.load_rows("big", ["id", "v"], [[str(i), "new"] for i in range(0, 20000, 3)], incremental=True)
    want = 20000

    def restart():
        server.proc.wait(timeout=60)
        server.proc = None
        server.start()

    # 1. Killed right after the commit, before the answer: the table is there, whole.
    try:
        status = travel_raw(p, "big", iso(t), "after_commit").status_code
    except Exception:
        status = None
    assert status != 201, "the crash hook did not fire"
    restart()
    assert p.table("after_commit")["rows"] == want
    # 2. Killed at a moment while restores run: each is whole or absent.
    server.extra_env.pop("DUCKSTORE_TEST_CRASH_AFTER_COMMIT")
    server.proc.kill()
    restart()
    got = server.kill_while([lambda i=i: travel_raw(p, "big", iso(t), f"during{i}").status_code for i in range(3)],
                            random.uniform(0.02, 0.3))
    results = dict(enumerate(got))
    names = [x["name"] for x in expect(p.api.get(f"/projects/p1/buckets/{BUCKET}/tables"), 200)["items"]]
    for i in range(3):
        if f"during{i}" in names:
            assert p.table(f"during{i}")["rows"] == want
        else:
            assert results[i] != 201, "a restore answered 201 and its table is gone"
    assert travel(p, "big", iso(t), "again")["rows"] == want


def test_snapshot_restore_over_the_table_keeps_its_history(tt):
    """A snapshot restored over its table is one more write in the table's history: time travel
    to a moment before the restore brings back the rows the restore replaced, and to a moment
    after it the restored rows."""
    tt.create_table("r", [{"name": "id", "type": "INTEGER"}, {"name": "v"}], primary_key=["id"])
    tt.load_rows("r", ["id", "v"], [["1", "a"], ["2", "b"]])
    snap = expect(tt.api.post("/projects/p1/snapshots", {"bucket": BUCKET, "table": "r"}), 201)
    tt.load_rows("r", ["id", "v"], [["2", "B"], ["3", "c"]], incremental=True)
    time.sleep(0.01)
    before_restore, t1 = content(tt, "r"), time.time()
    time.sleep(0.01)
    expect(tt.api.post(f"/projects/p1/snapshots/{snap['id']}/restore", {"overwrite": True}), 201)
    time.sleep(0.01)
    restored, t2 = content(tt, "r"), time.time()
    assert restored["count"] == 2 and restored != before_restore
    travel(tt, "r", iso(t1), "r_before")
    assert content(tt, "r_before") == before_restore
    travel(tt, "r", iso(t2), "r_after")
    assert content(tt, "r_after") == restored


def test_wide_table_history_is_exact(tt):
    """A table of 300 columns (its history table is made with one statement; its column set is
    recorded 256 rows to a statement, so this crosses that boundary), one with a default holding a
    quote: a moment before an upsert and a new column comes back exactly."""
    n = 300
    cols = [{"name": "id", "type": "INTEGER", "nullable": False}] + \
        [{"name": f"c{i}", "type": "VARCHAR"} for i in range(1, n - 1)] + \
        [{"name": "quoted", "type": "VARCHAR", "default": "it's"}]
    tt.create_table("wide", cols, primary_key=["id"])
    names = [c["name"] for c in cols]
    tt.load_rows("wide", names, [[str(r)] + [f"r{r}c{i}" for i in range(1, n)] for r in range(5)])
    time.sleep(0.05)
    before = content(tt, "wide")
    assert len(before["columns"]) == n and before["count"] == 5
    assert [c for c in tt.table("wide")["columns"] if c["name"] == "quoted"][0]["default"] == "it's"
    at = time.time()
    time.sleep(0.05)
    tt.load_rows("wide", names, [[str(r)] + [f"new{r}c{i}" for i in range(1, n)] for r in range(3, 8)],
                 incremental=True)
    expect(tt.api.post(tt.tpath("wide") + "/columns", {"name": "later"}), 201)
    assert content(tt, "wide")["count"] == 8
    travel(tt, "wide", iso(at), "wide_back")
    back = content(tt, "wide_back")
    assert back["columns"] == before["columns"]
    assert back["primary_key"] == before["primary_key"]
    assert back["rows"] == before["rows"] and back["count"] == 5
    assert [c for c in tt.table("wide_back")["columns"] if c["name"] == "quoted"][0]["default"] == "it's"
