"""Crash drill: mixed load from several clients, kill -9 at a random moment, restart, verify.

Every round starts the server on the same data directory, runs client threads that
  - upload Storage Files and import them incrementally into two tables (each import a batch of
    rows with known ids and values, so its rows can be counted and checked afterwards),
  - create and drop tables,
  - upload files of assorted sizes (and delete some),
  - create and drop projects,
then kills the server with SIGKILL at a random moment and restarts it. After the restart:
  - every acknowledged import's rows are present exactly once, every import is all-or-nothing
    (an unacknowledged one is present completely or not at all), every row's values are intact;
  - every acknowledged table create is present and every acknowledged drop is gone;
  - every acknowledged file is listed with its size and sha256 and downloads byte for byte; a file
    whose upload was not acknowledged is either absent or complete;
  - acknowledged project creates and drops hold;
  - the API and the data directory agree: project files on disk = projects listed, file objects
    on disk = files listed, no upload staging file left.
Requests answered with anything but success before the kill fail the drill too.

Short by default (DS_CRASH_ROUNDS, default 8 rounds); DS_LONG=1 runs 100 rounds. The summary line
("crash drill: N rounds, ...") is printed with -s.
"""

import hashlib
import io
import csv
import os
import random
import threading
import time

import requests

from data_helpers import BUCKET, Proj, csv_text
from e2e_lib import describe, expect, list_items

ROUNDS = int(os.environ.get("DS_CRASH_ROUNDS") or (100 if os.environ.get("DS_LONG") == "1" else 8))
PID = "drill"
IMPORT_TABLES = ["inc0", "inc1"]
HDR = ["id", "batch", "val"]


def val_of(row_id):
    return hashlib.sha1(row_id.encode()).hexdigest()[:12]


class Gone(Exception):
    """The server went away under the request (expected after the kill)."""


class Model:
    """What the clients were told; the truth that the server must match after every restart."""

    def __init__(self):
        self.lock = threading.Lock()
        self.batches = {}        # batch id -> (table, n rows, acknowledged)
        self.tables = {}         # name -> "present" | "absent" | "unknown"
        self.files = {}          # key -> (sha256, size, acknowledged, file id or None)
        self.file_content = {}   # key -> {sha256: bytes} for every upload attempt of the key
        self.projects = {}       # id -> "present" | "absent" | "unknown"
        self.unexpected = []     # answers that were not success while the server was up
        self.acked = 0

    def ack(self):
        with self.lock:
            self.acked += 1


def call(session, method, url, killed, **kw):
    try:
        r = session.request(method, url, timeout=30, **kw)
    except requests.RequestException as e:
        raise Gone(str(e))
    if r.status_code >= 500 and killed.is_set():
        raise Gone(f"{r.status_code}")
    return r


def fail(model, killed, r, what):
    if killed.is_set():
        raise Gone(what)
    with model.lock:
        model.unexpected.append(f"{what}: {describe(r)}")
    raise Gone(what)


def importer(server, key, model, rnd, w, stop, killed):
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {key}"
    base = f"{server.url}/projects/{PID}"
    k = 0
    while not stop.is_set():
        batch = f"r{rnd}w{w}k{k}"
        k += 1
        n = random.randint(1, 400)
        table = IMPORT_TABLES[k % 2]
        rows = [[f"{batch}-{i}", batch, val_of(f"{batch}-{i}")] for i in range(n)]
        r = call(s, "POST", f"{base}/files", killed, params={"name": f"imports/{batch}.csv"},
                 data=csv_text(rows, header=HDR), headers={"Content-Type": "application/octet-stream"})
        if r.status_code != 201:
            fail(model, killed, r, "import file upload")
        fid = r.json()["id"]
        with model.lock:
            model.batches[batch] = (table, n, False)
        model.ack()
        r = call(s, "POST", f"{base}/buckets/{BUCKET}/tables/{table}/import/file", killed,
                 json={"file_id": fid, "incremental": True})
        if r.status_code != 200:
            fail(model, killed, r, "incremental import")
        assert r.json()["imported_rows"] == n, describe(r)
        with model.lock:
            model.batches[batch] = (table, n, True)
        model.ack()
        # The staged CSV is not needed any more; deleting it exercises file deletes under load.
        r = call(s, "DELETE", f"{base}/files/{fid}", killed)
        if r.status_code != 204:
            fail(model, killed, r, "file delete")


def ddl(server, key, model, rnd, stop, killed):
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {key}"
    base = f"{server.url}/projects/{PID}/buckets/{BUCKET}/tables"
    k = 0
    while not stop.is_set():
        with model.lock:
            present = [t for t, st in model.tables.items() if st == "present"]
        if present and random.random() < 0.4:
            name = random.choice(present)
            with model.lock:
                model.tables[name] = "unknown"
            r = call(s, "DELETE", f"{base}/{name}", killed)
            if r.status_code != 204:
                fail(model, killed, r, "table drop")
            with model.lock:
                model.tables[name] = "absent"
        else:
            name = f"t_r{rnd}_{k}"
            k += 1
            with model.lock:
                model.tables[name] = "unknown"
            r = call(s, "POST", base, killed, json={"name": name, "columns": [
                {"name": "id", "type": "INTEGER", "nullable": False}, {"name": "note"}], "primary_key": ["id"]})
            if r.status_code != 201:
                fail(model, killed, r, "table create")
            with model.lock:
                model.tables[name] = "present"
        model.ack()


def uploader(server, key, model, rnd, stop, killed):
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {key}"
    base = f"{server.url}/projects/{PID}/files"
    k = 0
    while not stop.is_set():
        name = f"up/r{rnd}/{k}.bin"
        k += 1
        data = os.urandom(random.choice([0, 1, 1000, 70_000, 600_000, 2_000_000]))
        sha = hashlib.sha256(data).hexdigest()
        with model.lock:
            model.files[name] = (sha, len(data), False, None)
            model.file_content.setdefault(name, {})[sha] = data
        r = call(s, "POST", base, killed, params={"name": name}, data=data,
                 headers={"Content-Type": "application/octet-stream"})
        if r.status_code != 201:
            fail(model, killed, r, "file upload")
        f = r.json()
        assert f["sha256"] == sha and f["size"] == len(data), describe(r)
        with model.lock:
            model.files[name] = (sha, len(data), True, f["id"])
        model.ack()


def projects(server, model, rnd, stop, killed):
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {server.admin_key}"
    k = 0
    while not stop.is_set():
        pid = f"pp-r{rnd}-{k}"
        k += 1
        with model.lock:
            model.projects[pid] = "unknown"
        r = call(s, "POST", f"{server.url}/projects", killed, json={"id": pid})
        if r.status_code != 201:
            fail(model, killed, r, "project create")
        with model.lock:
            model.projects[pid] = "present"
        model.ack()
        r = call(s, "POST", f"{server.url}/projects/{pid}/buckets", killed,
                 json={"stage": "in", "name": "x"}, headers={"Authorization": f"Bearer {r.json()['api_key']}"})
        if r.status_code != 201:
            fail(model, killed, r, "bucket create in a new project")
        if random.random() < 0.6:
            with model.lock:
                model.projects[pid] = "unknown"
            r = call(s, "DELETE", f"{server.url}/projects/{pid}", killed)
            if r.status_code != 204:
                fail(model, killed, r, "project drop")
            with model.lock:
                model.projects[pid] = "absent"
            model.ack()
        time.sleep(0.05)


def run_round(server, key, model, rnd):
    stop, killed = threading.Event(), threading.Event()
    jobs = [(importer, (server, key, model, rnd, w, stop, killed)) for w in range(3)]
    jobs.append((ddl, (server, key, model, rnd, stop, killed)))
    jobs.append((uploader, (server, key, model, rnd, stop, killed)))
    jobs.append((projects, (server, model, rnd, stop, killed)))
    errors = []

    def guard(fn, args):
        def body():
            try:
                fn(*args)
            except Gone:
                pass
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)
        return body

    threads = [threading.Thread(target=guard(fn, args), daemon=True) for fn, args in jobs]
    for t in threads:
        t.start()
    time.sleep(random.uniform(0.3, 1.5))
    killed.set()
    stop.set()
    server.kill()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive(), "a client thread hung after the kill"
    if errors:
        raise errors[0]


def count_batches(p, table):
    """{batch: number of rows} of a table, via a full CSV export; checks every row's value."""
    res, data = p.export_bytes(table, {"columns": HDR})
    expect(p.api.delete(f"/projects/{PID}/files/{res['file_id']}"), 204)
    rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert rows[0] == HDR, rows[0]
    counts, seen = {}, set()
    for rid, batch, val in rows[1:]:
        assert val == val_of(rid), f"row {rid} of {table} has value {val!r}, written {val_of(rid)!r}"
        assert rid not in seen, f"row {rid} is in {table} twice"
        seen.add(rid)
        counts[batch] = counts.get(batch, 0) + 1
    return counts


def verify(server, p, model, rnd):
    api, admin = p.api, server.api()
    # Imports: acknowledged ones exactly once, the others all or nothing, nothing unknown.
    found = {}
    for table in IMPORT_TABLES:
        for batch, n in count_batches(p, table).items():
            assert batch in model.batches, f"round {rnd}: rows of a batch nobody imported: {batch}"
            want_table, want_n, acked = model.batches[batch]
            assert table == want_table, f"batch {batch} landed in {table}, sent to {want_table}"
            assert n == want_n, f"round {rnd}: batch {batch} has {n} of its {want_n} rows (partial import)"
            found[batch] = n
    lost = [b for b, (_, _, acked) in model.batches.items() if acked and b not in found]
    assert not lost, f"round {rnd}: acknowledged imports lost: {lost}"
    # A batch that made it is acknowledged from now on (a later round must keep it too).
    for b in found:
        t, n, _ = model.batches[b]
        model.batches[b] = (t, n, True)
    for b in [b for b, v in model.batches.items() if not v[2]]:
        del model.batches[b]

    # Tables.
    names = {t["name"] for t in list_items(api, f"/projects/{PID}/buckets/{BUCKET}/tables")}
    for name, st in list(model.tables.items()):
        if st == "present":
            assert name in names, f"round {rnd}: acknowledged table {name} lost"
        elif st == "absent":
            assert name not in names, f"round {rnd}: acknowledged drop of {name} undone"
        model.tables[name] = "present" if name in names else "absent"
    extra = names - set(model.tables) - set(IMPORT_TABLES)
    assert not extra, f"round {rnd}: tables nobody created: {extra}"
    for name in sorted(names)[:5]:
        expect(api.get(f"/projects/{PID}/buckets/{BUCKET}/tables/{name}"), 200)

    # Files.
    listed = {f["name"]: f for f in list_items(api, f"/projects/{PID}/files")}
    for key, (sha, size, acked, fid) in list(model.files.items()):
        f = listed.get(key)
        if acked:
            assert f is not None, f"round {rnd}: acknowledged file {key} lost"
            assert (f["sha256"], f["size"], f["id"]) == (sha, size, fid), f"round {rnd}: file {key} changed: {f}"
        elif f is not None:
            assert f["sha256"] in model.file_content[key], f"round {rnd}: file {key} is a partial upload: {f}"
            model.files[key] = (f["sha256"], f["size"], True, f["id"])
        else:
            del model.files[key]
    for key, f in listed.items():
        if key.startswith("imports/"):
            continue  # staged import CSVs whose delete was cut off by the kill
        assert key in model.files, f"round {rnd}: file nobody uploaded: {key}"
    for key in random.sample(sorted(model.files), min(3, len(model.files))):
        sha, size, _, fid = model.files[key]
        data = p.download(fid)
        assert hashlib.sha256(data).hexdigest() == sha and len(data) == size, f"round {rnd}: {key} content differs"
    area = server.data_dir / "files" / f"project_{PID}"
    on_disk = {str(x.relative_to(area / "objects")) for x in (area / "objects").rglob("*") if x.is_file()}
    assert on_disk == set(listed), (f"round {rnd}: files on disk and in the index differ: only on disk "
                                    f"{sorted(on_disk - set(listed))[:5]}, only listed {sorted(set(listed) - on_disk)[:5]}")
    staging = area / "staging"
    assert not staging.exists() or not any(staging.iterdir()), f"round {rnd}: staging files left after restart"

    # Projects: the API and the data directory agree.
    pids = {x["id"] for x in list_items(admin, "/projects")}
    for pid, st in list(model.projects.items()):
        if st == "present":
            assert pid in pids, f"round {rnd}: acknowledged project {pid} lost"
        elif st == "absent":
            assert pid not in pids, f"round {rnd}: acknowledged project drop {pid} undone"
        model.projects[pid] = "present" if pid in pids else "absent"
    assert pids <= set(model.projects) | {PID}, f"round {rnd}: projects nobody created: {pids - set(model.projects)}"
    files_on_disk = {x.name for x in server.project_dir.iterdir() if x.name.endswith(".duckdb")}
    assert files_on_disk == {f"project_{pid}_main.duckdb" for pid in pids}, \
        f"round {rnd}: project files on disk {sorted(files_on_disk)} vs projects {sorted(pids)}"
    areas = {x.name for x in (server.data_dir / "files").iterdir()} if (server.data_dir / "files").exists() else set()
    assert areas <= {f"project_{pid}" for pid in pids}, f"round {rnd}: file areas of unknown projects: {areas}"


def test_crash_drill(server, admin):
    p = Proj(server, admin, PID)
    for t in IMPORT_TABLES:
        p.create_table(t, HDR)
    model = Model()
    started = time.monotonic()
    for rnd in range(ROUNDS):
        run_round(server, p.key, model, rnd)
        assert not model.unexpected, "requests failed while the server was up:\n" + "\n".join(model.unexpected[:5])
        server.start()
        verify(server, p, model, rnd)
    rows = sum(n for _, n, _ in model.batches.values())
    print(f"\ncrash drill: {ROUNDS} rounds, {model.acked} acknowledged writes, {len(model.batches)} imports "
          f"({rows} rows), {sum(1 for v in model.tables.values() if v == 'present')} tables, "
          f"{len(model.files)} files, lost 0, {time.monotonic() - started:.0f} s")
