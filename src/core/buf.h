/*
 * buf.h - a growable byte buffer, used to build SQL text, JSON and file paths.
 *
 * A ds_buf_t starts zeroed ({0}) and grows with malloc. On allocation failure
 * it latches an error flag (oom) and further appends do nothing, so builders
 * check once at the end. The content is always NUL-terminated once non-empty.
 *
 * A failed buffer never yields its partial content: ds_buf_cstr returns NULL
 * (and every SQL executor refuses NULL with an out-of-memory error), and
 * appending a NULL string or a failed buffer (ds_buf_append_buf) fails the
 * destination too, so text built from pieces cannot silently lose one (a
 * DELETE cannot lose its WHERE). Never pass ds_buf_cstr() of a buffer to a
 * printf "%s": append it with ds_buf_append_buf, or use ds_buf_text for
 * messages.
 * Owner frees with ds_buf_free. Not thread-safe (one owner).
 */
#ifndef DS_CORE_BUF_H
#define DS_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    bool oom;
} ds_buf_t;

void ds_buf_append(ds_buf_t *b, const char *s, size_t n);
/* Appends s; s == NULL (a piece that was never built) fails b. */
void ds_buf_puts(ds_buf_t *b, const char *s);
/* Appends src's content; a failed src fails b. */
void ds_buf_append_buf(ds_buf_t *b, const ds_buf_t *src);
void ds_buf_printf(ds_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends name quoted as an SQL identifier (through ds_ident_quote); NULL fails b. */
void ds_buf_ident(ds_buf_t *b, const char *name);
/* Appends s as an SQL string literal; NULL fails b. */
void ds_buf_literal(ds_buf_t *b, const char *s);
/*
 * Appends a string literal (a constant known at compile time) without
 * measuring it; inline, so a short piece that fits is a few stores (JSON
 * writers append dozens of them per object).
 */
#define DS_BUF_LIT(b, lit) ds_buf_append_small((b), "" lit "", sizeof(lit) - 1)
static inline void ds_buf_append_small(ds_buf_t *b, const char *s, size_t n)
{
    if (b->len + n < b->cap && !b->oom) {
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = '\0';
        return;
    }
    ds_buf_append(b, s, n);
}
/*
 * Appends s as a JSON string, quotes included: '"', '\\' and control
 * characters escaped (\b \f \n \r \t, others \u00XX with capital hex
 * digits, as jansson writes them), every other byte as it is (UTF-8 stays
 * UTF-8). NULL fails b. ds_buf_json_chars appends the
 * same without the quotes (a piece of a longer JSON string).
 */
void ds_buf_json_str(ds_buf_t *b, const char *s);
void ds_buf_json_chars(ds_buf_t *b, const char *s);
/*
 * The length of the well-formed UTF-8 sequence s starts with (1-4 bytes; no
 * overlong form, surrogate or code point beyond U+10FFFF), 0 when it starts
 * with none. s points at a byte that is not NUL.
 */
size_t ds_utf8_seq(const char *s);
/* True when s is well-formed UTF-8. */
bool ds_utf8_valid(const char *s);
/* Appends v in decimal, as printf's "%lld" would. */
void ds_buf_int(ds_buf_t *b, int64_t v);
/*
 * The content as a C string ("" when empty), or NULL when an allocation
 * failed while building it. Valid until the next append or free.
 */
const char *ds_buf_cstr(const ds_buf_t *b);
/* True when an allocation failed while building b. */
bool ds_buf_failed(const ds_buf_t *b);
/* For messages only: the content, or "(out of memory)" when building it failed. */
const char *ds_buf_text(const ds_buf_t *b);
/* Empties the buffer, keeping its memory. */
void ds_buf_reset(ds_buf_t *b);
/* Frees the memory; b may be NULL. b is zeroed. */
void ds_buf_free(ds_buf_t *b);
/* Hands the content to the caller (free with free()); b is zeroed. NULL on oom. */
char *ds_buf_steal(ds_buf_t *b);

#endif
