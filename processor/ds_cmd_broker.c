/*
 * ds_cmd_broker.c - `declstream broker`: librdkafka's mock cluster as the
 * embedded default broker.
 *
 * The mock cluster speaks the Kafka protocol on loopback to any client
 * (kcat, librdkafka, Java). It keeps data in memory only, at most 5 MiB and
 * 100,000 batches per partition (older data is deleted silently), never
 * compacts, and does not keep transactional promises: it is for development,
 * demos, tests and benchmarks. Production points at a real Kafka cluster.
 */
#include "ds_cmd.h"
#include "ds_common.h"
#include "ds_log.h"
#include "ds_signal.h"

#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *out) {
        fprintf(out,
                "usage: declstream broker [--brokers N] [--partitions P] [--bootstrap-file PATH]\n"
                "                         [--topic NAME:PARTITIONS ...]\n"
                "\n"
                "Starts the embedded default broker: librdkafka's mock Kafka cluster on loopback, with\n"
                "declstream's topics created. Prints the bootstrap servers as the first line of stdout\n"
                "(and writes them to PATH), then runs until SIGINT/SIGTERM.\n"
                "\n"
                "  --brokers N            brokers in the cluster (default 1)\n"
                "  --partitions P         partitions of customs.declarations and of the other topics (default 12;\n"
                "                         customs.merge.state gets as many as customs.totals.partial)\n"
                "  --bootstrap-file PATH  also write the bootstrap servers to PATH\n"
                "  --topic NAME:P         create topic NAME with P partitions (repeatable); also changes the\n"
                "                         partitions of one of declstream's topics\n"
                "  --control PATH         create a FIFO at PATH and read fault-injection commands from it, one per\n"
                "                         line (for tests):\n"
                "                           down B | up B            broker B (1..N) down or up\n"
                "                           rtt B MS                 add MS of round-trip time to broker B\n"
                "                           error API N ERROR        the next N requests of API (Produce, Fetch,\n"
                "                                                    Metadata, OffsetCommit, ...) fail with ERROR\n"
                "                                                    (a Kafka error name, e.g. "
                "NOT_LEADER_FOR_PARTITION)\n"
                "                           clear API                drop the pending errors of API\n"
                "                           leader TOPIC P B         move partition P's leadership to broker B\n"
                "                           coordinator GROUP B      move GROUP's coordinator to broker B\n"
                "\n"
                "Data is kept in memory only, at most 5 MiB and 100,000 batches per partition: beyond that the\n"
                "oldest messages are deleted silently. Use enough partitions for the data you load. This broker is\n"
                "for development, demos, tests and benchmarks; production uses a real Kafka cluster.\n");
}

static int create_topic(rd_kafka_mock_cluster_t *mc, const char *name, int partitions, int rf) {
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, name, partitions, rf);
        if (err) {
                fprintf(stderr, "declstream broker: cannot create topic %s: %s\n", name, rd_kafka_err2str(err));
                return -1;
        }
        ds_log(DS_LOG_INFO, "broker", "topic created", "topic=%s partitions=%d replication_factor=%d", name,
               partitions, rf);
        return 0;
}

/* ---- fault injection -------------------------------------------------------- */

static const struct {
        const char *name;
        int16_t key;
} apis[] = {{"Produce", 0},          {"Fetch", 1},          {"ListOffsets", 2},      {"Metadata", 3},
            {"OffsetCommit", 8},     {"OffsetFetch", 9},    {"FindCoordinator", 10}, {"JoinGroup", 11},
            {"Heartbeat", 12},       {"LeaveGroup", 13},    {"SyncGroup", 14},       {"InitProducerId", 22},
            {"AddPartitionsToTxn", 24}, {"EndTxn", 26},     {"TxnOffsetCommit", 28}};

static int api_key(const char *name) {
        for (size_t i = 0; i < DS_ARRAY_LEN(apis); i++)
                if (!strcmp(apis[i].name, name))
                        return apis[i].key;
        return -1;
}

static int err_code(const char *name) {
        const struct rd_kafka_err_desc *d;
        size_t n;
        rd_kafka_get_err_descs(&d, &n);
        for (size_t i = 0; i < n; i++)
                if (d[i].name && !strcmp(d[i].name, name))
                        return d[i].code;
        return -1;
}

typedef struct control {
        rd_kafka_mock_cluster_t *mc;
        const char *path;
        int brokers;
} control_t;

/* Set before the cluster is destroyed: late commands are ignored. */
static volatile int g_stopping;

static void control_exec(control_t *c, char *line) {
        char a[128] = "", b[128] = "", d[128] = "";
        long x = 0, y = 0;
        line[strcspn(line, "\r\n")] = '\0';
        if (!*line)
                return;
        int ok = 0;
        if (sscanf(line, "down %ld", &x) == 1 && x >= 1 && x <= c->brokers)
                ok = !rd_kafka_mock_broker_set_down(c->mc, (int32_t)x);
        else if (sscanf(line, "up %ld", &x) == 1 && x >= 1 && x <= c->brokers)
                ok = !rd_kafka_mock_broker_set_up(c->mc, (int32_t)x);
        else if (sscanf(line, "rtt %ld %ld", &x, &y) == 2 && x >= 1 && x <= c->brokers && y >= 0)
                ok = !rd_kafka_mock_broker_set_rtt(c->mc, (int32_t)x, (int)y);
        else if (sscanf(line, "error %127s %ld %127s", a, &x, b) == 3 && api_key(a) >= 0 && x > 0 && x <= 100000 &&
                 err_code(b) >= 0) {
                rd_kafka_resp_err_t *errs = malloc((size_t)x * sizeof(*errs));
                if (errs) {
                        for (long i = 0; i < x; i++)
                                errs[i] = (rd_kafka_resp_err_t)err_code(b);
                        rd_kafka_mock_push_request_errors_array(c->mc, (int16_t)api_key(a), (size_t)x, errs);
                        free(errs);
                        ok = 1;
                }
        } else if (sscanf(line, "clear %127s", a) == 1 && api_key(a) >= 0) {
                rd_kafka_mock_clear_request_errors(c->mc, (int16_t)api_key(a));
                ok = 1;
        } else if (sscanf(line, "leader %127s %ld %ld", d, &x, &y) == 3 && y >= 1 && y <= c->brokers) {
                ok = !rd_kafka_mock_partition_set_leader(c->mc, d, (int32_t)x, (int32_t)y);
        } else if (sscanf(line, "coordinator %127s %ld", d, &x) == 2 && x >= 1 && x <= c->brokers) {
                ok = !rd_kafka_mock_coordinator_set(c->mc, "group", d, (int32_t)x);
        }
        char q[512];
        if (ok)
                ds_log(DS_LOG_INFO, "broker", "fault injected", "command=\"%s\"", ds_log_quote(q, sizeof(q), line));
        else
                ds_log(DS_LOG_WARN, "broker", "control command not understood", "command=\"%s\"",
                       ds_log_quote(q, sizeof(q), line));
}

static void *control_main(void *arg) {
        control_t *c = arg;
        ds_thread_name("control", -1);
        /* O_RDWR: the FIFO never reports end-of-file when a writer closes */
        int fd = open(c->path, O_RDWR);
        if (fd < 0) {
                ds_log(DS_LOG_ERROR, "broker", "cannot open the control FIFO", "path=%s error=\"%s\"", c->path,
                       strerror(errno));
                return NULL;
        }
        FILE *f = fdopen(fd, "r");
        char line[512];
        while (f && fgets(line, sizeof(line), f) && !g_stopping)
                control_exec(c, line);
        if (f)
                fclose(f);
        return NULL;
}

int ds_cmd_broker(int argc, char **argv) {
        ds_argv_t a = {argc, 0, argv, "broker"};
        int64_t brokers = 1, partitions = 12;
        const char *bootstrap_file = NULL, *control = NULL, *v;
        const char *extra[64];
        int nextra = 0;
        while (a.i < argc) {
                int r;
                if (!strcmp(argv[a.i], "--help") || !strcmp(argv[a.i], "-h")) {
                        usage(stdout);
                        return 0;
                }
                if ((r = ds_arg_value(&a, "--brokers", &v))) {
                        if (r < 0 || ds_arg_i64("broker", "--brokers", v, 1, 16, &brokers))
                                return 2;
                } else if ((r = ds_arg_value(&a, "--partitions", &v))) {
                        if (r < 0 || ds_arg_i64("broker", "--partitions", v, 1, 10000, &partitions))
                                return 2;
                } else if ((r = ds_arg_value(&a, "--bootstrap-file", &v))) {
                        if (r < 0)
                                return 2;
                        bootstrap_file = v;
                } else if ((r = ds_arg_value(&a, "--control", &v))) {
                        if (r < 0)
                                return 2;
                        control = v;
                } else if ((r = ds_arg_value(&a, "--topic", &v))) {
                        if (r < 0)
                                return 2;
                        if (nextra == (int)DS_ARRAY_LEN(extra)) {
                                fprintf(stderr, "declstream broker: too many --topic flags\n");
                                return 2;
                        }
                        extra[nextra++] = v;
                } else {
                        fprintf(stderr, "declstream broker: unknown argument \"%s\" (see --help)\n", argv[a.i]);
                        return 2;
                }
        }

        char err[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "client.id", "declstream-broker", err, sizeof(err));
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        if (!rk) {
                fprintf(stderr, "declstream broker: %s\n", err);
                return 1;
        }
        rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, (int)brokers);
        if (!mc) {
                fprintf(stderr, "declstream broker: cannot start the mock cluster\n");
                rd_kafka_destroy(rk);
                return 1;
        }
        int rf = brokers < 3 ? (int)brokers : 3;
        int P = (int)partitions;
        int rc = 0;
        /* declstream's topics, with P partitions unless a --topic names them */
        static const char *const defaults[] = {"customs.declarations", "customs.declarations.dlq", "customs.totals",
                                               "customs.top_headings", "customs.totals.partial",   "customs.state",
                                               "customs.merge.state"};
        char names[64][256];
        int64_t counts[64];
        for (int i = 0; i < nextra && !rc; i++) {
                const char *colon = strrchr(extra[i], ':');
                counts[i] = P;
                if (colon) {
                        snprintf(names[i], sizeof(names[i]), "%.*s", (int)(colon - extra[i]), extra[i]);
                        if (ds_arg_i64("broker", "--topic", colon + 1, 1, 10000, &counts[i]))
                                rc = 2;
                } else {
                        snprintf(names[i], sizeof(names[i]), "%s", extra[i]);
                }
                if (!rc && !names[i][0]) {
                        fprintf(stderr, "declstream broker: --topic needs a name\n");
                        rc = 2;
                }
        }
        /* the merge's snapshots need a partition for each partial one */
        int partial_p = P;
        for (int i = 0; i < nextra; i++)
                if (!strcmp(names[i], "customs.totals.partial"))
                        partial_p = (int)counts[i];
        for (size_t d = 0; d < DS_ARRAY_LEN(defaults) && !rc; d++) {
                int overridden = 0;
                for (int i = 0; i < nextra; i++)
                        overridden |= !strcmp(names[i], defaults[d]);
                if (!overridden &&
                    create_topic(mc, defaults[d], strcmp(defaults[d], "customs.merge.state") ? P : partial_p, rf))
                        rc = 1;
        }
        for (int i = 0; i < nextra && !rc; i++)
                if (create_topic(mc, names[i], (int)counts[i], rf))
                        rc = 1;
        const char *bs = rd_kafka_mock_cluster_bootstraps(mc);
        if (!rc && bootstrap_file) {
                char tmp[4096];
                snprintf(tmp, sizeof(tmp), "%s.tmp.%d", bootstrap_file, (int)getpid());
                FILE *f = fopen(tmp, "w");
                if (!f || fprintf(f, "%s\n", bs) < 0 || fclose(f) || rename(tmp, bootstrap_file)) {
                        fprintf(stderr, "declstream broker: cannot write %s: %s\n", bootstrap_file, strerror(errno));
                        rc = 1;
                }
        }
        control_t ctl = {mc, control, (int)brokers};
        pthread_t ctl_thread;
        if (!rc && control) {
                if ((mkfifo(control, 0600) && errno != EEXIST) || pthread_create(&ctl_thread, NULL, control_main, &ctl)) {
                        fprintf(stderr, "declstream broker: cannot create the control FIFO %s: %s\n", control,
                                strerror(errno));
                        rc = 1;
                } else {
                        pthread_detach(ctl_thread);
                }
        }
        if (!rc) {
                printf("%s\n", bs);
                fflush(stdout);
                ds_log(DS_LOG_INFO, "broker", "embedded broker running (in memory only; for development, demos, "
                                              "tests and benchmarks)",
                       "bootstrap_servers=%s brokers=%d partitions=%d", bs, (int)brokers, P);
                while (!ds_stop_requested())
                        usleep(100 * 1000);
                ds_log(DS_LOG_INFO, "broker", "stopping", "%s", "");
        }
        g_stopping = 1;
        if (control)
                unlink(control);
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(rk);
        if (bootstrap_file && !rc)
                unlink(bootstrap_file);
        return rc;
}
