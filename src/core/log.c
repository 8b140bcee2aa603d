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

void ds_time_rfc3339(int64_t unix_s, char *out, int outsz)
{
    struct tm tm;
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
