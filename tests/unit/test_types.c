/*
 * test_types.c - column type canonicalization and the point-in-time grammar
 * of changed_since / changed_until.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "core/types.h"

static ds_err_t err;

Test(types, canonical_names)
{
    char out[DS_TYPE_MAX];
    cr_assert_eq(ds_type_canonical("string", "c", out, &err), DS_OK);
    cr_assert_str_eq(out, "VARCHAR");
    cr_assert_eq(ds_type_canonical("decimal(12, 2)", "c", out, &err), DS_OK);
    cr_assert_str_eq(out, "DECIMAL(12,2)");
    cr_assert_eq(ds_type_canonical("INTEGER); DROP TABLE x; --", "c", out, &err), DS_INVALID_ARGUMENT);
}

/* 2026-11-30 12:00:00 UTC: the "now" relative forms count from. */
#define NOW_US (INT64_C(1796040000) * 1000000)

static const char *utc(const char *v)
{
    static char text[DS_TIME_TEXT_MAX];
    int64_t us;
    memset(&err, 0, sizeof(err));
    if (ds_time_parse(v, NOW_US, "changed_since", &us, &err) != DS_OK)
        return err.message;
    ds_time_format_utc(us, text);
    return text;
}

Test(types, times_become_one_utc_instant)
{
    static const struct {
        const char *in, *utc;
    } cases[] = {
        {"0", "1970-01-01 00:00:00.000000"},
        {"1767225600", "2026-01-01 00:00:00.000000"},
        {"-5", "1969-12-31 23:59:55.000000"},
        {"+17", "1970-01-01 00:00:17.000000"},
        {"2026-01-02", "2026-01-02 00:00:00.000000"},
        {"2026-01-02 03:04:05", "2026-01-02 03:04:05.000000"},
        {"2026-01-02T03:04:05Z", "2026-01-02 03:04:05.000000"},
        {"2026-01-02t03:04:05z", "2026-01-02 03:04:05.000000"},
        {"2026-01-02T03:04:05.123456", "2026-01-02 03:04:05.123456"},
        {"2026-01-02T03:04:05.1234567", "2026-01-02 03:04:05.123456"},
        {"2026-01-02T03:04:05,5", "2026-01-02 03:04:05.500000"},
        {"2026-01-02 03:04", "2026-01-02 03:04:00.000000"},
        {"2026-01-02T03:04:05+02:00", "2026-01-02 01:04:05.000000"},
        {"2026-01-02T01:04:05+02", "2026-01-01 23:04:05.000000"},
        {"2026-01-02T03:04:05-0130", "2026-01-02 04:34:05.000000"},
        {"2016-12-31 23:59:60", "2017-01-01 00:00:00.000000"},
        {"2024-02-29", "2024-02-29 00:00:00.000000"},
        {"0001-01-01", "0001-01-01 00:00:00.000000"},
        {"9999-12-31T23:59:59.999999Z", "9999-12-31 23:59:59.999999"},
        {"-15 minutes", "2026-11-30 11:45:00.000000"},
        {"-1 minute", "2026-11-30 11:59:00.000000"},
        {"-1 minutes", "2026-11-30 11:59:00.000000"},
        {"-2 hours", "2026-11-30 10:00:00.000000"},
        {"-1 hour", "2026-11-30 11:00:00.000000"},
        {"-7 days", "2026-11-23 12:00:00.000000"},
        {"-1 day", "2026-11-29 12:00:00.000000"},
        {"-1 week", "2026-11-23 12:00:00.000000"},
        {"-30 seconds", "2026-11-30 11:59:30.000000"},
        {"-5 min", "2026-11-30 11:55:00.000000"},
        {"-2 Hours", "2026-11-30 10:00:00.000000"},
        {"+1 day", "2026-12-01 12:00:00.000000"},
        {"3 days ago", "2026-11-27 12:00:00.000000"},
        {"now", "2026-11-30 12:00:00.000000"},
        {"-52000 weeks", "1030-04-26 12:00:00.000000"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_expect_str_eq(utc(cases[i].in), cases[i].utc, "%s", cases[i].in);
}

Test(types, times_that_are_refused_name_the_field_and_the_forms)
{
    const char *bad[] = {"", "soon", "not a time", "2026-13-01", "2026-01-32", "2026-02-29", "2026-04-31", "2026-1-2",
                         "2026-01-02 24:00", "2026-01-02 03:60", "2026-01-02x", "2026-01-02 03:04:05.",
                         "2026-01-02 03:04:05+25:00", "1e9", "99999999999999999999", "2026-01-02 03:04:05 UTC; DROP",
                         "12:00", "-15", "-15 fortnights", "-15 minutesx", "- minutes", "-1 minutes ago ago",
                         "-9999999999 days", "0000-01-01", "-1 months", "minutes", "1767225600.5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t us;
        memset(&err, 0, sizeof(err));
        if (strcmp(bad[i], "-15") == 0) { /* unix seconds before 1970: valid */
            cr_expect_eq(ds_time_parse(bad[i], NOW_US, "changed_until", &us, &err), DS_OK);
            continue;
        }
        cr_expect_eq(ds_time_parse(bad[i], NOW_US, "changed_until", &us, &err), DS_INVALID_ARGUMENT, "%s accepted",
                     bad[i]);
        cr_expect(strstr(err.message, "changed_until") != NULL, "message without the field: %s", err.message);
        cr_expect(strstr(err.message, "-15 minutes") != NULL, "message without the forms: %s", err.message);
        cr_expect_str_eq(err.field, "changed_until");
    }
}

Test(types, times_out_of_range_are_refused)
{
    const char *bad[] = {"999999999999", "-999999999999", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00",
                         "+999999999 weeks", "-999999999 weeks", "999999999 days ago"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t us;
        memset(&err, 0, sizeof(err));
        cr_expect_eq(ds_time_parse(bad[i], NOW_US, "changed_since", &us, &err), DS_INVALID_ARGUMENT, "%s accepted",
                     bad[i]);
        cr_expect(strstr(err.message, "out of range") != NULL, "%s: %s", bad[i], err.message);
    }
}
