/*
 * test_validate.c - the rules of ds_validate() one at a time, their order, and
 * the contribution a valid declaration makes.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds_common.h"
#include "ds_decl.h"
#include "ds_domain.h"
#include "ds_reason.h"
#include "ds_validate.h"

static ds_decl_t d;
static ds_contrib_t c;

static ds_str_t S(const char *s) {
        return (ds_str_t){s, (uint32_t)strlen(s)};
}

static void item(uint32_t i, const char *hs, int64_t value, int64_t weight) {
        d.items[i] = (ds_item_t){.hs_code = S(hs), .description = S("Thanh long tươi"), .unit = S("kg"),
                                 .origin_country = S("VN"), .quantity = 10.5, .gross_weight_g = weight,
                                 .customs_value_usd_cents = value};
        if (d.item_cnt < i + 1)
                d.item_cnt = i + 1;
}

/* A valid declaration at MONGCAI with four items over two 4-digit headings. */
static void good(void) {
        ds_domain_init();
        memset(&d, 0, sizeof(d));
        memset(&c, 0xa5, sizeof(c)); /* garbage: everything must be written */
        d.declaration_id = S("301234567890");
        d.version = 2;
        d.kind = DS_KIND_AMEND;
        d.declared_at = 1732345200123LL;
        d.gate_code = S("MONGCAI");
        d.customs_office = S("20BC");
        d.type_code = S("B11");
        d.flow = DS_FLOW_BORDER_RESIDENT;
        d.declarant_tax_id = S("5700123456");
        d.channel = DS_CHANNEL_GREEN;
        d.vehicle_plate = S("14C-123.45");
        item(0, "08104100", 100, 10);
        item(1, "84295200", 300, 30);
        item(2, "08109010", 200, 20);
        item(3, "08104100", 5, 1);
}

TestSuite(validate, .init = good);

static const ds_line_t *line_of(uint32_t heading) {
        const ds_line_t *found = NULL;
        for (uint32_t i = 0; i < c.nlines; i++)
                if (c.lines[i].heading == heading) {
                        cr_assert_null(found, "heading %u appears twice in the lines", heading);
                        found = &c.lines[i];
                }
        cr_assert_not_null(found, "heading %u missing from the lines", heading);
        return found;
}

Test(validate, good_declaration_passes_and_fills_the_contribution) {
        cr_assert_eq(ds_validate(&d, 4, &c), DS_DLQ_NONE);
        cr_assert_eq(c.id, 301234567890ULL);
        cr_assert_eq(c.declared_at, 1732345200123LL);
        cr_assert_eq(c.version, 2);
        cr_assert_eq(c.kind, DS_KIND_AMEND);
        cr_assert_eq(c.flow, DS_FLOW_BORDER_RESIDENT);
        int gate = ds_gate_lookup("MONGCAI", 7);
        cr_assert_geq(gate, 0);
        cr_assert_eq(c.gate, gate);
        cr_assert_str_eq(ds_gate(c.gate)->code, "MONGCAI");
        cr_assert_eq(c.items, 4);
        cr_assert_eq(c.value, 605);
        cr_assert_eq(c.weight, 61);
        cr_assert_eq(c.nlines, 2);
        const ds_line_t *l = line_of(810);
        cr_assert_eq(l->items, 3);
        cr_assert_eq(l->value, 305);
        cr_assert_eq(l->weight, 31);
        l = line_of(8429);
        cr_assert_eq(l->items, 1);
        cr_assert_eq(l->value, 300);
        cr_assert_eq(l->weight, 30);
        cr_assert_eq(c.declarant_hash, ds_hash_bytes("5700123456", 10));
        cr_assert_eq(c.vehicle_hash, ds_hash_bytes("14C-123.45", 10));
        cr_assert_neq(c.vehicle_hash, 0);
}

Test(validate, id_with_leading_zeros_is_parsed_as_an_integer) {
        d.declaration_id = S("000000000042");
        cr_assert_eq(ds_validate(&d, 4, &c), DS_DLQ_NONE);
        cr_assert_eq(c.id, 42);
        d.declaration_id = S("999999999999");
        cr_assert_eq(ds_validate(&d, 4, &c), DS_DLQ_NONE);
        cr_assert_eq(c.id, 999999999999ULL);
}

Test(validate, no_vehicle_gives_a_zero_vehicle_hash) {
        d.vehicle_plate = (ds_str_t){NULL, 0};
        cr_assert_eq(ds_validate(&d, 4, &c), DS_DLQ_NONE);
        cr_assert_eq(c.vehicle_hash, 0);
}

Test(validate, every_gate_of_the_table_is_accepted) {
        for (int g = 0; g < ds_gate_count(); g++) {
                d.gate_code = S(ds_gate(g)->code);
                cr_assert_eq(ds_validate(&d, 4, &c), DS_DLQ_NONE, "%s", ds_gate(g)->code);
                cr_assert_eq(c.gate, g);
        }
}

Test(validate, heading_digits_2_4_6_8_cut_the_hs_code) {
        /* 08104100 and 08109010 share chapter 08 and heading 0810, not more */
        d.item_cnt = 0;
        item(0, "08104100", 100, 10);
        item(1, "08109010", 200, 20);
        const struct {
                int digits;
                uint32_t nlines, h0, h1;
        } cases[] = {{2, 1, 8, 8}, {4, 1, 810, 810}, {6, 2, 81041, 81090}, {8, 2, 8104100, 8109010}};
        for (size_t i = 0; i < DS_ARRAY_LEN(cases); i++) {
                cr_assert_eq(ds_validate(&d, cases[i].digits, &c), DS_DLQ_NONE);
                cr_assert_eq(c.nlines, cases[i].nlines, "%d digits", cases[i].digits);
                const ds_line_t *a = line_of(cases[i].h0), *b = line_of(cases[i].h1);
                if (cases[i].nlines == 1) {
                        cr_assert_eq(a->items, 2);
                        cr_assert_eq(a->value, 300);
                        cr_assert_eq(a->weight, 30);
                } else {
                        cr_assert_eq(a->items, 1);
                        cr_assert_eq(a->value, 100);
                        cr_assert_eq(b->items, 1);
                        cr_assert_eq(b->value, 200);
                        cr_assert_eq(b->weight, 20);
                }
        }
}

Test(validate, items_of_one_heading_merge_into_one_line) {
        /* 50 items over 7 headings: each heading is one line, with the sums */
        d.item_cnt = 0;
        static const char *codes[] = {"08104100", "84295200", "08109010", "27011200", "44012200", "10063099",
                                      "72085100"};
        int64_t want_value[7] = {0}, want_items[7] = {0};
        for (uint32_t i = 0; i < DS_MAX_ITEMS; i++) {
                uint32_t k = (i * 5) % 7;
                item(i, codes[k], 1000 + i, i);
                want_value[k] += 1000 + i;
                want_items[k]++;
        }
        cr_assert_eq(ds_validate(&d, 4, &c), DS_DLQ_NONE);
        cr_assert_eq(c.items, 50);
        cr_assert_eq(c.nlines, 6); /* 08104100 and 08109010 are one heading */
        int64_t sum = 0;
        for (uint32_t i = 0; i < c.nlines; i++)
                sum += c.lines[i].value;
        cr_assert_eq(sum, c.value);
        const ds_line_t *l = line_of(810);
        cr_assert_eq(l->items, want_items[0] + want_items[2]);
        cr_assert_eq(l->value, want_value[0] + want_value[2]);
        l = line_of(7208);
        cr_assert_eq(l->items, want_items[6]);
        cr_assert_eq(l->value, want_value[6]);
}

Test(validate, value_sum_up_to_int64_max_is_fine) {
        d.item_cnt = 0;
        item(0, "08104100", INT64_MAX - 7, 0);
        item(1, "84295200", 7, INT64_MAX);
        cr_assert_eq(ds_validate(&d, 4, &c), DS_DLQ_NONE);
        cr_assert_eq(c.value, INT64_MAX);
        cr_assert_eq(c.weight, INT64_MAX);
}

/* ---- each rule alone ---------------------------------------------------- */

#define expect_reason(r) cr_assert_eq(ds_validate(&d, 4, &c), r, "want %s, got %s", ds_dlq_code(r), \
                                      ds_dlq_code(ds_validate(&d, 4, &c)))

Test(validate, id_of_eleven_digits_is_a_bad_id) {
        d.declaration_id = S("30123456789");
        expect_reason(DS_DLQ_BAD_ID);
}

Test(validate, id_of_thirteen_digits_is_a_bad_id) {
        d.declaration_id = S("3012345678901");
        expect_reason(DS_DLQ_BAD_ID);
}

Test(validate, id_with_a_letter_is_a_bad_id) {
        for (int pos = 0; pos < 12; pos++) {
                char id[13] = "301234567890";
                id[pos] = 'X';
                d.declaration_id = S(id);
                expect_reason(DS_DLQ_BAD_ID);
        }
        char id[13] = "30123456789/"; /* '0' - 1 */
        d.declaration_id = S(id);
        expect_reason(DS_DLQ_BAD_ID);
        id[11] = ':'; /* '9' + 1 */
        expect_reason(DS_DLQ_BAD_ID);
        d.declaration_id = S("30123456789 ");
        expect_reason(DS_DLQ_BAD_ID);
        d.declaration_id = S("");
        expect_reason(DS_DLQ_BAD_ID);
}

Test(validate, negative_version_is_rejected) {
        d.version = -1;
        expect_reason(DS_DLQ_NEGATIVE_VERSION);
        d.version = INT32_MIN;
        expect_reason(DS_DLQ_NEGATIVE_VERSION);
        d.version = 0;
        expect_reason(DS_DLQ_NONE);
}

Test(validate, unknown_gate_is_rejected) {
        d.gate_code = S("DONGHUNG");
        expect_reason(DS_DLQ_UNKNOWN_GATE);
        d.gate_code = S("");
        expect_reason(DS_DLQ_UNKNOWN_GATE);
        d.gate_code = S("MONGCAIMONGCAIMONGCAI");
        expect_reason(DS_DLQ_UNKNOWN_GATE);
}

Test(validate, a_gate_added_by_a_gates_file_is_valid_once_loaded) {
        d.gate_code = S("TRALINH");
        expect_reason(DS_DLQ_UNKNOWN_GATE);
        char path[] = "/tmp/ds-test-gates-XXXXXX", err[512] = "";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        const char text[] = "gate_code,province\nNAMGIANG,Cao Bằng\nTRALINH,Cao Bằng\n";
        cr_assert_eq(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
        close(fd);
        cr_assert_eq(ds_domain_add_gates_file(path, err, sizeof(err)), 2, "%s", err);
        unlink(path);
        expect_reason(DS_DLQ_NONE);
        cr_assert_eq(c.gate, ds_gate_builtin_count() + 1);
        d.gate_code = S("MONGCAI");
        expect_reason(DS_DLQ_NONE);
        cr_assert_eq(c.gate, 0);
        d.gate_code = S("DONGHUNG");
        expect_reason(DS_DLQ_UNKNOWN_GATE);
}

Test(validate, lowercase_gate_is_unknown) {
        d.gate_code = S("mongcai");
        expect_reason(DS_DLQ_UNKNOWN_GATE);
        d.gate_code = S("MongCai");
        expect_reason(DS_DLQ_UNKNOWN_GATE);
}

Test(validate, gate_with_a_nul_byte_inside_is_unknown) {
        d.gate_code = (ds_str_t){"MONG\0CAI", 8};
        expect_reason(DS_DLQ_UNKNOWN_GATE);
        d.gate_code = (ds_str_t){"\0MONGCAI", 8};
        expect_reason(DS_DLQ_UNKNOWN_GATE);
}

/* Regression: ds_gate_lookup() packs codes zero-padded into two words, so
 * "MONGCAI\0" (8 bytes) packs exactly like "MONGCAI"; validation must not
 * take it for that gate. */
Test(validate, gate_with_trailing_nul_bytes_is_unknown) {
        d.gate_code = (ds_str_t){"MONGCAI\0", 8};
        cr_expect_eq(ds_validate(&d, 4, &c), DS_DLQ_UNKNOWN_GATE, "\"MONGCAI\\0\" accepted as a gate (got %s)",
                     ds_dlq_code(ds_validate(&d, 4, &c)));
        d.gate_code = (ds_str_t){"HUUNGHI\0\0\0\0\0\0\0\0\0", 16};
        cr_expect_eq(ds_validate(&d, 4, &c), DS_DLQ_UNKNOWN_GATE, "\"HUUNGHI\" + 9 NULs accepted as a gate");
}

Test(validate, no_items_is_rejected) {
        d.item_cnt = 0;
        expect_reason(DS_DLQ_NO_ITEMS);
}

Test(validate, hs_code_of_seven_digits_is_bad) {
        d.items[2].hs_code = S("0810901");
        expect_reason(DS_DLQ_BAD_HS_CODE);
        d.items[2].hs_code = S("081090100");
        expect_reason(DS_DLQ_BAD_HS_CODE);
        d.items[2].hs_code = S("");
        expect_reason(DS_DLQ_BAD_HS_CODE);
}

Test(validate, hs_code_with_a_letter_is_bad) {
        for (int pos = 0; pos < 8; pos++) {
                char hs[9] = "08109010";
                hs[pos] = pos % 2 ? 'A' : '.';
                d.items[3].hs_code = S(hs);
                expect_reason(DS_DLQ_BAD_HS_CODE);
        }
        d.items[3].hs_code = (ds_str_t){"0810\0" "010", 8};
        expect_reason(DS_DLQ_BAD_HS_CODE);
}

Test(validate, negative_weight_is_rejected) {
        d.items[1].gross_weight_g = -1;
        expect_reason(DS_DLQ_NEGATIVE_WEIGHT);
        d.items[1].gross_weight_g = INT64_MIN;
        expect_reason(DS_DLQ_NEGATIVE_WEIGHT);
        d.items[1].gross_weight_g = 0;
        expect_reason(DS_DLQ_NONE);
}

Test(validate, negative_value_is_rejected) {
        d.items[3].customs_value_usd_cents = -1;
        expect_reason(DS_DLQ_NEGATIVE_VALUE);
        d.items[3].customs_value_usd_cents = 0;
        expect_reason(DS_DLQ_NONE);
}

Test(validate, value_sum_overflowing_int64_is_an_overflow) {
        d.item_cnt = 0;
        item(0, "08104100", INT64_MAX / 2 + 1, 1);
        item(1, "08104100", INT64_MAX / 2 + 1, 1);
        expect_reason(DS_DLQ_OVERFLOW);
        /* three items that overflow only together */
        d.item_cnt = 0;
        item(0, "08104100", INT64_MAX / 3 + 1, 1);
        item(1, "84295200", INT64_MAX / 3 + 1, 1);
        item(2, "27011200", INT64_MAX / 3 + 1, 1);
        expect_reason(DS_DLQ_OVERFLOW);
}

Test(validate, weight_sum_overflowing_int64_is_an_overflow) {
        d.item_cnt = 0;
        item(0, "08104100", 1, INT64_MAX);
        item(1, "84295200", 1, 1);
        expect_reason(DS_DLQ_OVERFLOW);
}

/* ---- order ---------------------------------------------------------------- */

/* The rules in the documented order, each with a way to break it (on item 0
 * for the per-item rules). */
enum { R_UTF8, R_ID, R_VERSION, R_GATE, R_ITEMS, R_HS, R_WEIGHT, R_VALUE, R_OVERFLOW, R__CNT };

static const ds_dlq_reason_t rule_reason[R__CNT] = {
    DS_DLQ_INVALID_UTF8, DS_DLQ_BAD_ID,       DS_DLQ_NEGATIVE_VERSION, DS_DLQ_UNKNOWN_GATE,   DS_DLQ_NO_ITEMS,
    DS_DLQ_BAD_HS_CODE,  DS_DLQ_NEGATIVE_WEIGHT,  DS_DLQ_NEGATIVE_VALUE, DS_DLQ_OVERFLOW,
};

static void break_rule(int r) {
        switch (r) {
        case R_UTF8: d.customs_office = S("20\xc3"); break; /* a 2-byte sequence cut short */
        case R_ID: d.declaration_id = S("30123456789X"); break;
        case R_VERSION: d.version = -3; break;
        case R_GATE: d.gate_code = S("DONGHUNG"); break;
        case R_ITEMS: d.item_cnt = 0; break;
        case R_HS: d.items[0].hs_code = S("0810410"); break;
        case R_WEIGHT: d.items[0].gross_weight_g = -5; break;
        case R_VALUE: d.items[0].customs_value_usd_cents = -5; break;
        case R_OVERFLOW: /* item 0 overflows with item 1's sum only if both are huge */
                if (d.item_cnt)
                        d.items[0].customs_value_usd_cents = INT64_MAX;
                if (d.item_cnt > 1)
                        d.items[1].customs_value_usd_cents = INT64_MAX;
                break;
        }
}

Test(validate, when_two_rules_are_broken_the_first_in_documented_order_wins) {
        int pairs = 0;
        for (int a = 0; a < R__CNT; a++)
                for (int b = a + 1; b < R__CNT; b++) {
                        good();
                        break_rule(b);
                        break_rule(a);
                        ds_dlq_reason_t got = ds_validate(&d, 4, &c);
                        ds_dlq_reason_t want = rule_reason[a];
                        cr_assert_eq(got, want, "rules %s and %s broken: got %s", ds_dlq_code(rule_reason[a]),
                                     ds_dlq_code(rule_reason[b]), ds_dlq_code(got));
                        pairs++;
                }
        cr_assert_eq(pairs, 36);
}

/* The item rules run in one pass, item by item (ds_validate.h): the first
 * item breaking any rule decides, and within an item the HS code comes
 * before its weight and value. */
Test(validate, item_rules_are_checked_item_by_item) {
        d.items[0].gross_weight_g = -5;
        d.items[2].hs_code = S("0810901X");
        ds_dlq_reason_t got = ds_validate(&d, 4, &c);
        cr_expect_eq(got, DS_DLQ_NEGATIVE_WEIGHT, "negative weight on item 0, bad hs on item 2: got %s",
                     ds_dlq_code(got));

        good();
        d.items[0].customs_value_usd_cents = INT64_MAX;
        d.items[1].customs_value_usd_cents = 1;
        d.items[2].hs_code = S("0810901");
        got = ds_validate(&d, 4, &c);
        cr_expect_eq(got, DS_DLQ_OVERFLOW, "overflow at item 1, bad hs on item 2: got %s", ds_dlq_code(got));

        good();
        d.items[1].gross_weight_g = -5;
        d.items[1].customs_value_usd_cents = -5;
        d.items[1].hs_code = S("0810901X");
        got = ds_validate(&d, 4, &c);
        cr_expect_eq(got, DS_DLQ_BAD_HS_CODE, "bad hs, weight and value on one item: got %s", ds_dlq_code(got));
}

/* ---- UTF-8 ------------------------------------------------------------------ */

Test(validate, invalid_utf8_in_any_string_field_is_rejected) {
        static const char bad[] = "ok\xff";
        ds_str_t *fields[] = {&d.declaration_id,   &d.gate_code,         &d.customs_office,        &d.type_code,
                              &d.declarant_tax_id, &d.vehicle_plate,     &d.invoice_currency,      &d.items[2].hs_code,
                              &d.items[2].description, &d.items[2].unit, &d.items[2].origin_country};
        for (size_t i = 0; i < DS_ARRAY_LEN(fields); i++) {
                good();
                *fields[i] = S(bad);
                ds_dlq_reason_t r = ds_validate(&d, 4, &c);
                cr_assert_eq(r, DS_DLQ_INVALID_UTF8, "field %zu: got %s", i, ds_dlq_code(r));
        }
}

/* Code fields are tested for a byte >= 0x80 all at once; one that has such
 * a byte and is valid UTF-8 must still pass (the exact check decides). */
Test(validate, valid_utf8_in_a_code_field_is_accepted) {
        ds_str_t *fields[] = {&d.customs_office, &d.type_code,       &d.declarant_tax_id, &d.invoice_currency,
                              &d.items[2].unit,  &d.items[2].origin_country};
        static const char *const text[] = {"Móng Cái", "Hữu Nghị", "桂P12345", "₫", "chiếc", "Trung Quốc 𝄞"};
        for (size_t i = 0; i < DS_ARRAY_LEN(fields); i++)
                for (size_t k = 0; k < DS_ARRAY_LEN(text); k++) {
                        good();
                        *fields[i] = S(text[k]);
                        ds_dlq_reason_t r = ds_validate(&d, 4, &c);
                        cr_assert_eq(r, DS_DLQ_NONE, "field %zu holding \"%s\": got %s", i, text[k], ds_dlq_code(r));
                }
}

Test(validate, utf8_is_checked_before_the_business_rules) {
        d.items[0].description = S("\xed\xa0\x80"); /* a surrogate */
        d.declaration_id = S("123");
        d.gate_code = S("NOWHERE");
        expect_reason(DS_DLQ_INVALID_UTF8);
        /* a broken byte in a gate code is an encoding problem, not an unknown gate */
        good();
        d.gate_code = S("MONGC\xc1\x81");
        expect_reason(DS_DLQ_INVALID_UTF8);
}

Test(validate, vietnamese_chinese_and_nul_text_is_valid) {
        d.items[0].description = S("Sầu riêng tươi, 桂P12345, 𝄞");
        d.customs_office = (ds_str_t){"20\0BC", 5};
        expect_reason(DS_DLQ_NONE);
        d.vehicle_plate = (ds_str_t){NULL, 0};
        expect_reason(DS_DLQ_NONE);
}

Test(validate, utf8_valid_follows_rfc_3629) {
        const struct {
                const char *s;
                size_t n;
                int ok;
        } cases[] = {
            {"", 0, 1},
            {"ASCII only, longer than eight bytes", 35, 1},
            {"\0\0\0", 3, 1},
            {"\xc2\x80", 2, 1},                 /* U+0080 */
            {"\xdf\xbf", 2, 1},                 /* U+07FF */
            {"\xe0\xa0\x80", 3, 1},             /* U+0800 */
            {"\xef\xbf\xbf", 3, 1},             /* U+FFFF */
            {"\xf0\x90\x80\x80", 4, 1},         /* U+10000 */
            {"\xf4\x8f\xbf\xbf", 4, 1},         /* U+10FFFF */
            {"\xe6\xa1\x82", 3, 1},             /* 桂 */
            {"\x80", 1, 0},                     /* lone continuation byte */
            {"\xbf", 1, 0},
            {"\xc0\xaf", 2, 0},                 /* overlong '/' */
            {"\xc1\xbf", 2, 0},                 /* overlong */
            {"\xe0\x80\xaf", 3, 0},             /* overlong */
            {"\xe0\x9f\xbf", 3, 0},             /* overlong U+07FF */
            {"\xf0\x8f\xbf\xbf", 4, 0},         /* overlong U+FFFF */
            {"\xed\xa0\x80", 3, 0},             /* surrogate U+D800 */
            {"\xed\xbf\xbf", 3, 0},             /* surrogate U+DFFF */
            {"\xf4\x90\x80\x80", 4, 0},         /* U+110000 */
            {"\xf5\x80\x80\x80", 4, 0},
            {"\xff", 1, 0},
            {"\xfe", 1, 0},
            {"\xc3", 1, 0},                     /* cut short */
            {"\xe6\xa1", 2, 0},
            {"\xf0\x90\x80", 3, 0},
            {"\xc3\x28", 2, 0},                 /* bad continuation */
            {"\xe6\x28\x82", 3, 0},
        };
        for (size_t i = 0; i < DS_ARRAY_LEN(cases); i++)
                cr_assert_eq(ds_utf8_valid(cases[i].s, cases[i].n), cases[i].ok, "case %zu", i);
}

Test(validate, utf8_valid_finds_a_bad_byte_at_any_offset_of_a_long_string) {
        /* the ASCII fast path reads 8 bytes at a time: a bad byte anywhere, and
         * a multi-byte character straddling the 8-byte boundaries */
        char buf[64];
        for (size_t pos = 0; pos < 40; pos++) {
                memset(buf, 'a', sizeof(buf));
                buf[pos] = (char)0xff;
                cr_assert_eq(ds_utf8_valid(buf, 48), 0, "bad byte at %zu", pos);
                cr_assert_eq(ds_utf8_valid(buf, pos), 1, "the %zu bytes before it", pos);
                memset(buf, 'a', sizeof(buf));
                memcpy(buf + pos, "\xe6\xa1\x82", 3);
                cr_assert_eq(ds_utf8_valid(buf, 48), 1, "桂 at %zu", pos);
                cr_assert_eq(ds_utf8_valid(buf, pos + 2), 0, "桂 cut short at %zu", pos);
        }
}

/* ---- UTF-8 against a reference ----------------------------------------------- */

/* RFC 3629 read literally: decode each sequence to its code point, then
 * reject a code point that needed fewer bytes (overlong), a surrogate, or one
 * above U+10FFFF. Slow and obviously right: ds_utf8_valid() (an ASCII word
 * path and a DFA) must give the same answer on every input. */
static int ref_utf8_valid(const uint8_t *s, size_t n) {
        size_t i = 0;
        while (i < n) {
                uint32_t cp = s[i], min;
                size_t len;
                if (cp < 0x80) {
                        i++;
                        continue;
                } else if ((cp & 0xE0) == 0xC0) {
                        len = 2, cp &= 0x1F, min = 0x80;
                } else if ((cp & 0xF0) == 0xE0) {
                        len = 3, cp &= 0x0F, min = 0x800;
                } else if ((cp & 0xF8) == 0xF0) {
                        len = 4, cp &= 0x07, min = 0x10000;
                } else {
                        return 0; /* a continuation byte, or F8..FF */
                }
                if (n - i < len)
                        return 0;
                for (size_t k = 1; k < len; k++) {
                        if ((s[i + k] & 0xC0) != 0x80)
                                return 0;
                        cp = cp << 6 | (s[i + k] & 0x3F);
                }
                if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                        return 0;
                i += len;
        }
        return 1;
}

/* The string under test is copied to the very end of a heap block, so that
 * AddressSanitizer (DS_SANITIZE builds) reports any read past its last byte. */
enum { UTF8_CAP = 256 };
static uint8_t *utf8_block;

static void utf8_block_init(void) {
        good();
        utf8_block = malloc(UTF8_CAP);
        cr_assert_not_null(utf8_block);
}

static void utf8_block_fini(void) {
        free(utf8_block);
}

/* ds_utf8_valid() and the reference agree on s[0..n); returns the answer. */
static int same_as_reference(const uint8_t *s, size_t n) {
        uint8_t *at = utf8_block + UTF8_CAP - n;
        memmove(at, s, n);
        int want = ref_utf8_valid(at, n), got = ds_utf8_valid((const char *)at, n);
        if (got != want) {
                char hex[3 * UTF8_CAP + 1] = "";
                for (size_t i = 0; i < n; i++)
                        sprintf(hex + 3 * i, "%02x ", at[i]);
                cr_assert_fail("ds_utf8_valid = %d, reference = %d, on %zu bytes: %s", got, want, n, hex);
        }
        return want;
}

Test(validate, utf8_valid_agrees_with_the_reference_on_every_1_2_and_3_byte_string, .init = utf8_block_init,
     .fini = utf8_block_fini) {
        uint8_t b[3];
        long valid = 0;
        for (unsigned x = 0; x < 256; x++) {
                b[0] = (uint8_t)x;
                valid += same_as_reference(b, 1);
                for (unsigned y = 0; y < 256; y++) {
                        b[1] = (uint8_t)y;
                        valid += same_as_reference(b, 2);
                        for (unsigned z = 0; z < 256; z++) {
                                b[2] = (uint8_t)z;
                                valid += same_as_reference(b, 3);
                        }
                }
        }
        /* 128 + (128^2 + 1920) + (128^3 + 2 * 128 * 1920 + 61440): the counts of
         * table 3-7 (1920 two-byte, 61440 three-byte code points) */
        cr_assert_eq(valid, 128L + (16384 + 1920) + (2097152 + 2 * 128 * 1920 + 61440));
}

/* Every 2-byte string between ASCII runs of 0 to 17 bytes before and 0, 1, 7
 * or 8 after: the sequence sits at every offset of the 8-byte words, and
 * before a short or a whole ASCII word. */
Test(validate, utf8_valid_agrees_with_the_reference_around_ascii_runs, .init = utf8_block_init,
     .fini = utf8_block_fini) {
        static const size_t after[] = {0, 1, 7, 8};
        uint8_t buf[32];
        for (size_t pre = 0; pre <= 17; pre++)
                for (size_t a = 0; a < DS_ARRAY_LEN(after); a++) {
                        memset(buf, 'x', sizeof(buf));
                        for (unsigned v = 0; v < 65536; v++) {
                                buf[pre] = (uint8_t)(v >> 8);
                                buf[pre + 1] = (uint8_t)v;
                                same_as_reference(buf, pre + 2 + after[a]);
                        }
                }
}

/* 4-byte strings: every first and second byte, the third and fourth from the
 * bytes where the ranges of table 3-7 start and end. */
Test(validate, utf8_valid_agrees_with_the_reference_on_4_byte_strings, .init = utf8_block_init,
     .fini = utf8_block_fini) {
        static const uint8_t edge[] = {0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
        uint8_t b[4];
        long valid = 0;
        for (unsigned x = 0; x < 256; x++)
                for (unsigned y = 0; y < 256; y++)
                        for (size_t i = 0; i < DS_ARRAY_LEN(edge); i++)
                                for (size_t j = 0; j < DS_ARRAY_LEN(edge); j++) {
                                        b[0] = (uint8_t)x, b[1] = (uint8_t)y, b[2] = edge[i], b[3] = edge[j];
                                        valid += same_as_reference(b, 4);
                                }
        cr_assert_gt(valid, 0);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rng(void) { /* splitmix64: fixed seed, the same strings every run */
        uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
}

/* Appends cp encoded as UTF-8 (surrogates and overlongs are the caller's
 * business: this encodes whatever it is given in the length it is told). */
static size_t put_cp(uint8_t *p, uint32_t cp, int len) {
        switch (len) {
        case 1:
                p[0] = (uint8_t)cp;
                break;
        case 2:
                p[0] = (uint8_t)(0xC0 | cp >> 6), p[1] = (uint8_t)(0x80 | (cp & 0x3F));
                break;
        case 3:
                p[0] = (uint8_t)(0xE0 | cp >> 12), p[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
                p[2] = (uint8_t)(0x80 | (cp & 0x3F));
                break;
        default:
                p[0] = (uint8_t)(0xF0 | (cp >> 18 & 0x07)), p[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
                p[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F)), p[3] = (uint8_t)(0x80 | (cp & 0x3F));
        }
        return (size_t)len;
}

/* A few million strings of up to ~100 bytes: ASCII runs of random length
 * between characters of every length (now and then a surrogate, an overlong
 * form or a code point above U+10FFFF), then maybe one mutation: a byte
 * replaced (by anything, or by a byte where a range of table 3-7 starts or
 * ends), or the string cut anywhere, often inside its last character. */
Test(validate, utf8_valid_agrees_with_the_reference_on_random_strings, .init = utf8_block_init,
     .fini = utf8_block_fini) {
        static const uint8_t edge[] = {0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1,
                                       0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF};
        uint8_t buf[UTF8_CAP];
        long valid = 0, runs = 3000000;
        for (long r = 0; r < runs; r++) {
                size_t n = 0, max = 1 + rng() % 100;
                while (n + 4 <= max) {
                        uint64_t x = rng();
                        switch (x % 8) {
                        case 0:
                        case 1: /* an ASCII run, 0 to 17 bytes */
                                for (size_t k = (x >> 8) % 18; k && n < max; k--)
                                        buf[n++] = (uint8_t)(0x20 + (x >> 16) % 95);
                                break;
                        case 2:
                                n += put_cp(buf + n, 0x80 + (uint32_t)(x >> 8) % 0x780, 2);
                                break;
                        case 3:
                        case 4:
                                n += put_cp(buf + n, 0x800 + (uint32_t)(x >> 8) % 0xF800, 3);
                                break;
                        case 5:
                                n += put_cp(buf + n, 0x10000 + (uint32_t)(x >> 8) % 0x100000, 4);
                                break;
                        case 6: /* Vietnamese: U+1EA0..U+1EF9, 3 bytes; or U+00C0..U+01B0, 2 bytes */
                                n += (x >> 8) & 1 ? put_cp(buf + n, 0x1EA0 + (uint32_t)(x >> 9) % 0x5A, 3)
                                                  : put_cp(buf + n, 0xC0 + (uint32_t)(x >> 9) % 0xF1, 2);
                                break;
                        default: /* rare: a code point encoded too long, a surrogate, > U+10FFFF */
                                if ((x >> 8) % 8)
                                        n += put_cp(buf + n, 0x20 + (uint32_t)(x >> 11) % 95, 1);
                                else
                                        n += put_cp(buf + n, (uint32_t)(x >> 11) % 0x140000, 2 + (int)(x >> 40) % 3);
                        }
                }
                uint64_t m = rng();
                if (n && m % 4 == 0)
                        buf[(m >> 8) % n] = (m >> 2) & 1 ? edge[(m >> 32) % DS_ARRAY_LEN(edge)] : (uint8_t)(m >> 40);
                else if (n && m % 4 == 1)
                        n -= 1 + (m >> 8) % (n < 4 ? n : 4); /* cut inside the last character, often */
                valid += same_as_reference(buf, n);
        }
        /* the generator must test both answers, plenty of each */
        cr_assert_gt(valid, runs / 5, "%ld valid of %ld", valid, runs);
        cr_assert_lt(valid, runs - runs / 5, "%ld valid of %ld", valid, runs);
}

/* ---- digits and gate codes, byte by byte ------------------------------------- */

/* Puts each byte value at each position of tmpl into *field and checks the
 * verdict: a digit passes (then ok() checks the parsed value), any other
 * ASCII byte gives not_digit, and a lone byte >= 0x80 is not UTF-8 at all. */
static void each_byte_at_each_position(ds_str_t *field, const char *tmpl, ds_dlq_reason_t not_digit, int digits,
                                       void (*ok)(const char *text)) {
        size_t n = strlen(tmpl);
        for (size_t pos = 0; pos < n; pos++)
                for (int b = 0; b < 256; b++) {
                        char text[16];
                        memcpy(text, tmpl, n + 1);
                        text[pos] = (char)b;
                        *field = (ds_str_t){text, (uint32_t)n};
                        ds_dlq_reason_t want = b >= 0x80              ? DS_DLQ_INVALID_UTF8
                                               : b >= '0' && b <= '9' ? DS_DLQ_NONE
                                                                      : not_digit;
                        ds_dlq_reason_t got = ds_validate(&d, digits, &c);
                        cr_assert_eq(got, want, "%s byte %zu = 0x%02x: got %s", tmpl, pos, b, ds_dlq_code(got));
                        if (want == DS_DLQ_NONE)
                                ok(text);
                }
        *field = (ds_str_t){tmpl, (uint32_t)n};
}

static void id_parsed(const char *id) {
        cr_assert_eq(c.id, strtoull(id, NULL, 10));
}

static void hs_parsed(const char *hs) {
        cr_assert_eq(line_of((uint32_t)strtoul(hs, NULL, 10))->items, 1, "%s", hs);
}

Test(validate, id_and_hs_code_accept_exactly_the_ascii_digits) {
        each_byte_at_each_position(&d.declaration_id, "301234567890", DS_DLQ_BAD_ID, 4, id_parsed);
        each_byte_at_each_position(&d.items[1].hs_code, "84295200", DS_DLQ_BAD_HS_CODE, 8, hs_parsed);
}

Test(validate, random_ids_and_hs_codes_parse_to_their_value) {
        for (int r = 0; r < 100000; r++) {
                char id[13], hs[9];
                uint64_t x = rng() % 1000000000000ULL, h = rng() % 100000000;
                snprintf(id, sizeof(id), "%012llu", (unsigned long long)x);
                snprintf(hs, sizeof(hs), "%08llu", (unsigned long long)h);
                d.declaration_id = (ds_str_t){id, 12};
                d.item_cnt = 0;
                item(0, hs, 1, 1);
                cr_assert_eq(ds_validate(&d, 8, &c), DS_DLQ_NONE);
                cr_assert_eq(c.id, x);
                cr_assert_eq(c.lines[0].heading, h);
        }
}

/* A gate code is packed zero-padded (ds_domain.c): each gate followed by 1 to
 * 20 NULs, and each gate with one byte turned NUL, is no gate. */
Test(validate, every_gate_with_a_nul_anywhere_is_unknown) {
        for (int g = 0; g < ds_gate_count(); g++) {
                char code[40];
                size_t len = strlen(ds_gate(g)->code);
                for (size_t pad = 1; pad <= 20; pad++) {
                        memset(code, 0, sizeof(code));
                        memcpy(code, ds_gate(g)->code, len);
                        d.gate_code = (ds_str_t){code, (uint32_t)(len + pad)};
                        cr_assert_eq(ds_validate(&d, 4, &c), DS_DLQ_UNKNOWN_GATE, "%s + %zu NULs", code, pad);
                }
                for (size_t pos = 0; pos < len; pos++) {
                        memcpy(code, ds_gate(g)->code, len);
                        code[pos] = 0;
                        d.gate_code = (ds_str_t){code, (uint32_t)len};
                        cr_assert_eq(ds_validate(&d, 4, &c), DS_DLQ_UNKNOWN_GATE, "%s, NUL at %zu", ds_gate(g)->code,
                                     pos);
                }
        }
}

/* ---- hash ---------------------------------------------------------------------- */

Test(validate, hash_of_bytes_depends_on_every_byte_and_the_length) {
        uint64_t h = ds_hash_bytes("5700123456", 10);
        cr_assert_eq(h, ds_hash_bytes("5700123456", 10));
        cr_assert_neq(h, ds_hash_bytes("5700123457", 10));
        cr_assert_neq(h, ds_hash_bytes("5700123456", 9));
        cr_assert_neq(ds_hash_bytes("", 0), ds_hash_bytes("\0", 1));
}

/* ds_hash_bytes() values live in persisted HyperLogLog sketches: it must stay
 * FNV-1a over the bytes, then fmix64 of the hash xor the length, bit for bit. */
static uint64_t ref_hash(const uint8_t *s, size_t n) {
        uint64_t h = 0xcbf29ce484222325ULL;
        for (size_t i = 0; i < n; i++)
                h = (h ^ s[i]) * 0x100000001b3ULL;
        return ds_mix64(h ^ n);
}

Test(validate, hash_of_bytes_keeps_its_persisted_values) {
        const struct {
                const char *s;
                uint64_t h;
        } pinned[] = {
                {"", 0xefd01f60ba992926ULL},
                {"5700123456", 0x116a10feda8d8f61ULL},
                {"0101234567-001", 0xd3beedb32f80b756ULL},
                {"14C-123.45", 0xdbee2bb1bc9d5532ULL},
                {"桂P12345", 0xe52954fa71363504ULL},
                {"abcdefghijklmnopqrstuvwxyz0123456789", 0xa5337fe3f8a57da3ULL},
        };
        for (size_t i = 0; i < DS_ARRAY_LEN(pinned); i++)
                cr_assert_eq(ds_hash_bytes(pinned[i].s, strlen(pinned[i].s)), pinned[i].h, "%s", pinned[i].s);
        uint8_t buf[80];
        for (int r = 0; r < 20000; r++) {
                size_t n = (size_t)r % sizeof(buf);
                for (size_t i = 0; i < n; i++)
                        buf[i] = (uint8_t)rng();
                cr_assert_eq(ds_hash_bytes(buf, n), ref_hash(buf, n), "length %zu", n);
        }
}
