/*
 * ds_pipeline.c - the processing role (and, with role=all, the merge role
 * beside it).
 *
 * Threads and what they own:
 *
 *   main     the consumer handle (group membership, rebalance callbacks),
 *            the producer's delivery reports, the assignment table, the
 *            changelog reader, the publish/checkpoint/commit cycle.
 *   worker   its queue (partition queues are forwarded to it), the
 *            partitions assigned to it (ds_part.h), its decode scratch, its
 *            counters, its outbox (the partitions' positions), its partial
 *            batches and changelog buffer.
 *   merge    with role=all: the merge role (ds_merge_role.h), with its own
 *            consumer and producer.
 *
 * Barrier. main -> worker requests go through one slot per worker:
 *   main:   writes req_op/args, then req_seq = n   (release)
 *   worker: sees req_seq (acquire) after a batch, serves the request (e.g.
 *           flushes its partitions: positions into its outbox, changed rows
 *           encoded into its partial batches, changelog records into its
 *           buffer), then done_seq = n (release)
 *   main:   waits until done_seq == n (acquire), then reads what it wrote.
 * A flush answers twice: rows_seq = n (release) once the outbox, the partial
 * batches and the deltas are written, done_seq = n once the snapshots due
 * this cycle are written too (the worker writes them before it takes
 * another message, so they are the state at the flush). Main produces the
 * partial batches between the two (it reads only the outbox and the
 * batches, the worker then writes only its changelog buffer), so a cycle's
 * totals do not wait for its snapshots. The release/acquire pairs order the
 * plain writes of the args, the outbox and the batches; each side writes
 * its slot only while the other is not reading it, so no lock is needed.
 * rd_kafka_queue_yield() wakes a worker blocked in
 * rd_kafka_consume_batch_queue() so a barrier completes promptly. While
 * waiting, main keeps serving the producer's delivery reports, so a worker
 * blocked on a full producer queue (dead-letter flood) cannot deadlock it.
 *
 * A cycle (every commit.interval.ms, and before letting partitions go):
 *   1. barrier: each partition's changed rows, its position, and its
 *      changelog records (a delta, or a snapshot when the changelog since the
 *      last one has outgrown it);
 *   2. partial rows (customs.totals.partial, with the owner epoch and the
 *      input offset they reflect: the batches the workers encoded) and then
 *      a STATUS per partition whose position, watermark, idleness or epoch
 *      changed since its last one - first, as the published totals wait for
 *      them;
 *   3. changelog snapshots and deltas (in that order within a state
 *      partition), and dead letters (transactions);
 *   4. once all of that is acknowledged, each partition's CHECKPOINT (after
 *      its delta in the changelog; it names its snapshot's offset, known
 *      from that acknowledgement);
 *   5. once the checkpoints are acknowledged, the input offsets are committed
 *      with the claim metadata.
 * A crash anywhere leaves the last acknowledged checkpoint as the state:
 * the next owner restores it and resumes the input there; what the lost cycle
 * had published is published again from the same input, identically, and
 * the merge keeps the newest value of each row. The order of 3 and 4 is what
 * makes that true: a restored owner republishes only rows that change after
 * its checkpoint, so everything a checkpoint covers must already be on the
 * partial topic (a checkpoint acknowledged before its cycle's rows, then a
 * crash, lost those rows for good: windows that get no later event kept an
 * older share).
 *
 * Delivery accounting. Every produced message is tagged with its cycle's
 * slot; `outstanding` counts undelivered messages per slot, so a cycle waits
 * for exactly its own messages.
 */
#include "ds_pipeline.h"
#include "ds_changelog.h"
#include "ds_codec.h"
#include "ds_codec_avro.h"
#include "ds_common.h"
#include "ds_domain.h"
#include "ds_kafka.h"
#include "ds_kstats.h"
#include "ds_log.h"
#include "ds_merge_role.h"
#include "ds_metrics.h"
#include "ds_part.h"
#include "ds_partial.h"
#include "ds_schemas.h"
#include "ds_signal.h"
#include "ds_state.h"
#include "ds_status.h"
#include "ds_step.h"
#include "ds_validate.h"
#include "ds_wire.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define WORKER_POLL_MS 100
#define DLQ_LOG_FIRST 10 /* dead letters logged per reason and worker before sampling */
#define DLQ_LOG_EVERY 10000
#define EPOCH_SLOTS 4
#define MAX_AVRO_DECODERS 16

enum { REQ_FLUSH = 1, REQ_ADD, REQ_DROP, REQ_STOP };

typedef struct pipeline pipeline_t;

/* A dead letter waiting for the cycle's transaction (exactly.once.mode=transactions). */
typedef struct pdlq {
        rd_kafka_headers_t *h;
        void *key, *value;
        size_t klen, vlen;
        int32_t partition; /* the message's input partition */
} pdlq_t;

/* Frees what a dead letter still owns (nothing once cycle() has handed it
 * to librdkafka: it clears the pointers). */
static void pdlq_free(pdlq_t *d) {
        if (d->h)
                rd_kafka_headers_destroy(d->h);
        free(d->key);
        free(d->value);
}

typedef struct pdlqv {
        pdlq_t *v;
        uint32_t n, cap;
} pdlqv_t;

/* A changelog record a worker wrote during a flush. */
typedef struct clrec {
        int32_t partition;
        int snapshot;   /* part of a snapshot */
        int first;      /* the snapshot's SNAP_BEGIN */
        size_t off, len; /* in the worker's clbuf */
} clrec_t;

typedef struct worker {
        int id;
        pipeline_t *pl;
        pthread_t thread;
        int started;
        rd_kafka_queue_t *q;
        ds_part_t **parts; /* by partition number */
        int32_t nparts;
        int owned; /* partitions assigned (main's bookkeeping) */

        /* barrier (see the file comment) */
        _Atomic uint64_t req_seq;
        _Atomic uint64_t done_seq;
        _Atomic uint64_t rows_seq; /* REQ_FLUSH: outbox and partial batches written (snapshots may follow) */
        uint64_t posted; /* main: last request number posted */
        uint64_t served; /* worker: last request number served */
        int req_op;
        ds_part_t *req_part;
        int32_t req_partition;
        uint32_t req_epoch;

        /* written while serving REQ_FLUSH, read by main after the barrier */
        ds_outbox_t ob;        /* positions and stats (rows and evictions are encoded, then dropped) */
        ds_partial_out_t pout; /* the flush's partial rows, encoded; not copied by produce() */
        ds_buf_t clbuf;
        clrec_t *cl;
        uint32_t ncl, capcl;
        int32_t *snapq; /* partitions whose snapshot is due this flush (room for nparts) */
        uint32_t nsnapq;
        pdlqv_t dlq_out; /* transactions: the dead letters since the last flush */
        int oom;
        pdlqv_t dlq_pending; /* transactions: dead letters of the running cycle (worker only) */

        /* hot-path state */
        uint32_t epoch; /* delivery cycle of the dead letters produced now */
        int64_t batch_now_ms;
        uint64_t prepared; /* messages decoded (for the decode-time sample) */
        ds_step_ahead_t ahead[2]; /* the message handled next, and the one after */
        ds_contrib_t old;
        uint32_t avro_ids[MAX_AVRO_DECODERS];
        ds_avro_decoder_t *avro[MAX_AVRO_DECODERS];
        int navro;
        ds_counters_t c;
        ds_counters_shared_t shared;
} worker_t;

typedef struct assigned {
        int32_t partition;
        int worker;
        ds_part_t *part;
        int32_t epoch;           /* claimed */
        int64_t claim_offset;    /* changelog offset of the claim */
        int64_t snapshot_offset; /* changelog offset of the snapshot the state starts from */
        int64_t next_offset;     /* as of the last cycle */
        int64_t watermark_ms;
        int64_t committed;
        int eof, idle;
        ds_dtag_t snap_tag; /* the delivery of this cycle's SNAP_BEGIN */
        ds_partial_sent_t status; /* the STATUS last produced for it, since it was assigned */
} assigned_t;

struct pipeline {
        const ds_config_t *cfg;
        ds_part_cfg_t part_cfg;
        ds_schemas_t *schemas;
        rd_kafka_t *consumer, *producer;
        ds_changelog_t *cl;
        worker_t *w;
        int nw;
        int32_t partial_partitions;
        assigned_t *as;
        int nas, capas;
        _Atomic int fatal;
        uint32_t epoch;
        uint32_t slot; /* delivery slot of the cycle being written */
        ds_dtag_t tags[EPOCH_SLOTS];
        _Atomic int64_t outstanding[EPOCH_SLOTS];
        _Atomic uint64_t delivery_failed;
        ds_buf_t buf;
        uint64_t partial_rows, changelog_bytes, snapshots, cycles, restores;
        uint64_t partial_msgs; /* batches of partial rows produced */
        ds_partial_batcher_t *batcher;
        uint64_t status_msgs; /* statuses produced, counted once per partial partition (in its batch) */
        int64_t restore_ms_total, restore_ms_max;
        int64_t last_cycle_ms;
        ds_hist_t cycle_hist, restore_hist, commit_hist, txn_hist; /* DS_HIST_MS, main thread */
        int assigned_once, restoring;       /* for /readyz (ds_status.h) */
        int ready_logged;
        ds_merge_role_t *mr;
        pthread_t mr_thread;
        int mr_started, mr_rc;
};

static void set_fatal(pipeline_t *pl) {
        atomic_store_explicit(&pl->fatal, 1, memory_order_relaxed);
}

static int is_fatal(pipeline_t *pl) {
        return atomic_load_explicit(&pl->fatal, memory_order_relaxed);
}

/* ------------------------------------------------------------------------ */
/* Worker side                                                               */

static ds_avro_decoder_t *avro_decoder(worker_t *w, uint32_t id) {
        for (int i = 0; i < w->navro; i++)
                if (w->avro_ids[i] == id)
                        return w->avro[i];
        if (w->navro == MAX_AVRO_DECODERS)
                return NULL;
        char err[256];
        ds_avro_decoder_t *d = ds_avro_decoder_new(ds_reader_schema(ds_schemas_reader(w->pl->schemas)),
                                                   ds_schemas_get(w->pl->schemas, id), err, sizeof(err));
        if (!d)
                ds_log(DS_LOG_WARN, "decode", "Avro C cannot read this writer schema; its messages are dead-lettered",
                       "schema_id=%u error=\"%s\"", id, err);
        w->avro_ids[w->navro] = id;
        w->avro[w->navro++] = d;
        return d;
}

/* Writes msg unchanged to the dead-letter topic with headers saying why. */
static void dead_letter(worker_t *w, const rd_kafka_message_t *msg, ds_dlq_reason_t r, int64_t schema_id) {
        pipeline_t *pl = w->pl;
        rd_kafka_headers_t *orig = NULL, *h;
        if (rd_kafka_message_headers(msg, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR && orig)
                h = rd_kafka_headers_copy(orig);
        else
                h = rd_kafka_headers_new(8);
        char num[32];
        const char *code = ds_dlq_code(r), *text = ds_dlq_text(r);
        rd_kafka_header_add(h, "ds.error.code", -1, code, -1);
        rd_kafka_header_add(h, "ds.error.text", -1, text, -1);
        if (schema_id >= 0) {
                snprintf(num, sizeof(num), "%" PRId64, schema_id);
                rd_kafka_header_add(h, "ds.schema.id", -1, num, -1);
        }
        const char *topic = rd_kafka_topic_name(msg->rkt);
        rd_kafka_header_add(h, "ds.source.topic", -1, topic, -1);
        snprintf(num, sizeof(num), "%" PRId32, msg->partition);
        rd_kafka_header_add(h, "ds.source.partition", -1, num, -1);
        snprintf(num, sizeof(num), "%" PRId64, msg->offset);
        rd_kafka_header_add(h, "ds.source.offset", -1, num, -1);

        if (pl->cfg->eos_mode == DS_EOS_TRANSACTIONS) {
                /* produced by main inside the cycle's transaction */
                pdlqv_t *q = &w->dlq_pending;
                if (q->n == q->cap) {
                        uint32_t cap = q->cap ? q->cap * 2 : 64;
                        pdlq_t *v = realloc(q->v, cap * sizeof(*v));
                        if (!v)
                                goto oom;
                        q->v = v;
                        q->cap = cap;
                }
                pdlq_t *d = &q->v[q->n];
                d->partition = msg->partition;
                d->h = h;
                d->klen = msg->key_len;
                d->vlen = msg->len;
                d->key = msg->key_len ? malloc(msg->key_len) : NULL;
                d->value = msg->len ? malloc(msg->len) : NULL;
                if ((msg->key_len && !d->key) || (msg->len && !d->value)) {
                        free(d->key);
                        free(d->value);
                        goto oom;
                }
                if (d->key)
                        memcpy(d->key, msg->key, msg->key_len);
                if (d->value)
                        memcpy(d->value, msg->payload, msg->len);
                q->n++;
                goto counted;
        }
        uint32_t slot = w->epoch % EPOCH_SLOTS;
        /* relaxed RMW: other workers tag the same slot; main reads it after
         * the barrier's acquire, which orders this increment before it */
        atomic_fetch_add_explicit(&pl->outstanding[slot], 1, memory_order_relaxed);
        rd_kafka_resp_err_t err;
        for (;;) {
                err = rd_kafka_producev(pl->producer, RD_KAFKA_V_TOPIC(pl->cfg->dlq_topic),
                                        RD_KAFKA_V_KEY(msg->key, msg->key_len),
                                        RD_KAFKA_V_VALUE(msg->payload, msg->len),
                                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
                                        RD_KAFKA_V_OPAQUE(&pl->tags[slot]), RD_KAFKA_V_END);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        break;
                usleep(1000); /* main serves delivery reports and frees room */
        }
        if (err) {
                atomic_fetch_sub_explicit(&pl->outstanding[slot], 1, memory_order_relaxed);
                rd_kafka_headers_destroy(h);
                ds_log(DS_LOG_ERROR, "dlq", "cannot write to the dead-letter topic; stopping without commit",
                       "topic=%s error=\"%s\" partition=%d offset=%" PRId64, pl->cfg->dlq_topic,
                       rd_kafka_err2str(err), msg->partition, msg->offset);
                set_fatal(pl);
                return;
        }
counted:
        w->c.dead_lettered++;
        uint64_t n = ++w->c.dlq[r];
        if (n <= DLQ_LOG_FIRST || n % DLQ_LOG_EVERY == 0)
                ds_log(DS_LOG_WARN, "dlq", "message dead-lettered",
                       "reason=%s topic=%s partition=%d offset=%" PRId64 " schema_id=%" PRId64
                       " count_for_reason=%" PRIu64 "%s",
                       code, topic, msg->partition, msg->offset, schema_id, n,
                       n == DLQ_LOG_FIRST ? " note=\"further ones logged every 10000th\"" : "");
        return;
oom:
        rd_kafka_headers_destroy(h);
        ds_log(DS_LOG_ERROR, "dlq", "out of memory keeping a dead letter; stopping without commit",
               "partition=%d offset=%" PRId64, msg->partition, msg->offset);
        set_fatal(pl);
}

/* Decodes and validates msg into a, one message ahead of its handle()
 * (ds_step_ahead_t), and starts loading its ledger slot. Changes no state
 * but the sampled decode-time histograms. */
static void prepare(worker_t *w, const rd_kafka_message_t *msg, ds_step_ahead_t *a) {
        pipeline_t *pl = w->pl;
        const ds_config_t *cfg = pl->cfg;
        ds_part_t *part = msg->partition >= 0 && msg->partition < w->nparts ? w->parts[msg->partition] : NULL;
        if (DS_UNLIKELY(msg->err || !part))
                return; /* handle() will not process it */

        /* one message in DS_DECODE_SAMPLE is timed (ds_metrics.h) */
        int64_t t0 = DS_UNLIKELY(++w->prepared % DS_DECODE_SAMPLE == 0) ? ds_mono_ns() : 0;
        ds_dlq_reason_t r = ds_step_decode(pl->schemas, msg->payload, msg->len, &a->decl, &a->rs);
        if (DS_UNLIKELY(cfg->decoder == DS_DECODER_AVRO_C) && !r) {
                /* the specialised decoder has vetted the bytes: Avro C leaks on
                 * some malformed input, so it only ever sees clean records */
                ds_avro_decoder_t *ad = avro_decoder(w, (uint32_t)a->rs.schema_id);
                r = ad ? ds_avro_decode(ad, a->rs.body, a->rs.body_len, &a->decl) : DS_DLQ_INCOMPATIBLE_SCHEMA;
        }
        if (DS_LIKELY(!r))
                r = ds_step_check(&a->decl, cfg->heading_digits, msg->key, msg->key_len, &a->contrib);
        if (DS_UNLIKELY(t0)) {
                ds_hist_observe(&w->c.decode, DS_HIST_NS, ds_mono_ns() - t0);
                /* how long after its producer stamped it a message is
                 * decoded (broker, fetch, queueing; it is applied one message
                 * later): the processor's share of the end-to-end latency
                 * before the cycle; producer clock skew shows here, a
                 * negative delay counts as 0 */
                rd_kafka_timestamp_type_t tt;
                int64_t ts = rd_kafka_message_timestamp(msg, &tt);
                if (tt == RD_KAFKA_TIMESTAMP_CREATE_TIME && ts > 0) {
                        int64_t d = ds_now_ms() - ts;
                        ds_hist_observe(&w->c.ingest, DS_HIST_MS, d > 0 ? d * 1000000 : 0);
                }
        }
        a->why = r;
        if (DS_LIKELY(!r))
                ds_part_prefetch(part, a->contrib.id);
}

/* Applies or dead-letters msg, which prepare() has decoded into a. */
static void process(worker_t *w, ds_part_t *part, const rd_kafka_message_t *msg, ds_step_ahead_t *a) {
        pipeline_t *pl = w->pl;
        w->c.consumed++;
        w->c.consumed_bytes += msg->len;
        if (DS_UNLIKELY(a->why)) {
                dead_letter(w, msg, a->why, a->rs.schema_id);
                return;
        }
        w->c.applied++;
        int outcome = ds_part_apply(part, &pl->part_cfg, &a->contrib, w->batch_now_ms, &w->old);
        if (DS_UNLIKELY(outcome < 0)) {
                ds_log(DS_LOG_ERROR, "worker", "out of memory applying a declaration; stopping without commit",
                       "partition=%d offset=%" PRId64, msg->partition, msg->offset);
                set_fatal(pl);
                return;
        }
        w->c.outcome[outcome]++;
}

/* msg's effect on its partition, in input order; a: what prepare() made of it. */
static void handle(worker_t *w, const rd_kafka_message_t *msg, ds_step_ahead_t *a) {
        ds_part_t *part = msg->partition >= 0 && msg->partition < w->nparts ? w->parts[msg->partition] : NULL;
        if (DS_UNLIKELY(msg->err)) {
                if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        if (part)
                                part->eof = 1;
                        return;
                }
                w->c.kafka_errors++;
                ds_log(DS_LOG_WARN, "consumer", "consume error", "partition=%d error=\"%s\"", msg->partition,
                       rd_kafka_err2str(msg->err));
                return;
        }
        if (DS_UNLIKELY(!part)) {
                w->c.not_owned++;
                return;
        }
        if (DS_UNLIKELY(msg->offset < part->next_offset)) {
                w->c.not_owned++; /* a message from before the restored checkpoint: already applied */
                return;
        }
        process(w, part, msg, a);
        part->next_offset = msg->offset + 1;
        part->eof = 0;
}

/* Changelog records go into the worker's clbuf; main produces them. */
typedef struct cl_ctx {
        worker_t *w;
        int32_t partition;
        int snapshot;
        int n;
} cl_ctx_t;

static int cl_emit(void *ctx, const uint8_t *rec, size_t len) {
        cl_ctx_t *c = ctx;
        worker_t *w = c->w;
        if (w->ncl == w->capcl) {
                uint32_t cap = w->capcl ? w->capcl * 2 : 256;
                clrec_t *n = realloc(w->cl, cap * sizeof(*n));
                if (!n)
                        return -1;
                w->cl = n;
                w->capcl = cap;
        }
        w->cl[w->ncl++] = (clrec_t){c->partition, c->snapshot, c->snapshot && c->n == 0, w->clbuf.len, len};
        ds_buf_put(&w->clbuf, rec, len);
        c->n++;
        return 0;
}

/* Serves REQ_FLUSH: every owned partition's position goes to the outbox,
 * its changed rows to the partial batches (encoded here, each worker its
 * own partitions'), and its changelog records to clbuf. */
static void serve_flush(worker_t *w) {
        pipeline_t *pl = w->pl;
        int64_t now = ds_now_ms();
        ds_outbox_reset(&w->ob);
        ds_partial_out_reset(&w->pout);
        w->clbuf.len = 0;
        w->ncl = 0;
        w->nsnapq = 0;
        /* transactions: hand this cycle's dead letters over (main has produced the last ones) */
        pdlqv_t t = w->dlq_out;
        w->dlq_out = w->dlq_pending;
        w->dlq_pending = t;
        w->dlq_pending.n = 0;
        for (int32_t p = 0; p < w->nparts; p++) {
                ds_part_t *part = w->parts[p];
                if (!part)
                        continue;
                uint32_t rows_before = w->ob.nrows, evicts_before = w->ob.nevicts;
                if (ds_part_flush(part, &pl->part_cfg, now, &w->ob))
                        goto oom;
                /* this partition's rows and evictions (just appended) */
                ds_outbox_t view = ds_outbox_since(&w->ob, rows_before, evicts_before);
                if (ds_partial_out_add(&w->pout, &view, now))
                        goto oom;
                /* a snapshot when there is none yet, or the tail has outgrown
                 * it: written after the rows are handed over (serve_snapshots);
                 * else a delta of the rows and evictions */
                if (ds_cl_snapshot_due(part, &pl->part_cfg)) {
                        w->snapq[w->nsnapq++] = p; /* sized like parts (serve_add) */
                } else {
                        cl_ctx_t cc = {w, p, 0, 0};
                        if (ds_cl_write_cycle(part, 0, &view, cl_emit, &cc) < 0)
                                goto oom;
                }
                /* encoded twice over: one partition's copies at a time, not the cycle's */
                ds_outbox_truncate(&w->ob, rows_before, evicts_before);
        }
        if (ds_partial_out_finish(&w->pout, now))
                goto oom;
        const ds_agg_stats_t *st = &w->ob.stats;
        for (int k = 0; k < DS_WIN__CNT; k++) {
                w->c.late[k] += st->late[k];
                w->c.late_retract[k] += st->late_retract[k];
        }
        w->c.late_top += st->late_top;
        w->c.evicted_rows += st->evicted;
        return;
oom:
        ds_log(DS_LOG_ERROR, "worker", "out of memory building the outbox; stopping without commit", "worker=%d",
               w->id);
        set_fatal(pl);
}

/* The second half of REQ_FLUSH, after rows_seq: the snapshots serve_flush
 * found due. Touches the partitions and the changelog buffer, not the
 * outbox or the partial batches (main is reading them). */
static void serve_snapshots(worker_t *w) {
        for (uint32_t i = 0; i < w->nsnapq; i++) {
                int32_t p = w->snapq[i];
                cl_ctx_t cc = {w, p, 1, 0};
                if (ds_cl_write_cycle(w->parts[p], 1, NULL, cl_emit, &cc) < 0) {
                        ds_log(DS_LOG_ERROR, "worker", "out of memory writing a snapshot; stopping without commit",
                               "worker=%d partition=%d", w->id, p);
                        set_fatal(w->pl);
                        return;
                }
        }
}

static int serve_add(worker_t *w, ds_part_t *part) {
        if (part->partition >= w->nparts) {
                int32_t n = part->partition + 1 > w->nparts * 2 ? part->partition + 1 : w->nparts * 2;
                ds_part_t **np = realloc(w->parts, (size_t)n * sizeof(*np));
                if (!np)
                        return -1;
                memset(np + w->nparts, 0, (size_t)(n - w->nparts) * sizeof(*np));
                w->parts = np;
                /* room for every partition's snapshot in one flush */
                int32_t *sq = realloc(w->snapq, (size_t)n * sizeof(*sq));
                if (!sq)
                        return -1;
                w->snapq = sq;
                w->nparts = n;
        }
        w->parts[part->partition] = part;
        return 0;
}

/* Transactions: the dead letters of a partition let go that no cycle has
 * taken yet (read after its last checkpoint; all of them when the
 * assignment was lost and no last cycle ran) go with it. Its next owner
 * reads those messages again and dead-letters them in its own
 * transaction; a later cycle of this process would commit them a second
 * time. */
static void drop_dead_letters(worker_t *w, int32_t partition) {
        pdlqv_t *q = &w->dlq_pending;
        uint32_t n = 0;
        for (uint32_t k = 0; k < q->n; k++) {
                pdlq_t *d = &q->v[k];
                if (d->partition != partition)
                        q->v[n++] = *d;
                else
                        pdlq_free(d);
        }
        q->n = n;
}

/* Serves the pending request; returns 1 when the worker must exit. */
static int serve(worker_t *w) {
        switch (w->req_op) {
        case REQ_FLUSH:
                serve_flush(w);
                w->epoch = w->req_epoch;
                return 0;
        case REQ_ADD:
                if (serve_add(w, w->req_part)) {
                        ds_log(DS_LOG_ERROR, "worker", "out of memory adding a partition", "worker=%d", w->id);
                        set_fatal(w->pl);
                }
                return 0;
        case REQ_DROP:
                if (w->req_partition < w->nparts)
                        w->parts[w->req_partition] = NULL;
                drop_dead_letters(w, w->req_partition);
                return 0;
        case REQ_STOP:
                return 1;
        }
        return 0;
}

static void *worker_main(void *arg) {
        worker_t *w = arg;
        ds_thread_name("worker", w->id);
        int bs = w->pl->cfg->batch_size;
        rd_kafka_message_t **batch = malloc((size_t)bs * sizeof(*batch));
        if (!batch) {
                ds_log(DS_LOG_ERROR, "worker", "out of memory", "worker=%d", w->id);
                set_fatal(w->pl);
                return NULL;
        }
        for (;;) {
                ssize_t n = rd_kafka_consume_batch_queue(w->q, WORKER_POLL_MS, batch, (size_t)bs);
                if (n > 0) {
                        w->batch_now_ms = ds_now_ms();
                        /* message i is handled while message i + 1 is already
                         * decoded (ds_step.h); each is destroyed after its handle() */
                        prepare(w, batch[0], &w->ahead[0]);
                        for (ssize_t i = 0; i < n; i++) {
                                if (i + 1 < n)
                                        prepare(w, batch[i + 1], &w->ahead[(i + 1) & 1]);
                                handle(w, batch[i], &w->ahead[i & 1]);
                                rd_kafka_message_destroy(batch[i]);
                        }
                        ds_counters_publish(&w->shared, &w->c);
                }
                /* acquire: pairs with main's release store of req_seq, so
                 * the request's arguments are visible */
                uint64_t rs = atomic_load_explicit(&w->req_seq, memory_order_acquire);
                if (rs != w->served) {
                        int op = w->req_op;
                        int stop = serve(w);
                        w->served = rs;
                        ds_counters_publish(&w->shared, &w->c);
                        if (op == REQ_FLUSH) {
                                /* release: publishes the outbox and the
                                 * partial batches written by serve_flush();
                                 * main reads them meanwhile */
                                atomic_store_explicit(&w->rows_seq, rs, memory_order_release);
                                serve_snapshots(w);
                        }
                        /* release: publishes what serve() (and the snapshots) wrote */
                        atomic_store_explicit(&w->done_seq, rs, memory_order_release);
                        if (stop)
                                break;
                }
        }
        free(batch);
        return NULL;
}

/* ------------------------------------------------------------------------ */
/* Main side                                                                 */

static void post(worker_t *w, int op, ds_part_t *part, int32_t partition, uint32_t epoch) {
        w->req_op = op;
        w->req_part = part;
        w->req_partition = partition;
        w->req_epoch = epoch;
        /* release: the request's arguments above are visible to the worker's acquire */
        atomic_store_explicit(&w->req_seq, ++w->posted, memory_order_release);
        rd_kafka_queue_yield(w->q);
}

static void wait_seq(pipeline_t *pl, worker_t *w, _Atomic uint64_t *seq) {
        int64_t start = ds_mono_ms(), warned = 0;
        /* acquire: pairs with the worker's release store of done_seq (rows_seq) */
        while (atomic_load_explicit(seq, memory_order_acquire) != w->posted) {
                rd_kafka_poll(pl->producer, 1); /* serve delivery reports meanwhile */
                int64_t waited = ds_mono_ms() - start;
                if (waited > 10000 && waited / 10000 > warned) {
                        warned = waited / 10000;
                        ds_log(DS_LOG_WARN, "pipeline", "waiting for a worker", "worker=%d waited_ms=%" PRId64, w->id,
                               waited);
                }
        }
}

static void wait_done(pipeline_t *pl, worker_t *w) {
        wait_seq(pl, w, &w->done_seq);
}

/* Delivery reports: every message carries a ds_dtag_t. Runs on main. */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
        (void)rk;
        pipeline_t *pl = opaque;
        ds_dtag_t *t = m->_private;
        if (t) {
                t->done = 1;
                t->err = m->err;
                t->offset = m->offset;
                if (t->slot >= 0 && t->slot < EPOCH_SLOTS)
                        atomic_fetch_sub_explicit(&pl->outstanding[t->slot], 1, memory_order_relaxed);
        }
        if (m->err) {
                atomic_fetch_add_explicit(&pl->delivery_failed, 1, memory_order_relaxed);
                const char *topic = rd_kafka_topic_name(m->rkt);
                /* a compacted topic refuses keyless records: the partial topic
                 * as earlier releases asked for it to be created */
                int keyless = !m->key_len &&
                              (m->err == RD_KAFKA_RESP_ERR_INVALID_RECORD || m->err == RD_KAFKA_RESP_ERR_INVALID_MSG);
                ds_log(DS_LOG_ERROR, "producer", "delivery failed", "topic=%s partition=%d error=\"%s\"%s", topic,
                       m->partition, rd_kafka_err2str(m->err),
                       keyless && !strcmp(topic, pl->cfg->partial_topic)
                               ? " hint=\"the broker refused a batch without a key: is the partial topic compacted? "
                                 "It must keep everything now (cleanup.policy=delete, retention.ms=-1; README, "
                                 "Upgrading)\""
                               : "");
        }
}

static assigned_t *find_assigned(pipeline_t *pl, int32_t partition) {
        for (int i = 0; i < pl->nas; i++)
                if (pl->as[i].partition == partition)
                        return &pl->as[i];
        return NULL;
}

/* Produces key and value to (topic, partition), counted in this cycle's
 * slot; tag defaults to the slot's shared tag. msgflags: RD_KAFKA_MSG_F_COPY,
 * or 0 for a value that stays untouched until its delivery report - the
 * changelog records in a worker's clbuf and the partial batches in its
 * pout, which only the next cycle's flush reuses, after this cycle's
 * wait_slot() has seen every report (and which pipeline shutdown frees only
 * after destroying the producer). Not copying the changelog saved ~0.2 GB of
 * peak RSS in a 1 M catch-up (bench/HOTPATH.md, thirteenth round). */
static int produce(pipeline_t *pl, const char *topic, int32_t partition, const void *key, size_t klen,
                   const void *value, size_t vlen, ds_dtag_t *tag, int msgflags) {
        uint32_t slot = pl->slot;
        if (!tag)
                tag = &pl->tags[slot];
        tag->slot = (int32_t)slot;
        atomic_fetch_add_explicit(&pl->outstanding[slot], 1, memory_order_relaxed);
        for (;;) {
                rd_kafka_resp_err_t err = rd_kafka_producev(
                    pl->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_KEY(key, klen),
                    RD_KAFKA_V_VALUE((void *)value, vlen), RD_KAFKA_V_MSGFLAGS(msgflags),
                    RD_KAFKA_V_OPAQUE(tag), RD_KAFKA_V_END);
                if (!err)
                        return 0;
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                        atomic_fetch_sub_explicit(&pl->outstanding[slot], 1, memory_order_relaxed);
                        ds_log(DS_LOG_ERROR, "pipeline", "cannot produce", "topic=%s partition=%d error=\"%s\"", topic,
                               partition, rd_kafka_err2str(err));
                        return -1;
                }
                rd_kafka_poll(pl->producer, 10);
        }
}

/* Waits until every message of this cycle's slot is acknowledged. */
static int wait_slot(pipeline_t *pl) {
        while (atomic_load_explicit(&pl->outstanding[pl->slot], memory_order_relaxed) > 0)
                rd_kafka_poll(pl->producer, 2);
        if (atomic_load_explicit(&pl->delivery_failed, memory_order_relaxed)) {
                ds_log(DS_LOG_ERROR, "pipeline", "messages were not delivered; stopping without checkpoint or commit",
                       "failed=%" PRIu64, atomic_load(&pl->delivery_failed));
                set_fatal(pl);
                return -1;
        }
        return 0;
}

static int produce_changelog(pipeline_t *pl, const worker_t *w, const clrec_t *r, ds_dtag_t *tag) {
        char key[16];
        int kl = snprintf(key, sizeof(key), "%d", r->partition);
        pl->changelog_bytes += r->len;
        /* not copied: clbuf stays as it is until the next flush (produce()) */
        return produce(pl, pl->cfg->state_topic, r->partition, key, (size_t)kl, w->clbuf.p + r->off, r->len, tag, 0);
}

/* A batch of partial rows and/or statuses (no key: nothing to compact). */
static int produce_partial(pipeline_t *pl, int32_t pp, const uint8_t *msg, size_t len, uint32_t rows, int msgflags) {
        pl->partial_msgs++;
        pl->partial_rows += rows;
        return produce(pl, pl->cfg->partial_topic, pp, NULL, 0, msg, len, NULL, msgflags);
}

/* ds_partial_emit_fn of main's batcher (the statuses): copied, the batcher
 * reuses its buffer. */
static int emit_rows(void *ctx, int32_t pp, const uint8_t *msg, size_t len, uint32_t rows) {
        return produce_partial(ctx, pp, msg, len, rows, RD_KAFKA_MSG_F_COPY);
}

/* Every owned partition's offset (all: also unchanged ones) with its claim
 * as metadata: the authority on who owns the partition (ds_changelog.h). */
static rd_kafka_topic_partition_list_t *offsets(pipeline_t *pl, int all) {
        rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(pl->nas ? pl->nas : 1);
        for (int i = 0; i < pl->nas; i++) {
                assigned_t *a = &pl->as[i];
                if (!all && a->next_offset <= a->committed)
                        continue;
                rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_add(offs, pl->cfg->input_topic,
                                                                                  a->partition);
                tp->offset = a->next_offset;
                char md[96];
                int n = ds_changelog_metadata(a->epoch, a->claim_offset, md, sizeof(md));
                tp->metadata = strdup(md);
                tp->metadata_size = tp->metadata ? (size_t)n : 0;
        }
        return offs;
}

/* Transactions: the cycle's messages and the input offsets commit together. */
static int txn_commit(pipeline_t *pl) {
        char err[512];
        rd_kafka_topic_partition_list_t *offs = offsets(pl, 0);
        int rc = ds_kafka_txn_commit(pl->producer, pl->consumer, offs, err, sizeof(err));
        if (rc)
                ds_log(DS_LOG_ERROR, "pipeline", "transaction failed; stopping", "error=\"%s\"", err);
        else
                for (int i = 0; i < offs->cnt; i++) {
                        assigned_t *a = find_assigned(pl, offs->elems[i].partition);
                        if (a)
                                a->committed = offs->elems[i].offset;
                }
        rd_kafka_topic_partition_list_destroy(offs);
        return rc;
}

/* Commits the offsets (outside transactions: the claims at assignment, and
 * every cycle in checkpoint mode). */
static void commit(pipeline_t *pl, int all) {
        rd_kafka_topic_partition_list_t *offs = offsets(pl, all);
        if (offs->cnt) {
                rd_kafka_resp_err_t err = rd_kafka_commit(pl->consumer, offs, 0);
                if (err) {
                        ds_log(DS_LOG_WARN, "commit", "offset commit failed; will retry next cycle",
                               "error=\"%s\"", rd_kafka_err2str(err));
                } else {
                        for (int i = 0; i < offs->cnt; i++) {
                                assigned_t *a = find_assigned(pl, offs->elems[i].partition);
                                if (a && !offs->elems[i].err)
                                        a->committed = offs->elems[i].offset;
                        }
                }
        }
        rd_kafka_topic_partition_list_destroy(offs);
}

/* One cycle (see the file comment). Returns 0, or -1 (fatal): then no
 * checkpoint or commit covers what was not acknowledged. */
static int cycle(pipeline_t *pl) {
        if (is_fatal(pl))
                return -1;
        int64_t t0 = ds_mono_ms();
        uint32_t e = ++pl->epoch;
        for (int i = 0; i < pl->nw; i++)
                post(&pl->w[i], REQ_FLUSH, NULL, -1, e);
        for (int i = 0; i < pl->nw; i++)
                wait_seq(pl, &pl->w[i], &pl->w[i].rows_seq);
        if (is_fatal(pl))
                goto drain;
        /* cycle done: flush_ms until the outboxes, partials_ms until the partial
         * rows are produced and the snapshots written, produce_ms (from the
         * outboxes) until everything is produced */
        int64_t t_flushed = ds_mono_ms(), t_snapped = 0, t_produced = 0, t_acked = 0, t_checkpointed = 0;
        /* this cycle's messages (and the dead letters before the barrier) */
        pl->slot = (e - 1) % EPOCH_SLOTS;

        for (int i = 0; i < pl->nw; i++) {
                const ds_outbox_t *ob = &pl->w[i].ob;
                for (uint32_t k = 0; k < ob->nparts; k++) {
                        assigned_t *a = find_assigned(pl, ob->parts[k].partition);
                        if (!a)
                                continue;
                        a->next_offset = ob->parts[k].next_offset;
                        a->watermark_ms = ob->parts[k].watermark_ms;
                        a->eof = ob->parts[k].eof;
                        a->idle = ob->parts[k].idle;
                }
        }

        /* 2. partial rows and a STATUS per partition first: they are what the
         * totals wait for, and nothing orders them after the changelog. The
         * workers encoded the rows; every partial partition gets its rows
         * (worker after worker) before the statuses below. */
        int64_t now = ds_now_ms();
        for (int i = 0; i < pl->nw; i++) {
                const ds_partial_out_t *po = &pl->w[i].pout;
                for (uint32_t k = 0; k < po->n; k++) {
                        const ds_partial_msg_t *m = &po->msgs[k];
                        /* not copied: pout stays as it is until the next flush (produce()) */
                        if (produce_partial(pl, m->pp, po->bytes.p + m->off, m->len, m->rows, 0))
                                goto fail;
                }
        }
        for (int i = 0; i < pl->nas; i++) {
                assigned_t *a = &pl->as[i];
                /* A STATUS goes to every partial partition (in a message
                 * after the cycle's rows in each), so P input and Q partial partitions
                 * cost P x Q statuses a round. The merge keeps only the
                 * latest of each input partition (epoch, offset, watermark,
                 * idle): one that repeats the last changes nothing, and is
                 * not sent. The first after an assignment always is.
                 * (Earlier releases also repeated an unchanged one every
                 * 30 s: on a compacted topic a zombie's later STATUS could
                 * be the only one kept. The topic now keeps everything, so
                 * a merge always reads ours too, and fences the zombie's;
                 * repeats would only make the topic grow.) */
                ds_partial_t st = {DS_PARTIAL_STATUS, a->partition, a->epoch, a->next_offset, a->watermark_ms,
                                   a->idle, {0, 0}, {0}, NULL, 0, NULL, 0, now};
                if (!ds_partial_status_due(&a->status, &st))
                        continue;
                ds_partial_retention(&st, &pl->part_cfg.agg.win, pl->part_cfg.agg.top_retention_ms);
                ds_partial_batcher_status(pl->batcher, &st);
                ds_partial_status_sent(&a->status, &st);
                pl->status_msgs += (uint64_t)pl->partial_partitions;
        }
        /* then the statuses, in a message of their own per partial partition
         * (enqueued after that partition's rows, and the producer keeps the
         * order): a status never overtakes the rows it covers */
        if (ds_partial_batcher_flush(pl->batcher, now))
                goto fail;

        /* the workers' snapshots (written while the above was produced) */
        for (int i = 0; i < pl->nw; i++)
                wait_done(pl, &pl->w[i]);
        if (is_fatal(pl))
                return -1;
        t_snapped = ds_mono_ms();

        /* 3. changelog: snapshots (a checkpoint names the offset of its
         * SNAP_BEGIN, known once acknowledged), then deltas; the producer
         * keeps their order within a state partition (idempotent) */
        int snaps = 0;
        for (int i = 0; i < pl->nw; i++) {
                worker_t *w = &pl->w[i];
                for (uint32_t k = 0; k < w->ncl; k++) {
                        const clrec_t *r = &w->cl[k];
                        if (!r->snapshot)
                                continue;
                        assigned_t *a = find_assigned(pl, r->partition);
                        ds_dtag_t *tag = r->first && a ? &a->snap_tag : NULL;
                        if (tag)
                                tag->done = 0;
                        if (produce_changelog(pl, w, r, tag))
                                goto fail;
                        snaps += r->first;
                }
        }
        /* and dead letters (transactions) */
        for (int i = 0; i < pl->nw; i++) {
                worker_t *w = &pl->w[i];
                for (uint32_t k = 0; k < w->dlq_out.n; k++) {
                        pdlq_t *d = &w->dlq_out.v[k];
                        ds_dtag_t *tag = &pl->tags[pl->slot];
                        atomic_fetch_add_explicit(&pl->outstanding[pl->slot], 1, memory_order_relaxed);
                        rd_kafka_resp_err_t err;
                        while ((err = rd_kafka_producev(pl->producer, RD_KAFKA_V_TOPIC(pl->cfg->dlq_topic),
                                                        RD_KAFKA_V_KEY(d->key, d->klen),
                                                        RD_KAFKA_V_VALUE(d->value, d->vlen),
                                                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                                                        RD_KAFKA_V_HEADERS(d->h), RD_KAFKA_V_OPAQUE(tag),
                                                        RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                                rd_kafka_poll(pl->producer, 10);
                        if (err) {
                                atomic_fetch_sub_explicit(&pl->outstanding[pl->slot], 1, memory_order_relaxed);
                                ds_log(DS_LOG_ERROR, "dlq", "cannot write to the dead-letter topic", "error=\"%s\"",
                                       rd_kafka_err2str(err));
                                goto fail;
                        }
                        /* the value and headers are librdkafka's now (F_FREE):
                         * if a later one fails, shutdown must not free them */
                        free(d->key);
                        d->key = NULL;
                        d->value = NULL;
                        d->h = NULL;
                }
                w->dlq_out.n = 0;
                for (uint32_t k = 0; k < w->ncl; k++)
                        if (!w->cl[k].snapshot && produce_changelog(pl, w, &w->cl[k], NULL))
                                goto fail;
        }

        /* 4. checkpoints, only once everything above is acknowledged (see the
         * file comment: a checkpoint must not outlive the rows it covers) */
        t_produced = ds_mono_ms();
        if (wait_slot(pl))
                return -1;
        t_acked = ds_mono_ms();
        for (int i = 0; snaps && i < pl->nas; i++)
                if (pl->as[i].snap_tag.done) {
                        pl->as[i].snapshot_offset = pl->as[i].snap_tag.offset;
                        pl->as[i].snap_tag.done = 0;
                        pl->snapshots++;
                }
        for (int i = 0; i < pl->nas; i++) {
                assigned_t *a = &pl->as[i];
                ds_cl_checkpoint_t cp = {a->next_offset, a->watermark_ms, a->snapshot_offset, a->claim_offset};
                pl->buf.len = 0;
                ds_cl_write_checkpoint(&pl->buf, a->partition, a->epoch, &cp);
                char key[16];
                int kl = snprintf(key, sizeof(key), "%d", a->partition);
                if (produce(pl, pl->cfg->state_topic, a->partition, key, (size_t)kl, pl->buf.p, pl->buf.len, NULL,
                            RD_KAFKA_MSG_F_COPY))
                        goto fail;
        }

        /* 5. checkpoints acknowledged: commit the input offsets */
        if (wait_slot(pl))
                return -1;
        t_checkpointed = ds_mono_ms();
        int64_t tc = ds_mono_ns();
        if (pl->cfg->eos_mode == DS_EOS_TRANSACTIONS) {
                if (txn_commit(pl))
                        goto fail;
                ds_hist_observe(&pl->txn_hist, DS_HIST_MS, ds_mono_ns() - tc);
        } else {
                commit(pl, 0);
                ds_hist_observe(&pl->commit_hist, DS_HIST_MS, ds_mono_ns() - tc);
        }
        pl->cycles++;
        pl->last_cycle_ms = ds_mono_ms() - t0;
        ds_hist_observe(&pl->cycle_hist, DS_HIST_MS, pl->last_cycle_ms * 1000000);
        DS_DEBUG("pipeline", "cycle done",
                 "partitions=%d snapshots=%d duration_ms=%" PRId64 " flush_ms=%" PRId64 " partials_ms=%" PRId64
                 " produce_ms=%" PRId64 " ack_ms=%" PRId64 " checkpoint_ms=%" PRId64 " commit_ms=%" PRId64,
                 pl->nas, snaps, pl->last_cycle_ms, t_flushed - t0, t_snapped - t_flushed, t_produced - t_flushed,
                 t_acked - t_produced,
                 t_checkpointed - t_acked, ds_mono_ms() - t_checkpointed);
        return 0;
fail:
        set_fatal(pl);
drain:
        /* no worker is left writing this cycle's snapshots */
        for (int i = 0; i < pl->nw; i++)
                wait_done(pl, &pl->w[i]);
        return -1;
}

/* The status snapshot for /metrics, /readyz and the dashboard (ds_status.h);
 * main thread, four times a second and around restores. */
static void publish_status(pipeline_t *pl) {
        const ds_config_t *cfg = pl->cfg;
        ds_status_snap_t s;
        memset(&s, 0, sizeof(s));
        snprintf(s.role, sizeof(s.role), "%s", cfg->role == DS_ROLE_ALL ? "all" : "process");
        s.processing = 1;
        s.assigned_once = pl->assigned_once;
        s.restoring = pl->restoring;
        s.fatal = is_fatal(pl);
        s.stopping = ds_stop_requested();
        s.nworkers = pl->nw < DS_STATUS_MAX_WORKERS ? pl->nw : DS_STATUS_MAX_WORKERS;
        for (int i = 0; i < pl->nw; i++) {
                ds_counters_sum(&s.c, &pl->w[i].shared);
                if (i < DS_STATUS_MAX_WORKERS && pl->w[i].q)
                        s.worker_queue[i] = (int64_t)rd_kafka_queue_length(pl->w[i].q);
        }
        s.partial_rows = pl->partial_rows;
        s.partial_messages = pl->partial_msgs;
        s.status_messages = pl->status_msgs;
        s.changelog_bytes = pl->changelog_bytes;
        s.snapshots = pl->snapshots;
        s.cycles = pl->cycles;
        s.restores = pl->restores;
        s.cycle = pl->cycle_hist;
        s.restore = pl->restore_hist;
        s.commit = pl->commit_hist;
        s.txn = pl->txn_hist;
        s.transactions = pl->cfg->eos_mode == DS_EOS_TRANSACTIONS;
        s.last_cycle_ms = pl->last_cycle_ms;
        s.parts = pl->nas ? calloc((size_t)pl->nas, sizeof(*s.parts)) : NULL;
        for (int i = 0; s.parts && i < pl->nas; i++) {
                const assigned_t *a = &pl->as[i];
                ds_status_part_t *p = &s.parts[s.nparts++];
                int64_t lo = 0, hi = -1;
                /* librdkafka's cached watermarks: no request to the broker */
                if (pl->consumer &&
                    rd_kafka_get_watermark_offsets(pl->consumer, cfg->input_topic, a->partition, &lo, &hi))
                        hi = -1;
                *p = (ds_status_part_t){a->partition, a->epoch, a->worker, a->next_offset, a->committed, hi,
                                        hi >= 0 ? (hi > a->next_offset ? hi - a->next_offset : 0) : -1,
                                        a->watermark_ms};
                if (p->lag > 0)
                        s.lag += p->lag;
        }
        if (pl->mr) {
                s.merging = 1;
                ds_merge_role_stats(pl->mr, &s.merge);
        }
        ds_status_ready(&s, cfg->ready_max_lag);
        ds_status_publish(&s);
        free(s.parts);
}

static int least_loaded_worker(pipeline_t *pl) {
        int best = 0;
        for (int i = 1; i < pl->nw; i++)
                if (pl->w[i].owned < pl->w[best].owned)
                        best = i;
        return best;
}

static void assign_partitions(pipeline_t *pl, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts) {
        const char *topic = pl->cfg->input_topic;
        /* the authority on each partition's owner: the group's committed metadata */
        rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_copy(parts);
        rd_kafka_resp_err_t cerr = rd_kafka_committed(rk, committed, 10000);
        if (cerr)
                ds_log(DS_LOG_WARN, "pipeline", "cannot read committed offsets; restoring from the changelog alone",
                       "error=\"%s\"", rd_kafka_err2str(cerr));
        /* every assigned partition's log start, to check that the broker kept
         * what the state has not seen: one request per leader, not a round
         * trip per partition (-1 where it could not be read: not checked).
         * Read before the restores: a deletion during them is not seen here
         * (it can only make the check miss a loss, never report one) */
        int32_t *ids = malloc((size_t)(parts->cnt ? parts->cnt : 1) * sizeof(*ids));
        int64_t *los = malloc((size_t)(parts->cnt ? parts->cnt : 1) * sizeof(*los));
        int nids = 0;
        if (!ids || !los) {
                set_fatal(pl);
        } else {
                for (int i = 0; i < parts->cnt; i++)
                        if (!strcmp(parts->elems[i].topic, topic))
                                ids[nids++] = parts->elems[i].partition;
                int32_t failed;
                rd_kafka_resp_err_t werr = ds_kafka_watermarks_many(rk, topic, ids, nids, los, NULL, 10000, &failed);
                if (werr)
                        ds_log(DS_LOG_WARN, "pipeline", "cannot read the input's log start; not checked",
                               "topic=%s partition=%d error=\"%s\"", topic, failed, rd_kafka_err2str(werr));
                /* and their changelogs' ends, for the restores (partition = input partition) */
                ds_changelog_prepare(pl->cl, ids, nids);
        }
        for (int i = 0, k = -1; i < parts->cnt && !is_fatal(pl); i++) {
                rd_kafka_topic_partition_t *tp = &parts->elems[i];
                if (strcmp(tp->topic, topic))
                        continue;
                k++; /* ids[k] == tp->partition */
                char md[128] = "";
                if (!cerr) {
                        rd_kafka_topic_partition_t *c = rd_kafka_topic_partition_list_find(committed, topic,
                                                                                           tp->partition);
                        if (c && c->metadata && c->metadata_size)
                                snprintf(md, sizeof(md), "%.*s", (int)c->metadata_size, (const char *)c->metadata);
                }
                char err[1024];
                ds_restore_result_t res;
                if (ds_changelog_take(pl->cl, tp->partition, md[0] ? md : NULL, &res, err, sizeof(err))) {
                        ds_log(DS_LOG_ERROR, "pipeline", "cannot restore the partition's state", "partition=%d error=\"%s\"",
                               tp->partition, err);
                        set_fatal(pl);
                        break;
                }
                int64_t lo = los[k];
                if (lo >= 0 && lo > res.input_offset) {
                        ds_log(DS_LOG_ERROR, "pipeline",
                               "the broker has deleted input the state has not seen: totals cannot be exact (the "
                               "embedded broker keeps 5 MiB per partition: use more partitions)",
                               "topic=%s partition=%d log_start_offset=%" PRId64 " resume_offset=%" PRId64, topic,
                               tp->partition, lo, res.input_offset);
                        ds_part_destroy(res.part);
                        set_fatal(pl);
                        break;
                }
                if (pl->nas == pl->capas) {
                        int cap = pl->capas ? pl->capas * 2 : 64;
                        assigned_t *na = realloc(pl->as, (size_t)cap * sizeof(*na));
                        if (!na) {
                                ds_part_destroy(res.part);
                                set_fatal(pl);
                                break;
                        }
                        pl->as = na;
                        pl->capas = cap;
                }
                ds_part_t *part = res.part;
                part->need_snapshot = res.snapshot_due;
                int wi = least_loaded_worker(pl);
                worker_t *w = &pl->w[wi];
                post(w, REQ_ADD, part, tp->partition, 0);
                wait_done(pl, w);
                w->owned++;
                rd_kafka_queue_t *pq = rd_kafka_queue_get_partition(rk, topic, tp->partition);
                rd_kafka_queue_forward(pq, w->q);
                rd_kafka_queue_destroy(pq);
                tp->offset = res.input_offset;
                pl->as[pl->nas++] = (assigned_t){tp->partition, wi, part, res.epoch, res.claim_offset,
                                                 res.snapshot_offset, res.input_offset, part->watermark_ms, -1, 0, 0,
                                                 {-1, 0, 0, -1}};
                pl->restores++;
                pl->restore_ms_total += res.restore_ms;
                ds_hist_observe(&pl->restore_hist, DS_HIST_MS, res.restore_ms * 1000000);
                if (res.restore_ms > pl->restore_ms_max)
                        pl->restore_ms_max = res.restore_ms;
                ds_log(DS_LOG_INFO, "pipeline", res.fresh ? "partition claimed (no earlier state)" : "partition restored",
                       "partition=%d worker=%d epoch=%d resume_offset=%" PRId64 " restore_ms=%" PRId64
                       " records=%" PRIu64 " bytes=%" PRIu64 " ledger_entries=%" PRIu64 " rows=%" PRIu64,
                       tp->partition, wi, res.epoch, res.input_offset, res.restore_ms, res.stats.records,
                       res.stats.bytes, res.stats.ledger_entries, res.stats.rows);
        }
        rd_kafka_topic_partition_list_destroy(committed);
        free(ids);
        free(los);
        /* the claims become the authority before anything is consumed */
        if (!is_fatal(pl))
                commit(pl, 1);
}

static void revoke_partitions(pipeline_t *pl, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts) {
        for (int i = 0; i < parts->cnt; i++) {
                assigned_t *a = find_assigned(pl, parts->elems[i].partition);
                if (!a || strcmp(parts->elems[i].topic, pl->cfg->input_topic))
                        continue;
                worker_t *w = &pl->w[a->worker];
                post(w, REQ_DROP, NULL, a->partition, 0);
                wait_done(pl, w);
                w->owned--;
                rd_kafka_queue_t *pq = rd_kafka_queue_get_partition(rk, pl->cfg->input_topic, a->partition);
                rd_kafka_queue_forward(pq, NULL);
                rd_kafka_queue_destroy(pq);
                ds_part_destroy(a->part);
                ds_log(DS_LOG_INFO, "pipeline", "partition revoked", "partition=%d next_offset=%" PRId64,
                       a->partition, a->next_offset);
                *a = pl->as[--pl->nas];
        }
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                         void *opaque) {
        pipeline_t *pl = opaque;
        int coop = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                /* restoring can take a while: say so first (/readyz, /healthz) */
                pl->restoring = 1;
                publish_status(pl);
                assign_partitions(pl, rk, parts);
                pl->restoring = 0;
                pl->assigned_once = 1;
                rd_kafka_error_t *e = NULL;
                rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;
                if (coop)
                        e = rd_kafka_incremental_assign(rk, parts);
                else
                        aerr = rd_kafka_assign(rk, parts);
                if (e || aerr) {
                        ds_log(DS_LOG_ERROR, "pipeline", "assign failed", "error=\"%s\"",
                               e ? rd_kafka_error_string(e) : rd_kafka_err2str(aerr));
                        if (e)
                                rd_kafka_error_destroy(e);
                        set_fatal(pl);
                }
                if (!is_fatal(pl) && !pl->ready_logged && pl->nas > 0) {
                        pl->ready_logged = 1;
                        ds_log(DS_LOG_INFO, "pipeline", "ready: partitions restored",
                               "partitions=%d restore_ms_max=%" PRId64, pl->nas, pl->restore_ms_max);
                }
                publish_status(pl);
        } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
                /* checkpoint, publish and commit what was processed before
                 * letting go - unless the assignment is lost (the session
                 * timed out, e.g. the process was paused): the partitions are
                 * another member's already, its commit would be refused, and
                 * its records would only be a zombie's for the new owner to
                 * fence. What was read since the last checkpoint is read
                 * again by the new owner. */
                int lost = rd_kafka_assignment_lost(rk);
                if (lost)
                        ds_log(DS_LOG_WARN, "pipeline",
                               "partitions lost: the group gave them to another member; not checkpointing what was "
                               "read since the last checkpoint (the new owner reads it again)",
                               "partitions=%d", parts->cnt);
                else if (!is_fatal(pl))
                        cycle(pl);
                if (coop) {
                        rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
                        if (e)
                                rd_kafka_error_destroy(e);
                } else {
                        rd_kafka_assign(rk, NULL);
                }
                revoke_partitions(pl, rk, parts);
        } else {
                ds_log(DS_LOG_ERROR, "pipeline", "rebalance error", "error=\"%s\"", rd_kafka_err2str(err));
                rd_kafka_assign(rk, NULL);
        }
}

static void log_progress(pipeline_t *pl, ds_counters_t *prev, int64_t elapsed_ms) {
        ds_counters_t s = {0};
        for (int i = 0; i < pl->nw; i++)
                ds_counters_sum(&s, &pl->w[i].shared);
        int64_t lag = 0;
        for (int i = 0; i < pl->nas; i++) {
                int64_t lo, hi;
                if (!rd_kafka_get_watermark_offsets(pl->consumer, pl->cfg->input_topic, pl->as[i].partition, &lo,
                                                    &hi) &&
                    hi > pl->as[i].next_offset)
                        lag += hi - pl->as[i].next_offset;
        }
        double rate = elapsed_ms > 0 ? (double)(s.consumed - prev->consumed) * 1000.0 / (double)elapsed_ms : 0;
        ds_log(DS_LOG_INFO, "pipeline", "progress",
               "consumed=%" PRIu64 " applied=%" PRIu64 " dead_lettered=%" PRIu64 " rate_per_s=%.0f partitions=%d "
               "lag=%" PRId64 " partial_rows=%" PRIu64 " cycle_ms=%" PRId64,
               s.consumed, s.applied, s.dead_lettered, rate, pl->nas, lag, pl->partial_rows, pl->last_cycle_ms);
        *prev = s;
}

static void log_summary(pipeline_t *pl) {
        ds_counters_t s = {0};
        for (int i = 0; i < pl->nw; i++)
                ds_counters_sum(&s, &pl->w[i].shared);
        char reasons[1024] = "", outcomes[1024] = "";
        size_t o = 0;
        for (int i = 1; i < DS_DLQ__CNT; i++)
                if (s.dlq[i])
                        o += (size_t)snprintf(reasons + o, sizeof(reasons) - o, " dlq_%s=%" PRIu64,
                                              ds_dlq_code((ds_dlq_reason_t)i), s.dlq[i]);
        o = 0;
        for (int i = 0; i < DS_EV__CNT; i++)
                if (s.outcome[i])
                        o += (size_t)snprintf(outcomes + o, sizeof(outcomes) - o, " %s=%" PRIu64,
                                              ds_event_code((ds_event_outcome_t)i), s.outcome[i]);
        char late[512];
        snprintf(late, sizeof(late),
                 " late_minute=%" PRIu64 " late_hour=%" PRIu64 " late_day=%" PRIu64 " late_top=%" PRIu64
                 " retract_skipped_minute=%" PRIu64 " retract_skipped_hour=%" PRIu64 " retract_skipped_day=%" PRIu64
                 " evicted_rows=%" PRIu64,
                 s.late[DS_WIN_MINUTE], s.late[DS_WIN_HOUR], s.late[DS_WIN_DAY], s.late_top,
                 s.late_retract[DS_WIN_MINUTE], s.late_retract[DS_WIN_HOUR], s.late_retract[DS_WIN_DAY],
                 s.evicted_rows);
        ds_log(DS_LOG_INFO, "pipeline", "summary",
               "consumed=%" PRIu64 " applied=%" PRIu64 " dead_lettered=%" PRIu64 " partial_rows=%" PRIu64
               " partial_messages=%" PRIu64 " status_messages=%" PRIu64 " changelog_bytes=%" PRIu64
               " snapshots=%" PRIu64 " cycles=%" PRIu64 " restores=%" PRIu64 " restore_ms_max=%" PRId64 "%s%s%s",
               s.consumed, s.applied, s.dead_lettered, pl->partial_rows, pl->partial_msgs, pl->status_msgs,
               pl->changelog_bytes, pl->snapshots, pl->cycles, pl->restores, pl->restore_ms_max, reasons, outcomes,
               late);
}

/* Exits the process if shutdown overruns shutdown.timeout.ms. */
typedef struct watchdog {
        pthread_mutex_t mtx;
        pthread_cond_t cv;
        int done;
        int64_t timeout_ms;
} watchdog_t;

static void *watchdog_main(void *arg) {
        watchdog_t *wd = arg;
        ds_thread_name("watchdog", -1);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += wd->timeout_ms / 1000;
        ts.tv_nsec += (wd->timeout_ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&wd->mtx);
        int rc = 0;
        while (!wd->done && rc == 0)
                rc = pthread_cond_timedwait(&wd->cv, &wd->mtx, &ts);
        int done = wd->done;
        pthread_mutex_unlock(&wd->mtx);
        if (!done) {
                ds_log(DS_LOG_ERROR, "pipeline", "shutdown took longer than shutdown.timeout.ms; exiting now",
                       "timeout_ms=%" PRId64, wd->timeout_ms);
                _exit(3);
        }
        return NULL;
}

static int nprocs(void) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (int)n : 1;
}

static void *merge_main(void *arg) {
        pipeline_t *pl = arg;
        ds_thread_name("merge", -1);
        pl->mr_rc = ds_merge_role_run(pl->mr);
        if (pl->mr_rc)
                set_fatal(pl);
        return NULL;
}

static void part_cfg_from(ds_part_cfg_t *pc, const ds_config_t *cfg) {
        ds_part_cfg_default(pc);
        pc->agg.win.retention_ms[DS_WIN_MINUTE] = cfg->minute_retention_ms;
        pc->agg.win.retention_ms[DS_WIN_HOUR] = cfg->hour_retention_ms;
        pc->agg.win.retention_ms[DS_WIN_DAY] = cfg->day_retention_ms;
        pc->agg.top_retention_ms = cfg->top_retention_ms;
        pc->ledger_retention_ms = cfg->ledger_retention_ms;
        pc->idle_ms = cfg->idle_ms;
        pc->snapshot_min_bytes = cfg->snapshot_min_bytes;
        pc->snapshot_interval_cycles = cfg->snapshot_interval_cycles;
}

/* The merge role alone (role=merge). */
static int run_merge_only(const ds_config_t *cfg, const ds_part_cfg_t *pc) {
        char err[1024];
        ds_merge_role_t *mr = ds_merge_role_new(cfg, pc, err, sizeof(err));
        if (!mr) {
                ds_log(DS_LOG_ERROR, "merge", "cannot start", "error=\"%s\"", err);
                return 2;
        }
        /* the merge loop checks its own flag; forward signals to it */
        pthread_t t;
        pipeline_t pl = {0};
        pl.mr = mr;
        if (pthread_create(&t, NULL, merge_main, &pl)) {
                ds_merge_role_destroy(mr);
                return 1;
        }
        while (!ds_stop_requested() && !is_fatal(&pl)) {
                ds_status_snap_t s;
                memset(&s, 0, sizeof(s));
                snprintf(s.role, sizeof(s.role), "merge");
                s.merging = 1;
                s.fatal = is_fatal(&pl);
                ds_merge_role_stats(mr, &s.merge);
                ds_status_ready(&s, 0);
                ds_status_publish(&s);
                usleep(250 * 1000);
        }
        ds_status_stopping();
        ds_merge_role_request_stop(mr);
        pthread_join(t, NULL);
        ds_merge_role_destroy(mr);
        return pl.mr_rc;
}

int ds_pipeline_run(const ds_config_t *cfg) {
        char err[1024];
        int rc = 0;
        ds_domain_init();
        if (!ds_config_kafka_get(cfg, "bootstrap.servers") && !ds_config_kafka_get(cfg, "metadata.broker.list")) {
                ds_log(DS_LOG_ERROR, "config", "no brokers given: use -b SERVERS or kafka.bootstrap.servers", "%s",
                       "");
                return 2;
        }
        /* the processing role's producer must keep each partial partition's
         * order (a status never overtakes the rows before it: the merge
         * closes windows on statuses) and not duplicate changelog records */
        const char *idem = ds_config_kafka_get(cfg, "enable.idempotence");
        if (cfg->role != DS_ROLE_MERGE && idem && (!strcasecmp(idem, "false") || !strcmp(idem, "0"))) {
                ds_log(DS_LOG_ERROR, "config",
                       "kafka.enable.idempotence cannot be false: the processing role's producer must keep the "
                       "order of what it writes to the partial topic and the changelog",
                       "value=%s", idem);
                return 2;
        }
        ds_part_cfg_t pc;
        part_cfg_from(&pc, cfg);
        if (cfg->role == DS_ROLE_MERGE)
                return run_merge_only(cfg, &pc);

        pipeline_t *pl = calloc(1, sizeof(*pl));
        if (!pl) {
                fprintf(stderr, "declstream: out of memory\n");
                return 1;
        }
        pl->cfg = cfg;
        pl->part_cfg = pc;
        for (int i = 0; i < EPOCH_SLOTS; i++)
                pl->tags[i].slot = i;
        pl->schemas = ds_schemas_open(cfg, err, sizeof(err));
        if (!pl->schemas) {
                ds_log(DS_LOG_ERROR, "config", "cannot load schemas", "error=\"%s\"", err);
                free(pl);
                return 2;
        }

        static const char *const producer_defaults[] = {
            "linger.ms", "5",  "compression.codec", "lz4", "partitioner", "murmur2_random",
            "enable.idempotence", "true", "acks", "all", "message.max.bytes", "16777216", NULL};
        rd_kafka_conf_t *pconf =
            ds_kafka_conf(DS_KAFKA_PRODUCER, producer_defaults, cfg->kafka, cfg->nkafka, err, sizeof(err));
        if (!pconf) {
                ds_log(DS_LOG_ERROR, "config", "bad Kafka producer configuration", "error=\"%s\"", err);
                rc = 2;
                goto out;
        }
        rd_kafka_conf_set_dr_msg_cb(pconf, dr_cb);
        ds_kstats_attach(pconf, cfg);
        rd_kafka_conf_set_opaque(pconf, pl);
        int txn = cfg->eos_mode == DS_EOS_TRANSACTIONS;
        if (txn) {
                char tid[512], e2[256];
                ds_kafka_txn_id(cfg, "process", tid, sizeof(tid));
                if (rd_kafka_conf_set(pconf, "transactional.id", tid, e2, sizeof(e2)) != RD_KAFKA_CONF_OK) {
                        ds_log(DS_LOG_ERROR, "config", "cannot set transactional.id", "error=\"%s\"", e2);
                        rd_kafka_conf_destroy(pconf);
                        rc = 2;
                        goto out;
                }
        }
        if (!(pl->producer = ds_kafka_new(DS_KAFKA_PRODUCER, pconf, err, sizeof(err)))) {
                ds_log(DS_LOG_ERROR, "pipeline", "cannot start", "error=\"%s\"", err);
                rc = 2;
                goto out;
        }
        if (txn) {
                /* fences earlier instances with the same transactional id */
                rd_kafka_error_t *e = rd_kafka_init_transactions(pl->producer, 60000);
                if (!e)
                        e = rd_kafka_begin_transaction(pl->producer);
                if (e) {
                        ds_log(DS_LOG_ERROR, "pipeline", "cannot start transactions", "error=\"%s\"",
                               rd_kafka_error_string(e));
                        rd_kafka_error_destroy(e);
                        rc = 1;
                        goto out;
                }
                ds_log(DS_LOG_INFO, "pipeline", "transactions on (the embedded broker accepts them but does not keep "
                                                "their guarantees)", "%s", "");
        }
        /* the changelog reader: aborted cycles are not state, and an offset
         * no longer held must fail the restore, not send the reader to the
         * log's end (an empty read) */
        rd_kafka_conf_t *rconf = ds_kafka_reader_conf(cfg, err, sizeof(err));
        if (!rconf || !(pl->cl = ds_changelog_new(cfg->state_topic, &pl->part_cfg, rconf, pl->producer, err,
                                                 sizeof(err)))) {
                ds_log(DS_LOG_ERROR, "pipeline", "cannot start the changelog reader", "error=\"%s\"", err);
                rc = 2;
                goto out;
        }

        /* Prefetch limits: librdkafka 2.0.2 backs off 1 s when the prefetch
         * queue is full (FACTS.md), so let it hold enough to keep workers
         * busy, bounded at 256 MiB. */
        static const char *const consumer_defaults[] = {
            "enable.auto.commit", "false", "enable.auto.offset.store", "false", "auto.offset.reset", "earliest",
            "enable.partition.eof", "true", "queued.min.messages", "200000", "queued.max.messages.kbytes",
            "262144", "fetch.wait.max.ms", "100", NULL};
        rd_kafka_conf_t *cconf =
            ds_kafka_conf(DS_KAFKA_CONSUMER, consumer_defaults, cfg->kafka, cfg->nkafka, err, sizeof(err));
        if (!cconf) {
                ds_log(DS_LOG_ERROR, "config", "bad Kafka consumer configuration", "error=\"%s\"", err);
                rc = 2;
                goto out;
        }
        rd_kafka_conf_set_rebalance_cb(cconf, rebalance_cb);
        ds_kstats_attach(cconf, cfg);
        rd_kafka_conf_set_opaque(cconf, pl);
        if (!(pl->consumer = ds_kafka_new(DS_KAFKA_CONSUMER, cconf, err, sizeof(err)))) {
                ds_log(DS_LOG_ERROR, "pipeline", "cannot start", "error=\"%s\"", err);
                rc = 2;
                goto out;
        }
        rd_kafka_poll_set_consumer(pl->consumer);

        /* the topics the processing role writes, asked without creating
         * them (ds_kafka_topic_ready(); the partial topic must be kept whole,
         * which a topic created with the broker's defaults is not) */
        pl->partial_partitions =
            ds_kafka_topic_ready(pl->consumer, pl->producer, cfg->partial_topic, "partial.topic", err, sizeof(err));
        if (pl->partial_partitions <= 0 ||
            ds_kafka_topic_ready(pl->consumer, pl->producer, cfg->dlq_topic, "dlq.topic", err, sizeof(err)) <= 0) {
                ds_log(DS_LOG_ERROR, "pipeline", "cannot use a topic", "error=\"%s\"", err);
                rc = 1;
                goto out;
        }
        pl->batcher = ds_partial_batcher_new(pl->partial_partitions, cfg->heading_digits, DS_PARTIAL_BATCH_BYTES,
                                             emit_rows, pl);
        if (!pl->batcher) {
                ds_log(DS_LOG_ERROR, "pipeline", "out of memory", "%s", "");
                rc = 1;
                goto out;
        }

        if (cfg->role == DS_ROLE_ALL) {
                if (!(pl->mr = ds_merge_role_new(cfg, &pl->part_cfg, err, sizeof(err)))) {
                        ds_log(DS_LOG_ERROR, "merge", "cannot start", "error=\"%s\"", err);
                        rc = 2;
                        goto out;
                }
                if (pthread_create(&pl->mr_thread, NULL, merge_main, pl)) {
                        rc = 1;
                        goto out;
                }
                pl->mr_started = 1;
        }

        pl->nw = cfg->threads ? cfg->threads : nprocs();
        pl->w = calloc((size_t)pl->nw, sizeof(worker_t));
        if (!pl->w) {
                ds_log(DS_LOG_ERROR, "pipeline", "out of memory", "%s", "");
                rc = 1;
                goto out;
        }
        for (int i = 0; i < pl->nw; i++) {
                worker_t *w = &pl->w[i];
                w->id = i;
                w->pl = pl;
                if (ds_partial_out_init(&w->pout, pl->partial_partitions, cfg->heading_digits)) {
                        ds_log(DS_LOG_ERROR, "pipeline", "out of memory", "%s", "");
                        rc = 1;
                        goto out;
                }
                w->q = rd_kafka_queue_new(pl->consumer);
                if (pthread_create(&w->thread, NULL, worker_main, w)) {
                        ds_log(DS_LOG_ERROR, "pipeline", "cannot start a worker thread", "worker=%d", i);
                        rc = 1;
                        goto out;
                }
                w->started = 1;
        }

        rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, cfg->input_topic, RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t serr = rd_kafka_subscribe(pl->consumer, sub);
        rd_kafka_topic_partition_list_destroy(sub);
        if (serr) {
                ds_log(DS_LOG_ERROR, "pipeline", "cannot subscribe", "topic=%s error=\"%s\"", cfg->input_topic,
                       rd_kafka_err2str(serr));
                rc = 1;
                goto out;
        }
        ds_log(DS_LOG_INFO, "pipeline", "started",
               "version=%s role=%s exactly_once=%s input=%s partial=%s state=%s group=%s workers=%d "
               "commit_interval_ms=%" PRId64 " heading_digits=%d decoder=%s",
               DS_VERSION, cfg->role == DS_ROLE_ALL ? "all" : "process",
               cfg->eos_mode == DS_EOS_TRANSACTIONS ? "transactions" : "checkpoint", cfg->input_topic, cfg->partial_topic,
               cfg->state_topic, ds_config_kafka_get(cfg, "group.id"), pl->nw, cfg->commit_interval_ms,
               cfg->heading_digits, cfg->decoder == DS_DECODER_AVRO_C ? "avro-c" : "specialized");

        int64_t next_cycle = ds_mono_ms() + cfg->commit_interval_ms;
        int64_t next_stats = ds_mono_ms() + cfg->stats_interval_ms, last_stats = ds_mono_ms();
        int64_t next_status = 0;
        ds_counters_t prev = {0};
        int finished = 0;
        while (!ds_stop_requested() && !is_fatal(pl)) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(pl->consumer, 50);
                if (m) {
                        if (m->err)
                                ds_log(m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF ? DS_LOG_DEBUG : DS_LOG_WARN,
                                       "consumer", "consumer event", "error=\"%s\"", rd_kafka_message_errstr(m));
                        rd_kafka_message_destroy(m);
                }
                rd_kafka_poll(pl->producer, 0);
                int64_t now = ds_mono_ms();
                if (now >= next_cycle) {
                        if (cycle(pl))
                                break;
                        next_cycle = ds_cycle_next(now, ds_mono_ms(), cfg->commit_interval_ms);
                        if (cfg->exit_on_eof && pl->nas > 0) {
                                int all = 1;
                                for (int i = 0; i < pl->nas && all; i++)
                                        all = pl->as[i].eof;
                                if (all) {
                                        ds_log(DS_LOG_INFO, "pipeline", "every assigned partition is read to its end",
                                               "partitions=%d", pl->nas);
                                        finished = 1;
                                        break;
                                }
                        }
                }
                if (now >= next_status) {
                        publish_status(pl);
                        next_status = now + 250;
                }
                if (cfg->stats_interval_ms && now >= next_stats) {
                        log_progress(pl, &prev, now - last_stats);
                        last_stats = now;
                        next_stats = now + cfg->stats_interval_ms;
                }
        }

        /* Shutdown: bounded by the watchdog. */
        watchdog_t wd = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, cfg->shutdown_timeout_ms};
        pthread_t wdt;
        /* shutdown.timeout.ms bounds a stop someone asked for (a signal, a
         * fatal error); at the end of the input (exit.on.eof) nobody is
         * waiting, and the last cycle and the merge's last publish of a long
         * catch-up may take longer */
        int wd_started = !finished && !pthread_create(&wdt, NULL, watchdog_main, &wd);
        ds_status_stopping();
        if (ds_stop_requested())
                ds_log(DS_LOG_INFO, "pipeline", "stopping: checkpointing, publishing and committing", "%s", "");
        if (!is_fatal(pl) && !finished)
                cycle(pl);
        rd_kafka_consumer_close(pl->consumer); /* revokes: one more cycle, then leaves the group */
        if (pl->mr_started) {
                /* the merge publishes what the last cycles produced, then stops */
                if (is_fatal(pl))
                        ds_merge_role_request_stop(pl->mr);
                else
                        ds_merge_role_request_finish(pl->mr, finished);
                pthread_join(pl->mr_thread, NULL);
                pl->mr_started = 0;
                if (pl->mr_rc)
                        set_fatal(pl);
        }
        if (is_fatal(pl))
                rc = 1;
        log_summary(pl);
        publish_status(pl); /* the final figures, for a last scrape */
        if (wd_started) {
                pthread_mutex_lock(&wd.mtx);
                wd.done = 1;
                pthread_cond_signal(&wd.cv);
                pthread_mutex_unlock(&wd.mtx);
                pthread_join(wdt, NULL);
        }

out:
        if (pl->mr_started) {
                ds_merge_role_request_stop(pl->mr);
                pthread_join(pl->mr_thread, NULL);
        }
        ds_merge_role_destroy(pl->mr);
        for (int i = 0; pl->w && i < pl->nw; i++) {
                worker_t *w = &pl->w[i];
                if (w->started) {
                        post(w, REQ_STOP, NULL, -1, 0);
                        pthread_join(w->thread, NULL);
                }
        }
        /* The producer goes before the workers' buffers: after a failed
         * cycle it may still hold changelog records and partial batches it
         * did not copy (the workers' clbuf and pout, produce()); it outlives
         * the workers, which may write dead letters to it. */
        if (pl->producer) {
                rd_kafka_flush(pl->producer, 10000);
                rd_kafka_destroy(pl->producer);
                pl->producer = NULL;
        }
        if (pl->w) {
                for (int i = 0; i < pl->nw; i++) {
                        worker_t *w = &pl->w[i];
                        for (int32_t p = 0; p < w->nparts; p++)
                                if (w->parts[p])
                                        ds_part_destroy(w->parts[p]);
                        free(w->parts);
                        ds_outbox_free(&w->ob);
                        ds_partial_out_free(&w->pout);
                        ds_buf_free(&w->clbuf);
                        for (uint32_t k = 0; k < w->dlq_out.n; k++)
                                pdlq_free(&w->dlq_out.v[k]);
                        for (uint32_t k = 0; k < w->dlq_pending.n; k++)
                                pdlq_free(&w->dlq_pending.v[k]);
                        free(w->dlq_out.v);
                        free(w->dlq_pending.v);
                        free(w->cl);
                        free(w->snapq);
                        for (int k = 0; k < w->navro; k++)
                                ds_avro_decoder_destroy(w->avro[k]);
                        if (w->q)
                                rd_kafka_queue_destroy(w->q);
                }
                free(pl->w);
        }
        ds_changelog_destroy(pl->cl);
        if (pl->consumer)
                rd_kafka_destroy(pl->consumer);
        free(pl->as);
        ds_partial_batcher_destroy(pl->batcher);
        ds_buf_free(&pl->buf);
        ds_schemas_destroy(pl->schemas);
        free(pl);
        if (rc == 0)
                ds_log(DS_LOG_INFO, "pipeline", "stopped", "%s", "");
        return rc;
}
