/*
 * ds_log.c - logfmt/JSON line logger.
 *
 * The JSON form is derived from the logfmt fields by a small tokenizer
 * (key=value, key="quoted value"), so call sites write fields once. All values
 * are emitted as JSON strings: log shippers treat them as text anyway, and it
 * keeps the conversion exact.
 */
#include "ds_log.h"
#include "ds_common.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static ds_log_level_t g_level = DS_LOG_INFO;
static ds_log_format_t g_fmt = DS_LOG_FMT_LOGFMT;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

int ds_err(char *errstr, size_t errstr_size, const char *fmt, ...) {
        if (errstr && errstr_size) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(errstr, errstr_size, fmt, ap);
                va_end(ap);
        }
        return -1;
}

void ds_log_setup(ds_log_level_t level, ds_log_format_t fmt) {
        g_level = level;
        g_fmt = fmt;
}

int ds_log_enabled(ds_log_level_t level) {
        return level >= g_level;
}

int ds_log_level_parse(const char *s) {
        for (int i = 0; i < 4; i++)
                if (!strcmp(s, level_names[i]))
                        return i;
        return -1;
}

int ds_log_format_parse(const char *s) {
        if (!strcmp(s, "logfmt"))
                return DS_LOG_FMT_LOGFMT;
        if (!strcmp(s, "json"))
                return DS_LOG_FMT_JSON;
        return -1;
}

const char *ds_log_quote(char *buf, size_t size, const char *s) {
        size_t o = 0;
        if (!size)
                return buf;
        for (; *s && o + 5 < size; s++) {
                unsigned char c = (unsigned char)*s;
                if (c == '"' || c == '\\') {
                        buf[o++] = '\\';
                        buf[o++] = (char)c;
                } else if (c < 0x20 || c == 0x7f) {
                        o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
                } else {
                        buf[o++] = (char)c;
                }
        }
        buf[o] = '\0';
        return buf;
}

/* Appends s as JSON string content (without quotes). */
static size_t json_put(char *out, size_t o, size_t size, const char *s, size_t n) {
        for (size_t i = 0; i < n && o + 7 < size; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c == '"' || c == '\\') {
                        out[o++] = '\\';
                        out[o++] = (char)c;
                } else if (c < 0x20) {
                        o += (size_t)snprintf(out + o, size - o, "\\u%04x", c);
                } else {
                        out[o++] = (char)c;
                }
        }
        return o;
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Converts logfmt fields (k=v k="v w") to ,"k":"v" pairs, o staying at most
 * size - 2. */
static size_t json_fields(char *out, size_t o, size_t size, const char *kv) {
        const char *p = kv;
        while (*p) {
                while (*p == ' ')
                        p++;
                if (!*p)
                        break;
                const char *k = p;
                while (*p && *p != '=' && *p != ' ')
                        p++;
                size_t klen = (size_t)(p - k);
                const char *v = p;
                size_t vlen = 0;
                char unq[1024];
                if (*p == '=') {
                        p++;
                        if (*p == '"') {
                                /* quoted: undo ds_log_quote() - \" \\ and \xNN -
                                 * into unq; json_put() escapes for JSON */
                                p++;
                                size_t u = 0;
                                while (*p && *p != '"' && u + 1 < sizeof(unq)) {
                                        if (*p == '\\' && p[1] == 'x' && hexval(p[2]) >= 0 && hexval(p[3]) >= 0) {
                                                unq[u++] = (char)(hexval(p[2]) << 4 | hexval(p[3]));
                                                p += 4;
                                                continue;
                                        }
                                        if (*p == '\\' && p[1])
                                                p++;
                                        unq[u++] = *p++;
                                }
                                if (*p == '"')
                                        p++;
                                v = unq;
                                vlen = u;
                        } else {
                                v = p;
                                while (*p && *p != ' ')
                                        p++;
                                vlen = (size_t)(p - v);
                        }
                }
                /* bounds: json_put(.., lim) leaves o <= lim - 2, so each
                 * field closes its quotes and o stays <= size - 2 */
                if (o + 8 >= size)
                        break;
                out[o++] = ',';
                out[o++] = '"';
                o = json_put(out, o, size - 4, k, klen);
                out[o++] = '"';
                out[o++] = ':';
                out[o++] = '"';
                o = json_put(out, o, size - 1, v, vlen);
                out[o++] = '"';
        }
        return o;
}

void ds_logv(ds_log_level_t level, const char *comp, const char *msg, const char *kvfmt, va_list ap) {
        if (level < g_level)
                return;
        char kv[2048];
        kv[0] = '\0';
        if (kvfmt && *kvfmt)
                vsnprintf(kv, sizeof(kv), kvfmt, ap);

        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        char tbuf[96];
        snprintf(tbuf, sizeof(tbuf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

        char line[4096];
        size_t o;
        if (g_fmt == DS_LOG_FMT_JSON) {
                /* lim keeps room for the closing "}\n"; json_put(.., n)
                 * leaves o <= n - 2 */
                const size_t lim = sizeof(line) - 2;
                o = (size_t)snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"comp\":\"", tbuf,
                                     level_names[level]);
                o = json_put(line, o, 512, comp, strlen(comp));
                o += (size_t)snprintf(line + o, sizeof(line) - o, "\",\"msg\":\"");
                o = json_put(line, o, lim - 1, msg, strlen(msg));
                line[o++] = '"';
                o = json_fields(line, o, lim, kv);
                line[o++] = '}';
        } else {
                char q[1024];
                o = (size_t)snprintf(line, sizeof(line), "ts=%s level=%s comp=%s msg=\"%s\"%s%s", tbuf,
                                     level_names[level], comp, ds_log_quote(q, sizeof(q), msg), *kv ? " " : "",
                                     kv);
                if (o > sizeof(line) - 2)
                        o = sizeof(line) - 2;
        }
        line[o++] = '\n';
        ssize_t w = write(STDERR_FILENO, line, o);
        (void)w;
}

void ds_log(ds_log_level_t level, const char *comp, const char *msg, const char *kvfmt, ...) {
        va_list ap;
        va_start(ap, kvfmt);
        ds_logv(level, comp, msg, kvfmt, ap);
        va_end(ap);
}
