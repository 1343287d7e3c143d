/*
 * micro.c - ns per message for each step of the hot path, on a fixed corpus.
 *
 * The corpus is the generator's (ds_gen, fixed seed): --count declarations
 * over one day of event time, 12 partitions, amendments, cancellations,
 * duplicates and late events at the generator's defaults, no bad messages.
 * It is encoded once into memory; then each phase runs over all of it
 * --iterations times:
 *
 *   decode          ds_step_decode: wire header -> schema-specialised codec -> ds_decl_t
 *   decode_avro_c   the same bytes through Avro C's generic decoder (ds_codec_avro.h)
 *   validate        ds_step_check on decoded messages (decode + check, minus decode)
 *   apply           ds_part_apply of the validated contributions (ledger + aggregates),
 *                   with a ds_part_flush every 65,536 messages as the pipeline's cycle does,
 *                   the next message's ledger slot prefetched before each (as the workers do)
 *   total           decode + validate + apply, per message, in one loop (the worker's path:
 *                   message i + 1 decoded and its ledger slot prefetched before i is applied)
 *
 * Iteration k replays the corpus as the next day of history (ids + k*10^12,
 * event times + k days), so each iteration does the full work of the first
 * (new ledger entries, new windows), as `declstream replay --repeat` does.
 * State is fresh for each phase.
 *
 * Each phase is a function of its own (noinline), so callgrind can count
 * one phase's instructions:
 *   valgrind --tool=callgrind --toggle-collect=phase_apply build/bench/bench_micro --iterations 1
 * and Ir / (count * iterations) is instructions per message.
 *
 * Output: a table, or one JSON object with --json.
 */
#include "ds_codec.h"
#include "ds_codec_avro.h"
#include "ds_common.h"
#include "ds_domain.h"
#include "ds_gen.h"
#include "ds_part.h"
#include "ds_schemas.h"
#include "ds_step.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLUSH_EVERY 65536

/* The processor's jemalloc options (processor/main.c), so that apply is
 * measured with the allocator set up as in declstream. */
const char *malloc_conf = "thp:always,dirty_decay_ms:30000,muzzy_decay_ms:30000";

typedef struct msg {
        uint32_t off, len; /* value in corpus.bytes */
        char key[12];
        uint8_t klen;
        int32_t partition;
} msg_t;

typedef struct corpus {
        uint8_t *bytes;
        size_t nbytes, cap;
        msg_t *m;
        uint32_t n;
        uint64_t items;
} corpus_t;

/* Compact validated contributions (only the used lines), for phase_apply. */
typedef struct packed {
        uint8_t *p;
        size_t n, cap;
} packed_t;

static ds_schemas_t *g_schemas;
static volatile uint64_t g_sink; /* keeps results alive */

static void die(const char *what) {
        fprintf(stderr, "bench_micro: %s\n", what);
        exit(1);
}

static void corpus_build(corpus_t *c, uint32_t count) {
        ds_gen_opts_t o;
        ds_gen_opts_default(&o);
        o.seed = 42;
        o.count = count;
        o.span_ms = DS_DAY_MS;
        o.start_ms = 1735689600000LL; /* 2025-01-01T00:00Z: fixed, so runs compare */
        o.partitions = 12;
        o.amend_rate = 0.05;
        o.cancel_rate = 0.01;
        o.dup_rate = 0.005;
        o.late_rate = 0.02;
        char err[256];
        ds_gen_t *g = ds_gen_new(&o, err, sizeof(err));
        if (!g)
                die(err);
        memset(c, 0, sizeof(*c));
        uint32_t capm = count + count / 4 + 16;
        c->m = malloc(capm * sizeof(*c->m));
        ds_gen_msg_t gm;
        while (ds_gen_next(g, -1, &gm)) {
                if (c->n == capm && !(c->m = realloc(c->m, (capm *= 2) * sizeof(*c->m))))
                        die("out of memory");
                if (c->nbytes + gm.value_len > c->cap) {
                        c->cap = (c->cap + gm.value_len) * 2;
                        if (!(c->bytes = realloc(c->bytes, c->cap)))
                                die("out of memory");
                }
                msg_t *m = &c->m[c->n++];
                m->off = (uint32_t)c->nbytes;
                m->len = (uint32_t)gm.value_len;
                memcpy(c->bytes + c->nbytes, gm.value, gm.value_len);
                c->nbytes += gm.value_len;
                memcpy(m->key, gm.key, gm.key_len);
                m->klen = (uint8_t)gm.key_len;
                m->partition = gm.partition;
        }
        ds_gen_destroy(g);
}

typedef struct state {
        ds_part_cfg_t cfg;
        ds_part_t *parts[12];
        ds_outbox_t ob;
        ds_contrib_t old;
} state_t;

static void state_init(state_t *s) {
        memset(s, 0, sizeof(*s));
        ds_part_cfg_default(&s->cfg);
        for (int p = 0; p < 12; p++)
                if (!(s->parts[p] = ds_part_new(&s->cfg, p, 0)))
                        die("out of memory");
}

static void state_free(state_t *s) {
        for (int p = 0; p < 12; p++)
                ds_part_destroy(s->parts[p]);
        ds_outbox_free(&s->ob);
}

static void state_flush(state_t *s, int64_t now) {
        ds_outbox_reset(&s->ob);
        for (int p = 0; p < 12; p++)
                if (ds_part_flush(s->parts[p], &s->cfg, now, &s->ob))
                        die("out of memory");
}

static ds_decl_t g_decl;
static ds_contrib_t g_contrib;
static ds_step_ahead_t g_ahead[2];

__attribute__((noinline)) static void phase_decode(const corpus_t *c, int iters) {
        uint64_t ok = 0;
        for (int it = 0; it < iters; it++)
                for (uint32_t i = 0; i < c->n; i++) {
                        ds_resolved_t rs;
                        ok += !ds_step_decode(g_schemas, c->bytes + c->m[i].off, c->m[i].len, &g_decl, &rs);
                }
        g_sink += ok;
}

__attribute__((noinline)) static void phase_decode_avro(const corpus_t *c, int iters, ds_avro_decoder_t *ad) {
        uint64_t ok = 0;
        for (int it = 0; it < iters; it++)
                for (uint32_t i = 0; i < c->n; i++) {
                        ds_resolved_t rs;
                        const uint8_t *v = c->bytes + c->m[i].off;
                        if (!ds_schemas_resolve(g_schemas, v, c->m[i].len, &rs))
                                ok += !ds_avro_decode(ad, rs.body, rs.body_len, &g_decl);
                }
        g_sink += ok;
}

__attribute__((noinline)) static void phase_decode_check(const corpus_t *c, int iters) {
        uint64_t ok = 0;
        for (int it = 0; it < iters; it++)
                for (uint32_t i = 0; i < c->n; i++) {
                        ds_resolved_t rs;
                        const msg_t *m = &c->m[i];
                        if (!ds_step_decode(g_schemas, c->bytes + m->off, m->len, &g_decl, &rs))
                                ok += !ds_step_check(&g_decl, 4, m->key, m->klen, &g_contrib);
                }
        g_sink += ok;
}

/* Decodes and validates the corpus once into compact contributions. */
static void pack(const corpus_t *c, packed_t *pk) {
        memset(pk, 0, sizeof(*pk));
        for (uint32_t i = 0; i < c->n; i++) {
                ds_resolved_t rs;
                const msg_t *m = &c->m[i];
                if (ds_step_decode(g_schemas, c->bytes + m->off, m->len, &g_decl, &rs) ||
                    ds_step_check(&g_decl, 4, m->key, m->klen, &g_contrib))
                        die("the corpus should hold only valid messages");
                size_t sz = offsetof(ds_contrib_t, lines) + g_contrib.nlines * sizeof(ds_line_t) + 8;
                if (pk->n + sz > pk->cap) {
                        pk->cap = (pk->cap + sz) * 2;
                        if (!(pk->p = realloc(pk->p, pk->cap)))
                                die("out of memory");
                }
                memcpy(pk->p + pk->n, &m->partition, 4);
                memcpy(pk->p + pk->n + 8, &g_contrib, sz - 8);
                pk->n += sz;
        }
}

__attribute__((noinline)) static void phase_apply(const packed_t *pk, int iters, state_t *s, int64_t now) {
        uint64_t n = 0;
        for (int it = 0; it < iters; it++) {
                for (size_t pos = 0; pos < pk->n;) {
                        int32_t part;
                        memcpy(&part, pk->p + pos, 4);
                        const ds_contrib_t *hdr = (const ds_contrib_t *)(pk->p + pos + 8);
                        size_t sz = offsetof(ds_contrib_t, lines) + hdr->nlines * sizeof(ds_line_t);
                        memcpy(&g_contrib, hdr, sz);
                        pos += sz + 8;
                        g_contrib.id += (uint64_t)it * 1000000000000ULL;
                        g_contrib.declared_at += it * DS_DAY_MS;
                        if (pos < pk->n) { /* the next one's ledger slot, as the workers do (ds_step.h) */
                                int32_t np;
                                memcpy(&np, pk->p + pos, 4);
                                const ds_contrib_t *nh = (const ds_contrib_t *)(pk->p + pos + 8);
                                ds_part_prefetch(s->parts[np], nh->id + (uint64_t)it * 1000000000000ULL);
                        }
                        if (ds_part_apply(s->parts[part], &s->cfg, &g_contrib, now + it * DS_DAY_MS, &s->old) < 0)
                                die("out of memory");
                        if (++n % FLUSH_EVERY == 0)
                                state_flush(s, now + it * DS_DAY_MS);
                }
        }
        g_sink += n;
}

/* Decodes and validates message m of iteration it into a, and starts
 * loading its ledger slot: the workers' prepare() (ds_pipeline.c). */
static inline void prepare(const corpus_t *c, uint32_t i, int it, state_t *s, ds_step_ahead_t *a) {
        const msg_t *m = &c->m[i];
        a->why = ds_step_decode(g_schemas, c->bytes + m->off, m->len, &a->decl, &a->rs);
        if (!a->why)
                a->why = ds_step_check(&a->decl, 4, m->key, m->klen, &a->contrib);
        if (!a->why) {
                a->contrib.id += (uint64_t)it * 1000000000000ULL;
                a->contrib.declared_at += it * DS_DAY_MS;
                ds_part_prefetch(s->parts[m->partition], a->contrib.id);
        }
}

__attribute__((noinline)) static void phase_total(const corpus_t *c, int iters, state_t *s, int64_t now) {
        uint64_t n = 0;
        for (int it = 0; it < iters && c->n; it++) {
                /* message i is applied while message i + 1 is decoded, as in the workers */
                ds_step_ahead_t *cur = &g_ahead[0], *next = &g_ahead[1];
                prepare(c, 0, it, s, cur);
                for (uint32_t i = 0; i < c->n; i++) {
                        if (i + 1 < c->n)
                                prepare(c, i + 1, it, s, next);
                        if (!cur->why) {
                                if (ds_part_apply(s->parts[c->m[i].partition], &s->cfg, &cur->contrib,
                                                  now + it * DS_DAY_MS, &s->old) < 0)
                                        die("out of memory");
                                if (++n % FLUSH_EVERY == 0)
                                        state_flush(s, now + it * DS_DAY_MS);
                        }
                        ds_step_ahead_t *t = cur;
                        cur = next;
                        next = t;
                }
        }
        g_sink += n;
}

static void usage(FILE *out) {
        fprintf(out, "usage: bench_micro [--count N] [--iterations N] [--phase all|decode|avro|validate|apply|total] "
                     "[--json]\n");
}

int main(int argc, char **argv) {
        uint32_t count = 200000;
        int iters = 5, json = 0;
        const char *phase = "all";
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--json"))
                        json = 1;
                else if (!strcmp(argv[i], "--count") && i + 1 < argc)
                        count = (uint32_t)strtoul(argv[++i], NULL, 10);
                else if (!strcmp(argv[i], "--iterations") && i + 1 < argc)
                        iters = atoi(argv[++i]);
                else if (!strcmp(argv[i], "--phase") && i + 1 < argc)
                        phase = argv[++i];
                else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
                        usage(stdout);
                        return 0;
                } else {
                        fprintf(stderr, "bench_micro: unknown argument \"%s\"\n", argv[i]);
                        usage(stderr);
                        return 2;
                }
        }
        if (count < 1 || iters < 1) {
                fprintf(stderr, "bench_micro: --count and --iterations must be >= 1\n");
                return 2;
        }
        ds_domain_init();
        char err[512];
        if (!(g_schemas = ds_schemas_load(DS_SCHEMA_DIR, err, sizeof(err))))
                die(err);
        corpus_t c;
        corpus_build(&c, count);
        packed_t pk;
        pack(&c, &pk);
        c.items = 0;
        for (uint32_t i = 0; i < c.n; i++) {
                ds_resolved_t rs;
                ds_step_decode(g_schemas, c.bytes + c.m[i].off, c.m[i].len, &g_decl, &rs);
                c.items += g_decl.item_cnt;
        }
        ds_avro_decoder_t *ad = ds_avro_decoder_new(ds_reader_schema(ds_schemas_reader(g_schemas)),
                                                    ds_schemas_get(g_schemas, DS_SCHEMA_ID_DECLARATION_V1), err,
                                                    sizeof(err));
        if (!ad)
                die(err);
        int all = !strcmp(phase, "all");
        double per = (double)c.n * iters;
        double t_dec = -1, t_avro = -1, t_chk = -1, t_apply = -1, t_total = -1;
        int64_t now = 1735689600000LL + 2 * DS_DAY_MS; /* the clock: after the corpus's day */
        int64_t t0;
        if (all || !strcmp(phase, "decode")) {
                t0 = ds_mono_ns();
                phase_decode(&c, iters);
                t_dec = (double)(ds_mono_ns() - t0) / per;
        }
        if (all || !strcmp(phase, "avro")) {
                t0 = ds_mono_ns();
                phase_decode_avro(&c, iters, ad);
                t_avro = (double)(ds_mono_ns() - t0) / per;
        }
        if (all || !strcmp(phase, "validate")) {
                t0 = ds_mono_ns();
                phase_decode_check(&c, iters);
                t_chk = (double)(ds_mono_ns() - t0) / per;
        }
        if (all || !strcmp(phase, "apply")) {
                state_t s;
                state_init(&s);
                t0 = ds_mono_ns();
                phase_apply(&pk, iters, &s, now);
                t_apply = (double)(ds_mono_ns() - t0) / per;
                state_free(&s);
        }
        if (all || !strcmp(phase, "total")) {
                state_t s;
                state_init(&s);
                t0 = ds_mono_ns();
                phase_total(&c, iters, &s, now);
                t_total = (double)(ds_mono_ns() - t0) / per;
                state_free(&s);
        }
        double validate = t_chk >= 0 && t_dec >= 0 ? t_chk - t_dec : -1;
        if (json) {
                printf("{\"messages\":%u,\"iterations\":%d,\"items_per_declaration\":%.2f,\"bytes_per_message\":%.1f,"
                       "\"decode_ns\":%.1f,\"decode_avro_c_ns\":%.1f,\"decode_validate_ns\":%.1f,\"validate_ns\":%.1f,"
                       "\"apply_ns\":%.1f,\"total_ns\":%.1f}\n",
                       c.n, iters, (double)c.items / c.n, (double)c.nbytes / c.n, t_dec, t_avro, t_chk, validate,
                       t_apply, t_total);
        } else {
                printf("corpus: %u messages, %.2f items per declaration, %.1f bytes per message; %d iterations\n", c.n,
                       (double)c.items / c.n, (double)c.nbytes / c.n, iters);
                printf("%-34s %10s\n", "phase", "ns/message");
                if (t_dec >= 0)
                        printf("%-34s %10.1f\n", "decode (specialised codec)", t_dec);
                if (t_avro >= 0)
                        printf("%-34s %10.1f\n", "decode (Avro C generic)", t_avro);
                if (t_chk >= 0)
                        printf("%-34s %10.1f\n", "decode + validate", t_chk);
                if (validate >= 0)
                        printf("%-34s %10.1f\n", "validate (difference)", validate);
                if (t_apply >= 0)
                        printf("%-34s %10.1f\n", "apply (ledger + aggregates)", t_apply);
                if (t_total >= 0)
                        printf("%-34s %10.1f\n", "total: decode + validate + apply", t_total);
        }
        ds_avro_decoder_destroy(ad);
        free(pk.p);
        free(c.bytes);
        free(c.m);
        ds_schemas_destroy(g_schemas);
        return (int)(g_sink & 0);
}
