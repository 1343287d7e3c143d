/*
 * ds_schemas.c - the local schema registry.
 */
#include "ds_schemas.h"
#include "ds_common.h"
#include "ds_config.h"
#include "ds_wire.h"
#include "ds_log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIRECT_IDS 4096

typedef struct entry {
        uint32_t id;
        avro_schema_t schema;
        ds_codec_t *codec;
        char note[256];
} entry_t;

struct ds_schemas {
        ds_reader_t *reader;
        entry_t *entries;
        int n;
        int16_t direct[DIRECT_IDS]; /* id -> entry index + 1 */
};

char *ds_read_file(const char *path, size_t *len, char *errstr, size_t sz) {
        FILE *f = fopen(path, "rb");
        if (!f) {
                ds_err(errstr, sz, "cannot open %s: %s", path, strerror(errno));
                return NULL;
        }
        char *buf = NULL;
        size_t n = 0, cap = 0;
        for (;;) {
                if (n + 4096 + 1 > cap) {
                        cap = cap ? cap * 2 : 8192;
                        char *b = realloc(buf, cap);
                        if (!b) {
                                free(buf);
                                fclose(f);
                                ds_err(errstr, sz, "out of memory reading %s", path);
                                return NULL;
                        }
                        buf = b;
                }
                size_t r = fread(buf + n, 1, 4096, f);
                n += r;
                if (r < 4096)
                        break;
        }
        int err = ferror(f);
        fclose(f);
        if (err) {
                free(buf);
                ds_err(errstr, sz, "cannot read %s", path);
                return NULL;
        }
        buf[n] = '\0';
        if (len)
                *len = n;
        return buf;
}

static entry_t *find(const ds_schemas_t *s, uint32_t id) {
        if (id < DIRECT_IDS)
                return s->direct[id] ? &s->entries[s->direct[id] - 1] : NULL;
        for (int i = 0; i < s->n; i++)
                if (s->entries[i].id == id)
                        return &s->entries[i];
        return NULL;
}

ds_schemas_t *ds_schemas_load(const char *dir, char *errstr, size_t sz) {
        ds_schemas_t *s = calloc(1, sizeof(*s));
        char path[4096], err[512];
        char *text = NULL;
        if (!s) {
                ds_err(errstr, sz, "out of memory");
                return NULL;
        }
        size_t len;
        snprintf(path, sizeof(path), "%s/customs_declaration.avsc", dir);
        if (!(text = ds_read_file(path, &len, err, sizeof(err)))) {
                ds_err(errstr, sz, "schema.dir: %s", err);
                goto fail;
        }
        s->reader = ds_reader_new(text, len, err, sizeof(err));
        free(text);
        text = NULL;
        if (!s->reader) {
                ds_err(errstr, sz, "%s: %s", path, err);
                goto fail;
        }

        snprintf(path, sizeof(path), "%s/registry.properties", dir);
        FILE *f = fopen(path, "r");
        if (!f) {
                ds_err(errstr, sz, "schema.dir: cannot open %s: %s", path, strerror(errno));
                goto fail;
        }
        char line[1024];
        int lineno = 0;
        while (fgets(line, sizeof(line), f)) {
                lineno++;
                char *p = line;
                while (isspace((unsigned char)*p))
                        p++;
                if (!*p || *p == '#')
                        continue;
                char *end;
                errno = 0;
                unsigned long id = strtoul(p, &end, 10);
                if (errno || end == p || id > UINT32_MAX) {
                        ds_err(errstr, sz, "%s:%d: expected <schema id> = <file>", path, lineno);
                        fclose(f);
                        goto fail;
                }
                p = end;
                while (isspace((unsigned char)*p))
                        p++;
                if (*p++ != '=') {
                        ds_err(errstr, sz, "%s:%d: expected <schema id> = <file>", path, lineno);
                        fclose(f);
                        goto fail;
                }
                while (isspace((unsigned char)*p))
                        p++;
                char *e = p + strlen(p);
                while (e > p && isspace((unsigned char)e[-1]))
                        *--e = '\0';
                if (find(s, (uint32_t)id)) {
                        ds_err(errstr, sz, "%s:%d: schema id %lu registered twice", path, lineno, id);
                        fclose(f);
                        goto fail;
                }
                char spath[4096];
                snprintf(spath, sizeof(spath), "%s/%s", dir, p);
                if (!(text = ds_read_file(spath, &len, err, sizeof(err)))) {
                        ds_err(errstr, sz, "%s:%d: %s", path, lineno, err);
                        fclose(f);
                        goto fail;
                }
                avro_schema_t schema;
                if (avro_schema_from_json_length(text, len, &schema)) {
                        ds_err(errstr, sz, "%s: not a valid Avro schema: %s", spath, avro_strerror());
                        free(text);
                        fclose(f);
                        goto fail;
                }
                free(text);
                text = NULL;
                entry_t *ne = realloc(s->entries, (size_t)(s->n + 1) * sizeof(*ne));
                if (!ne) {
                        avro_schema_decref(schema);
                        ds_err(errstr, sz, "out of memory");
                        fclose(f);
                        goto fail;
                }
                s->entries = ne;
                entry_t *en = &s->entries[s->n++];
                memset(en, 0, sizeof(*en));
                en->id = (uint32_t)id;
                en->schema = schema;
                if (is_avro_record(schema) && !strcmp(avro_schema_name(schema), "Declaration")) {
                        en->codec = ds_codec_new(s->reader, schema, en->note, sizeof(en->note));
                } else {
                        snprintf(en->note, sizeof(en->note), "record %s is not a Declaration",
                                 is_avro_named_type(schema) ? avro_schema_name(schema) : avro_schema_type_name(schema));
                }
                if (id < DIRECT_IDS)
                        s->direct[id] = (int16_t)s->n;
        }
        fclose(f);
        if (!s->n) {
                ds_err(errstr, sz, "%s registers no schema", path);
                goto fail;
        }
        return s;
fail:
        free(text);
        ds_schemas_destroy(s);
        return NULL;
}

ds_schemas_t *ds_schemas_open(const ds_config_t *cfg, char *errstr, size_t sz) {
        if (cfg->schema_registry_url && *cfg->schema_registry_url) {
                ds_err(errstr, sz, "schema.registry.url: the Schema Registry client is not built yet");
                return NULL;
        }
        return ds_schemas_load(cfg->schema_dir, errstr, sz);
}

ds_dlq_reason_t ds_schemas_resolve(const ds_schemas_t *s, const uint8_t *msg, size_t len, ds_resolved_t *out) {
        uint32_t id;
        out->codec = NULL;
        out->schema_id = -1;
        ds_dlq_reason_t r = ds_wire_parse(msg, len, &id, &out->body, &out->body_len);
        if (DS_UNLIKELY(r))
                return r;
        out->schema_id = id;
        out->codec = ds_schemas_codec(s, id, &r);
        return out->codec ? DS_DLQ_NONE : r;
}

void ds_schemas_destroy(ds_schemas_t *s) {
        if (!s)
                return;
        for (int i = 0; i < s->n; i++) {
                ds_codec_destroy(s->entries[i].codec);
                avro_schema_decref(s->entries[i].schema);
        }
        free(s->entries);
        ds_reader_destroy(s->reader);
        free(s);
}

const ds_codec_t *ds_schemas_codec(const ds_schemas_t *s, uint32_t id, ds_dlq_reason_t *why) {
        entry_t *e = find(s, id);
        if (DS_UNLIKELY(!e)) {
                *why = DS_DLQ_UNKNOWN_SCHEMA;
                return NULL;
        }
        if (DS_UNLIKELY(!e->codec)) {
                *why = DS_DLQ_INCOMPATIBLE_SCHEMA;
                return NULL;
        }
        return e->codec;
}

avro_schema_t ds_schemas_get(const ds_schemas_t *s, uint32_t id) {
        entry_t *e = find(s, id);
        return e ? e->schema : NULL;
}

const ds_reader_t *ds_schemas_reader(const ds_schemas_t *s) {
        return s->reader;
}

const char *ds_schemas_note(const ds_schemas_t *s, uint32_t id) {
        entry_t *e = find(s, id);
        return e ? e->note : "not registered";
}
