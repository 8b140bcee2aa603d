/*
 * status.c - lookups over DS_STATUS_MAP and the error struct helpers.
 */
#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    ds_status_t st;
    const char *code;
    int http;
    int grpc;
    int keboola;
} ds_status_row_t;

static const ds_status_row_t rows[] = {
#define DS_STATUS_ROW(name, value, code, http, grpc, kbc) {DS_##name, code, http, grpc, kbc},
    DS_STATUS_MAP(DS_STATUS_ROW)
#undef DS_STATUS_ROW
};

static const ds_status_row_t *find(ds_status_t st)
{
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        if (rows[i].st == st)
            return &rows[i];
    return NULL;
}

static const ds_status_row_t *find_or_internal(ds_status_t st)
{
    const ds_status_row_t *r = find(st);
    return r ? r : find(DS_INTERNAL);
}

const char *ds_status_code(ds_status_t st) { return find_or_internal(st)->code; }
int ds_status_http(ds_status_t st) { return find_or_internal(st)->http; }
int ds_status_grpc(ds_status_t st) { return find_or_internal(st)->grpc; }
int ds_status_keboola(ds_status_t st) { return find_or_internal(st)->keboola; }

ds_status_t ds_status_from_http(int http)
{
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        if (rows[i].http == http)
            return rows[i].st;
    return DS_INTERNAL;
}

static ds_status_t err_vset(ds_err_t *err, ds_status_t st, const char *field, const char *fmt,
                            va_list ap)
{
    if (!err)
        return st;
    err->status = st;
    err->keboola_code = 0;
    snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    return st;
}

ds_status_t ds_err_set(ds_err_t *err, ds_status_t st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(err, st, NULL, fmt, ap);
    va_end(ap);
    return st;
}

ds_status_t ds_err_setf(ds_err_t *err, ds_status_t st, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(err, st, field, fmt, ap);
    va_end(ap);
    return st;
}

void ds_err_clear(ds_err_t *err)
{
    if (err)
        memset(err, 0, sizeof(*err));
}

int ds_err_keboola(const ds_err_t *err)
{
    if (!err)
        return 0;
    return err->keboola_code ? err->keboola_code : ds_status_keboola(err->status);
}

ds_status_t ds_err_setk(ds_err_t *err, ds_status_t st, int keboola_code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(err, st, NULL, fmt, ap);
    va_end(ap);
    if (err)
        err->keboola_code = keboola_code;
    return st;
}
