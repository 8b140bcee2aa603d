"""Circuit breaker: when PostgreSQL goes down, its projects fail fast with 503 naming the backend while
DuckDB projects keep working; when it comes back, the backend recovers on its own.

This test owns a PostgreSQL server of its own (it stops and starts it)."""

import time

import pytest

from conftest import backend_env
from e2e_lib import expect, expect_error
from helpers import Proj
from pg_harness import PgServer


@pytest.fixture
def own_pg():
    s = PgServer()  # under /tmp: pytest's tmp_path is not reachable for the postgres user
    s.start()
    yield s
    s.destroy()


def health(admin, name):
    return {b["name"]: b for b in expect(admin.get("/backends"), 200)["items"]}[name]["health"]


def test_postgres_down_fails_fast_and_recovers(server_factory, own_pg):
    db = own_pg.createdb("breaker")
    s = server_factory(env=backend_env(own_pg, db))
    admin = s.api()
    pgp = Proj(s, admin, "pgp", "postgres")
    ddp = Proj(s, admin, "ddp", "duckdb")
    for p in (pgp, ddp):
        p.create_table("t", ["id", "v"], primary_key=["id"])
        p.load("t", ["id", "v"], [["1", "a"]])

    own_pg.stop()
    # The first call may be the one that finds out; from then on every call fails at once.
    pgp.api.get(pgp.tpath("t"))
    for _ in range(5):
        t0 = time.monotonic()
        r = pgp.api.get(pgp.tpath("t"))
        elapsed = time.monotonic() - t0
        err = expect_error(r, 503, "unavailable", mentions=["postgres"])
        assert elapsed < 0.5, f"not fail-fast: {elapsed:.2f}s ({err['message']})"
    expect_error(pgp.import_raw("t", b"id,v\n2,b\n"), 503, "unavailable")
    expect_error(pgp.preview_raw("t"), 503, "unavailable")
    # DuckDB projects do not notice.
    ddp.load("t", ["id", "v"], [["2", "b"]], incremental=True)
    assert ddp.rows("t") == [["1", "a"], ["2", "b"]]
    assert expect(admin.get("/projects/ddp"), 200)["stats"]["rows"] == 2
    h = health(admin, "postgres")
    assert h["status"] == "unavailable" and h["message"], h
    assert health(admin, "duckdb")["status"] == "ok"
    # The same process also creates new DuckDB projects meanwhile.
    Proj(s, admin, "ddp2", "duckdb")

    own_pg.start()
    deadline = time.monotonic() + 15
    while True:
        r = pgp.api.get(pgp.tpath("t"))
        if r.status_code == 200:
            break
        assert time.monotonic() < deadline, f"no recovery within 15 s: {r.status_code} {r.text}"
        time.sleep(0.1)
    assert health(admin, "postgres")["status"] == "ok"
    pgp.load("t", ["id", "v"], [["2", "b"]], incremental=True)
    assert pgp.rows("t") == [["1", "a"], ["2", "b"]]


def test_registers_while_postgres_is_unreachable(server_factory, own_pg):
    db = own_pg.createdb("late")
    own_pg.stop()
    s = server_factory(env=backend_env(own_pg, db))
    admin = s.api()
    h = health(admin, "postgres")
    assert h["status"] == "unavailable", h
    expect_error(admin.post("/projects", {"id": "early", "backend": "postgres"}), 503, "unavailable")
    expect_error(admin.get("/projects/early"), 404, "not_found")
    own_pg.start()
    deadline = time.monotonic() + 15
    while health(admin, "postgres")["status"] != "ok":
        assert time.monotonic() < deadline, "the backend did not recover on its own"
        time.sleep(0.2)
    Proj(s, admin, "late", "postgres").create_table("t", ["a"])


def test_restart_of_postgres_costs_no_failed_request(server_factory, own_pg):
    db = own_pg.createdb("restart")
    s = server_factory(env=backend_env(own_pg, db))
    admin = s.api()
    p = Proj(s, admin, "rp", "postgres")
    p.create_table("t", ["a"])
    own_pg.stop()
    own_pg.start()
    own_pg.wait_ready()
    # Pooled connections died with the old server; they are replaced before use.
    for _ in range(8):
        expect(p.api.get(p.tpath("t")), 200)
