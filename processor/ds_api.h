/*
 * ds_api.h - the HTTP API's answers, independent of the HTTP server.
 *
 * ds_api_answer() maps a GET path and its query parameters to a status, a
 * content type and a body. ds_http.c feeds it what libmicrohttpd parsed;
 * tests call it directly. Endpoints (README "HTTP API"):
 *
 *   /healthz        200 while the processing loop is alive (its status is
 *                   fresh), 503 when it has stalled
 *   /readyz         200 {"ready":true}, or 503 with the reason
 *   /metrics        Prometheus text format (ds_prom.h)
 *   /api/summary    what the dashboard's header shows: rates, counters,
 *                   dead letters by reason, lag per partition, readiness
 *   /api/totals     rows as published: dimension, window, from, to, key, limit
 *   /api/rolling    per-key sums over a view (today, last_1h, last_24h)
 *   /api/series     one point per window (sum over keys, or one key)
 *   /api/top        a gate's top ten headings of a customs day
 *
 * Times are milliseconds since the epoch or RFC 3339 ("2026-11-23T08:00:00Z",
 * "2026-11-23T15:00:00+07:00"). An unknown or malformed parameter is a 400
 * with {"error": "...", "parameter": "..."}.
 *
 * @locality any thread.
 */
#ifndef DS_API_H
#define DS_API_H

#include <stddef.h>
#include <stdint.h>

#include "ds_config.h"
#include "ds_live.h"
#include "ds_wire.h"

typedef struct ds_api_arg {
        const char *name, *value;
} ds_api_arg_t;

typedef struct ds_api_ctx {
        const ds_config_t *cfg;
        ds_live_t *live; /* NULL: the row endpoints answer 503 */
} ds_api_ctx_t;

typedef struct ds_api_resp {
        int status;
        const char *content_type;
        ds_buf_t body; /* owned by the caller: ds_buf_free() */
} ds_api_resp_t;

/* Answers GET path. Returns 0, or -1 when path is not an API path (the
 * caller serves static files or 404). */
int ds_api_answer(const ds_api_ctx_t *ctx, const char *path, const ds_api_arg_t *args, int nargs, ds_api_resp_t *out);

/* The JSON of /api/summary, as sent on /api/stream (one line, no newline). */
void ds_api_summary(const ds_api_ctx_t *ctx, ds_buf_t *out);

/* Parses a time parameter: milliseconds, or RFC 3339; years 0000-9999 only
 * (so the spans and window counts computed from it cannot overflow).
 * Returns 0 or -1. */
int ds_api_parse_time(const char *s, int64_t *ms);

/* The start (ms) of the customs day holding t: local midnight, UTC+7. */
int64_t ds_api_day_start(int64_t t);

#endif
