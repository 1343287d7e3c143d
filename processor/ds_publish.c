/*
 * ds_publish.c - merge, publish, close.
 */
#include "ds_publish.h"

#include <string.h>

typedef struct top_ctx {
        ds_merge_t *m;
        const ds_sink_t *sink;
        uint32_t n;
        int failed;
} top_ctx_t;

static void top_group(void *ctx, uint32_t gate, int64_t day) {
        top_ctx_t *t = ctx;
        if (t->failed)
                return;
        ds_top_entry_t top[10];
        int n = ds_merge_top(t->m, gate, day, top, 10);
        if (t->sink->top(t->sink->ctx, gate, day, top, n))
                t->failed = 1;
        else
                t->n++;
}

void ds_publish_state(ds_outbox_t *const *obs, int nobs, ds_publish_state_t *st) {
        st->restoring = 0;
        st->wm_min = INT64_MAX;
        for (int i = 0; i < nobs; i++)
                for (uint32_t k = 0; k < obs[i]->nparts; k++) {
                        const ds_outpart_t *p = &obs[i]->parts[k];
                        st->restoring |= p->restoring;
                        if (!p->idle && p->watermark_ms < st->wm_min)
                                st->wm_min = p->watermark_ms;
                }
}

int ds_publish_merge(ds_merge_t *m, ds_outbox_t *const *obs, int nobs, ds_publish_result_t *res) {
        for (int i = 0; i < nobs; i++) {
                const ds_outbox_t *ob = obs[i];
                for (uint32_t k = 0; k < ob->nrows; k++) {
                        const ds_outrow_t *o = &ob->rows[k];
                        ds_merge_src_t src = {o->partition, o->epoch, o->offset};
                        int r = ds_merge_update(m, &src, o->key, &o->m, o->distinct);
                        if (r < 0)
                                return -1;
                        if (r)
                                res->ignored++;
                }
        }
        return 0;
}

int ds_publish_emit(ds_merge_t *m, int64_t wm_min, const ds_sink_t *sink, ds_publish_result_t *res) {
        ds_rows_t *g = ds_merge_global(m);
        uint32_t n = ds_rows_dirty_count(g);
        for (uint32_t i = 0; i < n; i++) {
                ds_row_t *r = ds_rows_dirty_at(g, i);
                if (!r || ds_rowkey_dim(r->key) == DS_DIM_GATE_HEADING)
                        continue;
                if (sink->row(sink->ctx, r))
                        return -1;
                res->rows++;
        }
        ds_rows_clear_dirty(g);
        top_ctx_t tc = {m, sink, 0, 0};
        ds_merge_changed_groups(m, top_group, &tc);
        res->tops += tc.n;
        if (tc.failed)
                return -1;
        /* windows closed in every partition: their final values are out */
        if (wm_min != INT64_MAX && wm_min != INT64_MIN)
                res->dropped += ds_merge_advance(m, wm_min);
        res->published = 1;
        return 0;
}

int ds_publish_cycle(ds_merge_t *m, ds_outbox_t *const *obs, int nobs, int allow, int64_t wm_min,
                     const ds_sink_t *sink, ds_publish_result_t *res) {
        memset(res, 0, sizeof(*res));
        if (ds_publish_merge(m, obs, nobs, res))
                return -1;
        if (!allow)
                return 0;
        return ds_publish_emit(m, wm_min, sink, res);
}
