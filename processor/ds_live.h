/*
 * ds_live.h - the published totals, read back for the HTTP API.
 *
 * A thread with its own consumer (no group membership: every partition of
 * output.topic and top.topic is assigned from the beginning, so it never
 * disturbs the processor's or the merge's group) reads what the merge
 * publishes and keeps the latest value of every row, as the data teams
 * consuming those topics see them. The API therefore serves the same figures
 * as Kafka, whichever instance merged them, and any instance can serve the
 * dashboard.
 *
 * Rows are decoded with Apache Avro C by field name (any registered version
 * of vn.customs.Total or vn.customs.TopHeadings reads); this path is a few
 * thousand messages per second, not the hot path. Rows of closed windows are
 * evicted by event time (MINUTE rows older than 2 hours, HOUR rows older than
 * 8 days, DAY rows older than the day retention, relative to the newest
 * window seen), and at most http.max.rows are kept: memory is bounded.
 *
 * Concurrency: one writer (the thread) and any number of readers (HTTP
 * threads) under a pthread rwlock; readers copy what they need out, so no
 * pointer into the tables escapes the lock.
 *
 * @locality any thread; @locks one rwlock, never held across librdkafka calls.
 */
#ifndef DS_LIVE_H
#define DS_LIVE_H

#include <stddef.h>
#include <stdint.h>

#include "ds_config.h"
#include "ds_rows.h"

#define DS_LIVE_KEY_MAX  24
#define DS_LIVE_MEASURES 8
#define DS_LIVE_TOP_N    10

/* The eight measures in the order of the Total schema (and of the JSON). */
extern const char *const ds_live_measure_names[DS_LIVE_MEASURES];

typedef struct ds_live_row {
        uint8_t dim; /* DS_DIM_GATE or DS_DIM_COMMODITY */
        uint8_t win; /* ds_window_t */
        char key[DS_LIVE_KEY_MAX];
        int64_t start; /* window_start, ms (0 for TOTAL) */
        int64_t m[DS_LIVE_MEASURES];
        int64_t distinct_declarants, distinct_vehicles; /* -1 when the writer schema lacks them */
        int64_t updated_at;
} ds_live_row_t;

typedef struct ds_live_heading {
        int rank;
        char heading[DS_LIVE_KEY_MAX];
        int64_t declarations, items, customs_value_usd_cents, gross_weight_g;
} ds_live_heading_t;

typedef struct ds_live_top {
        char gate[DS_LIVE_KEY_MAX];
        int64_t day; /* window_start of the customs day, ms */
        int64_t updated_at;
        int n;
        ds_live_heading_t h[DS_LIVE_TOP_N];
} ds_live_top_t;

typedef struct ds_live_stats {
        uint64_t messages;    /* read from both topics */
        uint64_t undecodable; /* not a known schema, or not a Total / TopHeadings */
        uint64_t dropped;     /* new rows refused at http.max.rows */
        uint64_t evicted;
        uint32_t rows, tops;
        int caught_up;         /* every partition read to the end it had when assigned */
        int64_t latest_minute; /* newest MINUTE window_start seen (none past the wall clock + 1 h), INT64_MIN if none */
        int64_t latest_update; /* newest updated_at seen, INT64_MIN if none */
} ds_live_stats_t;

typedef struct ds_live ds_live_t;

/* Starts the reader thread. NULL with a message on error. */
ds_live_t *ds_live_start(const ds_config_t *cfg, char *errstr, size_t errstr_size);
void ds_live_stop(ds_live_t *lv);

/* Rows of one dimension and window whose start lies in [from, to] (TOTAL:
 * from/to ignored), with key equal to key when key is not NULL; sorted by
 * start, then key. At most limit rows are returned in *out (malloc'd; free()
 * it); *truncated says whether more matched. */
size_t ds_live_rows(ds_live_t *lv, int dim, int win, int64_t from, int64_t to, const char *key, size_t limit,
                    ds_live_row_t **out, int *truncated);

/* The top list of gate for the customs day starting at day; INT64_MIN: the
 * newest day known for the gate. Returns 0, or -1 when there is none. */
int ds_live_top(ds_live_t *lv, const char *gate, int64_t day, ds_live_top_t *out);

void ds_live_stats(ds_live_t *lv, ds_live_stats_t *st);

/* Takes one message value from either topic (the thread's path; tests call
 * it directly). The writer schema says whether it is a Total or a
 * TopHeadings; anything else counts as undecodable. */
void ds_live_ingest(ds_live_t *lv, const void *value, size_t len);

/* A reader with no thread and no Kafka, for tests of the API. */
ds_live_t *ds_live_new_offline(const ds_config_t *cfg, char *errstr, size_t errstr_size);

#endif
