/*
 * ds_status.c - the published status snapshot (see ds_status.h).
 */
#include "ds_status.h"
#include "ds_common.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RATE_SAMPLES   48 /* at 4 per second: 12 s of history */
#define RATE_WINDOW_MS 10000

typedef struct sample {
        int64_t t;
        uint64_t consumed, applied, dead_lettered;
} sample_t;

static pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
static ds_status_snap_t cur; /* cur.parts owned here */
static sample_t ring[RATE_SAMPLES];
static int nring, ring_head;

static void snap_copy(ds_status_snap_t *dst, const ds_status_snap_t *src) {
        *dst = *src;
        dst->parts = NULL;
        if (src->nparts > 0 && src->parts) {
                dst->parts = malloc((size_t)src->nparts * sizeof(*dst->parts));
                if (dst->parts)
                        memcpy(dst->parts, src->parts, (size_t)src->nparts * sizeof(*dst->parts));
                else
                        dst->nparts = 0;
        }
}

void ds_status_init(const char *instance, const char *role) {
        pthread_mutex_lock(&mtx);
        snprintf(cur.instance, sizeof(cur.instance), "%s", instance ? instance : "");
        snprintf(cur.role, sizeof(cur.role), "%s", role ? role : "");
        cur.started_ms = ds_now_ms();
        cur.updated_ms = cur.started_ms;
        snprintf(cur.not_ready, sizeof(cur.not_ready), "starting");
        pthread_mutex_unlock(&mtx);
}

static double rate(const sample_t *old, const sample_t *now, size_t off) {
        int64_t dt = now->t - old->t;
        if (dt <= 0)
                return 0;
        uint64_t a = *(const uint64_t *)((const char *)old + off), b = *(const uint64_t *)((const char *)now + off);
        return b >= a ? (double)(b - a) * 1000.0 / (double)dt : 0;
}

void ds_status_publish(const ds_status_snap_t *s) {
        int64_t now = ds_now_ms();
        sample_t smp = {ds_mono_ms(), s->c.consumed, s->c.applied, s->c.dead_lettered};
        ds_status_snap_t copy;
        snap_copy(&copy, s);
        pthread_mutex_lock(&mtx);
        /* the oldest sample within the window, else the oldest kept */
        ring[ring_head] = smp;
        ring_head = (ring_head + 1) % RATE_SAMPLES;
        if (nring < RATE_SAMPLES)
                nring++;
        const sample_t *old = &ring[(ring_head - nring + RATE_SAMPLES) % RATE_SAMPLES];
        for (int i = nring; i > 1; i--) {
                const sample_t *x = &ring[(ring_head - i + RATE_SAMPLES) % RATE_SAMPLES];
                if (smp.t - x->t <= RATE_WINDOW_MS) {
                        old = x;
                        break;
                }
        }
        copy.consumed_per_s = rate(old, &smp, offsetof(sample_t, consumed));
        copy.applied_per_s = rate(old, &smp, offsetof(sample_t, applied));
        copy.dead_lettered_per_s = rate(old, &smp, offsetof(sample_t, dead_lettered));
        memcpy(copy.instance, cur.instance, sizeof(copy.instance));
        if (!copy.role[0])
                memcpy(copy.role, cur.role, sizeof(copy.role));
        copy.started_ms = cur.started_ms;
        copy.updated_ms = now;
        copy.published = 1;
        copy.stopping = cur.stopping || s->stopping;
        if (copy.stopping) {
                copy.ready = 0;
                snprintf(copy.not_ready, sizeof(copy.not_ready), "stopping");
        }
        free(cur.parts);
        cur = copy;
        pthread_mutex_unlock(&mtx);
}

void ds_status_stopping(void) {
        pthread_mutex_lock(&mtx);
        cur.stopping = 1;
        cur.ready = 0;
        snprintf(cur.not_ready, sizeof(cur.not_ready), "stopping");
        pthread_mutex_unlock(&mtx);
}

void ds_status_read(ds_status_snap_t *out) {
        pthread_mutex_lock(&mtx);
        snap_copy(out, &cur);
        pthread_mutex_unlock(&mtx);
}

void ds_status_snap_free(ds_status_snap_t *s) {
        free(s->parts);
        s->parts = NULL;
        s->nparts = 0;
}

void ds_status_ready(ds_status_snap_t *s, int64_t max_lag) {
        s->ready = 0;
        if (s->stopping) {
                snprintf(s->not_ready, sizeof(s->not_ready), "stopping");
                return;
        }
        if (s->fatal) {
                snprintf(s->not_ready, sizeof(s->not_ready), "a fatal error stopped processing");
                return;
        }
        if (s->processing) {
                if (!s->assigned_once) {
                        snprintf(s->not_ready, sizeof(s->not_ready),
                                 "waiting for the consumer group to assign partitions");
                        return;
                }
                if (s->restoring) {
                        snprintf(s->not_ready, sizeof(s->not_ready), "restoring partitions from the changelog");
                        return;
                }
                if (max_lag > 0 && s->lag > max_lag) {
                        snprintf(s->not_ready, sizeof(s->not_ready),
                                 "input lag %" PRId64 " exceeds ready.max.lag %" PRId64, s->lag, max_lag);
                        return;
                }
        }
        if (s->merging) {
                if (!s->merge.assigned_once) {
                        snprintf(s->not_ready, sizeof(s->not_ready),
                                 "merge: waiting for the consumer group to assign partial partitions");
                        return;
                }
                if (!s->merge.ready) {
                        snprintf(s->not_ready, sizeof(s->not_ready),
                                 "merge: rebuilding from the partial topic (%" PRId64 " messages to read)",
                                 s->merge.rebuild_lag);
                        return;
                }
        }
        s->ready = 1;
        s->not_ready[0] = '\0';
}

uint64_t ds_status_rss(void) {
        FILE *f = fopen("/proc/self/statm", "r");
        if (!f)
                return 0;
        unsigned long long size = 0, resident = 0;
        int n = fscanf(f, "%llu %llu", &size, &resident);
        fclose(f);
        if (n != 2)
                return 0;
        long page = sysconf(_SC_PAGESIZE);
        return (uint64_t)resident * (uint64_t)(page > 0 ? page : 4096);
}

void ds_status_reset(void) {
        pthread_mutex_lock(&mtx);
        free(cur.parts);
        memset(&cur, 0, sizeof(cur));
        nring = ring_head = 0;
        pthread_mutex_unlock(&mtx);
}
