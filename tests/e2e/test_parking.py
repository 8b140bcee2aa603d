"""Requests parked in a write queue (they wait for a table's write slot without holding a worker)
run their command again from the start when their turn comes. Whatever a request took on its first
run must still be its own on the next one, and everything must be let go when it ends: a write
slot, a project pin or an idempotency entry left behind makes later requests wait for ever."""
import threading
import time

from data_helpers import Proj, csv_text
from e2e_lib import expect, get_metrics
from test_serving import serving_env


def _queued(admin):
    return next(v for n, _, v in get_metrics(admin) if n == "duckstore_queue_waiting")


def test_parked_idempotent_writes_answer_and_leave_nothing_behind(server_factory):
    """Imports with Idempotency-Keys queue for one table. Each begins its key once: when a parked
    import runs again it must not wait for its own first run's answer (which held the table's slot
    and its key's entry until the hour-long idempotency wait ran out). Every import answers 200 in
    order, a repeat of each replays its answer, and the table and the project are free afterwards."""
    server = server_factory(env=serving_env(DUCKSTORE_HTTP_WORKERS=4, DUCKSTORE_HTTP_PROJECT_WORKERS=4))
    admin = server.api()
    p = Proj(server, admin, "idemq")
    p.create_table("t", ["id", "payload"])
    rows = 40_000
    fid = p.upload("in/t.csv", csv_text([[str(i), "x" * 40] for i in range(rows)], header=["id", "payload"]))["id"]

    n = 6
    answers = {}

    def writer(i):
        t0 = time.monotonic()
        r = p.api.post(p.tpath("t") + "/import/file", {"file_id": fid, "incremental": True},
                       headers={"Idempotency-Key": f"load-{i}"})
        answers[i] = (r.status_code, time.monotonic() - t0, r.text[:200])

    ts = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(n)]
    for t in ts:
        t.start()
    seen = 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and seen < 2 and any(t.is_alive() for t in ts):
        seen = max(seen, _queued(admin))
        time.sleep(0.02)
    assert seen >= 2, f"the imports never queued for the table (at most {seen} waiting)"
    for t in ts:
        t.join(40)
    assert len(answers) == n, f"imports still running after 40 s (parked ones waited for themselves): {answers}"
    assert all(a[0] == 200 for a in answers.values()), answers
    assert p.table("t")["rows"] == n * rows

    # Each key kept its own answer: a repeat replays it and writes nothing.
    for i in range(n):
        r = p.api.post(p.tpath("t") + "/import/file", {"file_id": fid, "incremental": True},
                       headers={"Idempotency-Key": f"load-{i}"})
        expect(r, 200)
        assert r.headers.get("Idempotent-Replayed") == "true", (i, r.headers)
    assert p.table("t")["rows"] == n * rows
    assert _queued(admin) == 0
    # Nothing holds the project: its delete does not wait for a request that is gone.
    t0 = time.monotonic()
    expect(admin.delete("/projects/idemq"), 204)
    assert time.monotonic() - t0 < 5
