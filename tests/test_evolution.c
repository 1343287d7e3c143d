/*
 * test_evolution.c - writer -> reader schema resolution, schema v2, and
 * single-object encoding (Parsing Canonical Form, CRC-64-AVRO).
 *
 * Each resolution case the issue names is decoded by the specialised decoder
 * (ds_codec) and, wherever Apache Avro C 1.11.1 can resolve it, by the Avro C
 * reference (ds_codec_avro) too, and both must agree field by field. Where
 * Avro C cannot, the test pins down what it does instead, so the README's
 * statement of its limits stays true:
 *   - a reader field missing from the writer (even with a default):
 *     avro_resolved_writer_new refuses the pair;
 *   - an enum whose symbols differ: Avro C passes the writer's index through
 *     unchanged (by position, not by name), so an added symbol comes out of
 *     range and a reordered one comes out as the wrong symbol.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "ds_codec.h"
#include "ds_codec_avro.h"
#include "ds_common.h"
#include "ds_domain.h"
#include "ds_encode.h"
#include "ds_fingerprint.h"
#include "ds_schemas.h"
#include "ds_testschemas.h"
#include "ds_validate.h"

static char why[512];

static ds_reader_t *reader_from(const char *json) {
        char err[512];
        ds_reader_t *r = ds_reader_new(json, strlen(json), err, sizeof(err));
        cr_assert_not_null(r, "reader: %s", err);
        return r;
}

static avro_schema_t schema_from(const char *json) {
        avro_schema_t s;
        cr_assert_eq(avro_schema_from_json_length(json, strlen(json), &s), 0, "schema: %s", avro_strerror());
        return s;
}

static ds_codec_t *codec_for(const ds_reader_t *r, avro_schema_t w) {
        char err[512];
        ds_codec_t *c = ds_codec_new(r, w, err, sizeof(err));
        cr_assert_not_null(c, "codec: %s", err);
        return c;
}

/* Decodes body with both decoders (when Avro C can resolve the pair) and
 * checks they agree; the specialised result is left in *out. */
static ds_dlq_reason_t decode_both(const ds_reader_t *r, avro_schema_t w, const uint8_t *p, size_t n, ds_decl_t *out,
                                   int avro_expected, int v2_fields) {
        ds_codec_t *c = codec_for(r, w);
        ds_dlq_reason_t rs = ds_codec_decode(c, p, n, out);
        char err[512];
        ds_avro_decoder_t *a = ds_avro_decoder_new(ds_reader_schema(r), w, err, sizeof(err));
        if (avro_expected) {
                cr_assert_not_null(a, "Avro C should resolve this pair: %s", err);
                ds_decl_t *ad = malloc(sizeof(*ad));
                ds_dlq_reason_t ra = rs ? DS_DLQ_NONE : ds_avro_decode(a, p, n, ad);
                if (!rs) {
                        cr_assert_eq(ra, DS_DLQ_NONE, "Avro C rejected what ds_codec accepted: %s", ds_dlq_code(ra));
                        cr_assert(dst_decl_equal(out, ad, v2_fields, why, sizeof(why)), "decoders differ: %s", why);
                }
                free(ad);
        }
        ds_avro_decoder_destroy(a);
        ds_codec_destroy(c);
        return rs;
}

/* ------------------------------------------------------------------------ */
/* v2 is shipped, registered as id 3, and documented                         */

static void check_docs(json_t *j, const char *where) {
        if (json_is_array(j)) {
                size_t i;
                json_t *v;
                json_array_foreach(j, i, v) check_docs(v, where);
                return;
        }
        if (!json_is_object(j))
                return;
        json_t *fields = json_object_get(j, "fields");
        if (json_is_array(fields)) {
                size_t i;
                json_t *f;
                json_array_foreach(fields, i, f) {
                        cr_expect(json_is_string(json_object_get(f, "doc")), "%s: field %s has no doc", where,
                                  json_string_value(json_object_get(f, "name")));
                        check_docs(json_object_get(f, "type"), where);
                }
        }
        json_t *items = json_object_get(j, "items");
        if (items)
                check_docs(items, where);
}

Test(evolution, v2_is_registered_as_id_3_compatible_and_documented) {
        char err[512];
        ds_schemas_t *s = ds_schemas_load(DST_SCHEMA_DIR, err, sizeof(err));
        cr_assert_not_null(s, "%s", err);
        ds_dlq_reason_t r = DS_DLQ_NONE;
        cr_assert_not_null(ds_schemas_codec(s, DS_SCHEMA_ID_DECLARATION_V2, &r), "id 3: %s / %s", ds_dlq_code(r),
                           ds_schemas_note(s, 3));
        cr_assert_str_eq(ds_schemas_note(s, 3), "");
        avro_schema_t v2 = ds_schemas_get(s, 3);
        cr_assert(is_avro_record(v2));
        cr_assert_not_null(avro_schema_record_field_get(v2, "container_count"));
        cr_assert_not_null(avro_schema_record_field_get(v2, "invoice_currency"));
        json_t *j = json_load_file(DST_V2, 0, NULL);
        cr_assert_not_null(j);
        check_docs(j, "v2");
        /* the two new fields have the defaults the README promises */
        json_t *fields = json_object_get(j, "fields");
        size_t i;
        json_t *f;
        int seen = 0;
        json_array_foreach(fields, i, f) {
                const char *name = json_string_value(json_object_get(f, "name"));
                if (!strcmp(name, "container_count")) {
                        cr_expect_eq(json_integer_value(json_object_get(f, "default")), 0);
                        seen++;
                }
                if (!strcmp(name, "invoice_currency")) {
                        cr_expect_str_eq(json_string_value(json_object_get(f, "default")), "USD");
                        seen++;
                }
        }
        cr_expect_eq(seen, 2);
        json_decref(j);
        ds_schemas_destroy(s);
}

/* ------------------------------------------------------------------------ */
/* v1 and v2 writers mixed in one stream, read by the processor's v1 reader  */

Test(evolution, v1_and_v2_writers_mixed_in_one_stream) {
        char err[512];
        ds_domain_init();
        ds_schemas_t *s = ds_schemas_load(DST_SCHEMA_DIR, err, sizeof(err));
        cr_assert_not_null(s, "%s", err);
        uint64_t fp1, fp2;
        cr_assert_eq(ds_schemas_fingerprint(s, 1, &fp1), 0);
        cr_assert_eq(ds_schemas_fingerprint(s, 3, &fp2), 0);
        const ds_reader_t *r = ds_schemas_reader(s);
        ds_avro_decoder_t *av1 = ds_avro_decoder_new(ds_reader_schema(r), ds_schemas_get(s, 1), err, sizeof(err));
        ds_avro_decoder_t *av2 = ds_avro_decoder_new(ds_reader_schema(r), ds_schemas_get(s, 3), err, sizeof(err));
        cr_assert(av1 && av2, "Avro C reads v2 with the v1 reader (writer fields are skipped): %s", err);

        /* one stream, as a topic would hold it after a partial producer upgrade */
        enum { N = 300 };
        ds_buf_t msgs[N] = {{0}};
        ds_decl_t *orig = calloc(N, sizeof(ds_decl_t));
        int ver[N];
        uint32_t rnd = 12345;
        for (int i = 0; i < N; i++) {
                rnd = rnd * 1103515245 + 12345;
                ver[i] = 1 + (int)((rnd >> 16) % 2);
                dst_sample(&orig[i], i);
                orig[i].container_count = (int32_t)(i % 7);
                orig[i].invoice_currency = (ds_str_t){i % 2 ? "CNY" : "VND", 3};
                if (i % 5 == 0)
                        orig[i].vehicle_plate = (ds_str_t){NULL, 0};
                if ((rnd >> 8) % 10 == 0) /* some producers use single-object encoding */
                        dst_single_object(&msgs[i], &orig[i], ver[i], ver[i] == 1 ? fp1 : fp2);
                else
                        dst_framed(&msgs[i], &orig[i], ver[i], ver[i] == 1 ? 1 : 3);
        }
        ds_decl_t *d = malloc(sizeof(*d)), *ad = malloc(sizeof(*ad));
        ds_contrib_t *c = malloc(sizeof(*c));
        int by_version[3] = {0};
        for (int i = 0; i < N; i++) {
                ds_resolved_t rs;
                cr_assert_eq(ds_schemas_resolve(s, msgs[i].p, msgs[i].len, &rs), DS_DLQ_NONE, "message %d", i);
                cr_assert_eq(rs.schema_id, ver[i] == 1 ? 1 : 3, "message %d: schema id %lld", i,
                             (long long)rs.schema_id);
                cr_assert_eq(ds_codec_decode(rs.codec, rs.body, rs.body_len, d), DS_DLQ_NONE, "message %d", i);
                cr_assert(dst_decl_equal(d, &orig[i], 0, why, sizeof(why)), "message %d (v%d): %s", i, ver[i], why);
                /* the v1 reader does not know the v2 fields: they are skipped */
                cr_assert_eq(d->container_count, 0);
                cr_assert_null(d->invoice_currency.p);
                cr_assert_eq(ds_avro_decode(ver[i] == 1 ? av1 : av2, rs.body, rs.body_len, ad), DS_DLQ_NONE);
                cr_assert(dst_decl_equal(d, ad, 1, why, sizeof(why)), "message %d: decoders differ: %s", i, why);
                cr_assert_eq(ds_validate(d, 4, c), DS_DLQ_NONE, "message %d", i);
                by_version[ver[i]]++;
        }
        cr_assert(by_version[1] > 50 && by_version[2] > 50);
        for (int i = 0; i < N; i++)
                ds_buf_free(&msgs[i]);
        free(orig);
        free(d);
        free(ad);
        free(c);
        ds_avro_decoder_destroy(av1);
        ds_avro_decoder_destroy(av2);
        ds_schemas_destroy(s);
}

/* ------------------------------------------------------------------------ */
/* Added field with a default: a v2 reader reading v1 writers                */

Test(evolution, added_fields_take_the_reader_defaults) {
        size_t n;
        char *v1 = dst_read(DST_V1, &n), *v2 = dst_read(DST_V2, &n);
        ds_reader_t *r2 = reader_from(v2);
        avro_schema_t w1 = schema_from(v1), w2 = schema_from(v2);
        ds_decl_t orig, *d = malloc(sizeof(*d));
        ds_buf_t b = {0};
        dst_sample(&orig, 7);

        /* v1 bytes, v2 reader: the defaults of the new fields */
        dst_body(&b, &orig, 1);
        cr_assert_eq(decode_both(r2, w1, b.p, b.len, d, 0, 1), DS_DLQ_NONE);
        cr_assert(dst_decl_equal(d, &orig, 0, why, sizeof(why)), "%s", why);
        cr_assert_eq(d->container_count, 0);
        cr_assert_eq(d->invoice_currency.len, 3);
        cr_assert_arr_eq(d->invoice_currency.p, "USD", 3);

        /* ... which Avro C 1.11.1 cannot do, whatever the default */
        char err[512];
        ds_avro_decoder_t *a = ds_avro_decoder_new(ds_reader_schema(r2), w1, err, sizeof(err));
        cr_assert_null(a, "Avro C resolved a reader field missing from the writer: update README and FACTS");
        cr_assert(strstr(avro_strerror(), "doesn't appear in writer") || strstr(avro_strerror(), "container_count"),
                  "Avro C's reason changed: %s", avro_strerror());

        /* v2 bytes, v2 reader: the written values, and both decoders agree on them */
        orig.container_count = 4;
        orig.invoice_currency = (ds_str_t){"CNY", 3};
        b.len = 0;
        dst_body(&b, &orig, 2);
        cr_assert_eq(decode_both(r2, w2, b.p, b.len, d, 1, 1), DS_DLQ_NONE);
        cr_assert(dst_decl_equal(d, &orig, 1, why, sizeof(why)), "%s", why);

        ds_buf_free(&b);
        free(d);
        avro_schema_decref(w1);
        avro_schema_decref(w2);
        ds_reader_destroy(r2);
        free(v1);
        free(v2);
}

/* ------------------------------------------------------------------------ */
/* Removed field: the writer has fields the reader does not know             */

/* v1 plus: remarks (string) after gate_code, tags (map of arrays of long)
 * after declarant_tax_id, Item.origin_port (union null/string) after hs_code,
 * and signature (fixed 4) at the end. */
static char *writer_with_extra_fields(void) {
        char *v1 = dst_read(DST_V1, NULL);
        char *a = dst_replace(v1, "{\"name\": \"customs_office\"",
                              "{\"name\": \"remarks\", \"type\": \"string\"},\n"
                              "    {\"name\": \"customs_office\"");
        char *b = dst_replace(a, "{\"name\": \"channel\"",
                              "{\"name\": \"tags\", \"type\": {\"type\": \"map\", \"values\": "
                              "{\"type\": \"array\", \"items\": \"long\"}}},\n    {\"name\": \"channel\"");
        char *c = dst_replace(b, "{\"name\": \"description\"",
                              "{\"name\": \"origin_port\", \"type\": [\"null\", \"string\"]},\n"
                              "         {\"name\": \"description\"");
        char *d = dst_replace(c, "(the VNACCS limit per declaration).\"}",
                              "(the VNACCS limit per declaration).\"},\n"
                              "    {\"name\": \"signature\", \"type\": {\"type\": \"fixed\", \"name\": \"Sig\", "
                              "\"size\": 4}}");
        cr_assert(a && b && c && d, "the v1 schema text changed: update writer_with_extra_fields");
        free(v1);
        free(a);
        free(b);
        free(c);
        return d;
}

static void put_slice(ds_buf_t *b, ds_str_t s) {
        ds_avro_put_bytes(b, s.p, s.len);
}

static void encode_with_extra_fields(ds_buf_t *b, const ds_decl_t *d) {
        put_slice(b, d->declaration_id);
        ds_avro_put_long(b, d->version);
        ds_avro_put_long(b, d->kind);
        ds_avro_put_long(b, d->declared_at);
        put_slice(b, d->gate_code);
        ds_avro_put_str(b, "checked at km 3");        /* remarks */
        put_slice(b, d->customs_office);
        put_slice(b, d->type_code);
        ds_avro_put_long(b, d->flow);
        put_slice(b, d->declarant_tax_id);
        ds_avro_put_long(b, 2);                        /* tags: one block of 2 entries */
        ds_avro_put_str(b, "seals");
        ds_avro_put_long(b, -2);                       /* array block with byte size */
        ds_avro_put_long(b, 2);
        ds_avro_put_long(b, 11);
        ds_avro_put_long(b, 12);
        ds_avro_put_long(b, 0);
        ds_avro_put_str(b, "empty");
        ds_avro_put_long(b, 0);
        ds_avro_put_long(b, 0);                        /* end of map */
        ds_avro_put_long(b, d->channel);
        if (d->vehicle_plate.p) {
                ds_avro_put_long(b, 1);
                put_slice(b, d->vehicle_plate);
        } else {
                ds_avro_put_long(b, 0);
        }
        ds_avro_put_long(b, d->item_cnt);
        for (uint32_t i = 0; i < d->item_cnt; i++) {
                const ds_item_t *it = &d->items[i];
                put_slice(b, it->hs_code);
                if (i % 2) {                           /* origin_port */
                        ds_avro_put_long(b, 1);
                        ds_avro_put_str(b, "Pingxiang");
                } else {
                        ds_avro_put_long(b, 0);
                }
                put_slice(b, it->description);
                ds_avro_put_double(b, it->quantity);
                put_slice(b, it->unit);
                ds_avro_put_long(b, it->gross_weight_g);
                ds_avro_put_long(b, it->customs_value_usd_cents);
                put_slice(b, it->origin_country);
        }
        ds_avro_put_long(b, 0);
        ds_buf_put(b, "\x01\x02\x03\x04", 4);          /* signature */
}

Test(evolution, removed_fields_are_skipped_by_both_decoders) {
        size_t n;
        char *v1 = dst_read(DST_V1, &n), *wj = writer_with_extra_fields();
        ds_reader_t *r = reader_from(v1);
        avro_schema_t w = schema_from(wj);
        ds_decl_t orig, *d = malloc(sizeof(*d));
        ds_buf_t b = {0};
        for (int seed = 0; seed < 4; seed++) {
                dst_sample(&orig, seed);
                if (seed == 3)
                        orig.vehicle_plate = (ds_str_t){NULL, 0};
                b.len = 0;
                encode_with_extra_fields(&b, &orig);
                ds_dlq_reason_t rr = decode_both(r, w, b.p, b.len, d, 1, 0);
                cr_assert_eq(rr, DS_DLQ_NONE, "seed %d: %s", seed, ds_dlq_code(rr));
                cr_assert(dst_decl_equal(d, &orig, 0, why, sizeof(why)), "seed %d: %s", seed, why);
                /* cut anywhere inside: both reject, never read past the end */
                for (size_t cut = 0; cut < b.len; cut++) {
                        ds_codec_t *c = codec_for(r, w);
                        cr_assert_neq(ds_codec_decode(c, b.p, cut, d), DS_DLQ_NONE, "cut at %zu accepted", cut);
                        ds_codec_destroy(c);
                }
        }
        ds_buf_free(&b);
        free(d);
        avro_schema_decref(w);
        ds_reader_destroy(r);
        free(v1);
        free(wj);
}

/* ------------------------------------------------------------------------ */
/* Reader field missing from the writer                                      */

Test(evolution, writer_without_a_defaulted_field_reads_the_default) {
        char *v1 = dst_read(DST_V1, NULL);
        /* a writer that dropped vehicle_plate (the reader's default is null) */
        char *wj = dst_replace(v1, "{\"name\": \"vehicle_plate\", \"type\": [\"null\", \"string\"], \"default\": null,",
                               "{\"name\": \"plate_count\", \"type\": \"int\",");
        cr_assert_not_null(wj);
        ds_reader_t *r = reader_from(v1);
        avro_schema_t w = schema_from(wj);
        ds_decl_t orig, *d = malloc(sizeof(*d));
        dst_sample(&orig, 3);
        ds_buf_t b = {0};
        /* the writer has an int where v1 has the plate: v1's null plate (union
         * index 0, one byte 0x00) is the int 0, so dst_body writes its bytes */
        orig.vehicle_plate = (ds_str_t){NULL, 0};
        dst_body(&b, &orig, 1);
        cr_assert_eq(decode_both(r, w, b.p, b.len, d, 0, 0), DS_DLQ_NONE);
        cr_assert_null(d->vehicle_plate.p, "the reader's default (null)");
        cr_assert(dst_decl_equal(d, &orig, 0, why, sizeof(why)), "%s", why);
        char err[512];
        cr_assert_null(ds_avro_decoder_new(ds_reader_schema(r), w, err, sizeof(err)),
                       "Avro C cannot fill reader defaults (FACTS.md)");
        avro_schema_decref(w);

        /* a writer that dropped a field without a default: not compatible */
        char *wj2 = dst_replace(v1, "{\"name\": \"customs_office\"", "{\"name\": \"customs_office_code\"");
        w = schema_from(wj2);
        ds_codec_t *c = ds_codec_new(r, w, err, sizeof(err));
        cr_assert_null(c);
        cr_assert(strstr(err, "customs_office"), "the error names the field: %s", err);
        avro_schema_decref(w);
        ds_buf_free(&b);
        free(d);
        free(wj);
        free(wj2);
        free(v1);
        ds_reader_destroy(r);
}

/* ------------------------------------------------------------------------ */
/* Enum symbol added, with and without a reader default                       */

Test(evolution, enum_symbol_added_maps_to_the_reader_default) {
        char *v1 = dst_read(DST_V1, NULL);
        /* reader: v1 with a default on Channel; writer: a new symbol BLUE */
        char *rj = dst_replace(v1, "\"symbols\": [\"GREEN\", \"YELLOW\", \"RED\"],",
                               "\"symbols\": [\"GREEN\", \"YELLOW\", \"RED\"], \"default\": \"YELLOW\",");
        char *wj = dst_replace(v1, "\"symbols\": [\"GREEN\", \"YELLOW\", \"RED\"]",
                               "\"symbols\": [\"GREEN\", \"YELLOW\", \"RED\", \"BLUE\"]");
        char *wr = dst_replace(v1, "\"symbols\": [\"GREEN\", \"YELLOW\", \"RED\"]",
                               "\"symbols\": [\"RED\", \"GREEN\", \"YELLOW\"]");
        cr_assert(rj && wj && wr);
        ds_reader_t *r = reader_from(rj), *rnodef = reader_from(v1);
        avro_schema_t w = schema_from(wj), wreorder = schema_from(wr);
        ds_decl_t orig, *d = malloc(sizeof(*d));
        ds_buf_t b = {0};
        char err[512];

        /* every symbol the reader knows keeps its meaning */
        for (int sym = 0; sym < 3; sym++) {
                dst_sample(&orig, sym);
                orig.channel = (uint8_t)sym;
                b.len = 0;
                dst_body(&b, &orig, 1);
                cr_assert_eq(decode_both(r, w, b.p, b.len, d, 0, 0), DS_DLQ_NONE);
                cr_assert_eq(d->channel, sym);
        }
        /* BLUE (writer index 3) is read as the reader's default */
        orig.channel = 3;
        b.len = 0;
        dst_body(&b, &orig, 1);
        ds_codec_t *c = codec_for(r, w);
        cr_assert_eq(ds_codec_decode(c, b.p, b.len, d), DS_DLQ_NONE);
        cr_assert_eq(d->channel, DS_CHANNEL_YELLOW);
        ds_codec_destroy(c);
        /* without a reader default, that message (only) is incompatible */
        c = codec_for(rnodef, w);
        cr_assert_eq(ds_codec_decode(c, b.p, b.len, d), DS_DLQ_INCOMPATIBLE_SCHEMA);
        ds_codec_destroy(c);

        /* Avro C maps enums by position: BLUE comes out as index 3, out of the
         * reader's range (ds_avro_decode: MALFORMED) */
        ds_avro_decoder_t *a = ds_avro_decoder_new(ds_reader_schema(r), w, err, sizeof(err));
        cr_assert_not_null(a, "%s", err);
        cr_assert_eq(ds_avro_decode(a, b.p, b.len, d), DS_DLQ_MALFORMED,
                     "Avro C now resolves enum symbols: update README");
        ds_avro_decoder_destroy(a);

        /* reordered symbols: by name in ds_codec, by position (wrong) in Avro C */
        dst_sample(&orig, 1);
        orig.channel = 0; /* writer index 0 = RED */
        b.len = 0;
        dst_body(&b, &orig, 1);
        c = codec_for(rnodef, wreorder);
        cr_assert_eq(ds_codec_decode(c, b.p, b.len, d), DS_DLQ_NONE);
        cr_assert_eq(d->channel, DS_CHANNEL_RED);
        ds_codec_destroy(c);
        a = ds_avro_decoder_new(ds_reader_schema(rnodef), wreorder, err, sizeof(err));
        cr_assert_not_null(a, "%s", err);
        cr_assert_eq(ds_avro_decode(a, b.p, b.len, d), DS_DLQ_NONE);
        cr_assert_eq(d->channel, DS_CHANNEL_GREEN, "Avro C now maps enums by name: update README");
        ds_avro_decoder_destroy(a);

        ds_buf_free(&b);
        free(d);
        avro_schema_decref(w);
        avro_schema_decref(wreorder);
        ds_reader_destroy(r);
        ds_reader_destroy(rnodef);
        free(rj);
        free(wj);
        free(wr);
        free(v1);
}

/* ------------------------------------------------------------------------ */
/* Promotions                                                                 */

Test(evolution, int_to_long_promotion_agrees_with_avro_c) {
        char *v1 = dst_read(DST_V1, NULL);
        char *a = dst_replace(v1, "{\"name\": \"gross_weight_g\", \"type\": \"long\"",
                              "{\"name\": \"gross_weight_g\", \"type\": \"int\"");
        char *wj = dst_replace(a, "{\"name\": \"customs_value_usd_cents\", \"type\": \"long\"",
                               "{\"name\": \"customs_value_usd_cents\", \"type\": \"int\"");
        cr_assert(a && wj);
        ds_reader_t *r = reader_from(v1);
        avro_schema_t w = schema_from(wj);
        ds_decl_t orig, *d = malloc(sizeof(*d));
        ds_buf_t b = {0};
        int64_t values[] = {0, 1, -1, 2147483647, -2147483648LL, 123456789};
        for (size_t i = 0; i < DS_ARRAY_LEN(values); i++) {
                dst_sample(&orig, (int)i);
                orig.items[0].gross_weight_g = values[i];
                orig.items[1].customs_value_usd_cents = values[i];
                b.len = 0;
                dst_body(&b, &orig, 1); /* an int is written as the same zigzag varint as a long */
                cr_assert_eq(decode_both(r, w, b.p, b.len, d, 1, 0), DS_DLQ_NONE);
                cr_assert_eq(d->items[0].gross_weight_g, values[i]);
                cr_assert_eq(d->items[1].customs_value_usd_cents, values[i]);
        }
        /* a value outside int32 is not an int: both decoders reject it */
        dst_sample(&orig, 9);
        orig.items[0].gross_weight_g = 2147483648LL;
        b.len = 0;
        dst_body(&b, &orig, 1);
        ds_codec_t *c = codec_for(r, w);
        cr_assert_eq(ds_codec_decode(c, b.p, b.len, d), DS_DLQ_MALFORMED);
        ds_codec_destroy(c);
        char err[512];
        ds_avro_decoder_t *ad = ds_avro_decoder_new(ds_reader_schema(r), w, err, sizeof(err));
        cr_assert_neq(ds_avro_decode(ad, b.p, b.len, d), DS_DLQ_NONE);
        ds_avro_decoder_destroy(ad);
        avro_schema_decref(w);

        /* long -> int (a narrowing) is not a promotion: incompatible */
        char *wn = dst_replace(v1, "{\"name\": \"version\", \"type\": \"int\"", "{\"name\": \"version\", \"type\": \"long\"");
        w = schema_from(wn);
        cr_assert_null(ds_codec_new(r, w, err, sizeof(err)));
        cr_assert(strstr(err, "version"), "%s", err);
        avro_schema_decref(w);

        ds_buf_free(&b);
        free(d);
        free(a);
        free(wj);
        free(wn);
        free(v1);
        ds_reader_destroy(r);
}

/* ------------------------------------------------------------------------ */
/* Parsing Canonical Form and CRC-64-AVRO                                     */

/* The specification's vectors: apache/avro share/test/data/schema-tests.txt
 * (cross-checked there against Java's SchemaNormalization). */
static const struct {
        const char *input, *canonical;
        int64_t fingerprint; /* 0: none given */
} vectors[] = {
    {"\"null\"", "\"null\"", 7195948357588979594LL},
    {"{\"type\":\"null\"}", "\"null\"", 0},
    {"\"boolean\"", "\"boolean\"", -6970731678124411036LL},
    {"\"int\"", "\"int\"", 8247732601305521295LL},
    {"{\"type\":\"int\"}", "\"int\"", 0},
    {"\"long\"", "\"long\"", -3434872931120570953LL},
    {"\"float\"", "\"float\"", 5583340709985441680LL},
    {"\"double\"", "\"double\"", -8181574048448539266LL},
    {"\"bytes\"", "\"bytes\"", 5746618253357095269LL},
    {"\"string\"", "\"string\"", -8142146995180207161LL},
    {"[  ]", "[]", -1241056759729112623LL},
    {"[ \"int\"  ]", "[\"int\"]", -5232228896498058493LL},
    {"[ \"int\" , {\"type\":\"boolean\"} ]", "[\"int\",\"boolean\"]", 5392556393470105090LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\"}", "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}",
     -4824392279771201922LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"namespace\":\"x.y\"}",
     "{\"name\":\"x.y.foo\",\"type\":\"record\",\"fields\":[]}", 5916914534497305771LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"a.b.foo\", \"namespace\":\"x.y\"}",
     "{\"name\":\"a.b.foo\",\"type\":\"record\",\"fields\":[]}", -4616218487480524110LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"doc\":\"Useful info\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", -4824392279771201922LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"aliases\":[\"foo\",\"bar\"]}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", -4824392279771201922LL},
    {"{\"fields\":[{\"type\":{\"type\":\"boolean\"}, \"name\":\"f1\"}], \"type\":\"record\", \"name\":\"foo\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\",\"type\":\"boolean\"}]}",
     7843277075252814651LL},
    {"{ \"fields\":[{\"type\":\"boolean\", \"aliases\":[], \"name\":\"f1\", \"default\":\"true\"},\n"
     "            {\"order\":\"descending\",\"name\":\"f2\",\"doc\":\"Hello\",\"type\":\"int\"}],\n"
     "  \"type\":\"record\", \"name\":\"foo\"\n}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\",\"type\":\"boolean\"},{\"name\":\"f2\","
     "\"type\":\"int\"}]}",
     -4860222112080293046LL},
    {"{\"type\":\"enum\", \"name\":\"foo\", \"symbols\":[\"A1\"]}", "{\"name\":\"foo\",\"type\":\"enum\",\"symbols\":[\"A1\"]}",
     -6342190197741309591LL},
    {"{\"namespace\":\"x.y.z\", \"type\":\"enum\", \"name\":\"foo\", \"doc\":\"foo bar\", \"symbols\":[\"A1\", \"A2\"]}",
     "{\"name\":\"x.y.z.foo\",\"type\":\"enum\",\"symbols\":[\"A1\",\"A2\"]}", -4448647247586288245LL},
    {"{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}", "{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}",
     1756455273707447556LL},
    {"{\"namespace\":\"x.y.z\", \"type\":\"fixed\", \"name\":\"foo\", \"doc\":\"foo bar\", \"size\":32}",
     "{\"name\":\"x.y.z.foo\",\"type\":\"fixed\",\"size\":32}", -3064184465700546786LL},
    {"{ \"items\":{\"type\":\"null\"}, \"type\":\"array\"}", "{\"type\":\"array\",\"items\":\"null\"}",
     -589620603366471059LL},
    {"{ \"values\":\"string\", \"type\":\"map\"}", "{\"type\":\"map\",\"values\":\"string\"}", -8732877298790414990LL},
    {"  {\"name\":\"PigValue\",\"type\":\"record\",\n"
     "   \"fields\":[{\"name\":\"value\", \"type\":[\"null\", \"int\", \"long\", \"PigValue\"]}]}",
     "{\"name\":\"PigValue\",\"type\":\"record\",\"fields\":[{\"name\":\"value\",\"type\":[\"null\",\"int\",\"long\","
     "\"PigValue\"]}]}",
     -1759257747318642341LL},
};

Test(evolution, canonical_form_and_fingerprint_match_the_spec_vectors) {
        char err[256];
        for (size_t i = 0; i < DS_ARRAY_LEN(vectors); i++) {
                char *pcf = ds_schema_canonical(vectors[i].input, strlen(vectors[i].input), err, sizeof(err));
                cr_assert_not_null(pcf, "vector %zu: %s", i, err);
                cr_expect_str_eq(pcf, vectors[i].canonical, "vector %zu", i);
                if (vectors[i].fingerprint)
                        cr_expect_eq((int64_t)ds_crc64_avro(pcf, strlen(pcf)), vectors[i].fingerprint,
                                     "vector %zu: %s", i, pcf);
                free(pcf);
        }
        /* the single-object header of "int" (the Ruby implementation's test) */
        uint64_t fp;
        cr_assert_eq(ds_schema_fingerprint("\"int\"", 5, &fp, err, sizeof(err)), 0);
        const uint8_t want[8] = {0x8f, 0x5c, 0x39, 0x3f, 0x1a, 0xd5, 0x75, 0x72};
        for (int i = 0; i < 8; i++)
                cr_expect_eq((uint8_t)(fp >> (8 * i)), want[i], "byte %d", i);
        /* the empty string is the CRC's EMPTY value */
        cr_expect_eq(ds_crc64_avro("", 0), 0xc15d213aa4d7a795ULL);
        /* not schemas */
        cr_expect_null(ds_schema_canonical("{", 1, err, sizeof(err)));
        cr_expect_null(ds_schema_canonical("{\"type\":\"record\"}", 17, err, sizeof(err)));
        cr_expect_null(ds_schema_canonical("42", 2, err, sizeof(err)));
}

Test(evolution, canonical_form_of_the_shipped_schemas) {
        char err[256];
        size_t n1, n2;
        char *v1 = dst_read(DST_V1, &n1), *v2 = dst_read(DST_V2, &n2);
        char *p1 = ds_schema_canonical(v1, n1, err, sizeof(err)), *p2 = ds_schema_canonical(v2, n2, err, sizeof(err));
        cr_assert(p1 && p2, "%s", err);
        cr_expect(!strstr(p1, "doc") && !strstr(p1, " ") && !strstr(p1, "logicalType") && !strstr(p1, "default"),
                  "%s", p1);
        cr_expect(!strncmp(p1, "{\"name\":\"vn.customs.Declaration\",\"type\":\"record\",\"fields\":[", 58), "%s", p1);
        cr_expect(strstr(p1, "{\"name\":\"vn.customs.EventKind\",\"type\":\"enum\",\"symbols\":[\"NEW\",\"AMEND\","
                             "\"CANCEL\"]}"),
                  "%s", p1);
        cr_expect(strstr(p1, "{\"name\":\"declared_at\",\"type\":\"long\"}"), "logical types strip to their type");
        cr_expect(strstr(p1, "{\"type\":\"array\",\"items\":{\"name\":\"vn.customs.Item\""), "%s", p1);
        cr_expect(strcmp(p1, p2));
        /* layout does not matter: the same schema re-serialised has the same form */
        json_t *j = json_loads(v1, 0, NULL);
        char *compact = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        char *pc = ds_schema_canonical(compact, strlen(compact), err, sizeof(err));
        cr_expect_str_eq(pc, p1);
        /* a named type referenced by name is written with its full name */
        const char *ref = "{\"type\":\"record\",\"name\":\"A\",\"namespace\":\"n\",\"fields\":["
                          "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\"]}},"
                          "{\"name\":\"f\",\"type\":\"E\"},{\"name\":\"g\",\"type\":{\"type\":\"fixed\",\"name\":"
                          "\"o.F\",\"size\":\"016\"}},{\"name\":\"h\",\"type\":\"o.F\"}]}";
        char *pr = ds_schema_canonical(ref, strlen(ref), err, sizeof(err));
        cr_expect_str_eq(pr, "{\"name\":\"n.A\",\"type\":\"record\",\"fields\":[{\"name\":\"e\",\"type\":{\"name\":"
                             "\"n.E\",\"type\":\"enum\",\"symbols\":[\"X\"]}},{\"name\":\"f\",\"type\":\"n.E\"},"
                             "{\"name\":\"g\",\"type\":{\"name\":\"o.F\",\"type\":\"fixed\",\"size\":16}},{\"name\":"
                             "\"h\",\"type\":\"o.F\"}]}");
        free(pr);
        free(pc);
        free(compact);
        json_decref(j);
        free(p1);
        free(p2);
        free(v1);
        free(v2);
}

/* ------------------------------------------------------------------------ */
/* Single-object encoding through ds_schemas_resolve                          */

Test(evolution, single_object_encoding_is_resolved_by_fingerprint) {
        char err[512];
        ds_schemas_t *s = ds_schemas_load(DST_SCHEMA_DIR, err, sizeof(err));
        cr_assert_not_null(s, "%s", err);
        size_t n;
        char *v1 = dst_read(DST_V1, &n);
        uint64_t fp1, fpfile;
        cr_assert_eq(ds_schemas_fingerprint(s, 1, &fp1), 0);
        cr_assert_eq(ds_schema_fingerprint(v1, n, &fpfile, err, sizeof(err)), 0);
        cr_assert_eq(fp1, fpfile);
        ds_decl_t orig, *d = malloc(sizeof(*d));
        dst_sample(&orig, 5);
        ds_buf_t b = {0};
        ds_resolved_t rs;

        dst_single_object(&b, &orig, 1, fp1);
        cr_assert_eq(ds_schemas_resolve(s, b.p, b.len, &rs), DS_DLQ_NONE);
        cr_assert_eq(rs.schema_id, 1, "the local id of the matching schema");
        cr_assert_eq(rs.body, b.p + DS_SOE_HEADER);
        cr_assert_eq(ds_codec_decode(rs.codec, rs.body, rs.body_len, d), DS_DLQ_NONE);
        cr_assert(dst_decl_equal(d, &orig, 0, why, sizeof(why)), "%s", why);

        /* unknown fingerprint */
        dst_single_object(&b, &orig, 1, fp1 ^ 1);
        cr_assert_eq(ds_schemas_resolve(s, b.p, b.len, &rs), DS_DLQ_UNKNOWN_SCHEMA);
        cr_assert_eq(rs.schema_id, -1);
        /* a known schema that is not a Declaration (Total, id 2) */
        uint64_t fp2;
        cr_assert_eq(ds_schemas_fingerprint(s, 2, &fp2), 0);
        dst_single_object(&b, &orig, 1, fp2);
        cr_assert_eq(ds_schemas_resolve(s, b.p, b.len, &rs), DS_DLQ_INCOMPATIBLE_SCHEMA);
        cr_assert_eq(rs.schema_id, 2);
        /* framing errors */
        cr_assert_eq(ds_schemas_resolve(s, (const uint8_t *)"\xc3", 1, &rs), DS_DLQ_SHORT_HEADER);
        cr_assert_eq(ds_schemas_resolve(s, (const uint8_t *)"\xc3\x01\x00\x00", 4, &rs), DS_DLQ_SHORT_HEADER);
        cr_assert_eq(ds_schemas_resolve(s, (const uint8_t *)"\xc3\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00", 11, &rs),
                     DS_DLQ_BAD_MAGIC);
        /* a Confluent message whose first byte was corrupted to C3 stays bad_magic */
        dst_framed(&b, &orig, 1, 1);
        b.p[0] = 0xC3;
        cr_assert_eq(ds_schemas_resolve(s, b.p, b.len, &rs), DS_DLQ_BAD_MAGIC);
        ds_buf_free(&b);
        free(d);
        free(v1);
        ds_schemas_destroy(s);
}
