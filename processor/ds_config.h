/*
 * ds_config.h - declstream's configuration: one table, four layers.
 *
 * Every key is one row of a table (ds_config.c): name, type, range, default,
 * description. The table validates values, sets defaults, prints
 * `declstream run --help`, and generates the README's configuration table
 * (`declstream config --markdown`; tests/test_config.c checks the README
 * against it).
 *
 * Precedence, lowest first: defaults < config file (properties: `key = value`,
 * `#` comments) < environment (DECLSTREAM_<KEY>, dots as underscores, e.g.
 * DECLSTREAM_COMMIT_INTERVAL_MS) < command line (`--key value` or
 * `--key=value`).
 *
 * Keys starting with `kafka.` go to librdkafka unchanged (without the prefix),
 * as `-X key=value` does on the command line and DECLSTREAM_KAFKA_<PROP> in the
 * environment. librdkafka validates them; its error names the key.
 *
 * An unknown key or a bad value is an error that names the key and the
 * source (file:line, environment variable, or flag).
 *
 * @locality single-threaded set-up; the struct is read-only once workers run.
 */
#ifndef DS_CONFIG_H
#define DS_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { DS_DECODER_SPECIALIZED = 0, DS_DECODER_AVRO_C } ds_decoder_kind_t;
typedef enum { DS_ROLE_ALL = 0, DS_ROLE_PROCESS, DS_ROLE_MERGE } ds_role_t;
typedef enum { DS_EOS_CHECKPOINT = 0, DS_EOS_TRANSACTIONS } ds_eos_mode_t;

typedef struct ds_kv {
        char *key;
        char *value;
} ds_kv_t;

typedef struct ds_config {
        char *input_topic;
        char *output_topic;
        char *dlq_topic;
        char *top_topic;
        char *partial_topic;
        char *state_topic;
        int role;
        int eos_mode;
        char *instance_id; /* "" means the host name */
        int64_t merge_interval_ms;
        char *merge_state_topic;
        int64_t merge_snapshot_interval_ms;
        int64_t snapshot_min_bytes;
        int snapshot_interval_cycles;
        char *schema_dir;
        char *schema_registry_url;       /* "" when not used */
        char *schema_registry_user_info; /* "user:password" for basic auth, "" when none */
        int64_t schema_registry_timeout_ms;
        int schema_registry_retries;
        int64_t schema_registry_negative_ttl_ms;
        int threads;
        int64_t commit_interval_ms;
        int heading_digits;
        char *gates_file; /* "" when none */
        int decoder;
        int64_t ledger_retention_ms;
        int64_t minute_retention_ms;
        int64_t hour_retention_ms;
        int64_t day_retention_ms;
        int64_t top_retention_ms;
        int64_t idle_ms;
        int exit_on_eof;
        int64_t shutdown_timeout_ms;
        int64_t stats_interval_ms;
        int batch_size;
        char *http_listen; /* HOST:PORT, or "off" */
        int http_max_rows;
        int http_per_ip; /* connections per client address; 0: no limit */
        int64_t ready_max_lag;
        int log_level;
        int log_format;
        /* librdkafka properties, in the order given (later wins) */
        ds_kv_t *kafka;
        int nkafka;
} ds_config_t;

/* Fills c with the defaults. Free with ds_config_free(). */
void ds_config_init(ds_config_t *c);
void ds_config_free(ds_config_t *c);

/* Sets one key from a source (named in errors, e.g. "decl.conf:3"). */
int ds_config_set(ds_config_t *c, const char *key, const char *value, const char *source, char *errstr,
                  size_t errstr_size);
/* Loads a properties file. */
int ds_config_load_file(ds_config_t *c, const char *path, char *errstr, size_t errstr_size);
/* Applies DECLSTREAM_* variables from envp (NULL-terminated, e.g. environ). */
int ds_config_load_env(ds_config_t *c, char **envp, char *errstr, size_t errstr_size);

/* The value librdkafka will get for prop (last one set), or NULL. */
const char *ds_config_kafka_get(const ds_config_t *c, const char *prop);

/* Whether key is a declstream key (not kafka.*). */
int ds_config_is_key(const char *key);

/* Prints every key, default and description, as --help lines or as a
 * Markdown table. */
void ds_config_print_help(FILE *out);
void ds_config_print_markdown(FILE *out);
/* Prints the effective configuration (password and secret values hidden). */
void ds_config_dump(const ds_config_t *c, FILE *out);

#endif
