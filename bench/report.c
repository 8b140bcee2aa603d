/*
 * report.c - the readable side of the results: aligned tables on stdout,
 * and the memory summary every phase contributes to.
 *
 * A table is built row by row while its phase runs and printed when the
 * phase ends: first column left-aligned, the others right-aligned, notes
 * below. MB means 10^6 bytes everywhere (throughput and RSS alike).
 */
#include "bench.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COLS 16

struct bench_table {
    char *title;
    int n_cols;
    char **headers;
    char ***rows;
    int n_rows, cap_rows;
    char **notes;
    int n_notes;
};

bench_table_t *bench_table_new(const char *title, const char *const *headers)
{
    bench_table_t *t = bench_xmalloc(sizeof(*t));
    memset(t, 0, sizeof(*t));
    t->title = bench_xstrdup(title);
    while (headers[t->n_cols] && t->n_cols < MAX_COLS)
        t->n_cols++;
    t->headers = bench_xmalloc(sizeof(char *) * (size_t)t->n_cols);
    for (int i = 0; i < t->n_cols; i++)
        t->headers[i] = bench_xstrdup(headers[i]);
    return t;
}

void bench_table_row(bench_table_t *t, const char *const *cells)
{
    if (t->n_rows == t->cap_rows) {
        t->cap_rows = t->cap_rows ? t->cap_rows * 2 : 16;
        t->rows = bench_xrealloc(t->rows, sizeof(char **) * (size_t)t->cap_rows);
    }
    char **row = bench_xmalloc(sizeof(char *) * (size_t)t->n_cols);
    bool ended = false;
    for (int i = 0; i < t->n_cols; i++) {
        ended = ended || !cells[i];
        row[i] = bench_xstrdup(ended ? "" : cells[i]);
    }
    t->rows[t->n_rows++] = row;
}

void bench_table_note(bench_table_t *t, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        bench_die("out of memory");
    va_end(ap);
    t->notes = bench_xrealloc(t->notes, sizeof(char *) * (size_t)(t->n_notes + 1));
    t->notes[t->n_notes++] = s;
}

void bench_table_print(bench_table_t *t)
{
    int w[MAX_COLS] = {0};
    for (int c = 0; c < t->n_cols; c++) {
        w[c] = (int)strlen(t->headers[c]);
        for (int r = 0; r < t->n_rows; r++)
            if ((int)strlen(t->rows[r][c]) > w[c])
                w[c] = (int)strlen(t->rows[r][c]);
    }
    printf("\n== %s\n", t->title);
    for (int c = 0; c < t->n_cols; c++)
        printf(c == 0 ? "%-*s" : "  %*s", w[c], t->headers[c]);
    printf("\n");
    for (int c = 0; c < t->n_cols; c++) {
        printf(c == 0 ? "" : "  ");
        for (int k = 0; k < w[c]; k++)
            putchar('-');
    }
    printf("\n");
    for (int r = 0; r < t->n_rows; r++) {
        for (int c = 0; c < t->n_cols; c++)
            printf(c == 0 ? "%-*s" : "  %*s", w[c], t->rows[r][c]);
        printf("\n");
    }
    for (int i = 0; i < t->n_notes; i++)
        printf("  %s\n", t->notes[i]);
    fflush(stdout);
    for (int r = 0; r < t->n_rows; r++) {
        for (int c = 0; c < t->n_cols; c++)
            free(t->rows[r][c]);
        free(t->rows[r]);
    }
    for (int c = 0; c < t->n_cols; c++)
        free(t->headers[c]);
    for (int i = 0; i < t->n_notes; i++)
        free(t->notes[i]);
    free(t->rows);
    free(t->headers);
    free(t->notes);
    free(t->title);
    free(t);
}

/* ---- numbers ---- */

static char *slot(void)
{
    static __thread char bufs[32][48];
    static __thread int next;
    next = (next + 1) % 32;
    return bufs[next];
}

static void group(char *out, size_t sz, const char *digits)
{
    /* digits: optional '-', then digits, then optional ".decimals" */
    const char *dot = strchr(digits, '.');
    size_t int_len = dot ? (size_t)(dot - digits) : strlen(digits);
    size_t o = 0, start = digits[0] == '-' ? 1 : 0;
    if (start)
        out[o++] = '-';
    for (size_t i = start; i < int_len && o + 2 < sz; i++) {
        out[o++] = digits[i];
        size_t left = int_len - i - 1;
        if (left && left % 3 == 0)
            out[o++] = ',';
    }
    if (dot)
        o += (size_t)snprintf(out + o, sz - o, "%s", dot);
    out[o < sz ? o : sz - 1] = '\0';
}

const char *bench_num(double v, int decimals)
{
    char raw[48];
    snprintf(raw, sizeof(raw), "%.*f", decimals, v);
    char *s = slot();
    group(s, 48, raw);
    return s;
}

const char *bench_int(int64_t v)
{
    char raw[48];
    snprintf(raw, sizeof(raw), "%lld", (long long)v);
    char *s = slot();
    group(s, 48, raw);
    return s;
}

const char *bench_mb(int64_t bytes)
{
    if (bytes < 0)
        return "?";
    return bench_num((double)bytes / 1e6, bytes < 10000000 ? 1 : 0);
}

/* ---- memory ---- */

static bench_mem_t mems[32];
static int n_mems;

json_t *bench_mem_json(const bench_mem_t *m)
{
    double ratio = m->before > 0 ? (double)m->after / (double)m->before : 0;
    json_t *j = json_pack("{s:I,s:I,s:I,s:f,s:b,s:f}", "rss_before_bytes", (json_int_t)m->before, "rss_peak_bytes",
                          (json_int_t)m->peak, "rss_after_bytes", (json_int_t)m->after, "rss_after_over_before_ratio",
                          ratio, "rss_back_within_20_percent", ratio > 0 && ratio <= 1.2, "other_processes_cpu_cores",
                          m->other_cores);
    if (j && m->idle >= 0 && m->before > 0) {
        json_object_set_new(j, "rss_idle_bytes", json_integer(m->idle));
        json_object_set_new(j, "rss_idle_after_s", json_real(m->idle_after_s));
        json_object_set_new(j, "rss_detach_due_bytes", json_integer(m->idle_first));
        json_object_set_new(j, "rss_idle_over_before_ratio", json_real((double)m->idle / (double)m->before));
        json_object_set_new(j, "open_projects_idle", json_integer(m->idle_open_projects));
    }
    return j;
}

void bench_report_mem(const bench_mem_t *m, json_t *phase_json)
{
    json_object_set_new(phase_json, "rss", bench_mem_json(m));
    if (n_mems < (int)(sizeof(mems) / sizeof(mems[0])))
        mems[n_mems++] = *m;
}

void bench_report_mem_print(void)
{
    static const char *const h[] = {"phase (server)",     "rss before MB",   "rss peak MB",       "rss after MB",
                                    "ratio after/before", "back within 20%", "rss idle MB",       "idle/before",
                                    "idle after s",       "attached idle",   "other CPU (cores)", NULL};
    bench_table_t *t = bench_table_new("memory: the server's RSS in every phase (sampled every 20 ms)", h);
    for (int i = 0; i < n_mems; i++) {
        const bench_mem_t *m = &mems[i];
        double ratio = m->before > 0 ? (double)m->after / (double)m->before : 0;
        const char *cells[] = {m->phase,
                               bench_mb(m->before),
                               bench_mb(m->peak),
                               bench_mb(m->after),
                               bench_num(ratio, 2),
                               ratio > 0 && ratio <= 1.2 ? "yes" : "NO",
                               m->idle < 0 ? "-" : bench_mb(m->idle),
                               m->idle < 0 || m->before <= 0 ? "-" : bench_num((double)m->idle / (double)m->before, 2),
                               m->idle < 0 ? "-" : bench_num(m->idle_after_s, 0),
                               m->idle_open_projects < 0 ? "-" : bench_int(m->idle_open_projects),
                               m->other_cores < 0 ? "?" : bench_num(m->other_cores, 2),
                               NULL};
        bench_table_row(t, cells);
    }
    bench_table_note(t, "The server runs with its default DUCKSTORE_MEMORY_LIMIT (50%% of physical memory).");
    bench_table_note(t, "rss idle = the server's RSS once it detached the projects nobody used for "
                        "DUCKSTORE_BE_DUCKDB_IDLE_DETACH=%ds and the RSS stopped falling (their buffer pool given "
                        "back; read once a second from %d s after the phase, for at most %d s more; full runs only); "
                        "idle after s = when that was, from the phase's end; attached idle = the project files still "
                        "attached then (duckstore_open_projects).",
                     BENCH_IDLE_DETACH_S, BENCH_IDLE_DETACH_S + 1, BENCH_IDLE_SETTLE_S);
    bench_table_note(t, "other CPU = CPU time of processes other than the benchmark and the server during the phase, "
                        "in cores; well above 0 means other work competed and the figures are lower than the machine "
                        "can do.");
    bench_table_print(t);
}
