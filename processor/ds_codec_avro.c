/*
 * ds_codec_avro.c - Avro C generic decoding into ds_decl_t (reference).
 *
 * Field positions in the reader record are looked up once at creation; per
 * message the value is reset (no allocation once warmed up, as STYLE.md
 * notes), read, and copied field by field. Error codes from Avro C are mapped
 * to reasons without avro_strerror(), which is not thread-safe.
 */
#include "ds_codec_avro.h"
#include "ds_common.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t avro_mu = PTHREAD_MUTEX_INITIALIZER;

void ds_avro_lock(void) {
        pthread_mutex_lock(&avro_mu);
}

void ds_avro_unlock(void) {
        pthread_mutex_unlock(&avro_mu);
}

enum { F_ID, F_VERSION, F_KIND, F_AT, F_GATE, F_OFFICE, F_TYPE, F_FLOW, F_TAX, F_CHANNEL, F_PLATE, F_ITEMS,
       F_CONTAINERS, F_CURRENCY, F__CNT };
#define F_FIRST_OPTIONAL F_CONTAINERS /* v2 fields: read when the reader schema has them (as ds_codec.c) */
enum { IF_HS, IF_DESC, IF_QTY, IF_UNIT, IF_WEIGHT, IF_VALUE, IF_ORIGIN, IF__CNT };

static const char *const fnames[F__CNT] = {"declaration_id", "version", "kind", "declared_at",
                                            "gate_code", "customs_office", "type_code", "flow",
                                            "declarant_tax_id", "channel", "vehicle_plate", "items",
                                            "container_count", "invoice_currency"};
static const char *const ifnames[IF__CNT] = {"hs_code", "description", "quantity", "unit",
                                              "gross_weight_g", "customs_value_usd_cents", "origin_country"};

struct ds_avro_decoder {
        avro_schema_t reader_schema, writer_schema;
        avro_value_iface_t *reader_iface;
        avro_value_iface_t *resolver_iface; /* NULL when writer == reader */
        avro_value_t value;                 /* reader-shaped value */
        avro_value_t wvalue;                /* resolved writer wrapping value */
        avro_reader_t rd;
        int fidx[F__CNT];
        int ifidx[IF__CNT];
        int nsym[F__CNT]; /* enum symbol counts for F_KIND, F_FLOW, F_CHANNEL */
};

static void decoder_destroy(ds_avro_decoder_t *d);

static ds_avro_decoder_t *decoder_new(avro_schema_t reader, avro_schema_t writer, char *errstr, size_t sz) {
        ds_avro_decoder_t *d = calloc(1, sizeof(*d));
        if (!d) {
                ds_err(errstr, sz, "out of memory");
                return NULL;
        }
        d->reader_schema = avro_schema_incref(reader);
        d->writer_schema = avro_schema_incref(writer);
        for (int i = 0; i < F__CNT; i++) {
                d->fidx[i] = avro_schema_record_field_get_index(reader, fnames[i]);
                if (d->fidx[i] < 0 && i < F_FIRST_OPTIONAL) {
                        ds_err(errstr, sz, "reader schema lacks %s", fnames[i]);
                        goto fail;
                }
        }
        avro_schema_t items = avro_schema_record_field_get(reader, "items");
        avro_schema_t item = avro_schema_array_items(items);
        for (int i = 0; i < IF__CNT; i++) {
                d->ifidx[i] = avro_schema_record_field_get_index(item, ifnames[i]);
                if (d->ifidx[i] < 0) {
                        ds_err(errstr, sz, "reader schema lacks Item.%s", ifnames[i]);
                        goto fail;
                }
        }
        d->nsym[F_KIND] = avro_schema_enum_number_of_symbols(avro_schema_record_field_get(reader, "kind"));
        d->nsym[F_FLOW] = avro_schema_enum_number_of_symbols(avro_schema_record_field_get(reader, "flow"));
        d->nsym[F_CHANNEL] = avro_schema_enum_number_of_symbols(avro_schema_record_field_get(reader, "channel"));

        d->reader_iface = avro_generic_class_from_schema(reader);
        if (!d->reader_iface || avro_generic_value_new(d->reader_iface, &d->value)) {
                ds_err(errstr, sz, "Avro C: cannot create a value for the reader schema");
                goto fail;
        }
        if (!avro_schema_equal(reader, writer)) {
                d->resolver_iface = avro_resolved_writer_new(writer, reader);
                if (!d->resolver_iface) {
                        ds_err(errstr, sz, "Avro C cannot resolve the writer schema against the reader schema");
                        goto fail;
                }
                if (avro_resolved_writer_new_value(d->resolver_iface, &d->wvalue)) {
                        ds_err(errstr, sz, "Avro C: cannot create a resolved writer value");
                        goto fail;
                }
                avro_resolved_writer_set_dest(&d->wvalue, &d->value);
        }
        d->rd = avro_reader_memory(NULL, 0);
        if (!d->rd) {
                ds_err(errstr, sz, "Avro C: cannot create a memory reader");
                goto fail;
        }
        return d;
fail:
        decoder_destroy(d);
        return NULL;
}

static void decoder_destroy(ds_avro_decoder_t *d) {
        if (!d)
                return;
        if (d->rd)
                avro_reader_free(d->rd);
        if (d->resolver_iface) {
                if (d->wvalue.self)
                        avro_value_decref(&d->wvalue);
                avro_value_iface_decref(d->resolver_iface);
        }
        if (d->reader_iface) {
                if (d->value.self)
                        avro_value_decref(&d->value);
                avro_value_iface_decref(d->reader_iface);
        }
        avro_schema_decref(d->reader_schema);
        avro_schema_decref(d->writer_schema);
        free(d);
}

static ds_dlq_reason_t map_err(int rc) {
        return rc == ENOSPC ? DS_DLQ_TRUNCATED : DS_DLQ_MALFORMED;
}

static int get_str(avro_value_t *rec, int idx, ds_str_t *out) {
        avro_value_t v;
        const char *p;
        size_t size;
        if (avro_value_get_by_index(rec, (size_t)idx, &v, NULL))
                return -1;
        avro_type_t t = avro_value_get_type(&v);
        if (t == AVRO_BYTES) {
                const void *b;
                if (avro_value_get_bytes(&v, &b, &size))
                        return -1;
                *out = (ds_str_t){(const char *)b, (uint32_t)size};
                return 0;
        }
        if (avro_value_get_string(&v, &p, &size))
                return -1;
        *out = (ds_str_t){p, size ? (uint32_t)(size - 1) : 0}; /* size counts the NUL */
        return 0;
}

static int get_enum(avro_value_t *rec, int idx, int nsym, uint8_t *out) {
        avro_value_t v;
        int e;
        if (avro_value_get_by_index(rec, (size_t)idx, &v, NULL) || avro_value_get_enum(&v, &e))
                return -1;
        if (e < 0 || e >= nsym)
                return -1;
        *out = (uint8_t)e;
        return 0;
}

static ds_dlq_reason_t decode(ds_avro_decoder_t *d, const uint8_t *buf, size_t len, ds_decl_t *out) {
        avro_reader_memory_set_source(d->rd, (const char *)buf, (int64_t)len);
        avro_value_reset(&d->value);
        int rc = avro_value_read(d->rd, d->resolver_iface ? &d->wvalue : &d->value);
        if (rc)
                return map_err(rc);
        char extra;
        if (avro_read(d->rd, &extra, 1) == 0)
                return DS_DLQ_TRAILING_BYTES;

        avro_value_t *rec = &d->value, v, items;
        memset(out, 0, offsetof(ds_decl_t, items));
        if (get_str(rec, d->fidx[F_ID], &out->declaration_id) || get_str(rec, d->fidx[F_GATE], &out->gate_code) ||
            get_str(rec, d->fidx[F_OFFICE], &out->customs_office) ||
            get_str(rec, d->fidx[F_TYPE], &out->type_code) ||
            get_str(rec, d->fidx[F_TAX], &out->declarant_tax_id))
                return DS_DLQ_MALFORMED;
        if (avro_value_get_by_index(rec, (size_t)d->fidx[F_VERSION], &v, NULL) ||
            avro_value_get_int(&v, &out->version))
                return DS_DLQ_MALFORMED;
        if (avro_value_get_by_index(rec, (size_t)d->fidx[F_AT], &v, NULL) ||
            avro_value_get_long(&v, &out->declared_at))
                return DS_DLQ_MALFORMED;
        if (get_enum(rec, d->fidx[F_KIND], d->nsym[F_KIND], &out->kind) ||
            get_enum(rec, d->fidx[F_FLOW], d->nsym[F_FLOW], &out->flow) ||
            get_enum(rec, d->fidx[F_CHANNEL], d->nsym[F_CHANNEL], &out->channel))
                return DS_DLQ_MALFORMED;

        if (d->fidx[F_CONTAINERS] >= 0 &&
            (avro_value_get_by_index(rec, (size_t)d->fidx[F_CONTAINERS], &v, NULL) ||
             avro_value_get_int(&v, &out->container_count)))
                return DS_DLQ_MALFORMED;
        if (d->fidx[F_CURRENCY] >= 0 && get_str(rec, d->fidx[F_CURRENCY], &out->invoice_currency))
                return DS_DLQ_MALFORMED;

        avro_value_t plate, branch;
        int disc;
        if (avro_value_get_by_index(rec, (size_t)d->fidx[F_PLATE], &plate, NULL) ||
            avro_value_get_discriminant(&plate, &disc) || avro_value_get_current_branch(&plate, &branch))
                return DS_DLQ_MALFORMED;
        if (avro_value_get_type(&branch) == AVRO_NULL) {
                out->vehicle_plate = (ds_str_t){NULL, 0};
        } else {
                const char *p;
                size_t size;
                if (avro_value_get_string(&branch, &p, &size))
                        return DS_DLQ_MALFORMED;
                out->vehicle_plate = (ds_str_t){p, size ? (uint32_t)(size - 1) : 0};
        }

        size_t n;
        if (avro_value_get_by_index(rec, (size_t)d->fidx[F_ITEMS], &items, NULL) || avro_value_get_size(&items, &n))
                return DS_DLQ_MALFORMED;
        if (n > DS_MAX_ITEMS)
                return DS_DLQ_TOO_MANY_ITEMS;
        out->item_cnt = (uint32_t)n;
        for (size_t i = 0; i < n; i++) {
                avro_value_t it, f;
                ds_item_t *o = &out->items[i];
                if (avro_value_get_by_index(&items, i, &it, NULL))
                        return DS_DLQ_MALFORMED;
                if (get_str(&it, d->ifidx[IF_HS], &o->hs_code) || get_str(&it, d->ifidx[IF_DESC], &o->description) ||
                    get_str(&it, d->ifidx[IF_UNIT], &o->unit) ||
                    get_str(&it, d->ifidx[IF_ORIGIN], &o->origin_country))
                        return DS_DLQ_MALFORMED;
                if (avro_value_get_by_index(&it, (size_t)d->ifidx[IF_QTY], &f, NULL) ||
                    avro_value_get_double(&f, &o->quantity))
                        return DS_DLQ_MALFORMED;
                if (avro_value_get_by_index(&it, (size_t)d->ifidx[IF_WEIGHT], &f, NULL) ||
                    avro_value_get_long(&f, &o->gross_weight_g))
                        return DS_DLQ_MALFORMED;
                if (avro_value_get_by_index(&it, (size_t)d->ifidx[IF_VALUE], &f, NULL) ||
                    avro_value_get_long(&f, &o->customs_value_usd_cents))
                        return DS_DLQ_MALFORMED;
        }
        return DS_DLQ_NONE;
}

/* The public calls: the same, each holding the lock while in Avro C. */

ds_avro_decoder_t *ds_avro_decoder_new(avro_schema_t reader, avro_schema_t writer, char *errstr, size_t sz) {
        ds_avro_lock();
        ds_avro_decoder_t *d = decoder_new(reader, writer, errstr, sz);
        ds_avro_unlock();
        return d;
}

void ds_avro_decoder_destroy(ds_avro_decoder_t *d) {
        ds_avro_lock();
        decoder_destroy(d);
        ds_avro_unlock();
}

ds_dlq_reason_t ds_avro_decode(ds_avro_decoder_t *d, const uint8_t *buf, size_t len, ds_decl_t *out) {
        ds_avro_lock();
        ds_dlq_reason_t r = decode(d, buf, len, out);
        ds_avro_unlock();
        return r;
}
