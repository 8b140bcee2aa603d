/*
 * dispatch_share.c - driver handlers of bucket sharing, linking and the
 * read-only role (docs/driver-protocol.md, "Sharing").
 *
 * ShareBucket carries no recipient list: it shares with the organization
 * (every project of this duckstore) and answers bucketShareRoleName
 * "<source project>/<source bucket>", which Connection keeps and hands to
 * LinkBucket (sourceShareRoleName) and UnshareBucket. Recipients one by one
 * come from Grant/RevokeExternalBucketSubscriber on that name. Each
 * handler maps onto one ds_cmd_* function of cmd/share.c, the same REST uses,
 * so every rule (read-only links, drops refused while linked) is the same.
 */
#include <string.h>
#include <strings.h>

#include "grpc/dispatch.h"

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        ds_status_t st_ = (expr);                                                                  \
        if (st_ != DS_OK)                                                                          \
            return st_;                                                                            \
    } while (0)
#define E(d) (&(d)->ctx->err)
#define NEW(d, T, desc) ((T *)ds_drv_new((d), &(desc)))

/* Splits a share role name "<project>/<bucket>" (as ShareBucket answers it). */
static ds_status_t share_role(ds_drv_t *d, const char *role, const char *field, const char **project,
                              const char **bucket)
{
    const char *slash = role ? strchr(role, '/') : NULL;
    if (!slash || slash == role || !slash[1])
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, field,
                           "%s must be \"<project>/<bucket>\" as ShareBucket answered it, got \"%.100s\"", field,
                           role ? role : "");
    if (!(*project = ds_arena_strndup(d->ctx->arena, role, (size_t)(slash - role))))
        return ds_drv_oom(d);
    *bucket = slash + 1;
    return DS_OK;
}

/* The project a command names (field value, may be empty), else the credentials' one. */
static ds_status_t project_of(ds_drv_t *d, const char *named, const char **project)
{
    if (ds_drv_str(named)) {
        *project = named;
        return DS_OK;
    }
    return ds_drv_project(d, project);
}

ds_status_t ds_drv_h_share_bucket(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Bucket__ShareBucketCommand *c = (const void *)d->cmd;
    const char *project, *bucket = ds_drv_str(c->sourcebucketobjectname) ? c->sourcebucketobjectname
                                                                          : ds_drv_str(c->sourcebucketid);
    TRY(project_of(d, c->sourceprojectid, &project));
    if (!bucket)
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "sourceBucketObjectName",
                           "ShareBucketCommand.sourceBucketObjectName (or sourceBucketId) is required");
    ds_share_in_t in = {.organization = true};
    ds_be_bucket_t b;
    ds_bucket_sharing_t sh;
    TRY(ds_cmd_bucket_share(d->ctx, project, bucket, &in, &b, &sh));
    Keboola__StorageDriver__Command__Bucket__ShareBucketResponse *r =
        NEW(d, Keboola__StorageDriver__Command__Bucket__ShareBucketResponse,
            keboola__storage_driver__command__bucket__share_bucket_response__descriptor);
    if (!r || !(r->bucketsharerolename = ds_arena_printf(d->ctx->arena, "%s/%s", d->ctx->project_id, b.id)))
        return ds_drv_oom(d);
    d->resp = &r->base;
    return DS_OK;
}

ds_status_t ds_drv_h_unshare_bucket(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Bucket__UnshareBucketCommand *c = (const void *)d->cmd;
    const char *project, *bucket = ds_drv_str(c->bucketobjectname);
    if (ds_drv_str(c->bucketsharerolename)) {
        const char *role_bucket;
        TRY(share_role(d, c->bucketsharerolename, "bucketShareRoleName", &project, &role_bucket));
        if (!bucket)
            bucket = role_bucket;
    } else {
        TRY(ds_drv_project(d, &project));
    }
    if (!bucket)
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "bucketObjectName",
                           "UnshareBucketCommand.bucketObjectName (or bucketShareRoleName) is required");
    return ds_cmd_bucket_unshare(d->ctx, project, bucket, false);
}

ds_status_t ds_drv_h_link_bucket(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Bucket__LinkBucketCommand *c = (const void *)d->cmd;
    const char *project, *src_project, *src_bucket;
    TRY(project_of(d, c->targetprojectid, &project));
    if (!ds_drv_str(c->targetbucketid))
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "targetBucketId",
                           "LinkBucketCommand.targetBucketId (the linked bucket's id in the target) is required");
    TRY(share_role(d, c->sourcesharerolename, "sourceShareRoleName", &src_project, &src_bucket));
    ds_be_bucket_t b;
    ds_bucket_sharing_t sh;
    TRY(ds_cmd_bucket_link(d->ctx, project, c->targetbucketid, src_project, src_bucket, &b, &sh));
    Keboola__StorageDriver__Command__Bucket__LinkedBucketResponse *r =
        NEW(d, Keboola__StorageDriver__Command__Bucket__LinkedBucketResponse,
            keboola__storage_driver__command__bucket__linked_bucket_response__descriptor);
    if (!r || !(r->linkedbucketobjectname = ds_arena_strdup(d->ctx->arena, b.id)))
        return ds_drv_oom(d);
    d->resp = &r->base;
    return DS_OK;
}

ds_status_t ds_drv_h_unlink_bucket(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Bucket__UnlinkBucketCommand *c = (const void *)d->cmd;
    const char *project;
    TRY(ds_drv_project(d, &project));
    if (!ds_drv_str(c->bucketobjectname))
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "bucketObjectName",
                           "UnlinkBucketCommand.bucketObjectName is required");
    return ds_cmd_bucket_unlink(d->ctx, project, c->bucketobjectname);
}

/*
 * The listing bucket of project reads: for a linked bucket the share it reads
 * ("<project>/<bucket>"), not shareable again; *listing is left as it is for
 * an own bucket, which may be shared. *bucket becomes the stored spelling of a link.
 */
static ds_status_t listing_of(ds_drv_t *d, const char *project, const char **bucket, char **listing,
                              protobuf_c_boolean *allowed)
{
    ds_bucket_sharing_t *items;
    size_t n;
    TRY(ds_cmd_bucket_sharing(d->ctx, project, &items, &n));
    *allowed = true;
    for (size_t i = 0; i < n; i++)
        if (items[i].source_project && strcasecmp(items[i].bucket, *bucket) == 0) {
            *bucket = items[i].bucket;
            *listing = ds_arena_printf(d->ctx->arena, "%s/%s", items[i].source_project, items[i].source_bucket);
            *allowed = false;
            if (!*listing)
                return ds_drv_oom(d);
        }
    return DS_OK;
}

/*
 * GrantBucketAccessToReadOnlyRole: the bucket is destinationObjectName, else
 * the last element of path ([bucket] or [project, bucket]). Answers its
 * object name and listing_of's answer.
 */
ds_status_t ds_drv_h_grant_readonly(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Bucket__GrantBucketAccessToReadOnlyRoleCommand *c = (const void *)d->cmd;
    const char *project;
    TRY(ds_drv_project(d, &project));
    const char *bucket = ds_drv_str(c->destinationobjectname);
    if (!bucket && c->n_path > 0 && c->n_path <= 2)
        bucket = ds_drv_str(c->path[c->n_path - 1]);
    if (!bucket)
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "path",
                           "GrantBucketAccessToReadOnlyRoleCommand names the bucket in destinationObjectName or path "
                           "([bucket] or [project, bucket])");
    TRY(ds_cmd_bucket_readonly(d->ctx, project, bucket, true));
    Keboola__StorageDriver__Command__Bucket__GrantBucketAccessToReadOnlyRoleResponse *r =
        NEW(d, Keboola__StorageDriver__Command__Bucket__GrantBucketAccessToReadOnlyRoleResponse,
            keboola__storage_driver__command__bucket__grant_bucket_access_to_read_only_role_response__descriptor);
    if (!r)
        return ds_drv_oom(d);
    TRY(listing_of(d, project, &bucket, &r->sourcelisting, &r->sourcelistingsharingallowed));
    if (!(r->createbucketobjectname = ds_arena_strdup(d->ctx->arena, bucket)))
        return ds_drv_oom(d);
    d->resp = &r->base;
    return DS_OK;
}

/*
 * BigQueryExternalBucketSharingStatus: destinationDatasetName is a bucket of
 * the caller's project (own or linked); answers the listing it reads and
 * whether it may be shared again (listing_of).
 */
ds_status_t ds_drv_h_sharing_status(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Bucket__BigQueryExternalBucketSharingStatusCommand *c = (const void *)d->cmd;
    const char *project, *bucket = ds_drv_str(c->destinationdatasetname);
    TRY(ds_drv_project(d, &project));
    if (!bucket)
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "destinationDatasetName",
                           "BigQueryExternalBucketSharingStatusCommand.destinationDatasetName is required");
    ds_be_bucket_t b;
    TRY(ds_cmd_bucket_get(d->ctx, project, bucket, &b));
    bucket = b.id;
    Keboola__StorageDriver__Command__Bucket__BigQueryExternalBucketSharingStatusResponse *r =
        NEW(d, Keboola__StorageDriver__Command__Bucket__BigQueryExternalBucketSharingStatusResponse,
            keboola__storage_driver__command__bucket__big_query_external_bucket_sharing_status_response__descriptor);
    if (!r)
        return ds_drv_oom(d);
    TRY(listing_of(d, project, &bucket, &r->sourcelisting, &r->sourcelistingsharingallowed));
    d->resp = &r->base;
    return DS_OK;
}

/*
 * Grant/RevokeExternalBucketSubscriber: listingName is a share role name
 * "<project>/<bucket>" (ShareBucket's answer), subscriberServiceAccountEmail
 * the project that may link it (CreateProject's projectUserName: its id).
 * Granting adds the project to the share's recipients (sharing the bucket
 * with it alone when it was not shared), revoking takes it out.
 */
static ds_status_t subscriber(ds_drv_t *d, const char *listing, const char *member, const char *command, bool grant)
{
    const char *project, *bucket;
    TRY(share_role(d, listing, "listingName", &project, &bucket));
    if (!ds_drv_str(member))
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "subscriberServiceAccountEmail",
                           "%s.subscriberServiceAccountEmail is required: the id of the project that may link the "
                           "listing (CreateProject's projectUserName)",
                           command);
    return ds_cmd_bucket_share_member(d->ctx, project, bucket, member, "subscriberServiceAccountEmail", grant);
}

ds_status_t ds_drv_h_grant_subscriber(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Bucket__GrantExternalBucketSubscriberCommand *c = (const void *)d->cmd;
    return subscriber(d, c->listingname, c->subscriberserviceaccountemail, "GrantExternalBucketSubscriberCommand",
                      true);
}

ds_status_t ds_drv_h_revoke_subscriber(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Bucket__RevokeExternalBucketSubscriberCommand *c = (const void *)d->cmd;
    return subscriber(d, c->listingname, c->subscriberserviceaccountemail, "RevokeExternalBucketSubscriberCommand",
                      false);
}

ds_status_t ds_drv_h_revoke_readonly(ds_drv_t *d)
{
    const Keboola__StorageDriver__Command__Bucket__RevokeBucketAccessFromReadOnlyRoleCommand *c = (const void *)d->cmd;
    const char *project;
    TRY(ds_drv_project(d, &project));
    if (!ds_drv_str(c->bucketobjectname))
        return ds_err_setf(E(d), DS_INVALID_ARGUMENT, "bucketObjectName",
                           "RevokeBucketAccessFromReadOnlyRoleCommand.bucketObjectName is required");
    return ds_cmd_bucket_readonly(d->ctx, project, c->bucketobjectname, false);
}
