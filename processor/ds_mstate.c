/*
 * ds_mstate.c - the merge role's snapshots (see ds_mstate.h).
 */
#include "ds_mstate.h"
#include "ds_common.h"
#include "ds_kafka.h"
#include "ds_log.h"
#include "ds_validate.h"
#include "ds_wire.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define VERSION         1
#define T_CHUNK         1
#define T_END           2
#define HEAD_LEN        12 /* "DM", version, type, id */
#define READ_TIMEOUT_MS 30000
/* ENDs looked at before giving up on a partition whose snapshots are all
 * incomplete (each a writer that stopped part-way). */
#define MAX_TRIES 16
/* Bounds on what an END may announce (a hostile or corrupt record must not
 * make the reader allocate without limit): 16 M chunks, 1 TiB. */
#define MAX_CHUNKS (1 << 24)
#define MAX_LEN    ((int64_t)1 << 40)

typedef struct ends {
        int32_t partition;
        int64_t lo, hi;
} ends_t;

struct ds_mstate {
        rd_kafka_t *rk;
        char *topic;
        ends_t *ends;
        int nends;
};

static void put_head(ds_buf_t *b, int type, uint64_t id) {
        uint8_t h[4] = {'D', 'M', VERSION, (uint8_t)type};
        ds_buf_put(b, h, 4);
        ds_buf_put_u64(b, id);
}

int ds_mstate_write(uint64_t id, const uint8_t *p, size_t len, int64_t covered, size_t chunk_bytes,
                    ds_mstate_emit_fn emit, void *ctx) {
        ds_buf_t b = {0};
        int64_t n = 0;
        int rc = 0;
        for (size_t off = 0; off < len && !rc; off += chunk_bytes, n++) {
                size_t k = len - off < chunk_bytes ? len - off : chunk_bytes;
                b.len = 0;
                put_head(&b, T_CHUNK, id);
                ds_avro_put_long(&b, n);
                ds_buf_put(&b, p + off, k);
                rc = emit(ctx, b.p, b.len);
        }
        if (!rc) {
                b.len = 0;
                put_head(&b, T_END, id);
                ds_avro_put_long(&b, n);
                ds_avro_put_long(&b, (int64_t)len);
                ds_buf_put_u64(&b, ds_hash_bytes(p, len));
                ds_avro_put_long(&b, covered);
                rc = emit(ctx, b.p, b.len);
        }
        ds_buf_free(&b);
        return rc ? -1 : 0;
}

/* ---- reading ------------------------------------------------------------- */

ds_mstate_t *ds_mstate_new(const char *topic, rd_kafka_conf_t *conf, char *errstr, size_t sz) {
        ds_mstate_t *s = calloc(1, sizeof(*s));
        if (!s || !(s->topic = strdup(topic))) {
                free(s);
                rd_kafka_conf_destroy(conf);
                ds_err(errstr, sz, "out of memory");
                return NULL;
        }
        if (!(s->rk = ds_kafka_reader_new(conf, errstr, sz))) {
                ds_mstate_destroy(s);
                return NULL;
        }
        return s;
}

void ds_mstate_destroy(ds_mstate_t *s) {
        if (!s)
                return;
        if (s->rk) {
                rd_kafka_consumer_close(s->rk);
                rd_kafka_destroy(s->rk);
        }
        free(s->topic);
        free(s->ends);
        free(s);
}

int ds_mstate_prepare(ds_mstate_t *s, const int32_t *partitions, int n, char *errstr, size_t sz) {
        free(s->ends);
        s->ends = NULL;
        s->nends = 0;
        if (n <= 0)
                return 0;
        int64_t *lo = malloc((size_t)n * sizeof(*lo)), *hi = malloc((size_t)n * sizeof(*hi));
        ends_t *e = malloc((size_t)n * sizeof(*e));
        int32_t failed = -1;
        rd_kafka_resp_err_t err =
                lo && hi && e ? ds_kafka_watermarks_many(s->rk, s->topic, partitions, n, lo, hi, 10000, &failed)
                              : RD_KAFKA_RESP_ERR__FAIL;
        if (!err) {
                for (int i = 0; i < n; i++)
                        e[i] = (ends_t){partitions[i], lo[i], hi[i]};
                s->ends = e;
                s->nends = n;
        } else {
                free(e);
                ds_err(errstr, sz, "cannot read the ends of %s [%d]: %s", s->topic, failed, rd_kafka_err2str(err));
        }
        free(lo);
        free(hi);
        return err ? -1 : 0;
}

/* A record's head: its type and id, the reader past them; 0 if it is not
 * one of ours (skipped). */
static int read_head(ds_rd_t *r, uint64_t *id) {
        if (r->end - r->p < HEAD_LEN || r->p[0] != 'D' || r->p[1] != 'M' || r->p[2] != VERSION)
                return 0;
        int type = r->p[3];
        r->p += 4;
        *id = ds_rd_u64(r);
        return type;
}

typedef struct end {
        int64_t offset; /* -1: none found */
        uint64_t id;
        int64_t n, len, covered;
        uint64_t hash;
} end_t;

static int find_end(void *ctx, int64_t offset, const uint8_t *p, size_t len) {
        end_t *e = ctx;
        ds_rd_t r = {p, p + len, 0};
        uint64_t id;
        if (read_head(&r, &id) != T_END)
                return 0;
        end_t f = {offset, id, 0, 0, 0, 0};
        f.n = ds_rd_long(&r);
        f.len = ds_rd_long(&r);
        f.hash = ds_rd_u64(&r);
        f.covered = ds_rd_long(&r);
        if (r.bad || f.n < 1 || f.n > MAX_CHUNKS || f.len < f.n || f.len > MAX_LEN || f.covered < 0) {
                ds_log(DS_LOG_WARN, "merge", "unreadable merge snapshot end skipped", "offset=%" PRId64, offset);
                return 0;
        }
        if (offset > e->offset)
                *e = f;
        return 0;
}

typedef struct chunks {
        const end_t *end;
        uint8_t **p; /* chunk i's bytes, NULL until read */
        size_t *len;
        int64_t have;
} chunks_t;

static int take_chunk(void *ctx, int64_t offset, const uint8_t *p, size_t len) {
        (void)offset;
        chunks_t *c = ctx;
        ds_rd_t r = {p, p + len, 0};
        uint64_t id;
        if (read_head(&r, &id) != T_CHUNK || id != c->end->id)
                return 0;
        int64_t i = ds_rd_long(&r);
        if (r.bad || i < 0 || i >= c->end->n || c->p[i])
                return 0;
        size_t k = (size_t)(r.end - r.p);
        if (!(c->p[i] = malloc(k ? k : 1)))
                return -1;
        memcpy(c->p[i], r.p, k);
        c->len[i] = k;
        c->have++;
        return 0;
}

/* The snapshot END e announces, from the chunks before it (at offsets in
 * [lo, e->offset)): 1 with *out, 0 if incomplete or corrupt, -1 on error. */
static int gather(ds_mstate_t *s, int32_t part, int64_t lo, const end_t *e, uint8_t **out, char *errstr, size_t sz) {
        if (e->n > e->offset - lo) /* its chunks cannot all be in the log before it */
                return 0;
        chunks_t c = {e, calloc((size_t)e->n, sizeof(uint8_t *)), calloc((size_t)e->n, sizeof(size_t)), 0};
        int rc = 0;
        *errstr = 0;
        if (!c.p || !c.len) {
                rc = ds_err(errstr, sz, "out of memory reading a merge snapshot of %" PRId64 " bytes", e->len);
        } else {
                /* its chunks just before it; further back only if another
                 * writer's records came in between */
                int64_t to = e->offset, w = e->n;
                while (c.have < e->n && to > lo && !rc) {
                        int64_t from = to - w > lo ? to - w : lo;
                        rc = ds_kafka_read_range(s->rk, s->topic, part, from, to, 0, READ_TIMEOUT_MS, "merge",
                                                 take_chunk, &c, errstr, sz);
                        to = from;
                        w *= 2;
                }
        }
        if (rc < 0 && !*errstr) /* take_chunk() ran out of memory */
                ds_err(errstr, sz, "out of memory reading a merge snapshot of %" PRId64 " bytes", e->len);
        if (!rc && c.have == e->n) {
                size_t total = 0;
                for (int64_t i = 0; i < e->n; i++)
                        total += c.len[i];
                uint8_t *p = total == (size_t)e->len ? malloc(total) : NULL;
                if (p) {
                        size_t o = 0;
                        for (int64_t i = 0; i < e->n; i++) {
                                memcpy(p + o, c.p[i], c.len[i]);
                                o += c.len[i];
                        }
                        if (ds_hash_bytes(p, total) == e->hash) {
                                *out = p;
                                rc = 1;
                        } else {
                                free(p);
                        }
                } else if (total == (size_t)e->len) {
                        rc = ds_err(errstr, sz, "out of memory reading a merge snapshot of %" PRId64 " bytes", e->len);
                }
        }
        if (c.p)
                for (int64_t i = 0; i < e->n; i++)
                        free(c.p[i]);
        free(c.p);
        free(c.len);
        return rc;
}

int ds_mstate_latest(ds_mstate_t *s, int32_t part, int64_t min_covered, int64_t max_covered, uint8_t **out, size_t *len,
                     int64_t *covered, char *errstr, size_t sz) {
        int64_t lo = -1, hi = -1;
        for (int i = 0; i < s->nends; i++)
                if (s->ends[i].partition == part) {
                        lo = s->ends[i].lo;
                        hi = s->ends[i].hi;
                        s->ends[i].partition = -1; /* once */
                }
        if (lo < 0) {
                rd_kafka_resp_err_t err = ds_kafka_watermarks(s->rk, s->topic, part, &lo, &hi, 10000);
                if (err)
                        return ds_err(errstr, sz, "cannot read the ends of %s [%d]: %s", s->topic, part,
                                      rd_kafka_err2str(err));
        }
        int64_t limit = hi; /* ENDs are looked for below it */
        for (int tries = 0; tries < MAX_TRIES && limit > lo; tries++) {
                /* the last END: usually the log's last record */
                end_t e = {-1, 0, 0, 0, 0, 0};
                int64_t to = limit, w = 1;
                while (e.offset < 0 && to > lo) {
                        int64_t from = to - w > lo ? to - w : lo;
                        if (ds_kafka_read_range(s->rk, s->topic, part, from, to, 0, READ_TIMEOUT_MS, "merge", find_end,
                                                &e, errstr, sz))
                                return -1;
                        to = from;
                        w *= 8;
                }
                if (e.offset < 0)
                        return 0;
                if (e.covered < min_covered || e.covered > max_covered) {
                        ds_log(DS_LOG_WARN, "merge",
                               "merge snapshot skipped for the one before it: the partial partition does not hold "
                               "its offset and what follows",
                               "topic=%s partition=%d end_offset=%" PRId64 " snapshot_offset=%" PRId64
                               " partial_from=%" PRId64 " partial_to=%" PRId64,
                               s->topic, part, e.offset, e.covered, min_covered, max_covered);
                        limit = e.offset;
                        continue;
                }
                int rc = gather(s, part, lo, &e, out, errstr, sz);
                if (rc < 0)
                        return -1;
                if (rc) {
                        *len = (size_t)e.len;
                        *covered = e.covered;
                        return 1;
                }
                ds_log(DS_LOG_WARN, "merge", "incomplete or corrupt merge snapshot skipped for the one before it",
                       "topic=%s partition=%d end_offset=%" PRId64 " chunks=%" PRId64, s->topic, part, e.offset, e.n);
                limit = e.offset;
        }
        return 0;
}
