/*
 * ds_validate.h - the semantic rules of a declaration, and its contribution.
 *
 * A decoded declaration is valid when: every string field is valid UTF-8
 * (INVALID_UTF8), declaration_id has 12 ASCII digits, version >= 0,
 * gate_code is a known gate (a code holding a NUL byte is not), there is at
 * least one item and at most 50, then item by item: its hs_code has 8 ASCII
 * digits, its weight and value are >= 0, and the running sums of value and
 * weight still fit in 64 bits. ds_validate() checks them in that order and
 * returns the first rule broken, so each bad message has one reason; among
 * the item rules the first item that breaks one decides (one pass over the
 * items: a weight rule on item 0 wins over a bad HS code on item 2).
 *
 * UTF-8 comes first because it is a property of the encoding, not of the
 * business: Avro's string type is UTF-8, so a string that is not is a record
 * that is not well-formed, whatever else it holds - a gate code or HS code
 * with a broken byte is INVALID_UTF8, not UNKNOWN_GATE or BAD_HS_CODE. It
 * covers every string the reader reads: declaration_id, gate_code,
 * customs_office, type_code, declarant_tax_id, vehicle_plate (when not null),
 * invoice_currency (v2 reader), and each item's hs_code, description, unit
 * and origin_country. NUL (U+0000) is valid UTF-8 and allowed in free text.
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

/* 1 when the n bytes at p are well-formed UTF-8 (RFC 3629 / Unicode table
 * 3-7: shortest form, no surrogates, at most U+10FFFF), else 0. ASCII is
 * checked eight bytes at a time. */
int ds_utf8_valid(const char *p, size_t n);

/* 64-bit hash of a byte string (FNV-1a then fmix64): well mixed in every
 * bit, as HyperLogLog needs. */
uint64_t ds_hash_bytes(const void *p, size_t len);

#endif
