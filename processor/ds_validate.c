/*
 * ds_validate.c - declaration rules and contribution building.
 *
 * UTF-8 checking is on the per-message path for every string of every
 * message, so it is built for text that is mostly ASCII: eight bytes are
 * loaded at once and tested against 0x80 in every byte; only a word holding a
 * byte >= 0x80 drops to the byte-wise check of one sequence (the well-formed
 * byte sequences of Unicode 15, table 3-7: no overlong forms, no surrogates,
 * nothing above U+10FFFF), after which the word loop resumes. A declaration
 * of ~300 string bytes costs ~40 word tests when it is ASCII.
 */
#include "ds_validate.h"
#include "ds_common.h"
#include "ds_domain.h"

#include <string.h>

static const uint32_t heading_div[9] = {0, 0, 1000000, 0, 10000, 0, 100, 0, 1};

uint64_t ds_hash_bytes(const void *p, size_t len) {
        const uint8_t *s = p;
        uint64_t h = 0xcbf29ce484222325ULL;
        for (size_t i = 0; i < len; i++) {
                h ^= s[i];
                h *= 0x100000001b3ULL;
        }
        return ds_mix64(h ^ len);
}

int ds_utf8_valid(const char *str, size_t n) {
        const uint8_t *s = (const uint8_t *)str;
        size_t i = 0;
        while (i < n) {
                /* ASCII fast path: 8 bytes per test (memcpy: unaligned load) */
                while (i + 8 <= n) {
                        uint64_t w;
                        memcpy(&w, s + i, 8);
                        if (w & 0x8080808080808080ULL)
                                break;
                        i += 8;
                }
                if (i >= n)
                        break;
                uint8_t c = s[i];
                if (c < 0x80) {
                        i++;
                        continue;
                }
                /* lo/hi: allowed range of the second byte (table 3-7) */
                uint8_t lo = 0x80, hi = 0xBF;
                size_t len;
                if (c >= 0xC2 && c <= 0xDF) {
                        len = 2;
                } else if (c >= 0xE0 && c <= 0xEF) {
                        len = 3;
                        if (c == 0xE0)
                                lo = 0xA0; /* overlong */
                        else if (c == 0xED)
                                hi = 0x9F; /* UTF-16 surrogates */
                } else if (c >= 0xF0 && c <= 0xF4) {
                        len = 4;
                        if (c == 0xF0)
                                lo = 0x90; /* overlong */
                        else if (c == 0xF4)
                                hi = 0x8F; /* above U+10FFFF */
                } else {
                        return 0; /* continuation byte, C0, C1, F5..FF */
                }
                if (DS_UNLIKELY(n - i < len))
                        return 0;
                if (s[i + 1] < lo || s[i + 1] > hi)
                        return 0;
                for (size_t k = 2; k < len; k++)
                        if ((s[i + k] & 0xC0) != 0x80)
                                return 0;
                i += len;
        }
        return 1;
}

/* Whether s[0..n) is all ASCII, without a byte loop: 8-byte words, the
 * last one overlapping the one before it; short strings (codes, country,
 * unit) in at most two loads. */
static inline int ascii_only(const char *p, size_t n) {
        const uint8_t *s = (const uint8_t *)p;
        if (n >= 8) {
                uint64_t acc = 0, w;
                for (size_t i = 0; i + 8 <= n; i += 8) {
                        memcpy(&w, s + i, 8);
                        acc |= w;
                }
                memcpy(&w, s + n - 8, 8);
                return !((acc | w) & 0x8080808080808080ULL);
        }
        if (n >= 4) {
                uint32_t a, b;
                memcpy(&a, s, 4);
                memcpy(&b, s + n - 4, 4);
                return !((a | b) & 0x80808080u);
        }
        uint8_t acc = 0;
        for (size_t i = 0; i < n; i++)
                acc |= s[i];
        return !(acc & 0x80);
}

/* ASCII (almost every field) is decided by ascii_only(); only strings with
 * a byte >= 0x80 (Vietnamese descriptions) go through ds_utf8_valid(). */
static inline int str_ok(ds_str_t s) {
        return !s.len || ascii_only(s.p, s.len) || ds_utf8_valid(s.p, s.len);
}

/* Every string of the declaration is UTF-8 (the null plate and an absent
 * invoice_currency have p == NULL, len == 0). */
static int all_utf8(const ds_decl_t *d) {
        if (!str_ok(d->declaration_id) || !str_ok(d->gate_code) || !str_ok(d->customs_office) ||
            !str_ok(d->type_code) || !str_ok(d->declarant_tax_id) || !str_ok(d->vehicle_plate) ||
            !str_ok(d->invoice_currency))
                return 0;
        uint32_t n = d->item_cnt < DS_MAX_ITEMS ? d->item_cnt : DS_MAX_ITEMS;
        for (uint32_t i = 0; i < n; i++) {
                const ds_item_t *it = &d->items[i];
                if (!str_ok(it->hs_code) || !str_ok(it->description) || !str_ok(it->unit) ||
                    !str_ok(it->origin_country))
                        return 0;
        }
        return 1;
}

/* Parses exactly n ASCII digits; -1 if any byte is not a digit. */
static inline int64_t parse_digits(const char *p, uint32_t n) {
        int64_t v = 0;
        for (uint32_t i = 0; i < n; i++) {
                unsigned d = (unsigned)(unsigned char)p[i] - '0';
                if (DS_UNLIKELY(d > 9))
                        return -1;
                v = v * 10 + d;
        }
        return v;
}

ds_dlq_reason_t ds_validate(const ds_decl_t *d, int heading_digits, ds_contrib_t *out) {
        if (DS_UNLIKELY(!all_utf8(d)))
                return DS_DLQ_INVALID_UTF8;
        if (DS_UNLIKELY(d->declaration_id.len != 12))
                return DS_DLQ_BAD_ID;
        int64_t id = parse_digits(d->declaration_id.p, 12);
        if (DS_UNLIKELY(id < 0))
                return DS_DLQ_BAD_ID;
        if (DS_UNLIKELY(d->version < 0))
                return DS_DLQ_NEGATIVE_VERSION;
        /* the gate table pads codes with NULs, so "MONGCAI\0" would find
         * MONGCAI: a code holding a NUL is no gate's code */
        if (DS_UNLIKELY(d->gate_code.len && memchr(d->gate_code.p, 0, d->gate_code.len)))
                return DS_DLQ_UNKNOWN_GATE;
        int gate = ds_gate_lookup(d->gate_code.p, d->gate_code.len);
        if (DS_UNLIKELY(gate < 0))
                return DS_DLQ_UNKNOWN_GATE;
        if (DS_UNLIKELY(d->item_cnt == 0))
                return DS_DLQ_NO_ITEMS;
        if (DS_UNLIKELY(d->item_cnt > DS_MAX_ITEMS))
                return DS_DLQ_TOO_MANY_ITEMS;

        uint32_t div = heading_div[heading_digits];
        out->nlines = 0;
        out->value = 0;
        out->weight = 0;
        for (uint32_t i = 0; i < d->item_cnt; i++) {
                const ds_item_t *it = &d->items[i];
                if (DS_UNLIKELY(it->hs_code.len != 8))
                        return DS_DLQ_BAD_HS_CODE;
                int64_t hs = parse_digits(it->hs_code.p, 8);
                if (DS_UNLIKELY(hs < 0))
                        return DS_DLQ_BAD_HS_CODE;
                if (DS_UNLIKELY(it->gross_weight_g < 0))
                        return DS_DLQ_NEGATIVE_WEIGHT;
                if (DS_UNLIKELY(it->customs_value_usd_cents < 0))
                        return DS_DLQ_NEGATIVE_VALUE;
                if (DS_UNLIKELY(__builtin_add_overflow(out->value, it->customs_value_usd_cents, &out->value) ||
                                __builtin_add_overflow(out->weight, it->gross_weight_g, &out->weight)))
                        return DS_DLQ_OVERFLOW;
                uint32_t heading = (uint32_t)hs / div;
                uint32_t l = 0;
                while (l < out->nlines && out->lines[l].heading != heading)
                        l++;
                if (l == out->nlines) {
                        out->lines[l] = (ds_line_t){heading, 0, 0, 0};
                        out->nlines++;
                }
                /* per-heading sums cannot overflow: they are bounded by the totals checked above */
                out->lines[l].items++;
                out->lines[l].value += it->customs_value_usd_cents;
                out->lines[l].weight += it->gross_weight_g;
        }
        out->id = (uint64_t)id;
        out->declared_at = d->declared_at;
        out->version = d->version;
        out->kind = d->kind;
        out->flow = d->flow;
        out->gate = (uint16_t)gate;
        out->items = d->item_cnt;
        out->declarant_hash = ds_hash_bytes(d->declarant_tax_id.p, d->declarant_tax_id.len);
        out->vehicle_hash = d->vehicle_plate.p ? ds_hash_bytes(d->vehicle_plate.p, d->vehicle_plate.len) : 0;
        return DS_DLQ_NONE;
}
