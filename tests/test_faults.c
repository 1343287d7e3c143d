/*
 * test_faults.c - exactly once across crashes, rebalances, broker faults,
 * zombies and shutdowns.
 *
 * Each scenario runs the real binaries: the embedded broker (with its
 * fault-injection FIFO), `declstream gen` producing while the processors run
 * (with a truth file), and `declstream run` processes started, killed,
 * paused and resumed. At the end one processor reads to the end of the input
 * (exit.on.eof) and kcat reads customs.totals and customs.top_headings:
 * every row of every window must equal the truth exactly, and the input
 * topic must still start at offset 0 (the broker deleted nothing unread).
 *
 * Each scenario appends a line to tests/artifacts/faults.jsonl: declarations
 * sent (the truth's), counted (published), lost, duplicated - the figures of
 * the README's fault table.
 *
 * The ASan build runs the crash scenario only (the others would take too
 * long under the sanitizer within CI's budget); the plain build runs all.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ds_common.h"
#include "ds_testutil.h"

typedef struct env {
        char *dir;
        char servers[256];
        char control[512];
        ds_proc_t broker, gen;
        int64_t t0;
} env_t;

static env_t E;

static const char *path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *path(const char *fmt, ...) {
        char name[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(name, sizeof(name), fmt, ap);
        va_end(ap);
        return ds_join(E.dir, name);
}

static void start_env_ex(const char *name, int partitions, int brokers, const char *const *extra) {
        memset(&E, 0, sizeof(E));
        E.dir = ds_tmpdir(name);
        cr_assert_not_null(E.dir);
        snprintf(E.control, sizeof(E.control), "%s/control", E.dir);
        cr_assert_eq(ds_broker_start_ex(&E.broker, E.dir, partitions, brokers, E.control, extra, E.servers,
                                        sizeof(E.servers)),
                     0, "broker did not start");
        E.t0 = ds_mono_ms();
}

/* Every scenario's partial topic gets 48 partitions: restarts and backlogs
 * republish rows, and the embedded broker keeps no more than 5 MiB per
 * partition, so with as few partitions as the input a merge rebuilt
 * mid-test could find the topic's head deleted (and stop, as it must). A
 * real cluster keeps this topic whole (retention.ms=-1). */
static const char *const partial_room[] = {"--topic", "customs.totals.partial:48", NULL};

static void start_env(const char *name, int partitions, int brokers) {
        start_env_ex(name, partitions, brokers, partial_room);
}

static void stop_env(void) {
        ds_proc_kill(&E.gen, SIGKILL);
        ds_proc_kill(&E.broker, SIGTERM);
        if (ds_proc_wait(&E.broker, 5000) < 0)
                ds_proc_kill(&E.broker, SIGKILL);
        ds_tmpdir_remove(E.dir);
        free(E.dir);
}

/* The generator at `rate` declarations/s for `secs`, all event kinds on.
 * Event time runs 1,800 times faster than the wall clock (20 s of stream
 * cover 10 hours): windows open and close, events arrive up to 4 hours late
 * (past the minute windows' 3-hour retention), amendments follow within
 * minutes to hours. */
static void start_gen(int rate, int secs, const char *seed) {
        char r[16], d[16];
        snprintf(r, sizeof(r), "%d", rate);
        snprintf(d, sizeof(d), "%d", secs);
        char *argv[] = {DS_BINARY, "gen", "-b", E.servers, "--rate", r, "--duration", d, "--time-scale", "1800",
                        "--bad-rate", "0.01", "--amend-rate", "0.05", "--cancel-rate", "0.01", "--dup-rate", "0.005",
                        "--late-rate", "0.02", "--max-lateness", "14400000", "--amend-delay", "1800000",
                        "--seed", (char *)seed, "--truth", (char *)path("truth.json"), "-q", NULL};
        cr_assert_eq(ds_proc_start(&E.gen, argv, NULL, path("gen.log")), 0);
}

static void wait_gen(void) {
        int rc = ds_proc_wait(&E.gen, 240000);
        cr_assert_eq(rc, 0, "gen exited with %d (see %s)", rc, path("gen.log"));
}

/* A processor; extra arguments may follow (NULL-terminated). Its merge
 * snapshots every second, so that restarts, rebalances and fenced zombies
 * restore merges from snapshots taken mid-stream (the first assignment of a
 * scenario rebuilds from the partial topic's start). */
static void start_run(ds_proc_t *p, const char *name, ...) {
        char *argv[40] = {DS_BINARY,
                          "run",
                          "-b",
                          E.servers,
                          "-X",
                          "session.timeout.ms=6000",
                          "-X",
                          "heartbeat.interval.ms=500",
                          "--commit.interval.ms",
                          "300",
                          "--stats.interval.ms",
                          "2000",
                          "--merge.snapshot.interval.ms",
                          "1000"};
        int n = 14;
        va_list ap;
        va_start(ap, name);
        for (const char *a; n < 38 && (a = va_arg(ap, const char *));)
                argv[n++] = (char *)a;
        va_end(ap);
        argv[n] = NULL;
        cr_assert_eq(ds_proc_start(p, argv, NULL, path("%s.log", name)), 0);
}

static void sleep_until(int64_t at_ms) {
        while (ds_mono_ms() - E.t0 < at_ms)
                usleep(20000);
}

/* The final processor: reads everything left, publishes, exits. */
static void final_run(void) {
        ds_proc_t p;
        start_run(&p, "final", "--exit.on.eof", "true", NULL);
        int rc = ds_proc_wait(&p, 300000);
        if (rc < 0)
                ds_proc_kill(&p, SIGKILL);
        cr_assert_eq(rc, 0, "the final run exited with %d (see %s)", rc, path("final.log"));
}

static void record(const char *scenario, const ds_truth_check_t *c, int problems, int asserted) {
        mkdir(DS_SOURCE_DIR "/tests/artifacts", 0755);
        FILE *f = fopen(DS_SOURCE_DIR "/tests/artifacts/faults.jsonl", "a");
        if (!f)
                return;
        long long lost = c->declarations_truth > c->declarations_counted ? c->declarations_truth - c->declarations_counted : 0;
        long long dup = c->declarations_counted > c->declarations_truth ? c->declarations_counted - c->declarations_truth : 0;
        fprintf(f,
                "{\"scenario\":\"%s\",\"declarations_sent\":%lld,\"declarations_counted\":%lld,\"lost\":%lld,"
                "\"duplicated\":%lld,\"rows_compared\":%d,\"problems\":%d,\"exactness_asserted\":%s,\"seconds\":%lld}\n",
                scenario, c->declarations_truth, c->declarations_counted, lost, dup, c->rows_compared, problems,
                asserted ? "true" : "false", (long long)((ds_mono_ms() - E.t0) / 1000));
        fclose(f);
}

static void check_exact(const char *scenario) {
        cr_assert_eq(ds_topic_heads_lost(E.servers, E.dir, "customs.declarations"), 0,
                     "the broker deleted input before it was read");
        ds_truth_check_t c;
        int problems = ds_check_against_truth(E.servers, E.dir, path("truth.json"), &c);
        record(scenario, &c, problems, 1);
        cr_log_info("%s: %lld declarations sent, %lld counted, %d rows compared, %d problems", scenario,
                    c.declarations_truth, c.declarations_counted, c.rows_compared, problems);
        cr_expect_gt(c.rows_compared, 2000, "too few rows to mean much");
        cr_expect_eq(c.declarations_counted, c.declarations_truth, "declarations lost or counted twice");
        cr_expect_eq(problems, 0, "%d differences from the truth (details on stderr)", problems);
}

static int log_has(const char *name, const char *needle) {
        size_t n;
        char *s = ds_slurp(path("%s.log", name), &n);
        int found = s && strstr(s, needle) != NULL;
        free(s);
        return found;
}

/* ------------------------------------------------------------------------ */

Test(faults, kill_9_at_random_points_loses_and_duplicates_nothing, .timeout = 600) {
        start_env("ds-kill9", 48, 1);
        unsigned seed = (unsigned)time(NULL);
        srand(seed);
        cr_log_info("kill times drawn with seed %u", seed);
#ifdef DS_SANITIZED
        int rate = 10000, secs = 20, kills = 2;
#else
        int rate = 25000, secs = 20, kills = 4; /* 500,000 declarations */
#endif
        start_gen(rate, secs, "424242");
        int64_t at = 0;
        for (int k = 0; k < kills; k++) {
                ds_proc_t p;
                char name[16];
                snprintf(name, sizeof(name), "run%d", k);
                start_run(&p, name, NULL);
                /* a kill between 4 and 9 s after start: sometimes before the
                 * first assignment, mostly in the middle of processing */
                at += 4000 + rand() % 5000;
                sleep_until(at);
                ds_proc_kill(&p, SIGKILL);
                cr_log_info("killed %s at %.1f s", name, (double)at / 1000);
        }
        wait_gen();
        final_run();
        cr_expect(log_has("final", "restored from a merge snapshot"),
                  "the final run's merge did not restore a snapshot a killed run wrote");
        check_exact("kill -9 at random points, restarted each time");
        stop_env();
}

#ifndef DS_SANITIZED

Test(faults, rebalance_storm_with_three_processes, .timeout = 600) {
        start_env("ds-storm", 24, 1);
        start_gen(20000, 16, "777");
        ds_proc_t p1, p2, p3, p4;
        start_run(&p1, "p1", NULL);
        sleep_until(3000);
        start_run(&p2, "p2", NULL);
        sleep_until(6000);
        start_run(&p3, "p3", NULL);
        sleep_until(10000);
        ds_proc_kill(&p2, SIGKILL);
        sleep_until(12000);
        start_run(&p4, "p4", NULL);
        sleep_until(15000);
        ds_proc_kill(&p1, SIGTERM);
        cr_expect_eq(ds_proc_wait(&p1, 15000), 0, "p1 did not leave cleanly on SIGTERM");
        wait_gen();
        ds_proc_kill(&p3, SIGTERM);
        ds_proc_kill(&p4, SIGTERM);
        cr_expect_eq(ds_proc_wait(&p3, 15000), 0, "p3 did not leave cleanly");
        cr_expect_eq(ds_proc_wait(&p4, 15000), 0, "p4 did not leave cleanly");
        final_run();
        cr_expect(log_has("p2", "partition") && log_has("p3", "partition"), "every process took partitions");
        check_exact("3 processes joining and leaving, one killed with -9");
        stop_env();
}

Test(faults, broker_faults_leave_totals_exact, .timeout = 600) {
        start_env("ds-broker", 12, 3);
        start_gen(15000, 20, "999");
        ds_proc_t p;
        start_run(&p, "p", NULL);
        struct {
                int at_ms;
                const char *cmd;
        } plan[] = {
            {5000, "down 2"},
            {8000, "up 2"},
            {8500, "rtt 1 200"},
            {8500, "rtt 3 200"},
            {10500, "rtt 1 0"},
            {10500, "rtt 3 0"},
            {11000, "error Fetch 40 NOT_LEADER_FOR_PARTITION"},
            {11000, "error OffsetCommit 10 REQUEST_TIMED_OUT"},
            {11000, "error Metadata 10 LEADER_NOT_AVAILABLE"},
            {12000, "leader customs.declarations 0 3"},
            {12000, "leader customs.declarations 5 2"},
            {12000, "leader customs.state 1 3"},
            {12000, "leader customs.totals.partial 2 2"},
            {13000, "coordinator declstream 3"},
            {13000, "coordinator declstream.merge 2"},
            {15000, "down 1"},
            {15000, "down 2"},
            {15000, "down 3"},
            {18000, "up 1"},
            {18000, "up 2"},
            {18000, "up 3"},
        };
        for (size_t i = 0; i < sizeof(plan) / sizeof(plan[0]); i++) {
                sleep_until(plan[i].at_ms);
                cr_assert_eq(ds_broker_control(E.control, "%s", plan[i].cmd), 0);
        }
        wait_gen();
        sleep_until(26000);
        ds_proc_kill(&p, SIGTERM);
        int rc = ds_proc_wait(&p, 20000);
        cr_expect(rc == 0, "the processor exited with %d after the faults (see %s)", rc, path("p.log"));
        final_run();
        check_exact("broker down/up, all brokers down/up, leader and coordinator moves, request errors, RTT");
        stop_env();
}

Test(faults, produce_errors_are_survived, .timeout = 600) {
        /* the mock does not enforce idempotence: acknowledged records may be
         * duplicated or lost under produce errors, so counts are reported,
         * not asserted (FACTS.md); survival and recovery are asserted.
         * Retried produce requests append partial rows again, and the
         * embedded broker keeps no more than 5 MiB per partition: the
         * partial topic gets room, as a real cluster's unlimited retention
         * would give it. */
        start_env("ds-produce", 12, 1);
        start_gen(10000, 15, "1234");
        ds_proc_t p;
        start_run(&p, "p", NULL);
        for (int t = 4000; t <= 12000; t += 2000) {
                sleep_until(t);
                ds_broker_control(E.control, "error Produce 30 NOT_ENOUGH_REPLICAS");
        }
        wait_gen();
        sleep_until(20000);
        ds_proc_kill(&p, SIGTERM);
        int rc = ds_proc_wait(&p, 20000);
        cr_log_info("processor under produce errors exited with %d", rc);
        final_run(); /* recovery: a processor restarts from the changelog and finishes */
        ds_truth_check_t c;
        int problems = ds_check_against_truth(E.servers, E.dir, path("truth.json"), &c);
        record("injected produce errors (counts reported)", &c, problems, 0);
        cr_log_info("produce errors: %lld sent, %lld counted, %d problems (not asserted)", c.declarations_truth,
                    c.declarations_counted, problems);
        cr_expect_gt(c.rows_compared, 100, "nothing was published after recovery");
        stop_env();
}

Test(faults, a_paused_zombie_is_fenced, .timeout = 600) {
        start_env("ds-zombie", 12, 1);
        start_gen(10000, 24, "4321");
        ds_proc_t z, p2;
        start_run(&z, "zombie", NULL);
        sleep_until(7000);
        ds_proc_kill(&z, SIGSTOP); /* paused mid-stream: its partitions move on after the session timeout */
        start_run(&p2, "p2", NULL);
        sleep_until(20000);
        ds_proc_kill(&z, SIGCONT); /* it resumes believing it still owns them */
        wait_gen();
        sleep_until(30000);
        ds_proc_kill(&z, SIGTERM);
        ds_proc_kill(&p2, SIGTERM);
        ds_proc_wait(&z, 20000);
        ds_proc_wait(&p2, 20000);
        final_run();
        /* the new owner restored and claimed a newer epoch; whatever the
         * zombie wrote afterwards was ignored */
        cr_expect(log_has("p2", "epoch=2") || log_has("p2", "epoch=3"), "p2 should have claimed a newer epoch");
        /* the zombie, told its session timed out, let its partitions go
         * without a last cycle (a zombie's checkpoint nobody would take) */
        cr_expect(log_has("zombie", "partitions lost"), "the zombie should have seen its assignment lost");
        check_exact("a paused instance resumed after its partitions moved (SIGSTOP/SIGCONT)");
        stop_env();
}

Test(faults, sigterm_under_load_exits_in_time_and_loses_nothing, .timeout = 600) {
        start_env("ds-sigterm", 12, 1);
        start_gen(30000, 10, "5151");
        ds_proc_t p;
        start_run(&p, "p", "--shutdown.timeout.ms", "10000", NULL);
        sleep_until(7000);
        int64_t t = ds_mono_ms();
        ds_proc_kill(&p, SIGTERM);
        int rc = ds_proc_wait(&p, 15000);
        int64_t took = ds_mono_ms() - t;
        cr_expect_eq(rc, 0, "SIGTERM under load: exit status %d", rc);
        cr_expect_lt(took, 10000, "SIGTERM under load took %lld ms", (long long)took);
        cr_log_info("SIGTERM under load: exited %d in %lld ms", rc, (long long)took);
        wait_gen();
        final_run();
        check_exact("SIGTERM under load");
        stop_env();
}

Test(faults, restore_after_the_changelog_wrapped, .timeout = 600) {
        /* a snapshot every cycle: the changelog outgrows the broker's 5 MiB
         * per partition and loses its head; restore needs only the latest
         * snapshot and its tail. (The partial topic gets room: a real
         * cluster keeps it whole, which the embedded broker cannot do.) */
        static const char *const extra[] = {"--topic", "customs.totals.partial:48", NULL};
        start_env_ex("ds-wrap", 4, 1, extra);
        start_gen(2500, 24, "8080");
        ds_proc_t p;
        start_run(&p, "p", "--state.snapshot.interval.cycles", "1", "--commit.interval.ms", "150", NULL);
        wait_gen();
        sleep_until(30000);
        int wrapped = ds_topic_heads_lost(E.servers, E.dir, "customs.state");
        cr_assert_gt(wrapped, 0, "the changelog did not wrap: the test proves nothing");
        ds_proc_kill(&p, SIGKILL);
        final_run();
        cr_expect(log_has("final", "partition restored"), "the final run did not restore from the changelog");
        check_exact("restore after the changelog wrapped past its oldest records");
        stop_env();
}

#endif
