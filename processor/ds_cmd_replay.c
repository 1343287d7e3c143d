/*
 * ds_cmd_replay.c - `declstream replay`: recorded messages through the worker path.
 *
 * Two uses, one code path (ds_replay.h):
 *   - the processor's ceiling without a broker: declarations per second on
 *     N threads, with --json for the benchmark harness;
 *   - recomputing totals from an archive (`declstream dump`): --output
 *     writes the final value of every row and top list, --table prints the
 *     per-gate totals.
 */
#include "ds_cmd.h"
#include "ds_common.h"
#include "ds_replay.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out) {
        fprintf(out,
                "usage: declstream replay --file FILE [options]\n"
                "\n"
                "Feeds recorded messages (a replay file: `declstream gen --file`, `declstream dump`) through the\n"
                "processor's own worker path - decode, validate, ledger, aggregate, flush, then merge and publish\n"
                "(or, with --role process, encode the partial rows and drop them) - with no broker.\n"
                "Partitions are as recorded, dealt to --threads worker threads (each owns its partitions).\n"
                "Measures the processor's ceiling, or recomputes totals from an archive.\n"
                "\n"
                "  -f, --file FILE         the replay file (format: processor/ds_replay.h)\n"
                "  --threads N             worker threads (default 1)\n"
                "  --repeat K              replay the file K times (default 1); pass k is the next stretch of\n"
                "                          history: ids + k*10^12, event times + k * the file's span in whole days,\n"
                "                          so every pass does the full work of the first. The run ends with a\n"
                "                          last cycle after the last message (tail_seconds): for throughput,\n"
                "                          replay enough passes that it spans several cycles\n"
                "  --warmup W              replay W passes more before the clock starts (default 0), counting\n"
                "                          nothing they do: the measured passes start where a processor that\n"
                "                          has run a while is - its tables grown, the memory it needs already\n"
                "                          faulted in and recycled - rather than from a cold start (the state\n"
                "                          at the end, --output's totals and --check-partials' sum include them)\n"
                "  --cycle-ms MS           flush, merge and publish every MS (default 1000: commit.interval.ms)\n"
                "  --role all|process      all (default): workers, then merge and publish in main, as\n"
                "                          `declstream run` with role=all does in one process; process: the\n"
                "                          processing role alone (role=process) - every cycle's changed rows\n"
                "                          are encoded as partial rows and the changelog records written, then\n"
                "                          dropped; no merge (the merge role's work comes after the partial\n"
                "                          topic); not with --output or --table\n"
                "  --check-partials        with --role process: decode every partial batch back, stop if one\n"
                "                          does not decode, and report the partitions' last GATE TOTAL shares\n"
                "                          summed - every pass's, the warm-up's too (a check of the encoding;\n"
                "                          main's work grows by half, so leave it off when measuring)\n"
                "  --heading-digits N      HS digits of a heading: 2, 4, 6 or 8 (default 4)\n"
                "  --ledger-retention-ms MS  forget a declaration this long after its latest version\n"
                "                          (default 3024000000: 35 days)\n"
                "  --presize               size each partition's ledger for its messages (every pass) and\n"
                "                          fault it in before the clock starts: the steady state (tables at\n"
                "                          their size, as after ledger.retention.ms of traffic)\n"
                "  --schema-dir DIR        schema directory (default: the built-in schemas/)\n"
                "  --gates-file FILE       gates added to the compiled-in ones (the processor's gates.file)\n"
                "  --output FILE           write the final totals as JSON lines: every row, then every top-10\n"
                "                          list (\"-\": stdout)\n"
                "  --table                 print the per-gate TOTAL table (stdout; stderr with --json)\n"
                "  --json                  print the figures as one JSON object on stdout: declarations,\n"
                "                          messages, dead_lettered, threads, seconds, declarations_per_s,\n"
                "                          ns_per_declaration, cpu_seconds, main_cpu_seconds, tail_seconds\n"
                "                          (of seconds, the last cycle after the workers' last message), ...\n"
                "  -q, --quiet             no summary on stderr\n"
                "\n"
                "Exit status: 0 done, 1 runtime failure, 2 usage error or unreadable file.\n");
}

typedef struct table_ctx {
        FILE *out;
        ds_measures_t sum;
        int n;
} table_ctx_t;

static void table_row(void *ctx, const char *gate, const ds_measures_t *m) {
        table_ctx_t *t = ctx;
        fprintf(t->out, "%-12s %12" PRId64 " %12" PRId64 " %18.2f %14.1f\n", gate, m->declarations, m->items,
                (double)m->value / 100.0, (double)m->weight / 1e6);
        ds_measures_add(&t->sum, m, 1);
        t->n++;
}

int ds_cmd_replay(int argc, char **argv) {
        ds_argv_t a = {argc, 0, argv, "replay"};
        const char *file = NULL, *output = NULL, *role = "all", *v;
        int json = 0, table = 0, quiet = 0;
        int64_t threads = 1, repeat = 1, warmup = 0, cycle_ms = 1000, digits = 4, retention = -1;
        ds_replay_opts_t o;
        ds_replay_opts_default(&o);
        while (a.i < argc) {
                int r;
                const char *arg = argv[a.i];
                if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
                        usage(stdout);
                        return 0;
                }
                if (!strcmp(arg, "--json")) {
                        json = 1;
                        a.i++;
                } else if (!strcmp(arg, "--presize")) {
                        o.presize = 1;
                        a.i++;
                } else if (!strcmp(arg, "--check-partials")) {
                        o.check_partials = 1;
                        a.i++;
                } else if (!strcmp(arg, "--table")) {
                        table = 1;
                        a.i++;
                } else if (!strcmp(arg, "-q") || !strcmp(arg, "--quiet")) {
                        quiet = 1;
                        a.i++;
                } else if ((r = ds_arg_value(&a, "-f", &v)) || (r = ds_arg_value(&a, "--file", &v))) {
                        if (r < 0)
                                return 2;
                        file = v;
                } else if ((r = ds_arg_value(&a, "--role", &v))) {
                        if (r < 0)
                                return 2;
                        if (strcmp(v, "all") && strcmp(v, "process")) {
                                fprintf(stderr, "declstream replay: --role must be all or process, got \"%s\"\n", v);
                                return 2;
                        }
                        role = v;
                } else if ((r = ds_arg_value(&a, "--output", &v))) {
                        if (r < 0)
                                return 2;
                        output = v;
                } else if ((r = ds_arg_value(&a, "--schema-dir", &v))) {
                        if (r < 0)
                                return 2;
                        o.schema_dir = v;
                } else if ((r = ds_arg_value(&a, "--gates-file", &v))) {
                        if (r < 0 || ds_arg_gates_file("replay", v))
                                return 2;
                } else if ((r = ds_arg_value(&a, "--threads", &v))) {
                        if (r < 0 || ds_arg_i64("replay", "--threads", v, 1, 256, &threads))
                                return 2;
                } else if ((r = ds_arg_value(&a, "--repeat", &v))) {
                        if (r < 0 || ds_arg_i64("replay", "--repeat", v, 1, 1000, &repeat))
                                return 2;
                } else if ((r = ds_arg_value(&a, "--warmup", &v))) {
                        if (r < 0 || ds_arg_i64("replay", "--warmup", v, 0, 1000, &warmup))
                                return 2;
                } else if ((r = ds_arg_value(&a, "--cycle-ms", &v))) {
                        if (r < 0 || ds_arg_i64("replay", "--cycle-ms", v, 1, 3600000, &cycle_ms))
                                return 2;
                } else if ((r = ds_arg_value(&a, "--heading-digits", &v))) {
                        if (r < 0 || ds_arg_i64("replay", "--heading-digits", v, 2, 8, &digits))
                                return 2;
                        if (digits & 1) {
                                fprintf(stderr, "declstream replay: --heading-digits must be 2, 4, 6 or 8, got %s\n", v);
                                return 2;
                        }
                } else if ((r = ds_arg_value(&a, "--ledger-retention-ms", &v))) {
                        if (r < 0 || ds_arg_i64("replay", "--ledger-retention-ms", v, 60000, 3650LL * 86400000,
                                                &retention))
                                return 2;
                } else {
                        fprintf(stderr, "declstream replay: unknown argument \"%s\" (see --help)\n", arg);
                        return 2;
                }
        }
        if (!file) {
                fprintf(stderr, "declstream replay: --file FILE is required (see --help)\n");
                return 2;
        }
        if (json && output && !strcmp(output, "-")) {
                fprintf(stderr, "declstream replay: --json and --output - both write to stdout; give --output a file\n");
                return 2;
        }
        o.threads = (int)threads;
        o.repeat = (int)repeat;
        o.warmup = (int)warmup;
        o.cycle_ms = cycle_ms;
        o.heading_digits = (int)digits;
        if (retention > 0)
                o.part.ledger_retention_ms = retention;
        int processing = !strcmp(role, "process");
        if (!processing && o.check_partials) {
                fprintf(stderr, "declstream replay: --check-partials checks the partial rows of --role process\n");
                return 2;
        }
        if (processing && (output || table)) {
                fprintf(stderr, "declstream replay: --role process merges nothing, so it has no totals for %s\n",
                        output ? "--output" : "--table");
                return 2;
        }
        o.sink = processing ? DS_REPLAY_SINK_PARTIAL : output || table ? DS_REPLAY_SINK_KEEP : DS_REPLAY_SINK_NULL;

        char err[512];
        ds_replay_file_t *f = ds_replay_file_open(file, err, sizeof(err));
        if (!f) {
                fprintf(stderr, "declstream replay: %s\n", err);
                return 2;
        }
        ds_replay_t *rp = ds_replay_new(f, &o, err, sizeof(err));
        if (!rp) {
                fprintf(stderr, "declstream replay: %s\n", err);
                ds_replay_file_close(f);
                return 1;
        }
        ds_replay_result_t res;
        int rc = 0;
        if (ds_replay_run(rp, &res, err, sizeof(err))) {
                fprintf(stderr, "declstream replay: %s\n", err);
                rc = 1;
        }
        double rate = res.seconds > 0 ? (double)res.declarations / res.seconds : 0;
        double ns = res.declarations ? res.seconds * 1e9 / (double)res.declarations : 0;
        double cpu_ns = res.declarations ? res.cpu_seconds * 1e9 / (double)res.declarations : 0;
        if (!quiet) {
                char warm[48] = "";
                if (warmup)
                        snprintf(warm, sizeof(warm), " (after %d of warm-up)", (int)warmup);
                fprintf(stderr,
                        "replay: %" PRIu64 " messages (%" PRIu64 " declarations, %" PRIu64
                        " dead-lettered) from %d partitions, %d pass%s%s, %d thread%s\n"
                        "replay: %.3f s: %.0f declarations/s, %.0f ns per declaration (wall), %.0f ns of CPU; "
                        "cpu %.3f s (main thread %.3f s); %" PRIu64 " cycles (%.3f s of it after the workers' last "
                        "message), %" PRIu64 " rows published\n"
                        "replay: state at the end: %.1f MiB, %" PRIu64 " ledger entries, %" PRIu64 " rows\n",
                        res.messages, res.declarations, res.dead_lettered, res.partitions, (int)repeat,
                        repeat == 1 ? "" : "es", warm, res.threads, res.threads == 1 ? "" : "s", res.seconds, rate, ns,
                        cpu_ns, res.cpu_seconds, res.main_cpu_seconds, res.cycles, res.tail_seconds, res.rows_out,
                        (double)res.state_bytes / 1048576.0, res.ledger_entries, res.rows);
                if (processing) {
                        char checked[96] = "";
                        if (res.partial_total_declarations >= 0)
                                snprintf(checked, sizeof(checked),
                                         ", decoded back: last GATE TOTAL shares sum to %" PRId64 " declarations",
                                         res.partial_total_declarations);
                        fprintf(stderr,
                                "replay: role process: %" PRIu64 " partial messages encoded (%" PRIu64 " rows, %" PRIu64
                                " bytes)%s; %" PRIu64 " changelog records (%" PRIu64 " bytes)\n",
                                res.partials, res.partial_rows, res.partial_bytes, checked, res.changelog_records,
                                res.changelog_bytes);
                }
                if (res.dead_lettered) {
                        fprintf(stderr, "replay: dead-lettered:");
                        for (int k = 1; k < DS_DLQ__CNT; k++)
                                if (res.dlq[k])
                                        fprintf(stderr, " %s=%" PRIu64, ds_dlq_code((ds_dlq_reason_t)k), res.dlq[k]);
                        fputc('\n', stderr);
                }
                fprintf(stderr, "replay: outcomes:");
                for (int k = 0; k < DS_EV__CNT; k++)
                        fprintf(stderr, " %s=%" PRIu64, ds_event_code((ds_event_outcome_t)k), res.outcome[k]);
                fputc('\n', stderr);
        }
        if (!rc && output) {
                FILE *out = strcmp(output, "-") ? fopen(output, "w") : stdout;
                if (!out) {
                        fprintf(stderr, "declstream replay: cannot create %s: %s\n", output, strerror(errno));
                        rc = 1;
                } else {
                        if (ds_replay_write_totals(rp, out, err, sizeof(err))) {
                                fprintf(stderr, "declstream replay: %s: %s\n", output, err);
                                rc = 1;
                        }
                        if (out != stdout && fclose(out)) {
                                fprintf(stderr, "declstream replay: cannot write %s: %s\n", output, strerror(errno));
                                rc = 1;
                        }
                }
        }
        if (!rc && table) {
                table_ctx_t t = {json ? stderr : stdout, {0}, 0};
                fprintf(t.out, "%-12s %12s %12s %18s %14s\n", "gate", "declarations", "items", "value USD",
                        "weight t");
                ds_replay_gate_totals(rp, table_row, &t);
                table_row(&t, "all", &t.sum);
        }
        if (json) {
                printf("{\"declarations\":%" PRIu64 ",\"messages\":%" PRIu64 ",\"dead_lettered\":%" PRIu64
                       ",\"threads\":%d,\"seconds\":%.6f,\"declarations_per_s\":%.0f,\"ns_per_declaration\":%.1f"
                       ",\"cpu_seconds\":%.6f,\"cpu_ns_per_declaration\":%.1f,\"main_cpu_seconds\":%.6f"
                       ",\"worker_cpu_ns_per_declaration\":%.1f,\"tail_seconds\":%.6f,\"repeat\":%d,\"warmup\":%d,"
                       "\"presize\":%s,"
                       "\"partitions\":%d"
                       ",\"bytes\":%" PRIu64 ",\"cycles\":%" PRIu64 ",\"rows_published\":%" PRIu64
                       ",\"state_bytes\":%zu,\"ledger_bytes\":%zu,\"ledger_entries\":%" PRIu64 ",\"rows\":%" PRIu64
                       ",\"dead_letter_reasons\":{",
                       res.declarations, res.messages, res.dead_lettered, res.threads, res.seconds, rate, ns,
                       res.cpu_seconds, cpu_ns, res.main_cpu_seconds,
                       res.declarations ? (res.cpu_seconds - res.main_cpu_seconds) * 1e9 / (double)res.declarations : 0,
                       res.tail_seconds, (int)repeat, (int)warmup, o.presize ? "true" : "false", res.partitions,
                       res.bytes, res.cycles, res.rows_out, res.state_bytes, res.ledger_bytes, res.ledger_entries,
                       res.rows);
                int first = 1;
                for (int k = 1; k < DS_DLQ__CNT; k++)
                        if (res.dlq[k]) {
                                printf("%s\"%s\":%" PRIu64, first ? "" : ",", ds_dlq_code((ds_dlq_reason_t)k), res.dlq[k]);
                                first = 0;
                        }
                printf("},\"role\":\"%s\"", role);
                if (processing) {
                        printf(",\"partials\":%" PRIu64 ",\"partial_rows\":%" PRIu64 ",\"partial_bytes\":%" PRIu64
                               ",\"changelog_records\":%" PRIu64 ",\"changelog_bytes\":%" PRIu64,
                               res.partials, res.partial_rows, res.partial_bytes, res.changelog_records,
                               res.changelog_bytes);
                        if (res.partial_total_declarations >= 0)
                                printf(",\"partial_total_declarations\":%" PRId64, res.partial_total_declarations);
                }
                printf(",\"outcomes\":{");
                for (int k = 0; k < DS_EV__CNT; k++)
                        printf("%s\"%s\":%" PRIu64, k ? "," : "", ds_event_code((ds_event_outcome_t)k), res.outcome[k]);
                printf("}}\n");
                fflush(stdout);
        }
        ds_replay_destroy(rp);
        ds_replay_file_close(f);
        return rc;
}
