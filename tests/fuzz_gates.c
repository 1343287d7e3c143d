/*
 * fuzz_gates.c - libFuzzer target: the gates-file reader (gates.file,
 * ds_domain_add_gates_file), a CSV parser with quoting.
 *
 * The input is the file (an in-memory file: memfd_create, read back through
 * /proc/self/fd/N). A file that is accepted must have added exactly the
 * gates it reports, each found by its code under its number, with codes of
 * A-Z, 0-9 and _ only; a refused one must have added nothing and said why.
 * The added gates are dropped after each input (ds_domain_reset_gates), so
 * ASan and LSan see every allocation of the reader.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ds_domain.h"

static int memfd = -1;
static char memfd_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void)argc;
        (void)argv;
        ds_domain_init();
        memfd = memfd_create("ds-fuzz-gates", 0);
        if (memfd < 0) {
                perror("memfd_create");
                abort();
        }
        snprintf(memfd_path, sizeof(memfd_path), "/proc/self/fd/%d", memfd);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (ftruncate(memfd, 0) || (size && pwrite(memfd, data, size, 0) != (ssize_t)size))
                abort();
        int builtin = ds_gate_builtin_count();
        char err[512];
        err[0] = '\0';
        int n = ds_domain_add_gates_file(memfd_path, err, sizeof(err));
        if (n < 0) {
                if (ds_gate_count() != builtin || !err[0] || !strstr(err, memfd_path))
                        abort(); /* refused: nothing added, and the error names the file */
                return 0;
        }
        if (ds_gate_count() != builtin + n)
                abort();
        for (int i = 0; i < ds_gate_count(); i++) {
                const ds_gate_t *g = ds_gate(i);
                size_t len = strlen(g->code);
                if (!len || len > DS_GATE_CODE_MAX || strspn(g->code, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != len)
                        abort();
                if (ds_gate_lookup(g->code, (uint32_t)len) != i)
                        abort();
                if (!g->name_vi || !g->province || !g->office_prefix || !g->kind)
                        abort();
        }
        if (ds_gates_fingerprint(builtin) != ds_gates_fingerprint(builtin) ||
            (n > 0 && ds_gates_fingerprint(builtin + n) == ds_gates_fingerprint(builtin)))
                abort();
        ds_domain_reset_gates();
        if (ds_gate_count() != builtin || ds_gate_lookup("MONGCAI", 7) != 0)
                abort();
        return 0;
}
