/*
 * ds_cmd_args.c - small command-line helpers (no getopt: flags may repeat,
 * and config keys become long options).
 */
#include "ds_cmd.h"
#include "ds_domain.h"
#include "ds_config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ds_arg_value(ds_argv_t *a, const char *name, const char **value) {
        const char *arg = a->argv[a->i];
        size_t n = strlen(name);
        if (strncmp(arg, name, n))
                return 0;
        if (arg[n] == '=') {
                *value = arg + n + 1;
                a->i++;
                return 1;
        }
        if (arg[n])
                return 0;
        if (a->i + 1 >= a->argc) {
                fprintf(stderr, "declstream %s: %s needs a value\n", a->cmd, name);
                return -1;
        }
        *value = a->argv[a->i + 1];
        a->i += 2;
        return 1;
}

static int arg_int(const char *cmd, const char *flag, const char *v, int64_t min, int64_t max, int suffixes,
                   int64_t *out) {
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        /* counts take k/m suffixes: 200k, 1m (never a duration: "10m" is not ten minutes) */
        long long mul = 1;
        if (suffixes && !errno && end != v && (*end == 'k' || *end == 'K') && !end[1])
                mul = 1000, end++;
        else if (suffixes && !errno && end != v && (*end == 'm' || *end == 'M') && !end[1])
                mul = 1000000, end++;
        if (!errno && mul > 1 && __builtin_mul_overflow(x, mul, &x))
                errno = ERANGE;
        if (errno == ERANGE && end != v && !*end) {
                fprintf(stderr, "declstream %s: %s must be between %lld and %lld, got \"%s\"\n", cmd, flag,
                        (long long)min, (long long)max, v);
                return -1;
        }
        if (errno || end == v || *end) {
                fprintf(stderr, "declstream %s: %s must be an integer, got \"%s\"\n", cmd, flag, v);
                return -1;
        }
        if (x < min || x > max) {
                fprintf(stderr, "declstream %s: %s must be between %lld and %lld, got %lld\n", cmd, flag,
                        (long long)min, (long long)max, x);
                return -1;
        }
        *out = x;
        return 0;
}

int ds_arg_i64(const char *cmd, const char *flag, const char *v, int64_t min, int64_t max, int64_t *out) {
        return arg_int(cmd, flag, v, min, max, 0, out);
}

int ds_arg_count(const char *cmd, const char *flag, const char *v, int64_t min, int64_t max, int64_t *out) {
        return arg_int(cmd, flag, v, min, max, 1, out);
}

int ds_arg_double(const char *cmd, const char *flag, const char *v, double min, double max, double *out) {
        char *end;
        errno = 0;
        double x = strtod(v, &end);
        if (errno || end == v || *end || x != x) {
                fprintf(stderr, "declstream %s: %s must be a number, got \"%s\"\n", cmd, flag, v);
                return -1;
        }
        if (x < min || x > max) {
                fprintf(stderr, "declstream %s: %s must be between %g and %g, got %g\n", cmd, flag, min, max, x);
                return -1;
        }
        *out = x;
        return 0;
}

int ds_arg_gates_file(const char *cmd, const char *path) {
        char err[512];
        if (ds_domain_add_gates_file(path, err, sizeof(err)) >= 0)
                return 0;
        fprintf(stderr, "declstream %s: --gates-file: %s\n", cmd, err);
        return -1;
}

int ds_arg_prop(const char *cmd, const char *v, ds_kv_t *props, int *nprops, int max) {
        const char *eq = strchr(v, '=');
        if (!eq || eq == v) {
                fprintf(stderr, "declstream %s: -X expects property=value, got \"%s\"\n", cmd, v);
                return -1;
        }
        if (*nprops >= max) {
                fprintf(stderr, "declstream %s: too many -X flags (at most %d)\n", cmd, max);
                return -1;
        }
        char *key = strndup(v, (size_t)(eq - v));
        if (!key) {
                fprintf(stderr, "declstream %s: out of memory\n", cmd);
                return -1;
        }
        props[*nprops].key = key;
        props[(*nprops)++].value = (char *)eq + 1;
        return 0;
}
