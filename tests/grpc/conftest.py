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
from e2e_lib import server_factory_fixture


@pytest.fixture
def server_factory(tmp_path):
    yield from server_factory_fixture(tmp_path, GrpcServer)


@pytest.fixture
def server(server_factory):
    return server_factory()


@pytest.fixture(params=["grpc", "bridge"])
def driver(request, server):
    d = Driver(server, request.param)
    yield d
    d.close()
