/*
 * ds_agg.h - a partition's aggregates: rows per gate and heading, per window.
 *
 * One contribution (a validated declaration) touches, for each window size
 * (TOTAL, MINUTE, HOUR, DAY) whose window is still open at the partition's
 * watermark (ds_window.h):
 *   - one GATE row: the declaration counts once, brings its items, value,
 *     weight, and its value under its flow;
 *   - one COMMODITY row per heading it has: counts once per heading, brings
 *     that heading's items, value, weight;
 * and, for the top headings per gate and day, one GATE_HEADING cell per
 * heading in its DAY (while that day is within top.retention.ms). Adding
 * (sign +1) also records the declarant and vehicle in the distinct-count
 * sketches of its GATE DAY row.
 *
 * sign = -1 retracts a previous contribution from the same rows; windows that
 * have closed since are skipped and counted (late_retract): their published
 * value is final. All measures are integer sums, so a retraction restores
 * exactly what the addition changed.
 *
 * Closed windows' rows are removed by ds_agg_evict() (after their last value
 * has been handed over for publishing): their keys are kept in per-start
 * buckets, so eviction touches only what it removes.
 *
 * Memory: ~120 bytes per row (ds_rows.h) + 16 per windowed row for eviction;
 * a GATE DAY row also holds two sketches of up to 16 KiB each (ds_hll.h),
 * small while few distinct values were seen.
 *
 * @locality the worker thread that owns the partition.
 */
#ifndef DS_AGG_H
#define DS_AGG_H

#include <stddef.h>
#include <stdint.h>

#include "ds_decl.h"
#include "ds_hll.h"
#include "ds_rows.h"
#include "ds_window.h"

typedef struct ds_agg_cfg {
        ds_window_cfg_t win;
        int64_t top_retention_ms; /* GATE_HEADING DAY cells accept events this long after the day */
} ds_agg_cfg_t;

typedef struct ds_agg_stats {
        uint64_t late[DS_WIN__CNT];         /* additions skipped: window closed */
        uint64_t late_retract[DS_WIN__CNT]; /* retractions skipped: window closed */
        uint64_t late_top;                  /* cell additions/retractions skipped */
        uint64_t evicted;                   /* rows removed after their windows closed */
} ds_agg_stats_t;

/* Sketches of a GATE DAY row (row->aux). */
typedef struct ds_distinct {
        ds_hll_t *declarants;
        ds_hll_t *vehicles;
} ds_distinct_t;

typedef struct ds_agg ds_agg_t;

void ds_agg_cfg_default(ds_agg_cfg_t *cfg);

ds_agg_t *ds_agg_new(const ds_agg_cfg_t *cfg);
void ds_agg_destroy(ds_agg_t *a);

/* Adds (sign +1) or retracts (sign -1) c at watermark wm. Returns 0, or -1
 * on out-of-memory (the partition's state is then unusable). */
int ds_agg_apply(ds_agg_t *a, const ds_contrib_t *c, int64_t sign, int64_t wm);

/* ds_agg_apply() in two steps, so that the rows' cache misses can overlap
 * other work (ds_part_apply: the ledger lookup). ds_agg_plan() lists the
 * rows c touches and prefetches their index slots, changing nothing;
 * ds_agg_commit() applies the plan (same c, sign), or it is dropped. */
typedef struct ds_agg_plan {
        uint32_t n;
        int gate_day; /* index of the GATE DAY row (sketches), -1: none */
        int64_t sign;
        uint8_t late[DS_WIN__CNT]; /* windows closed at wm */
        uint8_t late_top;
        ds_rowkey_t keys[DS_ROWS_MANY_MAX];
        uint32_t hash[DS_ROWS_MANY_MAX];
        int8_t cls[DS_ROWS_MANY_MAX];   /* eviction class, -1 for TOTAL rows */
        int16_t line[DS_ROWS_MANY_MAX]; /* the line a row takes its measures from, -1: the whole contribution */
} ds_agg_plan_t;
void ds_agg_plan(ds_agg_t *a, const ds_contrib_t *c, int64_t sign, int64_t wm, ds_agg_plan_t *pl);
int ds_agg_commit(ds_agg_t *a, const ds_contrib_t *c, const ds_agg_plan_t *pl);

/* Applies the sketch additions ds_agg_commit() queued (ds_agg.c: PEND_MAX
 * at a time, so that their registers' cache misses overlap): until then a
 * GATE DAY row's sketches may lack the latest declarations. 0, or -1 when
 * an addition ran out of memory, then or before: the failure stays, every
 * later ds_agg_sync() and ds_agg_commit() returns -1, and the partition's
 * state is unusable. ds_agg_rows() and ds_agg_evict() sync first, and so do
 * ds_agg_remove_row() and ds_agg_restore_row() with sketches (the only
 * restores that free or replace a row's sketches). */
int ds_agg_sync(ds_agg_t *a);

/* The rows (after ds_agg_sync(), whose failure the next sync reports);
 * their dirty list names the rows changed since the last clear. */
ds_rows_t *ds_agg_rows(ds_agg_t *a);

/* Removes every row whose window is closed at wm, calling cb first for each
 * (cb may be NULL). Call with an empty dirty list, so that no unpublished
 * change is dropped. Returns the number of rows removed. */
typedef void (*ds_agg_evict_cb)(void *ctx, const ds_row_t *row);
uint64_t ds_agg_evict(ds_agg_t *a, int64_t wm, ds_agg_evict_cb cb, void *ctx);

/* Restore: sets row key to m (with sketches d, whose ownership passes to the
 * aggregates; NULL for none), not marked dirty. 0, or -1 on OOM. */
int ds_agg_restore_row(ds_agg_t *a, ds_rowkey_t key, const ds_measures_t *m, ds_distinct_t *d);
/* Removes a row (restore of an eviction). */
void ds_agg_remove_row(ds_agg_t *a, ds_rowkey_t key);

const ds_agg_stats_t *ds_agg_stats(const ds_agg_t *a);
/* Adds the stats gathered since the last call to *into and zeroes them. */
void ds_agg_take_stats(ds_agg_t *a, ds_agg_stats_t *into);
size_t ds_agg_memory(const ds_agg_t *a);

/* Sketch pairs: allocation, copy (for handing to another thread), union. */
ds_distinct_t *ds_distinct_new(void);
ds_distinct_t *ds_distinct_dup(const ds_distinct_t *d);
int ds_distinct_merge(ds_distinct_t *dst, const ds_distinct_t *src);
void ds_distinct_free(void *d);

#endif
