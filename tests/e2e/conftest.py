"""Fixtures: every test gets its own duckstore process(es) and temporary data directory.

    server_factory(env=..., admin_key=..., start=True) -> Server   (any number per test)
    server   -> a started Server with a random DUCKSTORE_ADMIN_KEY
    admin    -> Api with the admin key of `server`

At teardown every server still running is stopped with SIGTERM and must exit with code 0.
"""

import pytest

from e2e_lib import Server, server_factory_fixture


@pytest.fixture
def server_factory(tmp_path):
    yield from server_factory_fixture(tmp_path, Server)


@pytest.fixture
def server(server_factory):
    return server_factory()


@pytest.fixture
def admin(server):
    return server.api()
