/*
 * ds_validate.c - declaration rules and contribution building.
 *
 * Everything here runs once per message on ~21 strings (7 header fields, 4
 * per item), so it is written for few instructions per message rather than
 * for generality. Costs are x86-64 instructions per message, measured with
 * callgrind on bench_micro's corpus (3.5 items, Vietnamese descriptions):
 * ds_validate() went from ~2,240 to ~1,180, of which UTF-8 ~450 (was ~1,300)
 * with a state + byte table; the shift DFA below adds one instruction a byte
 * and takes less time.
 *
 * Free text (descriptions, plates such as 桂P12345) goes through a DFA of
 * Unicode table 3-7 (shortest form, no surrogates, at most U+10FFFF):
 *
 *   - A "shift DFA": one 64-bit row of the transition table per byte value,
 *     holding the next state of every state (each state is a 6-bit field's
 *     offset), so one step is st = row[b] >> st & 63. The load of row[b]
 *     does not depend on the state, so the loads of a word's 8 bytes go out
 *     together and only a shift and an AND follow one another from byte to
 *     byte (~2 cycles), where a table indexed by state + byte put a load's
 *     latency (~5 cycles) on that chain. It is one instruction a byte more
 *     (4, the state is copied to CL for the shift) than that table, and
 *     faster: validate 246 -> 232 ns a message, 8 alternating pairs
 *     (bench/HOTPATH.md, ninth round); instruction counts are not the
 *     measure here. No branch per byte or per character, whatever the mix
 *     of 1- to 4-byte sequences. ERROR is state 0 and no row leads out of
 *     it, so it absorbs; the string is valid when it ends in ACCEPT.
 *
 *   - Eight bytes are read at a time and an all-ASCII word costs one step
 *     instead of eight: from ACCEPT every ASCII byte stays in ACCEPT, from
 *     any other state the first goes to ERROR, which absorbs the rest. The
 *     last n % 8 bytes of a string of 8 or more are its last 8 bytes, loaded
 *     at once with the bytes already run shifted out and zeros (ASCII: no
 *     verdict changes) after them: eight steps, or one if all ASCII, where a
 *     switch's indirect jump mispredicted. A shorter string goes through a
 *     switch that falls through n steps.
 *
 *   Vietnamese has an accented letter every few bytes, usually in the first
 *   word: there is no separate scan for an ASCII prefix, the word test above
 *   is that scan. The old code left its word loop and re-entered it for
 *   every letter: ~240 instructions a description, now ~70.
 *
 * Code fields (gate, office, type, tax id, currency, unit, country) are ASCII
 * in practice. Their bytes are OR-ed together with overlapping loads (first
 * and last word, never past the end) and the result is tested once for a
 * byte >= 0x80; the id and the HS codes are parsed first, as digits are
 * ASCII, and only OR-ed in when they do not parse. A byte >= 0x80 in any code
 * field sends the whole declaration to all_utf8(), the exact check string by
 * string, so the accepted set is exactly UTF-8 and every reason is the one
 * the rules give in their order (ds_validate.h).
 *
 * Digits are checked and converted eight at a time (SWAR): a byte is a digit
 * when its high nibble is 3 and still 3 after adding 6; the value takes three
 * multiply-adds (digits to pairs, pairs to quads, quads to the number).
 *
 * The NUL test of the gate code uses the same overlapping loads, with the
 * exact has-a-zero-byte expression, instead of a call to memchr().
 *
 * ds_hash_bytes() is FNV-1a then fmix64, byte by byte as before - its values
 * are persisted in HyperLogLog sketches - only unrolled by four.
 *
 * The words are read little-endian (first byte = low byte): the build stops
 * on a big-endian target rather than give wrong answers.
 */
#include "ds_validate.h"
#include "ds_common.h"
#include "ds_domain.h"

#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ds_validate.c reads strings as little-endian words"
#endif

static const uint32_t heading_div[9] = {0, 0, 1000000, 0, 10000, 0, 100, 0, 1};

#define HIGH8 0x8080808080808080ULL /* bit 7 of every byte */

static inline uint64_t ld64(const uint8_t *s) {
        uint64_t w;
        memcpy(&w, s, 8); /* unaligned load */
        return w;
}

static inline uint16_t ld16(const uint8_t *s) {
        uint16_t w;
        memcpy(&w, s, 2);
        return w;
}

static inline uint32_t ld32(const uint8_t *s) {
        uint32_t w;
        memcpy(&w, s, 4);
        return w;
}

/* ---- hash ------------------------------------------------------------------ */

#define FNV_STEP(h, b) (((h) ^ (b)) * 0x100000001b3ULL)

static inline uint64_t hash_bytes(const void *p, size_t len) {
        const uint8_t *s = p;
        uint64_t h = 0xcbf29ce484222325ULL;
        size_t i = 0;
        for (; len - i >= 4; i += 4) {
                h = FNV_STEP(h, s[i]);
                h = FNV_STEP(h, s[i + 1]);
                h = FNV_STEP(h, s[i + 2]);
                h = FNV_STEP(h, s[i + 3]);
        }
        /* clang-format off */
        switch (len - i) {
        case 3: h = FNV_STEP(h, s[len - 3]); /* fallthrough */
        case 2: h = FNV_STEP(h, s[len - 2]); /* fallthrough */
        case 1: h = FNV_STEP(h, s[len - 1]);
        }
        /* clang-format on */
        return ds_mix64(h ^ len);
}

uint64_t ds_hash_bytes(const void *p, size_t len) {
        return hash_bytes(p, len);
}

/* ---- UTF-8 ------------------------------------------------------------------ */

/* The states of the DFA, each a bit offset into a 64-bit row of the
 * transition table: row[b] holds, at bits [st, st + 6), the state that byte b
 * leads to from state st, so one step is st = row[b] >> st & 63. T1..T3
 * expect that many more continuation bytes (80..BF); E0, ED, F0, F4 are the
 * lead bytes whose second byte has a narrower range (no overlongs, no
 * surrogates, nothing above U+10FFFF). ERROR is 0 and no row names a
 * state at bits [0, 6): it absorbs. */
enum { U8_ERROR = 0, U8_ACCEPT = 6, U8_T1 = 12, U8_T2 = 18, U8_T3 = 24, U8_E0 = 30, U8_ED = 36, U8_F0 = 42, U8_F4 = 48 };

#define U8_GO(from, to) ((uint64_t)(to) << (from))
/* what a continuation byte does from T1, T2, T3 (the same for 80..BF) */
#define U8_CONT U8_GO(U8_T1, U8_ACCEPT) | U8_GO(U8_T2, U8_T1) | U8_GO(U8_T3, U8_T2)

/* Table 3-7 of the Unicode standard; a byte not listed leads to ERROR from
 * every state (C0, C1: overlong; F5..FF: above U+10FFFF). */
/* clang-format off */
static const uint64_t u8_row[256] = {
    [0x00 ... 0x7F] = U8_GO(U8_ACCEPT, U8_ACCEPT),
    [0x80 ... 0x8F] = U8_CONT | U8_GO(U8_ED, U8_T1) | U8_GO(U8_F4, U8_T2),
    [0x90 ... 0x9F] = U8_CONT | U8_GO(U8_ED, U8_T1) | U8_GO(U8_F0, U8_T2),
    [0xA0 ... 0xBF] = U8_CONT | U8_GO(U8_E0, U8_T1) | U8_GO(U8_F0, U8_T2),
    [0xC2 ... 0xDF] = U8_GO(U8_ACCEPT, U8_T1),
    [0xE0]          = U8_GO(U8_ACCEPT, U8_E0),
    [0xE1 ... 0xEC] = U8_GO(U8_ACCEPT, U8_T2),
    [0xED]          = U8_GO(U8_ACCEPT, U8_ED),
    [0xEE ... 0xEF] = U8_GO(U8_ACCEPT, U8_T2),
    [0xF0]          = U8_GO(U8_ACCEPT, U8_F0),
    [0xF1 ... 0xF3] = U8_GO(U8_ACCEPT, U8_T3),
    [0xF4]          = U8_GO(U8_ACCEPT, U8_F4),
};
/* clang-format on */

#define U8_STEP(st, b) (st = (uint32_t)(u8_row[(b)] >> (st)) & 63)

/* Runs the DFA over s[0..n) from ACCEPT: 1 when it ends in ACCEPT. */
static int utf8_dfa(const uint8_t *s, size_t n) {
        uint32_t st = U8_ACCEPT;
        const int long_string = n >= 8;
        for (; n >= 8; s += 8, n -= 8) {
                if (!(ld64(s) & HIGH8)) {
                        U8_STEP(st, 0); /* 8 ASCII bytes: one step (see the header) */
                        continue;
                }
                U8_STEP(st, s[0]);
                U8_STEP(st, s[1]);
                U8_STEP(st, s[2]);
                U8_STEP(st, s[3]);
                U8_STEP(st, s[4]);
                U8_STEP(st, s[5]);
                U8_STEP(st, s[6]);
                U8_STEP(st, s[7]);
        }
        if (n && long_string) {
                /* The last n < 8 bytes of a string of 8 or more, without the
                 * switch below (an indirect jump the predictor missed ~5
                 * times a declaration; bench/HOTPATH.md, seventeenth round):
                 * the string's last 8 bytes in one load (never past its
                 * end), the 8 - n already run shifted out and zeros in their
                 * place after the tail. A zero is ASCII, which leaves ACCEPT
                 * and ERROR as they are and turns a sequence left unfinished
                 * into ERROR: the padding changes no verdict. */
                uint64_t w = ld64(s + n - 8) >> (8 * (8 - n));
                if (!(w & HIGH8)) {
                        U8_STEP(st, 0);
                } else {
                        U8_STEP(st, w & 0xff);
                        U8_STEP(st, w >> 8 & 0xff);
                        U8_STEP(st, w >> 16 & 0xff);
                        U8_STEP(st, w >> 24 & 0xff);
                        U8_STEP(st, w >> 32 & 0xff);
                        U8_STEP(st, w >> 40 & 0xff);
                        U8_STEP(st, w >> 48 & 0xff);
                        U8_STEP(st, w >> 56);
                }
                return st == U8_ACCEPT;
        }
        /* clang-format off */
        switch (n) { /* the last n < 8 bytes (s may be NULL when n is 0) */
        case 7: U8_STEP(st, s[n - 7]); /* fallthrough */
        case 6: U8_STEP(st, s[n - 6]); /* fallthrough */
        case 5: U8_STEP(st, s[n - 5]); /* fallthrough */
        case 4: U8_STEP(st, s[n - 4]); /* fallthrough */
        case 3: U8_STEP(st, s[n - 3]); /* fallthrough */
        case 2: U8_STEP(st, s[n - 2]); /* fallthrough */
        case 1: U8_STEP(st, s[n - 1]);
        }
        /* clang-format on */
        return st == U8_ACCEPT;
}

int ds_utf8_valid(const char *str, size_t n) {
        return utf8_dfa((const uint8_t *)str, n);
}

/* The bytes of s[0..n) OR-ed into one word, positions aside: bit 7 of some
 * byte is set when the string is not all ASCII. Overlapping loads (the first
 * and the last 2, 4 or 8 bytes; whole words between), never past s + n. */
static inline uint64_t or_bytes(const uint8_t *s, size_t n) {
        if (n < 4) {
                if (n >= 2)
                        return ld16(s) | ld16(s + n - 2);
                return n ? s[0] : 0;
        }
        if (n <= 8)
                return ld32(s) | ld32(s + n - 4);
        uint64_t acc = ld64(s + n - 8);
        for (size_t i = 0; i + 8 < n; i += 8)
                acc |= ld64(s + i);
        return acc;
}

static inline uint64_t or_str(ds_str_t s) {
        return or_bytes((const uint8_t *)s.p, s.len);
}

/* Free text (descriptions, plates such as 桂P12345): the DFA. */
static inline int text_ok(ds_str_t s) {
        return utf8_dfa((const uint8_t *)s.p, s.len);
}

/* Every string of the declaration is UTF-8 (the null plate and an absent
 * invoice_currency have p == NULL, len == 0), string by string: the exact
 * answer when ds_validate()'s one test over the code fields saw a byte >= 0x80. */
static int all_utf8(const ds_decl_t *d) {
        const ds_str_t *f[] = {&d->declaration_id,   &d->gate_code,     &d->customs_office,  &d->type_code,
                               &d->declarant_tax_id, &d->vehicle_plate, &d->invoice_currency};
        for (size_t i = 0; i < DS_ARRAY_LEN(f); i++)
                if (!ds_utf8_valid(f[i]->p, f[i]->len))
                        return 0;
        uint32_t n = d->item_cnt < DS_MAX_ITEMS ? d->item_cnt : DS_MAX_ITEMS;
        for (uint32_t i = 0; i < n; i++) {
                const ds_item_t *it = &d->items[i];
                if (!ds_utf8_valid(it->hs_code.p, it->hs_code.len) ||
                    !ds_utf8_valid(it->description.p, it->description.len) ||
                    !ds_utf8_valid(it->unit.p, it->unit.len) ||
                    !ds_utf8_valid(it->origin_country.p, it->origin_country.len))
                        return 0;
        }
        return 1;
}

/* Whether s[0..n) holds a NUL byte: the loads of or_bytes(), each tested
 * with the exact "has a zero byte" expression (w - 0x01..) & ~w & 0x80.. */
static inline int has_nul(const uint8_t *s, size_t n) {
        if (n < 4)
                return n && !(s[0] && s[n >> 1] && s[n - 1]);
        if (n <= 8) {
                uint32_t a = ld32(s), b = ld32(s + n - 4);
                return !!((((a - 0x01010101u) & ~a) | ((b - 0x01010101u) & ~b)) & 0x80808080u);
        }
        if (n <= 16) {
                uint64_t a = ld64(s), b = ld64(s + n - 8);
                return !!((((a - 0x0101010101010101ULL) & ~a) | ((b - 0x0101010101010101ULL) & ~b)) & HIGH8);
        }
        return memchr(s, 0, n) != NULL;
}

/* ---- digits ----------------------------------------------------------------- */

/* 1 when the 8 bytes of w are all '0'..'9': high nibble 3, and still 3 after
 * adding 6 (so at most '9'). Adding 6 carries into the next byte only from a
 * byte >= 0xFA, which fails its own high-nibble test anyway. */
static inline int digits8(uint64_t w) {
        const uint64_t hi = 0xF0F0F0F0F0F0F0F0ULL;
        return ((w & hi) | (((w + 0x0606060606060606ULL) & hi) >> 4)) == 0x3333333333333333ULL;
}

/* The value of 8 digits, the first one in the low byte (most significant). */
static inline uint32_t value8(uint64_t w) {
        w -= 0x3030303030303030ULL;
        w = w * 10 + (w >> 8);                                          /* pairs, in bytes 0, 2, 4, 6 */
        w = ((w & 0x000000FF000000FFULL) * (100 + (1000000ULL << 32)) + /* pairs into the high half */
             ((w >> 16) & 0x000000FF000000FFULL) * (1 + (10000ULL << 32))) >>
            32;
        return (uint32_t)w;
}

/* declaration_id: exactly 12 digits (the length is checked by the caller);
 * -1 if any byte is not a digit. The last 4 are read as "0000dddd". */
static inline int64_t parse_id12(const char *p) {
        uint64_t a = ld64((const uint8_t *)p);
        uint64_t b = (uint64_t)ld32((const uint8_t *)p + 8) << 32 | 0x30303030u;
        if (DS_UNLIKELY(!(digits8(a) & digits8(b))))
                return -1;
        return (int64_t)value8(a) * 10000 + value8(b);
}

/* An HS code: exactly 8 digits; -1 if any byte is not a digit. */
static inline int64_t parse_hs8(const char *p) {
        uint64_t w = ld64((const uint8_t *)p);
        if (DS_UNLIKELY(!digits8(w)))
                return -1;
        return value8(w);
}

/* ---- the rules ------------------------------------------------------------ */

ds_dlq_reason_t ds_validate(const ds_decl_t *d, int heading_digits, ds_contrib_t *out) {
        /* UTF-8 first (ds_validate.h), with one test for all the code fields:
         * their bytes are OR-ed together and the result tested once for a byte
         * >= 0x80. The id and the HS codes are parsed here already: digits are
         * ASCII, so they are OR-ed in only when they do not parse. Free text is
         * checked exactly by text_ok(); a code field with a byte >= 0x80 (rare:
         * then it may well be valid) is decided exactly by all_utf8(). */
        uint32_t nitems = d->item_cnt < DS_MAX_ITEMS ? d->item_cnt : DS_MAX_ITEMS;
        int64_t id = d->declaration_id.len == 12 ? parse_id12(d->declaration_id.p) : -1;
        int32_t hs[DS_MAX_ITEMS]; /* each item's HS code, -1 if not 8 digits */
        uint64_t high = or_str(d->gate_code) | or_str(d->customs_office) | or_str(d->type_code) |
                        or_str(d->declarant_tax_id) | or_str(d->invoice_currency);
        if (id < 0)
                high |= or_str(d->declaration_id);
        if (DS_UNLIKELY(!text_ok(d->vehicle_plate)))
                return DS_DLQ_INVALID_UTF8;
        for (uint32_t i = 0; i < nitems; i++) {
                const ds_item_t *it = &d->items[i];
                hs[i] = it->hs_code.len == 8 ? (int32_t)parse_hs8(it->hs_code.p) : -1;
                if (hs[i] < 0)
                        high |= or_str(it->hs_code);
                high |= or_str(it->unit) | or_str(it->origin_country);
                if (DS_UNLIKELY(!text_ok(it->description)))
                        return DS_DLQ_INVALID_UTF8;
        }
        if (DS_UNLIKELY((high & HIGH8) && !all_utf8(d)))
                return DS_DLQ_INVALID_UTF8;

        if (DS_UNLIKELY(id < 0)) /* not 12 bytes, or not all digits */
                return DS_DLQ_BAD_ID;
        if (DS_UNLIKELY(d->version < 0))
                return DS_DLQ_NEGATIVE_VERSION;
        /* the gate table pads codes with NULs, so "MONGCAI\0" would find
         * MONGCAI: a code holding a NUL is no gate's code */
        if (DS_UNLIKELY(has_nul((const uint8_t *)d->gate_code.p, d->gate_code.len)))
                return DS_DLQ_UNKNOWN_GATE;
        int gate = ds_gate_lookup(d->gate_code.p, d->gate_code.len);
        if (DS_UNLIKELY(gate < 0))
                return DS_DLQ_UNKNOWN_GATE;
        if (DS_UNLIKELY(d->item_cnt == 0))
                return DS_DLQ_NO_ITEMS;
        if (DS_UNLIKELY(d->item_cnt > DS_MAX_ITEMS))
                return DS_DLQ_TOO_MANY_ITEMS;

        uint32_t div = heading_div[heading_digits];
        out->nlines = 0;
        out->value = 0;
        out->weight = 0;
        for (uint32_t i = 0; i < d->item_cnt; i++) {
                const ds_item_t *it = &d->items[i];
                if (DS_UNLIKELY(hs[i] < 0)) /* not 8 bytes, or not all digits */
                        return DS_DLQ_BAD_HS_CODE;
                if (DS_UNLIKELY(it->gross_weight_g < 0))
                        return DS_DLQ_NEGATIVE_WEIGHT;
                if (DS_UNLIKELY(it->customs_value_usd_cents < 0))
                        return DS_DLQ_NEGATIVE_VALUE;
                if (DS_UNLIKELY(__builtin_add_overflow(out->value, it->customs_value_usd_cents, &out->value) ||
                                __builtin_add_overflow(out->weight, it->gross_weight_g, &out->weight)))
                        return DS_DLQ_OVERFLOW;
                uint32_t heading = (uint32_t)hs[i] / div;
                uint32_t l = 0;
                while (l < out->nlines && out->lines[l].heading != heading)
                        l++;
                if (l == out->nlines) {
                        out->lines[l] = (ds_line_t){heading, 0, 0, 0};
                        out->nlines++;
                }
                /* per-heading sums cannot overflow: they are bounded by the totals checked above */
                out->lines[l].items++;
                out->lines[l].value += it->customs_value_usd_cents;
                out->lines[l].weight += it->gross_weight_g;
        }
        out->id = (uint64_t)id;
        out->declared_at = d->declared_at;
        out->version = d->version;
        out->kind = d->kind;
        out->flow = d->flow;
        out->gate = (uint16_t)gate;
        out->items = d->item_cnt;
        out->declarant_hash = hash_bytes(d->declarant_tax_id.p, d->declarant_tax_id.len);
        out->vehicle_hash = d->vehicle_plate.p ? hash_bytes(d->vehicle_plate.p, d->vehicle_plate.len) : 0;
        return DS_DLQ_NONE;
}
