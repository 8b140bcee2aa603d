/*
 * fuzz_util.h - shared pieces of the libFuzzer harnesses (tests/fuzz/fuzz_*.c).
 *
 * fz_copy gives each input its own malloc'd, NUL-terminated copy (ASan then
 * catches a read one byte past the input). fz_service starts the service core
 * in-process (catalog, DuckDB backend, Storage Files; no listener) on a
 * temporary data directory with a known admin key and one project "p" holding
 * bucket in.c-b and table t (id INTEGER, name, amount DECIMAL; primary key id),
 * and removes the directory at exit. fz_fixture puts that fixture back when an
 * input dropped it, so later inputs keep reaching the handlers' deeper code.
 * Harnesses are single-threaded apart from what the core starts itself, and
 * no thread of the core runs a DuckDB statement between inputs (fz_service).
 */
#ifndef DS_FUZZ_UTIL_H
#define DS_FUZZ_UTIL_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"

#define FZ_ADMIN "fuzz-admin-key-0123456789abcdef0123456789"

static __attribute__((unused)) char *fz_copy(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Splits the input at the first occurrence of sep: *a and *b are fresh NUL-terminated copies. */
static __attribute__((unused)) void fz_split(const uint8_t *data, size_t size, char sep, char **a, char **b)
{
    const uint8_t *p = memchr(data, sep, size);
    size_t n = p ? (size_t)(p - data) : size;
    *a = fz_copy(data, n);
    *b = p ? fz_copy(p + 1, size - n - 1) : fz_copy((const uint8_t *)"", 0);
}

static char fz_tmp[PATH_MAX];
static ds_config_t fz_cfg;

static __attribute__((unused)) void fz_remove_tmp(void)
{
    if (!fz_tmp[0])
        return;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fz_tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz: cannot remove %s\n", fz_tmp);
}

static __attribute__((unused)) void fz_stop(void)
{
    ds_service_stop();
    ds_config_free(&fz_cfg);
    fz_remove_tmp();
}

/*
 * A fresh temporary directory under $TMPDIR, or /tmp (removed at exit); aborts
 * when none can be made.
 */
static __attribute__((unused)) const char *fz_make_tmp(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[PATH_MAX];
    if (snprintf(tmpl, sizeof(tmpl), "%s/ds_fuzz_XXXXXX", base && *base ? base : "/tmp") >= (int)sizeof(tmpl)) {
        fprintf(stderr, "fuzz: TMPDIR is too long\n");
        abort();
    }
    if (!mkdtemp(tmpl) || !realpath(tmpl, fz_tmp)) {
        perror("fuzz: mkdtemp");
        abort();
    }
    return fz_tmp;
}

static __attribute__((unused)) void fz_call(ds_status_t st, ds_ctx_t *ctx, const char *what)
{
    if (st != DS_OK && st != DS_ALREADY_EXISTS) {
        fprintf(stderr, "fuzz: fixture %s failed: %s\n", what, ctx->err.message);
        abort();
    }
}

/* A command context as a request has one; its arena's end releases any write slot it took. */
static ds_ctx_t fz_ctx(void) { return (ds_ctx_t){.arena = ds_arena_create(), .key = FZ_ADMIN}; }

/* Puts project p, bucket in.c-b and table t back when an input removed them (one context per command). */
/* Milliseconds on the monotonic clock since t0. */
static __attribute__((unused)) long fz_ms_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t0->tv_sec) * 1000L + (now.tv_nsec - t0->tv_nsec) / 1000000L;
}

/*
 * Between two looks at what another thread still holds: 20 us for the first
 * 2 ms (a worker usually lets go within a few hundred microseconds, and a
 * whole millisecond per look was half of a REST input's time), 1 ms after.
 * Returns the milliseconds since t0.
 */
static __attribute__((unused)) long fz_pause(const struct timespec *t0)
{
    long ms = fz_ms_since(t0);
    usleep(ms < 2 ? 20 : 1000);
    return ms;
}

/*
 * After an input: nothing the request took may stay held (write slots, project
 * pins, backend calls), or a later input on the same table or project waits
 * for it for ever. Work that may still end on another thread (the REST
 * server's workers; fz_service turns the core's own background work off)
 * gets two minutes; then the holds are printed and the run stops on this
 * input. (A 5 s grace stopped a run after 4.75M inputs on an input that, run
 * alone, leaves nothing held, while the history sweep and automatic
 * compaction still ran.)
 */
static __attribute__((unused)) void fz_check_holds(void)
{
    ds_holds_t h = {0};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long ms = 0; ms < 120000; ms = fz_pause(&t0)) {
        ds_service_holds(&h);
        if (!h.slots && !h.waiting && !h.pins && !h.calls) {
            if (ms >= 5000) /* the log shows how long background work held on */
                fprintf(stderr, "fuzz: holds ended %ld ms after the input\n", ms);
            return;
        }
    }
    fprintf(stderr, "fuzz: the input left held: %lld write slot(s), %lld waiting, %lld project pin(s), %lld "
            "backend call(s)\n", (long long)h.slots, (long long)h.waiting, (long long)h.pins, (long long)h.calls);
    abort();
}

static __attribute__((unused)) void fz_fixture(void)
{
    ds_ctx_t ctx = fz_ctx();
    ds_project_t p;
    if (ds_cmd_project_get(&ctx, "p", &p) != DS_OK) {
        ds_arena_destroy(&ctx.arena);
        ctx = fz_ctx();
        ds_project_create_t in = {.id = "p"};
        fz_call(ds_cmd_project_create(&ctx, &in, &p), &ctx, "project");
    }
    ds_arena_destroy(&ctx.arena);
    ctx = fz_ctx();
    ds_be_bucket_t b;
    if (ds_cmd_bucket_get(&ctx, "p", "in.c-b", &b) != DS_OK) {
        ds_arena_destroy(&ctx.arena);
        ctx = fz_ctx();
        ds_bucket_create_t in = {.stage = "in", .name = "b"};
        fz_call(ds_cmd_bucket_create(&ctx, "p", &in, &b), &ctx, "bucket");
    }
    ds_arena_destroy(&ctx.arena);
    ctx = fz_ctx();
    ds_be_table_t t;
    if (ds_cmd_table_get(&ctx, "p", "in.c-b", "t", &t) != DS_OK) {
        ds_arena_destroy(&ctx.arena);
        ctx = fz_ctx();
        ds_column_in_t cols[] = {{.name = "id", .type = "INTEGER"},
                                 {.name = "name", .nullable = true},
                                 {.name = "amount", .type = "DECIMAL(12,2)", .nullable = true}};
        const char *pk[] = {"id"};
        ds_table_create_t in = {.name = "t", .columns = cols, .n_columns = 3, .primary_key = pk, .n_primary_key = 1};
        fz_call(ds_cmd_table_create(&ctx, "p", "in.c-b", &in, &t), &ctx, "table");
    }
    ds_arena_destroy(&ctx.arena);
}

static __attribute__((unused)) void fz_service(void)
{
    ds_err_t err = {0};
    ds_log_set_level(DS_LOG_ERROR);
    ds_metrics_init();
    const char *dir = fz_make_tmp();
    char data[PATH_MAX + 8];
    snprintf(data, sizeof(data), "%s/data", dir);
    if (ds_config_defaults(&fz_cfg, &err) != DS_OK)
        abort();
    free(fz_cfg.data_dir);
    free(fz_cfg.admin_key);
    fz_cfg.data_dir = strdup(data);
    fz_cfg.admin_key = strdup(FZ_ADMIN);
    fz_cfg.max_open_projects = 4;
    /*
     * No DuckDB statement of the core's own may run between inputs. libFuzzer
     * checks for leaks after an input whose mallocs and frees did not balance
     * (a statement in flight on another thread is enough), and that check
     * reports the plan objects of a query alive on another thread as leaked:
     * only DuckDB's own allocator's memory, which LeakSanitizer does not scan,
     * refers to them (shown with DuckDB alone). A driver run stopped so twice
     * (93 allocations, 11,396 bytes) on inputs that alone leave nothing. So
     * every thread of the core that runs statements on its own is off or a
     * year away, set as an operator would:
     * - the history sweep: a year (DUCKSTORE_HISTORY_SWEEP_SECONDS);
     * - the Storage Files sweep, which queries the catalog on every pass: a
     *   year (DUCKSTORE_FILES_SWEEP_SECONDS), so a quarter of the file TTL
     *   (days; nothing expires within a run);
     * - the DuckDB backend's idle detach: off, no reaper thread
     *   (DUCKSTORE_BE_DUCKDB_IDLE_DETACH=0);
     * - automatic compaction, which a dev branch drop queues for right after
     *   the request: off, the compaction thread opens nothing
     *   (compact_min_free_ratio 0);
     * - the closing of idle workspace sandboxes by the query watchdog: off
     *   (ws_idle_close 0; past ws_max_open a request closes one itself).
     */
    fz_cfg.history_sweep = 365LL * 24 * 3600;
    fz_cfg.files_sweep = 365LL * 24 * 3600;
    fz_cfg.ws_idle_close = 0;
    fz_cfg.compact_min_free_ratio = 0;
    setenv("DUCKSTORE_BE_DUCKDB_IDLE_DETACH", "0", 1);
    if (ds_service_start(&fz_cfg, &err) != DS_OK) {
        fprintf(stderr, "fuzz: cannot start the service: %s\n", err.message);
        abort();
    }
    atexit(fz_stop);
    fz_fixture();
}

#endif
