/*
 * ds_decl.h - a declaration event decoded into a fixed struct, and the
 * contribution it makes to the totals once validated.
 *
 * ds_decl_t is what the decoders (ds_codec.h: the schema-specialised one and
 * the Avro C reference) fill. Strings are slices: they point into the message
 * buffer (specialised decoder) or into the decoder's own value (Avro C), valid
 * until the next decode on the same decoder. Nothing is allocated per message.
 *
 * ds_contrib_t is what ds_validate() derives from a valid declaration: the id
 * as an integer, the gate interned to its index, and one line per HS heading
 * (items of the same heading merged), which is all the ledger and the
 * aggregation tables need.
 */
#ifndef DS_DECL_H
#define DS_DECL_H

#include <stdint.h>

/* VNACCS accepts at most 50 lines of goods per declaration; a declaration
 * with more is split by the declarant. Larger arrays are dead-lettered. */
#define DS_MAX_ITEMS 50

/* A declaration id is 12 digits; as an integer (ds_contrib_t.id) at most: */
#define DS_DECL_ID_MAX 999999999999LL

typedef enum { DS_KIND_NEW = 0, DS_KIND_AMEND, DS_KIND_CANCEL, DS_KIND__CNT } ds_kind_t;
typedef enum {
        DS_FLOW_EXPORT = 0,
        DS_FLOW_IMPORT,
        DS_FLOW_TRANSIT,
        DS_FLOW_BORDER_RESIDENT,
        DS_FLOW__CNT
} ds_flow_t;
typedef enum { DS_CHANNEL_GREEN = 0, DS_CHANNEL_YELLOW, DS_CHANNEL_RED, DS_CHANNEL__CNT } ds_channel_t;

typedef struct ds_str {
        const char *p;
        uint32_t len;
} ds_str_t;

typedef struct ds_item {
        ds_str_t hs_code;
        ds_str_t description;
        ds_str_t unit;
        ds_str_t origin_country;
        double quantity;
        int64_t gross_weight_g;
        int64_t customs_value_usd_cents;
} ds_item_t;

typedef struct ds_decl {
        ds_str_t declaration_id;
        ds_str_t gate_code;
        ds_str_t customs_office;
        ds_str_t type_code;
        ds_str_t declarant_tax_id;
        ds_str_t vehicle_plate; /* p == NULL when the union holds null */
        int64_t declared_at;    /* ms since the epoch, UTC */
        int32_t version;
        uint8_t kind;    /* ds_kind_t */
        uint8_t flow;    /* ds_flow_t */
        uint8_t channel; /* ds_channel_t */
        /* Schema v2 fields (customs_declaration.v2.avsc). Filled only when the
         * reader schema has them (ds_codec.h: optional reader fields); with the
         * processor's v1 reader they stay 0 and {NULL, 0}. */
        int32_t container_count;
        ds_str_t invoice_currency;
        uint32_t item_cnt;
        ds_item_t items[DS_MAX_ITEMS];
} ds_decl_t;

/* One HS heading's share of a declaration. */
typedef struct ds_line {
        uint32_t heading; /* first heading.digits digits of the HS code, as an integer */
        uint32_t items;   /* lines of goods of this heading */
        int64_t value;    /* US cents */
        int64_t weight;   /* grams */
} ds_line_t;

typedef struct ds_contrib {
        uint64_t id; /* declaration_id as an integer (12 digits) */
        int64_t declared_at;
        int32_t version;
        uint8_t kind;
        uint8_t flow;
        uint16_t gate; /* index into the gate table (ds_domain.h) */
        uint32_t items;
        uint32_t nlines;
        int64_t value;
        int64_t weight;
        uint64_t declarant_hash; /* hash of declarant_tax_id (distinct counts) */
        uint64_t vehicle_hash;   /* hash of vehicle_plate, 0 when none */
        ds_line_t lines[DS_MAX_ITEMS];
} ds_contrib_t;

#endif
