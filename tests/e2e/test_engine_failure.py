"""A fatal DuckDB error is healed without a restart of the service.

All projects live in one DuckDB instance, and DuckDB invalidates the whole instance after a FATAL
or INTERNAL error. The DuckDB backend then fails the calls in flight with a clear 503 (no DuckDB
stack trace, no host path), reopens the instance once they have ended, and attaches projects again
on demand; each project's WAL replays what was committed, so nothing acknowledged is lost. The
failure is logged at level error with DuckDB's message and counted in /metrics.

The failure is provoked for real through the test hook (DUCKSTORE_TEST_HOOKS=1 and the file
<data>/test-hooks/engine-fatal): the next call makes DuckDB abort a checkpoint with its own debug
setting, which raises a FATAL error and invalidates the instance exactly as any fatal error does.
"""

import json
import threading
from pathlib import Path

from data_helpers import Proj
from e2e_lib import describe, expect, get_metrics, metric, wait_for

HDR = ["id", "v"]
ENGINE_FAILED = "the storage engine failed internally and is being restarted"
WAIT_S = 120  # generous for the ASan build on a loaded machine


def provoke(server):
    hooks = server.data_dir / "test-hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "engine-fatal").touch()


# The checkout the server runs from: no path of it may reach a client.
REPO = str(Path(__file__).resolve().parents[2])


def assert_clean_503(server, r):
    assert r.status_code == 503, describe(r)
    err = r.json()["error"]
    assert err["code"] == "unavailable", describe(r)
    assert ENGINE_FAILED in err["message"], describe(r)
    for leak in ("Stack Trace", "libduckdb", "FATAL", "INTERNAL", str(server.data_dir), REPO, "/tmp/"):
        assert leak not in r.text, f"the client sees {leak!r}: {describe(r)}"


def restarts(admin):
    return metric(get_metrics(admin), "duckstore_engine_restarts_total")


def test_fatal_engine_error_heals_without_restart_and_loses_nothing(server_factory):
    server = server_factory(env={"DUCKSTORE_TEST_HOOKS": "1"})
    admin = server.api()
    a, b = Proj(server, admin, "ea"), Proj(server, admin, "eb")
    for p in (a, b):
        p.create_table("t", HDR)
    a.load_rows("t", HDR, [["1", "a1"], ["2", "a2"]], incremental=True)
    b.load_rows("t", HDR, [["1", "b1"]], incremental=True)
    a.create_table("made_before", HDR)
    assert restarts(admin) == 0

    provoke(server)
    # The call in flight when DuckDB fails gets a clean 503.
    assert_clean_503(server, a.api.get(a.tpath("t")))
    assert not (server.data_dir / "test-hooks" / "engine-fatal").exists(), "the hook was not consumed"

    # Without a restart: the other project and the same one work, with every acknowledged write.
    assert b.rows("t") == [["1", "b1"]]
    assert a.rows("t") == [["1", "a1"], ["2", "a2"]]
    assert {t["name"] for t in expect(a.api.get(f"/projects/ea/buckets/{a.bucket}/tables"), 200)["items"]} == \
        {"t", "made_before"}
    a.load_rows("t", HDR, [["3", "a3"]], incremental=True)
    b.create_table("made_after", HDR)
    assert a.table("t")["rows"] == 3
    assert expect(server.api(key=None).get("/health"), 200) == {"status": "ok"}

    assert restarts(admin) == 1
    lines = [json.loads(line) for line in server.log_lines() if line.startswith("{")]
    fatal = [x for x in lines if x["level"] == "error" and "Checkpoint aborted before header write" in x["msg"]]
    assert fatal, "DuckDB's message is not in the log at level error:\n" + server.log_tail()
    assert any(x["level"] == "error" and "reopened" in x["msg"] for x in lines), server.log_tail()

    # A clean restart of the service finds everything as acknowledged.
    server.restart()
    admin = server.api()
    assert a.rows("t") == [["1", "a1"], ["2", "a2"], ["3", "a3"]]
    assert b.rows("t") == [["1", "b1"]]
    assert b.table("made_after")["name"] == "made_after"


def test_calls_in_flight_fail_with_503_and_later_calls_succeed(server_factory):
    """Several projects busy at the moment of the failure: each call either succeeds or gets the clean
    503; every import that was acknowledged is present afterwards, and every project works again."""
    server = server_factory(env={"DUCKSTORE_TEST_HOOKS": "1"})
    admin = server.api()
    projs = [Proj(server, admin, f"f{i}") for i in range(3)]
    for p in projs:
        p.create_table("t", HDR)
    acked = {p.pid: [] for p in projs}
    bad = []
    stop = threading.Event()

    def load(p):
        k = 0
        while not stop.is_set():
            k += 1
            f = p.upload(f"in/{k}.csv", f"id,v\n{k},{p.pid}-{k}\n")
            r = p.import_file_raw("t", {"file_id": f["id"], "incremental": True})
            if r.status_code == 200:
                acked[p.pid].append(str(k))
            elif r.status_code == 503:
                try:
                    assert_clean_503(server, r)
                except AssertionError as e:
                    bad.append(str(e))
            else:
                bad.append(describe(r))

    threads = [threading.Thread(target=load, args=(p,)) for p in projs]
    for t in threads:
        t.start()
    def wait_until(cond, what):
        """A server that died or hangs fails the test instead of hanging it."""
        wait_for(cond, what, WAIT_S, detail=server.log_tail)

    try:
        wait_until(lambda: sum(len(v) for v in acked.values()) >= 6, "6 imports acknowledged")
        provoke(server)
        wait_until(lambda: not (server.data_dir / "test-hooks" / "engine-fatal").exists(), "the hook consumed")
        before = sum(len(v) for v in acked.values())
        wait_until(lambda: sum(len(v) for v in acked.values()) >= before + 6, "6 more imports after the failure")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)
    assert not bad, "answers other than 200 or the clean 503:\n" + "\n".join(bad[:5])
    for p in projs:
        ids = {row[0] for row in p.rows("t")}
        lost = [k for k in acked[p.pid] if k not in ids]
        assert not lost, f"project {p.pid}: acknowledged imports lost: {lost}"
    assert restarts(admin) == 1
