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

Test(types, times_that_are_accepted)
{
    const char *ok[] = {"0", "1767225600", "-5", "+17", "2026-01-02", "2026-01-02 03:04:05", "2026-01-02T03:04:05Z",
                        "2026-01-02T03:04:05.123456", "2026-01-02 03:04", "2026-01-02T03:04:05+02:00",
                        "2026-01-02T03:04:05-0130", "2026-01-02T03:04:05+02", "2016-12-31 23:59:60"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        cr_expect_eq(ds_time_check(ok[i], "changed_since", &err), DS_OK, "%s rejected: %s", ok[i], err.message);
}

Test(types, times_that_are_refused_name_the_field)
{
    const char *bad[] = {"", "soon", "not a time", "2026-13-01", "2026-01-32", "2026-1-2", "2026-01-02 24:00",
                         "2026-01-02 03:60", "2026-01-02x", "2026-01-02 03:04:05.", "2026-01-02 03:04:05+25:00",
                         "1e9", "99999999999999999999", "2026-01-02 03:04:05 UTC; DROP", "12:00"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&err, 0, sizeof(err));
        cr_expect_eq(ds_time_check(bad[i], "changed_until", &err), DS_INVALID_ARGUMENT, "%s accepted", bad[i]);
        cr_expect(strstr(err.message, "changed_until") != NULL, "message without the field: %s", err.message);
        cr_expect_str_eq(err.field, "changed_until");
    }
}
