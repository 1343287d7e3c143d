/*
 * ds_schemas.c - schema ids -> decoders: schema.dir, the Schema Registry,
 * single-object fingerprints, and a lock-free id table.
 *
 * The id table. Every schema id declstream has seen is one entry_t, found
 * through an open-addressing table of SLOTS atomic pointers (linear probing,
 * hash = fmix64 of the id). The table is insert-only and never resized: at
 * most MAX_IDS entries, so it is never more than half full and a probe always
 * ends on an empty slot. Entries are never freed or moved before
 * ds_schemas_destroy(). That makes the reader side trivially safe without
 * locks, hazard pointers or epochs: a worker loads slot pointers (acquire) and
 * an entry's state word (acquire), and nothing it can reach is ever reclaimed
 * under it. Writers - the local load at start-up, and registry lookups at run
 * time - serialise on `mu`.
 *
 * An entry's state is one atomic 64-bit word: the reason in the low 8 bits
 * (DS_DLQ_NONE: codec ready; INCOMPATIBLE_SCHEMA: final; UNKNOWN_SCHEMA or
 * REGISTRY_UNAVAILABLE: negative) and, above, the monotonic time in ms at which
 * a negative answer expires. One word means a reader never sees a reason with
 * another answer's expiry. The codec and schema pointers are plain fields,
 * written once before the state word's release store that says "ready", and
 * read only after an acquire load of the state has said so.
 *
 * The hot path, an id already resolved: hash, one or two acquire loads of
 * slots, one acquire load of the state, return the codec. No lock, no RMW, no
 * syscall, no clock read (on x86-64 these acquire loads are plain loads).
 *
 * The slow path (only with schema.registry.url): an id that is not in the
 * table, or whose negative answer has expired. Under `mu`:
 *   - if another thread is already asking the registry for this id, wait on
 *     `cv` for its answer (one request per id at a time: a burst of messages
 *     with a new id costs one fetch, not one per worker);
 *   - if the registry failed recently (down_until), answer
 *     REGISTRY_UNAVAILABLE at once without asking: unavailability is the
 *     registry's, not the id's, so a flood of messages with many different
 *     ids cannot each wait for the timeouts;
 *   - otherwise mark the entry as being fetched, unlock, fetch and compile
 *     (ds_registry bounds this by timeout * (retries + 1) + backoffs), lock,
 *     publish the answer, broadcast.
 * Negative answers (404, unavailable) expire after negative_ttl_ms; until then
 * they are answered by the lock-free path after one clock read. Compatible and
 * incompatible schemas are final: a registry id never changes its schema.
 * When MAX_IDS ids are held, further new ids are answered UNKNOWN_SCHEMA
 * without a request (logged once): memory stays bounded whatever ids a
 * hostile producer invents.
 *
 * Single-object encoding (0xC3 0x01, 8-byte little-endian CRC-64-AVRO of the
 * writer schema's Parsing Canonical Form, body): the fingerprints of every
 * schema of schema.dir are computed at load into an immutable array. The
 * resolved message reports the matching schema's local id as its schema_id,
 * so the dead-letter header and decoder=avro-c work as for framed messages.
 * Schemas fetched from the registry are not matched by fingerprint (the
 * Confluent API has no lookup by fingerprint).
 */
#include "ds_schemas.h"
#include "ds_codec_avro.h"
#include "ds_common.h"
#include "ds_config.h"
#include "ds_fingerprint.h"
#include "ds_log.h"
#include "ds_registry.h"
#include "ds_wire.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IDS 4096
#define SLOTS 8192 /* power of two, >= 2 * MAX_IDS */
_Static_assert(SLOTS >= 2 * MAX_IDS && (SLOTS & (SLOTS - 1)) == 0, "id table too small");

#define ST_REASON(st) ((ds_dlq_reason_t)((st)&0xff))
#define ST_UNTIL(st) ((int64_t)((st) >> 8))
#define ST(reason, until) ((uint64_t)(reason) | (uint64_t)(until) << 8)
#define FOREVER ((int64_t)1 << 54)

/* Registry backoff before the first retry, doubling, capped. */
#define REGISTRY_BACKOFF_MS 100
#define REGISTRY_BACKOFF_MAX_MS 1000

typedef struct entry {
        uint32_t id;
        uint8_t local;        /* from schema.dir */
        uint8_t fetching;     /* under mu: a thread is asking the registry */
        _Atomic uint64_t state;
        avro_schema_t schema; /* written before the state says resolved */
        ds_codec_t *codec;
        char note[256];       /* why there is no codec; written under mu before the state */
} entry_t;

typedef struct fp_entry {
        uint64_t fp;
        entry_t *e;
} fp_entry_t;

struct ds_schemas {
        ds_reader_t *reader;
        _Atomic(entry_t *) slots[SLOTS];
        entry_t *all[MAX_IDS]; /* every entry, for destroy; under mu */
        int n;
        fp_entry_t *fps; /* local schemas' fingerprints; immutable after load */
        int nfps;
        /* registry */
        ds_registry_t *reg;
        int64_t negative_ttl_ms;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        int64_t down_until; /* under mu: monotonic ms until which the registry is not asked */
        int full_logged;    /* under mu */
};

char *ds_read_file(const char *path, size_t *len, char *errstr, size_t sz) {
        FILE *f = fopen(path, "rb");
        if (!f) {
                ds_err(errstr, sz, "cannot open %s: %s", path, strerror(errno));
                return NULL;
        }
        char *buf = NULL;
        size_t n = 0, cap = 0;
        for (;;) {
                if (n + 4096 + 1 > cap) {
                        cap = cap ? cap * 2 : 8192;
                        char *b = realloc(buf, cap);
                        if (!b) {
                                free(buf);
                                fclose(f);
                                ds_err(errstr, sz, "out of memory reading %s", path);
                                return NULL;
                        }
                        buf = b;
                }
                size_t r = fread(buf + n, 1, 4096, f);
                n += r;
                if (r < 4096)
                        break;
        }
        int err = ferror(f);
        fclose(f);
        if (err) {
                free(buf);
                ds_err(errstr, sz, "cannot read %s", path);
                return NULL;
        }
        buf[n] = '\0';
        if (len)
                *len = n;
        return buf;
}

/* ------------------------------------------------------------------------ */
/* The id table                                                              */

static inline uint32_t slot_of(uint32_t id) {
        return (uint32_t)ds_mix64(id) & (SLOTS - 1);
}

/* @locality any thread, @locks none. */
static inline entry_t *table_find(const ds_schemas_t *s, uint32_t id) {
        for (uint32_t i = slot_of(id);; i = (i + 1) & (SLOTS - 1)) {
                /* acquire: pairs with the release in table_insert, so the
                 * entry's id and first state are visible once its pointer is */
                entry_t *e = atomic_load_explicit(&((ds_schemas_t *)s)->slots[i], memory_order_acquire);
                if (!e)
                        return NULL; /* the table is at most half full: a probe ends */
                if (e->id == id)
                        return e;
        }
}

/* @locks mu held (or single-threaded start-up). Returns -1 when full. */
static int table_insert(ds_schemas_t *s, entry_t *e) {
        if (s->n == MAX_IDS)
                return -1;
        s->all[s->n++] = e;
        uint32_t i = slot_of(e->id);
        /* relaxed: slots are only stored under mu, which this thread holds */
        while (atomic_load_explicit(&s->slots[i], memory_order_relaxed))
                i = (i + 1) & (SLOTS - 1);
        /* release: publishes the entry's fields before its pointer; pairs
         * with the acquire in table_find */
        atomic_store_explicit(&s->slots[i], e, memory_order_release);
        return 0;
}

static void entry_free(entry_t *e) {
        if (!e)
                return;
        ds_codec_destroy(e->codec);
        if (e->schema)
                avro_schema_decref(e->schema);
        free(e);
}

/* Parses a schema's JSON text and compiles its decoder into e (codec NULL
 * and a note when it is not a readable Declaration). Returns the state
 * reason: NONE or INCOMPATIBLE_SCHEMA. */
static ds_dlq_reason_t compile_locked(const ds_schemas_t *s, entry_t *e, const char *text, size_t len) {
        if (avro_schema_from_json_length(text, len, &e->schema)) {
                /* avro_strerror() is process-wide and not thread-safe: the
                 * note stays generic on the run-time path */
                e->schema = NULL;
                snprintf(e->note, sizeof(e->note), "not a valid Avro schema");
                return DS_DLQ_INCOMPATIBLE_SCHEMA;
        }
        if (is_avro_record(e->schema) && !strcmp(avro_schema_name(e->schema), "Declaration")) {
                e->codec = ds_codec_new(s->reader, e->schema, e->note, sizeof(e->note));
                return e->codec ? DS_DLQ_NONE : DS_DLQ_INCOMPATIBLE_SCHEMA;
        }
        snprintf(e->note, sizeof(e->note), "record %s is not a Declaration",
                 is_avro_named_type(e->schema) ? avro_schema_name(e->schema) : avro_schema_type_name(e->schema));
        return DS_DLQ_INCOMPATIBLE_SCHEMA;
}

/* Under the Avro C lock (ds_codec_avro.h): a registry lookup compiles on the
 * thread that met the id, beside workers and ds_live in Avro C. */
static ds_dlq_reason_t compile_entry(const ds_schemas_t *s, entry_t *e, const char *text, size_t len) {
        ds_avro_lock();
        ds_dlq_reason_t r = compile_locked(s, e, text, len);
        ds_avro_unlock();
        return r;
}

/* ------------------------------------------------------------------------ */
/* Loading schema.dir                                                        */

static ds_schemas_t *alloc_schemas(void) {
        ds_schemas_t *s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        pthread_mutex_init(&s->mu, NULL);
        pthread_cond_init(&s->cv, NULL);
        return s;
}

static int load_one(ds_schemas_t *s, const char *dir, const char *file, uint32_t id, const char *where,
                    char *errstr, size_t sz) {
        char spath[4096], err[512];
        size_t len;
        snprintf(spath, sizeof(spath), "%s/%s", dir, file);
        char *text = ds_read_file(spath, &len, err, sizeof(err));
        if (!text)
                return ds_err(errstr, sz, "%s: %s", where, err);
        avro_schema_t schema;
        ds_avro_lock(); /* (another ds_schemas may be in Avro C already: ds_live's, the workers') */
        if (avro_schema_from_json_length(text, len, &schema)) {
                ds_err(errstr, sz, "%s: not a valid Avro schema: %s", spath, avro_strerror());
                ds_avro_unlock();
                free(text);
                return -1;
        }
        avro_schema_decref(schema); /* parsed again by compile_entry: one code path for both sources */
        ds_avro_unlock();
        uint64_t fp;
        int has_fp = ds_schema_fingerprint(text, len, &fp, err, sizeof(err)) == 0;
        if (!has_fp) /* a schema Avro C parses but the canonical form refuses (e.g. too deep) */
                ds_log(DS_LOG_WARN, "schemas", "no fingerprint: single-object messages cannot name this schema",
                       "file=%s error=\"%s\"", spath, err);
        entry_t *e = calloc(1, sizeof(*e));
        fp_entry_t *nf = realloc(s->fps, (size_t)(s->nfps + 1) * sizeof(*nf));
        if (!e || !nf) {
                free(e);
                if (nf)
                        s->fps = nf;
                free(text);
                return ds_err(errstr, sz, "out of memory");
        }
        s->fps = nf;
        e->id = id;
        e->local = 1;
        ds_dlq_reason_t r = compile_entry(s, e, text, len);
        free(text);
        atomic_store_explicit(&e->state, ST(r, FOREVER), memory_order_relaxed); /* published by table_insert */
        if (table_insert(s, e)) {
                entry_free(e);
                return ds_err(errstr, sz, "%s: more than %d schemas", where, MAX_IDS);
        }
        int dup = !has_fp;
        for (int i = 0; i < s->nfps && has_fp; i++)
                dup |= s->fps[i].fp == fp;
        if (!dup) /* the same schema under two ids: the first id answers */
                s->fps[s->nfps++] = (fp_entry_t){fp, e};
        return 0;
}

ds_schemas_t *ds_schemas_load(const char *dir, char *errstr, size_t sz) {
        ds_schemas_t *s = alloc_schemas();
        char path[4096], err[512];
        char *text = NULL;
        if (!s) {
                ds_err(errstr, sz, "out of memory");
                return NULL;
        }
        size_t len;
        snprintf(path, sizeof(path), "%s/customs_declaration.avsc", dir);
        if (!(text = ds_read_file(path, &len, err, sizeof(err)))) {
                ds_err(errstr, sz, "schema.dir: %s", err);
                goto fail;
        }
        s->reader = ds_reader_new(text, len, err, sizeof(err));
        free(text);
        if (!s->reader) {
                ds_err(errstr, sz, "%s: %s", path, err);
                goto fail;
        }

        snprintf(path, sizeof(path), "%s/registry.properties", dir);
        FILE *f = fopen(path, "r");
        if (!f) {
                ds_err(errstr, sz, "schema.dir: cannot open %s: %s", path, strerror(errno));
                goto fail;
        }
        char line[1024];
        int lineno = 0;
        while (fgets(line, sizeof(line), f)) {
                lineno++;
                char *p = line;
                while (isspace((unsigned char)*p))
                        p++;
                if (!*p || *p == '#')
                        continue;
                char *end;
                errno = 0;
                unsigned long id = strtoul(p, &end, 10);
                if (errno || end == p || id > UINT32_MAX) {
                        ds_err(errstr, sz, "%s:%d: expected <schema id> = <file>", path, lineno);
                        fclose(f);
                        goto fail;
                }
                p = end;
                while (isspace((unsigned char)*p))
                        p++;
                if (*p++ != '=') {
                        ds_err(errstr, sz, "%s:%d: expected <schema id> = <file>", path, lineno);
                        fclose(f);
                        goto fail;
                }
                while (isspace((unsigned char)*p))
                        p++;
                char *e = p + strlen(p);
                while (e > p && isspace((unsigned char)e[-1]))
                        *--e = '\0';
                if (table_find(s, (uint32_t)id)) {
                        ds_err(errstr, sz, "%s:%d: schema id %lu registered twice", path, lineno, id);
                        fclose(f);
                        goto fail;
                }
                char where[4200];
                snprintf(where, sizeof(where), "%s:%d", path, lineno);
                if (load_one(s, dir, p, (uint32_t)id, where, errstr, sz)) {
                        fclose(f);
                        goto fail;
                }
        }
        fclose(f);
        if (!s->n) {
                ds_err(errstr, sz, "%s registers no schema", path);
                goto fail;
        }
        return s;
fail:
        ds_schemas_destroy(s);
        return NULL;
}

ds_schemas_t *ds_schemas_open_registry(const char *dir, const ds_registry_conf_t *rc, int64_t negative_ttl_ms,
                                       char *errstr, size_t sz) {
        ds_schemas_t *s = ds_schemas_load(dir, errstr, sz);
        if (!s || !rc)
                return s;
        char err[512];
        if (!(s->reg = ds_registry_new(rc, err, sizeof(err)))) {
                ds_err(errstr, sz, "%s", err);
                ds_schemas_destroy(s);
                return NULL;
        }
        s->negative_ttl_ms = negative_ttl_ms < 0 ? 0 : negative_ttl_ms;
        ds_log(DS_LOG_INFO, "schemas", "schema registry configured for ids not in schema.dir",
               "url=\"%s\" basic_auth=%s timeout_ms=%" PRId64 " retries=%d max_stall_ms=%" PRId64
               " negative_ttl_ms=%" PRId64,
               ds_registry_url_for_log(s->reg), rc->user_info && *rc->user_info ? "yes" : "no", rc->timeout_ms,
               rc->retries, ds_registry_max_fetch_ms(s->reg), s->negative_ttl_ms);
        return s;
}

ds_schemas_t *ds_schemas_open(const ds_config_t *cfg, char *errstr, size_t sz) {
        if (!cfg->schema_registry_url || !*cfg->schema_registry_url)
                return ds_schemas_load(cfg->schema_dir, errstr, sz);
        ds_registry_conf_t rc = {
            .url = cfg->schema_registry_url,
            .user_info = cfg->schema_registry_user_info,
            .timeout_ms = cfg->schema_registry_timeout_ms,
            .retries = cfg->schema_registry_retries,
            .backoff_ms = REGISTRY_BACKOFF_MS,
            .backoff_max_ms = REGISTRY_BACKOFF_MAX_MS,
        };
        return ds_schemas_open_registry(cfg->schema_dir, &rc, cfg->schema_registry_negative_ttl_ms, errstr, sz);
}

void ds_schemas_destroy(ds_schemas_t *s) {
        if (!s)
                return;
        for (int i = 0; i < s->n; i++)
                entry_free(s->all[i]);
        free(s->fps);
        ds_registry_destroy(s->reg);
        ds_reader_destroy(s->reader);
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        free(s);
}

/* ------------------------------------------------------------------------ */
/* Lookups                                                                   */

/* Asks the registry about id. Called without the state being usable. */
static const ds_codec_t *resolve_slow(ds_schemas_t *s, uint32_t id, ds_dlq_reason_t *why) {
        pthread_mutex_lock(&s->mu);
        entry_t *e;
        int64_t now;
        for (;;) {
                now = ds_mono_ms();
                e = table_find(s, id);
                if (!e)
                        break;
                /* relaxed: state is only stored under mu, which we hold */
                uint64_t st = atomic_load_explicit(&e->state, memory_order_relaxed);
                ds_dlq_reason_t r = ST_REASON(st);
                if (r == DS_DLQ_NONE || r == DS_DLQ_INCOMPATIBLE_SCHEMA || now < ST_UNTIL(st)) {
                        pthread_mutex_unlock(&s->mu);
                        *why = r;
                        return r == DS_DLQ_NONE ? e->codec : NULL;
                }
                if (!e->fetching)
                        break;
                pthread_cond_wait(&s->cv, &s->mu); /* another thread is asking: take its answer */
        }
        if (!e && s->n == MAX_IDS) {
                int first = !s->full_logged;
                s->full_logged = 1;
                pthread_mutex_unlock(&s->mu);
                if (first)
                        ds_log(DS_LOG_WARN, "schemas",
                               "schema id table full: further unknown ids are dead-lettered without asking the registry",
                               "ids=%d schema_id=%" PRIu32, MAX_IDS, id);
                *why = DS_DLQ_UNKNOWN_SCHEMA;
                return NULL;
        }
        if (!e) {
                if (!(e = calloc(1, sizeof(*e)))) {
                        pthread_mutex_unlock(&s->mu);
                        *why = DS_DLQ_REGISTRY_UNAVAILABLE;
                        return NULL;
                }
                e->id = id;
                /* a negative answer that has already expired: readers come
                 * here, and wait while `fetching` is set */
                atomic_store_explicit(&e->state, ST(DS_DLQ_REGISTRY_UNAVAILABLE, 0), memory_order_relaxed);
                table_insert(s, e); /* cannot fail: n < MAX_IDS was checked */
        }
        if (now < s->down_until) {
                /* the registry failed moments ago: answer without asking, and
                 * let the lock-free path answer this id until then */
                atomic_store_explicit(&e->state, ST(DS_DLQ_REGISTRY_UNAVAILABLE, s->down_until), memory_order_release);
                pthread_mutex_unlock(&s->mu);
                *why = DS_DLQ_REGISTRY_UNAVAILABLE;
                return NULL;
        }
        e->fetching = 1;
        pthread_mutex_unlock(&s->mu);

        /* outside the lock: other ids resolve meanwhile */
        char err[512] = "", *text = NULL;
        size_t len = 0;
        int64_t t0 = ds_mono_ms();
        int down = 0;
        ds_dlq_reason_t r = ds_registry_fetch(s->reg, id, &text, &len, &down, err, sizeof(err));
        avro_schema_t schema = NULL;
        ds_codec_t *codec = NULL;
        char note[256] = "";
        if (r == DS_DLQ_NONE) {
                entry_t tmp = {.id = id};
                r = compile_entry(s, &tmp, text, len);
                schema = tmp.schema;
                codec = tmp.codec;
                memcpy(note, tmp.note, sizeof(note));
        } else {
                snprintf(note, sizeof(note), "%.255s", err);
        }
        free(text);
        int64_t done = ds_mono_ms();

        pthread_mutex_lock(&s->mu);
        e->fetching = 0;
        if (r == DS_DLQ_NONE || r == DS_DLQ_INCOMPATIBLE_SCHEMA) {
                e->schema = schema;
                e->codec = codec;
                memcpy(e->note, note, sizeof(e->note));
                s->down_until = 0;
                /* release: publishes schema, codec and note before the state
                 * that says they are there; pairs with the acquire in lookup() */
                atomic_store_explicit(&e->state, ST(r, FOREVER), memory_order_release);
        } else {
                int64_t until = done + s->negative_ttl_ms;
                memcpy(e->note, note, sizeof(e->note));
                /* only a registry that failed spares the others; a 404 or an
                 * unusable answer about this id says the registry is up */
                s->down_until = down ? until : 0;
                atomic_store_explicit(&e->state, ST(r, until), memory_order_release);
        }
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);

        char q[600];
        if (r == DS_DLQ_NONE)
                ds_log(DS_LOG_INFO, "schemas", "schema fetched from the registry",
                       "schema_id=%" PRIu32 " ms=%" PRId64, id, done - t0);
        else if (r == DS_DLQ_INCOMPATIBLE_SCHEMA)
                ds_log(DS_LOG_WARN, "schemas", "registry schema is not readable as a Declaration; its messages are dead-lettered",
                       "schema_id=%" PRIu32 " why=\"%s\"", id, ds_log_quote(q, sizeof(q), note));
        else
                ds_log(DS_LOG_WARN, "schemas", "schema id not resolved by the registry; its messages are dead-lettered",
                       "schema_id=%" PRIu32 " reason=%s ms=%" PRId64 " retry_after_ms=%" PRId64 " error=\"%s\"", id,
                       ds_dlq_code(r), done - t0, s->negative_ttl_ms, ds_log_quote(q, sizeof(q), err));
        *why = r;
        return codec;
}

/* @locality any thread. The hot path is the first three lines. */
static inline const ds_codec_t *lookup(const ds_schemas_t *cs, uint32_t id, ds_dlq_reason_t *why) {
        entry_t *e = table_find(cs, id);
        if (DS_LIKELY(e != NULL)) {
                /* acquire: pairs with the release stores of the state in
                 * resolve_slow, so the codec written before them is visible */
                uint64_t st = atomic_load_explicit(&e->state, memory_order_acquire);
                ds_dlq_reason_t r = ST_REASON(st);
                if (DS_LIKELY(r == DS_DLQ_NONE))
                        return e->codec;
                if (r == DS_DLQ_INCOMPATIBLE_SCHEMA || ds_mono_ms() < ST_UNTIL(st)) {
                        *why = r;
                        return NULL;
                }
        }
        if (!cs->reg) {
                *why = DS_DLQ_UNKNOWN_SCHEMA;
                return NULL;
        }
        return resolve_slow((ds_schemas_t *)cs, id, why);
}

const ds_codec_t *ds_schemas_codec(const ds_schemas_t *s, uint32_t id, ds_dlq_reason_t *why) {
        return lookup(s, id, why);
}

static entry_t *fp_find(const ds_schemas_t *s, uint64_t fp) {
        for (int i = 0; i < s->nfps; i++)
                if (s->fps[i].fp == fp)
                        return s->fps[i].e;
        return NULL;
}

ds_dlq_reason_t ds_schemas_resolve(const ds_schemas_t *s, const uint8_t *msg, size_t len, ds_resolved_t *out) {
        out->codec = NULL;
        out->schema_id = -1;
        out->body = NULL;
        out->body_len = 0;
        if (DS_UNLIKELY(!msg || len == 0))
                return DS_DLQ_EMPTY;
        ds_dlq_reason_t r;
        if (DS_UNLIKELY(msg[0] == DS_SOE_MARKER0)) {
                /* Avro single-object encoding */
                if (len >= 2 && msg[1] != DS_SOE_MARKER1)
                        return DS_DLQ_BAD_MAGIC;
                if (len < DS_SOE_HEADER)
                        return DS_DLQ_SHORT_HEADER;
                uint64_t fp = 0;
                for (int i = 7; i >= 0; i--)
                        fp = fp << 8 | msg[2 + i];
                entry_t *e = fp_find(s, fp);
                if (!e)
                        return DS_DLQ_UNKNOWN_SCHEMA;
                out->schema_id = e->id;
                out->body = msg + DS_SOE_HEADER;
                out->body_len = len - DS_SOE_HEADER;
                /* local entries are final from load on: no registry involved */
                out->codec = e->codec;
                return e->codec ? DS_DLQ_NONE : DS_DLQ_INCOMPATIBLE_SCHEMA;
        }
        uint32_t id;
        r = ds_wire_parse(msg, len, &id, &out->body, &out->body_len);
        if (DS_UNLIKELY(r))
                return r;
        out->schema_id = id;
        out->codec = lookup(s, id, &r);
        return out->codec ? DS_DLQ_NONE : r;
}

avro_schema_t ds_schemas_get(const ds_schemas_t *s, uint32_t id) {
        entry_t *e = table_find(s, id);
        if (!e)
                return NULL;
        /* acquire: as in lookup(), for a schema fetched at run time */
        uint64_t st = atomic_load_explicit(&e->state, memory_order_acquire);
        ds_dlq_reason_t r = ST_REASON(st);
        return r == DS_DLQ_NONE || r == DS_DLQ_INCOMPATIBLE_SCHEMA ? e->schema : NULL;
}

const ds_reader_t *ds_schemas_reader(const ds_schemas_t *s) {
        return s->reader;
}

const char *ds_schemas_note(const ds_schemas_t *s, uint32_t id) {
        entry_t *e = table_find(s, id);
        if (!e)
                return "not registered";
        uint64_t st = atomic_load_explicit(&e->state, memory_order_acquire);
        switch (ST_REASON(st)) {
        case DS_DLQ_NONE:
                return "";
        case DS_DLQ_INCOMPATIBLE_SCHEMA:
                return e->note; /* final: written before the state's release */
        default:
                return ds_dlq_text(ST_REASON(st)); /* a negative entry's note may be rewritten */
        }
}

int ds_schemas_fingerprint(const ds_schemas_t *s, uint32_t id, uint64_t *fp) {
        for (int i = 0; i < s->nfps; i++)
                if (s->fps[i].e->id == id) {
                        *fp = s->fps[i].fp;
                        return 0;
                }
        return -1;
}

uint64_t ds_schemas_registry_requests(const ds_schemas_t *s) {
        return s->reg ? ds_registry_requests(s->reg) : 0;
}
