"""Fixtures for the storage-driver protocol tests (gRPC Execute and the HTTP bridge).

Like tests/e2e/conftest.py, every test gets its own duckstore process and data directory, here
with gRPC listening on a free loopback port:

    server_factory(env=..., admin_key=..., start=True) -> GrpcServer   (any number per test)
    server   -> a started GrpcServer with a random DUCKSTORE_ADMIN_KEY
    driver   -> a Driver for `server`, once per transport: "grpc" and "bridge"

At teardown every server still running is stopped with SIGTERM and must exit with code 0.
"""

import pytest

from driver_lib import Driver, GrpcServer
from e2e_lib import GENERATE


@pytest.fixture
def server_factory(tmp_path):
    servers = []

    def make(env=None, admin_key=GENERATE, start=True):
        s = GrpcServer(tmp_path / f"s{len(servers)}", admin_key=admin_key, env=env)
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


@pytest.fixture(params=["grpc", "bridge"])
def driver(request, server):
    d = Driver(server, request.param)
    yield d
    d.close()
