/*
 * ds_log.h - one line per event, logfmt (default) or JSON, on stderr.
 *
 * A record is a fixed message plus key=value fields:
 *
 *   ds_log(DS_LOG_INFO, "consumer", "partition assigned", "partition=%d offset=%lld", p, o);
 *
 * logfmt:  ts=2026-11-23T09:00:00.123Z level=info comp=consumer msg="partition assigned" partition=3 offset=0
 * json:    {"ts":"...","level":"info","comp":"consumer","msg":"partition assigned","partition":"3","offset":"0"}
 *
 * Field values with spaces must be quoted by the caller ("reason=\"%s\""), or
 * use ds_log_quote(). Each record is formatted into a stack buffer and written
 * with one write(2), so lines from different threads never interleave.
 *
 * @locality any thread.  @locks none (the level and format are set once at
 * start-up, before threads start).
 */
#ifndef DS_LOG_H
#define DS_LOG_H

#include <stdarg.h>
#include <stddef.h>

typedef enum { DS_LOG_DEBUG = 0, DS_LOG_INFO, DS_LOG_WARN, DS_LOG_ERROR } ds_log_level_t;
typedef enum { DS_LOG_FMT_LOGFMT = 0, DS_LOG_FMT_JSON } ds_log_format_t;

void ds_log_setup(ds_log_level_t level, ds_log_format_t fmt);
int ds_log_enabled(ds_log_level_t level);

/* Parses "debug|info|warn|error" / "logfmt|json"; -1 if unknown. */
int ds_log_level_parse(const char *s);
int ds_log_format_parse(const char *s);

void ds_log(ds_log_level_t level, const char *comp, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 4, 5)));
void ds_logv(ds_log_level_t level, const char *comp, const char *msg, const char *kvfmt, va_list ap);

/* Escapes s for use inside a double-quoted logfmt value (quotes and
 * backslashes escaped, control bytes as \xNN), into buf; returns buf. */
const char *ds_log_quote(char *buf, size_t size, const char *s);

#define DS_DEBUG(comp, msg, ...) \
        do { if (ds_log_enabled(DS_LOG_DEBUG)) ds_log(DS_LOG_DEBUG, comp, msg, __VA_ARGS__); } while (0)
#define DS_INFO(comp, msg, ...)  ds_log(DS_LOG_INFO, comp, msg, __VA_ARGS__)
#define DS_WARN(comp, msg, ...)  ds_log(DS_LOG_WARN, comp, msg, __VA_ARGS__)
#define DS_ERROR(comp, msg, ...) ds_log(DS_LOG_ERROR, comp, msg, __VA_ARGS__)

#endif
