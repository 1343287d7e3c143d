/*
 * ds_cmd_run.c - `declstream run` and `declstream config`: flags -> config.
 *
 * Command-line settings are collected first and applied last, so the
 * documented precedence holds whatever the order of the flags:
 * defaults < -c file < DECLSTREAM_* environment < flags.
 */
#include "ds_cmd.h"
#include "ds_common.h"
#include "ds_config.h"
#include "ds_domain.h"
#include "ds_http.h"
#include "ds_log.h"
#include "ds_pipeline.h"
#include "ds_status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static void usage(FILE *out) {
        fprintf(out,
                "usage: declstream run -b SERVERS [-c FILE] [-X prop=value ...] [--threads N] [--key value ...]\n"
                "\n"
                "Consumes declaration events, validates them against the Avro schemas, sends invalid ones to the\n"
                "dead-letter topic, aggregates per gate and per HS heading, and publishes the changed rows to\n"
                "the output topic every commit interval. SIGINT/SIGTERM: publish, commit, leave the group, exit 0.\n"
                "\n"
                "  -b, --brokers SERVERS  bootstrap servers (kafka.bootstrap.servers)\n"
                "  -c, --config FILE      properties file (key = value)\n"
                "  -g, --group GROUP      consumer group (kafka.group.id, default declstream)\n"
                "  -X prop=value          librdkafka property, as kcat does (repeatable)\n"
                "  --threads N            worker threads (0: one per core)\n"
                "  --http HOST:PORT       dashboard, JSON API and /metrics address (http.listen; off: none)\n"
                "  --log-format F         logfmt or json (log.format); --log-level L: debug|info|warn|error\n"
                "  --KEY VALUE            any configuration key below, e.g. --commit.interval.ms 500\n"
                "  --print-config         print the effective configuration and exit\n"
                "\n");
        ds_config_print_help(out);
}

typedef struct setting {
        const char *key;
        const char *value;
        char source[300];
        int owned_key;
} setting_t;

/* Parses run's flags into cfg. Returns -1 to exit with 2, 1 to exit 0
 * (help), 0 to run; *print is set for --print-config. */
static int parse(int argc, char **argv, ds_config_t *cfg, int *print) {
        ds_argv_t a = {argc, 0, argv, "run"};
        setting_t *set = calloc((size_t)argc + 1, sizeof(*set));
        const char *file = NULL, *v;
        int n = 0, rc = 0;
        char err[1024];
        if (!set)
                return -1;
        while (a.i < argc) {
                const char *arg = argv[a.i];
                int r;
                if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
                        usage(stdout);
                        rc = 1;
                        goto out;
                }
                if (!strcmp(arg, "--print-config")) {
                        *print = 1;
                        a.i++;
                        continue;
                }
                if ((r = ds_arg_value(&a, "-c", &v)) || (r = ds_arg_value(&a, "--config", &v))) {
                        if (r < 0)
                                goto fail;
                        file = v;
                } else if ((r = ds_arg_value(&a, "-b", &v)) || (r = ds_arg_value(&a, "--brokers", &v))) {
                        if (r < 0)
                                goto fail;
                        set[n++] = (setting_t){"kafka.bootstrap.servers", v, "flag -b", 0};
                } else if ((r = ds_arg_value(&a, "--http", &v))) {
                        if (r < 0)
                                goto fail;
                        set[n++] = (setting_t){"http.listen", v, "flag --http", 0};
                } else if ((r = ds_arg_value(&a, "--log-format", &v))) {
                        if (r < 0)
                                goto fail;
                        set[n++] = (setting_t){"log.format", v, "flag --log-format", 0};
                } else if ((r = ds_arg_value(&a, "--log-level", &v))) {
                        if (r < 0)
                                goto fail;
                        set[n++] = (setting_t){"log.level", v, "flag --log-level", 0};
                } else if ((r = ds_arg_value(&a, "-g", &v)) || (r = ds_arg_value(&a, "--group", &v))) {
                        if (r < 0)
                                goto fail;
                        set[n++] = (setting_t){"kafka.group.id", v, "flag -g", 0};
                } else if ((r = ds_arg_value(&a, "-X", &v))) {
                        if (r < 0)
                                goto fail;
                        const char *eq = strchr(v, '=');
                        if (!eq || eq == v) {
                                fprintf(stderr, "declstream run: -X expects property=value, got \"%s\"\n", v);
                                goto fail;
                        }
                        char *k = malloc(strlen(v) + 8);
                        if (!k)
                                goto fail;
                        snprintf(k, strlen(v) + 8, "kafka.%.*s", (int)(eq - v), v);
                        set[n] = (setting_t){k, eq + 1, "", 1};
                        snprintf(set[n].source, sizeof(set[n].source), "flag -X %.*s", (int)(eq - v), v);
                        n++;
                } else if (!strncmp(arg, "--", 2) && arg[2]) {
                        /* --key value / --key=value for any configuration key */
                        char key[256];
                        const char *eq = strchr(arg + 2, '=');
                        size_t kl = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
                        if (kl >= sizeof(key)) {
                                fprintf(stderr, "declstream run: option too long: %.40s...\n", arg);
                                goto fail;
                        }
                        memcpy(key, arg + 2, kl);
                        key[kl] = '\0';
                        if (!ds_config_is_key(key) && strncmp(key, "kafka.", 6)) {
                                fprintf(stderr, "declstream run: unknown option \"%s\" (see --help)\n", arg);
                                goto fail;
                        }
                        char flag[260];
                        snprintf(flag, sizeof(flag), "--%s", key);
                        if ((r = ds_arg_value(&a, flag, &v)) < 0)
                                goto fail;
                        char *k = strdup(key);
                        if (!k)
                                goto fail;
                        set[n] = (setting_t){k, v, "", 1};
                        snprintf(set[n].source, sizeof(set[n].source), "flag --%s", key);
                        n++;
                } else {
                        fprintf(stderr, "declstream run: unknown argument \"%s\" (see --help)\n", arg);
                        goto fail;
                }
        }
        if (file && ds_config_load_file(cfg, file, err, sizeof(err))) {
                fprintf(stderr, "declstream run: %s\n", err);
                goto fail;
        }
        if (ds_config_load_env(cfg, environ, err, sizeof(err))) {
                fprintf(stderr, "declstream run: %s\n", err);
                goto fail;
        }
        for (int i = 0; i < n; i++)
                if (ds_config_set(cfg, set[i].key, set[i].value, set[i].source, err, sizeof(err))) {
                        fprintf(stderr, "declstream run: %s\n", err);
                        goto fail;
                }
        goto out;
fail:
        rc = -1;
out:
        for (int i = 0; i < n; i++)
                if (set[i].owned_key)
                        free((char *)set[i].key);
        free(set);
        return rc;
}

int ds_cmd_run(int argc, char **argv) {
        ds_config_t cfg;
        ds_config_init(&cfg);
        int print = 0;
        int r = parse(argc, argv, &cfg, &print);
        if (r) {
                ds_config_free(&cfg);
                return r < 0 ? 2 : 0;
        }
        ds_log_setup((ds_log_level_t)cfg.log_level, (ds_log_format_t)cfg.log_format);
        if (print) {
                ds_config_dump(&cfg, stdout);
                ds_config_free(&cfg);
                return 0;
        }
        if (cfg.gates_file[0]) {
                char err[1024];
                int added = ds_domain_add_gates_file(cfg.gates_file, err, sizeof(err));
                if (added < 0) {
                        fprintf(stderr, "declstream run: gates.file: %s\n", err);
                        ds_config_free(&cfg);
                        return 2;
                }
                ds_log(DS_LOG_INFO, "config", "gates added from gates.file", "file=\"%s\" added=%d gates=%d",
                       cfg.gates_file, added, ds_gate_count());
        }
        char host[256] = "";
        if (cfg.instance_id[0])
                snprintf(host, sizeof(host), "%s", cfg.instance_id);
        else if (gethostname(host, sizeof(host) - 1))
                snprintf(host, sizeof(host), "declstream");
        ds_status_init(host, cfg.role == DS_ROLE_ALL ? "all" : cfg.role == DS_ROLE_MERGE ? "merge" : "process");
        ds_http_t *http = NULL;
        /* without brokers ds_pipeline_run() stops at once with its own
         * message; the server would first wait on the brokers' metadata */
        int brokers =
                ds_config_kafka_get(&cfg, "bootstrap.servers") || ds_config_kafka_get(&cfg, "metadata.broker.list");
        if (brokers && strcmp(cfg.http_listen, "off")) {
                char err[1024];
                if (!(http = ds_http_start(&cfg, err, sizeof(err)))) {
                        ds_log(DS_LOG_ERROR, "config", "cannot start the HTTP server", "error=\"%s\"", err);
                        ds_config_free(&cfg);
                        return 2;
                }
        }
        int rc = ds_pipeline_run(&cfg);
        ds_http_stop(http);
        ds_config_free(&cfg);
        return rc;
}

int ds_cmd_config(int argc, char **argv) {
        if (argc == 1 && !strcmp(argv[0], "--markdown")) {
                ds_config_print_markdown(stdout);
                return 0;
        }
        if (argc == 0 || (argc == 1 && !strcmp(argv[0], "--help"))) {
                printf("usage: declstream config --markdown   print the configuration table (README format)\n"
                       "       declstream run --print-config  print the effective configuration\n");
                return argc ? 0 : 2;
        }
        fprintf(stderr, "declstream config: unknown argument \"%s\" (see --help)\n", argv[0]);
        return 2;
}
