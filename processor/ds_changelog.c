/*
 * ds_changelog.c - restore and claim an input partition (see ds_changelog.h).
 *
 * A dedicated consumer, never subscribed to a group, reads changelog
 * partitions by assign(): first windows at the end (headers only matter
 * there), then the span from the chosen snapshot to the chosen checkpoint.
 */
#include "ds_changelog.h"
#include "ds_common.h"
#include "ds_kafka.h"
#include "ds_log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_TIMEOUT_MS 30000
#define CLAIM_TIMEOUT_MS 30000
#define FIRST_WINDOW 256

/* A partition's log start and end, asked for ahead (ds_changelog_prepare). */
typedef struct ends {
        int32_t partition; /* -1: taken */
        int64_t lo, hi;
} ends_t;

struct ds_changelog {
        char *topic;
        ds_part_cfg_t pcfg;
        rd_kafka_t *rk;
        rd_kafka_t *producer;
        ends_t *ends;
        int nends;
};

ds_changelog_t *ds_changelog_new(const char *topic, const ds_part_cfg_t *pcfg, rd_kafka_conf_t *conf,
                                 rd_kafka_t *producer, char *errstr, size_t sz) {
        ds_changelog_t *c = calloc(1, sizeof(*c));
        if (!c) {
                rd_kafka_conf_destroy(conf);
                ds_err(errstr, sz, "out of memory");
                return NULL;
        }
        c->topic = strdup(topic);
        c->pcfg = *pcfg;
        c->producer = producer;
        c->rk = ds_kafka_reader_new(conf, errstr, sz);
        if (!c->rk || !c->topic) {
                ds_changelog_destroy(c);
                return NULL;
        }
        /* The topic's metadata now rather than at the first claim, which
         * waited ~1 s for it at every start-up (restore_ms of the first
         * partition ~970 ms, the others ~1): ds_kafka_topic_ready(). */
        if (ds_kafka_topic_ready(c->rk, producer, topic, "state.topic", errstr, sz) <= 0) {
                ds_changelog_destroy(c);
                return NULL;
        }
        return c;
}

void ds_changelog_destroy(ds_changelog_t *c) {
        if (!c)
                return;
        if (c->rk) {
                rd_kafka_consumer_close(c->rk);
                rd_kafka_destroy(c->rk);
        }
        free(c->topic);
        free(c->ends);
        free(c);
}

void ds_changelog_prepare(ds_changelog_t *c, const int32_t *partitions, int n) {
        free(c->ends);
        c->ends = NULL;
        c->nends = 0;
        if (n <= 0)
                return;
        int64_t *lo = malloc((size_t)n * sizeof(*lo)), *hi = malloc((size_t)n * sizeof(*hi));
        ends_t *e = malloc((size_t)n * sizeof(*e));
        int32_t failed = -1;
        /* a short deadline: on failure each take asks again, with its own */
        rd_kafka_resp_err_t err =
                lo && hi && e ? ds_kafka_watermarks_many(c->rk, c->topic, partitions, n, lo, hi, 3000, &failed)
                              : RD_KAFKA_RESP_ERR__FAIL;
        if (err) {
                ds_log(DS_LOG_WARN, "changelog", "cannot read the log ends ahead; each restore asks for its own",
                       "topic=%s partition=%d error=\"%s\"", c->topic, failed, rd_kafka_err2str(err));
                free(e);
        } else {
                for (int i = 0; i < n; i++)
                        e[i] = (ends_t){partitions[i], lo[i], hi[i]};
                c->ends = e;
                c->nends = n;
        }
        free(lo);
        free(hi);
}

/* The ends asked for ahead for p, once: 1, or 0 when there are none. */
static int ends_take(ds_changelog_t *c, int32_t p, int64_t *lo, int64_t *hi) {
        for (int i = 0; i < c->nends; i++)
                if (c->ends[i].partition == p) {
                        c->ends[i].partition = -1;
                        *lo = c->ends[i].lo;
                        *hi = c->ends[i].hi;
                        return 1;
                }
        return 0;
}

int ds_changelog_metadata(int32_t epoch, int64_t claim_offset, char *buf, size_t size) {
        return snprintf(buf, size, "ds1 epoch=%" PRId32 " claim=%" PRId64, epoch, claim_offset);
}

int ds_changelog_parse_metadata(const char *md, int32_t *epoch, int64_t *claim_offset) {
        long long e, o;
        if (!md || sscanf(md, "ds1 epoch=%lld claim=%lld", &e, &o) != 2 || e < 1 || o < 0)
                return -1;
        *epoch = (int32_t)e;
        *claim_offset = o;
        return 0;
}

static int read_range(ds_changelog_t *c, int32_t p, int64_t from, int64_t to, int exact_start, ds_kafka_read_fn fn,
                      void *ctx, char *errstr, size_t sz) {
        return ds_kafka_read_range(c->rk, c->topic, p, from, to, exact_start, READ_TIMEOUT_MS, "changelog", fn, ctx,
                                   errstr, sz);
}

/* ---- finding the checkpoint ------------------------------------------------ */

typedef struct hrec {
        int64_t offset;
        int type;
        int32_t epoch;
        ds_cl_checkpoint_t cp;
        ds_cl_claim_t claim;
} hrec_t;

typedef struct scan {
        hrec_t *v;
        uint32_t n, cap;
        int bad;
        int64_t last; /* the highest offset delivered (any record), -1: none */
} scan_t;

static int collect(void *ctx, int64_t offset, const uint8_t *p, size_t len) {
        scan_t *s = ctx;
        if (offset > s->last)
                s->last = offset;
        ds_cl_head_t h;
        if (ds_cl_peek(p, len, &h))
                return 0; /* not ours: ignored */
        if (h.type != DS_CL_CHECKPOINT && h.type != DS_CL_CLAIM)
                return 0;
        if (s->n == s->cap) {
                uint32_t cap = s->cap ? s->cap * 2 : 64;
                hrec_t *v = realloc(s->v, cap * sizeof(*v));
                if (!v) {
                        s->bad = 1;
                        return -1;
                }
                s->v = v;
                s->cap = cap;
        }
        hrec_t *r = &s->v[s->n++];
        memset(r, 0, sizeof(*r));
        r->offset = offset;
        r->type = h.type;
        r->epoch = h.epoch;
        if ((h.type == DS_CL_CHECKPOINT && ds_cl_read_checkpoint(p, len, &r->cp)) ||
            (h.type == DS_CL_CLAIM && ds_cl_read_claim(p, len, &r->claim)))
                s->n--; /* unreadable: ignored */
        return 0;
}

/* The checkpoint to restore from: its offset in *target (-1: none, start
 * fresh from *fresh_input), and the highest epoch seen in *max_epoch.
 * Returns 0 when decided, 1 when the window must grow, -1 on error. */
static int choose(const scan_t *s, int32_t auth_epoch, int64_t auth_claim, int64_t *target, int64_t *fresh_input,
                  int32_t *max_epoch) {
        for (uint32_t i = 0; i < s->n; i++)
                if (s->v[i].epoch > *max_epoch)
                        *max_epoch = s->v[i].epoch;
        /* A CLAIM newer than the committed metadata wins: only an assigned
         * member writes claims, so the metadata is stale (its commit failed,
         * or a zombie's commit got through). */
        for (uint32_t i = 0; i < s->n; i++)
                if (s->v[i].type == DS_CL_CLAIM && s->v[i].epoch > auth_epoch) {
                        auth_epoch = s->v[i].epoch;
                        auth_claim = s->v[i].offset;
                }
        if (auth_epoch > 0) {
                for (uint32_t i = s->n; i-- > 0;) {
                        const hrec_t *r = &s->v[i];
                        if (r->type == DS_CL_CHECKPOINT && r->epoch == auth_epoch && r->offset > auth_claim) {
                                *target = r->offset;
                                return 0;
                        }
                        if (r->type == DS_CL_CLAIM && r->epoch == auth_epoch && r->offset == auth_claim) {
                                /* its owner wrote no checkpoint: its base is the state */
                                *target = r->claim.based_on;
                                *fresh_input = r->claim.input_offset;
                                return 0;
                        }
                }
                return 1;
        }
        /* no authority (a new group): the last checkpoint of the highest epoch */
        int32_t best = 0;
        for (uint32_t i = 0; i < s->n; i++)
                if (s->v[i].type == DS_CL_CHECKPOINT && s->v[i].epoch > best)
                        best = s->v[i].epoch;
        for (uint32_t i = s->n; i-- > 0;)
                if (s->v[i].type == DS_CL_CHECKPOINT && s->v[i].epoch == best && best > 0) {
                        *target = s->v[i].offset;
                        return 0;
                }
        return 1;
}

/* ---- replay --------------------------------------------------------------- */

typedef struct replay {
        ds_restore_t *r;
        char *errstr;
        size_t sz;
} replay_t;

static int feed(void *ctx, int64_t offset, const uint8_t *p, size_t len) {
        replay_t *rp = ctx;
        return ds_restore_feed(rp->r, offset, p, len, rp->errstr, rp->sz);
}

int ds_changelog_take(ds_changelog_t *c, int32_t p, const char *committed_md, ds_restore_result_t *out, char *errstr,
                      size_t sz) {
        int64_t t0 = ds_mono_ms();
        memset(out, 0, sizeof(*out));
        out->snapshot_offset = -1;
        errstr[0] = '\0'; /* the error paths below test whether a callee wrote one */
        int32_t auth_epoch = 0;
        int64_t auth_claim = -1;
        if (committed_md && ds_changelog_parse_metadata(committed_md, &auth_epoch, &auth_claim))
                auth_epoch = 0;

        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        /* Ends asked for ahead are older. Records written since are past
         * the end the scan reads, as if written after the scan: the CLAIM
         * lands past it (out->snapshot_due), and a CLAIM among them is
         * found after ours (below). A head deleted since may fail the scan,
         * if it reads from the log's start: then it starts again with ends
         * asked for now (elsewhere what was deleted is read as lost, which
         * it is). */
        int ahead = ends_take(c, p, &lo, &hi);
        if (!ahead)
                err = ds_kafka_watermarks(c->rk, c->topic, p, &lo, &hi, 10000);
        if (err)
                return ds_err(errstr, sz, "watermarks of %s [%d]: %s", c->topic, p, rd_kafka_err2str(err));

        int64_t target = -1, fresh_input = 0, last_record = -1;
        int32_t max_epoch = auth_epoch;
        scan_t s = {0};
        if (hi > lo) {
                s.last = -1;
                int decided = 1;
                for (int64_t w = FIRST_WINDOW;; w *= 4) {
                        int64_t from = hi - w > lo ? hi - w : lo;
                        s.n = 0;
                        if (read_range(c, p, from, hi, 0, collect, &s, errstr, sz) || s.bad) {
                                if (ahead && !s.bad) {
                                        ds_log(DS_LOG_WARN, "changelog", "scan failed; asking for the log's ends again",
                                               "topic=%s partition=%d error=\"%s\"", c->topic, p, errstr);
                                        free(s.v);
                                        return ds_changelog_take(c, p, committed_md, out, errstr, sz);
                                }
                                free(s.v);
                                return -1;
                        }
                        decided = choose(&s, auth_epoch, auth_claim, &target, &fresh_input, &max_epoch);
                        last_record = s.last;
                        if (decided <= 0 || from == lo)
                                break;
                }
                if (decided > 0 && auth_epoch > 0) {
                        free(s.v);
                        return ds_err(errstr, sz,
                                      "%s [%d] no longer holds the claim of epoch %d at offset %" PRId64
                                      " (log %" PRId64 "..%" PRId64 "): the state cannot be rebuilt",
                                      c->topic, p, auth_epoch, auth_claim, lo, hi);
                }
        } else if (auth_epoch > 0) {
                return ds_err(errstr, sz, "%s [%d] is empty but the group says epoch %d owned it: the state is lost",
                              c->topic, p, auth_epoch);
        }

        ds_part_t *part = NULL;
        ds_cl_checkpoint_t cp = {0, INT64_MIN, -1, -1};
        if (target >= 0) {
                /* The checkpoint: read by the scan, unless it is the base of
                 * a claim further back than the scan went. (Read again, it
                 * cost a Fetch round trip a partition: 0.75 s of a 192-
                 * partition restart; bench/HOTPATH.md, thirteenth round.) */
                ds_cl_checkpoint_t want;
                const hrec_t *found = NULL;
                for (uint32_t i = s.n; i-- > 0 && !found;)
                        if (s.v[i].offset == target && s.v[i].type == DS_CL_CHECKPOINT)
                                found = &s.v[i];
                if (found) {
                        want = found->cp;
                } else {
                        scan_t one = {0};
                        if (read_range(c, p, target, target + 1, 1, collect, &one, errstr, sz) || one.n != 1 ||
                            one.v[0].type != DS_CL_CHECKPOINT) {
                                free(one.v);
                                free(s.v);
                                return errstr[0] ? -1
                                                 : ds_err(errstr, sz, "%s [%d]: no checkpoint at offset %" PRId64,
                                                          c->topic, p, target);
                        }
                        want = one.v[0].cp;
                        free(one.v);
                }
                free(s.v);
                if (want.snapshot_offset < lo)
                        return ds_err(errstr, sz,
                                      "%s [%d]: the snapshot at offset %" PRId64 " was deleted (log starts at %" PRId64
                                      "): the state cannot be rebuilt",
                                      c->topic, p, want.snapshot_offset, lo);
                ds_restore_t *r = ds_restore_new(&c->pcfg, p, want.snapshot_offset, target);
                if (!r)
                        return ds_err(errstr, sz, "out of memory");
                replay_t rp = {r, errstr, sz};
                errstr[0] = '\0';
                int rc = read_range(c, p, want.snapshot_offset, target + 1, 1, feed, &rp, errstr, sz);
                ds_restore_stats(r, &out->stats);
                part = ds_restore_take(r, &cp);
                ds_restore_destroy(r);
                if (rc || !part) {
                        ds_part_destroy(part);
                        return errstr[0] ? -1 : ds_err(errstr, sz, "%s [%d]: replay did not reach offset %" PRId64,
                                                       c->topic, p, target);
                }
                out->snapshot_offset = want.snapshot_offset;
        } else {
                free(s.v);
                part = ds_part_new(&c->pcfg, p, 0);
                if (!part)
                        return ds_err(errstr, sz, "out of memory");
                part->next_offset = fresh_input;
                cp.input_offset = fresh_input;
                out->fresh = 1;
        }

        /* claim: the next epoch, acknowledged before anything else is written */
        int32_t epoch = max_epoch + 1;
        ds_cl_claim_t claim = {target, out->snapshot_offset, part->next_offset, part->watermark_ms};
        ds_buf_t b = {0};
        ds_cl_write_claim(&b, p, epoch, &claim);
        char key[16];
        int kl = snprintf(key, sizeof(key), "%d", p);
        int64_t claim_offset = -1;
        err = ds_kafka_produce_wait(c->producer, c->topic, p, key, (size_t)kl, b.p, b.len, &claim_offset,
                                    CLAIM_TIMEOUT_MS);
        ds_buf_free(&b);
        if (err) {
                ds_part_destroy(part);
                return ds_err(errstr, sz, "cannot write the claim to %s [%d]: %s", c->topic, p, rd_kafka_err2str(err));
        }
        /* Records between the end the scan read and this CLAIM were written
         * by others meanwhile. A CLAIM among them (another member given the
         * partition while this one restored past max.poll.interval.ms, or
         * on ends asked for ahead) may hold this very epoch: two owners of
         * one epoch could be told apart neither by restores nor by the
         * merge. Of two such CLAIMs the later one's owner sees the earlier
         * one here, and gives up. */
        if (claim_offset > hi) {
                scan_t after = {0};
                after.last = -1;
                int rc = read_range(c, p, hi, claim_offset, 0, collect, &after, errstr, sz);
                int32_t rival = 0;
                int64_t rival_at = -1;
                for (uint32_t i = 0; !rc && !rival && i < after.n; i++)
                        if (after.v[i].type == DS_CL_CLAIM && after.v[i].epoch >= epoch) {
                                rival = after.v[i].epoch;
                                rival_at = after.v[i].offset;
                        }
                int bad = after.bad;
                free(after.v);
                if (rc || bad || rival) {
                        ds_part_destroy(part);
                        if (rival)
                                return ds_err(errstr, sz,
                                              "%s [%d]: another owner claimed epoch %d at offset %" PRId64
                                              " while this process restored (its CLAIM of epoch %d is at %" PRId64
                                              "): the partition has moved; not taking it",
                                              c->topic, p, rival, rival_at, epoch, claim_offset);
                        return rc ? -1 : ds_err(errstr, sz, "out of memory");
                }
        }
        part->epoch = epoch;
        ds_ledger_track_changes(part->ledger);
        out->part = part;
        out->epoch = epoch;
        out->claim_offset = claim_offset;
        /* see ds_changelog.h: a record after the target, read by the scan or
         * written after it (the CLAIM then lands past the end the scan saw);
         * a transaction's commit marker is neither */
        out->snapshot_due = out->snapshot_offset < 0 || last_record > target || claim_offset != hi;
        out->input_offset = part->next_offset;
        out->restore_ms = ds_mono_ms() - t0;
        return 0;
}
