"""Startup recovery and the quarantine (docs/operations.md, "Recovery and quarantine").

Recovery never deletes stored data on its own judgement: a lost catalog is rebuilt from the project
files (and the Storage File index from the files' sidecars), an unreadable catalog or project file
without a usable copy stops startup with the way out, and whatever recovery takes out of service
goes to <data>/quarantine/, which `duckstore quarantine list|purge` shows and empties.

States that a crash leaves behind (a catalog row in "creating" or "deleting", a project file
without its copy) are made here by editing the stopped server's DuckDB files through the same
libduckdb the server links (ctypes), so each case is exact rather than left to the timing of a kill.
"""

import ctypes
import hashlib
import json
import os
import shutil
import subprocess

import pytest
import requests

from data_helpers import Proj
from e2e_lib import BINARY, ROOT, ServerError, create_project, expect, expect_error, list_items

LIBDUCKDB = ROOT / "third_party" / "duckdb" / "lib" / "libduckdb.so"


def duckdb_exec(path, sql):
    """Runs sql on the DuckDB file path (the server must be stopped)."""
    lib = ctypes.CDLL(str(LIBDUCKDB))
    lib.duckdb_result_error.restype = ctypes.c_char_p
    db, conn = ctypes.c_void_p(), ctypes.c_void_p()
    assert lib.duckdb_open(str(path).encode(), ctypes.byref(db)) == 0, f"cannot open {path}"
    try:
        assert lib.duckdb_connect(db, ctypes.byref(conn)) == 0
        result = ctypes.create_string_buffer(512)
        rc = lib.duckdb_query(conn, sql.encode(), result)
        err = lib.duckdb_result_error(result) if rc != 0 else None
        lib.duckdb_destroy_result(result)
        lib.duckdb_disconnect(ctypes.byref(conn))
        assert rc == 0, f"{sql}: {err}"
    finally:
        lib.duckdb_close(ctypes.byref(db))


def cli(server, *args):
    return subprocess.run([str(BINARY), *args, "--data-dir", str(server.data_dir)], capture_output=True,
                          text=True, timeout=60)


def quarantine_dir(server):
    return server.data_dir / "quarantine"


def quarantined(server):
    """{folder name: why.json} of the quarantine."""
    root = quarantine_dir(server)
    if not root.exists():
        return {}
    return {d.name: json.loads((d / "why.json").read_text()) for d in sorted(root.iterdir())}


def tree_digest(root):
    """{relative path: sha256} of every file below root."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def start_fails(server):
    """Starts server, which must refuse to start; returns its stderr."""
    with pytest.raises(ServerError):
        server.start()
    return server.log_paths[-1].read_text(errors="replace")


def populate(server, admin):
    """Two projects with tables, rows and Storage Files of every kind; returns them by id."""
    a = Proj(server, admin, "alpha")
    b = Proj(server, admin, "beta")
    expect(admin.put("/projects/alpha", {"name": "Alpha renamed"}), 200)
    a.create_table("people", ["id", "name"], primary_key=["id"])
    a.load_rows("people", ["id", "name"], [["1", "Ann"], ["2", "Bob"], ["3", "Cid"]])
    a.create_table("typed", [{"name": "n", "type": "BIGINT"}, {"name": "d", "type": "DATE"}])
    a.load_rows("typed", ["n", "d"], [["9007199254740993", "2026-01-02"]])
    b.create_table("events", ["k", "v"])
    b.load_rows("events", ["k", "v"], [[str(i), f"v{i}"] for i in range(500)])
    a.upload("docs/readme.txt", b"first version")
    a.upload("docs/readme.txt", b"second version, replacing the first", overwrite=True)
    a.upload("keep/forever.bin", bytes(range(256)) * 40, permanent=True)
    a.upload_manifest("sliced/manifest", ["docs/readme.txt"])
    a.export("people")
    b.upload("b.csv", "k,v\n1000,x\n")
    return {"alpha": a, "beta": b}


def snapshot(admin, projs):
    """What a user sees: projects, tables with their rows, and files with their metadata and bytes."""
    out = {"projects": [(p["id"], p["name"], p["created_at"]) for p in list_items(admin, "/projects")]}
    for pid, p in projs.items():
        tables = {}
        for t in list_items(admin, f"/projects/{pid}/buckets/{p.bucket}/tables"):
            prev = p.preview(t["name"], limit=1000)
            tables[t["name"]] = (t.get("rows"), t.get("primary_key"), sorted(map(tuple, prev["rows"])))
        files = {f["id"]: (f["name"], f["size"], f["sha256"], f["created_at"], f.get("expires_at"),
                           f.get("is_permanent", f.get("permanent")), f.get("is_sliced", f.get("sliced")),
                           hashlib.sha256(p.download(f["id"])).hexdigest())
                 for f in p.files()}
        out[pid] = {"tables": tables, "files": files}
    return out


def move_catalog_away(server, to):
    to.mkdir()
    for name in ("catalog.duckdb", "catalog.duckdb.wal"):
        if (server.data_dir / name).exists():
            shutil.move(str(server.data_dir / name), str(to / name))


def test_missing_catalog_is_rebuilt_from_the_project_files(server, admin, tmp_path):
    projs = populate(server, admin)
    before = snapshot(admin, projs)
    assert len(before["alpha"]["files"]) >= 5 and before["alpha"]["tables"]["people"][0] == 3, before
    server.stop()
    disk_before = tree_digest(server.data_dir / "files")
    move_catalog_away(server, tmp_path / "lost")

    server.start()
    admin = server.api()
    for p in projs.values():
        p.admin = admin
    after = snapshot(admin, projs)
    assert after == before, f"the rebuilt catalog differs:\nbefore {before}\nafter  {after}"
    assert tree_digest(server.data_dir / "files") == disk_before, "Storage Files changed on disk"
    assert quarantined(server) == {}, f"recovery set something aside: {quarantined(server)}"
    assert "rebuilt it from the copies" in server.log_text()

    # The old project keys still work, for reads and writes, and the old files import.
    for pid, p in projs.items():
        expect(admin.with_key(p.key).get(f"/projects/{pid}"), 200)
    a = projs["alpha"]
    a.load_csv("people", "id,name\n4,Dan\n", incremental=True)
    assert sorted(r[0] for r in a.preview("people")["rows"]) == ["1", "2", "3", "4"]
    b = projs["beta"]
    b.import_file("events", {"file_id": b.file_by_key("b.csv")["id"], "incremental": True})
    assert b.table("events")["rows"] == 501
    assert b.download(b.file_by_key("b.csv")["id"]) == b"k,v\n1000,x\n"

    # And it stays that way over a normal restart.
    server.restart()
    again = snapshot(server.api(), projs)
    assert again["projects"] == before["projects"]
    assert again["beta"]["files"] == after["beta"]["files"]


def test_unreadable_catalog_stops_startup_and_changes_nothing(server, admin, tmp_path):
    projs = populate(server, admin)
    before = snapshot(admin, projs)
    server.stop()
    catalog = server.data_dir / "catalog.duckdb"
    with open(catalog, "r+b") as f:
        f.write(b"\x00garbage, not a DuckDB file\xff" * 200)
    disk = tree_digest(server.data_dir / "duckdb"), tree_digest(server.data_dir / "files")

    log = start_fails(server)
    assert "damaged or unreadable" in log and "Nothing was changed" in log, log
    assert "catalog.duckdb" in log and "backup" in log and "rebuilt from the project files" in log, log
    assert (tree_digest(server.data_dir / "duckdb"), tree_digest(server.data_dir / "files")) == disk
    assert quarantined(server) == {}

    # The way out the message names: move the damaged catalog away and start again.
    move_catalog_away(server, tmp_path / "damaged")
    server.start()
    admin = server.api()
    for p in projs.values():
        p.admin = admin
    assert snapshot(admin, projs) == before


def test_project_file_without_a_usable_copy_stops_the_rebuild(server, admin, tmp_path):
    projs = populate(server, admin)
    server.stop()
    # One project file predates the copies (no _ds.catalog_copy), another was renamed by hand.
    duckdb_exec(server.project_file("beta"), "DROP TABLE _ds.catalog_copy")
    shutil.copy(server.project_file("alpha"), server.project_file("stray"))
    move_catalog_away(server, tmp_path / "lost")
    disk = tree_digest(server.data_dir / "duckdb"), tree_digest(server.data_dir / "files")

    log = start_fails(server)
    assert "cannot be rebuilt" in log and "Nothing was changed" in log, log
    assert "no copy of the catalog record" in log and "beta" in log, log
    assert "stray" in log and "not valid" in log, log
    assert (tree_digest(server.data_dir / "duckdb"), tree_digest(server.data_dir / "files")) == disk
    assert quarantined(server) == {}
    # A second try says the same (the failed start left no half-built catalog behind).
    assert "cannot be rebuilt" in start_fails(server)

    # The way out: move the named files aside; the others are rebuilt.
    aside = tmp_path / "aside"
    aside.mkdir()
    for pid in ("beta", "stray"):
        shutil.move(str(server.project_file(pid)), str(aside))
    server.start()
    admin = server.api()
    assert [p["id"] for p in list_items(admin, "/projects")] == ["alpha"]
    expect(admin.with_key(projs["alpha"].key).get("/projects/alpha"), 200)
    assert projs["alpha"].table("people")["rows"] == 3


def test_orphans_are_quarantined_listed_and_purged(server, admin):
    a = Proj(server, admin, "alpha")
    a.create_table("t", ["x"])
    a.load_rows("t", ["x"], [["1"]])
    kept = a.upload("kept.csv", "x\n1\n")
    server.stop()
    orphan_file = server.project_file("ghost")
    shutil.copy(server.project_file("alpha"), orphan_file)
    orphan_bytes = hashlib.sha256(orphan_file.read_bytes()).hexdigest()
    ghost_area = server.data_dir / "files" / "project_ghost" / "objects"
    ghost_area.mkdir(parents=True)
    (ghost_area / "g.csv").write_bytes(b"ghost data")
    stray = server.data_dir / "files" / "project_alpha" / "objects" / "deep" / "stray.bin"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"not in the index")

    server.start()
    admin = server.api()
    assert [p["id"] for p in list_items(admin, "/projects")] == ["alpha"]
    assert not orphan_file.exists() and not ghost_area.exists() and not stray.exists()
    q = quarantined(server)
    reasons = sorted(why["reason"] for why in q.values())
    assert reasons == ["orphan-file-area", "orphan-project", "unindexed-files"], q
    by_reason = {why["reason"]: name for name, why in q.items()}
    root = quarantine_dir(server)
    moved = root / by_reason["orphan-project"] / orphan_file.name
    assert hashlib.sha256(moved.read_bytes()).hexdigest() == orphan_bytes
    assert (root / by_reason["orphan-file-area"] / "project_ghost" / "objects" / "g.csv").read_bytes() == b"ghost data"
    assert (root / by_reason["unindexed-files"] / "objects" / "deep" / "stray.bin").read_bytes() == b"not in the index"
    assert "ghost" in q[by_reason["orphan-project"]]["what"]
    # Each move is one JSON log line naming what and why.
    lines = [r for r in server.log_records() if "quarantine: moved" in r.get("msg", "")]
    assert len(lines) == 3 and any("ghost" in r["msg"] and "orphan-project" in r["msg"] for r in lines), lines
    # The project that was kept is untouched.
    assert a.download(kept["id"]) == b"x\n1\n"
    assert a.table("t")["rows"] == 1

    listing = cli(server, "quarantine", "list")
    assert listing.returncode == 0, listing.stderr
    for name in q:
        assert name in listing.stdout, listing.stdout
    assert "ghost" in listing.stdout

    bad = cli(server, "quarantine", "purge")
    assert bad.returncode == 2 and "--older-than" in bad.stderr, bad
    bad = cli(server, "quarantine", "purge", "--older-than", "soon")
    assert bad.returncode == 2 and "not a duration" in bad.stderr, bad
    young = cli(server, "quarantine", "purge", "--older-than", "1d")
    assert young.returncode == 0 and "purged 0" in young.stdout, young
    assert quarantined(server) == q
    purge = cli(server, "quarantine", "purge", "--all")
    assert purge.returncode == 0 and "purged 3" in purge.stdout, purge
    assert quarantined(server) == {}
    assert "is empty" in cli(server, "quarantine", "list").stdout


@pytest.mark.parametrize("state,reason", [(0, "half-created"), (2, "half-deleted")])
def test_interrupted_creation_or_deletion_is_quarantined(server, admin, state, reason):
    create_project(admin, "keep")
    Proj(server, admin, "cut")
    server.stop()
    # The catalog row as a kill -9 between the steps of creation (0) or deletion (2) leaves it.
    duckdb_exec(server.data_dir / "catalog.duckdb", f"UPDATE projects SET state = {state} WHERE id = 'cut'")
    cut_bytes = hashlib.sha256(server.project_file("cut").read_bytes()).hexdigest()

    server.start()
    admin = server.api()
    assert [p["id"] for p in list_items(admin, "/projects")] == ["keep"]
    assert not server.project_file("cut").exists()
    q = quarantined(server)
    assert [why["reason"] for why in q.values()] == [reason], q
    (name,) = q
    moved = quarantine_dir(server) / name / "project_cut_main.duckdb"
    assert hashlib.sha256(moved.read_bytes()).hexdigest() == cut_bytes, "the quarantined file changed"
    # The id is free again.
    create_project(admin, "cut")
    expect(admin.get("/projects/cut"), 200)


def test_corrupt_project_file_makes_only_that_project_unavailable(server, admin):
    a = Proj(server, admin, "alpha")
    a.create_table("t", ["x"])
    b = Proj(server, admin, "beta")
    b.create_table("t", ["x"])
    b.load_rows("t", ["x"], [["1"], ["2"]])
    server.stop()
    with open(server.project_file("alpha"), "r+b") as f:
        f.write(b"\xde\xad\xbe\xef garbage over the header " * 100)

    server.start()
    admin = server.api()
    assert requests.get(server.url + "/health", timeout=10).status_code == 200
    for path in ("/projects/alpha", f"/projects/alpha/buckets/{a.bucket}/tables",
                 f"/projects/alpha/buckets/{a.bucket}/tables/t/preview"):
        for api in (admin, admin.with_key(a.key)):
            r = api.get(path)
            err = expect_error(r, 503, "unavailable", mentions=("alpha", "cannot be opened", "damaged"))
            assert str(server.data_dir) not in err["message"], f"the message shows a host path: {err}"
    # Everything else keeps working.
    assert b.table("t")["rows"] == 2
    b.load_rows("t", ["x"], [["3"]], incremental=True)
    assert b.table("t")["rows"] == 3
    assert {p["id"] for p in list_items(admin, "/projects")} == {"alpha", "beta"}
    assert server.project_file("alpha").exists() and quarantined(server) == {}
    # The operator's other way out: a damaged project that is not needed can be deleted.
    r = admin.delete("/projects/alpha")
    assert r.status_code in (200, 204), r.text
    assert [p["id"] for p in list_items(admin, "/projects")] == ["beta"]


def test_data_from_before_the_copies_gets_them_at_the_next_start(server, admin, tmp_path):
    """An upgrade: projects without a catalog copy and files without sidecars get them once, at
    start, so that a later catalog loss is rebuilt in full."""
    projs = populate(server, admin)
    before = snapshot(admin, projs)
    server.stop()
    # What an older version left: no copy in the project files, no sidecars, no marker.
    for pid in projs:
        duckdb_exec(server.project_file(pid), "DROP TABLE _ds.catalog_copy")
        shutil.rmtree(server.data_dir / "files" / f"project_{pid}" / "index")
    duckdb_exec(server.data_dir / "catalog.duckdb", "DELETE FROM catalog_flags")

    server.start()
    assert "wrote the catalog record of 2 older projects" in server.log_text()
    n_files = len(before["alpha"]["files"]) + len(before["beta"]["files"])
    sidecars = list((server.data_dir / "files").glob("project_*/index/*.json"))
    assert len(sidecars) == n_files, f"{len(sidecars)} sidecars for {n_files} files"
    server.stop()
    move_catalog_away(server, tmp_path / "lost")

    server.start()
    admin = server.api()
    for p in projs.values():
        p.admin = admin
    assert snapshot(admin, projs) == before
