/*
 * ds_hll.h - HyperLogLog distinct counting (distinct declarants and vehicles).
 *
 * Precision p = 14: 16,384 registers, standard error 1.04/sqrt(m) = 0.81%
 * (the requirement is <= 2%). A sketch starts sparse - a small open-addressing
 * table of (register, rank) pairs, exact until it holds 1,024 registers - and
 * turns dense (one byte per register, 16 KiB) beyond that, so memory per row is
 * bounded by 16 KiB and small for the many rows that see few distinct values.
 *
 * The estimate uses Ertl's improved raw estimator ("New cardinality
 * estimation algorithms for HyperLogLog sketches", 2017), which needs no
 * empirical bias tables and is unbiased from 0 to billions.
 *
 * Sketches only grow: union (register-wise max) is idempotent and
 * commutative, so merging a partition's sketch into the global one twice is
 * harmless. There is no removal: a cancelled declaration's declarant stays
 * counted.
 *
 * @locality one thread per sketch.
 */
#ifndef DS_HLL_H
#define DS_HLL_H

#include <stddef.h>
#include <stdint.h>

struct ds_buf; /* ds_wire.h */

#define DS_HLL_P 14
#define DS_HLL_M (1u << DS_HLL_P)

typedef struct ds_hll ds_hll_t;

ds_hll_t *ds_hll_new(void);
void ds_hll_destroy(ds_hll_t *h);
ds_hll_t *ds_hll_dup(const ds_hll_t *h);

/* Adds a 64-bit hash (well mixed). May reallocate *h. 0, or -1 on OOM. */
int ds_hll_add(ds_hll_t **h, uint64_t hash);
/* Starts loading the register ds_hll_add(&h, hash) would read, so that the
 * misses of several sketches go out together (ds_agg.c's drain(): every
 * queued addition's register before any add). A hint: reads
 * h's header, which should itself have been loaded ahead
 * (__builtin_prefetch(h)); changes nothing. */
void ds_hll_prefetch(const ds_hll_t *h, uint64_t hash);
/* *dst = *dst union src. May reallocate *dst. 0, or -1 on OOM. */
int ds_hll_merge(ds_hll_t **dst, const ds_hll_t *src);

double ds_hll_estimate(const ds_hll_t *h);
/* Bytes held. */
size_t ds_hll_memory(const ds_hll_t *h);

/* Serialized form: a self-describing byte string (for checkpoints). */
size_t ds_hll_serialized_size(const ds_hll_t *h);
size_t ds_hll_serialize(const ds_hll_t *h, uint8_t *out);
ds_hll_t *ds_hll_deserialize(const uint8_t *p, size_t len);
/* Appends the serialized form as Avro bytes (its length, then the bytes),
 * serialized in place: how the changelog and the partial rows carry a
 * sketch. */
void ds_hll_put_bytes(struct ds_buf *b, const ds_hll_t *h);

#endif
