/*
 * test_http.c - the HTTP server of `declstream run`, through a real client
 * (the curl binary), against a real pipeline on the embedded broker.
 *
 *   declstream broker (4 partitions) -> declstream gen --count 20000 --truth
 *   -> declstream run --commit.interval.ms 200 -X statistics.interval.ms=1000
 *      (DECLSTREAM_HTTP_LISTEN=127.0.0.1:0: the port is read from its log)
 *
 * Data: once the run has caught up, /metrics counts exactly what the
 * generator sent (consumed, applied, dead-lettered per reason), and
 * /api/totals (total, day, hour, minute windows), /api/rolling (today,
 * last_1h), /api/series and /api/top equal the generator's truth file.
 * Format: /metrics is Prometheus text (every sample parses, every family has
 * HELP and TYPE before its samples, counters end in _total, histograms are
 * cumulative with +Inf = _count) and holds the promised names.
 * Protocol: /healthz, /readyz (503 with a reason before partitions are
 * assigned), 400 {"error","parameter"} for each kind of bad parameter, 404,
 * 405, the security headers, the dashboard's files with their content
 * types, /api/stream events and their limit, the connection limit per client
 * address, SIGTERM with a stream open, and start-up failures of http.listen
 * (exit status 2).
 *
 * Only one test has a Criterion .timeout: with two timed tests running at once
 * (--jobs 2), Criterion 2.4.1's BoxFort leaks a 48-byte timeout request in the
 * runner, which fails the ASan build. The other tests bound every wait
 * themselves (curl --max-time, ds_run and polling deadlines).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ds_common.h"
#include "ds_testutil.h"

#ifdef DS_SANITIZED
#define SLOW 3 /* ASan: everything takes longer */
#else
#define SLOW 1
#endif

#define VN_OFFSET_MS (7 * 3600000LL)
#define DAY_MS 86400000LL
#define MIN_MS 60000LL

static char *dir;
static ds_proc_t broker, run;
static int run_started;
static char servers[256];
static int port;

static char *path(const char *name) {
        return ds_join(dir, name);
}

static void setup(void) {
        dir = ds_tmpdir("ds-http");
        cr_assert_not_null(dir);
        run_started = 0;
        port = 0;
}

static void teardown(void) {
        if (run_started) {
                ds_proc_kill(&run, SIGTERM);
                if (ds_proc_wait(&run, 15000) < 0)
                        ds_proc_kill(&run, SIGKILL);
        }
        if (broker.pid > 0) {
                ds_proc_kill(&broker, SIGTERM);
                if (ds_proc_wait(&broker, 5000) < 0)
                        ds_proc_kill(&broker, SIGKILL);
        }
        ds_tmpdir_remove(dir);
        free(dir);
        dir = NULL;
}

static void start_broker(void) {
        cr_assert_eq(ds_broker_start(&broker, dir, 4, servers, sizeof(servers)), 0, "broker did not start");
}

/* Reads the port from "http listening addr=127.0.0.1:PORT" in the run's log. */
static int wait_port(ds_proc_t *p, const char *log, int timeout_ms) {
        int64_t end = ds_mono_ms() + timeout_ms;
        while (ds_mono_ms() < end) {
                char *s = ds_slurp(log, NULL);
                const char *m = s ? strstr(s, "http listening") : NULL;
                const char *a = m ? strstr(m, "addr=127.0.0.1:") : NULL;
                int pt = a ? atoi(a + strlen("addr=127.0.0.1:")) : 0;
                free(s);
                if (pt > 0)
                        return pt;
                if (ds_proc_wait(p, 20) >= 0)
                        return -1;
        }
        return -1;
}

static void start_run(char *const *extra) {
        char *argv[40] = {DS_BINARY, "run", "-b", servers, "--commit.interval.ms", "200", "-X",
                          "statistics.interval.ms=1000", "-X", "session.timeout.ms=6000", "--log.level", "info"};
        int n = 12;
        for (; extra && *extra && n < 39; extra++)
                argv[n++] = *extra;
        argv[n] = NULL;
        cr_assert_eq(ds_proc_start(&run, argv, NULL, path("run.err")), 0);
        run_started = 1;
        port = wait_port(&run, path("run.err"), 30000 * SLOW);
        cr_assert_gt(port, 0, "no \"http listening\" line in %s", path("run.err"));
}

/* ---- a raw client, for the per-address connection limit ------------------------------ */

/* A TCP connection to the server from source address src (any 127/8 address
 * is this host's), or -1. */
static int raw_connect(const char *src) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -1;
        struct sockaddr_in sa = {.sin_family = AF_INET};
        struct timeval tv = {5 * SLOW, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        inet_pton(AF_INET, src, &sa.sin_addr);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
                goto fail;
        sa.sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
                goto fail;
        return fd;
fail:
        close(fd);
        return -1;
}

/* GET /healthz on a kept-alive connection: its status, 0 if the server
 * closed the connection without an answer, -1 on a timeout. */
static int raw_healthz(int fd) {
        static const char req[] = "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";
        char buf[4096];
        size_t got = 0;
        if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) < 0)
                return 0;
        for (;;) {
                ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
                if (n == 0 || (n < 0 && errno == ECONNRESET))
                        return 0;
                if (n < 0)
                        return -1;
                got += (size_t)n;
                buf[got] = 0;
                char *end = strstr(buf, "\r\n\r\n"), *cl = strstr(buf, "Content-Length: ");
                if (end && cl && got >= (size_t)(end + 4 - buf) + (size_t)atoi(cl + 16))
                        return atoi(buf + 9); /* "HTTP/1.1 200" */
                if (got == sizeof(buf) - 1)
                        return -1;
        }
}

/* ---- the client: curl ------------------------------------------------------------- */

typedef struct resp {
        int status;
        char *body, *headers;
        size_t len;
} resp_t;

static void resp_free(resp_t *r) {
        free(r->body);
        free(r->headers);
        memset(r, 0, sizeof(*r));
}

/* curl -X method http://127.0.0.1:port<pq>; status 0 when curl failed. */
static resp_t request(const char *method, const char *pq) {
        char url[1024], fmt[] = "%{http_code}";
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, pq);
        char *argv[] = {"curl", "-sS", "-g", "--max-time", "20", "-X", (char *)method, "-o", path("body"),
                        "-D", path("headers"), "-w", fmt, url, NULL};
        if (!strcmp(method, "HEAD")) {
                argv[5] = "-I";
                argv[6] = "-s";
        }
        resp_t r = {0};
        int rc = ds_run(argv, path("code"), path("curl.err"), 30000);
        char *code = ds_slurp(path("code"), NULL);
        r.status = rc == 0 && code ? atoi(code) : 0;
        free(code);
        r.body = ds_slurp(path("body"), &r.len);
        r.headers = ds_slurp(path("headers"), NULL);
        if (!r.body)
                r.body = strdup("");
        if (!r.headers)
                r.headers = strdup("");
        unlink(path("body"));
        return r;
}

static resp_t get(const char *pq) {
        return request("GET", pq);
}

/* The value of header name (case-insensitive), in a static buffer; NULL if absent. */
static const char *header(const resp_t *r, const char *name) {
        static char val[1024];
        size_t nl = strlen(name);
        for (const char *l = r->headers; l && *l;) {
                const char *e = strchr(l, '\n');
                size_t len = e ? (size_t)(e - l) : strlen(l);
                if (len > nl && !strncasecmp(l, name, nl) && l[nl] == ':') {
                        const char *v = l + nl + 1;
                        while (*v == ' ')
                                v++;
                        size_t vl = len - (size_t)(v - l);
                        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
                                vl--;
                        snprintf(val, sizeof(val), "%.*s", (int)vl, v);
                        return val;
                }
                l = e ? e + 1 : l + len;
        }
        return NULL;
}

/* GET pq, expecting status and a JSON object body. */
static json_t *get_json(const char *pq, int status) {
        resp_t r = get(pq);
        cr_assert_eq(r.status, status, "GET %s: status %d, want %d; body %s", pq, r.status, status, r.body);
        const char *ct = header(&r, "Content-Type");
        cr_expect(ct && !strncmp(ct, "application/json", 16), "GET %s: Content-Type %s", pq, ct ? ct : "(none)");
        json_error_t e;
        json_t *j = json_loads(r.body, 0, &e);
        cr_assert(j && json_is_object(j), "GET %s: not a JSON object (%s): %.300s", pq, e.text, r.body);
        resp_free(&r);
        return j;
}

static long long jint(json_t *o, const char *k) {
        return json_integer_value(json_object_get(o, k));
}

/* ---- Prometheus text format --------------------------------------------------------- */

typedef struct prom {
        json_t *help, *type;   /* family -> text / type */
        json_t *samples;       /* "name{labels}" -> value (real) */
        json_t *names;         /* sample name -> number of samples */
        int problems;
} prom_t;

static int name_char(int c, int first) {
        return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               (!first && c >= '0' && c <= '9');
}

#define PROM_BAD(...)                                                                                              \
        do {                                                                                                       \
                if (pr->problems++ < 10)                                                                           \
                        cr_log_error(__VA_ARGS__);                                                                 \
        } while (0)

/* The family a sample belongs to (histograms: _bucket, _sum, _count). */
static const char *family_of(prom_t *pr, const char *name, char *buf, size_t n) {
        if (json_object_get(pr->type, name))
                return name;
        static const char *const suff[] = {"_bucket", "_sum", "_count"};
        for (int i = 0; i < 3; i++) {
                size_t nl = strlen(name), sl = strlen(suff[i]);
                if (nl > sl && !strcmp(name + nl - sl, suff[i])) {
                        snprintf(buf, n, "%.*s", (int)(nl - sl), name);
                        const char *t = json_string_value(json_object_get(pr->type, buf));
                        if (t && (!strcmp(t, "histogram") || !strcmp(t, "summary")))
                                return buf;
                }
        }
        return NULL;
}

static void prom_parse(prom_t *pr, const char *text) {
        memset(pr, 0, sizeof(*pr));
        pr->help = json_object();
        pr->type = json_object();
        pr->samples = json_object();
        pr->names = json_object();
        int lineno = 0;
        for (const char *l = text; *l;) {
                const char *e = strchr(l, '\n');
                if (!e) {
                        PROM_BAD("/metrics: the last line has no newline");
                        break;
                }
                char line[4096];
                snprintf(line, sizeof(line), "%.*s", (int)(e - l), l);
                l = e + 1;
                lineno++;
                if (!line[0])
                        continue;
                if (line[0] == '#') {
                        char kw[8], name[256], rest[2048] = "";
                        if (sscanf(line, "# %7s %255s %2047[^\n]", kw, name, rest) < 2) {
                                PROM_BAD("/metrics line %d: bad comment: %s", lineno, line);
                                continue;
                        }
                        if (!strcmp(kw, "HELP")) {
                                if (json_object_get(pr->help, name))
                                        PROM_BAD("/metrics: two HELP lines for %s", name);
                                json_object_set_new(pr->help, name, json_string(rest));
                        } else if (!strcmp(kw, "TYPE")) {
                                static const char *const types[] = {"counter", "gauge", "histogram", "summary",
                                                                    "untyped"};
                                int ok = 0;
                                for (int i = 0; i < 5; i++)
                                        ok |= !strcmp(rest, types[i]);
                                if (!ok)
                                        PROM_BAD("/metrics: %s has type \"%s\"", name, rest);
                                if (json_object_get(pr->type, name))
                                        PROM_BAD("/metrics: two TYPE lines for %s", name);
                                if (json_object_get(pr->names, name))
                                        PROM_BAD("/metrics: TYPE of %s after its samples", name);
                                json_object_set_new(pr->type, name, json_string(rest));
                                if (!strcmp(rest, "counter")) {
                                        size_t nl = strlen(name);
                                        if (nl < 6 || strcmp(name + nl - 6, "_total"))
                                                PROM_BAD("/metrics: counter %s does not end in _total", name);
                                }
                        }
                        continue;
                }
                /* name{label="value",...} value [timestamp] */
                const char *p = line;
                if (!name_char((unsigned char)*p, 1)) {
                        PROM_BAD("/metrics line %d: bad metric name: %s", lineno, line);
                        continue;
                }
                while (name_char((unsigned char)*p, 0))
                        p++;
                char name[256];
                snprintf(name, sizeof(name), "%.*s", (int)(p - line), line);
                int bad = 0;
                if (*p == '{') {
                        p++;
                        while (*p && *p != '}') {
                                if (!name_char((unsigned char)*p, 1)) {
                                        bad = 1;
                                        break;
                                }
                                while (name_char((unsigned char)*p, 0))
                                        p++;
                                if (p[0] != '=' || p[1] != '"') {
                                        bad = 1;
                                        break;
                                }
                                p += 2;
                                while (*p && *p != '"') {
                                        if (*p == '\\') {
                                                if (p[1] != '\\' && p[1] != '"' && p[1] != 'n') {
                                                        bad = 1;
                                                        break;
                                                }
                                                p++;
                                        }
                                        p++;
                                }
                                if (bad || *p != '"') {
                                        bad = 1;
                                        break;
                                }
                                p++;
                                if (*p == ',')
                                        p++;
                                else if (*p != '}') {
                                        bad = 1;
                                        break;
                                }
                        }
                        if (!bad && *p == '}')
                                p++;
                        else
                                bad = 1;
                }
                char key[2048];
                snprintf(key, sizeof(key), "%.*s", (int)(p - line), line);
                if (bad || *p != ' ') {
                        PROM_BAD("/metrics line %d: not `name{labels} value`: %s", lineno, line);
                        continue;
                }
                p++;
                char *end;
                double v;
                if (!strncmp(p, "+Inf", 4) || !strncmp(p, "-Inf", 4) || !strncmp(p, "NaN", 3)) {
                        v = p[0] == 'N' ? NAN : p[0] == '-' ? -INFINITY : INFINITY;
                        end = (char *)p + (p[0] == 'N' ? 3 : 4);
                } else {
                        v = strtod(p, &end);
                        if (end == p)
                                PROM_BAD("/metrics line %d: bad value: %s", lineno, line);
                }
                if (*end == ' ') { /* optional timestamp, integer ms */
                        char *e2;
                        strtoll(end + 1, &e2, 10);
                        end = e2;
                }
                if (*end)
                        PROM_BAD("/metrics line %d: junk after the value: %s", lineno, line);
                char fb[256];
                const char *fam = family_of(pr, name, fb, sizeof(fb));
                if (!fam)
                        PROM_BAD("/metrics: sample %s has no # TYPE line before it", name);
                else if (!json_object_get(pr->help, fam))
                        PROM_BAD("/metrics: family %s has no # HELP line before its samples", fam);
                if (json_object_get(pr->samples, key))
                        PROM_BAD("/metrics: sample %s appears twice", key);
                json_object_set_new(pr->samples, key, json_real(v));
                json_t *c = json_object_get(pr->names, name);
                json_object_set_new(pr->names, name, json_integer(c ? json_integer_value(c) + 1 : 1));
        }
        /* histograms: cumulative buckets, le="+Inf" equal to _count */
        const char *fam;
        json_t *t;
        json_object_foreach(pr->type, fam, t) {
                if (strcmp(json_string_value(t), "histogram"))
                        continue;
                char bn[300], cn[300];
                snprintf(bn, sizeof(bn), "%s_bucket", fam);
                snprintf(cn, sizeof(cn), "%s_count", fam);
                if (!json_object_get(pr->names, bn) || !json_object_get(pr->names, cn)) {
                        PROM_BAD("/metrics: histogram %s without _bucket or _count samples", fam);
                        continue;
                }
                /* only unlabelled histograms here (declstream's are): check order and +Inf */
                const char *k;
                json_t *v;
                double prev = -1, inf = -1;
                json_object_foreach(pr->samples, k, v) {
                        size_t bl = strlen(bn);
                        if (strncmp(k, bn, bl) || k[bl] != '{' || !strstr(k, "le=\""))
                                continue;
                        (void)prev;
                        if (strstr(k, "le=\"+Inf\""))
                                inf = json_real_value(v);
                }
                json_t *cnt = json_object_get(pr->samples, cn);
                if (cnt && inf != json_real_value(cnt))
                        PROM_BAD("/metrics: %s{le=\"+Inf\"} %g differs from %s %g", bn, inf, cn, json_real_value(cnt));
        }
}

/* Buckets in text order must not decrease (checked on the raw text). */
static int buckets_cumulative(const char *text, const char *fam) {
        char pre[300];
        snprintf(pre, sizeof(pre), "%s_bucket{", fam);
        double prev = -1;
        int n = 0;
        for (const char *l = strstr(text, pre); l; l = strstr(l + 1, pre)) {
                if (l != text && l[-1] != '\n')
                        continue;
                const char *sp = strchr(l, '}');
                double v = sp ? strtod(sp + 2, NULL) : -1;
                if (v < prev)
                        return -1;
                prev = v;
                n++;
        }
        return n;
}

static void prom_free(prom_t *pr) {
        json_decref(pr->help);
        json_decref(pr->type);
        json_decref(pr->samples);
        json_decref(pr->names);
}

static double sample(prom_t *pr, const char *key) {
        json_t *v = json_object_get(pr->samples, key);
        return v ? json_real_value(v) : -1;
}

/* Sum of every sample of name (any labels). */
static double sample_sum(prom_t *pr, const char *name, int *count) {
        double s = 0;
        int n = 0;
        const char *k;
        json_t *v;
        size_t nl = strlen(name);
        json_object_foreach(pr->samples, k, v) if (!strncmp(k, name, nl) && (k[nl] == '{' || !k[nl])) {
                s += json_real_value(v);
                n++;
        }
        if (count)
                *count = n;
        return s;
}

static char *get_metrics(prom_t *pr) {
        resp_t r = get("/metrics");
        cr_assert_eq(r.status, 200, "/metrics: %d", r.status);
        const char *ct = header(&r, "Content-Type");
        cr_expect(ct && strstr(ct, "text/plain") && strstr(ct, "version=0.0.4"), "/metrics Content-Type %s",
                  ct ? ct : "(none)");
        prom_parse(pr, r.body);
        char *text = r.body;
        free(r.headers);
        return text;
}

/* ---- the truth ---------------------------------------------------------------------- */

static const char *const measures[8] = {"declarations",           "items",
                                        "customs_value_usd_cents", "gross_weight_g",
                                        "export_value_usd_cents", "import_value_usd_cents",
                                        "transit_value_usd_cents", "border_resident_value_usd_cents"};

static int64_t day_start(int64_t t) {
        int64_t local = t + VN_OFFSET_MS;
        int64_t d = local / DAY_MS - (local % DAY_MS < 0);
        return d * DAY_MS - VN_OFFSET_MS;
}

/* Compares the rows of an /api/totals answer with the truth rows of
 * DIM|*|WIN|start (start in [from, to] unless whole); logs differences and
 * returns their number. Missing truth rows that are all zero do not count. */
static int compare_rows(json_t *truth, json_t *ans, const char *dim, const char *win, int64_t from, int64_t to,
                        int whole, int *compared) {
        json_t *rows = json_object_get(truth, "rows");
        json_t *seen = json_object();
        int diffs = 0;
        *compared = 0;
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(ans, "rows"), i, r) {
                char k[160];
                snprintf(k, sizeof(k), "%s|%s|%s|%lld", dim, json_string_value(json_object_get(r, "key")), win,
                         strcmp(win, "TOTAL") ? jint(r, "window_start") : 0LL);
                json_object_set_new(seen, k, json_true());
                json_t *want = json_object_get(rows, k);
                for (int m = 0; m < 8; m++) {
                        long long w = want ? json_integer_value(json_array_get(want, (size_t)m)) : 0;
                        if (!json_is_integer(json_object_get(r, measures[m])) || jint(r, measures[m]) != w) {
                                if (diffs++ < 10)
                                        cr_log_error("%s %s: API %lld, truth %lld%s", k, measures[m],
                                                     jint(r, measures[m]), w, want ? "" : " (no truth row)");
                        }
                }
                (*compared)++;
        }
        char pre[64];
        snprintf(pre, sizeof(pre), "%s|", dim);
        const char *k;
        json_t *want;
        json_object_foreach(rows, k, want) {
                if (strncmp(k, pre, strlen(pre)))
                        continue;
                char kd[16], kk[32], kw[16];
                long long start;
                if (sscanf(k, "%15[^|]|%31[^|]|%15[^|]|%lld", kd, kk, kw, &start) != 4 || strcmp(kw, win))
                        continue;
                if (!whole && (start < from || start > to))
                        continue;
                int zero = 1;
                for (int m = 0; m < 8; m++)
                        zero &= json_integer_value(json_array_get(want, (size_t)m)) == 0;
                if (!zero && !json_object_get(seen, k) && diffs++ < 10)
                        cr_log_error("%s: in the truth, not in the API's answer", k);
        }
        json_decref(seen);
        return diffs;
}

/* Sums the truth rows DIM|key|WIN|start over start in [from, to) per key. */
static json_t *truth_sums(json_t *truth, const char *dim, const char *win, int64_t from, int64_t to) {
        json_t *out = json_object();
        const char *k;
        json_t *want;
        json_object_foreach(json_object_get(truth, "rows"), k, want) {
                char kd[16], kk[32], kw[16];
                long long start;
                if (sscanf(k, "%15[^|]|%31[^|]|%15[^|]|%lld", kd, kk, kw, &start) != 4 || strcmp(kd, dim) ||
                    strcmp(kw, win) || start < from || start >= to)
                        continue;
                json_t *acc = json_object_get(out, kk);
                if (!acc) {
                        acc = json_pack("[IIIIIIII]", 0LL, 0LL, 0LL, 0LL, 0LL, 0LL, 0LL, 0LL);
                        json_object_set_new(out, kk, acc);
                }
                for (int m = 0; m < 8; m++)
                        json_array_set_new(acc, (size_t)m,
                                           json_integer(json_integer_value(json_array_get(acc, (size_t)m)) +
                                                        json_integer_value(json_array_get(want, (size_t)m))));
        }
        return out;
}

/* Compares /api/rolling rows with per-key sums. */
static int compare_sums(json_t *sums, json_t *ans, const char *what) {
        int diffs = 0;
        json_t *seen = json_object();
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(ans, "rows"), i, r) {
                const char *key = json_string_value(json_object_get(r, "key"));
                json_object_set_new(seen, key, json_true());
                json_t *want = json_object_get(sums, key);
                for (int m = 0; m < 8; m++) {
                        long long w = want ? json_integer_value(json_array_get(want, (size_t)m)) : 0;
                        if (jint(r, measures[m]) != w && diffs++ < 10)
                                cr_log_error("%s %s %s: API %lld, truth %lld", what, key, measures[m],
                                             jint(r, measures[m]), w);
                }
        }
        const char *k;
        json_t *want;
        json_object_foreach(sums, k, want) {
                int zero = 1;
                for (int m = 0; m < 8; m++)
                        zero &= json_integer_value(json_array_get(want, (size_t)m)) == 0;
                if (!zero && !json_object_get(seen, k) && diffs++ < 10)
                        cr_log_error("%s %s: in the truth, not in the API's answer", what, k);
        }
        json_decref(seen);
        return diffs;
}

/* ---- a running pipeline with a known stream ------------------------------------------- */

/* A day of declarations ending at the last local noon (ds_gen_start_noon):
 * ending now, a run just after local midnight (17:03 UTC) found minutes of
 * night traffic "today" and no row of Móng Cái. */
static json_t *generate(int count, const char *seed) {
        char c[32], start[32];
        snprintf(c, sizeof(c), "%d", count);
        ds_gen_start_noon(start, sizeof(start));
        char *gen[] = {DS_BINARY, "gen", "-b", servers, "--count", c, "--bad-rate", "0.01", "--seed", (char *)seed,
                       "--start-ms", start, "--truth", path("truth.json"), "-q", NULL};
        int rc = ds_run(gen, NULL, path("gen.err"), 120000 * SLOW);
        cr_assert_eq(rc, 0, "gen exited with %d (see %s)", rc, path("gen.err"));
        json_error_t e;
        json_t *truth = json_load_file(path("truth.json"), 0, &e);
        cr_assert_not_null(truth, "truth: %s", e.text);
        return truth;
}

/* Waits until /metrics counts every generated message, lag 0, and the
 * API's reader has caught up; returns the /metrics text of that moment. */
static void wait_caught_up(json_t *truth) {
        long long msgs = jint(truth, "messages");
        int64_t end = ds_mono_ms() + 120000 * SLOW;
        for (;;) {
                prom_t pr;
                char *text = get_metrics(&pr);
                int nlag;
                double consumed = sample(&pr, "declstream_consumed_messages_total");
                double lag = sample_sum(&pr, "declstream_consumer_lag_messages", &nlag);
                prom_free(&pr);
                free(text);
                if (consumed == (double)msgs && nlag == 4 && lag == 0) {
                        json_t *s = get_json("/api/summary", 200);
                        int ok = json_is_true(json_object_get(json_object_get(s, "published"), "caught_up")) &&
                                 json_is_true(json_object_get(s, "ready"));
                        json_decref(s);
                        if (ok)
                                return;
                }
                cr_assert_lt(ds_mono_ms(), end, "not caught up: consumed %.0f of %lld, lag %.0f over %d partitions",
                             consumed, msgs, lag, nlag);
                usleep(300000);
        }
}

/* Sum of one measure over an answer's rows. */
static long long rows_sum(json_t *ans, const char *measure) {
        long long s = 0;
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(ans, "rows"), i, r) s += jint(r, measure);
        return s;
}

/* Polls /api/totals?window=total for both dimensions until their sums equal
 * the truth's (the merge publishes every 200 ms), then compares every row. */
static void wait_totals_equal(json_t *truth) {
        long long want = 0;
        const char *k;
        json_t *w;
        json_object_foreach(json_object_get(truth, "rows"), k, w) if (!strncmp(k, "GATE|", 5) && strstr(k, "|TOTAL|"))
            want += json_integer_value(json_array_get(w, 2));
        int64_t end = ds_mono_ms() + 60000 * SLOW;
        for (;;) {
                json_t *g = get_json("/api/totals?dimension=gate&window=total", 200);
                json_t *c = get_json("/api/totals?dimension=commodity&window=total&limit=100000", 200);
                int settled = rows_sum(g, "customs_value_usd_cents") == want &&
                              rows_sum(c, "customs_value_usd_cents") == want;
                if (settled || ds_mono_ms() > end) {
                        int ng, nc;
                        int dg = compare_rows(truth, g, "GATE", "TOTAL", 0, 0, 1, &ng);
                        int dc = compare_rows(truth, c, "COMMODITY", "TOTAL", 0, 0, 1, &nc);
                        json_decref(g);
                        json_decref(c);
                        cr_assert(dg == 0 && dc == 0,
                                  "/api/totals window=total differs from the truth: %d gate, %d commodity differences",
                                  dg, dc);
                        cr_log_info("/api/totals window=total: %d gate and %d commodity rows equal the truth", ng, nc);
                        cr_assert_eq(ng, 16, "gate TOTAL rows: %d", ng);
                        cr_assert_gt(nc, 10);
                        return;
                }
                json_decref(g);
                json_decref(c);
                usleep(300000);
        }
}

Test(http, data_endpoints_equal_the_truth_and_metrics_count_the_stream, .init = setup, .fini = teardown,
     .timeout = 300) {
        start_broker();
        json_t *truth = generate(20000, "606");
        start_run(NULL);

        /* --- probes --- */
        json_t *h = get_json("/healthz", 200);
        cr_expect_str_eq(json_string_value(json_object_get(h, "status")), "ok");
        json_decref(h);

        wait_caught_up(truth);
        json_t *rz = get_json("/readyz", 200);
        cr_expect(json_is_true(json_object_get(rz, "ready")));
        json_decref(rz);

        /* --- /api/totals window=total: every gate and heading, every measure --- */
        wait_totals_equal(truth);

        /* --- /metrics: format, names, and the counts of the stream --- */
        prom_t pr;
        char *text = NULL;
        int64_t end = ds_mono_ms() + 20000 * SLOW;
        /* librdkafka statistics arrive every second (statistics.interval.ms=1000);
         * the processor's figures are a snapshot the main loop refreshes every
         * 250 ms between cycles, so they may trail the totals already read
         * from customs.totals by a cycle: wait for the merge's count too */
        for (;;) {
                text = get_metrics(&pr);
                int any = 0;
                const char *k;
                json_t *v;
                json_object_foreach(pr.names, k, v) any |= !strncmp(k, "declstream_rdkafka_", 19);
                if ((any && sample(&pr, "declstream_published_rows_total") > 1000) || ds_mono_ms() > end)
                        break;
                prom_free(&pr);
                free(text);
                usleep(500000);
        }
        cr_expect_eq(pr.problems, 0, "/metrics is not valid Prometheus text: %d problems (see the log)", pr.problems);
        static const char *const want_families[] = {
            "declstream_consumed_messages_total",  "declstream_applied_declarations_total",
            "declstream_dead_lettered_messages_total", "declstream_events_total",
            "declstream_late_events_total",        "declstream_published_rows_total",
            "declstream_consumer_lag_messages",    "declstream_cycle_duration_seconds",
            "declstream_commit_duration_seconds",  "declstream_decode_duration_seconds",
            "declstream_worker_queue_messages",    "declstream_resident_memory_bytes",
            "declstream_ready",                    "declstream_ingest_delay_seconds",
            "declstream_partial_rows_total",       "declstream_status_messages_total", NULL};
        for (int i = 0; want_families[i]; i++)
                cr_expect_not_null(json_object_get(pr.type, want_families[i]), "/metrics has no family %s",
                                   want_families[i]);
        static const char *const want_samples[] = {"declstream_cycle_duration_seconds_bucket",
                                                   "declstream_commit_duration_seconds_bucket",
                                                   "declstream_decode_duration_seconds_bucket",
                                                   "declstream_cycle_duration_seconds_count", NULL};
        for (int i = 0; want_samples[i]; i++)
                cr_expect_not_null(json_object_get(pr.names, want_samples[i]), "/metrics has no %s samples",
                                   want_samples[i]);
        static const char *const hists[] = {"declstream_cycle_duration_seconds", "declstream_commit_duration_seconds",
                                            "declstream_decode_duration_seconds", "declstream_ingest_delay_seconds",
                                            NULL};
        for (int i = 0; hists[i]; i++)
                cr_expect_gt(buckets_cumulative(text, hists[i]), 2, "%s: buckets not cumulative", hists[i]);
        cr_expect_gt(sample(&pr, "declstream_cycle_duration_seconds_count"), 0);
        /* the sampled messages carry the producer's CreateTime: each one is timed */
        cr_expect_gt(sample(&pr, "declstream_ingest_delay_seconds_count"), 0);
        cr_expect_eq(sample(&pr, "declstream_ingest_delay_seconds_count"),
                     sample(&pr, "declstream_decode_duration_seconds_count"),
                     "ingest delay and decode time are taken on the same sampled messages");
        cr_expect_gt(sample(&pr, "declstream_resident_memory_bytes"), 1e6);
        cr_expect_eq(sample(&pr, "declstream_ready"), 1);
        int rd = 0;
        {
                const char *k;
                json_t *v;
                json_object_foreach(pr.type, k, v) if (!strncmp(k, "declstream_rdkafka_", 19)) rd++;
                json_object_foreach(pr.names, k, v) cr_expect(!strncmp(k, "declstream_", 11),
                                                              "metric %s is not named declstream_*", k);
        }
        cr_expect_gt(rd, 3, "no librdkafka statistics in /metrics (declstream_rdkafka_*)");

        cr_expect_eq(sample(&pr, "declstream_consumed_messages_total"), (double)jint(truth, "messages"),
                     "consumed %.0f, generated %lld", sample(&pr, "declstream_consumed_messages_total"),
                     jint(truth, "messages"));
        cr_expect_eq(sample(&pr, "declstream_applied_declarations_total"), (double)jint(truth, "valid"),
                     "applied %.0f, valid %lld", sample(&pr, "declstream_applied_declarations_total"),
                     jint(truth, "valid"));
        int nreasons;
        double dl = sample_sum(&pr, "declstream_dead_lettered_messages_total", &nreasons);
        cr_expect_eq(dl, (double)jint(truth, "bad"), "dead-lettered %.0f, bad %lld", dl, jint(truth, "bad"));
        cr_expect_gt(nreasons, 5);
        {
                const char *reason;
                json_t *cnt;
                json_object_foreach(json_object_get(truth, "bad_by_reason"), reason, cnt) {
                        char key[256];
                        snprintf(key, sizeof(key), "declstream_dead_lettered_messages_total{reason=\"%s\"}", reason);
                        cr_expect_eq(sample(&pr, key), (double)json_integer_value(cnt), "%s: %.0f, truth %lld", key,
                                     sample(&pr, key), (long long)json_integer_value(cnt));
                }
        }
        int nlag, nq, nev;
        cr_expect_eq(sample_sum(&pr, "declstream_consumer_lag_messages", &nlag), 0);
        cr_expect_eq(nlag, 4, "lag samples for %d partitions, want 4", nlag);
        for (int p = 0; p < 4; p++) {
                char key[128];
                snprintf(key, sizeof(key), "declstream_consumer_lag_messages{partition=\"%d\"}", p);
                cr_expect_eq(sample(&pr, key), 0, "%s", key);
        }
        sample_sum(&pr, "declstream_worker_queue_messages", &nq);
        cr_expect_gt(nq, 0, "no declstream_worker_queue_messages samples");
        double ev = sample_sum(&pr, "declstream_events_total", &nev);
        cr_expect_eq(ev, (double)jint(truth, "valid"), "events by outcome sum to %.0f, valid %lld", ev,
                     jint(truth, "valid"));
        cr_expect_gt(sample(&pr, "declstream_events_total{outcome=\"applied_new\"}"), 0);
        cr_expect_gt(sample(&pr, "declstream_published_rows_total"), 1000);
        cr_expect(json_object_get(pr.names, "declstream_late_events_total") != NULL);
        prom_free(&pr);
        free(text);

        /* --- /api/totals day, hour and minute windows --- */
        int n, d;
        json_t *a = get_json("/api/totals?dimension=gate&window=day&from=0&to=4102444800000&limit=100000", 200);
        cr_expect_str_eq(json_string_value(json_object_get(a, "window")), "day");
        cr_expect(json_is_false(json_object_get(a, "truncated")));
        d = compare_rows(truth, a, "GATE", "DAY", 0, 0, 1, &n);
        cr_expect_eq(d, 0, "gate DAY rows: %d differences", d);
        cr_expect_gt(n, 16, "gate DAY rows: %d", n);
        json_decref(a);
        a = get_json("/api/totals?dimension=commodity&window=day&from=1970-01-01T07:00:00%2B07:00&to=2100-01-01T00:00:00Z"
                     "&limit=100000",
                     200);
        d = compare_rows(truth, a, "COMMODITY", "DAY", 0, 0, 1, &n);
        cr_expect_eq(d, 0, "commodity DAY rows (RFC 3339 from/to): %d differences", d);
        cr_expect_gt(n, 20);
        json_decref(a);
        a = get_json("/api/totals?dimension=gate&window=hour&from=0&to=4102444800000&limit=100000", 200);
        d = compare_rows(truth, a, "GATE", "HOUR", 0, 0, 1, &n);
        cr_expect_eq(d, 0, "gate HOUR rows: %d differences", d);
        cr_expect_gt(n, 100);
        json_decref(a);
        /* MINUTE: the default range, the last hour of data */
        a = get_json("/api/totals?dimension=gate&window=minute&limit=100000", 200);
        int64_t mfrom = jint(a, "from"), mto = jint(a, "to");
        cr_expect_eq(mto - mfrom, 59 * MIN_MS, "minute range %lld..%lld", (long long)mfrom, (long long)mto);
        d = compare_rows(truth, a, "GATE", "MINUTE", mfrom, mto, 0, &n);
        cr_expect_eq(d, 0, "gate MINUTE rows of the last hour: %d differences", d);
        cr_expect_gt(n, 60, "gate MINUTE rows of the last hour: %d", n);
        json_decref(a);
        /* limit and key */
        a = get_json("/api/totals?dimension=gate&window=minute&limit=3", 200);
        cr_expect_eq(json_array_size(json_object_get(a, "rows")), 3);
        cr_expect(json_is_true(json_object_get(a, "truncated")));
        json_decref(a);
        a = get_json("/api/totals?dimension=gate&window=total&key=MONGCAI", 200);
        cr_expect_eq(json_array_size(json_object_get(a, "rows")), 1);
        cr_expect_eq(jint(json_array_get(json_object_get(a, "rows"), 0), "declarations"),
                     json_integer_value(json_array_get(
                         json_object_get(json_object_get(truth, "rows"), "GATE|MONGCAI|TOTAL|0"), 0)));
        json_decref(a);

        /* --- /api/rolling: today (DAY rows of the data's day), last_1h (MINUTE rows) --- */
        static const char *const dims[] = {"gate", "commodity"}, *const DIMS[] = {"GATE", "COMMODITY"};
        for (int di = 0; di < 2; di++) {
                char pq[128];
                snprintf(pq, sizeof(pq), "/api/rolling?view=today&dimension=%s", dims[di]);
                a = get_json(pq, 200);
                int64_t now = jint(a, "now");
                cr_expect_eq(jint(a, "from"), day_start(now), "today starts at local midnight (UTC+7)");
                cr_expect_eq(jint(a, "to"), day_start(now) + DAY_MS);
                json_t *sums = truth_sums(truth, DIMS[di], "DAY", jint(a, "from"), jint(a, "to"));
                d = compare_sums(sums, a, "today");
                cr_expect_eq(d, 0, "/api/rolling view=today %s: %d differences", dims[di], d);
                cr_expect_gt(json_array_size(json_object_get(a, "rows")), 10);
                json_decref(sums);
                json_decref(a);

                snprintf(pq, sizeof(pq), "/api/rolling?view=last_1h&dimension=%s", dims[di]);
                a = get_json(pq, 200);
                cr_expect_eq(jint(a, "to") - jint(a, "from"), 60 * MIN_MS);
                sums = truth_sums(truth, DIMS[di], "MINUTE", jint(a, "from"), jint(a, "to"));
                d = compare_sums(sums, a, "last_1h");
                cr_expect_eq(d, 0, "/api/rolling view=last_1h %s: %d differences", dims[di], d);
                cr_expect_gt(json_array_size(json_object_get(a, "rows")), 5);
                json_decref(sums);
                json_decref(a);
        }
        /* the rows come sorted by customs value, largest first, with Vietnamese names */
        a = get_json("/api/rolling?view=today", 200);
        json_t *rows = json_object_get(a, "rows");
        for (size_t i = 1; i < json_array_size(rows); i++)
                cr_expect_geq(jint(json_array_get(rows, i - 1), "customs_value_usd_cents"),
                              jint(json_array_get(rows, i), "customs_value_usd_cents"));
        int mongcai = 0;
        size_t i;
        json_t *r;
        json_array_foreach(rows, i, r) if (!strcmp(json_string_value(json_object_get(r, "key")), "MONGCAI")) {
                mongcai = 1;
                const char *nm = json_string_value(json_object_get(r, "name"));
                cr_expect(nm && strstr(nm, "M\xc3\xb3ng C\xc3\xa1i"), "MONGCAI's name: %s", nm ? nm : "(none)");
        }
        cr_expect(mongcai, "no MONGCAI row today");
        json_decref(a);
        a = get_json("/api/rolling?view=last_24h", 200);
        cr_expect_gt(json_array_size(json_object_get(a, "rows")), 10);
        json_decref(a);

        /* --- /api/series: one point per minute, summed over gates --- */
        a = get_json("/api/series", 200);
        cr_expect_str_eq(json_string_value(json_object_get(a, "window")), "minute");
        {
                int64_t from = jint(a, "from"), to = jint(a, "to");
                json_t *bymin = json_object();
                const char *k;
                json_t *w;
                json_object_foreach(json_object_get(truth, "rows"), k, w) {
                        char kk[32];
                        long long start;
                        if (sscanf(k, "GATE|%31[^|]|MINUTE|%lld", kk, &start) != 2 || start < from || start > to)
                                continue;
                        char t[32];
                        snprintf(t, sizeof(t), "%lld", start);
                        json_t *acc = json_object_get(bymin, t);
                        long long prev = acc ? json_integer_value(acc) : 0;
                        json_object_set_new(bymin, t, json_integer(prev + json_integer_value(json_array_get(w, 2))));
                }
                json_t *pts = json_object_get(a, "points");
                cr_expect_gt(json_array_size(pts), 30, "series: %zu points", json_array_size(pts));
                int sd = 0;
                int64_t prev_t = INT64_MIN;
                json_array_foreach(pts, i, r) {
                        char t[32];
                        snprintf(t, sizeof(t), "%lld", jint(r, "t"));
                        cr_expect_gt(jint(r, "t"), prev_t, "series points in time order");
                        prev_t = jint(r, "t");
                        if (jint(r, "customs_value_usd_cents") != json_integer_value(json_object_get(bymin, t)) &&
                            sd++ < 5)
                                cr_log_error("series point %s: value %lld, truth %lld", t,
                                             jint(r, "customs_value_usd_cents"),
                                             (long long)json_integer_value(json_object_get(bymin, t)));
                        json_object_del(bymin, t);
                }
                json_object_foreach(bymin, k, w) if (json_integer_value(w) != 0 && sd++ < 5)
                    cr_log_error("series: no point for minute %s", k);
                cr_expect_eq(sd, 0, "/api/series differs from the truth at %d points", sd);
                json_decref(bymin);
        }
        json_decref(a);
        a = get_json("/api/series?window=hour&dimension=gate&key=MONGCAI", 200);
        cr_expect_gt(json_array_size(json_object_get(a, "points")), 5);
        json_decref(a);

        /* --- /api/top: the gate's top ten headings of a customs day --- */
        {
                const char *k;
                json_t *want;
                int checked = 0;
                json_object_foreach(json_object_get(truth, "top"), k, want) {
                        char gate[32];
                        long long day;
                        if (sscanf(k, "%31[^|]|DAY|%lld", gate, &day) != 2 || (strcmp(gate, "MONGCAI") &&
                                                                               strcmp(gate, "HUUNGHI")))
                                continue;
                        char pq[128];
                        snprintf(pq, sizeof(pq), "/api/top?gate=%s&day=%lld", gate, day);
                        a = get_json(pq, 200);
                        cr_expect_eq(jint(a, "day"), day, "%s: day", pq);
                        json_t *hs = json_object_get(a, "headings");
                        cr_expect_eq(json_array_size(hs), json_array_size(want), "%s: %zu headings, truth %zu", pq,
                                     json_array_size(hs), json_array_size(want));
                        for (size_t x = 0; x < json_array_size(hs) && x < json_array_size(want); x++) {
                                json_t *g = json_array_get(hs, x), *w = json_array_get(want, x);
                                cr_expect_eq(jint(g, "rank"), (long long)x + 1);
                                cr_expect_str_eq(json_string_value(json_object_get(g, "heading")),
                                                 json_string_value(json_array_get(w, 0)), "%s rank %zu", pq, x + 1);
                                cr_expect_eq(jint(g, "customs_value_usd_cents"), json_integer_value(json_array_get(w, 1)));
                                cr_expect_eq(jint(g, "declarations"), json_integer_value(json_array_get(w, 2)));
                                cr_expect_eq(jint(g, "items"), json_integer_value(json_array_get(w, 3)));
                                cr_expect_eq(jint(g, "gross_weight_g"), json_integer_value(json_array_get(w, 4)));
                        }
                        json_decref(a);
                        checked++;
                }
                cr_expect_geq(checked, 2, "top lists checked: %d", checked);
        }
        a = get_json("/api/top?gate=MONGCAI", 200);
        cr_expect_gt(json_array_size(json_object_get(a, "headings")), 0, "MONGCAI has no top list today");
        json_decref(a);

        json_decref(truth);
        /* a clean stop */
        ds_proc_kill(&run, SIGTERM);
        int rc = ds_proc_wait(&run, 20000);
        cr_expect_eq(rc, 0, "run exited with %d after SIGTERM", rc);
}

/* Each kind of bad parameter: 400, JSON naming the parameter. */
static void expect_400(const char *pq, const char *param) {
        json_t *j = get_json(pq, 400);
        const char *p = json_string_value(json_object_get(j, "parameter"));
        const char *e = json_string_value(json_object_get(j, "error"));
        cr_expect(p && !strcmp(p, param), "GET %s: parameter %s, want %s", pq, p ? p : "(none)", param);
        cr_expect(e && *e, "GET %s: no error message", pq);
        json_decref(j);
}

/* curl -N /api/stream for up to secs seconds into file. */
static int stream_for(const char *file, const char *secs, ds_proc_t *p) {
        char url[128];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/stream", port);
        char *argv[] = {"curl", "-sS", "-N", "--max-time", (char *)secs, "-D", path("stream.headers"), url, NULL};
        if (p)
                return ds_proc_start(p, argv, file, path("stream.err"));
        return ds_run(argv, file, path("stream.err"), 60000);
}

Test(http, probes_errors_headers_static_files_stream_and_sigterm, .init = setup, .fini = teardown) {
        start_broker();
        json_t *truth = generate(3000, "7");
        json_decref(truth);
        start_run(NULL);

        /* --- /readyz: 503 with a reason until the group assigns partitions (the
         * embedded broker's group takes seconds), then 200 --- */
        int saw503 = 0, ready = 0;
        int64_t end = ds_mono_ms() + 60000 * SLOW;
        while (!ready && ds_mono_ms() < end) {
                resp_t r = get("/readyz");
                json_t *j = json_loads(r.body, 0, NULL);
                cr_assert(j, "/readyz: not JSON: %s", r.body);
                if (r.status == 503) {
                        saw503++;
                        cr_expect(json_is_false(json_object_get(j, "ready")), "/readyz 503: %s", r.body);
                        const char *why = json_string_value(json_object_get(j, "reason"));
                        cr_expect(why && *why, "/readyz 503 without a reason: %s", r.body);
                } else {
                        cr_assert_eq(r.status, 200, "/readyz: %d", r.status);
                        cr_expect(json_is_true(json_object_get(j, "ready")));
                        cr_expect_null(json_object_get(j, "reason"));
                        ready = 1;
                }
                json_decref(j);
                resp_free(&r);
                if (!ready)
                        usleep(100000);
        }
        cr_assert(ready, "/readyz never answered 200");
        cr_expect_gt(saw503, 0, "/readyz was never 503 before the partitions were assigned");

        resp_t r = get("/healthz");
        cr_expect_eq(r.status, 200);
        /* every answer carries the security headers */
        const char *v = header(&r, "X-Content-Type-Options");
        cr_expect(v && !strcmp(v, "nosniff"), "X-Content-Type-Options: %s", v ? v : "(none)");
        v = header(&r, "Content-Security-Policy");
        cr_expect(v && strstr(v, "default-src 'self'"), "Content-Security-Policy: %s", v ? v : "(none)");
        resp_free(&r);
        expect_400("/healthz?x=1", "x");

        /* --- bad parameters: 400 {"error", "parameter"} --- */
        expect_400("/api/totals?foo=1", "foo");
        expect_400("/api/totals?window=week", "window");
        expect_400("/api/totals?dimension=country", "dimension");
        expect_400("/api/totals?window=day&from=yesterday", "from");
        expect_400("/api/totals?window=day&to=2026-13-45T99:00:00Z", "to");
        expect_400("/api/totals?window=hour&from=2000&to=1000", "from");
        expect_400("/api/totals?limit=0", "limit");
        expect_400("/api/totals?limit=100001", "limit");
        expect_400("/api/totals?limit=ten", "limit");
        expect_400("/api/rolling?view=yesterday", "view");
        expect_400("/api/rolling?now=soon", "now");
        expect_400("/api/rolling?window=day", "window");
        expect_400("/api/series?window=total", "window");
        expect_400("/api/series?key=MONGCAI", "key");
        expect_400("/api/top", "gate");
        expect_400("/api/top?gate=", "gate");
        expect_400("/api/top?gate=NOWHERE", "gate");
        expect_400("/api/top?gate=MONGCAI&day=tomorrow", "day");
        expect_400("/metrics?format=json", "format");
        /* times beyond the year 9999: the spans and window counts computed
         * from them overflowed (UBSan stopped the process; a plain build
         * wrapped past the 10,000-point cap and answered 200) */
        expect_400("/api/series?window=minute&from=0001-01-01T00:00:00Z&to=9223372036854775807", "to");
        expect_400("/api/top?gate=MONGCAI&day=9223372036854775807", "day");
        expect_400("/api/rolling?view=last_1h&now=9223372036854775807", "now");
        expect_400("/api/totals?window=hour&from=10000-01-01T00:00:00Z", "from");
        /* bytes that are not UTF-8, echoed in the message: the error stays
         * (json_string() refused them and the field was dropped) */
        expect_400("/api/totals?window=%FF", "window");
        {
                json_t *bj = get_json("/api/totals?%FF=1", 400);
                const char *be = json_string_value(json_object_get(bj, "error"));
                cr_expect(be && strstr(be, "\xEF\xBF\xBD"), "an unknown non-UTF-8 parameter: error %s",
                          be ? be : "(none)");
                json_decref(bj);
        }
        /* the error text says why, in JSON */
        json_t *j = get_json("/api/totals?window=week", 400);
        cr_expect(strstr(json_string_value(json_object_get(j, "error")), "week") != NULL);
        json_decref(j);
        /* times: milliseconds and RFC 3339 with an offset are both accepted */
        j = get_json("/api/totals?window=hour&from=2026-11-23T08:00:00%2B07:00&to=1795435740000", 200);
        cr_expect_eq(jint(j, "from"), 1795395600000LL, "RFC 3339 with +07:00: %lld", jint(j, "from"));
        json_decref(j);

        /* --- 404, 405 --- */
        j = get_json("/api/x", 404);
        cr_expect_not_null(json_object_get(j, "error"));
        json_decref(j);
        r = get("/no/such/file.js");
        cr_expect_eq(r.status, 404);
        resp_free(&r);
        r = request("POST", "/api/totals");
        cr_expect_eq(r.status, 405, "POST: %d", r.status);
        v = header(&r, "Allow");
        cr_expect(v && strstr(v, "GET"), "405 without Allow: GET");
        resp_free(&r);
        r = request("DELETE", "/metrics");
        cr_expect_eq(r.status, 405, "DELETE: %d", r.status);
        resp_free(&r);
        r = request("HEAD", "/healthz");
        cr_expect_eq(r.status, 200, "HEAD: %d", r.status);
        resp_free(&r);

        /* --- the dashboard's files, embedded, with their content types --- */
        static const struct {
                const char *path, *ctype, *needle;
        } files[] = {{"/", "text/html", "<html"},
                     {"/index.html", "text/html", "app.js"},
                     {"/app.js", "text/javascript", "api/summary"},
                     {"/style.css", "text/css", "{"},
                     {"/vendor/uPlot.iife.min.js", "text/javascript", "uPlot"},
                     {"/vendor/uPlot.min.css", "text/css", "uplot"}};
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                r = get(files[i].path);
                cr_expect_eq(r.status, 200, "GET %s: %d", files[i].path, r.status);
                v = header(&r, "Content-Type");
                cr_expect(v && !strncmp(v, files[i].ctype, strlen(files[i].ctype)), "GET %s: Content-Type %s",
                          files[i].path, v ? v : "(none)");
                cr_expect(strstr(r.body, files[i].needle) != NULL, "GET %s: no \"%s\" in the body", files[i].path,
                          files[i].needle);
                v = header(&r, "X-Content-Type-Options");
                cr_expect(v && !strcmp(v, "nosniff"), "GET %s: no nosniff", files[i].path);
                cr_expect_not_null(header(&r, "Content-Security-Policy"), "GET %s: no CSP", files[i].path);
                resp_free(&r);
        }
        /* the page is the one in the source tree, byte for byte */
        {
                char src[512];
                snprintf(src, sizeof(src), "%s/processor/dashboard/app.js", DS_SOURCE_DIR);
                size_t n;
                char *want = ds_slurp(src, &n);
                r = get("/app.js");
                cr_expect(want && r.len == n && !memcmp(r.body, want, n), "/app.js differs from %s", src);
                free(want);
                resp_free(&r);
        }

        /* --- /api/stream: event: summary with JSON data, within a few seconds --- */
        int rc = stream_for(path("stream.txt"), "4", NULL);
        cr_expect(rc == 28 || rc == 0, "curl /api/stream exited with %d", rc);
        char *s = ds_slurp(path("stream.txt"), NULL);
        cr_assert_not_null(s);
        char *h = ds_slurp(path("stream.headers"), NULL);
        cr_expect(h && strstr(h, "text/event-stream"), "/api/stream headers: %s", h ? h : "(none)");
        free(h);
        int events = 0;
        for (char *e = strstr(s, "event: summary\ndata: "); e; e = strstr(e + 1, "event: summary\ndata: ")) {
                char *d = e + strlen("event: summary\ndata: ");
                char *nl = strchr(d, '\n');
                if (!nl)
                        break;
                *nl = '\0';
                json_error_t je;
                json_t *sj = json_loads(d, 0, &je);
                cr_expect(sj && json_is_object(sj), "stream data is not JSON (%s): %.200s", je.text, d);
                if (sj) {
                        cr_expect_not_null(json_object_get(sj, "consumed"));
                        cr_expect_not_null(json_object_get(sj, "ready"));
                        cr_expect_not_null(json_object_get(sj, "partitions"));
                }
                json_decref(sj);
                events++;
                *nl = '\n';
                e = nl;
        }
        cr_expect_geq(events, 2, "%d summary events in 4 s", events);
        free(s);

        /* --- at most 16 streams at once: the 17th is told to come back,
         * and the probes still answer (64 open streams or keep-alive
         * dashboards used to take every connection slot, /healthz with them) --- */
        {
                enum { NSTREAMS = 16 };
                ds_proc_t sp[NSTREAMS];
                char sf[NSTREAMS][64];
                for (int i = 0; i < NSTREAMS; i++) {
                        snprintf(sf[i], sizeof(sf[i]), "streams-%d.txt", i);
                        cr_assert_eq(stream_for(path(sf[i]), "60", &sp[i]), 0);
                }
                /* every stream delivers its first event; one answered 503
                 * (a closed stream's place is freed when the server's next
                 * write to it fails: within a couple of seconds) is asked again */
                int open = 0;
                for (int64_t until = ds_mono_ms() + 20000 * SLOW;;) {
                        open = 0;
                        for (int i = 0; i < NSTREAMS; i++) {
                                char *t = ds_slurp(path(sf[i]), NULL);
                                if (t && strstr(t, "event: summary"))
                                        open++;
                                else if (ds_proc_wait(&sp[i], 0) >= 0)
                                        cr_assert_eq(stream_for(path(sf[i]), "60", &sp[i]), 0);
                                free(t);
                        }
                        if (open == NSTREAMS || ds_mono_ms() > until)
                                break;
                        usleep(200000);
                }
                cr_expect_eq(open, NSTREAMS, "%d of %d streams opened", open, NSTREAMS);
                r = get("/api/stream");
                cr_expect_eq(r.status, 503, "stream %d: status %d", NSTREAMS + 1, r.status);
                cr_expect_not_null(header(&r, "Retry-After"), "503 without Retry-After");
                cr_expect(strstr(r.body, "\"error\"") != NULL, "503 body: %s", r.body);
                resp_free(&r);
                r = get("/healthz");
                cr_expect_eq(r.status, 200, "/healthz with %d streams open: %d", NSTREAMS, r.status);
                resp_free(&r);
                for (int i = 0; i < NSTREAMS; i++) {
                        ds_proc_kill(&sp[i], SIGTERM);
                        ds_proc_wait(&sp[i], 5000);
                }
                /* their places are free again */
                for (int64_t until = ds_mono_ms() + 10000 * SLOW; ds_mono_ms() < until;) {
                        rc = stream_for(path("stream3.txt"), "2", NULL);
                        char *t = ds_slurp(path("stream3.txt"), NULL);
                        int ok = t && strstr(t, "event: summary") != NULL;
                        free(t);
                        if (ok)
                                break;
                        usleep(200000);
                }
                char *t = ds_slurp(path("stream3.txt"), NULL);
                cr_expect(t && strstr(t, "event: summary"), "no stream after the 16 closed");
                free(t);
        }

        /* --- one client address holds at most http.max.connections.per.ip
         * (64) connections: a client opening them in a loop took every place,
         * the probes' too. Its 65th is closed at once, the probes (from
         * another address: 127.0.0.1) are still served, and a place given
         * back is taken again. The client is 127.0.0.3, which nothing else
         * here uses: 127.0.0.1's connections of the streams above may still
         * be counted --- */
        {
                enum { PER_IP = 64 };
                const char *client = "127.0.0.3";
                int held[PER_IP];
                for (int i = 0; i < PER_IP; i++) {
                        held[i] = raw_connect(client);
                        cr_assert_geq(held[i], 0, "connection %d: %s", i, strerror(errno));
                        cr_assert_eq(raw_healthz(held[i]), 200, "connection %d of %d", i + 1, PER_IP);
                }
                /* each asked again just before the 65th: a connection idle
                 * for 15 s is closed (CONNECTION_TIMEOUT_S), which would free
                 * a place if opening the 64 took that long (ASan) */
                for (int i = 0; i < PER_IP; i++)
                        cr_assert_eq(raw_healthz(held[i]), 200, "connection %d of %d, asked again", i + 1, PER_IP);
                int over = raw_connect(client);
                cr_assert_geq(over, 0);
                cr_expect_eq(raw_healthz(over), 0, "connection %d from one address was served", PER_IP + 1);
                close(over);
                r = get("/healthz");
                cr_expect_eq(r.status, 200, "/healthz while another address holds its %d: %d", PER_IP, r.status);
                resp_free(&r);
                close(held[0]);
                int again = 0;
                for (int64_t until = ds_mono_ms() + 5000 * SLOW; again != 200 && ds_mono_ms() < until;) {
                        int fd = raw_connect(client);
                        again = fd >= 0 ? raw_healthz(fd) : -1;
                        if (fd >= 0)
                                close(fd);
                        if (again != 200)
                                usleep(50000);
                }
                cr_expect_eq(again, 200, "a place given back was not taken again");
                for (int i = 1; i < PER_IP; i++)
                        close(held[i]);
        }

        /* --- a declaration dated two days ahead is served, but does not
         * become the data's "now": it moved the reader's newest minute, which
         * evicted every row relative to it and emptied the dashboard --- */
        {
                j = get_json("/api/summary", 200);
                long long now0 = jint(j, "now");
                json_decref(j);
                char start[32], q[256], qold[256];
                long long ahead = (long long)ds_now_ms() + 2 * 86400000LL;
                /* the MINUTE rows held now (kept for 2 hours behind the data's now) */
                snprintf(qold, sizeof(qold), "/api/totals?dimension=gate&window=minute&from=0&to=%lld&limit=100000",
                         ahead - 86400000LL);
                j = get_json(qold, 200);
                size_t minutes0 = json_array_size(json_object_get(j, "rows"));
                json_decref(j);
                cr_expect_gt(minutes0, 0, "no MINUTE rows to lose");
                snprintf(start, sizeof(start), "%lld", ahead);
                char *fg[] = {DS_BINARY,    "gen", "-b",           servers, "--count",       "1",
                              "--seed",     "99",  "--amend-rate", "0",     "--cancel-rate", "0",
                              "--dup-rate", "0",   "--late-rate",  "0",     "--start-ms",    start,
                              "-q",         NULL};
                cr_assert_eq(ds_run(fg, NULL, path("gen-future.err"), 60000), 0);
                snprintf(q, sizeof(q), "/api/totals?dimension=gate&window=minute&from=%lld&to=%lld", ahead - 60000,
                         ahead + 2 * 86400000LL);
                int seen = 0;
                for (int64_t until = ds_mono_ms() + 30000 * SLOW; !seen && ds_mono_ms() < until;) {
                        j = get_json(q, 200);
                        seen = json_array_size(json_object_get(j, "rows")) > 0;
                        json_decref(j);
                        if (!seen)
                                usleep(200000);
                }
                cr_expect(seen, "the future-dated declaration's MINUTE row was never served");
                j = get_json("/api/summary", 200);
                long long now1 = jint(j, "now");
                json_decref(j);
                cr_expect_eq(now1, now0, "the data's now moved from %lld to %lld", now0, now1);
                j = get_json(qold, 200);
                size_t minutes1 = json_array_size(json_object_get(j, "rows"));
                json_decref(j);
                cr_expect_eq(minutes1, minutes0, "MINUTE rows held: %zu, then %zu", minutes0, minutes1);
        }

        /* --- SIGTERM with a stream open: exit 0, promptly --- */
        ds_proc_t st;
        cr_assert_eq(stream_for(path("stream2.txt"), "120", &st), 0);
        end = ds_mono_ms() + 10000;
        size_t got = 0;
        while (ds_mono_ms() < end) { /* until the stream has delivered an event */
                char *t = ds_slurp(path("stream2.txt"), &got);
                int has = t && strstr(t, "event: summary") != NULL;
                free(t);
                if (has)
                        break;
                usleep(100000);
        }
        cr_expect_gt(got, 0, "the second stream delivered nothing");
        int64_t t0 = ds_mono_ms();
        ds_proc_kill(&run, SIGTERM);
        rc = ds_proc_wait(&run, 20000);
        int64_t took = ds_mono_ms() - t0;
        cr_expect_eq(rc, 0, "run exited with %d after SIGTERM with /api/stream open", rc);
        cr_expect_lt(took, 10000 * SLOW, "SIGTERM took %lld ms with a stream open", (long long)took);
        cr_log_info("SIGTERM with an open stream: exit %d after %lld ms", rc, (long long)took);
        /* curl sees the stream end as a complete response (exit 0; 18,
         * "transfer closed with outstanding read data", when the server cut it) */
        rc = ds_proc_wait(&st, 10000);
        if (rc < 0)
                ds_proc_kill(&st, SIGKILL);
        cr_expect_eq(rc, 0, "curl exited with %d when the server stopped (see %s)", rc, path("stream.err"));
}

/* --- start-up failures: exit status 2, an error naming http.listen --- */

static void expect_listen_failure(const char *addr, const char *label) {
        char *argv[] = {DS_BINARY, "run", "-b", "127.0.0.1:1", "--http", (char *)addr, NULL};
        int64_t t0 = ds_mono_ms();
        int rc = ds_run(argv, NULL, path(label), 60000 * SLOW);
        int64_t took = ds_mono_ms() - t0;
        char *log = ds_slurp(path(label), NULL);
        cr_expect_eq(rc, 2, "--http %s: exit status %d, want 2; log: %s", addr, rc, log ? log : "");
        cr_expect(log && strstr(log, "http.listen"), "--http %s: the error does not name http.listen: %s", addr,
                  log ? log : "");
        cr_log_info("--http %s: exit %d after %lld ms", addr, rc, (long long)took);
        free(log);
}

Test(http, a_taken_port_fails_start_up_with_status_2, .init = setup, .fini = teardown) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert_geq(fd, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        cr_assert_eq(listen(fd, 1), 0);
        socklen_t sl = sizeof(sa);
        getsockname(fd, (struct sockaddr *)&sa, &sl);
        char addr[64];
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sa.sin_port));
        expect_listen_failure(addr, "taken.err");
        close(fd);
}

Test(http, a_malformed_address_fails_start_up_with_status_2, .init = setup, .fini = teardown) {
        expect_listen_failure("bogus", "bogus.err");
        expect_listen_failure("127.0.0.1:99999", "port.err");
        expect_listen_failure("127.0.0.1:", "noport.err");
}
