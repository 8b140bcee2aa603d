"""A request over the memory budget (DUCKSTORE_MEMORY_LIMIT, the storage engine's limit, which
every request shares) fails with a clear 503 `resource_exhausted` naming the limit, changes
nothing, and the server serves on, that request's table included.

The limit is the engine's, shared by all requests: while the big import holds it, a small request
of another project can also be refused with the same clear 503 (seen on a 2-core machine). It
never gets any other error, and once the import has failed every request succeeds again."""

import threading

import requests

from data_helpers import Proj
from e2e_lib import expect, expect_error


def test_an_import_over_the_memory_limit_is_503_resource_exhausted_and_the_server_serves_on(server_factory):
    server = server_factory(env={"DUCKSTORE_MEMORY_LIMIT": "24MB"})
    admin = server.api()
    p = Proj(server, admin, "budget")
    other = Proj(server, admin, "other")
    p.create_table("t", ["id", "v"])
    other.create_table("o", ["id", "v"])
    fid_small = p.upload("small.csv", "id,v\n1,a\n2,b\n")["id"]
    expect(p.api.post(p.tpath("t") + "/import/file", {"file_id": fid_small, "incremental": True}), 200)
    # One value of 30 MB: the engine must hold its line at once, more than the whole limit.
    fid_big = p.upload("big.csv", "id,v\n3," + "x" * (30 << 20) + "\n")["id"]

    reads = []

    def reader():
        api = server.api(other.key)
        for _ in range(20):
            reads.append(api.get(other.tpath("o")).status_code)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    r = p.api.post(p.tpath("t") + "/import/file", {"file_id": fid_big, "incremental": True})
    t.join(30)
    err = expect_error(r, 503, "resource_exhausted", ["DUCKSTORE_MEMORY_LIMIT", "Out of Memory"])
    assert "\n" not in err["message"] and "temp_directory" not in err["message"], err
    assert len(reads) == 20 and set(reads) <= {200, 503}, f"another project's reads meanwhile: {reads}"
    # After the failed import, the other project is served in full.
    api = server.api(other.key)
    assert [api.get(other.tpath("o")).status_code for _ in range(20)] == [200] * 20

    # Nothing changed, and the same table, project and server serve on.
    assert p.rows("t") == [["1", "a"], ["2", "b"]]
    assert requests.get(server.url + "/health", timeout=5).status_code == 200
    fid_more = p.upload("more.csv", "id,v\n4,d\n")["id"]
    expect(p.api.post(p.tpath("t") + "/import/file", {"file_id": fid_more, "incremental": True}), 200)
    assert p.table("t")["rows"] == 3
