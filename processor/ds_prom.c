/*
 * ds_prom.c - the Prometheus text format, and declstream's /metrics page.
 */
#include "ds_prom.h"
#include "ds_kstats.h"
#include "ds_reason.h"
#include "ds_status.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void ds_buf_printf(ds_buf_t *b, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n <= 0)
                return;
        ds_buf_reserve(b, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf((char *)b->p + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t)n;
}

void ds_prom_family(ds_buf_t *b, const char *name, const char *type, const char *help) {
        ds_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* {a="x",b="y"} with values escaped; extra (name, value) appended if given. */
static void labels_put(ds_buf_t *b, const char *const *labels, const char *xname, const char *xval) {
        if ((!labels || !labels[0]) && !xname)
                return;
        ds_buf_put(b, "{", 1);
        int first = 1;
        for (int i = 0; labels && labels[i] && labels[i + 1]; i += 2) {
                ds_buf_printf(b, "%s%s=\"", first ? "" : ",", labels[i]);
                for (const char *v = labels[i + 1]; *v; v++) {
                        if (*v == '\\' || *v == '"')
                                ds_buf_printf(b, "\\%c", *v);
                        else if (*v == '\n')
                                ds_buf_put(b, "\\n", 2);
                        else
                                ds_buf_put(b, v, 1);
                }
                ds_buf_put(b, "\"", 1);
                first = 0;
        }
        if (xname)
                ds_buf_printf(b, "%s%s=\"%s\"", first ? "" : ",", xname, xval);
        ds_buf_put(b, "}", 1);
}

void ds_prom_u64(ds_buf_t *b, const char *name, const char *const *labels, uint64_t v) {
        ds_buf_printf(b, "%s", name);
        labels_put(b, labels, NULL, NULL);
        ds_buf_printf(b, " %" PRIu64 "\n", v);
}

void ds_prom_i64(ds_buf_t *b, const char *name, const char *const *labels, int64_t v) {
        ds_buf_printf(b, "%s", name);
        labels_put(b, labels, NULL, NULL);
        ds_buf_printf(b, " %" PRId64 "\n", v);
}

void ds_prom_f64(ds_buf_t *b, const char *name, const char *const *labels, double v) {
        ds_buf_printf(b, "%s", name);
        labels_put(b, labels, NULL, NULL);
        if (isnan(v))
                ds_buf_printf(b, " NaN\n");
        else if (isinf(v))
                ds_buf_printf(b, " %s\n", v > 0 ? "+Inf" : "-Inf");
        else if (fabs(v) >= 1e6)
                ds_buf_printf(b, " %.3f\n", v); /* timestamps: keep the milliseconds */
        else
                ds_buf_printf(b, " %.9g\n", v);
}

void ds_prom_hist(ds_buf_t *b, const char *name, const char *const *labels, ds_hist_kind_t kind, const ds_hist_t *h) {
        uint64_t cum = 0;
        for (int i = 0; i <= DS_HIST_BUCKETS; i++) {
                cum += h->bucket[i];
                char le[32];
                if (i == DS_HIST_BUCKETS)
                        snprintf(le, sizeof(le), "+Inf");
                else
                        snprintf(le, sizeof(le), "%.9g", (double)ds_hist_bounds_ns[kind][i] / 1e9);
                ds_buf_printf(b, "%s_bucket", name);
                labels_put(b, labels, "le", le);
                ds_buf_printf(b, " %" PRIu64 "\n", cum);
        }
        ds_buf_printf(b, "%s_sum", name);
        labels_put(b, labels, NULL, NULL);
        ds_buf_printf(b, " %.9g\n", (double)h->sum_ns / 1e9);
        ds_buf_printf(b, "%s_count", name);
        labels_put(b, labels, NULL, NULL);
        ds_buf_printf(b, " %" PRIu64 "\n", h->count);
}

/* A family of one unlabelled sample. */
static void one_u64(ds_buf_t *b, const char *name, const char *type, const char *help, uint64_t v) {
        ds_prom_family(b, name, type, help);
        ds_prom_u64(b, name, NULL, v);
}

static void one_i64(ds_buf_t *b, const char *name, const char *type, const char *help, int64_t v) {
        ds_prom_family(b, name, type, help);
        ds_prom_i64(b, name, NULL, v);
}

static const char *const win_names[DS_WIN__CNT] = {"total", "minute", "hour", "day"};

void ds_prom_render(ds_buf_t *b, const ds_status_snap_t *s) {
        const char *const id[] = {"instance", s->instance, "role", s->role, NULL};
        ds_prom_family(b, "declstream_info", "gauge",
                       "Constant 1, labelled with this instance's name, role and version.");
        const char *const info[] = {"instance", s->instance, "role", s->role, "version", DS_VERSION, NULL};
        ds_prom_u64(b, "declstream_info", info, 1);
        one_u64(b, "declstream_ready", "gauge", "1 when /readyz answers 200 (see not_ready in /readyz otherwise).",
                (uint64_t)s->ready);
        ds_prom_family(b, "declstream_start_time_seconds", "gauge", "When this process started, Unix time.");
        ds_prom_f64(b, "declstream_start_time_seconds", NULL, (double)s->started_ms / 1000.0);
        one_u64(b, "declstream_resident_memory_bytes", "gauge", "Resident set size of the process.", ds_status_rss());
        (void)id;

        if (s->processing) {
                const ds_counters_t *c = &s->c;
                one_u64(b, "declstream_consumed_messages_total", "counter", "Messages taken from the input topic.",
                        c->consumed);
                one_u64(b, "declstream_consumed_bytes_total", "counter", "Bytes of message values taken.",
                        c->consumed_bytes);
                one_u64(b, "declstream_applied_declarations_total", "counter",
                        "Valid declarations applied to the ledger and the totals.", c->applied);
                ds_prom_family(b, "declstream_dead_lettered_messages_total", "counter",
                               "Messages written to the dead-letter topic, by reason.");
                for (int i = 1; i < DS_DLQ__CNT; i++) {
                        const char *const l[] = {"reason", ds_dlq_code((ds_dlq_reason_t)i), NULL};
                        ds_prom_u64(b, "declstream_dead_lettered_messages_total", l, c->dlq[i]);
                }
                ds_prom_family(b, "declstream_events_total", "counter",
                               "Applied events by outcome (new, amended, cancelled, duplicate, stale ...).");
                for (int i = 0; i < DS_EV__CNT; i++) {
                        const char *const l[] = {"outcome", ds_event_code((ds_event_outcome_t)i), NULL};
                        ds_prom_u64(b, "declstream_events_total", l, c->outcome[i]);
                }
                ds_prom_family(b, "declstream_late_events_total", "counter",
                               "Additions too late for a window that had closed, by window size.");
                for (int i = 1; i < DS_WIN__CNT; i++) {
                        const char *const l[] = {"window", win_names[i], NULL};
                        ds_prom_u64(b, "declstream_late_events_total", l, c->late[i]);
                }
                ds_prom_family(b, "declstream_late_retractions_total", "counter",
                               "Retractions skipped because their window had closed, by window size.");
                for (int i = 1; i < DS_WIN__CNT; i++) {
                        const char *const l[] = {"window", win_names[i], NULL};
                        ds_prom_u64(b, "declstream_late_retractions_total", l, c->late_retract[i]);
                }
                one_u64(b, "declstream_late_top_total", "counter",
                        "Additions or retractions too late for a day's top-headings cells.", c->late_top);
                one_u64(b, "declstream_evicted_rows_total", "counter", "Rows removed after their window closed.",
                        c->evicted_rows);
                one_u64(b, "declstream_not_owned_messages_total", "counter",
                        "Messages skipped: already applied before the restored checkpoint, or for a partition "
                        "no longer owned.",
                        c->not_owned);
                one_u64(b, "declstream_consumer_errors_total", "counter",
                        "Consumer errors reported on partition queues.", c->kafka_errors);
                one_u64(b, "declstream_partial_rows_total", "counter",
                        "Partial rows (one input partition's share of a row) written to the partial topic for the "
                        "merge.",
                        s->partial_rows);
                one_u64(b, "declstream_partial_messages_total", "counter",
                        "Messages of partial rows (batches, one or more per partial partition a cycle).",
                        s->partial_messages);
                one_u64(b, "declstream_status_messages_total", "counter",
                        "Input partitions' statuses written to the partial topic, in the batches, counted once per "
                        "partial partition (only when a partition's position, watermark or idleness changed).",
                        s->status_messages);
                one_u64(b, "declstream_changelog_bytes_total", "counter", "Bytes written to the state changelog.",
                        s->changelog_bytes);
                one_u64(b, "declstream_snapshots_total", "counter", "State snapshots written to the changelog.",
                        s->snapshots);
                one_u64(b, "declstream_cycles_total", "counter", "Completed checkpoint-publish-commit cycles.",
                        s->cycles);
                one_u64(b, "declstream_restores_total", "counter", "Partitions restored from the changelog.",
                        s->restores);
                one_i64(b, "declstream_assigned_partitions", "gauge", "Input partitions owned now.", s->nparts);
                ds_prom_family(b, "declstream_consumer_lag_messages", "gauge",
                               "High watermark minus the next offset to process, per input partition.");
                for (int i = 0; i < s->nparts; i++) {
                        if (s->parts[i].lag < 0)
                                continue;
                        char p[16];
                        snprintf(p, sizeof(p), "%d", s->parts[i].partition);
                        const char *const l[] = {"partition", p, NULL};
                        ds_prom_i64(b, "declstream_consumer_lag_messages", l, s->parts[i].lag);
                }
                ds_prom_family(b, "declstream_event_time_watermark_seconds", "gauge",
                               "Each input partition's event-time watermark, Unix time.");
                for (int i = 0; i < s->nparts; i++) {
                        if (s->parts[i].watermark_ms == INT64_MIN)
                                continue;
                        char p[16];
                        snprintf(p, sizeof(p), "%d", s->parts[i].partition);
                        const char *const l[] = {"partition", p, NULL};
                        ds_prom_f64(b, "declstream_event_time_watermark_seconds", l,
                                    (double)s->parts[i].watermark_ms / 1000.0);
                }
                ds_prom_family(b, "declstream_worker_queue_messages", "gauge",
                               "Messages fetched and waiting in each worker's queue.");
                for (int i = 0; i < s->nworkers && i < DS_STATUS_MAX_WORKERS; i++) {
                        char w[16];
                        snprintf(w, sizeof(w), "%d", i);
                        const char *const l[] = {"worker", w, NULL};
                        ds_prom_i64(b, "declstream_worker_queue_messages", l, s->worker_queue[i]);
                }
                ds_prom_family(b, "declstream_decode_duration_seconds", "histogram",
                               "Schema lookup + decode + validation of one message (one in 64 is timed).");
                ds_prom_hist(b, "declstream_decode_duration_seconds", NULL, DS_HIST_NS, &c->decode);
                ds_prom_family(b, "declstream_ingest_delay_seconds", "histogram",
                               "Producer timestamp (CreateTime) to applied, of the messages the decode histogram "
                               "times: broker, fetch and worker queueing.");
                ds_prom_hist(b, "declstream_ingest_delay_seconds", NULL, DS_HIST_MS, &c->ingest);
                ds_prom_family(b, "declstream_cycle_duration_seconds", "histogram",
                               "A checkpoint-publish-commit cycle, barrier to commit (or transaction commit).");
                ds_prom_hist(b, "declstream_cycle_duration_seconds", NULL, DS_HIST_MS, &s->cycle);
                if (s->transactions) {
                        ds_prom_family(b, "declstream_transaction_duration_seconds", "histogram",
                                       "Committing a cycle's Kafka transaction (offsets included).");
                        ds_prom_hist(b, "declstream_transaction_duration_seconds", NULL, DS_HIST_MS, &s->txn);
                } else {
                        ds_prom_family(b, "declstream_commit_duration_seconds", "histogram",
                                       "Committing the input offsets with the owner claims, once a cycle is "
                                       "acknowledged.");
                        ds_prom_hist(b, "declstream_commit_duration_seconds", NULL, DS_HIST_MS, &s->commit);
                }
                ds_prom_family(b, "declstream_restore_duration_seconds", "histogram",
                               "Restoring one partition's state from the changelog.");
                ds_prom_hist(b, "declstream_restore_duration_seconds", NULL, DS_HIST_MS, &s->restore);
        }
        if (s->merging) {
                const ds_merge_role_stats_t *m = &s->merge;
                one_u64(b, "declstream_merge_partials_total", "counter", "Partial messages read by the merge.",
                        m->partials);
                one_u64(b, "declstream_merge_ignored_shares_total", "counter",
                        "Partial rows and statuses the merge did not take: a window already closed (a replay, or a "
                        "late share of a partition that was idle), an older offset, a fenced owner, or an input "
                        "partition unknown at start-up.",
                        m->ignored);
                one_u64(b, "declstream_merge_partial_rows_total", "counter",
                        "Partial rows read by the merge (a message carries many; stale and fenced ones included).",
                        m->partial_rows);
                one_u64(b, "declstream_published_rows_total", "counter",
                        "Total rows published to the output topic by this instance's merge.", m->rows_published);
                one_u64(b, "declstream_published_top_lists_total", "counter",
                        "Top-headings lists published by this instance's merge.", m->tops_published);
                one_u64(b, "declstream_merge_fenced_publishes_total", "counter",
                        "Publishes refused because the group had moved this member's partitions.", m->fenced_publishes);
                one_u64(b, "declstream_merge_snapshots_total", "counter",
                        "Merge snapshots written to merge.state.topic (a restarting merge reads the partial topic "
                        "from the latest).",
                        m->snapshots);
                one_i64(b, "declstream_merge_snapshot_bytes", "gauge", "Size of the last merge snapshot written.",
                        m->snapshot_bytes);
                one_i64(b, "declstream_merge_partitions", "gauge", "Partial partitions merged here.", m->partitions);
                one_i64(b, "declstream_merge_rebuild_lag_messages", "gauge",
                        "Partial messages still to read before the merge may publish.", m->rebuild_lag);
        }
        ds_kstats_render(b);
}
