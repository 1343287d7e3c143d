/*
 * ds_codec_avro.h - the Apache Avro C reference decoder.
 *
 * Decodes the same bytes into the same ds_decl_t as ds_codec.h, through Avro
 * C's generic value API (avro_value_read into a reused generic value, with a
 * resolved writer when the writer schema differs from the reader's). It is
 * the yardstick: tests/test_codec.c, tests/test_evolution.c and
 * tests/fuzz_diff.c check that both decoders accept and reject the same bytes
 * and produce the same values, and bench/ measures both. The v2 fields are
 * read when the reader schema has them, as in ds_codec.
 *
 * Known limits of Avro C 1.11.1 (FACTS.md, README "Schema evolution"): it
 * cannot fill reader defaults (ds_avro_decoder_new fails when the writer
 * lacks a reader field); it resolves enums by position, not by symbol name;
 * it refuses string <-> bytes; it truncates an enum index to int; and it
 * leaks the string buffer of a record truncated inside a string. declstream
 * never feeds it untrusted bytes unchecked: with decoder=avro-c the processor
 * runs ds_codec_decode first and only hands Avro C bytes that decoded cleanly.
 *
 * @locality one decoder per thread (Avro C values and readers are not
 * thread-safe); strings in the result live until the next decode. Decoders
 * of different threads take turns (ds_avro_lock(), below).
 */
#ifndef DS_CODEC_AVRO_H
#define DS_CODEC_AVRO_H

#include <avro.h>
#include <stddef.h>
#include <stdint.h>

#include "ds_decl.h"
#include "ds_reason.h"

typedef struct ds_avro_decoder ds_avro_decoder_t;

/* reader: the reader schema (vn.customs.Declaration); writer: the schema the
 * bytes were written with. Takes its own references. */
ds_avro_decoder_t *ds_avro_decoder_new(avro_schema_t reader, avro_schema_t writer, char *errstr,
                                       size_t errstr_size);
void ds_avro_decoder_destroy(ds_avro_decoder_t *d);

/* Same contract as ds_codec_decode(). Holds ds_avro_lock() while in Avro C. */
ds_dlq_reason_t ds_avro_decode(ds_avro_decoder_t *d, const uint8_t *buf, size_t len, ds_decl_t *out);

/* Avro C keeps its last error message in process-wide buffers (Debian's
 * libavro has no thread-local storage) and writes them on every failure -
 * here on every message, since the check for trailing bytes is a read that
 * fails at the end of the buffer. Two threads failing at once race on them:
 * AddressSanitizer caught avro_prefix_error copying a buffer onto itself
 * (two workers with decoder=avro-c, test_integration). So every use of Avro
 * C that can run beside another thread holds this lock: this decoder (a lock
 * per message - it is the reference, not the hot path), ds_live's reading of
 * the output topics, and ds_schemas' compiling of a schema. It is a leaf:
 * nothing else is locked while it is held. */
void ds_avro_lock(void);
void ds_avro_unlock(void);

#endif
