/*
 * ds_cmd_gen.c - `declstream gen`: produce realistic declarations to Kafka.
 *
 * Two modes: --count N makes N declarations spread along the gates' daily
 * curve over --span-days of event time (fast, for tests and benchmarks);
 * --rate R [--duration S] paces R declarations per second stamped with the
 * wall clock (for demos and latency runs; until SIGINT when S is 0).
 *
 * After the last message it waits for every delivery, checks that the
 * broker deleted nothing (log start offset 0 on every partition), and only
 * then writes the truth file, so a truth file always describes data that is
 * entirely on the topic.
 *
 * With --file the same messages go to a replay file (ds_replay.h) instead of
 * Kafka, with --partitions chosen as the producer would (murmur2) and
 * offsets counted per partition: `declstream replay` then reads them.
 */
#include "ds_cmd.h"
#include "ds_common.h"
#include "ds_config.h"
#include "ds_gen.h"
#include "ds_kafka.h"
#include "ds_log.h"
#include "ds_replay.h"
#include "ds_signal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *out) {
        fprintf(out,
                "usage: declstream gen -b SERVERS (--count N | --rate R [--duration S]) [options]\n"
                "       declstream gen --file FILE --count N [--partitions P] [options]\n"
                "\n"
                "Produces realistic customs declarations (Avro, Confluent wire header, schema id 1, keyed by\n"
                "declaration_id) for the northern border gates, optionally mixed with malformed messages.\n"
                "\n"
                "  -b, --brokers SERVERS   bootstrap servers (required)\n"
                "  -t, --topic TOPIC       topic (default customs.declarations)\n"
                "  --file FILE             write the messages to a replay file instead of Kafka (with --count;\n"
                "                          `declstream replay --file FILE` reads it)\n"
                "  --partitions P          with --file: partitions to spread the messages over (default 12)\n"
                "  --count N               make N declarations over --span-days of event time, then stop\n"
                "                          (N and R take k and m: 200k, 1m)\n"
                "  --rate R                make R declarations per second, stamped with the wall clock\n"
                "  --duration S            with --rate: stop after S seconds (default 0: until SIGINT/SIGTERM)\n"
                "  --time-scale X          with --rate and --duration: event time runs X times faster than the\n"
                "                          wall clock and ends now (e.g. 360: 20 s of stream cover 2 hours)\n"
                "  --seed S                random seed (default 1); a seed reproduces the stream exactly\n"
                "  --bad-rate F            share of malformed messages, 0..1 (default 0): truncated Avro, wrong\n"
                "                          magic byte, unknown schema id, bad id, unknown gate, bad HS code, no\n"
                "                          items, negative weight or value, empty message, trailing bytes\n"
                "  --amend-rate F          share of declarations amended later, 1-3 times (default 0.05)\n"
                "  --cancel-rate F         share of declarations cancelled later (default 0.01)\n"
                "  --dup-rate F            share of events delivered twice (default 0.005)\n"
                "  --late-rate F           share of events delivered late (default 0.02)\n"
                "  --max-lateness MS       a late event arrives up to MS after its event time (default 7200000)\n"
                "  --amend-delay MS        mean delay before an amendment or cancellation (default 7200000 with\n"
                "                          --count, 30000 with --rate)\n"
                "  --truth FILE            write, as JSON, every row the valid messages must produce (every gate,\n"
                "                          heading and window), the distinct counts and top-10 lists, and the\n"
                "                          number of bad messages per reason\n"
                "  --span-days D           with --count: event time covered (default 1)\n"
                "  --start-ms MS           with --count: event time of the first declaration (default: now - span)\n"
                "  --heading-digits N      HS digits of a heading in the truth (default 4; match the processor)\n"
                "  --extra-headings K      add K synthetic headings to the 24 real ones (benchmarks)\n"
                "  --gates-file FILE       also draw from the gates of FILE (the processor's gates.file: CSV with\n"
                "                          gate_code and optionally weight, province, kind,\n"
                "                          customs_office_prefix)\n"
                "  -X prop=value           librdkafka producer property (repeatable)\n"
                "  -q, --quiet             no progress lines\n");
}

static _Atomic uint64_t g_failed, g_delivered;

/* Writes the truth file (via a temporary file renamed into place). */
static int write_truth(const ds_gen_t *g, const char *truth) {
        char tmp[4096], err[512];
        snprintf(tmp, sizeof(tmp), "%s.tmp", truth);
        FILE *f = fopen(tmp, "w");
        int werr = !f || ds_gen_write_truth(g, f, err, sizeof(err));
        if (f && fclose(f))
                werr = 1;
        if (werr || rename(tmp, truth)) {
                fprintf(stderr, "declstream gen: cannot write %s: %s\n", truth, f ? err : strerror(errno));
                return 1;
        }
        return 0;
}

/* --file: the generator's messages into a replay file. */
static int gen_to_file(const ds_gen_opts_t *o, const char *file, const char *truth, int quiet) {
        char err[512];
        ds_gen_t *g = ds_gen_new(o, err, sizeof(err));
        if (!g) {
                fprintf(stderr, "declstream gen: %s\n", err);
                return 2;
        }
        ds_replay_writer_t *w = ds_replay_writer_open(file, err, sizeof(err));
        if (!w) {
                fprintf(stderr, "declstream gen: %s\n", err);
                ds_gen_destroy(g);
                return 1;
        }
        int64_t *next_offset = calloc((size_t)o->partitions, sizeof(int64_t));
        int rc = next_offset ? 0 : 1;
        int64_t t0 = ds_mono_ms(), now = ds_now_ms();
        uint64_t bytes = 0, i = 0;
        ds_gen_msg_t m;
        while (!rc && !ds_stop_requested() && ds_gen_next(g, -1, &m)) {
                if ((++i & 1023) == 0)
                        now = ds_now_ms(); /* the record's timestamp, as a producer's CreateTime */
                if (ds_replay_write(w, m.partition, next_offset[m.partition]++, now, m.key, m.key_len, m.value,
                                    m.value_len, err, sizeof(err))) {
                        fprintf(stderr, "declstream gen: %s\n", err);
                        rc = 1;
                }
                bytes += m.value_len;
        }
        if (!rc && ds_stop_requested()) {
                fprintf(stderr, "declstream gen: interrupted; %s not written\n", file);
                rc = 1;
        }
        if (ds_replay_writer_close(w, !rc, err, sizeof(err))) {
                fprintf(stderr, "declstream gen: %s\n", err);
                rc = 1;
        }
        free(next_offset);
        double secs = (double)(ds_mono_ms() - t0) / 1000.0;
        if (!quiet || rc)
                ds_log(DS_LOG_INFO, "gen", "done",
                       "messages=%" PRIu64 " bad=%" PRIu64 " bytes=%" PRIu64 " seconds=%.2f file=%s partitions=%d",
                       ds_gen_made(g), ds_gen_bad(g), bytes, secs, file, o->partitions);
        if (!rc && truth)
                rc = write_truth(g, truth);
        ds_gen_destroy(g);
        return rc;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
        (void)rk;
        (void)opaque;
        if (m->err) {
                /* relaxed: plain counters, read after rd_kafka_flush() on the same thread */
                if (atomic_fetch_add_explicit(&g_failed, 1, memory_order_relaxed) < 5)
                        ds_log(DS_LOG_ERROR, "gen", "delivery failed", "error=\"%s\"", rd_kafka_err2str(m->err));
        } else {
                atomic_fetch_add_explicit(&g_delivered, 1, memory_order_relaxed);
        }
}

int ds_cmd_gen(int argc, char **argv) {
        ds_argv_t a = {argc, 0, argv, "gen"};
        const char *brokers = NULL, *topic = "customs.declarations", *truth = NULL, *file = NULL, *v;
        int64_t file_partitions = 12;
        int64_t count = 0, rate = 0, duration = 0, seed = 1, digits = 4, extra = 0, start_ms = INT64_MIN, scale = 1;
        double bad_rate = 0, span_days = 1, amend_rate = 0.05, cancel_rate = 0.01, dup_rate = 0.005,
               late_rate = 0.02;
        int64_t max_lateness = 2 * 3600 * 1000LL, amend_delay = -1;
        int quiet = 0;
        ds_kv_t props[128];
        int nprops = 0;
        while (a.i < argc) {
                int r;
                const char *arg = argv[a.i];
                if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
                        usage(stdout);
                        return 0;
                }
                if (!strcmp(arg, "-q") || !strcmp(arg, "--quiet")) {
                        quiet = 1;
                        a.i++;
                } else if ((r = ds_arg_value(&a, "-b", &v)) || (r = ds_arg_value(&a, "--brokers", &v))) {
                        if (r < 0)
                                return 2;
                        brokers = v;
                } else if ((r = ds_arg_value(&a, "-t", &v)) || (r = ds_arg_value(&a, "--topic", &v))) {
                        if (r < 0)
                                return 2;
                        topic = v;
                } else if ((r = ds_arg_value(&a, "--file", &v))) {
                        if (r < 0)
                                return 2;
                        file = v;
                } else if ((r = ds_arg_value(&a, "--partitions", &v))) {
                        if (r < 0 || ds_arg_i64("gen", "--partitions", v, 1, 65536, &file_partitions))
                                return 2;
                } else if ((r = ds_arg_value(&a, "--count", &v))) {
                        if (r < 0 || ds_arg_count("gen", "--count", v, 1, INT64_MAX / 2, &count))
                                return 2;
                } else if ((r = ds_arg_value(&a, "--rate", &v))) {
                        if (r < 0 || ds_arg_count("gen", "--rate", v, 1, 100000000, &rate))
                                return 2;
                } else if ((r = ds_arg_value(&a, "--duration", &v))) {
                        if (r < 0 || ds_arg_i64("gen", "--duration", v, 0, 86400 * 365, &duration))
                                return 2;
                } else if ((r = ds_arg_value(&a, "--time-scale", &v))) {
                        if (r < 0 || ds_arg_i64("gen", "--time-scale", v, 1, 1000000, &scale))
                                return 2;
                } else if ((r = ds_arg_value(&a, "--seed", &v))) {
                        if (r < 0 || ds_arg_i64("gen", "--seed", v, 0, INT64_MAX, &seed))
                                return 2;
                } else if ((r = ds_arg_value(&a, "--bad-rate", &v))) {
                        if (r < 0 || ds_arg_double("gen", "--bad-rate", v, 0, 1, &bad_rate))
                                return 2;
                } else if ((r = ds_arg_value(&a, "--amend-rate", &v))) {
                        if (r < 0 || ds_arg_double("gen", "--amend-rate", v, 0, 1, &amend_rate))
                                return 2;
                } else if ((r = ds_arg_value(&a, "--cancel-rate", &v))) {
                        if (r < 0 || ds_arg_double("gen", "--cancel-rate", v, 0, 1, &cancel_rate))
                                return 2;
                } else if ((r = ds_arg_value(&a, "--dup-rate", &v))) {
                        if (r < 0 || ds_arg_double("gen", "--dup-rate", v, 0, 1, &dup_rate))
                                return 2;
                } else if ((r = ds_arg_value(&a, "--late-rate", &v))) {
                        if (r < 0 || ds_arg_double("gen", "--late-rate", v, 0, 1, &late_rate))
                                return 2;
                } else if ((r = ds_arg_value(&a, "--max-lateness", &v))) {
                        if (r < 0 || ds_arg_i64("gen", "--max-lateness", v, 0, 400LL * 86400000, &max_lateness))
                                return 2;
                } else if ((r = ds_arg_value(&a, "--amend-delay", &v))) {
                        if (r < 0 || ds_arg_i64("gen", "--amend-delay", v, 1, 400LL * 86400000, &amend_delay))
                                return 2;
                } else if ((r = ds_arg_value(&a, "--truth", &v))) {
                        if (r < 0)
                                return 2;
                        truth = v;
                } else if ((r = ds_arg_value(&a, "--span-days", &v))) {
                        if (r < 0 || ds_arg_double("gen", "--span-days", v, 0.001, 3660, &span_days))
                                return 2;
                } else if ((r = ds_arg_value(&a, "--start-ms", &v))) {
                        if (r < 0 || ds_arg_i64("gen", "--start-ms", v, 0, INT64_MAX / 4, &start_ms))
                                return 2;
                } else if ((r = ds_arg_value(&a, "--heading-digits", &v))) {
                        if (r < 0 || ds_arg_i64("gen", "--heading-digits", v, 2, 8, &digits))
                                return 2;
                } else if ((r = ds_arg_value(&a, "--extra-headings", &v))) {
                        if (r < 0 || ds_arg_i64("gen", "--extra-headings", v, 0, 200000, &extra))
                                return 2;
                } else if ((r = ds_arg_value(&a, "--gates-file", &v))) {
                        if (r < 0 || ds_arg_gates_file("gen", v))
                                return 2;
                } else if ((r = ds_arg_value(&a, "-X", &v))) {
                        if (r < 0 || ds_arg_prop("gen", v, props, &nprops, (int)DS_ARRAY_LEN(props)))
                                return 2;
                } else {
                        fprintf(stderr, "declstream gen: unknown argument \"%s\" (see --help)\n", arg);
                        return 2;
                }
        }
        if (file && brokers) {
                fprintf(stderr, "declstream gen: give -b SERVERS or --file FILE, not both\n");
                return 2;
        }
        if (!brokers && !file) {
                fprintf(stderr, "declstream gen: -b SERVERS (or --file FILE) is required (see --help)\n");
                return 2;
        }
        if (file && !count) {
                fprintf(stderr, "declstream gen: --file goes with --count N\n");
                return 2;
        }
        if (!count == !rate) {
                fprintf(stderr, "declstream gen: give exactly one of --count or --rate\n");
                return 2;
        }
        if (duration && !rate) {
                fprintf(stderr, "declstream gen: --duration goes with --rate\n");
                return 2;
        }
        if (scale > 1 && (!rate || !duration)) {
                fprintf(stderr, "declstream gen: --time-scale goes with --rate and --duration\n");
                return 2;
        }
        if (digits & 1) {
                fprintf(stderr, "declstream gen: --heading-digits must be 2, 4, 6 or 8\n");
                return 2;
        }

        int64_t span_ms = (int64_t)(span_days * 86400000.0);
        ds_gen_opts_t o;
        ds_gen_opts_default(&o);
        o.seed = (uint64_t)seed;
        o.bad_rate = bad_rate;
        o.amend_rate = amend_rate;
        o.cancel_rate = cancel_rate;
        o.dup_rate = dup_rate;
        o.late_rate = late_rate;
        o.max_lateness_ms = max_lateness;
        o.amend_delay_ms = amend_delay > 0 ? amend_delay : rate ? 30000 : 2 * 3600 * 1000LL;
        o.heading_digits = (int)digits;
        o.start_ms = start_ms != INT64_MIN ? start_ms : ds_now_ms() - span_ms;
        o.span_ms = span_ms;
        o.count = (uint64_t)count;
        o.extra_headings = (int)extra;
        if (file) {
                for (int i = 0; i < nprops; i++)
                        free(props[i].key);
                o.partitions = (int32_t)file_partitions;
                return gen_to_file(&o, file, truth, quiet);
        }

        int rc = 0;
        char err[512];
        /* Large lz4 batches: the embedded broker scans a partition per fetch
         * and keeps 5 MiB per partition (FACTS.md). */
        const char *defaults[] = {"bootstrap.servers", brokers, "linger.ms", "20", "batch.num.messages", "10000",
                                  "batch.size", "1000000", "compression.codec", "lz4",
                                  "queue.buffering.max.messages", "1000000", "enable.idempotence", "true", NULL};
        rd_kafka_conf_t *conf = ds_kafka_conf(DS_KAFKA_PRODUCER, defaults, props, nprops, err, sizeof(err));
        for (int i = 0; i < nprops; i++)
                free(props[i].key);
        if (!conf) {
                fprintf(stderr, "declstream gen: %s\n", err);
                return 2;
        }
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        rd_kafka_t *rk = ds_kafka_new(DS_KAFKA_PRODUCER, conf, err, sizeof(err));
        if (!rk) {
                fprintf(stderr, "declstream gen: %s\n", err);
                return 1;
        }
        /* The generator picks partitions itself (murmur2, as the Java client
         * and `declstream run`'s publisher do), so its truth knows the order
         * of events in each partition. */
        int nparts = ds_kafka_partition_count(rk, topic, 10000, err, sizeof(err));
        if (nparts <= 0) {
                fprintf(stderr, "declstream gen: %s (does the topic exist?)\n", err);
                rd_kafka_destroy(rk);
                return 1;
        }

        o.partitions = nparts;
        ds_gen_t *g = ds_gen_new(&o, err, sizeof(err));
        if (!g) {
                fprintf(stderr, "declstream gen: %s\n", err);
                rd_kafka_destroy(rk);
                return 2;
        }
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);

        int64_t t0 = ds_mono_ms(), next_log = t0 + 5000;
        /* scaled event time ends at the wall clock: the processor never sees the future */
        int64_t sim0 = ds_now_ms() - (scale - 1) * duration * 1000;
        uint64_t bytes = 0, i = 0;
        while (!ds_stop_requested()) {
                int64_t now = ds_mono_ms();
                if (rate) {
                        if (duration && now - t0 >= duration * 1000)
                                break;
                        /* pace: message i is due at t0 + i / rate */
                        uint64_t due = (uint64_t)((now - t0) * rate / 1000) + 1;
                        if (i >= due) {
                                rd_kafka_poll(rk, 1);
                                continue;
                        }
                }
                ds_gen_msg_t m;
                int64_t at = rate ? (scale > 1 ? sim0 + (ds_mono_ms() - t0) * scale : ds_now_ms()) : -1;
                if (!ds_gen_next(g, at, &m))
                        break;
                for (;;) {
                        if (rd_kafka_produce(rkt, m.partition, RD_KAFKA_MSG_F_COPY, (void *)m.value,
                                             m.value_len, m.key, m.key_len, NULL) == 0)
                                break;
                        rd_kafka_resp_err_t e = rd_kafka_last_error();
                        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                                fprintf(stderr, "declstream gen: produce failed: %s\n", rd_kafka_err2str(e));
                                rc = 1;
                                goto done;
                        }
                        rd_kafka_poll(rk, 5);
                }
                bytes += m.value_len;
                i++;
                if ((i & 1023) == 0) {
                        rd_kafka_poll(rk, 0);
                        if (!quiet && now >= next_log) {
                                ds_log(DS_LOG_INFO, "gen", "progress", "produced=%" PRIu64 " rate_per_s=%.0f", i,
                                       (double)i * 1000.0 / (double)(now - t0 + 1));
                                next_log = now + 5000;
                        }
                }
        }
done:
        if (rd_kafka_flush(rk, 120000)) {
                fprintf(stderr, "declstream gen: not every message was delivered within 120 s\n");
                rc = 1;
        }
        uint64_t failed = atomic_load(&g_failed);
        if (failed) {
                fprintf(stderr, "declstream gen: %" PRIu64 " messages were not delivered\n", failed);
                rc = 1;
        }
        {
                int lost = ds_kafka_check_head(rk, topic, nparts, 10000, err, sizeof(err));
                if (lost != 0) {
                        fprintf(stderr,
                                "declstream gen: %s%s the broker has deleted the head of %d partition(s) of %s: the "
                                "data no longer fits (the embedded broker keeps 5 MiB per partition; use more "
                                "partitions)\n",
                                lost < 0 ? err : "", lost < 0 ? ";" : "", lost < 0 ? 0 : lost, topic);
                        rc = 1;
                }
        }
        double secs = (double)(ds_mono_ms() - t0) / 1000.0;
        ds_log(DS_LOG_INFO, "gen", "done",
               "messages=%" PRIu64 " bad=%" PRIu64 " delivered=%" PRIu64 " bytes=%" PRIu64
               " seconds=%.2f rate_per_s=%.0f topic=%s partitions=%d",
               ds_gen_made(g), ds_gen_bad(g), atomic_load(&g_delivered), bytes, secs,
               secs > 0 ? (double)ds_gen_made(g) / secs : 0, topic, nparts);
        if (truth && rc == 0)
                rc = write_truth(g, truth);
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
        ds_gen_destroy(g);
        return rc;
}
