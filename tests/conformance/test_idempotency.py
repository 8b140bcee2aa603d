"""Idempotent writes on every backend: the backend records the write's Idempotency-Key in the
write's own transaction, so a kill -9 between the commit and the answer does not make the retry
apply it again (imports and row deletions), and a key reused for another request is 409."""

import requests

from conftest import backend_env
from e2e_lib import expect, expect_error
from helpers import Proj, csv_bytes

WHERE_1 = {"where_filters": [{"column": "id", "operator": "eq", "values": ["1"]}]}


def _crash_then_retry(server, send, hook):
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


def test_crash_between_commit_and_answer_applies_once(server_factory, pg, pg_db, backend):
    server = server_factory(env=backend_env(pg, pg_db))
    p = Proj(server, server.api(), "ik", backend)
    p.create_table("t", ["id", "v"])
    fid = p.upload(csv_bytes([["1", "a"], ["2", "b"], ["3", "c"]], ["id", "v"]))["id"]

    def append():
        return p.api.post(p.tpath("t") + "/import/file", {"file_id": fid, "incremental": True},
                          headers={"Idempotency-Key": "append-1"})

    body = expect(_crash_then_retry(server, append, "import"), 200)
    assert body["imported_rows"] == 3 and body["table_rows"] == 3, body
    assert p.table("t")["rows"] == 3
    again = append()
    assert expect(again, 200)["table_rows"] == 3 and p.table("t")["rows"] == 3
    expect_error(p.api.post(p.tpath("t") + "/import/file", {"file_id": fid}, headers={"Idempotency-Key": "append-1"}),
                 409, "conflict")

    def delete():
        return p.api.delete(p.tpath("t") + "/rows", json_body=WHERE_1, headers={"Idempotency-Key": "del-1"})

    body = expect(_crash_then_retry(server, delete, "delete_rows"), 200)
    assert p.table("t")["rows"] == 2
    expect(p.api.post(p.tpath("t") + "/import/file", {"file_id": fid, "incremental": True}), 200)
    assert expect(delete(), 200) == body
    assert p.table("t")["rows"] == 5
