/*
 * test_fmt.c - ds_fmt.h and the keys built with it, against snprintf.
 *
 * ds_fmt replaced snprintf on the per-row publishing path; these tests hold
 * it to snprintf's output and truncation rules, and the key functions to the
 * format strings they had before.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ds_domain.h"
#include "ds_encode.h"
#include "ds_fmt.h"
#include "ds_testutil.h"

static uint64_t rng = 1;

static uint64_t rnd(void) {
        return ds_test_rnd(&rng);
}

/* A value with a random number of decimal digits, edge values included. */
static uint64_t rnd_value(int i) {
        static const uint64_t edge[] = {0, 1, 9, 10, 99, 100, 4294967295ULL, 4294967296ULL,
                                        9223372036854775807ULL, 9223372036854775808ULL, UINT64_MAX};
        if (i < (int)(sizeof(edge) / sizeof(edge[0])))
                return edge[i];
        return rnd() >> (rnd() % 64);
}

Test(fmt, unsigned_with_zero_padding_is_snprintf) {
        for (int i = 0; i < 20000; i++) {
                uint64_t v = rnd_value(i);
                int width = (int)(rnd() % 21);
                char want[64], got[64];
                int wl = snprintf(want, sizeof(want), "%0*" PRIu64, width, v);
                ds_fmt_t f = ds_fmt(got, sizeof(got));
                ds_fmt_u64(&f, v, width);
                int gl = ds_fmt_end(&f);
                cr_assert_eq(gl, wl, "%" PRIu64 " width %d: length %d, snprintf %d", v, width, gl, wl);
                cr_assert_str_eq(got, want, "%" PRIu64 " width %d", v, width);
        }
}

Test(fmt, signed_is_snprintf) {
        for (int i = 0; i < 20000; i++) {
                int64_t v = (int64_t)rnd_value(i);
                if (i % 3 == 0 && v != INT64_MIN)
                        v = -v;
                if (i == 1)
                        v = INT64_MIN;
                char want[64], got[64];
                int wl = snprintf(want, sizeof(want), "%" PRId64, v);
                ds_fmt_t f = ds_fmt(got, sizeof(got));
                ds_fmt_i64(&f, v);
                cr_assert_eq(ds_fmt_end(&f), wl);
                cr_assert_str_eq(got, want);
        }
}

/* Every buffer size from 0 to past the text: the same bytes, the same
 * returned length, nothing written past size. */
Test(fmt, truncation_is_snprintf) {
        for (size_t size = 0; size < 40; size++) {
                char want[48], got[48];
                memset(want, 'x', sizeof(want));
                memset(got, 'x', sizeof(got));
                int wl = snprintf(want, size, "%s|%0*u|%" PRId64, "MONGCAI", 4, 801u, (int64_t)-1735689600000);
                ds_fmt_t f = ds_fmt(got, size);
                ds_fmt_str(&f, "MONGCAI");
                ds_fmt_char(&f, '|');
                ds_fmt_u64(&f, 801, 4);
                ds_fmt_char(&f, '|');
                ds_fmt_i64(&f, -1735689600000);
                cr_assert_eq(ds_fmt_end(&f), wl, "size %zu", size);
                cr_assert_arr_eq(got, want, sizeof(got), "size %zu", size);
        }
}

static const ds_dim_t dims[] = {DS_DIM_GATE, DS_DIM_COMMODITY, DS_DIM_GATE_HEADING};

static ds_rowkey_t rnd_key(int digits) {
        ds_dim_t dim = dims[rnd() % 3];
        uint32_t heading = (uint32_t)(rnd() % 100000000u) % (digits == 8 ? 100000000u : digits == 6 ? 1000000u
                                                                                    : digits == 4   ? 10000u
                                                                                                    : 100u);
        /* some beyond the gate table: "?" */
        uint32_t gate = (uint32_t)(rnd() % (uint64_t)(ds_gate_count() + 4));
        ds_window_t w = (ds_window_t)(rnd() % DS_WIN__CNT);
        int64_t start = w == DS_WIN_TOTAL ? 0 : (int64_t)(rnd() % 4000000000000ULL) - 1000000000000LL;
        if (dim == DS_DIM_GATE_HEADING) {
                ds_rowkey_t k = ds_cell_rowkey(gate, heading, start);
                k.k = (k.k & ~(7ULL << 59)) | (uint64_t)w << 59;
                return k;
        }
        return ds_rowkey(dim, w, dim == DS_DIM_GATE ? gate : heading, start);
}

static void old_key_text(ds_rowkey_t k, int digits, char *buf, size_t size) {
        uint32_t key = ds_rowkey_key(k);
        const ds_gate_t *g;
        switch (ds_rowkey_dim(k)) {
        case DS_DIM_GATE:
                g = ds_gate((int)key);
                snprintf(buf, size, "%s", g ? g->code : "?");
                break;
        case DS_DIM_COMMODITY:
                snprintf(buf, size, "%0*u", digits, key);
                break;
        default:
                g = ds_gate((int)ds_cell_gate(k));
                snprintf(buf, size, "%s|%0*u", g ? g->code : "?", digits, ds_cell_heading(k));
        }
}

static void setup(void) {
        ds_domain_init();
        cr_assert_lt(ds_gate_count() + 4, 32, "cell keys hold the gate in 5 bits");
}

Test(fmt, total_keys_are_the_format_they_had, .init = setup) {
        static const int digit_choices[] = {2, 4, 6, 8};
        for (int i = 0; i < 20000; i++) {
                int digits = digit_choices[rnd() % 4];
                ds_rowkey_t k = rnd_key(digits);
                if (ds_rowkey_dim(k) == DS_DIM_GATE_HEADING)
                        continue; /* totals are GATE and COMMODITY rows */
                char kt[24], want[96], got[96], text[24];
                old_key_text(k, digits, kt, sizeof(kt));
                int wl = snprintf(want, sizeof(want), "%s|%s|%s|%" PRId64, ds_dim_name(ds_rowkey_dim(k)), kt,
                                  ds_window_name(ds_rowkey_window(k)), k.start);
                cr_assert_eq(ds_total_key(k, digits, got, sizeof(got)), wl);
                cr_assert_str_eq(got, want);
                cr_assert_eq(ds_row_keytext(k, digits, text, sizeof(text)), (int)strlen(kt));
                cr_assert_str_eq(text, kt);
        }
}
