/*
 * test_deploy.c - deploy/ agrees with the code.
 *
 * Docker and Kubernetes cannot run here, so the files are checked for what
 * can go wrong without running them:
 *   - every YAML and JSON file under deploy/ parses (python3 + PyYAML);
 *   - every properties file shipped (compose, systemd, the k8s ConfigMap) is
 *     accepted by `declstream run -c FILE --print-config`, which refuses
 *     unknown keys, and each value it sets is the effective one;
 *   - every DECLSTREAM_* variable of compose and k8s is a configuration key
 *     (ds_config_is_key) and is accepted and applied by --print-config;
 *   - compose's topics service creates exactly the code's default topics, and
 *     every properties file names those same topics;
 *   - the HTTP port of http.listen is the one published (compose ports,
 *     healthcheck, Prometheus scrape config; k8s containerPort, probes on
 *     /healthz and /readyz, Service, scrape annotations), bound on 0.0.0.0
 *     in containers; selectors, ConfigMap mount and -c path agree; every stop
 *     grace period exceeds shutdown.timeout.ms;
 *   - every metric the Grafana dashboard and the alert rules query exists in
 *     the /metrics of a running instance (or, for the transactions-mode
 *     histogram, in processor/ sources); the dashboard's datasource is the
 *     provisioned one;
 *   - the systemd unit has its hardening options, `systemd-analyze verify`
 *     accepts it and `systemd-analyze security --offline` rates it OK.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ds_common.h"
#include "ds_config.h"
#include "ds_testutil.h"

static char *dir;

static char *path(const char *name) {
        return ds_join(dir, name);
}

static char *src(const char *name) {
        return ds_join(DS_SOURCE_DIR, name);
}

static void setup(void) {
        dir = ds_tmpdir("ds-deploy");
        cr_assert_not_null(dir);
}

static void teardown(void) {
        ds_tmpdir_remove(dir);
        free(dir);
}

TestSuite(deploy, .init = setup, .fini = teardown);

/* Facts pulled out of deploy/ by python3 (PyYAML), as JSON. */
static const char facts_py[] =
    "import sys, os, re, glob, json, yaml\n"
    "root = sys.argv[1]\n"
    "F = {'parsed': [], 'errors': []}\n"
    "for dp, dn, fn in os.walk(root):\n"
    "    for f in sorted(fn):\n"
    "        p = os.path.join(dp, f)\n"
    "        try:\n"
    "            if f.endswith(('.yml', '.yaml')):\n"
    "                list(yaml.safe_load_all(open(p, encoding='utf-8')))\n"
    "            elif f.endswith('.json'):\n"
    "                json.load(open(p, encoding='utf-8'))\n"
    "            else:\n"
    "                continue\n"
    "            F['parsed'].append(os.path.relpath(p, root))\n"
    "        except Exception as e:\n"
    "            F['errors'].append('%s: %s' % (p, e))\n"
    "def y(p): return yaml.safe_load(open(os.path.join(root, p), encoding='utf-8'))\n"
    "c = y('compose/docker-compose.yml'); S = c['services']\n"
    "F['compose_topics'] = re.findall(r'^\\s*create\\s+(\\S+)', '\\n'.join(S['topics']['command']), re.M)\n"
    "d = S['declstream']\n"
    "F['compose_env'] = {k: str(v) for k, v in (d.get('environment') or {}).items()}\n"
    "F['compose_ports'] = [str(p) for p in d.get('ports', [])]\n"
    "F['compose_healthcheck'] = ' '.join(d['healthcheck']['test'])\n"
    "F['compose_command'] = d['command']\n"
    "F['compose_volumes'] = d.get('volumes', [])\n"
    "F['compose_stop_grace'] = str(d.get('stop_grace_period', '10s'))\n"
    "F['compose_gen_command'] = S['gen']['command']\n"
    "P = y('compose/prometheus.yml')\n"
    "sc = [s for s in P['scrape_configs'] if s['job_name'] == 'declstream'][0]\n"
    "F['prom_path'] = sc.get('metrics_path', '/metrics')\n"
    "F['prom_ports'] = [x['port'] for x in sc.get('dns_sd_configs', [])] + "
    "[int(t.rsplit(':', 1)[1]) for s in sc.get('static_configs', []) for t in s['targets']]\n"
    "F['prom_names'] = [n for x in sc.get('dns_sd_configs', []) for n in x['names']]\n"
    "F['prom_rule_files'] = P.get('rule_files', [])\n"
    "docs = {}\n"
    "for f in sorted(glob.glob(os.path.join(root, 'k8s', '*.yaml'))):\n"
    "    for x in yaml.safe_load_all(open(f, encoding='utf-8')):\n"
    "        if x: docs[x['kind']] = x\n"
    "cm = docs['ConfigMap']; dep = docs['Deployment']; pod = dep['spec']['template']\n"
    "ctr = pod['spec']['containers'][0]\n"
    "F['k8s_properties'] = cm['data']['declstream.properties']\n"
    "F['k8s_configmap_name'] = cm['metadata']['name']\n"
    "F['k8s_env'] = {e['name']: e.get('value', '') for e in ctr.get('env', [])}\n"
    "F['k8s_ports'] = {p['name']: p['containerPort'] for p in ctr['ports']}\n"
    "F['k8s_args'] = ctr['args']\n"
    "F['k8s_probes'] = {k: {'path': ctr[k]['httpGet']['path'], 'port': ctr[k]['httpGet']['port']} "
    "for k in ('livenessProbe', 'readinessProbe', 'startupProbe') if k in ctr}\n"
    "F['k8s_mounts'] = {m['name']: m['mountPath'] for m in ctr.get('volumeMounts', [])}\n"
    "F['k8s_config_volumes'] = {v['name']: v['configMap']['name'] for v in pod['spec']['volumes'] if 'configMap' in v}\n"
    "F['k8s_annotations'] = pod['metadata'].get('annotations', {})\n"
    "F['k8s_pod_labels'] = pod['metadata']['labels']\n"
    "F['k8s_selector'] = dep['spec']['selector']['matchLabels']\n"
    "F['k8s_service_ports'] = docs['Service']['spec']['ports']\n"
    "F['k8s_service_selector'] = docs['Service']['spec']['selector']\n"
    "F['k8s_pdb_selector'] = docs['PodDisruptionBudget']['spec']['selector']['matchLabels']\n"
    "F['k8s_grace'] = pod['spec'].get('terminationGracePeriodSeconds', 30)\n"
    "F['k8s_resources'] = ctr.get('resources', {})\n"
    "F['k8s_replicas'] = dep['spec'].get('replicas', 1)\n"
    "F['k8s_kinds'] = sorted(docs)\n"
    "k = y('k8s/kustomization.yaml')\n"
    "F['k8s_kustomize_missing'] = [r for r in k.get('resources', []) if not os.path.exists(os.path.join(root, 'k8s', r))]\n"
    "g = json.load(open(os.path.join(root, 'grafana', 'declstream.json'), encoding='utf-8'))\n"
    "exprs, uids = [], set()\n"
    "def walk(o):\n"
    "    if isinstance(o, dict):\n"
    "        for kk, v in o.items():\n"
    "            if kk in ('expr', 'query') and isinstance(v, str): exprs.append(v)\n"
    "            if kk == 'datasource' and isinstance(v, dict) and v.get('type') == 'prometheus': uids.add(v.get('uid'))\n"
    "            walk(v)\n"
    "    elif isinstance(o, list):\n"
    "        for v in o: walk(v)\n"
    "walk(g)\n"
    "F['grafana_exprs'] = len(exprs)\n"
    "F['grafana_metrics'] = sorted(set(re.findall(r'declstream_[a-zA-Z0-9_]+', ' '.join(exprs))))\n"
    "F['grafana_uids'] = sorted(u for u in uids if u)\n"
    "A = y('compose/alerts.yml')\n"
    "F['alert_metrics'] = sorted(set(re.findall(r'declstream_[a-zA-Z0-9_]+', "
    "' '.join(r['expr'] for gr in A['groups'] for r in gr['rules']))))\n"
    "F['provisioned_uids'] = [x['uid'] for x in y('compose/grafana/provisioning/datasources/prometheus.yml')['datasources']]\n"
    "json.dump(F, open(sys.argv[2], 'w'))\n";

static json_t *facts(void) {
        char *argv[] = {"/usr/bin/python3", "-c", (char *)facts_py, src("deploy"), path("facts.json"), NULL};
        int rc = ds_run(argv, NULL, path("facts.err"), 60000);
        char *err = ds_slurp(path("facts.err"), NULL);
        cr_assert_eq(rc, 0, "reading deploy/ with python3 + PyYAML failed: %s", err ? err : "");
        free(err);
        json_error_t e;
        json_t *f = json_load_file(path("facts.json"), 0, &e);
        cr_assert_not_null(f, "facts: %s", e.text);
        return f;
}

/* `declstream run [-c file] --print-config` as {key: value}; NULL if it failed. */
static json_t *print_config(const char *file, const char *label, int *rc_out) {
        char out[600], err[600];
        snprintf(out, sizeof(out), "%s/%s.out", dir, label);
        snprintf(err, sizeof(err), "%s/%s.err", dir, label);
        /* ds_proc_start sets DECLSTREAM_HTTP_LISTEN for every child (tests must
         * not share a port); the files' own http.listen is what is checked here */
        char *argv[] = {"env", "-u", "DECLSTREAM_HTTP_LISTEN", DS_BINARY, "run", "--print-config", NULL, NULL, NULL};
        if (file) {
                argv[5] = "-c";
                argv[6] = (char *)file;
                argv[7] = "--print-config";
        }
        int rc = ds_run(argv, out, err, 30000);
        *rc_out = rc;
        if (rc != 0) {
                char *e = ds_slurp(err, NULL);
                cr_log_error("declstream run %s%s --print-config: exit %d: %s", file ? "-c " : "", file ? file : "", rc,
                             e ? e : "");
                free(e);
                return NULL;
        }
        FILE *f = fopen(out, "r");
        cr_assert_not_null(f);
        json_t *o = json_object();
        char line[2048];
        while (fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\r\n")] = '\0';
                char *eq = strstr(line, " = ");
                if (!eq)
                        continue;
                *eq = '\0';
                json_object_set_new(o, line, json_string(eq + 3));
        }
        fclose(f);
        return o;
}

static char *trim(char *s) {
        while (*s == ' ' || *s == '\t')
                s++;
        size_t n = strlen(s);
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
                s[--n] = '\0';
        return s;
}

/* The key = value lines of a properties file. */
static json_t *read_properties(const char *file) {
        char *text = ds_slurp(file, NULL);
        cr_assert_not_null(text, "cannot read %s", file);
        json_t *o = json_object();
        for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n")) {
                l = trim(l);
                if (!*l || *l == '#' || *l == '!')
                        continue;
                char *eq = strchr(l, '=');
                cr_expect_not_null(eq, "%s: not key = value: %s", file, l);
                if (!eq)
                        continue;
                *eq = '\0';
                json_object_set_new(o, trim(l), json_string(trim(eq + 1)));
        }
        free(text);
        return o;
}

static int port_of(const char *listen) {
        const char *c = listen ? strrchr(listen, ':') : NULL;
        return c ? atoi(c + 1) : -1;
}

/* Checks one shipped properties file; returns its effective configuration. */
static json_t *check_properties(const char *file, const char *label, json_t *defaults) {
        int rc;
        json_t *eff = print_config(file, label, &rc);
        cr_assert_eq(rc, 0, "declstream run -c %s --print-config refuses the file (exit %d)", file, rc);
        json_t *props = read_properties(file);
        cr_expect_gt(json_object_size(props), 5, "%s sets almost nothing", file);
        const char *k;
        json_t *v;
        json_object_foreach(props, k, v) {
                cr_expect(ds_config_is_key(k) || !strncmp(k, "kafka.", 6), "%s: %s is not a configuration key", file, k);
                json_t *e = json_object_get(eff, k);
                if (e || strncmp(k, "kafka.", 6))
                        cr_expect(e && !strcmp(json_string_value(e), json_string_value(v)),
                                  "%s: %s = %s, but the effective value is %s", file, k, json_string_value(v),
                                  e ? json_string_value(e) : "(none)");
        }
        /* the topics are the code's defaults */
        json_object_foreach(defaults, k, v) {
                size_t n = strlen(k);
                if (n > 6 && !strcmp(k + n - 6, ".topic"))
                        cr_expect_str_eq(json_string_value(json_object_get(eff, k)), json_string_value(v),
                                         "%s: %s differs from the code's default", file, k);
        }
        json_decref(props);
        return eff;
}

/* Sets each NAME=value of env, runs --print-config with file, unsets them. */
static void check_env(json_t *env, const char *file, const char *where) {
        const char *name;
        json_t *v;
        json_object_foreach(env, name, v) {
                cr_expect(!strncmp(name, "DECLSTREAM_", 11), "%s: environment variable %s is not DECLSTREAM_*", where,
                          name);
                char key[256];
                snprintf(key, sizeof(key), "%s", name + 11);
                for (char *p = key; *p; p++)
                        *p = *p == '_' ? '.' : (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
                cr_expect(ds_config_is_key(key) || !strncmp(key, "kafka.", 6), "%s: %s is %s, not a configuration key",
                          where, name, key);
                const char *val = json_string_value(v);
                char dummy[64];
                if (!val || !*val) { /* k8s valueFrom (the pod name) */
                        snprintf(dummy, sizeof(dummy), "declstream-5d8c7-x2k9q");
                        val = dummy;
                }
                setenv(name, val, 1);
                int rc;
                json_t *eff = print_config(file, "env", &rc);
                unsetenv(name);
                cr_expect_eq(rc, 0, "%s: %s=%s is refused by declstream run", where, name, val);
                if (eff && ds_config_is_key(key))
                        cr_expect(json_object_get(eff, key) && !strcmp(json_string_value(json_object_get(eff, key)), val),
                                  "%s: %s=%s does not set %s", where, name, val, key);
                json_decref(eff);
        }
}

static long long seconds(const char *s) { /* "15s", "1m", "30" */
        char *end;
        double v = strtod(s, &end);
        if (*end == 'm' && end[1] != 's')
                v *= 60;
        else if (*end == 'm' && end[1] == 's')
                v /= 1000;
        return (long long)v;
}

Test(deploy, every_file_parses_and_compose_k8s_systemd_name_the_code_s_topics_keys_and_port) {
        json_t *f = facts();
        json_t *errs = json_object_get(f, "errors");
        size_t i;
        json_t *v;
        json_array_foreach(errs, i, v) cr_log_error("%s", json_string_value(v));
        cr_expect_eq(json_array_size(errs), 0, "%zu files under deploy/ do not parse", json_array_size(errs));
        cr_expect_geq(json_array_size(json_object_get(f, "parsed")), 11, "only %zu YAML/JSON files parsed",
                      json_array_size(json_object_get(f, "parsed")));

        int rc;
        json_t *defaults = print_config(NULL, "defaults", &rc);
        cr_assert_eq(rc, 0);

        /* --- compose --- */
        json_t *want_topics = json_array();
        const char *k;
        json_object_foreach(defaults, k, v) {
                size_t n = strlen(k);
                if (n > 6 && !strcmp(k + n - 6, ".topic"))
                        json_array_append(want_topics, v);
        }
        cr_expect_eq(json_array_size(want_topics), 7);
        json_t *ct = json_object_get(f, "compose_topics");
        cr_expect_eq(json_array_size(ct), json_array_size(want_topics), "compose creates %zu topics, the code uses %zu",
                     json_array_size(ct), json_array_size(want_topics));
        json_array_foreach(want_topics, i, v) {
                int found = 0;
                size_t j;
                json_t *c;
                json_array_foreach(ct, j, c) found |= json_equal(c, v);
                cr_expect(found, "compose's topics service does not create %s", json_string_value(v));
        }
        json_t *gen = json_object_get(f, "compose_gen_command");
        json_array_foreach(gen, i, v) if (!strcmp(json_string_value(v), "--topic")) cr_expect_str_eq(
            json_string_value(json_array_get(gen, i + 1)), json_string_value(json_object_get(defaults, "input.topic")),
            "compose's gen writes to another topic");

        json_t *ceff = check_properties(src("deploy/compose/declstream.properties"), "compose", defaults);
        const char *clisten = json_string_value(json_object_get(ceff, "http.listen"));
        int cport = port_of(clisten);
        cr_expect_gt(cport, 0);
        cr_expect(!strncmp(clisten, "0.0.0.0:", 8), "compose http.listen %s: not reachable from outside the container",
                  clisten);
        /* the file is mounted where the command reads it */
        json_t *cmd = json_object_get(f, "compose_command");
        const char *cfile = NULL;
        json_array_foreach(cmd, i, v) if (!strcmp(json_string_value(v), "-c")) cfile =
            json_string_value(json_array_get(cmd, i + 1));
        cr_expect_not_null(cfile, "compose's declstream command has no -c FILE");
        int mounted = 0;
        json_array_foreach(json_object_get(f, "compose_volumes"), i, v) {
                const char *m = json_string_value(v);
                mounted |= m && cfile && strstr(m, "declstream.properties:") && strstr(m, cfile);
        }
        cr_expect(mounted, "compose does not mount declstream.properties at %s", cfile ? cfile : "?");
        int published = 0;
        json_array_foreach(json_object_get(f, "compose_ports"), i, v) {
                const char *p = json_string_value(v);
                const char *c = strrchr(p, ':');
                published |= atoi(c ? c + 1 : p) == cport;
        }
        cr_expect(published, "compose does not publish the container's http.listen port %d", cport);
        char hc[64];
        snprintf(hc, sizeof(hc), ":%d/healthz", cport);
        cr_expect(strstr(json_string_value(json_object_get(f, "compose_healthcheck")), hc) != NULL,
                  "compose healthcheck does not probe %s", hc);
        json_array_foreach(json_object_get(f, "prom_ports"), i, v)
            cr_expect_eq(json_integer_value(v), cport, "Prometheus scrapes port %lld, http.listen is %d",
                         (long long)json_integer_value(v), cport);
        cr_expect_gt(json_array_size(json_object_get(f, "prom_ports")), 0, "Prometheus scrapes no declstream target");
        cr_expect_str_eq(json_string_value(json_object_get(f, "prom_path")), "/metrics");
        int named = 0;
        json_array_foreach(json_object_get(f, "prom_names"), i, v) named |= !strcmp(json_string_value(v), "declstream");
        cr_expect(named, "Prometheus does not resolve the compose service declstream");
        long long shutdown_s = atoll(json_string_value(json_object_get(ceff, "shutdown.timeout.ms"))) / 1000;
        cr_expect_gt(seconds(json_string_value(json_object_get(f, "compose_stop_grace"))), shutdown_s,
                     "compose stop_grace_period is not above shutdown.timeout.ms");
        check_env(json_object_get(f, "compose_env"), src("deploy/compose/declstream.properties"), "compose");

        /* --- k8s --- */
        FILE *pf = fopen(path("k8s.properties"), "w");
        cr_assert_not_null(pf);
        fputs(json_string_value(json_object_get(f, "k8s_properties")), pf);
        fclose(pf);
        json_t *keff = check_properties(path("k8s.properties"), "k8s", defaults);
        const char *klisten = json_string_value(json_object_get(keff, "http.listen"));
        int kport = port_of(klisten);
        cr_expect(!strncmp(klisten, "0.0.0.0:", 8), "k8s http.listen %s: not reachable from outside the pod", klisten);
        cr_expect_eq(kport, cport, "k8s and compose listen on different ports (%d, %d)", kport, cport);
        json_t *ports = json_object_get(f, "k8s_ports");
        cr_expect_eq(json_integer_value(json_object_get(ports, "http")), kport,
                     "the container port named http is %lld, http.listen says %d",
                     (long long)json_integer_value(json_object_get(ports, "http")), kport);
        json_t *probes = json_object_get(f, "k8s_probes");
        static const char *const probe_want[][2] = {
            {"livenessProbe", "/healthz"}, {"readinessProbe", "/readyz"}, {"startupProbe", "/healthz"}};
        for (int p = 0; p < 3; p++) {
                json_t *pr = json_object_get(probes, probe_want[p][0]);
                cr_expect_not_null(pr, "k8s has no %s", probe_want[p][0]);
                if (!pr)
                        continue;
                cr_expect_str_eq(json_string_value(json_object_get(pr, "path")), probe_want[p][1], "%s path",
                                 probe_want[p][0]);
                json_t *pp = json_object_get(pr, "port");
                cr_expect(json_is_string(pp) ? !strcmp(json_string_value(pp), "http") : json_integer_value(pp) == kport,
                          "%s does not probe the http port", probe_want[p][0]);
        }
        json_array_foreach(json_object_get(f, "k8s_service_ports"), i, v) {
                json_t *tp = json_object_get(v, "targetPort");
                cr_expect(json_is_string(tp) ? !strcmp(json_string_value(tp), "http") : json_integer_value(tp) == kport,
                          "the Service targets another port");
        }
        json_t *ann = json_object_get(f, "k8s_annotations");
        if (json_object_get(ann, "prometheus.io/port")) {
                cr_expect_eq(atoi(json_string_value(json_object_get(ann, "prometheus.io/port"))), kport);
                cr_expect_str_eq(json_string_value(json_object_get(ann, "prometheus.io/path")), "/metrics");
        }
        /* selectors select the pods; the ConfigMap is mounted where -c reads it */
        json_t *labels = json_object_get(f, "k8s_pod_labels");
        static const char *const sels[] = {"k8s_selector", "k8s_service_selector", "k8s_pdb_selector"};
        for (int s = 0; s < 3; s++) {
                json_object_foreach(json_object_get(f, sels[s]), k, v)
                    cr_expect(json_equal(json_object_get(labels, k), v), "%s %s does not match the pod labels", sels[s], k);
        }
        json_t *args = json_object_get(f, "k8s_args");
        const char *kfile = NULL;
        json_array_foreach(args, i, v) if (!strcmp(json_string_value(v), "-c")) kfile =
            json_string_value(json_array_get(args, i + 1));
        cr_expect(kfile && !strcmp(json_string_value(json_array_get(args, 0)), "run"), "k8s args do not run -c FILE");
        int mount_ok = 0;
        json_object_foreach(json_object_get(f, "k8s_config_volumes"), k, v) {
                const char *mp = json_string_value(json_object_get(json_object_get(f, "k8s_mounts"), k));
                char want[512];
                snprintf(want, sizeof(want), "%s/declstream.properties", mp ? mp : "?");
                mount_ok |= !strcmp(json_string_value(v), json_string_value(json_object_get(f, "k8s_configmap_name"))) &&
                            kfile && !strcmp(want, kfile);
        }
        cr_expect(mount_ok, "the ConfigMap is not mounted at %s", kfile ? kfile : "?");
        long long kshutdown = atoll(json_string_value(json_object_get(keff, "shutdown.timeout.ms"))) / 1000;
        cr_expect_gt(json_integer_value(json_object_get(f, "k8s_grace")), kshutdown,
                     "terminationGracePeriodSeconds is not above shutdown.timeout.ms");
        json_t *res = json_object_get(f, "k8s_resources");
        cr_expect(json_object_get(json_object_get(res, "requests"), "cpu") &&
                      json_object_get(json_object_get(res, "requests"), "memory"),
                  "k8s has no resource requests");
        cr_expect_gt(json_integer_value(json_object_get(f, "k8s_replicas")), 1, "one replica: no consumer group to share");
        cr_expect_eq(json_array_size(json_object_get(f, "k8s_kustomize_missing")), 0,
                     "kustomization.yaml lists missing files");
        json_t *kinds = json_object_get(f, "k8s_kinds");
        static const char *const want_kinds[] = {"ConfigMap", "Deployment", "PodDisruptionBudget", "Service", NULL};
        for (int w = 0; want_kinds[w]; w++) {
                int found = 0;
                json_array_foreach(kinds, i, v) found |= !strcmp(json_string_value(v), want_kinds[w]);
                cr_expect(found, "deploy/k8s has no %s", want_kinds[w]);
        }
        check_env(json_object_get(f, "k8s_env"), path("k8s.properties"), "k8s");

        /* --- systemd's properties --- */
        json_t *seff = check_properties(src("deploy/systemd/declstream.properties"), "systemd", defaults);
        cr_expect_gt(port_of(json_string_value(json_object_get(seff, "http.listen"))), 0);

        json_decref(ceff);
        json_decref(keff);
        json_decref(seff);
        json_decref(want_topics);
        json_decref(defaults);
        json_decref(f);
}

Test(deploy, the_systemd_unit_is_hardened_and_verifies) {
        char *unit = ds_slurp(src("deploy/systemd/declstream.service"), NULL);
        cr_assert_not_null(unit);
        static const char *const want[] = {"DynamicUser=yes",
                                           "ProtectSystem=strict",
                                           "ProtectHome=yes",
                                           "PrivateTmp=yes",
                                           "PrivateDevices=yes",
                                           "NoNewPrivileges=yes",
                                           "ProtectKernelTunables=yes",
                                           "ProtectKernelModules=yes",
                                           "ProtectControlGroups=yes",
                                           "RestrictSUIDSGID=yes",
                                           "MemoryDenyWriteExecute=yes",
                                           "LockPersonality=yes",
                                           "RestrictNamespaces=yes",
                                           "CapabilityBoundingSet=\n",
                                           "SystemCallFilter=@system-service",
                                           "RestrictAddressFamilies=",
                                           "KillSignal=SIGTERM",
                                           "RestartPreventExitStatus=2",
                                           "ExecStart=/usr/local/bin/declstream run -c /etc/declstream/declstream.properties",
                                           NULL};
        for (int i = 0; want[i]; i++)
                cr_expect(strstr(unit, want[i]) != NULL, "declstream.service lacks %s", want[i]);
        /* the stop timeout leaves room for shutdown.timeout.ms */
        int rc;
        json_t *eff = print_config(src("deploy/systemd/declstream.properties"), "systemd", &rc);
        cr_assert_eq(rc, 0);
        const char *ts = strstr(unit, "TimeoutStopSec=");
        cr_expect_not_null(ts, "no TimeoutStopSec");
        if (ts)
                cr_expect_gt(seconds(ts + strlen("TimeoutStopSec=")),
                             atoll(json_string_value(json_object_get(eff, "shutdown.timeout.ms"))) / 1000,
                             "TimeoutStopSec is not above shutdown.timeout.ms");
        json_decref(eff);

        if (access("/usr/bin/systemd-analyze", X_OK)) {
                free(unit);
                cr_skip_test("systemd-analyze is not installed: the unit's syntax is not verified");
        }
        /* verify needs ExecStart to exist: point it at the binary built here */
        char *copy = path("declstream.service");
        FILE *f = fopen(copy, "w");
        cr_assert_not_null(f);
        for (char *l = strtok(unit, "\n"); l; l = strtok(NULL, "\n")) {
                if (!strncmp(l, "ExecStart=/usr/local/bin/declstream", 35))
                        fprintf(f, "ExecStart=%s%s\n", DS_BINARY, l + 35);
                else
                        fprintf(f, "%s\n", l);
        }
        fclose(f);
        free(unit);
        char *verify[] = {"/usr/bin/systemd-analyze", "verify", copy, NULL};
        rc = ds_run(verify, path("verify.out"), path("verify.err"), 60000);
        char *err = ds_slurp(path("verify.err"), NULL);
        cr_expect_eq(rc, 0, "systemd-analyze verify: exit %d: %s", rc, err ? err : "");
        cr_expect(!err || !strstr(err, "Unknown key"), "systemd-analyze: %s", err);
        free(err);
        char *sec[] = {"/usr/bin/systemd-analyze", "security", "--offline=yes", "--no-pager", copy, NULL};
        rc = ds_run(sec, path("security.out"), path("security.err"), 60000);
        char *out = ds_slurp(path("security.out"), NULL);
        const char *lvl = out ? strstr(out, "Overall exposure level for declstream.service: ") : NULL;
        if (rc == 0 && lvl) {
                double score = strtod(lvl + strlen("Overall exposure level for declstream.service: "), NULL);
                cr_log_info("systemd-analyze security: exposure %.1f", score);
                cr_expect_lt(score, 3.0, "systemd-analyze security rates the unit %.1f (want below 3: OK)", score);
        } else {
                cr_log_warn("systemd-analyze security --offline did not run (exit %d): exposure not checked", rc);
        }
        free(out);
}

/* ---- Grafana and the alert rules query metrics a running instance exports ------------ */

static char *fetch_metrics(int port) {
        char url[128];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
        char *argv[] = {"curl", "-sS", "--max-time", "20", "-o", path("metrics.txt"), url, NULL};
        if (ds_run(argv, NULL, path("curl.err"), 30000))
                return NULL;
        return ds_slurp(path("metrics.txt"), NULL);
}

/* name is a family (# TYPE) or a sample name of the /metrics text. */
static int exported(const char *text, const char *name) {
        char pat[300];
        snprintf(pat, sizeof(pat), "# TYPE %s ", name);
        if (strstr(text, pat))
                return 1;
        size_t n = strlen(name);
        for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
                if (!strncmp(l, name, n) && (l[n] == '{' || l[n] == ' '))
                        return 1;
        return 0;
}

Test(deploy, grafana_and_alert_metrics_exist_in_a_running_instance_s_metrics, .timeout = 180) {
        json_t *f = facts();
        cr_expect_gt(json_integer_value(json_object_get(f, "grafana_exprs")), 10, "the dashboard has few queries");
        /* the dashboard's datasource is the provisioned one */
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(f, "grafana_uids"), i, v) {
                int ok = json_string_value(v)[0] == '$';
                size_t j;
                json_t *p;
                json_array_foreach(json_object_get(f, "provisioned_uids"), j, p) ok |= json_equal(p, v);
                cr_expect(ok, "the dashboard uses datasource uid %s, not provisioned", json_string_value(v));
        }

        ds_proc_t broker, run;
        char servers[256];
        cr_assert_eq(ds_broker_start(&broker, dir, 2, servers, sizeof(servers)), 0, "broker did not start");
        char *gen[] = {DS_BINARY, "gen", "-b", servers, "--count", "2000", "--bad-rate", "0.01", "-q", NULL};
        cr_assert_eq(ds_run(gen, NULL, path("gen.err"), 60000), 0);
        char *argv[] = {DS_BINARY, "run", "-b", servers, "--commit.interval.ms", "200", "-X", "statistics.interval.ms=1000",
                        "-X", "session.timeout.ms=6000", NULL};
        cr_assert_eq(ds_proc_start(&run, argv, NULL, path("run.err")), 0);
        int port = 0;
        char *text = NULL;
        int64_t end = ds_mono_ms() + 90000;
        while (ds_mono_ms() < end) {
                if (!port) {
                        char *s = ds_slurp(path("run.err"), NULL);
                        const char *m = s ? strstr(s, "http listening") : NULL;
                        const char *a = m ? strstr(m, "addr=127.0.0.1:") : NULL;
                        port = a ? atoi(a + strlen("addr=127.0.0.1:")) : 0;
                        free(s);
                }
                if (port) {
                        free(text);
                        text = fetch_metrics(port);
                        /* ready, restored, merged, and librdkafka's broker statistics in */
                        if (text && strstr(text, "\ndeclstream_ready 1") && strstr(text, "declstream_rdkafka_broker_") &&
                            strstr(text, "declstream_restore_duration_seconds_count 2"))
                                break;
                }
                if (ds_proc_wait(&run, 300) >= 0)
                        break;
        }
        ds_proc_kill(&run, SIGTERM);
        if (ds_proc_wait(&run, 20000) < 0)
                ds_proc_kill(&run, SIGKILL);
        ds_proc_kill(&broker, SIGTERM);
        if (ds_proc_wait(&broker, 5000) < 0)
                ds_proc_kill(&broker, SIGKILL);
        cr_assert(port > 0 && text, "no /metrics from the running instance (see %s)", path("run.err"));

        static const char *const lists[] = {"grafana_metrics", "alert_metrics"};
        for (int l = 0; l < 2; l++) {
                json_array_foreach(json_object_get(f, lists[l]), i, v) {
                        const char *name = json_string_value(v);
                        if (exported(text, name))
                                continue;
                        /* only in some modes (transactions): then the family is in the sources */
                        char fam[256];
                        snprintf(fam, sizeof(fam), "%s", name);
                        static const char *const suff[] = {"_bucket", "_sum", "_count"};
                        for (int s = 0; s < 3; s++) {
                                size_t n = strlen(fam), sl = strlen(suff[s]);
                                if (n > sl && !strcmp(fam + n - sl, suff[s]))
                                        fam[n - sl] = '\0';
                        }
                        char quoted[300];
                        snprintf(quoted, sizeof(quoted), "\"%s\"", fam);
                        char *grep[] = {"grep", "-rqF", "--include=*.c", quoted, src("processor"), NULL};
                        int rc = ds_run(grep, NULL, NULL, 30000);
                        cr_expect_eq(rc, 0, "%s queries %s: not in /metrics, nor in processor/*.c", lists[l], name);
                        if (!rc)
                                cr_log_info("%s: %s is not exported in this mode; processor/ defines %s", lists[l], name,
                                            fam);
                }
                cr_expect_gt(json_array_size(json_object_get(f, lists[l])), 3);
        }
        free(text);
        json_decref(f);
}
