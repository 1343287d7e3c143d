/*
 * ds_live.c - the published totals, read back for the HTTP API (see
 * ds_live.h).
 *
 * Rows live in one array; an open-addressing index (row number + 1, 0 =
 * empty) finds a row by (dimension, window, start, key). Eviction compacts
 * the array and rebuilds the index, once per new MINUTE window at most.
 */
#include "ds_live.h"
#include "ds_codec_avro.h"
#include "ds_common.h"
#include "ds_kafka.h"
#include "ds_kstats.h"
#include "ds_log.h"
#include "ds_schemas.h"
#include "ds_signal.h"
#include "ds_wire.h"

#include <avro.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IFACES     16
#define MAX_TOPS       20000
#define MINUTE_KEEP_MS (2 * 3600000LL)
#define HOUR_KEEP_MS   (8 * 86400000LL)
/* A MINUTE window starting later than the wall clock plus this does not
 * move the reader's "now" (latest_minute): one declaration dated days ahead
 * (a clock set wrong at a customs office) would otherwise evict every row
 * relative to it and empty the dashboard - again after every restart, since
 * the output topic keeps its row. The row itself is kept and served. */
#define FUTURE_SLACK_MS 3600000LL

const char *const ds_live_measure_names[DS_LIVE_MEASURES] = {"declarations",
                                                             "items",
                                                             "customs_value_usd_cents",
                                                             "gross_weight_g",
                                                             "export_value_usd_cents",
                                                             "import_value_usd_cents",
                                                             "transit_value_usd_cents",
                                                             "border_resident_value_usd_cents"};

struct ds_live {
        const ds_config_t *cfg;
        ds_schemas_t *schemas;
        avro_value_iface_t *ifaces[MAX_IFACES];
        uint32_t iface_ids[MAX_IFACES];
        int nifaces;

        pthread_rwlock_t lock; /* guards everything below */
        ds_live_row_t *rows;
        uint32_t nrows, caprows;
        uint32_t *idx;   /* row + 1; 0 empty */
        uint32_t idxcap; /* power of two */
        ds_live_top_t *tops;
        uint32_t ntops;
        ds_live_stats_t st;
        int64_t evicted_at_minute;

        rd_kafka_t *rk;
        pthread_t thread;
        int started;
        _Atomic int stop;
        int64_t *ends; /* per assigned partition: its end when assigned */
        int nends;
        int32_t nout; /* partitions of output.topic (the first nout entries of ends) */
};

/* ---- the row table (writer under the write lock) ---------------------------- */

static uint64_t row_hash(int dim, int win, int64_t start, const char *key) {
        uint64_t h = 1469598103934665603ULL ^ ((uint64_t)dim << 8 | (uint64_t)win);
        h = (h ^ (uint64_t)start) * 1099511628211ULL;
        for (const char *p = key; *p; p++)
                h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        h ^= h >> 29;
        return h * 0x9E3779B97F4A7C15ULL;
}

static int idx_rebuild(ds_live_t *lv, uint32_t cap) {
        uint32_t *idx = calloc(cap, sizeof(*idx));
        if (!idx)
                return -1;
        for (uint32_t i = 0; i < lv->nrows; i++) {
                const ds_live_row_t *r = &lv->rows[i];
                uint32_t s = (uint32_t)row_hash(r->dim, r->win, r->start, r->key) & (cap - 1);
                while (idx[s])
                        s = (s + 1) & (cap - 1);
                idx[s] = i + 1;
        }
        free(lv->idx);
        lv->idx = idx;
        lv->idxcap = cap;
        return 0;
}

static ds_live_row_t *row_get(ds_live_t *lv, int dim, int win, int64_t start, const char *key) {
        if (lv->idxcap) {
                uint32_t s = (uint32_t)row_hash(dim, win, start, key) & (lv->idxcap - 1);
                for (; lv->idx[s]; s = (s + 1) & (lv->idxcap - 1)) {
                        ds_live_row_t *r = &lv->rows[lv->idx[s] - 1];
                        if (r->dim == dim && r->win == win && r->start == start && !strcmp(r->key, key))
                                return r;
                }
        }
        if (lv->nrows >= (uint32_t)lv->cfg->http_max_rows) {
                lv->st.dropped++;
                return NULL;
        }
        if (lv->nrows == lv->caprows) {
                uint32_t cap = lv->caprows ? lv->caprows * 2 : 1024;
                ds_live_row_t *nr = realloc(lv->rows, (size_t)cap * sizeof(*nr));
                if (!nr) {
                        lv->st.dropped++;
                        return NULL;
                }
                lv->rows = nr;
                lv->caprows = cap;
        }
        if ((uint64_t)(lv->nrows + 1) * 2 > lv->idxcap) {
                uint32_t cap = lv->idxcap ? lv->idxcap * 2 : 2048;
                if (idx_rebuild(lv, cap)) {
                        lv->st.dropped++;
                        return NULL;
                }
        }
        ds_live_row_t *r = &lv->rows[lv->nrows];
        memset(r, 0, sizeof(*r));
        r->dim = (uint8_t)dim;
        r->win = (uint8_t)win;
        r->start = start;
        snprintf(r->key, sizeof(r->key), "%s", key);
        uint32_t s = (uint32_t)row_hash(dim, win, start, key) & (lv->idxcap - 1);
        while (lv->idx[s])
                s = (s + 1) & (lv->idxcap - 1);
        lv->idx[s] = ++lv->nrows;
        return r;
}

/* Drops rows of windows long closed, relative to the newest minute seen. */
static void evict(ds_live_t *lv) {
        int64_t now = lv->st.latest_minute;
        if (now == INT64_MIN || now == lv->evicted_at_minute)
                return;
        lv->evicted_at_minute = now;
        int64_t keep[DS_WIN__CNT] = {INT64_MIN, now - MINUTE_KEEP_MS, now - HOUR_KEEP_MS,
                                     now - lv->cfg->day_retention_ms - 86400000LL};
        uint32_t o = 0;
        for (uint32_t i = 0; i < lv->nrows; i++) {
                const ds_live_row_t *r = &lv->rows[i];
                if (r->win != DS_WIN_TOTAL && r->start < keep[r->win]) {
                        lv->st.evicted++;
                        continue;
                }
                if (o != i)
                        lv->rows[o] = *r;
                o++;
        }
        if (o != lv->nrows) {
                lv->nrows = o;
                idx_rebuild(lv, lv->idxcap); /* same size: cannot need more */
        }
        int64_t top_keep = now - lv->cfg->top_retention_ms - 86400000LL;
        o = 0;
        for (uint32_t i = 0; i < lv->ntops; i++)
                if (lv->tops[i].day >= top_keep)
                        lv->tops[o++] = lv->tops[i];
        lv->ntops = o;
}

/* ---- decoding -------------------------------------------------------------------- */

static avro_value_iface_t *iface_for(ds_live_t *lv, uint32_t id) {
        for (int i = 0; i < lv->nifaces; i++)
                if (lv->iface_ids[i] == id)
                        return lv->ifaces[i];
        avro_schema_t s = ds_schemas_get(lv->schemas, id);
        if (!s || lv->nifaces == MAX_IFACES)
                return NULL;
        ds_avro_lock(); /* (after ds_schemas_get: the Avro lock is a leaf) */
        avro_value_iface_t *ifc = avro_generic_class_from_schema(s);
        ds_avro_unlock();
        if (!ifc)
                return NULL;
        lv->iface_ids[lv->nifaces] = id;
        lv->ifaces[lv->nifaces++] = ifc;
        return ifc;
}

static int get_long(avro_value_t *v, const char *name, int64_t *out) {
        avro_value_t f;
        int32_t i;
        if (avro_value_get_by_name(v, name, &f, NULL))
                return -1;
        if (!avro_value_get_long(&f, out))
                return 0;
        if (!avro_value_get_int(&f, &i)) {
                *out = i;
                return 0;
        }
        return -1;
}

static int get_str(avro_value_t *v, const char *name, char *buf, size_t size) {
        avro_value_t f;
        const char *s;
        size_t n; /* includes the NUL */
        if (avro_value_get_by_name(v, name, &f, NULL) || avro_value_get_string(&f, &s, &n) || n == 0 || n > size)
                return -1;
        memcpy(buf, s, n);
        buf[n - 1] = '\0';
        return 0;
}

/* A Total row as read from its Avro value, before it is stored. */
typedef struct total_in {
        int dim, win;
        char key[DS_LIVE_KEY_MAX];
        int64_t start, m[DS_LIVE_MEASURES], upd, dd, dv;
} total_in_t;

/* Avro C only (under ds_avro_lock): the row's fields into t. */
static int read_total(avro_value_t *v, total_in_t *t) {
        avro_value_t f;
        t->dd = t->dv = -1;
        if (avro_value_get_by_name(v, "dimension", &f, NULL) || avro_value_get_enum(&f, &t->dim) ||
            avro_value_get_by_name(v, "window", &f, NULL) || avro_value_get_enum(&f, &t->win) ||
            get_str(v, "key", t->key, sizeof(t->key)) || get_long(v, "window_start", &t->start) ||
            get_long(v, "updated_at", &t->upd))
                return -1;
        if (t->dim < 0 || t->dim > 1 || t->win < 0 || t->win >= DS_WIN__CNT)
                return -1;
        for (int i = 0; i < DS_LIVE_MEASURES; i++)
                if (get_long(v, ds_live_measure_names[i], &t->m[i]))
                        return -1;
        get_long(v, "distinct_declarants", &t->dd); /* v2 only */
        get_long(v, "distinct_vehicles", &t->dv);
        if (t->win == DS_WIN_TOTAL)
                t->start = 0;
        return 0;
}

static void store_total(ds_live_t *lv, const total_in_t *t) {
        pthread_rwlock_wrlock(&lv->lock);
        ds_live_row_t *r = row_get(lv, t->dim, t->win, t->start, t->key);
        if (r) {
                memcpy(r->m, t->m, sizeof(t->m));
                r->distinct_declarants = t->dd;
                r->distinct_vehicles = t->dv;
                r->updated_at = t->upd;
        }
        if (t->win == DS_WIN_MINUTE && (lv->st.latest_minute == INT64_MIN || t->start > lv->st.latest_minute) &&
            t->start <= ds_now_ms() + FUTURE_SLACK_MS) {
                lv->st.latest_minute = t->start;
                evict(lv);
        }
        if (lv->st.latest_update == INT64_MIN || t->upd > lv->st.latest_update)
                lv->st.latest_update = t->upd;
        lv->st.rows = lv->nrows;
        pthread_rwlock_unlock(&lv->lock);
}

/* Avro C only (under ds_avro_lock): the list's fields into t. */
static int read_top(avro_value_t *v, ds_live_top_t *t) {
        memset(t, 0, sizeof(*t));
        avro_value_t arr, item;
        size_t n;
        if (get_str(v, "gate", t->gate, sizeof(t->gate)) || get_long(v, "window_start", &t->day) ||
            get_long(v, "updated_at", &t->updated_at) || avro_value_get_by_name(v, "headings", &arr, NULL) ||
            avro_value_get_size(&arr, &n))
                return -1;
        for (size_t i = 0; i < n && t->n < DS_LIVE_TOP_N; i++) {
                if (avro_value_get_by_index(&arr, i, &item, NULL))
                        return -1;
                ds_live_heading_t *h = &t->h[t->n];
                int64_t rank;
                if (get_long(&item, "rank", &rank) || get_str(&item, "heading", h->heading, sizeof(h->heading)) ||
                    get_long(&item, "declarations", &h->declarations) || get_long(&item, "items", &h->items) ||
                    get_long(&item, "customs_value_usd_cents", &h->customs_value_usd_cents) ||
                    get_long(&item, "gross_weight_g", &h->gross_weight_g))
                        return -1;
                h->rank = (int)rank;
                t->n++;
        }
        return 0;
}

static void store_top(ds_live_t *lv, const ds_live_top_t *t) {
        pthread_rwlock_wrlock(&lv->lock);
        ds_live_top_t *slot = NULL;
        for (uint32_t i = 0; i < lv->ntops && !slot; i++)
                if (lv->tops[i].day == t->day && !strcmp(lv->tops[i].gate, t->gate))
                        slot = &lv->tops[i];
        if (!slot && lv->ntops < MAX_TOPS)
                slot = &lv->tops[lv->ntops++];
        if (slot)
                *slot = *t;
        else
                lv->st.dropped++;
        lv->st.tops = lv->ntops;
        pthread_rwlock_unlock(&lv->lock);
}

/* Decodes under ds_avro_lock (Avro C's error buffers are process-wide:
 * ds_codec_avro.h), then stores under the table's lock - never both. */
void ds_live_ingest(ds_live_t *lv, const void *value, size_t len) {
        uint32_t id;
        const uint8_t *body;
        size_t blen;
        avro_value_iface_t *ifc;
        enum { NONE, TOTAL, TOP } kind = NONE;
        total_in_t tot;
        ds_live_top_t top;
        if (!ds_wire_parse(value, len, &id, &body, &blen) && (ifc = iface_for(lv, id))) {
                avro_value_t v;
                ds_avro_lock();
                if (!avro_generic_value_new(ifc, &v)) {
                        avro_reader_t r = avro_reader_memory((const char *)body, (int64_t)blen);
                        if (!avro_value_read(r, &v)) {
                                const char *name = avro_schema_name(avro_value_get_schema(&v));
                                if (name && !strcmp(name, "Total"))
                                        kind = read_total(&v, &tot) ? NONE : TOTAL;
                                else if (name && !strcmp(name, "TopHeadings"))
                                        kind = read_top(&v, &top) ? NONE : TOP;
                        }
                        avro_reader_free(r);
                        avro_value_decref(&v);
                }
                ds_avro_unlock();
        }
        if (kind == TOTAL)
                store_total(lv, &tot);
        else if (kind == TOP)
                store_top(lv, &top);
        pthread_rwlock_wrlock(&lv->lock);
        lv->st.messages++;
        lv->st.undecodable += kind == NONE;
        pthread_rwlock_unlock(&lv->lock);
}

/* ---- queries ------------------------------------------------------------------------ */

static int row_cmp(const void *a, const void *b) {
        const ds_live_row_t *x = a, *y = b;
        if (x->start != y->start)
                return x->start < y->start ? -1 : 1;
        return strcmp(x->key, y->key);
}

size_t ds_live_rows(ds_live_t *lv, int dim, int win, int64_t from, int64_t to, const char *key, size_t limit,
                    ds_live_row_t **out, int *truncated) {
        *out = NULL;
        *truncated = 0;
        pthread_rwlock_rdlock(&lv->lock);
        size_t n = 0, cap = 0;
        ds_live_row_t *v = NULL;
        for (uint32_t i = 0; i < lv->nrows; i++) {
                const ds_live_row_t *r = &lv->rows[i];
                if (r->dim != dim || r->win != win || (key && strcmp(r->key, key)))
                        continue;
                if (win != DS_WIN_TOTAL && (r->start < from || r->start > to))
                        continue;
                if (n == cap) {
                        size_t nc = cap ? cap * 2 : 64;
                        ds_live_row_t *nv = realloc(v, nc * sizeof(*nv));
                        if (!nv)
                                break;
                        v = nv;
                        cap = nc;
                }
                v[n++] = *r;
        }
        pthread_rwlock_unlock(&lv->lock);
        if (n > 1)
                qsort(v, n, sizeof(*v), row_cmp);
        if (n > limit) {
                /* keep the newest windows */
                memmove(v, v + (n - limit), limit * sizeof(*v));
                n = limit;
                *truncated = 1;
        }
        *out = v;
        return n;
}

int ds_live_top(ds_live_t *lv, const char *gate, int64_t day, ds_live_top_t *out) {
        int found = -1;
        pthread_rwlock_rdlock(&lv->lock);
        for (uint32_t i = 0; i < lv->ntops; i++) {
                const ds_live_top_t *t = &lv->tops[i];
                if (strcmp(t->gate, gate))
                        continue;
                if (day == INT64_MIN ? (found < 0 || t->day > out->day) : t->day == day) {
                        *out = *t;
                        found = 0;
                }
        }
        pthread_rwlock_unlock(&lv->lock);
        return found;
}

void ds_live_stats(ds_live_t *lv, ds_live_stats_t *st) {
        pthread_rwlock_rdlock(&lv->lock);
        *st = lv->st;
        pthread_rwlock_unlock(&lv->lock);
}

/* ---- the thread ------------------------------------------------------------------------- */

static void *live_main(void *arg) {
        ds_live_t *lv = arg;
        ds_thread_name("live", -1);
        while (!atomic_load_explicit(&lv->stop, memory_order_relaxed)) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(lv->rk, 100);
                if (!m)
                        continue;
                if (!m->err) {
                        ds_live_ingest(lv, m->payload, m->len);
                } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        ds_log(DS_LOG_WARN, "http", "reading the published totals", "error=\"%s\"",
                               rd_kafka_message_errstr(m));
                }
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF || !m->err) {
                        /* caught up once every partition has reached its end as of assignment */
                        int32_t i = (m->rkt && !strcmp(rd_kafka_topic_name(m->rkt), lv->cfg->output_topic))
                                            ? m->partition
                                            : lv->nout + m->partition;
                        if (i >= 0 && i < lv->nends && m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                lv->ends[i] = -1;
                        int all = 1;
                        for (int k = 0; k < lv->nends && all; k++)
                                all = lv->ends[k] < 0;
                        if (all) {
                                pthread_rwlock_wrlock(&lv->lock);
                                lv->st.caught_up = 1;
                                pthread_rwlock_unlock(&lv->lock);
                        }
                }
                rd_kafka_message_destroy(m);
        }
        return NULL;
}

static ds_live_t *live_new(const ds_config_t *cfg, char *errstr, size_t sz) {
        ds_live_t *lv = calloc(1, sizeof(*lv));
        if (!lv) {
                ds_err(errstr, sz, "out of memory");
                return NULL;
        }
        lv->cfg = cfg;
        pthread_rwlock_init(&lv->lock, NULL);
        lv->st.latest_minute = INT64_MIN;
        lv->st.latest_update = INT64_MIN;
        lv->evicted_at_minute = INT64_MIN;
        lv->tops = calloc(MAX_TOPS, sizeof(*lv->tops));
        lv->schemas = ds_schemas_load(cfg->schema_dir, errstr, sz);
        if (!lv->tops || !lv->schemas) {
                if (!lv->tops)
                        ds_err(errstr, sz, "out of memory");
                ds_live_stop(lv);
                return NULL;
        }
        return lv;
}

ds_live_t *ds_live_new_offline(const ds_config_t *cfg, char *errstr, size_t sz) {
        return live_new(cfg, errstr, sz);
}

ds_live_t *ds_live_start(const ds_config_t *cfg, char *errstr, size_t sz) {
        ds_live_t *lv = live_new(cfg, errstr, sz);
        if (!lv)
                return NULL;
        static const char *const defaults[] = {
                "enable.partition.eof", "true", "fetch.wait.max.ms", "100", "auto.offset.reset", "earliest", NULL};
        char err[512];
        rd_kafka_conf_t *conf = ds_kafka_conf(DS_KAFKA_CONSUMER, defaults, cfg->kafka, cfg->nkafka, err, sizeof(err));
        if (conf) {
                /* assign() only, never subscribe(): no group membership; and
                 * never commit offsets into whatever group.id says */
                char gid[300];
                const char *g = ds_config_kafka_get(cfg, "group.id");
                snprintf(gid, sizeof(gid), "%s.http", g ? g : "declstream");
                rd_kafka_conf_set(conf, "group.id", gid, NULL, 0);
                rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
                rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", NULL, 0);
                ds_kstats_attach(conf, cfg);
        }
        if (!conf || !(lv->rk = ds_kafka_new(DS_KAFKA_CONSUMER, conf, err, sizeof(err)))) {
                ds_err(errstr, sz, "cannot start the reader of the published totals: %s", err);
                ds_live_stop(lv);
                return NULL;
        }
        rd_kafka_poll_set_consumer(lv->rk); /* statistics events come through consumer_poll */
        int32_t nout = ds_kafka_partition_count(lv->rk, cfg->output_topic, 10000, err, sizeof(err));
        int32_t ntop = nout > 0 ? ds_kafka_partition_count(lv->rk, cfg->top_topic, 10000, err, sizeof(err)) : -1;
        if (nout <= 0 || ntop <= 0) {
                ds_err(errstr, sz, "cannot read the output topics %s and %s: %s", cfg->output_topic, cfg->top_topic,
                       err);
                ds_live_stop(lv);
                return NULL;
        }
        lv->nout = nout;
        lv->nends = nout + ntop;
        lv->ends = calloc((size_t)lv->nends, sizeof(*lv->ends));
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(lv->nends);
        for (int32_t p = 0; p < nout; p++)
                rd_kafka_topic_partition_list_add(l, cfg->output_topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
        for (int32_t p = 0; p < ntop; p++)
                rd_kafka_topic_partition_list_add(l, cfg->top_topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_resp_err_t aerr = lv->ends ? rd_kafka_assign(lv->rk, l) : RD_KAFKA_RESP_ERR__FAIL;
        rd_kafka_topic_partition_list_destroy(l);
        if (aerr) {
                ds_err(errstr, sz, "cannot assign the output topics: %s", rd_kafka_err2str(aerr));
                ds_live_stop(lv);
                return NULL;
        }
        if (pthread_create(&lv->thread, NULL, live_main, lv)) {
                ds_err(errstr, sz, "cannot start a thread");
                ds_live_stop(lv);
                return NULL;
        }
        lv->started = 1;
        return lv;
}

void ds_live_stop(ds_live_t *lv) {
        if (!lv)
                return;
        atomic_store_explicit(&lv->stop, 1, memory_order_relaxed);
        if (lv->started)
                pthread_join(lv->thread, NULL);
        if (lv->rk) {
                rd_kafka_consumer_close(lv->rk);
                rd_kafka_destroy(lv->rk);
        }
        ds_avro_lock();
        for (int i = 0; i < lv->nifaces; i++)
                avro_value_iface_decref(lv->ifaces[i]);
        ds_avro_unlock();
        ds_schemas_destroy(lv->schemas);
        free(lv->rows);
        free(lv->idx);
        free(lv->tops);
        free(lv->ends);
        pthread_rwlock_destroy(&lv->lock);
        free(lv);
}
