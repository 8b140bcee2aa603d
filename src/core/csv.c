/*
 * csv.c - reading a CSV file's header record, for backends (through the host
 * API) and the core alike. See csv.h.
 */
#include "core/csv.h"

#include <string.h>
#include <zlib.h>

#include "core/buf.h"
#include "core/status.h"

/*
 * Reads the first record of a CSV file (after skip lines) as column names.
 * gzip or plain (zlib reads both). Handles enclosures, doubled enclosures,
 * escapes and a UTF-8 BOM.
 */
ds_status_t ds_csv_read_header(ds_arena_t *arena, const char *path, const ds_csv_opts_t *o, const char ***names, size_t *n,
                                ds_err_t *err)
{
    gzFile f = gzopen(path, "rb");
    if (!f)
        return ds_err_setk(err, DS_NOT_FOUND, DS_KBC_FILE_NOT_FOUND, "cannot open the file to import");
    gzbuffer(f, 65536);
    char delim = o->delimiter[0] ? o->delimiter[0] : ',';
    char quote = o->enclosure[0];
    char esc = o->escaped_by[0];
    for (int64_t s = 0; s < o->skip_lines; s++) {
        int c;
        while ((c = gzgetc(f)) != -1 && c != '\n')
            ;
    }
    ds_buf_t field = {0};
    size_t cap = 16, count = 0;
    const char **out = ds_arena_alloc(arena, sizeof(char *) * cap);
    bool inq = false, at_start = true, done = !out, oom = !out;
    size_t total = 0;
    int c = gzgetc(f);
    /* A UTF-8 byte order mark is not part of the first name. */
    if (c == 0xEF) {
        int c2 = gzgetc(f), c3 = gzgetc(f);
        if (c2 == 0xBB && c3 == 0xBF)
            c = gzgetc(f);
        else {
            ds_buf_append(&field, "\xEF", 1);
            if (c2 != -1) {
                char ch = (char)c2;
                ds_buf_append(&field, &ch, 1);
            }
            c = c3;
        }
    }
    for (; !done; c = gzgetc(f)) {
        if (++total > (1u << 20)) {
            ds_buf_free(&field);
            gzclose(f);
            return ds_err_setk(err, DS_INVALID_ARGUMENT, DS_KBC_INVALID_SOURCE_DATA,
                               "the CSV header is longer than 1 MiB");
        }
        bool end = c == -1;
        if (!end && inq) {
            if (esc && esc != quote && c == esc) {
                int nx = gzgetc(f);
                if (nx != -1) {
                    char ch = (char)nx;
                    ds_buf_append(&field, &ch, 1);
                }
                continue;
            }
            if (c == quote) {
                int nx = gzgetc(f);
                if (nx == quote) {
                    ds_buf_append(&field, &quote, 1);
                    continue;
                }
                inq = false;
                if (nx == -1)
                    end = true;
                else
                    c = nx;
            } else {
                char ch = (char)c;
                ds_buf_append(&field, &ch, 1);
                continue;
            }
        }
        if (!end && quote && c == quote && at_start) {
            inq = true;
            at_start = false;
            continue;
        }
        if (end || c == delim || c == '\n') {
            if (count == cap) {
                const char **bigger = ds_arena_alloc(arena, sizeof(char *) * cap * 2);
                if (!bigger) {
                    oom = done = true;
                    continue;
                }
                memcpy(bigger, out, sizeof(char *) * cap);
                out = bigger;
                cap *= 2;
            }
            size_t len = field.len;
            if (len && field.data[len - 1] == '\r' && (end || c == '\n'))
                len--;
            char *name = ds_arena_alloc(arena, len + 1);
            if (!name || ds_buf_failed(&field)) {
                oom = done = true;
                continue;
            }
            if (len)
                memcpy(name, field.data, len);
            out[count++] = name;
            ds_buf_reset(&field);
            at_start = true;
            if (end || c == '\n')
                done = true;
            continue;
        }
        char ch = (char)c;
        ds_buf_append(&field, &ch, 1);
        at_start = false;
    }
    ds_buf_free(&field);
    gzclose(f);
    if (oom)
        return ds_err_set(err, DS_UNAVAILABLE, "out of memory while reading the CSV header");
    if (inq)
        return ds_err_setk(err, DS_INVALID_ARGUMENT, DS_KBC_INVALID_SOURCE_DATA,
                           "the CSV header has an unterminated enclosure");
    if (count == 1 && out[0][0] == '\0')
        return ds_err_setk(err, DS_INVALID_ARGUMENT, DS_KBC_INVALID_SOURCE_DATA,
                           "the file is empty: a CSV header (or an explicit column list) is required");
    *names = out;
    *n = count;
    return DS_OK;
}

