/*
 * files.c - REST routes of Storage Files (see docs/files.md).
 *
 * Uploads are streaming routes (rest.h): begin authorizes and opens the
 * upload, chunk passes the body on as it arrives, finish publishes. A raw body
 * is the file; a multipart/form-data body is parsed with libmicrohttpd's post
 * processor, and only the part named "file" is stored (other fields are
 * ignored; a second "file" part is a 400). Neither way holds the body in
 * memory. Downloads hand the server an fd, which it streams with sendfile.
 *
 * The stream state lives in the request arena; the upload itself is released
 * by finish, abort, or at the latest with the arena.
 *
 * With an Idempotency-Key (server.c begins it, cmd.h ds_cmd_idem_begin_stream)
 * a repeat reads its body into a discarding upload and only its SHA-256 is
 * compared with the first request's; a first request gives its file's
 * SHA-256 before it answers.
 */
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmd/files.h"
#include "rest/rest.h"


static json_t *file_json(const ds_file_t *f)
{
    return json_pack("{s:s,s:s,s:I,s:s,s:o,s:o,s:b,s:b}", "id", f->id, "name", f->name, "size", (json_int_t)f->size,
                     "sha256", f->sha256, "created_at", ds_json_time(f->created_at), "expires_at",
                     ds_json_time(f->expires_at), "permanent", f->permanent, "sliced", f->sliced);
}

/* ---- uploads (streaming) ---- */

typedef struct {
    ds_rest_req_t *req;
    ds_upload_t *up;
    struct MHD_PostProcessor *pp; /* multipart bodies only */
    uint64_t file_next;           /* next expected offset in the "file" part */
    bool saw_file;
} upload_state_t;

static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                               const char *content_type, const char *transfer_encoding, const char *data, uint64_t off,
                               size_t size)
{
    upload_state_t *s = cls;
    ds_rest_req_t *req = s->req;
    if (!key || strcmp(key, "file") != 0)
        return MHD_YES;
    if (s->saw_file && off == 0 && s->file_next > 0) {
        ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "file", "the multipart body has more than one \"file\" part");
        return MHD_NO;
    }
    if (off != s->file_next) {
        ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "file", "malformed multipart body");
        return MHD_NO;
    }
    s->saw_file = true;
    if (size && ds_cmd_file_upload_write(CTX, s->up, data, size) != DS_OK)
        return MHD_NO;
    s->file_next = off + size;
    return MHD_YES;
}

static void release_state(upload_state_t *s)
{
    if (s->pp) {
        MHD_destroy_post_processor(s->pp);
        s->pp = NULL;
    }
    ds_cmd_file_upload_abort(&s->up);
}

/* Wraps a begun upload into the stream state: raw or multipart. */
static ds_status_t start_stream(ds_rest_req_t *req, ds_upload_t *up, void **state)
{
    upload_state_t *s = ds_arena_alloc(CTX->arena, sizeof(*s));
    if (!s) {
        ds_cmd_file_upload_abort(&up);
        return ds_err_set(&CTX->err, DS_INTERNAL, "out of memory");
    }
    s->req = req;
    s->up = up;
    const char *ctype = ds_rest_header(req, "Content-Type");
    if (ctype && strncasecmp(ctype, "multipart/form-data", 19) == 0) {
        s->pp = MHD_create_post_processor(req->conn, 64 * 1024, on_part, s);
        if (!s->pp) {
            ds_cmd_file_upload_abort(&s->up);
            return ds_err_set(&CTX->err, DS_INVALID_ARGUMENT,
                              "multipart/form-data body without a valid boundary in Content-Type");
        }
    } else {
        /* A raw body declares its size: refuse a too large one before reading it. */
        const char *cl = ds_rest_header(req, "Content-Length");
        int64_t max = ds_service_config()->max_upload_bytes;
        if (cl && max > 0 && strtoll(cl, NULL, 10) > max) {
            ds_cmd_file_upload_abort(&s->up);
            return ds_err_set(&CTX->err, DS_PAYLOAD_TOO_LARGE,
                              "the file is larger than DUCKSTORE_MAX_UPLOAD_BYTES (%lld bytes)", (long long)max);
        }
    }
    *state = s;
    return DS_OK;
}

static ds_status_t upload_begin(ds_rest_req_t *req, void **state)
{
    ds_upload_t *up = NULL;
    ds_file_upload_in_t in = {
        .name = ds_rest_query(req, "name"),
        .overwrite = ds_rest_query_bool(req, "overwrite"),
        .permanent = ds_rest_query_bool(req, "permanent"),
        .sliced = ds_rest_query_bool(req, "sliced"),
    };
    *state = NULL;
    if (req->idem_repeat)
        TRY(ds_cmd_file_upload_begin_discard(CTX, ds_rest_param(req, "id"), &up));
    else
        TRY(ds_cmd_file_upload_begin(CTX, ds_rest_param(req, "id"), &in, &up));
    return start_stream(req, up, state);
}

static ds_status_t content_begin(ds_rest_req_t *req, void **state)
{
    ds_upload_t *up = NULL;
    *state = NULL;
    if (req->idem_repeat)
        TRY(ds_cmd_file_upload_begin_discard(CTX, ds_rest_param(req, "id"), &up));
    else
        TRY(ds_cmd_file_upload_begin_prepared(CTX, ds_rest_param(req, "id"), ds_rest_param(req, "fid"), &up));
    return start_stream(req, up, state);
}

static ds_status_t upload_chunk(ds_rest_req_t *req, void *state, const char *data, size_t n)
{
    upload_state_t *s = state;
    if (!s->pp)
        return ds_cmd_file_upload_write(CTX, s->up, data, n);
    if (MHD_post_process(s->pp, data, n) != MHD_YES) {
        if (CTX->err.status == DS_OK)
            ds_err_set(&CTX->err, DS_INVALID_ARGUMENT, "malformed multipart/form-data body");
        return CTX->err.status;
    }
    return DS_OK;
}

static ds_status_t upload_finish(ds_rest_req_t *req, void *state, ds_rest_resp_t *resp)
{
    upload_state_t *s = state;
    ds_file_t f;
    ds_status_t st = DS_OK;
    if (s->pp) {
        bool complete = MHD_destroy_post_processor(s->pp) == MHD_YES;
        s->pp = NULL;
        if (!s->saw_file)
            st = ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "file",
                             "the multipart/form-data body has no part named \"file\"");
        else if (!complete)
            st = ds_err_set(&CTX->err, DS_INVALID_ARGUMENT, "the multipart/form-data body is incomplete");
    }
    if (st == DS_OK && req->idem_repeat) {
        /* The repeat of an idempotent upload: its digest decides (server.c answers the replay). */
        char digest[65];
        st = ds_cmd_file_upload_digest(CTX, s->up, digest);
        if (st == DS_OK)
            st = ds_cmd_idem_stream_digest(CTX, &req->idem, digest, &req->idem_replay);
        release_state(s);
        return st;
    }
    if (st == DS_OK)
        st = ds_cmd_file_upload_finish(CTX, s->up, &f);
    if (st == DS_OK)
        st = ds_cmd_idem_stream_digest(CTX, &req->idem, f.sha256, &req->idem_replay);
    if (st == DS_OK) {
        resp->status = 201;
        resp->json = file_json(&f);
    }
    release_state(s);
    return st;
}

static void upload_abort(void *state) { release_state(state); }

static const ds_rest_stream_t upload_stream = {upload_begin, upload_chunk, upload_finish, upload_abort, true, false};
static const ds_rest_stream_t content_stream = {content_begin, upload_chunk, upload_finish, upload_abort, true, false};

/* ---- the other routes ---- */

static ds_status_t h_prepare(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    json_t *body;
    ds_file_upload_in_t in = {0};
    ds_file_t f;
    static const char *const allowed[] = {"name", "permanent", "sliced", "overwrite", NULL};
    TRY(ds_rest_body(req, false, &body));
    ds_status_t st = ds_json_only(req, body, allowed);
    if (st == DS_OK)
        st = ds_json_str(req, body, "name", true, &in.name);
    if (st == DS_OK)
        st = ds_json_bool(req, body, "permanent", false, &in.permanent);
    if (st == DS_OK)
        st = ds_json_bool(req, body, "sliced", false, &in.sliced);
    if (st == DS_OK)
        st = ds_json_bool(req, body, "overwrite", false, &in.overwrite);
    json_decref(body);
    if (st != DS_OK)
        return st;
    const char *project = ds_rest_param(req, "id");
    TRY(ds_cmd_file_prepare(CTX, project, &in, &f));
    resp->status = 201;
    resp->json = json_pack("{s:s,s:s,s:s,s:o,s:b,s:b}", "id", f.id, "name", f.name, "upload_url",
                           ds_arena_printf(CTX->arena, "/projects/%s/files/%s/content", project, f.id), "expires_at",
                           ds_json_time(f.expires_at), "permanent", f.permanent, "sliced", f.sliced);
    return DS_OK;
}

static ds_status_t h_list(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_file_t *items;
    size_t n;
    TRY(ds_cmd_file_list(CTX, ds_rest_param(req, "id"), ds_rest_query(req, "prefix"), &items, &n));
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, file_json(&items[i]));
    resp->json = json_pack("{s:o}", "items", arr);
    return DS_OK;
}

static ds_status_t h_get(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_file_t f;
    TRY(ds_cmd_file_get(CTX, ds_rest_param(req, "id"), ds_rest_param(req, "fid"), &f));
    resp->json = file_json(&f);
    return DS_OK;
}

static ds_status_t h_delete(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    TRY(ds_cmd_file_delete(CTX, ds_rest_param(req, "id"), ds_rest_param(req, "fid")));
    resp->status = 204;
    return DS_OK;
}

static ds_status_t h_download(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_file_t f;
    int fd;
    TRY(ds_cmd_file_open(CTX, ds_rest_param(req, "id"), ds_rest_param(req, "fid"), &fd, &f));
    /* The last segment of the key, made safe for a quoted header value. */
    const char *base = strrchr(f.name, '/');
    char *name = ds_arena_strdup(CTX->arena, base ? base + 1 : f.name);
    for (char *p = name; p && *p; p++)
        if (*p == '"' || (unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '_';
    resp->fd = fd;
    resp->fd_size = f.size;
    resp->content_type = "application/octet-stream";
    resp->filename = name;
    return DS_OK;
}

/* "prepare" precedes "{fid}": the router takes the first route that matches. */
const ds_rest_route_t ds_rest_file_routes[] = {
    {.method = "POST", .pattern = "/projects/{id}/files/prepare", .handler = h_prepare,
     .summary = "Prepare an upload: returns the file id and the upload_url to PUT the content to"},
    {.method = "POST", .pattern = "/projects/{id}/files", .stream = &upload_stream,
     .summary = "Upload a file (?name=<key>[&overwrite][&permanent][&sliced]; raw body or multipart \"file\" part)"},
    {.method = "GET", .pattern = "/projects/{id}/files", .handler = h_list,
     .summary = "List files (?prefix=)"},
    {.method = "GET", .pattern = "/projects/{id}/files/{fid}", .handler = h_get, .summary = "Get a file's info"},
    {.method = "DELETE", .pattern = "/projects/{id}/files/{fid}", .handler = h_delete, .summary = "Delete a file"},
    {.method = "GET", .pattern = "/projects/{id}/files/{fid}/download", .handler = h_download,
     .summary = "Download a file's bytes"},
    {.method = "PUT", .pattern = "/projects/{id}/files/{fid}/content", .stream = &content_stream,
     .summary = "Upload the content of a prepared file (raw body or multipart \"file\" part)"},
};
const size_t ds_rest_n_file_routes = sizeof(ds_rest_file_routes) / sizeof(ds_rest_file_routes[0]);
