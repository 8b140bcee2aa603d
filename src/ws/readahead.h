/*
 * readahead.h - a storage scan read ahead on a thread of its own.
 *
 * DESIGN
 * A sandbox pulls storage rows through ds_storage_scan on its query's
 * thread. Pulling a chunk from the engine runs the engine's part of the read
 * (decompressing, filtering) on the thread that asks, so a workspace load did
 * the engine's reading and the sandbox's writing (compressing, checkpointing)
 * one after the other on one thread. A read-ahead scan moves the pulling to a
 * reader thread that keeps up to 8 chunks (at most 16 MiB of them beyond
 * the first) ready: the two halves overlap on two cores.
 *
 * Readers are bounded: at most `max` run at once (ds_readahead_start); a scan
 * opened while all are busy is read directly, as before. A reader starts on
 * the first next() (a scan that is bound and never read costs no thread) and
 * stops at the end of the rows, on an error (handed to the next next()), or
 * when the scan is closed (close waits for the chunk being read: like a
 * scan read directly, a timeout or cancel of the sandbox's query does not
 * cut the engine's read of one chunk short).
 *
 * Thread-safety: next and close are called by one thread at a time (the
 * ds_be_scan_t contract); the wrapped scan's next runs on the reader only.
 */
#ifndef DS_WS_READAHEAD_H
#define DS_WS_READAHEAD_H

#include "duckstore/backend.h"

/* At most max reader threads at once (0: no read-ahead). Called once at start. */
void ds_readahead_start(int max);

/*
 * A scan that reads inner ahead, owning it (its close closes inner), or inner
 * itself when read-ahead is off or out of memory.
 */
ds_be_scan_t *ds_readahead_wrap(ds_be_scan_t *inner);

/* Reader threads running now (for tests). */
int ds_readahead_running(void);

#endif
