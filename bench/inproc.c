/*
 * inproc.c - the command layer in this process: request latency without any
 * protocol.
 *
 * DESIGN
 * The benchmark links the project's objects (the Makefile's CORE_OBJ) and
 * starts the service core with ds_service_start on its own data directory,
 * with the same defaults as the server (memory limit, threads). The request
 * table is loaded through the same commands a transport calls (file upload,
 * import). A request is then what a transport does minus the transport:
 * an arena, a ds_ctx_t with the key, one ds_cmd_* call, the arena freed.
 * The difference to REST or gRPC is the protocol's overhead.
 */
#include "bench.h"
#include "cmd/cmd.h"
#include "cmd/files.h"
#include "core/log.h"
#include "core/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY "bench-inprocess-admin-key-0123456789"

static ds_config_t cfg;
static int64_t req_rows;

static void replace(char **field, const char *value)
{
    free(*field);
    *field = bench_xstrdup(value);
}

static void check(ds_status_t st, ds_ctx_t *ctx, const char *what)
{
    if (st != DS_OK)
        bench_die("in-process %s: %s", what, ctx->err.message);
}

/* Ends one request and starts the next: a fresh arena, a clean error. */
static void next_request(ds_ctx_t *ctx)
{
    ds_arena_destroy(&ctx->arena);
    ctx->arena = ds_arena_create();
    ds_err_clear(&ctx->err);
}

void bench_inproc_start(const char *data_dir, const char *req_csv)
{
    ds_err_t err = {0};
    if (ds_config_defaults(&cfg, &err) != DS_OK)
        bench_die("in-process config: %s", err.message);
    bench_rmtree(data_dir);
    bench_mkdirs(data_dir);
    replace(&cfg.data_dir, data_dir);
    replace(&cfg.admin_key, KEY);
    replace(&cfg.grpc_addr, "off");
    ds_log_set_level(DS_LOG_WARN);
    ds_metrics_init();
    if (ds_service_start(&cfg, &err) != DS_OK)
        bench_die("in-process ds_service_start: %s", err.message);

    /* One arena per command, as a transport does: a command's write slot lives as long as its arena. */
    ds_ctx_t ctx = {.arena = ds_arena_create(), .key = KEY};
    ds_project_t p;
    ds_project_create_t pc = {.id = BENCH_PROJECT};
    check(ds_cmd_project_create(&ctx, &pc, &p), &ctx, "project create");
    next_request(&ctx);
    ds_be_bucket_t b;
    ds_bucket_create_t bc = {.stage = "in", .name = "bench"};
    check(ds_cmd_bucket_create(&ctx, BENCH_PROJECT, &bc, &b), &ctx, "bucket create");
    next_request(&ctx);
    ds_column_in_t cols[16];
    for (size_t i = 0; i < bench_n_cols; i++)
        cols[i] = (ds_column_in_t){.name = bench_cols[i].name, .type = bench_cols[i].type, .nullable = i != 0};
    const char *pk[] = {"id"};
    ds_table_create_t tc = {
        .name = "req", .columns = cols, .n_columns = bench_n_cols, .primary_key = pk, .n_primary_key = 1};
    ds_be_table_t t;
    check(ds_cmd_table_create(&ctx, BENCH_PROJECT, BENCH_BUCKET, &tc, &t), &ctx, "table create");
    next_request(&ctx);

    ds_upload_t *up = NULL;
    ds_file_upload_in_t ui = {.name = "req.csv", .overwrite = true};
    check(ds_cmd_file_upload_begin(&ctx, BENCH_PROJECT, &ui, &up), &ctx, "upload begin");
    FILE *f = fopen(req_csv, "rb");
    if (!f)
        bench_die("cannot read %s", req_csv);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        check(ds_cmd_file_upload_write(&ctx, up, buf, n), &ctx, "upload write");
    fclose(f);
    ds_file_t file;
    check(ds_cmd_file_upload_finish(&ctx, up, &file), &ctx, "upload finish");
    ds_cmd_file_upload_abort(&up);
    char *file_id = bench_xstrdup(file.id);
    next_request(&ctx);

    ds_import_t in = {.file_id = file_id,
                      .format = DS_FORMAT_CSV,
                      .dedup = DS_DEDUP_UPDATE,
                      .timestamp_mode = DS_TS_CURRENT_TIME,
                      .strategy = DS_STRATEGY_AUTO,
                      .create_mode = DS_CREATE_NONE};
    snprintf(in.csv.delimiter, sizeof(in.csv.delimiter), ",");
    snprintf(in.csv.enclosure, sizeof(in.csv.enclosure), "\"");
    in.csv.header = true;
    ds_import_result_t ir;
    check(ds_cmd_table_import(&ctx, BENCH_PROJECT, BENCH_BUCKET, "req", &in, &ir), &ctx, "import");
    req_rows = ir.table_rows;
    ds_arena_destroy(&ctx.arena);
    free(file_id);
}

void bench_inproc_stop(void)
{
    ds_service_stop();
    ds_config_free(&cfg);
}

bool bench_inproc_table_get(void)
{
    ds_ctx_t ctx = {.arena = ds_arena_create(), .key = KEY};
    ds_be_table_t t;
    bool ok = ds_cmd_table_get(&ctx, BENCH_PROJECT, BENCH_BUCKET, "req", &t) == DS_OK && t.rows == req_rows;
    ds_arena_destroy(&ctx.arena);
    return ok;
}

bool bench_inproc_preview(void)
{
    ds_ctx_t ctx = {.arena = ds_arena_create(), .key = KEY};
    ds_preview_t in = {.limit = 100};
    ds_preview_result_t out;
    bool ok = ds_cmd_table_preview(&ctx, BENCH_PROJECT, BENCH_BUCKET, "req", &in, &out) == DS_OK && out.n_rows == 100;
    ds_arena_destroy(&ctx.arena);
    return ok;
}
