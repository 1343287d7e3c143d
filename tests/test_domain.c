/*
 * test_domain.c - the compiled-in reference data (gates.defs, commodities.defs)
 * against the CSV files they are generated from, and gate interning.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ds_common.h"
#include "ds_domain.h"

#define DOMAIN DS_SOURCE_DIR "/processor/domain/"

#define MAX_ROWS 256
#define MAX_COLS 16

typedef struct csv {
        char *text;
        int nrows, ncols;
        char *cell[MAX_ROWS][MAX_COLS]; /* row 0 is the header */
} csv_t;

/* Header line, then comma-separated rows; no quoting. */
static void csv_load(csv_t *c, const char *path) {
        FILE *f = fopen(path, "r");
        cr_assert_not_null(f, "cannot open %s", path);
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        c->text = calloc(1, (size_t)n + 1);
        cr_assert_eq(fread(c->text, 1, (size_t)n, f), (size_t)n);
        fclose(f);
        c->nrows = 0;
        c->ncols = -1;
        char *save = NULL;
        for (char *line = strtok_r(c->text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                size_t l = strlen(line);
                if (l && line[l - 1] == '\r')
                        line[--l] = '\0';
                if (!l)
                        continue;
                cr_assert_lt(c->nrows, MAX_ROWS);
                cr_assert_null(strchr(line, '"'), "%s: quoted fields are not expected: %s", path, line);
                int col = 0;
                char *p = line;
                for (;;) {
                        cr_assert_lt(col, MAX_COLS);
                        c->cell[c->nrows][col++] = p;
                        char *comma = strchr(p, ',');
                        if (!comma)
                                break;
                        *comma = '\0';
                        p = comma + 1;
                }
                if (c->ncols < 0)
                        c->ncols = col;
                cr_assert_eq(col, c->ncols, "%s line %d has %d fields, the header %d", path, c->nrows + 1, col,
                             c->ncols);
                c->nrows++;
        }
}

static int col_of(const csv_t *c, const char *name) {
        for (int i = 0; i < c->ncols; i++)
                if (!strcmp(c->cell[0][i], name))
                        return i;
        cr_assert_fail("CSV has no column %s", name);
        return -1;
}

Test(domain, gates_defs_agree_with_gates_csv) {
        static csv_t c;
        csv_load(&c, DOMAIN "gates.csv");
        int code = col_of(&c, "gate_code"), name = col_of(&c, "name_vi"), prov = col_of(&c, "province"),
            kind = col_of(&c, "kind"), office = col_of(&c, "customs_office_prefix");
        cr_assert_eq(ds_gate_count(), c.nrows - 1, "gates.defs has %d gates, gates.csv %d", ds_gate_count(),
                     c.nrows - 1);
        for (int i = 1; i < c.nrows; i++) {
                const ds_gate_t *g = ds_gate(i - 1);
                cr_assert_not_null(g);
                cr_assert_str_eq(g->code, c.cell[i][code], "gate %d", i - 1);
                cr_assert_str_eq(g->name_vi, c.cell[i][name], "gate %s", g->code);
                cr_assert_str_eq(g->province, c.cell[i][prov], "gate %s", g->code);
                cr_assert_str_eq(g->kind, c.cell[i][kind], "gate %s", g->code);
                cr_assert_str_eq(g->office_prefix, c.cell[i][office], "gate %s", g->code);
        }
        cr_assert_null(ds_gate(-1));
        cr_assert_null(ds_gate(ds_gate_count()));
        free(c.text);
}

Test(domain, commodities_defs_agree_with_commodities_csv) {
        static csv_t c;
        csv_load(&c, DOMAIN "commodities.csv");
        int hs = col_of(&c, "hs_code"), vi = col_of(&c, "name_vi"), en = col_of(&c, "name_en"),
            flow = col_of(&c, "typical_flow"), unit = col_of(&c, "unit"), lo = col_of(&c, "typical_unit_value_usd_low"),
            hi = col_of(&c, "typical_unit_value_usd_high");
        cr_assert_eq(ds_commodity_count(), c.nrows - 1, "commodities.defs has %d rows, the CSV %d",
                     ds_commodity_count(), c.nrows - 1);
        for (int i = 1; i < c.nrows; i++) {
                const ds_commodity_t *m = ds_commodity(i - 1);
                cr_assert_not_null(m);
                cr_assert_str_eq(m->hs_code, c.cell[i][hs], "commodity %d", i - 1);
                cr_assert_eq(strlen(m->hs_code), 8, "%s is not 8 digits", m->hs_code);
                cr_assert_str_eq(m->name_vi, c.cell[i][vi], "commodity %s", m->hs_code);
                cr_assert_str_eq(m->name_en, c.cell[i][en], "commodity %s", m->hs_code);
                cr_assert_str_eq(ds_flow_name(m->typical_flow), c.cell[i][flow], "commodity %s", m->hs_code);
                cr_assert_str_eq(m->unit, c.cell[i][unit], "commodity %s", m->hs_code);
                cr_assert_eq(m->unit_value_low_usd, strtod(c.cell[i][lo], NULL), "commodity %s low", m->hs_code);
                cr_assert_eq(m->unit_value_high_usd, strtod(c.cell[i][hi], NULL), "commodity %s high", m->hs_code);
                cr_assert_leq(m->unit_value_low_usd, m->unit_value_high_usd, "commodity %s", m->hs_code);
        }
        cr_assert_null(ds_commodity(ds_commodity_count()));
        free(c.text);
}

Test(domain, gate_codes_are_unique_uppercase_and_short_enough_to_intern) {
        for (int i = 0; i < ds_gate_count(); i++) {
                const char *code = ds_gate(i)->code;
                cr_assert_gt(strlen(code), 0);
                cr_assert_leq(strlen(code), DS_GATE_CODE_MAX, "%s", code);
                for (const char *p = code; *p; p++)
                        cr_assert((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'), "%s", code);
                for (int j = 0; j < i; j++)
                        cr_assert_str_neq(code, ds_gate(j)->code);
        }
}

Test(domain, gate_lookup_finds_every_gate) {
        ds_domain_init();
        ds_domain_init(); /* idempotent */
        for (int i = 0; i < ds_gate_count(); i++) {
                const char *code = ds_gate(i)->code;
                cr_assert_eq(ds_gate_lookup(code, (uint32_t)strlen(code)), i, "%s", code);
                /* the code need not be NUL-terminated: it is a slice of a message */
                char buf[64];
                size_t n = strlen(code);
                memcpy(buf, code, n);
                memset(buf + n, 'Z', sizeof(buf) - n);
                cr_assert_eq(ds_gate_lookup(buf, (uint32_t)n), i, "%s followed by other bytes", code);
        }
}

Test(domain, gate_lookup_rejects_lowercase) {
        ds_domain_init();
        for (int i = 0; i < ds_gate_count(); i++) {
                char low[32];
                const char *code = ds_gate(i)->code;
                size_t n = strlen(code);
                for (size_t k = 0; k <= n; k++)
                        low[k] = (char)((code[k] >= 'A' && code[k] <= 'Z') ? code[k] + 32 : code[k]);
                cr_assert_eq(ds_gate_lookup(low, (uint32_t)n), -1, "%s", low);
        }
        cr_assert_eq(ds_gate_lookup("Mongcai", 7), -1);
}

Test(domain, gate_lookup_rejects_prefixes_and_longer_strings) {
        ds_domain_init();
        for (int i = 0; i < ds_gate_count(); i++) {
                const char *code = ds_gate(i)->code;
                uint32_t n = (uint32_t)strlen(code);
                for (uint32_t k = 1; k < n; k++) {
                        int r = ds_gate_lookup(code, k);
                        /* a prefix may only match if it is itself a gate code */
                        if (r >= 0)
                                cr_assert(strlen(ds_gate(r)->code) == k && !strncmp(ds_gate(r)->code, code, k),
                                          "prefix %.*s of %s found as %s", (int)k, code, code, ds_gate(r)->code);
                }
                char longer[40];
                snprintf(longer, sizeof(longer), "%sX", code);
                cr_assert_eq(ds_gate_lookup(longer, n + 1), -1, "%s", longer);
                snprintf(longer, sizeof(longer), "X%s", code);
                cr_assert_eq(ds_gate_lookup(longer, n + 1), -1, "%s", longer);
        }
        cr_assert_eq(ds_gate_lookup("BACLUAN", 7), -1);  /* BACLUAN2 */
        cr_assert_eq(ds_gate_lookup("MONGCA", 6), -1);
        cr_assert_eq(ds_gate_lookup("MOC134", 6), -1);
        cr_assert_eq(ds_gate_lookup("HUUNGHIQUAN", 11), -1);
}

Test(domain, gate_lookup_rejects_empty_and_seventeen_bytes_or_more) {
        ds_domain_init();
        cr_assert_eq(ds_gate_lookup("", 0), -1);
        cr_assert_eq(ds_gate_lookup("MONGCAI", 0), -1);
        cr_assert_eq(ds_gate_lookup("BACPHONGSINHXXXX", 16), -1); /* 16 bytes: allowed length, unknown */
        cr_assert_eq(ds_gate_lookup("BACPHONGSINHXXXXX", 17), -1);
        /* 17+ bytes must be rejected without reading them as a code (no overflow of
         * the 16-byte packing): a heap buffer of exactly the length */
        for (uint32_t len = 17; len < 300; len += 41) {
                char *p = malloc(len);
                memset(p, 'A', len);
                memcpy(p, "MONGCAI", 7);
                cr_assert_eq(ds_gate_lookup(p, len), -1, "%u bytes", len);
                free(p);
        }
        cr_assert_eq(ds_gate_lookup("MONGCAI", UINT32_MAX), -1);
}

Test(domain, names_of_enums) {
        cr_assert_str_eq(ds_flow_name(DS_FLOW_EXPORT), "EXPORT");
        cr_assert_str_eq(ds_flow_name(DS_FLOW_BORDER_RESIDENT), "BORDER_RESIDENT");
        cr_assert_str_eq(ds_flow_name(DS_FLOW__CNT), "?");
        cr_assert_str_eq(ds_kind_name(DS_KIND_CANCEL), "CANCEL");
        cr_assert_str_eq(ds_channel_name(DS_CHANNEL_RED), "RED");
        cr_assert_str_eq(ds_channel_name(DS_CHANNEL__CNT), "?");
}

/* ---- gates files (gates.file) ---------------------------------------------- */

static char gates_path[64];

static const char *gates_file(const char *text) {
        snprintf(gates_path, sizeof(gates_path), "/tmp/ds-test-gates-XXXXXX");
        int fd = mkstemp(gates_path);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
        return gates_path;
}

static int add_gates(const char *text, char *err, size_t size) {
        int n = ds_domain_add_gates_file(gates_file(text), err, size);
        unlink(gates_path);
        return n;
}

Test(domain, a_gates_file_adds_gates_after_the_compiled_in_ones) {
        ds_domain_init();
        int builtin = ds_gate_count();
        cr_assert_eq(builtin, ds_gate_builtin_count());
        uint64_t fp16 = ds_gates_fingerprint(builtin);
        char err[512] = "";
        /* columns in any order, unknown ones ignored, quotes, CRLF, a blank line, no final newline */
        int n = add_gates("source,weight,gate_code,name_vi,province,customs_office_prefix,kind\r\n"
                          "x,2.5,NAMGIANG,\"Lối mở Nà Giàng, Cao Bằng\",Cao Bằng,11,opening\r\n"
                          "\r\n"
                          "\"a \"\"quoted\"\" source\",,TRALINH,Trà Lĩnh,Cao Bằng,11,bilateral",
                          err, sizeof(err));
        cr_assert_eq(n, 2, "%s", err);
        cr_assert_eq(ds_gate_count(), builtin + 2);
        const ds_gate_t *g = ds_gate(builtin);
        cr_assert_str_eq(g->code, "NAMGIANG");
        cr_assert_str_eq(g->name_vi, "Lối mở Nà Giàng, Cao Bằng");
        cr_assert_str_eq(g->province, "Cao Bằng");
        cr_assert_str_eq(g->office_prefix, "11");
        cr_assert_str_eq(g->kind, "opening");
        cr_assert_float_eq(ds_gate_weight(builtin), 2.5, 1e-9);
        cr_assert_eq(ds_gate_weight(builtin + 1), -1); /* weight left empty */
        cr_assert_eq(ds_gate_weight(0), -1);           /* compiled in */
        cr_assert_eq(ds_gate_lookup("NAMGIANG", 8), builtin);
        cr_assert_eq(ds_gate_lookup("TRALINH", 7), builtin + 1);
        /* the compiled-in gates keep their numbers, and the list's fingerprint its prefix's */
        for (int i = 0; i < builtin; i++) {
                const char *code = ds_gate(i)->code;
                cr_assert_eq(ds_gate_lookup(code, (uint32_t)strlen(code)), i);
        }
        cr_assert_eq(ds_gates_fingerprint(builtin), fp16);
        cr_assert_neq(ds_gates_fingerprint(builtin + 2), fp16);
        /* a second file goes after the first */
        cr_assert_eq(add_gates("gate_code\nSOCGIANG\n", err, sizeof(err)), 1, "%s", err);
        cr_assert_eq(ds_gate_lookup("SOCGIANG", 8), builtin + 2);
        cr_assert_eq(ds_gate_lookup("NAMGIANG", 8), builtin);
        cr_assert_str_eq(ds_gate(builtin + 2)->name_vi, "SOCGIANG"); /* no name: the code */
        /* back to the compiled-in list */
        ds_domain_reset_gates();
        cr_assert_eq(ds_gate_count(), builtin);
        cr_assert_eq(ds_gate_lookup("NAMGIANG", 8), -1);
        cr_assert_eq(ds_gate_lookup("MONGCAI", 7), 0);
        cr_assert_eq(ds_gates_fingerprint(ds_gate_count()), fp16);
        cr_assert_eq(add_gates("gate_code\nSOCGIANG\n", err, sizeof(err)), 1, "%s", err);
        cr_assert_eq(ds_gate_lookup("SOCGIANG", 8), builtin);
}

Test(domain, a_gates_file_may_bring_thousands_of_gates) {
        ds_domain_init();
        size_t cap = 64 + 16 * 4000;
        char *text = malloc(cap), *p = text;
        p += sprintf(p, "gate_code\n");
        for (int i = 0; i < DS_GATE_MAX - ds_gate_builtin_count(); i++)
                p += sprintf(p, "G%04d\n", i);
        char err[512] = "";
        cr_assert_eq(add_gates(text, err, sizeof(err)), DS_GATE_MAX - ds_gate_builtin_count(), "%s", err);
        cr_assert_eq(ds_gate_count(), DS_GATE_MAX);
        for (int i = 0; i < DS_GATE_MAX - ds_gate_builtin_count(); i += 7) {
                char code[16];
                snprintf(code, sizeof(code), "G%04d", i);
                cr_assert_eq(ds_gate_lookup(code, 5), ds_gate_builtin_count() + i);
        }
        cr_assert_eq(ds_gate_lookup("MONGCAI", 7), 0);
        /* one more is too many */
        cr_assert_eq(add_gates("gate_code\nONEMORE\n", err, sizeof(err)), -1);
        cr_assert(strstr(err, "more than 4096 gates"), "%s", err);
        free(text);
}

Test(domain, a_bad_gates_file_names_the_line_and_adds_nothing) {
        ds_domain_init();
        int before = ds_gate_count();
        static const struct {
                const char *text, *want;
        } bad[] = {
            {"", "line 1: expected a header line"},
            {"code,name_vi\nX1,x\n", "line 1: the header has no gate_code column"},
            {"gate_code\nOK1\nmongcai\n", "line 3: gate_code \"mongcai\" is not 1 to 16 characters"},
            {"gate_code\nABCDEFGHIJKLMNOPQ\n", "line 2: gate_code \"ABCDEFGHIJKLMNOPQ\" is not"},
            {"gate_code\n\"\"\n", "line 2: gate_code \"\" is not"},
            {"gate_code\nMONGCAI\n", "line 2: gate MONGCAI is already known"},
            {"gate_code\nNEW1\nNEW2\nNEW1\n", "line 4: gate NEW1 is already listed earlier in the file"},
            {"gate_code,province\nNEW1,a,b\n", "line 2: 3 fields, the header has 2"},
            {"gate_code,weight\nNEW1,heavy\n", "line 2: weight \"heavy\" is not a number"},
            {"gate_code,weight\nNEW1,-1\n", "line 2: weight \"-1\" is not a number above 0"},
            {"gate_code,name_vi\nNEW1,\"open\n", "line 2: unterminated quote"},
            {"gate_code,name_vi\nNEW1,\"a\"b\n", "line 2: unterminated quote or more than 64 fields"},
            {"gate_code,customs_office_prefix\nNEW1,123456789\n", "customs_office_prefix \"123456789\" is longer"},
            /* Latin-1 (a spreadsheet's export), and a UTF-8 sequence cut short */
            {"gate_code,name_vi\nNEW1,M\xf3ng C\xe1i\n", "line 2: name_vi is not UTF-8 text"},
            {"gate_code,province\nNEW1,Qu\xe1\xba\n", "line 2: province is not UTF-8 text"},
        };
        for (size_t i = 0; i < DS_ARRAY_LEN(bad); i++) {
                char err[512] = "";
                cr_expect_eq(add_gates(bad[i].text, err, sizeof(err)), -1, "accepted: %s", bad[i].text);
                cr_expect(strstr(err, bad[i].want) && strstr(err, "/tmp/ds-test-gates-"), "%s: got \"%s\"",
                          bad[i].want, err);
                cr_expect_eq(ds_gate_count(), before, "%s: gates were added", bad[i].text);
                cr_expect_eq(ds_gate_lookup("NEW1", 4), -1);
                cr_expect_eq(ds_gate_lookup("OK1", 3), -1);
        }
        char err[512] = "";
        cr_expect_eq(ds_domain_add_gates_file("/nonexistent/gates.csv", err, sizeof(err)), -1);
        cr_expect(strstr(err, "cannot open /nonexistent/gates.csv: No such file or directory"), "%s", err);
        cr_expect_eq(ds_domain_add_gates_file("/tmp", err, sizeof(err)), -1, "a directory was read");
}
