/*
 * ds_registry.c - Schema Registry requests over libcurl.
 *
 * A fetch is a short loop of attempts. Each attempt is one blocking
 * curl_easy_perform() on a fresh easy handle (fetches are rare - once per new
 * schema id, or once per negative-cache expiry - so handle reuse would buy
 * nothing and would need a lock). CURLOPT_NOSIGNAL keeps libcurl away from
 * SIGALRM, which is required when timeouts are used from several threads.
 * Only http and https are allowed, redirects are not followed, and a body
 * larger than 4 MiB is refused (a registry is trusted, a proxy in front of it
 * less so).
 *
 * The answer is parsed with Jansson; the schema text is returned as the
 * registry holds it (ds_schemas parses and compiles it).
 */
#include "ds_registry.h"
#include "ds_common.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_URLS 8
#define MAX_BODY (4u << 20)

struct ds_registry {
        char *urls[MAX_URLS]; /* base URLs without a trailing slash */
        int nurls;
        char *user_info;
        char *url_for_log;
        int64_t timeout_ms;
        int retries;
        int64_t backoff_ms, backoff_max_ms;
        _Atomic uint64_t requests; /* relaxed: a statistic, orders nothing */
};

/* libcurl's global state: initialised by the first registry, cleaned up by
 * the last (curl_global_init is not to be raced; start-up calls this). */
static pthread_mutex_t global_mu = PTHREAD_MUTEX_INITIALIZER;
static int global_refs;

static int global_acquire(void) {
        int rc = 0;
        pthread_mutex_lock(&global_mu);
        if (global_refs == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                rc = -1;
        else
                global_refs++;
        pthread_mutex_unlock(&global_mu);
        return rc;
}

static void global_release(void) {
        pthread_mutex_lock(&global_mu);
        if (--global_refs == 0)
                curl_global_cleanup();
        pthread_mutex_unlock(&global_mu);
}

/* "http://user:secret@host" -> "http://user:***@host" */
static void redact(char *dst, size_t size, const char *url) {
        const char *scheme = strstr(url, "://");
        const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
        const char *colon = scheme ? strchr(scheme + 3, ':') : NULL;
        if (at && colon && colon < at && !memchr(scheme + 3, '/', (size_t)(at - scheme - 3)))
                snprintf(dst, size, "%.*s:***%s", (int)(colon - url), url, at);
        else
                snprintf(dst, size, "%s", url);
}

ds_registry_t *ds_registry_new(const ds_registry_conf_t *conf, char *errstr, size_t sz) {
        if (!conf->url || !*conf->url) {
                ds_err(errstr, sz, "schema.registry.url is empty");
                return NULL;
        }
        if (conf->timeout_ms < 1 || conf->retries < 0 || conf->backoff_ms < 0 || conf->backoff_max_ms < 0) {
                ds_err(errstr, sz, "schema registry: timeout must be >= 1 ms, retries and backoff >= 0");
                return NULL;
        }
        ds_registry_t *r = calloc(1, sizeof(*r));
        char *list = strdup(conf->url);
        if (!r || !list) {
                free(r);
                free(list);
                ds_err(errstr, sz, "out of memory");
                return NULL;
        }
        size_t logsz = strlen(conf->url) + 16 * MAX_URLS + 1, logn = 0;
        r->url_for_log = calloc(1, logsz);
        char *save = NULL;
        for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                while (*tok == ' ')
                        tok++;
                size_t n = strlen(tok);
                while (n && (tok[n - 1] == '/' || tok[n - 1] == ' '))
                        tok[--n] = '\0';
                if (!n)
                        continue;
                if (strncmp(tok, "http://", 7) && strncmp(tok, "https://", 8)) {
                        ds_err(errstr, sz, "schema.registry.url: %s is not an http:// or https:// URL", tok);
                        goto fail;
                }
                if (r->nurls == MAX_URLS) {
                        ds_err(errstr, sz, "schema.registry.url: more than %d URLs", MAX_URLS);
                        goto fail;
                }
                if (!(r->urls[r->nurls++] = strdup(tok)))
                        goto oom;
                if (r->url_for_log) {
                        char red[1024];
                        redact(red, sizeof(red), tok);
                        logn += (size_t)snprintf(r->url_for_log + logn, logsz - logn, "%s%s", logn ? "," : "", red);
                        if (logn >= logsz)
                                logn = logsz - 1;
                }
        }
        if (!r->nurls) {
                ds_err(errstr, sz, "schema.registry.url names no URL");
                goto fail;
        }
        if (conf->user_info && *conf->user_info) {
                if (!strchr(conf->user_info, ':')) {
                        ds_err(errstr, sz, "schema.registry.basic.auth.user.info must be user:password");
                        goto fail;
                }
                if (!(r->user_info = strdup(conf->user_info)))
                        goto oom;
        }
        if (!r->url_for_log)
                goto oom;
        r->timeout_ms = conf->timeout_ms;
        r->retries = conf->retries;
        r->backoff_ms = conf->backoff_ms;
        r->backoff_max_ms = conf->backoff_max_ms;
        if (global_acquire()) {
                ds_err(errstr, sz, "libcurl global initialisation failed");
                goto fail;
        }
        free(list);
        return r;
oom:
        ds_err(errstr, sz, "out of memory");
fail:
        free(list);
        for (int i = 0; i < r->nurls; i++)
                free(r->urls[i]);
        free(r->user_info);
        free(r->url_for_log);
        free(r);
        return NULL;
}

void ds_registry_destroy(ds_registry_t *r) {
        if (!r)
                return;
        for (int i = 0; i < r->nurls; i++)
                free(r->urls[i]);
        if (r->user_info) {
                memset(r->user_info, 0, strlen(r->user_info));
                free(r->user_info);
        }
        free(r->url_for_log);
        free(r);
        global_release();
}

static int64_t backoff_of(const ds_registry_t *r, int attempt) {
        int64_t b = r->backoff_ms;
        for (int i = 0; i < attempt && b < r->backoff_max_ms; i++)
                b *= 2;
        return b < r->backoff_max_ms ? b : r->backoff_max_ms;
}

int64_t ds_registry_max_fetch_ms(const ds_registry_t *r) {
        int64_t t = (int64_t)(r->retries + 1) * r->timeout_ms;
        for (int k = 0; k < r->retries; k++)
                t += backoff_of(r, k);
        return t;
}

uint64_t ds_registry_requests(const ds_registry_t *r) {
        return atomic_load_explicit(&r->requests, memory_order_relaxed);
}

const char *ds_registry_url_for_log(const ds_registry_t *r) {
        return r->url_for_log;
}

typedef struct body {
        char *p;
        size_t len, cap;
        int too_big;
} body_t;

static size_t on_data(char *data, size_t size, size_t nmemb, void *arg) {
        body_t *b = arg;
        size_t n = size * nmemb;
        if (b->len + n > MAX_BODY) {
                b->too_big = 1;
                return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
        }
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 4096;
                while (cap < b->len + n + 1)
                        cap *= 2;
                char *p = realloc(b->p, cap);
                if (!p)
                        return 0;
                b->p = p;
                b->cap = cap;
        }
        memcpy(b->p + b->len, data, n);
        b->len += n;
        b->p[b->len] = '\0';
        return n;
}

/* RETRY: may pass (retried); DOWN: the registry refuses us (auth), not
 * retried; BAD_ANSWER: an unusable answer about this id, not retried. */
enum outcome { OK, NOT_FOUND, NOT_AVRO, RETRY, DOWN, BAD_ANSWER };

/* One request. Fills *schema on OK; errstr otherwise. */
static enum outcome attempt(ds_registry_t *r, const char *base, uint32_t id, char **schema, size_t *len,
                            char *errstr, size_t sz) {
        char url[2048];
        snprintf(url, sizeof(url), "%s/schemas/ids/%" PRIu32, base, id);
        CURL *h = curl_easy_init();
        if (!h) {
                ds_err(errstr, sz, "curl_easy_init failed");
                return RETRY;
        }
        body_t b = {0};
        char cerr[CURL_ERROR_SIZE] = "";
        struct curl_slist *hdrs =
            curl_slist_append(NULL, "Accept: application/vnd.schemaregistry.v1+json, application/json");
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)r->timeout_ms);
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
        curl_easy_setopt(h, CURLOPT_USERAGENT, "declstream/" DS_VERSION);
        if (r->user_info) {
                curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
                curl_easy_setopt(h, CURLOPT_USERPWD, r->user_info);
        }
        atomic_fetch_add_explicit(&r->requests, 1, memory_order_relaxed);
        CURLcode rc = curl_easy_perform(h);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(h);

        enum outcome o;
        if (rc != CURLE_OK) {
                if (b.too_big) {
                        ds_err(errstr, sz, "GET %s: response larger than %u bytes", url, MAX_BODY);
                        o = BAD_ANSWER;
                } else {
                        ds_err(errstr, sz, "GET %s: %s", url, cerr[0] ? cerr : curl_easy_strerror(rc));
                        /* a bad URL or protocol, or a refused certificate, will not get better */
                        o = rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL ||
                                    rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_LOGIN_DENIED
                                ? DOWN
                                : RETRY;
                }
        } else if (status == 200) {
                json_error_t jerr;
                json_t *j = b.p ? json_loadb(b.p, b.len, 0, &jerr) : NULL;
                json_t *js = json_object_get(j, "schema");
                const char *type = json_string_value(json_object_get(j, "schemaType"));
                if (!json_is_string(js)) {
                        ds_err(errstr, sz, "GET %s: 200 without a \"schema\" string in the body", url);
                        o = BAD_ANSWER;
                } else if (type && strcmp(type, "AVRO")) {
                        ds_err(errstr, sz, "GET %s: schema type %.32s, not Avro", url, type);
                        o = NOT_AVRO;
                } else if (!(*schema = malloc(json_string_length(js) + 1))) {
                        ds_err(errstr, sz, "out of memory");
                        o = RETRY;
                } else {
                        *len = json_string_length(js);
                        memcpy(*schema, json_string_value(js), *len);
                        (*schema)[*len] = '\0';
                        o = OK;
                }
                json_decref(j);
        } else if (status == 404) {
                ds_err(errstr, sz, "GET %s: 404, no schema with this id", url);
                o = NOT_FOUND;
        } else {
                ds_err(errstr, sz, "GET %s: HTTP %ld%s", url, status,
                       status == 401 || status == 403 ? " (check schema.registry.basic.auth.user.info)" : "");
                o = status >= 500 || status == 408 || status == 429 ? RETRY
                    : status == 401 || status == 403                   ? DOWN
                                                                       : BAD_ANSWER;
        }
        free(b.p);
        return o;
}

ds_dlq_reason_t ds_registry_fetch(ds_registry_t *r, uint32_t id, char **schema, size_t *len, int *registry_down,
                                  char *errstr, size_t sz) {
        int down_ignored;
        if (!registry_down)
                registry_down = &down_ignored;
        *schema = NULL;
        *len = 0;
        *registry_down = 0;
        for (int k = 0;; k++) {
                switch (attempt(r, r->urls[k % r->nurls], id, schema, len, errstr, sz)) {
                case OK:
                        return DS_DLQ_NONE;
                case NOT_FOUND:
                        return DS_DLQ_UNKNOWN_SCHEMA;
                case NOT_AVRO:
                        return DS_DLQ_INCOMPATIBLE_SCHEMA;
                case BAD_ANSWER:
                        return DS_DLQ_REGISTRY_UNAVAILABLE;
                case DOWN:
                        *registry_down = 1;
                        return DS_DLQ_REGISTRY_UNAVAILABLE;
                case RETRY:
                        break;
                }
                if (k >= r->retries) {
                        *registry_down = 1;
                        return DS_DLQ_REGISTRY_UNAVAILABLE;
                }
                ds_sleep_ms(backoff_of(r, k));
        }
}
