/*
 * ds_gen.h - realistic customs declaration events, and the truth they imply.
 *
 * The model (figures from processor/domain/ and the project's source
 * articles; each assumption is named in ds_gen.c and the README):
 *   - gates weighted by their role (international gates and the Móng Cái
 *     clearance lanes carry most traffic);
 *   - flow by province: Quảng Ninh leans to export and border-resident
 *     exchange, Lạng Sơn to import;
 *   - commodities drawn by flow from commodities.csv (plus synthetic HS codes
 *     when more distinct headings are asked for, for benchmarks), unit values
 *     uniform in the CSV's typical range, consignments log-normal around a
 *     7-tonne truck, border-resident baskets under 200 USD;
 *   - 1-30 items per declaration (mean ~3), declarants from a pool of
 *     enterprises with a heavy-tailed share, inspection channels 60/30/10;
 *   - event time following the gates' day: busy 07-17 local time (UTC+7),
 *     quiet at night, lighter on Sundays.
 * With bad_rate > 0 a share of messages is malformed in one of several ways;
 * each kind maps to exactly one dead-letter reason, so the truth can say how
 * many of each the processor must dead-letter.
 *
 * The truth is computed here, from the generator's own values, with its own
 * arithmetic (no code shared with the processor's aggregation), so an
 * aggregation bug cannot hide behind a matching truth.
 *
 * @locality one generator per thread; deterministic for a given seed and
 * start time.
 */
#ifndef DS_GEN_H
#define DS_GEN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ds_reason.h"
#include "ds_truth.h"

typedef struct ds_gen_opts {
        uint64_t seed;
        double bad_rate;       /* share of malformed messages among new declarations, 0..1 */
        double amend_rate;     /* share of declarations amended later (1-3 times) */
        double cancel_rate;    /* share of declarations cancelled later */
        double dup_rate;       /* share of events delivered twice */
        double late_rate;      /* share of events delivered late */
        int64_t max_lateness_ms; /* a late event arrives up to this long after its event time */
        int64_t amend_delay_ms;  /* mean delay (exponential) before an amendment or cancellation */
        int heading_digits;    /* for the truth's COMMODITY keys: 2, 4, 6, 8 */
        int64_t start_ms;      /* event time of the first declaration (simulated-time mode) */
        int64_t span_ms;       /* event-time span covered by `count` declarations */
        uint64_t count;        /* new declarations planned (simulated-time mode), 0 for wall-clock mode */
        int extra_headings;    /* synthetic headings added to the CSV's, for benchmarks */
        uint32_t schema_id;    /* schema id written in the header of valid messages */
        int32_t partitions;    /* > 0: choose partitions (murmur2) and keep the truth model */
        ds_truth_cfg_t truth;  /* retentions the truth model applies (declstream run's defaults) */
} ds_gen_opts_t;

typedef struct ds_gen ds_gen_t;

typedef struct ds_gen_msg {
        const char *key;
        size_t key_len;
        const uint8_t *value; /* NULL for an empty message */
        size_t value_len;
        ds_dlq_reason_t bad;  /* DS_DLQ_NONE for a valid declaration */
        int kind;             /* ds_kind_t of the event */
        int64_t declared_at;
        int32_t partition;    /* -1 when opts.partitions is 0 */
} ds_gen_msg_t;

/* Defaults: seed 1, no bad/amend/cancel/dup/late events, 4 heading digits,
 * one day of span, lateness up to 2 h, amendment delay 2 h on average. */
void ds_gen_opts_default(ds_gen_opts_t *opts);

ds_gen_t *ds_gen_new(const ds_gen_opts_t *opts, char *errstr, size_t errstr_size);
void ds_gen_destroy(ds_gen_t *g);

/* Makes the next message. now_ms >= 0: rate mode, new declarations are
 * stamped with that wall-clock time and pending events due by then go
 * first; now_ms < 0: the simulated event-time curve of `count` declarations.
 * Returns 1, or 0 when a count-mode stream is complete. The message points
 * into the generator's buffers, valid until the next call. */
int ds_gen_next(ds_gen_t *g, int64_t now_ms, ds_gen_msg_t *out);

/* Writes the truth as JSON: counts of messages, events and bad messages per
 * reason, and (with partitions > 0) the truth model's rows, distinct counts
 * and top lists for every valid event made so far. */
int ds_gen_write_truth(const ds_gen_t *g, FILE *out, char *errstr, size_t errstr_size);

uint64_t ds_gen_made(const ds_gen_t *g);
uint64_t ds_gen_bad(const ds_gen_t *g);

#endif
