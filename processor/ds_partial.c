/*
 * ds_partial.c - PartialTotal encoding and decoding.
 *
 * Hand-written against customs_partial_total.avsc (field order matters).
 * The merge's tests (tests/test_merge.c) and replay's processing role
 * (which decodes its GATE TOTAL shares back) round-trip it; test_merge also
 * feeds it out-of-range fields.
 */
#include "ds_partial.h"
#include "ds_common.h"
#include "ds_domain.h"
#include "ds_encode.h"
#include "ds_fmt.h"

#include <librdkafka/rdkafka.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void ds_partial_of_row(ds_partial_t *out, const ds_outrow_t *o, int64_t updated_at, uint8_t *s1, uint8_t *s2) {
        *out = (ds_partial_t){DS_PARTIAL_ROW, o->partition, o->epoch, o->offset, 0, 0, o->key, o->m,
                              NULL, 0, NULL, 0, updated_at};
        if (o->distinct) {
                out->declarants_len = ds_hll_serialize(o->distinct->declarants, s1);
                out->vehicles_len = ds_hll_serialize(o->distinct->vehicles, s2);
                out->declarants_sketch = s1;
                out->vehicles_sketch = s2;
        }
}

void ds_partial_encode(ds_buf_t *b, const ds_partial_t *p, int digits) {
        char kt[48];
        ds_wire_put_header(b, DS_SCHEMA_ID_PARTIAL);
        ds_avro_put_long(b, p->kind);
        ds_avro_put_long(b, p->partition);
        ds_avro_put_long(b, p->epoch);
        ds_avro_put_long(b, p->input_offset);
        ds_avro_put_long(b, p->watermark_ms);
        ds_buf_put(b, p->idle ? "\x01" : "\x00", 1);
        if (p->kind == DS_PARTIAL_ROW) {
                ds_avro_put_long(b, ds_rowkey_dim(p->key));
                /* the longest key text: a gate code, '|', a 10-digit heading */
                _Static_assert(DS_GATE_CODE_MAX + 1 + 10 < sizeof(kt), "key text buffer too small");
                ds_fmt_t f = ds_fmt(kt, sizeof(kt));
                ds_fmt_keytext(&f, p->key, digits);
                ds_avro_put_bytes(b, kt, (size_t)ds_fmt_end(&f));
                ds_avro_put_long(b, ds_rowkey_window(p->key));
                ds_avro_put_long(b, p->key.start);
        } else {
                ds_avro_put_long(b, 0);
                ds_avro_put_long(b, 0); /* empty key */
                ds_avro_put_long(b, 0);
                ds_avro_put_long(b, 0);
        }
        const int64_t *v = &p->m.declarations;
        for (int i = 0; i < 8; i++)
                ds_avro_put_long(b, p->kind == DS_PARTIAL_ROW ? v[i] : 0);
        ds_avro_put_bytes(b, p->declarants_sketch, p->declarants_len);
        ds_avro_put_bytes(b, p->vehicles_sketch, p->vehicles_len);
        ds_avro_put_long(b, p->updated_at);
}

static int parse_digits(const uint8_t *p, size_t n, uint32_t *out) {
        uint32_t v = 0;
        if (!n || n > 8)
                return -1;
        for (size_t i = 0; i < n; i++) {
                if (p[i] < '0' || p[i] > '9')
                        return -1;
                v = v * 10 + (uint32_t)(p[i] - '0');
        }
        *out = v;
        return 0;
}

ds_dlq_reason_t ds_partial_decode(const uint8_t *msg, size_t len, int digits, ds_partial_t *out) {
        uint32_t id;
        const uint8_t *body;
        size_t blen;
        ds_dlq_reason_t r = ds_wire_parse(msg, len, &id, &body, &blen);
        if (r)
                return r;
        if (id != DS_SCHEMA_ID_PARTIAL)
                return DS_DLQ_INCOMPATIBLE_SCHEMA;
        ds_rd_t in = {body, body + blen, 0};
        memset(out, 0, sizeof(*out));
        int64_t kind = ds_rd_long(&in), partition = ds_rd_long(&in), epoch = ds_rd_long(&in);
        out->input_offset = ds_rd_long(&in);
        out->watermark_ms = ds_rd_long(&in);
        if (in.p >= in.end)
                return DS_DLQ_TRUNCATED;
        out->idle = *in.p++ != 0;
        int64_t dim = ds_rd_long(&in);
        size_t kl;
        const uint8_t *k = ds_rd_bytes(&in, &kl);
        int64_t win = ds_rd_long(&in);
        int64_t start = ds_rd_long(&in);
        int64_t *v = &out->m.declarations;
        for (int i = 0; i < 8; i++)
                v[i] = ds_rd_long(&in);
        out->declarants_sketch = ds_rd_bytes(&in, &out->declarants_len);
        out->vehicles_sketch = ds_rd_bytes(&in, &out->vehicles_len);
        out->updated_at = ds_rd_long(&in);
        if (in.bad)
                return DS_DLQ_TRUNCATED;
        if (in.p != in.end)
                return DS_DLQ_TRAILING_BYTES;
        /* every field within what a processor writes, checked before it is
         * narrowed: the topic may carry anything, and a value out of range
         * would index past an array, overflow the merge's sums or make a row
         * no window ever closes */
        if ((kind != DS_PARTIAL_ROW && kind != DS_PARTIAL_STATUS) || partition < 0 || partition > DS_PARTITION_MAX ||
            epoch < 0 || epoch > INT32_MAX)
                return DS_DLQ_MALFORMED;
        out->kind = (int)kind;
        out->partition = (int32_t)partition;
        out->epoch = (int32_t)epoch;
        if (out->kind == DS_PARTIAL_STATUS)
                return DS_DLQ_NONE;
        if (dim < 0 || dim >= DS_DIM__CNT || win < 0 || win >= DS_WIN__CNT)
                return DS_DLQ_MALFORMED;
        if (win == DS_WIN_TOTAL ? start != 0
                                : start < -DS_PARTIAL_TIME_ABS || start > DS_PARTIAL_TIME_ABS ||
                                          start != ds_window_start((ds_window_t)win, start))
                return DS_DLQ_MALFORMED;
        if (dim == DS_DIM_GATE_HEADING && win != DS_WIN_DAY)
                return DS_DLQ_MALFORMED;
        for (int i = 0; i < 8; i++)
                if (v[i] < 0)
                        return DS_DLQ_MALFORMED;
        uint32_t key;
        uint64_t cell_hi = 0; /* a cell's gate bits above the key (ds_cell_rowkey) */
        if (dim == DS_DIM_GATE) {
                int g = ds_gate_lookup((const char *)k, (uint32_t)kl);
                if (g < 0)
                        return DS_DLQ_UNKNOWN_GATE;
                key = (uint32_t)g;
        } else if (dim == DS_DIM_COMMODITY) {
                if ((int)kl != digits || parse_digits(k, kl, &key))
                        return DS_DLQ_BAD_HS_CODE;
        } else {
                const uint8_t *bar = memchr(k, '|', kl);
                uint32_t heading;
                int g = bar ? ds_gate_lookup((const char *)k, (uint32_t)(bar - k)) : -1;
                if (g < 0)
                        return DS_DLQ_UNKNOWN_GATE;
                size_t hl = kl - (size_t)(bar - k) - 1;
                if ((int)hl != digits || parse_digits(bar + 1, hl, &heading))
                        return DS_DLQ_BAD_HS_CODE;
                ds_rowkey_t ck = ds_cell_rowkey((uint32_t)g, heading, start);
                key = ds_rowkey_key(ck);
                cell_hi = ck.k & (0x7ffULL << 48);
        }
        out->key = ds_rowkey((ds_dim_t)dim, (ds_window_t)win, key, start);
        out->key.k |= cell_hi;
        return DS_DLQ_NONE;
}

int ds_partial_key(const ds_partial_t *p, int digits, char *buf, size_t size) {
        ds_fmt_t f = ds_fmt(buf, size);
        ds_fmt_i64(&f, p->partition);
        if (p->kind == DS_PARTIAL_STATUS) {
                ds_fmt_str(&f, "|STATUS");
                return ds_fmt_end(&f);
        }
        ds_fmt_char(&f, '|');
        ds_fmt_str(&f, ds_dim_name(ds_rowkey_dim(p->key)));
        ds_fmt_char(&f, '|');
        ds_fmt_keytext(&f, p->key, digits);
        ds_fmt_char(&f, '|');
        ds_fmt_str(&f, ds_window_name(ds_rowkey_window(p->key)));
        ds_fmt_char(&f, '|');
        ds_fmt_i64(&f, p->key.start);
        return ds_fmt_end(&f);
}

int32_t ds_partial_route(ds_rowkey_t key, int32_t partitions) {
        uint8_t h[16];
        size_t n;
        if (ds_rowkey_dim(key) == DS_DIM_GATE_HEADING) {
                /* every cell of a (gate, day) in one place: the top-10 needs them together */
                uint32_t gate = ds_cell_gate(key);
                memcpy(h, &gate, 4);
                memcpy(h + 4, &key.start, 8);
                n = 12;
        } else {
                memcpy(h, &key.k, 8);
                memcpy(h + 8, &key.start, 8);
                n = 16;
        }
        return rd_kafka_msg_partitioner_murmur2(NULL, h, n, partitions, NULL, NULL);
}
