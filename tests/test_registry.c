/*
 * test_registry.c - the Schema Registry client and the schema id cache.
 *
 * No real Confluent Schema Registry (a Java service) can be installed here,
 * so each test starts tests/registry_server.py, a small server that answers
 * GET /schemas/ids/<id> as the registry does (200 {"schema": ...}, 404
 * {"error_code": 40403}) and can be told to fail, stall or require basic
 * auth per id. It counts the requests it sees, so caching and retries are
 * checked from the outside.
 *
 * Cases: 200, 404 (not retried, negatively cached for negative_ttl_ms, asked
 * again after it), 500 then 200 (retried), 500 for ever (unavailable after
 * retries+1 requests, then the registry is not asked for any new id until the
 * TTL passes), timeouts (bounded by ds_registry_max_fetch_ms, then answered
 * from the negative cache at once), slow answers within the timeout, basic
 * auth right and wrong, non-Avro and non-Declaration schemas, garbage bodies,
 * an unreachable registry, failover to a second URL, local ids taking
 * precedence, and many threads asking for the same ids at once (one request
 * per id).
 */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ds_common.h"
#include "ds_config.h"
#include "ds_schemas.h"
#include "ds_testschemas.h"

#define TOTAL DST_SCHEMA_DIR "/customs_total.avsc"

static char *dir;
static ds_proc_t server;
static char url[128];
static int started;

static const char *spec_default =
    "{\"ids\": {"
    "\"1\": {\"schema_file\": \"" TOTAL "\"},"                      /* shadowed by schema.dir */
    "\"100\": {\"schema_file\": \"" DST_V2 "\"},"
    "\"101\": {\"status\": [500, 200], \"schema_file\": \"" DST_V2 "\"},"
    "\"102\": {\"status\": [500]},"
    "\"103\": {\"delay_ms\": 3000, \"schema_file\": \"" DST_V2 "\"},"
    "\"104\": {\"delay_ms\": 150, \"schema_file\": \"" DST_V2 "\"},"
    "\"105\": {\"schema_file\": \"" TOTAL "\"},"
    "\"106\": {\"schemaType\": \"PROTOBUF\", \"schema\": \"syntax = \\\"proto3\\\";\"},"
    "\"107\": {\"raw\": \"<html>proxy error</html>\"},"
    "\"108\": {\"schema\": \"{\\\"type\\\": \\\"record\\\", \\\"name\\\": \\\"Declaration\\\"}\"},"
    "\"109\": {\"status\": [503, 503, 200], \"schema_file\": \"" DST_V2 "\"}"
    "}}";

static void start(const char *spec) {
        dir = ds_tmpdir("ds-registry");
        cr_assert_not_null(dir);
        cr_assert_eq(dst_registry_start(&server, dir, spec, url, sizeof(url)), 0, "registry_server.py did not start");
        started = 1;
}

/* Replaces the suite's server by one with another spec. */
static void restart(const char *spec) {
        dst_registry_stop(&server);
        cr_assert_eq(dst_registry_start(&server, dir, spec, url, sizeof(url)), 0, "registry_server.py did not start");
}

static void setup(void) {
        start(spec_default);
}

static void teardown(void) {
        if (started)
                dst_registry_stop(&server);
        started = 0;
        ds_tmpdir_remove(dir);
        free(dir);
}

static ds_schemas_t *open_with(const char *u, const char *auth, int64_t timeout_ms, int retries, int64_t ttl_ms) {
        ds_registry_conf_t rc = {u, auth, timeout_ms, retries, 20, 100};
        char err[512];
        ds_schemas_t *s = ds_schemas_open_registry(DST_SCHEMA_DIR, &rc, ttl_ms, err, sizeof(err));
        cr_assert_not_null(s, "%s", err);
        return s;
}

static ds_dlq_reason_t resolve_id(ds_schemas_t *s, uint32_t id, ds_decl_t *out) {
        ds_decl_t orig;
        dst_sample(&orig, (int)id);
        orig.container_count = 2;
        ds_buf_t b = {0};
        dst_framed(&b, &orig, 2, id); /* every served Declaration is v2 */
        ds_resolved_t rs;
        ds_dlq_reason_t r = ds_schemas_resolve(s, b.p, b.len, &rs);
        if (!r) {
                cr_assert_eq(rs.schema_id, id);
                r = ds_codec_decode(rs.codec, rs.body, rs.body_len, out);
                char why[256];
                cr_assert(!r && dst_decl_equal(out, &orig, 0, why, sizeof(why)), "id %u: %s", id,
                          r ? ds_dlq_code(r) : why);
        }
        ds_buf_free(&b);
        return r;
}

TestSuite(registry, .init = setup, .fini = teardown, .timeout = 60);

Test(registry, fetches_an_unknown_id_once_and_caches_it) {
        ds_schemas_t *s = open_with(url, NULL, 1000, 2, 60000);
        ds_decl_t *d = malloc(sizeof(*d));
        cr_assert_null(ds_schemas_get(s, 100), "not known before a message names it");
        for (int i = 0; i < 1000; i++)
                cr_assert_eq(resolve_id(s, 100, d), DS_DLQ_NONE);
        cr_assert_eq(dst_registry_count(url, 100), 1, "one request for 1000 messages");
        cr_assert_eq(ds_schemas_registry_requests(s), 1);
        cr_assert_not_null(ds_schemas_get(s, 100));
        cr_assert_str_eq(ds_schemas_note(s, 100), "");
        free(d);
        ds_schemas_destroy(s);
}

Test(registry, local_ids_take_precedence) {
        ds_schemas_t *s = open_with(url, NULL, 1000, 2, 60000);
        ds_decl_t *d = malloc(sizeof(*d)), orig;
        dst_sample(&orig, 1);
        ds_buf_t b = {0};
        dst_framed(&b, &orig, 1, 1);
        ds_resolved_t rs;
        cr_assert_eq(ds_schemas_resolve(s, b.p, b.len, &rs), DS_DLQ_NONE, "id 1 is schema.dir's v1");
        cr_assert_eq(ds_codec_decode(rs.codec, rs.body, rs.body_len, d), DS_DLQ_NONE);
        cr_assert_eq(resolve_id(s, 3, d), DS_DLQ_NONE);
        cr_assert_eq(dst_registry_count(url, 1), 0, "the registry's id 1 (a Total) was never asked for");
        cr_assert_eq(dst_registry_count(url, 3), 0);
        ds_buf_free(&b);
        free(d);
        ds_schemas_destroy(s);
}

Test(registry, not_found_is_unknown_schema_not_retried_and_negatively_cached) {
        ds_schemas_t *s = open_with(url, NULL, 1000, 3, 400);
        ds_decl_t *d = malloc(sizeof(*d));
        cr_assert_eq(resolve_id(s, 999, d), DS_DLQ_UNKNOWN_SCHEMA);
        cr_assert_eq(dst_registry_count(url, 999), 1, "a 404 is an answer: no retry");
        int64_t t0 = ds_mono_ms();
        for (int i = 0; i < 10000; i++)
                cr_assert_eq(resolve_id(s, 999, d), DS_DLQ_UNKNOWN_SCHEMA);
        cr_assert_lt(ds_mono_ms() - t0, 300, "the negative cache answers at once");
        cr_assert_eq(dst_registry_count(url, 999), 1);
        /* a 404 says the registry is up: other ids are still asked */
        cr_assert_eq(resolve_id(s, 100, d), DS_DLQ_NONE);
        usleep(500 * 1000); /* past negative.ttl.ms */
        cr_assert_eq(resolve_id(s, 999, d), DS_DLQ_UNKNOWN_SCHEMA);
        cr_assert_eq(dst_registry_count(url, 999), 2, "asked again once the negative TTL passed");
        free(d);
        ds_schemas_destroy(s);
}

Test(registry, a_500_is_retried_then_200_succeeds) {
        ds_schemas_t *s = open_with(url, NULL, 1000, 2, 60000);
        ds_decl_t *d = malloc(sizeof(*d));
        cr_assert_eq(resolve_id(s, 101, d), DS_DLQ_NONE);
        cr_assert_eq(dst_registry_count(url, 101), 2);
        cr_assert_eq(resolve_id(s, 109, d), DS_DLQ_NONE, "503, 503, then 200 with retries=2");
        cr_assert_eq(dst_registry_count(url, 109), 3);
        free(d);
        ds_schemas_destroy(s);
}

Test(registry, persistent_5xx_is_unavailable_and_the_registry_is_spared_until_the_ttl) {
        ds_schemas_t *s = open_with(url, NULL, 1000, 2, 700);
        ds_decl_t *d = malloc(sizeof(*d));
        cr_assert_eq(resolve_id(s, 102, d), DS_DLQ_REGISTRY_UNAVAILABLE);
        cr_assert_eq(dst_registry_count(url, 102), 3, "retries + 1 requests");
        cr_assert_eq(resolve_id(s, 102, d), DS_DLQ_REGISTRY_UNAVAILABLE);
        cr_assert_eq(dst_registry_count(url, 102), 3, "answered from the negative cache");
        /* the registry just failed: a new id is not asked for either */
        int64_t t0 = ds_mono_ms();
        cr_assert_eq(resolve_id(s, 100, d), DS_DLQ_REGISTRY_UNAVAILABLE);
        cr_assert_lt(ds_mono_ms() - t0, 100);
        cr_assert_eq(dst_registry_count(url, 100), 0);
        usleep(800 * 1000);
        cr_assert_eq(resolve_id(s, 100, d), DS_DLQ_NONE, "asked once the TTL passed");
        cr_assert_eq(dst_registry_count(url, 100), 1);
        free(d);
        ds_schemas_destroy(s);
}

Test(registry, timeouts_are_bounded_then_answered_from_the_negative_cache) {
        ds_schemas_t *s = open_with(url, NULL, 200, 1, 60000);
        ds_decl_t *d = malloc(sizeof(*d));
        int64_t t0 = ds_mono_ms();
        cr_assert_eq(resolve_id(s, 103, d), DS_DLQ_REGISTRY_UNAVAILABLE);
        int64_t took = ds_mono_ms() - t0;
        /* 2 attempts of 200 ms and a 20 ms backoff */
        cr_assert_geq(took, 400, "took %lld ms", (long long)took);
        cr_assert_leq(took, 420 + 400, "took %lld ms: bounded by timeout * (retries + 1) + backoff", (long long)took);
        cr_assert_eq(dst_registry_count(url, 103), 2);
        t0 = ds_mono_ms();
        for (int i = 0; i < 1000; i++)
                cr_assert_eq(resolve_id(s, 103, d), DS_DLQ_REGISTRY_UNAVAILABLE);
        cr_assert_lt(ds_mono_ms() - t0, 200, "no stall after the first time");
        free(d);
        ds_schemas_destroy(s);
}

Test(registry, a_slow_answer_within_the_timeout_succeeds) {
        ds_schemas_t *s = open_with(url, NULL, 2000, 0, 60000);
        ds_decl_t *d = malloc(sizeof(*d));
        int64_t t0 = ds_mono_ms();
        cr_assert_eq(resolve_id(s, 104, d), DS_DLQ_NONE);
        cr_assert_geq(ds_mono_ms() - t0, 150);
        cr_assert_eq(dst_registry_count(url, 104), 1);
        free(d);
        ds_schemas_destroy(s);
}

Test(registry, schemas_that_are_not_declarations_are_incompatible_for_good) {
        ds_schemas_t *s = open_with(url, NULL, 1000, 2, 100);
        ds_decl_t *d = malloc(sizeof(*d));
        cr_assert_eq(resolve_id(s, 105, d), DS_DLQ_INCOMPATIBLE_SCHEMA, "a Total");
        cr_assert(strstr(ds_schemas_note(s, 105), "not a Declaration"), "%s", ds_schemas_note(s, 105));
        cr_assert_not_null(ds_schemas_get(s, 105), "the parsed schema is kept (decoder=avro-c, top)");
        cr_assert_eq(resolve_id(s, 106, d), DS_DLQ_INCOMPATIBLE_SCHEMA, "a Protobuf schema");
        cr_assert_eq(resolve_id(s, 108, d), DS_DLQ_INCOMPATIBLE_SCHEMA, "not a valid Avro schema");
        usleep(200 * 1000); /* longer than the negative TTL: incompatibility is final anyway */
        cr_assert_eq(resolve_id(s, 105, d), DS_DLQ_INCOMPATIBLE_SCHEMA);
        cr_assert_eq(resolve_id(s, 108, d), DS_DLQ_INCOMPATIBLE_SCHEMA);
        cr_assert_eq(dst_registry_count(url, 105), 1);
        cr_assert_eq(dst_registry_count(url, 106), 1);
        cr_assert_eq(dst_registry_count(url, 108), 1);
        /* a 200 whose body is not the registry's JSON (a proxy's page): unavailable, not retried */
        cr_assert_eq(resolve_id(s, 107, d), DS_DLQ_REGISTRY_UNAVAILABLE);
        cr_assert_eq(dst_registry_count(url, 107), 1);
        /* ... which is about that id only: the registry is still asked about others */
        cr_assert_eq(resolve_id(s, 100, d), DS_DLQ_NONE);
        cr_assert_eq(dst_registry_count(url, 100), 1);
        free(d);
        ds_schemas_destroy(s);
}

static int closed_port(void) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        bind(fd, (struct sockaddr *)&a, sizeof(a));
        getsockname(fd, (struct sockaddr *)&a, &len);
        close(fd); /* nobody listens there now */
        return ntohs(a.sin_port);
}

Test(registry, an_unreachable_registry_is_unavailable_quickly) {
        char u[64];
        snprintf(u, sizeof(u), "http://127.0.0.1:%d", closed_port());
        ds_schemas_t *s = open_with(u, NULL, 1000, 2, 60000);
        ds_decl_t *d = malloc(sizeof(*d));
        int64_t t0 = ds_mono_ms();
        cr_assert_eq(resolve_id(s, 100, d), DS_DLQ_REGISTRY_UNAVAILABLE);
        cr_assert_lt(ds_mono_ms() - t0, 1000, "connection refused is not a timeout");
        cr_assert_eq(ds_schemas_registry_requests(s), 3, "retried");
        /* local ids do not need the registry */
        cr_assert_eq(resolve_id(s, 3, d), DS_DLQ_NONE);
        free(d);
        ds_schemas_destroy(s);
}

Test(registry, a_second_url_is_tried_after_a_failure) {
        char u[256];
        snprintf(u, sizeof(u), "http://127.0.0.1:%d/, %s", closed_port(), url);
        ds_schemas_t *s = open_with(u, NULL, 1000, 1, 60000);
        ds_decl_t *d = malloc(sizeof(*d));
        cr_assert_eq(resolve_id(s, 100, d), DS_DLQ_NONE);
        cr_assert_eq(ds_schemas_registry_requests(s), 2);
        free(d);
        ds_schemas_destroy(s);
}

Test(registry, basic_auth) {
        restart("{\"auth\": \"declstream:s3cr:et\", \"ids\": {\"100\": {\"schema_file\": \"" DST_V2 "\"}}}");
        ds_decl_t *d = malloc(sizeof(*d));
        ds_schemas_t *s = open_with(url, "declstream:wrong", 1000, 2, 60000);
        cr_assert_eq(resolve_id(s, 100, d), DS_DLQ_REGISTRY_UNAVAILABLE, "401");
        cr_assert_eq(dst_registry_count(url, 100), 1, "a 401 is not retried");
        ds_schemas_destroy(s);
        s = open_with(url, NULL, 1000, 2, 60000);
        cr_assert_eq(resolve_id(s, 100, d), DS_DLQ_REGISTRY_UNAVAILABLE, "no credentials");
        ds_schemas_destroy(s);
        s = open_with(url, "declstream:s3cr:et", 1000, 2, 60000); /* a password may hold a colon */
        cr_assert_eq(resolve_id(s, 100, d), DS_DLQ_NONE);
        ds_schemas_destroy(s);
        free(d);
}

Test(registry, configured_through_ds_config) {
        ds_config_t cfg;
        char err[512];
        ds_config_init(&cfg);
        cr_assert_eq(ds_config_set(&cfg, "schema.dir", DST_SCHEMA_DIR, "test", err, sizeof(err)), 0, "%s", err);
        cr_assert_eq(ds_config_set(&cfg, "schema.registry.url", url, "test", err, sizeof(err)), 0, "%s", err);
        cr_assert_eq(ds_config_set(&cfg, "schema.registry.timeout.ms", "500", "test", err, sizeof(err)), 0, "%s", err);
        cr_assert_eq(ds_config_set(&cfg, "schema.registry.retries", "0", "test", err, sizeof(err)), 0, "%s", err);
        ds_schemas_t *s = ds_schemas_open(&cfg, err, sizeof(err));
        cr_assert_not_null(s, "%s", err);
        ds_decl_t *d = malloc(sizeof(*d));
        cr_assert_eq(resolve_id(s, 100, d), DS_DLQ_NONE);
        cr_assert_eq(resolve_id(s, 102, d), DS_DLQ_REGISTRY_UNAVAILABLE);
        cr_assert_eq(dst_registry_count(url, 102), 1, "retries=0");
        ds_schemas_destroy(s);
        free(d);
        cr_assert_eq(ds_config_set(&cfg, "schema.registry.url", "ftp://registry:8081", "test", err, sizeof(err)), 0);
        cr_assert_null(ds_schemas_open(&cfg, err, sizeof(err)));
        cr_assert(strstr(err, "ftp://"), "%s", err);
        cr_assert_eq(ds_config_set(&cfg, "schema.registry.url", url, "test", err, sizeof(err)), 0);
        cr_assert_eq(ds_config_set(&cfg, "schema.registry.basic.auth.user.info", "nocolon", "test", err, sizeof(err)),
                     0);
        cr_assert_null(ds_schemas_open(&cfg, err, sizeof(err)));
        cr_assert(strstr(err, "user:password"), "%s", err);
        ds_config_free(&cfg);
}

/* Many workers, the same ids, at once: every answer right, one request per id. */
typedef struct {
        ds_schemas_t *s;
        int thread;
        int errors;
} worker_arg_t;

static const uint32_t mixed_ids[] = {1, 3, 100, 101, 104, 999, 105, 2};
static const ds_dlq_reason_t mixed_want[] = {DS_DLQ_NONE, DS_DLQ_NONE, DS_DLQ_NONE, DS_DLQ_NONE,
                                             DS_DLQ_NONE, DS_DLQ_UNKNOWN_SCHEMA, DS_DLQ_INCOMPATIBLE_SCHEMA,
                                             DS_DLQ_INCOMPATIBLE_SCHEMA};

static void *worker(void *arg) {
        worker_arg_t *w = arg;
        ds_decl_t *d = malloc(sizeof(*d));
        ds_buf_t b[DS_ARRAY_LEN(mixed_ids)] = {{0}};
        ds_decl_t orig;
        for (size_t k = 0; k < DS_ARRAY_LEN(mixed_ids); k++) {
                dst_sample(&orig, (int)k);
                dst_framed(&b[k], &orig, mixed_ids[k] == 1 ? 1 : 2, mixed_ids[k]);
        }
        for (int i = 0; i < 20000; i++) {
                size_t k = (size_t)(i + w->thread) % DS_ARRAY_LEN(mixed_ids);
                ds_resolved_t rs;
                ds_dlq_reason_t r = ds_schemas_resolve(w->s, b[k].p, b[k].len, &rs);
                if (!r)
                        r = ds_codec_decode(rs.codec, rs.body, rs.body_len, d);
                w->errors += r != mixed_want[k];
        }
        for (size_t k = 0; k < DS_ARRAY_LEN(mixed_ids); k++)
                ds_buf_free(&b[k]);
        free(d);
        return NULL;
}

Test(registry, concurrent_lookups_make_one_request_per_id) {
        ds_schemas_t *s = open_with(url, NULL, 2000, 2, 60000);
        enum { T = 8 };
        pthread_t th[T];
        worker_arg_t args[T];
        for (int i = 0; i < T; i++) {
                args[i] = (worker_arg_t){s, i, 0};
                pthread_create(&th[i], NULL, worker, &args[i]);
        }
        int errors = 0;
        for (int i = 0; i < T; i++) {
                pthread_join(th[i], NULL);
                errors += args[i].errors;
        }
        cr_assert_eq(errors, 0);
        cr_assert_eq(dst_registry_count(url, 100), 1);
        cr_assert_eq(dst_registry_count(url, 101), 2, "500 then 200");
        cr_assert_eq(dst_registry_count(url, 104), 1, "slow: the other threads waited for the first answer");
        cr_assert_eq(dst_registry_count(url, 999), 1);
        cr_assert_eq(dst_registry_count(url, 105), 1);
        cr_assert_eq(dst_registry_count(url, 1) + dst_registry_count(url, 2) + dst_registry_count(url, 3), 0);
        ds_schemas_destroy(s);
}
