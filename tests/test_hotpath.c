/*
 * test_hotpath.c - in steady state the per-message path allocates nothing,
 * takes no lock, compares no strings and makes no clock, I/O or scheduler
 * call (issue 4: "no allocation, lock, syscall or string comparison per
 * message in steady state").
 *
 * The per-message path is what a worker runs for each message
 * (ds_pipeline.c, ds_replay.c): ds_step_decode -> ds_step_check ->
 * ds_part_apply, on a partition whose ledger records its changes for the
 * changelog, as the processing role's do. "Steady state" is a processor
 * whose windows, rows, sketches and eviction buckets for the traffic exist
 * already: new declarations into open windows, amendments, redeliveries.
 * What creates state - the first declaration of a new minute, heading or
 * gate, a new declaration's ledger lines, a ledger past its size -
 * allocates once per row, window, chunk or doubling, not per message; the
 * tests bound that too.
 *
 * The count: this program is linked with -Wl,--wrap for those functions
 * (CMakeLists.txt), so every call the processor's own code makes (dscore is
 * a static library linked into this program) goes through the counters
 * below while counting is on. Calls made inside shared libraries (Avro C,
 * librdkafka, libc itself) are not seen, but the per-message path calls
 * none of them; system calls made directly (syscall(2)) are not seen
 * either, nor are comparisons GCC expands inline (strcmp against a short
 * literal, memcmp of a small fixed size at -O2): what is counted is every
 * call that reaches the library. Counting is on only around the measured
 * passes; the cycle's flush (once per commit interval, not per message)
 * runs outside them.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "ds_common.h"
#include "ds_gen.h"
#include "ds_ledger.h"
#include "ds_part.h"
#include "ds_schemas.h"
#include "ds_step.h"

/* ---- the counters (single-threaded test: plain ints) ---------------------- */

static int g_counting;
static unsigned long g_allocs, g_locks, g_strcmps, g_memcmps, g_syscalls;

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
int __real_posix_memalign(void **p, size_t a, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
int __real_pthread_mutex_lock(pthread_mutex_t *m);
int __real_pthread_rwlock_rdlock(pthread_rwlock_t *l);
int __real_pthread_rwlock_wrlock(pthread_rwlock_t *l);
int __real_pthread_spin_lock(pthread_spinlock_t *l);
int __real_strcmp(const char *a, const char *b);
int __real_strncmp(const char *a, const char *b, size_t n);
int __real_strcasecmp(const char *a, const char *b);
int __real_strncasecmp(const char *a, const char *b, size_t n);
int __real_memcmp(const void *a, const void *b, size_t n);
int __real_clock_gettime(clockid_t c, struct timespec *ts);
ssize_t __real_read(int fd, void *b, size_t n);
ssize_t __real_write(int fd, const void *b, size_t n);
int __real_nanosleep(const struct timespec *r, struct timespec *rem);
int __real_sched_yield(void);

void *__wrap_malloc(size_t n) {
        g_allocs += g_counting;
        return __real_malloc(n);
}
void *__wrap_calloc(size_t k, size_t n) {
        g_allocs += g_counting;
        return __real_calloc(k, n);
}
void *__wrap_realloc(void *p, size_t n) {
        g_allocs += g_counting;
        return __real_realloc(p, n);
}
char *__wrap_strdup(const char *s) {
        g_allocs += g_counting;
        return __real_strdup(s);
}
int __wrap_posix_memalign(void **p, size_t a, size_t n) {
        g_allocs += g_counting;
        return __real_posix_memalign(p, a, n);
}
void *__wrap_aligned_alloc(size_t a, size_t n) {
        g_allocs += g_counting;
        return __real_aligned_alloc(a, n);
}
int __wrap_pthread_mutex_lock(pthread_mutex_t *m) {
        g_locks += g_counting;
        return __real_pthread_mutex_lock(m);
}
int __wrap_pthread_rwlock_rdlock(pthread_rwlock_t *l) {
        g_locks += g_counting;
        return __real_pthread_rwlock_rdlock(l);
}
int __wrap_pthread_rwlock_wrlock(pthread_rwlock_t *l) {
        g_locks += g_counting;
        return __real_pthread_rwlock_wrlock(l);
}
int __wrap_pthread_spin_lock(pthread_spinlock_t *l) {
        g_locks += g_counting;
        return __real_pthread_spin_lock(l);
}

int __wrap_strcmp(const char *a, const char *b) {
        g_strcmps += g_counting;
        return __real_strcmp(a, b);
}
int __wrap_strncmp(const char *a, const char *b, size_t n) {
        g_strcmps += g_counting;
        return __real_strncmp(a, b, n);
}
int __wrap_strcasecmp(const char *a, const char *b) {
        g_strcmps += g_counting;
        return __real_strcasecmp(a, b);
}
int __wrap_strncasecmp(const char *a, const char *b, size_t n) {
        g_strcmps += g_counting;
        return __real_strncasecmp(a, b, n);
}
int __wrap_memcmp(const void *a, const void *b, size_t n) {
        g_memcmps += g_counting;
        return __real_memcmp(a, b, n);
}
int __wrap_clock_gettime(clockid_t c, struct timespec *ts) {
        g_syscalls += g_counting;
        return __real_clock_gettime(c, ts);
}
ssize_t __wrap_read(int fd, void *b, size_t n) {
        g_syscalls += g_counting;
        return __real_read(fd, b, n);
}
ssize_t __wrap_write(int fd, const void *b, size_t n) {
        g_syscalls += g_counting;
        return __real_write(fd, b, n);
}
int __wrap_nanosleep(const struct timespec *r, struct timespec *rem) {
        g_syscalls += g_counting;
        return __real_nanosleep(r, rem);
}
int __wrap_sched_yield(void) {
        g_syscalls += g_counting;
        return __real_sched_yield();
}

/* ---- a corpus and the worker's loop --------------------------------------- */

#define NPART   12
#define COUNT   20000
#define ID_STEP 1000000000000ULL /* ids have 12 digits: + k * 10^12 is a new id */

typedef struct msg {
        uint32_t off, len;
        char key[24];
        uint8_t klen;
        int32_t partition;
} msg_t;

static struct {
        uint8_t *bytes;
        size_t nbytes;
        msg_t *m;
        uint32_t n;
        int64_t end_ms; /* the corpus' last event time */
} corpus;

static ds_schemas_t *schemas;
static ds_part_cfg_t cfg;
static ds_part_t *parts[NPART];
static ds_outbox_t ob;
static ds_contrib_t old;
static int64_t now_ms;

/* Realistic traffic (amendments, cancellations, duplicates, late events) in
 * a fixed day, so that runs compare. */
static void corpus_build(void) {
        ds_gen_opts_t o;
        ds_gen_opts_default(&o);
        o.seed = 7;
        o.count = COUNT;
        o.span_ms = DS_DAY_MS;
        o.start_ms = 1735689600000LL; /* 2025-01-01T00:00Z */
        o.partitions = NPART;
        o.amend_rate = 0.05;
        o.cancel_rate = 0.01;
        o.dup_rate = 0.005;
        o.late_rate = 0.02;
        char err[256];
        ds_gen_t *g = ds_gen_new(&o, err, sizeof(err));
        cr_assert_not_null(g, "%s", err);
        uint32_t capm = 2 * COUNT;
        size_t cap = (size_t)COUNT * 1024;
        corpus.m = malloc(capm * sizeof(*corpus.m));
        corpus.bytes = malloc(cap);
        cr_assert(corpus.m && corpus.bytes);
        ds_gen_msg_t gm;
        while (ds_gen_next(g, -1, &gm)) {
                cr_assert(corpus.n < capm && corpus.nbytes + gm.value_len <= cap && gm.key_len < 24);
                msg_t *m = &corpus.m[corpus.n++];
                m->off = (uint32_t)corpus.nbytes;
                m->len = (uint32_t)gm.value_len;
                memcpy(corpus.bytes + corpus.nbytes, gm.value, gm.value_len);
                corpus.nbytes += gm.value_len;
                memcpy(m->key, gm.key, gm.key_len);
                m->klen = (uint8_t)gm.key_len;
                m->partition = gm.partition;
                if (gm.declared_at > corpus.end_ms)
                        corpus.end_ms = gm.declared_at;
        }
        ds_gen_destroy(g);
        cr_assert_gt(corpus.n, COUNT);
}

/* ledger_initial: declarations each partition's ledger holds before it
 * first grows (0: the processor's default). */
static void setup_with(uint32_t ledger_initial) {
        corpus_build();
        char err[256];
        schemas = ds_schemas_load(DS_SOURCE_DIR "/schemas", err, sizeof(err));
        cr_assert_not_null(schemas, "%s", err);
        ds_part_cfg_default(&cfg);
        cfg.ledger_initial = ledger_initial;
        for (int p = 0; p < NPART; p++) {
                parts[p] = ds_part_new(&cfg, p, 0);
                cr_assert_not_null(parts[p]);
                ds_ledger_track_changes(parts[p]->ledger); /* the processing role writes a changelog */
        }
        /* the processor's clock: just after the corpus' last event. Windows
         * close by event time: the first flush evicts the MINUTE rows more
         * than 3 h behind the watermark, and the passes after it count those
         * events late for the minute and add them to the coarser windows, as
         * a processor does */
        now_ms = corpus.end_ms + 1000;
}

static void setup(void) {
        /* sized for every pass the tests make, as `replay --presize` does */
        setup_with(8 * COUNT);
}

static void teardown(void) {
        for (int p = 0; p < NPART; p++)
                ds_part_destroy(parts[p]);
        ds_outbox_free(&ob);
        ds_schemas_destroy(schemas);
        free(corpus.m);
        free(corpus.bytes);
        memset(&corpus, 0, sizeof(corpus));
}

static int drop_entry(void *ctx, const ds_ledger_entry_t *e) {
        (void)ctx;
        (void)e;
        return 0;
}

/* A commit interval's end: what the worker does between batches, once a
 * cycle - not per message, so never counted. */
static void flush(void) {
        int was = g_counting;
        g_counting = 0;
        ds_outbox_reset(&ob);
        for (int p = 0; p < NPART; p++) {
                cr_assert_eq(ds_part_flush(parts[p], &cfg, now_ms, &ob), 0);
                ds_ledger_take_changes(parts[p]->ledger, drop_entry, NULL); /* the changelog's delta */
        }
        g_counting = was;
}

typedef enum { AS_RECORDED, AS_NEW_IDS, AS_AMENDMENTS } pass_t;

/* One pass of the corpus through the worker's per-message path.
 * AS_NEW_IDS: every declaration again under a new id (id + k * 10^12):
 * new declarations into the same gates, headings and windows.
 * AS_AMENDMENTS: every declaration again, each a version later. Returns
 * the messages applied. */
static uint32_t pass(pass_t how, uint64_t k) {
        static ds_decl_t decl;
        static ds_contrib_t c;
        uint32_t applied = 0;
        for (uint32_t i = 0; i < corpus.n; i++) {
                const msg_t *m = &corpus.m[i];
                ds_resolved_t rs;
                if (ds_step_decode(schemas, corpus.bytes + m->off, m->len, &decl, &rs) ||
                    ds_step_check(&decl, 4 /* the default heading.digits */, m->key, m->klen, &c))
                        continue;
                if (how == AS_NEW_IDS) {
                        c.id += k * ID_STEP;
                } else if (how == AS_AMENDMENTS) {
                        c.version += (int32_t)k;
                        if (c.kind == DS_KIND_NEW)
                                c.kind = DS_KIND_AMEND;
                }
                int outcome = ds_part_apply(parts[m->partition], &cfg, &c, now_ms, &old);
                cr_assert_geq(outcome, 0, "out of memory at message %u", i);
                applied++;
        }
        return applied;
}

static void counters_reset(void) {
        g_allocs = g_locks = g_strcmps = g_memcmps = g_syscalls = 0;
}

/* Counts what one pass allocates, locks, compares and calls. */
static uint32_t counted_pass(pass_t how, uint64_t k) {
        counters_reset();
        g_counting = 1;
        uint32_t n = pass(how, k);
        g_counting = 0;
        return n;
}

/* What no message of a counted pass of n messages may do: take a lock,
 * compare strings (gates and headings are interned to integers: ds_domain.c
 * compares packed words), read the clock or make an I/O or scheduler call.
 * memcmp is allowed once per message: ds_step_check compares the message
 * key with the declaration id (a check, not a lookup). */
static void assert_quiet(uint32_t n, const char *what) {
        cr_assert_eq(g_locks, 0, "%s: %lu locks in %u messages", what, g_locks, n);
        cr_assert_eq(g_strcmps, 0, "%s: %lu string comparisons in %u messages", what, g_strcmps, n);
        cr_assert_leq(g_memcmps, n, "%s: %lu memcmp calls in %u messages", what, g_memcmps, n);
        cr_assert_eq(g_syscalls, 0, "%s: %lu clock, I/O or scheduler calls in %u messages", what, g_syscalls, n);
}

TestSuite(hotpath, .init = setup, .fini = teardown, .timeout = 120);

/* The counters count: a test that cannot fail is no test. Every wrapped
 * function once (a missing or misspelt --wrap would count 0). */
Test(hotpath, the_counters_see_the_processors_calls) {
        pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
        pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
        pthread_spinlock_t sp;
        cr_assert_eq(pthread_spin_init(&sp, PTHREAD_PROCESS_PRIVATE), 0);
        int fds[2];
        cr_assert_eq(pipe(fds), 0);
        char c1 = 'x', c2 = 0;
        volatile size_t len = 3;
        counters_reset();
        g_counting = 1;
        ds_part_t *p = ds_part_new(&cfg, 99, 0); /* allocates its tables */
        void *m = malloc(len), *z = calloc(1, len), *ap = NULL;
        m = realloc(m, 2 * len);
        char *dup = strdup("abc");
        int pm = posix_memalign(&ap, 64, 64);
        void *al = aligned_alloc(64, 64);
        pthread_mutex_lock(&mu);
        pthread_mutex_unlock(&mu);
        pthread_rwlock_rdlock(&rw);
        pthread_rwlock_unlock(&rw);
        pthread_rwlock_wrlock(&rw);
        pthread_rwlock_unlock(&rw);
        pthread_spin_lock(&sp);
        pthread_spin_unlock(&sp);
        int64_t t = ds_now_ms(); /* ds_common.h: clock_gettime */
        ssize_t wr = write(fds[1], &c1, 1), rd = read(fds[0], &c2, 1);
        struct timespec ts = {0, 1000};
        nanosleep(&ts, NULL);
        sched_yield();
        int c = memcmp("abc", "abd", len) + strcmp(corpus.m[0].key, corpus.m[1].key) +
                strncmp(corpus.m[0].key, corpus.m[1].key, len) + strcasecmp(corpus.m[0].key, "x") +
                strncasecmp(corpus.m[0].key, "x", len);
        g_counting = 0;
        ds_part_destroy(p);
        free(m);
        free(z);
        free(dup);
        free(ap);
        free(al);
        close(fds[0]);
        close(fds[1]);
        pthread_spin_destroy(&sp);
        cr_assert_eq(pm, 0);
        cr_assert_gt(g_allocs, 6, "ds_part_new's tables and the six calls here");
        cr_assert_eq(g_locks, 4);
        cr_assert(t > 0 && wr == 1 && rd == 1 && c2 == 'x');
        cr_assert_eq(g_syscalls, 5);
        cr_assert_neq(c, 0);
        cr_assert_eq(g_memcmps, 1);
        cr_assert_eq(g_strcmps, 4);
}

/* The warm-up pass creates what the traffic needs; it allocates. */
Test(hotpath, the_first_pass_creates_state_and_allocates) {
        uint32_t n = counted_pass(AS_RECORDED, 0);
        cr_assert_gt(n, COUNT);
        cr_assert_gt(g_allocs, 100, "rows, windows and sketches are new: %lu allocations", g_allocs);
        assert_quiet(n, "first pass");
}

/* New declarations into open windows: rows, windows and sketches exist, the
 * ledger's slots were sized for them; what is new is each declaration's
 * ledger entry, whose lines go into chunks that double (1,024 lines up to
 * 64 Ki, bench/HOTPATH.md "Memory"). So a pass allocates a chunk now and
 * then per partition, not anything per message: at most 2 per partition in
 * a pass of ~1,800 declarations each (measured: 1). One allocation per
 * 1,000 messages would be 21 more and fail. */
Test(hotpath, new_declarations_into_open_windows_allocate_only_ledger_chunks) {
        pass(AS_RECORDED, 0);
        flush();
        for (uint64_t k = 1; k <= 2; k++) {
                uint32_t n = counted_pass(AS_NEW_IDS, k);
                cr_assert_gt(n, COUNT);
                cr_assert_leq(g_allocs, 2 * NPART, "pass %lu: %lu allocations in %u messages", (unsigned long)k,
                              g_allocs, n);
                assert_quiet(n, "new declarations");
                flush();
        }
}

Test(hotpath, amendments_allocate_nothing) {
        pass(AS_RECORDED, 0);
        flush();
        for (uint64_t k = 1; k <= 2; k++) {
                uint32_t n = counted_pass(AS_AMENDMENTS, 10 * k);
                cr_assert_gt(n, COUNT);
                cr_assert_eq(g_allocs, 0, "amendment pass %lu: %lu allocations in %u messages", (unsigned long)k,
                             g_allocs, n);
                assert_quiet(n, "amendments");
                flush();
        }
}

Test(hotpath, redeliveries_allocate_nothing) {
        pass(AS_RECORDED, 0);
        flush();
        uint32_t n = counted_pass(AS_RECORDED, 0);
        cr_assert_gt(n, COUNT);
        cr_assert_eq(g_allocs, 0, "%lu allocations in %u redelivered messages", g_allocs, n);
        assert_quiet(n, "redeliveries");
}

/* With the processor's default ledger size (1,024 declarations a
 * partition, not presized), the ledger doubles: its slot table and a lines
 * chunk, a few allocations per partition and doubling - never one per
 * message. This pass doubles every partition's ledger once (~1,800 ->
 * ~3,600 entries); measured: 24 allocations for 21,457 messages. */
static void setup_default_ledger(void) {
        setup_with(0);
}

TestSuite(hotpath_growth, .init = setup_default_ledger, .fini = teardown, .timeout = 120);

Test(hotpath_growth, a_growing_ledger_allocates_per_doubling_not_per_message) {
        pass(AS_RECORDED, 0);
        flush();
        uint32_t n = counted_pass(AS_NEW_IDS, 1);
        cr_assert_gt(n, COUNT);
        cr_assert_gt(g_allocs, 0, "the ledger did not grow: the test no longer measures growth");
        cr_assert_leq(g_allocs, 3 * NPART, "%lu allocations in %u messages", g_allocs, n);
        assert_quiet(n, "a growing ledger");
}

/* The partitions' headers are written on every message by the worker that
 * owns the partition, and allocated one after the other by another thread
 * (setup here, main in the processor), for partitions that go to different
 * workers: each starts a cache line of its own (ds_calloc_lines), so no two
 * partitions' headers share a line. Checked here: the partition, its
 * ledger's and its aggregates' headers (its rows' and eviction headers,
 * inside the aggregates, are allocated the same way). */
Test(hotpath, partitions_headers_do_not_share_cache_lines) {
        for (int p = 0; p < NPART; p++) {
                cr_assert_eq((uintptr_t)parts[p] % DS_CACHELINE, 0, "partition %d", p);
                cr_assert_eq((uintptr_t)parts[p]->ledger % DS_CACHELINE, 0, "ledger of partition %d", p);
                cr_assert_eq((uintptr_t)parts[p]->agg % DS_CACHELINE, 0, "aggregates of partition %d", p);
                /* and nothing of another partition's starts inside this one's lines */
                uintptr_t lo = (uintptr_t)parts[p], hi = lo + sizeof(ds_part_t);
                uintptr_t end = (hi + DS_CACHELINE - 1) / DS_CACHELINE * DS_CACHELINE; /* its last line's end */
                for (int q = 0; q < NPART; q++) {
                        uintptr_t o = (uintptr_t)parts[q];
                        cr_assert(q == p || o >= end || o + sizeof(ds_part_t) <= lo,
                                  "partitions %d and %d share a cache line", p, q);
                }
        }
}
