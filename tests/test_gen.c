/*
 * test_gen.c - the generator: determinism, valid and bad messages, event
 * times, and its truth file checked against totals recomputed here from the
 * messages themselves (decoded and validated, summed with the test's own
 * arithmetic).
 */
#include <criterion/criterion.h>
#include <unistd.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds_codec.h"
#include "ds_common.h"
#include "ds_domain.h"
#include "ds_gen.h"
#include "ds_reason.h"
#include "ds_schemas.h"
#include "ds_testutil.h"
#include "ds_validate.h"
#include "ds_wire.h"

#define START 1732294800000LL /* 2024-11-23 00:00 local (17:00 UTC the day before) */
#define DAY 86400000LL
#define TZ (7 * 3600000LL)

static ds_schemas_t *schemas;

static void setup(void) {
        char err[512];
        ds_domain_init();
        schemas = ds_schemas_load(DS_SOURCE_DIR "/schemas", err, sizeof(err));
        cr_assert_not_null(schemas, "%s", err);
}

static void teardown(void) {
        ds_schemas_destroy(schemas);
}

TestSuite(gen, .init = setup, .fini = teardown, .timeout = 120);

static ds_gen_t *gen(ds_gen_opts_t *o) {
        char err[256];
        ds_gen_t *g = ds_gen_new(o, err, sizeof(err));
        cr_assert_not_null(g, "ds_gen_new: %s", err);
        return g;
}

static void opts(ds_gen_opts_t *o, uint64_t seed, uint64_t count) {
        ds_gen_opts_default(o);
        o->seed = seed;
        o->count = count;
        o->start_ms = START;
        o->span_ms = DAY;
}

/* What declstream would make of a message: the first reason it fails, or
 * NONE with the decoded declaration and its contribution. */
static ds_dlq_reason_t classify(const ds_gen_msg_t *m, ds_decl_t *d, ds_contrib_t *c, int heading_digits) {
        uint32_t id;
        const uint8_t *body;
        size_t len;
        ds_dlq_reason_t r = ds_wire_parse(m->value, m->value_len, &id, &body, &len);
        if (r)
                return r;
        const ds_codec_t *codec = ds_schemas_codec(schemas, id, &r);
        if (!codec)
                return r;
        if ((r = ds_codec_decode(codec, body, len, d)))
                return r;
        return ds_validate(d, heading_digits, c);
}

/* ---- determinism ---------------------------------------------------------- */

Test(gen, same_seed_gives_identical_bytes) {
        ds_gen_opts_t o;
        opts(&o, 20261123, 12000);
        o.bad_rate = 0.05;
        o.amend_rate = 0.2;
        o.cancel_rate = 0.05;
        o.dup_rate = 0.02;
        o.late_rate = 0.05;
        o.partitions = 6;
        ds_gen_t *a = gen(&o), *b = gen(&o);
        for (int i = 0; i < 10000; i++) {
                ds_gen_msg_t x, y;
                cr_assert_eq(ds_gen_next(a, -1, &x), 1);
                cr_assert_eq(ds_gen_next(b, -1, &y), 1);
                cr_assert_eq(x.value_len, y.value_len, "message %d", i);
                if (x.value_len)
                        cr_assert_arr_eq(x.value, y.value, x.value_len, "message %d", i);
                cr_assert_eq(x.key_len, y.key_len);
                cr_assert_arr_eq(x.key, y.key, x.key_len, "message %d", i);
                cr_assert_eq(x.bad, y.bad);
                cr_assert_eq(x.kind, y.kind);
                cr_assert_eq(x.declared_at, y.declared_at);
                cr_assert_eq(x.partition, y.partition);
        }
        cr_assert_eq(ds_gen_made(a), 10000);
        cr_assert_eq(ds_gen_bad(a), ds_gen_bad(b));
        ds_gen_destroy(a);
        ds_gen_destroy(b);
}

Test(gen, different_seed_gives_different_messages) {
        ds_gen_opts_t o;
        opts(&o, 1, 1000);
        ds_gen_t *a = gen(&o);
        o.seed = 2;
        ds_gen_t *b = gen(&o);
        int same = 0;
        for (int i = 0; i < 1000; i++) {
                ds_gen_msg_t x, y;
                cr_assert_eq(ds_gen_next(a, -1, &x), 1);
                cr_assert_eq(ds_gen_next(b, -1, &y), 1);
                same += x.value_len == y.value_len && !memcmp(x.value, y.value, x.value_len);
        }
        cr_assert_eq(same, 0, "%d of 1000 messages identical across seeds", same);
        ds_gen_destroy(a);
        ds_gen_destroy(b);
}

/* ---- valid and bad messages ------------------------------------------------------ */

Test(gen, bad_rate_zero_gives_only_valid_messages) {
        ds_gen_opts_t o;
        opts(&o, 7, 3000);
        o.amend_rate = 0.3;
        o.cancel_rate = 0.1;
        o.dup_rate = 0.05;
        o.late_rate = 0.1;
        o.partitions = 4;
        ds_gen_t *g = gen(&o);
        static ds_decl_t d;
        static ds_contrib_t c;
        ds_gen_msg_t m;
        int n = 0, kinds[DS_KIND__CNT] = {0};
        while (ds_gen_next(g, -1, &m)) {
                cr_assert_eq(m.bad, DS_DLQ_NONE);
                ds_dlq_reason_t r = classify(&m, &d, &c, 4);
                cr_assert_eq(r, DS_DLQ_NONE, "message %d rejected: %s", n, ds_dlq_code(r));
                cr_assert_eq(d.kind, m.kind, "message %d", n);
                cr_assert_eq(d.declared_at, m.declared_at, "message %d", n);
                cr_assert_eq(m.key_len, 12);
                cr_assert_arr_eq(m.key, d.declaration_id.p, 12, "the key is the declaration id");
                cr_assert(m.partition >= 0 && m.partition < 4);
                kinds[d.kind]++;
                n++;
        }
        cr_assert_geq(n, 3000, "count mode made %d messages", n);
        cr_assert_geq(kinds[DS_KIND_NEW], 3000); /* and redeliveries */
        cr_assert_gt(kinds[DS_KIND_AMEND], 0);
        cr_assert_gt(kinds[DS_KIND_CANCEL], 0);
        ds_gen_destroy(g);
}

/* 34 gates from a gates file, 50 in all: the generator draws from every
 * one, by the file's weight column or, without one, as busy as the average
 * compiled-in gate; the messages validate. */
Test(gen, a_gates_file_adds_gates_the_generator_draws_from_by_weight) {
        char path[] = "/tmp/ds-test-gates-XXXXXX", err[512] = "";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        close(fd);
        cr_assert_eq(ds_write_gates_file(path, "gate_code,weight,customs_office_prefix", 34, "50,11", ",11"), 0);
        cr_assert_eq(ds_domain_add_gates_file(path, err, sizeof(err)), 34, "%s", err);
        unlink(path);
        cr_assert_eq(ds_gate_count(), 50);
        ds_gen_opts_t o;
        opts(&o, 11, 40000);
        o.amend_rate = o.cancel_rate = o.dup_rate = o.late_rate = 0;
        ds_gen_t *g = gen(&o);
        static ds_decl_t d;
        static ds_contrib_t c;
        ds_gen_msg_t m;
        int per_gate[50] = {0}, n = 0;
        while (ds_gen_next(g, -1, &m)) {
                ds_dlq_reason_t r = classify(&m, &d, &c, 4);
                cr_assert_eq(r, DS_DLQ_NONE, "message %d rejected: %s", n, ds_dlq_code(r));
                cr_assert_lt(c.gate, 50);
                per_gate[c.gate]++;
                n++;
        }
        /* weights: compiled-in 100 in all (HUUNGHI 18), XG01 50, 33 others 6.25 each */
        double total = 100 + 50 + 33 * 6.25;
        int xg01 = ds_gate_lookup("XG01", 4), huunghi = ds_gate_lookup("HUUNGHI", 7);
        cr_expect(per_gate[xg01] > 0.8 * n * 50 / total && per_gate[xg01] < 1.2 * n * 50 / total, "XG01: %d of %d",
                  per_gate[xg01], n);
        cr_expect(per_gate[huunghi] > 0.8 * n * 18 / total && per_gate[huunghi] < 1.2 * n * 18 / total,
                  "HUUNGHI: %d of %d", per_gate[huunghi], n);
        for (int i = 17; i < 50; i++)
                cr_expect(per_gate[i] > 0.6 * n * 6.25 / total && per_gate[i] < 1.4 * n * 6.25 / total, "%s: %d of %d",
                          ds_gate(i)->code, per_gate[i], n);
        ds_gen_destroy(g);
}

Test(gen, bad_rate_one_gives_each_message_exactly_its_reason) {
        ds_gen_opts_t o;
        opts(&o, 8, 4000);
        o.bad_rate = 1;
        ds_gen_t *g = gen(&o);
        static ds_decl_t d;
        static ds_contrib_t c;
        int seen[DS_DLQ__CNT] = {0}, n = 0;
        ds_gen_msg_t m;
        while (ds_gen_next(g, -1, &m)) {
                cr_assert_neq(m.bad, DS_DLQ_NONE, "message %d is not bad", n);
                ds_dlq_reason_t r = classify(&m, &d, &c, 4);
                cr_assert_eq(r, m.bad, "message %d: the generator says %s, declstream finds %s", n, ds_dlq_code(m.bad),
                             ds_dlq_code(r));
                seen[m.bad]++;
                n++;
        }
        cr_assert_eq(n, 4000);
        cr_assert_eq(ds_gen_bad(g), 4000);
        const ds_dlq_reason_t kinds[] = {DS_DLQ_TRUNCATED,   DS_DLQ_BAD_MAGIC,       DS_DLQ_UNKNOWN_SCHEMA,
                                         DS_DLQ_BAD_ID,      DS_DLQ_UNKNOWN_GATE,    DS_DLQ_BAD_HS_CODE,
                                         DS_DLQ_NO_ITEMS,    DS_DLQ_NEGATIVE_WEIGHT, DS_DLQ_NEGATIVE_VALUE,
                                         DS_DLQ_EMPTY,       DS_DLQ_TRAILING_BYTES};
        int covered = 0;
        for (size_t k = 0; k < DS_ARRAY_LEN(kinds); k++) {
                cr_assert_gt(seen[kinds[k]], 100, "only %d messages of kind %s", seen[kinds[k]], ds_dlq_code(kinds[k]));
                covered += seen[kinds[k]];
        }
        cr_assert_eq(covered, n, "a kind outside the documented list");
        ds_gen_destroy(g);
}

/* ---- event times ------------------------------------------------------------------ */

Test(gen, count_mode_event_times_rise_within_the_span) {
        ds_gen_opts_t o;
        opts(&o, 9, 20000);
        o.span_ms = 3 * DAY + 17 * 60000;
        ds_gen_t *g = gen(&o);
        ds_gen_msg_t m;
        int64_t prev = INT64_MIN;
        int n = 0;
        while (ds_gen_next(g, -1, &m)) {
                cr_assert_geq(m.declared_at, prev, "message %d goes back in time", n);
                cr_assert_geq(m.declared_at, START, "message %d before the start", n);
                cr_assert_lt(m.declared_at, START + o.span_ms, "message %d after the span", n);
                prev = m.declared_at;
                n++;
        }
        cr_assert_eq(n, 20000, "count mode made %d messages", n);
        cr_assert_eq(ds_gen_next(g, -1, &m), 0, "the stream does not stay complete");
        /* the span is covered, not just its beginning */
        cr_assert_gt(prev, START + 3 * DAY - 6 * 3600000LL);
        ds_gen_destroy(g);
}

Test(gen, rate_mode_stamps_the_given_time) {
        ds_gen_opts_t o;
        ds_gen_opts_default(&o);
        o.seed = 10;
        ds_gen_t *g = gen(&o);
        ds_gen_msg_t m;
        for (int i = 0; i < 100; i++) {
                cr_assert_eq(ds_gen_next(g, START + i * 1000, &m), 1);
                cr_assert_eq(m.declared_at, START + i * 1000);
        }
        ds_gen_destroy(g);
}

/* ---- the truth ---------------------------------------------------------------------- */

static int64_t window_start(int w, int64_t t) {
        static const int64_t size[] = {0, 60000, 3600000, DAY};
        if (w == 0)
                return 0;
        int64_t shift = w == 3 ? TZ : 0; /* days are local days */
        int64_t x = t + shift, q = x / size[w];
        if (x % size[w] && x < 0)
                q--;
        return q * size[w] - shift;
}

static const char *const wname[] = {"TOTAL", "MINUTE", "HOUR", "DAY"};

/* Adds c (sign) to the test's own rows, a JSON object key -> [8 measures]. */
static void add_rows(json_t *rows, const ds_contrib_t *c, int windows) {
        for (int w = 0; w < (windows ? 4 : 1); w++) {
                int64_t start = window_start(w, c->declared_at);
                for (int64_t i = -1; i < (int64_t)c->nlines; i++) {
                        char k[96];
                        int64_t v[8] = {1, 0, 0, 0, 0, 0, 0, 0};
                        if (i < 0) {
                                snprintf(k, sizeof(k), "GATE|%s|%s|%" PRId64, ds_gate(c->gate)->code, wname[w], start);
                                v[1] = c->items, v[2] = c->value, v[3] = c->weight;
                        } else {
                                snprintf(k, sizeof(k), "COMMODITY|%04u|%s|%" PRId64, c->lines[i].heading, wname[w],
                                         start);
                                v[1] = c->lines[i].items, v[2] = c->lines[i].value, v[3] = c->lines[i].weight;
                        }
                        v[4 + c->flow] = v[2];
                        json_t *a = json_object_get(rows, k);
                        if (!a) {
                                a = json_pack("[IIIIIIII]", 0LL, 0LL, 0LL, 0LL, 0LL, 0LL, 0LL, 0LL);
                                json_object_set_new(rows, k, a);
                        }
                        for (int j = 0; j < 8; j++)
                                json_array_set_new(a, (size_t)j,
                                                   json_integer(json_integer_value(json_array_get(a, (size_t)j)) + v[j]));
                }
        }
}

static json_t *truth_of(const ds_gen_t *g) {
        char *buf = NULL, err[256];
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        cr_assert_eq(ds_gen_write_truth(g, f, err, sizeof(err)), 0, "%s", err);
        fclose(f);
        json_error_t je;
        json_t *t = json_loads(buf, 0, &je);
        cr_assert_not_null(t, "truth is not JSON: %s", je.text);
        free(buf);
        return t;
}

/* Every row of want is in got with the same measures; TOTAL-only when
 * totals_only, and then got's non-TOTAL rows are not looked at. */
static void assert_rows_equal(json_t *got, json_t *want, int totals_only) {
        const char *k;
        json_t *v;
        int n = 0;
        json_object_foreach(want, k, v) {
                json_t *g = json_object_get(got, k);
                cr_assert_not_null(g, "the truth lacks row %s", k);
                char *a = json_dumps(g, JSON_COMPACT), *b = json_dumps(v, JSON_COMPACT);
                cr_assert_str_eq(a, b, "row %s: truth %s, recomputed %s", k, a, b);
                free(a);
                free(b);
                n++;
        }
        json_object_foreach(got, k, v) {
                if (totals_only && !strstr(k, "|TOTAL|"))
                        continue;
                if (json_object_get(want, k))
                        continue;
                /* a row the messages do not explain must be all zero */
                for (size_t j = 0; j < json_array_size(v); j++)
                        cr_assert_eq(json_integer_value(json_array_get(v, j)), 0, "unexplained truth row %s", k);
        }
        cr_assert_gt(n, totals_only ? 20 : 200, "only %d rows compared", n);
}

Test(gen, truth_of_new_declarations_equals_totals_recomputed_from_the_messages) {
        ds_gen_opts_t o;
        opts(&o, 11, 6000);
        o.bad_rate = 0.1;
        o.partitions = 3;
        o.span_ms = 2 * DAY;
        ds_gen_t *g = gen(&o);
        json_t *rows = json_object(), *distinct_sets = json_object(), *cells = json_object();
        static ds_decl_t d;
        static ds_contrib_t c;
        int64_t bad_by[DS_DLQ__CNT] = {0}, valid = 0, made = 0;
        ds_gen_msg_t m;
        while (ds_gen_next(g, -1, &m)) {
                made++;
                ds_dlq_reason_t r = classify(&m, &d, &c, 4);
                cr_assert_eq(r, m.bad);
                if (r) {
                        bad_by[r]++;
                        continue;
                }
                valid++;
                add_rows(rows, &c, 1);
                /* distinct declarants and vehicles per gate and local day, as exact sets */
                char k[96], member[64];
                snprintf(k, sizeof(k), "%s|DAY|%" PRId64, ds_gate(c.gate)->code, window_start(3, c.declared_at));
                json_t *s = json_object_get(distinct_sets, k);
                if (!s) {
                        s = json_pack("{s{}s{}}", "d", "v");
                        json_object_set_new(distinct_sets, k, s);
                }
                snprintf(member, sizeof(member), "%.*s", (int)d.declarant_tax_id.len, d.declarant_tax_id.p);
                json_object_set_new(json_object_get(s, "d"), member, json_true());
                if (d.vehicle_plate.p) {
                        snprintf(member, sizeof(member), "%.*s", (int)d.vehicle_plate.len, d.vehicle_plate.p);
                        json_object_set_new(json_object_get(s, "v"), member, json_true());
                }
                /* heading cells per gate and day, for the top lists */
                json_t *cg = json_object_get(cells, k);
                if (!cg) {
                        cg = json_object();
                        json_object_set_new(cells, k, cg);
                }
                for (uint32_t i = 0; i < c.nlines; i++) {
                        char h[16];
                        snprintf(h, sizeof(h), "%04u", c.lines[i].heading);
                        json_t *a = json_object_get(cg, h);
                        if (!a) {
                                a = json_pack("[IIII]", 0LL, 0LL, 0LL, 0LL); /* value, declarations, items, weight */
                                json_object_set_new(cg, h, a);
                        }
                        int64_t add[4] = {c.lines[i].value, 1, c.lines[i].items, c.lines[i].weight};
                        for (int j = 0; j < 4; j++)
                                json_array_set_new(a, (size_t)j,
                                                   json_integer(json_integer_value(json_array_get(a, (size_t)j)) + add[j]));
                }
        }
        json_t *t = truth_of(g);
        cr_assert_eq(json_integer_value(json_object_get(t, "messages")), made);
        cr_assert_eq(json_integer_value(json_object_get(t, "valid")), valid);
        cr_assert_eq(json_integer_value(json_object_get(t, "bad")), made - valid);
        cr_assert_eq(json_integer_value(json_object_get(t, "heading_digits")), 4);
        json_t *bbr = json_object_get(t, "bad_by_reason");
        for (int r = 1; r < DS_DLQ__CNT; r++)
                cr_assert_eq(json_integer_value(json_object_get(bbr, ds_dlq_code((ds_dlq_reason_t)r))), bad_by[r],
                             "bad_by_reason.%s", ds_dlq_code((ds_dlq_reason_t)r));
        assert_rows_equal(json_object_get(t, "rows"), rows, 0);

        /* distinct counts: exact in the truth */
        json_t *dist = json_object_get(t, "distinct");
        const char *k;
        json_t *v;
        json_object_foreach(distinct_sets, k, v) {
                json_t *tv = json_object_get(dist, k);
                cr_assert_not_null(tv, "no distinct counts for %s", k);
                cr_assert_eq(json_integer_value(json_array_get(tv, 0)), (json_int_t)json_object_size(json_object_get(v, "d")),
                             "%s declarants", k);
                cr_assert_eq(json_integer_value(json_array_get(tv, 1)), (json_int_t)json_object_size(json_object_get(v, "v")),
                             "%s vehicles", k);
        }
        cr_assert_eq(json_object_size(dist), json_object_size(distinct_sets));

        /* top ten headings per gate and day: by value, ties to the lower heading */
        json_t *top = json_object_get(t, "top");
        json_object_foreach(cells, k, v) {
                const char *h;
                json_t *a;
                char best[10][16];
                int64_t bestv[10];
                int nb = 0;
                json_object_foreach(v, h, a) {
                        int64_t val = json_integer_value(json_array_get(a, 0));
                        int pos = nb < 10 ? nb : 10;
                        while (pos > 0 && (bestv[pos - 1] < val || (bestv[pos - 1] == val && strcmp(best[pos - 1], h) > 0)))
                                pos--;
                        if (pos >= 10)
                                continue;
                        int last = nb < 10 ? nb : 9;
                        for (int q = last; q > pos; q--) {
                                bestv[q] = bestv[q - 1];
                                memcpy(best[q], best[q - 1], 16);
                        }
                        bestv[pos] = val;
                        snprintf(best[pos], 16, "%s", h);
                        if (nb < 10)
                                nb++;
                }
                json_t *list = json_object_get(top, k);
                cr_assert_not_null(list, "no top list for %s", k);
                cr_assert_eq(json_array_size(list), (size_t)nb, "%s: top list of %zu, want %d", k, json_array_size(list),
                             nb);
                for (int i = 0; i < nb; i++) {
                        json_t *e = json_array_get(list, (size_t)i);
                        cr_assert_str_eq(json_string_value(json_array_get(e, 0)), best[i], "%s place %d", k, i);
                        json_t *mine = json_object_get(v, best[i]);
                        cr_assert_eq(json_integer_value(json_array_get(e, 1)), json_integer_value(json_array_get(mine, 0)));
                        cr_assert_eq(json_integer_value(json_array_get(e, 2)), json_integer_value(json_array_get(mine, 1)));
                        cr_assert_eq(json_integer_value(json_array_get(e, 3)), json_integer_value(json_array_get(mine, 2)));
                        cr_assert_eq(json_integer_value(json_array_get(e, 4)), json_integer_value(json_array_get(mine, 3)));
                }
        }
        json_decref(t);
        json_decref(rows);
        json_decref(distinct_sets);
        json_decref(cells);
        ds_gen_destroy(g);
}

/* A decoded event, kept for the per-id reduction below. */
typedef struct kept {
        ds_contrib_t c;
} kept_t;

static int by_id_then_version(const void *a, const void *b) {
        const ds_contrib_t *x = &((const kept_t *)a)->c, *y = &((const kept_t *)b)->c;
        if (x->id != y->id)
                return x->id < y->id ? -1 : 1;
        return (x->version > y->version) - (x->version < y->version);
}

Test(gen, truth_of_amended_cancelled_late_and_duplicated_events_counts_each_latest_version_once) {
        ds_gen_opts_t o;
        opts(&o, 12, 3000);
        o.bad_rate = 0.05;
        o.amend_rate = 0.3;
        o.cancel_rate = 0.1;
        o.dup_rate = 0.1;
        o.late_rate = 0.2;
        o.partitions = 5;
        ds_gen_t *g = gen(&o);
        kept_t *ev = malloc(sizeof(kept_t) * 8000);
        static ds_decl_t d;
        size_t n = 0;
        ds_gen_msg_t m;
        int kinds[DS_KIND__CNT] = {0};
        while (ds_gen_next(g, -1, &m)) {
                cr_assert_lt(n, 8000);
                ds_dlq_reason_t r = classify(&m, &d, &ev[n].c, 4);
                cr_assert_eq(r, m.bad);
                if (!r)
                        kinds[ev[n++].c.kind]++;
        }
        cr_assert_gt(kinds[DS_KIND_AMEND], 500);
        cr_assert_gt(kinds[DS_KIND_CANCEL], 100);
        /* TOTAL rows: every id counts with its highest version, unless it was cancelled
         * (a cancellation is always a declaration's last version) */
        qsort(ev, n, sizeof(*ev), by_id_then_version);
        json_t *rows = json_object();
        int counted = 0;
        for (size_t i = 0; i < n;) {
                size_t j = i;
                while (j + 1 < n && ev[j + 1].c.id == ev[i].c.id)
                        j++;
                const ds_contrib_t *last = &ev[j].c;
                if (last->kind != DS_KIND_CANCEL) {
                        add_rows(rows, last, 0);
                        counted++;
                }
                i = j + 1;
        }
        cr_assert_gt(counted, 2000);
        json_t *t = truth_of(g);
        assert_rows_equal(json_object_get(t, "rows"), rows, 1);
        json_t *events = json_object_get(t, "events");
        cr_assert_eq(json_integer_value(json_object_get(events, "amend")), kinds[DS_KIND_AMEND]);
        cr_assert_eq(json_integer_value(json_object_get(events, "cancel")), kinds[DS_KIND_CANCEL]);
        cr_assert_eq(json_integer_value(json_object_get(events, "new")), kinds[DS_KIND_NEW]);
        json_decref(t);
        json_decref(rows);
        free(ev);
        ds_gen_destroy(g);
}
