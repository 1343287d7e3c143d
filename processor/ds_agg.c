/*
 * ds_agg.c - contribution -> rows.
 */
#include "ds_agg.h"
#include "ds_common.h"

int ds_agg_apply(ds_rows_t *rows, const ds_contrib_t *c, int64_t sign) {
        ds_row_t *r = ds_rows_get(rows, ds_rowkey(DS_DIM_GATE, DS_WIN_TOTAL, c->gate, 0));
        if (DS_UNLIKELY(!r))
                return -1;
        r->m.declarations += sign;
        r->m.items += sign * c->items;
        r->m.value += sign * c->value;
        r->m.weight += sign * c->weight;
        r->m.flow_value[c->flow] += sign * c->value;
        ds_rows_mark(rows, r);

        for (uint32_t i = 0; i < c->nlines; i++) {
                const ds_line_t *l = &c->lines[i];
                r = ds_rows_get(rows, ds_rowkey(DS_DIM_COMMODITY, DS_WIN_TOTAL, l->heading, 0));
                if (DS_UNLIKELY(!r))
                        return -1;
                r->m.declarations += sign;
                r->m.items += sign * l->items;
                r->m.value += sign * l->value;
                r->m.weight += sign * l->weight;
                r->m.flow_value[c->flow] += sign * l->value;
                ds_rows_mark(rows, r);
        }
        return 0;
}
