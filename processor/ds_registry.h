/*
 * ds_registry.h - a Confluent Schema Registry client (libcurl): schema by id.
 *
 * One call, ds_registry_fetch(): GET {url}/schemas/ids/{id}, answered by the
 * registry with {"schema": "<the schema's JSON, escaped>"} (and, for non-Avro
 * schemas, "schemaType"). Each request is bounded by timeout_ms (connect and
 * transfer); a failure that may pass - no connection, a timeout, HTTP 5xx,
 * 408 or 429 - is retried up to `retries` times, after a backoff that starts
 * at backoff_ms and doubles up to backoff_max_ms. A 404 is an answer ("no
 * such schema") and is not retried, nor are other 4xx (authentication,
 * a wrong URL: retrying cannot fix them). So one fetch takes at most
 * ds_registry_max_fetch_ms() = (retries + 1) * timeout_ms + the backoffs.
 *
 * Several base URLs may be given, separated by commas: attempt k goes to URL
 * k mod n, so a retry after a failure tries the next registry instance.
 *
 * This module only talks HTTP. Caching - the positive cache of compiled
 * decoders, the negative cache of ids that could not be resolved, and the
 * rule that one request at a time is made per id - lives in ds_schemas.c,
 * where the decoder is compiled, so that a known id costs a lock-free lookup.
 *
 * @locality any thread: each fetch uses its own curl easy handle; nothing is
 * shared but the immutable configuration and a relaxed request counter.
 * @locks none (ds_registry_new/destroy take a process-wide mutex around
 * libcurl's global init/cleanup; call them at start-up and shut-down).
 */
#ifndef DS_REGISTRY_H
#define DS_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "ds_reason.h"

typedef struct ds_registry ds_registry_t;

typedef struct ds_registry_conf {
        const char *url;       /* base URL(s): http://host:8081[,http://host2:8081]; required */
        const char *user_info; /* "user:password" for HTTP basic authentication; NULL or "": none */
        int64_t timeout_ms;    /* one request, connect included; >= 1 */
        int retries;           /* further attempts after a retryable failure; >= 0 */
        int64_t backoff_ms;    /* wait before the first retry; doubles per retry; 0: none */
        int64_t backoff_max_ms;
} ds_registry_conf_t;

/* Checks the configuration (http:// or https:// URLs) and copies it.
 * Returns NULL and fills errstr on error. Free with ds_registry_destroy(). */
ds_registry_t *ds_registry_new(const ds_registry_conf_t *conf, char *errstr, size_t errstr_size);
void ds_registry_destroy(ds_registry_t *r);

/* Fetches schema `id`. Returns:
 *   DS_DLQ_NONE                 *schema: the schema's JSON text, NUL-terminated,
 *                               malloc'd (caller frees), *len its length;
 *   DS_DLQ_UNKNOWN_SCHEMA       the registry answered 404;
 *   DS_DLQ_INCOMPATIBLE_SCHEMA  the registry holds a non-Avro schema there
 *                               (schemaType PROTOBUF or JSON);
 *   DS_DLQ_REGISTRY_UNAVAILABLE no usable answer after every attempt (errstr
 *                               says what the last attempt got).
 * *registry_down (may be NULL) is set to 1 when REGISTRY_UNAVAILABLE means
 * the registry itself failed - no connection, timeouts, 5xx, 408, 429, 401,
 * 403 - and to 0 when it answered about this id with something unusable (a
 * body that is not its JSON, or too large).
 * Blocks for at most ds_registry_max_fetch_ms(). @locality any thread. */
ds_dlq_reason_t ds_registry_fetch(ds_registry_t *r, uint32_t id, char **schema, size_t *len, int *registry_down,
                                  char *errstr, size_t errstr_size);

/* The longest a fetch can take, in ms. */
int64_t ds_registry_max_fetch_ms(const ds_registry_t *r);

/* HTTP requests sent so far, by every thread (attempts, not fetches). */
uint64_t ds_registry_requests(const ds_registry_t *r);

/* The base URL(s) for logs, any password embedded in a URL replaced by ***. */
const char *ds_registry_url_for_log(const ds_registry_t *r);

#endif
