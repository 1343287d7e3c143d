/*
 * ds_prom.h - the Prometheus text exposition format (version 0.0.4).
 *
 * Small writers over a ds_buf_t: a family header (# HELP, # TYPE) once, then
 * samples. Label values are escaped (backslash, double quote, newline) as the
 * format requires; metric names are the caller's constants.
 *
 * ds_prom_render() writes declstream's whole /metrics page from a status
 * snapshot (ds_status.h) and librdkafka's statistics (ds_kstats.h).
 *
 * @locality any thread, each with its own buffer.
 */
#ifndef DS_PROM_H
#define DS_PROM_H

#include <stdint.h>

#include "ds_hist.h"
#include "ds_wire.h"

struct ds_status_snap;

/* printf into the buffer. */
void ds_buf_printf(ds_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* # HELP and # TYPE lines of a family. type: counter, gauge, histogram. */
void ds_prom_family(ds_buf_t *b, const char *name, const char *type, const char *help);

/* One sample. labels: NULL, or a NULL-terminated list of name, value pairs. */
void ds_prom_u64(ds_buf_t *b, const char *name, const char *const *labels, uint64_t v);
void ds_prom_i64(ds_buf_t *b, const char *name, const char *const *labels, int64_t v);
void ds_prom_f64(ds_buf_t *b, const char *name, const char *const *labels, double v);

/* The _bucket (cumulative, le in seconds), _sum (seconds) and _count samples
 * of a histogram. */
void ds_prom_hist(ds_buf_t *b, const char *name, const char *const *labels, ds_hist_kind_t kind, const ds_hist_t *h);

/* The whole page. */
void ds_prom_render(ds_buf_t *b, const struct ds_status_snap *s);

#endif
