/*
 * test_dashboard.c - the live dashboard page in headless Chromium (Debian's
 * `chromium`), against a running pipeline on the embedded broker.
 *
 *   declstream broker -> declstream gen --count 20000 --truth -> declstream run
 *   -> (caught up: /api/totals equals the truth)
 *   -> chromium --headless --dump-dom http://127.0.0.1:PORT/
 *   -> chromium --headless --screenshot=tests/artifacts/dashboard.png
 *
 * The page's figures carry their raw API integers (app.js header: data-gate,
 * data-heading, data-view, data-field, data-value). Every gate and heading row
 * the page shows must equal /api/rolling (today and last_1h), which in turn
 * must equal the DAY rows of /api/totals and the generator's truth; the body
 * must reach data-state="live"; Vietnamese names must arrive as UTF-8 ("Móng
 * Cái"). The screenshot (1366x900, laptop size) is saved under tests/artifacts/
 * (gitignored) and checked: PNG signature, IHDR size, > 20 KB, and its pixel
 * data (inflated by python3's zlib) is not one flat colour.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ds_common.h"
#include "ds_testutil.h"

#ifdef DS_SANITIZED
#define SLOW 3
#else
#define SLOW 1
#endif

#define VN_OFFSET_MS (7 * 3600000LL)
#define DAY_MS 86400000LL

static char *dir;
static ds_proc_t broker, run;
static int run_started;
static char servers[256];
static int port;

static char *path(const char *name) {
        return ds_join(dir, name);
}

static void setup(void) {
        dir = ds_tmpdir("ds-dashboard");
        cr_assert_not_null(dir);
}

static void teardown(void) {
        if (run_started) {
                ds_proc_kill(&run, SIGTERM);
                if (ds_proc_wait(&run, 15000) < 0)
                        ds_proc_kill(&run, SIGKILL);
        }
        if (broker.pid > 0) {
                ds_proc_kill(&broker, SIGTERM);
                if (ds_proc_wait(&broker, 5000) < 0)
                        ds_proc_kill(&broker, SIGKILL);
        }
        ds_tmpdir_remove(dir);
        free(dir);
}

static const char *chromium_path(void) {
        static const char *const c[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser", NULL};
        for (int i = 0; c[i]; i++)
                if (access(c[i], X_OK) == 0)
                        return c[i];
        return NULL;
}

/* GET through curl; returns the parsed JSON object or fails the test. */
static json_t *get_json(const char *pq) {
        char url[1024], fmt[] = "%{http_code}";
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, pq);
        char *argv[] = {"curl", "-sS", "-g", "--max-time", "20", "-o", path("body"), "-w", fmt, url, NULL};
        int rc = ds_run(argv, path("code"), path("curl.err"), 30000);
        char *code = ds_slurp(path("code"), NULL);
        int status = rc == 0 && code ? atoi(code) : 0;
        free(code);
        cr_assert_eq(status, 200, "GET %s: status %d", pq, status);
        json_error_t e;
        json_t *j = json_load_file(path("body"), 0, &e);
        cr_assert(j && json_is_object(j), "GET %s: not JSON: %s", pq, e.text);
        return j;
}

static long long jint(json_t *o, const char *k) {
        return json_integer_value(json_object_get(o, k));
}

static int wait_port(const char *log, int timeout_ms) {
        int64_t end = ds_mono_ms() + timeout_ms;
        while (ds_mono_ms() < end) {
                char *s = ds_slurp(log, NULL);
                const char *m = s ? strstr(s, "http listening") : NULL;
                const char *a = m ? strstr(m, "addr=127.0.0.1:") : NULL;
                int pt = a ? atoi(a + strlen("addr=127.0.0.1:")) : 0;
                free(s);
                if (pt > 0)
                        return pt;
                if (ds_proc_wait(&run, 20) >= 0)
                        return -1;
        }
        return -1;
}

/* Until /api/summary says everything generated is consumed and published,
 * and the gate totals sum to the truth's. */
static void wait_caught_up(json_t *truth) {
        long long want = 0;
        const char *k;
        json_t *w;
        json_object_foreach(json_object_get(truth, "rows"), k, w) if (!strncmp(k, "GATE|", 5) && strstr(k, "|TOTAL|"))
            want += json_integer_value(json_array_get(w, 2));
        int64_t end = ds_mono_ms() + 120000 * SLOW;
        for (;;) {
                json_t *s = get_json("/api/summary");
                int ok = jint(s, "consumed") == jint(truth, "messages") && jint(s, "lag") == 0 &&
                         json_is_true(json_object_get(s, "ready")) &&
                         json_is_true(json_object_get(json_object_get(s, "published"), "caught_up"));
                long long consumed = jint(s, "consumed");
                json_decref(s);
                if (ok) {
                        json_t *t = get_json("/api/totals?dimension=gate&window=total");
                        long long got = 0;
                        size_t i;
                        json_t *r;
                        json_array_foreach(json_object_get(t, "rows"), i, r) got += jint(r, "customs_value_usd_cents");
                        json_decref(t);
                        if (got == want)
                                return;
                }
                cr_assert_lt(ds_mono_ms(), end, "not caught up: consumed %lld of %lld", consumed, jint(truth, "messages"));
                usleep(300000);
        }
}

/* Gates with a GATE DAY row on the truth's last day (the dashboard's "today"). */
static size_t truth_gates_on_last_day(json_t *truth) {
        long long last = LLONG_MIN;
        size_t n = 0;
        const char *k;
        json_t *w;
        for (int pass = 0; pass < 2; pass++)
                json_object_foreach(json_object_get(truth, "rows"), k, w) {
                        const char *day = strstr(k, "|DAY|");
                        if (strncmp(k, "GATE|", 5) || !day)
                                continue;
                        long long start = strtoll(day + 5, NULL, 10);
                        if (pass == 0 && start > last)
                                last = start;
                        else if (pass == 1 && start == last)
                                n++;
                }
        return n;
}

/* ---- the DOM Chromium dumped ----------------------------------------------------- */

/* The value of attribute name inside the tag starting at tag (up to '>'). */
static int attr(const char *tag, const char *name, char *out, size_t n) {
        const char *end = strchr(tag, '>');
        char pat[64];
        snprintf(pat, sizeof(pat), " %s=\"", name);
        const char *a = strstr(tag, pat);
        if (!a || (end && a > end))
                return -1;
        a += strlen(pat);
        const char *q = strchr(a, '"');
        if (!q)
                return -1;
        snprintf(out, n, "%.*s", (int)(q - a), a);
        return 0;
}

/* For every <tr ATTR="key"> row: its cells with data-view/data-field/data-value
 * as {key: {"today.declarations": 123, ...}}. */
static json_t *dom_rows(const char *dom, const char *row_attr) {
        json_t *out = json_object();
        char pat[64];
        snprintf(pat, sizeof(pat), "<tr %s=\"", row_attr);
        for (const char *tr = strstr(dom, pat); tr; tr = strstr(tr + 1, pat)) {
                char key[64];
                if (attr(tr, row_attr, key, sizeof(key)))
                        continue;
                const char *end = strstr(tr, "</tr>");
                if (!end)
                        break;
                json_t *cells = json_object();
                for (const char *c = strstr(tr, "data-view=\""); c && c < end; c = strstr(c + 1, "data-view=\"")) {
                        const char *tag = c;
                        while (tag > tr && *tag != '<')
                                tag--;
                        char view[32], field[64], value[32];
                        if (attr(tag, "data-view", view, sizeof(view)) || attr(tag, "data-field", field, sizeof(field)) ||
                            attr(tag, "data-value", value, sizeof(value)))
                                continue;
                        char k[128];
                        snprintf(k, sizeof(k), "%s.%s", view, field);
                        json_object_set_new(cells, k, json_integer(strtoll(value, NULL, 10)));
                }
                json_object_set_new(out, key, cells);
        }
        return out;
}

/* Compares the page's cells of each row with the /api/rolling rows of the
 * view; returns the number of differences and counts the cells compared. */
static int compare_view(json_t *page, json_t *rolling, const char *view, int *cells) {
        int diffs = 0;
        json_t *api = json_object();
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(rolling, "rows"), i, r)
            json_object_set(api, json_string_value(json_object_get(r, "key")), r);
        const char *key;
        json_t *pc;
        json_object_foreach(page, key, pc) {
                json_t *ar = json_object_get(api, key);
                const char *cell;
                json_t *v;
                json_object_foreach(pc, cell, v) {
                        size_t vl = strlen(view);
                        if (strncmp(cell, view, vl) || cell[vl] != '.')
                                continue;
                        long long want = ar ? jint(ar, cell + vl + 1) : 0;
                        (*cells)++;
                        if (json_integer_value(v) != want && diffs++ < 10)
                                cr_log_error("page %s %s = %lld, /api/rolling view=%s says %lld", key, cell,
                                             (long long)json_integer_value(v), view, want);
                }
        }
        /* every non-empty row of the API is on the page */
        json_object_foreach(api, key, pc) if (jint(pc, "declarations") != 0 && !json_object_get(page, key) &&
                                               diffs++ < 10) cr_log_error("%s (view=%s) is not on the page", key, view);
        json_decref(api);
        return diffs;
}

static int64_t day_start(int64_t t) {
        int64_t local = t + VN_OFFSET_MS;
        int64_t d = local / DAY_MS - (local % DAY_MS < 0);
        return d * DAY_MS - VN_OFFSET_MS;
}

static int run_chromium(const char *chrome, char *const *extra, const char *out, const char *err) {
        char url[128], profile[512];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
        /* own profile: other Chromiums on this machine must not share its lock */
        snprintf(profile, sizeof(profile), "--user-data-dir=%s", path("chrome-profile"));
        char *argv[32] = {(char *)chrome, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                          "--no-first-run", "--hide-scrollbars", "--lang=en-US", profile,
                          "--virtual-time-budget=10000"};
        int n = 10;
        for (; extra && *extra && n < 30; extra++)
                argv[n++] = *extra;
        argv[n++] = url;
        argv[n] = NULL;
        return ds_run(argv, out, err, 90000);
}

Test(dashboard, the_page_shows_the_api_figures_in_headless_chromium, .init = setup, .fini = teardown,
     .timeout = 300) {
        const char *chrome = chromium_path();
        if (!chrome)
                cr_skip_test("chromium is not installed (scripts/setup installs it: apt-get install chromium)");

        cr_assert_eq(ds_broker_start(&broker, dir, 4, servers, sizeof(servers)), 0, "broker did not start");
        /* a day of events ending at the last local noon (ds_gen_start_noon):
         * ending now, a run just after local midnight found 7 gates with
         * declarations today and 15 on the page (those of the last hour too) */
        char start[32];
        ds_gen_start_noon(start, sizeof(start));
        char *gen[] = {DS_BINARY, "gen", "-b", servers, "--count", "20000", "--bad-rate", "0.01", "--seed", "1123",
                       "--start-ms", start, "--truth", path("truth.json"), "-q", NULL};
        int rc = ds_run(gen, NULL, path("gen.err"), 120000 * SLOW);
        cr_assert_eq(rc, 0, "gen exited with %d", rc);
        json_error_t je;
        json_t *truth = json_load_file(path("truth.json"), 0, &je);
        cr_assert_not_null(truth, "truth: %s", je.text);

        char *argv[] = {DS_BINARY, "run", "-b", servers, "--commit.interval.ms", "200", "-X", "session.timeout.ms=6000",
                        NULL};
        cr_assert_eq(ds_proc_start(&run, argv, NULL, path("run.err")), 0);
        run_started = 1;
        port = wait_port(path("run.err"), 30000 * SLOW);
        cr_assert_gt(port, 0, "no \"http listening\" line in %s", path("run.err"));
        wait_caught_up(truth);

        /* --- the DOM after the page's first refreshes --- */
        char *dump[] = {"--dump-dom", NULL};
        int64_t t0 = ds_mono_ms();
        rc = run_chromium(chrome, dump, path("dom.html"), path("chrome.err"));
        cr_log_info("chromium --dump-dom: exit %d after %lld ms", rc, (long long)(ds_mono_ms() - t0));
        cr_assert_eq(rc, 0, "chromium --dump-dom exited with %d (see %s)", rc, path("chrome.err"));
        size_t dl;
        char *dom = ds_slurp(path("dom.html"), &dl);
        cr_assert(dom && dl > 1000, "chromium dumped %zu bytes", dom ? dl : 0);
        char state[32] = "";
        const char *body = strstr(dom, "<body");
        cr_assert_not_null(body, "no <body> in the DOM");
        attr(body, "data-state", state, sizeof(state));
        cr_expect_str_eq(state, "live", "body data-state=\"%s\", want live", state);
        /* Vietnamese names, UTF-8 end to end */
        cr_expect(strstr(dom, "M\xc3\xb3ng C\xc3\xa1i") != NULL, "\"M\xc3\xb3ng C\xc3\xa1i\" is not on the page");
        cr_expect(strstr(dom, "L\xe1\xba\xa1ng S\xc6\xa1n") != NULL, "\"L\xe1\xba\xa1ng S\xc6\xa1n\" is not on the page");
        cr_expect(strstr(dom, "\xef\xbf\xbd") == NULL, "the page holds U+FFFD replacement characters");
        cr_expect(strstr(dom, "\\u1") == NULL, "JSON escapes shown as text");

        /* --- the figures: the page equals /api/rolling, which equals /api/totals --- */
        json_t *gates = dom_rows(dom, "data-gate"), *headings = dom_rows(dom, "data-heading");
        /* "today" is the local (UTC+7) day of the latest event (noon, see
         * above). Every gate with declarations today must have its row. */
        size_t want_gates = truth_gates_on_last_day(truth);
        cr_expect_gt(want_gates, 0, "the truth has no GATE DAY rows");
        cr_expect_eq(json_object_size(gates), want_gates, "gate rows on the page: %zu, gates with declarations today: %zu",
                     json_object_size(gates), want_gates);
        cr_expect_gt(json_object_size(headings), 10, "heading rows on the page: %zu", json_object_size(headings));
        json_t *mc = json_object_get(gates, "MONGCAI");
        cr_assert_not_null(mc, "no MONGCAI row");
        cr_expect_not_null(json_object_get(mc, "today.declarations"));
        cr_expect_not_null(json_object_get(mc, "today.customs_value_usd_cents"));
        cr_expect_not_null(json_object_get(mc, "today.gross_weight_g"));
        cr_expect_not_null(json_object_get(mc, "today.export_value_usd_cents"), "no flow bar segments");
        cr_expect_not_null(json_object_get(mc, "last_1h.declarations"));

        const struct {
                const char *view, *dim;
                json_t **page;
        } views[] = {{"today", "gate", &gates},
                     {"last_1h", "gate", &gates},
                     {"today", "commodity", &headings},
                     {"last_1h", "commodity", &headings}};
        for (size_t v = 0; v < 4; v++) {
                char pq[128];
                snprintf(pq, sizeof(pq), "/api/rolling?view=%s&dimension=%s", views[v].view, views[v].dim);
                json_t *rolling = get_json(pq);
                int cells = 0;
                int d = compare_view(*views[v].page, rolling, views[v].view, &cells);
                cr_expect_eq(d, 0, "the page differs from %s in %d cells", pq, d);
                cr_expect_gt(cells, 10, "%s: %d cells compared", pq, cells);
                cr_log_info("%s: %d cells of the page equal the API", pq, cells);
                if (!strcmp(views[v].view, "today")) {
                        /* /api/rolling today = the DAY rows of /api/totals for the data's day */
                        int64_t day = day_start(jint(rolling, "now"));
                        snprintf(pq, sizeof(pq), "/api/totals?dimension=%s&window=day&from=%lld&to=%lld&limit=100000",
                                 views[v].dim, (long long)day, (long long)day);
                        json_t *tot = get_json(pq);
                        json_t *by = json_object();
                        size_t i;
                        json_t *r;
                        json_array_foreach(json_object_get(tot, "rows"), i, r)
                            json_object_set(by, json_string_value(json_object_get(r, "key")), r);
                        json_array_foreach(json_object_get(rolling, "rows"), i, r) {
                                const char *key = json_string_value(json_object_get(r, "key"));
                                json_t *t = json_object_get(by, key);
                                cr_expect_not_null(t, "%s: no DAY row in /api/totals", key);
                                if (t)
                                        cr_expect_eq(jint(r, "customs_value_usd_cents"),
                                                     jint(t, "customs_value_usd_cents"), "%s today", key);
                                /* and the truth */
                                char tk[128];
                                snprintf(tk, sizeof(tk), "%s|%s|DAY|%lld", !strcmp(views[v].dim, "gate") ? "GATE"
                                                                                                        : "COMMODITY",
                                         key, (long long)day);
                                json_t *want = json_object_get(json_object_get(truth, "rows"), tk);
                                cr_expect_eq(jint(r, "declarations"), json_integer_value(json_array_get(want, 0)),
                                             "%s: API %lld, truth %lld", tk, jint(r, "declarations"),
                                             (long long)json_integer_value(json_array_get(want, 0)));
                        }
                        json_decref(by);
                        json_decref(tot);
                }
                json_decref(rolling);
        }
        /* the key figures */
        json_t *today = get_json("/api/rolling?view=today&dimension=gate");
        long long sum = 0;
        {
                size_t i;
                json_t *r;
                json_array_foreach(json_object_get(today, "rows"), i, r) sum += jint(r, "declarations");
        }
        json_decref(today);
        const char *kpi = strstr(dom, "data-kpi=\"declarations_today\"");
        cr_assert_not_null(kpi, "no declarations_today KPI");
        while (kpi > dom && *kpi != '<')
                kpi--;
        char kv[32] = "";
        attr(kpi, "data-value", kv, sizeof(kv));
        cr_expect_eq(strtoll(kv, NULL, 10), sum, "KPI declarations today %s, API %lld", kv, sum);
        json_decref(gates);
        json_decref(headings);
        free(dom);

        /* --- the screenshot, laptop-sized --- */
        char shot[600], arg[700];
        snprintf(shot, sizeof(shot), "%s/tests/artifacts", DS_SOURCE_DIR);
        mkdir(shot, 0755);
        snprintf(shot, sizeof(shot), "%s/tests/artifacts/dashboard.png", DS_SOURCE_DIR);
        unlink(shot);
        snprintf(arg, sizeof(arg), "--screenshot=%s", shot);
        char *sargs[] = {arg, "--window-size=1366,900", NULL};
        rc = run_chromium(chrome, sargs, NULL, path("chrome-shot.err"));
        cr_assert_eq(rc, 0, "chromium --screenshot exited with %d (see %s)", rc, path("chrome-shot.err"));
        size_t pl;
        unsigned char *png = (unsigned char *)ds_slurp(shot, &pl);
        cr_assert_not_null(png, "no screenshot at %s", shot);
        cr_log_info("screenshot %s: %zu bytes", shot, pl);
        cr_expect_gt(pl, 20000, "screenshot of %zu bytes: an empty page?", pl);
        cr_assert_geq(pl, 33);
        cr_expect(!memcmp(png, "\x89PNG\r\n\x1a\n", 8), "not a PNG");
        cr_expect(!memcmp(png + 12, "IHDR", 4), "no IHDR chunk first");
        unsigned w = (unsigned)png[16] << 24 | (unsigned)png[17] << 16 | (unsigned)png[18] << 8 | png[19];
        unsigned h = (unsigned)png[20] << 24 | (unsigned)png[21] << 16 | (unsigned)png[22] << 8 | png[23];
        cr_expect(w == 1366 && h == 900, "screenshot is %ux%u, want 1366x900", w, h);
        free(png);
        /* not one flat colour: inflate the IDAT chunks (python3's zlib) and
         * count the distinct pixel values of the unfiltered scanlines */
        static const char py[] =
            "import sys, struct, zlib\n"
            "d = open(sys.argv[1], 'rb').read()\n"
            "p, idat, w, h, ct = 8, b'', 0, 0, 0\n"
            "while p < len(d):\n"
            "    n, t = struct.unpack('>I4s', d[p:p+8]); c = d[p+8:p+8+n]; p += 12 + n\n"
            "    if t == b'IHDR': w, h, bd, ct = struct.unpack('>IIBB', c[:10])\n"
            "    if t == b'IDAT': idat += c\n"
            "raw = zlib.decompress(idat)\n"
            "bpp = {2: 3, 6: 4, 0: 1, 4: 2}[ct]\n"
            "stride = w * bpp\n"
            "prev = bytearray(stride); colours = set()\n"
            "for y in range(h):\n"
            "    f = raw[y * (stride + 1)]; line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])\n"
            "    for i in range(stride):\n"
            "        a = line[i - bpp] if i >= bpp else 0; b = prev[i]; c = prev[i - bpp] if i >= bpp else 0\n"
            "        if f == 1: line[i] = (line[i] + a) & 255\n"
            "        elif f == 2: line[i] = (line[i] + b) & 255\n"
            "        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255\n"
            "        elif f == 4:\n"
            "            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)\n"
            "            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255\n"
            "    if y % 4 == 0:\n"
            "        for x in range(0, stride, bpp * 2): colours.add(bytes(line[x:x + bpp]))\n"
            "    prev = line\n"
            "print(len(colours))\n";
        char *pyargv[] = {"/usr/bin/python3", "-c", (char *)py, shot, NULL};
        rc = ds_run(pyargv, path("colours.txt"), path("colours.err"), 120000);
        char *cs = ds_slurp(path("colours.txt"), NULL);
        int colours = cs ? atoi(cs) : 0;
        free(cs);
        cr_expect_eq(rc, 0, "decoding the PNG with python3 failed (see %s)", path("colours.err"));
        cr_log_info("screenshot: %d distinct colours (sampled)", colours);
        cr_expect_gt(colours, 20, "the screenshot has %d colours: a blank page?", colours);

        json_decref(truth);
        ds_proc_kill(&run, SIGTERM);
        rc = ds_proc_wait(&run, 20000);
        cr_expect_eq(rc, 0, "run exited with %d after SIGTERM", rc);
}
