/*
 * ds_gen.c - the declaration generator.
 *
 * Randomness: xoshiro256** seeded through splitmix64, so a seed reproduces a
 * stream exactly. Each message is built as a ds_decl_t and encoded with
 * ds_encode_declaration() into a reused buffer; bad messages start from a
 * valid declaration and break exactly one rule (or the framing).
 *
 * Truth: per gate (16) and per heading (dense index over the generator's
 * own HS codes), plain int64 sums kept here, independent of ds_agg.
 */
#include "ds_gen.h"
#include "ds_common.h"
#include "ds_decl.h"
#include "ds_domain.h"
#include "ds_encode.h"
#include "ds_schemas.h"
#include "ds_wire.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TZ_OFFSET_MS (7 * 3600 * 1000LL) /* Asia/Ho_Chi_Minh, no DST */
#define DAY_MS (86400 * 1000LL)

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
        uint32_t heading_idx;
} hscode_t;

typedef struct tsum {
        int64_t declarations, items, value, weight, flow_value[DS_FLOW__CNT];
} tsum_t;

struct ds_gen {
        ds_gen_opts_t o;
        rng_t rng;
        uint64_t made, bad;
        uint64_t bad_by[DS_DLQ__CNT];
        uint64_t seq;
        uint64_t id_base; /* random start of the id sequence: runs with other seeds rarely overlap */
        hscode_t *hs;
        int nhs;
        int *by_flow[DS_FLOW__CNT]; /* hs indices usable for each flow */
        double *by_flow_cdf[DS_FLOW__CNT];
        int nby_flow[DS_FLOW__CNT];
        uint32_t *headings; /* heading_idx -> heading number */
        int nheadings;
        char (*tax_ids)[14];
        int ntax;
        double *tax_cdf;
        double minute_cdf_total;
        double *minute_cdf; /* cumulative intensity per minute of the span */
        int64_t nminutes;
        tsum_t gate_truth[64];
        tsum_t *heading_truth;
        ds_decl_t decl;
        char idbuf[16], keybuf[16], plate[32], office[8], hsbad[12];
        ds_buf_t out;
};

static const uint32_t pow10u[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};

static uint32_t heading_of(const char *code, int digits) {
        return (uint32_t)atoi(code) / pow10u[8 - digits];
}

static int add_heading(ds_gen_t *g, uint32_t h) {
        for (int i = 0; i < g->nheadings; i++)
                if (g->headings[i] == h)
                        return i;
        g->headings[g->nheadings] = h;
        return g->nheadings++;
}

/* Diurnal intensity of declarations at a local hour (gates open by day). */
static double hour_weight(int hour) {
        static const double w[24] = {0.05, 0.05, 0.05, 0.05, 0.05, 0.1, 0.4, 0.9, 1.0, 1.0, 1.0, 1.0,
                                     0.7,  0.7,  1.0,  1.0,  1.0,  0.9, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05};
        return w[hour];
}

ds_gen_t *ds_gen_new(const ds_gen_opts_t *opts, char *errstr, size_t sz) {
        ds_domain_init();
        ds_gen_t *g = calloc(1, sizeof(*g));
        if (!g) {
                ds_err(errstr, sz, "out of memory");
                return NULL;
        }
        g->o = *opts;
        if (g->o.heading_digits < 2 || g->o.heading_digits > 8 || (g->o.heading_digits & 1)) {
                ds_err(errstr, sz, "heading digits must be 2, 4, 6 or 8");
                goto fail;
        }
        if (g->o.extra_headings < 0 || g->o.extra_headings > 200000) {
                ds_err(errstr, sz, "extra headings must be between 0 and 200000");
                goto fail;
        }
        if (!g->o.schema_id)
                g->o.schema_id = DS_SCHEMA_ID_DECLARATION_V1;
        uint64_t x = opts->seed;
        for (int i = 0; i < 4; i++)
                g->rng.s[i] = splitmix64(&x);
        g->id_base = splitmix64(&x) % 10000000000ULL;

        int ncsv = ds_commodity_count();
        g->nhs = ncsv + g->o.extra_headings;
        g->hs = calloc((size_t)g->nhs, sizeof(hscode_t));
        g->headings = calloc((size_t)g->nhs, sizeof(uint32_t));
        int oom = !g->hs || !g->headings;
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
        for (int i = ncsv; i < g->nhs; i++) {
                hscode_t *h = &g->hs[i];
                for (int tries = 0;; tries++) {
                        uint32_t code = 1000000 + rnd_below(&g->rng, 98000000);
                        snprintf(h->code, sizeof(h->code), "%08u", code);
                        uint32_t hd = heading_of(h->code, g->o.heading_digits);
                        int dup = 0;
                        for (int k = 0; k < i && !dup; k++)
                                dup = heading_of(g->hs[k].code, g->o.heading_digits) == hd;
                        if (!dup)
                                break;
                        if (tries > 1000) {
                                ds_err(errstr, sz, "cannot make %d distinct headings of %d digits",
                                       g->o.extra_headings + ncsv, g->o.heading_digits);
                                goto fail;
                        }
                }
                h->desc = "Hàng hóa khác (mã tổng hợp cho đo tải)";
                h->unit = "kg";
                h->flow = -1;
                h->lo = 0.5;
                h->hi = 5.0;
        }
        for (int i = 0; i < g->nhs; i++) {
                g->hs[i].heading_idx = (uint32_t)add_heading(g, heading_of(g->hs[i].code, g->o.heading_digits));
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
        }
        g->heading_truth = calloc((size_t)g->nheadings, sizeof(tsum_t));

        /* Declarants: 3,000 enterprises (Móng Cái alone had 1,495 in 2024);
         * shares follow 1/rank^0.8 (a few big traders, many small ones). */
        g->ntax = 3000;
        g->tax_ids = calloc((size_t)g->ntax, sizeof(*g->tax_ids));
        g->tax_cdf = calloc((size_t)g->ntax, sizeof(double));
        if (!g->heading_truth || !g->tax_ids || !g->tax_cdf) {
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
        return g;
fail:
        ds_gen_destroy(g);
        return NULL;
}

void ds_gen_destroy(ds_gen_t *g) {
        if (!g)
                return;
        free(g->hs);
        free(g->headings);
        for (int f = 0; f < DS_FLOW__CNT; f++) {
                free(g->by_flow[f]);
                free(g->by_flow_cdf[f]);
        }
        free(g->heading_truth);
        free(g->tax_ids);
        free(g->tax_cdf);
        free(g->minute_cdf);
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

/* Index into hs of a commodity for flow f, drawn by weight. */
static const hscode_t *pick_hs(ds_gen_t *g, int f) {
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
        return &g->hs[g->by_flow[f][lo]];
}

/* Log-uniform in [lo, hi]: prices cluster at the cheap end of a range. */
static double log_uniform(rng_t *r, double lo, double hi) {
        return lo * exp(log(hi / lo) * rnd01(r));
}

static ds_str_t S(const char *s) {
        return (ds_str_t){s, (uint32_t)strlen(s)};
}

/* Builds a valid declaration into g->decl. */
static void make_valid(ds_gen_t *g, int64_t declared_at) {
        rng_t *r = &g->rng;
        ds_decl_t *d = &g->decl;
        int gate = pick(r, gate_weight, ds_gate_count());
        const ds_gate_t *gt = ds_gate(gate);
        int lang_son = !strcmp(gt->office_prefix, "15");
        int flow = pick(r, lang_son ? flow_share_ls : flow_share_qn, DS_FLOW__CNT);

        g->seq++;
        snprintf(g->idbuf, sizeof(g->idbuf), "%s%010llu", id_prefix_by_flow[flow],
                 (unsigned long long)((g->id_base + g->seq) % 10000000000ULL));
        d->declaration_id = (ds_str_t){g->idbuf, 12};
        d->version = 0;
        d->kind = DS_KIND_NEW;
        d->declared_at = declared_at;
        d->gate_code = S(gt->code);
        snprintf(g->office, sizeof(g->office), "%sC%c", gt->office_prefix, 'A' + gate % 26);
        d->customs_office = S(g->office);
        d->type_code = S(type_by_flow[flow]);
        d->flow = (uint8_t)flow;
        d->declarant_tax_id = S(g->tax_ids[pick_tax(g)]);
        double ch = rnd01(r);
        d->channel = ch < 0.6 ? DS_CHANNEL_GREEN : ch < 0.9 ? DS_CHANNEL_YELLOW : DS_CHANNEL_RED;
        double pv = rnd01(r);
        if (!strcmp(gt->kind, "seaport") || pv < 0.08) {
                d->vehicle_plate = (ds_str_t){NULL, 0};
        } else if (pv < 0.25) {
                snprintf(g->plate, sizeof(g->plate), "桂P%05u", rnd_below(r, 100000));
                d->vehicle_plate = S(g->plate);
        } else {
                snprintf(g->plate, sizeof(g->plate), "%sC-%03u.%02u", lang_son ? "12" : "14", rnd_below(r, 1000),
                         rnd_below(r, 100));
                d->vehicle_plate = S(g->plate);
        }

        int n;
        double u = rnd01(r);
        for (n = 0; n < (int)DS_ARRAY_LEN(items_p) && u >= items_p[n]; n++)
                u -= items_p[n];
        n = n < (int)DS_ARRAY_LEN(items_p) ? n + 1 : 11 + (int)rnd_below(r, 20);
        d->item_cnt = (uint32_t)n;

        /* One consignment: ~7 t per truck (log-normal, sigma 0.6, mean 7 t;
         * Km3+4 and Bắc Luân II, Tết 2022: 7,300 t on 1,000+ vehicles); a
         * border-resident basket is 10-100 kg. Lines share it. */
        int br = flow == DS_FLOW_BORDER_RESIDENT;
        double consignment_kg = br ? 10 + 90 * rnd01(r) : 7000 * exp(0.6 * rnd_normal(r) - 0.18);
        int64_t total_cents = 0;
        for (int i = 0; i < n; i++) {
                ds_item_t *it = &d->items[i];
                const hscode_t *h = pick_hs(g, flow);
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
                        double share = consignment_kg / n * (0.5 + rnd01(r));
                        qty = round(share * 10) / 10;
                        if (qty < 0.1)
                                qty = 0.1;
                        if (!strcmp(h->unit, "unit")) /* a border resident's one item */
                                qty = 1, unit_value = h->lo;
                        weight_g = qty * 1000 * 1.02; /* goods plus packaging */
                }
                it->hs_code = (ds_str_t){h->code, 8};
                it->description = S(h->desc);
                it->quantity = qty;
                it->unit = S(h->unit);
                it->gross_weight_g = (int64_t)weight_g;
                it->customs_value_usd_cents = (int64_t)(qty * unit_value * 100);
                total_cents += it->customs_value_usd_cents;
                it->origin_country = S(h->flow == DS_FLOW_IMPORT && !br ? (rnd01(r) < 0.8 ? "CN" : "JP")
                                                                        : origin_by_flow[flow]);
        }
        if (br && total_cents > BORDER_RESIDENT_CAP_CENTS) {
                /* scale the basket down to the duty-free allowance */
                double k = (double)BORDER_RESIDENT_CAP_CENTS * (0.3 + 0.7 * rnd01(r)) / (double)total_cents;
                for (int i = 0; i < n; i++)
                        d->items[i].customs_value_usd_cents = (int64_t)(d->items[i].customs_value_usd_cents * k);
        }
}

/* Adds g->decl (valid) to the truth. */
static void add_truth(ds_gen_t *g) {
        const ds_decl_t *d = &g->decl;
        int gate = ds_gate_lookup(d->gate_code.p, d->gate_code.len);
        tsum_t *t = &g->gate_truth[gate];
        int64_t value = 0, weight = 0;
        uint32_t seen[DS_MAX_ITEMS];
        int nseen = 0;
        for (uint32_t i = 0; i < d->item_cnt; i++) {
                const ds_item_t *it = &d->items[i];
                value += it->customs_value_usd_cents;
                weight += it->gross_weight_g;
                char code[9];
                memcpy(code, it->hs_code.p, 8);
                code[8] = '\0';
                uint32_t hd = heading_of(code, g->o.heading_digits);
                int hi = 0;
                while (hi < g->nheadings && g->headings[hi] != hd)
                        hi++;
                tsum_t *h = &g->heading_truth[hi];
                int counted = 0;
                for (int k = 0; k < nseen; k++)
                        counted |= seen[k] == (uint32_t)hi;
                if (!counted) {
                        seen[nseen++] = (uint32_t)hi;
                        h->declarations++;
                }
                h->items++;
                h->value += it->customs_value_usd_cents;
                h->weight += it->gross_weight_g;
                h->flow_value[d->flow] += it->customs_value_usd_cents;
        }
        t->declarations++;
        t->items += d->item_cnt;
        t->value += value;
        t->weight += weight;
        t->flow_value[d->flow] += value;
}

static const ds_dlq_reason_t bad_kinds[] = {
    DS_DLQ_TRUNCATED,   DS_DLQ_BAD_MAGIC,       DS_DLQ_UNKNOWN_SCHEMA, DS_DLQ_BAD_ID,
    DS_DLQ_UNKNOWN_GATE, DS_DLQ_BAD_HS_CODE,    DS_DLQ_NO_ITEMS,       DS_DLQ_NEGATIVE_WEIGHT,
    DS_DLQ_NEGATIVE_VALUE, DS_DLQ_EMPTY,        DS_DLQ_TRAILING_BYTES,
};

void ds_gen_next(ds_gen_t *g, int64_t now_ms, ds_gen_msg_t *out) {
        rng_t *r = &g->rng;
        int64_t at = now_ms >= 0 ? now_ms : g->o.count ? sim_time(g, g->made % g->o.count) : ds_now_ms();
        make_valid(g, at);
        ds_dlq_reason_t bad = DS_DLQ_NONE;
        if (g->o.bad_rate > 0 && rnd01(r) < g->o.bad_rate)
                bad = bad_kinds[rnd_below(r, DS_ARRAY_LEN(bad_kinds))];
        ds_decl_t *d = &g->decl;
        uint32_t victim = rnd_below(r, d->item_cnt);
        switch (bad) {
        case DS_DLQ_BAD_ID:
                if (rnd01(r) < 0.5) {
                        d->declaration_id.len = 11;
                } else {
                        g->idbuf[rnd_below(r, 12)] = 'X';
                }
                break;
        case DS_DLQ_UNKNOWN_GATE:
                d->gate_code = S(rnd01(r) < 0.5 ? "DONGHUNG" : "mongcai");
                break;
        case DS_DLQ_BAD_HS_CODE:
                memcpy(g->hsbad, d->items[victim].hs_code.p, 8);
                if (rnd01(r) < 0.5) {
                        d->items[victim].hs_code = (ds_str_t){g->hsbad, 7};
                } else {
                        g->hsbad[rnd_below(r, 8)] = '.';
                        d->items[victim].hs_code = (ds_str_t){g->hsbad, 8};
                }
                break;
        case DS_DLQ_NO_ITEMS:
                d->item_cnt = 0;
                break;
        case DS_DLQ_NEGATIVE_WEIGHT:
                d->items[victim].gross_weight_g = -1 - (int64_t)rnd_below(r, 100000);
                break;
        case DS_DLQ_NEGATIVE_VALUE:
                d->items[victim].customs_value_usd_cents = -1 - (int64_t)rnd_below(r, 100000);
                break;
        default:
                break;
        }
        g->out.len = 0;
        ds_wire_put_header(&g->out, bad == DS_DLQ_UNKNOWN_SCHEMA ? 999 : g->o.schema_id);
        ds_encode_declaration(&g->out, d);
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
        memcpy(g->keybuf, g->idbuf, 12);
        out->key = g->keybuf;
        out->key_len = 12;
        out->value = g->out.len ? g->out.p : NULL;
        out->value_len = g->out.len;
        out->bad = bad;
        out->declared_at = at;
        g->made++;
        if (bad) {
                g->bad++;
                g->bad_by[bad]++;
        } else {
                add_truth(g);
        }
}

uint64_t ds_gen_made(const ds_gen_t *g) {
        return g->made;
}

uint64_t ds_gen_bad(const ds_gen_t *g) {
        return g->bad;
}

static json_t *tsum_json(const tsum_t *t) {
        return json_pack("{sIsIsIsIsIsIsIsI}", "declarations", (json_int_t)t->declarations, "items",
                         (json_int_t)t->items, "customs_value_usd_cents", (json_int_t)t->value, "gross_weight_g",
                         (json_int_t)t->weight, "export_value_usd_cents", (json_int_t)t->flow_value[0],
                         "import_value_usd_cents", (json_int_t)t->flow_value[1], "transit_value_usd_cents",
                         (json_int_t)t->flow_value[2], "border_resident_value_usd_cents",
                         (json_int_t)t->flow_value[3]);
}

int ds_gen_write_truth(const ds_gen_t *g, FILE *out, char *errstr, size_t sz) {
        json_t *root = json_object(), *bad = json_object(), *gates = json_object(), *heads = json_object();
        for (int i = 1; i < DS_DLQ__CNT; i++)
                if (g->bad_by[i])
                        json_object_set_new(bad, ds_dlq_code((ds_dlq_reason_t)i), json_integer((json_int_t)g->bad_by[i]));
        for (int i = 0; i < ds_gate_count(); i++)
                if (g->gate_truth[i].declarations)
                        json_object_set_new(gates, ds_gate(i)->code, tsum_json(&g->gate_truth[i]));
        for (int i = 0; i < g->nheadings; i++)
                if (g->heading_truth[i].declarations) {
                        char k[16];
                        snprintf(k, sizeof(k), "%0*u", g->o.heading_digits, g->headings[i]);
                        json_object_set_new(heads, k, tsum_json(&g->heading_truth[i]));
                }
        json_object_set_new(root, "seed", json_integer((json_int_t)g->o.seed));
        json_object_set_new(root, "heading_digits", json_integer(g->o.heading_digits));
        json_object_set_new(root, "messages", json_integer((json_int_t)g->made));
        json_object_set_new(root, "valid", json_integer((json_int_t)(g->made - g->bad)));
        json_object_set_new(root, "bad", json_integer((json_int_t)g->bad));
        json_object_set_new(root, "bad_by_reason", bad);
        json_t *totals = json_object();
        json_object_set_new(totals, "GATE", gates);
        json_object_set_new(totals, "COMMODITY", heads);
        json_object_set_new(root, "totals", totals);
        int rc = json_dumpf(root, out, JSON_INDENT(1) | JSON_SORT_KEYS);
        json_decref(root);
        if (rc || fputc('\n', out) == EOF)
                return ds_err(errstr, sz, "cannot write the truth file");
        return 0;
}
