/*
 * ds_testutil.h - helpers for declstream's tests: child processes that die
 * with the test, the embedded broker, kcat output parsing, truth files, and
 * decoding vn.customs.Total with Apache Avro C (not with declstream's code).
 */
#ifndef DS_TESTUTIL_H
#define DS_TESTUTIL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A child process; killed with SIGKILL if the test process dies. */
typedef struct ds_proc {
        pid_t pid;
        int status;
        int exited;
} ds_proc_t;

/* Starts argv (argv[0] is a path or a name on PATH) with stdout/stderr sent
 * to the given files (NULL: /dev/null). */
int ds_proc_start(ds_proc_t *p, char *const argv[], const char *out_path, const char *err_path);
/* Waits up to timeout_ms; returns the exit status (0-255), 128+signal, or -1 on timeout. */
int ds_proc_wait(ds_proc_t *p, int timeout_ms);
void ds_proc_kill(ds_proc_t *p, int sig);

/* "<dir>/<name>" in one of 32 rotating buffers (per thread): valid until 32
 * more calls, enough for an argv built in one expression. */
char *ds_join(const char *dir, const char *name);

/* splitmix64: the next pseudo-random number of the sequence *state (tests'
 * fixed-seed data). */
uint64_t ds_test_rnd(uint64_t *state);

/* gen --start-ms for tests whose data must not change with the wall clock
 * (gen's default, now - span, makes other data from one seed every hour, so
 * a failure could not be run again): 2026-12-04 06:00 in Vietnam. Nothing
 * in the processor reads event time against the wall clock but the
 * watermark's guard against events from the future. */
#define DS_GEN_FIXED_START "1796338800000"

/* gen --start-ms (into buf) for a day of events that ends at the last local
 * (UTC+7) noon before now, for tests of "today" (the local day of the newest
 * event): it then holds half a day of traffic at any hour. Ending now, just
 * after local midnight it held minutes of night traffic. */
void ds_gen_start_noon(char *buf, size_t n);

/* Writes a gates file (gates.file format) to path: the header line, then n
 * gates XG01, XG02, ... each followed by ",rest" (the first by ",first" when
 * first is not NULL). Returns 0 or -1. */
int ds_write_gates_file(const char *path, const char *header, int n, const char *first, const char *rest);

/* A scratch directory for the test, removed by ds_tmpdir_remove. */
char *ds_tmpdir(const char *prefix);
void ds_tmpdir_remove(const char *dir);

/* Starts `declstream broker` with the given partitions; fills servers.
 * Returns 0 or -1. */
int ds_broker_start(ds_proc_t *p, const char *dir, int partitions, char *servers, size_t size);

/* Starts `declstream broker` with brokers, a control FIFO (NULL: none) and
 * more arguments (NULL-terminated list, or NULL). */
int ds_broker_start_ex(ds_proc_t *p, const char *dir, int partitions, int brokers, const char *control,
                       const char *const *extra, char *servers, size_t size);
/* Sends one fault-injection command to a broker's control FIFO. */
int ds_broker_control(const char *control, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* What a comparison of the published output with a truth file found. */
typedef struct ds_truth_check {
        int rows_compared;
        int rows_missing;        /* truth rows (non-zero) never published */
        int measure_diffs;       /* measures that differ */
        int unexpected_rows;     /* published rows the truth does not know */
        int distinct_off;        /* distinct counts off by more than ds_hll_tolerance() */
        int top_mismatches;      /* top-10 lists that differ */
        long long declarations_truth;   /* sum of declarations over the truth's GATE TOTAL rows */
        long long declarations_counted; /* the same, published */
} ds_truth_check_t;

/* How far a HyperLogLog estimate of n distinct values may be off before a
 * test calls it wrong: 3 %, or at small n what register collisions explain
 * (exceeded with probability below 1e-6; 6 at n = 103). */
long long ds_hll_tolerance(long long n);

/* Reads customs.totals and customs.top_headings with kcat (files in dir)
 * and compares every row, distinct count and top list with the truth file.
 * Logs the first differences to stderr. Returns the number of problems. */
int ds_check_against_truth(const char *servers, const char *dir, const char *truth_path, ds_truth_check_t *chk);

/* Partitions of topic whose first readable offset is not 0 (their head was
 * deleted), read with kcat; -1 on error. */
int ds_topic_heads_lost(const char *servers, const char *dir, const char *topic);

/* VmRSS of a process in KiB (-1 if unknown). */
long ds_proc_rss_kib(pid_t pid);

/* Runs a command to completion (timeout_ms); returns its exit status. */
int ds_run(char *const argv[], const char *out_path, const char *err_path, int timeout_ms);

/* One record from kcat -f '%K:%k%S:%s' output (or %p/%o variants). */
typedef struct ds_kmsg {
        char *key;
        size_t key_len;
        uint8_t *value;
        size_t value_len;
} ds_kmsg_t;

/* Parses a file of kcat -f '%K:%k%S:%s' records. Returns the count, -1 on error. */
int ds_kcat_parse(const char *path, ds_kmsg_t **out);
void ds_kcat_free(ds_kmsg_t *m, int n);

/* A vn.customs.Total decoded with Avro C. */
typedef struct ds_total_row {
        int dimension; /* 0 GATE, 1 COMMODITY */
        char key[32];
        int window;
        int64_t window_start;
        int64_t measures[8]; /* declarations, items, value, weight, export, import, transit, border_resident */
        int64_t distinct_declarants, distinct_vehicles; /* 0 when the schema has no such fields (v1) */
        int64_t updated_at;
} ds_total_row_t;

/* A vn.customs.TopHeadings list decoded with Avro C. */
typedef struct ds_top_list {
        char gate[32];
        int64_t window_start;
        int n;
        struct {
                int rank;
                char heading[16];
                int64_t value, declarations, items, weight;
        } e[16];
} ds_top_list_t;

int ds_top_decode(const char *schema_path, const uint8_t *value, size_t len, ds_top_list_t *out);

/* Decodes a message value (wire header + Avro) with Avro C against the
 * schema file; returns 0 or -1. */
int ds_total_decode(const char *schema_path, const uint8_t *value, size_t len, ds_total_row_t *out);

extern const char *const ds_measure_names[8];

/* A counter (" name=") from the last log line of message msg ("summary",
 * "progress") in log: -1 if there is no such line, 0 if the line lacks it
 * (reasons that never happened are not printed). */
long long ds_log_counter(const char *log, const char *msg, const char *name);

/* Reads a whole file into a malloc'd string (NULL on error). */
char *ds_slurp(const char *path, size_t *len);

#endif
