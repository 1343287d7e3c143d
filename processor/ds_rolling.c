/*
 * ds_rolling.c - rolling views from window buckets.
 */
#include "ds_rolling.h"
#include "ds_window.h"

#include <string.h>
#include <time.h>

static const char *const names[DS_VIEW__CNT] = {"last_15m", "last_1h", "last_24h",
                                                "today",    "month_to_date", "year_to_date"};

const char *ds_view_name(ds_view_t v) {
        return (unsigned)v < DS_VIEW__CNT ? names[v] : "?";
}

int ds_view_parse(const char *name) {
        for (int i = 0; i < DS_VIEW__CNT; i++)
                if (!strcmp(names[i], name))
                        return i;
        return -1;
}

/* Local midnight (as UTC ms) of the 1st of the month, or of January 1st. */
static int64_t local_period_start(int64_t now_ms, int year) {
        time_t local = (time_t)((now_ms + DS_TZ_OFFSET_MS) / 1000);
        struct tm tm;
        gmtime_r(&local, &tm);
        tm.tm_mday = 1;
        if (year)
                tm.tm_mon = 0;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        return (int64_t)timegm(&tm) * 1000 - DS_TZ_OFFSET_MS;
}

void ds_view_range(ds_view_t v, int64_t now, ds_window_t *win, int64_t *from, int64_t *to) {
        switch (v) {
        case DS_VIEW_LAST_15M:
                *win = DS_WIN_MINUTE;
                *to = ds_window_start(DS_WIN_MINUTE, now);
                *from = *to - 14 * DS_MINUTE_MS;
                return;
        case DS_VIEW_LAST_1H:
                *win = DS_WIN_MINUTE;
                *to = ds_window_start(DS_WIN_MINUTE, now);
                *from = *to - 59 * DS_MINUTE_MS;
                return;
        case DS_VIEW_LAST_24H:
                *win = DS_WIN_HOUR;
                *to = ds_window_start(DS_WIN_HOUR, now);
                *from = *to - 23 * DS_HOUR_MS;
                return;
        case DS_VIEW_TODAY:
                *win = DS_WIN_DAY;
                *from = *to = ds_window_start(DS_WIN_DAY, now);
                return;
        case DS_VIEW_MONTH_TO_DATE:
        case DS_VIEW_YEAR_TO_DATE:
        default:
                *win = DS_WIN_DAY;
                *to = ds_window_start(DS_WIN_DAY, now);
                *from = local_period_start(now, v == DS_VIEW_YEAR_TO_DATE);
                return;
        }
}

int ds_view_sum(const ds_rows_t *rows, ds_view_t v, int64_t now, ds_dim_t dim, uint32_t key, ds_measures_t *out) {
        ds_window_t win;
        int64_t from, to;
        ds_view_range(v, now, &win, &from, &to);
        memset(out, 0, sizeof(*out));
        int64_t step = ds_window_size(win);
        int found = 0;
        for (int64_t s = from; s <= to; s += step) {
                const ds_row_t *r = ds_rows_find(rows, ds_rowkey(dim, win, key, s));
                if (r) {
                        ds_measures_add(out, &r->m, 1);
                        found++;
                }
        }
        return found;
}
