/*
 * fuzz_config.c - libFuzzer target: the configuration parser.
 *
 * Byte 0 picks the path, the rest is the text:
 *   0: a properties file, through ds_config_load_file (an in-memory file:
 *      memfd_create, read back through /proc/self/fd/N);
 *   1: lines "key=value" through ds_config_set, one call per line;
 *   2: lines as environment entries through ds_config_load_env.
 * Every path ends with ds_config_dump (to /dev/null) and ds_config_free, so
 * whatever was stored is read back and freed: ASan and LSan see it all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ds_config.h"
#include "ds_log.h"

static int memfd = -1;
static char memfd_path[64];
static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void)argc;
        (void)argv;
        ds_log_setup(DS_LOG_ERROR, DS_LOG_FMT_LOGFMT);
        memfd = memfd_create("ds-fuzz-config", 0);
        if (memfd < 0) {
                perror("memfd_create");
                abort();
        }
        snprintf(memfd_path, sizeof(memfd_path), "/proc/self/fd/%d", memfd);
        devnull = fopen("/dev/null", "w");
        return 0;
}

/* Splits a copy of text into NUL-terminated lines (returns the count). */
static int split(char *text, char **lines, int max) {
        int n = 0;
        for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && n < max; l = strtok_r(NULL, "\n", &save))
                lines[n++] = l;
        return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1 || size > 65536)
                return 0;
        int mode = data[0] % 3;
        char *text = malloc(size);
        memcpy(text, data + 1, size - 1);
        text[size - 1] = '\0';
        ds_config_t c;
        char err[1024];
        ds_config_init(&c);
        if (mode == 0) {
                if (ftruncate(memfd, 0) || pwrite(memfd, data + 1, size - 1, 0) != (ssize_t)(size - 1))
                        abort();
                ds_config_load_file(&c, memfd_path, err, sizeof(err));
        } else {
                char *lines[256 + 1];
                int n = split(text, lines, 256);
                if (mode == 1) {
                        for (int i = 0; i < n; i++) {
                                char *eq = strchr(lines[i], '=');
                                if (!eq)
                                        continue;
                                *eq = '\0';
                                ds_config_set(&c, lines[i], eq + 1, "fuzz", err, sizeof(err));
                        }
                } else {
                        lines[n] = NULL;
                        ds_config_load_env(&c, lines, err, sizeof(err));
                }
        }
        ds_config_kafka_get(&c, "bootstrap.servers");
        ds_config_dump(&c, devnull);
        ds_config_free(&c);
        free(text);
        return 0;
}
