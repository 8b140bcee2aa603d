/*
 * datagen.c - the benchmark's data: realistic mixed-type rows.
 *
 * DESIGN
 * Eleven columns of the kinds a Keboola table carries: a BIGINT key, names,
 * e-mails, country codes, cities (some with commas, so quoted), a
 * DECIMAL(12,2) amount, an INTEGER quantity, a DOUBLE price, a TIMESTAMP, a
 * BOOLEAN and a free-text note (sometimes empty, sometimes with quotes and
 * commas). About 150 bytes a row as CSV. Values come from a hash of (row id,
 * version), so every run produces the same bytes and an updated row
 * (version 2) differs from its original.
 *
 * Files (all in one directory, reused while the stamp file matches):
 *   base.csv, base.csv.gz (zlib level 6, as gzip(1) writes by default),
 *   base.parquet (DuckDB's writer, typed columns);
 *   inc.csv: rows/10 rows for the incremental upsert; every tenth row's key
 *     exists in base (spread over the whole key range), the rest are new;
 *   part_<k>.csv: rows/parts rows each, disjoint keys, for parallel imports;
 *   req.csv: the small table behind the request-latency phase.
 */
#include "bench.h"

#include <duckdb.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define STAMP_VERSION "duckstore-bench-data 1"

const bench_col_t bench_cols[] = {
    {"id", "BIGINT"},         {"customer", NULL},  {"email", NULL},
    {"country", NULL},        {"city", NULL},      {"amount", "DECIMAL(12,2)"},
    {"quantity", "INTEGER"},  {"price", "DOUBLE"}, {"created_at", "TIMESTAMP"},
    {"is_active", "BOOLEAN"}, {"note", NULL},
};
const size_t bench_n_cols = sizeof(bench_cols) / sizeof(bench_cols[0]);

static const char *const first_names[] = {"Alice",    "Bob",    "Carol",   "David",  "Eva",   "Filip",
                                          "Gabriela", "Hana",   "Igor",    "Jana",   "Karel", "Lucie",
                                          "Martin",   "Nikola", "Ondrej",  "Petra",  "Radek", "Simona",
                                          "Tomas",    "Ursula", "Vojtech", "Zuzana", "Olga",  "Marek"};
static const char *const last_names[] = {"Novak",    "Svoboda", "Novotny", "Dvorak",  "Cerny",    "Prochazka",
                                         "Kucera",   "Vesely",  "Horak",   "Nemec",   "Marek",    "Pospisil",
                                         "Hajek",    "Jelinek", "Kral",    "Ruzicka", "Benes",    "Fiala",
                                         "Sedlacek", "Dolezal", "Zeman",   "Kolar",   "Navratil", "Cermak"};
static const char *const domains[] = {"example.com", "mail.cz", "corp.example.org", "post.eu", "inbox.net"};
static const char *const countries[] = {"CZ", "SK", "DE", "AT", "PL", "US", "GB", "FR", "IT", "ES",
                                        "NL", "BE", "SE", "NO", "DK", "FI", "IE", "PT", "HU", "CH"};
static const char *const cities[] = {"Praha",
                                     "Brno",
                                     "Ostrava",
                                     "Plzen",
                                     "Bratislava",
                                     "Berlin",
                                     "Wien",
                                     "Warszawa",
                                     "New York",
                                     "London",
                                     "Paris",
                                     "Roma",
                                     "Madrid",
                                     "Amsterdam",
                                     "Washington, D.C.",
                                     "Frankfurt am Main",
                                     "St. Gallen",
                                     "Lisboa",
                                     "Budapest",
                                     "Zurich",
                                     "Kobenhavn",
                                     "Helsinki",
                                     "Dublin",
                                     "Stockholm"};
static const char *const words[] = {
    "order",    "shipped", "customer",  "asked",    "for",     "invoice", "delivery", "delayed", "paid",    "refund",
    "priority", "express", "warehouse", "returned", "damaged", "gift",    "wrap",     "call",    "before",  "arrival",
    "discount", "loyal",   "new",       "account",  "check",   "address", "again",    "weekend", "morning", "note"};
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Appends s as a CSV field: enclosed in quotes (quotes doubled) only when it needs it. */
static char *csv_field(char *p, const char *s)
{
    if (!strpbrk(s, ",\"\n")) {
        size_t n = strlen(s);
        memcpy(p, s, n);
        return p + n;
    }
    *p++ = '"';
    for (; *s; s++) {
        if (*s == '"')
            *p++ = '"';
        *p++ = *s;
    }
    *p++ = '"';
    return p;
}

static char *lower_copy(char *p, const char *s)
{
    for (; *s; s++)
        *p++ = (char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s);
    return p;
}

/* One CSV line (with "\n") for row id at version; returns its length. */
static size_t make_row(char *out, int64_t id, uint64_t version)
{
    uint64_t r = mix((uint64_t)id * 0x100000001B3ull ^ (version << 56));
    char *p = out;
    p += sprintf(p, "%lld,", (long long)id);
    const char *fn = first_names[r % N_OF(first_names)];
    const char *ln = last_names[(r >> 8) % N_OF(last_names)];
    p += sprintf(p, "%s %s,", fn, ln);
    p = lower_copy(p, fn);
    *p++ = '.';
    p = lower_copy(p, ln);
    p += sprintf(p, "%u@%s,", (unsigned)((r >> 16) % 1000), domains[(r >> 26) % N_OF(domains)]);
    r = mix(r);
    p += sprintf(p, "%s,", countries[r % N_OF(countries)]);
    p = csv_field(p, cities[(r >> 8) % N_OF(cities)]);
    *p++ = ',';
    uint64_t cents = (r >> 16) % 10000000ull;
    p += sprintf(p, "%llu.%02llu,", (unsigned long long)(cents / 100), (unsigned long long)(cents % 100));
    r = mix(r);
    p += sprintf(p, "%u,", (unsigned)(1 + r % 500));
    uint64_t pr = (r >> 10) % 100000000ull;
    p += sprintf(p, "%llu.%04llu,", (unsigned long long)(pr / 10000), (unsigned long long)(pr % 10000));
    r = mix(r);
    time_t t = (time_t)(1546300800 + (int64_t)(r % 189216000ull)); /* 2019-01-01 + up to 6 years */
    struct tm tm;
    gmtime_r(&t, &tm);
    p += strftime(p, 32, "%Y-%m-%d %H:%M:%S,", &tm);
    p += sprintf(p, "%s,", (r >> 40) % 4 ? "true" : "false");
    r = mix(r);
    if (r % 100 >= 15) {
        char note[256], *q = note;
        int n = 2 + (int)((r >> 8) % 8);
        for (int i = 0; i < n; i++) {
            uint64_t w = mix(r + (uint64_t)i);
            if (i)
                *q++ = ' ';
            if (i == 1 && r % 100 < 20)
                q += sprintf(q, "\"%s\"", words[w % N_OF(words)]);
            else
                q += sprintf(q, "%s", words[w % N_OF(words)]);
            if (i == 2 && r % 100 >= 85)
                *q++ = ',';
        }
        *q = '\0';
        p = csv_field(p, note);
    }
    *p++ = '\n';
    return (size_t)(p - out);
}

static const char header[] = "id,customer,email,country,city,amount,quantity,price,created_at,is_active,note\n";

typedef int64_t (*id_fn)(int64_t j, void *ud);

static void write_csv(const char *path, int64_t n, uint64_t version, id_fn ids, void *ud)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        bench_die("cannot write %s", path);
    setvbuf(f, NULL, _IOFBF, 4 << 20);
    fputs(header, f);
    char line[1024];
    for (int64_t j = 0; j < n; j++) {
        size_t len = make_row(line, ids(j, ud), version);
        fwrite(line, 1, len, f);
    }
    if (fclose(f) != 0)
        bench_die("cannot write %s (disk full?)", path);
}

static int64_t id_base(int64_t j, void *ud)
{
    (void)ud;
    return j + 1;
}

typedef struct {
    int64_t rows, prime;
} inc_ids_t;

/* Every tenth row updates an existing key (k * prime mod rows is a bijection), the others are new. */
static int64_t id_inc(int64_t j, void *ud)
{
    inc_ids_t *c = ud;
    if (j % 10 == 0)
        return 1 + (int64_t)(((__int128)(j / 10) * c->prime) % c->rows);
    return c->rows + 1 + j;
}

static int64_t id_part(int64_t j, void *ud)
{
    return *(int64_t *)ud + j;
}

static int64_t gcd(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

typedef struct {
    const char *src, *dst;
} gz_job_t;

static void *gzip_file(void *arg)
{
    gz_job_t *j = arg;
    FILE *in = fopen(j->src, "rb");
    gzFile out = gzopen(j->dst, "wb6");
    if (!in || !out)
        bench_die("cannot gzip %s into %s", j->src, j->dst);
    gzbuffer(out, 1 << 20);
    size_t cap = 1 << 20, n;
    char *buf = bench_xmalloc(cap);
    while ((n = fread(buf, 1, cap, in)) > 0)
        if (gzwrite(out, buf, (unsigned)n) != (int)n)
            bench_die("cannot write %s", j->dst);
    free(buf);
    fclose(in);
    if (gzclose(out) != Z_OK)
        bench_die("cannot finish %s", j->dst);
    return NULL;
}

static void to_parquet(const char *csv, const char *parquet)
{
    duckdb_database db;
    duckdb_connection con;
    duckdb_result r;
    if (duckdb_open(NULL, &db) != DuckDBSuccess || duckdb_connect(db, &con) != DuckDBSuccess)
        bench_die("cannot open an in-memory DuckDB");
    char *sql = bench_fmt("COPY (SELECT * FROM read_csv('%s', header = true, columns = %s)) TO '%s' "
                          "(FORMAT parquet)",
                          csv, bench_csv_columns_spec(), parquet);
    if (duckdb_query(con, sql, &r) != DuckDBSuccess)
        bench_die("writing %s failed: %s", parquet, duckdb_result_error(&r));
    duckdb_destroy_result(&r);
    free(sql);
    duckdb_disconnect(&con);
    duckdb_close(&db);
}

void bench_data_prepare(bench_data_t *d, const char *dir, int64_t rows, int parts, int64_t req_rows)
{
    memset(d, 0, sizeof(*d));
    if (parts > 8)
        parts = 8;
    snprintf(d->dir, sizeof(d->dir), "%s", dir);
    d->rows = rows;
    d->parts = parts;
    d->part_rows = rows / parts;
    d->inc_rows = rows / 10 < 10 ? 10 : rows / 10;
    d->inc_overlap = (d->inc_rows + 9) / 10;
    d->req_rows = req_rows;
    snprintf(d->base_csv, sizeof(d->base_csv), "%s/base.csv", dir);
    snprintf(d->base_gz, sizeof(d->base_gz), "%s/base.csv.gz", dir);
    snprintf(d->base_parquet, sizeof(d->base_parquet), "%s/base.parquet", dir);
    snprintf(d->inc_csv, sizeof(d->inc_csv), "%s/inc.csv", dir);
    snprintf(d->req_csv, sizeof(d->req_csv), "%s/req.csv", dir);
    for (int k = 0; k < parts; k++)
        snprintf(d->part_csv[k], sizeof(d->part_csv[k]), "%s/part_%d.csv", dir, k);

    /* Two runs at once (make test in parallel) generate the same directory once: the second waits. */
    char lock_path[PATH_MAX + 16];
    snprintf(lock_path, sizeof(lock_path), "%s.lock", dir);
    int lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX) != 0)
        bench_die("cannot lock %s", lock_path);
    char stamp_path[PATH_MAX + 16];
    snprintf(stamp_path, sizeof(stamp_path), "%s/.stamp", dir);
    char *want =
        bench_fmt("%s rows=%lld parts=%d req=%lld\n", STAMP_VERSION, (long long)rows, parts, (long long)req_rows);
    char *have = bench_read_file(stamp_path);
    bool reuse = have && strcmp(have, want) == 0;
    free(have);
    if (reuse) {
        bench_note("reusing the generated data in %s", dir);
        free(want);
        close(lock_fd);
        return;
    }
    bench_rmtree(dir);
    bench_mkdirs(dir);
    double t0 = bench_now();
    bench_note("generating %lld rows of CSV into %s", (long long)rows, dir);
    write_csv(d->base_csv, rows, 1, id_base, NULL);
    gz_job_t gz = {d->base_csv, d->base_gz};
    pthread_t gz_thread;
    if (pthread_create(&gz_thread, NULL, gzip_file, &gz) != 0)
        bench_die("cannot start a thread");
    to_parquet(d->base_csv, d->base_parquet);
    inc_ids_t inc = {.rows = rows, .prime = 7919};
    while (gcd(inc.prime, rows) != 1)
        inc.prime += 2;
    write_csv(d->inc_csv, d->inc_rows, 2, id_inc, &inc);
    for (int k = 0; k < parts; k++) {
        int64_t first = 1000000000000ll + (int64_t)k * 1000000000ll;
        write_csv(d->part_csv[k], d->part_rows, 3, id_part, &first);
    }
    int64_t req_first = 5000000000000ll;
    write_csv(d->req_csv, req_rows, 4, id_part, &req_first);
    pthread_join(gz_thread, NULL);
    FILE *f = fopen(stamp_path, "w");
    if (!f || fputs(want, f) < 0 || fclose(f) != 0)
        bench_die("cannot write %s", stamp_path);
    free(want);
    close(lock_fd);
    bench_note("data ready in %.1f s", bench_now() - t0);
}
