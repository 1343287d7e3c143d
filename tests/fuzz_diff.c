/*
 * fuzz_diff.c - libFuzzer target: the specialised decoder against Apache
 * Avro C's generic decoder, on the same bytes.
 *
 * Input: byte 0 picks the schema pair (even: v1 writer, v1 reader; odd: v2
 * writer, v2 reader), the rest is an Avro body. Both decoders must accept
 * and reject the same inputs, and agree on every field of what they accept
 * (doubles compared bit for bit). Reasons may differ (ds_codec stops at the
 * 51st item, Avro C reads on), only acceptance and values are compared.
 * These writers are the reader's own schemas, which ds_codec reads with its
 * straight-line path; the same bytes also go through its op interpreter
 * alone (ds_codec_set_generic), which must give the same reason and values.
 *
 * Only same-schema pairs are compared: when skipping a writer field Avro C
 * takes a negative string length for "skip nothing" (avro_skip_memory ignores
 * len <= 0) where ds_codec says malformed, and it cannot resolve reader
 * defaults at all; skipping and defaults are fuzzed for safety in
 * fuzz_decode and checked value by value in test_evolution.
 *
 * Avro C is fed arbitrary bytes here, which the processor never does: a
 * string length read from the input becomes an allocation (read_string
 * mallocs length + 1 before reading), and the buffer leaks when the input ends
 * inside it. Avro C's allocator is replaced by one that refuses a fresh
 * allocation larger than both the input and 4 KiB - such a string cannot be
 * in the input, so refusing it (ENOMEM: rejected) changes no verdict, and a
 * huge or negative length no longer asks ASan for terabytes. Growth of
 * existing blocks (arrays) is left alone: Avro C does not survive a failed
 * realloc there (it crashes in avro_value_reset). What still leaks - strings
 * shorter than the input, cut by its end - is the known leak tests/lsan.supp
 * suppresses; it grows the process steadily, so scripts/fuzz runs this
 * target in restarted slices.
 */
#include <avro.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds_codec.h"
#include "ds_codec_avro.h"
#include "ds_log.h"
#include "ds_schemas.h"

#define FRESH_ALLOC_MIN_LIMIT 4096
#define GROWTH_LIMIT (64u << 20)

static ds_reader_t *readers[2];
static ds_codec_t *codecs[2];
static ds_codec_t *generic[2]; /* the same codecs, interpreter only */
static ds_avro_decoder_t *avro[2];
static ds_decl_t a, b;

static size_t input_size; /* of the input being decoded */

static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
        (void)ud;
        (void)osize;
        if (nsize == 0) {
                free(ptr);
                return NULL;
        }
        if (!ptr && nsize > input_size + 1 && nsize > FRESH_ALLOC_MIN_LIMIT)
                return NULL; /* a string longer than the input */
        if (nsize > GROWTH_LIMIT)
                return NULL;
        return realloc(ptr, nsize);
}

static void die(const char *what, const char *err) {
        fprintf(stderr, "fuzz_diff: %s: %s\n", what, err);
        abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void)argc;
        (void)argv;
        ds_log_setup(DS_LOG_ERROR, DS_LOG_FMT_LOGFMT);
        avro_set_allocator(limited_alloc, NULL);
        const char *files[2] = {DS_SOURCE_DIR "/schemas/customs_declaration.avsc",
                                DS_SOURCE_DIR "/schemas/customs_declaration.v2.avsc"};
        for (int i = 0; i < 2; i++) {
                char err[512];
                size_t len;
                char *text = ds_read_file(files[i], &len, err, sizeof(err));
                if (!text)
                        die(files[i], err);
                if (!(readers[i] = ds_reader_new(text, len, err, sizeof(err))))
                        die("reader", err);
                avro_schema_t s = ds_reader_schema(readers[i]);
                if (!(codecs[i] = ds_codec_new(readers[i], s, err, sizeof(err))) ||
                    !(generic[i] = ds_codec_new(readers[i], s, err, sizeof(err))))
                        die("codec", err);
                if (!ds_codec_is_native(codecs[i]))
                        die("codec", "the reader's own schema does not take the straight-line path");
                ds_codec_set_generic(generic[i], 1);
                if (!(avro[i] = ds_avro_decoder_new(s, s, err, sizeof(err))))
                        die("avro", err);
                free(text);
        }
        return 0;
}

static int str_eq(ds_str_t x, ds_str_t y) {
        if ((x.p == NULL) != (y.p == NULL))
                return 0;
        return x.len == y.len && (!x.len || !memcmp(x.p, y.p, x.len));
}

static void mismatch(const char *field) {
        fprintf(stderr, "fuzz_diff: decoders differ on %s\n", field);
        abort();
}

#define STR(f)                          \
        if (!str_eq(a.f, b.f))          \
                mismatch(#f);
#define NUM(f)                          \
        if (a.f != b.f)                 \
                mismatch(#f);
#define BITS(f)                                   \
        if (memcmp(&a.f, &b.f, sizeof(a.f)))      \
                mismatch(#f);

/* Avro C 1.11.1 reads an enum index as a long and stores it as an int
 * (avro_value_set_enum), so an index such as 2^32 is read as 0 and accepted.
 * ds_codec rejects it (malformed). This walks the v1/v2 layout to tell that
 * known defect from a real disagreement: 1 when an enum index of the record
 * does not fit in an int. */
typedef struct walk {
        const uint8_t *p, *end;
        int wide_enum;
} walk_t;

static int w_long(walk_t *w, int64_t *out) {
        uint64_t v = 0;
        for (int i = 0; i < 10; i++) {
                if (w->p >= w->end)
                        return -1;
                uint8_t byte = *w->p++;
                v |= (uint64_t)(byte & 0x7f) << (7 * i);
                if (!(byte & 0x80)) {
                        *out = (int64_t)((v >> 1) ^ (~(v & 1) + 1));
                        return 0;
                }
        }
        return -1;
}

static int w_str(walk_t *w) {
        int64_t n;
        if (w_long(w, &n) || n < 0 || n > w->end - w->p)
                return -1;
        w->p += n;
        return 0;
}

static int w_enum(walk_t *w) {
        int64_t e;
        if (w_long(w, &e))
                return -1;
        w->wide_enum |= e < INT32_MIN || e > INT32_MAX;
        return 0;
}

static int avro_c_truncates_an_enum(const uint8_t *p, size_t n, int v2) {
        walk_t w = {p, p + n, 0};
        int64_t x;
        if (w_str(&w) || w_long(&w, &x) || w_enum(&w) || w_long(&w, &x) || w_str(&w) || w_str(&w) || w_str(&w) ||
            w_enum(&w) || w_str(&w) || w_enum(&w) || w_long(&w, &x) || (x == 1 && w_str(&w)))
                return w.wide_enum;
        for (;;) {
                int64_t cnt, size;
                if (w_long(&w, &cnt) || cnt == 0)
                        break;
                if (cnt < 0 && (w_long(&w, &size) || cnt == INT64_MIN))
                        break;
                if (cnt < 0)
                        cnt = -cnt;
                for (int64_t i = 0; i < cnt && i < 64; i++) {
                        double q;
                        if (w_str(&w) || w_str(&w) || w.end - w.p < 8)
                                return w.wide_enum;
                        memcpy(&q, w.p, 8);
                        w.p += 8;
                        if (w_str(&w) || w_long(&w, &x) || w_long(&w, &x) || w_str(&w))
                                return w.wide_enum;
                }
        }
        (void)v2;
        return w.wide_enum;
}

/* Every field of a against b (schema pair v). */
static void compare(int v) {
        STR(declaration_id) NUM(version) NUM(kind) NUM(declared_at) STR(gate_code) STR(customs_office)
        STR(type_code) NUM(flow) STR(declarant_tax_id) NUM(channel) STR(vehicle_plate) NUM(item_cnt)
        if (v) {
                NUM(container_count) STR(invoice_currency)
        }
        for (uint32_t i = 0; i < a.item_cnt; i++) {
                STR(items[i].hs_code) STR(items[i].description) STR(items[i].unit) STR(items[i].origin_country)
                BITS(items[i].quantity) NUM(items[i].gross_weight_g) NUM(items[i].customs_value_usd_cents)
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        int v = data[0] & 1;
        const uint8_t *body = data + 1;
        size_t n = size - 1;
        ds_dlq_reason_t ra = ds_codec_decode(codecs[v], body, n, &a);
        /* the interpreter alone: same reason, same values */
        ds_dlq_reason_t rg = ds_codec_decode(generic[v], body, n, &b);
        if (rg != ra) {
                fprintf(stderr, "fuzz_diff: straight-line path says %s, interpreter %s\n", ds_dlq_code(ra),
                        ds_dlq_code(rg));
                abort();
        }
        if (ra == DS_DLQ_NONE)
                compare(v);
        input_size = n;
        ds_dlq_reason_t rb = ds_avro_decode(avro[v], body, n, &b);
        if (ra == DS_DLQ_MALFORMED && rb == DS_DLQ_NONE && avro_c_truncates_an_enum(body, n, v))
                return 0; /* Avro C's defect, not a disagreement about valid data */
        if ((ra == DS_DLQ_NONE) != (rb == DS_DLQ_NONE)) {
                fprintf(stderr, "fuzz_diff: ds_codec says %s, Avro C says %s\n", ds_dlq_code(ra), ds_dlq_code(rb));
                abort();
        }
        if (ra == DS_DLQ_NONE)
                compare(v);
        return 0;
}
