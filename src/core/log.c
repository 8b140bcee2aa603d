/*
 * log.c - JSON-lines logging to stderr. See log.h.
 */
#include "core/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static _Atomic int current_level = DS_LOG_INFO;

void ds_log_set_level(ds_log_level_t level) { atomic_store(&current_level, (int)level); }
ds_log_level_t ds_log_get_level(void) { return (ds_log_level_t)atomic_load(&current_level); }

void ds_log_now_rfc3339(char *out, int outsz)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    snprintf(out, (size_t)outsz, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
}

/* Writes v as n decimal digits, zero-padded. */
static void digits(char *o, unsigned v, int n)
{
    while (n-- > 0) {
        o[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

/*
 * Lists of thousands of tables format three times per table, and gmtime_r
 * (which takes the time zone lock) plus strftime cost more than the rest of a
 * table's JSON. So the years 1970-9999 are computed here, by the proleptic
 * Gregorian calendar gmtime also uses (days to a date by 400-year eras, March
 * first, so the leap day ends a year); other instants go through gmtime_r.
 */
void ds_time_rfc3339(int64_t unix_s, char *out, int outsz)
{
    struct tm tm;
    if (unix_s >= 0 && unix_s <= INT64_C(253402300799) && outsz >= 21) {
        int64_t days = unix_s / 86400, secs = unix_s % 86400;
        int64_t z = days + 719468; /* days since 0000-03-01 */
        int64_t era = z / 146097;
        int64_t doe = z - era * 146097;                                      /* day of the era, 0-146096 */
        int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* year of the era, 0-399 */
        int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* day of the year from March 1 */
        int64_t mp = (5 * doy + 2) / 153;                                    /* month from March, 0-11 */
        unsigned day = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
        unsigned month = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
        unsigned year = (unsigned)(yoe + era * 400 + (month <= 2));
        digits(out, year, 4);
        out[4] = '-';
        digits(out + 5, month, 2);
        out[7] = '-';
        digits(out + 8, day, 2);
        out[10] = 'T';
        digits(out + 11, (unsigned)(secs / 3600), 2);
        out[13] = ':';
        digits(out + 14, (unsigned)(secs / 60 % 60), 2);
        out[16] = ':';
        digits(out + 17, (unsigned)(secs % 60), 2);
        out[19] = 'Z';
        out[20] = '\0';
        return;
    }
    time_t t = (time_t)unix_s;
    gmtime_r(&t, &tm);
    strftime(out, (size_t)outsz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void emit(json_t *obj)
{
    char *line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    json_decref(obj);
    if (!line)
        return;
    size_t n = strlen(line);
    line[n] = '\n'; /* json_dumps' buffer has the NUL here; we write n+1 bytes and never read it as a string again */
    ssize_t w = write(STDERR_FILENO, line, n + 1);
    (void)w;
    free(line);
}

static json_t *base(ds_log_level_t level)
{
    char ts[40];
    ds_log_now_rfc3339(ts, sizeof(ts));
    return json_pack("{s:s,s:s}", "ts", ts, "level", ds_log_level_name(level));
}

void ds_log(ds_log_level_t level, const char *fmt, ...)
{
    if ((int)level < atomic_load(&current_level))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *o = base(level);
    if (!o)
        return;
    json_t *m = json_string(msg);
    json_object_set_new(o, "msg", m ? m : json_string("(message was not valid UTF-8)"));
    emit(o);
}

void ds_log_request(const char *request_id, const char *method, const char *route, int status,
                    double duration_ms, const char *project, const char *transport)
{
    if (DS_LOG_INFO < atomic_load(&current_level))
        return;
    json_t *o = base(DS_LOG_INFO);
    if (!o)
        return;
    json_object_set_new(o, "msg", json_string("request"));
    json_object_set_new(o, "request_id", json_string(request_id ? request_id : ""));
    json_object_set_new(o, "transport", json_string(transport ? transport : "http"));
    json_object_set_new(o, "method", json_string(method ? method : ""));
    json_object_set_new(o, "route", json_string(route ? route : ""));
    json_object_set_new(o, "status", json_integer(status));
    json_object_set_new(o, "duration_ms", json_real(duration_ms));
    json_object_set_new(o, "project", project ? json_string(project) : json_null());
    emit(o);
}
