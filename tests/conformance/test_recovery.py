"""Startup recovery with the PostgreSQL backend: a project whose catalog row is gone is removed from
PostgreSQL (orphan), but a database that belongs to another data directory is never swept."""

from conftest import backend_env
from e2e_lib import expect, expect_error
from helpers import Proj


def test_second_instance_never_removes_the_owners_projects(server_factory, pg, pg_db):
    a = server_factory(env=backend_env(pg, pg_db))
    pa = Proj(a, a.api(), "owned", "postgres")
    pa.create_table("t", ["id"])
    pa.load("t", ["id"], [["1"]])
    # Another data directory pointed at the same database by mistake.
    b = server_factory(env=backend_env(pg, pg_db))
    warned = [r["msg"] for r in b.log_records() if r.get("level") in ("warn", "error")]
    assert any("belongs to data directory" in m for m in warned), warned
    assert pa.rows("t") == [["1"]], "the owner's project lost its data"
    b.stop()


def test_orphan_project_storage_is_removed_at_startup(server_factory, pg, pg_db):
    s = server_factory(env=backend_env(pg, pg_db))
    admin = s.api()
    p = Proj(s, admin, "gone", "postgres")
    p.create_table("t", ["id"])
    assert pg.psql("SELECT count(*) FROM _duckstore.projects WHERE id = 'gone'", db=pg_db).strip() == "1"
    s.stop()
    # The catalog forgets the project (as after a crash between its steps); PostgreSQL still has it.
    s.data_dir.joinpath("catalog.duckdb").unlink()
    wal = s.data_dir.joinpath("catalog.duckdb.wal")
    if wal.exists():
        wal.unlink()
    s.start()
    expect_error(s.api().get("/projects/gone"), 404, "not_found")
    assert pg.psql("SELECT count(*) FROM _duckstore.projects WHERE id = 'gone'", db=pg_db).strip() == "0"
    assert pg.psql("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'gone/%'", db=pg_db).strip() == "0"
    # And the id is free again on that backend.
    expect(s.api().post("/projects", {"id": "gone", "backend": "postgres"}), 201)
