/*
 * ds_merge_role.c - the merge stage (see ds_merge_role.h).
 */
#include "ds_merge_role.h"
#include "ds_agg.h"
#include "ds_common.h"
#include "ds_domain.h"
#include "ds_encode.h"
#include "ds_hll.h"
#include "ds_kafka.h"
#include "ds_log.h"
#include "ds_kstats.h"
#include "ds_merge.h"
#include "ds_mstate.h"
#include "ds_partial.h"
#include "ds_publish.h"
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

typedef struct istatus {
        int32_t epoch;
        int64_t offset;
        int64_t watermark_ms;
        int idle;
        int seen;
} istatus_t;

typedef struct mpart {
        int32_t partition;  /* of the partial topic */
        ds_merge_t *merge;
        int64_t restore_end; /* its end when assigned: nothing is published before reaching it */
        int64_t next_offset;
        istatus_t *status; /* per input partition */
        int retention_warned;
        int64_t snap_offset; /* the offset its last snapshot (written or loaded) covers; -1: none */
        int64_t snap_ms;     /* when it was written (monotonic), 0: loaded or none */
        int skipped_unknown; /* it skipped shares or statuses of input partitions unknown at start-up */
} mpart_t;

/* Messages polled before they are merged, in order; and the rows of a batch
 * prefetched together (consume_rows()). */
#define MERGE_BATCH 256

/* What ds_merge_role_request_finish() asked for. */
typedef enum { FINISH_NO = 0, FINISH_LEAVING, FINISH_AFTER_GROUP } finish_t;

struct ds_merge_role {
        const ds_config_t *cfg;
        ds_part_cfg_t pcfg;
        rd_kafka_t *consumer, *producer;
        int32_t inputs; /* input partitions: every one must report before windows close */
        mpart_t **parts;
        int32_t nparts;
        ds_dtag_t tag; /* shared delivery tag of published messages */
        int64_t outstanding;
        uint64_t failed;
        ds_buf_t buf;
        int64_t now;
        _Atomic int stop;
        _Atomic int finish; /* finish_t */
        int finishing;
        int64_t *finish_at; /* per partial partition: end to reach before finishing */
        int fatal;
        int txn; /* exactly.once.mode=transactions */
        ds_merge_role_stats_t st; /* the merge thread's own */
        int assigned_once;
        int rebuilding;            /* an assignment's partitions not yet read to their ends */
        int64_t rebuild_from_ms;   /* ... since (monotonic) */
        uint64_t rebuild_rows0;    /* ... and partial rows read before it */
        int64_t unknown_logged_ms; /* known_input(): when it last logged (monotonic) */
        uint64_t unknown_skipped;  /* ... what it skipped since (logged at the stop if not yet) */
        int32_t unknown_last;      /* ... and the last such partition */
        /* messages polled and not yet merged (consume_batch()), decoded */
        rd_kafka_message_t *batch[MERGE_BATCH];
        ds_partial_t dec[MERGE_BATCH]; /* rows of a batch being merged (consume_rows()) */
        uint32_t hashes[MERGE_BATCH][2];
        int nbatch;
        /* snapshots (merge.snapshot.interval.ms > 0; ds_mstate.h) */
        ds_mstate_t *ms;          /* their reader */
        ds_dtag_t snap_tag;       /* the delivery tag of their records (dr_cb counts them apart) */
        int64_t snap_outstanding; /* their records not yet acknowledged */
        uint64_t snap_failed;     /* ... that failed */
        int64_t next_snap;        /* when the next ones are due (monotonic) */
        uint64_t snap_seq;        /* with the process's start, the next snapshot's id */
        pthread_mutex_t pub_mtx; /* guards pub: ds_merge_role_stats() may run on any thread */
        ds_merge_role_stats_t pub;
        int64_t next_pub;
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
        (void)rk;
        ds_merge_role_t *mr = opaque;
        ds_dtag_t *t = m->_private;
        if (t == &mr->snap_tag) { /* a snapshot's record: it fails the snapshot, not the totals */
                mr->snap_outstanding--;
                if (m->err) {
                        mr->snap_failed++;
                        ds_log(DS_LOG_WARN, "merge", "merge snapshot record not delivered", "partition=%d error=\"%s\"",
                               m->partition, rd_kafka_err2str(m->err));
                }
                return;
        }
        if (t) {
                t->done = 1;
                t->err = m->err;
                t->offset = m->offset;
        }
        mr->outstanding--;
        if (m->err) {
                mr->failed++;
                ds_log(DS_LOG_ERROR, "merge", "delivery failed", "topic=%s error=\"%s\"", rd_kafka_topic_name(m->rkt),
                       rd_kafka_err2str(m->err));
        }
}

static mpart_t *mpart_get(ds_merge_role_t *mr, int32_t p) {
        return p >= 0 && p < mr->nparts ? mr->parts[p] : NULL;
}

static void mpart_free(mpart_t *mp) {
        if (!mp)
                return;
        ds_merge_destroy(mp->merge);
        free(mp->status);
        free(mp);
}

static mpart_t *mpart_new(ds_merge_role_t *mr, int32_t partition) {
        mpart_t *mp = calloc(1, sizeof(*mp));
        if (mp) {
                mp->merge = ds_merge_new(&mr->pcfg.agg.win, mr->pcfg.agg.top_retention_ms);
                mp->status = calloc((size_t)mr->inputs, sizeof(istatus_t));
        }
        if (!mp || !mp->merge || !mp->status) {
                mpart_free(mp);
                return NULL;
        }
        mp->partition = partition;
        mp->snap_offset = -1;
        return mp;
}

/* ---- snapshots (ds_mstate.h) --------------------------------------------- */

#define SNAP_VERSION 1
/* Records of at most this much of a snapshot: under the brokers' and the
 * producer's default message size (1 MB). */
#define SNAP_CHUNK (512 * 1024)

/* What a snapshot's rows mean besides the partial topic: their keys' HS
 * digits and gate numbers. A snapshot written under others is not used. */
static uint64_t snap_fingerprint(const ds_merge_role_t *mr) {
        uint64_t v[2] = {(uint64_t)mr->cfg->heading_digits, ds_gates_fingerprint(ds_gate_count())};
        return ds_hash_bytes(v, sizeof(v));
}

/* A partial partition's merge after reading it up to next_offset: the input
 * partitions' statuses, then ds_merge_save(). */
static void snap_save(const ds_merge_role_t *mr, mpart_t *mp, ds_buf_t *b) {
        uint8_t v = SNAP_VERSION;
        ds_buf_put(b, &v, 1);
        ds_buf_put_u64(b, snap_fingerprint(mr));
        ds_avro_put_long(b, mp->next_offset);
        ds_avro_put_long(b, mp->skipped_unknown);
        ds_avro_put_long(b, mr->inputs);
        for (int32_t i = 0; i < mr->inputs; i++) {
                const istatus_t *st = &mp->status[i];
                ds_avro_put_long(b, st->seen);
                ds_avro_put_long(b, st->epoch);
                ds_avro_put_long(b, st->offset);
                ds_avro_put_long(b, st->watermark_ms);
                ds_avro_put_long(b, st->idle);
        }
        ds_merge_save(mp->merge, b);
}

/* snap_save()'s bytes into mp, new: 0, or -1 with why. Input partitions
 * added since it was written start unseen, as in a rebuild. */
static int snap_load(const ds_merge_role_t *mr, mpart_t *mp, const uint8_t *p, size_t len, int64_t covered,
                     const char **why) {
        ds_rd_t r = {p, p + len, 0};
        *why = "malformed";
        if (len < 1 || *r.p++ != SNAP_VERSION) {
                *why = "written by another version";
                return -1;
        }
        if (ds_rd_u64(&r) != snap_fingerprint(mr)) {
                *why = "written under another heading.digits or gate list";
                return -1;
        }
        int64_t off = ds_rd_long(&r), skipped = ds_rd_long(&r), n = ds_rd_long(&r);
        if (r.bad || off != covered || n < 0)
                return -1;
        if (n > mr->inputs) {
                *why = "written for more input partitions than the input topic has";
                return -1;
        }
        if (n < mr->inputs && skipped) {
                *why = "its merge skipped shares of input partitions added since (a rebuild takes them in)";
                return -1;
        }
        for (int32_t i = 0; i < (int32_t)n; i++) {
                istatus_t *st = &mp->status[i];
                st->seen = ds_rd_long(&r) != 0;
                st->epoch = (int32_t)ds_rd_long(&r);
                st->offset = ds_rd_long(&r);
                st->watermark_ms = ds_rd_long(&r);
                st->idle = ds_rd_long(&r) != 0;
        }
        return r.bad || ds_merge_load(mp->merge, &r) ? -1 : 0;
}

/* Loads the latest merge snapshot of *mpp's partition, if there is one it
 * can use: 1 with *from its offset, 0 (none: *mpp as new), -1 when the
 * snapshots cannot be read. A snapshot that cannot be used is logged and
 * the merge rebuilt from the partition's start. */
static int snap_restore(ds_merge_role_t *mr, mpart_t **mpp, int64_t lo, int64_t hi, int64_t *from) {
        mpart_t *mp = *mpp;
        uint8_t *p = NULL;
        size_t len = 0;
        int64_t covered = 0, t0 = ds_mono_ms();
        char err[512];
        /* the latest one the partial partition still holds the rest of */
        int rc = ds_mstate_latest(mr->ms, mp->partition, lo, hi, &p, &len, &covered, err, sizeof(err));
        if (rc < 0) {
                ds_log(DS_LOG_ERROR, "merge", "cannot read the merge snapshots", "topic=%s partition=%d error=\"%s\"",
                       mr->cfg->merge_state_topic, mp->partition, err);
                return -1;
        }
        if (!rc)
                return 0;
        const char *why = NULL;
        if (!snap_load(mr, mp, p, len, covered, &why))
                why = NULL;
        free(p);
        if (why) {
                ds_log(DS_LOG_WARN, "merge", "merge snapshot not used; rebuilding from the partial partition's start",
                       "partition=%d snapshot_offset=%" PRId64 " reason=\"%s\"", mp->partition, covered, why);
                mpart_t *fresh = mpart_new(mr, mp->partition);
                if (!fresh)
                        return -1;
                mpart_free(mp);
                *mpp = fresh;
                return 0;
        }
        ds_window_cfg_t w;
        int64_t top;
        ds_merge_retentions(mp->merge, &w, &top);
        const ds_window_cfg_t *cw = &mr->pcfg.agg.win;
        if (cw->retention_ms[DS_WIN_MINUTE] > w.retention_ms[DS_WIN_MINUTE] ||
            cw->retention_ms[DS_WIN_HOUR] > w.retention_ms[DS_WIN_HOUR] ||
            cw->retention_ms[DS_WIN_DAY] > w.retention_ms[DS_WIN_DAY] || mr->pcfg.agg.top_retention_ms > top) {
                mp->retention_warned = 1;
                ds_log(DS_LOG_WARN, "merge",
                       "this merge keeps windows open longer than the one that wrote its snapshot had closed them "
                       "with: the snapshot's retentions stay (a closed window does not reopen)",
                       "partition=%d minute_ms=%" PRId64 " hour_ms=%" PRId64 " day_ms=%" PRId64 " top_ms=%" PRId64,
                       mp->partition, w.retention_ms[DS_WIN_MINUTE], w.retention_ms[DS_WIN_HOUR],
                       w.retention_ms[DS_WIN_DAY], top);
        }
        *from = covered;
        mp->snap_offset = covered;
        ds_log(DS_LOG_INFO, "merge", "partial partition restored from a merge snapshot",
               "partition=%d snapshot_offset=%" PRId64 " bytes=%zu shares=%" PRIu32 " rows=%" PRIu32
               " restore_ms=%" PRId64,
               mp->partition, covered, len, ds_merge_shares(mp->merge), ds_rows_count(ds_merge_global(mp->merge)),
               ds_mono_ms() - t0);
        return 1;
}

static void assign(ds_merge_role_t *mr, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts) {
        if (parts->cnt <= 0)
                return;
        /* every partition's watermarks in one request per leader (the
         * assignment holds only the partial topic's partitions) */
        int32_t *ids = malloc((size_t)parts->cnt * sizeof(*ids));
        int64_t *los = malloc((size_t)parts->cnt * sizeof(*los)), *his = malloc((size_t)parts->cnt * sizeof(*his));
        if (!ids || !los || !his) {
                free(ids), free(los), free(his);
                mr->fatal = 1;
                return;
        }
        for (int i = 0; i < parts->cnt; i++)
                ids[i] = parts->elems[i].partition;
        int32_t failed = -1;
        rd_kafka_resp_err_t err =
            ds_kafka_watermarks_many(rk, mr->cfg->partial_topic, ids, parts->cnt, los, his, 10000, &failed);
        free(ids);
        if (err) {
                ds_log(DS_LOG_ERROR, "merge", "cannot read the partial partition's watermarks",
                       "topic=%s partition=%d error=\"%s\"", mr->cfg->partial_topic, failed, rd_kafka_err2str(err));
                free(los), free(his);
                mr->fatal = 1;
                return;
        }
        if (mr->ms) { /* the merge snapshots' ends too, at once */
                char why[512];
                int32_t *pids = malloc((size_t)parts->cnt * sizeof(*pids));
                for (int i = 0; pids && i < parts->cnt; i++)
                        pids[i] = parts->elems[i].partition;
                if (!pids || ds_mstate_prepare(mr->ms, pids, parts->cnt, why, sizeof(why)))
                        ds_log(DS_LOG_WARN, "merge", "cannot read the merge snapshots' ends ahead; each partition asks",
                               "topic=%s error=\"%s\"", mr->cfg->merge_state_topic, pids ? why : "out of memory");
                free(pids);
        }
        for (int i = 0; i < parts->cnt && !mr->fatal; i++) {
                rd_kafka_topic_partition_t *tp = &parts->elems[i];
                int64_t lo = los[i], hi = his[i];
                if (tp->partition >= mr->nparts) {
                        int32_t n = tp->partition + 1;
                        /* each array kept as soon as it is grown: nparts
                         * only grows once both are */
                        mpart_t **np = realloc(mr->parts, (size_t)n * sizeof(*np));
                        if (np)
                                mr->parts = np;
                        int64_t *nf = np ? realloc(mr->finish_at, (size_t)n * sizeof(*nf)) : NULL;
                        if (nf)
                                mr->finish_at = nf;
                        if (!np || !nf) {
                                mr->fatal = 1;
                                break;
                        }
                        memset(np + mr->nparts, 0, (size_t)(n - mr->nparts) * sizeof(*np));
                        mr->nparts = n;
                }
                mpart_t *mp = mpart_new(mr, tp->partition);
                if (!mp) {
                        mr->fatal = 1;
                        break;
                }
                /* where to read from: the latest merge snapshot's offset, or
                 * the partition's start */
                int64_t from = 0;
                if (mr->ms && snap_restore(mr, &mp, lo, hi, &from) < 0) {
                        mpart_free(mp);
                        mr->fatal = 1;
                        break;
                }
                if (from < lo) { /* (a snapshot is only taken if the partition holds its offset) */
                        ds_log(DS_LOG_ERROR, "merge",
                               "the partial topic lost its head and no merge snapshot covers it: the merge cannot be "
                               "rebuilt (keep it longer than a merge may be down, or whole without snapshots; the "
                               "embedded broker keeps 5 MiB per partition)",
                               "topic=%s partition=%d log_start_offset=%" PRId64, tp->topic, tp->partition, lo);
                        mpart_free(mp);
                        mr->fatal = 1;
                        break;
                }
                mp->restore_end = hi;
                mp->next_offset = from;
                /* the end a finishing merge must reach (recomputed when the
                 * finish is requested; a partition assigned after that request
                 * must reach its end as of now, not an unset slot) */
                mr->finish_at[tp->partition] = hi;
                mpart_free(mr->parts[tp->partition]);
                mr->parts[tp->partition] = mp;
                /* the merge is rebuilt from the snapshot and the partition's history after it */
                tp->offset = from ? from : RD_KAFKA_OFFSET_BEGINNING;
                ds_log(DS_LOG_INFO, "merge", "partial partition assigned",
                       "partition=%d rebuild_from_offset=%" PRId64 " rebuild_to_offset=%" PRId64, tp->partition, from,
                       hi);
        }
        free(los);
        free(his);
}

static int publish(ds_merge_role_t *mr);
static int any_dirty(const ds_merge_role_t *mr);
static void consume_batch(ds_merge_role_t *mr);

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                         void *opaque) {
        ds_merge_role_t *mr = opaque;
        consume_batch(mr); /* what was polled before the rebalance, under the old assignment */
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                assign(mr, rk, parts);
                rd_kafka_assign(rk, parts);
                mr->assigned_once = 1;
                mr->rebuilding = 1;
                mr->rebuild_from_ms = ds_mono_ms();
                mr->rebuild_rows0 = mr->st.partial_rows;
        } else {
                if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS && !mr->fatal)
                        publish(mr); /* hand over what is merged (not while a partition still rebuilds: the new owner republishes) */
                rd_kafka_assign(rk, NULL);
                for (int i = 0; i < parts->cnt; i++) {
                        int32_t p = parts->elems[i].partition;
                        if (p < mr->nparts) {
                                mpart_free(mr->parts[p]);
                                mr->parts[p] = NULL;
                        }
                }
        }
}

/* The snapshots' reader, and their topic checked: one partition at least
 * for each partial partition. */
static int snap_start(ds_merge_role_t *mr, char *errstr, size_t sz) {
        const ds_config_t *cfg = mr->cfg;
        /* (transactions: a snapshot counts once its transaction committed) */
        rd_kafka_conf_t *rconf = ds_kafka_reader_conf(cfg, errstr, sz);
        if (!rconf)
                return -1;
        if (!(mr->ms = ds_mstate_new(cfg->merge_state_topic, rconf, errstr, sz)))
                return -1;
        int ns = ds_kafka_topic_ready(mr->consumer, mr->producer, cfg->merge_state_topic, "merge.state.topic", errstr,
                                      sz);
        if (ns <= 0)
                return -1;
        int np = ds_kafka_partition_count(mr->consumer, cfg->partial_topic, 10000, errstr, sz);
        if (np <= 0)
                return -1;
        if (ns < np) {
                ds_err(errstr, sz,
                       "merge.state.topic: %s has %d partitions, fewer than partial.topic %s (%d); it needs one per "
                       "partial partition (or merge.snapshot.interval.ms=0: no snapshots)",
                       cfg->merge_state_topic, ns, cfg->partial_topic, np);
                return -1;
        }
        mr->snap_tag.slot = -1;
        mr->next_snap = ds_mono_ms() + cfg->merge_snapshot_interval_ms;
        /* ids: this process's start and its count of snapshots, so that
         * another instance's records interleaved with ours are told apart */
        mr->snap_seq = (uint64_t)ds_now_ms() << 20 ^ (uint64_t)getpid() << 44;
        return 0;
}

ds_merge_role_t *ds_merge_role_new(const ds_config_t *cfg, const ds_part_cfg_t *pcfg, char *errstr, size_t sz) {
        ds_merge_role_t *mr = calloc(1, sizeof(*mr));
        if (!mr) {
                ds_err(errstr, sz, "out of memory");
                return NULL;
        }
        mr->cfg = cfg;
        mr->unknown_logged_ms = INT64_MIN / 2; /* the first is logged */
        mr->pcfg = *pcfg;
        mr->tag.slot = -1;
        pthread_mutex_init(&mr->pub_mtx, NULL);
        static const char *const producer_defaults[] = {"linger.ms",   "5",    "compression.codec", "lz4",
                                                        "partitioner", "murmur2_random", "enable.idempotence", "true",
                                                        "acks",        "all",  NULL};
        rd_kafka_conf_t *pconf =
            ds_kafka_conf(DS_KAFKA_PRODUCER, producer_defaults, cfg->kafka, cfg->nkafka, errstr, sz);
        if (!pconf)
                goto fail;
        rd_kafka_conf_set_dr_msg_cb(pconf, dr_cb);
        ds_kstats_attach(pconf, cfg);
        rd_kafka_conf_set_opaque(pconf, mr);
        mr->txn = cfg->eos_mode == DS_EOS_TRANSACTIONS;
        if (mr->txn) {
                char tid[512], e2[256];
                ds_kafka_txn_id(cfg, "merge", tid, sizeof(tid));
                if (rd_kafka_conf_set(pconf, "transactional.id", tid, e2, sizeof(e2)) != RD_KAFKA_CONF_OK) {
                        rd_kafka_conf_destroy(pconf);
                        ds_err(errstr, sz, "transactional.id: %s", e2);
                        goto fail;
                }
        }
        if (!(mr->producer = ds_kafka_new(DS_KAFKA_PRODUCER, pconf, errstr, sz)))
                goto fail;
        if (mr->txn) {
                rd_kafka_error_t *e = rd_kafka_init_transactions(mr->producer, 60000);
                if (!e)
                        e = rd_kafka_begin_transaction(mr->producer);
                if (e) {
                        ds_err(errstr, sz, "transactions: %s", rd_kafka_error_string(e));
                        rd_kafka_error_destroy(e);
                        goto fail;
                }
        }
        char group[512];
        const char *g = ds_config_kafka_get(cfg, "group.id");
        snprintf(group, sizeof(group), "%s.merge", g ? g : "declstream");
        /* Prefetch limits: librdkafka 2.0.2's fetcher backs off 1 s once the
         * consumer's queue passes queued.min.messages or .kbytes (FACTS.md).
         * With its defaults (100,000) a merge behind its input - the tail of
         * a catch-up - drained the queue in ~0.3 s and idled the rest of every
         * second, when each share was a message of its own. Batches of up to
         * 128 KiB reach the 128 MiB cap first (~1,000 messages, ~2 M rows),
         * which outlasts the back-off as well. */
        const char *consumer_defaults[] = {"enable.auto.commit", "false", "auto.offset.reset", "earliest",
                                           "enable.partition.eof", "true", "fetch.wait.max.ms", "50",
                                           "queued.min.messages", "500000", "queued.max.messages.kbytes", "131072",
                                           /* transactions: aborted partial rows are not shares */
                                           mr->txn ? "isolation.level" : NULL, "read_committed", NULL};
        rd_kafka_conf_t *cconf =
            ds_kafka_conf(DS_KAFKA_CONSUMER, consumer_defaults, cfg->kafka, cfg->nkafka, errstr, sz);
        if (!cconf)
                goto fail;
        char err[512];
        if (rd_kafka_conf_set(cconf, "group.id", group, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
                rd_kafka_conf_destroy(cconf);
                ds_err(errstr, sz, "group.id: %s", err);
                goto fail;
        }
        rd_kafka_conf_set_rebalance_cb(cconf, rebalance_cb);
        ds_kstats_attach(cconf, cfg);
        rd_kafka_conf_set_opaque(cconf, mr);
        if (!(mr->consumer = ds_kafka_new(DS_KAFKA_CONSUMER, cconf, errstr, sz)))
                goto fail;
        rd_kafka_poll_set_consumer(mr->consumer);
        mr->inputs = ds_kafka_partition_count(mr->consumer, cfg->input_topic, 10000, errstr, sz);
        if (mr->inputs <= 0)
                goto fail;
        /* the topics it publishes to, asked without creating them */
        if (ds_kafka_topic_ready(mr->consumer, mr->producer, cfg->output_topic, "output.topic", errstr, sz) <= 0 ||
            ds_kafka_topic_ready(mr->consumer, mr->producer, cfg->top_topic, "top.topic", errstr, sz) <= 0)
                goto fail;
        if (cfg->merge_snapshot_interval_ms > 0 && snap_start(mr, errstr, sz))
                goto fail;
        rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, cfg->partial_topic, RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t serr = rd_kafka_subscribe(mr->consumer, sub);
        rd_kafka_topic_partition_list_destroy(sub);
        if (serr) {
                ds_err(errstr, sz, "cannot subscribe to %s: %s", cfg->partial_topic, rd_kafka_err2str(serr));
                goto fail;
        }
        return mr;
fail:
        ds_merge_role_destroy(mr);
        return NULL;
}

void ds_merge_role_destroy(ds_merge_role_t *mr) {
        if (!mr)
                return;
        if (mr->consumer) {
                rd_kafka_consumer_close(mr->consumer);
                rd_kafka_destroy(mr->consumer);
        }
        if (mr->producer) {
                rd_kafka_flush(mr->producer, 10000);
                rd_kafka_destroy(mr->producer);
        }
        ds_mstate_destroy(mr->ms);
        for (int32_t i = 0; i < mr->nparts; i++)
                mpart_free(mr->parts[i]);
        free(mr->parts);
        free(mr->finish_at);
        ds_buf_free(&mr->buf);
        pthread_mutex_destroy(&mr->pub_mtx);
        free(mr);
}

void ds_merge_role_request_stop(ds_merge_role_t *mr) {
        atomic_store_explicit(&mr->stop, 1, memory_order_relaxed);
}

void ds_merge_role_request_finish(ds_merge_role_t *mr, int wait_for_group) {
        /* relaxed: a flag the merge thread polls; nothing else is published with it */
        atomic_store_explicit(&mr->finish, wait_for_group ? FINISH_AFTER_GROUP : FINISH_LEAVING, memory_order_relaxed);
}

void ds_merge_role_stats(ds_merge_role_t *mr, ds_merge_role_stats_t *st) {
        pthread_mutex_lock(&mr->pub_mtx);
        *st = mr->pub;
        pthread_mutex_unlock(&mr->pub_mtx);
}

static int caught_up(const ds_merge_role_t *mr);

/* The merge thread: copies its statistics where ds_merge_role_stats() reads. */
static void publish_stats(ds_merge_role_t *mr) {
        ds_merge_role_stats_t st = mr->st;
        st.partitions = 0;
        st.rebuild_lag = 0;
        for (int32_t i = 0; i < mr->nparts; i++)
                if (mr->parts[i]) {
                        st.partitions++;
                        if (mr->parts[i]->next_offset < mr->parts[i]->restore_end)
                                st.rebuild_lag += mr->parts[i]->restore_end - mr->parts[i]->next_offset;
                }
        st.assigned_once = mr->assigned_once;
        st.ready = mr->assigned_once && !mr->fatal && caught_up(mr);
        pthread_mutex_lock(&mr->pub_mtx);
        mr->pub = st;
        pthread_mutex_unlock(&mr->pub_mtx);
}

/* ---- applying partial messages -------------------------------------------- */

/* Decodes a partial into pr; 0, or -1 if it is unreadable (logged). */
static int decode(ds_merge_role_t *mr, const rd_kafka_message_t *m, ds_partial_t *pr) {
        ds_dlq_reason_t r = ds_partial_decode(m->payload, m->len, mr->cfg->heading_digits, pr);
        if (r) {
                ds_log(DS_LOG_WARN, "merge", "unreadable partial row skipped",
                       "partition=%d offset=%" PRId64 " reason=%s", m->partition, m->offset, ds_dlq_code(r));
                return -1;
        }
        return 0;
}

/* Whether a row or status comes from an input partition the merge knows.
 * One that does not is counted as ignored and logged at most every
 * UNKNOWN_LOG_MS with the count since the last line (the rest at the stop):
 * every row of a partition added to the input topic after the merge started
 * is one (README, "Exactly once"), and a line each flooded the log. */
#define UNKNOWN_LOG_MS 10000
static void log_unknown(ds_merge_role_t *mr, int32_t partition) {
        ds_log(DS_LOG_WARN, "merge",
               "partial rows or statuses of input partitions unknown at start-up skipped (partitions added to the "
               "input topic? restart every merge to take them in)",
               "input_partition=%d inputs=%d skipped=%" PRIu64, partition, mr->inputs, mr->unknown_skipped);
        mr->unknown_logged_ms = ds_mono_ms();
        mr->unknown_skipped = 0;
}

static int known_input(ds_merge_role_t *mr, mpart_t *mp, const ds_partial_t *pr) {
        if (pr->partition < mr->inputs)
                return 1;
        mp->skipped_unknown = 1; /* its snapshots lack them: a merge that knows them must not load one */
        mr->st.ignored++;
        mr->unknown_skipped++;
        mr->unknown_last = pr->partition;
        if (ds_mono_ms() - mr->unknown_logged_ms >= UNKNOWN_LOG_MS)
                log_unknown(mr, pr->partition);
        return 0;
}

/* Merges one ROW of partial partition mp (read from message m). */
static void apply_row(ds_merge_role_t *mr, mpart_t *mp, const rd_kafka_message_t *m, const ds_partial_t *pr) {
        if (!known_input(mr, mp, pr))
                return;
        mr->st.partial_rows++;
        ds_distinct_t *d = NULL;
        if (pr->declarants_len && pr->vehicles_len) {
                d = calloc(1, sizeof(*d));
                if (d) {
                        d->declarants = ds_hll_deserialize(pr->declarants_sketch, pr->declarants_len);
                        d->vehicles = ds_hll_deserialize(pr->vehicles_sketch, pr->vehicles_len);
                }
                if (!d || !d->declarants || !d->vehicles) {
                        ds_distinct_free(d);
                        d = NULL;
                        ds_log(DS_LOG_WARN, "merge", "unreadable sketch in a partial row; counts skipped",
                               "partition=%d offset=%" PRId64, m->partition, m->offset);
                }
        }
        ds_merge_src_t src = {pr->partition, pr->epoch, pr->input_offset};
        int rc = ds_merge_update(mp->merge, &src, pr->key, &pr->m, d);
        ds_distinct_free(d);
        if (rc < 0) {
                ds_log(DS_LOG_ERROR, "merge", "out of memory merging", "%s", "");
                mr->fatal = 1;
        } else if (rc) {
                mr->st.ignored++;
        }
}

static int64_t wm_min(const ds_merge_role_t *mr, const mpart_t *mp);

/* After statuses are read: what every input partition's watermark has passed
 * is closed from here on in the partial partition's log (ds_merge_close()). */
static void close_at_statuses(ds_merge_role_t *mr, mpart_t *mp) {
        int64_t wm = wm_min(mr, mp);
        if (wm != INT64_MIN && wm != INT64_MAX)
                ds_merge_close(mp->merge, wm);
}

/* Takes in an input partition's STATUS (read from partial partition mp). */
static void apply_status(ds_merge_role_t *mr, mpart_t *mp, const ds_partial_t *pr) {
        if (!known_input(mr, mp, pr))
                return;
        int rc = ds_merge_epoch(mp->merge, pr->partition, pr->epoch);
        if (rc < 0) {
                ds_log(DS_LOG_ERROR, "merge", "out of memory merging", "%s", "");
                mr->fatal = 1;
                return;
        }
        if (rc) {
                mr->st.ignored++; /* a fenced owner's status */
                return;
        }
        istatus_t *s = &mp->status[pr->partition];
        if (!s->seen || pr->epoch > s->epoch || pr->input_offset >= s->offset)
                *s = (istatus_t){pr->epoch, pr->input_offset, pr->watermark_ms, pr->idle, 1};
        /* close no earlier than the processors do: a merge restarted with
         * lower retentions than the one that read this live would otherwise
         * refuse, in its rebuild, shares the live one took. Nothing closes
         * before every input partition's first status is read, so every
         * processor's retentions are in by then, in the topic's order. */
        ds_window_cfg_t w = {{0}};
        w.retention_ms[DS_WIN_MINUTE] = pr->retention_ms[DS_PARTIAL_RET_MINUTE];
        w.retention_ms[DS_WIN_HOUR] = pr->retention_ms[DS_PARTIAL_RET_HOUR];
        w.retention_ms[DS_WIN_DAY] = pr->retention_ms[DS_PARTIAL_RET_DAY];
        if (ds_merge_retention(mp->merge, &w, pr->retention_ms[DS_PARTIAL_RET_TOP]) && !mp->retention_warned) {
                mp->retention_warned = 1;
                ds_log(DS_LOG_WARN, "merge",
                       "a processor keeps windows open longer than this merge closes them (its retention grew after "
                       "windows closed here); its late shares of windows closed here are refused",
                       "partition=%d input_partition=%d minute_ms=%" PRId64 " hour_ms=%" PRId64 " day_ms=%" PRId64
                       " top_ms=%" PRId64,
                       mp->partition, pr->partition, pr->retention_ms[0], pr->retention_ms[1], pr->retention_ms[2],
                       pr->retention_ms[3]);
        }
}

/* Merges a schema 6 message (a STATUS, or one ROW, as earlier releases
 * wrote them). */
static void consume_one(ds_merge_role_t *mr, mpart_t *mp, const rd_kafka_message_t *m) {
        ds_partial_t pr;
        if (decode(mr, m, &pr))
                return;
        if (pr.kind == DS_PARTIAL_ROW) {
                apply_row(mr, mp, m, &pr);
        } else {
                apply_status(mr, mp, &pr);
                close_at_statuses(mr, mp);
        }
}

/* Merges a batch (schema 7): its rows, then its statuses, in their order. A
 * catch-up's merge tables outgrow the caches, and each update looks up two
 * rows (the partition's value, the global row): for each run of MERGE_BATCH
 * rows their index slots, then the rows, are prefetched first, so the misses
 * overlap. */
static void consume_rows(ds_merge_role_t *mr, mpart_t *mp, const rd_kafka_message_t *m) {
        ds_partial_rows_t it;
        ds_dlq_reason_t why = ds_partial_rows_open(m->payload, m->len, mr->cfg->heading_digits, &it);
        if (why) {
                ds_log(DS_LOG_WARN, "merge", "unreadable partial message skipped",
                       "partition=%d offset=%" PRId64 " reason=%s", m->partition, m->offset, ds_dlq_code(why));
                return;
        }
        int rc = 1, statuses = 0;
        int64_t row = 0; /* the message's items read */
        while (rc) {
                int n = 0;
                while (n < MERGE_BATCH && (rc = ds_partial_rows_next(&it, &mr->dec[n], &why)) > 0) {
                        row++;
                        if (rc == 2) { /* out of range: skipped, the rest is read */
                                ds_log(DS_LOG_WARN, "merge", "unreadable partial item skipped",
                                       "partition=%d offset=%" PRId64 " item=%" PRId64 " reason=%s", m->partition,
                                       m->offset, row, ds_dlq_code(why));
                                continue;
                        }
                        if (mr->dec[n].kind == DS_PARTIAL_STATUS)
                                break; /* the statuses come after every row */
                        n++;
                }
                for (int i = 0; i < n; i++)
                        if (mr->dec[i].partition < mr->inputs)
                                ds_merge_prefetch(mp->merge, 1, mr->dec[i].partition, mr->dec[i].key, mr->hashes[i]);
                for (int i = 0; i < n; i++)
                        if (mr->dec[i].partition < mr->inputs)
                                ds_merge_prefetch(mp->merge, 2, mr->dec[i].partition, mr->dec[i].key, mr->hashes[i]);
                for (int i = 0; i < n && !mr->fatal; i++)
                        apply_row(mr, mp, m, &mr->dec[i]);
                if (rc == 1 && n < MERGE_BATCH && mr->dec[n].kind == DS_PARTIAL_STATUS) {
                        apply_status(mr, mp, &mr->dec[n]);
                        statuses++;
                }
                if (rc < 0)
                        ds_log(DS_LOG_WARN, "merge", "unreadable partial items skipped (the rest of the message)",
                               "partition=%d offset=%" PRId64 " reason=%s", m->partition, m->offset, ds_dlq_code(why));
                if (rc <= 0)
                        break;
        }
        /* no row follows a status in a batch: closing once after them all is
         * closing after each */
        if (statuses)
                close_at_statuses(mr, mp);
}

/* Merges the polled messages in order, and frees them. Called before a
 * rebalance is handled too, so nothing polled before it is merged after. */
static void consume_batch(ds_merge_role_t *mr) {
        int n = mr->nbatch;
        mr->nbatch = 0;
        for (int i = 0; i < n; i++) {
                rd_kafka_message_t *m = mr->batch[i];
                mpart_t *mp = mpart_get(mr, m->partition);
                if (!m->err && mp) {
                        mp->next_offset = m->offset + 1;
                        mr->st.partials++;
                        if (ds_partial_schema(m->payload, m->len) == DS_SCHEMA_ID_PARTIAL_ROWS)
                                consume_rows(mr, mp, m);
                        else
                                consume_one(mr, mp, m);
                } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        /* the partition's end: past a transaction's commit
                         * marker (never delivered), which the rebuild's and
                         * a finish's end offsets count */
                        if (mp && m->offset > mp->next_offset)
                                mp->next_offset = m->offset;
                } else if (m->err) {
                        ds_log(DS_LOG_WARN, "merge", "consumer event", "error=\"%s\"", rd_kafka_message_errstr(m));
                }
                rd_kafka_message_destroy(m);
        }
}

/* ---- publishing ------------------------------------------------------------ */

static int produce(ds_merge_role_t *mr, const char *topic, const char *key, size_t klen) {
        mr->outstanding++;
        for (;;) {
                rd_kafka_resp_err_t err = rd_kafka_producev(
                    mr->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, klen),
                    RD_KAFKA_V_VALUE(mr->buf.p, mr->buf.len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_OPAQUE(&mr->tag), RD_KAFKA_V_END);
                if (!err)
                        return 0;
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                        mr->outstanding--;
                        ds_log(DS_LOG_ERROR, "merge", "cannot produce", "topic=%s error=\"%s\"", topic,
                               rd_kafka_err2str(err));
                        return -1;
                }
                rd_kafka_poll(mr->producer, 10);
        }
}

static int sink_row(void *ctx, const ds_row_t *r) {
        ds_merge_role_t *mr = ctx;
        char key[96], keytext[24];
        int klen = ds_total_key(r->key, mr->cfg->heading_digits, key, sizeof(key));
        ds_row_keytext(r->key, mr->cfg->heading_digits, keytext, sizeof(keytext));
        int64_t dd = 0, dv = 0;
        if (r->aux) {
                const ds_distinct_t *d = r->aux;
                dd = (int64_t)(ds_hll_estimate(d->declarants) + 0.5);
                dv = (int64_t)(ds_hll_estimate(d->vehicles) + 0.5);
        }
        mr->buf.len = 0;
        ds_wire_put_header(&mr->buf, DS_SCHEMA_ID_TOTAL);
        ds_encode_total(&mr->buf, ds_rowkey_dim(r->key), keytext, ds_rowkey_window(r->key), r->key.start, &r->m, dd,
                        dv, mr->now);
        return produce(mr, mr->cfg->output_topic, key, (size_t)klen);
}

static int sink_top(void *ctx, uint32_t gate, int64_t day, const ds_top_entry_t *e, int n) {
        ds_merge_role_t *mr = ctx;
        const ds_gate_t *g = ds_gate((int)gate);
        const char *code = g ? g->code : "?";
        char key[64];
        int klen = snprintf(key, sizeof(key), "%s|DAY|%" PRId64, code, day);
        mr->buf.len = 0;
        ds_wire_put_header(&mr->buf, DS_SCHEMA_ID_TOP_HEADINGS);
        ds_encode_top(&mr->buf, code, day, e, n, mr->cfg->heading_digits, mr->now);
        return produce(mr, mr->cfg->top_topic, key, (size_t)klen);
}

/* The smallest watermark over input partitions not idle; INT64_MIN while one
 * has not reported (it may still add to any window). */
static int64_t wm_min(const ds_merge_role_t *mr, const mpart_t *mp) {
        int64_t wm = INT64_MAX;
        for (int32_t i = 0; i < mr->inputs; i++) {
                const istatus_t *s = &mp->status[i];
                if (!s->seen)
                        return INT64_MIN;
                if (!s->idle && s->watermark_ms < wm)
                        wm = s->watermark_ms;
        }
        return wm;
}

static int caught_up(const ds_merge_role_t *mr) {
        for (int32_t i = 0; i < mr->nparts; i++)
                if (mr->parts[i] && mr->parts[i]->next_offset < mr->parts[i]->restore_end)
                        return 0;
        return 1;
}

static rd_kafka_topic_partition_list_t *positions(ds_merge_role_t *mr) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(mr->nparts ? mr->nparts : 1);
        for (int32_t i = 0; i < mr->nparts; i++)
                if (mr->parts[i] && mr->parts[i]->next_offset > 0)
                        rd_kafka_topic_partition_list_add(l, mr->cfg->partial_topic, i)->offset =
                            mr->parts[i]->next_offset;
        return l;
}

/* Fencing: commit our position synchronously; a member whose partitions
 * have moved on is refused by the coordinator and must not publish. (With
 * transactions, the transaction's offset commit does the same.) */
static int still_owner(ds_merge_role_t *mr) {
        if (mr->txn)
                return 1;
        rd_kafka_topic_partition_list_t *l = positions(mr);
        rd_kafka_resp_err_t err = l->cnt ? rd_kafka_commit(mr->consumer, l, 0) : RD_KAFKA_RESP_ERR_NO_ERROR;
        rd_kafka_topic_partition_list_destroy(l);
        if (err) {
                mr->st.fenced_publishes++;
                ds_log(DS_LOG_WARN, "merge", "not publishing: the group refused this member's commit",
                       "error=\"%s\"", rd_kafka_err2str(err));
                return 0;
        }
        return 1;
}

/* Transactions: commits what was produced with the positions it reflects,
 * and begins the next transaction. 0, or -1 (fatal: stopping). */
static int txn_commit(ds_merge_role_t *mr) {
        char err[512];
        rd_kafka_topic_partition_list_t *l = positions(mr);
        int rc = ds_kafka_txn_commit(mr->producer, mr->consumer, l, err, sizeof(err));
        rd_kafka_topic_partition_list_destroy(l);
        if (rc) {
                ds_log(DS_LOG_ERROR, "merge", "transaction failed; stopping", "error=\"%s\"", err);
                mr->fatal = 1;
                return -1;
        }
        return 0;
}

static int publish(ds_merge_role_t *mr) {
        if (mr->fatal || !caught_up(mr))
                return 0;
        if (!any_dirty(mr))
                return 0;
        if (!still_owner(mr))
                return 0;
        mr->now = ds_now_ms();
        ds_sink_t sink = {sink_row, sink_top, mr};
        for (int32_t i = 0; i < mr->nparts; i++) {
                mpart_t *mp = mr->parts[i];
                if (!mp)
                        continue;
                ds_publish_result_t res = {0};
                if (ds_publish_emit(mp->merge, wm_min(mr, mp), &sink, &res)) {
                        mr->fatal = 1;
                        return -1;
                }
                mr->st.rows_published += res.rows;
                mr->st.tops_published += res.tops;
        }
        while (mr->outstanding > 0)
                rd_kafka_poll(mr->producer, 5);
        if (mr->txn && !mr->failed && txn_commit(mr))
                return -1;
        if (mr->failed) {
                ds_log(DS_LOG_ERROR, "merge", "published rows were not delivered; stopping", "failed=%" PRIu64,
                       mr->failed);
                mr->fatal = 1;
                return -1;
        }
        return 0;
}

/* ---- writing snapshots ------------------------------------------------------- */

typedef struct snap_emit {
        ds_merge_role_t *mr;
        int32_t partition;
} snap_emit_t;

static int snap_emit(void *ctx, const void *rec, size_t len) {
        snap_emit_t *e = ctx;
        ds_merge_role_t *mr = e->mr;
        mr->snap_outstanding++;
        for (;;) {
                rd_kafka_resp_err_t err = rd_kafka_producev(
                        mr->producer, RD_KAFKA_V_TOPIC(mr->cfg->merge_state_topic), RD_KAFKA_V_PARTITION(e->partition),
                        RD_KAFKA_V_VALUE((void *)rec, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_OPAQUE(&mr->snap_tag), RD_KAFKA_V_END);
                if (!err)
                        return 0;
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                        mr->snap_outstanding--;
                        ds_log(DS_LOG_WARN, "merge", "cannot produce a merge snapshot record",
                               "partition=%d error=\"%s\"", e->partition, rd_kafka_err2str(err));
                        return -1;
                }
                rd_kafka_poll(mr->producer, 10);
        }
}

/* A partition whose snapshot is not older than this is not snapshotted
 * again until it has read further: a quiet partition's is refreshed, so that
 * time retention of more than a day never leaves it without one. */
#define SNAP_REFRESH_MS (24LL * 3600 * 1000)

/* Whether mp's merge is due a snapshot at now: read further than its last
 * one covers, or that one loaded at assignment or older than a day. */
static int snap_due(const mpart_t *mp, int64_t now) {
        if (!mp || mp->next_offset <= 0)
                return 0;
        return mp->next_offset != mp->snap_offset || !mp->snap_ms || now - mp->snap_ms >= SNAP_REFRESH_MS;
}

/* Transactions: a failed snapshot's records leave the transaction unable to
 * commit; it is aborted and the next one begun (the publishes before it
 * were committed each). */
static void txn_abort(ds_merge_role_t *mr) {
        rd_kafka_error_t *e = rd_kafka_abort_transaction(mr->producer, 30000);
        if (!e)
                e = rd_kafka_begin_transaction(mr->producer);
        if (e) {
                ds_log(DS_LOG_ERROR, "merge", "transaction failed; stopping", "error=\"%s\"", rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
                mr->fatal = 1;
        }
}

/* Snapshots every assigned partial partition read further since its last
 * one. Only a caught-up owner writes them (a zombie's would be valid too -
 * any snapshot is the state after a prefix of the partition - but could be
 * older than the owner's, and a restore takes the last one written).
 * Returns 1 to be called again soon: it could not run now. */
static int snapshot(ds_merge_role_t *mr) {
        if (mr->fatal || !caught_up(mr))
                return 1;
        int64_t now = ds_mono_ms();
        int due = 0;
        for (int32_t i = 0; i < mr->nparts; i++)
                due += snap_due(mr->parts[i], now);
        if (!due)
                return 0;
        if (!still_owner(mr))
                return 1;
        /* every partition's records, then one wait for their acknowledgements
         * (a wait each took ~7 ms: 1.2 s for 192 partitions) */
        int64_t t0 = ds_mono_ms(), bytes = 0;
        uint64_t failed0 = mr->snap_failed;
        int ok = 1, n = 0;
        ds_buf_t b = {0};
        for (int32_t i = 0; i < mr->nparts && ok; i++) {
                mpart_t *mp = mr->parts[i];
                if (!snap_due(mp, now))
                        continue;
                b.len = 0;
                snap_save(mr, mp, &b);
                snap_emit_t e = {mr, mp->partition};
                ok = !ds_mstate_write(mr->snap_seq++, b.p, b.len, mp->next_offset, SNAP_CHUNK, snap_emit, &e);
                bytes += (int64_t)b.len;
                n++;
        }
        ds_buf_free(&b);
        /* acknowledged before they count as written (and, with transactions,
         * committed below) */
        while (mr->snap_outstanding > 0)
                rd_kafka_poll(mr->producer, 5);
        if (!ok || mr->snap_failed != failed0) {
                ds_log(DS_LOG_WARN, "merge", "merge snapshots not written; the next interval tries again",
                       "partitions=%d", n);
                if (mr->txn) /* the transaction holds only their records (publish commits each time) */
                        txn_abort(mr);
                return 0;
        }
        uint64_t shares = 0, rows = 0;
        for (int32_t i = 0; i < mr->nparts; i++) {
                mpart_t *mp = mr->parts[i];
                if (!snap_due(mp, now))
                        continue;
                mp->snap_offset = mp->next_offset;
                mp->snap_ms = now;
                shares += ds_merge_shares(mp->merge);
                rows += ds_rows_count(ds_merge_global(mp->merge));
                ds_log(DS_LOG_DEBUG, "merge", "merge snapshot written", "partition=%d snapshot_offset=%" PRId64,
                       mp->partition, mp->snap_offset);
        }
        mr->st.snapshots += (uint64_t)n;
        mr->st.snapshot_bytes = bytes;
        ds_log(DS_LOG_INFO, "merge", "merge snapshots written",
               "partitions=%d bytes=%" PRId64 " shares=%" PRIu64 " rows=%" PRIu64 " write_ms=%" PRId64, n, bytes,
               shares, rows, ds_mono_ms() - t0);
        if (mr->txn && !mr->fatal)
                txn_commit(mr);
        return 0;
}

/* The end each assigned partition has now: what a finishing merge reads up
 * to. Queried for all at once - one by one, each query waited behind the
 * consumer's Fetch in flight (~fetch.wait.max.ms): 9.8 s for 192 partitions
 * at the end of a catch-up. A partition whose end could not be read (the
 * query retries within its 10 s) is not waited for (logged). */
static void finish_ends(ds_merge_role_t *mr) {
        size_t cap = (size_t)(mr->nparts ? mr->nparts : 1);
        int32_t *ids = malloc(cap * sizeof(*ids));
        int64_t *his = malloc(cap * sizeof(*his));
        int n = 0;
        for (int32_t i = 0; i < mr->nparts; i++) {
                mr->finish_at[i] = 0;
                if (mr->parts[i] && ids)
                        ids[n++] = i;
        }
        int32_t failed = -1;
        rd_kafka_resp_err_t err = !ids || !his ? RD_KAFKA_RESP_ERR__FAIL
                                               : ds_kafka_watermarks_many(mr->consumer, mr->cfg->partial_topic, ids,
                                                                          n, NULL, his, 10000, &failed);
        for (int k = 0; his && k < n; k++) /* his is NULL if its allocation failed */
                if (his[k] >= 0)
                        mr->finish_at[ids[k]] = his[k];
        if (err)
                ds_log(DS_LOG_WARN, "merge", "cannot read partial partitions' ends; not waiting for those",
                       "topic=%s partition=%d error=\"%s\"", mr->cfg->partial_topic, failed, rd_kafka_err2str(err));
        free(ids);
        free(his);
}

/* Rows changed since the last publish? */
static int any_dirty(const ds_merge_role_t *mr) {
        for (int32_t i = 0; i < mr->nparts; i++)
                if (mr->parts[i] && ds_rows_dirty_count(ds_merge_global(mr->parts[i]->merge)) > 0)
                        return 1;
        return 0;
}

/* Publishes every merge.interval.ms, and sooner - at most four times as
 * often - once the partial topic has nothing more to read: a processing
 * cycle's partials arrive in one burst, and the totals they change need not
 * wait for the interval's end (at 100k/s on 48 partitions that wait was
 * ~100 ms of every declaration's latency). */
int ds_merge_role_run(ds_merge_role_t *mr) {
        const int64_t iv = mr->cfg->merge_interval_ms;
        int64_t last = ds_mono_ms(), next = last + iv;
        ds_log(DS_LOG_INFO, "merge", "started", "partial_topic=%s output=%s input_partitions=%d",
               mr->cfg->partial_topic, mr->cfg->output_topic, mr->inputs);
        while (!mr->fatal && !atomic_load_explicit(&mr->stop, memory_order_relaxed)) {
                /* a batch: what is already fetched, after waiting for the first */
                rd_kafka_message_t *m = rd_kafka_consumer_poll(mr->consumer, 20);
                int idle = !m;
                while (m) {
                        mr->batch[mr->nbatch++] = m;
                        m = mr->nbatch < MERGE_BATCH ? rd_kafka_consumer_poll(mr->consumer, 0) : NULL;
                }
                consume_batch(mr);
                rd_kafka_poll(mr->producer, 0);
                if (mr->rebuilding && caught_up(mr)) {
                        /* what /readyz waits for: said once per assignment */
                        int32_t n = 0;
                        for (int32_t i = 0; i < mr->nparts; i++)
                                n += mr->parts[i] != NULL;
                        mr->rebuilding = 0;
                        if (n)
                                ds_log(DS_LOG_INFO, "merge", "partial partitions rebuilt",
                                       "partitions=%d partial_rows=%" PRIu64 " rebuild_ms=%" PRId64, n,
                                       mr->st.partial_rows - mr->rebuild_rows0, ds_mono_ms() - mr->rebuild_from_ms);
                }
                if (atomic_load_explicit(&mr->finish, memory_order_relaxed) && !mr->finishing) {
                        /* the end to reach: each assigned partition's end now */
                        mr->finishing = 1;
                        finish_ends(mr);
                }
                if (ds_mono_ms() >= mr->next_pub) {
                        publish_stats(mr);
                        mr->next_pub = ds_mono_ms() + 250;
                }
                int64_t now = ds_mono_ms();
                if (now >= next || (idle && now - last >= iv / 4 && any_dirty(mr))) {
                        publish(mr);
                        last = now;
                        next = ds_mono_ms() + iv;
                }
                if (mr->ms && ds_mono_ms() >= mr->next_snap) {
                        int again = snapshot(mr);
                        mr->next_snap = ds_mono_ms() + (again ? 1000 : mr->cfg->merge_snapshot_interval_ms);
                }
                if (mr->finishing) {
                        /* at the end of the input, not before the group has
                         * answered: a merge that finished with nothing
                         * assigned yet would never rebuild nor publish what
                         * it is about to get (an empty assignment counts as an
                         * answer). A merge leaving on a signal need not wait:
                         * the members that stay get its partitions. */
                        int wait_group = atomic_load_explicit(&mr->finish, memory_order_relaxed) == FINISH_AFTER_GROUP;
                        int done = (mr->assigned_once || !wait_group) && caught_up(mr);
                        for (int32_t i = 0; i < mr->nparts && done; i++)
                                done = !mr->parts[i] || mr->parts[i]->next_offset >= mr->finish_at[i];
                        if (done) {
                                publish(mr);
                                break;
                        }
                }
        }
        if (!mr->fatal)
                publish(mr);
        publish_stats(mr);
        if (mr->unknown_skipped)
                log_unknown(mr, mr->unknown_last);
        ds_log(DS_LOG_INFO, "merge", "stopped",
               "partials=%" PRIu64 " partial_rows=%" PRIu64 " rows_published=%" PRIu64 " top_lists_published=%" PRIu64
               " ignored=%" PRIu64 " fenced_publishes=%" PRIu64 " snapshots=%" PRIu64,
               mr->st.partials, mr->st.partial_rows, mr->st.rows_published, mr->st.tops_published, mr->st.ignored,
               mr->st.fenced_publishes, mr->st.snapshots);
        return mr->fatal ? 1 : 0;
}
