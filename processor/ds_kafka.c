/*
 * ds_kafka.c - librdkafka configuration, logging and metadata helpers.
 */
#include "ds_kafka.h"
#include "ds_common.h"
#include "ds_kstats.h"
#include "ds_log.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* librdkafka syslog levels -> ds_log levels. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
        (void)rk;
        ds_log_level_t l = level <= 3 ? DS_LOG_ERROR : level == 4 ? DS_LOG_WARN : level <= 6 ? DS_LOG_INFO
                                                                                                : DS_LOG_DEBUG;
        ds_log(l, "rdkafka", buf, "facility=%s client=%s", fac, rk ? rd_kafka_name(rk) : "-");
}

static int set(rd_kafka_conf_t *conf, const char *k, const char *v, const char *origin, char *errstr, size_t sz) {
        char err[512];
        if (rd_kafka_conf_set(conf, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK)
                return ds_err(errstr, sz, "%s kafka.%s: %s", origin, k, err);
        return 0;
}

/* Properties that only make sense for the other role: skipped quietly, so a
 * shared -X list does not fill the log with librdkafka's CONFWARN lines. */
static int other_role_only(ds_kafka_role_t role, const char *k) {
        static const char *const consumer_only[] = {
            "group.id", "group.instance.id", "auto.offset.reset", "enable.auto.commit", "auto.commit.interval.ms",
            "enable.auto.offset.store", "session.timeout.ms", "heartbeat.interval.ms", "max.poll.interval.ms",
            "partition.assignment.strategy", "enable.partition.eof", "queued.min.messages",
            "queued.max.messages.kbytes", "fetch.wait.max.ms", "fetch.min.bytes", "fetch.max.bytes",
            "fetch.message.max.bytes", "max.partition.fetch.bytes", "isolation.level", "check.crcs",
            "fetch.error.backoff.ms", "coordinator.query.interval.ms", NULL};
        static const char *const producer_only[] = {
            "acks", "request.required.acks", "linger.ms", "queue.buffering.max.ms", "batch.num.messages",
            "batch.size", "compression.codec", "compression.type", "compression.level", "enable.idempotence",
            "partitioner", "message.timeout.ms", "delivery.timeout.ms", "queue.buffering.max.messages",
            "queue.buffering.max.kbytes", "transactional.id", "transaction.timeout.ms", "retries",
            "message.send.max.retries", "max.in.flight", "max.in.flight.requests.per.connection", NULL};
        const char *const *list = role == DS_KAFKA_PRODUCER ? consumer_only : producer_only;
        for (; *list; list++)
                if (!strcmp(*list, k))
                        return 1;
        return 0;
}

rd_kafka_conf_t *ds_kafka_conf(ds_kafka_role_t role, const char *const *defaults, const ds_kv_t *props, int nprops,
                               char *errstr, size_t sz) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set_log_cb(conf, log_cb);
        for (const char *const *d = defaults; d && d[0]; d += 2)
                if (set(conf, d[0], d[1], "default", errstr, sz))
                        goto fail;
        for (int i = 0; i < nprops; i++) {
                if (other_role_only(role, props[i].key))
                        continue;
                if (set(conf, props[i].key, props[i].value, "", errstr, sz))
                        goto fail;
        }
        return conf;
fail:
        rd_kafka_conf_destroy(conf);
        return NULL;
}

rd_kafka_t *ds_kafka_new(ds_kafka_role_t role, rd_kafka_conf_t *conf, char *errstr, size_t sz) {
        char err[512];
        rd_kafka_t *rk = rd_kafka_new(role == DS_KAFKA_CONSUMER ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER, conf, err,
                                      sizeof(err));
        if (!rk) {
                rd_kafka_conf_destroy(conf);
                ds_err(errstr, sz, "cannot create the Kafka %s: %s",
                       role == DS_KAFKA_CONSUMER ? "consumer" : "producer", err);
        }
        return rk;
}

int ds_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, char *errstr, size_t sz) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
        rd_kafka_topic_destroy(rkt);
        if (err)
                return ds_err(errstr, sz, "metadata for topic %s: %s", topic, rd_kafka_err2str(err));
        int n = -1;
        if (md->topic_cnt == 1 && !md->topics[0].err)
                n = md->topics[0].partition_cnt;
        else
                ds_err(errstr, sz, "topic %s: %s", topic,
                       md->topic_cnt ? rd_kafka_err2str(md->topics[0].err) : "not in metadata");
        rd_kafka_metadata_destroy(md);
        return n;
}

int ds_kafka_topic_ready(rd_kafka_t *consumer, rd_kafka_t *producer, const char *topic, const char *key, char *errstr,
                         size_t sz) {
        char err[512];
        int n = ds_kafka_partition_count(consumer, topic, 10000, err, sizeof(err));
        if (n > 0 && ds_kafka_partition_count(producer, topic, 10000, err, sizeof(err)) <= 0)
                n = -1;
        if (n <= 0)
                return ds_err(errstr, sz, "%s: %s (declstream creates no topic: create it first)", key, err), -1;
        return n;
}

static int retriable(rd_kafka_resp_err_t err) {
        switch (err) {
        case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
        case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_REPLICA_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
        case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
        case RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH:
        case RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH:
        case RD_KAFKA_RESP_ERR__TIMED_OUT:
        case RD_KAFKA_RESP_ERR__TRANSPORT:
        case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
        case RD_KAFKA_RESP_ERR__WAIT_COORD:
                return 1;
        default:
                return 0;
        }
}

/* One end (BEGINNING or END) of each partition, into out[] (-1 where it
 * could not be read); see ds_kafka_watermarks_many(). */
static rd_kafka_resp_err_t ends_at(rd_kafka_t *rk, const char *topic, const int32_t *partitions, int n,
                                   int64_t logical, int64_t *out, int64_t deadline, int32_t *failed) {
        for (int i = 0; i < n; i++)
                out[i] = -1;
        char *done = calloc((size_t)n, 1);
        if (!done)
                return RD_KAFKA_RESP_ERR__FAIL;
        int64_t backoff = 50;
        for (;;) {
                rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
                for (int i = 0; i < n; i++)
                        if (!done[i])
                                rd_kafka_topic_partition_list_add(l, topic, partitions[i])->offset = logical;
                int64_t left = deadline - ds_mono_ms();
                rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, l, left > 0 ? (int)left : 1);
                /* the error to report: the first that stops the retries, else
                 * the last retriable one */
                rd_kafka_resp_err_t last = err;
                int fatal = err && !retriable(err), pending = 0;
                *failed = -1;
                for (int i = 0; i < n && !err; i++) {
                        if (done[i])
                                continue;
                        /* the list may come back in another order */
                        const rd_kafka_topic_partition_t *tp =
                            rd_kafka_topic_partition_list_find(l, topic, partitions[i]);
                        if (tp && !tp->err && tp->offset >= 0) {
                                out[i] = tp->offset;
                                done[i] = 1;
                                continue;
                        }
                        pending++;
                        if (fatal)
                                continue;
                        last = tp ? (tp->err ? tp->err : RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE)
                                  : RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION;
                        *failed = partitions[i];
                        fatal = !retriable(last);
                }
                rd_kafka_topic_partition_list_destroy(l);
                if (!err && !pending) {
                        free(done);
                        return RD_KAFKA_RESP_ERR_NO_ERROR;
                }
                if (fatal || ds_mono_ms() + backoff >= deadline) {
                        free(done);
                        return last;
                }
                ds_log(DS_LOG_WARN, "kafka", "watermarks query failed; retrying",
                       "topic=%s partition=%d partitions=%d error=\"%s\"", topic, *failed, n, rd_kafka_err2str(last));
                ds_sleep_ms(backoff);
                backoff = backoff * 2 > 1000 ? 1000 : backoff * 2;
        }
}

rd_kafka_resp_err_t ds_kafka_watermarks_many(rd_kafka_t *rk, const char *topic, const int32_t *partitions, int n,
                                             int64_t *lo, int64_t *hi, int timeout_ms, int32_t *failed) {
        int64_t deadline = ds_mono_ms() + timeout_ms;
        *failed = -1;
        if (n <= 0)
                return RD_KAFKA_RESP_ERR_NO_ERROR;
        /* the start first: it only grows and the end only grows, so lo <= hi
         * even when the broker deletes in between */
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        if (lo)
                err = ends_at(rk, topic, partitions, n, RD_KAFKA_OFFSET_BEGINNING, lo, deadline, failed);
        if (hi) {
                if (!err)
                        err = ends_at(rk, topic, partitions, n, RD_KAFKA_OFFSET_END, hi, deadline, failed);
                else
                        for (int i = 0; i < n; i++)
                                hi[i] = -1;
        }
        return err;
}

rd_kafka_resp_err_t ds_kafka_watermarks(rd_kafka_t *rk, const char *topic, int32_t partition, int64_t *lo,
                                        int64_t *hi, int timeout_ms) {
        int32_t failed;
        return ds_kafka_watermarks_many(rk, topic, &partition, 1, lo, hi, timeout_ms, &failed);
}

int ds_kafka_check_head(rd_kafka_t *rk, const char *topic, int partitions, int timeout_ms, char *errstr, size_t sz) {
        if (partitions <= 0)
                return 0;
        int32_t *ids = malloc((size_t)partitions * sizeof(*ids));
        int64_t *lo = malloc((size_t)partitions * sizeof(*lo)), *hi = malloc((size_t)partitions * sizeof(*hi));
        if (!ids || !lo || !hi) {
                free(ids);
                free(lo);
                free(hi);
                return ds_err(errstr, sz, "out of memory");
        }
        for (int p = 0; p < partitions; p++)
                ids[p] = p;
        int32_t failed;
        rd_kafka_resp_err_t err = ds_kafka_watermarks_many(rk, topic, ids, partitions, lo, hi, timeout_ms, &failed);
        int lost = 0;
        if (err) {
                lost = failed >= 0 ? ds_err(errstr, sz, "watermarks of %s [%d]: %s", topic, failed, rd_kafka_err2str(err))
                                   : ds_err(errstr, sz, "watermarks of %s: %s", topic, rd_kafka_err2str(err));
        } else {
                for (int p = 0; p < partitions; p++) {
                        if (lo[p] > 0) {
                                ds_log(DS_LOG_ERROR, "kafka", "partition lost its head: the broker deleted messages",
                                       "topic=%s partition=%d log_start_offset=%lld high_watermark=%lld", topic, p,
                                       (long long)lo[p], (long long)hi[p]);
                                lost++;
                        }
                }
        }
        free(ids);
        free(lo);
        free(hi);
        return lost;
}

int ds_kafka_produce_wait(rd_kafka_t *producer, const char *topic, int32_t partition, const void *key, size_t klen,
                          const void *value, size_t vlen, int64_t *offset, int timeout_ms) {
        /* on the heap: if the wait times out, a late report must still find it */
        ds_dtag_t *tag = calloc(1, sizeof(*tag));
        if (!tag)
                return RD_KAFKA_RESP_ERR__FAIL;
        tag->slot = -1;
        tag->offset = -1;
        rd_kafka_resp_err_t err;
        int64_t deadline = ds_mono_ms() + timeout_ms;
        for (;;) {
                err = rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                                        RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE((void *)value, vlen),
                                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(tag),
                                        RD_KAFKA_V_END);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || ds_mono_ms() > deadline)
                        break;
                rd_kafka_poll(producer, 10);
        }
        if (err) {
                free(tag);
                return err;
        }
        /* rd_kafka_flush() sends at once rather than after linger.ms (5 ms
         * in the processor: ~1 s of every rebalance that claims 192
         * partitions one after the other), and serves the reports */
        while (!tag->done && ds_mono_ms() < deadline)
                rd_kafka_flush(producer, 5);
        if (!tag->done)
                return RD_KAFKA_RESP_ERR__TIMED_OUT; /* tag left for the late report: the caller stops */
        err = tag->err;
        *offset = tag->offset;
        free(tag);
        return err;
}

int ds_kafka_txn_id(const ds_config_t *cfg, const char *role, char *buf, size_t size) {
        char host[256] = "declstream";
        const char *inst = cfg->instance_id;
        if (!inst || !*inst) {
                if (gethostname(host, sizeof(host) - 1) == 0)
                        host[sizeof(host) - 1] = '\0';
                inst = host;
        }
        const char *g = ds_config_kafka_get(cfg, "group.id");
        return snprintf(buf, size, "%s.%s.%s", g ? g : "declstream", inst, role);
}

static int txn_error(rd_kafka_error_t *e, const char *what, char *errstr, size_t sz) {
        ds_err(errstr, sz, "%s: %s%s", what, rd_kafka_error_string(e),
               rd_kafka_error_is_fatal(e) ? " (fatal)" : rd_kafka_error_txn_requires_abort(e) ? " (aborted)" : "");
        rd_kafka_error_destroy(e);
        return -1;
}

int ds_kafka_txn_commit(rd_kafka_t *producer, rd_kafka_t *consumer, const rd_kafka_topic_partition_list_t *offsets,
                        char *errstr, size_t sz) {
        rd_kafka_error_t *e;
        if (offsets && offsets->cnt) {
                rd_kafka_consumer_group_metadata_t *md = rd_kafka_consumer_group_metadata(consumer);
                e = rd_kafka_send_offsets_to_transaction(producer, offsets, md, 30000);
                rd_kafka_consumer_group_metadata_destroy(md);
                if (e) {
                        rd_kafka_error_t *ae = rd_kafka_abort_transaction(producer, 30000);
                        if (ae)
                                rd_kafka_error_destroy(ae);
                        return txn_error(e, "sending offsets to the transaction", errstr, sz);
                }
        }
        if ((e = rd_kafka_commit_transaction(producer, 30000))) {
                rd_kafka_error_t *ae = rd_kafka_abort_transaction(producer, 30000);
                if (ae)
                        rd_kafka_error_destroy(ae);
                return txn_error(e, "committing the transaction", errstr, sz);
        }
        if ((e = rd_kafka_begin_transaction(producer)))
                return txn_error(e, "beginning a transaction", errstr, sz);
        return 0;
}

rd_kafka_conf_t *ds_kafka_reader_conf(const ds_config_t *cfg, char *errstr, size_t sz) {
        const char *defaults[] = {"enable.auto.commit",
                                  "false",
                                  "enable.partition.eof",
                                  "true",
                                  "auto.offset.reset",
                                  "error",
                                  cfg->eos_mode == DS_EOS_TRANSACTIONS ? "isolation.level" : NULL,
                                  "read_committed",
                                  NULL};
        rd_kafka_conf_t *conf = ds_kafka_conf(DS_KAFKA_CONSUMER, defaults, cfg->kafka, cfg->nkafka, errstr, sz);
        if (conf)
                ds_kstats_off(conf);
        return conf;
}

rd_kafka_t *ds_kafka_reader_new(rd_kafka_conf_t *conf, char *errstr, size_t sz) {
        /* Each step of a restore (the watermarks, the scan, the checkpoint,
         * the replay) reads a range that ends at or before the log's end,
         * and the next step waits for the Fetch the last one left at the end:
         * the broker holds it fetch.wait.max.ms for data that will not come.
         * At 50 ms a partition took ~190 ms to restore (the watermark query
         * ~85, the checkpoint and the replay ~50 each, waiting); at 5 ms,
         * ~20-30 - a restart of 192 partitions 36.7 s -> 5.4 s (bench/HOTPATH.md,
         * twelfth round). Set over the user's properties, which are the input
         * consumer's too: a reader only ever reads what is already there. */
        char e2[256];
        if (rd_kafka_conf_set(conf, "fetch.wait.max.ms", "5", e2, sizeof(e2)) != RD_KAFKA_CONF_OK) {
                rd_kafka_conf_destroy(conf);
                ds_err(errstr, sz, "reader: %s", e2);
                return NULL;
        }
        return ds_kafka_new(DS_KAFKA_CONSUMER, conf, errstr, sz);
}

int ds_kafka_read_range(rd_kafka_t *rk, const char *topic, int32_t p, int64_t from, int64_t to, int exact_start,
                        int timeout_ms, const char *comp, ds_kafka_read_fn fn, void *ctx, char *errstr, size_t sz) {
        if (from >= to)
                return 0;
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = from;
        rd_kafka_resp_err_t err = rd_kafka_assign(rk, l);
        rd_kafka_topic_partition_list_destroy(l);
        if (err)
                return ds_err(errstr, sz, "cannot read %s [%d]: %s", topic, p, rd_kafka_err2str(err));
        int rc = 0;
        int64_t deadline = ds_mono_ms() + timeout_ms, next = from;
        while (next < to) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
                if (!m) {
                        if (ds_mono_ms() > deadline) {
                                rc = ds_err(errstr, sz, "timed out reading %s [%d] at offset %" PRId64, topic, p, next);
                                break;
                        }
                        continue;
                }
                if (m->err) {
                        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF && m->offset >= to) {
                                rd_kafka_message_destroy(m); /* all of [from, to) there is was read */
                                break;
                        }
                        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                                ds_log(DS_LOG_WARN, comp, "read error", "topic=%s partition=%d error=\"%s\"", topic, p,
                                       rd_kafka_message_errstr(m));
                                if (m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE ||
                                    m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
                                        rc = ds_err(errstr, sz, "%s [%d]: offset %" PRId64 " is no longer held", topic,
                                                    p, next);
                                        rd_kafka_message_destroy(m);
                                        break;
                                }
                        }
                        rd_kafka_message_destroy(m);
                        continue;
                }
                deadline = ds_mono_ms() + timeout_ms;
                if (m->offset < next) { /* already seen */
                        rd_kafka_message_destroy(m);
                        continue;
                }
                if (m->offset >= to) { /* past the range: what precedes it was all delivered */
                        rd_kafka_message_destroy(m);
                        break;
                }
                if (exact_start && m->offset != next && next == from) {
                        rc = ds_err(errstr, sz, "%s [%d]: wanted offset %" PRId64 ", the log starts at %" PRId64, topic,
                                    p, from, m->offset);
                        rd_kafka_message_destroy(m);
                        break;
                }
                next = m->offset + 1;
                int stop = fn(ctx, m->offset, m->payload, m->len);
                rd_kafka_message_destroy(m);
                if (stop < 0) {
                        rc = -1;
                        break;
                }
                if (stop)
                        break;
        }
        rd_kafka_assign(rk, NULL);
        return rc;
}
