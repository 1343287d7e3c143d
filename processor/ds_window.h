/*
 * ds_window.h - event-time windows: where an event falls, and when it is late.
 *
 * Event time is `declared_at`. Windows are tumbling: MINUTE, HOUR, and DAY
 * cut at local midnight in Vietnam (Asia/Ho_Chi_Minh, UTC+7 all year, no
 * daylight saving), so a customs day is a local day. Hours are the same in
 * UTC and local time because the offset is a whole number of hours.
 *
 * Lateness is judged against a watermark: the largest event time a partition
 * has seen (not run ahead of the wall clock by more than a few minutes, so one
 * bad clock cannot expire everything). A window [start, end) keeps accepting
 * events while end + retention > watermark; after that it is closed: its last
 * published row is final, an event for it is counted late for that window size
 * and still counts in the coarser windows and TOTAL, and a retraction for it
 * is skipped. The rule depends only on the partition's event order, so the
 * result is deterministic (the generator's truth uses the same rule).
 *
 * @locality any thread; pure functions.
 */
#ifndef DS_WINDOW_H
#define DS_WINDOW_H

#include <stdint.h>

#include "ds_rows.h"

#define DS_TZ_OFFSET_MS (7LL * 3600 * 1000) /* UTC+7 */
#define DS_MINUTE_MS 60000LL
#define DS_HOUR_MS 3600000LL
#define DS_DAY_MS 86400000LL

typedef struct ds_window_cfg {
        int64_t retention_ms[DS_WIN__CNT]; /* per window size; TOTAL's is unused */
} ds_window_cfg_t;

static inline int64_t ds_floor_div(int64_t a, int64_t b) {
        int64_t q = a / b;
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Start (ms since the epoch, UTC) of the window of size w containing t. */
static inline int64_t ds_window_start(ds_window_t w, int64_t t) {
        switch (w) {
        case DS_WIN_MINUTE: return ds_floor_div(t, DS_MINUTE_MS) * DS_MINUTE_MS;
        case DS_WIN_HOUR: return ds_floor_div(t, DS_HOUR_MS) * DS_HOUR_MS;
        case DS_WIN_DAY: return ds_floor_div(t + DS_TZ_OFFSET_MS, DS_DAY_MS) * DS_DAY_MS - DS_TZ_OFFSET_MS;
        default: return 0;
        }
}

static inline int64_t ds_window_size(ds_window_t w) {
        return w == DS_WIN_MINUTE ? DS_MINUTE_MS : w == DS_WIN_HOUR ? DS_HOUR_MS : w == DS_WIN_DAY ? DS_DAY_MS : 0;
}

/* Whether the window of size w starting at start is closed at watermark wm. */
static inline int ds_window_closed(const ds_window_cfg_t *cfg, ds_window_t w, int64_t start, int64_t wm) {
        return w != DS_WIN_TOTAL && start + ds_window_size(w) + cfg->retention_ms[w] <= wm;
}

/* Default retention: minutes 3 h, hours 3 days, days 400 days. */
void ds_window_cfg_default(ds_window_cfg_t *cfg);

#endif
