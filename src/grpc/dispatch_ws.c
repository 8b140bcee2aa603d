/*
 * dispatch_ws.c - driver handlers of the workspace commands and ExecuteQuery.
 *
 * The protocol names a workspace by its object name ("WORKSPACE_<id>") or its
 * user name ("ws_<project>_<id>"); the project is the credentials' host, as
 * for every command. Each handler maps the command onto one ds_cmd_ws_*
 * function (src/cmd/workspace.h), the same REST uses.
 *
 * ExecuteQuery answers a failing statement in-band, like Keboola's drivers:
 * status Error and DuckDB's message in ExecuteQueryResponse, the call itself
 * succeeding. pathRestriction [<workspace object name>] runs the statement in
 * that workspace; an empty one runs it read-only over the project's storage.
 * Rows come back as maps from column name to text; a NULL has no entry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmd/workspace.h"
#include "grpc/dispatch.h"

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        ds_status_t st_ = (expr);                                                                  \
        if (st_ != DS_OK)                                                                          \
            return st_;                                                                            \
    } while (0)
#define E(d) (&(d)->ctx->err)
#define NEW(d, T, desc) ((T *)ds_drv_new((d), &(desc)))
#define OBJECT_PREFIX "WORKSPACE_"

const char *ds_drv_ws_id(ds_drv_t *d, const char *object_name)
{
    size_t n = strlen(OBJECT_PREFIX);
    if (!object_name || strncasecmp(object_name, OBJECT_PREFIX, n) != 0 || !object_name[n])
        return NULL;
    return ds_arena_strdup(d->ctx->arena, object_name + n);
}

/* The workspace of an object name, or INVALID_ARGUMENT naming field. */
static ds_status_t ws_of_object(ds_drv_t *d, const char *object_name, const char *field, const char **id)
{
    if (!(*id = ds_drv_ws_id(d, object_name)))
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, field, "%s must be a workspace object name (\"%s<id>\")", field,
                           OBJECT_PREFIX);
    return DS_OK;
}

/* The workspace of a user name "ws_<project>_<id>" of project. */
static ds_status_t ws_of_user(ds_drv_t *d, const char *project, const char *user, const char **id)
{
    const char *prefix = ds_arena_printf(d->ctx->arena, "ws_%s_", project);
    size_t n = prefix ? strlen(prefix) : 0;
    if (!prefix)
        return ds_drv_oom(d);
    if (!user || strncasecmp(user, prefix, n) != 0 || !user[n])
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "workspaceUserName",
                           "workspaceUserName must be a workspace user of project \"%s\" (\"%s<id>\")", project,
                           prefix);
    *id = user + n;
    return DS_OK;
}

ds_status_t ds_drv_h_create_workspace(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Workspace__CreateWorkspaceCommand *c = (const void *)d->cmd;
    const char *project;
    TRY(ds_drv_project(d, &project));
    if (ds_drv_str(c->projectid) && strcmp(c->projectid, project) != 0)
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "projectId",
                           "projectId \"%.64s\" differs from the credentials' project \"%.64s\"", c->projectid,
                           project);
    ds_ws_create_t in = {.id = ds_drv_str(c->workspaceid),
                         .branch = ds_drv_str(c->branchid) && !c->isbranchdefault ? c->branchid : NULL};
    if (c->n_directgranttables)
        return ds_err_set(E(d), DS_UNSUPPORTED,
                          "directGrantTables: workspaces read storage through loads and ds_storage_scan, not grants");
    ds_ws_t out;
    TRY(ds_cmd_ws_create(d->ctx, project, &in, &out));
    Keboola__StorageDriver__Command__Workspace__CreateWorkspaceResponse *r =
        NEW(d, Keboola__StorageDriver__Command__Workspace__CreateWorkspaceResponse,
            keboola__storage_driver__command__workspace__create_workspace_response__descriptor);
    if (!r)
        return ds_drv_oom(d);
    r->workspaceusername = ds_arena_strdup(d->ctx->arena, out.rec.user);
    r->workspacerolename = r->workspaceusername;
    r->workspacepassword = (char *)out.password;
    r->workspaceobjectname = ds_arena_strdup(d->ctx->arena, out.rec.object_name);
    d->resp = &r->base;
    return DS_OK;
}

ds_status_t ds_drv_h_drop_workspace(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Workspace__DropWorkspaceCommand *c = (const void *)d->cmd;
    const char *project, *id;
    TRY(ds_drv_project(d, &project));
    TRY(ws_of_object(d, c->workspaceobjectname, "workspaceObjectName", &id));
    return ds_cmd_ws_drop(d->ctx, project, id);
}

ds_status_t ds_drv_h_clear_workspace(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Workspace__ClearWorkspaceCommand *c = (const void *)d->cmd;
    const char *project, *id;
    TRY(ds_drv_project(d, &project));
    TRY(ws_of_object(d, c->workspaceobjectname, "workspaceObjectName", &id));
    ds_status_t st = ds_cmd_ws_clear(d->ctx, project, id, (const char *const *)c->objectstopreserve,
                                     c->n_objectstopreserve);
    if (st != DS_OK && c->ignoreerrors && st != DS_UNAUTHENTICATED && st != DS_PERMISSION_DENIED) {
        ds_drv_log(d, DS_DRV_LOG_WARNING, "ClearWorkspace: %s (ignored)", E(d)->message);
        ds_err_clear(E(d));
        return DS_OK;
    }
    return st;
}

static ds_status_t respond_password(ds_drv_t *d, const ds_ws_t *w, bool user_response)
{
    if (user_response) {
        Keboola__StorageDriver__Command__Workspace__CreateWorkspaceUserResponse *r =
            NEW(d, Keboola__StorageDriver__Command__Workspace__CreateWorkspaceUserResponse,
                keboola__storage_driver__command__workspace__create_workspace_user_response__descriptor);
        if (!r)
            return ds_drv_oom(d);
        r->workspaceusername = ds_arena_strdup(d->ctx->arena, w->rec.user);
        r->workspacepassword = (char *)w->password;
        d->resp = &r->base;
        return DS_OK;
    }
    Keboola__StorageDriver__Command__Workspace__ResetWorkspacePasswordResponse *r =
        NEW(d, Keboola__StorageDriver__Command__Workspace__ResetWorkspacePasswordResponse,
            keboola__storage_driver__command__workspace__reset_workspace_password_response__descriptor);
    if (!r)
        return ds_drv_oom(d);
    r->workspaceusername = ds_arena_strdup(d->ctx->arena, w->rec.user);
    r->workspacepassword = (char *)w->password;
    d->resp = &r->base;
    return DS_OK;
}

ds_status_t ds_drv_h_reset_workspace_password(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Workspace__ResetWorkspacePasswordCommand *c = (const void *)d->cmd;
    const char *project, *id;
    ds_ws_t w;
    TRY(ds_drv_project(d, &project));
    TRY(ws_of_user(d, project, c->workspaceusername, &id));
    TRY(ds_cmd_ws_reset_password(d->ctx, project, id, &w));
    return respond_password(d, &w, false);
}

/* A workspace has one login: creating its user gives that login a new password. */
ds_status_t ds_drv_h_create_workspace_user(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Workspace__CreateWorkspaceUserCommand *c = (const void *)d->cmd;
    const char *project, *id;
    ds_ws_t w;
    TRY(ds_drv_project(d, &project));
    if (ds_drv_str(c->workspaceobjectname))
        TRY(ws_of_object(d, c->workspaceobjectname, "workspaceObjectName", &id));
    else if (!(id = ds_drv_str(c->workspaceid)))
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "workspaceObjectName",
                           "workspaceObjectName or workspaceId is required");
    TRY(ds_cmd_ws_reset_password(d->ctx, project, id, &w));
    return respond_password(d, &w, true);
}

/* Dropping the user disables the login; the workspace and its objects stay. */
ds_status_t ds_drv_h_drop_workspace_user(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Workspace__DropWorkspaceUserCommand *c = (const void *)d->cmd;
    const char *project, *id;
    TRY(ds_drv_project(d, &project));
    TRY(ws_of_user(d, project, c->workspaceusername, &id));
    return ds_cmd_ws_disable_login(d->ctx, project, id);
}

ds_status_t ds_drv_h_drop_workspace_object(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Workspace__DropWorkspaceObjectCommand *c = (const void *)d->cmd;
    const char *project, *id;
    TRY(ds_drv_project(d, &project));
    TRY(ws_of_object(d, c->workspaceobjectname, "workspaceObjectName", &id));
    if (!ds_drv_str(c->objectnametodrop))
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "objectNameToDrop", "objectNameToDrop is required");
    return ds_cmd_ws_drop_object(d->ctx, project, id, c->objectnametodrop, c->ignoreifnotexists);
}

/*
 * Grant/RevokeWorkspaceAccessToProject: the workspace is workspaceObjectName
 * (or workspaceUserName) of the credentials' project; the other project is
 * projectUserName (what CreateProject answers: the project id) or, when that
 * is empty, projectRoleName.
 */
static ds_status_t access_to_project(ds_drv_t *d, const char *object_name, const char *user_name,
                                     const char *project_user, const char *project_role, bool grant)
{
    const char *project, *id;
    TRY(ds_drv_project(d, &project));
    if (ds_drv_str(object_name) || !ds_drv_str(user_name))
        TRY(ws_of_object(d, object_name, "workspaceObjectName", &id));
    else
        TRY(ws_of_user(d, project, user_name, &id));
    const char *target = ds_drv_str(project_user) ? project_user : ds_drv_str(project_role);
    if (!target)
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "projectUserName",
                           "projectUserName (or projectRoleName) must name the project to %s", grant ? "read" : "stop reading");
    return ds_cmd_ws_grant(d->ctx, project, id, target, grant);
}

ds_status_t ds_drv_h_grant_workspace_access(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Workspace__GrantWorkspaceAccessToProjectCommand *c = (const void *)d->cmd;
    return access_to_project(d, c->workspaceobjectname, c->workspaceusername, c->projectusername, c->projectrolename,
                             true);
}

ds_status_t ds_drv_h_revoke_workspace_access(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Workspace__RevokeWorkspaceAccessToProjectCommand *c = (const void *)d->cmd;
    return access_to_project(d, c->workspaceobjectname, c->workspaceusername, c->projectusername, c->projectrolename,
                             false);
}

ds_status_t ds_drv_h_load_table_to_workspace(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Workspace__LoadTableToWorkspaceCommand *c = (const void *)d->cmd;
    const char *project, *id;
    ds_ws_load_t in;
    memset(&in, 0, sizeof(in));
    TRY(ds_drv_project(d, &project));
    if (!c->source || !c->destination)
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, c->source ? "destination" : "source", "%s is required",
                           c->source ? "destination" : "source");
    const Keboola__StorageDriver__Command__Workspace__LoadTableToWorkspaceCommand__SourceTableMapping *s = c->source;
    TRY(ds_drv_table_ref(d, s->n_path, s->path, s->tablename, "source", &in.bucket, &in.table));
    if (c->destination->n_path != 1)
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "destination",
                           "destination.path must be [workspace object name]");
    TRY(ws_of_object(d, c->destination->path[0], "destination.path", &id));
    in.destination = ds_drv_str(c->destination->tablename);
    if (s->limit < 0)
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "source.limit", "source.limit must not be negative");
    in.read.limit = s->limit;
    if (s->n_columnmappings) {
        /* The columns loaded, in this order, each under destinationColumnName when one is given. */
        const char **renames = ds_drv_ptrs(d, s->n_columnmappings);
        in.read.columns = ds_drv_ptrs(d, s->n_columnmappings);
        if (!in.read.columns || !renames)
            return ds_drv_oom(d);
        bool renaming = false;
        for (size_t i = 0; i < s->n_columnmappings; i++) {
            const char *src = ds_drv_str(s->columnmappings[i]->sourcecolumnname);
            if (!src)
                return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "columnMappings",
                                   "columnMappings[%zu].sourceColumnName is required", i);
            in.read.columns[i] = src;
            renames[i] = ds_drv_str(s->columnmappings[i]->destinationcolumnname);
            renaming = renaming || (renames[i] && strcmp(renames[i], src) != 0);
        }
        in.read.n_columns = s->n_columnmappings;
        in.renames = renaming ? renames : NULL;
    }
    TRY(ds_drv_where_filters(d, s->n_wherefilters, s->wherefilters, &in.read.where));
    in.type = DS_WS_LOAD_FULL;
    if (c->importoptions) {
        int t = (int)c->importoptions->importtype;
        if (t < DS_WS_LOAD_FULL || t > DS_WS_LOAD_CLONE)
            return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "importOptions.importType", "unknown importType %d", t);
        in.type = (ds_ws_load_type_t)t; /* FULL, INCREMENTAL, VIEW, CLONE: the same numbers */
        /* UPDATE_DUPLICATES, INSERT_DUPLICATES, FAIL_ON_DUPLICATES: ds_dedup_t's numbers (checked there). */
        in.dedup = (ds_dedup_t)c->importoptions->deduptype;
        in.dedup_columns = (const char *const *)c->importoptions->dedupcolumnsnames;
        in.n_dedup_columns = c->importoptions->n_dedupcolumnsnames;
    }
    int64_t rows;
    TRY(ds_cmd_ws_load(d->ctx, project, id, NULL, &in, &rows));
    ds_drv_log(d, DS_DRV_LOG_INFO, "loaded %lld rows into %s", (long long)rows, in.destination ? in.destination : in.table);
    return DS_OK;
}

typedef Keboola__StorageDriver__Command__ExecuteQuery__ExecuteQueryResponse pb_query_resp_t;
typedef Keboola__StorageDriver__Command__ExecuteQuery__ExecuteQueryResponse__Data pb_query_data_t;
typedef Keboola__StorageDriver__Command__ExecuteQuery__ExecuteQueryResponse__Data__Row pb_query_row_t;
typedef Keboola__StorageDriver__Command__ExecuteQuery__ExecuteQueryResponse__Data__Row__FieldsEntry pb_query_field_t;

static ds_status_t respond_rows(ds_drv_t *d, pb_query_resp_t *r, const ds_sandbox_result_t *res)
{
    pb_query_data_t *data = NEW(d, pb_query_data_t,
                                keboola__storage_driver__command__execute_query__execute_query_response__data__descriptor);
    if (!data || !(data->columns = ds_drv_ptrs(d, res->n_columns)) || !(data->rows = ds_drv_ptrs(d, res->n_rows)))
        return ds_drv_oom(d);
    data->n_columns = res->n_columns;
    for (size_t c = 0; c < res->n_columns; c++)
        data->columns[c] = (char *)res->names[c];
    for (size_t i = 0; i < res->n_rows; i++) {
        pb_query_row_t *row =
            NEW(d, pb_query_row_t, keboola__storage_driver__command__execute_query__execute_query_response__data__row__descriptor);
        if (!row || !(row->fields = ds_drv_ptrs(d, res->n_columns)))
            return ds_drv_oom(d);
        for (size_t c = 0; c < res->n_columns; c++) {
            if (!res->rows[i][c])
                continue;
            pb_query_field_t *f = NEW(
                d, pb_query_field_t,
                keboola__storage_driver__command__execute_query__execute_query_response__data__row__fields_entry__descriptor);
            if (!f)
                return ds_drv_oom(d);
            f->key = (char *)res->names[c];
            f->value = (char *)res->rows[i][c];
            row->fields[row->n_fields++] = f;
        }
        data->rows[data->n_rows++] = row;
    }
    r->data = data;
    return DS_OK;
}

ds_status_t ds_drv_h_execute_query(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__ExecuteQuery__ExecuteQueryCommand *c = (const void *)d->cmd;
    const char *project, *id = NULL;
    TRY(ds_drv_project(d, &project));
    if (c->n_pathrestriction > 1)
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "pathRestriction",
                           "pathRestriction must be [] (the project's storage, read-only) or [workspace object name]");
    if (c->n_pathrestriction == 1)
        TRY(ws_of_object(d, c->pathrestriction[0], "pathRestriction", &id));
    if (c->restriction_case != KEBOOLA__STORAGE_DRIVER__COMMAND__EXECUTE_QUERY__EXECUTE_QUERY_COMMAND__RESTRICTION__NOT_SET)
        return ds_err_set(E(d), DS_UNSUPPORTED, "ExecuteQuery: Snowflake roles and BigQuery service accounts do not "
                                                "apply to duckstore");
    ds_query_t q = {.sql = c->query, .timeout_s = (double)c->timeout};
    ds_sandbox_result_t res;
    ds_status_t st = id ? ds_cmd_ws_query(d->ctx, project, id, NULL, &q, &res, NULL)
                        : ds_cmd_project_query(d->ctx, project, &q, &res, NULL);
    pb_query_resp_t *r =
        NEW(d, pb_query_resp_t, keboola__storage_driver__command__execute_query__execute_query_response__descriptor);
    if (!r)
        return ds_drv_oom(d);
    if (st == DS_QUERY_FAILED) {
        r->status = KEBOOLA__STORAGE_DRIVER__COMMAND__EXECUTE_QUERY__EXECUTE_QUERY_RESPONSE__STATUS__Error;
        r->message = ds_arena_strdup(d->ctx->arena, E(d)->message);
        ds_err_clear(E(d));
        d->resp = &r->base;
        return DS_OK;
    }
    if (st != DS_OK)
        return st;
    TRY(respond_rows(d, r, &res));
    r->status = KEBOOLA__STORAGE_DRIVER__COMMAND__EXECUTE_QUERY__EXECUTE_QUERY_RESPONSE__STATUS__Success;
    r->message = res.truncated ? ds_arena_printf(d->ctx->arena, "the result was cut at %zu rows", res.n_rows) : "";
    d->resp = &r->base;
    return DS_OK;
}
