/*
 * ds_codec.c - schema-specialised Avro decoder for declarations.
 *
 * Design. Avro binary has no field tags: a record is its fields in the
 * writer's order. So a writer schema is turned once into a list of ops, one
 * per writer field: "read a string into ds_decl_t.gate_code", "read an int,
 * widen it to long, store at ds_item_t.gross_weight_g", "skip a map of
 * records", "read a union branch index and run the branch's op". Reader
 * fields the writer lacks are pre-filled from a prototype struct holding the
 * reader's defaults, so decoding a message is: copy the prototype header, run
 * the ops. Each read checks the remaining length first; malformed input ends
 * with a reason, never a read past the buffer or an allocation.
 *
 * The writer schema is first converted from Avro C's representation into a
 * small graph of wnode_t (named types memoised so recursive schemas become
 * cycles, not infinite trees). Skipping is a recursive walk with a depth
 * limit, so a hostile deeply nested schema cannot exhaust the stack.
 *
 * Varints follow Avro C exactly (up to 10 bytes, bits past 64 dropped; ints
 * range-checked), so both decoders accept the same bytes (tests/test_codec.c,
 * tests/fuzz_decode.c).
 *
 * Memory: everything a codec owns comes from one arena freed by
 * ds_codec_destroy(); a codec for the v1 schema is ~3 KiB.
 */
#include "ds_codec.h"
#include "ds_common.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Arena: codec-lifetime allocations.                                        */

typedef struct chunk {
        struct chunk *next;
        size_t used, cap;
        max_align_t data[];
} chunk_t;

typedef struct arena {
        chunk_t *head;
} arena_t;

static void *arena_alloc(arena_t *a, size_t size) {
        size = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
        if (!a->head || a->head->used + size > a->head->cap) {
                size_t cap = size > 4096 ? size : 4096;
                chunk_t *c = calloc(1, sizeof(*c) + cap);
                if (!c)
                        return NULL;
                c->cap = cap;
                c->next = a->head;
                a->head = c;
        }
        void *p = (char *)a->head->data + a->head->used;
        a->head->used += size;
        return p;
}

static char *arena_strdup(arena_t *a, const char *s) {
        size_t n = strlen(s) + 1;
        char *d = arena_alloc(a, n);
        if (d)
                memcpy(d, s, n);
        return d;
}

static void arena_free(arena_t *a) {
        for (chunk_t *c = a->head, *n; c; c = n) {
                n = c->next;
                free(c);
        }
        a->head = NULL;
}

/* ------------------------------------------------------------------------ */
/* Reader contract.                                                          */

enum rk { RK_SKIP = 0, RK_STR, RK_OPTSTR, RK_INT, RK_LONG, RK_DOUBLE, RK_ENUM, RK_ITEMS };

enum renum { RE_NONE = 0, RE_KIND, RE_FLOW, RE_CHANNEL, RE__CNT };

typedef struct rfield {
        const char *name;
        uint8_t rk;
        uint8_t renum; /* RK_ENUM: which enum */
        uint16_t off;  /* offset in ds_decl_t or ds_item_t */
        uint8_t opt;   /* optional in the reader schema: absent there, the field is not read at all */
} rfield_t;

static const char *const kind_syms[] = {"NEW", "AMEND", "CANCEL"};
static const char *const flow_syms[] = {"EXPORT", "IMPORT", "TRANSIT", "BORDER_RESIDENT"};
static const char *const channel_syms[] = {"GREEN", "YELLOW", "RED"};

static const struct {
        const char *name;
        const char *const *syms;
        uint8_t nsym;
} renums[RE__CNT] = {
    [RE_KIND] = {"EventKind", kind_syms, 3},
    [RE_FLOW] = {"Flow", flow_syms, 4},
    [RE_CHANNEL] = {"Channel", channel_syms, 3},
};

#define D(f) (uint16_t) offsetof(ds_decl_t, f)
#define I(f) (uint16_t) offsetof(ds_item_t, f)
static const rfield_t decl_fields[] = {
    {"declaration_id", RK_STR, 0, D(declaration_id)},
    {"version", RK_INT, 0, D(version)},
    {"kind", RK_ENUM, RE_KIND, D(kind)},
    {"declared_at", RK_LONG, 0, D(declared_at)},
    {"gate_code", RK_STR, 0, D(gate_code)},
    {"customs_office", RK_STR, 0, D(customs_office)},
    {"type_code", RK_STR, 0, D(type_code)},
    {"flow", RK_ENUM, RE_FLOW, D(flow)},
    {"declarant_tax_id", RK_STR, 0, D(declarant_tax_id)},
    {"channel", RK_ENUM, RE_CHANNEL, D(channel)},
    {"vehicle_plate", RK_OPTSTR, 0, D(vehicle_plate)},
    {"items", RK_ITEMS, 0, D(items)},
    /* schema v2 (customs_declaration.v2.avsc): read when the reader schema has
     * them, left 0 / {NULL, 0} when it does not (the processor's v1 reader) */
    {"container_count", RK_INT, 0, D(container_count), 1},
    {"invoice_currency", RK_STR, 0, D(invoice_currency), 1},
};
static const rfield_t item_fields[] = {
    {"hs_code", RK_STR, 0, I(hs_code)},
    {"description", RK_STR, 0, I(description)},
    {"quantity", RK_DOUBLE, 0, I(quantity)},
    {"unit", RK_STR, 0, I(unit)},
    {"gross_weight_g", RK_LONG, 0, I(gross_weight_g)},
    {"customs_value_usd_cents", RK_LONG, 0, I(customs_value_usd_cents)},
    {"origin_country", RK_STR, 0, I(origin_country)},
};
#undef D
#undef I

#define NDECL ((int)DS_ARRAY_LEN(decl_fields))
#define NITEM ((int)DS_ARRAY_LEN(item_fields))
#define MAX_RFIELDS 16 /* compile_record's seen[] */
_Static_assert(DS_ARRAY_LEN(decl_fields) <= MAX_RFIELDS && DS_ARRAY_LEN(item_fields) <= MAX_RFIELDS,
               "too many reader fields");

struct ds_reader {
        avro_schema_t schema;
        json_t *json;                  /* owns the default strings */
        uint8_t decl_has_default[NDECL];
        uint8_t item_has_default[NITEM];
        uint8_t decl_in_reader[NDECL]; /* 0: an optional field the reader schema lacks */
        uint8_t item_in_reader[NITEM];
        int enum_default[RE__CNT];     /* reader enum's default symbol, or -1 */
        ds_decl_t proto;               /* defaults; only the part before items is used */
        ds_item_t item_proto;
};

avro_schema_t ds_reader_schema(const ds_reader_t *r) {
        return r->schema;
}

/* Finds the JSON object defining named type `name` (unqualified) anywhere. */
static json_t *json_find_named(json_t *j, const char *name, int depth) {
        if (depth > 64 || !j)
                return NULL;
        if (json_is_object(j)) {
                const char *n = json_string_value(json_object_get(j, "name"));
                const char *t = json_string_value(json_object_get(j, "type"));
                if (n && t && (!strcmp(t, "enum") || !strcmp(t, "record") || !strcmp(t, "fixed"))) {
                        const char *dot = strrchr(n, '.');
                        if (!strcmp(dot ? dot + 1 : n, name))
                                return j;
                }
                const char *k;
                json_t *v;
                json_object_foreach(j, k, v) {
                        json_t *f = json_find_named(v, name, depth + 1);
                        if (f)
                                return f;
                }
        } else if (json_is_array(j)) {
                size_t i;
                json_t *v;
                json_array_foreach(j, i, v) {
                        json_t *f = json_find_named(v, name, depth + 1);
                        if (f)
                                return f;
                }
        }
        return NULL;
}

static int enum_index(uint8_t re, const char *sym) {
        for (int i = 0; i < renums[re].nsym; i++)
                if (!strcmp(renums[re].syms[i], sym))
                        return i;
        return -1;
}

static avro_schema_t resolve_link(avro_schema_t s) {
        while (s && is_avro_link(s))
                s = avro_schema_link_target(s);
        return s;
}

/* Checks the reader schema's field type against the reader kind. */
static int check_reader_type(const rfield_t *f, avro_schema_t t, char *errstr, size_t sz) {
        t = resolve_link(t);
        switch (f->rk) {
        case RK_STR:
                if (is_avro_string(t))
                        return 0;
                break;
        case RK_OPTSTR:
                if (is_avro_union(t) && avro_schema_union_size(t) == 2 &&
                    is_avro_null(resolve_link(avro_schema_union_branch(t, 0))) &&
                    is_avro_string(resolve_link(avro_schema_union_branch(t, 1))))
                        return 0;
                break;
        case RK_INT:
                if (is_avro_int32(t))
                        return 0;
                break;
        case RK_LONG:
                if (is_avro_int64(t))
                        return 0;
                break;
        case RK_DOUBLE:
                if (is_avro_double(t))
                        return 0;
                break;
        case RK_ENUM:
                if (is_avro_enum(t) && !strcmp(avro_schema_name(t), renums[f->renum].name) &&
                    avro_schema_enum_number_of_symbols(t) == renums[f->renum].nsym) {
                        for (int i = 0; i < renums[f->renum].nsym; i++)
                                if (strcmp(avro_schema_enum_get(t, i), renums[f->renum].syms[i]))
                                        return ds_err(errstr, sz,
                                                      "reader schema: enum %s symbol %d is %s, expected %s",
                                                      renums[f->renum].name, i, avro_schema_enum_get(t, i),
                                                      renums[f->renum].syms[i]);
                        return 0;
                }
                break;
        case RK_ITEMS:
                if (is_avro_array(t) && is_avro_record(resolve_link(avro_schema_array_items(t))) &&
                    !strcmp(avro_schema_name(resolve_link(avro_schema_array_items(t))), "Item"))
                        return 0;
                break;
        }
        return ds_err(errstr, sz, "reader schema: field %s has type %s, which declstream cannot read", f->name,
                      avro_schema_type_name(t));
}

/* Stores the JSON default of field f into proto (decl or item). */
static int set_default(const rfield_t *f, json_t *def, void *proto, char *errstr, size_t sz) {
        char *dst = (char *)proto + f->off;
        switch (f->rk) {
        case RK_STR:
                if (!json_is_string(def))
                        break;
                *(ds_str_t *)dst = (ds_str_t){json_string_value(def), (uint32_t)json_string_length(def)};
                return 0;
        case RK_OPTSTR:
                if (json_is_null(def)) {
                        *(ds_str_t *)dst = (ds_str_t){NULL, 0};
                        return 0;
                }
                if (json_is_string(def)) {
                        *(ds_str_t *)dst = (ds_str_t){json_string_value(def), (uint32_t)json_string_length(def)};
                        return 0;
                }
                break;
        case RK_INT:
                if (!json_is_integer(def))
                        break;
                *(int32_t *)dst = (int32_t)json_integer_value(def);
                return 0;
        case RK_LONG:
                if (!json_is_integer(def))
                        break;
                *(int64_t *)dst = (int64_t)json_integer_value(def);
                return 0;
        case RK_DOUBLE:
                if (!json_is_number(def))
                        break;
                *(double *)dst = json_number_value(def);
                return 0;
        case RK_ENUM: {
                int v = json_is_string(def) ? enum_index(f->renum, json_string_value(def)) : -1;
                if (v < 0)
                        break;
                *(uint8_t *)dst = (uint8_t)v;
                return 0;
        }
        case RK_ITEMS:
                if (json_is_array(def) && json_array_size(def) == 0)
                        return 0; /* item_cnt stays 0 */
                return ds_err(errstr, sz, "reader schema: only [] is supported as the default of %s", f->name);
        }
        return ds_err(errstr, sz, "reader schema: default of field %s has the wrong type", f->name);
}

static int load_fields(ds_reader_t *r, avro_schema_t rec, json_t *jrec, const rfield_t *fields, int n,
                       uint8_t *has_default, uint8_t *in_reader, void *proto, char *errstr, size_t sz) {
        json_t *jfields = json_object_get(jrec, "fields");
        for (int i = 0; i < n; i++) {
                const rfield_t *f = &fields[i];
                /* avro_schema_record_field_get() returns garbage for a missing
                 * name (Avro C 1.11.1 reads an unset lookup result): ask the
                 * index first */
                int idx = avro_schema_record_field_get_index(rec, f->name);
                avro_schema_t t = idx >= 0 ? avro_schema_record_field_get_by_index(rec, idx) : NULL;
                if (!t && f->opt)
                        continue; /* in_reader[i] stays 0: writers' values of it are skipped */
                if (!t)
                        return ds_err(errstr, sz, "reader schema %s lacks field %s", avro_schema_name(rec), f->name);
                in_reader[i] = 1;
                if (check_reader_type(f, t, errstr, sz))
                        return -1;
                size_t k;
                json_t *jf;
                json_array_foreach(jfields, k, jf) {
                        if (strcmp(json_string_value(json_object_get(jf, "name")) ?: "", f->name))
                                continue;
                        json_t *def = json_object_get(jf, "default");
                        if (def) {
                                if (set_default(f, def, proto, errstr, sz))
                                        return -1;
                                has_default[i] = 1;
                        }
                }
        }
        (void)r;
        return 0;
}

ds_reader_t *ds_reader_new(const char *json, size_t len, char *errstr, size_t sz) {
        ds_reader_t *r = calloc(1, sizeof(*r));
        if (!r) {
                ds_err(errstr, sz, "out of memory");
                return NULL;
        }
        json_error_t jerr;
        r->json = json_loadb(json, len, 0, &jerr);
        if (!r->json) {
                ds_err(errstr, sz, "reader schema: JSON error at line %d: %s", jerr.line, jerr.text);
                goto fail;
        }
        if (avro_schema_from_json_length(json, len, &r->schema)) {
                ds_err(errstr, sz, "reader schema: %s", avro_strerror());
                goto fail;
        }
        if (!is_avro_record(r->schema) || strcmp(avro_schema_name(r->schema), "Declaration")) {
                ds_err(errstr, sz, "reader schema must be the record Declaration");
                goto fail;
        }
        if (load_fields(r, r->schema, r->json, decl_fields, NDECL, r->decl_has_default, r->decl_in_reader,
                        &r->proto, errstr, sz))
                goto fail;
        avro_schema_t item = resolve_link(avro_schema_array_items(
            resolve_link(avro_schema_record_field_get(r->schema, "items"))));
        json_t *jitem = json_find_named(r->json, "Item", 0);
        if (!jitem) {
                ds_err(errstr, sz, "reader schema: record Item not found");
                goto fail;
        }
        if (load_fields(r, item, jitem, item_fields, NITEM, r->item_has_default, r->item_in_reader, &r->item_proto,
                        errstr, sz))
                goto fail;
        for (int e = 1; e < RE__CNT; e++) {
                r->enum_default[e] = -1;
                json_t *je = json_find_named(r->json, renums[e].name, 0);
                json_t *def = je ? json_object_get(je, "default") : NULL;
                if (def) {
                        r->enum_default[e] = json_is_string(def) ? enum_index((uint8_t)e, json_string_value(def)) : -1;
                        if (r->enum_default[e] < 0) {
                                ds_err(errstr, sz, "reader schema: default of enum %s is not one of its symbols",
                                       renums[e].name);
                                goto fail;
                        }
                }
        }
        return r;
fail:
        ds_reader_destroy(r);
        return NULL;
}

void ds_reader_destroy(ds_reader_t *r) {
        if (!r)
                return;
        if (r->schema)
                avro_schema_decref(r->schema);
        if (r->json)
                json_decref(r->json);
        free(r);
}

/* ------------------------------------------------------------------------ */
/* Writer type graph.                                                        */

enum wt { W_NULL, W_BOOL, W_INT, W_LONG, W_FLOAT, W_DOUBLE, W_STRING, W_BYTES,
          W_FIXED, W_ENUM, W_ARRAY, W_MAP, W_RECORD, W_UNION };

static const char *const wt_names[] = {"null", "boolean", "int", "long", "float", "double", "string",
                                       "bytes", "fixed", "enum", "array", "map", "record", "union"};

typedef struct wnode wnode_t;
struct wnode {
        uint8_t t;
        uint32_t n;       /* fixed: size; enum: symbols; record: fields; union: branches */
        wnode_t **kids;   /* record fields, union branches; array items / map values in kids[0] */
        char **names;     /* record field names, enum symbols */
        const char *name; /* unqualified name of a named type */
};

#define MAX_NAMED 256
#define MAX_DEPTH 64

typedef struct build {
        arena_t *arena;
        struct {
                avro_schema_t s;
                wnode_t *w;
        } named[MAX_NAMED];
        int nnamed;
        char *errstr;
        size_t errsz;
} build_t;

static wnode_t *oom(build_t *b) {
        ds_err(b->errstr, b->errsz, "out of memory compiling the writer schema");
        return NULL;
}

static wnode_t *wbuild(build_t *b, avro_schema_t s, int depth) {
        if (depth > MAX_DEPTH) {
                ds_err(b->errstr, b->errsz, "writer schema nested deeper than %d", MAX_DEPTH);
                return NULL;
        }
        s = resolve_link(s);
        if (!s) {
                ds_err(b->errstr, b->errsz, "writer schema has an unresolved named type");
                return NULL;
        }
        for (int i = 0; i < b->nnamed; i++)
                if (b->named[i].s == s)
                        return b->named[i].w;
        wnode_t *w = arena_alloc(b->arena, sizeof(*w));
        if (!w)
                return oom(b);
        switch (avro_typeof(s)) {
        case AVRO_NULL: w->t = W_NULL; return w;
        case AVRO_BOOLEAN: w->t = W_BOOL; return w;
        case AVRO_INT32: w->t = W_INT; return w;
        case AVRO_INT64: w->t = W_LONG; return w;
        case AVRO_FLOAT: w->t = W_FLOAT; return w;
        case AVRO_DOUBLE: w->t = W_DOUBLE; return w;
        case AVRO_STRING: w->t = W_STRING; return w;
        case AVRO_BYTES: w->t = W_BYTES; return w;
        default: break;
        }
        if (is_avro_named_type(s)) {
                if (b->nnamed == MAX_NAMED) {
                        ds_err(b->errstr, b->errsz, "writer schema has more than %d named types", MAX_NAMED);
                        return NULL;
                }
                b->named[b->nnamed].s = s;
                b->named[b->nnamed++].w = w;
                if (!(w->name = arena_strdup(b->arena, avro_schema_name(s))))
                        return oom(b);
        }
        switch (avro_typeof(s)) {
        case AVRO_FIXED:
                w->t = W_FIXED;
                w->n = (uint32_t)avro_schema_fixed_size(s);
                return w;
        case AVRO_ENUM:
                w->t = W_ENUM;
                w->n = (uint32_t)avro_schema_enum_number_of_symbols(s);
                w->names = arena_alloc(b->arena, sizeof(char *) * (w->n + 1));
                if (!w->names)
                        return oom(b);
                for (uint32_t i = 0; i < w->n; i++)
                        if (!(w->names[i] = arena_strdup(b->arena, avro_schema_enum_get(s, (int)i))))
                                return oom(b);
                return w;
        case AVRO_ARRAY:
        case AVRO_MAP:
                w->t = avro_typeof(s) == AVRO_ARRAY ? W_ARRAY : W_MAP;
                w->n = 1;
                if (!(w->kids = arena_alloc(b->arena, sizeof(wnode_t *))))
                        return oom(b);
                w->kids[0] = wbuild(b, w->t == W_ARRAY ? avro_schema_array_items(s) : avro_schema_map_values(s),
                                    depth + 1);
                return w->kids[0] ? w : NULL;
        case AVRO_UNION:
                w->t = W_UNION;
                w->n = (uint32_t)avro_schema_union_size(s);
                if (!(w->kids = arena_alloc(b->arena, sizeof(wnode_t *) * (w->n + 1))))
                        return oom(b);
                for (uint32_t i = 0; i < w->n; i++)
                        if (!(w->kids[i] = wbuild(b, avro_schema_union_branch(s, (int)i), depth + 1)))
                                return NULL;
                return w;
        case AVRO_RECORD:
                w->t = W_RECORD;
                w->n = (uint32_t)avro_schema_record_size(s);
                w->kids = arena_alloc(b->arena, sizeof(wnode_t *) * (w->n + 1));
                w->names = arena_alloc(b->arena, sizeof(char *) * (w->n + 1));
                if (!w->kids || !w->names)
                        return oom(b);
                for (uint32_t i = 0; i < w->n; i++) {
                        if (!(w->names[i] = arena_strdup(b->arena, avro_schema_record_field_name(s, (int)i))))
                                return oom(b);
                        if (!(w->kids[i] = wbuild(b, avro_schema_record_field_get_by_index(s, (int)i), depth + 1)))
                                return NULL;
                }
                return w;
        default:
                ds_err(b->errstr, b->errsz, "writer schema has an unsupported type %s", avro_schema_type_name(s));
                return NULL;
        }
}

/* Smallest number of bytes an encoded value of w can take (bounded depth). */
static uint32_t wmin_size(const wnode_t *w, int depth) {
        if (depth > MAX_DEPTH)
                return 0;
        switch (w->t) {
        case W_NULL: return 0;
        case W_FLOAT: return 4;
        case W_DOUBLE: return 8;
        case W_FIXED: return w->n;
        case W_RECORD: {
                uint32_t s = 0;
                for (uint32_t i = 0; i < w->n; i++)
                        s += wmin_size(w->kids[i], depth + 1);
                return s;
        }
        default: return 1; /* varint, length prefix, block count, branch index */
        }
}

/* ------------------------------------------------------------------------ */
/* Plan.                                                                     */

typedef struct op op_t;
typedef struct plan {
        op_t *ops;
        uint32_t nops;
} plan_t;

struct op {
        uint8_t rk;      /* reader kind, RK_SKIP to skip the writer value */
        uint8_t wt;      /* writer type; W_UNION: dispatch to br[branch] */
        uint8_t bad;     /* this branch cannot be read into the reader */
        uint8_t is_null; /* RK_OPTSTR fed by the writer's null */
        uint16_t off;
        uint32_t nbr;
        const wnode_t *w;
        op_t *br;
        uint8_t *emap; /* writer enum index -> reader value, 0xff: none */
        plan_t *sub;   /* RK_ITEMS: plan of one element */
};

struct ds_codec {
        arena_t arena;
        const ds_reader_t *reader;
        avro_schema_t writer;
        plan_t top;
        ds_item_t item_proto;
        uint32_t item_min_size;
        size_t proto_size; /* bytes of reader->proto copied before decoding */
        /* ops[0, native) are the reader's own layout of Declaration, items
         * included (see native_prefix()): decoded by decode_native(), the
         * rest by the op interpreter; 0 when the writer differs */
        uint32_t native;
        uint8_t force_generic; /* tests: interpreter only */
};

typedef struct compile {
        arena_t *arena;
        const ds_reader_t *reader;
        ds_codec_t *codec;
        char *errstr;
        size_t errsz;
} compile_t;

static int compile_record(compile_t *c, const wnode_t *w, const rfield_t *fields, int n,
                          const uint8_t *has_default, const uint8_t *in_reader, plan_t *out, const char *what);

/* Compiles reading writer type w (not a union) into reader field f.
 * Returns 0 ok, 1 incompatible (op->bad set, errstr says why), -1 fatal. */
static int compile_leaf(compile_t *c, const rfield_t *f, const wnode_t *w, op_t *op) {
        op->rk = f->rk;
        op->wt = w->t;
        op->off = f->off;
        op->w = w;
        switch (f->rk) {
        case RK_STR:
                if (w->t == W_STRING || w->t == W_BYTES)
                        return 0;
                break;
        case RK_OPTSTR:
                if (w->t == W_STRING || w->t == W_BYTES)
                        return 0;
                if (w->t == W_NULL) {
                        op->is_null = 1;
                        return 0;
                }
                break;
        case RK_INT:
                if (w->t == W_INT)
                        return 0;
                break;
        case RK_LONG:
                if (w->t == W_INT || w->t == W_LONG)
                        return 0;
                break;
        case RK_DOUBLE:
                if (w->t == W_INT || w->t == W_LONG || w->t == W_FLOAT || w->t == W_DOUBLE)
                        return 0;
                break;
        case RK_ENUM: {
                if (w->t != W_ENUM || strcmp(w->name, renums[f->renum].name))
                        break;
                op->emap = arena_alloc(c->arena, w->n + 1);
                if (!op->emap)
                        return -1;
                int usable = 0;
                for (uint32_t i = 0; i < w->n; i++) {
                        int v = enum_index(f->renum, w->names[i]);
                        if (v < 0)
                                v = c->reader->enum_default[f->renum];
                        op->emap[i] = v < 0 ? 0xff : (uint8_t)v;
                        usable |= v >= 0;
                }
                if (!usable)
                        break;
                return 0;
        }
        case RK_ITEMS: {
                const wnode_t *e = w->t == W_ARRAY ? w->kids[0] : NULL;
                if (!e || e->t != W_RECORD || strcmp(e->name, "Item"))
                        break;
                op->sub = arena_alloc(c->arena, sizeof(plan_t));
                if (!op->sub)
                        return -1;
                if (compile_record(c, e, item_fields, NITEM, c->reader->item_has_default, c->reader->item_in_reader,
                                   op->sub, "Item"))
                        return -1;
                c->codec->item_min_size = wmin_size(e, 0);
                return 0;
        }
        }
        op->bad = 1;
        ds_err(c->errstr, c->errsz, "field %s: writer type %s%s%s cannot be read as the reader's type", f->name,
               wt_names[w->t], w->name ? " " : "", w->name ? w->name : "");
        return 1;
}

static int compile_field(compile_t *c, const rfield_t *f, const wnode_t *w, op_t *op) {
        if (w->t != W_UNION)
                return compile_leaf(c, f, w, op);
        op->rk = f->rk;
        op->wt = W_UNION;
        op->off = f->off;
        op->w = w;
        op->nbr = w->n;
        op->br = arena_alloc(c->arena, sizeof(op_t) * (w->n + 1));
        if (!op->br)
                return -1;
        int usable = 0;
        for (uint32_t i = 0; i < w->n; i++) {
                int r = compile_leaf(c, f, w->kids[i], &op->br[i]);
                if (r < 0)
                        return -1;
                usable |= r == 0;
        }
        if (!usable)
                return ds_err(c->errstr, c->errsz, "field %s: no branch of the writer's union can be read", f->name);
        return 0;
}

static int compile_record(compile_t *c, const wnode_t *w, const rfield_t *fields, int n,
                          const uint8_t *has_default, const uint8_t *in_reader, plan_t *out, const char *what) {
        uint8_t seen[MAX_RFIELDS] = {0};
        out->nops = w->n;
        out->ops = arena_alloc(c->arena, sizeof(op_t) * (w->n + 1));
        if (!out->ops)
                return ds_err(c->errstr, c->errsz, "out of memory");
        for (uint32_t i = 0; i < w->n; i++) {
                op_t *op = &out->ops[i];
                int fi = -1;
                for (int k = 0; k < n; k++)
                        if (in_reader[k] && !strcmp(fields[k].name, w->names[i]))
                                fi = k;
                if (fi < 0) {
                        op->rk = RK_SKIP;
                        op->w = w->kids[i];
                        op->wt = w->kids[i]->t;
                        continue;
                }
                if (seen[fi])
                        return ds_err(c->errstr, c->errsz, "%s: writer has field %s twice", what, w->names[i]);
                seen[fi] = 1;
                int r = compile_field(c, &fields[fi], w->kids[i], op);
                if (r) /* a plain (non-union) field of an unreadable type is fatal */
                        return -1;
        }
        for (int k = 0; k < n; k++)
                if (in_reader[k] && !seen[k] && !has_default[k])
                        return ds_err(c->errstr, c->errsz,
                                      "%s: reader field %s has no default and the writer schema lacks it", what,
                                      fields[k].name);
        return 0;
}

/* ---- the reader's own layout ------------------------------------------
 *
 * Nearly every message is written with the schema the processor reads with
 * (v1), or with v2, which is v1 with fields added at the end. For those the
 * interpreter's dispatch per field (load the op, test skip / union / bad,
 * switch on the kind, then on the writer type) cost more than the reads it
 * dispatches to: ~3,000 instructions for a message's ~55 values.
 * native_prefix() recognises the plan of that layout - the reader's twelve
 * Declaration fields in its order, each from the writer type the reader has
 * (plate: the union [null, string]), items of the reader's seven Item fields -
 * and decode_native() reads it in straight-line code, with the same reads and
 * the same checks in the same order as the ops would run them, so the two
 * accept and reject exactly the same bytes with the same reasons
 * (tests/test_codec.c compares them on mutated messages; the fuzz targets
 * compare the codec with Avro C). Writer fields after the prefix (v2's) are
 * run by the interpreter. Any other writer (reordered, promoted, renamed
 * enums...) uses the interpreter throughout.
 */

static int op_is(const op_t *op, uint8_t rk, uint8_t wt, size_t off) {
        return op->rk == rk && op->wt == wt && op->off == off && !op->bad;
}

static int op_is_str(const op_t *op, uint8_t rk, size_t off) {
        return op->rk == rk && (op->wt == W_STRING || op->wt == W_BYTES) && op->off == off && !op->bad;
}

/* native_item() reads exactly these seven fields: a reader Item with more
 * needs them there too, or an eighth writer field would go unread. */
_Static_assert(NITEM == 7, "native_item() reads the seven Item fields; update it with item_fields");

static int item_plan_is_native(const plan_t *pl) {
        const op_t *o = pl->ops;
        return pl->nops == 7 && op_is_str(&o[0], RK_STR, offsetof(ds_item_t, hs_code)) &&
               op_is_str(&o[1], RK_STR, offsetof(ds_item_t, description)) &&
               op_is(&o[2], RK_DOUBLE, W_DOUBLE, offsetof(ds_item_t, quantity)) &&
               op_is_str(&o[3], RK_STR, offsetof(ds_item_t, unit)) &&
               op_is(&o[4], RK_LONG, W_LONG, offsetof(ds_item_t, gross_weight_g)) &&
               op_is(&o[5], RK_LONG, W_LONG, offsetof(ds_item_t, customs_value_usd_cents)) &&
               op_is_str(&o[6], RK_STR, offsetof(ds_item_t, origin_country));
}

/* The number of leading ops decode_native() covers: NATIVE_OPS, or 0. */
#define NATIVE_OPS 12u
static uint32_t native_prefix(const plan_t *pl) {
        const op_t *o = pl->ops;
        if (pl->nops < NATIVE_OPS)
                return 0;
        const op_t *plate = &o[10];
        int ok = op_is_str(&o[0], RK_STR, offsetof(ds_decl_t, declaration_id)) &&
                 op_is(&o[1], RK_INT, W_INT, offsetof(ds_decl_t, version)) &&
                 op_is(&o[2], RK_ENUM, W_ENUM, offsetof(ds_decl_t, kind)) &&
                 op_is(&o[3], RK_LONG, W_LONG, offsetof(ds_decl_t, declared_at)) &&
                 op_is_str(&o[4], RK_STR, offsetof(ds_decl_t, gate_code)) &&
                 op_is_str(&o[5], RK_STR, offsetof(ds_decl_t, customs_office)) &&
                 op_is_str(&o[6], RK_STR, offsetof(ds_decl_t, type_code)) &&
                 op_is(&o[7], RK_ENUM, W_ENUM, offsetof(ds_decl_t, flow)) &&
                 op_is_str(&o[8], RK_STR, offsetof(ds_decl_t, declarant_tax_id)) &&
                 op_is(&o[9], RK_ENUM, W_ENUM, offsetof(ds_decl_t, channel)) &&
                 op_is(plate, RK_OPTSTR, W_UNION, offsetof(ds_decl_t, vehicle_plate)) && plate->nbr == 2 &&
                 plate->br[0].wt == W_NULL && plate->br[0].is_null && !plate->br[0].bad &&
                 op_is_str(&plate->br[1], RK_OPTSTR, offsetof(ds_decl_t, vehicle_plate)) &&
                 op_is(&o[11], RK_ITEMS, W_ARRAY, offsetof(ds_decl_t, items)) && item_plan_is_native(o[11].sub);
        return ok ? NATIVE_OPS : 0;
}

void ds_codec_set_generic(ds_codec_t *c, int generic) {
        c->force_generic = generic != 0;
}

int ds_codec_is_native(const ds_codec_t *c) {
        return c->native != 0;
}

ds_codec_t *ds_codec_new(const ds_reader_t *reader, avro_schema_t writer, char *errstr, size_t sz) {
        ds_codec_t *codec = calloc(1, sizeof(*codec));
        if (!codec) {
                ds_err(errstr, sz, "out of memory");
                return NULL;
        }
        codec->reader = reader;
        build_t *b = calloc(1, sizeof(*b));
        if (!b) {
                ds_err(errstr, sz, "out of memory");
                free(codec);
                return NULL;
        }
        b->arena = &codec->arena;
        b->errstr = errstr;
        b->errsz = sz;
        wnode_t *root = wbuild(b, writer, 0);
        free(b);
        if (!root)
                goto fail;
        if (root->t != W_RECORD || strcmp(root->name, "Declaration")) {
                ds_err(errstr, sz, "writer schema is not the record Declaration");
                goto fail;
        }
        compile_t c = {&codec->arena, reader, codec, errstr, sz};
        if (compile_record(&c, root, decl_fields, NDECL, reader->decl_has_default, reader->decl_in_reader,
                           &codec->top, "Declaration"))
                goto fail;
        codec->item_proto = reader->item_proto;
        codec->proto_size = offsetof(ds_decl_t, items);
        codec->native = native_prefix(&codec->top);
        codec->writer = avro_schema_incref(writer);
        return codec;
fail:
        arena_free(&codec->arena);
        free(codec);
        return NULL;
}

void ds_codec_destroy(ds_codec_t *c) {
        if (!c)
                return;
        if (c->writer)
                avro_schema_decref(c->writer);
        arena_free(&c->arena);
        free(c);
}

/* ------------------------------------------------------------------------ */
/* Decoding.                                                                 */

typedef struct cur {
        const uint8_t *p, *end;
} cur_t;

/* Avro varint, as Avro C reads it: at most 10 bytes, bits past 64 dropped. */
static inline ds_dlq_reason_t rd_long(cur_t *c, int64_t *out) {
        uint64_t v = 0;
        const uint8_t *p = c->p;
        /* one byte: string lengths under 64, enum and union indexes, small
         * ints - most varints of a declaration (~40 of ~55 per message) */
        if (DS_LIKELY(p < c->end && !(*p & 0x80))) {
                v = *p;
                c->p = p + 1;
                *out = (int64_t)((v >> 1) ^ (~(v & 1) + 1));
                return DS_DLQ_NONE;
        }
        for (int i = 0;; i++) {
                if (DS_UNLIKELY(i == 10))
                        return DS_DLQ_MALFORMED;
                if (DS_UNLIKELY(p >= c->end))
                        return DS_DLQ_TRUNCATED;
                uint8_t b = *p++;
                v |= (uint64_t)(b & 0x7f) << (7 * i);
                if (!(b & 0x80))
                        break;
        }
        c->p = p;
        *out = (int64_t)((v >> 1) ^ (~(v & 1) + 1));
        return DS_DLQ_NONE;
}

static inline ds_dlq_reason_t rd_int(cur_t *c, int32_t *out) {
        int64_t v;
        ds_dlq_reason_t r = rd_long(c, &v);
        if (DS_UNLIKELY(r))
                return r;
        if (DS_UNLIKELY(v < INT32_MIN || v > INT32_MAX))
                return DS_DLQ_MALFORMED;
        *out = (int32_t)v;
        return DS_DLQ_NONE;
}

static inline ds_dlq_reason_t rd_bytes(cur_t *c, ds_str_t *out) {
        int64_t len;
        ds_dlq_reason_t r = rd_long(c, &len);
        if (DS_UNLIKELY(r))
                return r;
        if (DS_UNLIKELY(len < 0))
                return DS_DLQ_MALFORMED;
        if (DS_UNLIKELY((uint64_t)len > (uint64_t)(c->end - c->p)))
                return DS_DLQ_TRUNCATED;
        out->p = (const char *)c->p;
        out->len = (uint32_t)len;
        c->p += len;
        return DS_DLQ_NONE;
}

static inline ds_dlq_reason_t rd_fixed(cur_t *c, void *dst, size_t n) {
        if (DS_UNLIKELY((size_t)(c->end - c->p) < n))
                return DS_DLQ_TRUNCATED;
        if (dst)
                memcpy(dst, c->p, n);
        c->p += n;
        return DS_DLQ_NONE;
}

/* An enum read into the reader's value through the op's symbol map. */
static inline ds_dlq_reason_t rd_enum(cur_t *c, const op_t *op, uint8_t *dst) {
        int64_t v;
        ds_dlq_reason_t r = rd_long(c, &v);
        if (DS_UNLIKELY(r))
                return r;
        if (DS_UNLIKELY(v < 0 || v >= op->w->n))
                return DS_DLQ_MALFORMED;
        if (DS_UNLIKELY(op->emap[v] == 0xff))
                return DS_DLQ_INCOMPATIBLE_SCHEMA;
        *dst = op->emap[v];
        return DS_DLQ_NONE;
}

#define TRY(x)                                                                                                        \
        do {                                                                                                          \
                ds_dlq_reason_t r_ = (x);                                                                             \
                if (DS_UNLIKELY(r_))                                                                                  \
                        return r_;                                                                                    \
        } while (0)

/* One Item of the reader's own layout (item_plan_is_native()): every field
 * of ds_item_t is written, so the item prototype is not needed. */
static inline ds_dlq_reason_t native_item(cur_t *c, ds_item_t *it) {
        TRY(rd_bytes(c, &it->hs_code));
        TRY(rd_bytes(c, &it->description));
        TRY(rd_fixed(c, &it->quantity, 8));
        TRY(rd_bytes(c, &it->unit));
        TRY(rd_long(c, &it->gross_weight_g));
        TRY(rd_long(c, &it->customs_value_usd_cents));
        TRY(rd_bytes(c, &it->origin_country));
        return DS_DLQ_NONE;
}

static ds_dlq_reason_t skip(const wnode_t *w, cur_t *c, int depth) {
        int64_t v;
        ds_str_t s;
        ds_dlq_reason_t r;
        if (DS_UNLIKELY(depth > MAX_DEPTH))
                return DS_DLQ_MALFORMED;
        switch (w->t) {
        case W_NULL: return DS_DLQ_NONE;
        case W_BOOL: return rd_fixed(c, NULL, 1);
        case W_INT: /* skipped like Avro C's skip_int: no range check */
        case W_LONG: return rd_long(c, &v);
        case W_FLOAT: return rd_fixed(c, NULL, 4);
        case W_DOUBLE: return rd_fixed(c, NULL, 8);
        case W_STRING:
        case W_BYTES: return rd_bytes(c, &s);
        case W_FIXED: return rd_fixed(c, NULL, w->n);
        case W_ENUM: /* a skipped enum is not interpreted (as in Avro C) */
                return rd_long(c, &v);
        case W_UNION:
                if ((r = rd_long(c, &v)))
                        return r;
                if (v < 0 || v >= w->n)
                        return DS_DLQ_MALFORMED;
                return skip(w->kids[v], c, depth + 1);
        case W_RECORD:
                for (uint32_t i = 0; i < w->n; i++)
                        if ((r = skip(w->kids[i], c, depth + 1)))
                                return r;
                return DS_DLQ_NONE;
        case W_ARRAY:
        case W_MAP: {
                uint32_t min = wmin_size(w->kids[0], 0) + (w->t == W_MAP ? 1 : 0);
                for (;;) {
                        int64_t cnt, size;
                        if ((r = rd_long(c, &cnt)))
                                return r;
                        if (cnt == 0)
                                return DS_DLQ_NONE;
                        if (cnt < 0) {
                                if ((r = rd_long(c, &size)))
                                        return r;
                                if (cnt == INT64_MIN) /* -cnt overflows; Avro C goes on reading 2^63 elements */
                                        return DS_DLQ_MALFORMED;
                                cnt = -cnt;
                        }
                        if (min && (uint64_t)cnt > (uint64_t)(c->end - c->p) / min)
                                return DS_DLQ_TRUNCATED;
                        if (!min && cnt > (int64_t)1 << 20)
                                return DS_DLQ_MALFORMED; /* zero-size elements: refuse absurd counts */
                        for (int64_t i = 0; i < cnt; i++) {
                                if (w->t == W_MAP && (r = rd_bytes(c, &s)))
                                        return r;
                                if ((r = skip(w->kids[0], c, depth + 1)))
                                        return r;
                        }
                }
        }
        }
        return DS_DLQ_MALFORMED;
}

static ds_dlq_reason_t run_plan(const ds_codec_t *codec, const plan_t *pl, cur_t *c, char *dst, ds_decl_t *decl);

static ds_dlq_reason_t run_items(const ds_codec_t *codec, const op_t *op, cur_t *c, ds_decl_t *decl, int native) {
        ds_dlq_reason_t r;
        uint32_t min = codec->item_min_size;
        for (;;) {
                int64_t cnt, size;
                if ((r = rd_long(c, &cnt)))
                        return r;
                if (cnt == 0)
                        return DS_DLQ_NONE;
                if (cnt < 0) {
                        if ((r = rd_long(c, &size)))
                                return r;
                        if (cnt == INT64_MIN) /* -cnt overflows; Avro C goes on reading 2^63 elements */
                                return DS_DLQ_MALFORMED;
                        cnt = -cnt;
                }
                if (min && (uint64_t)cnt > (uint64_t)(c->end - c->p) / min)
                        return DS_DLQ_TRUNCATED;
                if (cnt > (int64_t)(DS_MAX_ITEMS - decl->item_cnt))
                        return DS_DLQ_TOO_MANY_ITEMS;
                for (int64_t i = 0; i < cnt; i++) {
                        ds_item_t *it = &decl->items[decl->item_cnt++];
                        if (native) {
                                TRY(native_item(c, it));
                                continue;
                        }
                        *it = codec->item_proto;
                        if ((r = run_plan(codec, op->sub, c, (char *)it, decl)))
                                return r;
                }
        }
}

static inline ds_dlq_reason_t run_op(const ds_codec_t *codec, const op_t *op, cur_t *c, char *dst, ds_decl_t *decl) {
        ds_dlq_reason_t r;
        int64_t v;
        /* a skipped writer field is walked by skip(), whatever its type: a
         * skipped union must not be taken for a union feeding a reader field */
        if (DS_UNLIKELY(op->rk == RK_SKIP))
                return skip(op->w, c, 0);
        if (op->wt == W_UNION) {
                if ((r = rd_long(c, &v)))
                        return r;
                if (DS_UNLIKELY(v < 0 || v >= op->nbr))
                        return DS_DLQ_MALFORMED;
                op = &op->br[v];
        }
        if (DS_UNLIKELY(op->bad))
                return DS_DLQ_INCOMPATIBLE_SCHEMA;
        char *f = dst + op->off;
        switch (op->rk) {
        case RK_SKIP:
                return skip(op->w, c, 0);
        case RK_STR:
        case RK_OPTSTR:
                if (op->is_null) {
                        *(ds_str_t *)f = (ds_str_t){NULL, 0};
                        return DS_DLQ_NONE;
                }
                return rd_bytes(c, (ds_str_t *)f);
        case RK_INT:
                return rd_int(c, (int32_t *)f);
        case RK_LONG:
                if (op->wt == W_INT) {
                        int32_t i;
                        if ((r = rd_int(c, &i)))
                                return r;
                        *(int64_t *)f = i;
                        return DS_DLQ_NONE;
                }
                return rd_long(c, (int64_t *)f);
        case RK_DOUBLE:
                switch (op->wt) {
                case W_DOUBLE:
                        return rd_fixed(c, f, 8);
                case W_FLOAT: {
                        float fl;
                        if ((r = rd_fixed(c, &fl, 4)))
                                return r;
                        *(double *)f = fl;
                        return DS_DLQ_NONE;
                }
                case W_INT: {
                        int32_t i;
                        if ((r = rd_int(c, &i)))
                                return r;
                        *(double *)f = i;
                        return DS_DLQ_NONE;
                }
                default:
                        if ((r = rd_long(c, &v)))
                                return r;
                        *(double *)f = (double)v;
                        return DS_DLQ_NONE;
                }
        case RK_ENUM:
                return rd_enum(c, op, (uint8_t *)f);
        case RK_ITEMS:
                return run_items(codec, op, c, decl, 0);
        }
        return DS_DLQ_MALFORMED;
}

static ds_dlq_reason_t run_plan(const ds_codec_t *codec, const plan_t *pl, cur_t *c, char *dst, ds_decl_t *decl) {
        for (uint32_t i = 0; i < pl->nops; i++) {
                ds_dlq_reason_t r = run_op(codec, &pl->ops[i], c, dst, decl);
                if (DS_UNLIKELY(r))
                        return r;
        }
        return DS_DLQ_NONE;
}

/* ops[0, NATIVE_OPS) of a native_prefix() plan, straight-line: the reads
 * run_op() would make for these ops, in the same order. */
static ds_dlq_reason_t decode_native(const ds_codec_t *codec, cur_t *c, ds_decl_t *d) {
        const op_t *o = codec->top.ops;
        TRY(rd_bytes(c, &d->declaration_id));
        TRY(rd_int(c, &d->version));
        TRY(rd_enum(c, &o[2], &d->kind));
        TRY(rd_long(c, &d->declared_at));
        TRY(rd_bytes(c, &d->gate_code));
        TRY(rd_bytes(c, &d->customs_office));
        TRY(rd_bytes(c, &d->type_code));
        TRY(rd_enum(c, &o[7], &d->flow));
        TRY(rd_bytes(c, &d->declarant_tax_id));
        TRY(rd_enum(c, &o[9], &d->channel));
        int64_t branch;
        TRY(rd_long(c, &branch));
        if (DS_UNLIKELY(branch < 0 || branch >= 2))
                return DS_DLQ_MALFORMED;
        if (branch == 0)
                d->vehicle_plate = (ds_str_t){NULL, 0};
        else
                TRY(rd_bytes(c, &d->vehicle_plate));
        return run_items(codec, &o[11], c, d, 1);
}

ds_dlq_reason_t ds_codec_decode(const ds_codec_t *codec, const uint8_t *buf, size_t len, ds_decl_t *out) {
        cur_t c = {buf, buf + len};
        memcpy(out, &codec->reader->proto, codec->proto_size);
        out->item_cnt = 0;
        uint32_t first = 0;
        if (DS_LIKELY(codec->native && !codec->force_generic)) {
                TRY(decode_native(codec, &c, out));
                first = codec->native;
        }
        for (uint32_t i = first; i < codec->top.nops; i++)
                TRY(run_op(codec, &codec->top.ops[i], &c, (char *)out, out));
        return c.p == c.end ? DS_DLQ_NONE : DS_DLQ_TRAILING_BYTES;
}
