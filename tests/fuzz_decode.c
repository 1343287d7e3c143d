/*
 * fuzz_decode.c - libFuzzer target: the processor's per-message entry point.
 *
 * Each input is a Kafka message value. It goes through exactly what a worker
 * runs: ds_schemas_resolve (Confluent header or single-object encoding,
 * against schemas/) -> ds_codec_decode -> ds_validate. Then the same bytes,
 * taken as an Avro body, are decoded by two more plans that the shipped
 * schemas do not exercise:
 *   - an "exotic" writer: v1 plus skipped fields of every Avro type (map of
 *     arrays of a union holding a recursive record, fixed, enum, float,
 *     boolean), so skip() and its depth limit see hostile bytes;
 *   - the v2 reader reading the v1 writer (reader defaults).
 * Invariants checked besides the sanitizers: every decoded string lies
 * inside the input (or is a reader default), item_cnt <= 50, and a
 * declaration that validates has only UTF-8 strings.
 *
 *   build-fuzz/fuzz_decode tests/corpus/decode      (scripts/fuzz does this)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds_codec.h"
#include "ds_domain.h"
#include "ds_log.h"
#include "ds_schemas.h"
#include "ds_validate.h"

static ds_schemas_t *schemas;
static ds_reader_t *reader_v2;
static ds_codec_t *exotic, *v1_as_v2;
static ds_decl_t decl;
static ds_contrib_t contrib;

static char *slurp(const char *path, size_t *len) {
        char err[256];
        char *t = ds_read_file(path, len, err, sizeof(err));
        if (!t) {
                fprintf(stderr, "fuzz_decode: %s\n", err);
                abort();
        }
        return t;
}

static char *replace(const char *s, const char *from, const char *to) {
        const char *at = strstr(s, from);
        if (!at)
                abort();
        size_t a = (size_t)(at - s), f = strlen(from), t = strlen(to), rest = strlen(at + f);
        char *o = malloc(a + t + rest + 1);
        memcpy(o, s, a);
        memcpy(o + a, to, t);
        memcpy(o + a + t, at + f, rest + 1);
        return o;
}

static ds_codec_t *compile(const ds_reader_t *r, const char *json) {
        avro_schema_t w;
        char err[512];
        if (avro_schema_from_json_length(json, strlen(json), &w)) {
                fprintf(stderr, "fuzz_decode: %s\n", avro_strerror());
                abort();
        }
        ds_codec_t *c = ds_codec_new(r, w, err, sizeof(err));
        avro_schema_decref(w);
        if (!c) {
                fprintf(stderr, "fuzz_decode: %s\n", err);
                abort();
        }
        return c;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void)argc;
        (void)argv;
        char err[512];
        ds_log_setup(DS_LOG_ERROR, DS_LOG_FMT_LOGFMT);
        ds_domain_init();
        if (!(schemas = ds_schemas_load(DS_SOURCE_DIR "/schemas", err, sizeof(err)))) {
                fprintf(stderr, "fuzz_decode: %s\n", err);
                abort();
        }
        size_t n1, n2;
        char *v1 = slurp(DS_SOURCE_DIR "/schemas/customs_declaration.avsc", &n1);
        char *v2 = slurp(DS_SOURCE_DIR "/schemas/customs_declaration.v2.avsc", &n2);
        if (!(reader_v2 = ds_reader_new(v2, n2, err, sizeof(err)))) {
                fprintf(stderr, "fuzz_decode: %s\n", err);
                abort();
        }
        char *a = replace(v1, "{\"name\": \"customs_office\"",
                          "{\"name\": \"x1\", \"type\": {\"type\": \"map\", \"values\": {\"type\": \"array\", "
                          "\"items\": [\"null\", \"long\", {\"type\": \"record\", \"name\": \"Node\", \"fields\": ["
                          "{\"name\": \"v\", \"type\": \"bytes\"}, {\"name\": \"next\", \"type\": [\"null\", "
                          "\"Node\"]}]}]}}},\n    {\"name\": \"customs_office\"");
        char *b = replace(a, "{\"name\": \"description\"",
                          "{\"name\": \"x2\", \"type\": {\"type\": \"fixed\", \"name\": \"F4\", \"size\": 4}},"
                          "{\"name\": \"x3\", \"type\": {\"type\": \"enum\", \"name\": \"Color\", \"symbols\": "
                          "[\"A\", \"B\"]}}, {\"name\": \"x4\", \"type\": \"float\"}, {\"name\": \"x5\", \"type\": "
                          "\"boolean\"},\n         {\"name\": \"description\"");
        exotic = compile(ds_schemas_reader(schemas), b);
        v1_as_v2 = compile(reader_v2, v1);
        free(a);
        free(b);
        free(v1);
        free(v2);
        return 0;
}

static void check_str(ds_str_t s, const uint8_t *data, size_t size) {
        if (!s.len)
                return;
        const uint8_t *p = (const uint8_t *)s.p;
        int inside = p >= data && p + s.len <= data + size;
        int is_default = s.len == 3 && !memcmp(s.p, "USD", 3); /* the v2 reader's invoice_currency */
        if (!inside && !is_default) {
                fprintf(stderr, "decoded string outside the input\n");
                abort();
        }
}

static void check_decl(const ds_decl_t *d, const uint8_t *data, size_t size) {
        if (d->item_cnt > DS_MAX_ITEMS)
                abort();
        check_str(d->declaration_id, data, size);
        check_str(d->gate_code, data, size);
        check_str(d->customs_office, data, size);
        check_str(d->type_code, data, size);
        check_str(d->declarant_tax_id, data, size);
        check_str(d->vehicle_plate, data, size);
        check_str(d->invoice_currency, data, size);
        for (uint32_t i = 0; i < d->item_cnt; i++) {
                check_str(d->items[i].hs_code, data, size);
                check_str(d->items[i].description, data, size);
                check_str(d->items[i].unit, data, size);
                check_str(d->items[i].origin_country, data, size);
        }
        if (ds_validate(d, 4, &contrib) == DS_DLQ_NONE) {
                if (!ds_utf8_valid(d->gate_code.p, d->gate_code.len) ||
                    (d->item_cnt && !ds_utf8_valid(d->items[0].description.p, d->items[0].description.len)))
                        abort();
                if (contrib.nlines == 0 || contrib.nlines > d->item_cnt)
                        abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ds_resolved_t rs;
        ds_dlq_reason_t r = ds_schemas_resolve(schemas, data, size, &rs);
        if (r == DS_DLQ_NONE) {
                if (rs.body < data || rs.body + rs.body_len != data + size)
                        abort();
                if (ds_codec_decode(rs.codec, rs.body, rs.body_len, &decl) == DS_DLQ_NONE)
                        check_decl(&decl, data, size);
        } else if (r >= DS_DLQ__CNT) {
                abort();
        }
        if (ds_codec_decode(exotic, data, size, &decl) == DS_DLQ_NONE)
                check_decl(&decl, data, size);
        if (ds_codec_decode(v1_as_v2, data, size, &decl) == DS_DLQ_NONE)
                check_decl(&decl, data, size);
        /* the UTF-8 checker on raw bytes, against a byte-at-a-time reference */
        int ref = 1;
        for (size_t i = 0; i < size && ref;) {
                uint8_t c = data[i];
                uint32_t cp;
                size_t n;
                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xC2 && c <= 0xDF) {
                        n = 2, cp = c & 0x1F;
                } else if (c >= 0xE0 && c <= 0xEF) {
                        n = 3, cp = c & 0x0F;
                } else if (c >= 0xF0 && c <= 0xF4) {
                        n = 4, cp = c & 0x07;
                } else {
                        ref = 0;
                        break;
                }
                if (size - i < n) {
                        ref = 0;
                        break;
                }
                for (size_t k = 1; k < n; k++) {
                        if ((data[i + k] & 0xC0) != 0x80)
                                ref = 0;
                        cp = cp << 6 | (data[i + k] & 0x3F);
                }
                if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
                    (cp >= 0xD800 && cp <= 0xDFFF))
                        ref = 0;
                i += n;
        }
        if (ds_utf8_valid((const char *)data, size) != ref)
                abort();
        return 0;
}
