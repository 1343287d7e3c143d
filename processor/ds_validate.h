/*
 * ds_validate.h - the semantic rules of a declaration, and its contribution.
 *
 * A decoded declaration is valid when: declaration_id has 12 ASCII digits,
 * version >= 0, gate_code is a known gate, there is at least one item, every
 * hs_code has 8 ASCII digits, every weight and value is >= 0, and the sums of
 * value and weight fit in 64 bits. ds_validate() checks them in that order and
 * returns the first rule broken, so each bad message has one reason.
 *
 * On success it fills a ds_contrib_t: the id and HS codes as integers, the
 * gate interned, items merged into one line per heading (first
 * heading_digits digits), totals, and hashes of the declarant and vehicle.
 *
 * @locality any thread; no allocation, no locks.
 */
#ifndef DS_VALIDATE_H
#define DS_VALIDATE_H

#include <stddef.h>

#include "ds_decl.h"
#include "ds_reason.h"

/* heading_digits: 2, 4, 6 or 8. */
ds_dlq_reason_t ds_validate(const ds_decl_t *d, int heading_digits, ds_contrib_t *out);

/* 64-bit hash of a byte string (FNV-1a then fmix64): well mixed in every
 * bit, as HyperLogLog needs. */
uint64_t ds_hash_bytes(const void *p, size_t len);

#endif
