/*
 * ds_fingerprint.c - Parsing Canonical Form and CRC-64-AVRO.
 *
 * The canonical form is written by one recursive walk over the JSON tree:
 *
 *   - a primitive, as a name or as {"type": "int", ...}, becomes "int"
 *     (PRIMITIVES; logicalType and every other attribute go: STRIP);
 *   - a named type (record, error, enum, fixed) is written with its full name
 *     (FULLNAMES: a dotted name is already full, otherwise the explicit or the
 *     enclosing namespace is prefixed) and only the attributes that matter for
 *     parsing, in the specification's order: name, type, fields, symbols,
 *     items, values, size (STRIP, ORDER); "namespace" disappears into the name;
 *   - a reference to a named type becomes its full name, resolved against the
 *     names defined so far (enclosing namespace first, then the null
 *     namespace), as Avro's Java implementation does;
 *   - strings come out unescaped UTF-8 as Jansson decoded them (STRINGS),
 *     sizes as plain integers (INTEGERS), with no whitespace (WHITESPACE).
 *
 * The CRC is the specification's table-driven Rabin fingerprint; the table is
 * built once, on first use, under pthread_once.
 */
#include "ds_fingerprint.h"
#include "ds_common.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CRC64_EMPTY 0xc15d213aa4d7a795ULL
#define MAX_DEPTH 1024 /* walk() levels; Jansson itself stops at 2048 */

static uint64_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
        for (int i = 0; i < 256; i++) {
                uint64_t fp = (uint64_t)i;
                for (int j = 0; j < 8; j++)
                        fp = (fp >> 1) ^ (CRC64_EMPTY & (0 - (fp & 1)));
                crc_table[i] = fp;
        }
}

uint64_t ds_crc64_avro_update(uint64_t fp, const void *p, size_t n) {
        pthread_once(&crc_once, crc_init);
        const uint8_t *b = p;
        for (size_t i = 0; i < n; i++)
                fp = (fp >> 8) ^ crc_table[(fp ^ b[i]) & 0xff];
        return fp;
}

uint64_t ds_crc64_avro(const void *p, size_t n) {
        return ds_crc64_avro_update(CRC64_EMPTY, p, n);
}

/* ------------------------------------------------------------------------ */

typedef struct pcf {
        char *out;
        size_t len, cap;
        char **names; /* full names defined so far */
        size_t nnames, capnames;
        char *errstr;
        size_t errsz;
        int failed;
} pcf_t;

static int fail(pcf_t *c, const char *fmt, const char *arg) {
        if (!c->failed)
                ds_err(c->errstr, c->errsz, fmt, arg);
        c->failed = 1;
        return -1;
}

static int put(pcf_t *c, const char *s, size_t n) {
        if (c->len + n + 1 > c->cap) {
                size_t cap = c->cap ? c->cap : 256;
                while (cap < c->len + n + 1)
                        cap *= 2;
                char *o = realloc(c->out, cap);
                if (!o)
                        return fail(c, "out of memory%s", "");
                c->out = o;
                c->cap = cap;
        }
        memcpy(c->out + c->len, s, n);
        c->len += n;
        c->out[c->len] = '\0';
        return 0;
}

static int puts_(pcf_t *c, const char *s) {
        return put(c, s, strlen(s));
}

/* A JSON string literal; only the characters JSON requires are escaped. */
static int put_str(pcf_t *c, const char *s) {
        if (put(c, "\"", 1))
                return -1;
        for (const char *p = s; *p; p++) {
                unsigned char ch = (unsigned char)*p;
                char esc[8];
                if (ch == '"' || ch == '\\') {
                        esc[0] = '\\';
                        esc[1] = (char)ch;
                        if (put(c, esc, 2))
                                return -1;
                } else if (ch < 0x20) {
                        snprintf(esc, sizeof(esc), "\\u%04x", ch);
                        if (put(c, esc, 6))
                                return -1;
                } else if (put(c, p, 1)) {
                        return -1;
                }
        }
        return put(c, "\"", 1);
}

static int is_primitive(const char *t) {
        static const char *const prims[] = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"};
        for (size_t i = 0; i < DS_ARRAY_LEN(prims); i++)
                if (!strcmp(t, prims[i]))
                        return 1;
        return 0;
}

static char *join(const char *ns, const char *name) {
        size_t a = ns ? strlen(ns) : 0, b = strlen(name);
        char *f = malloc(a + b + 2);
        if (!f)
                return NULL;
        if (a) {
                memcpy(f, ns, a);
                f[a++] = '.';
        }
        memcpy(f + a, name, b + 1);
        return f;
}

static int defined(const pcf_t *c, const char *full) {
        for (size_t i = 0; i < c->nnames; i++)
                if (!strcmp(c->names[i], full))
                        return 1;
        return 0;
}

static int define(pcf_t *c, char *full) {
        if (c->nnames == c->capnames) {
                size_t cap = c->capnames ? c->capnames * 2 : 16;
                char **n = realloc(c->names, cap * sizeof(*n));
                if (!n) {
                        free(full);
                        return fail(c, "out of memory%s", "");
                }
                c->names = n;
                c->capnames = cap;
        }
        c->names[c->nnames++] = full;
        return 0;
}

/* A reference to a named type, written as its full name. */
static int put_ref(pcf_t *c, const char *name, const char *ns) {
        if (strchr(name, '.') || !ns || !*ns)
                return put_str(c, name);
        char *full = join(ns, name);
        if (!full)
                return fail(c, "out of memory%s", "");
        int r = put_str(c, defined(c, full) || !defined(c, name) ? full : name);
        free(full);
        return r;
}

static int walk(pcf_t *c, json_t *j, const char *ns, int depth);

static int walk_named(pcf_t *c, json_t *j, const char *type, const char *ns, int depth) {
        const char *name = json_string_value(json_object_get(j, "name"));
        if (!name || !*name)
                return fail(c, "a %s has no name", type);
        json_t *jns = json_object_get(j, "namespace");
        const char *own_ns = ns;
        char *full;
        const char *dot = strrchr(name, '.');
        char nsbuf[1024];
        if (dot) {
                full = strdup(name);
                size_t n = (size_t)(dot - name);
                if (n >= sizeof(nsbuf))
                        return fail(c, "name %s is too long", name);
                memcpy(nsbuf, name, n);
                nsbuf[n] = '\0';
                own_ns = nsbuf;
        } else {
                if (json_is_string(jns))
                        own_ns = json_string_value(jns);
                full = join(own_ns, name);
        }
        if (!full)
                return fail(c, "out of memory%s", "");
        int r = puts_(c, "{\"name\":") || put_str(c, full) || puts_(c, ",\"type\":") || put_str(c, type);
        if (define(c, full) || r)
                return -1;
        if (!strcmp(type, "record") || !strcmp(type, "error")) {
                json_t *fields = json_object_get(j, "fields");
                if (!json_is_array(fields))
                        return fail(c, "record %s has no fields array", name);
                if (puts_(c, ",\"fields\":["))
                        return -1;
                size_t i;
                json_t *f;
                json_array_foreach(fields, i, f) {
                        const char *fname = json_string_value(json_object_get(f, "name"));
                        json_t *ft = json_object_get(f, "type");
                        if (!fname || !ft)
                                return fail(c, "a field of record %s has no name or no type", name);
                        if ((i && puts_(c, ",")) || puts_(c, "{\"name\":") || put_str(c, fname) ||
                            puts_(c, ",\"type\":") || walk(c, ft, own_ns, depth + 1) || puts_(c, "}"))
                                return -1;
                }
                return puts_(c, "]}");
        }
        if (!strcmp(type, "enum")) {
                json_t *syms = json_object_get(j, "symbols");
                if (!json_is_array(syms))
                        return fail(c, "enum %s has no symbols array", name);
                if (puts_(c, ",\"symbols\":["))
                        return -1;
                size_t i;
                json_t *s;
                json_array_foreach(syms, i, s) {
                        if (!json_is_string(s))
                                return fail(c, "enum %s has a symbol that is not a string", name);
                        if ((i && puts_(c, ",")) || put_str(c, json_string_value(s)))
                                return -1;
                }
                return puts_(c, "]}");
        }
        /* fixed */
        json_t *size = json_object_get(j, "size");
        long long n = -1;
        if (json_is_integer(size)) {
                n = (long long)json_integer_value(size);
        } else if (json_is_string(size)) { /* INTEGERS: quotes and leading zeros go */
                char *end;
                n = strtoll(json_string_value(size), &end, 10);
                if (*end || end == json_string_value(size))
                        n = -1;
        }
        if (n < 0)
                return fail(c, "fixed %s has no valid size", name);
        char num[32];
        snprintf(num, sizeof(num), ",\"size\":%lld}", n);
        return puts_(c, num);
}

static int walk(pcf_t *c, json_t *j, const char *ns, int depth) {
        if (depth > MAX_DEPTH)
                return fail(c, "schema nested deeper than %s levels", "1024");
        if (json_is_string(j)) {
                const char *t = json_string_value(j);
                return is_primitive(t) ? put_str(c, t) : put_ref(c, t, ns);
        }
        if (json_is_array(j)) { /* union */
                if (puts_(c, "["))
                        return -1;
                size_t i;
                json_t *b;
                json_array_foreach(j, i, b) {
                        if ((i && puts_(c, ",")) || walk(c, b, ns, depth + 1))
                                return -1;
                }
                return puts_(c, "]");
        }
        if (!json_is_object(j))
                return fail(c, "%s", "a schema must be a string, an array or an object");
        const char *type = json_string_value(json_object_get(j, "type"));
        if (!type)
                return fail(c, "%s", "a schema object has no type name");
        if (is_primitive(type))
                return put_str(c, type);
        if (!strcmp(type, "record") || !strcmp(type, "error") || !strcmp(type, "enum") || !strcmp(type, "fixed"))
                return walk_named(c, j, type, ns, depth);
        if (!strcmp(type, "array")) {
                json_t *items = json_object_get(j, "items");
                if (!items)
                        return fail(c, "%s", "an array has no items");
                return puts_(c, "{\"type\":\"array\",\"items\":") || walk(c, items, ns, depth + 1) || puts_(c, "}");
        }
        if (!strcmp(type, "map")) {
                json_t *values = json_object_get(j, "values");
                if (!values)
                        return fail(c, "%s", "a map has no values");
                return puts_(c, "{\"type\":\"map\",\"values\":") || walk(c, values, ns, depth + 1) || puts_(c, "}");
        }
        return put_ref(c, type, ns); /* {"type": "SomeNamedType"} */
}

char *ds_schema_canonical(const char *json, size_t len, char *errstr, size_t sz) {
        json_error_t jerr;
        json_t *root = json_loadb(json, len, JSON_DECODE_ANY, &jerr);
        if (!root) {
                ds_err(errstr, sz, "not JSON (line %d: %s)", jerr.line, jerr.text);
                return NULL;
        }
        pcf_t c = {.errstr = errstr, .errsz = sz};
        int r = walk(&c, root, NULL, 0);
        json_decref(root);
        for (size_t i = 0; i < c.nnames; i++)
                free(c.names[i]);
        free(c.names);
        if (r || c.failed) {
                free(c.out);
                return NULL;
        }
        return c.out;
}

int ds_schema_fingerprint(const char *json, size_t len, uint64_t *fp, char *errstr, size_t sz) {
        char *pcf = ds_schema_canonical(json, len, errstr, sz);
        if (!pcf)
                return -1;
        *fp = ds_crc64_avro(pcf, strlen(pcf));
        free(pcf);
        return 0;
}
