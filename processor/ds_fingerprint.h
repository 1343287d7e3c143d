/*
 * ds_fingerprint.h - Avro Parsing Canonical Form and CRC-64-AVRO fingerprints.
 *
 * Avro single-object encoding frames a record as 0xC3 0x01, then the 8-byte
 * little-endian CRC-64-AVRO (Rabin) fingerprint of the writer schema's Parsing
 * Canonical Form, then the Avro binary body. ds_schemas computes the
 * fingerprint of every local schema at start-up and accepts such messages
 * when the fingerprint names one of them.
 *
 * The Parsing Canonical Form (Avro specification, "Parsing Canonical Form for
 * Schemas") is computed here from the schema's JSON text with Jansson, not
 * from Avro C's parsed schema: the transformation is defined on JSON
 * (PRIMITIVES, FULLNAMES, STRIP, ORDER, STRINGS, INTEGERS, WHITESPACE), and
 * doing it on the JSON keeps it independent of Avro C's parser (which, e.g.,
 * refuses the empty union that the specification's test vectors include).
 * tests/test_evolution.c checks the result against the specification's
 * published vectors (share/test/data/schema-tests.txt in apache/avro).
 *
 * @locality any thread; ds_schema_canonical() allocates, the CRC does not.
 */
#ifndef DS_FINGERPRINT_H
#define DS_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>

/* Single-object encoding: marker bytes and header size (marker + fingerprint). */
#define DS_SOE_MARKER0 0xC3
#define DS_SOE_MARKER1 0x01
#define DS_SOE_HEADER 10

/* CRC-64-AVRO of n bytes (the specification's Rabin fingerprint, starting
 * from its EMPTY value 0xc15d213aa4d7a795). */
uint64_t ds_crc64_avro(const void *p, size_t n);
/* Continues a CRC-64-AVRO: ds_crc64_avro(a + b) == update(ds_crc64_avro(a), b). */
uint64_t ds_crc64_avro_update(uint64_t fp, const void *p, size_t n);

/* The Parsing Canonical Form of a schema given as JSON text: a malloc'd
 * NUL-terminated string (caller frees), or NULL with errstr filled when the
 * text is not JSON or not shaped like an Avro schema. Nesting deeper than
 * 1024 levels is refused. */
char *ds_schema_canonical(const char *json, size_t len, char *errstr, size_t errstr_size);

/* ds_crc64_avro(ds_schema_canonical(json)). Returns 0, or -1 with errstr. */
int ds_schema_fingerprint(const char *json, size_t len, uint64_t *fp, char *errstr, size_t errstr_size);

#endif
