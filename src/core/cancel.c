/*
 * cancel.c - cancellation of one request's work. See cancel.h.
 */
#include "core/cancel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct ds_cancel {
    pthread_mutex_t mu; /* guards hooks and fired */
    struct {
        ds_cancel_cb cb;
        void *ud;
    } hooks[DS_CANCEL_MAX_HOOKS]; /* cb NULL: free slot */
    bool fired;
    _Atomic(const char *) reason; /* NULL until fired; read without the lock */
};

ds_cancel_t *ds_cancel_create(void)
{
    ds_cancel_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    pthread_mutex_init(&c->mu, NULL);
    atomic_init(&c->reason, NULL);
    return c;
}

void ds_cancel_free(ds_cancel_t **c)
{
    if (!c || !*c)
        return;
    pthread_mutex_destroy(&(*c)->mu);
    free(*c);
    *c = NULL;
}

bool ds_cancel_hook(ds_cancel_t *c, ds_cancel_cb cb, void *ud)
{
    if (!c)
        return true;
    bool ok = false;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; !c->fired && !ok && i < DS_CANCEL_MAX_HOOKS; i++) {
        if (!c->hooks[i].cb) {
            c->hooks[i].cb = cb;
            c->hooks[i].ud = ud;
            ok = true;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return ok;
}

void ds_cancel_unhook(ds_cancel_t *c, void *ud)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < DS_CANCEL_MAX_HOOKS; i++)
        if (c->hooks[i].cb && c->hooks[i].ud == ud) {
            c->hooks[i].cb = NULL;
            c->hooks[i].ud = NULL;
            break;
        }
    pthread_mutex_unlock(&c->mu);
}

void ds_cancel_fire(ds_cancel_t *c, const char *reason)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    if (!c->fired) {
        c->fired = true;
        atomic_store(&c->reason, reason ? reason : "cancelled");
        for (int i = 0; i < DS_CANCEL_MAX_HOOKS; i++)
            if (c->hooks[i].cb)
                c->hooks[i].cb(c->hooks[i].ud);
    }
    pthread_mutex_unlock(&c->mu);
}

bool ds_cancel_is_set(ds_cancel_t *c) { return c && atomic_load(&c->reason) != NULL; }

const char *ds_cancel_reason(ds_cancel_t *c) { return c ? atomic_load(&c->reason) : NULL; }
