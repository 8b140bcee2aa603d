/*
 * pg_sql.c - SQL text, statements, error mapping, names and types for the
 * PostgreSQL backend.
 *
 * Every identifier goes through pb_ident and every value is either a bound
 * parameter or goes through pb_literal; types come canonical from the core
 * and are mapped by a fixed table (pg_type_of), never passed through.
 *
 * Errors are mapped in one place (map_error): SQLSTATE classes to statuses,
 * the connection-failure classes additionally trip the circuit breaker.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pg.h"

/* ---- buffer ---- */

void pb_add(pgbuf_t *b, const char *s, size_t n)
{
    if (!s && n)
        b->oom = true; /* the text to append was itself never built */
    if (b->oom || n == 0)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->oom = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void pb_puts(pgbuf_t *b, const char *s)
{
    if (!s)
        b->oom = true;
    else
        pb_add(b, s, strlen(s));
}

void pb_add_buf(pgbuf_t *b, const pgbuf_t *src)
{
    if (src->oom)
        b->oom = true;
    else
        pb_add(b, src->data, src->len);
}

void pb_printf(pgbuf_t *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        pb_add(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    pb_add(b, big, (size_t)n);
    free(big);
}

static void quoted(pgbuf_t *b, const char *s, char q)
{
    pb_add(b, &q, 1);
    for (const char *p = s; *p; p++) {
        if (*p == q)
            pb_add(b, &q, 1);
        pb_add(b, p, 1);
    }
    pb_add(b, &q, 1);
}

void pb_ident(pgbuf_t *b, const char *name) { quoted(b, name ? name : "", '"'); }
void pb_literal(pgbuf_t *b, const char *s) { quoted(b, s ? s : "", '\''); }

void pb_qualified(pgbuf_t *b, const char *schema, const char *table)
{
    pb_ident(b, schema);
    pb_puts(b, ".");
    pb_ident(b, table);
}

const char *pb_cstr(const pgbuf_t *b)
{
    if (b->oom)
        return NULL;
    return b->data ? b->data : "";
}

const char *pb_text(const pgbuf_t *b) { return b->oom ? "(out of memory)" : b->data ? b->data : ""; }

void pb_reset(pgbuf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void pb_free(pgbuf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* ---- statements ---- */

const char *pg_last_sqlstate(const pg_use_t *u) { return u->sqlstate; }

/* Maps a failed result onto u->err; trips the breaker when the connection is gone. */
static ds_status_t map_error(pg_use_t *u, PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL) : NULL;
    char msg[768];
    snprintf(msg, sizeof(msg), "%s%s%s", primary ? primary : PQerrorMessage(u->c), detail ? " - " : "",
             detail ? detail : "");
    /* libpq explains lost connections over several lines; the first says it. */
    char *nl = strchr(msg, '\n');
    if (nl)
        *nl = '\0';
    size_t ml = strlen(msg);
    while (ml && (msg[ml - 1] == '\n' || msg[ml - 1] == ' '))
        msg[--ml] = '\0';
    snprintf(u->sqlstate, sizeof(u->sqlstate), "%s", state ? state : "");
    const ds_host_api_t *h = u->be->host;
    if (PQstatus(u->c) == CONNECTION_BAD || !state || strncmp(state, "08", 2) == 0 ||
        strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0) {
        pg_connection_lost(u, msg);
        return h->err_set(u->err, DS_UNAVAILABLE, "PostgreSQL backend \"%s\" is unavailable: %s", PG_BACKEND, msg);
    }
    ds_status_t st;
    int kbc = 0;
    if (strncmp(state, "53", 2) == 0 || strcmp(state, "57014") == 0)
        st = DS_UNAVAILABLE;
    else if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0)
        st = DS_CONFLICT;
    else if (strcmp(state, "42P01") == 0)
        st = DS_NOT_FOUND, kbc = DS_KBC_TABLE_NOT_FOUND;
    else if (strcmp(state, "3F000") == 0)
        st = DS_NOT_FOUND, kbc = DS_KBC_SCHEMA_NOT_FOUND;
    else if (strcmp(state, "42P07") == 0 || strcmp(state, "42P06") == 0 || strcmp(state, "42701") == 0 ||
             strcmp(state, "42710") == 0 || strcmp(state, "23505") == 0)
        st = DS_ALREADY_EXISTS;
    else if (strcmp(state, "42703") == 0)
        st = DS_INVALID_ARGUMENT, kbc = DS_KBC_COLUMN_NOT_FOUND;
    else if (strncmp(state, "22", 2) == 0 || strcmp(state, "42804") == 0 || strcmp(state, "42883") == 0)
        st = DS_INVALID_ARGUMENT, kbc = DS_KBC_DATA_TYPE_MISMATCH;
    else if (strncmp(state, "23", 2) == 0)
        st = DS_INVALID_ARGUMENT;
    else
        st = DS_INTERNAL;
    const char *column = r ? PQresultErrorField(r, PG_DIAG_COLUMN_NAME) : NULL;
    if (strcmp(state, "23502") == 0 && column) /* not_null_violation: say which column first, as DuckDB's does */
        h->err_set(u->err, st, "column \"%s\" is NOT NULL and a row has no value for it (PostgreSQL: %s)", column, msg);
    else
        h->err_set(u->err, st, "PostgreSQL: %s", msg);
    if (kbc)
        u->err->keboola_code = kbc;
    if (st == DS_INTERNAL)
        h->log(3, PG_BACKEND, "statement failed (SQLSTATE %s): %s", state, msg);
    return st;
}

ds_status_t pg_run(pg_use_t *u, PGresult **out, const char *sql, int n, const char *const *params)
{
    if (out)
        *out = NULL;
    if (!sql)
        return u->be->host->err_set(u->err, DS_UNAVAILABLE, "out of memory while building an SQL statement; nothing was run");
    if (!*sql)
        return u->be->host->err_set(u->err, DS_INTERNAL, "empty SQL statement");
    u->sqlstate[0] = '\0';
    PGresult *r = n ? PQexecParams(u->c, sql, n, NULL, params, NULL, NULL, 0) : PQexec(u->c, sql);
    ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        ds_status_t st = map_error(u, r);
        PQclear(r);
        return st;
    }
    if (out)
        *out = r;
    else
        PQclear(r);
    return DS_OK;
}

ds_status_t pg_exec(pg_use_t *u, const char *sql) { return pg_run(u, NULL, sql, 0, NULL); }

ds_status_t pg_query_int(pg_use_t *u, const char *sql, int n, const char *const *params, int64_t *out)
{
    PGresult *r;
    ds_status_t st = pg_run(u, &r, sql, n, params);
    if (st != DS_OK)
        return st;
    *out = PQntuples(r) > 0 ? pg_cell_int(r, 0, 0) : 0;
    PQclear(r);
    return DS_OK;
}

ds_status_t pg_check_value(pg_use_t *u, const char *what, const char *value, const char *pgtype)
{
    pgbuf_t q = {0};
    /* pgtype comes from the backend's type mapping, never client text. */
    pb_printf(&q, "SELECT CAST(" PG_META ".try_cast($1, CAST(NULL AS %s)) IS NULL AS integer)", pgtype);
    int64_t bad = 0;
    const char *params[] = {value};
    ds_status_t st = pg_query_int(u, pb_cstr(&q), 1, params, &bad);
    pb_free(&q);
    if (st == DS_OK && bad)
        st = u->be->host->err_set(u->err, DS_INVALID_ARGUMENT, "%s: \"%.100s\" is not a valid %s value", what, value,
                                  pgtype);
    return st;
}

ds_status_t pg_in_txn(pg_use_t *u, ds_status_t (*fn)(pg_use_t *, void *), void *ud)
{
    ds_status_t st = pg_exec(u, "BEGIN");
    if (st != DS_OK)
        return st;
    st = fn(u, ud);
    if (st == DS_OK)
        st = pg_exec(u, "COMMIT");
    if (st != DS_OK && !u->broken) {
        ds_err_t keep = *u->err;
        PGresult *r = PQexec(u->c, "ROLLBACK");
        PQclear(r);
        *u->err = keep;
    }
    return st;
}

char *pg_cell(pg_use_t *u, PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return NULL;
    return u->be->host->strdup(u->call, PQgetvalue(r, row, col));
}

int64_t pg_cell_int(PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* ---- names ---- */

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    return h;
}

/* A name that fits, or its first 46 bytes, sep and a 16-digit hash of the whole (63 bytes). */
static void fit_name(const char *full, char sep, char out[PG_NAME_MAX + 1])
{
    if (strlen(full) <= PG_NAME_MAX) {
        snprintf(out, PG_NAME_MAX + 1, "%s", full);
        return;
    }
    snprintf(out, PG_NAME_MAX + 1, "%.46s%c%016llx", full, sep, (unsigned long long)fnv1a(full));
}

void pg_phys_name(const char *logical, char out[PG_NAME_MAX + 1]) { fit_name(logical, '_', out); }

void pg_schema_name(const char *project, const char *bucket, char out[PG_NAME_MAX + 1])
{
    /* "/" and "~" occur in neither project ids nor bucket ids, so distinct pairs give distinct names. */
    char full[256];
    snprintf(full, sizeof(full), "%s/%s", project, bucket);
    fit_name(full, '~', out);
}

void pg_index_name(const char *phys_table, char out[PG_NAME_MAX + 1])
{
    snprintf(out, PG_NAME_MAX + 1, "ds_pk_%016llx", (unsigned long long)fnv1a(phys_table));
}

/* ---- types ---- */

static const struct {
    const char *canonical;
    const char *pg;
} type_map[] = {
    {"VARCHAR", "text"},
    {"INTEGER", "integer"},
    {"BIGINT", "bigint"},
    {"SMALLINT", "smallint"},
    {"TINYINT", "smallint"},
    {"HUGEINT", "numeric(39,0)"},
    {"UBIGINT", "numeric(20,0)"},
    {"UINTEGER", "bigint"},
    {"DOUBLE", "double precision"},
    {"FLOAT", "real"},
    {"BOOLEAN", "boolean"},
    {"DATE", "date"},
    {"TIMESTAMP", "timestamp"},
    {"TIMESTAMP WITH TIME ZONE", "timestamptz"},
    {"TIME", "time"},
    {"INTERVAL", "interval"},
    {"UUID", "uuid"},
    {"BLOB", "bytea"},
    {"JSON", "json"},
};

const char *pg_type_of(const char *canonical, char *buf, size_t bufsz)
{
    if (!canonical)
        return NULL;
    int p, s;
    if (sscanf(canonical, "DECIMAL(%d,%d)", &p, &s) == 2) {
        snprintf(buf, bufsz, "numeric(%d,%d)", p, s);
        return buf;
    }
    for (size_t i = 0; i < sizeof(type_map) / sizeof(type_map[0]); i++)
        if (strcmp(canonical, type_map[i].canonical) == 0) {
            snprintf(buf, bufsz, "%s", type_map[i].pg);
            return buf;
        }
    return NULL;
}

bool pg_type_numeric(const char *canonical)
{
    static const char *num[] = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                                "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL", NULL};
    for (int i = 0; canonical && num[i]; i++)
        if (strncmp(canonical, num[i], strlen(num[i])) == 0)
            return true;
    return false;
}

bool pg_type_is_string(const char *canonical) { return canonical && strcmp(canonical, "VARCHAR") == 0; }

void pg_text_expr(pgbuf_t *b, const char *prefix, const char *column, const char *canonical)
{
    if (canonical && strcmp(canonical, "BOOLEAN") == 0) {
        pb_printf(b, "CASE WHEN %s", prefix);
        pb_ident(b, column);
        pb_printf(b, " THEN 'true' WHEN NOT %s", prefix);
        pb_ident(b, column);
        pb_puts(b, " THEN 'false' END");
        return;
    }
    pb_printf(b, "CAST(%s", prefix);
    pb_ident(b, column);
    pb_puts(b, " AS text)");
}
