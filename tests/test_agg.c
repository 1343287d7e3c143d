/*
 * test_agg.c - a contribution's effect on a partition's rows: GATE and
 * COMMODITY rows, flow values, exact retraction, windows and lateness.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "ds_agg.h"
#include "ds_common.h"
#include "ds_evict.h"
#include "ds_rows.h"
#include "ds_window.h"

/* 2024-11-23 09:00:00.000 local time (UTC+7) = 02:00 UTC */
#define T0 1732327200000LL

static ds_agg_t *a;
static ds_agg_cfg_t cfg;

static void setup(void) {
        ds_agg_cfg_default(&cfg);
        a = ds_agg_new(&cfg);
        cr_assert_not_null(a);
}

static void teardown(void) {
        ds_agg_destroy(a);
}

TestSuite(agg, .init = setup, .fini = teardown);

/* A contribution at gate g with lines (heading, items, value, weight). */
static ds_contrib_t contrib(uint16_t gate, uint8_t flow, int64_t at, int n, const ds_line_t *lines) {
        ds_contrib_t c;
        memset(&c, 0, sizeof(c));
        c.id = 301234567890ULL;
        c.declared_at = at;
        c.gate = gate;
        c.flow = flow;
        c.kind = DS_KIND_NEW;
        c.nlines = (uint32_t)n;
        c.declarant_hash = 0x1234567887654321ULL;
        c.vehicle_hash = 0x1111222233334444ULL;
        for (int i = 0; i < n; i++) {
                c.lines[i] = lines[i];
                c.items += lines[i].items;
                c.value += lines[i].value;
                c.weight += lines[i].weight;
        }
        return c;
}

static const ds_measures_t *row_key(ds_rowkey_t k) {
        ds_row_t *r = ds_rows_find(ds_agg_rows(a), k);
        return r ? &r->m : NULL;
}

static const ds_measures_t *row(ds_dim_t dim, ds_window_t w, uint32_t key, int64_t start) {
        return row_key(ds_rowkey(dim, w, key, start));
}

static const ds_measures_t *total(ds_dim_t dim, uint32_t key) {
        return row(dim, DS_WIN_TOTAL, key, 0);
}

#define assert_measures(m, decl, it, val, wt, ...)                                                   \
        do {                                                                                         \
                const ds_measures_t *m_ = (m);                                                       \
                cr_assert_not_null(m_, "row missing: " __VA_ARGS__);                                 \
                cr_assert_eq(m_->declarations, decl, "declarations: " __VA_ARGS__);                  \
                cr_assert_eq(m_->items, it, "items: " __VA_ARGS__);                                  \
                cr_assert_eq(m_->value, val, "value: " __VA_ARGS__);                                 \
                cr_assert_eq(m_->weight, wt, "weight: " __VA_ARGS__);                                \
        } while (0)

static const ds_line_t two_lines[] = {{810, 3, 30500, 7000}, {8429, 1, 2000000, 20000000}};

Test(agg, adds_one_gate_row_and_one_commodity_row_per_heading) {
        ds_contrib_t c = contrib(5, DS_FLOW_IMPORT, T0, 2, two_lines);
        cr_assert_eq(ds_agg_apply(a, &c, 1, T0), 0);
        assert_measures(total(DS_DIM_GATE, 5), 1, 4, 2030500, 20007000, "gate");
        assert_measures(total(DS_DIM_COMMODITY, 810), 1, 3, 30500, 7000, "0810");
        assert_measures(total(DS_DIM_COMMODITY, 8429), 1, 1, 2000000, 20000000, "8429");
        cr_assert_null(total(DS_DIM_GATE, 4));
        cr_assert_null(total(DS_DIM_COMMODITY, 811));
        /* flow values split the customs value by flow */
        const ds_measures_t *g = total(DS_DIM_GATE, 5);
        cr_assert_eq(g->flow_value[DS_FLOW_IMPORT], 2030500);
        cr_assert_eq(g->flow_value[DS_FLOW_EXPORT], 0);
        cr_assert_eq(g->flow_value[DS_FLOW_TRANSIT], 0);
        cr_assert_eq(g->flow_value[DS_FLOW_BORDER_RESIDENT], 0);
        cr_assert_eq(total(DS_DIM_COMMODITY, 8429)->flow_value[DS_FLOW_IMPORT], 2000000);
        cr_assert_eq(total(DS_DIM_COMMODITY, 810)->flow_value[DS_FLOW_IMPORT], 30500);
}

Test(agg, flow_values_go_to_the_declarations_flow) {
        const ds_line_t l[] = {{810, 1, 100, 1}};
        for (int f = 0; f < DS_FLOW__CNT; f++) {
                ds_contrib_t c = contrib(2, (uint8_t)f, T0, 1, l);
                c.lines[0].value = c.value = 100 * (f + 1);
                cr_assert_eq(ds_agg_apply(a, &c, 1, T0), 0);
        }
        const ds_measures_t *g = total(DS_DIM_GATE, 2), *h = total(DS_DIM_COMMODITY, 810);
        for (int f = 0; f < DS_FLOW__CNT; f++) {
                cr_assert_eq(g->flow_value[f], 100 * (f + 1), "gate flow %d", f);
                cr_assert_eq(h->flow_value[f], 100 * (f + 1), "heading flow %d", f);
        }
        cr_assert_eq(g->value, 1000);
        cr_assert_eq(g->declarations, 4);
        cr_assert_eq(h->declarations, 4);
}

Test(agg, declarations_count_once_per_gate_and_per_heading) {
        /* two declarations: one with 3 headings, one with 1 */
        const ds_line_t l1[] = {{810, 5, 500, 50}, {8429, 1, 100, 10}, {2701, 2, 20, 2}};
        const ds_line_t l2[] = {{810, 7, 70, 7}};
        ds_contrib_t c1 = contrib(1, DS_FLOW_EXPORT, T0, 3, l1), c2 = contrib(1, DS_FLOW_EXPORT, T0 + 1, 1, l2);
        cr_assert_eq(ds_agg_apply(a, &c1, 1, T0), 0);
        cr_assert_eq(ds_agg_apply(a, &c2, 1, T0 + 1), 0);
        assert_measures(total(DS_DIM_GATE, 1), 2, 15, 690, 69, "gate");
        assert_measures(total(DS_DIM_COMMODITY, 810), 2, 12, 570, 57, "0810: 5 + 7 items, 2 declarations");
        assert_measures(total(DS_DIM_COMMODITY, 8429), 1, 1, 100, 10, "8429");
        assert_measures(total(DS_DIM_COMMODITY, 2701), 1, 2, 20, 2, "2701");
}

static void assert_all_zero(void) {
        uint32_t cur = 0, n = 0;
        ds_row_t *r;
        while ((r = ds_rows_iter(ds_agg_rows(a), &cur))) {
                cr_assert(ds_measures_is_zero(&r->m), "row dim %d window %d key %u start %lld not back to zero",
                          ds_rowkey_dim(r->key), ds_rowkey_window(r->key), ds_rowkey_key(r->key),
                          (long long)r->key.start);
                n++;
        }
        cr_assert_gt(n, 0);
}

Test(agg, retraction_returns_every_measure_to_zero) {
        const ds_line_t l[] = {{810, 3, 30500, 7000}, {8429, 1, 2000000, 20000000}, {2701, 9, INT64_MAX / 4, 1}};
        ds_contrib_t c = contrib(7, DS_FLOW_TRANSIT, T0, 3, l);
        cr_assert_eq(ds_agg_apply(a, &c, 1, T0), 0);
        cr_assert_eq(total(DS_DIM_GATE, 7)->value, c.value);
        cr_assert_eq(ds_agg_apply(a, &c, -1, T0), 0);
        assert_all_zero();
        assert_measures(total(DS_DIM_GATE, 7), 0, 0, 0, 0, "gate");
        cr_assert_eq(total(DS_DIM_GATE, 7)->flow_value[DS_FLOW_TRANSIT], 0);
}

Test(agg, retraction_of_one_leaves_the_others_exactly) {
        const ds_line_t l1[] = {{810, 3, 300, 30}, {8429, 1, 100, 10}};
        const ds_line_t l2[] = {{810, 2, 77, 7}};
        ds_contrib_t c1 = contrib(3, DS_FLOW_EXPORT, T0, 2, l1), c2 = contrib(3, DS_FLOW_IMPORT, T0, 1, l2);
        cr_assert_eq(ds_agg_apply(a, &c1, 1, T0), 0);
        cr_assert_eq(ds_agg_apply(a, &c2, 1, T0), 0);
        cr_assert_eq(ds_agg_apply(a, &c1, -1, T0), 0);
        const ds_measures_t *g = total(DS_DIM_GATE, 3);
        assert_measures(g, 1, 2, 77, 7, "gate");
        cr_assert_eq(g->flow_value[DS_FLOW_EXPORT], 0);
        cr_assert_eq(g->flow_value[DS_FLOW_IMPORT], 77);
        assert_measures(total(DS_DIM_COMMODITY, 810), 1, 2, 77, 7, "0810");
        assert_measures(total(DS_DIM_COMMODITY, 8429), 0, 0, 0, 0, "8429");
}

Test(agg, every_changed_row_is_marked_dirty) {
        ds_contrib_t c = contrib(5, DS_FLOW_IMPORT, T0, 2, two_lines);
        ds_rows_t *rows = ds_agg_rows(a);
        cr_assert_eq(ds_agg_apply(a, &c, 1, T0), 0);
        /* GATE and 2 COMMODITY rows in 4 windows, and 2 GATE_HEADING cells */
        uint32_t n = 0;
        for (uint32_t i = 0; i < ds_rows_dirty_count(rows); i++)
                n += ds_rows_dirty_at(rows, i) != NULL;
        cr_assert_eq(n, 3 * 4 + 2, "%u dirty rows", n);
        cr_assert_eq(ds_rows_count(rows), 3 * 4 + 2);
        ds_rows_clear_dirty(rows);
        cr_assert_eq(ds_agg_apply(a, &c, -1, T0), 0);
        cr_assert_eq(ds_rows_dirty_count(rows), 3 * 4 + 2, "a retraction changes the rows too");
}

/* ---- windows ------------------------------------------------------------------ */

Test(agg, windowed_rows_start_where_their_window_starts) {
        const ds_line_t l[] = {{810, 1, 100, 10}};
        int64_t at = T0 + 37 * DS_MINUTE_MS + 12345; /* 09:37:12.345 local */
        ds_contrib_t c = contrib(4, DS_FLOW_EXPORT, at, 1, l);
        cr_assert_eq(ds_agg_apply(a, &c, 1, at), 0);
        assert_measures(row(DS_DIM_GATE, DS_WIN_MINUTE, 4, T0 + 37 * DS_MINUTE_MS), 1, 1, 100, 10, "minute");
        assert_measures(row(DS_DIM_GATE, DS_WIN_HOUR, 4, T0), 1, 1, 100, 10, "hour");
        /* the customs day starts at local midnight: 17:00 UTC the day before */
        assert_measures(row(DS_DIM_GATE, DS_WIN_DAY, 4, T0 - 9 * DS_HOUR_MS), 1, 1, 100, 10, "day");
        assert_measures(row(DS_DIM_COMMODITY, DS_WIN_DAY, 810, T0 - 9 * DS_HOUR_MS), 1, 1, 100, 10, "day");
        assert_measures(row_key(ds_cell_rowkey(4, 810, T0 - 9 * DS_HOUR_MS)), 1, 1, 100,
                        10, "cell");
}

Test(agg, local_midnight_splits_days) {
        const ds_line_t l[] = {{810, 1, 100, 10}};
        int64_t midnight = T0 + 15 * DS_HOUR_MS; /* 17:00 UTC = 00:00 local */
        ds_contrib_t before = contrib(4, DS_FLOW_EXPORT, midnight - 1, 1, l);
        ds_contrib_t after = contrib(4, DS_FLOW_EXPORT, midnight, 1, l);
        cr_assert_eq(ds_agg_apply(a, &before, 1, midnight), 0);
        cr_assert_eq(ds_agg_apply(a, &after, 1, midnight), 0);
        assert_measures(row(DS_DIM_GATE, DS_WIN_DAY, 4, midnight - DS_DAY_MS), 1, 1, 100, 10, "day before");
        assert_measures(row(DS_DIM_GATE, DS_WIN_DAY, 4, midnight), 1, 1, 100, 10, "day after");
        assert_measures(total(DS_DIM_GATE, 4), 2, 2, 200, 20, "total");
}

Test(agg, late_addition_skips_closed_windows_but_counts_in_total) {
        const ds_line_t l[] = {{810, 1, 100, 10}};
        /* 4 hours after the event: its MINUTE window (retention 3 h) is closed */
        int64_t wm = T0 + 4 * DS_HOUR_MS;
        ds_contrib_t c = contrib(4, DS_FLOW_EXPORT, T0, 1, l);
        cr_assert_eq(ds_agg_apply(a, &c, 1, wm), 0);
        cr_assert_null(row(DS_DIM_GATE, DS_WIN_MINUTE, 4, T0));
        cr_assert_null(row(DS_DIM_COMMODITY, DS_WIN_MINUTE, 810, T0));
        assert_measures(row(DS_DIM_GATE, DS_WIN_HOUR, 4, T0), 1, 1, 100, 10, "hour still open");
        assert_measures(total(DS_DIM_GATE, 4), 1, 1, 100, 10, "total");
        cr_assert_eq(ds_agg_stats(a)->late[DS_WIN_MINUTE], 1);
        cr_assert_eq(ds_agg_stats(a)->late[DS_WIN_HOUR], 0);
        cr_assert_eq(ds_agg_stats(a)->late[DS_WIN_TOTAL], 0);
}

Test(agg, retraction_for_a_closed_window_is_skipped) {
        const ds_line_t l[] = {{810, 1, 100, 10}};
        ds_contrib_t c = contrib(4, DS_FLOW_EXPORT, T0, 1, l);
        cr_assert_eq(ds_agg_apply(a, &c, 1, T0), 0);
        /* a minute closes at start + 1 min + 3 h */
        int64_t closed = T0 + DS_MINUTE_MS + 3 * DS_HOUR_MS;
        cr_assert_eq(ds_agg_apply(a, &c, -1, closed - 1), 0); /* still open: retracted */
        assert_measures(row(DS_DIM_GATE, DS_WIN_MINUTE, 4, T0), 0, 0, 0, 0, "minute");
        cr_assert_eq(ds_agg_apply(a, &c, 1, closed - 1), 0);
        cr_assert_eq(ds_agg_apply(a, &c, -1, closed), 0); /* closed: kept as published */
        assert_measures(row(DS_DIM_GATE, DS_WIN_MINUTE, 4, T0), 1, 1, 100, 10, "closed minute keeps its value");
        assert_measures(total(DS_DIM_GATE, 4), 0, 0, 0, 0, "total");
        cr_assert_eq(ds_agg_stats(a)->late_retract[DS_WIN_MINUTE], 1);
        ds_agg_stats_t st;
        memset(&st, 0, sizeof(st));
        ds_agg_take_stats(a, &st);
        cr_assert_eq(st.late_retract[DS_WIN_MINUTE], 1);
        cr_assert_eq(ds_agg_stats(a)->late_retract[DS_WIN_MINUTE], 0, "take_stats zeroes them");
}

static int evicted_cb_calls;
static void on_evict(void *ctx, const ds_row_t *r) {
        (void)ctx;
        cr_assert_neq(ds_rowkey_window(r->key), DS_WIN_TOTAL, "a TOTAL row was evicted");
        evicted_cb_calls++;
}

Test(agg, evict_removes_only_rows_of_closed_windows) {
        const ds_line_t l[] = {{810, 1, 100, 10}};
        ds_contrib_t c = contrib(4, DS_FLOW_EXPORT, T0, 1, l);
        cr_assert_eq(ds_agg_apply(a, &c, 1, T0), 0);
        ds_rows_clear_dirty(ds_agg_rows(a));
        int64_t wm = T0 + DS_MINUTE_MS + 3 * DS_HOUR_MS; /* the minute closes, the hour does not */
        evicted_cb_calls = 0;
        uint64_t n = ds_agg_evict(a, wm, on_evict, NULL);
        cr_assert_eq(n, 2, "GATE and COMMODITY MINUTE rows, got %llu", (unsigned long long)n);
        cr_assert_eq(evicted_cb_calls, 2);
        cr_assert_null(row(DS_DIM_GATE, DS_WIN_MINUTE, 4, T0));
        cr_assert_not_null(row(DS_DIM_GATE, DS_WIN_HOUR, 4, T0));
        cr_assert_not_null(total(DS_DIM_GATE, 4));
        cr_assert_eq(ds_agg_evict(a, wm, on_evict, NULL), 0, "evicting twice");
        /* far in the future every windowed row goes, TOTAL stays */
        ds_agg_evict(a, T0 + 1000 * DS_DAY_MS, on_evict, NULL);
        cr_assert_eq(ds_rows_count(ds_agg_rows(a)), 2);
        assert_measures(total(DS_DIM_GATE, 4), 1, 1, 100, 10, "total");
        assert_measures(total(DS_DIM_COMMODITY, 810), 1, 1, 100, 10, "total");
}

Test(agg, gate_day_row_counts_distinct_declarants_and_vehicles) {
        const ds_line_t l[] = {{810, 1, 100, 10}};
        for (int i = 0; i < 30; i++) {
                ds_contrib_t c = contrib(4, DS_FLOW_EXPORT, T0 + i, 1, l);
                c.declarant_hash = 0x9e3779b97f4a7c15ULL * (uint64_t)(i % 10 + 1);
                c.vehicle_hash = i % 3 ? 0x6a09e667f3bcc909ULL * (uint64_t)(i % 5 + 1) : 0;
                cr_assert_eq(ds_agg_apply(a, &c, 1, T0 + i), 0);
        }
        ds_row_t *r = ds_rows_find(ds_agg_rows(a), ds_rowkey(DS_DIM_GATE, DS_WIN_DAY, 4, T0 - 9 * DS_HOUR_MS));
        cr_assert_not_null(r);
        ds_distinct_t *d = r->aux;
        cr_assert_not_null(d, "GATE DAY row has no sketches");
        double dec = ds_hll_estimate(d->declarants), veh = ds_hll_estimate(d->vehicles);
        cr_assert(dec > 9.5 && dec < 10.5, "declarants %.2f, want 10", dec);
        cr_assert(veh > 4.5 && veh < 5.5, "vehicles %.2f, want 5", veh);
        cr_assert_null(ds_rows_find(ds_agg_rows(a), ds_rowkey(DS_DIM_GATE, DS_WIN_TOTAL, 4, 0))->aux);
}

/* GATE DAY sketches get their additions queued (ds_agg.c, PEND_MAX) and
 * applied in batches; whoever reads the rows must find each sketch byte for
 * byte as one ds_hll_add() per declaration, in order, makes it - through
 * sparse tables growing and turning dense inside a batch - and eviction
 * must not leave queued additions naming sketches it freed (the ASan build
 * reports a use after free). */
static uint64_t sk_rs = 2024;
static uint64_t sk_rnd(void) {
        sk_rs ^= sk_rs << 13;
        sk_rs ^= sk_rs >> 7;
        sk_rs ^= sk_rs << 17;
        return sk_rs;
}

#define SK_GATES 2
#define SK_DAYS  4

static void sk_check(ds_distinct_t *ref[SK_GATES][SK_DAYS], int64_t day0, int step) {
        ds_rows_t *rows = ds_agg_rows(a); /* syncs */
        static uint8_t x[64 * 1024], y[64 * 1024];
        for (int g = 0; g < SK_GATES; g++)
                for (int d = 0; d < SK_DAYS; d++) {
                        ds_row_t *r = ds_rows_find(rows, ds_rowkey(DS_DIM_GATE, DS_WIN_DAY, (uint32_t)g,
                                                                   ds_window_start(DS_WIN_DAY, day0 + d * DS_DAY_MS)));
                        cr_assert_eq(r != NULL && r->aux != NULL, ref[g][d] != NULL, "step %d: gate %d day %d", step, g,
                                     d);
                        if (!ref[g][d])
                                continue;
                        const ds_distinct_t *got = r->aux;
                        const ds_hll_t *pairs[2][2] = {{got->declarants, ref[g][d]->declarants},
                                                       {got->vehicles, ref[g][d]->vehicles}};
                        for (int k = 0; k < 2; k++) {
                                size_t nx = ds_hll_serialized_size(pairs[k][0]),
                                       ny = ds_hll_serialized_size(pairs[k][1]);
                                cr_assert(nx <= sizeof(x) && ny <= sizeof(y));
                                cr_assert_eq(ds_hll_serialize(pairs[k][0], x), nx);
                                cr_assert_eq(ds_hll_serialize(pairs[k][1], y), ny);
                                cr_assert(nx == ny && !memcmp(x, y, nx), "step %d: gate %d day %d: %s sketch differs",
                                          step, g, d, k ? "vehicle" : "declarant");
                        }
                }
}

static void sk_run(ds_distinct_t *ref[SK_GATES][SK_DAYS], int64_t day0, int n, int check_every) {
        const ds_line_t l[] = {{810, 1, 100, 10}};
        for (int i = 0; i < n; i++) {
                int g = (int)(sk_rnd() % SK_GATES), d = (int)(sk_rnd() % SK_DAYS);
                int64_t at = day0 + d * DS_DAY_MS + (int64_t)(sk_rnd() % (10 * DS_HOUR_MS));
                ds_contrib_t c = contrib((uint16_t)g, DS_FLOW_IMPORT, at, 1, l);
                c.declarant_hash = sk_rnd();
                c.vehicle_hash = sk_rnd() % 3 ? sk_rnd() : 0;
                cr_assert_eq(ds_agg_apply(a, &c, 1, day0), 0);
                if (!ref[g][d])
                        cr_assert_not_null(ref[g][d] = ds_distinct_new());
                cr_assert_eq(ds_hll_add(&ref[g][d]->declarants, c.declarant_hash), 0);
                if (c.vehicle_hash)
                        cr_assert_eq(ds_hll_add(&ref[g][d]->vehicles, c.vehicle_hash), 0);
                if (check_every && i % check_every == check_every - 1)
                        sk_check(ref, day0, i);
        }
}

Test(agg, queued_sketch_additions_end_as_immediate_ones) {
        ds_distinct_t *ref[SK_GATES][SK_DAYS] = {{NULL}};
        /* ~2,000 declarants and ~1,300 vehicles a sketch: each turns dense
         * (past 1,024 registers) */
        sk_run(ref, T0, 16000, 997);
        sk_check(ref, T0, -1);
        for (int g = 0; g < SK_GATES; g++)
                for (int d = 0; d < SK_DAYS; d++)
                        cr_assert(ds_hll_memory(ref[g][d]->declarants) >= DS_HLL_M &&
                                          ds_hll_memory(ref[g][d]->vehicles) >= DS_HLL_M,
                                  "test bug: gate %d day %d has a sparse sketch", g, d);
        /* a few more additions queued, then every row evicted: eviction syncs
         * before it frees the sketches the queue names */
        ds_rows_clear_dirty(ds_agg_rows(a));
        sk_run(ref, T0, 20, 0);
        int64_t later = T0 + 1000 * DS_DAY_MS;
        cr_assert_gt(ds_agg_evict(a, later, NULL, NULL), 0);
        for (int g = 0; g < SK_GATES; g++)
                for (int d = 0; d < SK_DAYS; d++) {
                        ds_distinct_free(ref[g][d]);
                        ref[g][d] = NULL;
                }
        sk_run(ref, later, 3000, 301);
        sk_check(ref, later, -2);
        for (int g = 0; g < SK_GATES; g++)
                for (int d = 0; d < SK_DAYS; d++)
                        ds_distinct_free(ref[g][d]);
}

/* ---- the eviction buckets on their own ----------------------------------- */

#define EV_KEYS 5000

typedef struct ev_got {
        uint32_t n, calls;
        ds_rowkey_t keys[EV_KEYS];
} ev_got_t;

/* A batch is one bucket: every key of one window start. */
static void ev_collect(void *ctx, const ds_rowkey_t *keys, uint32_t n) {
        ev_got_t *g = ctx;
        g->calls++;
        cr_assert_gt(n, 0);
        for (uint32_t i = 0; i < n; i++) {
                cr_assert_eq(keys[i].start, keys[0].start, "a batch holds two window starts");
                cr_assert_lt(g->n, EV_KEYS);
                g->keys[g->n++] = keys[i];
        }
}

/* Keys come back by start, and in the order they were registered within a
 * start - whether their starts come in order (appended buckets), repeat the
 * bucket used last, go back to an older bucket or fall between two (a bucket
 * inserted midway), and past 16 keys a bucket (it grows). */
Test(agg, evict_buckets_pop_by_start_in_registration_order) {
        ds_window_cfg_t wcfg;
        ds_window_cfg_default(&wcfg);
        ds_evict_t *e = ds_evict_new(&wcfg, 0); /* DS_EVC_CELL: closed at start + a day */
        cr_assert_not_null(e);
        static ds_rowkey_t reg[EV_KEYS];
        static ev_got_t got;
        uint64_t rs = 99;
        for (uint32_t i = 0; i < EV_KEYS; i++) {
                rs ^= rs << 13;
                rs ^= rs >> 7;
                rs ^= rs << 17;
                uint32_t r = (uint32_t)(rs % 100);
                int64_t day = r < 60 ? i / 50 : r < 80 ? i / 50 + 3 : (int64_t)(rs >> 8) % 150;
                reg[i] = ds_rowkey(DS_DIM_GATE_HEADING, DS_WIN_DAY, i, T0 + day * DS_DAY_MS);
                cr_assert_eq(ds_evict_add(e, DS_EVC_CELL, reg[i]), 0);
        }
        got.n = 0;
        uint32_t popped = 0;
        int64_t prev = INT64_MIN / 2; /* the watermark of the previous pop */
        for (int64_t wm_day = 1; wm_day <= 160; wm_day += 7) {
                int64_t wm = T0 + wm_day * DS_DAY_MS;
                uint32_t calls = got.calls;
                uint64_t n = ds_evict_pop(e, wm, ev_collect, &got);
                cr_assert_eq(n, got.n - popped);
                /* one call per bucket: as many as the starts popped */
                uint32_t starts = 0;
                for (uint32_t k = popped; k < got.n; k++)
                        starts += k == popped || got.keys[k].start != got.keys[k - 1].start;
                cr_assert_eq(got.calls - calls, starts, "wm day %lld: %u calls for %u buckets", (long long)wm_day,
                             got.calls - calls, starts);
                /* what this pop returned: every registered key closed at wm and not popped before */
                uint32_t k = popped;
                for (int64_t start = T0; start + DS_DAY_MS <= wm; start += DS_DAY_MS)
                        for (uint32_t i = 0; i < EV_KEYS; i++)
                                if (reg[i].start == start && start + DS_DAY_MS > prev) {
                                        cr_assert_lt(k, got.n, "wm day %lld: key %u not popped", (long long)wm_day, i);
                                        cr_assert_eq(got.keys[k].k, reg[i].k, "wm day %lld: pop %u is key %u",
                                                     (long long)wm_day, k, (unsigned)ds_rowkey_key(got.keys[k]));
                                        k++;
                                }
                cr_assert_eq(k, got.n, "wm day %lld: %u popped, %u expected", (long long)wm_day, got.n - popped,
                             k - popped);
                popped = got.n;
                prev = wm;
        }
        cr_assert_eq(got.n, EV_KEYS);
        ds_evict_destroy(e);
}
