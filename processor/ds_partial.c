/*
 * ds_partial.c - PartialRows batches (schema id 7) and PartialTotal
 * messages (schema id 6, earlier releases'), encoded and decoded.
 *
 * Hand-written against customs_partial_rows.avsc and
 * customs_partial_total.avsc (field order matters). tests/test_partial.c
 * checks the batches against Apache Avro C, their order, sizes and damaged
 * forms; tests/test_merge.c feeds schema 6 out-of-range fields; replay's
 * processing role decodes its GATE TOTAL shares back from the batches.
 */
#include "ds_partial.h"
#include "ds_common.h"
#include "ds_domain.h"
#include "ds_encode.h"

#include <librdkafka/rdkafka.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a ROW's fields, written straight into the buffer --------------------
 *
 * A cycle encodes every changed (partition, row) share - 3 M in a 1 M
 * catch-up - in the processing role's workers (ds_partial_out_t; the main
 * thread did until the sixteenth round). A share is written with one
 * reservation of its largest size and raw stores (ds_avro_write_long), its
 * key text formatted in place: ~830 instructions a share before (each
 * field through ds_avro_put_long's room check, the key text formatted into
 * a buffer and copied, a ds_partial_t filled for each share), ~710 after,
 * batches' copies included (callgrind, `replay --role process` of
 * 50 k declarations; bench/HOTPATH.md, sixteenth round). The bytes are the
 * same: tests/test_partial.c compares them with a reference encoder. */

/* The key text's most bytes: a gate code, '|', a heading of up to 10 digits
 * (27 bits: 9; heading.digits pads to at most 10). Its Avro length is one
 * byte (zigzag of a length < 64). */
#define KEYTEXT_MAX (DS_GATE_CODE_MAX + 1 + 10)
_Static_assert(KEYTEXT_MAX < 64, "key text length must fit one varint byte");
/* A ROW's fields from dimension to the measures (the sketches excepted). */
#define ROW_HEAD_MAX (DS_AVRO_LONG_MAX + 1 + KEYTEXT_MAX + 2 * DS_AVRO_LONG_MAX + 8 * DS_AVRO_LONG_MAX)

/* The key text as Avro bytes (length, then text), formatted in place by
 * ds_fmt_keytext(); p has ROW_HEAD_MAX bytes of room, so the text's
 * terminating NUL, overwritten by the next field, fits too. */
static inline uint8_t *write_keytext(uint8_t *p, ds_rowkey_t k, int digits) {
        ds_fmt_t f = ds_fmt((char *)p + 1, KEYTEXT_MAX + 1);
        ds_fmt_keytext(&f, k, digits);
        size_t n = (size_t)ds_fmt_end(&f);
        *p = (uint8_t)(n << 1);
        return p + 1 + n;
}

/* Dimension, key text, window, start and the 8 measures, at p (which has
 * ROW_HEAD_MAX bytes of room). */
static inline uint8_t *write_row_head(uint8_t *p, ds_rowkey_t key, const ds_measures_t *m, int digits) {
        p += ds_avro_write_long(p, ds_rowkey_dim(key));
        p = write_keytext(p, key, digits);
        p += ds_avro_write_long(p, ds_rowkey_window(key));
        p += ds_avro_write_long(p, key.start);
        const int64_t *v = &m->declarations;
        for (int i = 0; i < 8; i++)
                p += ds_avro_write_long(p, v[i]);
        return p;
}

/* A ROW's own fields, dimension to sketches: the same in both schemas. */
static void put_row_fields(ds_buf_t *b, const ds_partial_t *p, int digits) {
        ds_buf_commit(b, write_row_head(ds_buf_tail(b, ROW_HEAD_MAX), p->key, &p->m, digits));
        ds_avro_put_bytes(b, p->declarants_sketch, p->declarants_len);
        ds_avro_put_bytes(b, p->vehicles_sketch, p->vehicles_len);
}

void ds_partial_encode(ds_buf_t *b, const ds_partial_t *p, int digits) {
        ds_wire_put_header(b, DS_SCHEMA_ID_PARTIAL);
        ds_avro_put_long(b, p->kind);
        ds_avro_put_long(b, p->partition);
        ds_avro_put_long(b, p->epoch);
        ds_avro_put_long(b, p->input_offset);
        ds_avro_put_long(b, p->watermark_ms);
        ds_buf_put(b, p->idle ? "\x01" : "\x00", 1);
        if (p->kind == DS_PARTIAL_ROW) {
                put_row_fields(b, p, digits);
        } else {
                /* dimension, an empty key, window, start, 8 measures, two empty sketches */
                static const uint8_t zeros[14];
                ds_buf_put(b, zeros, sizeof(zeros));
        }
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

/* A ROW's own fields, from dimension to the sketches (both schemas write
 * them in this order), read but not yet checked. */
typedef struct raw_row {
        int64_t dim, win, start;
        const uint8_t *k;
        size_t kl;
} raw_row_t;

static void rd_row_fields(ds_rd_t *in, ds_partial_t *out, raw_row_t *rr) {
        rr->dim = ds_rd_long(in);
        rr->k = ds_rd_bytes(in, &rr->kl);
        rr->win = ds_rd_long(in);
        rr->start = ds_rd_long(in);
        int64_t *v = &out->m.declarations;
        for (int i = 0; i < 8; i++)
                v[i] = ds_rd_long(in);
        out->declarants_sketch = ds_rd_bytes(in, &out->declarants_len);
        out->vehicles_sketch = ds_rd_bytes(in, &out->vehicles_len);
}

/* The source fields, checked as 64-bit values before they are narrowed: the
 * topic may carry anything, and 2^32 + x must not pass as x. */
static ds_dlq_reason_t check_source(ds_partial_t *out, int64_t partition, int64_t epoch) {
        if (partition < 0 || partition > DS_PARTITION_MAX || epoch < 0 || epoch > INT32_MAX)
                return DS_DLQ_MALFORMED;
        out->partition = (int32_t)partition;
        out->epoch = (int32_t)epoch;
        return DS_DLQ_NONE;
}

/* Every field of a ROW within what a processor writes: a value out of range
 * would index past an array, overflow the merge's sums or make a row no
 * window ever closes. Sets out->key. */
static ds_dlq_reason_t check_row(ds_partial_t *out, const raw_row_t *rr, int digits) {
        int64_t dim = rr->dim, win = rr->win, start = rr->start;
        const uint8_t *k = rr->k;
        size_t kl = rr->kl;
        if (dim < 0 || dim >= DS_DIM__CNT || win < 0 || win >= DS_WIN__CNT)
                return DS_DLQ_MALFORMED;
        if (win == DS_WIN_TOTAL ? start != 0
                                : start < -DS_PARTIAL_TIME_ABS || start > DS_PARTIAL_TIME_ABS ||
                                          start != ds_window_start((ds_window_t)win, start))
                return DS_DLQ_MALFORMED;
        if (dim == DS_DIM_GATE_HEADING && win != DS_WIN_DAY)
                return DS_DLQ_MALFORMED;
        const int64_t *v = &out->m.declarations;
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
                const uint8_t *bar = kl ? memchr(k, '|', kl) : NULL;
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
        raw_row_t rr;
        rd_row_fields(&in, out, &rr);
        out->updated_at = ds_rd_long(&in);
        if (in.bad)
                return DS_DLQ_TRUNCATED;
        if (in.p != in.end)
                return DS_DLQ_TRAILING_BYTES;
        if (kind != DS_PARTIAL_ROW && kind != DS_PARTIAL_STATUS)
                return DS_DLQ_MALFORMED;
        out->kind = (int)kind;
        if ((r = check_source(out, partition, epoch)))
                return r;
        if (out->kind == DS_PARTIAL_STATUS)
                return DS_DLQ_NONE;
        return check_row(out, &rr, digits);
}

/* ---- batches of rows (schema 7) ------------------------------------------ */

/* One partial partition's batch being filled: its rows, encoded. */
typedef struct pbatch {
        ds_buf_t rows;
        uint32_t n;
} pbatch_t;

struct ds_partial_batcher {
        int32_t partitions;
        int digits;
        size_t max_bytes;
        ds_partial_emit_fn emit;
        void *ctx;
        size_t max_staged; /* 0: no limit (ds_partial_batcher_limit) */
        size_t staged;     /* bytes of rows in the batches being filled */
        pbatch_t *b;       /* [partitions] */
        ds_buf_t statuses; /* the cycle's statuses (for every partial partition), encoded */
        uint32_t *status_end; /* [i]: where status i ends in statuses */
        uint32_t nstatuses, capstatuses;
        int oom;
        ds_buf_t msg;
};

ds_partial_batcher_t *ds_partial_batcher_new(int32_t partial_partitions, int heading_digits, size_t max_bytes,
                                             ds_partial_emit_fn emit, void *ctx) {
        if (partial_partitions <= 0)
                return NULL;
        ds_partial_batcher_t *pb = calloc(1, sizeof(*pb));
        if (!pb || !(pb->b = calloc((size_t)partial_partitions, sizeof(*pb->b)))) {
                free(pb);
                return NULL;
        }
        pb->partitions = partial_partitions;
        pb->digits = heading_digits;
        pb->max_bytes = max_bytes;
        pb->emit = emit;
        pb->ctx = ctx;
        return pb;
}

void ds_partial_batcher_limit(ds_partial_batcher_t *pb, size_t max_staged) {
        pb->max_staged = max_staged;
}

void ds_partial_batcher_destroy(ds_partial_batcher_t *pb) {
        if (!pb)
                return;
        for (int32_t i = 0; i < pb->partitions; i++)
                ds_buf_free(&pb->b[i].rows);
        free(pb->b);
        ds_buf_free(&pb->statuses);
        free(pb->status_end);
        ds_buf_free(&pb->msg);
        free(pb);
}

/* Emits a message for partial partition pp: header, updated_at, the rows of
 * its batch, then statuses [from, to); empties the batch. Each array is one
 * block (count, items) and its end (0). */
static int emit_msg(ds_partial_batcher_t *pb, int32_t pp, int64_t updated_at, uint32_t from, uint32_t to) {
        pbatch_t *b = &pb->b[pp];
        uint32_t n = b->n;
        if (!n && from == to)
                return 0;
        ds_buf_t *m = &pb->msg;
        m->len = 0;
        ds_wire_put_header(m, DS_SCHEMA_ID_PARTIAL_ROWS);
        ds_avro_put_long(m, updated_at);
        if (n) {
                ds_avro_put_long(m, n);
                ds_buf_put(m, b->rows.p, b->rows.len);
                pb->staged -= b->rows.len;
                b->n = 0;
                b->rows.len = 0;
        }
        ds_avro_put_long(m, 0);
        if (to > from) {
                uint32_t start = from ? pb->status_end[from - 1] : 0;
                ds_avro_put_long(m, to - from);
                ds_buf_put(m, pb->statuses.p + start, pb->status_end[to - 1] - start);
        }
        ds_avro_put_long(m, 0);
        return pb->emit(pb->ctx, pp, m->p, m->len, n);
}

/* The share just written at [before, o->len) of partial partition pp's
 * batch: counted, and when the batch is full the rows before it go first;
 * when the batches being filled pass the staging limit, this one goes. */
static int added(ds_partial_batcher_t *pb, int32_t pp, size_t before, int64_t updated_at) {
        pbatch_t *b = &pb->b[pp];
        ds_buf_t *o = &b->rows;
        int rc = 0;
        pb->staged += o->len - before;
        if (b->n && o->len > pb->max_bytes) {
                /* full: the rows before this one go (emit_msg() copies them
                 * out), and this one starts the next batch */
                size_t len = o->len - before;
                o->len = before;
                rc = emit_msg(pb, pp, updated_at, 0, 0);
                memmove(o->p, o->p + before, len);
                o->len = len;
        }
        b->n++;
        if (!rc && pb->max_staged && pb->staged > pb->max_staged)
                rc = emit_msg(pb, pp, updated_at, 0, 0);
        return rc;
}

/* partition, epoch, input offset: what a batch's row has before its fields */
#define SHARE_HEAD_MAX (3 * DS_AVRO_LONG_MAX)

static inline uint8_t *write_share_head(uint8_t *p, int32_t partition, int32_t epoch, int64_t offset) {
        p += ds_avro_write_long(p, partition);
        p += ds_avro_write_long(p, epoch);
        p += ds_avro_write_long(p, offset);
        return p;
}

int ds_partial_batcher_add(ds_partial_batcher_t *pb, const ds_partial_t *p, int64_t updated_at) {
        int32_t pp = ds_partial_route(p->key, pb->partitions);
        ds_buf_t *o = &pb->b[pp].rows;
        size_t before = o->len;
        ds_buf_commit(o, write_share_head(ds_buf_tail(o, SHARE_HEAD_MAX), p->partition, p->epoch, p->input_offset));
        put_row_fields(o, p, pb->digits);
        return added(pb, pp, before, updated_at);
}

int ds_partial_batcher_add_share(ds_partial_batcher_t *pb, const ds_outrow_t *r, int64_t updated_at) {
        int32_t pp = ds_partial_route(r->key, pb->partitions);
        ds_buf_t *o = &pb->b[pp].rows;
        size_t before = o->len;
        uint8_t *q = ds_buf_tail(o, SHARE_HEAD_MAX + ROW_HEAD_MAX + 2);
        q = write_share_head(q, r->partition, r->epoch, r->offset);
        q = write_row_head(q, r->key, &r->m, pb->digits);
        if (!r->distinct) {
                *q++ = 0; /* two empty sketches */
                *q++ = 0;
                ds_buf_commit(o, q);
        } else {
                ds_buf_commit(o, q);
                ds_hll_put_bytes(o, r->distinct->declarants);
                ds_hll_put_bytes(o, r->distinct->vehicles);
        }
        return added(pb, pp, before, updated_at);
}

void ds_partial_batcher_status(ds_partial_batcher_t *pb, const ds_partial_t *st) {
        if (pb->nstatuses == pb->capstatuses) {
                uint32_t cap = pb->capstatuses ? 2 * pb->capstatuses : 256;
                uint32_t *e = realloc(pb->status_end, cap * sizeof(*e));
                if (!e) {
                        pb->oom = 1; /* the flush fails */
                        return;
                }
                pb->status_end = e;
                pb->capstatuses = cap;
        }
        ds_buf_t *o = &pb->statuses;
        ds_avro_put_long(o, st->partition);
        ds_avro_put_long(o, st->epoch);
        ds_avro_put_long(o, st->input_offset);
        ds_avro_put_long(o, st->watermark_ms);
        ds_buf_put(o, st->idle ? "\x01" : "\x00", 1);
        for (int i = 0; i < 4; i++)
                ds_avro_put_long(o, st->retention_ms[i]);
        pb->status_end[pb->nstatuses++] = (uint32_t)o->len;
}

int ds_partial_batcher_flush(ds_partial_batcher_t *pb, int64_t updated_at) {
        int rc = pb->oom ? -1 : 0;
        for (int32_t pp = 0; pp < pb->partitions && !rc; pp++) {
                pbatch_t *b = &pb->b[pp];
                /* the statuses after the rows: in the rows' message if they
                 * fit, else in messages of their own of at most max_bytes
                 * each (thousands of input partitions) */
                if (b->n && b->rows.len + pb->statuses.len > pb->max_bytes)
                        rc = emit_msg(pb, pp, updated_at, 0, 0);
                uint32_t from = 0;
                do {
                        size_t bytes = b->rows.len;
                        uint32_t to = from;
                        while (to < pb->nstatuses) {
                                size_t len = pb->status_end[to] - (to ? pb->status_end[to - 1] : 0);
                                if (to > from && bytes + len > pb->max_bytes)
                                        break;
                                bytes += len;
                                to++;
                        }
                        if (!rc)
                                rc = emit_msg(pb, pp, updated_at, from, to);
                        from = to;
                } while (from < pb->nstatuses && !rc);
        }
        pb->statuses.len = 0;
        pb->nstatuses = 0;
        pb->oom = 0;
        return rc;
}

/* ---- a worker's share of a cycle's batches ------------------------------ */

/* ds_partial_emit_fn: the batch appended to the worker's buffer. */
static int out_emit(void *ctx, int32_t pp, const uint8_t *msg, size_t len, uint32_t rows) {
        ds_partial_out_t *o = ctx;
        if (o->n == o->cap) {
                uint32_t cap = o->cap ? o->cap * 2 : 256;
                ds_partial_msg_t *m = realloc(o->msgs, cap * sizeof(*m));
                if (!m)
                        return o->oom = -1;
                o->msgs = m;
                o->cap = cap;
        }
        o->msgs[o->n++] = (ds_partial_msg_t){pp, rows, o->bytes.len, len};
        ds_buf_put(&o->bytes, msg, len);
        return 0;
}

int ds_partial_out_init(ds_partial_out_t *o, int32_t partial_partitions, int heading_digits) {
        memset(o, 0, sizeof(*o));
        o->batcher = ds_partial_batcher_new(partial_partitions, heading_digits, DS_PARTIAL_BATCH_BYTES, out_emit, o);
        if (!o->batcher)
                return -1;
        ds_partial_batcher_limit(o->batcher, DS_PARTIAL_OUT_STAGED);
        return 0;
}

void ds_partial_out_free(ds_partial_out_t *o) {
        ds_partial_batcher_destroy(o->batcher);
        ds_buf_free(&o->bytes);
        free(o->msgs);
        memset(o, 0, sizeof(*o));
}

void ds_partial_out_reset(ds_partial_out_t *o) {
        o->bytes.len = 0;
        o->n = 0;
        o->oom = 0;
}

int ds_partial_out_add(ds_partial_out_t *o, const ds_outbox_t *ob, int64_t updated_at) {
        for (uint32_t k = 0; k < ob->nrows; k++)
                if (ds_partial_batcher_add_share(o->batcher, &ob->rows[k], updated_at))
                        return -1;
        return o->oom;
}

int ds_partial_out_finish(ds_partial_out_t *o, int64_t updated_at) {
        return ds_partial_batcher_flush(o->batcher, updated_at) || o->oom ? -1 : 0;
}

int ds_partial_schema(const uint8_t *msg, size_t len) {
        uint32_t id;
        const uint8_t *body;
        size_t blen;
        return ds_wire_parse(msg, len, &id, &body, &blen) ? -1 : (int)id;
}

ds_dlq_reason_t ds_partial_rows_open(const uint8_t *msg, size_t len, int digits, ds_partial_rows_t *it) {
        uint32_t id;
        const uint8_t *body;
        size_t blen;
        memset(it, 0, sizeof(*it));
        it->done = 1;
        ds_dlq_reason_t r = ds_wire_parse(msg, len, &id, &body, &blen);
        if (!r && id != DS_SCHEMA_ID_PARTIAL_ROWS)
                r = DS_DLQ_INCOMPATIBLE_SCHEMA;
        if (r)
                return it->err = r;
        it->done = 0;
        it->in = (ds_rd_t){body, body + blen, 0};
        it->digits = digits;
        it->updated_at = ds_rd_long(&it->in);
        if (it->in.bad) {
                it->done = 1;
                it->err = DS_DLQ_TRUNCATED;
        }
        return it->err;
}

/* Starts the next block of the current array when the last is used up:
 * a count (negative: its size in bytes follows, Avro's skippable form), 0
 * at the array's end. Returns 1 (items follow), 0 (the array ended) or -1. */
static int next_block(ds_partial_rows_t *it) {
        if (it->left)
                return 1;
        int64_t n = ds_rd_long(&it->in);
        if (n < 0) {
                n = n == INT64_MIN ? -1 : -n;
                (void)ds_rd_long(&it->in);
        }
        /* every item takes more than a byte */
        if (it->in.bad || n < 0 || n > it->in.end - it->in.p)
                return -1;
        it->left = n;
        return n ? 1 : 0;
}

/* Ends the reading: every later call says the same. */
static int fail(ds_partial_rows_t *it, ds_dlq_reason_t r, ds_dlq_reason_t *why) {
        it->done = 1;
        it->err = r;
        *why = r;
        return -1;
}

int ds_partial_rows_next(ds_partial_rows_t *it, ds_partial_t *out, ds_dlq_reason_t *why) {
        *why = DS_DLQ_NONE;
        for (;;) {
                if (it->done) {
                        *why = it->err;
                        return it->err ? -1 : 0;
                }
                int b = next_block(it);
                if (b < 0)
                        return fail(it, DS_DLQ_TRUNCATED, why);
                if (b)
                        break;
                if (++it->array == 2) { /* rows, statuses: the end */
                        if (it->in.p != it->in.end)
                                return fail(it, DS_DLQ_TRAILING_BYTES, why);
                        it->done = 1;
                        return 0;
                }
        }
        memset(out, 0, sizeof(*out));
        int64_t partition = ds_rd_long(&it->in), epoch = ds_rd_long(&it->in);
        out->input_offset = ds_rd_long(&it->in);
        out->updated_at = it->updated_at;
        raw_row_t rr;
        if (it->array == 0) {
                out->kind = DS_PARTIAL_ROW;
                rd_row_fields(&it->in, out, &rr);
        } else {
                out->kind = DS_PARTIAL_STATUS;
                out->watermark_ms = ds_rd_long(&it->in);
                if (it->in.p < it->in.end)
                        out->idle = *it->in.p++ != 0;
                else
                        it->in.bad = 1;
                for (int i = 0; i < 4; i++)
                        out->retention_ms[i] = ds_rd_long(&it->in);
        }
        it->left--;
        if (it->in.bad)
                return fail(it, DS_DLQ_TRUNCATED, why);
        if ((*why = check_source(out, partition, epoch)) ||
            (out->kind == DS_PARTIAL_ROW && (*why = check_row(out, &rr, it->digits))))
                return 2;
        if (out->kind == DS_PARTIAL_STATUS)
                for (int i = 0; i < 4; i++)
                        if (out->retention_ms[i] < 0 || out->retention_ms[i] > DS_PARTIAL_RET_MAX) {
                                *why = DS_DLQ_MALFORMED;
                                return 2;
                        }
        return 1;
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
