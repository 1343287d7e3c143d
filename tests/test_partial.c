/*
 * test_partial.c - batches of partial rows (vn.customs.PartialRows, schema
 * id 7): what the batcher writes reads back row for row, in order, each in
 * its row's partial partition, with the cycle's statuses after the rows;
 * batches close before they pass their size; Apache Avro C reads the bytes
 * as customs_partial_rows.avsc says; damaged batches are read up to the
 * damage and never past it.
 */
#include <avro.h>
#include <librdkafka/rdkafka.h>
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ds_common.h"
#include "ds_domain.h"
#include "ds_agg.h"
#include "ds_encode.h"
#include "ds_partial.h"
#include "ds_rows.h"
#include "ds_testutil.h"
#include "ds_window.h"

#define DAY0 (1710028800000LL - 7 * 3600000LL) /* a local midnight */

/* The emitted messages, copied. */
typedef struct msg {
        int32_t pp;
        uint8_t *p;
        size_t len;
        uint32_t rows;
} msg_t;

static msg_t msgs[4096];
static int nmsgs;

static int collect(void *ctx, int32_t pp, const uint8_t *p, size_t len, uint32_t rows) {
        (void)ctx;
        cr_assert_lt(nmsgs, (int)DS_ARRAY_LEN(msgs));
        msg_t *m = &msgs[nmsgs++];
        m->pp = pp;
        m->p = malloc(len);
        memcpy(m->p, p, len);
        m->len = len;
        m->rows = rows;
        return 0;
}

static void setup(void) {
        ds_domain_init();
        nmsgs = 0;
}

static void teardown(void) {
        for (int i = 0; i < nmsgs; i++)
                free(msgs[i].p);
}

TestSuite(partial, .init = setup, .fini = teardown);

/* The i-th of a varied set of rows: every dimension and window, shares of
 * three input partitions, sketches on GATE DAY rows. */
static ds_partial_t row_i(int i) {
        static const char sk1[] = "declarants", sk2[] = "vehicles!";
        ds_partial_t p;
        memset(&p, 0, sizeof(p));
        p.kind = DS_PARTIAL_ROW;
        p.partition = i % 3;
        p.epoch = 1 + i % 2;
        p.input_offset = 1000 + i;
        int64_t *v = &p.m.declarations;
        for (int k = 0; k < 8; k++)
                v[k] = (int64_t)i * 1000 + k;
        uint32_t gate = (uint32_t)(i % ds_gate_count());
        switch (i % 5) {
        case 0:
                p.key = ds_rowkey(DS_DIM_GATE, DS_WIN_DAY, gate, DAY0);
                p.declarants_sketch = (const uint8_t *)sk1, p.declarants_len = sizeof(sk1) - 1;
                p.vehicles_sketch = (const uint8_t *)sk2, p.vehicles_len = sizeof(sk2) - 1;
                break;
        case 1:
                p.key = ds_rowkey(DS_DIM_GATE, DS_WIN_TOTAL, gate, 0);
                break;
        case 2:
                p.key = ds_rowkey(DS_DIM_COMMODITY, DS_WIN_MINUTE, (uint32_t)(100 + i % 9000),
                                  DAY0 + (int64_t)(i % 1440) * DS_MINUTE_MS);
                break;
        case 3:
                p.key = ds_rowkey(DS_DIM_COMMODITY, DS_WIN_HOUR, (uint32_t)(8000 + i % 1000),
                                  DAY0 + (int64_t)(i % 24) * DS_HOUR_MS);
                break;
        default:
                p.key = ds_cell_rowkey(gate, (uint32_t)(1000 + i % 8000), DAY0);
                break;
        }
        return p;
}

static void expect_same_row(const ds_partial_t *got, const ds_partial_t *want, int i) {
        cr_expect_eq(got->kind, DS_PARTIAL_ROW, "row %d: kind", i);
        cr_expect_eq(got->partition, want->partition, "row %d: partition", i);
        cr_expect_eq(got->epoch, want->epoch, "row %d: epoch", i);
        cr_expect_eq(got->input_offset, want->input_offset, "row %d: offset", i);
        cr_expect(got->key.k == want->key.k && got->key.start == want->key.start, "row %d: key", i);
        cr_expect(!memcmp(&got->m, &want->m, sizeof(got->m)), "row %d: measures", i);
        cr_expect_eq(got->declarants_len, want->declarants_len, "row %d: sketch", i);
        cr_expect_eq(got->vehicles_len, want->vehicles_len, "row %d: sketch", i);
        if (got->declarants_len == want->declarants_len && want->declarants_len)
                cr_expect(!memcmp(got->declarants_sketch, want->declarants_sketch, want->declarants_len));
}

/* Reads every message of partial partition pp in order: the rows' indexes
 * (found by input offset) into seen[], checking each against row_i() and its
 * order; statuses counted, and checked to come after every row. Returns the
 * rows read. */
static int read_pp(int32_t pp, int *seen, int nrows, int *statuses_last) {
        int n = 0;
        *statuses_last = 0;
        for (int k = 0; k < nmsgs; k++) {
                if (msgs[k].pp != pp)
                        continue;
                ds_partial_rows_t it;
                cr_assert_eq(ds_partial_rows_open(msgs[k].p, msgs[k].len, 4, &it), DS_DLQ_NONE);
                cr_expect_eq(it.updated_at, 77);
                ds_partial_t got;
                ds_dlq_reason_t why;
                int rc;
                uint32_t rows = 0;
                while ((rc = ds_partial_rows_next(&it, &got, &why)) == 1) {
                        if (got.kind == DS_PARTIAL_STATUS) {
                                (*statuses_last)++;
                                continue;
                        }
                        cr_expect_eq(*statuses_last, 0, "partial partition %d: a row after a status", pp);
                        rows++;
                        int i = (int)(got.input_offset - 1000);
                        cr_assert(i >= 0 && i < nrows);
                        ds_partial_t want = row_i(i);
                        expect_same_row(&got, &want, i);
                        cr_expect_eq(ds_partial_route(want.key, 4), pp, "row %d in partial partition %d", i, pp);
                        cr_expect_gt(i, n ? seen[n - 1] : -1, "rows out of their order");
                        seen[n++] = i;
                }
                cr_expect_eq(rc, 0, "message %d: %s", k, ds_dlq_code(why));
                cr_expect_eq(rows, msgs[k].rows, "the count emitted with the message");
        }
        return n;
}

Test(partial, a_batch_reads_back_row_for_row_then_its_statuses) {
        ds_partial_batcher_t *pb = ds_partial_batcher_new(4, 4, DS_PARTIAL_BATCH_BYTES, collect, NULL);
        cr_assert_not_null(pb);
        const int N = 1000;
        for (int i = 0; i < N; i++) {
                ds_partial_t p = row_i(i);
                cr_assert_eq(ds_partial_batcher_add(pb, &p, 77), 0);
        }
        cr_expect_eq(nmsgs, 0, "a batch went out before it was full or flushed");
        for (int s = 0; s < 3; s++) {
                ds_partial_t st = {.kind = DS_PARTIAL_STATUS, .partition = s, .epoch = 4, .input_offset = 5000 + s,
                                   .watermark_ms = s == 2 ? INT64_MIN : DAY0 + s, .idle = s == 1,
                                   .retention_ms = {60000, 3600000, DS_DAY_MS, s}};
                ds_partial_batcher_status(pb, &st);
        }
        cr_assert_eq(ds_partial_batcher_flush(pb, 77), 0);
        cr_expect_eq(nmsgs, 4, "one message per partial partition");
        int seen[1000], total = 0;
        for (int32_t pp = 0; pp < 4; pp++) {
                int statuses;
                total += read_pp(pp, seen, N, &statuses);
                cr_expect_eq(statuses, 3, "partial partition %d: %d statuses", pp, statuses);
        }
        cr_expect_eq(total, N, "%d rows read back of %d", total, N);
        /* the statuses' fields */
        ds_partial_rows_t it;
        ds_partial_t got;
        ds_dlq_reason_t why;
        cr_assert_eq(ds_partial_rows_open(msgs[0].p, msgs[0].len, 4, &it), DS_DLQ_NONE);
        int s = 0;
        while (ds_partial_rows_next(&it, &got, &why) == 1)
                if (got.kind == DS_PARTIAL_STATUS) {
                        cr_expect_eq(got.partition, s);
                        cr_expect_eq(got.epoch, 4);
                        cr_expect_eq(got.input_offset, 5000 + s);
                        cr_expect_eq(got.watermark_ms, s == 2 ? INT64_MIN : DAY0 + s);
                        cr_expect_eq(got.idle, s == 1);
                        cr_expect(got.retention_ms[0] == 60000 && got.retention_ms[1] == 3600000 &&
                                  got.retention_ms[2] == DS_DAY_MS && got.retention_ms[3] == s);
                        s++;
                }
        cr_expect_eq(s, 3);
        /* a flush with nothing new sends nothing: the statuses went with the last */
        cr_assert_eq(ds_partial_batcher_flush(pb, 78), 0);
        cr_expect_eq(nmsgs, 4);
        ds_partial_batcher_destroy(pb);
}

Test(partial, a_full_batch_goes_before_it_passes_its_size) {
        const size_t max = 600;
        ds_partial_batcher_t *pb = ds_partial_batcher_new(4, 4, max, collect, NULL);
        cr_assert_not_null(pb);
        const int N = 1000;
        for (int i = 0; i < N; i++) {
                ds_partial_t p = row_i(i);
                cr_assert_eq(ds_partial_batcher_add(pb, &p, 77), 0);
        }
        ds_partial_t st = {.kind = DS_PARTIAL_STATUS, .partition = 0, .epoch = 1, .input_offset = 9};
        ds_partial_batcher_status(pb, &st);
        cr_assert_eq(ds_partial_batcher_flush(pb, 77), 0);
        cr_expect_gt(nmsgs, 4 * 20, "%d messages", nmsgs);
        for (int k = 0; k < nmsgs; k++)
                cr_expect_leq(msgs[k].len, max + 32, "message %d: %zu bytes", k, msgs[k].len);
        int seen[1000], total = 0;
        for (int32_t pp = 0; pp < 4; pp++) {
                int statuses;
                total += read_pp(pp, seen, N, &statuses);
                cr_expect_eq(statuses, 1);
        }
        cr_expect_eq(total, N);
        ds_partial_batcher_destroy(pb);
}

/* Thousands of input partitions' statuses do not fit one message: they
 * follow the rows in messages of their own, none past the size, all in
 * order, in every partial partition. */
Test(partial, many_statuses_go_in_messages_of_their_own_after_the_rows) {
        const size_t max = 600;
        ds_partial_batcher_t *pb = ds_partial_batcher_new(4, 4, max, collect, NULL);
        cr_assert_not_null(pb);
        for (int i = 0; i < 40; i++) {
                ds_partial_t p = row_i(i);
                cr_assert_eq(ds_partial_batcher_add(pb, &p, 77), 0);
        }
        const int S = 2000;
        for (int k = 0; k < S; k++) {
                ds_partial_t st = {.kind = DS_PARTIAL_STATUS, .partition = k, .epoch = 1, .input_offset = 10 * k};
                ds_partial_batcher_status(pb, &st);
        }
        cr_assert_eq(ds_partial_batcher_flush(pb, 77), 0);
        for (int k = 0; k < nmsgs; k++)
                cr_expect_leq(msgs[k].len, max + 32, "message %d: %zu bytes", k, msgs[k].len);
        int seen[40], total = 0;
        for (int32_t pp = 0; pp < 4; pp++) {
                int statuses;
                total += read_pp(pp, seen, 40, &statuses);
                (void)statuses; /* counted per message by read_pp; every one is checked below */
                int next = 0;
                for (int k = 0; k < nmsgs; k++) {
                        if (msgs[k].pp != pp)
                                continue;
                        ds_partial_rows_t it;
                        ds_partial_t got;
                        ds_dlq_reason_t why;
                        cr_assert_eq(ds_partial_rows_open(msgs[k].p, msgs[k].len, 4, &it), DS_DLQ_NONE);
                        while (ds_partial_rows_next(&it, &got, &why) == 1)
                                if (got.kind == DS_PARTIAL_STATUS) {
                                        cr_assert_eq(got.partition, next, "partial partition %d: status %d, want %d",
                                                     pp, got.partition, next);
                                        next++;
                                }
                }
                cr_expect_eq(next, S, "partial partition %d: %d statuses of %d", pp, next, S);
        }
        cr_expect_eq(total, 40);
        ds_partial_batcher_destroy(pb);
}

/* ---- Apache Avro C reads what the hand-written encoder writes -------------- */

static int64_t field_long(avro_value_t *rec, const char *name) {
        avro_value_t f;
        cr_assert_eq(avro_value_get_by_name(rec, name, &f, NULL), 0, "no field %s", name);
        int64_t l = 0;
        int32_t i = 0;
        if (avro_value_get_type(&f) == AVRO_INT32) {
                cr_assert_eq(avro_value_get_int(&f, &i), 0);
                return i;
        }
        if (avro_value_get_type(&f) == AVRO_ENUM) {
                int e;
                cr_assert_eq(avro_value_get_enum(&f, &e), 0);
                return e;
        }
        if (avro_value_get_type(&f) == AVRO_BOOLEAN) {
                int b;
                cr_assert_eq(avro_value_get_boolean(&f, &b), 0);
                return b;
        }
        cr_assert_eq(avro_value_get_long(&f, &l), 0, "%s: %s", name, avro_strerror());
        return l;
}

static size_t field_bytes(avro_value_t *rec, const char *name, const void **p) {
        avro_value_t f;
        size_t n = 0;
        cr_assert_eq(avro_value_get_by_name(rec, name, &f, NULL), 0, "no field %s", name);
        if (avro_value_get_type(&f) == AVRO_STRING) {
                const char *s;
                cr_assert_eq(avro_value_get_string(&f, &s, &n), 0);
                *p = s;
                return n - 1; /* Avro C counts the NUL */
        }
        cr_assert_eq(avro_value_get_bytes(&f, p, &n), 0);
        return n;
}

Test(partial, avro_c_reads_a_batch_as_the_schema_says) {
        size_t jl;
        char *json = ds_slurp(DS_SOURCE_DIR "/schemas/customs_partial_rows.avsc", &jl);
        cr_assert_not_null(json);
        avro_schema_t schema;
        cr_assert_eq(avro_schema_from_json_length(json, jl, &schema), 0, "%s", avro_strerror());
        free(json);
        ds_partial_batcher_t *pb = ds_partial_batcher_new(1, 4, DS_PARTIAL_BATCH_BYTES, collect, NULL);
        const int N = 50;
        for (int i = 0; i < N; i++) {
                ds_partial_t p = row_i(i);
                cr_assert_eq(ds_partial_batcher_add(pb, &p, 77), 0);
        }
        ds_partial_t st = {.kind = DS_PARTIAL_STATUS, .partition = 2, .epoch = 3, .input_offset = 44,
                           .watermark_ms = INT64_MIN, .idle = 1, .retention_ms = {11, 22, 33, 44}};
        ds_partial_batcher_status(pb, &st);
        cr_assert_eq(ds_partial_batcher_flush(pb, 77), 0);
        ds_partial_batcher_destroy(pb);
        cr_assert_eq(nmsgs, 1);
        cr_assert_eq(ds_partial_schema(msgs[0].p, msgs[0].len), DS_SCHEMA_ID_PARTIAL_ROWS);

        avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
        avro_value_t v;
        cr_assert_eq(avro_generic_value_new(iface, &v), 0);
        avro_reader_t rd = avro_reader_memory((const char *)msgs[0].p + 5, (int64_t)msgs[0].len - 5);
        cr_assert_eq(avro_value_read(rd, &v), 0, "Avro C cannot read the batch: %s", avro_strerror());
        cr_expect_eq(field_long(&v, "updated_at"), 77);
        avro_value_t rows, sts;
        cr_assert_eq(avro_value_get_by_name(&v, "rows", &rows, NULL), 0);
        size_t n;
        cr_assert_eq(avro_value_get_size(&rows, &n), 0);
        cr_assert_eq(n, (size_t)N);
        static const char *const measures[8] = {"declarations",           "items",
                                                "customs_value_usd_cents", "gross_weight_g",
                                                "export_value_usd_cents", "import_value_usd_cents",
                                                "transit_value_usd_cents", "border_resident_value_usd_cents"};
        for (int i = 0; i < N; i++) {
                avro_value_t r;
                cr_assert_eq(avro_value_get_by_index(&rows, (size_t)i, &r, NULL), 0);
                ds_partial_t want = row_i(i);
                cr_expect_eq(field_long(&r, "partition"), want.partition);
                cr_expect_eq(field_long(&r, "epoch"), want.epoch);
                cr_expect_eq(field_long(&r, "input_offset"), want.input_offset);
                cr_expect_eq(field_long(&r, "dimension"), ds_rowkey_dim(want.key));
                cr_expect_eq(field_long(&r, "window"), ds_rowkey_window(want.key));
                cr_expect_eq(field_long(&r, "window_start"), want.key.start);
                const int64_t *m = &want.m.declarations;
                for (int k = 0; k < 8; k++)
                        cr_expect_eq(field_long(&r, measures[k]), m[k], "row %d: %s", i, measures[k]);
                const void *kp;
                size_t kl = field_bytes(&r, "key", &kp);
                char kt[48];
                int wl = ds_row_keytext(want.key, 4, kt, sizeof(kt));
                cr_expect(kl == (size_t)wl && !memcmp(kp, kt, kl), "row %d: key %.*s, want %s", i, (int)kl,
                          (const char *)kp, kt);
                const void *sp;
                cr_expect_eq(field_bytes(&r, "declarants_sketch", &sp), want.declarants_len);
        }
        cr_assert_eq(avro_value_get_by_name(&v, "statuses", &sts, NULL), 0);
        cr_assert_eq(avro_value_get_size(&sts, &n), 0);
        cr_assert_eq(n, 1);
        avro_value_t s;
        cr_assert_eq(avro_value_get_by_index(&sts, 0, &s, NULL), 0);
        cr_expect_eq(field_long(&s, "partition"), 2);
        cr_expect_eq(field_long(&s, "epoch"), 3);
        cr_expect_eq(field_long(&s, "input_offset"), 44);
        cr_expect_eq(field_long(&s, "watermark"), INT64_MIN);
        cr_expect_eq(field_long(&s, "idle"), 1);
        cr_expect_eq(field_long(&s, "minute_retention_ms"), 11);
        cr_expect_eq(field_long(&s, "hour_retention_ms"), 22);
        cr_expect_eq(field_long(&s, "day_retention_ms"), 33);
        cr_expect_eq(field_long(&s, "top_retention_ms"), 44);
        avro_reader_free(rd);
        avro_value_decref(&v);
        avro_value_iface_decref(iface);
        avro_schema_decref(schema);
}

/* ---- damaged batches ------------------------------------------------------- */

/* Every cut of a batch reads some rows, then says it is truncated: never a
 * read past the cut (ASan), never an end reported as clean. */
Test(partial, a_cut_batch_reads_up_to_the_cut) {
        ds_partial_batcher_t *pb = ds_partial_batcher_new(1, 4, DS_PARTIAL_BATCH_BYTES, collect, NULL);
        for (int i = 0; i < 12; i++) {
                ds_partial_t p = row_i(i);
                cr_assert_eq(ds_partial_batcher_add(pb, &p, 77), 0);
        }
        ds_partial_t st = {.kind = DS_PARTIAL_STATUS, .partition = 1, .epoch = 1, .input_offset = 2};
        ds_partial_batcher_status(pb, &st);
        cr_assert_eq(ds_partial_batcher_flush(pb, 77), 0);
        ds_partial_batcher_destroy(pb);
        cr_assert_eq(nmsgs, 1);
        for (size_t cut = 0; cut < msgs[0].len; cut++) {
                uint8_t *p = malloc(cut ? cut : 1);
                memcpy(p, msgs[0].p, cut);
                ds_partial_rows_t it;
                ds_partial_t got;
                ds_dlq_reason_t why;
                if (ds_partial_rows_open(p, cut, 4, &it) == DS_DLQ_NONE) {
                        int rc, items = 0;
                        while ((rc = ds_partial_rows_next(&it, &got, &why)) == 1)
                                items++;
                        cr_expect_eq(rc, -1, "cut at %zu of %zu: read as whole (%d items)", cut, msgs[0].len,
                                     items);
                        cr_expect_leq(items, 13);
                }
                free(p);
        }
        /* trailing bytes are refused too */
        uint8_t *p = malloc(msgs[0].len + 1);
        memcpy(p, msgs[0].p, msgs[0].len);
        p[msgs[0].len] = 0;
        ds_partial_rows_t it;
        ds_partial_t got;
        ds_dlq_reason_t why;
        int rc;
        cr_assert_eq(ds_partial_rows_open(p, msgs[0].len + 1, 4, &it), DS_DLQ_NONE);
        while ((rc = ds_partial_rows_next(&it, &got, &why)) == 1)
                ;
        cr_expect_eq(rc, -1);
        cr_expect_eq(why, DS_DLQ_TRAILING_BYTES);
        free(p);
}

/* A row out of range (a gate this merge does not know, a negative value) is
 * skipped on its own: the rows after it are read. Avro's other block form
 * (a negative count, then the block's size in bytes) is read too. */
Test(partial, a_row_out_of_range_is_skipped_and_the_rest_read) {
        ds_buf_t b = {0};
        ds_wire_put_header(&b, DS_SCHEMA_ID_PARTIAL_ROWS);
        ds_avro_put_long(&b, 5); /* updated_at */
        ds_buf_t rows = {0};
        const char *keys[3] = {"MONGCAI", "NOSUCHGATE", "MONGCAI"};
        for (int i = 0; i < 3; i++) {
                const int64_t head[] = {1, 1, 100 + i, DS_DIM_GATE};
                for (size_t k = 0; k < DS_ARRAY_LEN(head); k++)
                        ds_avro_put_long(&rows, head[k]);
                ds_avro_put_bytes(&rows, keys[i], strlen(keys[i]));
                ds_avro_put_long(&rows, DS_WIN_TOTAL);
                ds_avro_put_long(&rows, 0);
                for (int k = 0; k < 8; k++)
                        ds_avro_put_long(&rows, k == 2 && i == 2 ? -1 : 7);
                ds_avro_put_bytes(&rows, NULL, 0);
                ds_avro_put_bytes(&rows, NULL, 0);
        }
        ds_avro_put_long(&b, -3); /* three rows, */
        ds_avro_put_long(&b, (int64_t)rows.len); /* this many bytes */
        ds_buf_put(&b, rows.p, rows.len);
        ds_avro_put_long(&b, 0);
        ds_avro_put_long(&b, 0); /* no statuses */
        ds_partial_rows_t it;
        ds_partial_t got;
        ds_dlq_reason_t why;
        cr_assert_eq(ds_partial_rows_open(b.p, b.len, 4, &it), DS_DLQ_NONE);
        cr_expect_eq(ds_partial_rows_next(&it, &got, &why), 1);
        cr_expect_eq(got.input_offset, 100);
        cr_expect_eq(ds_partial_rows_next(&it, &got, &why), 2);
        cr_expect_eq(why, DS_DLQ_UNKNOWN_GATE);
        cr_expect_eq(ds_partial_rows_next(&it, &got, &why), 2);
        cr_expect_eq(why, DS_DLQ_MALFORMED, "a negative value");
        cr_expect_eq(ds_partial_rows_next(&it, &got, &why), 0, "%s", ds_dlq_code(why));
        /* a STATUS message (schema 6) is not a batch */
        ds_buf_t s6 = {0};
        ds_partial_t st = {.kind = DS_PARTIAL_STATUS, .partition = 1, .epoch = 1};
        ds_partial_encode(&s6, &st, 4);
        cr_expect_eq(ds_partial_rows_open(s6.p, s6.len, 4, &it), DS_DLQ_INCOMPATIBLE_SCHEMA);
        cr_expect_eq(ds_partial_schema(s6.p, s6.len), DS_SCHEMA_ID_PARTIAL);
        ds_buf_free(&s6);
        ds_buf_free(&rows);
        ds_buf_free(&b);
}

/* ---- the encoder against a reference -------------------------------------- */

/* The partial partition of a row is librdkafka's murmur2 partitioner over
 * the row's bytes, as laid out since the first release (a change of the
 * layout would send a row's shares to another partial partition than the
 * ones already on the topic). */
Test(partial, the_route_is_librdkafkas_murmur2_partitioner) {
        uint64_t rs = 42;
        for (int i = 0; i < 5000; i++) {
                ds_rowkey_t k = {ds_test_rnd(&rs), (int64_t)ds_test_rnd(&rs)};
                int32_t parts = 1 + (int32_t)(ds_test_rnd(&rs) % 500);
                uint8_t h[16];
                size_t n = 16;
                if (ds_rowkey_dim(k) == DS_DIM_GATE_HEADING) {
                        uint32_t gate = ds_cell_gate(k);
                        memcpy(h, &gate, 4);
                        memcpy(h + 4, &k.start, 8);
                        n = 12;
                } else {
                        memcpy(h, &k.k, 8);
                        memcpy(h + 8, &k.start, 8);
                }
                cr_assert_eq(ds_partial_route(k, parts),
                             rd_kafka_msg_partitioner_murmur2(NULL, h, n, parts, NULL, NULL));
        }
}

/* A batch row as the encoder wrote it before it wrote in place (field by
 * field through ds_avro_put_*, the key text from ds_row_keytext()): the
 * reference both ds_partial_batcher_add() and ds_partial_batcher_add_share()
 * must match byte for byte. */
static void reference_row(ds_buf_t *b, const ds_outrow_t *o, int digits) {
        uint8_t s1[3 + DS_HLL_M], s2[3 + DS_HLL_M];
        size_t l1 = 0, l2 = 0;
        if (o->distinct) {
                l1 = ds_hll_serialize(o->distinct->declarants, s1);
                l2 = ds_hll_serialize(o->distinct->vehicles, s2);
        }
        char kt[64];
        int kl = ds_row_keytext(o->key, digits, kt, sizeof(kt));
        cr_assert(kl > 0 && kl < (int)sizeof(kt));
        ds_avro_put_long(b, o->partition);
        ds_avro_put_long(b, o->epoch);
        ds_avro_put_long(b, o->offset);
        ds_avro_put_long(b, ds_rowkey_dim(o->key));
        ds_avro_put_bytes(b, kt, (size_t)kl);
        ds_avro_put_long(b, ds_rowkey_window(o->key));
        ds_avro_put_long(b, o->key.start);
        const int64_t *v = &o->m.declarations;
        for (int i = 0; i < 8; i++)
                ds_avro_put_long(b, v[i]);
        ds_avro_put_bytes(b, s1, l1);
        ds_avro_put_bytes(b, s2, l2);
}

/* A value of every varint length, signs and extremes included. */
static int64_t any_long(uint64_t *rs) {
        switch (ds_test_rnd(rs) % 6) {
        case 0:
                return (int64_t)(ds_test_rnd(rs) % 64);
        case 1:
                return -(int64_t)(ds_test_rnd(rs) % 100000);
        case 2:
                return (int64_t)(ds_test_rnd(rs) >> (ds_test_rnd(rs) % 64));
        case 3:
                return ds_test_rnd(rs) % 2 ? INT64_MAX : INT64_MIN;
        default:
                return (int64_t)ds_test_rnd(rs);
        }
}

/* Shares of every dimension and window - the longest gate code (a gates
 * file's), headings of up to 27 bits, every heading.digits, any start and
 * measure, GATE DAY rows with empty, sparse and dense sketches - encode to
 * the reference's bytes, whichever way they are added. */
Test(partial, a_share_encodes_as_the_reference_does) {
        char *dir = ds_tmpdir("ds-partial");
        cr_assert_not_null(dir);
        char *gates = ds_join(dir, "gates.csv");
        FILE *f = fopen(gates, "w");
        cr_assert_not_null(f);
        fprintf(f, "gate_code,name_vi,province,kind,customs_office_prefix\n");
        fprintf(f, "ABCDEFGHIJKLMNOP,Cửa khẩu dài,Test,opening,15\n");
        cr_assert_eq(fclose(f), 0);
        char err[256];
        cr_assert_eq(ds_domain_add_gates_file(gates, err, sizeof(err)), 1, "%s", err);
        int ngates = ds_gate_count();
        cr_assert_eq(strlen(ds_gate(ngates - 1)->code), DS_GATE_CODE_MAX);

        ds_distinct_t *sk[3] = {ds_distinct_new(), ds_distinct_new(), ds_distinct_new()};
        uint64_t rs = 7;
        for (int i = 0; i < 50; i++) /* sparse */
                cr_assert_eq(ds_hll_add(&sk[1]->declarants, ds_mix64((uint64_t)i)), 0);
        for (int i = 0; i < 20000; i++) { /* dense */
                cr_assert_eq(ds_hll_add(&sk[2]->declarants, ds_mix64((uint64_t)i)), 0);
                cr_assert_eq(ds_hll_add(&sk[2]->vehicles, ds_mix64((uint64_t)i + 1000000)), 0);
        }
        for (int digits = 2; digits <= 10; digits++) {
                nmsgs = 0;
                /* batches large enough for all the rows (dense sketches are
                 * 16 KiB): one message per partial partition each way */
                ds_partial_batcher_t *a = ds_partial_batcher_new(3, digits, 64 << 20, collect, NULL);
                ds_partial_batcher_t *s = ds_partial_batcher_new(3, digits, 64 << 20, collect, NULL);
                ds_buf_t want[3] = {{0}};
                uint32_t nwant[3] = {0};
                for (int i = 0; i < 600; i++) {
                        ds_outrow_t o = {(int32_t)(ds_test_rnd(&rs) % 65535),
                                         (int32_t)(ds_test_rnd(&rs) % 1000000),
                                         (int64_t)(ds_test_rnd(&rs) >> (ds_test_rnd(&rs) % 64)),
                                         {0, 0},
                                         {0},
                                         NULL};
                        uint32_t gate =
                                (uint32_t)(i % 7 == 0 ? ngates - 1 : (int)(ds_test_rnd(&rs) % (uint64_t)ngates));
                        uint32_t heading = (uint32_t)(ds_test_rnd(&rs) >> (37 + ds_test_rnd(&rs) % 27));
                        ds_window_t w = (ds_window_t)(ds_test_rnd(&rs) % DS_WIN__CNT);
                        int64_t start = w == DS_WIN_TOTAL ? 0 : any_long(&rs);
                        switch (i % 3) {
                        case 0:
                                o.key = ds_rowkey(DS_DIM_GATE, w, gate, start);
                                if (w == DS_WIN_DAY)
                                        o.distinct = sk[ds_test_rnd(&rs) % 3];
                                break;
                        case 1:
                                o.key = ds_rowkey(DS_DIM_COMMODITY, w, heading, start);
                                break;
                        default:
                                o.key = ds_cell_rowkey(gate, heading, start);
                                break;
                        }
                        int64_t *v = &o.m.declarations;
                        for (int k = 0; k < 8; k++)
                                v[k] = any_long(&rs);
                        /* the same share as a ds_partial_t, sketches serialized */
                        static uint8_t s1[3 + DS_HLL_M], s2[3 + DS_HLL_M];
                        ds_partial_t p = {DS_PARTIAL_ROW, o.partition, o.epoch, o.offset, 0,  0,  o.key, o.m,
                                          NULL,           0,           NULL,    0,        77, {0}};
                        if (o.distinct) {
                                p.declarants_len = ds_hll_serialize(o.distinct->declarants, s1);
                                p.vehicles_len = ds_hll_serialize(o.distinct->vehicles, s2);
                                p.declarants_sketch = s1;
                                p.vehicles_sketch = s2;
                        }
                        cr_assert_eq(ds_partial_batcher_add(a, &p, 77), 0);
                        cr_assert_eq(ds_partial_batcher_add_share(s, &o, 77), 0);
                        int32_t pp = ds_partial_route(o.key, 3);
                        reference_row(&want[pp], &o, digits);
                        nwant[pp]++;
                }
                cr_assert_eq(ds_partial_batcher_flush(a, 77), 0);
                int from_a = nmsgs;
                cr_assert_eq(ds_partial_batcher_flush(s, 77), 0);
                ds_partial_batcher_destroy(a);
                ds_partial_batcher_destroy(s);
                /* the same bytes both ways, and the reference batch's */
                cr_assert_eq(from_a, 3, "digits %d: %d messages", digits, from_a);
                cr_assert_eq(nmsgs, 6);
                for (int k = 0; k < 3; k++) {
                        const msg_t *x = &msgs[k], *y = &msgs[3 + k];
                        cr_assert_eq(x->pp, y->pp);
                        cr_assert(x->len == y->len && !memcmp(x->p, y->p, x->len),
                                  "digits %d, partial partition %d: the two ways differ", digits, x->pp);
                        ds_buf_t r = {0};
                        ds_wire_put_header(&r, DS_SCHEMA_ID_PARTIAL_ROWS);
                        ds_avro_put_long(&r, 77);
                        ds_avro_put_long(&r, nwant[x->pp]);
                        ds_buf_put(&r, want[x->pp].p, want[x->pp].len);
                        ds_avro_put_long(&r, 0); /* end of rows */
                        ds_avro_put_long(&r, 0); /* no statuses */
                        cr_assert(r.len == x->len && !memcmp(r.p, x->p, r.len),
                                  "digits %d, partial partition %d: not the reference's bytes", digits, x->pp);
                        ds_buf_free(&r);
                        ds_buf_free(&want[x->pp]);
                }
                for (int k = 0; k < nmsgs; k++)
                        free(msgs[k].p);
                nmsgs = 0;
        }
        for (int i = 0; i < 3; i++)
                ds_distinct_free(sk[i]);
        ds_tmpdir_remove(dir);
        free(dir);
}

/* ---- a worker's batches (ds_partial_out_t) ------------------------------- */

/* The outbox row of row_i(i) (sketches aside: ds_partial_out_t serializes a
 * ds_distinct_t, the reference test above covers that). */
static ds_outrow_t outrow_i(int i) {
        ds_partial_t p = row_i(i);
        return (ds_outrow_t){p.partition, p.epoch, p.input_offset, p.key, p.m, NULL};
}

/* What a worker's flush leaves: several partitions' rows added, batches
 * finished; every row in its partial partition's messages once, in the
 * order added; with a small staging limit, more and smaller messages; all
 * of it again after a reset, from the start of the buffer. */
static void check_out(ds_partial_out_t *o, int from, int n, int32_t parts, size_t max_msg) {
        int seen = 0, last[8];
        for (int32_t pp = 0; pp < parts; pp++)
                last[pp] = -1;
        for (uint32_t k = 0; k < o->n; k++) {
                const ds_partial_msg_t *m = &o->msgs[k];
                cr_assert(m->pp >= 0 && m->pp < parts);
                cr_assert_leq(m->off + m->len, o->bytes.len);
                cr_expect_leq(m->len, max_msg, "message %u: %zu bytes", k, m->len);
                ds_partial_rows_t it;
                cr_assert_eq(ds_partial_rows_open(o->bytes.p + m->off, m->len, 4, &it), DS_DLQ_NONE);
                ds_partial_t got;
                ds_dlq_reason_t why;
                int rc;
                uint32_t rows = 0;
                while ((rc = ds_partial_rows_next(&it, &got, &why)) == 1) {
                        cr_assert_eq(got.kind, DS_PARTIAL_ROW, "a worker's batch holds no status");
                        int i = (int)(got.input_offset - 1000);
                        cr_assert(i >= from && i < from + n, "row %d not added", i);
                        ds_partial_t want = row_i(i);
                        want.declarants_len = want.vehicles_len = 0;
                        expect_same_row(&got, &want, i);
                        cr_expect_eq(ds_partial_route(want.key, parts), m->pp);
                        cr_expect_gt(i, last[m->pp], "partial partition %d: row %d after row %d", m->pp, i,
                                     last[m->pp]);
                        last[m->pp] = i;
                        rows++;
                }
                cr_expect_eq(rc, 0, "message %u: %s", k, ds_dlq_code(why));
                cr_expect_eq(rows, m->rows);
                seen += (int)rows;
        }
        cr_expect_eq(seen, n, "%d rows read back of %d", seen, n);
}

Test(partial, a_workers_batches_hold_its_rows_in_order) {
        const int32_t P = 5;
        ds_partial_out_t o;
        cr_assert_eq(ds_partial_out_init(&o, P, 4), 0);
        ds_outbox_t ob = {0};
        ob.rows = malloc(3000 * sizeof(*ob.rows));
        cr_assert_not_null(ob.rows);
        for (int round = 0; round < 3; round++) {
                /* round 2: staging limited to 2 KiB (the default is 4 MiB) */
                if (round == 2)
                        ds_partial_batcher_limit(o.batcher, 2048);
                ds_partial_out_reset(&o);
                int from = round * 3000;
                for (int part = 0; part < 3; part++) { /* three partitions' flushes */
                        ob.nrows = 0;
                        for (int i = from + part * 1000; i < from + (part + 1) * 1000; i++)
                                ob.rows[ob.nrows++] = outrow_i(i);
                        cr_assert_eq(ds_partial_out_add(&o, &ob, 77), 0);
                }
                cr_assert_eq(ds_partial_out_finish(&o, 77), 0);
                if (round < 2) {
                        /* 3,000 rows of ~40 bytes in 5 partial partitions: one message each */
                        cr_expect_eq(o.n, (uint32_t)P, "round %d: %u messages", round, o.n);
                        check_out(&o, from, 3000, P, DS_PARTIAL_BATCH_BYTES + 256);
                } else {
                        /* each emission frees ~2 KiB / 5 of staged rows: ~10 a message, never 1 */
                        cr_expect_gt(o.n, 20, "%u messages under a 2 KiB staging limit", o.n);
                        cr_expect_gt(3000 / o.n, 4, "%u messages for 3,000 rows", o.n);
                        check_out(&o, from, 3000, P, 2048 + 256);
                }
        }
        free(ob.rows);
        ds_partial_out_free(&o);
        ds_partial_out_free(&o); /* twice: a zeroed struct is freed as nothing */
}
