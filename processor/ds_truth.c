/*
 * ds_truth.c - the reference model (see ds_truth.h).
 *
 * Written for obviousness, not speed: one generic hash map of 128-bit keys,
 * whole declarations kept per id, every contribution recomputed from raw
 * items. Time arithmetic is its own (floored modulo), not ds_window's.
 */
#include "ds_truth.h"
#include "ds_domain.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a map of (a, b) -> uint32 value ------------------------------------ */

typedef struct pslot {
        uint64_t a, b;
        uint32_t v;
        uint32_t used;
} pslot_t;

typedef struct pmap {
        pslot_t *s;
        uint64_t mask, n;
} pmap_t;

static uint64_t mix(uint64_t x) {
        x ^= x >> 31;
        x *= 0x7fb5d329728ea185ULL;
        x ^= x >> 27;
        x *= 0x81dadef4bc2dd44dULL;
        return x ^ (x >> 33);
}

static pslot_t *pmap_slot(pmap_t *m, uint64_t a, uint64_t b) {
        for (uint64_t i = mix(a ^ mix(b)) & m->mask;; i = (i + 1) & m->mask)
                if (!m->s[i].used || (m->s[i].a == a && m->s[i].b == b))
                        return &m->s[i];
}

static int pmap_grow(pmap_t *m) {
        uint64_t cap = m->s ? (m->mask + 1) * 2 : 64;
        pmap_t n = {calloc(cap, sizeof(pslot_t)), cap - 1, 0};
        if (!n.s)
                return -1;
        for (uint64_t i = 0; m->s && i <= m->mask; i++)
                if (m->s[i].used) {
                        *pmap_slot(&n, m->s[i].a, m->s[i].b) = m->s[i];
                        n.n++;
                }
        free(m->s);
        *m = n;
        return 0;
}

/* Returns the value slot for (a, b), inserting `fresh` when absent (*added set). */
static pslot_t *pmap_get(pmap_t *m, uint64_t a, uint64_t b, uint32_t fresh, int *added) {
        if (!m->s || (m->n + 1) * 2 > m->mask + 1)
                if (pmap_grow(m))
                        return NULL;
        pslot_t *s = pmap_slot(m, a, b);
        if (added)
                *added = !s->used;
        if (!s->used) {
                *s = (pslot_t){a, b, fresh, 1};
                m->n++;
        }
        return s;
}

static pslot_t *pmap_find(const pmap_t *m, uint64_t a, uint64_t b) {
        if (!m->s)
                return NULL;
        pslot_t *s = pmap_slot((pmap_t *)m, a, b);
        return s->used ? s : NULL;
}

/* Deletion by rebuilding the probe run after the slot (tombstone-free). */
static void pmap_del(pmap_t *m, uint64_t a, uint64_t b) {
        pslot_t *s = pmap_find(m, a, b);
        if (!s)
                return;
        s->used = 0;
        m->n--;
        for (uint64_t i = ((uint64_t)(s - m->s) + 1) & m->mask; m->s[i].used; i = (i + 1) & m->mask) {
                pslot_t e = m->s[i];
                m->s[i].used = 0;
                m->n--;
                *pmap_slot(m, e.a, e.b) = e;
                m->n++;
        }
}

/* ---- model state --------------------------------------------------------- */

typedef struct decl {
        ds_truth_event_t e; /* the applied version (for CANCEL: the cancel event) */
        int cancelled;
} decl_t;

typedef struct row {
        uint64_t a;
        int64_t start;
        int64_t m[8];
} row_t;

typedef struct dset {
        int gate;
        int64_t day;
        pmap_t declarants, vehicles;
} dset_t;

struct ds_truth {
        ds_truth_cfg_t cfg;
        int64_t *wm; /* per partition */
        int32_t nwm;
        pmap_t ledger; /* (partition, id) -> index into decls */
        decl_t **decls;
        uint32_t ndecls, capdecls;
        pmap_t rows; /* (a, start) -> index into rowv */
        row_t *rowv;
        uint32_t nrows, caprows;
        pmap_t sets; /* (gate, day) -> index into setv */
        dset_t *setv;
        uint32_t nsets, capsets;
};

enum { D_GATE = 0, D_COMMODITY = 1, D_CELL = 2 };
enum { W_TOTAL = 0, W_MINUTE, W_HOUR, W_DAY };

static const int64_t MIN_MS = 60000, HOUR_MS = 3600000, DAY_MS = 86400000, VN_OFFSET_MS = 25200000;

static int64_t floormod(int64_t a, int64_t b) {
        int64_t r = a % b;
        return r < 0 ? r + b : r;
}

static int64_t win_start(int w, int64_t t) {
        if (w == W_MINUTE)
                return t - floormod(t, MIN_MS);
        if (w == W_HOUR)
                return t - floormod(t, HOUR_MS);
        if (w == W_DAY) {
                int64_t local = t + VN_OFFSET_MS;
                return local - floormod(local, DAY_MS) - VN_OFFSET_MS;
        }
        return 0;
}

void ds_truth_cfg_default(ds_truth_cfg_t *c) {
        c->heading_digits = 4;
        c->minute_retention_ms = 3 * HOUR_MS;
        c->hour_retention_ms = 3 * DAY_MS;
        c->day_retention_ms = 400 * DAY_MS;
        c->top_retention_ms = 7 * DAY_MS;
        c->ledger_retention_ms = 35 * DAY_MS;
}

ds_truth_t *ds_truth_new(const ds_truth_cfg_t *cfg) {
        ds_truth_t *t = calloc(1, sizeof(*t));
        if (t)
                t->cfg = *cfg;
        return t;
}

void ds_truth_destroy(ds_truth_t *t) {
        if (!t)
                return;
        for (uint32_t i = 0; i < t->ndecls; i++)
                free(t->decls[i]);
        free(t->decls);
        free(t->ledger.s);
        free(t->rows.s);
        free(t->rowv);
        for (uint32_t i = 0; i < t->nsets; i++) {
                free(t->setv[i].declarants.s);
                free(t->setv[i].vehicles.s);
        }
        free(t->setv);
        free(t->sets.s);
        free(t->wm);
        free(t);
}

uint64_t ds_truth_rows(const ds_truth_t *t) {
        return t->nrows;
}

static int64_t retention(const ds_truth_t *t, int w) {
        return w == W_MINUTE ? t->cfg.minute_retention_ms : w == W_HOUR ? t->cfg.hour_retention_ms
                                                                         : t->cfg.day_retention_ms;
}

static int64_t wsize(int w) {
        return w == W_MINUTE ? MIN_MS : w == W_HOUR ? HOUR_MS : DAY_MS;
}

/* key: a gate or heading number; a cell's is gate << 32 | heading */
static row_t *row(ds_truth_t *t, int dim, int win, uint64_t key, int64_t start) {
        uint64_t a = (uint64_t)dim << 60 | (uint64_t)win << 56 | key;
        int added;
        pslot_t *s = pmap_get(&t->rows, a, (uint64_t)start, t->nrows, &added);
        if (!s)
                return NULL;
        if (added) {
                if (t->nrows == t->caprows) {
                        uint32_t cap = t->caprows ? t->caprows * 2 : 1024;
                        row_t *n = realloc(t->rowv, cap * sizeof(*n));
                        if (!n)
                                return NULL;
                        t->rowv = n;
                        t->caprows = cap;
                }
                t->rowv[t->nrows] = (row_t){a, start, {0}};
                t->nrows++;
        }
        return &t->rowv[s->v];
}

static dset_t *dset(ds_truth_t *t, int gate, int64_t day) {
        int added;
        pslot_t *s = pmap_get(&t->sets, (uint64_t)gate, (uint64_t)day, t->nsets, &added);
        if (!s)
                return NULL;
        if (added) {
                if (t->nsets == t->capsets) {
                        uint32_t cap = t->capsets ? t->capsets * 2 : 64;
                        dset_t *n = realloc(t->setv, cap * sizeof(*n));
                        if (!n)
                                return NULL;
                        t->setv = n;
                        t->capsets = cap;
                }
                memset(&t->setv[t->nsets], 0, sizeof(dset_t));
                t->setv[t->nsets].gate = gate;
                t->setv[t->nsets].day = day;
                t->nsets++;
        }
        return &t->setv[s->v];
}

static void bump(row_t *r, int64_t sign, int64_t items, int64_t value, int64_t weight, int flow) {
        r->m[0] += sign;
        r->m[1] += sign * items;
        r->m[2] += sign * value;
        r->m[3] += sign * weight;
        r->m[4 + flow] += sign * value;
}

/* Adds (sign 1) or retracts (sign -1) declaration e at watermark wm. */
static int contribute(ds_truth_t *t, const ds_truth_event_t *e, int64_t sign, int64_t wm) {
        static const uint32_t div[9] = {0, 0, 1000000, 0, 10000, 0, 100, 0, 1};
        uint32_t hd[DS_TRUTH_MAX_ITEMS];
        int64_t hitems[DS_TRUTH_MAX_ITEMS], hvalue[DS_TRUTH_MAX_ITEMS], hweight[DS_TRUTH_MAX_ITEMS];
        int nh = 0;
        int64_t value = 0, weight = 0;
        for (int i = 0; i < e->nitems; i++) {
                uint32_t h = e->items[i].hs / div[t->cfg.heading_digits];
                int k = 0;
                while (k < nh && hd[k] != h)
                        k++;
                if (k == nh) {
                        hd[nh] = h;
                        hitems[nh] = hvalue[nh] = hweight[nh] = 0;
                        nh++;
                }
                hitems[k]++;
                hvalue[k] += e->items[i].value;
                hweight[k] += e->items[i].weight;
                value += e->items[i].value;
                weight += e->items[i].weight;
        }
        for (int w = W_TOTAL; w <= W_DAY; w++) {
                int64_t start = win_start(w, e->declared_at);
                if (w != W_TOTAL && start + wsize(w) + retention(t, w) <= wm)
                        continue; /* closed */
                row_t *r = row(t, D_GATE, w, (uint32_t)e->gate, start);
                if (!r)
                        return -1;
                bump(r, sign, e->nitems, value, weight, e->flow);
                for (int k = 0; k < nh; k++) {
                        if (!(r = row(t, D_COMMODITY, w, hd[k], start)))
                                return -1;
                        bump(r, sign, hitems[k], hvalue[k], hweight[k], e->flow);
                }
                if (w == W_DAY && sign > 0) {
                        dset_t *d = dset(t, e->gate, start);
                        if (!d || !pmap_get(&d->declarants, e->declarant, 0, 0, NULL) ||
                            (e->vehicle && !pmap_get(&d->vehicles, e->vehicle, 0, 0, NULL)))
                                return -1;
                }
        }
        int64_t day = win_start(W_DAY, e->declared_at);
        if (day + DAY_MS + t->cfg.top_retention_ms > wm)
                for (int k = 0; k < nh; k++) {
                        row_t *r = row(t, D_CELL, W_DAY, (uint64_t)e->gate << 32 | hd[k], day);
                        if (!r)
                                return -1;
                        bump(r, sign, hitems[k], hvalue[k], hweight[k], e->flow);
                }
        return 0;
}

int ds_truth_apply(ds_truth_t *t, const ds_truth_event_t *e) {
        if (e->partition >= t->nwm) {
                int32_t n = e->partition + 1;
                int64_t *w = realloc(t->wm, (size_t)n * sizeof(*w));
                if (!w)
                        return -1;
                for (int32_t i = t->nwm; i < n; i++)
                        w[i] = INT64_MIN;
                t->wm = w;
                t->nwm = n;
        }
        if (e->declared_at > t->wm[e->partition])
                t->wm[e->partition] = e->declared_at;
        int64_t wm = t->wm[e->partition];

        pslot_t *s = pmap_find(&t->ledger, (uint64_t)e->partition, e->id);
        decl_t *d = s ? t->decls[s->v] : NULL;
        if (d && d->e.declared_at < wm - t->cfg.ledger_retention_ms) {
                /* forgotten past retention */
                pmap_del(&t->ledger, (uint64_t)e->partition, e->id);
                d = NULL;
        }
        if (!d) {
                d = calloc(1, sizeof(*d));
                if (!d)
                        return -1;
                if (t->ndecls == t->capdecls) {
                        uint32_t cap = t->capdecls ? t->capdecls * 2 : 1024;
                        decl_t **n = realloc(t->decls, cap * sizeof(*n));
                        if (!n) {
                                free(d);
                                return -1;
                        }
                        t->decls = n;
                        t->capdecls = cap;
                }
                t->decls[t->ndecls] = d;
                if (!pmap_get(&t->ledger, (uint64_t)e->partition, e->id, t->ndecls, NULL))
                        return -1;
                t->ndecls++;
                d->e = *e;
                if (e->kind == 2) {
                        d->cancelled = 1;
                        return 0;
                }
                return contribute(t, e, 1, wm);
        }
        if (d->cancelled || e->version <= d->e.version)
                return 0;
        if (contribute(t, &d->e, -1, wm))
                return -1;
        d->e = *e;
        if (e->kind == 2) {
                d->cancelled = 1;
                return 0;
        }
        return contribute(t, e, 1, wm);
}

/* ---- output -------------------------------------------------------------- */

static const char *const wnames[] = {"TOTAL", "MINUTE", "HOUR", "DAY"};

static void key_text(const ds_truth_t *t, int dim, uint32_t key, char *buf, size_t n) {
        if (dim == D_GATE)
                snprintf(buf, n, "%s", ds_gate((int)key)->code);
        else
                snprintf(buf, n, "%0*u", t->cfg.heading_digits, key);
}

static int cell_cmp(const void *x, const void *y) {
        const row_t *a = *(row_t *const *)x, *b = *(row_t *const *)y;
        uint32_t ga = (uint32_t)(a->a >> 32 & 0xffff), gb = (uint32_t)(b->a >> 32 & 0xffff);
        if (ga != gb)
                return ga < gb ? -1 : 1;
        if (a->start != b->start)
                return a->start < b->start ? -1 : 1;
        if (a->m[2] != b->m[2])
                return a->m[2] > b->m[2] ? -1 : 1;
        uint32_t ha = (uint32_t)a->a, hb = (uint32_t)b->a;
        return ha < hb ? -1 : ha > hb;
}

int ds_truth_write(const ds_truth_t *t, json_t *root) {
        json_t *rows = json_object(), *distinct = json_object(), *top = json_object();
        row_t **cells = malloc((t->nrows + 1) * sizeof(*cells));
        uint32_t ncells = 0;
        if (!cells)
                return -1;
        for (uint32_t i = 0; i < t->nrows; i++) {
                const row_t *r = &t->rowv[i];
                int dim = (int)(r->a >> 60), win = (int)(r->a >> 56 & 15);
                uint32_t key = (uint32_t)r->a;
                if (dim == D_CELL) {
                        if (r->m[0] > 0)
                                cells[ncells++] = (row_t *)r;
                        continue;
                }
                char kt[24], k[96];
                key_text(t, dim, key, kt, sizeof(kt));
                snprintf(k, sizeof(k), "%s|%s|%s|%" PRId64, dim == D_GATE ? "GATE" : "COMMODITY", kt, wnames[win],
                         r->start);
                json_t *a = json_array();
                for (int m = 0; m < 8; m++)
                        json_array_append_new(a, json_integer(r->m[m]));
                json_object_set_new(rows, k, a);
        }
        for (uint32_t i = 0; i < t->nsets; i++) {
                const dset_t *d = &t->setv[i];
                char k[64];
                snprintf(k, sizeof(k), "%s|DAY|%" PRId64, ds_gate(d->gate)->code, d->day);
                json_object_set_new(distinct, k,
                                    json_pack("[II]", (json_int_t)d->declarants.n, (json_int_t)d->vehicles.n));
        }
        qsort(cells, ncells, sizeof(*cells), cell_cmp);
        for (uint32_t i = 0; i < ncells;) {
                uint32_t gate = (uint32_t)(cells[i]->a >> 32 & 0xffff);
                int64_t day = cells[i]->start;
                char k[64];
                snprintf(k, sizeof(k), "%s|DAY|%" PRId64, ds_gate((int)gate)->code, day);
                json_t *list = json_array();
                int rank = 0;
                for (; i < ncells && (uint32_t)(cells[i]->a >> 32 & 0xffff) == gate && cells[i]->start == day; i++) {
                        if (rank++ >= 10)
                                continue;
                        char h[16];
                        snprintf(h, sizeof(h), "%0*u", t->cfg.heading_digits, (uint32_t)cells[i]->a);
                        json_array_append_new(list, json_pack("[sIIII]", h, (json_int_t)cells[i]->m[2],
                                                              (json_int_t)cells[i]->m[0], (json_int_t)cells[i]->m[1],
                                                              (json_int_t)cells[i]->m[3]));
                }
                json_object_set_new(top, k, list);
        }
        free(cells);
        json_object_set_new(root, "rows", rows);
        json_object_set_new(root, "distinct", distinct);
        json_object_set_new(root, "top", top);
        return 0;
}
