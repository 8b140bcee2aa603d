/*
 * internal.h - helpers shared by the command files (not for transports).
 */
#ifndef DS_CMD_INTERNAL_H
#define DS_CMD_INTERNAL_H

#include "backend/be.h"
#include "cmd/cmd.h"
#include "core/wq.h"

/* An open project: its record and its pinned backend (unpinned with the ctx arena). */
typedef struct {
    ds_project_rec_t rec;
    ds_backend_t *be;
    ds_be_call_t call;
    const char *branch;        /* the branch this request works in (stored spelling), or NULL for main */
    const char *branch_prefix; /* the bucket prefix of its storage ("_br_<id lower-case>."), or NULL */
    /* Set when a linked bucket's name swapped this to the source project (share.c): the target project and
     * the link's bucket id there. Such a p serves reads of that one bucket only. */
    const char *linked_project;
    const char *linked_bucket;
} ds_proj_t;

/* Authorizes ctx for project id (admin or that project's key), and opens it. */
/* Opens project *id for this request; *id becomes its stored spelling (ids are unique regardless of case). */
ds_status_t ds_cmd_open_project(ds_ctx_t *ctx, const char **id, ds_proj_t *out);
/* ds_cmd_open_project for a request its command authenticated otherwise (workspace credentials): no key check. */
ds_status_t ds_cmd_open_project_trusted(ds_ctx_t *ctx, const char **id, ds_proj_t *out);
/*
 * Opens a read cursor (the backend's table_scan_open) over bucket.table of
 * open project p with in's columns, where and limit validated and resolved
 * exactly as table export does (data.c). The scan is not tied to the
 * request's cancellation (its reader interrupts it); close it before the
 * request ends.
 */
ds_status_t ds_cmd_scan_open(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, const char *table, const ds_export_t *in,
                             ds_be_scan_t **out);
/*
 * The source options of a load from a table (import from table, workspace
 * loads), Keboola's input mapping: seconds > 0 reads only the rows changed in
 * the last seconds seconds, i.e. w->changed_since becomes now - seconds (UTC
 * text); giving it with a changed_since of w's is DS_INVALID_ARGUMENT naming
 * both. limit (0: all) caps the rows read. Negative values are
 * DS_INVALID_ARGUMENT naming the field. 0 for either: not given.
 */
ds_status_t ds_cmd_source_window(ds_ctx_t *ctx, int64_t seconds, int64_t limit, ds_where_t *w);
/* The stored spelling of project id (ids are unique regardless of case), in ctx's arena; NULL when out of memory. */
const char *ds_cmd_project_spelling(ds_ctx_t *ctx, const char *id);
/*
 * Pins project id for the request until the ctx arena dies: a delete of the
 * project waits for it. DS_NOT_FOUND while the project is being created or
 * deleted. Called by ds_cmd_open_project (project.c).
 */
ds_status_t ds_cmd_project_pin(ds_ctx_t *ctx, const char *id);
/* Holds the write slot for key until the ctx arena dies. */
ds_status_t ds_cmd_enter(ds_ctx_t *ctx, const char *key);
/* Enters the project's catalog (DDL) slot. */
ds_status_t ds_cmd_enter_ddl(ds_ctx_t *ctx, const char *project);
/* Enters the table's data slot. */
ds_status_t ds_cmd_enter_table(ds_ctx_t *ctx, const char *project, const char *bucket, const char *table);
/* ---- names (names.c): every bucket, table and column name resolved to its stored spelling ----
 * Commands call these right after opening the project, before any queue key,
 * backend call or response is built. Results live in the ctx arena. */
/* True when the project's backend treats "Id" and "id" as one name. */
bool ds_cmd_names_fold(const ds_proj_t *p);
/* Validates *bucket and replaces it with the stored spelling; 404 when it does not exist. */
ds_status_t ds_cmd_resolve_bucket(ds_ctx_t *ctx, ds_proj_t *p, const char **bucket);
/*
 * Validates *bucket and *table and replaces them with their stored spellings;
 * def (may be NULL) receives the table. When the table does not exist: with
 * may_be_missing, *table stays as given, *bucket is resolved and *exists is
 * false; otherwise the backend's not-found error.
 */
ds_status_t ds_cmd_resolve_table(ds_ctx_t *ctx, ds_proj_t *p, const char **bucket, const char **table,
                                 bool may_be_missing, ds_be_table_t *def, bool *exists);
/* The spelling of t's column that name names, or name when none does (t may be NULL). */
const char *ds_cmd_column_name(const ds_proj_t *p, const ds_be_table_t *t, const char *name);
/* *out: an arena copy of names[0..n) with every name resolved against t (or *names when n is 0). */
ds_status_t ds_cmd_resolve_columns(ds_ctx_t *ctx, const ds_proj_t *p, const ds_be_table_t *t, const char **const *names,
                                   size_t n, const char ***out);
/* Resolves w's filter columns and in_column against t, in_bucket/in_table and in_ref_column (w's arrays are copied). */
ds_status_t ds_cmd_resolve_where(ds_ctx_t *ctx, ds_proj_t *p, const ds_be_table_t *t, ds_where_t *w);
/* Resolves the order columns against t (the array is copied). */
ds_status_t ds_cmd_resolve_order(ds_ctx_t *ctx, const ds_proj_t *p, const ds_be_table_t *t, ds_order_t **order,
                                 size_t n);
/* Idempotency records created before this (now - DUCKSTORE_IDEMPOTENCY_TTL) are expired (idem.c). */
int64_t ds_cmd_idem_not_before(void);
/*
 * For writes whose backend records the idempotency token in its own
 * transaction (import, delete rows), under the write's slot: when ctx carries
 * a token and the backend already holds its record, *applied is true and
 * *count is the write's stored figure (CONFLICT when the record is of another
 * request). Otherwise sets p->call.idem so the write records it (idem.c).
 */
ds_status_t ds_cmd_idem_backend_check(ds_ctx_t *ctx, ds_proj_t *p, bool *applied, int64_t *count);
/* Test hook (DUCKSTORE_TEST_HOOKS=1 and DUCKSTORE_TEST_CRASH_AFTER_COMMIT=<what>): dies like kill -9. */
void ds_cmd_test_crash_point(const char *what);
/*
 * Queues project id for automatic compaction (compact.c): a command that
 * freed storage (branch drop or merge, expired history) calls it; the
 * maintenance thread compacts the project later when its free space is worth
 * it. Never blocks; a no-op when the thread is not running.
 */
void ds_cmd_compact_soon(const char *project_id);
/* The project's data retention in seconds (its days; 0: it keeps no history) (history.c). */
int64_t ds_cmd_retention_seconds(const ds_project_rec_t *rec);
/* Current unix time in seconds. */
int64_t ds_now(void);
/*
 * Writes rec (the catalog's record) into the project's own storage through the
 * backend's project_meta_put, so a lost catalog can be rebuilt (service.c).
 * DS_OK without doing anything when the backend keeps no copy.
 */
ds_status_t ds_service_project_copy_put(ds_backend_t *be, ds_be_call_t *call, const ds_project_rec_t *rec);

/*
 * Automatic snapshots (snapshot.c): called by a destructive command inside
 * its write slot, before it changes anything. Takes a snapshot of
 * bucket.table (physical names, resolved; def may be NULL) when the switches
 * say so (trigger: a ds_snap_trigger_t of cmd/snapshot.h); *taken (arena)
 * is its id, or NULL when none was taken. DS_OK when taken or not wanted, or
 * when the backend cannot take snapshots (logged); otherwise the error, and
 * the caller must not go on. When the operation then fails, the caller
 * removes the snapshot with ds_cmd_snapshot_discard (a failed request leaves
 * nothing behind).
 */
ds_status_t ds_cmd_snapshot_auto(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, const char *table,
                                 const ds_be_table_t *def, int trigger, const char **taken);
/* Removes the automatic snapshot id (NULL: nothing) of p, taken for an operation that failed. */
void ds_cmd_snapshot_discard(ds_ctx_t *ctx, ds_proj_t *p, const char *id);

/* ---- capability checks (caps.c) ----
 * Each answers DS_OK, or DS_UNSUPPORTED (501 / gRPC UNIMPLEMENTED) naming the
 * project's backend and the capability it lacks. Call after opening the project. */
/* Every bit of cap; what names the operation ("profile") for the message. */
ds_status_t ds_cmd_require_cap(ds_ctx_t *ctx, const ds_proj_t *proj, uint64_t cap, const char *what);
/* Import: DS_CAP_IMPORT, the file format (files), the source filters (table source). */
ds_status_t ds_cmd_require_import(ds_ctx_t *ctx, const ds_proj_t *proj, const ds_import_t *in);
/* Export: DS_CAP_EXPORT, the format, the filters and ordering. */
ds_status_t ds_cmd_require_export(ds_ctx_t *ctx, const ds_proj_t *proj, const ds_export_t *in);
/* Filter operators and data_type casts of where/order (either may be NULL/0). */
ds_status_t ds_cmd_require_filters(ds_ctx_t *ctx, const ds_proj_t *proj, const ds_where_t *where,
                                   const ds_order_t *order, size_t n_order);
/* DS_CAP_TYPED_COLUMNS when any column's (canonical) type is not VARCHAR. */
ds_status_t ds_cmd_require_types(ds_ctx_t *ctx, const ds_proj_t *proj, const ds_be_column_t *columns, size_t n);
/* DS_CAP_SCHEMA_CHANGES, plus DS_CAP_TYPED_COLUMNS when type (may be NULL) is not VARCHAR. */
ds_status_t ds_cmd_require_schema_change(ds_ctx_t *ctx, const ds_proj_t *proj, const char *type);

/* ---- development branches (branch.c) ----
 * The one resolver of (branch, bucket, table) to the physical table: names.c
 * calls it for every table and bucket a command names, so every command is
 * branch-aware; writers call ds_cmd_branch_write instead of
 * ds_cmd_enter_table. Physical names of a branch's own storage carry
 * p->branch_prefix; main's have none (no bucket id may start with "_"). */
/* Called by ds_cmd_open_project when ctx->branch names a branch: checks the capability and that it exists. */
ds_status_t ds_cmd_branch_open(ds_ctx_t *ctx, ds_proj_t *p);
/* True when bucket (a physical id) is branch storage of p's branch. */
bool ds_cmd_branch_owns(const ds_proj_t *p, const char *bucket);
/* The logical id of a physical bucket id (the prefix removed); main ids unchanged. */
const char *ds_cmd_branch_logical(const ds_proj_t *p, const char *bucket);
/*
 * Reads: *bucket and *table (validated) become the physical table the branch
 * sees: its own copy, else main's (unless the branch dropped it). def and
 * exists as ds_cmd_resolve_table, whose branch half this is.
 */
ds_status_t ds_cmd_branch_resolve_table(ds_ctx_t *ctx, ds_proj_t *p, const char **bucket, const char **table,
                                        bool may_be_missing, ds_be_table_t *def, bool *exists);
/* The physical bucket the branch sees for *bucket (its own, else main's); 404 when neither. */
ds_status_t ds_cmd_branch_resolve_bucket(ds_ctx_t *ctx, ds_proj_t *p, const char **bucket);
/*
 * Writes: enters the write slot of the table (as resolved) and makes sure the
 * write lands in the branch: a main table is copied into the branch first
 * (one transaction); a table being created gets the branch's bucket. with_ddl
 * also enters the project's catalog slot (always taken when a copy is made):
 * the caller must then not enter it again. On main it is ds_cmd_enter_table
 * (+ ds_cmd_enter_ddl).
 */
ds_status_t ds_cmd_branch_write(ds_ctx_t *ctx, ds_proj_t *p, const char **bucket, const char **table, bool with_ddl);

/*
 * Writes that replace whole tables of p's branch at once (a snapshot
 * restore): enters the write slots of the branch's tables bucket[i].table[i]
 * (resolved names, i < n) in one order, then the project's catalog slot.
 * Then bucket[i]/table[i] become the destinations in the branch's own
 * storage, exists[i] whether the branch sees a table there now (its own or
 * main's), and *moves (arena) what must commit in the write's transaction
 * (tables_move_restore): the branch's bucket where it has none yet, and for
 * each main table the branch now takes over the mark with main's version, as
 * a copy on first write records (no rows are copied: the write replaces them).
 */
ds_status_t ds_cmd_branch_replace(ds_ctx_t *ctx, ds_proj_t *p, const char **bucket, const char **table, size_t n,
                                  bool *exists, ds_be_move_t **moves, size_t *n_moves);
/* What the branches of p's project store (their copies and own tables; buckets counted too), into *out. */
ds_status_t ds_cmd_branch_storage_stats(ds_proj_t *p, ds_be_project_stats_t *out);
/* The branch view of buckets and tables (ids logical), and the branch's forms of bucket create/drop and table drop. */
ds_status_t ds_cmd_branch_table_list(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, ds_be_table_t **items,
                                     size_t *n);
ds_status_t ds_cmd_branch_bucket_list(ds_ctx_t *ctx, ds_proj_t *p, ds_be_bucket_t **items, size_t *n);
ds_status_t ds_cmd_branch_bucket_get(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, ds_be_bucket_t *out);
ds_status_t ds_cmd_branch_bucket_create(ds_ctx_t *ctx, ds_proj_t *p, const ds_be_bucket_t *b);
ds_status_t ds_cmd_branch_bucket_drop(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, bool force);
ds_status_t ds_cmd_branch_table_drop(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, const char *table);

/* ---- sharing and linked buckets (share.c) ----
 * names.c calls ds_cmd_share_follow when a bucket is not the project's own:
 * a link of p's project turns p into the source project (opened and pinned
 * for this request only), after checking that the share still includes p's
 * project. Writers call ds_cmd_share_refuse_write after resolving. */
/* DS_NOT_FOUND with ctx->err untouched when *bucket is no link of p; else follows it (or refuses it). */
ds_status_t ds_cmd_share_follow(ds_ctx_t *ctx, ds_proj_t *p, const char **bucket);
/* For a p already swapped to a source: *bucket must name the linked bucket again (becomes the source's id). */
ds_status_t ds_cmd_share_again(ds_ctx_t *ctx, ds_proj_t *p, const char **bucket);
/* PERMISSION_DENIED naming the link when p reads a linked bucket; else DS_OK. */
ds_status_t ds_cmd_share_refuse_write(ds_ctx_t *ctx, const ds_proj_t *p);
/* CONFLICT naming the linking projects when links read bucket of p (what: "dropped", ...); else DS_OK. */
ds_status_t ds_cmd_share_check_source(ds_ctx_t *ctx, const ds_proj_t *p, const char *bucket, const char *what);
/* CONFLICT when project has a link named bucket (a bucket of that id cannot be created). */
ds_status_t ds_cmd_share_check_free(ds_ctx_t *ctx, const char *project, const char *bucket);
/* The linked buckets of project as buckets (ids of the target, the rest from the source), appended to *items. */
ds_status_t ds_cmd_share_list_links(ds_ctx_t *ctx, const ds_proj_t *p, ds_be_bucket_t **items, size_t *n);
/* Workspaces' read-only role: PERMISSION_DENIED when project revoked its workspaces' access to bucket. */
ds_status_t ds_cmd_share_readonly_check(ds_ctx_t *ctx, const char *project, const char *bucket, ds_err_t *err);
/* ---- table aliases (alias.c) ----
 * names.c's ds_cmd_resolve_table refuses an alias (writes); reads resolve
 * through ds_cmd_resolve_read, which follows an alias to the table it reads. */
/* The table half of ds_cmd_resolve_table (no alias check): for alias.c. */
ds_status_t ds_cmd_resolve_table_only(ds_ctx_t *ctx, ds_proj_t *p, const char **bucket, const char **table,
                                      bool may_be_missing, ds_be_table_t *def, bool *exists);
/*
 * Forgets what the alias cache (alias.c) holds for project: call after
 * anything that changes a project's alias rows other than alias.c itself
 * (a branch or the whole project dropped or created).
 */
void ds_cmd_alias_forget(const char *project);
/* *out: the alias bucket.name (logical names) visible to p (its branch's, else main's), or NULL. */
ds_status_t ds_cmd_alias_lookup(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, const char *name,
                                const ds_alias_t **out);
/*
 * Reads: like ds_cmd_resolve_table (must exist), but an alias resolves to the
 * physical table it reads (through the branch, following aliases of
 * aliases): *bucket and *table become that table, def the alias's view (its
 * columns, named as the alias), *alias (may be NULL) the alias or NULL for a
 * table, and where (may be NULL) gains the alias's filter.
 */
ds_status_t ds_cmd_resolve_read(ds_ctx_t *ctx, ds_proj_t *p, const char **bucket, const char **table,
                                ds_be_table_t *def, const ds_alias_t **alias, ds_where_t *where);
/*
 * For a read of alias a (view: its def from ds_cmd_resolve_read): checks that
 * names[0..n) are columns of the alias (field names the request field), and
 * when the alias pins its columns and none are named, *names and *n become them.
 */
ds_status_t ds_cmd_alias_columns(ds_ctx_t *ctx, const ds_proj_t *p, const ds_alias_t *a, const ds_be_table_t *view,
                                 const char ***names, size_t *n, const char *field);
/* The exact rows bucket.table (logical names) holds, or selects when it is an alias. */
ds_status_t ds_cmd_read_rows(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, const char *table, int64_t *rows);
/* DS_INVALID_ARGUMENT unless every name (filter, order) is a column of the alias's view. */
ds_status_t ds_cmd_alias_check_column(ds_ctx_t *ctx, const ds_proj_t *p, const ds_alias_t *a,
                                      const ds_be_table_t *view, const char *name, const char *field);
/*
 * Before a drop of bucket.table (table NULL: the whole bucket and all it
 * holds; logical names): the aliases that read it (and, for a bucket, those
 * in it). Without force DS_CONFLICT names them; with force they are dropped
 * (and the aliases reading them). Call inside the project's catalog slot.
 */
ds_status_t ds_cmd_alias_drop_dependents(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, const char *table,
                                         bool force);
/* Before dropping column of bucket.table: DS_CONFLICT when an alias filters on it or pins it. */
ds_status_t ds_cmd_alias_check_column_drop(ds_ctx_t *ctx, ds_proj_t *p, const char *bucket, const char *table,
                                           const char *column);
/*
 * For the merge of p's branch, inside the project's catalog slot: main after
 * the merge has the aliases the branch sees now (main's rows with the
 * branch's over them), so each must hold there: its bucket exists, no table
 * takes its name, its source exists (a table, or an unfiltered auto-sync
 * alias) with the columns it filters on or pins, and is not one of the tables
 * that stay in the branch (stay[0..n_stay): "bucket\ntable", logical). The
 * first that does not is DS_CONFLICT naming it. *moves (arena) gets what
 * applies the branch's rows to main in the merge's tables_move: DS_MOVE_BUCKET
 * for an alias bucket only the branch has, DS_MOVE_ALIAS per row.
 */
ds_status_t ds_cmd_alias_merge_plan(ds_ctx_t *ctx, ds_proj_t *p, const char *const *stay, size_t n_stay,
                                    ds_be_move_t **moves, size_t *n);
/* Drops alias bucket.name (found by ds_cmd_alias_lookup) under the catalog slot; force as for tables. */
ds_status_t ds_cmd_alias_drop(ds_ctx_t *ctx, ds_proj_t *p, const ds_alias_t *a, bool force);

#endif
