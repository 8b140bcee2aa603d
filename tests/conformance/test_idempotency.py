"""Idempotent writes on every backend: the backend records the write's Idempotency-Key in the
write's own transaction, so a kill -9 between the commit and the answer does not make the retry
apply it again (imports and row deletions), and a key reused for another request is 409."""


from conftest import backend_env
from e2e_lib import expect, expect_error
from helpers import Proj, csv_bytes

WHERE_1 = {"where_filters": [{"column": "id", "operator": "eq", "values": ["1"]}]}


def _crash_then_retry(server, send, hook):
    server.die_after_commit(hook, send)
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


def test_crash_after_a_table_create_or_column_add_answers_the_first_result(server_factory, pg, pg_db, backend):
    """The backend records the key in the create's and the schema change's own transaction: the retry after a
    kill -9 between commit and answer answers 201 with the table (not 409 already_exists) and changes nothing."""
    server = server_factory(env=backend_env(pg, pg_db))
    p = Proj(server, server.api(), "il", backend)
    tables = p.tpath("t").rsplit("/", 1)[0]
    spec = {"name": "t", "columns": [{"name": "id"}, {"name": "v"}], "primary_key": ["id"]}

    def create():
        return p.api.post(tables, spec, headers={"Idempotency-Key": "create-1"})

    r = _crash_then_retry(server, create, "table_create")
    body = expect(r, 201)
    assert body["name"] == "t" and [c["name"] for c in body["columns"]] == ["id", "v"], body
    assert body["primary_key"] == ["id"], body
    assert expect(create(), 201) == body
    expect_error(p.api.post(tables, {**spec, "name": "u"}, headers={"Idempotency-Key": "create-1"}), 409, "conflict")
    # Without a key the same create is refused as usual: the rule is the record, not the table's existence.
    expect_error(p.api.post(tables, spec, headers={"Idempotency-Key": "create-2"}), 409, "already_exists")

    def add():
        return p.api.post(p.tpath("t") + "/columns", {"name": "w", "type": "INTEGER", "nullable": False,
                                                      "default": 7}, headers={"Idempotency-Key": "add-1"})

    r = _crash_then_retry(server, add, "column_add")
    body = expect(r, 201)
    assert [c["name"] for c in body["columns"]] == ["id", "v", "w"], body
    assert expect(add(), 201) == body
    assert [c["name"] for c in p.table("t")["columns"]] == ["id", "v", "w"]
    expect_error(p.api.post(p.tpath("t") + "/columns", {"name": "w", "type": "INTEGER"},
                            headers={"Idempotency-Key": "add-2"}), 409, "already_exists")


def test_crash_after_a_bucket_create_or_a_drop_answers_the_first_result(server_factory, pg, pg_db, backend):
    """Bucket creates and table or bucket drops record the key in their own transaction too: the retry after a
    kill -9 between commit and answer answers 201 with the bucket, or 204, instead of 409 or 404."""
    server = server_factory(env=backend_env(pg, pg_db))
    p = Proj(server, server.api(), "im", backend)
    p.create_table("t", ["id"])
    buckets = f"/projects/{p.pid}/buckets"

    def create():
        return p.api.post(buckets, {"stage": "out", "name": "made"}, headers={"Idempotency-Key": "b-1"})

    body = expect(_crash_then_retry(server, create, "bucket_create"), 201)
    assert body["id"] == "out.c-made", body
    assert expect(create(), 201) == body
    expect_error(p.api.post(buckets, {"stage": "out", "name": "made"}, headers={"Idempotency-Key": "b-2"}),
                 409, "already_exists")

    def drop_table():
        return p.api.delete(p.tpath("t"), headers={"Idempotency-Key": "d-1"})

    r = _crash_then_retry(server, drop_table, "table_drop")
    assert r.status_code == 204, r.text
    assert drop_table().status_code == 204
    expect_error(p.api.get(p.tpath("t")), 404, "not_found")
    expect_error(p.api.delete(p.tpath("t"), headers={"Idempotency-Key": "d-2"}), 404, "not_found")

    def drop_bucket():
        return p.api.delete(f"{buckets}/out.c-made", headers={"Idempotency-Key": "d-3"})

    r = _crash_then_retry(server, drop_bucket, "bucket_drop")
    assert r.status_code == 204, r.text
    assert drop_bucket().status_code == 204
    expect_error(p.api.get(f"{buckets}/out.c-made"), 404, "not_found")
