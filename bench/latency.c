/*
 * bench/latency.c - steady-rate load and end-to-end latency, produce -> customs.totals.
 *
 *   bench_latency -b SERVERS --rate R --duration S [--warmup S] [--linger-ms MS]
 *                 [--drain-timeout S] [--seed N] [--json]
 *
 * Method. One thread both produces and watches the output, so send and
 * receive times come from one monotonic clock:
 *   - it makes NEW declarations with declstream's own generator (ds_gen, rate
 *     mode: no amendments, cancellations, duplicates, late or bad events, so
 *     every message adds exactly 1 to its gate's `declarations`), paced at R
 *     per second (message i is due at t0 + i/R), produced to the input topic
 *     (partitioner murmur2_random, as Java clients and declstream);
 *   - for each gate g it remembers the send time of its k-th declaration
 *     (cumulative count k, known exactly because this tool is the only
 *     producer);
 *   - it reads customs.totals from the beginning (no consumer group) and
 *     decodes each GATE|<g>|TOTAL|0 row's `declarations` field (Avro, schema
 *     id 2: dimension, key, window, window_start, declarations, ...). When
 *     that count reaches c, declarations k <= c of gate g are visible: each
 *     newly covered one gets latency = receive time - send time.
 * So every declaration gets a latency: from the produce call (before the
 * producer's linger) to the moment its effect on the published total is read
 * back by a client. It includes the producer's batching, broker, the
 * processor's commit cycle (commit.interval.ms), the merge interval
 * (merge.interval.ms), the output producer and this consumer's fetch.
 * Declarations sent during --warmup are counted but not measured.
 *
 * Preconditions (./bench/run sets them up): a fresh broker (or one whose
 * totals this tool already knows: the baseline read at start-up must be the
 * processor's final state), `declstream run` already assigned and running,
 * and nothing else producing to the input topic. A total above what was sent
 * is reported (foreign_declarations) and makes the run invalid.
 *
 * Output (--json): one line {"rate_target","rate_achieved","produced",
 * "measured","unseen","seconds","p50_ms","p90_ms","p99_ms","p999_ms",
 * "max_ms","mean_ms","foreign_declarations","produce_errors","queue_full",
 * "p50_first_half_ms","p50_second_half_ms"} - the p50 of the declarations sent
 * in each half of the measured period: a later half clearly slower than the
 * first means the processor fell behind (a growing backlog), not that it
 * sustained the rate.
 */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ds_common.h"
#include "ds_domain.h"
#include "ds_gen.h"

#define MAXG 64
#define HALF_SAMPLES (1u << 24)

typedef struct seqs { /* send times (mono ns) of one gate's declarations, in order */
        int64_t *t;
        uint64_t n, cap;
} seqs_t;

static volatile sig_atomic_t g_stop;
static void on_sig(int s) {
        (void)s;
        g_stop = 1;
}

static int rd_varint(const uint8_t **p, const uint8_t *end, int64_t *out) {
        uint64_t v = 0;
        for (int s = 0; s < 64 && *p < end; s += 7) {
                uint8_t b = *(*p)++;
                v |= (uint64_t)(b & 0x7f) << s;
                if (!(b & 0x80)) {
                        *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
                        return 0;
                }
        }
        return -1;
}

static int rd_string(const uint8_t **p, const uint8_t *end, const uint8_t **s, int64_t *len) {
        if (rd_varint(p, end, len) || *len < 0 || *len > end - *p)
                return -1;
        *s = *p;
        *p += *len;
        return 0;
}

/* Gate of a declaration message: header(5) id:string version:int kind:enum declared_at:long gate_code:string */
static int decl_gate(const uint8_t *v, size_t n) {
        if (n < 5 || v[0] != 0)
                return -1;
        const uint8_t *p = v + 5, *end = v + n, *s;
        int64_t len, x;
        if (rd_string(&p, end, &s, &len) || rd_varint(&p, end, &x) || rd_varint(&p, end, &x) ||
            rd_varint(&p, end, &x) || rd_string(&p, end, &s, &len))
                return -1;
        return ds_gate_lookup((const char *)s, (uint32_t)len);
}

/* declarations of a Total row: header(5) dimension:enum key:string window:enum window_start:long declarations:long */
static int total_decls(const uint8_t *v, size_t n, int64_t *decls) {
        if (n < 5 || v[0] != 0)
                return -1;
        const uint8_t *p = v + 5, *end = v + n, *s;
        int64_t x, len;
        if (rd_varint(&p, end, &x) || rd_string(&p, end, &s, &len) || rd_varint(&p, end, &x) ||
            rd_varint(&p, end, &x) || rd_varint(&p, end, decls))
                return -1;
        return 0;
}

static int cmp_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
        return x < y ? -1 : x > y;
}

static void usage(void) {
        fprintf(stderr,
                "usage: bench_latency -b SERVERS --rate R --duration S [--warmup S] [--linger-ms MS]\n"
                "                     [--drain-timeout S] [--seed N] [--input-topic T] [--output-topic T] [--json]\n"
                "Produces NEW declarations at R/s and measures, for each, the time until its gate's TOTAL row on\n"
                "the output topic counts it (see the comment at the top of bench/latency.c).\n");
}

int main(int argc, char **argv) {
        const char *brokers = NULL, *in_topic = "customs.declarations", *out_topic = "customs.totals";
        double rate = 0, duration = 0, warmup = 2, drain = 30;
        /* 20 ms, as `declstream gen`: at 10k/s over 48 partitions a 5 ms linger
         * sends one message per batch, and the embedded broker, which finds
         * offsets by scanning batches, slowed down as the log grew (10k/s, 15 s:
         * cycles 200 -> 840 ms, p99 2.3-4.0 s; with 20 ms: cycles flat, p99 1.7 s) */
        int linger = 20, json = 0;
        uint64_t seed = (uint64_t)ds_now_ms() ^ ((uint64_t)getpid() << 32);
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
                if (!strcmp(a, "--json")) {
                        json = 1;
                        continue;
                }
                if (!v) {
                        usage();
                        return 2;
                }
                i++;
                if (!strcmp(a, "-b") || !strcmp(a, "--brokers"))
                        brokers = v;
                else if (!strcmp(a, "--rate"))
                        rate = atof(v);
                else if (!strcmp(a, "--duration"))
                        duration = atof(v);
                else if (!strcmp(a, "--warmup"))
                        warmup = atof(v);
                else if (!strcmp(a, "--drain-timeout"))
                        drain = atof(v);
                else if (!strcmp(a, "--linger-ms"))
                        linger = atoi(v);
                else if (!strcmp(a, "--seed"))
                        seed = strtoull(v, NULL, 10);
                else if (!strcmp(a, "--input-topic"))
                        in_topic = v;
                else if (!strcmp(a, "--output-topic"))
                        out_topic = v;
                else {
                        usage();
                        return 2;
                }
        }
        if (!brokers || rate <= 0 || duration <= 0) {
                usage();
                return 2;
        }
        signal(SIGINT, on_sig);
        signal(SIGTERM, on_sig);
        ds_domain_init();
        int ngates = ds_gate_count();
        if (ngates > MAXG)
                ngates = MAXG;

        char err[512], lbuf[32];
        /* ---- producer */
        rd_kafka_conf_t *pc = rd_kafka_conf_new();
        snprintf(lbuf, sizeof(lbuf), "%d", linger);
        const char *pkv[] = {"bootstrap.servers", brokers, "linger.ms", lbuf, "batch.num.messages", "10000",
                             "compression.codec", "lz4", "queue.buffering.max.messages", "2000000",
                             "queue.buffering.max.kbytes", "2097151", "partitioner", "murmur2_random", NULL};
        for (int i = 0; pkv[i]; i += 2)
                if (rd_kafka_conf_set(pc, pkv[i], pkv[i + 1], err, sizeof(err)) != RD_KAFKA_CONF_OK) {
                        fprintf(stderr, "bench_latency: %s\n", err);
                        return 2;
                }
        rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
        if (!prod) {
                fprintf(stderr, "bench_latency: %s\n", err);
                return 1;
        }
        rd_kafka_topic_t *in_rkt = rd_kafka_topic_new(prod, in_topic, NULL);

        /* ---- consumer of the output topic, assigned from the beginning (no group) */
        rd_kafka_conf_t *cc = rd_kafka_conf_new();
        const char *ckv[] = {"bootstrap.servers", brokers, "group.id", "bench-latency", "enable.auto.commit", "false",
                             "fetch.wait.max.ms", "5", "fetch.error.backoff.ms", "5", "enable.partition.eof", "true",
                             "queued.min.messages", "1000000", "queued.max.messages.kbytes", "1000000", NULL};
        for (int i = 0; ckv[i]; i += 2)
                if (rd_kafka_conf_set(cc, ckv[i], ckv[i + 1], err, sizeof(err)) != RD_KAFKA_CONF_OK) {
                        fprintf(stderr, "bench_latency: %s\n", err);
                        return 2;
                }
        rd_kafka_t *cons = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof(err));
        if (!cons) {
                fprintf(stderr, "bench_latency: %s\n", err);
                return 1;
        }
        rd_kafka_topic_t *out_rkt = rd_kafka_topic_new(cons, out_topic, NULL);
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(cons, 0, out_rkt, &md, 10000);
        if (e || md->topic_cnt != 1 || md->topics[0].err) {
                fprintf(stderr, "bench_latency: no metadata for %s\n", out_topic);
                return 1;
        }
        int nout = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_partition_list_t *asg = rd_kafka_topic_partition_list_new(nout);
        for (int p = 0; p < nout; p++)
                rd_kafka_topic_partition_list_add(asg, out_topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
        if ((e = rd_kafka_assign(cons, asg))) {
                fprintf(stderr, "bench_latency: assign: %s\n", rd_kafka_err2str(e));
                return 1;
        }
        rd_kafka_topic_partition_list_destroy(asg);

        int64_t seen[MAXG] = {0}, base[MAXG] = {0};
        seqs_t sq[MAXG];
        memset(sq, 0, sizeof(sq));
        uint64_t foreign = 0, foreign_g[MAXG] = {0};

        /* ---- baseline: read the output topic to its end first */
        {
                int eofs = 0;
                int64_t t_end = ds_mono_ms() + 15000;
                while (eofs < nout && ds_mono_ms() < t_end && !g_stop) {
                        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 100);
                        if (!m)
                                continue;
                        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                eofs++;
                        else if (!m->err && m->key && m->key_len > 5 && !memcmp(m->key, "GATE|", 5)) {
                                const char *k = (const char *)m->key + 5;
                                size_t kl = m->key_len - 5;
                                const char *bar = memchr(k, '|', kl);
                                int64_t d;
                                if (bar && (size_t)(k + kl - bar) == 8 && !memcmp(bar, "|TOTAL|0", 8) &&
                                    !total_decls(m->payload, m->len, &d)) {
                                        int g = ds_gate_lookup(k, (uint32_t)(bar - k));
                                        if (g >= 0 && g < ngates && d > base[g])
                                                base[g] = d;
                                }
                        }
                        rd_kafka_message_destroy(m);
                }
                if (eofs < nout)
                        fprintf(stderr, "bench_latency: warning: output topic not read to its end in 15 s\n");
                memcpy(seen, base, sizeof(seen));
        }

        ds_gen_opts_t o;
        ds_gen_opts_default(&o);
        o.seed = seed;
        ds_gen_t *gen = ds_gen_new(&o, err, sizeof(err));
        if (!gen) {
                fprintf(stderr, "bench_latency: %s\n", err);
                return 1;
        }

        size_t lat_cap = (size_t)(rate * duration * 1.1) + 1024, nlat = 0, nh1 = 0, nh2 = 0;
        uint32_t *h1 = malloc(HALF_SAMPLES * sizeof(uint32_t)), *h2 = malloc(HALF_SAMPLES * sizeof(uint32_t));
        if (!h1 || !h2) {
                fprintf(stderr, "bench_latency: out of memory\n");
                return 1;
        }
        uint32_t *lat = malloc(lat_cap * sizeof(uint32_t));
        if (!lat) {
                fprintf(stderr, "bench_latency: out of memory\n");
                return 1;
        }
        uint64_t produced = 0, produce_errors = 0, queue_full = 0, skipped = 0;
        int64_t t0 = ds_mono_ns(), t_meas = t0 + (int64_t)(warmup * 1e9);
        int64_t t_stop = t_meas + (int64_t)(duration * 1e9);
        int64_t t_prod_end = 0, t_drain_end = 0;
        rd_kafka_queue_t *cq = rd_kafka_queue_get_consumer(cons);
        rd_kafka_message_t *batch[4096];
        int producing = 1;
        uint64_t target_total = 0;
        for (;;) {
                int64_t now = ds_mono_ns();
                if (g_stop)
                        producing = 0;
                if (producing && now >= t_stop) {
                        producing = 0;
                        t_prod_end = now;
                }
                if (!producing && !t_drain_end) {
                        if (!t_prod_end)
                                t_prod_end = now;
                        rd_kafka_flush(prod, 30000);
                        t_drain_end = ds_mono_ns() + (int64_t)(drain * 1e9);
                }
                /* produce what is due, at most ~1 ms of work per burst */
                if (producing) {
                        uint64_t due = (uint64_t)((double)(now - t0) * rate / 1e9) + 1;
                        int64_t burst_end = now + 1000000;
                        while (produced < due) {
                                ds_gen_msg_t m;
                                int64_t ts = ds_mono_ns();
                                if (!ds_gen_next(gen, ds_now_ms(), &m))
                                        break;
                                if (m.kind != DS_KIND_NEW || m.bad != DS_DLQ_NONE) {
                                        skipped++; /* none with these options; kept out of the counts */
                                        continue;
                                }
                                int g = decl_gate(m.value, m.value_len);
                                if (g < 0 || g >= ngates) {
                                        skipped++;
                                        continue;
                                }
                                while (rd_kafka_produce(in_rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                                                        (void *)m.value, m.value_len, m.key, m.key_len, NULL)) {
                                        if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                                                produce_errors++;
                                                break;
                                        }
                                        queue_full++;
                                        rd_kafka_poll(prod, 1);
                                }
                                seqs_t *s = &sq[g];
                                if (s->n == s->cap) {
                                        s->cap = s->cap ? s->cap * 2 : 65536;
                                        s->t = realloc(s->t, s->cap * sizeof(int64_t));
                                        if (!s->t) {
                                                fprintf(stderr, "bench_latency: out of memory\n");
                                                return 1;
                                        }
                                }
                                s->t[s->n++] = ts;
                                produced++;
                                if ((produced & 255) == 0 && ds_mono_ns() > burst_end)
                                        break;
                        }
                        rd_kafka_poll(prod, 0);
                }
                /* read what the output topic has */
                int64_t wait_ms = producing ? 0 : 10;
                if (producing) {
                        int64_t next_due = t0 + (int64_t)((double)(produced) * 1e9 / rate);
                        int64_t idle = (next_due - ds_mono_ns()) / 1000000;
                        wait_ms = idle > 1 ? 1 : idle > 0 ? idle : 0;
                }
                ssize_t nm = rd_kafka_consume_batch_queue(cq, (int)wait_ms, batch, 4096);
                int64_t rt = ds_mono_ns();
                for (ssize_t i = 0; i < nm; i++) {
                        rd_kafka_message_t *m = batch[i];
                        if (!m->err && m->key && m->key_len > 5 && !memcmp(m->key, "GATE|", 5)) {
                                const char *k = (const char *)m->key + 5;
                                size_t kl = m->key_len - 5;
                                const char *bar = memchr(k, '|', kl);
                                int64_t d;
                                if (bar && (size_t)(k + kl - bar) == 8 && !memcmp(bar, "|TOTAL|0", 8) &&
                                    !total_decls(m->payload, m->len, &d)) {
                                        int g = ds_gate_lookup(k, (uint32_t)(bar - k));
                                        if (g >= 0 && g < ngates && d > seen[g]) {
                                                /* a total can only count declarations already sent:
                                                 * anything above is someone else's */
                                                int64_t mine = d - base[g];
                                                if (mine > (int64_t)sq[g].n) {
                                                        if ((uint64_t)(mine - (int64_t)sq[g].n) > foreign_g[g])
                                                                foreign_g[g] = (uint64_t)(mine - (int64_t)sq[g].n);
                                                        mine = (int64_t)sq[g].n;
                                                }
                                                for (int64_t j = seen[g] - base[g]; j < mine; j++) {
                                                        int64_t ts = sq[g].t[j];
                                                        if (ts < t_meas)
                                                                continue;
                                                        if (nlat == lat_cap) {
                                                                lat_cap *= 2;
                                                                lat = realloc(lat, lat_cap * sizeof(uint32_t));
                                                                if (!lat)
                                                                        return 1;
                                                        }
                                                        int64_t us = (rt - ts) / 1000;
                                                        uint32_t v = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
                                                        lat[nlat++] = v;
                                                        /* p50 by half of the measured period: a backlog that
                                                         * grows shows as a later half slower than the first */
                                                        if (ts < t_meas + (t_stop - t_meas) / 2) {
                                                                if (nh1 < HALF_SAMPLES)
                                                                        h1[nh1++] = v;
                                                        } else if (nh2 < HALF_SAMPLES)
                                                                h2[nh2++] = v;
                                                }
                                                if (base[g] + mine > seen[g])
                                                        seen[g] = base[g] + mine;
                                        }
                                }
                        }
                        rd_kafka_message_destroy(m);
                }
                if (!producing) {
                        target_total = 0;
                        uint64_t got = 0;
                        for (int g = 0; g < ngates; g++) {
                                target_total += sq[g].n;
                                int64_t mine = seen[g] - base[g];
                                got += (uint64_t)(mine < 0 ? 0 : mine > (int64_t)sq[g].n ? (int64_t)sq[g].n : mine);
                        }
                        if (got >= target_total || ds_mono_ns() >= t_drain_end || g_stop > 1)
                                break;
                        if (g_stop) /* a second signal stops the drain */
                                g_stop = 2;
                }
        }
        uint64_t unseen = 0;
        for (int g = 0; g < ngates; g++) {
                foreign += foreign_g[g];
                int64_t mine = seen[g] - base[g];
                if ((uint64_t)(mine < 0 ? 0 : mine) < sq[g].n)
                        unseen += sq[g].n - (uint64_t)(mine < 0 ? 0 : mine);
        }
        double secs = (double)(t_prod_end - t0) / 1e9;
        qsort(lat, nlat, sizeof(uint32_t), cmp_u32);
        qsort(h1, nh1, sizeof(uint32_t), cmp_u32);
        qsort(h2, nh2, sizeof(uint32_t), cmp_u32);
        double p50_h1 = nh1 ? h1[nh1 / 2] / 1000.0 : -1, p50_h2 = nh2 ? h2[nh2 / 2] / 1000.0 : -1;
#define PCT(q) (nlat ? lat[(size_t)fmin((double)nlat - 1, floor((q) * (double)nlat))] / 1000.0 : -1.0)
        double mean = 0;
        for (size_t i = 0; i < nlat; i++)
                mean += lat[i];
        mean = nlat ? mean / (double)nlat / 1000.0 : -1;
        if (json)
                printf("{\"rate_target\":%.0f,\"rate_achieved\":%.0f,\"produced\":%" PRIu64 ",\"measured\":%zu,"
                       "\"unseen\":%" PRIu64 ",\"seconds\":%.3f,\"warmup_s\":%.1f,\"linger_ms\":%d,"
                       "\"p50_ms\":%.1f,\"p90_ms\":%.1f,\"p99_ms\":%.1f,\"p999_ms\":%.1f,\"max_ms\":%.1f,"
                       "\"mean_ms\":%.1f,\"foreign_declarations\":%" PRIu64 ",\"produce_errors\":%" PRIu64
                       ",\"queue_full\":%" PRIu64 ",\"skipped\":%" PRIu64
                       ",\"p50_first_half_ms\":%.1f,\"p50_second_half_ms\":%.1f}\n",
                       rate, secs > 0 ? (double)produced / secs : 0, produced, nlat, unseen, secs, warmup, linger,
                       PCT(0.5), PCT(0.9), PCT(0.99), PCT(0.999), nlat ? lat[nlat - 1] / 1000.0 : -1.0, mean,
                       foreign, produce_errors, queue_full, skipped, p50_h1, p50_h2);
        else
                printf("rate %.0f/s target, %.0f/s achieved; %" PRIu64 " produced, %zu measured, %" PRIu64
                       " unseen; latency ms p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f\n",
                       rate, secs > 0 ? (double)produced / secs : 0, produced, nlat, unseen, PCT(0.5), PCT(0.9),
                       PCT(0.99), PCT(0.999), nlat ? lat[nlat - 1] / 1000.0 : -1.0);
        rd_kafka_queue_destroy(cq);
        rd_kafka_topic_destroy(out_rkt);
        rd_kafka_consumer_close(cons);
        rd_kafka_destroy(cons);
        rd_kafka_topic_destroy(in_rkt);
        rd_kafka_destroy(prod);
        ds_gen_destroy(gen);
        for (int g = 0; g < ngates; g++)
                free(sq[g].t);
        free(lat);
        free(h1);
        free(h2);
        return (unseen || foreign || produce_errors) ? 3 : 0;
}
