/*
 * ds_merge.c - partition rows -> global rows, cell groups for the top-10.
 *
 * Groups: a small open-addressing map (gate, day) -> list of the headings
 * that have a global cell there. A group is marked changed when one of its
 * cells' sums changes; ds_merge_changed_groups() hands the changed ones out.
 */
#include "ds_merge.h"
#include "ds_common.h"
#include "ds_evict.h"
#include "ds_hll.h"
#include "ds_partial.h"

#include <stdlib.h>
#include <string.h>

typedef struct group {
        uint64_t key; /* (gate + 1) << 48 ^ day hash input; 0 = empty */
        uint32_t gate;
        int64_t day;
        uint32_t *headings;
        uint32_t n, cap;
        int changed;
} group_t;

struct ds_merge {
        ds_rows_t *parts;  /* key with partition -> latest value */
        ds_rows_t *global; /* key -> sum over partitions */
        ds_evict_t *ev;    /* global windowed rows by closing time */
        int64_t wm;        /* minimum watermark over partitions, as last advanced */
        int64_t close_wm;  /* ... as the partitions' statuses last said (>= wm): what is closed */
        int32_t *epochs;   /* per partition: current owner epoch */
        int32_t nepochs;
        group_t *groups;
        uint32_t gmask, gused;
        uint32_t gempty;   /* groups whose last cell went: removed at the next advance */
        uint32_t *changed; /* indices of changed groups */
        uint32_t nchanged, capchanged;
        ds_rowkey_t *drops; /* shares of global rows just removed, DROPS_MAX at most (drop_globals) */
        uint32_t ndrops;
};

ds_merge_t *ds_merge_new(const ds_window_cfg_t *win, int64_t top_retention_ms) {
        ds_merge_t *m = calloc(1, sizeof(*m));
        if (!m)
                return NULL;
        m->wm = INT64_MIN;
        m->close_wm = INT64_MIN;
        m->parts = ds_rows_new(1024);
        m->global = ds_rows_new(1024);
        m->ev = ds_evict_new(win, top_retention_ms);
        m->gmask = 63;
        m->groups = calloc(m->gmask + 1, sizeof(group_t));
        if (!m->parts || !m->global || !m->groups || !m->ev) {
                ds_merge_destroy(m);
                return NULL;
        }
        return m;
}

void ds_merge_destroy(ds_merge_t *m) {
        if (!m)
                return;
        ds_rows_destroy(m->parts);
        ds_rows_destroy_with(m->global, ds_distinct_free);
        ds_evict_destroy(m->ev);
        free(m->epochs);
        if (m->groups)
                for (uint32_t i = 0; i <= m->gmask; i++)
                        free(m->groups[i].headings);
        free(m->groups);
        free(m->changed);
        free(m->drops);
        free(m);
}

ds_rows_t *ds_merge_global(ds_merge_t *m) {
        return m->global;
}

/* ---- groups -------------------------------------------------------------- */

/* Never 0, which marks an empty slot (equality also compares gate and day). */
static inline uint64_t group_key(uint32_t gate, int64_t day) {
        return (((uint64_t)(gate + 1) << 56) ^ (uint64_t)day ^ 0x8000000000000000ULL) | 1;
}

static group_t *group_find(ds_merge_t *m, uint32_t gate, int64_t day, int create) {
        uint64_t k = group_key(gate, day);
        for (uint32_t s = (uint32_t)ds_mix64(k) & m->gmask;; s = (s + 1) & m->gmask) {
                group_t *g = &m->groups[s];
                if (g->key == k && g->gate == gate && g->day == day)
                        return g;
                if (!g->key) {
                        if (!create)
                                return NULL;
                        if ((m->gused + 1) * 2 > m->gmask + 1) {
                                /* grow and retry */
                                uint32_t nm = m->gmask * 2 + 1;
                                group_t *ng = calloc(nm + 1, sizeof(group_t));
                                if (!ng)
                                        return NULL;
                                for (uint32_t i = 0; i <= m->gmask; i++) {
                                        if (!m->groups[i].key)
                                                continue;
                                        uint32_t t = (uint32_t)ds_mix64(m->groups[i].key) & nm;
                                        while (ng[t].key)
                                                t = (t + 1) & nm;
                                        ng[t] = m->groups[i];
                                }
                                free(m->groups);
                                m->groups = ng;
                                m->gmask = nm;
                                /* changed indices point into the old array: rebuild them */
                                m->nchanged = 0;
                                for (uint32_t i = 0; i <= nm; i++)
                                        if (ng[i].key && ng[i].changed)
                                                m->changed[m->nchanged++] = i;
                                return group_find(m, gate, day, create);
                        }
                        *g = (group_t){k, gate, day, NULL, 0, 0, 0};
                        m->gused++;
                        return g;
                }
        }
}

static int group_mark(ds_merge_t *m, group_t *g) {
        if (g->changed)
                return 0;
        if (m->nchanged == m->capchanged) {
                uint32_t cap = m->capchanged ? m->capchanged * 2 : 64;
                uint32_t *c = realloc(m->changed, cap * sizeof(*c));
                if (!c)
                        return -1;
                m->changed = c;
                m->capchanged = cap;
        }
        g->changed = 1;
        m->changed[m->nchanged++] = (uint32_t)(g - m->groups);
        return 0;
}

static int group_add(ds_merge_t *m, uint32_t gate, int64_t day, uint32_t heading) {
        /* the changed list may need room for every group after a rehash */
        if (m->capchanged < m->gmask + 1) {
                uint32_t *c = realloc(m->changed, (m->gmask + 1) * 2 * sizeof(*c));
                if (!c)
                        return -1;
                m->changed = c;
                m->capchanged = (m->gmask + 1) * 2;
        }
        group_t *g = group_find(m, gate, day, 1);
        if (!g)
                return -1;
        if (g->n == g->cap) {
                uint32_t cap = g->cap ? g->cap * 2 : 8;
                uint32_t *h = realloc(g->headings, cap * sizeof(*h));
                if (!h)
                        return -1;
                g->headings = h;
                g->cap = cap;
        }
        g->headings[g->n++] = heading;
        return 0;
}

static void group_remove(ds_merge_t *m, uint32_t gate, int64_t day, uint32_t heading) {
        group_t *g = group_find(m, gate, day, 0);
        if (!g)
                return;
        for (uint32_t i = 0; i < g->n; i++)
                if (g->headings[i] == heading) {
                        g->headings[i] = g->headings[--g->n];
                        if (!g->n)
                                m->gempty++;
                        break;
                }
}

/* Removes the groups whose cells have all closed. Rehashing the rest into a
 * fresh table is simpler than deleting from an open-addressing one in place
 * (entries would move, and the changed list holds their indices), and it is
 * rare: a group empties once, when its day passes the top lists' retention.
 * A group still on the changed list stays until it has been reported. On
 * out-of-memory nothing changes and the next advance tries again. */
static void groups_compact(ds_merge_t *m) {
        group_t *ng = calloc(m->gmask + 1, sizeof(group_t));
        if (!ng)
                return;
        uint32_t used = 0, empty = 0;
        m->nchanged = 0;
        for (uint32_t i = 0; i <= m->gmask; i++) {
                group_t *g = &m->groups[i];
                if (!g->key)
                        continue;
                if (!g->n && !g->changed) {
                        free(g->headings);
                        continue;
                }
                uint32_t t = (uint32_t)ds_mix64(g->key) & m->gmask;
                while (ng[t].key)
                        t = (t + 1) & m->gmask;
                ng[t] = *g;
                used++;
                empty += !g->n;
                if (g->changed) /* no more than were on the list: it had room */
                        m->changed[m->nchanged++] = t;
        }
        free(m->groups);
        m->groups = ng;
        m->gused = used;
        m->gempty = empty;
}

/* ---- rows ---------------------------------------------------------------- */

int ds_merge_epoch(ds_merge_t *m, int32_t partition, int32_t epoch) {
        if (partition >= m->nepochs) {
                int32_t n = partition + 1 > m->nepochs * 2 ? partition + 1 : m->nepochs * 2;
                int32_t *e = realloc(m->epochs, (size_t)n * sizeof(*e));
                if (!e)
                        return -1;
                memset(e + m->nepochs, 0, (size_t)(n - m->nepochs) * sizeof(*e));
                m->epochs = e;
                m->nepochs = n;
        }
        if (epoch < m->epochs[partition])
                return DS_MERGE_FENCED;
        m->epochs[partition] = epoch;
        return 0;
}

void ds_merge_prefetch(const ds_merge_t *m, int step, int32_t partition, ds_rowkey_t key, uint32_t hashes[2]) {
        if (step == 1) {
                key = ds_rowkey_without_partition(key);
                ds_rowkey_t pk = ds_rowkey_with_partition(key, partition);
                ds_rows_prefetch_many(m->parts, &pk, 1, &hashes[0]);
                ds_rows_prefetch_many(m->global, &key, 1, &hashes[1]);
        } else {
                ds_rows_prefetch_row(m->parts, hashes[0]);
                ds_rows_prefetch_row(m->global, hashes[1]);
        }
}

int ds_merge_update(ds_merge_t *m, const ds_merge_src_t *src, ds_rowkey_t key, const ds_measures_t *value,
                    const ds_distinct_t *distinct) {
        key = ds_rowkey_without_partition(key);
        int cls = ds_evict_class(key);
        if (cls >= 0 && ds_evict_closed(m->ev, cls, key.start, m->close_wm))
                return DS_MERGE_CLOSED;
        int fenced = ds_merge_epoch(m, src->partition, src->epoch);
        if (fenced)
                return fenced;
        ds_rowkey_t pk = ds_rowkey_with_partition(key, src->partition);
        ds_row_t *p = ds_rows_find(m->parts, pk);
        /* an older value: the same owner's, or a new owner's replaying from an
         * older checkpoint (kept until it passes the kept offset) */
        if (p && src->offset < p->seq)
                return DS_MERGE_STALE;
        if (!p && !(p = ds_rows_get(m->parts, pk)))
                return -1;
        p->refs = (uint32_t)src->epoch;
        p->seq = src->offset;
        ds_row_t *g = ds_rows_find(m->global, key);
        int fresh = !g;
        if (fresh && !(g = ds_rows_get(m->global, key)))
                return -1;
        /* which partitions hold a share of g, modulo 64 (drop_global) */
        g->seq |= (int64_t)(UINT64_C(1) << (src->partition & 63));
        if (fresh) {
                if (cls >= 0 && ds_evict_add(m->ev, cls, key))
                        return -1;
                if (ds_rowkey_dim(key) == DS_DIM_GATE_HEADING &&
                    group_add(m, ds_cell_gate(key), key.start, ds_cell_heading(key)))
                        return -1;
        }
        int changed = 0;
        if (distinct) {
                if (!g->aux) {
                        if (!(g->aux = ds_distinct_dup(distinct)))
                                return -1;
                } else if (ds_distinct_merge(g->aux, distinct)) {
                        return -1;
                }
                changed = 1; /* the estimate may have moved; cheap to republish */
        }
        if (memcmp(&p->m, value, sizeof(*value))) {
                /* shares have no upper bound (a TOTAL share only grows) */
                ds_measures_replace_sat(&g->m, &p->m, value);
                p->m = *value;
                changed = 1;
        }
        if (changed) {
                ds_rows_mark(m->global, g);
                if (ds_rowkey_dim(key) == DS_DIM_GATE_HEADING) {
                        group_t *grp = group_find(m, ds_cell_gate(key), key.start, 0);
                        if (grp && group_mark(m, grp))
                                return -1;
                }
        }
        return DS_MERGE_APPLIED;
}

/* Shares' keys collected before they are removed together (64 KiB). */
#define DROPS_MAX 4096

/* The collected shares, removed with their rows loaded ahead. */
static void drop_shares(ds_merge_t *m) {
        ds_rows_remove_many(m->parts, m->drops, m->ndrops, NULL, NULL);
        m->ndrops = 0;
}

/* A global row about to be removed: its top-list cell, its sketches, and
 * the keys of its partitions' shares, removed in batches (drop_shares;
 * m->parts is not the table being walked). */
static void drop_global(void *ctx, ds_row_t *g) {
        ds_merge_t *m = ctx;
        ds_rowkey_t key = g->key;
        if (ds_rowkey_dim(key) == DS_DIM_GATE_HEADING)
                group_remove(m, ds_cell_gate(key), key.start, ds_cell_heading(key));
        ds_distinct_free(g->aux);
        g->aux = NULL;
        /* Every partition's share goes with it. g->seq has bit p % 64 set
         * for each partition p that sent one, so only partitions b, b + 64,
         * b + 128 ... of each bit b set are looked for. (Looking for every
         * partition seen cost 192 lookups per dropped row, nearly all
         * misses in a large table: 12 % of a catch-up's CPU with 50 gates x
         * 10,000 headings; bench/HOTPATH.md, thirteenth round.) */
        for (uint64_t bits = (uint64_t)g->seq; bits; bits &= bits - 1)
                for (int32_t p = __builtin_ctzll(bits); p < m->nepochs; p += 64) {
                        ds_rowkey_t share = ds_rowkey_with_partition(key, p);
                        if (!m->drops && !(m->drops = malloc(DROPS_MAX * sizeof(*m->drops)))) {
                                ds_rows_remove(m->parts, share); /* out of memory: one at a time */
                                continue;
                        }
                        m->drops[m->ndrops++] = share;
                        if (m->ndrops == DROPS_MAX)
                                drop_shares(m);
                }
}

/* A bucket of closed global keys: the global rows, then their shares, each
 * table's rows loaded ahead (ds_rows_remove_many(); bench/HOTPATH.md,
 * seventeenth round). */
static void drop_globals(void *ctx, const ds_rowkey_t *keys, uint32_t n) {
        ds_merge_t *m = ctx;
        ds_rows_remove_many(m->global, keys, n, drop_global, m);
        drop_shares(m);
}

uint32_t ds_merge_shares(const ds_merge_t *m) {
        return ds_rows_count(m->parts);
}

int ds_merge_retention(ds_merge_t *m, const ds_window_cfg_t *win, int64_t top_retention_ms) {
        if (!ds_evict_lengthen(m->ev, win, top_retention_ms, 1))
                return 0;
        if (m->close_wm != INT64_MIN)
                return -1; /* a window closed (and maybe removed) may not open again */
        ds_evict_lengthen(m->ev, win, top_retention_ms, 0);
        return 0;
}

void ds_merge_close(ds_merge_t *m, int64_t wm) {
        if (wm > m->close_wm)
                m->close_wm = wm;
}

uint64_t ds_merge_advance(ds_merge_t *m, int64_t wm) {
        /* what the statuses closed refuses every share already: its rows go
         * too, even when wm is behind (a new owner restored an older
         * watermark, an idle partition woke up) */
        if (wm < m->close_wm)
                wm = m->close_wm;
        if (wm <= m->wm)
                return 0;
        m->wm = wm;
        ds_merge_close(m, wm);
        uint64_t n = ds_evict_pop(m->ev, wm, drop_globals, m);
        /* removed slots of the parts table become reusable (it has no dirty list) */
        ds_rows_clear_dirty(m->parts);
        if (m->gempty)
                groups_compact(m);
        return n;
}

void ds_merge_changed_groups(ds_merge_t *m, ds_merge_group_fn fn, void *ctx) {
        for (uint32_t i = 0; i < m->nchanged; i++) {
                group_t *g = &m->groups[m->changed[i]];
                g->changed = 0;
                fn(ctx, g->gate, g->day);
        }
        m->nchanged = 0;
}

int ds_merge_top(ds_merge_t *m, uint32_t gate, int64_t day, ds_top_entry_t *out, int n) {
        group_t *g = group_find(m, gate, day, 0);
        int k = 0;
        if (!g)
                return 0;
        for (uint32_t i = 0; i < g->n; i++) {
                const ds_row_t *r =
                    ds_rows_find(m->global, ds_cell_rowkey(gate, g->headings[i], day));
                if (!r || r->m.declarations <= 0)
                        continue;
                /* insertion into the sorted top-n */
                int pos = k;
                while (pos > 0 && (out[pos - 1].m.value < r->m.value ||
                                   (out[pos - 1].m.value == r->m.value && out[pos - 1].heading > g->headings[i])))
                        pos--;
                if (pos >= n)
                        continue;
                int last = k < n ? k : n - 1;
                memmove(&out[pos + 1], &out[pos], (size_t)(last - pos) * sizeof(*out));
                out[pos] = (ds_top_entry_t){g->headings[i], r->m};
                if (k < n)
                        k++;
        }
        return k;
}

/* ---- saving and loading ------------------------------------------------- */

#define SAVE_VERSION 1

/* A row's key and measures (load_row() reads them back). */
static void save_row(ds_buf_t *b, const ds_row_t *r) {
        ds_buf_put_u64(b, r->key.k);
        ds_avro_put_long(b, r->key.start);
        const int64_t *v = &r->m.declarations;
        for (int i = 0; i < 8; i++)
                ds_avro_put_long(b, v[i]);
}

/* A saved row's key and measures (save_row()'s). */
static ds_rowkey_t load_row(ds_rd_t *r, ds_measures_t *m) {
        ds_rowkey_t k;
        k.k = ds_rd_u64(r);
        k.start = ds_rd_long(r);
        int64_t *v = &m->declarations;
        for (int i = 0; i < 8; i++)
                v[i] = ds_rd_long(r);
        return k;
}

void ds_merge_save(ds_merge_t *m, ds_buf_t *b) {
        ds_window_cfg_t win;
        int64_t top;
        ds_evict_retentions(m->ev, &win, &top);
        uint8_t v = SAVE_VERSION;
        ds_buf_put(b, &v, 1);
        ds_avro_put_long(b, m->wm);
        ds_avro_put_long(b, m->close_wm);
        ds_avro_put_long(b, win.retention_ms[DS_WIN_MINUTE]);
        ds_avro_put_long(b, win.retention_ms[DS_WIN_HOUR]);
        ds_avro_put_long(b, win.retention_ms[DS_WIN_DAY]);
        ds_avro_put_long(b, top);
        ds_avro_put_long(b, m->nepochs);
        for (int32_t i = 0; i < m->nepochs; i++)
                ds_avro_put_long(b, m->epochs[i]);
        ds_avro_put_long(b, ds_rows_count(m->parts));
        uint32_t cur = 0;
        for (ds_row_t *p; (p = ds_rows_iter(m->parts, &cur));) {
                save_row(b, p);
                ds_avro_put_long(b, p->refs); /* the epoch the share came with */
                ds_avro_put_long(b, p->seq);  /* ... and its input offset */
        }
        ds_avro_put_long(b, ds_rows_count(m->global));
        cur = 0;
        for (ds_row_t *g; (g = ds_rows_iter(m->global, &cur));) {
                save_row(b, g);
                ds_buf_put_u64(b, (uint64_t)g->seq); /* partitions with a share, modulo 64 */
                const ds_distinct_t *d = g->aux;
                ds_avro_put_long(b, d ? 1 : 0);
                if (d) {
                        ds_hll_put_bytes(b, d->declarants);
                        ds_hll_put_bytes(b, d->vehicles);
                }
        }
}

/* A saved row within what the merge makes (as ds_partial.c checks a
 * partial row): a dimension and window that exist, a cell only for DAY, a
 * window start that is one (0 for TOTAL), measures >= 0, and a partition
 * with an epoch on a share only. */
static int row_ok(const ds_merge_t *m, ds_rowkey_t k, const ds_measures_t *v, int share) {
        ds_window_t w = ds_rowkey_window(k);
        if (ds_rowkey_dim(k) >= DS_DIM__CNT || w >= DS_WIN__CNT)
                return 0;
        if (ds_rowkey_dim(k) == DS_DIM_GATE_HEADING && w != DS_WIN_DAY)
                return 0;
        if (w == DS_WIN_TOTAL ? k.start != 0
                              : k.start < -DS_PARTIAL_TIME_ABS || k.start > DS_PARTIAL_TIME_ABS ||
                                        k.start != ds_window_start(w, k.start))
                return 0;
        const int64_t *x = &v->declarations;
        for (int i = 0; i < 8; i++)
                if (x[i] < 0)
                        return 0;
        int32_t p = ds_rowkey_partition(k);
        return share ? p >= 0 && p < m->nepochs : p < 0;
}

int ds_merge_load(ds_merge_t *m, ds_rd_t *r) {
        if (r->end - r->p < 1 || *r->p++ != SAVE_VERSION)
                return -1;
        m->wm = ds_rd_long(r);
        m->close_wm = ds_rd_long(r);
        ds_window_cfg_t win = {{0}};
        win.retention_ms[DS_WIN_MINUTE] = ds_rd_long(r);
        win.retention_ms[DS_WIN_HOUR] = ds_rd_long(r);
        win.retention_ms[DS_WIN_DAY] = ds_rd_long(r);
        int64_t top = ds_rd_long(r);
        /* Before anything closed, a longer retention of this run's applies
         * (ds_merge_retention()); after, exactly the saved ones: a window
         * closed there, perhaps removed with its shares, must not reopen. */
        if (m->close_wm == INT64_MIN)
                ds_evict_lengthen(m->ev, &win, top, 0);
        else
                ds_evict_set_retentions(m->ev, &win, top);
        int64_t n = ds_rd_long(r);
        if (r->bad || n < 0 || n > DS_PARTITION_MAX + 1 || n > r->end - r->p)
                return -1;
        if (n > 0 && ds_merge_epoch(m, (int32_t)n - 1, 0) < 0)
                return -1;
        for (int32_t i = 0; i < (int32_t)n; i++) {
                int64_t e = ds_rd_long(r);
                if (e < 0 || e > INT32_MAX)
                        return -1;
                m->epochs[i] = (int32_t)e;
        }
        n = ds_rd_long(r);
        for (int64_t i = 0; i < n && !r->bad; i++) {
                ds_measures_t v;
                ds_rowkey_t k = load_row(r, &v);
                int64_t epoch = ds_rd_long(r), offset = ds_rd_long(r);
                if (r->bad || !row_ok(m, k, &v, 1) || epoch < 0 || epoch > INT32_MAX || offset < 0 ||
                    ds_rows_find(m->parts, k))
                        return -1; /* (a repeated key too: each share is saved once) */
                ds_row_t *p = ds_rows_get(m->parts, k);
                if (!p)
                        return -1;
                p->m = v;
                p->refs = (uint32_t)epoch;
                p->seq = offset;
        }
        n = ds_rd_long(r);
        for (int64_t i = 0; i < n && !r->bad; i++) {
                ds_measures_t v;
                ds_rowkey_t k = load_row(r, &v);
                uint64_t bits = ds_rd_u64(r);
                int64_t sketches = ds_rd_long(r);
                ds_distinct_t *d = NULL;
                if (sketches) {
                        size_t n1, n2;
                        const uint8_t *s1 = ds_rd_bytes(r, &n1), *s2 = ds_rd_bytes(r, &n2);
                        if (r->bad || !(d = calloc(1, sizeof(*d))))
                                return -1;
                        d->declarants = ds_hll_deserialize(s1, n1);
                        d->vehicles = ds_hll_deserialize(s2, n2);
                        if (!d->declarants || !d->vehicles) {
                                ds_distinct_free(d);
                                return -1;
                        }
                }
                ds_row_t *g = NULL;
                if (r->bad || !row_ok(m, k, &v, 0) || ds_rows_find(m->global, k) || !(g = ds_rows_get(m->global, k))) {
                        ds_distinct_free(d);
                        return -1;
                }
                g->m = v;
                g->seq = (int64_t)bits;
                g->aux = d;
                ds_rows_mark(m->global, g); /* republished after a restore */
                int cls = ds_evict_class(k);
                if (cls >= 0 && ds_evict_add(m->ev, cls, k))
                        return -1;
                if (ds_rowkey_dim(k) == DS_DIM_GATE_HEADING) {
                        if (group_add(m, ds_cell_gate(k), k.start, ds_cell_heading(k)))
                                return -1;
                        group_t *grp = group_find(m, ds_cell_gate(k), k.start, 0);
                        if (!grp || group_mark(m, grp))
                                return -1;
                }
        }
        return r->bad || r->p != r->end ? -1 : 0;
}

void ds_merge_retentions(const ds_merge_t *m, ds_window_cfg_t *win, int64_t *top_retention_ms) {
        ds_evict_retentions(m->ev, win, top_retention_ms);
}

size_t ds_merge_memory(const ds_merge_t *m) {
        size_t n = sizeof(*m) + ds_rows_memory(m->parts) + ds_rows_memory(m->global) + ds_evict_memory(m->ev) +
                   (size_t)(m->gmask + 1) * sizeof(group_t) + (size_t)m->capchanged * 4 +
                   (m->drops ? DROPS_MAX * sizeof(*m->drops) : 0);
        for (uint32_t i = 0; i <= m->gmask; i++)
                n += (size_t)m->groups[i].cap * 4;
        return n;
}
