/*
 * ds_state.c - changelog records and restore (see ds_state.h).
 *
 * Item encoding inside SNAP_CHUNK and DELTA records, each item tagged:
 *   'L' ledger entry: id, declared_at, version, gate, flow, cancelled,
 *       nlines, then per line heading, items, value, weight
 *   'R' row: key word (8 bytes, little-endian), window start, 8 measures,
 *       sketch flag, then for GATE DAY rows the two serialized sketches
 *   'X' row removed (its window closed): key word, window start
 * Integers are Avro-style zigzag varints; every read is bounds-checked, so a
 * corrupt record is reported, never trusted.
 */
#include "ds_state.h"
#include "ds_wire.h"
#include "ds_common.h"
#include "ds_domain.h"
#include "ds_hll.h"

#include <stdlib.h>
#include <string.h>

#define VERSION 1

/* ---- reading ------------------------------------------------------------- */

static uint8_t get_u8(ds_rd_t *r) {
        if (r->p >= r->end) {
                r->bad = 1;
                return 0;
        }
        return *r->p++;
}

static int read_head(ds_rd_t *r, ds_cl_head_t *h) {
        if (r->end - r->p < 4 || r->p[0] != 'D' || r->p[1] != 'S' || r->p[2] != VERSION)
                return -1;
        h->type = r->p[3];
        r->p += 4;
        h->epoch = (int32_t)ds_rd_long(r);
        h->partition = (int32_t)ds_rd_long(r);
        return r->bad || h->type < DS_CL_CLAIM || h->type > DS_CL_CHECKPOINT ? -1 : 0;
}

int ds_cl_peek(const uint8_t *rec, size_t len, ds_cl_head_t *h) {
        ds_rd_t r = {rec, rec + len, 0};
        return rec ? read_head(&r, h) : -1;
}

int ds_cl_read_checkpoint(const uint8_t *rec, size_t len, ds_cl_checkpoint_t *c) {
        ds_rd_t r = {rec, rec + len, 0};
        ds_cl_head_t h;
        if (read_head(&r, &h) || h.type != DS_CL_CHECKPOINT)
                return -1;
        c->input_offset = ds_rd_long(&r);
        c->watermark_ms = ds_rd_long(&r);
        c->snapshot_offset = ds_rd_long(&r);
        c->claim_offset = ds_rd_long(&r);
        if (r.p < r.end) {
                c->gates = (int32_t)ds_rd_long(&r);
                c->gates_fp = ds_rd_u64(&r);
        } else { /* written before gates files: the compiled-in list */
                c->gates = ds_gate_builtin_count();
                c->gates_fp = ds_gates_fingerprint(c->gates);
        }
        return r.bad || c->gates < 0 ? -1 : 0;
}

int ds_cl_read_claim(const uint8_t *rec, size_t len, ds_cl_claim_t *c) {
        ds_rd_t r = {rec, rec + len, 0};
        ds_cl_head_t h;
        if (read_head(&r, &h) || h.type != DS_CL_CLAIM)
                return -1;
        c->based_on = ds_rd_long(&r);
        c->snapshot_offset = ds_rd_long(&r);
        c->input_offset = ds_rd_long(&r);
        c->watermark_ms = ds_rd_long(&r);
        return r.bad ? -1 : 0;
}

/* ---- writing ------------------------------------------------------------- */

static void put_head(ds_buf_t *b, int type, int32_t epoch, int32_t partition) {
        uint8_t h[4] = {'D', 'S', VERSION, (uint8_t)type};
        ds_buf_put(b, h, 4);
        ds_avro_put_long(b, epoch);
        ds_avro_put_long(b, partition);
}

void ds_cl_write_claim(ds_buf_t *b, int32_t partition, int32_t epoch, const ds_cl_claim_t *c) {
        put_head(b, DS_CL_CLAIM, epoch, partition);
        ds_avro_put_long(b, c->based_on);
        ds_avro_put_long(b, c->snapshot_offset);
        ds_avro_put_long(b, c->input_offset);
        ds_avro_put_long(b, c->watermark_ms);
}

void ds_cl_write_checkpoint(ds_buf_t *b, int32_t partition, int32_t epoch, const ds_cl_checkpoint_t *c) {
        put_head(b, DS_CL_CHECKPOINT, epoch, partition);
        ds_avro_put_long(b, c->input_offset);
        ds_avro_put_long(b, c->watermark_ms);
        ds_avro_put_long(b, c->snapshot_offset);
        ds_avro_put_long(b, c->claim_offset);
        /* the process's gate list, whatever c says: the state being checkpointed is numbered by it */
        ds_avro_put_long(b, ds_gate_count());
        ds_buf_put_u64(b, ds_gates_fingerprint(ds_gate_count()));
}

/* Every changed ledger entry is written at each cycle (and all of them in a
 * snapshot): one reservation for the whole entry instead of one per value. */
static void put_entry(ds_buf_t *b, const ds_ledger_entry_t *e) {
        uint8_t *p = ds_buf_tail(b, 1 + DS_AVRO_LONG_MAX * (7 + 4 * (size_t)e->nlines));
        *p++ = 'L';
        p += ds_avro_write_long(p, (int64_t)e->id);
        p += ds_avro_write_long(p, e->declared_at);
        p += ds_avro_write_long(p, e->version);
        p += ds_avro_write_long(p, e->gate);
        p += ds_avro_write_long(p, e->flow);
        p += ds_avro_write_long(p, e->cancelled);
        p += ds_avro_write_long(p, e->nlines);
        for (uint32_t i = 0; i < e->nlines; i++) {
                p += ds_avro_write_long(p, e->lines[i].heading);
                p += ds_avro_write_long(p, e->lines[i].items);
                p += ds_avro_write_long(p, e->lines[i].value);
                p += ds_avro_write_long(p, e->lines[i].weight);
        }
        ds_buf_commit(b, p);
}

static void put_row(ds_buf_t *b, ds_rowkey_t key, const ds_measures_t *m, const ds_distinct_t *d) {
        ds_buf_put(b, "R", 1);
        ds_buf_put_u64(b, key.k);
        ds_avro_put_long(b, key.start);
        const int64_t *v = &m->declarations;
        for (int i = 0; i < 8; i++)
                ds_avro_put_long(b, v[i]);
        ds_avro_put_long(b, d ? 1 : 0);
        if (d) {
                ds_hll_put_bytes(b, d->declarants);
                ds_hll_put_bytes(b, d->vehicles);
        }
}

static void put_removal(ds_buf_t *b, ds_rowkey_t key) {
        ds_buf_put(b, "X", 1);
        ds_buf_put_u64(b, key.k);
        ds_avro_put_long(b, key.start);
}

/* Accumulates items into records of at most max bytes. */
typedef struct batch {
        ds_buf_t b;
        int type;
        int32_t epoch, partition;
        size_t max, head_len;
        ds_cl_emit_fn emit;
        void *ctx;
        int64_t bytes;
        int items;
        int failed;
} batch_t;

static void batch_start(batch_t *bt) {
        bt->b.len = 0;
        put_head(&bt->b, bt->type, bt->epoch, bt->partition);
        bt->head_len = bt->b.len;
        bt->items = 0;
}

static void batch_emit(batch_t *bt) {
        if (!bt->items || bt->failed)
                return;
        if (bt->emit(bt->ctx, bt->b.p, bt->b.len))
                bt->failed = 1;
        bt->bytes += (int64_t)bt->b.len;
        batch_start(bt);
}

/* Call after appending an item: emits when the record is full. */
static void batch_item(batch_t *bt) {
        bt->items++;
        if (bt->b.len >= bt->max)
                batch_emit(bt);
}

static int delta_entry(void *ctx, const ds_ledger_entry_t *e) {
        batch_t *bt = ctx;
        put_entry(&bt->b, e);
        batch_item(bt);
        return bt->failed;
}

int64_t ds_cl_write_delta(ds_part_t *p, const ds_outbox_t *ob, size_t max_record, ds_cl_emit_fn emit, void *ctx) {
        batch_t bt = {{0}, DS_CL_DELTA, p->epoch, p->partition, max_record, 0, emit, ctx, 0, 0, 0};
        batch_start(&bt);
        ds_ledger_take_changes(p->ledger, delta_entry, &bt);
        for (uint32_t i = 0; i < ob->nrows && !bt.failed; i++)
                if (ob->rows[i].partition == p->partition) {
                        put_row(&bt.b, ob->rows[i].key, &ob->rows[i].m, ob->rows[i].distinct);
                        batch_item(&bt);
                }
        for (uint32_t i = 0; i < ob->nevicts && !bt.failed; i++)
                if (ob->evicts[i].partition == p->partition) {
                        put_removal(&bt.b, ob->evicts[i].key);
                        batch_item(&bt);
                }
        batch_emit(&bt);
        ds_buf_free(&bt.b);
        return bt.failed ? -1 : bt.bytes;
}

int ds_cl_snapshot_due(ds_part_t *p, const ds_part_cfg_t *cfg) {
        int64_t limit = p->cl_snap_bytes > cfg->snapshot_min_bytes ? p->cl_snap_bytes : cfg->snapshot_min_bytes;
        /* Staggered by partition (x1, x1.25, x1.5, x1.75), as Kafka staggers
         * segment rolls (segment.jitter.ms): partitions fed alike would
         * otherwise outgrow their snapshots in the same cycle, and that one
         * cycle, writing every partition's snapshot, is the latency's tail. */
        limit += limit / 4 * (p->partition & 3);
        int every = cfg->snapshot_interval_cycles;
        return p->need_snapshot || p->cl_tail_bytes > limit || (every > 0 && ++p->cl_cycles >= every);
}

int64_t ds_cl_write_cycle(ds_part_t *p, int snapshot, const ds_outbox_t *view, ds_cl_emit_fn emit, void *ctx) {
        int64_t bytes;
        if (snapshot) {
                bytes = ds_cl_write_snapshot(p, DS_CL_MAX_RECORD, emit, ctx);
                p->cl_snap_bytes = bytes;
                p->cl_tail_bytes = 0;
                p->cl_cycles = 0;
                p->need_snapshot = 0;
        } else {
                bytes = ds_cl_write_delta(p, view, DS_CL_MAX_RECORD, emit, ctx);
                p->cl_tail_bytes += bytes;
        }
        return bytes;
}

static int snap_entry(void *ctx, const ds_ledger_entry_t *e) {
        return delta_entry(ctx, e);
}

static int ignore_entry(void *ctx, const ds_ledger_entry_t *e) {
        (void)ctx;
        (void)e;
        return 0;
}

int64_t ds_cl_write_snapshot(ds_part_t *p, size_t max_record, ds_cl_emit_fn emit, void *ctx) {
        ds_buf_t b = {0};
        put_head(&b, DS_CL_SNAP_BEGIN, p->epoch, p->partition);
        ds_avro_put_long(&b, p->next_offset);
        ds_avro_put_long(&b, p->watermark_ms);
        int64_t bytes = (int64_t)b.len;
        if (emit(ctx, b.p, b.len)) {
                ds_buf_free(&b);
                return -1;
        }
        batch_t bt = {{0}, DS_CL_SNAP_CHUNK, p->epoch, p->partition, max_record, 0, emit, ctx, 0, 0, 0};
        batch_start(&bt);
        uint64_t nentries = ds_ledger_count(p->ledger), nrows = 0;
        ds_ledger_foreach(p->ledger, snap_entry, &bt);
        ds_ledger_take_changes(p->ledger, ignore_entry, NULL); /* included above */
        if (ds_agg_sync(p->agg))                               /* the sketches complete before they are written */
                bt.failed = 1;
        ds_rows_t *rows = ds_agg_rows(p->agg);
        uint32_t cur = 0;
        for (ds_row_t *r; !bt.failed && (r = ds_rows_iter(rows, &cur));) {
                put_row(&bt.b, r->key, &r->m, r->aux);
                batch_item(&bt);
                nrows++;
        }
        batch_emit(&bt);
        bytes += bt.bytes;
        ds_buf_free(&bt.b);
        if (bt.failed) {
                ds_buf_free(&b);
                return -1;
        }
        b.len = 0;
        put_head(&b, DS_CL_SNAP_END, p->epoch, p->partition);
        ds_avro_put_long(&b, (int64_t)nentries);
        ds_avro_put_long(&b, (int64_t)nrows);
        bytes += (int64_t)b.len;
        int rc = emit(ctx, b.p, b.len);
        ds_buf_free(&b);
        return rc ? -1 : bytes;
}

/* ---- restore ------------------------------------------------------------- */

typedef struct pending {
        uint8_t *rec;
        size_t len;
} pending_t;

struct ds_restore {
        ds_part_cfg_t cfg;
        int32_t partition;
        int64_t snapshot_offset, target_offset;
        ds_part_t *part;
        int32_t region_epoch; /* epoch of the valid region being replayed */
        int started;          /* the snapshot at snapshot_offset was seen */
        int loading;          /* inside that snapshot */
        int skipping;         /* inside a later snapshot: ignored (same state as a checkpoint) */
        int done;
        uint64_t snap_entries, snap_rows; /* items of the snapshot loaded, checked against its SNAP_END */
        ds_cl_checkpoint_t cp;
        pending_t *pend;
        uint32_t npend, cappend;
        ds_restore_stats_t st;
};

ds_restore_t *ds_restore_new(const ds_part_cfg_t *cfg, int32_t partition, int64_t snapshot_offset,
                             int64_t target_offset) {
        ds_restore_t *r = calloc(1, sizeof(*r));
        if (!r)
                return NULL;
        r->cfg = *cfg;
        r->partition = partition;
        r->snapshot_offset = snapshot_offset;
        r->target_offset = target_offset;
        r->part = ds_part_new(cfg, partition, 0);
        if (!r->part) {
                free(r);
                return NULL;
        }
        return r;
}

static void drop_pending(ds_restore_t *r) {
        for (uint32_t i = 0; i < r->npend; i++)
                free(r->pend[i].rec);
        r->npend = 0;
}

void ds_restore_destroy(ds_restore_t *r) {
        if (!r)
                return;
        drop_pending(r);
        free(r->pend);
        ds_part_destroy(r->part);
        free(r);
}

/* Whether a row key read back could have been written by a partition's
 * aggregates: a known dimension and window, no partition bits (only the
 * merge's keys carry them), a gate this process knows, a heading of at most
 * 8 digits. Anything else comes from a corrupt record, and would index past
 * the gate list when the row is published. */
static int rowkey_valid(ds_rowkey_t k) {
        uint64_t x = k.k;
        ds_dim_t dim = ds_rowkey_dim(k);
        if (dim >= DS_DIM__CNT || ds_rowkey_window(k) >= DS_WIN__CNT || ds_rowkey_partition(k) != -1)
                return 0;
        if (dim == DS_DIM_GATE_HEADING)
                return ds_rowkey_window(k) == DS_WIN_DAY && ds_cell_gate(k) < (uint32_t)ds_gate_count();
        if (x >> 48 & 0x7ff)
                return 0;
        return dim == DS_DIM_GATE ? ds_rowkey_key(k) < (uint32_t)ds_gate_count() : ds_rowkey_key(k) < 1u << 27;
}

/* Applies the items of a SNAP_CHUNK or DELTA record. Every field is checked
 * against what a processor writes: the record comes from a topic and may be
 * corrupt, and a value out of range would index past an array later (a
 * flow, a gate) or collide with the ledger's empty-slot marker (an id). */
static int apply_items(ds_restore_t *r, ds_rd_t *in, char *errstr, size_t sz) {
        ds_line_t lines[DS_MAX_ITEMS];
        while (in->p < in->end && !in->bad) {
                uint8_t tag = get_u8(in);
                if (tag == 'L') {
                        ds_ledger_entry_t e;
                        int64_t id = ds_rd_long(in);
                        e.declared_at = ds_rd_long(in);
                        int64_t version = ds_rd_long(in), gate = ds_rd_long(in), flow = ds_rd_long(in),
                                cancelled = ds_rd_long(in), n = ds_rd_long(in);
                        if (in->bad || n < 0 || n > DS_MAX_ITEMS || id < 0 || id > DS_DECL_ID_MAX || version < 0 ||
                            version > INT32_MAX || gate < 0 || flow < 0 || flow >= DS_FLOW__CNT || cancelled < 0 ||
                            cancelled > 1)
                                return ds_err(errstr, sz, "corrupt ledger entry");
                        if (gate >= ds_gate_count())
                                return ds_err(errstr, sz,
                                              "a ledger entry names gate %lld but this process has %d gates: the "
                                              "changelog was written with a longer gate list, or is corrupt",
                                              (long long)gate, ds_gate_count());
                        e.id = (uint64_t)id;
                        e.version = (int32_t)version;
                        e.gate = (uint16_t)gate;
                        e.flow = (uint8_t)flow;
                        e.cancelled = (uint8_t)cancelled;
                        e.nlines = (uint32_t)n;
                        for (int64_t i = 0; i < n; i++) {
                                int64_t heading = ds_rd_long(in), items = ds_rd_long(in);
                                if (heading < 0 || heading >= 1 << 27 || items < 0 || items > UINT32_MAX)
                                        return ds_err(errstr, sz, "corrupt ledger entry");
                                lines[i].heading = (uint32_t)heading;
                                lines[i].items = (uint32_t)items;
                                lines[i].value = ds_rd_long(in);
                                lines[i].weight = ds_rd_long(in);
                        }
                        e.lines = lines;
                        if (in->bad)
                                return ds_err(errstr, sz, "corrupt ledger entry");
                        if (r->loading)
                                r->snap_entries++;
                        if (ds_ledger_put(r->part->ledger, &e))
                                return ds_err(errstr, sz, "out of memory restoring the ledger");
                        r->st.ledger_entries++;
                } else if (tag == 'R') {
                        ds_rowkey_t key;
                        key.k = ds_rd_u64(in);
                        key.start = ds_rd_long(in);
                        ds_measures_t m;
                        int64_t *v = &m.declarations;
                        for (int i = 0; i < 8; i++)
                                v[i] = ds_rd_long(in);
                        ds_distinct_t *d = NULL;
                        if (ds_rd_long(in)) {
                                size_t n1, n2;
                                const uint8_t *s1 = ds_rd_bytes(in, &n1);
                                const uint8_t *s2 = s1 ? ds_rd_bytes(in, &n2) : NULL;
                                if (!s2)
                                        return ds_err(errstr, sz, "corrupt row sketch");
                                d = calloc(1, sizeof(*d));
                                if (!d)
                                        return ds_err(errstr, sz, "out of memory");
                                d->declarants = ds_hll_deserialize(s1, n1);
                                d->vehicles = ds_hll_deserialize(s2, n2);
                                if (!d->declarants || !d->vehicles) {
                                        ds_distinct_free(d);
                                        return ds_err(errstr, sz, "corrupt row sketch");
                                }
                        }
                        if (in->bad || !rowkey_valid(key)) {
                                ds_distinct_free(d);
                                return ds_err(errstr, sz, "corrupt row");
                        }
                        if (ds_agg_restore_row(r->part->agg, key, &m, d))
                                return ds_err(errstr, sz, "out of memory restoring rows");
                        if (r->loading)
                                r->snap_rows++;
                        r->st.rows++;
                } else if (tag == 'X') {
                        ds_rowkey_t key;
                        key.k = ds_rd_u64(in);
                        key.start = ds_rd_long(in);
                        if (in->bad || !rowkey_valid(key))
                                return ds_err(errstr, sz, "corrupt row removal");
                        ds_agg_remove_row(r->part->agg, key);
                } else {
                        return ds_err(errstr, sz, "unknown item tag 0x%02x", tag);
                }
        }
        return in->bad ? ds_err(errstr, sz, "truncated record") : 0;
}

int ds_restore_feed(ds_restore_t *r, int64_t offset, const uint8_t *rec, size_t len, char *errstr, size_t sz) {
        if (r->done)
                return 1;
        if (offset < r->snapshot_offset)
                return 0;
        ds_rd_t in = {rec, rec + len, 0};
        ds_cl_head_t h;
        if (!rec || read_head(&in, &h))
                return ds_err(errstr, sz, "changelog offset %lld is not a declstream record", (long long)offset);
        if (h.partition != r->partition)
                return ds_err(errstr, sz, "changelog offset %lld belongs to partition %d", (long long)offset,
                              h.partition);
        r->st.records++;
        r->st.bytes += len;
        if (!r->started) {
                if (offset != r->snapshot_offset || h.type != DS_CL_SNAP_BEGIN)
                        return ds_err(errstr, sz, "no snapshot at changelog offset %lld (found record type %d)",
                                      (long long)offset, h.type);
                r->started = 1;
                r->loading = 1;
                r->region_epoch = h.epoch;
                r->part->next_offset = ds_rd_long(&in);
                r->part->watermark_ms = ds_rd_long(&in);
                return in.bad ? ds_err(errstr, sz, "corrupt snapshot header") : 0;
        }
        if (h.type == DS_CL_CLAIM) {
                if (h.epoch > r->region_epoch) {
                        /* a new owner: whatever the previous one left uncommitted is void */
                        drop_pending(r);
                        r->region_epoch = h.epoch;
                        r->skipping = 0;
                } else {
                        r->st.ignored_records++;
                }
                return 0;
        }
        if (h.epoch < r->region_epoch) {
                r->st.ignored_records++; /* a zombie's record, written after a newer claim */
                return 0;
        }
        if (h.epoch > r->region_epoch)
                return ds_err(errstr, sz, "changelog offset %lld has epoch %d without a claim (region %d)",
                              (long long)offset, h.epoch, r->region_epoch);
        switch (h.type) {
        case DS_CL_SNAP_BEGIN:
                if (r->loading)
                        return ds_err(errstr, sz, "snapshot inside a snapshot at offset %lld", (long long)offset);
                r->skipping = 1;
                return 0;
        case DS_CL_SNAP_CHUNK:
                if (r->skipping)
                        return 0;
                if (!r->loading)
                        return ds_err(errstr, sz, "snapshot chunk outside a snapshot at offset %lld",
                                      (long long)offset);
                return apply_items(r, &in, errstr, sz);
        case DS_CL_SNAP_END:
                if (r->loading) {
                        /* its counts: a chunk lost from the log (a broker
                         * that lost acknowledged records) must not restore
                         * a state with holes */
                        int64_t entries = ds_rd_long(&in), rows = ds_rd_long(&in);
                        if (in.bad)
                                return ds_err(errstr, sz, "corrupt snapshot end at offset %lld", (long long)offset);
                        if ((uint64_t)entries != r->snap_entries || (uint64_t)rows != r->snap_rows)
                                return ds_err(errstr, sz,
                                              "the snapshot ending at offset %lld is incomplete: %llu of %lld "
                                              "ledger entries and %llu of %lld rows were read (a record of it is "
                                              "missing from the changelog)",
                                              (long long)offset, (unsigned long long)r->snap_entries,
                                              (long long)entries, (unsigned long long)r->snap_rows, (long long)rows);
                        r->loading = 0;
                }
                r->skipping = 0;
                return 0;
        case DS_CL_DELTA: {
                if (r->loading)
                        return ds_err(errstr, sz, "delta inside a snapshot at offset %lld", (long long)offset);
                if (r->npend == r->cappend) {
                        uint32_t cap = r->cappend ? r->cappend * 2 : 16;
                        pending_t *p = realloc(r->pend, cap * sizeof(*p));
                        if (!p)
                                return ds_err(errstr, sz, "out of memory");
                        r->pend = p;
                        r->cappend = cap;
                }
                uint8_t *copy = malloc(len);
                if (!copy)
                        return ds_err(errstr, sz, "out of memory");
                memcpy(copy, rec, len);
                r->pend[r->npend++] = (pending_t){copy, len};
                return 0;
        }
        case DS_CL_CHECKPOINT: {
                if (r->loading)
                        return ds_err(errstr, sz, "checkpoint inside a snapshot at offset %lld", (long long)offset);
                ds_cl_checkpoint_t cp;
                if (ds_cl_read_checkpoint(rec, len, &cp))
                        return ds_err(errstr, sz, "corrupt checkpoint at offset %lld", (long long)offset);
                if (cp.gates > ds_gate_count() || ds_gates_fingerprint(cp.gates) != cp.gates_fp)
                        return ds_err(errstr, sz,
                                      "checkpoint at offset %lld was written with another gate list (%d gates; this "
                                      "process has %d): the state numbers gates by their place in the list, so "
                                      "gates.file must keep every gate the state was built with, in the same order, "
                                      "and may only add gates at its end",
                                      (long long)offset, (int)cp.gates, ds_gate_count());
                for (uint32_t i = 0; i < r->npend; i++) {
                        ds_rd_t d = {r->pend[i].rec, r->pend[i].rec + r->pend[i].len, 0};
                        ds_cl_head_t dh;
                        read_head(&d, &dh);
                        if (apply_items(r, &d, errstr, sz))
                                return -1;
                }
                drop_pending(r);
                r->cp = cp;
                r->part->next_offset = cp.input_offset;
                r->part->watermark_ms = cp.watermark_ms;
                if (offset == r->target_offset) {
                        r->done = 1;
                        return 1;
                }
                return 0;
        }
        }
        return ds_err(errstr, sz, "unknown record type %d", h.type);
}

ds_part_t *ds_restore_take(ds_restore_t *r, ds_cl_checkpoint_t *cp) {
        if (!r->done)
                return NULL;
        ds_part_t *p = r->part;
        r->part = NULL;
        if (cp)
                *cp = r->cp;
        return p;
}

void ds_restore_stats(const ds_restore_t *r, ds_restore_stats_t *st) {
        *st = r->st;
}
