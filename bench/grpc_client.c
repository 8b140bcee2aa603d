/*
 * grpc_client.c - the benchmark's gRPC client (gRPC C core) and the
 * storage-driver requests it sends (protobuf-c messages from proto/).
 *
 * DESIGN
 * A unary call is one batch on a pluck completion queue: send initial
 * metadata (wait-for-ready, so a call made while the channel connects
 * waits instead of failing), the message, close; receive initial metadata,
 * the message and the status. Each bench_grpc_t has its own channel, and
 * with GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL its own TCP connection, so N
 * clients are N connections, as on the REST side (N keep-alive connections).
 *
 * Requests are packed once and sent as bytes, so the request loops measure
 * the transport and the server, not protobuf packing in the client.
 */
#include "bench.h"
#include "proto/backend.pb-c.h"
#include "proto/common.pb-c.h"
#include "proto/credentials.pb-c.h"
#include "proto/info.pb-c.h"
#include "proto/table.pb-c.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TYPE_PREFIX "type.googleapis.com/"

typedef Keboola__StorageDriver__Command__Table__ImportExportShared__ImportOptions import_options_t;
typedef Keboola__StorageDriver__Command__Table__ImportExportShared__Table shared_table_t;
typedef Keboola__StorageDriver__Command__Table__ImportExportShared__FilePath file_path_t;
typedef Keboola__StorageDriver__Command__Table__TableImportFromFileCommand import_cmd_t;
typedef Keboola__StorageDriver__Command__Table__TableImportFromFileCommand__CsvTypeOptions csv_opts_t;
typedef Keboola__StorageDriver__Command__Table__TableExportToFileCommand export_cmd_t;
typedef Keboola__StorageDriver__Command__Table__ImportExportShared__ExportOptions export_opts_t;
typedef Keboola__StorageDriver__Command__Table__ImportExportShared__ExportFilters export_filters_t;
typedef Keboola__StorageDriver__Command__Table__PreviewTableCommand preview_cmd_t;
typedef Keboola__StorageDriver__Command__Info__ObjectInfoCommand object_info_cmd_t;

struct bench_grpc {
    grpc_channel *ch;
    grpc_completion_queue *cq;
    grpc_slice method;
};

static void quiet_log(gpr_log_func_args *args)
{
    (void)args;
}

void bench_grpc_init(void)
{
    gpr_set_log_function(quiet_log);
    grpc_init();
}

void bench_grpc_shutdown(void)
{
    grpc_shutdown();
}

bench_grpc_t *bench_grpc_open(const char *target)
{
    bench_grpc_t *g = bench_xmalloc(sizeof(*g));
    grpc_arg args[3];
    memset(args, 0, sizeof(args));
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
    args[0].value.integer = 1;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[1].value.integer = -1;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = GRPC_ARG_ENABLE_RETRIES;
    args[2].value.integer = 0;
    grpc_channel_args ca = {.num_args = 3, .args = args};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    g->ch = grpc_channel_create(target, creds, &ca);
    grpc_channel_credentials_release(creds);
    g->cq = grpc_completion_queue_create_for_pluck(NULL);
    g->method = grpc_slice_from_static_string(BENCH_GRPC_METHOD);
    return g;
}

void bench_grpc_close(bench_grpc_t **gp)
{
    if (!gp || !*gp)
        return;
    bench_grpc_t *g = *gp;
    grpc_channel_destroy(g->ch);
    grpc_completion_queue_shutdown(g->cq);
    while (grpc_completion_queue_pluck(g->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(g->cq);
    free(g);
    *gp = NULL;
}

int bench_grpc_call(bench_grpc_t *g, const uint8_t *req, size_t len, double timeout_s, bench_grpc_resp_t *resp)
{
    memset(resp, 0, sizeof(*resp));
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis((int64_t)(timeout_s * 1000.0), GPR_TIMESPAN));
    grpc_call *call =
        grpc_channel_create_call(g->ch, NULL, GRPC_PROPAGATE_DEFAULTS, g->cq, g->method, NULL, deadline, NULL);
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)req, len);
    grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    grpc_byte_buffer *recv = NULL;
    grpc_metadata_array initial, trailing;
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    if (grpc_call_start_batch(call, ops, 6, call, NULL) != GRPC_CALL_OK) {
        resp->code = GRPC_STATUS_INTERNAL;
        snprintf(resp->message, sizeof(resp->message), "grpc_call_start_batch failed");
    } else {
        grpc_completion_queue_pluck(g->cq, call, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        resp->code = (int)status;
        snprintf(resp->message, sizeof(resp->message), "%.*s", (int)GRPC_SLICE_LENGTH(details),
                 (const char *)GRPC_SLICE_START_PTR(details));
        if (recv) {
            grpc_byte_buffer_reader r;
            if (grpc_byte_buffer_reader_init(&r, recv)) {
                grpc_slice all = grpc_byte_buffer_reader_readall(&r);
                resp->len = GRPC_SLICE_LENGTH(all);
                resp->data = bench_xmalloc(resp->len);
                memcpy(resp->data, GRPC_SLICE_START_PTR(all), resp->len);
                grpc_slice_unref(all);
                grpc_byte_buffer_reader_destroy(&r);
            }
        }
    }
    if (recv)
        grpc_byte_buffer_destroy(recv);
    grpc_byte_buffer_destroy(send);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    grpc_call_unref(call);
    return resp->code;
}

void bench_grpc_resp_free(bench_grpc_resp_t *r)
{
    free(r->data);
    r->data = NULL;
    r->len = 0;
}

void bench_bytes_free(bench_bytes_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

/* ---- requests ---- */

static bench_bytes_t pack_msg(const ProtobufCMessage *m)
{
    bench_bytes_t b;
    b.len = protobuf_c_message_get_packed_size(m);
    b.data = bench_xmalloc(b.len);
    protobuf_c_message_pack(m, b.data);
    return b;
}

/* DriverRequest{credentials: GenericBackendCredentials{host, secret}, command: Any(cmd)}. */
static bench_bytes_t driver_request(const ProtobufCMessage *cmd, const char *key, const char *project)
{
    Keboola__StorageDriver__Credentials__GenericBackendCredentials cred =
        KEBOOLA__STORAGE_DRIVER__CREDENTIALS__GENERIC_BACKEND_CREDENTIALS__INIT;
    cred.host = (char *)(project ? project : "");
    cred.secret = (char *)key;
    bench_bytes_t cred_bytes = pack_msg(&cred.base);
    bench_bytes_t cmd_bytes = pack_msg(cmd);
    char *cred_url = bench_fmt(TYPE_PREFIX "%s", cred.base.descriptor->name);
    char *cmd_url = bench_fmt(TYPE_PREFIX "%s", cmd->descriptor->name);
    Google__Protobuf__Any cred_any = GOOGLE__PROTOBUF__ANY__INIT, cmd_any = GOOGLE__PROTOBUF__ANY__INIT;
    cred_any.type_url = cred_url;
    cred_any.value.data = cred_bytes.data;
    cred_any.value.len = cred_bytes.len;
    cmd_any.type_url = cmd_url;
    cmd_any.value.data = cmd_bytes.data;
    cmd_any.value.len = cmd_bytes.len;
    Keboola__StorageDriver__Command__Common__DriverRequest req =
        KEBOOLA__STORAGE_DRIVER__COMMAND__COMMON__DRIVER_REQUEST__INIT;
    req.credentials = &cred_any;
    req.command = &cmd_any;
    bench_bytes_t out = pack_msg(&req.base);
    free(cred_url);
    free(cmd_url);
    bench_bytes_free(&cred_bytes);
    bench_bytes_free(&cmd_bytes);
    return out;
}

bench_bytes_t bench_drv_init_backend(const char *key)
{
    Keboola__StorageDriver__Command__Backend__InitBackendCommand c =
        KEBOOLA__STORAGE_DRIVER__COMMAND__BACKEND__INIT_BACKEND_COMMAND__INIT;
    return driver_request(&c.base, key, "");
}

bench_bytes_t bench_drv_object_info_table(const char *key, const char *project, const char *bucket, const char *table)
{
    object_info_cmd_t c = KEBOOLA__STORAGE_DRIVER__COMMAND__INFO__OBJECT_INFO_COMMAND__INIT;
    char *path[2] = {(char *)bucket, (char *)table};
    c.n_path = 2;
    c.path = path;
    c.expectedobjecttype = KEBOOLA__STORAGE_DRIVER__COMMAND__INFO__OBJECT_TYPE__TABLE;
    return driver_request(&c.base, key, project);
}

bench_bytes_t bench_drv_object_info_schema(const char *key, const char *project, const char *bucket)
{
    object_info_cmd_t c = KEBOOLA__STORAGE_DRIVER__COMMAND__INFO__OBJECT_INFO_COMMAND__INIT;
    char *path[1] = {(char *)bucket};
    c.n_path = 1;
    c.path = path;
    c.expectedobjecttype = KEBOOLA__STORAGE_DRIVER__COMMAND__INFO__OBJECT_TYPE__SCHEMA;
    return driver_request(&c.base, key, project);
}

bench_bytes_t bench_drv_preview(const char *key, const char *project, const char *bucket, const char *table, int limit)
{
    preview_cmd_t c = KEBOOLA__STORAGE_DRIVER__COMMAND__TABLE__PREVIEW_TABLE_COMMAND__INIT;
    export_filters_t f = KEBOOLA__STORAGE_DRIVER__COMMAND__TABLE__IMPORT_EXPORT_SHARED__EXPORT_FILTERS__INIT;
    char *path[1] = {(char *)bucket};
    c.n_path = 1;
    c.path = path;
    c.tablename = (char *)table;
    f.limit = limit;
    c.filters = &f;
    return driver_request(&c.base, key, project);
}

bench_bytes_t bench_drv_import_file(const char *key, const char *project, const char *bucket, const char *table,
                                    const char *file_key, bench_fmt_t fmt, bool incremental, const char *dedup_col)
{
    import_cmd_t c = KEBOOLA__STORAGE_DRIVER__COMMAND__TABLE__TABLE_IMPORT_FROM_FILE_COMMAND__INIT;
    file_path_t fp = KEBOOLA__STORAGE_DRIVER__COMMAND__TABLE__IMPORT_EXPORT_SHARED__FILE_PATH__INIT;
    shared_table_t dst = KEBOOLA__STORAGE_DRIVER__COMMAND__TABLE__IMPORT_EXPORT_SHARED__TABLE__INIT;
    import_options_t o = KEBOOLA__STORAGE_DRIVER__COMMAND__TABLE__IMPORT_EXPORT_SHARED__IMPORT_OPTIONS__INIT;
    csv_opts_t csv = KEBOOLA__STORAGE_DRIVER__COMMAND__TABLE__TABLE_IMPORT_FROM_FILE_COMMAND__CSV_TYPE_OPTIONS__INIT;
    Google__Protobuf__Any csv_any = GOOGLE__PROTOBUF__ANY__INIT;
    char *path[1] = {(char *)bucket};
    char *dedup[1] = {(char *)dedup_col};
    bench_bytes_t csv_bytes = {0};
    char *csv_url = NULL;

    fp.root = "";
    fp.path = "";
    fp.filename = (char *)file_key;
    c.filepath = &fp;
    c.fileprovider = KEBOOLA__STORAGE_DRIVER__COMMAND__TABLE__IMPORT_EXPORT_SHARED__FILE_PROVIDER__S3;
    dst.n_path = 1;
    dst.path = path;
    dst.tablename = (char *)table;
    c.destination = &dst;
    o.importtype =
        incremental
            ? KEBOOLA__STORAGE_DRIVER__COMMAND__TABLE__IMPORT_EXPORT_SHARED__IMPORT_OPTIONS__IMPORT_TYPE__INCREMENTAL
            : KEBOOLA__STORAGE_DRIVER__COMMAND__TABLE__IMPORT_EXPORT_SHARED__IMPORT_OPTIONS__IMPORT_TYPE__FULL;
    o.deduptype =
        KEBOOLA__STORAGE_DRIVER__COMMAND__TABLE__IMPORT_EXPORT_SHARED__IMPORT_OPTIONS__DEDUP_TYPE__UPDATE_DUPLICATES;
    if (dedup_col) {
        o.n_dedupcolumnsnames = 1;
        o.dedupcolumnsnames = dedup;
    }
    o.importstrategy =
        KEBOOLA__STORAGE_DRIVER__COMMAND__TABLE__IMPORT_EXPORT_SHARED__IMPORT_OPTIONS__IMPORT_STRATEGY__USER_DEFINED_TABLE;
    o.timestampmode =
        KEBOOLA__STORAGE_DRIVER__COMMAND__TABLE__IMPORT_EXPORT_SHARED__IMPORT_OPTIONS__TIMESTAMP_MODE__CURRENT_TIME;
    c.importoptions = &o;
    if (fmt == BENCH_FMT_PARQUET) {
        c.fileformat = KEBOOLA__STORAGE_DRIVER__COMMAND__TABLE__IMPORT_EXPORT_SHARED__FILE_FORMAT__PARQUET;
    } else {
        c.fileformat = KEBOOLA__STORAGE_DRIVER__COMMAND__TABLE__IMPORT_EXPORT_SHARED__FILE_FORMAT__CSV;
        csv.delimiter = ",";
        csv.enclosure = "\"";
        csv.escapedby = "";
        csv.sourcetype =
            KEBOOLA__STORAGE_DRIVER__COMMAND__TABLE__TABLE_IMPORT_FROM_FILE_COMMAND__CSV_TYPE_OPTIONS__SOURCE_TYPE__SINGLE_FILE;
        csv.compression =
            fmt == BENCH_FMT_CSV_GZ
                ? KEBOOLA__STORAGE_DRIVER__COMMAND__TABLE__TABLE_IMPORT_FROM_FILE_COMMAND__CSV_TYPE_OPTIONS__COMPRESSION__GZIP
                : KEBOOLA__STORAGE_DRIVER__COMMAND__TABLE__TABLE_IMPORT_FROM_FILE_COMMAND__CSV_TYPE_OPTIONS__COMPRESSION__NONE;
        csv_bytes = pack_msg(&csv.base);
        csv_url = bench_fmt(TYPE_PREFIX "%s", csv.base.descriptor->name);
        csv_any.type_url = csv_url;
        csv_any.value.data = csv_bytes.data;
        csv_any.value.len = csv_bytes.len;
        c.formattypeoptions = &csv_any;
    }
    bench_bytes_t out = driver_request(&c.base, key, project);
    bench_bytes_free(&csv_bytes);
    free(csv_url);
    return out;
}

bench_bytes_t bench_drv_export_file(const char *key, const char *project, const char *bucket, const char *table,
                                    const char *file_key, bench_fmt_t fmt)
{
    export_cmd_t c = KEBOOLA__STORAGE_DRIVER__COMMAND__TABLE__TABLE_EXPORT_TO_FILE_COMMAND__INIT;
    shared_table_t src = KEBOOLA__STORAGE_DRIVER__COMMAND__TABLE__IMPORT_EXPORT_SHARED__TABLE__INIT;
    file_path_t fp = KEBOOLA__STORAGE_DRIVER__COMMAND__TABLE__IMPORT_EXPORT_SHARED__FILE_PATH__INIT;
    export_opts_t o = KEBOOLA__STORAGE_DRIVER__COMMAND__TABLE__IMPORT_EXPORT_SHARED__EXPORT_OPTIONS__INIT;
    char *path[1] = {(char *)bucket};
    src.n_path = 1;
    src.path = path;
    src.tablename = (char *)table;
    c.source = &src;
    c.fileprovider = KEBOOLA__STORAGE_DRIVER__COMMAND__TABLE__IMPORT_EXPORT_SHARED__FILE_PROVIDER__S3;
    c.fileformat = fmt == BENCH_FMT_PARQUET
                       ? KEBOOLA__STORAGE_DRIVER__COMMAND__TABLE__IMPORT_EXPORT_SHARED__FILE_FORMAT__PARQUET
                       : KEBOOLA__STORAGE_DRIVER__COMMAND__TABLE__IMPORT_EXPORT_SHARED__FILE_FORMAT__CSV;
    fp.root = "";
    fp.path = "";
    fp.filename = (char *)file_key;
    c.filepath = &fp;
    o.iscompressed = fmt == BENCH_FMT_CSV_GZ;
    c.exportoptions = &o;
    return driver_request(&c.base, key, project);
}

/* ---- responses ---- */

/* Unpacks DriverResponse.commandResponse as desc; NULL when absent or of another type. */
static ProtobufCMessage *command_response(const bench_grpc_resp_t *r, const ProtobufCMessageDescriptor *desc)
{
    if (!r->data)
        return NULL;
    Keboola__StorageDriver__Command__Common__DriverResponse *dr =
        keboola__storage_driver__command__common__driver_response__unpack(NULL, r->len, r->data);
    if (!dr)
        return NULL;
    ProtobufCMessage *m = NULL;
    const char *url = dr->commandresponse ? dr->commandresponse->type_url : NULL;
    const char *slash = url ? strrchr(url, '/') : NULL;
    if (slash && strcmp(slash + 1, desc->name) == 0)
        m = protobuf_c_message_unpack(desc, NULL, dr->commandresponse->value.len, dr->commandresponse->value.data);
    keboola__storage_driver__command__common__driver_response__free_unpacked(dr, NULL);
    return m;
}

bool bench_drv_import_rows(const bench_grpc_resp_t *r, int64_t *imported, int64_t *table_rows)
{
    ProtobufCMessage *m =
        command_response(r, &keboola__storage_driver__command__table__table_import_response__descriptor);
    if (!m)
        return false;
    Keboola__StorageDriver__Command__Table__TableImportResponse *ir = (void *)m;
    *imported = ir->importedrowscount;
    *table_rows = ir->tablerowscount;
    protobuf_c_message_free_unpacked(m, NULL);
    return true;
}

bool bench_drv_table_rows(const bench_grpc_resp_t *r, int64_t *rows)
{
    ProtobufCMessage *m =
        command_response(r, &keboola__storage_driver__command__info__object_info_response__descriptor);
    if (!m)
        return false;
    Keboola__StorageDriver__Command__Info__ObjectInfoResponse *oi = (void *)m;
    bool ok =
        oi->object_info_case == KEBOOLA__STORAGE_DRIVER__COMMAND__INFO__OBJECT_INFO_RESPONSE__OBJECT_INFO_TABLE_INFO &&
        oi->tableinfo;
    if (ok)
        *rows = oi->tableinfo->rowscount;
    protobuf_c_message_free_unpacked(m, NULL);
    return ok;
}
