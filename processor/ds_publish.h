/*
 * ds_publish.h - from partitions' outboxes to the rows people read.
 *
 * One cycle: merge every outbox's rows into the global view (ds_merge.h),
 * and - when publishing is allowed -
 * hand every changed global row and every changed top-headings list to a
 * sink, then let the merge drop the windows closed in every partition.
 *
 * The sink is Kafka in `declstream run` (Avro, with delivery tracking), an
 * in-memory map in the tests, and nothing at all in the replay benchmark, so
 * all three run exactly this code.
 *
 * Publishing is withheld while any partition is still being rebuilt: after
 * a restart the merge starts empty, and publishing some partitions' shares
 * before the others' would make published totals go back.
 *
 * @locality one thread (the publisher).
 */
#ifndef DS_PUBLISH_H
#define DS_PUBLISH_H

#include <stdint.h>

#include "ds_merge.h"
#include "ds_part.h"

typedef struct ds_sink {
        /* one changed row (GATE or COMMODITY); r->aux holds the sketches of GATE DAY rows */
        int (*row)(void *ctx, const ds_row_t *r);
        /* the top headings of a (gate, day) whose cells changed, best first */
        int (*top)(void *ctx, uint32_t gate, int64_t day, const ds_top_entry_t *e, int n);
        void *ctx;
} ds_sink_t;

typedef struct ds_publish_result {
        uint32_t rows;    /* rows handed to the sink */
        uint32_t tops;    /* top lists handed to the sink */
        uint64_t ignored; /* reports ignored: rows closed everywhere, stale or fenced values */
        uint64_t dropped; /* global rows dropped after their windows closed everywhere */
        int published;    /* 0 when withheld (a partition was restoring) */
} ds_publish_result_t;

/* Summary of a set of outboxes' partition positions. */
typedef struct ds_publish_state {
        int restoring;  /* some partition is still being rebuilt */
        int64_t wm_min; /* smallest watermark among partitions that are not idle (INT64_MIN when one of
                         * them has seen no event yet; INT64_MAX when every partition is idle) */
} ds_publish_state_t;

/* Reads the partition positions of a set of outboxes (every partition a
 * flush covers appears in its outbox). A window closes everywhere when it is
 * closed at every partition's watermark; a partition that has seen no event
 * holds every window open, unless it has been idle for idle_ms (as Flink's
 * watermark idleness): then an event it receives later for a window closed
 * everywhere else is too late: the merge refuses it (DS_MERGE_CLOSED, counted
 * in the merge's ignored shares). */
void ds_publish_state(ds_outbox_t *const *obs, int nobs, ds_publish_state_t *st);

/* Merges every outbox row into m (ds_merge_update with the row's partition,
 * epoch and offset); counts ignored ones in res->ignored. 0, or -1 on OOM. */
int ds_publish_merge(ds_merge_t *m, ds_outbox_t *const *obs, int nobs, ds_publish_result_t *res);

/* Hands m's changed rows and top lists to the sink, then drops the windows
 * closed at wm_min (INT64_MIN / INT64_MAX: none). 0, or -1 when the sink
 * failed. Adds to res. */
int ds_publish_emit(ds_merge_t *m, int64_t wm_min, const ds_sink_t *sink, ds_publish_result_t *res);

/* Runs one cycle: merges every outbox row (ds_merge_update with the row's
 * partition, epoch and offset), then, when allowed, publishes. allow: publish (callers pass !state.restoring, computed
 * over every partition they own - including ones that reported nothing).
 * Returns 0, or -1 when the merge ran out of memory or the sink failed. */
int ds_publish_cycle(ds_merge_t *m, ds_outbox_t *const *obs, int nobs, int allow, int64_t wm_min,
                     const ds_sink_t *sink, ds_publish_result_t *res);

#endif
