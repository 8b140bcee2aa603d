/*
 * test_engine_sandbox.c - the DuckDB backend's engine instance cannot reach
 * files outside the data directory, whatever SQL runs on it, and its
 * configuration cannot be changed back (backends/duckdb/duckdb_backend.c,
 * confine_engine). Runs statements on the real instance, from inside the
 * process, as a statement-building bug would.
 */
#include "../../backends/duckdb/ddb.h"
#include "../../backends/duckdb/duckdb_backend.h"
#include "../../backends/duckdb/internal.h"
#include "backend/registry.h"
#include "core/log.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const ds_backend_ops_t *ops;
static void *self;
static duckdb_connection conn;
static char dir[] = "/tmp/ds_ddb_sandbox_XXXXXX";
static char outside[] = "/tmp/ds_ddb_outside_XXXXXX";

static void setup(void)
{
    ds_err_t err = {0};
    ds_log_set_level(DS_LOG_ERROR);
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_not_null(mkdtemp(outside));
    cr_assert_eq(ds_registry_init(dir, (int64_t)256 << 20, 1, 4, &err), DS_OK, "%s", err.message);
    ops = ds_be_duckdb_entry(ds_registry_host());
    cr_assert_eq(ops->open(ds_registry_host(), &self, &err), DS_OK, "%s", err.message);
    cr_assert_eq(duckdb_connect(((be_t *)self)->db, &conn), DuckDBSuccess);
    char path[256];
    snprintf(path, sizeof(path), "%s/secret.csv", outside);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("a\n1\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/inside.csv", dir);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("a\n1\n", f);
    fclose(f);
}

static void teardown(void)
{
    duckdb_disconnect(&conn);
    ops->close(self);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf %s %s", dir, outside);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(sandbox, .init = setup, .fini = teardown);

static ds_status_t run(const char *fmt, const char *arg)
{
    char sql[512];
    snprintf(sql, sizeof(sql), fmt, arg);
    ds_err_t err = {0};
    return ds_ddb_exec(conn, &err, sql);
}

Test(sandbox, files_outside_the_data_directory_cannot_be_read)
{
    cr_assert_neq(run("SELECT * FROM read_csv('%s')", "/etc/passwd"), DS_OK);
    char path[256];
    snprintf(path, sizeof(path), "%s/secret.csv", outside);
    cr_assert_neq(run("SELECT * FROM read_csv('%s')", path), DS_OK);
    cr_assert_neq(run("SELECT * FROM read_text('%s')", "/etc/hostname"), DS_OK);
    cr_assert_neq(run("SELECT * FROM glob('%s')", "/etc/*"), DS_OK);
    /* The data directory itself stays usable: imports read from it. */
    snprintf(path, sizeof(path), "%s/inside.csv", dir);
    cr_assert_eq(run("SELECT * FROM read_csv('%s')", path), DS_OK);
}

Test(sandbox, nothing_can_be_written_or_attached_outside)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/out.csv", outside);
    cr_assert_neq(run("COPY (SELECT 1) TO '%s'", path), DS_OK);
    snprintf(path, sizeof(path), "%s/evil.duckdb", outside);
    cr_assert_neq(run("ATTACH '%s' AS evil", path), DS_OK);
    snprintf(path, sizeof(path), "%s/out.csv", dir);
    cr_assert_eq(run("COPY (SELECT 1) TO '%s'", path), DS_OK);
}

Test(sandbox, the_configuration_is_locked)
{
    cr_assert_neq(run("SET enable_external_access = %s", "true"), DS_OK);
    cr_assert_neq(run("SET allowed_directories = ['%s']", "/"), DS_OK);
    cr_assert_neq(run("SET lock_configuration = %s", "false"), DS_OK);
    cr_assert_neq(run("SELECT * FROM read_csv('%s')", "/etc/passwd"), DS_OK);
}
