/*
 * ds_evict.h - which rows to drop when event time moves on.
 *
 * Windowed rows are registered under their window class (MINUTE, HOUR, DAY,
 * or the DAY cells of the top headings) and start time, in buckets sorted by
 * start. When the watermark advances, the buckets whose windows have closed
 * are popped from the front, so eviction touches only the rows it removes
 * (no scan of the table). Rows are usually created in time order, so the
 * bucket used last is remembered and found without a search.
 *
 * Memory: 16 bytes per registered row plus one bucket header per distinct
 * start (a few hundred per class).
 *
 * @locality the owner of the rows.
 */
#ifndef DS_EVICT_H
#define DS_EVICT_H

#include <stddef.h>
#include <stdint.h>

#include "ds_rows.h"
#include "ds_window.h"

typedef enum { DS_EVC_MINUTE = 0, DS_EVC_HOUR, DS_EVC_DAY, DS_EVC_CELL, DS_EVC__CNT } ds_evclass_t;

typedef struct ds_evict ds_evict_t;

/* cfg: window retentions; top_retention_ms: for DS_EVC_CELL. */
ds_evict_t *ds_evict_new(const ds_window_cfg_t *cfg, int64_t top_retention_ms);
/* Lengthens each retention to cfg's and top_retention_ms where they are
 * longer (keys stay queued by window start, so they stay in closing order).
 * Returns whether any is longer; with check_only, changes nothing. */
int ds_evict_lengthen(ds_evict_t *e, const ds_window_cfg_t *cfg, int64_t top_retention_ms, int check_only);
void ds_evict_destroy(ds_evict_t *e);
/* The retentions in force (as lengthened); and set, shorter or longer
 * (keys queued stay in order: they are queued by start). */
void ds_evict_retentions(const ds_evict_t *e, ds_window_cfg_t *cfg, int64_t *top_retention_ms);
void ds_evict_set_retentions(ds_evict_t *e, const ds_window_cfg_t *cfg, int64_t top_retention_ms);

/* The class of a row key, or -1 for rows that never close (TOTAL). */
int ds_evict_class(ds_rowkey_t key);
/* Whether a row of class cls starting at start is closed at watermark wm. */
int ds_evict_closed(const ds_evict_t *e, int cls, int64_t start, int64_t wm);

/* Registers key (once per row). 0, or -1 on out-of-memory. */
int ds_evict_add(ds_evict_t *e, int cls, ds_rowkey_t key);

/* Calls fn with every registered key whose window is closed at wm, a
 * bucket's keys at a time (one window start of one class, in registration
 * order; buckets by class, then start), and forgets them. Returns how many.
 * Batches let fn load its rows ahead (ds_rows_remove_many()). */
typedef void (*ds_evict_fn)(void *ctx, const ds_rowkey_t *keys, uint32_t n);
uint64_t ds_evict_pop(ds_evict_t *e, int64_t wm, ds_evict_fn fn, void *ctx);

size_t ds_evict_memory(const ds_evict_t *e);

#endif
