/*
 * ds_changelog.h - taking ownership of an input partition: restore and claim.
 *
 * When the group assigns input partition p to this process:
 *
 *   1. Authority. The group's committed offset for p carries metadata
 *      "ds1 epoch=E claim=O" written by p's owner when it claimed p. Only a
 *      live group member can commit (the coordinator rejects a stale
 *      generation), so this names the latest legitimate owner even if a
 *      zombie has written to the changelog since.
 *   2. Find the checkpoint. Scanning changelog partition p backwards from its
 *      end (in growing windows), take the last CHECKPOINT of epoch E; if E's
 *      owner wrote none, the checkpoint its CLAIM says it restored from.
 *      Without metadata (a new group), the last checkpoint of the highest
 *      epoch found.
 *   3. Replay from that checkpoint's snapshot to it (ds_state.h).
 *   4. Claim: write CLAIM E+1 (based on that checkpoint) and wait for the
 *      broker's acknowledgement; the caller commits the metadata
 *      (ds_changelog_metadata) before consuming. Input resumes at the
 *      checkpoint's offset. If the CLAIM lands past the end the scan read,
 *      the records in between are read back: a CLAIM of epoch E+1 or later
 *      among them is another member's (the partition moved while this
 *      process restored), and the take fails rather than own an epoch
 *      another owner holds too.
 *
 * A partition with no changelog starts fresh at the input's first offset.
 * If the changelog no longer holds the snapshot the checkpoint needs, or the
 * input no longer holds the checkpoint's offset, the state cannot be rebuilt
 * and restore fails with a message saying which.
 *
 * @locality the thread that polls `producer` (the main thread): claims wait
 * for their delivery by polling it.
 */
#ifndef DS_CHANGELOG_H
#define DS_CHANGELOG_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "ds_part.h"
#include "ds_state.h"

typedef struct ds_changelog ds_changelog_t;

typedef struct ds_restore_result {
        ds_part_t *part;          /* the partition's state (ownership to the caller) */
        int32_t epoch;            /* the epoch claimed */
        int64_t claim_offset;     /* changelog offset of the CLAIM */
        int64_t snapshot_offset;  /* snapshot the state starts from (-1: none yet) */
        int64_t input_offset;     /* where to resume the input */
        int64_t restore_ms;       /* time taken */
        ds_restore_stats_t stats; /* replay counts */
        int fresh;                /* no earlier state */
        int snapshot_due;         /* the first cycle must write a snapshot (ds_changelog_take() says why) */
} ds_restore_result_t;

/* consumer_conf: librdkafka properties for the restore reader (bootstrap
 * servers and security: ds_kafka_reader_conf(); ds_kafka_reader_new() sets
 * its fetch.wait.max.ms).
 * producer: used to write claims (polled here). */
ds_changelog_t *ds_changelog_new(const char *topic, const ds_part_cfg_t *pcfg, rd_kafka_conf_t *consumer_conf,
                                 rd_kafka_t *producer, char *errstr, size_t errstr_size);
void ds_changelog_destroy(ds_changelog_t *c);

/* Asks for the log's ends of these changelog partitions in one request per
 * leader, for the next ds_changelog_take() of each (which asks for its
 * own otherwise: ~2 ms a partition, 0.4 s of a 192-partition restart). Ends
 * not taken are dropped at the next call. Failure is not an error: each
 * take then asks. */
void ds_changelog_prepare(ds_changelog_t *c, const int32_t *partitions, int n);

/* Restores and claims input partition p. committed_md: the group's committed
 * metadata for p (NULL if none). Returns 0 or -1 with errstr.
 *
 * out->snapshot_due is set when there is no snapshot yet, and when any
 * record sits between the checkpoint restored to and this CLAIM. Such a
 * record is the previous owner's: a cycle cut short (harmless: the CLAIM
 * voids it), or - if that owner was paused rather than dead - a whole cycle
 * it wrote after this process scanned the log and before the CLAIM landed.
 * This state does not include that cycle, but a later restore replaying
 * from the old snapshot through the region would apply it (its checkpoint
 * precedes the CLAIM), and rebuild a state this owner never had. A
 * snapshot of its own, taken in this owner's first cycle, puts every later
 * restore past the region. (A transaction's commit marker after the
 * checkpoint is not delivered to a reader and does not count.) */
int ds_changelog_take(ds_changelog_t *c, int32_t p, const char *committed_md, ds_restore_result_t *out, char *errstr,
                      size_t errstr_size);

/* Metadata to commit with p's offsets: "ds1 epoch=E claim=O". */
int ds_changelog_metadata(int32_t epoch, int64_t claim_offset, char *buf, size_t size);
/* Parses it; -1 when it is not ours. */
int ds_changelog_parse_metadata(const char *md, int32_t *epoch, int64_t *claim_offset);

#endif
