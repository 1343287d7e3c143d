/*
 * ds_common.h - small helpers shared by every declstream module.
 *
 * Nothing here allocates or locks. Time helpers read CLOCK_REALTIME (event and
 * publish timestamps, ms since the epoch) or CLOCK_MONOTONIC (intervals,
 * timeouts); both are vDSO calls, cheap enough for once-per-batch use but not
 * called per message on the hot path.
 */
#ifndef DS_COMMON_H
#define DS_COMMON_H

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DS_LIKELY(x)   __builtin_expect(!!(x), 1)
#define DS_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define DS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define DS_UNUSED __attribute__((unused))
#define DS_CACHELINE 64

/* Names the calling thread "ds-<role>[-<n>]" (n < 0: no number), as
 * librdkafka names its own "rdk:*": top -H, ps -L, perf and gdb then say
 * which thread is which. Linux keeps 15 characters. */
static inline void ds_thread_name(const char *role, int n) {
        char name[32];
        if (n < 0)
                snprintf(name, sizeof(name), "ds-%s", role);
        else
                snprintf(name, sizeof(name), "ds-%s-%d", role, n);
        name[15] = '\0';
        pthread_setname_np(pthread_self(), name);
}

/* Milliseconds since the Unix epoch, wall clock. */
static inline int64_t ds_now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* When the next publishing cycle is due (ds_pipeline.c, ds_replay.c): one
 * interval after the previous cycle started, and at least half an interval
 * after it ended. While cycles take under half an interval a declaration
 * waits at most one interval for its cycle; longer cycles never run back to
 * back (which republished every changed row twice as often: bench/HOTPATH.md). */
static inline int64_t ds_cycle_next(int64_t started, int64_t ended, int64_t interval) {
        int64_t next = started + interval;
        return next < ended + interval / 2 ? ended + interval / 2 : next;
}

/* Monotonic milliseconds, for intervals and timeouts. */
static inline int64_t ds_mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps ms milliseconds, resuming after a signal handler. */
static inline void ds_sleep_ms(int64_t ms) {
        struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) && errno == EINTR)
                ;
}

/* Monotonic nanoseconds, for benchmarks and latency histograms. */
static inline int64_t ds_mono_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* 64-bit finaliser of MurmurHash3 (fmix64): a cheap, well-mixed hash for
 * integer keys of the open-addressing tables. */
static inline uint64_t ds_mix64(uint64_t k) {
        k ^= k >> 33;
        k *= 0xff51afd7ed558ccdULL;
        k ^= k >> 33;
        k *= 0xc4ceb9fe1a85ec53ULL;
        k ^= k >> 33;
        return k;
}

/* calloc(1, size) for a structure one thread writes on every message and
 * another thread allocates next to others of its kind - a partition's
 * headers (ds_part_t, its ledger's, its rows', ...), which the main thread
 * creates one partition after the other for different workers: whole cache
 * lines of its own, so that two workers never write one line (false
 * sharing). Freed with free(). */
static inline void *ds_calloc_lines(size_t size) {
        size_t n = (size + DS_CACHELINE - 1) & ~(size_t)(DS_CACHELINE - 1);
        void *p = aligned_alloc(DS_CACHELINE, n);
        if (p)
                memset(p, 0, n);
        return p;
}

/* Makes the kernel back [p, p + n) now, by writing once to each 4 KiB and
 * to the last byte (so to every page, whatever the page size and p's
 * alignment): what is written is 0, so the memory must already be zeroed
 * (calloc's).
 * memset(p, 0, n) after malloc() does not do this: the compiler turns
 * malloc + memset(0) into calloc(), and jemalloc's calloc() of fresh pages
 * writes nothing, so they would be faulted in later, one by one, wherever
 * they are first written - on the per-message path. */
static inline void ds_prefault(void *p, size_t n) {
        volatile unsigned char *c = p;
        for (size_t i = 0; i < n; i += 4096)
                c[i] = 0;
        if (n)
                c[n - 1] = 0;
}

/* Smallest power of two >= v (v >= 1, v <= 2^31). */
static inline uint32_t ds_pow2_ceil(uint32_t v) {
        v--;
        v |= v >> 1; v |= v >> 2; v |= v >> 4; v |= v >> 8; v |= v >> 16;
        return v + 1;
}

/* Format into errstr (never overflows, always NUL-terminated); returns -1 so
 * that `return ds_err(errstr, size, "...")` reads naturally. */
int ds_err(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
