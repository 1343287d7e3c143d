/*
 * ds_rows.c - open-addressing row table.
 */
#include "ds_rows.h"
#include "ds_common.h"

#include <stdlib.h>
#include <string.h>

/* Index entries hold the row number and the low 32 bits of the key's hash.
 * The slot is chosen by those same low bits (hash & mask), so the home slot
 * of an entry is entry & mask: growing the index and backward-shift removal
 * never load a row to rehash its key (they used to, and on a table of
 * windowed rows - created and evicted all the time - those loads were cache
 * misses). The tag still tells apart entries of one probe run: two keys
 * with the same home share the low log2(slots) bits, and the 32 - log2(slots)
 * above them differ but for one key in 2^(32 - log2(slots)); key_eq decides. */
/* Rows are numbered 0, 1, 2, ... and stored in segments that double in
 * size: segment s holds SEG0 << s rows (64, 128, 256, ...), so that row n
 * is in segment log2(n + SEG0) - log2(SEG0) at n + SEG0 - (SEG0 << s). A
 * new segment is allocated when the rows fill the last one; rows never move.
 * It replaced one array grown by realloc: every doubling copied all the rows
 * into freshly faulted memory, holding the old and the new array at once.
 * callgrind, bench_micro apply (--count 20000): the copies were ~480 of
 * ~4,580 instructions per message; with segments apply takes ~4,280 (of
 * which ~80 are row_number()'s search when a row is first marked dirty).
 * Wall time did not move beyond the noise (user CPU of five paired runs
 * 1.21-1.29 s either way, ~6 % fewer page faults). */
#define SEG0_SHIFT 6
#define SEG0 (1u << SEG0_SHIFT)
#define NSEGS (32 - SEG0_SHIFT)

struct ds_rows {
        uint64_t *index; /* (row number + 1) << 32 | (uint32_t)hash; 0 = empty */
        uint32_t mask;   /* index slots - 1 */
        uint32_t used;   /* live rows */
        ds_row_t *seg[NSEGS];
        uint32_t nseg;
        uint32_t nrows, caprows; /* rows in use (live or free), rows the segments hold */
        uint32_t *freelist; /* [0, nfree): reusable; [nfree, nfree + npending): freed since the
                             * last ds_rows_clear_dirty(), not reused yet because the dirty
                             * list may still name them */
        uint32_t nfree, npending, capfree;
        uint32_t *dirty;
        uint32_t ndirty, capdirty;
};

/* One fmix64 over the key word and the window start spread by a
 * multiplication (Fibonacci hashing): fmix64 avalanches every input bit, so
 * the start needs no mixing of its own (it had one: ~10 instructions per
 * lookup, ~21 lookups per declaration). Keys whose words and spread starts
 * XOR alike would share a hash, which only costs a key comparison. */
static inline uint64_t key_hash(ds_rowkey_t k) {
        return ds_mix64(k.k ^ (uint64_t)k.start * 0x9e3779b97f4a7c15ULL);
}

static inline int key_eq(ds_rowkey_t a, ds_rowkey_t b) {
        return a.k == b.k && a.start == b.start;
}

/* Row number n (n < caprows < 2^32 - SEG0). */
static inline ds_row_t *row_at(const ds_rows_t *t, uint32_t n) {
        uint32_t m = n + SEG0;
        uint32_t s = (uint32_t)(31 - __builtin_clz(m)) - SEG0_SHIFT;
        return &t->seg[s][m - (SEG0 << s)];
}

/* The number of row r: found by its segment, the largest first (it holds
 * half of the rows). */
static uint32_t row_number(const ds_rows_t *t, const ds_row_t *r) {
        for (uint32_t s = t->nseg; s-- > 0;) {
                const ds_row_t *b = t->seg[s];
                if (r >= b && r < b + (SEG0 << s))
                        return (SEG0 << s) - SEG0 + (uint32_t)(r - b);
        }
        abort(); /* not a row of this table */
}

ds_rows_t *ds_rows_new(uint32_t initial) {
        ds_rows_t *t = ds_calloc_lines(sizeof(*t));
        if (!t)
                return NULL;
        uint32_t slots = ds_pow2_ceil(initial < 8 ? 16 : initial * 2);
        t->index = calloc(slots, sizeof(uint64_t));
        t->mask = slots - 1;
        if (!t->index) {
                free(t);
                return NULL;
        }
        return t;
}

void ds_rows_destroy(ds_rows_t *t) {
        ds_rows_destroy_with(t, NULL);
}

void ds_rows_destroy_with(ds_rows_t *t, void (*free_aux)(void *aux)) {
        if (!t)
                return;
        if (free_aux)
                for (uint32_t i = 0; i < t->nrows; i++) {
                        ds_row_t *r = row_at(t, i);
                        if (r->live && r->aux)
                                free_aux(r->aux);
                }
        free(t->index);
        for (uint32_t s = 0; s < t->nseg; s++)
                free(t->seg[s]);
        free(t->freelist);
        free(t->dirty);
        free(t);
}

static int grow_index(ds_rows_t *t) {
        uint32_t slots = (t->mask + 1) * 2;
        uint64_t *idx = calloc(slots, sizeof(uint64_t));
        if (!idx)
                return -1;
        for (uint32_t i = 0; i <= t->mask; i++) {
                uint64_t e = t->index[i];
                if (!e)
                        continue;
                uint32_t s = (uint32_t)e & (slots - 1);
                while (idx[s])
                        s = (s + 1) & (slots - 1);
                idx[s] = e;
        }
        free(t->index);
        t->index = idx;
        t->mask = slots - 1;
        return 0;
}

/* The row of key (hash h) with *slot its index slot, or NULL with *slot the
 * empty slot that ends its probe run: where an insertion puts it. Inline:
 * the lookup of a row that is not in its home slot (a quarter of them at
 * load 1/2) costs no call. */
static inline ds_row_t *probe(const ds_rows_t *t, ds_rowkey_t key, uint32_t h, uint32_t *slot) {
        for (uint32_t s = h & t->mask;; s = (s + 1) & t->mask) {
                uint64_t e = t->index[s];
                *slot = s;
                if (!e)
                        return NULL;
                if ((uint32_t)e == h) {
                        ds_row_t *r = row_at(t, (uint32_t)(e >> 32) - 1);
                        if (key_eq(r->key, key))
                                return r;
                }
        }
}

ds_row_t *ds_rows_find(const ds_rows_t *t, ds_rowkey_t key) {
        uint32_t s;
        return probe(t, key, (uint32_t)key_hash(key), &s);
}

static ds_row_t *insert(ds_rows_t *t, ds_rowkey_t key, uint32_t h, uint32_t s);

ds_row_t *ds_rows_get(ds_rows_t *t, ds_rowkey_t key) {
        uint32_t h = (uint32_t)key_hash(key), s;
        ds_row_t *r = probe(t, key, h, &s);
        return r ? r : insert(t, key, h, s);
}

void ds_rows_prefetch_many(const ds_rows_t *t, const ds_rowkey_t *keys, uint32_t n, uint32_t *hs) {
        const uint64_t *index = t->index;
        uint32_t mask = t->mask;
        for (uint32_t i = 0; i < n; i++) {
                hs[i] = (uint32_t)key_hash(keys[i]);
                __builtin_prefetch(&index[hs[i] & mask]);
        }
}

void ds_rows_prefetch_row(const ds_rows_t *t, uint32_t h) {
        uint64_t e = t->index[h & t->mask];
        if ((uint32_t)e == h && e >> 32)
                __builtin_prefetch(row_at(t, (uint32_t)(e >> 32) - 1));
}

int ds_rows_get_many(ds_rows_t *t, const ds_rowkey_t *keys, uint32_t n, ds_row_t **out) {
        uint32_t hs[DS_ROWS_MANY_MAX];
        if (n > DS_ROWS_MANY_MAX)
                return -1;
        /* 1: every key's home slot */
        ds_rows_prefetch_many(t, keys, n, hs);
        return ds_rows_get_hashed(t, keys, hs, n, out);
}

int ds_rows_get_hashed(ds_rows_t *t, const ds_rowkey_t *keys, const uint32_t *hs, uint32_t n, ds_row_t **out) {
        if (n > DS_ROWS_MANY_MAX)
                return -1;
        /* 2: the row of a home slot whose tag matches (the usual case for a
         * row that exists), NULL if none */
        ds_row_t *hr[DS_ROWS_MANY_MAX];
        const uint64_t *index = t->index;
        uint32_t mask = t->mask;
        for (uint32_t i = 0; i < n; i++) {
                uint64_t e = index[hs[i] & mask];
                hr[i] = NULL;
                if ((uint32_t)e == hs[i] && e >> 32) { /* (an empty slot matches a hash of 0) */
                        hr[i] = row_at(t, (uint32_t)(e >> 32) - 1);
                        __builtin_prefetch(hr[i]);
                }
        }
        /* 3: find or insert. Rows never move and an entry stays valid until
         * its row is removed, so hr[i] is still a live row here even after
         * insertions; when its key is keys[i] that is the row, with no call
         * and no probe - ~20 instructions per row fewer than a probe
         * (callgrind, bench_micro apply). Anything else (another key in the
         * home slot, an insertion) probes; only an insertion makes a call. */
        for (uint32_t i = 0; i < n; i++) {
                ds_row_t *r = hr[i];
                if (DS_LIKELY(r) && key_eq(r->key, keys[i])) {
                        out[i] = r;
                        continue;
                }
                uint32_t s;
                if ((r = probe(t, keys[i], hs[i], &s))) {
                        out[i] = r;
                        continue;
                }
                if (!(r = insert(t, keys[i], hs[i], s)))
                        return -1;
                out[i] = r;
        }
        return 0;
}

/* Inserts key (hash h, not in the table) at slot s, the end of its probe
 * run; a zero row. Out of line: the rare case of a lookup. */
static __attribute__((noinline)) ds_row_t *insert(ds_rows_t *t, ds_rowkey_t key, uint32_t h, uint32_t s) {
        if ((t->used + 1) * 2 > t->mask + 1) {
                if (grow_index(t))
                        return NULL;
                for (s = h & t->mask; t->index[s]; s = (s + 1) & t->mask)
                        ;
        }
        uint32_t rn;
        if (t->nfree) {
                rn = t->freelist[--t->nfree];
                if (t->npending) /* keep the pending run contiguous after the reusable one */
                        t->freelist[t->nfree] = t->freelist[t->nfree + t->npending];
        } else {
                if (t->nrows == t->caprows) {
                        if (t->nseg == NSEGS - 1) /* 2^32 - SEG0 rows: row numbers + 1 must fit 32 bits */
                                return NULL;
                        ds_row_t *seg = malloc((size_t)(SEG0 << t->nseg) * sizeof(ds_row_t));
                        if (!seg)
                                return NULL;
                        t->seg[t->nseg] = seg;
                        t->caprows += SEG0 << t->nseg;
                        t->nseg++;
                }
                rn = t->nrows++;
        }
        ds_row_t *r = row_at(t, rn);
        memset(r, 0, sizeof(*r));
        r->key = key;
        r->live = 1;
        t->index[s] = (uint64_t)(rn + 1) << 32 | h;
        t->used++;
        return r;
}

/* Removes the row whose index entry is in slot s. */
static void remove_at(ds_rows_t *t, uint32_t s) {
        uint32_t rn = (uint32_t)(t->index[s] >> 32) - 1;
        /* backward-shift deletion keeps probe chains intact without tombstones */
        uint32_t hole = s;
        for (uint32_t j = (s + 1) & t->mask; t->index[j]; j = (j + 1) & t->mask) {
                uint32_t home = (uint32_t)t->index[j] & t->mask;
                /* move j into the hole if its home is not in (hole, j] (cyclically) */
                if (((j - home) & t->mask) >= ((j - hole) & t->mask)) {
                        t->index[hole] = t->index[j];
                        hole = j;
                }
        }
        t->index[hole] = 0;
        t->used--;
        ds_row_t *r = row_at(t, rn);
        r->live = 0;
        r->dirty = 0;
        if (t->nfree + t->npending == t->capfree) {
                uint32_t cap = t->capfree ? t->capfree * 2 : 64;
                uint32_t *fl = realloc(t->freelist, cap * sizeof(uint32_t));
                if (!fl)
                        return; /* the slot is leaked until destroy; the table stays correct */
                t->freelist = fl;
                t->capfree = cap;
        }
        t->freelist[t->nfree + t->npending++] = rn;
}

void ds_rows_remove(ds_rows_t *t, ds_rowkey_t key) {
        uint32_t s;
        if (probe(t, key, (uint32_t)key_hash(key), &s))
                remove_at(t, s);
}

/* How far ahead ds_rows_remove_many() loads: index slots SLOT_AHEAD keys
 * ahead, rows ROW_AHEAD keys ahead (from slots loaded SLOT_AHEAD -
 * ROW_AHEAD keys before). SLOT_AHEAD is a power of two: the ring of hashes
 * is indexed modulo it. */
#define SLOT_AHEAD 16
#define ROW_AHEAD  8

uint64_t ds_rows_remove_many(ds_rows_t *t, const ds_rowkey_t *keys, size_t n, ds_rows_take_fn fn, void *ctx) {
        uint32_t hs[SLOT_AHEAD]; /* hs[i % SLOT_AHEAD]: key i's hash, for i in [done, done + SLOT_AHEAD) */
        uint64_t removed = 0;
        for (size_t i = 0; i < n && i < SLOT_AHEAD; i++) {
                hs[i] = (uint32_t)key_hash(keys[i]);
                __builtin_prefetch(&t->index[hs[i] & t->mask]);
        }
        for (size_t i = 0; i < n; i++) {
                /* Removals shift entries back by a slot or so, and the index
                 * never grows here, so what is loaded ahead is still nearly
                 * always the line the probe reads; it is a hint either way. */
                if (i + ROW_AHEAD < n)
                        ds_rows_prefetch_row(t, hs[(i + ROW_AHEAD) % SLOT_AHEAD]);
                uint32_t h = hs[i % SLOT_AHEAD];
                if (i + SLOT_AHEAD < n) {
                        uint32_t ha = (uint32_t)key_hash(keys[i + SLOT_AHEAD]);
                        hs[i % SLOT_AHEAD] = ha;
                        __builtin_prefetch(&t->index[ha & t->mask]);
                }
                uint32_t s;
                ds_row_t *r = probe(t, keys[i], h, &s);
                if (!r)
                        continue;
                if (fn)
                        fn(ctx, r);
                remove_at(t, s); /* fn does not change the table: s is still r's slot */
                removed++;
        }
        return removed;
}

void ds_rows_mark_slow(ds_rows_t *t, ds_row_t *r) {
        if (t->ndirty == t->capdirty) {
                uint32_t cap = t->capdirty ? t->capdirty * 2 : 256;
                uint32_t *d = realloc(t->dirty, cap * sizeof(uint32_t));
                if (!d)
                        return; /* not marked: published at the next change or snapshot */
                t->dirty = d;
                t->capdirty = cap;
        }
        r->dirty = 1;
        t->dirty[t->ndirty++] = row_number(t, r);
}

uint32_t ds_rows_dirty_count(const ds_rows_t *t) {
        return t->ndirty;
}

ds_row_t *ds_rows_dirty_at(ds_rows_t *t, uint32_t i) {
        ds_row_t *r = row_at(t, t->dirty[i]);
        return r->live && r->dirty ? r : NULL;
}

void ds_rows_clear_dirty(ds_rows_t *t) {
        for (uint32_t i = 0; i < t->ndirty; i++)
                row_at(t, t->dirty[i])->dirty = 0;
        t->ndirty = 0;
        t->nfree += t->npending;
        t->npending = 0;
}

uint32_t ds_rows_count(const ds_rows_t *t) {
        return t->used;
}

size_t ds_rows_memory(const ds_rows_t *t) {
        return sizeof(*t) + (size_t)(t->mask + 1) * sizeof(uint64_t) + (size_t)t->caprows * sizeof(ds_row_t) +
               (size_t)t->capfree * 4 + (size_t)t->capdirty * 4;
}

ds_row_t *ds_rows_iter(ds_rows_t *t, uint32_t *cursor) {
        while (*cursor < t->nrows) {
                ds_row_t *r = row_at(t, (*cursor)++);
                if (r->live)
                        return r;
        }
        return NULL;
}
