/*
 * dispatch.h - the storage-driver command dispatcher shared by the gRPC
 * server (server.c), the HTTP bridge (bridge.c) and the handler files
 * (dispatch.c, dispatch_data.c).
 *
 * DESIGN
 * ds_driver_execute() takes one serialized DriverRequest and always produces a
 * serialized DriverResponse plus a status: it decodes the envelope with the
 * command still packed, finds the command's full message name (from the type
 * URL of DriverRequest.command) in ONE table of handlers (dispatch.c), reads
 * the credentials and authenticates the key, and only then decodes the
 * command with that entry's descriptor. A handler maps the
 * protobuf command to ds_cmd_* calls and their result to the response
 * message of the protocol reference (section 3). Nothing here stores data.
 *
 * Memory: everything (decoded messages, responses, the encoded bytes) lives
 * in the ctx arena and dies with it. Thread-safety: any number of calls may
 * run at once, one per ctx.
 */
#ifndef DS_GRPC_DISPATCH_H
#define DS_GRPC_DISPATCH_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmd/cmd.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "proto/backend.pb-c.h"
#include "proto/bucket.pb-c.h"
#include "proto/common.pb-c.h"
#include "proto/credentials.pb-c.h"
#include "proto/executeQuery.pb-c.h"
#include "proto/info.pb-c.h"
#include "proto/project.pb-c.h"
#include "proto/table.pb-c.h"
#include "proto/workspace.pb-c.h"

/* The gRPC method path of the one RPC. */
#define DS_DRIVER_METHOD "/keboola.storageDriver.service.StorageDriverService/Execute"
/* The prefix of every type URL we write (and the usual one we read). */
#define DS_DRIVER_TYPE_PREFIX "type.googleapis.com/"

/* Short names for the generated protobuf-c types used by the handlers. */
typedef Keboola__StorageDriver__Command__Common__DriverRequest pb_driver_request_t;
typedef Keboola__StorageDriver__Command__Common__DriverResponse pb_driver_response_t;
typedef Keboola__StorageDriver__Command__Common__LogMessage pb_log_message_t;
typedef Keboola__StorageDriver__Credentials__GenericBackendCredentials pb_credentials_t;
typedef Keboola__StorageDriver__Command__Info__TableInfo pb_table_info_t;
typedef Keboola__StorageDriver__Command__Info__TableInfo__TableColumn pb_table_column_t;
typedef Keboola__StorageDriver__Command__Info__ObjectInfoResponse pb_object_info_response_t;
typedef Keboola__StorageDriver__Command__Table__TableColumnShared pb_column_shared_t;
typedef Keboola__StorageDriver__Command__Table__ImportExportShared__Table pb_io_table_t;
typedef Keboola__StorageDriver__Command__Table__ImportExportShared__TableWhereFilter pb_where_filter_t;
typedef Keboola__StorageDriver__Command__Table__ImportExportShared__ExportOrderBy pb_order_by_t;
typedef Keboola__StorageDriver__Command__Table__ImportExportShared__ExportFilters pb_export_filters_t;
typedef Keboola__StorageDriver__Command__Table__ImportExportShared__ImportOptions pb_import_options_t;
typedef Keboola__StorageDriver__Command__Table__ImportExportShared__FilePath pb_file_path_t;

/* Log levels of LogMessage (RFC 5424), by their protocol names. */
#define DS_DRV_LOG_ERROR KEBOOLA__STORAGE_DRIVER__COMMAND__COMMON__LOG_MESSAGE__LEVEL__Error
#define DS_DRV_LOG_WARNING KEBOOLA__STORAGE_DRIVER__COMMAND__COMMON__LOG_MESSAGE__LEVEL__Warning
#define DS_DRV_LOG_INFO KEBOOLA__STORAGE_DRIVER__COMMAND__COMMON__LOG_MESSAGE__LEVEL__Informational

#define DS_DRV_MAX_LOG 16

/* One command being executed: what a handler reads and fills. */
typedef struct ds_drv {
    ds_ctx_t *ctx;
    const char *project;         /* GenericBackendCredentials.host ("" when absent) */
    const ProtobufCMessage *cmd; /* the decoded command (its entry's type) */
    ProtobufCMessage *resp;      /* the response message, or NULL for "no response" */
    /* Or the response as its handler encoded it (resp NULL): its type and bytes (ctx arena). */
    const ProtobufCMessageDescriptor *resp_desc;
    ProtobufCBinaryData resp_packed;
    pb_log_message_t *log[DS_DRV_MAX_LOG]; /* user-facing messages, in order */
    size_t n_log;
} ds_drv_t;

typedef ds_status_t (*ds_drv_handler_fn)(ds_drv_t *d);

/* ---- the entry point used by the transports ---- */

typedef struct {
    ds_status_t status;
    int keboola_code;  /* 0 on success */
    char message[DS_ERR_MSG_MAX + 16]; /* "[2004] table ... not found", valid UTF-8; "" on success */
    const char *command; /* full name of the command's message (static), or NULL when not known */
    uint8_t *response;   /* serialized DriverResponse (ctx arena) */
    size_t response_len;
    /*
     * The command waits for a write slot without a thread (ctx->park was set,
     * cmd.h "Parking"): nothing else of *out is filled; the transport runs
     * ds_driver_run again when the slot is granted.
     */
    bool parked;
} ds_driver_result_t;

/*
 * One DriverRequest between its two steps: ds_driver_prepare reads the
 * envelope and the credentials and authenticates the key, without decoding
 * or copying the command (it stays packed: cmd_at points into the caller's
 * bytes, which must outlive the call); ds_driver_run decodes and runs it. The
 * transports prepare a call before it takes a worker.
 */
/* One piece of a message received in pieces (gRPC slices). */
typedef struct {
    const uint8_t *data;
    size_t len;
} ds_driver_piece_t;

/* A position in pieces: piece i, offset off, and the length of the range from there (dispatch.c). */
typedef struct {
    const ds_driver_piece_t *pieces;
    size_t i, off, left;
} ds_driver_cursor_t;

typedef struct {
    ds_drv_t d;
    ds_status_t status;               /* of ds_driver_prepare */
    const struct ds_drv_entry *entry; /* the command's table entry, once known */
    const char *command;              /* its full message name (static), or NULL */
    ds_driver_cursor_t cmd_at;        /* where the command's packed bytes (Any.value) are */
    ds_driver_piece_t one; /* the piece of a request given in one piece */
    /* The caller, for fairness between callers: "project:<id>" for a project key,
     * "admin:<credentials.host>" for the admin key. Set when prepare succeeds. */
    char caller[160];
    /* Its idempotency record, begun once (a parked command runs again and must not wait for itself). */
    bool idem_begun;
    struct ds_idem *idem;
} ds_driver_call_t;

/*
 * Steps 1-4 (dispatch.c): envelope, command type, credentials, key. ctx
 * needs an arena; ctx->key is replaced by the key from the request's
 * credentials, or from authorization (the transport's "Bearer <key>" value;
 * NULL when it has none). Returns dc->status; on failure ctx->err says why
 * and ds_driver_run only renders that error. data must outlive dc.
 */
ds_status_t ds_driver_prepare(ds_driver_call_t *dc, ds_ctx_t *ctx, const uint8_t *data, size_t len,
                              const char *authorization);
/*
 * The same for a request received in n pieces (in order), which are never
 * joined before the caller is authenticated; pieces (the array and the
 * bytes) must outlive dc.
 */
ds_status_t ds_driver_prepare_pieces(ds_driver_call_t *dc, ds_ctx_t *ctx, const ds_driver_piece_t *pieces,
                                     size_t n_pieces, const char *authorization);

/*
 * Step 5 and the answer: decodes and runs the prepared command (nothing runs
 * when prepare failed) and fills *out. Never fails as a function: every
 * outcome is described by *out, whose response is always a valid
 * DriverResponse (on error its messages end with a LogMessage of level Error
 * carrying the message and the Keboola code).
 */
void ds_driver_run(ds_driver_call_t *dc, ds_driver_result_t *out);
/*
 * True when the prepared command may park (cmd.h "Parking"): it makes exactly
 * one command that takes write slots, as its first write, so running it again
 * from the start after a grant is safe. A transport sets ctx->park only then.
 */
bool ds_driver_may_park(const ds_driver_call_t *dc);
/* Lets go of what a parked command that will not run again holds (its idempotency record, as not done). */
void ds_driver_abandon(ds_driver_call_t *dc);

/* ds_driver_prepare then ds_driver_run. */
void ds_driver_execute(ds_ctx_t *ctx, const uint8_t *data, size_t len, const char *authorization,
                       ds_driver_result_t *out);

/* The answer to a request refused before it was read (ctx->err says why), as ds_driver_run renders it. */
void ds_driver_fail(ds_ctx_t *ctx, ds_driver_result_t *out);

/* Percent-encodes s as a grpc-message value (gRPC's HTTP/2 spec) into the arena. */
char *ds_driver_grpc_message(ds_arena_t *a, const char *s);

/* ---- helpers for handler files ---- */

/* A zeroed message of descriptor desc in the ctx arena, initialized; NULL when out of memory. */
void *ds_drv_new(ds_drv_t *d, const ProtobufCMessageDescriptor *desc);
/* An arena array of n pointers (never NULL for n == 0 unless out of memory). */
void *ds_drv_ptrs(ds_drv_t *d, size_t n);
/* Appends a user-facing LogMessage (printf format). */
void ds_drv_log(ds_drv_t *d, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* DS_INTERNAL "out of memory" (for NULL from the allocation helpers). */
ds_status_t ds_drv_oom(ds_drv_t *d);
/* The project from the credentials: INVALID_ARGUMENT when host is empty. */
ds_status_t ds_drv_project(ds_drv_t *d, const char **project);
/*
 * A bucket of a path: "<branch>/<bucket id>" is a bucket of dev branch
 * <branch> (the request then works in it: d->ctx->branch), a plain bucket id
 * main's. INVALID_ARGUMENT when one request names two branches.
 */
ds_status_t ds_drv_bucket(ds_drv_t *d, const char *elem, const char **bucket);
/* The path name of bucket in the request's branch ("<branch>/<bucket>", or bucket on main); arena. */
char *ds_drv_bucket_name(ds_drv_t *d, const char *bucket);
/*
 * A table path: path must be exactly [bucket id] and table non-empty;
 * otherwise INVALID_ARGUMENT naming field (e.g. "destination").
 */
ds_status_t ds_drv_table_ref(ds_drv_t *d, size_t n_path, char **path, const char *table, const char *field,
                             const char **bucket_out, const char **table_out);
/* Builds TableInfo from a table of the command layer. */
pb_table_info_t *ds_drv_table_info(ds_drv_t *d, const ds_be_table_t *t);
/*
 * Encodes r as a PreviewTableResponse (wire format, exactly what protobuf-c
 * packs for the same message) into the arena; NULL when out of memory. The
 * preview is the one response large enough for building protobuf-c messages
 * cell by cell (two per cell) and packing them to cost more than its query.
 */
uint8_t *ds_drv_encode_preview(ds_arena_t *a, const ds_preview_result_t *r, size_t *len);

/* Reads the table and makes an ObjectInfoResponse (TABLE) of it the response. */
ds_status_t ds_drv_respond_table(ds_drv_t *d, const char *project, const char *bucket, const char *table);
/* A column definition of the protocol as the command layer's column (type + "(length)"). */
ds_status_t ds_drv_column_in(ds_drv_t *d, const pb_column_shared_t *c, const char *field, ds_column_in_t *out);
/* A NULL-or-empty protocol string as NULL. */
const char *ds_drv_str(const char *s);
/*
 * Decodes an Any that must hold a desc message (its type URL names desc);
 * *out is NULL when any is NULL. Anything else is INVALID_ARGUMENT naming field.
 */
ds_status_t ds_drv_unpack_any(ds_drv_t *d, const Google__Protobuf__Any *any, const ProtobufCMessageDescriptor *desc,
                              const char *field, const ProtobufCMessage **out);

/* ---- handlers of table data and schema changes (dispatch_data.c) ---- */
ds_status_t ds_drv_h_add_column(ds_drv_t *d);
ds_status_t ds_drv_h_alter_column(ds_drv_t *d);
ds_status_t ds_drv_h_drop_column(ds_drv_t *d);
ds_status_t ds_drv_h_add_primary_key(ds_drv_t *d);
ds_status_t ds_drv_h_drop_primary_key(ds_drv_t *d);
ds_status_t ds_drv_h_preview_table(ds_drv_t *d);
ds_status_t ds_drv_h_import_from_file(ds_drv_t *d);
ds_status_t ds_drv_h_import_from_table(ds_drv_t *d);
ds_status_t ds_drv_h_export_to_file(ds_drv_t *d);
ds_status_t ds_drv_h_delete_rows(ds_drv_t *d);
ds_status_t ds_drv_h_profile_table(ds_drv_t *d);
/* whereFilters of the protocol as the command layer's filters (dispatch_data.c). */
ds_status_t ds_drv_where_filters(ds_drv_t *d, size_t n, pb_where_filter_t **in, ds_where_t *w);

/* ---- handlers of workspaces and ExecuteQuery (dispatch_ws.c) ---- */
/* The workspace id an object name ("WORKSPACE_<id>") names, in the arena; NULL when it names none. */
const char *ds_drv_ws_id(ds_drv_t *d, const char *object_name);
ds_status_t ds_drv_h_create_workspace(ds_drv_t *d);
ds_status_t ds_drv_h_drop_workspace(ds_drv_t *d);
ds_status_t ds_drv_h_clear_workspace(ds_drv_t *d);
ds_status_t ds_drv_h_reset_workspace_password(ds_drv_t *d);
ds_status_t ds_drv_h_create_workspace_user(ds_drv_t *d);
ds_status_t ds_drv_h_drop_workspace_user(ds_drv_t *d);
ds_status_t ds_drv_h_drop_workspace_object(ds_drv_t *d);
ds_status_t ds_drv_h_grant_workspace_access(ds_drv_t *d);
ds_status_t ds_drv_h_revoke_workspace_access(ds_drv_t *d);
ds_status_t ds_drv_h_load_table_to_workspace(ds_drv_t *d);
ds_status_t ds_drv_h_execute_query(ds_drv_t *d);

/* Sharing, linked buckets and the read-only role (dispatch_share.c). */
ds_status_t ds_drv_h_share_bucket(ds_drv_t *d);
ds_status_t ds_drv_h_unshare_bucket(ds_drv_t *d);
ds_status_t ds_drv_h_link_bucket(ds_drv_t *d);
ds_status_t ds_drv_h_unlink_bucket(ds_drv_t *d);
ds_status_t ds_drv_h_grant_readonly(ds_drv_t *d);
ds_status_t ds_drv_h_revoke_readonly(ds_drv_t *d);
ds_status_t ds_drv_h_sharing_status(ds_drv_t *d);
ds_status_t ds_drv_h_grant_subscriber(ds_drv_t *d);
ds_status_t ds_drv_h_revoke_subscriber(ds_drv_t *d);

#endif
