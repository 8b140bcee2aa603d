/*
 * wq.h - bounded FIFO write queues, one per key.
 *
 * DESIGN
 * A key names what a writer needs exclusively: "t/<project>/<bucket>/<table>"
 * for a table's data, "p/<project>" for a project's catalog (DDL). Entering a
 * key's queue takes a ticket; tickets are served in order (FIFO), one holder at
 * a time. When a key already has `depth` requests waiting, entering fails at
 * once with DS_QUEUE_FULL (HTTP 429): nothing waits without bound.
 * A request may also say how long it is willing to wait (max_wait_s): each
 * key remembers its average hold (a moving average of grant-to-leave times,
 * kept after the queue empties), and a request that would be done later than
 * that, by the holder's expected rest plus one average per waiter and one for
 * its own turn, is refused at once with DS_QUEUE_FULL instead of waiting past
 * its client's patience. A key without a known average admits everyone (up to
 * depth).
 * A waiter either blocks its thread (ds_wq_enter) or is parked
 * (ds_wq_enter_async): it keeps its place in the same FIFO and is called back
 * when its turn comes, so a transport can let go of the thread meanwhile.
 *
 * Lock order for callers that need several keys: table keys first (sorted),
 * then the project key. Never enter a key you already hold.
 * Thread-safe.
 */
#ifndef DS_CORE_WQ_H
#define DS_CORE_WQ_H

#include <stdbool.h>
#include <stdint.h>

#include "core/cancel.h"
#include "core/status.h"

typedef struct ds_wq ds_wq_t;
typedef struct ds_wq_slot ds_wq_slot_t;

/* A queue set whose queues each hold at most depth waiters. NULL on failure. */
ds_wq_t *ds_wq_create(int64_t depth);
/* Frees the set (no holder or waiter may remain); *wq set to NULL. Accepts NULL. */
void ds_wq_destroy(ds_wq_t **wq);
/*
 * Waits for key's turn. On DS_OK *slot is held until ds_wq_leave. On
 * DS_QUEUE_FULL (with err naming the queue, or the expected wait when it is
 * over max_wait_s; 0 means no such bound) nothing is held. cancel (may be
 * NULL): when the request is cancelled while it waits, it gives up its place
 * (the others keep their order) and returns DS_CANCELLED, holding nothing.
 */
ds_status_t ds_wq_enter(ds_wq_t *wq, const char *key, double max_wait_s, ds_cancel_t *cancel, ds_wq_slot_t **slot,
                        ds_err_t *err);
/* Called once a parked ticket's turn has come: the slot is held from then on. */
typedef void (*ds_wq_grant_cb)(void *arg);
/*
 * Like ds_wq_enter, but never waits: on DS_OK *slot is set and either
 * *granted is true (held now) or the request is parked in the FIFO, holding
 * no thread, and grant_cb(arg) is called when its turn comes (on the thread
 * that released the slot before it, with no lock of the queue held); it then
 * holds the slot until ds_wq_leave. A parked ticket cannot be given up: its
 * owner waits for the grant. DS_QUEUE_FULL as ds_wq_enter.
 */
ds_status_t ds_wq_enter_async(ds_wq_t *wq, const char *key, double max_wait_s, ds_wq_grant_cb grant_cb, void *arg,
                              ds_wq_slot_t **slot, bool *granted, ds_err_t *err);
/*
 * Gives up a parked ticket (its request was cancelled): true when it was
 * still waiting, and its grant_cb(arg) will never be called; false when its
 * turn came already (the grant was or is being called: the owner then holds
 * the slot as usual) or memory is out.
 */
bool ds_wq_abandon(ds_wq_t *wq, ds_wq_slot_t *slot, void *arg);
/* Releases a held slot; the next waiter in order proceeds. Accepts NULL. */
void ds_wq_leave(ds_wq_t *wq, ds_wq_slot_t *slot);
/* Requests currently waiting (not holding), over all keys. */
int64_t ds_wq_waiting(ds_wq_t *wq);
/* Keys currently held. */
int64_t ds_wq_active(ds_wq_t *wq);

#endif
