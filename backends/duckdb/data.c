/*
 * data.c - table data in the DuckDB backend: import, export, preview,
 * profile, delete rows and schema changes, with Keboola's semantics.
 *
 * DESIGN
 * Import runs in three phases on one connection:
 *   1. stage: the source (CSV/Parquet files through DuckDB's readers, or
 *      another table) is read into a connection-local temp table __ds_src,
 *      CSV values as text exactly as written (no NULL detection: the reader's
 *      NULL marker is a string no file contains). Reader errors (unterminated
 *      quotes, wrong column count, invalid UTF-8) are the user's: 400.
 *   2. check: column sets are compared (every missing and unexpected column
 *      named at once); every value bound for a typed column is test-cast, and
 *      the first that does not fit is reported by row and column; duplicate
 *      keys are checked for FAIL_ON_DUPLICATES.
 *   3. load: one transaction adds new columns (string tables), truncates
 *      (full load) or removes the rows being replaced (incremental upsert),
 *      inserts, collapses duplicate keys (collapse_keys), and updates the
 *      table's metadata. Any failure rolls back, so the table is exactly as
 *      before. A transaction conflict (which per-table write queues should
 *      prevent) is retried, never shown to users.
 * Imports into an existing table that need no staging (can_load_direct,
 * can_upsert_direct) first try reading the files with the table's types
 * directly; the staged path runs only when that fails, to name the problem.
 *
 * _timestamp: CURRENT_TIME stamps inserted/updated rows with the import's time;
 * NONE leaves it NULL; FROM_SOURCE takes the source's timestamp column. On
 * string tables an incremental re-import of an unchanged row leaves the row
 * (and its _timestamp) untouched; typed tables replace it.
 *
 * Every identifier goes through ds_buf_ident, every value through
 * ds_buf_literal; types come canonical from the core.
 */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "core/buf.h"
#include "core/numlit.h"
#include "core/status.h"
#include "core/types.h"
#include "ddb.h"
#include "internal.h"

/* The CSV reader's NULL string: no real file holds it, so every field reads as text. */
#define NO_NULL_MARKER "\x01__duckstore_no_null__\x02"
#define MAX_CONFLICT_RETRIES 6

static void qualified(ds_buf_t *b, const char *bucket, const char *table)
{
    ds_buf_ident(b, bucket);
    ds_buf_puts(b, ".");
    ds_buf_ident(b, table);
}

/* Index of column name in t (case-insensitive, as DuckDB resolves names), or -1. */
static int find_col(const ds_be_table_t *t, const char *name)
{
    for (size_t i = 0; i < t->n_columns; i++)
        if (strcasecmp(t->columns[i].name, name) == 0)
            return (int)i;
    return -1;
}

static bool is_numeric_type(const char *type)
{
    static const char *num[] = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                                "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL", NULL};
    for (int i = 0; num[i]; i++)
        if (strncmp(type, num[i], strlen(num[i])) == 0)
            return true;
    return false;
}

/*
 * Rewrites err as "<prefix>: <DuckDB's message>", keeping only the message's
 * first paragraph (DuckDB appends hints and reader settings) and removing the
 * server's data directory from it, so no host path reaches the user.
 */
static ds_status_t reword_err(use_t *u, ds_status_t st, int kbc, const char *prefix)
{
    char msg[DS_ERR_MSG_MAX];
    /* A failed engine or a full volume is not the input's fault: say what it is. */
    if (u->err->status == DS_UNAVAILABLE || u->err->status == DS_INSUFFICIENT_STORAGE)
        return u->err->status;
    snprintf(msg, sizeof(msg), "%s", u->err->message);
    char *cut = strstr(msg, "\n\nPossible fixes");
    if (cut)
        *cut = '\0';
    const char *dir = u->be->host->data_dir;
    size_t dl = strlen(dir);
    for (char *p = dl ? strstr(msg, dir) : NULL; p; p = strstr(p, dir))
        memmove(p, p + dl, strlen(p + dl) + 1);
    /* "/files/project_<id>/objects/<key>" -> "<key>": name the file as the user knows it. */
    for (char *p = strstr(msg, "/files/project_"); p; p = strstr(p, "/files/project_")) {
        char *obj = strstr(p, "/objects/");
        char *nl = strchr(p, '\n');
        if (!obj || (nl && nl < obj))
            break;
        memmove(p, obj + 9, strlen(obj + 9) + 1);
    }
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    return ds_err_setk(u->err, st, kbc, "%s: %s", prefix, msg);
}

/* Runs a query whose single cell is an integer. */
static ds_status_t query_int(use_t *u, const char *sql, int64_t *out)
{
    duckdb_result r;
    ds_status_t st = ds_ddb_run(u->conn, u->err, &r, sql, 0, NULL);
    if (st != DS_OK)
        return st;
    *out = duckdb_row_count(&r) ? ds_ddb_int(&r, 0, 0) : 0;
    duckdb_destroy_result(&r);
    return DS_OK;
}

/* ---- filters ---- */

/*
 * A changedSince/Until bound. The host gives every form a client may use as one
 * UTC text "YYYY-MM-DD HH:MM:SS.ffffff" (ds_where_t), so it is a plain literal.
 */
static void ts_literal(ds_buf_t *b, const char *v)
{
    ds_buf_puts(b, "CAST(");
    ds_buf_literal(b, v);
    ds_buf_puts(b, " AS TIMESTAMP)");
}

static const char *op_sql[] = {"=", "<>", ">", ">=", "<", "<="};

/* Appends one column reference, cast when data_type is given. */
/* qual: a table alias to qualify the column with (ORDER BY must not bind to a select alias), or NULL. */
static ds_status_t filter_operand(use_t *u, ds_buf_t *b, const char *qual, const char *column, const char *data_type,
                                  char *type_out)
{
    if (!data_type) {
        if (qual) {
        ds_buf_ident(b, qual);
        ds_buf_puts(b, ".");
    }
    ds_buf_ident(b, column);
        type_out[0] = '\0';
        return DS_OK;
    }
    ds_status_t st = ds_type_canonical(data_type, column, type_out, u->err);
    if (st != DS_OK)
        return st;
    ds_buf_puts(b, "TRY_CAST(");
    if (qual) {
        ds_buf_ident(b, qual);
        ds_buf_puts(b, ".");
    }
    ds_buf_ident(b, column);
    ds_buf_printf(b, " AS %s)", type_out);
    return DS_OK;
}

/*
 * Appends one filter value. cast is the filter's data_type (canonical, "" for
 * none); the value is compared in that type, or else in the column's type
 * col_type. Against a numeric type the value must be a number the type holds
 * exactly (core/numlit.h) and is cast to it from its exact text, so nothing
 * is rounded on the way; anything else stays a string literal, which DuckDB
 * compares in the column's type.
 */
static ds_status_t filter_value(use_t *u, ds_buf_t *b, const char *col, const char *v, const char *cast,
                                const char *col_type)
{
    const char *type = cast[0] ? cast : col_type;
    if (ds_num_is_numeric_type(type)) {
        char what[320], out[DS_NUM_LIT_MAX];
        const char *lit;
        snprintf(what, sizeof(what), "filter on \"%.256s\"", col);
        ds_status_t st = ds_num_for_type(v, type, what, out, &lit, u->err);
        if (st != DS_OK)
            return st;
        ds_buf_puts(b, "CAST(");
        ds_buf_literal(b, lit);
        ds_buf_printf(b, " AS %s)", type);
        return DS_OK;
    }
    if (!ds_type_is_string(type)) {
        /* Dates, times, booleans...: a value that does not convert is named here, not by DuckDB's error. */
        char what[320];
        snprintf(what, sizeof(what), "filter on \"%.256s\"", col);
        ds_status_t st = ddb_check_value(u, "where_filters", what, v, type);
        if (st != DS_OK)
            return st;
    }
    if (!cast[0]) {
        ds_buf_literal(b, v);
        return DS_OK;
    }
    ds_buf_puts(b, "CAST(");
    ds_buf_literal(b, v);
    ds_buf_printf(b, " AS %s)", cast);
    return DS_OK;
}

/*
 * Appends the WHERE clause for w over table t (nothing when w is empty).
 * Columns must exist; values are literals; casts are canonical types.
 */
static ds_status_t append_where(use_t *u, const ds_be_table_t *t, const ds_where_t *w, ds_buf_t *b)
{
    bool first = true;
#define AND() (ds_buf_puts(b, first ? " WHERE " : " AND "), first = false)
    if (!w)
        return DS_OK;
    for (size_t i = 0; i < w->n_filters; i++) {
        const ds_filter_t *f = &w->filters[i];
        int ci = f->column ? find_col(t, f->column) : -1;
        if (ci < 0 && !(f->column && strcasecmp(f->column, "_timestamp") == 0))
            return ds_err_setk(u->err, DS_INVALID_ARGUMENT, DS_KBC_COLUMN_NOT_FOUND,
                               "filter column \"%s\" is not a column of the table", f->column ? f->column : "");
        const char *col = ci >= 0 ? t->columns[ci].name : "_timestamp";
        if ((int)f->op < 0 || (int)f->op > DS_OP_LE)
            return ds_err_set(u->err, DS_INVALID_ARGUMENT, "filter on \"%s\": unknown operator", col);
        if (f->n_values == 0)
            return ds_err_set(u->err, DS_INVALID_ARGUMENT, "filter on \"%s\": at least one value is needed", col);
        if (f->n_values > 1 && f->op != DS_OP_EQ && f->op != DS_OP_NE)
            return ds_err_set(u->err, DS_INVALID_ARGUMENT,
                              "filter on \"%s\": operator %s takes exactly one value (several values work with eq and ne)",
                              col, op_sql[f->op]);
        char type[DS_TYPE_MAX];
        AND();
        ds_buf_puts(b, "(");
        ds_status_t st = filter_operand(u, b, NULL, col, f->data_type, type);
        if (st != DS_OK)
            return st;
        const char *col_type = ci >= 0 ? t->columns[ci].type : "TIMESTAMP";
        if (f->n_values > 1) {
            ds_buf_puts(b, f->op == DS_OP_EQ ? " IN (" : " NOT IN (");
            for (size_t k = 0; k < f->n_values; k++) {
                if (k)
                    ds_buf_puts(b, ", ");
                if ((st = filter_value(u, b, col, f->values[k], type, col_type)) != DS_OK)
                    return st;
            }
            ds_buf_puts(b, ")");
        } else {
            ds_buf_printf(b, " %s ", op_sql[f->op]);
            if ((st = filter_value(u, b, col, f->values[0], type, col_type)) != DS_OK)
                return st;
        }
        ds_buf_puts(b, ")");
    }
    if (w->changed_since) {
        AND();
        ds_buf_puts(b, "\"_timestamp\" >= ");
        ts_literal(b, w->changed_since);
    }
    if (w->changed_until) {
        AND();
        ds_buf_puts(b, "\"_timestamp\" < ");
        ts_literal(b, w->changed_until);
    }
    if (w->in_column) {
        int ci = find_col(t, w->in_column);
        if (ci < 0)
            return ds_err_setk(u->err, DS_INVALID_ARGUMENT, DS_KBC_COLUMN_NOT_FOUND,
                               "column \"%s\" is not a column of the table", w->in_column);
        if (!w->in_bucket || !w->in_table || !w->in_ref_column)
            return ds_err_set(u->err, DS_INVALID_ARGUMENT, "an IN filter needs the reference table and column");
        AND();
        ds_buf_ident(b, t->columns[ci].name);
        ds_buf_puts(b, w->in_negate ? " NOT IN (SELECT " : " IN (SELECT ");
        ds_buf_ident(b, w->in_ref_column);
        ds_buf_puts(b, " FROM ");
        qualified(b, w->in_bucket, w->in_table);
        ds_buf_puts(b, " WHERE ");
        ds_buf_ident(b, w->in_ref_column);
        ds_buf_puts(b, " IS NOT NULL)");
    }
#undef AND
    return DS_OK;
}

/* Appends the select list: the given columns (validated) or all table columns. */
static ds_status_t append_columns(use_t *u, const ds_be_table_t *t, const char *const *cols, size_t n, bool as_text,
                                  ds_buf_t *b, const char ***names_out, const char ***types_out, size_t *n_out,
                                  ds_be_call_t *call)
{
    const ds_host_api_t *host = u->be->host;
    size_t count = n ? n : t->n_columns;
    const char **names = host->alloc(call, sizeof(char *) * (count ? count : 1));
    const char **types = host->alloc(call, sizeof(char *) * (count ? count : 1));
    if (!names || !types)
        return ddb_oom(u->err);
    for (size_t i = 0; i < count; i++) {
        const char *name, *type;
        if (n) {
            int ci = find_col(t, cols[i]);
            if (ci >= 0) {
                name = t->columns[ci].name;
                type = t->columns[ci].type;
            } else if (strcasecmp(cols[i], "_timestamp") == 0) {
                name = "_timestamp";
                type = "TIMESTAMP";
            } else {
                return ds_err_setk(u->err, DS_INVALID_ARGUMENT, DS_KBC_COLUMN_NOT_FOUND,
                                   "column \"%s\" is not a column of the table", cols[i]);
            }
        } else {
            name = t->columns[i].name;
            type = t->columns[i].type;
        }
        if (i)
            ds_buf_puts(b, ", ");
        if (as_text) {
            ds_buf_puts(b, "CAST(");
            ds_buf_ident(b, name);
            ds_buf_puts(b, " AS VARCHAR) AS ");
        }
        ds_buf_ident(b, name);
        names[i] = name;
        types[i] = type;
    }
    if (names_out)
        *names_out = names;
    if (types_out)
        *types_out = types;
    if (n_out)
        *n_out = count;
    return DS_OK;
}

static ds_status_t append_order(use_t *u, const ds_be_table_t *t, const ds_order_t *order, size_t n, ds_buf_t *b)
{
    for (size_t i = 0; i < n; i++) {
        int ci = find_col(t, order[i].column ? order[i].column : "");
        bool ts = order[i].column && strcasecmp(order[i].column, "_timestamp") == 0;
        if (ci < 0 && !ts)
            return ds_err_setk(u->err, DS_INVALID_ARGUMENT, DS_KBC_COLUMN_NOT_FOUND,
                               "order column \"%s\" is not a column of the table",
                               order[i].column ? order[i].column : "");
        char type[DS_TYPE_MAX];
        ds_buf_puts(b, i ? ", " : " ORDER BY ");
        ds_status_t st = filter_operand(u, b, "__t", ci >= 0 ? t->columns[ci].name : "_timestamp", order[i].data_type, type);
        if (st != DS_OK)
            return st;
        ds_buf_puts(b, order[i].desc ? " DESC" : " ASC");
    }
    return DS_OK;
}

/* SELECT <columns> FROM bucket.table WHERE ... ORDER BY ... LIMIT ... */
static ds_status_t build_select(use_t *u, ds_be_call_t *call, const ds_be_table_t *t, const char *const *cols, size_t n,
                                bool as_text, const ds_order_t *order, size_t n_order, const ds_where_t *where,
                                int64_t limit, ds_buf_t *sql, const char ***names, const char ***types, size_t *n_out)
{
    ds_buf_puts(sql, "SELECT ");
    ds_status_t st = append_columns(u, t, cols, n, as_text, sql, names, types, n_out, call);
    if (st != DS_OK)
        return st;
    ds_buf_puts(sql, " FROM ");
    qualified(sql, t->bucket, t->name);
    ds_buf_puts(sql, " AS \"__t\"");
    if ((st = append_where(u, t, where, sql)) != DS_OK)
        return st;
    if ((st = append_order(u, t, order, n_order, sql)) != DS_OK)
        return st;
    if (limit > 0)
        ds_buf_printf(sql, " LIMIT %lld", (long long)limit);
    return DS_OK;
}

/* Marks the table changed (and imported) now. */
static ds_status_t touch_meta(use_t *u, const char *bucket, const char *table, bool imported, bool changed)
{
    if (!imported && !changed)
        return DS_OK;
    char now[32];
    snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
    ddb_meta_t m = {.counts = changed, .import_at = imported ? now : NULL, .change_at = changed ? now : NULL};
    return ddb_meta_write(u, bucket, table, &m);
}

/* ---- import: source description ---- */

typedef struct {
    use_t *u;
    ds_be_call_t *call;
    const char *bucket;
    const char *table;
    const ds_import_t *in;
    const char *const *paths;
    size_t n_paths;
    ds_be_table_t t; /* the destination as it is (or will be created) */
    bool exists;
    bool string_table;
    bool recreate;                /* create (missing) or replace the table */
    const char **src;             /* source column names (source order) */
    size_t n_src;
    const char **dst;             /* destination column per source column (NULL: skipped) */
    const char **add;             /* columns to add (string tables) */
    size_t n_add;
    const char *ts_src;           /* FROM_SOURCE: the source column with timestamps */
    const char **key;             /* dedup key (destination names) */
    size_t n_key;
    ds_buf_t reader;              /* FROM clause of the source */
    int64_t staged_rows;
    bool direct;                  /* the load reads the files (direct_rows), not the staged __ds_src */
    bool distinct_on;             /* the input repeats keys: load it again with DISTINCT ON (check_table_keys) */
    const char *keys_counted;     /* how count_keys counted the loaded keys (a timer's name), NULL: not counted */
    double keys_seconds;          /* the time count_keys took */
    ds_csv_opts_t csv;            /* the CSV options the reader uses (after any conversion) */
    const char **converted;       /* temporary files to remove when the import ends */
    size_t n_converted;
} imp_t;

/*
 * Rewrites an escaped, unenclosed CSV (escapedBy without enclosure, e.g.
 * a\,b) as standard CSV with every field enclosed, which DuckDB's reader
 * understands (its escape character works only inside enclosures). Escape
 * sequences follow the usual unenclosed-field convention: \n, \t, \r are the
 * control characters, any other escaped character stands for itself. The
 * first skip_lines raw lines are dropped here.
 */
static ds_status_t convert_escaped(use_t *u, const char *in_path, const char *out_path, const ds_csv_opts_t *o)
{
    gzFile in = gzopen(in_path, "rb");
    if (!in)
        return ds_err_setk(u->err, DS_NOT_FOUND, DS_KBC_FILE_NOT_FOUND, "cannot open the file to import");
    FILE *out = fopen(out_path, "wb");
    if (!out) {
        gzclose(in);
        return ds_err_set(u->err, DS_UNAVAILABLE, "cannot write a temporary file for the import");
    }
    gzbuffer(in, 1 << 17);
    char delim = o->delimiter[0], esc = o->escaped_by[0];
    int64_t skip = o->skip_lines;
    bool field_open = false, line_start = true;
    int c;
    while ((c = gzgetc(in)) != -1) {
        if (skip > 0) {
            if (c == '\n')
                skip--;
            continue;
        }
        if (!field_open) {
            fputc('"', out);
            field_open = true;
        }
        line_start = false;
        if (c == esc) {
            int n = gzgetc(in);
            if (n == -1)
                break;
            c = n == 'n' ? '\n' : n == 't' ? '\t' : n == 'r' ? '\r' : n;
            if (c == '"')
                fputc('"', out);
            fputc(c, out);
        } else if (c == delim) {
            fputs("\",\"", out);
        } else if (c == '\n' || c == '\r') {
            if (c == '\r') {
                int n = gzgetc(in);
                if (n != '\n' && n != -1)
                    gzungetc(n, in);
            }
            fputs("\"\n", out);
            field_open = false;
            line_start = true;
        } else {
            if (c == '"')
                fputc('"', out);
            fputc(c, out);
        }
    }
    if (field_open && !line_start)
        fputs("\"\n", out);
    gzclose(in);
    bool ok = fflush(out) == 0 && !ferror(out);
    fclose(out);
    return ok ? DS_OK : ds_err_set(u->err, DS_UNAVAILABLE, "cannot write a temporary file for the import");
}

/* Converts every escaped CSV source to standard CSV (see convert_escaped); m->paths then name the copies. */
static ds_status_t convert_sources(imp_t *m)
{
    const ds_host_api_t *host = m->u->be->host;
    const char **paths = host->alloc(m->call, sizeof(char *) * m->n_paths);
    if (!paths)
        return ddb_oom(m->u->err);
    m->converted = paths;
    for (size_t i = 0; i < m->n_paths; i++) {
        char *p = host->alloc(m->call, 4200);
        if (!p)
            return ddb_oom(m->u->err);
        snprintf(p, 4200, "%s/tmp/import-%p-%zu.csv", host->data_dir, (void *)m, i);
        paths[i] = p;
        m->n_converted = i + 1;
        ds_status_t st = convert_escaped(m->u, m->paths[i], p, &m->in->csv);
        if (st != DS_OK)
            return st;
    }
    m->paths = paths;
    snprintf(m->csv.delimiter, sizeof(m->csv.delimiter), ",");
    snprintf(m->csv.enclosure, sizeof(m->csv.enclosure), "\"");
    m->csv.escaped_by[0] = '\0';
    m->csv.skip_lines = 0;
    m->csv.gzip = false;
    return DS_OK;
}

static const char *dst_type(const imp_t *m, const char *name);

/*
 * Appends DuckDB's CSV reader over the source files. text: every column as
 * VARCHAR exactly as written (NULL never matches); typed: each loaded column
 * in its destination type, empty fields NULL except in VARCHAR columns, where
 * they stay empty strings (direct_rows).
 */
/* The longest CSV line an import accepts (documented in docs/api.md). */
#define CSV_MAX_LINE (32LL << 20)

/*
 * DuckDB's CSV reader allocates buffer_size (by default 16 x max_line_size)
 * per file whatever the file's size. The reader's memory is sized to the
 * files instead: no line is longer than its file, so a small file gets a
 * small line limit and buffer; large or compressed files (whose lines the
 * stored size does not bound) get the full line limit and a buffer of twice
 * it (the reader needs buffer_size >= max_line_size).
 */
static void csv_reader_sizes(const imp_t *m, long long *line, long long *buffer)
{
    long long biggest = 0;
    bool unbounded = m->csv.gzip;
    for (size_t i = 0; i < m->n_paths && !unbounded; i++) {
        struct stat sb;
        size_t n = strlen(m->paths[i]);
        if (stat(m->paths[i], &sb) != 0 || (n > 3 && strcmp(m->paths[i] + n - 3, ".gz") == 0))
            unbounded = true;
        else if (sb.st_size > biggest)
            biggest = sb.st_size;
    }
    long long l = unbounded ? CSV_MAX_LINE : biggest + 2;
    if (l < (64LL << 10))
        l = 64LL << 10;
    if (l > CSV_MAX_LINE)
        l = CSV_MAX_LINE;
    long long buf = 16 * l;
    if (buf > (64LL << 20))
        buf = 64LL << 20;
    if (buf < 2 * l)
        buf = 2 * l;
    *line = l;
    *buffer = buf;
}

static void append_csv_reader(const imp_t *m, ds_buf_t *b, bool typed)
{
    const ds_csv_opts_t *o = &m->csv;
    bool header = o->n_columns == 0;
    long long line, buffer;
    csv_reader_sizes(m, &line, &buffer);
    ds_buf_puts(b, "read_csv([");
    for (size_t i = 0; i < m->n_paths; i++) {
        if (i)
            ds_buf_puts(b, ", ");
        ds_buf_literal(b, m->paths[i]);
    }
    ds_buf_printf(b, "], auto_detect = false, %sstrict_mode = true, null_padding = false, max_line_size = %lld, "
                     "buffer_size = %lld, delim = ",
                  typed ? "" : "all_varchar = true, ", line, buffer);
    ds_buf_literal(b, o->delimiter[0] ? o->delimiter : ",");
    ds_buf_puts(b, ", quote = ");
    ds_buf_literal(b, o->enclosure);
    ds_buf_puts(b, ", escape = ");
    ds_buf_literal(b, o->escaped_by[0] ? o->escaped_by : o->enclosure);
    ds_buf_printf(b, ", header = %s, skip = %lld, compression = '%s', nullstr = ", header ? "true" : "false",
                  (long long)o->skip_lines, o->gzip ? "gzip" : "auto");
    ds_buf_literal(b, typed ? "" : NO_NULL_MARKER);
    if (typed) {
        ds_buf_puts(b, ", force_not_null = [");
        bool first = true;
        for (size_t i = 0; i < m->n_src; i++) {
            if (m->dst[i] && !ds_type_is_string(dst_type(m, m->dst[i])))
                continue;
            ds_buf_puts(b, first ? "" : ", ");
            ds_buf_literal(b, m->src[i]);
            first = false;
        }
        ds_buf_puts(b, "]");
    }
    ds_buf_puts(b, ", columns = {");
    for (size_t i = 0; i < m->n_src; i++) {
        if (i)
            ds_buf_puts(b, ", ");
        ds_buf_literal(b, m->src[i]);
        ds_buf_puts(b, ": ");
        ds_buf_literal(b, typed && m->dst[i] ? dst_type(m, m->dst[i]) : "VARCHAR");
    }
    ds_buf_puts(b, "})");
}

static ds_status_t describe_source(imp_t *m)
{
    use_t *u = m->u;
    const ds_import_t *in = m->in;
    const ds_host_api_t *host = u->be->host;
    ds_status_t st = DS_OK;
    if (in->src_table) {
        ds_be_table_t s = {0};
        if ((st = ddb_table_describe(u, m->call, in->src_bucket, in->src_table, &s)) != DS_OK)
            return st;
        if (in->n_mapping) {
            m->src = host->alloc(m->call, sizeof(char *) * in->n_mapping);
            if (!m->src)
                return ddb_oom(u->err);
            for (size_t i = 0; i < in->n_mapping; i++) {
                int ci = find_col(&s, in->src_columns[i]);
                if (ci < 0 && strcasecmp(in->src_columns[i], "_timestamp") != 0)
                    return ds_err_setk(u->err, DS_INVALID_ARGUMENT, DS_KBC_COLUMN_NOT_FOUND,
                                       "source column \"%s\" is not a column of %s.%s", in->src_columns[i],
                                       in->src_bucket, in->src_table);
                m->src[i] = ci >= 0 ? s.columns[ci].name : "_timestamp";
            }
            m->n_src = in->n_mapping;
        } else {
            m->src = host->alloc(m->call, sizeof(char *) * (s.n_columns ? s.n_columns : 1));
            if (!m->src)
                return ddb_oom(u->err);
            for (size_t i = 0; i < s.n_columns; i++)
                m->src[i] = s.columns[i].name;
            m->n_src = s.n_columns;
        }
        ds_buf_puts(&m->reader, "(SELECT * FROM ");
        qualified(&m->reader, in->src_bucket, in->src_table);
        if ((st = append_where(u, &s, &in->src_where, &m->reader)) != DS_OK)
            return st;
        if (in->src_limit > 0)
            ds_buf_printf(&m->reader, " LIMIT %lld", (long long)in->src_limit);
        ds_buf_puts(&m->reader, ")");
        return DS_OK;
    }
    if (m->n_paths == 0)
        return ds_err_setk(u->err, DS_NOT_FOUND, DS_KBC_FILE_NOT_FOUND, "the file to import holds no data files");
    if (in->format == DS_FORMAT_PARQUET) {
        ds_buf_puts(&m->reader, "read_parquet([");
        for (size_t i = 0; i < m->n_paths; i++) {
            if (i)
                ds_buf_puts(&m->reader, ", ");
            ds_buf_literal(&m->reader, m->paths[i]);
        }
        ds_buf_puts(&m->reader, "])");
        ds_buf_t sql = {0};
        duckdb_result r;
        ds_buf_puts(&sql, "DESCRIBE SELECT * FROM ");
        ds_buf_append_buf(&sql, &m->reader);
        st = ds_ddb_run(u->conn, u->err, &r, ds_buf_cstr(&sql), 0, NULL);
        ds_buf_free(&sql);
        if (st != DS_OK)
            return reword_err(u, DS_INVALID_ARGUMENT, DS_KBC_INVALID_SOURCE_DATA,
                              "the file to import (format \"parquet\") is not a readable Parquet file");
        idx_t n = duckdb_row_count(&r);
        m->src = host->alloc(m->call, sizeof(char *) * (n ? n : 1));
        for (idx_t i = 0; m->src && i < n; i++) {
            char *name = ds_ddb_cell(&r, 0, i);
            m->src[i] = host->strdup(m->call, name ? name : "");
            free(name);
            if (!m->src[i])
                m->src = NULL;
        }
        m->n_src = n;
        duckdb_destroy_result(&r);
        if (!m->src)
            return ddb_oom(u->err);
        return DS_OK;
    }
    m->csv = in->csv;
    if (m->csv.escaped_by[0] && m->csv.escaped_by[0] != m->csv.enclosure[0] && (st = convert_sources(m)) != DS_OK)
        return st;
    const ds_csv_opts_t *o = &m->csv;
    if (o->n_columns) {
        m->src = o->columns;
        m->n_src = o->n_columns;
    } else if ((st = u->be->host->csv_header(m->call, m->paths[0], o, &m->src, &m->n_src)) != DS_OK) {
        return st;
    }
    for (size_t i = 0; i < m->n_src; i++)
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(m->src[i], m->src[j]) == 0)
                return ds_err_setk(u->err, DS_INVALID_ARGUMENT, 4102, "the file names column \"%s\" twice", m->src[i]);
    append_csv_reader(m, &m->reader, false);
    return DS_OK;
}

static bool in_list(const char *const *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(list[i], name) == 0)
            return true;
    return false;
}

/* Matches source columns to the destination; names every missing and unexpected column at once. */
static ds_status_t match_columns(imp_t *m)
{
    use_t *u = m->u;
    const ds_import_t *in = m->in;
    const ds_host_api_t *host = u->be->host;
    const char *ts_name = in->timestamp_column && *in->timestamp_column ? in->timestamp_column : "_timestamp";
    m->dst = host->alloc(m->call, sizeof(char *) * (m->n_src ? m->n_src : 1));
    m->add = host->alloc(m->call, sizeof(char *) * (m->n_src ? m->n_src : 1));
    if (!m->dst || !m->add)
        return ddb_oom(u->err);
    ds_buf_t missing = {0}, unexpected = {0};
    ds_status_t st = DS_OK;
    for (size_t i = 0; i < m->n_src; i++) {
        const char *want = in->src_table && in->n_mapping && in->dst_columns ? in->dst_columns[i] : m->src[i];
        if (in->timestamp_mode == DS_TS_FROM_SOURCE && strcasecmp(m->src[i], ts_name) == 0) {
            m->ts_src = m->src[i];
            continue;
        }
        if (strcasecmp(want, "_timestamp") == 0)
            continue; /* the system column is never loaded as data */
        if ((st = ds_ident_check_name(want, "column", u->err)) != DS_OK) {
            ds_buf_free(&missing);
            ds_buf_free(&unexpected);
            return ds_err_setk(u->err, DS_INVALID_ARGUMENT, 4101, "the source has an invalid column name \"%s\"", want);
        }
        for (size_t j = 0; j < i; j++)
            if (m->dst[j] && strcasecmp(m->dst[j], want) == 0) {
                ds_buf_free(&missing);
                ds_buf_free(&unexpected);
                return ds_err_setk(u->err, DS_INVALID_ARGUMENT, 4102, "column \"%s\" appears twice in the source", want);
            }
        int ci = m->recreate ? -1 : find_col(&m->t, want);
        if (ci >= 0) {
            m->dst[i] = m->t.columns[ci].name;
        } else if (m->recreate) {
            m->dst[i] = want;
        } else {
            m->dst[i] = want;
            m->add[m->n_add++] = want;
            ds_buf_printf(&unexpected, "%s\"%s\"", unexpected.len ? ", " : "", want);
        }
    }
    if (in->timestamp_mode == DS_TS_FROM_SOURCE && !m->ts_src) {
        ds_buf_free(&missing);
        ds_buf_free(&unexpected);
        return ds_err_set(u->err, DS_INVALID_ARGUMENT,
                          "timestamp mode from_source needs a \"%s\" column in the source", ts_name);
    }
    if (!m->recreate)
        for (size_t c = 0; c < m->t.n_columns; c++) {
            bool found = false;
            for (size_t i = 0; i < m->n_src && !found; i++)
                found = m->dst[i] && strcasecmp(m->dst[i], m->t.columns[c].name) == 0;
            if (!found)
                ds_buf_printf(&missing, "%s\"%s\"", missing.len ? ", " : "", m->t.columns[c].name);
        }
    if (missing.len || (unexpected.len && !m->string_table)) {
        ds_buf_t msg = {0};
        if (missing.len)
            ds_buf_printf(&msg, "Some columns are missing in the source: %s", ds_buf_text(&missing));
        if (unexpected.len && !m->string_table)
            ds_buf_printf(&msg, "%sthe source has columns the typed table %s.%s does not: %s", msg.len ? "; " : "",
                          m->bucket, m->table, ds_buf_text(&unexpected));
        st = ds_err_setk(u->err, DS_INVALID_ARGUMENT, DS_KBC_COLUMNS_MISMATCH, "%s", ds_buf_text(&msg));
        ds_buf_free(&msg);
    }
    ds_buf_free(&missing);
    ds_buf_free(&unexpected);
    return st;
}

/* The destination type of destination column name ("VARCHAR" for new columns). */
static const char *dst_type(const imp_t *m, const char *name)
{
    int ci = m->recreate ? -1 : find_col(&m->t, name);
    return ci >= 0 ? m->t.columns[ci].type : "VARCHAR";
}

/* Stages the source into __ds_src: one VARCHAR-or-native column per loaded column, plus __ts. */
static ds_status_t stage(imp_t *m)
{
    use_t *u = m->u;
    const ds_import_t *in = m->in;
    ds_buf_t sql = {0};
    bool text_source = !in->src_table && in->format == DS_FORMAT_CSV;
    ds_buf_puts(&sql, "CREATE OR REPLACE TEMP TABLE __ds_src AS SELECT ");
    bool first = true;
    for (size_t i = 0; i < m->n_src; i++) {
        if (!m->dst[i])
            continue;
        if (!first)
            ds_buf_puts(&sql, ", ");
        first = false;
        /* v: the source value; text sources get Keboola's null conversions. */
        ds_buf_t v = {0};
        if (text_source || ds_type_is_string(dst_type(m, m->dst[i]))) {
            ds_buf_puts(&v, "CAST(");
            ds_buf_ident(&v, m->src[i]);
            ds_buf_puts(&v, " AS VARCHAR)");
        } else {
            ds_buf_ident(&v, m->src[i]);
        }
        bool as_null = in->n_import_as_null > 0 && (text_source || ds_type_is_string(dst_type(m, m->dst[i])));
        bool empty_null = in_list(in->convert_empty_to_null, in->n_convert_empty_to_null, m->dst[i]) ||
                          (text_source && !ds_type_is_string(dst_type(m, m->dst[i])));
        if (as_null) {
            ds_buf_puts(&sql, "CASE WHEN ");
            ds_buf_append_buf(&sql, &v);
            ds_buf_puts(&sql, " IN (");
            for (size_t k = 0; k < in->n_import_as_null; k++) {
                if (k)
                    ds_buf_puts(&sql, ", ");
                ds_buf_literal(&sql, in->import_as_null[k]);
            }
            ds_buf_puts(&sql, ") THEN NULL ELSE ");
        }
        if (empty_null && (text_source || ds_type_is_string(dst_type(m, m->dst[i])))) {
            ds_buf_puts(&sql, "NULLIF(");
            ds_buf_append_buf(&sql, &v);
            ds_buf_puts(&sql, ", '')");
        } else {
            ds_buf_append_buf(&sql, &v);
        }
        if (as_null)
            ds_buf_puts(&sql, " END");
        ds_buf_free(&v);
        ds_buf_puts(&sql, " AS ");
        ds_buf_ident(&sql, m->dst[i]);
    }
    if (m->ts_src) {
        ds_buf_puts(&sql, first ? "" : ", ");
        ds_buf_ident(&sql, m->ts_src);
        ds_buf_puts(&sql, " AS __ts");
        first = false;
    }
    if (first)
        ds_buf_puts(&sql, "1 AS __none");
    ds_buf_puts(&sql, " FROM ");
    ds_buf_append_buf(&sql, &m->reader);
    ds_status_t st = ds_ddb_exec(u->conn, u->err, ds_buf_cstr(&sql));
    ds_buf_free(&sql);
    if (st != DS_OK) {
        if (st == DS_NOT_FOUND || st == DS_INVALID_ARGUMENT || st == DS_INTERNAL)
            return reword_err(u, DS_INVALID_ARGUMENT, DS_KBC_INVALID_SOURCE_DATA, "cannot read the source");
        return st;
    }
    return query_int(u, "SELECT count(*) FROM __ds_src", &m->staged_rows);
}

/* Appends the test "value v of column col does not cast to type". */
static void bad_cast(ds_buf_t *b, const char *col, const char *type)
{
    ds_buf_ident(b, col);
    ds_buf_puts(b, " IS NOT NULL AND TRY_CAST(");
    ds_buf_ident(b, col);
    ds_buf_printf(b, " AS %s) IS NULL", type);
}

/*
 * Every value bound for a typed column must cast; the first that does not is
 * named by row and column. One scan tests all columns; only a failing column
 * is scanned again to find its first bad row.
 */
static ds_status_t check_types(imp_t *m)
{
    use_t *u = m->u;
    ds_buf_t sql = {0};
    duckdb_result r;
    size_t n_typed = 0;
    const char **cols = u->be->host->alloc(m->call, sizeof(char *) * (m->n_src + 1));
    if (!cols)
        return ddb_oom(u->err);
    ds_buf_puts(&sql, "SELECT ");
    for (size_t i = 0; i < m->n_src; i++) {
        if (!m->dst[i] || ds_type_is_string(dst_type(m, m->dst[i])))
            continue;
        ds_buf_puts(&sql, n_typed ? ", " : "");
        ds_buf_puts(&sql, "bool_or(");
        bad_cast(&sql, m->dst[i], dst_type(m, m->dst[i]));
        ds_buf_puts(&sql, ")");
        cols[n_typed++] = m->dst[i];
    }
    if (m->ts_src) {
        ds_buf_puts(&sql, n_typed ? ", " : "");
        ds_buf_puts(&sql, "bool_or(__ts IS NOT NULL AND TRY_CAST(__ts AS TIMESTAMP) IS NULL)");
        cols[n_typed++] = "__ts";
    }
    ds_buf_puts(&sql, " FROM __ds_src");
    ds_status_t st = n_typed ? ds_ddb_run(u->conn, u->err, &r, ds_buf_cstr(&sql), 0, NULL) : DS_OK;
    ds_buf_free(&sql);
    if (st != DS_OK || !n_typed)
        return st;
    const char *bad = NULL;
    for (size_t k = 0; k < n_typed && !bad; k++)
        if (!duckdb_value_is_null(&r, (idx_t)k, 0) && duckdb_value_boolean(&r, (idx_t)k, 0))
            bad = cols[k];
    duckdb_destroy_result(&r);
    if (!bad)
        return DS_OK;
    const char *type = strcmp(bad, "__ts") == 0 ? "TIMESTAMP" : dst_type(m, bad);
    ds_buf_puts(&sql, "SELECT rn, CAST(v AS VARCHAR) FROM (SELECT row_number() OVER () AS rn, ");
    ds_buf_ident(&sql, bad);
    ds_buf_puts(&sql, " AS v FROM __ds_src) WHERE ");
    bad_cast(&sql, "v", type);
    ds_buf_puts(&sql, " ORDER BY rn LIMIT 1");
    st = ds_ddb_run(u->conn, u->err, &r, ds_buf_cstr(&sql), 0, NULL);
    ds_buf_free(&sql);
    if (st != DS_OK)
        return st;
    int64_t row = duckdb_row_count(&r) ? ds_ddb_int(&r, 0, 0) : 0;
    char *val = duckdb_row_count(&r) ? ds_ddb_cell(&r, 1, 0) : NULL;
    st = ds_err_setk(u->err, DS_INVALID_ARGUMENT, DS_KBC_DATA_TYPE_MISMATCH,
                     "row %lld, column \"%s\": value \"%.200s\" does not fit type %s", (long long)row,
                     strcmp(bad, "__ts") == 0 ? (m->ts_src ? m->ts_src : "_timestamp") : bad, val ? val : "", type);
    free(val);
    duckdb_destroy_result(&r);
    return st;
}

/* The dedup key: the given columns or the table's primary key (destination names). */
static ds_status_t resolve_key(imp_t *m)
{
    const ds_import_t *in = m->in;
    const char *const *cols = in->n_dedup_columns ? in->dedup_columns : m->t.primary_key;
    size_t n = in->n_dedup_columns ? in->n_dedup_columns : m->t.n_primary_key;
    m->key = m->u->be->host->alloc(m->call, sizeof(char *) * (n ? n : 1));
    if (!m->key)
        return ddb_oom(m->u->err);
    for (size_t k = 0; k < n; k++) {
        const char *found = NULL;
        for (size_t i = 0; i < m->n_src && !found; i++)
            if (m->dst[i] && strcasecmp(m->dst[i], cols[k]) == 0)
                found = m->dst[i];
        if (!found)
            return ds_err_setk(m->u->err, DS_INVALID_ARGUMENT, DS_KBC_COLUMN_NOT_FOUND,
                               "key column \"%s\" is not among the imported columns", cols[k]);
        m->key[k] = found;
    }
    m->n_key = n;
    return DS_OK;
}

/* Appends "a.k1 IS NOT DISTINCT FROM b.k1 AND ..." over the key. */
static void key_join(const imp_t *m, ds_buf_t *b, const char *left, const char *right)
{
    for (size_t k = 0; k < m->n_key; k++) {
        ds_buf_printf(b, "%s%s.", k ? " AND " : "", left);
        ds_buf_ident(b, m->key[k]);
        ds_buf_printf(b, " IS NOT DISTINCT FROM %s.", right);
        ds_buf_ident(b, m->key[k]);
    }
}

/* Appends the key as a readable "col=value" list from a result row, for messages. */
static void describe_key(const imp_t *m, duckdb_result *r, ds_buf_t *b)
{
    for (size_t k = 0; k < m->n_key; k++) {
        char *v = ds_ddb_cell(r, (idx_t)k, 0);
        ds_buf_printf(b, "%s%s=%s", k ? ", " : "", m->key[k], v ? v : "NULL");
        free(v);
    }
}

/* FAIL_ON_DUPLICATES: no key twice in the input, nor (incremental) already in the table. */
static ds_status_t check_duplicates(imp_t *m)
{
    use_t *u = m->u;
    ds_buf_t sql = {0};
    duckdb_result r;
    ds_buf_puts(&sql, "SELECT ");
    for (size_t k = 0; k < m->n_key; k++) {
        if (k)
            ds_buf_puts(&sql, ", ");
        ds_buf_ident(&sql, m->key[k]);
    }
    ds_buf_puts(&sql, " FROM __ds_src GROUP BY ALL HAVING count(*) > 1 LIMIT 1");
    ds_status_t st = ds_ddb_run(u->conn, u->err, &r, ds_buf_cstr(&sql), 0, NULL);
    ds_buf_free(&sql);
    if (st != DS_OK)
        return st;
    if (duckdb_row_count(&r) > 0) {
        ds_buf_t key = {0};
        describe_key(m, &r, &key);
        st = ds_err_set(u->err, DS_INVALID_ARGUMENT, "duplicate primary key in the source (%s) and dedup type is fail_on_duplicates",
                        ds_buf_text(&key));
        ds_buf_free(&key);
    }
    duckdb_destroy_result(&r);
    if (st != DS_OK || !m->in->incremental || !m->exists || m->recreate)
        return st;
    ds_buf_puts(&sql, "SELECT ");
    for (size_t k = 0; k < m->n_key; k++) {
        if (k)
            ds_buf_puts(&sql, ", ");
        ds_buf_puts(&sql, "s.");
        ds_buf_ident(&sql, m->key[k]);
    }
    ds_buf_puts(&sql, " FROM __ds_src s WHERE EXISTS (SELECT 1 FROM ");
    qualified(&sql, m->bucket, m->table);
    ds_buf_puts(&sql, " t WHERE ");
    for (size_t k = 0; k < m->n_key; k++) {
        ds_buf_puts(&sql, k ? " AND t." : "t.");
        ds_buf_ident(&sql, m->key[k]);
        ds_buf_printf(&sql, " = TRY_CAST(s.");
        ds_buf_ident(&sql, m->key[k]);
        ds_buf_printf(&sql, " AS %s)", dst_type(m, m->key[k]));
    }
    ds_buf_puts(&sql, ") LIMIT 1");
    st = ds_ddb_run(u->conn, u->err, &r, ds_buf_cstr(&sql), 0, NULL);
    ds_buf_free(&sql);
    if (st != DS_OK)
        return st;
    if (duckdb_row_count(&r) > 0) {
        ds_buf_t key = {0};
        describe_key(m, &r, &key);
        st = ds_err_set(u->err, DS_INVALID_ARGUMENT,
                        "primary key (%s) already exists in the table and dedup type is fail_on_duplicates",
                        ds_buf_text(&key));
        ds_buf_free(&key);
    }
    duckdb_destroy_result(&r);
    return st;
}

/* Appends the load query: the typed input rows plus their _timestamp (duplicate keys stay; see collapse_keys). */
static void direct_rows(const imp_t *m, ds_buf_t *b);
static void distinct_on(const imp_t *m, ds_buf_t *b, bool from_files);

static void input_query(const imp_t *m, ds_buf_t *b)
{
    ds_buf_puts(b, "SELECT ");
    if (m->direct) {
        direct_rows(m, b);
        return;
    }
    distinct_on(m, b, false);
    for (size_t i = 0; i < m->n_src; i++) {
        if (!m->dst[i])
            continue;
        ds_buf_printf(b, "CAST(");
        ds_buf_ident(b, m->dst[i]);
        ds_buf_printf(b, " AS %s) AS ", dst_type(m, m->dst[i]));
        ds_buf_ident(b, m->dst[i]);
        ds_buf_puts(b, ", ");
    }
    switch (m->in->timestamp_mode) {
    case DS_TS_NONE:
        ds_buf_puts(b, "CAST(NULL AS TIMESTAMP)");
        break;
    case DS_TS_FROM_SOURCE:
        ds_buf_puts(b, "CAST(__ts AS TIMESTAMP)");
        break;
    default:
        ds_buf_puts(b, "CAST(get_current_timestamp() AT TIME ZONE 'UTC' AS TIMESTAMP)");
        break;
    }
    ds_buf_puts(b, " AS \"_timestamp\" FROM __ds_src");
}

/* INSERT INTO dest (cols, _timestamp) SELECT ... FROM <from> [WHERE NOT EXISTS same key]. */
/* "INSERT INTO dest (loaded columns..., _timestamp) SELECT ": the head of every load. */
static void insert_head(const imp_t *m, ds_buf_t *b)
{
    ds_buf_puts(b, "INSERT INTO ");
    qualified(b, m->bucket, m->table);
    ds_buf_puts(b, " (");
    for (size_t i = 0; i < m->n_src; i++) {
        if (!m->dst[i])
            continue;
        ds_buf_ident(b, m->dst[i]);
        ds_buf_puts(b, ", ");
    }
    ds_buf_puts(b, "\"_timestamp\") SELECT ");
}

static void insert_sql(const imp_t *m, ds_buf_t *b, const char *from, bool skip_existing)
{
    insert_head(m, b);
    for (size_t i = 0; i < m->n_src; i++) {
        if (!m->dst[i])
            continue;
        ds_buf_puts(b, "n.");
        ds_buf_ident(b, m->dst[i]);
        ds_buf_puts(b, ", ");
    }
    ds_buf_puts(b, "n.\"_timestamp\" FROM ");
    ds_buf_puts(b, from); /* NULL (a source never built) fails b */
    ds_buf_puts(b, " n");
    if (skip_existing) {
        ds_buf_puts(b, " WHERE NOT EXISTS (SELECT 1 FROM ");
        qualified(b, m->bucket, m->table);
        ds_buf_puts(b, " t WHERE ");
        key_join(m, b, "t", "n");
        ds_buf_puts(b, ")");
    }
}

/* The source column that loads into destination column dst. */
static const char *src_of(const imp_t *m, const char *dst)
{
    for (size_t i = 0; i < m->n_src; i++)
        if (m->dst[i] && strcasecmp(m->dst[i], dst) == 0)
            return m->src[i];
    return dst;
}

/* Appends "k1, k2, ..." over the key: as the table names its columns, or from_files, as the files do. */
static void key_list(const imp_t *m, ds_buf_t *b, bool from_files)
{
    for (size_t k = 0; k < m->n_key; k++) {
        ds_buf_puts(b, k ? ", " : "");
        ds_buf_ident(b, from_files ? src_of(m, m->key[k]) : m->key[k]);
    }
}

/*
 * Appends "DISTINCT ON (k1, ...) " when the load keeps one row per key
 * (m->distinct_on, see check_table_keys): over the key's columns as the
 * staged rows name them, or from_files, as the files name them.
 */
static void distinct_on(const imp_t *m, ds_buf_t *b, bool from_files)
{
    if (!m->distinct_on)
        return;
    ds_buf_puts(b, "DISTINCT ON (");
    key_list(m, b, from_files);
    ds_buf_puts(b, ") ");
}

/*
 * count_int_keys serves loads of at least KEY_BITMAP_MIN_ROWS rows (below,
 * the GROUP BY takes about a millisecond, less than two statements), over a
 * range of at most KEY_BITMAP_BITS_PER_ROW bits per row and
 * KEY_BITMAP_MAX_BITS in all: 2^26 bits, 8 MiB per DuckDB thread, which
 * bitstring_agg allocates outside DuckDB's memory limit (it cannot spill).
 */
#define KEY_BITMAP_MIN_ROWS 100000
#define KEY_BITMAP_BITS_PER_ROW 64
#define KEY_BITMAP_MAX_BITS ((int64_t)1 << 26)

/*
 * The distinct values of a one-column integer key, counted in a bitmap when
 * they fall in a narrow range: min, max and count first (one cheap pass),
 * then bitstring_agg sets one bit per value between them. For 7M loaded rows
 * that took 0.13 s where the GROUP BY below took 2.5 s (DuckDB alone); the
 * answer is the same, exactly. *done = false when the key does not qualify
 * (not an integer, NULLs in it, a range too wide) and count_keys groups.
 * from holds exactly rows rows (the callers' own counts): count(key) == rows
 * is what proves the key has no NULL.
 */
static ds_status_t count_int_keys(imp_t *m, const char *from, int64_t rows, int64_t *n, bool *done)
{
    static const char *const ints[] = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"};
    const char *type = m->n_key == 1 ? dst_type(m, m->key[0]) : "";
    bool is_int = false;
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
        is_int = is_int || strcasecmp(type, ints[i]) == 0;
    *done = false;
    if (!is_int || rows < KEY_BITMAP_MIN_ROWS)
        return DS_OK;
    ds_buf_t key = {0}, sql = {0};
    duckdb_result r;
    ds_buf_puts(&key, "CAST(");
    ds_buf_ident(&key, m->key[0]);
    ds_buf_puts(&key, " AS BIGINT)"); /* the range of a narrower type may not fit it (SMALLINT's is 65,536) */
    const char *k = ds_buf_cstr(&key);
    ds_buf_printf(&sql, "SELECT min(%s), max(%s), count(%s) FROM %s", k, k, k, from);
    ds_status_t st = ds_buf_failed(&sql) ? ddb_oom(m->u->err)
                                         : ds_ddb_run(m->u->conn, m->u->err, &r, ds_buf_cstr(&sql), 0, NULL);
    if (st == DS_OK) {
        int64_t lo = ds_ddb_int(&r, 0, 0), hi = ds_ddb_int(&r, 1, 0), valued = ds_ddb_int(&r, 2, 0);
        duckdb_destroy_result(&r);
        /* span + 1 bits (span itself cannot overflow: BIGINT's whole range is 2^64 - 1) */
        uint64_t span = (uint64_t)hi - (uint64_t)lo, max_bits = (uint64_t)KEY_BITMAP_BITS_PER_ROW * (uint64_t)rows;
        if (valued == rows && hi >= lo && span < (uint64_t)KEY_BITMAP_MAX_BITS && span < max_bits) {
            ds_buf_reset(&sql);
            ds_buf_printf(&sql,
                          "SELECT bit_count(bitstring_agg(%s, CAST(%lld AS BIGINT), CAST(%lld AS BIGINT))) FROM %s", k,
                          (long long)lo, (long long)hi, from);
            st = ds_buf_failed(&sql) ? ddb_oom(m->u->err) : query_int(m->u, ds_buf_cstr(&sql), n);
            *done = st == DS_OK;
        }
    }
    ds_buf_free(&key);
    ds_buf_free(&sql);
    return st;
}

/* *n = the distinct keys of the rows of rel (those matching where, when given), rows of them. */
static ds_status_t count_keys(imp_t *m, const char *rel, const char *where, int64_t rows, int64_t *n)
{
    ds_buf_t from = {0}, sql = {0};
    bool done = false;
    double t0 = ddb_mono_s();
    ds_buf_printf(&from, "%s%s%s", rel, where ? " WHERE " : "", where ? where : "");
    ds_status_t st =
        ds_buf_failed(&from) ? ddb_oom(m->u->err) : count_int_keys(m, ds_buf_cstr(&from), rows, n, &done);
    if (st == DS_OK && !done) {
        ds_buf_printf(&sql, "SELECT count(*) FROM (SELECT 1 FROM %s GROUP BY ", ds_buf_cstr(&from));
        key_list(m, &sql, false);
        ds_buf_puts(&sql, ")");
        st = ds_buf_failed(&sql) ? ddb_oom(m->u->err) : query_int(m->u, ds_buf_cstr(&sql), n);
    }
    m->keys_counted = done ? "count_keys_bitmap" : "count_keys_grouped";
    m->keys_seconds += ddb_mono_s() - t0;
    ds_buf_free(&from);
    ds_buf_free(&sql);
    return st;
}

/*
 * Keboola keeps one row per key of an import (which one is arbitrary). The
 * rows are loaded as they come and their keys counted; only when a key repeats
 * are the extra rows deleted. DISTINCT ON in every load did the same at the
 * cost of an aggregate over every column: a third of a big load's time. rel is
 * the temp table holding the loaded rows (an upsert's __ds_new); for the
 * destination table see check_table_keys. *rows: the rows loaded (in),
 * kept (out).
 */
static ds_status_t collapse_keys(imp_t *m, const char *rel, int64_t *rows)
{
    use_t *u = m->u;
    ds_buf_t sql = {0};
    int64_t distinct = 0, deleted = 0;
    ds_status_t st = count_keys(m, rel, NULL, *rows, &distinct);
    if (st == DS_OK && distinct < *rows) {
        ds_buf_printf(&sql, "DELETE FROM %s d USING (SELECT rowid AS r, row_number() OVER (PARTITION BY ", rel);
        key_list(m, &sql, false);
        ds_buf_printf(&sql, ") AS n FROM %s) x WHERE d.rowid = x.r AND x.n > 1", rel);
        st = ds_buf_failed(&sql) ? ddb_oom(u->err) : query_int(u, ds_buf_cstr(&sql), &deleted);
        if (st == DS_OK && deleted != *rows - distinct)
            st = ds_err_set(u->err, DS_INTERNAL,
                            "removing duplicate keys from the import left %lld rows for %lld keys; nothing was changed",
                            (long long)(*rows - deleted), (long long)distinct);
    }
    ds_buf_free(&sql);
    if (st == DS_OK)
        *rows = distinct;
    return st;
}

/*
 * The same check over the rows this transaction added to the destination
 * table, but a repeated key is not deleted there: DuckDB's commit writes a
 * transaction's appended rows again when any of them was deleted (a 7M-row
 * load's COMMIT took 11.7 s instead of 0.2 for one deleted row). The load
 * fails instead, with m->distinct_on set, and the caller loads again with
 * DISTINCT ON (rolled back first, so nothing of the first load stays).
 */
static ds_status_t check_table_keys(imp_t *m, int64_t *rows)
{
    if (m->distinct_on) /* this load is the second one: one row per key already */
        return DS_OK;
    ds_buf_t rel = {0};
    int64_t distinct = 0;
    qualified(&rel, m->bucket, m->table);
    const char *local = "rowid >= " DDB_HIST_LOCAL_ROWID; /* the rows this transaction appended */
    ds_status_t st =
        ds_buf_failed(&rel) ? ddb_oom(m->u->err) : count_keys(m, ds_buf_cstr(&rel), local, *rows, &distinct);
    ds_buf_free(&rel);
    if (st == DS_OK && distinct < *rows) {
        m->distinct_on = true;
        st = ds_err_set(m->u->err, DS_CONFLICT, "the input repeats keys; it is loaded again with them collapsed");
    }
    return st;
}

typedef struct {
    imp_t *m;
    int64_t loaded;
    int64_t distinct; /* load_txn with a dedup key: the input's distinct keys (-1: not counted) */
} load_t;

static ds_status_t create_destination(imp_t *m)
{
    use_t *u = m->u;
    ds_buf_t sql = {0};
    char now[32];
    snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
    ddb_mcat_note_table(u, m->bucket, m->table);
    ds_buf_puts(&sql, "DROP TABLE IF EXISTS ");
    qualified(&sql, m->bucket, m->table);
    ds_buf_puts(&sql, "; CREATE TABLE ");
    qualified(&sql, m->bucket, m->table);
    ds_buf_puts(&sql, " (");
    for (size_t i = 0; i < m->n_src; i++) {
        if (!m->dst[i])
            continue;
        ds_buf_ident(&sql, m->dst[i]);
        ds_buf_puts(&sql, " VARCHAR, ");
    }
    ds_buf_puts(&sql, "\"_timestamp\" TIMESTAMP)");
    ds_status_t st = ds_ddb_exec(u->conn, u->err, ds_buf_cstr(&sql));
    ds_buf_free(&sql);
    if (st != DS_OK)
        return st;
    ds_buf_t pk = {0};
    for (size_t k = 0; k < m->n_key; k++)
        ds_buf_printf(&pk, "%s%s", k ? "," : "", m->key[k]);
    if (ds_buf_failed(&pk)) {
        ds_buf_free(&pk);
        return ds_err_set(u->err, DS_UNAVAILABLE, "out of memory while building the primary key; nothing was changed");
    }
    const char *params[] = {m->bucket, m->table, ds_buf_cstr(&pk), now};
    st = ds_ddb_run(u->conn, u->err, NULL, "DELETE FROM " META ".tables WHERE lower(bucket) = lower($1) AND lower(name) = lower($2)", 2, params);
    if (st == DS_OK)
        st = ds_ddb_run(u->conn, u->err, NULL,
                        "INSERT INTO " META ".tables (bucket, name, primary_key, created_at) VALUES ($1, $2, $3, "
                        "CAST($4 AS BIGINT))",
                        4, params);
    ds_buf_free(&pk);
    return st;
}

/*
 * The checks that decide whether the load may happen, run inside the load's
 * transaction (and so again on every conflict retry), against the table as
 * this transaction sees it:
 *   - the destination is the one the import was planned for: an existing
 *     table has the same columns, types and key that the columns were matched
 *     and the values type-checked against; a table to create does not exist;
 *   - FAIL_ON_DUPLICATES: no key twice in the input nor already in the table.
 * NOT NULL and the types themselves are enforced by DuckDB's constraints and
 * casts in the INSERT, in the same transaction. Every import rewrites the
 * table's metadata row (touch_meta, also when it loads no row), so two
 * transactions importing into one table conflict (one retries, and then sees
 * the other's rows) instead of both appending.
 */
static ds_status_t check_in_txn(imp_t *m, ds_be_table_t *now_out)
{
    use_t *u = m->u;
    ds_be_table_t now = {0};
    ds_status_t st = ddb_table_describe(u, m->call, m->bucket, m->table, &now);
    *now_out = now;
    if (!m->exists) {
        if (st == DS_OK)
            return ds_err_set(u->err, DS_CONFLICT, "table %s.%s was created by another request during the import",
                              m->bucket, m->table);
        if (st != DS_NOT_FOUND)
            return st;
        ds_err_clear(u->err);
    } else if (st != DS_OK) {
        return st;
    } else if (!m->recreate && !u->be->host->same_definition(&m->t, &now)) {
        return ds_err_set(u->err, DS_CONFLICT, "table %s.%s changed during the import", m->bucket, m->table);
    }
    if (m->in->dedup == DS_DEDUP_FAIL && m->n_key && (st = check_duplicates(m)) != DS_OK)
        return st;
    return DS_OK;
}

static ds_status_t load_txn(use_t *u, void *ud)
{
    load_t *l = ud;
    imp_t *m = l->m;
    const ds_import_t *in = m->in;
    ds_status_t st = DS_OK;
    ds_buf_t sql = {0};
    ddb_hist_t h;
    ds_be_table_t now;
    l->loaded = 0;
    l->distinct = -1;
    if ((st = check_in_txn(m, &now)) != DS_OK)
        return st;
    /*
     * An existing table's history records this write; a table this import
     * creates starts one after it. The definition read above holds for the
     * whole write unless the write adds columns or replaces the table.
     */
    if (m->exists && (st = m->n_add || m->recreate ? ddb_hist_begin(u, m->bucket, m->table, &h)
                                                  : ddb_hist_begin_known(u, &now, &h)) != DS_OK)
        return st;
    if (m->recreate) {
        if (m->exists && (st = ddb_hist_removed(u, &h, NULL, NULL)) != DS_OK)
            return st;
        if ((st = create_destination(m)) != DS_OK)
            return st;
    }
    for (size_t i = 0; i < m->n_add && st == DS_OK; i++) {
        ds_buf_reset(&sql);
        ds_buf_puts(&sql, "ALTER TABLE ");
        qualified(&sql, m->bucket, m->table);
        ds_buf_puts(&sql, " ADD COLUMN ");
        ds_buf_ident(&sql, m->add[i]);
        ds_buf_puts(&sql, " VARCHAR");
        st = ds_ddb_exec(u->conn, u->err, ds_buf_cstr(&sql));
    }
    bool upsert = in->incremental && m->n_key > 0 && in->dedup == DS_DEDUP_UPDATE && m->exists && !m->recreate;
    bool dedup = m->n_key > 0 && in->dedup == DS_DEDUP_UPDATE;
    if (st == DS_OK && !in->incremental && m->exists && !m->recreate) {
        st = ddb_hist_removed(u, &h, NULL, NULL);
        ds_buf_reset(&sql);
        ds_buf_puts(&sql, "DELETE FROM ");
        qualified(&sql, m->bucket, m->table);
        st = ds_ddb_exec(u->conn, u->err, ds_buf_cstr(&sql));
    }
    if (st == DS_OK && upsert) {
        /* Materialize the new rows once; both statements below read them. */
        ds_buf_reset(&sql);
        duckdb_result r;
        ds_buf_puts(&sql, "CREATE OR REPLACE TEMP TABLE __ds_new AS ");
        input_query(m, &sql);
        st = ds_ddb_run(u->conn, u->err, &r, ds_buf_cstr(&sql), 0, NULL);
        if (st == DS_OK) {
            l->distinct = ds_ddb_int(&r, 0, 0);
            duckdb_destroy_result(&r);
            st = collapse_keys(m, "__ds_new", &l->distinct); /* then one row per key */
        }
        if (st == DS_OK) {
            /* Remove the rows being replaced; on string tables only those whose values change. */
            ds_buf_t cond = {0};
            ds_buf_puts(&cond, " WHERE EXISTS (SELECT 1 FROM __ds_new n WHERE ");
            key_join(m, &cond, "t", "n");
            if (m->string_table) {
                ds_buf_puts(&cond, " AND (false");
                for (size_t i = 0; i < m->n_src; i++) {
                    if (!m->dst[i])
                        continue;
                    ds_buf_puts(&cond, " OR t.");
                    ds_buf_ident(&cond, m->dst[i]);
                    ds_buf_puts(&cond, " IS DISTINCT FROM n.");
                    ds_buf_ident(&cond, m->dst[i]);
                }
                ds_buf_puts(&cond, ")");
            }
            ds_buf_puts(&cond, ")");
            /* The history keeps exactly the rows this DELETE removes (the join runs once, for both). */
            int64_t replaced = 0;
            st = ds_buf_failed(&cond) ? ddb_oom(u->err) : ddb_hist_delete(u, &h, ds_buf_cstr(&cond), &replaced);
            ds_buf_free(&cond);
        }
        if (st == DS_OK) {
            /* A typed table lost every row with a key of __ds_new above; a string table keeps the unchanged ones. */
            duckdb_result r;
            ds_buf_reset(&sql);
            insert_sql(m, &sql, "__ds_new", m->string_table);
            st = ds_ddb_run(u->conn, u->err, &r, ds_buf_cstr(&sql), 0, NULL);
            if (st == DS_OK) {
                l->loaded = ds_ddb_int(&r, 0, 0);
                duckdb_destroy_result(&r);
            }
        }
    } else if (st == DS_OK) {
        duckdb_result r;
        ds_buf_t from = {0};
        ds_buf_puts(&from, "(");
        input_query(m, &from);
        ds_buf_puts(&from, ")");
        ds_buf_reset(&sql);
        insert_sql(m, &sql, ds_buf_cstr(&from), false);
        ds_buf_free(&from);
        st = ds_ddb_run(u->conn, u->err, &r, ds_buf_cstr(&sql), 0, NULL);
        if (st == DS_OK) {
            l->loaded = ds_ddb_int(&r, 0, 0);
            duckdb_destroy_result(&r);
        }
        /* Every row this transaction added to the table is the input's (the table was new or emptied). */
        if (st == DS_OK && dedup && (st = check_table_keys(m, &l->loaded)) == DS_OK)
            l->distinct = l->loaded; /* one row per key */
    }
    ds_buf_free(&sql);
    if (st == DS_OK)
        st = touch_meta(u, m->bucket, m->table, true, l->loaded > 0 || !in->incremental);
    if (st == DS_OK)
        st = ddb_idem_record(u, l->loaded);
    if (st == DS_OK && m->exists && (st = ddb_hist_appended(u, &h, l->loaded)) == DS_OK)
        st = ddb_hist_end(u, &h);
    if (st == DS_OK && !m->exists)
        st = ddb_hist_register(u, m->bucket, m->table);
    return st;
}

/*
 * Runs a load's transaction, and once more when it found that the input
 * repeats keys (check_table_keys set m->distinct_on and failed it): the
 * second run collapses them with DISTINCT ON.
 */
static ds_status_t run_load(use_t *u, ds_status_t (*fn)(use_t *, void *), load_t *l)
{
    bool collapsing = l->m->distinct_on;
    l->m->keys_counted = NULL; /* the timer tells this attempt's count (kept by the rerun it decided) */
    l->m->keys_seconds = 0;
    ds_status_t st = ddb_in_txn(u, fn, l);
    if (st != DS_OK && l->m->distinct_on && !collapsing) {
        ds_err_clear(u->err);
        st = ddb_in_txn(u, fn, l);
    }
    return st;
}

/*
 * Whether the import can read straight from the files (direct_rows): an
 * existing table that gains no columns, no NULL markers, no timestamps from
 * the source. can_load_direct: a full load or a plain append, in one INSERT;
 * can_upsert_direct: an upsert, whose new rows load_txn reads from the files.
 * fail_on_duplicates always takes the staged rows.
 */
static bool direct_source(const imp_t *m)
{
    const ds_import_t *in = m->in;
    return !in->src_table && m->exists && !m->recreate && !m->n_add && !in->n_import_as_null &&
           in->timestamp_mode != DS_TS_FROM_SOURCE;
}

static bool can_load_direct(const imp_t *m)
{
    const ds_import_t *in = m->in;
    if (!direct_source(m) || (m->n_key && in->dedup == DS_DEDUP_FAIL))
        return false;
    return !in->incremental || !m->n_key || in->dedup == DS_DEDUP_INSERT;
}

/* An upsert whose new rows (__ds_new) can be read straight from the files: load_txn with m->direct. */
static bool can_upsert_direct(const imp_t *m)
{
    const ds_import_t *in = m->in;
    return direct_source(m) && in->incremental && m->n_key && in->dedup == DS_DEDUP_UPDATE;
}

/*
 * Appends "<input columns, typed, AS their destination names>, <_timestamp>
 * FROM <the files>": the rows of a direct load, read straight from the files
 * with the destination's types (see can_load_direct).
 */
static void direct_rows(const imp_t *m, ds_buf_t *b)
{
    const ds_import_t *in = m->in;
    bool csv = in->format == DS_FORMAT_CSV;
    distinct_on(m, b, true);
    for (size_t i = 0; i < m->n_src; i++) {
        if (!m->dst[i])
            continue;
        const char *type = dst_type(m, m->dst[i]);
        bool empty_null = ds_type_is_string(type) && in_list(in->convert_empty_to_null, in->n_convert_empty_to_null, m->dst[i]);
        ds_buf_puts(b, empty_null ? "NULLIF(" : "");
        ds_buf_puts(b, csv ? "" : "CAST(");
        ds_buf_ident(b, m->src[i]);
        if (!csv)
            ds_buf_printf(b, " AS %s)", type);
        ds_buf_puts(b, empty_null ? ", '') AS " : " AS ");
        ds_buf_ident(b, m->dst[i]);
        ds_buf_puts(b, ", ");
    }
    ds_buf_puts(b, in->timestamp_mode == DS_TS_NONE ? "CAST(NULL AS TIMESTAMP)"
                                                     : "CAST(get_current_timestamp() AT TIME ZONE 'UTC' AS TIMESTAMP)");
    ds_buf_puts(b, " AS \"_timestamp\" FROM ");
    if (csv) {
        append_csv_reader(m, b, true);
    } else {
        /*
         * Through a join with one row: a table's rows have no order, and a join
         * tells DuckDB so. A plain read of Parquet files comes in order, and
         * DuckDB keeps it with an insert whose commit merges its row groups
         * (5 s of 11 for 7M rows); the join's parallel insert commits in 0.2 s,
         * the join itself costs about 1 s. SET preserve_insertion_order would
         * say the same, but the engine's configuration is locked at start-up.
         */
        ds_buf_puts(b, "(SELECT *, 1 AS \"__ds:any\" FROM ");
        ds_buf_append_buf(b, &m->reader);
        ds_buf_puts(b, ") JOIN (VALUES (1)) AS __ds_one(\"__ds:any\") USING (\"__ds:any\")");
    }
}

static ds_status_t load_direct_txn(use_t *u, void *ud)
{
    load_t *l = ud;
    imp_t *m = l->m;
    const ds_import_t *in = m->in;
    ds_buf_t sql = {0};
    ddb_hist_t h;
    ds_be_table_t now;
    ds_status_t st = check_in_txn(m, &now);
    if (st == DS_OK) /* a direct load neither adds columns nor replaces the table */
        st = ddb_hist_begin_known(u, &now, &h);
    if (st != DS_OK)
        return st;
    if (!in->incremental) {
        st = ddb_hist_removed(u, &h, NULL, NULL);
        ds_buf_puts(&sql, "DELETE FROM ");
        qualified(&sql, m->bucket, m->table);
        if (st == DS_OK)
            st = ds_ddb_exec(u->conn, u->err, ds_buf_cstr(&sql));
        ds_buf_reset(&sql);
    }
    if (st != DS_OK)
        return st;
    insert_head(m, &sql);
    direct_rows(m, &sql);
    duckdb_result r;
    st = ds_ddb_run(u->conn, u->err, &r, ds_buf_cstr(&sql), 0, NULL);
    ds_buf_free(&sql);
    if (st != DS_OK)
        return st;
    l->loaded = ds_ddb_int(&r, 0, 0);
    duckdb_destroy_result(&r);
    /* A full load emptied the table, an append has no key or keeps duplicates (can_load_direct). */
    if (m->n_key && in->dedup == DS_DEDUP_UPDATE && (st = check_table_keys(m, &l->loaded)) != DS_OK)
        return st;
    st = touch_meta(u, m->bucket, m->table, true, l->loaded > 0 || !in->incremental);
    if (st == DS_OK)
        st = ddb_idem_record(u, l->loaded);
    if (st == DS_OK)
        st = ddb_hist_appended(u, &h, l->loaded);
    return st == DS_OK ? ddb_hist_end(u, &h) : st;
}

ds_status_t ddb_table_import(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                             const ds_import_t *in, const char *const *paths, size_t n_paths, ds_import_result_t *out)
{
    be_t *be = self;
    use_t u;
    imp_t m = {0};
    double t0 = ddb_mono_s(), t1 = 0, t2 = 0;
    memset(out, 0, sizeof(*out));
    ds_status_t st = ddb_use_begin(be, call, false, &u);
    if (st != DS_OK)
        return st;
    m.u = &u;
    m.call = call;
    m.bucket = bucket;
    m.table = table;
    m.in = in;
    m.paths = paths;
    m.n_paths = n_paths;
    st = ddb_table_describe_read(&u, call, bucket, table, &m.t);
    if (st == DS_NOT_FOUND && in->create_mode != DS_CREATE_NONE) {
        m.recreate = true;
        m.string_table = true;
        st = DS_OK;
        m.t.bucket = bucket;
        m.t.name = table;
    } else if (st == DS_OK) {
        m.exists = true;
        m.recreate = in->create_mode == DS_CREATE_REPLACE;
        bool all_string = true;
        for (size_t i = 0; i < m.t.n_columns; i++)
            all_string = all_string && ds_type_is_string(m.t.columns[i].type);
        m.string_table = in->strategy == DS_STRATEGY_AUTO ? all_string : in->strategy == DS_STRATEGY_STRING;
        if (m.string_table && !all_string && !m.recreate)
            st = ds_err_set(call->err, DS_INVALID_ARGUMENT,
                            "table %s.%s has typed columns; import it with the typed (user defined) strategy", bucket,
                            table);
    }
    if (st == DS_OK)
        st = describe_source(&m);
    if (st == DS_OK)
        st = match_columns(&m);
    if (st == DS_OK && m.recreate) {
        /* A created table takes its key from the dedup columns (Keboola's primary key on create). */
        m.t.primary_key = in->dedup_columns;
        m.t.n_primary_key = in->n_dedup_columns;
    }
    if (st == DS_OK)
        st = resolve_key(&m);
    /*
     * The direct load reads the files straight into the table in one statement,
     * as fast as DuckDB's own COPY; a direct upsert reads them straight into
     * its new rows (__ds_new), skipping the text stage and its type checks.
     * They serve the common cases; when one fails (a value that does not fit,
     * a malformed file), the staged path runs and names the problem by row
     * and column.
     */
    bool direct = false, upsert = st == DS_OK && can_upsert_direct(&m);
    load_t l = {.m = &m};
    if (st == DS_OK && (upsert || can_load_direct(&m))) {
        m.direct = true;
        ds_status_t dst = run_load(&u, upsert ? load_txn : load_direct_txn, &l);
        m.direct = false;
        if (dst == DS_OK)
            direct = true;
        else if (dst == DS_UNAVAILABLE || dst == DS_INSUFFICIENT_STORAGE || dst == DS_CANCELLED)
            st = dst;
        else
            ds_err_clear(call->err);
    }
    if (st == DS_OK && !direct)
        st = stage(&m);
    t1 = ddb_mono_s();
    if (st == DS_OK && !direct)
        st = check_types(&m);
    for (int attempt = 0; st == DS_OK && !direct; attempt++) {
        st = run_load(&u, load_txn, &l);
        if (st != DS_CONFLICT || attempt + 1 >= MAX_CONFLICT_RETRIES)
            break;
        be->host->log(2, "duckdb", "import into %s.%s hit a transaction conflict; retrying", bucket, table);
        /* Let the other transaction finish: the retry then sees its rows (and its duplicates). */
        usleep((useconds_t)(20000u << attempt));
        ds_err_clear(call->err);
        st = DS_OK;
    }
    if (st == DS_CONFLICT)
        ds_err_set(call->err, DS_UNAVAILABLE, "the table is busy; retry the import");
    t2 = ddb_mono_s();
    if (st == DS_OK && direct && !upsert) {
        out->imported_rows = l.loaded;
    } else if (st == DS_OK) {
        /* With a dedup key an import counts the keys it brought, once each. */
        out->imported_rows = in->dedup == DS_DEDUP_UPDATE && m.n_key ? l.distinct : m.staged_rows;
        if (out->imported_rows < 0)
            st = ds_err_set(call->err, DS_INTERNAL, "the import into %s.%s did not count its keys", bucket, table);
    }
    if (st == DS_OK) /* the figures the table's metadata stored at the commit: what GET table says */
        st = ddb_meta_counts(&u, bucket, table, &out->table_rows, &out->table_bytes);
    if (st == DS_OK) {
        out->imported_columns = be->host->alloc(call, sizeof(char *) * (m.n_src ? m.n_src : 1));
        out->timers = be->host->alloc(call, sizeof(ds_timer_t) * 3);
        if (!out->imported_columns || !out->timers)
            st = ddb_oom(call->err);
    }
    if (st == DS_OK) {
        size_t n = 0;
        for (size_t i = 0; i < m.n_src; i++)
            if (m.dst[i])
                out->imported_columns[n++] = m.dst[i];
        out->n_imported_columns = n;
        out->timers[0] = (ds_timer_t){direct ? "direct_load" : "stage", t1 - t0};
        out->timers[1] = (ds_timer_t){direct ? "finish" : "load", t2 - t1};
        out->n_timers = 2;
        if (m.keys_counted) /* part of the load's time, shown apart: the step that grows with the key's range */
            out->timers[out->n_timers++] = (ds_timer_t){m.keys_counted, m.keys_seconds};
    }
    ds_err_t ignored = {0};
    ds_ddb_exec(u.conn, &ignored, "DROP TABLE IF EXISTS __ds_src; DROP TABLE IF EXISTS __ds_new");
    ds_buf_free(&m.reader);
    for (size_t i = 0; i < m.n_converted; i++)
        unlink(m.converted[i]);
    ddb_use_end(&u);
    return st;
}

/* ---- export ---- */

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

ds_status_t ddb_table_export(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                             const ds_export_t *in, const char *out_dir, int64_t slice_bytes, const char ***paths,
                             size_t *n_paths, int64_t *rows)
{
    be_t *be = self;
    use_t u;
    ds_be_table_t t = {0};
    ds_buf_t sql = {0}, target = {0};
    *paths = NULL;
    *n_paths = 0;
    *rows = 0;
    /* COPY (SELECT ...) TO a file: the table's cached previews stay valid. */
    ds_status_t st = ddb_use_begin_read(be, call, &u);
    if (st != DS_OK)
        return st;
    st = ddb_table_describe_read(&u, call, bucket, table, &t);
    bool parquet = in->format == DS_FORMAT_PARQUET;
    bool sliced = in->sliced || slice_bytes > 0;
    if (st == DS_OK) {
        ds_buf_puts(&sql, "COPY (");
        st = build_select(&u, call, &t, in->columns, in->n_columns, false, in->order, in->n_order, &in->where, in->limit,
                          &sql, NULL, NULL, NULL);
    }
    if (st == DS_OK) {
        if (sliced)
            ds_buf_printf(&target, "%s/slices", out_dir);
        else
            ds_buf_printf(&target, "%s/data.%s%s", out_dir, parquet ? "parquet" : "csv",
                          !parquet && in->gzip ? ".gz" : "");
        ds_buf_puts(&sql, ") TO ");
        ds_buf_literal(&sql, ds_buf_cstr(&target));
        if (parquet)
            ds_buf_puts(&sql, " (FORMAT parquet");
        else
            ds_buf_printf(&sql, " (FORMAT csv, HEADER true, DELIMITER ',', QUOTE '\"', ESCAPE '\"', FORCE_QUOTE *, "
                                "NEW_LINE '\\n', COMPRESSION %s",
                          in->gzip ? "gzip" : "none");
        if (sliced) {
            int64_t size = in->sliced && slice_bytes <= 0 ? (int64_t)64 << 20 : slice_bytes;
            ds_buf_printf(&sql, ", FILE_SIZE_BYTES %lld, FILENAME_PATTERN 'part_{i}'", (long long)size);
            if (!parquet && in->gzip)
                ds_buf_puts(&sql, ", FILE_EXTENSION 'csv.gz'");
        }
        ds_buf_puts(&sql, ")");
        duckdb_result r;
        st = ds_ddb_run(u.conn, call->err, &r, ds_buf_cstr(&sql), 0, NULL);
        if (st == DS_OK) {
            *rows = ds_ddb_int(&r, 0, 0);
            duckdb_destroy_result(&r);
        }
    }
    if (st == DS_OK && !sliced) {
        *paths = be->host->alloc(call, sizeof(char *));
        if (*paths && ((*paths)[0] = be->host->strdup(call, ds_buf_cstr(&target))) != NULL)
            *n_paths = 1;
        else
            st = ddb_oom(call->err);
    } else if (st == DS_OK) {
        DIR *d = opendir(ds_buf_cstr(&target));
        size_t cap = 16, n = 0;
        const char **list = be->host->alloc(call, sizeof(char *) * cap);
        struct dirent *e;
        while (list && d && (e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            if (n == cap) {
                const char **bigger = be->host->alloc(call, sizeof(char *) * cap * 2);
                if (!bigger) {
                    list = NULL;
                    break;
                }
                memcpy(bigger, list, sizeof(char *) * cap);
                list = bigger;
                cap *= 2;
            }
            size_t len = target.len + strlen(e->d_name) + 2;
            char *p = be->host->alloc(call, len);
            if (!p) {
                list = NULL;
                break;
            }
            snprintf(p, len, "%s/%s", ds_buf_cstr(&target), e->d_name);
            list[n++] = p;
        }
        if (d)
            closedir(d);
        if (list) {
            qsort(list, n, sizeof(char *), cmp_str);
            *paths = list;
            *n_paths = n;
        } else {
            st = ddb_oom(call->err);
        }
    }
    ds_buf_free(&sql);
    ds_buf_free(&target);
    ddb_use_end(&u);
    return st;
}

/* ---- preview ---- */

/*
 * Copies the preview's rows (at most limit) into the call's arena straight
 * from the result's VARCHAR vectors (build_select casts every column), one
 * arena copy per value: the value functions allocated and freed three times
 * per value, a tenth of an uncached preview.
 */
static ds_status_t preview_rows(be_t *be, ds_be_call_t *call, duckdb_result *r, int64_t limit,
                                ds_preview_result_t *out)
{
    idx_t nc = out->n_columns;
    if (duckdb_column_count(r) != nc)
        return ds_err_set(call->err, DS_INTERNAL, "the preview's query returned %llu columns, not %zu",
                          (unsigned long long)duckdb_column_count(r), (size_t)nc);
    for (idx_t c = 0; c < nc; c++)
        if (duckdb_column_type(r, c) != DUCKDB_TYPE_VARCHAR)
            return ds_err_set(call->err, DS_INTERNAL, "the preview's query returned column %s not as text",
                              out->columns[c]);
    if (!(out->rows = be->host->alloc(call, sizeof(char **) * (size_t)(limit > 0 ? limit : 1))))
        return ddb_oom(call->err);
    out->n_rows = 0;
    duckdb_data_chunk ch;
    ds_status_t st = DS_OK;
    while (st == DS_OK && (ch = duckdb_fetch_chunk(*r)) != NULL) {
        idx_t n = duckdb_data_chunk_get_size(ch);
        for (idx_t i = 0; i < n && st == DS_OK && (int64_t)out->n_rows < limit; i++) {
            const char **row = be->host->alloc(call, sizeof(char *) * (nc ? nc : 1));
            if (!row) {
                st = ddb_oom(call->err);
                break;
            }
            for (idx_t c = 0; c < nc; c++) {
                duckdb_vector v = duckdb_data_chunk_get_vector(ch, c);
                uint64_t *valid = duckdb_vector_get_validity(v);
                if (valid && !duckdb_validity_row_is_valid(valid, i)) {
                    row[c] = NULL;
                    continue;
                }
                duckdb_string_t *sv = (duckdb_string_t *)duckdb_vector_get_data(v) + i;
                uint32_t len = duckdb_string_t_length(*sv);
                char *text = be->host->alloc(call, (size_t)len + 1);
                if (!text) {
                    st = ddb_oom(call->err);
                    break;
                }
                memcpy(text, duckdb_string_t_data(sv), len);
                text[len] = '\0';
                row[c] = text;
            }
            out->rows[out->n_rows++] = row;
        }
        duckdb_destroy_data_chunk(&ch);
    }
    return st;
}

ds_status_t ddb_table_preview(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                              const ds_preview_t *in, ds_preview_result_t *out)
{
    be_t *be = self;
    use_t u;
    ds_be_table_t t = {0};
    ds_buf_t sql = {0}, key = {0};
    memset(out, 0, sizeof(*out));
    ds_status_t st;
    /* An answer from the recent previews needs no connection (preview_cache.c). */
    if (be->pcache) {
        ddb_pcache_key(&key, call->project_id, bucket, table, in);
        proj_t *p;
        if (!ds_buf_failed(&key) && ddb_pin_begin(be, call, &p, &st)) {
            if (!p) {
                ds_buf_free(&key);
                return st;
            }
            bool hit = ddb_pcache_get(be->pcache, be->host, call, &key, atomic_load(&p->data_epoch), out);
            ddb_pin_end(be, p);
            if (hit) {
                ds_buf_free(&key);
                return DS_OK;
            }
        }
    }
    if ((st = ddb_use_begin_read(be, call, &u)) != DS_OK) {
        ds_buf_free(&key);
        return st;
    }
    uint64_t epoch = atomic_load(&u.p->data_epoch);
    st = ddb_table_describe_read(&u, call, bucket, table, &t);
    int64_t limit = in->limit > 0 && in->limit < DS_PREVIEW_MAX_ROWS ? in->limit : DS_PREVIEW_MAX_ROWS;
    if (st == DS_OK)
        st = build_select(&u, call, &t, in->columns, in->n_columns, true, in->order, in->n_order, &in->where, limit, &sql,
                          &out->columns, &out->types, &out->n_columns);
    duckdb_result r;
    if (st == DS_OK)
        st = ds_ddb_run(u.conn, call->err, &r, ds_buf_cstr(&sql), 0, NULL);
    if (st == DS_OK) {
        st = preview_rows(be, call, &r, limit, out);
        duckdb_destroy_result(&r);
    }
    if (st == DS_OK && be->pcache && !ds_buf_failed(&key))
        ddb_pcache_put(be->pcache, &key, epoch, &u.p->data_epoch, out);
    ds_buf_free(&sql);
    ds_buf_free(&key);
    ddb_use_end(&u);
    return st;
}

/* ---- profile ---- */

/* The rows a profile reads: the table, or only the rows where selects (a subquery). */
static ds_status_t profile_from(use_t *u, const ds_be_table_t *t, const ds_where_t *where, ds_buf_t *b)
{
    if (!where) {
        qualified(b, t->bucket, t->name);
        return DS_OK;
    }
    ds_buf_puts(b, "(SELECT * FROM ");
    qualified(b, t->bucket, t->name);
    ds_status_t st = append_where(u, t, where, b);
    ds_buf_puts(b, ") AS \"__v\"");
    return st;
}

/* Keeps only t's columns that columns[0..n) name (in that order); n == 0 keeps all. */
static ds_status_t profile_columns(use_t *u, ds_be_call_t *call, ds_be_table_t *t, const char *const *columns, size_t n)
{
    if (!n)
        return DS_OK;
    ds_be_column_t *cols = u->be->host->alloc(call, sizeof(ds_be_column_t) * n);
    if (!cols)
        return ddb_oom(call->err);
    for (size_t i = 0; i < n; i++) {
        int ci = columns[i] ? find_col(t, columns[i]) : -1;
        if (ci < 0)
            return ds_err_setk(u->err, DS_INVALID_ARGUMENT, DS_KBC_COLUMN_NOT_FOUND,
                               "column \"%s\" is not a column of the table", columns[i] ? columns[i] : "");
        cols[i] = t->columns[ci];
    }
    t->columns = cols;
    t->n_columns = n;
    return DS_OK;
}

static ds_status_t profile_run(be_t *be, ds_be_call_t *call, const char *bucket, const char *table,
                               const char *const *columns, size_t n_columns, const ds_where_t *where,
                               ds_profile_result_t *out)
{
    use_t u;
    ds_be_table_t t = {0};
    ds_buf_t sql = {0};
    duckdb_result r;
    memset(out, 0, sizeof(*out));
    ds_status_t st = ddb_use_begin_read(be, call, &u);
    if (st != DS_OK)
        return st;
    if ((st = ddb_table_describe_read(&u, call, bucket, table, &t)) != DS_OK)
        goto done;
    /* The filter may name a column the profile leaves out: it is applied over the whole table. */
    ds_be_table_t whole = t;
    if ((st = profile_columns(&u, call, &t, columns, n_columns)) != DS_OK)
        goto done;
    out->columns = be->host->alloc(call, sizeof(ds_column_profile_t) * (t.n_columns ? t.n_columns : 1));
    if (!out->columns) {
        st = ddb_oom(call->err);
        goto done;
    }
    out->n_columns = t.n_columns;
    ds_buf_puts(&sql, "SELECT count(*)");
    for (size_t i = 0; i < t.n_columns; i++) {
        const char *c = t.columns[i].name;
        ds_buf_puts(&sql, ", count(");
        ds_buf_ident(&sql, c);
        ds_buf_puts(&sql, "), count(DISTINCT ");
        ds_buf_ident(&sql, c);
        ds_buf_puts(&sql, "), CAST(min(");
        ds_buf_ident(&sql, c);
        ds_buf_puts(&sql, ") AS VARCHAR), CAST(max(");
        ds_buf_ident(&sql, c);
        ds_buf_puts(&sql, ") AS VARCHAR), ");
        if (is_numeric_type(t.columns[i].type)) {
            ds_buf_puts(&sql, "CAST(avg(");
            ds_buf_ident(&sql, c);
            ds_buf_puts(&sql, ") AS VARCHAR)");
        } else {
            ds_buf_puts(&sql, "NULL");
        }
    }
    ds_buf_puts(&sql, " FROM ");
    if ((st = profile_from(&u, &whole, where, &sql)) != DS_OK)
        goto done;
    if ((st = ds_ddb_run(u.conn, call->err, &r, ds_buf_cstr(&sql), 0, NULL)) != DS_OK)
        goto done;
    out->rows = ds_ddb_int(&r, 0, 0);
    for (size_t i = 0; i < t.n_columns; i++) {
        ds_column_profile_t *p = &out->columns[i];
        idx_t base = 1 + i * 5;
        p->name = t.columns[i].name;
        p->type = t.columns[i].type;
        p->count = ds_ddb_int(&r, base, 0);
        p->nulls = out->rows - p->count;
        p->distinct = ds_ddb_int(&r, base + 1, 0);
        char *v;
        p->min = (v = ds_ddb_cell(&r, base + 2, 0)) ? be->host->strdup(call, v) : NULL;
        free(v);
        p->max = (v = ds_ddb_cell(&r, base + 3, 0)) ? be->host->strdup(call, v) : NULL;
        free(v);
        p->avg = (v = ds_ddb_cell(&r, base + 4, 0)) ? be->host->strdup(call, v) : NULL;
        free(v);
    }
    duckdb_destroy_result(&r);
    for (size_t i = 0; i < t.n_columns && st == DS_OK; i++) {
        ds_column_profile_t *p = &out->columns[i];
        ds_buf_reset(&sql);
        ds_buf_puts(&sql, "SELECT CAST(v AS VARCHAR), n FROM (SELECT ");
        ds_buf_ident(&sql, p->name);
        ds_buf_puts(&sql, " AS v, count(*) AS n FROM ");
        if ((st = profile_from(&u, &whole, where, &sql)) != DS_OK)
            break;
        ds_buf_puts(&sql, " WHERE ");
        ds_buf_ident(&sql, p->name);
        ds_buf_puts(&sql, " IS NOT NULL GROUP BY 1) ORDER BY n DESC, 1 LIMIT 5");
        if ((st = ds_ddb_run(u.conn, call->err, &r, ds_buf_cstr(&sql), 0, NULL)) != DS_OK)
            break;
        idx_t n = duckdb_row_count(&r);
        p->top = be->host->alloc(call, sizeof(ds_top_value_t) * (n ? n : 1));
        for (idx_t k = 0; p->top && k < n; k++) {
            char *v = ds_ddb_cell(&r, 0, k);
            p->top[k].value = be->host->strdup(call, v ? v : "");
            free(v);
            p->top[k].count = ds_ddb_int(&r, 1, k);
        }
        p->n_top = p->top ? n : 0;
        duckdb_destroy_result(&r);
        if (!p->top) {
            st = ddb_oom(call->err);
            break;
        }
    }
done:
    ds_buf_free(&sql);
    ddb_use_end(&u);
    return st;
}

ds_status_t ddb_table_profile(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                              ds_profile_result_t *out)
{
    return profile_run(self, call, bucket, table, NULL, 0, NULL, out);
}

ds_status_t ddb_table_profile_where(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                                    const char *const *columns, size_t n, const ds_where_t *where,
                                    ds_profile_result_t *out)
{
    return profile_run(self, call, bucket, table, columns, n, where, out);
}

ds_status_t ddb_table_count(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                            const ds_where_t *where, int64_t *rows)
{
    use_t u;
    ds_be_table_t t = {0};
    ds_buf_t sql = {0};
    *rows = 0;
    ds_status_t st = ddb_use_begin_read(self, call, &u);
    if (st != DS_OK)
        return st;
    if ((st = ddb_table_describe(&u, call, bucket, table, &t)) == DS_OK) {
        ds_buf_puts(&sql, "SELECT count(*) FROM ");
        qualified(&sql, bucket, table);
        if ((st = append_where(&u, &t, where, &sql)) == DS_OK)
            st = query_int(&u, ds_buf_cstr(&sql), rows);
    }
    ds_buf_free(&sql);
    ddb_use_end(&u);
    return st;
}

/* ---- delete rows ---- */

typedef struct {
    ds_be_call_t *call;
    const char *bucket;
    const char *table;
    ds_be_table_t t;
    const ds_where_t *where;
    int64_t deleted;
} delete_t;

/* The table and the where_in reference table are read inside the transaction that deletes. */
static ds_status_t delete_txn(use_t *u, void *ud)
{
    delete_t *d = ud;
    ds_buf_t sql = {0};
    duckdb_result r;
    const ds_where_t *where = d->where;
    ds_status_t st = ddb_table_describe(u, d->call, d->bucket, d->table, &d->t);
    if (st == DS_OK && where->in_column) {
        ds_be_table_t ref = {0};
        st = ddb_table_describe(u, d->call, where->in_bucket ? where->in_bucket : "",
                                where->in_table ? where->in_table : "", &ref);
        if (st == DS_OK && find_col(&ref, where->in_ref_column ? where->in_ref_column : "") < 0)
            st = ds_err_setk(u->err, DS_INVALID_ARGUMENT, DS_KBC_COLUMN_NOT_FOUND,
                             "column \"%s\" is not a column of %s.%s", where->in_ref_column ? where->in_ref_column : "",
                             where->in_bucket, where->in_table);
    }
    if (st != DS_OK)
        return st;
    /*
     * The history keeps exactly the rows the DELETE removes: with a WHERE,
     * ddb_hist_delete selects them once for both (and compares the counts);
     * without one, every row (a full write).
     */
    ddb_hist_t h;
    ds_buf_t where_sql = {0};
    if ((st = append_where(u, &d->t, d->where, &where_sql)) != DS_OK ||
        (st = ddb_hist_begin(u, d->bucket, d->table, &h)) != DS_OK) {
        ds_buf_free(&where_sql);
        return st;
    }
    if (ds_buf_failed(&where_sql)) {
        st = ddb_oom(u->err);
    } else if (where_sql.len > 0) {
        st = ddb_hist_delete(u, &h, ds_buf_cstr(&where_sql), &d->deleted);
    } else if ((st = ddb_hist_removed(u, &h, NULL, NULL)) == DS_OK) {
        ds_buf_puts(&sql, "DELETE FROM ");
        qualified(&sql, d->bucket, d->table);
        st = ds_ddb_run(u->conn, u->err, &r, ds_buf_cstr(&sql), 0, NULL);
        if (st == DS_OK) {
            d->deleted = ds_ddb_int(&r, 0, 0);
            duckdb_destroy_result(&r);
        }
    }
    ds_buf_free(&where_sql);
    ds_buf_free(&sql);
    if (st != DS_OK)
        return st;
    if (!u->call->history_off && h.full && d->deleted != h.removed)
        return ds_err_set(u->err, DS_INTERNAL,
                          "the history of %s.%s kept %lld rows where the delete removed %lld; nothing was deleted",
                          d->bucket, d->table, (long long)h.removed, (long long)d->deleted);
    st = touch_meta(u, d->bucket, d->table, false, d->deleted > 0);
    if (st == DS_OK)
        st = ddb_idem_record(u, d->deleted);
    return st == DS_OK ? ddb_hist_end(u, &h) : st;
}

ds_status_t ddb_table_delete_rows(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                                  const ds_where_t *where, int64_t *deleted, int64_t *table_rows)
{
    be_t *be = self;
    use_t u;
    ds_status_t st = ddb_use_begin(be, call, false, &u);
    if (st != DS_OK)
        return st;
    delete_t d = {.call = call, .bucket = bucket, .table = table, .where = where};
    st = ddb_in_txn(&u, delete_txn, &d);
    if (st == DS_OK)
        st = ddb_count_rows(&u, bucket, table, table_rows);
    *deleted = d.deleted;
    ddb_use_end(&u);
    return st;
}

/* ---- schema changes ---- */

typedef struct {
    const char *bucket;
    const char *table;
    ds_be_table_t *t;
    const ds_be_column_t *add;
    const char *column;
    const ds_column_alter_t *alter;
    const char *const *pk;
    size_t n_pk;
} schema_t;

static ds_status_t alter_exec(use_t *u, schema_t *s, const char *clause_fmt, const char *column, const char *tail)
{
    ds_buf_t sql = {0};
    ds_buf_puts(&sql, "ALTER TABLE ");
    qualified(&sql, s->bucket, s->table);
    ds_buf_printf(&sql, " %s ", clause_fmt);
    ds_buf_ident(&sql, column);
    if (tail)
        ds_buf_printf(&sql, " %s", tail);
    ds_status_t st = ds_ddb_exec(u->conn, u->err, ds_buf_cstr(&sql));
    ds_buf_free(&sql);
    return st;
}

/* alter_exec with a tail built in a buffer: a tail that failed to build fails the change, unrun. */
static ds_status_t alter_exec_buf(use_t *u, schema_t *s, const char *clause_fmt, const char *column,
                                  const ds_buf_t *tail)
{
    if (ds_buf_failed(tail))
        return ds_err_set(u->err, DS_UNAVAILABLE, "out of memory while building an SQL statement; nothing was run");
    return alter_exec(u, s, clause_fmt, column, ds_buf_cstr(tail));
}

static ds_status_t set_default(use_t *u, schema_t *s, const char *column, const char *type, const char *value)
{
    ds_buf_t tail = {0};
    char what[128];
    snprintf(what, sizeof(what), "column \"%s\": default", column);
    ds_status_t st = value ? ddb_check_value(u, "default", what, value, type) : DS_OK;
    if (st != DS_OK)
        return st;
    if (value) {
        ds_buf_puts(&tail, "SET DEFAULT CAST(");
        ds_buf_literal(&tail, value);
        ds_buf_printf(&tail, " AS %s)", type);
    } else {
        ds_buf_puts(&tail, "DROP DEFAULT");
    }
    st = alter_exec_buf(u, s, "ALTER COLUMN", column, &tail);
    ds_buf_free(&tail);
    return st;
}

static ds_status_t add_column_txn(use_t *u, void *ud)
{
    schema_t *s = ud;
    const ds_be_column_t *c = s->add;
    if (find_col(s->t, c->name) >= 0)
        return ds_err_set(u->err, DS_ALREADY_EXISTS, "column \"%s\" already exists in %s.%s", c->name, s->bucket,
                          s->table);
    if (!c->nullable && !c->default_value) {
        /* Existing rows would hold NULL: refuse before changing anything. */
        int64_t rows = 0;
        ds_status_t st = ddb_count_rows(u, s->bucket, s->table, &rows);
        if (st != DS_OK)
            return st;
        if (rows > 0)
            return ds_err_set(u->err, DS_INVALID_ARGUMENT,
                              "column \"%s\" cannot be NOT NULL without a default: the table's %lld rows would hold NULL",
                              c->name, (long long)rows);
    }
    if (c->default_value) {
        char what[128];
        snprintf(what, sizeof(what), "column \"%s\": default", c->name);
        ds_status_t st = ddb_check_value(u, "default", what, c->default_value, c->type);
        if (st != DS_OK)
            return st;
    }
    /* ADD COLUMN ... DEFAULT fills the existing rows with the default. */
    ds_buf_t tail = {0};
    ds_buf_puts(&tail, c->type);
    if (c->default_value) {
        ds_buf_puts(&tail, " DEFAULT CAST(");
        ds_buf_literal(&tail, c->default_value);
        ds_buf_printf(&tail, " AS %s)", c->type);
    }
    ds_status_t st = alter_exec_buf(u, s, "ADD COLUMN", c->name, &tail);
    ds_buf_free(&tail);
    return st == DS_OK ? touch_meta(u, s->bucket, s->table, false, true) : st;
}

static ds_status_t set_not_null_txn(use_t *u, void *ud)
{
    schema_t *s = ud;
    return alter_exec(u, s, "ALTER COLUMN", s->add->name, "SET NOT NULL");
}

static ds_status_t undo_add_column_txn(use_t *u, void *ud)
{
    schema_t *s = ud;
    return alter_exec(u, s, "DROP COLUMN", s->add->name, NULL);
}

static ds_status_t drop_column_txn(use_t *u, void *ud)
{
    schema_t *s = ud;
    int ci = find_col(s->t, s->column);
    if (ci < 0)
        return ds_err_setk(u->err, DS_NOT_FOUND, DS_KBC_COLUMN_NOT_FOUND, "column \"%s\" not found in %s.%s", s->column,
                           s->bucket, s->table);
    for (size_t k = 0; k < s->t->n_primary_key; k++)
        if (strcasecmp(s->t->primary_key[k], s->column) == 0)
            return ds_err_set(u->err, DS_INVALID_ARGUMENT,
                              "column \"%s\" is part of the primary key; drop the primary key first", s->column);
    if (s->t->n_columns == 1)
        return ds_err_set(u->err, DS_INVALID_ARGUMENT, "column \"%s\" is the table's last column", s->column);
    ds_status_t st = alter_exec(u, s, "DROP COLUMN", s->t->columns[ci].name, NULL);
    return st == DS_OK ? touch_meta(u, s->bucket, s->table, false, true) : st;
}

static ds_status_t alter_column_txn(use_t *u, void *ud)
{
    schema_t *s = ud;
    const ds_column_alter_t *a = s->alter;
    int ci = find_col(s->t, s->column);
    if (ci < 0)
        return ds_err_setk(u->err, DS_NOT_FOUND, DS_KBC_COLUMN_NOT_FOUND, "column \"%s\" not found in %s.%s", s->column,
                           s->bucket, s->table);
    const char *name = s->t->columns[ci].name;
    const char *type = a->type ? a->type : s->t->columns[ci].type;
    ds_status_t st = DS_OK;
    if (a->type && strcmp(a->type, s->t->columns[ci].type) != 0) {
        ds_buf_t tail = {0};
        ds_buf_printf(&tail, "TYPE %s", a->type);
        st = alter_exec_buf(u, s, "ALTER COLUMN", name, &tail);
        ds_buf_free(&tail);
        if (st != DS_OK) {
            char prefix[256];
            snprintf(prefix, sizeof(prefix), "column \"%s\" cannot change to %s", name, a->type);
            return reword_err(u, DS_INVALID_ARGUMENT, DS_KBC_DATA_TYPE_MISMATCH, prefix);
        }
    }
    if (st == DS_OK && a->set_default)
        st = set_default(u, s, name, type, a->default_value);
    if (st == DS_OK && a->nullable == 0)
        st = alter_exec(u, s, "ALTER COLUMN", name, "SET NOT NULL");
    if (st == DS_OK && a->nullable == 1)
        st = alter_exec(u, s, "ALTER COLUMN", name, "DROP NOT NULL");
    return st == DS_OK ? touch_meta(u, s->bucket, s->table, false, true) : st;
}

static ds_status_t pk_txn(use_t *u, void *ud)
{
    schema_t *s = ud;
    ds_buf_t list = {0};
    ds_status_t st = DS_OK;
    if (s->n_pk && s->t->n_primary_key)
        return ds_err_set(u->err, DS_INVALID_ARGUMENT, "table %s.%s already has a primary key; drop it first", s->bucket,
                          s->table);
    if (!s->n_pk && !s->t->n_primary_key)
        return ds_err_set(u->err, DS_INVALID_ARGUMENT, "table %s.%s has no primary key", s->bucket, s->table);
    for (size_t k = 0; k < s->n_pk; k++) {
        int ci = find_col(s->t, s->pk[k]);
        if (ci < 0) {
            ds_buf_free(&list);
            return ds_err_setk(u->err, DS_INVALID_ARGUMENT, DS_KBC_COLUMN_NOT_FOUND,
                               "primary key column \"%s\" is not a column of %s.%s", s->pk[k], s->bucket, s->table);
        }
        ds_buf_printf(&list, "%s%s", k ? "," : "", s->t->columns[ci].name);
    }
    if (s->n_pk) {
        /* Keboola refuses a key over values that are not unique. */
        ds_buf_t sql = {0};
        int64_t dups = 0;
        ds_buf_puts(&sql, "SELECT count(*) FROM (SELECT 1 FROM ");
        qualified(&sql, s->bucket, s->table);
        ds_buf_puts(&sql, " GROUP BY ");
        for (size_t k = 0; k < s->n_pk; k++) {
            if (k)
                ds_buf_puts(&sql, ", ");
            ds_buf_ident(&sql, s->t->columns[find_col(s->t, s->pk[k])].name);
        }
        ds_buf_puts(&sql, " HAVING count(*) > 1)");
        st = query_int(u, ds_buf_cstr(&sql), &dups);
        ds_buf_free(&sql);
        if (st == DS_OK && dups)
            st = ds_err_set(u->err, DS_INVALID_ARGUMENT,
                            "Cannot create new primary key, duplicate values in primary key columns (%s): %lld values "
                            "occur more than once",
                            ds_buf_text(&list), (long long)dups);
    }
    if (st == DS_OK && ds_buf_failed(&list))
        st = ds_err_set(u->err, DS_UNAVAILABLE, "out of memory while building the primary key; nothing was changed");
    if (st == DS_OK) {
        ddb_meta_t meta = {.primary_key = ds_buf_cstr(&list)};
        st = ddb_meta_write(u, s->bucket, s->table, &meta);
    }
    ds_buf_free(&list);
    return st;
}

typedef struct {
    ds_be_call_t *call;
    schema_t *s;
    ds_status_t (*fn)(use_t *, void *);
    ds_be_table_t t;
} schema_run_t;

/* Describes the table inside the transaction, so fn's checks see what its change applies to. */
static ds_status_t schema_txn(use_t *u, void *ud)
{
    schema_run_t *r = ud;
    ddb_mcat_note_table(u, r->s->bucket, r->s->table);
    ds_status_t st = ddb_table_describe(u, r->call, r->s->bucket, r->s->table, &r->t);
    r->s->t = &r->t;
    if (st != DS_OK)
        return st;
    /*
     * The history: a change that removes a column's values (drop, the undo of
     * an add) or rewrites them (a new type) keeps the rows as they were, once;
     * the others only record the new column set.
     */
    ddb_hist_t h;
    if ((st = ddb_hist_begin(u, r->s->bucket, r->s->table, &h)) != DS_OK)
        return st;
    int ci = r->s->column ? find_col(&r->t, r->s->column) : -1;
    bool rewrites = r->fn == drop_column_txn || r->fn == undo_add_column_txn ||
                    (r->fn == alter_column_txn && ci >= 0 && r->s->alter->type &&
                     strcmp(r->s->alter->type, r->t.columns[ci].type) != 0);
    if (rewrites && (st = ddb_hist_removed(u, &h, NULL, NULL)) != DS_OK)
        return st;
    if ((st = r->fn(u, r->s)) != DS_OK)
        return st;
    return ddb_hist_end(u, &h);
}

/* Opens the project and runs fn in a transaction, with the table described inside it. */
static ds_status_t schema_change(void *self, ds_be_call_t *call, schema_t *s, ds_status_t (*fn)(use_t *, void *))
{
    use_t u;
    ds_status_t st = ddb_use_begin(self, call, false, &u);
    if (st != DS_OK)
        return st;
    schema_run_t r = {.call = call, .s = s, .fn = fn};
    st = ddb_in_txn_recorded(&u, schema_txn, &r);
    s->t = NULL;
    ddb_use_end(&u);
    return st;
}

ds_status_t ddb_column_add(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                           const ds_be_column_t *column)
{
    schema_t s = {.bucket = bucket, .table = table, .add = column};
    /* An idempotency record commits with the change's last transaction: the NOT NULL step when there is one. */
    ds_be_call_t first = *call;
    if (!column->nullable)
        first.idem = NULL;
    ds_status_t st = schema_change(self, &first, &s, add_column_txn);
    if (st != DS_OK || column->nullable)
        return st;
    /*
     * NOT NULL is set in a transaction of its own: DuckDB cannot build the
     * constraint over rows changed earlier in the same transaction. When
     * existing rows hold NULL, the column is removed again.
     */
    if ((st = schema_change(self, call, &s, set_not_null_txn)) == DS_OK)
        return DS_OK;
    char msg[DS_ERR_MSG_MAX];
    snprintf(msg, sizeof(msg), "%s", call->err->message);
    ds_err_t ignored = {0};
    ds_be_call_t undo = *call;
    undo.err = &ignored;
    undo.idem = NULL;
    schema_change(self, &undo, &s, undo_add_column_txn);
    return ds_err_set(call->err, DS_INVALID_ARGUMENT,
                      "column \"%s\" cannot be NOT NULL: existing rows would hold NULL (give a default): %s",
                      column->name, msg);
}

ds_status_t ddb_column_drop(void *self, ds_be_call_t *call, const char *bucket, const char *table, const char *column)
{
    schema_t s = {.bucket = bucket, .table = table, .column = column};
    return schema_change(self, call, &s, drop_column_txn);
}

ds_status_t ddb_column_alter(void *self, ds_be_call_t *call, const char *bucket, const char *table, const char *column,
                             const ds_column_alter_t *alter)
{
    schema_t s = {.bucket = bucket, .table = table, .column = column, .alter = alter};
    return schema_change(self, call, &s, alter_column_txn);
}

ds_status_t ddb_primary_key_set(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                                const char *const *columns, size_t n)
{
    schema_t s = {.bucket = bucket, .table = table, .pk = columns, .n_pk = n};
    return schema_change(self, call, &s, pk_txn);
}

/* ---- read cursor (workspaces) ----
 * The statement is prepared when the scan opens (so its column types are
 * known at once, cheaply) and runs, streaming, on the first next(). The
 * connection is hooked to the call's cancellation like every other use, but
 * not watched: next() may run on a thread other than the one that opened it. */

typedef struct {
    ds_be_scan_t pub;
    use_t u;
    duckdb_prepared_statement ps;
    duckdb_result res;
    bool started;
    bool done;
} ddb_scan_t;

static ds_status_t scan_next(ds_be_scan_t *s, void **chunk, ds_err_t *err)
{
    ddb_scan_t *sc = (ddb_scan_t *)s;
    *chunk = NULL;
    if (sc->done)
        return DS_OK;
    if (!sc->started) {
        sc->started = true;
        if (duckdb_execute_prepared_streaming(sc->ps, &sc->res) == DuckDBError) {
            ds_status_t st = ds_ddb_error(err, duckdb_result_error_type(&sc->res), duckdb_result_error(&sc->res));
            sc->done = true;
            return st;
        }
    }
    duckdb_data_chunk c = duckdb_fetch_chunk(sc->res);
    if (!c) {
        sc->done = true;
        const char *e = duckdb_result_error(&sc->res);
        if (e)
            return ds_ddb_error(err, duckdb_result_error_type(&sc->res), e);
        return DS_OK;
    }
    *chunk = c;
    return DS_OK;
}

static void scan_close(ds_be_scan_t *s)
{
    ddb_scan_t *sc = (ddb_scan_t *)s;
    if (!sc)
        return;
    if (sc->started)
        duckdb_destroy_result(&sc->res);
    for (size_t i = 0; sc->pub.types && i < sc->pub.n_columns; i++) {
        duckdb_logical_type t = sc->pub.types[i];
        if (t)
            duckdb_destroy_logical_type(&t);
    }
    free(sc->pub.types);
    if (sc->ps)
        duckdb_destroy_prepare(&sc->ps);
    ddb_use_end(&sc->u);
    free(sc);
}

ds_status_t ddb_table_scan_open(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                                const ds_export_t *in, ds_be_scan_t **out)
{
    be_t *be = self;
    ds_be_table_t t = {0};
    ds_buf_t sql = {0};
    *out = NULL;
    ddb_scan_t *sc = calloc(1, sizeof(*sc));
    if (!sc)
        return ddb_oom(call->err);
    /* A SELECT only: its end leaves the cached previews valid. */
    ds_status_t st = ddb_use_begin_read(be, call, &sc->u);
    if (st != DS_OK) {
        free(sc);
        return st;
    }
    ds_ddb_unwatch(sc->u.conn);
    sc->pub.next = scan_next;
    sc->pub.close = scan_close;
    st = ddb_table_describe_read(&sc->u, call, bucket, table, &t);
    if (st == DS_OK)
        st = build_select(&sc->u, call, &t, in->columns, in->n_columns, false, in->order, in->n_order, &in->where,
                          in->limit, &sql, &sc->pub.names, NULL, &sc->pub.n_columns);
    if (st == DS_OK && !ds_buf_cstr(&sql))
        st = ddb_oom(call->err);
    if (st == DS_OK && duckdb_prepare(sc->u.conn, ds_buf_cstr(&sql), &sc->ps) == DuckDBError)
        st = ds_ddb_error(call->err, DUCKDB_ERROR_PARSER, duckdb_prepare_error(sc->ps));
    if (st == DS_OK) {
        sc->pub.types = calloc(sc->pub.n_columns ? sc->pub.n_columns : 1, sizeof(void *));
        if (!sc->pub.types)
            st = ddb_oom(call->err);
        for (size_t i = 0; st == DS_OK && i < sc->pub.n_columns; i++)
            sc->pub.types[i] = duckdb_prepared_statement_column_logical_type(sc->ps, (idx_t)i);
    }
    ds_buf_free(&sql);
    if (st != DS_OK) {
        scan_close(&sc->pub);
        return st;
    }
    *out = &sc->pub;
    return DS_OK;
}
