"""Idempotent retries: a write repeated with the same Idempotency-Key answers the first result and
applies nothing again (also across a restart, while the first still runs, and after a kill -9 between
the commit and the answer); the same key with another request is 409; keys expire."""

import base64
import hashlib
import socket
import threading
import time


from e2e_lib import expect, expect_error
from data_helpers import Proj, csv_text


def _append(proj, fid, key, **extra):
    body = {"file_id": fid, "incremental": True, **extra}
    return proj.api.post(proj.tpath("t") + "/import/file", body, headers={"Idempotency-Key": key})


def _setup(server, admin, pid="ip", rows=3):
    proj = Proj(server, admin, pid)
    proj.create_table("t", ["a", "b"])
    f = proj.upload("in/rows.csv", csv_text([[str(i), "x"] for i in range(rows)], header=["a", "b"]))
    return proj, f["id"]


def test_a_repeat_answers_the_first_result_and_applies_nothing(server, admin):
    proj, fid = _setup(server, admin)
    first = _append(proj, fid, "load-1")
    body = expect(first, 200)
    assert body["imported_rows"] == 3 and body["table_rows"] == 3
    again = _append(proj, fid, "load-1")
    assert again.status_code == 200 and again.content == first.content
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert proj.table("t")["rows"] == 3
    # The same key for another request is refused and changes nothing.
    before = proj.snapshot("t")
    expect_error(_append(proj, fid, "load-1", columns=["a", "b"]), 409, "conflict", ["Idempotency-Key"])
    other = proj.upload("in/other.csv", csv_text([["9", "y"]], header=["a", "b"]))
    expect_error(_append(proj, other["id"], "load-1"), 409, "conflict")
    proj.assert_unchanged("t", before, what="a reused Idempotency-Key")
    # A new key applies again; without a key every request applies.
    expect(_append(proj, fid, "load-2"), 200)
    assert proj.table("t")["rows"] == 6
    # Errors are answered the same way too, and a bad key is refused naming the header.
    e1 = proj.api.post(proj.tpath("nope") + "/import/file", {"file_id": fid}, headers={"Idempotency-Key": "e"})
    e2 = proj.api.post(proj.tpath("nope") + "/import/file", {"file_id": fid}, headers={"Idempotency-Key": "e"})
    assert e1.status_code == e2.status_code == 404 and e1.content == e2.content
    expect_error(_append(proj, fid, "x" * 300), 400, "invalid_argument", ["Idempotency-Key"])
    expect_error(_append(proj, fid, "a b"), 400, "invalid_argument", ["Idempotency-Key"])
    assert proj.table("t")["rows"] == 6


def test_every_write_route_takes_the_key(server, admin):
    proj, fid = _setup(server, admin)
    api, pid = proj.api, proj.pid
    h = {"Idempotency-Key": "mk-bucket"}
    b1 = api.post(f"/projects/{pid}/buckets", {"stage": "out", "name": "c-o"}, headers=h)
    b2 = api.post(f"/projects/{pid}/buckets", {"stage": "out", "name": "c-o"}, headers=h)
    assert b1.status_code == b2.status_code == 201 and b1.content == b2.content
    d1 = api.delete(proj.tpath("t") + "/rows", json_body={}, headers={"Idempotency-Key": "del"})
    expect(d1, 200)
    expect(_append(proj, fid, "refill"), 200)
    d2 = api.delete(proj.tpath("t") + "/rows", json_body={}, headers={"Idempotency-Key": "del"})
    assert d2.status_code == 200 and d2.content == d1.content
    assert proj.table("t")["rows"] == 3
    proj.create_table("gone", ["a"])
    g1 = api.delete(proj.tpath("gone"), headers={"Idempotency-Key": "drop"})
    g2 = api.delete(proj.tpath("gone"), headers={"Idempotency-Key": "drop"})
    assert g1.status_code == g2.status_code == 204
    # Keys belong to the project: another project's same key is its own.
    other, ofid = _setup(server, admin, pid="iq")
    expect(_append(other, ofid, "load-x"), 200)
    expect(_append(proj, fid, "load-x"), 200)
    assert other.table("t")["rows"] == 3 and proj.table("t")["rows"] == 6


def test_the_record_survives_a_restart_and_expires(server_factory):
    server = server_factory(env={"DUCKSTORE_IDEMPOTENCY_TTL": "3s"})
    proj, fid = _setup(server, server.api())
    first = _append(proj, fid, "k1")
    expect(first, 200)
    server.restart()
    again = _append(proj, fid, "k1")
    assert again.status_code == 200 and again.content == first.content
    assert proj.table("t")["rows"] == 3
    time.sleep(4)
    # Expired: the key is free again and the request applies.
    expect(_append(proj, fid, "k1"), 200)
    assert proj.table("t")["rows"] == 6


WHERE_1_2 = {"where_filters": [{"column": "a", "operator": "eq", "values": ["1", "2"]}]}


def _crash_and_retry(server, proj, send, hook):
    server.die_after_commit(hook, send)
    return send()


def test_kill_after_commit_before_answer_does_not_apply_twice(server, admin):
    proj, fid = _setup(server, admin, rows=5)
    r = _crash_and_retry(server, proj, lambda: _append(proj, fid, "crash-1"), "import")
    body = expect(r, 200)
    assert body["imported_rows"] == 5 and body["table_rows"] == 5, body
    assert proj.table("t")["rows"] == 5
    # Its answer is kept from now on, exactly.
    again = _append(proj, fid, "crash-1")
    assert again.status_code == 200 and again.content == r.content
    expect_error(_append(proj, fid, "crash-1", columns=["a", "b"]), 409, "conflict")
    assert proj.table("t")["rows"] == 5
    # Delete rows: the same.
    r = _crash_and_retry(server, proj, lambda: proj.api.delete(proj.tpath("t") + "/rows", json_body=WHERE_1_2, headers={"Idempotency-Key": "crash-2"}), "delete_rows")
    body = expect(r, 200)
    assert proj.table("t")["rows"] == 3
    expect(_append(proj, fid, "refill"), 200)
    r2 = proj.api.delete(proj.tpath("t") + "/rows", json_body=WHERE_1_2,
                         headers={"Idempotency-Key": "crash-2"})
    assert r2.status_code == 200 and r2.content == r.content
    assert proj.table("t")["rows"] == 8


def test_a_repeat_while_the_first_runs_waits_for_it(server, admin):
    proj = Proj(server, admin, "iw")
    proj.create_table("t", ["a", "b"])
    big = csv_text([[str(i), "y" * 40] for i in range(150000)], header=["a", "b"])
    fid = proj.upload("in/big.csv", big)["id"]
    answers = []

    def send():
        answers.append(_append(proj, fid, "same"))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(answers) == 4
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert len({a.content for a in answers}) == 1
    assert sum(1 for a in answers if a.headers.get("Idempotent-Replayed") == "true") == 3
    assert proj.table("t")["rows"] == 150000


# -- streamed uploads (Storage Files) ----------------------------------------------------------------

RAW = {"Content-Type": "application/octet-stream"}


def _upload(proj, name, data, key, **params):
    return proj.api.request("POST", f"/projects/{proj.pid}/files", data=data, params={"name": name, **params},
                            headers={**RAW, "Idempotency-Key": key})


def _multipart(proj, name, data, key, local_name):
    """A multipart upload; requests draws a new boundary for every request."""
    headers = proj.api.auth_headers(proj.api.key, proj.api.header)
    headers["Idempotency-Key"] = key
    return proj.api.session.post(proj.server.url + f"/projects/{proj.pid}/files", params={"name": name},
                                 files={"file": (local_name, data)}, headers=headers, timeout=60)


def _files(proj):
    return sorted((f["name"], f["sha256"]) for f in expect(proj.api.get(f"/projects/{proj.pid}/files"), 200)["items"])


def _staging(proj):
    root = proj.server.data_dir / "files" / f"project_{proj.pid}" / "staging"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_a_retried_upload_stores_one_file(server, admin):
    proj = Proj(server, admin, "iu")
    data = b"a,b\n" + b"".join(b"%d,x\n" % i for i in range(5000))
    first = _upload(proj, "in/a.csv", data, "up-1")
    f = expect(first, 201)
    assert f["sha256"] == hashlib.sha256(data).hexdigest()
    # The retry would be a 409 already_exists without the key (no overwrite): it answers the first result.
    again = _upload(proj, "in/a.csv", data, "up-1")
    assert again.status_code == 201 and again.content == first.content
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert _files(proj) == [("in/a.csv", f["sha256"])] and _staging(proj) == []
    # The same key with other bytes, or another name, is 409 and stores nothing.
    expect_error(_upload(proj, "in/a.csv", data + b"9,y\n", "up-1"), 409, "conflict", ["Idempotency-Key"])
    expect_error(_upload(proj, "in/b.csv", data, "up-1"), 409, "conflict", ["Idempotency-Key"])
    assert _files(proj) == [("in/a.csv", f["sha256"])] and _staging(proj) == []
    assert proj.download(f["id"]) == data
    # Multipart: the retry's framing differs (boundary, part file name); the stored bytes decide.
    m1 = _multipart(proj, "in/m.csv", data, "up-mp", "one.csv")
    fm = expect(m1, 201)
    m2 = _multipart(proj, "in/m.csv", data, "up-mp", "two.csv")
    assert m2.status_code == 201 and m2.content == m1.content
    expect_error(_multipart(proj, "in/m.csv", b"other", "up-mp", "one.csv"), 409, "conflict", ["Idempotency-Key"])
    # A prepared upload's content: the retry would be a 409 (content already there) without the key.
    prep = expect(proj.api.post(f"/projects/{proj.pid}/files/prepare", {"name": "in/p.csv"}), 201)
    put = lambda body: proj.api.request("PUT", prep["upload_url"], data=body,  # noqa: E731
                                        headers={**RAW, "Idempotency-Key": "put-1"})
    p1 = put(data)
    assert p1.status_code in (200, 201), p1.text
    p2 = put(data)
    assert p2.status_code == p1.status_code and p2.content == p1.content
    expect_error(put(b"changed"), 409, "conflict", ["Idempotency-Key"])
    expected = [("in/a.csv", f["sha256"]), ("in/m.csv", fm["sha256"]), ("in/p.csv", f["sha256"])]
    assert _files(proj) == expected and _staging(proj) == []
    # The record survives a restart.
    server.restart()
    again = _upload(proj, "in/a.csv", data, "up-1")
    assert again.status_code == 201 and again.content == first.content
    expect_error(_upload(proj, "in/a.csv", b"x", "up-1"), 409, "conflict", ["Idempotency-Key"])
    assert _files(proj) == expected
    # An upload refused before its bytes are read is not kept: the retry runs again.
    expect_error(_upload(proj, "in/a.csv", b"z", "up-2"), 409, "already_exists")
    expect(_upload(proj, "in/a.csv", b"z", "up-2", overwrite="true"), 201)
    assert proj.download(expect(proj.api.get(f"/projects/{proj.pid}/files"), 200)["items"][0]["id"]) == b"z"


def test_a_repeat_while_the_upload_streams_is_409(server, admin):
    proj = Proj(server, admin, "iv")
    release = threading.Event()
    answers = []

    def body():
        yield b"first part,"
        release.wait(30)
        yield b"second part"

    t = threading.Thread(target=lambda: answers.append(_upload(proj, "in/s.bin", body(), "stream-1")))
    t.start()
    try:
        deadline = time.time() + 20
        while not _staging(proj):
            assert time.time() < deadline, "the first upload never began"
            time.sleep(0.05)
        r = _upload(proj, "in/s.bin", b"first part,second part", "stream-1")
        expect_error(r, 409, "conflict", ["Idempotency-Key"])
        assert "still running" in r.json()["error"]["message"]
    finally:
        release.set()
        t.join(30)
    first = answers[0]
    expect(first, 201)
    again = _upload(proj, "in/s.bin", b"first part,second part", "stream-1")
    assert again.status_code == 201 and again.content == first.content
    assert [n for n, _ in _files(proj)] == ["in/s.bin"]
    # A client that leaves mid-upload frees its key: the retry runs (and stores the file once).
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall((f"POST /projects/{proj.pid}/files?name=in/left.bin HTTP/1.1\r\nHost: x\r\n"
                   f"Authorization: Bearer {proj.key}\r\nIdempotency-Key: left-1\r\n"
                   "Content-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n").encode() + b"x" * 10)
        deadline = time.time() + 20
        while not _staging(proj):
            assert time.time() < deadline, "the abandoned upload never began"
            time.sleep(0.05)
    deadline = time.time() + 20
    while True:
        r = _upload(proj, "in/left.bin", b"y" * 1000, "left-1")
        if r.status_code != 409:
            break
        assert time.time() < deadline, f"the key stayed taken after its client left: {r.text}"
        time.sleep(0.1)
    expect(r, 201)
    assert [n for n, _ in _files(proj)] == ["in/left.bin", "in/s.bin"] and _staging(proj) == []


def test_a_keyed_create_and_column_add_in_a_branch_apply_once(server, admin):
    """In a branch the create may also make the branch's own bucket: only the create keeps the key."""
    proj = Proj(server, admin, "ib")
    proj.create_table("t", ["a"])
    expect(proj.api.post(f"/projects/{proj.pid}/branches", {"id": "dev"}), 201)
    base = f"/projects/{proj.pid}/branches/dev/buckets/{proj.bucket}/tables"
    spec = {"name": "n", "columns": [{"name": "a"}]}
    c1 = proj.api.post(base, spec, headers={"Idempotency-Key": "bc-1"})
    expect(c1, 201)
    c2 = proj.api.post(base, spec, headers={"Idempotency-Key": "bc-1"})
    assert c2.status_code == 201 and c2.content == c1.content
    col = {"name": "x", "type": "VARCHAR"}
    a1 = proj.api.post(base + "/t/columns", col, headers={"Idempotency-Key": "bc-2"})
    expect(a1, 201)
    a2 = proj.api.post(base + "/t/columns", col, headers={"Idempotency-Key": "bc-2"})
    assert a2.status_code == 201 and a2.content == a1.content
    assert [c["name"] for c in expect(proj.api.get(base + "/t"), 200)["columns"]] == ["a", "x"]
    assert [c["name"] for c in proj.table("t")["columns"]] == ["a"]


def test_another_key_of_the_project_never_sees_a_kept_answer(server, admin):
    """Records belong to the key that wrote them: a read key presenting the same Idempotency-Key
    is refused as a write (403), not handed the first request's kept answer."""
    proj, fid = _setup(server, admin)
    first = expect(_append(proj, fid, "k-1"), 200)
    assert first["table_rows"] == 3
    read_key = expect(proj.api.post(f"/projects/{proj.pid}/keys", {"scope": "read"}), 201)["key"]
    reader = server.api(key=read_key)
    r = reader.post(proj.tpath("t") + "/import/file", {"file_id": fid, "incremental": True},
                    headers={"Idempotency-Key": "k-1"})
    expect_error(r, 403, "permission_denied")
    assert "Idempotent-Replayed" not in r.headers
    # a second admin-scope key of the project has its own records: the same key string applies anew
    other = server.api(key=expect(proj.api.post(f"/projects/{proj.pid}/keys", {"scope": "admin"}), 201)["key"])
    r = other.post(proj.tpath("t") + "/import/file", {"file_id": fid, "incremental": True},
                   headers={"Idempotency-Key": "k-1"})
    assert expect(r, 200)["table_rows"] == 6 and "Idempotent-Replayed" not in r.headers
    assert proj.table("t")["rows"] == 6


SECRET_WORDS = ["shown only once", "not stored"]


def test_a_secret_is_never_kept_for_a_repeat(server_factory):
    """A write whose answer carries a secret (a project's key, a new key, a workspace password) keeps no copy of
    it for repeats, not even across a restart: the repeat is 409 saying why, and the secret given the first time
    stays the one that works."""
    server = server_factory()
    admin = server.api()
    created = expect(admin.post("/projects", {"id": "sec", "name": "sec"}, headers={"Idempotency-Key": "p-1"}), 201)
    key = created["api_key"]
    again = admin.post("/projects", {"id": "sec", "name": "sec"}, headers={"Idempotency-Key": "p-1"})
    expect_error(again, 409, "conflict", SECRET_WORDS)
    assert key not in again.text
    api = server.api(key)
    new_key = expect(api.post("/projects/sec/keys", {"scope": "read"}, headers={"Idempotency-Key": "k-1"}), 201)
    rep = api.post("/projects/sec/keys", {"scope": "read"}, headers={"Idempotency-Key": "k-1"})
    expect_error(rep, 409, "conflict", SECRET_WORDS)
    assert new_key["key"] not in rep.text
    ws = expect(api.post("/projects/sec/workspaces", {"id": "w"}, headers={"Idempotency-Key": "w-1"}), 201)
    reset = expect(api.post("/projects/sec/workspaces/w/password", {}, headers={"Idempotency-Key": "w-2"}), 200)
    server.restart()
    for path, idem, secret in [("/projects/sec/workspaces", "w-1", ws["password"]),
                               ("/projects/sec/workspaces/w/password", "w-2", reset["password"])]:
        body = {"id": "w"} if idem == "w-1" else {}
        rep = api.post(path, body, headers={"Idempotency-Key": idem})
        expect_error(rep, 409, "conflict", SECRET_WORDS)
        assert secret not in rep.text and rep.headers.get("Idempotent-Replayed") == "true"
    # Nothing ran again: the reset password is still the workspace's, the first key still the project's.
    q = server.api(None).post("/projects/sec/workspaces/w/query", {"sql": "SELECT 42"},
                              headers={"Authorization": "Basic " + base64.b64encode(
                                  f"{reset['user']}:{reset['password']}".encode()).decode()})
    assert expect(q, 200)["rows"] == [["42"]]
    expect(server.api(key).get("/projects/sec"), 200)
    # On disk: no kept answer holds a secret (the catalog and project files are searched for each one).
    blobs = b"".join(p.read_bytes() for p in server.data_dir.rglob("*") if p.is_file())
    for secret in (key, new_key["key"], ws["password"], reset["password"]):
        assert secret.encode() not in blobs
