/*
 * ds_metrics.h - counters written by one thread, read by any.
 *
 * A worker counts into a plain ds_counters_t (no atomics on the per-message
 * path) and, once per batch, copies it into its ds_counters_shared_t with
 * relaxed atomic stores. Readers (progress log, HTTP /metrics) load with
 * relaxed atomic loads and sum over workers. Relaxed is enough: each counter
 * is monotonic and independent; a reader needs no ordering between them, only
 * untorn 64-bit values, which relaxed atomics guarantee. No read-modify-write
 * is needed because each shared copy has a single writer.
 */
#ifndef DS_METRICS_H
#define DS_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "ds_hist.h"
#include "ds_reason.h"
#include "ds_rows.h"

#define DS_COUNTERS(X)                                                                   \
        X(consumed, "messages taken from the input topic")                              \
        X(consumed_bytes, "bytes of message values taken")                              \
        X(applied, "valid declarations passed to the ledger")                           \
        X(dead_lettered, "messages written to the dead-letter topic")                   \
        X(not_owned, "messages for a partition this worker no longer owns (skipped)")   \
        X(kafka_errors, "consumer errors reported on partition queues")                 \
        X(late_top, "additions or retractions too late for a day's top-headings cells") \
        X(evicted_rows, "rows removed after their window closed")

typedef struct ds_counters {
#define DS__X(name, help) uint64_t name;
        DS_COUNTERS(DS__X)
#undef DS__X
        uint64_t dlq[DS_DLQ__CNT];
        uint64_t outcome[DS_EV__CNT];
        uint64_t late[DS_WIN__CNT];         /* additions too late for a window size */
        uint64_t late_retract[DS_WIN__CNT]; /* retractions skipped: window closed */
        ds_hist_t decode; /* resolve+decode+validate time, one message in DS_DECODE_SAMPLE */
        ds_hist_t ingest; /* message timestamp -> applied (wall clock), the same sampled messages */
} ds_counters_t;

typedef struct ds_counters_shared {
#define DS__X(name, help) _Atomic uint64_t name;
        DS_COUNTERS(DS__X)
#undef DS__X
        _Atomic uint64_t dlq[DS_DLQ__CNT];
        _Atomic uint64_t outcome[DS_EV__CNT];
        _Atomic uint64_t late[DS_WIN__CNT];
        _Atomic uint64_t late_retract[DS_WIN__CNT];
        ds_hist_shared_t decode;
        ds_hist_shared_t ingest;
} ds_counters_shared_t;

/* One message in this many is timed for the decode histogram: two vDSO clock
 * reads (~40 ns) spread over 64 messages cost under 1 ns each. */
#define DS_DECODE_SAMPLE 64

/* Writer side: publish the local counters (relaxed stores). */
static inline void ds_counters_publish(ds_counters_shared_t *s, const ds_counters_t *c) {
#define DS__X(name, help) atomic_store_explicit(&s->name, c->name, memory_order_relaxed);
        DS_COUNTERS(DS__X)
#undef DS__X
        for (int i = 0; i < DS_DLQ__CNT; i++)
                atomic_store_explicit(&s->dlq[i], c->dlq[i], memory_order_relaxed);
        for (int i = 0; i < DS_EV__CNT; i++)
                atomic_store_explicit(&s->outcome[i], c->outcome[i], memory_order_relaxed);
        for (int i = 0; i < DS_WIN__CNT; i++) {
                atomic_store_explicit(&s->late[i], c->late[i], memory_order_relaxed);
                atomic_store_explicit(&s->late_retract[i], c->late_retract[i], memory_order_relaxed);
        }
        ds_hist_publish(&s->decode, &c->decode);
        ds_hist_publish(&s->ingest, &c->ingest);
}

/* Reader side: add a worker's published counters into sum. */
static inline void ds_counters_sum(ds_counters_t *sum, ds_counters_shared_t *s) {
#define DS__X(name, help) sum->name += atomic_load_explicit(&s->name, memory_order_relaxed);
        DS_COUNTERS(DS__X)
#undef DS__X
        for (int i = 0; i < DS_DLQ__CNT; i++)
                sum->dlq[i] += atomic_load_explicit(&s->dlq[i], memory_order_relaxed);
        for (int i = 0; i < DS_EV__CNT; i++)
                sum->outcome[i] += atomic_load_explicit(&s->outcome[i], memory_order_relaxed);
        for (int i = 0; i < DS_WIN__CNT; i++) {
                sum->late[i] += atomic_load_explicit(&s->late[i], memory_order_relaxed);
                sum->late_retract[i] += atomic_load_explicit(&s->late_retract[i], memory_order_relaxed);
        }
        ds_hist_sum_shared(&sum->decode, &s->decode);
        ds_hist_sum_shared(&sum->ingest, &s->ingest);
}

#endif
