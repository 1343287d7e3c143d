/*
 * ds_domain.c - gate and commodity tables, gate interning.
 */
#include "ds_domain.h"
#include "ds_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds_fingerprint.h"
#include "ds_schemas.h"  /* ds_read_file */
#include "ds_validate.h" /* ds_utf8_valid */

static const ds_gate_t gates[] = {
#define DS_GATE(code, name, prov, office, kind) {code, name, prov, office, kind},
#include "domain/gates.defs"
#undef DS_GATE
};

static const ds_commodity_t commodities[] = {
#define DS_COMMODITY(hs, vi, en, flow, unit, lo, hi) {hs, vi, en, flow, unit, lo, hi},
#include "domain/commodities.defs"
#undef DS_COMMODITY
};

/* The gate list: the compiled-in gates first, in gates.csv order, then the
 * gates a gates file adds (ds_domain_add_gates_file), in the file's order. A
 * gate's number is its place in the list; the state stores numbers, so a
 * list may only grow at its end (ds_gates_fingerprint() lets the changelog
 * check that). */
static ds_gate_t *glist = NULL; /* NULL: the compiled-in array alone */
static int gcount = (int)DS_ARRAY_LEN(gates);
static double *gweight; /* per added gate: its 'weight' column, -1 when absent */

typedef struct {
        uint64_t w0, w1; /* code packed little-endian, zero padded; w0 == 0: empty */
        int idx;
} slot_t;

static slot_t builtin_table[64];
static slot_t *table = builtin_table;
static uint32_t table_mask = 63; /* slots - 1: a power of two, more than twice the gates */
static int table_ready;

static inline void pack(const char *code, uint32_t len, uint64_t *w0, uint64_t *w1) {
        char buf[DS_GATE_CODE_MAX] = {0};
        memcpy(buf, code, len);
        memcpy(w0, buf, 8);
        memcpy(w1, buf + 8, 8);
}

static inline uint32_t slot_of(uint64_t w0, uint64_t w1) {
        return (uint32_t)ds_mix64(w0 ^ (w1 * 0x9e3779b97f4a7c15ULL));
}

static const ds_gate_t *gate_at(int i) {
        return glist ? &glist[i] : &gates[i];
}

static void build_table(slot_t *t, uint32_t mask) {
        memset(t, 0, (size_t)(mask + 1) * sizeof(slot_t));
        for (int i = 0; i < gcount; i++) {
                uint64_t w0, w1;
                const char *code = gate_at(i)->code;
                pack(code, (uint32_t)strlen(code), &w0, &w1);
                uint32_t s = slot_of(w0, w1) & mask;
                while (t[s].w0)
                        s = (s + 1) & mask;
                t[s] = (slot_t){w0, w1, i};
        }
}

static void fingerprint_all(void);

void ds_domain_init(void) {
        if (table_ready)
                return;
        _Static_assert(DS_ARRAY_LEN(gates) * 2 < DS_ARRAY_LEN(builtin_table), "gate table too small");
        build_table(table, table_mask);
        fingerprint_all();
        table_ready = 1;
}

int ds_gate_count(void) {
        return gcount;
}

int ds_gate_builtin_count(void) {
        return (int)DS_ARRAY_LEN(gates);
}

const ds_gate_t *ds_gate(int idx) {
        return idx >= 0 && idx < gcount ? gate_at(idx) : NULL;
}

double ds_gate_weight(int idx) {
        return idx >= (int)DS_ARRAY_LEN(gates) && idx < gcount ? gweight[idx - (int)DS_ARRAY_LEN(gates)] : -1;
}

int ds_gate_lookup(const char *code, uint32_t len) {
        if (DS_UNLIKELY(len == 0 || len > DS_GATE_CODE_MAX))
                return -1;
        uint64_t w0, w1;
        pack(code, len, &w0, &w1);
        for (uint32_t s = slot_of(w0, w1) & table_mask;; s = (s + 1) & table_mask) {
                if (!table[s].w0)
                        return -1;
                if (table[s].w0 == w0 && table[s].w1 == w1)
                        return table[s].idx;
        }
}

static uint64_t fp_all; /* ds_gates_fingerprint(gcount), once the table is built */
static int fp_all_n = -1;

uint64_t ds_gates_fingerprint(int n) {
        if (n == fp_all_n)
                return fp_all;
        uint64_t crc = ds_crc64_avro(NULL, 0);
        for (int i = 0; i < n && i < gcount; i++) {
                const char *code = gate_at(i)->code;
                /* each code and a newline, chained: CRC of "CODE1\nCODE2\n..." */
                char buf[DS_GATE_CODE_MAX + 1];
                size_t l = strlen(code);
                memcpy(buf, code, l);
                buf[l] = '\n';
                crc = ds_crc64_avro_update(crc, buf, l + 1);
        }
        return crc;
}

static void fingerprint_all(void) {
        fp_all_n = -1;
        fp_all = ds_gates_fingerprint(gcount);
        fp_all_n = gcount;
}

/* ---- gates files ---------------------------------------------------------- */

static void free_added(ds_gate_t *list, int from, int to) {
        for (int i = from; i < to; i++) {
                free((char *)list[i].code);
                free((char *)list[i].name_vi);
                free((char *)list[i].province);
                free((char *)list[i].office_prefix);
                free((char *)list[i].kind);
        }
}

void ds_domain_reset_gates(void) {
        if (glist)
                free_added(glist, (int)DS_ARRAY_LEN(gates), gcount);
        free(glist);
        glist = NULL;
        free(gweight);
        gweight = NULL;
        gcount = (int)DS_ARRAY_LEN(gates);
        if (table != builtin_table)
                free(table);
        table = builtin_table;
        table_mask = DS_ARRAY_LEN(builtin_table) - 1;
        build_table(table, table_mask);
        fingerprint_all();
        table_ready = 1;
}

/* One CSV record of s (quoted fields may hold commas, doubled quotes and
 * newlines): fields are NUL-terminated in place and pointed to by f[0..n).
 * Returns the position after the record, or NULL at the end of the text;
 * *nf = -1 on an unterminated quote or more than max fields. */
static char *csv_record(char *s, char **f, int max, int *nf) {
        if (!*s)
                return NULL;
        int n = 0;
        for (;;) {
                if (n == max) {
                        *nf = -1;
                        return s;
                }
                char *out = s;
                f[n++] = out;
                if (*s == '"') {
                        s++;
                        for (;;) {
                                if (!*s) {
                                        *nf = -1;
                                        return s;
                                }
                                if (*s == '"' && s[1] == '"') {
                                        *out++ = '"';
                                        s += 2;
                                } else if (*s == '"') {
                                        s++;
                                        break;
                                } else {
                                        *out++ = *s++;
                                }
                        }
                } else {
                        while (*s && *s != ',' && *s != '\n' && *s != '\r')
                                *out++ = *s++;
                }
                /* the field ends at s: past the terminator first (an unquoted
                 * field's NUL goes where the terminator was) */
                char c = *s;
                if (c == ',') {
                        *out = '\0';
                        s++;
                        continue;
                }
                if (c == '\r')
                        s++;
                if (*s == '\n')
                        s++;
                else if (c != '\r' && c != '\0') { /* text after a closing quote */
                        *nf = -1;
                        return s;
                }
                *out = '\0';
                *nf = n;
                return s;
        }
}

static int code_ok(const char *c) {
        size_t l = strlen(c);
        if (l == 0 || l > DS_GATE_CODE_MAX)
                return 0;
        for (; *c; c++)
                if (!((*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_'))
                        return 0;
        return 1;
}

#define FAIL(...)                                                   \
        do {                                                        \
                snprintf(errstr, errstr_size, __VA_ARGS__);         \
                goto fail;                                          \
        } while (0)

int ds_domain_add_gates_file(const char *path, char *errstr, size_t errstr_size) {
        enum { C_CODE, C_NAME, C_PROV, C_KIND, C_OFFICE, C_WEIGHT, C__N };
        static const char *const cname[C__N] = {"gate_code", "name_vi", "province", "kind", "customs_office_prefix",
                                                "weight"};
        ds_domain_init();
        char *text = NULL;
        ds_gate_t *nl = NULL;
        double *nw = NULL;
        slot_t *nt = NULL;
        int added = 0, total = gcount;
        size_t len;
        char rerr[512];
        if (!(text = ds_read_file(path, &len, rerr, sizeof(rerr))))
                FAIL("%s", rerr); /* names the file */
        if (len >= (64u << 20))
                FAIL("%s: larger than 64 MiB", path);
        if (memchr(text, '\0', len))
                FAIL("%s: holds a NUL byte (not a CSV text file)", path);

        char *fld[64];
        int nf, col[C__N];
        for (int c = 0; c < C__N; c++)
                col[c] = -1;
        char *p = csv_record(text, fld, 64, &nf);
        if (!p || nf < 0)
                FAIL("%s: line 1: expected a header line naming the columns (gate_code, and optionally name_vi, "
                     "province, kind, customs_office_prefix, weight)",
                     path);
        for (int i = 0; i < nf; i++)
                for (int c = 0; c < C__N; c++)
                        if (!strcmp(fld[i], cname[c]))
                                col[c] = i;
        if (col[C_CODE] < 0)
                FAIL("%s: line 1: the header has no gate_code column", path);
        int ncols = nf;
        /* room for the most gates there may be: no reallocation while gates
         * are added (a failure leaves the installed list untouched) */
        nl = calloc(DS_GATE_MAX, sizeof(*nl));
        nw = calloc(DS_GATE_MAX, sizeof(*nw));
        if (!nl || !nw)
                FAIL("%s: out of memory", path);
        for (int i = 0; i < gcount; i++)
                nl[i] = *gate_at(i);
        if (gweight)
                memcpy(nw, gweight, (size_t)(gcount - (int)DS_ARRAY_LEN(gates)) * sizeof(*nw));
        for (int line = 2;; line++) {
                int blank = *p == '\n' || *p == '\r';
                if (!(p = csv_record(p, fld, 64, &nf)))
                        break;
                if (nf < 0)
                        FAIL("%s: line %d: unterminated quote or more than 64 fields", path, line);
                if (blank)
                        continue;
                if (nf != ncols)
                        FAIL("%s: line %d: %d fields, the header has %d", path, line, nf, ncols);
                const char *code = fld[col[C_CODE]];
                if (!code_ok(code))
                        FAIL("%s: line %d: gate_code \"%.40s\" is not 1 to %d characters of A-Z, 0-9 and _", path,
                             line, code, DS_GATE_CODE_MAX);
                for (int i = 0; i < total; i++)
                        if (!strcmp(nl[i].code, code))
                                FAIL("%s: line %d: gate %s is already %s", path, line, code,
                                     i < gcount ? "known" : "listed earlier in the file");
                if (total == DS_GATE_MAX)
                        FAIL("%s: line %d: more than %d gates in all", path, line, DS_GATE_MAX);
                double w = -1;
                if (col[C_WEIGHT] >= 0 && fld[col[C_WEIGHT]][0]) {
                        char *end;
                        w = strtod(fld[col[C_WEIGHT]], &end);
                        if (*end || !(w > 0 && w <= 1e6))
                                FAIL("%s: line %d: weight \"%.40s\" is not a number above 0 and at most 1000000", path,
                                     line, fld[col[C_WEIGHT]]);
                }
                /* names are shown on the dashboard and in the API's JSON: text, not bytes */
                for (int k = C_NAME; k <= C_OFFICE; k++)
                        if (col[k] >= 0 && !ds_utf8_valid(fld[col[k]], strlen(fld[col[k]])))
                                FAIL("%s: line %d: %s is not UTF-8 text (save the file as UTF-8)", path, line,
                                     cname[k]);
                const char *office = col[C_OFFICE] >= 0 ? fld[col[C_OFFICE]] : "";
                if (strlen(office) > 8)
                        FAIL("%s: line %d: customs_office_prefix \"%.40s\" is longer than 8 characters", path, line,
                             office);
                ds_gate_t *g = &nl[total];
                g->code = strdup(code);
                g->name_vi = strdup(col[C_NAME] >= 0 ? fld[col[C_NAME]] : code);
                g->province = strdup(col[C_PROV] >= 0 ? fld[col[C_PROV]] : "");
                g->office_prefix = strdup(office);
                g->kind = strdup(col[C_KIND] >= 0 ? fld[col[C_KIND]] : "");
                if (!g->code || !g->name_vi || !g->province || !g->office_prefix || !g->kind)
                        FAIL("%s: out of memory", path);
                nw[total - (int)DS_ARRAY_LEN(gates)] = w;
                total++;
                added++;
        }
        uint32_t slots = 64;
        while (slots <= (uint32_t)total * 2)
                slots *= 2;
        nt = calloc(slots, sizeof(slot_t));
        if (!nt)
                FAIL("%s: out of memory", path);
        /* install: the old list's strings stay (gates may be pointed to) */
        free(glist);
        glist = nl;
        free(gweight);
        gweight = nw;
        gcount = total;
        build_table(nt, slots - 1);
        if (table != builtin_table)
                free(table);
        table = nt;
        table_mask = slots - 1;
        fingerprint_all();
        free(text);
        return added;
fail:
        if (nl)
                free_added(nl, gcount, total < DS_GATE_MAX ? total + 1 : total);
        free(nl);
        free(nw);
        free(nt);
        free(text);
        return -1;
}

int ds_commodity_count(void) {
        return (int)DS_ARRAY_LEN(commodities);
}

const ds_commodity_t *ds_commodity(int idx) {
        return idx >= 0 && idx < (int)DS_ARRAY_LEN(commodities) ? &commodities[idx] : NULL;
}

const char *ds_flow_name(ds_flow_t f) {
        static const char *const n[] = {"EXPORT", "IMPORT", "TRANSIT", "BORDER_RESIDENT"};
        return (unsigned)f < DS_FLOW__CNT ? n[f] : "?";
}

const char *ds_kind_name(ds_kind_t k) {
        static const char *const n[] = {"NEW", "AMEND", "CANCEL"};
        return (unsigned)k < DS_KIND__CNT ? n[k] : "?";
}

const char *ds_channel_name(ds_channel_t c) {
        static const char *const n[] = {"GREEN", "YELLOW", "RED"};
        return (unsigned)c < DS_CHANNEL__CNT ? n[c] : "?";
}
