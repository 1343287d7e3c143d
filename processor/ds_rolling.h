/*
 * ds_rolling.h - rolling views answered from the window buckets.
 *
 *   view          buckets summed (local time is UTC+7)
 *   last_15m      the 15 MINUTE windows ending with the one containing `now`
 *   last_1h       the 60 MINUTE windows ending with the one containing `now`
 *   last_24h      the 24 HOUR windows ending with the one containing `now`
 *   today         the DAY window containing `now`
 *   month_to_date the DAY windows from the 1st of `now`'s local month
 *   year_to_date  the DAY windows from January 1st of `now`'s local year
 *
 * Retention covers every view with the defaults (minutes 3 h, hours 3 days,
 * days 400 days). A data team can compute the same from customs.totals: keep
 * the latest row per key and sum the rows of the window size above whose
 * window_start falls in [from, to] (ds_view_range() gives both).
 *
 * Distinct counts are not summed (a sum of daily distinct counts is not a
 * distinct count); views report them as 0.
 *
 * @locality the thread that owns the rows (the publisher).
 */
#ifndef DS_ROLLING_H
#define DS_ROLLING_H

#include <stdint.h>

#include "ds_rows.h"

typedef enum {
        DS_VIEW_LAST_15M = 0,
        DS_VIEW_LAST_1H,
        DS_VIEW_LAST_24H,
        DS_VIEW_TODAY,
        DS_VIEW_MONTH_TO_DATE,
        DS_VIEW_YEAR_TO_DATE,
        DS_VIEW__CNT
} ds_view_t;

/* "last_15m", "last_1h", "last_24h", "today", "month_to_date", "year_to_date". */
const char *ds_view_name(ds_view_t v);
/* -1 when unknown. */
int ds_view_parse(const char *name);

/* The window size summed and the starts of the first and last buckets. */
void ds_view_range(ds_view_t v, int64_t now_ms, ds_window_t *win, int64_t *from, int64_t *to);

/* Sums the view's buckets of (dim, key) from rows into out. Returns the
 * number of buckets found. */
int ds_view_sum(const ds_rows_t *rows, ds_view_t v, int64_t now_ms, ds_dim_t dim, uint32_t key, ds_measures_t *out);

#endif
