/*
 * ds_testschemas.c - see ds_testschemas.h.
 */
#include "ds_testschemas.h"
#include "ds_encode.h"
#include "ds_fingerprint.h"

#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S(lit) ((ds_str_t){lit, (uint32_t)(sizeof(lit) - 1)})

void dst_sample(ds_decl_t *d, int seed) {
        static char ids[1024][16];
        int slot = seed & 1023;
        snprintf(ids[slot], sizeof(ids[slot]), "3000000%05u", (unsigned)seed % 100000u);
        memset(d, 0, sizeof(*d));
        d->declaration_id = (ds_str_t){ids[slot], 12};
        d->version = seed % 3;
        d->kind = (uint8_t)(seed % 3 == 0 ? DS_KIND_NEW : DS_KIND_AMEND);
        d->declared_at = 1767225600000LL + (int64_t)seed * 60000; /* 2026-01-01 */
        d->gate_code = S("MONGCAI");
        d->customs_office = S("20BC");
        d->type_code = S("B11");
        d->flow = DS_FLOW_EXPORT;
        d->declarant_tax_id = S("5700100256");
        d->channel = DS_CHANNEL_GREEN;
        d->vehicle_plate = S("14C-123.45");
        d->item_cnt = 2;
        d->items[0] = (ds_item_t){S("08109010"), S("Thanh long ru\xe1\xbb\x99t tr\xe1\xba\xafng (dragon fruit)"),
                                  S("kg"), S("VN"), 1200.5, 1250000 + seed, 180000 + seed};
        d->items[1] = (ds_item_t){S("84713020"), S("Laptop"), S("unit"), S("CN"), 3, 7000, 250000 + seed};
}

void dst_body(ds_buf_t *b, const ds_decl_t *d, int version) {
        ds_encode_declaration(b, d);
        if (version >= 2) {
                ds_avro_put_long(b, d->container_count);
                if (d->invoice_currency.p)
                        ds_avro_put_bytes(b, d->invoice_currency.p, d->invoice_currency.len);
                else
                        ds_avro_put_str(b, "USD");
        }
}

void dst_framed(ds_buf_t *b, const ds_decl_t *d, int version, uint32_t schema_id) {
        b->len = 0;
        ds_wire_put_header(b, schema_id);
        dst_body(b, d, version);
}

void dst_single_object(ds_buf_t *b, const ds_decl_t *d, int version, uint64_t fp) {
        b->len = 0;
        uint8_t h[DS_SOE_HEADER] = {DS_SOE_MARKER0, DS_SOE_MARKER1};
        for (int i = 0; i < 8; i++)
                h[2 + i] = (uint8_t)(fp >> (8 * i));
        ds_buf_put(b, h, sizeof(h));
        dst_body(b, d, version);
}

static int str_eq(ds_str_t a, ds_str_t b) {
        if ((a.p == NULL) != (b.p == NULL))
                return 0;
        return a.len == b.len && (!a.len || !memcmp(a.p, b.p, a.len));
}

int dst_decl_equal(const ds_decl_t *a, const ds_decl_t *b, int v2, char *why, size_t size) {
#define STR(f)                                                                                              \
        if (!str_eq(a->f, b->f)) {                                                                          \
                snprintf(why, size, #f ": '%.*s' vs '%.*s'", (int)a->f.len, a->f.p ? a->f.p : "(null)",    \
                         (int)b->f.len, b->f.p ? b->f.p : "(null)");                                        \
                return 0;                                                                                   \
        }
#define NUM(f)                                                                                              \
        if (a->f != b->f) {                                                                                 \
                snprintf(why, size, #f ": %.17g vs %.17g", (double)a->f, (double)b->f);                    \
                return 0;                                                                                   \
        }
        STR(declaration_id) NUM(version) NUM(kind) NUM(declared_at) STR(gate_code) STR(customs_office)
        STR(type_code) NUM(flow) STR(declarant_tax_id) NUM(channel) STR(vehicle_plate) NUM(item_cnt)
        if (v2) {
                NUM(container_count) STR(invoice_currency)
        }
        for (uint32_t i = 0; i < a->item_cnt && i < DS_MAX_ITEMS; i++) {
                STR(items[i].hs_code) STR(items[i].description) STR(items[i].unit) STR(items[i].origin_country)
                NUM(items[i].quantity) NUM(items[i].gross_weight_g) NUM(items[i].customs_value_usd_cents)
        }
#undef STR
#undef NUM
        return 1;
}

char *dst_read(const char *path, size_t *len) {
        char *t = ds_slurp(path, len);
        if (!t) {
                fprintf(stderr, "cannot read %s\n", path);
                abort();
        }
        return t;
}

int dst_write(const char *path, const char *text) {
        FILE *f = fopen(path, "w");
        if (!f)
                return -1;
        int ok = fputs(text, f) >= 0;
        return fclose(f) == 0 && ok ? 0 : -1;
}

char *dst_replace(const char *s, const char *from, const char *to) {
        const char *at = strstr(s, from);
        if (!at)
                return NULL;
        size_t a = (size_t)(at - s), f = strlen(from), t = strlen(to), rest = strlen(at + f);
        char *o = malloc(a + t + rest + 1);
        memcpy(o, s, a);
        memcpy(o + a, to, t);
        memcpy(o + a + t, at + f, rest + 1);
        return o;
}

int dst_registry_start(ds_proc_t *p, const char *dir, const char *spec, char *url, size_t size) {
        char spec_path[512], out_path[512];
        snprintf(spec_path, sizeof(spec_path), "%s/registry.json", dir);
        snprintf(out_path, sizeof(out_path), "%s/registry.out", dir);
        if (dst_write(spec_path, spec))
                return -1;
        char *argv[] = {"/usr/bin/python3", DS_SOURCE_DIR "/tests/registry_server.py", spec_path, NULL};
        char err_path[512];
        snprintf(err_path, sizeof(err_path), "%s/registry.err", dir);
        unlink(out_path); /* a restart must not read the previous server's port */
        if (ds_proc_start(p, argv, out_path, err_path))
                return -1;
        for (int i = 0; i < 500; i++) { /* up to 5 s for python to start */
                char *out = ds_slurp(out_path, NULL);
                int port = 0;
                if (out && sscanf(out, "port=%d", &port) == 1 && port > 0) {
                        free(out);
                        snprintf(url, size, "http://127.0.0.1:%d", port);
                        return 0;
                }
                free(out);
                if (ds_proc_wait(p, 10) >= 0)
                        return -1; /* it exited */
        }
        ds_proc_kill(p, SIGKILL);
        return -1;
}

void dst_registry_stop(ds_proc_t *p) {
        ds_proc_kill(p, SIGTERM);
        if (ds_proc_wait(p, 3000) < 0)
                ds_proc_kill(p, SIGKILL);
}

typedef struct {
        char buf[65536];
        size_t len;
} get_t;

static size_t on_get(char *d, size_t s, size_t n, void *arg) {
        get_t *g = arg;
        size_t k = s * n;
        if (g->len + k >= sizeof(g->buf))
                return 0;
        memcpy(g->buf + g->len, d, k);
        g->len += k;
        g->buf[g->len] = '\0';
        return k;
}

int dst_registry_count(const char *url, uint32_t id) {
        char u[512];
        snprintf(u, sizeof(u), "%s/__stats", url);
        get_t *g = calloc(1, sizeof(*g));
        CURL *h = curl_easy_init();
        curl_easy_setopt(h, CURLOPT_URL, u);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_get);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, g);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        CURLcode rc = curl_easy_perform(h);
        curl_easy_cleanup(h);
        int n = -1;
        if (rc == CURLE_OK) {
                json_t *j = json_loads(g->buf, 0, NULL);
                char key[64];
                snprintf(key, sizeof(key), "/schemas/ids/%u", id);
                json_t *v = json_object_get(j, key);
                n = v ? (int)json_integer_value(v) : 0;
                json_decref(j);
        }
        free(g);
        return n;
}
