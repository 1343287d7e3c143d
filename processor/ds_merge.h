/*
 * ds_merge.h - global rows as the sum of per-partition rows.
 *
 * Each input partition has its own aggregates (state belongs to a
 * partition). The merge keeps the latest value reported for every
 * (partition, row) and the global row = sum over partitions. An update is an
 * upsert of a partition's full value, not a delta, so reporting the same
 * value twice (a replay, a repeated flush) changes nothing; a global row is
 * marked dirty only when its sum actually changed.
 *
 * Memory: two ds_rows_t entries per (partition, row) pair and global row,
 * ~104 bytes each.
 *
 * @locality one thread (the publisher).
 */
#ifndef DS_MERGE_H
#define DS_MERGE_H

#include "ds_rows.h"

typedef struct ds_merge ds_merge_t;

ds_merge_t *ds_merge_new(void);
void ds_merge_destroy(ds_merge_t *m);

/* Sets partition's value of row key. Returns 0, or -1 on out-of-memory. */
int ds_merge_update(ds_merge_t *m, int32_t partition, ds_rowkey_t key, const ds_measures_t *value);

/* The global rows; their dirty list names the rows changed since the last
 * ds_rows_clear_dirty(). */
ds_rows_t *ds_merge_global(ds_merge_t *m);

size_t ds_merge_memory(const ds_merge_t *m);

#endif
