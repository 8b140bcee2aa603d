/*
 * branch.c - development branches: every branch rule, once, above the backends.
 *
 * DESIGN
 * A branch is a record in the project's storage plus the tables it wrote.
 * Creating one writes the record only, so it costs the same for an empty
 * project and for a project of 500 tables.
 *
 * Where a branch's tables live: in the project's own storage, in buckets whose
 * id is the branch prefix "_br_<branch id, lower-case>." followed by the
 * logical bucket id ("_br_dev.in.c-crm"). No bucket a client names can start
 * with "_" (core/ident.c), so these ids never meet main's and a main request
 * can never address them. Marks (backend "branch_marks") remember, per
 * physical name, the version of main's table the branch decided on: when it
 * copied it, or when it dropped it (a hidden mark).
 *
 * How a name resolves (ds_cmd_branch_resolve_table, used by names.c for every
 * command): the branch's own table when it has one; else nothing when the
 * branch dropped main's table; else main's table as it is now (reads fall
 * through, including main's changes after the branch was created).
 *
 * A bucket of main deleted in a branch: a hidden mark with the empty table
 * name on the branch's bucket id (no table can be named "") hides the bucket
 * and every main table in it, also tables main creates later; each main table
 * the branch saw also gets its own hidden mark with its version, as a dropped
 * table does. Nothing is copied. A bucket of that id created again in the
 * branch is the branch's own; main's tables stay hidden in it.
 *
 * Writes (ds_cmd_branch_write): inside the table's write slot of the branch,
 * a table the branch does not own yet is copied from main in one backend
 * transaction (tables_move), with a mark holding main's version; the write
 * then goes to the copy. Main is never written by a branch request: every
 * physical name a branch write reaches carries the branch prefix.
 *
 * Merge: for every table the branch owns or dropped, main's version must
 * still be the marked one (a table the branch created: main must not have
 * one); otherwise 409 naming the tables, unless forced. The merge is one
 * tables_move: copies into main, drops in main, the branch's copies and marks
 * removed, each guarded by the expected version inside the transaction, so a
 * change of main between the check and the merge refuses it too. The same
 * transaction applies the branch's alias rows to main (alias.c checks first
 * that every alias main would then have still holds). A bucket the
 * branch deleted: main's tables in it without a mark (created on main after
 * the delete) conflict too; after the tables, main's bucket is dropped (unless
 * the branch created it again) and the bucket mark goes last.
 *
 * Everything returned is allocated in the request arena.
 */
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cmd/internal.h"
#include "cmd/workspace.h"
#include "core/buf.h"

#define BR_PREFIX "_br_"
#define BR_ID_MAX 64

static ds_status_t oom(ds_ctx_t *ctx) { return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory"); }

static ds_status_t check_branch_id(ds_ctx_t *ctx, const char *id, const char *field)
{
    size_t n = id ? strlen(id) : 0;
    bool ok = n > 0 && n <= BR_ID_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)id[i]) || id[i] == '_' || id[i] == '-';
    if (!ok)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, field,
                           "invalid branch id \"%.80s\": use 1-64 characters of A-Z a-z 0-9 _ -", id ? id : "");
    if (strcasecmp(id, "default") == 0 || strcasecmp(id, "main") == 0)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, field,
                           "invalid branch id \"%s\": the name is reserved for the main branch", id);
    return DS_OK;
}

static const char *prefix_of(ds_ctx_t *ctx, const char *id)
{
    char *pre = ds_arena_printf(ctx->arena, BR_PREFIX "%s.", id);
    for (char *c = pre ? pre + strlen(BR_PREFIX) : NULL; c && *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return pre;
}

/* Finds branch id (regardless of case) among the project's branches; DS_NOT_FOUND naming it. */
static ds_status_t find_branch(ds_ctx_t *ctx, ds_proj_t *p, const char *id, ds_be_branch_t *out)
{
    ds_be_branch_t *items;
    size_t n;
    ds_status_t st = ds_be_branch_list(p->be, &p->call, &items, &n);
    if (st != DS_OK)
        return st;
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(items[i].id, id) == 0) {
            *out = items[i];
            return DS_OK;
        }
    return ds_err_set(&ctx->err, DS_NOT_FOUND, "branch \"%s\" not found in project \"%s\"", id, p->rec.id);
}

ds_status_t ds_cmd_branch_open(ds_ctx_t *ctx, ds_proj_t *p)
{
    ds_be_branch_t b;
    ds_status_t st = check_branch_id(ctx, ctx->branch, "branch");
    if (st == DS_OK)
        st = ds_cmd_require_cap(ctx, p, DS_CAP_BRANCHES, "development branches");
    if (st == DS_OK)
        st = find_branch(ctx, p, ctx->branch, &b);
    if (st != DS_OK)
        return st;
    p->branch = b.id;
    if (!(p->branch_prefix = prefix_of(ctx, b.id)))
        return oom(ctx);
    return DS_OK;
}

bool ds_cmd_branch_owns(const ds_proj_t *p, const char *bucket)
{
    return p->branch_prefix && bucket && strncasecmp(bucket, p->branch_prefix, strlen(p->branch_prefix)) == 0;
}

const char *ds_cmd_branch_logical(const ds_proj_t *p, const char *bucket)
{
    return ds_cmd_branch_owns(p, bucket) ? bucket + strlen(p->branch_prefix) : bucket;
}

/* The physical bucket id of the branch's own storage for logical bucket (arena). */
static const char *own_bucket(ds_ctx_t *ctx, const ds_proj_t *p, const char *bucket)
{
    return ds_cmd_branch_owns(p, bucket) ? bucket : ds_arena_printf(ctx->arena, "%s%s", p->branch_prefix, bucket);
}

/* The mark of physical bucket.table, if any (*found). */
static ds_status_t find_mark(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, const char *table, ds_be_mark_t *out,
                             bool *found)
{
    ds_be_mark_t *items;
    size_t n;
    *found = false;
    ds_status_t st = ds_be_marks_list(p->be, &p->call, p->branch_prefix, &items, &n);
    if (st != DS_OK)
        return st;
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(items[i].bucket, bucket) == 0 && strcasecmp(items[i].name, table) == 0) {
            *out = items[i];
            *found = true;
            break;
        }
    return DS_OK;
}

/* Whether the branch deleted main's bucket of physical branch bucket id own (a bucket mark). */
static ds_status_t bucket_hidden(ds_ctx_t *ctx, ds_proj_t *p, const char *own, bool *hidden)
{
    ds_be_mark_t m;
    ds_status_t st = find_mark(ctx, p, own, "", &m, hidden);
    *hidden = st == DS_OK && *hidden && m.hidden;
    return st;
}

/* Looks bucket.table up; *found false (and no error) when it does not exist. */
static ds_status_t lookup(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, const char *table, ds_be_table_t *def,
                          bool *found)
{
    memset(def, 0, sizeof(*def));
    ds_status_t st = ds_be_table_get(p->be, &p->call, bucket, table, def);
    *found = st == DS_OK;
    if (st == DS_NOT_FOUND) {
        ds_err_clear(&ctx->err);
        memset(def, 0, sizeof(*def));
        return DS_OK;
    }
    if (st == DS_OK && (!def->bucket || !def->name))
        return oom(ctx);
    return st;
}

/* Main's table bucket.table as the branch sees it: not there when the branch dropped it. */
static ds_status_t main_visible(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, const char *table, ds_be_table_t *def,
                                bool *found)
{
    ds_be_mark_t m;
    bool marked, gone;
    const char *own = own_bucket(ctx, p, bucket);
    ds_status_t st = find_mark(ctx, p, own, table, &m, &marked);
    if (st == DS_OK)
        st = bucket_hidden(ctx, p, own, &gone);
    if (st != DS_OK)
        return st;
    if ((marked && m.hidden) || gone) {
        *found = false;
        memset(def, 0, sizeof(*def));
        return DS_OK;
    }
    return lookup(ctx, p, bucket, table, def, found);
}

ds_status_t ds_cmd_branch_resolve_bucket(ds_ctx_t *ctx, ds_proj_t *p, const char **bucket)
{
    ds_be_bucket_t b;
    const char *own = own_bucket(ctx, p, *bucket);
    ds_status_t st = ds_be_bucket_get(p->be, &p->call, own, &b);
    if (st == DS_NOT_FOUND) {
        bool gone;
        ds_err_clear(&ctx->err);
        if ((st = bucket_hidden(ctx, p, own, &gone)) != DS_OK)
            return st;
        st = gone ? DS_NOT_FOUND : ds_be_bucket_get(p->be, &p->call, *bucket, &b);
        if (st == DS_NOT_FOUND)
            return ds_err_setk(&ctx->err, DS_NOT_FOUND, DS_KBC_SCHEMA_NOT_FOUND, "bucket \"%s\" not found in branch \"%s\"",
                               *bucket, p->branch);
    }
    if (st != DS_OK)
        return st;
    if (!b.id)
        return oom(ctx);
    *bucket = b.id;
    return DS_OK;
}

ds_status_t ds_cmd_branch_resolve_table(ds_ctx_t *ctx, ds_proj_t *p, const char **bucket, const char **table,
                                        bool may_be_missing, ds_be_table_t *def, bool *exists)
{
    bool found;
    const char *logical = ds_cmd_branch_logical(p, *bucket);
    ds_status_t st = lookup(ctx, p, own_bucket(ctx, p, logical), *table, def, &found);
    if (st == DS_OK && !found)
        st = main_visible(ctx, p, logical, *table, def, &found);
    if (st != DS_OK)
        return st;
    if (found) {
        *bucket = def->bucket;
        *table = def->name;
        if (exists)
            *exists = true;
        return DS_OK;
    }
    if (!may_be_missing)
        return ds_err_setk(&ctx->err, DS_NOT_FOUND, DS_KBC_TABLE_NOT_FOUND, "table \"%s.%s\" not found in branch \"%s\"",
                           logical, *table, p->branch);
    *bucket = logical;
    return ds_cmd_branch_resolve_bucket(ctx, p, bucket);
}

/* Creates the branch's own bucket for logical bucket (like main's, or as given) unless it exists; *bucket becomes its id. */
static ds_status_t own_bucket_ensure(ds_ctx_t *ctx, ds_proj_t *p, const char **bucket, const ds_be_bucket_t *like)
{
    ds_be_bucket_t b, src;
    const char *id = own_bucket(ctx, p, *bucket);
    if (!id)
        return oom(ctx);
    ds_status_t st = ds_be_bucket_get(p->be, &p->call, id, &b);
    if (st == DS_OK) {
        *bucket = b.id;
        return b.id ? DS_OK : oom(ctx);
    }
    if (st != DS_NOT_FOUND)
        return st;
    ds_err_clear(&ctx->err);
    if (!like) {
        if ((st = ds_be_bucket_get(p->be, &p->call, ds_cmd_branch_logical(p, *bucket), &src)) != DS_OK)
            return st;
        like = &src;
        id = own_bucket(ctx, p, src.id);
    }
    ds_be_bucket_t nb = {.id = id, .stage = like->stage, .name = like->name, .description = like->description,
                         .created_at = like->created_at ? like->created_at : ds_now()};
    st = ds_be_bucket_create(p->be, &p->call, &nb);
    if (st == DS_ALREADY_EXISTS) {
        ds_err_clear(&ctx->err);
        st = DS_OK;
    }
    if (st == DS_OK)
        *bucket = id;
    return st;
}

ds_status_t ds_cmd_branch_write(ds_ctx_t *ctx, ds_proj_t *p, const char **bucket, const char **table, bool with_ddl)
{
    if (p->linked_bucket)
        return ds_cmd_share_refuse_write(ctx, p);
    ds_status_t st;
    if (!p->branch) {
        st = ds_cmd_enter_table(ctx, p->rec.id, *bucket, *table);
        if (st == DS_OK && with_ddl)
            st = ds_cmd_enter_ddl(ctx, p->rec.id);
        return st;
    }
    const char *own = own_bucket(ctx, p, ds_cmd_branch_logical(p, *bucket));
    if (!own)
        return oom(ctx);
    /* The slot is the branch's table, never main's: a branch write does not wait for main's writers. */
    if ((st = ds_cmd_enter_table(ctx, p->rec.id, own, *table)) != DS_OK)
        return st;
    if (ds_cmd_branch_owns(p, *bucket))
        return with_ddl ? ds_cmd_enter_ddl(ctx, p->rec.id) : DS_OK;
    if ((st = ds_cmd_enter_ddl(ctx, p->rec.id)) != DS_OK)
        return st;
    /* Inside the slot: another request may have made the copy meanwhile. */
    ds_be_table_t t;
    bool found;
    if ((st = lookup(ctx, p, own, *table, &t, &found)) != DS_OK)
        return st;
    if (found) {
        *bucket = t.bucket;
        *table = t.name;
        return DS_OK;
    }
    if ((st = main_visible(ctx, p, *bucket, *table, &t, &found)) != DS_OK)
        return st;
    if (!found)
        return own_bucket_ensure(ctx, p, bucket, NULL); /* a table this request creates: only in the branch */
    int64_t version;
    if ((st = ds_be_table_version(p->be, &p->call, t.bucket, t.name, &version)) != DS_OK)
        return st;
    const char *dst = own_bucket(ctx, p, t.bucket);
    ds_be_move_t copy = {.kind = DS_MOVE_COPY, .src_bucket = t.bucket, .src_table = t.name, .dst_bucket = dst,
                         .dst_table = t.name, .expect_version = -1, .mark_version = version > 0 ? version : 1};
    if ((st = ds_be_tables_move(p->be, &p->call, &copy, 1)) != DS_OK)
        return st;
    *bucket = dst;
    *table = t.name;
    return DS_OK;
}

static int key_cmp(const void *a, const void *b);

ds_status_t ds_cmd_branch_replace(ds_ctx_t *ctx, ds_proj_t *p, const char **bucket, const char **table, size_t n,
                                  bool *exists, ds_be_move_t **moves, size_t *n_moves)
{
    *moves = NULL;
    *n_moves = 0;
    if (p->linked_bucket)
        return ds_cmd_share_refuse_write(ctx, p);
    const char **own = ds_arena_alloc(ctx->arena, sizeof(char *) * (n + 1));
    const char **keys = ds_arena_alloc(ctx->arena, sizeof(char *) * (n + 1));
    ds_be_move_t *m = ds_arena_alloc(ctx->arena, sizeof(*m) * (2 * n + 1));
    if (!own || !keys || !m)
        return oom(ctx);
    for (size_t i = 0; i < n; i++) {
        own[i] = own_bucket(ctx, p, ds_cmd_branch_logical(p, bucket[i]));
        if (!own[i] || !(keys[i] = ds_arena_printf(ctx->arena, "%s\n%s", own[i], table[i])))
            return oom(ctx);
    }
    /* The branch's table slots (never main's) in one order, then the catalog slot (cmd/cmd.h's lock order). */
    qsort(keys, n, sizeof(char *), key_cmp);
    ds_status_t st = DS_OK;
    for (size_t i = 0; i < n && st == DS_OK; i++) {
        if (i && strcasecmp(keys[i], keys[i - 1]) == 0)
            continue;
        const char *nl = strchr(keys[i], '\n');
        const char *b = ds_arena_strndup(ctx->arena, keys[i], (size_t)(nl - keys[i]));
        st = b ? ds_cmd_enter_table(ctx, p->rec.id, b, nl + 1) : oom(ctx);
    }
    if (st == DS_OK)
        st = ds_cmd_enter_ddl(ctx, p->rec.id);
    if (st != DS_OK)
        return st;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *logical = ds_cmd_branch_logical(p, bucket[i]);
        ds_be_table_t t;
        bool found;
        /* Inside the slots: what the branch sees now decides. */
        if ((st = lookup(ctx, p, own[i], table[i], &t, &found)) != DS_OK)
            return st;
        exists[i] = found;
        if (found) {
            bucket[i] = t.bucket;
            table[i] = t.name;
            continue;
        }
        ds_be_bucket_t ob;
        st = ds_be_bucket_get(p->be, &p->call, own[i], &ob);
        if (st == DS_NOT_FOUND) {
            ds_err_clear(&ctx->err);
            bool planned_bucket = false;
            for (size_t j = 0; j < k && !planned_bucket; j++)
                planned_bucket = m[j].kind == DS_MOVE_BUCKET && strcasecmp(m[j].dst_bucket, own[i]) == 0;
            if (!planned_bucket)
                m[k++] = (ds_be_move_t){.kind = DS_MOVE_BUCKET, .src_bucket = logical, .dst_bucket = own[i],
                                        .expect_version = -1};
        } else if (st != DS_OK) {
            return st;
        }
        if ((st = main_visible(ctx, p, logical, table[i], &t, &found)) != DS_OK)
            return st;
        exists[i] = found;
        if (found) {
            /* The branch now owns main's table: the mark main's version, as a copy on first write records. */
            int64_t version;
            if ((st = ds_be_table_version(p->be, &p->call, t.bucket, t.name, &version)) != DS_OK)
                return st;
            table[i] = t.name;
            m[k++] = (ds_be_move_t){.kind = DS_MOVE_MARK, .dst_bucket = own[i], .dst_table = t.name,
                                    .expect_version = -1, .hidden = false, .mark_version = version > 0 ? version : 1};
        }
        bucket[i] = own[i];
    }
    *moves = m;
    *n_moves = k;
    return DS_OK;
}

/* ---- the branch view of buckets and tables ---- */

/* Appends one table to a growing arena array. */
static ds_status_t push_table(ds_ctx_t *ctx, ds_be_table_t **items, size_t *n, size_t *cap, const ds_be_table_t *t)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        ds_be_table_t *grown = ds_arena_alloc(ctx->arena, sizeof(*grown) * nc);
        if (!grown)
            return oom(ctx);
        if (*n)
            memcpy(grown, *items, sizeof(*grown) * *n);
        *items = grown;
        *cap = nc;
    }
    (*items)[(*n)++] = *t;
    return DS_OK;
}

/*
 * The tables of logical bucket as the branch sees them (bucket fields
 * logical); source[i] (may be NULL) says whether the branch owns table i.
 */
static ds_status_t view_tables(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, ds_be_table_t **items, size_t *n,
                               bool **owned)
{
    ds_be_table_t *own = NULL, *main_t = NULL;
    size_t n_own = 0, n_main = 0, cap = 0;
    ds_be_mark_t *marks;
    size_t n_marks;
    *items = NULL;
    *n = 0;
    const char *own_id = own_bucket(ctx, p, bucket);
    ds_status_t st = ds_be_marks_list(p->be, &p->call, p->branch_prefix, &marks, &n_marks);
    if (st != DS_OK)
        return st;
    ds_be_bucket_t b;
    if ((st = ds_be_bucket_get(p->be, &p->call, own_id, &b)) == DS_OK)
        st = ds_be_table_list(p->be, &p->call, b.id, &own, &n_own);
    if (st == DS_NOT_FOUND) {
        ds_err_clear(&ctx->err);
        st = DS_OK;
    }
    bool gone = false;
    for (size_t j = 0; j < n_marks; j++)
        gone = gone || (marks[j].hidden && !marks[j].name[0] && strcasecmp(marks[j].bucket, own_id) == 0);
    if (st == DS_OK && !gone && (st = ds_be_bucket_get(p->be, &p->call, bucket, &b)) == DS_OK)
        st = ds_be_table_list(p->be, &p->call, b.id, &main_t, &n_main);
    if (st == DS_NOT_FOUND) {
        ds_err_clear(&ctx->err);
        st = DS_OK;
    }
    if (st != DS_OK)
        return st;
    bool *flags = ds_arena_alloc(ctx->arena, sizeof(bool) * (n_own + n_main + 1));
    if (!flags)
        return oom(ctx);
    for (size_t i = 0; i < n_own; i++) {
        ds_be_table_t t = own[i];
        t.bucket = ds_cmd_branch_logical(p, t.bucket);
        flags[*n] = true;
        if ((st = push_table(ctx, items, n, &cap, &t)) != DS_OK)
            return st;
    }
    for (size_t i = 0; i < n_main; i++) {
        bool shadowed = false;
        for (size_t j = 0; j < n_own && !shadowed; j++)
            shadowed = strcasecmp(own[j].name, main_t[i].name) == 0;
        for (size_t j = 0; j < n_marks && !shadowed; j++)
            shadowed = marks[j].hidden && strcasecmp(marks[j].bucket, own_id) == 0 &&
                       strcasecmp(marks[j].name, main_t[i].name) == 0;
        if (shadowed)
            continue;
        flags[*n] = false;
        if ((st = push_table(ctx, items, n, &cap, &main_t[i])) != DS_OK)
            return st;
    }
    if (owned)
        *owned = flags;
    return DS_OK;
}

ds_status_t ds_cmd_branch_table_list(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, ds_be_table_t **items, size_t *n)
{
    return view_tables(ctx, p, ds_cmd_branch_logical(p, bucket), items, n, NULL);
}

/* Buckets as the branch sees them: main's plus the ones created in the branch (ids logical). */
ds_status_t ds_cmd_branch_bucket_list(ds_ctx_t *ctx, ds_proj_t *p, ds_be_bucket_t **items, size_t *n)
{
    ds_be_bucket_t *all;
    size_t n_all;
    *items = NULL;
    *n = 0;
    ds_be_mark_t *marks;
    size_t n_marks;
    ds_status_t st = ds_be_bucket_list(p->be, &p->call, &all, &n_all);
    if (st == DS_OK)
        st = ds_be_marks_list(p->be, &p->call, p->branch_prefix, &marks, &n_marks);
    if (st != DS_OK)
        return st;
    ds_be_bucket_t *out = ds_arena_alloc(ctx->arena, sizeof(*out) * (n_all + 1));
    if (!out)
        return oom(ctx);
    size_t k = 0;
    for (size_t i = 0; i < n_all; i++) {
        ds_be_bucket_t b = all[i];
        if (b.id[0] == '_' && !ds_cmd_branch_owns(p, b.id))
            continue; /* another branch's storage */
        const char *own = own_bucket(ctx, p, b.id);
        if (!own)
            return oom(ctx);
        bool gone = false; /* main's bucket, deleted in the branch */
        for (size_t j = 0; j < n_marks && !gone; j++)
            gone = marks[j].hidden && !marks[j].name[0] && strcasecmp(marks[j].bucket, own) == 0;
        if (ds_cmd_branch_owns(p, b.id)) {
            const char *logical = ds_cmd_branch_logical(p, b.id);
            bool in_main = false;
            for (size_t j = 0; j < n_all && !in_main; j++)
                in_main = strcasecmp(all[j].id, logical) == 0;
            if (in_main && !gone)
                continue; /* listed as main's bucket */
            b.id = logical;
        } else if (gone) {
            continue; /* listed as the branch's own bucket when created again */
        }
        ds_be_table_t *t;
        size_t nt;
        if ((st = view_tables(ctx, p, b.id, &t, &nt, NULL)) != DS_OK)
            return st;
        b.table_count = (int64_t)nt;
        out[k++] = b;
    }
    *items = out;
    *n = k;
    return DS_OK;
}

/* The bucket as the branch sees it (id logical); 404 when neither the branch nor main has it. */
ds_status_t ds_cmd_branch_bucket_get(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, ds_be_bucket_t *out)
{
    const char *id = bucket;
    ds_status_t st = ds_cmd_branch_resolve_bucket(ctx, p, &id);
    if (st == DS_OK)
        st = ds_be_bucket_get(p->be, &p->call, id, out);
    if (st != DS_OK)
        return st;
    out->id = ds_cmd_branch_logical(p, out->id);
    ds_be_table_t *t;
    size_t nt;
    if ((st = view_tables(ctx, p, out->id, &t, &nt, NULL)) != DS_OK)
        return st;
    out->table_count = (int64_t)nt;
    return DS_OK;
}

/* Creates a bucket only in the branch; 409 when the branch already sees one of that id. */
ds_status_t ds_cmd_branch_bucket_create(ds_ctx_t *ctx, ds_proj_t *p, const ds_be_bucket_t *b)
{
    const char *id = b->id;
    ds_status_t st = ds_cmd_branch_resolve_bucket(ctx, p, &id);
    if (st == DS_OK)
        return ds_err_set(&ctx->err, DS_ALREADY_EXISTS, "bucket \"%s\" already exists in branch \"%s\"", b->id,
                          p->branch);
    if (st != DS_NOT_FOUND)
        return st;
    ds_err_clear(&ctx->err);
    ds_be_bucket_t nb = *b;
    if (!(nb.id = own_bucket(ctx, p, b->id)))
        return oom(ctx);
    return ds_be_bucket_create(p->be, &p->call, &nb);
}

/*
 * Drops bucket (resolved) in the branch, with the rules of main: not empty
 * needs force. The branch's own tables and bucket go and main's bucket and
 * tables are hidden (marks), all in one transaction; main is not written. A
 * crash leaves the branch's bucket as it was or gone, never empty.
 */
ds_status_t ds_cmd_branch_bucket_drop(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, bool force)
{
    const char *logical = ds_cmd_branch_logical(p, bucket);
    const char *own = own_bucket(ctx, p, logical);
    if (!own)
        return oom(ctx);
    ds_be_table_t *t;
    size_t nt;
    bool *owned;
    ds_status_t st = view_tables(ctx, p, logical, &t, &nt, &owned);
    if (st != DS_OK)
        return st;
    if (nt > 0 && !force)
        return ds_err_set(&ctx->err, DS_CONFLICT,
                          "bucket \"%s\" is not empty (%zu tables); delete with force=true to drop its tables too",
                          logical, nt);
    ds_be_mark_t *marks;
    size_t n_marks;
    if ((st = ds_be_marks_list(p->be, &p->call, p->branch_prefix, &marks, &n_marks)) != DS_OK)
        return st;
    ds_be_move_t *moves = ds_arena_alloc(ctx->arena, sizeof(*moves) * (2 * nt + 2));
    if (!moves)
        return oom(ctx);
    size_t n = 0;
    for (size_t i = 0; i < nt; i++) {
        if (owned[i]) {
            moves[n++] = (ds_be_move_t){.kind = DS_MOVE_DROP, .dst_bucket = own, .dst_table = t[i].name,
                                        .expect_version = -1};
            /* a copy of main's table: main's stays hidden (merging drops it) */
            for (size_t j = 0; j < n_marks; j++)
                if (strcasecmp(marks[j].bucket, own) == 0 && strcasecmp(marks[j].name, t[i].name) == 0)
                    moves[n++] = (ds_be_move_t){.kind = DS_MOVE_MARK, .dst_bucket = own, .dst_table = t[i].name,
                                                .expect_version = -1, .mark_version = marks[j].base_version,
                                                .hidden = true};
            continue;
        }
        int64_t version;
        if ((st = ds_be_table_version(p->be, &p->call, t[i].bucket, t[i].name, &version)) != DS_OK)
            return st;
        moves[n++] = (ds_be_move_t){.kind = DS_MOVE_MARK, .dst_bucket = own, .dst_table = t[i].name,
                                    .expect_version = -1, .mark_version = version > 0 ? version : 1, .hidden = true};
    }
    ds_be_bucket_t mb;
    st = ds_be_bucket_get(p->be, &p->call, logical, &mb);
    if (st == DS_OK)
        moves[n++] = (ds_be_move_t){.kind = DS_MOVE_MARK, .dst_bucket = own, .dst_table = "", .expect_version = -1,
                                    .mark_version = 1, .hidden = true};
    else if (st == DS_NOT_FOUND)
        ds_err_clear(&ctx->err);
    else
        return st;
    /* Last: the branch's own bucket, emptied by the drops above. */
    moves[n++] = (ds_be_move_t){.kind = DS_MOVE_DROP_BUCKET, .dst_bucket = own, .expect_version = -1};
    if ((st = ds_be_tables_move(p->be, &p->call, moves, n)) == DS_OK)
        ds_cmd_test_crash_point("branch_bucket_drop");
    return st;
}

/* Drops bucket.table (resolved) in the branch: its own copy goes, main's table is hidden. */
ds_status_t ds_cmd_branch_table_drop(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, const char *table)
{
    const char *own = own_bucket(ctx, p, ds_cmd_branch_logical(p, bucket));
    if (!own)
        return oom(ctx);
    ds_status_t st = ds_cmd_enter_table(ctx, p->rec.id, own, table);
    if (st == DS_OK)
        st = ds_cmd_enter_ddl(ctx, p->rec.id);
    if (st != DS_OK)
        return st;
    ds_be_move_t moves[2];
    size_t n = 0;
    ds_be_mark_t m;
    bool marked;
    if ((st = find_mark(ctx, p, own, table, &m, &marked)) != DS_OK)
        return st;
    if (ds_cmd_branch_owns(p, bucket)) {
        moves[n++] = (ds_be_move_t){.kind = DS_MOVE_DROP, .dst_bucket = bucket, .dst_table = table, .expect_version = -1};
        /* A copy of main's table: main's stays hidden, and merging drops it. */
        if (marked)
            moves[n++] = (ds_be_move_t){.kind = DS_MOVE_MARK, .dst_bucket = own, .dst_table = table,
                                        .expect_version = -1, .mark_version = m.base_version, .hidden = true};
    } else {
        int64_t version;
        if ((st = ds_be_table_version(p->be, &p->call, bucket, table, &version)) != DS_OK)
            return st;
        moves[n++] = (ds_be_move_t){.kind = DS_MOVE_MARK, .dst_bucket = own, .dst_table = table, .expect_version = -1,
                                    .mark_version = version > 0 ? version : 1, .hidden = true};
    }
    return ds_be_tables_move(p->be, &p->call, moves, n);
}

ds_status_t ds_cmd_branch_read_table(ds_ctx_t *ctx, const char *project, const char *branch, const char *bucket,
                                     const char *table, const char **phys_bucket, const char **phys_table)
{
    ds_proj_t p;
    ctx->branch = branch;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st == DS_OK)
        st = ds_cmd_resolve_table(ctx, &p, &bucket, &table, false, NULL, NULL);
    if (st == DS_OK && p.linked_bucket) /* its physical table is another project's: no name of this one */
        st = ds_err_set(&ctx->err, DS_INVALID_ARGUMENT, "bucket \"%s\" is a linked bucket", p.linked_bucket);
    if (st != DS_OK)
        return st;
    *phys_bucket = bucket;
    *phys_table = table;
    return DS_OK;
}

/* ---- branch commands ---- */

/* Opens project for a branch command (main view) and finds branch id in it. */
/*
 * Opens branch id of project. writes: what the operation changes, checked
 * against the key's scope before anything about the branch is looked up:
 * WRITES_NONE (a read), WRITES_BRANCH (only the branch's own storage: pull),
 * WRITES_MAIN (main or the set of branches: delete, merge).
 */
typedef enum { WRITES_NONE, WRITES_BRANCH, WRITES_MAIN } writes_t;

static ds_status_t open_branch(ds_ctx_t *ctx, const char **project, const char *id, ds_proj_t *p, ds_be_branch_t *b,
                               writes_t writes)
{
    ctx->branch = NULL;
    ds_status_t st = ds_cmd_open_project(ctx, project, p);
    if (st == DS_OK && writes != WRITES_NONE) {
        ctx->branch = writes == WRITES_BRANCH ? id : NULL;
        st = ds_cmd_require_write(ctx);
        ctx->branch = NULL;
    }
    if (st == DS_OK)
        st = check_branch_id(ctx, id, "branch");
    if (st == DS_OK)
        st = ds_cmd_require_cap(ctx, p, DS_CAP_BRANCHES, "development branches");
    if (st == DS_OK)
        st = find_branch(ctx, p, id, b);
    if (st != DS_OK)
        return st;
    p->branch = b->id;
    p->branch_prefix = prefix_of(ctx, b->id);
    return p->branch_prefix ? DS_OK : oom(ctx);
}

ds_status_t ds_cmd_branch_create(ds_ctx_t *ctx, const char *project, const char *id, const char *name,
                                 ds_be_branch_t *out)
{
    ds_proj_t p;
    char gen[24];
    ctx->branch = NULL;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st != DS_OK)
        return st;
    if (!id) {
        snprintf(gen, sizeof(gen), "br-%08x", (unsigned)randombytes_random());
        id = gen;
    }
    if ((st = check_branch_id(ctx, id, "id")) != DS_OK)
        return st;
    if (name && (strlen(name) == 0 || strlen(name) > 256))
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "name", "branch name must have 1-256 bytes");
    if ((st = ds_cmd_require_cap(ctx, &p, DS_CAP_BRANCHES, "development branches")) != DS_OK)
        return st;
    if ((st = ds_cmd_enter_ddl(ctx, project)) != DS_OK)
        return st;
    ds_be_branch_t b = {.id = ds_arena_strdup(ctx->arena, id), .created_at = ds_now()};
    b.name = name ? name : b.id;
    if (!b.id)
        return oom(ctx);
    if ((st = ds_be_branch_create(p.be, &p.call, &b)) != DS_OK)
        return st;
    *out = b;
    return DS_OK;
}

ds_status_t ds_cmd_branch_list(ds_ctx_t *ctx, const char *project, ds_be_branch_t **items, size_t *n)
{
    ds_proj_t p;
    ctx->branch = NULL;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st == DS_OK)
        st = ds_cmd_require_cap(ctx, &p, DS_CAP_BRANCHES, "development branches");
    if (st != DS_OK)
        return st;
    return ds_be_branch_list(p.be, &p.call, items, n);
}

ds_status_t ds_cmd_branch_get(ds_ctx_t *ctx, const char *project, const char *id, ds_branch_info_t *out)
{
    ds_proj_t p;
    memset(out, 0, sizeof(*out));
    ds_status_t st = open_branch(ctx, &project, id, &p, &out->branch, WRITES_NONE);
    if (st != DS_OK)
        return st;
    ds_be_bucket_t *buckets;
    size_t n_buckets, cap = 0;
    if ((st = ds_cmd_branch_bucket_list(ctx, &p, &buckets, &n_buckets)) != DS_OK)
        return st;
    for (size_t i = 0; i < n_buckets; i++) {
        ds_be_table_t *t;
        size_t nt;
        bool *owned;
        if ((st = view_tables(ctx, &p, buckets[i].id, &t, &nt, &owned)) != DS_OK)
            return st;
        for (size_t j = 0; j < nt; j++) {
            if (out->n_tables == cap) {
                size_t nc = cap ? cap * 2 : 16;
                ds_branch_table_t *g = ds_arena_alloc(ctx->arena, sizeof(*g) * nc);
                if (!g)
                    return oom(ctx);
                if (out->n_tables)
                    memcpy(g, out->tables, sizeof(*g) * out->n_tables);
                out->tables = g;
                cap = nc;
            }
            out->tables[out->n_tables++] = (ds_branch_table_t){
                .id = ds_arena_printf(ctx->arena, "%s.%s", buckets[i].id, t[j].name),
                .source = owned[j] ? "branch" : "main"};
        }
    }
    return DS_OK;
}

ds_status_t ds_cmd_branch_delete(ds_ctx_t *ctx, const char *project, const char *id)
{
    ds_proj_t p;
    ds_be_branch_t b;
    ds_status_t st = open_branch(ctx, &project, id, &p, &b, WRITES_MAIN);
    if (st == DS_OK)
        st = ds_cmd_enter_ddl(ctx, project);
    if (st != DS_OK)
        return st;
    st = ds_be_branch_drop(p.be, &p.call, b.id, p.branch_prefix);
    ds_cmd_alias_forget(p.rec.id); /* the branch's aliases went with it (cmd/alias.c caches them) */
    if (st != DS_OK)
        return st;
    /* The branch's workspaces read a view of storage that is gone: they go with it. */
    ds_cmd_ws_drop_all(ctx, project, b.id);
    ds_cmd_compact_soon(p.rec.id);
    return DS_OK;
}

ds_status_t ds_cmd_branch_pull(ds_ctx_t *ctx, const char *project, const char *branch, const char *bucket,
                               const char *table, ds_be_table_t *out)
{
    ds_proj_t p;
    ds_be_branch_t b;
    ds_status_t st = open_branch(ctx, &project, branch, &p, &b, WRITES_BRANCH);
    if (st == DS_OK)
        st = ds_ident_check_bucket(bucket, "bucket", &ctx->err);
    if (st == DS_OK)
        st = ds_ident_check_name(table, "table", &ctx->err);
    if (st != DS_OK)
        return st;
    /* Main's table, whatever the branch did with it. */
    ds_be_table_t m;
    if ((st = ds_be_table_get(p.be, &p.call, bucket, table, &m)) != DS_OK)
        return st;
    const char *own = own_bucket(ctx, &p, m.bucket);
    if (!own)
        return oom(ctx);
    if ((st = ds_cmd_enter_table(ctx, project, own, m.name)) != DS_OK || (st = ds_cmd_enter_ddl(ctx, project)) != DS_OK)
        return st;
    /* The branch forgets its copy and its drop: it reads main's current data again. */
    bool gone;
    if ((st = bucket_hidden(ctx, &p, own, &gone)) != DS_OK)
        return st;
    ds_be_table_t *mt = NULL;
    size_t n_mt = 0;
    if (gone && (st = ds_be_table_list(p.be, &p.call, m.bucket, &mt, &n_mt)) != DS_OK)
        return st;
    ds_be_move_t *moves = ds_arena_alloc(ctx->arena, sizeof(*moves) * (n_mt + 3));
    if (!moves)
        return oom(ctx);
    size_t n = 0;
    moves[n++] = (ds_be_move_t){.kind = DS_MOVE_DROP, .dst_bucket = own, .dst_table = m.name, .expect_version = -1};
    moves[n++] = (ds_be_move_t){.kind = DS_MOVE_UNMARK, .dst_bucket = own, .dst_table = m.name, .expect_version = -1};
    if (gone) {
        /* Main's bucket was deleted in the branch: it comes back with the pulled table only; main's other tables
         * stay hidden, each with its own mark. */
        for (size_t i = 0; i < n_mt; i++) {
            ds_be_mark_t mk;
            ds_be_table_t ot;
            bool marked, has_own;
            if (strcasecmp(mt[i].name, m.name) == 0)
                continue;
            if ((st = find_mark(ctx, &p, own, mt[i].name, &mk, &marked)) != DS_OK ||
                (st = lookup(ctx, &p, own, mt[i].name, &ot, &has_own)) != DS_OK)
                return st;
            if (marked || has_own)
                continue;
            int64_t version;
            if ((st = ds_be_table_version(p.be, &p.call, mt[i].bucket, mt[i].name, &version)) != DS_OK)
                return st;
            moves[n++] = (ds_be_move_t){.kind = DS_MOVE_MARK, .dst_bucket = own, .dst_table = mt[i].name,
                                        .expect_version = -1, .mark_version = version > 0 ? version : 1,
                                        .hidden = true};
        }
        moves[n++] = (ds_be_move_t){.kind = DS_MOVE_UNMARK, .dst_bucket = own, .dst_table = "", .expect_version = -1};
    }
    if ((st = ds_be_tables_move(p.be, &p.call, moves, n)) != DS_OK)
        return st;
    return ds_be_table_get(p.be, &p.call, m.bucket, m.name, out);
}

/* One table a merge applies: the branch's copy (own_bucket set) or its drop of main's table (own_bucket NULL). */
typedef struct {
    const char *own_bucket; /* physical bucket of the branch's table, or NULL for a hidden main table */
    const char *mark_bucket;
    const char *logical;    /* main's bucket */
    const char *table;
    int64_t base;           /* the marked main version; 0: the branch created the table */
} merge_item_t;

static ds_status_t push_item(ds_ctx_t *ctx, merge_item_t **items, size_t *n, size_t *cap, merge_item_t it)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        merge_item_t *grown = ds_arena_alloc(ctx->arena, sizeof(*grown) * nc);
        if (!grown)
            return oom(ctx);
        if (*n)
            memcpy(grown, *items, sizeof(*grown) * *n);
        *items = grown;
        *cap = nc;
    }
    (*items)[(*n)++] = it;
    return DS_OK;
}

static bool planned(const merge_item_t *items, size_t n, const char *mark_bucket, const char *table)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(items[i].mark_bucket, mark_bucket) == 0 && strcasecmp(items[i].table, table) == 0)
            return true;
    return false;
}

/* Everything the branch would apply to main now (ctx arena). */
static ds_status_t merge_plan(ds_ctx_t *ctx, ds_proj_t *p, merge_item_t **items, size_t *n, ds_be_mark_t **marks,
                              size_t *n_marks)
{
    ds_be_bucket_t *all;
    size_t n_all, cap = 0;
    *items = NULL;
    *n = 0;
    ds_status_t st = ds_be_bucket_list(p->be, &p->call, &all, &n_all);
    if (st == DS_OK)
        st = ds_be_marks_list(p->be, &p->call, p->branch_prefix, marks, n_marks);
    if (st != DS_OK)
        return st;
    /* the branch's own tables */
    for (size_t i = 0; i < n_all; i++) {
        if (!ds_cmd_branch_owns(p, all[i].id))
            continue;
        ds_be_table_t *t;
        size_t nt;
        if ((st = ds_be_table_list(p->be, &p->call, all[i].id, &t, &nt)) != DS_OK)
            return st;
        for (size_t j = 0; j < nt; j++) {
            merge_item_t it = {.own_bucket = all[i].id, .mark_bucket = all[i].id,
                               .logical = ds_cmd_branch_logical(p, all[i].id), .table = t[j].name};
            for (size_t m = 0; m < *n_marks; m++)
                if (strcasecmp((*marks)[m].bucket, all[i].id) == 0 && strcasecmp((*marks)[m].name, t[j].name) == 0)
                    it.base = (*marks)[m].base_version;
            if ((st = push_item(ctx, items, n, &cap, it)) != DS_OK)
                return st;
        }
    }
    /* main's tables the branch dropped */
    for (size_t m = 0; m < *n_marks; m++) {
        const ds_be_mark_t *mk = &(*marks)[m];
        if (!mk->hidden || !mk->name[0] || planned(*items, *n, mk->bucket, mk->name))
            continue;
        merge_item_t it = {.mark_bucket = mk->bucket, .logical = ds_cmd_branch_logical(p, mk->bucket),
                           .table = mk->name, .base = mk->base_version};
        if ((st = push_item(ctx, items, n, &cap, it)) != DS_OK)
            return st;
    }
    /* main's tables in a bucket the branch deleted that the branch never saw: they conflict (base 0) */
    for (size_t m = 0; m < *n_marks; m++) {
        const ds_be_mark_t *mk = &(*marks)[m];
        if (!mk->hidden || mk->name[0])
            continue;
        const char *logical = ds_cmd_branch_logical(p, mk->bucket);
        ds_be_table_t *t;
        size_t nt;
        st = ds_be_table_list(p->be, &p->call, logical, &t, &nt);
        if (st == DS_NOT_FOUND) {
            ds_err_clear(&ctx->err);
            continue;
        }
        if (st != DS_OK)
            return st;
        for (size_t j = 0; j < nt; j++) {
            if (planned(*items, *n, mk->bucket, t[j].name))
                continue;
            merge_item_t it = {.mark_bucket = mk->bucket, .logical = logical, .table = t[j].name, .base = 0};
            if ((st = push_item(ctx, items, n, &cap, it)) != DS_OK)
                return st;
        }
    }
    if (!*items && !(*items = ds_arena_alloc(ctx->arena, sizeof(merge_item_t))))
        return oom(ctx);
    return DS_OK;
}

/*
 * After the tables: buckets of main the branch deleted go, buckets the
 * branch created (also empty ones) are created in main, and the branch's now empty buckets go, so the branch holds no
 * storage any more. Each step is safe to repeat: a crash in between leaves
 * an empty branch bucket that the next merge (or the branch's delete) removes.
 */
static ds_status_t merge_buckets(ds_ctx_t *ctx, ds_proj_t *p, bool force)
{
    ds_be_bucket_t *all;
    size_t n_all;
    ds_be_mark_t *marks;
    size_t n_marks;
    ds_status_t st = ds_be_marks_list(p->be, &p->call, p->branch_prefix, &marks, &n_marks);
    /* Buckets of main the branch deleted: main's goes (its tables went with the table moves), unless the branch
     * created it again; the mark goes last, so a crash in between repeats the drop on the next merge. */
    for (size_t i = 0; st == DS_OK && i < n_marks; i++) {
        if (!marks[i].hidden || marks[i].name[0])
            continue;
        st = ds_be_bucket_get(p->be, &p->call, marks[i].bucket, &(ds_be_bucket_t){0});
        if (st == DS_NOT_FOUND) {
            ds_err_clear(&ctx->err);
            st = ds_be_bucket_drop(p->be, &p->call, ds_cmd_branch_logical(p, marks[i].bucket), force);
            if (st == DS_NOT_FOUND) {
                ds_err_clear(&ctx->err);
                st = DS_OK;
            }
        }
        ds_be_move_t um = {.kind = DS_MOVE_UNMARK, .dst_bucket = marks[i].bucket, .dst_table = "",
                           .expect_version = -1};
        if (st == DS_OK)
            st = ds_be_tables_move(p->be, &p->call, &um, 1);
    }
    if (st == DS_OK)
        st = ds_be_bucket_list(p->be, &p->call, &all, &n_all);
    for (size_t i = 0; st == DS_OK && i < n_all; i++) {
        if (!ds_cmd_branch_owns(p, all[i].id))
            continue;
        ds_be_bucket_t m = all[i];
        m.id = ds_cmd_branch_logical(p, all[i].id);
        st = ds_be_bucket_get(p->be, &p->call, m.id, &(ds_be_bucket_t){0});
        if (st == DS_NOT_FOUND) {
            ds_err_clear(&ctx->err);
            st = ds_be_bucket_create(p->be, &p->call, &m);
        }
        if (st == DS_OK)
            st = ds_be_bucket_drop(p->be, &p->call, all[i].id, false);
        if (st == DS_CONFLICT) {
            /* a table the branch wrote after the merge planned (it stays in the branch) */
            ds_err_clear(&ctx->err);
            st = DS_OK;
        }
    }
    return st;
}

static int key_cmp(const void *a, const void *b) { return strcasecmp(*(const char *const *)a, *(const char *const *)b); }

ds_status_t ds_cmd_branch_merge(ds_ctx_t *ctx, const char *project, const char *branch, bool force,
                                const char ***merged, size_t *n_merged, const char ***conflicts, size_t *n_conflicts)
{
    ds_proj_t p;
    ds_be_branch_t b;
    *merged = *conflicts = NULL;
    *n_merged = *n_conflicts = 0;
    ds_status_t st = open_branch(ctx, &project, branch, &p, &b, WRITES_MAIN);
    if (st != DS_OK)
        return st;
    merge_item_t *items;
    size_t n;
    ds_be_mark_t *marks;
    size_t n_marks;
    if ((st = merge_plan(ctx, &p, &items, &n, &marks, &n_marks)) != DS_OK)
        return st;
    /*
     * The write slots of every table involved (the branch's and main's), in
     * one order so two merges cannot deadlock, then the catalog slot (the
     * lock order of cmd/cmd.h: table slots first). Tables the branch writes
     * for the first time after this point stay in the branch.
     */
    const char **keys = ds_arena_alloc(ctx->arena, sizeof(char *) * (2 * n + 1));
    if (!keys)
        return oom(ctx);
    size_t n_keys = 0;
    for (size_t i = 0; i < n; i++) {
        keys[n_keys++] = ds_arena_printf(ctx->arena, "%s\n%s", items[i].mark_bucket, items[i].table);
        keys[n_keys++] = ds_arena_printf(ctx->arena, "%s\n%s", items[i].logical, items[i].table);
    }
    for (size_t i = 0; i < n_keys; i++)
        if (!keys[i])
            return oom(ctx);
    qsort(keys, n_keys, sizeof(char *), key_cmp);
    for (size_t i = 0; i < n_keys; i++) {
        if (i && strcasecmp(keys[i], keys[i - 1]) == 0)
            continue;
        const char *nl = strchr(keys[i], '\n');
        const char *bucket = ds_arena_strndup(ctx->arena, keys[i], (size_t)(nl - keys[i]));
        if (!bucket)
            return oom(ctx);
        if ((st = ds_cmd_enter_table(ctx, project, bucket, nl + 1)) != DS_OK)
            return st;
    }
    if ((st = ds_cmd_enter_ddl(ctx, project)) != DS_OK)
        return st;
    /* Planned again under the slots: what was planned cannot change any more. */
    merge_item_t *locked = items;
    size_t n_locked = n;
    if ((st = merge_plan(ctx, &p, &items, &n, &marks, &n_marks)) != DS_OK)
        return st;
    ds_be_move_t *moves = ds_arena_alloc(ctx->arena, sizeof(*moves) * (3 * n + 1));
    const char **names = ds_arena_alloc(ctx->arena, sizeof(char *) * (n + 1));
    const char **bad = ds_arena_alloc(ctx->arena, sizeof(char *) * (n + 1));
    if (!moves || !names || !bad)
        return oom(ctx);
    size_t n_moves = 0, n_names = 0, n_bad = 0;
    for (size_t i = 0; i < n; i++) {
        merge_item_t *it = &items[i];
        bool held = false;
        for (size_t j = 0; j < n_locked && !held; j++)
            held = strcasecmp(locked[j].mark_bucket, it->mark_bucket) == 0 && strcasecmp(locked[j].table, it->table) == 0;
        if (!held)
            continue;
        int64_t cur = 0;
        st = ds_be_table_version(p.be, &p.call, it->logical, it->table, &cur);
        bool in_main = st == DS_OK;
        if (st == DS_NOT_FOUND) {
            ds_err_clear(&ctx->err);
            st = DS_OK;
        }
        if (st != DS_OK)
            return st;
        if (!it->own_bucket && !in_main) {
            /* main dropped it too: nothing to apply, only the mark goes */
            moves[n_moves++] = (ds_be_move_t){.kind = DS_MOVE_UNMARK, .dst_bucket = it->mark_bucket,
                                              .dst_table = it->table, .expect_version = -1};
            continue;
        }
        const char *name = ds_arena_printf(ctx->arena, "%s.%s", it->logical, it->table);
        if (!name)
            return oom(ctx);
        /* The conflict rule: main must still be what the branch decided on. */
        if (it->base == 0 ? in_main : (!in_main || cur != it->base))
            bad[n_bad++] = name;
        names[n_names++] = name;
        int64_t expect = force ? -1 : it->base;
        if (it->own_bucket) {
            moves[n_moves++] = (ds_be_move_t){.kind = DS_MOVE_COPY, .src_bucket = it->own_bucket, .src_table = it->table,
                                              .dst_bucket = it->logical, .dst_table = it->table,
                                              .expect_version = expect, .mark_version = 0};
            moves[n_moves++] = (ds_be_move_t){.kind = DS_MOVE_DROP, .dst_bucket = it->own_bucket,
                                              .dst_table = it->table, .expect_version = -1};
        } else {
            moves[n_moves++] = (ds_be_move_t){.kind = DS_MOVE_DROP, .dst_bucket = it->logical, .dst_table = it->table,
                                              .expect_version = expect};
        }
        moves[n_moves++] = (ds_be_move_t){.kind = DS_MOVE_UNMARK, .dst_bucket = it->mark_bucket,
                                          .dst_table = it->table, .expect_version = -1};
    }
    if (n_bad && !force) {
        *conflicts = bad;
        *n_conflicts = n_bad;
        ds_buf_t list = {0};
        for (size_t i = 0; i < n_bad && i < 20; i++)
            ds_buf_printf(&list, "%s\"%s\"", i ? ", " : "", bad[i]);
        st = ds_err_set(&ctx->err, DS_CONFLICT,
                        "merge of branch \"%s\" refused: main changed %s after the branch copied or dropped %s; "
                        "nothing was merged (merge with force to overwrite main)",
                        p.branch, ds_buf_text(&list), n_bad == 1 ? "it" : "them");
        ds_buf_free(&list);
        return st;
    }
    /* The branch's aliases go to main in the same transaction; tables planned but not held stay in the branch. */
    const char **stay = ds_arena_alloc(ctx->arena, sizeof(char *) * (n + 1));
    size_t n_stay = 0;
    if (!stay)
        return oom(ctx);
    for (size_t i = 0; i < n; i++) {
        bool held = false;
        for (size_t j = 0; j < n_locked && !held; j++)
            held = strcasecmp(locked[j].mark_bucket, items[i].mark_bucket) == 0 &&
                   strcasecmp(locked[j].table, items[i].table) == 0;
        if (!held && !(stay[n_stay++] = ds_arena_printf(ctx->arena, "%s\n%s", items[i].logical, items[i].table)))
            return oom(ctx);
    }
    ds_be_move_t *alias_moves;
    size_t n_alias_moves;
    if ((st = ds_cmd_alias_merge_plan(ctx, &p, stay, n_stay, &alias_moves, &n_alias_moves)) != DS_OK)
        return st;
    if (n_alias_moves) {
        ds_be_move_t *all = ds_arena_alloc(ctx->arena, sizeof(*all) * (n_moves + n_alias_moves));
        if (!all)
            return oom(ctx);
        if (n_moves)
            memcpy(all, moves, sizeof(*all) * n_moves);
        memcpy(all + n_moves, alias_moves, sizeof(*all) * n_alias_moves);
        moves = all;
        n_moves += n_alias_moves;
    }
    if (n_moves) {
        st = ds_be_tables_move(p.be, &p.call, moves, n_moves);
        if (n_alias_moves)
            ds_cmd_alias_forget(p.rec.id); /* also after a failure: the commit may have happened */
        if (st != DS_OK)
            return st;
    }
    *merged = names;
    *n_merged = n_names;
    st = merge_buckets(ctx, &p, force);
    /* Main's replaced tables and the branch's copies freed their storage. */
    if (n_moves)
        ds_cmd_compact_soon(p.rec.id);
    return st;
}

ds_status_t ds_cmd_branch_storage_stats(ds_proj_t *p, ds_be_project_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    /* Only a backend with branches stores any (the tiny test plugin cannot even list buckets). */
    if (!(p->be->ops->capabilities & DS_CAP_BRANCHES))
        return DS_OK;
    ds_be_bucket_t *buckets = NULL;
    size_t n = 0;
    ds_status_t st = ds_be_bucket_list(p->be, &p->call, &buckets, &n);
    for (size_t i = 0; st == DS_OK && i < n; i++) {
        if (strncmp(buckets[i].id, BR_PREFIX, strlen(BR_PREFIX)) != 0)
            continue;
        ds_be_table_t *t;
        size_t nt;
        if ((st = ds_be_table_list(p->be, &p->call, buckets[i].id, &t, &nt)) != DS_OK)
            break;
        out->buckets++;
        for (size_t j = 0; j < nt; j++) {
            out->tables++;
            out->rows += t[j].rows;
            out->bytes += t[j].bytes;
        }
    }
    return st;
}
