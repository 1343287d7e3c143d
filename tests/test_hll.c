/*
 * test_hll.c - ds_hll: exact while sparse, within its error when dense,
 * union, serialisation, and growth only for registers it does not hold.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "ds_common.h"
#include "ds_hll.h"

static uint64_t h_of(uint64_t i) {
        return ds_mix64(i * 0x9e3779b97f4a7c15ULL + 1);
}

static ds_hll_t *with(uint64_t from, uint64_t to) {
        ds_hll_t *h = ds_hll_new();
        cr_assert_not_null(h);
        for (uint64_t i = from; i < to; i++)
                cr_assert_eq(ds_hll_add(&h, h_of(i)), 0);
        return h;
}

/* 100 values in 16,384 registers: a collision is possible (~26 % for this
 * many), so "close" rather than exact; this seed's estimate is within 0.5. */
Test(hll, small_counts_are_close_and_repeats_count_once) {
        ds_hll_t *h = with(0, 100);
        for (uint64_t i = 0; i < 100; i++)
                cr_assert_eq(ds_hll_add(&h, h_of(i)), 0);
        cr_assert_float_eq(ds_hll_estimate(h), 100.0, 0.5);
        ds_hll_destroy(h);
}

Test(hll, large_counts_are_within_the_standard_error) {
        ds_hll_t *h = with(0, 200000);
        double e = ds_hll_estimate(h);
        /* 1.04 / sqrt(16384) = 0.81 %; 4 standard errors */
        cr_assert_lt(fabs(e - 200000.0) / 200000.0, 4 * 0.0081, "estimate %.0f", e);
        cr_assert_leq(ds_hll_memory(h), 16384 + 64, "dense is 16 KiB");
        ds_hll_destroy(h);
}

Test(hll, union_is_idempotent_and_counts_the_overlap_once) {
        ds_hll_t *a = with(0, 3000), *b = with(2000, 5000);
        cr_assert_eq(ds_hll_merge(&a, b), 0);
        double once = ds_hll_estimate(a);
        cr_assert_eq(ds_hll_merge(&a, b), 0);
        cr_assert_float_eq(ds_hll_estimate(a), once, 1e-9);
        cr_assert_lt(fabs(once - 5000.0) / 5000.0, 0.04, "union estimate %.0f", once);
        ds_hll_destroy(a);
        ds_hll_destroy(b);
}

Test(hll, serialisation_round_trips_sparse_and_dense) {
        for (uint64_t n = 10; n <= 100000; n *= 100) {
                ds_hll_t *h = with(0, n);
                size_t sz = ds_hll_serialized_size(h);
                uint8_t *buf = malloc(sz);
                cr_assert_eq(ds_hll_serialize(h, buf), sz);
                ds_hll_t *g = ds_hll_deserialize(buf, sz);
                cr_assert_not_null(g);
                cr_assert_float_eq(ds_hll_estimate(g), ds_hll_estimate(h), 1e-9);
                cr_assert_null(ds_hll_deserialize(buf, sz - 1), "truncated input is refused");
                free(buf);
                ds_hll_destroy(g);
                ds_hll_destroy(h);
        }
}

/* A sparse sketch that is full (the next new register makes it grow) takes
 * a value it has seen again without growing: a declarant seen again at a
 * gate on a day allocates nothing (test_hotpath). It grew before
 * (27 allocations in a steady-state pass of 21 k messages). */
Test(hll, a_full_sparse_sketch_grows_only_for_a_new_register) {
        /* find how many values fill the first sparse table */
        ds_hll_t *h = ds_hll_new();
        size_t mem = ds_hll_memory(h);
        uint64_t grew_at = 0;
        for (uint64_t i = 0; i < 1000 && !grew_at; i++) {
                cr_assert_eq(ds_hll_add(&h, h_of(i)), 0);
                if (ds_hll_memory(h) != mem)
                        grew_at = i;
        }
        ds_hll_destroy(h);
        cr_assert_gt(grew_at, 0, "the sketch never grew: not sparse?");

        /* values 0 .. grew_at-1: full; adding any of them again keeps it */
        h = with(0, grew_at);
        mem = ds_hll_memory(h);
        double est = ds_hll_estimate(h);
        for (uint64_t i = 0; i < grew_at; i++)
                cr_assert_eq(ds_hll_add(&h, h_of(i)), 0);
        cr_assert_eq(ds_hll_memory(h), mem, "a repeat grew the sketch");
        cr_assert_float_eq(ds_hll_estimate(h), est, 1e-9);
        /* the new value grows it, and counts */
        cr_assert_eq(ds_hll_add(&h, h_of(grew_at)), 0);
        cr_assert_gt(ds_hll_memory(h), mem);
        cr_assert_gt(ds_hll_estimate(h), est);
        ds_hll_destroy(h);
}

/* ds_hll_prefetch() is a hint: on a new, a grown sparse and a dense sketch
 * (under ASan in CI: its reads of the header stay inside the sketch) it
 * changes neither the estimate nor the memory. */
Test(hll, prefetch_changes_nothing) {
        uint64_t sizes[] = {0, 300, 5000};
        for (size_t k = 0; k < DS_ARRAY_LEN(sizes); k++) {
                ds_hll_t *h = with(0, sizes[k]);
                double e = ds_hll_estimate(h);
                size_t m = ds_hll_memory(h);
                for (uint64_t i = 0; i < 10000; i++)
                        ds_hll_prefetch(h, h_of(i));
                cr_assert_eq(ds_hll_estimate(h), e);
                cr_assert_eq(ds_hll_memory(h), m);
                ds_hll_destroy(h);
        }
}
