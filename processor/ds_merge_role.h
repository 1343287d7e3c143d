/*
 * ds_merge_role.h - the merge stage: partial rows in, global rows out.
 *
 * Reads customs.totals.partial as consumer group "<group.id>.merge", so
 * several instances split the partial partitions between them (every share
 * of a row, and every cell of a gate's day, meet in one partial partition:
 * ds_partial_route). For each partial partition it owns it keeps a ds_merge
 * rebuilt from that partition's latest snapshot (ds_mstate.h), if any, and
 * its history after it (read to its end before anything is published, so
 * published totals never go back after a restart) and the latest STATUS of
 * every input partition (owner epoch, watermark, idleness). Every
 * merge.snapshot.interval.ms it snapshots the merges of its partitions.
 *
 * Every merge.interval.ms (sooner once the partial topic is read to its
 * end) it publishes changed rows (vn.customs.Total v2 to customs.totals)
 * and changed top lists (customs.top_headings), then drops windows closed
 * in every input partition. Closed means closed as the statuses read so far
 * say (ds_merge_close()): from there on a window refuses shares, whether or
 * not it has been published and dropped yet. Before publishing it commits its
 * position synchronously: the group coordinator refuses a member whose
 * partitions have moved (a paused-then-resumed zombie), and such a member
 * publishes nothing.
 *
 * @locality one thread runs ds_merge_role_run(); ds_merge_role_request_*
 * may be called from any thread.
 */
#ifndef DS_MERGE_ROLE_H
#define DS_MERGE_ROLE_H

#include <stdint.h>

#include "ds_config.h"
#include "ds_part.h"

typedef struct ds_merge_role ds_merge_role_t;

ds_merge_role_t *ds_merge_role_new(const ds_config_t *cfg, const ds_part_cfg_t *pcfg, char *errstr,
                                   size_t errstr_size);
void ds_merge_role_destroy(ds_merge_role_t *mr);

/* Runs until stopped; returns 0, or 1 after a fatal error. */
int ds_merge_role_run(ds_merge_role_t *mr);

/* Stop now (after a last publish of what is merged). */
void ds_merge_role_request_stop(ds_merge_role_t *mr);
/* Stop once every assigned partial partition has been read to the end it
 * has now and published. wait_for_group: not before the group has assigned
 * this member its partitions (batch runs: the processing side has finished,
 * and this merge is the one to publish); without it, a merge that has never
 * been assigned anything stops at once (a process leaving on SIGTERM: the
 * group gives its partitions to the members that stay). */
void ds_merge_role_request_finish(ds_merge_role_t *mr, int wait_for_group);

typedef struct ds_merge_role_stats {
        uint64_t partials;     /* partial messages read */
        uint64_t partial_rows; /* rows read from them (out-of-range ones not counted) */
        uint64_t rows_published, tops_published, ignored, fenced_publishes;
        uint64_t snapshots;     /* merge snapshots written (ds_mstate.h) */
        int64_t snapshot_bytes; /* ... the last one's size */
        int32_t partitions; /* partial partitions assigned */
        int64_t rebuild_lag; /* partial messages still to read before publishing may start */
        int assigned_once;   /* the group has answered (an empty assignment counts) */
        int ready;           /* assigned once, every assigned partition rebuilt, no fatal error */
} ds_merge_role_stats_t;
/* A copy of the statistics as of the last quarter second; any thread (the
 * merge thread publishes them under a mutex, the caller copies them out). */
void ds_merge_role_stats(ds_merge_role_t *mr, ds_merge_role_stats_t *st);

#endif
