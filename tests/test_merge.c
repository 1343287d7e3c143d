/*
 * test_merge.c - global rows as the sum of partitions' latest values:
 * idempotent upserts, sums, decreases, the dirty list, closing, top headings;
 * and the partial message they come in, decoded and refused out of range.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "ds_agg.h"
#include "ds_common.h"
#include "ds_domain.h"
#include "ds_encode.h"
#include "ds_merge.h"
#include "ds_partial.h"
#include "ds_rows.h"
#include "ds_window.h"

#define T0 1732327200000LL /* 2024-11-23 09:00 local */
#define DAY0 (T0 - 9 * DS_HOUR_MS)

static ds_merge_t *m;
static ds_window_cfg_t win;

static void setup(void) {
        ds_window_cfg_default(&win);
        m = ds_merge_new(&win, 7 * DS_DAY_MS);
        cr_assert_not_null(m);
}

static void teardown(void) {
        ds_merge_destroy(m);
}

TestSuite(merge, .init = setup, .fini = teardown);

static ds_measures_t meas(int64_t decl, int64_t value, int flow) {
        ds_measures_t x;
        memset(&x, 0, sizeof(x));
        x.declarations = decl;
        x.items = decl * 3;
        x.value = value;
        x.weight = value / 10;
        x.flow_value[flow] = value;
        return x;
}

static const ds_rowkey_t gate5 = {(uint64_t)DS_DIM_GATE << 62 | 5, 0};

/* Partition p's value of key as of input offset off (owner epoch 1). */
static int64_t next_offset[64];
static int upd(int32_t p, ds_rowkey_t key, const ds_measures_t *v) {
        ds_merge_src_t src = {.partition = p, .epoch = 1, .offset = ++next_offset[p]};
        return ds_merge_update(m, &src, key, v, NULL);
}

static ds_row_t *global(ds_rowkey_t k) {
        return ds_rows_find(ds_merge_global(m), k);
}

static uint32_t dirty_live(void) {
        ds_rows_t *g = ds_merge_global(m);
        uint32_t n = 0;
        for (uint32_t i = 0; i < ds_rows_dirty_count(g); i++)
                n += ds_rows_dirty_at(g, i) != NULL;
        return n;
}

/* A closed row takes every partition's share with it - and only its own:
 * partitions 3, 67 and 131 share a bit of the global row's partition map
 * (p % 64), 200 is past three times 64. */
Test(merge, a_closed_row_takes_every_share_and_only_its_own) {
        static const int32_t ps[] = {3, 67, 131, 200, 5, 0};
        ds_rowkey_t minute = ds_rowkey(DS_DIM_GATE, DS_WIN_MINUTE, 5, T0);
        ds_rowkey_t other = ds_rowkey(DS_DIM_GATE, DS_WIN_MINUTE, 6, T0);
        ds_measures_t v = meas(1, 100, DS_FLOW_EXPORT);
        for (int i = 0; i < 6; i++) {
                ds_merge_src_t src = {.partition = ps[i], .epoch = 1, .offset = 10};
                cr_assert_eq(ds_merge_update(m, &src, ds_rowkey_with_partition(minute, ps[i]), &v, NULL), 0);
                cr_assert_eq(ds_merge_update(m, &src, ds_rowkey_with_partition(gate5, ps[i]), &v, NULL), 0);
                if (i < 2) /* another minute row, of partitions 3 and 67 only */
                        cr_assert_eq(ds_merge_update(m, &src, ds_rowkey_with_partition(other, ps[i]), &v, NULL), 0);
        }
        cr_assert_eq(ds_merge_shares(m), 14);
        cr_assert_eq(global(minute)->m.declarations, 6);
        cr_assert_eq(ds_merge_advance(m, T0 + DS_MINUTE_MS + win.retention_ms[DS_WIN_MINUTE]), 2);
        cr_assert_null(global(minute));
        cr_assert_null(global(other));
        cr_assert_eq(ds_merge_shares(m), 6, "the TOTAL row's 6 shares should be all that is left");
        cr_assert_eq(global(gate5)->m.declarations, 6);
        /* the TOTAL row's shares are still there: a new value replaces one */
        ds_measures_t w = meas(2, 100, DS_FLOW_EXPORT);
        ds_merge_src_t src = {.partition = 200, .epoch = 1, .offset = 11};
        cr_assert_eq(ds_merge_update(m, &src, ds_rowkey_with_partition(gate5, 200), &w, NULL), 0);
        cr_assert_eq(global(gate5)->m.declarations, 7);
        cr_assert_eq(ds_merge_shares(m), 6);
}

/* A bucket whose rows have more shares than are removed at once (the merge
 * collects 4,096 shares' keys, then removes them): 3,000 minute rows, each
 * with shares of 3 partitions, all closing together; and a row of another
 * minute that stays. */
Test(merge, a_large_bucket_takes_every_share) {
        ds_measures_t v = meas(1, 100, DS_FLOW_IMPORT);
        ds_rowkey_t stays = ds_rowkey(DS_DIM_COMMODITY, DS_WIN_MINUTE, 77, T0 + 10 * DS_MINUTE_MS);
        for (uint32_t k = 0; k < 3000; k++)
                for (int32_t p = 0; p < 3; p++) {
                        ds_rowkey_t key = ds_rowkey(DS_DIM_COMMODITY, DS_WIN_MINUTE, 1000 + k, T0);
                        ds_merge_src_t src = {.partition = p * 70, .epoch = 1, .offset = 10};
                        cr_assert_eq(ds_merge_update(m, &src, ds_rowkey_with_partition(key, p * 70), &v, NULL), 0);
                }
        ds_merge_src_t src = {.partition = 1, .epoch = 1, .offset = 10};
        cr_assert_eq(ds_merge_update(m, &src, ds_rowkey_with_partition(stays, 1), &v, NULL), 0);
        cr_assert_eq(ds_merge_shares(m), 9001);
        cr_assert_eq(ds_merge_advance(m, T0 + DS_MINUTE_MS + win.retention_ms[DS_WIN_MINUTE]), 3000);
        cr_assert_eq(ds_merge_shares(m), 1, "every closed row's shares should be gone");
        cr_assert_eq(ds_rows_count(ds_merge_global(m)), 1);
        cr_assert_not_null(global(stays));
}

Test(merge, upserting_the_same_value_twice_changes_nothing_and_marks_nothing) {
        ds_measures_t v = meas(4, 1000, DS_FLOW_EXPORT);
        cr_assert_eq(upd(0, gate5, &v), 0);
        cr_assert_eq(dirty_live(), 1);
        ds_rows_clear_dirty(ds_merge_global(m));
        cr_assert_eq(upd(0, gate5, &v), 0);
        cr_assert_eq(upd(0, gate5, &v), 0);
        cr_assert_eq(dirty_live(), 0, "an unchanged value marked the row dirty");
        cr_assert_eq(ds_rows_dirty_count(ds_merge_global(m)), 0);
        ds_row_t *g = global(gate5);
        cr_assert_not_null(g);
        cr_assert(!memcmp(&g->m, &v, sizeof(v)), "the global row is not the single partition's value");
}

Test(merge, a_key_with_a_partition_is_taken_without_it) {
        ds_measures_t v = meas(1, 10, DS_FLOW_IMPORT);
        cr_assert_eq(upd(3, ds_rowkey_with_partition(gate5, 3), &v), 0);
        cr_assert_not_null(global(gate5));
        cr_assert_eq(global(gate5)->m.value, 10);
        cr_assert_eq(ds_rowkey_partition(global(gate5)->key), -1);
}

Test(merge, two_partitions_sum) {
        ds_measures_t a = meas(4, 1000, DS_FLOW_EXPORT), b = meas(6, 250, DS_FLOW_IMPORT);
        cr_assert_eq(upd(0, gate5, &a), 0);
        cr_assert_eq(upd(7, gate5, &b), 0);
        ds_row_t *g = global(gate5);
        cr_assert_eq(g->m.declarations, 10);
        cr_assert_eq(g->m.items, 30);
        cr_assert_eq(g->m.value, 1250);
        cr_assert_eq(g->m.weight, 125);
        cr_assert_eq(g->m.flow_value[DS_FLOW_EXPORT], 1000);
        cr_assert_eq(g->m.flow_value[DS_FLOW_IMPORT], 250);
        cr_assert_eq(ds_rows_count(ds_merge_global(m)), 1);
        /* a replay of both partitions' values changes nothing */
        ds_rows_clear_dirty(ds_merge_global(m));
        cr_assert_eq(upd(7, gate5, &b), 0);
        cr_assert_eq(upd(0, gate5, &a), 0);
        cr_assert_eq(global(gate5)->m.value, 1250);
        cr_assert_eq(dirty_live(), 0);
}

Test(merge, a_partition_lowering_its_value_lowers_the_global) {
        ds_measures_t a = meas(4, 1000, DS_FLOW_EXPORT), b = meas(6, 250, DS_FLOW_EXPORT);
        cr_assert_eq(upd(0, gate5, &a), 0);
        cr_assert_eq(upd(1, gate5, &b), 0);
        ds_rows_clear_dirty(ds_merge_global(m));
        ds_measures_t a2 = meas(3, 400, DS_FLOW_EXPORT); /* a cancellation in partition 0 */
        cr_assert_eq(upd(0, gate5, &a2), 0);
        ds_row_t *g = global(gate5);
        cr_assert_eq(g->m.declarations, 9);
        cr_assert_eq(g->m.value, 650);
        cr_assert_eq(g->m.flow_value[DS_FLOW_EXPORT], 650);
        cr_assert_eq(dirty_live(), 1);
        /* down to zero: the row stays, at zero */
        ds_measures_t zero;
        memset(&zero, 0, sizeof(zero));
        cr_assert_eq(upd(0, gate5, &zero), 0);
        cr_assert_eq(upd(1, gate5, &zero), 0);
        cr_assert(ds_measures_is_zero(&global(gate5)->m));
}

Test(merge, global_row_is_dirty_only_on_change) {
        ds_rowkey_t h810 = ds_rowkey(DS_DIM_COMMODITY, DS_WIN_TOTAL, 810, 0);
        ds_measures_t a = meas(1, 100, DS_FLOW_EXPORT), b = meas(2, 200, DS_FLOW_EXPORT);
        cr_assert_eq(upd(0, gate5, &a), 0);
        cr_assert_eq(upd(0, h810, &a), 0);
        cr_assert_eq(dirty_live(), 2);
        ds_rows_clear_dirty(ds_merge_global(m));
        cr_assert_eq(upd(0, gate5, &b), 0); /* changes */
        cr_assert_eq(upd(0, h810, &a), 0);  /* does not */
        cr_assert_eq(dirty_live(), 1);
        cr_assert_eq(ds_rows_dirty_at(ds_merge_global(m), 0), global(gate5));
        ds_rows_clear_dirty(ds_merge_global(m));
        /* two partitions trading value: each update changes the sum, the end sum is the same */
        ds_measures_t c = meas(1, 50, DS_FLOW_EXPORT), d = meas(1, 150, DS_FLOW_EXPORT);
        cr_assert_eq(upd(1, h810, &c), 0);
        cr_assert_eq(global(h810)->m.value, 150);
        cr_assert_eq(dirty_live(), 1);
        ds_rows_clear_dirty(ds_merge_global(m));
        /* only the items differ: still a change */
        ds_measures_t e = d;
        e.value = 50;
        e.weight = c.weight;
        e.declarations = 1;
        e.flow_value[DS_FLOW_EXPORT] = 50;
        e.items = 99;
        cr_assert_eq(upd(1, h810, &e), 0);
        cr_assert_eq(dirty_live(), 1);
        cr_assert_eq(global(h810)->m.items, 3 + 99);
}

Test(merge, many_partitions_and_rows_sum_exactly) {
        /* 12 partitions x 200 rows, each value updated several times */
        static int64_t last[12][200];
        uint64_t x = 99;
        for (int round = 0; round < 5; round++)
                for (int p = 0; p < 12; p++)
                        for (uint32_t k = 0; k < 200; k++) {
                                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                                int64_t v = (int64_t)(x % 1000000);
                                last[p][k] = v;
                                ds_measures_t mv = meas(v % 7, v, (int)(k % 4));
                                cr_assert_eq(upd(p, ds_rowkey(DS_DIM_COMMODITY, DS_WIN_TOTAL, k, 0), &mv),
                                             0);
                        }
        for (uint32_t k = 0; k < 200; k++) {
                int64_t want = 0, decl = 0;
                for (int p = 0; p < 12; p++)
                        want += last[p][k], decl += last[p][k] % 7;
                ds_row_t *g = global(ds_rowkey(DS_DIM_COMMODITY, DS_WIN_TOTAL, k, 0));
                cr_assert_eq(g->m.value, want, "row %u", k);
                cr_assert_eq(g->m.declarations, decl, "row %u", k);
                cr_assert_eq(g->m.flow_value[k % 4], want, "row %u", k);
        }
}

/* ds_merge_prefetch() is a hint: a merge fed in batches of 64 - step 1 for
 * the batch, step 2, then the updates, with the tables growing meanwhile -
 * ends with exactly the rows of one fed without it. */
Test(merge, prefetching_a_batch_changes_nothing) {
        ds_merge_t *hinted = ds_merge_new(&win, 7 * DS_DAY_MS);
        cr_assert_not_null(hinted);
        enum { N = 6000, B = 64 };
        static ds_rowkey_t keys[N];
        static int32_t parts[N];
        static ds_measures_t vals[N];
        uint64_t x = 7;
        for (int i = 0; i < N; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                parts[i] = (int32_t)(x % 24);
                keys[i] = ds_rowkey(DS_DIM_COMMODITY, DS_WIN_TOTAL, (uint32_t)(x >> 8) % 1500, 0);
                vals[i] = meas((int64_t)(x % 5) + 1, (int64_t)(x % 100000), (int)(x % 4));
        }
        int64_t off[24] = {0}, off2[24] = {0};
        for (int b = 0; b < N; b += B) {
                uint32_t hs[B][2];
                for (int i = b; i < b + B && i < N; i++)
                        ds_merge_prefetch(hinted, 1, parts[i], keys[i], hs[i - b]);
                for (int i = b; i < b + B && i < N; i++)
                        ds_merge_prefetch(hinted, 2, parts[i], keys[i], hs[i - b]);
                for (int i = b; i < b + B && i < N; i++) {
                        ds_merge_src_t s1 = {parts[i], 1, ++off[parts[i]]}, s2 = {parts[i], 1, ++off2[parts[i]]};
                        cr_assert_eq(ds_merge_update(m, &s1, keys[i], &vals[i], NULL), DS_MERGE_APPLIED);
                        cr_assert_eq(ds_merge_update(hinted, &s2, keys[i], &vals[i], NULL), DS_MERGE_APPLIED);
                }
        }
        ds_rows_t *a = ds_merge_global(m), *h = ds_merge_global(hinted);
        cr_assert_eq(ds_rows_count(a), ds_rows_count(h));
        cr_assert_gt(ds_rows_count(a), 1000);
        for (uint32_t k = 0; k < 1500; k++) {
                ds_rowkey_t key = ds_rowkey(DS_DIM_COMMODITY, DS_WIN_TOTAL, k, 0);
                ds_row_t *ra = ds_rows_find(a, key), *rh = ds_rows_find(h, key);
                cr_assert_eq(!ra, !rh, "row %u", k);
                if (ra)
                        cr_assert_eq(memcmp(&ra->m, &rh->m, sizeof(ra->m)), 0, "row %u", k);
        }
        ds_merge_destroy(hinted);
}

/* ---- closing ------------------------------------------------------------------ */

Test(merge, advance_removes_closed_global_rows_and_ignores_later_reports) {
        ds_rowkey_t minute = ds_rowkey(DS_DIM_GATE, DS_WIN_MINUTE, 5, T0);
        ds_rowkey_t hour = ds_rowkey(DS_DIM_GATE, DS_WIN_HOUR, 5, T0);
        ds_measures_t v = meas(1, 100, DS_FLOW_EXPORT);
        cr_assert_eq(upd(0, minute, &v), 0);
        cr_assert_eq(upd(0, hour, &v), 0);
        cr_assert_eq(upd(0, gate5, &v), 0);
        ds_rows_clear_dirty(ds_merge_global(m));
        int64_t closed = T0 + DS_MINUTE_MS + win.retention_ms[DS_WIN_MINUTE];
        cr_assert_eq(ds_merge_advance(m, closed - 1), 0, "the minute is still open");
        cr_assert_not_null(global(minute));
        cr_assert_eq(ds_merge_advance(m, closed), 1);
        cr_assert_null(global(minute));
        cr_assert_not_null(global(hour));
        cr_assert_not_null(global(gate5));
        /* a replay of the finished minute does not recreate it */
        ds_measures_t w = meas(2, 200, DS_FLOW_EXPORT);
        cr_assert_eq(upd(1, minute, &w), DS_MERGE_CLOSED);
        cr_assert_null(global(minute));
        /* the watermark only moves forward */
        cr_assert_eq(ds_merge_advance(m, T0), 0);
        cr_assert_eq(upd(1, minute, &w), DS_MERGE_CLOSED);
}

/* Closing is what the statuses say, not what publishing has removed: a
 * merge rebuilt from the partial topic publishes nothing (so removes
 * nothing) until it has caught up, and it used to take a late value the live
 * merge had refused, changing a final value after a restart. Once closed, a
 * window refuses values while its rows still wait to be published. */
Test(merge, a_window_closed_by_the_statuses_refuses_late_values_before_it_is_removed) {
        ds_rowkey_t minute = ds_rowkey(DS_DIM_GATE, DS_WIN_MINUTE, 5, T0);
        ds_measures_t v = meas(1, 100, DS_FLOW_EXPORT), late = meas(2, 900, DS_FLOW_EXPORT);
        cr_assert_eq(upd(0, minute, &v), DS_MERGE_APPLIED);
        int64_t closed = T0 + DS_MINUTE_MS + win.retention_ms[DS_WIN_MINUTE];
        ds_merge_close(m, closed - 1);
        cr_assert_eq(upd(1, minute, &v), DS_MERGE_APPLIED, "still open a millisecond before");
        ds_merge_close(m, closed);
        cr_assert_eq(upd(2, minute, &late), DS_MERGE_CLOSED);
        cr_assert_not_null(global(minute), "removed before it was published");
        cr_assert_eq(global(minute)->m.value, 200);
        ds_merge_close(m, T0); /* only forward */
        cr_assert_eq(upd(2, minute, &late), DS_MERGE_CLOSED);
        /* publishing then removes it; advancing to an older point removes nothing */
        cr_assert_eq(ds_merge_advance(m, closed), 1);
        cr_assert_null(global(minute));
        cr_assert_eq(upd(2, minute, &late), DS_MERGE_CLOSED);
}

/* The merge role closes with the processors' retentions when they are
 * longer than its own - but only before anything has closed: a window
 * closed, and perhaps removed with its partitions' shares, must not take a
 * share again. */
Test(merge, retentions_change_only_before_anything_closed) {
        ds_rowkey_t minute = ds_rowkey(DS_DIM_GATE, DS_WIN_MINUTE, 5, T0);
        ds_measures_t v = meas(1, 100, DS_FLOW_EXPORT);
        int64_t closed = T0 + DS_MINUTE_MS + win.retention_ms[DS_WIN_MINUTE];
        ds_window_cfg_t longer = win;
        longer.retention_ms[DS_WIN_MINUTE] += DS_HOUR_MS;
        cr_assert_eq(ds_merge_retention(m, &longer, 7 * DS_DAY_MS), 0);
        ds_merge_close(m, closed);
        cr_expect_eq(upd(0, minute, &v), DS_MERGE_APPLIED, "open an hour longer");
        ds_merge_close(m, closed + DS_HOUR_MS);
        cr_expect_eq(upd(1, minute, &v), DS_MERGE_CLOSED);
        ds_window_cfg_t longest = longer;
        longest.retention_ms[DS_WIN_MINUTE] += DS_HOUR_MS;
        cr_expect_eq(ds_merge_retention(m, &longest, 7 * DS_DAY_MS), -1, "changed after closing");
        cr_expect_eq(ds_merge_retention(m, &win, 7 * DS_DAY_MS), 0, "no longer: nothing to change");
        cr_expect_eq(upd(1, minute, &v), DS_MERGE_CLOSED);
}

Test(merge, a_closed_partition_row_stays_until_closed_everywhere) {
        /* partition 0 has closed its minute, partition 1 (slower) still adds */
        ds_rowkey_t minute = ds_rowkey(DS_DIM_GATE, DS_WIN_MINUTE, 5, T0);
        ds_measures_t a = meas(1, 100, DS_FLOW_EXPORT), b = meas(2, 300, DS_FLOW_EXPORT);
        cr_assert_eq(upd(0, minute, &a), DS_MERGE_APPLIED);
        cr_assert_eq(upd(1, minute, &b), DS_MERGE_APPLIED);
        ds_measures_t b2 = meas(3, 350, DS_FLOW_EXPORT);
        cr_assert_eq(upd(1, minute, &b2), DS_MERGE_APPLIED);
        cr_assert_eq(global(minute)->m.value, 450);
        cr_assert_eq(global(minute)->m.declarations, 4);
        /* partition 0's share reported again (a replay): an upsert, not a second addition */
        cr_assert_eq(upd(0, minute, &a), DS_MERGE_APPLIED);
        cr_assert_eq(global(minute)->m.value, 450);
}

/* ---- sources: offsets and epochs --------------------------------------------------- */

static int upd_src(int32_t p, int32_t epoch, int64_t offset, ds_rowkey_t key, const ds_measures_t *v) {
        ds_merge_src_t src = {.partition = p, .epoch = epoch, .offset = offset};
        return ds_merge_update(m, &src, key, v, NULL);
}

Test(merge, a_value_from_an_older_offset_is_stale) {
        ds_measures_t v100 = meas(3, 300, DS_FLOW_EXPORT), v50 = meas(1, 100, DS_FLOW_EXPORT);
        cr_assert_eq(upd_src(2, 1, 100, gate5, &v100), DS_MERGE_APPLIED);
        ds_rows_clear_dirty(ds_merge_global(m));
        cr_assert_eq(upd_src(2, 1, 50, gate5, &v50), DS_MERGE_STALE);
        cr_assert_eq(global(gate5)->m.value, 300, "the kept value went back");
        cr_assert_eq(dirty_live(), 0);
        /* a new owner replaying from an older checkpoint: ignored until it passes the kept offset */
        cr_assert_eq(upd_src(2, 2, 60, gate5, &v50), DS_MERGE_STALE);
        cr_assert_eq(global(gate5)->m.value, 300);
        ds_measures_t v120 = meas(4, 400, DS_FLOW_EXPORT);
        cr_assert_eq(upd_src(2, 2, 120, gate5, &v120), DS_MERGE_APPLIED);
        cr_assert_eq(global(gate5)->m.value, 400);
        /* the same offset again (a repeated flush) is applied, and changes nothing */
        ds_rows_clear_dirty(ds_merge_global(m));
        cr_assert_eq(upd_src(2, 2, 120, gate5, &v120), DS_MERGE_APPLIED);
        cr_assert_eq(dirty_live(), 0);
}

Test(merge, a_value_from_an_older_epoch_is_fenced) {
        ds_measures_t a = meas(1, 100, DS_FLOW_EXPORT), zombie = meas(9, 900, DS_FLOW_EXPORT);
        cr_assert_eq(upd_src(4, 1, 10, gate5, &a), DS_MERGE_APPLIED);
        cr_assert_eq(ds_merge_epoch(m, 4, 2), 0); /* a new owner announced itself */
        cr_assert_eq(upd_src(4, 1, 1000, gate5, &zombie), DS_MERGE_FENCED);
        cr_assert_eq(global(gate5)->m.value, 100);
        cr_assert_eq(ds_merge_epoch(m, 4, 1), DS_MERGE_FENCED, "the epoch went back");
        /* other partitions are not fenced */
        cr_assert_eq(upd_src(5, 1, 1, gate5, &a), DS_MERGE_APPLIED);
        cr_assert_eq(global(gate5)->m.value, 200);
        /* a value of a newer epoch raises the partition's epoch by itself */
        cr_assert_eq(upd_src(5, 3, 2, gate5, &a), DS_MERGE_APPLIED);
        cr_assert_eq(upd_src(5, 2, 3, gate5, &zombie), DS_MERGE_FENCED);
}

/* ---- top headings ------------------------------------------------------------------ */

static ds_rowkey_t cell(uint32_t gate, uint32_t heading) {
        return ds_cell_rowkey(gate, heading, DAY0);
}

Test(merge, top_headings_by_value_ties_to_the_lower_heading) {
        const struct {
                uint32_t heading;
                int64_t decl, value;
        } cells[] = {{810, 3, 500}, {8429, 1, 9000}, {2701, 2, 500}, {4401, 0, 0}, {7208, 5, 100}, {1006, 1, 700}};
        for (size_t i = 0; i < DS_ARRAY_LEN(cells); i++) {
                ds_measures_t v = meas(cells[i].decl, cells[i].value, DS_FLOW_EXPORT);
                cr_assert_eq(upd((int32_t)(i % 2), cell(5, cells[i].heading), &v), 0);
        }
        /* another gate's cells do not mix in */
        ds_measures_t big = meas(1, 1000000, DS_FLOW_EXPORT);
        cr_assert_eq(upd(0, cell(6, 810), &big), 0);
        ds_top_entry_t top[10];
        int n = ds_merge_top(m, 5, DAY0, top, 10);
        cr_assert_eq(n, 5, "cells without declarations are left out (got %d)", n);
        const uint32_t want[] = {8429, 1006, 810, 2701, 7208};
        for (int i = 0; i < n; i++)
                cr_assert_eq(top[i].heading, want[i], "place %d: %u, want %u", i, top[i].heading, want[i]);
        cr_assert_eq(top[0].m.value, 9000);
        cr_assert_eq(top[2].m.declarations, 3);
        cr_assert_eq(ds_merge_top(m, 5, DAY0, top, 2), 2);
        cr_assert_eq(top[1].heading, 1006);
        cr_assert_eq(ds_merge_top(m, 5, DAY0 + DS_DAY_MS, top, 10), 0, "another day");
        cr_assert_eq(ds_merge_top(m, 6, DAY0, top, 10), 1);
}

static int groups_seen;
static void on_group(void *ctx, uint32_t gate, int64_t day) {
        (void)ctx;
        cr_assert_eq(gate, 5);
        cr_assert_eq(day, DAY0);
        groups_seen++;
}

static void count_group(void *ctx, uint32_t gate, int64_t day) {
        (void)ctx, (void)gate, (void)day;
        groups_seen++;
}

Test(merge, changed_groups_are_reported_once) {
        ds_measures_t v = meas(1, 100, DS_FLOW_EXPORT);
        cr_assert_eq(upd(0, cell(5, 810), &v), 0);
        cr_assert_eq(upd(1, cell(5, 8429), &v), 0);
        groups_seen = 0;
        ds_merge_changed_groups(m, on_group, NULL);
        cr_assert_eq(groups_seen, 1);
        ds_merge_changed_groups(m, on_group, NULL);
        cr_assert_eq(groups_seen, 1, "a group reported twice");
        cr_assert_eq(upd(1, cell(5, 8429), &v), 0); /* unchanged */
        ds_merge_changed_groups(m, on_group, NULL);
        cr_assert_eq(groups_seen, 1, "an unchanged cell changed its group");
}

/* A merge runs for years: the (gate, day) groups of the top lists go with
 * their last cell, so its memory follows the days open at once, not the
 * days it has seen (they used to stay until the merge was destroyed). */
Test(merge, top_list_groups_go_when_their_days_close) {
        ds_measures_t v = meas(1, 100, DS_FLOW_EXPORT);
        int64_t top_ret = 7 * DS_DAY_MS;
        size_t after_a_month = 0;
        for (int d = 0; d < 400; d++) {
                int64_t day = DAY0 + d * DS_DAY_MS;
                for (uint32_t gate = 0; gate < 16; gate++)
                        for (uint32_t h = 0; h < 20; h++)
                                cr_assert_eq(
                                        upd((int32_t)(h % 4), ds_cell_rowkey(gate, 100 + h * 7 + (uint32_t)d, day), &v),
                                        DS_MERGE_APPLIED);
                /* what the publisher does each cycle */
                ds_merge_changed_groups(m, count_group, NULL);
                ds_rows_clear_dirty(ds_merge_global(m));
                /* the day before closes for the top lists a retention later */
                ds_merge_advance(m, day + top_ret);
                if (d == 30)
                        after_a_month = ds_merge_memory(m);
        }
        size_t after_400_days = ds_merge_memory(m);
        cr_assert_leq(after_400_days, after_a_month, "%zu bytes after 400 days, %zu after 30", after_400_days,
                      after_a_month);
        ds_top_entry_t top[10];
        cr_assert_eq(ds_merge_top(m, 3, DAY0 + 10 * DS_DAY_MS, top, 10), 0, "a closed day's list");
        cr_assert_eq(ds_merge_top(m, 3, DAY0 + 399 * DS_DAY_MS, top, 10), 10, "an open day's list");
        /* a group emptied but still to be reported stays until it has been */
        ds_rowkey_t c = ds_cell_rowkey(2, 9999, DAY0 + 399 * DS_DAY_MS);
        cr_assert_eq(upd(0, c, &v), DS_MERGE_APPLIED);
        groups_seen = 0;
        ds_merge_advance(m, DAY0 + 400 * DS_DAY_MS + top_ret);
        ds_merge_changed_groups(m, count_group, NULL);
        cr_assert_eq(groups_seen, 1, "the changed group was dropped before it was reported");
}

/* ---- the partial message: decoded back, and refused out of range -------------- */

/* A PartialTotal ROW written field by field as ds_partial_encode() writes
 * it, with any field's raw value: what a corrupt or hostile message on
 * customs.totals.partial can carry. */
typedef struct raw_partial {
        int64_t kind, partition, epoch, dim, win, start, measure;
        const char *key;
} raw_partial_t;

static ds_dlq_reason_t decode_raw(const raw_partial_t *r, ds_partial_t *out) {
        static ds_buf_t b;
        b.len = 0;
        ds_wire_put_header(&b, DS_SCHEMA_ID_PARTIAL);
        const int64_t head[] = {r->kind, r->partition, r->epoch, 1000 /* input offset */, 0 /* watermark */};
        for (size_t i = 0; i < DS_ARRAY_LEN(head); i++)
                ds_avro_put_long(&b, head[i]);
        ds_buf_put(&b, "\x00", 1); /* not idle */
        ds_avro_put_long(&b, r->dim);
        ds_avro_put_bytes(&b, r->key, strlen(r->key));
        ds_avro_put_long(&b, r->win);
        ds_avro_put_long(&b, r->start);
        for (int i = 0; i < 8; i++)
                ds_avro_put_long(&b, i == 2 ? r->measure : 1);
        ds_avro_put_bytes(&b, NULL, 0);
        ds_avro_put_bytes(&b, NULL, 0);
        ds_avro_put_long(&b, 0); /* updated_at */
        return ds_partial_decode(b.p, b.len, 4, out);
}

/* Every field of a partial is checked before it is narrowed or used: kinds,
 * partitions and epochs of 2^32 + x decoded as x; a window start near
 * INT64_MAX overflowed closing arithmetic; a TOTAL row with a start was
 * never evicted; a GATE_HEADING cell of an HOUR window listed its heading
 * twice in a top list. What a processor can write stays accepted: large
 * shares (a TOTAL share only grows), windows before 1970. */
Test(merge, a_partial_out_of_range_is_refused) {
        ds_domain_init();
        const int64_t day = 1710028800000LL - 7 * 3600000LL; /* a local midnight */
        const raw_partial_t good = {DS_PARTIAL_ROW, 3, 2, DS_DIM_GATE, DS_WIN_DAY, day, 250000, "MONGCAI"};
        ds_partial_t p;
        cr_assert_eq(decode_raw(&good, &p), DS_DLQ_NONE);
        cr_expect_eq(p.partition, 3);
        cr_expect_eq(p.epoch, 2);
        cr_expect_eq(p.m.value, 250000);
        cr_expect_eq(ds_rowkey_window(p.key), DS_WIN_DAY);
        cr_expect_eq(p.key.start, day);
        /* and what ds_partial_encode() writes decodes to itself */
        ds_partial_t e = p;
        ds_buf_t b = {0};
        ds_partial_encode(&b, &e, 4);
        ds_partial_t back;
        cr_assert_eq(ds_partial_decode(b.p, b.len, 4, &back), DS_DLQ_NONE);
        cr_expect(back.key.k == e.key.k && back.key.start == e.key.start && back.partition == 3 && back.epoch == 2 &&
                  !memcmp(&back.m, &e.m, sizeof(e.m)));
        ds_buf_free(&b);
        struct {
                const char *what;
                raw_partial_t r;
        } bad[] = {
                {"kind 2", good},
                {"kind 2^32", good},
                {"partition -1", good},
                {"partition 2^32 + 3", good},
                {"partition 65535", good},
                {"epoch -1", good},
                {"epoch 2^32 + 2", good},
                {"dimension 2^32", good},
                {"window 2^32 + 3", good},
                {"start near INT64_MAX", good},
                {"start not a window's", good},
                {"TOTAL with a start", good},
                {"cell of an HOUR window", good},
                {"negative value", good},
        };
        bad[0].r.kind = 2;
        bad[1].r.kind = 1LL << 32;
        bad[2].r.partition = -1;
        bad[3].r.partition = (1LL << 32) + 3;
        bad[4].r.partition = 65535;
        bad[5].r.epoch = -1;
        bad[6].r.epoch = (1LL << 32) + 2;
        bad[7].r.dim = 1LL << 32;
        bad[8].r.win = (1LL << 32) + 3;
        bad[9].r.start = INT64_MAX - 1000;
        bad[10].r.start = day + 1;
        bad[11].r.win = DS_WIN_TOTAL;
        bad[12].r.dim = DS_DIM_GATE_HEADING, bad[12].r.win = DS_WIN_HOUR, bad[12].r.key = "MONGCAI|0810";
        bad[13].r.measure = -7;
        for (size_t i = 0; i < DS_ARRAY_LEN(bad); i++)
                cr_expect_eq(decode_raw(&bad[i].r, &p), DS_DLQ_MALFORMED, "%s: accepted", bad[i].what);
        /* the same cell as a DAY window is fine; so are a huge share and a
         * day before 1970 (validation lets such event times through) */
        raw_partial_t ok = bad[12].r;
        ok.win = DS_WIN_DAY;
        cr_expect_eq(decode_raw(&ok, &p), DS_DLQ_NONE);
        ok = good;
        ok.measure = INT64_MAX;
        cr_expect_eq(decode_raw(&ok, &p), DS_DLQ_NONE, "a share of INT64_MAX");
        ok = good;
        ok.start = -7 * 3600000LL - 86400000LL; /* 1969-12-31, local */
        cr_expect_eq(decode_raw(&ok, &p), DS_DLQ_NONE, "a day of 1969");
}

/* Shares have no upper bound (a TOTAL share only grows): the global sum
 * saturates rather than overflow (two shares near INT64_MAX were undefined
 * behaviour; UBSan runs this test in the ASan build). Past saturation the
 * sum is no longer exact, only never wrapped or negative. */
Test(merge, a_sum_past_int64_saturates) {
        ds_measures_t big = meas(1, INT64_MAX - 5, 0);
        cr_assert_eq(upd(0, gate5, &big), DS_MERGE_APPLIED);
        cr_assert_eq(upd(1, gate5, &big), DS_MERGE_APPLIED);
        cr_expect_eq(global(gate5)->m.value, INT64_MAX);
        cr_expect_eq(global(gate5)->m.declarations, 2);
        ds_measures_t small = meas(1, 10, 0);
        cr_assert_eq(upd(1, gate5, &small), DS_MERGE_APPLIED);
        cr_expect_geq(global(gate5)->m.value, 0, "the sum went negative");
        cr_expect_eq(global(gate5)->m.declarations, 2);
}

/* ---- saving and loading (the merge role's snapshots) ---------------------------- */

/* One step of a merge's life, applied alike to two merges. */
typedef struct mop {
        int kind; /* 0 update, 1 close, 2 advance, 3 retention */
        ds_merge_src_t src;
        ds_rowkey_t key;
        ds_measures_t v;
        int sketch; /* the update carries a sketch pair (GATE DAY rows) */
        int64_t wm;
} mop_t;

static uint64_t mrand(uint64_t *x) {
        *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
        return *x;
}

/* Updates of 10 partitions (epochs raised now and then, offsets now and then
 * older than the kept ones) to gate, heading and cell rows of every window
 * over two days, with statuses closing and advancing as they go, and a
 * retention lengthened before the first close. */
static int make_ops(mop_t *ops, int n, uint64_t seed) {
        uint64_t x = seed;
        int32_t epoch[10] = {0};
        int64_t off[10] = {0}, wm = T0 - DS_DAY_MS;
        int k = 0;
        for (int i = 0; i < n; i++) {
                uint64_t r = mrand(&x);
                mop_t *o = &ops[k++];
                memset(o, 0, sizeof(*o));
                if (i == 0) { /* before anything closes: taken */
                        o->kind = 3;
                        continue;
                }
                if (r % 97 == 0) {
                        wm += (int64_t)(r >> 20) % (20 * DS_MINUTE_MS);
                        o->kind = r % 2 ? 1 : 2;
                        o->wm = wm;
                        continue;
                }
                int32_t p = (int32_t)((r >> 8) % 10);
                if (!epoch[p] || r % 503 == 0)
                        epoch[p]++;
                off[p] += 1 + (int64_t)(r >> 16) % 3;
                int64_t at = T0 - DS_DAY_MS + (int64_t)(mrand(&x) % (uint64_t)(2 * DS_DAY_MS));
                ds_window_t w = (ds_window_t)((r >> 24) % DS_WIN__CNT);
                uint32_t gate = (uint32_t)(r >> 30) % 6, heading = 100 + (uint32_t)(r >> 36) % 60;
                int64_t start = w == DS_WIN_TOTAL ? 0 : ds_window_start(w, at);
                switch ((r >> 42) % 3) {
                case 0:
                        o->key = ds_rowkey(DS_DIM_GATE, w, gate, start);
                        break;
                case 1:
                        o->key = ds_rowkey(DS_DIM_COMMODITY, w, heading, start);
                        break;
                default:
                        o->key = ds_cell_rowkey(gate, heading, ds_window_start(DS_WIN_DAY, at));
                        break;
                }
                o->src = (ds_merge_src_t){p, epoch[p] - (r % 211 == 0), off[p] - (r % 101 == 0 ? 5 : 0)};
                o->v = meas((int64_t)(r >> 48) % 9 + 1, (int64_t)(r >> 40) % 100000, (int)(r >> 50) % 4);
                o->sketch = ds_rowkey_dim(o->key) == DS_DIM_GATE && ds_rowkey_window(o->key) == DS_WIN_DAY;
        }
        return k;
}

static int apply_op(ds_merge_t *mm, const mop_t *o, int i) {
        switch (o->kind) {
        case 1:
                ds_merge_close(mm, o->wm);
                return 0;
        case 2:
                return (int)ds_merge_advance(mm, o->wm);
        case 3: {
                ds_window_cfg_t longer = win;
                longer.retention_ms[DS_WIN_MINUTE] += DS_HOUR_MS;
                return ds_merge_retention(mm, &longer, 8 * DS_DAY_MS);
        }
        }
        ds_distinct_t *d = NULL;
        if (o->sketch) {
                d = ds_distinct_new();
                cr_assert_not_null(d);
                for (int j = 0; j < 1 + i % 40; j++) {
                        cr_assert_eq(ds_hll_add(&d->declarants, ds_mix64((uint64_t)(i * 41 + j))), 0);
                        cr_assert_eq(ds_hll_add(&d->vehicles, ds_mix64((uint64_t)(i * 43 + j) << 1)), 0);
                }
        }
        int rc = ds_merge_update(mm, &o->src, o->key, &o->v, d);
        ds_distinct_free(d);
        return rc;
}

/* The same registers: the same estimate and size (a sparse sketch's bytes
 * list its registers in its table's order, which a loaded copy need not
 * share). */
static void same_sketch(const ds_hll_t *a, const ds_hll_t *b, const char *what) {
        cr_assert_eq(ds_hll_serialized_size(a), ds_hll_serialized_size(b), "%s: sketch sizes differ", what);
        cr_assert_eq(ds_hll_estimate(a), ds_hll_estimate(b), "%s: estimates %f and %f", what, ds_hll_estimate(a),
                     ds_hll_estimate(b));
}

/* Every global row, share and top list of a equals b's. */
static void same_merge(ds_merge_t *a, ds_merge_t *b) {
        ds_rows_t *ga = ds_merge_global(a), *gb = ds_merge_global(b);
        cr_assert_eq(ds_rows_count(ga), ds_rows_count(gb));
        cr_assert_eq(ds_merge_shares(a), ds_merge_shares(b));
        uint32_t cur = 0;
        for (ds_row_t *r; (r = ds_rows_iter(ga, &cur));) {
                ds_row_t *s = ds_rows_find(gb, r->key);
                cr_assert_not_null(s, "a global row is missing after the load");
                cr_assert_eq(memcmp(&r->m, &s->m, sizeof(r->m)), 0, "measures differ");
                cr_assert_eq(r->seq, s->seq);
                cr_assert_eq(!r->aux, !s->aux);
                if (r->aux) {
                        same_sketch(((ds_distinct_t *)r->aux)->declarants, ((ds_distinct_t *)s->aux)->declarants,
                                    "declarants");
                        same_sketch(((ds_distinct_t *)r->aux)->vehicles, ((ds_distinct_t *)s->aux)->vehicles,
                                    "vehicles");
                }
                if (ds_rowkey_dim(r->key) == DS_DIM_GATE_HEADING) {
                        ds_top_entry_t ta[10], tb[10];
                        int na = ds_merge_top(a, ds_cell_gate(r->key), r->key.start, ta, 10);
                        int nb = ds_merge_top(b, ds_cell_gate(r->key), r->key.start, tb, 10);
                        cr_assert_eq(na, nb);
                        for (int q = 0; q < na; q++) { /* (field by field: the entries have padding) */
                                cr_assert_eq(ta[q].heading, tb[q].heading, "top lists differ at %d", q);
                                cr_assert_eq(memcmp(&ta[q].m, &tb[q].m, sizeof(ta[q].m)), 0, "top lists differ at %d",
                                             q);
                        }
                }
        }
}

static ds_merge_t *saved_and_loaded(ds_merge_t *from) {
        ds_buf_t b = {0};
        ds_merge_save(from, &b);
        ds_merge_t *to = ds_merge_new(&win, 7 * DS_DAY_MS);
        cr_assert_not_null(to);
        ds_rd_t r = {b.p, b.p + b.len, 0};
        cr_assert_eq(ds_merge_load(to, &r), 0, "loading %zu bytes", b.len);
        ds_buf_free(&b);
        return to;
}

/* A merge saved and loaded part-way goes on exactly as the one that was
 * never interrupted: the same answer to every later update, close and
 * advance, and the same rows, shares, sketches and top lists at the end. */
Test(merge, a_saved_merge_goes_on_as_the_original) {
        enum { N = 30000 };
        static mop_t ops[N];
        int n = make_ops(ops, N, 0x5eed);
        for (int cut = 0; cut <= n; cut += n / 3) {
                ds_merge_t *a = ds_merge_new(&win, 7 * DS_DAY_MS);
                int closes = 0, advances = 0;
                for (int i = 0; i < cut; i++)
                        cr_assert_geq(apply_op(a, &ops[i], i), 0, "op %d", i);
                ds_merge_t *b = saved_and_loaded(a);
                same_merge(a, b);
                /* the last updates before the cut again, one offset and
                 * one epoch back: refused alike (stale, fenced) only if the
                 * shares' offsets and the partitions' epochs came back */
                int refused = 0;
                for (int i = cut > 3000 ? cut - 3000 : 0; i < cut; i++) {
                        if (ops[i].kind)
                                continue;
                        mop_t o = ops[i];
                        o.src.offset--;
                        int ra = apply_op(a, &o, i), rb = apply_op(b, &o, i);
                        cr_assert_eq(ra, rb, "op %d an offset back: %d and %d", i, ra, rb);
                        refused += ra == DS_MERGE_STALE;
                        o = ops[i];
                        o.src.epoch--;
                        ra = apply_op(a, &o, i), rb = apply_op(b, &o, i);
                        cr_assert_eq(ra, rb, "op %d an epoch back: %d and %d", i, ra, rb);
                        refused += ra == DS_MERGE_FENCED;
                }
                if (cut)
                        cr_assert_gt(refused, 100);
                for (int i = cut; i < n; i++) {
                        int ra = apply_op(a, &ops[i], i), rb = apply_op(b, &ops[i], i);
                        cr_assert_eq(ra, rb, "op %d (kind %d) after a cut at %d: %d and %d", i, ops[i].kind, cut, ra,
                                     rb);
                        closes += ops[i].kind == 1;
                        advances += ops[i].kind == 2 && ra > 0;
                }
                same_merge(a, b);
                if (cut < n / 2) {
                        cr_assert_gt(closes, 10, "the ops close windows");
                        cr_assert_gt(advances, 10, "the ops remove closed rows");
                }
                ds_merge_destroy(a);
                ds_merge_destroy(b);
        }
}

/* What comes back is all to be published again: every global row dirty,
 * every top-list group changed, though the saved merge had published them. */
Test(merge, a_loaded_merge_publishes_everything_again) {
        ds_measures_t v = meas(1, 100, DS_FLOW_EXPORT);
        cr_assert_eq(upd(0, gate5, &v), 0);
        cr_assert_eq(upd(1, cell(5, 810), &v), 0);
        cr_assert_eq(upd(2, cell(6, 811), &v), 0);
        ds_rows_clear_dirty(ds_merge_global(m));
        ds_merge_changed_groups(m, count_group, NULL);
        ds_merge_t *b = saved_and_loaded(m);
        ds_rows_t *g = ds_merge_global(b);
        uint32_t n = 0;
        for (uint32_t i = 0; i < ds_rows_dirty_count(g); i++)
                n += ds_rows_dirty_at(g, i) != NULL;
        cr_assert_eq(n, 3);
        groups_seen = 0;
        ds_merge_changed_groups(b, count_group, NULL);
        cr_assert_eq(groups_seen, 2);
        ds_merge_destroy(b);
}

/* Bytes that are not a whole saved merge are refused, never half taken:
 * every prefix of a saved merge, and the saved bytes with one more. */
Test(merge, a_cut_or_padded_save_is_refused) {
        enum { N = 600 };
        static mop_t ops[N];
        int n = make_ops(ops, N, 0xcafe);
        for (int i = 0; i < n; i++)
                apply_op(m, &ops[i], i);
        ds_buf_t b = {0};
        ds_merge_save(m, &b);
        ds_buf_put(&b, "", 1);
        for (size_t len = 0; len <= b.len; len++) {
                ds_merge_t *to = ds_merge_new(&win, 7 * DS_DAY_MS);
                ds_rd_t r = {b.p, b.p + len, 0};
                int rc = ds_merge_load(to, &r);
                cr_assert_eq(rc, len == b.len - 1 ? 0 : -1, "%zu of %zu bytes: %d", len, b.len - 1, rc);
                ds_merge_destroy(to);
        }
        ds_buf_free(&b);
}

/* Retentions on a load: before anything closed, a longer one of the loading
 * merge applies (as ds_merge_retention() allows); once something closed,
 * exactly the saved ones, so that a closed window does not reopen. */
Test(merge, a_loaded_merge_keeps_the_retentions_it_closed_with) {
        ds_window_cfg_t longer = win;
        longer.retention_ms[DS_WIN_HOUR] += DS_DAY_MS;
        ds_window_cfg_t got;
        int64_t top;
        for (int closed = 0; closed < 2; closed++) {
                ds_merge_t *a = ds_merge_new(&win, 7 * DS_DAY_MS);
                ds_measures_t v = meas(1, 100, DS_FLOW_EXPORT);
                ds_merge_src_t src = {.partition = 0, .epoch = 1, .offset = 1};
                cr_assert_eq(ds_merge_update(a, &src, ds_rowkey(DS_DIM_GATE, DS_WIN_HOUR, 5, T0), &v, NULL), 0);
                if (closed)
                        ds_merge_close(a, T0 + DS_HOUR_MS + win.retention_ms[DS_WIN_HOUR]);
                ds_buf_t b = {0};
                ds_merge_save(a, &b);
                ds_merge_t *to = ds_merge_new(&longer, 8 * DS_DAY_MS);
                ds_rd_t r = {b.p, b.p + b.len, 0};
                cr_assert_eq(ds_merge_load(to, &r), 0);
                ds_merge_retentions(to, &got, &top);
                cr_expect_eq(got.retention_ms[DS_WIN_HOUR],
                             closed ? win.retention_ms[DS_WIN_HOUR] : longer.retention_ms[DS_WIN_HOUR],
                             "closed %d: hour retention %lld", closed, (long long)got.retention_ms[DS_WIN_HOUR]);
                cr_expect_eq(top, closed ? 7 * DS_DAY_MS : 8 * DS_DAY_MS);
                /* what closed there stays closed here */
                ds_merge_src_t late = {.partition = 1, .epoch = 1, .offset = 9};
                int rc = ds_merge_update(to, &late, ds_rowkey(DS_DIM_GATE, DS_WIN_HOUR, 5, T0), &v, NULL);
                cr_expect_eq(rc, closed ? DS_MERGE_CLOSED : DS_MERGE_APPLIED, "closed %d: %d", closed, rc);
                ds_buf_free(&b);
                ds_merge_destroy(a);
                ds_merge_destroy(to);
        }
}
