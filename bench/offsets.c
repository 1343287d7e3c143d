/*
 * bench/offsets.c - low and high watermarks of topics, as JSON.
 *
 *   bench_offsets -b SERVERS [-t TOPIC ...] [--timeout-ms MS]
 *
 * For each topic (default customs.declarations) prints one JSON line:
 *   {"topic":T,"partitions":N,"messages":SUM(high-low),"high_sum":SUM(high),
 *    "low_nonzero":K,"low_max":L}
 * low_nonzero > 0 means the embedded broker deleted the head of K partitions
 * (it keeps 5 MiB per partition): a benchmark that read such a topic read
 * less than was produced, and ./bench/run marks its figures invalid.
 * Exit status: 0, 1 on a metadata or query error.
 */
#include <librdkafka/rdkafka.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
        const char *brokers = NULL;
        const char *topics[64];
        int ntopics = 0, timeout = 10000;
        for (int i = 1; i < argc; i++) {
                if ((!strcmp(argv[i], "-b") || !strcmp(argv[i], "--brokers")) && i + 1 < argc)
                        brokers = argv[++i];
                else if ((!strcmp(argv[i], "-t") || !strcmp(argv[i], "--topic")) && i + 1 < argc && ntopics < 64)
                        topics[ntopics++] = argv[++i];
                else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc)
                        timeout = atoi(argv[++i]);
                else {
                        fprintf(stderr, "usage: bench_offsets -b SERVERS [-t TOPIC ...] [--timeout-ms MS]\n");
                        return 2;
                }
        }
        if (!brokers) {
                fprintf(stderr, "bench_offsets: -b SERVERS is required\n");
                return 2;
        }
        if (!ntopics)
                topics[ntopics++] = "customs.declarations";
        char err[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
                fprintf(stderr, "bench_offsets: %s\n", err);
                return 2;
        }
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        if (!rk) {
                fprintf(stderr, "bench_offsets: %s\n", err);
                return 1;
        }
        int rc = 0;
        for (int t = 0; t < ntopics && !rc; t++) {
                rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topics[t], NULL);
                const rd_kafka_metadata_t *md = NULL;
                rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, timeout);
                if (e || md->topic_cnt != 1 || md->topics[0].err) {
                        fprintf(stderr, "bench_offsets: metadata of %s: %s\n", topics[t],
                                rd_kafka_err2str(e ? e : md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
                        rc = 1;
                } else {
                        int n = md->topics[0].partition_cnt;
                        int64_t sum = 0, hsum = 0, lmax = 0;
                        int lnz = 0;
                        for (int p = 0; p < n && !rc; p++) {
                                int64_t lo = -1, hi = -1;
                                e = rd_kafka_query_watermark_offsets(rk, topics[t], md->topics[0].partitions[p].id, &lo,
                                                                     &hi, timeout);
                                if (e) {
                                        fprintf(stderr, "bench_offsets: watermarks of %s [%d]: %s\n", topics[t], p,
                                                rd_kafka_err2str(e));
                                        rc = 1;
                                        break;
                                }
                                sum += hi - lo;
                                hsum += hi;
                                if (lo > 0)
                                        lnz++;
                                if (lo > lmax)
                                        lmax = lo;
                        }
                        if (!rc)
                                printf("{\"topic\":\"%s\",\"partitions\":%d,\"messages\":%" PRId64 ",\"high_sum\":%" PRId64
                                       ",\"low_nonzero\":%d,\"low_max\":%" PRId64 "}\n",
                                       topics[t], n, sum, hsum, lnz, lmax);
                }
                if (md)
                        rd_kafka_metadata_destroy(md);
                rd_kafka_topic_destroy(rkt);
        }
        rd_kafka_destroy(rk);
        return rc;
}
