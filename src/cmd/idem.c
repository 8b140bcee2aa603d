/*
 * idem.c - idempotent writes: the rules, once, above every transport and
 * backend. See ds_cmd_idem_begin in cmd.h.
 *
 * DESIGN
 * A key is scoped to who presents it (a project, or the admin key), so two
 * projects may use the same key. A request is identified by the SHA-256 of
 * its method, target and body; the same key with another request is 409.
 *
 * Three places hold what a key did, checked in this order:
 *  1. `running`, in memory: keys whose first request is still running. A
 *     repeat waits on the entry's condition variable (a bounded wait, given
 *     up on cancellation) and then answers what the first answered.
 *  2. the catalog's records (catalog/idem.h): the first answer, exact status
 *     and body, kept for DUCKSTORE_IDEMPOTENCY_TTL; it survives restarts.
 *  3. the backend's own record, written in the write's transaction (import,
 *     delete rows; ds_cmd_idem_backend_check in data.c). It covers a crash
 *     after the commit and before (2) was written: the retry then finds the
 *     write applied and answers its stored counts without applying again.
 *
 * Transient failures (5xx, 408, 429) are not kept: the client's retry runs
 * the write again, as it should.
 *
 * Lock order: `lock` (this file) before the catalog mutex. Waits release it.
 */
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog/idem.h"
#include "cmd/internal.h"
#include "core/cancel.h"
#include "core/log.h"

#define IDEM_KEY_MAX 255
#define IDEM_WAIT_MAX_S 3600 /* a repeat waits at most this long for the first request */

struct ds_idem {
    struct ds_idem *next;
    char *scope, *key;
    char hash[DS_KEY_HASH_HEX];
    int refs;
    bool done;
    bool kept;   /* done with an answer a repeat may use */
    bool repeat; /* a streamed repeat: holds the kept answer, never in `running`, never kept again */
    char *method, *target; /* streamed writes: what the body's digest completes into the hash */
    int status;
    char *content_type;
    char *body;
    size_t body_len;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static ds_idem_t *running;

static void entry_free(ds_idem_t *e)
{
    if (!e)
        return;
    free(e->scope);
    free(e->key);
    free(e->content_type);
    free(e->body);
    free(e->method);
    free(e->target);
    free(e);
}

/* Drops one reference; lock held. The entry leaves the list when its request ended. */
static void entry_put(ds_idem_t *e)
{
    if (--e->refs > 0)
        return;
    for (ds_idem_t **p = &running; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            break;
        }
    entry_free(e);
}

static ds_idem_t *entry_find(const char *scope, const char *key)
{
    for (ds_idem_t *e = running; e; e = e->next)
        if (!e->done && strcmp(e->scope, scope) == 0 && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static ds_status_t check_key(ds_ctx_t *ctx, const char *key)
{
    size_t n = strlen(key);
    if (n == 0 || n > IDEM_KEY_MAX)
        return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "Idempotency-Key",
                           "the Idempotency-Key must be 1-%d characters, got %zu", IDEM_KEY_MAX, n);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)key[i] < 0x21 || (unsigned char)key[i] > 0x7e)
            return ds_err_setf(&ctx->err, DS_INVALID_ARGUMENT, "Idempotency-Key",
                               "the Idempotency-Key may hold only printable ASCII without spaces (character %zu is "
                               "not)",
                               i + 1);
    return DS_OK;
}

static void request_hash(const char *method, const char *target, const void *body, size_t len,
                         char hex[DS_KEY_HASH_HEX])
{
    crypto_hash_sha256_state s;
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_init(&s);
    crypto_hash_sha256_update(&s, (const unsigned char *)method, strlen(method) + 1);
    crypto_hash_sha256_update(&s, (const unsigned char *)target, strlen(target) + 1);
    crypto_hash_sha256_update(&s, (const unsigned char *)body, len);
    crypto_hash_sha256_final(&s, d);
    sodium_bin2hex(hex, DS_KEY_HASH_HEX, d, sizeof(d));
}

static ds_status_t conflict(ds_ctx_t *ctx, const char *key)
{
    return ds_err_setf(&ctx->err, DS_CONFLICT, "Idempotency-Key",
                       "Idempotency-Key \"%s\" was already used for a different request (method, path or body "
                       "differ); use a new key for a new request",
                       key);
}

static ds_status_t replay(ds_ctx_t *ctx, int status, const char *ctype, const char *body, size_t len,
                          ds_idem_answer_t *ans)
{
    char *b = ds_arena_alloc(ctx->arena, len + 1);
    ans->content_type = ds_arena_strdup(ctx->arena, ctype ? ctype : "application/json");
    if (!b || !ans->content_type)
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    if (len)
        memcpy(b, body, len);
    b[len] = '\0';
    ans->replay = true;
    ans->status = status;
    ans->body = b;
    ans->body_len = len;
    return DS_OK;
}

/*
 * Checks key and authenticates ctx; *scope: who the records belong to ("*admin", or "<project>/<key id>"), so
 * another key of the project (a read key) never sees the answers of this one.
 */
static ds_status_t key_scope(ds_ctx_t *ctx, const char *key, const char **scope)
{
    bool admin;
    char owner[DS_PROJECT_ID_MAX + 1];
    ds_status_t st = check_key(ctx, key);
    if (st == DS_OK)
        st = ds_cmd_authenticate(ctx, &admin, owner);
    if (st != DS_OK)
        return st;
    *scope = admin ? "*admin" : ds_arena_printf(ctx->arena, "%s/%s", owner, ctx->key_id ? ctx->key_id : "");
    return *scope ? DS_OK : ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
}

int64_t ds_cmd_idem_not_before(void) { return ds_now() - ds_service_config()->idempotency_ttl; }

ds_status_t ds_cmd_idem_begin(ds_ctx_t *ctx, const char *key, const char *method, const char *target,
                              const void *body, size_t body_len, ds_idem_t **h, ds_idem_answer_t *ans)
{
    char hash[DS_KEY_HASH_HEX];
    const char *scope;
    *h = NULL;
    memset(ans, 0, sizeof(*ans));
    ds_status_t st = key_scope(ctx, key, &scope);
    if (st != DS_OK)
        return st;
    request_hash(method, target, body ? body : "", body ? body_len : 0, hash);
    time_t give_up = time(NULL) + IDEM_WAIT_MAX_S;
    pthread_mutex_lock(&lock);
    for (;;) {
        ds_idem_t *e = entry_find(scope, key);
        if (!e)
            break;
        if (strcmp(e->hash, hash) != 0) {
            pthread_mutex_unlock(&lock);
            return conflict(ctx, key);
        }
        /* The first request with this key is running: wait for its answer. */
        e->refs++;
        while (!e->done) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&changed, &lock, &ts);
            if (!e->done && (ds_cancel_is_set(ctx->cancel) || time(NULL) > give_up)) {
                entry_put(e);
                pthread_mutex_unlock(&lock);
                return ds_err_set(&ctx->err, DS_UNAVAILABLE,
                                  "the first request with Idempotency-Key \"%s\" is still running; retry later", key);
            }
        }
        if (e->kept) {
            st = replay(ctx, e->status, e->content_type, e->body, e->body_len, ans);
            entry_put(e);
            pthread_mutex_unlock(&lock);
            return st;
        }
        /* It failed transiently: this request runs the write itself. */
        entry_put(e);
    }
    ds_idem_rec_t rec;
    ds_err_t e = {0};
    st = ds_catalog_idem_get(ctx->arena, scope, key, ds_cmd_idem_not_before(), &rec, &e);
    if (st == DS_OK) {
        pthread_mutex_unlock(&lock);
        if (strcmp(rec.request_hash, hash) != 0)
            return conflict(ctx, key);
        return replay(ctx, rec.status, rec.content_type, rec.body, rec.body_len, ans);
    }
    if (st != DS_NOT_FOUND) {
        pthread_mutex_unlock(&lock);
        ctx->err = e;
        return st;
    }
    ds_idem_t *n = calloc(1, sizeof(*n));
    if (n) {
        n->scope = strdup(scope);
        n->key = strdup(key);
    }
    char *token = ds_arena_printf(ctx->arena, "%s\n%s", scope, key);
    if (!n || !n->scope || !n->key || !token) {
        pthread_mutex_unlock(&lock);
        entry_free(n);
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    }
    memcpy(n->hash, hash, sizeof(hash));
    n->refs = 1;
    n->next = running;
    running = n;
    pthread_mutex_unlock(&lock);
    /* The backend's token: fixed length, and the key's text never reaches SQL. */
    char token_hash[DS_KEY_HASH_HEX];
    ds_key_hash(token, token_hash);
    ctx->idem_token = ds_arena_strdup(ctx->arena, token_hash);
    ctx->idem_hash = ds_arena_strdup(ctx->arena, hash);
    *h = n;
    if (!ctx->idem_token || !ctx->idem_hash) {
        ds_cmd_idem_end(h, 503, NULL, NULL, 0);
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    }
    return DS_OK;
}

/* The identity of a streamed write: method, target and the SHA-256 of the bytes it stores. */
static void stream_hash(const char *method, const char *target, const char *digest, char hex[DS_KEY_HASH_HEX])
{
    char body[80];
    int n = snprintf(body, sizeof(body), "stream-sha256:%s", digest);
    request_hash(method, target, body, n > 0 ? (size_t)n : 0, hex);
}

ds_status_t ds_cmd_idem_begin_stream(ds_ctx_t *ctx, const char *key, const char *method, const char *target,
                                     ds_idem_t **h, bool *repeat)
{
    const char *scope;
    *h = NULL;
    *repeat = false;
    ds_status_t st = key_scope(ctx, key, &scope);
    if (st != DS_OK)
        return st;
    ds_idem_t *n = calloc(1, sizeof(*n));
    if (n) {
        n->scope = strdup(scope);
        n->key = strdup(key);
        n->method = strdup(method);
        n->target = strdup(target);
    }
    if (!n || !n->scope || !n->key || !n->method || !n->target) {
        entry_free(n);
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    }
    n->refs = 1;
    pthread_mutex_lock(&lock);
    if (entry_find(scope, key)) {
        /* Not waited for: the repeat's bytes would have to wait somewhere for as long as the first streams. */
        pthread_mutex_unlock(&lock);
        entry_free(n);
        return ds_err_setf(&ctx->err, DS_CONFLICT, "Idempotency-Key",
                           "the first request with Idempotency-Key \"%s\" is still running; retry this upload after "
                           "it answered",
                           key);
    }
    ds_idem_rec_t rec;
    ds_err_t e = {0};
    st = ds_catalog_idem_get(ctx->arena, scope, key, ds_cmd_idem_not_before(), &rec, &e);
    if (st == DS_OK) {
        /* A repeat: its bytes are read and hashed only, then compared (ds_cmd_idem_stream_digest). */
        pthread_mutex_unlock(&lock);
        snprintf(n->hash, sizeof(n->hash), "%s", rec.request_hash);
        n->repeat = true;
        n->status = rec.status;
        n->content_type = strdup(rec.content_type ? rec.content_type : "application/json");
        n->body = malloc(rec.body_len + 1);
        if (!n->content_type || !n->body) {
            entry_free(n);
            return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
        }
        if (rec.body_len)
            memcpy(n->body, rec.body, rec.body_len);
        n->body_len = rec.body_len;
        *h = n;
        *repeat = true;
        return DS_OK;
    }
    if (st != DS_NOT_FOUND) {
        pthread_mutex_unlock(&lock);
        entry_free(n);
        ctx->err = e;
        return st;
    }
    /* The first request: running, its hash unknown (so any other request with the key conflicts). */
    n->next = running;
    running = n;
    pthread_mutex_unlock(&lock);
    *h = n;
    return DS_OK;
}

ds_status_t ds_cmd_idem_stream_digest(ds_ctx_t *ctx, ds_idem_t **h, const char *digest, ds_idem_answer_t *ans)
{
    ds_idem_t *e = h ? *h : NULL;
    memset(ans, 0, sizeof(*ans));
    if (!e)
        return DS_OK;
    char hash[DS_KEY_HASH_HEX];
    stream_hash(e->method, e->target, digest, hash);
    if (!e->repeat) {
        pthread_mutex_lock(&lock);
        memcpy(e->hash, hash, sizeof(hash));
        pthread_mutex_unlock(&lock);
        return DS_OK;
    }
    *h = NULL;
    ds_status_t st = strcmp(e->hash, hash) == 0
                         ? replay(ctx, e->status, e->content_type, e->body, e->body_len, ans)
                         : conflict(ctx, e->key);
    pthread_mutex_lock(&lock);
    entry_put(e);
    pthread_mutex_unlock(&lock);
    return st;
}

static bool keep(int status) { return status < 500 && status != 408 && status != 429 && status != 401; }

void ds_cmd_idem_end(ds_idem_t **h, int status, const char *content_type, const void *body, size_t body_len)
{
    ds_idem_t *e = h ? *h : NULL;
    if (!e)
        return;
    *h = NULL;
    /* A streamed write that ended before its body's digest was known has no identity to keep. */
    bool kept = keep(status) && body && e->hash[0] && !e->repeat;
    if (kept) {
        ds_idem_rec_t rec = {.scope = e->scope,
                             .key = e->key,
                             .request_hash = e->hash,
                             .status = status,
                             .content_type = content_type ? content_type : "application/json",
                             .body = body,
                             .body_len = body_len,
                             .created_at = ds_now()};
        ds_err_t err = {0};
        if (ds_catalog_idem_put(&rec, ds_cmd_idem_not_before(), &err) != DS_OK) {
            /* The write stands; only its repeat would run again. Say so. */
            ds_log(DS_LOG_ERROR, "cannot keep the answer of an idempotent request: %s", err.message);
            kept = false;
        }
    }
    pthread_mutex_lock(&lock);
    if (kept) {
        e->content_type = strdup(content_type ? content_type : "application/json");
        e->body = malloc(body_len + 1);
        if (e->content_type && e->body) {
            memcpy(e->body, body, body_len);
            e->body_len = body_len;
            e->status = status;
            e->kept = true;
        }
    }
    e->done = true;
    pthread_cond_broadcast(&changed);
    entry_put(e);
    pthread_mutex_unlock(&lock);
}

ds_status_t ds_cmd_idem_backend_check(ds_ctx_t *ctx, ds_proj_t *p, bool *applied, int64_t *count)
{
    *applied = false;
    *count = 0;
    if (!ctx->idem_token || !p->be->ops->idem_lookup)
        return DS_OK;
    ds_be_idem_rec_t rec = {0};
    int64_t not_before = ds_cmd_idem_not_before();
    ds_status_t st = ds_be_idem_lookup(p->be, &p->call, ctx->idem_token, not_before, &rec);
    if (st == DS_OK) {
        if (!rec.request_hash || strcmp(rec.request_hash, ctx->idem_hash) != 0)
            return ds_err_setf(&ctx->err, DS_CONFLICT, "Idempotency-Key",
                               "this Idempotency-Key was already used for a different request; use a new key for a "
                               "new request");
        ds_log(DS_LOG_INFO, "project %s: an idempotent write was already applied (its answer was lost); answering "
                            "from the record its transaction kept",
               ctx->project_id ? ctx->project_id : "");
        *applied = true;
        *count = rec.count;
        return DS_OK;
    }
    if (st != DS_NOT_FOUND)
        return st;
    ds_err_clear(&ctx->err);
    ds_be_idem_t *idem = ds_arena_alloc(ctx->arena, sizeof(*idem));
    if (!idem)
        return ds_err_set(&ctx->err, DS_UNAVAILABLE, "out of memory");
    *idem = (ds_be_idem_t){
        .token = ctx->idem_token, .request_hash = ctx->idem_hash, .created_at = ds_now(), .not_before = not_before};
    p->call.idem = idem;
    return DS_OK;
}

void ds_cmd_test_crash_point(const char *what)
{
    const char *hooks = getenv("DUCKSTORE_TEST_HOOKS");
    const char *at = getenv("DUCKSTORE_TEST_CRASH_AFTER_COMMIT");
    if (!hooks || strcmp(hooks, "1") != 0 || !at || strcmp(at, what) != 0)
        return;
    ds_log(DS_LOG_WARN, "test hook: dying like kill -9 after the commit of %s, before its answer", what);
    raise(SIGKILL);
}
