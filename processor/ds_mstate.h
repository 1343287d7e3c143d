/*
 * ds_mstate.h - the merge role's snapshots, in merge.state.topic.
 *
 * A merge rebuilds partial partition X's rows by reading X from its start
 * (ds_merge_role.h), so without snapshots the partial topic must keep every
 * batch ever written. With them, partition X of merge.state.topic holds
 * snapshots of X's merge: a byte string (the merge role's statuses of the
 * input partitions, then ds_merge_save()) that is exactly the merge's state
 * after reading X up to an offset, `covered`. A restarting merge loads the
 * latest and reads X from `covered`; the partial topic need only keep what
 * came after the oldest snapshot still in use (time retention, README,
 * "Exactly once").
 *
 * Records, the format declstream's own (like ds_state.h's): "DM", version,
 * type, the snapshot's id (8 bytes), then
 *   CHUNK  its number, then up to chunk_bytes of the string;
 *   END    the chunk count, the string's length and hash (ds_hash_bytes),
 *          and `covered`.
 * One writer writes a snapshot's chunks, then its END; a reader takes the
 * last END in the log and the chunks of its id before it (those of a writer
 * that stopped part-way, or of another instance that briefly held X too,
 * carry other ids). Any complete snapshot is a valid starting point: each
 * is the state after a prefix of X, which reading on from there extends.
 *
 * @locality one thread at a time (the merge thread).
 */
#ifndef DS_MSTATE_H
#define DS_MSTATE_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

/* Hands one record to the producer: 0, or -1 to stop. */
typedef int (*ds_mstate_emit_fn)(void *ctx, const void *record, size_t len);

/* The records of a snapshot of p[0..len) covering offsets below `covered`,
 * in order: chunks of at most chunk_bytes, then END. Returns 0, or -1 if
 * emit stopped. */
int ds_mstate_write(uint64_t id, const uint8_t *p, size_t len, int64_t covered, size_t chunk_bytes,
                    ds_mstate_emit_fn emit, void *ctx);

typedef struct ds_mstate ds_mstate_t;

/* reader_conf: ds_kafka_reader_conf()'s, owned from here on, also on
 * failure. */
ds_mstate_t *ds_mstate_new(const char *topic, rd_kafka_conf_t *reader_conf, char *errstr, size_t errstr_size);
void ds_mstate_destroy(ds_mstate_t *s);

/* The ends of these partitions asked for at once (one request per leader),
 * for the next ds_mstate_latest() of each; -1 with errstr on failure. */
int ds_mstate_prepare(ds_mstate_t *s, const int32_t *partitions, int n, char *errstr, size_t errstr_size);

/* The latest complete snapshot in partition p that covers an offset in
 * [min_covered, max_covered] (what the partial partition still holds): 1
 * with *out (malloc'd, the caller frees it), *len and *covered; 0 when p
 * holds none; -1 with errstr when p cannot be read. A snapshot whose chunks
 * are not all there, whose bytes do not hash to its END's, or whose offset
 * is out of those bounds (a paused instance's older one, written last; one
 * of a partial topic since made anew) is skipped, logged, for the one
 * before it. */
int ds_mstate_latest(ds_mstate_t *s, int32_t p, int64_t min_covered, int64_t max_covered, uint8_t **out, size_t *len,
                     int64_t *covered, char *errstr, size_t errstr_size);

#endif
