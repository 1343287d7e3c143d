/*
 * ds_fmt.h - keys and key texts without snprintf.
 *
 * Every row a cycle publishes gets two texts: the key text inside its Avro
 * value ("MONGCAI", "0801", "MONGCAI|0801") and its Kafka key
 * ("7|COMMODITY|0801|MINUTE|1735689600000"). With snprintf those were ~5 % of
 * a replay's CPU (perf: __vfprintf_internal, _IO_default_xsputn, _itoa_word,
 * __strchrnul) - format parsing and stdio plumbing for a few integers and
 * strings. ds_fmt_t appends them directly.
 *
 * Semantics are snprintf's: the text is cut to size - 1 bytes and
 * NUL-terminated (when size > 0), and ds_fmt_end() returns the length the
 * whole text has, so a caller can tell truncation. tests/test_fmt.c compares
 * every helper with snprintf.
 *
 * @locality caller-owned buffer, any thread.
 */
#ifndef DS_FMT_H
#define DS_FMT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct ds_fmt {
        char *p;
        size_t size; /* bytes at p, the NUL included */
        size_t len;  /* length of the whole text so far (may exceed size - 1) */
} ds_fmt_t;

static inline ds_fmt_t ds_fmt(char *buf, size_t size) {
        return (ds_fmt_t){buf, size, 0};
}

static inline void ds_fmt_mem(ds_fmt_t *f, const char *s, size_t n) {
        if (f->len + 1 < f->size) {
                size_t room = f->size - 1 - f->len;
                memcpy(f->p + f->len, s, n < room ? n : room);
        }
        f->len += n;
}

static inline void ds_fmt_str(ds_fmt_t *f, const char *s) {
        ds_fmt_mem(f, s, strlen(s));
}

static inline void ds_fmt_char(ds_fmt_t *f, char c) {
        ds_fmt_mem(f, &c, 1);
}

/* v in decimal, zero-padded to width digits ("%0*" PRIu64; width <= 20). */
static inline void ds_fmt_u64(ds_fmt_t *f, uint64_t v, int width) {
        char t[20];
        int n = 0;
        do {
                t[19 - n++] = (char)('0' + v % 10);
                v /= 10;
        } while (v);
        while (n < width && n < 20)
                t[19 - n++] = '0';
        ds_fmt_mem(f, t + 20 - n, (size_t)n);
}

/* v in decimal ("%" PRId64). */
static inline void ds_fmt_i64(ds_fmt_t *f, int64_t v) {
        if (v < 0) {
                ds_fmt_char(f, '-');
                ds_fmt_u64(f, 0 - (uint64_t)v, 0);
        } else {
                ds_fmt_u64(f, (uint64_t)v, 0);
        }
}

/* NUL-terminates (when size > 0); returns the whole text's length. */
static inline int ds_fmt_end(ds_fmt_t *f) {
        if (f->size)
                f->p[f->len < f->size ? f->len : f->size - 1] = '\0';
        return (int)f->len;
}

#endif
