/*
 * ds_agg.h - adding a declaration's contribution to aggregate rows.
 *
 * One contribution touches one GATE row and one COMMODITY row per heading it
 * has, in each window. A declaration counts once in its gate row; in a
 * commodity row it counts once if it has at least one item of that heading,
 * and brings that heading's items, value and weight. Flow values split the
 * customs value by the declaration's flow.
 *
 * sign = +1 adds the contribution, -1 retracts it (amendment, cancellation):
 * retracting exactly what was added returns every measure to its previous
 * value, because all measures are integer sums.
 *
 * @locality the thread that owns `rows`.
 */
#ifndef DS_AGG_H
#define DS_AGG_H

#include "ds_decl.h"
#include "ds_rows.h"

/* Returns 0, or -1 when a row could not be allocated (out of memory). */
int ds_agg_apply(ds_rows_t *rows, const ds_contrib_t *c, int64_t sign);

#endif
