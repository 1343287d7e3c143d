/*
 * ds_pipeline.h - `declstream run`: consume, validate, aggregate, publish.
 *
 *   consumer (main thread)          workers (N threads)            main thread
 *   group membership, rebalance ──► partition queues forwarded ──► every commit.interval.ms:
 *   callbacks, errors               to a worker each; batch         barrier -> rows + offsets
 *                                   decode/validate/ledger/agg      merge, publish, wait for
 *                                   per partition, single writer    delivery, commit offsets
 *
 * A partition's state (ledger, aggregate rows, next offset) is owned by one
 * worker; nothing on the per-message path takes a lock or does a
 * read-modify-write atomic. The main thread talks to a worker only through a
 * barrier (a request slot and two sequence numbers, see ds_pipeline.c).
 *
 * State on assignment: until changelog checkpoints exist, a partition's state
 * is rebuilt by replaying it from its first offset; its rows are published
 * only once it has caught up with the end of the partition as it was at
 * assignment, so published totals never go backwards during a rebuild.
 * Committed offsets serve lag monitoring. A partition whose head the broker
 * has deleted cannot be rebuilt: start-up stops with an error.
 *
 * SIGINT/SIGTERM: stop consuming, publish, commit, leave the group, exit 0;
 * if that takes longer than shutdown.timeout.ms, exit 3.
 */
#ifndef DS_PIPELINE_H
#define DS_PIPELINE_H

#include "ds_config.h"

/* Runs until a signal, exit.on.eof, or a fatal error. Returns the process
 * exit code (0 clean, 1 runtime error, 2 configuration error). */
int ds_pipeline_run(const ds_config_t *cfg);

#endif
