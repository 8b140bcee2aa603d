/*
 * share.c - shared buckets, linked buckets and the workspaces' read-only role.
 *
 * DESIGN
 * A project shares one of its buckets with every project ("organization") or
 * with listed projects; a project the share includes links it under a bucket
 * id of its own. The records live in the global catalog only
 * (catalog/shares.c): nothing of a share or a link is written into a project
 * file, so no step spans two files.
 *
 * How a linked name resolves: every command resolves its bucket and table
 * names through cmd/names.c. When a bucket is not the project's own (in a
 * branch: not seen by the branch either), names.c asks ds_cmd_share_follow:
 * if the project has a link of that id, the share is read again (it must
 * still exist and include the project, or the request gets 403 naming what
 * was revoked), the source project is opened with a pin for this request only
 * (so the open-file cap may detach it as soon as the request ends), and the
 * command's ds_proj_t becomes the source project's, with linked_project and
 * linked_bucket set. The read then runs on the source's current table:
 * changes propagate instantly and nothing is copied. A swapped ds_proj_t
 * serves that one bucket: naming any other bucket through it is refused
 * (ds_cmd_share_again), so a request can never slide from a linked bucket
 * into the rest of the source project.
 *
 * Writes: a linked bucket is read-only. Every writer checks
 * ds_cmd_share_refuse_write after resolving (403 naming the link), and as a
 * second fence, once a request has read through a link (ctx->linked_read),
 * ds_cmd_enter gives it no table or project catalog write slot at all.
 *
 * Rules of the source: a bucket that links read cannot be dropped, nor its
 * tables or columns (409 naming the linking projects); unsharing it is
 * refused too unless forced (the links then answer 403 until unlinked). A
 * linked bucket cannot be shared again. Dropping a shared bucket (no links)
 * removes its share first, then drops the bucket; a failed drop puts the
 * share back. A crash between the two leaves the bucket unshared, which is
 * the safe side: nothing can link a bucket by accident. Deleting a project
 * forgets its shares, its links and every link to its buckets.
 *
 * Lock order: share and unshare hold the source project's catalog slot; link
 * and unlink hold the catalog slots of both projects, taken in the order of
 * their ids, so two links in opposite directions cannot wait for each other.
 * Bucket and table drops hold the source's catalog slot while they check the
 * links, so a link cannot appear between the check and the drop.
 *
 * Read-only role: the workspaces of a project may read each of its buckets
 * (own or linked) unless the project revoked it
 * (RevokeBucketAccessFromReadOnlyRole); a grant lifts the revocation. The
 * workspace storage scan checks it at every bind (cmd/workspace.c).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "catalog/catalog.h"
#include "catalog/shares.h"
#include "cmd/internal.h"

static ds_status_t oom(ds_ctx_t *ctx) { return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory"); }

/* Share, link and read-only changes are made on the main branch only. */
/*
 * Opens *project for a change of its main storage (what names the change in
 * the error): a write key, and no branch. A read key learns nothing else.
 */
static ds_status_t open_main_for_change(ds_ctx_t *ctx, const char **project, ds_proj_t *p, const char *what)
{
    ds_status_t st = ds_cmd_open_project(ctx, project, p);
    if (st == DS_OK)
        st = ds_cmd_require_write(ctx);
    if (st == DS_OK && p->branch)
        st = ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "branch",
                         "%s is a change of the project's main storage: send it without a branch", what);
    return st;
}

/* Opens project id for a read of its linked bucket: no key check, main branch, ctx's own project kept. */
static ds_status_t open_source(ds_ctx_t *ctx, const char *id, ds_proj_t *out)
{
    const char *own = ctx->project_id, *branch = ctx->branch;
    ds_err_t saved = ctx->err;
    ctx->branch = NULL;
    ds_status_t st = ds_cmd_open_project_trusted(ctx, &id, out);
    ctx->branch = branch;
    ctx->project_id = own;
    if (st == DS_NOT_FOUND)
        st = ds_err_set(&ctx->err, DS_NOT_FOUND, "project \"%s\" that a linked bucket reads no longer exists", id);
    else if (st == DS_OK)
        ctx->err = saved;
    return st;
}

ds_status_t ds_cmd_share_follow(ds_ctx_t *ctx, ds_proj_t *p, const char **bucket)
{
    ds_link_rec_t l;
    ds_share_rec_t s;
    bool found = false, shared = false;
    ds_err_t saved = ctx->err;
    if (p->linked_bucket)
        return ds_cmd_share_again(ctx, p, bucket);
    ds_status_t st = ds_catalog_link_get(ctx->arena, p->rec.id, *bucket, &l, &found, &ctx->err);
    if (st != DS_OK)
        return st;
    if (!found) {
        ctx->err = saved;
        return DS_NOT_FOUND;
    }
    if ((st = ds_catalog_share_get(ctx->arena, l.source_project, l.source_bucket, &s, &shared, &ctx->err)) != DS_OK)
        return st;
    if (!shared || !ds_catalog_share_includes(&s, p->rec.id))
        return ds_err_set(&ctx->err, DS_PERMISSION_DENIED,
                          "linked bucket \"%s\" reads bucket \"%s\" of project \"%s\", which no longer shares it with "
                          "project \"%s\"",
                          l.bucket, l.source_bucket, l.source_project, p->rec.id);
    ds_proj_t src;
    memset(&src, 0, sizeof(src));
    if ((st = open_source(ctx, l.source_project, &src)) != DS_OK)
        return st;
    /* The source bucket's stored spelling was recorded by the link; it cannot be dropped while linked. */
    src.linked_project = p->rec.id[0] ? ds_arena_strdup(ctx->arena, p->rec.id) : NULL;
    src.linked_bucket = l.bucket;
    if (!src.linked_project)
        return oom(ctx);
    ctx->linked_read = ds_arena_printf(ctx->arena, "bucket \"%s\" is linked from bucket \"%s\" of project \"%s\"",
                                       l.bucket, l.source_bucket, src.rec.id);
    if (!ctx->linked_read)
        return oom(ctx);
    *p = src;
    *bucket = l.source_bucket;
    return DS_OK;
}

ds_status_t ds_cmd_share_again(ds_ctx_t *ctx, ds_proj_t *p, const char **bucket)
{
    /* The source's spelling (already resolved once) or the link's own id; nothing else of the source. */
    bool same = strcasecmp(*bucket, p->linked_bucket) == 0;
    if (!same) {
        ds_link_rec_t l;
        bool found = false;
        ds_status_t st = ds_catalog_link_get(ctx->arena, p->linked_project, p->linked_bucket, &l, &found, &ctx->err);
        if (st != DS_OK)
            return st;
        same = found && strcasecmp(*bucket, l.source_bucket) == 0;
    }
    if (!same)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "bucket",
                           "this request reads linked bucket \"%s\"; it cannot also name bucket \"%s\"", p->linked_bucket,
                           *bucket);
    ds_link_rec_t l;
    bool found = false;
    ds_status_t st = ds_catalog_link_get(ctx->arena, p->linked_project, p->linked_bucket, &l, &found, &ctx->err);
    if (st != DS_OK)
        return st;
    if (!found)
        return ds_err_set(&ctx->err, DS_NOT_FOUND, "bucket \"%s\" not found", *bucket);
    *bucket = l.source_bucket;
    return DS_OK;
}

ds_status_t ds_cmd_share_refuse_write(ds_ctx_t *ctx, const ds_proj_t *p)
{
    if (!p->linked_bucket)
        return DS_OK;
    return ds_err_set(&ctx->err, DS_PERMISSION_DENIED,
                      "bucket \"%s\" is linked from project \"%s\": a linked bucket is read-only (unlink it with "
                      "DELETE .../buckets/%s/link)",
                      p->linked_bucket, p->rec.id, p->linked_bucket);
}

/* "p2 (in.c-l), p3 (in.c-x)": who links bucket of project, or NULL when nobody does. */
static ds_status_t linkers(ds_ctx_t *ctx, const char *project, const char *bucket, const char **text, size_t *n)
{
    ds_link_rec_t *items;
    *text = NULL;
    ds_status_t st = ds_catalog_link_list_source(ctx->arena, project, bucket, &items, n, &ctx->err);
    if (st != DS_OK || *n == 0)
        return st;
    const char *t = "";
    for (size_t i = 0; i < *n && t; i++)
        t = ds_arena_printf(ctx->arena, "%s%s\"%s\" (as \"%s\")", t, i ? ", " : "", items[i].project, items[i].bucket);
    if (!t)
        return oom(ctx);
    *text = t;
    return DS_OK;
}

ds_status_t ds_cmd_share_check_source(ds_ctx_t *ctx, const ds_proj_t *p, const char *bucket, const char *what)
{
    const char *who;
    size_t n;
    if (p->branch || p->linked_bucket)
        return DS_OK; /* a branch's own storage and a linked bucket are never a link's source */
    ds_status_t st = linkers(ctx, p->rec.id, bucket, &who, &n);
    if (st != DS_OK || !who)
        return st;
    return ds_err_set(&ctx->err, DS_CONFLICT,
                      "bucket \"%s\" is shared and linked by project%s %s: it cannot be %s until they unlink it", bucket,
                      n > 1 ? "s" : "", who, what);
}

ds_status_t ds_cmd_share_check_free(ds_ctx_t *ctx, const char *project, const char *bucket)
{
    ds_link_rec_t l;
    bool found = false;
    ds_status_t st = ds_catalog_link_get(ctx->arena, project, bucket, &l, &found, &ctx->err);
    if (st == DS_OK && found)
        st = ds_err_set(&ctx->err, DS_ALREADY_EXISTS, "bucket \"%s\" already exists (linked from project \"%s\")",
                        l.bucket, l.source_project);
    return st;
}

static int bucket_cmp(const void *a, const void *b)
{
    return strcmp(((const ds_be_bucket_t *)a)->id, ((const ds_be_bucket_t *)b)->id);
}

ds_status_t ds_cmd_share_list_links(ds_ctx_t *ctx, const ds_proj_t *p, ds_be_bucket_t **items, size_t *n)
{
    ds_link_rec_t *links;
    size_t n_links;
    ds_status_t st = ds_catalog_link_list(ctx->arena, p->rec.id, &links, &n_links, &ctx->err);
    if (st != DS_OK || n_links == 0)
        return st;
    ds_be_bucket_t *all = ds_arena_alloc(ctx->arena, sizeof(*all) * (*n + n_links));
    if (!all)
        return oom(ctx);
    memcpy(all, *items, sizeof(*all) * *n);
    for (size_t i = 0; i < n_links; i++) {
        ds_be_bucket_t *b = &all[*n + i];
        const char *dot = strchr(links[i].bucket, '.');
        *b = (ds_be_bucket_t){.id = links[i].bucket, .created_at = links[i].created_at};
        b->stage = dot ? ds_arena_strndup(ctx->arena, links[i].bucket, (size_t)(dot - links[i].bucket)) : "in";
        b->name = dot ? dot + 1 : links[i].bucket;
        /* The source's description and table count, when it can be read now; sizes count in the source only. */
        ds_proj_t q = *p;
        const char *id = links[i].bucket, *read = ctx->linked_read;
        ds_err_t saved = ctx->err;
        q.branch = q.branch_prefix = NULL;
        ds_be_bucket_t sb;
        if (ds_cmd_share_follow(ctx, &q, &id) == DS_OK && ds_be_bucket_get(q.be, &q.call, id, &sb) == DS_OK) {
            b->description = sb.description;
            b->table_count = sb.table_count;
        }
        ctx->err = saved;
        ctx->linked_read = read; /* a list reads descriptions only: it fences no write of the request */
    }
    *items = all;
    *n += n_links;
    qsort(all, *n, sizeof(*all), bucket_cmp); /* one list in id order, as the backends list buckets */
    return DS_OK;
}

ds_status_t ds_cmd_share_readonly_check(ds_ctx_t *ctx, const char *project, const char *bucket, ds_err_t *err)
{
    (void)ctx;
    bool revoked = false;
    ds_status_t st = ds_catalog_readonly_revoked(project, bucket, &revoked, err);
    if (st == DS_OK && revoked)
        st = ds_err_set(err, DS_PERMISSION_DENIED,
                        "ds_storage_scan: the workspaces of project \"%s\" have no read access to bucket \"%.96s\" "
                        "(revoked from the read-only role)",
                        project, bucket);
    return st;
}

/* ---- commands ---- */

/* Takes the catalog slots of projects a and b (b may be NULL) in the order of their ids. */
static ds_status_t enter_two(ds_ctx_t *ctx, const char *a, const char *b)
{
    if (b && strcmp(b, a) < 0) {
        const char *t = a;
        a = b;
        b = t;
    }
    ds_status_t st = ds_cmd_enter_ddl(ctx, a);
    if (st == DS_OK && b)
        st = ds_cmd_enter_ddl(ctx, b);
    return st;
}

/* The project's own bucket (main), never a link: *bucket becomes its stored spelling. */
static ds_status_t own_bucket(ds_ctx_t *ctx, ds_proj_t *p, const char **bucket, ds_be_bucket_t *out, const char *what)
{
    ds_status_t st = ds_ident_check_bucket(*bucket, "bucket", &ctx->err);
    if (st != DS_OK)
        return st;
    ds_err_t saved = ctx->err;
    if ((st = ds_be_bucket_get(p->be, &p->call, *bucket, out)) == DS_NOT_FOUND) {
        ds_link_rec_t l;
        bool found = false;
        ds_err_t nf = ctx->err;
        ctx->err = saved;
        if ((st = ds_catalog_link_get(ctx->arena, p->rec.id, *bucket, &l, &found, &ctx->err)) != DS_OK)
            return st;
        if (found)
            return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "bucket",
                               "bucket \"%s\" is linked from project \"%s\": a linked bucket cannot be %s", l.bucket,
                               l.source_project, what);
        ctx->err = nf;
        return DS_NOT_FOUND;
    }
    if (st != DS_OK)
        return st;
    if (!out->id)
        return oom(ctx);
    *bucket = out->id;
    return DS_OK;
}

static ds_status_t sharing_of(ds_ctx_t *ctx, const char *project, const char *bucket, ds_bucket_sharing_t *out)
{
    ds_bucket_sharing_t *items;
    size_t n;
    memset(out, 0, sizeof(*out));
    out->bucket = bucket;
    ds_status_t st = ds_cmd_bucket_sharing(ctx, project, &items, &n);
    for (size_t i = 0; st == DS_OK && i < n; i++)
        if (strcasecmp(items[i].bucket, bucket) == 0)
            *out = items[i];
    return st;
}

/*
 * Checks t, a recipient of a share of project's bucket: a project id and, when
 * joining (not leaving) the share, one that exists and is not project itself.
 * label names t in the messages ("to[2]"), field in the error. *out is its
 * stored spelling.
 */
static ds_status_t recipient(ds_ctx_t *ctx, const char *project, const char *t, const char *field, const char *label,
                             bool joining, const char **out)
{
    if (!label)
        return oom(ctx);
    if (!t || ds_ident_check_project(t, &ctx->err) != DS_OK)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, field, "%s is not a project id", label);
    if (!(*out = t = ds_cmd_project_spelling(ctx, t)))
        return oom(ctx);
    if (!joining)
        return DS_OK;
    ds_project_rec_t rec;
    ds_err_t e = {0};
    if (ds_catalog_project_get(t, &rec, &e) != DS_OK || rec.state != DS_PROJECT_READY)
        return ds_err_setf(&ctx->err, DS_NOT_FOUND, field, "project \"%s\" (%s) not found", t, label);
    if (strcmp(t, project) == 0)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, field,
                           "a project does not share a bucket with itself (%s is \"%s\")", label, t);
    return DS_OK;
}

/*
 * The project's own *bucket, then its catalog slot, then the bucket again:
 * it may have been dropped while this request waited for the slot.
 */
static ds_status_t enter_own_bucket(ds_ctx_t *ctx, ds_proj_t *p, const char *project, const char **bucket,
                                    ds_be_bucket_t *out, const char *what)
{
    ds_status_t st = own_bucket(ctx, p, bucket, out, what);
    if (st == DS_OK)
        st = ds_cmd_enter_ddl(ctx, project);
    if (st == DS_OK)
        st = own_bucket(ctx, p, bucket, out, what);
    return st;
}

/* A project that links the bucket and that rec leaves out would lose access: CONFLICT, naming remedy. */
static ds_status_t links_kept(ds_ctx_t *ctx, const ds_share_rec_t *rec, const char *remedy)
{
    ds_link_rec_t *links;
    size_t n;
    ds_status_t st = ds_catalog_link_list_source(ctx->arena, rec->project, rec->bucket, &links, &n, &ctx->err);
    for (size_t i = 0; st == DS_OK && i < n; i++)
        if (!ds_catalog_share_includes(rec, links[i].project))
            return ds_err_set(&ctx->err, DS_CONFLICT,
                              "project \"%s\" links bucket \"%s\" (as \"%s\"): the new share leaves it out; %s",
                              links[i].project, rec->bucket, links[i].bucket, remedy);
    return st;
}

ds_status_t ds_cmd_bucket_share(ds_ctx_t *ctx, const char *project, const char *bucket, const ds_share_in_t *in,
                                ds_be_bucket_t *out, ds_bucket_sharing_t *sh)
{
    ds_proj_t p;
    ds_status_t st = open_main_for_change(ctx, &project, &p, "sharing a bucket");
    if (st == DS_OK)
        st = ds_cmd_require_cap(ctx, &p, DS_CAP_SHARING, "bucket sharing");
    if (st != DS_OK)
        return st;
    if (!in->organization && in->n_projects == 0)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "to",
                           "to must be \"organization\" or a non-empty list of project ids");
    if (in->n_projects > DS_SHARE_MAX_PROJECTS)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "to", "a share may name at most %d projects",
                           DS_SHARE_MAX_PROJECTS);
    const char **targets = ds_arena_alloc(ctx->arena, sizeof(char *) * (in->n_projects ? in->n_projects : 1));
    if (!targets)
        return oom(ctx);
    size_t n_targets = 0;
    for (size_t i = 0; i < in->n_projects; i++) {
        const char *t;
        const char *label = ds_arena_printf(ctx->arena, "to[%zu]", i);
        if ((st = recipient(ctx, project, in->projects[i], "to", label, true, &t)) != DS_OK)
            return st;
        bool dup = false;
        for (size_t k = 0; k < n_targets; k++)
            dup = dup || strcmp(targets[k], t) == 0;
        if (!dup)
            targets[n_targets++] = t;
    }
    ds_be_bucket_t b;
    if ((st = enter_own_bucket(ctx, &p, project, &bucket, &b, "shared again")) != DS_OK)
        return st;
    ds_share_rec_t rec = {.project = project, .bucket = bucket, .organization = in->organization,
                          .targets = in->organization ? NULL : targets, .n_targets = in->organization ? 0 : n_targets,
                          .created_at = ds_now()};
    if (!in->organization && !in->force && (st = links_kept(ctx, &rec, "unlink it first or send force")) != DS_OK)
        return st;
    if ((st = ds_catalog_share_put(&rec, &ctx->err)) != DS_OK)
        return st;
    *out = b;
    return sharing_of(ctx, project, bucket, sh);
}

ds_status_t ds_cmd_bucket_share_member(ds_ctx_t *ctx, const char *project, const char *bucket, const char *member,
                                       const char *field, bool add)
{
    ds_proj_t p;
    ds_be_bucket_t b;
    ds_status_t st = open_main_for_change(ctx, &project, &p, add ? "granting a subscriber" : "revoking a subscriber");
    if (st == DS_OK)
        st = ds_cmd_require_cap(ctx, &p, DS_CAP_SHARING, "bucket sharing");
    if (st != DS_OK)
        return st;
    st = recipient(ctx, project, member, field, field, add, &member);
    if (st == DS_OK)
        st = enter_own_bucket(ctx, &p, project, &bucket, &b, "shared again");
    ds_share_rec_t cur;
    bool found = false;
    if (st == DS_OK)
        st = ds_catalog_share_get(ctx->arena, project, bucket, &cur, &found, &ctx->err);
    if (st != DS_OK)
        return st;
    if (!found && !add)
        return ds_err_set(&ctx->err, DS_NOT_FOUND, "bucket \"%s\" of project \"%s\" is not shared", bucket, project);
    if (found && cur.organization)
        return add ? DS_OK /* every project may link it already */
                   : ds_err_set(&ctx->err, DS_CONFLICT,
                                "bucket \"%s\" is shared with the whole organization: share it with selected projects "
                                "before revoking one of them",
                                bucket);
    if (!found)
        cur = (ds_share_rec_t){.project = project, .bucket = bucket};
    if (ds_catalog_share_includes(&cur, member) == add)
        return DS_OK; /* granted already, or never granted */
    if (add && cur.n_targets >= DS_SHARE_MAX_PROJECTS)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, field, "a share may name at most %d projects",
                           DS_SHARE_MAX_PROJECTS);
    const char **targets = ds_arena_alloc(ctx->arena, sizeof(char *) * (cur.n_targets + 1));
    if (!targets)
        return oom(ctx);
    size_t n = 0;
    for (size_t i = 0; i < cur.n_targets; i++)
        if (strcmp(cur.targets[i], member) != 0)
            targets[n++] = cur.targets[i];
    if (add)
        targets[n++] = member;
    ds_share_rec_t rec = {.project = project, .bucket = bucket, .targets = targets, .n_targets = n,
                          .created_at = ds_now()};
    if (!add && (st = links_kept(ctx, &rec, "unlink it first")) != DS_OK)
        return st;
    if (n > 0)
        return ds_catalog_share_put(&rec, &ctx->err);
    bool removed = false;
    return ds_catalog_share_delete(project, bucket, &removed, &ctx->err);
}

ds_status_t ds_cmd_bucket_unshare(ds_ctx_t *ctx, const char *project, const char *bucket, bool force)
{
    ds_proj_t p;
    ds_be_bucket_t b;
    ds_status_t st = open_main_for_change(ctx, &project, &p, "unsharing a bucket");
    if (st == DS_OK)
        st = own_bucket(ctx, &p, &bucket, &b, "unshared");
    if (st == DS_OK)
        st = ds_cmd_enter_ddl(ctx, project);
    if (st == DS_OK && !force)
        st = ds_cmd_share_check_source(ctx, &p, bucket, "unshared");
    if (st != DS_OK)
        return st;
    bool removed = false;
    if ((st = ds_catalog_share_delete(project, bucket, &removed, &ctx->err)) != DS_OK)
        return st;
    if (!removed)
        return ds_err_set(&ctx->err, DS_NOT_FOUND, "bucket \"%s\" is not shared", bucket);
    return DS_OK;
}

ds_status_t ds_cmd_bucket_link(ds_ctx_t *ctx, const char *project, const char *bucket, const char *source_project,
                               const char *source_bucket, ds_be_bucket_t *out, ds_bucket_sharing_t *sh)
{
    ds_proj_t p, src;
    ds_status_t st = open_main_for_change(ctx, &project, &p, "linking a bucket");
    if (st == DS_OK)
        st = ds_cmd_require_cap(ctx, &p, DS_CAP_SHARING, "linked buckets");
    if (st == DS_OK)
        st = ds_ident_check_bucket(bucket, "bucket", &ctx->err);
    if (st != DS_OK)
        return st;
    if (!source_project || ds_ident_check_project(source_project, &ctx->err) != DS_OK)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "source_project", "source_project must be a project id");
    if (!source_bucket || ds_ident_check_bucket(source_bucket, "source_bucket", &ctx->err) != DS_OK)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "source_bucket", "source_bucket must be a bucket id");
    if (!(source_project = ds_cmd_project_spelling(ctx, source_project)))
        return oom(ctx);
    if (strcmp(source_project, project) == 0)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "source_project",
                           "a project cannot link its own bucket \"%s\"", source_bucket);
    /* Not shared, and a project that does not exist, answer alike: the caller learns nothing of other projects. */
    ds_share_rec_t s;
    bool shared = false;
    if ((st = ds_catalog_share_get(ctx->arena, source_project, source_bucket, &s, &shared, &ctx->err)) != DS_OK)
        return st;
    if (!shared || !ds_catalog_share_includes(&s, project))
        return ds_err_set(&ctx->err, DS_PERMISSION_DENIED,
                          "bucket \"%s\" of project \"%s\" is not shared with project \"%s\"", source_bucket,
                          source_project, project);
    if ((st = enter_two(ctx, project, source_project)) != DS_OK)
        return st;
    /* Under both slots: the share is read again, the bucket id must be free in the target. */
    if ((st = ds_catalog_share_get(ctx->arena, source_project, source_bucket, &s, &shared, &ctx->err)) != DS_OK)
        return st;
    if (!shared || !ds_catalog_share_includes(&s, project))
        return ds_err_set(&ctx->err, DS_PERMISSION_DENIED,
                          "bucket \"%s\" of project \"%s\" is not shared with project \"%s\"", source_bucket,
                          source_project, project);
    ds_be_bucket_t own;
    ds_err_t saved = ctx->err;
    if ((st = ds_be_bucket_get(p.be, &p.call, bucket, &own)) == DS_OK)
        return ds_err_set(&ctx->err, DS_ALREADY_EXISTS, "bucket \"%s\" already exists in project \"%s\"", own.id,
                          project);
    if (st != DS_NOT_FOUND)
        return st;
    ctx->err = saved;
    if ((st = ds_cmd_share_check_free(ctx, project, bucket)) != DS_OK)
        return st;
    memset(&src, 0, sizeof(src));
    if ((st = open_source(ctx, source_project, &src)) != DS_OK)
        return st;
    ds_be_bucket_t sb;
    if ((st = ds_be_bucket_get(src.be, &src.call, source_bucket, &sb)) != DS_OK)
        return st;
    ds_link_rec_t l = {.project = project, .bucket = bucket, .source_project = source_project,
                       .source_bucket = sb.id, .created_at = ds_now()};
    if ((st = ds_catalog_link_insert(&l, &ctx->err)) != DS_OK)
        return st;
    /* A link starts readable by the project's workspaces (Keboola grants the read-only role on link). */
    if ((st = ds_catalog_readonly_set(project, bucket, false, &ctx->err)) != DS_OK)
        return st;
    const char *dot = strchr(bucket, '.');
    *out = (ds_be_bucket_t){.id = bucket, .description = sb.description, .created_at = l.created_at,
                            .table_count = sb.table_count};
    out->stage = dot ? ds_arena_strndup(ctx->arena, bucket, (size_t)(dot - bucket)) : "in";
    out->name = dot ? dot + 1 : bucket;
    return sharing_of(ctx, project, bucket, sh);
}

ds_status_t ds_cmd_bucket_unlink(ds_ctx_t *ctx, const char *project, const char *bucket)
{
    ds_proj_t p;
    ds_link_rec_t l;
    bool found = false;
    ds_status_t st = open_main_for_change(ctx, &project, &p, "unlinking a bucket");
    if (st == DS_OK)
        st = ds_ident_check_bucket(bucket, "bucket", &ctx->err);
    if (st == DS_OK)
        st = ds_catalog_link_get(ctx->arena, project, bucket, &l, &found, &ctx->err);
    if (st != DS_OK)
        return st;
    if (!found)
        return ds_err_set(&ctx->err, DS_NOT_FOUND, "project \"%s\" has no linked bucket \"%s\"", project, bucket);
    if ((st = enter_two(ctx, project, l.source_project)) != DS_OK)
        return st;
    bool removed = false;
    if ((st = ds_catalog_link_delete(project, l.bucket, &removed, &ctx->err)) != DS_OK)
        return st;
    if (!removed)
        return ds_err_set(&ctx->err, DS_NOT_FOUND, "project \"%s\" has no linked bucket \"%s\"", project, bucket);
    return ds_catalog_readonly_set(project, l.bucket, false, &ctx->err);
}

ds_status_t ds_cmd_bucket_readonly(ds_ctx_t *ctx, const char *project, const char *bucket, bool grant)
{
    ds_proj_t p;
    ds_status_t st = open_main_for_change(ctx, &project, &p, "the read-only role");
    if (st == DS_OK)
        st = ds_cmd_require_cap(ctx, &p, DS_CAP_WORKSPACES, "workspaces");
    if (st == DS_OK)
        st = ds_cmd_resolve_bucket(ctx, &p, &bucket);
    if (st != DS_OK)
        return st;
    const char *id = p.linked_bucket ? p.linked_bucket : bucket;
    if ((st = ds_cmd_enter(ctx, ds_arena_printf(ctx->arena, "r/%s", project))) != DS_OK)
        return st;
    return ds_catalog_readonly_set(project, id, !grant, &ctx->err);
}

ds_status_t ds_cmd_bucket_sharing(ds_ctx_t *ctx, const char *project, ds_bucket_sharing_t **items, size_t *n)
{
    ds_proj_t p;
    ds_share_rec_t *shares;
    ds_link_rec_t *links, *by;
    size_t n_shares, n_links, n_by;
    *n = 0;
    ds_status_t st = ds_cmd_open_project(ctx, &project, &p);
    if (st == DS_OK)
        st = ds_catalog_share_list(ctx->arena, project, &shares, &n_shares, &ctx->err);
    if (st == DS_OK)
        st = ds_catalog_link_list(ctx->arena, project, &links, &n_links, &ctx->err);
    if (st == DS_OK)
        st = ds_catalog_link_list_source(ctx->arena, project, NULL, &by, &n_by, &ctx->err);
    if (st != DS_OK)
        return st;
    ds_bucket_sharing_t *out = ds_arena_alloc(ctx->arena, sizeof(*out) * (n_shares + n_links + n_by + 1));
    if (!out)
        return oom(ctx);
    size_t k = 0;
    for (size_t i = 0; i < n_shares; i++)
        out[k++] = (ds_bucket_sharing_t){.bucket = shares[i].bucket, .shared = true,
                                         .organization = shares[i].organization, .projects = shares[i].targets,
                                         .n_projects = shares[i].n_targets};
    for (size_t i = 0; i < n_by; i++) {
        size_t j = 0;
        while (j < k && strcasecmp(out[j].bucket, by[i].source_bucket) != 0)
            j++;
        if (j == k)
            out[k++] = (ds_bucket_sharing_t){.bucket = by[i].source_bucket};
        const char **grown = ds_arena_alloc(ctx->arena, sizeof(char *) * (out[j].n_linked_by + 1));
        if (!grown)
            return oom(ctx);
        if (out[j].n_linked_by)
            memcpy(grown, out[j].linked_by, sizeof(char *) * out[j].n_linked_by);
        if (!(grown[out[j].n_linked_by] = ds_arena_printf(ctx->arena, "%s/%s", by[i].project, by[i].bucket)))
            return oom(ctx);
        out[j].linked_by = grown;
        out[j].n_linked_by++;
    }
    for (size_t i = 0; i < n_links; i++)
        out[k++] = (ds_bucket_sharing_t){.bucket = links[i].bucket, .source_project = links[i].source_project,
                                         .source_bucket = links[i].source_bucket};
    for (size_t i = 0; i < k; i++) {
        bool revoked = false;
        if ((st = ds_catalog_readonly_revoked(project, out[i].bucket, &revoked, &ctx->err)) != DS_OK)
            return st;
        out[i].readonly_revoked = revoked;
    }
    *items = out;
    *n = k;
    return DS_OK;
}
