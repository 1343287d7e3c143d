/*
 * ds_schemas.h - schema ids -> Avro schemas -> decoders.
 *
 * Sources, in order of precedence:
 *   1. schema.dir: `<schema.dir>/registry.properties` (`id = file.avsc`), every
 *      schema parsed with Avro C at start-up; `customs_declaration.avsc` is the
 *      reader schema (v1: see README, "Schema evolution");
 *   2. schema.registry.url (optional): a Confluent Schema Registry, asked for
 *      ids that schema.dir does not have, the first time a message names them
 *      (ds_registry.h), with a negative cache for the ids it cannot resolve.
 * A ds_codec_t is compiled for every schema that is a compatible
 * vn.customs.Declaration.
 *
 * Framing (ds_schemas_resolve): the Confluent wire header (magic 0, 4-byte
 * big-endian schema id), or Avro single-object encoding (0xC3 0x01 and the
 * 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's Parsing
 * Canonical Form), matched against the fingerprints of schema.dir's schemas.
 *
 * @locality ds_schemas_open/load/destroy: start-up and shut-down, one
 * thread. Everything else: any thread, concurrently. A known id costs a
 * lock-free lookup (no lock, no RMW, no syscall); only an id not yet known,
 * or whose negative answer expired, takes a mutex and may wait for the
 * registry - at most ds_registry_max_fetch_ms() once per id and negative
 * TTL (ds_schemas.c explains the table and its memory orders).
 */
#ifndef DS_SCHEMAS_H
#define DS_SCHEMAS_H

#include <avro.h>
#include <stdint.h>

#include "ds_codec.h"
#include "ds_reason.h"
#include "ds_registry.h"

#define DS_SCHEMA_ID_DECLARATION_V1 1
#define DS_SCHEMA_ID_DECLARATION_V2 3
#define DS_SCHEMA_ID_TOTAL_V1 5

typedef struct ds_schemas ds_schemas_t;
struct ds_config;

/* Opens the schema sources named by the configuration: schema.dir, and
 * schema.registry.* when schema.registry.url is set (timeout, retries with
 * a backoff of 100 ms doubling up to 1 s, basic auth, negative TTL). The
 * pipeline's entry point. */
ds_schemas_t *ds_schemas_open(const struct ds_config *cfg, char *errstr, size_t errstr_size);

/* Loads the local registry directory only. */
ds_schemas_t *ds_schemas_load(const char *dir, char *errstr, size_t errstr_size);

/* schema.dir plus a registry with an explicit client configuration (rc may
 * be NULL: none). ds_schemas_open() calls this; tests use it for short
 * timeouts and backoffs. */
ds_schemas_t *ds_schemas_open_registry(const char *dir, const ds_registry_conf_t *rc, int64_t negative_ttl_ms,
                                       char *errstr, size_t errstr_size);
void ds_schemas_destroy(ds_schemas_t *s);

/* Decoder for messages written with schema `id`. On NULL, *why says
 * UNKNOWN_SCHEMA (not in schema.dir, and the registry - if any - answered
 * 404), INCOMPATIBLE_SCHEMA (not readable as a Declaration), or
 * REGISTRY_UNAVAILABLE. May block on the registry (see above). */
const ds_codec_t *ds_schemas_codec(const ds_schemas_t *s, uint32_t id, ds_dlq_reason_t *why);

/* What a message's framing says: the decoder for its writer schema and
 * where its Avro body starts. */
typedef struct ds_resolved {
        const ds_codec_t *codec;
        const uint8_t *body;
        size_t body_len;
        /* the wire header's schema id; for single-object encoding, the
         * schema.dir id of the schema whose fingerprint matched; -1 when the
         * framing could not be read or the fingerprint is unknown */
        int64_t schema_id;
} ds_resolved_t;

/* Reads a message's framing and finds its decoder. Returns DS_DLQ_NONE, or
 * EMPTY, SHORT_HEADER, BAD_MAGIC, UNKNOWN_SCHEMA, INCOMPATIBLE_SCHEMA,
 * REGISTRY_UNAVAILABLE. @locality any thread. */
ds_dlq_reason_t ds_schemas_resolve(const ds_schemas_t *s, const uint8_t *msg, size_t len, ds_resolved_t *out);

/* Parsed schema for id (borrowed, lives as long as s), or NULL when the id
 * is not known (yet) or could not be resolved. Does not ask the registry. */
avro_schema_t ds_schemas_get(const ds_schemas_t *s, uint32_t id);
const ds_reader_t *ds_schemas_reader(const ds_schemas_t *s);
/* Why schema id could not be compiled (empty if it was), for logs. */
const char *ds_schemas_note(const ds_schemas_t *s, uint32_t id);

/* CRC-64-AVRO fingerprint of schema.dir's schema `id` (single-object
 * encoding). Returns 0, or -1 when id is not a local schema. */
int ds_schemas_fingerprint(const ds_schemas_t *s, uint32_t id, uint64_t *fp);

/* HTTP requests made to the registry so far (0 without one). */
uint64_t ds_schemas_registry_requests(const ds_schemas_t *s);

/* Reads a whole file into a NUL-terminated malloc'd buffer (caller frees). */
char *ds_read_file(const char *path, size_t *len, char *errstr, size_t errstr_size);

#endif
