/*
 * ds_config.c - the configuration table and its loaders.
 *
 * The table follows librdkafka's property table: each row knows the offset
 * of its field in ds_config_t, its type and range, its default as a string
 * (set through the same parser as user values, so defaults are validated
 * too) and its description.
 */
#include "ds_config.h"
#include "ds_common.h"
#include "ds_log.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#ifndef DS_SCHEMA_DIR
#define DS_SCHEMA_DIR "schemas"
#endif

typedef enum { CT_STR, CT_INT, CT_I64, CT_BOOL, CT_ENUM } ctype_t; /* CT_INT: int, CT_I64: int64_t */

typedef struct confdef {
        const char *name;
        ctype_t type;
        size_t off;
        int64_t min, max;
        const char *def;
        const char *enums; /* CT_ENUM: "a|b|c", value = index */
        const char *desc;
} confdef_t;

#define O(f) offsetof(ds_config_t, f)
static const confdef_t defs[] = {
        {"input.topic", CT_STR, O(input_topic), 0, 0, "customs.declarations", NULL,
         "Topic the declaration events are read from."},
        {"output.topic", CT_STR, O(output_topic), 0, 0, "customs.totals", NULL,
         "Topic the aggregate rows are published to (one message per changed row)."},
        {"dlq.topic", CT_STR, O(dlq_topic), 0, 0, "customs.declarations.dlq", NULL,
         "Dead-letter topic: invalid messages, unchanged, with headers saying why."},
        {"top.topic", CT_STR, O(top_topic), 0, 0, "customs.top_headings", NULL,
         "Topic the top ten headings by customs value per gate and day are published to."},
        {"partial.topic", CT_STR, O(partial_topic), 0, 0, "customs.totals.partial", NULL,
         "Per-partition shares of the rows, in batches, from the processing role to the merge role (a merge restores "
         "its "
         "latest snapshot and reads on from there: keep several merge.snapshot.interval.ms of it, or all of it without "
         "snapshots)."},
        {"state.topic", CT_STR, O(state_topic), 0, 0, "customs.state", NULL,
         "Changelog: each input partition's state (snapshots, deltas, checkpoints), as many partitions as the input."},
        {"role", CT_ENUM, O(role), 0, 0, "all", "all|process|merge",
         "process: consume and aggregate input partitions; merge: sum the partitions' shares and publish; all: both."},
        {"exactly.once.mode", CT_ENUM, O(eos_mode), 0, 0, "checkpoint", "checkpoint|transactions",
         "checkpoint: changelog checkpoints with upserts (works on any broker); transactions: also wrap each cycle in "
         "a "
         "Kafka transaction (real clusters; the embedded broker does not keep their promises)."},
        {"instance.id", CT_STR, O(instance_id), 0, 0, "", NULL,
         "This instance's stable name, for transactional ids (<group>.<instance>.process/.merge); empty: the host "
         "name."},
        {"merge.interval.ms", CT_I64, O(merge_interval_ms), 10, 3600000, "200", NULL,
         "How often the merge role publishes the rows that changed, at the latest: it publishes sooner (at most "
         "four times as often) when the partial topic has nothing more to read."},
        {"merge.state.topic", CT_STR, O(merge_state_topic), 0, 0, "customs.merge.state", NULL,
         "The merge role's snapshots of its state, partition X for partial partition X (at least as many partitions as "
         "the partial topic; time retention of a few snapshot intervals)."},
        {"merge.snapshot.interval.ms", CT_I64, O(merge_snapshot_interval_ms), 0, INT64_MAX / 4, "600000", NULL,
         "How often the merge role snapshots each partial partition's merge to merge.state.topic; a restarting merge "
         "loads the latest and reads the partial topic from there, so that topic needs to keep only what came after "
         "(README, \"Exactly once\"). 0: no snapshots, no merge.state.topic; the merge rebuilds from the partial "
         "topic's "
         "start, which must then be kept whole."},
        {"state.snapshot.min.bytes", CT_I64, O(snapshot_min_bytes), 0, INT64_MAX / 4, "1048576", NULL,
         "A partition's state is snapshotted when the changelog written since its last snapshot exceeds both this and "
         "the snapshot's size, times 1, 1.25, 1.5 or 1.75 by partition number (so that partitions fed alike do not all "
         "snapshot in the same cycle)."},
        {"state.snapshot.interval.cycles", CT_INT, O(snapshot_interval_cycles), 0, 1000000, "0", NULL,
         "Also snapshot a partition at least every N cycles (bounds restore time); 0: by size only."},
        {"schema.dir", CT_STR, O(schema_dir), 0, 0, DS_SCHEMA_DIR, NULL,
         "Directory holding registry.properties and the .avsc files it names."},
        {"schema.registry.url", CT_STR, O(schema_registry_url), 0, 0, "", NULL,
         "Confluent Schema Registry base URL for ids not in schema.dir (e.g. http://registry:8081); empty: none."},
        {"schema.registry.basic.auth.user.info", CT_STR, O(schema_registry_user_info), 0, 0, "", NULL,
         "user:password for the Schema Registry's basic authentication; empty: none."},
        {"schema.registry.timeout.ms", CT_I64, O(schema_registry_timeout_ms), 100, 600000, "2000", NULL,
         "Timeout of one Schema Registry request."},
        {"schema.registry.retries", CT_INT, O(schema_registry_retries), 0, 10, "2", NULL,
         "Retries of a failed Schema Registry request (5xx, timeout), with backoff."},
        {"schema.registry.negative.ttl.ms", CT_I64, O(schema_registry_negative_ttl_ms), 0, 86400000, "60000", NULL,
         "How long an id the registry could not resolve stays unresolved before it is asked again."},
        {"threads", CT_INT, O(threads), 0, 256, "0", NULL, "Worker threads; 0 means one per CPU core."},
        {"commit.interval.ms", CT_I64, O(commit_interval_ms), 10, 3600000, "1000", NULL,
         "How often changed rows are published and input offsets committed: a cycle is due one interval after the "
         "previous one started, and at least half an interval after it ended."},
        {"heading.digits", CT_INT, O(heading_digits), 2, 8, "4", NULL,
         "HS digits that make a COMMODITY key: 2 (chapter), 4 (heading), 6 or 8."},
        {"gates.file", CT_STR, O(gates_file), 0, 0, "", NULL,
         "CSV file of gates accepted besides the 16 compiled in (header line with gate_code; see README, \"Gates\"); "
         "empty: none. The state stores gate numbers, so a file may only gain gates at its end."},
        {"decoder", CT_ENUM, O(decoder), 0, 0, "specialized", "specialized|avro-c",
         "Avro decoder: specialized (compiled from the schema) or avro-c (Apache Avro C generic, the reference)."},
        {"ledger.retention.ms", CT_I64, O(ledger_retention_ms), 60000, INT64_MAX / 4, "3024000000", NULL,
         "How long (event time) a declaration's last version is remembered for amendments; default 35 days."},
        {"window.minute.retention.ms", CT_I64, O(minute_retention_ms), 0, INT64_MAX / 4, "10800000", NULL,
         "How long after its end (event time) a MINUTE window still accepts late events; default 3 hours."},
        {"window.hour.retention.ms", CT_I64, O(hour_retention_ms), 0, INT64_MAX / 4, "259200000", NULL,
         "How long after its end an HOUR window still accepts late events; default 3 days."},
        {"window.day.retention.ms", CT_I64, O(day_retention_ms), 0, INT64_MAX / 4, "34560000000", NULL,
         "How long after its end a DAY window (local day, UTC+7) still accepts late events; default 400 days."},
        {"top.retention.ms", CT_I64, O(top_retention_ms), 0, INT64_MAX / 4, "604800000", NULL,
         "How long after its end a day's top-headings list still accepts late events; default 7 days."},
        {"watermark.idle.ms", CT_I64, O(idle_ms), 1000, INT64_MAX / 4, "300000", NULL,
         "A partition with no event for this long (wall clock) stops holding windows open for the others."},
        {"exit.on.eof", CT_BOOL, O(exit_on_eof), 0, 1, "false", NULL,
         "Publish, commit and exit once every assigned partition is read to its end (batch and replay runs)."},
        {"shutdown.timeout.ms", CT_I64, O(shutdown_timeout_ms), 100, 600000, "10000", NULL,
         "On SIGTERM/SIGINT or a fatal error: time allowed to publish, commit and leave the group before exiting "
         "(not applied at the end of input with exit.on.eof)."},
        {"stats.interval.ms", CT_I64, O(stats_interval_ms), 0, 3600000, "10000", NULL,
         "How often a progress line is logged; 0 turns it off."},
        {"batch.size", CT_INT, O(batch_size), 1, 65536, "4096", NULL,
         "Messages a worker takes from its queue at a time."},
        {"http.listen", CT_STR, O(http_listen), 0, 0, "127.0.0.1:8080", NULL,
         "HOST:PORT of the HTTP server (dashboard, JSON API, /metrics, /healthz, /readyz); port 0 picks a free one; "
         "off: "
         "no server."},
        {"http.max.connections.per.ip", CT_INT, O(http_per_ip), 0, 256, "64", NULL,
         "HTTP connections one client address may hold at once (of 256 in all), so that one client cannot take the "
         "probes' places; 0: no limit (for a reverse proxy in front, whose address every request has)."},
        {"http.max.rows", CT_INT, O(http_max_rows), 1000, 100000000, "1000000", NULL,
         "Rows of the output topics the HTTP API keeps in memory (~150 bytes each); further new rows are counted and "
         "dropped."},
        {"ready.max.lag", CT_I64, O(ready_max_lag), 0, INT64_MAX / 4, "0", NULL,
         "/readyz answers 503 while the input lag exceeds this many messages; 0: lag does not count."},
        {"log.level", CT_ENUM, O(log_level), 0, 0, "info", "debug|info|warn|error", "Least severe level logged."},
        {"log.format", CT_ENUM, O(log_format), 0, 0, "logfmt", "logfmt|json", "Log line format."},
};
#undef O

static const confdef_t *find_def(const char *key) {
        for (size_t i = 0; i < DS_ARRAY_LEN(defs); i++)
                if (!strcmp(defs[i].name, key))
                        return &defs[i];
        return NULL;
}

int ds_config_is_key(const char *key) {
        return find_def(key) != NULL;
}

static int enum_parse(const char *enums, const char *v) {
        int idx = 0;
        size_t vl = strlen(v);
        for (const char *p = enums; *p; idx++) {
                const char *e = strchr(p, '|');
                size_t n = e ? (size_t)(e - p) : strlen(p);
                if (n == vl && !strncmp(p, v, n))
                        return idx;
                if (!e)
                        break;
                p = e + 1;
        }
        return -1;
}

static int kafka_set(ds_config_t *c, const char *prop, const char *value) {
        for (int i = 0; i < c->nkafka; i++)
                if (!strcmp(c->kafka[i].key, prop)) {
                        char *v = strdup(value);
                        if (!v)
                                return -1;
                        free(c->kafka[i].value);
                        c->kafka[i].value = v;
                        return 0;
                }
        ds_kv_t *kv = realloc(c->kafka, (size_t)(c->nkafka + 1) * sizeof(*kv));
        if (!kv)
                return -1;
        c->kafka = kv;
        kv[c->nkafka].key = strdup(prop);
        kv[c->nkafka].value = strdup(value);
        if (!kv[c->nkafka].key || !kv[c->nkafka].value)
                return -1;
        c->nkafka++;
        return 0;
}

const char *ds_config_kafka_get(const ds_config_t *c, const char *prop) {
        for (int i = 0; i < c->nkafka; i++)
                if (!strcmp(c->kafka[i].key, prop))
                        return c->kafka[i].value;
        return NULL;
}

int ds_config_set(ds_config_t *c, const char *key, const char *value, const char *source, char *errstr,
                  size_t sz) {
        if (!strncmp(key, "kafka.", 6)) {
                if (!key[6])
                        return ds_err(errstr, sz, "%s: empty librdkafka property name in key %s", source, key);
                if (kafka_set(c, key + 6, value))
                        return ds_err(errstr, sz, "out of memory");
                return 0;
        }
        const confdef_t *d = find_def(key);
        if (!d)
                return ds_err(errstr, sz, "%s: unknown configuration key \"%s\" (see declstream run --help)", source,
                              key);
        char *field = (char *)c + d->off;
        switch (d->type) {
        case CT_STR: {
                if (!*value && *d->def)
                        return ds_err(errstr, sz, "%s: %s must not be empty", source, key);
                char *s = strdup(value);
                if (!s)
                        return ds_err(errstr, sz, "out of memory");
                free(*(char **)field);
                *(char **)field = s;
                return 0;
        }
        case CT_INT:
        case CT_I64: {
                char *end;
                errno = 0;
                long long v = strtoll(value, &end, 10);
                if (errno || end == value || *end)
                        return ds_err(errstr, sz, "%s: %s must be an integer, got \"%s\"", source, key, value);
                if (v < d->min || v > d->max)
                        return ds_err(errstr, sz, "%s: %s must be between %lld and %lld, got %lld", source, key,
                                      (long long)d->min, (long long)d->max, v);
                if (!strcmp(key, "heading.digits") && (v & 1))
                        return ds_err(errstr, sz, "%s: heading.digits must be 2, 4, 6 or 8, got %lld", source, v);
                if (d->type == CT_INT)
                        *(int *)field = (int)v;
                else
                        *(int64_t *)field = v;
                return 0;
        }
        case CT_BOOL:
                if (!strcmp(value, "true") || !strcmp(value, "1") || !strcmp(value, "yes"))
                        *(int *)field = 1;
                else if (!strcmp(value, "false") || !strcmp(value, "0") || !strcmp(value, "no"))
                        *(int *)field = 0;
                else
                        return ds_err(errstr, sz, "%s: %s must be true or false, got \"%s\"", source, key, value);
                return 0;
        case CT_ENUM: {
                int v = enum_parse(d->enums, value);
                if (v < 0)
                        return ds_err(errstr, sz, "%s: %s must be one of %s, got \"%s\"", source, key, d->enums,
                                      value);
                *(int *)field = v;
                return 0;
        }
        }
        return -1;
}

void ds_config_init(ds_config_t *c) {
        memset(c, 0, sizeof(*c));
        char err[256];
        for (size_t i = 0; i < DS_ARRAY_LEN(defs); i++)
                if (ds_config_set(c, defs[i].name, defs[i].def, "default", err, sizeof(err))) {
                        fprintf(stderr, "declstream: bad built-in default: %s\n", err);
                        abort();
                }
        kafka_set(c, "group.id", "declstream");
}

void ds_config_free(ds_config_t *c) {
        for (size_t i = 0; i < DS_ARRAY_LEN(defs); i++)
                if (defs[i].type == CT_STR)
                        free(*(char **)((char *)c + defs[i].off));
        for (int i = 0; i < c->nkafka; i++) {
                free(c->kafka[i].key);
                free(c->kafka[i].value);
        }
        free(c->kafka);
        memset(c, 0, sizeof(*c));
}

static char *trim(char *s) {
        while (isspace((unsigned char)*s))
                s++;
        char *e = s + strlen(s);
        while (e > s && isspace((unsigned char)e[-1]))
                *--e = '\0';
        return s;
}

int ds_config_load_file(ds_config_t *c, const char *path, char *errstr, size_t sz) {
        FILE *f = fopen(path, "r");
        if (!f)
                return ds_err(errstr, sz, "cannot open config file %s: %s", path, strerror(errno));
        char line[4096];
        int lineno = 0, rc = 0;
        while (fgets(line, sizeof(line), f)) {
                lineno++;
                char source[512];
                snprintf(source, sizeof(source), "%s:%d", path, lineno);
                size_t n = strlen(line);
                if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
                        rc = ds_err(errstr, sz, "%s: line longer than %zu bytes", source, sizeof(line) - 2);
                        break;
                }
                char *s = trim(line);
                if (!*s || *s == '#' || *s == '!')
                        continue;
                char *eq = strchr(s, '=');
                if (!eq) {
                        rc = ds_err(errstr, sz, "%s: expected key = value, got \"%s\"", source, s);
                        break;
                }
                *eq = '\0';
                char *k = trim(s), *v = trim(eq + 1);
                if (!*k) {
                        rc = ds_err(errstr, sz, "%s: empty key", source);
                        break;
                }
                if ((rc = ds_config_set(c, k, v, source, errstr, sz)))
                        break;
        }
        fclose(f);
        return rc;
}

int ds_config_load_env(ds_config_t *c, char **envp, char *errstr, size_t sz) {
        static const char prefix[] = "DECLSTREAM_";
        for (char **e = envp; e && *e; e++) {
                if (strncmp(*e, prefix, sizeof(prefix) - 1))
                        continue;
                const char *eq = strchr(*e, '=');
                if (!eq)
                        continue;
                char name[256], key[256];
                size_t n = (size_t)(eq - *e);
                if (n >= sizeof(name))
                        return ds_err(errstr, sz, "environment variable name too long: %.60s...", *e);
                memcpy(name, *e, n);
                name[n] = '\0';
                /* DECLSTREAM_COMMIT_INTERVAL_MS -> commit.interval.ms */
                const char *src = name + sizeof(prefix) - 1;
                size_t k = 0;
                for (; src[k] && k < sizeof(key) - 1; k++)
                        key[k] = src[k] == '_' ? '.' : (char)tolower((unsigned char)src[k]);
                key[k] = '\0';
                if (strncmp(key, "kafka.", 6) && !find_def(key))
                        return ds_err(errstr, sz, "environment variable %s: unknown configuration key \"%s\"", name,
                                      key);
                char source[300];
                snprintf(source, sizeof(source), "environment variable %s", name);
                if (ds_config_set(c, key, eq + 1, source, errstr, sz))
                        return -1;
        }
        return 0;
}

/* The default as documented: the schema directory is baked in at build
 * time, so the docs name it rather than print this machine's path. */
static void def_string(const confdef_t *d, char *buf, size_t sz) {
        if (d->off == offsetof(ds_config_t, schema_dir))
                snprintf(buf, sz, "<source>/schemas");
        else
                snprintf(buf, sz, "%s", d->def);
}

/* "a|b|c" as "`a`, `b`, `c`" (a bare | would split a Markdown table cell). */
static void enum_markdown(const char *enums, char *buf, size_t sz) {
        size_t o = 0;
        for (const char *p = enums; *p && o + 8 < sz;) {
                const char *e = strchr(p, '|');
                size_t n = e ? (size_t)(e - p) : strlen(p);
                o += (size_t)snprintf(buf + o, sz - o, "%s`%.*s`", o ? ", " : "", (int)n, p);
                if (!e)
                        break;
                p = e + 1;
        }
}

void ds_config_print_help(FILE *out) {
        fprintf(out, "Configuration keys (file: key = value; environment: DECLSTREAM_KEY_NAME; flag: --key value):\n");
        for (size_t i = 0; i < DS_ARRAY_LEN(defs); i++) {
                char def[128];
                def_string(&defs[i], def, sizeof(def));
                fprintf(out, "  %-22s %s (default: %s%s%s)\n", defs[i].name, defs[i].desc, def,
                        defs[i].enums ? "; one of " : "", defs[i].enums ? defs[i].enums : "");
        }
        fprintf(out, "  %-22s any librdkafka property, e.g. kafka.bootstrap.servers (same as -X prop=value);\n"
                     "  %-22s kafka.group.id defaults to declstream\n",
                "kafka.<property>", "");
}

void ds_config_print_markdown(FILE *out) {
        fprintf(out, "| key | default | meaning |\n|---|---|---|\n");
        for (size_t i = 0; i < DS_ARRAY_LEN(defs); i++) {
                char def[128];
                def_string(&defs[i], def, sizeof(def));
                char en[256] = "";
                if (defs[i].enums)
                        enum_markdown(defs[i].enums, en, sizeof(en));
                fprintf(out, "| `%s` | `%s` | %s%s%s%s |\n", defs[i].name, def, defs[i].desc, *en ? " One of " : "",
                        en, *en ? "." : "");
        }
        fprintf(out, "| `kafka.<property>` | | Any librdkafka property, passed through (`-X property=value`). "
                     "`kafka.group.id` defaults to `declstream`. |\n");
}

/* Whether a librdkafka property holds a secret: passwords, keys and their
 * PEM texts, OAuth configuration (the values are printed as "(hidden)"). */
static int kafka_secret(const char *key) {
        static const char *const words[] = {"password", "secret",   "sasl.oauthbearer.config",
                                            ".key",     "key.pem",  "certificate.pem",
                                            "keystore", "sasl.jaas"};
        for (size_t i = 0; i < DS_ARRAY_LEN(words); i++)
                if (strstr(key, words[i]))
                        return 1;
        return 0;
}

/* URLs (comma-separated, as schema.registry.url may list several) with the
 * "user:password@" of each replaced by "(hidden)@". */
static void print_url(FILE *out, const char *name, const char *v) {
        fprintf(out, "%s = ", name);
        for (const char *tok = v;;) {
                size_t n = strcspn(tok, ",");
                const char *scheme = memmem(tok, n, "://", 3);
                const char *auth = scheme ? scheme + 3 : NULL;
                size_t alen = auth ? strcspn(auth, "/,") : 0;
                const char *at = auth ? memchr(auth, '@', alen) : NULL;
                if (at)
                        fprintf(out, "%.*s(hidden)%.*s", (int)(auth - tok), tok, (int)(tok + n - at), at);
                else
                        fprintf(out, "%.*s", (int)n, tok);
                if (!tok[n])
                        break;
                fputc(',', out);
                tok += n + 1;
        }
        fputc('\n', out);
}

void ds_config_dump(const ds_config_t *c, FILE *out) {
        for (size_t i = 0; i < DS_ARRAY_LEN(defs); i++) {
                const confdef_t *d = &defs[i];
                const char *field = (const char *)c + d->off;
                switch (d->type) {
                case CT_STR: {
                        const char *v = *(char *const *)field;
                        int secret = strstr(d->name, "user.info") != NULL && *v;
                        if (secret)
                                fprintf(out, "%s = (hidden)\n", d->name);
                        else if (strstr(d->name, ".url"))
                                print_url(out, d->name, v); /* credentials in a URL are hidden too */
                        else
                                fprintf(out, "%s = %s\n", d->name, v);
                        break;
                }
                case CT_INT:
                        fprintf(out, "%s = %d\n", d->name, *(const int *)field);
                        break;
                case CT_I64:
                        fprintf(out, "%s = %lld\n", d->name, (long long)*(const int64_t *)field);
                        break;
                case CT_BOOL:
                        fprintf(out, "%s = %s\n", d->name, *(const int *)field ? "true" : "false");
                        break;
                case CT_ENUM: {
                        int v = *(const int *)field, idx = 0;
                        const char *p = d->enums;
                        while (idx < v && (p = strchr(p, '|')))
                                p++, idx++;
                        int n = (int)(strchr(p, '|') ? (size_t)(strchr(p, '|') - p) : strlen(p));
                        fprintf(out, "%s = %.*s\n", d->name, n, p);
                        break;
                }
                }
        }
        for (int i = 0; i < c->nkafka; i++) {
                fprintf(out, "kafka.%s = %s\n", c->kafka[i].key,
                        kafka_secret(c->kafka[i].key) ? "(hidden)" : c->kafka[i].value);
        }
}
