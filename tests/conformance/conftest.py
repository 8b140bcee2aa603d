"""Fixtures of the backend conformance suite.

Every test marked with the `backend` fixture runs once per backend ("duckdb", "postgres") against
the real binary, exactly like tests/e2e: its own duckstore process on a free loopback port with a
temporary data directory, the PostgreSQL plugin loaded from build/plugins (DUCKSTORE_PLUGIN_DIR),
and a fresh PostgreSQL database of its own on a real PostgreSQL server that this suite starts
once per session (pg_harness.py). The same assertions hold for both backends: that is the
conformance.

    pg              the session's PostgreSQL server (PgServer)
    server          a started duckstore with both backends registered
    admin           Api with the admin key of `server`
    backend         "duckdb" | "postgres" (parametrized)
    proj            Proj "p1" on `backend`, with bucket in.c-main
"""

import sys
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from e2e_lib import Server, server_factory_fixture  # noqa: E402
from helpers import Proj  # noqa: E402
from pg_harness import PgServer  # noqa: E402

PLUGIN_DIR = ROOT / "build" / "plugins"
TEST_PLUGIN_DIR = ROOT / "build" / "test-plugins"
BACKENDS = ["duckdb", "postgres"]


@pytest.fixture(scope="session")
def pg():
    assert (PLUGIN_DIR / "libds_postgres.so").exists(), \
        f"{PLUGIN_DIR}/libds_postgres.so is missing: build it with `make` (mk/plugins.mk)"
    s = PgServer()
    s.start()
    yield s
    s.destroy()


@pytest.fixture
def pg_db(pg):
    return pg.createdb("t_" + uuid.uuid4().hex[:16])


@pytest.fixture
def server_factory(tmp_path):
    yield from server_factory_fixture(tmp_path, Server)


def backend_env(pg, database, **extra):
    env = {"DUCKSTORE_PLUGIN_DIR": str(PLUGIN_DIR)}
    env.update(pg.env(database))
    env.update(extra)
    return env


@pytest.fixture
def server(server_factory, pg, pg_db):
    return server_factory(env=backend_env(pg, pg_db))


@pytest.fixture
def admin(server):
    return server.api()


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def proj(server, admin, backend):
    return Proj(server, admin, "p1", backend)
