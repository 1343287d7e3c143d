/*
 * ds_validate.c - declaration rules and contribution building.
 */
#include "ds_validate.h"
#include "ds_common.h"
#include "ds_domain.h"

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
        if (DS_UNLIKELY(d->declaration_id.len != 12))
                return DS_DLQ_BAD_ID;
        int64_t id = parse_digits(d->declaration_id.p, 12);
        if (DS_UNLIKELY(id < 0))
                return DS_DLQ_BAD_ID;
        if (DS_UNLIKELY(d->version < 0))
                return DS_DLQ_NEGATIVE_VERSION;
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
