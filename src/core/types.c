/*
 * types.c - type name canonicalization. See types.h.
 */
#include "core/types.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    const char *alias;
    const char *canonical;
} type_alias_t;

/* Every accepted spelling, with its canonical DuckDB type. */
static const type_alias_t aliases[] = {
    {"VARCHAR", "VARCHAR"},     {"STRING", "VARCHAR"},       {"TEXT", "VARCHAR"},
    {"CHAR", "VARCHAR"},        {"BPCHAR", "VARCHAR"},       {"INTEGER", "INTEGER"},
    {"INT", "INTEGER"},         {"INT4", "INTEGER"},         {"BIGINT", "BIGINT"},
    {"INT8", "BIGINT"},         {"LONG", "BIGINT"},          {"SMALLINT", "SMALLINT"},
    {"INT2", "SMALLINT"},       {"TINYINT", "TINYINT"},      {"HUGEINT", "HUGEINT"},
    {"UBIGINT", "UBIGINT"},     {"UINTEGER", "UINTEGER"},    {"DOUBLE", "DOUBLE"},
    {"FLOAT8", "DOUBLE"},       {"FLOAT", "DOUBLE"},         {"DOUBLE PRECISION", "DOUBLE"},
    {"REAL", "FLOAT"},          {"FLOAT4", "FLOAT"},         {"BOOLEAN", "BOOLEAN"},
    {"BOOL", "BOOLEAN"},        {"LOGICAL", "BOOLEAN"},      {"DATE", "DATE"},
    {"TIMESTAMP", "TIMESTAMP"}, {"DATETIME", "TIMESTAMP"},   {"TIMESTAMP_NTZ", "TIMESTAMP"},
    {"TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE"},             {"TIMESTAMP_TZ", "TIMESTAMP WITH TIME ZONE"},
    {"TIMESTAMP WITH TIME ZONE", "TIMESTAMP WITH TIME ZONE"}, {"TIME", "TIME"},
    {"INTERVAL", "INTERVAL"},   {"UUID", "UUID"},            {"BLOB", "BLOB"},
    {"BINARY", "BLOB"},         {"VARBINARY", "BLOB"},       {"JSON", "JSON"},
};

/* Copies in upper-cased with runs of spaces collapsed and trimmed. */
static bool normalize(const char *in, char *out, size_t outsz)
{
    size_t o = 0;
    bool space = false;
    for (const char *p = in; *p; p++) {
        if (isspace((unsigned char)*p)) {
            space = o > 0;
            continue;
        }
        if (space && *p != '(' && *p != ')' && *p != ',' && out[o - 1] != '(' && out[o - 1] != ',') {
            if (o + 1 >= outsz)
                return false;
            out[o++] = ' ';
        }
        space = false;
        if (o + 1 >= outsz)
            return false;
        out[o++] = (char)toupper((unsigned char)*p);
    }
    out[o] = '\0';
    return o > 0;
}

/* Parses "(p)" or "(p,s)" at s; returns false on anything else. */
static bool parse_args(const char *s, long *a, long *b, int *n)
{
    char *end;
    *n = 0;
    if (*s != '(')
        return false;
    *a = strtol(s + 1, &end, 10);
    if (end == s + 1)
        return false;
    *n = 1;
    if (*end == ',') {
        const char *q = end + 1;
        *b = strtol(q, &end, 10);
        if (end == q)
            return false;
        *n = 2;
    }
    return end[0] == ')' && end[1] == '\0';
}

ds_status_t ds_type_canonical(const char *in, const char *column, char out[DS_TYPE_MAX], ds_err_t *err)
{
    char norm[96];
    if (!in || !normalize(in, norm, sizeof(norm)))
        return ds_err_setf(err, DS_INVALID_ARGUMENT, "type", "column \"%s\": missing or too long type", column);
    char *paren = strchr(norm, '(');
    char base[96];
    snprintf(base, sizeof(base), "%.*s", paren ? (int)(paren - norm) : (int)strlen(norm), norm);
    long a = 0, b = 0;
    int nargs = 0;
    if (paren && !parse_args(paren, &a, &b, &nargs))
        return ds_err_setf(err, DS_INVALID_ARGUMENT, "type", "column \"%s\": malformed type \"%s\"", column, in);
    if (strcmp(base, "DECIMAL") == 0 || strcmp(base, "NUMERIC") == 0 || strcmp(base, "NUMBER") == 0) {
        long p = nargs >= 1 ? a : 38, s = nargs == 2 ? b : (nargs == 1 ? 0 : 9);
        if (p < 1 || p > 38 || s < 0 || s > p)
            return ds_err_setf(err, DS_INVALID_ARGUMENT, "type",
                               "column \"%s\": DECIMAL precision must be 1-38 and scale 0-precision, got \"%s\"",
                               column, in);
        snprintf(out, DS_TYPE_MAX, "DECIMAL(%ld,%ld)", p, s);
        return DS_OK;
    }
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++) {
        if (strcmp(base, aliases[i].alias) != 0)
            continue;
        /* A length on a string type (VARCHAR(255)) is accepted and ignored, as DuckDB does. */
        if (nargs && strcmp(aliases[i].canonical, "VARCHAR") != 0 && strcmp(aliases[i].canonical, "BLOB") != 0)
            return ds_err_setf(err, DS_INVALID_ARGUMENT, "type", "column \"%s\": type %s takes no arguments",
                               column, aliases[i].alias);
        snprintf(out, DS_TYPE_MAX, "%s", aliases[i].canonical);
        return DS_OK;
    }
    return ds_err_setf(err, DS_INVALID_ARGUMENT, "type", "column \"%s\": unknown type \"%s\"", column, in);
}

bool ds_type_is_string(const char *canonical) { return canonical && strcmp(canonical, "VARCHAR") == 0; }

/* Reads exactly n digits at *p into *out and advances; false when they are not there. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool valid_time_text(const char *p)
{
    int y, mo, d, h, mi, sec;
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' || !digits(&p, 2, &d))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31)
        return false;
    if (*p == '\0')
        return true;
    if (*p != ' ' && *p != 'T')
        return false;
    p++;
    if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi) || h > 23 || mi > 59)
        return false;
    if (*p == ':') {
        p++;
        if (!digits(&p, 2, &sec) || sec > 60)
            return false;
        if (*p == '.') {
            p++;
            if (!isdigit((unsigned char)*p))
                return false;
            while (isdigit((unsigned char)*p))
                p++;
        }
    }
    if (*p == 'Z')
        return p[1] == '\0';
    if (*p == '+' || *p == '-') {
        p++;
        if (!digits(&p, 2, &h) || h > 23)
            return false;
        if (*p == ':')
            p++;
        if (*p && (!digits(&p, 2, &mi) || mi > 59))
            return false;
    }
    return *p == '\0';
}

ds_status_t ds_time_check(const char *v, const char *field, ds_err_t *err)
{
    const char *p = v;
    if (*p == '-' || *p == '+')
        p++;
    size_t n = strspn(p, "0123456789");
    if (n > 0 && p[n] == '\0') {
        if (n <= 12)
            return DS_OK;
        return ds_err_setf(err, DS_INVALID_ARGUMENT, field, "%s: %.40s is out of range for unix seconds", field, v);
    }
    if (valid_time_text(v))
        return DS_OK;
    return ds_err_setf(err, DS_INVALID_ARGUMENT, field,
                       "%s: \"%.64s\" is not a time (use unix seconds or YYYY-MM-DD[ HH:MM:SS[.ffffff]][Z|+HH:MM])",
                       field, v);
}
