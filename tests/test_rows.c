/*
 * test_rows.c - the aggregate row table: lookup, removal, growth, the dirty
 * list, and a randomized comparison with a plain reference model.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ds_common.h"
#include "ds_rows.h"

static ds_rowkey_t gate_key(uint32_t k) {
        return ds_rowkey(DS_DIM_GATE, DS_WIN_TOTAL, k, 0);
}

Test(rows, get_inserts_a_zero_row_once) {
        ds_rows_t *t = ds_rows_new(4);
        cr_assert_not_null(t);
        cr_assert_eq(ds_rows_count(t), 0);
        ds_row_t *r = ds_rows_get(t, gate_key(7));
        cr_assert_not_null(r);
        cr_assert(ds_measures_is_zero(&r->m));
        cr_assert_eq(r->dirty, 0);
        cr_assert_eq(r->live, 1);
        cr_assert_null(r->aux);
        cr_assert_eq(r->key.k, gate_key(7).k);
        r->m.value = 1234;
        cr_assert_eq(ds_rows_get(t, gate_key(7)), r);
        cr_assert_eq(ds_rows_get(t, gate_key(7))->m.value, 1234);
        cr_assert_eq(ds_rows_count(t), 1);
        ds_rows_destroy(t);
}

Test(rows, find_does_not_insert) {
        ds_rows_t *t = ds_rows_new(0);
        cr_assert_null(ds_rows_find(t, gate_key(1)));
        cr_assert_eq(ds_rows_count(t), 0);
        ds_row_t *r = ds_rows_get(t, gate_key(1));
        cr_assert_eq(ds_rows_find(t, gate_key(1)), r);
        cr_assert_null(ds_rows_find(t, gate_key(2)));
        ds_rows_destroy(t);
}

Test(rows, every_part_of_the_key_tells_rows_apart) {
        ds_rows_t *t = ds_rows_new(16);
        ds_rowkey_t keys[] = {
            ds_rowkey(DS_DIM_GATE, DS_WIN_TOTAL, 3, 0),
            ds_rowkey(DS_DIM_COMMODITY, DS_WIN_TOTAL, 3, 0),
            ds_rowkey(DS_DIM_GATE_HEADING, DS_WIN_DAY, 3, 0),
            ds_rowkey(DS_DIM_GATE, DS_WIN_MINUTE, 3, 0),
            ds_rowkey(DS_DIM_GATE, DS_WIN_MINUTE, 3, 60000),
            ds_rowkey(DS_DIM_GATE, DS_WIN_MINUTE, 3, -60000),
            ds_rowkey(DS_DIM_GATE, DS_WIN_TOTAL, 4, 0),
            ds_rowkey_with_partition(ds_rowkey(DS_DIM_GATE, DS_WIN_TOTAL, 3, 0), 0),
            ds_rowkey_with_partition(ds_rowkey(DS_DIM_GATE, DS_WIN_TOTAL, 3, 0), 11),
            ds_rowkey(DS_DIM_COMMODITY, DS_WIN_TOTAL, 0xffffffffu, 0),
        };
        for (size_t i = 0; i < DS_ARRAY_LEN(keys); i++)
                ds_rows_get(t, keys[i])->m.value = (int64_t)i + 1;
        cr_assert_eq(ds_rows_count(t), DS_ARRAY_LEN(keys));
        for (size_t i = 0; i < DS_ARRAY_LEN(keys); i++) {
                ds_row_t *r = ds_rows_find(t, keys[i]);
                cr_assert_not_null(r, "key %zu", i);
                cr_assert_eq(r->m.value, (int64_t)i + 1, "key %zu", i);
        }
        ds_rows_destroy(t);
}

Test(rows, rowkey_packs_and_unpacks_its_parts) {
        ds_rowkey_t k = ds_rowkey(DS_DIM_COMMODITY, DS_WIN_HOUR, 0x12345678u, 3600000);
        cr_assert_eq(ds_rowkey_dim(k), DS_DIM_COMMODITY);
        cr_assert_eq(ds_rowkey_window(k), DS_WIN_HOUR);
        cr_assert_eq(ds_rowkey_key(k), 0x12345678u);
        cr_assert_eq(ds_rowkey_partition(k), -1);
        ds_rowkey_t p = ds_rowkey_with_partition(k, 65534);
        cr_assert_eq(ds_rowkey_partition(p), 65534);
        cr_assert_eq(ds_rowkey_dim(p), DS_DIM_COMMODITY);
        cr_assert_eq(ds_rowkey_window(p), DS_WIN_HOUR);
        cr_assert_eq(ds_rowkey_key(p), 0x12345678u);
        cr_assert_eq(ds_rowkey_without_partition(p).k, k.k);
        cr_assert_eq(ds_rowkey_partition(ds_rowkey_with_partition(k, 0)), 0);
        ds_rowkey_t cell = ds_cell_rowkey(15, 81041000, 7);
        cr_assert_eq(ds_cell_gate(cell), 15);
        cr_assert_eq(ds_cell_heading(cell), 81041000);
        cr_assert_eq(ds_rowkey_dim(cell), DS_DIM_GATE_HEADING);
        cr_assert_eq(ds_rowkey_window(cell), DS_WIN_DAY);
        cr_assert_eq(cell.start, 7);
        /* gates below 32 keep the layout of changelogs written before gate files */
        cr_assert_eq(ds_rowkey_key(cell), 15u << 27 | 81041000u);
        cr_assert_eq(cell.k >> 32 & 0xffffffu, 0);
        /* the largest gate and heading, with a partition: nothing overlaps */
        ds_rowkey_t big = ds_rowkey_with_partition(ds_cell_rowkey(65535, 99999999, 7), 65534);
        cr_assert_eq(ds_cell_gate(big), 65535);
        cr_assert_eq(ds_cell_heading(big), 99999999);
        cr_assert_eq(ds_rowkey_partition(big), 65534);
        cr_assert_eq(ds_rowkey_dim(big), DS_DIM_GATE_HEADING);
        cr_assert_eq(ds_rowkey_window(big), DS_WIN_DAY);
        cr_assert_eq(ds_cell_gate(ds_rowkey_without_partition(big)), 65535);
        for (uint32_t g = 0; g < 4096; g += 37)
                cr_assert_eq(ds_cell_gate(ds_cell_rowkey(g, 1234, 0)), g);
}

Test(rows, remove_forgets_the_row_and_keeps_the_others) {
        ds_rows_t *t = ds_rows_new(8);
        for (uint32_t i = 0; i < 1000; i++)
                ds_rows_get(t, gate_key(i))->m.items = i;
        for (uint32_t i = 0; i < 1000; i += 3)
                ds_rows_remove(t, gate_key(i));
        ds_rows_remove(t, gate_key(5000)); /* absent: nothing happens */
        ds_rows_remove(t, gate_key(0));    /* already removed */
        cr_assert_eq(ds_rows_count(t), 1000 - 334);
        for (uint32_t i = 0; i < 1000; i++) {
                ds_row_t *r = ds_rows_find(t, gate_key(i));
                if (i % 3 == 0) {
                        cr_assert_null(r, "row %u still there", i);
                } else {
                        cr_assert_not_null(r, "row %u lost", i);
                        cr_assert_eq(r->m.items, i);
                }
        }
        /* re-inserted rows start from zero */
        ds_row_t *r = ds_rows_get(t, gate_key(3));
        cr_assert(ds_measures_is_zero(&r->m));
        cr_assert_eq(ds_rows_count(t), 1000 - 333);
        ds_rows_destroy(t);
}

Test(rows, growth_past_many_rehashes_keeps_every_row) {
        ds_rows_t *t = ds_rows_new(1);
        const uint32_t n = 200000;
        size_t mem0 = ds_rows_memory(t);
        for (uint32_t i = 0; i < n; i++) {
                ds_row_t *r = ds_rows_get(t, ds_rowkey(i % 2 ? DS_DIM_COMMODITY : DS_DIM_GATE, DS_WIN_MINUTE, i,
                                                       (int64_t)(i % 7) * 60000));
                cr_assert_not_null(r);
                cr_assert(ds_measures_is_zero(&r->m), "row %u is not new", i);
                r->m.value = (int64_t)i * 3 + 1;
        }
        cr_assert_eq(ds_rows_count(t), n);
        for (uint32_t i = 0; i < n; i++) {
                ds_row_t *r = ds_rows_find(t, ds_rowkey(i % 2 ? DS_DIM_COMMODITY : DS_DIM_GATE, DS_WIN_MINUTE, i,
                                                        (int64_t)(i % 7) * 60000));
                cr_assert_not_null(r, "row %u lost", i);
                cr_assert_eq(r->m.value, (int64_t)i * 3 + 1);
        }
        size_t mem = ds_rows_memory(t);
        cr_assert_gt(mem, mem0);
        /* about 120 bytes per row at full load; twice that right after a doubling */
        cr_assert_lt(mem, (size_t)n * 260, "%zu bytes for %u rows", mem, n);
        cr_assert_gt(mem, (size_t)n * sizeof(ds_row_t));
        ds_rows_destroy(t);
}

Test(rows, iteration_visits_every_live_row_once) {
        ds_rows_t *t = ds_rows_new(8);
        for (uint32_t i = 0; i < 500; i++)
                ds_rows_get(t, gate_key(i));
        for (uint32_t i = 0; i < 500; i += 2)
                ds_rows_remove(t, gate_key(i));
        static uint8_t seen[500];
        uint32_t cur = 0, n = 0;
        ds_row_t *r;
        while ((r = ds_rows_iter(t, &cur))) {
                uint32_t k = ds_rowkey_key(r->key);
                cr_assert_lt(k, 500);
                cr_assert_eq(k % 2, 1, "removed row %u visited", k);
                cr_assert_eq(seen[k]++, 0, "row %u visited twice", k);
                n++;
        }
        cr_assert_eq(n, 250);
        ds_rows_destroy(t);
}

/* ---- dirty list ----------------------------------------------------------- */

/* The live rows of the dirty list, checking none appears twice. */
static uint32_t dirty_rows(ds_rows_t *t, ds_row_t **out, uint32_t max) {
        uint32_t n = 0;
        for (uint32_t i = 0; i < ds_rows_dirty_count(t); i++) {
                ds_row_t *r = ds_rows_dirty_at(t, i);
                if (!r)
                        continue;
                cr_assert(r->live && r->dirty, "dirty_at returned a row that is not live and dirty");
                for (uint32_t j = 0; j < n; j++)
                        cr_assert_neq(out[j], r, "row %u twice on the dirty list", ds_rowkey_key(r->key));
                cr_assert_lt(n, max);
                out[n++] = r;
        }
        return n;
}

Test(rows, mark_puts_a_row_on_the_dirty_list_once) {
        ds_rows_t *t = ds_rows_new(8);
        ds_row_t *a = ds_rows_get(t, gate_key(1));
        ds_rows_mark(t, a);
        ds_rows_mark(t, a);
        ds_rows_mark(t, a);
        cr_assert_eq(ds_rows_dirty_count(t), 1);
        cr_assert_eq(ds_rows_dirty_at(t, 0), a);
        cr_assert_eq(a->dirty, 1);
        ds_row_t *b = ds_rows_get(t, gate_key(2));
        a = ds_rows_find(t, gate_key(1)); /* re-fetch after inserting */
        ds_rows_mark(t, b);
        cr_assert_eq(ds_rows_dirty_count(t), 2);
        ds_row_t *got[4];
        cr_assert_eq(dirty_rows(t, got, 4), 2);
        ds_rows_destroy(t);
}

Test(rows, clear_dirty_empties_the_list_and_the_flags) {
        ds_rows_t *t = ds_rows_new(8);
        for (uint32_t i = 0; i < 100; i++)
                ds_rows_mark(t, ds_rows_get(t, gate_key(i)));
        cr_assert_eq(ds_rows_dirty_count(t), 100);
        ds_rows_clear_dirty(t);
        cr_assert_eq(ds_rows_dirty_count(t), 0);
        for (uint32_t i = 0; i < 100; i++)
                cr_assert_eq(ds_rows_find(t, gate_key(i))->dirty, 0, "row %u still flagged", i);
        /* and rows can be marked again */
        ds_row_t *r = ds_rows_find(t, gate_key(42));
        ds_rows_mark(t, r);
        cr_assert_eq(ds_rows_dirty_count(t), 1);
        cr_assert_eq(ds_rows_dirty_at(t, 0), r);
        ds_rows_destroy(t);
}

Test(rows, removed_rows_are_skipped_on_the_dirty_list) {
        ds_rows_t *t = ds_rows_new(8);
        for (uint32_t i = 0; i < 10; i++)
                ds_rows_get(t, gate_key(i));
        for (uint32_t i = 0; i < 10; i++)
                ds_rows_mark(t, ds_rows_find(t, gate_key(i)));
        ds_rows_remove(t, gate_key(3));
        ds_rows_remove(t, gate_key(7));
        ds_row_t *got[16];
        uint32_t n = dirty_rows(t, got, 16);
        cr_assert_eq(n, 8);
        for (uint32_t i = 0; i < n; i++) {
                uint32_t k = ds_rowkey_key(got[i]->key);
                cr_assert(k != 3 && k != 7, "removed row %u on the dirty list", k);
        }
        ds_rows_destroy(t);
}

Test(rows, removed_slot_is_not_reused_before_clear_dirty) {
        ds_rows_t *t = ds_rows_new(8);
        ds_row_t *a = ds_rows_get(t, gate_key(1));
        ds_rows_mark(t, a);
        ds_rows_remove(t, gate_key(1));
        /* new rows, marked: each must appear once, and row 1 not at all */
        for (uint32_t i = 100; i < 110; i++)
                ds_rows_mark(t, ds_rows_get(t, gate_key(i)));
        ds_row_t *got[32];
        uint32_t n = dirty_rows(t, got, 32);
        cr_assert_eq(n, 10);
        for (uint32_t i = 0; i < n; i++)
                cr_assert_neq(ds_rowkey_key(got[i]->key), 1);
        /* the same key inserted again and marked: once */
        ds_rows_mark(t, ds_rows_get(t, gate_key(1)));
        cr_assert_eq(dirty_rows(t, got, 32), 11);
        ds_rows_destroy(t);
}

Test(rows, slots_are_reused_after_clear_dirty) {
        ds_rows_t *t = ds_rows_new(2000);
        for (uint32_t i = 0; i < 1000; i++)
                ds_rows_mark(t, ds_rows_get(t, gate_key(i)));
        ds_rows_clear_dirty(t);
        size_t mem = 0;
        for (int round = 0; round < 20; round++) {
                if (round == 1)
                        mem = ds_rows_memory(t); /* the free list exists from the first removals on */
                for (uint32_t i = 0; i < 1000; i++)
                        ds_rows_remove(t, gate_key(i + (uint32_t)round * 1000));
                cr_assert_eq(ds_rows_count(t), 0);
                ds_rows_clear_dirty(t);
                for (uint32_t i = 0; i < 1000; i++)
                        ds_rows_mark(t, ds_rows_get(t, gate_key(i + (uint32_t)(round + 1) * 1000)));
                cr_assert_eq(ds_rows_count(t), 1000);
                ds_rows_clear_dirty(t);
        }
        /* 20,000 rows went through 1,000 slots: the table did not grow after round 0 */
        cr_assert_eq(ds_rows_memory(t), mem, "memory grew from %zu to %zu", mem, ds_rows_memory(t));
        ds_rows_destroy(t);
}

static int aux_freed;
static void free_aux(void *p) {
        aux_freed++;
        free(p);
}

Test(rows, destroy_with_frees_the_aux_of_live_rows) {
        ds_rows_t *t = ds_rows_new(8);
        for (uint32_t i = 0; i < 10; i++)
                ds_rows_get(t, gate_key(i))->aux = malloc(16);
        for (uint32_t i = 0; i < 3; i++) {
                ds_row_t *r = ds_rows_find(t, gate_key(i));
                free(r->aux); /* the user frees the aux of a row it removes */
                ds_rows_remove(t, gate_key(i));
        }
        aux_freed = 0;
        ds_rows_destroy_with(t, free_aux);
        cr_assert_eq(aux_freed, 7);
}

/* ---- randomized, against a reference model --------------------------------- */

#define NKEYS 3000

typedef struct model {
        uint8_t live[NKEYS];
        uint8_t dirty[NKEYS];
        int64_t value[NKEYS];
} model_t;

static ds_rowkey_t mkey(uint32_t i) {
        /* spread over dims, windows and starts; the same i is always the same key */
        return ds_rowkey((ds_dim_t)(i % 3), (ds_window_t)(i % 4), i * 2654435761u, (int64_t)(i % 5) * 3600000);
}

static uint64_t rs = 77;
static uint32_t rnd(uint32_t n) {
        rs ^= rs << 13;
        rs ^= rs >> 7;
        rs ^= rs << 17;
        return (uint32_t)(rs % n);
}

static void check_model(ds_rows_t *t, const model_t *m, long step) {
        uint32_t live = 0;
        for (uint32_t i = 0; i < NKEYS; i++) {
                ds_row_t *r = ds_rows_find(t, mkey(i));
                if (m->live[i]) {
                        live++;
                        cr_assert_not_null(r, "step %ld: key %u lost", step, i);
                        cr_assert_eq(r->m.value, m->value[i], "step %ld: key %u has %lld, want %lld", step, i,
                                     (long long)r->m.value, (long long)m->value[i]);
                        cr_assert_eq(r->dirty, m->dirty[i], "step %ld: key %u dirty flag", step, i);
                } else {
                        cr_assert_null(r, "step %ld: removed key %u found", step, i);
                }
        }
        cr_assert_eq(ds_rows_count(t), live, "step %ld", step);
        static ds_row_t *got[NKEYS];
        uint32_t n = dirty_rows(t, got, NKEYS), want = 0;
        for (uint32_t i = 0; i < NKEYS; i++)
                want += m->dirty[i];
        cr_assert_eq(n, want, "step %ld: %u rows on the dirty list, model has %u", step, n, want);
        for (uint32_t k = 0; k < n; k++) {
                uint32_t i = (uint32_t)(ds_rowkey_key(got[k]->key) * 244002641u); /* inverse of 2654435761 mod 2^32 */
                cr_assert_lt(i, NKEYS);
                cr_assert(m->dirty[i], "step %ld: key %u on the dirty list, not dirty in the model", step, i);
        }
}

Test(rows, random_operations_match_a_reference_model) {
        static model_t m;
        ds_rows_t *t = ds_rows_new(4);
        cr_assert_eq(2654435761u * 244002641u, 1u, "test bug: wrong inverse");
        const long steps = 100000;
        for (long s = 0; s < steps; s++) {
                uint32_t op = rnd(100), i = rnd(s < steps / 2 ? NKEYS : NKEYS / 3);
                if (op < 45) { /* get, and add to the value */
                        ds_row_t *r = ds_rows_get(t, mkey(i));
                        cr_assert_not_null(r);
                        if (!m.live[i]) {
                                cr_assert(ds_measures_is_zero(&r->m), "step %ld: new row %u not zero", s, i);
                                cr_assert_eq(r->dirty, 0);
                                m.live[i] = 1;
                                m.value[i] = 0;
                        }
                        r->m.value += s;
                        m.value[i] += s;
                        if (op < 30) {
                                ds_rows_mark(t, r);
                                m.dirty[i] = 1;
                        }
                } else if (op < 80) {
                        ds_rows_remove(t, mkey(i));
                        m.live[i] = 0;
                        m.dirty[i] = 0;
                } else if (op < 82) {
                        ds_rows_clear_dirty(t);
                        memset(m.dirty, 0, sizeof(m.dirty));
                } else {
                        ds_row_t *r = ds_rows_find(t, mkey(i));
                        cr_assert_eq(r != NULL, m.live[i], "step %ld: find(%u)", s, i);
                        if (r && op < 90) {
                                ds_rows_mark(t, r);
                                m.dirty[i] = 1;
                        }
                }
                if (s % 5000 == 0)
                        check_model(t, &m, s);
        }
        check_model(t, &m, steps);
        ds_rows_destroy(t);
}

/* Two tables given the same operations hold the same rows in the same
 * slots of the dense array, in the same order, with the same values. */
static void assert_same_rows(ds_rows_t *one, ds_rows_t *many) {
        uint32_t ca = 0, cb = 0;
        ds_row_t *a, *b;
        while ((a = ds_rows_iter(one, &ca))) {
                b = ds_rows_iter(many, &cb);
                cr_assert_not_null(b);
                cr_assert_eq(ca, cb, "rows in different slots");
                cr_assert(a->key.k == b->key.k && a->key.start == b->key.start, "rows in a different order");
                cr_assert_eq(a->m.value, b->m.value);
        }
        cr_assert_null(ds_rows_iter(many, &cb));
}

/* ds_rows_get_many() (and ds_rows_get_hashed()) must do exactly what one
 * ds_rows_get() per key in order does: the same rows, created in the same
 * order in the same slots of the dense array - with keys repeated within a
 * batch, batches that grow the index and the row array midway, and removed
 * slots reused. */
Test(rows, get_many_matches_one_get_per_key) {
        ds_rows_t *one = ds_rows_new(4), *many = ds_rows_new(4);
        static ds_rowkey_t keys[DS_ROWS_MANY_MAX];
        static ds_row_t *out[DS_ROWS_MANY_MAX];
        static uint32_t hs[DS_ROWS_MANY_MAX];
        rs = 12345;
        for (int batch = 0; batch < 2000; batch++) {
                uint32_t n = 1 + rnd(batch < 20 ? DS_ROWS_MANY_MAX : 40);
                for (uint32_t i = 0; i < n; i++)
                        keys[i] = mkey(rnd(batch < 1000 ? NKEYS : NKEYS / 4));
                if (batch % 2) {
                        cr_assert_eq(ds_rows_get_many(many, keys, n, out), 0);
                } else {
                        ds_rows_prefetch_many(many, keys, n, hs);
                        cr_assert_eq(ds_rows_get_hashed(many, keys, hs, n, out), 0);
                }
                for (uint32_t i = 0; i < n; i++) {
                        ds_row_t *r = ds_rows_get(one, keys[i]);
                        cr_assert_not_null(r);
                        cr_assert_eq(out[i], ds_rows_find(many, keys[i]), "batch %d: out[%u] is not its row", batch, i);
                        r->m.value += i + 1;
                        out[i]->m.value += i + 1;
                        ds_rows_mark(one, r);
                        ds_rows_mark(many, out[i]);
                }
                if (batch % 7 == 0) { /* remove some, and let their slots be reused */
                        for (uint32_t k = 0; k < 30; k++) {
                                ds_rowkey_t key = mkey(rnd(NKEYS));
                                ds_rows_remove(one, key);
                                ds_rows_remove(many, key);
                        }
                        ds_rows_clear_dirty(one);
                        ds_rows_clear_dirty(many);
                }
                cr_assert_eq(ds_rows_count(many), ds_rows_count(one), "batch %d", batch);
                cr_assert_eq(ds_rows_dirty_count(many), ds_rows_dirty_count(one), "batch %d", batch);
                for (uint32_t d = 0; d < ds_rows_dirty_count(one); d++) {
                        ds_row_t *a = ds_rows_dirty_at(one, d), *b = ds_rows_dirty_at(many, d);
                        cr_assert_eq(a != NULL, b != NULL);
                        cr_assert(!a || (a->key.k == b->key.k && a->key.start == b->key.start),
                                  "batch %d: dirty list differs at %u", batch, d);
                }
        }
        assert_same_rows(one, many);
        cr_assert_eq(ds_rows_memory(many), ds_rows_memory(one));
        ds_rows_destroy(one);
        ds_rows_destroy(many);
}

/* Rows never move: a pointer taken when a row was created still is that
 * row after the table has grown many times (segments of 64, 128, 256 ...
 * rows: the rows either side of every segment boundary are checked), and
 * the dirty list, which names rows by number, finds them all. */
Test(rows, rows_stay_in_place_as_the_table_grows) {
        ds_rows_t *t = ds_rows_new(1);
        const uint32_t n = 70000;
        ds_row_t **at = malloc(n * sizeof(*at));
        for (uint32_t i = 0; i < n; i++) {
                at[i] = ds_rows_get(t, ds_rowkey(DS_DIM_COMMODITY, DS_WIN_HOUR, i, 3600000));
                cr_assert_not_null(at[i]);
                at[i]->m.items = i;
                ds_rows_mark(t, at[i]);
        }
        for (uint32_t i = 0; i < n; i++) {
                cr_assert_eq(ds_rows_find(t, ds_rowkey(DS_DIM_COMMODITY, DS_WIN_HOUR, i, 3600000)), at[i],
                             "row %u moved", i);
                cr_assert_eq(at[i]->m.items, (int64_t)i);
        }
        cr_assert_eq(ds_rows_dirty_count(t), n);
        for (uint32_t i = 0; i < n; i++)
                cr_assert_eq(ds_rows_dirty_at(t, i), at[i], "dirty entry %u names another row", i);
        /* a segment boundary: rows 63/64 (first/second segment), 191/192, ... */
        for (uint32_t b = 64; b <= n; b = 2 * b + 64) {
                cr_expect_eq(ds_rows_dirty_at(t, b - 1)->m.items, (int64_t)b - 1);
                cr_expect_eq(ds_rows_dirty_at(t, b)->m.items, (int64_t)b);
        }
        ds_rows_clear_dirty(t);
        uint32_t cur = 0, seen = 0;
        for (ds_row_t *r; (r = ds_rows_iter(t, &cur));) {
                cr_assert_eq(r, at[seen], "iteration out of row order at %u", seen);
                cr_assert_eq(r->dirty, 0);
                seen++;
        }
        cr_assert_eq(seen, n);
        free(at);
        ds_rows_destroy(t);
}

/* ds_rows_remove_many() must do exactly what one ds_rows_remove() per key in
 * order does - with keys repeated within a batch (the second finds nothing),
 * absent keys, batches shorter and longer than its look-ahead, and long probe
 * runs (a table grown to many keys, then shrunk) - and call fn once for each
 * row it removes, in key order, while the row is still in the table. */
typedef struct taken {
        ds_rows_t *t;
        uint32_t n;
        ds_rowkey_t keys[DS_ROWS_MANY_MAX];
        int64_t values[DS_ROWS_MANY_MAX];
} taken_t;

static void take(void *ctx, ds_row_t *r) {
        taken_t *tk = ctx;
        cr_assert_eq(ds_rows_find(tk->t, r->key), r, "fn called on a row no longer in the table");
        cr_assert_lt(tk->n, DS_ROWS_MANY_MAX);
        tk->keys[tk->n] = r->key;
        tk->values[tk->n++] = r->m.value;
}

Test(rows, remove_many_matches_one_remove_per_key) {
        ds_rows_t *one = ds_rows_new(4), *many = ds_rows_new(4);
        static ds_rowkey_t keys[DS_ROWS_MANY_MAX];
        static taken_t tk;
        rs = 4242;
        for (int batch = 0; batch < 3000; batch++) {
                uint32_t range = batch % 500 < 250 ? NKEYS : NKEYS / 8; /* long runs, then sparse ones */
                for (uint32_t k = 0, add = rnd(batch % 500 < 250 ? 200 : 40); k < add; k++) {
                        uint32_t i = rnd(range);
                        ds_row_t *a = ds_rows_get(one, mkey(i)), *b = ds_rows_get(many, mkey(i));
                        cr_assert(a && b);
                        a->m.value += i + 1;
                        b->m.value += i + 1;
                        if (k % 3 == 0) {
                                ds_rows_mark(one, a);
                                ds_rows_mark(many, b);
                        }
                }
                uint32_t n = rnd(batch < 30 ? DS_ROWS_MANY_MAX : 40); /* 0 too */
                for (uint32_t i = 0; i < n; i++)
                        keys[i] = i && rnd(8) == 0 ? keys[rnd(i)] : mkey(rnd(range));
                /* what one remove per key takes: the keys present at their turn */
                uint32_t want = 0;
                ds_rowkey_t want_keys[DS_ROWS_MANY_MAX];
                int64_t want_values[DS_ROWS_MANY_MAX];
                for (uint32_t i = 0; i < n; i++) {
                        ds_row_t *r = ds_rows_find(one, keys[i]);
                        if (r) {
                                want_keys[want] = r->key;
                                want_values[want++] = r->m.value;
                        }
                        ds_rows_remove(one, keys[i]);
                }
                tk.t = many;
                tk.n = 0;
                uint64_t got = ds_rows_remove_many(many, keys, n, batch % 5 ? take : NULL, &tk);
                cr_assert_eq(got, want, "batch %d: %llu removed, %u expected", batch, (unsigned long long)got, want);
                if (batch % 5) {
                        cr_assert_eq(tk.n, want, "batch %d: fn called %u times for %u rows", batch, tk.n, want);
                        for (uint32_t i = 0; i < want; i++) {
                                cr_assert(tk.keys[i].k == want_keys[i].k && tk.keys[i].start == want_keys[i].start,
                                          "batch %d: row %u taken out of order", batch, i);
                                cr_assert_eq(tk.values[i], want_values[i]);
                        }
                }
                cr_assert_eq(ds_rows_count(many), ds_rows_count(one), "batch %d", batch);
                cr_assert_eq(ds_rows_dirty_count(many), ds_rows_dirty_count(one), "batch %d", batch);
                for (uint32_t d = 0; d < ds_rows_dirty_count(one); d++)
                        cr_assert_eq(ds_rows_dirty_at(one, d) != NULL, ds_rows_dirty_at(many, d) != NULL,
                                     "batch %d: dirty entry %u", batch, d);
                if (batch % 3 == 0) {
                        ds_rows_clear_dirty(one);
                        ds_rows_clear_dirty(many);
                }
                if (batch % 100 == 99) /* every key still findable, in the same slot */
                        for (uint32_t i = 0; i < NKEYS; i++) {
                                ds_row_t *a = ds_rows_find(one, mkey(i)), *b = ds_rows_find(many, mkey(i));
                                cr_assert_eq(a != NULL, b != NULL, "batch %d: key %u", batch, i);
                                cr_assert(!a || a->m.value == b->m.value);
                        }
        }
        assert_same_rows(one, many); /* removed slots were reused alike */
        ds_rows_destroy(one);
        ds_rows_destroy(many);
}
