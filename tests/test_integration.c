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
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds_testutil.h"

#define SCHEMA DS_SOURCE_DIR "/schemas/customs_total.avsc"

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
        static char buf[8][512];
        static int i;
        char *b = buf[i++ % 8];
        snprintf(b, 512, "%s/%s", dir, name);
        return b;
}

/* kcat -C from the beginning to the end of a topic with format f. */
static void kcat_read(const char *topic, const char *format, const char *out) {
        char *argv[] = {"kcat", "-b", servers, "-C", "-t", (char *)topic, "-o", "beginning", "-e", "-q",
                        "-f", (char *)format, NULL};
        int rc = ds_run(argv, out, path("kcat.err"), 120000);
        cr_assert_eq(rc, 0, "kcat exited with %d reading %s", rc, topic);
}

static void check_head_not_deleted(const char *topic, int partitions) {
        kcat_read(topic, "%p %o\n", path("offsets.txt"));
        FILE *f = fopen(path("offsets.txt"), "r");
        cr_assert_not_null(f);
        long long first[256];
        for (int i = 0; i < 256; i++)
                first[i] = -1;
        int p;
        long long o;
        while (fscanf(f, "%d %lld", &p, &o) == 2)
                if (p >= 0 && p < 256 && first[p] < 0)
                        first[p] = o;
        fclose(f);
        for (int i = 0; i < partitions; i++)
                cr_expect(first[i] == 0 || first[i] == -1,
                          "%s partition %d starts at offset %lld: the broker deleted its head", topic, i, first[i]);
}

Test(integration, totals_and_dead_letters_match_the_truth, .init = setup, .fini = teardown, .timeout = 600) {
        char *gen[] = {DS_BINARY, "gen", "-b", servers, "--count", "200000", "--bad-rate", "0.01", "--seed", "20261123",
                       "--truth", path("truth.json"), "-q", NULL};
        int rc = ds_run(gen, NULL, path("gen.err"), 300000);
        cr_assert_eq(rc, 0, "gen exited with %d (see %s)", rc, path("gen.err"));

        char *run[] = {DS_BINARY, "run", "-b", servers, "--exit.on.eof", "true", "--commit.interval.ms", "200",
                       "-X", "session.timeout.ms=6000", "--log.level", "warn", NULL};
        rc = ds_run(run, NULL, path("run.err"), 300000);
        cr_assert_eq(rc, 0, "run exited with %d (see %s)", rc, path("run.err"));

        json_error_t jerr;
        json_t *truth = json_load_file(path("truth.json"), 0, &jerr);
        cr_assert_not_null(truth, "truth: %s", jerr.text);
        cr_assert_eq(json_integer_value(json_object_get(truth, "messages")), 200000);

        /* --- customs.totals: latest row per key --- */
        kcat_read("customs.totals", "%K:%k%S:%s", path("totals.bin"));
        ds_kmsg_t *msgs;
        int n = ds_kcat_parse(path("totals.bin"), &msgs);
        cr_assert_gt(n, 0, "no rows on customs.totals");
        json_t *latest = json_object(); /* key -> index of the latest message */
        for (int i = 0; i < n; i++)
                json_object_set_new(latest, msgs[i].key, json_integer(i));

        json_t *totals = json_object_get(truth, "totals");
        const char *dims[2] = {"GATE", "COMMODITY"};
        int checked = 0;
        for (int d = 0; d < 2; d++) {
                json_t *want = json_object_get(totals, dims[d]);
                cr_assert(json_object_size(want) > 0, "truth has no %s rows", dims[d]);
                const char *k;
                json_t *tv;
                json_object_foreach(want, k, tv) {
                        char key[128];
                        snprintf(key, sizeof(key), "%s|%s|TOTAL|0", dims[d], k);
                        json_t *idx = json_object_get(latest, key);
                        cr_assert_not_null(idx, "no row published for %s", key);
                        ds_total_row_t row;
                        ds_kmsg_t *m = &msgs[json_integer_value(idx)];
                        cr_assert_eq(ds_total_decode(SCHEMA, m->value, m->value_len, &row), 0,
                                     "row %s does not decode with Avro C", key);
                        cr_expect_eq(row.dimension, d, "%s: dimension", key);
                        cr_expect_str_eq(row.key, k, "%s: key field", key);
                        cr_expect_eq(row.window, 0, "%s: window", key);
                        cr_expect_eq(row.window_start, 0, "%s: window_start", key);
                        for (int f = 0; f < 8; f++) {
                                long long expect = json_integer_value(json_object_get(tv, ds_measure_names[f]));
                                cr_expect_eq(row.measures[f], expect, "%s %s: got %lld, truth %lld", key,
                                             ds_measure_names[f], (long long)row.measures[f], expect);
                        }
                        checked++;
                }
        }
        /* no row the truth does not know */
        const char *k;
        json_t *iv;
        json_object_foreach(latest, k, iv) {
                char dim[16], key[32];
                cr_assert_eq(sscanf(k, "%15[^|]|%31[^|]|", dim, key), 2, "malformed key %s", k);
                cr_expect_not_null(json_object_get(json_object_get(totals, dim), key), "unexpected row %s", k);
        }
        cr_log_info("compared %d rows of customs.totals with the truth", checked);

        /* --- customs.declarations.dlq: every bad message, per reason, with its source --- */
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
                cr_expect_not_null(strstr(c + strlen(c) + 1, "ds.source.topic=customs.declarations"),
                                   "dead letter without its source topic");
                char *rest = c + strlen(c) + 1;
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
        cr_assert_gt(json_object_size(want_bad), 5, "the generator should make several kinds of bad messages");
        json_object_foreach(want_bad, k, iv) {
                json_t *got = json_object_get(by_reason, k);
                cr_expect_eq(got ? json_integer_value(got) : 0, json_integer_value(iv), "reason %s: %lld dead letters, truth %lld",
                             k, got ? (long long)json_integer_value(got) : 0LL, (long long)json_integer_value(iv));
        }
        json_object_foreach(by_reason, k, iv) cr_expect_not_null(json_object_get(want_bad, k), "unexpected reason %s", k);

        /* --- nothing deleted by the embedded broker --- */
        check_head_not_deleted("customs.declarations", 12);
        check_head_not_deleted("customs.totals", 12);

        json_decref(by_reason);
        json_decref(latest);
        json_decref(truth);
        ds_kcat_free(msgs, n);
}
