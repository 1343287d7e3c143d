/*
 * test_hostile.c - what producers may send that they should not.
 *
 * Unit level (ds_schemas_resolve -> ds_codec_decode -> ds_validate, exactly
 * the worker's path), each case with the reason it must get:
 *
 *   empty message                                  empty
 *   10 MB: valid record + 10 MB of trailing bytes  trailing_bytes
 *          10 MB of 0xFF                           malformed (varint longer than 10 bytes)
 *          a 10 MB description (valid UTF-8)       accepted: size alone is not a reason
 *                                                  (Kafka's message.max.bytes bounds it)
 *          the same with one broken byte at its end invalid_utf8
 *   a string length of 2^62 (and 2^63-1)           truncated; a negative length: malformed
 *   array block counts: -1 with a size            accepted (legal Avro);
 *          -2^62 truncated, -51 too_many_items, INT64_MIN malformed
 *   writer schema nested deeper than 64 levels     incompatible_schema at compile time
 *   recursive writer type, data 100 links deep     malformed (skip depth limit), no stack overflow
 *   invalid UTF-8 (overlong, surrogate, > U+10FFFF, lone continuation,
 *          cut sequence) in description, unit, gate, plate ...  invalid_utf8
 *   NUL in a gate code                             unknown_gate (NUL in free text is allowed)
 *   wrong schema id (a Total, id 2)                incompatible_schema
 *   future schema version (id 8, not registered)   unknown_schema
 *   a registry serving hostile schemas (deep, recursive, huge, not JSON)
 *                                                  incompatible_schema / registry_unavailable
 *
 * End to end (hostile_e2e: embedded broker, test registry, the real
 * `declstream run`): the same messages interleaved with good ones in one
 * partition, plus a null key (bad_key) and unknown headers (accepted); every
 * bad message is in the dead-letter topic with its reason, every good one is
 * applied, and the registry's timeouts stall the partition once. Then a
 * flood: `declstream gen --bad-rate 1` at 20,000 messages/s for 60 s (10 s
 * under ASan, or DS_FLOOD_SECONDS) while the processor runs: its RSS must
 * stay bounded and it must apply good messages sent after the flood.
 */
#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ds_common.h"
#include "ds_domain.h"
#include "ds_encode.h"
#include "ds_fingerprint.h"
#include "ds_schemas.h"
#include "ds_testschemas.h"
#include "ds_validate.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#else
#define UNDER_ASAN 0
#endif

static ds_schemas_t *schemas;
static ds_decl_t *decl;
static ds_contrib_t *contrib;

static void unit_setup(void) {
        char err[512];
        ds_domain_init();
        schemas = ds_schemas_load(DST_SCHEMA_DIR, err, sizeof(err));
        cr_assert_not_null(schemas, "%s", err);
        decl = malloc(sizeof(*decl));
        contrib = malloc(sizeof(*contrib));
}

static void unit_teardown(void) {
        ds_schemas_destroy(schemas);
        free(decl);
        free(contrib);
}

TestSuite(hostile, .init = unit_setup, .fini = unit_teardown, .timeout = 60);

/* The worker's path, minus the key check. */
static ds_dlq_reason_t run(const ds_schemas_t *s, const void *msg, size_t len) {
        ds_resolved_t rs;
        ds_dlq_reason_t r = ds_schemas_resolve(s, msg, len, &rs);
        if (!r)
                r = ds_codec_decode(rs.codec, rs.body, rs.body_len, decl);
        if (!r)
                r = ds_validate(decl, 4, contrib);
        return r;
}

#define EXPECT_REASON(got, want, ...)                                                                       \
        do {                                                                                                \
                ds_dlq_reason_t got_ = (got), want_ = (want);                                               \
                char what_[256];                                                                            \
                snprintf(what_, sizeof(what_), " " __VA_ARGS__);                                            \
                cr_expect_eq(got_, want_, "got %s, want %s:%s", ds_dlq_code(got_), ds_dlq_code(want_), what_); \
        } while (0)

/* Header + v1 fields up to (not including) the items array. */
static void header_fields(ds_buf_t *b, const ds_decl_t *d) {
        b->len = 0;
        ds_wire_put_header(b, 1);
        ds_decl_t tmp = *d;
        tmp.item_cnt = 0;
        ds_encode_declaration(b, &tmp);
        b->len--; /* drop the empty array's terminating 0 */
}

static void put_item(ds_buf_t *b, const ds_item_t *it) {
        ds_avro_put_bytes(b, it->hs_code.p, it->hs_code.len);
        ds_avro_put_bytes(b, it->description.p, it->description.len);
        ds_avro_put_double(b, it->quantity);
        ds_avro_put_bytes(b, it->unit.p, it->unit.len);
        ds_avro_put_long(b, it->gross_weight_g);
        ds_avro_put_long(b, it->customs_value_usd_cents);
        ds_avro_put_bytes(b, it->origin_country.p, it->origin_country.len);
}

Test(hostile, empty_message) {
        EXPECT_REASON(run(schemas, NULL, 0), DS_DLQ_EMPTY);
        EXPECT_REASON(run(schemas, "", 0), DS_DLQ_EMPTY);
        EXPECT_REASON(run(schemas, "\0\0\0", 3), DS_DLQ_SHORT_HEADER);
        EXPECT_REASON(run(schemas, "\0\0\0\0\1", 5), DS_DLQ_TRUNCATED, "a header and no body");
}

Test(hostile, ten_megabyte_messages) {
        enum { MB10 = 10 << 20 };
        ds_decl_t d;
        dst_sample(&d, 1);
        ds_buf_t b = {0};
        /* a valid record, then 10 MB of trailing bytes */
        dst_framed(&b, &d, 1, 1);
        ds_buf_reserve(&b, MB10);
        memset(b.p + b.len, 'x', MB10);
        b.len += MB10;
        EXPECT_REASON(run(schemas, b.p, b.len), DS_DLQ_TRAILING_BYTES);
        /* 10 MB of 0xFF after the header: the first varint never ends */
        memset(b.p + DS_WIRE_HEADER, 0xFF, b.len - DS_WIRE_HEADER);
        EXPECT_REASON(run(schemas, b.p, b.len), DS_DLQ_MALFORMED);
        /* 10 MB of zeros: empty strings, zero numbers, no items, then trailing zeros */
        memset(b.p + DS_WIRE_HEADER, 0, b.len - DS_WIRE_HEADER);
        EXPECT_REASON(run(schemas, b.p, b.len), DS_DLQ_TRAILING_BYTES);

        /* a 10 MB description: valid, decoded in place (no copy), checked fast */
        char *text = malloc(MB10);
        for (size_t i = 0; i < MB10; i++)
                text[i] = "Thanh long ruot trang "[i % 22];
        memcpy(text + MB10 / 2, "\xe1\xbb\x99", 3); /* ộ */
        d.items[0].description = (ds_str_t){text, MB10};
        dst_framed(&b, &d, 1, 1);
        int64_t t0 = ds_mono_ms();
        EXPECT_REASON(run(schemas, b.p, b.len), DS_DLQ_NONE);
        const uint8_t *dp = (const uint8_t *)decl->items[0].description.p;
        cr_expect(dp > b.p && dp + MB10 <= b.p + b.len, "the description points into the message (no copy)");
        cr_expect_lt(ds_mono_ms() - t0, 2000, "10 MB decoded and UTF-8 checked in %lld ms",
                     (long long)(ds_mono_ms() - t0));
        /* one broken byte at its very end */
        text[MB10 - 1] = (char)0xC3;
        dst_framed(&b, &d, 1, 1);
        EXPECT_REASON(run(schemas, b.p, b.len), DS_DLQ_INVALID_UTF8);
        free(text);
        ds_buf_free(&b);
}

Test(hostile, string_lengths_of_2_pow_62_and_negative) {
        int64_t lens[] = {(int64_t)1 << 62, INT64_MAX, (int64_t)1 << 32, 1 << 20};
        ds_buf_t b = {0};
        for (size_t i = 0; i < DS_ARRAY_LEN(lens); i++) {
                b.len = 0;
                ds_wire_put_header(&b, 1);
                ds_avro_put_long(&b, lens[i]); /* declaration_id's length */
                ds_buf_put(&b, "300000000001", 12);
                EXPECT_REASON(run(schemas, b.p, b.len), DS_DLQ_TRUNCATED, "length %lld", (long long)lens[i]);
        }
        int64_t neg[] = {-1, -12, INT64_MIN};
        for (size_t i = 0; i < DS_ARRAY_LEN(neg); i++) {
                b.len = 0;
                ds_wire_put_header(&b, 1);
                ds_avro_put_long(&b, neg[i]);
                ds_buf_put(&b, "300000000001", 12);
                EXPECT_REASON(run(schemas, b.p, b.len), DS_DLQ_MALFORMED, "length %lld", (long long)neg[i]);
        }
        /* the same inside an item */
        ds_decl_t d;
        dst_sample(&d, 2);
        header_fields(&b, &d);
        ds_avro_put_long(&b, 1);
        ds_avro_put_long(&b, (int64_t)1 << 62); /* hs_code length */
        EXPECT_REASON(run(schemas, b.p, b.len), DS_DLQ_TRUNCATED);
        ds_buf_free(&b);
}

Test(hostile, negative_array_counts) {
        ds_decl_t d;
        dst_sample(&d, 3);
        ds_buf_t b = {0}, item = {0};
        put_item(&item, &d.items[0]);
        /* count -1 with a byte size: legal Avro, one item */
        header_fields(&b, &d);
        ds_avro_put_long(&b, -1);
        ds_avro_put_long(&b, (int64_t)item.len);
        ds_buf_put(&b, item.p, item.len);
        ds_avro_put_long(&b, 0);
        EXPECT_REASON(run(schemas, b.p, b.len), DS_DLQ_NONE);
        cr_expect_eq(decl->item_cnt, 1);
        /* a huge negative count: more items than bytes left */
        header_fields(&b, &d);
        ds_avro_put_long(&b, -((int64_t)1 << 62));
        ds_avro_put_long(&b, 10);
        ds_buf_put(&b, item.p, item.len);
        EXPECT_REASON(run(schemas, b.p, b.len), DS_DLQ_TRUNCATED);
        /* -51 items: over the VNACCS limit before any is read */
        header_fields(&b, &d);
        ds_avro_put_long(&b, -51);
        ds_avro_put_long(&b, (int64_t)(51 * item.len));
        for (int i = 0; i < 51; i++)
                ds_buf_put(&b, item.p, item.len);
        ds_avro_put_long(&b, 0);
        EXPECT_REASON(run(schemas, b.p, b.len), DS_DLQ_TOO_MANY_ITEMS);
        /* INT64_MIN, whose negation overflows */
        header_fields(&b, &d);
        ds_avro_put_long(&b, INT64_MIN);
        ds_avro_put_long(&b, 0);
        ds_avro_put_long(&b, 0);
        EXPECT_REASON(run(schemas, b.p, b.len), DS_DLQ_MALFORMED);
        /* a negative count whose size is itself bad */
        header_fields(&b, &d);
        ds_avro_put_long(&b, -1);
        ds_buf_put(&b, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11);
        EXPECT_REASON(run(schemas, b.p, b.len), DS_DLQ_MALFORMED);
        ds_buf_free(&b);
        ds_buf_free(&item);
}

/* ------------------------------------------------------------------------ */
/* Deep and recursive writer schemas                                          */

/* v1 + a field "deep": `levels` of union -> record -> union -> ... */
static char *deep_schema(int levels) {
        size_t cap = (size_t)levels * 120 + 64;
        char *t = malloc(cap), *p = t;
        for (int i = 0; i < levels; i++)
                p += sprintf(p, "[\"null\", {\"type\": \"record\", \"name\": \"N%d\", \"fields\": [{\"name\": \"f\", \"type\": ", i);
        p += sprintf(p, "\"long\"");
        for (int i = 0; i < levels; i++)
                p += sprintf(p, "}]}]");
        char *v1 = dst_read(DST_V1, NULL);
        char *field = malloc(strlen(t) + 64);
        sprintf(field, "{\"name\": \"deep\", \"type\": %s},\n    {\"name\": \"customs_office\"", t);
        char *s = dst_replace(v1, "{\"name\": \"customs_office\"", field);
        free(t);
        free(field);
        free(v1);
        return s;
}

/* v1 + "chain": ["null", Link], Link = {next: ["null", Link]} after gate_code */
static char *recursive_schema(void) {
        char *v1 = dst_read(DST_V1, NULL);
        char *s = dst_replace(v1, "{\"name\": \"customs_office\"",
                              "{\"name\": \"chain\", \"type\": [\"null\", {\"type\": \"record\", \"name\": \"Link\", "
                              "\"fields\": [{\"name\": \"next\", \"type\": [\"null\", \"Link\"]}]}]},\n"
                              "    {\"name\": \"customs_office\"");
        free(v1);
        return s;
}

/* A schema directory: the shipped v1 as id 1 plus extra schemas as ids 7.. */
static char *schema_dir_with(const char *const *extra, int n) {
        char *dir = ds_tmpdir("ds-hostile-schemas");
        char path[512], *v1 = dst_read(DST_V1, NULL);
        snprintf(path, sizeof(path), "%s/customs_declaration.avsc", dir);
        cr_assert_eq(dst_write(path, v1), 0);
        char props[4096] = "1 = customs_declaration.avsc\n";
        for (int i = 0; i < n; i++) {
                snprintf(path, sizeof(path), "%s/extra%d.avsc", dir, i);
                cr_assert_eq(dst_write(path, extra[i]), 0);
                snprintf(props + strlen(props), sizeof(props) - strlen(props), "%d = extra%d.avsc\n", 7 + i, i);
        }
        snprintf(path, sizeof(path), "%s/registry.properties", dir);
        cr_assert_eq(dst_write(path, props), 0);
        free(v1);
        return dir;
}

/* Body for the recursive writer: v1 fields with `links` links after gate_code. */
static void chain_message(ds_buf_t *b, const ds_decl_t *d, uint32_t id, int links) {
        ds_buf_t v1 = {0};
        ds_encode_declaration(&v1, d);
        /* v1 starts: id, version, kind, declared_at, gate: find the end of gate_code */
        size_t off = 0;
        for (int f = 0; f < 5; f++) { /* string, long, long, long, string */
                int64_t n = 0;
                int shift = 0;
                uint8_t c;
                uint64_t u = 0;
                do {
                        c = v1.p[off++];
                        u |= (uint64_t)(c & 0x7f) << shift;
                        shift += 7;
                } while (c & 0x80);
                n = (int64_t)((u >> 1) ^ (~(u & 1) + 1));
                if (f == 0 || f == 4)
                        off += (size_t)n;
        }
        b->len = 0;
        ds_wire_put_header(b, id);
        ds_buf_put(b, v1.p, off);
        for (int i = 0; i < links; i++)
                ds_avro_put_long(b, 1); /* branch Link, whose next is ... */
        ds_avro_put_long(b, 0);         /* null */
        ds_buf_put(b, v1.p + off, v1.len - off);
        ds_buf_free(&v1);
}

Test(hostile, writer_schemas_nested_too_deep_fail_at_compile_time) {
        char *deep = deep_schema(100), *shallow = deep_schema(10);
        const char *extra[] = {deep, shallow};
        char *dir = schema_dir_with(extra, 2);
        char err[512];
        ds_schemas_t *s = ds_schemas_load(dir, err, sizeof(err));
        cr_assert_not_null(s, "Avro C parses it; only the decoder refuses it: %s", err);
        ds_dlq_reason_t why = DS_DLQ_NONE;
        cr_expect_null(ds_schemas_codec(s, 7, &why));
        EXPECT_REASON(why, DS_DLQ_INCOMPATIBLE_SCHEMA);
        cr_expect(strstr(ds_schemas_note(s, 7), "nested deeper"), "%s", ds_schemas_note(s, 7));
        cr_expect_not_null(ds_schemas_codec(s, 8, &why), "10 levels are fine: %s", ds_schemas_note(s, 8));
        ds_decl_t d;
        dst_sample(&d, 4);
        ds_buf_t b = {0};
        dst_framed(&b, &d, 1, 7);
        EXPECT_REASON(run(s, b.p, b.len), DS_DLQ_INCOMPATIBLE_SCHEMA);
        ds_buf_free(&b);
        ds_schemas_destroy(s);
        ds_tmpdir_remove(dir);
        free(dir);
        free(deep);
        free(shallow);
}

Test(hostile, recursive_data_too_deep_is_malformed_without_a_stack_overflow) {
        char *rec = recursive_schema();
        const char *extra[] = {rec};
        char *dir = schema_dir_with(extra, 1);
        char err[512];
        ds_schemas_t *s = ds_schemas_load(dir, err, sizeof(err));
        cr_assert_not_null(s, "%s", err);
        ds_decl_t d;
        dst_sample(&d, 5);
        ds_buf_t b = {0};
        chain_message(&b, &d, 7, 5);
        EXPECT_REASON(run(s, b.p, b.len), DS_DLQ_NONE, "5 links");
        cr_expect_eq(decl->customs_office.len, d.customs_office.len);
        chain_message(&b, &d, 7, 100);
        EXPECT_REASON(run(s, b.p, b.len), DS_DLQ_MALFORMED, "100 links: over the skip depth limit");
        chain_message(&b, &d, 7, 1000000); /* 1 MB of nesting */
        EXPECT_REASON(run(s, b.p, b.len), DS_DLQ_MALFORMED);
        ds_buf_free(&b);
        ds_schemas_destroy(s);
        ds_tmpdir_remove(dir);
        free(dir);
        free(rec);
}

/* ------------------------------------------------------------------------ */
/* Strings                                                                     */

static const struct {
        const char *bytes;
        int len;
        const char *what;
} bad_utf8[] = {
    {"\x80", 1, "lone continuation byte"},
    {"abc\xbf", 4, "continuation byte after ASCII"},
    {"\xc0\x80", 2, "overlong NUL"},
    {"\xc1\xbf", 2, "overlong 2-byte"},
    {"\xe0\x80\xaf", 3, "overlong 3-byte"},
    {"\xf0\x8f\xbf\xbf", 4, "overlong 4-byte"},
    {"\xed\xa0\x80", 3, "UTF-16 surrogate U+D800"},
    {"\xed\xbf\xbf", 3, "UTF-16 surrogate U+DFFF"},
    {"\xf4\x90\x80\x80", 4, "above U+10FFFF"},
    {"\xf5\x80\x80\x80", 4, "F5 lead byte"},
    {"\xff", 1, "FF"},
    {"Thanh long \xe1\xbb", 13, "sequence cut by the end"},
    {"\xe1\xbb" "abcdefgh", 10, "sequence cut by ASCII"},
    {"\xc3\x28", 2, "bad continuation"},
};

static const struct {
        const char *bytes;
        const char *what;
} good_utf8[] = {
    {"", "empty"},
    {"Thanh long ru\xe1\xbb\x99t tr\xe1\xba\xafng", "Vietnamese"},
    {"\xe4\xb8\xad\xe5\x9b\xbd\xe5\x88\xb6\xe9\x80\xa0", "Chinese"},
    {"\xf0\x9f\x9a\x9a container", "4-byte (emoji)"},
    {"\xef\xbf\xbf\xf4\x8f\xbf\xbf\xed\x9f\xbf\xee\x80\x80", "edges: U+FFFF U+10FFFF U+D7FF U+E000"},
    {"\xc2\x80\xdf\xbf\xe0\xa0\x80", "edges: U+0080 U+07FF U+0800"},
};

Test(hostile, invalid_utf8_in_any_string_field) {
        ds_buf_t b = {0};
        for (size_t i = 0; i < DS_ARRAY_LEN(bad_utf8); i++) {
                ds_str_t bad = {bad_utf8[i].bytes, (uint32_t)bad_utf8[i].len};
                for (int field = 0; field < 6; field++) {
                        ds_decl_t d;
                        dst_sample(&d, (int)i);
                        switch (field) {
                        case 0: d.items[1].description = bad; break;
                        case 1: d.items[0].unit = bad; break;
                        case 2: d.gate_code = bad; break;
                        case 3: d.vehicle_plate = bad; break;
                        case 4: d.customs_office = bad; break;
                        case 5: d.items[0].origin_country = bad; break;
                        }
                        dst_framed(&b, &d, 1, 1);
                        EXPECT_REASON(run(schemas, b.p, b.len), DS_DLQ_INVALID_UTF8, "%s in field %d",
                                      bad_utf8[i].what, field);
                }
        }
        for (size_t i = 0; i < DS_ARRAY_LEN(good_utf8); i++) {
                ds_decl_t d;
                dst_sample(&d, (int)i);
                d.items[0].description = (ds_str_t){good_utf8[i].bytes, (uint32_t)strlen(good_utf8[i].bytes)};
                d.vehicle_plate = d.items[0].description;
                dst_framed(&b, &d, 1, 1);
                EXPECT_REASON(run(schemas, b.p, b.len), DS_DLQ_NONE, "%s", good_utf8[i].what);
        }
        /* a bad byte in the id is invalid_utf8 too: the encoding rule comes first */
        ds_decl_t d;
        dst_sample(&d, 9);
        d.declaration_id = (ds_str_t){"30000000000\xff", 12};
        dst_framed(&b, &d, 1, 1);
        EXPECT_REASON(run(schemas, b.p, b.len), DS_DLQ_INVALID_UTF8);
        ds_buf_free(&b);
}

Test(hostile, utf8_checker_at_every_offset_of_the_fast_path) {
        char buf[64];
        for (int len = 0; len <= 40; len++) {
                for (int at = 0; at + 3 <= len; at++) {
                        memset(buf, 'a', sizeof(buf));
                        memcpy(buf + at, "\xe1\xbb\x99", 3);
                        cr_assert(ds_utf8_valid(buf, (size_t)len), "valid, len %d at %d", len, at);
                        buf[at + 2] = 'x';
                        cr_assert(!ds_utf8_valid(buf, (size_t)len), "cut, len %d at %d", len, at);
                        buf[at + 2] = (char)0x99;
                        buf[at] = (char)0x80;
                        cr_assert(!ds_utf8_valid(buf, (size_t)len), "continuation, len %d at %d", len, at);
                }
                memset(buf, 'a', sizeof(buf));
                if (len)
                        buf[len - 1] = (char)0xc3; /* cut at the very end, past the word loop */
                cr_assert_eq(ds_utf8_valid(buf, (size_t)len), len == 0, "len %d", len);
        }
        /* a broken byte just past the checked length does not count */
        memcpy(buf, "abcdefgh\xff", 9);
        cr_assert(ds_utf8_valid(buf, 8));
}

Test(hostile, nul_in_a_gate_code_is_an_unknown_gate) {
        ds_buf_t b = {0};
        ds_decl_t d;
        dst_sample(&d, 6);
        const char *gates[] = {"MONGCAI\0", "\0MONGCAI", "MONG\0CAI", "MONGCAI\0\0\0\0\0\0\0\0\0"};
        uint32_t lens[] = {8, 8, 8, 16};
        for (size_t i = 0; i < DS_ARRAY_LEN(gates); i++) {
                d.gate_code = (ds_str_t){gates[i], lens[i]};
                dst_framed(&b, &d, 1, 1);
                EXPECT_REASON(run(schemas, b.p, b.len), DS_DLQ_UNKNOWN_GATE, "case %zu", i);
        }
        /* NUL is a character: allowed in free text */
        dst_sample(&d, 6);
        d.items[0].description = (ds_str_t){"dragon\0fruit", 12};
        dst_framed(&b, &d, 1, 1);
        EXPECT_REASON(run(schemas, b.p, b.len), DS_DLQ_NONE);
        ds_buf_free(&b);
}

Test(hostile, wrong_and_future_schema_ids) {
        ds_buf_t b = {0};
        ds_decl_t d;
        dst_sample(&d, 7);
        struct {
                uint32_t id;
                ds_dlq_reason_t want;
        } cases[] = {{2, DS_DLQ_INCOMPATIBLE_SCHEMA}, /* a Total */
                     {4, DS_DLQ_INCOMPATIBLE_SCHEMA}, /* TopHeadings */
                     {5, DS_DLQ_INCOMPATIBLE_SCHEMA},
                     {6, DS_DLQ_INCOMPATIBLE_SCHEMA}, /* PartialTotal */
                     {7, DS_DLQ_INCOMPATIBLE_SCHEMA}, /* PartialRows */
                     {8, DS_DLQ_UNKNOWN_SCHEMA}, /* a future version, not registered */
                     {0, DS_DLQ_UNKNOWN_SCHEMA},
                     {4095, DS_DLQ_UNKNOWN_SCHEMA},
                     {4096, DS_DLQ_UNKNOWN_SCHEMA},
                     {UINT32_MAX, DS_DLQ_UNKNOWN_SCHEMA}};
        for (size_t i = 0; i < DS_ARRAY_LEN(cases); i++) {
                dst_framed(&b, &d, 1, cases[i].id);
                ds_resolved_t rs;
                EXPECT_REASON(ds_schemas_resolve(schemas, b.p, b.len, &rs), cases[i].want, "id %u", cases[i].id);
                cr_expect_eq(rs.schema_id, cases[i].id, "the id is reported for the dead-letter header");
        }
        /* v2 bytes under the v1 id: the reader sees trailing bytes */
        dst_framed(&b, &d, 2, 1);
        EXPECT_REASON(run(schemas, b.p, b.len), DS_DLQ_TRAILING_BYTES);
        /* v1 bytes under the v2 id: the record ends early */
        dst_framed(&b, &d, 1, 3);
        EXPECT_REASON(run(schemas, b.p, b.len), DS_DLQ_TRUNCATED);
        ds_buf_free(&b);
}

/* The registry itself may be hostile (or a proxy in front of it). */
Test(hostile, a_registry_serving_hostile_schemas) {
        char *dir = ds_tmpdir("ds-hostile-registry");
        char *deep = deep_schema(100), *json_bomb = malloc(50001 * 2 + 64), *huge = malloc((5 << 20) + 64);
        /* 50,000 nested arrays: deeper than any JSON parser should recurse */
        char *p = json_bomb;
        for (int i = 0; i < 50000; i++)
                *p++ = '[';
        for (int i = 0; i < 50000; i++)
                *p++ = ']';
        *p = '\0';
        /* a 5 MB schema document: over ds_registry's 4 MiB answer limit */
        memset(huge, ' ', 5 << 20);
        memcpy(huge, "\"long\"", 6);
        huge[5 << 20] = '\0';
        json_t *spec = json_object(), *ids = json_object();
        json_object_set_new(ids, "80", json_pack("{s:s}", "schema", deep));
        json_object_set_new(ids, "81", json_pack("{s:s}", "schema", json_bomb));
        json_object_set_new(ids, "82", json_pack("{s:s}", "schema", huge));
        char *rec = recursive_schema();
        json_object_set_new(ids, "83", json_pack("{s:s}", "schema", rec));
        json_object_set_new(spec, "ids", ids);
        char *spec_text = json_dumps(spec, 0);
        ds_proc_t srv;
        char url[128];
        cr_assert_eq(dst_registry_start(&srv, dir, spec_text, url, sizeof(url)), 0);
        ds_registry_conf_t rc = {url, NULL, 2000, 0, 10, 10};
        char err[512];
        ds_schemas_t *s = ds_schemas_open_registry(DST_SCHEMA_DIR, &rc, 60000, err, sizeof(err));
        cr_assert_not_null(s, "%s", err);
        ds_decl_t d;
        dst_sample(&d, 8);
        ds_buf_t b = {0};
        dst_framed(&b, &d, 1, 80);
        EXPECT_REASON(run(s, b.p, b.len), DS_DLQ_INCOMPATIBLE_SCHEMA, "nested 100 deep");
        dst_framed(&b, &d, 1, 81);
        EXPECT_REASON(run(s, b.p, b.len), DS_DLQ_INCOMPATIBLE_SCHEMA, "JSON nested 50,000 deep");
        dst_framed(&b, &d, 1, 82);
        EXPECT_REASON(run(s, b.p, b.len), DS_DLQ_REGISTRY_UNAVAILABLE, "answer over 4 MiB");
        chain_message(&b, &d, 83, 3);
        EXPECT_REASON(run(s, b.p, b.len), DS_DLQ_NONE, "a recursive writer served by the registry");
        chain_message(&b, &d, 83, 200);
        EXPECT_REASON(run(s, b.p, b.len), DS_DLQ_MALFORMED);
        ds_schemas_destroy(s);
        dst_registry_stop(&srv);
        ds_buf_free(&b);
        free(spec_text);
        json_decref(spec);
        free(rec);
        free(deep);
        free(json_bomb);
        free(huge);
        ds_tmpdir_remove(dir);
        free(dir);
}

/* Each seed of tests/corpus/decode still gets the reason its name says. */
Test(hostile, corpus_seeds_have_their_documented_reasons) {
        static const struct {
                const char *name;
                ds_dlq_reason_t want;
        } seeds[] = {
            {"v1_framed", DS_DLQ_NONE},
            {"v2_framed", DS_DLQ_NONE},
            {"v1_single_object", DS_DLQ_NONE},
            {"v2_single_object", DS_DLQ_NONE},
            {"v1_50_items_no_plate", DS_DLQ_NONE},
            {"v1_invalid_utf8", DS_DLQ_INVALID_UTF8},
            {"v1_nul_in_gate", DS_DLQ_UNKNOWN_GATE},
            {"v1_truncated", DS_DLQ_TRUNCATED},
            {"id2_total", DS_DLQ_INCOMPATIBLE_SCHEMA},
            {"id999_unknown", DS_DLQ_UNKNOWN_SCHEMA},
            {"short", DS_DLQ_SHORT_HEADER},
        };
        for (size_t i = 0; i < DS_ARRAY_LEN(seeds); i++) {
                char path[512];
                snprintf(path, sizeof(path), DS_SOURCE_DIR "/tests/corpus/decode/%s", seeds[i].name);
                size_t n;
                char *m = dst_read(path, &n);
                EXPECT_REASON(run(schemas, m, n), seeds[i].want, "%s", seeds[i].name);
                free(m);
        }
}

/* ------------------------------------------------------------------------ */
/* End to end: the real processor, the embedded broker, the test registry     */

static char *edir;
static ds_proc_t broker, registry;
static char servers[256], reg_url[128];

static char *epath(const char *name) {
        return ds_join(edir, name);
}

static void e2e_start(int partitions) {
        edir = ds_tmpdir("ds-hostile-e2e");
        cr_assert_not_null(edir);
        cr_assert_eq(ds_broker_start(&broker, edir, partitions, servers, sizeof(servers)), 0, "broker did not start");
}

static void e2e_setup(void) {
        e2e_start(12);
}

/* 48 partitions keep 240 MiB: a minute at 20,000/s (~1.2 M messages of
 * ~180 B) fits without the broker deleting any (FACTS.md) */
static void flood_setup(void) {
        e2e_start(48);
}

static void e2e_teardown(void) {
        ds_proc_kill(&broker, SIGTERM);
        if (ds_proc_wait(&broker, 5000) < 0)
                ds_proc_kill(&broker, SIGKILL);
        if (registry.pid)
                dst_registry_stop(&registry);
        ds_tmpdir_remove(edir);
        free(edir);
}

/* each test names its own .init (Criterion runs a suite's .init too) */
TestSuite(hostile_e2e, .fini = e2e_teardown, .timeout = 240);

static void fill_random(uint8_t *p, size_t n) {
        uint64_t x = 0x9e3779b97f4a7c15ULL;
        for (size_t i = 0; i < n; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                p[i] = (uint8_t)x;
        }
}

static int delivery_failures;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
        (void)rk;
        (void)opaque;
        if (m->err) {
                delivery_failures++;
                fprintf(stderr, "test producer: %s\n", rd_kafka_err2str(m->err));
        }
}

static rd_kafka_t *producer(void) {
        char err[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", servers, err, sizeof(err)), RD_KAFKA_CONF_OK);
        cr_assert_eq(rd_kafka_conf_set(conf, "message.max.bytes", "16000000", err, sizeof(err)), RD_KAFKA_CONF_OK);
        cr_assert_eq(rd_kafka_conf_set(conf, "linger.ms", "5", err, sizeof(err)), RD_KAFKA_CONF_OK);
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        cr_assert_not_null(p, "%s", err);
        return p;
}

/* One message to partition 0 of the input topic; key NULL: a null key. */
static void produce(rd_kafka_t *p, const char *key, const void *value, size_t len, int with_headers) {
        rd_kafka_resp_err_t e;
        if (with_headers)
                e = rd_kafka_producev(p, RD_KAFKA_V_TOPIC("customs.declarations"), RD_KAFKA_V_PARTITION(0),
                                      RD_KAFKA_V_KEY(key, key ? strlen(key) : 0), RD_KAFKA_V_VALUE((void *)value, len),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_HEADER("x-trace-id", "4bf92f3577b34da6", -1),
                                      RD_KAFKA_V_HEADER("x-unknown-binary", "\x00\xff\x01", 3),
                                      RD_KAFKA_V_HEADER("ds.error.code", "forged", -1), RD_KAFKA_V_END);
        else
                e = rd_kafka_producev(p, RD_KAFKA_V_TOPIC("customs.declarations"), RD_KAFKA_V_PARTITION(0),
                                      RD_KAFKA_V_KEY(key, key ? strlen(key) : 0), RD_KAFKA_V_VALUE((void *)value, len),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "produce: %s", rd_kafka_err2str(e));
        rd_kafka_poll(p, 0);
}

typedef struct expect {
        char key[32]; /* "" for the null key */
        ds_dlq_reason_t reason;
} expect_t;

Test(hostile_e2e, bad_messages_go_to_the_dlq_with_their_reason_and_never_block_good_ones, .init = e2e_setup) {
        /* the test registry: a v2 writer (78), a registry that times out (77),
         * fails (79), a too-deep schema (80), a recursive writer (81) */
        char *deep = deep_schema(100), *rec = recursive_schema(), *v2 = dst_read(DST_V2, NULL);
        json_t *ids = json_object();
        json_object_set_new(ids, "77", json_pack("{s:i,s:s}", "delay_ms", 3000, "schema", v2));
        json_object_set_new(ids, "78", json_pack("{s:s}", "schema", v2));
        json_object_set_new(ids, "79", json_pack("{s:[i]}", "status", 500));
        json_object_set_new(ids, "80", json_pack("{s:s}", "schema", deep));
        json_object_set_new(ids, "81", json_pack("{s:s}", "schema", rec));
        json_t *spec = json_pack("{s:o}", "ids", ids);
        char *spec_text = json_dumps(spec, 0);
        cr_assert_eq(dst_registry_start(&registry, edir, spec_text, reg_url, sizeof(reg_url)), 0);

        char err[512];
        ds_schemas_t *s = ds_schemas_load(DST_SCHEMA_DIR, err, sizeof(err));
        uint64_t fp1;
        cr_assert_eq(ds_schemas_fingerprint(s, 1, &fp1), 0);
        ds_schemas_destroy(s);

        rd_kafka_t *p = producer();
        expect_t exp[64];
        int n = 0, good = 0;
        ds_buf_t b = {0};
        ds_decl_t d;
#define GOOD(build, headers)                                                                         \
        do {                                                                                         \
                dst_sample(&d, 100 + n);                                                             \
                build;                                                                               \
                snprintf(exp[n].key, sizeof(exp[n].key), "%.*s", (int)d.declaration_id.len,         \
                         d.declaration_id.p);                                                        \
                exp[n].reason = DS_DLQ_NONE;                                                         \
                produce(p, exp[n].key, b.p, b.len, headers);                                         \
                n++, good++;                                                                         \
        } while (0)
#define BADH(build, want, headers)                                                                   \
        do {                                                                                         \
                dst_sample(&d, 100 + n);                                                             \
                build;                                                                               \
                snprintf(exp[n].key, sizeof(exp[n].key), "%.*s", (int)d.declaration_id.len,         \
                         d.declaration_id.p);                                                        \
                exp[n].reason = want;                                                                \
                produce(p, exp[n].key, b.p, b.len, headers);                                         \
                n++;                                                                                 \
        } while (0)
#define BAD(build, want) BADH(build, want, 0)

        GOOD(dst_framed(&b, &d, 1, 1), 0);
        BAD(b.len = 0, DS_DLQ_EMPTY);
        GOOD(dst_framed(&b, &d, 2, 3), 0);
        BAD((b.len = 0, ds_wire_put_header(&b, 1), ds_avro_put_long(&b, (int64_t)1 << 62)), DS_DLQ_TRUNCATED);
        GOOD(dst_framed(&b, &d, 1, 1), 1); /* unknown headers: accepted */
        BAD((header_fields(&b, &d), ds_avro_put_long(&b, -((int64_t)1 << 62)), ds_avro_put_long(&b, 1)),
            DS_DLQ_TRUNCATED);
        BAD((d.items[0].description = (ds_str_t){"h\xe0\x80\xafng", 6}, dst_framed(&b, &d, 1, 1)),
            DS_DLQ_INVALID_UTF8);
        BADH((d.gate_code = (ds_str_t){"MONGCAI\0", 8}, dst_framed(&b, &d, 1, 1)), DS_DLQ_UNKNOWN_GATE, 1);
        char forged_key[32]; /* its original headers include a forged ds.error.code */
        memcpy(forged_key, exp[n - 1].key, sizeof(forged_key));
        BAD(dst_framed(&b, &d, 1, 2), DS_DLQ_INCOMPATIBLE_SCHEMA);  /* wrong id: a Total */
        BAD(dst_framed(&b, &d, 1, 8), DS_DLQ_UNKNOWN_SCHEMA);       /* future version: the registry says 404 */
        GOOD(dst_framed(&b, &d, 2, 78), 0);                          /* a schema only the registry has */
        BAD(dst_framed(&b, &d, 1, 80), DS_DLQ_INCOMPATIBLE_SCHEMA);  /* nested too deep */
        GOOD(chain_message(&b, &d, 81, 3), 0);
        BAD(chain_message(&b, &d, 81, 500), DS_DLQ_MALFORMED);       /* recursion too deep */
        BAD(dst_framed(&b, &d, 2, 77), DS_DLQ_REGISTRY_UNAVAILABLE); /* registry times out: one stall */
        GOOD(dst_single_object(&b, &d, 1, fp1), 0);
        BAD(dst_framed(&b, &d, 2, 77), DS_DLQ_REGISTRY_UNAVAILABLE); /* negative cache: no stall */
        GOOD(dst_framed(&b, &d, 2, 78), 0);                          /* known ids keep working */
        /* the registry just failed: a new id is not asked for (negative.ttl.ms) */
        BAD(dst_framed(&b, &d, 2, 79), DS_DLQ_REGISTRY_UNAVAILABLE);
        /* a 3 MB message (over Kafka's default 1 MB, under the embedded broker's
         * 5 MiB per partition): a valid record, then incompressible bytes */
        BAD((dst_framed(&b, &d, 1, 1), ds_buf_reserve(&b, 3000000), fill_random(b.p + b.len, 3000000),
             b.len += 3000000),
            DS_DLQ_TRAILING_BYTES);
        /* the null key: the record is fine, its key is not its declaration id */
        dst_sample(&d, 100 + n);
        dst_framed(&b, &d, 1, 1);
        produce(p, NULL, b.p, b.len, 0);
        exp[n].key[0] = '\0';
        exp[n++].reason = DS_DLQ_BAD_KEY;
        BAD((dst_framed(&b, &d, 1, 1), d.declaration_id = (ds_str_t){"999999999999", 12}), DS_DLQ_BAD_KEY);
        GOOD(dst_framed(&b, &d, 1, 1), 0);
        cr_assert_eq(rd_kafka_flush(p, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
        cr_assert_eq(delivery_failures, 0);
        rd_kafka_destroy(p);
        ds_buf_free(&b);

        char *run[] = {DS_BINARY, "run", "-b", servers, "--exit.on.eof", "true", "--commit.interval.ms", "200",
                       "-X", "session.timeout.ms=6000", "--schema.registry.url", reg_url,
                       "--schema.registry.timeout.ms", "200", "--schema.registry.retries", "1", NULL};
        int64_t t0 = ds_mono_ms();
        int rc = ds_run(run, NULL, epath("run.err"), 120000);
        int64_t took = ds_mono_ms() - t0;
        cr_assert_eq(rc, 0, "run exited with %d (see %s)", rc, epath("run.err"));
        char *log = ds_slurp(epath("run.err"), NULL);
        cr_assert_not_null(log);
        cr_expect_eq(ds_log_counter(log, "summary", "consumed"), n);
        cr_expect_eq(ds_log_counter(log, "summary", "applied"), good, "every good message applied");
        cr_expect_eq(ds_log_counter(log, "summary", "dead_lettered"), n - good);
        cr_expect_eq(ds_log_counter(log, "summary", "dlq_registry_unavailable"), 3);
        cr_expect_lt(took, 60000, "took %lld ms", (long long)took);
        cr_expect(strstr(log, "schema_id=77 reason=registry_unavailable"), "one registry fetch for id 77");
        cr_expect_eq(dst_registry_count(reg_url, 77), 2, "2 attempts (retries=1), then the negative cache");
        cr_expect_eq(dst_registry_count(reg_url, 78), 1);
        cr_expect_eq(dst_registry_count(reg_url, 79), 0, "not asked while the registry is marked down");
        cr_expect_eq(dst_registry_count(reg_url, 1) + dst_registry_count(reg_url, 2) + dst_registry_count(reg_url, 3),
                     0, "local ids never asked for");

        /* the dead-letter topic, read by kcat: each bad message once, with its reason */
        char *kc[] = {"kcat", "-b", servers, "-C", "-t", "customs.declarations.dlq", "-o", "beginning", "-e", "-q",
                      "-f", "%K\t%k\t%h\n", NULL};
        cr_assert_eq(ds_run(kc, epath("dlq.txt"), epath("kcat.err"), 60000), 0);
        char *dlq = ds_slurp(epath("dlq.txt"), NULL);
        cr_assert_not_null(dlq);
        int lines = 0;
        for (char *line = strtok(dlq, "\n"); line; line = strtok(NULL, "\n")) {
                lines++;
                char *tab = strchr(line, '\t'), *key = tab + 1, *tab2 = strchr(key, '\t');
                cr_assert(tab && tab2, "%s", line);
                *tab2 = '\0';
                int null_key = !strncmp(line, "-1\t", 3);
                const char *code = strstr(tab2 + 1, "ds.error.code=");
                cr_assert_not_null(code, "%s", tab2 + 1);
                if (!strcmp(key, forged_key))
                        cr_expect(strstr(tab2 + 1, "x-trace-id=4bf92f3577b34da6") &&
                                      strstr(tab2 + 1, "ds.error.code=forged"),
                                  "original headers kept: %s", tab2 + 1);
                code += strlen("ds.error.code=");
                /* the original (forged) header is kept first: take the last one */
                for (const char *c2 = strstr(code, "ds.error.code="); c2; c2 = strstr(c2 + 1, "ds.error.code="))
                        code = c2 + strlen("ds.error.code=");
                int found = 0;
                for (int i = 0; i < n; i++) {
                        if (null_key ? exp[i].key[0] != '\0' : strcmp(exp[i].key, key))
                                continue;
                        found = 1;
                        cr_expect_neq(exp[i].reason, DS_DLQ_NONE, "good message %s was dead-lettered", key);
                        const char *want = ds_dlq_code(exp[i].reason);
                        cr_expect(!strncmp(code, want, strlen(want)), "key %s: got %.30s, want %s", key, code, want);
                        exp[i].key[0] = 1; /* seen */
                }
                cr_expect(found, "unexpected dead letter for key '%s'", key);
        }
        cr_expect_eq(lines, n - good);
        free(dlq);
        free(log);
        json_decref(spec);
        free(spec_text);
        free(deep);
        free(rec);
        free(v2);
#undef GOOD
#undef BAD
#undef BADH
}

/* VmRSS of a process in KiB, -1 if unknown. */
static long rss_kib(pid_t pid) {
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        FILE *f = fopen(path, "r");
        if (!f)
                return -1;
        long kib = -1;
        while (fgets(line, sizeof(line), f))
                if (!strncmp(line, "VmRSS:", 6))
                        kib = atol(line + 6);
        fclose(f);
        return kib;
}

static char *slurp_log(const char *path) {
        char *s = ds_slurp(path, NULL);
        return s ? s : strdup("");
}

/* In transactions mode main writes a cycle's dead letters itself, handing
 * each value and its headers to librdkafka (RD_KAFKA_MSG_F_FREE). When a
 * later one of the same cycle cannot be written - here a dead letter larger
 * than the producer's message.max.bytes - the processor stops without a
 * commit, and its shutdown must not free the ones already handed over (it
 * did: a double free, reported by AddressSanitizer in the ASan build). */
Test(hostile_e2e, a_dead_letter_it_cannot_write_stops_the_processor_without_a_double_free, .init = e2e_setup) {
        rd_kafka_t *p = producer();
        ds_buf_t b = {0};
        ds_decl_t d;
        char key[32];
        /* a small bad message, then one of ~300 KB: a valid record, then bytes */
        for (int i = 0; i < 2; i++) {
                dst_sample(&d, 500 + i);
                dst_framed(&b, &d, 1, 1);
                size_t junk = i ? 300000 : 16;
                ds_buf_reserve(&b, junk);
                fill_random(b.p + b.len, junk);
                b.len += junk;
                snprintf(key, sizeof(key), "%.*s", (int)d.declaration_id.len, d.declaration_id.p);
                produce(p, key, b.p, b.len, 1);
        }
        cr_assert_eq(rd_kafka_flush(p, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
        cr_assert_eq(delivery_failures, 0);
        rd_kafka_destroy(p);
        ds_buf_free(&b);

        char *run[] = {DS_BINARY, "run", "-b", servers, "--exit.on.eof", "true", "--exactly.once.mode", "transactions",
                       "--instance.id", "hostile-1", "-X", "session.timeout.ms=6000", "-X", "message.max.bytes=200000",
                       "--http.listen", "off", NULL};
        int rc = ds_run(run, NULL, epath("run.err"), 120000);
        char *log = ds_slurp(epath("run.err"), NULL);
        cr_assert_not_null(log);
        cr_expect_null(strstr(log, "AddressSanitizer"), "%s", log);
        cr_expect_eq(rc, 1, "run exited with %d (see %s)", rc, epath("run.err"));
        cr_expect(strstr(log, "cannot write to the dead-letter topic"), "%s", log);
        cr_expect_eq(ds_log_counter(log, "summary", "dead_lettered"), 2);
        free(log);
}

Test(hostile_e2e, a_flood_of_bad_messages_neither_exhausts_memory_nor_stops_the_processor, .init = flood_setup) {
        int seconds = UNDER_ASAN ? 10 : 60;
        if (getenv("DS_FLOOD_SECONDS"))
                seconds = atoi(getenv("DS_FLOOD_SECONDS"));
        char dur[16];
        snprintf(dur, sizeof(dur), "%d", seconds);
        ds_proc_t proc, gen;
        char *run[] = {DS_BINARY, "run", "-b", servers, "--commit.interval.ms", "500", "--stats.interval.ms", "1000",
                       "-X", "session.timeout.ms=6000", NULL};
        if (UNDER_ASAN) {
                /* ASan holds freed memory in a 256 MB quarantine, which would
                 * read as growth: keep it small for the processor */
                char opts[512];
                snprintf(opts, sizeof(opts), "%s:quarantine_size_mb=16:thread_local_quarantine_size_kb=256",
                         getenv("ASAN_OPTIONS") ? getenv("ASAN_OPTIONS") : "");
                setenv("ASAN_OPTIONS", opts, 1);
        }
        cr_assert_eq(ds_proc_start(&proc, run, NULL, epath("run.err")), 0);
        /* wait for the group to form (the embedded broker's first join takes ~3 s) */
        for (int i = 0; i < 300; i++) {
                char *log = slurp_log(epath("run.err"));
                int ready = strstr(log, "partition assigned") != NULL;
                free(log);
                if (ready)
                        break;
                cr_assert_eq(ds_proc_wait(&proc, 100), -1, "run exited early (see %s)", epath("run.err"));
        }
        char *flood[] = {DS_BINARY, "gen", "-b", servers, "--rate", "20000", "--duration", dur, "--bad-rate", "1",
                         "--seed", "666", "-q", NULL};
        cr_assert_eq(ds_proc_start(&gen, flood, NULL, epath("flood.err")), 0);
        long rss[600];
        int nrss = 0;
        int64_t t0 = ds_mono_ms();
        while (ds_proc_wait(&gen, 1000) < 0 && nrss < 600) {
                rss[nrss++] = rss_kib(proc.pid);
                cr_assert_eq(ds_proc_wait(&proc, 0), -1, "the processor stopped during the flood (see %s)",
                             epath("run.err"));
        }
        cr_assert_eq(ds_proc_wait(&gen, 5000), 0, "gen failed (see %s)", epath("flood.err"));
        int64_t flood_ms = ds_mono_ms() - t0;

        /* good messages after the flood are applied */
        char *good[] = {DS_BINARY, "gen", "-b", servers, "--count", "2000", "--bad-rate", "0", "--amend-rate", "0",
                        "--cancel-rate", "0", "--dup-rate", "0", "--late-rate", "0", "--seed", "7", "-q", NULL};
        cr_assert_eq(ds_run(good, NULL, epath("good.err"), 60000), 0);
        long long applied = -1;
        for (int i = 0; i < 600 && applied < 2000; i++) {
                char *log = slurp_log(epath("run.err"));
                applied = ds_log_counter(log, "progress", "applied");
                free(log);
                if (applied < 2000)
                        cr_assert_eq(ds_proc_wait(&proc, 100), -1, "the processor stopped (see %s)", epath("run.err"));
        }
        long rss_end = rss_kib(proc.pid);
        ds_proc_kill(&proc, SIGTERM);
        cr_assert_eq(ds_proc_wait(&proc, 30000), 0, "run did not stop cleanly (see %s)", epath("run.err"));
        char *log = slurp_log(epath("run.err"));
        long long consumed = ds_log_counter(log, "summary", "consumed"),
                  dl = ds_log_counter(log, "summary", "dead_lettered");
        applied = ds_log_counter(log, "summary", "applied");
        free(log);

        /* memory: after warm-up (the first fifth), RSS does not keep growing */
        long first = 0, peak = 0, late_min = -1;
        int warm = nrss / 5;
        for (int i = 0; i < nrss; i++) {
                if (i == warm)
                        first = rss[i];
                if (rss[i] > peak)
                        peak = rss[i];
                if (i >= nrss - nrss / 5 && (late_min < 0 || rss[i] < late_min))
                        late_min = rss[i];
        }
        fprintf(stderr,
                "flood: %d s at 20000/s, %lld consumed, %lld dead-lettered, %lld applied; RSS KiB after warm-up %ld, "
                "peak %ld, last fifth min %ld, end %ld\n",
                (int)(flood_ms / 1000), consumed, dl, applied, first, peak, late_min, rss_end);
        cr_expect_eq(applied, 2000, "every good message after the flood applied");
        cr_expect_geq(dl, (long long)seconds * 20000 * 9 / 10, "the flood was consumed and dead-lettered");
        cr_expect_eq(consumed, applied + dl, "every message accounted for");
        cr_expect_lt(peak, (UNDER_ASAN ? 3L : 1L) << 20, "peak RSS %ld KiB", peak);
        cr_expect_lt(late_min - first, 128L << 10, "RSS grew from %ld to %ld KiB during the flood", first, late_min);
}
