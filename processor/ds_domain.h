/*
 * ds_domain.h - the reference data declstream validates against and the
 * generator draws from: border gates and typical commodities of Quang Ninh and
 * Lang Son (processor/domain/gates.csv and commodities.csv, from the project's source articles).
 *
 * Gate codes are interned to small integers once per message by
 * ds_gate_lookup(): the code is packed into two 64-bit words and found in a
 * 64-slot open-addressing table, so the hot path compares integers, never
 * strings.
 *
 * @locality any thread (the tables are immutable after ds_domain_init()).
 */
#ifndef DS_DOMAIN_H
#define DS_DOMAIN_H

#include <stdint.h>

#include "ds_decl.h"

#define DS_GATE_CODE_MAX 16 /* longest gate code that can be interned */

typedef struct ds_gate {
        const char *code;
        const char *name_vi;
        const char *province;
        const char *office_prefix;
        const char *kind;
} ds_gate_t;

typedef struct ds_commodity {
        const char *hs_code;
        const char *name_vi;
        const char *name_en;
        ds_flow_t typical_flow;
        const char *unit;
        double unit_value_low_usd;
        double unit_value_high_usd;
} ds_commodity_t;

/* Builds the lookup table; idempotent, call once before threads start. */
void ds_domain_init(void);

int ds_gate_count(void);
const ds_gate_t *ds_gate(int idx);
/* Index of the gate with this code, or -1. */
int ds_gate_lookup(const char *code, uint32_t len);

int ds_commodity_count(void);
const ds_commodity_t *ds_commodity(int idx);

const char *ds_flow_name(ds_flow_t f);
const char *ds_kind_name(ds_kind_t k);
const char *ds_channel_name(ds_channel_t c);

#endif
