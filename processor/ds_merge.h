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
 * Distinct-count sketches of GATE DAY rows are unioned into the global row
 * (union is idempotent, so no per-partition copy is kept).
 *
 * Sources. Every value comes from a partition's owner, identified by an
 * epoch (raised each time the partition changes owner) and the input offset
 * the value reflects. A value older than the one kept - a lower epoch (a
 * fenced zombie), or a lower offset (a new owner replaying from an older
 * checkpoint) - is ignored, so the kept value never goes back.
 *
 * Closing. A window closes in each partition at its own watermark. The global
 * row, and every partition's entry for it, goes when the window is closed in
 * every partition, i.e. at the minimum watermark over partitions
 * (ds_merge_advance()); its last published value stays the final one on the
 * topic. Keeping a partition's entry until then is what makes a replayed
 * share an upsert rather than a second addition. A report for a row already
 * closed everywhere (a replay of final data, or a late share of a partition
 * that was idle) is ignored: closed as the statuses read so far say
 * (ds_merge_close()), not as far as publishing has removed rows, so the
 * answer depends on the order of the partial topic (and on the retentions
 * it closes with: ds_merge_retention()), not on when the merge published.
 *
 * GATE_HEADING cells are grouped by (gate, day) so the top headings of a
 * group whose cells changed can be recomputed: ds_merge_top().
 *
 * Memory: ~120 bytes per (partition, row) and per global row, and a
 * (gate, day) group for the top lists (48 bytes in a table at most half
 * full, and 4 per heading), removed by the advance that removes its last
 * cell. The table keeps the size it grew to: bounded by the most groups open
 * at once, not by the days a merge has seen.
 *
 * @locality one thread (the publisher).
 */
#ifndef DS_MERGE_H
#define DS_MERGE_H

#include "ds_agg.h"
#include "ds_rows.h"
#include "ds_wire.h"

typedef struct ds_merge ds_merge_t;

ds_merge_t *ds_merge_new(const ds_window_cfg_t *win, int64_t top_retention_ms);
void ds_merge_destroy(ds_merge_t *m);

/* Where a value comes from. */
typedef struct ds_merge_src {
        int32_t partition;
        int32_t epoch;  /* owner epoch of the partition */
        int64_t offset; /* input offset the value reflects (next offset to process) */
} ds_merge_src_t;

enum { DS_MERGE_APPLIED = 0, DS_MERGE_CLOSED = 1, DS_MERGE_STALE = 2, DS_MERGE_FENCED = 3 };

/* Sets the source partition's value of row key; distinct (may be NULL) is
 * unioned into the global row's sketches. Returns DS_MERGE_APPLIED, or why
 * it was ignored (CLOSED: closed in every partition; STALE: an older offset
 * than the kept value; FENCED: an epoch older than the partition's), or -1 on
 * out-of-memory. */
int ds_merge_update(ds_merge_t *m, const ds_merge_src_t *src, ds_rowkey_t key, const ds_measures_t *value,
                    const ds_distinct_t *distinct);

/* Starts loading what ds_merge_update() of (partition, key) will read, for
 * a batch of updates: call with step 1 for every update of the batch, then
 * with step 2 for every one, then update. hashes (2 words) carries the keys'
 * hashes from step 1 to step 2. Hints only: skipping them changes nothing. */
void ds_merge_prefetch(const ds_merge_t *m, int step, int32_t partition, ds_rowkey_t key, uint32_t hashes[2]);

/* Raises a partition's epoch (a new owner announced itself): values of older
 * epochs are fenced from now on. Returns 0, DS_MERGE_FENCED if epoch is
 * older than the partition's current one, or -1 on out-of-memory. */
int ds_merge_epoch(ds_merge_t *m, int32_t partition, int32_t epoch);

/* Closes windows no earlier than these retentions say: each retention
 * lengthens to win's or top_retention_ms where they are longer (the merge
 * role: the processors' statuses carry theirs). Only before anything has
 * closed (ds_merge_close()): a window closed, and perhaps removed with its
 * partitions' shares, must not take a share again. Returns 0, or -1 if one
 * is longer but it is too late (nothing changed). */
int ds_merge_retention(ds_merge_t *m, const ds_window_cfg_t *win, int64_t top_retention_ms);

/* The partitions' statuses say event time has reached wm in every one: from
 * now on a value for a window closed at wm is refused (DS_MERGE_CLOSED),
 * though its rows stay until ds_merge_advance(). Moves only forward. The
 * merge role calls it as it reads the statuses, so a merge rebuilt from the
 * partial topic, which publishes nothing until it has caught up, refuses the
 * same late values as the merge that read them live. */
void ds_merge_close(ds_merge_t *m, int64_t wm);

/* Event time has reached wm in every partition: global rows closed at wm -
 * or at the watermark ds_merge_close() was given, if later - are removed
 * (call after publishing them); implies ds_merge_close(m, wm). Only moves
 * forward. Returns the number removed. */
uint64_t ds_merge_advance(ds_merge_t *m, int64_t wm);

/* The global rows; their dirty list names the rows changed since the last
 * ds_rows_clear_dirty(). GATE DAY rows carry a ds_distinct_t in aux. */
ds_rows_t *ds_merge_global(ds_merge_t *m);

/* One entry of a top-headings list. */
typedef struct ds_top_entry {
        uint32_t heading;
        ds_measures_t m;
} ds_top_entry_t;

/* Groups (gate, day start) whose cells changed since the last call: calls
 * fn for each, then forgets them. */
typedef void (*ds_merge_group_fn)(void *ctx, uint32_t gate, int64_t day);
void ds_merge_changed_groups(ds_merge_t *m, ds_merge_group_fn fn, void *ctx);

/* The n headings of (gate, day) with the highest customs value (ties: lower
 * heading first), among cells with at least one declaration. Returns how
 * many were written to out. */
int ds_merge_top(ds_merge_t *m, uint32_t gate, int64_t day, ds_top_entry_t *out, int n);

/* The merge's whole state as bytes, and back (the merge role's snapshots,
 * ds_mstate.h). ds_merge_save() appends it to b; it reflects every update,
 * epoch, close and advance so far, not what was published. ds_merge_load()
 * fills m, made by ds_merge_new() and given nothing yet, from r (reads are
 * bounds-checked): the saved retentions are taken - where m's are longer,
 * m's only if nothing had closed yet (ds_merge_retention()'s rule); every
 * global row comes back dirty and every top-headings group changed, so that
 * the next publish sends them all again (their upserts change nothing that
 * was already published). Returns 0, or -1 on out-of-memory or bytes that
 * are not a saved merge, or hold a value out of range (m is then to be
 * destroyed). */
void ds_merge_save(ds_merge_t *m, ds_buf_t *b);
int ds_merge_load(ds_merge_t *m, ds_rd_t *r);
/* The retentions windows close with (the configured, or as lengthened or
 * loaded). */
void ds_merge_retentions(const ds_merge_t *m, ds_window_cfg_t *win, int64_t *top_retention_ms);

size_t ds_merge_memory(const ds_merge_t *m);
/* The (partition, row) shares held. */
uint32_t ds_merge_shares(const ds_merge_t *m);

#endif
