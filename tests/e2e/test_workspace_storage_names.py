"""Storage tables by name in workspace SQL: `"<bucket id>"."<table>"` reads the storage table through
the controlled channel (ds_storage_scan behind a view of the sandbox), read-only, current, in the
workspace's branch; no user statement may create, change or drop anything in those schemas."""

import pytest

from data_helpers import Proj
from e2e_lib import expect, expect_error

B = "in.c-main"


def q(p, ws, sql):
    return p.api.post(f"/projects/{p.pid}/workspaces/{ws}/query", {"sql": sql})


def rows(p, ws, sql):
    return expect(q(p, ws, sql), 200)["rows"]


@pytest.fixture
def proj(server, admin):
    p = Proj(server, admin, "sn")
    p.create_table("people", ["id", "name"], primary_key=["id"])
    p.load_rows("people", ["id", "name"], [["1", "Ann"], ["2", "Bob"]])
    expect(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "w"}), 201)
    return p


def test_storage_table_by_name(proj):
    p = proj
    assert rows(p, "w", 'SELECT id, name FROM "in.c-main"."people" ORDER BY id') == [["1", "Ann"], ["2", "Bob"]]
    assert rows(p, "w", 'SELECT count(*) FROM "in.c-main" . people') == [["2"]]
    # joined with the workspace's own table, and copied into one
    expect(q(p, "w", "CREATE TABLE pets AS SELECT 1 AS owner, 'cat' AS kind"), 200)
    assert rows(p, "w", 'SELECT p.name, t.kind FROM pets t JOIN "in.c-main"."people" p ON p.id = t.owner::VARCHAR') \
        == [["Ann", "cat"]]
    expect(q(p, "w", 'CREATE TABLE copy AS SELECT * FROM "in.c-main"."people"'), 200)
    assert rows(p, "w", "SELECT count(*) FROM copy") == [["2"]]
    # current: a change of storage shows in the next query
    p.load_rows("people", ["id", "name"], [["3", "Cid"]], incremental=True)
    assert rows(p, "w", 'SELECT count(*) FROM "in.c-main"."people"') == [["3"]]
    # unknown names fail clearly; another project's bucket is not there
    expect_error(q(p, "w", 'SELECT * FROM "in.c-main"."nope"'), 400, "query_failed", ["nope"])
    expect_error(q(p, "w", 'SELECT * FROM "in.c-other"."people"'), 400, "query_failed", ["in.c-other"])
    # the project query route reads the same names
    assert expect(p.api.post(f"/projects/{p.pid}/query", {"sql": 'SELECT count(*) FROM "in.c-main"."people"'}),
                  200)["rows"] == [["3"]]


WRITES = [
    'INSERT INTO "in.c-main"."people" VALUES (\'9\', \'Eve\')',
    'UPDATE "in.c-main"."people" SET name = \'x\'',
    'DELETE FROM "in.c-main"."people"',
    'DROP VIEW "in.c-main"."people"',
    'DROP VIEW "in.c-main".main."people"',
    'CREATE OR REPLACE VIEW "in.c-main"."people" AS SELECT \'9\' AS id, \'Eve\' AS name',
    'CREATE TABLE "in.c-main".evil AS SELECT 1 AS x',
    'CREATE TABLE "in.c-main".main.evil (x INTEGER)',
    'CREATE VIEW "in.c-main".evil AS SELECT 1 AS x',
    'CREATE SCHEMA "in.c-main".evil',
    'CREATE MACRO "in.c-main".evil() AS 1',
    'CREATE SEQUENCE "in.c-main".evil',
    'ALTER VIEW "in.c-main"."people" RENAME TO evil',
    'CREATE TYPE "in.c-main".evil AS ENUM (\'a\')',
    'DROP SCHEMA "in.c-main".main CASCADE',
]


def test_storage_names_cannot_be_written(proj):
    p = proj
    # the storage rows, the workspace's own objects, and what the bucket's catalog holds
    state_sql = ('SELECT (SELECT string_agg(id || name, \',\' ORDER BY id) FROM "in.c-main"."people"), '
                 "(SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables "
                 "WHERE table_catalog = current_database()), "
                 "(SELECT string_agg(database_name || '.' || schema_name || '.' || view_name, ',') "
                 "FROM duckdb_views() WHERE database_name = 'in.c-main'), "
                 "(SELECT count(*) FROM duckdb_tables() WHERE database_name = 'in.c-main')")
    before = rows(p, "w", state_sql)
    assert before == [["1Ann,2Bob", None, "in.c-main.main.people", "0"]]
    for sql in WRITES:
        err = expect_error(q(p, "w", sql), 400, "query_failed")
        msg = err["message"].lower()
        dml = sql.split()[0] in ("INSERT", "UPDATE", "DELETE")  # DuckDB refuses these on a view itself
        assert "read-only" in msg or (dml and any(w in msg for w in ("view", "base table", "not an table"))), (sql, msg)
        assert rows(p, "w", state_sql) == before, sql
    # storage is untouched
    assert p.table("people")["rows"] == 2
    # the workspace's own objects still take every write
    expect(q(p, "w", "CREATE TABLE ok AS SELECT 1 AS x"), 200)
    expect(q(p, "w", "DROP TABLE ok"), 200)


def test_storage_names_read_the_workspaces_branch(server, admin):
    p = Proj(server, admin, "sb")
    p.create_table("people", ["id", "name"], primary_key=["id"])
    p.load_rows("people", ["id", "name"], [["1", "Ann"], ["2", "Bob"]])
    expect(p.api.post(f"/projects/{p.pid}/branches", {"id": "dev"}), 201)
    expect(p.api.post(f"/projects/{p.pid}/branches/dev/buckets/{B}/tables/people/import/file",
                      {"file_id": p.upload("b.csv", b"id,name\n3,Cid\n")["id"], "incremental": True}), 200)
    expect(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "wdev", "branch": "dev"}), 201)
    expect(p.api.post(f"/projects/{p.pid}/workspaces", {"id": "wmain"}), 201)
    sql = 'SELECT id FROM "in.c-main"."people" ORDER BY id'
    assert rows(p, "wdev", sql) == [["1"], ["2"], ["3"]]
    assert rows(p, "wmain", sql) == [["1"], ["2"]]
