/*
 * main.c - the declstream binary: dispatch to a subcommand.
 */
#include "ds_cmd.h"
#include "ds_domain.h"
#include "ds_signal.h"

#include <stdio.h>
#include <string.h>

/* jemalloc's start-up options (read by jemalloc before main; MALLOC_CONF in
 * the environment is applied on top). thp:always asks for transparent huge
 * pages on jemalloc's mappings (the kernel's THP mode here is "madvise"):
 * the ledger and row tables grow by doubling, and every fresh 4 KiB page is
 * a page fault, which costs several microseconds under this machine's
 * hypervisor. Replaying 1 M declarations: 92k page faults -> 9k, system CPU
 * 1.1 s -> 0.8 s, bench_micro's apply step ~3.7 -> ~2.7 us (bench/HOTPATH.md).
 * dirty/muzzy_decay_ms:30000 (default 10000/0) keeps freed pages three times
 * longer before giving them back: every cycle allocates and frees the
 * producer's copies of its partial rows and changelog records, and the merge
 * its fetched partials; with the default decay those pages went back to the
 * kernel and were faulted (and zeroed, 2 MiB at a time) in again. 1 M
 * catch-up, three paired runs: user CPU 14.3-15.5 s vs 18.2-23.9 s, active
 * 18.1-20.3 s vs 22.2-23.9 s, peak RSS +8 % (1.93-2.00 vs 1.75-1.87 GB).
 * Freed memory still goes back, within ~30 s.
 * Unused when the binary is built without jemalloc (sanitizer builds). */
const char *malloc_conf = "thp:always,dirty_decay_ms:30000,muzzy_decay_ms:30000";

static void usage(FILE *out) {
        fprintf(out,
                "declstream %s - customs declaration stream processor\n"
                "\n"
                "usage: declstream <command> [options]   (declstream <command> --help for each)\n"
                "\n"
                "commands:\n"
                "  run      consume declarations, validate, aggregate, publish totals (the processor)\n"
                "  gen      produce realistic declarations to Kafka (or to a replay file), with a truth file\n"
                "  replay   feed a replay file through the worker path: the processor's ceiling without a broker,\n"
                "           or totals recomputed from an archive\n"
                "  dump     archive a topic into a replay file\n"
                "  broker   start the embedded default broker (librdkafka's mock cluster, in memory)\n"
                "  top      show the published totals as a live per-gate table\n"
                "  config   print the configuration table\n"
                "  version  print the version\n",
                DS_VERSION);
}

int main(int argc, char **argv) {
        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        const char *cmd = argv[1];
        ds_domain_init();
        ds_signals_install();
        if (!strcmp(cmd, "run"))
                return ds_cmd_run(argc - 2, argv + 2);
        if (!strcmp(cmd, "gen"))
                return ds_cmd_gen(argc - 2, argv + 2);
        if (!strcmp(cmd, "replay"))
                return ds_cmd_replay(argc - 2, argv + 2);
        if (!strcmp(cmd, "dump"))
                return ds_cmd_dump(argc - 2, argv + 2);
        if (!strcmp(cmd, "broker"))
                return ds_cmd_broker(argc - 2, argv + 2);
        if (!strcmp(cmd, "top"))
                return ds_cmd_top(argc - 2, argv + 2);
        if (!strcmp(cmd, "config"))
                return ds_cmd_config(argc - 2, argv + 2);
        if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
                printf("declstream %s\n", DS_VERSION);
                return 0;
        }
        if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
                usage(stdout);
                return 0;
        }
        fprintf(stderr, "declstream: unknown command \"%s\"\n\n", cmd);
        usage(stderr);
        return 2;
}
