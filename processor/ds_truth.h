/*
 * ds_truth.h - a brute-force model of what declstream must publish.
 *
 * The generator feeds it every valid event in the order it is produced, with
 * the partition it goes to; the model applies the documented semantics with
 * its own, deliberately plain code (no ledger, window or aggregation code is
 * shared with the processor):
 *
 *   - per partition, the watermark is the largest event time seen;
 *   - per declaration id, the latest non-cancelled version counts: NEW adds,
 *     a higher version replaces (retract the old, add the new), CANCEL
 *     retracts, later events for a cancelled id and versions not higher than
 *     the applied one are ignored, AMEND/CANCEL for an unknown id are upserts,
 *     and an id whose latest version is older than watermark - ledger
 *     retention is forgotten;
 *   - an addition or retraction touches a MINUTE/HOUR/DAY window only while
 *     that window is open (end + retention > watermark), TOTAL always;
 *   - distinct declarants and vehicles per gate and DAY: exact sets, of the
 *     additions that reached an open DAY window;
 *   - top ten headings per gate and DAY by customs value (ties: lower heading),
 *     among cells open for top.retention.
 *
 * ds_truth_write() adds the final value of every row ever touched, the exact
 * distinct counts and the top lists to a JSON object. The integration test
 * and the property tests compare declstream's output with it.
 *
 * @locality one thread.
 */
#ifndef DS_TRUTH_H
#define DS_TRUTH_H

#include <jansson.h>
#include <stdint.h>

#define DS_TRUTH_MAX_ITEMS 50

typedef struct ds_truth_cfg {
        int heading_digits;
        int64_t minute_retention_ms, hour_retention_ms, day_retention_ms;
        int64_t top_retention_ms;
        int64_t ledger_retention_ms;
} ds_truth_cfg_t;

typedef struct ds_truth_item {
        uint32_t hs; /* 8-digit HS code as an integer */
        int64_t value, weight;
} ds_truth_item_t;

typedef struct ds_truth_event {
        int32_t partition;
        uint64_t id;
        int32_t version;
        int kind; /* 0 NEW, 1 AMEND, 2 CANCEL */
        int64_t declared_at;
        int gate;
        int flow;
        uint64_t declarant;  /* any exact identifier of the declarant */
        uint64_t vehicle;    /* 0 when none */
        int nitems;
        ds_truth_item_t items[DS_TRUTH_MAX_ITEMS];
} ds_truth_event_t;

typedef struct ds_truth ds_truth_t;

/* Defaults equal declstream run's defaults. */
void ds_truth_cfg_default(ds_truth_cfg_t *cfg);

ds_truth_t *ds_truth_new(const ds_truth_cfg_t *cfg);
void ds_truth_destroy(ds_truth_t *t);

/* Applies one valid event. Returns 0, or -1 on out-of-memory. */
int ds_truth_apply(ds_truth_t *t, const ds_truth_event_t *e);

/* Adds "rows" (key -> [declarations, items, value, weight, export, import,
 * transit, border_resident]), "distinct" ("GATE|DAY|start" -> [declarants,
 * vehicles]) and "top" ("GATE|DAY|start" -> [[heading, value, declarations,
 * items, weight], ...]) to root. Keys are formatted as declstream's message
 * keys. */
int ds_truth_write(const ds_truth_t *t, json_t *root);

/* Number of rows touched so far. */
uint64_t ds_truth_rows(const ds_truth_t *t);

#endif
