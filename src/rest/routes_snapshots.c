/*
 * routes_snapshots.c - REST routes of snapshots (REST.md, "Snapshots and
 * time travel"): create, list, get, delete, restore, and the switches of
 * automatic snapshots (/projects/{id}/snapshot-settings).
 *
 * Under /projects/{id}/branches/{branch}/snapshots the router sets the
 * branch (router.c): a snapshot is then taken of, and restored into, the
 * branch's view of storage.
 */
#include <string.h>

#include "cmd/snapshot.h"
#include "rest/rest.h"

#define PROJECT ds_rest_param(req, "id")

/* The request body, owned by the arena (decref'd when the request ends). */
static ds_status_t body_of(ds_rest_req_t *req, bool allow_empty, json_t **out)
{
    TRY(ds_rest_body(req, allow_empty, out));
    ds_arena_on_destroy(CTX->arena, (ds_cleanup_cb)json_decref, *out);
    return DS_OK;
}

/*
 * A malformed body of a write: a key that may not write gets its 403 (or the
 * project's 404) rather than the body's 400, as every write route answers.
 */
static ds_status_t bad_body(ds_rest_req_t *req, ds_status_t st)
{
    ds_err_t body_err = CTX->err;
    ds_err_clear(&CTX->err);
    if (ds_cmd_snapshot_may_write(CTX, PROJECT) != DS_OK)
        return CTX->err.status;
    CTX->err = body_err;
    return st;
}

/* Runs a body check; a failure goes through bad_body. */
#define CHECK(expr)                                                                                                    \
    do {                                                                                                               \
        ds_status_t st_ = (expr);                                                                                      \
        if (st_ != DS_OK)                                                                                              \
            return bad_body(req, st_);                                                                                 \
    } while (0)

static json_t *columns_json(const ds_be_table_t *t)
{
    json_t *cols = json_array();
    for (size_t i = 0; i < t->n_columns; i++) {
        const ds_be_column_t *c = &t->columns[i];
        json_array_append_new(cols, json_pack("{s:s, s:s, s:b, s:o}", "name", c->name, "type", c->type, "nullable",
                                              c->nullable, "default",
                                              c->default_value ? json_string(c->default_value) : json_null()));
    }
    return cols;
}

static json_t *strings_json(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *snapshot_json(const ds_snapshot_t *s)
{
    json_t *tables = json_array();
    for (size_t i = 0; i < s->n_tables; i++) {
        const ds_be_table_t *t = &s->tables[i];
        json_array_append_new(tables, json_pack("{s:s, s:I, s:I, s:o, s:o}", "name", t->name, "rows",
                                                (json_int_t)t->rows, "bytes", (json_int_t)t->bytes, "columns",
                                                columns_json(t), "primary_key",
                                                strings_json(t->primary_key, t->n_primary_key)));
    }
    char reason[96];
    snprintf(reason, sizeof(reason), "%s%s", s->automatic ? "auto before " : "manual", s->automatic ? s->trigger : "");
    json_t *j = json_pack("{s:s, s:s, s:o, s:I, s:I, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:{s:o, s:b}, s:o}", "id",
                          s->id, "bucket", s->bucket, "table", s->table ? json_string(s->table) : json_null(), "rows",
                          (json_int_t)s->rows, "bytes", (json_int_t)s->bytes, "kind", s->automatic ? "auto" : "manual",
                          "reason", reason, "trigger", s->trigger ? json_string(s->trigger) : json_null(),
                          "description", s->description ? json_string(s->description) : json_null(), "branch",
                          s->branch ? json_string(s->branch) : json_null(), "created_at", ds_json_time(s->created_at),
                          "expires_at", ds_json_time(s->expires_at), "created_by", "key_id",
                          s->key_id ? json_string(s->key_id) : json_null(), "admin", s->key_id == NULL, "tables",
                          tables);
    /* A table snapshot shows its table's definition at the top level too. */
    if (j && s->table && s->n_tables == 1) {
        json_object_set_new(j, "columns", columns_json(&s->tables[0]));
        json_object_set_new(j, "primary_key", strings_json(s->tables[0].primary_key, s->tables[0].n_primary_key));
    }
    return j;
}

static ds_status_t h_snapshot_create(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    json_t *body;
    static const char *const allowed[] = {"bucket", "table", "description", "expires_in", NULL};
    ds_snapshot_create_t in = {0};
    ds_snapshot_t out;
    CHECK(body_of(req, false, &body));
    CHECK(ds_json_only(req, body, allowed));
    CHECK(ds_json_str(req, body, "bucket", true, &in.bucket));
    CHECK(ds_json_str(req, body, "table", false, &in.table));
    CHECK(ds_json_str(req, body, "description", false, &in.description));
    CHECK(ds_json_int64(req, body, "expires_in", 0, &in.expires_in));
    if (json_object_get(body, "expires_in") && !json_is_null(json_object_get(body, "expires_in")) && in.expires_in <= 0)
        CHECK(ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "expires_in", "expires_in must be a positive number of seconds"));
    TRY(ds_cmd_snapshot_create(CTX, PROJECT, &in, &out));
    resp->status = 201;
    resp->json = snapshot_json(&out);
    return DS_OK;
}

static ds_status_t h_snapshot_list(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_snapshot_t *items;
    size_t n;
    TRY(ds_cmd_snapshot_list(CTX, PROJECT, &items, &n));
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, snapshot_json(&items[i]));
    resp->json = json_pack("{s:o}", "items", arr);
    return DS_OK;
}

static ds_status_t h_snapshot_get(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_snapshot_t s;
    TRY(ds_cmd_snapshot_get(CTX, PROJECT, ds_rest_param(req, "snapshot"), &s));
    resp->json = snapshot_json(&s);
    return DS_OK;
}

static ds_status_t h_snapshot_delete(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    TRY(ds_cmd_snapshot_delete(CTX, PROJECT, ds_rest_param(req, "snapshot")));
    resp->status = 204;
    return DS_OK;
}

static ds_status_t h_snapshot_restore(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    json_t *body;
    static const char *const allowed[] = {"bucket", "table", "overwrite", NULL};
    ds_snapshot_restore_t in = {0};
    ds_be_table_t *tables;
    size_t n;
    bool whole_bucket;
    CHECK(body_of(req, true, &body));
    CHECK(ds_json_only(req, body, allowed));
    CHECK(ds_json_str(req, body, "bucket", false, &in.bucket));
    CHECK(ds_json_str(req, body, "table", false, &in.table));
    CHECK(ds_json_bool(req, body, "overwrite", false, &in.overwrite));
    TRY(ds_cmd_snapshot_restore(CTX, PROJECT, ds_rest_param(req, "snapshot"), &in, &tables, &n, &whole_bucket));
    resp->status = 201;
    if (!whole_bucket && n == 1) {
        resp->json = ds_rest_table_json(&tables[0]);
    } else {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, ds_rest_table_json(&tables[i]));
        resp->json = json_pack("{s:o}", "tables", arr);
    }
    return DS_OK;
}

static json_t *switches_json(const int *on)
{
    json_t *o = json_object();
    for (int t = 0; t < DS_SNAP_N_TRIGGERS; t++)
        json_object_set_new(o, ds_snap_trigger_names[t], on[t] < 0 ? json_null() : json_boolean(on[t]));
    return o;
}

static ds_status_t settings_answer(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    ds_snapshot_setting_t *items;
    size_t n;
    int64_t keep;
    TRY(ds_cmd_snapshot_settings_get(CTX, PROJECT, &items, &n, &keep));
    json_t *buckets = json_object(), *tables = json_object();
    for (size_t i = 1; i < n; i++) {
        if (items[i].table) {
            char key[256];
            snprintf(key, sizeof(key), "%s.%s", items[i].bucket, items[i].table);
            json_object_set_new(tables, key, switches_json(items[i].on));
        } else {
            json_object_set_new(buckets, items[i].bucket, switches_json(items[i].on));
        }
    }
    resp->json = json_pack("{s:{s:o}, s:o, s:o, s:I}", "project", "auto", switches_json(items[0].on), "buckets",
                           buckets, "tables", tables, "auto_retention_seconds",
                           (json_int_t)keep);
    return DS_OK;
}

static ds_status_t h_settings_get(ds_rest_req_t *req, ds_rest_resp_t *resp) { return settings_answer(req, resp); }

static ds_status_t h_settings_put(ds_rest_req_t *req, ds_rest_resp_t *resp)
{
    json_t *body, *sw;
    static const char *const allowed[] = {"bucket", "table", "auto", NULL};
    ds_snapshot_setting_t in = {0};
    CHECK(body_of(req, false, &body));
    CHECK(ds_json_only(req, body, allowed));
    CHECK(ds_json_str(req, body, "bucket", false, &in.bucket));
    CHECK(ds_json_str(req, body, "table", false, &in.table));
    sw = json_object_get(body, "auto");
    if (!json_is_object(sw) || json_object_size(sw) == 0)
        CHECK(ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "auto",
                          "field \"auto\" must be an object of switches, e.g. {\"drop_table\": false}"));
    const char *key;
    json_t *v;
    json_object_foreach(sw, key, v)
    {
        int t = 0;
        while (t < DS_SNAP_N_TRIGGERS && strcmp(ds_snap_trigger_names[t], key) != 0)
            t++;
        if (t == DS_SNAP_N_TRIGGERS)
            CHECK(ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "auto",
                              "\"auto\": \"%s\" is not a switch (drop_table, truncate, delete_all_rows, drop_column)",
                              key));
        if (!json_is_boolean(v) && !json_is_null(v))
            CHECK(ds_err_setf(&CTX->err, DS_INVALID_ARGUMENT, "auto", "\"auto\": \"%s\" must be true, false or null",
                              key));
    }
    for (int t = 0; t < DS_SNAP_N_TRIGGERS; t++) {
        json_t *val = json_object_get(sw, ds_snap_trigger_names[t]);
        in.on[t] = !val ? 2 : json_is_null(val) ? -1 : json_is_true(val);
    }
    TRY(ds_cmd_snapshot_settings_set(CTX, PROJECT, &in));
    return settings_answer(req, resp);
}

#define P "/projects/{id}"

const ds_rest_route_t ds_rest_snapshot_routes[] = {
    {.method = "POST", .pattern = P "/snapshots", .handler = h_snapshot_create, .summary = "Take a snapshot of a table or a whole bucket"},
    {.method = "GET", .pattern = P "/snapshots", .handler = h_snapshot_list, .summary = "List the project's snapshots, newest first"},
    {.method = "GET", .pattern = P "/snapshots/{snapshot}", .handler = h_snapshot_get, .summary = "Get a snapshot: tables, columns, rows, size, when, who, why"},
    {.method = "DELETE", .pattern = P "/snapshots/{snapshot}", .handler = h_snapshot_delete, .summary = "Delete a snapshot"},
    {.method = "POST", .pattern = P "/snapshots/{snapshot}/restore", .handler = h_snapshot_restore, .summary = "Restore a snapshot into a new table or over the original (overwrite)"},
    {.method = "GET", .pattern = P "/snapshot-settings", .handler = h_settings_get, .summary = "Automatic snapshot switches of the project, its buckets and tables"},
    {.method = "PUT", .pattern = P "/snapshot-settings", .handler = h_settings_put, .summary = "Set automatic snapshot switches of the project, a bucket or a table"},
};
const size_t ds_rest_n_snapshot_routes = sizeof(ds_rest_snapshot_routes) / sizeof(ds_rest_snapshot_routes[0]);
