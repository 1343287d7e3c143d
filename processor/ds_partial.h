/*
 * ds_partial.h - input partitions' shares of rows, on the way to the merge.
 *
 * The processing role publishes, every cycle, the changed rows of each
 * partition it owns and a STATUS per partition (when it changed) to
 * customs.totals.partial; the merge role (ds_merge_role.h) reads them back.
 *
 * Rows travel in batches (vn.customs.PartialRows, schema id 7): one message
 * carries many (input partition, row) shares, each with its partition's
 * owner epoch and input offset, so a cycle costs a few messages per partial
 * partition rather than one per share (the per-message cost of producing,
 * storing, fetching and acknowledging was ~2/3 of a catch-up's CPU:
 * bench/HOTPATH.md). The Kafka partition is chosen from the row alone
 * (ds_partial_route()): every partition's share of a row, and every cell of
 * a (gate, day), meet in one partial partition, so merge instances can split
 * the work by partial partition. An input partition's STATUS goes to every
 * partial partition, after the cycle's rows (in a message of its own since
 * the workers encode the rows: ds_partial_out_t). The merge also
 * reads vn.customs.PartialTotal (schema id 6), one ROW or STATUS a message,
 * which earlier releases wrote (keys "<partition>|<row key>" and
 * "<partition>|STATUS").
 *
 * A batch has no key that compaction could keep the latest of: the topic
 * keeps everything (README, "Pointing it at a real Kafka cluster"), and the
 * merge rebuilds by reading it from the start.
 *
 * Memory: a batcher holds a buffer of up to DS_PARTIAL_BATCH_BYTES per
 * partial partition (24 MiB at 192), reused from cycle to cycle, unless
 * limited (ds_partial_batcher_limit: the processing role's workers' are,
 * ds_partial_out_t); main's holds only the statuses.
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
        /* STATUS (schema 7): how long after its end the processor keeps each
         * window open - MINUTE, HOUR, DAY, and a day's top list
         * (DS_PARTIAL_RET_*); 0: not said (schema 6) */
        int64_t retention_ms[4];
} ds_partial_t;

enum { DS_PARTIAL_RET_MINUTE = 0, DS_PARTIAL_RET_HOUR = 1, DS_PARTIAL_RET_DAY = 2, DS_PARTIAL_RET_TOP = 3 };
/* The retentions a status may carry (the configuration's bound). */
#define DS_PARTIAL_RET_MAX (INT64_MAX / 4)

/* The STATUS of an input partition last produced, kept by its producer
 * (the pipeline, and replay's model of it). Zero: none yet. */
typedef struct ds_partial_sent {
        int sent, idle;
        int32_t epoch;
        int64_t input_offset, watermark_ms;
} ds_partial_sent_t;

/* Whether STATUS st is to be produced, last being the one produced before:
 * the first always is; then only when it says something last did not
 * (epoch, offset, watermark, idleness). ds_pipeline.c cycle() says why. */
static inline int ds_partial_status_due(const ds_partial_sent_t *last, const ds_partial_t *st) {
        return !last->sent || last->epoch != st->epoch || last->input_offset != st->input_offset ||
               last->watermark_ms != st->watermark_ms || last->idle != st->idle;
}

/* Records st as produced. */
static inline void ds_partial_status_sent(ds_partial_sent_t *last, const ds_partial_t *st) {
        *last = (ds_partial_sent_t){1, st->idle, st->epoch, st->input_offset, st->watermark_ms};
}

/* Fills a STATUS's retentions from a processor's window configuration. */
static inline void ds_partial_retention(ds_partial_t *st, const ds_window_cfg_t *win, int64_t top_retention_ms) {
        st->retention_ms[DS_PARTIAL_RET_MINUTE] = win->retention_ms[DS_WIN_MINUTE];
        st->retention_ms[DS_PARTIAL_RET_HOUR] = win->retention_ms[DS_WIN_HOUR];
        st->retention_ms[DS_PARTIAL_RET_DAY] = win->retention_ms[DS_WIN_DAY];
        st->retention_ms[DS_PARTIAL_RET_TOP] = top_retention_ms;
}

/* Appends header and Avro body of p as schema 6 (PartialTotal), one share
 * or STATUS a message, as earlier releases wrote them: the processor now
 * writes batches, the tests write these to check the merge still reads
 * them. heading_digits formats COMMODITY keys. */
void ds_partial_encode(ds_buf_t *b, const ds_partial_t *p, int heading_digits);
/* Decodes a whole message value (wire header + body). Strings and sketches
 * point into msg. Returns DS_DLQ_NONE or the reason it is not a partial. */
ds_dlq_reason_t ds_partial_decode(const uint8_t *msg, size_t len, int heading_digits, ds_partial_t *out);

/* ---- batches (schema 7) ---- */

#define DS_SCHEMA_ID_PARTIAL_ROWS 7

/* A batch's rows stop growing past this many bytes (well under librdkafka's
 * and the brokers' 1 MB message limit). */
#define DS_PARTIAL_BATCH_BYTES (128 * 1024)

/* Receives a finished batch for partial partition pp: the message (wire
 * header and body, valid until the call returns) and its row count.
 * Returns 0, or nonzero to stop (returned by the call that emitted). */
typedef int (*ds_partial_emit_fn)(void *ctx, int32_t pp, const uint8_t *msg, size_t len, uint32_t rows);

typedef struct ds_partial_batcher ds_partial_batcher_t;

/* A batch per partial partition, each emitted once it holds max_bytes of
 * rows, and by ds_partial_batcher_flush(). NULL on out-of-memory. */
ds_partial_batcher_t *ds_partial_batcher_new(int32_t partial_partitions, int heading_digits, size_t max_bytes,
                                             ds_partial_emit_fn emit, void *ctx);
void ds_partial_batcher_destroy(ds_partial_batcher_t *pb);
/* Adds ROW p to the batch of its partial partition (ds_partial_route()),
 * emitting that batch first if it is full (updated_at: the emitted
 * message's). Returns 0, or what emit returned. */
int ds_partial_batcher_add(ds_partial_batcher_t *pb, const ds_partial_t *p, int64_t updated_at);
/* At most max_staged bytes of rows in the batches being filled (0: no
 * limit, the default): past it, the batch just added to is emitted whatever
 * its size. With many partial partitions (and a batcher per worker) the
 * batches being filled would otherwise hold up to max_bytes each. */
void ds_partial_batcher_limit(ds_partial_batcher_t *pb, size_t max_staged);
/* Adds an outbox row (a partition's changed row, ds_part.h: what a cycle
 * sends) as a ROW, encoded straight from it - its partition, owner epoch,
 * input offset, key, measures, and a GATE DAY row's sketches serialized in
 * place - as ds_partial_batcher_add() would encode the same ROW. */
int ds_partial_batcher_add_share(ds_partial_batcher_t *pb, const ds_outrow_t *r, int64_t updated_at);
/* Adds STATUS st to every partial partition's batch: it goes after the
 * rows, at the next flush. */
void ds_partial_batcher_status(ds_partial_batcher_t *pb, const ds_partial_t *st);
/* Emits every batch that holds rows or statuses, in partial partition
 * order (the end of a cycle). */
int ds_partial_batcher_flush(ds_partial_batcher_t *pb, int64_t updated_at);

/* ---- a worker's share of a cycle's batches ---- */

/* One emitted batch in a ds_partial_out_t: bytes [off, off + len) of its
 * buffer, for partial partition pp, holding rows shares. */
typedef struct ds_partial_msg {
        int32_t pp;
        uint32_t rows;
        size_t off, len;
} ds_partial_msg_t;

/* The batches a worker encodes from the rows it flushes (the processing
 * role's cycle: each worker encodes the shares of the partitions it owns,
 * in parallel, rather than copying every changed row for the main thread
 * to encode). The messages are kept back to back in one buffer, which
 * stays as it is until the next ds_partial_out_reset(): the main thread
 * produces them from there without a copy, then the cycle's statuses after
 * them (bench/HOTPATH.md, sixteenth round).
 *
 * Memory: the cycle's shares encoded (~50 bytes each, where the outbox
 * copy it replaces took 104 and a GATE DAY row's sketches), plus the
 * batches being filled: at most DS_PARTIAL_OUT_STAGED bytes of rows
 * (ds_partial_batcher_limit; their buffers' capacity up to twice that), so
 * that workers x partial partitions x DS_PARTIAL_BATCH_BYTES is never
 * reached (768 MiB for 16 workers and 192 partial partitions).
 *
 * Out of memory: the message list's growth fails (-1, the worker stops the
 * pipeline without commit); the byte buffers, as every ds_buf_t, abort the
 * process (ds_wire.h) - no checkpoint is written either way.
 *
 * @locality the worker between ds_partial_out_reset() and
 * ds_partial_out_finish(); then only read (by main) until the next reset. */
#define DS_PARTIAL_OUT_STAGED (4u << 20)
typedef struct ds_partial_out {
        ds_partial_batcher_t *batcher;
        ds_buf_t bytes;
        ds_partial_msg_t *msgs;
        uint32_t n, cap;
        int oom;
} ds_partial_out_t;

/* 0, or -1 on out-of-memory. */
int ds_partial_out_init(ds_partial_out_t *o, int32_t partial_partitions, int heading_digits);
void ds_partial_out_free(ds_partial_out_t *o);
/* Empties it for the next flush (the messages before must be produced and
 * acknowledged). */
void ds_partial_out_reset(ds_partial_out_t *o);
/* Encodes the rows of an outbox (a view of one partition's flush, say) as
 * shares. 0, or -1 on out-of-memory. */
int ds_partial_out_add(ds_partial_out_t *o, const ds_outbox_t *ob, int64_t updated_at);
/* Emits every batch still being filled: after it, msgs[0, n) are the
 * flush's messages, each partial partition's in order. 0, or -1 on
 * out-of-memory. */
int ds_partial_out_finish(ds_partial_out_t *o, int64_t updated_at);

/* The schema id of a partial message, or -1 if it has no wire header. */
int ds_partial_schema(const uint8_t *msg, size_t len);

/* Reading a batch, row by row: the rows point into the message. */
typedef struct ds_partial_rows {
        ds_rd_t in;
        int64_t left; /* items left in the current block */
        int array;    /* 0: the rows, 1: the statuses */
        ds_dlq_reason_t err; /* why the reading ended early (then done) */
        int64_t updated_at;
        int digits;
        int done;
} ds_partial_rows_t;

/* Starts reading a PartialRows message: DS_DLQ_NONE, or why it is not one
 * (then ds_partial_rows_next() says -1 with the same reason). */
ds_dlq_reason_t ds_partial_rows_open(const uint8_t *msg, size_t len, int heading_digits, ds_partial_rows_t *it);
/* The next item into out: the rows (kind ROW; strings and sketches point
 * into the message), then the statuses (kind STATUS), with the checks
 * ds_partial_decode() makes. Returns 1 (an item), 2 (an item out of range,
 * *why: skip it, the rest is readable), 0 (the end of a well-formed message)
 * or -1 (the rest is unreadable, *why); after 0 or -1, the same again. */
int ds_partial_rows_next(ds_partial_rows_t *it, ds_partial_t *out, ds_dlq_reason_t *why);

/* Partial-topic partition for a ROW: GATE_HEADING cells by (gate, day),
 * every other row by its own key, hashed with murmur2. */
int32_t ds_partial_route(ds_rowkey_t key, int32_t partitions);

#endif
