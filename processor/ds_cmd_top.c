/*
 * ds_cmd_top.c - `declstream top`: a live table of the published totals.
 *
 * Reads the output topic from its beginning with its own consumer (no group:
 * every partition assigned, so it never disturbs the processor's group),
 * keeps the latest row per key, and redraws a per-gate table and the top
 * headings by customs value every interval. Rows are decoded with Apache
 * Avro C by field name, so any registered version of vn.customs.Total reads.
 */
#include "ds_cmd.h"
#include "ds_common.h"
#include "ds_domain.h"
#include "ds_kafka.h"
#include "ds_log.h"
#include "ds_schemas.h"
#include "ds_signal.h"
#include "ds_wire.h"

#include <avro.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef DS_SCHEMA_DIR
#define DS_SCHEMA_DIR "schemas"
#endif

#define MAX_ROWS 4096

typedef struct row {
        char dim[12];
        char key[24];
        int64_t m[8];
        int64_t updated_at;
} row_t;

typedef struct top {
        ds_schemas_t *schemas;
        avro_value_iface_t *ifaces[16];
        uint32_t iface_ids[16];
        int nifaces;
        row_t rows[MAX_ROWS];
        int nrows;
        uint64_t messages, undecodable;
} top_t;

static const char *const measure_fields[8] = {"declarations",           "items",
                                              "customs_value_usd_cents", "gross_weight_g",
                                              "export_value_usd_cents", "import_value_usd_cents",
                                              "transit_value_usd_cents", "border_resident_value_usd_cents"};

static void usage(FILE *out) {
        fprintf(out, "usage: declstream top -b SERVERS [--topic TOPIC] [--interval-ms MS] [--once] [-X prop=value]\n"
                     "\n"
                     "Shows the latest TOTAL rows of the output topic as a per-gate table and the top headings by\n"
                     "customs value, refreshed every interval (default 1000 ms), until Ctrl-C.\n"
                     "  --once      read the topic to its end, print the table once and exit\n"
                     "  --topic     output topic (default customs.totals)\n"
                     "  --schema-dir DIR  schema registry directory (default: the built-in schemas/)\n");
}

static avro_value_iface_t *iface_for(top_t *t, uint32_t id) {
        for (int i = 0; i < t->nifaces; i++)
                if (t->iface_ids[i] == id)
                        return t->ifaces[i];
        avro_schema_t s = ds_schemas_get(t->schemas, id);
        if (!s || t->nifaces == 16)
                return NULL;
        avro_value_iface_t *ifc = avro_generic_class_from_schema(s);
        t->iface_ids[t->nifaces] = id;
        t->ifaces[t->nifaces++] = ifc;
        return ifc;
}

static void consume(top_t *t, const rd_kafka_message_t *m) {
        uint32_t id;
        const uint8_t *body;
        size_t blen;
        t->messages++;
        avro_value_iface_t *ifc;
        if (ds_wire_parse(m->payload, m->len, &id, &body, &blen) || !(ifc = iface_for(t, id))) {
                t->undecodable++;
                return;
        }
        avro_value_t v, f;
        avro_generic_value_new(ifc, &v);
        avro_reader_t r = avro_reader_memory((const char *)body, (int64_t)blen);
        int bad = avro_value_read(r, &v);
        avro_reader_free(r);
        int win = -1, dim = -1;
        const char *key = NULL;
        size_t klen;
        if (!bad)
                bad = avro_value_get_by_name(&v, "window", &f, NULL) || avro_value_get_enum(&f, &win) ||
                      avro_value_get_by_name(&v, "dimension", &f, NULL) || avro_value_get_enum(&f, &dim) ||
                      avro_value_get_by_name(&v, "key", &f, NULL) || avro_value_get_string(&f, &key, &klen);
        if (bad) {
                t->undecodable++;
                avro_value_decref(&v);
                return;
        }
        if (win != 0) { /* TOTAL rows only */
                avro_value_decref(&v);
                return;
        }
        const char *dimname = dim == 0 ? "GATE" : "COMMODITY";
        row_t *row = NULL;
        for (int i = 0; i < t->nrows && !row; i++)
                if (!strcmp(t->rows[i].dim, dimname) && !strcmp(t->rows[i].key, key))
                        row = &t->rows[i];
        if (!row && t->nrows < MAX_ROWS) {
                row = &t->rows[t->nrows++];
                snprintf(row->dim, sizeof(row->dim), "%s", dimname);
                snprintf(row->key, sizeof(row->key), "%s", key);
        }
        if (row) {
                for (int i = 0; i < 8; i++)
                        if (!avro_value_get_by_name(&v, measure_fields[i], &f, NULL))
                                avro_value_get_long(&f, &row->m[i]);
                if (!avro_value_get_by_name(&v, "updated_at", &f, NULL))
                        avro_value_get_long(&f, &row->updated_at);
        }
        avro_value_decref(&v);
}

/* Display width of UTF-8 text: one column per code point (Vietnamese
 * precomposed letters are single code points). */
static int utf8_width(const char *s) {
        int w = 0;
        for (; *s; s++)
                w += ((unsigned char)*s & 0xc0) != 0x80;
        return w;
}

static void print_padded(const char *s, int width) {
        int w = utf8_width(s);
        if (w <= width) {
                fputs(s, stdout);
                for (; w < width; w++)
                        fputc(' ', stdout);
                return;
        }
        /* cut at a code point boundary, leaving room for an ellipsis */
        int cols = 0;
        const char *p = s;
        while (*p && cols < width - 1) {
                p++;
                while (((unsigned char)*p & 0xc0) == 0x80)
                        p++;
                cols++;
        }
        fwrite(s, 1, (size_t)(p - s), stdout);
        fputs("…", stdout);
}

static const char *usd(int64_t cents, char *buf, size_t size) {
        double v = (double)cents / 100.0;
        if (v >= 1e9)
                snprintf(buf, size, "%.2fB", v / 1e9);
        else if (v >= 1e6)
                snprintf(buf, size, "%.2fM", v / 1e6);
        else if (v >= 1e3)
                snprintf(buf, size, "%.1fk", v / 1e3);
        else
                snprintf(buf, size, "%.0f", v);
        return buf;
}

static int cmp_value_desc(const void *a, const void *b) {
        const row_t *x = *(row_t *const *)a, *y = *(row_t *const *)b;
        return x->m[2] < y->m[2] ? 1 : x->m[2] > y->m[2] ? -1 : strcmp(x->key, y->key);
}

/* One gate's TOTAL row, added into sum. */
static void gate_line(const char *code, const char *name, const row_t *r, int64_t sum[8]) {
        char b[5][32];
        printf("%-13s ", code);
        print_padded(name, 34);
        printf(" %12" PRId64 " %8" PRId64 " %10s %11.1f %10s %10s %9s %9s\n", r->m[0], r->m[1], usd(r->m[2], b[0], 32),
               (double)r->m[3] / 1e6, usd(r->m[4], b[1], 32), usd(r->m[5], b[2], 32), usd(r->m[6], b[3], 32),
               usd(r->m[7], b[4], 32));
        for (int i = 0; i < 8; i++)
                sum[i] += r->m[i];
}

static void draw(top_t *t, int clear) {
        if (clear)
                fputs("\033[H\033[2J", stdout);
        char b[8][32];
        int64_t sum[8] = {0};
        printf("declstream top - latest TOTAL rows (%" PRIu64 " messages read)\n\n", t->messages);
        printf("%-13s %-34s %12s %8s %10s %11s %10s %10s %9s %9s\n", "GATE", "NAME", "DECLARATIONS", "ITEMS",
               "VALUE USD", "WEIGHT t", "EXPORT", "IMPORT", "TRANSIT", "BORDER");
        /* the gates known here in their order, then any other gate's row (a
         * processor with a gates.file), by code without a name */
        for (int g = 0; g < ds_gate_count(); g++) {
                const ds_gate_t *gt = ds_gate(g);
                for (int i = 0; i < t->nrows; i++)
                        if (!strcmp(t->rows[i].dim, "GATE") && !strcmp(t->rows[i].key, gt->code)) {
                                gate_line(gt->code, gt->name_vi, &t->rows[i], sum);
                                break;
                        }
        }
        for (int i = 0; i < t->nrows; i++) {
                const row_t *r = &t->rows[i];
                if (!strcmp(r->dim, "GATE") && ds_gate_lookup(r->key, (uint32_t)strlen(r->key)) < 0)
                        gate_line(r->key, "", r, sum);
        }
        printf("%-13s %-34s %12" PRId64 " %8" PRId64 " %10s %11.1f %10s %10s %9s %9s\n", "ALL", "", sum[0], sum[1],
               usd(sum[2], b[0], 32), (double)sum[3] / 1e6, usd(sum[4], b[1], 32), usd(sum[5], b[2], 32),
               usd(sum[6], b[3], 32), usd(sum[7], b[4], 32));

        row_t *heads[MAX_ROWS];
        int nh = 0;
        for (int i = 0; i < t->nrows; i++)
                if (!strcmp(t->rows[i].dim, "COMMODITY"))
                        heads[nh++] = &t->rows[i];
        qsort(heads, (size_t)nh, sizeof(*heads), cmp_value_desc);
        printf("\nTop headings by customs value (%d headings)\n", nh);
        printf("%-10s %12s %8s %10s %11s\n", "HEADING", "DECLARATIONS", "ITEMS", "VALUE USD", "WEIGHT t");
        for (int i = 0; i < nh && i < 10; i++)
                printf("%-10s %12" PRId64 " %8" PRId64 " %10s %11.1f\n", heads[i]->key, heads[i]->m[0], heads[i]->m[1],
                       usd(heads[i]->m[2], b[0], 32), (double)heads[i]->m[3] / 1e6);
        if (t->undecodable)
                printf("\n%" PRIu64 " messages could not be decoded\n", t->undecodable);
        fflush(stdout);
}

int ds_cmd_top(int argc, char **argv) {
        ds_argv_t a = {argc, 0, argv, "top"};
        const char *brokers = NULL, *topic = "customs.totals", *schema_dir = DS_SCHEMA_DIR, *v;
        int64_t interval = 1000;
        int once = 0;
        ds_kv_t props[64];
        int nprops = 0;
        while (a.i < argc) {
                int r;
                if (!strcmp(argv[a.i], "--help") || !strcmp(argv[a.i], "-h")) {
                        usage(stdout);
                        return 0;
                }
                if (!strcmp(argv[a.i], "--once")) {
                        once = 1;
                        a.i++;
                } else if ((r = ds_arg_value(&a, "-b", &v)) || (r = ds_arg_value(&a, "--brokers", &v))) {
                        if (r < 0)
                                return 2;
                        brokers = v;
                } else if ((r = ds_arg_value(&a, "--topic", &v))) {
                        if (r < 0)
                                return 2;
                        topic = v;
                } else if ((r = ds_arg_value(&a, "--schema-dir", &v))) {
                        if (r < 0)
                                return 2;
                        schema_dir = v;
                } else if ((r = ds_arg_value(&a, "--interval-ms", &v))) {
                        if (r < 0 || ds_arg_i64("top", "--interval-ms", v, 100, 3600000, &interval))
                                return 2;
                } else if ((r = ds_arg_value(&a, "-X", &v))) {
                        if (r < 0 || ds_arg_prop("top", v, props, &nprops, (int)DS_ARRAY_LEN(props)))
                                return 2;
                } else {
                        fprintf(stderr, "declstream top: unknown argument \"%s\" (see --help)\n", argv[a.i]);
                        return 2;
                }
        }
        if (!brokers) {
                fprintf(stderr, "declstream top: -b SERVERS is required\n");
                return 2;
        }
        char err[512];
        int rc = 0;
        top_t *t = calloc(1, sizeof(*t));
        if (!t)
                return 1;
        t->schemas = ds_schemas_load(schema_dir, err, sizeof(err));
        if (!t->schemas) {
                fprintf(stderr, "declstream top: %s\n", err);
                free(t);
                return 2;
        }
        /* no group: assign every partition from the beginning */
        const char *defaults[] = {"bootstrap.servers", brokers, "group.id", "declstream-top", "enable.auto.commit",
                                  "false", "enable.partition.eof", "true", "fetch.wait.max.ms", "100", NULL};
        rd_kafka_conf_t *conf = ds_kafka_conf(DS_KAFKA_CONSUMER, defaults, props, nprops, err, sizeof(err));
        for (int i = 0; i < nprops; i++)
                free(props[i].key);
        rd_kafka_t *rk = conf ? ds_kafka_new(DS_KAFKA_CONSUMER, conf, err, sizeof(err)) : NULL;
        if (!rk) {
                fprintf(stderr, "declstream top: %s\n", err);
                ds_schemas_destroy(t->schemas);
                free(t);
                return 2;
        }
        int np = ds_kafka_partition_count(rk, topic, 10000, err, sizeof(err));
        if (np < 0) {
                fprintf(stderr, "declstream top: %s\n", err);
                rc = 1;
                goto out;
        }
        rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(np);
        for (int p = 0; p < np; p++)
                rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, parts);
        rd_kafka_topic_partition_list_destroy(parts);

        int tty = isatty(STDOUT_FILENO), eofs = 0;
        int64_t next = ds_mono_ms() + interval;
        while (!ds_stop_requested()) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                if (m) {
                        if (!m->err)
                                consume(t, m);
                        else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                eofs++;
                        else
                                ds_log(DS_LOG_WARN, "top", "consume error", "error=\"%s\"",
                                       rd_kafka_message_errstr(m));
                        rd_kafka_message_destroy(m);
                }
                if (once) {
                        if (eofs >= np)
                                break;
                        continue;
                }
                if (ds_mono_ms() >= next) {
                        draw(t, tty);
                        next = ds_mono_ms() + interval;
                }
        }
        draw(t, 0);
out:
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        for (int i = 0; i < t->nifaces; i++)
                avro_value_iface_decref(t->ifaces[i]);
        ds_schemas_destroy(t->schemas);
        free(t);
        return rc;
}
