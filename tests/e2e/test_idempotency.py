"""Idempotent retries: a write repeated with the same Idempotency-Key answers the first result and
applies nothing again (also across a restart, while the first still runs, and after a kill -9 between
the commit and the answer); the same key with another request is 409; keys expire."""

import threading
import time

import requests

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
    server.stop()
    server.extra_env.update({"DUCKSTORE_TEST_HOOKS": "1", "DUCKSTORE_TEST_CRASH_AFTER_COMMIT": hook})
    server.start()
    try:
        r = send()
        raise AssertionError(f"the server answered instead of dying after the commit: {r.status_code} {r.text}")
    except requests.ConnectionError:
        pass
    proc, server.proc = server.proc, None
    assert proc.wait(timeout=20) == -9, "the test hook did not kill the server"
    del server.extra_env["DUCKSTORE_TEST_CRASH_AFTER_COMMIT"]
    server.start()
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
