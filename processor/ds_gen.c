/*
 * ds_gen.c - the declaration generator.
 *
 * Randomness: xoshiro256** seeded through splitmix64, so a seed reproduces a
 * stream exactly.
 *
 * Events. Each declaration is born as a NEW event at its event time; some
 * are later amended (a higher version carrying the whole declaration again,
 * at the amendment's own time) or cancelled. Any event may be delivered late
 * (its emission held back up to max_lateness after its event time) or twice
 * (a redelivery shortly after). Pending events wait in a min-heap ordered by
 * emission time; a NEW is emitted when nothing pending is due before it.
 * Bad messages replace a NEW and break exactly one rule (or the framing).
 *
 * Partitions. With opts.partitions > 0 the generator picks each message's
 * partition itself with librdkafka's murmur2 partitioner (the Java client's),
 * so it knows the exact order of events in every partition; the truth model
 * (ds_truth.h) is fed in that order.
 */
#include "ds_gen.h"
#include "ds_common.h"
#include "ds_decl.h"
#include "ds_domain.h"
#include "ds_encode.h"
#include "ds_schemas.h"
#include "ds_truth.h"
#include "ds_validate.h"
#include "ds_wire.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TZ_OFFSET_MS (7 * 3600 * 1000LL) /* Asia/Ho_Chi_Minh, no DST */
#define DAY_MS (86400 * 1000LL)
#define DUP_DELAY_MS 60000 /* a redelivery arrives within a minute */

/* ---- assumptions of the model ------------------------------------------ */

/* Relative traffic per gate, in gates.csv order. The international gates and
 * the Móng Cái lanes (Bắc Luân II, Km3+4) carry most declarations (seeds
 * 000-004); secondary gates and opening points little. */
static const double gate_weight[] = {
    /* MONGCAI */ 14, /* BACLUAN2 */ 12, /* KM3HAIYEN */ 10, /* VANGIA */ 3,
    /* KALONG */ 3,   /* POHEN */ 2,     /* LUCLAM */ 2,     /* HOANHMO */ 5,
    /* BACPHONGSINH */ 4, /* MOC1342 */ 1, /* DONGVAN */ 1, /* HUUNGHI */ 18,
    /* DONGDANG */ 4, /* TANTHANH */ 12, /* CHIMA */ 6, /* COCNAM */ 3,
};

/* Flow shares by count, calibrated so that value shares come out near the
 * provinces' figures: Quảng Ninh 2024 export 2.26 vs import 1.68 bn USD,
 * Lạng Sơn 2022 export 0.94 vs import 2.16 bn USD (an import declaration is
 * worth about twice an export one here). Border-resident exchange is a large
 * share of declarations but, capped by the daily allowance, a small share of
 * value (the provinces' 0.48 bn USD of it is mostly traders' consolidated
 * declarations, which the generator does not model). Transit is a small
 * assumed share. */
static const double flow_share_qn[DS_FLOW__CNT] = {0.53, 0.20, 0.03, 0.24};
static const double flow_share_ls[DS_FLOW__CNT] = {0.41, 0.49, 0.03, 0.07};

/* Items per declaration: P(n) for n = 1..10, then a tail up to 30. Mean ~3. */
static const double items_p[] = {0.30, 0.22, 0.15, 0.10, 0.07, 0.05, 0.03, 0.02, 0.02, 0.01};

/* Goods counted in units: weight per unit (grams) and the median number of
 * units per line (log-normal, sigma 0.8): an excavator or two on a
 * low-loader, a car carrier's few cars, cartons of laptops or routers. */
static void unit_goods(const char *hs, double *unit_weight_g, double *median_units) {
        if (!strncmp(hs, "8429", 4)) {
                *unit_weight_g = 20e6; /* excavator ~20 t */
                *median_units = 1;
        } else if (!strncmp(hs, "8703", 4)) {
                *unit_weight_g = 1.4e6; /* passenger car */
                *median_units = 2;
        } else if (!strncmp(hs, "8471", 4)) {
                *unit_weight_g = 2.2e3; /* laptop */
                *median_units = 40;
        } else if (!strncmp(hs, "8517", 4)) {
                *unit_weight_g = 1.0e3;
                *median_units = 50;
        } else {
                *unit_weight_g = 300e3; /* other machinery */
                *median_units = 2;
        }
}

/* Border residents may bring goods duty-free up to a daily allowance of
 * 8 million VND (~USD 320) each: their declarations stay under it. */
#define BORDER_RESIDENT_CAP_CENTS 32000

/* Goods counted in units are a minority of lines: weight of a unit-goods
 * commodity when drawing a line, relative to 1 for goods sold by weight. */
#define UNIT_GOODS_WEIGHT 0.25

static const char *const origin_by_flow[DS_FLOW__CNT] = {"VN", "CN", "TH", "VN"};
static const char *const type_by_flow[DS_FLOW__CNT] = {"B11", "A11", "C11", "H11"};
static const char *const id_prefix_by_flow[DS_FLOW__CNT] = {"30", "10", "50", "70"};

/* ---- random numbers ---------------------------------------------------- */

typedef struct rng {
        uint64_t s[4];
} rng_t;

static uint64_t splitmix64(uint64_t *x) {
        uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) {
        return (x << k) | (x >> (64 - k));
}

static uint64_t rnd(rng_t *r) {
        uint64_t res = rotl(r->s[1] * 5, 7) * 9, t = r->s[1] << 17;
        r->s[2] ^= r->s[0];
        r->s[3] ^= r->s[1];
        r->s[1] ^= r->s[2];
        r->s[0] ^= r->s[3];
        r->s[2] ^= t;
        r->s[3] = rotl(r->s[3], 45);
        return res;
}

static double rnd01(rng_t *r) {
        return (double)(rnd(r) >> 11) * 0x1.0p-53;
}

static uint32_t rnd_below(rng_t *r, uint32_t n) {
        return (uint32_t)(((rnd(r) >> 32) * n) >> 32);
}

static double rnd_normal(rng_t *r) {
        double u1 = rnd01(r), u2 = rnd01(r);
        if (u1 < 1e-300)
                u1 = 1e-300;
        return sqrt(-2.0 * log(u1)) * cos(2 * M_PI * u2);
}

static int pick(rng_t *r, const double *w, int n) {
        double sum = 0;
        for (int i = 0; i < n; i++)
                sum += w[i];
        double x = rnd01(r) * sum;
        for (int i = 0; i < n; i++) {
                if (x < w[i])
                        return i;
                x -= w[i];
        }
        return n - 1;
}

/* ---- state ------------------------------------------------------------- */

typedef struct hscode {
        char code[9];
        const char *desc;
        const char *unit;
        int flow; /* typical flow, -1 any */
        double lo, hi;
} hscode_t;

/* A declaration as the generator keeps it between versions. */
typedef struct gitem {
        uint32_t hs;     /* index into g->hs */
        double qty;
        int64_t weight;  /* grams */
        int64_t value;   /* US cents */
        const char *origin;
} gitem_t;

typedef struct gdecl {
        char id[13];
        int32_t version;
        uint8_t kind, flow, channel, nitems;
        uint16_t gate;
        int32_t tax;
        int64_t declared_at;
        char plate[24]; /* "" when none */
        char office[8];
        gitem_t items[DS_MAX_ITEMS];
} gdecl_t;

typedef struct pending {
        int64_t emit_at;
        uint64_t seq; /* ties broken by scheduling order: deterministic */
        gdecl_t *d;
} pending_t;

struct ds_gen {
        ds_gen_opts_t o;
        rng_t rng;
        uint64_t made, bad, base;
        uint64_t bad_by[DS_DLQ__CNT];
        uint64_t kinds[DS_KIND__CNT], dups, lates;
        uint64_t seq, sched_seq;
        uint64_t id_base; /* random start of the id sequence: runs with other seeds rarely overlap */
        hscode_t *hs;
        int nhs;
        int *by_flow[DS_FLOW__CNT]; /* hs indices usable for each flow */
        double *by_flow_cdf[DS_FLOW__CNT];
        int nby_flow[DS_FLOW__CNT];
        double *gate_w; /* per gate: gate_weight[], then a gates file's weight column (default: the mean) */
        char (*tax_ids)[14];
        int ntax;
        double *tax_cdf;
        double minute_cdf_total;
        double *minute_cdf; /* cumulative intensity per minute of the span */
        int64_t nminutes;
        int64_t next_new;   /* event time of the next NEW (simulated-time mode), INT64_MIN if not drawn */
        pending_t *heap;
        uint32_t nheap, capheap;
        ds_truth_t *truth;
        gdecl_t cur;        /* scratch */
        ds_decl_t decl;
        char keybuf[16], hsbad[12], idbad[16];
        ds_buf_t out;
};

/* Diurnal intensity of declarations at a local hour (gates open by day). */
static double hour_weight(int hour) {
        static const double w[24] = {0.05, 0.05, 0.05, 0.05, 0.05, 0.1, 0.4, 0.9, 1.0, 1.0, 1.0, 1.0,
                                     0.7,  0.7,  1.0,  1.0,  1.0,  0.9, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05};
        return w[hour];
}

static const uint32_t pow10u[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};

static uint32_t heading_of(const char *code, int digits) {
        return (uint32_t)atoi(code) / pow10u[8 - digits];
}

void ds_gen_opts_default(ds_gen_opts_t *o) {
        memset(o, 0, sizeof(*o));
        o->seed = 1;
        o->heading_digits = 4;
        o->span_ms = DAY_MS;
        o->max_lateness_ms = 2 * 3600 * 1000LL;
        o->amend_delay_ms = 2 * 3600 * 1000LL;
        o->schema_id = DS_SCHEMA_ID_DECLARATION_V1;
        ds_truth_cfg_default(&o->truth);
}

ds_gen_t *ds_gen_new(const ds_gen_opts_t *opts, char *errstr, size_t sz) {
        ds_domain_init();
        ds_gen_t *g = calloc(1, sizeof(*g));
        if (!g) {
                ds_err(errstr, sz, "out of memory");
                return NULL;
        }
        g->o = *opts;
        g->next_new = INT64_MIN;
        _Static_assert(DS_ARRAY_LEN(gate_weight) == 16, "one weight per compiled-in gate");
        if (!(g->gate_w = malloc((size_t)ds_gate_count() * sizeof(double)))) {
                ds_err(errstr, sz, "out of memory");
                goto fail;
        }
        double wsum = 0;
        for (int i = 0; i < ds_gate_count(); i++) {
                double w = ds_gate_weight(i);
                if (i < ds_gate_builtin_count())
                        w = gate_weight[i];
                else if (w < 0) /* a gates file without weights: each added gate as busy as the average */
                        w = wsum / ds_gate_builtin_count();
                g->gate_w[i] = w;
                if (i < ds_gate_builtin_count())
                        wsum += w;
        }
        if (g->o.heading_digits < 2 || g->o.heading_digits > 8 || (g->o.heading_digits & 1)) {
                ds_err(errstr, sz, "heading digits must be 2, 4, 6 or 8");
                goto fail;
        }
        if (g->o.extra_headings < 0 || g->o.extra_headings > 200000) {
                ds_err(errstr, sz, "extra headings must be between 0 and 200000");
                goto fail;
        }
        if (g->o.amend_rate < 0 || g->o.amend_rate > 1 || g->o.cancel_rate < 0 || g->o.cancel_rate > 1 ||
            g->o.dup_rate < 0 || g->o.dup_rate > 1 || g->o.late_rate < 0 || g->o.late_rate > 1 ||
            g->o.bad_rate < 0 || g->o.bad_rate > 1) {
                ds_err(errstr, sz, "rates must be between 0 and 1");
                goto fail;
        }
        if (!g->o.schema_id)
                g->o.schema_id = DS_SCHEMA_ID_DECLARATION_V1;
        if (g->o.amend_delay_ms <= 0)
                g->o.amend_delay_ms = 1;
        uint64_t x = opts->seed;
        for (int i = 0; i < 4; i++)
                g->rng.s[i] = splitmix64(&x);
        g->id_base = splitmix64(&x) % 10000000000ULL;

        int ncsv = ds_commodity_count();
        g->nhs = ncsv + g->o.extra_headings;
        g->hs = calloc((size_t)g->nhs, sizeof(hscode_t));
        int oom = !g->hs;
        for (int f = 0; f < DS_FLOW__CNT; f++) {
                g->by_flow[f] = calloc((size_t)g->nhs, sizeof(int));
                g->by_flow_cdf[f] = calloc((size_t)g->nhs, sizeof(double));
                oom |= !g->by_flow[f] || !g->by_flow_cdf[f];
        }
        if (oom) {
                ds_err(errstr, sz, "out of memory");
                goto fail;
        }
        for (int i = 0; i < ncsv; i++) {
                const ds_commodity_t *c = ds_commodity(i);
                hscode_t *h = &g->hs[i];
                snprintf(h->code, sizeof(h->code), "%s", c->hs_code);
                h->desc = c->name_vi;
                h->unit = c->unit;
                h->flow = (int)c->typical_flow;
                h->lo = c->unit_value_low_usd;
                h->hi = c->unit_value_high_usd;
        }
        /* Synthetic codes for benchmarks: distinct headings at the configured
         * digits, drawn without repetition, any flow, mid-range unit values. */
        if (g->o.extra_headings) {
                uint32_t space = pow10u[g->o.heading_digits];
                uint8_t *used = calloc(space, 1);
                if (!used) {
                        ds_err(errstr, sz, "out of memory");
                        goto fail;
                }
                for (int i = 0; i < ncsv; i++)
                        used[heading_of(g->hs[i].code, g->o.heading_digits)] = 1;
                for (int i = ncsv; i < g->nhs; i++) {
                        hscode_t *h = &g->hs[i];
                        uint32_t hd = 0;
                        int tries = 0;
                        do {
                                hd = pow10u[g->o.heading_digits] / 100 +
                                     rnd_below(&g->rng, space - pow10u[g->o.heading_digits] / 100);
                        } while (used[hd] && ++tries < 100000);
                        if (used[hd]) {
                                free(used);
                                ds_err(errstr, sz, "cannot make %d distinct headings of %d digits",
                                       g->o.extra_headings + ncsv, g->o.heading_digits);
                                goto fail;
                        }
                        used[hd] = 1;
                        uint32_t code = hd * pow10u[8 - g->o.heading_digits] +
                                        rnd_below(&g->rng, pow10u[8 - g->o.heading_digits]);
                        snprintf(h->code, sizeof(h->code), "%08u", code);
                        h->desc = "Hàng hóa khác (mã tổng hợp cho đo tải)";
                        h->unit = "kg";
                        h->flow = -1;
                        h->lo = 0.5;
                        h->hi = 5.0;
                }
                free(used);
        }
        for (int i = 0; i < g->nhs; i++)
                for (int f = 0; f < DS_FLOW__CNT; f++) {
                        /* border-resident and transit take any goods; export/import their typical ones */
                        int ok = g->hs[i].flow < 0 || f == DS_FLOW_TRANSIT || f == DS_FLOW_BORDER_RESIDENT ||
                                 g->hs[i].flow == f;
                        if (!ok)
                                continue;
                        double w = !strcmp(g->hs[i].unit, "unit") ? UNIT_GOODS_WEIGHT : 1.0;
                        int k = g->nby_flow[f]++;
                        g->by_flow[f][k] = i;
                        g->by_flow_cdf[f][k] = (k ? g->by_flow_cdf[f][k - 1] : 0) + w;
                }

        /* Declarants: 3,000 enterprises (Móng Cái alone had 1,495 in 2024);
         * shares follow 1/rank^0.8 (a few big traders, many small ones). */
        g->ntax = 3000;
        g->tax_ids = calloc((size_t)g->ntax, sizeof(*g->tax_ids));
        g->tax_cdf = calloc((size_t)g->ntax, sizeof(double));
        if (!g->tax_ids || !g->tax_cdf) {
                ds_err(errstr, sz, "out of memory");
                goto fail;
        }
        double acc = 0;
        for (int i = 0; i < g->ntax; i++) {
                const char *pfx = rnd01(&g->rng) < 0.6 ? "57" : rnd01(&g->rng) < 0.5 ? "49" : "01";
                if (rnd01(&g->rng) < 0.1)
                        snprintf(g->tax_ids[i], 14, "%s%08u%03u", pfx, rnd_below(&g->rng, 100000000),
                                 1 + rnd_below(&g->rng, 20));
                else
                        snprintf(g->tax_ids[i], 14, "%s%08u", pfx, rnd_below(&g->rng, 100000000));
                acc += 1.0 / pow(i + 1, 0.8);
                g->tax_cdf[i] = acc;
        }
        for (int i = 0; i < g->ntax; i++)
                g->tax_cdf[i] /= acc;

        /* Event-time curve over the span, per minute. */
        if (g->o.count) {
                if (g->o.span_ms < 60000)
                        g->o.span_ms = 60000;
                g->nminutes = g->o.span_ms / 60000;
                g->minute_cdf = calloc((size_t)g->nminutes, sizeof(double));
                if (!g->minute_cdf) {
                        ds_err(errstr, sz, "span too long");
                        goto fail;
                }
                double c = 0;
                for (int64_t m = 0; m < g->nminutes; m++) {
                        int64_t local = g->o.start_ms + m * 60000 + TZ_OFFSET_MS;
                        int hour = (int)((local % DAY_MS + DAY_MS) % DAY_MS / 3600000);
                        int64_t day = local >= 0 ? local / DAY_MS : (local - DAY_MS + 1) / DAY_MS;
                        int weekday = (int)(((day + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday: 0 = Sunday */
                        c += hour_weight(hour) * (weekday == 0 ? 0.6 : 1.0);
                        g->minute_cdf[m] = c;
                }
                g->minute_cdf_total = c;
        }
        if (g->o.partitions > 0) {
                g->o.truth.heading_digits = g->o.heading_digits;
                g->truth = ds_truth_new(&g->o.truth);
                if (!g->truth) {
                        ds_err(errstr, sz, "out of memory");
                        goto fail;
                }
        }
        return g;
fail:
        ds_gen_destroy(g);
        return NULL;
}

void ds_gen_destroy(ds_gen_t *g) {
        if (!g)
                return;
        free(g->gate_w);
        free(g->hs);
        for (int f = 0; f < DS_FLOW__CNT; f++) {
                free(g->by_flow[f]);
                free(g->by_flow_cdf[f]);
        }
        free(g->tax_ids);
        free(g->tax_cdf);
        free(g->minute_cdf);
        for (uint32_t i = 0; i < g->nheap; i++)
                free(g->heap[i].d);
        free(g->heap);
        ds_truth_destroy(g->truth);
        ds_buf_free(&g->out);
        free(g);
}

/* Event time of the i-th of count declarations: inverse of the cumulative
 * intensity at (i + u) / count, so times rise monotonically along the curve. */
static int64_t sim_time(ds_gen_t *g, uint64_t i) {
        double target = ((double)i + rnd01(&g->rng)) / (double)g->o.count * g->minute_cdf_total;
        int64_t lo = 0, hi = g->nminutes - 1;
        while (lo < hi) {
                int64_t mid = (lo + hi) / 2;
                if (g->minute_cdf[mid] < target)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        double prev = lo ? g->minute_cdf[lo - 1] : 0, w = g->minute_cdf[lo] - prev;
        double frac = w > 0 ? (target - prev) / w : 0;
        if (frac < 0)
                frac = 0;
        if (frac > 0.999999)
                frac = 0.999999;
        return g->o.start_ms + lo * 60000 + (int64_t)(frac * 60000);
}

static int pick_tax(ds_gen_t *g) {
        double u = rnd01(&g->rng);
        int lo = 0, hi = g->ntax - 1;
        while (lo < hi) {
                int mid = (lo + hi) / 2;
                if (g->tax_cdf[mid] < u)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

/* A commodity for flow f, drawn by weight. */
static uint32_t pick_hs(ds_gen_t *g, int f) {
        int n = g->nby_flow[f];
        double u = rnd01(&g->rng) * g->by_flow_cdf[f][n - 1];
        int lo = 0, hi = n - 1;
        while (lo < hi) {
                int mid = (lo + hi) / 2;
                if (g->by_flow_cdf[f][mid] <= u)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return (uint32_t)g->by_flow[f][lo];
}

/* Log-uniform in [lo, hi]: prices cluster at the cheap end of a range. */
static double log_uniform(rng_t *r, double lo, double hi) {
        return lo * exp(log(hi / lo) * rnd01(r));
}

static ds_str_t S(const char *s) {
        return (ds_str_t){s, (uint32_t)strlen(s)};
}

/* One line of goods of commodity hs for a consignment share. */
static void make_item(ds_gen_t *g, gitem_t *it, uint32_t hs, int flow, double share_kg) {
        rng_t *r = &g->rng;
        const hscode_t *h = &g->hs[hs];
        int br = flow == DS_FLOW_BORDER_RESIDENT;
        double unit_value = log_uniform(r, h->lo, h->hi);
        double qty, weight_g;
        if (!strcmp(h->unit, "unit") && !br) {
                double uw, median;
                unit_goods(h->code, &uw, &median);
                qty = floor(median * exp(0.8 * rnd_normal(r)) + 0.5);
                if (qty < 1)
                        qty = 1;
                weight_g = qty * uw;
        } else {
                qty = round(share_kg * 10) / 10;
                if (qty < 0.1)
                        qty = 0.1;
                if (!strcmp(h->unit, "unit")) /* a border resident's one item */
                        qty = 1, unit_value = h->lo;
                weight_g = qty * 1000 * 1.02; /* goods plus packaging */
        }
        it->hs = hs;
        it->qty = qty;
        it->weight = (int64_t)weight_g;
        it->value = (int64_t)(qty * unit_value * 100);
        it->origin = h->flow == DS_FLOW_IMPORT && !br ? (rnd01(r) < 0.8 ? "CN" : "JP") : origin_by_flow[flow];
}

/* Keeps a border-resident declaration under the duty-free allowance. */
static void cap_border_resident(ds_gen_t *g, gdecl_t *d) {
        if (d->flow != DS_FLOW_BORDER_RESIDENT)
                return;
        int64_t total = 0;
        for (int i = 0; i < d->nitems; i++)
                total += d->items[i].value;
        if (total <= BORDER_RESIDENT_CAP_CENTS)
                return;
        double k = (double)BORDER_RESIDENT_CAP_CENTS * (0.3 + 0.7 * rnd01(&g->rng)) / (double)total;
        for (int i = 0; i < d->nitems; i++)
                d->items[i].value = (int64_t)(d->items[i].value * k);
}

/* A new declaration (version 0) at event time t. */
static void new_decl(ds_gen_t *g, int64_t t, gdecl_t *d) {
        rng_t *r = &g->rng;
        int gate = pick(r, g->gate_w, ds_gate_count());
        const ds_gate_t *gt = ds_gate(gate);
        int lang_son = !strcmp(gt->office_prefix, "15");
        int flow = pick(r, lang_son ? flow_share_ls : flow_share_qn, DS_FLOW__CNT);
        g->seq++;
        snprintf(d->id, sizeof(d->id), "%s%010llu", id_prefix_by_flow[flow],
                 (unsigned long long)((g->id_base + g->seq) % 10000000000ULL));
        d->version = 0;
        d->kind = DS_KIND_NEW;
        d->declared_at = t;
        d->gate = (uint16_t)gate;
        snprintf(d->office, sizeof(d->office), "%sC%c", gt->office_prefix, 'A' + gate % 26);
        d->flow = (uint8_t)flow;
        d->tax = pick_tax(g);
        double ch = rnd01(r);
        d->channel = ch < 0.6 ? DS_CHANNEL_GREEN : ch < 0.9 ? DS_CHANNEL_YELLOW : DS_CHANNEL_RED;
        double pv = rnd01(r);
        if (!strcmp(gt->kind, "seaport") || pv < 0.08)
                d->plate[0] = '\0';
        else if (pv < 0.25)
                snprintf(d->plate, sizeof(d->plate), "桂P%05u", rnd_below(r, 100000));
        else
                snprintf(d->plate, sizeof(d->plate), "%sC-%03u.%02u", lang_son ? "12" : "14", rnd_below(r, 1000),
                         rnd_below(r, 100));
        int n;
        double u = rnd01(r);
        for (n = 0; n < (int)DS_ARRAY_LEN(items_p) && u >= items_p[n]; n++)
                u -= items_p[n];
        n = n < (int)DS_ARRAY_LEN(items_p) ? n + 1 : 11 + (int)rnd_below(r, 20);
        d->nitems = (uint8_t)n;
        /* One consignment: ~7 t per truck (log-normal, sigma 0.6, mean 7 t;
         * Km3+4 and Bắc Luân II, Tết 2022: 7,300 t on 1,000+ vehicles); a
         * border-resident basket is 10-100 kg. Lines share it. */
        double consignment_kg = flow == DS_FLOW_BORDER_RESIDENT ? 10 + 90 * rnd01(r)
                                                                : 7000 * exp(0.6 * rnd_normal(r) - 0.18);
        for (int i = 0; i < n; i++)
                make_item(g, &d->items[i], pick_hs(g, flow), flow, consignment_kg / n * (0.5 + rnd01(r)));
        cap_border_resident(g, d);
}

/* The next version of d, amended at time t: most amendments correct values
 * and weights; some change an HS code, add or drop a line, or move the
 * declaration to another gate of the same province. */
static void amend_decl(ds_gen_t *g, gdecl_t *d, int64_t t) {
        rng_t *r = &g->rng;
        d->version++;
        d->kind = DS_KIND_AMEND;
        d->declared_at = t;
        double u = rnd01(r);
        if (u < 0.05) {
                const char *prov = ds_gate(d->gate)->province;
                for (int tries = 0; tries < 32; tries++) {
                        int ng = (int)rnd_below(r, (uint32_t)ds_gate_count());
                        if (ng != d->gate && !strcmp(ds_gate(ng)->province, prov)) {
                                d->gate = (uint16_t)ng;
                                break;
                        }
                }
        } else if (u < 0.15) {
                gitem_t *it = &d->items[rnd_below(r, d->nitems)];
                make_item(g, it, pick_hs(g, d->flow), d->flow, (double)it->weight / 1020.0);
        } else if (u < 0.30) {
                if (d->nitems > 1 && rnd01(r) < 0.5) {
                        uint32_t drop = rnd_below(r, d->nitems);
                        d->nitems--;
                        d->items[drop] = d->items[d->nitems];
                } else if (d->nitems < DS_MAX_ITEMS)
                        make_item(g, &d->items[d->nitems++], pick_hs(g, d->flow), d->flow, 500 + 2000 * rnd01(r));
        } else {
                for (int k = 0; k < 2; k++) {
                        gitem_t *it = &d->items[rnd_below(r, d->nitems)];
                        double f = 0.8 + 0.4 * rnd01(r);
                        it->value = (int64_t)(it->value * f);
                        it->weight = (int64_t)(it->weight * f);
                        it->qty = round(it->qty * f * 10) / 10;
                }
        }
        cap_border_resident(g, d);
}

/* ---- the pending-event heap ------------------------------------------- */

static int heap_less(const pending_t *a, const pending_t *b) {
        return a->emit_at < b->emit_at || (a->emit_at == b->emit_at && a->seq < b->seq);
}

static void heap_push(ds_gen_t *g, int64_t emit_at, const gdecl_t *d) {
        if (g->nheap == g->capheap) {
                uint32_t cap = g->capheap ? g->capheap * 2 : 256;
                pending_t *h = realloc(g->heap, cap * sizeof(*h));
                if (!h)
                        abort(); /* the generator cannot continue without its schedule */
                g->heap = h;
                g->capheap = cap;
        }
        size_t sz = offsetof(gdecl_t, items) + (size_t)d->nitems * sizeof(gitem_t);
        gdecl_t *copy = malloc(sizeof(gdecl_t));
        if (!copy)
                abort();
        memcpy(copy, d, sz);
        uint32_t i = g->nheap++;
        g->heap[i] = (pending_t){emit_at, g->sched_seq++, copy};
        while (i && heap_less(&g->heap[i], &g->heap[(i - 1) / 2])) {
                pending_t tmp = g->heap[i];
                g->heap[i] = g->heap[(i - 1) / 2];
                g->heap[(i - 1) / 2] = tmp;
                i = (i - 1) / 2;
        }
}

static pending_t heap_pop(ds_gen_t *g) {
        pending_t top = g->heap[0];
        g->heap[0] = g->heap[--g->nheap];
        uint32_t i = 0;
        for (;;) {
                uint32_t l = 2 * i + 1, r = l + 1, m = i;
                if (l < g->nheap && heap_less(&g->heap[l], &g->heap[m]))
                        m = l;
                if (r < g->nheap && heap_less(&g->heap[r], &g->heap[m]))
                        m = r;
                if (m == i)
                        break;
                pending_t tmp = g->heap[i];
                g->heap[i] = g->heap[m];
                g->heap[m] = tmp;
                i = m;
        }
        return top;
}

/* Schedules one event: maybe late, maybe delivered twice. */
static void schedule(ds_gen_t *g, const gdecl_t *d) {
        rng_t *r = &g->rng;
        int64_t at = d->declared_at;
        if (g->o.late_rate > 0 && rnd01(r) < g->o.late_rate) {
                at += 1 + (int64_t)(rnd01(r) * (double)g->o.max_lateness_ms);
                g->lates++;
        }
        heap_push(g, at, d);
        if (g->o.dup_rate > 0 && rnd01(r) < g->o.dup_rate) {
                heap_push(g, at + 1 + (int64_t)rnd_below(r, DUP_DELAY_MS), d);
                g->dups++;
        }
}

static int64_t exp_delay(ds_gen_t *g) {
        double u = rnd01(&g->rng);
        return 1 + (int64_t)(-log(1.0 - u) * (double)g->o.amend_delay_ms);
}

/* Schedules a new declaration and its later life (amendments, cancel). */
static void schedule_life(ds_gen_t *g, gdecl_t *d, int64_t end) {
        rng_t *r = &g->rng;
        schedule(g, d);
        if (g->o.amend_rate > 0 && rnd01(r) < g->o.amend_rate) {
                int k = 1 + (rnd01(r) < 0.2) + (rnd01(r) < 0.05);
                for (int j = 0; j < k; j++) {
                        int64_t t = d->declared_at + exp_delay(g);
                        if (t > end)
                                break;
                        amend_decl(g, d, t);
                        schedule(g, d);
                }
        }
        if (g->o.cancel_rate > 0 && rnd01(r) < g->o.cancel_rate) {
                int64_t t = d->declared_at + exp_delay(g);
                if (t <= end) {
                        d->version++;
                        d->kind = DS_KIND_CANCEL;
                        d->declared_at = t;
                        schedule(g, d);
                }
        }
}

/* ---- emission ------------------------------------------------------------ */

static void to_decl(ds_gen_t *g, const gdecl_t *d, ds_decl_t *o) {
        o->declaration_id = (ds_str_t){d->id, 12};
        o->version = d->version;
        o->kind = d->kind;
        o->declared_at = d->declared_at;
        o->gate_code = S(ds_gate(d->gate)->code);
        o->customs_office = S(d->office);
        o->type_code = S(type_by_flow[d->flow]);
        o->flow = d->flow;
        o->declarant_tax_id = S(g->tax_ids[d->tax]);
        o->channel = d->channel;
        o->vehicle_plate = d->plate[0] ? S(d->plate) : (ds_str_t){NULL, 0};
        o->item_cnt = d->nitems;
        for (int i = 0; i < d->nitems; i++) {
                const gitem_t *it = &d->items[i];
                const hscode_t *h = &g->hs[it->hs];
                o->items[i] = (ds_item_t){(ds_str_t){h->code, 8}, S(h->desc), S(h->unit), S(it->origin),
                                          it->qty, it->weight, it->value};
        }
}

static void feed_truth(ds_gen_t *g, const gdecl_t *d, int32_t partition) {
        ds_truth_event_t e;
        e.partition = partition;
        e.id = strtoull(d->id, NULL, 10);
        e.version = d->version;
        e.kind = d->kind;
        e.declared_at = d->declared_at;
        e.gate = d->gate;
        e.flow = d->flow;
        e.declarant = (uint64_t)d->tax + 1;
        e.vehicle = d->plate[0] ? ds_hash_bytes(d->plate, strlen(d->plate)) : 0;
        e.nitems = d->nitems;
        for (int i = 0; i < d->nitems; i++)
                e.items[i] = (ds_truth_item_t){(uint32_t)atoi(g->hs[d->items[i].hs].code), d->items[i].value,
                                               d->items[i].weight};
        if (ds_truth_apply(g->truth, &e))
                abort();
}

static const ds_dlq_reason_t bad_kinds[] = {
    DS_DLQ_TRUNCATED,      DS_DLQ_BAD_MAGIC,    DS_DLQ_UNKNOWN_SCHEMA, DS_DLQ_BAD_ID,
    DS_DLQ_UNKNOWN_GATE,   DS_DLQ_BAD_HS_CODE,  DS_DLQ_NO_ITEMS,       DS_DLQ_NEGATIVE_WEIGHT,
    DS_DLQ_NEGATIVE_VALUE, DS_DLQ_EMPTY,        DS_DLQ_TRAILING_BYTES,
};

/* Encodes d (broken in one way when bad != NONE) into out. */
static void emit(ds_gen_t *g, const gdecl_t *d, ds_dlq_reason_t bad, ds_gen_msg_t *out) {
        rng_t *r = &g->rng;
        ds_decl_t *o = &g->decl;
        to_decl(g, d, o);
        memcpy(g->keybuf, d->id, 12);
        uint32_t victim = rnd_below(r, o->item_cnt ? o->item_cnt : 1);
        switch (bad) {
        case DS_DLQ_BAD_ID:
                memcpy(g->idbad, d->id, 12);
                if (rnd01(r) < 0.5)
                        o->declaration_id = (ds_str_t){g->idbad, 11};
                else
                        g->idbad[rnd_below(r, 12)] = 'X', o->declaration_id = (ds_str_t){g->idbad, 12};
                break;
        case DS_DLQ_UNKNOWN_GATE:
                o->gate_code = S(rnd01(r) < 0.5 ? "DONGHUNG" : "mongcai");
                break;
        case DS_DLQ_BAD_HS_CODE:
                memcpy(g->hsbad, o->items[victim].hs_code.p, 8);
                if (rnd01(r) < 0.5) {
                        o->items[victim].hs_code = (ds_str_t){g->hsbad, 7};
                } else {
                        g->hsbad[rnd_below(r, 8)] = '.';
                        o->items[victim].hs_code = (ds_str_t){g->hsbad, 8};
                }
                break;
        case DS_DLQ_NO_ITEMS:
                o->item_cnt = 0;
                break;
        case DS_DLQ_NEGATIVE_WEIGHT:
                o->items[victim].gross_weight_g = -1 - (int64_t)rnd_below(r, 100000);
                break;
        case DS_DLQ_NEGATIVE_VALUE:
                o->items[victim].customs_value_usd_cents = -1 - (int64_t)rnd_below(r, 100000);
                break;
        default:
                break;
        }
        g->out.len = 0;
        ds_wire_put_header(&g->out, bad == DS_DLQ_UNKNOWN_SCHEMA ? 999 : g->o.schema_id);
        ds_encode_declaration(&g->out, o);
        switch (bad) {
        case DS_DLQ_TRUNCATED:
                g->out.len = DS_WIRE_HEADER + rnd_below(r, (uint32_t)(g->out.len - DS_WIRE_HEADER));
                break;
        case DS_DLQ_BAD_MAGIC:
                g->out.p[0] = (uint8_t)(1 + rnd_below(r, 255));
                break;
        case DS_DLQ_TRAILING_BYTES:
                ds_buf_put(&g->out, "\x02", 1);
                break;
        case DS_DLQ_EMPTY:
                g->out.len = 0;
                break;
        default:
                break;
        }
        out->key = g->keybuf;
        out->key_len = 12;
        out->value = g->out.len ? g->out.p : NULL;
        out->value_len = g->out.len;
        out->bad = bad;
        out->kind = d->kind;
        out->declared_at = d->declared_at;
        out->partition = g->o.partitions > 0
                             ? rd_kafka_msg_partitioner_murmur2(NULL, g->keybuf, 12, g->o.partitions, NULL, NULL)
                             : -1;
        g->made++;
        if (bad) {
                g->bad++;
                g->bad_by[bad]++;
        } else {
                g->kinds[d->kind]++;
                if (g->truth)
                        feed_truth(g, d, out->partition);
        }
}

int ds_gen_next(ds_gen_t *g, int64_t now_ms, ds_gen_msg_t *out) {
        int rate_mode = now_ms >= 0;
        int64_t end = rate_mode || !g->o.count ? INT64_MAX : g->o.start_ms + g->o.span_ms;
        for (;;) {
                int more_new = rate_mode || g->base < g->o.count;
                int64_t next_new = rate_mode ? now_ms : INT64_MAX;
                if (!rate_mode && more_new) {
                        if (g->next_new == INT64_MIN)
                                g->next_new = g->o.count ? sim_time(g, g->base) : ds_now_ms();
                        next_new = g->next_new;
                }
                if (g->nheap && (!more_new || g->heap[0].emit_at <= next_new)) {
                        pending_t p = heap_pop(g);
                        emit(g, p.d, DS_DLQ_NONE, out);
                        free(p.d);
                        return 1;
                }
                if (!more_new)
                        return 0;
                g->base++;
                g->next_new = INT64_MIN;
                new_decl(g, next_new, &g->cur);
                if (g->o.bad_rate > 0 && rnd01(&g->rng) < g->o.bad_rate) {
                        emit(g, &g->cur, bad_kinds[rnd_below(&g->rng, DS_ARRAY_LEN(bad_kinds))], out);
                        return 1;
                }
                schedule_life(g, &g->cur, end);
        }
}

uint64_t ds_gen_made(const ds_gen_t *g) {
        return g->made;
}

uint64_t ds_gen_bad(const ds_gen_t *g) {
        return g->bad;
}

int ds_gen_write_truth(const ds_gen_t *g, FILE *out, char *errstr, size_t sz) {
        json_t *root = json_object(), *bad = json_object();
        for (int i = 1; i < DS_DLQ__CNT; i++)
                if (g->bad_by[i])
                        json_object_set_new(bad, ds_dlq_code((ds_dlq_reason_t)i), json_integer((json_int_t)g->bad_by[i]));
        json_object_set_new(root, "seed", json_integer((json_int_t)g->o.seed));
        json_object_set_new(root, "heading_digits", json_integer(g->o.heading_digits));
        json_object_set_new(root, "partitions", json_integer(g->o.partitions));
        json_object_set_new(root, "messages", json_integer((json_int_t)g->made));
        json_object_set_new(root, "valid", json_integer((json_int_t)(g->made - g->bad)));
        json_object_set_new(root, "bad", json_integer((json_int_t)g->bad));
        json_object_set_new(root, "bad_by_reason", bad);
        json_object_set_new(root, "events",
                            json_pack("{sIsIsIsIsI}", "new", (json_int_t)g->kinds[DS_KIND_NEW], "amend",
                                      (json_int_t)g->kinds[DS_KIND_AMEND], "cancel",
                                      (json_int_t)g->kinds[DS_KIND_CANCEL], "duplicates", (json_int_t)g->dups,
                                      "late", (json_int_t)g->lates));
        if (g->truth && ds_truth_write(g->truth, root)) {
                json_decref(root);
                return ds_err(errstr, sz, "out of memory writing the truth");
        }
        int rc = json_dumpf(root, out, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(root);
        if (rc || fputc('\n', out) == EOF)
                return ds_err(errstr, sz, "cannot write the truth file");
        return 0;
}
