/*
 * ds_testutil.c - test helpers (see ds_testutil.h).
 */
#include "ds_common.h"
#include "ds_window.h"
#include "ds_testutil.h"

#include <avro.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *const ds_measure_names[8] = {"declarations",           "items",
                                         "customs_value_usd_cents", "gross_weight_g",
                                         "export_value_usd_cents", "import_value_usd_cents",
                                         "transit_value_usd_cents", "border_resident_value_usd_cents"};

int ds_proc_start(ds_proc_t *p, char *const argv[], const char *out_path, const char *err_path) {
        memset(p, 0, sizeof(*p));
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                /* die with the test process, even if it is killed or an assertion aborts it */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(127);
                int in = open("/dev/null", O_RDONLY);
                int out = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
                int err = open(err_path ? err_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
                if (in < 0 || out < 0 || err < 0)
                        _exit(127);
                dup2(in, 0);
                dup2(out, 1);
                dup2(err, 2);
                /* every test process gets its own HTTP port (the default,
                 * 127.0.0.1:8080, would collide between processes) */
                setenv("DECLSTREAM_HTTP_LISTEN", "127.0.0.1:0", 0);
                execvp(argv[0], argv);
                _exit(127);
        }
        p->pid = pid;
        return 0;
}

int ds_proc_wait(ds_proc_t *p, int timeout_ms) {
        if (p->exited)
                return p->status;
        int64_t deadline = ds_mono_ms() + timeout_ms;
        for (;;) {
                int st;
                pid_t r = waitpid(p->pid, &st, WNOHANG);
                if (r == p->pid) {
                        p->exited = 1;
                        p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                        return p->status;
                }
                if (r < 0 && errno != EINTR)
                        return -1;
                if (ds_mono_ms() >= deadline)
                        return -1;
                usleep(10000);
        }
}

void ds_proc_kill(ds_proc_t *p, int sig) {
        if (p->pid > 0 && !p->exited) {
                kill(p->pid, sig);
                if (sig == SIGKILL)
                        ds_proc_wait(p, 5000);
        }
}

uint64_t ds_test_rnd(uint64_t *state) {
        uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

char *ds_join(const char *dir, const char *name) {
        static _Thread_local char buf[32][512];
        static _Thread_local unsigned i;
        char *b = buf[i++ % 32];
        snprintf(b, sizeof(buf[0]), "%s/%s", dir, name);
        return b;
}

int ds_write_gates_file(const char *path, const char *header, int n, const char *first, const char *rest) {
        FILE *f = fopen(path, "w");
        if (!f)
                return -1;
        fprintf(f, "%s\n", header);
        for (int i = 1; i <= n; i++)
                fprintf(f, "XG%02d,%s\n", i, i == 1 && first ? first : rest);
        return fclose(f) ? -1 : 0;
}

char *ds_tmpdir(const char *prefix) {
        char tmpl[256];
        const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(tmpl, sizeof(tmpl), "%s/%s.XXXXXX", base, prefix);
        char *d = mkdtemp(tmpl);
        return d ? strdup(d) : NULL;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
        (void)sb;
        (void)flag;
        (void)ftw;
        return remove(path);
}

void ds_tmpdir_remove(const char *dir) {
        if (dir && !getenv("DS_KEEP_TMP"))
                nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *ds_slurp(const char *path, size_t *len) {
        FILE *f = fopen(path, "rb");
        if (!f)
                return NULL;
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
        }
        fclose(f);
        if (buf) {
                buf[n] = '\0';
                if (len)
                        *len = (size_t)n;
        }
        return buf;
}

int ds_broker_start(ds_proc_t *p, const char *dir, int partitions, char *servers, size_t size) {
        return ds_broker_start_ex(p, dir, partitions, 1, NULL, NULL, servers, size);
}

int ds_broker_control(const char *control, const char *fmt, ...) {
        FILE *f = fopen(control, "w");
        if (!f)
                return -1;
        va_list ap;
        va_start(ap, fmt);
        vfprintf(f, fmt, ap);
        va_end(ap);
        fputc('\n', f);
        return fclose(f);
}

int ds_broker_start_ex(ds_proc_t *p, const char *dir, int partitions, int brokers, const char *control,
                       const char *const *extra, char *servers, size_t size) {
        char bf[512], np[16], nb[16], out[512], err[512];
        snprintf(bf, sizeof(bf), "%s/bootstrap", dir);
        snprintf(out, sizeof(out), "%s/broker.out", dir);
        snprintf(err, sizeof(err), "%s/broker.err", dir);
        snprintf(np, sizeof(np), "%d", partitions);
        snprintf(nb, sizeof(nb), "%d", brokers);
        char *argv[32] = {DS_BINARY, "broker", "--partitions", np, "--brokers", nb, "--bootstrap-file", bf};
        int n = 8;
        if (control) {
                argv[n++] = "--control";
                argv[n++] = (char *)control;
        }
        for (; extra && *extra && n < 31; extra++)
                argv[n++] = (char *)*extra;
        argv[n] = NULL;
        if (ds_proc_start(p, argv, out, err))
                return -1;
        for (int i = 0; i < 1000; i++) {
                char *s = ds_slurp(bf, NULL);
                if (s) {
                        s[strcspn(s, "\n")] = '\0';
                        snprintf(servers, size, "%s", s);
                        free(s);
                        return 0;
                }
                if (ds_proc_wait(p, 10) >= 0)
                        return -1;
        }
        return -1;
}

int ds_run(char *const argv[], const char *out_path, const char *err_path, int timeout_ms) {
        ds_proc_t p;
        if (ds_proc_start(&p, argv, out_path, err_path))
                return -1;
        int rc = ds_proc_wait(&p, timeout_ms);
        if (rc < 0)
                ds_proc_kill(&p, SIGKILL);
        return rc;
}

/* Reads a decimal length terminated by ':' at *pp. */
static int read_len(const char **pp, const char *end, size_t *out) {
        const char *p = *pp;
        size_t v = 0;
        int digits = 0;
        int neg = 0;
        if (p < end && *p == '-') {
                neg = 1;
                p++;
        }
        while (p < end && *p >= '0' && *p <= '9') {
                v = v * 10 + (size_t)(*p++ - '0');
                digits++;
        }
        if (!digits || p >= end || *p != ':')
                return -1;
        *pp = p + 1;
        *out = neg ? 0 : v; /* kcat prints -1 for a null key or value */
        return 0;
}

int ds_kcat_parse(const char *path, ds_kmsg_t **out) {
        size_t len;
        char *buf = ds_slurp(path, &len);
        if (!buf)
                return -1;
        const char *p = buf, *end = buf + len;
        int n = 0, cap = 0;
        ds_kmsg_t *m = NULL;
        while (p < end) {
                size_t kl, vl;
                if (read_len(&p, end, &kl) || (size_t)(end - p) < kl)
                        goto fail;
                const char *k = p;
                p += kl;
                if (read_len(&p, end, &vl) || (size_t)(end - p) < vl)
                        goto fail;
                if (n == cap) {
                        cap = cap ? cap * 2 : 1024;
                        m = realloc(m, (size_t)cap * sizeof(*m));
                }
                m[n].key = strndup(k, kl);
                m[n].key_len = kl;
                m[n].value = malloc(vl ? vl : 1);
                memcpy(m[n].value, p, vl);
                m[n].value_len = vl;
                n++;
                p += vl;
        }
        free(buf);
        *out = m;
        return n;
fail:
        free(buf);
        ds_kcat_free(m, n);
        return -1;
}

void ds_kcat_free(ds_kmsg_t *m, int n) {
        for (int i = 0; i < n; i++) {
                free(m[i].key);
                free(m[i].value);
        }
        free(m);
}

int ds_total_decode(const char *schema_path, const uint8_t *value, size_t len, ds_total_row_t *out) {
        static avro_schema_t schema;
        static avro_value_iface_t *iface;
        if (!schema) {
                size_t sl;
                char *json = ds_slurp(schema_path, &sl);
                if (!json || avro_schema_from_json_length(json, sl, &schema)) {
                        free(json);
                        return -1;
                }
                free(json);
                iface = avro_generic_class_from_schema(schema);
        }
        if (len < 5 || value[0] != 0)
                return -1;
        avro_value_t v, f;
        avro_generic_value_new(iface, &v);
        avro_reader_t r = avro_reader_memory((const char *)value + 5, (int64_t)len - 5);
        int rc = avro_value_read(r, &v);
        avro_reader_free(r);
        if (rc) {
                avro_value_decref(&v);
                return -1;
        }
        const char *s;
        size_t sz;
        avro_value_get_by_name(&v, "dimension", &f, NULL);
        avro_value_get_enum(&f, &out->dimension);
        avro_value_get_by_name(&v, "key", &f, NULL);
        avro_value_get_string(&f, &s, &sz);
        snprintf(out->key, sizeof(out->key), "%s", s);
        avro_value_get_by_name(&v, "window", &f, NULL);
        avro_value_get_enum(&f, &out->window);
        avro_value_get_by_name(&v, "window_start", &f, NULL);
        avro_value_get_long(&f, &out->window_start);
        for (int i = 0; i < 8; i++) {
                avro_value_get_by_name(&v, ds_measure_names[i], &f, NULL);
                avro_value_get_long(&f, &out->measures[i]);
        }
        out->distinct_declarants = out->distinct_vehicles = 0;
        if (!avro_value_get_by_name(&v, "distinct_declarants", &f, NULL))
                avro_value_get_long(&f, &out->distinct_declarants);
        if (!avro_value_get_by_name(&v, "distinct_vehicles", &f, NULL))
                avro_value_get_long(&f, &out->distinct_vehicles);
        avro_value_get_by_name(&v, "updated_at", &f, NULL);
        avro_value_get_long(&f, &out->updated_at);
        avro_value_decref(&v);
        return 0;
}

int ds_top_decode(const char *schema_path, const uint8_t *value, size_t len, ds_top_list_t *out) {
        static avro_schema_t schema;
        static avro_value_iface_t *iface;
        if (!schema) {
                size_t sl;
                char *json = ds_slurp(schema_path, &sl);
                if (!json || avro_schema_from_json_length(json, sl, &schema)) {
                        free(json);
                        return -1;
                }
                free(json);
                iface = avro_generic_class_from_schema(schema);
        }
        if (len < 5 || value[0] != 0)
                return -1;
        avro_value_t v, f, arr, it;
        avro_generic_value_new(iface, &v);
        avro_reader_t r = avro_reader_memory((const char *)value + 5, (int64_t)len - 5);
        int rc = avro_value_read(r, &v);
        avro_reader_free(r);
        if (rc) {
                avro_value_decref(&v);
                return -1;
        }
        const char *s;
        size_t sz, n;
        memset(out, 0, sizeof(*out));
        avro_value_get_by_name(&v, "gate", &f, NULL);
        avro_value_get_string(&f, &s, &sz);
        snprintf(out->gate, sizeof(out->gate), "%s", s);
        avro_value_get_by_name(&v, "window_start", &f, NULL);
        avro_value_get_long(&f, &out->window_start);
        avro_value_get_by_name(&v, "headings", &arr, NULL);
        avro_value_get_size(&arr, &n);
        for (size_t i = 0; i < n && i < 16; i++) {
                avro_value_get_by_index(&arr, i, &it, NULL);
                avro_value_get_by_name(&it, "rank", &f, NULL);
                avro_value_get_int(&f, &out->e[i].rank);
                avro_value_get_by_name(&it, "heading", &f, NULL);
                avro_value_get_string(&f, &s, &sz);
                snprintf(out->e[i].heading, sizeof(out->e[i].heading), "%s", s);
                avro_value_get_by_name(&it, "customs_value_usd_cents", &f, NULL);
                avro_value_get_long(&f, &out->e[i].value);
                avro_value_get_by_name(&it, "declarations", &f, NULL);
                avro_value_get_long(&f, &out->e[i].declarations);
                avro_value_get_by_name(&it, "items", &f, NULL);
                avro_value_get_long(&f, &out->e[i].items);
                avro_value_get_by_name(&it, "gross_weight_g", &f, NULL);
                avro_value_get_long(&f, &out->e[i].weight);
                out->n++;
        }
        avro_value_decref(&v);
        return 0;
}

/* ---- comparing the output with a truth file -------------------------------- */

static int kcat_to(const char *servers, const char *topic, const char *format, const char *out, const char *err) {
        char *argv[] = {"kcat", "-b", (char *)servers, "-C", "-t", (char *)topic, "-o", "beginning", "-e", "-q",
                        "-f", (char *)format, NULL};
        return ds_run(argv, out, err, 180000);
}

int ds_topic_heads_lost(const char *servers, const char *dir, const char *topic) {
        char out[512], err[512];
        snprintf(out, sizeof(out), "%s/heads.%s.txt", dir, topic);
        snprintf(err, sizeof(err), "%s/heads.err", dir);
        if (kcat_to(servers, topic, "%p %o\n", out, err))
                return -1;
        FILE *f = fopen(out, "r");
        if (!f)
                return -1;
        long long first[4096];
        for (int i = 0; i < 4096; i++)
                first[i] = -1;
        int pp;
        long long o;
        while (fscanf(f, "%d %lld", &pp, &o) == 2)
                if (pp >= 0 && pp < 4096 && first[pp] < 0)
                        first[pp] = o;
        fclose(f);
        int lost = 0;
        for (int i = 0; i < 4096; i++)
                if (first[i] > 0) {
                        fprintf(stderr, "%s partition %d starts at offset %lld: its head was deleted\n", topic, i,
                                first[i]);
                        lost++;
                }
        return lost;
}

static json_t *latest_index(ds_kmsg_t *m, int n) {
        json_t *o = json_object();
        for (int i = 0; i < n; i++)
                json_object_set_new(o, m[i].key, json_integer(i));
        return o;
}

/* How far a HyperLogLog estimate (2^14 registers, ds_hll.c) of n distinct
 * values may be off. Within 3 %, and at small counts by what register
 * collisions explain: n values share registers C ~ Poisson(L = n^2 / 2^15)
 * times, each collision losing one value, and the estimator adds back L on
 * average; the bound is the C - L exceeded with probability below 1e-6 (at
 * least 2). At n = 88 a fixed 2 failed 0.16 % of sketches (simulated,
 * 200,000 of each size; a clean-clone CI run met one: 85 vehicles for 88);
 * this bound is 5 there. From ~570 values (L = 10) 3 % is the wider bound. */
void ds_gen_start_noon(char *buf, size_t n) {
        int64_t now = ds_now_ms(), noon = ds_window_start(DS_WIN_DAY, now) + DS_DAY_MS / 2;
        if (noon > now)
                noon -= DS_DAY_MS;
        snprintf(buf, n, "%lld", (long long)(noon - DS_DAY_MS));
}

long long ds_hll_tolerance(long long n) {
        long long pct = n * 3 / 100, tol = 2;
        double lam = (double)n * (double)n / 32768.0;
        if (lam < 10) {
                double p = exp(-lam), cdf = p;
                long long k = 0;
                while (1.0 - cdf >= 1e-6 && k < n) {
                        k++;
                        p *= lam / (double)k;
                        cdf += p;
                }
                if ((long long)ceil((double)k - lam) > tol)
                        tol = (long long)ceil((double)k - lam);
        }
        return pct > tol ? pct : tol;
}

int ds_check_against_truth(const char *servers, const char *dir, const char *truth_path, ds_truth_check_t *chk) {
        memset(chk, 0, sizeof(*chk));
        char totals[512], tops[512], err[512], schema[512], tschema[512];
        snprintf(totals, sizeof(totals), "%s/check.totals.bin", dir);
        snprintf(tops, sizeof(tops), "%s/check.top.bin", dir);
        snprintf(err, sizeof(err), "%s/check.kcat.err", dir);
        snprintf(schema, sizeof(schema), "%s/schemas/customs_total.avsc", DS_SOURCE_DIR);
        snprintf(tschema, sizeof(tschema), "%s/schemas/customs_top_headings.avsc", DS_SOURCE_DIR);
        if (kcat_to(servers, "customs.totals", "%K:%k%S:%s", totals, err) ||
            kcat_to(servers, "customs.top_headings", "%K:%k%S:%s", tops, err)) {
                fprintf(stderr, "kcat failed, see %s\n", err);
                return 1;
        }
        json_error_t jerr;
        json_t *truth = json_load_file(truth_path, 0, &jerr);
        if (!truth) {
                fprintf(stderr, "truth %s: %s\n", truth_path, jerr.text);
                return 1;
        }
        ds_kmsg_t *msgs = NULL, *tmsgs = NULL;
        int n = ds_kcat_parse(totals, &msgs), nt = ds_kcat_parse(tops, &tmsgs);
        int problems = 0;
        if (n < 0 || nt < 0) {
                fprintf(stderr, "cannot parse kcat output\n");
                json_decref(truth);
                return 1;
        }
        json_t *latest = latest_index(msgs, n), *tlatest = latest_index(tmsgs, nt);
        json_t *rows = json_object_get(truth, "rows");
        const char *k;
        json_t *want;
        json_object_foreach(rows, k, want) {
                int zero = 1;
                for (int f = 0; f < 8; f++)
                        zero &= json_integer_value(json_array_get(want, (size_t)f)) == 0;
                int gate_total = !strncmp(k, "GATE|", 5) && strstr(k, "|TOTAL|0") != NULL;
                if (gate_total)
                        chk->declarations_truth += json_integer_value(json_array_get(want, 0));
                json_t *idx = json_object_get(latest, k);
                if (!idx) {
                        if (!zero && chk->rows_missing++ < 10)
                                fprintf(stderr, "no row published for %s\n", k);
                        continue;
                }
                ds_total_row_t row;
                ds_kmsg_t *m = &msgs[json_integer_value(idx)];
                if (ds_total_decode(schema, m->value, m->value_len, &row)) {
                        fprintf(stderr, "%s does not decode\n", k);
                        chk->measure_diffs++;
                        continue;
                }
                if (gate_total)
                        chk->declarations_counted += row.measures[0];
                chk->rows_compared++;
                for (int f = 0; f < 8; f++) {
                        long long e = json_integer_value(json_array_get(want, (size_t)f));
                        if (row.measures[f] != e && chk->measure_diffs++ < 10)
                                fprintf(stderr, "%s %s: got %lld, truth %lld\n", k, ds_measure_names[f],
                                        (long long)row.measures[f], e);
                }
        }
        json_object_foreach(latest, k, want) if (!json_object_get(rows, k) && chk->unexpected_rows++ < 10)
                fprintf(stderr, "unexpected row %s\n", k);
        json_object_foreach(json_object_get(truth, "distinct"), k, want) {
                char gate[32], key[96];
                long long day;
                if (sscanf(k, "%31[^|]|DAY|%lld", gate, &day) != 2)
                        continue;
                snprintf(key, sizeof(key), "GATE|%s|DAY|%lld", gate, day);
                json_t *idx = json_object_get(latest, key);
                ds_total_row_t row;
                if (!idx || ds_total_decode(schema, msgs[json_integer_value(idx)].value,
                                            msgs[json_integer_value(idx)].value_len, &row)) {
                        chk->distinct_off++;
                        continue;
                }
                long long td = json_integer_value(json_array_get(want, 0)), tv = json_integer_value(json_array_get(want, 1));
                long long dtol = ds_hll_tolerance(td), vtol = ds_hll_tolerance(tv);
                if (llabs(row.distinct_declarants - td) > dtol || llabs(row.distinct_vehicles - tv) > vtol) {
                        if (chk->distinct_off++ < 5)
                                fprintf(stderr, "%s distinct %lld/%lld, truth %lld/%lld\n", key,
                                        (long long)row.distinct_declarants, (long long)row.distinct_vehicles, td, tv);
                }
        }
        json_object_foreach(json_object_get(truth, "top"), k, want) {
                json_t *idx = json_object_get(tlatest, k);
                ds_top_list_t got;
                if (!idx || ds_top_decode(tschema, tmsgs[json_integer_value(idx)].value,
                                          tmsgs[json_integer_value(idx)].value_len, &got) ||
                    (size_t)got.n != json_array_size(want)) {
                        if (chk->top_mismatches++ < 5)
                                fprintf(stderr, "top list %s missing or of another length\n", k);
                        continue;
                }
                for (int i = 0; i < got.n; i++) {
                        json_t *e = json_array_get(want, (size_t)i);
                        if (strcmp(got.e[i].heading, json_string_value(json_array_get(e, 0))) ||
                            got.e[i].value != json_integer_value(json_array_get(e, 1)) ||
                            got.e[i].declarations != json_integer_value(json_array_get(e, 2)) ||
                            got.e[i].items != json_integer_value(json_array_get(e, 3)) ||
                            got.e[i].weight != json_integer_value(json_array_get(e, 4))) {
                                if (chk->top_mismatches++ < 5)
                                        fprintf(stderr, "top list %s differs at rank %d\n", k, i + 1);
                                break;
                        }
                }
        }
        problems = chk->rows_missing + chk->measure_diffs + chk->unexpected_rows + chk->distinct_off +
                   chk->top_mismatches;
        json_decref(latest);
        json_decref(tlatest);
        json_decref(truth);
        ds_kcat_free(msgs, n);
        ds_kcat_free(tmsgs, nt);
        return problems;
}

long ds_proc_rss_kib(pid_t pid) {
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        FILE *f = fopen(path, "r");
        if (!f)
                return -1;
        long kib = -1;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
                        break;
        fclose(f);
        return kib;
}

/* A counter from the processor's last "summary" (or "progress") log line. */
long long ds_log_counter(const char *log, const char *msg, const char *name) {
        const char *line = NULL;
        char needle[64];
        if (!log)
                return -1;
        snprintf(needle, sizeof(needle), "msg=\"%s\"", msg);
        for (const char *p = strstr(log, needle); p; p = strstr(p + 1, needle))
                line = p;
        if (!line)
                return -1;
        const char *eol = strchr(line, '\n');
        char key[80];
        snprintf(key, sizeof(key), " %s=", name);
        const char *k = strstr(line, key);
        if (!k || (eol && k > eol))
                return 0; /* reasons that never happened are not printed */
        return atoll(k + strlen(key));
}
