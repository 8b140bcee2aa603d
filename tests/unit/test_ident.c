/*
 * test_ident.c - the identifier grammar (projects, buckets, stages, names,
 * Storage File keys) and SQL quoting of identifiers and literals.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "core/ident.h"

static ds_err_t err;

/* A string of n copies of c, in a static buffer. */
static const char *repeat(char c, size_t n)
{
    static char s[2048];
    cr_assert_lt(n, sizeof(s));
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

Test(ident, project_id_length_limit)
{
    cr_assert_eq(ds_ident_check_project(repeat('p', 64), &err), DS_OK);
    cr_assert_eq(ds_ident_check_project(repeat('p', 65), &err), DS_INVALID_ARGUMENT);
    cr_assert_eq(ds_ident_check_project("", &err), DS_INVALID_ARGUMENT);
    cr_assert_eq(ds_ident_check_project(NULL, &err), DS_INVALID_ARGUMENT);
}

Test(ident, project_id_characters)
{
    static const char *const ok[] = {"p1", "my-project", "my_project", "123", "A-Z_0", NULL};
    for (int i = 0; ok[i]; i++)
        cr_assert_eq(ds_ident_check_project(ok[i], &err), DS_OK, "\"%s\": %s", ok[i], err.message);
    static const char *const bad[] = {"a.b", "a b", "a/b", "../x", "a\"b", "é", "a;drop", NULL};
    for (int i = 0; bad[i]; i++)
        cr_assert_eq(ds_ident_check_project(bad[i], &err), DS_INVALID_ARGUMENT, "\"%s\" accepted",
                     bad[i]);
}

Test(ident, project_error_names_field_and_value)
{
    memset(&err, 0, sizeof(err));
    cr_assert_eq(ds_ident_check_project("bad id", &err), DS_INVALID_ARGUMENT);
    cr_assert_eq(err.status, DS_INVALID_ARGUMENT);
    cr_assert_str_eq(err.field, "project_id");
    cr_assert_not_null(strstr(err.message, "\"bad id\""), "message: %s", err.message);
}

Test(ident, errors_without_an_err_struct_still_fail)
{
    cr_assert_eq(ds_ident_check_project("a b", NULL), DS_INVALID_ARGUMENT);
    cr_assert_eq(ds_ident_check_name("1", "table", NULL), DS_INVALID_ARGUMENT);
    cr_assert_eq(ds_ident_check_file_key("/etc/passwd", NULL), DS_INVALID_ARGUMENT);
}

Test(ident, bucket_ids)
{
    static const char *const ok[] = {"in.c-main", "out.c-results", "sales", "a.b-c_d", "in.c-x1",
                                      NULL};
    for (int i = 0; ok[i]; i++)
        cr_assert_eq(ds_ident_check_bucket(ok[i], "bucket", &err), DS_OK, "\"%s\": %s", ok[i],
                     err.message);
    cr_assert_eq(ds_ident_check_bucket(repeat('b', 96), "bucket", &err), DS_OK);
    cr_assert_eq(ds_ident_check_bucket(repeat('b', 97), "bucket", &err), DS_INVALID_ARGUMENT);
    static const char *const bad[] = {"", "_private", ".hidden", "a..b", "..", "in/c-x", "a b",
                                      "x\"y", NULL};
    for (int i = 0; bad[i]; i++)
        cr_assert_eq(ds_ident_check_bucket(bad[i], "bucket", &err), DS_INVALID_ARGUMENT,
                     "\"%s\" accepted", bad[i]);
}

Test(ident, bucket_ids_may_not_shadow_duckdb_schemas)
{
    static const char *const reserved[] = {"main", "MAIN", "information_schema", "pg_catalog",
                                           "temp", "system", NULL};
    for (int i = 0; reserved[i]; i++) {
        memset(&err, 0, sizeof(err));
        cr_assert_eq(ds_ident_check_bucket(reserved[i], "bucketId", &err), DS_INVALID_ARGUMENT,
                     "\"%s\" accepted", reserved[i]);
        cr_assert_str_eq(err.field, "bucketId", "the caller's field name is reported");
        cr_assert_not_null(strstr(err.message, "reserved"), "message: %s", err.message);
    }
    cr_assert_eq(ds_ident_check_bucket("mainly", "bucket", &err), DS_OK);
}

Test(ident, stage_is_in_or_out)
{
    cr_assert_eq(ds_ident_check_stage("in", &err), DS_OK);
    cr_assert_eq(ds_ident_check_stage("out", &err), DS_OK);
    static const char *const bad[] = {"", "IN", "sys", "inn", "ou", NULL};
    for (int i = 0; bad[i]; i++)
        cr_assert_eq(ds_ident_check_stage(bad[i], &err), DS_INVALID_ARGUMENT, "\"%s\" accepted",
                     bad[i]);
    cr_assert_eq(ds_ident_check_stage(NULL, &err), DS_INVALID_ARGUMENT);
    cr_assert_str_eq(err.field, "stage");
}

Test(ident, bucket_name_part)
{
    cr_assert_eq(ds_ident_check_bucket_name("main", &err), DS_OK);
    cr_assert_eq(ds_ident_check_bucket_name("c-main", &err), DS_OK);
    cr_assert_eq(ds_ident_check_bucket_name(repeat('n', 64), &err), DS_OK);
    cr_assert_eq(ds_ident_check_bucket_name(repeat('n', 65), &err), DS_INVALID_ARGUMENT);
    cr_assert_eq(ds_ident_check_bucket_name("a.b", &err), DS_INVALID_ARGUMENT);
    cr_assert_eq(ds_ident_check_bucket_name("", &err), DS_INVALID_ARGUMENT);
}

Test(ident, table_and_column_names)
{
    static const char *const ok[] = {"orders", "Order_Items", "a1", "_x", "x_ds", "1a", NULL};
    for (int i = 0; ok[i]; i++)
        cr_assert_eq(ds_ident_check_name(ok[i], "table", &err), DS_OK, "\"%s\": %s", ok[i],
                     err.message);
    cr_assert_eq(ds_ident_check_name(repeat('c', 64), "column", &err), DS_OK);
    cr_assert_eq(ds_ident_check_name(repeat('c', 65), "column", &err), DS_INVALID_ARGUMENT);
    static const char *const bad[] = {"", "a-b", "a.b", "a b", "a\"b", "naïve", NULL};
    for (int i = 0; bad[i]; i++)
        cr_assert_eq(ds_ident_check_name(bad[i], "column", &err), DS_INVALID_ARGUMENT,
                     "\"%s\" accepted", bad[i]);
}

Test(ident, digits_only_names_are_rejected)
{
    memset(&err, 0, sizeof(err));
    cr_assert_eq(ds_ident_check_name("123", "column", &err), DS_INVALID_ARGUMENT);
    cr_assert_not_null(strstr(err.message, "digits"), "message: %s", err.message);
    cr_assert_eq(ds_ident_check_name("0", "table", &err), DS_INVALID_ARGUMENT);
    cr_assert_eq(ds_ident_check_name("123a", "table", &err), DS_OK);
}

Test(ident, reserved_names_are_rejected)
{
    static const char *const reserved[] = {"_ds", "_ds_meta", "_DS_x", "_timestamp", "_TIMESTAMP", "rowid", "RowId",
                                           NULL};
    for (int i = 0; reserved[i]; i++) {
        memset(&err, 0, sizeof(err));
        cr_assert_eq(ds_ident_check_name(reserved[i], "column", &err), DS_INVALID_ARGUMENT,
                     "\"%s\" accepted", reserved[i]);
        cr_assert_not_null(strstr(err.message, "reserved"), "message: %s", err.message);
    }
    cr_assert_eq(ds_ident_check_name("_d", "column", &err), DS_OK);
    cr_assert_eq(ds_ident_check_name("_timestamps", "column", &err), DS_OK);
    /* rowid is reserved for columns only (a table may be called rowid) */
    cr_assert_eq(ds_ident_check_name("rowid", "table", &err), DS_OK);
    cr_assert_eq(ds_ident_check_name("rowids", "column", &err), DS_OK);
}

Test(ident, name_error_says_what_was_checked)
{
    memset(&err, 0, sizeof(err));
    ds_ident_check_name("a-b", "column", &err);
    cr_assert_str_eq(err.field, "column");
    cr_assert_not_null(strstr(err.message, "column name"), "message: %s", err.message);
    ds_ident_check_name("a-b", "table", &err);
    cr_assert_not_null(strstr(err.message, "table name"), "message: %s", err.message);
}

Test(ident, file_keys_accepted)
{
    static const char *const ok[] = {"data.csv", "exports/2024/01/part-0001.csv.gz", "a b.csv",
                                     "..hidden", "a..b", "x/.y", "ünïcode.csv", NULL};
    for (int i = 0; ok[i]; i++)
        cr_assert_eq(ds_ident_check_file_key(ok[i], &err), DS_OK, "\"%s\": %s", ok[i], err.message);
    cr_assert_eq(ds_ident_check_file_key(repeat('k', 1024), &err), DS_OK);
}

Test(ident, file_keys_that_escape_or_are_malformed_are_rejected)
{
    static const char *const bad[] = {"",
                                      "/etc/passwd",
                                      "/",
                                      "../secret",
                                      "a/../../b",
                                      "a/..",
                                      "..",
                                      ".",
                                      "./a",
                                      "a/./b",
                                      "a//b",
                                      "a\\..\\b",
                                      "line\nbreak",
                                      "tab\there",
                                      "del\x7f",
                                      NULL};
    for (int i = 0; bad[i]; i++)
        cr_assert_eq(ds_ident_check_file_key(bad[i], &err), DS_INVALID_ARGUMENT, "\"%s\" accepted",
                     bad[i]);
    cr_assert_eq(ds_ident_check_file_key(repeat('k', 1025), &err), DS_INVALID_ARGUMENT);
    cr_assert_eq(ds_ident_check_file_key(NULL, &err), DS_INVALID_ARGUMENT);
}

Test(ident, quote_doubles_embedded_quotes)
{
    char out[64];
    cr_assert(ds_ident_quote("orders", out, sizeof(out)));
    cr_assert_str_eq(out, "\"orders\"");
    cr_assert(ds_ident_quote("a\"b", out, sizeof(out)));
    cr_assert_str_eq(out, "\"a\"\"b\"");
    cr_assert(ds_ident_quote("\"", out, sizeof(out)));
    cr_assert_str_eq(out, "\"\"\"\"");
    cr_assert(ds_ident_quote("x\"; DROP TABLE t; --", out, sizeof(out)));
    cr_assert_str_eq(out, "\"x\"\"; DROP TABLE t; --\"");
    cr_assert(ds_ident_quote("it's", out, sizeof(out)));
    cr_assert_str_eq(out, "\"it's\"", "single quotes are not special in identifiers");
}

Test(ident, quote_buffer_boundaries)
{
    char out[16];
    /* "a""b" is 6 characters plus NUL. */
    cr_assert(ds_ident_quote("a\"b", out, 7));
    cr_assert_str_eq(out, "\"a\"\"b\"");
    memset(out, 'x', sizeof(out));
    cr_assert_not(ds_ident_quote("a\"b", out, 6));
    cr_assert_str_eq(out, "", "a failed quote leaves an empty string, never a truncated one");
    cr_assert(ds_ident_quote("ab", out, 5));
    cr_assert_not(ds_ident_quote("ab", out, 4));
    cr_assert_str_eq(out, "");
    cr_assert_not(ds_ident_quote(NULL, out, sizeof(out)));
}

Test(ident, literal_doubles_single_quotes)
{
    char out[64];
    cr_assert(ds_sql_literal("hello", out, sizeof(out)));
    cr_assert_str_eq(out, "'hello'");
    cr_assert(ds_sql_literal("it's", out, sizeof(out)));
    cr_assert_str_eq(out, "'it''s'");
    cr_assert(ds_sql_literal("", out, sizeof(out)));
    cr_assert_str_eq(out, "''");
    cr_assert(ds_sql_literal("'; DROP TABLE t; --", out, sizeof(out)));
    cr_assert_str_eq(out, "'''; DROP TABLE t; --'");
    cr_assert(ds_sql_literal("a\"b", out, sizeof(out)));
    cr_assert_str_eq(out, "'a\"b'");
}

Test(ident, literal_buffer_boundaries)
{
    char out[16];
    /* 'it''s' is 7 characters plus NUL. */
    cr_assert(ds_sql_literal("it's", out, 8));
    cr_assert_str_eq(out, "'it''s'");
    memset(out, 'x', sizeof(out));
    cr_assert_not(ds_sql_literal("it's", out, 7));
    cr_assert_str_eq(out, "");
}
