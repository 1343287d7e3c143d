/*
 * ds_testschemas.h - helpers shared by test_evolution.c, test_registry.c and
 * test_hostile.c: sample declarations, v1/v2 and single-object encodings,
 * writer schemas derived from the shipped ones, and the test registry server
 * (tests/registry_server.py).
 */
#ifndef DS_TESTSCHEMAS_H
#define DS_TESTSCHEMAS_H

#include <stddef.h>
#include <stdint.h>

#include "ds_decl.h"
#include "ds_schemas.h"
#include "ds_testutil.h"
#include "ds_wire.h"

#define DST_SCHEMA_DIR DS_SOURCE_DIR "/schemas"
#define DST_V1 DST_SCHEMA_DIR "/customs_declaration.avsc"
#define DST_V2 DST_SCHEMA_DIR "/customs_declaration.v2.avsc"

/* A valid declaration (id "300000000042", gate MONGCAI, 2 items, a plate);
 * seed varies the id's last digits, the values and weights. Strings point to
 * static storage. */
void dst_sample(ds_decl_t *d, int seed);

/* Appends the Avro body of d as schema v1 (version 1) or v2 (version 2: v1's
 * fields, then container_count and invoice_currency from d; a NULL currency
 * is written as "USD"). */
void dst_body(ds_buf_t *b, const ds_decl_t *d, int version);

/* Confluent framing: header(schema_id) + body(version). Resets b first. */
void dst_framed(ds_buf_t *b, const ds_decl_t *d, int version, uint32_t schema_id);

/* Single-object encoding: C3 01 + fp (little-endian) + body(version). */
void dst_single_object(ds_buf_t *b, const ds_decl_t *d, int version, uint64_t fp);

/* Field-by-field equality of the v1 fields (and the v2 ones when v2 is set),
 * with a message naming the first difference in why. Returns 1 if equal. */
int dst_decl_equal(const ds_decl_t *a, const ds_decl_t *b, int v2, char *why, size_t size);

/* Reads a file into a malloc'd string (aborts the test on failure). */
char *dst_read(const char *path, size_t *len);

/* Writes text to path; returns 0 or -1. */
int dst_write(const char *path, const char *text);

/* A text copy of s with the first occurrence of from replaced by to
 * (malloc'd; NULL if from does not occur). */
char *dst_replace(const char *s, const char *from, const char *to);

/* The test registry: writes spec (JSON text) to dir/registry.json and starts
 * tests/registry_server.py on it; fills the base URL ("http://127.0.0.1:N").
 * Returns 0 or -1. Stop with ds_proc_kill(p, SIGTERM) + ds_proc_wait. */
int dst_registry_start(ds_proc_t *p, const char *dir, const char *spec, char *url, size_t size);
void dst_registry_stop(ds_proc_t *p);

/* Requests the server has seen for GET /schemas/ids/<id> (-1 on error). */
int dst_registry_count(const char *url, uint32_t id);

#endif
