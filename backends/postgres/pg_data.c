/*
 * pg_data.c - table data in the PostgreSQL backend: import, export, preview,
 * profile, delete rows and schema changes, with the same semantics as the
 * DuckDB backend (see the DESIGN block of backends/duckdb/data.c).
 *
 * DESIGN
 * Import runs in three phases on one pooled connection:
 *   1. stage: CSV files stream through COPY ... FROM STDIN into the
 *      session-local temp table __ds_raw (one text column per source column,
 *      values exactly as written: FORCE_NOT_NULL, so nothing reads as NULL;
 *      __rn numbers the rows in file order). gzip is decompressed here (zlib
 *      reads plain files as they are). Keboola's null conversions then build
 *      __ds_src, one text column per loaded column plus __rn and __ts.
 *      A table source is read into __ds_src the same way, as text.
 *      Reader errors (unterminated quotes, wrong column count, invalid UTF-8)
 *      are the user's: 400.
 *   2. check: column sets are compared (every missing and unexpected column
 *      named at once); every value bound for a typed column is cast in one
 *      pass, and when one does not fit, the first such value is reported by
 *      row and column (found with _duckstore.castable, only on that path);
 *      duplicate keys are checked for fail_on_duplicates.
 *   3. load: one transaction adds new columns (string tables), deletes all
 *      rows (full load) or the rows being replaced (incremental upsert; on
 *      string tables only those whose values change), inserts, and updates
 *      the table's metadata. Any failure rolls back.
 *
 * Keys are compared with "=" for the hash joins PostgreSQL can use, plus a
 * NULL-safe pass restricted to rows whose key has a NULL, so the result is
 * the DuckDB backend's IS NOT DISTINCT FROM semantics.
 *
 * _timestamp: current_time stamps inserted rows with the import's time (UTC);
 * none leaves it NULL; from_source takes the source's timestamp column.
 *
 * Values are shown as the DuckDB backend shows them (booleans true/false,
 * timestamps in UTC); text sorts byte-wise (COLLATE "C") and NULLs sort last,
 * as in DuckDB.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zlib.h>

#include "pg.h"

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define H(u) ((u)->be->host)

static ds_status_t fail(pg_use_t *u, ds_status_t st, int kbc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static ds_status_t fail(pg_use_t *u, ds_status_t st, int kbc, const char *fmt, ...)
{
    char msg[DS_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    H(u)->err_set(u->err, st, "%s", msg);
    u->err->keboola_code = kbc;
    return st;
}

/* Appends the physical name of logical column name, quoted, after prefix ("t." or ""). */
static void pb_col(pgbuf_t *b, const char *prefix, const char *name)
{
    char phys[PG_NAME_MAX + 1];
    pg_phys_name(name, phys);
    pb_puts(b, prefix);
    pb_ident(b, phys);
}

static int find_col(const ds_be_table_t *t, const char *name)
{
    for (size_t i = 0; name && i < t->n_columns; i++)
        if (strcasecmp(t->columns[i].name, name) == 0)
            return (int)i;
    return -1;
}

static bool is_ts(const char *name) { return name && strcasecmp(name, "_timestamp") == 0; }

/* Table and column names as the core accepts them (core/ident.c). */
static bool valid_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    bool digits = true;
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)name[i]) && name[i] != '_')
            return false;
        digits = digits && isdigit((unsigned char)name[i]);
    }
    return !digits && strncasecmp(name, "_ds", 3) != 0 && !is_ts(name);
}

/* ---- data_type names (filters, ordering): the core's grammar, mapped to PostgreSQL ---- */

static const struct {
    const char *alias, *canonical;
} type_aliases[] = {
    {"VARCHAR", "VARCHAR"},     {"STRING", "VARCHAR"},      {"TEXT", "VARCHAR"},       {"CHAR", "VARCHAR"},
    {"BPCHAR", "VARCHAR"},      {"INTEGER", "INTEGER"},     {"INT", "INTEGER"},        {"INT4", "INTEGER"},
    {"BIGINT", "BIGINT"},       {"INT8", "BIGINT"},         {"LONG", "BIGINT"},        {"SMALLINT", "SMALLINT"},
    {"INT2", "SMALLINT"},       {"TINYINT", "TINYINT"},     {"HUGEINT", "HUGEINT"},    {"UBIGINT", "UBIGINT"},
    {"UINTEGER", "UINTEGER"},   {"DOUBLE", "DOUBLE"},       {"FLOAT8", "DOUBLE"},      {"FLOAT", "DOUBLE"},
    {"DOUBLE PRECISION", "DOUBLE"}, {"REAL", "FLOAT"},      {"FLOAT4", "FLOAT"},       {"BOOLEAN", "BOOLEAN"},
    {"BOOL", "BOOLEAN"},        {"LOGICAL", "BOOLEAN"},     {"DATE", "DATE"},          {"TIMESTAMP", "TIMESTAMP"},
    {"DATETIME", "TIMESTAMP"},  {"TIMESTAMP_NTZ", "TIMESTAMP"}, {"TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE"},
    {"TIMESTAMP_TZ", "TIMESTAMP WITH TIME ZONE"}, {"TIMESTAMP WITH TIME ZONE", "TIMESTAMP WITH TIME ZONE"},
    {"TIME", "TIME"},           {"INTERVAL", "INTERVAL"},   {"UUID", "UUID"},          {"BLOB", "BLOB"},
    {"BINARY", "BLOB"},         {"VARBINARY", "BLOB"},      {"JSON", "JSON"},
};

/* The PostgreSQL type for a filter's data_type, into buf; DS_INVALID_ARGUMENT naming the column otherwise. */
static ds_status_t data_type_pg(pg_use_t *u, const char *in, const char *column, char *buf, size_t bufsz)
{
    char norm[96], base[96];
    size_t o = 0;
    bool space = false;
    for (const char *p = in ? in : ""; *p && o + 2 < sizeof(norm); p++) {
        if (isspace((unsigned char)*p)) {
            space = o > 0;
            continue;
        }
        if (space && *p != '(' && *p != ')' && *p != ',' && norm[o - 1] != '(' && norm[o - 1] != ',')
            norm[o++] = ' ';
        space = false;
        norm[o++] = (char)toupper((unsigned char)*p);
    }
    norm[o] = '\0';
    char *paren = strchr(norm, '(');
    snprintf(base, sizeof(base), "%.*s", paren ? (int)(paren - norm) : (int)strlen(norm), norm);
    if (strcmp(base, "DECIMAL") == 0 || strcmp(base, "NUMERIC") == 0 || strcmp(base, "NUMBER") == 0) {
        int p = 38, s = 9, n = paren ? sscanf(paren, "(%d,%d)", &p, &s) : 0;
        if (n == 1)
            s = 0;
        if (p < 1 || p > 38 || s < 0 || s > p)
            return fail(u, DS_INVALID_ARGUMENT, 0, "column \"%s\": DECIMAL precision must be 1-38 and scale 0-precision",
                        column);
        snprintf(buf, bufsz, "numeric(%d,%d)", p, s);
        return DS_OK;
    }
    for (size_t i = 0; i < sizeof(type_aliases) / sizeof(type_aliases[0]); i++)
        if (strcmp(base, type_aliases[i].alias) == 0 && pg_type_of(type_aliases[i].canonical, buf, bufsz))
            return DS_OK;
    return fail(u, DS_INVALID_ARGUMENT, 0, "column \"%s\": unknown type \"%.64s\"", column, in ? in : "");
}

/* ---- filters, selects ---- */

static const char *op_sql[] = {"=", "<>", ">", ">=", "<", "<="};

/* Appends a column reference for comparing or sorting: as stored, or converted to data_type (NULL when it does not convert). */
static ds_status_t operand(pg_use_t *u, pgbuf_t *b, const pg_table_t *table, const ds_be_table_t *t,
                           const char *column, const char *data_type, char *pgtype, size_t pgtypesz, bool sorting)
{
    int ci = find_col(t, column);
    const char *canonical = ci >= 0 ? t->columns[ci].type : "TIMESTAMP";
    pgtype[0] = '\0';
    if (!data_type) {
        /* Qualified when sorting: a bare name would sort by the select list's text rendering of it. */
        if (sorting && table) {
            pb_qualified(b, table->schema, table->phys);
            pb_puts(b, ".");
        }
        pb_col(b, "", column);
        if (sorting && pg_type_is_string(canonical))
            pb_puts(b, " COLLATE \"C\"");
        return DS_OK;
    }
    ds_status_t st = data_type_pg(u, data_type, column, pgtype, pgtypesz);
    if (st != DS_OK)
        return st;
    pb_puts(b, PG_META ".try_cast(");
    pg_text_expr(b, "", ci >= 0 ? t->columns[ci].name : "_timestamp", canonical);
    pb_printf(b, ", CAST(NULL AS %s))", pgtype);
    if (sorting && strcmp(pgtype, "text") == 0)
        pb_puts(b, " COLLATE \"C\"");
    return DS_OK;
}

/*
 * A filter value that does not convert to the type it is compared in
 * (pgtype, or else the column's canonical type) is named here, asked of
 * PostgreSQL with the metadata schema's try_cast, instead of failing the
 * statement with PostgreSQL's own wording. Numbers, text: nothing to check.
 */
static ds_status_t check_filter_value(pg_use_t *u, const char *col, const char *v, const char *pgtype,
                                      const char *canonical)
{
    char own[64];
    const char *type = pgtype;
    if (!type[0]) {
        if (!canonical || pg_type_is_string(canonical))
            return DS_OK;
        ds_status_t st = data_type_pg(u, canonical, col, own, sizeof(own));
        if (st != DS_OK)
            return st;
        type = own;
    }
    if (strcmp(type, "text") == 0 || strncmp(type, "numeric", 7) == 0 || strcmp(type, "bigint") == 0 ||
        strcmp(type, "integer") == 0 || strcmp(type, "smallint") == 0 || strcmp(type, "double precision") == 0 ||
        strcmp(type, "real") == 0)
        return DS_OK;
    char what[320];
    snprintf(what, sizeof(what), "filter on \"%.256s\"", col);
    return pg_check_value(u, what, v, type);
}

static void filter_value(pgbuf_t *b, const char *v, const char *pgtype)
{
    if (!pgtype[0]) {
        pb_literal(b, v);
        return;
    }
    pb_puts(b, "CAST(");
    pb_literal(b, v);
    pb_printf(b, " AS %s)", pgtype);
}

/*
 * A changedSince/Until bound. The host gives every form a client may use as one
 * UTC text "YYYY-MM-DD HH:MM:SS.ffffff" (ds_where_t), so it is a plain literal.
 */
static void ts_literal(pgbuf_t *b, const char *v)
{
    pb_puts(b, "CAST(");
    pb_literal(b, v);
    pb_puts(b, " AS timestamp)");
}

/* Appends the WHERE clause for w over t; ref is the IN filter's table (described) or NULL. */
static ds_status_t append_where(pg_use_t *u, const pg_table_t *pt, const ds_where_t *w, const pg_table_t *ref, pgbuf_t *b)
{
    const ds_be_table_t *t = &pt->t;
    bool first = true;
#define AND() (pb_puts(b, first ? " WHERE " : " AND "), first = false)
    if (!w)
        return DS_OK;
    for (size_t i = 0; i < w->n_filters; i++) {
        const ds_filter_t *f = &w->filters[i];
        int ci = find_col(t, f->column);
        if (ci < 0 && !is_ts(f->column))
            return fail(u, DS_INVALID_ARGUMENT, DS_KBC_COLUMN_NOT_FOUND,
                        "filter column \"%s\" is not a column of the table", f->column ? f->column : "");
        const char *col = ci >= 0 ? t->columns[ci].name : "_timestamp";
        if ((int)f->op < 0 || (int)f->op > DS_OP_LE)
            return fail(u, DS_INVALID_ARGUMENT, 0, "filter on \"%s\": unknown operator", col);
        if (f->n_values == 0)
            return fail(u, DS_INVALID_ARGUMENT, 0, "filter on \"%s\": at least one value is needed", col);
        if (f->n_values > 1 && f->op != DS_OP_EQ && f->op != DS_OP_NE)
            return fail(u, DS_INVALID_ARGUMENT, 0,
                        "filter on \"%s\": operator %s takes exactly one value (several values work with eq and ne)", col,
                        op_sql[f->op]);
        char pgtype[64];
        AND();
        pb_puts(b, "(");
        ds_status_t st = operand(u, b, pt, t, col, f->data_type, pgtype, sizeof(pgtype), false);
        if (st != DS_OK)
            return st;
        for (size_t k = 0; k < f->n_values; k++)
            if ((st = check_filter_value(u, col, f->values[k], pgtype, ci >= 0 ? t->columns[ci].type : "TIMESTAMP")) !=
                DS_OK)
                return st;
        if (f->n_values > 1) {
            pb_puts(b, f->op == DS_OP_EQ ? " IN (" : " NOT IN (");
            for (size_t k = 0; k < f->n_values; k++) {
                if (k)
                    pb_puts(b, ", ");
                filter_value(b, f->values[k], pgtype);
            }
            pb_puts(b, ")");
        } else {
            pb_printf(b, " %s ", op_sql[f->op]);
            filter_value(b, f->values[0], pgtype);
        }
        pb_puts(b, ")");
    }
    if (w->changed_since) {
        AND();
        pb_puts(b, "\"_timestamp\" >= ");
        ts_literal(b, w->changed_since);
    }
    if (w->changed_until) {
        AND();
        pb_puts(b, "\"_timestamp\" < ");
        ts_literal(b, w->changed_until);
    }
    if (w->in_column) {
        int ci = find_col(t, w->in_column);
        if (ci < 0)
            return fail(u, DS_INVALID_ARGUMENT, DS_KBC_COLUMN_NOT_FOUND, "column \"%s\" is not a column of the table",
                        w->in_column);
        int ri = ref ? find_col(&ref->t, w->in_ref_column) : -1;
        if (!ref || ri < 0)
            return fail(u, DS_INVALID_ARGUMENT, 0, "an IN filter needs the reference table and column");
        AND();
        pb_col(b, "", t->columns[ci].name);
        pb_puts(b, w->in_negate ? " NOT IN (SELECT " : " IN (SELECT ");
        pb_col(b, "", ref->t.columns[ri].name);
        pb_puts(b, " FROM ");
        pb_qualified(b, ref->schema, ref->phys);
        pb_puts(b, " WHERE ");
        pb_col(b, "", ref->t.columns[ri].name);
        pb_puts(b, " IS NOT NULL)");
    }
#undef AND
    return DS_OK;
}

/* SELECT <columns> FROM table WHERE ... ORDER BY ... LIMIT ...; names/types (arena) describe the columns. */
static ds_status_t build_select(pg_use_t *u, const pg_table_t *pt, const char *const *cols, size_t n, bool as_text,
                                const ds_order_t *order, size_t n_order, const ds_where_t *where, int64_t limit,
                                pgbuf_t *sql, const char ***names_out, const char ***types_out, size_t *n_out)
{
    const ds_be_table_t *t = &pt->t;
    size_t count = n ? n : t->n_columns;
    const char **names = H(u)->alloc(u->call, sizeof(char *) * (count ? count : 1));
    const char **types = H(u)->alloc(u->call, sizeof(char *) * (count ? count : 1));
    if (!names || !types)
        return fail(u, DS_UNAVAILABLE, 0, "out of memory; the request was not carried out");
    pb_puts(sql, "SELECT ");
    for (size_t i = 0; i < count; i++) {
        const char *name, *type;
        if (n) {
            int ci = find_col(t, cols[i]);
            if (ci >= 0) {
                name = t->columns[ci].name;
                type = t->columns[ci].type;
            } else if (is_ts(cols[i])) {
                name = "_timestamp";
                type = "TIMESTAMP";
            } else {
                return fail(u, DS_INVALID_ARGUMENT, DS_KBC_COLUMN_NOT_FOUND, "column \"%s\" is not a column of the table",
                            cols[i]);
            }
        } else {
            name = t->columns[i].name;
            type = t->columns[i].type;
        }
        if (i)
            pb_puts(sql, ", ");
        if (as_text) {
            char phys[PG_NAME_MAX + 1];
            pg_phys_name(name, phys);
            pg_text_expr(sql, "", phys, type);
        } else {
            pb_col(sql, "", name);
        }
        pb_puts(sql, " AS ");
        pb_ident(sql, name);
        names[i] = name;
        types[i] = type;
    }
    if (count == 0)
        pb_puts(sql, "1");
    pb_puts(sql, " FROM ");
    pb_qualified(sql, pt->schema, pt->phys);
    ds_status_t st = append_where(u, pt, where, NULL, sql);
    if (st != DS_OK)
        return st;
    for (size_t i = 0; i < n_order; i++) {
        const char *c = order[i].column;
        int ci = find_col(t, c);
        if (ci < 0 && !is_ts(c))
            return fail(u, DS_INVALID_ARGUMENT, DS_KBC_COLUMN_NOT_FOUND, "order column \"%s\" is not a column of the table",
                        c ? c : "");
        char pgtype[64];
        pb_puts(sql, i ? ", " : " ORDER BY ");
        if ((st = operand(u, sql, pt, t, ci >= 0 ? t->columns[ci].name : "_timestamp", order[i].data_type, pgtype,
                          sizeof(pgtype), true)) != DS_OK)
            return st;
        pb_puts(sql, order[i].desc ? " DESC NULLS LAST" : " ASC NULLS LAST");
    }
    if (limit > 0)
        pb_printf(sql, " LIMIT %lld", (long long)limit);
    if (names_out)
        *names_out = names;
    if (types_out)
        *types_out = types;
    if (n_out)
        *n_out = count;
    return DS_OK;
}


/* ---- import ---- */

typedef struct {
    pg_use_t *u;
    const char *bucket;
    const char *table;
    const ds_import_t *in;
    const char *const *paths;
    size_t n_paths;
    pg_table_t t; /* the destination as it is (or will be created) */
    bool exists;
    bool string_table;
    bool recreate;
    const char **src; /* source column names, source order */
    size_t n_src;
    const char **dst; /* destination column per source column (NULL: not loaded) */
    const char **add; /* columns to add (string tables) */
    size_t n_add;
    const char *ts_src;
    const char **key; /* dedup key (destination names) */
    size_t n_key;
    pg_table_t srct; /* import from table: the source */
    int64_t staged_rows;
} imp_t;

static ds_status_t describe_source(imp_t *m)
{
    pg_use_t *u = m->u;
    const ds_import_t *in = m->in;
    ds_status_t st;
    if (in->src_table) {
        if ((st = pg_table_describe(u, in->src_bucket, in->src_table, &m->srct)) != DS_OK)
            return st;
        const ds_be_table_t *s = &m->srct.t;
        if (in->n_mapping) {
            m->src = H(u)->alloc(u->call, sizeof(char *) * in->n_mapping);
            if (!m->src)
                return fail(u, DS_UNAVAILABLE, 0, "out of memory; the request was not carried out");
            for (size_t i = 0; i < in->n_mapping; i++) {
                int ci = find_col(s, in->src_columns[i]);
                if (ci < 0 && !is_ts(in->src_columns[i]))
                    return fail(u, DS_INVALID_ARGUMENT, DS_KBC_COLUMN_NOT_FOUND,
                                "source column \"%s\" is not a column of %s.%s", in->src_columns[i], in->src_bucket,
                                in->src_table);
                m->src[i] = ci >= 0 ? s->columns[ci].name : "_timestamp";
            }
            m->n_src = in->n_mapping;
        } else {
            m->src = H(u)->alloc(u->call, sizeof(char *) * (s->n_columns ? s->n_columns : 1));
            if (!m->src)
                return fail(u, DS_UNAVAILABLE, 0, "out of memory; the request was not carried out");
            for (size_t i = 0; i < s->n_columns; i++)
                m->src[i] = s->columns[i].name;
            m->n_src = s->n_columns;
        }
        return DS_OK;
    }
    if (m->n_paths == 0)
        return fail(u, DS_NOT_FOUND, DS_KBC_FILE_NOT_FOUND, "the file to import holds no data files");
    if (in->format != DS_FORMAT_CSV)
        return fail(u, DS_UNSUPPORTED, 0, "backend \"%s\" imports CSV only", PG_BACKEND);
    const ds_csv_opts_t *o = &in->csv;
    if (o->n_columns) {
        m->src = o->columns;
        m->n_src = o->n_columns;
    } else if ((st = H(u)->csv_header(u->call, m->paths[0], o, &m->src, &m->n_src)) != DS_OK) {
        return st;
    }
    for (size_t i = 0; i < m->n_src; i++)
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(m->src[i], m->src[j]) == 0)
                return fail(u, DS_INVALID_ARGUMENT, 4102, "the file names column \"%s\" twice", m->src[i]);
    return DS_OK;
}

static bool in_list(const char *const *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(list[i], name) == 0)
            return true;
    return false;
}

static ds_status_t match_columns(imp_t *m)
{
    pg_use_t *u = m->u;
    const ds_import_t *in = m->in;
    const char *ts_name = in->timestamp_column && *in->timestamp_column ? in->timestamp_column : "_timestamp";
    m->dst = H(u)->alloc(u->call, sizeof(char *) * (m->n_src ? m->n_src : 1));
    m->add = H(u)->alloc(u->call, sizeof(char *) * (m->n_src ? m->n_src : 1));
    if (!m->dst || !m->add)
        return fail(u, DS_UNAVAILABLE, 0, "out of memory; the request was not carried out");
    pgbuf_t missing = {0}, unexpected = {0};
    ds_status_t st = DS_OK;
    for (size_t i = 0; i < m->n_src && st == DS_OK; i++) {
        const char *want = in->src_table && in->n_mapping && in->dst_columns ? in->dst_columns[i] : m->src[i];
        if (in->timestamp_mode == DS_TS_FROM_SOURCE && strcasecmp(m->src[i], ts_name) == 0) {
            m->ts_src = m->src[i];
            continue;
        }
        if (is_ts(want))
            continue;
        if (!valid_name(want)) {
            st = fail(u, DS_INVALID_ARGUMENT, 4101, "the source has an invalid column name \"%.80s\"", want);
            break;
        }
        for (size_t j = 0; j < i && st == DS_OK; j++)
            if (m->dst[j] && strcasecmp(m->dst[j], want) == 0)
                st = fail(u, DS_INVALID_ARGUMENT, 4102, "column \"%s\" appears twice in the source", want);
        if (st != DS_OK)
            break;
        int ci = m->recreate ? -1 : find_col(&m->t.t, want);
        if (ci >= 0) {
            m->dst[i] = m->t.t.columns[ci].name;
        } else {
            m->dst[i] = want;
            if (!m->recreate) {
                m->add[m->n_add++] = want;
                pb_printf(&unexpected, "%s\"%s\"", unexpected.len ? ", " : "", want);
            }
        }
    }
    if (st == DS_OK && in->timestamp_mode == DS_TS_FROM_SOURCE && !m->ts_src)
        st = fail(u, DS_INVALID_ARGUMENT, 0, "timestamp mode from_source needs a \"%s\" column in the source", ts_name);
    if (st == DS_OK && !m->recreate)
        for (size_t c = 0; c < m->t.t.n_columns; c++) {
            bool found = false;
            for (size_t i = 0; i < m->n_src && !found; i++)
                found = m->dst[i] && strcasecmp(m->dst[i], m->t.t.columns[c].name) == 0;
            if (!found)
                pb_printf(&missing, "%s\"%s\"", missing.len ? ", " : "", m->t.t.columns[c].name);
        }
    if (st == DS_OK && (missing.len || (unexpected.len && !m->string_table))) {
        pgbuf_t msg = {0};
        if (missing.len)
            pb_printf(&msg, "Some columns are missing in the source: %s", pb_text(&missing));
        if (unexpected.len && !m->string_table)
            pb_printf(&msg, "%sthe source has columns the typed table %s.%s does not: %s", msg.len ? "; " : "", m->bucket,
                      m->table, pb_text(&unexpected));
        st = fail(u, DS_INVALID_ARGUMENT, DS_KBC_COLUMNS_MISMATCH, "%s", pb_text(&msg));
        pb_free(&msg);
    }
    pb_free(&missing);
    pb_free(&unexpected);
    return st;
}

static const char *dst_type(const imp_t *m, const char *name)
{
    int ci = m->recreate ? -1 : find_col(&m->t.t, name);
    return ci >= 0 ? m->t.t.columns[ci].type : "VARCHAR";
}

static const char *dst_pgtype(const imp_t *m, const char *name, char *buf, size_t bufsz)
{
    const char *t = pg_type_of(dst_type(m, name), buf, bufsz);
    return t ? t : "text";
}

/* Streams one file (after skip lines; gzip or plain) into the COPY in progress on u. */
static ds_status_t copy_file(imp_t *m, const char *path)
{
    pg_use_t *u = m->u;
    gzFile f = gzopen(path, "rb");
    if (!f) {
        PQputCopyEnd(u->c, "cannot open the file");
        return fail(u, DS_NOT_FOUND, DS_KBC_FILE_NOT_FOUND, "cannot open the file to import");
    }
    gzbuffer(f, 1 << 17);
    char buf[1 << 16];
    int64_t skip = m->in->csv.skip_lines;
    int n;
    while ((n = gzread(f, buf, sizeof(buf))) > 0) {
        char *p = buf;
        while (skip > 0 && n > 0) {
            char *nl = memchr(p, '\n', (size_t)n);
            if (!nl) {
                n = 0;
                break;
            }
            n -= (int)(nl + 1 - p);
            p = nl + 1;
            skip--;
        }
        if (n > 0 && PQputCopyData(u->c, p, n) != 1)
            break;
    }
    int gzerr = 0;
    const char *gzmsg = n < 0 ? gzerror(f, &gzerr) : NULL;
    char why[256];
    snprintf(why, sizeof(why), "%s", gzmsg ? gzmsg : "");
    gzclose(f);
    if (n < 0) {
        PQputCopyEnd(u->c, "the file could not be read");
        PGresult *r;
        while ((r = PQgetResult(u->c)))
            PQclear(r);
        return fail(u, DS_INVALID_ARGUMENT, DS_KBC_INVALID_SOURCE_DATA, "cannot read the source: %s", why);
    }
    return DS_OK;
}

/* COPY every file into __ds_raw (c0..cN text), in order. */
static ds_status_t stage_files(imp_t *m)
{
    pg_use_t *u = m->u;
    const ds_csv_opts_t *o = &m->in->csv;
    pgbuf_t sql = {0}, cols = {0};
    for (size_t i = 0; i < m->n_src; i++)
        pb_printf(&cols, "%s\"c%zu\"", i ? ", " : "", i);
    pb_puts(&sql, "DROP TABLE IF EXISTS pg_temp.__ds_raw; CREATE TEMP TABLE __ds_raw (\"__rn\" bigint GENERATED ALWAYS "
                  "AS IDENTITY");
    for (size_t i = 0; i < m->n_src; i++)
        pb_printf(&sql, ", \"c%zu\" text", i);
    pb_puts(&sql, ")");
    ds_status_t st = pg_exec(u, pb_cstr(&sql));
    char delim[2] = {o->delimiter[0] ? o->delimiter[0] : ',', 0};
    char quote[2] = {o->enclosure[0] ? o->enclosure[0] : '\x01', 0};
    char esc[2] = {o->escaped_by[0] ? o->escaped_by[0] : quote[0], 0};
    if (st == DS_OK && cols.oom)
        st = fail(u, DS_UNAVAILABLE, 0, "out of memory while building an SQL statement; nothing was run");
    for (size_t p = 0; st == DS_OK && p < m->n_paths; p++) {
        pb_reset(&sql);
        pb_printf(&sql, "COPY __ds_raw (%s) FROM STDIN WITH (FORMAT csv, HEADER %s, DELIMITER ", pb_cstr(&cols),
                  o->n_columns ? "false" : "true");
        pb_literal(&sql, delim);
        pb_puts(&sql, ", QUOTE ");
        pb_literal(&sql, quote);
        pb_puts(&sql, ", ESCAPE ");
        pb_literal(&sql, esc);
        pb_printf(&sql, ", FORCE_NOT_NULL (%s))", pb_cstr(&cols));
        if (sql.oom) {
            st = fail(u, DS_UNAVAILABLE, 0, "out of memory while building an SQL statement; nothing was run");
            break;
        }
        PGresult *r = PQexec(u->c, pb_cstr(&sql));
        if (PQresultStatus(r) != PGRES_COPY_IN) {
            PQclear(r);
            st = pg_run(u, NULL, "SELECT 1", 0, NULL) == DS_OK
                     ? fail(u, DS_INTERNAL, 0, "PostgreSQL did not start the COPY: %s", PQerrorMessage(u->c))
                     : u->err->status;
            break;
        }
        PQclear(r);
        st = copy_file(m, m->paths[p]);
        if (st != DS_OK) {
            /* copy_file ended the COPY with an error; drain its result. */
            while ((r = PQgetResult(u->c)))
                PQclear(r);
            break;
        }
        if (PQputCopyEnd(u->c, NULL) != 1) {
            pg_connection_lost(u, PQerrorMessage(u->c));
            st = fail(u, DS_UNAVAILABLE, 0, "PostgreSQL backend \"%s\" is unavailable: the connection broke during COPY",
                      PG_BACKEND);
            break;
        }
        while ((r = PQgetResult(u->c))) {
            if (PQresultStatus(r) != PGRES_COMMAND_OK && st == DS_OK) {
                const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
                const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
                const char *ctx = PQresultErrorField(r, PG_DIAG_CONTEXT);
                if (!state || strncmp(state, "08", 2) == 0 || PQstatus(u->c) == CONNECTION_BAD) {
                    pg_connection_lost(u, msg ? msg : PQerrorMessage(u->c));
                    st = fail(u, DS_UNAVAILABLE, 0, "PostgreSQL backend \"%s\" is unavailable: %s", PG_BACKEND,
                              msg ? msg : "connection lost");
                } else {
                    /* The context names the line ("COPY __ds_raw, line 3, column c1"): keep the line, not our names. */
                    char where[128] = "";
                    const char *line = ctx ? strstr(ctx, "line ") : NULL;
                    if (line) {
                        size_t l = strcspn(line, ",:\n");
                        snprintf(where, sizeof(where), " (%.*s)", (int)l, line);
                    }
                    st = fail(u, DS_INVALID_ARGUMENT, DS_KBC_INVALID_SOURCE_DATA, "cannot read the source%s: %s", where,
                              msg ? msg : "invalid CSV");
                }
            }
            PQclear(r);
        }
    }
    pb_free(&sql);
    pb_free(&cols);
    return st;
}

/* Appends the staged value expression of source column i (Keboola's null conversions). */
static void staged_expr(imp_t *m, pgbuf_t *b, size_t i, const char *v)
{
    const ds_import_t *in = m->in;
    bool text_source = !in->src_table;
    bool string_dst = pg_type_is_string(dst_type(m, m->dst[i]));
    bool as_null = in->n_import_as_null > 0 && (text_source || string_dst);
    bool empty_null = in_list(in->convert_empty_to_null, in->n_convert_empty_to_null, m->dst[i]) ||
                      (text_source && !string_dst);
    if (as_null) {
        pb_printf(b, "CASE WHEN %s IN (", v);
        for (size_t k = 0; k < in->n_import_as_null; k++) {
            if (k)
                pb_puts(b, ", ");
            pb_literal(b, in->import_as_null[k]);
        }
        pb_puts(b, ") THEN NULL ELSE ");
    }
    if (empty_null && (text_source || string_dst))
        pb_printf(b, "NULLIF(%s, '')", v);
    else
        pb_puts(b, v);
    if (as_null)
        pb_puts(b, " END");
}

/* Builds __ds_src: "__rn", one text column per loaded column (destination physical name), "__ts". */
static ds_status_t stage(imp_t *m)
{
    pg_use_t *u = m->u;
    const ds_import_t *in = m->in;
    ds_status_t st = DS_OK;
    if (!in->src_table && (st = stage_files(m)) != DS_OK)
        return st;
    pgbuf_t sql = {0}, v = {0};
    pb_puts(&sql, "DROP TABLE IF EXISTS pg_temp.__ds_src; CREATE TEMP TABLE __ds_src AS SELECT ");
    pb_puts(&sql, in->src_table ? "row_number() OVER () AS \"__rn\"" : "\"__rn\"");
    for (size_t i = 0; i < m->n_src; i++) {
        if (!m->dst[i])
            continue;
        pb_reset(&v);
        if (in->src_table) {
            int ci = find_col(&m->srct.t, m->src[i]);
            char phys[PG_NAME_MAX + 1];
            pg_phys_name(m->src[i], phys);
            pg_text_expr(&v, "", phys, ci >= 0 ? m->srct.t.columns[ci].type : "TIMESTAMP");
        } else {
            pb_printf(&v, "\"c%zu\"", i);
        }
        pb_puts(&sql, ", ");
        if (v.oom)
            sql.oom = true;
        else
            staged_expr(m, &sql, i, pb_cstr(&v));
        pb_puts(&sql, " AS ");
        pb_col(&sql, "", m->dst[i]);
    }
    if (m->ts_src) {
        size_t ti = 0;
        while (ti < m->n_src && m->src[ti] != m->ts_src)
            ti++;
        pb_puts(&sql, ", ");
        if (in->src_table) {
            int ci = find_col(&m->srct.t, m->ts_src);
            char phys[PG_NAME_MAX + 1];
            pg_phys_name(m->ts_src, phys);
            pg_text_expr(&sql, "", phys, ci >= 0 ? m->srct.t.columns[ci].type : "TIMESTAMP");
        } else {
            pb_printf(&sql, "\"c%zu\"", ti);
        }
        pb_puts(&sql, " AS \"__ts\"");
    }
    pb_puts(&sql, " FROM ");
    if (in->src_table) {
        pb_qualified(&sql, m->srct.schema, m->srct.phys);
        st = append_where(u, &m->srct, &in->src_where, NULL, &sql);
        if (in->src_limit > 0)
            pb_printf(&sql, " LIMIT %lld", (long long)in->src_limit);
    } else {
        pb_puts(&sql, "__ds_raw");
    }
    if (st == DS_OK)
        st = pg_exec(u, pb_cstr(&sql));
    pb_free(&sql);
    pb_free(&v);
    if (st != DS_OK && st != DS_UNAVAILABLE && st != DS_INVALID_ARGUMENT)
        return fail(u, DS_INVALID_ARGUMENT, DS_KBC_INVALID_SOURCE_DATA, "cannot read the source: %s", u->err->message);
    if (st != DS_OK)
        return st;
    return pg_query_int(u, "SELECT count(*) FROM __ds_src", 0, NULL, &m->staged_rows);
}

/* Every value bound for a typed column converts; else the first that does not, by row and column. */
static ds_status_t check_types(imp_t *m)
{
    pg_use_t *u = m->u;
    pgbuf_t sql = {0};
    char tbuf[64];
    bool any = false;
    pb_puts(&sql, "SELECT count(*)");
    for (size_t i = 0; i < m->n_src; i++) {
        if (!m->dst[i] || pg_type_is_string(dst_type(m, m->dst[i])))
            continue;
        any = true;
        pb_puts(&sql, " + count(CAST(");
        pb_col(&sql, "", m->dst[i]);
        pb_printf(&sql, " AS %s))", dst_pgtype(m, m->dst[i], tbuf, sizeof(tbuf)));
    }
    pb_puts(&sql, " FROM __ds_src");
    ds_status_t st = DS_OK;
    int64_t ignored;
    if (any && (st = pg_query_int(u, pb_cstr(&sql), 0, NULL, &ignored)) != DS_OK && st != DS_UNAVAILABLE) {
        /* Find the first value that does not fit, column by column, as the DuckDB backend reports it. */
        ds_err_t first = *u->err;
        st = DS_OK;
        for (size_t i = 0; i < m->n_src && st == DS_OK; i++) {
            if (!m->dst[i] || pg_type_is_string(dst_type(m, m->dst[i])))
                continue;
            PGresult *r;
            const char *pgt = dst_pgtype(m, m->dst[i], tbuf, sizeof(tbuf));
            pb_reset(&sql);
            pb_puts(&sql, "SELECT \"__rn\", v FROM (SELECT \"__rn\", ");
            pb_col(&sql, "", m->dst[i]);
            pb_puts(&sql, " AS v FROM __ds_src) s WHERE v IS NOT NULL AND NOT " PG_META ".castable(v, ");
            pb_literal(&sql, pgt);
            pb_puts(&sql, ") ORDER BY \"__rn\" LIMIT 1");
            if ((st = pg_run(u, &r, pb_cstr(&sql), 0, NULL)) != DS_OK)
                break;
            if (PQntuples(r) > 0)
                st = fail(u, DS_INVALID_ARGUMENT, DS_KBC_DATA_TYPE_MISMATCH,
                          "row %lld, column \"%s\": value \"%.200s\" does not fit type %s", (long long)pg_cell_int(r, 0, 0),
                          m->dst[i], PQgetvalue(r, 0, 1), dst_type(m, m->dst[i]));
            PQclear(r);
        }
        if (st == DS_OK) {
            *u->err = first;
            st = first.status;
        }
    }
    if (st == DS_OK && m->ts_src) {
        if (pg_query_int(u, "SELECT count(CAST(\"__ts\" AS timestamp)) FROM __ds_src", 0, NULL, &ignored) != DS_OK) {
            int64_t bad = 0;
            if (u->err->status == DS_UNAVAILABLE)
                st = DS_UNAVAILABLE;
            else if ((st = pg_query_int(u,
                                        "SELECT count(*) FROM __ds_src WHERE \"__ts\" IS NOT NULL AND NOT " PG_META
                                        ".castable(\"__ts\", 'timestamp')",
                                        0, NULL, &bad)) == DS_OK)
                st = fail(u, DS_INVALID_ARGUMENT, DS_KBC_DATA_TYPE_MISMATCH,
                          "%lld values of the source's timestamp column are not timestamps", (long long)bad);
        }
    }
    pb_free(&sql);
    return st;
}

static ds_status_t resolve_key(imp_t *m)
{
    const ds_import_t *in = m->in;
    const char *const *cols = in->n_dedup_columns ? in->dedup_columns : m->t.t.primary_key;
    size_t n = in->n_dedup_columns ? in->n_dedup_columns : m->t.t.n_primary_key;
    m->key = H(m->u)->alloc(m->u->call, sizeof(char *) * (n ? n : 1));
    if (!m->key)
        return fail(m->u, DS_UNAVAILABLE, 0, "out of memory; the request was not carried out");
    for (size_t k = 0; k < n; k++) {
        const char *found = NULL;
        for (size_t i = 0; i < m->n_src && !found; i++)
            if (m->dst[i] && strcasecmp(m->dst[i], cols[k]) == 0)
                found = m->dst[i];
        if (!found)
            return fail(m->u, DS_INVALID_ARGUMENT, DS_KBC_COLUMN_NOT_FOUND,
                        "key column \"%s\" is not among the imported columns", cols[k]);
        m->key[k] = found;
    }
    m->n_key = n;
    return DS_OK;
}

/* "left.k1 = right.k1 AND ..." (nullsafe: IS NOT DISTINCT FROM). */
static void key_join(const imp_t *m, pgbuf_t *b, const char *left, const char *right, bool nullsafe)
{
    for (size_t k = 0; k < m->n_key; k++) {
        if (k)
            pb_puts(b, " AND ");
        pb_col(b, left, m->key[k]);
        pb_puts(b, nullsafe ? " IS NOT DISTINCT FROM " : " = ");
        pb_col(b, right, m->key[k]);
    }
}

/* "(p.k1 IS NULL OR p.k2 IS NULL)": the rows the "=" join cannot match. */
static void key_has_null(const imp_t *m, pgbuf_t *b, const char *prefix)
{
    pb_puts(b, "(");
    for (size_t k = 0; k < m->n_key; k++) {
        if (k)
            pb_puts(b, " OR ");
        pb_col(b, prefix, m->key[k]);
        pb_puts(b, " IS NULL");
    }
    pb_puts(b, ")");
}

static void describe_key(const imp_t *m, PGresult *r, pgbuf_t *b)
{
    for (size_t k = 0; k < m->n_key; k++)
        pb_printf(b, "%s%s=%s", k ? ", " : "", m->key[k], PQgetisnull(r, 0, (int)k) ? "NULL" : PQgetvalue(r, 0, (int)k));
}

static ds_status_t check_duplicates(imp_t *m)
{
    pg_use_t *u = m->u;
    pgbuf_t sql = {0}, list = {0};
    PGresult *r;
    char tbuf[64];
    for (size_t k = 0; k < m->n_key; k++) {
        if (k)
            pb_puts(&list, ", ");
        pb_col(&list, "", m->key[k]);
    }
    if (list.oom)
        sql.oom = true;
    else
        pb_printf(&sql, "SELECT %s FROM __ds_src GROUP BY %s HAVING count(*) > 1 LIMIT 1", pb_cstr(&list), pb_cstr(&list));
    ds_status_t st = pg_run(u, &r, pb_cstr(&sql), 0, NULL);
    if (st == DS_OK) {
        if (PQntuples(r) > 0) {
            pgbuf_t key = {0};
            describe_key(m, r, &key);
            st = fail(u, DS_INVALID_ARGUMENT, 0,
                      "duplicate primary key in the source (%s) and dedup type is fail_on_duplicates", pb_text(&key));
            pb_free(&key);
        }
        PQclear(r);
    }
    if (st == DS_OK && m->in->incremental && m->exists && !m->recreate) {
        pb_reset(&sql);
        pb_puts(&sql, "SELECT ");
        for (size_t k = 0; k < m->n_key; k++) {
            if (k)
                pb_puts(&sql, ", ");
            pb_col(&sql, "s.", m->key[k]);
        }
        pb_puts(&sql, " FROM __ds_src s WHERE EXISTS (SELECT 1 FROM ");
        pb_qualified(&sql, m->t.schema, m->t.phys);
        pb_puts(&sql, " t WHERE ");
        for (size_t k = 0; k < m->n_key; k++) {
            if (k)
                pb_puts(&sql, " AND ");
            pb_col(&sql, "t.", m->key[k]);
            pb_puts(&sql, " = CAST(");
            pb_col(&sql, "s.", m->key[k]);
            pb_printf(&sql, " AS %s)", dst_pgtype(m, m->key[k], tbuf, sizeof(tbuf)));
        }
        pb_puts(&sql, ") LIMIT 1");
        if ((st = pg_run(u, &r, pb_cstr(&sql), 0, NULL)) == DS_OK) {
            if (PQntuples(r) > 0) {
                pgbuf_t key = {0};
                describe_key(m, r, &key);
                st = fail(u, DS_INVALID_ARGUMENT, 0,
                          "primary key (%s) already exists in the table and dedup type is fail_on_duplicates",
                          pb_text(&key));
                pb_free(&key);
            }
            PQclear(r);
        }
    }
    pb_free(&sql);
    pb_free(&list);
    return st;
}

/* The typed, (optionally) deduplicated input rows with their _timestamp. */
static void input_query(const imp_t *m, pgbuf_t *b, bool dedup)
{
    char tbuf[64];
    pb_puts(b, "SELECT ");
    if (dedup && m->n_key) {
        pb_puts(b, "DISTINCT ON (");
        for (size_t k = 0; k < m->n_key; k++) {
            if (k)
                pb_puts(b, ", ");
            pb_col(b, "", m->key[k]);
        }
        pb_puts(b, ") ");
    }
    for (size_t i = 0; i < m->n_src; i++) {
        if (!m->dst[i])
            continue;
        pb_puts(b, "CAST(");
        pb_col(b, "", m->dst[i]);
        pb_printf(b, " AS %s) AS ", dst_pgtype(m, m->dst[i], tbuf, sizeof(tbuf)));
        pb_col(b, "", m->dst[i]);
        pb_puts(b, ", ");
    }
    switch (m->in->timestamp_mode) {
    case DS_TS_NONE:
        pb_puts(b, "CAST(NULL AS timestamp)");
        break;
    case DS_TS_FROM_SOURCE:
        pb_puts(b, "CAST(\"__ts\" AS timestamp)");
        break;
    default:
        pb_puts(b, "CAST(statement_timestamp() AT TIME ZONE 'UTC' AS timestamp)");
        break;
    }
    pb_puts(b, " AS \"_timestamp\" FROM __ds_src");
    if (dedup && m->n_key) {
        /* The first occurrence of each key wins, in file order. */
        pb_puts(b, " ORDER BY ");
        for (size_t k = 0; k < m->n_key; k++) {
            pb_col(b, "", m->key[k]);
            pb_puts(b, ", ");
        }
        pb_puts(b, "\"__rn\"");
    }
}

static void insert_head(const imp_t *m, pgbuf_t *b)
{
    pb_puts(b, "INSERT INTO ");
    pb_qualified(b, m->t.schema, m->t.phys);
    pb_puts(b, " (");
    for (size_t i = 0; i < m->n_src; i++) {
        if (!m->dst[i])
            continue;
        pb_col(b, "", m->dst[i]);
        pb_puts(b, ", ");
    }
    pb_puts(b, "\"_timestamp\") SELECT ");
    for (size_t i = 0; i < m->n_src; i++) {
        if (!m->dst[i])
            continue;
        pb_col(b, "n.", m->dst[i]);
        pb_puts(b, ", ");
    }
    pb_puts(b, "n.\"_timestamp\" FROM ");
}

static ds_status_t run_count(pg_use_t *u, const char *sql, int64_t *count)
{
    PGresult *r;
    ds_status_t st = pg_run(u, &r, sql, 0, NULL);
    if (st == DS_OK) {
        *count = strtoll(PQcmdTuples(r), NULL, 10);
        PQclear(r);
    }
    return st;
}

static ds_status_t create_destination(imp_t *m)
{
    pg_use_t *u = m->u;
    pgbuf_t sql = {0}, pk = {0};
    char now[32];
    snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
    pb_puts(&sql, "DROP TABLE IF EXISTS ");
    pb_qualified(&sql, m->t.schema, m->t.phys);
    pb_puts(&sql, "; CREATE TABLE ");
    pb_qualified(&sql, m->t.schema, m->t.phys);
    pb_puts(&sql, " (");
    for (size_t i = 0; i < m->n_src; i++) {
        if (!m->dst[i])
            continue;
        pb_col(&sql, "", m->dst[i]);
        pb_puts(&sql, " text, ");
    }
    pb_puts(&sql, "\"_timestamp\" timestamp)");
    ds_status_t st = pg_exec(u, pb_cstr(&sql));
    for (size_t i = 0; st == DS_OK && i < m->n_src; i++)
        if (m->dst[i])
            st = pg_column_comment(u, &m->t, m->dst[i], "VARCHAR", NULL);
    pb_puts(&pk, "{");
    for (size_t k = 0; k < m->n_key; k++)
        pb_printf(&pk, "%s%s", k ? "," : "", m->key[k]);
    pb_puts(&pk, "}");
    const char *params[] = {u->call->project_id, m->bucket, m->table, m->t.phys, pb_cstr(&pk), now};
    if (st == DS_OK && pk.oom)
        st = fail(u, DS_UNAVAILABLE, 0, "out of memory while building an SQL statement; nothing was run");
    if (st == DS_OK)
        st = pg_run(u, NULL, "DELETE FROM " PG_META ".tables WHERE project = $1 AND bucket = $2 AND name = $3", 3, params);
    if (st == DS_OK)
        st = pg_run(u, NULL,
                    "INSERT INTO " PG_META ".tables (project, bucket, name, phys, primary_key, created_at) "
                    "VALUES ($1, $2, $3, $4, CAST($5 AS text[]), CAST($6 AS bigint))",
                    6, params);
    if (st == DS_OK && m->n_key)
        st = pg_pk_index(u, &m->t, m->key, m->n_key);
    pb_free(&sql);
    pb_free(&pk);
    return st;
}

typedef struct {
    imp_t *m;
    int64_t loaded;
} load_t;

/*
 * The checks that decide whether the load may happen, run inside the load's
 * transaction (and so again on a retry). The destination is locked against
 * other writers first (SHARE ROW EXCLUSIVE: readers go on, a second importer
 * waits), so what the checks read cannot change before the commit:
 *   - the destination is the one the import was planned for (same columns,
 *     types and key), or, for a table to create, still absent;
 *   - FAIL_ON_DUPLICATES: no key twice in the input nor already in the table.
 * NOT NULL and the types themselves are enforced by PostgreSQL's constraints
 * and casts in the INSERT, in the same transaction.
 */
static ds_status_t check_in_txn(imp_t *m)
{
    pg_use_t *u = m->u;
    ds_status_t st = DS_OK;
    if (m->exists) {
        pgbuf_t sql = {0};
        pb_puts(&sql, "LOCK TABLE ");
        pb_qualified(&sql, m->t.schema, m->t.phys);
        pb_puts(&sql, " IN SHARE ROW EXCLUSIVE MODE");
        st = pg_exec(u, pb_cstr(&sql));
        pb_free(&sql);
        if (st != DS_OK)
            return st;
    }
    pg_table_t now = {0};
    st = pg_table_describe(u, m->bucket, m->table, &now);
    if (!m->exists) {
        if (st == DS_OK)
            return fail(u, DS_CONFLICT, 0, "table %s.%s was created by another request during the import", m->bucket,
                        m->table);
        if (st != DS_NOT_FOUND)
            return st;
        memset(u->err, 0, sizeof(*u->err));
        st = DS_OK;
    } else if (st != DS_OK) {
        return st;
    } else if (!m->recreate && !u->be->host->same_definition(&m->t.t, &now.t)) {
        return fail(u, DS_CONFLICT, 0, "table %s.%s changed during the import", m->bucket, m->table);
    }
    if (m->in->dedup == DS_DEDUP_FAIL && m->n_key)
        st = check_duplicates(m);
    return st;
}

static ds_status_t load_txn(pg_use_t *u, void *ud)
{
    load_t *l = ud;
    imp_t *m = l->m;
    const ds_import_t *in = m->in;
    ds_status_t st = DS_OK;
    pgbuf_t sql = {0};
    l->loaded = 0;
    if ((st = check_in_txn(m)) != DS_OK)
        return st;
    if (m->recreate)
        st = create_destination(m);
    for (size_t i = 0; i < m->n_add && st == DS_OK; i++) {
        pb_reset(&sql);
        pb_puts(&sql, "ALTER TABLE ");
        pb_qualified(&sql, m->t.schema, m->t.phys);
        pb_puts(&sql, " ADD COLUMN ");
        pb_col(&sql, "", m->add[i]);
        pb_puts(&sql, " text");
        st = pg_exec(u, pb_cstr(&sql));
        if (st == DS_OK)
            st = pg_column_comment(u, &m->t, m->add[i], "VARCHAR", NULL);
    }
    bool upsert = in->incremental && m->n_key > 0 && in->dedup == DS_DEDUP_UPDATE && m->exists && !m->recreate;
    bool dedup = m->n_key > 0 && in->dedup == DS_DEDUP_UPDATE;
    if (st == DS_OK && !in->incremental && m->exists && !m->recreate) {
        pb_reset(&sql);
        pb_puts(&sql, "DELETE FROM ");
        pb_qualified(&sql, m->t.schema, m->t.phys);
        st = pg_exec(u, pb_cstr(&sql));
    }
    if (st == DS_OK && upsert) {
        pb_reset(&sql);
        pb_puts(&sql, "DROP TABLE IF EXISTS pg_temp.__ds_new; CREATE TEMP TABLE __ds_new AS ");
        input_query(m, &sql, true);
        st = pg_exec(u, pb_cstr(&sql));
        /* Remove the rows being replaced (string tables: only those whose values change); "=" first, then NULL keys. */
        for (int pass = 0; pass < 2 && st == DS_OK; pass++) {
            pb_reset(&sql);
            pb_puts(&sql, "DELETE FROM ");
            pb_qualified(&sql, m->t.schema, m->t.phys);
            pb_puts(&sql, " t WHERE ");
            if (pass) {
                key_has_null(m, &sql, "t.");
                pb_puts(&sql, " AND ");
            }
            pb_puts(&sql, "EXISTS (SELECT 1 FROM __ds_new n WHERE ");
            key_join(m, &sql, "t.", "n.", pass == 1);
            if (m->string_table) {
                pb_puts(&sql, " AND (false");
                for (size_t i = 0; i < m->n_src; i++) {
                    if (!m->dst[i])
                        continue;
                    pb_puts(&sql, " OR ");
                    pb_col(&sql, "t.", m->dst[i]);
                    pb_puts(&sql, " IS DISTINCT FROM ");
                    pb_col(&sql, "n.", m->dst[i]);
                }
                pb_puts(&sql, ")");
            }
            pb_puts(&sql, ")");
            st = pg_exec(u, pb_cstr(&sql));
        }
        if (st == DS_OK) {
            pb_reset(&sql);
            insert_head(m, &sql);
            pb_puts(&sql, "__ds_new n WHERE NOT EXISTS (SELECT 1 FROM ");
            pb_qualified(&sql, m->t.schema, m->t.phys);
            pb_puts(&sql, " t WHERE ");
            key_join(m, &sql, "t.", "n.", false);
            pb_puts(&sql, ") AND (NOT ");
            key_has_null(m, &sql, "n.");
            pb_puts(&sql, " OR NOT EXISTS (SELECT 1 FROM ");
            pb_qualified(&sql, m->t.schema, m->t.phys);
            pb_puts(&sql, " t WHERE ");
            key_join(m, &sql, "t.", "n.", true);
            pb_puts(&sql, "))");
            st = run_count(u, pb_cstr(&sql), &l->loaded);
        }
    } else if (st == DS_OK) {
        pb_reset(&sql);
        insert_head(m, &sql);
        pb_puts(&sql, "(");
        input_query(m, &sql, dedup);
        pb_puts(&sql, ") n");
        st = run_count(u, pb_cstr(&sql), &l->loaded);
    }
    pb_free(&sql);
    if (st == DS_OK)
        st = pg_touch(u, m->bucket, m->table, true, l->loaded > 0 || !in->incremental);
    if (st == DS_OK)
        st = pg_idem_record(u, l->loaded);
    return st;
}

ds_status_t pg_table_import(void *self, ds_be_call_t *call, const char *bucket, const char *table, const ds_import_t *in,
                            const char *const *paths, size_t n_paths, ds_import_result_t *out)
{
    pg_use_t u;
    imp_t m = {0};
    char phys[PG_NAME_MAX + 1];
    double t0 = mono_s(), t1 = 0, t2 = 0;
    memset(out, 0, sizeof(*out));
    ds_status_t st = pg_use_begin(self, call, &u);
    if (st != DS_OK)
        return st;
    m.u = &u;
    m.bucket = bucket;
    m.table = table;
    m.in = in;
    m.paths = paths;
    m.n_paths = n_paths;
    st = pg_table_describe(&u, bucket, table, &m.t);
    if (st == DS_NOT_FOUND && in->create_mode != DS_CREATE_NONE) {
        /* The bucket must exist; the table is created with the import. */
        PGresult *r;
        const char *params[] = {call->project_id, bucket};
        st = pg_run(&u, &r, "SELECT schema_name FROM " PG_META ".buckets WHERE project = $1 AND id = $2", 2, params);
        if (st == DS_OK) {
            if (PQntuples(r) == 0)
                st = fail(&u, DS_NOT_FOUND, DS_KBC_SCHEMA_NOT_FOUND, "bucket \"%s\" not found", bucket);
            else
                m.t.schema = pg_cell(&u, r, 0, 0);
            PQclear(r);
        }
        pg_phys_name(table, phys);
        m.t.phys = phys;
        m.t.t.bucket = bucket;
        m.t.t.name = table;
        m.recreate = true;
        m.string_table = true;
    } else if (st == DS_OK) {
        m.exists = true;
        m.recreate = in->create_mode == DS_CREATE_REPLACE;
        bool all_string = true;
        for (size_t i = 0; i < m.t.t.n_columns; i++)
            all_string = all_string && pg_type_is_string(m.t.t.columns[i].type);
        m.string_table = in->strategy == DS_STRATEGY_AUTO ? all_string : in->strategy == DS_STRATEGY_STRING;
        if (m.string_table && !all_string && !m.recreate)
            st = fail(&u, DS_INVALID_ARGUMENT, 0,
                      "table %s.%s has typed columns; import it with the typed (user defined) strategy", bucket, table);
    }
    if (st == DS_OK)
        st = describe_source(&m);
    if (st == DS_OK)
        st = match_columns(&m);
    if (st == DS_OK && m.recreate) {
        m.t.t.primary_key = in->dedup_columns;
        m.t.t.n_primary_key = in->n_dedup_columns;
    }
    if (st == DS_OK)
        st = resolve_key(&m);
    if (st == DS_OK)
        st = stage(&m);
    t1 = mono_s();
    if (st == DS_OK)
        st = check_types(&m);
    load_t l = {.m = &m};
    for (int attempt = 0; st == DS_OK; attempt++) {
        st = pg_in_txn(&u, load_txn, &l);
        if (st != DS_CONFLICT || attempt + 1 >= 3)
            break;
        H(&u)->log(2, PG_BACKEND, "import into %s.%s hit a transaction conflict; retrying", bucket, table);
        st = DS_OK;
    }
    if (st == DS_CONFLICT)
        fail(&u, DS_UNAVAILABLE, 0, "the table is busy; retry the import");
    t2 = mono_s();
    if (st == DS_OK) {
        int64_t rows = m.staged_rows;
        if (in->dedup == DS_DEDUP_UPDATE && m.n_key) {
            pgbuf_t q = {0};
            pb_puts(&q, "SELECT count(*) FROM (SELECT DISTINCT ");
            for (size_t k = 0; k < m.n_key; k++) {
                if (k)
                    pb_puts(&q, ", ");
                pb_col(&q, "", m.key[k]);
            }
            pb_puts(&q, " FROM __ds_src) d");
            st = pg_query_int(&u, pb_cstr(&q), 0, NULL, &rows);
            pb_free(&q);
        }
        out->imported_rows = rows;
    }
    if (st == DS_OK)
        st = pg_table_counts(&u, m.t.schema, m.t.phys, &out->table_rows, &out->table_bytes);
    if (st == DS_OK) {
        size_t n = 0;
        out->imported_columns = H(&u)->alloc(call, sizeof(char *) * (m.n_src ? m.n_src : 1));
        for (size_t i = 0; out->imported_columns && i < m.n_src; i++)
            if (m.dst[i])
                out->imported_columns[n++] = m.dst[i];
        out->n_imported_columns = n;
        out->timers = H(&u)->alloc(call, sizeof(ds_timer_t) * 2);
        if (out->timers) { /* else the arena's failure fails the call */
            out->timers[0] = (ds_timer_t){"stage", t1 - t0};
            out->timers[1] = (ds_timer_t){"load", t2 - t1};
            out->n_timers = 2;
        }
    }
    if (!u.broken) {
        PGresult *r = PQexec(u.c, "DROP TABLE IF EXISTS pg_temp.__ds_raw, pg_temp.__ds_src, pg_temp.__ds_new");
        PQclear(r);
    }
    pg_use_end(&u);
    return st;
}

/* ---- export ---- */

typedef struct {
    gzFile gz;
    FILE *plain;
    int64_t bytes;
} out_file_t;

static bool out_open(out_file_t *f, const char *path, bool gzip)
{
    memset(f, 0, sizeof(*f));
    if (gzip)
        f->gz = gzopen(path, "wb6");
    else
        f->plain = fopen(path, "wb");
    return f->gz || f->plain;
}

static bool out_write(out_file_t *f, const char *data, size_t n)
{
    f->bytes += (int64_t)n;
    if (f->gz)
        return gzwrite(f->gz, data, (unsigned)n) == (int)n;
    return fwrite(data, 1, n, f->plain) == n;
}

static bool out_close(out_file_t *f)
{
    bool ok = true;
    if (f->gz)
        ok = gzclose(f->gz) == Z_OK;
    if (f->plain)
        ok = fclose(f->plain) == 0;
    memset(f, 0, sizeof(*f));
    return ok;
}

ds_status_t pg_table_export(void *self, ds_be_call_t *call, const char *bucket, const char *table, const ds_export_t *in,
                            const char *out_dir, int64_t slice_bytes, const char ***paths, size_t *n_paths,
                            int64_t *rows)
{
    pg_use_t u;
    pg_table_t t;
    pgbuf_t sql = {0}, header = {0};
    *paths = NULL;
    *n_paths = 0;
    *rows = 0;
    if (in->format != DS_FORMAT_CSV)
        return ((pg_be_t *)self)->host->err_set(call->err, DS_UNSUPPORTED, "backend \"%s\" exports CSV only",
                                                PG_BACKEND);
    ds_status_t st = pg_use_begin(self, call, &u);
    if (st != DS_OK)
        return st;
    st = pg_table_describe(&u, bucket, table, &t);
    if (st == DS_OK) {
        pb_puts(&sql, "COPY (");
        st = build_select(&u, &t, in->columns, in->n_columns, true, in->order, in->n_order, &in->where, in->limit, &sql,
                          NULL, NULL, NULL);
        pb_puts(&sql, ") TO STDOUT WITH (FORMAT csv, HEADER true, DELIMITER ',', QUOTE '\"', ESCAPE '\"', FORCE_QUOTE *)");
    }
    PGresult *r = NULL;
    if (st == DS_OK && sql.oom)
        st = fail(&u, DS_UNAVAILABLE, 0, "out of memory while building an SQL statement; nothing was run");
    if (st == DS_OK) {
        r = PQexec(u.c, pb_cstr(&sql));
        if (PQresultStatus(r) != PGRES_COPY_OUT) {
            PQclear(r);
            st = pg_run(&u, NULL, pb_cstr(&sql), 0, NULL);
            if (st == DS_OK)
                st = fail(&u, DS_INTERNAL, 0, "PostgreSQL did not start the export");
        } else {
            PQclear(r);
        }
    }
    /* Slices of about slice_bytes, each with the header line, cut at row boundaries. */
    int64_t limit = in->sliced && slice_bytes <= 0 ? (int64_t)64 << 20 : slice_bytes;
    size_t cap = 8, n = 0;
    const char **list = H(&u)->alloc(call, sizeof(char *) * cap);
    out_file_t f = {0};
    bool have_header = false, io_error = false;
    int64_t data_rows = 0;
    if (st == DS_OK) {
        char *line;
        int len;
        while ((len = PQgetCopyData(u.c, &line, 0)) > 0) {
            if (!have_header) {
                pb_add(&header, line, (size_t)len);
                have_header = true;
                PQfreemem(line);
                continue;
            }
            if (header.oom || !list)
                io_error = true; /* out of memory: never write a file without its header */
            if (!io_error && (n == 0 || (limit > 0 && f.bytes >= limit && f.bytes > (int64_t)header.len))) {
                if (n && !out_close(&f))
                    io_error = true;
                if (n == cap) {
                    const char **bigger = H(&u)->alloc(call, sizeof(char *) * cap * 2);
                    if (bigger) {
                        memcpy(bigger, list, sizeof(char *) * cap);
                        list = bigger;
                        cap *= 2;
                    } else {
                        io_error = true;
                    }
                }
                size_t plen = strlen(out_dir) + 64;
                char *path = io_error ? NULL : H(&u)->alloc(call, plen);
                if (path)
                    snprintf(path, plen, "%s/part_%05zu.csv%s", out_dir, n, in->gzip ? ".gz" : "");
                if (!io_error && path && out_open(&f, path, in->gzip)) {
                    list[n++] = path;
                    io_error = !out_write(&f, header.data, header.len);
                } else {
                    io_error = true;
                }
            }
            if (!io_error && !out_write(&f, line, (size_t)len))
                io_error = true;
            data_rows++;
            PQfreemem(line);
        }
        if (header.oom || !list)
            io_error = true;
        if (n == 0 && !io_error) {
            /* No rows: one file with the header only. */
            char *path = H(&u)->alloc(call, strlen(out_dir) + 64);
            if (path)
                snprintf(path, strlen(out_dir) + 64, "%s/part_00000.csv%s", out_dir, in->gzip ? ".gz" : "");
            if (path && out_open(&f, path, in->gzip)) {
                list[n++] = path;
                io_error = !out_write(&f, header.data ? header.data : "", header.len);
            } else {
                io_error = true;
            }
        }
        if (n && !out_close(&f))
            io_error = true;
        while ((r = PQgetResult(u.c))) {
            if (PQresultStatus(r) != PGRES_COMMAND_OK && st == DS_OK) {
                const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
                if (PQstatus(u.c) == CONNECTION_BAD) {
                    pg_connection_lost(&u, msg ? msg : "connection lost");
                    st = fail(&u, DS_UNAVAILABLE, 0, "PostgreSQL backend \"%s\" is unavailable: %s", PG_BACKEND,
                              msg ? msg : "connection lost");
                } else {
                    st = fail(&u, DS_INVALID_ARGUMENT, 0, "PostgreSQL: %s", msg ? msg : "export failed");
                }
            }
            PQclear(r);
        }
        if (len == -2 && st == DS_OK) {
            pg_connection_lost(&u, PQerrorMessage(u.c));
            st = fail(&u, DS_UNAVAILABLE, 0, "PostgreSQL backend \"%s\" is unavailable: the connection broke during export",
                      PG_BACKEND);
        }
        if (st == DS_OK && io_error)
            st = fail(&u, DS_UNAVAILABLE, 0, "cannot write the export file");
    }
    if (st == DS_OK) {
        *paths = list;
        *n_paths = n;
        *rows = data_rows;
    }
    pb_free(&sql);
    pb_free(&header);
    pg_use_end(&u);
    return st;
}

/* ---- preview ---- */

ds_status_t pg_table_preview(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                             const ds_preview_t *in, ds_preview_result_t *out)
{
    pg_use_t u;
    pg_table_t t;
    pgbuf_t sql = {0};
    PGresult *r;
    memset(out, 0, sizeof(*out));
    ds_status_t st = pg_use_begin(self, call, &u);
    if (st != DS_OK)
        return st;
    st = pg_table_describe(&u, bucket, table, &t);
    int64_t limit = in->limit > 0 && in->limit < DS_PREVIEW_MAX_ROWS ? in->limit : DS_PREVIEW_MAX_ROWS;
    if (st == DS_OK)
        st = build_select(&u, &t, in->columns, in->n_columns, true, in->order, in->n_order, &in->where, limit, &sql,
                          &out->columns, &out->types, &out->n_columns);
    if (st == DS_OK)
        st = pg_run(&u, &r, pb_cstr(&sql), 0, NULL);
    if (st == DS_OK) {
        int n = PQntuples(r);
        out->rows = H(&u)->alloc(call, sizeof(char **) * (size_t)(n ? n : 1));
        if (!out->rows)
            n = 0; /* the arena's failure fails the call */
        for (int i = 0; i < n; i++) {
            out->rows[i] = H(&u)->alloc(call, sizeof(char *) * (out->n_columns ? out->n_columns : 1));
            if (!out->rows[i]) {
                n = 0;
                break;
            }
            for (size_t c = 0; c < out->n_columns; c++)
                out->rows[i][c] = pg_cell(&u, r, i, (int)c);
        }
        out->n_rows = (size_t)n;
        PQclear(r);
    }
    pb_free(&sql);
    pg_use_end(&u);
    return st;
}

/* ---- profile ---- */

/* Types without ordering or equality in PostgreSQL are profiled as text. */
static bool profile_as_text(const char *canonical)
{
    return strcmp(canonical, "JSON") == 0 || strcmp(canonical, "UUID") == 0 || strcmp(canonical, "BLOB") == 0;
}

ds_status_t pg_table_profile(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                             ds_profile_result_t *out)
{
    pg_use_t u;
    pg_table_t t;
    pgbuf_t sql = {0}, v = {0};
    PGresult *r;
    memset(out, 0, sizeof(*out));
    ds_status_t st = pg_use_begin(self, call, &u);
    if (st != DS_OK)
        return st;
    if ((st = pg_table_describe(&u, bucket, table, &t)) != DS_OK)
        goto done;
    out->columns = H(&u)->alloc(call, sizeof(ds_column_profile_t) * (t.t.n_columns ? t.t.n_columns : 1));
    out->n_columns = t.t.n_columns;
    if (!out->columns) {
        st = fail(&u, DS_UNAVAILABLE, 0, "out of memory; the request was not carried out");
        goto done;
    }
    pb_puts(&sql, "SELECT count(*)");
    for (size_t i = 0; i < t.t.n_columns; i++) {
        const ds_be_column_t *c = &t.t.columns[i];
        char phys[PG_NAME_MAX + 1];
        pg_phys_name(c->name, phys);
        pb_reset(&v);
        if (profile_as_text(c->type))
            pg_text_expr(&v, "", phys, c->type);
        else
            pb_ident(&v, phys);
        if (v.oom)
            sql.oom = true;
        const char *e = v.oom ? "" : pb_cstr(&v);
        bool boolean = strcmp(c->type, "BOOLEAN") == 0;
        pb_printf(&sql, ", count(%s), count(DISTINCT %s), ", e, e);
        if (boolean)
            pb_printf(&sql, "CASE WHEN bool_and(%s) THEN 'true' WHEN NOT bool_and(%s) THEN 'false' END, "
                            "CASE WHEN bool_or(%s) THEN 'true' WHEN NOT bool_or(%s) THEN 'false' END, ",
                      e, e, e, e);
        else if (pg_type_is_string(c->type) || profile_as_text(c->type))
            pb_printf(&sql, "min(%s COLLATE \"C\"), max(%s COLLATE \"C\"), ", e, e);
        else
            pb_printf(&sql, "CAST(min(%s) AS text), CAST(max(%s) AS text), ", e, e);
        if (pg_type_numeric(c->type))
            pb_printf(&sql, "CAST(CAST(avg(%s) AS double precision) AS text)", e);
        else
            pb_puts(&sql, "NULL");
    }
    pb_puts(&sql, " FROM ");
    pb_qualified(&sql, t.schema, t.phys);
    if ((st = pg_run(&u, &r, pb_cstr(&sql), 0, NULL)) != DS_OK)
        goto done;
    out->rows = pg_cell_int(r, 0, 0);
    for (size_t i = 0; i < t.t.n_columns; i++) {
        ds_column_profile_t *p = &out->columns[i];
        int base = 1 + (int)i * 5;
        p->name = t.t.columns[i].name;
        p->type = t.t.columns[i].type;
        p->count = pg_cell_int(r, 0, base);
        p->nulls = out->rows - p->count;
        p->distinct = pg_cell_int(r, 0, base + 1);
        p->min = pg_cell(&u, r, 0, base + 2);
        p->max = pg_cell(&u, r, 0, base + 3);
        p->avg = pg_cell(&u, r, 0, base + 4);
    }
    PQclear(r);
    for (size_t i = 0; i < t.t.n_columns && st == DS_OK; i++) {
        ds_column_profile_t *p = &out->columns[i];
        char phys[PG_NAME_MAX + 1];
        pg_phys_name(p->name, phys);
        pb_reset(&sql);
        pb_puts(&sql, "SELECT v, count(*) AS n FROM (SELECT ");
        pg_text_expr(&sql, "", phys, p->type);
        pb_puts(&sql, " AS v FROM ");
        pb_qualified(&sql, t.schema, t.phys);
        pb_puts(&sql, " WHERE ");
        pb_ident(&sql, phys);
        pb_puts(&sql, " IS NOT NULL) s GROUP BY v ORDER BY n DESC, v COLLATE \"C\" LIMIT 5");
        if ((st = pg_run(&u, &r, pb_cstr(&sql), 0, NULL)) != DS_OK)
            break;
        int n = PQntuples(r);
        p->top = H(&u)->alloc(call, sizeof(ds_top_value_t) * (size_t)(n ? n : 1));
        for (int k = 0; p->top && k < n; k++) {
            char *val = pg_cell(&u, r, k, 0);
            p->top[k].value = val ? val : "";
            p->top[k].count = pg_cell_int(r, k, 1);
        }
        p->n_top = (size_t)n;
        PQclear(r);
    }
done:
    pb_free(&sql);
    pb_free(&v);
    pg_use_end(&u);
    return st;
}

/* ---- delete rows ---- */

typedef struct {
    const pg_table_t *t;
    const pg_table_t *ref;
    const ds_where_t *where;
    int64_t deleted;
} delete_t;

static ds_status_t delete_txn(pg_use_t *u, void *ud)
{
    delete_t *d = ud;
    pgbuf_t sql = {0};
    pb_puts(&sql, "DELETE FROM ");
    pb_qualified(&sql, d->t->schema, d->t->phys);
    ds_status_t st = append_where(u, d->t, d->where, d->ref, &sql);
    if (st == DS_OK)
        st = run_count(u, pb_cstr(&sql), &d->deleted);
    pb_free(&sql);
    if (st == DS_OK)
        st = pg_touch(u, d->t->t.bucket, d->t->t.name, false, d->deleted > 0);
    if (st == DS_OK)
        st = pg_idem_record(u, d->deleted);
    return st;
}

ds_status_t pg_table_delete_rows(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                                 const ds_where_t *where, int64_t *deleted, int64_t *table_rows)
{
    pg_use_t u;
    pg_table_t t, ref;
    *deleted = 0;
    ds_status_t st = pg_use_begin(self, call, &u);
    if (st != DS_OK)
        return st;
    st = pg_table_describe(&u, bucket, table, &t);
    bool has_ref = false;
    if (st == DS_OK && where->in_column) {
        st = pg_table_describe(&u, where->in_bucket ? where->in_bucket : "", where->in_table ? where->in_table : "", &ref);
        if (st == DS_OK && find_col(&ref.t, where->in_ref_column) < 0)
            st = fail(&u, DS_INVALID_ARGUMENT, DS_KBC_COLUMN_NOT_FOUND, "column \"%s\" is not a column of %s.%s",
                      where->in_ref_column ? where->in_ref_column : "", where->in_bucket, where->in_table);
        has_ref = st == DS_OK;
    }
    delete_t d = {&t, has_ref ? &ref : NULL, where, 0};
    if (st == DS_OK)
        st = pg_in_txn(&u, delete_txn, &d);
    if (st == DS_OK)
        st = pg_table_counts(&u, t.schema, t.phys, table_rows, NULL);
    *deleted = d.deleted;
    pg_use_end(&u);
    return st;
}

/* ---- schema changes ---- */

typedef struct {
    pg_table_t *t;
    const ds_be_column_t *add;
    const char *column;
    const ds_column_alter_t *alter;
    const char *const *pk;
    size_t n_pk;
} schema_t;

static ds_status_t alter_exec(pg_use_t *u, const schema_t *s, const char *clause, const char *column, const char *tail)
{
    pgbuf_t sql = {0};
    pb_puts(&sql, "ALTER TABLE ");
    pb_qualified(&sql, s->t->schema, s->t->phys);
    pb_printf(&sql, " %s ", clause);
    pb_col(&sql, "", column);
    if (tail)
        pb_printf(&sql, " %s", tail);
    ds_status_t st = pg_exec(u, pb_cstr(&sql));
    pb_free(&sql);
    return st;
}

static ds_status_t set_default(pg_use_t *u, const schema_t *s, const char *column, const char *canonical,
                               const char *value)
{
    pgbuf_t tail = {0};
    char tbuf[64], what[128];
    snprintf(what, sizeof(what), "column \"%s\": default", column);
    if (value) {
        ds_status_t st = pg_check_value(u, what, value, pg_type_of(canonical, tbuf, sizeof(tbuf)) ? tbuf : "text");
        if (st != DS_OK)
            return st;
        pb_puts(&tail, "SET DEFAULT CAST(");
        pb_literal(&tail, value);
        pb_printf(&tail, " AS %s)", pg_type_of(canonical, tbuf, sizeof(tbuf)) ? tbuf : "text");
    } else {
        pb_puts(&tail, "DROP DEFAULT");
    }
    ds_status_t st = tail.oom ? fail(u, DS_UNAVAILABLE, 0, "out of memory while building an SQL statement; nothing was run") : alter_exec(u, s, "ALTER COLUMN", column, pb_cstr(&tail));
    pb_free(&tail);
    return st;
}

static ds_status_t add_column_txn(pg_use_t *u, void *ud)
{
    schema_t *s = ud;
    const ds_be_column_t *c = s->add;
    char tbuf[64];
    if (find_col(&s->t->t, c->name) >= 0)
        return fail(u, DS_ALREADY_EXISTS, 0, "column \"%s\" already exists in %s.%s", c->name, s->t->t.bucket,
                    s->t->t.name);
    const char *pgt = pg_type_of(c->type, tbuf, sizeof(tbuf));
    if (!pgt)
        return fail(u, DS_UNSUPPORTED, 0, "column \"%s\": type %s is not supported by backend \"%s\"", c->name, c->type,
                    PG_BACKEND);
    ds_status_t st = alter_exec(u, s, "ADD COLUMN", c->name, pgt);
    if (st == DS_OK && c->default_value)
        st = set_default(u, s, c->name, c->type, c->default_value);
    if (st == DS_OK && c->default_value) {
        /* Existing rows take the default, as in the DuckDB backend. */
        pgbuf_t sql = {0};
        pb_puts(&sql, "UPDATE ");
        pb_qualified(&sql, s->t->schema, s->t->phys);
        pb_puts(&sql, " SET ");
        pb_col(&sql, "", c->name);
        pb_puts(&sql, " = CAST(");
        pb_literal(&sql, c->default_value);
        pb_printf(&sql, " AS %s)", pgt);
        st = pg_exec(u, pb_cstr(&sql));
        pb_free(&sql);
    }
    if (st == DS_OK && !c->nullable)
        st = alter_exec(u, s, "ALTER COLUMN", c->name, "SET NOT NULL");
    if (st == DS_OK)
        st = pg_column_comment(u, s->t, c->name, c->type, c->default_value);
    return st == DS_OK ? pg_touch(u, s->t->t.bucket, s->t->t.name, false, true) : st;
}

static ds_status_t drop_column_txn(pg_use_t *u, void *ud)
{
    schema_t *s = ud;
    const ds_be_table_t *t = &s->t->t;
    int ci = find_col(t, s->column);
    if (ci < 0)
        return fail(u, DS_NOT_FOUND, DS_KBC_COLUMN_NOT_FOUND, "column \"%s\" not found in %s.%s", s->column, t->bucket,
                    t->name);
    for (size_t k = 0; k < t->n_primary_key; k++)
        if (strcasecmp(t->primary_key[k], s->column) == 0)
            return fail(u, DS_INVALID_ARGUMENT, 0, "column \"%s\" is part of the primary key; drop the primary key first",
                        s->column);
    if (t->n_columns == 1)
        return fail(u, DS_INVALID_ARGUMENT, 0, "column \"%s\" is the table's last column", s->column);
    ds_status_t st = alter_exec(u, s, "DROP COLUMN", t->columns[ci].name, NULL);
    return st == DS_OK ? pg_touch(u, t->bucket, t->name, false, true) : st;
}

static ds_status_t alter_column_txn(pg_use_t *u, void *ud)
{
    schema_t *s = ud;
    const ds_column_alter_t *a = s->alter;
    const ds_be_table_t *t = &s->t->t;
    int ci = find_col(t, s->column);
    if (ci < 0)
        return fail(u, DS_NOT_FOUND, DS_KBC_COLUMN_NOT_FOUND, "column \"%s\" not found in %s.%s", s->column, t->bucket,
                    t->name);
    const ds_be_column_t *col = &t->columns[ci];
    const char *type = a->type ? a->type : col->type;
    const char *def = a->set_default ? a->default_value : col->default_value;
    ds_status_t st = DS_OK;
    char tbuf[64];
    if (a->type && strcmp(a->type, col->type) != 0) {
        const char *pgt = pg_type_of(a->type, tbuf, sizeof(tbuf));
        if (!pgt)
            return fail(u, DS_UNSUPPORTED, 0, "column \"%s\": type %s is not supported by backend \"%s\"", col->name,
                        a->type, PG_BACKEND);
        /* A default of the old type may not convert: drop it first, set it again after. */
        if (col->default_value)
            st = set_default(u, s, col->name, col->type, NULL);
        pgbuf_t tail = {0};
        char phys[PG_NAME_MAX + 1];
        pg_phys_name(col->name, phys);
        pb_printf(&tail, "TYPE %s USING CAST(", pgt);
        if (strcmp(col->type, "BOOLEAN") == 0 || pg_type_is_string(a->type))
            pg_text_expr(&tail, "", phys, col->type);
        else
            pb_ident(&tail, phys);
        pb_printf(&tail, " AS %s)", pgt);
        if (st == DS_OK)
            st = tail.oom ? fail(u, DS_UNAVAILABLE, 0, "out of memory while building an SQL statement; nothing was run") : alter_exec(u, s, "ALTER COLUMN", col->name, pb_cstr(&tail));
        pb_free(&tail);
        if (st != DS_OK && st != DS_UNAVAILABLE)
            return fail(u, DS_INVALID_ARGUMENT, DS_KBC_DATA_TYPE_MISMATCH, "column \"%s\" cannot change to %s: %s",
                        col->name, a->type, u->err->message);
        if (st == DS_OK && col->default_value && !a->set_default)
            st = set_default(u, s, col->name, type, col->default_value);
    }
    if (st == DS_OK && a->set_default)
        st = set_default(u, s, col->name, type, a->default_value);
    if (st == DS_OK && a->nullable == 0)
        st = alter_exec(u, s, "ALTER COLUMN", col->name, "SET NOT NULL");
    if (st == DS_OK && a->nullable == 1)
        st = alter_exec(u, s, "ALTER COLUMN", col->name, "DROP NOT NULL");
    if (st == DS_OK)
        st = pg_column_comment(u, s->t, col->name, type, def);
    return st == DS_OK ? pg_touch(u, t->bucket, t->name, false, true) : st;
}

static ds_status_t pk_txn(pg_use_t *u, void *ud)
{
    schema_t *s = ud;
    const ds_be_table_t *t = &s->t->t;
    pgbuf_t list = {0}, arr = {0};
    ds_status_t st = DS_OK;
    if (s->n_pk && t->n_primary_key)
        return fail(u, DS_INVALID_ARGUMENT, 0, "table %s.%s already has a primary key; drop it first", t->bucket, t->name);
    if (!s->n_pk && !t->n_primary_key)
        return fail(u, DS_INVALID_ARGUMENT, 0, "table %s.%s has no primary key", t->bucket, t->name);
    const char **names = H(u)->alloc(u->call, sizeof(char *) * (s->n_pk ? s->n_pk : 1));
    if (!names)
        return fail(u, DS_UNAVAILABLE, 0, "out of memory; the request was not carried out");
    for (size_t k = 0; k < s->n_pk; k++) {
        int ci = find_col(t, s->pk[k]);
        if (ci < 0) {
            pb_free(&list);
            return fail(u, DS_INVALID_ARGUMENT, DS_KBC_COLUMN_NOT_FOUND, "primary key column \"%s\" is not a column of %s.%s",
                        s->pk[k], t->bucket, t->name);
        }
        names[k] = t->columns[ci].name;
        pb_printf(&list, "%s%s", k ? "," : "", names[k]);
    }
    if (s->n_pk) {
        pgbuf_t sql = {0};
        int64_t dups = 0;
        pb_puts(&sql, "SELECT count(*) FROM (SELECT 1 FROM ");
        pb_qualified(&sql, s->t->schema, s->t->phys);
        pb_puts(&sql, " GROUP BY ");
        for (size_t k = 0; k < s->n_pk; k++) {
            if (k)
                pb_puts(&sql, ", ");
            pb_col(&sql, "", names[k]);
        }
        pb_puts(&sql, " HAVING count(*) > 1) d");
        st = pg_query_int(u, pb_cstr(&sql), 0, NULL, &dups);
        pb_free(&sql);
        if (st == DS_OK && dups)
            st = fail(u, DS_INVALID_ARGUMENT, 0,
                      "Cannot create new primary key, duplicate values in primary key columns (%s): %lld values occur "
                      "more than once",
                      pb_text(&list), (long long)dups);
    }
    if (st == DS_OK) {
        if (list.oom)
            arr.oom = true;
        else
            pb_printf(&arr, "{%s}", pb_cstr(&list));
        if (!pb_cstr(&arr))
            st = fail(u, DS_UNAVAILABLE, 0, "out of memory while building an SQL statement; nothing was run");
    }
    if (st == DS_OK) {
        const char *params[] = {pb_cstr(&arr), u->call->project_id, t->bucket, t->name};
        st = pg_run(u, NULL,
                    "UPDATE " PG_META ".tables SET primary_key = CAST($1 AS text[]) WHERE project = $2 AND bucket = $3 "
                    "AND name = $4",
                    4, params);
    }
    if (st == DS_OK)
        st = pg_pk_index(u, s->t, names, s->n_pk);
    pb_free(&list);
    pb_free(&arr);
    return st;
}

static ds_status_t schema_change(void *self, ds_be_call_t *call, const char *bucket, const char *table, schema_t *s,
                                 ds_status_t (*fn)(pg_use_t *, void *))
{
    pg_use_t u;
    pg_table_t t;
    ds_status_t st = pg_use_begin(self, call, &u);
    if (st != DS_OK)
        return st;
    st = pg_table_describe(&u, bucket, table, &t);
    s->t = &t;
    if (st == DS_OK)
        st = pg_in_txn_recorded(&u, fn, s);
    pg_use_end(&u);
    return st;
}

ds_status_t pg_column_add(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                          const ds_be_column_t *column)
{
    schema_t s = {.add = column};
    return schema_change(self, call, bucket, table, &s, add_column_txn);
}

ds_status_t pg_column_drop(void *self, ds_be_call_t *call, const char *bucket, const char *table, const char *column)
{
    schema_t s = {.column = column};
    return schema_change(self, call, bucket, table, &s, drop_column_txn);
}

ds_status_t pg_column_alter(void *self, ds_be_call_t *call, const char *bucket, const char *table, const char *column,
                            const ds_column_alter_t *alter)
{
    schema_t s = {.column = column, .alter = alter};
    return schema_change(self, call, bucket, table, &s, alter_column_txn);
}

ds_status_t pg_primary_key_set(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                               const char *const *columns, size_t n)
{
    schema_t s = {.pk = columns, .n_pk = n};
    return schema_change(self, call, bucket, table, &s, pk_txn);
}
