/*
 * periodic.c - see periodic.h.
 */
#include "core/periodic.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

struct ds_periodic {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* on CLOCK_MONOTONIC */
    atomic_bool stopping;
    int64_t interval_s;
    void (*task)(void *ud);
    void *ud;
};

static void *run(void *arg)
{
    ds_periodic_t *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!atomic_load(&p->stopping)) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += p->interval_s;
        while (!atomic_load(&p->stopping) && pthread_cond_timedwait(&p->cv, &p->mu, &until) == 0)
            ;
        if (atomic_load(&p->stopping))
            break;
        pthread_mutex_unlock(&p->mu);
        p->task(p->ud);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

ds_status_t ds_periodic_start(ds_periodic_t **out, const char *name, int64_t interval_s, void (*task)(void *ud),
                              void *ud, ds_err_t *err)
{
    *out = NULL;
    ds_periodic_t *p = calloc(1, sizeof(*p));
    if (!p)
        return ds_err_set(err, DS_INTERNAL, "out of memory starting the %s thread", name);
    p->interval_s = interval_s < 1 ? 1 : interval_s;
    p->task = task;
    p->ud = ud;
    atomic_init(&p->stopping, false);
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&p->thread, NULL, run, p) != 0) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return ds_err_set(err, DS_INTERNAL, "cannot start the %s thread", name);
    }
    pthread_setname_np(p->thread, name);
    *out = p;
    return DS_OK;
}

bool ds_periodic_stopping(const ds_periodic_t *p) { return p && atomic_load(&p->stopping); }

void ds_periodic_stop(ds_periodic_t **pp)
{
    ds_periodic_t *p = pp ? *pp : NULL;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stopping, true);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
    *pp = NULL;
}
