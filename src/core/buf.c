/*
 * buf.c - growable byte buffer. See buf.h.
 */
#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/ident.h"

static bool reserve(ds_buf_t *b, size_t extra)
{
    if (b->oom)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = ds_alloc_inject_failure() ? NULL : realloc(b->data, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void ds_buf_append(ds_buf_t *b, const char *s, size_t n)
{
    if (!s && n) {
        b->oom = true; /* the text to append was itself never built */
        return;
    }
    if (!reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void ds_buf_puts(ds_buf_t *b, const char *s)
{
    if (!s) {
        b->oom = true;
        return;
    }
    ds_buf_append(b, s, strlen(s));
}

void ds_buf_append_buf(ds_buf_t *b, const ds_buf_t *src)
{
    if (src->oom) {
        b->oom = true;
        return;
    }
    if (src->len)
        ds_buf_append(b, src->data, src->len);
}

void ds_buf_printf(ds_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void ds_buf_ident(ds_buf_t *b, const char *name)
{
    if (!name) {
        b->oom = true;
        return;
    }
    size_t need = strlen(name) * 2 + 3;
    if (!reserve(b, need))
        return;
    if (!ds_ident_quote(name, b->data + b->len, need + 1)) {
        b->oom = true;
        return;
    }
    b->len += strlen(b->data + b->len);
}

void ds_buf_literal(ds_buf_t *b, const char *s)
{
    if (!s) {
        b->oom = true;
        return;
    }
    size_t need = strlen(s) * 2 + 3;
    if (!reserve(b, need))
        return;
    if (!ds_sql_literal(s, b->data + b->len, need + 1)) {
        b->oom = true;
        return;
    }
    b->len += strlen(b->data + b->len);
}

/*
 * Writes the escaped form of s at b's end, in quotes when quoted. The common
 * case, a name with nothing to escape, is one scan, one reservation and one
 * copy; the worst case (6 bytes per byte) is reserved only when an escape is
 * found.
 */
static void json_escaped(ds_buf_t *b, const char *s, bool quoted)
{
    static const char hex[] = "0123456789ABCDEF";
    if (!s) {
        b->oom = true;
        return;
    }
    const unsigned char *p = (const unsigned char *)s;
    while (*p >= 0x20 && *p != '"' && *p != '\\')
        p++;
    size_t plain = (size_t)(p - (const unsigned char *)s);
    size_t rest = *p ? strlen((const char *)p) : 0;
    if (!reserve(b, plain + rest * 6 + 2))
        return;
    char *o = b->data + b->len;
    if (quoted)
        *o++ = '"';
    memcpy(o, s, plain);
    o += plain;
    for (; *p; p++) {
        unsigned char c = *p;
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"':
        case '\\':
            *o++ = (char)c;
            break;
        case '\n':
            *o++ = 'n';
            break;
        case '\t':
            *o++ = 't';
            break;
        case '\r':
            *o++ = 'r';
            break;
        case '\b':
            *o++ = 'b';
            break;
        case '\f':
            *o++ = 'f';
            break;
        default:
            memcpy(o, "u00", 3);
            o[3] = hex[c >> 4];
            o[4] = hex[c & 15];
            o += 5;
        }
    }
    if (quoted)
        *o++ = '"';
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
}

void ds_buf_json_str(ds_buf_t *b, const char *s) { json_escaped(b, s, true); }

void ds_buf_json_chars(ds_buf_t *b, const char *s) { json_escaped(b, s, false); }

size_t ds_utf8_seq(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned c = *p, cp;
    size_t n;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 1;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 2;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 3;
        cp = c & 0x07;
    } else {
        return 0; /* a continuation byte first, an overlong lead (0xc0, 0xc1) or beyond 0xf4 */
    }
    for (size_t i = 1; i <= n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0; /* also stops at the NUL */
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
        return 0; /* overlong, beyond Unicode, or a surrogate */
    return n + 1;
}

bool ds_utf8_valid(const char *s)
{
    for (size_t n; *s; s += n)
        if (!(n = ds_utf8_seq(s)))
            return false;
    return true;
}

void ds_buf_int(ds_buf_t *b, int64_t v)
{
    char tmp[24];
    char *end = tmp + sizeof(tmp), *o = end;
    /* Negated as unsigned, so INT64_MIN has a magnitude too. */
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--o = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--o = '-';
    ds_buf_append(b, o, (size_t)(end - o));
}

const char *ds_buf_cstr(const ds_buf_t *b)
{
    if (b->oom)
        return NULL;
    return b->data ? b->data : "";
}

bool ds_buf_failed(const ds_buf_t *b) { return b->oom; }

const char *ds_buf_text(const ds_buf_t *b) { return b->oom ? "(out of memory)" : b->data ? b->data : ""; }

void ds_buf_reset(ds_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void ds_buf_free(ds_buf_t *b)
{
    if (!b)
        return;
    free(b->data);
    memset(b, 0, sizeof(*b));
}

char *ds_buf_steal(ds_buf_t *b)
{
    char *p = b->oom ? NULL : b->data;
    if (b->oom)
        free(b->data);
    if (p == NULL && !b->oom)
        p = strdup("");
    memset(b, 0, sizeof(*b));
    return p;
}
