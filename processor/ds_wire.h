/*
 * ds_wire.h - Confluent wire framing and Avro binary writing.
 *
 * Every message value is: magic byte 0, 4-byte big-endian schema id, Avro
 * binary body. ds_wire_parse() splits a message; the ds_buf_* writers build
 * bodies for the generator (declarations) and the publisher (totals).
 *
 * ds_buf_t grows with realloc and is meant to be reused: after warm-up,
 * encoding allocates nothing.
 */
#ifndef DS_WIRE_H
#define DS_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ds_reason.h"

#define DS_WIRE_MAGIC 0
#define DS_WIRE_HEADER 5

typedef struct ds_buf {
        uint8_t *p;
        size_t len, cap;
} ds_buf_t;

void ds_buf_free(ds_buf_t *b);
/* Makes room for n more bytes; aborts the process on out-of-memory (the
 * generator and publisher cannot continue without it). */
void ds_buf_grow(ds_buf_t *b, size_t n);

static inline void ds_buf_reserve(ds_buf_t *b, size_t n) {
        if (b->len + n > b->cap)
                ds_buf_grow(b, n);
}

/* p may be NULL when n is 0 (an empty slice): memcpy would be undefined. */
static inline void ds_buf_put(ds_buf_t *b, const void *p, size_t n) {
        if (!n)
                return;
        ds_buf_reserve(b, n);
        memcpy(b->p + b->len, p, n);
        b->len += n;
}

/* Writes v as an Avro long (zigzag varint) at p, which has room for
 * DS_AVRO_LONG_MAX bytes; returns the bytes written. */
#define DS_AVRO_LONG_MAX 10
static inline size_t ds_avro_write_long(uint8_t *p, int64_t v) {
        uint64_t n = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
        size_t i = 0;
        while (n & ~0x7fULL) {
                p[i++] = (uint8_t)((n & 0x7f) | 0x80);
                n >>= 7;
        }
        p[i++] = (uint8_t)n;
        return i;
}

/* Writing in place: ds_buf_tail() makes room for n bytes and returns where
 * they go; ds_buf_commit() ends the buffer at p (within that room). */
static inline uint8_t *ds_buf_tail(ds_buf_t *b, size_t n) {
        ds_buf_reserve(b, n);
        return b->p + b->len;
}

static inline void ds_buf_commit(ds_buf_t *b, const uint8_t *p) {
        b->len = (size_t)(p - b->p);
}

static inline void ds_avro_put_long(ds_buf_t *b, int64_t v) {
        ds_buf_reserve(b, DS_AVRO_LONG_MAX);
        b->len += ds_avro_write_long(b->p + b->len, v);
}

static inline void ds_avro_put_bytes(ds_buf_t *b, const void *p, size_t n) {
        ds_avro_put_long(b, (int64_t)n);
        ds_buf_put(b, p, n);
}

static inline void ds_avro_put_str(ds_buf_t *b, const char *s) {
        ds_avro_put_bytes(b, s, strlen(s));
}

static inline void ds_avro_put_double(ds_buf_t *b, double d) {
        ds_buf_put(b, &d, 8); /* little-endian hosts only (x86-64, arm64) */
}

static inline void ds_wire_put_header(ds_buf_t *b, uint32_t schema_id) {
        uint8_t h[5] = {DS_WIRE_MAGIC, (uint8_t)(schema_id >> 24), (uint8_t)(schema_id >> 16),
                        (uint8_t)(schema_id >> 8), (uint8_t)schema_id};
        ds_buf_put(b, h, 5);
}

/* Splits msg into schema id and body. Returns EMPTY, SHORT_HEADER or
 * BAD_MAGIC, or DS_DLQ_NONE. */
static inline ds_dlq_reason_t ds_wire_parse(const uint8_t *msg, size_t len, uint32_t *schema_id,
                                            const uint8_t **body, size_t *body_len) {
        if (len == 0 || !msg)
                return DS_DLQ_EMPTY;
        if (msg[0] != DS_WIRE_MAGIC)
                return DS_DLQ_BAD_MAGIC;
        if (len < DS_WIRE_HEADER)
                return DS_DLQ_SHORT_HEADER;
        *schema_id = (uint32_t)msg[1] << 24 | (uint32_t)msg[2] << 16 | (uint32_t)msg[3] << 8 | msg[4];
        *body = msg + DS_WIRE_HEADER;
        *body_len = len - DS_WIRE_HEADER;
        return DS_DLQ_NONE;
}

/* A bounds-checked reader of the internal Avro records (partial rows,
 * changelog records): a read past the end, or a malformed long, sets bad and
 * yields 0 / NULL, so a caller checks once at the end. */
typedef struct ds_rd {
        const uint8_t *p, *end;
        int bad;
} ds_rd_t;

static inline int64_t ds_rd_long(ds_rd_t *r) {
        uint64_t v = 0;
        for (int i = 0; i < 10; i++) {
                if (r->p >= r->end) {
                        r->bad = 1;
                        return 0;
                }
                uint8_t b = *r->p++;
                v |= (uint64_t)(b & 0x7f) << (7 * i);
                if (!(b & 0x80))
                        return (int64_t)((v >> 1) ^ (~(v & 1) + 1));
        }
        r->bad = 1;
        return 0;
}

/* Avro bytes: a length, then that many bytes (returned in place). */
static inline const uint8_t *ds_rd_bytes(ds_rd_t *r, size_t *n) {
        int64_t len = ds_rd_long(r);
        if (r->bad || len < 0 || len > r->end - r->p) {
                r->bad = 1;
                *n = 0;
                return NULL;
        }
        const uint8_t *p = r->p;
        r->p += len;
        *n = (size_t)len;
        return p;
}

/* A fixed 8-byte word (little-endian hosts, as ds_avro_put_double()), for
 * values whose bits matter more than their size (keys, hashes). */
static inline void ds_buf_put_u64(ds_buf_t *b, uint64_t v) {
        ds_buf_put(b, &v, 8);
}

static inline uint64_t ds_rd_u64(ds_rd_t *r) {
        if (r->end - r->p < 8) {
                r->bad = 1;
                return 0;
        }
        uint64_t v;
        memcpy(&v, r->p, 8);
        r->p += 8;
        return v;
}

#endif
