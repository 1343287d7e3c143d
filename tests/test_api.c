/*
 * test_api.c - the HTTP API's answers without HTTP (ds_api.h over an offline
 * ds_live fed with encoded rows), the Prometheus writer, readiness rules and
 * librdkafka statistics parsing. tests/test_http.c checks the same over a
 * real server and pipeline.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <unistd.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds_api.h"
#include "ds_common.h"
#include "ds_config.h"
#include "ds_domain.h"
#include "ds_encode.h"
#include "ds_kstats.h"
#include "ds_live.h"
#include "ds_merge.h"
#include "ds_prom.h"
#include "ds_status.h"
#include "ds_wire.h"

#define MIN  60000LL
#define HOUR 3600000LL
#define DAY  86400000LL
/* 2026-11-23 00:00 in Vietnam (UTC+7) = 2026-11-22T17:00:00Z */
#define DAY0 1795366800000LL

static ds_config_t cfg;
static ds_live_t *lv;
static ds_api_ctx_t ctx;

static void setup(void) {
        ds_domain_init();
        ds_config_init(&cfg);
        char err[512];
        lv = ds_live_new_offline(&cfg, err, sizeof(err));
        cr_assert_not_null(lv, "%s", err);
        ctx = (ds_api_ctx_t){&cfg, lv};
        ds_status_reset();
}

static void teardown(void) {
        ds_live_stop(lv);
        ds_config_free(&cfg);
}

TestSuite(api, .init = setup, .fini = teardown);

static void total(ds_dim_t dim, const char *key, ds_window_t win, int64_t start, int64_t decl, int64_t value) {
        ds_buf_t b = {0};
        ds_wire_put_header(&b, 2);
        ds_measures_t m = {decl, decl * 2, value, decl * 1000, {value, 0, 0, 0}};
        ds_encode_total(&b, dim, key, win, start, &m, 7, 3, 1795400000000LL);
        ds_live_ingest(lv, b.p, b.len);
        ds_buf_free(&b);
}

/* GET path with "name=value" pairs; returns the parsed JSON (or NULL for
 * non-JSON answers) and the status. */
static json_t *get(const char *path, int *status, const char *const *kv) {
        ds_api_arg_t args[16];
        int n = 0;
        for (; kv && kv[2 * n]; n++)
                args[n] = (ds_api_arg_t){kv[2 * n], kv[2 * n + 1]};
        ds_api_resp_t r = {0};
        cr_assert_eq(ds_api_answer(&ctx, path, args, n, &r), 0, "%s is not an API path", path);
        *status = r.status;
        json_t *j = NULL;
        if (!strcmp(r.content_type, "application/json")) {
                json_error_t e;
                j = json_loadb((const char *)r.body.p, r.body.len, 0, &e);
                cr_assert_not_null(j, "%s: invalid JSON (%s): %.*s", path, e.text, (int)r.body.len, r.body.p);
        }
        ds_buf_free(&r.body);
        return j;
}

static void expect_400(const char *path, const char *param, const char *const *kv) {
        int st;
        json_t *j = get(path, &st, kv);
        cr_expect_eq(st, 400, "%s: status %d", path, st);
        cr_expect_str_eq(json_string_value(json_object_get(j, "parameter")), param);
        cr_expect(json_string_value(json_object_get(j, "error")) != NULL);
        json_decref(j);
}

Test(api, times_parse_as_milliseconds_or_rfc3339) {
        int64_t t;
        cr_assert_eq(ds_api_parse_time("1795366800000", &t), 0);
        cr_expect_eq(t, DAY0);
        cr_assert_eq(ds_api_parse_time("2026-11-22T17:00:00Z", &t), 0);
        cr_expect_eq(t, DAY0);
        cr_assert_eq(ds_api_parse_time("2026-11-23T00:00:00+07:00", &t), 0);
        cr_expect_eq(t, DAY0);
        cr_assert_eq(ds_api_parse_time("2026-11-22T16:30:00.250-00:30", &t), 0);
        cr_expect_eq(t, DAY0 + 250);
        const char *bad[] = {"",
                             "soon",
                             "2026-11-23",
                             "2026-11-23T00:00:00",
                             "2026-11-23T00:00:00+7",
                             "-5",
                             "12abc",
                             "2026-11-23T00:00:00Zjunk",
                             "2026-11-23T00:00:00+25:00"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                cr_expect_neq(ds_api_parse_time(bad[i], &t), 0, "\"%s\" parsed", bad[i]);
}

Test(api, customs_days_start_at_midnight_in_vietnam) {
        cr_expect_eq(ds_api_day_start(DAY0), DAY0);
        cr_expect_eq(ds_api_day_start(DAY0 + DAY - 1), DAY0);
        cr_expect_eq(ds_api_day_start(DAY0 - 1), DAY0 - DAY);
        cr_expect_eq(ds_api_day_start(DAY0 + 10 * HOUR), DAY0);
}

Test(api, totals_returns_rows_sorted_with_names_and_every_measure) {
        total(DS_DIM_GATE, "TANTHANH", DS_WIN_TOTAL, 0, 5, 500);
        total(DS_DIM_GATE, "MONGCAI", DS_WIN_TOTAL, 0, 3, 300);
        total(DS_DIM_GATE, "MONGCAI", DS_WIN_TOTAL, 0, 4, 400); /* a newer value replaces the row */
        total(DS_DIM_COMMODITY, "0810", DS_WIN_TOTAL, 0, 9, 900);
        int st;
        json_t *j = get("/api/totals", &st, (const char *const[]){"dimension", "gate", NULL});
        cr_assert_eq(st, 200);
        json_t *rows = json_object_get(j, "rows");
        cr_assert_eq(json_array_size(rows), 2);
        json_t *r0 = json_array_get(rows, 0);
        cr_expect_str_eq(json_string_value(json_object_get(r0, "key")), "MONGCAI");
        cr_expect_eq(json_integer_value(json_object_get(r0, "declarations")), 4);
        cr_expect_eq(json_integer_value(json_object_get(r0, "customs_value_usd_cents")), 400);
        cr_expect_eq(json_integer_value(json_object_get(r0, "export_value_usd_cents")), 400);
        cr_expect_eq(json_integer_value(json_object_get(r0, "distinct_declarants")), 7);
        for (int i = 0; i < DS_LIVE_MEASURES; i++)
                cr_expect(json_is_integer(json_object_get(r0, ds_live_measure_names[i])), "%s missing",
                          ds_live_measure_names[i]);
        const char *name = json_string_value(json_object_get(r0, "name"));
        cr_assert_not_null(name);
        cr_expect(strstr(name, "Móng Cái") != NULL, "gate name \"%s\"", name);
        cr_expect(json_is_false(json_object_get(j, "truncated")));
        json_decref(j);

        j = get("/api/totals", &st, (const char *const[]){"dimension", "gate", "window", "total", "limit", "1", NULL});
        cr_expect_eq(json_array_size(json_object_get(j, "rows")), 1);
        cr_expect(json_is_true(json_object_get(j, "truncated")));
        json_decref(j);

        j = get("/api/totals", &st, (const char *const[]){"dimension", "commodity", NULL});
        json_t *c0 = json_array_get(json_object_get(j, "rows"), 0);
        cr_expect_str_eq(json_string_value(json_object_get(c0, "key")), "0810");
        cr_expect(json_string_value(json_object_get(c0, "name_en")) != NULL, "a heading's English name");
        json_decref(j);
}

Test(api, windows_are_selected_by_start_and_key) {
        for (int i = 0; i < 5; i++) {
                total(DS_DIM_GATE, "MONGCAI", DS_WIN_MINUTE, DAY0 + 10 * HOUR + i * MIN, 1 + i, 100);
                total(DS_DIM_GATE, "HUUNGHI", DS_WIN_MINUTE, DAY0 + 10 * HOUR + i * MIN, 10, 1000);
        }
        int st;
        json_t *j = get("/api/totals", &st,
                        (const char *const[]){"dimension", "gate", "window", "minute", "from", "1795402860000", "to",
                                              "2026-11-23T10:03:00+07:00", "key", "MONGCAI", NULL});
        cr_assert_eq(st, 200);
        json_t *rows = json_object_get(j, "rows");
        cr_assert_eq(json_array_size(rows), 3, "minutes 1..3 of MONGCAI");
        for (size_t i = 0; i < 3; i++) {
                json_t *r = json_array_get(rows, i);
                cr_expect_eq(json_integer_value(json_object_get(r, "window_start")),
                             DAY0 + 10 * HOUR + (int64_t)(i + 1) * MIN);
                cr_expect_eq(json_integer_value(json_object_get(r, "declarations")), (int64_t)i + 2);
        }
        json_decref(j);
}

Test(api, rolling_sums_a_view_per_key_and_series_sums_over_keys) {
        int64_t now = DAY0 + 10 * HOUR;
        total(DS_DIM_GATE, "MONGCAI", DS_WIN_DAY, DAY0, 50, 5000);
        total(DS_DIM_GATE, "MONGCAI", DS_WIN_DAY, DAY0 - DAY, 70, 7000); /* yesterday */
        total(DS_DIM_GATE, "MONGCAI", DS_WIN_MINUTE, now, 1, 10);
        total(DS_DIM_GATE, "MONGCAI", DS_WIN_MINUTE, now - 59 * MIN, 2, 20);
        total(DS_DIM_GATE, "MONGCAI", DS_WIN_MINUTE, now - 60 * MIN, 4, 40); /* outside the hour */
        total(DS_DIM_GATE, "HUUNGHI", DS_WIN_MINUTE, now, 8, 80);
        char nows[32];
        snprintf(nows, sizeof(nows), "%lld", (long long)now);
        int st;
        json_t *j = get("/api/rolling", &st,
                        (const char *const[]){"view", "last_1h", "dimension", "gate", "now", nows, NULL});
        cr_assert_eq(st, 200);
        json_t *rows = json_object_get(j, "rows");
        cr_assert_eq(json_array_size(rows), 2);
        /* sorted by customs value, highest first */
        cr_expect_str_eq(json_string_value(json_object_get(json_array_get(rows, 0), "key")), "HUUNGHI");
        json_t *mc = json_array_get(rows, 1);
        cr_expect_eq(json_integer_value(json_object_get(mc, "declarations")), 3);
        cr_expect_eq(json_integer_value(json_object_get(mc, "customs_value_usd_cents")), 30);
        json_decref(j);

        j = get("/api/rolling", &st, (const char *const[]){"view", "today", "now", nows, NULL});
        rows = json_object_get(j, "rows");
        cr_assert_eq(json_array_size(rows), 1);
        cr_expect_eq(json_integer_value(json_object_get(json_array_get(rows, 0), "declarations")), 50);
        json_decref(j);

        char froms[32];
        snprintf(froms, sizeof(froms), "%lld", (long long)(now - 59 * MIN));
        j = get("/api/series", &st, (const char *const[]){"window", "minute", "from", froms, "to", nows, NULL});
        cr_assert_eq(st, 200);
        json_t *pts = json_object_get(j, "points");
        /* now - 59 min and now, summed over both gates at now */
        cr_assert_eq(json_array_size(pts), 2, "%zu points", json_array_size(pts));
        json_t *last = json_array_get(pts, 1);
        cr_expect_eq(json_integer_value(json_object_get(last, "t")), now);
        cr_expect_eq(json_integer_value(json_object_get(last, "declarations")), 9);
        json_decref(j);
}

Test(api, the_data_time_is_the_newest_minute_and_old_minutes_are_evicted) {
        int64_t now = DAY0 + 10 * HOUR;
        total(DS_DIM_GATE, "MONGCAI", DS_WIN_MINUTE, now - 3 * HOUR, 1, 1);
        total(DS_DIM_GATE, "MONGCAI", DS_WIN_MINUTE, now, 1, 1);
        ds_live_stats_t st;
        ds_live_stats(lv, &st);
        cr_expect_eq(st.latest_minute, now);
        cr_expect_eq(st.rows, 1, "the 3-hour-old minute is evicted (MINUTE rows are kept 2 hours)");
        cr_expect_eq(st.evicted, 1);
        ds_buf_t b = {0};
        ds_api_summary(&ctx, &b);
        json_t *j = json_loadb((const char *)b.p, b.len, 0, NULL);
        cr_assert_not_null(j);
        cr_expect_eq(json_integer_value(json_object_get(j, "now")), now);
        json_decref(j);
        ds_buf_free(&b);
}

Test(api, the_row_table_is_bounded) {
        ds_config_set(&cfg, "http.max.rows", "1000", "test", NULL, 0);
        for (int i = 0; i < 1200; i++)
                total(DS_DIM_GATE, "MONGCAI", DS_WIN_HOUR, DAY0 + i * HOUR / 1000 * 1000, 1, 1);
        ds_live_stats_t st;
        ds_live_stats(lv, &st);
        cr_expect_eq(st.rows, 1000);
        cr_expect_eq(st.dropped, 200);
}

Test(api, top_lists_are_answered_by_gate_and_day) {
        ds_buf_t b = {0};
        ds_wire_put_header(&b, 4);
        ds_top_entry_t e[2] = {{810, {3, 4, 900, 5000, {0}}}, {306, {2, 2, 500, 100, {0}}}};
        ds_encode_top(&b, "MONGCAI", DAY0, e, 2, 4, 1795400000000LL);
        ds_live_ingest(lv, b.p, b.len);
        ds_buf_free(&b);
        int st;
        json_t *j = get("/api/top", &st, (const char *const[]){"gate", "MONGCAI", "day", "1795370000000", NULL});
        cr_assert_eq(st, 200);
        cr_expect_eq(json_integer_value(json_object_get(j, "day")), DAY0);
        json_t *h = json_object_get(j, "headings");
        cr_assert_eq(json_array_size(h), 2);
        cr_expect_str_eq(json_string_value(json_object_get(json_array_get(h, 0), "heading")), "0810");
        cr_expect_eq(json_integer_value(json_object_get(json_array_get(h, 0), "rank")), 1);
        cr_expect_eq(json_integer_value(json_object_get(json_array_get(h, 0), "customs_value_usd_cents")), 900);
        json_decref(j);
        j = get("/api/top", &st, (const char *const[]){"gate", "MONGCAI", "day", "latest", NULL});
        cr_expect_eq(json_array_size(json_object_get(j, "headings")), 2);
        json_decref(j);
        j = get("/api/top", &st, (const char *const[]){"gate", "HUUNGHI", NULL});
        cr_expect_eq(st, 200);
        cr_expect_eq(json_array_size(json_object_get(j, "headings")), 0, "no list: an empty one");
        json_decref(j);
}

Test(api, bad_parameters_are_400_naming_the_parameter) {
        expect_400("/api/totals", "bogus", (const char *const[]){"bogus", "1", NULL});
        expect_400("/api/totals", "window", (const char *const[]){"window", "week", NULL});
        expect_400("/api/totals", "dimension", (const char *const[]){"dimension", "province", NULL});
        expect_400("/api/totals", "from", (const char *const[]){"window", "minute", "from", "yesterday", NULL});
        expect_400("/api/totals", "limit", (const char *const[]){"limit", "0", NULL});
        expect_400("/api/totals", "limit", (const char *const[]){"limit", "100001", NULL});
        expect_400("/api/totals", "from",
                   (const char *const[]){"window", "minute", "from", "1795402800000", "to", "1795402700000", NULL});
        expect_400("/api/rolling", "view", (const char *const[]){"view", "this_week", NULL});
        expect_400("/api/rolling", "now", (const char *const[]){"now", "2026-13-45T00:00:00Z", NULL});
        expect_400("/api/series", "window", (const char *const[]){"window", "total", NULL});
        expect_400("/api/series", "key", (const char *const[]){"key", "MONGCAI", NULL});
        expect_400("/api/series", "from", (const char *const[]){"from", "0", "to", "1795402800000", NULL});
        expect_400("/api/top", "gate", NULL);
        expect_400("/api/top", "gate", (const char *const[]){"gate", "NOWHERE", NULL});
        expect_400("/api/top", "day", (const char *const[]){"gate", "MONGCAI", "day", "tomorrow", NULL});
        expect_400("/api/summary", "x", (const char *const[]){"x", "1", NULL});
        int st;
        json_t *j = get("/api/nothing", &st, NULL);
        cr_expect_eq(st, 404);
        json_decref(j);
        ds_api_resp_t r = {0};
        cr_expect_eq(ds_api_answer(&ctx, "/index.html", NULL, 0, &r), -1, "static files are not the API's");
}

Test(api, readiness_follows_assignment_restore_lag_and_merge) {
        ds_status_snap_t s;
        memset(&s, 0, sizeof(s));
        s.processing = 1;
        ds_status_ready(&s, 0);
        cr_expect_eq(s.ready, 0);
        cr_expect(strstr(s.not_ready, "assign") != NULL, "%s", s.not_ready);
        s.assigned_once = 1;
        s.restoring = 1;
        ds_status_ready(&s, 0);
        cr_expect(!s.ready && strstr(s.not_ready, "restoring"), "%s", s.not_ready);
        s.restoring = 0;
        s.lag = 5000;
        ds_status_ready(&s, 0);
        cr_expect(s.ready, "lag does not count with ready.max.lag 0");
        ds_status_ready(&s, 1000);
        cr_expect(!s.ready && strstr(s.not_ready, "ready.max.lag"), "%s", s.not_ready);
        s.lag = 10;
        s.merging = 1;
        s.merge.assigned_once = 1;
        s.merge.rebuild_lag = 42;
        ds_status_ready(&s, 1000);
        cr_expect(!s.ready && strstr(s.not_ready, "42"), "%s", s.not_ready);
        s.merge.ready = 1;
        ds_status_ready(&s, 1000);
        cr_expect(s.ready);
        s.fatal = 1;
        ds_status_ready(&s, 1000);
        cr_expect(!s.ready);

        /* /readyz follows the published snapshot; stopping makes it 503 */
        s.fatal = 0;
        ds_status_ready(&s, 1000);
        ds_status_publish(&s);
        int st;
        json_t *j = get("/readyz", &st, NULL);
        cr_expect_eq(st, 200);
        json_decref(j);
        /* a server whose reader of the totals did not start answers no row request */
        ctx.live = NULL;
        j = get("/readyz", &st, NULL);
        cr_expect_eq(st, 503);
        cr_expect(strstr(json_string_value(json_object_get(j, "reason")), "reader of the published totals"));
        json_decref(j);
        ctx.live = lv;
        ds_status_stopping();
        j = get("/readyz", &st, NULL);
        cr_expect_eq(st, 503);
        cr_expect_str_eq(json_string_value(json_object_get(j, "reason")), "stopping");
        json_decref(j);
}

Test(api, rates_come_from_the_published_counters) {
        ds_status_snap_t s;
        memset(&s, 0, sizeof(s));
        s.processing = 1;
        s.c.consumed = 0;
        ds_status_publish(&s);
        usleep(200000);
        s.c.consumed = 1000;
        s.c.dead_lettered = 10;
        ds_status_publish(&s);
        ds_status_snap_t r;
        ds_status_read(&r);
        cr_expect(r.consumed_per_s > 3000 && r.consumed_per_s < 6000, "%.0f/s for 1000 in ~0.2 s", r.consumed_per_s);
        cr_expect(r.dead_lettered_per_s > 30 && r.dead_lettered_per_s < 60, "%.0f/s", r.dead_lettered_per_s);
        ds_status_snap_free(&r);
}

/* Every line of a Prometheus text page: a comment, or name{labels} value. */
static void check_exposition(const char *page) {
        const char *p = page;
        int samples = 0;
        while (*p) {
                const char *e = strchr(p, '\n');
                cr_assert_not_null(e, "the page must end with a newline");
                if (*p != '#') {
                        const char *q = p;
                        while (q < e && (isalnum((unsigned char)*q) || *q == '_' || *q == ':'))
                                q++;
                        cr_assert(q > p, "a sample without a name: %.*s", (int)(e - p), p);
                        if (*q == '{') {
                                const char *c = memchr(q, '}', (size_t)(e - q));
                                cr_assert_not_null(c, "unclosed labels: %.*s", (int)(e - p), p);
                                q = c + 1;
                        }
                        cr_assert_eq(*q, ' ', "no value: %.*s", (int)(e - p), p);
                        char *end;
                        strtod(q + 1, &end);
                        cr_assert(end == e || !strncmp(q + 1, "+Inf", 4) || !strncmp(q + 1, "NaN", 3),
                                  "bad value: %.*s", (int)(e - p), p);
                        samples++;
                }
                p = e + 1;
        }
        cr_assert_gt(samples, 10);
}

Test(api, metrics_are_prometheus_text_with_the_promised_names) {
        ds_status_snap_t s;
        memset(&s, 0, sizeof(s));
        s.processing = 1;
        s.merging = 1;
        s.c.consumed = 12;
        s.c.dlq[DS_DLQ_BAD_HS_CODE] = 2;
        ds_hist_observe(&s.c.decode, DS_HIST_NS, 180);
        ds_hist_observe(&s.cycle, DS_HIST_MS, 30000000);
        ds_status_part_t parts[1] = {{3, 1, 0, 100, 90, 150, 50, DAY0}};
        s.parts = parts;
        s.nparts = 1;
        s.nworkers = 2;
        ds_status_publish(&s);
        int st;
        ds_api_resp_t r = {0};
        cr_assert_eq(ds_api_answer(&ctx, "/metrics", NULL, 0, &r), 0);
        (void)st;
        cr_assert_eq(r.status, 200);
        ds_buf_put(&r.body, "", 1);
        const char *page = (const char *)r.body.p;
        check_exposition(page);
        const char *want[] = {"declstream_consumed_messages_total 12\n",
                              "declstream_dead_lettered_messages_total{reason=\"bad_hs_code\"} 2\n",
                              "declstream_consumer_lag_messages{partition=\"3\"} 50\n",
                              "declstream_decode_duration_seconds_bucket{le=\"2e-07\"} 1\n",
                              "declstream_decode_duration_seconds_count 1\n",
                              "declstream_cycle_duration_seconds_bucket{le=\"0.05\"} 1\n",
                              "declstream_worker_queue_messages{worker=\"1\"} 0\n",
                              "# TYPE declstream_published_rows_total counter\n",
                              "# TYPE declstream_commit_duration_seconds histogram\n",
                              "declstream_resident_memory_bytes ",
                              "declstream_ready ",
                              "declstream_http_rows "};
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
                cr_expect(strstr(page, want[i]) != NULL, "missing: %s", want[i]);
        ds_buf_free(&r.body);

        /* label values are escaped */
        ds_buf_t b = {0};
        ds_prom_u64(&b, "x_total", (const char *const[]){"client", "a\"b\\c\nd", NULL}, 1);
        ds_buf_put(&b, "", 1);
        cr_expect_str_eq((const char *)b.p, "x_total{client=\"a\\\"b\\\\c\\nd\"} 1\n");
        ds_buf_free(&b);
}

Test(api, librdkafka_statistics_become_metrics) {
        ds_kstats_reset();
        const char *doc =
                "{\"name\":\"rdkafka#consumer-1\",\"client_id\":\"declstream\",\"type\":\"consumer\","
                "\"ts\":1,\"time\":1,\"replyq\":3,\"msg_cnt\":5,\"msg_size\":100,\"tx\":10,\"rx\":20,"
                "\"tx_bytes\":1000,\"rx_bytes\":2000,\"brokers\":{\"localhost:9092/1\":{\"name\":"
                "\"localhost:9092/1\",\"nodeid\":1,\"state\":\"UP\",\"tx\":10,\"rx\":20,\"rtt\":{\"avg\":1500,"
                "\"p99\":4000}}},\"cgrp\":{\"state\":\"up\",\"rebalance_cnt\":2}}";
        cr_assert_eq(ds_kstats_ingest(doc, strlen(doc)), 0);
        cr_expect_neq(ds_kstats_ingest("not json", 8), 0);
        ds_buf_t b = {0};
        ds_kstats_render(&b);
        ds_buf_put(&b, "", 1);
        const char *page = (const char *)b.p;
        cr_expect(strstr(page, "declstream_rdkafka_replyq_events{client=\"rdkafka#consumer-1\"") != NULL, "%s", page);
        cr_expect(strstr(page, "rdkafka#consumer-1") != NULL);
        ds_buf_free(&b);
        ds_kstats_reset();
}
