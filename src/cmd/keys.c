/*
 * keys.c - project API keys: create, list, delete, rotate (catalog/apikeys.h).
 *
 * A project's main key (returned at creation) lives in the project's catalog
 * row and is listed as id "main", scope admin; it can be rotated but not
 * deleted. Created keys have an id "k-<16 hex>", a scope (admin, read,
 * branch) and, for branch scope, the branch they may write. A secret is shown
 * only by create and rotate; the catalog keeps its SHA-256. Rotating keeps
 * the previous secret valid for grace_seconds. Managing keys needs the admin
 * key or a project key of scope admin; ds_cmd_require_write then applies as
 * to any write. Secrets are never logged.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "catalog/apikeys.h"
#include "cmd/internal.h"
#include "core/keys.h"
#include "core/log.h"

#define MAX_GRACE (30 * 86400)

/* Opens the project for key management. */
static ds_status_t open_for_keys(ds_ctx_t *ctx, const char **project, ds_proj_t *p)
{
    ds_status_t st = ds_cmd_open_project(ctx, project, p);
    if (st == DS_OK)
        st = ds_cmd_require_project_admin(ctx, "managing API keys");
    return st;
}

/* The DDL slot serializes key changes of one project (and runs the write check). */
static ds_status_t open_for_key_change(ds_ctx_t *ctx, const char **project, ds_proj_t *p)
{
    ds_status_t st = open_for_keys(ctx, project, p);
    if (st == DS_OK)
        st = ds_cmd_enter(ctx, ds_arena_printf(ctx->arena, "k/%s", *project));
    return st;
}

static void fill(ds_ctx_t *ctx, const ds_apikey_rec_t *k, ds_key_t *out)
{
    memset(out, 0, sizeof(*out));
    out->id = ds_arena_strdup(ctx->arena, k->id);
    out->scope = ds_key_scope_name(k->scope);
    out->branch = k->scope == DS_KEY_SCOPE_BRANCH ? ds_arena_strdup(ctx->arena, k->branch) : NULL;
    out->description = ds_arena_strdup(ctx->arena, k->description);
    out->created_at = k->created_at;
}

ds_status_t ds_cmd_key_create(ds_ctx_t *ctx, const char *project, const ds_key_create_t *in, ds_key_t *out)
{
    ds_proj_t p;
    ds_key_scope_t scope;
    ds_apikey_rec_t k = {0};
    char secret[DS_KEY_MAX];
    unsigned char raw[8];
    if (!in->scope || !ds_key_scope_parse(in->scope, &scope))
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "scope",
                           "scope must be \"admin\", \"read\" or \"branch\", got \"%s\"", in->scope ? in->scope : "");
    if (scope == DS_KEY_SCOPE_BRANCH) {
        if (!in->branch || !*in->branch)
            return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "branch", "a key of scope \"branch\" needs \"branch\"");
        if (strcmp(in->branch, "default") == 0 || strcmp(in->branch, "main") == 0)
            return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "branch",
                               "\"branch\" names a development branch; a key that writes main has scope \"admin\"");
        ds_status_t st = ds_ident_check_name(in->branch, "branch", &ctx->err);
        if (st != DS_OK)
            return st;
        if (strlen(in->branch) > DS_APIKEY_BRANCH_MAX)
            return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "branch", "\"branch\" is longer than %d characters",
                               DS_APIKEY_BRANCH_MAX);
    } else if (in->branch) {
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "branch",
                           "\"branch\" is only for keys of scope \"branch\", this one has scope \"%s\"", in->scope);
    }
    if (in->description && strlen(in->description) >= sizeof(k.description))
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "description", "\"description\" is longer than %zu bytes",
                           sizeof(k.description) - 1);
    ds_status_t st = open_for_key_change(ctx, &project, &p);
    if (st != DS_OK)
        return st;
    randombytes_buf(raw, sizeof(raw));
    snprintf(k.id, sizeof(k.id), "k-%02x%02x%02x%02x%02x%02x%02x%02x", raw[0], raw[1], raw[2], raw[3], raw[4], raw[5],
             raw[6], raw[7]);
    snprintf(k.project_id, sizeof(k.project_id), "%s", project);
    snprintf(k.branch, sizeof(k.branch), "%s", scope == DS_KEY_SCOPE_BRANCH ? in->branch : "");
    snprintf(k.description, sizeof(k.description), "%s", in->description ? in->description : "");
    k.scope = scope;
    k.created_at = ds_now();
    if (!ds_key_generate(project, secret, sizeof(secret)))
        return ds_err_set(&ctx->err, DS_INTERNAL, "cannot generate a key");
    ds_key_hash(secret, k.key_hash);
    if ((st = ds_catalog_apikey_insert(&k, &ctx->err)) == DS_OK) {
        fill(ctx, &k, out);
        out->key = ds_arena_strdup(ctx->arena, secret);
        ctx->answer_has_secret = true;
        if (!out->key || !out->id)
            st = ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    }
    sodium_memzero(secret, sizeof(secret));
    return st;
}

ds_status_t ds_cmd_key_list(ds_ctx_t *ctx, const char *project, ds_key_t **items, size_t *n)
{
    ds_proj_t p;
    ds_apikey_rec_t *recs;
    size_t m;
    ds_status_t st = open_for_keys(ctx, &project, &p);
    if (st == DS_OK)
        st = ds_catalog_apikey_list(ctx->arena, project, &recs, &m, &ctx->err);
    if (st != DS_OK)
        return st;
    ds_key_t *out = ds_arena_alloc(ctx->arena, sizeof(*out) * (m + 1));
    if (!out)
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    out[0] = (ds_key_t){.id = "main", .scope = "admin", .description = "the key returned when the project was created",
                        .created_at = p.rec.created_at};
    for (size_t i = 0; i < m; i++)
        fill(ctx, &recs[i], &out[i + 1]);
    *items = out;
    *n = m + 1;
    return DS_OK;
}

ds_status_t ds_cmd_key_delete(ds_ctx_t *ctx, const char *project, const char *key_id)
{
    ds_proj_t p;
    if (strcmp(key_id, "main") == 0)
        return ds_err_set(&ctx->err, DS_INVALID_ARGUMENT,
                          "the main key cannot be deleted; rotate it (POST .../keys/main/rotate) to replace it");
    ds_status_t st = open_for_key_change(ctx, &project, &p);
    if (st == DS_OK)
        st = ds_catalog_apikey_delete(project, key_id, &ctx->err);
    if (st == DS_OK)
        ds_log(DS_LOG_INFO, "project %s: API key %s deleted", project, key_id);
    return st;
}

ds_status_t ds_cmd_key_rotate(ds_ctx_t *ctx, const char *project, const char *key_id, int64_t grace_seconds,
                              ds_key_t *out)
{
    ds_proj_t p;
    ds_apikey_rec_t k;
    char secret[DS_KEY_MAX], hash[DS_KEY_HASH_HEX];
    if (grace_seconds < 0 || grace_seconds > MAX_GRACE)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "grace_seconds",
                           "grace_seconds must be between 0 and %d (30 days), got %lld", MAX_GRACE,
                           (long long)grace_seconds);
    ds_status_t st = open_for_key_change(ctx, &project, &p);
    if (st != DS_OK)
        return st;
    bool main_key = strcmp(key_id, "main") == 0;
    if (main_key) {
        k = (ds_apikey_rec_t){.scope = DS_KEY_SCOPE_ADMIN, .created_at = p.rec.created_at};
        snprintf(k.id, sizeof(k.id), "main");
        snprintf(k.key_hash, sizeof(k.key_hash), "%s", p.rec.key_hash);
        snprintf(k.description, sizeof(k.description), "the key returned when the project was created");
    } else if ((st = ds_catalog_apikey_get(project, key_id, &k, &ctx->err)) != DS_OK) {
        return st;
    }
    if (!ds_key_generate(project, secret, sizeof(secret)))
        return ds_err_set(&ctx->err, DS_INTERNAL, "cannot generate a key");
    ds_key_hash(secret, hash);
    int64_t now = ds_now();
    /* The old secret is kept (retired) before the new one takes over, so no moment is without a valid key. */
    st = ds_catalog_apikey_rotate(project, k.id, main_key ? NULL : hash, k.key_hash, k.scope, k.branch,
                                  now + grace_seconds, &ctx->err);
    if (st == DS_OK && main_key) {
        st = ds_catalog_project_set_key_hash(project, hash, now, &ctx->err);
        if (st == DS_OK) {
            /* The project's own copy of its record follows, so a rebuilt catalog knows the new key. */
            ds_project_rec_t rec = p.rec;
            snprintf(rec.key_hash, sizeof(rec.key_hash), "%s", hash);
            rec.updated_at = now;
            if (ds_service_project_copy_put(p.be, &p.call, &rec) != DS_OK) {
                ds_log(DS_LOG_WARN, "project %s: the copy of its record keeps the old key hash: %s", project,
                       ctx->err.message);
                ds_err_clear(&ctx->err);
            }
        }
    }
    if (st == DS_OK) {
        fill(ctx, &k, out);
        out->key = ds_arena_strdup(ctx->arena, secret);
        ctx->answer_has_secret = true;
        if (!out->key || !out->id)
            st = ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
        else
            ds_log(DS_LOG_INFO, "project %s: API key %s rotated; the previous secret stays valid for %lld seconds",
                   project, key_id, (long long)grace_seconds);
    }
    sodium_memzero(secret, sizeof(secret));
    return st;
}
