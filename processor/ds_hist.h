/*
 * ds_hist.h - fixed-bucket latency histograms, Prometheus style.
 *
 * A histogram is a plain struct owned by one writer thread: observing is an
 * increment of a bucket, the count and the sum, no atomics. To share it, the
 * writer copies it to where readers look (a mutex-protected status snapshot,
 * or ds_hist_publish() into a ds_hist_shared_t with relaxed stores: every
 * field is monotonic and independent, a reader needs untorn values, not
 * ordering between them; the single writer needs no read-modify-write).
 *
 * Bucket bounds are one of a few fixed ladders (ds_hist_kind_t), so
 * histograms of the same kind can be summed over threads.
 *
 * @locality one writer per histogram; readers use copies.
 */
#ifndef DS_HIST_H
#define DS_HIST_H

#include <stdatomic.h>
#include <stdint.h>

#define DS_HIST_BUCKETS 14

typedef enum {
        DS_HIST_NS = 0, /* per-message work: 50 ns .. 100 us */
        DS_HIST_MS,     /* cycles, commits, restores: 1 ms .. 60 s */
} ds_hist_kind_t;

/* Upper bounds in nanoseconds, ascending; the last bucket is +Inf beyond. */
static const int64_t ds_hist_bounds_ns[2][DS_HIST_BUCKETS] = {
        {50, 100, 150, 200, 300, 500, 750, 1000, 2000, 5000, 10000, 20000, 50000, 100000},
        {1000000, 5000000, 10000000, 25000000, 50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000,
         5000000000, 10000000000, 30000000000, 60000000000},
};

typedef struct ds_hist {
        uint64_t bucket[DS_HIST_BUCKETS + 1]; /* not cumulative; [DS_HIST_BUCKETS] is +Inf */
        uint64_t count;
        uint64_t sum_ns;
} ds_hist_t;

typedef struct ds_hist_shared {
        _Atomic uint64_t bucket[DS_HIST_BUCKETS + 1];
        _Atomic uint64_t count;
        _Atomic uint64_t sum_ns;
} ds_hist_shared_t;

static inline void ds_hist_observe(ds_hist_t *h, ds_hist_kind_t kind, int64_t ns) {
        const int64_t *b = ds_hist_bounds_ns[kind];
        int i = 0;
        while (i < DS_HIST_BUCKETS && ns > b[i])
                i++;
        h->bucket[i]++;
        h->count++;
        h->sum_ns += ns > 0 ? (uint64_t)ns : 0;
}

static inline void ds_hist_add(ds_hist_t *sum, const ds_hist_t *h) {
        for (int i = 0; i <= DS_HIST_BUCKETS; i++)
                sum->bucket[i] += h->bucket[i];
        sum->count += h->count;
        sum->sum_ns += h->sum_ns;
}

/* Writer: relaxed stores (see the file comment). */
static inline void ds_hist_publish(ds_hist_shared_t *s, const ds_hist_t *h) {
        for (int i = 0; i <= DS_HIST_BUCKETS; i++)
                atomic_store_explicit(&s->bucket[i], h->bucket[i], memory_order_relaxed);
        atomic_store_explicit(&s->count, h->count, memory_order_relaxed);
        atomic_store_explicit(&s->sum_ns, h->sum_ns, memory_order_relaxed);
}

/* Reader: relaxed loads, added into sum. A scrape racing the writer may see
 * count one ahead of the buckets; Prometheus tolerates that. */
static inline void ds_hist_sum_shared(ds_hist_t *sum, ds_hist_shared_t *s) {
        for (int i = 0; i <= DS_HIST_BUCKETS; i++)
                sum->bucket[i] += atomic_load_explicit(&s->bucket[i], memory_order_relaxed);
        sum->count += atomic_load_explicit(&s->count, memory_order_relaxed);
        sum->sum_ns += atomic_load_explicit(&s->sum_ns, memory_order_relaxed);
}

#endif
