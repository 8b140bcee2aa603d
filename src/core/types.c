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

/* ---- points in time (changed_since, changed_until) ---- */

#define US_PER_SEC INT64_C(1000000)
/* 0001-01-01 00:00:00 and 9999-12-31 23:59:59 UTC, in unix seconds: the range of a timestamp column. */
#define MIN_UNIX_SEC INT64_C(-62135596800)
#define MAX_UNIX_SEC INT64_C(253402300799)

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

static bool leap_year(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int month_days(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap_year(y) ? 29 : days[m - 1];
}

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar. */
static int64_t days_since_epoch(int y, int m, int d)
{
    /* Count from March so that the leap day is the last day of a counted year. */
    int64_t yy = m <= 2 ? y - 1 : y;
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The inverse of days_since_epoch. */
static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/*
 * ISO 8601 date or date-time: YYYY-MM-DD[(T| )HH:MM[:SS[.fraction]]][Z|(+|-)HH[[:]MM]].
 * Without a zone the time is UTC. Fractions beyond microseconds are cut.
 */
static bool parse_iso(const char *p, int64_t *out_us)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0;
    int64_t frac = 0;
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' || !digits(&p, 2, &d))
        return false;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo))
        return false;
    if (*p == ' ' || *p == 'T' || *p == 't') {
        p++;
        if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi) || h > 23 || mi > 59)
            return false;
        if (*p == ':') {
            p++;
            if (!digits(&p, 2, &sec) || sec > 60) /* 60: a leap second, counted as the next minute's first */
                return false;
            if (*p == '.' || *p == ',') {
                p++;
                if (!isdigit((unsigned char)*p))
                    return false;
                for (int64_t scale = 100000; isdigit((unsigned char)*p); p++, scale /= 10)
                    frac += (*p - '0') * scale;
            }
        }
        int sign = 0;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            sign = *p++ == '+' ? 1 : -1;
            if (!digits(&p, 2, &oh) || oh > 23)
                return false;
            if (*p == ':')
                p++;
            if (*p && (!digits(&p, 2, &om) || om > 59))
                return false;
        }
        if (sign)
            frac -= sign * ((int64_t)oh * 3600 + om * 60) * US_PER_SEC;
    }
    if (*p != '\0')
        return false;
    int64_t s = days_since_epoch(y, mo, d) * 86400 + (int64_t)h * 3600 + mi * 60 + sec;
    *out_us = s * US_PER_SEC + frac;
    return true;
}

/* Unix seconds, optionally signed: "1767225600". */
static bool parse_unix(const char *p, int64_t *out_us)
{
    bool neg = *p == '-';
    if (*p == '-' || *p == '+')
        p++;
    size_t n = strspn(p, "0123456789");
    if (n == 0 || p[n] != '\0' || n > 12)
        return false;
    int64_t s = strtoll(p, NULL, 10);
    *out_us = (neg ? -s : s) * US_PER_SEC;
    return true;
}

/* Relative to now: "-15 minutes", "+1 day", "2 hours ago", "now" (units second to week, singular or plural). */
static bool parse_relative(const char *p, int64_t now_us, int64_t *out_us)
{
    static const struct {
        const char *unit;
        int64_t seconds;
    } units[] = {{"second", 1}, {"sec", 1}, {"minute", 60}, {"min", 60}, {"hour", 3600}, {"day", 86400}, {"week", 604800}};
    while (*p == ' ')
        p++;
    if (strcasecmp(p, "now") == 0) {
        *out_us = now_us;
        return true;
    }
    int sign = 1;
    if (*p == '-' || *p == '+')
        sign = *p++ == '-' ? -1 : 1;
    while (*p == ' ')
        p++;
    size_t n = strspn(p, "0123456789");
    if (n == 0 || n > 9)
        return false;
    int64_t count = strtoll(p, NULL, 10);
    p += n;
    while (*p == ' ')
        p++;
    size_t ulen = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
    if (ulen == 0)
        return false;
    int64_t unit = 0;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && !unit; i++) {
        size_t k = strlen(units[i].unit);
        if (strncasecmp(p, units[i].unit, k) == 0 && (ulen == k || (ulen == k + 1 && (p[k] == 's' || p[k] == 'S'))))
            unit = units[i].seconds;
    }
    if (!unit)
        return false;
    p += ulen;
    while (*p == ' ')
        p++;
    if (strncasecmp(p, "ago", 3) == 0) {
        sign = -sign;
        p += 3;
        while (*p == ' ')
            p++;
    }
    if (*p != '\0')
        return false;
    /* count * unit is at most 1e9 weeks of seconds, inside int64; in microseconds it might not be. */
    int64_t seconds = count * unit;
    if (seconds > MAX_UNIX_SEC - MIN_UNIX_SEC)
        *out_us = sign > 0 ? INT64_MAX : INT64_MIN; /* out of range, which the caller reports */
    else
        *out_us = now_us + sign * seconds * US_PER_SEC;
    return true;
}

ds_status_t ds_time_parse(const char *v, int64_t now_us, const char *field, int64_t *out_us, ds_err_t *err)
{
    int64_t us = 0;
    if (!parse_unix(v, &us) && !parse_iso(v, &us) && !parse_relative(v, now_us, &us))
        return ds_err_setf(err, DS_INVALID_ARGUMENT, field, "%s: \"%.64s\" is not a point in time; %s", field, v,
                           DS_TIME_FORMS);
    if (us < MIN_UNIX_SEC * US_PER_SEC || us > MAX_UNIX_SEC * US_PER_SEC + (US_PER_SEC - 1))
        return ds_err_setf(err, DS_INVALID_ARGUMENT, field,
                           "%s: \"%.64s\" is out of range (years 0001 to 9999 UTC)", field, v);
    *out_us = us;
    return DS_OK;
}

void ds_time_format_utc(int64_t us, char out[DS_TIME_TEXT_MAX])
{
    int64_t s = us / US_PER_SEC, f = us % US_PER_SEC;
    if (f < 0) {
        f += US_PER_SEC;
        s--;
    }
    int64_t days = s / 86400, rem = s % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
    /* The moduli only tell the compiler the widths; every value is inside them already. */
    snprintf(out, DS_TIME_TEXT_MAX, "%04u-%02u-%02u %02u:%02u:%02u.%06u", (unsigned)y % 10000u, (unsigned)m % 100u,
             (unsigned)d % 100u, (unsigned)(rem / 3600) % 100u, (unsigned)(rem / 60 % 60), (unsigned)(rem % 60),
             (unsigned)f % 1000000u);
}
