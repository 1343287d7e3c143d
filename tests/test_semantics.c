/*
 * test_semantics.c - what the totals mean: ledger rules, windows, lateness,
 * retention, the UTC+7 day, and property tests against the brute-force
 * model.
 *
 * A small harness drives the real per-partition code (ds_part) and the real
 * merge/publish cycle (ds_publish) with an in-memory sink standing in for
 * Kafka: the latest published value of every key is kept, as a consumer of
 * customs.totals would see it.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds_domain.h"
#include "ds_encode.h"
#include "ds_hll.h"
#include "ds_part.h"
#include "ds_publish.h"
#include "ds_truth.h"
#include "ds_validate.h"

#define NPARTS 4

typedef struct harness {
        ds_part_cfg_t cfg;
        ds_part_t *parts[NPARTS];
        ds_merge_t *merge;
        ds_outbox_t ob;
        json_t *rows; /* key -> [8 measures, distinct_declarants, distinct_vehicles] */
        json_t *tops; /* "GATE|DAY|start" -> [[heading, value, declarations, items, weight]...] */
        int outcome;  /* of the last event */
        int heading_digits;
} harness_t;

static int sink_row(void *ctx, const ds_row_t *r) {
        harness_t *h = ctx;
        char key[96];
        ds_total_key(r->key, h->heading_digits, key, sizeof(key));
        json_t *a = json_array();
        const int64_t *m = &r->m.declarations;
        for (int i = 0; i < 8; i++)
                json_array_append_new(a, json_integer(m[i]));
        const ds_distinct_t *d = r->aux;
        json_array_append_new(a, json_integer(d ? (json_int_t)(ds_hll_estimate(d->declarants) + 0.5) : 0));
        json_array_append_new(a, json_integer(d ? (json_int_t)(ds_hll_estimate(d->vehicles) + 0.5) : 0));
        json_object_set_new(h->rows, key, a);
        return 0;
}

static int sink_top(void *ctx, uint32_t gate, int64_t day, const ds_top_entry_t *e, int n) {
        harness_t *h = ctx;
        char key[64];
        snprintf(key, sizeof(key), "%s|DAY|%" PRId64, ds_gate((int)gate)->code, day);
        json_t *list = json_array();
        for (int i = 0; i < n; i++) {
                char hd[16];
                snprintf(hd, sizeof(hd), "%0*u", h->heading_digits, e[i].heading);
                json_array_append_new(list, json_pack("[sIIII]", hd, (json_int_t)e[i].m.value,
                                                      (json_int_t)e[i].m.declarations, (json_int_t)e[i].m.items,
                                                      (json_int_t)e[i].m.weight));
        }
        json_object_set_new(h->tops, key, list);
        return 0;
}

static void h_init(harness_t *h, const ds_part_cfg_t *cfg, int heading_digits) {
        memset(h, 0, sizeof(*h));
        ds_domain_init();
        if (cfg)
                h->cfg = *cfg;
        else
                ds_part_cfg_default(&h->cfg);
        for (int p = 0; p < NPARTS; p++)
                h->parts[p] = ds_part_new(&h->cfg, p, 0);
        h->merge = ds_merge_new(&h->cfg.agg.win, h->cfg.agg.top_retention_ms);
        h->rows = json_object();
        h->tops = json_object();
        h->heading_digits = heading_digits;
}

static void h_free(harness_t *h) {
        for (int p = 0; p < NPARTS; p++)
                ds_part_destroy(h->parts[p]);
        ds_merge_destroy(h->merge);
        ds_outbox_free(&h->ob);
        json_decref(h->rows);
        json_decref(h->tops);
}

/* One publish cycle over every partition, at wall-clock time now. */
static void h_cycle_at(harness_t *h, int64_t now) {
        ds_outbox_reset(&h->ob);
        for (int p = 0; p < NPARTS; p++)
                cr_assert_eq(ds_part_flush(h->parts[p], &h->cfg, now, &h->ob), 0);
        ds_outbox_t *obs[1] = {&h->ob};
        ds_publish_state_t st;
        ds_publish_state(obs, 1, &st);
        ds_sink_t sink = {sink_row, sink_top, h};
        ds_publish_result_t res;
        cr_assert_eq(ds_publish_cycle(h->merge, obs, 1, !st.restoring, st.wm_min, &sink, &res), 0);
}

static void h_cycle(harness_t *h) {
        h_cycle_at(h, 0);
}

/* A declaration event: items given as "HSCODE8:value_cents:weight_g" strings. */
typedef struct ev {
        int partition;
        const char *id;
        int version;
        int kind;
        int64_t at;
        const char *gate;
        int flow;
        const char *tax;
        const char *plate;
        const char *items[8];
} ev_t;

static void h_event(harness_t *h, const ev_t *e) {
        static ds_decl_t d;
        static ds_contrib_t c, scratch;
        static char hs[8][9];
        memset(&d, 0, offsetof(ds_decl_t, items));
        d.declaration_id = (ds_str_t){e->id, (uint32_t)strlen(e->id)};
        d.version = e->version;
        d.kind = (uint8_t)e->kind;
        d.declared_at = e->at;
        d.gate_code = (ds_str_t){e->gate, (uint32_t)strlen(e->gate)};
        d.flow = (uint8_t)e->flow;
        const char *tax = e->tax ? e->tax : "5700000001";
        d.declarant_tax_id = (ds_str_t){tax, (uint32_t)strlen(tax)};
        d.vehicle_plate = e->plate ? (ds_str_t){e->plate, (uint32_t)strlen(e->plate)} : (ds_str_t){NULL, 0};
        for (int i = 0; i < 8 && e->items[i]; i++) {
                long long v, w;
                cr_assert_eq(sscanf(e->items[i], "%8[0-9]:%lld:%lld", hs[i], &v, &w), 3, "bad item %s", e->items[i]);
                d.items[i] = (ds_item_t){(ds_str_t){hs[i], 8}, {"x", 1}, {"kg", 2}, {"CN", 2}, 1.0, w, v};
                d.item_cnt++;
        }
        cr_assert_eq(ds_validate(&d, h->heading_digits, &c), DS_DLQ_NONE);
        h->outcome = ds_part_apply(h->parts[e->partition], &h->cfg, &c, INT64_MAX / 4, &scratch);
        cr_assert_geq(h->outcome, 0);
}

/* Published measures of a key; NULL if never published. */
static json_t *pub(harness_t *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static json_t *pub(harness_t *h, const char *fmt, ...) {
        char key[128];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(key, sizeof(key), fmt, ap);
        va_end(ap);
        return json_object_get(h->rows, key);
}

static long long M(json_t *row, int i) {
        cr_assert_not_null(row, "row was not published");
        return json_integer_value(json_array_get(row, (size_t)i));
}

enum { DECL = 0, ITEMS, VALUE, WEIGHT, EXPORT, IMPORT, TRANSIT, BORDER };

/* 2024-03-10 09:00 local (02:00 UTC) */
#define T0 1710036000000LL
#define MIN 60000LL
#define HOUR 3600000LL
#define DAY 86400000LL

static int64_t minute(int64_t t) { return t / MIN * MIN; }
static int64_t hour(int64_t t) { return t / HOUR * HOUR; }
static int64_t day(int64_t t) { return (t + 7 * HOUR) / DAY * DAY - 7 * HOUR; }

/* ------------------------------------------------------------------------ */
/* The ledger rules, each on its own                                         */

Test(semantics, new_declaration_counts_in_its_gate_and_each_heading) {
        harness_t h;
        h_init(&h, NULL, 4);
        h_event(&h, &(ev_t){0, "300000000001", 0, DS_KIND_NEW, T0, "MONGCAI", DS_FLOW_EXPORT, NULL, NULL,
                            {"08106000:500000:1000000", "08109050:20000:400000", "44012200:7000:5000000"}});
        h_cycle(&h);
        cr_expect_eq(h.outcome, DS_EV_APPLIED_NEW);
        json_t *g = pub(&h, "GATE|MONGCAI|TOTAL|0");
        cr_expect_eq(M(g, DECL), 1);
        cr_expect_eq(M(g, ITEMS), 3);
        cr_expect_eq(M(g, VALUE), 527000);
        cr_expect_eq(M(g, WEIGHT), 6400000);
        cr_expect_eq(M(g, EXPORT), 527000);
        cr_expect_eq(M(g, IMPORT), 0);
        /* two items of heading 0810: the declaration counts once there */
        json_t *c = pub(&h, "COMMODITY|0810|TOTAL|0");
        cr_expect_eq(M(c, DECL), 1);
        cr_expect_eq(M(c, ITEMS), 2);
        cr_expect_eq(M(c, VALUE), 520000);
        cr_expect_eq(M(pub(&h, "COMMODITY|4401|TOTAL|0"), VALUE), 7000);
        cr_expect_eq(M(pub(&h, "GATE|MONGCAI|MINUTE|%lld", (long long)minute(T0)), DECL), 1);
        cr_expect_eq(M(pub(&h, "GATE|MONGCAI|HOUR|%lld", (long long)hour(T0)), DECL), 1);
        cr_expect_eq(M(pub(&h, "GATE|MONGCAI|DAY|%lld", (long long)day(T0)), DECL), 1);
        h_free(&h);
}

Test(semantics, duplicate_new_counts_once) {
        harness_t h;
        h_init(&h, NULL, 4);
        ev_t e = {1, "300000000002", 0, DS_KIND_NEW, T0, "HUUNGHI", DS_FLOW_IMPORT, NULL, NULL, {"84295200:900000:20000000"}};
        h_event(&h, &e);
        h_event(&h, &e);
        cr_expect_eq(h.outcome, DS_EV_IGNORED_STALE);
        h_cycle(&h);
        cr_expect_eq(M(pub(&h, "GATE|HUUNGHI|TOTAL|0"), DECL), 1);
        cr_expect_eq(M(pub(&h, "GATE|HUUNGHI|TOTAL|0"), IMPORT), 900000);
        h_free(&h);
}

Test(semantics, amend_replaces_previous_contribution) {
        harness_t h;
        h_init(&h, NULL, 4);
        h_event(&h, &(ev_t){0, "300000000003", 0, DS_KIND_NEW, T0, "TANTHANH", DS_FLOW_IMPORT, NULL, NULL,
                            {"54075200:10000:1000", "60063290:20000:2000"}});
        h_cycle(&h);
        h_event(&h, &(ev_t){0, "300000000003", 1, DS_KIND_AMEND, T0 + 5 * MIN, "TANTHANH", DS_FLOW_IMPORT, NULL, NULL,
                            {"54075200:15000:1500"}});
        cr_expect_eq(h.outcome, DS_EV_APPLIED_AMEND);
        h_cycle(&h);
        json_t *g = pub(&h, "GATE|TANTHANH|TOTAL|0");
        cr_expect_eq(M(g, DECL), 1);
        cr_expect_eq(M(g, ITEMS), 1);
        cr_expect_eq(M(g, VALUE), 15000);
        cr_expect_eq(M(pub(&h, "COMMODITY|6006|TOTAL|0"), DECL), 0, "the dropped line's heading is retracted");
        cr_expect_eq(M(pub(&h, "COMMODITY|5407|TOTAL|0"), VALUE), 15000);
        /* the amendment's own time decides its windows */
        cr_expect_eq(M(pub(&h, "GATE|TANTHANH|MINUTE|%lld", (long long)minute(T0)), DECL), 0);
        cr_expect_eq(M(pub(&h, "GATE|TANTHANH|MINUTE|%lld", (long long)minute(T0 + 5 * MIN)), DECL), 1);
        h_free(&h);
}

Test(semantics, amend_across_gates_moves_every_row) {
        harness_t h;
        h_init(&h, NULL, 4);
        h_event(&h, &(ev_t){2, "300000000004", 0, DS_KIND_NEW, T0, "MONGCAI", DS_FLOW_EXPORT, NULL, "14C-123.45",
                            {"08106000:300000:7000000"}});
        h_cycle(&h);
        h_event(&h, &(ev_t){2, "300000000004", 1, DS_KIND_AMEND, T0 + 20 * MIN, "BACLUAN2", DS_FLOW_EXPORT, NULL,
                            "14C-123.45", {"08106000:300000:7000000"}});
        h_cycle(&h);
        json_t *old = pub(&h, "GATE|MONGCAI|TOTAL|0"), *new = pub(&h, "GATE|BACLUAN2|TOTAL|0");
        for (int i = 0; i < 8; i++)
                cr_expect_eq(M(old, i), 0, "MONGCAI measure %d not retracted", i);
        cr_expect_eq(M(new, DECL), 1);
        cr_expect_eq(M(new, VALUE), 300000);
        cr_expect_eq(M(pub(&h, "GATE|MONGCAI|DAY|%lld", (long long)day(T0)), DECL), 0);
        cr_expect_eq(M(pub(&h, "GATE|BACLUAN2|DAY|%lld", (long long)day(T0)), DECL), 1);
        cr_expect_eq(M(pub(&h, "COMMODITY|0810|TOTAL|0"), DECL), 1, "the heading row is unchanged");
        h_free(&h);
}

Test(semantics, amend_across_days_moves_the_day_window) {
        harness_t h;
        h_init(&h, NULL, 4);
        /* 23:50 local on day D, amended at 00:10 local on D+1 */
        int64_t before = day(T0) + DAY - 10 * MIN, after = day(T0) + DAY + 10 * MIN;
        h_event(&h, &(ev_t){3, "300000000005", 0, DS_KIND_NEW, before, "CHIMA", DS_FLOW_IMPORT, NULL, NULL,
                            {"31052000:40000:10000000"}});
        h_cycle(&h);
        h_event(&h, &(ev_t){3, "300000000005", 1, DS_KIND_AMEND, after, "CHIMA", DS_FLOW_IMPORT, NULL, NULL,
                            {"31052000:42000:10500000"}});
        h_cycle(&h);
        cr_expect_eq(M(pub(&h, "GATE|CHIMA|DAY|%lld", (long long)day(before)), DECL), 0);
        cr_expect_eq(M(pub(&h, "GATE|CHIMA|DAY|%lld", (long long)day(after)), DECL), 1);
        cr_expect_eq(M(pub(&h, "GATE|CHIMA|DAY|%lld", (long long)day(after)), VALUE), 42000);
        cr_expect_eq(M(pub(&h, "GATE|CHIMA|TOTAL|0"), VALUE), 42000);
        h_free(&h);
}

Test(semantics, cancel_retracts_and_later_events_are_ignored) {
        harness_t h;
        h_init(&h, NULL, 4);
        h_event(&h, &(ev_t){0, "300000000006", 0, DS_KIND_NEW, T0, "HOANHMO", DS_FLOW_EXPORT, NULL, NULL,
                            {"44012200:5000:7000000"}});
        h_cycle(&h);
        h_event(&h, &(ev_t){0, "300000000006", 1, DS_KIND_CANCEL, T0 + HOUR, "HOANHMO", DS_FLOW_EXPORT, NULL, NULL,
                            {"44012200:5000:7000000"}});
        cr_expect_eq(h.outcome, DS_EV_APPLIED_CANCEL);
        h_event(&h, &(ev_t){0, "300000000006", 2, DS_KIND_AMEND, T0 + 2 * HOUR, "HOANHMO", DS_FLOW_EXPORT, NULL,
                            NULL, {"44012200:9000:7000000"}});
        cr_expect_eq(h.outcome, DS_EV_IGNORED_CANCELLED);
        h_cycle(&h);
        cr_expect_eq(M(pub(&h, "GATE|HOANHMO|TOTAL|0"), DECL), 0);
        cr_expect_eq(M(pub(&h, "GATE|HOANHMO|TOTAL|0"), VALUE), 0);
        cr_expect_null(pub(&h, "GATE|HOANHMO|HOUR|%lld", (long long)hour(T0 + 2 * HOUR)),
                       "the ignored amendment created no row");
        h_free(&h);
}

Test(semantics, stale_amend_is_ignored) {
        harness_t h;
        h_init(&h, NULL, 4);
        h_event(&h, &(ev_t){1, "300000000007", 0, DS_KIND_NEW, T0, "DONGDANG", DS_FLOW_IMPORT, NULL, NULL,
                            {"72085100:100:1000"}});
        h_event(&h, &(ev_t){1, "300000000007", 2, DS_KIND_AMEND, T0 + 2 * MIN, "DONGDANG", DS_FLOW_IMPORT, NULL,
                            NULL, {"72085100:300:3000"}});
        /* version 1 arrives after version 2 */
        h_event(&h, &(ev_t){1, "300000000007", 1, DS_KIND_AMEND, T0 + MIN, "DONGDANG", DS_FLOW_IMPORT, NULL, NULL,
                            {"72085100:200:2000"}});
        cr_expect_eq(h.outcome, DS_EV_IGNORED_STALE);
        h_cycle(&h);
        cr_expect_eq(M(pub(&h, "GATE|DONGDANG|TOTAL|0"), VALUE), 300);
        cr_expect_eq(M(pub(&h, "GATE|DONGDANG|TOTAL|0"), DECL), 1);
        h_free(&h);
}

Test(semantics, amend_for_unknown_id_is_applied_as_current_state) {
        harness_t h;
        h_init(&h, NULL, 4);
        h_event(&h, &(ev_t){2, "100000000008", 3, DS_KIND_AMEND, T0, "COCNAM", DS_FLOW_IMPORT, NULL, NULL,
                            {"08081000:1234:5678"}});
        cr_expect_eq(h.outcome, DS_EV_UPSERT_UNKNOWN);
        /* a lower version arriving later changes nothing */
        h_event(&h, &(ev_t){2, "100000000008", 0, DS_KIND_NEW, T0 - MIN, "COCNAM", DS_FLOW_IMPORT, NULL, NULL,
                            {"08081000:1000:5000"}});
        cr_expect_eq(h.outcome, DS_EV_IGNORED_STALE);
        h_cycle(&h);
        cr_expect_eq(M(pub(&h, "GATE|COCNAM|TOTAL|0"), DECL), 1);
        cr_expect_eq(M(pub(&h, "GATE|COCNAM|TOTAL|0"), VALUE), 1234);
        h_free(&h);
}

Test(semantics, cancel_for_unknown_id_blocks_later_events) {
        harness_t h;
        h_init(&h, NULL, 4);
        h_event(&h, &(ev_t){3, "100000000009", 1, DS_KIND_CANCEL, T0, "COCNAM", DS_FLOW_IMPORT, NULL, NULL,
                            {"08081000:1234:5678"}});
        cr_expect_eq(h.outcome, DS_EV_UPSERT_UNKNOWN);
        h_event(&h, &(ev_t){3, "100000000009", 0, DS_KIND_NEW, T0 - MIN, "COCNAM", DS_FLOW_IMPORT, NULL, NULL,
                            {"08081000:1000:5000"}});
        cr_expect_eq(h.outcome, DS_EV_IGNORED_CANCELLED);
        h_cycle(&h);
        cr_expect_null(pub(&h, "GATE|COCNAM|TOTAL|0"), "nothing was ever added");
        h_free(&h);
}

/* ------------------------------------------------------------------------ */
/* Windows, lateness, retention                                              */

Test(semantics, utc7_midnight_edge) {
        harness_t h;
        h_init(&h, NULL, 4);
        /* 2024-01-01T16:59:59.999Z is 23:59:59.999 on Jan 1 in Vietnam; one ms later it is Jan 2 */
        int64_t last_ms = 1704128399999LL, first_ms = 1704128400000LL;
        int64_t jan1 = 1704042000000LL; /* 2024-01-01T00:00+07:00 = 2023-12-31T17:00Z */
        int64_t jan2 = 1704128400000LL; /* 2024-01-02T00:00+07:00 */
        h_event(&h, &(ev_t){0, "300000000010", 0, DS_KIND_NEW, last_ms, "MONGCAI", DS_FLOW_EXPORT, NULL, NULL,
                            {"08106000:100:100"}});
        h_event(&h, &(ev_t){0, "300000000011", 0, DS_KIND_NEW, first_ms, "MONGCAI", DS_FLOW_EXPORT, NULL, NULL,
                            {"08106000:200:200"}});
        h_cycle(&h);
        cr_expect_eq(M(pub(&h, "GATE|MONGCAI|DAY|%lld", (long long)jan1), VALUE), 100);
        cr_expect_eq(M(pub(&h, "GATE|MONGCAI|DAY|%lld", (long long)jan2), VALUE), 200);
        /* not UTC days: there is no row at UTC midnight */
        cr_expect_null(pub(&h, "GATE|MONGCAI|DAY|%lld", 1704067200000LL));
        /* hours are the same in UTC and local time */
        cr_expect_eq(M(pub(&h, "GATE|MONGCAI|HOUR|%lld", 1704124800000LL), VALUE), 100);
        cr_expect_eq(M(pub(&h, "GATE|MONGCAI|HOUR|%lld", 1704128400000LL), VALUE), 200);
        h_free(&h);
}

Test(semantics, late_event_counts_in_coarser_windows_only) {
        harness_t h;
        h_init(&h, NULL, 4);
        h_event(&h, &(ev_t){1, "300000000012", 0, DS_KIND_NEW, T0, "HUUNGHI", DS_FLOW_EXPORT, NULL, NULL,
                            {"08106000:100:100"}});
        h_cycle(&h);
        /* the watermark moves 4 hours on: T0's minute (3 h retention) closes, its hour (3 days) does not */
        h_event(&h, &(ev_t){1, "300000000013", 0, DS_KIND_NEW, T0 + 4 * HOUR, "HUUNGHI", DS_FLOW_EXPORT, NULL, NULL,
                            {"08106000:1:1"}});
        h_event(&h, &(ev_t){1, "300000000014", 0, DS_KIND_NEW, T0 + 10, "HUUNGHI", DS_FLOW_EXPORT, NULL, NULL,
                            {"08106000:50:50"}});
        h_cycle(&h);
        cr_expect_eq(M(pub(&h, "GATE|HUUNGHI|MINUTE|%lld", (long long)minute(T0)), VALUE), 100,
                     "the minute is closed: its published value is final");
        cr_expect_eq(M(pub(&h, "GATE|HUUNGHI|HOUR|%lld", (long long)hour(T0)), VALUE), 150);
        cr_expect_eq(M(pub(&h, "GATE|HUUNGHI|DAY|%lld", (long long)day(T0)), VALUE), 151);
        cr_expect_eq(M(pub(&h, "GATE|HUUNGHI|TOTAL|0"), VALUE), 151);
        cr_expect_eq(h.ob.stats.late[DS_WIN_MINUTE], 1);
        cr_expect_eq(h.ob.stats.late[DS_WIN_HOUR], 0);
        h_free(&h);
}

Test(semantics, retraction_skips_closed_windows) {
        harness_t h;
        h_init(&h, NULL, 4);
        h_event(&h, &(ev_t){2, "300000000015", 0, DS_KIND_NEW, T0, "TANTHANH", DS_FLOW_EXPORT, NULL, NULL,
                            {"08106000:100:100"}});
        h_event(&h, &(ev_t){2, "300000000016", 0, DS_KIND_NEW, T0 + 4 * HOUR, "TANTHANH", DS_FLOW_EXPORT, NULL,
                            NULL, {"08106000:1:1"}});
        h_cycle(&h);
        /* amending the first declaration: its minute is closed and keeps the old value */
        h_event(&h, &(ev_t){2, "300000000015", 1, DS_KIND_AMEND, T0 + 4 * HOUR, "TANTHANH", DS_FLOW_EXPORT, NULL,
                            NULL, {"08106000:300:300"}});
        h_cycle(&h);
        cr_expect_eq(M(pub(&h, "GATE|TANTHANH|MINUTE|%lld", (long long)minute(T0)), VALUE), 100);
        cr_expect_eq(M(pub(&h, "GATE|TANTHANH|HOUR|%lld", (long long)hour(T0)), VALUE), 0);
        cr_expect_eq(M(pub(&h, "GATE|TANTHANH|TOTAL|0"), VALUE), 301);
        cr_expect_eq(h.ob.stats.late_retract[DS_WIN_MINUTE], 1);
        h_free(&h);
}

Test(semantics, ledger_forgets_past_retention_and_upserts) {
        ds_part_cfg_t cfg;
        ds_part_cfg_default(&cfg);
        cfg.ledger_retention_ms = DAY;
        harness_t h;
        h_init(&h, &cfg, 4);
        h_event(&h, &(ev_t){0, "300000000017", 0, DS_KIND_NEW, T0, "MONGCAI", DS_FLOW_EXPORT, NULL, NULL,
                            {"08106000:100:100"}});
        h_event(&h, &(ev_t){0, "300000000018", 0, DS_KIND_NEW, T0 + 2 * DAY, "MONGCAI", DS_FLOW_EXPORT, NULL, NULL,
                            {"08106000:1:1"}});
        h_event(&h, &(ev_t){0, "300000000017", 1, DS_KIND_AMEND, T0 + 2 * DAY, "MONGCAI", DS_FLOW_EXPORT, NULL,
                            NULL, {"08106000:300:300"}});
        cr_expect_eq(h.outcome, DS_EV_UPSERT_EXPIRED);
        h_cycle(&h);
        /* the forgotten version is not retracted: documented behaviour past retention */
        cr_expect_eq(M(pub(&h, "GATE|MONGCAI|TOTAL|0"), VALUE), 401);
        cr_expect_eq(M(pub(&h, "GATE|MONGCAI|TOTAL|0"), DECL), 3);
        h_free(&h);
}

Test(semantics, new_and_cancel_within_one_cycle_publish_nothing) {
        harness_t h;
        h_init(&h, NULL, 4);
        h_event(&h, &(ev_t){0, "300000000022", 0, DS_KIND_NEW, T0, "LUCLAM", DS_FLOW_EXPORT, NULL, NULL,
                            {"44012200:5000:7000000"}});
        h_event(&h, &(ev_t){0, "300000000022", 1, DS_KIND_CANCEL, T0 + MIN, "LUCLAM", DS_FLOW_EXPORT, NULL, NULL,
                            {"44012200:5000:7000000"}});
        h_cycle(&h);
        cr_expect_null(pub(&h, "GATE|LUCLAM|TOTAL|0"), "a row that nets to zero before any publish stays unpublished");
        h_free(&h);
}

Test(semantics, slow_partition_still_completes_a_window_fast_ones_closed) {
        harness_t h;
        h_init(&h, NULL, 4);
        h_event(&h, &(ev_t){0, "300000000019", 0, DS_KIND_NEW, T0, "MONGCAI", DS_FLOW_EXPORT, NULL, NULL,
                            {"08106000:100:100"}});
        h_event(&h, &(ev_t){0, "300000000020", 0, DS_KIND_NEW, T0 + 5 * HOUR, "MONGCAI", DS_FLOW_EXPORT, NULL, NULL,
                            {"08106000:1:1"}});
        h_cycle(&h); /* partition 0 closes T0's minute and evicts it */
        h_event(&h, &(ev_t){1, "300000000021", 0, DS_KIND_NEW, T0 + 10, "MONGCAI", DS_FLOW_EXPORT, NULL, NULL,
                            {"08106000:20:20"}});
        h_cycle(&h);
        cr_expect_eq(M(pub(&h, "GATE|MONGCAI|MINUTE|%lld", (long long)minute(T0)), VALUE), 120,
                     "partition 1's share joins partition 0's final share");
        h_free(&h);
}

Test(semantics, idle_partition_stops_holding_windows_open) {
        harness_t h;
        h_init(&h, NULL, 4);
        int64_t now = 1000000;
        h_cycle_at(&h, now); /* starts every partition's idle clock */
        for (int p = 0; p < NPARTS; p++) {
                char id[16];
                snprintf(id, sizeof(id), "30000000030%d", p);
                if (p != 3) /* partition 3 never gets an event */
                        h_event(&h, &(ev_t){p, id, 0, DS_KIND_NEW, T0 + 5 * HOUR, "MONGCAI", DS_FLOW_EXPORT, NULL,
                                            NULL, {"08106000:1:1"}});
        }
        h_event(&h, &(ev_t){0, "300000000310", 0, DS_KIND_NEW, T0, "MONGCAI", DS_FLOW_EXPORT, NULL, NULL,
                            {"08106000:100:100"}}); /* late for its minute in partition 0 */
        h_event(&h, &(ev_t){1, "300000000311", 0, DS_KIND_NEW, T0 + 5 * HOUR - 2 * HOUR, "MONGCAI", DS_FLOW_EXPORT,
                            NULL, NULL, {"08106000:10:10"}});
        h_cycle_at(&h, now + 1000);
        /* partition 3 has no event and is not idle yet: nothing is dropped globally */
        ds_publish_state_t st;
        ds_outbox_t *obs[1] = {&h.ob};
        ds_publish_state(obs, 1, &st);
        cr_expect_eq(st.wm_min, INT64_MIN);
        h_cycle_at(&h, now + h.cfg.idle_ms + 2000);
        ds_publish_state(obs, 1, &st);
        cr_expect_eq(st.wm_min, T0 + 5 * HOUR, "the idle partition no longer holds windows open");
        /* an event partition 3 now receives for a window closed everywhere else is too late */
        h_event(&h, &(ev_t){3, "300000000312", 0, DS_KIND_NEW, T0 + 5 * HOUR - 4 * HOUR, "MONGCAI", DS_FLOW_EXPORT,
                            NULL, NULL, {"08106000:7:7"}});
        h_cycle_at(&h, now + h.cfg.idle_ms + 3000);
        cr_expect_null(pub(&h, "GATE|MONGCAI|MINUTE|%lld", (long long)minute(T0 + HOUR)),
                       "closed everywhere: partition 3's late share does not reopen the minute");
        cr_expect_eq(M(pub(&h, "GATE|MONGCAI|HOUR|%lld", (long long)hour(T0 + HOUR)), VALUE), 7,
                     "the hour is still open everywhere");
        cr_expect_eq(M(pub(&h, "GATE|MONGCAI|TOTAL|0"), VALUE), 3 + 100 + 10 + 7, "TOTAL still counts it");
        h_free(&h);
}

Test(semantics, distinct_counts_per_gate_and_day) {
        harness_t h;
        h_init(&h, NULL, 4);
        const char *taxes[] = {"5700000001", "5700000002", "5700000003", "5700000001"};
        const char *plates[] = {"14C-111.11", "14C-111.11", NULL, "桂P12345"};
        for (int i = 0; i < 4; i++) {
                char id[16];
                snprintf(id, sizeof(id), "30000000010%d", i);
                h_event(&h, &(ev_t){i % NPARTS, id, 0, DS_KIND_NEW, T0 + i, "KM3HAIYEN", DS_FLOW_EXPORT, taxes[i],
                                    plates[i], {"08106000:100:100"}});
        }
        h_cycle(&h);
        json_t *r = pub(&h, "GATE|KM3HAIYEN|DAY|%lld", (long long)day(T0));
        cr_expect_eq(M(r, 8), 3, "three distinct declarants");
        cr_expect_eq(M(r, 9), 2, "two distinct vehicles");
        cr_expect_eq(M(pub(&h, "GATE|KM3HAIYEN|TOTAL|0"), 8), 0, "distinct counts are per day only");
        h_free(&h);
}

Test(semantics, top_headings_rank_by_value_with_ties_by_heading) {
        harness_t h;
        h_init(&h, NULL, 4);
        h_event(&h, &(ev_t){0, "300000000201", 0, DS_KIND_NEW, T0, "HUUNGHI", DS_FLOW_EXPORT, NULL, NULL,
                            {"08106000:500:1", "44012200:900:1", "27011200:500:1"}});
        h_event(&h, &(ev_t){1, "300000000202", 0, DS_KIND_NEW, T0, "HUUNGHI", DS_FLOW_EXPORT, NULL, NULL,
                            {"08106000:500:1"}});
        h_cycle(&h);
        char key[64];
        snprintf(key, sizeof(key), "HUUNGHI|DAY|%lld", (long long)day(T0));
        json_t *top = json_object_get(h.tops, key);
        cr_assert_eq(json_array_size(top), 3);
        cr_expect_str_eq(json_string_value(json_array_get(json_array_get(top, 0), 0)), "0810");
        cr_expect_eq(json_integer_value(json_array_get(json_array_get(top, 0), 1)), 1000);
        cr_expect_eq(json_integer_value(json_array_get(json_array_get(top, 0), 2)), 2);
        cr_expect_str_eq(json_string_value(json_array_get(json_array_get(top, 1), 0)), "4401");
        cr_expect_str_eq(json_string_value(json_array_get(json_array_get(top, 2), 0)), "2701");
        h_free(&h);
}

/* ------------------------------------------------------------------------ */
/* Property tests: random shuffled streams against the brute-force model     */

typedef struct rng {
        uint64_t s;
} rng_t;

static uint64_t rnd(rng_t *r) {
        r->s += 0x9e3779b97f4a7c15ULL;
        uint64_t z = r->s;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static uint32_t below(rng_t *r, uint32_t n) {
        return (uint32_t)(rnd(r) % n);
}

static const char *const pgates[] = {"MONGCAI", "BACLUAN2", "HUUNGHI", "TANTHANH", "CHIMA"};
static const char *const phs[] = {"08106000", "08109050", "44012200", "27011200", "84295200", "54075200", "03061721"};

typedef struct pev {
        ev_t e;
        char id[16];
        char items[8][40];
        char tax[16];
        char plate[16];
} pev_t;

/* Runs one random stream through the harness and the model; compares. */
static void property_run(uint64_t seed, int nids, int64_t span, const ds_part_cfg_t *cfg) {
        rng_t r = {seed};
        harness_t h;
        h_init(&h, cfg, 4);
        ds_truth_cfg_t tc;
        ds_truth_cfg_default(&tc);
        tc.minute_retention_ms = cfg->agg.win.retention_ms[DS_WIN_MINUTE];
        tc.hour_retention_ms = cfg->agg.win.retention_ms[DS_WIN_HOUR];
        tc.day_retention_ms = cfg->agg.win.retention_ms[DS_WIN_DAY];
        tc.top_retention_ms = cfg->agg.top_retention_ms;
        tc.ledger_retention_ms = cfg->ledger_retention_ms;
        ds_truth_t *truth = ds_truth_new(&tc);

        /* each id: NEW, then 0-3 more versions (amend or cancel), some repeated */
        int cap = nids * 8, n = 0;
        pev_t *evs = calloc((size_t)cap, sizeof(*evs));
        for (int i = 0; i < nids; i++) {
                int64_t t = T0 + (int64_t)(rnd(&r) % (uint64_t)span);
                int gate = (int)below(&r, 5), flow = (int)below(&r, 4), versions = 1 + (int)below(&r, 4);
                for (int v = 0; v < versions && n < cap - 1; v++) {
                        pev_t *p = &evs[n++];
                        snprintf(p->id, sizeof(p->id), "%012d", 100000 + i);
                        snprintf(p->tax, sizeof(p->tax), "57%08u", below(&r, 40));
                        snprintf(p->plate, sizeof(p->plate), "14C-%03u.00", below(&r, 60));
                        int kind = v == 0 ? DS_KIND_NEW : (below(&r, 5) == 0 ? DS_KIND_CANCEL : DS_KIND_AMEND);
                        if (below(&r, 10) == 0)
                                gate = (int)below(&r, 5); /* amend across gates */
                        int nitems = 1 + (int)below(&r, 4);
                        p->e = (ev_t){(int)(strtoull(p->id, NULL, 10) % NPARTS), p->id, v, kind, t, pgates[gate], flow,
                                      p->tax, below(&r, 4) ? p->plate : NULL, {NULL}};
                        for (int k = 0; k < nitems; k++) {
                                snprintf(p->items[k], sizeof(p->items[k]), "%s:%u:%u", phs[below(&r, 7)],
                                         below(&r, 100000), below(&r, 1000000));
                                p->e.items[k] = p->items[k];
                        }
                        t += (int64_t)(rnd(&r) % (uint64_t)(6 * HOUR)); /* next version later, maybe another day */
                        if (below(&r, 20) == 0 && n < cap - 1) {      /* redelivery */
                                evs[n] = *p;
                                evs[n].e.id = evs[n].id;
                                evs[n].e.tax = evs[n].tax;
                                evs[n].e.plate = p->e.plate ? evs[n].plate : NULL;
                                for (int k = 0; k < nitems; k++)
                                        evs[n].e.items[k] = evs[n].items[k];
                                n++;
                        }
                }
        }
        /* arrival order: by event time, then shuffled locally (late and out-of-order delivery) */
        for (int i = 1; i < n; i++)
                for (int j = i; j > 0 && evs[j - 1].e.at > evs[j].e.at; j--) {
                        pev_t tmp = evs[j];
                        evs[j] = evs[j - 1];
                        evs[j - 1] = tmp;
                }
        for (int i = 0; i < n; i++) {
                int j = i + (int)below(&r, 12);
                if (j < n && below(&r, 3) == 0) {
                        pev_t tmp = evs[i];
                        evs[i] = evs[j];
                        evs[j] = tmp;
                }
        }
        for (int i = 0; i < n; i++) {
                pev_t *p = &evs[i];
                /* re-point after the moves above */
                p->e.id = p->id;
                p->e.tax = p->tax;
                if (p->e.plate)
                        p->e.plate = p->plate;
                for (int k = 0; k < 8 && p->e.items[k]; k++)
                        p->e.items[k] = p->items[k];
                h_event(&h, &p->e);
                ds_truth_event_t te = {0};
                te.partition = p->e.partition;
                te.id = strtoull(p->id, NULL, 10);
                te.version = p->e.version;
                te.kind = p->e.kind;
                te.declared_at = p->e.at;
                te.gate = ds_gate_lookup(p->e.gate, (uint32_t)strlen(p->e.gate));
                te.flow = p->e.flow;
                te.declarant = ds_hash_bytes(p->tax, strlen(p->tax));
                te.vehicle = p->e.plate ? ds_hash_bytes(p->plate, strlen(p->plate)) : 0;
                for (int k = 0; k < 8 && p->e.items[k]; k++) {
                        unsigned hs;
                        long long v, w;
                        sscanf(p->items[k], "%u:%lld:%lld", &hs, &v, &w);
                        te.items[te.nitems++] = (ds_truth_item_t){hs, v, w};
                }
                cr_assert_eq(ds_truth_apply(truth, &te), 0);
                if (below(&r, 50) == 0)
                        h_cycle(&h);
        }
        h_cycle(&h);

        json_t *want = json_object();
        cr_assert_eq(ds_truth_write(truth, want), 0);
        const char *k;
        json_t *v;
        int diffs = 0, compared = 0;
        json_object_foreach(json_object_get(want, "rows"), k, v) {
                json_t *got = json_object_get(h.rows, k);
                int zero = 1;
                for (int i = 0; i < 8; i++)
                        zero &= json_integer_value(json_array_get(v, (size_t)i)) == 0;
                if (!got) {
                        if (!zero && diffs++ < 10)
                                cr_log_error("seed %llu: %s never published", (unsigned long long)seed, k);
                        continue;
                }
                compared++;
                for (int i = 0; i < 8; i++)
                        if (json_integer_value(json_array_get(got, (size_t)i)) !=
                                json_integer_value(json_array_get(v, (size_t)i)) &&
                            diffs++ < 10)
                                cr_log_error("seed %llu: %s measure %d: got %lld, model %lld", (unsigned long long)seed,
                                             k, i, (long long)json_integer_value(json_array_get(got, (size_t)i)),
                                             (long long)json_integer_value(json_array_get(v, (size_t)i)));
        }
        json_object_foreach(h.rows, k, v) if (!json_object_get(json_object_get(want, "rows"), k) && diffs++ < 10)
                cr_log_error("seed %llu: unexpected row %s", (unsigned long long)seed, k);
        /* small sets: the sparse sketch is exact */
        json_object_foreach(json_object_get(want, "distinct"), k, v) {
                char gate[32];
                long long d;
                sscanf(k, "%31[^|]|DAY|%lld", gate, &d);
                json_t *got = pub(&h, "GATE|%s|DAY|%lld", gate, d);
                cr_assert_not_null(got);
                cr_expect_eq(M(got, 8), json_integer_value(json_array_get(v, 0)), "seed %llu %s declarants",
                             (unsigned long long)seed, k);
                cr_expect_eq(M(got, 9), json_integer_value(json_array_get(v, 1)), "seed %llu %s vehicles",
                             (unsigned long long)seed, k);
        }
        json_object_foreach(json_object_get(want, "top"), k, v) {
                json_t *got = json_object_get(h.tops, k);
                cr_expect(json_equal(got, v), "seed %llu: top list %s differs", (unsigned long long)seed, k);
        }
        cr_expect_eq(diffs, 0, "seed %llu: %d differences from the model (%d rows compared)", (unsigned long long)seed,
                     diffs, compared);
        cr_expect_gt(compared, 50);
        json_decref(want);
        ds_truth_destroy(truth);
        free(evs);
        h_free(&h);
}

Test(property, random_streams_match_the_model_with_default_retention) {
        ds_part_cfg_t cfg;
        ds_part_cfg_default(&cfg);
        for (uint64_t seed = 1; seed <= 20; seed++)
                property_run(seed, 300, 3 * DAY, &cfg);
}

Test(property, random_streams_match_the_model_when_windows_close_fast) {
        /* short retentions: many windows close, retractions are skipped,
         * ledger entries are forgotten, partitions disagree on what is closed */
        ds_part_cfg_t cfg;
        ds_part_cfg_default(&cfg);
        cfg.agg.win.retention_ms[DS_WIN_MINUTE] = 10 * MIN;
        cfg.agg.win.retention_ms[DS_WIN_HOUR] = 2 * HOUR;
        cfg.agg.win.retention_ms[DS_WIN_DAY] = DAY;
        cfg.agg.top_retention_ms = 6 * HOUR;
        cfg.ledger_retention_ms = 12 * HOUR;
        for (uint64_t seed = 100; seed < 130; seed++)
                property_run(seed, 400, 4 * DAY, &cfg);
}

/* ------------------------------------------------------------------------ */
/* Rolling views                                                             */

#include "ds_rolling.h"

Test(rolling, views_sum_the_right_buckets) {
        ds_rows_t *rows = ds_rows_new(64);
        /* now: 2024-03-10 09:30:20 local (02:30:20 UTC) */
        int64_t now = 1710037820000LL;
        int64_t m = now / MIN * MIN, hr = now / HOUR * HOUR, d = day(now);
        struct {
                ds_window_t w;
                int64_t start;
                int64_t value;
        } b[] = {
            {DS_WIN_MINUTE, m, 1},                 /* in 15m, 1h */
            {DS_WIN_MINUTE, m - 14 * MIN, 2},      /* in 15m, 1h */
            {DS_WIN_MINUTE, m - 15 * MIN, 4},      /* in 1h only */
            {DS_WIN_MINUTE, m - 60 * MIN, 8},      /* in neither */
            {DS_WIN_HOUR, hr, 16},                 /* 24h */
            {DS_WIN_HOUR, hr - 23 * HOUR, 32},     /* 24h */
            {DS_WIN_HOUR, hr - 24 * HOUR, 64},     /* not */
            {DS_WIN_DAY, d, 128},                  /* today, mtd, ytd */
            {DS_WIN_DAY, d - 9 * DAY, 256},        /* March 1st: mtd, ytd */
            {DS_WIN_DAY, d - 10 * DAY, 512},       /* Feb 29th: ytd */
            {DS_WIN_DAY, 1704042000000LL, 1024},   /* Jan 1st 2024 local: ytd */
            {DS_WIN_DAY, 1704042000000LL - DAY, 2048}, /* Dec 31st 2023: none */
        };
        for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++)
                ds_rows_get(rows, ds_rowkey(DS_DIM_GATE, b[i].w, 0, b[i].start))->m.value = b[i].value;
        int64_t want[DS_VIEW__CNT] = {1 + 2, 1 + 2 + 4, 16 + 32, 128, 128 + 256, 128 + 256 + 512 + 1024};
        for (int v = 0; v < DS_VIEW__CNT; v++) {
                ds_measures_t out;
                ds_view_sum(rows, (ds_view_t)v, now, DS_DIM_GATE, 0, &out);
                cr_expect_eq(out.value, want[v], "%s: %lld, want %lld", ds_view_name((ds_view_t)v),
                             (long long)out.value, (long long)want[v]);
        }
        cr_expect_eq(ds_view_parse("month_to_date"), DS_VIEW_MONTH_TO_DATE);
        cr_expect_eq(ds_view_parse("yesterday"), -1);
        ds_rows_destroy(rows);
}
