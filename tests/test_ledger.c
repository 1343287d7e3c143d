/*
 * test_ledger.c - the ledger's rules one at a time, retention, growth and
 * memory, and a property test: random event streams through the ledger and
 * ds_agg_apply() give exactly the totals of a brute-force model.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ds_agg.h"
#include "ds_common.h"
#include "ds_ledger.h"
#include "ds_reason.h"
#include "ds_rows.h"

#define NO_HORIZON INT64_MIN
#define T0 1732327200000LL

static ds_ledger_t *l;
static ds_contrib_t old;
static ds_ledger_effect_t eff;

static void setup(void) {
        l = ds_ledger_new(16);
        cr_assert_not_null(l);
        memset(&old, 0, sizeof(old));
        eff = (ds_ledger_effect_t){.old = &old};
}

static void teardown(void) {
        ds_ledger_destroy(l);
}

TestSuite(ledger, .init = setup, .fini = teardown, .timeout = 120);

/* An event for id: kind, version, gate, and n lines with headings base, base+1... */
static ds_contrib_t ev(uint64_t id, ds_kind_t kind, int32_t version, uint16_t gate, int n, uint32_t base) {
        ds_contrib_t c;
        memset(&c, 0, sizeof(c));
        c.id = id;
        c.kind = (uint8_t)kind;
        c.version = version;
        c.gate = gate;
        c.flow = (uint8_t)(version % DS_FLOW__CNT);
        c.declared_at = T0 + version * 60000LL;
        c.nlines = (uint32_t)n;
        for (int i = 0; i < n; i++) {
                c.lines[i] = (ds_line_t){base + (uint32_t)i, (uint32_t)(i + 1), 1000 * (i + 1) + version,
                                         100 * (i + 1) + version};
                c.items += c.lines[i].items;
                c.value += c.lines[i].value;
                c.weight += c.lines[i].weight;
        }
        return c;
}

static int apply(const ds_contrib_t *c) {
        memset(&old, 0x5a, sizeof(old));
        eff.retract = eff.add = -1;
        return ds_ledger_apply(l, c, NO_HORIZON, &eff);
}

/* eff.old must be exactly what c contributed. */
static void assert_old_is(const ds_contrib_t *c) {
        cr_assert_eq(eff.retract, 1);
        cr_assert_eq(old.id, c->id);
        cr_assert_eq(old.gate, c->gate, "gate %u, want %u", old.gate, c->gate);
        cr_assert_eq(old.flow, c->flow);
        cr_assert_eq(old.declared_at, c->declared_at);
        cr_assert_eq(old.version, c->version);
        cr_assert_eq(old.nlines, c->nlines);
        cr_assert_eq(old.items, c->items);
        cr_assert_eq(old.value, c->value);
        cr_assert_eq(old.weight, c->weight);
        for (uint32_t i = 0; i < c->nlines; i++) {
                cr_assert_eq(old.lines[i].heading, c->lines[i].heading, "line %u", i);
                cr_assert_eq(old.lines[i].items, c->lines[i].items, "line %u", i);
                cr_assert_eq(old.lines[i].value, c->lines[i].value, "line %u", i);
                cr_assert_eq(old.lines[i].weight, c->lines[i].weight, "line %u", i);
        }
}

Test(ledger, new_declaration_is_added) {
        ds_contrib_t c = ev(42, DS_KIND_NEW, 0, 3, 2, 810);
        cr_assert_eq(apply(&c), DS_EV_APPLIED_NEW);
        cr_assert_eq(eff.add, 1);
        cr_assert_eq(eff.retract, 0);
        cr_assert_eq(ds_ledger_count(l), 1);
}

Test(ledger, duplicate_new_is_ignored_as_stale) {
        ds_contrib_t c = ev(42, DS_KIND_NEW, 0, 3, 2, 810);
        cr_assert_eq(apply(&c), DS_EV_APPLIED_NEW);
        cr_assert_eq(apply(&c), DS_EV_IGNORED_STALE);
        cr_assert_eq(eff.add, 0);
        cr_assert_eq(eff.retract, 0);
        cr_assert_eq(ds_ledger_count(l), 1);
}

Test(ledger, stale_amend_is_ignored) {
        ds_contrib_t c0 = ev(42, DS_KIND_NEW, 0, 3, 2, 810), c2 = ev(42, DS_KIND_AMEND, 2, 3, 1, 900),
                     c1 = ev(42, DS_KIND_AMEND, 1, 3, 3, 700);
        cr_assert_eq(apply(&c0), DS_EV_APPLIED_NEW);
        cr_assert_eq(apply(&c2), DS_EV_APPLIED_AMEND);
        cr_assert_eq(apply(&c1), DS_EV_IGNORED_STALE, "version 1 after version 2");
        cr_assert_eq(eff.add, 0);
        cr_assert_eq(eff.retract, 0);
        cr_assert_eq(apply(&c2), DS_EV_IGNORED_STALE, "version 2 redelivered");
        /* the applied version is still 2: a version 3 retracts version 2's lines */
        ds_contrib_t c3 = ev(42, DS_KIND_AMEND, 3, 3, 1, 910);
        cr_assert_eq(apply(&c3), DS_EV_APPLIED_AMEND);
        assert_old_is(&c2);
}

Test(ledger, amend_replaces_previous_contribution) {
        ds_contrib_t c0 = ev(7, DS_KIND_NEW, 0, 3, 3, 810), c1 = ev(7, DS_KIND_AMEND, 1, 3, 2, 2701);
        cr_assert_eq(apply(&c0), DS_EV_APPLIED_NEW);
        cr_assert_eq(apply(&c1), DS_EV_APPLIED_AMEND);
        cr_assert_eq(eff.add, 1);
        assert_old_is(&c0);
        /* and the next amendment retracts version 1, with its own line count */
        ds_contrib_t c2 = ev(7, DS_KIND_AMEND, 2, 3, 5, 100);
        cr_assert_eq(apply(&c2), DS_EV_APPLIED_AMEND);
        assert_old_is(&c1);
        ds_contrib_t c3 = ev(7, DS_KIND_AMEND, 3, 3, 5, 200); /* same number of lines */
        cr_assert_eq(apply(&c3), DS_EV_APPLIED_AMEND);
        assert_old_is(&c2);
        ds_contrib_t c4 = ev(7, DS_KIND_AMEND, 4, 3, 1, 300);
        cr_assert_eq(apply(&c4), DS_EV_APPLIED_AMEND);
        assert_old_is(&c3);
        cr_assert_eq(ds_ledger_count(l), 1);
}

Test(ledger, amend_moving_to_another_gate_retracts_from_the_old_gate) {
        ds_contrib_t c0 = ev(9, DS_KIND_NEW, 0, 2, 1, 810), c1 = ev(9, DS_KIND_AMEND, 1, 11, 1, 810);
        c0.flow = DS_FLOW_BORDER_RESIDENT;
        cr_assert_eq(apply(&c0), DS_EV_APPLIED_NEW);
        cr_assert_eq(apply(&c1), DS_EV_APPLIED_AMEND);
        assert_old_is(&c0);
        cr_assert_eq(old.gate, 2);
        cr_assert_eq(old.flow, DS_FLOW_BORDER_RESIDENT);
        ds_contrib_t c2 = ev(9, DS_KIND_AMEND, 2, 5, 1, 810);
        cr_assert_eq(apply(&c2), DS_EV_APPLIED_AMEND);
        cr_assert_eq(old.gate, 11);
}

Test(ledger, cancel_retracts_the_applied_version) {
        ds_contrib_t c0 = ev(5, DS_KIND_NEW, 0, 3, 2, 810), c1 = ev(5, DS_KIND_AMEND, 1, 4, 3, 8429),
                     cx = ev(5, DS_KIND_CANCEL, 2, 4, 1, 1);
        cr_assert_eq(apply(&c0), DS_EV_APPLIED_NEW);
        cr_assert_eq(apply(&c1), DS_EV_APPLIED_AMEND);
        cr_assert_eq(apply(&cx), DS_EV_APPLIED_CANCEL);
        cr_assert_eq(eff.add, 0);
        assert_old_is(&c1);
}

Test(ledger, stale_cancel_is_ignored) {
        ds_contrib_t c0 = ev(5, DS_KIND_NEW, 0, 3, 2, 810), c1 = ev(5, DS_KIND_AMEND, 1, 4, 3, 8429),
                     cx = ev(5, DS_KIND_CANCEL, 1, 4, 1, 1);
        cr_assert_eq(apply(&c0), DS_EV_APPLIED_NEW);
        cr_assert_eq(apply(&c1), DS_EV_APPLIED_AMEND);
        cr_assert_eq(apply(&cx), DS_EV_IGNORED_STALE);
        cr_assert_eq(eff.retract, 0);
}

Test(ledger, events_after_cancel_are_ignored_even_with_higher_versions) {
        ds_contrib_t c0 = ev(5, DS_KIND_NEW, 0, 3, 2, 810), cx = ev(5, DS_KIND_CANCEL, 1, 3, 1, 1);
        cr_assert_eq(apply(&c0), DS_EV_APPLIED_NEW);
        cr_assert_eq(apply(&cx), DS_EV_APPLIED_CANCEL);
        ds_contrib_t later[] = {ev(5, DS_KIND_AMEND, 9, 3, 2, 810), ev(5, DS_KIND_NEW, 0, 3, 2, 810),
                                ev(5, DS_KIND_NEW, 10, 3, 2, 810), ev(5, DS_KIND_CANCEL, 11, 3, 1, 1), cx};
        for (size_t i = 0; i < DS_ARRAY_LEN(later); i++) {
                cr_assert_eq(apply(&later[i]), DS_EV_IGNORED_CANCELLED, "event %zu", i);
                cr_assert_eq(eff.add, 0);
                cr_assert_eq(eff.retract, 0);
        }
        cr_assert_eq(ds_ledger_count(l), 1, "the cancellation is remembered");
}

Test(ledger, amend_for_an_unknown_id_is_an_upsert) {
        ds_contrib_t c3 = ev(77, DS_KIND_AMEND, 3, 6, 2, 810);
        cr_assert_eq(apply(&c3), DS_EV_UPSERT_UNKNOWN);
        cr_assert_eq(eff.add, 1);
        cr_assert_eq(eff.retract, 0);
        /* the NEW arriving later is older */
        ds_contrib_t c0 = ev(77, DS_KIND_NEW, 0, 6, 2, 810);
        cr_assert_eq(apply(&c0), DS_EV_IGNORED_STALE);
        ds_contrib_t c4 = ev(77, DS_KIND_AMEND, 4, 6, 1, 7);
        cr_assert_eq(apply(&c4), DS_EV_APPLIED_AMEND);
        assert_old_is(&c3);
}

Test(ledger, cancel_for_an_unknown_id_adds_nothing_and_blocks_a_later_new) {
        ds_contrib_t cx = ev(88, DS_KIND_CANCEL, 1, 6, 2, 810);
        cr_assert_eq(apply(&cx), DS_EV_UPSERT_UNKNOWN);
        cr_assert_eq(eff.add, 0);
        cr_assert_eq(eff.retract, 0);
        ds_contrib_t c0 = ev(88, DS_KIND_NEW, 0, 6, 2, 810);
        cr_assert_eq(apply(&c0), DS_EV_IGNORED_CANCELLED);
        cr_assert_eq(eff.add, 0);
        ds_contrib_t c5 = ev(88, DS_KIND_AMEND, 5, 6, 2, 810);
        cr_assert_eq(apply(&c5), DS_EV_IGNORED_CANCELLED);
}

Test(ledger, ids_are_independent) {
        ds_contrib_t a = ev(100000000000ULL, DS_KIND_NEW, 0, 1, 1, 1), b = ev(100000000001ULL, DS_KIND_NEW, 0, 1, 1, 1),
                     z = ev(0, DS_KIND_NEW, 0, 1, 1, 1), m = ev(999999999999ULL, DS_KIND_NEW, 0, 1, 1, 1);
        cr_assert_eq(apply(&a), DS_EV_APPLIED_NEW);
        cr_assert_eq(apply(&b), DS_EV_APPLIED_NEW);
        cr_assert_eq(apply(&z), DS_EV_APPLIED_NEW, "id 0 is a valid id");
        cr_assert_eq(apply(&m), DS_EV_APPLIED_NEW);
        cr_assert_eq(ds_ledger_count(l), 4);
        cr_assert_eq(apply(&z), DS_EV_IGNORED_STALE);
}

/* ---- retention ------------------------------------------------------------------ */

Test(ledger, expire_forgets_entries_older_than_the_horizon_and_only_those) {
        const int n = 1000;
        for (int i = 0; i < n; i++) {
                ds_contrib_t c = ev((uint64_t)i * 7919, i % 10 == 0 ? DS_KIND_CANCEL : DS_KIND_NEW, 0, 1, 2, 810);
                c.declared_at = T0 + (int64_t)i * 1000;
                cr_assert_geq(apply(&c), 0);
        }
        cr_assert_eq(ds_ledger_count(l), (uint64_t)n);
        int64_t horizon = T0 + 500 * 1000; /* entries 0..499 are older */
        /* one call sweeps the table once (removals count as scanned slots), so
         * sweep until nothing more goes */
        uint64_t forgotten = 0, got;
        int calls = 0;
        while ((got = ds_ledger_expire(l, horizon, UINT32_MAX)) > 0 && calls < 10)
                forgotten += got, calls++;
        cr_assert_eq(forgotten, 500);
        cr_assert_leq(calls, 2, "%d sweeps", calls);
        cr_assert_eq(ds_ledger_count(l), 500);
        for (int i = 0; i < n; i++) {
                ds_contrib_t c = ev((uint64_t)i * 7919, DS_KIND_AMEND, 5, 1, 2, 810);
                int r = apply(&c);
                if (i < 500) {
                        cr_assert_eq(r, DS_EV_UPSERT_UNKNOWN, "forgotten entry %d: %s", i, ds_event_code(r));
                        cr_assert_eq(eff.retract, 0, "a forgotten contribution is not retracted");
                        cr_assert_eq(eff.add, 1);
                } else if (i % 10 == 0) {
                        cr_assert_eq(r, DS_EV_IGNORED_CANCELLED, "entry %d", i);
                } else {
                        cr_assert_eq(r, DS_EV_APPLIED_AMEND, "kept entry %d: %s", i, ds_event_code(r));
                }
        }
}

Test(ledger, expire_in_small_steps_forgets_exactly_the_old_entries) {
        /* random ages, so backward shifts move entries around the sweep cursor */
        const int n = 20000;
        uint64_t x = 12345;
        static int64_t at[20000];
        int old_cnt = 0;
        int64_t horizon = T0 + 5000000;
        for (int i = 0; i < n; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                at[i] = T0 + (int64_t)(x % 10000000);
                old_cnt += at[i] < horizon;
                ds_contrib_t c = ev((uint64_t)i * 104729 + 1, DS_KIND_NEW, 0, 1, 1 + i % 3, 810);
                c.declared_at = at[i];
                cr_assert_eq(apply(&c), DS_EV_APPLIED_NEW);
        }
        uint64_t forgotten = 0;
        for (int step = 0; step < 100000 && forgotten < (uint64_t)old_cnt; step++)
                forgotten += ds_ledger_expire(l, horizon, 97);
        cr_assert_eq(forgotten, (uint64_t)old_cnt);
        cr_assert_eq(ds_ledger_count(l), (uint64_t)(n - old_cnt));
        for (int i = 0; i < n; i++) {
                ds_contrib_t c = ev((uint64_t)i * 104729 + 1, DS_KIND_NEW, 0, 1, 1, 810);
                int r = apply(&c);
                cr_assert_eq(r, at[i] < horizon ? DS_EV_APPLIED_NEW : DS_EV_IGNORED_STALE, "entry %d (age %lld): %s",
                             i, (long long)(horizon - at[i]), ds_event_code(r));
        }
}

Test(ledger, entry_past_the_horizon_at_lookup_is_an_expired_upsert) {
        ds_contrib_t c0 = ev(31, DS_KIND_NEW, 0, 1, 2, 810); /* declared_at T0 */
        cr_assert_eq(apply(&c0), DS_EV_APPLIED_NEW);
        ds_contrib_t c1 = ev(31, DS_KIND_AMEND, 1, 1, 2, 810);
        /* horizon at T0: not older, applies as an amendment */
        cr_assert_eq(ds_ledger_apply(l, &c1, T0, &eff), DS_EV_APPLIED_AMEND);
        cr_assert_eq(eff.retract, 1);
        /* the entry now dates from T0 + 1 min; a horizon past it forgets it */
        ds_contrib_t c2 = ev(31, DS_KIND_AMEND, 2, 1, 2, 810);
        cr_assert_eq(ds_ledger_apply(l, &c2, T0 + 60001, &eff), DS_EV_UPSERT_EXPIRED);
        cr_assert_eq(eff.retract, 0);
        cr_assert_eq(eff.add, 1);
        cr_assert_eq(ds_ledger_count(l), 1);
        ds_contrib_t cx = ev(31, DS_KIND_CANCEL, 3, 1, 1, 1);
        cr_assert_eq(ds_ledger_apply(l, &cx, T0 + 10000000, &eff), DS_EV_UPSERT_EXPIRED);
        cr_assert_eq(eff.retract, 0);
        cr_assert_eq(eff.add, 0);
}

/* ---- checkpoints --------------------------------------------------------------------- */

static int copy_into(void *ctx, const ds_ledger_entry_t *e) {
        return ds_ledger_put(ctx, e);
}

typedef struct seen {
        uint64_t ids[64];
        int n;
} seen_t;

static int note_id(void *ctx, const ds_ledger_entry_t *e) {
        seen_t *s = ctx;
        cr_assert_lt(s->n, 64);
        s->ids[s->n++] = e->id;
        return 0;
}

Test(ledger, a_restored_copy_decides_like_the_original) {
        /* live, amended, cancelled, cancelled-unknown and upserted entries */
        ds_contrib_t evs[] = {ev(1, DS_KIND_NEW, 0, 1, 2, 810),     ev(2, DS_KIND_NEW, 0, 2, 3, 900),
                              ev(2, DS_KIND_AMEND, 1, 3, 1, 901),   ev(3, DS_KIND_NEW, 0, 4, 1, 10),
                              ev(3, DS_KIND_CANCEL, 1, 4, 1, 10),   ev(4, DS_KIND_CANCEL, 2, 5, 1, 10),
                              ev(5, DS_KIND_AMEND, 4, 6, 5, 2000)};
        for (size_t i = 0; i < DS_ARRAY_LEN(evs); i++)
                cr_assert_geq(apply(&evs[i]), 0);
        ds_ledger_t *copy = ds_ledger_new(0);
        cr_assert_eq(ds_ledger_foreach(l, copy_into, copy), 0);
        cr_assert_eq(ds_ledger_count(copy), ds_ledger_count(l));
        /* the same later events get the same outcomes and retract the same lines */
        ds_contrib_t later[] = {ev(1, DS_KIND_AMEND, 1, 7, 1, 1),  ev(2, DS_KIND_AMEND, 1, 7, 1, 1),
                                ev(2, DS_KIND_AMEND, 2, 7, 2, 5),  ev(3, DS_KIND_AMEND, 5, 7, 1, 1),
                                ev(4, DS_KIND_NEW, 0, 7, 1, 1),    ev(5, DS_KIND_CANCEL, 5, 7, 1, 1),
                                ev(6, DS_KIND_NEW, 0, 7, 1, 1)};
        static ds_contrib_t old2;
        for (size_t i = 0; i < DS_ARRAY_LEN(later); i++) {
                ds_ledger_effect_t e2 = {.old = &old2};
                int want = apply(&later[i]);
                int got = ds_ledger_apply(copy, &later[i], NO_HORIZON, &e2);
                cr_assert_eq(got, want, "event %zu: restored %s, original %s", i, ds_event_code(got), ds_event_code(want));
                cr_assert_eq(e2.retract, eff.retract, "event %zu", i);
                cr_assert_eq(e2.add, eff.add, "event %zu", i);
                if (eff.retract) {
                        cr_assert_eq(old2.gate, old.gate);
                        cr_assert_eq(old2.version, old.version);
                        cr_assert_eq(old2.declared_at, old.declared_at);
                        cr_assert_eq(old2.nlines, old.nlines);
                        cr_assert_eq(old2.value, old.value);
                        cr_assert(!memcmp(old2.lines, old.lines, old.nlines * sizeof(ds_line_t)), "event %zu lines", i);
                }
        }
        ds_ledger_destroy(copy);
}

Test(ledger, changes_are_reported_once_each) {
        seen_t s = {.n = 0};
        ds_ledger_track_changes(l);
        ds_contrib_t a0 = ev(11, DS_KIND_NEW, 0, 1, 1, 1), a1 = ev(11, DS_KIND_AMEND, 1, 1, 1, 1),
                     b0 = ev(12, DS_KIND_NEW, 0, 1, 1, 1), cx = ev(13, DS_KIND_CANCEL, 1, 1, 1, 1);
        cr_assert_eq(apply(&a0), DS_EV_APPLIED_NEW);
        cr_assert_eq(apply(&a1), DS_EV_APPLIED_AMEND);
        cr_assert_eq(apply(&b0), DS_EV_APPLIED_NEW);
        cr_assert_eq(apply(&b0), DS_EV_IGNORED_STALE);
        cr_assert_eq(apply(&cx), DS_EV_UPSERT_UNKNOWN);
        cr_assert_eq(ds_ledger_take_changes(l, note_id, &s), 0);
        cr_assert_eq(s.n, 3, "%d changes reported for 3 ids", s.n);
        int have[3] = {0};
        for (int i = 0; i < s.n; i++) {
                cr_assert(s.ids[i] >= 11 && s.ids[i] <= 13, "id %llu", (unsigned long long)s.ids[i]);
                have[s.ids[i] - 11]++;
        }
        cr_assert(have[0] == 1 && have[1] == 1 && have[2] == 1);
        s.n = 0;
        cr_assert_eq(ds_ledger_take_changes(l, note_id, &s), 0);
        cr_assert_eq(s.n, 0, "changes reported twice");
        cr_assert_eq(apply(&b0), DS_EV_IGNORED_STALE); /* an ignored event changes nothing */
        cr_assert_eq(ds_ledger_take_changes(l, note_id, &s), 0);
        cr_assert_eq(s.n, 0);
}

/* ---- scale ---------------------------------------------------------------------- */

#define MILLION 1000000

Test(ledger, growth_to_a_million_entries_keeps_every_entry) {
        ds_ledger_t *big = ds_ledger_new(0);
        for (uint64_t i = 0; i < MILLION; i++) {
                ds_contrib_t c = ev(i * 999983 % 1000000000000ULL, DS_KIND_NEW, (int32_t)(i % 7), (uint16_t)(i % 16), 3,
                                    (uint32_t)(i % 5000) * 3);
                cr_assert_eq(ds_ledger_apply(big, &c, NO_HORIZON, &eff), DS_EV_APPLIED_NEW, "entry %llu",
                             (unsigned long long)i);
        }
        cr_assert_eq(ds_ledger_count(big), MILLION);
        for (uint64_t i = 0; i < MILLION; i += 1) {
                ds_contrib_t c = ev(i * 999983 % 1000000000000ULL, DS_KIND_AMEND, (int32_t)(i % 7) + 1, 0, 1, 1);
                int r = ds_ledger_apply(big, &c, NO_HORIZON, &eff);
                if (r != DS_EV_APPLIED_AMEND)
                        cr_assert_fail("entry %llu lost: %s", (unsigned long long)i, ds_event_code(r));
                if (i % 1000 == 0) { /* and it still holds exactly its lines */
                        ds_contrib_t was = ev(i * 999983 % 1000000000000ULL, DS_KIND_NEW, (int32_t)(i % 7),
                                              (uint16_t)(i % 16), 3, (uint32_t)(i % 5000) * 3);
                        assert_old_is(&was);
                }
        }
        ds_ledger_destroy(big);
}

/* The line pool's chunks grow (1,024 lines, 2,048, ... 65,536): a ledger of
 * a few declarations stays small (a process keeps one per input partition),
 * and runs of 1 to 50 lines laid across the chunks' ends read back whole. */
Test(ledger, small_ledgers_stay_small_and_runs_of_any_length_read_back) {
        ds_ledger_t *small = ds_ledger_new(0);
        for (uint64_t i = 1; i <= 1000; i++) {
                ds_contrib_t c = ev(i, DS_KIND_NEW, 0, 1, 3, (uint32_t)i);
                cr_assert_eq(ds_ledger_apply(small, &c, NO_HORIZON, &eff), DS_EV_APPLIED_NEW);
        }
        size_t mem = ds_ledger_memory(small);
        cr_expect_geq(mem, 3000 * sizeof(ds_line_t) + 1000 * 32, "ds_ledger_memory() undercounts: %zu", mem);
        cr_expect_lt(mem, 256 * 1024, "1,000 declarations hold %zu bytes", mem);
        ds_ledger_destroy(small);

        ds_ledger_t *mixed = ds_ledger_new(0);
        const uint64_t n = 20000; /* ~510,000 lines: chunks of 1,024 to 65,536 and several full ones */
        for (uint64_t i = 0; i < n; i++) {
                ds_contrib_t c = ev(i + 1, DS_KIND_NEW, 0, 2, (int)(i % DS_MAX_ITEMS) + 1, (uint32_t)i * 7);
                cr_assert_eq(ds_ledger_apply(mixed, &c, NO_HORIZON, &eff), DS_EV_APPLIED_NEW);
        }
        for (uint64_t i = 0; i < n; i++) {
                ds_contrib_t c = ev(i + 1, DS_KIND_AMEND, 1, 2, 1, 1);
                cr_assert_eq(ds_ledger_apply(mixed, &c, NO_HORIZON, &eff), DS_EV_APPLIED_AMEND);
                ds_contrib_t was = ev(i + 1, DS_KIND_NEW, 0, 2, (int)(i % DS_MAX_ITEMS) + 1, (uint32_t)i * 7);
                assert_old_is(&was);
        }
        ds_ledger_destroy(mixed);
}

/* ds_ledger.h "Memory": 118 to 170 bytes per 3-heading declaration, the
 * range spanning the table's doubling (at 367k entries, inside the range
 * below). */
Test(ledger, memory_per_three_heading_entry_stays_in_the_documented_range) {
        ds_ledger_t *big = ds_ledger_new(0);
        double worst = 0, best = 1e9;
        uint64_t worst_at = 0;
        for (uint64_t i = 1; i <= 400000; i++) {
                ds_contrib_t c = ev(i, DS_KIND_NEW, 0, (uint16_t)(i % 16), 3, (uint32_t)(i % 5000) * 3);
                cr_assert_eq(ds_ledger_apply(big, &c, NO_HORIZON, &eff), DS_EV_APPLIED_NEW);
                if (i >= 100000 && i % 5000 == 0) {
                        double per = (double)ds_ledger_memory(big) / (double)i;
                        if (per > worst)
                                worst = per, worst_at = i;
                        if (per < best)
                                best = per;
                }
        }
        /* the lines alone are 72 bytes per entry and the table at least 32 */
        cr_assert_gt(best, 72.0 + 32.0, "ds_ledger_memory() undercounts: %.1f bytes per entry", best);
        cr_expect_lt(worst, 170.0, "%.1f bytes per 3-heading entry at %llu entries (%.1f at best)", worst,
                     (unsigned long long)worst_at, best);
        ds_ledger_destroy(big);
}

/* ---- property: ledger + aggregation == brute force ---------------------------------- */

#define NIDS 2000
#define MAXEV 10
#define NHEADINGS 40
#define NGATES 16

typedef struct stream {
        ds_contrib_t ev[MAXEV];
        int n, next;
} stream_t;

static uint64_t prng = 0x243f6a8885a308d3ULL;
static uint32_t rnd(uint32_t n) {
        prng ^= prng << 13;
        prng ^= prng >> 7;
        prng ^= prng << 17;
        return (uint32_t)((prng >> 11) % n);
}

/* A random version of declaration id: gate, flow, 1-5 distinct headings. */
static ds_contrib_t random_version(uint64_t id, ds_kind_t kind, int32_t version) {
        ds_contrib_t c;
        memset(&c, 0, sizeof(c));
        c.id = id;
        c.kind = (uint8_t)kind;
        c.version = version;
        c.gate = (uint16_t)rnd(NGATES);
        c.flow = (uint8_t)rnd(DS_FLOW__CNT);
        c.declared_at = T0 + (int64_t)rnd(86400000);
        c.nlines = 1 + rnd(5);
        for (uint32_t i = 0; i < c.nlines; i++) {
                uint32_t h;
                int dup;
                do { /* headings of one declaration are distinct (ds_validate merges them) */
                        h = 100 + rnd(NHEADINGS);
                        dup = 0;
                        for (uint32_t k = 0; k < i; k++)
                                dup |= c.lines[k].heading == h;
                } while (dup);
                c.lines[i] = (ds_line_t){h, 1 + rnd(4), (int64_t)rnd(1000000000) * 1000, (int64_t)rnd(50000000)};
                c.items += c.lines[i].items;
                c.value += c.lines[i].value;
                c.weight += c.lines[i].weight;
        }
        return c;
}

static void push(stream_t *s, ds_contrib_t c) {
        cr_assert_lt(s->n, MAXEV);
        s->ev[s->n++] = c;
}

/* The events of one declaration, in delivery order: the usual lives, and
 * the disorderly ones (upserts, cancellations first, stale and duplicate
 * deliveries, events after a cancellation). */
static void make_stream(stream_t *s, uint64_t id) {
        s->n = s->next = 0;
        uint32_t kind = rnd(10);
        int32_t v = 0;
        switch (kind) {
        case 0: /* AMEND for an unknown id, then the old NEW */
                push(s, random_version(id, DS_KIND_AMEND, 2));
                if (rnd(2))
                        push(s, random_version(id, DS_KIND_NEW, 0));
                v = 2;
                break;
        case 1: /* CANCEL first, then what it cancelled */
                push(s, random_version(id, DS_KIND_CANCEL, 1));
                push(s, random_version(id, DS_KIND_NEW, 0));
                if (rnd(2))
                        push(s, random_version(id, DS_KIND_AMEND, 2));
                return;
        case 2: /* amendments out of order */
                push(s, random_version(id, DS_KIND_NEW, 0));
                push(s, random_version(id, DS_KIND_AMEND, 2));
                push(s, random_version(id, DS_KIND_AMEND, 1));
                v = 2;
                break;
        default:
                push(s, random_version(id, DS_KIND_NEW, 0));
                for (uint32_t k = rnd(4); k > 0; k--)
                        push(s, random_version(id, DS_KIND_AMEND, ++v));
                break;
        }
        if (rnd(4) == 0) {
                push(s, random_version(id, DS_KIND_CANCEL, ++v));
                if (rnd(2))
                        push(s, random_version(id, DS_KIND_AMEND, ++v)); /* after the cancellation */
        }
        /* redeliveries: copies of earlier events, later in the stream */
        for (uint32_t k = rnd(3); k > 0 && s->n < MAXEV; k--) {
                uint32_t src = rnd((uint32_t)s->n);
                push(s, s->ev[src]);
        }
}

/* Brute force: the state of one id after its events so far, by the rules. */
typedef struct mstate {
        int state; /* 0 unknown, 1 counted, 2 cancelled */
        int32_t version;
        const ds_contrib_t *cur;
} mstate_t;

static int model_apply(mstate_t *m, const ds_contrib_t *e) {
        if (m->state == 0) {
                m->version = e->version;
                if (e->kind == DS_KIND_CANCEL) {
                        m->state = 2;
                        return DS_EV_UPSERT_UNKNOWN;
                }
                m->state = 1;
                m->cur = e;
                return e->kind == DS_KIND_NEW ? DS_EV_APPLIED_NEW : DS_EV_UPSERT_UNKNOWN;
        }
        if (m->state == 2)
                return DS_EV_IGNORED_CANCELLED;
        if (e->version <= m->version)
                return DS_EV_IGNORED_STALE;
        m->version = e->version;
        if (e->kind == DS_KIND_CANCEL) {
                m->state = 2;
                m->cur = NULL;
                return DS_EV_APPLIED_CANCEL;
        }
        m->cur = e;
        return DS_EV_APPLIED_AMEND;
}

static void model_add(ds_measures_t *gate, ds_measures_t *heading, const ds_contrib_t *c) {
        ds_measures_t *g = &gate[c->gate];
        g->declarations++;
        g->items += c->items;
        g->value += c->value;
        g->weight += c->weight;
        g->flow_value[c->flow] += c->value;
        for (uint32_t i = 0; i < c->nlines; i++) {
                ds_measures_t *h = &heading[c->lines[i].heading];
                h->declarations++;
                h->items += c->lines[i].items;
                h->value += c->lines[i].value;
                h->weight += c->lines[i].weight;
                h->flow_value[c->flow] += c->lines[i].value;
        }
}

static void assert_row_equals(ds_agg_t *a, ds_dim_t dim, uint32_t key, const ds_measures_t *want, int seed) {
        ds_row_t *r = ds_rows_find(ds_agg_rows(a), ds_rowkey(dim, DS_WIN_TOTAL, key, 0));
        ds_measures_t zero;
        memset(&zero, 0, sizeof(zero));
        const ds_measures_t *got = r ? &r->m : &zero;
        cr_assert(!memcmp(got, want, sizeof(*want)),
                  "seed %d, %s %u: got decl %lld items %lld value %lld weight %lld flows %lld/%lld/%lld/%lld, "
                  "want decl %lld items %lld value %lld weight %lld flows %lld/%lld/%lld/%lld",
                  seed, dim == DS_DIM_GATE ? "GATE" : "COMMODITY", key, (long long)got->declarations,
                  (long long)got->items, (long long)got->value, (long long)got->weight,
                  (long long)got->flow_value[0], (long long)got->flow_value[1], (long long)got->flow_value[2],
                  (long long)got->flow_value[3], (long long)want->declarations, (long long)want->items,
                  (long long)want->value, (long long)want->weight, (long long)want->flow_value[0],
                  (long long)want->flow_value[1], (long long)want->flow_value[2], (long long)want->flow_value[3]);
}

static void run_property(int seed) {
        static stream_t streams[NIDS];
        static mstate_t model[NIDS];
        static uint32_t order[NIDS * MAXEV];
        prng = 0x243f6a8885a308d3ULL ^ (uint64_t)seed * 0x9e3779b97f4a7c15ULL;
        uint32_t total = 0;
        for (uint32_t i = 0; i < NIDS; i++) {
                make_stream(&streams[i], 100000000000ULL + (uint64_t)i * 7);
                for (int k = 0; k < streams[i].n; k++)
                        order[total++] = i;
        }
        /* shuffle the deliveries; each id's events keep their order */
        for (uint32_t i = total - 1; i > 0; i--) {
                uint32_t j = rnd(i + 1), t = order[i];
                order[i] = order[j];
                order[j] = t;
        }
        memset(model, 0, sizeof(model));
        ds_ledger_t *led = ds_ledger_new(64);
        ds_agg_cfg_t cfg;
        ds_agg_cfg_default(&cfg);
        ds_agg_t *a = ds_agg_new(&cfg);
        int64_t wm = 0;
        int outcomes[DS_EV__CNT] = {0};
        for (uint32_t k = 0; k < total; k++) {
                stream_t *s = &streams[order[k]];
                const ds_contrib_t *c = &s->ev[s->next++];
                if (c->declared_at > wm)
                        wm = c->declared_at;
                int r = ds_ledger_apply(led, c, NO_HORIZON, &eff);
                int want = model_apply(&model[order[k]], c);
                cr_assert_eq(r, want, "seed %d, delivery %u (id %llu v%d %s): ledger says %s, the rules %s", seed, k,
                             (unsigned long long)c->id, c->version, c->kind == 0 ? "NEW" : c->kind == 1 ? "AMEND" : "CANCEL",
                             ds_event_code(r), ds_event_code(want));
                outcomes[r]++;
                if (eff.retract)
                        cr_assert_eq(ds_agg_apply(a, eff.old, -1, wm), 0);
                if (eff.add)
                        cr_assert_eq(ds_agg_apply(a, c, 1, wm), 0);
        }
        /* every kind of outcome happened */
        for (int o = 0; o <= DS_EV_IGNORED_CANCELLED; o++)
                cr_assert_gt(outcomes[o], 0, "seed %d: no %s", seed, ds_event_code(o));

        static ds_measures_t gate[NGATES], heading[100 + NHEADINGS];
        memset(gate, 0, sizeof(gate));
        memset(heading, 0, sizeof(heading));
        for (uint32_t i = 0; i < NIDS; i++)
                if (model[i].state == 1)
                        model_add(gate, heading, model[i].cur);
        for (uint32_t g = 0; g < NGATES; g++)
                assert_row_equals(a, DS_DIM_GATE, g, &gate[g], seed);
        for (uint32_t h = 100; h < 100 + NHEADINGS; h++)
                assert_row_equals(a, DS_DIM_COMMODITY, h, &heading[h], seed);
        /* and no TOTAL row the model does not know */
        uint32_t cur = 0;
        ds_row_t *r;
        while ((r = ds_rows_iter(ds_agg_rows(a), &cur))) {
                if (ds_rowkey_window(r->key) != DS_WIN_TOTAL || ds_rowkey_dim(r->key) == DS_DIM_GATE_HEADING)
                        continue;
                uint32_t key = ds_rowkey_key(r->key);
                cr_assert(ds_rowkey_dim(r->key) == DS_DIM_GATE ? key < NGATES : key >= 100 && key < 100 + NHEADINGS,
                          "unexpected row %u", key);
        }
        ds_agg_destroy(a);
        ds_ledger_destroy(led);
}

Test(ledger, random_streams_give_the_brute_force_totals) {
        for (int seed = 1; seed <= 5; seed++)
                run_property(seed);
}

/* Resident memory of this process, bytes (/proc/self/statm). */
static long resident_bytes(void) {
        long pages = 0, resident = 0;
        FILE *f = fopen("/proc/self/statm", "r");
        cr_assert_not_null(f);
        cr_assert_eq(fscanf(f, "%ld %ld", &pages, &resident), 2);
        fclose(f);
        return resident * sysconf(_SC_PAGESIZE);
}

/* A ledger created for many declarations (replay --presize) has its table in
 * memory from the start, so the per-message path does not fault it in page
 * by page. The malloc + memset that meant to do this was compiled into a
 * calloc, which writes nothing (bench/HOTPATH.md, fourteenth round). */
Test(ledger, a_large_initial_table_is_in_memory_once_created) {
        long before = resident_bytes();
        ds_ledger_t *big = ds_ledger_new(2u << 20); /* 4 Mi slots of 32 bytes: 128 MiB */
        cr_assert_not_null(big);
        long grown = resident_bytes() - before;
        cr_expect_geq(grown, 120L << 20, "%ld MiB of the 128 MiB table resident after creation", grown >> 20);
        cr_expect_eq(ds_ledger_count(big), 0);
        ds_ledger_destroy(big);
}
