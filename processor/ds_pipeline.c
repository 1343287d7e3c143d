/*
 * ds_pipeline.c - the processor.
 *
 * Threads and what they own:
 *
 *   main     the consumer handle (group membership, rebalance callbacks),
 *            the producer's delivery reports, the merge (ds_publish.h), the
 *            assignment table, the publish/commit cycle.
 *   worker   its queue (partition queues are forwarded to it), the
 *            partitions assigned to it (ds_part.h), its decode scratch, its
 *            counters, its outbox.
 *
 * Barrier. main -> worker requests go through one slot per worker:
 *   main:   writes req_op/args, then req_seq = n   (release)
 *   worker: sees req_seq (acquire) after a batch, serves the request (e.g.
 *           flushes its partitions into its outbox), then done_seq = n
 *           (release)
 *   main:   waits until done_seq == n (acquire), then reads the outbox.
 * The release/acquire pairs order the plain writes of the args and of the
 * outbox; each side writes its slot only while the other is not reading it,
 * so no lock is needed. rd_kafka_queue_yield() wakes a worker blocked in
 * rd_kafka_consume_batch_queue() so a barrier completes promptly. While
 * waiting, main keeps serving the producer's delivery reports, so a worker
 * blocked on a full producer queue (dead-letter flood) cannot deadlock it.
 *
 * Delivery accounting. Every produced message (dead letters from workers,
 * rows from main) is tagged with the cycle it belongs to; `outstanding`
 * counts undelivered messages per cycle slot. A cycle commits offsets only
 * after all messages of its slot were acknowledged, so a committed offset
 * never covers a dead letter or a published row that could still be lost.
 */
#include "ds_pipeline.h"
#include "ds_codec.h"
#include "ds_codec_avro.h"
#include "ds_common.h"
#include "ds_domain.h"
#include "ds_encode.h"
#include "ds_hll.h"
#include "ds_kafka.h"
#include "ds_log.h"
#include "ds_metrics.h"
#include "ds_part.h"
#include "ds_publish.h"
#include "ds_schemas.h"
#include "ds_signal.h"
#include "ds_validate.h"
#include "ds_wire.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WORKER_POLL_MS 100
#define DLQ_LOG_FIRST 10 /* dead letters logged per reason and worker before sampling */
#define DLQ_LOG_EVERY 10000
#define EPOCH_SLOTS 4
#define MAX_AVRO_DECODERS 16

enum { REQ_FLUSH = 1, REQ_ADD, REQ_DROP, REQ_STOP };

typedef struct pipeline pipeline_t;

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
        uint64_t posted; /* main: last request number posted */
        uint64_t served; /* worker: last request number served */
        int req_op;
        ds_part_t *req_part;
        int32_t req_partition;
        uint32_t req_epoch;

        ds_outbox_t ob; /* written while serving REQ_FLUSH, read by main after the barrier */

        /* hot-path state */
        uint32_t epoch; /* delivery cycle of the dead letters produced now */
        int64_t batch_now_ms;
        ds_decl_t decl;
        ds_contrib_t contrib, old;
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
        int64_t next_offset; /* as of the last cycle */
        int64_t committed;
        int eof;
        int restoring;
} assigned_t;

struct pipeline {
        const ds_config_t *cfg;
        ds_part_cfg_t part_cfg;
        ds_schemas_t *schemas;
        rd_kafka_t *consumer, *producer;
        worker_t *w;
        int nw;
        ds_merge_t *merge;
        ds_outbox_t **obs; /* the workers' outboxes, for ds_publish_cycle */
        assigned_t *as;
        int nas, capas;
        _Atomic int fatal;
        uint32_t epoch;
        uint32_t slot; /* delivery slot of the cycle being published */
        int64_t publish_now;
        _Atomic int64_t outstanding[EPOCH_SLOTS];
        _Atomic uint64_t delivery_failed;
        ds_buf_t buf;
        uint64_t published_rows, published_tops, cycles, replayed_closed;
        int64_t last_cycle_ms;
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
                                        RD_KAFKA_V_OPAQUE((void *)(uintptr_t)(slot + 1)), RD_KAFKA_V_END);
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
        w->c.dead_lettered++;
        uint64_t n = ++w->c.dlq[r];
        if (n <= DLQ_LOG_FIRST || n % DLQ_LOG_EVERY == 0)
                ds_log(DS_LOG_WARN, "dlq", "message dead-lettered",
                       "reason=%s topic=%s partition=%d offset=%" PRId64 " schema_id=%" PRId64
                       " count_for_reason=%" PRIu64 "%s",
                       code, topic, msg->partition, msg->offset, schema_id, n,
                       n == DLQ_LOG_FIRST ? " note=\"further ones logged every 10000th\"" : "");
}

static void process(worker_t *w, ds_part_t *part, const rd_kafka_message_t *msg) {
        pipeline_t *pl = w->pl;
        const ds_config_t *cfg = pl->cfg;
        w->c.consumed++;
        w->c.consumed_bytes += msg->len;

        ds_resolved_t rs;
        ds_dlq_reason_t r = ds_schemas_resolve(pl->schemas, msg->payload, msg->len, &rs);
        if (DS_LIKELY(!r))
                r = ds_codec_decode(rs.codec, rs.body, rs.body_len, &w->decl);
        if (DS_UNLIKELY(cfg->decoder == DS_DECODER_AVRO_C) && !r) {
                /* the specialised decoder has vetted the bytes: Avro C leaks on
                 * some malformed input, so it only ever sees clean records */
                ds_avro_decoder_t *ad = avro_decoder(w, (uint32_t)rs.schema_id);
                r = ad ? ds_avro_decode(ad, rs.body, rs.body_len, &w->decl) : DS_DLQ_INCOMPATIBLE_SCHEMA;
        }
        if (DS_LIKELY(!r))
                r = ds_validate(&w->decl, cfg->heading_digits, &w->contrib);
        /* the key must be the declaration id: it is what keeps every event of
         * a declaration in one partition, in order */
        if (DS_LIKELY(!r) && DS_UNLIKELY(msg->key_len != w->decl.declaration_id.len ||
                                          memcmp(msg->key, w->decl.declaration_id.p, msg->key_len)))
                r = DS_DLQ_BAD_KEY;
        if (DS_UNLIKELY(r)) {
                dead_letter(w, msg, r, rs.schema_id);
                return;
        }
        w->c.applied++;
        int outcome = ds_part_apply(part, &pl->part_cfg, &w->contrib, w->batch_now_ms, &w->old);
        if (DS_UNLIKELY(outcome < 0)) {
                ds_log(DS_LOG_ERROR, "worker", "out of memory applying a declaration; stopping without commit",
                       "partition=%d offset=%" PRId64, msg->partition, msg->offset);
                set_fatal(pl);
                return;
        }
        w->c.outcome[outcome]++;
}

static void handle(worker_t *w, const rd_kafka_message_t *msg) {
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
        process(w, part, msg);
        part->next_offset = msg->offset + 1;
        part->eof = 0;
}

/* Serves REQ_FLUSH: every owned partition's position, changed rows and
 * closed rows go to the outbox. */
static void serve_flush(worker_t *w) {
        int64_t now = ds_now_ms();
        ds_outbox_reset(&w->ob);
        for (int32_t p = 0; p < w->nparts; p++) {
                if (!w->parts[p])
                        continue;
                if (ds_part_flush(w->parts[p], &w->pl->part_cfg, now, &w->ob)) {
                        ds_log(DS_LOG_ERROR, "worker", "out of memory building the outbox; stopping without commit",
                               "worker=%d", w->id);
                        set_fatal(w->pl);
                        return;
                }
        }
        const ds_agg_stats_t *st = &w->ob.stats;
        for (int k = 0; k < DS_WIN__CNT; k++) {
                w->c.late[k] += st->late[k];
                w->c.late_retract[k] += st->late_retract[k];
        }
        w->c.late_top += st->late_top;
        w->c.evicted_rows += st->evicted;
}

static int serve_add(worker_t *w, ds_part_t *part) {
        if (part->partition >= w->nparts) {
                int32_t n = part->partition + 1 > w->nparts * 2 ? part->partition + 1 : w->nparts * 2;
                ds_part_t **np = realloc(w->parts, (size_t)n * sizeof(*np));
                if (!np)
                        return -1;
                memset(np + w->nparts, 0, (size_t)(n - w->nparts) * sizeof(*np));
                w->parts = np;
                w->nparts = n;
        }
        w->parts[part->partition] = part;
        return 0;
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
                return 0;
        case REQ_STOP:
                return 1;
        }
        return 0;
}

static void *worker_main(void *arg) {
        worker_t *w = arg;
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
                        for (ssize_t i = 0; i < n; i++) {
                                handle(w, batch[i]);
                                rd_kafka_message_destroy(batch[i]);
                        }
                        ds_counters_publish(&w->shared, &w->c);
                }
                /* acquire: pairs with main's release store of req_seq, so
                 * the request's arguments are visible */
                uint64_t rs = atomic_load_explicit(&w->req_seq, memory_order_acquire);
                if (rs != w->served) {
                        int stop = serve(w);
                        w->served = rs;
                        ds_counters_publish(&w->shared, &w->c);
                        /* release: publishes the outbox written by serve() */
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

static void wait_done(pipeline_t *pl, worker_t *w) {
        int64_t start = ds_mono_ms(), warned = 0;
        /* acquire: pairs with the worker's release store of done_seq */
        while (atomic_load_explicit(&w->done_seq, memory_order_acquire) != w->posted) {
                rd_kafka_poll(pl->producer, 1); /* serve delivery reports meanwhile */
                int64_t waited = ds_mono_ms() - start;
                if (waited > 10000 && waited / 10000 > warned) {
                        warned = waited / 10000;
                        ds_log(DS_LOG_WARN, "pipeline", "waiting for a worker", "worker=%d waited_ms=%" PRId64, w->id,
                               waited);
                }
        }
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
        (void)rk;
        pipeline_t *pl = opaque;
        uintptr_t tag = (uintptr_t)m->_private;
        if (tag >= 1 && tag <= EPOCH_SLOTS)
                atomic_fetch_sub_explicit(&pl->outstanding[tag - 1], 1, memory_order_relaxed);
        if (m->err) {
                atomic_fetch_add_explicit(&pl->delivery_failed, 1, memory_order_relaxed);
                ds_log(DS_LOG_ERROR, "producer", "delivery failed", "topic=%s error=\"%s\"",
                       rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
        }
}

static assigned_t *find_assigned(pipeline_t *pl, int32_t partition) {
        for (int i = 0; i < pl->nas; i++)
                if (pl->as[i].partition == partition)
                        return &pl->as[i];
        return NULL;
}

/* Produces key and pl->buf (copied) to topic, tagged with this cycle's slot. */
static int produce(pipeline_t *pl, const char *topic, const char *key, size_t klen) {
        uint32_t slot = pl->slot;
        atomic_fetch_add_explicit(&pl->outstanding[slot], 1, memory_order_relaxed);
        for (;;) {
                rd_kafka_resp_err_t err = rd_kafka_producev(
                    pl->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, klen),
                    RD_KAFKA_V_VALUE(pl->buf.p, pl->buf.len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_OPAQUE((void *)(uintptr_t)(slot + 1)), RD_KAFKA_V_END);
                if (!err)
                        return 0;
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                        atomic_fetch_sub_explicit(&pl->outstanding[slot], 1, memory_order_relaxed);
                        ds_log(DS_LOG_ERROR, "publish", "cannot produce", "topic=%s error=\"%s\"", topic,
                               rd_kafka_err2str(err));
                        return -1;
                }
                rd_kafka_poll(pl->producer, 10);
        }
}

/* Kafka sink: one row of the merged view as vn.customs.Total v2. */
static int sink_row(void *ctx, const ds_row_t *r) {
        pipeline_t *pl = ctx;
        char key[96], keytext[24];
        int klen = ds_total_key(r->key, pl->cfg->heading_digits, key, sizeof(key));
        ds_row_keytext(r->key, pl->cfg->heading_digits, keytext, sizeof(keytext));
        int64_t dd = 0, dv = 0;
        if (r->aux) {
                const ds_distinct_t *d = r->aux;
                dd = (int64_t)(ds_hll_estimate(d->declarants) + 0.5);
                dv = (int64_t)(ds_hll_estimate(d->vehicles) + 0.5);
        }
        pl->buf.len = 0;
        ds_wire_put_header(&pl->buf, DS_SCHEMA_ID_TOTAL);
        ds_encode_total(&pl->buf, ds_rowkey_dim(r->key), keytext, ds_rowkey_window(r->key), r->key.start, &r->m, dd,
                        dv, pl->publish_now);
        return produce(pl, pl->cfg->output_topic, key, (size_t)klen);
}

/* Kafka sink: the top headings of one (gate, day). */
static int sink_top(void *ctx, uint32_t gate, int64_t day, const ds_top_entry_t *e, int n) {
        pipeline_t *pl = ctx;
        const ds_gate_t *g = ds_gate((int)gate);
        const char *code = g ? g->code : "?";
        char key[64];
        int klen = snprintf(key, sizeof(key), "%s|DAY|%" PRId64, code, day);
        pl->buf.len = 0;
        ds_wire_put_header(&pl->buf, DS_SCHEMA_ID_TOP_HEADINGS);
        ds_encode_top(&pl->buf, code, day, e, n, pl->cfg->heading_digits, pl->publish_now);
        return produce(pl, pl->cfg->top_topic, key, (size_t)klen);
}

/* One publish/commit cycle. Returns 0, or -1 (fatal) when rows could not be
 * delivered: offsets are then not committed. */
static int cycle(pipeline_t *pl) {
        if (is_fatal(pl))
                return -1;
        int64_t t0 = ds_mono_ms();
        uint32_t e = ++pl->epoch;
        for (int i = 0; i < pl->nw; i++)
                post(&pl->w[i], REQ_FLUSH, NULL, -1, e);
        for (int i = 0; i < pl->nw; i++)
                wait_done(pl, &pl->w[i]);
        if (is_fatal(pl))
                return -1;

        for (int i = 0; i < pl->nw; i++) {
                const ds_outbox_t *ob = &pl->w[i].ob;
                for (uint32_t k = 0; k < ob->nparts; k++) {
                        assigned_t *a = find_assigned(pl, ob->parts[k].partition);
                        if (!a)
                                continue;
                        if (a->restoring && !ob->parts[k].restoring)
                                ds_log(DS_LOG_INFO, "pipeline", "partition state rebuilt",
                                       "partition=%d offset=%" PRId64, a->partition, ob->parts[k].next_offset);
                        a->next_offset = ob->parts[k].next_offset;
                        a->eof = ob->parts[k].eof;
                        a->restoring = ob->parts[k].restoring;
                }
        }

        /* Messages of this cycle (dead letters produced since the last
         * barrier, and the rows below) are tagged with the previous epoch. */
        pl->slot = (e - 1) % EPOCH_SLOTS;
        pl->publish_now = ds_now_ms();
        ds_publish_state_t st;
        ds_publish_state(pl->obs, pl->nw, &st);
        ds_sink_t sink = {sink_row, sink_top, pl};
        ds_publish_result_t res;
        if (ds_publish_cycle(pl->merge, pl->obs, pl->nw, !st.restoring, st.wm_min, &sink, &res)) {
                ds_log(DS_LOG_ERROR, "publish", "cannot publish (out of memory or producer failure); stopping "
                                                "without commit", "%s", "");
                set_fatal(pl);
                return -1;
        }
        pl->published_rows += res.rows;
        pl->published_tops += res.tops;
        pl->replayed_closed += res.ignored;

        while (atomic_load_explicit(&pl->outstanding[pl->slot], memory_order_relaxed) > 0)
                rd_kafka_poll(pl->producer, 5);
        if (atomic_load_explicit(&pl->delivery_failed, memory_order_relaxed)) {
                ds_log(DS_LOG_ERROR, "publish", "messages were not delivered; stopping without commit",
                       "failed=%" PRIu64, atomic_load(&pl->delivery_failed));
                set_fatal(pl);
                return -1;
        }

        rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(pl->nas ? pl->nas : 1);
        for (int i = 0; i < pl->nas; i++) {
                assigned_t *a = &pl->as[i];
                if (!a->restoring && a->next_offset > a->committed)
                        rd_kafka_topic_partition_list_add(offs, pl->cfg->input_topic, a->partition)->offset =
                            a->next_offset;
        }
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
        pl->cycles++;
        pl->last_cycle_ms = ds_mono_ms() - t0;
        DS_DEBUG("pipeline", "cycle done", "rows=%u tops=%u published=%d duration_ms=%" PRId64, res.rows, res.tops,
                 res.published, pl->last_cycle_ms);
        return 0;
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
        for (int i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_t *tp = &parts->elems[i];
                if (strcmp(tp->topic, topic))
                        continue;
                int64_t lo = 0, hi = 0;
                rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, topic, tp->partition, &lo, &hi, 10000);
                if (err) {
                        ds_log(DS_LOG_ERROR, "pipeline", "cannot read the partition's watermarks",
                               "topic=%s partition=%d error=\"%s\"", topic, tp->partition, rd_kafka_err2str(err));
                        set_fatal(pl);
                        return;
                }
                if (lo > 0) {
                        ds_log(DS_LOG_ERROR, "pipeline",
                               "the broker has deleted the head of this partition: its totals cannot be rebuilt "
                               "(the embedded broker keeps 5 MiB per partition: use more partitions)",
                               "topic=%s partition=%d log_start_offset=%" PRId64, topic, tp->partition, lo);
                        set_fatal(pl);
                        return;
                }
                ds_part_t *part = ds_part_new(&pl->part_cfg, tp->partition, hi);
                if (!part || pl->nas == pl->capas) {
                        int cap = pl->capas ? pl->capas * 2 : 64;
                        assigned_t *na = part ? realloc(pl->as, (size_t)cap * sizeof(*na)) : NULL;
                        if (!na) {
                                ds_part_destroy(part);
                                ds_log(DS_LOG_ERROR, "pipeline", "out of memory assigning a partition", "%s", "");
                                set_fatal(pl);
                                return;
                        }
                        pl->as = na;
                        pl->capas = cap;
                }
                int wi = least_loaded_worker(pl);
                worker_t *w = &pl->w[wi];
                post(w, REQ_ADD, part, tp->partition, 0);
                wait_done(pl, w);
                w->owned++;
                rd_kafka_queue_t *pq = rd_kafka_queue_get_partition(rk, topic, tp->partition);
                rd_kafka_queue_forward(pq, w->q);
                rd_kafka_queue_destroy(pq);
                tp->offset = RD_KAFKA_OFFSET_BEGINNING; /* state is rebuilt by replay */
                pl->as[pl->nas++] = (assigned_t){tp->partition, wi, part, 0, -1, hi == 0, hi > 0};
                ds_log(DS_LOG_INFO, "pipeline", "partition assigned",
                       "topic=%s partition=%d worker=%d rebuild_to_offset=%" PRId64, topic, tp->partition, wi, hi);
        }
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
                assign_partitions(pl, rk, parts);
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
        } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
                /* publish and commit what was processed before letting go */
                if (!is_fatal(pl))
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
        int restoring = 0;
        for (int i = 0; i < pl->nas; i++) {
                int64_t lo, hi;
                if (!rd_kafka_get_watermark_offsets(pl->consumer, pl->cfg->input_topic, pl->as[i].partition, &lo,
                                                    &hi) &&
                    hi > pl->as[i].next_offset)
                        lag += hi - pl->as[i].next_offset;
                restoring += pl->as[i].restoring;
        }
        double rate = elapsed_ms > 0 ? (double)(s.consumed - prev->consumed) * 1000.0 / (double)elapsed_ms : 0;
        ds_log(DS_LOG_INFO, "pipeline", "progress",
               "consumed=%" PRIu64 " applied=%" PRIu64 " dead_lettered=%" PRIu64 " rate_per_s=%.0f partitions=%d "
               "rebuilding=%d lag=%" PRId64 " rows_published=%" PRIu64 " cycle_ms=%" PRId64,
               s.consumed, s.applied, s.dead_lettered, rate, pl->nas, restoring, lag, pl->published_rows,
               pl->last_cycle_ms);
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
               "consumed=%" PRIu64 " applied=%" PRIu64 " dead_lettered=%" PRIu64 " rows_published=%" PRIu64
               " top_lists_published=%" PRIu64 " cycles=%" PRIu64 " replayed_closed_rows_ignored=%" PRIu64 "%s%s%s",
               s.consumed, s.applied, s.dead_lettered, pl->published_rows, pl->published_tops, pl->cycles,
               pl->replayed_closed, reasons, outcomes, late);
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

int ds_pipeline_run(const ds_config_t *cfg) {
        char err[1024];
        int rc = 0;
        pipeline_t *pl = calloc(1, sizeof(*pl));
        if (!pl) {
                fprintf(stderr, "declstream: out of memory\n");
                return 1;
        }
        pl->cfg = cfg;
        ds_part_cfg_default(&pl->part_cfg);
        pl->part_cfg.agg.win.retention_ms[DS_WIN_MINUTE] = cfg->minute_retention_ms;
        pl->part_cfg.agg.win.retention_ms[DS_WIN_HOUR] = cfg->hour_retention_ms;
        pl->part_cfg.agg.win.retention_ms[DS_WIN_DAY] = cfg->day_retention_ms;
        pl->part_cfg.agg.top_retention_ms = cfg->top_retention_ms;
        pl->part_cfg.ledger_retention_ms = cfg->ledger_retention_ms;
        pl->part_cfg.idle_ms = cfg->idle_ms;
        ds_domain_init();

        if (!ds_config_kafka_get(cfg, "bootstrap.servers") && !ds_config_kafka_get(cfg, "metadata.broker.list")) {
                ds_log(DS_LOG_ERROR, "config", "no brokers given: use -b SERVERS or kafka.bootstrap.servers", "%s",
                       "");
                free(pl);
                return 2;
        }
        pl->schemas = ds_schemas_open(cfg, err, sizeof(err));
        if (!pl->schemas) {
                ds_log(DS_LOG_ERROR, "config", "cannot load schemas", "error=\"%s\"", err);
                free(pl);
                return 2;
        }

        static const char *const producer_defaults[] = {
            "linger.ms", "5",  "compression.codec", "lz4", "partitioner", "murmur2_random",
            "enable.idempotence", "true", "acks", "all", NULL};
        rd_kafka_conf_t *pconf =
            ds_kafka_conf(DS_KAFKA_PRODUCER, producer_defaults, cfg->kafka, cfg->nkafka, err, sizeof(err));
        if (!pconf) {
                ds_log(DS_LOG_ERROR, "config", "bad Kafka producer configuration", "error=\"%s\"", err);
                rc = 2;
                goto out;
        }
        rd_kafka_conf_set_dr_msg_cb(pconf, dr_cb);
        rd_kafka_conf_set_opaque(pconf, pl);
        if (!(pl->producer = ds_kafka_new(DS_KAFKA_PRODUCER, pconf, err, sizeof(err)))) {
                ds_log(DS_LOG_ERROR, "pipeline", "cannot start", "error=\"%s\"", err);
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
        rd_kafka_conf_set_opaque(cconf, pl);
        if (!(pl->consumer = ds_kafka_new(DS_KAFKA_CONSUMER, cconf, err, sizeof(err)))) {
                ds_log(DS_LOG_ERROR, "pipeline", "cannot start", "error=\"%s\"", err);
                rc = 2;
                goto out;
        }
        rd_kafka_poll_set_consumer(pl->consumer);

        pl->merge = ds_merge_new(&pl->part_cfg.agg.win, pl->part_cfg.agg.top_retention_ms);
        pl->nw = cfg->threads ? cfg->threads : nprocs();
        pl->w = calloc((size_t)pl->nw, sizeof(worker_t));
        pl->obs = calloc((size_t)pl->nw, sizeof(*pl->obs));
        if (!pl->merge || !pl->w || !pl->obs) {
                ds_log(DS_LOG_ERROR, "pipeline", "out of memory", "%s", "");
                rc = 1;
                goto out;
        }
        for (int i = 0; i < pl->nw; i++) {
                worker_t *w = &pl->w[i];
                w->id = i;
                w->pl = pl;
                pl->obs[i] = &w->ob;
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
               "version=%s input=%s output=%s dlq=%s group=%s workers=%d commit_interval_ms=%" PRId64
               " heading_digits=%d decoder=%s",
               DS_VERSION, cfg->input_topic, cfg->output_topic, cfg->dlq_topic,
               ds_config_kafka_get(cfg, "group.id"), pl->nw, cfg->commit_interval_ms, cfg->heading_digits,
               cfg->decoder == DS_DECODER_AVRO_C ? "avro-c" : "specialized");

        int64_t next_cycle = ds_mono_ms() + cfg->commit_interval_ms;
        int64_t next_stats = ds_mono_ms() + cfg->stats_interval_ms, last_stats = ds_mono_ms();
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
                        next_cycle = ds_mono_ms() + cfg->commit_interval_ms;
                        if (cfg->exit_on_eof && pl->nas > 0) {
                                int all = 1;
                                for (int i = 0; i < pl->nas && all; i++)
                                        all = pl->as[i].eof && !pl->as[i].restoring;
                                if (all) {
                                        ds_log(DS_LOG_INFO, "pipeline", "every assigned partition is read to its end",
                                               "partitions=%d", pl->nas);
                                        finished = 1;
                                        break;
                                }
                        }
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
        int wd_started = !pthread_create(&wdt, NULL, watchdog_main, &wd);
        if (ds_stop_requested())
                ds_log(DS_LOG_INFO, "pipeline", "stopping: publishing and committing", "%s", "");
        if (!is_fatal(pl) && !finished)
                cycle(pl);
        rd_kafka_consumer_close(pl->consumer); /* revokes: one more cycle, then leaves the group */
        if (is_fatal(pl))
                rc = 1;
        log_summary(pl);
        if (wd_started) {
                pthread_mutex_lock(&wd.mtx);
                wd.done = 1;
                pthread_cond_signal(&wd.cv);
                pthread_mutex_unlock(&wd.mtx);
                pthread_join(wdt, NULL);
        }

out:
        if (pl->w) {
                for (int i = 0; i < pl->nw; i++) {
                        worker_t *w = &pl->w[i];
                        if (w->started) {
                                post(w, REQ_STOP, NULL, -1, 0);
                                pthread_join(w->thread, NULL);
                        }
                        for (int32_t p = 0; p < w->nparts; p++)
                                if (w->parts[p])
                                        ds_part_destroy(w->parts[p]);
                        free(w->parts);
                        ds_outbox_free(&w->ob);
                        for (int k = 0; k < w->navro; k++)
                                ds_avro_decoder_destroy(w->avro[k]);
                        if (w->q)
                                rd_kafka_queue_destroy(w->q);
                }
                free(pl->w);
        }
        if (pl->consumer)
                rd_kafka_destroy(pl->consumer);
        if (pl->producer) {
                rd_kafka_flush(pl->producer, 10000);
                rd_kafka_destroy(pl->producer);
        }
        ds_merge_destroy(pl->merge);
        free(pl->obs);
        free(pl->as);
        ds_buf_free(&pl->buf);
        ds_schemas_destroy(pl->schemas);
        free(pl);
        if (rc == 0)
                ds_log(DS_LOG_INFO, "pipeline", "stopped", "%s", "");
        return rc;
}
