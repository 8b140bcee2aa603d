/*
 * pbcheck.c - checks a serialized protobuf message against its descriptor
 * before anything decodes it. See pbcheck.h.
 *
 * The wire format is walked directly (tag, wire type, payload), so the check
 * allocates nothing and its cost is linear in the input. A length-delimited
 * field of a string type must hold no NUL byte (protobuf-c hands strings to C
 * as NUL-terminated text: "t\0x" would silently become "t"); a nested message
 * is checked with its own descriptor, one level deeper; every field counts
 * its occurrences (a repeated field, and a packed one by its payload).
 * Unknown fields are skipped as the decoder skips them; a malformed encoding
 * is left for the decoder to refuse.
 */
#include "grpc/pbcheck.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const ds_pb_limits_t *lim;
    ds_err_t *err;
    char path[256];
} walk_t;

/* Reads a varint at *p (< end); false when truncated or longer than 10 bytes. */
static bool varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* Appends ".name" to w->path for the duration of a nested walk; returns the old length. */
static size_t push(walk_t *w, const char *name)
{
    size_t n = strlen(w->path);
    snprintf(w->path + n, sizeof(w->path) - n, "%s%s", n ? "." : "", name);
    return n;
}

static ds_status_t walk(walk_t *w, const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t len,
                        unsigned depth);

/* Occurrences seen of each field of one message (by index in desc->fields). */
#define MAX_TRACKED_FIELDS 64

static ds_status_t walk(walk_t *w, const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t len, unsigned depth)
{
    if (depth > w->lim->max_depth)
        return ds_err_setf(w->err, DS_INVALID_ARGUMENT, w->path, "%s: messages nested deeper than %u levels",
                           w->path[0] ? w->path : desc->name, w->lim->max_depth);
    /* An empty message (as protobuf-c hands it over: NULL data, length 0) holds nothing to check. */
    if (len == 0)
        return DS_OK;
    uint64_t counts[MAX_TRACKED_FIELDS] = {0};
    const uint8_t *end = p + len;
    while (p < end) {
        uint64_t key, n = 0;
        if (!varint(&p, end, &key))
            return DS_OK; /* malformed: the decoder refuses it */
        uint32_t id = (uint32_t)(key >> 3);
        int wt = (int)(key & 7);
        const uint8_t *payload = p;
        switch (wt) {
        case 0:
            if (!varint(&p, end, &n))
                return DS_OK;
            break;
        case 1:
            if (end - p < 8)
                return DS_OK;
            p += 8;
            break;
        case 5:
            if (end - p < 4)
                return DS_OK;
            p += 4;
            break;
        case 2:
            if (!varint(&p, end, &n) || n > (uint64_t)(end - p))
                return DS_OK;
            payload = p;
            p += n;
            break;
        default:
            return DS_OK; /* groups and invalid wire types: the decoder decides */
        }
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(desc, id);
        if (!f)
            continue; /* unknown field: skipped by the decoder too */
        size_t fi = (size_t)(f - desc->fields);
        uint64_t add = 1;
        if (wt == 2 && f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_BYTES &&
            f->type != PROTOBUF_C_TYPE_MESSAGE)
            add = n; /* packed scalars: at least one byte each, so n bounds their number */
        if (fi < MAX_TRACKED_FIELDS) {
            counts[fi] += add;
            if (f->label == PROTOBUF_C_LABEL_REPEATED && counts[fi] > w->lim->max_repeated) {
                size_t at = push(w, f->name);
                ds_status_t st = ds_err_setf(w->err, DS_INVALID_ARGUMENT, w->path,
                                             "%s: more than %llu items (the limit for a repeated field)", w->path,
                                             (unsigned long long)w->lim->max_repeated);
                w->path[at] = '\0';
                return st;
            }
        }
        if (wt != 2)
            continue;
        if (f->type == PROTOBUF_C_TYPE_STRING && memchr(payload, 0, n)) {
            size_t at = push(w, f->name);
            ds_status_t st =
                ds_err_setf(w->err, DS_INVALID_ARGUMENT, w->path, "%s contains a NUL byte, which no name or value may hold",
                            w->path);
            w->path[at] = '\0';
            return st;
        }
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && f->descriptor) {
            size_t at = push(w, f->name);
            ds_status_t st = walk(w, f->descriptor, payload, n, depth + 1);
            w->path[at] = '\0';
            if (st != DS_OK)
                return st;
        }
    }
    return DS_OK;
}

const ds_pb_limits_t ds_pb_default_limits = {.max_depth = 32, .max_repeated = 1000000};

ds_status_t ds_pb_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                        const ds_pb_limits_t *lim, const char *where, ds_err_t *err)
{
    walk_t w = {.lim = lim ? lim : &ds_pb_default_limits, .err = err};
    snprintf(w.path, sizeof(w.path), "%s", where ? where : "");
    return walk(&w, desc, data, len, 0);
}
