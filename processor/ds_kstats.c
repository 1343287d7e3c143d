/*
 * ds_kstats.c - librdkafka statistics -> a small table -> Prometheus text.
 *
 * The table is fixed-size (MAX_CLIENTS clients x MAX_BROKERS brokers): a
 * process has a handful of clients, and bounded memory matters more than an
 * exotic deployment's 65th client (its statistics are dropped and counted).
 */
#include "ds_kstats.h"
#include "ds_common.h"
#include "ds_prom.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CLIENTS  16
#define MAX_BROKERS  16
#define NAME_MAX_LEN 128

typedef struct kbroker {
        char name[NAME_MAX_LEN];
        int up;
        int64_t outbuf_cnt, outbuf_msg_cnt, waitresp_cnt;
        int64_t tx, txbytes, txerrs, rx, rxbytes, rxerrs, req_timeouts, connects, disconnects;
        int64_t rtt_avg, rtt_p50, rtt_p99; /* microseconds */
        int64_t throttle_avg;
} kbroker_t;

typedef struct kclient {
        char name[NAME_MAX_LEN];
        char type[16];
        int64_t updated_ms;  /* monotonic */
        int64_t interval_ms; /* estimated from the last two updates */
        int64_t replyq, msg_cnt, msg_size, msg_max, msg_size_max;
        int64_t tx, tx_bytes, rx, rx_bytes, txmsgs, txmsg_bytes, rxmsgs, rxmsg_bytes;
        int64_t fetchq_cnt, fetchq_size;
        int has_cgrp;
        int64_t rebalance_cnt, assignment_size;
        char cgrp_state[32];
        int nbrokers;
        kbroker_t brokers[MAX_BROKERS];
} kclient_t;

static pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
static kclient_t clients[MAX_CLIENTS];
static int nclients;
static uint64_t dropped;

static int64_t geti(json_t *o, const char *k) {
        json_t *v = json_object_get(o, k);
        return json_is_integer(v) ? (int64_t)json_integer_value(v) : json_is_real(v) ? (int64_t)json_real_value(v) : 0;
}

static void copystr(char *dst, size_t size, json_t *o, const char *k) {
        const char *s = json_string_value(json_object_get(o, k));
        snprintf(dst, size, "%s", s ? s : "");
}

int ds_kstats_ingest(const char *json, size_t len) {
        json_error_t jerr;
        json_t *root = json_loadb(json, len, 0, &jerr);
        if (!root || !json_is_object(root) || !json_is_string(json_object_get(root, "name"))) {
                json_decref(root);
                return -1;
        }
        kclient_t c;
        memset(&c, 0, sizeof(c));
        copystr(c.name, sizeof(c.name), root, "name");
        copystr(c.type, sizeof(c.type), root, "type");
        c.replyq = geti(root, "replyq");
        c.msg_cnt = geti(root, "msg_cnt");
        c.msg_size = geti(root, "msg_size");
        c.msg_max = geti(root, "msg_max");
        c.msg_size_max = geti(root, "msg_size_max");
        c.tx = geti(root, "tx");
        c.tx_bytes = geti(root, "tx_bytes");
        c.rx = geti(root, "rx");
        c.rx_bytes = geti(root, "rx_bytes");
        c.txmsgs = geti(root, "txmsgs");
        c.txmsg_bytes = geti(root, "txmsg_bytes");
        c.rxmsgs = geti(root, "rxmsgs");
        c.rxmsg_bytes = geti(root, "rxmsg_bytes");

        json_t *brokers = json_object_get(root, "brokers"), *b;
        const char *bk;
        json_object_foreach(brokers, bk, b) {
                /* the bootstrap and internal pseudo-brokers (nodeid -1) say nothing useful */
                if (geti(b, "nodeid") < 0)
                        continue;
                if (c.nbrokers == MAX_BROKERS)
                        break;
                kbroker_t *kb = &c.brokers[c.nbrokers++];
                snprintf(kb->name, sizeof(kb->name), "%s", bk);
                const char *state = json_string_value(json_object_get(b, "state"));
                kb->up = state && !strcmp(state, "UP");
                kb->outbuf_cnt = geti(b, "outbuf_cnt");
                kb->outbuf_msg_cnt = geti(b, "outbuf_msg_cnt");
                kb->waitresp_cnt = geti(b, "waitresp_cnt");
                kb->tx = geti(b, "tx");
                kb->txbytes = geti(b, "txbytes");
                kb->txerrs = geti(b, "txerrs");
                kb->rx = geti(b, "rx");
                kb->rxbytes = geti(b, "rxbytes");
                kb->rxerrs = geti(b, "rxerrs");
                kb->req_timeouts = geti(b, "req_timeouts");
                kb->connects = geti(b, "connects");
                kb->disconnects = geti(b, "disconnects");
                json_t *rtt = json_object_get(b, "rtt");
                kb->rtt_avg = geti(rtt, "avg");
                kb->rtt_p50 = geti(rtt, "p50");
                kb->rtt_p99 = geti(rtt, "p99");
                kb->throttle_avg = geti(json_object_get(b, "throttle"), "avg");
        }
        /* consumer: what is fetched but not yet consumed, over every partition */
        json_t *topics = json_object_get(root, "topics"), *t;
        const char *tk;
        json_object_foreach(topics, tk, t) {
                json_t *parts = json_object_get(t, "partitions"), *p;
                const char *pk;
                json_object_foreach(parts, pk, p) {
                        c.fetchq_cnt += geti(p, "fetchq_cnt");
                        c.fetchq_size += geti(p, "fetchq_size");
                }
        }
        json_t *cgrp = json_object_get(root, "cgrp");
        if (json_is_object(cgrp)) {
                c.has_cgrp = 1;
                c.rebalance_cnt = geti(cgrp, "rebalance_cnt");
                c.assignment_size = geti(cgrp, "assignment_size");
                copystr(c.cgrp_state, sizeof(c.cgrp_state), cgrp, "state");
        }
        json_decref(root);

        int64_t now = ds_mono_ms();
        pthread_mutex_lock(&mtx);
        kclient_t *slot = NULL;
        for (int i = 0; i < nclients && !slot; i++)
                if (!strcmp(clients[i].name, c.name))
                        slot = &clients[i];
        if (!slot) {
                /* reuse the stalest entry of a destroyed client when full */
                if (nclients < MAX_CLIENTS) {
                        slot = &clients[nclients++];
                } else {
                        for (int i = 0; i < nclients; i++)
                                if (now - clients[i].updated_ms > 3 * clients[i].interval_ms + 5000 &&
                                    (!slot || clients[i].updated_ms < slot->updated_ms))
                                        slot = &clients[i];
                }
                if (!slot) {
                        dropped++;
                        pthread_mutex_unlock(&mtx);
                        return 0;
                }
                c.interval_ms = 60000;
        } else {
                c.interval_ms = now - slot->updated_ms;
        }
        c.updated_ms = now;
        *slot = c;
        pthread_mutex_unlock(&mtx);
        return 0;
}

static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
        (void)rk;
        (void)opaque;
        ds_kstats_ingest(json, len);
        return 0; /* librdkafka frees json */
}

void ds_kstats_attach(rd_kafka_conf_t *conf, const ds_config_t *cfg) {
        rd_kafka_conf_set_stats_cb(conf, stats_cb);
        if (!ds_config_kafka_get(cfg, "statistics.interval.ms"))
                rd_kafka_conf_set(conf, "statistics.interval.ms", DS_KSTATS_DEFAULT_INTERVAL, NULL, 0);
}

void ds_kstats_off(rd_kafka_conf_t *conf) {
        rd_kafka_conf_set(conf, "statistics.interval.ms", "0", NULL, 0);
}

void ds_kstats_reset(void) {
        pthread_mutex_lock(&mtx);
        nclients = 0;
        dropped = 0;
        pthread_mutex_unlock(&mtx);
}

typedef struct fam {
        const char *name, *type, *help;
        size_t off; /* in kclient_t or kbroker_t */
} fam_t;

#define C(f) offsetof(kclient_t, f)
static const fam_t client_fams[] = {
        {"declstream_rdkafka_replyq_events", "gauge", "librdkafka: events waiting to be served by a poll (replyq)",
         C(replyq)},
        {"declstream_rdkafka_producer_queue_messages", "gauge", "librdkafka: messages in the producer queues (msg_cnt)",
         C(msg_cnt)},
        {"declstream_rdkafka_producer_queue_bytes", "gauge", "librdkafka: bytes in the producer queues (msg_size)",
         C(msg_size)},
        {"declstream_rdkafka_producer_queue_max_messages", "gauge",
         "librdkafka: producer queue limit, messages (msg_max)", C(msg_max)},
        {"declstream_rdkafka_requests_sent_total", "counter", "librdkafka: requests sent to brokers (tx)", C(tx)},
        {"declstream_rdkafka_sent_bytes_total", "counter", "librdkafka: bytes sent to brokers (tx_bytes)", C(tx_bytes)},
        {"declstream_rdkafka_responses_received_total", "counter", "librdkafka: responses received (rx)", C(rx)},
        {"declstream_rdkafka_received_bytes_total", "counter", "librdkafka: bytes received from brokers (rx_bytes)",
         C(rx_bytes)},
        {"declstream_rdkafka_produced_messages_total", "counter", "librdkafka: messages sent to brokers (txmsgs)",
         C(txmsgs)},
        {"declstream_rdkafka_consumed_messages_total", "counter", "librdkafka: messages received from brokers (rxmsgs)",
         C(rxmsgs)},
        {"declstream_rdkafka_consumed_message_bytes_total", "counter",
         "librdkafka: message bytes received from brokers (rxmsg_bytes)", C(rxmsg_bytes)},
        {"declstream_rdkafka_fetch_queue_messages", "gauge",
         "librdkafka: messages fetched and waiting to be consumed, all partitions (fetchq_cnt)", C(fetchq_cnt)},
        {"declstream_rdkafka_fetch_queue_bytes", "gauge",
         "librdkafka: bytes fetched and waiting to be consumed, all partitions (fetchq_size)", C(fetchq_size)},
};
#undef C

#define B(f) offsetof(kbroker_t, f)
static const fam_t broker_fams[] = {
        {"declstream_rdkafka_broker_up", "gauge", "librdkafka: 1 when the connection to the broker is UP", B(up)},
        {"declstream_rdkafka_broker_outbuf_requests", "gauge", "librdkafka: requests waiting to be sent (outbuf_cnt)",
         B(outbuf_cnt)},
        {"declstream_rdkafka_broker_outbuf_messages", "gauge",
         "librdkafka: messages in requests waiting to be sent (outbuf_msg_cnt)", B(outbuf_msg_cnt)},
        {"declstream_rdkafka_broker_inflight_requests", "gauge",
         "librdkafka: requests awaiting a response (waitresp_cnt)", B(waitresp_cnt)},
        {"declstream_rdkafka_broker_requests_sent_total", "counter", "librdkafka: requests sent to the broker", B(tx)},
        {"declstream_rdkafka_broker_sent_bytes_total", "counter", "librdkafka: bytes sent to the broker", B(txbytes)},
        {"declstream_rdkafka_broker_send_errors_total", "counter", "librdkafka: transmission errors", B(txerrs)},
        {"declstream_rdkafka_broker_responses_received_total", "counter", "librdkafka: responses received", B(rx)},
        {"declstream_rdkafka_broker_received_bytes_total", "counter", "librdkafka: bytes received", B(rxbytes)},
        {"declstream_rdkafka_broker_receive_errors_total", "counter", "librdkafka: receive errors", B(rxerrs)},
        {"declstream_rdkafka_broker_request_timeouts_total", "counter", "librdkafka: requests that timed out",
         B(req_timeouts)},
        {"declstream_rdkafka_broker_connects_total", "counter", "librdkafka: connection attempts", B(connects)},
        {"declstream_rdkafka_broker_disconnects_total", "counter", "librdkafka: disconnects", B(disconnects)},
};
#undef B

static int fresh(const kclient_t *c, int64_t now) {
        return now - c->updated_ms <= 3 * c->interval_ms + 5000;
}

void ds_kstats_render(ds_buf_t *out) {
        /* copy under the lock, format without it */
        kclient_t *copy = malloc(MAX_CLIENTS * sizeof(*copy));
        int n = 0;
        if (!copy)
                return;
        uint64_t drop;
        int64_t now = ds_mono_ms();
        pthread_mutex_lock(&mtx);
        for (int i = 0; i < nclients; i++)
                if (fresh(&clients[i], now))
                        copy[n++] = clients[i];
        drop = dropped;
        pthread_mutex_unlock(&mtx);

        for (size_t f = 0; f < DS_ARRAY_LEN(client_fams); f++) {
                ds_prom_family(out, client_fams[f].name, client_fams[f].type, client_fams[f].help);
                for (int i = 0; i < n; i++) {
                        const char *labels[] = {"client", copy[i].name, "type", copy[i].type, NULL};
                        ds_prom_i64(out, client_fams[f].name, labels,
                                    *(const int64_t *)((const char *)&copy[i] + client_fams[f].off));
                }
        }
        ds_prom_family(out, "declstream_rdkafka_consumer_group_rebalances_total", "counter",
                       "librdkafka: consumer group rebalances (cgrp.rebalance_cnt)");
        for (int i = 0; i < n; i++)
                if (copy[i].has_cgrp) {
                        const char *labels[] = {"client", copy[i].name, NULL};
                        ds_prom_i64(out, "declstream_rdkafka_consumer_group_rebalances_total", labels,
                                    copy[i].rebalance_cnt);
                }
        ds_prom_family(out, "declstream_rdkafka_consumer_group_assigned_partitions", "gauge",
                       "librdkafka: partitions assigned to the consumer (cgrp.assignment_size)");
        for (int i = 0; i < n; i++)
                if (copy[i].has_cgrp) {
                        const char *labels[] = {"client", copy[i].name, "state", copy[i].cgrp_state, NULL};
                        ds_prom_i64(out, "declstream_rdkafka_consumer_group_assigned_partitions", labels,
                                    copy[i].assignment_size);
                }
        for (size_t f = 0; f < DS_ARRAY_LEN(broker_fams); f++) {
                ds_prom_family(out, broker_fams[f].name, broker_fams[f].type, broker_fams[f].help);
                for (int i = 0; i < n; i++)
                        for (int k = 0; k < copy[i].nbrokers; k++) {
                                const kbroker_t *kb = &copy[i].brokers[k];
                                const char *labels[] = {"client", copy[i].name, "broker", kb->name, NULL};
                                int64_t v = broker_fams[f].off == offsetof(kbroker_t, up)
                                                    ? kb->up
                                                    : *(const int64_t *)((const char *)kb + broker_fams[f].off);
                                ds_prom_i64(out, broker_fams[f].name, labels, v);
                        }
        }
        ds_prom_family(out, "declstream_rdkafka_broker_rtt_seconds", "gauge",
                       "librdkafka: request round-trip time over the last statistics interval (stat: avg, p50, p99)");
        for (int i = 0; i < n; i++)
                for (int k = 0; k < copy[i].nbrokers; k++) {
                        const kbroker_t *kb = &copy[i].brokers[k];
                        static const char *const stat[3] = {"avg", "p50", "p99"};
                        int64_t us[3] = {kb->rtt_avg, kb->rtt_p50, kb->rtt_p99};
                        for (int q = 0; q < 3; q++) {
                                const char *labels[] = {"client", copy[i].name, "broker", kb->name,
                                                        "stat",   stat[q],      NULL};
                                ds_prom_f64(out, "declstream_rdkafka_broker_rtt_seconds", labels, (double)us[q] / 1e6);
                        }
                }
        ds_prom_family(out, "declstream_rdkafka_statistics_dropped_total", "counter",
                       "librdkafka statistics documents not kept (more clients than the table holds)");
        ds_prom_u64(out, "declstream_rdkafka_statistics_dropped_total", NULL, drop);
        free(copy);
}
