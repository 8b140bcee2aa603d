/*
 * ddb_fixture.h - the DuckDB backend on a temporary data directory with
 * project "p" and its bucket "in.c-a", for unit tests that drive
 * backends/duckdb through its ops. A test file includes it once (it defines
 * the statics the tests use: ops, self, dir, arena, err, call), calls
 * ddb_fixture_open from its setup and ddb_fixture_close from its teardown.
 */
#ifndef DS_TEST_DDB_FIXTURE_H
#define DS_TEST_DDB_FIXTURE_H

#include "../../backends/duckdb/duckdb_backend.h"
#include "backend/registry.h"
#include "core/arena.h"
#include "core/log.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

static const ds_backend_ops_t *ops;
static void *self; /* NULL once a test closed the backend itself */
static char dir[64];
static ds_arena_t *arena;
static ds_err_t err;
static ds_be_call_t call;

/* Opens the backend on a new directory /tmp/<prefix>XXXXXX; creates project p and bucket in.c-a. */
static void ddb_fixture_open(const char *prefix)
{
    ds_log_set_level(DS_LOG_ERROR);
    snprintf(dir, sizeof(dir), "/tmp/%sXXXXXX", prefix);
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(ds_registry_init(dir, (int64_t)512 << 20, 2, 8, &err), DS_OK, "%s", err.message);
    ops = ds_be_duckdb_entry(ds_registry_host());
    cr_assert_eq(ops->open(ds_registry_host(), &self, &err), DS_OK, "%s", err.message);
    arena = ds_arena_create();
    call = (ds_be_call_t){.arena = arena, .err = &err, .project_id = "p"};
    cr_assert_eq(ops->project_create(self, &call), DS_OK, "%s", err.message);
    ds_be_bucket_t b = {.id = "in.c-a", .stage = "in", .name = "c-a", .created_at = 1};
    cr_assert_eq(ops->bucket_create(self, &call, &b), DS_OK, "%s", err.message);
}

/* Closes the backend (unless a test did) and removes the directory. */
static void ddb_fixture_close(void)
{
    ds_arena_destroy(&arena);
    if (self)
        ops->close(self);
    self = NULL;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

#endif
