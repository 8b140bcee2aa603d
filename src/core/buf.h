/*
 * buf.h - a growable byte buffer, used to build SQL text, JSON and file paths.
 *
 * A ds_buf_t starts zeroed ({0}) and grows with malloc. On allocation failure
 * it latches an error flag (oom) and further appends do nothing, so builders
 * check once at the end. The content is always NUL-terminated once non-empty.
 * Owner frees with ds_buf_free. Not thread-safe (one owner).
 */
#ifndef DS_CORE_BUF_H
#define DS_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    bool oom;
} ds_buf_t;

void ds_buf_append(ds_buf_t *b, const char *s, size_t n);
void ds_buf_puts(ds_buf_t *b, const char *s);
void ds_buf_printf(ds_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends name quoted as an SQL identifier (through ds_ident_quote). */
void ds_buf_ident(ds_buf_t *b, const char *name);
/* Appends s as an SQL string literal. */
void ds_buf_literal(ds_buf_t *b, const char *s);
/* The content as a C string ("" when empty). Valid until the next append or free. */
const char *ds_buf_cstr(const ds_buf_t *b);
/* Empties the buffer, keeping its memory. */
void ds_buf_reset(ds_buf_t *b);
/* Frees the memory; b may be NULL. b is zeroed. */
void ds_buf_free(ds_buf_t *b);
/* Hands the content to the caller (free with free()); b is zeroed. NULL on oom. */
char *ds_buf_steal(ds_buf_t *b);

#endif
