/*
 * bench/memory.c - memory per ledger entry, per aggregate row, per sketch.
 *
 *   bench_memory [--ledger-entries N] [--rows N] [--json]
 *
 * Builds the processor's own structures (dscore) at scale and reports what
 * they hold: the structure's own accounting (ds_ledger_memory,
 * ds_rows_memory, ds_hll_memory) and, as a cross-check, the growth of the
 * process's resident set (jemalloc, the processor's allocator, is linked).
 *   - ledger: N NEW declarations of 3 headings each (the generator's mean is
 *     ~3 items; lines are per distinct heading), distinct 12-digit ids, applied
 *     with ds_ledger_apply as a worker does;
 *   - rows: N distinct aggregate rows (ds_rows_get);
 *   - HLL sketch (distinct declarants/vehicles, 2 per GATE DAY row): empty,
 *     100 and 100,000 distinct values.
 * The ledger's hash table doubles at load 0.7, so bytes per entry step
 * between ~118 and ~170 with N: the 10-million figure is measured at 10 M
 * (./bench/run's full profile), or extrapolated linearly from a smaller N
 * (then said so).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ds_common.h"
#include "ds_decl.h"
#include "ds_hll.h"
#include "ds_ledger.h"
#include "ds_rows.h"

static size_t rss_bytes(void) {
        FILE *f = fopen("/proc/self/statm", "r");
        long pages = 0, res = 0;
        if (f) {
                if (fscanf(f, "%ld %ld", &pages, &res) != 2)
                        res = 0;
                fclose(f);
        }
        return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

int main(int argc, char **argv) {
        uint64_t n = 10000000, nrows = 1000000;
        int json = 0;
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--ledger-entries") && i + 1 < argc)
                        n = strtoull(argv[++i], NULL, 10);
                else if (!strcmp(argv[i], "--rows") && i + 1 < argc)
                        nrows = strtoull(argv[++i], NULL, 10);
                else if (!strcmp(argv[i], "--json"))
                        json = 1;
                else {
                        fprintf(stderr, "usage: bench_memory [--ledger-entries N] [--rows N] [--json]\n");
                        return 2;
                }
        }
        /* ---- ledger */
        size_t rss0 = rss_bytes();
        ds_ledger_t *l = ds_ledger_new(0);
        static ds_contrib_t c, old;
        memset(&c, 0, sizeof(c));
        c.kind = DS_KIND_NEW;
        c.nlines = 3;
        c.items = 3;
        c.value = 2000000;
        c.weight = 7000000;
        ds_ledger_effect_t eff = {0, 0, &old};
        int64_t t0 = ds_mono_ns();
        for (uint64_t i = 0; i < n; i++) {
                c.id = 100000000000ULL + i; /* distinct 12-digit ids */
                c.declared_at = 1700000000000LL + (int64_t)(i % 86400000);
                c.gate = (uint16_t)(i % 16);
                c.flow = (uint8_t)(i % 4);
                for (int k = 0; k < 3; k++) {
                        c.lines[k].heading = (uint32_t)((i * 31 + (uint64_t)k * 977) % 9900 + 100);
                        c.lines[k].items = 1;
                        c.lines[k].value = 600000;
                        c.lines[k].weight = 2000000;
                }
                if (ds_ledger_apply(l, &c, INT64_MIN, &eff) < 0) {
                        fprintf(stderr, "bench_memory: out of memory at %" PRIu64 " entries\n", i);
                        return 1;
                }
        }
        double ledger_s = (double)(ds_mono_ns() - t0) / 1e9;
        size_t lmem = ds_ledger_memory(l);
        size_t rss1 = rss_bytes();
        uint64_t cnt = ds_ledger_count(l);
        ds_ledger_destroy(l);

        /* ---- rows */
        size_t rss2 = rss_bytes();
        ds_rows_t *t = ds_rows_new(0);
        for (uint64_t i = 0; i < nrows; i++) {
                ds_row_t *r = ds_rows_get(t, ds_rowkey(DS_DIM_COMMODITY, DS_WIN_MINUTE, (uint32_t)(i % 10000),
                                                       (int64_t)(i / 10000) * 60000));
                if (!r)
                        return 1;
                r->m.declarations++;
        }
        size_t rmem = ds_rows_memory(t);
        size_t rss3 = rss_bytes();
        ds_rows_destroy(t);

        /* ---- sketches */
        size_t hll[3];
        uint64_t hn[3] = {0, 100, 100000};
        for (int k = 0; k < 3; k++) {
                ds_hll_t *h = ds_hll_new();
                for (uint64_t i = 0; i < hn[k]; i++)
                        ds_hll_add(&h, ds_mix64(i + 1));
                hll[k] = ds_hll_memory(h);
                ds_hll_destroy(h);
        }

        double per_entry = cnt ? (double)lmem / (double)cnt : 0;
        double per_entry_rss = cnt ? (double)(rss1 - rss0) / (double)cnt : 0;
        double b10m = cnt >= 10000000 ? (double)lmem * 10000000.0 / (double)cnt : per_entry * 1e7;
        double per_row = nrows ? (double)rmem / (double)nrows : 0;
        double per_row_rss = nrows ? (double)(rss3 - rss2) / (double)nrows : 0;
        if (json)
                printf("{\"ledger_entries\":%" PRIu64 ",\"ledger_bytes\":%zu,\"ledger_bytes_per_entry\":%.1f,"
                       "\"ledger_rss_bytes_per_entry\":%.1f,\"ledger_bytes_10m\":%.0f,\"ledger_10m_extrapolated\":%s,"
                       "\"ledger_insert_ns\":%.1f,\"rows\":%" PRIu64 ",\"row_bytes\":%.1f,\"row_rss_bytes\":%.1f,"
                       "\"hll_bytes_empty\":%zu,\"hll_bytes_100\":%zu,\"hll_bytes_100k\":%zu}\n",
                       cnt, lmem, per_entry, per_entry_rss, b10m, cnt >= 10000000 ? "false" : "true",
                       cnt ? ledger_s * 1e9 / (double)cnt : 0, nrows, per_row, per_row_rss, hll[0], hll[1], hll[2]);
        else
                printf("ledger: %" PRIu64 " entries, %.1f bytes each (RSS: %.1f), 10 M: %.2f GiB%s\n"
                       "rows: %" PRIu64 ", %.1f bytes each (RSS: %.1f)\n"
                       "HLL sketch: empty %zu B, 100 distinct %zu B, 100k distinct %zu B\n",
                       cnt, per_entry, per_entry_rss, b10m / (1 << 30), cnt >= 10000000 ? "" : " (extrapolated)",
                       nrows, per_row, per_row_rss, hll[0], hll[1], hll[2]);
        return 0;
}
