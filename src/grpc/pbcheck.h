/*
 * pbcheck.h - bounds and content checks on protobuf input, before decoding.
 *
 * ds_pb_check() walks a serialized message with its descriptor and refuses,
 * with DS_INVALID_ARGUMENT naming the field path:
 *   - a string field holding a NUL byte (decoded strings are C strings: the
 *     rest would be cut off silently, so "t\0x" would name table "t");
 *   - messages nested deeper than max_depth;
 *   - a repeated field with more than max_repeated items.
 * A message held in a google.protobuf.Any is opaque bytes here: check it with
 * its own descriptor when it is unpacked. Malformed encodings pass (the
 * decoder refuses them with its own error).
 */
#ifndef DS_GRPC_PBCHECK_H
#define DS_GRPC_PBCHECK_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef struct {
    unsigned max_depth;
    uint64_t max_repeated;
} ds_pb_limits_t;

extern const ds_pb_limits_t ds_pb_default_limits;

/* where: the name the error path starts with (e.g. "command"); lim NULL = defaults. */
ds_status_t ds_pb_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                        const ds_pb_limits_t *lim, const char *where, ds_err_t *err);

#endif
