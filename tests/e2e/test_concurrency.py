"""Many clients at once: concurrent table creation, and bounded write queues."""

import threading
import time

from data_helpers import Proj, csv_text
from e2e_lib import (Api, create_bucket, create_project, describe, expect, expect_error, list_items, metric,
                     parse_metrics, project_stats, run_threads, wait_for)

PROJECTS = 5
CLIENTS = 50
TABLES_PER_CLIENT = 2


def test_50_clients_create_tables_in_5_projects(server, admin):
    keys = {}
    for i in range(PROJECTS):
        pid = f"cc{i}"
        keys[pid] = create_project(admin, pid)["api_key"]
        create_bucket(admin, pid, "c-load")

    def client(n):
        pid = f"cc{n % PROJECTS}"
        api = Api(server, keys[pid])  # own session per thread
        out = []
        for k in range(TABLES_PER_CLIENT):
            name = f"t_{n:02d}_{k}"
            cols = [{"name": "id", "type": "BIGINT", "nullable": False}, {"name": f"v{n}", "type": "DOUBLE"}]
            r = api.post(f"/projects/{pid}/buckets/in.c-load/tables",
                         {"name": name, "columns": cols, "primary_key": ["id"]})
            out.append((pid, name, r.status_code, describe(r)))
        return out

    results = [x for batch in run_threads(CLIENTS, client) for x in batch]
    failed = [d for _, _, status, d in results if status != 201]
    assert not failed, f"{len(failed)} of {len(results)} creates failed:\n" + "\n".join(failed[:10])

    for i in range(PROJECTS):
        pid = f"cc{i}"
        want = sorted(name for p, name, _, _ in results if p == pid)
        assert len(want) == CLIENTS // PROJECTS * TABLES_PER_CLIENT
        items = list_items(admin, f"/projects/{pid}/buckets/in.c-load/tables")
        got = sorted(t["name"] for t in items)
        assert got == want, f"{pid} lists {got}, expected {want}"
        stats = project_stats(admin, pid)
        assert stats["tables"] == len(want), f"{pid} stats {stats}"
        assert stats["buckets"] == 1
        assert expect(admin.get(f"/projects/{pid}/buckets/in.c-load"), 200)["table_count"] == len(want)
        for t in items:
            n = int(t["name"].split("_")[1])
            assert [(c["name"], c["type"]) for c in t["columns"]] == [("id", "BIGINT"), (f"v{n}", "DOUBLE")], t
            assert t["primary_key"] == ["id"]


def test_concurrent_creates_of_the_same_names(server, admin):
    """Races on one name: exactly one winner, the losers get 409, nothing is half-made."""
    create_project(admin, "race")

    def client(n):
        api = Api(server, server.admin_key)
        rb = api.post("/projects/race/buckets", {"stage": "in", "name": "c-same"})
        return rb.status_code, rb

    results = run_threads(20, client)
    codes = sorted(s for s, _ in results)
    assert codes.count(201) == 1, [describe(r) for s, r in results if s not in (201, 409)]
    for s, r in results:
        if s != 201:
            expect_error(r, 409, "already_exists")

    def table_client(n):
        api = Api(server, server.admin_key)
        r = api.post("/projects/race/buckets/in.c-same/tables",
                     {"name": "same", "columns": [{"name": f"c{n}", "type": "INTEGER"}]})
        return r.status_code, r, n

    results = run_threads(20, table_client)
    winners = [n for s, _, n in results if s == 201]
    assert len(winners) == 1, [describe(r) for s, r, _ in results if s not in (201, 409)]
    for s, r, _ in results:
        if s != 201:
            expect_error(r, 409, "already_exists")
    t = expect(admin.get("/projects/race/buckets/in.c-same/tables/same"), 200)
    assert [c["name"] for c in t["columns"]] == [f"c{winners[0]}"], "the table is not the winner's"
    assert project_stats(admin, "race")["tables"] == 1


def test_concurrent_project_creation(server, admin):
    def client(n):
        api = Api(server, server.admin_key)
        r = api.post("/projects", {"id": f"np{n}"})
        return r.status_code, describe(r)

    results = run_threads(30, client)
    bad = [d for s, d in results if s != 201]
    assert not bad, "\n".join(bad[:10])
    ids = sorted(p["id"] for p in list_items(admin, "/projects"))
    assert ids == sorted(f"np{n}" for n in range(30))
    for n in range(30):
        assert server.project_file(f"np{n}").is_file()


def test_small_queue_depth_answers_429_or_success(server_factory):
    """With DUCKSTORE_QUEUE_DEPTH=1 a burst on one project must never hang or 500: each write
    either succeeds or gets 429 queue_full and leaves nothing behind."""
    # Enough workers for the whole burst to reach the write queue at once (by default the HTTP
    # pool lets one project run 8 requests and queues the rest without a thread).
    server = server_factory(env={"DUCKSTORE_QUEUE_DEPTH": "1", "DUCKSTORE_HTTP_WORKERS": "48",
                                 "DUCKSTORE_HTTP_PROJECT_WORKERS": "48"})
    admin = server.api()
    create_project(admin, "q")
    create_bucket(admin, "q", "c-a")

    def client(n):
        api = Api(server, server.admin_key)
        r = api.post("/projects/q/buckets/in.c-a/tables",
                     {"name": f"t{n}", "columns": [{"name": "a", "type": "INTEGER"}, {"name": "b"}]})
        return n, r

    results = run_threads(40, client)
    statuses = [r.status_code for _, r in results]
    assert 201 in statuses, "no write got through a queue of depth 1"
    assert 429 in statuses, "40 simultaneous writes never overflowed a queue of depth 1"
    created = set()
    for n, r in results:
        if r.status_code == 201:
            created.add(f"t{n}")
        else:
            expect_error(r, 429, "queue_full")
    names = {t["name"] for t in list_items(admin, "/projects/q/buckets/in.c-a/tables")}
    assert names == created, f"listed {sorted(names)} but acknowledged {sorted(created)}"
    assert project_stats(admin, "q")["tables"] == len(created)
    # The queue drains: afterwards writes succeed again.
    expect(admin.post("/projects/q/buckets/in.c-a/tables", {"name": "after", "columns": [{"name": "a"}]}), 201)
    samples = admin.get("/metrics").text
    assert "duckstore_queue_waiting" in samples


def test_force_delete_bucket_while_tables_are_created(server, admin):
    """A forced bucket delete racing table creates: each create either lands before the delete
    (201, then removed with the bucket) or finds no bucket (404); no ghost tables remain."""
    create_project(admin, "fd")
    for trial in range(3):
        create_bucket(admin, "fd", "c-a")

        def client(n):
            api = Api(server, server.admin_key)
            if n == 7:
                return n, api.delete("/projects/fd/buckets/in.c-a?force=true")
            return n, api.post("/projects/fd/buckets/in.c-a/tables",
                               {"name": f"t{n}", "columns": [{"name": "x"}]})

        results = run_threads(16, client)
        for n, r in results:
            if n == 7:
                expect(r, 204)
            elif r.status_code != 201:
                expect_error(r, 404, "not_found")
        expect_error(admin.get("/projects/fd/buckets/in.c-a"), 404, "not_found")
        assert list_items(admin, "/projects/fd/buckets") == []
        assert project_stats(admin, "fd")["tables"] == 0
        # Re-created, the bucket is empty: nothing created during the race survives in it.
        assert create_bucket(admin, "fd", "c-a")["table_count"] == 0
        assert list_items(admin, "/projects/fd/buckets/in.c-a/tables") == []
        for n in range(16):
            expect_error(admin.get(f"/projects/fd/buckets/in.c-a/tables/t{n}"), 404, "not_found")
        expect(admin.delete("/projects/fd/buckets/in.c-a"), 204)


class LongImport:
    """Holds table t of a new project with a long import: the first import teaches the write queue
    how long a turn takes (turn, seconds), the second runs in a thread and holds the queue while the
    test talks to the server."""

    def __init__(self, server, admin, project, rows):
        self.admin = admin
        self.proj = Proj(server, admin, project)
        self.proj.create_table("t", ["id", "v"], primary_key=["id"])
        self.big = self.proj.upload("big.csv", csv_text([[str(i), "x" * 20] for i in range(rows)], header=["id", "v"]))
        self.rows = rows
        started = time.monotonic()
        self.proj.import_file("t", {"file_id": self.big["id"], "incremental": True})
        self.turn = time.monotonic() - started
        self.out = {}
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        self.out["r"] = self.proj.import_file_raw("t", {"file_id": self.big["id"], "incremental": True})

    def __enter__(self):
        self.thread.start()
        wait_for(lambda: metric(parse_metrics(self.admin.get("/metrics").text), "duckstore_queue_held") >= 1,
                 "the long import to take its turn", timeout=self.turn * 5 + 10)
        return self

    def __exit__(self, *exc):
        self.thread.join(timeout=self.turn * 10 + 60)
        expect(self.out["r"], 200)

    def import_one(self, row, headers=None):
        small = self.proj.upload(f"{row[0]}.csv", csv_text([row], header=["id", "v"]))
        return self.proj.api.post(self.proj.tpath("t") + "/import/file", {"file_id": small["id"], "incremental": True},
                                  headers=headers or {})

    def rows_now(self):
        return {row[0]: row[1] for row in self.proj.export_rows("t", {"columns": ["id", "v"]})[1]}


def test_a_write_whose_turn_would_come_later_than_the_client_waits_gets_429_at_once(server, admin):
    """A client that says how long it waits (Prefer: wait=N, RFC 7240) is refused at once, with 429
    and Retry-After, when its table's write queue is expected to take longer than that; it changes
    nothing. Without the header, or with a long enough wait, the same write waits and succeeds."""
    held = LongImport(server, admin, "pw", 300_000)
    with held:
        t0 = time.monotonic()
        r = held.import_one(["-1", "refused"], {"Prefer": "respond-async, wait=0"})
        refused_in = time.monotonic() - t0
        expect_error(r, 429, "queue_full", mentions=("busy", "0.001 s it may wait"))
        assert r.headers.get("Retry-After") == "1", describe(r)
        assert refused_in < held.turn, f"the refusal took {refused_in:.2f} s, a whole turn is {held.turn:.2f} s"
        # A client that waits long enough gets its turn after the long import.
        res = expect(held.import_one(["-2", "waited"], {"Prefer": "wait=600"}), 200)
        assert res["imported_rows"] == 1, res
    rows = held.rows_now()
    assert "-1" not in rows, "the refused import wrote its row"
    assert rows.get("-2") == "waited"
    assert len(rows) == 300_001


def test_the_servers_queue_max_wait_bounds_every_write(server_factory):
    """DUCKSTORE_QUEUE_MAX_WAIT bounds the wait of a write that names no bound of its own, and of one
    that asks for a longer one (a client can ask for less, not more); a free queue still serves."""
    server = server_factory(env={"DUCKSTORE_QUEUE_MAX_WAIT": "1s"})
    admin = server.api()
    rows = 1_000_000
    held = LongImport(server, admin, "mw", rows)
    if held.turn < 1.5:
        # A turn must take longer than the 1-s bound for the refusal to be certain: a faster machine
        # gets a longer import (the average kept by the queue is a moving one, so import twice).
        held = LongImport(server, admin, "mw2", int(rows * 3 / held.turn))
    assert held.turn >= 1.5, f"a turn takes {held.turn:.2f} s, not enough to outlast a 1-s bound"
    with held:
        expect_error(held.import_one(["-1", "no header"]), 429, "queue_full", mentions=("busy", "1 s it may wait"))
        r = held.import_one(["-2", "asks for more"], {"Prefer": "wait=600"})
        expect_error(r, 429, "queue_full", mentions=("1 s it may wait",))
        assert r.headers.get("Retry-After") == "1", describe(r)
    rows_now = held.rows_now()
    assert "-1" not in rows_now and "-2" not in rows_now, "a refused import wrote its row"
    assert len(rows_now) == held.rows
    # The queue is free again: the same small write is served at once.
    res = expect(held.import_one(["-3", "free queue"]), 200)
    assert res["imported_rows"] == 1, res
