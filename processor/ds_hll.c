/*
 * ds_hll.c - sparse/dense HyperLogLog with Ertl's estimator.
 */
#include "ds_hll.h"
#include "ds_wire.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define Q                (64 - DS_HLL_P) /* bits left after the register index */
#define DENSE            0xffffffffu
#define SPARSE_MAX_SLOTS 2048 /* 8 KiB of slots, at most 1,024 used */

struct ds_hll {
        uint32_t n;   /* sparse: registers set; DENSE for a dense sketch */
        uint32_t cap; /* sparse: slots (power of two) */
        union {
                uint32_t slots[1]; /* (index + 1) << 6 | rank; 0 = empty */
                uint8_t regs[1];   /* dense: DS_HLL_M registers */
        } u;
};

static size_t sparse_bytes(uint32_t cap) {
        return offsetof(ds_hll_t, u) + (size_t)cap * sizeof(uint32_t);
}

static size_t dense_bytes(void) {
        return offsetof(ds_hll_t, u) + DS_HLL_M;
}

ds_hll_t *ds_hll_new(void) {
        ds_hll_t *h = calloc(1, sparse_bytes(16));
        if (h)
                h->cap = 16;
        return h;
}

void ds_hll_destroy(ds_hll_t *h) {
        free(h);
}

size_t ds_hll_memory(const ds_hll_t *h) {
        return h->n == DENSE ? dense_bytes() : sparse_bytes(h->cap);
}

ds_hll_t *ds_hll_dup(const ds_hll_t *h) {
        size_t n = ds_hll_memory(h);
        ds_hll_t *d = malloc(n);
        if (d)
                memcpy(d, h, n);
        return d;
}

static inline void split(uint64_t hash, uint32_t *idx, uint8_t *rank) {
        *idx = (uint32_t)(hash >> Q);
        uint64_t w = hash << DS_HLL_P;
        *rank = w ? (uint8_t)(__builtin_clzll(w) + 1) : (uint8_t)(Q + 1);
}

/* The slot of register idx in a sparse table: the one holding it, else the
 * empty slot where it goes (load <= 1/2: there always is one). */
static uint32_t sparse_slot(const ds_hll_t *h, uint32_t idx) {
        uint32_t mask = h->cap - 1, s = idx & mask;
        while (h->u.slots[s] && (h->u.slots[s] >> 6) != idx + 1)
                s = (s + 1) & mask;
        return s;
}

/* Sets register idx, whose slot is s, to at least rank (an empty s: a new
 * register, which the caller has made room for). */
static void sparse_put(ds_hll_t *h, uint32_t s, uint32_t idx, uint8_t rank) {
        uint32_t e = h->u.slots[s];
        if (!e)
                h->n++;
        else if ((e & 63) >= rank)
                return;
        h->u.slots[s] = (idx + 1) << 6 | rank;
}

/* Sets register idx to at least rank in a sparse table with room. */
static void sparse_set(ds_hll_t *h, uint32_t idx, uint8_t rank) {
        sparse_put(h, sparse_slot(h, idx), idx, rank);
}

static int sparse_has_room(ds_hll_t *h) {
        return (h->n + 1) * 2 <= h->cap;
}

/* Grows a sparse sketch, or turns it dense. */
static ds_hll_t *grow(ds_hll_t *h) {
        ds_hll_t *g;
        if (h->cap * 2 <= SPARSE_MAX_SLOTS) {
                g = calloc(1, sparse_bytes(h->cap * 2));
                if (!g)
                        return NULL;
                g->cap = h->cap * 2;
        } else {
                g = calloc(1, dense_bytes());
                if (!g)
                        return NULL;
                g->n = DENSE;
        }
        for (uint32_t s = 0; s < h->cap; s++) {
                uint32_t e = h->u.slots[s];
                if (!e)
                        continue;
                if (g->n == DENSE)
                        g->u.regs[(e >> 6) - 1] = (uint8_t)(e & 63);
                else
                        sparse_set(g, (e >> 6) - 1, (uint8_t)(e & 63));
        }
        free(h);
        return g;
}

static int set_reg(ds_hll_t **hp, uint32_t idx, uint8_t rank) {
        ds_hll_t *h = *hp;
        if (h->n == DENSE) {
                if (h->u.regs[idx] < rank)
                        h->u.regs[idx] = rank;
                return 0;
        }
        /* A table grows only for a register it does not hold yet: the same
         * declarant seen again allocates nothing (test_hotpath). */
        uint32_t s = sparse_slot(h, idx);
        if (h->u.slots[s] || sparse_has_room(h)) {
                sparse_put(h, s, idx, rank);
                return 0;
        }
        while (h->n != DENSE && !sparse_has_room(h)) {
                ds_hll_t *g = grow(h);
                if (!g)
                        return -1;
                *hp = h = g;
        }
        if (h->n == DENSE) {
                if (h->u.regs[idx] < rank)
                        h->u.regs[idx] = rank;
        } else {
                sparse_set(h, idx, rank);
        }
        return 0;
}

int ds_hll_add(ds_hll_t **h, uint64_t hash) {
        uint32_t idx;
        uint8_t rank;
        split(hash, &idx, &rank);
        return set_reg(h, idx, rank);
}

void ds_hll_prefetch(const ds_hll_t *h, uint64_t hash) {
        uint32_t idx;
        uint8_t rank;
        split(hash, &idx, &rank);
        if (h->n == DENSE)
                __builtin_prefetch(&h->u.regs[idx], 1);
        else
                __builtin_prefetch(&h->u.slots[idx & (h->cap - 1)], 1);
}

int ds_hll_merge(ds_hll_t **dst, const ds_hll_t *src) {
        if (src->n == DENSE) {
                for (uint32_t i = 0; i < DS_HLL_M; i++)
                        if (src->u.regs[i] && set_reg(dst, i, src->u.regs[i]))
                                return -1;
                return 0;
        }
        for (uint32_t s = 0; s < src->cap; s++) {
                uint32_t e = src->u.slots[s];
                if (e && set_reg(dst, (e >> 6) - 1, (uint8_t)(e & 63)))
                        return -1;
        }
        return 0;
}

static double sigma(double x) {
        if (x == 1.0)
                return INFINITY;
        double y = 1.0, z = x, zp;
        do {
                x *= x;
                zp = z;
                z += x * y;
                y += y;
        } while (z != zp);
        return z;
}

static double tau(double x) {
        if (x == 0.0 || x == 1.0)
                return 0.0;
        double y = 1.0, z = 1.0 - x, zp;
        do {
                x = sqrt(x);
                zp = z;
                y *= 0.5;
                z -= (1 - x) * (1 - x) * y;
        } while (z != zp);
        return z / 3.0;
}

double ds_hll_estimate(const ds_hll_t *h) {
        uint32_t c[Q + 2] = {0};
        if (h->n == DENSE) {
                for (uint32_t i = 0; i < DS_HLL_M; i++)
                        c[h->u.regs[i]]++;
        } else {
                c[0] = DS_HLL_M - h->n;
                for (uint32_t s = 0; s < h->cap; s++)
                        if (h->u.slots[s])
                                c[h->u.slots[s] & 63]++;
        }
        const double m = DS_HLL_M;
        if (c[0] == DS_HLL_M)
                return 0.0;
        double z = m * tau(1.0 - c[Q + 1] / m);
        for (int k = Q; k >= 1; k--)
                z = 0.5 * (z + c[k]);
        z += m * sigma(c[0] / m);
        return (0.5 / log(2.0)) * m * m / z;
}

/* Serialized: 'H', p, kind (0 sparse, 1 dense), then for sparse a u32 count
 * and the used slot values little-endian, for dense the registers. */
size_t ds_hll_serialized_size(const ds_hll_t *h) {
        return h->n == DENSE ? 3 + DS_HLL_M : 7 + (size_t)h->n * 4;
}

size_t ds_hll_serialize(const ds_hll_t *h, uint8_t *out) {
        out[0] = 'H';
        out[1] = DS_HLL_P;
        if (h->n == DENSE) {
                out[2] = 1;
                memcpy(out + 3, h->u.regs, DS_HLL_M);
                return 3 + DS_HLL_M;
        }
        out[2] = 0;
        memcpy(out + 3, &h->n, 4);
        size_t o = 7;
        for (uint32_t s = 0; s < h->cap; s++)
                if (h->u.slots[s]) {
                        memcpy(out + o, &h->u.slots[s], 4);
                        o += 4;
                }
        return o;
}

ds_hll_t *ds_hll_deserialize(const uint8_t *p, size_t len) {
        if (len < 3 || p[0] != 'H' || p[1] != DS_HLL_P)
                return NULL;
        if (p[2] == 1) {
                if (len != 3 + DS_HLL_M)
                        return NULL;
                ds_hll_t *h = calloc(1, dense_bytes());
                if (!h)
                        return NULL;
                h->n = DENSE;
                memcpy(h->u.regs, p + 3, DS_HLL_M);
                for (uint32_t i = 0; i < DS_HLL_M; i++)
                        if (h->u.regs[i] > Q + 1) {
                                free(h);
                                return NULL;
                        }
                return h;
        }
        uint32_t n;
        if (len < 7 || p[2] != 0)
                return NULL;
        memcpy(&n, p + 3, 4);
        if (n > SPARSE_MAX_SLOTS / 2 || len != 7 + (size_t)n * 4)
                return NULL;
        ds_hll_t *h = ds_hll_new();
        for (uint32_t i = 0; h && i < n; i++) {
                uint32_t e;
                memcpy(&e, p + 7 + i * 4, 4);
                uint32_t idx = (e >> 6) - 1, rank = e & 63;
                if ((e >> 6) == 0 || idx >= DS_HLL_M || rank == 0 || rank > Q + 1 || set_reg(&h, idx, (uint8_t)rank)) {
                        free(h);
                        return NULL;
                }
        }
        return h;
}

void ds_hll_put_bytes(ds_buf_t *b, const ds_hll_t *h) {
        size_t n = ds_hll_serialized_size(h);
        uint8_t *p = ds_buf_tail(b, DS_AVRO_LONG_MAX + n);
        p += ds_avro_write_long(p, (int64_t)n);
        p += ds_hll_serialize(h, p);
        ds_buf_commit(b, p);
}
