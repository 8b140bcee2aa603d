/*
 * cancel.h - cancellation of one request's work (a client deadline or cancel).
 *
 * DESIGN
 * A transport that can learn that its client gave up (gRPC: the call's
 * deadline passed or the client cancelled) creates a ds_cancel_t per request
 * and puts it into the request's ds_ctx_t. Code that runs long work registers
 * an interrupt hook for the duration of that work (the DuckDB backend: a
 * function calling duckdb_interrupt() on the connection running the
 * statements) and removes it afterwards. ds_cancel_fire() marks the request
 * cancelled and calls the hooks registered then, each once.
 *
 * Invariants: hooks are called under the object's mutex, so once
 * ds_cancel_unhook() returned a hook is never called again and its data may
 * be freed. A hook set after the request was cancelled is refused (the caller
 * stops at once), so a cancel that arrives between two statements is never
 * lost. Thread-safety: every function may be called from any thread.
 */
#ifndef DS_CORE_CANCEL_H
#define DS_CORE_CANCEL_H

#include <stdbool.h>

typedef struct ds_cancel ds_cancel_t;
typedef void (*ds_cancel_cb)(void *ud);

/* A new, not cancelled object (malloc); NULL when out of memory. Free with ds_cancel_free. */
ds_cancel_t *ds_cancel_create(void);
/* Frees *c and sets it to NULL; accepts NULL. No hook may be registered any more. */
void ds_cancel_free(ds_cancel_t **c);
/* Hooks one request may have at once (e.g. two connections of one command). */
#define DS_CANCEL_MAX_HOOKS 4

/*
 * Registers cb(ud) as an interrupt hook. Returns false, without registering,
 * when c was already cancelled or DS_CANCEL_MAX_HOOKS hooks are registered
 * (the caller then stops: better refused than not interruptible).
 * c NULL: nothing to register, returns true.
 */
bool ds_cancel_hook(ds_cancel_t *c, ds_cancel_cb cb, void *ud);
/* Removes the hook registered with ud; afterwards it is never called. Accepts NULL. */
void ds_cancel_unhook(ds_cancel_t *c, void *ud);
/* Marks c cancelled (reason: static text, e.g. "deadline exceeded") and calls the hooks. */
void ds_cancel_fire(ds_cancel_t *c, const char *reason);
/* True once ds_cancel_fire was called; false for NULL. */
bool ds_cancel_is_set(ds_cancel_t *c);
/* The reason given to ds_cancel_fire, or NULL when not cancelled. */
const char *ds_cancel_reason(ds_cancel_t *c);

#endif
