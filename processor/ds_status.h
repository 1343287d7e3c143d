/*
 * ds_status.h - what this instance is doing, for /metrics, /readyz and the
 * dashboard.
 *
 * The pipeline's main thread (and the merge-only role's loop) build a
 * ds_status_snap_t every quarter second from state they own - worker
 * counters summed from their relaxed atomic copies (ds_metrics.h), the
 * assignment table, histograms of cycles and restores - and publish it with
 * ds_status_publish(), which copies it under a mutex. HTTP threads copy it
 * out with ds_status_read(). Nobody on the per-message path touches it: the
 * mutex is taken four times a second by the writer and once per request by
 * a reader, and is never held while calling librdkafka or doing I/O.
 *
 * Rates (messages per second) are computed at publish time from a ring of
 * recent samples: the change over the last ten seconds.
 *
 * @locality any thread; @locks one internal mutex.
 */
#ifndef DS_STATUS_H
#define DS_STATUS_H

#include <stdint.h>

#include "ds_hist.h"
#include "ds_merge_role.h"
#include "ds_metrics.h"

#define DS_STATUS_MAX_WORKERS 64

typedef struct ds_status_part {
        int32_t partition;
        int32_t epoch; /* the owner epoch this instance claimed */
        int32_t worker;
        int64_t next_offset;  /* the next input offset to apply, as of the last cycle */
        int64_t committed;    /* the last committed input offset, -1 before the first commit */
        int64_t high;         /* the broker's high watermark as last seen, -1 unknown */
        int64_t lag;          /* high - next offset read by the worker, -1 unknown */
        int64_t watermark_ms; /* the partition's event-time watermark */
} ds_status_part_t;

typedef struct ds_status_snap {
        char instance[128];
        char role[16];      /* process | merge | all */
        int64_t started_ms; /* wall clock */
        int64_t updated_ms; /* wall clock of this snapshot */
        int published;      /* 0 until the first ds_status_publish() */

        /* readiness (see ds_status_ready) */
        int ready;
        char not_ready[192]; /* why not, when not */
        int stopping;

        /* processing role */
        int processing;    /* this instance runs the processing role */
        int assigned_once; /* the group has answered at least once (an empty assignment counts) */
        int restoring;     /* partitions are being restored from the changelog now */
        int fatal;
        ds_counters_t c; /* summed over workers */
        uint64_t partial_rows, changelog_bytes, snapshots, cycles, restores;
        uint64_t partial_messages; /* batches of partial rows */
        uint64_t status_messages;  /* statuses, counted once per partial partition they go to */
        ds_hist_t cycle, restore; /* DS_HIST_MS */
        ds_hist_t commit;         /* committing the input offsets (checkpoint mode) */
        ds_hist_t txn;            /* committing the cycle's transaction (transactions mode) */
        int transactions;
        int64_t last_cycle_ms;
        int nworkers;
        int64_t worker_queue[DS_STATUS_MAX_WORKERS]; /* messages waiting in each worker's queue */
        int nparts;
        ds_status_part_t *parts; /* owned by the snapshot */
        int64_t lag;             /* sum over partitions with a known lag */

        /* merge role */
        int merging;
        ds_merge_role_stats_t merge;

        /* computed by ds_status_publish() */
        double consumed_per_s, applied_per_s, dead_lettered_per_s;
} ds_status_snap_t;

/* Sets the instance name and role reported before the first snapshot. */
void ds_status_init(const char *instance, const char *role);

/* Publishes s (copied; s->parts stays the caller's). Fills the rates and
 * published/updated_ms in the stored copy. */
void ds_status_publish(const ds_status_snap_t *s);

/* Marks the instance as stopping (not ready) without a new snapshot. */
void ds_status_stopping(void);

/* Copies the latest snapshot into out; free with ds_status_snap_free(). */
void ds_status_read(ds_status_snap_t *out);
void ds_status_snap_free(ds_status_snap_t *s);

/* Fills s->ready and s->not_ready from the rest of s: the role's state is
 * restored and assigned (processing: the group answered, no restore under
 * way, no fatal error; merge: every assigned partial partition rebuilt), and,
 * when max_lag > 0, the input lag is at most max_lag. */
void ds_status_ready(ds_status_snap_t *s, int64_t max_lag);

/* The process's resident set size in bytes (/proc/self/statm), 0 if unknown. */
uint64_t ds_status_rss(void);

/* Forgets everything (tests). */
void ds_status_reset(void);

#endif
