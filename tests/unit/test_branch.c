/*
 * test_branch.c - the branch resolver of the command layer (src/cmd/branch.c)
 * through ds_cmd_branch_read_table, the entry other features use: main's
 * table until the branch writes it, then the branch's own copy; nothing once
 * the branch dropped it; main's again after a pull; an unknown branch is 404.
 */
#include "cmd/cmd.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY "unit-branch-admin-key-0123456789abcdef"

static char dir[] = "/tmp/ds_branch_XXXXXX";
static ds_config_t cfg;
static ds_ctx_t ctx;

static void next(void)
{
    ds_arena_destroy(&ctx.arena);
    ctx = (ds_ctx_t){.arena = ds_arena_create(), .key = KEY};
}

static void setup(void)
{
    ds_err_t err = {0};
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(ds_config_defaults(&cfg, &err), DS_OK, "%s", err.message);
    free(cfg.data_dir);
    cfg.data_dir = strdup(dir);
    free(cfg.admin_key);
    cfg.admin_key = strdup(KEY);
    free(cfg.grpc_addr);
    cfg.grpc_addr = strdup("off");
    ds_log_set_level(DS_LOG_ERROR);
    ds_metrics_init();
    cr_assert_eq(ds_service_start(&cfg, &err), DS_OK, "%s", err.message);
    next();
    ds_project_t p;
    cr_assert_eq(ds_cmd_project_create(&ctx, &(ds_project_create_t){.id = "p"}, &p), DS_OK, "%s", ctx.err.message);
    next();
    ds_be_bucket_t b;
    cr_assert_eq(ds_cmd_bucket_create(&ctx, "p", &(ds_bucket_create_t){.stage = "in", .name = "c-a"}, &b), DS_OK,
                 "%s", ctx.err.message);
    next();
    ds_column_in_t cols[] = {{.name = "id", .nullable = true}};
    ds_be_table_t t;
    cr_assert_eq(ds_cmd_table_create(&ctx, "p", "in.c-a", &(ds_table_create_t){.name = "t", .columns = cols, .n_columns = 1},
                                     &t),
                 DS_OK, "%s", ctx.err.message);
    next();
    ds_be_branch_t br;
    cr_assert_eq(ds_cmd_branch_create(&ctx, "p", "dev", NULL, &br), DS_OK, "%s", ctx.err.message);
    next();
}

static void teardown(void)
{
    ds_arena_destroy(&ctx.arena);
    ds_service_stop();
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

/* "bucket.table" the branch reads, or the status. */
static const char *reads(const char *branch)
{
    const char *b, *t;
    next();
    ds_status_t st = ds_cmd_branch_read_table(&ctx, "p", branch, "IN.C-A", "T", &b, &t);
    return st == DS_OK ? ds_arena_printf(ctx.arena, "%s.%s", b, t) : ds_status_code(st);
}

TestSuite(branch, .init = setup, .fini = teardown);

Test(branch, resolves_through_main_until_the_branch_writes)
{
    cr_assert_str_eq(reads(NULL), "in.c-a.t");
    cr_assert_str_eq(reads("default"), "in.c-a.t");
    cr_assert_str_eq(reads("dev"), "in.c-a.t", "an unwritten table reads main's");
    cr_assert_str_eq(reads("nope"), "not_found");
    next();
    ctx.branch = "dev";
    cr_assert_eq(ds_cmd_column_add(&ctx, "p", "in.c-a", "t", &(ds_column_in_t){.name = "x", .nullable = true}), DS_OK,
                 "%s", ctx.err.message);
    cr_assert_str_eq(reads("dev"), "_br_dev.in.c-a.t", "a written table reads the branch's copy");
    cr_assert_str_eq(reads(NULL), "in.c-a.t");
    next();
    ctx.branch = "dev";
    cr_assert_eq(ds_cmd_table_drop(&ctx, "p", "in.c-a", "t", false), DS_OK, "%s", ctx.err.message);
    cr_assert_str_eq(reads("dev"), "not_found", "a table dropped in the branch is gone there");
    cr_assert_str_eq(reads(NULL), "in.c-a.t");
    next();
    ds_be_table_t t;
    cr_assert_eq(ds_cmd_branch_pull(&ctx, "p", "dev", "in.c-a", "t", &t), DS_OK, "%s", ctx.err.message);
    cr_assert_str_eq(reads("dev"), "in.c-a.t", "after a pull the branch reads main again");
}
