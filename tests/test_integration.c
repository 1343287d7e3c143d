/*
 * test_integration.c - the whole path on the embedded broker, checked by a
 * client that is not ours.
 *
 *   declstream broker  ->  declstream gen --count 200000 --bad-rate 0.01 --truth
 *   -> declstream run (until every partition is read to its end)
 *   -> kcat reads customs.totals and customs.declarations.dlq
 *
 * Every gate and every heading, every measure, must equal the truth file
 * exactly; the dead-letter topic must hold exactly the bad messages, per
 * reason, each with its source coordinates; and the broker must have
 * deleted nothing (every partition still starts at offset 0).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ds_common.h"
#include "ds_domain.h"
#include "ds_kafka.h"
#include "ds_mstate.h"
#include "ds_partial.h"
#include "ds_testutil.h"

static char *dir;
static ds_proc_t broker;
static char servers[256];

static void setup(void) {
        dir = ds_tmpdir("ds-integration");
        cr_assert_not_null(dir);
        cr_assert_eq(ds_broker_start(&broker, dir, 12, servers, sizeof(servers)), 0, "broker did not start");
}

static void teardown(void) {
        ds_proc_kill(&broker, SIGTERM);
        if (ds_proc_wait(&broker, 5000) < 0)
                ds_proc_kill(&broker, SIGKILL);
        ds_tmpdir_remove(dir);
        free(dir);
}

static char *path(const char *name) {
        return ds_join(dir, name);
}

/* kcat -C from the beginning to the end of a topic with format f. */
static void kcat_read(const char *topic, const char *format, const char *out) {
        char *argv[] = {"kcat", "-b", servers, "-C", "-t", (char *)topic, "-o", "beginning", "-e", "-q",
                        "-f", (char *)format, NULL};
        int rc = ds_run(argv, out, path("kcat.err"), 120000);
        cr_assert_eq(rc, 0, "kcat exited with %d reading %s", rc, topic);
}

static void check_head_not_deleted(const char *topic) {
        cr_expect_eq(ds_topic_heads_lost(servers, dir, topic), 0, "%s lost its head: the broker deleted data", topic);
}

/* customs.totals and customs.top_headings against the truth file: every row
 * of every window exactly (ds_check_against_truth), more than min_rows of
 * them, and every declaration counted. */
static void check_totals(int min_rows) {
        ds_truth_check_t chk;
        int problems = ds_check_against_truth(servers, dir, path("truth.json"), &chk);
        cr_log_info("compared %d rows with the truth: %d problems", chk.rows_compared, problems);
        cr_expect_gt(chk.rows_compared, min_rows, "too few rows compared");
        cr_expect_eq(chk.declarations_counted, chk.declarations_truth);
        cr_expect_eq(problems, 0, "%d differences from the truth (details on stderr)", problems);
}

/* gen --count count --bad-rate bad --seed seed with its truth file, then a
 * run to the end of the input with run_extra (NULL-terminated) added;
 * returns the run's log (free it). */
static char *gen_then_run(const char *count, const char *bad, const char *seed, char *const *run_extra) {
        char *gen[] = {DS_BINARY, "gen", "-b", servers, "--count", (char *)count, "--bad-rate", (char *)bad,
                       "--seed", (char *)seed, "--truth", path("truth.json"), "-q", NULL};
        cr_assert_eq(ds_run(gen, NULL, path("gen.err"), 300000), 0);
        char *run[32] = {DS_BINARY, "run", "-b", servers, "--exit.on.eof", "true", "-X", "session.timeout.ms=6000"};
        size_t n = 8;
        for (; *run_extra && n < DS_ARRAY_LEN(run) - 1; run_extra++)
                run[n++] = *run_extra;
        run[n] = NULL;
        int rc = ds_run(run, NULL, path("run.err"), 300000);
        cr_assert_eq(rc, 0, "run exited with %d (see %s)", rc, path("run.err"));
        char *log = ds_slurp(path("run.err"), &n);
        cr_assert_not_null(log);
        return log;
}

/* customs.declarations.dlq, read by kcat: every bad message of the truth
 * once, per reason, each with its source coordinates, and no other reason. */
static void check_dead_letters(json_t *truth) {
        kcat_read("customs.declarations.dlq", "%h\n", path("dlq.txt"));
        FILE *f = fopen(path("dlq.txt"), "r");
        cr_assert_not_null(f);
        json_t *by_reason = json_object();
        char line[2048];
        long long dlq = 0;
        while (fgets(line, sizeof(line), f)) {
                char *c = strstr(line, "ds.error.code=");
                cr_assert_not_null(c, "dead letter without ds.error.code: %s", line);
                c += strlen("ds.error.code=");
                c[strcspn(c, ",\n")] = '\0';
                char *rest = c + strlen(c) + 1;
                cr_expect_not_null(strstr(rest, "ds.source.topic=customs.declarations"), "dead letter without its source topic");
                cr_expect_not_null(strstr(rest, "ds.source.partition="), "dead letter without source partition");
                cr_expect_not_null(strstr(rest, "ds.source.offset="), "dead letter without source offset");
                json_t *cnt = json_object_get(by_reason, c);
                json_object_set_new(by_reason, c, json_integer(cnt ? json_integer_value(cnt) + 1 : 1));
                dlq++;
        }
        fclose(f);
        cr_expect_eq(dlq, json_integer_value(json_object_get(truth, "bad")), "dead letters %lld, truth bad %lld", dlq,
                     (long long)json_integer_value(json_object_get(truth, "bad")));
        json_t *want_bad = json_object_get(truth, "bad_by_reason");
        cr_assert_gt(json_object_size(want_bad), 3, "the generator should make several kinds of bad messages");
        const char *k;
        json_t *want;
        json_object_foreach(want_bad, k, want) {
                json_t *got = json_object_get(by_reason, k);
                cr_expect_eq(got ? json_integer_value(got) : 0, json_integer_value(want),
                             "reason %s: %lld dead letters, truth %lld", k, got ? (long long)json_integer_value(got) : 0LL,
                             (long long)json_integer_value(want));
        }
        json_object_foreach(by_reason, k, want) cr_expect_not_null(json_object_get(want_bad, k), "unexpected reason %s", k);
        json_decref(by_reason);
}

Test(integration, every_row_distinct_count_top_list_and_dead_letter_matches_the_truth, .init = setup,
     .fini = teardown, .timeout = 900) {
        /* all rates on (defaults: 5% amended, 1% cancelled, 0.5% redelivered,
         * 2% late), lateness up to 5 h so some events miss their MINUTE
         * window (3 h retention), two days of event time */
        char *gen[] = {DS_BINARY,      "gen",    "-b", servers, "--count", "200000", "--bad-rate", "0.01",
                       "--max-lateness", "18000000", "--span-days", "2", "--start-ms", DS_GEN_FIXED_START,
                       "--seed", "20261123", "--truth", path("truth.json"), "-q", NULL};
        int rc = ds_run(gen, NULL, path("gen.err"), 300000);
        cr_assert_eq(rc, 0, "gen exited with %d (see %s)", rc, path("gen.err"));

        char *run[] = {DS_BINARY, "run", "-b", servers, "--exit.on.eof", "true", "--commit.interval.ms", "200",
                       "-X", "session.timeout.ms=6000", "--log.level", "warn", NULL};
        rc = ds_run(run, NULL, path("run.err"), 300000);
        cr_assert_eq(rc, 0, "run exited with %d (see %s)", rc, path("run.err"));

        json_error_t jerr;
        json_t *truth = json_load_file(path("truth.json"), 0, &jerr);
        cr_assert_not_null(truth, "truth: %s", jerr.text);
        json_t *ev = json_object_get(truth, "events");
        cr_assert_gt(json_integer_value(json_object_get(ev, "amend")), 1000, "the stream should hold amendments");
        cr_assert_gt(json_integer_value(json_object_get(ev, "cancel")), 100, "the stream should hold cancellations");
        cr_assert_gt(json_integer_value(json_object_get(ev, "duplicates")), 100, "the stream should hold duplicates");
        cr_assert_gt(json_integer_value(json_object_get(ev, "late")), 1000, "the stream should hold late events");

        /* --- customs.totals and customs.top_headings: every row of every
         * window exactly, distinct counts within ds_hll_tolerance(), every top list --- */
        check_totals(5000);
        json_t *rows = json_object_get(truth, "rows");
        int per_window[4] = {0};
        const char *k;
        json_t *want;
        json_object_foreach(rows, k, want) per_window[strstr(k, "|MINUTE|") ? 1 : strstr(k, "|HOUR|") ? 2
                                                                            : strstr(k, "|DAY|")    ? 3
                                                                                                    : 0]++;
        cr_assert(per_window[0] > 0 && per_window[1] > 1000 && per_window[2] > 50 && per_window[3] > 20,
                  "rows per window: TOTAL %d MINUTE %d HOUR %d DAY %d", per_window[0], per_window[1], per_window[2],
                  per_window[3]);
        cr_assert_gt(json_object_size(json_object_get(truth, "top")), 10);
        cr_assert_gt(json_object_size(json_object_get(truth, "distinct")), 10);

        /* --- customs.declarations.dlq: every bad message, per reason, with its source --- */
        cr_assert_gt(json_object_size(json_object_get(truth, "bad_by_reason")), 5,
                     "the generator should make several kinds of bad messages");
        check_dead_letters(truth);

        /* --- nothing deleted by the embedded broker --- */
        check_head_not_deleted("customs.declarations");
        check_head_not_deleted("customs.totals");

        json_decref(truth);
}

Test(integration, transactions_mode_runs_its_api_flow_with_exact_totals, .init = setup, .fini = teardown,
     .timeout = 600) {
        /* the embedded broker accepts the transaction API without keeping its
         * promises: this checks the calls succeed end to end and the totals
         * (kept exact by the checkpoints underneath) */
        char *extra[] = {"--exactly.once.mode", "transactions", "--instance.id", "it-1", NULL};
        char *log = gen_then_run("40000", "0.01", "77", extra);
        cr_expect_not_null(strstr(log, "exactly_once=transactions"));
        cr_expect_null(strstr(log, "transaction failed"));
        free(log);
        check_totals(1000);
}

/* decoder=avro-c: Apache Avro C's generic decoder (the reference) on the
 * per-message path instead of the specialised one, which still vets the bytes
 * first (ds_pipeline.c prepare()). The same stream, with bad messages, gives
 * the truth's rows and every dead letter under its reason. */
Test(integration, the_avro_c_decoder_gives_the_truth_and_the_same_dead_letters, .init = setup, .fini = teardown,
     .timeout = 600) {
        char *extra[] = {"--decoder", "avro-c", NULL};
        char *log = gen_then_run("20000", "0.02", "4242", extra);
        cr_expect_not_null(strstr(log, "decoder=avro-c"), "the run should say which decoder it uses");
        free(log);
        check_totals(1000);

        /* every bad message dead-lettered once, under the reason the truth gives */
        json_error_t jerr;
        json_t *truth = json_load_file(path("truth.json"), 0, &jerr);
        cr_assert_not_null(truth, "truth: %s", jerr.text);
        check_dead_letters(truth);
        json_decref(truth);
}

/* gates.file: 34 gates added to the 16 compiled in. The generator draws from
 * all 50, the processor (one process: processing and merge roles) accepts
 * them, and every row and top list matches the truth - gate numbers above 31
 * included. A gates file that cannot be read stops start-up naming the key,
 * and so does a producer that may reorder (-X enable.idempotence=false). */
Test(integration, a_gates_file_of_fifty_gates_gives_the_truth_and_a_bad_one_stops_start_up, .init = setup,
     .fini = teardown, .timeout = 600) {
        cr_assert_eq(ds_write_gates_file(path("gates.csv"), "gate_code,name_vi,province,kind,customs_office_prefix", 34,
                                         NULL, "Cửa khẩu thử,Cao Bằng,opening,11"),
                     0);
        char *gen[] = {DS_BINARY, "gen", "-b", servers, "--count", "40000", "--bad-rate", "0.01", "--seed", "50",
                       "--start-ms", DS_GEN_FIXED_START, "--gates-file", path("gates.csv"), "--truth", path("truth.json"),
                       "-q", NULL};
        cr_assert_eq(ds_run(gen, NULL, path("gen.err"), 300000), 0);
        char *bad[] = {DS_BINARY, "run", "-b", servers, "--gates.file", path("nonexistent.csv"), NULL};
        cr_expect_eq(ds_run(bad, NULL, path("bad.err"), 60000), 2);
        char *err = ds_slurp(path("bad.err"), NULL);
        cr_expect(err && strstr(err, "gates.file:") && strstr(err, "cannot open ") && strstr(err, "nonexistent.csv"), "%s", err);
        free(err);
        /* the processing role's producer keeps its order (the merge closes windows on its statuses) */
        char *unordered[] = {DS_BINARY, "run", "-b", servers, "-X", "enable.idempotence=false", NULL};
        cr_expect_eq(ds_run(unordered, NULL, path("bad.err"), 60000), 2);
        err = ds_slurp(path("bad.err"), NULL);
        cr_expect(err && strstr(err, "kafka.enable.idempotence cannot be false"), "%s", err);
        free(err);
        char *run[] = {DS_BINARY, "run", "-b", servers, "--exit.on.eof", "true", "--gates.file", path("gates.csv"),
                       "-X", "session.timeout.ms=6000", NULL};
        int rc = ds_run(run, NULL, path("run.err"), 300000);
        cr_assert_eq(rc, 0, "run exited with %d (see %s)", rc, path("run.err"));
        char *log = ds_slurp(path("run.err"), NULL);
        cr_expect(log && strstr(log, "gates added from gates.file") && strstr(log, "added=34 gates=50"), "%s",
                  log ? log : "");
        free(log);
        json_t *truth = json_load_file(path("truth.json"), 0, NULL);
        cr_assert_not_null(truth);
        cr_expect_not_null(json_object_get(json_object_get(truth, "rows"), "GATE|XG34|TOTAL|0"),
                           "the truth has no row of gate XG34");
        json_decref(truth);
        check_totals(1000);
}

/* The merge publishes every merge.interval.ms at the latest, and sooner -
 * after a quarter of it - once the partial topic has nothing more to read:
 * with an interval of 40 s, the first totals appear long before 40 s. */
/* Waits until customs.totals on srv holds a message, polling with kcat
 * (files in work); returns the milliseconds since t0, or -1 once
 * deadline_ms have passed since t0. */
static int64_t wait_first_total(const char *srv, const char *work, int64_t t0, int64_t deadline_ms) {
        char first[512], kerr[512];
        snprintf(first, sizeof(first), "%s/first.txt", work);
        snprintf(kerr, sizeof(kerr), "%s/kcat.err", work);
        while (ds_mono_ms() - t0 < deadline_ms) {
                char *kc[] = {"kcat", "-b", (char *)srv, "-C", "-t", "customs.totals", "-o", "beginning", "-e", "-q",
                              "-c", "1", "-f", "%o\n", NULL};
                cr_assert_eq(ds_run(kc, first, kerr, 30000), 0);
                FILE *f = fopen(first, "r");
                int c = f ? fgetc(f) : EOF;
                if (f)
                        fclose(f);
                if (c != EOF)
                        return ds_mono_ms() - t0;
                usleep(500 * 1000);
        }
        return -1;
}

/* Stops a test's own broker and removes (and frees) its directory d. */
static void stop_broker(ds_proc_t *b, char *d) {
        ds_proc_kill(b, SIGTERM);
        if (ds_proc_wait(b, 5000) < 0)
                ds_proc_kill(b, SIGKILL);
        ds_tmpdir_remove(d);
        free(d);
}

/* A broker of `brokers` brokers with a fault-injection control channel in d. */
static void start_controlled_broker(ds_proc_t *b, const char *d, int partitions, int brokers, char *control,
                                    size_t csize, char *srv, size_t ssize) {
        snprintf(control, csize, "%s/control", d);
        cr_assert_eq(ds_broker_start_ex(b, d, partitions, brokers, control, NULL, srv, ssize), 0,
                     "broker did not start");
}

Test(integration, the_merge_publishes_before_its_interval_once_the_partials_are_read, .init = setup,
     .fini = teardown, .timeout = 300) {
        char *gen[] = {DS_BINARY, "gen", "-b", servers, "--count", "2000", "--seed", "7", "-q", NULL};
        int rc = ds_run(gen, NULL, path("gen.err"), 120000);
        cr_assert_eq(rc, 0, "gen exited with %d (see %s)", rc, path("gen.err"));
        char *run[] = {DS_BINARY, "run", "-b", servers, "--commit.interval.ms", "200", "--merge.interval.ms", "40000",
                       "--http.listen", "off", "-X", "session.timeout.ms=6000", "--log.level", "info", NULL};
        ds_proc_t proc;
        int64_t t0 = ds_mono_ms();
        cr_assert_eq(ds_proc_start(&proc, run, NULL, path("run.err")), 0);
        int64_t seen_after = wait_first_total(servers, dir, t0, 32000);
        ds_proc_kill(&proc, SIGTERM);
        cr_expect_geq(ds_proc_wait(&proc, 60000), 0, "run did not stop on SIGTERM");
        cr_expect_geq(seen_after, 0, "no totals within 32 s (merge.interval.ms 40000): the merge waited for its "
                                     "interval (see %s)", path("run.err"));
        cr_log_info("first totals after %lld ms", (long long)seen_after);
}

/* Messages on customs.totals.partial now (kcat reads it to its end). */
static long partial_messages(void) {
        char *argv[] = {"kcat", "-b", servers, "-C", "-t", "customs.totals.partial", "-o", "beginning", "-e", "-q",
                        "-f", "%o\n", NULL};
        cr_assert_eq(ds_run(argv, path("partial.txt"), path("kcat.err"), 120000), 0);
        FILE *f = fopen(path("partial.txt"), "r");
        cr_assert_not_null(f);
        long n = 0;
        char line[256];
        while (fgets(line, sizeof(line), f))
                n++;
        fclose(f);
        return n;
}

/* A STATUS goes from every input partition to every partial partition (12 x
 * 12 here, in each partial partition's batch); one that repeats the last
 * changes nothing at the merge, and a processor with nothing to read used to
 * send them all every cycle anyway (192 x 192 = 36,864 messages a second on
 * the benchmark's broker). Idle cycles now produce nothing; that the totals
 * stay exact with STATUS sent only on change is what the truth tests above
 * check. */
Test(integration, idle_cycles_repeat_no_status, .init = setup, .fini = teardown, .timeout = 300) {
        char *gen[] = {DS_BINARY, "gen", "-b", servers, "--count", "2000", "--seed", "11", "-q", NULL};
        int rc = ds_run(gen, NULL, path("gen.err"), 120000);
        cr_assert_eq(rc, 0, "gen exited with %d (see %s)", rc, path("gen.err"));
        /* two workers whatever the machine: each worker sends its own batches, so the
         * rows-per-message check below depends on their number */
        char *run[] = {DS_BINARY, "run",       "-b", servers, "--commit.interval.ms",    "200",         "--http.listen",
                       "off",     "--threads", "2",  "-X",    "session.timeout.ms=6000", "--log.level", "debug",
                       NULL};
        ds_proc_t proc;
        cr_assert_eq(ds_proc_start(&proc, run, NULL, path("run.err")), 0);
        cr_assert_geq(wait_first_total(servers, dir, ds_mono_ms(), 60000), 0, "no totals within 60 s (see %s)",
                      path("run.err"));
        sleep(2); /* 2,000 declarations are long read: every cycle from here on is idle */
        long before = partial_messages();
        sleep(3); /* ~15 cycles of 200 ms */
        long after = partial_messages();
        ds_proc_kill(&proc, SIGTERM);
        cr_expect_eq(ds_proc_wait(&proc, 60000), 0, "run did not stop cleanly (see %s)", path("run.err"));
        char *log = ds_slurp(path("run.err"), NULL);
        long long statuses = ds_log_counter(log, "summary", "status_messages");
        long long rows = ds_log_counter(log, "summary", "partial_rows");
        long long batches = ds_log_counter(log, "summary", "partial_messages");
        free(log);
        cr_log_info("partial messages: %ld, then %ld three idle seconds later; %lld rows in %lld batches, "
                    "%lld statuses",
                    before, after, rows, batches, statuses);
        cr_expect_geq(statuses, 144, "fewer STATUS than one per input and partial partition (%lld)", statuses);
        cr_expect_geq(before, 12, "fewer partial messages than partial partitions");
        cr_expect_lt(batches * 10, rows, "%lld rows in %lld messages: not batched", rows, batches);
        cr_expect_eq(after, before, "idle cycles produced %ld partial messages (a repeated STATUS round)",
                     after - before);
}

/* The batch of one partial partition, kept (tests that write the partial
 * topic by hand). */
static uint8_t kept[65536];
static size_t kept_len;
static int32_t kept_pp;
static int keep_batch(void *ctx, int32_t pp, const uint8_t *msg, size_t len, uint32_t rows) {
        (void)ctx;
        if (pp != kept_pp)
                return 0; /* the other partial partitions' (statuses only) */
        cr_assert(!kept_len && len <= sizeof(kept), "more than one batch (%u rows)", rows);
        memcpy(kept, msg, len);
        kept_len = len;
        return 0;
}

/* Produces the files of the test's directory (one message each, in order)
 * to partial partition pp, runs a merge-only process until it publishes,
 * stops it, and reads customs.totals into *msgs. Returns their count. */
static int merge_files_ex(int32_t pp, const char *const *files, int nfiles, const char *const *extra,
                          ds_kmsg_t **msgs) {
        char ppa[16];
        snprintf(ppa, sizeof(ppa), "%d", pp);
        char *produce[16] = {"kcat", "-b", servers, "-P", "-t", "customs.totals.partial", "-p", ppa};
        cr_assert_lt(nfiles, 8);
        for (int i = 0; i < nfiles; i++)
                produce[8 + i] = path(files[i]);
        cr_assert_eq(ds_run(produce, NULL, path("kcat-p.err"), 30000), 0, "kcat -P failed (see %s)",
                     path("kcat-p.err"));
        char *run[24] = {DS_BINARY, "run", "-b", servers, "--role", "merge", "--http.listen", "off", "-X",
                         "session.timeout.ms=6000"};
        for (int i = 0; extra && extra[i]; i++) {
                cr_assert_lt(10 + i, 23);
                run[10 + i] = (char *)extra[i];
        }
        ds_proc_t proc;
        cr_assert_eq(ds_proc_start(&proc, run, NULL, path("run.err")), 0);
        cr_assert_geq(wait_first_total(servers, dir, ds_mono_ms(), 60000), 0, "no totals within 60 s (see %s)",
                      path("run.err"));
        ds_proc_kill(&proc, SIGTERM);
        cr_expect_eq(ds_proc_wait(&proc, 60000), 0, "the merge did not stop cleanly (see %s)", path("run.err"));
        kcat_read("customs.totals", "%K:%k%S:%s", path("totals.txt"));
        return ds_kcat_parse(path("totals.txt"), msgs);
}

static int merge_files(int32_t pp, const char *const *files, int nfiles, ds_kmsg_t **msgs) {
        return merge_files_ex(pp, files, nfiles, NULL, msgs);
}

/* A partial topic written by an earlier release (one PartialTotal message
 * per share or STATUS, schema id 6) and then by this one (PartialRows
 * batches, schema id 7): a merge started on it reads both, and publishes
 * their sum. Three shares of MONGCAI's GATE TOTAL row: input partition 0 in
 * the old form (an older value, then a newer), input partition 1 in a batch
 * with the statuses after it. */
Test(integration, a_merge_reads_shares_of_both_formats, .init = setup, .fini = teardown, .timeout = 120) {
        ds_domain_init();
        ds_rowkey_t key = ds_rowkey(DS_DIM_GATE, DS_WIN_TOTAL, (uint32_t)ds_gate_lookup("MONGCAI", 7), 0);
        int32_t pp = ds_partial_route(key, 12);
        ds_partial_t old1 = {.kind = DS_PARTIAL_ROW, .partition = 0, .epoch = 1, .input_offset = 5, .key = key};
        old1.m.declarations = 2, old1.m.value = 200;
        ds_partial_t old2 = old1;
        old2.input_offset = 9, old2.m.declarations = 4, old2.m.value = 450;
        ds_partial_t st0 = {.kind = DS_PARTIAL_STATUS, .partition = 0, .epoch = 1, .input_offset = 9,
                            .watermark_ms = INT64_MIN};
        ds_partial_t row1 = {.kind = DS_PARTIAL_ROW, .partition = 1, .epoch = 1, .input_offset = 30, .key = key};
        row1.m.declarations = 7, row1.m.value = 1000;
        const char *files[4] = {"p1.bin", "p2.bin", "p3.bin", "p4.bin"};
        ds_buf_t b = {0};
        const ds_partial_t *old[3] = {&old1, &old2, &st0};
        for (int i = 0; i < 3; i++) {
                b.len = 0;
                ds_partial_encode(&b, old[i], 4);
                FILE *f = fopen(path(files[i]), "wb");
                cr_assert(f && fwrite(b.p, 1, b.len, f) == b.len);
                fclose(f);
        }
        ds_buf_free(&b);
        /* the batch to the row's partial partition */
        kept_pp = pp;
        kept_len = 0;
        ds_partial_batcher_t *pb = ds_partial_batcher_new(12, 4, DS_PARTIAL_BATCH_BYTES, keep_batch, NULL);
        cr_assert_not_null(pb);
        cr_assert_eq(ds_partial_batcher_add(pb, &row1, 1), 0);
        for (int32_t p = 1; p < 12; p++) {
                ds_partial_t st = {.kind = DS_PARTIAL_STATUS, .partition = p, .epoch = 1, .input_offset = 30,
                                   .watermark_ms = INT64_MIN};
                ds_partial_batcher_status(pb, &st);
        }
        cr_assert_eq(ds_partial_batcher_flush(pb, 1), 0);
        ds_partial_batcher_destroy(pb);
        FILE *f = fopen(path(files[3]), "wb");
        cr_assert(f && fwrite(kept, 1, kept_len, f) == kept_len);
        fclose(f);
        ds_kmsg_t *msgs = NULL;
        int n = merge_files(pp, files, 4, &msgs);
        cr_assert_gt(n, 0);
        ds_total_row_t last = {0};
        int found = 0;
        for (int i = 0; i < n; i++) {
                ds_total_row_t r;
                cr_assert_eq(ds_total_decode(DS_SOURCE_DIR "/schemas/customs_total.avsc", msgs[i].value,
                                             msgs[i].value_len, &r), 0);
                if (!strcmp(r.key, "MONGCAI") && r.window == DS_WIN_TOTAL)
                        last = r, found = 1;
        }
        ds_kcat_free(msgs, n);
        cr_assert(found, "no MONGCAI TOTAL row published (see %s)", path("run.err"));
        cr_expect_eq(last.measures[0], 4 + 7, "declarations %lld: partition 0's latest share (4) + partition 1's (7)",
                     (long long)last.measures[0]);
        cr_expect_eq(last.measures[2], 450 + 1000, "customs value %lld", (long long)last.measures[2]);
        char *log = ds_slurp(path("run.err"), NULL);
        cr_expect_null(log ? strstr(log, "unreadable partial") : NULL, "a share was refused (see %s)", path("run.err"));
        /* the rebuild is logged once done, with what it read (2 old-format shares + 1 row of the batch) */
        cr_expect_eq(ds_log_counter(log, "partial partitions rebuilt", "partial_rows"), 3,
                     "no \"partial partitions rebuilt\" line counting 3 rows (see %s)", path("run.err"));
        free(log);
}

/* Writes a batch of rows then statuses for partial partition pp (of 12) to
 * file name in the test's directory. */
static void write_batch(const char *name, int32_t pp, const ds_partial_t *rows, int nrows, const ds_partial_t *sts,
                        int nsts) {
        kept_pp = pp;
        kept_len = 0;
        ds_partial_batcher_t *pb = ds_partial_batcher_new(12, 4, DS_PARTIAL_BATCH_BYTES, keep_batch, NULL);
        cr_assert_not_null(pb);
        for (int i = 0; i < nrows; i++) {
                cr_assert_eq(ds_partial_route(rows[i].key, 12), pp);
                cr_assert_eq(ds_partial_batcher_add(pb, &rows[i], 1), 0);
        }
        for (int i = 0; i < nsts; i++)
                ds_partial_batcher_status(pb, &sts[i]);
        cr_assert_eq(ds_partial_batcher_flush(pb, 1), 0);
        ds_partial_batcher_destroy(pb);
        FILE *f = fopen(path(name), "wb");
        cr_assert(f && kept_len && fwrite(kept, 1, kept_len, f) == kept_len);
        fclose(f);
}

/* Shares of input partitions the merge did not know at start-up (added to
 * the input topic since: the merge reads the count once) are skipped,
 * counted as ignored, and logged in a line or two for the lot (the first,
 * and the rest at the stop): a line each flooded the log. The known
 * partition's share is taken as ever. */
Test(integration, shares_of_unknown_input_partitions_are_counted_and_logged_in_a_line_or_two, .init = setup,
     .fini = teardown, .timeout = 120) {
        ds_domain_init();
        ds_rowkey_t key = ds_rowkey(DS_DIM_GATE, DS_WIN_TOTAL, (uint32_t)ds_gate_lookup("MONGCAI", 7), 0);
        int32_t pp = ds_partial_route(key, 12);
        enum { UNKNOWN = 1000 };
        static ds_partial_t rows[1 + UNKNOWN];
        rows[0] = (ds_partial_t){.kind = DS_PARTIAL_ROW, .partition = 0, .epoch = 1, .input_offset = 5, .key = key};
        rows[0].m.declarations = 3, rows[0].m.value = 300;
        for (int i = 1; i <= UNKNOWN; i++) {
                rows[i] = rows[0];
                rows[i].partition = 11 + i; /* 12 input partitions: 0..11 */
                rows[i].m.declarations = 1;
        }
        ds_partial_t sts[12];
        for (int p = 0; p < 12; p++)
                sts[p] = (ds_partial_t){.kind = DS_PARTIAL_STATUS,
                                        .partition = p,
                                        .epoch = 1,
                                        .input_offset = 5,
                                        .watermark_ms = INT64_MIN};
        write_batch("b.bin", pp, rows, 1 + UNKNOWN, sts, 12);
        const char *files[1] = {"b.bin"};
        ds_kmsg_t *msgs = NULL;
        int n = merge_files(pp, files, 1, &msgs);
        long long decl = -1;
        for (int i = 0; i < n; i++) {
                ds_total_row_t r;
                cr_assert_eq(ds_total_decode(DS_SOURCE_DIR "/schemas/customs_total.avsc", msgs[i].value,
                                             msgs[i].value_len, &r),
                             0);
                if (!strcmp(r.key, "MONGCAI") && r.window == DS_WIN_TOTAL)
                        decl = r.measures[0];
        }
        ds_kcat_free(msgs, n);
        cr_expect_eq(decl, 3, "declarations %lld: only partition 0's share counts (see %s)", decl, path("run.err"));
        char *log = ds_slurp(path("run.err"), NULL);
        cr_assert_not_null(log);
        int lines = 0;
        long long skipped = 0;
        for (const char *q = log; (q = strstr(q, " input_partition=")); q++) {
                lines++;
                const char *k = strstr(q, " skipped=");
                const char *eol = strchr(q, '\n');
                if (k && (!eol || k < eol))
                        skipped += atoll(k + 9);
        }
        cr_expect_leq(lines, 2, "%d log lines for %d skipped shares (see %s)", lines, UNKNOWN, path("run.err"));
        cr_expect_eq(skipped, UNKNOWN, "the log lines count %lld skipped shares (see %s)", skipped, path("run.err"));
        cr_expect_eq(ds_log_counter(log, "stopped", "ignored"), UNKNOWN,
                     "the skipped shares are not counted as ignored (see %s)", path("run.err"));
        free(log);
}

#define LATE_T0 1710028800000LL /* a whole minute */

/* A share of MONGCAI's MINUTE window LATE_T0 from input partition 0 (1
 * declaration), every input partition's status at watermark wm with
 * retentions ret (NULL: none, as schema 6 said), then a late share of the
 * window from partition 1 (9 declarations); merged by a merge-only run with
 * the extra flags own. Returns the declarations of the row it published
 * (-1: none; -2: more than one). */
static long long late_share_case(int64_t wm, const int64_t *ret, const char *const *own) {
        ds_domain_init();
        ds_rowkey_t key = ds_rowkey(DS_DIM_GATE, DS_WIN_MINUTE, (uint32_t)ds_gate_lookup("MONGCAI", 7), LATE_T0);
        int32_t pp = ds_partial_route(key, 12);
        ds_partial_t first = {.kind = DS_PARTIAL_ROW, .partition = 0, .epoch = 1, .input_offset = 5, .key = key};
        first.m.declarations = 1, first.m.value = 100;
        ds_partial_t sts[12];
        for (int p = 0; p < 12; p++) {
                sts[p] = (ds_partial_t){.kind = DS_PARTIAL_STATUS, .partition = p, .epoch = 1, .input_offset = 5,
                                        .watermark_ms = wm};
                if (ret)
                        memcpy(sts[p].retention_ms, ret, sizeof(sts[p].retention_ms));
        }
        ds_partial_t late = first;
        late.partition = 1, late.input_offset = 40, late.m.declarations = 9, late.m.value = 900;
        write_batch("b1.bin", pp, &first, 1, sts, 12);
        write_batch("b2.bin", pp, &late, 1, NULL, 0);
        const char *files[2] = {"b1.bin", "b2.bin"};
        ds_kmsg_t *msgs = NULL;
        int n = merge_files_ex(pp, files, 2, own, &msgs);
        cr_assert_gt(n, 0);
        long long decl = -1;
        for (int i = 0; i < n; i++) {
                ds_total_row_t r;
                cr_assert_eq(ds_total_decode(DS_SOURCE_DIR "/schemas/customs_total.avsc", msgs[i].value,
                                             msgs[i].value_len, &r), 0);
                if (!strcmp(r.key, "MONGCAI") && r.window == DS_WIN_MINUTE && r.window_start == LATE_T0)
                        decl = decl == -1 ? r.measures[0] : -2;
        }
        ds_kcat_free(msgs, n);
        return decl;
}

/* The merge's closing follows the statuses as it reads them: every status
 * past the window's close, then a late share. The merge that read this
 * live had refused the late share (it published and removed the closed
 * window between the two), but a merge started on the topic - a restart, a
 * rebalance - publishes nothing until it has read to the end, and used to
 * take the late share in, publishing a different final value (10
 * declarations for 1). */
Test(integration, a_rebuilt_merge_refuses_what_the_statuses_closed, .init = setup, .fini = teardown,
     .timeout = 120) {
        long long decl = late_share_case(LATE_T0 + 30 * DS_DAY_MS, NULL, NULL); /* every window of t0 closed */
        cr_expect_eq(decl, 1, "declarations %lld: the late share was taken in (see %s)", decl, path("run.err"));
        char *log = ds_slurp(path("run.err"), NULL);
        cr_expect(log && strstr(log, " ignored=1 "), "the merge does not count the late share as ignored (see %s)",
                  path("run.err"));
        free(log);
}

/* The processors keep a MINUTE window open 3 h after its end (the default,
 * which their statuses carry); a merge restarted with 1 h of its own
 * closes no earlier than they do, so its rebuild takes the share the live
 * merge took (it published 1 instead of 10 when it closed with its own). */
Test(integration, a_rebuilt_merge_closes_no_earlier_than_the_processors, .init = setup, .fini = teardown,
     .timeout = 120) {
        static const int64_t ret[4] = {10800000LL, 259200000LL, 34560000000LL, 604800000LL};
        static const char *const own[] = {"--window.minute.retention.ms", "3600000", NULL};
        long long decl = late_share_case(LATE_T0 + DS_MINUTE_MS + 2 * 3600000LL, ret, own);
        cr_expect_eq(decl, 10, "declarations %lld: the merge closed with its own 1 h (see %s)", decl,
                     path("run.err"));
}

/* A process leaving on SIGTERM lets its merge read each partial partition to
 * the end it has then. Those ends were asked for one partition at a time,
 * each query waiting behind the consumer's long-polling Fetch (~50 ms): with
 * 192 partial partitions a SIGTERM'd processor hit the default 10 s
 * shutdown.timeout.ms and exited 3. Here 192 partitions and a 5 s timeout:
 * the one-by-one queries took ~9.8 s, the shutdown now takes ~0.7 s. */
/* Whether process pid has a thread named name (/proc/PID/task/TID/comm). */
static int has_thread(pid_t pid, const char *name) {
        char tdir[64];
        snprintf(tdir, sizeof(tdir), "/proc/%d/task", (int)pid);
        DIR *dp = opendir(tdir);
        if (!dp)
                return 0;
        int found = 0;
        struct dirent *e;
        while (!found && (e = readdir(dp))) {
                if (e->d_name[0] == '.')
                        continue;
                char cpath[384], comm[32] = "";
                snprintf(cpath, sizeof(cpath), "%s/%s/comm", tdir, e->d_name);
                FILE *f = fopen(cpath, "r");
                if (f) {
                        if (fgets(comm, sizeof(comm), f))
                                comm[strcspn(comm, "\n")] = '\0';
                        fclose(f);
                }
                found = strcmp(comm, name) == 0;
        }
        closedir(dp);
        return found;
}

Test(integration, sigterm_with_many_partial_partitions_leaves_within_the_shutdown_timeout, .timeout = 300) {
        char *d = ds_tmpdir("ds-term");
        cr_assert_not_null(d);
        char srv[256];
        ds_proc_t b;
        cr_assert_eq(ds_broker_start(&b, d, 192, srv, sizeof(srv)), 0, "broker did not start");
        char gerr[512], rerr[512];
        snprintf(gerr, sizeof(gerr), "%s/gen.err", d);
        snprintf(rerr, sizeof(rerr), "%s/run.err", d);
        char *gen[] = {DS_BINARY, "gen", "-b", srv, "--count", "3000", "--seed", "5", "-q", NULL};
        cr_assert_eq(ds_run(gen, NULL, gerr, 120000), 0, "gen failed (see %s)", gerr);
        char *run[] = {DS_BINARY, "run", "-b", srv, "--shutdown.timeout.ms", "5000", "--http.listen", "off",
                       "-X", "session.timeout.ms=6000", "--threads", "2", NULL};
        ds_proc_t proc;
        cr_assert_eq(ds_proc_start(&proc, run, NULL, rerr), 0);
        /* running and caught up: totals published, the merge's fetches idle */
        cr_assert_geq(wait_first_total(srv, d, ds_mono_ms(), 60000), 0, "no totals within 60 s (see %s)", rerr);
        sleep(2);
        /* meanwhile: each thread says what it is (ps -L, top -H, perf), beside librdkafka's rdk:* */
        static const char *const names[] = {"ds-worker-0", "ds-worker-1", "ds-merge", "rdk:main"};
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                cr_expect(has_thread(proc.pid, names[i]), "no thread named %s", names[i]);
        ds_proc_kill(&proc, SIGTERM);
        int rc = ds_proc_wait(&proc, 60000);
        cr_expect_eq(rc, 0, "run exited with %d on SIGTERM (3: it overran shutdown.timeout.ms; see %s)", rc, rerr);
        stop_broker(&b, d);
}

/* The embedded broker keeps 5 MiB per partition: 60,000 messages of 100
 * random bytes in partition 2 of 4 lose that partition's head. A processor
 * that has not seen those messages must not start as if the totals could be
 * exact: the assignment reads every assigned partition's log start (one
 * batched query) and stops, naming the partition - the third of the list,
 * not the first. */
Test(integration, a_run_stops_when_the_broker_deleted_input_it_has_not_seen, .timeout = 300) {
        char *d = ds_tmpdir("ds-head");
        cr_assert_not_null(d);
        char srv[256];
        ds_proc_t b;
        cr_assert_eq(ds_broker_start(&b, d, 4, srv, sizeof(srv)), 0, "broker did not start");
        char err[512];
        rd_kafka_conf_t *pconf = rd_kafka_conf_new();
        cr_assert_eq(rd_kafka_conf_set(pconf, "bootstrap.servers", srv, err, sizeof(err)), RD_KAFKA_CONF_OK);
        cr_assert_eq(rd_kafka_conf_set(pconf, "linger.ms", "20", err, sizeof(err)), RD_KAFKA_CONF_OK);
        rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, err, sizeof(err));
        cr_assert_not_null(prod, "%s", err);
        uint64_t rnd = 42;
        for (int i = 0; i < 60000; i++) {
                uint64_t v[13]; /* 100 incompressible bytes */
                for (int k = 0; k < 13; k++)
                        v[k] = ds_test_rnd(&rnd);
                rd_kafka_resp_err_t e;
                while ((e = rd_kafka_producev(prod, RD_KAFKA_V_TOPIC("customs.declarations"), RD_KAFKA_V_PARTITION(2),
                                              RD_KAFKA_V_VALUE(v, 100), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                              RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        rd_kafka_poll(prod, 10);
                cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR);
        }
        cr_assert_eq(rd_kafka_flush(prod, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_destroy(prod);
        cr_assert_eq(ds_topic_heads_lost(srv, d, "customs.declarations"), 1,
                     "partition 2 alone should have lost its head");
        char rerr[512];
        snprintf(rerr, sizeof(rerr), "%s/run.err", d);
        char *run[] = {DS_BINARY, "run", "-b", srv, "--exit.on.eof", "true", "--http.listen", "off",
                       "-X", "session.timeout.ms=6000", NULL};
        int rc = ds_run(run, NULL, rerr, 120000);
        cr_expect_gt(rc, 0, "run exited with %d on an input whose head is gone (see %s)", rc, rerr);
        size_t len = 0;
        char *log = ds_slurp(rerr, &len);
        cr_assert_not_null(log);
        cr_expect_not_null(strstr(log, "the broker has deleted input the state has not seen"), "see %s", rerr);
        cr_expect_not_null(strstr(log, "partition=2 log_start_offset="), "partition 2 is not named (see %s)", rerr);
        free(log);
        stop_broker(&b, d);
}

/* A leader move answers a watermark query with NOT_LEADER_FOR_PARTITION;
 * librdkafka returns that at once. The restore, the merge's rebuild and its
 * shutdown read watermarks through ds_kafka_watermarks(), which retries such
 * errors (a restore that gave up on one stopped the processor in
 * test_faults' broker-fault scenario). */
Test(integration, watermark_queries_ride_out_a_leader_move) {
        char *d = ds_tmpdir("ds-wm");
        cr_assert_not_null(d);
        char control[512], srv[256];
        ds_proc_t b;
        start_controlled_broker(&b, d, 3, 1, control, sizeof(control), srv, sizeof(srv));
        char err[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", srv, err, sizeof(err)), RD_KAFKA_CONF_OK);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
        cr_assert_not_null(rk, "%s", err);
        int64_t lo = -1, hi = -1;
        cr_assert_eq(ds_kafka_watermarks(rk, "customs.declarations", 1, &lo, &hi, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
        cr_expect_eq(lo, 0);
        cr_expect_eq(hi, 0);
        cr_assert_eq(ds_broker_control(control, "error ListOffsets 4 NOT_LEADER_FOR_PARTITION"), 0);
        usleep(200 * 1000); /* the FIFO is read by the broker's own thread */
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, "customs.declarations", 1, &lo, &hi, 5000);
        cr_expect_eq(e, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, "the injected error did not reach the client: %s",
                     rd_kafka_err2str(e));
        e = ds_kafka_watermarks(rk, "customs.declarations", 1, &lo, &hi, 10000);
        cr_expect_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "ds_kafka_watermarks gave up: %s", rd_kafka_err2str(e));
        rd_kafka_destroy(rk);
        stop_broker(&b, d);
}

/* ds_kafka_watermarks_many() asks for all partitions at once (the merge's
 * finish and assignment): the same figures as one query per partition, in
 * any order, on a consumer whose fetches are in flight; the errors of a
 * leader move are retried; an unknown partition is named. */
Test(integration, watermarks_of_many_partitions_in_one_query) {
        char *d = ds_tmpdir("ds-wmm");
        cr_assert_not_null(d);
        char control[512], srv[256];
        ds_proc_t b;
        start_controlled_broker(&b, d, 12, 3, control, sizeof(control), srv, sizeof(srv));
        char err[512];
        const char *topic = "customs.declarations";
        rd_kafka_conf_t *pconf = rd_kafka_conf_new();
        cr_assert_eq(rd_kafka_conf_set(pconf, "bootstrap.servers", srv, err, sizeof(err)), RD_KAFKA_CONF_OK);
        rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, err, sizeof(err));
        cr_assert_not_null(prod, "%s", err);
        for (int32_t p = 0; p < 12; p++)
                for (int k = 0; k < 3 * p + (p % 2); k++) /* 0, 4, 6, 10, ...: every partition its own end */
                        cr_assert_eq(rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p),
                                                       RD_KAFKA_V_VALUE("x", 1), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                                       RD_KAFKA_V_END),
                                     RD_KAFKA_RESP_ERR_NO_ERROR);
        cr_assert_eq(rd_kafka_flush(prod, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_destroy(prod);

        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", srv, err, sizeof(err)), RD_KAFKA_CONF_OK);
        cr_assert_eq(rd_kafka_conf_set(conf, "group.id", "wmm", err, sizeof(err)), RD_KAFKA_CONF_OK);
        cr_assert_eq(rd_kafka_conf_set(conf, "fetch.wait.max.ms", "200", err, sizeof(err)), RD_KAFKA_CONF_OK);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
        cr_assert_not_null(rk, "%s", err);
        rd_kafka_poll_set_consumer(rk);
        /* fetching at the end of every partition: empty fetches held by the broker */
        rd_kafka_topic_partition_list_t *as = rd_kafka_topic_partition_list_new(12);
        for (int32_t p = 0; p < 12; p++)
                rd_kafka_topic_partition_list_add(as, topic, p)->offset = RD_KAFKA_OFFSET_END;
        cr_assert_eq(rd_kafka_assign(rk, as), RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_topic_partition_list_destroy(as);
        for (int i = 0; i < 5; i++) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                if (m)
                        rd_kafka_message_destroy(m);
        }

        int32_t parts[12] = {7, 0, 11, 3, 5, 1, 10, 2, 9, 4, 8, 6};
        int64_t lo[12], hi[12];
        int32_t failed = 99;
        cr_assert_eq(ds_kafka_watermarks_many(rk, topic, parts, 12, lo, hi, 10000, &failed), RD_KAFKA_RESP_ERR_NO_ERROR,
                     "failed at partition %d", failed);
        cr_expect_eq(failed, -1);
        for (int i = 0; i < 12; i++) {
                /* librdkafka's own one-partition query, the independent measure */
                int64_t l1 = -1, h1 = -1;
                cr_assert_eq(rd_kafka_query_watermark_offsets(rk, topic, parts[i], &l1, &h1, 10000),
                             RD_KAFKA_RESP_ERR_NO_ERROR);
                cr_expect_eq(l1, 0);
                cr_expect_eq(h1, 3 * parts[i] + (parts[i] % 2), "partition %d: end %lld", parts[i], (long long)h1);
                cr_expect_eq(lo[i], l1, "partition %d: start %lld, one by one %lld", parts[i], (long long)lo[i],
                             (long long)l1);
                cr_expect_eq(hi[i], h1, "partition %d: end %lld, one by one %lld", parts[i], (long long)hi[i],
                             (long long)h1);
        }
        /* either end is optional; one partition is the same call */
        int64_t hi2[3], lo2[3] = {-1, -1, -1};
        cr_assert_eq(ds_kafka_watermarks_many(rk, topic, parts, 3, NULL, hi2, 10000, &failed), 0);
        cr_expect(hi2[0] == hi[0] && hi2[1] == hi[1] && hi2[2] == hi[2]);
        cr_assert_eq(ds_kafka_watermarks_many(rk, topic, parts, 3, lo2, NULL, 10000, &failed), 0);
        cr_expect(lo2[0] == 0 && lo2[1] == 0 && lo2[2] == 0);
        int64_t l1 = -1, h1 = -1;
        cr_assert_eq(ds_kafka_watermarks(rk, topic, parts[2], &l1, &h1, 10000), 0);
        cr_expect(l1 == lo[2] && h1 == hi[2]);

        /* a leader move: the errors come back per partition and are retried */
        cr_assert_eq(ds_broker_control(control, "error ListOffsets 6 NOT_LEADER_FOR_PARTITION"), 0);
        usleep(200 * 1000); /* the FIFO is read by the broker's own thread */
        for (int i = 0; i < 12; i++)
                hi[i] = lo[i] = -1;
        rd_kafka_resp_err_t e = ds_kafka_watermarks_many(rk, topic, parts, 12, lo, hi, 10000, &failed);
        cr_expect_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "gave up at partition %d: %s", failed, rd_kafka_err2str(e));
        for (int i = 0; i < 12; i++)
                cr_expect_eq(hi[i], 3 * parts[i] + (parts[i] % 2), "partition %d after the retries", parts[i]);

        /* a partition the topic does not have is named, not retried until the
         * 10 s are up; the partition that could be read is */
        int32_t bad[2] = {3, 40};
        int64_t t0 = ds_mono_ms();
        e = ds_kafka_watermarks_many(rk, topic, bad, 2, NULL, hi, 10000, &failed);
        int64_t took = ds_mono_ms() - t0;
        cr_expect_neq(e, RD_KAFKA_RESP_ERR_NO_ERROR);
        cr_expect_eq(failed, 40, "failed names partition %d (%s)", failed, rd_kafka_err2str(e));
        cr_expect_lt(took, 5000, "an unknown partition was retried for %lld ms", (long long)took);
        cr_expect_eq(hi[0], 10, "partition 3's end beside the unknown one: %lld", (long long)hi[0]);
        cr_expect_eq(hi[1], -1);

        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        stop_broker(&b, d);
}

/* The offset the latest "merge snapshot written" line of log (debug level)
 * says it covers, -1 if none. */
static long long last_snapshot_offset(const char *log_path) {
        char *log = ds_slurp(log_path, NULL);
        long long off = -1;
        for (const char *p = log; p && (p = strstr(p, "msg=\"merge snapshot written\"")); p++) {
                const char *o = strstr(p, "snapshot_offset=");
                if (o)
                        off = atoll(o + strlen("snapshot_offset="));
        }
        free(log);
        return off;
}

/* A merge restores its latest snapshot and reads the partial topic on from
 * there, so that topic need not keep what came before: after a run that
 * snapshotted its merge, the broker deletes the partial partition's head
 * (junk written after it passes the embedded broker's 5 MiB). Without
 * snapshots a restart must then stop, saying why; with them it restores,
 * skips the junk as unreadable, and publishes totals equal to the truth. */
Test(integration, a_merge_snapshot_survives_the_loss_of_the_partial_topics_head, .timeout = 300) {
        char *d = ds_tmpdir("ds-msnap");
        cr_assert_not_null(d);
        char srv[256], truth[512], rerr[512], gerr[512];
        ds_proc_t b;
        static const char *const one_partial[] = {"--topic", "customs.totals.partial:1", NULL};
        cr_assert_eq(ds_broker_start_ex(&b, d, 4, 1, NULL, one_partial, srv, sizeof(srv)), 0, "broker did not start");
        snprintf(truth, sizeof(truth), "%s/truth.json", d);
        snprintf(gerr, sizeof(gerr), "%s/gen.err", d);
        char *gen[] = {DS_BINARY, "gen", "-b", srv, "--count", "20000", "--seed", "11", "--truth", truth, "-q", NULL};
        cr_assert_eq(ds_run(gen, NULL, gerr, 120000), 0, "gen failed (see %s)", gerr);

        /* 1. a processor that snapshots its merge every 200 ms, stopped once a
         * snapshot covers the whole partial partition */
        snprintf(rerr, sizeof(rerr), "%s/run1.err", d);
        char *run1[] = {DS_BINARY,
                        "run",
                        "-b",
                        srv,
                        "--http.listen",
                        "off",
                        "--merge.snapshot.interval.ms",
                        "200",
                        "--log.level",
                        "debug",
                        "-X",
                        "session.timeout.ms=6000",
                        NULL};
        ds_proc_t proc;
        cr_assert_eq(ds_proc_start(&proc, run1, NULL, rerr), 0);
        char err[512];
        rd_kafka_conf_t *cconf = rd_kafka_conf_new();
        cr_assert_eq(rd_kafka_conf_set(cconf, "bootstrap.servers", srv, err, sizeof(err)), RD_KAFKA_CONF_OK);
        rd_kafka_t *cons = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, err, sizeof(err));
        cr_assert_not_null(cons, "%s", err);
        /* (the input read: the partial partition's end still for 3 s, idle
         * cycles write nothing) */
        int64_t lo = -1, hi = -1, covered = -1, last_hi = -1, still_since = ds_mono_ms();
        for (int64_t until = ds_mono_ms() + 120000; ds_mono_ms() < until;) {
                usleep(200000);
                covered = last_snapshot_offset(rerr);
                cr_assert_eq(ds_kafka_watermarks(cons, "customs.totals.partial", 0, &lo, &hi, 10000), 0);
                if (hi != last_hi) {
                        last_hi = hi;
                        still_since = ds_mono_ms();
                }
                if (covered == hi && ds_mono_ms() - still_since > 3000)
                        break;
        }
        cr_assert_eq(covered, hi, "no snapshot covered the partial partition's end %lld (see %s)", (long long)hi, rerr);
        ds_proc_kill(&proc, SIGTERM);
        cr_assert_eq(ds_proc_wait(&proc, 60000), 0, "run 1 did not stop cleanly (see %s)", rerr);

        /* 2. 4.5 MiB of junk after it: the broker deletes the head, never the
         * junk (under 5 MiB), so what the snapshot needs stays */
        rd_kafka_conf_t *pconf = rd_kafka_conf_new();
        cr_assert_eq(rd_kafka_conf_set(pconf, "bootstrap.servers", srv, err, sizeof(err)), RD_KAFKA_CONF_OK);
        cr_assert_eq(rd_kafka_conf_set(pconf, "linger.ms", "0", err, sizeof(err)), RD_KAFKA_CONF_OK);
        rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, err, sizeof(err));
        cr_assert_not_null(prod, "%s", err);
        uint64_t rnd = 7;
        static uint64_t junk[65536 / 8];
        for (int i = 0; i < 72; i++) {
                for (size_t k = 0; k < DS_ARRAY_LEN(junk); k++)
                        junk[k] = ds_test_rnd(&rnd);
                cr_assert_eq(rd_kafka_producev(prod, RD_KAFKA_V_TOPIC("customs.totals.partial"),
                                               RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_VALUE(junk, sizeof(junk)),
                                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                             RD_KAFKA_RESP_ERR_NO_ERROR);
                rd_kafka_poll(prod, 0);
        }
        cr_assert_eq(rd_kafka_flush(prod, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_destroy(prod);
        cr_assert_eq(ds_kafka_watermarks(cons, "customs.totals.partial", 0, &lo, &hi, 10000), 0);
        rd_kafka_destroy(cons);
        cr_assert_gt(lo, 0, "the partial partition should have lost its head");
        cr_assert_leq(lo, covered, "the broker deleted what the snapshot needs (log start %lld, snapshot %lld)",
                      (long long)lo, (long long)covered);

        /* 3. without snapshots the merge cannot be rebuilt, and says so */
        snprintf(rerr, sizeof(rerr), "%s/run2.err", d);
        char *run2[] = {DS_BINARY,
                        "run",
                        "-b",
                        srv,
                        "--http.listen",
                        "off",
                        "--exit.on.eof",
                        "true",
                        "--merge.snapshot.interval.ms",
                        "0",
                        "-X",
                        "session.timeout.ms=6000",
                        NULL};
        int rc = ds_run(run2, NULL, rerr, 120000);
        cr_expect_neq(rc, 0, "a merge without snapshots ran on a partial topic without its head (see %s)", rerr);
        char *log = ds_slurp(rerr, NULL);
        cr_assert_not_null(log);
        cr_expect_not_null(strstr(log, "the partial topic lost its head and no merge snapshot covers it"), "see %s",
                           rerr);
        free(log);

        /* 4. with them it restores and the totals are the truth */
        snprintf(rerr, sizeof(rerr), "%s/run3.err", d);
        char *run3[] = {DS_BINARY, "run",           "-b",   srv,  "--http.listen",
                        "off",     "--exit.on.eof", "true", "-X", "session.timeout.ms=6000",
                        NULL};
        rc = ds_run(run3, NULL, rerr, 120000);
        cr_assert_eq(rc, 0, "run 3 exited with %d (see %s)", rc, rerr);
        log = ds_slurp(rerr, NULL);
        cr_assert_not_null(log);
        char want[128];
        snprintf(want, sizeof(want), "restored from a merge snapshot\" partition=0 snapshot_offset=%lld",
                 (long long)covered);
        cr_expect_not_null(strstr(log, want), "no restore from the snapshot at %lld (see %s)", (long long)covered,
                           rerr);
        free(log);
        ds_truth_check_t chk;
        int problems = ds_check_against_truth(srv, d, truth, &chk);
        cr_expect_gt(chk.rows_compared, 1000, "too few rows compared");
        cr_expect_eq(chk.declarations_counted, chk.declarations_truth);
        cr_expect_eq(problems, 0, "%d differences from the truth (details on stderr)", problems);
        stop_broker(&b, d);
}

/* ds_mstate's records produced to partition 0 of customs.merge.state, as a
 * writer would, with some dropped or changed (drop: the chunk to leave out,
 * -1 none; flip: change a byte of the END's hash). */
typedef struct mwriter {
        rd_kafka_t *prod;
        int n, drop, flip, stop_after;
} mwriter_t;

static int memit(void *ctx, const void *rec, size_t len) {
        mwriter_t *w = ctx;
        if (w->stop_after >= 0 && w->n >= w->stop_after)
                return -1; /* a writer that stopped part-way */
        uint8_t copy[4096];
        cr_assert_leq(len, sizeof(copy));
        memcpy(copy, rec, len);
        int idx = w->n++;
        if (idx == w->drop)
                return 0;
        if (w->flip && copy[3] == 2) /* the END: a byte of its hash */
                copy[len - 3] ^= 0x40;
        cr_assert_eq(rd_kafka_producev(w->prod, RD_KAFKA_V_TOPIC("customs.merge.state"), RD_KAFKA_V_PARTITION(0),
                                       RD_KAFKA_V_VALUE(copy, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                       RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
        cr_assert_eq(rd_kafka_flush(w->prod, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
        return 0;
}

/* Snapshot 4 (c, covering 20) written while snapshot 3 of another writer
 * is: their records alternate, and the other's never ends. */
typedef struct rec {
        uint8_t b[2048];
        size_t len;
} rec_t;
typedef struct recs {
        rec_t r[16];
        int n;
} recs_t;
static int keep(void *ctx, const void *rec, size_t len) {
        recs_t *rs = ctx;
        cr_assert_lt(rs->n, 16);
        cr_assert_leq(len, sizeof(rs->r[0].b));
        memcpy(rs->r[rs->n].b, rec, len);
        rs->r[rs->n++].len = len;
        return 0;
}
static void send_rec(rd_kafka_t *prod, const rec_t *r) {
        cr_assert_eq(rd_kafka_producev(prod, RD_KAFKA_V_TOPIC("customs.merge.state"), RD_KAFKA_V_PARTITION(0),
                                       RD_KAFKA_V_VALUE((void *)r->b, r->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                       RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
        cr_assert_eq(rd_kafka_flush(prod, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
}
static void interleaved(rd_kafka_t *prod, const uint8_t *c, size_t len) {
        static recs_t mine, theirs;
        mine.n = theirs.n = 0;
        ds_mstate_write(4, c, len, 20, 1000, keep, &mine);
        ds_mstate_write(3, c, 2000, 18, 1000, keep, &theirs);
        theirs.n--; /* its END never comes */
        for (int i = 0; i < mine.n || i < theirs.n; i++) {
                if (i < theirs.n)
                        send_rec(prod, &theirs.r[i]);
                if (i < mine.n)
                        send_rec(prod, &mine.r[i]);
        }
}

static void mwrite(rd_kafka_t *prod, uint64_t id, const uint8_t *p, size_t len, int64_t covered, int drop, int flip,
                   int stop_after) {
        mwriter_t w = {prod, 0, drop, flip, stop_after};
        ds_mstate_write(id, p, len, covered, 1000, memit, &w);
}

/* The reader takes the last complete snapshot: not one whose writer stopped
 * before its END, nor one missing a chunk, nor one whose bytes do not hash
 * to its END's; and it finds a snapshot's chunks among another writer's. */
Test(integration, the_merge_snapshot_read_is_the_last_complete_one, .init = setup, .fini = teardown) {
        char err[512];
        rd_kafka_conf_t *pconf = rd_kafka_conf_new();
        cr_assert_eq(rd_kafka_conf_set(pconf, "bootstrap.servers", servers, err, sizeof(err)), RD_KAFKA_CONF_OK);
        rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, err, sizeof(err));
        cr_assert_not_null(prod, "%s", err);
        static uint8_t a[3500], c[4200], other[2500];
        for (size_t i = 0; i < sizeof(a); i++)
                a[i] = (uint8_t)(i * 7);
        for (size_t i = 0; i < sizeof(c); i++)
                c[i] = (uint8_t)(i * 13 + 1);
        memset(other, 0x55, sizeof(other));
        mwrite(prod, 1, a, sizeof(a), 10, -1, 0, -1); /* complete: 4 chunks and END */
        mwrite(prod, 2, c, sizeof(c), 15, -1, 0, 2);  /* stopped after two chunks */
        /* C's chunks interleaved with another writer's, which never ends */
        interleaved(prod, c, sizeof(c));
        mwrite(prod, 5, other, sizeof(other), 25, 1, 0, -1);  /* a chunk missing */
        mwrite(prod, 6, other, sizeof(other), 30, -1, 1, -1); /* its hash does not match */
        rd_kafka_destroy(prod);

        static const char *const rdefs[] = {
                "enable.partition.eof", "true", "auto.offset.reset", "error", "group.id", "reader", NULL};
        rd_kafka_conf_t *rconf = ds_kafka_conf(DS_KAFKA_CONSUMER, rdefs, NULL, 0, err, sizeof(err));
        cr_assert_not_null(rconf, "%s", err);
        cr_assert_eq(rd_kafka_conf_set(rconf, "bootstrap.servers", servers, err, sizeof(err)), RD_KAFKA_CONF_OK);
        ds_mstate_t *ms = ds_mstate_new("customs.merge.state", rconf, err, sizeof(err));
        cr_assert_not_null(ms, "%s", err);
        uint8_t *out = NULL;
        size_t len = 0;
        int64_t covered = -1;
        cr_assert_eq(ds_mstate_latest(ms, 0, 0, INT64_MAX, &out, &len, &covered, err, sizeof(err)), 1, "%s", err);
        cr_expect_eq(covered, 20);
        cr_assert_eq(len, sizeof(c));
        cr_expect_eq(memcmp(out, c, len), 0, "the snapshot's bytes differ");
        free(out);
        out = NULL;
        /* one covering more than the partial partition holds is skipped for
         * the complete one before it (snapshot 1, covering 10) */
        cr_assert_eq(ds_mstate_latest(ms, 0, 0, 19, &out, &len, &covered, err, sizeof(err)), 1, "%s", err);
        cr_expect_eq(covered, 10);
        cr_expect(len == sizeof(a) && !memcmp(out, a, len), "snapshot 1's bytes differ");
        free(out);
        out = NULL;
        cr_expect_eq(ds_mstate_latest(ms, 1, 0, INT64_MAX, &out, &len, &covered, err, sizeof(err)), 0,
                     "an empty partition: %s", err);
        cr_expect_null(out);
        ds_mstate_destroy(ms);
}
