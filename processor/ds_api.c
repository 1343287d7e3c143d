/*
 * ds_api.c - the HTTP API's answers (see ds_api.h).
 */
#include "ds_api.h"
#include "ds_common.h"
#include "ds_domain.h"
#include "ds_prom.h"
#include "ds_reason.h"
#include "ds_status.h"
#include "ds_validate.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MIN_MS        60000LL
#define HOUR_MS       3600000LL
#define DAY_MS        86400000LL
#define VN_OFFSET_MS  (7 * HOUR_MS)
#define MAX_POINTS    10000
#define DEFAULT_LIMIT 1000
#define MAX_LIMIT     100000
#define STALL_MS      30000 /* /healthz: a status older than this means the loop is stuck */
/* Times a client may ask for: years 0000 to 9999 (RFC 3339's range). The
 * arithmetic on them (spans, day starts, window counts) then cannot overflow. */
#define TIME_MIN_MS (-62167219200000LL) /* 0000-01-01T00:00:00Z */
#define TIME_MAX_MS 253402300799999LL   /* 9999-12-31T23:59:59.999Z */

static const int64_t win_ms[DS_WIN__CNT] = {0, MIN_MS, HOUR_MS, DAY_MS};
static const char *const win_names[DS_WIN__CNT] = {"total", "minute", "hour", "day"};

/* A JSON string of s. Invalid UTF-8 - a client's bytes echoed in a message,
 * a message cut mid-character, a name from gates.file - would make
 * json_string() return NULL and the field vanish: it becomes U+FFFD. */
static json_t *json_text(const char *s) {
        json_t *j = json_string(s);
        if (j || !s)
                return j;
        size_t n = strlen(s), o = 0;
        char *t = malloc(n * 3 + 1);
        if (!t)
                return NULL;
        for (size_t i = 0; i < n;) {
                unsigned char c = (unsigned char)s[i];
                size_t k = c < 0x80                 ? 1
                           : c >= 0xC2 && c <= 0xDF ? 2
                           : c >= 0xE0 && c <= 0xEF ? 3
                           : c >= 0xF0 && c <= 0xF4 ? 4
                                                    : 0;
                if (k && i + k <= n && ds_utf8_valid(s + i, k)) {
                        memcpy(t + o, s + i, k);
                        o += k;
                        i += k;
                } else {
                        memcpy(t + o, "\xEF\xBF\xBD", 3);
                        o += 3;
                        i++;
                }
        }
        t[o] = '\0';
        j = json_string(t);
        free(t);
        return j;
}

/* ---- small helpers ------------------------------------------------------------ */

int64_t ds_api_day_start(int64_t t) {
        int64_t local = t + VN_OFFSET_MS;
        int64_t d = local / DAY_MS - (local % DAY_MS < 0);
        return d * DAY_MS - VN_OFFSET_MS;
}

int ds_api_parse_time(const char *s, int64_t *ms) {
        if (!s || !*s)
                return -1;
        char *end;
        errno = 0;
        if (isdigit((unsigned char)s[0]) && !strchr(s, '-') && !strchr(s, 'T')) {
                long long v = strtoll(s, &end, 10);
                if (errno || *end || v < 0 || v > TIME_MAX_MS)
                        return -1;
                *ms = v;
                return 0;
        }
        /* RFC 3339: YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM) */
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        if (!p)
                p = strptime(s, "%Y-%m-%dt%H:%M:%S", &tm);
        if (!p)
                return -1;
        int64_t frac = 0;
        if (*p == '.') {
                int64_t scale = 100;
                for (p++; isdigit((unsigned char)*p); p++) {
                        frac += (*p - '0') * scale;
                        scale /= 10;
                }
        }
        int64_t off = 0;
        if (*p == 'Z' || *p == 'z') {
                p++;
        } else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) &&
                   p[3] == ':' && isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5])) {
                int h = (p[1] - '0') * 10 + (p[2] - '0'), m = (p[4] - '0') * 10 + (p[5] - '0');
                if (h > 23 || m > 59)
                        return -1;
                off = (*p == '+' ? 1 : -1) * ((int64_t)h * HOUR_MS + (int64_t)m * MIN_MS);
                p += 6;
        } else {
                return -1;
        }
        if (*p)
                return -1;
        if (tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
                return -1;
        time_t t = timegm(&tm);
        if (t == (time_t)-1)
                return -1;
        int64_t v = (int64_t)t * 1000 + frac - off;
        if (v < TIME_MIN_MS || v > TIME_MAX_MS)
                return -1;
        *ms = v;
        return 0;
}

static const char *arg(const ds_api_arg_t *args, int n, const char *name) {
        for (int i = 0; i < n; i++)
                if (!strcmp(args[i].name, name))
                        return args[i].value ? args[i].value : "";
        return NULL;
}

static void json_body(ds_api_resp_t *r, int status, json_t *j) {
        r->status = status;
        r->content_type = "application/json";
        char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
        json_decref(j);
        if (s) {
                ds_buf_put(&r->body, s, strlen(s));
                free(s);
        }
        ds_buf_put(&r->body, "\n", 1);
}

static int bad(ds_api_resp_t *r, const char *param, const char *fmt, const char *value) {
        char msg[512];
        snprintf(msg, sizeof(msg), fmt, value ? value : "");
        json_t *j = json_object();
        json_object_set_new(j, "error", json_text(msg));
        if (param)
                json_object_set_new(j, "parameter", json_text(param));
        json_body(r, 400, j);
        return 0;
}

/* Every parameter must be one of allowed (NULL-terminated). */
static int check_params(ds_api_resp_t *r, const ds_api_arg_t *args, int n, const char *const *allowed) {
        for (int i = 0; i < n; i++) {
                int ok = 0;
                for (int k = 0; allowed[k] && !ok; k++)
                        ok = !strcmp(args[i].name, allowed[k]);
                if (!ok) {
                        char list[256] = "";
                        size_t o = 0;
                        for (int k = 0; allowed[k]; k++)
                                o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", k ? ", " : "", allowed[k]);
                        char msg[400];
                        snprintf(msg, sizeof(msg), "unknown parameter \"%%s\" (this endpoint takes: %s)",
                                 o ? list : "no parameters");
                        bad(r, args[i].name, msg, args[i].name);
                        return -1;
                }
        }
        return 0;
}

static int parse_dim(ds_api_resp_t *r, const char *v, int *dim) {
        if (!v || !strcmp(v, "gate"))
                *dim = DS_DIM_GATE;
        else if (!strcmp(v, "commodity"))
                *dim = DS_DIM_COMMODITY;
        else
                return bad(r, "dimension", "dimension must be gate or commodity, not \"%s\"", v), -1;
        return 0;
}

static int parse_win(ds_api_resp_t *r, const char *v, int dflt, int allow_total, int *win) {
        if (!v) {
                *win = dflt;
                return 0;
        }
        for (int i = allow_total ? 0 : 1; i < DS_WIN__CNT; i++)
                if (!strcmp(v, win_names[i])) {
                        *win = i;
                        return 0;
                }
        return bad(r, "window",
                   allow_total ? "window must be total, minute, hour or day, not \"%s\""
                               : "window must be minute, hour or day, not \"%s\"",
                   v),
               -1;
}

static int parse_time_arg(ds_api_resp_t *r, const char *name, const char *v, int64_t *out) {
        if (ds_api_parse_time(v, out))
                return bad(r, name, "not a time (milliseconds since the epoch, or RFC 3339): \"%s\"", v), -1;
        return 0;
}

/* "now" of the data: the newest MINUTE window published, else the wall
 * clock's minute. */
static int64_t data_now(const ds_api_ctx_t *ctx) {
        if (ctx->live) {
                ds_live_stats_t st;
                ds_live_stats(ctx->live, &st);
                if (st.latest_minute != INT64_MIN)
                        return st.latest_minute;
        }
        return ds_now_ms() / MIN_MS * MIN_MS;
}

static const char *heading_name(const char *heading, int en) {
        size_t n = strlen(heading);
        for (int i = 0; i < ds_commodity_count(); i++) {
                const ds_commodity_t *c = ds_commodity(i);
                if (!strncmp(c->hs_code, heading, n))
                        return en ? c->name_en : c->name_vi;
        }
        return NULL;
}

static void put_names(json_t *o, int dim, const char *key) {
        if (dim == DS_DIM_GATE) {
                int g = ds_gate_lookup(key, (uint32_t)strlen(key));
                if (g >= 0) {
                        json_object_set_new(o, "name", json_text(ds_gate(g)->name_vi));
                        json_object_set_new(o, "province", json_text(ds_gate(g)->province));
                }
        } else {
                const char *vi = heading_name(key, 0), *en = heading_name(key, 1);
                if (vi)
                        json_object_set_new(o, "name", json_text(vi));
                if (en)
                        json_object_set_new(o, "name_en", json_text(en));
        }
}

static void put_measures(json_t *o, const int64_t *m) {
        for (int i = 0; i < DS_LIVE_MEASURES; i++)
                json_object_set_new(o, ds_live_measure_names[i], json_integer(m[i]));
}

static json_t *row_json(const ds_live_row_t *r) {
        json_t *o = json_object();
        json_object_set_new(o, "key", json_text(r->key));
        put_names(o, r->dim, r->key);
        json_object_set_new(o, "window", json_text(win_names[r->win]));
        if (r->win != DS_WIN_TOTAL)
                json_object_set_new(o, "window_start", json_integer(r->start));
        put_measures(o, r->m);
        if (r->distinct_declarants >= 0)
                json_object_set_new(o, "distinct_declarants", json_integer(r->distinct_declarants));
        if (r->distinct_vehicles >= 0)
                json_object_set_new(o, "distinct_vehicles", json_integer(r->distinct_vehicles));
        json_object_set_new(o, "updated_at", json_integer(r->updated_at));
        return o;
}

static int need_live(const ds_api_ctx_t *ctx, ds_api_resp_t *r) {
        if (ctx->live)
                return 0;
        json_t *j = json_object();
        json_object_set_new(j, "error", json_text("the reader of the published totals is not running"));
        json_body(r, 503, j);
        return -1;
}

/* ---- endpoints ------------------------------------------------------------------- */

void ds_api_summary(const ds_api_ctx_t *ctx, ds_buf_t *out) {
        ds_status_snap_t s;
        ds_status_read(&s);
        json_t *j = json_object();
        json_object_set_new(j, "instance", json_text(s.instance));
        json_object_set_new(j, "role", json_text(s.role));
        json_object_set_new(j, "version", json_text(DS_VERSION));
        json_object_set_new(j, "ready", json_boolean(s.ready));
        if (!s.ready)
                json_object_set_new(j, "not_ready", json_text(s.not_ready));
        json_object_set_new(j, "now", json_integer(data_now(ctx)));
        json_object_set_new(j, "updated_at", json_integer(s.published ? s.updated_ms : ds_now_ms()));
        json_object_set_new(j, "started_at", json_integer(s.started_ms));
        json_object_set_new(j, "rate_per_s", json_real(s.consumed_per_s));
        json_object_set_new(j, "applied_rate_per_s", json_real(s.applied_per_s));
        json_object_set_new(j, "dead_letter_rate_per_s", json_real(s.dead_lettered_per_s));
        json_object_set_new(j, "consumed", json_integer((json_int_t)s.c.consumed));
        json_object_set_new(j, "applied", json_integer((json_int_t)s.c.applied));
        json_object_set_new(j, "dead_lettered", json_integer((json_int_t)s.c.dead_lettered));
        json_t *by = json_object();
        for (int i = 1; i < DS_DLQ__CNT; i++)
                if (s.c.dlq[i])
                        json_object_set_new(by, ds_dlq_code((ds_dlq_reason_t)i), json_integer((json_int_t)s.c.dlq[i]));
        json_object_set_new(j, "dead_lettered_by_reason", by);
        json_t *ev = json_object();
        for (int i = 0; i < DS_EV__CNT; i++)
                if (s.c.outcome[i])
                        json_object_set_new(ev, ds_event_code((ds_event_outcome_t)i),
                                            json_integer((json_int_t)s.c.outcome[i]));
        json_object_set_new(j, "events", ev);
        json_object_set_new(j, "lag", json_integer(s.lag));
        json_t *parts = json_array();
        for (int i = 0; i < s.nparts; i++) {
                const ds_status_part_t *p = &s.parts[i];
                json_t *o = json_object();
                json_object_set_new(o, "partition", json_integer(p->partition));
                json_object_set_new(o, "lag", json_integer(p->lag));
                json_object_set_new(o, "epoch", json_integer(p->epoch));
                json_object_set_new(o, "next_offset", json_integer(p->next_offset));
                json_object_set_new(o, "worker", json_integer(p->worker));
                if (p->watermark_ms != INT64_MIN)
                        json_object_set_new(o, "watermark", json_integer(p->watermark_ms));
                json_array_append_new(parts, o);
        }
        json_object_set_new(j, "partitions", parts);
        json_object_set_new(j, "cycles", json_integer((json_int_t)s.cycles));
        json_object_set_new(j, "last_cycle_ms", json_integer(s.last_cycle_ms));
        if (s.merging) {
                json_t *m = json_object();
                json_object_set_new(m, "ready", json_boolean(s.merge.ready));
                json_object_set_new(m, "partitions", json_integer(s.merge.partitions));
                json_object_set_new(m, "rows_published", json_integer((json_int_t)s.merge.rows_published));
                json_object_set_new(m, "top_lists_published", json_integer((json_int_t)s.merge.tops_published));
                json_object_set_new(m, "rebuild_lag", json_integer(s.merge.rebuild_lag));
                json_object_set_new(m, "snapshots", json_integer((json_int_t)s.merge.snapshots));
                json_object_set_new(j, "merge", m);
        }
        if (ctx->live) {
                ds_live_stats_t st;
                ds_live_stats(ctx->live, &st);
                json_t *l = json_object();
                json_object_set_new(l, "caught_up", json_boolean(st.caught_up));
                json_object_set_new(l, "rows", json_integer(st.rows));
                json_object_set_new(l, "messages", json_integer((json_int_t)st.messages));
                json_object_set_new(l, "undecodable", json_integer((json_int_t)st.undecodable));
                json_object_set_new(l, "dropped", json_integer((json_int_t)st.dropped));
                if (st.latest_update != INT64_MIN)
                        json_object_set_new(l, "latest_update", json_integer(st.latest_update));
                json_object_set_new(j, "published", l);
        }
        json_object_set_new(j, "resident_memory_bytes", json_integer((json_int_t)ds_status_rss()));
        ds_status_snap_free(&s);
        char *txt = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
        json_decref(j);
        if (txt) {
                ds_buf_put(out, txt, strlen(txt));
                free(txt);
        }
}

static void healthz(ds_api_resp_t *r) {
        ds_status_snap_t s;
        ds_status_read(&s);
        int64_t age = ds_now_ms() - s.updated_ms;
        json_t *j = json_object();
        int ok = !s.published || age < STALL_MS || s.stopping || s.restoring;
        json_object_set_new(j, "status", json_text(ok ? "ok" : "stalled"));
        if (s.published)
                json_object_set_new(j, "status_age_ms", json_integer(age));
        ds_status_snap_free(&s);
        json_body(r, ok ? 200 : 503, j);
}

/* Ready: the roles say so (ds_status_ready()), and the row endpoints can
 * answer - the reader of the published totals started (a server whose API
 * says 503 to every row request should get no traffic). */
static void readyz(const ds_api_ctx_t *ctx, ds_api_resp_t *r) {
        ds_status_snap_t s;
        ds_status_read(&s);
        json_t *j = json_object();
        int ready = s.ready && ctx->live;
        json_object_set_new(j, "ready", json_boolean(ready));
        if (!s.ready)
                json_object_set_new(j, "reason", json_text(s.not_ready[0] ? s.not_ready : "starting"));
        else if (!ready)
                json_object_set_new(j, "reason",
                                    json_text("the reader of the published totals is not running (see the log)"));
        ds_status_snap_free(&s);
        json_body(r, ready ? 200 : 503, j);
}

static void metrics(const ds_api_ctx_t *ctx, ds_api_resp_t *r) {
        ds_status_snap_t s;
        ds_status_read(&s);
        ds_prom_render(&r->body, &s);
        ds_status_snap_free(&s);
        if (ctx->live) {
                ds_live_stats_t st;
                ds_live_stats(ctx->live, &st);
                ds_prom_family(&r->body, "declstream_http_rows", "gauge",
                               "Rows of the output topics kept for the HTTP API.");
                ds_prom_u64(&r->body, "declstream_http_rows", NULL, st.rows);
                ds_prom_family(&r->body, "declstream_http_read_messages_total", "counter",
                               "Messages the HTTP API read from the output topics.");
                ds_prom_u64(&r->body, "declstream_http_read_messages_total", NULL, st.messages);
                ds_prom_family(&r->body, "declstream_http_undecodable_messages_total", "counter",
                               "Messages of the output topics the HTTP API could not decode.");
                ds_prom_u64(&r->body, "declstream_http_undecodable_messages_total", NULL, st.undecodable);
                ds_prom_family(&r->body, "declstream_http_dropped_rows_total", "counter",
                               "New rows the HTTP API did not keep (http.max.rows reached).");
                ds_prom_u64(&r->body, "declstream_http_dropped_rows_total", NULL, st.dropped);
        }
        r->status = 200;
        r->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

static void totals(const ds_api_ctx_t *ctx, const ds_api_arg_t *a, int n, ds_api_resp_t *r) {
        static const char *const allowed[] = {"dimension", "window", "from", "to", "key", "limit", NULL};
        int dim, win;
        if (check_params(r, a, n, allowed) || need_live(ctx, r) || parse_dim(r, arg(a, n, "dimension"), &dim) ||
            parse_win(r, arg(a, n, "window"), DS_WIN_TOTAL, 1, &win))
                return;
        int64_t now = data_now(ctx);
        int64_t to = win == DS_WIN_DAY ? ds_api_day_start(now) : now / (win_ms[win] ? win_ms[win] : 1) * win_ms[win];
        int64_t from = win == DS_WIN_MINUTE ? to - 59 * MIN_MS
                       : win == DS_WIN_HOUR ? to - 23 * HOUR_MS
                                            : to - 29 * DAY_MS;
        const char *v;
        if ((v = arg(a, n, "from")) && parse_time_arg(r, "from", v, &from))
                return;
        if ((v = arg(a, n, "to")) && parse_time_arg(r, "to", v, &to))
                return;
        if (win != DS_WIN_TOTAL && from > to) {
                bad(r, "from", "from is after to%s", "");
                return;
        }
        long long limit = DEFAULT_LIMIT;
        if ((v = arg(a, n, "limit"))) {
                char *end;
                errno = 0;
                limit = strtoll(v, &end, 10);
                if (errno || *end || !*v || limit < 1 || limit > MAX_LIMIT) {
                        bad(r, "limit", "limit must be an integer from 1 to 100000, not \"%s\"", v);
                        return;
                }
        }
        ds_live_row_t *rows;
        int truncated;
        size_t cnt = ds_live_rows(ctx->live, dim, win, from, to, arg(a, n, "key"), (size_t)limit, &rows, &truncated);
        json_t *j = json_object();
        json_object_set_new(j, "dimension", json_text(dim == DS_DIM_GATE ? "gate" : "commodity"));
        json_object_set_new(j, "window", json_text(win_names[win]));
        if (win != DS_WIN_TOTAL) {
                json_object_set_new(j, "from", json_integer(from));
                json_object_set_new(j, "to", json_integer(to));
        }
        json_t *arr = json_array();
        for (size_t i = 0; i < cnt; i++)
                json_array_append_new(arr, row_json(&rows[i]));
        free(rows);
        json_object_set_new(j, "rows", arr);
        json_object_set_new(j, "truncated", json_boolean(truncated));
        json_body(r, 200, j);
}

/* Sums rows by key. */
typedef struct acc {
        char key[DS_LIVE_KEY_MAX];
        int64_t m[DS_LIVE_MEASURES];
        int64_t updated_at;
} acc_t;

static int row_key_cmp(const void *a, const void *b) {
        return strcmp(((const ds_live_row_t *)a)->key, ((const ds_live_row_t *)b)->key);
}

static int acc_cmp(const void *a, const void *b) {
        const acc_t *x = a, *y = b;
        if (x->m[2] != y->m[2])
                return x->m[2] < y->m[2] ? 1 : -1;
        return strcmp(x->key, y->key);
}

static void rolling(const ds_api_ctx_t *ctx, const ds_api_arg_t *a, int n, ds_api_resp_t *r) {
        static const char *const allowed[] = {"view", "dimension", "now", NULL};
        int dim;
        if (check_params(r, a, n, allowed) || need_live(ctx, r) || parse_dim(r, arg(a, n, "dimension"), &dim))
                return;
        const char *view = arg(a, n, "view");
        if (!view)
                view = "today";
        int64_t now = data_now(ctx);
        const char *v;
        if ((v = arg(a, n, "now")) && parse_time_arg(r, "now", v, &now))
                return;
        int win;
        int64_t from, to;
        if (!strcmp(view, "today")) {
                win = DS_WIN_DAY;
                from = to = ds_api_day_start(now);
        } else if (!strcmp(view, "last_1h")) {
                win = DS_WIN_MINUTE;
                to = now / MIN_MS * MIN_MS;
                from = to - 59 * MIN_MS;
        } else if (!strcmp(view, "last_24h")) {
                win = DS_WIN_HOUR;
                to = now / HOUR_MS * HOUR_MS;
                from = to - 23 * HOUR_MS;
        } else {
                bad(r, "view", "view must be today, last_1h or last_24h, not \"%s\"", view);
                return;
        }
        ds_live_row_t *rows;
        int truncated;
        size_t cnt = ds_live_rows(ctx->live, dim, win, from, to, NULL, SIZE_MAX, &rows, &truncated);
        /* by key, so each key's rows are adjacent: one pass sums them (a
         * last-hour view of every heading is tens of thousands of rows) */
        if (cnt > 1)
                qsort(rows, cnt, sizeof(*rows), row_key_cmp);
        acc_t *acc = cnt ? calloc(cnt, sizeof(*acc)) : NULL;
        size_t na = 0;
        for (size_t i = 0; i < cnt && acc; i++) {
                if (!na || strcmp(acc[na - 1].key, rows[i].key))
                        snprintf(acc[na++].key, DS_LIVE_KEY_MAX, "%s", rows[i].key);
                size_t k = na - 1;
                for (int m = 0; m < DS_LIVE_MEASURES; m++)
                        acc[k].m[m] += rows[i].m[m];
                if (rows[i].updated_at > acc[k].updated_at)
                        acc[k].updated_at = rows[i].updated_at;
        }
        free(rows);
        if (na > 1)
                qsort(acc, na, sizeof(*acc), acc_cmp);
        json_t *j = json_object();
        json_object_set_new(j, "view", json_text(view));
        json_object_set_new(j, "dimension", json_text(dim == DS_DIM_GATE ? "gate" : "commodity"));
        json_object_set_new(j, "now", json_integer(now));
        json_object_set_new(j, "from", json_integer(from));
        json_object_set_new(j, "to", json_integer(to + win_ms[win]));
        json_t *arr = json_array();
        for (size_t i = 0; i < na; i++) {
                json_t *o = json_object();
                json_object_set_new(o, "key", json_text(acc[i].key));
                put_names(o, dim, acc[i].key);
                put_measures(o, acc[i].m);
                json_object_set_new(o, "updated_at", json_integer(acc[i].updated_at));
                json_array_append_new(arr, o);
        }
        free(acc);
        json_object_set_new(j, "rows", arr);
        json_body(r, 200, j);
}

static void series(const ds_api_ctx_t *ctx, const ds_api_arg_t *a, int n, ds_api_resp_t *r) {
        static const char *const allowed[] = {"window", "from", "to", "dimension", "key", NULL};
        int dim, win;
        if (check_params(r, a, n, allowed) || need_live(ctx, r) || parse_dim(r, arg(a, n, "dimension"), &dim) ||
            parse_win(r, arg(a, n, "window"), DS_WIN_MINUTE, 0, &win))
                return;
        const char *key = arg(a, n, "key");
        if (key && !arg(a, n, "dimension")) {
                bad(r, "key", "key needs a dimension (gate or commodity)%s", "");
                return;
        }
        int64_t now = data_now(ctx);
        int64_t size = win_ms[win];
        int64_t to = win == DS_WIN_DAY ? ds_api_day_start(now) : now / size * size;
        int64_t from = to - 59 * size;
        const char *v;
        if ((v = arg(a, n, "from")) && parse_time_arg(r, "from", v, &from))
                return;
        if ((v = arg(a, n, "to")) && parse_time_arg(r, "to", v, &to))
                return;
        if (from > to) {
                bad(r, "from", "from is after to%s", "");
                return;
        }
        if ((to - from) / size >= MAX_POINTS) {
                bad(r, "from", "the range holds more than 10000 windows; narrow it%s", "");
                return;
        }
        ds_live_row_t *rows;
        int truncated;
        size_t cnt = ds_live_rows(ctx->live, dim, win, from, to, key, SIZE_MAX, &rows, &truncated);
        /* rows are sorted by start: one point per start, summed over keys */
        json_t *j = json_object();
        json_object_set_new(j, "window", json_text(win_names[win]));
        json_object_set_new(j, "from", json_integer(from));
        json_object_set_new(j, "to", json_integer(to));
        if (arg(a, n, "dimension"))
                json_object_set_new(j, "dimension", json_text(dim == DS_DIM_GATE ? "gate" : "commodity"));
        if (key)
                json_object_set_new(j, "key", json_text(key));
        json_t *pts = json_array();
        for (size_t i = 0; i < cnt;) {
                int64_t m[DS_LIVE_MEASURES] = {0};
                int64_t t = rows[i].start;
                for (; i < cnt && rows[i].start == t; i++)
                        for (int k = 0; k < DS_LIVE_MEASURES; k++)
                                m[k] += rows[i].m[k];
                json_t *o = json_object();
                json_object_set_new(o, "t", json_integer(t));
                put_measures(o, m);
                json_array_append_new(pts, o);
        }
        free(rows);
        json_object_set_new(j, "points", pts);
        json_body(r, 200, j);
}

static void top(const ds_api_ctx_t *ctx, const ds_api_arg_t *a, int n, ds_api_resp_t *r) {
        static const char *const allowed[] = {"gate", "day", NULL};
        if (check_params(r, a, n, allowed) || need_live(ctx, r))
                return;
        const char *gate = arg(a, n, "gate");
        if (!gate || !*gate) {
                bad(r, "gate", "gate is required (a gate code, e.g. MONGCAI)%s", "");
                return;
        }
        if (ds_gate_lookup(gate, (uint32_t)strlen(gate)) < 0) {
                bad(r, "gate", "unknown gate \"%s\"", gate);
                return;
        }
        const char *d = arg(a, n, "day");
        int64_t day;
        if (!d || !strcmp(d, "today"))
                day = ds_api_day_start(data_now(ctx));
        else if (!strcmp(d, "latest"))
                day = INT64_MIN;
        else if (parse_time_arg(r, "day", d, &day))
                return;
        else
                day = ds_api_day_start(day);
        ds_live_top_t t;
        json_t *j = json_object();
        json_object_set_new(j, "gate", json_text(gate));
        put_names(j, DS_DIM_GATE, gate);
        json_t *arr = json_array();
        if (!ds_live_top(ctx->live, gate, day, &t)) {
                day = t.day;
                json_object_set_new(j, "updated_at", json_integer(t.updated_at));
                for (int i = 0; i < t.n; i++) {
                        json_t *o = json_object();
                        json_object_set_new(o, "rank", json_integer(t.h[i].rank));
                        json_object_set_new(o, "heading", json_text(t.h[i].heading));
                        const char *nm = heading_name(t.h[i].heading, 0), *en = heading_name(t.h[i].heading, 1);
                        if (nm)
                                json_object_set_new(o, "name", json_text(nm));
                        if (en)
                                json_object_set_new(o, "name_en", json_text(en));
                        json_object_set_new(o, "declarations", json_integer(t.h[i].declarations));
                        json_object_set_new(o, "items", json_integer(t.h[i].items));
                        json_object_set_new(o, "customs_value_usd_cents", json_integer(t.h[i].customs_value_usd_cents));
                        json_object_set_new(o, "gross_weight_g", json_integer(t.h[i].gross_weight_g));
                        json_array_append_new(arr, o);
                }
        }
        if (day != INT64_MIN)
                json_object_set_new(j, "day", json_integer(day));
        json_object_set_new(j, "headings", arr);
        json_body(r, 200, j);
}

int ds_api_answer(const ds_api_ctx_t *ctx, const char *path, const ds_api_arg_t *args, int nargs, ds_api_resp_t *out) {
        static const char *const none[] = {NULL};
        out->status = 500;
        out->content_type = "application/json";
        if (!strcmp(path, "/healthz")) {
                if (!check_params(out, args, nargs, none))
                        healthz(out);
        } else if (!strcmp(path, "/readyz")) {
                if (!check_params(out, args, nargs, none))
                        readyz(ctx, out);
        } else if (!strcmp(path, "/metrics")) {
                if (!check_params(out, args, nargs, none))
                        metrics(ctx, out);
        } else if (!strcmp(path, "/api/summary")) {
                if (!check_params(out, args, nargs, none)) {
                        ds_api_summary(ctx, &out->body);
                        ds_buf_put(&out->body, "\n", 1);
                        out->status = 200;
                }
        } else if (!strcmp(path, "/api/totals")) {
                totals(ctx, args, nargs, out);
        } else if (!strcmp(path, "/api/rolling")) {
                rolling(ctx, args, nargs, out);
        } else if (!strcmp(path, "/api/series")) {
                series(ctx, args, nargs, out);
        } else if (!strcmp(path, "/api/top")) {
                top(ctx, args, nargs, out);
        } else if (!strncmp(path, "/api/", 5) || !strcmp(path, "/api")) {
                json_t *j = json_object();
                json_object_set_new(j, "error", json_text("no such endpoint"));
                json_object_set_new(j, "endpoints",
                                    json_pack("[ssssssss]", "/api/summary", "/api/totals", "/api/rolling",
                                              "/api/series", "/api/top", "/api/stream", "/metrics", "/readyz"));
                json_body(out, 404, j);
        } else {
                return -1;
        }
        return 0;
}
