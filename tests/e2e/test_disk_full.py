"""Disk-full drill: the data directory lives on a small tmpfs that a filler file fills up mid-work.

Required behaviour (docs/operations.md, "A full data volume"): a write that cannot get space fails
with 507 insufficient_storage and changes nothing; reads keep working while the volume is full; once
space returns (the filler is deleted) writes work again without a restart; and a restart afterwards
finds every table intact (row counts and content checksums).

The tmpfs is mounted by the test itself (it needs root, as the suite runs in its container); where
mounting is not permitted the test is skipped and says so.
"""

import os
import subprocess

import pytest

from data_helpers import Proj, canonical_digest, csv_text
from e2e_lib import expect, expect_error, list_items

VOLUME_MB = 48


@pytest.fixture
def small_volume(tmp_path):
    """A VOLUME_MB tmpfs mounted where the first server_factory server keeps its data directory."""
    mnt = tmp_path / "s0" / "data"
    mnt.mkdir(parents=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={VOLUME_MB}m,mode=0700", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {r.stderr.strip() or r.returncode}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(path):
    """Writes a filler file until the volume reports ENOSPC; returns the filler's path."""
    filler = path / "filler.bin"
    chunk = b"\0" * (256 * 1024)
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError as e:
            assert e.errno == 28, f"expected ENOSPC while filling, got {e}"
    # Smaller writes take what the big chunks left.
    with open(filler, "ab", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as e:
            assert e.errno == 28, f"expected ENOSPC while filling, got {e}"
    st = os.statvfs(path)
    assert st.f_bavail * st.f_frsize < 64 * 1024, "the volume is not full after filling"
    return filler


def rows_of(n0, n, width=60):
    return [[str(i), f"name-{i}", "x" * width] for i in range(n0, n0 + n)]


def state(p, tables):
    """Per table: (row count, columns, digest of every row) over the API (preview: <= 1000 rows)."""
    out = {}
    for t in tables:
        info = p.table(t)
        cols = [c["name"] for c in info["columns"]]
        rows = p.rows(t, cols)
        out[t] = (info["rows"], cols, canonical_digest([[v or "" for v in r] for r in rows]))
    return out


def files_of(p):
    return sorted((f["name"], f["size"], f["sha256"]) for f in p.files())


def staging(server, pid):
    root = server.data_dir / "files" / f"project_{pid}" / "staging"
    return sorted(x.name for x in root.iterdir()) if root.exists() else []


def test_full_volume_fails_writes_with_507_and_recovers(small_volume, server_factory):
    server = server_factory()
    admin = server.api()
    p = Proj(server, admin, "full")
    hdr = ["id", "name", "pad"]
    p.create_table("small", hdr, primary_key=["id"])
    p.create_table("big", hdr, primary_key=["id"])
    p.load_rows("small", hdr, rows_of(0, 500))
    p.load_rows("big", hdr, rows_of(0, 700))
    # Staged before the volume fills: ~6 MB of CSV whose import needs more room than will be left.
    big_csv = csv_text(rows_of(10_000, 60_000), header=hdr)
    staged = p.upload("stage/big.csv", big_csv)
    before = state(p, ["small", "big"])
    files_before = files_of(p)

    filler = fill(small_volume)

    # An import fails cleanly: 507, the message says what is wrong, the table is unchanged.
    r = p.import_file_raw("big", {"file_id": staged["id"], "incremental": True})
    err = expect_error(r, 507, "insufficient_storage", mentions=["space"])
    assert "/" not in err["message"], f"the message names a host path: {err['message']!r}"
    # A Storage File upload fails the same way and leaves no partial file behind.
    r = p.upload_raw("stage/more.csv", os.urandom(2 * 1024 * 1024))
    expect_error(r, 507, "insufficient_storage", mentions=["space"])
    assert staging(server, "full") == [], "a failed upload left its staging file"
    # Table creation (catalog DDL in the project file) also fails without effect.
    r = p.api.post(f"/projects/full/buckets/{p.bucket}/tables", {"name": "later", "columns": [{"name": "a"}]})
    assert r.status_code in (201, 507), f"table create on a full volume: {r.status_code} {r.text[:300]}"
    created_later = r.status_code == 201
    if not created_later:
        expect_error(r, 507, "insufficient_storage")

    # Reads keep working while the volume is full.
    assert state(p, ["small", "big"]) == before
    assert files_of(p) == files_before
    expect(server.api().get("/health"), 200)

    # Space comes back: writes work again without a restart.
    filler.unlink()
    res = p.import_file("big", {"file_id": staged["id"], "incremental": True})
    assert res["imported_rows"] == 60_000
    assert p.table("big")["rows"] == 700 + 60_000
    p.load_rows("small", hdr, rows_of(500, 10))
    more = p.upload("stage/more.csv", b"id,name,pad\n1,a,b\n")
    tables = {t["name"] for t in list_items(p.api, f"/projects/full/buckets/{p.bucket}/tables")}
    assert tables == {"small", "big"} | ({"later"} if created_later else set())

    # Restart: everything is intact, including content checksums of whole tables via export.
    after_small = state(p, ["small"])
    big_export = sorted(p.export_rows("big", {"columns": hdr})[1])
    server.restart()
    assert state(p, ["small"]) == after_small
    assert p.table("big")["rows"] == 60_700
    assert canonical_digest(sorted(p.export_rows("big", {"columns": hdr})[1])) == canonical_digest(big_export)
    assert canonical_digest(big_export) == canonical_digest(rows_of(0, 700) + rows_of(10_000, 60_000))
    assert p.download(more["id"]) == b"id,name,pad\n1,a,b\n"
    assert {t["name"] for t in list_items(p.api, f"/projects/full/buckets/{p.bucket}/tables")} == tables
