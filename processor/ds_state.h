/*
 * ds_state.h - a partition's state in its changelog, and back.
 *
 * Every input partition p has a changelog partition p (topic customs.state)
 * written only by p's current owner. Records, in log order:
 *
 *   CLAIM e         an owner takes the partition with epoch e (one more than
 *                   any before it), saying which checkpoint it restored from
 *   SNAP_BEGIN      a full snapshot of the partition's state (ledger and
 *   SNAP_CHUNK ...  rows), in chunks of at most max_record bytes,
 *   SNAP_END        taken at a cycle boundary
 *   DELTA ...       what changed in one cycle: ledger entries, rows
 *                   (full values), rows removed (closed windows)
 *   CHECKPOINT      the state so far reflects the input up to input_offset;
 *                   it starts from the snapshot at snapshot_offset
 *
 * Restore (ds_restore_*) replays from the snapshot a checkpoint names up to
 * that checkpoint, with two rules that make it exact:
 *   - a record counts only in its epoch's region: from CLAIM e until the
 *     next CLAIM; a record of an older epoch after a newer CLAIM is a
 *     zombie's and is ignored;
 *   - deltas count only once a CHECKPOINT of their region follows them: a
 *     cycle cut short by a crash leaves deltas that the next CLAIM discards.
 * So the rebuilt state is exactly the state at the checkpoint, and input
 * resumes at the checkpoint's offset. Snapshots are taken when the records
 * since the last one outgrow it, so a restore reads at most about twice a
 * snapshot and never needs the changelog's whole history.
 *
 * The format is declstream's own (internal state, not a contract): a
 * 2-byte magic "DS", a version byte, the record type, then varints.
 *
 * @locality writers run on the partition's owner thread; a restore is
 * single-threaded.
 */
#ifndef DS_STATE_H
#define DS_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "ds_part.h"
#include "ds_wire.h"

typedef enum {
        DS_CL_CLAIM = 1,
        DS_CL_SNAP_BEGIN = 2,
        DS_CL_SNAP_CHUNK = 3,
        DS_CL_SNAP_END = 4,
        DS_CL_DELTA = 5,
        DS_CL_CHECKPOINT = 6,
} ds_cl_type_t;

typedef struct ds_cl_head {
        int type; /* ds_cl_type_t */
        int32_t epoch;
        int32_t partition;
} ds_cl_head_t;

typedef struct ds_cl_checkpoint {
        int64_t input_offset;    /* next input offset to process */
        int64_t watermark_ms;
        int64_t snapshot_offset; /* changelog offset of the SNAP_BEGIN the state starts from */
        int64_t claim_offset;    /* changelog offset of this epoch's CLAIM */
        /* The gate list the state numbers gates by (ds_domain.h): its length
         * and ds_gates_fingerprint() of it. Written from the process's list;
         * a checkpoint written before gates files has none, and is read as
         * the compiled-in list. */
        int32_t gates;
        uint64_t gates_fp;
} ds_cl_checkpoint_t;

typedef struct ds_cl_claim {
        int64_t based_on;        /* changelog offset of the checkpoint restored from, -1: none (fresh) */
        int64_t snapshot_offset; /* that checkpoint's snapshot, -1 when none */
        int64_t input_offset;    /* where this owner resumes the input */
        int64_t watermark_ms;
} ds_cl_claim_t;

/* Default largest record (the mock broker and Kafka's default accept 1 MB). */
#define DS_CL_MAX_RECORD (512 * 1024)

/* Reads a record's header; -1 if it is not a changelog record. */
int ds_cl_peek(const uint8_t *rec, size_t len, ds_cl_head_t *h);
/* Reads a CHECKPOINT / CLAIM record's contents. */
int ds_cl_read_checkpoint(const uint8_t *rec, size_t len, ds_cl_checkpoint_t *c);
int ds_cl_read_claim(const uint8_t *rec, size_t len, ds_cl_claim_t *c);

/* Writers append one record to b (b is not cleared). */
void ds_cl_write_claim(ds_buf_t *b, int32_t partition, int32_t epoch, const ds_cl_claim_t *c);
void ds_cl_write_checkpoint(ds_buf_t *b, int32_t partition, int32_t epoch, const ds_cl_checkpoint_t *c);

/* Multi-record writers hand each finished record to emit. */
typedef int (*ds_cl_emit_fn)(void *ctx, const uint8_t *rec, size_t len);

/* The partition's changes since the last delta: its changed ledger entries
 * (ds_ledger_take_changes) and the rows and evictions of ob that belong to
 * it. Returns the bytes emitted, or -1 (emit failed or out of memory). */
int64_t ds_cl_write_delta(ds_part_t *p, const ds_outbox_t *ob, size_t max_record, ds_cl_emit_fn emit, void *ctx);

/* A full snapshot of the partition: SNAP_BEGIN, chunks, SNAP_END. Also
 * drains the ledger's change list (the snapshot includes those changes).
 * Returns the bytes emitted, or -1. */
int64_t ds_cl_write_snapshot(ds_part_t *p, size_t max_record, ds_cl_emit_fn emit, void *ctx);

/* A cycle's changelog of a partition, as the processing role writes it.
 * ds_cl_snapshot_due() decides (and counts the cycle): a snapshot when the
 * partition's need_snapshot says so (there is none yet, or the claim found
 * another owner's records before it: ds_changelog.h), when the changelog since the last one has
 * outgrown it (and cfg->snapshot_min_bytes) - by a factor of 1, 1.25, 1.5 or
 * 1.75 by partition number, as Kafka staggers segment rolls - or every
 * cfg->snapshot_interval_cycles cycles; else a delta. ds_cl_write_cycle()
 * writes it - the delta of view (the rows and evictions the partition's
 * flush just added) - and keeps the partition's changelog counters. Returns
 * the bytes emitted, or -1. */
int ds_cl_snapshot_due(ds_part_t *p, const ds_part_cfg_t *cfg);
int64_t ds_cl_write_cycle(ds_part_t *p, int snapshot, const ds_outbox_t *view, ds_cl_emit_fn emit, void *ctx);

/* ---- restore ---------------------------------------------------------- */

typedef struct ds_restore ds_restore_t;

/* A restore of partition `partition` replaying from the SNAP_BEGIN at
 * changelog offset snapshot_offset up to the CHECKPOINT at target_offset. */
ds_restore_t *ds_restore_new(const ds_part_cfg_t *cfg, int32_t partition, int64_t snapshot_offset,
                             int64_t target_offset);
void ds_restore_destroy(ds_restore_t *r);

/* Feeds the record at changelog offset `offset` (in log order, starting at
 * or before snapshot_offset). Returns 1 once the target checkpoint has been
 * applied (stop feeding), 0 to continue, -1 on a corrupt or inconsistent log
 * (errstr says what). */
int ds_restore_feed(ds_restore_t *r, int64_t offset, const uint8_t *rec, size_t len, char *errstr,
                    size_t errstr_size);

/* The rebuilt partition (ownership passes to the caller) and the checkpoint
 * it reflects. NULL unless ds_restore_feed returned 1. */
ds_part_t *ds_restore_take(ds_restore_t *r, ds_cl_checkpoint_t *cp);

/* Counts for the logs: records and bytes replayed, ledger entries and rows. */
typedef struct ds_restore_stats {
        uint64_t records, bytes, ignored_records, ledger_entries, rows;
} ds_restore_stats_t;
void ds_restore_stats(const ds_restore_t *r, ds_restore_stats_t *st);

#endif
