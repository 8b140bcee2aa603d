"""Startup recovery with the PostgreSQL backend: recovery never deletes a project's data on its own
judgement. A lost catalog is rebuilt from the copies of the catalog records that PostgreSQL keeps
with each project, and a database that belongs to another data directory is never swept."""

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


def test_lost_catalog_is_rebuilt_from_postgres(server_factory, pg, pg_db):
    s = server_factory(env=backend_env(pg, pg_db))
    admin = s.api()
    p = Proj(s, admin, "kept", "postgres")
    p.create_table("t", ["id"])
    p.load("t", ["id"], [["1"], ["2"]])
    assert pg.psql("SELECT count(*) FROM _duckstore.projects WHERE id = 'kept'", db=pg_db).strip() == "1"
    s.stop()
    # The catalog is lost (deleted, or a disk replaced); PostgreSQL still has the project.
    s.data_dir.joinpath("catalog.duckdb").unlink()
    wal = s.data_dir.joinpath("catalog.duckdb.wal")
    if wal.exists():
        wal.unlink()
    s.start()
    # Nothing was deleted: the project is back, with its backend, its tables, its rows and its key.
    got = expect(s.api().get("/projects/kept"), 200)
    assert got["backend"] == "postgres", got
    assert pg.psql("SELECT count(*) FROM _duckstore.projects WHERE id = 'kept'", db=pg_db).strip() == "1"
    assert sorted(p.rows("t")) == [["1"], ["2"]]
    # And the id stays taken.
    expect_error(s.api().post("/projects", {"id": "kept", "backend": "postgres"}), 409, "already_exists")
