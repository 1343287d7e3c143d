/*
 * ds_partial.h - one input partition's share of a row, on the way to the merge.
 *
 * The processing role publishes, every cycle, the changed rows of each
 * partition it owns and a STATUS per partition (when it changed) to
 * customs.totals.partial (vn.customs.PartialTotal, schema id 6); the merge
 * role (ds_merge_role.h) reads them back. The message key is
 * "<partition>|<row key>" (or "<partition>|STATUS"), so compaction on a
 * real cluster keeps each partition's latest share of each row. The Kafka
 * partition is chosen from the row alone (ds_partial_route()): every
 * partition's share of a row, and every cell of a (gate, day), meet in one
 * partial partition, so merge instances can split the work by partial
 * partition. STATUS goes to every partial partition.
 *
 * @locality any thread; encoding appends to a caller's buffer, decoding
 * points into the message.
 */
#ifndef DS_PARTIAL_H
#define DS_PARTIAL_H

#include <stddef.h>
#include <stdint.h>

#include "ds_hll.h"
#include "ds_part.h"
#include "ds_reason.h"
#include "ds_rows.h"
#include "ds_wire.h"

#define DS_SCHEMA_ID_PARTIAL 6

/* What ds_partial_decode() accepts (anything else is MALFORMED): input
 * partitions fit a row key's 16 partition bits; window starts are aligned
 * and within +-2^62 ms (any event time validation lets through - before
 * 1970, or microseconds by mistake - but far enough from INT64_MAX that
 * start + window + retention cannot overflow); measures are non-negative
 * (shares are sums of declarations, which validation keeps non-negative;
 * there is no upper bound: a TOTAL share only grows, and the merge's sum
 * saturates). */
#define DS_PARTITION_MAX    65534
#define DS_PARTIAL_TIME_ABS (1LL << 62)

/* The processing role produces a partition's STATUS when it changed, and an
 * unchanged one again after this long (ds_pipeline.c cycle() says why). */
#define DS_STATUS_REFRESH_MS 30000

typedef enum { DS_PARTIAL_ROW = 0, DS_PARTIAL_STATUS = 1 } ds_partial_kind_t;

typedef struct ds_partial {
        int kind;
        int32_t partition;
        int32_t epoch;
        int64_t input_offset;
        int64_t watermark_ms; /* STATUS */
        int idle;             /* STATUS */
        ds_rowkey_t key;      /* ROW (no partition bits) */
        ds_measures_t m;
        const uint8_t *declarants_sketch; /* NULL/0 when none */
        size_t declarants_len;
        const uint8_t *vehicles_sketch;
        size_t vehicles_len;
        int64_t updated_at;
} ds_partial_t;

/* The STATUS of an input partition last produced, kept by its producer
 * (the pipeline, and replay's model of it). Zero: none yet. */
typedef struct ds_partial_sent {
        int sent, idle;
        int32_t epoch;
        int64_t input_offset, watermark_ms;
        int64_t at_ms; /* monotonic (ds_mono_ms) */
} ds_partial_sent_t;

/* Whether STATUS st is to be produced, last being the one produced before:
 * the first always is; then only when it says something last did not
 * (epoch, offset, watermark, idleness) or last is DS_STATUS_REFRESH_MS old.
 * ds_pipeline.c cycle() says why. */
static inline int ds_partial_status_due(const ds_partial_sent_t *last, const ds_partial_t *st, int64_t mono_ms) {
        return !last->sent || last->epoch != st->epoch || last->input_offset != st->input_offset ||
               last->watermark_ms != st->watermark_ms || last->idle != st->idle ||
               mono_ms - last->at_ms >= DS_STATUS_REFRESH_MS;
}

/* Records st as produced at mono_ms. */
static inline void ds_partial_status_sent(ds_partial_sent_t *last, const ds_partial_t *st, int64_t mono_ms) {
        *last = (ds_partial_sent_t){1, st->idle, st->epoch, st->input_offset, st->watermark_ms, mono_ms};
}

/* Room for one serialized sketch (ds_hll_serialize). */
#define DS_PARTIAL_SKETCH_MAX (DS_HLL_M + 16)

/* The ROW for an outbox row (a partition's changed row, ds_part.h) as of
 * updated_at; a GATE DAY row's sketches are serialized into s1 and s2
 * (DS_PARTIAL_SKETCH_MAX bytes each), which out then points to. */
void ds_partial_of_row(ds_partial_t *out, const ds_outrow_t *o, int64_t updated_at, uint8_t *s1, uint8_t *s2);

/* Appends header and Avro body of p; heading_digits formats COMMODITY keys. */
void ds_partial_encode(ds_buf_t *b, const ds_partial_t *p, int heading_digits);
/* Decodes a whole message value (wire header + body). Strings and sketches
 * point into msg. Returns DS_DLQ_NONE or the reason it is not a partial. */
ds_dlq_reason_t ds_partial_decode(const uint8_t *msg, size_t len, int heading_digits, ds_partial_t *out);

/* Message key of a ROW or STATUS. Returns its length. */
int ds_partial_key(const ds_partial_t *p, int heading_digits, char *buf, size_t size);
/* Partial-topic partition for a ROW: GATE_HEADING cells by (gate, day),
 * every other row by its own key, hashed with murmur2. */
int32_t ds_partial_route(ds_rowkey_t key, int32_t partitions);

#endif
