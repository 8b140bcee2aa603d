"""CSV reading memory scales with the file, not a fixed reservation: DuckDB's reader would take
16 x max_line_size (512 MiB) per import whatever the file, so under a small memory limit a 15-byte
CSV failed, and two small concurrent imports under 1 GiB got 503."""

import threading

from data_helpers import Proj, csv_text
from e2e_lib import expect


def test_small_imports_fit_a_small_memory_limit(server_factory):
    server = server_factory(env={"DUCKSTORE_MEMORY_LIMIT": "400MB"})
    admin = server.api()
    p = Proj(server, admin, "mem")
    p.create_table("t", ["id", "v"])
    fid = p.upload("tiny.csv", "id,v\n1,a\n")["id"]
    expect(p.api.post(p.tpath("t") + "/import/file", {"file_id": fid, "incremental": True}), 200)
    assert p.table("t")["rows"] == 1


def test_concurrent_small_imports_under_a_1g_limit(server_factory):
    server = server_factory(env={"DUCKSTORE_MEMORY_LIMIT": "1GB"})
    admin = server.api()
    p = Proj(server, admin, "mem2")
    tables = [f"t{i}" for i in range(4)]
    fids = {}
    for t in tables:
        p.create_table(t, ["id", "v"])
        fids[t] = p.upload(f"{t}.csv", csv_text([[str(i), "x" * 20] for i in range(200)], header=["id", "v"]))["id"]
    results = {}
    barrier = threading.Barrier(len(tables))

    def run(t):
        api = server.api(p.key)
        barrier.wait()
        results[t] = api.post(p.tpath(t) + "/import/file", {"file_id": fids[t], "incremental": True})

    threads = [threading.Thread(target=run, args=(t,)) for t in tables]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for t, r in results.items():
        assert r.status_code == 200, f"{t}: {r.status_code} {r.text[:300]}"
        assert p.table(t)["rows"] == 200


def test_a_line_as_long_as_its_file_still_loads(server_factory):
    """The line limit derived from the file's size never refuses a line the file really holds."""
    server = server_factory()
    admin = server.api()
    p = Proj(server, admin, "mem3")
    p.create_table("t", ["id", "v"])
    long_value = "y" * (3 << 20)  # one 3 MiB field: the file is one header and one long line
    fid = p.upload("long.csv", f"id,v\n1,{long_value}\n")["id"]
    expect(p.api.post(p.tpath("t") + "/import/file", {"file_id": fid, "incremental": True}), 200)
    assert p.table("t")["rows"] == 1
