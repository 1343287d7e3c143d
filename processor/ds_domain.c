/*
 * ds_domain.c - gate and commodity tables, gate interning.
 */
#include "ds_domain.h"
#include "ds_common.h"

#include <string.h>

static const ds_gate_t gates[] = {
#define DS_GATE(code, name, prov, office, kind) {code, name, prov, office, kind},
#include "domain/gates.defs"
#undef DS_GATE
};

static const ds_commodity_t commodities[] = {
#define DS_COMMODITY(hs, vi, en, flow, unit, lo, hi) {hs, vi, en, flow, unit, lo, hi},
#include "domain/commodities.defs"
#undef DS_COMMODITY
};

#define SLOTS 64 /* power of two, > 2x the gate count */

typedef struct {
        uint64_t w0, w1; /* code packed little-endian, zero padded; w0 == 0: empty */
        int idx;
} slot_t;

static slot_t table[SLOTS];
static int table_ready;

static inline void pack(const char *code, uint32_t len, uint64_t *w0, uint64_t *w1) {
        char buf[DS_GATE_CODE_MAX] = {0};
        memcpy(buf, code, len);
        memcpy(w0, buf, 8);
        memcpy(w1, buf + 8, 8);
}

static inline uint32_t slot_of(uint64_t w0, uint64_t w1) {
        return (uint32_t)ds_mix64(w0 ^ (w1 * 0x9e3779b97f4a7c15ULL)) & (SLOTS - 1);
}

void ds_domain_init(void) {
        if (table_ready)
                return;
        _Static_assert(DS_ARRAY_LEN(gates) * 2 < SLOTS, "gate table too small");
        for (int i = 0; i < (int)DS_ARRAY_LEN(gates); i++) {
                uint64_t w0, w1;
                pack(gates[i].code, (uint32_t)strlen(gates[i].code), &w0, &w1);
                uint32_t s = slot_of(w0, w1);
                while (table[s].w0)
                        s = (s + 1) & (SLOTS - 1);
                table[s] = (slot_t){w0, w1, i};
        }
        table_ready = 1;
}

int ds_gate_count(void) {
        return (int)DS_ARRAY_LEN(gates);
}

const ds_gate_t *ds_gate(int idx) {
        return idx >= 0 && idx < (int)DS_ARRAY_LEN(gates) ? &gates[idx] : NULL;
}

int ds_gate_lookup(const char *code, uint32_t len) {
        if (DS_UNLIKELY(len == 0 || len > DS_GATE_CODE_MAX))
                return -1;
        uint64_t w0, w1;
        pack(code, len, &w0, &w1);
        for (uint32_t s = slot_of(w0, w1);; s = (s + 1) & (SLOTS - 1)) {
                if (!table[s].w0)
                        return -1;
                if (table[s].w0 == w0 && table[s].w1 == w1)
                        return table[s].idx;
        }
}

int ds_commodity_count(void) {
        return (int)DS_ARRAY_LEN(commodities);
}

const ds_commodity_t *ds_commodity(int idx) {
        return idx >= 0 && idx < (int)DS_ARRAY_LEN(commodities) ? &commodities[idx] : NULL;
}

const char *ds_flow_name(ds_flow_t f) {
        static const char *const n[] = {"EXPORT", "IMPORT", "TRANSIT", "BORDER_RESIDENT"};
        return (unsigned)f < DS_FLOW__CNT ? n[f] : "?";
}

const char *ds_kind_name(ds_kind_t k) {
        static const char *const n[] = {"NEW", "AMEND", "CANCEL"};
        return (unsigned)k < DS_KIND__CNT ? n[k] : "?";
}

const char *ds_channel_name(ds_channel_t c) {
        static const char *const n[] = {"GREEN", "YELLOW", "RED"};
        return (unsigned)c < DS_CHANNEL__CNT ? n[c] : "?";
}
