/*
 * ds_kstats.h - librdkafka's statistics, kept for /metrics.
 *
 * librdkafka emits a JSON document every statistics.interval.ms through the
 * stats callback, on the thread that polls the handle. ds_kstats_attach()
 * registers a callback that parses the figures an operator watches (queue
 * depths, request and byte counts, broker round trips, consumer group
 * rebalances) into a process-wide table, one entry per client, under a mutex;
 * ds_kstats_render() writes them as Prometheus metrics
 * declstream_rdkafka_*{client="..."}.
 *
 * Only attach to handles that are polled regularly: statistics are queued as
 * events and a handle nobody polls would accumulate them (ds_kstats_off()
 * for those).
 *
 * @locality any thread; @locks one internal mutex, never held while calling
 * librdkafka.
 */
#ifndef DS_KSTATS_H
#define DS_KSTATS_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "ds_config.h"
#include "ds_wire.h"

/* The interval used when the user has not set kafka.statistics.interval.ms. */
#define DS_KSTATS_DEFAULT_INTERVAL "5000"

/* Registers the callback; sets statistics.interval.ms to the default unless
 * cfg sets it. */
void ds_kstats_attach(rd_kafka_conf_t *conf, const ds_config_t *cfg);
/* Turns statistics off on conf (handles that are not polled). */
void ds_kstats_off(rd_kafka_conf_t *conf);

/* Parses one statistics document (exposed for tests). Returns 0, or -1 if it
 * is not the JSON librdkafka writes. */
int ds_kstats_ingest(const char *json, size_t len);

/* Appends the metrics of every client that reported recently. */
void ds_kstats_render(ds_buf_t *out);

/* Forgets every client (tests). */
void ds_kstats_reset(void);

#endif
