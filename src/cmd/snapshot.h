/*
 * snapshot.h - table snapshots: manual, automatic before destructive
 * operations, restore, retention.
 *
 * DESIGN
 * A snapshot is a folder <data>/snapshots/project_<id>/<snapshot id>/ with
 * one Parquet file per table (written by the backend's table_export: every
 * column and _timestamp, so values, types and change times come back as they
 * were) and metadata.json (who, when, why, the tables' definitions, rows and
 * sizes, when it expires). The folder is the snapshot's index entry: it is
 * built as .tmp-<id> and renamed into place once complete, so the rename is
 * the one commit point (docs/architecture.md, "Snapshots"). Deleting renames
 * it to .del-<id> first, so it disappears at once and the bytes go after.
 *
 * Automatic snapshots are taken by the commands that destroy data (table
 * drop, full load, delete of all rows, column drop) inside their write slot,
 * before the backend call: ds_cmd_snapshot_auto. Switches per project, bucket
 * and table live in <data>/snapshots/project_<id>/settings.json.
 *
 * Thread-safety: every function may be called from many threads at once.
 */
#ifndef DS_CMD_SNAPSHOT_H
#define DS_CMD_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>

#include "cmd/cmd.h"

/* What an automatic snapshot is taken before. */
typedef enum {
    DS_SNAP_DROP_TABLE = 0,  /* table drop */
    DS_SNAP_TRUNCATE,        /* a full (non-incremental) load replacing the rows */
    DS_SNAP_DELETE_ALL_ROWS, /* delete rows without any filter */
    DS_SNAP_DROP_COLUMN,     /* column drop */
    DS_SNAP_N_TRIGGERS
} ds_snap_trigger_t;

/* The triggers' names as clients write them ("drop_table", ...). */
extern const char *const ds_snap_trigger_names[DS_SNAP_N_TRIGGERS];

typedef struct {
    const char *bucket;      /* logical bucket id */
    const char *table;       /* NULL: a snapshot of the whole bucket */
    const char *description; /* may be NULL */
    int64_t expires_in;      /* seconds; 0: kept until deleted */
} ds_snapshot_create_t;

typedef struct {
    const char *id;
    const char *branch; /* the branch it was taken in, or NULL (main) */
    const char *bucket; /* logical */
    const char *table;  /* NULL for a bucket snapshot */
    const char *description;
    bool automatic;
    const char *trigger; /* automatic: a ds_snap_trigger_names entry; else NULL */
    const char *key_id;  /* who: the project key's id, or NULL for the admin key */
    int64_t created_at;
    int64_t expires_at; /* 0: never */
    int64_t rows;       /* over all tables */
    int64_t bytes;      /* of the snapshot's files */
    ds_be_table_t *tables; /* definition, rows and bytes (bytes of its files) of each table */
    size_t n_tables;
} ds_snapshot_t;

typedef struct {
    const char *bucket; /* NULL: the snapshot's bucket */
    const char *table;  /* NULL: the snapshot's table (table snapshots only) */
    bool overwrite;     /* restore over an existing table */
} ds_snapshot_restore_t;

/* Switches of one level (bucket and table NULL: the project). on[i]: -1 not set here, 0 off, 1 on. */
typedef struct {
    const char *bucket;
    const char *table;
    int on[DS_SNAP_N_TRIGGERS];
} ds_snapshot_setting_t;

/* Takes a snapshot of a table (or every table of a bucket) as ctx's branch sees it. Results in ctx's arena. */
ds_status_t ds_cmd_snapshot_create(ds_ctx_t *ctx, const char *project, const ds_snapshot_create_t *in,
                                   ds_snapshot_t *out);
/* The project's snapshots that have not expired, newest first (arena array). */
ds_status_t ds_cmd_snapshot_list(ds_ctx_t *ctx, const char *project, ds_snapshot_t **items, size_t *n);
ds_status_t ds_cmd_snapshot_get(ds_ctx_t *ctx, const char *project, const char *id, ds_snapshot_t *out);
ds_status_t ds_cmd_snapshot_delete(ds_ctx_t *ctx, const char *project, const char *id);
/*
 * Makes the snapshot's table(s) again, in ctx's branch, in one backend
 * transaction: into a new table, or over an existing one when in->overwrite.
 * *tables (arena): the restored tables as GET table shows them; *whole_bucket:
 * the snapshot was of a bucket.
 */
ds_status_t ds_cmd_snapshot_restore(ds_ctx_t *ctx, const char *project, const char *id,
                                    const ds_snapshot_restore_t *in, ds_be_table_t **tables, size_t *n,
                                    bool *whole_bucket);
/*
 * The switches: items[0] is the project's level with every switch resolved
 * (unset = on), then every bucket and table that sets any (unset: -1).
 */
ds_status_t ds_cmd_snapshot_settings_get(ds_ctx_t *ctx, const char *project, ds_snapshot_setting_t **items,
                                         size_t *n, int64_t *auto_retention_s);
/* Sets in's level: on[i] 0 or 1 sets, -1 removes the level's own value, 2 leaves it. Names must exist. */
ds_status_t ds_cmd_snapshot_settings_set(ds_ctx_t *ctx, const char *project, const ds_snapshot_setting_t *in);

/*
 * DS_OK when ctx's key may change project's snapshots (in ctx's branch); the
 * error otherwise. Transports ask it before reporting a malformed body, so a
 * key that may not write learns that first.
 */
ds_status_t ds_cmd_snapshot_may_write(ds_ctx_t *ctx, const char *project);

/* ---- for the service (the automatic snapshot hook is in cmd/internal.h) ---- */
/* At start, before serving: removes unfinished (.tmp-) and deleted (.del-) snapshot folders. */
ds_status_t ds_snapshots_start(const ds_config_t *cfg, ds_err_t *err);
/* One pass of the background sweep: removes expired snapshots and deleted leftovers. */
void ds_snapshots_sweep(void);
/* Removes every snapshot of project id (its deletion). */
void ds_snapshots_drop_project(const char *id);

#endif
