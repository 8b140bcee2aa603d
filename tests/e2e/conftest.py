"""Fixtures: every test gets its own duckstore process(es) and temporary data directory.

    server_factory(env=..., admin_key=..., start=True) -> Server   (any number per test)
    server   -> a started Server with a random DUCKSTORE_ADMIN_KEY
    admin    -> Api with the admin key of `server`

At teardown every server still running is stopped with SIGTERM and must exit with code 0.
"""

import pytest

from e2e_lib import GENERATE, Server


@pytest.fixture
def server_factory(tmp_path):
    servers = []

    def make(env=None, admin_key=GENERATE, start=True):
        s = Server(tmp_path / f"s{len(servers)}", admin_key=admin_key, env=env)
        servers.append(s)
        if start:
            s.start()
        return s

    yield make

    problems = []
    for s in servers:
        if s.running:
            rc = s.stop(check=False)
            if rc != 0:
                problems.append(f"{s.base_dir}: exit code {rc} after SIGTERM (expected 0)\n{s.log_tail()}")
    if problems:
        pytest.fail("\n".join(problems))


@pytest.fixture
def server(server_factory):
    return server_factory()


@pytest.fixture
def admin(server):
    return server.api()
