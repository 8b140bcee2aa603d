/*
 * limit_db.c - the limit: DuckDB itself, through its C API, in this process.
 *
 * DESIGN
 * One database file next to the server's data (same disk), opened with the
 * memory limit and thread count duckstore's defaults resolve to, so the
 * comparison is DuckDB vs DuckDB-behind-duckstore on equal terms. Tables
 * have the bench columns plus duckstore's "_timestamp" column; COPY FROM
 * leaves it NULL (duckstore fills it), which costs DuckDB nothing worth
 * counting. SQL errors end the run.
 */
#include "bench.h"

#include <duckdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bench_limit {
    duckdb_database db;
    duckdb_connection con;
};

const char *bench_duckdb_version(void)
{
    return duckdb_library_version();
}

const char *bench_csv_columns_spec(void)
{
    static char spec[1024];
    if (!spec[0]) {
        size_t n = 0;
        n += (size_t)snprintf(spec + n, sizeof(spec) - n, "{");
        for (size_t i = 0; i < bench_n_cols; i++)
            n += (size_t)snprintf(spec + n, sizeof(spec) - n, "%s'%s': '%s'", i ? ", " : "", bench_cols[i].name,
                                  bench_cols[i].type ? bench_cols[i].type : "VARCHAR");
        snprintf(spec + n, sizeof(spec) - n, "}");
    }
    return spec;
}

static const char *column_list(void)
{
    static char list[512];
    if (!list[0]) {
        size_t n = 0;
        for (size_t i = 0; i < bench_n_cols; i++)
            n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "", bench_cols[i].name);
    }
    return list;
}

bench_limit_t *bench_limit_open(const char *path, int64_t memory_bytes, int threads)
{
    bench_limit_t *l = bench_xmalloc(sizeof(*l));
    duckdb_config cfg;
    char *err = NULL;
    char mem[64], thr[32];
    snprintf(mem, sizeof(mem), "%lldB", (long long)memory_bytes);
    snprintf(thr, sizeof(thr), "%d", threads);
    if (duckdb_create_config(&cfg) != DuckDBSuccess)
        bench_die("duckdb_create_config failed");
    duckdb_set_config(cfg, "memory_limit", mem);
    duckdb_set_config(cfg, "threads", thr);
    if (duckdb_open_ext(path, &l->db, cfg, &err) != DuckDBSuccess)
        bench_die("cannot open %s: %s", path ? path : ":memory:", err ? err : "?");
    duckdb_destroy_config(&cfg);
    if (duckdb_connect(l->db, &l->con) != DuckDBSuccess)
        bench_die("cannot connect to %s", path);
    return l;
}

void bench_limit_close(bench_limit_t **lp)
{
    if (!lp || !*lp)
        return;
    duckdb_disconnect(&(*lp)->con);
    duckdb_close(&(*lp)->db);
    free(*lp);
    *lp = NULL;
}

static double exec_on(duckdb_connection con, const char *sql)
{
    duckdb_result r;
    double t0 = bench_now();
    if (duckdb_query(con, sql, &r) != DuckDBSuccess)
        bench_die("DuckDB: %s\n  in: %.500s", duckdb_result_error(&r), sql);
    double t = bench_now() - t0;
    duckdb_destroy_result(&r);
    return t;
}

double bench_limit_exec(bench_limit_t *l, const char *sql)
{
    return exec_on(l->con, sql);
}

int64_t bench_limit_int(bench_limit_t *l, const char *sql)
{
    duckdb_result r;
    if (duckdb_query(l->con, sql, &r) != DuckDBSuccess)
        bench_die("DuckDB: %s\n  in: %.500s", duckdb_result_error(&r), sql);
    int64_t v = duckdb_value_int64(&r, 0, 0);
    duckdb_destroy_result(&r);
    return v;
}

void bench_limit_create_table(bench_limit_t *l, const char *name)
{
    char sql[2048];
    size_t n = (size_t)snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s; CREATE TABLE %s (", name, name);
    for (size_t i = 0; i < bench_n_cols; i++)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, "%s %s%s, ", bench_cols[i].name,
                              bench_cols[i].type ? bench_cols[i].type : "VARCHAR", i == 0 ? " NOT NULL" : "");
    snprintf(sql + n, sizeof(sql) - n, "_timestamp TIMESTAMP)");
    bench_limit_exec(l, sql);
}

static char *copy_sql(const char *table, const char *file, bench_fmt_t fmt)
{
    const char *opts = fmt == BENCH_FMT_PARQUET  ? "FORMAT parquet"
                       : fmt == BENCH_FMT_CSV_GZ ? "FORMAT csv, HEADER true, COMPRESSION gzip"
                                                 : "FORMAT csv, HEADER true";
    return bench_fmt("COPY %s (%s) FROM '%s' (%s)", table, column_list(), file, opts);
}

double bench_limit_copy_from(bench_limit_t *l, const char *table, const char *file, bench_fmt_t fmt)
{
    char *sql = copy_sql(table, file, fmt);
    double t = bench_limit_exec(l, sql);
    free(sql);
    return t;
}

typedef struct {
    bench_limit_t *l;
    const char *table, *file;
    pthread_barrier_t *go;
} par_job_t;

static void *par_copy(void *arg)
{
    par_job_t *j = arg;
    duckdb_connection con;
    if (duckdb_connect(j->l->db, &con) != DuckDBSuccess)
        bench_die("cannot connect");
    char *sql = copy_sql(j->table, j->file, BENCH_FMT_CSV);
    pthread_barrier_wait(j->go);
    exec_on(con, sql);
    free(sql);
    duckdb_disconnect(&con);
    return NULL;
}

double bench_limit_copy_parallel(bench_limit_t *l, const char *const *tables, const char *const *files, int k)
{
    pthread_t th[16];
    par_job_t jobs[16];
    pthread_barrier_t go;
    if (k > 16)
        k = 16;
    pthread_barrier_init(&go, NULL, (unsigned)k + 1);
    for (int i = 0; i < k; i++) {
        jobs[i] = (par_job_t){l, tables[i], files[i], &go};
        if (pthread_create(&th[i], NULL, par_copy, &jobs[i]) != 0)
            bench_die("cannot start a thread");
    }
    pthread_barrier_wait(&go);
    double t0 = bench_now();
    for (int i = 0; i < k; i++)
        pthread_join(th[i], NULL);
    double t = bench_now() - t0;
    pthread_barrier_destroy(&go);
    return t;
}

char *bench_limit_upsert_sql(const char *csv, const char *table)
{
    return bench_fmt("BEGIN; CREATE OR REPLACE TEMP TABLE inc AS SELECT * FROM read_csv('%s', header = true, "
                     "columns = %s); DELETE FROM %s USING inc WHERE %s.id = inc.id; "
                     "INSERT INTO %s BY NAME SELECT * FROM inc; DROP TABLE inc; COMMIT",
                     csv, bench_csv_columns_spec(), table, table, table);
}
