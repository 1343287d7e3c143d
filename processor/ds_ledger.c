/*
 * ds_ledger.c - per-partition declaration ledger.
 *
 * Layout: an open-addressing table of 32-byte entries keyed by id + 1 (ids
 * are 12 decimal digits, so id + 1 never overflows and 0 marks an empty
 * slot), linear probing, backward-shift deletion. The heading lines of each
 * entry live in a line pool: chunks of 1,024, 2,048, ... up to 65,536
 * ds_line_t (a line's ref is chunk << 16 | offset whatever the chunk's
 * size); a run of n lines (n <= 50) never crosses a chunk, and freed runs go
 * to a free list per length, so an amendment with the same number of
 * headings reuses its run. The chunks grow because a process keeps one
 * ledger per input partition: with 192 partitions, a first chunk of 65,536
 * lines (1.5 MiB) each held 288 MiB before a partition had 20,000 lines.
 */
#include "ds_ledger.h"
#include "ds_common.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK_BITS 16
#define CHUNK_LINES (1u << CHUNK_BITS) /* the largest chunk */
#define CHUNK0_SHIFT 10                 /* the first chunk: 1,024 lines */
#define NIL 0xffffffffu

typedef struct lentry {
        uint64_t key; /* id + 1; 0 = empty */
        int64_t declared_at;
        int32_t version;
        uint32_t lines_ref; /* chunk << 16 | offset; NIL when no lines (cancelled) */
        uint16_t gate;
        uint8_t flow;
        uint8_t nlines;
        uint8_t cancelled;
        uint8_t changed; /* on the change list */
        uint8_t pad[2];
} lentry_t;

_Static_assert(sizeof(lentry_t) == 32, "ledger entry must stay 32 bytes");

struct ds_ledger {
        lentry_t *slots;
        uint32_t mask;
        uint64_t used;
        uint32_t cursor; /* expiry sweep position */
        ds_line_t **chunks;
        uint32_t nchunks, capchunks;
        uint32_t chunk_used; /* lines used in the last chunk */
        uint32_t chunk_cap;  /* lines the last chunk holds */
        uint32_t free_head[DS_MAX_ITEMS + 1]; /* per run length: first free run, NIL */
        uint64_t *changes; /* keys of entries changed since the last take */
        uint32_t nchanges, capchanges;
        int track;         /* remember changes (ds_ledger_track_changes) */
};

/* A free run stores the next free run's ref in its first line's heading. */

ds_ledger_t *ds_ledger_new(uint32_t initial) {
        ds_ledger_t *l = ds_calloc_lines(sizeof(*l));
        if (!l)
                return NULL;
        uint32_t slots = ds_pow2_ceil(initial < 16 ? 32 : initial * 2);
        l->slots = calloc(slots, sizeof(lentry_t));
        if (!l->slots) {
                free(l);
                return NULL;
        }
        /* a large table is faulted in here, at creation, not page by page
         * on the per-message path (an earlier malloc + memset did not: the
         * compiler made it a calloc, bench/HOTPATH.md, fourteenth round) */
        ds_prefault(l->slots, (size_t)slots * sizeof(lentry_t));
        l->mask = slots - 1;
        l->chunk_used = l->chunk_cap = 0; /* a chunk on first use */
        for (int i = 0; i <= DS_MAX_ITEMS; i++)
                l->free_head[i] = NIL;
        return l;
}

void ds_ledger_destroy(ds_ledger_t *l) {
        if (!l)
                return;
        for (uint32_t i = 0; i < l->nchunks; i++)
                free(l->chunks[i]);
        free(l->chunks);
        free(l->slots);
        free(l->changes);
        free(l);
}

static inline ds_line_t *line_ptr(const ds_ledger_t *l, uint32_t ref) {
        return &l->chunks[ref >> CHUNK_BITS][ref & (CHUNK_LINES - 1)];
}

/* Lines chunk i holds: 1,024 << i, at most CHUNK_LINES. */
static uint32_t chunk_lines(uint32_t i) {
        return i >= CHUNK_BITS - CHUNK0_SHIFT ? CHUNK_LINES : 1u << (CHUNK0_SHIFT + i);
}

static uint32_t lines_alloc(ds_ledger_t *l, uint32_t n) {
        uint32_t ref = l->free_head[n];
        if (ref != NIL) {
                l->free_head[n] = line_ptr(l, ref)->heading;
                return ref;
        }
        if (!l->nchunks || l->chunk_used + n > l->chunk_cap) {
                if (l->nchunks == l->capchunks) {
                        uint32_t cap = l->capchunks ? l->capchunks * 2 : 16;
                        ds_line_t **c = realloc(l->chunks, cap * sizeof(*c));
                        if (!c)
                                return NIL;
                        l->chunks = c;
                        l->capchunks = cap;
                }
                uint32_t lines = chunk_lines(l->nchunks);
                ds_line_t *chunk = malloc(lines * sizeof(ds_line_t));
                if (!chunk)
                        return NIL;
                l->chunks[l->nchunks++] = chunk;
                l->chunk_used = 0;
                l->chunk_cap = lines;
        }
        ref = (l->nchunks - 1) << CHUNK_BITS | l->chunk_used;
        l->chunk_used += n;
        return ref;
}

static void lines_free(ds_ledger_t *l, uint32_t ref, uint32_t n) {
        if (ref == NIL || n == 0)
                return;
        line_ptr(l, ref)->heading = l->free_head[n];
        l->free_head[n] = ref;
}

static lentry_t *find(ds_ledger_t *l, uint64_t key) {
        for (uint32_t s = (uint32_t)ds_mix64(key) & l->mask;; s = (s + 1) & l->mask) {
                lentry_t *e = &l->slots[s];
                if (e->key == key || !e->key)
                        return e;
        }
}

void ds_ledger_prefetch(const ds_ledger_t *l, uint64_t id) {
        __builtin_prefetch(&l->slots[(uint32_t)ds_mix64(id + 1) & l->mask]);
}

static int grow(ds_ledger_t *l) {
        uint32_t slots = (l->mask + 1) * 2;
        lentry_t *ns = calloc(slots, sizeof(lentry_t));
        if (!ns)
                return -1;
        for (uint32_t i = 0; i <= l->mask; i++) {
                lentry_t *e = &l->slots[i];
                if (!e->key)
                        continue;
                uint32_t s = (uint32_t)ds_mix64(e->key) & (slots - 1);
                while (ns[s].key)
                        s = (s + 1) & (slots - 1);
                ns[s] = *e;
        }
        free(l->slots);
        l->slots = ns;
        l->mask = slots - 1;
        l->cursor = 0;
        return 0;
}

/* Stores c's lines and identity into e (e->key already set). */
static int store(ds_ledger_t *l, lentry_t *e, const ds_contrib_t *c, int had_lines) {
        uint32_t ref = e->lines_ref;
        if (!had_lines || e->nlines != c->nlines) {
                uint32_t nref = lines_alloc(l, c->nlines);
                if (nref == NIL)
                        return -1;
                if (had_lines)
                        lines_free(l, ref, e->nlines);
                ref = nref;
        }
        memcpy(line_ptr(l, ref), c->lines, c->nlines * sizeof(ds_line_t));
        e->lines_ref = ref;
        e->nlines = (uint8_t)c->nlines;
        e->declared_at = c->declared_at;
        e->version = c->version;
        e->gate = c->gate;
        e->flow = c->flow;
        e->cancelled = 0;
        return 0;
}

/* Remembers that e changed (once per take). */
static int note_change(ds_ledger_t *l, lentry_t *e) {
        if (!l->track || e->changed)
                return 0;
        if (l->nchanges == l->capchanges) {
                uint32_t cap = l->capchanges ? l->capchanges * 2 : 1024;
                uint64_t *c = realloc(l->changes, cap * sizeof(*c));
                if (!c)
                        return -1;
                l->changes = c;
                l->capchanges = cap;
        }
        e->changed = 1;
        l->changes[l->nchanges++] = e->key;
        return 0;
}

/* Rebuilds the contribution an entry made, for retraction. */
static void load(const ds_ledger_t *l, const lentry_t *e, ds_contrib_t *old) {
        old->id = e->key - 1;
        old->declared_at = e->declared_at;
        old->version = e->version;
        old->kind = DS_KIND_NEW;
        old->flow = e->flow;
        old->gate = e->gate;
        old->nlines = e->nlines;
        old->items = 0;
        old->value = 0;
        old->weight = 0;
        const ds_line_t *src = line_ptr(l, e->lines_ref);
        for (uint32_t i = 0; i < e->nlines; i++) {
                old->lines[i] = src[i];
                old->items += src[i].items;
                old->value += src[i].value;
                old->weight += src[i].weight;
        }
}

static void remove_slot(ds_ledger_t *l, uint32_t s);

int ds_ledger_apply(ds_ledger_t *l, const ds_contrib_t *c, int64_t horizon_ms, ds_ledger_effect_t *eff) {
        eff->retract = 0;
        eff->add = 0;
        uint64_t key = c->id + 1;
        lentry_t *e = find(l, key);
        int expired = 0;
        if (e->key && DS_UNLIKELY(e->declared_at < horizon_ms)) {
                /* past retention: forget it, then proceed as for an unknown id */
                lines_free(l, e->lines_ref, e->nlines);
                remove_slot(l, (uint32_t)(e - l->slots));
                e = find(l, key);
                expired = 1;
        }
        if (!e->key) {
                if ((l->used + 1) * 10 > (uint64_t)(l->mask + 1) * 7) {
                        if (grow(l))
                                return -1;
                        e = find(l, key);
                }
                e->key = key;
                if (c->kind == DS_KIND_CANCEL) {
                        e->declared_at = c->declared_at;
                        e->version = c->version;
                        e->gate = c->gate;
                        e->flow = c->flow;
                        e->lines_ref = NIL;
                        e->nlines = 0;
                        e->cancelled = 1;
                        e->changed = 0;
                        l->used++;
                        if (note_change(l, e))
                                return -1;
                        return expired ? DS_EV_UPSERT_EXPIRED : DS_EV_UPSERT_UNKNOWN;
                }
                e->changed = 0;
                if (store(l, e, c, 0)) {
                        e->key = 0;
                        return -1;
                }
                l->used++;
                if (note_change(l, e))
                        return -1;
                eff->add = 1;
                if (expired)
                        return DS_EV_UPSERT_EXPIRED;
                return c->kind == DS_KIND_NEW ? DS_EV_APPLIED_NEW : DS_EV_UPSERT_UNKNOWN;
        }
        if (e->cancelled)
                return DS_EV_IGNORED_CANCELLED;
        if (c->version <= e->version)
                return DS_EV_IGNORED_STALE;
        load(l, e, eff->old);
        eff->retract = 1;
        if (c->kind == DS_KIND_CANCEL) {
                lines_free(l, e->lines_ref, e->nlines);
                e->lines_ref = NIL;
                e->nlines = 0;
                e->version = c->version;
                e->declared_at = c->declared_at;
                e->cancelled = 1;
                if (note_change(l, e))
                        return -1;
                return DS_EV_APPLIED_CANCEL;
        }
        if (store(l, e, c, 1)) {
                eff->retract = 0;
                return -1;
        }
        if (note_change(l, e))
                return -1;
        eff->add = 1;
        return DS_EV_APPLIED_AMEND;
}

/* Backward-shift removal of slot s. */
static void remove_slot(ds_ledger_t *l, uint32_t s) {
        uint32_t hole = s;
        for (uint32_t j = (s + 1) & l->mask; l->slots[j].key; j = (j + 1) & l->mask) {
                uint32_t home = (uint32_t)ds_mix64(l->slots[j].key) & l->mask;
                if (((j - home) & l->mask) >= ((j - hole) & l->mask)) {
                        l->slots[hole] = l->slots[j];
                        hole = j;
                }
        }
        memset(&l->slots[hole], 0, sizeof(lentry_t));
        l->used--;
}

uint64_t ds_ledger_expire(ds_ledger_t *l, int64_t horizon_ms, uint32_t max_scan) {
        uint64_t n = 0;
        for (uint32_t i = 0; i < max_scan && i <= l->mask; i++) {
                uint32_t s = l->cursor;
                lentry_t *e = &l->slots[s];
                if (e->key && e->declared_at < horizon_ms) {
                        lines_free(l, e->lines_ref, e->nlines);
                        remove_slot(l, s);
                        n++;
                        /* the shift may have moved an unseen entry into s: look at s again */
                        continue;
                }
                l->cursor = (s + 1) & l->mask;
        }
        return n;
}

static void to_entry(const ds_ledger_t *l, const lentry_t *e, ds_ledger_entry_t *out) {
        out->id = e->key - 1;
        out->declared_at = e->declared_at;
        out->version = e->version;
        out->gate = e->gate;
        out->flow = e->flow;
        out->cancelled = e->cancelled;
        out->nlines = e->nlines;
        out->lines = e->nlines ? line_ptr(l, e->lines_ref) : NULL;
}

/* How far ahead the walks below prefetch. A changelog cycle writes every
 * changed entry (and a snapshot every entry) with its lines, which live in
 * chunks apart from the slots: without prefetching, the load of each
 * entry's lines was a cache miss (perf: ~58 % of put_entry's samples in a
 * replay, put_entry ~10 % of the replay). */
#define WALK_AHEAD 16

/* always_inline: gcc 12 takes a function whose only effect is a prefetch
 * for a pure one and deletes calls to it whose result is unused - which,
 * not inlined, dropped these prefetches from the binary. An entry's lines
 * (24 bytes each, ~3.5 a declaration) usually span two cache lines: both
 * are loaded (the last one alone waited in ~15 % of put_entry's samples,
 * bench/HOTPATH.md, eighteenth round). */
static inline __attribute__((always_inline)) void prefetch_lines(const ds_ledger_t *l, const lentry_t *e) {
        if (e->key && e->nlines) {
                const ds_line_t *ln = line_ptr(l, e->lines_ref);
                __builtin_prefetch(ln);
                __builtin_prefetch((const char *)(ln + e->nlines) - 1);
        }
}

int ds_ledger_foreach(const ds_ledger_t *l, ds_ledger_fn fn, void *ctx) {
        for (uint32_t i = 0; i <= l->mask; i++) {
                /* the slots are read in order (the hardware prefetches them);
                 * the lines of the slot WALK_AHEAD on are not */
                if (i + WALK_AHEAD <= l->mask)
                        prefetch_lines(l, &l->slots[i + WALK_AHEAD]);
                if (!l->slots[i].key)
                        continue;
                ds_ledger_entry_t e;
                to_entry(l, &l->slots[i], &e);
                int r = fn(ctx, &e);
                if (r)
                        return r;
        }
        return 0;
}

int ds_ledger_take_changes(ds_ledger_t *l, ds_ledger_fn fn, void *ctx) {
        int rc = 0;
        for (uint32_t i = 0; i < l->nchanges; i++) {
                /* two stages: the home slot of the key WALK_AHEAD on, then the
                 * lines of the one WALK_AHEAD / 2 on (its slot is in cache by
                 * then, unless a probe went past it) */
                if (i + WALK_AHEAD < l->nchanges)
                        __builtin_prefetch(&l->slots[(uint32_t)ds_mix64(l->changes[i + WALK_AHEAD]) & l->mask]);
                if (i + WALK_AHEAD / 2 < l->nchanges)
                        prefetch_lines(l, &l->slots[(uint32_t)ds_mix64(l->changes[i + WALK_AHEAD / 2]) & l->mask]);
                lentry_t *e = find(l, l->changes[i]);
                if (!e->key)
                        continue; /* forgotten since (retention) */
                e->changed = 0;
                ds_ledger_entry_t out;
                to_entry(l, e, &out);
                if (!rc)
                        rc = fn(ctx, &out);
        }
        l->nchanges = 0;
        return rc;
}

void ds_ledger_track_changes(ds_ledger_t *l) {
        l->track = 1;
}

int ds_ledger_put(ds_ledger_t *l, const ds_ledger_entry_t *in) {
        if (in->nlines > DS_MAX_ITEMS)
                return -1;
        uint64_t key = in->id + 1;
        lentry_t *e = find(l, key);
        if (!e->key) {
                if ((l->used + 1) * 10 > (uint64_t)(l->mask + 1) * 7) {
                        if (grow(l))
                                return -1;
                        e = find(l, key);
                }
                memset(e, 0, sizeof(*e));
                e->key = key;
                e->lines_ref = NIL;
                l->used++;
        }
        if (e->nlines != in->nlines) {
                uint32_t ref = NIL;
                if (in->nlines && (ref = lines_alloc(l, in->nlines)) == NIL)
                        return -1;
                lines_free(l, e->lines_ref, e->nlines);
                e->lines_ref = ref;
                e->nlines = (uint8_t)in->nlines;
        }
        if (in->nlines)
                memcpy(line_ptr(l, e->lines_ref), in->lines, in->nlines * sizeof(ds_line_t));
        e->declared_at = in->declared_at;
        e->version = in->version;
        e->gate = in->gate;
        e->flow = in->flow;
        e->cancelled = in->cancelled;
        return note_change(l, e);
}

uint64_t ds_ledger_count(const ds_ledger_t *l) {
        return l->used;
}

size_t ds_ledger_memory(const ds_ledger_t *l) {
        size_t lines = 0;
        for (uint32_t i = 0; i < l->nchunks; i++)
                lines += chunk_lines(i);
        return sizeof(*l) + (size_t)(l->mask + 1) * sizeof(lentry_t) + lines * sizeof(ds_line_t) +
               (size_t)l->capchunks * sizeof(void *);
}
