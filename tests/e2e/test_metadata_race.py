"""Concurrent imports into two tables while tables are created and dropped in the same project.

DuckDB 1.4 raises an INTERNAL error ("Unaligned fetch in validity and main column data for update")
when an UPDATE of a table races with rows another transaction's commit appends to the same table
(duckdb/duckdb#19688), and that error invalidates the whole engine instance: every project was down
until a restart. The table metadata (_ds.tables) got exactly that mix: every import UPDATEd its
table's row while every table create appended one. The backend now never UPDATEs it (rows are
rewritten as DELETE + INSERT), so this load must run with every request answered with success and
no engine restart.

DS_RACE_SECONDS sets the duration (default 15).
"""

import os
import threading
import time

from data_helpers import Proj, csv_text
from e2e_lib import describe, get_metrics, metric

SECONDS = float(os.environ.get("DS_RACE_SECONDS") or 15)
HDR = ["id", "v"]


def test_imports_and_table_creates_in_one_project_never_break_the_engine(server, admin):
    p = Proj(server, admin, "race")
    for t in ("inc0", "inc1"):
        p.create_table(t, HDR)
    stop = threading.Event()
    failures, counts, lock = [], {"imports": 0, "creates": 0, "drops": 0}, threading.Lock()

    def fail(r, what):
        with lock:
            failures.append(f"{what}: {describe(r)}")
        stop.set()

    def importer(w):
        table = f"inc{w % 2}"
        f = p.upload(f"in/{w}.csv", csv_text([[f"{w}-{i}", "x"] for i in range(20)], header=HDR))
        while not stop.is_set():
            r = p.import_file_raw(table, {"file_id": f["id"], "incremental": True})
            if r.status_code != 200:
                return fail(r, "incremental import")
            with lock:
                counts["imports"] += 1

    def ddl(w):
        k = 0
        base = f"/projects/race/buckets/{p.bucket}/tables"
        while not stop.is_set():
            name = f"d{w}_{k}"
            k += 1
            r = p.api.post(base, {"name": name, "columns": [{"name": "id"}, {"name": "note"}]})
            if r.status_code != 201:
                return fail(r, "table create")
            with lock:
                counts["creates"] += 1
            if k % 2 == 0:
                r = p.api.delete(f"{base}/{name}")
                if r.status_code != 204:
                    return fail(r, "table drop")
                with lock:
                    counts["drops"] += 1

    threads = [threading.Thread(target=importer, args=(w,)) for w in range(4)]
    threads += [threading.Thread(target=ddl, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline and not stop.is_set():
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    assert not failures, f"after {counts}:\n" + "\n".join(failures[:3])
    assert counts["imports"] > 20 and counts["creates"] > 10, counts
    assert metric(get_metrics(admin), "duckstore_engine_restarts_total") == 0
    # Every import's rows are there: 20 rows per acknowledged import, counted exactly in the metadata.
    total = sum(p.table(t)["rows"] for t in ("inc0", "inc1"))
    assert total == 20 * counts["imports"], (total, counts)
