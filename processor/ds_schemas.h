/*
 * ds_schemas.h - schema ids -> Avro schemas -> decoders.
 *
 * Loads `<schema.dir>/registry.properties` (`id = file.avsc`), parses every
 * schema with Avro C, takes `customs_declaration.avsc` as the reader schema,
 * and compiles a ds_codec_t for every registered schema that is a
 * compatible vn.customs.Declaration. Lookups by the id of a message's wire
 * header then cost one array index (ids below 4096) or a short scan.
 *
 * @locality immutable after ds_schemas_load(): any thread may look up.
 */
#ifndef DS_SCHEMAS_H
#define DS_SCHEMAS_H

#include <avro.h>
#include <stdint.h>

#include "ds_codec.h"
#include "ds_reason.h"

#define DS_SCHEMA_ID_DECLARATION_V1 1
#define DS_SCHEMA_ID_TOTAL_V1 5

typedef struct ds_schemas ds_schemas_t;
struct ds_config;

/* Opens the schema sources named by the configuration (schema.dir, and
 * schema.registry.* when set). The pipeline's entry point. */
ds_schemas_t *ds_schemas_open(const struct ds_config *cfg, char *errstr, size_t errstr_size);

/* Loads the local registry directory only. */
ds_schemas_t *ds_schemas_load(const char *dir, char *errstr, size_t errstr_size);
void ds_schemas_destroy(ds_schemas_t *s);

/* Decoder for messages written with schema `id`. On NULL, *why says
 * UNKNOWN_SCHEMA (id not registered) or INCOMPATIBLE_SCHEMA (registered but
 * not readable as a Declaration). */
const ds_codec_t *ds_schemas_codec(const ds_schemas_t *s, uint32_t id, ds_dlq_reason_t *why);

/* What a message's framing says: the decoder for its writer schema and
 * where its Avro body starts. */
typedef struct ds_resolved {
        const ds_codec_t *codec;
        const uint8_t *body;
        size_t body_len;
        int64_t schema_id; /* -1 when the framing could not be read */
} ds_resolved_t;

/* Reads a message's framing (Confluent wire header) and finds its decoder.
 * Returns DS_DLQ_NONE, or EMPTY, SHORT_HEADER, BAD_MAGIC, UNKNOWN_SCHEMA,
 * INCOMPATIBLE_SCHEMA. @locality any thread. */
ds_dlq_reason_t ds_schemas_resolve(const ds_schemas_t *s, const uint8_t *msg, size_t len, ds_resolved_t *out);

/* Parsed schema for id (borrowed), or NULL. */
avro_schema_t ds_schemas_get(const ds_schemas_t *s, uint32_t id);
const ds_reader_t *ds_schemas_reader(const ds_schemas_t *s);
/* Why schema id could not be compiled (empty if it was), for start-up logs. */
const char *ds_schemas_note(const ds_schemas_t *s, uint32_t id);

/* Reads a whole file into a NUL-terminated malloc'd buffer (caller frees). */
char *ds_read_file(const char *path, size_t *len, char *errstr, size_t errstr_size);

#endif
