/*
 * ds_kafka.h - librdkafka set-up shared by the commands.
 *
 * ds_kafka_conf() builds an rd_kafka_conf_t from declstream's defaults for
 * the client's role, then the user's kafka.* / -X properties (which win);
 * librdkafka's own error text, naming the property, is returned. Its logs
 * go through ds_log as comp=rdkafka.
 */
#ifndef DS_KAFKA_H
#define DS_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "ds_config.h"

typedef enum { DS_KAFKA_CONSUMER, DS_KAFKA_PRODUCER } ds_kafka_role_t;

/* A produced message's delivery tag (its opaque): the delivery report
 * callback fills it. Reports run on the thread that polls the producer, the
 * only one that writes tags, so no atomics are needed; shared tags (one per
 * delivery slot) are only read by the producing threads. */
typedef struct ds_dtag {
        int32_t slot;   /* delivery slot to count down (ds_pipeline), -1: none */
        int err;        /* rd_kafka_resp_err_t of the delivery */
        int done;       /* the report arrived */
        int64_t offset; /* the message's offset, on success */
} ds_dtag_t;

/* Produces one copied message to (topic, partition) and polls producer until
 * it is acknowledged or timeout_ms passes. Returns the delivery error (0 on
 * success, with *offset set). The producer's delivery report callback must
 * fill ds_dtag_t opaques (as the pipeline's does). */
int ds_kafka_produce_wait(rd_kafka_t *producer, const char *topic, int32_t partition, const void *key, size_t klen,
                          const void *value, size_t vlen, int64_t *offset, int timeout_ms);

/* defaults: NULL-terminated key, value pairs applied before props. */
rd_kafka_conf_t *ds_kafka_conf(ds_kafka_role_t role, const char *const *defaults, const ds_kv_t *props, int nprops,
                               char *errstr, size_t errstr_size);

/* Creates the client (takes ownership of conf, also on failure). */
rd_kafka_t *ds_kafka_new(ds_kafka_role_t role, rd_kafka_conf_t *conf, char *errstr, size_t errstr_size);

/* Transactional id of this instance for a role: <group.id>.<instance>.<role>,
 * instance being instance.id or the host name. */
int ds_kafka_txn_id(const ds_config_t *cfg, const char *role, char *buf, size_t size);

/* Ends the open transaction: sends offsets (may be NULL) with the consumer's
 * group metadata, commits, and begins the next one. Returns 0, or -1 with
 * errstr (the caller stops: what the transaction held is rolled back). */
int ds_kafka_txn_commit(rd_kafka_t *producer, rd_kafka_t *consumer, const rd_kafka_topic_partition_list_t *offsets,
                        char *errstr, size_t errstr_size);

/* The low (lo) and high (hi) watermarks of one partition:
 * ds_kafka_watermarks_many() of one partition, with its retries. */
rd_kafka_resp_err_t ds_kafka_watermarks(rd_kafka_t *rk, const char *topic, int32_t partition, int64_t *lo,
                                        int64_t *hi, int timeout_ms);

/* The watermarks of n partitions of one topic at once: lo[i] and hi[i] of
 * partitions[i] (either may be NULL: that end is not asked for; the start is
 * read first, so lo[i] <= hi[i]). One ListOffsets request per leader for
 * each end (rd_kafka_offsets_for_times() with the logical offsets BEGINNING
 * and END), rather than a round trip per partition: a broker answers the
 * requests of one connection in order, so on a consumer's handle each of
 * those waits behind the long-polling Fetch in flight (up to
 * fetch.wait.max.ms, every time). Retried while the error is one a leader
 * move, a broker restart or a slow broker gives (not leader, leader not
 * available, timed out, transport, ...; librdkafka returns those at once
 * rather than waiting for new metadata) and timeout_ms has not passed,
 * backing off 50 ms doubling to 1 s. Returns 0, or the error that stopped it
 * (the first one not worth retrying, else the last) with the partition it
 * concerns in *failed (-1: the request as a whole); then lo[i] / hi[i] are
 * -1 where they could not be read (hi is not read when lo failed). */
rd_kafka_resp_err_t ds_kafka_watermarks_many(rd_kafka_t *rk, const char *topic, const int32_t *partitions, int n,
                                             int64_t *lo, int64_t *hi, int timeout_ms, int32_t *failed);

/* Number of partitions of topic (metadata request), or -1 with errstr. */
int ds_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, char *errstr, size_t errstr_size);

/* A topic producer will write, checked at start-up: its partition count as
 * consumer sees it (a consumer's metadata request does not create a missing
 * topic; a producer's does, with the broker's default partitions and
 * retention, and declstream creates none), then asked by producer too, which
 * otherwise learns of a topic only at its next metadata refresh after the
 * first message to it (~1 s that message waits). Returns the count, or -1
 * with errstr naming key, the configuration key that names the topic. */
int ds_kafka_topic_ready(rd_kafka_t *consumer, rd_kafka_t *producer, const char *topic, const char *key, char *errstr,
                         size_t errstr_size);

/* A reader of what a topic already holds (the changelog's, the merge
 * snapshots'): cfg's connection properties; no auto-commit; an offset no
 * longer held is an error, not a jump to the log's end; in transactions
 * mode, committed records only; no statistics (it is read in bursts, not
 * polled between, and they would pile up). It is assigned, never
 * subscribed (cfg's group.id, which an assignment needs, but no commits).
 * NULL with errstr naming the property on failure. */
rd_kafka_conf_t *ds_kafka_reader_conf(const ds_config_t *cfg, char *errstr, size_t errstr_size);
/* The reader's handle from conf (owned from here on, also on failure), its
 * fetch.wait.max.ms set to 5 ms over conf's. */
rd_kafka_t *ds_kafka_reader_new(rd_kafka_conf_t *conf, char *errstr, size_t errstr_size);

/* Reads partition p of topic over [from, to) with rk, a consumer of no
 * group (assigned here, unassigned at the end), calling fn for each record
 * until it returns non-zero (< 0: an error, returned as -1). Returns 0, or
 * -1 with errstr; a wait of timeout_ms with nothing read is an error. comp
 * names the caller in the log.
 *
 * Offsets need not be contiguous: on a cluster with transactions a commit
 * marker takes an offset and is never delivered, and read_committed skips
 * aborted records. So the range ends at the first record at or past `to`,
 * or at the partition's end once that is at or past `to` (the last offsets
 * of a transactional partition are markers). exact_start: the record at
 * `from` must be there (a record named by offset); a scan takes what the
 * range holds. rk should have auto.offset.reset=error, so that an offset no
 * longer held fails rather than reads the log's end. */
typedef int (*ds_kafka_read_fn)(void *ctx, int64_t offset, const uint8_t *p, size_t len);
int ds_kafka_read_range(rd_kafka_t *rk, const char *topic, int32_t p, int64_t from, int64_t to, int exact_start,
                        int timeout_ms, const char *comp, ds_kafka_read_fn fn, void *ctx, char *errstr, size_t sz);

/* Checks that no partition of topic has lost its head: the low watermark of
 * each partition must be 0. Returns the number of partitions whose head was
 * deleted (and logs each), or -1 on error. */
int ds_kafka_check_head(rd_kafka_t *rk, const char *topic, int partitions, int timeout_ms, char *errstr,
                        size_t errstr_size);

#endif
