/*
 * be.h - the only way core code calls a backend.
 *
 * Small static inline wrappers (SQLite's sqlite3OsRead pattern): one place for
 * the NULL-method check, so a backend that leaves a method out answers
 * "not supported by backend X" instead of crashing.
 */
#ifndef DS_BACKEND_BE_H
#define DS_BACKEND_BE_H

#include "backend/registry.h"
#include "core/arena.h"
#include "core/status.h"

/*
 * Allocation failures: a request whose arena already failed (something it
 * built may be incomplete) never reaches the backend, and one whose arena
 * failed during the call (a result may hold NULLs) fails with 503.
 */
static inline bool ds_be_call_ok(ds_be_call_t *call)
{
    if (!ds_arena_failed(call->arena))
        return true;
    ds_err_set(call->err, DS_UNAVAILABLE, "out of memory; the request was not carried out");
    return false;
}
static inline ds_status_t ds_be_call_done(ds_be_call_t *call, ds_status_t st)
{
    if (st == DS_OK && ds_arena_failed(call->arena))
        return ds_err_set(call->err, DS_UNAVAILABLE, "out of memory while building the result");
    return st;
}

#define DS_BE_CALL(b, call, method, ...)                                                                      \
    (!ds_be_call_ok(call) ? DS_UNAVAILABLE                                                                  \
     : (b)->ops->method   ? ds_be_call_done((call), (b)->ops->method((b)->self, (call), __VA_ARGS__))       \
                          : ds_err_set((call)->err, DS_UNSUPPORTED, "%s is not supported by backend %s", #method, \
                                       (b)->ops->name))
#define DS_BE_CALL0(b, call, method)                                                                          \
    (!ds_be_call_ok(call) ? DS_UNAVAILABLE                                                                  \
     : (b)->ops->method   ? ds_be_call_done((call), (b)->ops->method((b)->self, (call)))                    \
                          : ds_err_set((call)->err, DS_UNSUPPORTED, "%s is not supported by backend %s", #method, \
                                       (b)->ops->name))

static inline ds_status_t ds_be_project_create(ds_backend_t *b, ds_be_call_t *c)
{
    return DS_BE_CALL0(b, c, project_create);
}
static inline ds_status_t ds_be_project_drop(ds_backend_t *b, ds_be_call_t *c)
{
    return DS_BE_CALL0(b, c, project_drop);
}
static inline ds_status_t ds_be_project_stats(ds_backend_t *b, ds_be_call_t *c, ds_be_project_stats_t *out)
{
    return DS_BE_CALL(b, c, project_stats, out);
}
static inline ds_status_t ds_be_project_meta_put(ds_backend_t *b, ds_be_call_t *c, const char *doc)
{
    return DS_BE_CALL(b, c, project_meta_put, doc);
}
static inline ds_status_t ds_be_project_meta_get(ds_backend_t *b, ds_be_call_t *c, char **doc)
{
    return DS_BE_CALL(b, c, project_meta_get, doc);
}
static inline ds_status_t ds_be_project_quarantine(ds_backend_t *b, ds_be_call_t *c, const char *dir, bool *moved)
{
    return DS_BE_CALL(b, c, project_quarantine, dir, moved);
}
static inline ds_status_t ds_be_idem_lookup(ds_backend_t *b, ds_be_call_t *c, const char *token, int64_t not_before,
                                            ds_be_idem_rec_t *out)
{
    return DS_BE_CALL(b, c, idem_lookup, token, not_before, out);
}
static inline ds_status_t ds_be_bucket_create(ds_backend_t *b, ds_be_call_t *c, const ds_be_bucket_t *bk)
{
    return DS_BE_CALL(b, c, bucket_create, bk);
}
static inline ds_status_t ds_be_bucket_get(ds_backend_t *b, ds_be_call_t *c, const char *id, ds_be_bucket_t *out)
{
    return DS_BE_CALL(b, c, bucket_get, id, out);
}
static inline ds_status_t ds_be_bucket_list(ds_backend_t *b, ds_be_call_t *c, ds_be_bucket_t **items, size_t *n)
{
    return DS_BE_CALL(b, c, bucket_list, items, n);
}
static inline ds_status_t ds_be_bucket_drop(ds_backend_t *b, ds_be_call_t *c, const char *id, bool force)
{
    return DS_BE_CALL(b, c, bucket_drop, id, force);
}
static inline ds_status_t ds_be_table_create(ds_backend_t *b, ds_be_call_t *c, const ds_be_table_t *def)
{
    return DS_BE_CALL(b, c, table_create, def);
}
static inline ds_status_t ds_be_table_get(ds_backend_t *b, ds_be_call_t *c, const char *bucket,
                                          const char *table, ds_be_table_t *out)
{
    return DS_BE_CALL(b, c, table_get, bucket, table, out);
}
static inline ds_status_t ds_be_table_list(ds_backend_t *b, ds_be_call_t *c, const char *bucket,
                                           ds_be_table_t **items, size_t *n)
{
    return DS_BE_CALL(b, c, table_list, bucket, items, n);
}
static inline ds_status_t ds_be_table_drop(ds_backend_t *b, ds_be_call_t *c, const char *bucket,
                                           const char *table)
{
    return DS_BE_CALL(b, c, table_drop, bucket, table);
}

/*
 * Development branch primitives (appended to the ops struct after version 1):
 * read only when the backend's struct covers them, else "not supported".
 */
#define DS_BE_CALL_V2(b, call, method, ...)                                                                   \
    (DS_BE_HAS((b)->ops, method) ? DS_BE_CALL(b, call, method, __VA_ARGS__)                                 \
                                 : ds_err_set((call)->err, DS_UNSUPPORTED, "%s is not supported by backend %s", \
                                              #method, (b)->ops->name))
static inline ds_status_t ds_be_table_version(ds_backend_t *b, ds_be_call_t *c, const char *bucket,
                                              const char *table, int64_t *version)
{
    return DS_BE_CALL_V2(b, c, table_version, bucket, table, version);
}
static inline ds_status_t ds_be_branch_create(ds_backend_t *b, ds_be_call_t *c, const ds_be_branch_t *br)
{
    return DS_BE_CALL_V2(b, c, branch_create, br);
}
static inline ds_status_t ds_be_branch_list(ds_backend_t *b, ds_be_call_t *c, ds_be_branch_t **items, size_t *n)
{
    return DS_BE_CALL_V2(b, c, branch_list, items, n);
}
static inline ds_status_t ds_be_branch_drop(ds_backend_t *b, ds_be_call_t *c, const char *id, const char *prefix)
{
    return DS_BE_CALL_V2(b, c, branch_drop, id, prefix);
}
static inline ds_status_t ds_be_marks_list(ds_backend_t *b, ds_be_call_t *c, const char *prefix, ds_be_mark_t **items,
                                           size_t *n)
{
    return DS_BE_CALL_V2(b, c, marks_list, prefix, items, n);
}
static inline ds_status_t ds_be_table_time_travel(ds_backend_t *b, ds_be_call_t *c, const ds_be_time_travel_t *in,
                                                  int64_t *rows)
{
    return DS_BE_CALL_V2(b, c, table_time_travel, in, rows);
}
static inline ds_status_t ds_be_history_expire(ds_backend_t *b, ds_be_call_t *c, int64_t not_before_us, int64_t *rows)
{
    return DS_BE_CALL_V2(b, c, history_expire, not_before_us, rows);
}
static inline ds_status_t ds_be_history_expire_next(ds_backend_t *b, ds_be_call_t *c, int64_t not_before_us,
                                                    int64_t *rows, int64_t *next_us)
{
    return DS_BE_CALL_V2(b, c, history_expire_next, not_before_us, rows, next_us);
}
static inline ds_status_t ds_be_project_compact(ds_backend_t *b, ds_be_call_t *c, const ds_be_compact_t *in,
                                                ds_be_compact_result_t *out)
{
    return DS_BE_CALL_V2(b, c, project_compact, in, out);
}
static inline ds_status_t ds_be_tables_move(ds_backend_t *b, ds_be_call_t *c, const ds_be_move_t *moves, size_t n)
{
    return DS_BE_CALL_V2(b, c, tables_move, moves, n);
}
static inline ds_status_t ds_be_tables_restore(ds_backend_t *b, ds_be_call_t *c, const ds_be_restore_t *items,
                                               size_t n)
{
    return DS_BE_CALL_V2(b, c, tables_restore, items, n);
}

static inline ds_status_t ds_be_tables_move_restore(ds_backend_t *b, ds_be_call_t *c, const ds_be_move_t *moves,
                                                    size_t n_moves, const ds_be_restore_t *items, size_t n)
{
    return DS_BE_CALL_V2(b, c, tables_move_restore, moves, n_moves, items, n);
}

/* Table aliases (appended after version 1): "not supported" when the backend's struct lacks them. */
static inline ds_status_t ds_be_alias_put(ds_backend_t *b, ds_be_call_t *c, const ds_be_alias_t *a)
{
    return DS_BE_CALL_V2(b, c, alias_put, a);
}
static inline ds_status_t ds_be_alias_list(ds_backend_t *b, ds_be_call_t *c, const char *scope, const char *bucket,
                                           const char *name, ds_be_alias_t **items, size_t *n)
{
    return DS_BE_CALL_V2(b, c, alias_list, scope, bucket, name, items, n);
}
static inline ds_status_t ds_be_alias_drop(ds_backend_t *b, ds_be_call_t *c, const char *scope, const char *bucket,
                                           const char *name)
{
    return DS_BE_CALL_V2(b, c, alias_drop, scope, bucket, name);
}
static inline ds_status_t ds_be_table_count(ds_backend_t *b, ds_be_call_t *c, const char *bucket, const char *table,
                                            const ds_where_t *where, int64_t *rows)
{
    return DS_BE_CALL_V2(b, c, table_count, bucket, table, where, rows);
}
static inline ds_status_t ds_be_table_profile_where(ds_backend_t *b, ds_be_call_t *c, const char *bucket,
                                                    const char *table, const char *const *columns, size_t n,
                                                    const ds_where_t *where, ds_profile_result_t *out)
{
    return DS_BE_CALL_V2(b, c, table_profile_where, bucket, table, columns, n, where, out);
}

#endif
