/*
 * ds_part.c - per-partition apply and flush.
 */
#include "ds_part.h"
#include "ds_common.h"

#include <stdlib.h>
#include <string.h>

void ds_part_cfg_default(ds_part_cfg_t *cfg) {
        ds_agg_cfg_default(&cfg->agg);
        cfg->ledger_retention_ms = 35 * DS_DAY_MS;
        cfg->ledger_sweep_slots = 65536;
        cfg->ledger_initial = 1024;
        cfg->idle_ms = 5 * 60000;
        cfg->snapshot_min_bytes = 1 << 20;
}

ds_part_t *ds_part_new(const ds_part_cfg_t *cfg, int32_t partition, int64_t restore_end) {
        ds_part_t *p = ds_calloc_lines(sizeof(*p));
        if (!p)
                return NULL;
        p->partition = partition;
        p->ledger = ds_ledger_new(cfg->ledger_initial ? cfg->ledger_initial : 1024);
        p->agg = ds_agg_new(&cfg->agg);
        p->restore_end = restore_end;
        p->watermark_ms = INT64_MIN;
        p->active_ms = INT64_MIN;
        if (!p->ledger || !p->agg) {
                ds_part_destroy(p);
                return NULL;
        }
        return p;
}

void ds_part_destroy(ds_part_t *p) {
        if (!p)
                return;
        ds_ledger_destroy(p->ledger);
        ds_agg_destroy(p->agg);
        free(p);
}

int ds_part_apply(ds_part_t *p, const ds_part_cfg_t *cfg, const ds_contrib_t *c, int64_t now_ms,
                  ds_contrib_t *scratch) {
        int64_t at = c->declared_at;
        p->active_ms = now_ms;
        if (at > p->watermark_ms && at <= now_ms + DS_WATERMARK_SKEW_MS)
                p->watermark_ms = at;
        int64_t wm = p->watermark_ms;
        int64_t horizon = wm == INT64_MIN ? INT64_MIN : wm - cfg->ledger_retention_ms;
        /* The ledger lookup is a cache miss in a large ledger: start it, and
         * list (and prefetch) the rows an addition would touch meanwhile. */
        ds_ledger_prefetch(p->ledger, c->id);
        ds_agg_plan_t plan;
        ds_agg_plan(p->agg, c, 1, wm, &plan);
        ds_ledger_effect_t eff = {.old = scratch};
        int outcome = ds_ledger_apply(p->ledger, c, horizon, &eff);
        if (DS_UNLIKELY(outcome < 0))
                return -1;
        if (eff.retract && DS_UNLIKELY(ds_agg_apply(p->agg, scratch, -1, wm)))
                return -1;
        if (eff.add && DS_UNLIKELY(ds_agg_commit(p->agg, c, &plan)))
                return -1;
        return outcome;
}

#define GROW(vec, n, cap, init)                                                  \
        do {                                                                     \
                if ((n) == (cap)) {                                              \
                        uint32_t nc_ = (cap) ? (cap) * 2 : (init);               \
                        void *nv_ = realloc((vec), nc_ * sizeof(*(vec)));        \
                        if (!nv_)                                                \
                                return -1;                                       \
                        (vec) = nv_;                                             \
                        (cap) = nc_;                                             \
                }                                                                \
        } while (0)

static int push_part(ds_outbox_t *ob, const ds_part_t *p, int idle) {
        GROW(ob->parts, ob->nparts, ob->capparts, 64);
        ob->parts[ob->nparts++] =
            (ds_outpart_t){p->partition, p->next_offset, p->watermark_ms, p->eof, ds_part_restoring(p), idle};
        return 0;
}

static int push_row(ds_outbox_t *ob, const ds_part_t *p, const ds_row_t *r) {
        GROW(ob->rows, ob->nrows, ob->caprows, 1024);
        ds_distinct_t *d = NULL;
        if (r->aux && !(d = ds_distinct_dup(r->aux)))
                return -1;
        ob->rows[ob->nrows++] = (ds_outrow_t){p->partition, p->epoch, p->next_offset, r->key, r->m, d};
        return 0;
}

static int push_evict(ds_outbox_t *ob, int32_t partition, ds_rowkey_t key) {
        GROW(ob->evicts, ob->nevicts, ob->capevicts, 1024);
        ob->evicts[ob->nevicts++] = (ds_outevict_t){partition, key};
        return 0;
}

typedef struct evict_ctx {
        ds_outbox_t *ob;
        int32_t partition;
        int oom;
} evict_ctx_t;

static void on_evict(void *ctx, const ds_row_t *r) {
        evict_ctx_t *e = ctx;
        if (push_evict(e->ob, e->partition, r->key))
                e->oom = 1;
}

int ds_part_flush(ds_part_t *p, const ds_part_cfg_t *cfg, int64_t now_ms, ds_outbox_t *ob) {
        ds_agg_take_stats(p->agg, &ob->stats);
        if (p->active_ms == INT64_MIN)
                p->active_ms = now_ms; /* the idle clock starts at the first flush */
        if (push_part(ob, p, now_ms - p->active_ms > cfg->idle_ms))
                return -1;
        if (ds_part_restoring(p))
                return 0; /* still rebuilding: rows stay dirty (and unevicted) until it has caught up */
        if (ds_agg_sync(p->agg)) /* the sketches complete before they are copied */
                return -1;
        ds_rows_t *rows = ds_agg_rows(p->agg);
        uint32_t n = ds_rows_dirty_count(rows);
        for (uint32_t i = 0; i < n; i++) {
                ds_row_t *r = ds_rows_dirty_at(rows, i);
                if (r && push_row(ob, p, r))
                        return -1;
        }
        ds_rows_clear_dirty(rows);
        if (p->watermark_ms == INT64_MIN)
                return 0;
        /* closed windows: their last values are in the outbox; hand the keys over too */
        evict_ctx_t ec = {ob, p->partition, 0};
        ds_agg_evict(p->agg, p->watermark_ms, on_evict, &ec);
        if (ec.oom)
                return -1;
        ds_ledger_expire(p->ledger, p->watermark_ms - cfg->ledger_retention_ms, cfg->ledger_sweep_slots);
        return 0;
}

void ds_outbox_reset(ds_outbox_t *ob) {
        for (uint32_t i = 0; i < ob->nrows; i++)
                ds_distinct_free(ob->rows[i].distinct);
        ob->nrows = ob->nevicts = ob->nparts = 0;
        memset(&ob->stats, 0, sizeof(ob->stats));
}

void ds_outbox_truncate(ds_outbox_t *ob, uint32_t nrows, uint32_t nevicts) {
        for (uint32_t i = nrows; i < ob->nrows; i++)
                ds_distinct_free(ob->rows[i].distinct);
        ob->nrows = nrows;
        ob->nevicts = nevicts;
}

void ds_outbox_free(ds_outbox_t *ob) {
        ds_outbox_reset(ob);
        free(ob->rows);
        free(ob->evicts);
        free(ob->parts);
        memset(ob, 0, sizeof(*ob));
}
