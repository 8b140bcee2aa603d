/*
 * test_log.c - RFC 3339 times: the calendar arithmetic gives, second for
 * second, what gmtime_r and strftime give (leap years, century rules, the
 * ends of its range), and instants outside the range still format.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

static void libc_time(int64_t s, char *out, size_t n)
{
    struct tm tm;
    time_t t = (time_t)s;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void check(int64_t s)
{
    char got[40], want[40];
    memset(got, 'x', sizeof(got));
    ds_time_rfc3339(s, got, sizeof(got));
    libc_time(s, want, sizeof(want));
    cr_assert_str_eq(got, want, "at %lld", (long long)s);
}

Test(log, rfc3339_known_instants)
{
    char out[40];
    ds_time_rfc3339(0, out, sizeof(out));
    cr_assert_str_eq(out, "1970-01-01T00:00:00Z");
    ds_time_rfc3339(951782400, out, sizeof(out));
    cr_assert_str_eq(out, "2000-02-29T00:00:00Z");
    ds_time_rfc3339(1795239254, out, sizeof(out));
    cr_assert_str_eq(out, "2026-11-21T05:34:14Z");
    ds_time_rfc3339(INT64_C(253402300799), out, sizeof(out));
    cr_assert_str_eq(out, "9999-12-31T23:59:59Z");
}

Test(log, rfc3339_matches_gmtime_around_every_year_boundary_and_leap_day)
{
    struct tm tm = {0};
    for (int year = 1970; year <= 9999; year++) {
        tm.tm_year = year - 1900;
        tm.tm_mon = 0;
        tm.tm_mday = 1;
        int64_t jan1 = (int64_t)timegm(&tm);
        tm.tm_mon = 1;
        tm.tm_mday = 28;
        int64_t feb28 = (int64_t)timegm(&tm);
        for (int64_t d = -1; d <= 1; d++)
            if (jan1 + d >= 0)
                check(jan1 + d);
        for (int64_t h = 0; h < 3; h++)
            check(feb28 + h * 86400 + 86399); /* the last second of Feb 28, Feb 29 or Mar 1, and of the day after */
    }
}

Test(log, rfc3339_matches_gmtime_at_random_instants)
{
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < 50000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        check((int64_t)(x % UINT64_C(253402300800)));
    }
    for (int64_t s = 1795190400 - 5; s < 1795190400 + 86400 * 3; s += 61)
        check(s);
}

Test(log, rfc3339_outside_the_fast_range_still_formats)
{
    check(INT64_C(253402300800)); /* year 10000 */
    check(-1);
    check(-86400 * 365);
}
