/*
 * ds_encode.c - Avro writers (field order = the .avsc files' order).
 */
#include "ds_encode.h"
#include "ds_fmt.h"
#include "ds_domain.h"
#include "ds_merge.h"

#include <inttypes.h>
#include <stdio.h>

static inline void put_slice(ds_buf_t *b, ds_str_t s) {
        ds_avro_put_bytes(b, s.p, s.len);
}

void ds_encode_declaration(ds_buf_t *b, const ds_decl_t *d) {
        put_slice(b, d->declaration_id);
        ds_avro_put_long(b, d->version);
        ds_avro_put_long(b, d->kind);
        ds_avro_put_long(b, d->declared_at);
        put_slice(b, d->gate_code);
        put_slice(b, d->customs_office);
        put_slice(b, d->type_code);
        ds_avro_put_long(b, d->flow);
        put_slice(b, d->declarant_tax_id);
        ds_avro_put_long(b, d->channel);
        if (d->vehicle_plate.p) {
                ds_avro_put_long(b, 1);
                put_slice(b, d->vehicle_plate);
        } else {
                ds_avro_put_long(b, 0);
        }
        if (d->item_cnt) {
                ds_avro_put_long(b, d->item_cnt);
                for (uint32_t i = 0; i < d->item_cnt; i++) {
                        const ds_item_t *it = &d->items[i];
                        put_slice(b, it->hs_code);
                        put_slice(b, it->description);
                        ds_avro_put_double(b, it->quantity);
                        put_slice(b, it->unit);
                        ds_avro_put_long(b, it->gross_weight_g);
                        ds_avro_put_long(b, it->customs_value_usd_cents);
                        put_slice(b, it->origin_country);
                }
        }
        ds_avro_put_long(b, 0); /* end of the items array */
}

void ds_encode_total(ds_buf_t *b, ds_dim_t dim, const char *key, ds_window_t win, int64_t window_start,
                     const ds_measures_t *m, int64_t distinct_declarants, int64_t distinct_vehicles,
                     int64_t updated_at) {
        ds_avro_put_long(b, dim);
        ds_avro_put_str(b, key);
        ds_avro_put_long(b, win);
        ds_avro_put_long(b, window_start);
        ds_avro_put_long(b, m->declarations);
        ds_avro_put_long(b, m->items);
        ds_avro_put_long(b, m->value);
        ds_avro_put_long(b, m->weight);
        for (int f = 0; f < DS_FLOW__CNT; f++)
                ds_avro_put_long(b, m->flow_value[f]);
        ds_avro_put_long(b, distinct_declarants);
        ds_avro_put_long(b, distinct_vehicles);
        ds_avro_put_long(b, updated_at);
}

void ds_encode_top(ds_buf_t *b, const char *gate, int64_t day, const ds_top_entry_t *e, int n, int heading_digits,
                   int64_t updated_at) {
        ds_avro_put_str(b, gate);
        ds_avro_put_long(b, day);
        if (n > 0) {
                ds_avro_put_long(b, n);
                for (int i = 0; i < n; i++) {
                        char h[16];
                        int hl = snprintf(h, sizeof(h), "%0*u", heading_digits, e[i].heading);
                        ds_avro_put_long(b, i + 1);
                        ds_avro_put_bytes(b, h, (size_t)hl);
                        ds_avro_put_long(b, e[i].m.value);
                        ds_avro_put_long(b, e[i].m.declarations);
                        ds_avro_put_long(b, e[i].m.items);
                        ds_avro_put_long(b, e[i].m.weight);
                }
        }
        ds_avro_put_long(b, 0);
        ds_avro_put_long(b, updated_at);
}

const char *ds_dim_name(ds_dim_t d) {
        return d == DS_DIM_GATE ? "GATE" : d == DS_DIM_COMMODITY ? "COMMODITY" : d == DS_DIM_GATE_HEADING ? "GATE_HEADING" : "?";
}

const char *ds_window_name(ds_window_t w) {
        static const char *const n[] = {"TOTAL", "MINUTE", "HOUR", "DAY"};
        return (unsigned)w < DS_WIN__CNT ? n[w] : "?";
}

void ds_fmt_keytext(ds_fmt_t *f, ds_rowkey_t k, int heading_digits) {
        uint32_t key = ds_rowkey_key(k);
        const ds_gate_t *g;
        switch (ds_rowkey_dim(k)) {
        case DS_DIM_GATE:
                g = ds_gate((int)key);
                ds_fmt_str(f, g ? g->code : "?");
                return;
        case DS_DIM_COMMODITY:
                ds_fmt_u64(f, key, heading_digits);
                return;
        default:
                g = ds_gate((int)ds_cell_gate(k));
                ds_fmt_str(f, g ? g->code : "?");
                ds_fmt_char(f, '|');
                ds_fmt_u64(f, ds_cell_heading(k), heading_digits);
                return;
        }
}

int ds_row_keytext(ds_rowkey_t k, int heading_digits, char *buf, size_t size) {
        ds_fmt_t f = ds_fmt(buf, size);
        ds_fmt_keytext(&f, k, heading_digits);
        return ds_fmt_end(&f);
}

int ds_total_key(ds_rowkey_t k, int heading_digits, char *buf, size_t size) {
        ds_fmt_t f = ds_fmt(buf, size);
        ds_fmt_str(&f, ds_dim_name(ds_rowkey_dim(k)));
        ds_fmt_char(&f, '|');
        ds_fmt_keytext(&f, k, heading_digits);
        ds_fmt_char(&f, '|');
        ds_fmt_str(&f, ds_window_name(ds_rowkey_window(k)));
        ds_fmt_char(&f, '|');
        ds_fmt_i64(&f, k.start);
        return ds_fmt_end(&f);
}
