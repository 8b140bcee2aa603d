/*
 * pg_backend.c - the PostgreSQL backend plugin: settings, connection pool,
 * circuit breaker, health, the metadata schema, projects, buckets, tables.
 *
 * DESIGN
 * Storage layout. One PostgreSQL database (DUCKSTORE_BE_POSTGRES_DATABASE)
 * belongs to one duckstore data directory. Its schema "_duckstore" holds the
 * metadata (projects, buckets, tables: description, primary key, times). A
 * project is a set of schemas, one per bucket, named "<project>/<bucket>"
 * (names over PostgreSQL's 63 bytes become a prefix plus a hash; the metadata
 * maps logical to physical names). A table is a PostgreSQL table with the
 * hidden column "_timestamp" (timestamp, UTC); each column's comment records
 * its canonical duckstore type, logical name and default, so what GET shows is
 * exactly what was created. Primary keys are metadata (as in the DuckDB
 * backend, where insert_duplicates may store equal keys), backed by a
 * non-unique index for the dedup joins. Catalog changes and data changes run
 * in PostgreSQL transactions, so a failure leaves everything as it was.
 *
 * Connections. A pool of DUCKSTORE_BE_POSTGRES_POOL_SIZE connections, made on
 * demand. Before a pooled connection is handed out it is checked without a
 * round trip (socket readable means the server sent something unasked: an
 * error or EOF), so a PostgreSQL restart costs no failed request.
 *
 * Circuit breaker. A failure to connect, or a connection lost mid-call, opens
 * the breaker: from then on calls fail at once with DS_UNAVAILABLE (503) and
 * the reason, instead of each waiting for a connect timeout, and other
 * backends are not affected. A monitor thread probes PostgreSQL every
 * DUCKSTORE_BE_POSTGRES_RETRY_MS while the breaker is open and closes it when
 * a connection succeeds: the backend recovers on its own. The backend
 * registers even when PostgreSQL is down at startup; health says why.
 *
 * Recovery safety: the database records which data directory owns it; a
 * database owned by another one is never listed for orphan removal.
 *
 * Locks: `lock` guards the slots, the breaker and the monitor's flags;
 * `meta_lock` serializes the one-time metadata setup. No lock is held while a
 * statement runs or a connection is made.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "pg.h"

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const ds_be_setting_t settings[] = {
    {.key = "HOST", .type = DS_SETTING_STRING, .default_value = "127.0.0.1",
     .help = "PostgreSQL server host name, address, or Unix socket directory"},
    {.key = "PORT", .type = DS_SETTING_INT, .default_value = "5432", .help = "PostgreSQL server port"},
    {.key = "USER", .type = DS_SETTING_STRING, .default_value = "postgres", .help = "role to connect as"},
    {.key = "PASSWORD", .type = DS_SETTING_STRING, .help = "password of the role (never logged or shown)"},
    {.key = "DATABASE", .type = DS_SETTING_STRING, .required = true,
     .help = "database this duckstore instance owns (one database per data directory)"},
    {.key = "POOL_SIZE", .type = DS_SETTING_INT, .default_value = "4", .help = "connections in the pool (1-256)"},
    {.key = "CONNECT_TIMEOUT", .type = DS_SETTING_INT, .default_value = "2",
     .help = "seconds a connection attempt may take (2-60)"},
    {.key = "RETRY_MS", .type = DS_SETTING_INT, .default_value = "1000",
     .help = "while PostgreSQL is unreachable: calls fail at once, and it is probed this often (50-60000 ms)"},
    {.key = "ACQUIRE_TIMEOUT_MS", .type = DS_SETTING_INT, .default_value = "30000",
     .help = "longest wait for a free pooled connection (100-600000 ms)"},
};

static const ds_be_caps_t caps = {
    .struct_size = sizeof(ds_be_caps_t),
    .case_rule = DS_CASE_INSENSITIVE,
    .import_formats = DS_FORMAT_BIT(DS_FORMAT_CSV),
    .export_formats = DS_FORMAT_BIT(DS_FORMAT_CSV),
    .unsupported_filter_ops = 0,
    .max_name_length = 0,
    .filter_data_types = true,
    .notes = "Parquet is not supported (CSV only); names over 63 bytes are stored under a hashed physical name",
};

/* ---- connections ---- */

static PGconn *connect_pg(pg_be_t *be, char *why, size_t whysz)
{
    char timeout[16];
    snprintf(timeout, sizeof(timeout), "%d", be->connect_timeout_s);
    const char *keys[] = {"host", "port", "user", "password", "dbname", "connect_timeout", "application_name",
                          "options", "keepalives_idle", "keepalives_interval", "keepalives_count", NULL};
    const char *vals[] = {be->host_name, be->port, be->user, be->password, be->database, timeout, "duckstore",
                          "-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c client_min_messages=warning "
                          "-c standard_conforming_strings=on -c extra_float_digits=1",
                          "10", "5", "3", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 0);
    if (c && PQstatus(c) == CONNECTION_OK)
        return c;
    snprintf(why, whysz, "%s", c ? PQerrorMessage(c) : "out of memory");
    size_t n = strlen(why);
    while (n && (why[n - 1] == '\n' || why[n - 1] == ' '))
        why[--n] = '\0';
    /* libpq joins one line per address tried; the first says enough. */
    char *nl = strchr(why, '\n');
    if (nl)
        *nl = '\0';
    PQfinish(c);
    return NULL;
}

/* A pooled connection is usable when it is idle and nothing arrived on it unasked. */
static bool conn_usable(PGconn *c)
{
    if (!c || PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) != PQTRANS_IDLE)
        return false;
    struct pollfd p = {.fd = PQsocket(c), .events = POLLIN};
    if (p.fd < 0)
        return false;
    /*
     * duckstore never LISTENs, so an idle connection has nothing to read
     * unless the server is closing it (a FATAL message, then EOF): replace it.
     */
    return poll(&p, 1, 0) == 0;
}

/* Opens the breaker (or refreshes its reason). Caller does not hold lock. */
static void breaker_trip(pg_be_t *be, const char *why)
{
    pthread_mutex_lock(&be->lock);
    snprintf(be->last_error, sizeof(be->last_error), "%s", why);
    be->failures++;
    be->opened_at = mono_s();
    if (be->state == BREAKER_CLOSED) {
        be->state = BREAKER_OPEN;
        be->host->log(2, PG_BACKEND, "PostgreSQL is unreachable (%s); failing calls fast and probing every %d ms", why,
                      be->retry_ms);
        pthread_cond_broadcast(&be->wake);
    }
    pthread_mutex_unlock(&be->lock);
}

static ds_status_t fail_fast_locked(pg_be_t *be, ds_err_t *err)
{
    return be->host->err_set(err, DS_UNAVAILABLE,
                             "PostgreSQL backend \"%s\" is unavailable: %s (down for %.1f s; retrying every %d ms)",
                             PG_BACKEND, be->last_error[0] ? be->last_error : "cannot connect", mono_s() - be->opened_at,
                             be->retry_ms);
}

void pg_connection_lost(pg_use_t *u, const char *why)
{
    u->broken = true;
    breaker_trip(u->be, why);
}

static ds_status_t ensure_meta(pg_use_t *u);

ds_status_t pg_use_begin(pg_be_t *be, ds_be_call_t *call, pg_use_t *u)
{
    memset(u, 0, sizeof(*u));
    u->be = be;
    u->call = call;
    u->err = call->err;
    pthread_mutex_lock(&be->lock);
    if (be->state == BREAKER_OPEN) {
        ds_status_t st = fail_fast_locked(be, call->err);
        pthread_mutex_unlock(&be->lock);
        return st;
    }
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += be->acquire_timeout_ms / 1000;
    deadline.tv_nsec += (long)(be->acquire_timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pg_slot_t *slot = NULL;
    for (;;) {
        for (int i = 0; i < be->pool_size && !slot; i++)
            if (!be->slots[i].busy)
                slot = &be->slots[i];
        if (slot || be->state == BREAKER_OPEN || be->stopping)
            break;
        if (pthread_cond_timedwait(&be->freed, &be->lock, &deadline) == ETIMEDOUT)
            break;
    }
    if (!slot) {
        ds_status_t st = be->state == BREAKER_OPEN
                             ? fail_fast_locked(be, call->err)
                             : be->host->err_set(call->err, DS_UNAVAILABLE,
                                                 "all %d PostgreSQL connections stayed busy for %d ms; retry later",
                                                 be->pool_size, be->acquire_timeout_ms);
        pthread_mutex_unlock(&be->lock);
        return st;
    }
    slot->busy = true;
    pthread_mutex_unlock(&be->lock);
    u->slot = slot;
    if (!conn_usable(slot->conn)) {
        char why[512];
        PQfinish(slot->conn);
        slot->conn = connect_pg(be, why, sizeof(why));
        if (!slot->conn) {
            breaker_trip(be, why);
            pg_use_end(u);
            return be->host->err_set(call->err, DS_UNAVAILABLE, "PostgreSQL backend \"%s\" is unavailable: %s",
                                     PG_BACKEND, why);
        }
    }
    u->c = slot->conn;
    ds_status_t st = ensure_meta(u);
    if (st != DS_OK)
        pg_use_end(u);
    return st;
}

void pg_use_end(pg_use_t *u)
{
    pg_be_t *be = u->be;
    if (!u->slot)
        return;
    if (!u->broken && u->c && PQtransactionStatus(u->c) != PQTRANS_IDLE) {
        PGresult *r = PQexec(u->c, "ROLLBACK");
        PQclear(r);
        u->broken = PQtransactionStatus(u->c) != PQTRANS_IDLE;
    }
    if (u->broken || (u->slot->conn && PQstatus(u->slot->conn) != CONNECTION_OK)) {
        PQfinish(u->slot->conn);
        u->slot->conn = NULL;
    }
    pthread_mutex_lock(&be->lock);
    u->slot->busy = false;
    pthread_cond_signal(&be->freed);
    pthread_mutex_unlock(&be->lock);
    u->slot = NULL;
    u->c = NULL;
}

/* Probes PostgreSQL while the breaker is open; closes it when a connection works. */
static void *monitor_main(void *arg)
{
    pg_be_t *be = arg;
    pthread_mutex_lock(&be->lock);
    while (!be->stopping) {
        if (be->state == BREAKER_CLOSED) {
            pthread_cond_wait(&be->wake, &be->lock);
            continue;
        }
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_sec += be->retry_ms / 1000;
        t.tv_nsec += (long)(be->retry_ms % 1000) * 1000000L;
        if (t.tv_nsec >= 1000000000L) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&be->wake, &be->lock, &t);
        if (be->stopping || be->state == BREAKER_CLOSED)
            continue;
        pthread_mutex_unlock(&be->lock);
        char why[512] = "";
        PGconn *c = connect_pg(be, why, sizeof(why));
        bool ok = false;
        if (c) {
            PGresult *r = PQexec(c, "SELECT 1");
            ok = PQresultStatus(r) == PGRES_TUPLES_OK;
            if (!ok)
                snprintf(why, sizeof(why), "%s", PQerrorMessage(c));
            PQclear(r);
            PQfinish(c);
        }
        pthread_mutex_lock(&be->lock);
        if (ok) {
            be->host->log(1, PG_BACKEND, "PostgreSQL is reachable again after %.1f s; accepting calls",
                          mono_s() - be->opened_at);
            be->state = BREAKER_CLOSED;
            pthread_cond_broadcast(&be->freed);
        } else {
            snprintf(be->last_error, sizeof(be->last_error), "%s", why);
        }
    }
    pthread_mutex_unlock(&be->lock);
    return NULL;
}

/* ---- metadata schema ---- */

static const char *meta_ddl =
    "SELECT pg_advisory_xact_lock(7411020501);"
    "CREATE SCHEMA IF NOT EXISTS " PG_META ";"
    "CREATE TABLE IF NOT EXISTS " PG_META ".instance (id integer PRIMARY KEY CHECK (id = 1), data_dir text NOT NULL, "
    "created_at bigint NOT NULL);"
    "CREATE TABLE IF NOT EXISTS " PG_META ".projects (id text PRIMARY KEY, created_at bigint NOT NULL);"
    /* The copy of the project's catalog record, from which a lost catalog is rebuilt. */
    "ALTER TABLE " PG_META ".projects ADD COLUMN IF NOT EXISTS catalog_copy text;"
    "CREATE TABLE IF NOT EXISTS " PG_META ".buckets (project text NOT NULL REFERENCES " PG_META ".projects (id) "
    "ON DELETE CASCADE, id text NOT NULL, stage text NOT NULL, name text NOT NULL, description text, "
    "created_at bigint NOT NULL, schema_name text NOT NULL UNIQUE, PRIMARY KEY (project, id));"
    "CREATE UNIQUE INDEX IF NOT EXISTS buckets_nocase ON " PG_META ".buckets (project, lower(id));"
    "CREATE TABLE IF NOT EXISTS " PG_META ".tables (project text NOT NULL, bucket text NOT NULL, name text NOT NULL, "
    "phys text NOT NULL, primary_key text[] NOT NULL DEFAULT '{}', created_at bigint NOT NULL, last_import_at bigint, "
    "last_change_at bigint, PRIMARY KEY (project, bucket, name), FOREIGN KEY (project, bucket) REFERENCES " PG_META
    ".buckets (project, id) ON DELETE CASCADE);"
    "CREATE UNIQUE INDEX IF NOT EXISTS tables_nocase ON " PG_META ".tables (project, bucket, lower(name));"
    /* Idempotent writes: each write with a token records it in its own transaction (backend.h, idem_lookup). */
    "CREATE TABLE IF NOT EXISTS " PG_META ".idempotency (project text NOT NULL REFERENCES " PG_META ".projects (id) "
    "ON DELETE CASCADE, token text NOT NULL, request_hash text NOT NULL, created_at bigint NOT NULL, "
    "count bigint NOT NULL, PRIMARY KEY (project, token));"
    /* try_cast(text, NULL::type): the value as that type, or NULL when it does not convert (TRY_CAST). */
    "CREATE OR REPLACE FUNCTION " PG_META ".try_cast(v text, INOUT typed anyelement) LANGUAGE plpgsql STABLE AS $f$ "
    "BEGIN EXECUTE format('SELECT CAST(%L AS %s)', v, pg_typeof(typed)) INTO typed; "
    "EXCEPTION WHEN others THEN typed := NULL; END $f$;"
    /* castable(text, 'type'): the value converts to the type (with typmod, e.g. numeric(10,2)). */
    "CREATE OR REPLACE FUNCTION " PG_META ".castable(v text, t text) RETURNS boolean LANGUAGE plpgsql STABLE AS $f$ "
    "BEGIN EXECUTE format('SELECT CAST(%L AS %s)', v, t); RETURN true; "
    "EXCEPTION WHEN others THEN RETURN false; END $f$;";

static ds_status_t meta_txn(pg_use_t *u, void *ud)
{
    (void)ud;
    ds_status_t st = pg_exec(u, meta_ddl);
    if (st != DS_OK)
        return st;
    char now[32];
    snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
    const char *params[] = {u->be->host->data_dir, now};
    st = pg_run(u, NULL, "INSERT INTO " PG_META ".instance VALUES (1, $1, CAST($2 AS bigint)) ON CONFLICT DO NOTHING", 2,
                params);
    PGresult *r;
    if (st == DS_OK)
        st = pg_run(u, &r, "SELECT data_dir FROM " PG_META ".instance WHERE id = 1", 0, NULL);
    if (st == DS_OK) {
        pg_be_t *be = u->be;
        snprintf(be->owner_dir, sizeof(be->owner_dir), "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
        be->foreign_owner = strcmp(be->owner_dir, be->host->data_dir) != 0;
        PQclear(r);
    }
    return st;
}

static ds_status_t ensure_meta(pg_use_t *u)
{
    pg_be_t *be = u->be;
    pthread_mutex_lock(&be->meta_lock);
    ds_status_t st = DS_OK;
    if (!be->meta_ready) {
        st = pg_in_txn(u, meta_txn, NULL);
        be->meta_ready = st == DS_OK;
        if (st == DS_OK && be->foreign_owner)
            be->host->log(2, PG_BACKEND,
                          "database %s belongs to data directory %s, not this one; its projects are never removed as "
                          "orphans here",
                          be->database, be->owner_dir);
    }
    pthread_mutex_unlock(&be->meta_lock);
    return st;
}

/* ---- lifecycle ---- */

static char *setting_dup(const ds_host_api_t *host, const char *key)
{
    const char *v = host->setting(PG_BACKEND, key);
    return v ? strdup(v) : NULL;
}

static int setting_int(const ds_host_api_t *host, const char *key, int def)
{
    const char *v = host->setting(PG_BACKEND, key);
    return v ? (int)strtol(v, NULL, 10) : def;
}

static void free_be(pg_be_t *be)
{
    if (!be)
        return;
    for (int i = 0; be->slots && i < be->pool_size; i++)
        PQfinish(be->slots[i].conn);
    free(be->slots);
    free(be->host_name);
    free(be->port);
    free(be->user);
    if (be->password)
        memset(be->password, 0, strlen(be->password));
    free(be->password);
    free(be->database);
    pthread_mutex_destroy(&be->lock);
    pthread_mutex_destroy(&be->meta_lock);
    pthread_cond_destroy(&be->freed);
    pthread_cond_destroy(&be->wake);
    free(be);
}

static ds_status_t be_open(const ds_host_api_t *host, void **self, ds_err_t *err)
{
    pg_be_t *be = calloc(1, sizeof(*be));
    if (!be)
        return host->err_set(err, DS_INTERNAL, "out of memory");
    be->host = host;
    pthread_mutex_init(&be->lock, NULL);
    pthread_mutex_init(&be->meta_lock, NULL);
    pthread_cond_init(&be->freed, NULL);
    pthread_cond_init(&be->wake, NULL);
    be->host_name = setting_dup(host, "HOST");
    be->port = setting_dup(host, "PORT");
    be->user = setting_dup(host, "USER");
    be->password = setting_dup(host, "PASSWORD");
    be->database = setting_dup(host, "DATABASE");
    be->pool_size = setting_int(host, "POOL_SIZE", 4);
    be->connect_timeout_s = setting_int(host, "CONNECT_TIMEOUT", 2);
    be->retry_ms = setting_int(host, "RETRY_MS", 1000);
    be->acquire_timeout_ms = setting_int(host, "ACQUIRE_TIMEOUT_MS", 30000);
    ds_status_t st = DS_OK;
    if (!be->database || !*be->database)
        st = host->err_set(err, DS_INVALID_ARGUMENT, "DUCKSTORE_BE_POSTGRES_DATABASE is empty");
    else if (be->pool_size < 1 || be->pool_size > 256)
        st = host->err_set(err, DS_INVALID_ARGUMENT, "DUCKSTORE_BE_POSTGRES_POOL_SIZE must be 1-256, got %d",
                           be->pool_size);
    else if (be->connect_timeout_s < 2 || be->connect_timeout_s > 60)
        st = host->err_set(err, DS_INVALID_ARGUMENT, "DUCKSTORE_BE_POSTGRES_CONNECT_TIMEOUT must be 2-60, got %d",
                           be->connect_timeout_s);
    else if (be->retry_ms < 50 || be->retry_ms > 60000)
        st = host->err_set(err, DS_INVALID_ARGUMENT, "DUCKSTORE_BE_POSTGRES_RETRY_MS must be 50-60000, got %d",
                           be->retry_ms);
    else if (be->acquire_timeout_ms < 100 || be->acquire_timeout_ms > 600000)
        st = host->err_set(err, DS_INVALID_ARGUMENT,
                           "DUCKSTORE_BE_POSTGRES_ACQUIRE_TIMEOUT_MS must be 100-600000, got %d", be->acquire_timeout_ms);
    else if (!PQisthreadsafe())
        st = host->err_set(err, DS_UNAVAILABLE, "this libpq is not thread-safe");
    else if (!(be->slots = calloc((size_t)be->pool_size, sizeof(pg_slot_t))))
        st = host->err_set(err, DS_INTERNAL, "out of memory");
    if (st == DS_OK) {
        if (pthread_create(&be->monitor, NULL, monitor_main, be) != 0)
            st = host->err_set(err, DS_INTERNAL, "cannot start the PostgreSQL monitor thread");
        else
            be->monitor_started = true;
    }
    if (st != DS_OK) {
        free_be(be);
        return st;
    }
    /* One connection now, so health is true from the start; unreachable is not a failure to open. */
    ds_err_t e = {0};
    ds_be_call_t call = {.err = &e};
    pg_use_t u;
    if (pg_use_begin(be, &call, &u) == DS_OK) {
        host->log(1, PG_BACKEND, "connected to %s:%s/%s as %s (pool of %d)", be->host_name, be->port, be->database,
                  be->user, be->pool_size);
        pg_use_end(&u);
    } else {
        host->log(2, PG_BACKEND, "registered, but PostgreSQL is not usable yet: %s", e.message);
    }
    *self = be;
    return DS_OK;
}

static void be_close(void *self)
{
    pg_be_t *be = self;
    if (!be)
        return;
    pthread_mutex_lock(&be->lock);
    be->stopping = true;
    pthread_cond_broadcast(&be->wake);
    pthread_cond_broadcast(&be->freed);
    pthread_mutex_unlock(&be->lock);
    if (be->monitor_started)
        pthread_join(be->monitor, NULL);
    free_be(be);
}

static ds_status_t be_health(void *self, ds_err_t *err)
{
    pg_be_t *be = self;
    ds_be_call_t call = {.err = err};
    pg_use_t u;
    ds_status_t st = pg_use_begin(be, &call, &u);
    if (st != DS_OK)
        return st;
    st = pg_exec(&u, "SELECT 1");
    pg_use_end(&u);
    return st;
}

static ds_status_t be_project_list_stored(void *self, void (*cb)(const char *, void *), void *ud, ds_err_t *err)
{
    pg_be_t *be = self;
    ds_be_call_t call = {.err = err};
    pg_use_t u;
    PGresult *r;
    ds_status_t st = pg_use_begin(be, &call, &u);
    if (st != DS_OK)
        return st;
    pthread_mutex_lock(&be->meta_lock);
    bool foreign = be->foreign_owner;
    char owner[sizeof(be->owner_dir)];
    snprintf(owner, sizeof(owner), "%s", be->owner_dir);
    pthread_mutex_unlock(&be->meta_lock);
    if (foreign)
        st = be->host->err_set(err, DS_UNAVAILABLE,
                               "database %s belongs to data directory %s; its projects are not listed for removal",
                               be->database, owner);
    if (st == DS_OK)
        st = pg_run(&u, &r, "SELECT id FROM " PG_META ".projects ORDER BY id", 0, NULL);
    if (st == DS_OK) {
        for (int i = 0; i < PQntuples(r); i++)
            cb(PQgetvalue(r, i, 0), ud);
        PQclear(r);
    }
    pg_use_end(&u);
    return st;
}

/* ---- projects ---- */

static const char *now_text(char buf[32])
{
    snprintf(buf, 32, "%lld", (long long)time(NULL));
    return buf;
}

static ds_status_t be_project_create(void *self, ds_be_call_t *call)
{
    pg_use_t u;
    char now[32];
    ds_status_t st = pg_use_begin(self, call, &u);
    if (st != DS_OK)
        return st;
    const char *params[] = {call->project_id, now_text(now)};
    st = pg_run(&u, NULL, "INSERT INTO " PG_META ".projects VALUES ($1, CAST($2 AS bigint))", 2, params);
    if (st == DS_ALREADY_EXISTS)
        st = u.be->host->err_set(call->err, DS_ALREADY_EXISTS, "storage for project \"%s\" already exists",
                                 call->project_id);
    pg_use_end(&u);
    return st;
}

static ds_status_t project_drop_txn(pg_use_t *u, void *ud)
{
    (void)ud;
    PGresult *r;
    const char *params[] = {u->call->project_id};
    ds_status_t st = pg_run(u, &r, "SELECT schema_name FROM " PG_META ".buckets WHERE project = $1", 1, params);
    if (st != DS_OK)
        return st;
    pgbuf_t sql = {0};
    for (int i = 0; i < PQntuples(r) && st == DS_OK; i++) {
        pb_reset(&sql);
        pb_puts(&sql, "DROP SCHEMA IF EXISTS ");
        pb_ident(&sql, PQgetvalue(r, i, 0));
        pb_puts(&sql, " CASCADE");
        st = pg_exec(u, pb_cstr(&sql));
    }
    pb_free(&sql);
    PQclear(r);
    if (st == DS_OK)
        st = pg_run(u, NULL, "DELETE FROM " PG_META ".projects WHERE id = $1", 1, params);
    return st;
}

static ds_status_t be_project_drop(void *self, ds_be_call_t *call)
{
    pg_use_t u;
    ds_status_t st = pg_use_begin(self, call, &u);
    if (st != DS_OK)
        return st;
    st = pg_in_txn(&u, project_drop_txn, NULL);
    pg_use_end(&u);
    return st;
}

/* The project's copy of its catalog record (see project_meta_put in include/duckstore/backend.h). */
static ds_status_t be_project_meta_put(void *self, ds_be_call_t *call, const char *doc)
{
    pg_use_t u;
    PGresult *r;
    ds_status_t st = pg_use_begin(self, call, &u);
    if (st != DS_OK)
        return st;
    const char *params[] = {call->project_id, doc};
    st = pg_run(&u, &r, "UPDATE " PG_META ".projects SET catalog_copy = $2 WHERE id = $1 RETURNING id", 2, params);
    if (st == DS_OK) {
        if (PQntuples(r) == 0)
            st = ((pg_be_t *)self)->host->err_set(call->err, DS_NOT_FOUND, "project \"%s\" has no storage",
                                                  call->project_id);
        PQclear(r);
    }
    pg_use_end(&u);
    return st;
}

static ds_status_t be_project_meta_get(void *self, ds_be_call_t *call, char **doc)
{
    pg_be_t *be = self;
    pg_use_t u;
    PGresult *r;
    *doc = NULL;
    ds_status_t st = pg_use_begin(self, call, &u);
    if (st != DS_OK)
        return st;
    const char *params[] = {call->project_id};
    st = pg_run(&u, &r, "SELECT catalog_copy FROM " PG_META ".projects WHERE id = $1", 1, params);
    if (st == DS_OK) {
        if (PQntuples(r) == 0 || PQgetisnull(r, 0, 0))
            st = be->host->err_set(call->err, DS_NOT_FOUND, "project \"%s\" carries no copy of its catalog record",
                                   call->project_id);
        else if (!(*doc = be->host->strdup(call, PQgetvalue(r, 0, 0))))
            st = be->host->err_set(call->err, DS_UNAVAILABLE, "out of memory");
        PQclear(r);
    }
    pg_use_end(&u);
    return st;
}

ds_status_t pg_table_counts(pg_use_t *u, const char *schema, const char *phys, int64_t *rows, int64_t *bytes)
{
    pgbuf_t sql = {0}, name = {0};
    PGresult *r;
    pb_qualified(&name, schema, phys);
    pb_puts(&sql, "SELECT count(*), pg_table_size(CAST(");
    if (name.oom)
        sql.oom = true; /* pg_run then refuses the statement */
    pb_literal(&sql, pb_cstr(&name));
    pb_puts(&sql, " AS regclass)) FROM ");
    pb_puts(&sql, pb_cstr(&name));
    ds_status_t st = pg_run(u, &r, pb_cstr(&sql), 0, NULL);
    pb_free(&sql);
    pb_free(&name);
    if (st != DS_OK)
        return st;
    if (rows)
        *rows = pg_cell_int(r, 0, 0);
    if (bytes)
        *bytes = pg_cell_int(r, 0, 1);
    PQclear(r);
    return DS_OK;
}

static ds_status_t be_project_stats(void *self, ds_be_call_t *call, ds_be_project_stats_t *out)
{
    pg_use_t u;
    PGresult *r;
    memset(out, 0, sizeof(*out));
    ds_status_t st = pg_use_begin(self, call, &u);
    if (st != DS_OK)
        return st;
    const char *params[] = {call->project_id};
    st = pg_query_int(&u, "SELECT count(*) FROM " PG_META ".buckets WHERE project = $1", 1, params, &out->buckets);
    if (st == DS_OK)
        st = pg_run(&u, &r,
                    "SELECT b.schema_name, t.phys FROM " PG_META ".tables t JOIN " PG_META
                    ".buckets b ON b.project = t.project AND b.id = t.bucket WHERE t.project = $1",
                    1, params);
    if (st == DS_OK) {
        out->tables = PQntuples(r);
        for (int i = 0; i < PQntuples(r) && st == DS_OK; i++) {
            int64_t rows = 0, bytes = 0;
            st = pg_table_counts(&u, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), &rows, &bytes);
            out->rows += rows;
            out->bytes += bytes;
        }
        PQclear(r);
    }
    pg_use_end(&u);
    return st;
}

/* ---- buckets ---- */

static ds_status_t bucket_create_txn(pg_use_t *u, void *ud)
{
    const ds_be_bucket_t *b = ud;
    const char *pid = u->call->project_id;
    int64_t exists = 0;
    const char *p1[] = {pid};
    ds_status_t st = pg_query_int(u, "SELECT count(*) FROM " PG_META ".projects WHERE id = $1", 1, p1, &exists);
    if (st != DS_OK)
        return st;
    if (!exists)
        return u->be->host->err_set(u->err, DS_NOT_FOUND, "project \"%s\" has no storage in PostgreSQL", pid);
    char schema[PG_NAME_MAX + 1], created[32];
    pg_schema_name(pid, b->id, schema);
    snprintf(created, sizeof(created), "%lld", (long long)b->created_at);
    const char *params[] = {pid, b->id, b->stage, b->name, b->description, created, schema};
    st = pg_run(u, NULL,
                "INSERT INTO " PG_META ".buckets (project, id, stage, name, description, created_at, schema_name) "
                "VALUES ($1, $2, $3, $4, $5, CAST($6 AS bigint), $7)",
                7, params);
    pgbuf_t sql = {0};
    if (st == DS_OK) {
        pb_puts(&sql, "CREATE SCHEMA ");
        pb_ident(&sql, schema);
        st = pg_exec(u, pb_cstr(&sql));
    }
    pb_free(&sql);
    if (st == DS_ALREADY_EXISTS)
        return u->be->host->err_set(u->err, DS_ALREADY_EXISTS, "bucket \"%s\" already exists", b->id);
    return st;
}

static ds_status_t be_bucket_create(void *self, ds_be_call_t *call, const ds_be_bucket_t *bucket)
{
    pg_use_t u;
    ds_status_t st = pg_use_begin(self, call, &u);
    if (st != DS_OK)
        return st;
    st = pg_in_txn_recorded(&u, bucket_create_txn, (void *)bucket);
    pg_use_end(&u);
    return st;
}

#define BUCKET_SELECT                                                                                              \
    "SELECT b.id, b.stage, b.name, b.description, b.created_at, (SELECT count(*) FROM " PG_META                    \
    ".tables t WHERE t.project = b.project AND t.bucket = b.id) FROM " PG_META ".buckets b WHERE b.project = $1"

static void bucket_from_row(pg_use_t *u, PGresult *r, int row, ds_be_bucket_t *out)
{
    out->id = pg_cell(u, r, row, 0);
    out->stage = pg_cell(u, r, row, 1);
    out->name = pg_cell(u, r, row, 2);
    out->description = pg_cell(u, r, row, 3);
    out->created_at = pg_cell_int(r, row, 4);
    out->table_count = pg_cell_int(r, row, 5);
}

static ds_status_t be_bucket_get(void *self, ds_be_call_t *call, const char *bucket, ds_be_bucket_t *out)
{
    pg_use_t u;
    PGresult *r;
    ds_status_t st = pg_use_begin(self, call, &u);
    if (st != DS_OK)
        return st;
    const char *params[] = {call->project_id, bucket};
    st = pg_run(&u, &r, BUCKET_SELECT " AND lower(b.id) = lower($2)", 2, params);
    if (st == DS_OK) {
        if (PQntuples(r) == 0) {
            st = u.be->host->err_set(call->err, DS_NOT_FOUND, "bucket \"%s\" not found", bucket);
            call->err->keboola_code = DS_KBC_SCHEMA_NOT_FOUND;
        } else {
            bucket_from_row(&u, r, 0, out);
        }
        PQclear(r);
    }
    pg_use_end(&u);
    return st;
}

static ds_status_t be_bucket_list(void *self, ds_be_call_t *call, ds_be_bucket_t **items, size_t *n)
{
    pg_use_t u;
    PGresult *r;
    *items = NULL;
    *n = 0;
    ds_status_t st = pg_use_begin(self, call, &u);
    if (st != DS_OK)
        return st;
    const char *params[] = {call->project_id};
    st = pg_run(&u, &r, BUCKET_SELECT " ORDER BY b.id COLLATE \"C\"", 1, params);
    if (st == DS_OK) {
        int rows = PQntuples(r);
        *items = u.be->host->alloc(call, sizeof(ds_be_bucket_t) * (size_t)(rows ? rows : 1));
        if (!*items)
            rows = 0; /* the arena's failure fails the call (see the host's be.h) */
        for (int i = 0; i < rows; i++)
            bucket_from_row(&u, r, i, &(*items)[i]);
        *n = (size_t)rows;
        PQclear(r);
    }
    pg_use_end(&u);
    return st;
}

typedef struct {
    const char *bucket;
    bool force;
} bucket_drop_t;

static ds_status_t bucket_drop_txn(pg_use_t *u, void *ud)
{
    bucket_drop_t *d = ud;
    PGresult *r;
    const char *params[] = {u->call->project_id, d->bucket};
    ds_status_t st = pg_run(u, &r,
                            "SELECT b.schema_name, (SELECT count(*) FROM " PG_META
                            ".tables t WHERE t.project = b.project AND t.bucket = b.id) FROM " PG_META
                            ".buckets b WHERE b.project = $1 AND b.id = $2 FOR UPDATE",
                            2, params);
    if (st != DS_OK)
        return st;
    if (PQntuples(r) == 0) {
        PQclear(r);
        st = u->be->host->err_set(u->err, DS_NOT_FOUND, "bucket \"%s\" not found", d->bucket);
        u->err->keboola_code = DS_KBC_SCHEMA_NOT_FOUND;
        return st;
    }
    char *schema = pg_cell(u, r, 0, 0);
    int64_t tables = pg_cell_int(r, 0, 1);
    PQclear(r);
    if (tables > 0 && !d->force)
        return u->be->host->err_set(
            u->err, DS_CONFLICT, "bucket \"%s\" is not empty (%lld tables); delete with force=true to drop its tables too",
            d->bucket, (long long)tables);
    pgbuf_t sql = {0};
    pb_puts(&sql, "DROP SCHEMA IF EXISTS ");
    pb_ident(&sql, schema);
    pb_puts(&sql, " CASCADE");
    st = pg_exec(u, pb_cstr(&sql));
    pb_free(&sql);
    if (st == DS_OK)
        st = pg_run(u, NULL, "DELETE FROM " PG_META ".buckets WHERE project = $1 AND id = $2", 2, params);
    return st;
}

static ds_status_t be_bucket_drop(void *self, ds_be_call_t *call, const char *bucket, bool force)
{
    pg_use_t u;
    ds_status_t st = pg_use_begin(self, call, &u);
    if (st != DS_OK)
        return st;
    bucket_drop_t d = {bucket, force};
    st = pg_in_txn_recorded(&u, bucket_drop_txn, &d);
    pg_use_end(&u);
    return st;
}

/* ---- tables ---- */

/* Comment text: "ds1\n<type>\n<logical name>\n" then "N" (no default) or "D" + the default literal. */
static void comment_text(pgbuf_t *b, const char *canonical, const char *logical, const char *default_value)
{
    pb_printf(b, "ds1\n%s\n%s\n", canonical, logical);
    if (default_value) {
        pb_puts(b, "D");
        pb_puts(b, default_value);
    } else {
        pb_puts(b, "N");
    }
}

ds_status_t pg_column_comment(pg_use_t *u, const pg_table_t *t, const char *column, const char *canonical,
                              const char *default_value)
{
    pgbuf_t sql = {0}, text = {0};
    char phys[PG_NAME_MAX + 1];
    pg_phys_name(column, phys);
    comment_text(&text, canonical, column, default_value);
    pb_puts(&sql, "COMMENT ON COLUMN ");
    pb_qualified(&sql, t->schema, t->phys);
    pb_puts(&sql, ".");
    pb_ident(&sql, phys);
    pb_puts(&sql, " IS ");
    if (text.oom)
        sql.oom = true; /* pg_exec then refuses the statement */
    pb_literal(&sql, pb_cstr(&text));
    ds_status_t st = pg_exec(u, pb_cstr(&sql));
    pb_free(&sql);
    pb_free(&text);
    return st;
}

ds_status_t pg_pk_index(pg_use_t *u, const pg_table_t *t, const char *const *columns, size_t n)
{
    char idx[PG_NAME_MAX + 1], phys[PG_NAME_MAX + 1];
    pgbuf_t sql = {0};
    pg_index_name(t->phys, idx);
    pb_puts(&sql, "DROP INDEX IF EXISTS ");
    pb_qualified(&sql, t->schema, idx);
    if (n) {
        pb_puts(&sql, "; CREATE INDEX ");
        pb_ident(&sql, idx);
        pb_puts(&sql, " ON ");
        pb_qualified(&sql, t->schema, t->phys);
        pb_puts(&sql, " (");
        for (size_t i = 0; i < n; i++) {
            pg_phys_name(columns[i], phys);
            if (i)
                pb_puts(&sql, ", ");
            pb_ident(&sql, phys);
        }
        pb_puts(&sql, ")");
    }
    ds_status_t st = pg_exec(u, pb_cstr(&sql));
    pb_free(&sql);
    return st;
}

/* The schema of bucket, into the arena; DS_NOT_FOUND (2003) when absent. */
static ds_status_t bucket_schema(pg_use_t *u, const char *bucket, const char **schema)
{
    PGresult *r;
    const char *params[] = {u->call->project_id, bucket};
    ds_status_t st =
        pg_run(u, &r, "SELECT schema_name FROM " PG_META ".buckets WHERE project = $1 AND id = $2", 2, params);
    if (st != DS_OK)
        return st;
    if (PQntuples(r) == 0) {
        st = u->be->host->err_set(u->err, DS_NOT_FOUND, "bucket \"%s\" not found", bucket);
        u->err->keboola_code = DS_KBC_SCHEMA_NOT_FOUND;
    } else {
        *schema = pg_cell(u, r, 0, 0);
    }
    PQclear(r);
    return st;
}

static ds_status_t table_create_txn(pg_use_t *u, void *ud)
{
    const ds_be_table_t *def = ud;
    const ds_host_api_t *h = u->be->host;
    pg_table_t t = {.t = *def};
    char phys[PG_NAME_MAX + 1], created[32], tbuf[64];
    ds_status_t st = bucket_schema(u, def->bucket, &t.schema);
    if (st != DS_OK)
        return st;
    pg_phys_name(def->name, phys);
    t.phys = phys;
    pgbuf_t sql = {0}, pk = {0};
    pb_puts(&sql, "CREATE TABLE ");
    pb_qualified(&sql, t.schema, t.phys);
    pb_puts(&sql, " (");
    for (size_t i = 0; i < def->n_columns; i++) {
        const ds_be_column_t *c = &def->columns[i];
        const char *pgt = pg_type_of(c->type, tbuf, sizeof(tbuf));
        if (!pgt) {
            pb_free(&sql);
            return h->err_set(u->err, DS_UNSUPPORTED, "column \"%s\": type %s is not supported by backend \"%s\"",
                              c->name, c->type, PG_BACKEND);
        }
        char cphys[PG_NAME_MAX + 1];
        pg_phys_name(c->name, cphys);
        pb_ident(&sql, cphys);
        pb_printf(&sql, " %s", pgt);
        if (c->default_value) {
            char what[128];
            snprintf(what, sizeof(what), "column \"%s\": default", c->name);
            if ((st = pg_check_value(u, what, c->default_value, pgt)) != DS_OK) {
                pb_free(&sql);
                return st;
            }
            pb_puts(&sql, " DEFAULT CAST(");
            pb_literal(&sql, c->default_value);
            pb_printf(&sql, " AS %s)", pgt);
        }
        if (!c->nullable)
            pb_puts(&sql, " NOT NULL");
        pb_puts(&sql, ", ");
    }
    pb_puts(&sql, "\"_timestamp\" timestamp)");
    st = pg_exec(u, pb_cstr(&sql));
    pb_free(&sql);
    if (st == DS_ALREADY_EXISTS)
        return h->err_set(u->err, DS_ALREADY_EXISTS, "table \"%s.%s\" already exists", def->bucket, def->name);
    for (size_t i = 0; st == DS_OK && i < def->n_columns; i++)
        st = pg_column_comment(u, &t, def->columns[i].name, def->columns[i].type, def->columns[i].default_value);
    pb_puts(&pk, "{");
    for (size_t i = 0; i < def->n_primary_key; i++)
        pb_printf(&pk, "%s%s", i ? "," : "", def->primary_key[i]);
    pb_puts(&pk, "}");
    snprintf(created, sizeof(created), "%lld", (long long)def->created_at);
    const char *params[] = {u->call->project_id, def->bucket, def->name, phys, pb_cstr(&pk), created};
    if (st == DS_OK && pk.oom)
        st = u->be->host->err_set(u->err, DS_UNAVAILABLE, "out of memory while building an SQL statement; nothing was run");
    if (st == DS_OK)
        st = pg_run(u, NULL,
                    "INSERT INTO " PG_META ".tables (project, bucket, name, phys, primary_key, created_at) "
                    "VALUES ($1, $2, $3, $4, CAST($5 AS text[]), CAST($6 AS bigint))",
                    6, params);
    pb_free(&pk);
    if (st == DS_ALREADY_EXISTS)
        return h->err_set(u->err, DS_ALREADY_EXISTS, "table \"%s.%s\" already exists", def->bucket, def->name);
    if (st == DS_OK && def->n_primary_key)
        st = pg_pk_index(u, &t, def->primary_key, def->n_primary_key);
    return st;
}

static ds_status_t be_table_create(void *self, ds_be_call_t *call, const ds_be_table_t *def)
{
    pg_use_t u;
    ds_status_t st = pg_use_begin(self, call, &u);
    if (st != DS_OK)
        return st;
    st = pg_in_txn_recorded(&u, table_create_txn, (void *)def);
    pg_use_end(&u);
    return st;
}

/* Canonical type of a column created outside duckstore (no comment): the nearest mapping. */
static const char *canonical_of(const char *pg)
{
    static const struct {
        const char *pg, *canonical;
    } rev[] = {{"text", "VARCHAR"},
               {"character varying", "VARCHAR"},
               {"integer", "INTEGER"},
               {"bigint", "BIGINT"},
               {"smallint", "SMALLINT"},
               {"double precision", "DOUBLE"},
               {"real", "FLOAT"},
               {"boolean", "BOOLEAN"},
               {"date", "DATE"},
               {"timestamp without time zone", "TIMESTAMP"},
               {"timestamp with time zone", "TIMESTAMP WITH TIME ZONE"},
               {"time without time zone", "TIME"},
               {"interval", "INTERVAL"},
               {"uuid", "UUID"},
               {"bytea", "BLOB"},
               {"json", "JSON"},
               {"jsonb", "JSON"}};
    for (size_t i = 0; i < sizeof(rev) / sizeof(rev[0]); i++)
        if (strcmp(pg, rev[i].pg) == 0)
            return rev[i].canonical;
    return "VARCHAR";
}

/* Splits PostgreSQL's text form of a text[] of plain names ("{a,b}") into an arena array. */
static void split_array(pg_use_t *u, const char *text, const char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!text || strlen(text) < 3)
        return;
    char *copy = u->be->host->strdup(u->call, text + 1);
    copy[strlen(copy) - 1] = '\0';
    size_t count = 1;
    for (const char *p = copy; *p; p++)
        count += *p == ',';
    *out = u->be->host->alloc(u->call, sizeof(char *) * count);
    if (!*out)
        return;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*tok == '"') {
            tok++;
            size_t l = strlen(tok);
            if (l && tok[l - 1] == '"')
                tok[l - 1] = '\0';
        }
        (*out)[(*n)++] = tok;
    }
}

static ds_status_t load_columns(pg_use_t *u, pg_table_t *t)
{
    PGresult *r;
    pgbuf_t name = {0};
    pb_qualified(&name, t->schema, t->phys);
    const char *params[] = {pb_cstr(&name)};
    if (!params[0]) {
        pb_free(&name);
        return u->be->host->err_set(u->err, DS_UNAVAILABLE, "out of memory while building an SQL statement; nothing was run");
    }
    ds_status_t st = pg_run(u, &r,
                            "SELECT a.attname, col_description(a.attrelid, a.attnum), "
                            "format_type(a.atttypid, NULL), NOT a.attnotnull, pg_get_expr(d.adbin, d.adrelid), "
                            "format_type(a.atttypid, a.atttypmod) "
                            "FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
                            "WHERE a.attrelid = CAST($1 AS regclass) AND a.attnum > 0 AND NOT a.attisdropped "
                            "AND a.attname <> '_timestamp' ORDER BY a.attnum",
                            1, params);
    pb_free(&name);
    if (st != DS_OK)
        return st;
    int n = PQntuples(r);
    t->t.columns = u->be->host->alloc(u->call, sizeof(ds_be_column_t) * (size_t)(n ? n : 1));
    if (!t->t.columns)
        n = 0; /* the arena's failure fails the call */
    for (int i = 0; i < n; i++) {
        ds_be_column_t *c = &t->t.columns[i];
        char *comment = pg_cell(u, r, i, 1);
        c->name = pg_cell(u, r, i, 0);
        c->nullable = strcmp(PQgetvalue(r, i, 3), "t") == 0;
        if (comment && strncmp(comment, "ds1\n", 4) == 0) {
            char *type = comment + 4, *logical = strchr(type, '\n');
            char *def = logical ? strchr(logical + 1, '\n') : NULL;
            if (logical && def) {
                *logical++ = '\0';
                *def++ = '\0';
                c->type = type;
                c->name = logical;
                c->default_value = def[0] == 'D' ? def + 1 : NULL;
                continue;
            }
        }
        /* Not created by duckstore: map the type back, show the default expression as it is. */
        const char *full = PQgetvalue(r, i, 5);
        int p, s;
        if (sscanf(full, "numeric(%d,%d)", &p, &s) == 2) {
            char *d = u->be->host->alloc(u->call, 32);
            if (d)
                snprintf(d, 32, "DECIMAL(%d,%d)", p, s);
            c->type = d;
        } else {
            c->type = canonical_of(PQgetvalue(r, i, 2));
        }
        c->default_value = pg_cell(u, r, i, 4);
    }
    t->t.n_columns = (size_t)n;
    PQclear(r);
    return DS_OK;
}

#define TABLE_SELECT_HEAD                                                                                          \
    "SELECT t.bucket, t.name, t.phys, t.primary_key, t.created_at, t.last_import_at, t.last_change_at, "          \
    "b.schema_name FROM " PG_META ".tables t JOIN " PG_META ".buckets b ON b.project = t.project AND b.id = t.bucket "
#define TABLE_SELECT TABLE_SELECT_HEAD "WHERE t.project = $1 AND t.bucket = $2"

static ds_status_t table_from_row(pg_use_t *u, PGresult *r, int row, pg_table_t *out)
{
    memset(out, 0, sizeof(*out));
    out->t.bucket = pg_cell(u, r, row, 0);
    out->t.name = pg_cell(u, r, row, 1);
    out->phys = pg_cell(u, r, row, 2);
    split_array(u, PQgetvalue(r, row, 3), &out->t.primary_key, &out->t.n_primary_key);
    out->t.created_at = pg_cell_int(r, row, 4);
    out->t.last_import_at = pg_cell_int(r, row, 5);
    out->t.last_change_at = pg_cell_int(r, row, 6);
    out->schema = pg_cell(u, r, row, 7);
    return load_columns(u, out);
}

ds_status_t pg_table_describe(pg_use_t *u, const char *bucket, const char *table, pg_table_t *out)
{
    PGresult *r;
    const char *params[] = {u->call->project_id, bucket, table};
    /* Names are case-insensitive here (see caps.case_rule and the nocase indexes): any spelling finds the table. */
    ds_status_t st = pg_run(u, &r,
                            TABLE_SELECT_HEAD
                            "WHERE t.project = $1 AND lower(t.bucket) = lower($2) AND lower(t.name) = lower($3)",
                            3, params);
    if (st != DS_OK)
        return st;
    if (PQntuples(r) == 0) {
        st = u->be->host->err_set(u->err, DS_NOT_FOUND, "table \"%s.%s\" not found", bucket, table);
        u->err->keboola_code = DS_KBC_TABLE_NOT_FOUND;
    } else {
        st = table_from_row(u, r, 0, out);
    }
    PQclear(r);
    return st;
}

ds_status_t pg_touch(pg_use_t *u, const char *bucket, const char *table, bool imported, bool changed)
{
    if (!imported && !changed)
        return DS_OK;
    char now[32];
    const char *params[] = {now_text(now), u->call->project_id, bucket, table};
    const char *sql = imported && changed
                          ? "UPDATE " PG_META ".tables SET last_import_at = CAST($1 AS bigint), last_change_at = "
                            "CAST($1 AS bigint) WHERE project = $2 AND bucket = $3 AND name = $4"
                      : imported ? "UPDATE " PG_META ".tables SET last_import_at = CAST($1 AS bigint) WHERE project = $2 "
                                   "AND bucket = $3 AND name = $4"
                                 : "UPDATE " PG_META ".tables SET last_change_at = CAST($1 AS bigint) WHERE project = $2 "
                                   "AND bucket = $3 AND name = $4";
    return pg_run(u, NULL, sql, 4, params);
}

static ds_status_t be_table_get(void *self, ds_be_call_t *call, const char *bucket, const char *table,
                                ds_be_table_t *out)
{
    pg_use_t u;
    pg_table_t t;
    ds_status_t st = pg_use_begin(self, call, &u);
    if (st != DS_OK)
        return st;
    st = pg_table_describe(&u, bucket, table, &t);
    if (st == DS_OK)
        st = pg_table_counts(&u, t.schema, t.phys, &t.t.rows, &t.t.bytes);
    if (st == DS_OK)
        *out = t.t;
    pg_use_end(&u);
    return st;
}

static ds_status_t be_table_list(void *self, ds_be_call_t *call, const char *bucket, ds_be_table_t **items, size_t *n)
{
    pg_use_t u;
    PGresult *r;
    const char *schema;
    *items = NULL;
    *n = 0;
    ds_status_t st = pg_use_begin(self, call, &u);
    if (st != DS_OK)
        return st;
    st = bucket_schema(&u, bucket, &schema);
    const char *params[] = {call->project_id, bucket};
    if (st == DS_OK)
        st = pg_run(&u, &r, TABLE_SELECT " ORDER BY t.name COLLATE \"C\"", 2, params);
    if (st == DS_OK) {
        int rows = PQntuples(r);
        *items = u.be->host->alloc(call, sizeof(ds_be_table_t) * (size_t)(rows ? rows : 1));
        if (!*items)
            rows = 0; /* the arena's failure fails the call */
        for (int i = 0; i < rows && st == DS_OK; i++) {
            pg_table_t t;
            st = table_from_row(&u, r, i, &t);
            if (st == DS_OK)
                st = pg_table_counts(&u, t.schema, t.phys, &t.t.rows, &t.t.bytes);
            (*items)[i] = t.t;
        }
        *n = (size_t)rows;
        PQclear(r);
    }
    pg_use_end(&u);
    return st;
}

typedef struct {
    const char *bucket;
    const char *table;
} table_ref_t;

static ds_status_t table_drop_txn(pg_use_t *u, void *ud)
{
    table_ref_t *ref = ud;
    pg_table_t t;
    ds_status_t st = pg_table_describe(u, ref->bucket, ref->table, &t);
    if (st != DS_OK)
        return st;
    pgbuf_t sql = {0};
    pb_puts(&sql, "DROP TABLE ");
    pb_qualified(&sql, t.schema, t.phys);
    st = pg_exec(u, pb_cstr(&sql));
    pb_free(&sql);
    const char *params[] = {u->call->project_id, ref->bucket, ref->table};
    if (st == DS_OK)
        st = pg_run(u, NULL, "DELETE FROM " PG_META ".tables WHERE project = $1 AND bucket = $2 AND name = $3", 3,
                    params);
    return st;
}

static ds_status_t be_table_drop(void *self, ds_be_call_t *call, const char *bucket, const char *table)
{
    pg_use_t u;
    ds_status_t st = pg_use_begin(self, call, &u);
    if (st != DS_OK)
        return st;
    table_ref_t ref = {bucket, table};
    st = pg_in_txn_recorded(&u, table_drop_txn, &ref);
    pg_use_end(&u);
    return st;
}

/* ---- the ops table ---- */

static const ds_backend_ops_t ops = {
    .abi_version = DS_BACKEND_ABI_VERSION,
    .struct_size = sizeof(ds_backend_ops_t),
    .name = PG_BACKEND,
    .version = "1.0.0",
    .capabilities = DS_CAP_DRIVER | DS_CAP_TYPED_COLUMNS | DS_CAP_FORMAT_CSV | DS_CAP_IMPORT | DS_CAP_EXPORT |
                    DS_CAP_PROFILE | DS_CAP_SCHEMA_CHANGES,
    .settings = settings,
    .n_settings = sizeof(settings) / sizeof(settings[0]),
    .open = be_open,
    .close = be_close,
    .health = be_health,
    .runtime_stats = NULL,
    .project_list_stored = be_project_list_stored,
    .project_meta_put = be_project_meta_put,
    .project_meta_get = be_project_meta_get,
    .project_create = be_project_create,
    .project_drop = be_project_drop,
    .project_stats = be_project_stats,
    .bucket_create = be_bucket_create,
    .bucket_get = be_bucket_get,
    .bucket_list = be_bucket_list,
    .bucket_drop = be_bucket_drop,
    .table_create = be_table_create,
    .table_get = be_table_get,
    .table_list = be_table_list,
    .table_drop = be_table_drop,
    .table_import = pg_table_import,
    .table_export = pg_table_export,
    .table_preview = pg_table_preview,
    .table_profile = pg_table_profile,
    .table_delete_rows = pg_table_delete_rows,
    .column_add = pg_column_add,
    .column_drop = pg_column_drop,
    .column_alter = pg_column_alter,
    .primary_key_set = pg_primary_key_set,
    .caps = &caps,
    .description = "PostgreSQL 15+ over libpq: one database, a schema per bucket",
    .idem_lookup = pg_idem_lookup,
};

DS_BACKEND_EXPORT const ds_backend_ops_t *ds_backend_entry(const ds_host_api_t *host)
{
    if (!host || host->abi_version != DS_BACKEND_ABI_VERSION || host->struct_size < sizeof(ds_host_api_t)) {
        if (host && host->log)
            host->log(3, PG_BACKEND, "host speaks backend ABI %u (%u bytes); this plugin needs %d", host->abi_version,
                      host->struct_size, DS_BACKEND_ABI_VERSION);
        return NULL;
    }
    return &ops;
}
