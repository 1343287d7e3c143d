/*
 * test_replay.c - replay files and `declstream replay`.
 *
 * The generator writes a replay file and its truth (`declstream gen --file`);
 * replaying the file must give exactly the truth's totals - every row, top
 * list and (within HyperLogLog's error) distinct count - and dead-letter
 * exactly the bad messages the truth counts, per reason, on one thread or
 * two. Bad flags and damaged files give a clear error and no crash.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ds_reason.h"
#include "ds_replay.h"
#include "ds_testutil.h"

static char *g_dir;

static void setup(void) {
        g_dir = ds_tmpdir("replay");
        cr_assert_not_null(g_dir);
}

static void teardown(void) {
        ds_tmpdir_remove(g_dir);
        free(g_dir);
}

TestSuite(replay, .init = setup, .fini = teardown, .timeout = 120);

static void path(char *buf, size_t n, const char *name) {
        snprintf(buf, n, "%s/%s", g_dir, name);
}

/* declstream gen --file into the test's directory: NAME.rpl and its truth
 * NAME.truth.json, whose paths go to file and truth (512 bytes each); extra:
 * more gen arguments (NULL-terminated, or NULL). Event time starts at
 * DS_GEN_FIXED_START, so a failure repeats on any day. */
static void gen_file_with(const char *name, int count, double bad_rate, char *const *extra, char *file, char *truth) {
        char n[128], c[32], br[32];
        snprintf(n, sizeof(n), "%s.rpl", name);
        path(file, 512, n);
        snprintf(n, sizeof(n), "%s.truth.json", name);
        path(truth, 512, n);
        snprintf(c, sizeof(c), "%d", count);
        snprintf(br, sizeof(br), "%g", bad_rate);
        char *argv[32] = {DS_BINARY, "gen", "--file", (char *)file, "--count", c, "--partitions", "4", "--bad-rate", br,
                          "--amend-rate", "0.1", "--cancel-rate", "0.02", "--span-days", "2", "--start-ms", DS_GEN_FIXED_START,
                          "--seed", "7", "--truth", (char *)truth, "-q"};
        int n_args = 0;
        while (argv[n_args]) /* the rest of argv is NULL */
                n_args++;
        for (int i = 0; extra && extra[i] && n_args < 31; i++)
                argv[n_args++] = extra[i];
        argv[n_args] = NULL;
        cr_assert_eq(ds_run(argv, NULL, NULL, 120000), 0, "declstream gen --file failed");
}

static void gen_file(const char *name, int count, double bad_rate, char *file, char *truth) {
        gen_file_with(name, count, bad_rate, NULL, file, truth);
}

/* Runs declstream replay with args; returns the exit status. */
static int replay(char *const *args, const char *out, const char *err) {
        char *argv[32] = {DS_BINARY, "replay"};
        int n = 2;
        for (int i = 0; args[i] && n < 31; i++)
                argv[n++] = args[i];
        argv[n] = NULL;
        return ds_run(argv, out, err, 120000);
}

/* Compares JSON-lines totals with a truth file: rows (all measures), top
 * lists, distinct counts within ds_hll_tolerance(). Returns the number of differences. */
static int compare_with_truth(const char *lines_path, const char *truth_path) {
        json_error_t je;
        json_t *truth = json_load_file(truth_path, 0, &je);
        cr_assert_not_null(truth, "truth: %s", je.text);
        json_t *rows = json_object(), *tops = json_object();
        FILE *f = fopen(lines_path, "r");
        cr_assert_not_null(f);
        char *line = NULL;
        size_t cap = 0;
        while (getline(&line, &cap, f) > 0) {
                json_t *o = json_loads(line, 0, &je);
                cr_assert_not_null(o, "bad line: %s", line);
                if (json_object_get(o, "top"))
                        json_object_set(tops, json_string_value(json_object_get(o, "top")), json_object_get(o, "headings"));
                else
                        json_object_set(rows, json_string_value(json_object_get(o, "key")), o);
                json_decref(o);
        }
        free(line);
        fclose(f);
        static const char *fields[8] = {"declarations",           "items",
                                        "customs_value_usd_cents", "gross_weight_g",
                                        "export_value_usd_cents", "import_value_usd_cents",
                                        "transit_value_usd_cents", "border_resident_value_usd_cents"};
        int diffs = 0, compared = 0;
        const char *k;
        json_t *want;
        json_object_foreach(json_object_get(truth, "rows"), k, want) {
                json_t *got = json_object_get(rows, k);
                int zero = 1;
                for (int i = 0; i < 8; i++)
                        zero &= json_integer_value(json_array_get(want, (size_t)i)) == 0;
                if (!got) {
                        if (!zero && diffs++ < 10)
                                cr_log_error("%s: missing", k);
                        continue;
                }
                compared++;
                for (int i = 0; i < 8; i++) {
                        long long g = json_integer_value(json_object_get(got, fields[i])),
                                  w = json_integer_value(json_array_get(want, (size_t)i));
                        if (g != w && diffs++ < 10)
                                cr_log_error("%s %s: got %lld, truth %lld", k, fields[i], g, w);
                }
        }
        json_object_foreach(rows, k, want) if (!json_object_get(json_object_get(truth, "rows"), k) && diffs++ < 10)
                cr_log_error("unexpected row %s", k);
        json_object_foreach(json_object_get(truth, "top"), k, want) {
                if (!json_equal(json_object_get(tops, k), want) && diffs++ < 10)
                        cr_log_error("top list %s differs", k);
        }
        json_object_foreach(json_object_get(truth, "distinct"), k, want) {
                char gate[32], key[96];
                long long day;
                cr_assert_eq(sscanf(k, "%31[^|]|DAY|%lld", gate, &day), 2);
                snprintf(key, sizeof(key), "GATE|%s|DAY|%lld", gate, day);
                json_t *got = json_object_get(rows, key);
                long long td = json_integer_value(json_array_get(want, 0)), tv = json_integer_value(json_array_get(want, 1));
                long long gd = json_integer_value(json_object_get(got, "distinct_declarants")),
                          gv = json_integer_value(json_object_get(got, "distinct_vehicles"));
                /* HyperLogLog: 0.8% standard error; small sets lose values to shared registers */
                if ((!got || llabs(gd - td) > ds_hll_tolerance(td) || llabs(gv - tv) > ds_hll_tolerance(tv)) &&
                    diffs++ < 10)
                        cr_log_error("%s distinct %lld/%lld, truth %lld/%lld", key, gd, gv, td, tv);
        }
        cr_expect_gt(compared, 100, "only %d rows compared", compared);
        json_decref(rows);
        json_decref(tops);
        json_decref(truth);
        return diffs;
}

/* The truth's count of bad messages for each reason. */
static void expect_dead_letters(const char *truth_path, json_t *reasons) {
        json_t *truth = json_load_file(truth_path, 0, NULL);
        cr_assert_not_null(truth);
        json_t *bad = json_object_get(truth, "bad_by_reason");
        cr_assert_gt(json_object_size(bad), 3, "the file should hold several kinds of bad messages");
        cr_expect(json_equal(bad, reasons), "dead letters per reason differ from the truth: %s vs %s",
                  json_dumps(reasons, JSON_COMPACT | JSON_SORT_KEYS), json_dumps(bad, JSON_COMPACT | JSON_SORT_KEYS));
        json_decref(truth);
}

Test(replay, gen_file_replayed_on_two_threads_gives_the_truth) {
        char file[512], truth[512], out[512], js[512], err[512];
        path(out, sizeof(out), "totals.jsonl");
        path(js, sizeof(js), "replay.json");
        path(err, sizeof(err), "replay.err");
        gen_file("g", 20000, 0.02, file, truth);
        char *args[] = {"--file", file, "--threads", "2", "--output", out, "--json", "--cycle-ms", "20", NULL};
        cr_assert_eq(replay(args, js, err), 0);
        json_t *res = json_load_file(js, 0, NULL);
        cr_assert_not_null(res, "--json printed no JSON object");
        json_t *t = json_load_file(truth, 0, NULL);
        cr_expect_eq(json_integer_value(json_object_get(res, "messages")), json_integer_value(json_object_get(t, "messages")));
        cr_expect_eq(json_integer_value(json_object_get(res, "dead_lettered")), json_integer_value(json_object_get(t, "bad")));
        cr_expect_eq(json_integer_value(json_object_get(res, "declarations")), json_integer_value(json_object_get(t, "valid")));
        cr_expect_eq(json_integer_value(json_object_get(res, "threads")), 2);
        const char *keys[] = {"seconds",     "declarations_per_s", "ns_per_declaration",
                              "cpu_seconds", "main_cpu_seconds",   "worker_cpu_ns_per_declaration",
                              "tail_seconds"};
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
                cr_expect(json_is_number(json_object_get(res, keys[i])), "no %s in the JSON", keys[i]);
        /* the main thread's CPU is part of the process's */
        double cpu = json_number_value(json_object_get(res, "cpu_seconds"));
        double main_cpu = json_number_value(json_object_get(res, "main_cpu_seconds"));
        cr_expect(main_cpu >= 0 && main_cpu <= cpu + 0.02, "main thread %.3f s of %.3f s CPU", main_cpu, cpu);
        /* the final cycle comes after the last message and takes some time: part of the measured span */
        double secs = json_number_value(json_object_get(res, "seconds"));
        double tail = json_number_value(json_object_get(res, "tail_seconds"));
        cr_expect(tail > 0 && tail <= secs, "tail %.6f s of %.6f s", tail, secs);
        expect_dead_letters(truth, json_object_get(res, "dead_letter_reasons"));
        json_decref(t);
        json_decref(res);
        cr_expect_eq(compare_with_truth(out, truth), 0, "replayed totals differ from the truth");
}

/* 50 gates (34 from a gates file, so gate numbers pass 31, the cell key's
 * old limit): generated and replayed with the same file, the totals, top
 * lists and distinct counts are the truth's; replayed without it, the added
 * gates' declarations are dead-lettered as unknown_gate, none lost. */
Test(replay, a_gates_file_of_fifty_gates_replays_to_the_truth) {
        char gates[512], file[512], truth[512], out[512], js[512], err[512];
        path(gates, sizeof(gates), "gates.csv");
        cr_assert_eq(ds_write_gates_file(gates, "gate_code,name_vi,province,customs_office_prefix", 34, NULL,
                                         "\"Cửa khẩu thử, bench\",Lạng Sơn,15"),
                     0);
        path(out, sizeof(out), "g50.jsonl");
        path(js, sizeof(js), "g50.json");
        path(err, sizeof(err), "g50.err");
        char *with_gates[] = {"--gates-file", gates, NULL};
        gen_file_with("g50", 20000, 0.02, with_gates, file, truth);
        char *args[] = {"--file", file, "--threads", "2", "--gates-file", gates, "--output", out, "--json",
                        "--cycle-ms", "20", NULL};
        cr_assert_eq(replay(args, js, err), 0);
        json_t *res = json_load_file(js, 0, NULL), *t = json_load_file(truth, 0, NULL);
        cr_assert(res && t);
        cr_expect_eq(json_integer_value(json_object_get(res, "declarations")),
                     json_integer_value(json_object_get(t, "valid")));
        expect_dead_letters(truth, json_object_get(res, "dead_letter_reasons"));
        cr_expect_eq(compare_with_truth(out, truth), 0, "replayed totals differ from the truth");
        char *lines = ds_slurp(out, NULL);
        cr_assert_not_null(lines);
        cr_expect(strstr(lines, "\"GATE|XG34|DAY|") && strstr(lines, "{\"top\":\"XG34|DAY|"),
                  "no row or top list of gate XG34 (number 49)");
        free(lines);
        json_decref(res);
        /* without the file: the added gates' declarations are dead letters */
        char *plain[] = {"--file", file, "--json", NULL};
        cr_assert_eq(replay(plain, js, err), 0);
        res = json_load_file(js, 0, NULL);
        cr_assert_not_null(res);
        json_int_t unknown = json_integer_value(
            json_object_get(json_object_get(res, "dead_letter_reasons"), "unknown_gate"));
        json_int_t truth_unknown =
            json_integer_value(json_object_get(json_object_get(t, "bad_by_reason"), "unknown_gate"));
        cr_expect_gt(unknown, truth_unknown + 1000, "unknown_gate %lld, the truth's %lld", (long long)unknown,
                     (long long)truth_unknown);
        cr_expect_eq(json_integer_value(json_object_get(res, "messages")),
                     json_integer_value(json_object_get(t, "messages")), "messages lost");
        cr_expect_eq(json_integer_value(json_object_get(res, "declarations")) +
                         json_integer_value(json_object_get(res, "dead_lettered")),
                     json_integer_value(json_object_get(t, "messages")));
        json_decref(res);
        json_decref(t);
        /* a gates file that cannot be read is a usage error naming the flag */
        char *bad[] = {"--file", file, "--gates-file", "/nonexistent/gates.csv", NULL};
        cr_expect_eq(replay(bad, NULL, err), 2);
        char *e = ds_slurp(err, NULL);
        cr_expect(e && strstr(e, "--gates-file") && strstr(e, "cannot open /nonexistent/gates.csv"), "%s", e);
        free(e);
}

Test(replay, library_replay_on_one_thread_with_many_cycles_gives_the_truth) {
        char file[512], truth[512], out[512], err[512];
        path(out, sizeof(out), "totals1.jsonl");
        gen_file("g1", 8000, 0.05, file, truth);
        ds_replay_file_t *f = ds_replay_file_open(file, err, sizeof(err));
        cr_assert_not_null(f, "%s", err);
        ds_replay_opts_t o;
        ds_replay_opts_default(&o);
        o.cycle_ms = 1;
        o.sink = DS_REPLAY_SINK_KEEP;
        ds_replay_t *r = ds_replay_new(f, &o, err, sizeof(err));
        cr_assert_not_null(r, "%s", err);
        ds_replay_result_t res;
        cr_assert_eq(ds_replay_run(r, &res, err, sizeof(err)), 0, "%s", err);
        cr_expect_eq(res.messages, ds_replay_file_count(f));
        cr_expect_eq(res.messages, res.declarations + res.dead_lettered);
        json_t *reasons = json_object();
        for (int k = 1; k < DS_DLQ__CNT; k++)
                if (res.dlq[k])
                        json_object_set_new(reasons, ds_dlq_code((ds_dlq_reason_t)k), json_integer((json_int_t)res.dlq[k]));
        expect_dead_letters(truth, reasons);
        json_decref(reasons);
        FILE *w = fopen(out, "w");
        cr_assert_eq(ds_replay_write_totals(r, w, err, sizeof(err)), 0, "%s", err);
        fclose(w);
        ds_replay_destroy(r);
        ds_replay_file_close(f);
        cr_expect_eq(compare_with_truth(out, truth), 0, "replayed totals differ from the truth");
}

/* --role process: the processing role alone. The partial rows it encodes
 * (and decodes back) must carry the truth: the last GATE TOTAL share of every
 * partition, summed, is every gate's TOTAL declarations in the truth; it
 * writes the changelog; and it applies exactly what the whole replay
 * applies. */
Test(replay, processing_role_encodes_partial_rows_that_sum_to_the_truth) {
        char file[512], truth[512], js[512];
        path(js, sizeof(js), "p.json");
        gen_file("p", 20000, 0.02, file, truth);
        char *proc[] = {"--file", file,      "--json",     "-q", "--threads",        "2",
                        "--role", "process", "--cycle-ms", "20", "--check-partials", NULL};
        cr_assert_eq(replay(proc, js, NULL), 0);
        json_t *p = json_load_file(js, 0, NULL);
        char *all[] = {"--file", file, "--json", "-q", NULL};
        cr_assert_eq(replay(all, js, NULL), 0);
        json_t *a = json_load_file(js, 0, NULL);
        json_t *t = json_load_file(truth, 0, NULL);
        cr_assert(p && a && t);
        cr_expect_str_eq(json_string_value(json_object_get(p, "role")), "process");
        cr_expect_str_eq(json_string_value(json_object_get(a, "role")), "all");
        long long want = 0;
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(t, "rows"), k, v) if (!strncmp(k, "GATE|", 5) && strstr(k, "|TOTAL|"))
            want += json_integer_value(json_array_get(v, 0));
        cr_expect_gt(want, 15000);
        cr_expect_eq(json_integer_value(json_object_get(p, "partial_total_declarations")), want,
                     "the partial rows' GATE TOTAL shares sum to %lld declarations, the truth to %lld",
                     (long long)json_integer_value(json_object_get(p, "partial_total_declarations")), want);
        json_int_t prow = json_integer_value(json_object_get(p, "partial_rows"));
        json_int_t pmsg = json_integer_value(json_object_get(p, "partials"));
        cr_expect_gt(prow, json_integer_value(json_object_get(a, "rows_published")),
                     "every partition's share is a partial row of its own: more of them than merged rows");
        /* rows travel in batches: a cycle's rows of one partial partition in one message per
         * worker (2 here), beside a STATUS message per partial partition */
        cr_expect_lt(pmsg * 4, prow, "%lld partial messages for %lld rows: not batched", (long long)pmsg,
                     (long long)prow);
        cr_expect_gt(json_integer_value(json_object_get(p, "partial_bytes")), 0);
        /* the workers wrote the changelog as the processing role does: a snapshot of each of the 12
         * partitions at least, and every applied declaration's ledger entry (an id alone is 12 digits) */
        cr_expect_geq(json_integer_value(json_object_get(p, "changelog_records")), 12);
        cr_expect_gt(json_integer_value(json_object_get(p, "changelog_bytes")),
                     12 * json_integer_value(json_object_get(p, "declarations")));
        cr_expect_null(json_object_get(a, "changelog_bytes"));
        cr_expect(json_equal(json_object_get(p, "outcomes"), json_object_get(a, "outcomes")));
        cr_expect(json_equal(json_object_get(p, "dead_letter_reasons"), json_object_get(a, "dead_letter_reasons")));
        cr_expect_null(json_object_get(a, "partials"));
        json_decref(p);
        json_decref(a);
        json_decref(t);
}

Test(replay, repeat_does_the_full_work_again) {
        char file[512], truth[512], js[512];
        path(js, sizeof(js), "r.json");
        gen_file("r", 3000, 0, file, truth);
        char *one[] = {"--file", file, "--json", "-q", NULL}, *three[] = {"--file", file, "--json", "-q", "--repeat", "3", NULL};
        cr_assert_eq(replay(one, js, NULL), 0);
        json_t *a = json_load_file(js, 0, NULL);
        cr_assert_eq(replay(three, js, NULL), 0);
        json_t *b = json_load_file(js, 0, NULL);
        cr_assert(a && b);
        json_int_t n1 = json_integer_value(json_object_get(json_object_get(a, "outcomes"), "applied_new"));
        json_int_t n3 = json_integer_value(json_object_get(json_object_get(b, "outcomes"), "applied_new"));
        cr_expect_gt(n1, 2900);
        cr_expect_eq(n3, 3 * n1, "later passes must add new declarations, not be ignored as redeliveries");
        cr_expect_eq(json_integer_value(json_object_get(b, "ledger_entries")),
                     3 * json_integer_value(json_object_get(a, "ledger_entries")));
        json_decref(a);
        json_decref(b);
}

/* Runs a replay that must succeed and returns its --json object (js: where
 * it is written). */
static json_t *replay_json(char *const *args, const char *js) {
        cr_assert_eq(replay(args, js, NULL), 0);
        json_t *o = json_load_file(js, 0, NULL);
        cr_assert_not_null(o, "no JSON object from the replay");
        return o;
}

/* The lines of a totals file, but rows whose every measure is 0: such a row
 * was published between an addition and its retraction (an amendment moving
 * a line), which depends on when the cycles fell, and says nothing. */
static char *nonzero_lines(const char *file) {
        char *all = ds_slurp(file, NULL);
        cr_assert_not_null(all);
        char *out = calloc(strlen(all) + 1, 1), *o = out;
        cr_assert_not_null(out);
        for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n"))
                if (!strstr(line, "\"declarations\":0,\"items\":0,\"customs_value_usd_cents\":0,\"gross_weight_g\":0,"))
                        o += sprintf(o, "%s\n", line);
        free(all);
        return out;
}

/* --warmup W: the first W passes run before the clock starts and count
 * nothing, but they are history all the same: the measured passes continue
 * it. So --warmup 1 (on two threads, which meet at the end of the warm-up)
 * counts one pass's work and ends with the state, the totals and the
 * partial rows' shares of --repeat 2. With 1 ms cycles, flushes fall in the
 * warm-up's wait and at the pass's first message: the clock's jump between
 * passes once made partitions look idle there, and the merge closed their
 * windows early (rows missing from the totals in 3 runs of 6). */
Test(replay, warmup_passes_are_history_but_are_not_counted) {
        char file[512], truth[512], js[512], out1[512], out2[512];
        path(js, sizeof(js), "w.json");
        path(out1, sizeof(out1), "warm.jsonl");
        path(out2, sizeof(out2), "two.jsonl");
        gen_file("w", 3000, 0.02, file, truth);
        char *one[] = {"--file", file, "--json", "-q", NULL};
        char *two[] = {"--file", file, "--json", "-q", "--repeat", "2", "--output", out2, NULL};
        char *warm[] = {"--file", file,         "--json", "-q",       "--warmup", "1", "--threads",
                        "2",      "--cycle-ms", "1",      "--output", out1,       NULL};
        json_t *a = replay_json(one, js), *b = replay_json(two, js), *c = replay_json(warm, js);
        cr_expect_eq(json_integer_value(json_object_get(c, "warmup")), 1);
        cr_expect_gt(json_integer_value(json_object_get(a, "dead_lettered")), 0);
        static const char *counted[] = {"declarations", "messages", "dead_lettered", "bytes"};
        for (size_t i = 0; i < sizeof(counted) / sizeof(counted[0]); i++)
                cr_expect_eq(json_integer_value(json_object_get(c, counted[i])),
                             json_integer_value(json_object_get(a, counted[i])), "%s: the warm-up was counted",
                             counted[i]);
        cr_expect(json_equal(json_object_get(c, "outcomes"), json_object_get(a, "outcomes")));
        cr_expect_eq(json_integer_value(json_object_get(c, "ledger_entries")),
                     json_integer_value(json_object_get(b, "ledger_entries")), "the warm-up's declarations are gone");
        cr_expect_eq(json_integer_value(json_object_get(b, "ledger_entries")),
                     2 * json_integer_value(json_object_get(a, "ledger_entries")));
        char *t1 = nonzero_lines(out1), *t2 = nonzero_lines(out2);
        cr_expect(strlen(t1) > 1000 && !strcmp(t1, t2), "the totals after a warm-up pass and one pass are not those "
                                                        "of two passes");
        free(t1);
        free(t2);
        /* the processing role: the same shares in the end, only the measured pass's rows counted;
         * without --check-partials the batches are not decoded back, so there is no sum */
        char *pw[] = {"--file",   file, "--json",    "-q", "--role",     "process", "--check-partials",
                      "--warmup", "1",  "--threads", "2",  "--cycle-ms", "1",       NULL};
        char *p2[] = {"--file", file, "--json", "-q", "--role", "process", "--check-partials", "--repeat", "2", NULL};
        char *p1[] = {"--file", file, "--json", "-q", "--role", "process", NULL};
        json_t *d = replay_json(pw, js), *e = replay_json(p2, js), *f = replay_json(p1, js);
        json_int_t want = json_integer_value(json_object_get(e, "partial_total_declarations"));
        cr_expect_gt(want, 5000);
        cr_expect_eq(json_integer_value(json_object_get(d, "partial_total_declarations")), want);
        cr_expect_lt(json_integer_value(json_object_get(d, "partial_rows")),
                     json_integer_value(json_object_get(e, "partial_rows")));
        cr_expect_null(json_object_get(f, "partial_total_declarations"));
        cr_expect_gt(json_integer_value(json_object_get(f, "partial_rows")), 0);
        json_decref(a);
        json_decref(b);
        json_decref(c);
        json_decref(d);
        json_decref(e);
        json_decref(f);
}

Test(replay, writer_and_reader_round_trip_null_and_empty_fields) {
        char file[512], err[512];
        path(file, sizeof(file), "rt.rpl");
        ds_replay_writer_t *w = ds_replay_writer_open(file, err, sizeof(err));
        cr_assert_not_null(w, "%s", err);
        cr_assert_eq(ds_replay_write(w, 3, 10, 1700000000000, "k1", 2, "v", 1, err, sizeof(err)), 0);
        cr_assert_eq(ds_replay_write(w, 0, 0, -1, NULL, 0, NULL, 0, err, sizeof(err)), 0);
        cr_assert_eq(ds_replay_write(w, 65535, 1, 5, "", 0, "", 0, err, sizeof(err)), 0);
        cr_expect_neq(ds_replay_write(w, -1, 1, 5, "", 0, "", 0, err, sizeof(err)), 0);
        cr_assert_eq(ds_replay_writer_close(w, 1, err, sizeof(err)), 0, "%s", err);
        ds_replay_file_t *f = ds_replay_file_open(file, err, sizeof(err));
        cr_assert_not_null(f, "%s", err);
        cr_expect_eq(ds_replay_file_count(f), 3);
        cr_expect_eq(ds_replay_file_max_partition(f), 65535);
        size_t pos = 0;
        ds_replay_msg_t m;
        cr_assert(ds_replay_file_next(f, &pos, &m));
        cr_expect(m.partition == 3 && m.offset == 10 && m.timestamp == 1700000000000 && m.key_len == 2 &&
                  !memcmp(m.key, "k1", 2) && m.value_len == 1 && m.value[0] == 'v');
        cr_assert(ds_replay_file_next(f, &pos, &m));
        cr_expect(m.key == NULL && m.value == NULL && m.timestamp == -1);
        cr_assert(ds_replay_file_next(f, &pos, &m));
        cr_expect(m.key != NULL && m.key_len == 0 && m.value != NULL && m.value_len == 0 && m.partition == 65535);
        cr_expect_not(ds_replay_file_next(f, &pos, &m));
        ds_replay_file_close(f);
}

Test(replay, help_prints_usage) {
        char out[512];
        path(out, sizeof(out), "help.txt");
        char *args[] = {"--help", NULL};
        cr_assert_eq(replay(args, out, NULL), 0);
        char *s = ds_slurp(out, NULL);
        cr_assert_not_null(s);
        cr_expect(strstr(s, "usage: declstream replay") && strstr(s, "--threads") && strstr(s, "--repeat") &&
                  strstr(s, "--json"));
        free(s);
}

/* Runs replay with args; expects exit status 2 and words in stderr. */
static void expect_usage_error(char *const *args, const char *w1, const char *w2) {
        char err[512];
        path(err, sizeof(err), "usage.err");
        cr_expect_eq(replay(args, NULL, err), 2, "expected a usage error for %s", args[0]);
        char *s = ds_slurp(err, NULL);
        cr_assert_not_null(s);
        cr_expect(strstr(s, w1) != NULL, "stderr \"%s\" does not name %s", s, w1);
        if (w2)
                cr_expect(strstr(s, w2) != NULL, "stderr \"%s\" does not say %s", s, w2);
        free(s);
}

Test(replay, bad_flags_give_an_error_naming_the_flag) {
        char *a1[] = {"--file", "x", "--threads", "0", NULL};
        expect_usage_error(a1, "--threads", "between");
        char *a2[] = {"--file", "x", "--repeat", "lots", NULL};
        expect_usage_error(a2, "--repeat", "integer");
        char *a3[] = {"--file", "x", "--heading-digits", "3", NULL};
        expect_usage_error(a3, "--heading-digits", NULL);
        char *a4[] = {"--file", "x", "--bogus", NULL};
        expect_usage_error(a4, "--bogus", "unknown");
        char *a5[] = {"--threads", "2", NULL};
        expect_usage_error(a5, "--file", "required");
        char *a6[] = {"--file", NULL};
        expect_usage_error(a6, "--file", "needs a value");
        char *a7[] = {"--file", "x", "--cycle-ms", "-5", NULL};
        expect_usage_error(a7, "--cycle-ms", NULL);
        char *a8[] = {"--file", "x", "--role", "merge", NULL};
        expect_usage_error(a8, "--role", "process");
        char *a9[] = {"--file", "x", "--role", "process", "--table", NULL};
        expect_usage_error(a9, "--role process", "--table");
        char *a10[] = {"--file", "x", "--warmup", "-1", NULL};
        expect_usage_error(a10, "--warmup", "between");
        char *a11[] = {"--file", "x", "--check-partials", NULL};
        expect_usage_error(a11, "--check-partials", "--role process");
}

/* gen's counts take k and m (2k = 2000); nothing else does ("--duration 10m"
 * was ten million seconds, not ten minutes), and a count whose suffix
 * overflows is refused (2305843009213693960k wrapped to 8000). */
Test(replay, gen_counts_take_k_and_m_and_nothing_else_does) {
        char f1[512], f2[512], err[512];
        path(f1, sizeof(f1), "k.rpl");
        path(f2, sizeof(f2), "n.rpl");
        path(err, sizeof(err), "gen.err");
        /* the same start: by default it follows the clock */
        char *a[] = {DS_BINARY, "gen",        "--file",        f1,   "--count", "2k", "--partitions",
                     "2",       "--start-ms", "1732294800000", "-q", NULL};
        cr_assert_eq(ds_run(a, NULL, err, 60000), 0, "gen --count 2k failed");
        char *b[] = {DS_BINARY, "gen",        "--file",        f2,   "--count", "2000", "--partitions",
                     "2",       "--start-ms", "1732294800000", "-q", NULL};
        cr_assert_eq(ds_run(b, NULL, err, 60000), 0, "gen --count 2000 failed");
        size_t n1, n2;
        char *s1 = ds_slurp(f1, &n1), *s2 = ds_slurp(f2, &n2);
        /* the same records (each carries its own wall-clock timestamp, so not the same bytes) */
        cr_expect(s1 && s2 && n1 == n2, "--count 2k and --count 2000 wrote %zu and %zu bytes", n1, n2);
        free(s1);
        free(s2);
        static const struct {
                const char *flag, *value, *says;
        } bad[] = {{"--count", "2305843009213693960k", "between"},
                   {"--count", "9300000000000000k", "between"},
                   {"--duration", "10m", "integer"},
                   {"--max-lateness", "5m", "integer"},
                   {"--seed", "3k", "integer"}};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char *c[] = {DS_BINARY, "gen", "--file", f1, "--count", "10", (char *)bad[i].flag, (char *)bad[i].value,
                             "-q",      NULL};
                if (!strcmp(bad[i].flag, "--count"))
                        c[4] = "--partitions", c[5] = "2";
                cr_expect_eq(ds_run(c, NULL, err, 60000), 2, "gen %s %s was accepted", bad[i].flag, bad[i].value);
                char *e = ds_slurp(err, NULL);
                cr_expect(e && strstr(e, bad[i].flag) && strstr(e, bad[i].says), "gen %s %s: stderr %s", bad[i].flag,
                          bad[i].value, e ? e : "(none)");
                free(e);
        }
}

/* Copies src to dst, keeping its first n bytes (n < 0: all), then lets
 * patch change it. */
static void copy_file(const char *src, const char *dst, long n, void (*patch)(uint8_t *, size_t)) {
        size_t len;
        char *s = ds_slurp(src, &len);
        cr_assert_not_null(s);
        if (n >= 0 && (size_t)n < len)
                len = (size_t)n;
        if (patch)
                patch((uint8_t *)s, len);
        FILE *f = fopen(dst, "wb");
        cr_assert_not_null(f);
        cr_assert_eq(fwrite(s, 1, len, f), len);
        fclose(f);
        free(s);
}

static void patch_magic(uint8_t *p, size_t n) {
        (void)n;
        p[0] = 'X';
}

static void patch_value_len(uint8_t *p, size_t n) {
        (void)n;
        /* first record's value_len: 16-byte header + 24 */
        p[16 + 24] = 0xf0, p[16 + 25] = 0xff, p[16 + 26] = 0xff, p[16 + 27] = 0x0f;
}

static void patch_partition(uint8_t *p, size_t n) {
        (void)n;
        p[16 + 3] = 0x80; /* negative */
}

Test(replay, damaged_files_give_a_clear_error) {
        char file[512], truth[512], bad[512];
        path(bad, sizeof(bad), "bad.rpl");
        gen_file("d", 500, 0.05, file, truth);
        size_t len;
        char *s = ds_slurp(file, &len);
        free(s);
        char *args[] = {"--file", bad, NULL};

        copy_file(file, bad, (long)len - 7, NULL);
        expect_usage_error(args, "truncated", "record");
        copy_file(file, bad, 40, NULL); /* inside the first record's header */
        expect_usage_error(args, "truncated", "record 1");
        copy_file(file, bad, 10, NULL);
        expect_usage_error(args, "too short", NULL);
        copy_file(file, bad, 0, NULL);
        expect_usage_error(args, "too short", NULL);
        copy_file(file, bad, -1, patch_magic);
        expect_usage_error(args, "not a declstream replay file", NULL);
        copy_file(file, bad, -1, patch_value_len);
        expect_usage_error(args, "corrupt", "record 1");
        copy_file(file, bad, -1, patch_partition);
        expect_usage_error(args, "partition", "corrupt");
        char missing[600];
        snprintf(missing, sizeof(missing), "%s/none.rpl", g_dir);
        char *a2[] = {"--file", missing, NULL};
        expect_usage_error(a2, "cannot open", "none.rpl");
}

/* gen -> the embedded broker -> dump -> replay: the archive of a topic
 * recomputes the truth, and the dump holds every message, in order per
 * partition, with its offset. */
Test(replay, dump_of_a_topic_replays_to_the_truth) {
        ds_proc_t broker;
        char servers[256], file[512], truth[512], out[512], js[512], err[512];
        cr_assert_eq(ds_broker_start(&broker, g_dir, 6, servers, sizeof(servers)), 0, "broker did not start");
        path(file, sizeof(file), "dump.rpl");
        path(truth, sizeof(truth), "dump.truth.json");
        path(out, sizeof(out), "dump.totals.jsonl");
        path(js, sizeof(js), "dump.json");
        path(err, sizeof(err), "dump.err");
        char *gen[] = {DS_BINARY, "gen", "-b", servers, "--count", "5000", "--bad-rate", "0.02", "--span-days", "1",
                       "--seed", "3", "--truth", truth, "-q", NULL};
        int rc = ds_run(gen, NULL, err, 120000);
        char *dump[] = {DS_BINARY, "dump", "-b", servers, "--file", file, "--exit-on-eof", "-q", NULL};
        int rc2 = rc ? -1 : ds_run(dump, NULL, err, 120000);
        ds_proc_kill(&broker, SIGTERM);
        if (ds_proc_wait(&broker, 5000) < 0)
                ds_proc_kill(&broker, SIGKILL);
        cr_assert_eq(rc, 0, "declstream gen -b failed");
        cr_assert_eq(rc2, 0, "declstream dump failed");

        char e[512];
        ds_replay_file_t *f = ds_replay_file_open(file, e, sizeof(e));
        cr_assert_not_null(f, "%s", e);
        json_t *t = json_load_file(truth, 0, NULL);
        cr_assert_not_null(t);
        cr_expect_eq(ds_replay_file_count(f), (uint64_t)json_integer_value(json_object_get(t, "messages")));
        int64_t next[6] = {0};
        size_t pos = 0;
        ds_replay_msg_t m;
        int in_order = 1;
        while (ds_replay_file_next(f, &pos, &m)) {
                cr_assert(m.partition >= 0 && m.partition < 6);
                in_order &= m.offset == next[m.partition];
                next[m.partition] = m.offset + 1;
        }
        cr_expect(in_order, "every partition's offsets should run 0, 1, 2, ...");
        ds_replay_file_close(f);

        char *args[] = {"--file", file, "--threads", "2", "--output", out, "--json", "-q", NULL};
        cr_assert_eq(replay(args, js, NULL), 0);
        json_t *res = json_load_file(js, 0, NULL);
        cr_assert_not_null(res);
        expect_dead_letters(truth, json_object_get(res, "dead_letter_reasons"));
        json_decref(res);
        json_decref(t);
        cr_expect_eq(compare_with_truth(out, truth), 0, "totals replayed from the dump differ from the truth");
}
