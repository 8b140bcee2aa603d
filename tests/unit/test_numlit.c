/*
 * test_numlit.c - number literals checked exactly against numeric types.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "core/numlit.h"

static ds_err_t err;

/* The literal text text gives for type; fails the test when it is refused. */
static const char *lit(const char *text, const char *type)
{
    static char out[DS_NUM_LIT_MAX];
    const char *l;
    ds_status_t st = ds_num_for_type(text, type, "filter on \"x\"", out, &l, &err);
    cr_assert_eq(st, DS_OK, "%s as %s: %s", text, type, err.message);
    return l;
}

static void refused(const char *text, const char *type, const char *mention)
{
    char out[DS_NUM_LIT_MAX];
    const char *l;
    cr_assert_eq(ds_num_for_type(text, type, "filter on \"x\"", out, &l, &err), DS_INVALID_ARGUMENT, "%s as %s",
                 text, type);
    cr_assert(strstr(err.message, mention), "message \"%s\" does not mention \"%s\"", err.message, mention);
    cr_assert(strstr(err.message, "filter on \"x\""));
}

Test(numlit, integers_are_exact_at_any_size)
{
    cr_assert_str_eq(lit("1234567", "BIGINT"), "1234567");
    cr_assert_str_eq(lit("9007199254740993", "BIGINT"), "9007199254740993");
    cr_assert_str_eq(lit("9223372036854775807", "BIGINT"), "9223372036854775807");
    cr_assert_str_eq(lit("-9223372036854775808", "BIGINT"), "-9223372036854775808");
    cr_assert_str_eq(lit("-0", "BIGINT"), "0");
    cr_assert_str_eq(lit("1.50e2", "INTEGER"), "150");
    cr_assert_str_eq(lit("000120.000", "SMALLINT"), "120");
    cr_assert_str_eq(lit("170141183460469231731687303715884105727", "HUGEINT"),
                     "170141183460469231731687303715884105727");
    cr_assert_str_eq(lit("18446744073709551615", "UBIGINT"), "18446744073709551615");
}

Test(numlit, integers_out_of_range_are_refused)
{
    refused("9223372036854775808", "BIGINT", "9223372036854775808");
    refused("-9223372036854775809", "BIGINT", "out of the range of BIGINT");
    refused("99999999999999999999", "BIGINT", "99999999999999999999");
    refused("128", "TINYINT", "TINYINT");
    refused("-1", "UINTEGER", "out of the range");
    refused("1e300", "HUGEINT", "1e300");
    refused("0.5", "BIGINT", "not a whole number");
    refused("1e-1", "INTEGER", "not a whole number");
}

Test(numlit, decimals_are_exact)
{
    cr_assert_str_eq(lit("0.1", "DECIMAL(38,2)"), "0.1");
    cr_assert_str_eq(lit("12345678901234567890.12", "DECIMAL(38,2)"), "12345678901234567890.12");
    cr_assert_str_eq(lit("-0.10", "DECIMAL(5,2)"), "-0.1");
    cr_assert_str_eq(lit("-0", "DECIMAL(5,2)"), "0");
    cr_assert_str_eq(lit("1.5E-2", "DECIMAL(10,3)"), "0.015");
    cr_assert_str_eq(lit("1e35", "DECIMAL(38,2)"), "100000000000000000000000000000000000");
    refused("0.125", "DECIMAL(38,2)", "more than 2 decimal places");
    refused("1000", "DECIMAL(5,2)", "too large for DECIMAL(5,2)");
    refused("1e300", "DECIMAL(38,2)", "1e300");
}

Test(numlit, doubles_keep_the_text)
{
    cr_assert_str_eq(lit("0.1", "DOUBLE"), "0.1");
    cr_assert_str_eq(lit("1e300", "DOUBLE"), "1e300");
    cr_assert_str_eq(lit("-0", "DOUBLE"), "-0");
    cr_assert_str_eq(lit("12345678901234567890.5", "DOUBLE"), "12345678901234567890.5");
    refused("1e400", "DOUBLE", "too large");
    refused("1e300", "FLOAT", "too large");
    refused("1e-400", "DOUBLE", "too small");
    cr_assert_str_eq(lit("0e-400", "DOUBLE"), "0e-400");
}

Test(numlit, non_numbers_are_refused)
{
    const char *bad[] = {"", "abc", "1.2.3", "1e", "--1", " 1", "1 ", "0x10", "inf", "nan", ".", "-", "1e+", NULL};
    for (int i = 0; bad[i]; i++)
        refused(bad[i], "BIGINT", "not a number");
    cr_assert_str_eq(lit(".5", "DOUBLE"), ".5");
    cr_assert_str_eq(lit("5.", "BIGINT"), "5");
    cr_assert(ds_num_is_numeric_type("DECIMAL(10,2)") && ds_num_is_numeric_type("UTINYINT"));
    cr_assert(!ds_num_is_numeric_type("VARCHAR") && !ds_num_is_numeric_type("TIMESTAMP"));
}
