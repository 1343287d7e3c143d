/*
 * ds_http.c - the HTTP server (see ds_http.h), on libmicrohttpd.
 */
#include "ds_http.h"
#include "ds_api.h"
#include "ds_common.h"
#include "ds_live.h"
#include "ds_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Connections: one thread each. A dashboard tab keeps ~6 keep-alive
 * connections (its parallel polls), so 256 leave room for ~40 tabs and the
 * probes; idle ones close after CONNECTION_TIMEOUT_S. One client address
 * holds at most http.max.connections.per.ip of them (libmicrohttpd closes
 * the connection beyond it at once), so a client opening connections in a
 * loop cannot take the places of the probes and the other clients. */
#define MAX_CONNECTIONS      256
#define CONNECTION_TIMEOUT_S 15
#define MAX_ARGS             32
#define STREAM_PERIOD_MS     1000
/* /api/stream holds its connection: at most this many at once (503 beyond),
 * so streams cannot take the slots the probes and scrapes need. */
#define MAX_STREAMS 16
/* JSON answers being built at once (503 beyond): an answer copies and sorts
 * the matching rows (up to http.max.rows, ~150 bytes each) and builds its
 * JSON, so the bound caps the API's memory. Answers with a limit above
 * LARGE_LIMIT (100,000 rows: ~240 MB while built) have a smaller bound. */
#define MAX_API_BUSY   16
#define MAX_LARGE_BUSY 2
#define LARGE_LIMIT    10000

static const char CSP[] = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                          "connect-src 'self'; frame-ancestors 'none'";

struct ds_http {
        const ds_config_t *cfg;
        struct MHD_Daemon *d;
        ds_live_t *live;
        ds_api_ctx_t api;
        int port;
        _Atomic int stopping;
        /* admission counters (relaxed: each is only a count; what a request
         * reads is published by the reader's own lock, not through these) */
        _Atomic int streams, api_busy, large_busy;
        _Atomic int64_t log_second;   /* monotonic second of the last libmicrohttpd line logged */
        _Atomic uint64_t log_dropped; /* lines not logged since */
};

/* libmicrohttpd's messages: at most one a second (a client refused at the
 * connection limit would otherwise log a line per attempt), with a count of
 * those left out. */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
        ds_http_t *h = cls;
        int64_t sec = ds_mono_ms() / 1000, last = atomic_load_explicit(&h->log_second, memory_order_relaxed);
        if (sec == last || !atomic_compare_exchange_strong_explicit(&h->log_second, &last, sec, memory_order_relaxed,
                                                                    memory_order_relaxed)) {
                atomic_fetch_add_explicit(&h->log_dropped, 1, memory_order_relaxed);
                return;
        }
        char msg[512];
        vsnprintf(msg, sizeof(msg), fmt, ap);
        size_t n = strlen(msg);
        while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
                msg[--n] = '\0';
        uint64_t dropped = atomic_exchange_explicit(&h->log_dropped, 0, memory_order_relaxed);
        if (dropped)
                ds_log(DS_LOG_WARN, "http", msg, "similar_lines_not_logged=%" PRIu64, dropped);
        else
                ds_log(DS_LOG_WARN, "http", msg, NULL);
}

/* Takes one of max places counted by n; 0 when all are taken. */
static int admit(_Atomic int *n, int max) {
        if (atomic_fetch_add_explicit(n, 1, memory_order_relaxed) < max)
                return 1;
        atomic_fetch_sub_explicit(n, 1, memory_order_relaxed);
        return 0;
}

static void leave(_Atomic int *n) {
        atomic_fetch_sub_explicit(n, 1, memory_order_relaxed);
}

static const char *content_type(const char *path) {
        const char *dot = strrchr(path, '.');
        if (!dot)
                return "application/octet-stream";
        if (!strcmp(dot, ".html"))
                return "text/html; charset=utf-8";
        if (!strcmp(dot, ".js"))
                return "text/javascript; charset=utf-8";
        if (!strcmp(dot, ".css"))
                return "text/css; charset=utf-8";
        if (!strcmp(dot, ".svg"))
                return "image/svg+xml";
        if (!strcmp(dot, ".png"))
                return "image/png";
        if (!strcmp(dot, ".json"))
                return "application/json";
        if (!strcmp(dot, ".LICENSE") || !strcmp(dot, ".txt"))
                return "text/plain; charset=utf-8";
        return "application/octet-stream";
}

static void common_headers(struct MHD_Response *r, const char *ctype) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
        MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
        MHD_add_response_header(r, "Content-Security-Policy", CSP);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
}

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned status, const char *ctype, const void *p, size_t n,
                                enum MHD_ResponseMemoryMode mode) {
        struct MHD_Response *r = MHD_create_response_from_buffer(n, (void *)p, mode);
        if (!r)
                return MHD_NO;
        common_headers(r, ctype);
        enum MHD_Result ret = MHD_queue_response(c, status, r);
        MHD_destroy_response(r);
        return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *msg) {
        char body[512];
        int n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}\n", msg);
        return send_buf(c, status, "application/json", body, (size_t)n, MHD_RESPMEM_MUST_COPY);
}

/* 503 with Retry-After: too many requests of one kind at once. */
static enum MHD_Result send_busy(struct MHD_Connection *c, const char *msg) {
        char body[512];
        int n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}\n", msg);
        struct MHD_Response *r = MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_COPY);
        if (!r)
                return MHD_NO;
        common_headers(r, "application/json");
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
        enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_SERVICE_UNAVAILABLE, r);
        MHD_destroy_response(r);
        return ret;
}

typedef struct argv_ctx {
        ds_api_arg_t a[MAX_ARGS];
        int n, overflow;
} argv_ctx_t;

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
        (void)kind;
        argv_ctx_t *x = cls;
        if (x->n == MAX_ARGS) {
                x->overflow = 1;
                return MHD_NO;
        }
        x->a[x->n++] = (ds_api_arg_t){key, value ? value : ""};
        return MHD_YES;
}

/* ---- /api/stream --------------------------------------------------------------- */

typedef struct stream {
        ds_http_t *h;
        ds_buf_t buf;
        size_t off;
        int64_t next_ms;
} stream_t;

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max) {
        (void)pos;
        stream_t *s = cls;
        while (s->off == s->buf.len) {
                if (atomic_load_explicit(&s->h->stopping, memory_order_relaxed))
                        return MHD_CONTENT_READER_END_OF_STREAM;
                int64_t now = ds_mono_ms();
                if (now < s->next_ms) {
                        /* one thread per connection: sleeping here holds up nobody */
                        int64_t wait = s->next_ms - now;
                        usleep((useconds_t)(wait > 100 ? 100 : wait) * 1000);
                        continue;
                }
                s->next_ms = now + STREAM_PERIOD_MS;
                s->buf.len = 0;
                s->off = 0;
                ds_buf_put(&s->buf, "event: summary\ndata: ", 21);
                ds_api_summary(&s->h->api, &s->buf);
                ds_buf_put(&s->buf, "\n\n", 2);
        }
        size_t n = s->buf.len - s->off;
        if (n > max)
                n = max;
        memcpy(out, s->buf.p + s->off, n);
        s->off += n;
        return (ssize_t)n;
}

static void stream_free(void *cls) {
        stream_t *s = cls;
        leave(&s->h->streams);
        ds_buf_free(&s->buf);
        free(s);
}

static enum MHD_Result serve_stream(ds_http_t *h, struct MHD_Connection *c) {
        if (!admit(&h->streams, MAX_STREAMS))
                return send_busy(c, "too many /api/stream clients; retry later");
        stream_t *s = calloc(1, sizeof(*s));
        if (!s) {
                leave(&h->streams);
                return send_error(c, 500, "out of memory");
        }
        s->h = h;
        /* a comment line first, so clients see the stream open at once */
        ds_buf_put(&s->buf, ": declstream summary stream, one event per second\nretry: 2000\n\n", 63);
        s->next_ms = ds_mono_ms();
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_free);
        if (!r) {
                stream_free(s);
                return MHD_NO;
        }
        common_headers(r, "text/event-stream; charset=utf-8");
        enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return ret;
}

/* ---- dispatch ------------------------------------------------------------------------ */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
        (void)version;
        (void)upload;
        ds_http_t *h = cls;
        if (!*con_cls) { /* first call: headers only */
                static int marker;
                *con_cls = &marker;
                return MHD_YES;
        }
        if (*upload_size) { /* a body we do not want */
                *upload_size = 0;
                return MHD_YES;
        }
        if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD)) {
                struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
                common_headers(r, "application/json");
                MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
                enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_METHOD_NOT_ALLOWED, r);
                MHD_destroy_response(r);
                return ret;
        }
        if (!strcmp(url, "/api/stream"))
                return serve_stream(h, c);

        argv_ctx_t args = {0};
        MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, &args);
        if (args.overflow)
                return send_error(c, 400, "too many query parameters");
        int api = !strncmp(url, "/api/", 5), large = 0;
        for (int i = 0; api && i < args.n; i++)
                if (!strcmp(args.a[i].name, "limit") && atoll(args.a[i].value) > LARGE_LIMIT)
                        large = 1;
        if (api && !admit(&h->api_busy, MAX_API_BUSY))
                return send_busy(c, "too many API requests at once; retry in a second");
        if (large && !admit(&h->large_busy, MAX_LARGE_BUSY)) {
                leave(&h->api_busy);
                return send_busy(c, "too many requests with a limit above 10000 at once; retry in a second");
        }
        ds_api_resp_t resp = {0};
        int answered = !ds_api_answer(&h->api, url, args.a, args.n, &resp);
        if (large)
                leave(&h->large_busy);
        if (api)
                leave(&h->api_busy);
        if (answered) {
                struct MHD_Response *r =
                        MHD_create_response_from_buffer(resp.body.len, resp.body.p, MHD_RESPMEM_MUST_FREE);
                if (!r) {
                        ds_buf_free(&resp.body);
                        return MHD_NO;
                }
                common_headers(r, resp.content_type);
                enum MHD_Result ret = MHD_queue_response(c, (unsigned)resp.status, r);
                MHD_destroy_response(r); /* frees the body (MUST_FREE) once sent */
                return ret;
        }
        const char *path = !strcmp(url, "/") ? "/index.html" : url;
        for (size_t i = 0; i < ds_assets_count; i++)
                if (!strcmp(ds_assets[i].path, path))
                        return send_buf(c, MHD_HTTP_OK, content_type(path), ds_assets[i].data, ds_assets[i].len,
                                        MHD_RESPMEM_PERSISTENT);
        return send_error(c, MHD_HTTP_NOT_FOUND, "not found");
}

/* ---- start, stop ------------------------------------------------------------------------ */

/* "HOST:PORT", "[v6]:PORT" or ":PORT" (all interfaces). */
static int resolve(const char *listen, struct sockaddr_storage *ss, socklen_t *sl, char *errstr, size_t sz) {
        char host[256];
        const char *colon = strrchr(listen, ':');
        if (!colon || !colon[1])
                return ds_err(errstr, sz, "http.listen: expected HOST:PORT (or off), got \"%s\"", listen);
        const char *h = listen;
        size_t hl = (size_t)(colon - listen);
        if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
                h++;
                hl -= 2;
        }
        if (hl >= sizeof(host))
                return ds_err(errstr, sz, "http.listen: host name too long");
        memcpy(host, h, hl);
        host[hl] = '\0';
        char *end;
        errno = 0;
        long port = strtol(colon + 1, &end, 10);
        if (errno || *end || port < 0 || port > 65535)
                return ds_err(errstr, sz, "http.listen: bad port \"%s\" in \"%s\" (0-65535)", colon + 1, listen);
        struct addrinfo hints = {0}, *res = NULL;
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        int rc = getaddrinfo(hl ? host : NULL, colon + 1, &hints, &res);
        if (rc || !res)
                return ds_err(errstr, sz, "http.listen: cannot resolve \"%s\": %s", host, gai_strerror(rc));
        memcpy(ss, res->ai_addr, res->ai_addrlen);
        *sl = res->ai_addrlen;
        freeaddrinfo(res);
        return 0;
}

ds_http_t *ds_http_start(const ds_config_t *cfg, char *errstr, size_t sz) {
        struct sockaddr_storage ss;
        socklen_t sl = 0;
        if (resolve(cfg->http_listen, &ss, &sl, errstr, sz))
                return NULL;
        /* bind first: a taken address fails start-up at once, before the
         * reader of the published totals asks the brokers anything */
        int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
            bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 64)) {
                int e = errno;
                if (fd >= 0)
                        close(fd);
                return ds_err(errstr, sz,
                              "http.listen: cannot listen on %s: %s (set http.listen to a free HOST:PORT, or off)",
                              cfg->http_listen, strerror(e)),
                       NULL;
        }
        ds_http_t *h = calloc(1, sizeof(*h));
        if (!h) {
                close(fd);
                ds_err(errstr, sz, "out of memory");
                return NULL;
        }
        h->cfg = cfg;
        char err[512];
        h->live = ds_live_start(cfg, err, sizeof(err));
        if (!h->live)
                /* the probes and /metrics still work; the row endpoints say why not */
                ds_log(DS_LOG_WARN, "http", "the JSON API will have no rows", "error=\"%s\"", err);
        h->api = (ds_api_ctx_t){cfg, h->live};
        /* ITC: ds_http_stop() quiesces the daemon (stops accepting) before it stops */
        unsigned flags =
                MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG | MHD_USE_ITC;
        if (ss.ss_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        /* the logger must be the first option (libmicrohttpd says so otherwise) */
        h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
                                MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S,
                                MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->http_per_ip, MHD_OPTION_END);
        if (!h->d) {
                close(fd);
                ds_err(errstr, sz, "http.listen: cannot serve on %s (libmicrohttpd refused to start)",
                       cfg->http_listen);
                ds_live_stop(h->live);
                free(h);
                return NULL;
        }
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
        h->port = info ? info->port : 0;
        char addr[INET6_ADDRSTRLEN] = "?";
        if (ss.ss_family == AF_INET)
                inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof(addr));
        else
                inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof(addr));
        ds_log(DS_LOG_INFO, "http", "http listening", "addr=%s%s%s:%d dashboard=http://%s%s%s:%d/",
               ss.ss_family == AF_INET6 ? "[" : "", addr, ss.ss_family == AF_INET6 ? "]" : "", h->port,
               ss.ss_family == AF_INET6 ? "[" : "", addr, ss.ss_family == AF_INET6 ? "]" : "", h->port);
        return h;
}

int ds_http_port(const ds_http_t *h) {
        return h ? h->port : 0;
}

void ds_http_stop(ds_http_t *h) {
        if (!h)
                return;
        /* No new connections; open streams end their responses (stream_read
         * sees stopping within 100 ms and ends the chunked body, so a client
         * sees a complete stream), then the daemon stops: it closes every
         * connection at once, which would cut a stream mid-response. */
        MHD_socket ls = MHD_quiesce_daemon(h->d);
        atomic_store_explicit(&h->stopping, 1, memory_order_relaxed);
        /* a stream's place is given back once its last chunk is written */
        for (int64_t until = ds_mono_ms() + 1000;
             atomic_load_explicit(&h->streams, memory_order_relaxed) > 0 && ds_mono_ms() < until;)
                usleep(10000);
        MHD_stop_daemon(h->d); /* joins the connection threads */
        if (ls != MHD_INVALID_SOCKET)
                close(ls); /* quiesced: the listening socket is ours to close */
        ds_live_stop(h->live);
        free(h);
}
