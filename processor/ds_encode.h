/*
 * ds_encode.h - Avro binary writers for declstream's own records.
 *
 * ds_encode_declaration() writes vn.customs.Declaration (schema id 1): the
 * generator uses it, and the tests check with Avro C that what it writes
 * decodes back to the same values. ds_encode_total() writes vn.customs.Total
 * version 2 (schema id 2) and ds_encode_top() vn.customs.TopHeadings (id 4)
 * for the publisher. Both append to a reusable ds_buf_t: no
 * allocation once the buffer has grown. ds_total_key() formats the message
 * key `<DIMENSION>|<key>|<WINDOW>|<window_start_ms>`.
 *
 * @locality any thread, each with its own buffer.
 */
#ifndef DS_ENCODE_H
#define DS_ENCODE_H

#include "ds_decl.h"
#include "ds_fmt.h"
#include "ds_rows.h"
#include "ds_wire.h"

/* Appends the Avro body (no wire header) of d. */
void ds_encode_declaration(ds_buf_t *b, const ds_decl_t *d);

#define DS_SCHEMA_ID_TOTAL 2
#define DS_SCHEMA_ID_TOP_HEADINGS 4

/* Appends the Avro body of a Total (v2) row. key: gate code or heading digits. */
void ds_encode_total(ds_buf_t *b, ds_dim_t dim, const char *key, ds_window_t win, int64_t window_start,
                     const ds_measures_t *m, int64_t distinct_declarants, int64_t distinct_vehicles,
                     int64_t updated_at);

/* Appends the Avro body of a TopHeadings list (entries best first). */
struct ds_top_entry;
void ds_encode_top(ds_buf_t *b, const char *gate, int64_t day, const struct ds_top_entry *e, int n,
                   int heading_digits, int64_t updated_at);

/* Text of a row's key part: the gate code, the heading zero-padded to
 * heading_digits, or gate|heading for a GATE_HEADING cell. Returns the
 * length of the whole text (snprintf's rule; buf >= 28 bytes holds any). */
int ds_row_keytext(ds_rowkey_t k, int heading_digits, char *buf, size_t size);
/* The same text appended to f: gate code, heading, or gate|heading for a
 * GATE_HEADING cell; "?" for a gate index outside the table. */
void ds_fmt_keytext(ds_fmt_t *f, ds_rowkey_t k, int heading_digits);

/* Message key of a row: e.g. "GATE|MONGCAI|TOTAL|0". Returns its length. */
int ds_total_key(ds_rowkey_t k, int heading_digits, char *buf, size_t size);

const char *ds_dim_name(ds_dim_t d);
const char *ds_window_name(ds_window_t w);

#endif
