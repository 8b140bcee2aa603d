/*
 * dispatch.c - the storage-driver dispatcher: DriverRequest in, DriverResponse
 * out, through ONE table of command handlers (see dispatch.h for the design).
 *
 * Order of checks, so each failure is reported as what it is and nothing of
 * the command is decoded for a caller who is not authenticated:
 *   1. the envelope decodes with the command left packed (split_envelope:
 *      every field but DriverRequest.command is decoded; the command's Any is
 *      only located), else INVALID_ARGUMENT "malformed DriverRequest";
 *   2. it has a command whose type URL names a message in the table (else
 *      UNIMPLEMENTED naming the type);
 *   3. the credentials: GenericBackendCredentials, key = secret, or principal
 *      when secret is empty, or the transport's "authorization: Bearer <key>"
 *      (gRPC metadata, or the bridge's Authorization header); both given must
 *      agree (else UNAUTHENTICATED); project = host;
 *   4. the key is the admin key or a project's key (ds_cmd_authenticate, else
 *      UNAUTHENTICATED "invalid API key");
 *   5. only now the command is bounds-checked (pbcheck) and decoded with its
 *      entry's descriptor (else INVALID_ARGUMENT), and its handler runs; it
 *      calls ds_cmd_* (they authorize admin vs project key per project).
 * Steps 1-4 are ds_driver_prepare (cheap: the transports run it before a
 * call takes a worker, and learn the caller for fairness), step 5 ds_driver_run.
 *
 * The handlers of backend, project, bucket, table and info commands are here;
 * those of table data and schema changes are in dispatch_data.c. Both sets are
 * listed in the one table below (commands[]), next to every protocol command
 * duckstore does not support, each with the capability it lacks.
 *
 * Protobuf decoding uses an allocator on the request arena, so a decoded
 * message (and every string a handler takes from it) lives exactly as long
 * as the request. Handlers build responses in the arena too.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/log.h"
#include "grpc/dispatch.h"
#include "grpc/pbcheck.h"

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        ds_status_t st_ = (expr);                                                                  \
        if (st_ != DS_OK)                                                                          \
            return st_;                                                                            \
    } while (0)

#define NEW(d, T, desc) ((T *)ds_drv_new((d), &(desc)))

/* ---- arena allocator for protobuf-c ---- */

static void *pb_alloc(void *ud, size_t n) { return ds_arena_alloc(ud, n ? n : 1); }
static void pb_free(void *ud, void *p)
{
    (void)ud;
    (void)p; /* the arena frees everything at once */
}

static ProtobufCAllocator arena_allocator(ds_arena_t *a)
{
    return (ProtobufCAllocator){.alloc = pb_alloc, .free = pb_free, .allocator_data = a};
}

/* ---- helpers for handlers ---- */

void *ds_drv_new(ds_drv_t *d, const ProtobufCMessageDescriptor *desc)
{
    void *m = ds_arena_alloc(d->ctx->arena, desc->sizeof_message);
    if (m)
        protobuf_c_message_init(desc, m);
    return m;
}

void *ds_drv_ptrs(ds_drv_t *d, size_t n) { return ds_arena_alloc(d->ctx->arena, sizeof(void *) * (n ? n : 1)); }

ds_status_t ds_drv_oom(ds_drv_t *d) { return ds_err_set(&d->ctx->err, DS_INTERNAL, "out of memory"); }

const char *ds_drv_str(const char *s) { return s && *s ? s : NULL; }

/* Replaces every byte that is not part of valid UTF-8 with '?', in place. */
static void utf8_sanitize(char *s)
{
    while (*s) {
        size_t n = ds_utf8_seq(s);
        if (n) {
            s += n;
        } else {
            *s++ = '?';
        }
    }
}

void ds_drv_log(ds_drv_t *d, int level, const char *fmt, ...)
{
    if (d->n_log >= DS_DRV_MAX_LOG)
        return;
    pb_log_message_t *m = NEW(d, pb_log_message_t, keboola__storage_driver__command__common__log_message__descriptor);
    char buf[DS_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (!m || !(m->message = ds_arena_strdup(d->ctx->arena, buf)))
        return;
    utf8_sanitize(m->message);
    m->level = (Keboola__StorageDriver__Command__Common__LogMessage__Level)level;
    d->log[d->n_log++] = m;
}

ds_status_t ds_drv_project(ds_drv_t *d, const char **project)
{
    if (!d->project || !*d->project)
        return ds_err_setf(&d->ctx->err, DS_INVALID_ARGUMENT, "credentials.host",
                           "GenericBackendCredentials.host must name the project");
    *project = d->project;
    return DS_OK;
}

/*
 * Dev branches in bucket paths (docs/driver-protocol.md): the object name of a
 * bucket in dev branch B is "B/<bucket id>" (what CreateBucket answers for a
 * branch bucket); a plain bucket id is the main branch. A request works in one
 * branch: the first path naming one sets it, another branch is refused.
 */
ds_status_t ds_drv_bucket(ds_drv_t *d, const char *elem, const char **bucket)
{
    const char *slash = elem ? strchr(elem, '/') : NULL;
    *bucket = elem;
    if (!slash)
        return DS_OK;
    const char *branch = ds_arena_strndup(d->ctx->arena, elem, (size_t)(slash - elem));
    if (!branch)
        return ds_drv_oom(d);
    if (d->ctx->branch && strcasecmp(d->ctx->branch, branch) != 0)
        return ds_err_setf(&d->ctx->err, DS_INVALID_ARGUMENT, "path",
                           "one command works in one dev branch: paths name branches \"%s\" and \"%s\"",
                           d->ctx->branch, branch);
    d->ctx->branch = branch;
    *bucket = slash + 1;
    return DS_OK;
}

char *ds_drv_bucket_name(ds_drv_t *d, const char *bucket)
{
    if (!d->ctx->branch || strcmp(d->ctx->branch, "default") == 0)
        return (char *)bucket;
    char *name = ds_arena_printf(d->ctx->arena, "%s/%s", d->ctx->branch, bucket);
    return name ? name : (char *)bucket;
}

ds_status_t ds_drv_table_ref(ds_drv_t *d, size_t n_path, char **path, const char *table, const char *field,
                             const char **bucket_out, const char **table_out)
{
    if (n_path != 1 || !path[0] || !*path[0])
        return ds_err_setf(&d->ctx->err, DS_INVALID_ARGUMENT, field,
                           "%s.path must be [bucket id] (one element), got %zu elements", field, n_path);
    if (!table || !*table)
        return ds_err_setf(&d->ctx->err, DS_INVALID_ARGUMENT, field, "%s.tableName is required", field);
    TRY(ds_drv_bucket(d, path[0], bucket_out));
    *table_out = table;
    return DS_OK;
}

/* Splits a canonical type "DECIMAL(12,2)" into type "DECIMAL" and length "12,2". */
static void split_type(ds_drv_t *d, const char *canonical, char **type, char **length)
{
    const char *open = strchr(canonical, '(');
    size_t n = strlen(canonical);
    if (open && n > 0 && canonical[n - 1] == ')') {
        *type = ds_arena_strndup(d->ctx->arena, canonical, (size_t)(open - canonical));
        *length = ds_arena_strndup(d->ctx->arena, open + 1, n - (size_t)(open - canonical) - 2);
    } else {
        *type = (char *)canonical;
        *length = (char *)protobuf_c_empty_string;
    }
}

pb_table_info_t *ds_drv_table_info(ds_drv_t *d, const ds_be_table_t *t)
{
    pb_table_info_t *ti = NEW(d, pb_table_info_t, keboola__storage_driver__command__info__table_info__descriptor);
    if (!ti || !(ti->path = ds_drv_ptrs(d, 1)) || !(ti->columns = ds_drv_ptrs(d, t->n_columns)) ||
        !(ti->primarykeysnames = ds_drv_ptrs(d, t->n_primary_key)))
        return NULL;
    ti->n_path = 1;
    ti->path[0] = ds_drv_bucket_name(d, t->bucket);
    ti->tablename = (char *)t->name;
    for (size_t i = 0; i < t->n_columns; i++) {
        const ds_be_column_t *c = &t->columns[i];
        pb_table_column_t *col =
            NEW(d, pb_table_column_t, keboola__storage_driver__command__info__table_info__table_column__descriptor);
        if (!col)
            return NULL;
        col->name = (char *)c->name;
        split_type(d, c->type, &col->type, &col->length);
        if (!col->type || !col->length)
            return NULL;
        col->nullable = c->nullable;
        if (c->default_value)
            col->default_ = (char *)c->default_value;
        ti->columns[i] = col;
    }
    ti->n_columns = t->n_columns;
    for (size_t i = 0; i < t->n_primary_key; i++)
        ti->primarykeysnames[i] = (char *)t->primary_key[i];
    ti->n_primarykeysnames = t->n_primary_key;
    ti->rowscount = t->rows;
    ti->sizebytes = t->bytes;
    ti->tabletype = KEBOOLA__STORAGE_DRIVER__COMMAND__INFO__TABLE_TYPE__NORMAL;
    return ti;
}

/* ObjectInfoResponse{path [bucket, table], TABLE, tableInfo} as the response. */
static ds_status_t respond_table_info(ds_drv_t *d, const ds_be_table_t *t)
{
    pb_object_info_response_t *r =
        NEW(d, pb_object_info_response_t, keboola__storage_driver__command__info__object_info_response__descriptor);
    if (!r || !(r->path = ds_drv_ptrs(d, 2)) || !(r->tableinfo = ds_drv_table_info(d, t)))
        return ds_drv_oom(d);
    r->n_path = 2;
    r->path[0] = ds_drv_bucket_name(d, t->bucket);
    r->path[1] = (char *)t->name;
    r->objecttype = KEBOOLA__STORAGE_DRIVER__COMMAND__INFO__OBJECT_TYPE__TABLE;
    r->object_info_case = KEBOOLA__STORAGE_DRIVER__COMMAND__INFO__OBJECT_INFO_RESPONSE__OBJECT_INFO_TABLE_INFO;
    d->resp = &r->base;
    return DS_OK;
}

ds_status_t ds_drv_respond_table(ds_drv_t *d, const char *project, const char *bucket, const char *table)
{
    ds_be_table_t t;
    TRY(ds_cmd_table_get(d->ctx, project, bucket, table, &t));
    return respond_table_info(d, &t);
}

ds_status_t ds_drv_column_in(ds_drv_t *d, const pb_column_shared_t *c, const char *field, ds_column_in_t *out)
{
    if (!c || !c->name || !*c->name)
        return ds_err_setf(&d->ctx->err, DS_INVALID_ARGUMENT, field, "%s: every column needs a name", field);
    memset(out, 0, sizeof(*out));
    out->name = c->name;
    out->nullable = c->nullable;
    out->default_value = ds_drv_str(c->default_);
    const char *type = ds_drv_str(c->type);
    const char *length = ds_drv_str(c->length);
    if (length && !type)
        return ds_err_setf(&d->ctx->err, DS_INVALID_ARGUMENT, field, "column \"%s\": length \"%s\" given without a type",
                           c->name, length);
    if (type && length && !strchr(type, '('))
        type = ds_arena_printf(d->ctx->arena, "%s(%s)", type, length);
    out->type = type;
    return DS_OK;
}

/* ---- backend ---- */

static ds_status_t h_init_backend(ds_drv_t *d)
{
    ds_backend_info_t info;
    TRY(ds_cmd_backend_init(d->ctx, &info));
    void *r = ds_drv_new(d, &keboola__storage_driver__command__backend__init_backend_response__descriptor);
    if (!r)
        return ds_drv_oom(d);
    d->resp = r;
    ds_drv_log(d, DS_DRV_LOG_INFO, "backend ready: engine %s, %lld projects", info.engine, (long long)info.projects);
    return DS_OK;
}

static ds_status_t h_remove_backend(ds_drv_t *d) { return ds_cmd_backend_remove(d->ctx); }

/* ---- projects (admin key) ---- */

static ds_status_t h_create_project(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Project__CreateProjectCommand *c = (const void *)d->cmd;
    if (!ds_drv_str(c->projectid))
        return ds_err_setf(&d->ctx->err, DS_INVALID_ARGUMENT, "projectId", "CreateProjectCommand.projectId is required");
    /* proto3 cannot tell an absent dataRetentionTime from 0: 0 means the default (7 days). */
    if (c->dataretentiontime < 0)
        return ds_err_setf(&d->ctx->err, DS_INVALID_ARGUMENT, "dataRetentionTime",
                           "CreateProjectCommand.dataRetentionTime must be a number of days (0: the default, %d)",
                           DS_RETENTION_DEFAULT_DAYS);
    ds_project_create_t in = {
        .id = c->projectid, .retention_set = c->dataretentiontime > 0, .retention_days = c->dataretentiontime};
    ds_project_t out;
    TRY(ds_cmd_project_create(d->ctx, &in, &out));
    Keboola__StorageDriver__Command__Project__CreateProjectResponse *r =
        NEW(d, Keboola__StorageDriver__Command__Project__CreateProjectResponse,
            keboola__storage_driver__command__project__create_project_response__descriptor);
    if (!r || !(r->projectusername = ds_arena_strdup(d->ctx->arena, out.rec.id)))
        return ds_drv_oom(d);
    r->projectdatabasename = r->projectusername;
    r->projectpassword = (char *)out.api_key;
    d->resp = &r->base;
    return DS_OK;
}

static ds_status_t h_update_project(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Project__UpdateProjectCommand *c = (const void *)d->cmd;
    if (!ds_drv_str(c->projectid))
        return ds_err_setf(&d->ctx->err, DS_INVALID_ARGUMENT, "projectId", "UpdateProjectCommand.projectId is required");
    ds_project_t out;
    TRY(ds_cmd_project_update(d->ctx, c->projectid, NULL, -1, &out));
    if (ds_drv_str(c->region) || ds_drv_str(c->timezone))
        ds_drv_log(d, DS_DRV_LOG_WARNING, "project \"%s\": region and timezone have no effect on duckstore",
                   c->projectid);
    return DS_OK;
}

static ds_status_t h_drop_project(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Project__DropProjectCommand *c = (const void *)d->cmd;
    const char *id = ds_drv_str(c->projectdatabasename) ? c->projectdatabasename : ds_drv_str(c->projectusername);
    if (!id)
        return ds_err_setf(&d->ctx->err, DS_INVALID_ARGUMENT, "projectDatabaseName",
                           "DropProjectCommand.projectDatabaseName must name the project");
    return ds_cmd_project_delete(d->ctx, id);
}

/*
 * Dev branches: CreateDevBranch creates branch branchId of the project and
 * answers devBranchReadOnlyRoleName "<project>/<branch id>", which Keboola
 * keeps and hands back to DropDevBranch (which carries nothing else).
 */
static ds_status_t h_create_dev_branch(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Project__CreateDevBranchCommand *c = (const void *)d->cmd;
    const char *project = ds_drv_str(c->projectid);
    if (!project)
        TRY(ds_drv_project(d, &project));
    if (!ds_drv_str(c->branchid))
        return ds_err_setf(&d->ctx->err, DS_INVALID_ARGUMENT, "branchId", "CreateDevBranchCommand.branchId is required");
    ds_be_branch_t b;
    TRY(ds_cmd_branch_create(d->ctx, project, c->branchid, NULL, &b));
    Keboola__StorageDriver__Command__Project__CreateDevBranchResponse *r =
        NEW(d, Keboola__StorageDriver__Command__Project__CreateDevBranchResponse,
            keboola__storage_driver__command__project__create_dev_branch_response__descriptor);
    if (!r || !(r->devbranchreadonlyrolename = ds_arena_printf(d->ctx->arena, "%s/%s", d->ctx->project_id, b.id)))
        return ds_drv_oom(d);
    d->resp = &r->base;
    return DS_OK;
}

static ds_status_t h_drop_dev_branch(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Project__DropDevBranchCommand *c = (const void *)d->cmd;
    const char *role = ds_drv_str(c->devbranchreadonlyrolename);
    const char *slash = role ? strchr(role, '/') : NULL;
    if (!slash || slash == role || !slash[1])
        return ds_err_setf(&d->ctx->err, DS_INVALID_ARGUMENT, "devBranchReadOnlyRoleName",
                           "DropDevBranchCommand.devBranchReadOnlyRoleName must be \"<project>/<branch id>\" as "
                           "CreateDevBranch answered it, got \"%.100s\"",
                           role ? role : "");
    const char *project = ds_arena_strndup(d->ctx->arena, role, (size_t)(slash - role));
    if (!project)
        return ds_drv_oom(d);
    return ds_cmd_branch_delete(d->ctx, project, slash + 1);
}

/* ---- buckets ---- */

static ds_status_t h_create_bucket(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Bucket__CreateBucketCommand *c = (const void *)d->cmd;
    const char *project;
    TRY(ds_drv_project(d, &project));
    /* branchId of a dev branch (not the default one): the bucket exists only in that branch. */
    if (ds_drv_str(c->branchid) && !c->isbranchdefault)
        d->ctx->branch = c->branchid;
    if (!ds_drv_str(c->bucketid))
        return ds_err_setf(&d->ctx->err, DS_INVALID_ARGUMENT, "bucketId",
                           "CreateBucketCommand.bucketId is required (\"<stage>.<name>\", e.g. \"in.c-main\")");
    /* Keboola's bucket id is "<stage>.c-<name>"; a bare name goes to stage "in". */
    ds_bucket_create_t in = {.stage = "in", .name = c->bucketid};
    const char *dot = strchr(c->bucketid, '.');
    if (dot) {
        in.stage = ds_arena_strndup(d->ctx->arena, c->bucketid, (size_t)(dot - c->bucketid));
        in.name = dot + 1;
    }
    ds_be_bucket_t b;
    TRY(ds_cmd_bucket_create(d->ctx, project, &in, &b));
    Keboola__StorageDriver__Command__Bucket__CreateBucketResponse *r =
        NEW(d, Keboola__StorageDriver__Command__Bucket__CreateBucketResponse,
            keboola__storage_driver__command__bucket__create_bucket_response__descriptor);
    if (!r || !(r->path = ds_drv_ptrs(d, 1)))
        return ds_drv_oom(d);
    r->n_path = 1;
    r->path[0] = ds_drv_bucket_name(d, b.id);
    r->createbucketobjectname = r->path[0];
    d->resp = &r->base;
    return DS_OK;
}

static ds_status_t h_drop_bucket(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Bucket__DropBucketCommand *c = (const void *)d->cmd;
    const char *project;
    TRY(ds_drv_project(d, &project));
    if (!ds_drv_str(c->bucketobjectname))
        return ds_err_setf(&d->ctx->err, DS_INVALID_ARGUMENT, "bucketObjectName",
                           "DropBucketCommand.bucketObjectName is required");
    const char *bucket;
    TRY(ds_drv_bucket(d, c->bucketobjectname, &bucket));
    /* ignoreErrors is deprecated in the protocol and not honored: a missing bucket is NOT_FOUND. */
    return ds_cmd_bucket_delete(d->ctx, project, bucket, c->iscascade);
}

/* ---- tables ---- */

static ds_status_t h_create_table(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Table__CreateTableCommand *c = (const void *)d->cmd;
    const char *project, *bucket, *table;
    TRY(ds_drv_project(d, &project));
    TRY(ds_drv_table_ref(d, c->n_path, c->path, c->tablename, "CreateTableCommand", &bucket, &table));
    ds_table_create_t in = {.name = table, .n_columns = c->n_columns};
    if (!(in.columns = ds_arena_alloc(d->ctx->arena, sizeof(ds_column_in_t) * (c->n_columns ? c->n_columns : 1))))
        return ds_drv_oom(d);
    for (size_t i = 0; i < c->n_columns; i++)
        TRY(ds_drv_column_in(d, c->columns[i], "columns", &in.columns[i]));
    in.primary_key = (const char **)c->primarykeysnames;
    in.n_primary_key = c->n_primarykeysnames;
    ds_be_table_t t;
    TRY(ds_cmd_table_create(d->ctx, project, bucket, &in, &t));
    return respond_table_info(d, &t);
}

static ds_status_t h_drop_table(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Table__DropTableCommand *c = (const void *)d->cmd;
    const char *project, *bucket, *table;
    TRY(ds_drv_project(d, &project));
    TRY(ds_drv_table_ref(d, c->n_path, c->path, c->tablename, "DropTableCommand", &bucket, &table));
    /* ignoreErrors is deprecated in the protocol and not honored: a missing table is NOT_FOUND. */
    return ds_cmd_table_drop(d->ctx, project, bucket, table, false);
}

/*
 * CreateViewCommand: an alias (cmd/alias.c) path.viewName of
 * sourcePath.sourceTableName. columns given pin the view's columns, none
 * makes it follow the source's; at most one whereFilter, eq or ne, one or
 * more values. The protocol defines no response.
 */
static ds_status_t h_create_view(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Table__CreateViewCommand *c = (const void *)d->cmd;
    const char *project, *bucket, *name, *src_bucket, *src_table;
    ds_where_t w = {0};
    TRY(ds_drv_project(d, &project));
    TRY(ds_drv_table_ref(d, c->n_path, c->path, c->viewname, "CreateViewCommand", &bucket, &name));
    if (c->n_sourcepath != 1 || !ds_drv_str(c->sourcepath[0]))
        return ds_err_setf(&d->ctx->err, DS_INVALID_ARGUMENT, "sourcePath",
                           "CreateViewCommand.sourcePath must be [bucket id] (one element), got %zu elements",
                           c->n_sourcepath);
    if (!ds_drv_str(c->sourcetablename))
        return ds_err_setf(&d->ctx->err, DS_INVALID_ARGUMENT, "sourceTableName",
                           "CreateViewCommand.sourceTableName is required");
    TRY(ds_drv_bucket(d, c->sourcepath[0], &src_bucket));
    src_table = c->sourcetablename;
    if (c->n_wherefilters > 1)
        return ds_err_setf(&d->ctx->err, DS_INVALID_ARGUMENT, "whereFilters",
                           "a view takes at most one whereFilter (one column, eq or ne), got %zu", c->n_wherefilters);
    TRY(ds_drv_where_filters(d, c->n_wherefilters, c->wherefilters, &w));
    ds_alias_create_t in = {.bucket = bucket,
                            .name = name,
                            .filter = w.n_filters ? &w.filters[0] : NULL,
                            .columns = (const char **)c->columns,
                            .n_columns = c->n_columns,
                            .auto_sync = -1};
    if (in.filter && in.filter->data_type)
        return ds_err_setf(&d->ctx->err, DS_INVALID_ARGUMENT, "whereFilters",
                           "a view's whereFilter compares values as the column stores them: leave dataType unset");
    ds_be_table_t t;
    ds_alias_t a;
    return ds_cmd_alias_create(d->ctx, project, src_bucket, src_table, &in, &t, &a);
}

/*
 * CreateTableFromTimeTravelCommand: destination created as source was at
 * timestamp (unix seconds: the end of that second). A dropped table is
 * restored through REST only (the command names no dropped table).
 */
static ds_status_t h_time_travel(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Table__CreateTableFromTimeTravelCommand *c = (const void *)d->cmd;
    const char *project;
    ds_time_travel_t in = {.at_s = c->timestamp};
    TRY(ds_drv_project(d, &project));
    if (!c->source)
        return ds_err_setf(&d->ctx->err, DS_INVALID_ARGUMENT, "source",
                           "CreateTableFromTimeTravelCommand.source is required");
    if (!c->destination)
        return ds_err_setf(&d->ctx->err, DS_INVALID_ARGUMENT, "destination",
                           "CreateTableFromTimeTravelCommand.destination is required");
    TRY(ds_drv_table_ref(d, c->source->n_path, c->source->path, c->source->tablename,
                         "CreateTableFromTimeTravelCommand.source", &in.bucket, &in.table));
    TRY(ds_drv_table_ref(d, c->destination->n_path, c->destination->path, c->destination->tablename,
                         "CreateTableFromTimeTravelCommand.destination", &in.dst_bucket, &in.dst_table));
    ds_be_table_t t;
    ds_status_t st = ds_cmd_table_time_travel(d->ctx, project, &in, &t);
    if (st == DS_NOT_FOUND) {
        /* No live table of that name: the source may be a dropped table, whose history stays for the
         * project's retention (REST: POST .../buckets/{b}/time-travel). Its error is the answer then. */
        ds_err_clear(&d->ctx->err);
        in.dropped = true;
        st = ds_cmd_table_time_travel(d->ctx, project, &in, &t);
    }
    if (st != DS_OK)
        return st;
    return respond_table_info(d, &t);
}

/* ---- info ---- */

/* ViewInfo of an alias (its columns, key and the rows it selects). */
static Keboola__StorageDriver__Command__Info__ViewInfo *view_info(ds_drv_t *d, const ds_be_table_t *t)
{
    pb_table_info_t *ti = ds_drv_table_info(d, t);
    Keboola__StorageDriver__Command__Info__ViewInfo *vi =
        NEW(d, Keboola__StorageDriver__Command__Info__ViewInfo,
            keboola__storage_driver__command__info__view_info__descriptor);
    if (!ti || !vi)
        return NULL;
    vi->n_path = ti->n_path;
    vi->path = ti->path;
    vi->viewname = ti->tablename;
    vi->n_columns = ti->n_columns;
    vi->columns = ti->columns;
    vi->n_primarykeysnames = ti->n_primarykeysnames;
    vi->primarykeysnames = ti->primarykeysnames;
    vi->rowscount = ti->rowscount;
    return vi;
}

typedef Keboola__StorageDriver__Command__Info__ObjectInfo pb_object_info_t;

static pb_object_info_t *object_info(ds_drv_t *d, const char *name, int type)
{
    pb_object_info_t *o = NEW(d, pb_object_info_t, keboola__storage_driver__command__info__object_info__descriptor);
    if (o) {
        o->objectname = (char *)name;
        o->objecttype = (Keboola__StorageDriver__Command__Info__ObjectType)type;
    }
    return o;
}

static ds_status_t h_object_info(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Info__ObjectInfoCommand *c = (const void *)d->cmd;
    ds_err_t *err = &d->ctx->err;
    const char *project;
    TRY(ds_drv_project(d, &project));
    pb_object_info_response_t *r =
        NEW(d, pb_object_info_response_t, keboola__storage_driver__command__info__object_info_response__descriptor);
    if (!r)
        return ds_drv_oom(d);
    r->n_path = c->n_path;
    r->path = c->path;
    r->objecttype = c->expectedobjecttype;
    switch ((int)c->expectedobjecttype) {
    case KEBOOLA__STORAGE_DRIVER__COMMAND__INFO__OBJECT_TYPE__DATABASE: {
        /* The database is the project: path [] or [project id]; a dev branch's view is [project id "/" branch id],
         * the devBranchReadOnlyRoleName CreateDevBranch answers, and lists its buckets as "<branch>/<bucket>". */
        const char *slash = c->n_path == 1 ? strchr(c->path[0], '/') : NULL;
        size_t plen = slash ? (size_t)(slash - c->path[0]) : (c->n_path == 1 ? strlen(c->path[0]) : 0);
        if (c->n_path > 1 || (c->n_path == 1 && (plen != strlen(project) || strncasecmp(c->path[0], project, plen) != 0 ||
                                                 (slash && !slash[1]))))
            return ds_err_setf(err, DS_INVALID_ARGUMENT, "path",
                               "ObjectInfo of a DATABASE takes path [], [\"%s\"] (the project) or "
                               "[\"%s/<branch id>\"] (a dev branch's view)",
                               project, project);
        if (slash)
            d->ctx->branch = slash + 1;
        ds_be_bucket_t *items;
        size_t n;
        TRY(ds_cmd_bucket_list(d->ctx, project, &items, &n));
        Keboola__StorageDriver__Command__Info__DatabaseInfo *di =
            NEW(d, Keboola__StorageDriver__Command__Info__DatabaseInfo,
                keboola__storage_driver__command__info__database_info__descriptor);
        if (!di || !(di->objects = ds_drv_ptrs(d, n)))
            return ds_drv_oom(d);
        for (size_t i = 0; i < n; i++)
            if (!(di->objects[i] = object_info(d, ds_drv_bucket_name(d, items[i].id),
                                               KEBOOLA__STORAGE_DRIVER__COMMAND__INFO__OBJECT_TYPE__SCHEMA)))
                return ds_drv_oom(d);
        di->n_objects = n;
        r->databaseinfo = di;
        r->object_info_case = KEBOOLA__STORAGE_DRIVER__COMMAND__INFO__OBJECT_INFO_RESPONSE__OBJECT_INFO_DATABASE_INFO;
        break;
    }
    case KEBOOLA__STORAGE_DRIVER__COMMAND__INFO__OBJECT_TYPE__SCHEMA: {
        if (c->n_path != 1)
            return ds_err_setf(err, DS_INVALID_ARGUMENT, "path",
                               "ObjectInfo of a SCHEMA takes path [bucket id], got %zu elements", c->n_path);
        ds_be_table_t *items;
        const ds_alias_t **aliases;
        size_t n;
        const char *bucket;
        TRY(ds_drv_bucket(d, c->path[0], &bucket));
        TRY(ds_cmd_object_list(d->ctx, project, bucket, &items, &n, &aliases));
        Keboola__StorageDriver__Command__Info__SchemaInfo *si =
            NEW(d, Keboola__StorageDriver__Command__Info__SchemaInfo,
                keboola__storage_driver__command__info__schema_info__descriptor);
        if (!si || !(si->objects = ds_drv_ptrs(d, n)))
            return ds_drv_oom(d);
        for (size_t i = 0; i < n; i++)
            if (!(si->objects[i] = object_info(d, items[i].name,
                                               aliases && aliases[i] ? KEBOOLA__STORAGE_DRIVER__COMMAND__INFO__OBJECT_TYPE__VIEW
                                                                     : KEBOOLA__STORAGE_DRIVER__COMMAND__INFO__OBJECT_TYPE__TABLE)))
                return ds_drv_oom(d);
        si->n_objects = n;
        r->schemainfo = si;
        r->object_info_case = KEBOOLA__STORAGE_DRIVER__COMMAND__INFO__OBJECT_INFO_RESPONSE__OBJECT_INFO_SCHEMA_INFO;
        break;
    }
    case KEBOOLA__STORAGE_DRIVER__COMMAND__INFO__OBJECT_TYPE__TABLE:
    case KEBOOLA__STORAGE_DRIVER__COMMAND__INFO__OBJECT_TYPE__VIEW: {
        bool want_view = (int)c->expectedobjecttype == KEBOOLA__STORAGE_DRIVER__COMMAND__INFO__OBJECT_TYPE__VIEW;
        if (c->n_path != 2)
            return ds_err_setf(err, DS_INVALID_ARGUMENT, "path",
                               "ObjectInfo of a %s takes path [bucket id, %s name], got %zu elements",
                               want_view ? "VIEW" : "TABLE", want_view ? "view" : "table", c->n_path);
        ds_be_table_t t;
        bool is_alias;
        const char *bucket;
        TRY(ds_drv_bucket(d, c->path[0], &bucket));
        TRY(ds_cmd_object_get(d->ctx, project, bucket, c->path[1], &t, NULL, &is_alias));
        if (want_view && !is_alias)
            return ds_err_setk(err, DS_NOT_FOUND, DS_KBC_TABLE_NOT_FOUND,
                               "view \"%s.%s\" not found: it is a table (ask for expectedObjectType TABLE)",
                               c->path[0], c->path[1]);
        if (is_alias) {
            /* An alias is a VIEW whatever was expected: the answer's objectType says so. */
            r->objecttype = KEBOOLA__STORAGE_DRIVER__COMMAND__INFO__OBJECT_TYPE__VIEW;
            if (!(r->viewinfo = view_info(d, &t)))
                return ds_drv_oom(d);
            r->object_info_case = KEBOOLA__STORAGE_DRIVER__COMMAND__INFO__OBJECT_INFO_RESPONSE__OBJECT_INFO_VIEW_INFO;
            break;
        }
        if (!(r->tableinfo = ds_drv_table_info(d, &t)))
            return ds_drv_oom(d);
        r->object_info_case = KEBOOLA__STORAGE_DRIVER__COMMAND__INFO__OBJECT_INFO_RESPONSE__OBJECT_INFO_TABLE_INFO;
        break;
    }
    default:
        return ds_err_setf(err, DS_INVALID_ARGUMENT, "expectedObjectType", "unknown expectedObjectType %d",
                           (int)c->expectedobjecttype);
    }
    d->resp = &r->base;
    return DS_OK;
}

static ds_status_t h_list_schemas(ds_drv_t *d)
{
    const char *project;
    ds_be_bucket_t *items;
    size_t n;
    TRY(ds_drv_project(d, &project));
    TRY(ds_cmd_bucket_list(d->ctx, project, &items, &n));
    Keboola__StorageDriver__Command__Info__ListSchemasResponse *r =
        NEW(d, Keboola__StorageDriver__Command__Info__ListSchemasResponse,
            keboola__storage_driver__command__info__list_schemas_response__descriptor);
    if (!r || !(r->schemas = ds_drv_ptrs(d, n)))
        return ds_drv_oom(d);
    for (size_t i = 0; i < n; i++)
        r->schemas[i] = (char *)items[i].id;
    r->n_schemas = n;
    d->resp = &r->base;
    return DS_OK;
}

/* ---- the table ---- */

typedef struct ds_drv_entry {
    const ProtobufCMessageDescriptor *command;
    ds_drv_handler_fn handler;
} ds_drv_entry_t;

#define CMD(pkg, name) &keboola__storage_driver__command__##pkg##__##name##__descriptor

/* Every command of the protocol (reference section 3), with its handler. */
static const ds_drv_entry_t commands[] = {
    /* backend (admin key) */
    {.command = CMD(backend, init_backend_command), .handler = h_init_backend},
    {.command = CMD(backend, remove_backend_command), .handler = h_remove_backend},
    /* projects (admin key) */
    {.command = CMD(project, create_project_command), .handler = h_create_project},
    {.command = CMD(project, update_project_command), .handler = h_update_project},
    {.command = CMD(project, drop_project_command), .handler = h_drop_project},
    {.command = CMD(project, create_dev_branch_command), .handler = h_create_dev_branch},
    {.command = CMD(project, drop_dev_branch_command), .handler = h_drop_dev_branch},
    /* buckets */
    {.command = CMD(bucket, create_bucket_command), .handler = h_create_bucket},
    {.command = CMD(bucket, drop_bucket_command), .handler = h_drop_bucket},
    {.command = CMD(bucket, share_bucket_command), .handler = ds_drv_h_share_bucket},
    {.command = CMD(bucket, unshare_bucket_command), .handler = ds_drv_h_unshare_bucket},
    {.command = CMD(bucket, link_bucket_command), .handler = ds_drv_h_link_bucket},
    {.command = CMD(bucket, unlink_bucket_command), .handler = ds_drv_h_unlink_bucket},
    {.command = CMD(bucket, grant_bucket_access_to_read_only_role_command), .handler = ds_drv_h_grant_readonly},
    {.command = CMD(bucket, revoke_bucket_access_from_read_only_role_command), .handler = ds_drv_h_revoke_readonly},
    {.command = CMD(bucket, big_query_external_bucket_sharing_status_command), .handler = ds_drv_h_sharing_status},
    {.command = CMD(bucket, grant_external_bucket_subscriber_command), .handler = ds_drv_h_grant_subscriber},
    {.command = CMD(bucket, revoke_external_bucket_subscriber_command), .handler = ds_drv_h_revoke_subscriber},
    /* tables */
    {.command = CMD(table, create_table_command), .handler = h_create_table},
    {.command = CMD(table, drop_table_command), .handler = h_drop_table},
    {.command = CMD(table, add_column_command), .handler = ds_drv_h_add_column},
    {.command = CMD(table, alter_column_command), .handler = ds_drv_h_alter_column},
    {.command = CMD(table, drop_column_command), .handler = ds_drv_h_drop_column},
    {.command = CMD(table, add_primary_key_command), .handler = ds_drv_h_add_primary_key},
    {.command = CMD(table, drop_primary_key_command), .handler = ds_drv_h_drop_primary_key},
    {.command = CMD(table, preview_table_command), .handler = ds_drv_h_preview_table},
    {.command = CMD(table, table_import_from_file_command), .handler = ds_drv_h_import_from_file},
    {.command = CMD(table, table_import_from_table_command), .handler = ds_drv_h_import_from_table},
    {.command = CMD(table, table_export_to_file_command), .handler = ds_drv_h_export_to_file},
    {.command = CMD(table, delete_table_rows_command), .handler = ds_drv_h_delete_rows},
    {.command = CMD(table, create_profile_table_command), .handler = ds_drv_h_profile_table},
    {.command = CMD(table, create_table_from_time_travel_command), .handler = h_time_travel},
    {.command = CMD(table, create_view_command), .handler = h_create_view},
    /* workspaces */
    {.command = CMD(workspace, create_workspace_command), .handler = ds_drv_h_create_workspace},
    {.command = CMD(workspace, drop_workspace_command), .handler = ds_drv_h_drop_workspace},
    {.command = CMD(workspace, clear_workspace_command), .handler = ds_drv_h_clear_workspace},
    {.command = CMD(workspace, reset_workspace_password_command), .handler = ds_drv_h_reset_workspace_password},
    {.command = CMD(workspace, create_workspace_user_command), .handler = ds_drv_h_create_workspace_user},
    {.command = CMD(workspace, drop_workspace_user_command), .handler = ds_drv_h_drop_workspace_user},
    {.command = CMD(workspace, drop_workspace_object_command), .handler = ds_drv_h_drop_workspace_object},
    {.command = CMD(workspace, grant_workspace_access_to_project_command), .handler = ds_drv_h_grant_workspace_access},
    {.command = CMD(workspace, revoke_workspace_access_to_project_command),
     .handler = ds_drv_h_revoke_workspace_access},
    {.command = CMD(workspace, load_table_to_workspace_command), .handler = ds_drv_h_load_table_to_workspace},
    /* info */
    {.command = CMD(info, object_info_command), .handler = h_object_info},
    {.command = CMD(info, list_schemas_command), .handler = h_list_schemas},
    /* queries */
    {.command = CMD(execute_query, execute_query_command), .handler = ds_drv_h_execute_query},
};

static const ds_drv_entry_t *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].command->name, name) == 0)
            return &commands[i];
    return NULL;
}

/* The message name of a type URL: the text after its last '/'. */
static const char *type_name(const char *url)
{
    const char *slash = url ? strrchr(url, '/') : NULL;
    return slash ? slash + 1 : (url ? url : "");
}

ds_status_t ds_drv_unpack_any(ds_drv_t *d, const Google__Protobuf__Any *any, const ProtobufCMessageDescriptor *desc,
                              const char *field, const ProtobufCMessage **out)
{
    *out = NULL;
    if (!any)
        return DS_OK;
    const char *name = type_name(any->type_url);
    if (strcmp(name, desc->name) != 0)
        return ds_err_setf(&d->ctx->err, DS_INVALID_ARGUMENT, field, "%s must hold %s, got \"%.200s\"", field,
                           desc->name, name);
    ProtobufCAllocator alloc = arena_allocator(d->ctx->arena);
    TRY(ds_pb_check(desc, any->value.data, any->value.len, NULL, field, &d->ctx->err));
    *out = protobuf_c_message_unpack(desc, &alloc, any->value.len, any->value.data);
    if (!*out)
        return ds_err_setf(&d->ctx->err, DS_INVALID_ARGUMENT, field, "malformed %s in %s", desc->name, field);
    return DS_OK;
}

/* ---- execution ---- */

/*
 * The API key of an "authorization: Bearer <key>" metadata value (arena),
 * or an UNAUTHENTICATED error naming the expected form.
 */
static ds_status_t bearer_key(ds_drv_t *d, const char *value, const char **key)
{
    const char *p = value;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
        return ds_err_setf(&d->ctx->err, DS_UNAUTHENTICATED, "authorization",
                           "the authorization metadata must be \"Bearer <API key>\"");
    p += 6;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strlen(p);
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (n == 0)
        return ds_err_setf(&d->ctx->err, DS_UNAUTHENTICATED, "authorization",
                           "the authorization metadata carries no API key (\"Bearer <API key>\")");
    if (!(*key = ds_arena_strndup(d->ctx->arena, p, n)))
        return ds_drv_oom(d);
    return DS_OK;
}

/*
 * The key: GenericBackendCredentials.secret (or principal), or the
 * authorization metadata of the transport; the project: credentials.host.
 * Either source alone is enough; when both carry a key they must agree.
 */
static ds_status_t read_credentials(ds_drv_t *d, const pb_driver_request_t *req, const char *authorization,
                                    ProtobufCAllocator *alloc)
{
    ds_err_t *err = &d->ctx->err;
    const ProtobufCMessageDescriptor *desc = &keboola__storage_driver__credentials__generic_backend_credentials__descriptor;
    const char *meta_key = NULL;
    if (authorization)
        TRY(bearer_key(d, authorization, &meta_key));
    if (!req->credentials) {
        if (meta_key) {
            d->ctx->key = meta_key;
            return DS_OK;
        }
        return ds_err_setf(err, DS_UNAUTHENTICATED, "credentials",
                           "DriverRequest.credentials is missing: send GenericBackendCredentials with the API key "
                           "in secret (or \"authorization: Bearer <API key>\" metadata)");
    }
    const char *name = type_name(req->credentials->type_url);
    if (strcmp(name, desc->name) != 0)
        return ds_err_setf(err, DS_INVALID_ARGUMENT, "credentials",
                           "DriverRequest.credentials must be %s, got \"%.200s\"", desc->name, name);
    TRY(ds_pb_check(desc, req->credentials->value.data, req->credentials->value.len, NULL, "credentials", err));
    const pb_credentials_t *cred = (const void *)protobuf_c_message_unpack(desc, alloc, req->credentials->value.len,
                                                                           req->credentials->value.data);
    if (!cred)
        return ds_err_setf(err, DS_INVALID_ARGUMENT, "credentials", "malformed %s", desc->name);
    const char *key = ds_drv_str(cred->secret) ? cred->secret : ds_drv_str(cred->principal);
    if (key && meta_key && strcmp(key, meta_key) != 0)
        return ds_err_setf(err, DS_UNAUTHENTICATED, "credentials",
                           "DriverRequest.credentials and the authorization metadata carry different API keys: "
                           "send one of them");
    if (!key)
        key = meta_key;
    if (!key)
        return ds_err_setf(err, DS_UNAUTHENTICATED, "credentials",
                           "the credentials carry no key: put the API key in GenericBackendCredentials.secret "
                           "(or send \"authorization: Bearer <API key>\" metadata)");
    d->ctx->key = key;
    d->project = cred->host ? cred->host : "";
    return DS_OK;
}

/* ---- the envelope, read without decoding the command ---- */

/*
 * A read position in a message held in pieces (gRPC hands a message over as
 * slices; the bridge as one piece), limited to the left bytes of the range
 * being read. Reading never copies more than the caller asks for, so the
 * command's bytes are located without being copied.
 */
typedef ds_driver_cursor_t cursor_t;

/* Moves past exhausted pieces; only called with left > 0, so a piece with data follows. */
static void cur_settle(cursor_t *c)
{
    while (c->off >= c->pieces[c->i].len) {
        c->i++;
        c->off = 0;
    }
}

/* Copies n bytes to dst, or skips them when dst is NULL; false when fewer are left. */
static bool cur_read(cursor_t *c, uint8_t *dst, size_t n)
{
    if (n > c->left)
        return false;
    c->left -= n;
    while (n > 0) {
        cur_settle(c);
        size_t k = c->pieces[c->i].len - c->off;
        if (k > n)
            k = n;
        if (dst) {
            memcpy(dst, c->pieces[c->i].data + c->off, k);
            dst += k;
        }
        c->off += k;
        n -= k;
    }
    return true;
}

/* Reads a varint; false when truncated or longer than 10 bytes. */
static bool cur_varint(cursor_t *c, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        uint8_t b;
        if (!cur_read(c, &b, 1))
            return false;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

/* Writes v as a varint at out; returns its length (at most 10). */
static size_t put_varint(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    do {
        out[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

/*
 * Reads one field's key: its number and wire type, and for a
 * length-delimited field the payload's length (*len; 8 or 4 for the fixed
 * types, 0 for a varint). false when malformed (groups are not part of this
 * protocol).
 */
static bool cur_field(cursor_t *c, uint32_t *number, unsigned *type, uint64_t *len)
{
    uint64_t key;
    if (!cur_varint(c, &key) || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
        return false;
    *number = (uint32_t)(key >> 3);
    *type = (unsigned)(key & 7);
    switch (*type) {
    case 0:
        *len = 0;
        return true;
    case 1:
        *len = 8;
        return *len <= c->left;
    case 5:
        *len = 4;
        return *len <= c->left;
    case 2:
        return cur_varint(c, len) && *len <= c->left;
    default:
        return false;
    }
}

/* An arena buffer that grows by doubling. */
typedef struct {
    uint8_t *data;
    size_t len, cap;
} grow_t;

static bool grow_put(ds_drv_t *d, grow_t *g, size_t n, uint8_t **at)
{
    if (g->len + n > g->cap) {
        size_t want = (g->len + n) * 2;
        uint8_t *bigger = ds_arena_alloc(d->ctx->arena, want);
        if (!bigger)
            return false;
        if (g->len)
            memcpy(bigger, g->data, g->len);
        g->data = bigger;
        g->cap = want;
    }
    *at = g->data + g->len;
    g->len += n;
    return true;
}

/*
 * Splits a serialized DriverRequest: *rest gets every field except the
 * command (an arena copy, decoded as the envelope), *cmd a cursor on the
 * command's Any, still packed and not copied. false when malformed, or when
 * the command appears more than once (*twice set).
 */
static bool split_envelope(ds_drv_t *d, cursor_t *in, grow_t *rest, cursor_t *cmd, bool *found, bool *twice)
{
    *found = *twice = false;
    while (in->left > 0) {
        uint32_t number;
        unsigned type;
        uint64_t len;
        if (!cur_field(in, &number, &type, &len))
            return false;
        if (number == 2 && type == 2) {
            if (*found) {
                *twice = true;
                return false;
            }
            *found = true;
            *cmd = *in;
            cmd->left = (size_t)len;
            if (!cur_read(in, NULL, (size_t)len))
                return false;
            continue;
        }
        /* Only the small fields are copied; the command never is. */
        uint8_t head[20], *at;
        size_t n = put_varint(head, ((uint64_t)number << 3) | type);
        uint64_t v = 0;
        if (type == 0 && !cur_varint(in, &v))
            return false;
        if (type == 0)
            n += put_varint(head + n, v);
        else if (type == 2)
            n += put_varint(head + n, len);
        if (!grow_put(d, rest, n + (size_t)len, &at))
            return false;
        memcpy(at, head, n);
        if (!cur_read(in, at + n, (size_t)len))
            return false;
    }
    return true;
}

/* The type URL (arena copy) of a packed Any, and a cursor on its value; false when malformed. */
static bool read_any(ds_drv_t *d, cursor_t any, const char **type_url, cursor_t *value)
{
    *type_url = "";
    *value = any;
    value->left = 0;
    while (any.left > 0) {
        uint32_t number;
        unsigned type;
        uint64_t len;
        if (!cur_field(&any, &number, &type, &len))
            return false;
        if (type == 0) {
            uint64_t v;
            if (!cur_varint(&any, &v))
                return false;
            continue;
        }
        if (number == 1 && type == 2) {
            char *url = ds_arena_alloc(d->ctx->arena, (size_t)len + 1);
            if (!url || !cur_read(&any, (uint8_t *)url, (size_t)len))
                return false;
            url[len] = '\0';
            *type_url = url;
            continue;
        }
        if (number == 2 && type == 2) {
            *value = any;
            value->left = (size_t)len;
        }
        if (!cur_read(&any, NULL, (size_t)len))
            return false;
    }
    return true;
}

/*
 * Steps 1-4 of the order at the top: the envelope (the command stays packed),
 * the command's type, the credentials, and the key checked against the admin
 * key and the project keys. Nothing of the command is decoded, or copied, here.
 */
static ds_status_t prepare(ds_driver_call_t *dc, const ds_driver_piece_t *pieces, size_t n_pieces,
                           const char *authorization)
{
    ds_drv_t *d = &dc->d;
    ds_err_t *err = &d->ctx->err;
    ProtobufCAllocator alloc = arena_allocator(d->ctx->arena);
    const ProtobufCMessageDescriptor *env = &keboola__storage_driver__command__common__driver_request__descriptor;
    size_t len = 0;
    for (size_t i = 0; i < n_pieces; i++)
        len += pieces[i].len;
    cursor_t in = {.pieces = pieces, .left = len}, cmd;
    grow_t rest = {0};
    bool found, twice;
    if (!split_envelope(d, &in, &rest, &cmd, &found, &twice)) {
        if (twice)
            return ds_err_setf(err, DS_INVALID_ARGUMENT, "command", "DriverRequest.command appears more than once");
        return ds_err_set(err, DS_INVALID_ARGUMENT, "malformed DriverRequest (%zu bytes do not decode)", len);
    }
    /* The envelope's own fields (an Any is opaque to the check, so the command would add nothing). */
    TRY(ds_pb_check(env, rest.data, rest.len, NULL, "", err));
    const pb_driver_request_t *req = (const void *)protobuf_c_message_unpack(env, &alloc, rest.len, rest.data);
    if (!req)
        return ds_err_set(err, DS_INVALID_ARGUMENT, "malformed DriverRequest (%zu bytes do not decode)", len);
    if (!found)
        return ds_err_setf(err, DS_INVALID_ARGUMENT, "command", "DriverRequest.command is missing");
    const char *url;
    if (!read_any(d, cmd, &url, &dc->cmd_at))
        return ds_err_set(err, DS_INVALID_ARGUMENT, "malformed DriverRequest (%zu bytes do not decode)", len);
    const char *name = type_name(url);
    if (!*name)
        return ds_err_setf(err, DS_INVALID_ARGUMENT, "command", "DriverRequest.command has no type URL");
    const ds_drv_entry_t *e = find_command(name);
    if (!e)
        return ds_err_set(err, DS_UNSUPPORTED, "unsupported command type \"%.200s\"", name);
    dc->entry = e;
    dc->command = e->command->name;
    TRY(read_credentials(d, req, authorization, &alloc));
    bool admin = false;
    char owner[DS_PROJECT_ID_MAX + 1];
    TRY(ds_cmd_authenticate(d->ctx, &admin, owner));
    /* One project's key is one caller; the admin key counts once per project it acts on. */
    snprintf(dc->caller, sizeof(dc->caller), "%s:%s", admin ? "admin" : "project", admin ? d->project : owner);
    return DS_OK;
}

/* Step 5: the command's bytes made contiguous, bounds-checked, decoded; then its handler. */
/* The command's packed bytes in one piece (in place when they are, else an arena copy). */
static ds_status_t command_bytes(ds_driver_call_t *dc, const uint8_t **cmd, size_t *len)
{
    cursor_t at = dc->cmd_at;
    *len = at.left;
    *cmd = (const uint8_t *)"";
    if (*len > 0) {
        cur_settle(&at);
        if (at.pieces[at.i].len - at.off >= *len) {
            *cmd = at.pieces[at.i].data + at.off; /* in one piece: read in place */
        } else {
            uint8_t *flat = ds_arena_alloc(dc->d.ctx->arena, *len);
            if (!flat || !cur_read(&at, flat, *len))
                return ds_drv_oom(&dc->d);
            *cmd = flat;
        }
    }
    return DS_OK;
}

static ds_status_t run(ds_driver_call_t *dc)
{
    ds_drv_t *d = &dc->d;
    const ds_drv_entry_t *e = dc->entry;
    ds_err_t *err = &d->ctx->err;
    ProtobufCAllocator alloc = arena_allocator(d->ctx->arena);
    const uint8_t *cmd;
    size_t len;
    TRY(command_bytes(dc, &cmd, &len));
    TRY(ds_pb_check(e->command, cmd, len, NULL, "command", err));
    d->cmd = protobuf_c_message_unpack(e->command, &alloc, len, cmd);
    if (!d->cmd)
        return ds_err_setf(err, DS_INVALID_ARGUMENT, "command", "malformed %s (the command does not decode)",
                           e->command->name);
    return e->handler(d);
}

/* The LogMessage.context of an error: StringValue with {"code", "status"[, "field"]}. */
static Google__Protobuf__Any *error_context(ds_drv_t *d, const ds_err_t *err, int kbc)
{
    json_t *j = json_pack("{s:i,s:s}", "code", kbc, "status", ds_status_code(err->status));
    if (!j)
        return NULL;
    if (err->field[0]) {
        json_t *f = json_string(err->field);
        if (f)
            json_object_set_new(j, "field", f);
    }
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!text)
        return NULL;
    Google__Protobuf__StringValue sv = GOOGLE__PROTOBUF__STRING_VALUE__INIT;
    sv.value = ds_arena_strdup(d->ctx->arena, text);
    free(text);
    Google__Protobuf__Any *any = NEW(d, Google__Protobuf__Any, google__protobuf__any__descriptor);
    if (!sv.value || !any)
        return NULL;
    size_t n = protobuf_c_message_get_packed_size(&sv.base);
    uint8_t *buf = ds_arena_alloc(d->ctx->arena, n ? n : 1);
    any->type_url = ds_arena_printf(d->ctx->arena, DS_DRIVER_TYPE_PREFIX "%s", google__protobuf__string_value__descriptor.name);
    if (!buf || !any->type_url)
        return NULL;
    any->value.len = protobuf_c_message_pack(&sv.base, buf);
    any->value.data = buf;
    return any;
}

/* An Any (type.googleapis.com/<desc's full name>) holding value, in the arena. */
static Google__Protobuf__Any *any_of(ds_drv_t *d, const ProtobufCMessageDescriptor *desc, ProtobufCBinaryData value)
{
    Google__Protobuf__Any *any = NEW(d, Google__Protobuf__Any, google__protobuf__any__descriptor);
    if (!any || !(any->type_url = ds_arena_printf(d->ctx->arena, DS_DRIVER_TYPE_PREFIX "%s", desc->name)))
        return NULL;
    any->value = value;
    return any;
}

/* Packs m as an Any in the arena. */
static Google__Protobuf__Any *pack_any(ds_drv_t *d, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = ds_arena_alloc(d->ctx->arena, n ? n : 1);
    if (!buf)
        return NULL;
    ProtobufCBinaryData value = {.len = protobuf_c_message_pack(m, buf), .data = buf};
    return any_of(d, m->descriptor, value);
}

/* Renders the outcome st of dc (ctx->err on failure) as *out: status, message, serialized DriverResponse. */
static void respond(ds_driver_call_t *dc, ds_status_t st, ds_driver_result_t *out)
{
    ds_drv_t *d = &dc->d;
    ds_ctx_t *ctx = d->ctx;
    memset(out, 0, sizeof(*out));
    out->command = dc->command;
    out->status = st;
    pb_driver_response_t resp = KEBOOLA__STORAGE_DRIVER__COMMAND__COMMON__DRIVER_RESPONSE__INIT;
    if (st != DS_OK) {
        if (ctx->err.status == DS_OK)
            ds_err_set(&ctx->err, st, "%s", ds_status_code(st));
        ctx->err.status = st;
        out->keboola_code = ds_err_keboola(&ctx->err);
        snprintf(out->message, sizeof(out->message), "[%d] %s", out->keboola_code, ctx->err.message);
        utf8_sanitize(out->message);
        d->resp = NULL;
        d->resp_desc = NULL;
        if (d->n_log == DS_DRV_MAX_LOG)
            d->n_log--;
        ds_drv_log(d, DS_DRV_LOG_ERROR, "%s", out->message);
        if (d->n_log > 0 && d->log[d->n_log - 1]->level == DS_DRV_LOG_ERROR)
            d->log[d->n_log - 1]->context = error_context(d, &ctx->err, out->keboola_code);
    }
    if (d->resp)
        resp.commandresponse = pack_any(d, d->resp);
    else if (d->resp_desc)
        resp.commandresponse = any_of(d, d->resp_desc, d->resp_packed);
    if ((d->resp || d->resp_desc) && !resp.commandresponse) {
        ds_log(DS_LOG_ERROR, "driver: out of memory packing the response of %s", out->command ? out->command : "?");
        out->status = DS_INTERNAL;
        snprintf(out->message, sizeof(out->message), "[0] out of memory");
        return;
    }
    resp.n_messages = d->n_log;
    resp.messages = d->log;
    size_t n = protobuf_c_message_get_packed_size(&resp.base);
    out->response = ds_arena_alloc(ctx->arena, n ? n : 1);
    if (!out->response) {
        out->status = DS_INTERNAL;
        snprintf(out->message, sizeof(out->message), "[0] out of memory");
        return;
    }
    out->response_len = protobuf_c_message_pack(&resp.base, out->response);
}

ds_status_t ds_driver_prepare_pieces(ds_driver_call_t *dc, ds_ctx_t *ctx, const ds_driver_piece_t *pieces,
                                     size_t n_pieces, const char *authorization)
{
    memset(dc, 0, sizeof(*dc));
    dc->d.ctx = ctx;
    dc->d.project = "";
    ctx->key = NULL; /* only the request's credentials authenticate a driver command */
    ds_err_clear(&ctx->err);
    dc->status = prepare(dc, pieces, n_pieces, authorization);
    return dc->status;
}

ds_status_t ds_driver_prepare(ds_driver_call_t *dc, ds_ctx_t *ctx, const uint8_t *data, size_t len,
                              const char *authorization)
{
    ds_driver_piece_t one = {.data = data ? data : (const uint8_t *)"", .len = len};
    ds_driver_prepare_pieces(dc, ctx, &one, 1, authorization);
    /* The cursor must not point at this frame: keep the piece in dc. */
    dc->one = one;
    dc->cmd_at.pieces = &dc->one;
    return dc->status;
}

/*
 * Idempotent driver commands (docs/driver-protocol.md): a command that
 * changes something, sent with an idempotency key (gRPC metadata or bridge
 * header "idempotency-key", ctx->idempotency_key), goes through the command
 * layer's rules (cmd/idem.c) like a REST write. The request is the command's
 * type and packed bytes plus credentials.host; the kept answer is the whole
 * outcome: "<status> <keboola code> <message>\0" then the DriverResponse.
 */
static bool only_reads(const ds_drv_entry_t *e)
{
    static const ProtobufCMessageDescriptor *const reads[] = {
        CMD(table, preview_table_command), CMD(table, table_export_to_file_command),
        CMD(table, create_profile_table_command), CMD(info, object_info_command), CMD(info, list_schemas_command),
        CMD(execute_query, execute_query_command)};
    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
        if (e->command == reads[i])
            return true;
    return false;
}

static bool replay_outcome(ds_driver_call_t *dc, const ds_idem_answer_t *ans, ds_driver_result_t *out)
{
    const char *nul = memchr(ans->body, '\0', ans->body_len);
    int status = 0, kbc = 0, used = 0;
    if (!nul || sscanf(ans->body, "%d %d %n", &status, &kbc, &used) < 2 || used <= 0 || ans->body + used > nul)
        return false;
    memset(out, 0, sizeof(*out));
    out->command = dc->command;
    out->status = (ds_status_t)status;
    out->keboola_code = kbc;
    snprintf(out->message, sizeof(out->message), "%.*s", (int)(nul - ans->body - used), ans->body + used);
    out->response = (uint8_t *)nul + 1;
    out->response_len = ans->body_len - (size_t)(nul + 1 - ans->body);
    return true;
}

static void keep_outcome(ds_driver_call_t *dc, ds_idem_t **idem, const ds_driver_result_t *out)
{
    ds_ctx_t *ctx = dc->d.ctx;
    ds_arena_t *a = ctx->arena;
    ds_driver_result_t conflict;
    if (ctx->answer_has_secret && out->status == DS_OK) {
        /* A password or key is never stored: a repeat is told so instead (cmd.h), as any error is told. The
         * answer already given stays as it is (its bytes are in the arena). */
        ds_err_t saved = ctx->err;
        dc->d.n_log = 0;
        ds_err_set(&ctx->err, DS_CONFLICT, DS_IDEM_SECRET_MESSAGE);
        respond(dc, DS_CONFLICT, &conflict);
        ctx->err = saved;
        out = &conflict;
    }
    char *head = ds_arena_printf(a, "%d %d %s", (int)out->status, out->keboola_code, out->message);
    size_t hl = head ? strlen(head) + 1 : 0;
    char *body = head ? ds_arena_alloc(a, hl + out->response_len + 1) : NULL;
    if (!body) {
        ds_cmd_idem_end(idem, 503, NULL, NULL, 0);
        return;
    }
    memcpy(body, head, hl);
    if (out->response_len)
        memcpy(body + hl, out->response, out->response_len);
    ds_cmd_idem_end(idem, ds_status_http(out->status), "application/x-protobuf", body, hl + out->response_len);
}

bool ds_driver_may_park(const ds_driver_call_t *dc)
{
    /* Each handler runs one slot-taking command first (a read of the result may follow). */
    static const ProtobufCMessageDescriptor *const parks[] = {
        CMD(table, table_import_from_file_command), CMD(table, table_import_from_table_command),
        CMD(table, delete_table_rows_command),      CMD(table, add_column_command),
        CMD(table, alter_column_command),           CMD(table, drop_column_command),
        CMD(table, add_primary_key_command),        CMD(table, drop_primary_key_command),
        CMD(table, create_table_command),           CMD(table, drop_table_command)};
    if (dc->status != DS_OK || !dc->entry || !dc->entry->handler)
        return false;
    for (size_t i = 0; i < sizeof(parks) / sizeof(parks[0]); i++)
        if (dc->entry->command == parks[i])
            return true;
    return false;
}

void ds_driver_abandon(ds_driver_call_t *dc)
{
    if (dc->idem)
        ds_cmd_idem_end(&dc->idem, 503, NULL, NULL, 0);
}

void ds_driver_run(ds_driver_call_t *dc, ds_driver_result_t *out)
{
    ds_status_t st = dc->status;
    ds_ctx_t *ctx = dc->d.ctx;
    out->parked = false;
    if (st == DS_OK && dc->entry && ctx->idempotency_key && !only_reads(dc->entry) && !dc->idem_begun) {
        const uint8_t *cmd;
        size_t len;
        ds_idem_answer_t ans;
        dc->idem_begun = true;
        const char *target = ds_arena_printf(ctx->arena, "%s@%s", dc->entry->command->name, dc->d.project);
        st = target ? command_bytes(dc, &cmd, &len) : ds_drv_oom(&dc->d);
        if (st == DS_OK)
            st = ds_cmd_idem_begin(ctx, ctx->idempotency_key, "driver", target, cmd, len, &dc->idem, &ans);
        if (st == DS_OK && ans.replay) {
            if (replay_outcome(dc, &ans, out))
                return;
            st = ds_err_set(&ctx->err, DS_INTERNAL, "the kept answer of this idempotency key is damaged");
        }
    }
    /* A parked command runs again from the start: nothing of its first run is kept. */
    dc->d.cmd = NULL;
    dc->d.resp = NULL;
    dc->d.resp_desc = NULL;
    dc->d.n_log = 0;
    if (st == DS_OK && dc->entry)
        st = run(dc);
    else if (st == DS_OK)
        st = ds_err_set(&dc->d.ctx->err, DS_INTERNAL, "ds_driver_run: the call was not prepared");
    if (ctx->park && ctx->park->parked) {
        ds_err_clear(&ctx->err);
        out->parked = true;
        out->command = dc->command;
        return;
    }
    respond(dc, st, out);
    if (dc->idem)
        keep_outcome(dc, &dc->idem, out);
}

void ds_driver_fail(ds_ctx_t *ctx, ds_driver_result_t *out)
{
    ds_driver_call_t dc;
    memset(&dc, 0, sizeof(dc));
    dc.d.ctx = ctx;
    dc.d.project = "";
    respond(&dc, ctx->err.status != DS_OK ? ctx->err.status : DS_INTERNAL, out);
}

void ds_driver_execute(ds_ctx_t *ctx, const uint8_t *data, size_t len, const char *authorization,
                       ds_driver_result_t *out)
{
    ds_driver_call_t dc;
    ds_driver_prepare(&dc, ctx, data, len, authorization);
    ds_driver_run(&dc, out);
}

char *ds_driver_grpc_message(ds_arena_t *a, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = ds_arena_alloc(a, n * 3 + 1);
    if (!out)
        return NULL;
    char *p = out;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c >= 0x20 && *c <= 0x7E && *c != '%') {
            *p++ = (char)*c;
        } else {
            *p++ = '%';
            *p++ = hex[*c >> 4];
            *p++ = hex[*c & 15];
        }
    }
    *p = '\0';
    return out;
}
