"""Storage Files (the S3 replacement) over REST: upload (raw, multipart, prepared), list, get,
download, delete, expiry and the sweep, limits, key rules, authorization, crash leftovers.

Every test starts its own server(s) through conftest.py's fixtures; the on-disk layout checked here
is docs/files.md's: <data>/files/project_<id>/{objects,staging,scratch}.
"""

import hashlib
import os
import socket
import threading
import time

import pytest
import requests

from e2e_lib import (REQUEST_TIMEOUT, assert_time, create_project, describe, expect, expect_error,
                     list_items, project_api, wait_for)

RAW = {"Content-Type": "application/octet-stream"}
ALL_BYTES = bytes(range(256)) * 64 + b"\r\n--boundary\r\n\x00\xff" * 50


def area(server, pid):
    return server.data_dir / "files" / f"project_{pid}"


def objects_on_disk(server, pid):
    root = area(server, pid) / "objects"
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


def staging_on_disk(server, pid):
    root = area(server, pid) / "staging"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def upload(api, pid, name, data, params=None, status=201):
    q = {"name": name}
    q.update(params or {})
    r = api.request("POST", f"/projects/{pid}/files", data=data, params=q, headers=RAW)
    return expect(r, status) if status else r


def call(api, method, path, **kw):
    """A request with api's key and anything requests accepts (files=, a generator body, ...)."""
    headers = dict(kw.pop("headers", None) or {})
    headers.update(api.auth_headers(api.key, api.header))
    return api.session.request(method, api.server.url + path, headers=headers, timeout=REQUEST_TIMEOUT, **kw)


def download(api, pid, fid):
    r = api.get(f"/projects/{pid}/files/{fid}/download")
    assert r.status_code == 200, describe(r)
    return r


def check_file_shape(f, name, data, permanent=False, sliced=False):
    assert set(f) >= {"id", "name", "size", "sha256", "created_at", "expires_at", "permanent", "sliced"}, f
    assert isinstance(f["id"], str) and len(f["id"]) >= 16 and all(c in "0123456789abcdef" for c in f["id"]), f
    assert f["name"] == name
    assert f["size"] == len(data)
    assert f["sha256"] == hashlib.sha256(data).hexdigest()
    assert_time(f["created_at"], "created_at")
    if permanent:
        assert f["expires_at"] is None, f
    else:
        assert_time(f["expires_at"], "expires_at")
    assert f["permanent"] is permanent
    assert f["sliced"] is sliced


@pytest.fixture
def proj(server, admin):
    """A project "p" and an Api bound to its own key."""
    _, api = project_api(admin, "p")
    return api


# -- upload and download ----------------------------------------------------------------------------

def test_raw_upload_binary_round_trip(server, proj):
    data = ALL_BYTES + os.urandom(300_000)
    f = upload(proj, "p", "data/blob.bin", data)
    check_file_shape(f, "data/blob.bin", data)
    r = download(proj, "p", f["id"])
    assert r.content == data, "downloaded bytes differ from the uploaded ones"
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert 'filename="blob.bin"' in r.headers.get("Content-Disposition", "")
    assert hashlib.sha256(r.content).hexdigest() == f["sha256"]
    got = expect(proj.get(f"/projects/p/files/{f['id']}"), 200)
    assert got == f
    assert objects_on_disk(server, "p") == ["data/blob.bin"]
    assert staging_on_disk(server, "p") == []


def test_empty_file(proj):
    f = upload(proj, "p", "empty.csv", b"")
    check_file_shape(f, "empty.csv", b"")
    assert download(proj, "p", f["id"]).content == b""


def test_multipart_upload_binary(server, proj):
    data = ALL_BYTES + os.urandom(200_000)
    r = call(proj, "POST", "/projects/p/files", params={"name": "mp/orders.csv"},
             files={"file": ("local-name.csv", data, "application/octet-stream")},
             data={"note": "ignored form field"})
    f = expect(r, 201)
    check_file_shape(f, "mp/orders.csv", data)
    assert download(proj, "p", f["id"]).content == data
    assert staging_on_disk(server, "p") == []


def test_multipart_without_file_part_is_400(server, proj):
    r = call(proj, "POST", "/projects/p/files", params={"name": "x.csv"},
             files={"other": ("x.csv", b"abc")})
    expect_error(r, 400, "invalid_argument", mentions=["file"])
    assert list_items(proj, "/projects/p/files") == []
    assert staging_on_disk(server, "p") == []


def test_multipart_with_two_file_parts_is_400(server, proj):
    r = call(proj, "POST", "/projects/p/files", params={"name": "x.csv"},
             files=[("file", ("a.csv", b"first")), ("file", ("b.csv", b"second"))])
    expect_error(r, 400, "invalid_argument", mentions=["file"])
    assert list_items(proj, "/projects/p/files") == []
    assert staging_on_disk(server, "p") == []


def _rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_50mb_upload_is_streamed(server, proj, tmp_path):
    size = 50 * 1024 * 1024
    path = tmp_path / "big.bin"
    h = hashlib.sha256()
    with open(path, "wb") as out:
        for _ in range(size // (1024 * 1024)):
            block = os.urandom(1024 * 1024)
            h.update(block)
            out.write(block)
    pid = server.proc.pid
    # Warm the paths an upload touches, so the baseline includes them.
    upload(proj, "p", "warm.bin", b"x" * 100_000)
    baseline = _rss_kb(pid)
    peak = [baseline]
    done = threading.Event()

    def sample():
        while not done.is_set():
            try:
                peak[0] = max(peak[0], _rss_kb(pid))
            except OSError:
                return
            time.sleep(0.01)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        with open(path, "rb") as body:
            r = proj.request("POST", "/projects/p/files", params={"name": "big.bin"}, data=body, headers=RAW)
    finally:
        done.set()
        t.join(timeout=5)
    f = expect(r, 201)
    assert f["size"] == size
    assert f["sha256"] == h.hexdigest()
    after = _rss_kb(pid)
    grew_mb = (max(peak[0], after) - baseline) / 1024
    print(f"RSS baseline {baseline} kB, peak {peak[0]} kB, after {after} kB")
    assert grew_mb < 20, f"server RSS grew by {grew_mb:.1f} MB during a 50 MB upload (not streamed?)"

    # The download streams too, and brings the same bytes back.
    d = hashlib.sha256()
    n = 0
    with proj.session.get(server.url + f"/projects/p/files/{f['id']}/download",
                          headers=proj.auth_headers(proj.key, "bearer"), stream=True,
                          timeout=REQUEST_TIMEOUT) as r:
        assert r.status_code == 200
        assert int(r.headers["Content-Length"]) == size
        for chunk in r.iter_content(1 << 20):
            d.update(chunk)
            n += len(chunk)
    assert n == size and d.hexdigest() == h.hexdigest()


# -- overwrite, prepare ---------------------------------------------------------------------------

def test_existing_key_409_unless_overwrite(server, proj):
    first = upload(proj, "p", "k.csv", b"one")
    err = expect_error(upload(proj, "p", "k.csv", b"two", status=None), 409, "already_exists",
                       mentions=["k.csv", "overwrite"])
    assert err["details"]["field"] == "name"
    assert download(proj, "p", first["id"]).content == b"one", "a refused upload changed the file"
    second = upload(proj, "p", "k.csv", b"two", params={"overwrite": "true"})
    assert second["id"] != first["id"]
    assert download(proj, "p", second["id"]).content == b"two"
    expect_error(proj.get(f"/projects/p/files/{first['id']}"), 404, "not_found")
    items = list_items(proj, "/projects/p/files")
    assert [i["id"] for i in items] == [second["id"]]
    assert objects_on_disk(server, "p") == ["k.csv"]
    assert staging_on_disk(server, "p") == []


def test_prepare_then_put_content(server, proj):
    r = expect(proj.post("/projects/p/files/prepare", {"name": "in/upload.csv", "permanent": True}), 201)
    assert set(r) >= {"id", "name", "upload_url", "expires_at"}
    assert r["name"] == "in/upload.csv"
    assert r["upload_url"] == f"/projects/p/files/{r['id']}/content"
    assert_time(r["expires_at"], "expires_at")
    # Not a file until its content arrived.
    expect_error(proj.get(f"/projects/p/files/{r['id']}"), 404, "not_found")
    assert list_items(proj, "/projects/p/files") == []
    data = os.urandom(70_000)
    f = expect(proj.request("PUT", r["upload_url"], data=data, headers=RAW), 201)
    assert f["id"] == r["id"]
    check_file_shape(f, "in/upload.csv", data, permanent=True)
    assert download(proj, "p", f["id"]).content == data
    # The content can arrive only once.
    expect_error(proj.request("PUT", r["upload_url"], data=b"again", headers=RAW), 409, "conflict")
    assert download(proj, "p", f["id"]).content == data
    assert staging_on_disk(server, "p") == []


def test_prepare_put_multipart_and_errors(proj):
    r = expect(proj.post("/projects/p/files/prepare", {"name": "m.bin"}), 201)
    f = expect(call(proj, "PUT", r["upload_url"], files={"file": ("x", ALL_BYTES)}), 201)
    check_file_shape(f, "m.bin", ALL_BYTES)
    # Existing key, bad key, bad body, unknown id.
    expect_error(proj.post("/projects/p/files/prepare", {"name": "m.bin"}), 409, "already_exists")
    expect_error(proj.post("/projects/p/files/prepare", {"name": "../m.bin"}), 400, "invalid_argument")
    expect_error(proj.post("/projects/p/files/prepare", {}), 400, "invalid_argument", mentions=["name"])
    expect_error(proj.post("/projects/p/files/prepare", {"name": "a", "colour": 1}), 400, "invalid_argument")
    expect_error(proj.request("PUT", "/projects/p/files/0123456789abcdef0123456789abcdef/content",
                              data=b"x", headers=RAW), 404, "not_found")
    expect_error(proj.request("PUT", "/projects/p/files/nothex/content", data=b"x", headers=RAW),
                 404, "not_found")


def test_prepared_overwrite(proj):
    old = upload(proj, "p", "r.csv", b"old")
    r = expect(proj.post("/projects/p/files/prepare", {"name": "r.csv", "overwrite": True}), 201)
    f = expect(proj.request("PUT", r["upload_url"], data=b"new", headers=RAW), 201)
    assert download(proj, "p", f["id"]).content == b"new"
    expect_error(proj.get(f"/projects/p/files/{old['id']}"), 404, "not_found")


# -- list, get, delete ----------------------------------------------------------------------------

def test_list_with_prefix(proj):
    for name in ["a/2.csv", "a/1.csv", "b/1.csv", "a.csv"]:
        upload(proj, "p", name, name.encode())
    names = [i["name"] for i in list_items(proj, "/projects/p/files")]
    assert names == ["a.csv", "a/1.csv", "a/2.csv", "b/1.csv"]
    names = [i["name"] for i in list_items(proj, "/projects/p/files?prefix=a/")]
    assert names == ["a/1.csv", "a/2.csv"]
    assert [i["name"] for i in list_items(proj, "/projects/p/files?prefix=a")] == ["a.csv", "a/1.csv", "a/2.csv"]
    assert list_items(proj, "/projects/p/files?prefix=zzz") == []
    for item in list_items(proj, "/projects/p/files"):
        check_file_shape(item, item["name"], item["name"].encode())


def test_get_unknown_file_is_404(proj):
    err = expect_error(proj.get("/projects/p/files/0123456789abcdef0123456789abcdef"), 404, "not_found")
    assert err.get("keboola_code") == 4201
    expect_error(proj.get("/projects/p/files/nope"), 404, "not_found")
    expect_error(proj.get("/projects/p/files/nope/download"), 404, "not_found")


def test_delete(server, proj):
    f = upload(proj, "p", "deep/er/x.csv", b"x")
    keep = upload(proj, "p", "deep/keep.csv", b"k")
    r = proj.delete(f"/projects/p/files/{f['id']}")
    expect(r, 204)
    expect_error(proj.get(f"/projects/p/files/{f['id']}"), 404, "not_found")
    expect_error(proj.get(f"/projects/p/files/{f['id']}/download"), 404, "not_found")
    expect_error(proj.delete(f"/projects/p/files/{f['id']}"), 404, "not_found")
    assert objects_on_disk(server, "p") == ["deep/keep.csv"]
    assert not (area(server, "p") / "objects" / "deep" / "er").exists(), "empty folder left behind"
    assert [i["id"] for i in list_items(proj, "/projects/p/files")] == [keep["id"]]
    # The key is free again.
    upload(proj, "p", "deep/er/x.csv", b"again")


def test_key_conflicts_between_file_and_folder(proj):
    upload(proj, "p", "a", b"file a")
    expect_error(upload(proj, "p", "a/b", b"x", status=None), 409, "conflict")
    upload(proj, "p", "c/d", b"x")
    expect_error(upload(proj, "p", "c", b"x", status=None), 409, "conflict")
    assert sorted(i["name"] for i in list_items(proj, "/projects/p/files")) == ["a", "c/d"]


def test_sliced_manifest_upload(proj):
    upload(proj, "p", "s/part0", b"1\n")
    manifest = b'{"entries": [{"url": "s/part0"}, {"url": "s3://bucket/s/part1"}]}'
    f = upload(proj, "p", "s/manifest", manifest, params={"sliced": "true"})
    check_file_shape(f, "s/manifest", manifest, sliced=True)
    for bad in [b"not json", b'{"entries": 1}', b'{"entries": [{"uri": "x"}]}',
                b'{"entries": [{"url": "../other"}]}', b'{"entries": [{"url": "file:///etc/passwd"}]}']:
        expect_error(upload(proj, "p", "s/bad", bad, params={"sliced": "true"}, status=None), 400,
                     "invalid_argument")
    assert sorted(i["name"] for i in list_items(proj, "/projects/p/files")) == ["s/manifest", "s/part0"]


# -- key rules, limits ----------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["../x.csv", "a/../../x.csv", "/etc/passwd", "a//b", "dir/", "./x", "",
                                 "a\\b", "x" * 1025, "seg/" + "y" * 300])
def test_bad_keys_are_400(server, proj, key):
    r = upload(proj, "p", key, b"data", status=None)
    expect_error(r, 400, "invalid_argument")
    assert list_items(proj, "/projects/p/files") == []
    assert objects_on_disk(server, "p") == []
    assert staging_on_disk(server, "p") == []
    assert not (server.data_dir / "x.csv").exists() and not (server.data_dir / "files" / "x.csv").exists()


def test_missing_name_is_400(proj):
    r = proj.request("POST", "/projects/p/files", data=b"x", headers=RAW)
    expect_error(r, 400, "invalid_argument", mentions=["name"])
    # Authentication comes first.
    r = proj.with_key(None).request("POST", "/projects/p/files", data=b"x", headers=RAW)
    expect_error(r, 401, "unauthenticated")


def test_upload_limit_413(server_factory):
    server = server_factory(env={"DUCKSTORE_MAX_UPLOAD_BYTES": "1024"})
    admin = server.api()
    create_project(admin, "p")
    expect_error(upload(admin, "p", "big.bin", b"x" * 1025, status=None), 413, "payload_too_large",
                 mentions=["DUCKSTORE_MAX_UPLOAD_BYTES"])
    # Without a Content-Length (chunked), the limit is enforced while streaming.
    r = call(admin, "POST", "/projects/p/files", params={"name": "chunked.bin"},
             data=(b"y" * 100 for _ in range(20)), headers=RAW)
    expect_error(r, 413, "payload_too_large")
    r = call(admin, "POST", "/projects/p/files", params={"name": "mp.bin"},
             files={"file": ("mp.bin", b"z" * 2000)})
    expect_error(r, 413, "payload_too_large")
    assert list_items(admin, "/projects/p/files") == []
    assert staging_on_disk(server, "p") == []
    f = upload(admin, "p", "fits.bin", b"x" * 1024)
    assert f["size"] == 1024


# -- auth -----------------------------------------------------------------------------------------

def test_auth(server, admin):
    _, a = project_api(admin, "a")
    _, b = project_api(admin, "b")
    f = upload(a, "a", "secret.csv", b"secret")
    fid = f["id"]
    # b's key in a's project: 403 everywhere.
    expect_error(upload(b, "a", "x.csv", b"x", status=None), 403, "permission_denied")
    expect_error(b.get("/projects/a/files"), 403, "permission_denied")
    expect_error(b.get(f"/projects/a/files/{fid}"), 403, "permission_denied")
    expect_error(b.get(f"/projects/a/files/{fid}/download"), 403, "permission_denied")
    expect_error(b.delete(f"/projects/a/files/{fid}"), 403, "permission_denied")
    expect_error(b.post("/projects/a/files/prepare", {"name": "x"}), 403, "permission_denied")
    # a's file id does not exist in b's project either.
    expect_error(b.get(f"/projects/b/files/{fid}"), 404, "not_found")
    # No key, wrong key: 401.
    anon = admin.with_key(None)
    expect_error(upload(anon, "a", "x.csv", b"x", status=None), 401, "unauthenticated")
    expect_error(anon.get("/projects/a/files"), 401, "unauthenticated")
    expect_error(anon.get(f"/projects/a/files/{fid}/download"), 401, "unauthenticated")
    expect_error(admin.with_key("wrong").get("/projects/a/files"), 401, "unauthenticated")
    # The token header works too, and the admin key works in any project.
    assert download(admin.with_key(a.key, header="token"), "a", fid).content == b"secret"
    assert download(admin, "a", fid).content == b"secret"
    assert [i["name"] for i in list_items(a, "/projects/a/files")] == ["secret.csv"]
    assert staging_on_disk(server, "a") == []


def test_unknown_project_is_404(admin):
    expect_error(admin.get("/projects/nope/files"), 404, "not_found")
    expect_error(upload(admin, "nope", "x", b"x", status=None), 404, "not_found")


# -- expiry and the sweep -------------------------------------------------------------------------

def test_expiry_and_sweep(server_factory):
    server = server_factory(env={"DUCKSTORE_FILE_TTL": "2s"})
    admin = server.api()
    create_project(admin, "p")
    temp = upload(admin, "p", "temp.csv", b"t")
    perm = upload(admin, "p", "perm.csv", b"p", params={"permanent": "true"})
    assert perm["expires_at"] is None and perm["permanent"] is True
    assert temp["expires_at"] is not None
    assert expect(admin.get(f"/projects/p/files/{temp['id']}"), 200)["name"] == "temp.csv"
    time.sleep(2.2)
    # Invisible as soon as it expired.
    expect_error(admin.get(f"/projects/p/files/{temp['id']}"), 404, "not_found")
    expect_error(admin.get(f"/projects/p/files/{temp['id']}/download"), 404, "not_found")
    assert [i["name"] for i in list_items(admin, "/projects/p/files")] == ["perm.csv"]
    # And gone from disk once the sweep ran.
    wait_for(lambda: objects_on_disk(server, "p") == ["perm.csv"], "the sweep to remove the expired file", 6)
    assert download(admin, "p", perm["id"]).content == b"p"
    # The key of an expired file is free again.
    upload(admin, "p", "temp.csv", b"new")


def test_abandoned_staging_is_swept(server_factory):
    server = server_factory(env={"DUCKSTORE_FILE_TTL": "2s"})
    admin = server.api()
    create_project(admin, "p")
    prep = expect(admin.post("/projects/p/files/prepare", {"name": "late.csv"}), 201)
    # A leftover as a crash would leave it: a staging file no upload owns.
    upload(admin, "p", "x", b"x", params={"permanent": "true"})  # creates the area
    leftover = area(server, "p") / "staging" / ("ab" * 16)
    leftover.write_bytes(b"half an upload")
    wait_for(lambda: not leftover.exists(), "the sweep to remove the staging leftover", 6)
    time.sleep(2.5)
    expect_error(admin.request("PUT", prep["upload_url"], data=b"too late", headers=RAW), 404, "not_found")
    assert [i["name"] for i in list_items(admin, "/projects/p/files")] == ["x"]
    assert staging_on_disk(server, "p") == []


def test_interrupted_upload_leaves_nothing(server, proj):
    """A client that disconnects mid-body: no file, no staging leftover."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"POST /projects/p/files?name=cut.bin HTTP/1.1\r\nHost: x\r\n"
                  b"Authorization: Bearer " + proj.key.encode() + b"\r\n"
                  b"Content-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\n")
        s.sendall(b"x" * 300_000)
        wait_for(lambda: len(staging_on_disk(server, "p")) == 1, "the upload to start staging", 5)
    wait_for(lambda: staging_on_disk(server, "p") == [], "the aborted upload's staging file to go", 5)
    assert list_items(proj, "/projects/p/files") == []
    assert objects_on_disk(server, "p") == []


def test_kill_during_upload_then_restart_cleans_staging(server, admin):
    create_project(admin, "p")
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.sendall(b"POST /projects/p/files?name=cut.bin HTTP/1.1\r\nHost: x\r\n"
              b"Authorization: Bearer " + server.admin_key.encode() + b"\r\n"
              b"Content-Length: 10000000\r\n\r\n" + b"x" * 200_000)
    wait_for(lambda: len(staging_on_disk(server, "p")) == 1, "the upload to start staging", 5)
    server.kill()
    s.close()
    # Crash leftovers of other kinds: an object nobody indexed, an export scratch directory.
    objects = area(server, "p") / "objects"
    objects.mkdir(parents=True, exist_ok=True)
    (objects / "orphan.bin").write_bytes(b"o")
    (area(server, "p") / "scratch" / "old").mkdir(parents=True)
    # Areas of projects that do not exist go; what is not an area at all is left alone.
    (server.data_dir / "files" / "project_ghost" / "objects").mkdir(parents=True)
    (server.data_dir / "files" / "README").write_text("operator's note")
    server.start()
    admin = server.api()
    assert staging_on_disk(server, "p") == []
    assert objects_on_disk(server, "p") == []
    assert not (area(server, "p") / "scratch" / "old").exists()
    assert not (server.data_dir / "files" / "project_ghost").exists()
    assert (server.data_dir / "files" / "README").exists()
    assert list_items(admin, "/projects/p/files") == []


def test_files_survive_restart_and_missing_content_is_dropped(server, admin):
    create_project(admin, "p")
    a = upload(admin, "p", "a.csv", b"aaa")
    b = upload(admin, "p", "b.csv", b"bbb")
    server.restart()
    admin = server.api()
    assert download(admin, "p", a["id"]).content == b"aaa"
    assert expect(admin.get(f"/projects/p/files/{b['id']}"), 200) == b
    # Content removed behind the service's back: the file is dropped at the next start.
    server.stop()
    (area(server, "p") / "objects" / "b.csv").unlink()
    server.start()
    admin = server.api()
    assert [i["name"] for i in list_items(admin, "/projects/p/files")] == ["a.csv"]


def test_project_delete_removes_files(server, admin):
    create_project(admin, "p")
    upload(admin, "p", "a/b.csv", b"x")
    assert area(server, "p").exists()
    expect(admin.delete("/projects/p"), 204)
    assert not area(server, "p").exists()
    create_project(admin, "p")
    assert list_items(admin, "/projects/p/files") == []


def test_concurrent_uploads_same_key(server, proj):
    """Many uploads of one key at once: exactly one wins, the rest are 409, nothing leaks."""
    results = []

    def one(i):
        r = requests.post(server.url + "/projects/p/files", params={"name": "race.csv"},
                          data=f"writer {i}".encode() * 1000, headers={**RAW, "Authorization": f"Bearer {proj.key}"},
                          timeout=REQUEST_TIMEOUT)
        results.append(r.status_code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [201] + [409] * 7, results
    items = list_items(proj, "/projects/p/files")
    assert len(items) == 1
    data = download(proj, "p", items[0]["id"]).content
    assert hashlib.sha256(data).hexdigest() == items[0]["sha256"]
    assert staging_on_disk(server, "p") == []
