/*
 * ds_codec.h - Avro binary -> ds_decl_t, specialised to a writer schema.
 *
 * Apache Avro C's generic reader costs ~1 us and 15-20 allocations per
 * declaration and leaks on truncated strings (FACTS.md). declstream therefore
 * parses schemas with Avro C but decodes with its own plan:
 *
 *   ds_reader_t  the reader contract: the fields of ds_decl_t / ds_item_t, by
 *                name, with the defaults taken from the reader schema's JSON
 *                (Avro C cannot report defaults). The v2 fields
 *                container_count and invoice_currency are optional: read
 *                when the reader schema has them, else left 0 / {NULL, 0}.
 *   ds_codec_t   a plan compiled once per writer schema against the reader:
 *                one op per writer field, saying where the value goes (or how
 *                to skip it), with Avro's resolution rules applied at compile
 *                time - fields matched by name, reordered, added (default),
 *                removed (skipped), int->long->float->double promotion,
 *                string<->bytes, enum symbols mapped by name (with the reader
 *                enum's default for unknown symbols), unions on either side.
 *
 * Decoding runs the ops over the bytes with bounds checks on every read; it
 * allocates nothing and never reads outside [buf, buf+len). Strings in the
 * result point into buf. ds_codec_avro.h is the Avro C reference the
 * differential tests compare against.
 *
 * @locality a codec is immutable after ds_codec_new(): any number of threads
 * may decode with one codec concurrently, each into its own ds_decl_t.
 */
#ifndef DS_CODEC_H
#define DS_CODEC_H

#include <avro.h>
#include <stddef.h>
#include <stdint.h>

#include "ds_decl.h"
#include "ds_reason.h"

typedef struct ds_reader ds_reader_t;
typedef struct ds_codec ds_codec_t;

/* Parses the reader schema (JSON text of vn.customs.Declaration) and checks
 * that it carries every field ds_decl_t needs, with compatible types.
 * Returns NULL and fills errstr on error. Free with ds_reader_destroy(). */
ds_reader_t *ds_reader_new(const char *json, size_t len, char *errstr, size_t errstr_size);
void ds_reader_destroy(ds_reader_t *r);
/* The reader schema as parsed by Avro C (borrowed, valid while r lives). */
avro_schema_t ds_reader_schema(const ds_reader_t *r);

/* Compiles a plan to read data written with `writer` into the reader's
 * fields. Fails (NULL, errstr says which field and why) when the schemas are
 * not compatible under Avro's resolution rules. The codec takes its own
 * reference on writer and keeps a pointer to reader (which must outlive it). */
ds_codec_t *ds_codec_new(const ds_reader_t *reader, avro_schema_t writer, char *errstr, size_t errstr_size);
void ds_codec_destroy(ds_codec_t *c);

/* Decodes one Avro binary record (no wire header) into out. Returns
 * DS_DLQ_NONE on success, or TRUNCATED, MALFORMED, TRAILING_BYTES,
 * TOO_MANY_ITEMS, INCOMPATIBLE_SCHEMA (a union branch or enum symbol the reader
 * cannot take). On error *out is partly written and must not be used. */
ds_dlq_reason_t ds_codec_decode(const ds_codec_t *c, const uint8_t *buf, size_t len, ds_decl_t *out);

/* Whether the writer schema has the reader's own layout (v1, or v1 with
 * fields added at the end, as v2), which ds_codec_decode() reads with
 * straight-line code instead of the op interpreter - same bytes accepted,
 * same values, same reasons. */
int ds_codec_is_native(const ds_codec_t *c);
/* Tests: decode with the op interpreter only (generic != 0). Call before
 * the codec is shared between threads. */
void ds_codec_set_generic(ds_codec_t *c, int generic);

#endif
