"""The DuckDB backend's cache of recent previews, through the real binary.

A preview asked again is answered from memory (the metrics count the hit) with the same rows, until
anything writes the project: then the next preview shows the write. Each test asks a preview twice
before a write (so an entry exists and was used), writes, and checks the preview that follows shows
the write. Also: requests differing in columns, order, filters or limit get their own answers;
aliases, links and branches; writes racing with previews (an acknowledged write is never hidden by
an older cached answer); the memory bound; the cache turned off; a bad setting refusing to start.
"""

import subprocess
import threading
import time

from data_helpers import Proj
from e2e_lib import BINARY, expect, free_port, get_metrics, metric

B = "in.c-main"


def counters(admin):
    s = get_metrics(admin)
    return (metric(s, "duckstore_preview_cache_hits_total"), metric(s, "duckstore_preview_cache_misses_total"),
            metric(s, "duckstore_preview_cache_bytes"))


def primed(admin, p, table, bucket=None, **params):
    """The preview, asked twice: the second must be a hit with the same answer. Returns it."""
    first = p.preview(table, bucket, **params)
    h0, _, _ = counters(admin)
    second = p.preview(table, bucket, **params)
    h1, _, _ = counters(admin)
    assert h1 == h0 + 1, f"the second preview of {table} {params} was not answered from the cache"
    assert second == first, f"the cached answer differs from the query's:\n{first}\n{second}"
    return second


def table_with_rows(p, name="t"):
    p.create_table(name, [{"name": "id", "type": "INTEGER", "nullable": False}, {"name": "v"}], primary_key=["id"])
    p.load_rows(name, ["id", "v"], [["1", "a"], ["2", "b"], ["3", "c"]])


def rows(p, table, **params):
    return sorted(p.preview(table, **params)["rows"])


def test_every_kind_of_write_shows_in_the_next_preview(server, admin):
    p = Proj(server, admin, "pc1")
    table_with_rows(p)
    p.create_table("src", [{"name": "id", "type": "INTEGER", "nullable": False}, {"name": "v"}], primary_key=["id"])
    p.load_rows("src", ["id", "v"], [["7", "from src"]])
    assert sorted(primed(admin, p, "t")["rows"]) == [["1", "a"], ["2", "b"], ["3", "c"]]

    def step(what, write, expected):
        primed(admin, p, "t")
        write()
        got = rows(p, "t")
        assert got == expected, f"after {what} the preview shows {got}, expected {expected}"

    step("an incremental import", lambda: p.load_rows("t", ["id", "v"], [["2", "B"], ["4", "d"]], incremental=True),
         [["1", "a"], ["2", "B"], ["3", "c"], ["4", "d"]])
    step("a delete of rows", lambda: expect(p.api.request(
        "DELETE", p.tpath("t") + "/rows",
        json_body={"where_filters": [{"column": "id", "operator": "eq", "values": ["1"]}]}), 200),
        [["2", "B"], ["3", "c"], ["4", "d"]])
    step("a column added", lambda: expect(p.api.post(p.tpath("t") + "/columns", {"name": "w", "default": "z"}), 201),
         [["2", "B", "z"], ["3", "c", "z"], ["4", "d", "z"]])
    step("a column dropped", lambda: expect(p.api.delete(p.tpath("t") + "/columns/w"), 204),
         [["2", "B"], ["3", "c"], ["4", "d"]])
    step("an import from another table", lambda: expect(p.import_table_raw(
        "t", {"source": {"bucket": B, "table": "src"}, "incremental": True}), 200),
        [["2", "B"], ["3", "c"], ["4", "d"], ["7", "from src"]])
    step("a full load", lambda: p.load_rows("t", ["id", "v"], [["9", "only"]]), [["9", "only"]])
    step("a delete of every row", lambda: expect(p.api.request("DELETE", p.tpath("t") + "/rows", json_body={}), 200),
         [])

    # dropped and created again under the same name
    p.load_rows("t", ["id", "v"], [["5", "old"]])
    primed(admin, p, "t")
    expect(p.api.delete(p.tpath("t")), 204)
    assert p.preview_raw("t").status_code == 404, "a dropped table still previews"
    p.create_table("t", [{"name": "id", "type": "INTEGER", "nullable": False}, {"name": "v"}], primary_key=["id"])
    p.load_rows("t", ["id", "v"], [["5", "new"]])
    assert rows(p, "t") == [["5", "new"]]

    # the same answers after a restart (nothing cached survives one, and nothing needs to)
    primed(admin, p, "t")
    server.restart()
    assert rows(p, "t") == [["5", "new"]]


def test_columns_order_filters_and_limit_each_get_their_own_answer(server, admin):
    p = Proj(server, admin, "pc2")
    table_with_rows(p)
    asks = [
        ({}, [["1", "a"], ["2", "b"], ["3", "c"]]),
        ({"columns": "v"}, [["a"], ["b"], ["c"]]),
        ({"order_by": "id:desc", "limit": 2}, [["3", "c"], ["2", "b"]]),
        ({"order_by": "id:desc", "limit": 1}, [["3", "c"]]),
        ({"order_by": "id", "limit": 1}, [["1", "a"]]),
        ({"where": "v:eq:b"}, [["2", "b"]]),
        ({"where": "v:eq:c"}, [["3", "c"]]),
        ({"where": "v:ne:c"}, [["1", "a"], ["2", "b"]]),
        ({"where": "v:ne:c", "columns": "id"}, [["1"], ["2"]]),
    ]
    for params, expected in asks:
        got = primed(admin, p, "t", **params)["rows"]
        if "order_by" not in params:
            got = sorted(got)
        assert got == expected, f"preview {params}: {got}, expected {expected}"
    # asked again in another order, each still gets its own
    for params, expected in reversed(asks):
        got = p.preview("t", **params)["rows"]
        assert (got if "order_by" in params else sorted(got)) == expected, params


def test_aliases_and_links_show_their_source_table_writes(server, admin):
    p1, p2 = Proj(server, admin, "pc3"), Proj(server, admin, "pc4")
    table_with_rows(p1)
    expect(p1.api.post(f"/projects/{p1.pid}/buckets", {"stage": "out", "name": "c-views"}), 201)
    expect(p1.api.post(p1.tpath("t") + "/alias", {"bucket": "out.c-views", "name": "al"}), 201)
    expect(p1.api.post(f"/projects/{p1.pid}/buckets/{B}/share", {"to": [p2.pid]}), 200)
    expect(p2.api.post(f"/projects/{p2.pid}/buckets/in.c-linked/link",
                       {"source_project": p1.pid, "source_bucket": B}), 201)
    primed(admin, p1, "al", bucket="out.c-views")
    primed(admin, p2, "t", bucket="in.c-linked")
    p1.load_rows("t", ["id", "v"], [["4", "d"]], incremental=True)
    want = [["1", "a"], ["2", "b"], ["3", "c"], ["4", "d"]]
    assert sorted(p1.preview("al", bucket="out.c-views")["rows"]) == want, "the alias shows the table before the import"
    assert sorted(p2.preview("t", bucket="in.c-linked")["rows"]) == want, "the link shows the table before the import"


def test_a_branch_and_main_keep_their_own_answers(server, admin):
    p = Proj(server, admin, "pc5")
    table_with_rows(p)
    expect(p.api.post(f"/projects/{p.pid}/branches", {"id": "dev", "name": "dev"}), 201)
    bt = f"/projects/{p.pid}/branches/dev/buckets/{B}/tables/t"

    def bpreview():
        r = expect(p.api.get(bt + "/preview"), 200)
        return sorted(r["rows"])

    primed(admin, p, "t")
    assert bpreview() == bpreview() == [["1", "a"], ["2", "b"], ["3", "c"]]
    f = p.upload("in/branch.csv", "id,v\n2,dev\n")
    expect(p.api.post(bt + "/import/file", {"file_id": f["id"], "incremental": True}), 200)
    assert bpreview() == [["1", "a"], ["2", "dev"], ["3", "c"]], "the branch does not show its own write"
    assert rows(p, "t") == [["1", "a"], ["2", "b"], ["3", "c"]], "main shows the branch's write"
    primed(admin, p, "t")
    p.load_rows("t", ["id", "v"], [["3", "main"]], incremental=True)
    assert rows(p, "t") == [["1", "a"], ["2", "b"], ["3", "main"]]
    assert bpreview() == [["1", "a"], ["2", "dev"], ["3", "c"]], "main's write reached the branch's copy"


def test_an_acknowledged_write_is_never_hidden_by_a_cached_answer(server, admin):
    """One writer upserts row 1 with increasing versions; readers preview all the time. Every preview
    that starts after an import returned shows that import's version or a later one."""
    p = Proj(server, admin, "pc6")
    p.create_table("t", [{"name": "id", "type": "INTEGER", "nullable": False},
                         {"name": "ver", "type": "INTEGER"}], primary_key=["id"])
    p.load_rows("t", ["id", "ver"], [["1", "0"]])
    acked = [0]
    stop = threading.Event()
    failures = []

    def reader():
        while not stop.is_set():
            floor = acked[0]
            got = int(p.preview("t")["rows"][0][1])
            if got < floor:
                failures.append(f"preview showed version {got} after version {floor} was acknowledged")

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for ver in range(1, 31):
            p.load_rows("t", ["id", "ver"], [["1", str(ver)]], incremental=True)
            acked[0] = ver
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not failures, failures[:5]
    hits, misses, _ = counters(admin)
    assert hits > 0, "the readers never got an answer from the cache"
    assert rows(p, "t") == [["1", "30"]]


def test_memory_bound_and_turned_off(server_factory):
    small = server_factory(env={"DUCKSTORE_BE_DUCKDB_PREVIEW_CACHE": "64KiB"})
    sa = small.api()
    p = Proj(small, sa, "pc7")
    p.create_table("t", ["id", "text"])
    p.load_rows("t", ["id", "text"], [[str(i), "x" * 200] for i in range(300)])
    for limit in range(1, 60):
        p.preview("t", limit=limit * 5)
    _, _, held = counters(sa)
    assert 0 < held <= 64 * 1024, f"the cache holds {held} bytes with a bound of 64 KiB"

    off = server_factory(env={"DUCKSTORE_BE_DUCKDB_PREVIEW_CACHE": "0"})
    oa = off.api()
    q = Proj(off, oa, "pc8")
    table_with_rows(q)
    for _ in range(3):
        assert rows(q, "t") == [["1", "a"], ["2", "b"], ["3", "c"]]
    assert counters(oa) == (0, 0, 0), "a cache turned off answered or counted"


def test_a_detached_project_leaves_no_cached_preview(server_factory):
    """Attaching a file again gives its project a new epoch, so entries from before a detach could
    never answer again: the detach frees them (the idle server gives that memory back too)."""
    s = server_factory(env={"DUCKSTORE_BE_DUCKDB_IDLE_DETACH": "1s"})
    sa = s.api()
    p = Proj(s, sa, "pc9")
    table_with_rows(p)
    first = primed(sa, p, "t")
    assert counters(sa)[2] > 0, "no cached preview to free"
    deadline = time.monotonic() + 30
    while metric(get_metrics(sa), "duckstore_open_projects") > 0 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert metric(get_metrics(sa), "duckstore_open_projects") == 0, "the idle project was not detached"
    assert counters(sa)[2] == 0, f"the detached project's previews still hold {counters(sa)[2]} bytes"
    h0, m0, _ = counters(sa)
    assert p.preview("t") == first
    h1, m1, _ = counters(sa)
    assert (h1, m1) == (h0, m0 + 1), "the preview after the detach was not read afresh"


def test_a_bad_setting_stops_startup_naming_it(tmp_path):
    env = {"DUCKSTORE_BE_DUCKDB_PREVIEW_CACHE": "lots", "PATH": "/usr/bin:/bin"}
    r = subprocess.run([str(BINARY), "serve", "--data-dir", str(tmp_path / "d"), "--http-addr", f"127.0.0.1:{free_port()}",
                        "--grpc-addr", "off"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0, "the server started with a preview cache size of 'lots'"
    assert "DUCKSTORE_BE_DUCKDB_PREVIEW_CACHE" in r.stderr and "lots" in r.stderr, r.stderr


def test_values_with_any_text_come_back_exactly(server, admin):
    """The preview's JSON is written without a JSON tree: quotes, backslashes, control characters and
    non-ASCII text come back as loaded, from the query and from the cache alike."""
    p = Proj(server, admin, "pc9")
    texts = ['say "hi"', "back\\slash", "line\nbreak\ttab", "ctl\x01\x1f\x7f", "čeština ✓ 😀", "</script>", "a,b;c|d"]
    p.create_table("t", [{"name": "id", "type": "INTEGER", "nullable": False}, {"name": "v"}], primary_key=["id"])
    p.load_rows("t", ["id", "v"], [[str(i), t] for i, t in enumerate(texts)])
    want = [[str(i), t] for i, t in enumerate(texts)]
    got = primed(admin, p, "t", order_by="id")["rows"]
    assert got == want
    r = p.preview_raw("t", order_by="id")
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    assert r.text.endswith("\n") and r.json()["columns"] == ["id", "v"]


def test_reads_leave_the_cached_preview_in_place(server, admin):
    """An export and a workspace's reads of the table (a FULL load, a query over a VIEW load) change no
    data: the preview asked after them is still answered from the cache, with the same rows."""
    p = Proj(server, admin, "pc10")
    table_with_rows(p)
    before = primed(admin, p, "t")
    expect(p.api.post(p.tpath("t") + "/export", {"format": "csv"}), 201)
    expect(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "w"}), 201)
    ws = f"/projects/{p.pid}/workspaces/w"
    for kind in ("full", "view"):
        r = expect(p.api.post(ws + "/load", {"source": {"bucket": p.bucket, "table": "t"}, "destination": kind,
                                             "type": kind}), 200)
        assert r["rows"] == 3, r
    assert expect(p.api.post(ws + "/query", {"sql": "SELECT count(*) FROM view"}), 200)["rows"] == [["3"]]
    h0, _, _ = counters(admin)
    after = p.preview("t")
    h1, _, _ = counters(admin)
    assert h1 == h0 + 1, "a read (export, workspace load or query) dropped the table's cached preview"
    assert after == before


def test_metadata_reads_and_replays_leave_the_cached_preview_in_place(server, admin):
    """A profile, branch lists, a branch's table list and a replayed idempotent import read the project
    and change no data: the preview asked after them is still answered from the cache."""
    p = Proj(server, admin, "pc11")
    table_with_rows(p)
    f = p.upload("in/idem.csv", "id,v\n4,d\n")
    idem = {"Idempotency-Key": "pc11-import-1"}
    body = {"file_id": f["id"], "incremental": True}
    first = expect(p.api.post(p.tpath("t") + "/import/file", body, headers=idem), 200)
    expect(p.api.post(f"/projects/{p.pid}/branches", {"id": "dev"}), 201)
    before = primed(admin, p, "t")
    assert len(before["rows"]) == 4, before
    h0, _, _ = counters(admin)
    expect(p.api.post(p.tpath("t") + "/profile", {}), 200)
    expect(p.api.get(f"/projects/{p.pid}/branches"), 200)
    expect(p.api.get(f"/projects/{p.pid}/branches/dev"), 200)
    assert expect(p.api.post(p.tpath("t") + "/import/file", body, headers=idem), 200) == first, "not a replay"
    after = p.preview("t")
    h1, _, _ = counters(admin)
    assert h1 == h0 + 1, "a read (profile, branch list or get, idempotent replay) dropped the table's cached preview"
    assert after == before
