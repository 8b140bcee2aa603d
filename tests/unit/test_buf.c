/*
 * test_buf.c - the growable buffer: appends, growth, printf, SQL quoting,
 * reset, steal, and the latched out-of-memory flag.
 */
#include <criterion/criterion.h>
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
