"""Storage File keys with characters DuckDB's readers would expand as globs (* ? [ ] { } **) are read
as exactly the file they name: lookalike files, files no index row names and expired files are never
read in their place. Folders and manifests expand only over the project's file index."""

import time

import pytest

from data_helpers import Proj, expect_4xx
from e2e_lib import Server, expect

GLOB_KEYS = ["a[1].csv", "*", "?.csv", "**/x.csv", "a{b,c}.csv", "[ab].csv", "sub/*.csv"]
LOOKALIKES = ["a1.csv", "x.csv", "ab.csv", "ac.csv", "a.csv", "b.csv", "sub/x.csv", "zz/x.csv"]


def one_row(key):
    return f"v\n\"{key}\"\n"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """One server and project for the module (every test's import is a full load of table t, so no test
    sees another's rows); it waits once for expired.csv to expire."""
    server = Server(tmp_path_factory.mktemp("file_keys"), env={"DUCKSTORE_FILE_TTL": "2s"})
    server.start()
    proj = Proj(server, server.api(), "keys")
    proj.create_table("t", ["v"])
    for key in GLOB_KEYS + LOOKALIKES:
        proj.upload(key, one_row(key), permanent=True)
    # A file the index does not name (left on disk by hand) and one that expires before the imports.
    (proj.objects_dir / "stray.csv").write_text(one_row("stray.csv"))
    proj.upload("expired.csv", one_row("expired.csv"))
    time.sleep(2.3)
    yield proj
    server.stop()


def imported(proj, body):
    r = proj.import_file("t", body)
    return sorted(row[0] for row in proj.rows("t")), r


@pytest.mark.parametrize("key", GLOB_KEYS)
def test_glob_key_reads_exactly_its_file(setup, key):
    proj = setup
    rows, r = imported(proj, {"file_key": key})
    assert rows == [key] and r["imported_rows"] == 1
    rows, _ = imported(proj, {"file_id": proj.file_by_key(key)["id"]})
    assert rows == [key]


def test_expired_and_unindexed_files_are_not_found(setup):
    proj = setup
    before = proj.rows("t")  # what an earlier test of the module loaded
    for key in ("expired.csv", "stray.csv", "e*.csv", "s?ray.csv"):
        expect_4xx(proj.import_file_raw("t", {"file_key": key}), mentions=[key])
    assert proj.rows("t") == before


def test_folder_and_manifest_expand_over_the_index_only(setup):
    proj = setup
    rows, _ = imported(proj, {"file_key": "sub/"})
    assert rows == ["sub/*.csv", "sub/x.csv"]
    rows, _ = imported(proj, {"file_key": "**/"})
    assert rows == ["**/x.csv"]
    proj.upload_manifest("parts.manifest", ["a[1].csv", "*", "sub/", "?.csv"])
    rows, r = imported(proj, {"file_key": "parts.manifest"})
    assert rows == sorted(["a[1].csv", "*", "sub/*.csv", "sub/x.csv", "?.csv"]) and r["imported_rows"] == 5
    # A manifest entry naming an expired file is a 404 naming the entry, and changes nothing.
    proj.upload_manifest("bad.manifest", ["a[1].csv", "expired.csv"])
    expect_4xx(proj.import_file_raw("t", {"file_key": "bad.manifest"}), mentions=["expired.csv"])
    assert sorted(row[0] for row in proj.rows("t")) == rows


def test_gzip_key_with_glob_characters(setup):
    import gzip
    proj = setup
    proj.upload("z[1].csv.gz", gzip.compress(one_row("z[1].csv.gz").encode()), permanent=True)
    proj.upload("z1.csv.gz", gzip.compress(one_row("z1.csv.gz").encode()), permanent=True)
    rows, _ = imported(proj, {"file_key": "z[1].csv.gz", "csv": {"compression": "gzip"}})
    assert rows == ["z[1].csv.gz"]
    rows, _ = imported(proj, {"file_key": "z[1].csv.gz"})
    assert rows == ["z[1].csv.gz"]
    # Nothing is left behind in the project's scratch area once the imports are done.
    scratch = proj.objects_dir.parent / "scratch"
    assert not scratch.exists() or list(scratch.iterdir()) == []
    expect(proj.api.get(f"/projects/{proj.pid}/files"), 200)
