/*
 * test_config.c - the configuration table: defaults, validation with errors
 * that name the key and the source, the file and environment loaders, their
 * precedence, librdkafka pass-through, and the README's generated table.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ds_config.h"

static ds_config_t c;
static char err[1024];

static void setup(void) {
        ds_config_init(&c);
        err[0] = '\0';
}

static void teardown(void) {
        ds_config_free(&c);
}

TestSuite(config, .init = setup, .fini = teardown);

/* Sets key=value from "test-source"; returns the status. */
static int set(const char *key, const char *value) {
        err[0] = '\0';
        return ds_config_set(&c, key, value, "test-source", err, sizeof(err));
}

#define assert_err_names(...)                                                                            \
        do {                                                                                             \
                const char *want_[] = {__VA_ARGS__};                                                     \
                for (size_t i_ = 0; i_ < sizeof(want_) / sizeof(want_[0]); i_++)                        \
                        cr_assert(strstr(err, want_[i_]), "error \"%s\" does not name \"%s\"", err, want_[i_]); \
        } while (0)

/* A temporary file with the given content; returns its path (static buffer). */
static const char *tmpfile_with(const char *content) {
        static char path[64];
        snprintf(path, sizeof(path), "/tmp/ds-test-config-XXXXXX");
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        size_t n = strlen(content);
        cr_assert_eq(write(fd, content, n), (ssize_t)n);
        close(fd);
        return path;
}

Test(config, defaults) {
        cr_assert_str_eq(c.input_topic, "customs.declarations");
        cr_assert_str_eq(c.output_topic, "customs.totals");
        cr_assert_str_eq(c.dlq_topic, "customs.declarations.dlq");
        cr_assert_str_eq(c.schema_dir, DS_SOURCE_DIR "/schemas");
        cr_assert_eq(c.threads, 0);
        cr_assert_eq(c.commit_interval_ms, 1000);
        cr_assert_eq(c.heading_digits, 4);
        cr_assert_eq(c.decoder, DS_DECODER_SPECIALIZED);
        cr_assert_eq(c.ledger_retention_ms, 35LL * 86400 * 1000);
        cr_assert_eq(c.exit_on_eof, 0);
        cr_assert_eq(c.shutdown_timeout_ms, 10000);
        cr_assert_eq(c.stats_interval_ms, 10000);
        cr_assert_eq(c.batch_size, 4096);
        cr_assert_eq(c.log_level, 1); /* info */
        cr_assert_eq(c.log_format, 0); /* logfmt */
        cr_assert_str_eq(ds_config_kafka_get(&c, "group.id"), "declstream");
        cr_assert_null(ds_config_kafka_get(&c, "bootstrap.servers"));
}

Test(config, values_of_each_type_are_parsed) {
        cr_assert_eq(set("input.topic", "in.x"), 0, "%s", err);
        cr_assert_str_eq(c.input_topic, "in.x");
        cr_assert_eq(set("threads", "8"), 0, "%s", err);
        cr_assert_eq(c.threads, 8);
        cr_assert_eq(set("ledger.retention.ms", "86400000000"), 0, "%s", err); /* past 32 bits */
        cr_assert_eq(c.ledger_retention_ms, 86400000000LL);
        cr_assert_eq(set("exit.on.eof", "true"), 0, "%s", err);
        cr_assert_eq(c.exit_on_eof, 1);
        cr_assert_eq(set("exit.on.eof", "no"), 0, "%s", err);
        cr_assert_eq(c.exit_on_eof, 0);
        cr_assert_eq(set("exit.on.eof", "1"), 0, "%s", err);
        cr_assert_eq(c.exit_on_eof, 1);
        cr_assert_eq(set("decoder", "avro-c"), 0, "%s", err);
        cr_assert_eq(c.decoder, DS_DECODER_AVRO_C);
        cr_assert_eq(set("log.level", "error"), 0, "%s", err);
        cr_assert_eq(c.log_level, 3);
        cr_assert_eq(set("log.format", "json"), 0, "%s", err);
        cr_assert_eq(c.log_format, 1);
        cr_assert_eq(set("commit.interval.ms", "10"), 0, "%s", err); /* the minimum */
        cr_assert_eq(c.commit_interval_ms, 10);
        cr_assert_eq(set("commit.interval.ms", "3600000"), 0, "%s", err); /* the maximum */
        cr_assert_eq(c.commit_interval_ms, 3600000);
}

Test(config, bad_integer_names_key_and_source) {
        const char *bad[] = {"abc", "", "12x", "1e3", " ", "99999999999999999999999"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                cr_assert_neq(set("threads", bad[i]), 0, "threads=\"%s\" accepted", bad[i]);
                assert_err_names("threads", "test-source");
        }
        cr_assert_eq(c.threads, 0, "a rejected value must not change the setting");
}

Test(config, integer_out_of_range_names_key_and_source) {
        cr_assert_neq(set("threads", "257"), 0);
        assert_err_names("threads", "test-source", "257");
        cr_assert_neq(set("threads", "-1"), 0);
        assert_err_names("threads");
        cr_assert_neq(set("commit.interval.ms", "9"), 0);
        assert_err_names("commit.interval.ms", "test-source");
        cr_assert_neq(set("batch.size", "0"), 0);
        assert_err_names("batch.size");
        cr_assert_eq(c.commit_interval_ms, 1000);
        cr_assert_eq(c.batch_size, 4096);
}

Test(config, bad_int64_names_key_and_source) {
        cr_assert_neq(set("shutdown.timeout.ms", "ten"), 0);
        assert_err_names("shutdown.timeout.ms", "test-source");
        cr_assert_neq(set("shutdown.timeout.ms", "99"), 0);
        assert_err_names("shutdown.timeout.ms");
        cr_assert_neq(set("ledger.retention.ms", "-5"), 0);
        assert_err_names("ledger.retention.ms", "test-source");
        cr_assert_eq(c.shutdown_timeout_ms, 10000);
}

Test(config, bad_boolean_names_key_and_source) {
        cr_assert_neq(set("exit.on.eof", "maybe"), 0);
        assert_err_names("exit.on.eof", "test-source", "maybe");
        cr_assert_neq(set("exit.on.eof", "TRUE "), 0);
        cr_assert_eq(c.exit_on_eof, 0);
}

Test(config, bad_enum_names_key_source_and_choices) {
        cr_assert_neq(set("decoder", "fast"), 0);
        assert_err_names("decoder", "test-source", "fast", "specialized", "avro-c");
        cr_assert_neq(set("log.level", "verbose"), 0);
        assert_err_names("log.level", "debug");
        cr_assert_neq(set("log.format", "JSON"), 0); /* case matters */
        cr_assert_neq(set("decoder", "avro"), 0);    /* a prefix is not a symbol */
        cr_assert_neq(set("decoder", "specialized|avro-c"), 0);
        cr_assert_eq(c.decoder, DS_DECODER_SPECIALIZED);
}

Test(config, empty_string_names_key_and_source) {
        cr_assert_neq(set("input.topic", ""), 0);
        assert_err_names("input.topic", "test-source");
        cr_assert_str_eq(c.input_topic, "customs.declarations");
}

Test(config, unknown_key_is_named) {
        cr_assert_neq(set("input.topics", "x"), 0);
        assert_err_names("input.topics", "test-source");
        cr_assert_neq(set("threads.count", "1"), 0);
        assert_err_names("threads.count");
        cr_assert(!ds_config_is_key("input.topics"));
        cr_assert(ds_config_is_key("input.topic"));
        cr_assert(!ds_config_is_key("kafka.bootstrap.servers"));
}

Test(config, heading_digits_must_be_even_between_2_and_8) {
        const char *ok[] = {"2", "4", "6", "8"};
        for (int i = 0; i < 4; i++) {
                cr_assert_eq(set("heading.digits", ok[i]), 0, "%s: %s", ok[i], err);
                cr_assert_eq(c.heading_digits, atoi(ok[i]));
        }
        const char *bad[] = {"3", "1", "0", "5", "7", "9", "10", "-4"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                cr_assert_neq(set("heading.digits", bad[i]), 0, "heading.digits=%s accepted", bad[i]);
                assert_err_names("heading.digits", "test-source");
        }
        cr_assert_eq(c.heading_digits, 8);
}

Test(config, kafka_keys_are_collected_for_librdkafka) {
        cr_assert_eq(set("kafka.bootstrap.servers", "a:9092,b:9092"), 0);
        cr_assert_eq(set("kafka.linger.ms", "5"), 0);
        cr_assert_eq(set("kafka.linger.ms", "10"), 0); /* later wins */
        cr_assert_eq(set("kafka.group.id", "mine"), 0);
        cr_assert_str_eq(ds_config_kafka_get(&c, "bootstrap.servers"), "a:9092,b:9092");
        cr_assert_str_eq(ds_config_kafka_get(&c, "linger.ms"), "10");
        cr_assert_str_eq(ds_config_kafka_get(&c, "group.id"), "mine");
        cr_assert_null(ds_config_kafka_get(&c, "kafka.linger.ms"), "the prefix is stripped");
        int linger = 0;
        for (int i = 0; i < c.nkafka; i++)
                linger += !strcmp(c.kafka[i].key, "linger.ms");
        cr_assert_eq(linger, 1, "linger.ms stored %d times", linger);
        cr_assert_eq(c.nkafka, 3); /* group.id, bootstrap.servers, linger.ms */
        /* librdkafka validates them later: anything goes here, but not an empty name */
        cr_assert_neq(set("kafka.", "x"), 0);
        assert_err_names("kafka.", "test-source");
}

Test(config, dump_hides_secrets) {
        cr_assert_eq(set("kafka.sasl.password", "hunter2"), 0);
        cr_assert_eq(set("kafka.sasl.username", "alice"), 0);
        /* a private key's PEM text, and credentials inside a URL */
        cr_assert_eq(set("kafka.ssl.key.pem", "-----BEGIN PRIVATE KEY-----MIIEv"), 0);
        cr_assert_eq(set("schema.registry.url", "https://reg:s3cr3t@registry.example:8081/x@y"), 0);
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        ds_config_dump(&c, f);
        fclose(f);
        cr_assert_null(strstr(buf, "hunter2"), "the password is printed");
        cr_assert(strstr(buf, "kafka.sasl.password = (hidden)"));
        cr_assert(strstr(buf, "kafka.sasl.username = alice"));
        cr_assert_null(strstr(buf, "MIIEv"), "the private key is printed");
        cr_assert(strstr(buf, "kafka.ssl.key.pem = (hidden)"));
        cr_assert_null(strstr(buf, "s3cr3t"), "the registry's password is printed");
        cr_assert(strstr(buf, "schema.registry.url = https://(hidden)@registry.example:8081/x@y\n"), "%s", buf);
        free(buf);
        /* several URLs: each one's credentials */
        cr_assert_eq(set("schema.registry.url", "http://a:8081,http://u:p2ss@b:8081,http://v:p3ss@c"), 0);
        buf = NULL;
        f = open_memstream(&buf, &len);
        ds_config_dump(&c, f);
        fclose(f);
        cr_assert_null(strstr(buf, "p2ss"), "the second URL's password is printed");
        cr_assert_null(strstr(buf, "p3ss"), "the third URL's password is printed");
        cr_assert(strstr(buf, "schema.registry.url = http://a:8081,http://(hidden)@b:8081,http://(hidden)@c\n"),
                  "%s", buf);
        cr_assert(strstr(buf, "commit.interval.ms = 1000\n"));
        cr_assert(strstr(buf, "decoder = specialized\n"));
        cr_assert(strstr(buf, "log.format = logfmt\n"));
        free(buf);
}

/* ---- file ---------------------------------------------------------------- */

Test(config, file_with_comments_blank_lines_and_spaces) {
        const char *path = tmpfile_with("# declstream configuration\n"
                                         "\n"
                                         "   \n"
                                         "input.topic = decl.in\n"
                                         "  threads=3  \n"
                                         "! a properties-style comment\n"
                                         "\tcommit.interval.ms\t=\t250\n"
                                         "kafka.bootstrap.servers = broker:9092\n"
                                         "exit.on.eof = true");
        cr_assert_eq(ds_config_load_file(&c, path, err, sizeof(err)), 0, "%s", err);
        cr_assert_str_eq(c.input_topic, "decl.in");
        cr_assert_eq(c.threads, 3);
        cr_assert_eq(c.commit_interval_ms, 250);
        cr_assert_str_eq(ds_config_kafka_get(&c, "bootstrap.servers"), "broker:9092");
        cr_assert_eq(c.exit_on_eof, 1, "the last line has no newline");
        unlink(path);
}

Test(config, file_line_without_equals_is_an_error_with_file_and_line) {
        const char *path = tmpfile_with("# comment\n"
                                         "threads = 2\n"
                                         "commit.interval.ms 250\n"
                                         "batch.size = 7\n");
        cr_assert_neq(ds_config_load_file(&c, path, err, sizeof(err)), 0);
        char where[128];
        snprintf(where, sizeof(where), "%s:3", path);
        assert_err_names(where);
        cr_assert_eq(c.threads, 2);
        cr_assert_eq(c.batch_size, 4096, "lines after the error must not be applied");
        unlink(path);
}

Test(config, file_bad_value_names_key_file_and_line) {
        const char *path = tmpfile_with("threads = 2\n\n# x\nheading.digits = 3\n");
        cr_assert_neq(ds_config_load_file(&c, path, err, sizeof(err)), 0);
        char where[128];
        snprintf(where, sizeof(where), "%s:4", path);
        assert_err_names(where, "heading.digits");
        unlink(path);
}

Test(config, file_unknown_key_names_key_file_and_line) {
        const char *path = tmpfile_with("threads = 2\nthreadz = 4\n");
        cr_assert_neq(ds_config_load_file(&c, path, err, sizeof(err)), 0);
        char where[128];
        snprintf(where, sizeof(where), "%s:2", path);
        assert_err_names(where, "threadz");
        unlink(path);
}

Test(config, file_empty_key_is_an_error) {
        const char *path = tmpfile_with(" = 4\n");
        cr_assert_neq(ds_config_load_file(&c, path, err, sizeof(err)), 0);
        char where[128];
        snprintf(where, sizeof(where), "%s:1", path);
        assert_err_names(where);
        unlink(path);
}

Test(config, missing_file_is_an_error_naming_it) {
        cr_assert_neq(ds_config_load_file(&c, "/nonexistent/declstream.conf", err, sizeof(err)), 0);
        assert_err_names("/nonexistent/declstream.conf");
}

/* ---- environment ----------------------------------------------------------- */

Test(config, environment_variables_set_keys) {
        char *envp[] = {"PATH=/usr/bin", "DECLSTREAM_COMMIT_INTERVAL_MS=250",
                        "DECLSTREAM_KAFKA_BOOTSTRAP_SERVERS=k1:9092,k2:9092", "XDECLSTREAM_THREADS=9",
                        "DECLSTREAM_HEADING_DIGITS=6", "HOME=/root", NULL};
        cr_assert_eq(ds_config_load_env(&c, envp, err, sizeof(err)), 0, "%s", err);
        cr_assert_eq(c.commit_interval_ms, 250);
        cr_assert_eq(c.heading_digits, 6);
        cr_assert_str_eq(ds_config_kafka_get(&c, "bootstrap.servers"), "k1:9092,k2:9092");
        cr_assert_eq(c.threads, 0, "XDECLSTREAM_THREADS is not ours");
}

Test(config, unknown_environment_variable_is_rejected_by_name) {
        char *envp[] = {"DECLSTREAM_FOO=1", NULL};
        cr_assert_neq(ds_config_load_env(&c, envp, err, sizeof(err)), 0);
        assert_err_names("DECLSTREAM_FOO");
}

Test(config, bad_environment_value_names_the_variable) {
        char *envp[] = {"DECLSTREAM_BATCH_SIZE=lots", NULL};
        cr_assert_neq(ds_config_load_env(&c, envp, err, sizeof(err)), 0);
        assert_err_names("DECLSTREAM_BATCH_SIZE", "batch.size", "lots");
        cr_assert_eq(c.batch_size, 4096);
}

Test(config, empty_environment_changes_nothing) {
        char *envp[] = {NULL};
        cr_assert_eq(ds_config_load_env(&c, envp, err, sizeof(err)), 0);
        cr_assert_eq(ds_config_load_env(&c, NULL, err, sizeof(err)), 0);
        cr_assert_eq(c.commit_interval_ms, 1000);
}

/* ---- precedence ------------------------------------------------------------- */

Test(config, precedence_file_then_environment_then_explicit) {
        const char *path = tmpfile_with("commit.interval.ms = 300\n"
                                         "batch.size = 10\n"
                                         "threads = 3\n"
                                         "kafka.linger.ms = 1\n");
        char *envp[] = {"DECLSTREAM_COMMIT_INTERVAL_MS=200", "DECLSTREAM_BATCH_SIZE=20",
                        "DECLSTREAM_KAFKA_LINGER_MS=2", NULL};
        cr_assert_eq(ds_config_load_file(&c, path, err, sizeof(err)), 0, "%s", err);
        cr_assert_eq(ds_config_load_env(&c, envp, err, sizeof(err)), 0, "%s", err);
        cr_assert_eq(ds_config_set(&c, "commit.interval.ms", "100", "--commit.interval.ms", err, sizeof(err)), 0);
        cr_assert_eq(c.commit_interval_ms, 100, "explicit beats environment and file");
        cr_assert_eq(c.batch_size, 20, "environment beats file");
        cr_assert_eq(c.threads, 3, "file beats default");
        cr_assert_eq(c.heading_digits, 4, "default stays");
        cr_assert_str_eq(ds_config_kafka_get(&c, "linger.ms"), "2");
        unlink(path);
}

/* ---- documentation ---------------------------------------------------------- */

Test(config, markdown_table_has_a_row_per_key) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        ds_config_print_markdown(f);
        fclose(f);
        const char *keys[] = {"input.topic", "output.topic", "dlq.topic", "schema.dir", "threads",
                              "commit.interval.ms", "heading.digits", "decoder", "ledger.retention.ms",
                              "exit.on.eof", "shutdown.timeout.ms", "stats.interval.ms", "batch.size",
                              "log.level", "log.format", "kafka.<property>"};
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                char row[64];
                snprintf(row, sizeof(row), "\n| `%s` |", keys[i]);
                cr_assert(strstr(buf, row), "no row for %s", keys[i]);
        }
        cr_assert_eq(strncmp(buf, "| key | default | meaning |\n|---|---|---|\n", 42), 0);
        cr_assert_null(strstr(buf, DS_SOURCE_DIR), "the table names this machine's path");
        free(buf);
}

Test(config, readme_table_matches_the_generated_one) {
        FILE *f = fopen(DS_SOURCE_DIR "/README.md", "r");
        cr_assert_not_null(f, "README.md not found");
        char *readme = NULL;
        size_t rlen = 0;
        FILE *m = open_memstream(&readme, &rlen);
        char line[8192];
        int state = 0; /* 0 before the block, 1 inside, 2 after */
        while (fgets(line, sizeof(line), f)) {
                if (!strncmp(line, "<!-- config-table:begin -->", 27)) {
                        cr_assert_eq(state, 0, "two begin markers");
                        state = 1;
                } else if (!strncmp(line, "<!-- config-table:end -->", 25)) {
                        cr_assert_eq(state, 1, "end marker before begin marker");
                        state = 2;
                } else if (state == 1) {
                        fputs(line, m);
                }
        }
        fclose(f);
        fclose(m);
        cr_assert_eq(state, 2, "README.md lacks the config-table markers");

        char *gen = NULL;
        size_t glen = 0;
        m = open_memstream(&gen, &glen);
        ds_config_print_markdown(m);
        fclose(m);
        if (strcmp(readme, gen)) {
                /* name the first line that differs */
                size_t i = 0, ls = 0;
                while (readme[i] && readme[i] == gen[i]) {
                        if (readme[i] == '\n')
                                ls = i + 1;
                        i++;
                }
                cr_assert_fail("README's configuration table is out of date (regenerate it with "
                               "`declstream config --markdown`); first difference:\n  README:    %.*s\n  generated: %.*s",
                               (int)strcspn(readme + ls, "\n"), readme + ls, (int)strcspn(gen + ls, "\n"), gen + ls);
        }
        free(readme);
        free(gen);
}
