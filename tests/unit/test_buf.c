/*
 * test_buf.c - the growable buffer: appends, growth, printf, SQL quoting,
 * reset, steal, the latched out-of-memory flag, and the JSON pieces (strings
 * byte for byte as jansson writes them, integers as printf writes them).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"

static ds_buf_t b;

static void fresh(void) { memset(&b, 0, sizeof(b)); }
static void release(void) { ds_buf_free(&b); }

TestSuite(buf, .init = fresh, .fini = release);

Test(buf, zeroed_buffer_reads_as_empty_string)
{
    cr_assert_str_eq(ds_buf_cstr(&b), "");
    cr_assert_eq(b.len, 0);
}

Test(buf, appends_concatenate)
{
    ds_buf_puts(&b, "SELECT ");
    ds_buf_append(&b, "1234", 2);
    ds_buf_puts(&b, "");
    ds_buf_puts(&b, " FROM t");
    cr_assert_str_eq(ds_buf_cstr(&b), "SELECT 12 FROM t");
    cr_assert_eq(b.len, strlen("SELECT 12 FROM t"));
    cr_assert_not(b.oom);
}

Test(buf, append_keeps_embedded_bytes_and_terminates)
{
    ds_buf_append(&b, "a\0b", 3);
    cr_assert_eq(b.len, 3);
    cr_assert_eq(memcmp(b.data, "a\0b", 4), 0, "content plus a terminating NUL");
}

Test(buf, grows_far_past_its_first_allocation)
{
    enum { N = 100000 };
    for (int i = 0; i < N; i++)
        ds_buf_append(&b, (i % 2) ? "y" : "x", 1);
    cr_assert_not(b.oom);
    cr_assert_eq(b.len, N);
    cr_assert_geq(b.cap, (size_t)N + 1);
    const char *s = ds_buf_cstr(&b);
    cr_assert_eq(strlen(s), N);
    for (int i = 0; i < N; i++)
        cr_assert_eq(s[i], (i % 2) ? 'y' : 'x', "byte %d", i);
}

Test(buf, one_large_append)
{
    size_t n = 1 << 20;
    char *big = malloc(n);
    cr_assert_not_null(big);
    memset(big, 'z', n);
    ds_buf_puts(&b, "head:");
    ds_buf_append(&b, big, n);
    cr_assert_eq(b.len, n + 5);
    cr_assert_eq(memcmp(b.data, "head:", 5), 0);
    cr_assert_eq(b.data[b.len - 1], 'z');
    cr_assert_eq(b.data[b.len], '\0');
    free(big);
}

Test(buf, printf_formats_and_appends)
{
    ds_buf_puts(&b, "LIMIT ");
    ds_buf_printf(&b, "%d OFFSET %lld", 100, 12345678901LL);
    cr_assert_str_eq(ds_buf_cstr(&b), "LIMIT 100 OFFSET 12345678901");
    ds_buf_printf(&b, "%s", "");
    cr_assert_str_eq(ds_buf_cstr(&b), "LIMIT 100 OFFSET 12345678901");
}

Test(buf, printf_output_longer_than_capacity)
{
    char big[3000];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ds_buf_puts(&b, "<");
    ds_buf_printf(&b, "%s>", big);
    cr_assert_eq(b.len, sizeof(big) + 1);
    cr_assert_eq(b.data[0], '<');
    cr_assert_eq(b.data[b.len - 1], '>');
    cr_assert_eq(strlen(ds_buf_cstr(&b)), b.len);
}

Test(buf, ident_quotes_and_escapes)
{
    ds_buf_puts(&b, "SELECT ");
    ds_buf_ident(&b, "a\"b");
    ds_buf_puts(&b, " FROM ");
    ds_buf_ident(&b, "in.c-main");
    cr_assert_str_eq(ds_buf_cstr(&b), "SELECT \"a\"\"b\" FROM \"in.c-main\"");
    cr_assert_not(b.oom);
}

Test(buf, ident_made_only_of_quotes)
{
    ds_buf_ident(&b, "\"\"\"");
    cr_assert_str_eq(ds_buf_cstr(&b), "\"\"\"\"\"\"\"\"");
}

Test(buf, literal_quotes_and_escapes)
{
    ds_buf_puts(&b, "WHERE name = ");
    ds_buf_literal(&b, "O'Brien");
    ds_buf_puts(&b, " AND note = ");
    ds_buf_literal(&b, "");
    cr_assert_str_eq(ds_buf_cstr(&b), "WHERE name = 'O''Brien' AND note = ''");
}

Test(buf, quoting_many_values_grows_correctly)
{
    for (int i = 0; i < 500; i++) {
        if (i)
            ds_buf_puts(&b, ",");
        ds_buf_literal(&b, "x'y");
    }
    cr_assert_not(b.oom);
    cr_assert_eq(b.len, 500 * strlen("'x''y'") + 499);
    cr_assert_eq(strncmp(ds_buf_cstr(&b), "'x''y','x''y',", 14), 0);
}

Test(buf, reset_empties_but_keeps_memory)
{
    ds_buf_puts(&b, "some text that is here");
    size_t cap = b.cap;
    char *data = b.data;
    ds_buf_reset(&b);
    cr_assert_str_eq(ds_buf_cstr(&b), "");
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.cap, cap);
    cr_assert_eq(b.data, data);
    ds_buf_puts(&b, "new");
    cr_assert_str_eq(ds_buf_cstr(&b), "new");
}

Test(buf, steal_hands_over_the_content)
{
    ds_buf_puts(&b, "owned by caller");
    char *s = ds_buf_steal(&b);
    cr_assert_str_eq(s, "owned by caller");
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.cap, 0);
    free(s);
    /* The zeroed buffer is usable again. */
    ds_buf_puts(&b, "again");
    cr_assert_str_eq(ds_buf_cstr(&b), "again");
}

Test(buf, steal_of_empty_buffer_is_an_empty_string)
{
    char *s = ds_buf_steal(&b);
    cr_assert_not_null(s);
    cr_assert_str_eq(s, "");
    free(s);
}

Test(buf, out_of_memory_latches)
{
    ds_buf_puts(&b, "before");
    b.oom = true;
    ds_buf_puts(&b, " after");
    ds_buf_printf(&b, "%d", 5);
    ds_buf_ident(&b, "x");
    ds_buf_literal(&b, "y");
    cr_assert_null(ds_buf_cstr(&b), "a failed buffer never yields its partial content");
    cr_assert_str_eq(ds_buf_text(&b), "(out of memory)");
    cr_assert_null(ds_buf_steal(&b), "a failed build is reported once, at the end");
    cr_assert_null(b.data);
    cr_assert_not(b.oom, "steal resets the buffer");
}

Test(buf, free_zeroes_and_accepts_null)
{
    ds_buf_puts(&b, "x");
    ds_buf_free(&b);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.cap, 0);
    ds_buf_free(&b);
    ds_buf_free(NULL);
}

Test(buf, injected_allocation_failure_hides_the_partial_text)
{
    ds_buf_puts(&b, "DELETE FROM t");
    ds_alloc_fail_after(0); /* the next growth fails */
    ds_buf_puts(&b, " WHERE id = 'a value long enough to make the buffer grow past its first 64 bytes'");
    ds_alloc_fail_after(-1);
    cr_assert(ds_buf_failed(&b));
    cr_assert_null(ds_buf_cstr(&b), "\"DELETE FROM t\" without its WHERE must never come out");
    ds_buf_puts(&b, " more");
    cr_assert_null(ds_buf_cstr(&b), "the failure latches");
}

Test(buf, a_piece_that_failed_fails_the_whole)
{
    ds_buf_t where = {0};
    ds_buf_puts(&where, " WHERE id = 1");
    where.oom = true;
    ds_buf_puts(&b, "DELETE FROM t");
    ds_buf_append_buf(&b, &where);
    cr_assert_null(ds_buf_cstr(&b), "appending a failed buffer fails the destination");
    ds_buf_free(&where);
    ds_buf_free(&b);
    ds_buf_puts(&b, "DELETE FROM t");
    ds_buf_puts(&b, NULL);
    cr_assert_null(ds_buf_cstr(&b), "appending a string that was never built fails the destination");
    ds_buf_free(&b);
    ds_buf_puts(&b, "x = ");
    ds_buf_literal(&b, NULL);
    cr_assert_null(ds_buf_cstr(&b));
    ds_buf_free(&b);
    ds_buf_puts(&b, "SELECT ");
    ds_buf_ident(&b, NULL);
    cr_assert_null(ds_buf_cstr(&b));
}

Test(buf, append_buf_copies_a_good_piece)
{
    ds_buf_t where = {0};
    ds_buf_puts(&where, " WHERE id = 1");
    ds_buf_puts(&b, "DELETE FROM t");
    ds_buf_append_buf(&b, &where);
    ds_buf_free(&where);
    cr_assert_str_eq(ds_buf_cstr(&b), "DELETE FROM t WHERE id = 1");
}

/* jansson's compact dump of s as one JSON string: what the JSON-tree answers write. */
static char *jansson_str(const char *s)
{
    json_t *j = json_string(s);
    cr_assert_not_null(j, "jansson refused %s", s);
    char *out = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    return out;
}

Test(buf, json_str_writes_what_jansson_writes_for_every_ascii_byte)
{
    for (int c = 1; c < 128; c++) {
        char s[4] = {'a', (char)c, 'z', 0};
        char *want = jansson_str(s);
        ds_buf_reset(&b);
        ds_buf_json_str(&b, s);
        cr_assert_str_eq(ds_buf_cstr(&b), want, "byte 0x%02x", c);
        free(want);
    }
}

Test(buf, json_str_keeps_utf8_and_escapes_runs)
{
    static const char *const cases[] = {"",
                                        "plain_name",
                                        "caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80",
                                        "\"\\\"\\",
                                        "line\nbreak\ttab\r\b\f\x01\x1f end",
                                        "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f",
                                        "slash / stays",
                                        NULL};
    for (int i = 0; cases[i]; i++) {
        char *want = jansson_str(cases[i]);
        ds_buf_reset(&b);
        ds_buf_json_str(&b, cases[i]);
        cr_assert_str_eq(ds_buf_cstr(&b), want);
        cr_assert_eq(b.len, strlen(want));
        /* Without quotes: the same inside. */
        ds_buf_reset(&b);
        ds_buf_puts(&b, "<");
        ds_buf_json_chars(&b, cases[i]);
        ds_buf_puts(&b, ">");
        size_t n = strlen(want);
        cr_assert_eq(b.len, n - 2 + 2);
        cr_assert_eq(memcmp(b.data + 1, want + 1, n - 2), 0, "%s", b.data);
        free(want);
    }
}

Test(buf, json_str_of_a_long_escaped_value_grows_once_enough)
{
    char s[5001];
    memset(s, '\x01', 5000);
    s[5000] = 0;
    ds_buf_puts(&b, "x");
    ds_buf_json_str(&b, s);
    cr_assert_eq(b.len, 1 + 2 + 5000 * 6);
    cr_assert_eq(memcmp(b.data, "x\"\\u0001\\u0001", 14), 0);
    cr_assert_eq(b.data[b.len - 1], '"');
    cr_assert_eq(b.data[b.len], '\0');
}

Test(buf, json_str_of_null_fails_the_buffer)
{
    ds_buf_json_str(&b, NULL);
    cr_assert(ds_buf_failed(&b));
    ds_buf_free(&b);
    ds_buf_json_chars(&b, NULL);
    cr_assert(ds_buf_failed(&b));
}

Test(buf, int_writes_what_printf_writes)
{
    static const int64_t cases[] = {0, 1, -1, 9, 10, -10, 99, 100, 1234567890123LL, INT64_MAX, INT64_MIN,
                                    INT64_MIN + 1};
    char want[32];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ds_buf_reset(&b);
        ds_buf_int(&b, cases[i]);
        snprintf(want, sizeof(want), "%lld", (long long)cases[i]);
        cr_assert_str_eq(ds_buf_cstr(&b), want);
    }
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t v = (int64_t)(x >> (x & 63));
        ds_buf_reset(&b);
        ds_buf_int(&b, v);
        snprintf(want, sizeof(want), "%lld", (long long)v);
        cr_assert_str_eq(ds_buf_cstr(&b), want);
    }
}

Test(buf, literal_appends_inline_and_grows)
{
    for (int i = 0; i < 1000; i++)
        DS_BUF_LIT(&b, "ab");
    cr_assert_eq(b.len, 2000);
    cr_assert_eq(strspn(b.data, "ab"), 2000);
    cr_assert_eq(b.data[2000], '\0');
    ds_alloc_fail_after(0);
    ds_buf_t c = {0};
    DS_BUF_LIT(&c, "x");
    ds_alloc_fail_after(-1);
    cr_assert(ds_buf_failed(&c));
    cr_assert_null(ds_buf_cstr(&c));
}

Test(buf, utf8_validity_agrees_with_jansson)
{
    static const char *good[] = {"", "plain", "\xc4\x8d" "e\xc5\xa1tina", "\xe2\x9c\x93", "\xf0\x9f\x98\x80",
                                 "\xf4\x8f\xbf\xbf", "\xed\x9f\xbf", "\xee\x80\x80"};
    static const char *bad[] = {"\x80", "\xbf", "\xc0\xaf", "\xc1\xbf", "\xc2", "\xe0\x80\xaf", "\xe0\x9f\xbf",
                                "\xed\xa0\x80", "\xed\xbf\xbf", "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
                                "\xff", "ok\xe2\x9c", "\xe2\x9c" "x"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cr_assert(ds_utf8_valid(good[i]), "good[%zu] refused", i);
        json_t *j = json_string(good[i]);
        cr_assert_not_null(j, "jansson refuses good[%zu]", i);
        json_decref(j);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_not(ds_utf8_valid(bad[i]), "bad[%zu] accepted", i);
        cr_assert_null(json_string(bad[i]), "jansson accepts bad[%zu]", i);
    }
}
