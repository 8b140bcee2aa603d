/*
 * workspace.c - workspace and query commands. See workspace.h.
 *
 * Each command opens the project (key check, pin), finds the workspace's
 * catalog record, and works on the workspace's sandbox. Lifecycle changes and
 * loads of one workspace are serialized through its write slot
 * ("w/<project>/<workspace>"); queries are not (DuckDB isolates them).
 *
 * Storage reaches a sandbox only through scan_hook below: the sandbox's table
 * function calls it at every bind; it allows the workspace's own project (the
 * grant every workspace has: read-only access to its project's storage) and a
 * project a grant in the catalog names (GrantWorkspaceAccessToProject), read
 * at that very bind, so a revocation holds from the next query on. It opens
 * the engine-side cursor through ds_cmd_scan_open, which validates and
 * resolves columns, filters and limit exactly as table export does.
 */
#include "cmd/workspace.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/files.h"
#include "cmd/internal.h"
#include "core/buf.h"
#include "core/keys.h"
#include "core/log.h"

/* A workspace's database file: '.' separates project and workspace ids (neither may hold one). */
static const char *ws_path(ds_ctx_t *ctx, const char *project, const char *id)
{
    char dir[PATH_MAX];
    const char *data = ds_service_config()->data_dir;
    if (!realpath(data, dir))
        snprintf(dir, sizeof(dir), "%s", data);
    return ds_arena_printf(ctx->arena, "%s/workspaces/ws_%s.%s.duckdb", dir, project, id);
}

static const char *ws_key(ds_ctx_t *ctx, const char *project, const char *id)
{
    return ds_arena_printf(ctx->arena, "%s/%s", project, id);
}

static ds_status_t check_ws_id(ds_ctx_t *ctx, const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > DS_WS_ID_MAX)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "id", "workspace id must be 1 to %d characters",
                           DS_WS_ID_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "id",
                               "workspace id \"%s\" may hold only letters, digits, '_' and '-'", id);
    }
    return DS_OK;
}

static bool is_main(const char *branch)
{
    return !branch || !*branch || strcmp(branch, "default") == 0;
}

/*
 * A workspace of a development branch reads the branch's view of storage: its
 * project is opened in that branch (cmd/branch.c resolves every storage read of
 * the workspace through it). A branch given both in the path and in the body
 * must agree.
 */
static ds_status_t use_branch(ds_ctx_t *ctx, ds_proj_t *p, const char *branch)
{
    if (is_main(branch) || p->branch)
        return DS_OK;
    ctx->branch = branch;
    return ds_cmd_branch_open(ctx, p);
}

static ds_status_t pick_branch(ds_ctx_t *ctx, const char *body, const char **out)
{
    const char *path = ctx->branch;
    if (!is_main(body) && !is_main(path) && strcmp(body, path) != 0)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "branch",
                           "branch \"%s\" in the body differs from branch \"%s\" in the path", body, path);
    *out = !is_main(body) ? body : !is_main(path) ? path : "default";
    return DS_OK;
}

/*
 * Opens the project (by key, or by the workspace's own login) and reads the
 * workspace's record. changes: the operation changes the workspace, so a key
 * that may not write (read scope, another branch's key) is refused before
 * anything about the workspace is looked up. A workspace's own login may change
 * its own workspace.
 */
static ds_status_t open_ws(ds_ctx_t *ctx, const char **project, const char *id, const ds_ws_cred_t *cred, ds_proj_t *p,
                           ds_ws_rec_t *rec, bool changes)
{
    ds_status_t st;
    if ((st = check_ws_id(ctx, id)) != DS_OK)
        return st;
    if (cred && (!ctx->key || !*ctx->key)) {
        if ((st = ds_ident_check_project(*project, &ctx->err)) != DS_OK)
            return st;
        const char *stored = ds_cmd_project_spelling(ctx, *project);
        if (!stored)
            return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
        ds_err_t ignored = {0};
        /* Same answer for an unknown workspace and a wrong password: nothing to probe. */
        if (ds_catalog_ws_get(stored, id, rec, &ignored) != DS_OK || !cred->user || !cred->password ||
            !ds_key_equal(cred->user, rec->user) || !ds_key_matches(cred->password, rec->password_hash))
            return ds_err_set(&ctx->err, DS_UNAUTHENTICATED, "invalid workspace credentials");
        *project = stored;
        if ((st = ds_cmd_open_project_trusted(ctx, project, p)) != DS_OK)
            return st;
        ctx->scope = DS_CALLER_WORKSPACE;
        if (!(ctx->scope_slot = ds_arena_printf(ctx->arena, "w/%s/%s", stored, id)))
            return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
        if ((st = ds_cmd_require_cap(ctx, p, DS_CAP_WORKSPACES, "workspaces")) != DS_OK)
            return st;
        return use_branch(ctx, p, rec->branch);
    }
    if ((st = ds_cmd_open_project(ctx, project, p)) != DS_OK)
        return st;
    if (changes && (st = ds_cmd_require_write(ctx)) != DS_OK)
        return st;
    if ((st = ds_cmd_require_cap(ctx, p, DS_CAP_WORKSPACES, "workspaces")) != DS_OK)
        return st;
    if ((st = ds_catalog_ws_get(*project, id, rec, &ctx->err)) != DS_OK)
        return st;
    return use_branch(ctx, p, rec->branch);
}

static void new_password(char out[DS_KEY_MAX], char hash[DS_KEY_HASH_HEX])
{
    ds_key_generate("", out, DS_KEY_MAX);
    ds_key_hash(out, hash);
}

ds_status_t ds_cmd_ws_create(ds_ctx_t *ctx, const char *project, const ds_ws_create_t *in, ds_ws_t *out)
{
    ds_proj_t p;
    memset(out, 0, sizeof(*out));
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st == DS_OK)
        st = ds_cmd_require_cap(ctx, &p, DS_CAP_WORKSPACES, "workspaces");
    const char *branch = "default";
    if (st == DS_OK)
        st = pick_branch(ctx, in->branch, &branch);
    if (st == DS_OK)
        st = use_branch(ctx, &p, branch);
    if (st != DS_OK)
        return st;
    ds_ws_rec_t *r = &out->rec;
    if (in->id) {
        if ((st = check_ws_id(ctx, in->id)) != DS_OK)
            return st;
        snprintf(r->id, sizeof(r->id), "%s", in->id);
    } else {
        snprintf(r->id, sizeof(r->id), "ws%08x%08x", (unsigned)randombytes_random(), (unsigned)randombytes_random());
    }
    if ((st = ds_cmd_enter(ctx, ds_arena_printf(ctx->arena, "w/%s/%s", project, r->id))) != DS_OK)
        return st;
    snprintf(r->project, sizeof(r->project), "%s", project);
    snprintf(r->branch, sizeof(r->branch), "%s", p.branch ? p.branch : "default");
    snprintf(r->user, sizeof(r->user), "ws_%s_%s", project, r->id);
    snprintf(r->object_name, sizeof(r->object_name), "WORKSPACE_%s", r->id);
    r->created_at = ds_now();
    char password[DS_KEY_MAX];
    new_password(password, r->password_hash);
    ds_ws_rec_t existing;
    ds_err_t ignored = {0};
    if (ds_catalog_ws_get(project, r->id, &existing, &ignored) == DS_OK)
        return ds_err_set(&ctx->err, DS_ALREADY_EXISTS, "workspace \"%s\" already exists in project \"%s\"", r->id,
                          project);
    /* The sandbox file first: a catalog row never names a workspace that cannot open. */
    ds_sandbox_t *sb = NULL;
    const char *path = ws_path(ctx, project, r->id), *key = ws_key(ctx, project, r->id);
    if ((st = ds_sandbox_acquire(key, path, &sb, &ctx->err)) != DS_OK)
        return st;
    ds_sandbox_release(&sb);
    if ((st = ds_catalog_ws_insert(r, &ctx->err)) != DS_OK) {
        ds_err_t e = {0};
        ds_sandbox_remove(key, path, &e);
        return st;
    }
    out->password = ds_arena_strdup(ctx->arena, password);
    ctx->answer_has_secret = true;
    sodium_memzero(password, sizeof(password));
    return DS_OK;
}

ds_status_t ds_cmd_ws_list(ds_ctx_t *ctx, const char *project, ds_ws_rec_t **items, size_t *n)
{
    ds_proj_t p;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st != DS_OK)
        return st;
    return ds_catalog_ws_list(ctx->arena, project, items, n, &ctx->err);
}

ds_status_t ds_cmd_ws_get(ds_ctx_t *ctx, const char *project, const char *id, ds_ws_t *out)
{
    ds_proj_t p;
    memset(out, 0, sizeof(*out));
    return open_ws(ctx, &project, id, NULL, &p, &out->rec, false);
}

ds_status_t ds_cmd_ws_drop(ds_ctx_t *ctx, const char *project, const char *id)
{
    ds_proj_t p;
    ds_ws_rec_t rec;
    ds_status_t st = open_ws(ctx, &project, id, NULL, &p, &rec, true);
    if (st == DS_OK)
        st = ds_cmd_enter(ctx, ds_arena_printf(ctx->arena, "w/%s/%s", project, rec.id));
    if (st != DS_OK)
        return st;
    /* The row first: a crash in between leaves a file no row names, never a row without its file. */
    if ((st = ds_catalog_ws_delete(project, rec.id, &ctx->err)) != DS_OK)
        return st;
    return ds_sandbox_remove(ws_key(ctx, project, rec.id), ws_path(ctx, project, rec.id), &ctx->err);
}

void ds_cmd_ws_drop_all(ds_ctx_t *ctx, const char *project, const char *branch)
{
    ds_ws_rec_t *items = NULL;
    size_t n = 0;
    ds_err_t e = {0};
    if (ds_catalog_ws_list(ctx->arena, project, &items, &n, &e) != DS_OK) {
        ds_log(DS_LOG_WARN, "project %s: cannot list its workspaces for removal: %s", project, e.message);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (branch && strcmp(items[i].branch, branch) != 0)
            continue;
        ds_err_clear(&e);
        if (ds_catalog_ws_delete(project, items[i].id, &e) != DS_OK ||
            ds_sandbox_remove(ws_key(ctx, project, items[i].id), ws_path(ctx, project, items[i].id), &e) != DS_OK)
            ds_log(DS_LOG_WARN, "project %s: workspace %s not removed: %s", project, items[i].id, e.message);
    }
    /* The whole project goes: grants other projects' workspaces hold on it go too. */
    ds_err_clear(&e);
    if (!branch && ds_catalog_ws_grant_forget(project, &e) != DS_OK)
        ds_log(DS_LOG_WARN, "project %s: grants of workspaces on it not removed: %s", project, e.message);
}

/* ---- access to other projects ---- */

/* Checks target (a project id other than project) and sets *stored to its stored spelling. */
static ds_status_t grant_target(ds_ctx_t *ctx, const char *project, const char *target, const char **stored)
{
    ds_status_t st = ds_ident_check_project(target, &ctx->err);
    if (st != DS_OK) {
        char msg[sizeof(ctx->err.message)];
        snprintf(msg, sizeof(msg), "%s", ctx->err.message);
        return ds_err_setf(&ctx->err, st, "project", "project: %s", msg);
    }
    if (!(*stored = ds_cmd_project_spelling(ctx, target)))
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    if (strcasecmp(*stored, project) == 0)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "project",
                           "a workspace always reads its own project's storage: a grant names another project");
    return DS_OK;
}

/*
 * Opens project target for a read of the request (trusted: the caller checked
 * the key or the grant), on its main branch, leaving ctx's own project and
 * branch as they were.
 */
static ds_status_t open_other(ds_ctx_t *ctx, const char *target, bool trusted, ds_proj_t *out)
{
    const char *saved_project = ctx->project_id, *saved_branch = ctx->branch;
    ctx->branch = NULL;
    ds_status_t st = trusted ? ds_cmd_open_project_trusted(ctx, &target, out) : ds_cmd_open_project(ctx, &target, out);
    ctx->project_id = saved_project;
    ctx->branch = saved_branch;
    return st;
}

ds_status_t ds_cmd_ws_grant(ds_ctx_t *ctx, const char *project, const char *id, const char *target, bool grant)
{
    ds_proj_t p, tp;
    ds_ws_rec_t rec;
    const char *stored = NULL;
    ds_status_t st = open_ws(ctx, &project, id, NULL, &p, &rec, true);
    if (st == DS_OK)
        st = grant_target(ctx, project, target, &stored);
    /* Granting needs a key that may open the other project too; revoking only takes rights away. */
    if (st == DS_OK && grant)
        st = open_other(ctx, stored, false, &tp);
    if (st == DS_OK)
        st = ds_cmd_enter(ctx, ds_arena_printf(ctx->arena, "w/%s/%s", project, rec.id));
    if (st != DS_OK)
        return st;
    if (grant)
        st = ds_catalog_ws_grant_add(project, rec.id, stored, &ctx->err);
    else
        st = ds_catalog_ws_grant_remove(project, rec.id, stored, &ctx->err);
    if (st == DS_OK)
        ds_log(DS_LOG_INFO, "project %s workspace %s: read access to project %s %s", project, rec.id, stored,
               grant ? "granted" : "revoked");
    return st;
}

ds_status_t ds_cmd_ws_grants(ds_ctx_t *ctx, const char *project, const char *id, char ***targets, size_t *n)
{
    ds_proj_t p;
    ds_ws_rec_t rec;
    *targets = NULL;
    *n = 0;
    ds_status_t st = open_ws(ctx, &project, id, NULL, &p, &rec, false);
    if (st != DS_OK)
        return st;
    return ds_catalog_ws_grant_list(ctx->arena, project, rec.id, targets, n, &ctx->err);
}

/* Runs service-built SQL in the workspace's sandbox (scan: the load's scan hook, or NULL). */
static ds_status_t ws_exec(ds_ctx_t *ctx, const char *project, const ds_ws_rec_t *rec, const char *sql,
                           ds_sandbox_scan_fn scan, void *ud, ds_sandbox_result_t *res)
{
    ds_sandbox_t *sb = NULL;
    ds_sandbox_result_t ignored;
    ds_status_t st = ds_sandbox_acquire(ws_key(ctx, project, rec->id), ws_path(ctx, project, rec->id), &sb, &ctx->err);
    if (st != DS_OK)
        return st;
    ds_sandbox_query_t q = {.sql = sql, .mode = DS_SANDBOX_SERVICE, .scan = scan, .scan_ud = ud, .cancel = ctx->cancel};
    st = ds_sandbox_query(sb, ctx->arena, &q, res ? res : &ignored, &ctx->err);
    ds_sandbox_release(&sb);
    return st;
}

/* The workspace's objects (tables and views of its main schema) and whether each is a view. */
static ds_status_t ws_objects(ds_ctx_t *ctx, const char *project, const ds_ws_rec_t *rec, ds_sandbox_result_t *res)
{
    return ws_exec(ctx, project, rec,
                   "SELECT table_name, table_type FROM system.information_schema.tables WHERE table_catalog = "
                   "system.main.current_database() AND table_schema = 'main' ORDER BY table_name",
                   NULL, NULL, res);
}

static void drop_sql(ds_buf_t *b, const char *name, bool view)
{
    ds_buf_puts(b, view ? "DROP VIEW IF EXISTS " : "DROP TABLE IF EXISTS ");
    ds_buf_ident(b, name);
    ds_buf_puts(b, ";\n");
}

static bool preserved(const char *name, const char *const *preserve, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (preserve[i] && strcasecmp(preserve[i], name) == 0)
            return true;
    return false;
}

ds_status_t ds_cmd_ws_clear(ds_ctx_t *ctx, const char *project, const char *id, const char *const *preserve,
                            size_t n_preserve)
{
    ds_proj_t p;
    ds_ws_rec_t rec;
    ds_sandbox_result_t objs;
    ds_status_t st = open_ws(ctx, &project, id, NULL, &p, &rec, true);
    if (st == DS_OK)
        st = ds_cmd_enter(ctx, ds_arena_printf(ctx->arena, "w/%s/%s", project, rec.id));
    if (st == DS_OK)
        st = ws_objects(ctx, project, &rec, &objs);
    if (st != DS_OK || objs.n_rows == 0)
        return st;
    ds_buf_t b = {0};
    ds_buf_puts(&b, "BEGIN;\n");
    /* Views first: a view may read a table dropped after it. */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < objs.n_rows; i++) {
            bool view = objs.rows[i][1] && strcmp(objs.rows[i][1], "VIEW") == 0;
            if (view == (pass == 0) && !preserved(objs.rows[i][0], preserve, n_preserve))
                drop_sql(&b, objs.rows[i][0], view);
        }
    ds_buf_puts(&b, "COMMIT;");
    const char *sql = ds_buf_cstr(&b);
    st = sql ? ws_exec(ctx, project, &rec, sql, NULL, NULL, NULL) : ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    ds_buf_free(&b);
    return st;
}

/* The stored spelling of object name in the workspace, and whether it is a view; DS_NOT_FOUND when absent. */
static ds_status_t find_object(ds_ctx_t *ctx, const char *project, const ds_ws_rec_t *rec, const char *name,
                               const char **stored, bool *view)
{
    ds_sandbox_result_t objs;
    ds_status_t st = ws_objects(ctx, project, rec, &objs);
    if (st != DS_OK)
        return st;
    for (size_t i = 0; i < objs.n_rows; i++)
        if (objs.rows[i][0] && strcasecmp(objs.rows[i][0], name) == 0) {
            *stored = objs.rows[i][0];
            *view = objs.rows[i][1] && strcmp(objs.rows[i][1], "VIEW") == 0;
            return DS_OK;
        }
    return ds_err_setk(&ctx->err, DS_NOT_FOUND, DS_KBC_TABLE_NOT_FOUND, "object \"%s\" not found in workspace \"%s\"",
                       name, rec->id);
}

ds_status_t ds_cmd_ws_drop_object(ds_ctx_t *ctx, const char *project, const char *id, const char *name,
                                  bool if_exists)
{
    ds_proj_t p;
    ds_ws_rec_t rec;
    const char *stored;
    bool view;
    ds_status_t st = open_ws(ctx, &project, id, NULL, &p, &rec, true);
    if (st == DS_OK)
        st = ds_ident_check_name(name, "object", &ctx->err);
    if (st == DS_OK)
        st = ds_cmd_enter(ctx, ds_arena_printf(ctx->arena, "w/%s/%s", project, rec.id));
    if (st == DS_OK)
        st = find_object(ctx, project, &rec, name, &stored, &view);
    if (st == DS_NOT_FOUND && if_exists) {
        ds_err_clear(&ctx->err);
        return DS_OK;
    }
    if (st != DS_OK)
        return st;
    ds_buf_t b = {0};
    drop_sql(&b, stored, view);
    const char *sql = ds_buf_cstr(&b);
    st = sql ? ws_exec(ctx, project, &rec, sql, NULL, NULL, NULL) : ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    ds_buf_free(&b);
    return st;
}

ds_status_t ds_cmd_ws_reset_password(ds_ctx_t *ctx, const char *project, const char *id, ds_ws_t *out)
{
    ds_proj_t p;
    memset(out, 0, sizeof(*out));
    ds_status_t st = open_ws(ctx, &project, id, NULL, &p, &out->rec, true);
    if (st == DS_OK)
        st = ds_cmd_enter(ctx, ds_arena_printf(ctx->arena, "w/%s/%s", project, out->rec.id));
    if (st != DS_OK)
        return st;
    char password[DS_KEY_MAX];
    new_password(password, out->rec.password_hash);
    st = ds_catalog_ws_set_password(project, out->rec.id, out->rec.password_hash, &ctx->err);
    if (st == DS_OK) {
        out->password = ds_arena_strdup(ctx->arena, password);
        ctx->answer_has_secret = true;
    }
    sodium_memzero(password, sizeof(password));
    return st;
}

ds_status_t ds_cmd_ws_disable_login(ds_ctx_t *ctx, const char *project, const char *id)
{
    ds_proj_t p;
    ds_ws_rec_t rec;
    ds_status_t st = open_ws(ctx, &project, id, NULL, &p, &rec, true);
    if (st == DS_OK)
        st = ds_cmd_enter(ctx, ds_arena_printf(ctx->arena, "w/%s/%s", project, rec.id));
    if (st != DS_OK)
        return st;
    char password[DS_KEY_MAX];
    new_password(password, rec.password_hash);
    sodium_memzero(password, sizeof(password));
    return ds_catalog_ws_set_password(project, rec.id, rec.password_hash, &ctx->err);
}

/* ---- storage access from a sandbox ---- */

typedef struct {
    ds_ctx_t *ctx;
    ds_proj_t *p;
    const ds_export_t *spec; /* a load's read options (spec := 1), or NULL */
    const ds_ws_rec_t *ws;   /* the workspace whose grants apply, or NULL (a project query: its own storage only) */
} scan_ud_t;

/*
 * The project a scan reads: its own (project NULL or the request's), or one
 * the workspace holds a grant on, checked in the catalog now. The same answer
 * for a project that does not exist and one without a grant.
 */
static ds_status_t scan_project(scan_ud_t *u, const char *project, ds_proj_t **out, ds_err_t *err)
{
    ds_ctx_t *ctx = u->ctx;
    *out = u->p;
    if (!project || !*project || strcasecmp(project, u->p->rec.id) == 0)
        return DS_OK;
    if (!u->ws)
        return ds_err_set(err, DS_PERMISSION_DENIED,
                          "ds_storage_scan: project \"%.64s\": this query reads its own project's storage only",
                          project);
    bool granted = false;
    const char *stored = ds_ident_check_project(project, err) == DS_OK ? ds_cmd_project_spelling(ctx, project) : NULL;
    ds_err_clear(err);
    if (stored && ds_catalog_ws_grant_has(u->ws->project, u->ws->id, stored, &granted, err) != DS_OK)
        return err->status;
    if (!granted)
        return ds_err_set(err, DS_PERMISSION_DENIED,
                          "ds_storage_scan: workspace \"%s\" has no grant to read project \"%.64s\"", u->ws->id,
                          project);
    ds_proj_t *tp = ds_arena_alloc(ctx->arena, sizeof(*tp));
    if (!tp)
        return ds_err_set(err, DS_UNAVAILABLE, "out of memory");
    ds_err_t saved = ctx->err;
    ds_err_clear(&ctx->err);
    ds_status_t st = open_other(ctx, stored, true, tp);
    if (st != DS_OK)
        *err = ctx->err;
    ctx->err = saved;
    *out = tp;
    return st;
}

static ds_status_t scan_hook(void *ud, const char *project, const char *bucket, const char *table,
                             const char *const *columns, size_t n_columns, int64_t spec, ds_be_scan_t **out,
                             ds_err_t *err)
{
    scan_ud_t *u = ud;
    ds_export_t x = {0};
    ds_proj_t *p;
    ds_status_t st = scan_project(u, project, &p, err);
    if (st == DS_OK && u->ws && p == u->p && bucket)
        st = ds_cmd_share_readonly_check(u->ctx, p->rec.id, bucket, err);
    if (st != DS_OK)
        return st;
    if (p != u->p && spec != 0)
        return ds_err_set(err, DS_INVALID_ARGUMENT, "ds_storage_scan: spec := names a load of the workspace's own "
                                                    "project");
    if (spec != 0) {
        if (spec != 1 || !u->spec)
            return ds_err_set(err, DS_INVALID_ARGUMENT, "ds_storage_scan: spec := %lld names no load of this request",
                              (long long)spec);
        x = *u->spec;
    } else {
        x.columns = ds_arena_alloc(u->ctx->arena, sizeof(char *) * (n_columns ? n_columns : 1));
        if (!x.columns)
            return ds_err_set(err, DS_UNAVAILABLE, "out of memory");
        for (size_t i = 0; i < n_columns; i++)
            if (!(x.columns[i] = ds_arena_strdup(u->ctx->arena, columns[i])))
                return ds_err_set(err, DS_UNAVAILABLE, "out of memory");
        x.n_columns = n_columns;
    }
    ds_err_t saved = u->ctx->err;
    ds_err_clear(&u->ctx->err);
    st = ds_cmd_scan_open(u->ctx, p, bucket, table, &x, out);
    if (st != DS_OK)
        *err = u->ctx->err;
    u->ctx->err = saved;
    return st;
}

static const char *load_type_name(ds_ws_load_type_t t)
{
    return t == DS_WS_LOAD_INCREMENTAL ? "incremental" : t == DS_WS_LOAD_VIEW ? "view" : t == DS_WS_LOAD_CLONE ? "clone" : "full";
}

static void scan_call(ds_buf_t *b, const char *bucket, const char *table, const char *const *columns, size_t n,
                      bool spec)
{
    /* With its catalog: a user's macro of that name in the workspace must not stand in for storage. */
    ds_buf_puts(b, "system.main.ds_storage_scan(");
    ds_buf_literal(b, bucket);
    ds_buf_puts(b, ", ");
    ds_buf_literal(b, table);
    if (spec)
        ds_buf_puts(b, ", spec := 1");
    if (n) {
        ds_buf_puts(b, ", columns := [");
        for (size_t i = 0; i < n; i++) {
            if (i)
                ds_buf_puts(b, ", ");
            ds_buf_literal(b, columns[i]);
        }
        ds_buf_puts(b, "]");
    }
    ds_buf_puts(b, ")");
}

/* The destination name of loaded column i. */
static const char *dest_column(const ds_ws_load_t *in, size_t i)
{
    return in->renames && in->renames[i] && *in->renames[i] ? in->renames[i] : in->read.columns[i];
}

/*
 * Renamed columns (columnMappings): every destination name a valid column
 * name, no two alike (case-insensitively, as DuckDB compares them).
 */
static ds_status_t check_renames(ds_ctx_t *ctx, const ds_ws_load_t *in)
{
    if (!in->renames)
        return DS_OK;
    for (size_t i = 0; i < in->read.n_columns; i++) {
        const char *d = dest_column(in, i);
        ds_status_t st = ds_ident_check_name(d, "columnMappings.destinationColumnName", &ctx->err);
        if (st != DS_OK)
            return st;
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(d, dest_column(in, j)) == 0)
                return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "columnMappings",
                                   "columnMappings: destination column \"%s\" is named twice", d);
    }
    return DS_OK;
}

/* What a load selects: every column as it is, or each column under its destination name. */
static void select_list(ds_buf_t *b, const ds_ws_load_t *in)
{
    if (!in->renames) {
        ds_buf_puts(b, "*");
        return;
    }
    for (size_t i = 0; i < in->read.n_columns; i++) {
        ds_buf_puts(b, i ? ", " : "");
        ds_buf_ident(b, in->read.columns[i]);
        ds_buf_puts(b, " AS ");
        ds_buf_ident(b, dest_column(in, i));
    }
}

/* The destination name of source column name (a primary key column). */
static const char *renamed(const ds_ws_load_t *in, const char *name)
{
    for (size_t i = 0; in->renames && i < in->read.n_columns; i++)
        if (strcasecmp(in->read.columns[i], name) == 0)
            return dest_column(in, i);
    return name;
}

/*
 * The key a load dedups on (ds_ws_load_t): dedup_columns (each a loaded column of the table, in its stored
 * spelling), or the source's primary key when every key column is loaded; *n 0: none.
 */
static ds_status_t load_key(ds_ctx_t *ctx, const ds_proj_t *p, const ds_ws_load_t *in, const char ***key, size_t *n)
{
    ds_be_table_t def;
    const char *rb = in->bucket, *rt = in->table;
    ds_proj_t tp = *p; /* the source's, if the table is linked; p stays the workspace's project */
    *key = NULL;
    *n = 0;
    ds_status_t st = ds_cmd_resolve_read(ctx, &tp, &rb, &rt, &def, NULL, NULL);
    if (st != DS_OK)
        return st;
    const char *const *want = in->n_dedup_columns ? in->dedup_columns : def.primary_key;
    size_t n_want = in->n_dedup_columns ? in->n_dedup_columns : def.n_primary_key;
    const char **out = n_want ? ds_arena_alloc(ctx->arena, n_want * sizeof(*out)) : NULL;
    if (n_want && !out)
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    for (size_t k = 0; k < n_want; k++) {
        const char *found = NULL;
        for (size_t c = 0; c < def.n_columns && !found; c++)
            if (strcasecmp(def.columns[c].name, want[k]) == 0)
                found = def.columns[c].name;
        bool loaded = !in->read.n_columns;
        for (size_t c = 0; c < in->read.n_columns && !loaded; c++)
            loaded = strcasecmp(in->read.columns[c], want[k]) == 0;
        if (!in->n_dedup_columns && !loaded)
            return DS_OK; /* a primary key column left out: no key (rows are appended) */
        if (!found || !loaded)
            return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "dedup_columns",
                               "dedup_columns: \"%s\" is not %s of %s.%s", want[k],
                               found ? "one of the loaded columns" : "a column", in->bucket, in->table);
        out[k] = found;
    }
    *key = out;
    *n = n_want;
    return DS_OK;
}

/* key[0..n) as a column list, each prefixed by alias (may be NULL) and cast by cast (may be NULL). */
static void key_list(ds_buf_t *b, const char *alias, const char *const *key, size_t n, const char *cast)
{
    for (size_t k = 0; k < n; k++) {
        ds_buf_puts(b, k ? ", " : "");
        if (alias) {
            ds_buf_ident(b, alias);
            ds_buf_puts(b, ".");
        }
        ds_buf_ident(b, key[k]);
        if (cast)
            ds_buf_puts(b, cast);
    }
}

/* The destination's key columns ("__dst", under their loaded names) equal to the input's ("__src"). */
static void key_match(ds_buf_t *b, const ds_ws_load_t *in, const char *const *key, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        ds_buf_puts(b, k ? " AND \"__dst\"." : "\"__dst\".");
        ds_buf_ident(b, renamed(in, key[k]));
        ds_buf_puts(b, " IS NOT DISTINCT FROM \"__src\".");
        ds_buf_ident(b, key[k]);
    }
}

/* The rows a load writes: the input, one row per key when dedup_columns collapse it (update_duplicates). */
static void load_select(ds_buf_t *b, const ds_ws_load_t *in, const char *const *key, size_t n_key)
{
    ds_buf_puts(b, "SELECT ");
    if (n_key && in->n_dedup_columns && in->dedup == DS_DEDUP_UPDATE) {
        ds_buf_puts(b, "DISTINCT ON (");
        key_list(b, NULL, key, n_key, NULL);
        ds_buf_puts(b, ") ");
    }
    select_list(b, in);
    ds_buf_puts(b, " FROM ");
    scan_call(b, in->bucket, in->table, NULL, 0, true);
}

/*
 * fail_on_duplicates: statements that fail the load's transaction (DuckDB's error(), named with its catalog
 * so no macro of the workspace stands in) when the input holds a key twice or, when dest (the existing table
 * of an incremental load) is given, a key dest holds already. The message names the key.
 */
static void fail_on_duplicates(ds_buf_t *b, const ds_ws_load_t *in, const char *const *key, size_t n,
                               const char *dest)
{
    ds_buf_puts(b, "SELECT system.main.error('fail_on_duplicates: the input holds the key (' || concat_ws(', ', ");
    key_list(b, NULL, key, n, "::VARCHAR");
    ds_buf_puts(b, ") || ') more than once; nothing was loaded') FROM (SELECT ");
    key_list(b, NULL, key, n, NULL);
    ds_buf_puts(b, " FROM ");
    scan_call(b, in->bucket, in->table, NULL, 0, true);
    ds_buf_puts(b, " GROUP BY ALL HAVING count(*) > 1 LIMIT 1);\n");
    if (!dest)
        return;
    ds_buf_puts(b, "SELECT system.main.error('fail_on_duplicates: the key (' || concat_ws(', ', ");
    key_list(b, "__src", key, n, "::VARCHAR");
    ds_buf_puts(b, ") || ') is in the destination already; nothing was loaded') FROM ");
    ds_buf_ident(b, dest);
    ds_buf_puts(b, " AS \"__dst\" JOIN (SELECT DISTINCT ");
    key_list(b, NULL, key, n, NULL);
    ds_buf_puts(b, " FROM ");
    scan_call(b, in->bucket, in->table, NULL, 0, true);
    ds_buf_puts(b, ") AS \"__src\" ON ");
    key_match(b, in, key, n);
    ds_buf_puts(b, " LIMIT 1;\n");
}

ds_status_t ds_cmd_ws_load(ds_ctx_t *ctx, const char *project, const char *id, const ds_ws_cred_t *cred,
                           const ds_ws_load_t *in, int64_t *rows)
{
    ds_proj_t p;
    ds_ws_rec_t rec;
    ds_ws_load_t norm = *in;
    *rows = 0;
    ds_status_t st = open_ws(ctx, &project, id, cred, &p, &rec, true);
    if (st != DS_OK)
        return st;
    /* seconds becomes one changed_since for the probe and every scan of the load alike. */
    if ((st = ds_cmd_source_window(ctx, in->seconds, in->read.limit, &norm.read.where)) != DS_OK)
        return st;
    in = &norm;
    if ((int)in->type < DS_WS_LOAD_FULL || (int)in->type > DS_WS_LOAD_CLONE)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "type", "type must be full, incremental, view or clone");
    const char *dest = in->destination && *in->destination ? in->destination : in->table;
    if ((st = ds_ident_check_bucket(in->bucket, "source.bucket", &ctx->err)) != DS_OK ||
        (st = ds_ident_check_name(in->table, "source.table", &ctx->err)) != DS_OK ||
        (st = ds_ident_check_name(dest, "destination", &ctx->err)) != DS_OK ||
        (st = check_renames(ctx, in)) != DS_OK)
        return st;
    if ((st = ds_cmd_check_dedup(ctx, in->dedup, in->dedup_columns, in->n_dedup_columns)) != DS_OK)
        return st;
    if (in->type == DS_WS_LOAD_VIEW && (in->dedup != DS_DEDUP_UPDATE || in->n_dedup_columns))
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "dedup",
                           "a view load reads the table as it is: dedup and dedup_columns need type full, "
                           "incremental or clone");
    const ds_where_t *w = &in->read.where;
    bool filtered = w->n_filters || w->changed_since || w->changed_until || in->read.limit || in->read.n_order;
    if (in->type == DS_WS_LOAD_VIEW && filtered)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "type",
                           "a view load reads the whole current table: where_filters, changed_since, changed_until, "
                           "seconds and limit need type full or incremental");
    /* The project's read-only role decides which buckets its workspaces read (cmd/share.c). */
    if ((st = ds_cmd_share_readonly_check(ctx, project, in->bucket, &ctx->err)) != DS_OK)
        return st;
    /* Checked (and resolved) here, before anything in the workspace changes. */
    const char *bucket = in->bucket, *table = in->table;
    ds_be_scan_t *probe = NULL;
    if ((st = ds_cmd_scan_open(ctx, &p, bucket, table, &in->read, &probe)) != DS_OK)
        return st;
    probe->close(probe);
    if ((st = ds_cmd_enter(ctx, ds_arena_printf(ctx->arena, "w/%s/%s", project, rec.id))) != DS_OK)
        return st;
    const char *stored = NULL;
    bool view = false, exists;
    ds_err_t saved = ctx->err;
    exists = find_object(ctx, project, &rec, dest, &stored, &view) == DS_OK;
    if (!exists) {
        if (ctx->err.status != DS_NOT_FOUND)
            return ctx->err.status;
        ctx->err = saved;
    }
    ds_buf_t b = {0};
    scan_ud_t ud = {.ctx = ctx, .p = &p, .spec = &in->read};
    const char **key = NULL;
    size_t n_key = 0;
    if (in->type != DS_WS_LOAD_VIEW && (st = load_key(ctx, &p, in, &key, &n_key)) != DS_OK)
        return st;
    bool incremental = in->type == DS_WS_LOAD_INCREMENTAL && exists && !view;
    ds_buf_puts(&b, "BEGIN;\n");
    if (n_key && in->dedup == DS_DEDUP_FAIL)
        fail_on_duplicates(&b, in, key, n_key, incremental ? stored : NULL);
    if (incremental) {
        if (n_key && in->dedup == DS_DEDUP_UPDATE) {
            /* Keboola's incremental load: rows whose key the input holds are replaced. */
            ds_buf_puts(&b, "DELETE FROM ");
            ds_buf_ident(&b, stored);
            ds_buf_puts(&b, " AS \"__dst\" USING (SELECT DISTINCT ");
            key_list(&b, NULL, key, n_key, NULL);
            ds_buf_puts(&b, " FROM ");
            scan_call(&b, bucket, table, NULL, 0, true);
            ds_buf_puts(&b, ") AS \"__src\" WHERE ");
            key_match(&b, in, key, n_key);
            ds_buf_puts(&b, ";\n");
        }
        ds_buf_puts(&b, "INSERT INTO ");
        ds_buf_ident(&b, stored);
        ds_buf_puts(&b, " BY NAME ");
        load_select(&b, in, key, n_key);
    } else {
        if (exists)
            drop_sql(&b, stored, view);
        if (in->type == DS_WS_LOAD_VIEW) {
            ds_buf_puts(&b, "CREATE VIEW ");
            ds_buf_ident(&b, dest);
            ds_buf_puts(&b, " AS SELECT ");
            select_list(&b, in);
            ds_buf_puts(&b, " FROM ");
            scan_call(&b, bucket, table, in->read.columns, in->read.n_columns, false);
        } else {
            ds_buf_puts(&b, "CREATE TABLE ");
            ds_buf_ident(&b, dest);
            ds_buf_puts(&b, " AS ");
            load_select(&b, in, key, n_key);
        }
    }
    ds_buf_puts(&b, ";\nCOMMIT;");
    const char *sql = ds_buf_cstr(&b);
    ds_sandbox_result_t res;
    if (!sql)
        st = ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    else
        st = ws_exec(ctx, project, &rec, sql, scan_hook, &ud, &res);
    ds_buf_free(&b);
    if (st == DS_QUERY_FAILED)
        ctx->err.status = DS_INVALID_ARGUMENT, st = DS_INVALID_ARGUMENT;
    if (st != DS_OK)
        return st;
    if (in->type == DS_WS_LOAD_VIEW) {
        /* A view holds no copy: its row count is the table's, read when asked. */
        int64_t n;
        ds_proj_t tp = p;
        if (ds_cmd_read_rows(ctx, &tp, bucket, table, &n) == DS_OK)
            *rows = n;
    } else {
        *rows = res.rows_affected;
    }
    ds_log(DS_LOG_DEBUG, "project %s workspace %s: %s load of %s.%s into %s, %lld rows", project, rec.id,
           load_type_name(in->type), bucket, table, dest, (long long)*rows);
    return DS_OK;
}

/* ---- queries ---- */

static ds_status_t check_query(ds_ctx_t *ctx, const ds_query_t *q)
{
    if (!q->sql || !*q->sql)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "sql", "field \"sql\" must be a non-empty SQL statement");
    if (q->timeout_s < 0)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "timeout", "timeout must be a positive number of seconds");
    if (q->limit < 0)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "limit", "limit must not be negative");
    return DS_OK;
}

/* Runs sq on sb as q asks: capped rows into out, or every row into a CSV or JSON-lines file (file). */
static ds_status_t run_query(ds_ctx_t *ctx, const char *project, ds_sandbox_t *sb, const ds_query_t *q,
                             const ds_sandbox_query_t *sq, ds_sandbox_result_t *out, ds_query_file_t *file)
{
    if (q->format == DS_QUERY_JSON)
        return ds_sandbox_query(sb, ctx->arena, sq, out, &ctx->err);
    const char *dir;
    ds_status_t st = ds_files_scratch_dir(ctx, project, &dir);
    if (st != DS_OK)
        return st;
    const char *path = ds_arena_printf(ctx->arena, "%s/query.rows", dir);
    if (!path)
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    st = ds_sandbox_query_file(sb, ctx->arena, sq, q->format == DS_QUERY_CSV ? DS_SANDBOX_CSV : DS_SANDBOX_JSONL, path,
                               out, &ctx->err);
    int fd = st == DS_OK ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    struct stat sst;
    if (st == DS_OK && (fd < 0 || fstat(fd, &sst) != 0))
        st = ds_err_set(&ctx->err, DS_UNAVAILABLE, "cannot read the query's answer back");
    /* The answer lives on as the open descriptor only. */
    unlink(path);
    rmdir(dir);
    if (st != DS_OK) {
        if (fd >= 0)
            close(fd);
        return st;
    }
    file->fd = fd;
    file->size = (int64_t)sst.st_size;
    return DS_OK;
}

/* ---- storage tables by name in workspace SQL ---- */

/*
 * Reads one SQL identifier at *pp (double-quoted, "" an escaped quote, or
 * bare letters, digits and '_'); the text into out (size n). False, *pp
 * unchanged, when none is there or it does not fit.
 */
static bool sql_ident(const char **pp, char *out, size_t n)
{
    const char *p = *pp;
    size_t len = 0;
    if (*p == '"') {
        for (p++;; p++) {
            if (!*p)
                return false;
            if (*p == '"') {
                if (p[1] != '"')
                    break;
                p++;
            }
            if (len + 1 >= n)
                return false;
            out[len++] = *p;
        }
        p++;
    } else {
        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_') {
            if (len + 1 >= n)
                return false;
            out[len++] = *p++;
        }
        if (len == 0)
            return false;
    }
    out[len] = '\0';
    *pp = p;
    return true;
}

static const char *skip_space(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* Serializes the storage schemas' set-up across queries (DuckDB catalog changes of one instance conflict). */
static pthread_mutex_t storage_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * Storage tables by name, as in project queries: every `"<bucket id>"."<table>"`
 * the SQL names that exists in the workspace's view of storage (its branch)
 * becomes a view "<bucket id>".main."<table>" over ds_storage_scan in an
 * in-memory catalog of the sandbox named after the bucket, made (again) before
 * the query runs. The view reads through the same scan hook as every scan
 * (checked at each bind), so it is read-only and current; the sandbox refuses
 * any user statement that changes those catalogs (ds_sandbox_query).
 */
static ds_status_t storage_names(ds_ctx_t *ctx, ds_proj_t *p, ds_sandbox_t *sb, scan_ud_t *ud, const char *sql)
{
    ds_buf_t b = {0};
    int n_views = 0;
    for (const char *s = strchr(sql, '"'); s; s = strchr(s, '"')) {
        char bucket[DS_BUCKET_ID_MAX + 1], table[DS_NAME_MAX + 1];
        const char *q = s;
        if (!sql_ident(&q, bucket, sizeof(bucket))) {
            s++;
            continue;
        }
        const char *after = q;
        q = skip_space(q);
        ds_err_t saved = ctx->err;
        if (*q == '.' && (q = skip_space(q + 1), sql_ident(&q, table, sizeof(table))) &&
            ds_ident_check_bucket(bucket, "bucket", &ctx->err) == DS_OK) {
            const char *rb = bucket, *rt = table;
            /* A table or an alias (read through its source, cmd/alias.c) the workspace's project has; a linked
             * bucket turns the project into its source: for this name only. */
            ds_proj_t tp = *p;
            if (ds_cmd_resolve_read(ctx, &tp, &rb, &rt, NULL, NULL, NULL) == DS_OK && n_views < 256) {
                ds_buf_puts(&b, "ATTACH IF NOT EXISTS ':memory:' AS ");
                ds_buf_ident(&b, bucket);
                ds_buf_puts(&b, ";\nCREATE OR REPLACE VIEW ");
                ds_buf_ident(&b, bucket);
                ds_buf_puts(&b, ".main.");
                ds_buf_ident(&b, table);
                ds_buf_puts(&b, " AS SELECT * FROM ");
                scan_call(&b, bucket, table, NULL, 0, false);
                ds_buf_puts(&b, ";\n");
                n_views++;
            }
        }
        ctx->err = saved;
        s = after;
    }
    if (!n_views)
        return DS_OK;
    const char *setup = ds_buf_cstr(&b);
    ds_status_t st;
    if (!setup) {
        st = ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    } else {
        ds_sandbox_result_t ignored;
        ds_sandbox_query_t sq = {.sql = setup, .mode = DS_SANDBOX_SERVICE, .scan = scan_hook, .scan_ud = ud,
                                 .cancel = ctx->cancel};
        pthread_mutex_lock(&storage_lock);
        st = ds_sandbox_query(sb, ctx->arena, &sq, &ignored, &ctx->err);
        pthread_mutex_unlock(&storage_lock);
    }
    ds_buf_free(&b);
    return st;
}

ds_status_t ds_cmd_ws_query(ds_ctx_t *ctx, const char *project, const char *id, const ds_ws_cred_t *cred,
                            const ds_query_t *q, ds_sandbox_result_t *out, ds_query_file_t *file)
{
    ds_proj_t p;
    ds_ws_rec_t rec;
    memset(out, 0, sizeof(*out));
    ds_status_t st = open_ws(ctx, &project, id, cred, &p, &rec, false);
    if (st == DS_OK)
        st = check_query(ctx, q);
    if (st != DS_OK)
        return st;
    ds_sandbox_t *sb = NULL;
    if ((st = ds_sandbox_acquire(ws_key(ctx, project, rec.id), ws_path(ctx, project, rec.id), &sb, &ctx->err)) != DS_OK)
        return st;
    scan_ud_t ud = {.ctx = ctx, .p = &p, .ws = &rec};
    ds_sandbox_query_t sq = {.sql = q->sql,
                             .mode = DS_SANDBOX_USER,
                             .timeout_s = q->timeout_s,
                             .max_rows = q->limit,
                             .scan = scan_hook,
                             .scan_ud = &ud,
                             .cancel = ctx->cancel};
    st = storage_names(ctx, &p, sb, &ud, q->sql);
    if (st == DS_QUERY_FAILED)
        ctx->err.status = DS_QUERY_FAILED;
    if (st == DS_OK)
        st = run_query(ctx, project, sb, q, &sq, out, file);
    ds_sandbox_release(&sb);
    return st;
}

ds_status_t ds_cmd_project_query(ds_ctx_t *ctx, const char *project, const ds_query_t *q, ds_sandbox_result_t *out,
                                 ds_query_file_t *file)
{
    ds_proj_t p;
    memset(out, 0, sizeof(*out));
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st == DS_OK)
        st = ds_cmd_require_cap(ctx, &p, DS_CAP_WORKSPACES, "SQL queries");
    if (st == DS_OK)
        st = check_query(ctx, q);
    if (st != DS_OK)
        return st;
    /* A private in-memory sandbox; the storage tables the SQL names are views over the storage scan, as the
     * request's branch sees them (storage_names, the same mechanism as in workspaces). */
    ds_sandbox_t *sb = NULL;
    if ((st = ds_sandbox_acquire(NULL, NULL, &sb, &ctx->err)) != DS_OK)
        return st;
    scan_ud_t ud = {.ctx = ctx, .p = &p};
    st = storage_names(ctx, &p, sb, &ud, q->sql);
    if (st == DS_OK) {
        ds_sandbox_query_t sq = {.sql = q->sql,
                                 .mode = DS_SANDBOX_READ_ONLY,
                                 .timeout_s = q->timeout_s,
                                 .max_rows = q->limit,
                                 .scan = scan_hook,
                                 .scan_ud = &ud,
                                 .cancel = ctx->cancel};
        st = run_query(ctx, project, sb, q, &sq, out, file);
    }
    ds_sandbox_release(&sb);
    return st;
}

/* ---- unload ---- */

ds_status_t ds_cmd_table_import_workspace(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                                          const char *ws, const ds_import_t *in, ds_import_result_t *out)
{
    ds_proj_t p;
    ds_ws_rec_t rec;
    const char *stored, *dir;
    bool view;
    memset(out, 0, sizeof(*out));
    /* The destination is in the request's branch; the workspace reads its own branch's storage. */
    const char *dest_branch = ctx->branch;
    ds_status_t st = open_ws(ctx, &project, ws, NULL, &p, &rec, false);
    if (st != DS_OK)
        return st;
    if (in->src_where.n_filters || in->src_where.changed_since || in->src_where.changed_until || in->src_seconds ||
        in->src_limit)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "source",
                           "an import from a workspace takes the whole workspace table (columns_mapping may pick and "
                           "rename its columns): where_filters, changed_since, changed_until, seconds and limit are "
                           "not supported with it");
    for (size_t i = 0; i < in->n_mapping; i++)
        if ((st = ds_ident_check_name(in->src_columns[i], "columns_mapping.source", &ctx->err)) != DS_OK ||
            (st = ds_ident_check_name(in->dst_columns[i], "columns_mapping.destination", &ctx->err)) != DS_OK)
            return st;
    if ((st = ds_ident_check_name(in->src_table, "source.table", &ctx->err)) != DS_OK ||
        (st = ds_ident_check_bucket(bucket, "bucket", &ctx->err)) != DS_OK ||
        (st = ds_ident_check_name(table, "table", &ctx->err)) != DS_OK)
        return st;
    if ((st = find_object(ctx, project, &rec, in->src_table, &stored, &view)) != DS_OK)
        return st;
    if ((st = ds_files_scratch_dir(ctx, project, &dir)) != DS_OK)
        return st;
    const char *path = ds_arena_printf(ctx->arena, "%s/unload.csv", dir);
    ds_buf_t sql = {0};
    /* The columns mapped (each under its destination name, which the unloaded file's header carries), or all. */
    ds_buf_puts(&sql, in->n_mapping ? "SELECT " : "SELECT *");
    for (size_t i = 0; i < in->n_mapping; i++) {
        ds_buf_puts(&sql, i ? ", " : "");
        ds_buf_ident(&sql, in->src_columns[i]);
        ds_buf_puts(&sql, " AS ");
        ds_buf_ident(&sql, in->dst_columns[i]);
    }
    ds_buf_puts(&sql, " FROM ");
    ds_buf_ident(&sql, stored);
    ds_sandbox_t *sb = NULL;
    ds_sandbox_result_t meta;
    scan_ud_t ud = {.ctx = ctx, .p = &p};
    if (!ds_buf_cstr(&sql) || !path)
        st = ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    if (st == DS_OK)
        st = ds_sandbox_acquire(ws_key(ctx, project, rec.id), ws_path(ctx, project, rec.id), &sb, &ctx->err);
    if (st == DS_OK) {
        ds_sandbox_query_t q = {.sql = ds_buf_cstr(&sql),
                                .mode = DS_SANDBOX_SERVICE,
                                .scan = scan_hook,
                                .scan_ud = &ud,
                                .cancel = ctx->cancel};
        st = ds_sandbox_query_file(sb, ctx->arena, &q, DS_SANDBOX_CSV, path, &meta, &ctx->err);
        ds_sandbox_release(&sb);
    }
    ds_buf_free(&sql);
    if (st == DS_QUERY_FAILED)
        ctx->err.status = st = DS_INVALID_ARGUMENT;
    if (st != DS_OK) {
        unlink(path);
        return st;
    }
    ctx->branch = dest_branch;
    ds_file_t file;
    const char *name = ds_arena_printf(ctx->arena, "unloads/%s.%s-%lld-%08x.csv", rec.id, stored, (long long)ds_now(),
                                       (unsigned)randombytes_random());
    if ((st = ds_files_adopt(ctx, project, &path, 1, name, false, false, &file)) != DS_OK) {
        unlink(path);
        return st;
    }
    ds_import_t x = *in;
    x.src_bucket = NULL;
    x.src_table = NULL;
    x.src_columns = x.dst_columns = NULL;
    x.n_mapping = 0;
    x.file_id = file.id;
    x.file_key = NULL;
    x.format = DS_FORMAT_CSV;
    memset(&x.csv, 0, sizeof(x.csv));
    snprintf(x.csv.delimiter, sizeof(x.csv.delimiter), ",");
    snprintf(x.csv.enclosure, sizeof(x.csv.enclosure), "\"");
    x.csv.header = true;
    /* Empty values of typed columns were NULLs. */
    size_t n_empty = in->n_convert_empty_to_null;
    const char **empty = ds_arena_alloc(ctx->arena, sizeof(char *) * (n_empty + meta.n_columns + 1));
    if (!empty)
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    for (size_t i = 0; i < n_empty; i++)
        empty[i] = in->convert_empty_to_null[i];
    for (size_t c = 0; c < meta.n_columns; c++)
        if (strcmp(meta.types[c], "VARCHAR") != 0)
            empty[n_empty++] = meta.names[c];
    x.convert_empty_to_null = empty;
    x.n_convert_empty_to_null = n_empty;
    st = ds_cmd_table_import(ctx, project, bucket, table, &x, out);
    ds_err_t saved = ctx->err;
    if (ds_cmd_file_delete(ctx, project, file.id) != DS_OK)
        ds_log(DS_LOG_WARN, "project %s: unload file %s not removed: %s", project, file.id, ctx->err.message);
    ctx->err = saved;
    return st;
}
