/*
 * ds_cmd_dump.c - `declstream dump`: archive a topic into a replay file.
 *
 * Reads every partition of the topic from its beginning (assigned, not
 * subscribed: no consumer group membership, nothing committed) and writes
 * each message - partition, offset, timestamp, key, value - to a replay file
 * (ds_replay.h), which `declstream replay` feeds through the processor's
 * worker path. Stops when every partition has reached its end
 * (--exit-on-eof), or on SIGINT/SIGTERM; either way the file holds every
 * message read so far and is complete (written aside, renamed into place).
 */
#include "ds_cmd.h"
#include "ds_common.h"
#include "ds_config.h"
#include "ds_kafka.h"
#include "ds_log.h"
#include "ds_replay.h"
#include "ds_signal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out) {
        fprintf(out,
                "usage: declstream dump -b SERVERS --file FILE [--topic TOPIC] [--exit-on-eof] [options]\n"
                "\n"
                "Archives a topic, from the beginning of every partition, into a replay file for\n"
                "`declstream replay` (format: processor/ds_replay.h). Joins no consumer group, commits nothing.\n"
                "\n"
                "  -b, --brokers SERVERS   bootstrap servers (required)\n"
                "  -t, --topic TOPIC       topic (default customs.declarations)\n"
                "  -f, --file FILE         the replay file to write (required)\n"
                "  --exit-on-eof           stop when every partition has been read to its end (default: run\n"
                "                          until SIGINT/SIGTERM, then write what was read)\n"
                "  -X prop=value           librdkafka consumer property (repeatable)\n"
                "  -q, --quiet             no progress lines\n");
}

int ds_cmd_dump(int argc, char **argv) {
        ds_argv_t a = {argc, 0, argv, "dump"};
        const char *brokers = NULL, *topic = "customs.declarations", *file = NULL, *v;
        int exit_on_eof = 0, quiet = 0;
        ds_kv_t props[128];
        int nprops = 0, rc = 2;
        while (a.i < argc) {
                int r;
                const char *arg = argv[a.i];
                if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
                        usage(stdout);
                        rc = 0;
                        goto out_props;
                }
                if (!strcmp(arg, "--exit-on-eof")) {
                        exit_on_eof = 1;
                        a.i++;
                } else if (!strcmp(arg, "-q") || !strcmp(arg, "--quiet")) {
                        quiet = 1;
                        a.i++;
                } else if ((r = ds_arg_value(&a, "-b", &v)) || (r = ds_arg_value(&a, "--brokers", &v))) {
                        if (r < 0)
                                goto out_props;
                        brokers = v;
                } else if ((r = ds_arg_value(&a, "-t", &v)) || (r = ds_arg_value(&a, "--topic", &v))) {
                        if (r < 0)
                                goto out_props;
                        topic = v;
                } else if ((r = ds_arg_value(&a, "-f", &v)) || (r = ds_arg_value(&a, "--file", &v))) {
                        if (r < 0)
                                goto out_props;
                        file = v;
                } else if ((r = ds_arg_value(&a, "-X", &v))) {
                        if (r < 0 || ds_arg_prop("dump", v, props, &nprops, (int)DS_ARRAY_LEN(props)))
                                goto out_props;
                } else {
                        fprintf(stderr, "declstream dump: unknown argument \"%s\" (see --help)\n", arg);
                        goto out_props;
                }
        }
        if (!brokers || !file) {
                fprintf(stderr, "declstream dump: %s is required (see --help)\n", !brokers ? "-b SERVERS" : "--file FILE");
                goto out_props;
        }

        char err[512];
        /* a group.id only because assign() wants one; nothing is committed.
         * Large prefetch limits: librdkafka 2.0.2 backs off 1 s when a slower
         * reader lets its queue fill (FACTS.md). */
        const char *defaults[] = {"bootstrap.servers", brokers, "group.id", "declstream.dump", "enable.auto.commit",
                                  "false", "enable.partition.eof", "true", "auto.offset.reset", "earliest",
                                  "queued.min.messages", "1000000", "queued.max.messages.kbytes", "2000000",
                                  "fetch.wait.max.ms", "100", NULL};
        rd_kafka_conf_t *conf = ds_kafka_conf(DS_KAFKA_CONSUMER, defaults, props, nprops, err, sizeof(err));
        if (!conf) {
                fprintf(stderr, "declstream dump: %s\n", err);
                goto out_props;
        }
        rc = 1;
        rd_kafka_t *rk = ds_kafka_new(DS_KAFKA_CONSUMER, conf, err, sizeof(err));
        if (!rk) {
                fprintf(stderr, "declstream dump: %s\n", err);
                goto out_props;
        }
        int nparts = ds_kafka_partition_count(rk, topic, 10000, err, sizeof(err));
        if (nparts <= 0) {
                fprintf(stderr, "declstream dump: %s (does the topic exist?)\n", err);
                rd_kafka_destroy(rk);
                goto out_props;
        }
        for (int p = 0; p < nparts; p++) {
                int64_t lo, hi;
                if (!rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000) && lo > 0)
                        ds_log(DS_LOG_WARN, "dump", "the broker has deleted the head of a partition: the archive "
                                                    "starts later",
                               "topic=%s partition=%d log_start_offset=%" PRId64, topic, p, lo);
        }
        ds_replay_writer_t *w = ds_replay_writer_open(file, err, sizeof(err));
        uint8_t *eof = calloc((size_t)nparts, 1);
        rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(nparts);
        for (int p = 0; p < nparts; p++)
                rd_kafka_topic_partition_list_add(tp, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_resp_err_t aerr = rd_kafka_assign(rk, tp);
        rd_kafka_topic_partition_list_destroy(tp);
        if (!w || !eof || aerr) {
                fprintf(stderr, "declstream dump: %s\n",
                        !w ? err : !eof ? "out of memory" : rd_kafka_err2str(aerr));
                if (w)
                        ds_replay_writer_close(w, 0, err, sizeof(err));
                free(eof);
                rd_kafka_destroy(rk);
                goto out_props;
        }
        rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
        enum { BATCH = 10000 };
        rd_kafka_message_t **batch = malloc(BATCH * sizeof(*batch));
        int neof = 0, failed = !batch;
        uint64_t bytes = 0, errors = 0;
        int64_t t0 = ds_mono_ms(), next_log = t0 + 5000;
        while (!failed && !ds_stop_requested() && !(exit_on_eof && neof == nparts)) {
                ssize_t n = rd_kafka_consume_batch_queue(q, 200, batch, BATCH);
                for (ssize_t i = 0; i < n; i++) {
                        rd_kafka_message_t *m = batch[i];
                        int32_t p = m->partition;
                        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                                if (p >= 0 && p < nparts && !eof[p]) {
                                        eof[p] = 1;
                                        neof++;
                                }
                        } else if (m->err) {
                                if (errors++ < 10)
                                        ds_log(DS_LOG_WARN, "dump", "consume error", "partition=%d error=\"%s\"", p,
                                               rd_kafka_message_errstr(m));
                        } else if (!failed) {
                                if (p >= 0 && p < nparts && eof[p]) {
                                        eof[p] = 0; /* new messages after its end */
                                        neof--;
                                }
                                if (ds_replay_write(w, p, m->offset, rd_kafka_message_timestamp(m, NULL), m->key,
                                                    m->key_len, m->payload, m->len, err, sizeof(err))) {
                                        fprintf(stderr, "declstream dump: %s\n", err);
                                        failed = 1;
                                }
                                bytes += m->len;
                        }
                        rd_kafka_message_destroy(m);
                }
                int64_t now = ds_mono_ms();
                if (!quiet && now >= next_log) {
                        ds_log(DS_LOG_INFO, "dump", "progress", "messages=%" PRIu64 " partitions_at_end=%d/%d",
                               ds_replay_writer_count(w), neof, nparts);
                        next_log = now + 5000;
                }
        }
        uint64_t count = ds_replay_writer_count(w);
        free(batch);
        rd_kafka_queue_destroy(q);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        free(eof);
        if (ds_replay_writer_close(w, !failed, err, sizeof(err))) {
                fprintf(stderr, "declstream dump: %s\n", err);
                failed = 1;
        }
        if (!quiet || failed)
                ds_log(failed ? DS_LOG_ERROR : DS_LOG_INFO, "dump", failed ? "failed" : "done",
                       "messages=%" PRIu64 " bytes=%" PRIu64 " seconds=%.2f topic=%s partitions=%d file=%s", count,
                       bytes, (double)(ds_mono_ms() - t0) / 1000.0, topic, nparts, file);
        rc = failed ? 1 : 0;
out_props:
        for (int i = 0; i < nprops; i++)
                free(props[i].key);
        return rc;
}
