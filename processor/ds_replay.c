/*
 * ds_replay.c - replay files, and the replay engine.
 *
 * The file is mapped and checked once when opened; from then on reading it
 * cannot fail, so workers parse record headers without bounds checks.
 *
 * Threads. Partitions are dealt to workers before the clock starts (largest
 * first, each to the least loaded worker), and each worker gets the list of
 * its records in file order: a partition's events keep their order, and no
 * two threads ever touch one partition. The main thread drives cycles as the
 * pipeline's does: every cycle_ms it raises `req`; each worker, between
 * messages (it looks every 256), flushes its partitions into its own outbox
 * (with SINK_PARTIAL: their changed rows encoded into its own partial
 * batches, as the pipeline's workers do) and answers with `done`; main then
 * merges all outboxes and publishes (ds_publish_cycle), or hands the
 * batches on and adds the statuses, while the workers go on - a worker
 * touches its outbox and batches only when asked for the next flush, which
 * main asks only once it has finished reading. Memory orders:
 *   - req: main's release store, the workers' acquire load. Main read the
 *     outboxes before raising it, so those reads happen before the worker's
 *     next ds_outbox_reset();
 *   - done: the worker's release store after filling its outbox (and
 *     batches), main's acquire load before reading them;
 *   - finished / start / stop: release stores, acquire loads, publishing
 *     nothing but the flag itself (counters are read after pthread_join).
 * No atomic is touched per message; the per-message path is exactly the
 * pipeline's (ds_step.h, ds_part_apply) minus the dead-letter produce.
 *
 * Warm-up (--warmup W): the first W passes run before the clock starts.
 * Each worker, at the end of its last warm-up pass, raises `warm` and serves
 * flush requests until main raises `go`; main keeps cycling until every
 * worker is warm, runs one more cycle (so the warm-up's rows, and its
 * changelog, are out before the clock), then starts the clock and raises
 * `go`; each worker then notes its counters, whose growth from there on is
 * the measured passes'. warm and go are flags with release stores and
 * acquire loads, publishing nothing else (the noted counters are the
 * worker's own, read by main after pthread_join).
 *
 * Passes (--repeat K): pass k replays the file as the next stretch of
 * history - declaration ids + k * 10^12 (ids have 12 digits, so they never
 * meet an id of another pass), event times and the clock + k * S (S: the
 * file's event-time span rounded up to whole days), offsets + k * (largest
 * offset + 1) - so every pass does the work of the first: new ledger
 * entries, new windows, evictions.
 */
#include "ds_replay.h"
#include "ds_common.h"
#include "ds_domain.h"
#include "ds_encode.h"
#include "ds_hll.h"
#include "ds_partial.h"
#include "ds_publish.h"
#include "ds_schemas.h"
#include "ds_state.h"
#include "ds_step.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- little-endian fields ------------------------------------------------ */

static inline uint32_t rd32(const uint8_t *p) {
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t rd64(const uint8_t *p) {
        return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static inline void wr32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
        p[2] = (uint8_t)(v >> 16);
        p[3] = (uint8_t)(v >> 24);
}

static inline void wr64(uint8_t *p, uint64_t v) {
        wr32(p, (uint32_t)v);
        wr32(p + 4, (uint32_t)(v >> 32));
}

/* ---- writer -------------------------------------------------------------- */

struct ds_replay_writer {
        FILE *f;
        char *path, *tmp;
        uint64_t count;
};

ds_replay_writer_t *ds_replay_writer_open(const char *path, char *errstr, size_t sz) {
        ds_replay_writer_t *w = calloc(1, sizeof(*w));
        if (!w) {
                ds_err(errstr, sz, "out of memory");
                return NULL;
        }
        size_t n = strlen(path);
        w->path = strdup(path);
        w->tmp = malloc(n + 5);
        if (!w->path || !w->tmp) {
                ds_err(errstr, sz, "out of memory");
                goto fail;
        }
        snprintf(w->tmp, n + 5, "%s.tmp", path);
        w->f = fopen(w->tmp, "wb");
        if (!w->f) {
                ds_err(errstr, sz, "cannot create %s: %s", w->tmp, strerror(errno));
                goto fail;
        }
        setvbuf(w->f, NULL, _IOFBF, 1 << 20);
        uint8_t h[DS_REPLAY_HEADER];
        memcpy(h, DS_REPLAY_MAGIC, 8);
        wr32(h + 8, DS_REPLAY_VERSION);
        wr32(h + 12, 0);
        if (fwrite(h, 1, sizeof(h), w->f) != sizeof(h)) {
                ds_err(errstr, sz, "cannot write %s: %s", w->tmp, strerror(errno));
                fclose(w->f);
                unlink(w->tmp);
                goto fail;
        }
        return w;
fail:
        free(w->path);
        free(w->tmp);
        free(w);
        return NULL;
}

int ds_replay_write(ds_replay_writer_t *w, int32_t partition, int64_t offset, int64_t timestamp, const void *key,
                    size_t key_len, const void *value, size_t value_len, char *errstr, size_t sz) {
        if (partition < 0 || partition > DS_REPLAY_MAX_PARTITION)
                return ds_err(errstr, sz, "partition %d cannot be recorded (0..%d)", partition,
                              DS_REPLAY_MAX_PARTITION);
        if (offset < 0)
                return ds_err(errstr, sz, "offset %" PRId64 " cannot be recorded", offset);
        if ((key && key_len > DS_REPLAY_MAX_FIELD) || (value && value_len > DS_REPLAY_MAX_FIELD))
                return ds_err(errstr, sz, "a key or value over %u bytes cannot be recorded", DS_REPLAY_MAX_FIELD);
        uint8_t h[DS_REPLAY_RECORD_HEADER];
        wr32(h, (uint32_t)partition);
        wr64(h + 4, (uint64_t)offset);
        wr64(h + 12, (uint64_t)timestamp);
        wr32(h + 20, key ? (uint32_t)key_len : DS_REPLAY_NULL);
        wr32(h + 24, value ? (uint32_t)value_len : DS_REPLAY_NULL);
        if (fwrite(h, 1, sizeof(h), w->f) != sizeof(h) || (key && key_len && fwrite(key, 1, key_len, w->f) != key_len) ||
            (value && value_len && fwrite(value, 1, value_len, w->f) != value_len))
                return ds_err(errstr, sz, "cannot write %s: %s", w->tmp, strerror(errno));
        w->count++;
        return 0;
}

uint64_t ds_replay_writer_count(const ds_replay_writer_t *w) {
        return w->count;
}

int ds_replay_writer_close(ds_replay_writer_t *w, int commit, char *errstr, size_t sz) {
        int rc = 0;
        if (fclose(w->f)) {
                rc = ds_err(errstr, sz, "cannot write %s: %s", w->tmp, strerror(errno));
                commit = 0;
        }
        if (commit && rename(w->tmp, w->path)) {
                rc = ds_err(errstr, sz, "cannot rename %s to %s: %s", w->tmp, w->path, strerror(errno));
                commit = 0;
        }
        if (!commit)
                unlink(w->tmp);
        free(w->path);
        free(w->tmp);
        free(w);
        return rc;
}

/* ---- reader -------------------------------------------------------------- */

struct ds_replay_file {
        const uint8_t *map;
        size_t size;
        uint64_t count;
        int32_t max_partition;
        int64_t max_offset;
};

ds_replay_file_t *ds_replay_file_open(const char *path, char *errstr, size_t sz) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                ds_err(errstr, sz, "cannot open %s: %s", path, strerror(errno));
                return NULL;
        }
        struct stat st;
        if (fstat(fd, &st)) {
                ds_err(errstr, sz, "cannot stat %s: %s", path, strerror(errno));
                close(fd);
                return NULL;
        }
        size_t size = (size_t)st.st_size;
        if (size < DS_REPLAY_HEADER) {
                ds_err(errstr, sz, "%s: %zu bytes, too short for a replay file (its header alone is %d bytes)", path,
                       size, DS_REPLAY_HEADER);
                close(fd);
                return NULL;
        }
        /* MAP_POPULATE: read it all now, so that page faults are not timed */
        const uint8_t *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        close(fd);
        if (map == MAP_FAILED) {
                ds_err(errstr, sz, "cannot map %s: %s", path, strerror(errno));
                return NULL;
        }
        ds_replay_file_t *f = calloc(1, sizeof(*f));
        if (!f) {
                ds_err(errstr, sz, "out of memory");
                munmap((void *)map, size);
                return NULL;
        }
        f->map = map;
        f->size = size;
        f->max_partition = -1;
        f->max_offset = -1;
        if (memcmp(map, DS_REPLAY_MAGIC, 8)) {
                ds_err(errstr, sz, "%s is not a declstream replay file (no \"%s\" magic at its start)", path,
                       DS_REPLAY_MAGIC);
                goto bad;
        }
        if (rd32(map + 8) != DS_REPLAY_VERSION) {
                ds_err(errstr, sz, "%s: replay file version %u, this declstream reads version %d", path,
                       rd32(map + 8), DS_REPLAY_VERSION);
                goto bad;
        }
        size_t pos = DS_REPLAY_HEADER;
        while (pos < size) {
                uint64_t n = f->count + 1;
                if (size - pos < DS_REPLAY_RECORD_HEADER) {
                        ds_err(errstr, sz,
                               "%s: record %" PRIu64 " at byte %zu: the file ends inside its %d-byte header "
                               "(truncated file?)",
                               path, n, pos, DS_REPLAY_RECORD_HEADER);
                        goto bad;
                }
                const uint8_t *h = map + pos;
                int32_t part = (int32_t)rd32(h);
                int64_t off = (int64_t)rd64(h + 4);
                uint32_t kl = rd32(h + 20), vl = rd32(h + 24);
                if (part < 0 || part > DS_REPLAY_MAX_PARTITION) {
                        ds_err(errstr, sz, "%s: record %" PRIu64 " at byte %zu: partition %d out of range (corrupt file)",
                               path, n, pos, part);
                        goto bad;
                }
                if (off < 0) {
                        ds_err(errstr, sz, "%s: record %" PRIu64 " at byte %zu: negative offset %" PRId64 " (corrupt file)",
                               path, n, pos, off);
                        goto bad;
                }
                uint64_t klen = kl == DS_REPLAY_NULL ? 0 : kl, vlen = vl == DS_REPLAY_NULL ? 0 : vl;
                if (klen > DS_REPLAY_MAX_FIELD || vlen > DS_REPLAY_MAX_FIELD) {
                        ds_err(errstr, sz,
                               "%s: record %" PRIu64 " at byte %zu: key of %" PRIu64 " or value of %" PRIu64
                               " bytes (over %u: corrupt file)",
                               path, n, pos, klen, vlen, DS_REPLAY_MAX_FIELD);
                        goto bad;
                }
                if (klen + vlen > size - pos - DS_REPLAY_RECORD_HEADER) {
                        ds_err(errstr, sz,
                               "%s: record %" PRIu64 " at byte %zu: its key and value (%" PRIu64
                               " bytes) run past the end of the file (truncated file?)",
                               path, n, pos, klen + vlen);
                        goto bad;
                }
                pos += DS_REPLAY_RECORD_HEADER + klen + vlen;
                f->count++;
                if (part > f->max_partition)
                        f->max_partition = part;
                if (off > f->max_offset)
                        f->max_offset = off;
        }
        return f;
bad:
        ds_replay_file_close(f);
        return NULL;
}

void ds_replay_file_close(ds_replay_file_t *f) {
        if (!f)
                return;
        munmap((void *)f->map, f->size);
        free(f);
}

uint64_t ds_replay_file_count(const ds_replay_file_t *f) {
        return f->count;
}

size_t ds_replay_file_bytes(const ds_replay_file_t *f) {
        return f->size;
}

int32_t ds_replay_file_max_partition(const ds_replay_file_t *f) {
        return f->max_partition;
}

/* Parses the (checked) record at h. Returns its length. */
static inline size_t parse(const uint8_t *h, ds_replay_msg_t *m) {
        uint32_t kl = rd32(h + 20), vl = rd32(h + 24);
        m->partition = (int32_t)rd32(h);
        m->offset = (int64_t)rd64(h + 4);
        m->timestamp = (int64_t)rd64(h + 12);
        const uint8_t *p = h + DS_REPLAY_RECORD_HEADER;
        m->key = kl == DS_REPLAY_NULL ? NULL : p;
        m->key_len = kl == DS_REPLAY_NULL ? 0 : kl;
        p += m->key_len;
        m->value = vl == DS_REPLAY_NULL ? NULL : p;
        m->value_len = vl == DS_REPLAY_NULL ? 0 : vl;
        return DS_REPLAY_RECORD_HEADER + m->key_len + m->value_len;
}

int ds_replay_file_next(const ds_replay_file_t *f, size_t *pos, ds_replay_msg_t *m) {
        if (*pos < DS_REPLAY_HEADER)
                *pos = DS_REPLAY_HEADER;
        if (*pos >= f->size)
                return 0;
        *pos += parse(f->map + *pos, m);
        return 1;
}

/* ---- replay -------------------------------------------------------------- */

void ds_replay_opts_default(ds_replay_opts_t *o) {
        memset(o, 0, sizeof(*o));
        o->threads = 1;
        o->repeat = 1;
        o->heading_digits = 4;
        o->cycle_ms = 1000;
        o->sink = DS_REPLAY_SINK_NULL;
        ds_part_cfg_default(&o->part);
}

#define ID_PASS_STRIDE 1000000000000ULL /* 10^12: ids have 12 digits */
#define POLL_EVERY 256                  /* messages between looks at the cycle request */

typedef struct rworker {
        struct ds_replay *r;
        int id;
        pthread_t th;
        const uint8_t **msgs; /* its records, in file order */
        uint64_t nmsgs;
        int32_t *owned;
        int nowned;
        ds_outbox_t ob;
        ds_partial_out_t pout; /* SINK_PARTIAL: the flush's partial rows, encoded (ds_pipeline.c) */
        uint64_t served; /* last request served */
        int64_t now_ms;
        int fatal;
        /* counters: read by main after pthread_join */
        uint64_t messages, declarations, dead, bytes;
        uint64_t cl_bytes, cl_records; /* SINK_PARTIAL: changelog written (and dropped) */
        uint64_t dlq[DS_DLQ__CNT];
        uint64_t outcome[DS_EV__CNT];
        _Alignas(DS_CACHELINE) _Atomic uint64_t done; /* last request served, for main */
        _Atomic int finished;                         /* every pass replayed */
        int64_t finished_ns;                          /* when (ds_mono_ns), read after pthread_join */
        _Atomic int warm;                             /* every warm-up pass replayed */
        /* counters at the end of the warm-up (subtracted from the totals) */
        uint64_t w_bytes, w_cl_bytes, w_cl_records;
        uint64_t w_dlq[DS_DLQ__CNT];
        uint64_t w_outcome[DS_EV__CNT];
        _Alignas(DS_CACHELINE) ds_step_ahead_t ahead[2]; /* the message applied next, and the one after */
        ds_contrib_t old;
} rworker_t;

/* A kept row's distinct counts (aux of the keep table's GATE DAY rows). */
typedef struct kept_distinct {
        int64_t declarants, vehicles;
} kept_distinct_t;

struct ds_replay {
        const ds_replay_file_t *f;
        ds_replay_opts_t o;
        ds_schemas_t *schemas;
        ds_part_t **parts; /* by partition number; each owned by one worker */
        int32_t nparts;    /* max partition + 1 */
        int npresent;
        rworker_t **w;
        int nw;
        ds_merge_t *merge;
        int64_t time_shift_ms, offset_shift;
        int ran;
        /* main thread -> workers */
        _Alignas(DS_CACHELINE) _Atomic uint64_t req;
        _Atomic int start, stop, go;
        _Alignas(DS_CACHELINE) uint64_t rows_out;
        ds_rows_t *keep; /* SINK_KEEP: latest value of every row */
        json_t *tops;    /* SINK_KEEP: "<gate>|DAY|<start>" -> list */
        int sink_failed;
        /* SINK_PARTIAL */
        ds_partial_batcher_t *batcher; /* as many partial partitions as input partitions */
        uint64_t partials, partial_rows, partial_bytes;
        int64_t *gate_total; /* [partition * ngates + gate]: declarations of the last GATE TOTAL share */
        int ngates;
        ds_partial_sent_t *sent; /* [partition]: the STATUS last encoded (the pipeline's rule, ds_partial.h) */
};

static void free_kept(void *p) {
        free(p);
}

void ds_replay_destroy(ds_replay_t *r) {
        if (!r)
                return;
        for (int i = 0; i < r->nw; i++) {
                if (!r->w[i])
                        continue;
                free(r->w[i]->msgs);
                free(r->w[i]->owned);
                ds_outbox_free(&r->w[i]->ob);
                ds_partial_out_free(&r->w[i]->pout);
                free(r->w[i]);
        }
        free(r->w);
        if (r->parts)
                for (int32_t p = 0; p < r->nparts; p++)
                        ds_part_destroy(r->parts[p]);
        free(r->parts);
        ds_merge_destroy(r->merge);
        ds_partial_batcher_destroy(r->batcher);
        free(r->gate_total);
        free(r->sent);
        ds_schemas_destroy(r->schemas);
        if (r->keep)
                ds_rows_destroy_with(r->keep, free_kept);
        json_decref(r->tops);
        free(r);
}

/* Event-time span of the file's valid declarations, for the pass shift. */
static int64_t event_span(ds_replay_t *r, rworker_t *scratch) {
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        size_t pos = 0;
        ds_replay_msg_t m;
        ds_step_ahead_t *a = &scratch->ahead[0];
        while (ds_replay_file_next(r->f, &pos, &m)) {
                if (ds_step_decode(r->schemas, m.value, m.value_len, &a->decl, &a->rs) ||
                    ds_step_check(&a->decl, r->o.heading_digits, m.key, m.key_len, &a->contrib))
                        continue;
                if (a->contrib.declared_at < lo)
                        lo = a->contrib.declared_at;
                if (a->contrib.declared_at > hi)
                        hi = a->contrib.declared_at;
        }
        if (lo > hi)
                return DS_DAY_MS;
        return ((hi - lo) / DS_DAY_MS + 1) * DS_DAY_MS;
}

static int emit_batch(void *ctx, int32_t pp, const uint8_t *msg, size_t len, uint32_t rows);

ds_replay_t *ds_replay_new(const ds_replay_file_t *f, const ds_replay_opts_t *o, char *errstr, size_t sz) {
        if (o->threads < 1 || o->repeat < 1 || o->warmup < 0 || o->cycle_ms < 1 || o->heading_digits < 2 ||
            o->heading_digits > 8 || (o->heading_digits & 1)) {
                ds_err(errstr, sz, "invalid replay options");
                return NULL;
        }
        ds_domain_init();
        ds_replay_t *r = calloc(1, sizeof(*r));
        if (!r) {
                ds_err(errstr, sz, "out of memory");
                return NULL;
        }
        r->f = f;
        r->o = *o;
        r->schemas = ds_schemas_load(o->schema_dir ? o->schema_dir : DS_SCHEMA_DIR, errstr, sz);
        if (!r->schemas)
                goto fail;
        r->nparts = f->max_partition + 1;
        r->parts = calloc((size_t)(r->nparts > 0 ? r->nparts : 1), sizeof(*r->parts));
        uint64_t *per = calloc((size_t)(r->nparts > 0 ? r->nparts : 1), sizeof(uint64_t));
        int32_t *order = calloc((size_t)(r->nparts > 0 ? r->nparts : 1), sizeof(int32_t));
        int *owner = calloc((size_t)(r->nparts > 0 ? r->nparts : 1), sizeof(int));
        r->nw = o->threads;
        r->w = calloc((size_t)r->nw, sizeof(*r->w));
        if (o->sink == DS_REPLAY_SINK_PARTIAL) { /* no merge: per-partition GATE TOTAL shares instead */
                r->ngates = ds_gate_count();
                if (o->check_partials) /* only --check-partials reads the shares back */
                        r->gate_total = calloc((size_t)(r->nparts > 0 ? r->nparts : 1) * (size_t)r->ngates,
                                               sizeof(*r->gate_total));
                r->sent = calloc((size_t)(r->nparts > 0 ? r->nparts : 1), sizeof(*r->sent));
                r->batcher = ds_partial_batcher_new(r->nparts > 0 ? r->nparts : 1, o->heading_digits,
                                                    DS_PARTIAL_BATCH_BYTES, emit_batch, r);
        } else {
                r->merge = ds_merge_new(&o->part.agg.win, o->part.agg.top_retention_ms);
        }
        if (!r->parts || !per || !order || !owner || !r->w ||
            (!r->merge && ((o->check_partials && !r->gate_total) || !r->sent || !r->batcher))) {
                free(per);
                free(order);
                free(owner);
                ds_err(errstr, sz, "out of memory");
                goto fail;
        }
        /* messages per partition */
        size_t pos = 0;
        ds_replay_msg_t m;
        while (ds_replay_file_next(f, &pos, &m))
                per[m.partition]++;
        /* largest partitions first, each to the least loaded worker */
        int32_t np = 0;
        for (int32_t p = 0; p < r->nparts; p++)
                if (per[p])
                        order[np++] = p;
        r->npresent = np;
        for (int32_t i = 1; i < np; i++)
                for (int32_t j = i; j > 0 && per[order[j - 1]] < per[order[j]]; j--) {
                        int32_t t = order[j];
                        order[j] = order[j - 1];
                        order[j - 1] = t;
                }
        uint64_t load[256] = {0};
        int nwk = r->nw < 256 ? r->nw : 256;
        for (int i = 0; i < r->nw; i++) {
                rworker_t *w = aligned_alloc(DS_CACHELINE, (sizeof(rworker_t) + DS_CACHELINE - 1) / DS_CACHELINE *
                                                               DS_CACHELINE);
                if (!w) {
                        free(per);
                        free(order);
                        free(owner);
                        ds_err(errstr, sz, "out of memory");
                        goto fail;
                }
                memset(w, 0, sizeof(*w));
                w->r = r;
                w->id = i;
                r->w[i] = w;
        }
        for (int32_t i = 0; i < np; i++) {
                int best = 0;
                for (int k = 1; k < nwk; k++)
                        if (load[k] < load[best])
                                best = k;
                load[best] += per[order[i]];
                owner[order[i]] = best;
        }
        int oom = 0;
        for (int i = 0; i < r->nw && !oom; i++) {
                rworker_t *w = r->w[i];
                w->nmsgs = i < nwk ? load[i] : 0;
                w->msgs = malloc((size_t)(w->nmsgs ? w->nmsgs : 1) * sizeof(*w->msgs));
                w->owned = malloc((size_t)(np ? np : 1) * sizeof(int32_t));
                oom |= !w->msgs || !w->owned;
                if (o->sink == DS_REPLAY_SINK_PARTIAL) /* as many partial partitions as input partitions */
                        oom |= ds_partial_out_init(&w->pout, r->nparts > 0 ? r->nparts : 1, o->heading_digits);
        }
        for (int32_t i = 0; i < np && !oom; i++) {
                int32_t p = order[i];
                rworker_t *w = r->w[owner[p]];
                w->owned[w->nowned++] = p;
                ds_part_cfg_t pc = o->part;
                const uint64_t passes = (uint64_t)o->repeat + (uint64_t)o->warmup;
                if (o->presize)
                        pc.ledger_initial =
                                (uint32_t)(per[p] * passes < UINT32_MAX / 4 ? per[p] * passes : UINT32_MAX / 4);
                if (!(r->parts[p] = ds_part_new(&pc, p, 0)))
                        oom = 1;
                else if (o->sink == DS_REPLAY_SINK_PARTIAL)
                        ds_ledger_track_changes(r->parts[p]->ledger); /* its changelog is written */
        }
        if (!oom) {
                uint64_t *fill = calloc((size_t)r->nw, sizeof(uint64_t));
                if (!fill) {
                        oom = 1;
                } else {
                        pos = DS_REPLAY_HEADER;
                        while (pos < f->size) {
                                const uint8_t *h = f->map + pos;
                                pos += parse(h, &m);
                                int k = owner[m.partition];
                                r->w[k]->msgs[fill[k]++] = h;
                        }
                        free(fill);
                }
        }
        free(per);
        free(order);
        free(owner);
        if (oom) {
                ds_err(errstr, sz, "out of memory preparing the replay");
                goto fail;
        }
        if (o->sink == DS_REPLAY_SINK_KEEP && (!(r->keep = ds_rows_new(1024)) || !(r->tops = json_object()))) {
                ds_err(errstr, sz, "out of memory");
                goto fail;
        }
        r->offset_shift = f->max_offset + 1;
        r->time_shift_ms = o->repeat + o->warmup > 1 ? event_span(r, r->w[0]) : 0;
        return r;
fail:
        ds_replay_destroy(r);
        return NULL;
}

/* ---- sinks --------------------------------------------------------------- */

static int sink_null_row(void *ctx, const ds_row_t *row) {
        (void)row;
        ((ds_replay_t *)ctx)->rows_out++;
        return 0;
}

static int sink_null_top(void *ctx, uint32_t gate, int64_t day, const ds_top_entry_t *e, int n) {
        (void)ctx, (void)gate, (void)day, (void)e, (void)n;
        return 0;
}

static int sink_keep_row(void *ctx, const ds_row_t *row) {
        ds_replay_t *r = ctx;
        r->rows_out++;
        ds_row_t *k = ds_rows_get(r->keep, row->key);
        if (!k)
                return -1;
        k->m = row->m;
        const ds_distinct_t *d = row->aux;
        if (d) {
                kept_distinct_t *kd = k->aux;
                if (!kd && !(kd = k->aux = malloc(sizeof(*kd))))
                        return -1;
                kd->declarants = (int64_t)(ds_hll_estimate(d->declarants) + 0.5);
                kd->vehicles = (int64_t)(ds_hll_estimate(d->vehicles) + 0.5);
        }
        return 0;
}

static int sink_keep_top(void *ctx, uint32_t gate, int64_t day, const ds_top_entry_t *e, int n) {
        ds_replay_t *r = ctx;
        char key[64];
        snprintf(key, sizeof(key), "%s|DAY|%" PRId64, ds_gate((int)gate)->code, day);
        json_t *list = json_array();
        if (!list)
                return -1;
        for (int i = 0; i < n; i++) {
                char hd[16];
                snprintf(hd, sizeof(hd), "%0*u", r->o.heading_digits, e[i].heading);
                json_array_append_new(list, json_pack("[sIIII]", hd, (json_int_t)e[i].m.value,
                                                      (json_int_t)e[i].m.declarations, (json_int_t)e[i].m.items,
                                                      (json_int_t)e[i].m.weight));
        }
        return json_object_set_new(r->tops, key, list) ? -1 : 0;
}

/* ---- workers ------------------------------------------------------------- */

static void pause_us(long us) {
        struct timespec ts = {0, us * 1000};
        nanosleep(&ts, NULL);
}

/* A changelog record, dropped (counted). */
static int count_record(void *ctx, const uint8_t *rec, size_t len) {
        (void)rec, (void)len;
        ((rworker_t *)ctx)->cl_records++;
        return 0;
}

/* Serves a flush request, if there is one. */
static void poll_request(rworker_t *w) {
        ds_replay_t *r = w->r;
        /* acquire: pairs with main's release store; main's reads of the
         * outbox for the previous request happened before it */
        uint64_t q = atomic_load_explicit(&r->req, memory_order_acquire);
        if (q == w->served)
                return;
        ds_outbox_reset(&w->ob);
        int partial = r->o.sink == DS_REPLAY_SINK_PARTIAL;
        if (partial)
                ds_partial_out_reset(&w->pout);
        for (int i = 0; i < w->nowned && !w->fatal; i++) {
                ds_part_t *part = r->parts[w->owned[i]];
                uint32_t rows_before = w->ob.nrows, evicts_before = w->ob.nevicts;
                if (ds_part_flush(part, &r->o.part, w->now_ms, &w->ob)) {
                        w->fatal = 1;
                        break;
                }
                if (!partial)
                        continue;
                /* the processing role's worker encodes the partition's
                 * changed rows and writes its changelog records here
                 * (ds_pipeline.c serve_flush); main would produce them */
                ds_outbox_t view = ds_outbox_since(&w->ob, rows_before, evicts_before);
                if (ds_partial_out_add(&w->pout, &view, w->now_ms)) {
                        w->fatal = 1;
                        break;
                }
                int64_t n = ds_cl_write_cycle(part, ds_cl_snapshot_due(part, &r->o.part), &view, count_record, w);
                if (n < 0)
                        w->fatal = 1;
                else
                        w->cl_bytes += (uint64_t)n;
                ds_outbox_truncate(&w->ob, rows_before, evicts_before);
        }
        if (partial && !w->fatal && ds_partial_out_finish(&w->pout, w->now_ms))
                w->fatal = 1;
        w->served = q;
        /* release: publishes the filled outbox; pairs with main's acquire in wait_done() */
        atomic_store_explicit(&w->done, q, memory_order_release);
}

/* Decodes and validates record i of the pass into a (ds_step_ahead_t) and
 * starts loading its ledger slot; changes no state. */
static inline void prepare(rworker_t *w, uint64_t i, uint64_t id_shift, int64_t t_shift, ds_replay_msg_t *m,
                           ds_step_ahead_t *a) {
        ds_replay_t *r = w->r;
        if (DS_LIKELY(i + 4 < w->nmsgs)) {
                /* the record four ahead: header and the start of its value (a
                 * consumer's batch is in memory the same way) */
                __builtin_prefetch(w->msgs[i + 4]);
                __builtin_prefetch(w->msgs[i + 4] + 64);
                __builtin_prefetch(w->msgs[i + 4] + 128);
        }
        parse(w->msgs[i], m);
        a->why = ds_step_decode(r->schemas, m->value, m->value_len, &a->decl, &a->rs);
        if (DS_LIKELY(!a->why))
                a->why = ds_step_check(&a->decl, r->o.heading_digits, m->key, m->key_len, &a->contrib);
        if (DS_LIKELY(!a->why)) {
                a->contrib.id += id_shift;
                a->contrib.declared_at += t_shift;
                ds_part_prefetch(r->parts[m->partition], a->contrib.id);
        }
}

/* The end of the warm-up: says so, serves flush requests until main starts
 * the clock (the last of them writes the warm-up's changelog), then notes
 * the counters, whose growth from here on is the measured passes'. */
static void end_warmup(rworker_t *w) {
        ds_replay_t *r = w->r;
        /* release: the flag only */
        atomic_store_explicit(&w->warm, 1, memory_order_release);
        while (!atomic_load_explicit(&r->go, memory_order_acquire)) {
                poll_request(w);
                pause_us(50);
        }
        w->w_bytes = w->bytes;
        w->w_cl_bytes = w->cl_bytes;
        w->w_cl_records = w->cl_records;
        memcpy(w->w_dlq, w->dlq, sizeof(w->dlq));
        memcpy(w->w_outcome, w->outcome, sizeof(w->outcome));
}

static void *worker_main(void *arg) {
        rworker_t *w = arg;
        ds_thread_name("worker", w->id);
        ds_replay_t *r = w->r;
        const ds_part_cfg_t *cfg = &r->o.part;
        while (!atomic_load_explicit(&r->start, memory_order_acquire))
                pause_us(50);
        w->now_ms = ds_now_ms();
        const int passes = r->o.warmup + r->o.repeat;
        for (int pass = 0; pass < passes && !w->fatal; pass++) {
                if (pass == r->o.warmup && pass > 0)
                        end_warmup(w);
                /* a flush failed while it waited, or main did: the passes left are not wanted */
                if (w->fatal || atomic_load_explicit(&r->stop, memory_order_acquire))
                        break;
                if (!w->nmsgs)
                        continue;
                const uint64_t id_shift = (uint64_t)pass * ID_PASS_STRIDE;
                const int64_t t_shift = pass * r->time_shift_ms, o_shift = pass * r->offset_shift;
                if (pass > 0) {
                        /* The clock jumps by the shift between passes; that is
                         * not idle time. Were it counted, a flush asked for
                         * before the pass's first message would report these
                         * partitions idle, the merge would close windows by
                         * the other partitions' watermarks alone, and refuse
                         * these partitions' shares of them as late. */
                        w->now_ms = ds_now_ms() + t_shift;
                        for (int k = 0; k < w->nowned; k++)
                                r->parts[w->owned[k]]->active_ms = w->now_ms;
                }
                /* message i is applied while message i + 1 is already decoded (ds_step.h) */
                ds_step_ahead_t *cur = &w->ahead[0], *next = &w->ahead[1];
                ds_replay_msg_t m, mn = {0};
                prepare(w, 0, id_shift, t_shift, &m, cur);
                for (uint64_t i = 0; i < w->nmsgs; i++) {
                        if (DS_UNLIKELY(i % POLL_EVERY == 0)) {
                                w->now_ms = ds_now_ms() + t_shift; /* the wall clock, once per batch */
                                poll_request(w);
                                if (DS_UNLIKELY(w->fatal))
                                        break;
                        }
                        if (DS_LIKELY(i + 1 < w->nmsgs))
                                prepare(w, i + 1, id_shift, t_shift, &mn, next);
                        ds_part_t *part = r->parts[m.partition];
                        w->bytes += m.value_len;
                        if (DS_UNLIKELY(cur->why)) {
                                w->dlq[cur->why]++;
                        } else {
                                int outcome = ds_part_apply(part, cfg, &cur->contrib, w->now_ms, &w->old);
                                if (DS_UNLIKELY(outcome < 0)) {
                                        w->fatal = 1;
                                        break;
                                }
                                w->outcome[outcome]++;
                        }
                        part->next_offset = m.offset + 1 + o_shift;
                        part->eof = 0;
                        ds_step_ahead_t *t = cur;
                        cur = next;
                        next = t;
                        m = mn;
                }
        }
        /* what the measured passes did: the warm-up's counts come off */
        w->bytes -= w->w_bytes;
        w->cl_bytes -= w->w_cl_bytes;
        w->cl_records -= w->w_cl_records;
        for (int k = 0; k < DS_DLQ__CNT; k++)
                w->dlq[k] -= w->w_dlq[k];
        for (int k = 0; k < DS_EV__CNT; k++)
                w->outcome[k] -= w->w_outcome[k];
        for (int k = 1; k < DS_DLQ__CNT; k++)
                w->dead += w->dlq[k];
        for (int k = 0; k < DS_EV__CNT; k++)
                w->declarations += w->outcome[k];
        w->messages = w->dead + w->declarations;
        for (int i = 0; i < w->nowned; i++)
                r->parts[w->owned[i]]->eof = 1;
        w->finished_ns = ds_mono_ns();
        /* release: the flag only (counters are read after pthread_join) */
        atomic_store_explicit(&w->finished, 1, memory_order_release);
        /* the last cycle's flush: main looks for it every millisecond, so
         * looking more often here would only take CPU from a worker still
         * replaying */
        while (!atomic_load_explicit(&r->stop, memory_order_acquire)) {
                poll_request(w);
                pause_us(1000);
        }
        return NULL;
}

/* Waits until every worker has served request q. */
static void wait_done(ds_replay_t *r, uint64_t q) {
        for (int i = 0; i < r->nw; i++)
                /* acquire: pairs with the worker's release store after its flush.
                 * Every millisecond, as the pipeline's main looks (wait_seq()
                 * polls its producer for 1 ms): a flush takes 30-500 ms, and
                 * looking every 20 us cost main ~40 % of its CPU in the
                 * replay, on the cores the workers use (HOTPATH.md, fifteenth
                 * round). */
                while (atomic_load_explicit(&r->w[i]->done, memory_order_acquire) != q)
                        pause_us(1000);
}

/* SINK_PARTIAL: a batch of partial rows, dropped; its GATE TOTAL shares are
 * read back from the bytes and kept per partition. */
static int emit_batch(void *ctx, int32_t pp, const uint8_t *msg, size_t len, uint32_t rows) {
        ds_replay_t *r = ctx;
        (void)pp;
        r->partials++;
        r->partial_rows += rows;
        r->partial_bytes += len;
        if (!r->o.check_partials)
                return 0;
        ds_partial_rows_t it;
        ds_partial_t back;
        ds_dlq_reason_t why;
        int rc;
        if (ds_partial_rows_open(msg, len, r->o.heading_digits, &it))
                return -1;
        while ((rc = ds_partial_rows_next(&it, &back, &why)) == 1) {
                if (back.kind != DS_PARTIAL_ROW || ds_rowkey_dim(back.key) != DS_DIM_GATE ||
                    ds_rowkey_window(back.key) != DS_WIN_TOTAL)
                        continue;
                if (back.partition >= r->nparts || ds_rowkey_key(back.key) >= (uint32_t)r->ngates)
                        return -1;
                r->gate_total[(size_t)back.partition * (size_t)r->ngates + ds_rowkey_key(back.key)] =
                        back.m.declarations;
        }
        return rc; /* 0 at the end; -1 or 2: the encoder wrote what the decoder refuses */
}

/* SINK_PARTIAL: what the pipeline's cycle does with the workers' batches
 * and the statuses (ds_pipeline.c: cycle()), to a sink that drops the
 * bytes. */
static int emit_partials(ds_replay_t *r, ds_outbox_t *const *obs) {
        int64_t now = ds_now_ms();
        /* the batches the workers encoded, then the statuses */
        for (int i = 0; i < r->nw; i++) {
                const ds_partial_out_t *po = &r->w[i]->pout;
                for (uint32_t k = 0; k < po->n; k++) {
                        const ds_partial_msg_t *m = &po->msgs[k];
                        if (emit_batch(r, m->pp, po->bytes.p + m->off, m->len, m->rows))
                                return -1;
                }
        }
        for (int i = 0; i < r->nw; i++) {
                const ds_outbox_t *ob = obs[i];
                for (uint32_t k = 0; k < ob->nparts; k++) {
                        const ds_outpart_t *op = &ob->parts[k];
                        ds_partial_t st = {DS_PARTIAL_STATUS, op->partition, 1, op->next_offset, op->watermark_ms,
                                           op->idle, {0, 0}, {0}, NULL, 0, NULL, 0, now};
                        if (!ds_partial_status_due(&r->sent[op->partition], &st))
                                continue; /* repeats the last: the pipeline does not produce it */
                        ds_partial_status_sent(&r->sent[op->partition], &st);
                        ds_partial_retention(&st, &r->o.part.agg.win, r->o.part.agg.top_retention_ms);
                        ds_partial_batcher_status(r->batcher, &st);
                }
        }
        return ds_partial_batcher_flush(r->batcher, now) ? -1 : 0;
}

/* One cycle: every worker flushes, main merges and publishes. */
static int cycle(ds_replay_t *r, ds_outbox_t **obs) {
        uint64_t q = atomic_load_explicit(&r->req, memory_order_relaxed) + 1; /* only main writes req */
        /* release: main's reads of the outboxes (previous cycle) happen before
         * the workers reuse them; pairs with the acquire in poll_request() */
        atomic_store_explicit(&r->req, q, memory_order_release);
        wait_done(r, q);
        for (int i = 0; i < r->nw; i++) {
                if (r->w[i]->fatal)
                        return -1;
                obs[i] = &r->w[i]->ob;
        }
        if (r->o.sink == DS_REPLAY_SINK_PARTIAL)
                return emit_partials(r, obs);
        ds_publish_state_t st;
        ds_publish_state(obs, r->nw, &st);
        ds_sink_t sink = r->o.sink == DS_REPLAY_SINK_KEEP ? (ds_sink_t){sink_keep_row, sink_keep_top, r}
                                                          : (ds_sink_t){sink_null_row, sink_null_top, r};
        ds_publish_result_t pres;
        return ds_publish_cycle(r->merge, obs, r->nw, !st.restoring, st.wm_min, &sink, &pres);
}

/* Cycles every cycle_ms until every worker has finished (warm_up: or
 * replayed its warm-up passes), then once more - the final cycle, which
 * publishes what they did last. Returns the cycles run, or -1 when one
 * failed. Main looks at the workers every millisecond. */
static int64_t cycle_until_done(ds_replay_t *r, ds_outbox_t **obs, int warm_up) {
        int64_t next = ds_mono_ms() + r->o.cycle_ms, cycles = 0;
        for (;;) {
                int all = 1;
                for (int i = 0; i < r->nw; i++)
                        all &= atomic_load_explicit(&r->w[i]->finished, memory_order_acquire) |
                               (warm_up && atomic_load_explicit(&r->w[i]->warm, memory_order_acquire));
                int64_t now = ds_mono_ms();
                if (all || now >= next) {
                        cycles++;
                        if (cycle(r, obs))
                                return -1;
                        if (all)
                                return cycles;
                        next = ds_cycle_next(now, ds_mono_ms(), r->o.cycle_ms);
                        continue;
                }
                pause_us(1000);
        }
}

static double thread_cpu_now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_now(void) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
               ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

int ds_replay_run(ds_replay_t *r, ds_replay_result_t *res, char *errstr, size_t sz) {
        memset(res, 0, sizeof(*res));
        if (r->ran)
                return ds_err(errstr, sz, "a replay runs once");
        r->ran = 1;
        ds_outbox_t **obs = calloc((size_t)r->nw, sizeof(*obs));
        if (!obs)
                return ds_err(errstr, sz, "out of memory");
        int started = 0, rc = 0;
        for (; started < r->nw; started++)
                if (pthread_create(&r->w[started]->th, NULL, worker_main, r->w[started])) {
                        rc = ds_err(errstr, sz, "cannot start worker thread %d: %s", started, strerror(errno));
                        break;
                }
        if (!rc && r->o.warmup > 0) {
                /* release: the flag only */
                atomic_store_explicit(&r->start, 1, memory_order_release);
                if (cycle_until_done(r, obs, 1) < 0)
                        rc = ds_err(errstr, sz, "out of memory (or the sink failed) during the warm-up");
                r->rows_out = r->partials = r->partial_rows = r->partial_bytes = 0;
        }
        double cpu0 = cpu_now(), main0 = thread_cpu_now();
        int64_t t0 = ds_mono_ns();
        /* release: the flags only */
        atomic_store_explicit(&r->start, 1, memory_order_release);
        atomic_store_explicit(&r->go, 1, memory_order_release);
        if (!rc) {
                int64_t cycles = cycle_until_done(r, obs, 0);
                if (cycles < 0)
                        rc = ds_err(errstr, sz, "out of memory (or the sink failed) during the replay");
                else
                        res->cycles = (uint64_t)cycles;
        }
        int64_t t1 = ds_mono_ns();
        double cpu1 = cpu_now(), main1 = thread_cpu_now();
        atomic_store_explicit(&r->stop, 1, memory_order_release);
        for (int i = 0; i < started; i++)
                pthread_join(r->w[i]->th, NULL);
        free(obs);
        for (int i = 0; i < r->nw; i++) {
                rworker_t *w = r->w[i];
                res->messages += w->messages;
                res->declarations += w->declarations;
                res->dead_lettered += w->dead;
                res->bytes += w->bytes;
                res->changelog_bytes += w->cl_bytes;
                res->changelog_records += w->cl_records;
                for (int k = 0; k < DS_DLQ__CNT; k++)
                        res->dlq[k] += w->dlq[k];
                for (int k = 0; k < DS_EV__CNT; k++)
                        res->outcome[k] += w->outcome[k];
                if (w->fatal && !rc)
                        rc = ds_err(errstr, sz, "out of memory during the replay");
        }
        res->threads = r->nw;
        res->partitions = r->npresent;
        res->seconds = (double)(t1 - t0) / 1e9;
        res->cpu_seconds = cpu1 - cpu0;
        res->main_cpu_seconds = main1 - main0;
        int64_t last = t0; /* (a worker that failed during the warm-up finished before the clock started) */
        for (int i = 0; i < started; i++)
                if (r->w[i]->finished_ns > last)
                        last = r->w[i]->finished_ns;
        res->tail_seconds = last < t1 ? (double)(t1 - last) / 1e9 : 0;
        res->rows_out = r->rows_out;
        res->partials = r->partials;
        res->partial_rows = r->partial_rows;
        res->partial_bytes = r->partial_bytes;
        res->partial_total_declarations = r->o.check_partials ? 0 : -1;
        if (r->gate_total) /* --check-partials */
                for (size_t i = 0; i < (size_t)r->nparts * (size_t)r->ngates; i++)
                        res->partial_total_declarations += r->gate_total[i];
        for (int32_t p = 0; p < r->nparts; p++) {
                ds_part_t *part = r->parts[p];
                if (!part)
                        continue;
                res->ledger_bytes += ds_ledger_memory(part->ledger);
                res->state_bytes += ds_ledger_memory(part->ledger) + ds_agg_memory(part->agg);
                res->ledger_entries += ds_ledger_count(part->ledger);
                res->rows += ds_rows_count(ds_agg_rows(part->agg));
        }
        return rc;
}

/* ---- kept totals --------------------------------------------------------- */

typedef struct keyed {
        char key[96];
        const ds_row_t *r;
} keyed_t;

static int keyed_cmp(const void *a, const void *b) {
        return strcmp(((const keyed_t *)a)->key, ((const keyed_t *)b)->key);
}

static int str_cmp(const void *a, const void *b) {
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int ds_replay_write_totals(const ds_replay_t *r, FILE *out, char *errstr, size_t sz) {
        if (!r->keep)
                return ds_err(errstr, sz, "the replay kept no totals");
        uint32_t n = ds_rows_count(r->keep), k = 0, cur = 0;
        keyed_t *v = calloc(n ? n : 1, sizeof(*v));
        if (!v)
                return ds_err(errstr, sz, "out of memory");
        ds_row_t *row;
        while ((row = ds_rows_iter(r->keep, &cur)) && k < n) {
                ds_total_key(row->key, r->o.heading_digits, v[k].key, sizeof(v[k].key));
                v[k++].r = row;
        }
        qsort(v, k, sizeof(*v), keyed_cmp);
        int bad = 0;
        for (uint32_t i = 0; i < k && !bad; i++) {
                const ds_row_t *x = v[i].r;
                const ds_measures_t *m = &x->m;
                const kept_distinct_t *d = x->aux;
                char text[32];
                ds_row_keytext(x->key, r->o.heading_digits, text, sizeof(text));
                bad = fprintf(out,
                              "{\"key\":\"%s\",\"dimension\":\"%s\",\"key_text\":\"%s\",\"window\":\"%s\","
                              "\"window_start\":%" PRId64 ",\"declarations\":%" PRId64 ",\"items\":%" PRId64
                              ",\"customs_value_usd_cents\":%" PRId64 ",\"gross_weight_g\":%" PRId64
                              ",\"export_value_usd_cents\":%" PRId64 ",\"import_value_usd_cents\":%" PRId64
                              ",\"transit_value_usd_cents\":%" PRId64 ",\"border_resident_value_usd_cents\":%" PRId64
                              ",\"distinct_declarants\":%" PRId64 ",\"distinct_vehicles\":%" PRId64 "}\n",
                              v[i].key, ds_dim_name(ds_rowkey_dim(x->key)), text,
                              ds_window_name(ds_rowkey_window(x->key)), x->key.start, m->declarations, m->items,
                              m->value, m->weight, m->flow_value[0], m->flow_value[1], m->flow_value[2],
                              m->flow_value[3], d ? d->declarants : 0, d ? d->vehicles : 0) < 0;
        }
        free(v);
        const char *key;
        json_t *list;
        /* top lists, sorted by key */
        size_t nt = json_object_size(r->tops), i = 0;
        const char **keys = calloc(nt ? nt : 1, sizeof(*keys));
        if (!keys)
                return ds_err(errstr, sz, "out of memory");
        json_object_foreach(r->tops, key, list) keys[i++] = key;
        qsort(keys, nt, sizeof(*keys), str_cmp);
        for (i = 0; i < nt && !bad; i++) {
                json_t *line = json_pack("{sssO}", "top", keys[i], "headings", json_object_get(r->tops, keys[i]));
                char *s = line ? json_dumps(line, JSON_COMPACT) : NULL;
                bad = !s || fprintf(out, "%s\n", s) < 0;
                free(s);
                json_decref(line);
        }
        free(keys);
        if (bad || fflush(out))
                return ds_err(errstr, sz, "cannot write the totals: %s", strerror(errno));
        return 0;
}

void ds_replay_gate_totals(const ds_replay_t *r, ds_replay_gate_fn fn, void *ctx) {
        if (!r->keep)
                return;
        for (int g = 0; g < ds_gate_count(); g++) {
                ds_row_t *row = ds_rows_find(r->keep, ds_rowkey(DS_DIM_GATE, DS_WIN_TOTAL, (uint32_t)g, 0));
                if (row)
                        fn(ctx, ds_gate(g)->code, &row->m);
        }
}
