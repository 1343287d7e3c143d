/*
 * ds_part.h - one input partition's state, and what it hands over.
 *
 * State belongs to a partition: its ledger (latest version of each
 * declaration), its aggregates (rows of every window), its event-time
 * watermark and its position in the input. ds_part_apply() is the hot path
 * after decoding and validation: advance the watermark, let the ledger
 * decide, retract and add. ds_part_flush() hands the changed rows, the rows
 * of windows that have closed, and the partition's position to an outbox,
 * which another thread merges (ds_publish.h).
 *
 * @locality the thread that owns the partition (a worker); the outbox is
 * handed over at a barrier (ds_pipeline.c) and not touched by the owner
 * until the reader is done.
 */
#ifndef DS_PART_H
#define DS_PART_H

#include <stdint.h>

#include "ds_agg.h"
#include "ds_decl.h"
#include "ds_ledger.h"

/* An event may be stamped this far ahead of the wall clock and still move
 * the watermark (clock skew between customs offices); further ahead it still
 * counts, but cannot close everyone's windows early. */
#define DS_WATERMARK_SKEW_MS (5 * 60000)

typedef struct ds_part_cfg {
        ds_agg_cfg_t agg;
        int64_t ledger_retention_ms;
        uint32_t ledger_sweep_slots; /* ledger slots reclaimed per flush */
        uint32_t ledger_initial;     /* declarations the ledger holds before it first grows (0: 1024) */
        int64_t idle_ms; /* no event for this long (wall clock): the partition stops holding windows open */
        int64_t snapshot_min_bytes; /* snapshot when the changelog since the last one exceeds this and it */
        int snapshot_interval_cycles; /* ... or when this many cycles passed (0: never) */
} ds_part_cfg_t;

typedef struct ds_part {
        int32_t partition;
        ds_ledger_t *ledger;
        ds_agg_t *agg;
        int64_t next_offset;  /* next input offset to process */
        int64_t restore_end;  /* rows are held back until next_offset reaches it */
        int64_t watermark_ms; /* largest event time seen (INT64_MIN: none yet) */
        int64_t active_ms;    /* wall clock of the last event (or of the first flush) */
        int32_t epoch;        /* this owner's epoch (changelog claim) */
        int64_t cl_snap_bytes; /* size of the last snapshot written */
        int64_t cl_tail_bytes; /* changelog bytes written since it */
        int need_snapshot;     /* the next cycle writes a snapshot (ds_restore_result_t.snapshot_due) */
        int cl_cycles;         /* cycles since the last snapshot */
        int eof;              /* read to the end of the partition */
} ds_part_t;

/* What a flush hands over. Vectors grow as needed and are reused. */
typedef struct ds_outrow {
        int32_t partition;
        int32_t epoch;  /* the partition owner's epoch */
        int64_t offset; /* input offset the value reflects */
        ds_rowkey_t key;
        ds_measures_t m;
        ds_distinct_t *distinct; /* copy of a GATE DAY row's sketches: owned by the outbox */
} ds_outrow_t;

typedef struct ds_outevict {
        int32_t partition;
        ds_rowkey_t key;
} ds_outevict_t;

typedef struct ds_outpart {
        int32_t partition;
        int64_t next_offset;
        int64_t watermark_ms;
        int eof;
        int restoring;
        int idle; /* no event for idle_ms: does not hold windows open */
} ds_outpart_t;

typedef struct ds_outbox {
        ds_outrow_t *rows;
        uint32_t nrows, caprows;
        ds_outevict_t *evicts;
        uint32_t nevicts, capevicts;
        ds_outpart_t *parts;
        uint32_t nparts, capparts;
        ds_agg_stats_t stats; /* lateness and eviction counts since the last flush */
} ds_outbox_t;

/* The part of ob appended since it held nrows rows and nevicts evictions
 * (what one ds_part_flush() added): a view, sharing ob's vectors. */
static inline ds_outbox_t ds_outbox_since(const ds_outbox_t *ob, uint32_t nrows, uint32_t nevicts) {
        ds_outbox_t v = *ob;
        v.rows = ob->rows + nrows;
        v.nrows = ob->nrows - nrows;
        v.evicts = ob->evicts + nevicts;
        v.nevicts = ob->nevicts - nevicts;
        return v;
}

/* Drops the rows and evictions appended since ob held nrows and nevicts
 * (once they are encoded: the processing role's worker), freeing the rows'
 * sketch copies; the partitions' positions and the stats stay. */
void ds_outbox_truncate(ds_outbox_t *ob, uint32_t nrows, uint32_t nevicts);

void ds_part_cfg_default(ds_part_cfg_t *cfg);

ds_part_t *ds_part_new(const ds_part_cfg_t *cfg, int32_t partition, int64_t restore_end);
void ds_part_destroy(ds_part_t *p);

/* Applies a validated event. now_ms: the wall clock (once per batch is
 * enough). scratch: space for the retracted version. Returns the ledger's
 * outcome (ds_event_outcome_t), or -1 on out-of-memory. */
int ds_part_apply(ds_part_t *p, const ds_part_cfg_t *cfg, const ds_contrib_t *c, int64_t now_ms,
                  ds_contrib_t *scratch);

/* Starts loading the ledger slot of declaration id, ahead of the
 * ds_part_apply() of it (ds_step_ahead_t). A hint: changes nothing. */
static inline void ds_part_prefetch(const ds_part_t *p, uint64_t id) {
        ds_ledger_prefetch(p->ledger, id);
}

/* Whether the partition is still being rebuilt (rows held back). */
static inline int ds_part_restoring(const ds_part_t *p) {
        return p->next_offset < p->restore_end;
}

/* Appends the partition's position and, unless it is restoring, its changed
 * rows and the rows of windows closed at its watermark to ob, then clears the
 * dirty list and evicts those rows. now_ms: the wall clock, for idleness.
 * Returns 0, or -1 on out-of-memory. */
int ds_part_flush(ds_part_t *p, const ds_part_cfg_t *cfg, int64_t now_ms, ds_outbox_t *ob);

/* Empties an outbox (frees its sketch copies), keeping its capacity. */
void ds_outbox_reset(ds_outbox_t *ob);
void ds_outbox_free(ds_outbox_t *ob);

#endif
