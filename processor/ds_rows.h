/*
 * ds_rows.h - a table of aggregate rows: key -> measures, with a dirty list.
 *
 * Used for a partition's aggregates (one writer: the worker that owns the
 * partition) and for the merged global view (one writer: the publisher).
 * Rows live in segments that double in size and never move, so a pointer
 * from ds_rows_get() stays valid until the row is removed or the table is
 * destroyed, insertions and index growth notwithstanding. The
 * index is open addressing with linear probing over 64-bit slots holding the
 * row number and 32 bits of the hash, so a probe rarely touches a row that
 * is not the one sought; removal is backward-shift (no tombstones).
 *
 * Cost: 104 bytes per row + 8 bytes per index slot (load <= 1/2): about
 * 120 bytes per row.
 *
 * @locality one thread at a time; no internal locking.
 */
#ifndef DS_ROWS_H
#define DS_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "ds_decl.h"

/* GATE and COMMODITY rows are published as vn.customs.Total; GATE_HEADING
 * cells (gate x heading, DAY windows) are internal: they feed the top
 * headings per gate and day. */
typedef enum { DS_DIM_GATE = 0, DS_DIM_COMMODITY, DS_DIM_GATE_HEADING, DS_DIM__CNT } ds_dim_t;
typedef enum { DS_WIN_TOTAL = 0, DS_WIN_MINUTE, DS_WIN_HOUR, DS_WIN_DAY, DS_WIN__CNT } ds_window_t;

/* k: dim (2 bits) | window (3 bits) | cell gate high bits (11 bits, GATE_HEADING
 * only, else 0) | partition + 1 (16 bits, 0 = none) | key (32 bits). */
typedef struct ds_rowkey {
        uint64_t k;
        int64_t start; /* window start, ms since the epoch; 0 for TOTAL */
} ds_rowkey_t;

static inline ds_rowkey_t ds_rowkey(ds_dim_t dim, ds_window_t win, uint32_t key, int64_t start) {
        return (ds_rowkey_t){(uint64_t)dim << 62 | (uint64_t)win << 59 | key, start};
}
static inline ds_rowkey_t ds_rowkey_with_partition(ds_rowkey_t k, int32_t partition) {
        k.k = (k.k & ~(0xffffULL << 32)) | (uint64_t)(((uint32_t)partition + 1) & 0xffff) << 32;
        return k;
}
static inline ds_rowkey_t ds_rowkey_without_partition(ds_rowkey_t k) {
        k.k &= ~(0xffffULL << 32);
        return k;
}
static inline ds_dim_t ds_rowkey_dim(ds_rowkey_t k) { return (ds_dim_t)(k.k >> 62); }
/* A GATE_HEADING cell's key: the heading in the key's low 27 bits (8 HS
 * digits need them), the gate's low 5 bits over it and the gate's upper 11
 * bits in bits 48..58 of the key word - so gates 0..31 keep the layout
 * changelogs were written with before gates files allowed more. */
static inline ds_rowkey_t ds_cell_rowkey(uint32_t gate, uint32_t heading, int64_t day) {
        ds_rowkey_t k = ds_rowkey(DS_DIM_GATE_HEADING, DS_WIN_DAY, (gate & 31) << 27 | heading, day);
        k.k |= (uint64_t)(gate >> 5 & 0x7ff) << 48;
        return k;
}
static inline uint32_t ds_cell_gate(ds_rowkey_t k) { return (uint32_t)k.k >> 27 | (uint32_t)(k.k >> 48 & 0x7ff) << 5; }
static inline uint32_t ds_cell_heading(ds_rowkey_t k) { return (uint32_t)k.k & ((1u << 27) - 1); }
static inline ds_window_t ds_rowkey_window(ds_rowkey_t k) { return (ds_window_t)(k.k >> 59 & 7); }
static inline uint32_t ds_rowkey_key(ds_rowkey_t k) { return (uint32_t)k.k; }
static inline int32_t ds_rowkey_partition(ds_rowkey_t k) { return (int32_t)(k.k >> 32 & 0xffff) - 1; }

typedef struct ds_measures {
        int64_t declarations;
        int64_t items;
        int64_t value;  /* US cents */
        int64_t weight; /* grams */
        int64_t flow_value[DS_FLOW__CNT];
} ds_measures_t;

typedef struct ds_row {
        ds_rowkey_t key;
        ds_measures_t m;
        void *aux;      /* owned by the table's user (e.g. distinct-count sketches); freed by it */
        int64_t seq;    /* free for the table's user (the merge: a share's input offset; a global
                         * row's partitions with a share, a bit per partition modulo 64) */
        uint32_t refs;  /* free for the table's user (agg: registered for eviction; merge: owner epoch) */
        uint16_t dirty; /* 1 while on the dirty list */
        uint16_t live;  /* 0 for a free slot of the dense array */
} ds_row_t;

typedef struct ds_rows ds_rows_t;

ds_rows_t *ds_rows_new(uint32_t initial_rows);
/* Frees the table; free_aux (may be NULL) is called for every live row's aux. */
void ds_rows_destroy(ds_rows_t *t);
void ds_rows_destroy_with(ds_rows_t *t, void (*free_aux)(void *aux));

/* Finds the row, or inserts a zero row. NULL only on out-of-memory. */
ds_row_t *ds_rows_get(ds_rows_t *t, ds_rowkey_t key);
ds_row_t *ds_rows_find(const ds_rows_t *t, ds_rowkey_t key);

/* Most keys one call of ds_rows_get_many() takes. */
#define DS_ROWS_MANY_MAX 256

/* ds_rows_get() of n keys at once (n <= DS_ROWS_MANY_MAX): the index slots
 * of all keys are prefetched first, then the rows they point to, so that
 * the cache misses of one contribution's ~20 rows overlap instead of
 * following one another. out[i] is keys[i]'s row (valid until it is
 * removed). Returns 0, or -1 on out-of-memory. */
int ds_rows_get_many(ds_rows_t *t, const ds_rowkey_t *keys, uint32_t n, ds_row_t **out);

/* The first step of ds_rows_get_many() on its own: hashes[i] is keys[i]'s
 * hash (what ds_rows_get_hashed() wants), and each key's index slot is
 * prefetched. One call for all the keys of a contribution rather than one
 * each: ~5 instructions per key fewer (callgrind, bench_micro apply). */
void ds_rows_prefetch_many(const ds_rows_t *t, const ds_rowkey_t *keys, uint32_t n, uint32_t *hashes);
/* ds_rows_get_many() of keys whose hashes came from ds_rows_prefetch_many();
 * the table may have changed since (the hashes stay valid). */
int ds_rows_get_hashed(ds_rows_t *t, const ds_rowkey_t *keys, const uint32_t *hashes, uint32_t n, ds_row_t **out);
/* The second step of loading a row ahead of a lookup, after
 * ds_rows_prefetch_many() gave the key's hash and started loading its index
 * slot: starts loading the row that slot names (if its tag is the hash's).
 * A hint only: the table may have changed in between. */
void ds_rows_prefetch_row(const ds_rows_t *t, uint32_t hash);
/* Removes the row (and takes it off the dirty list). Its slot is reused only
 * after the next ds_rows_clear_dirty(). */
void ds_rows_remove(ds_rows_t *t, ds_rowkey_t key);
/* ds_rows_remove() of keys[0..n) in order (absent keys are skipped), with
 * fn(ctx, row) called on each row just before it goes (fn may be NULL; it
 * must not change the table). The keys' index slots and rows are loaded
 * ahead, so that their cache misses overlap instead of following one
 * another, and each key is probed once. Returns how many rows it removed. */
typedef void (*ds_rows_take_fn)(void *ctx, ds_row_t *r);
uint64_t ds_rows_remove_many(ds_rows_t *t, const ds_rowkey_t *keys, size_t n, ds_rows_take_fn fn, void *ctx);

/* Puts the row on the dirty list (once). Inline: most rows a contribution
 * touches are on the list already, and that check alone needs no call
 * (~70 instructions per message fewer, callgrind, bench_micro apply). */
void ds_rows_mark_slow(ds_rows_t *t, ds_row_t *r); /* ds_rows_mark() of a row that is not dirty */
static inline void ds_rows_mark(ds_rows_t *t, ds_row_t *r) {
        if (!r->dirty)
                ds_rows_mark_slow(t, r);
}
uint32_t ds_rows_dirty_count(const ds_rows_t *t);
/* i-th dirty row (NULL if it was removed since it was marked). */
ds_row_t *ds_rows_dirty_at(ds_rows_t *t, uint32_t i);
/* Empties the dirty list (clears the rows' flags). */
void ds_rows_clear_dirty(ds_rows_t *t);

uint32_t ds_rows_count(const ds_rows_t *t);
/* Bytes held by the table. */
size_t ds_rows_memory(const ds_rows_t *t);
/* Iteration over live rows: for (i = 0; (r = ds_rows_iter(t, &i)); ) */
ds_row_t *ds_rows_iter(ds_rows_t *t, uint32_t *cursor);

/* sum += now - before, each measure saturating at INT64_MIN/MAX: for a sum
 * of many shares, none bounded above (the merge's global rows). Past
 * saturation the sum is no longer exact, only never wrapped. */
static inline void ds_measures_replace_sat(ds_measures_t *sum, const ds_measures_t *before, const ds_measures_t *now) {
        _Static_assert(sizeof(ds_measures_t) == 8 * sizeof(int64_t), "ds_measures_t: 8 int64 measures");
        int64_t *s = &sum->declarations;
        const int64_t *b = &before->declarations, *n = &now->declarations;
        for (int i = 0; i < 8; i++) {
                int64_t d, t;
                if (__builtin_sub_overflow(n[i], b[i], &d))
                        d = n[i] < b[i] ? INT64_MIN : INT64_MAX;
                if (__builtin_add_overflow(s[i], d, &t))
                        t = d < 0 ? INT64_MIN : INT64_MAX;
                s[i] = t;
        }
}

static inline void ds_measures_add(ds_measures_t *a, const ds_measures_t *b, int64_t sign) {
        a->declarations += sign * b->declarations;
        a->items += sign * b->items;
        a->value += sign * b->value;
        a->weight += sign * b->weight;
        for (int f = 0; f < DS_FLOW__CNT; f++)
                a->flow_value[f] += sign * b->flow_value[f];
}

static inline int ds_measures_is_zero(const ds_measures_t *m) {
        return !(m->declarations | m->items | m->value | m->weight | m->flow_value[0] | m->flow_value[1] |
                 m->flow_value[2] | m->flow_value[3]);
}

#endif
