/*
 * ds_agg.c - contributions -> windowed rows of one partition.
 */
#include "ds_agg.h"
#include "ds_common.h"
#include "ds_evict.h"

#include <stdlib.h>
#include <string.h>

/* Sketch additions waiting for ds_agg_sync(): the register an addition
 * writes is a cache miss (a GATE DAY row's sketches are up to 16 KiB each,
 * one pair per gate, day and partition), which an addition made at once
 * could overlap only with the other sketch's. Queued, up to PEND_MAX go out
 * together (bench/HOTPATH.md, seventeenth round). The queue holds the
 * address of the sketch pointer (ds_hll_add() may reallocate the sketch),
 * which lives as long as its ds_distinct_t: every path that frees or
 * replaces one syncs first. Additions are applied in the order made, so
 * every sketch ends byte for byte as if each had been made at once. */
#define PEND_MAX 64

typedef struct pend {
        ds_hll_t **h;
        uint64_t hash;
} pend_t;

struct ds_agg {
        ds_agg_cfg_t cfg;
        ds_rows_t *rows;
        ds_evict_t *ev;
        ds_agg_stats_t st;
        uint32_t npend;
        int failed; /* a queued addition ran out of memory: the sketches are incomplete */
        pend_t pend[PEND_MAX];
};

void ds_agg_cfg_default(ds_agg_cfg_t *cfg) {
        ds_window_cfg_default(&cfg->win);
        cfg->top_retention_ms = 7 * DS_DAY_MS;
}

ds_agg_t *ds_agg_new(const ds_agg_cfg_t *cfg) {
        ds_agg_t *a = ds_calloc_lines(sizeof(*a));
        if (!a)
                return NULL;
        a->cfg = *cfg;
        a->rows = ds_rows_new(256);
        a->ev = ds_evict_new(&cfg->win, cfg->top_retention_ms);
        if (!a->rows || !a->ev) {
                ds_rows_destroy(a->rows);
                ds_evict_destroy(a->ev);
                free(a);
                return NULL;
        }
        return a;
}

void ds_agg_destroy(ds_agg_t *a) {
        if (!a)
                return;
        ds_evict_destroy(a->ev);
        ds_rows_destroy_with(a->rows, ds_distinct_free);
        free(a);
}

/* The queued sketch additions: every register loaded first, then set. */
static int drain(ds_agg_t *a) {
        uint32_t n = a->npend;
        a->npend = 0;
        for (uint32_t i = 0; i < n; i++)
                ds_hll_prefetch(*a->pend[i].h, a->pend[i].hash);
        for (uint32_t i = 0; i < n; i++)
                if (DS_UNLIKELY(ds_hll_add(a->pend[i].h, a->pend[i].hash))) {
                        a->failed = 1;
                        return -1;
                }
        return 0;
}

int ds_agg_sync(ds_agg_t *a) {
        if (a->npend && drain(a))
                return -1;
        return a->failed ? -1 : 0;
}

ds_rows_t *ds_agg_rows(ds_agg_t *a) {
        ds_agg_sync(a); /* a failure stays: the next ds_agg_sync() or ds_agg_commit() reports it */
        return a->rows;
}

const ds_agg_stats_t *ds_agg_stats(const ds_agg_t *a) {
        return &a->st;
}

void ds_agg_take_stats(ds_agg_t *a, ds_agg_stats_t *into) {
        for (int w = 0; w < DS_WIN__CNT; w++) {
                into->late[w] += a->st.late[w];
                into->late_retract[w] += a->st.late_retract[w];
        }
        into->late_top += a->st.late_top;
        into->evicted += a->st.evicted;
        memset(&a->st, 0, sizeof(a->st));
}

size_t ds_agg_memory(const ds_agg_t *a) {
        return sizeof(*a) + ds_rows_memory(a->rows) + ds_evict_memory(a->ev);
}

/* ---- distinct-count sketches ------------------------------------------- */

ds_distinct_t *ds_distinct_new(void) {
        ds_distinct_t *d = calloc(1, sizeof(*d));
        if (!d)
                return NULL;
        d->declarants = ds_hll_new();
        d->vehicles = ds_hll_new();
        if (!d->declarants || !d->vehicles) {
                ds_distinct_free(d);
                return NULL;
        }
        return d;
}

ds_distinct_t *ds_distinct_dup(const ds_distinct_t *s) {
        ds_distinct_t *d = calloc(1, sizeof(*d));
        if (!d)
                return NULL;
        d->declarants = ds_hll_dup(s->declarants);
        d->vehicles = ds_hll_dup(s->vehicles);
        if (!d->declarants || !d->vehicles) {
                ds_distinct_free(d);
                return NULL;
        }
        return d;
}

int ds_distinct_merge(ds_distinct_t *dst, const ds_distinct_t *src) {
        return ds_hll_merge(&dst->declarants, src->declarants) || ds_hll_merge(&dst->vehicles, src->vehicles) ? -1
                                                                                                                 : 0;
}

void ds_distinct_free(void *p) {
        ds_distinct_t *d = p;
        if (!d)
                return;
        ds_hll_destroy(d->declarants);
        ds_hll_destroy(d->vehicles);
        free(d);
}

/* ---- eviction ----------------------------------------------------------- */

/* Registers a new windowed row for eviction (refs marks it registered). */
static inline int track(ds_agg_t *a, ds_row_t *r, int cls) {
        if (DS_LIKELY(r->refs))
                return 0;
        r->refs = 1;
        return ds_evict_add(a->ev, cls, r->key);
}

typedef struct evict_ctx {
        ds_agg_t *a;
        ds_agg_evict_cb cb;
        void *ctx;
        uint64_t n;
} evict_ctx_t;

/* A row about to be removed: handed to the caller's callback, then its
 * sketches freed. */
static void evict_row(void *p, ds_row_t *r) {
        evict_ctx_t *e = p;
        if (e->cb)
                e->cb(e->ctx, r);
        ds_distinct_free(r->aux);
        r->aux = NULL;
}

/* A bucket of closed keys: rows already removed (ds_agg_remove_row) are
 * skipped. One call for the bucket rather than a find and a remove per key:
 * the rows' misses overlap (bench/HOTPATH.md, seventeenth round). */
static void evict_keys(void *p, const ds_rowkey_t *keys, uint32_t n) {
        evict_ctx_t *e = p;
        e->n += ds_rows_remove_many(e->a->rows, keys, n, evict_row, e);
}

uint64_t ds_agg_evict(ds_agg_t *a, int64_t wm, ds_agg_evict_cb cb, void *ctx) {
        evict_ctx_t e = {a, cb, ctx, 0};
        ds_agg_sync(a); /* queued additions may name sketches about to be freed */
        ds_evict_pop(a->ev, wm, evict_keys, &e);
        a->st.evicted += e.n;
        return e.n;
}

int ds_agg_restore_row(ds_agg_t *a, ds_rowkey_t key, const ds_measures_t *m, ds_distinct_t *d) {
        if (d && ds_agg_sync(a)) { /* the row's sketches may be replaced */
                ds_distinct_free(d);
                return -1;
        }
        ds_row_t *r = ds_rows_get(a->rows, key);
        if (!r) {
                ds_distinct_free(d);
                return -1;
        }
        int cls = ds_evict_class(key);
        if (cls >= 0 && track(a, r, cls)) {
                ds_distinct_free(d);
                return -1;
        }
        r->m = *m;
        if (d) {
                ds_distinct_free(r->aux);
                r->aux = d;
        }
        return 0;
}

void ds_agg_remove_row(ds_agg_t *a, ds_rowkey_t key) {
        ds_agg_sync(a); /* the row's sketches are freed */
        ds_row_t *r = ds_rows_find(a->rows, key);
        if (!r)
                return;
        ds_distinct_free(r->aux);
        r->aux = NULL;
        ds_rows_remove(a->rows, key); /* its eviction bucket entry finds nothing later */
}

/* ---- applying a contribution ------------------------------------------- */

/* What a contribution touches: every row key first (ds_agg_plan, which
 * then hashes them and prefetches their index slots in one call), then
 * ds_rows_get_hashed() (the rows' misses overlap) and the updates in the
 * order the keys were listed - the same order of row creation, eviction
 * registration and dirty marking as one ds_rows_get() at a time. */
void ds_agg_plan(ds_agg_t *a, const ds_contrib_t *c, int64_t sign, int64_t wm, ds_agg_plan_t *pl) {
        uint32_t n = 0;
        pl->gate_day = -1;
        pl->sign = sign;
        pl->late_top = 0;
        for (int w = DS_WIN_TOTAL; w < DS_WIN__CNT; w++) {
                int64_t start = ds_window_start((ds_window_t)w, c->declared_at);
                pl->late[w] = (uint8_t)ds_window_closed(&a->cfg.win, (ds_window_t)w, start, wm);
                if (pl->late[w])
                        continue;
                int8_t k = w == DS_WIN_TOTAL ? -1 : (int8_t)(w - DS_WIN_MINUTE + DS_EVC_MINUTE);
                if (w == DS_WIN_DAY && sign > 0)
                        pl->gate_day = (int)n;
                pl->keys[n] = ds_rowkey(DS_DIM_GATE, (ds_window_t)w, c->gate, start);
                pl->cls[n] = k;
                pl->line[n++] = -1;
                for (uint32_t i = 0; i < c->nlines; i++) {
                        pl->keys[n] = ds_rowkey(DS_DIM_COMMODITY, (ds_window_t)w, c->lines[i].heading, start);
                        pl->cls[n] = k;
                        pl->line[n++] = (int16_t)i;
                }
        }
        /* gate x heading cells of the declaration's day, for the top headings */
        int64_t day = ds_window_start(DS_WIN_DAY, c->declared_at);
        if (day + DS_DAY_MS + a->cfg.top_retention_ms <= wm) {
                pl->late_top = 1;
        } else {
                for (uint32_t i = 0; i < c->nlines; i++) {
                        pl->keys[n] = ds_cell_rowkey(c->gate, c->lines[i].heading, day);
                        pl->cls[n] = DS_EVC_CELL;
                        pl->line[n++] = (int16_t)i;
                }
        }
        pl->n = n;
        ds_rows_prefetch_many(a->rows, pl->keys, n, pl->hash);
}

int ds_agg_commit(ds_agg_t *a, const ds_contrib_t *c, const ds_agg_plan_t *pl) {
        if (DS_UNLIKELY(a->failed)) /* an earlier queued addition ran out of memory */
                return -1;
        ds_row_t *rows[DS_ROWS_MANY_MAX];
        /* What a row's items, value and weight gain: sign times the whole
         * contribution's (d[-1], for pl->line -1) or line i's (d[i]),
         * multiplied once here rather than for each of the ~5 rows that
         * take them, which also spares a branch per row (with the refs test
         * first, below: ~140 instructions per message fewer, callgrind,
         * bench_micro apply). */
        struct {
                int64_t items, value, weight;
        } dd[1 + DS_MAX_ITEMS], *d = dd + 1;
        int64_t sign = pl->sign;
        for (int w = DS_WIN_TOTAL; w < DS_WIN__CNT; w++)
                if (pl->late[w]) {
                        if (sign > 0)
                                a->st.late[w]++;
                        else
                                a->st.late_retract[w]++;
                }
        a->st.late_top += pl->late_top;
        if (DS_UNLIKELY(ds_rows_get_hashed(a->rows, pl->keys, pl->hash, pl->n, rows)))
                return -1;
        d[-1].items = sign * c->items;
        d[-1].value = sign * c->value;
        d[-1].weight = sign * c->weight;
        for (uint32_t i = 0; i < c->nlines; i++) {
                d[i].items = sign * c->lines[i].items;
                d[i].value = sign * c->lines[i].value;
                d[i].weight = sign * c->lines[i].weight;
        }
        /* The GATE DAY row's sketches are the end of a chain of loads (row,
         * its sketch pair, each sketch's header, the register): start the
         * headers' now, so that their misses overlap the row updates; the
         * registers are loaded when the queued additions drain, many at
         * once (PEND_MAX; bench/HOTPATH.md, ninth and seventeenth rounds). */
        ds_distinct_t *ds = NULL;
        if (pl->gate_day >= 0 && (ds = rows[pl->gate_day]->aux)) {
                __builtin_prefetch(ds->declarants);
                if (c->vehicle_hash)
                        __builtin_prefetch(ds->vehicles);
        }
        int flow = c->flow;
        for (uint32_t i = 0; i < pl->n; i++) {
                ds_row_t *r = rows[i];
                /* refs first: set on most windowed rows, so one test */
                if (!r->refs && pl->cls[i] >= 0 && DS_UNLIKELY(track(a, r, pl->cls[i])))
                        return -1;
                const int16_t l = pl->line[i];
                r->m.declarations += sign;
                r->m.items += d[l].items;
                r->m.value += d[l].value;
                r->m.weight += d[l].weight;
                r->m.flow_value[flow] += d[l].value;
                ds_rows_mark(a->rows, r);
        }
        if (pl->gate_day >= 0) {
                ds_row_t *r = rows[pl->gate_day];
                if (!ds && !(ds = r->aux = ds_distinct_new()))
                        return -1;
                /* queued (see PEND_MAX); the headers loaded above are what
                 * the drain's loads of the registers read */
                a->pend[a->npend++] = (pend_t){&ds->declarants, c->declarant_hash};
                if (c->vehicle_hash)
                        a->pend[a->npend++] = (pend_t){&ds->vehicles, c->vehicle_hash};
                if (a->npend > PEND_MAX - 2 && drain(a))
                        return -1;
        }
        return 0;
}

int ds_agg_apply(ds_agg_t *a, const ds_contrib_t *c, int64_t sign, int64_t wm) {
        ds_agg_plan_t pl;
        ds_agg_plan(a, c, sign, wm, &pl);
        return ds_agg_commit(a, c, &pl);
}
