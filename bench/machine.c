/*
 * bench_machine - what this machine's core and memory can do, so that the
 * hot path's figures can be read in cycles and cache lines (bench/HOTPATH.md,
 * fifteenth round).
 *
 *   bench_machine [--json] [--max-mb N]
 *
 * Core clock: a chain of dependent 64-bit adds (one cycle each on every
 * x86-64 and arm64 core of the last fifteen years), 64 to a loop iteration
 * so that the loop's own counter runs beside it. ns per add = 1 / clock. A VM exposes no
 * cycle counter to perf here, so this is how a cycle is known.
 *
 * Memory: a random cyclic permutation of cache lines in a buffer of F MiB
 * (huge pages asked for with madvise, as jemalloc's thp:always does for the
 * processor), then
 *   - one chain: every load's address is the previous load's value, so loads
 *     cannot overlap: the latency of a random load at that footprint;
 *   - 16 chains interleaved: sixteen independent loads in flight, the
 *     throughput a loop gets when it issues its misses together (as
 *     ds_rows_get_hashed() does for a declaration's ~21 rows).
 * Each is measured after one warm-up pass over the buffer. The footprints
 * bracket the caches a VM actually gets (its L3 is shared with other guests)
 * and the processor's tables (ledger and rows: tens to hundreds of MiB).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define LINE   64
#define CHAINS 16

static double now_s(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* ns per dependent add: best of 5 runs of 64 x iters adds. The empty asm
 * makes the compiler keep each sum in a register and add one at a time (it
 * cannot fold what it cannot see), with no instruction of its own. */
static double add_ns(void) {
        const long iters = 20000000;
        double best = 1e9;
        for (int run = 0; run < 5; run++) {
                uint64_t x = (uint64_t)run, one = 1;
                __asm__ volatile("" : "+r"(one)); /* not a constant: no folding into one add */
                double t0 = now_s();
                for (long i = 0; i < iters; i++) {
#pragma GCC unroll 64 /* 64 adds, no branch between them */
                        for (int k = 0; k < 64; k++) {
                                x += one;
                                __asm__ volatile("" : "+r"(x));
                        }
                }
                double t = (now_s() - t0) / ((double)iters * 64);
                if (x != (uint64_t)run + (uint64_t)iters * 64)
                        return -1; /* the compiler did not add what we counted */
                if (t < best)
                        best = t;
        }
        return best * 1e9;
}

/* xorshift64*, for the shuffle: rand() is too short for 2^22 lines. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void) {
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 2685821657736338717ULL;
}

static volatile size_t g_sink;

typedef struct probe {
        size_t mb;
        double chain_ns;  /* one dependent chain: latency */
        double chains_ns; /* CHAINS interleaved: ns per load */
        int huge;         /* madvise(MADV_HUGEPAGE) accepted (the kernel may still use small pages) */
} probe_t;

static int probe(size_t mb, probe_t *out) {
        const size_t huge = 2u << 20;
        size_t bytes = mb << 20, n = bytes / LINE;
        /* aligned_alloc wants a multiple of the alignment: 1 MiB takes 2 */
        uint64_t *a = aligned_alloc(huge, (bytes + huge - 1) / huge * huge);
        uint32_t *perm = malloc(n * sizeof(*perm));
        if (!a || !perm) {
                free(a);
                free(perm);
                return -1;
        }
        out->huge = madvise(a, (bytes + huge - 1) / huge * huge, MADV_HUGEPAGE) == 0;
        for (size_t i = 0; i < n; i++)
                perm[i] = (uint32_t)i;
        for (size_t i = n - 1; i > 0; i--) {
                size_t j = (size_t)(rng() % (i + 1));
                uint32_t t = perm[i];
                perm[i] = perm[j];
                perm[j] = t;
        }
        /* line perm[i] holds the index (in uint64_t) of line perm[i + 1]: one cycle through all lines */
        for (size_t i = 0; i < n; i++)
                a[(size_t)perm[i] * 8] = (uint64_t)perm[(i + 1) % n] * 8;
        size_t p = (size_t)perm[0] * 8;
        for (size_t i = 0; i < n; i++) /* warm-up: every line once */
                p = a[p];
        long loads = 2000000;
        double t0 = now_s();
        for (long i = 0; i < loads; i++)
                p = a[p];
        out->chain_ns = (now_s() - t0) / (double)loads * 1e9;
        size_t q[CHAINS];
        for (int k = 0; k < CHAINS; k++)
                q[k] = (size_t)perm[(n / CHAINS) * (size_t)k] * 8;
        long rounds = 8000000 / CHAINS;
        t0 = now_s();
        for (long i = 0; i < rounds; i++)
                for (int k = 0; k < CHAINS; k++)
                        q[k] = a[q[k]];
        out->chains_ns = (now_s() - t0) / ((double)rounds * CHAINS) * 1e9;
        for (int k = 0; k < CHAINS; k++)
                p += q[k];
        out->mb = mb;
        free(a);
        free(perm);
        g_sink += p; /* keeps the loads */
        return 0;
}

static void usage(FILE *f) {
        fprintf(f, "usage: bench_machine [--json] [--max-mb N]\n");
}

int main(int argc, char **argv) {
        int json = 0;
        size_t max_mb = 256;
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--json")) {
                        json = 1;
                } else if (!strcmp(argv[i], "--max-mb") && i + 1 < argc) {
                        max_mb = strtoul(argv[++i], NULL, 10);
                } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
                        usage(stdout);
                        return 0;
                } else {
                        fprintf(stderr, "bench_machine: unknown argument \"%s\"\n", argv[i]);
                        usage(stderr);
                        return 2;
                }
        }
        if (max_mb < 1 || max_mb > 4096) {
                fprintf(stderr, "bench_machine: --max-mb must be 1..4096\n");
                return 2;
        }
        double ns = add_ns();
        if (ns <= 0) {
                fprintf(stderr, "bench_machine: the chain of adds miscounted\n");
                return 1;
        }
        probe_t pr[16];
        int np = 0;
        for (size_t mb = 1; mb <= max_mb && np < 16; mb *= 2) {
                if (probe(mb, &pr[np])) {
                        fprintf(stderr, "bench_machine: out of memory at %zu MiB\n", mb);
                        return 1;
                }
                np++;
        }
        if (json) {
                printf("{\"add_ns\":%.4f,\"clock_ghz\":%.3f,\"chains\":%d,\"memory\":[", ns, 1.0 / ns, CHAINS);
                for (int i = 0; i < np; i++)
                        printf("%s{\"mb\":%zu,\"chain_ns\":%.1f,\"chains_ns\":%.2f,\"huge_pages_advised\":%s}",
                               i ? "," : "", pr[i].mb, pr[i].chain_ns, pr[i].chains_ns, pr[i].huge ? "true" : "false");
                printf("]}\n");
        } else {
                printf("core clock (dependent adds): %.2f GHz (%.3f ns a cycle)\n", 1.0 / ns, ns);
                printf("%10s %22s %28s\n", "footprint", "one chain, ns/load", "16 chains, ns/load");
                for (int i = 0; i < np; i++)
                        printf("%7zu MiB %22.1f %28.2f\n", pr[i].mb, pr[i].chain_ns, pr[i].chains_ns);
        }
        return 0;
}
