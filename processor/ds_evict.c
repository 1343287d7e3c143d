/*
 * ds_evict.c - per-class start buckets of registered row keys.
 */
#include "ds_evict.h"
#include "ds_common.h"

#include <stdlib.h>
#include <string.h>

typedef struct bucket {
        int64_t start;
        ds_rowkey_t *keys;
        uint32_t n, cap;
} bucket_t;

typedef struct evq {
        bucket_t *b; /* sorted by start */
        uint32_t n, cap;
        uint32_t last; /* the bucket used last: the common case */
} evq_t;

struct ds_evict {
        ds_window_cfg_t win;
        int64_t top_retention_ms;
        evq_t q[DS_EVC__CNT];
        size_t key_bytes;
};

int ds_evict_lengthen(ds_evict_t *e, const ds_window_cfg_t *cfg, int64_t top_retention_ms, int check_only) {
        static const ds_window_t wins[3] = {DS_WIN_MINUTE, DS_WIN_HOUR, DS_WIN_DAY};
        int longer = top_retention_ms > e->top_retention_ms;
        if (longer && !check_only)
                e->top_retention_ms = top_retention_ms;
        for (int i = 0; i < 3; i++) {
                int64_t r = cfg->retention_ms[wins[i]];
                if (r > e->win.retention_ms[wins[i]]) {
                        longer = 1;
                        if (!check_only)
                                e->win.retention_ms[wins[i]] = r;
                }
        }
        return longer;
}

void ds_evict_retentions(const ds_evict_t *e, ds_window_cfg_t *cfg, int64_t *top_retention_ms) {
        *cfg = e->win;
        *top_retention_ms = e->top_retention_ms;
}

void ds_evict_set_retentions(ds_evict_t *e, const ds_window_cfg_t *cfg, int64_t top_retention_ms) {
        e->win = *cfg;
        e->top_retention_ms = top_retention_ms;
}

ds_evict_t *ds_evict_new(const ds_window_cfg_t *cfg, int64_t top_retention_ms) {
        ds_evict_t *e = ds_calloc_lines(sizeof(*e));
        if (!e)
                return NULL;
        e->win = *cfg;
        e->top_retention_ms = top_retention_ms;
        return e;
}

void ds_evict_destroy(ds_evict_t *e) {
        if (!e)
                return;
        for (int c = 0; c < DS_EVC__CNT; c++) {
                for (uint32_t i = 0; i < e->q[c].n; i++)
                        free(e->q[c].b[i].keys);
                free(e->q[c].b);
        }
        free(e);
}

int ds_evict_class(ds_rowkey_t key) {
        if (ds_rowkey_dim(key) == DS_DIM_GATE_HEADING)
                return DS_EVC_CELL;
        switch (ds_rowkey_window(key)) {
        case DS_WIN_MINUTE:
                return DS_EVC_MINUTE;
        case DS_WIN_HOUR:
                return DS_EVC_HOUR;
        case DS_WIN_DAY:
                return DS_EVC_DAY;
        default: return -1;
        }
}

int ds_evict_closed(const ds_evict_t *e, int cls, int64_t start, int64_t wm) {
        switch (cls) {
        case DS_EVC_MINUTE:
                return ds_window_closed(&e->win, DS_WIN_MINUTE, start, wm);
        case DS_EVC_HOUR:
                return ds_window_closed(&e->win, DS_WIN_HOUR, start, wm);
        case DS_EVC_DAY:
                return ds_window_closed(&e->win, DS_WIN_DAY, start, wm);
        case DS_EVC_CELL:
                return start + DS_DAY_MS + e->top_retention_ms <= wm;
        default: return 0;
        }
}

/* ds_evict_add() when the bucket used last is not key's or is full. */
static __attribute__((noinline)) int add_slow(ds_evict_t *e, evq_t *q, ds_rowkey_t key) {
        uint32_t i = q->last;
        if (i >= q->n || q->b[i].start != key.start) {
                uint32_t lo = 0, hi = q->n;
                /* a start past every bucket's (event time moving on) needs no search */
                if (!q->n || q->b[q->n - 1].start < key.start)
                        lo = q->n;
                while (lo < hi) {
                        uint32_t mid = (lo + hi) / 2;
                        if (q->b[mid].start < key.start)
                                lo = mid + 1;
                        else
                                hi = mid;
                }
                i = lo;
                if (i == q->n || q->b[i].start != key.start) {
                        if (q->n == q->cap) {
                                uint32_t cap = q->cap ? q->cap * 2 : 16;
                                bucket_t *nb = realloc(q->b, cap * sizeof(*nb));
                                if (!nb)
                                        return -1;
                                q->b = nb;
                                q->cap = cap;
                        }
                        /* a bucket for the next window is sized for as many
                         * rows as the one before it took (windows of a size
                         * get about as many rows), rather than grown from 16
                         * keys by doubling: ~30 instructions per declaration
                         * fewer (callgrind, bench_micro apply, 20k messages,
                         * where a MINUTE bucket holds only ~5 keys) */
                        uint32_t cap = 16;
                        if (i == q->n && i > 0)
                                while (cap < q->b[i - 1].n && cap < (1u << 20))
                                        cap *= 2;
                        ds_rowkey_t *keys = malloc(cap * sizeof(*keys));
                        if (!keys)
                                return -1;
                        e->key_bytes += cap * sizeof(*keys);
                        if (i < q->n)
                                memmove(&q->b[i + 1], &q->b[i], (q->n - i) * sizeof(bucket_t));
                        q->b[i] = (bucket_t){key.start, keys, 0, cap};
                        q->n++;
                }
                q->last = i;
        }
        bucket_t *b = &q->b[i];
        if (b->n == b->cap) {
                uint32_t cap = b->cap ? b->cap * 2 : 16;
                ds_rowkey_t *nk = realloc(b->keys, cap * sizeof(*nk));
                if (!nk)
                        return -1;
                e->key_bytes += (cap - b->cap) * sizeof(*nk);
                b->keys = nk;
                b->cap = cap;
        }
        b->keys[b->n++] = key;
        return 0;
}

/* The usual case - key goes to the bucket used last, which has room - on
 * its own, without the registers the searching and growing need saved and
 * restored (~14 instructions per call fewer, callgrind, bench_micro apply). */
int ds_evict_add(ds_evict_t *e, int cls, ds_rowkey_t key) {
        evq_t *q = &e->q[cls];
        if (q->last < q->n) {
                bucket_t *b = &q->b[q->last];
                if (b->start == key.start && b->n < b->cap) {
                        b->keys[b->n++] = key;
                        return 0;
                }
        }
        return add_slow(e, q, key);
}

uint64_t ds_evict_pop(ds_evict_t *e, int64_t wm, ds_evict_fn fn, void *ctx) {
        uint64_t n = 0;
        for (int c = 0; c < DS_EVC__CNT; c++) {
                evq_t *q = &e->q[c];
                uint32_t drop = 0;
                while (drop < q->n && ds_evict_closed(e, c, q->b[drop].start, wm)) {
                        bucket_t *b = &q->b[drop];
                        if (b->n)
                                fn(ctx, b->keys, b->n);
                        n += b->n;
                        e->key_bytes -= b->cap * sizeof(ds_rowkey_t);
                        free(b->keys);
                        drop++;
                }
                if (drop) {
                        memmove(q->b, q->b + drop, (q->n - drop) * sizeof(bucket_t));
                        q->n -= drop;
                        q->last = 0;
                }
        }
        return n;
}

size_t ds_evict_memory(const ds_evict_t *e) {
        size_t n = sizeof(*e) + e->key_bytes;
        for (int c = 0; c < DS_EVC__CNT; c++)
                n += e->q[c].cap * sizeof(bucket_t);
        return n;
}
