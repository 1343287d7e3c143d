/*
 * ds_domain.h - the reference data declstream validates against and the
 * generator draws from: border gates and typical commodities of Quang Ninh and
 * Lang Son (processor/domain/gates.csv and commodities.csv, from the project's source articles).
 *
 * Gate codes are interned to small integers once per message by
 * ds_gate_lookup(): the code is packed into two 64-bit words and found in an
 * open-addressing table (64 slots for the compiled-in gates, more when a
 * gates file adds gates), so the hot path compares integers, never strings.
 *
 * @locality any thread (the tables are immutable after ds_domain_init()).
 */
#ifndef DS_DOMAIN_H
#define DS_DOMAIN_H

#include <stddef.h>
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

/* Most gates in all (a GATE_HEADING cell key holds a gate number in 12 bits,
 * ds_rows.h). */
#define DS_GATE_MAX 4096

/* Builds the lookup table; idempotent, call once before threads start. */
void ds_domain_init(void);

/* Adds the gates of a CSV file (the gates.file setting) after the
 * compiled-in ones: a header line naming the columns - gate_code (required:
 * 1 to 16 of A-Z, 0-9, _), name_vi, province, kind, customs_office_prefix
 * (the generator's customs offices), weight (the generator's relative
 * traffic), in any order; other columns (counterpart_cn, source, as in
 * processor/domain/gates.csv) are ignored - then one gate per line; fields
 * may be double-quoted. A gate already known is an error. Call before threads
 * start (it replaces the lookup table). Returns the number of gates added, or
 * -1 with errstr naming the file and line; on error nothing is added.
 *
 * A gate's number is its place in the list, and the state (changelog) stores
 * numbers: between runs over one state the list may only grow at its end
 * (the changelog checks, with ds_gates_fingerprint()). */
int ds_domain_add_gates_file(const char *path, char *errstr, size_t errstr_size);
/* Back to the compiled-in gates alone (tests and fuzzing: not while another
 * thread may use the tables; pointers from ds_gate() to added gates dangle). */
void ds_domain_reset_gates(void);

int ds_gate_count(void);
/* Gates compiled in (processor/domain/gates.csv): numbers 0 .. count - 1. */
int ds_gate_builtin_count(void);
const ds_gate_t *ds_gate(int idx);
/* Index of the gate with this code, or -1. */
int ds_gate_lookup(const char *code, uint32_t len);
/* An added gate's weight column, or -1 (compiled-in gates, no weight given). */
double ds_gate_weight(int idx);
/* CRC-64-AVRO of the first n gates' codes, each followed by a newline. */
uint64_t ds_gates_fingerprint(int n);

int ds_commodity_count(void);
const ds_commodity_t *ds_commodity(int idx);

const char *ds_flow_name(ds_flow_t f);
const char *ds_kind_name(ds_kind_t k);
const char *ds_channel_name(ds_channel_t c);

#endif
