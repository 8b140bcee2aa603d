/*
 * fuzz_pbcheck.c - the protobuf wire checker (src/grpc/pbcheck.c) that runs
 * before any protobuf-c decoding. The first byte picks the message type the
 * rest is checked as (the request, the credentials, commands with nested and
 * repeated fields, Any, Struct). Whatever the checker accepts must then
 * decode with protobuf-c and encode again to the same length.
 */
#include <stdint.h>

#include "fuzz_util.h"
#include "grpc/dispatch.h"
#include "grpc/pbcheck.h"

#define D(pkg, name) &keboola__storage_driver__command__##pkg##__##name##__descriptor

static const ProtobufCMessageDescriptor *const types[] = {
    &keboola__storage_driver__command__common__driver_request__descriptor,
    &keboola__storage_driver__credentials__generic_backend_credentials__descriptor,
    D(table, create_table_command),
    D(table, table_import_from_file_command),
    D(table, table_import_from_table_command),
    D(table, table_export_to_file_command),
    D(table, preview_table_command),
    D(table, delete_table_rows_command),
    D(table, alter_column_command),
    D(table, create_profile_table_command),
    D(info, object_info_command),
    D(bucket, create_bucket_command),
    D(project, create_project_command),
    &google__protobuf__any__descriptor,
    &google__protobuf__struct__descriptor,
    &google__protobuf__value__descriptor,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const ProtobufCMessageDescriptor *desc = types[data[0] % (sizeof(types) / sizeof(types[0]))];
    const uint8_t *msg = data + 1;
    size_t len = size - 1;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return 0;
    if (len)
        memcpy(copy, msg, len);
    /* protobuf-c gives an empty bytes field (an empty Any value) as NULL and 0: check it that way. */
    if (len == 0) {
        free(copy);
        copy = NULL;
    }
    ds_err_t err = {0};
    ds_pb_limits_t tight = {.max_depth = 4, .max_repeated = 8};
    (void)ds_pb_check(desc, copy, len, &tight, "fuzz", &err);
    ds_err_clear(&err);
    if (ds_pb_check(desc, copy, len, NULL, "", &err) == DS_OK) {
        ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, copy);
        if (m) {
            size_t n = protobuf_c_message_get_packed_size(m);
            uint8_t *out = malloc(n ? n : 1);
            if (out && protobuf_c_message_pack(m, out) != n)
                abort();
            free(out);
            protobuf_c_message_free_unpacked(m, NULL);
        }
    }
    free(copy);
    return 0;
}
