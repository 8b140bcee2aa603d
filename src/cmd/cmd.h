/*
 * cmd.h - the command layer: one C function per storage operation.
 *
 * DESIGN
 * Every transport (REST, gRPC, the HTTP bridge) is a thin adapter that parses
 * its input into the plain structs below, calls one ds_cmd_* function and
 * encodes the result. Each command does, in order: validate -> authorize ->
 * look up the project -> take its write slot -> call the backend -> record
 * metadata. No storage logic lives in a transport.
 *
 * A ds_ctx_t carries one request: its arena (results are allocated there and
 * die with it), the presented API key, and the error detail. Commands return a
 * ds_status_t; on failure ctx->err says why.
 *
 * Thread-safety: every command may run on many threads at once. Writes are
 * serialized through write queues (core/wq.h): per table for data, per project
 * for catalog changes, in that lock order.
 */
#ifndef DS_CMD_CMD_H
#define DS_CMD_CMD_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "core/arena.h"
#include "core/config.h"
#include "core/status.h"
#include "duckstore/backend.h"

/*
 * Parking: a transport that can suspend a request sets ctx->park. A command
 * that must wait for a write slot then does not block its thread: it queues
 * for the slot and fails with park->parked set (ctx->err says so). The
 * transport lets go of the thread and of what the request held (the arena's
 * hooks), and when park->resume_cb(park->arg) reports the slot granted (from
 * any thread) runs the request again from the start; the command then finds
 * the slot held. Everything a command does before it takes its slots only
 * reads, so running it again is safe; a transport parks only requests that
 * make at most one command taking slots, as that command's first write.
 * When the request ends the transport calls ds_cmd_park_release.
 */
typedef struct ds_park_slot ds_park_slot_t;
typedef struct ds_park {
    void (*resume_cb)(void *arg); /* the awaited slot is held now: run the request again */
    void *arg;
    bool parked;            /* set by the command layer: the request waits for a slot */
    ds_park_slot_t *held;   /* the command layer's: slots taken or awaited (ctx arena) */
} ds_park_t;

/* Leaves every slot park holds (not one still awaited: wait for its grant first). Accepts NULL. */
void ds_cmd_park_release(ds_park_t *park);
/*
 * The request of a parked park was cancelled: gives up the slot it awaits.
 * True when it did (resume_cb will not be called); false when the grant came
 * already (resume_cb was or is being called).
 */
bool ds_cmd_park_abandon(ds_park_t *park);

typedef struct ds_ctx {
    ds_arena_t *arena;
    ds_err_t err;
    const char *request_id;
    const char *key;        /* presented credential, or NULL; never logged */
    const char *project_id; /* set by commands once they know the project (for logs) */
    struct ds_cancel *cancel; /* the transport's cancellation of this request, or NULL (core/cancel.h) */
    /* Who the key is, set by every authentication (service.c); ds_cmd_require_write reads it. */
    int scope;                /* ds_caller_t */
    const char *scope_branch; /* DS_CALLER_BRANCH: the branch the key may write (arena) */
    const char *scope_slot;   /* DS_CALLER_WORKSPACE: the one write slot ("w/<project>/<ws>") it may take */
    const char *key_id;       /* the project key's id ("main", or a created key's), arena; NULL for the admin key */
    const char *branch;       /* the branch the request addresses (transports); NULL or "default": main */
    /* The driver transports' idempotency key (gRPC metadata / bridge header idempotency-key), or NULL. */
    const char *idempotency_key;
    /* The write's idempotency record (cmd/idem.c), handed to backends that keep it in the write's transaction. */
    const char *idem_token;
    const char *idem_hash;
    ds_park_t *park;          /* the transport's parking of this request, or NULL: waits block (see above) */
    /* By when the caller wants its write's turn in a write queue (REST: arrival plus "Prefer: wait=N"; gRPC:
     * the call's deadline), CLOCK_MONOTONIC seconds; 0: no bound of its own. The service's queue_max_wait
     * also applies (core/wq.h). */
    double wait_deadline;
    /* Set once a name of this request resolved through a linked bucket (cmd/share.c): what it read, for the
     * message; from then on no table or project catalog write slot is given to the request. */
    const char *linked_read;
    /* The answer carries a secret shown only once (a new key or password): it is never kept for an idempotent
     * repeat, which gets a conflict saying so instead (DS_IDEM_SECRET_MESSAGE). */
    bool answer_has_secret;
} ds_ctx_t;

/* What an authenticated key may do. */
typedef enum {
    DS_CALLER_NONE = 0,    /* not authenticated (yet) */
    DS_CALLER_ADMIN,       /* the service's admin key: everything */
    DS_CALLER_PROJECT,     /* a project key of scope admin (the main key included): its project */
    DS_CALLER_READ,        /* scope read: reads, previews, exports and queries of its project; no write */
    DS_CALLER_BRANCH,      /* scope branch: reads its project, writes only in its branch */
    DS_CALLER_WORKSPACE    /* a workspace's own login: its workspace's load and query only (scope_slot) */
} ds_caller_t;

/* The backend projects are created on when none is named. */
#define DS_DEFAULT_BACKEND "duckdb"

/* Starts the service core: catalog, backends, recovery, write queues. */
ds_status_t ds_service_start(const ds_config_t *cfg, ds_err_t *err);
/* Closes every backend and the catalog cleanly. */
void ds_service_stop(void);
const ds_config_t *ds_service_config(void);
/* Gauges for /metrics. */
int64_t ds_service_queue_waiting(void);
/* Write queues held now (a write has its turn); cheap, for gauges. */
int64_t ds_service_queue_held(void);
int64_t ds_service_open_projects(void);
int64_t ds_service_open_projects_peak(void);
/* Times a backend reopened its engine after a fatal error, since start (all backends). */
int64_t ds_service_engine_restarts(void);
/* Memory the backends' engines hold now (backend op engine_memory, summed); runs statements: /metrics only. */
int64_t ds_service_engine_memory(void);
/* Every backend's runtime figures, summed. */
void ds_service_runtime(ds_be_runtime_stats_t *out);
/*
 * What requests hold now: write slots held and awaited, project pins, and
 * backend calls running statements. All 0 when no request is under way; the
 * fuzz harnesses check that after each input (a leak there hangs a later one).
 */
typedef struct {
    int64_t slots, waiting, pins, calls;
} ds_holds_t;
void ds_service_holds(ds_holds_t *out);
/* Project pins held now, over all projects. */
int64_t ds_cmd_project_pins(void);
/* DS_OK when the catalog and every backend answer. */
ds_status_t ds_service_ready(ds_err_t *err);

/*
 * Authentication alone, before any work: DS_OK when ctx's key is the admin
 * key (*admin true) or a valid key of a ready project (its id in owner: the
 * main key, a created key, or a rotated one within its grace period);
 * UNAUTHENTICATED when the key is missing or matches none. Sets ctx->scope
 * (and scope_branch, key_id), as every authentication does. Thread-safe.
 */
ds_status_t ds_cmd_authenticate(ds_ctx_t *ctx, bool *admin, char owner[DS_PROJECT_ID_MAX + 1]);
/*
 * True when key (may be NULL) authenticates as above; nothing else is looked
 * at or kept. Cheap (in-memory key tables): transports call it before they
 * keep more than a small body.
 */
bool ds_cmd_key_valid(ds_arena_t *arena, const char *key);
/* Authorization checks, usable by transports for routes without a command. */
ds_status_t ds_cmd_require_admin(ds_ctx_t *ctx);
/* DS_OK when ctx's key (admin or the project's own) may use project id, which must exist. */
ds_status_t ds_cmd_authorize_project(ds_ctx_t *ctx, const char *id);
/*
 * The one check every write makes (ds_cmd_enter runs it for every write slot;
 * writes without a slot call it themselves), after authentication: DS_OK
 * when ctx's key may change data in the branch the request addresses
 * (ctx->branch; NULL or "default" is main). PERMISSION_DENIED (403) for a
 * read-only key, and for a branch-scoped key writing anywhere but its branch.
 */
ds_status_t ds_cmd_require_write(ds_ctx_t *ctx);
/* DS_OK when ctx's key is the admin key or a project key of scope admin (key management). */
ds_status_t ds_cmd_require_project_admin(ds_ctx_t *ctx, const char *what);

/* ---- idempotent writes (idem.c) ---- */
typedef struct ds_idem ds_idem_t;

/* What ds_cmd_idem_begin decided. */
typedef struct {
    bool replay;              /* answer with the first request's status and body; apply nothing */
    int status;               /* replay: HTTP status */
    const char *content_type; /* replay (arena) */
    const char *body;         /* replay: bytes (arena) */
    size_t body_len;
} ds_idem_answer_t;

/*
 * Starts a write that carries an idempotency key (REST header
 * Idempotency-Key, driver metadata idempotency-key). Authenticates ctx's key
 * first (records belong to the key's project, or to the admin key). The
 * request is identified by method, target and body (SHA-256). Then:
 *  - the key's record exists for the same request: *ans says replay;
 *  - it exists for another request: CONFLICT (409), nothing applied;
 *  - the same key is running now: waits for it (giving up on cancellation),
 *    then as above;
 *  - otherwise *h is set: run the write, then call ds_cmd_idem_end. ctx
 *    carries the token, so backends that can record it inside the write's own
 *    transaction do (import, delete rows): a crash after the commit and before
 *    the answer cannot make the retry apply it twice.
 * Records expire after DUCKSTORE_IDEMPOTENCY_TTL. Thread-safe.
 */
ds_status_t ds_cmd_idem_begin(ds_ctx_t *ctx, const char *key, const char *method, const char *target,
                              const void *body, size_t body_len, ds_idem_t **h, ds_idem_answer_t *ans);
/*
 * Ends the write begun with *h (sets it NULL; NULL is a no-op): keeps the
 * answer for repeats unless it is a transient failure (5xx, 408, 429), after
 * which a repeat runs again, and wakes requests waiting for it.
 */
void ds_cmd_idem_end(ds_idem_t **h, int status, const char *content_type, const void *body, size_t body_len);
/*
 * What a repeat of a write whose answer carried a secret (ctx->answer_has_secret) gets instead of that answer,
 * as a CONFLICT: secrets are shown once and never stored, not even as an idempotent answer.
 */
#define DS_IDEM_SECRET_MESSAGE                                                                                    \
    "this Idempotency-Key's request was carried out earlier; its answer held a secret (a key or a password) "      \
    "that is shown only once and is not stored, so it cannot be repeated: get a new one (reset the workspace's " \
    "password, or rotate the key)"

/*
 * A streamed write (an upload) with an idempotency key: the key is known
 * when the headers arrive, the body only at its end. Its identity is method,
 * target and the SHA-256 of the bytes it stores (not the transfer framing,
 * so a multipart retry with another boundary is the same request).
 *  - the key is running now (also a streamed first request still reading its
 *    body): CONFLICT at once, nothing read; the client retries later;
 *  - the key has a kept answer: *repeat is true and *h set: the caller reads
 *    the body without storing it, then ds_cmd_idem_stream_digest decides;
 *  - otherwise *h is set (the first request): run the write, give the
 *    digest to ds_cmd_idem_stream_digest before answering, then
 *    ds_cmd_idem_end. An answer given before the digest was known (the
 *    upload refused early) is not kept.
 */
ds_status_t ds_cmd_idem_begin_stream(ds_ctx_t *ctx, const char *key, const char *method, const char *target,
                                     ds_idem_t **h, bool *repeat);
/*
 * digest: 64 hex digits of the stored bytes. For a first request fixes its
 * identity (DS_OK, ans->replay false). For a repeat releases *h (sets it
 * NULL): the same bytes give *ans = the first answer, other bytes CONFLICT.
 */
ds_status_t ds_cmd_idem_stream_digest(ds_ctx_t *ctx, ds_idem_t **h, const char *digest, ds_idem_answer_t *ans);

/* ---- API keys (keys.c) ---- */
typedef struct {
    const char *scope; /* "admin", "read", "branch" */
    const char *branch; /* branch scope: the branch it may write */
    const char *description;
} ds_key_create_t;

typedef struct {
    const char *id;
    const char *key; /* the secret: only from create and rotate */
    const char *scope;
    const char *branch; /* NULL unless branch scope */
    const char *description;
    int64_t created_at;
} ds_key_t;

/* Creates a project key; out->key is shown once. Needs the admin key or a project admin key. */
ds_status_t ds_cmd_key_create(ds_ctx_t *ctx, const char *project, const ds_key_create_t *in, ds_key_t *out);
/* The project's keys ("main" first), without secrets; arena array. */
ds_status_t ds_cmd_key_list(ds_ctx_t *ctx, const char *project, ds_key_t **items, size_t *n);
/* Deletes a created key (not "main": rotate it instead). */
ds_status_t ds_cmd_key_delete(ds_ctx_t *ctx, const char *project, const char *key_id);
/* Gives key key_id a new secret; the old one keeps working for grace_seconds (0: refused at once). */
ds_status_t ds_cmd_key_rotate(ds_ctx_t *ctx, const char *project, const char *key_id, int64_t grace_seconds,
                              ds_key_t *out);
/*
 * Replaces the service's admin key without a restart: a new key is generated
 * and written to <data>/admin.key (0600) before it takes effect; the old key
 * keeps working for grace_seconds. *key (arena) is the new key. CONFLICT when
 * the admin key comes from DUCKSTORE_ADMIN_KEY (a restart would bring it back).
 */
ds_status_t ds_cmd_admin_key_rotate(ds_ctx_t *ctx, int64_t grace_seconds, const char **key);


/* ---- backend ---- */
typedef struct {
    const char *data_dir;
    const char *engine;
    int64_t projects;
} ds_backend_info_t;
ds_status_t ds_cmd_backend_init(ds_ctx_t *ctx, ds_backend_info_t *out);
ds_status_t ds_cmd_backend_remove(ds_ctx_t *ctx);

/* ---- projects ---- */
typedef struct {
    const char *id;
    const char *name;    /* NULL: the id */
    const char *backend; /* NULL: "duckdb" */
    bool retention_set;     /* false: DS_RETENTION_DEFAULT_DAYS */
    int64_t retention_days; /* history kept for time travel, in days (0: none) */
} ds_project_create_t;

typedef struct {
    ds_project_rec_t rec;
    const char *api_key; /* only from create */
    bool has_stats;
    ds_be_project_stats_t stats; /* main as clients see it */
    ds_be_project_stats_t branches; /* what development branches hold (their copies and own tables; buckets unused) */
} ds_project_t;

ds_status_t ds_cmd_project_create(ds_ctx_t *ctx, const ds_project_create_t *in, ds_project_t *out);
ds_status_t ds_cmd_project_list(ds_ctx_t *ctx, ds_project_rec_t **items, size_t *n);
ds_status_t ds_cmd_project_get(ds_ctx_t *ctx, const char *id, ds_project_t *out);
/* name NULL: unchanged; retention_days < 0: unchanged (0 turns time travel off). */
ds_status_t ds_cmd_project_update(ds_ctx_t *ctx, const char *id, const char *name, int64_t retention_days,
                                  ds_project_t *out);
ds_status_t ds_cmd_project_delete(ds_ctx_t *ctx, const char *id);

/* ---- time travel (cmd/history.c) ---- */
typedef struct {
    const char *bucket;    /* the source */
    const char *table;     /* a live table, or with dropped the name of a dropped one */
    bool dropped;
    const char *timestamp; /* the moment as a client wrote it (ds_time_parse's forms); NULL: at_s */
    int64_t at_s;          /* unix seconds (the driver's int64 timestamp) when timestamp is NULL */
    const char *dst_bucket;
    const char *dst_table;
} ds_time_travel_t;

/*
 * Creates dst_bucket.dst_table as the source was at the moment: a moment
 * given to the second means the end of that second (every write committed in
 * it or before). The moment must lie within the project's retention
 * (data_retention_time days; 0: no time travel) and not in the future;
 * otherwise 400 naming "timestamp", and nothing changes. *out: the new table.
 */
ds_status_t ds_cmd_table_time_travel(ds_ctx_t *ctx, const char *project, const ds_time_travel_t *in,
                                     ds_be_table_t *out);
/* Starts/stops the thread that expires history past each project's retention. */
ds_status_t ds_history_sweep_start(ds_err_t *err);
/* History rows the sweep removed since start (writes past retention, histories of tables dropped before it). */
int64_t ds_history_rows_expired(void);
/* Projects the sweep looked at, and those it left alone because nothing in their history was due yet. */
int64_t ds_history_projects_swept(void);
int64_t ds_history_projects_left_alone(void);
void ds_history_sweep_stop(void);

/* ---- compaction (compact.c) ---- */
typedef struct {
    int64_t bytes_before; /* the project's storage on disk before */
    int64_t bytes_after;  /* and after */
    double seconds;       /* how long it took */
} ds_compact_result_t;
/*
 * Rewrites project id's storage without its free space (the backend's
 * project_compact): the admin key or a project key of scope admin (403
 * otherwise); 501 naming the backend when it cannot compact; 503 when the
 * project's running calls did not end within DUCKSTORE_COMPACT_WAIT_SECONDS
 * (nothing changed). Calls for the project wait while it runs.
 */
ds_status_t ds_cmd_project_compact(ds_ctx_t *ctx, const char *id, ds_compact_result_t *out);
/* Starts/stops the maintenance thread that compacts projects named by ds_cmd_compact_soon. */
ds_status_t ds_compact_start(ds_err_t *err);
void ds_compact_stop(void);

/* ---- buckets ---- */
typedef struct {
    const char *stage;
    const char *name; /* "c-" is prefixed when missing */
    const char *description;
} ds_bucket_create_t;

ds_status_t ds_cmd_bucket_create(ds_ctx_t *ctx, const char *project, const ds_bucket_create_t *in,
                                 ds_be_bucket_t *out);
ds_status_t ds_cmd_bucket_list(ds_ctx_t *ctx, const char *project, ds_be_bucket_t **items, size_t *n);
ds_status_t ds_cmd_bucket_get(ds_ctx_t *ctx, const char *project, const char *bucket, ds_be_bucket_t *out);
ds_status_t ds_cmd_bucket_delete(ds_ctx_t *ctx, const char *project, const char *bucket, bool force);

/* ---- sharing, linked buckets, read-only role (share.c) ---- */
/* Who may link a shared bucket: every project, or the listed ones (at most DS_SHARE_MAX_PROJECTS). */
#define DS_SHARE_MAX_PROJECTS 1000
typedef struct {
    bool organization;
    const char *const *projects;
    size_t n_projects;
    bool force; /* replace the recipients even when a linking project loses access */
} ds_share_in_t;

/* How one bucket of a project takes part in sharing (all arena). */
typedef struct {
    const char *bucket;          /* the bucket id in the project */
    bool shared;                 /* shared by the project */
    bool organization;           /* shared with every project */
    const char **projects;       /* else with these */
    size_t n_projects;
    const char **linked_by;      /* "<project>/<bucket>" of every link reading it */
    size_t n_linked_by;
    const char *source_project;  /* a linked bucket: what it reads; else NULL */
    const char *source_bucket;
    bool readonly_revoked;       /* workspaces of the project may not read it */
} ds_bucket_sharing_t;

/* Shares bucket of project (main branch; not a linked bucket); *out is the bucket, *sh its sharing. */
ds_status_t ds_cmd_bucket_share(ds_ctx_t *ctx, const char *project, const char *bucket, const ds_share_in_t *in,
                                ds_be_bucket_t *out, ds_bucket_sharing_t *sh);
/*
 * One recipient of a share (field names member in errors): add lets project
 * member link bucket, creating the share with member alone when there is none
 * (a share with the whole organization includes it already); remove takes it
 * out, ending the share with its last recipient. Removing is NOT_FOUND when
 * the bucket is not shared, CONFLICT when it is shared with the organization
 * or while member links it; removing a project never included changes nothing.
 */
ds_status_t ds_cmd_bucket_share_member(ds_ctx_t *ctx, const char *project, const char *bucket, const char *member,
                                       const char *field, bool add);
/* Ends a share; CONFLICT while links read it, unless force (the links then stop working at once). */
ds_status_t ds_cmd_bucket_unshare(ds_ctx_t *ctx, const char *project, const char *bucket, bool force);
/* Links source_project's shared source_bucket into project as bucket id bucket. */
ds_status_t ds_cmd_bucket_link(ds_ctx_t *ctx, const char *project, const char *bucket, const char *source_project,
                               const char *source_bucket, ds_be_bucket_t *out, ds_bucket_sharing_t *sh);
/* Removes the link bucket of project. */
ds_status_t ds_cmd_bucket_unlink(ds_ctx_t *ctx, const char *project, const char *bucket);
/* Read-only role: grant (true) or revoke the right of project's workspaces to read bucket (own or linked). */
ds_status_t ds_cmd_bucket_readonly(ds_ctx_t *ctx, const char *project, const char *bucket, bool grant);
/* The sharing of every bucket of project that takes part in any (items ordered by bucket). */
ds_status_t ds_cmd_bucket_sharing(ds_ctx_t *ctx, const char *project, ds_bucket_sharing_t **items, size_t *n);

/* ---- tables ---- */
typedef struct {
    const char *name;
    const char *type; /* NULL: VARCHAR */
    bool nullable;
    const char *default_value; /* NULL: none */
} ds_column_in_t;

typedef struct {
    const char *name;
    ds_column_in_t *columns;
    size_t n_columns;
    const char **primary_key;
    size_t n_primary_key;
} ds_table_create_t;

ds_status_t ds_cmd_table_create(ds_ctx_t *ctx, const char *project, const char *bucket,
                                const ds_table_create_t *in, ds_be_table_t *out);
ds_status_t ds_cmd_table_get(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                             ds_be_table_t *out);
ds_status_t ds_cmd_table_list(ds_ctx_t *ctx, const char *project, const char *bucket, ds_be_table_t **items,
                              size_t *n);
/*
 * Drops a table, or an alias (alias.c). A table or alias that aliases read
 * needs force, which drops those aliases too (and theirs); without it
 * DS_CONFLICT names them.
 */
ds_status_t ds_cmd_table_drop(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table, bool force);

/* ---- table aliases (alias.c) ----
 * An alias is a read-only view of a table (or of an unfiltered auto-sync
 * alias): an optional filter (one column, eq or ne, one or more values) and
 * either the source's columns as they are at every read (auto_sync) or a
 * pinned list. Every read route reads it; writes answer 400. */
typedef struct {
    const char *bucket; /* the alias's bucket (as clients name it) */
    const char *name;
    const char *source_bucket; /* what it reads: a table or an alias */
    const char *source_table;
    const ds_filter_t *filter; /* NULL: none; op DS_OP_EQ or DS_OP_NE */
    bool auto_sync;
    const char **columns; /* !auto_sync: the pinned columns */
    size_t n_columns;
    int64_t created_at;
} ds_alias_t;

typedef struct {
    const char *bucket; /* where the alias goes */
    const char *name;
    const ds_filter_t *filter; /* NULL: none */
    const char **columns;      /* NULL: none given */
    size_t n_columns;
    int auto_sync; /* -1: not given (true unless columns are given), 0, 1 */
} ds_alias_create_t;

/* Creates an alias of source_bucket.source_table; *out is its table info, *alias its definition. */
ds_status_t ds_cmd_alias_create(ds_ctx_t *ctx, const char *project, const char *source_bucket,
                                const char *source_table, const ds_alias_create_t *in, ds_be_table_t *out,
                                ds_alias_t *alias);
/* Sets (filter non-NULL) or removes (NULL) the filter of alias bucket.name. */
ds_status_t ds_cmd_alias_filter_set(ds_ctx_t *ctx, const char *project, const char *bucket, const char *name,
                                    const ds_filter_t *filter, ds_be_table_t *out, ds_alias_t *alias);
/* Turns column sync on (the source's columns at every read) or off (pins the columns it has now). */
ds_status_t ds_cmd_alias_sync_set(ds_ctx_t *ctx, const char *project, const char *bucket, const char *name,
                                  bool auto_sync, ds_be_table_t *out, ds_alias_t *alias);
/*
 * ds_cmd_table_get and ds_cmd_table_list that also say which items are
 * aliases: *alias (may be NULL) gets the definition and *is_alias is set;
 * (*aliases)[i] is NULL for a table. Aliases answer their own columns, the
 * rows they select (exact) and 0 bytes (storage counts in the source).
 */
ds_status_t ds_cmd_object_get(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                              ds_be_table_t *out, ds_alias_t *alias, bool *is_alias);
ds_status_t ds_cmd_object_list(ds_ctx_t *ctx, const char *project, const char *bucket, ds_be_table_t **items,
                               size_t *n, const ds_alias_t ***aliases);

/* ---- table data (import, export, preview, profile, delete rows) ---- */

/* The table-data structs (ds_import_t, ds_export_t, ...) are in duckstore/backend.h. */

/* The dedup options an import or a workspace load takes: a known type and valid column names (400 otherwise). */
ds_status_t ds_cmd_check_dedup(ds_ctx_t *ctx, ds_dedup_t dedup, const char *const *columns, size_t n);
ds_status_t ds_cmd_table_import(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                                const ds_import_t *in, ds_import_result_t *out);
ds_status_t ds_cmd_table_export(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                                const ds_export_t *in, ds_export_result_t *out);
ds_status_t ds_cmd_table_preview(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                                 const ds_preview_t *in, ds_preview_result_t *out);
ds_status_t ds_cmd_table_profile(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                                 ds_profile_result_t *out);
ds_status_t ds_cmd_table_delete_rows(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                                     const ds_where_t *where, int64_t *deleted, int64_t *table_rows);

/* ---- schema changes ---- */
ds_status_t ds_cmd_column_add(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                              const ds_column_in_t *col);
ds_status_t ds_cmd_column_drop(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                               const char *column);
ds_status_t ds_cmd_column_alter(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                                const char *column, const ds_column_alter_t *alter);
ds_status_t ds_cmd_primary_key_add(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table,
                                   const char **columns, size_t n);
ds_status_t ds_cmd_primary_key_drop(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table);

/* ---- development branches (branch.c) ----
 * A branch starts as a view of main: a table the branch has not written reads
 * main's current data; the first write to it copies it into the branch, and
 * later writes go to the copy. Table commands work in a branch when
 * ctx->branch names one (every table command above honours it). */
typedef struct {
    const char *id;     /* "bucket.table" */
    const char *source; /* "branch" (the branch owns a copy or created it) | "main" (reads through) */
} ds_branch_table_t;

typedef struct {
    ds_be_branch_t branch;
    ds_branch_table_t *tables;
    size_t n_tables;
} ds_branch_info_t;

/*
 * The one resolver, for other features (branch workspaces, aliases): the
 * physical bucket and table that (branch, bucket, table) of project reads in
 * the engine: the branch's own copy, else main's table (NULL or "default"
 * branch: main's). 404 when the branch does not see the table (it dropped it,
 * or nobody has it). Results in ctx's arena. Commands in src/cmd/ use the
 * finer functions of internal.h (ds_cmd_branch_resolve_table, _write).
 */
ds_status_t ds_cmd_branch_read_table(ds_ctx_t *ctx, const char *project, const char *branch, const char *bucket,
                                     const char *table, const char **phys_bucket, const char **phys_table);
/* Creates branch id (NULL: generated) of project; O(1): nothing is copied. */
ds_status_t ds_cmd_branch_create(ds_ctx_t *ctx, const char *project, const char *id, const char *name,
                                 ds_be_branch_t *out);
ds_status_t ds_cmd_branch_list(ds_ctx_t *ctx, const char *project, ds_be_branch_t **items, size_t *n);
/* The branch plus every table it sees, and whether it owns it or reads main's. */
ds_status_t ds_cmd_branch_get(ds_ctx_t *ctx, const char *project, const char *id, ds_branch_info_t *out);
/* Removes the branch and only its own storage, in one transaction. */
ds_status_t ds_cmd_branch_delete(ds_ctx_t *ctx, const char *project, const char *id);
/* The branch's table goes back to main's current data (a table main lacks: 404); out: the table as the branch sees it. */
ds_status_t ds_cmd_branch_pull(ds_ctx_t *ctx, const char *project, const char *branch, const char *bucket,
                               const char *table, ds_be_table_t *out);
/*
 * Applies every table the branch wrote (copies, new tables, drops) to main in
 * one transaction and empties the branch. Unless force, a table main changed
 * after the branch copied (or hid) it, or one main created meanwhile, refuses
 * the whole merge: DS_CONFLICT, with *conflicts (ctx arena) naming them.
 */
ds_status_t ds_cmd_branch_merge(ds_ctx_t *ctx, const char *project, const char *branch, bool force,
                                const char ***merged, size_t *n_merged, const char ***conflicts, size_t *n_conflicts);

#endif
