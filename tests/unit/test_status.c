/*
 * test_status.c - what each status looks like to clients (JSON code, HTTP
 * status, gRPC code, Keboola code) and the error-detail helpers.
 *
 * The expected table below is written out by hand on purpose: the mapping is
 * an external contract, so changing it must mean changing this test too.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "core/status.h"

static const struct {
    ds_status_t st;
    const char *code;
    int http;
    int grpc;
    int keboola;
} expected[] = {
    {DS_OK, "ok", 200, 0, 0},
    {DS_INVALID_ARGUMENT, "invalid_argument", 400, 3, 3000},
    {DS_UNAUTHENTICATED, "unauthenticated", 401, 16, 1002},
    {DS_PERMISSION_DENIED, "permission_denied", 403, 7, 2007},
    {DS_NOT_FOUND, "not_found", 404, 5, 2000},
    {DS_ALREADY_EXISTS, "already_exists", 409, 6, 2006},
    {DS_CONFLICT, "conflict", 409, 9, 3000},
    {DS_PAYLOAD_TOO_LARGE, "payload_too_large", 413, 3, 3000},
    {DS_QUEUE_FULL, "queue_full", 429, 8, 2006},
    {DS_UNSUPPORTED, "not_supported", 501, 12, 900},
    {DS_UNAVAILABLE, "unavailable", 503, 14, 1001},
    {DS_INTERNAL, "internal", 500, 13, 0},
    {DS_METHOD_NOT_ALLOWED, "method_not_allowed", 405, 12, 3000},
    {DS_INSUFFICIENT_STORAGE, "insufficient_storage", 507, 8, 1001},
    {DS_CANCELLED, "cancelled", 499, 1, 0},
    {DS_QUERY_FAILED, "query_failed", 400, 3, 3000},
    {DS_RESOURCE_EXHAUSTED, "resource_exhausted", 503, 8, 1001},
};

#define N_EXPECTED (sizeof(expected) / sizeof(expected[0]))

#define COUNT_STATUS(name, value, code, http, grpc, kbc) +1
static const size_t n_statuses = 0 DS_STATUS_MAP(COUNT_STATUS);
#undef COUNT_STATUS

Test(status, every_status_is_covered_by_this_test)
{
    cr_assert_eq(n_statuses, N_EXPECTED,
                 "DS_STATUS_MAP has %zu entries, this test knows %zu: add the new ones above",
                 n_statuses, N_EXPECTED);
}

Test(status, every_status_maps_to_its_code_http_grpc_and_keboola)
{
    for (size_t i = 0; i < N_EXPECTED; i++) {
        ds_status_t st = expected[i].st;
        cr_assert_str_eq(ds_status_code(st), expected[i].code, "status %d", (int)st);
        cr_assert_eq(ds_status_http(st), expected[i].http, "%s", expected[i].code);
        cr_assert_eq(ds_status_grpc(st), expected[i].grpc, "%s", expected[i].code);
        cr_assert_eq(ds_status_keboola(st), expected[i].keboola, "%s", expected[i].code);
    }
}

Test(status, success_is_zero_and_failures_are_negative)
{
    cr_assert_eq(DS_OK, 0);
    for (size_t i = 0; i < N_EXPECTED; i++)
        if (expected[i].st != DS_OK)
            cr_assert_lt((int)expected[i].st, 0, "%s", expected[i].code);
}

Test(status, codes_are_unique)
{
    for (size_t i = 0; i < N_EXPECTED; i++)
        for (size_t j = i + 1; j < N_EXPECTED; j++) {
            cr_assert_neq(expected[i].st, expected[j].st);
            cr_assert_str_neq(ds_status_code(expected[i].st), ds_status_code(expected[j].st));
        }
}

Test(status, unknown_status_reports_internal)
{
    ds_status_t bogus = (ds_status_t)-999;
    cr_assert_str_eq(ds_status_code(bogus), "internal");
    cr_assert_eq(ds_status_http(bogus), 500);
    cr_assert_eq(ds_status_grpc(bogus), 13);
    cr_assert_eq(ds_status_keboola(bogus), ds_status_keboola(DS_INTERNAL));
}

Test(status, from_http)
{
    cr_assert_eq(ds_status_from_http(200), DS_OK);
    cr_assert_eq(ds_status_from_http(400), DS_INVALID_ARGUMENT);
    cr_assert_eq(ds_status_from_http(401), DS_UNAUTHENTICATED);
    cr_assert_eq(ds_status_from_http(404), DS_NOT_FOUND);
    cr_assert_eq(ds_status_from_http(409), DS_ALREADY_EXISTS, "first match wins for 409");
    cr_assert_eq(ds_status_from_http(429), DS_QUEUE_FULL);
    cr_assert_eq(ds_status_from_http(503), DS_UNAVAILABLE);
    cr_assert_eq(ds_status_from_http(418), DS_INTERNAL);
    cr_assert_eq(ds_status_from_http(0), DS_INTERNAL);
}

Test(status, err_set_fills_and_returns)
{
    ds_err_t err;
    memset(&err, 0x55, sizeof(err));
    cr_assert_eq(ds_err_set(&err, DS_NOT_FOUND, "table \"%s\" not found", "t1"), DS_NOT_FOUND);
    cr_assert_eq(err.status, DS_NOT_FOUND);
    cr_assert_str_eq(err.message, "table \"t1\" not found");
    cr_assert_str_eq(err.field, "", "ds_err_set clears the field");
    cr_assert_eq(err.keboola_code, 0);
    cr_assert_eq(ds_err_keboola(&err), 2000, "default Keboola code of not_found");
}

Test(status, err_setf_names_the_field)
{
    ds_err_t err;
    cr_assert_eq(ds_err_setf(&err, DS_INVALID_ARGUMENT, "name", "bad %d", 7), DS_INVALID_ARGUMENT);
    cr_assert_str_eq(err.field, "name");
    cr_assert_str_eq(err.message, "bad 7");
    ds_err_setf(&err, DS_INVALID_ARGUMENT, NULL, "x");
    cr_assert_str_eq(err.field, "");
}

Test(status, err_set_accepts_null)
{
    cr_assert_eq(ds_err_set(NULL, DS_CONFLICT, "ignored %s", "x"), DS_CONFLICT);
    cr_assert_eq(ds_err_setf(NULL, DS_QUEUE_FULL, "f", "ignored"), DS_QUEUE_FULL);
    ds_err_clear(NULL);
    cr_assert_eq(ds_err_keboola(NULL), 0);
}

Test(status, long_messages_are_truncated_not_overflowed)
{
    static char big[DS_ERR_MSG_MAX * 3];
    memset(big, 'm', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ds_err_t err;
    ds_err_set(&err, DS_INTERNAL, "%s", big);
    cr_assert_eq(strlen(err.message), DS_ERR_MSG_MAX - 1);
    char longfield[200];
    memset(longfield, 'f', sizeof(longfield) - 1);
    longfield[sizeof(longfield) - 1] = '\0';
    ds_err_setf(&err, DS_INVALID_ARGUMENT, longfield, "x");
    cr_assert_eq(strlen(err.field), sizeof(err.field) - 1);
}

Test(status, specific_keboola_code_overrides_the_default)
{
    ds_err_t err;
    cr_assert_eq(ds_err_setk(&err, DS_NOT_FOUND, DS_KBC_TABLE_NOT_FOUND, "table %s missing", "t"), DS_NOT_FOUND,
                 "ds_err_setk returns the status it sets");
    cr_assert_str_eq(err.message, "table t missing");
    cr_assert_eq(err.keboola_code, DS_KBC_TABLE_NOT_FOUND);
    cr_assert_eq(ds_err_keboola(&err), 2004);
    /* A new error resets the specific code. */
    ds_err_set(&err, DS_NOT_FOUND, "bucket missing");
    cr_assert_eq(ds_err_keboola(&err), 2000);
}

Test(status, clear_resets_to_success)
{
    ds_err_t err;
    ds_err_setf(&err, DS_CONFLICT, "f", "busy");
    ds_err_clear(&err);
    cr_assert_eq(err.status, DS_OK);
    cr_assert_str_eq(err.message, "");
    cr_assert_str_eq(err.field, "");
    cr_assert_eq(ds_err_keboola(&err), 0);
}
