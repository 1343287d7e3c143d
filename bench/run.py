#!/usr/bin/python3
"""declstream's benchmark driver (started by ./bench/run after setup and build).

Measures, prints a table, writes bench/results/<date>-<name>.json and
bench/results/<date>-<name>.png, and regenerates bench/RESULTS.md.
bench/README.md explains every benchmark, its method and its pitfalls.

Python standard library only; run it with /usr/bin/python3 (Debian's
python3-confluent-kafka and python3-avro, used by bench/baseline.py, import
only there).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DS = os.path.join(ROOT, "build", "declstream")
BENCHBIN = os.path.join(ROOT, "build", "bench")
RESULTS_DIR = os.path.join(ROOT, "bench", "results")
PY = "/usr/bin/python3"

# librdkafka 2.0.2 backs off a hard-coded 1 s when the prefetch queue passes
# queued.min.messages / queued.max.messages.kbytes (../shared/FACTS.md).
# declstream's own consumer defaults (processing 200,000 / 256 MiB, merge
# 500,000 / 256 MiB) already lift librdkafka's; the harness measures those
# defaults (bench/HOTPATH.md, "Seventh round").
# First join of a group takes ~3.1 s on the embedded broker; a group whose last
# member left waits session.timeout.ms - 1 s: fresh group ids and a short timeout.
RUN_PROPS = ["session.timeout.ms=6000"]

TARGETS = {
    "replay_1t": 4_000_000,
    "replay_scaling": 1.7,
    "catchup_vs_kcat": 1.0,
    "catchup_vs_python": 50.0,
    "dva_ns": 250.0,
    "p99_factor": 2.0,
    "ledger_10m_bytes": 2 * 1024 ** 3,
}

PROFILES = {
    "quick": dict(replay_n=100_000, replay_repeat=1, replay_runs=1,
                  catch_n=100_000, catch_p=48, catch_pairs=1, python_n=10_000,
                  rates=[10_000], lat_warmup=1, lat_duration=4, lat_runs=1,
                  scaling=False, scale_n=0, micro_iterations=None, callgrind=False,
                  memory_entries=1_000_000),
    # replay: 10 passes, so that a run spans several 1 s cycles and the final
    # cycle (after the workers' last message: their last flush, then main
    # encoding what changed since the cycle before) is a small part of it;
    # with 3 passes it was up to 38 % of a two-thread run (bench/HOTPATH.md,
    # fifteenth round)
    "full": dict(replay_n=500_000, replay_repeat=10, replay_runs=5,
                 catch_n=1_000_000, catch_p=192, catch_pairs=3, python_n=100_000,
                 rates=[10_000, 100_000, 500_000], lat_warmup=3, lat_duration=15, lat_runs=3,
                 scaling=True, scale_n=200_000, micro_iterations=None, callgrind=True,
                 memory_entries=10_000_000),
}


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def has_flag(cmd, flag):
    r = sh([DS] + cmd + ["--help"])
    return r.returncode == 0 and flag in (r.stdout + r.stderr)


# ---------------------------------------------------------------------------
# processes

class Proc:
    """A child process we started; stopped by its own pid only."""
    live = []

    def __init__(self, argv, log_path, stdout=None):
        self.log_path = log_path
        self.logf = open(log_path, "w")
        self.p = subprocess.Popen(argv, stdout=stdout if stdout is not None else self.logf,
                                  stderr=self.logf, start_new_session=True)
        Proc.live.append(self)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.p.poll() is None:
            try:
                self.p.send_signal(sig)
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.logf.close()
        if self in Proc.live:
            Proc.live.remove(self)
        return self.p.returncode

    @classmethod
    def stop_all(cls):
        for p in list(cls.live):
            p.stop(timeout=10)


class Broker:
    def __init__(self, workdir, partitions, label):
        self.proc = Proc([DS, "broker", "--partitions", str(partitions)],
                         os.path.join(workdir, "broker-%s.log" % label), stdout=subprocess.PIPE)
        self.partitions = partitions
        deadline = time.time() + 60
        line = b""
        os.set_blocking(self.proc.p.stdout.fileno(), False)
        while time.time() < deadline and not line.endswith(b"\n"):
            if self.proc.p.poll() is not None:
                raise RuntimeError("broker exited: see " + self.proc.log_path)
            try:
                chunk = self.proc.p.stdout.read()
            except BlockingIOError:
                chunk = None
            if chunk:
                line += chunk
            else:
                time.sleep(0.05)
        self.bootstrap = line.decode().split("\n")[0].strip()
        if not self.bootstrap:
            raise RuntimeError("broker printed no bootstrap servers in 60 s")

    def stop(self):
        self.proc.stop()


def timed(argv, stdout_path=None, env=None):
    """Runs argv under /usr/bin/time: wall, user, sys seconds and peak RSS."""
    tf = tempfile.NamedTemporaryFile(prefix="ds-bench-time.", delete=False)
    tf.close()
    out = open(stdout_path, "w") if stdout_path else subprocess.PIPE
    t0 = time.monotonic()
    r = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", "-o", tf.name] + argv,
                       stdout=out, stderr=subprocess.PIPE, text=True, env=env)
    wall = time.monotonic() - t0
    if stdout_path:
        out.close()
    try:
        with open(tf.name) as f:
            last = [l for l in f.read().splitlines() if l.strip()][-1].split()
        e, u, s, m = float(last[0]), float(last[1]), float(last[2]), int(last[3])
    except Exception:
        e, u, s, m = wall, 0.0, 0.0, 0
    os.unlink(tf.name)
    return dict(rc=r.returncode, wall_s=e, user_s=u, sys_s=s, cpu_s=u + s, max_rss_kb=m,
                stdout=r.stdout if not stdout_path else "", stderr=r.stderr)


def logfmt_ts(line):
    m = re.match(r"ts=(\S+)", line)
    if not m:
        return None
    return datetime.datetime.strptime(m.group(1).rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def logfmt_fields(line):
    return dict((k, v.strip('"')) for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', line))


def offsets(bootstrap, topics):
    r = sh([os.path.join(BENCHBIN, "bench_offsets"), "-b", bootstrap] + sum([["-t", t] for t in topics], []))
    if r.returncode:
        return {"error": r.stderr.strip()}
    return {j["topic"]: j for j in (json.loads(l) for l in r.stdout.splitlines() if l.strip())}


ALL_TOPICS = ["customs.declarations", "customs.state", "customs.totals.partial", "customs.totals",
              "customs.top_headings", "customs.declarations.dlq"]


def heads_ok(offs):
    if "error" in offs:
        return False
    return all(o["low_nonzero"] == 0 for o in offs.values())


# ---------------------------------------------------------------------------
# benchmarks

def gen_preload(bootstrap, n, extra, work, label):
    argv = [DS, "gen", "-b", bootstrap, "--count", str(n), "-q"] + extra
    t = timed(argv)
    fields = {}
    for line in t["stderr"].splitlines():
        if 'msg="done"' in line:
            fields = logfmt_fields(line)
    with open(os.path.join(work, "gen-%s.log" % label), "w") as f:
        f.write(t["stderr"])
    if t["rc"]:
        raise RuntimeError("declstream gen failed (%s): %s" % (label, t["stderr"].strip()[-500:]))
    return dict(messages=int(fields.get("messages", 0)), bytes=int(fields.get("bytes", 0)),
                seconds=t["wall_s"], rate_per_s=float(fields.get("rate_per_s", 0)))


def run_args(bootstrap, group, extra=()):
    argv = [DS, "run", "-b", bootstrap, "-g", group, "--stats.interval.ms", "1000"]
    if has_flag(["run"], "http.listen"):
        argv += ["--http.listen", "off"]
    for p in RUN_PROPS:
        argv += ["-X", p]
    return argv + list(extra)


def run_to_eof(bootstrap, work, label, log_name, extra=()):
    """declstream run --exit.on.eof true in group bench-LABEL, timed, its log
    written to WORK/LOG_NAME: (argv, timed() result, log path)."""
    # The last cycle after end-of-input (publish, changelog, commit) counts as
    # shutdown: at 1 M declarations it takes longer than the default 10 s
    # shutdown.timeout.ms, and the process would exit 3 with totals unpublished.
    argv = run_args(bootstrap, "bench-" + label, ["--exit.on.eof", "true", "--shutdown.timeout.ms", "600000"]
                    + list(extra))
    logp = os.path.join(work, log_name)
    t = timed(argv)
    with open(logp, "w") as f:
        f.write(t["stderr"])
    return argv, t, logp


def catchup(bootstrap, work, label, extra=()):
    """declstream run --exit.on.eof true on a preloaded topic, timed."""
    argv, t, logp = run_to_eof(bootstrap, work, label, "run-%s.log" % label, extra)
    res = dict(command=" ".join(argv[1:]).replace(bootstrap, "SERVERS"), rc=t["rc"], wall_s=t["wall_s"], cpu_s=t["cpu_s"],
               user_s=t["user_s"], sys_s=t["sys_s"], max_rss_mb=round(t["max_rss_kb"] / 1024, 1), log=logp)
    ready = eof = stopped = None
    for line in t["stderr"].splitlines():
        if 'msg="ready: partitions restored"' in line and ready is None:
            ready = logfmt_ts(line)
        elif 'msg="every assigned partition is read to its end"' in line:
            eof = logfmt_ts(line)
        elif 'comp=pipeline msg="summary"' in line:
            f = logfmt_fields(line)
            for k in ("consumed", "applied", "dead_lettered", "partial_rows", "partial_messages", "status_messages",
                      "changelog_bytes", "cycles"):
                if k in f:
                    res[k] = int(f[k])
        elif 'comp=pipeline msg="stopped"' in line:
            stopped = logfmt_ts(line)
        elif 'comp=merge msg="stopped"' in line:
            f = logfmt_fields(line)
            res["rows_published"] = int(f.get("rows_published", 0))
    if t["rc"] or not ready or not stopped:
        res["error"] = "run failed or its log lacks ready/stopped lines (rc=%d): see %s" % (t["rc"], logp)
        return res
    n = res.get("consumed", 0)
    res["active_s"] = round(stopped - ready, 3)
    res["consume_s"] = round((eof or stopped) - ready, 3)
    res["startup_s"] = round(t["wall_s"] - res["active_s"], 3)
    res["declarations_per_s"] = round(n / res["active_s"]) if res["active_s"] > 0 else 0
    res["declarations_per_s_wall"] = round(n / t["wall_s"]) if t["wall_s"] > 0 else 0
    res["cpu_s_per_million"] = round(t["cpu_s"] / n * 1e6, 2) if n else None
    return res


def restart_bench(bootstrap, work, label):
    """A restart after the catch-up: the same group, so every partition is
    restored from its changelog (snapshot and tail) and claimed again, and
    the input resumes at its end. Timed from "started" to "ready: partitions
    restored" (what a restart or a rebalance holds the input for)."""
    argv, t, logp = run_to_eof(bootstrap, work, label, "restart-%s.log" % label)
    res = dict(command=" ".join(argv[1:]).replace(bootstrap, "SERVERS") + "   (again, same group)", rc=t["rc"],
               wall_s=t["wall_s"], log=logp)
    started = ready = first = last = None
    n = nbytes = records = 0
    for line in t["stderr"].splitlines():
        if 'comp=pipeline msg="started"' in line and started is None:
            started = logfmt_ts(line)
        elif 'msg="ready: partitions restored"' in line and ready is None:
            ready = logfmt_ts(line)
        elif 'msg="partition restored"' in line:
            f = logfmt_fields(line)
            ts = logfmt_ts(line)
            first = ts if first is None else first
            last = ts
            n += 1
            nbytes += int(f.get("bytes", 0))
            records += int(f.get("records", 0))
    if t["rc"] or started is None or ready is None or not n:
        res["error"] = "restart failed or restored nothing (rc=%d): see %s" % (t["rc"], logp)
        return res
    res.update(partitions=n, state_mb=round(nbytes / 1e6, 1), records=records,
               started_to_ready_s=round(ready - started, 2),
               restore_s=round(last - first, 2), restore_ms_per_partition=round((last - first) * 1000 / max(n - 1, 1), 1))
    return res


def kcat_read(bootstrap, work, topic="customs.declarations"):
    cnt = os.path.join(work, "kcat.count")
    cmd = ("set -o pipefail; /usr/bin/time -f '%%e %%U %%S %%M' -o %s.time kcat -C -b %s -t %s -e -o beginning -q "
           "-f '%%p\\n' | wc -l > %s" % (cnt, bootstrap, topic, cnt))
    r = sh(["bash", "-c", cmd])
    try:
        with open(cnt + ".time") as f:
            e, u, s, m = f.read().split()[-4:]
        with open(cnt) as f:
            n = int(f.read().strip())
    except Exception as ex:
        return dict(error="kcat failed: %s %s" % (ex, r.stderr.strip()[-300:]))
    e = float(e)
    return dict(command="kcat -C -b SERVERS -t %s -e -o beginning -q -f '%%p\\n' | wc -l" % topic,
                rc=r.returncode, messages=n, wall_s=e, cpu_s=float(u) + float(s),
                messages_per_s=round(n / e) if e > 0 else 0, max_rss_mb=round(int(m) / 1024, 1))


def python_read(bootstrap, limit):
    t = timed([PY, os.path.join(ROOT, "bench", "baseline.py"), "-b", bootstrap, "--max-messages", str(limit),
               "--json"])
    if t["rc"]:
        return dict(error="baseline.py failed: " + t["stderr"].strip()[-400:])
    j = json.loads(t["stdout"].strip().splitlines()[-1])
    j.pop("gates", None)
    j["cpu_s"] = t["cpu_s"]
    j["max_rss_mb"] = round(t["max_rss_kb"] / 1024, 1)
    j["command"] = "/usr/bin/python3 bench/baseline.py -b SERVERS --max-messages %d --json" % limit
    return j


def replay_available():
    return sh([DS, "replay", "--help"]).returncode == 0


BENCH_GATES = 34  # added to the 16 compiled-in gates: the 50 gates


def write_bench_gates(work):
    """A gates.file with 34 synthetic gates (BENCH01..BENCH34), each as busy as
    the average real gate (no weight column): with the 16 compiled in, 50."""
    path = os.path.join(work, "gates-50.csv")
    with open(path, "w") as f:
        f.write("gate_code,name_vi,province,kind,customs_office_prefix\n")
        for i in range(1, BENCH_GATES + 1):
            f.write("BENCH%02d,Cửa khẩu thử nghiệm %d,Benchmark,opening,%d\n" % (i, i, 15 if i % 2 else 20))
    return path


def replay_bench(work, n, repeat, runs, threads_list, gen_extra=(), replay_extra=(), label="base"):
    path = os.path.join(work, "replay-%s.dsr" % label)
    g = sh([DS, "gen", "--file", path, "--count", str(n), "--partitions", "12", "-q"] + list(gen_extra))
    if g.returncode:
        return dict(error="gen --file failed: " + g.stderr.strip()[-300:])
    out = dict(file_declarations=n, repeat=repeat, runs=runs,
               command="declstream replay --file FILE --threads N --repeat %d --json%s" % (
                   repeat, "".join(" " + x for x in replay_extra)),
               gen_command="declstream gen --file FILE --count %d --partitions 12%s" % (
                   n, "".join(" " + x for x in gen_extra)))
    # Runs alternate between thread counts (1, 2, 1, 2, ...): the machine's
    # speed drifts by +-20 % over minutes, and two blocks of runs measured
    # minutes apart once showed 1.40x and, the next hour, 1.95x for the same
    # code. The scaling is the median of the ratios of adjacent runs.
    # One run first, not counted: the first replay after `gen` wrote the
    # file ran up to 2x slower than the next ones (a quick run's 1-thread
    # figure: 292 k/s, then 480-495 k/s).
    sh([DS, "replay", "--file", path, "--threads", "1", "--repeat", "1", "--json", "-q"] + list(replay_extra))
    by_th = {th: [] for th in threads_list}
    for _ in range(runs):
        for th in threads_list:
            r = sh([DS, "replay", "--file", path, "--threads", str(th), "--repeat", str(repeat), "--json", "-q"]
                   + list(replay_extra))
            if r.returncode:
                out["error"] = "replay failed: " + r.stderr.strip()[-300:]
                break
            by_th[th].append(json.loads(r.stdout.strip().splitlines()[-1]))
        if "error" in out:
            break
    pairs = []
    if 1 in by_th and 2 in by_th:
        pairs = [b["declarations_per_s"] / a["declarations_per_s"]
                 for a, b in zip(by_th[1], by_th[2]) if a["declarations_per_s"]]
    for th in threads_list:
        samples = list(by_th[th])
        if not samples:
            break
        samples.sort(key=lambda j: j["declarations_per_s"])
        med = samples[len(samples) // 2]
        out["t%d" % th] = dict(declarations_per_s=med["declarations_per_s"],
                               ns_per_declaration=med.get("ns_per_declaration"),
                               cpu_ns_per_declaration=med.get("cpu_ns_per_declaration"),
                               worker_cpu_ns_per_declaration=med.get("worker_cpu_ns_per_declaration"),
                               main_cpu_seconds=med.get("main_cpu_seconds"),
                               tail_seconds=med.get("tail_seconds"),
                               cpu_seconds=med.get("cpu_seconds"), seconds=med.get("seconds"),
                               declarations=med.get("declarations"),
                               all_declarations_per_s=[s["declarations_per_s"] for s in samples],
                               raw=med)
    os.unlink(path)
    if "t1" in out and "t2" in out and out["t1"]["declarations_per_s"]:
        # the median of the paired ratios (see above), not the ratio of medians
        pairs.sort()
        out["scaling_2t"] = round(pairs[len(pairs) // 2], 3) if pairs else \
            round(out["t2"]["declarations_per_s"] / out["t1"]["declarations_per_s"], 3)
        out["scaling_2t_pairs"] = [round(x, 3) for x in pairs]
        out["per_core_2t"] = round(out["t2"]["declarations_per_s"] / 2)
    return out


def wait_ready(proc, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.p.poll() is not None:
            return False
        with open(proc.log_path) as f:
            if 'msg="ready: partitions restored"' in f.read():
                return True
        time.sleep(0.2)
    return False


def latency_bench(work, rate, partitions, warmup, duration, commit_ms, tag=""):
    b = Broker(work, partitions, "lat%d%s" % (rate, tag))
    try:
        proc = Proc(run_args(b.bootstrap, "bench-lat-%d%s" % (rate, tag), ["--commit.interval.ms", str(commit_ms)]),
                    os.path.join(work, "run-lat%d%s.log" % (rate, tag)))
        if not wait_ready(proc):
            proc.stop()
            return dict(error="processor not ready in 90 s: see " + proc.log_path)
        la = loadavg()
        r = sh([os.path.join(BENCHBIN, "bench_latency"), "-b", b.bootstrap, "--rate", str(rate),
                "--duration", str(duration), "--warmup", str(warmup), "--json"])
        # processor CPU while it ran
        cpu = None
        try:
            with open("/proc/%d/stat" % proc.p.pid) as f:
                st = f.read().rsplit(")", 1)[1].split()
            cpu = (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
        except Exception:
            pass
        rc = proc.stop()
        try:
            j = json.loads(r.stdout.strip().splitlines()[-1])
        except Exception:
            return dict(error="bench_latency failed (rc %d): %s" % (r.returncode, r.stderr.strip()[-300:]))
        j["skipped_events"] = j.pop("skipped", 0)  # events the tool made but did not send (none expected)
        j.update(partitions=partitions, commit_interval_ms=commit_ms, processor_exit=rc,
                 processor_cpu_s=cpu, loadavg=la,
                 command="bench_latency -b SERVERS --rate %d --duration %d --warmup %d --json" % (
                     rate, duration, warmup))
        j["p99_vs_2x_commit"] = round(j["p99_ms"] / (2 * commit_ms), 3) if j.get("p99_ms", -1) >= 0 else None
        # The producer reached the rate, and the processor kept pace: nothing
        # stayed unseen and the later half of the period was not slower than
        # the first by more than a commit interval (a growing backlog).
        j["producer_reached_rate"] = j["rate_achieved"] >= 0.9 * rate
        j["backlog_growth_ms"] = round(j.get("p50_second_half_ms", 0) - j.get("p50_first_half_ms", 0), 1)
        j["processor_kept_up"] = j["unseen"] == 0 and j["backlog_growth_ms"] < commit_ms
        j["kept_up"] = j["producer_reached_rate"] and j["processor_kept_up"]
        j["input_heads_ok"] = heads_ok(offsets(b.bootstrap, ["customs.declarations"]))
        return j
    finally:
        b.stop()


def catchup_variant(work, label, n, partitions, gen_extra=(), run_extra=()):
    b = Broker(work, partitions, label)
    try:
        g = gen_preload(b.bootstrap, n, list(gen_extra), work, label)
        la = loadavg()
        c = catchup(b.bootstrap, work, label, run_extra)
        offs = offsets(b.bootstrap, ALL_TOPICS)
        c.update(partitions=partitions, preload=g, loadavg=la, heads_ok=heads_ok(offs), topics=offs,
                 gen_extra=" ".join(gen_extra), run_extra=" ".join(run_extra))
        if g["bytes"] and c.get("active_s"):
            c["mb_per_s"] = round(g["bytes"] / c["active_s"] / 1e6, 1)
        return c, b
    except Exception:
        b.stop()
        raise


def bench_tool_json(name, args):
    """Runs build/bench/<name> with args and reads the JSON object on its last
    line: (object, the command as the docs show it, None), or (None, None, a
    skipped/error dict for the results)."""
    exe = os.path.join(BENCHBIN, name)
    if not os.access(exe, os.X_OK):
        return None, None, dict(skipped="not built (build/bench/%s missing)" % name)
    r = sh([exe] + args)
    if r.returncode:
        return None, None, dict(error="%s failed: %s" % (name, (r.stderr or r.stdout).strip()[-300:]))
    try:
        j = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None, None, dict(error="%s output is not JSON" % name, output=r.stdout[-500:])
    return j, "build/bench/%s %s" % (name, " ".join(args)), None


def micro_bench(quick):
    j, command, bad = bench_tool_json("bench_micro",
                                      ["--json"] + (["--count", "20000", "--iterations", "1"] if quick else []))
    if bad:
        return bad
    out = dict(command=command, result=j)
    if isinstance(j.get("total_ns"), (int, float)) and j["total_ns"] >= 0:
        out["dva_ns"] = j["total_ns"]
    return out


# bench_micro's phases (noinline functions; gcc may rename them *.constprop.0,
# hence the wildcards, except where a prefix would catch another phase)
CALLGRIND_PHASES = [("decode", "phase_decode"), ("decode_avro_c", "phase_decode_avro*"),
                    ("decode_validate", "phase_decode_check*"), ("apply", "phase_apply*"),
                    ("total", "phase_total*")]
MICRO_PHASE_ARG = {"decode": "decode", "decode_avro_c": "avro", "decode_validate": "validate", "apply": "apply",
                   "total": "total"}


def callgrind_bench(work, count=20000):
    """Instructions per message, by phase: callgrind collects only inside the
    phase's function (--toggle-collect), so corpus generation and set-up are
    not counted; Ir / messages is a repeatable counter beside wall time."""
    exe = os.path.join(BENCHBIN, "bench_micro")
    if not os.access(exe, os.X_OK):
        return dict(skipped="not built (bench/micro.c absent)")
    if not shutil.which("valgrind"):
        return dict(skipped="valgrind not installed")
    res = dict(count=count, phases={},
               command="valgrind --tool=callgrind --toggle-collect=FUNC build/bench/bench_micro --phase P "
                       "--iterations 1 --count %d --json" % count)
    for name, func in CALLGRIND_PHASES:
        out = os.path.join(work, "callgrind.%s.out" % name)
        r = sh(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, "--toggle-collect=" + func, exe,
                "--phase", MICRO_PHASE_ARG[name], "--iterations", "1", "--count", str(count), "--json"])
        if r.returncode:
            res["phases"][name] = dict(error="callgrind failed: " + r.stderr.strip()[-300:])
            continue
        total = None
        with open(out) as f:
            for line in f:
                if line.startswith("totals:") or line.startswith("summary:"):
                    total = int(line.split()[1])
        try:
            msgs = json.loads(r.stdout.strip().splitlines()[-1])["messages"]
        except (ValueError, IndexError, KeyError):
            msgs = None
        res["phases"][name] = dict(instructions=total, messages=msgs,
                                   instructions_per_message=round(total / msgs, 1) if total and msgs else None)
    p = res["phases"]
    if p.get("decode_validate", {}).get("instructions_per_message") and p.get("decode", {}).get(
            "instructions_per_message"):
        p["validate"] = dict(instructions_per_message=round(
            p["decode_validate"]["instructions_per_message"] - p["decode"]["instructions_per_message"], 1),
            how="decode_validate - decode")
    return res


def memory_bench(entries):
    exe = os.path.join(BENCHBIN, "bench_memory")
    if not os.access(exe, os.X_OK):
        return dict(skipped="not built")
    t = timed([exe, "--ledger-entries", str(entries), "--json"])
    if t["rc"]:
        return dict(error="bench_memory failed: " + t["stderr"].strip()[-300:])
    j = json.loads(t["stdout"].strip().splitlines()[-1])
    j["max_rss_mb"] = round(t["max_rss_kb"] / 1024, 1)
    j["command"] = "build/bench/bench_memory --ledger-entries %d --json" % entries
    # Per gate / heading: rows exist only where data is, one per key and open
    # window; at the default retentions a key with steady traffic holds
    # 1 TOTAL + 181 MINUTE (3 h + current) + 73 HOUR (3 days + current) +
    # 401 DAY (400 days + current) rows in each partition that sees it.
    row = j["row_bytes"] + 16  # + the eviction index entry (ds_evict: 16 bytes per row)
    nrows = 1 + 181 + 73 + 401
    j["per"] = {
        "ledger entry (declaration of 3 headings)": dict(
            bytes=j["ledger_bytes_per_entry"], how="ds_ledger_memory / entries at %s entries (RSS growth: %.0f)" % (
                fmt(j["ledger_entries"]), j["ledger_rss_bytes_per_entry"])),
        "aggregate row = one gate or heading in one window": dict(
            bytes=row, how="ds_rows_memory / rows at %s rows (%.0f) + 16 B eviction index entry" % (
                fmt(j["rows"]), j["row_bytes"])),
        "distinct-count sketch (2 per GATE DAY row), empty / 100 / 100k distinct": dict(
            bytes="%d / %d / %d" % (j["hll_bytes_empty"], j["hll_bytes_100"], j["hll_bytes_100k"]),
            how="ds_hll_memory"),
        "gate, every window open at default retentions, per partition": dict(
            bytes="%s + sketches (%s to %s)" % (fmt(nrows * row), fmt(401 * 2 * j["hll_bytes_empty"]),
                                                fmt(401 * 2 * j["hll_bytes_100k"])),
            how="%d rows (1 TOTAL + 181 MINUTE + 73 HOUR + 401 DAY) x row; 802 sketches" % nrows),
        "heading, every window open at default retentions, per partition": dict(
            bytes="%s + %s per gate it appears at" % (fmt(nrows * row), fmt(8 * row)),
            how="%d COMMODITY rows x row; GATE_HEADING cells: 1 per gate and day for 8 days (top.retention.ms)"
                % nrows),
        "window": dict(bytes=row, how="one row per key with data in it; none otherwise"),
    }
    return j


# ---------------------------------------------------------------------------
# machine

def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) // 1024
    rk = sh(["pkg-config", "--modversion", "rdkafka"]).stdout.strip()
    commit = sh(["git", "-C", ROOT, "rev-parse", "HEAD"]).stdout.strip()
    dirty = bool(sh(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"]).stdout.strip())
    osr = ""
    try:
        with open("/etc/os-release") as f:
            osr = dict(l.rstrip().split("=", 1) for l in f if "=" in l).get("PRETTY_NAME", "").strip('"')
    except OSError:
        pass
    return dict(cpu=cpu, cores=os.cpu_count(), memory_mb=mem, kernel=platform.release(), os=osr,
                librdkafka=rk, git_commit=commit, git_dirty=dirty, hostname=platform.node())


def machine_probe(max_mb):
    """bench_machine: the core's clock (a chain of dependent adds) and the
    cost of a random load by footprint, one dependent chain and 16 at once,
    so that the hot path's figures can be read in cycles and cache lines."""
    j, command, bad = bench_tool_json("bench_machine", ["--json", "--max-mb", str(max_mb)])
    if bad:
        return bad
    j["command"] = command
    return j


def tail_sentence(t1, t2):
    """The final cycle's share of the replay runs (tail_seconds: from the
    last worker's finish, the workers' last flush - encoding what changed
    since the cycle before - and main handing it on) - a tail a processor
    that runs on does not have."""
    if t1.get("tail_seconds") is None or t2.get("tail_seconds") is None:
        return ""
    return (" The final cycle, after the workers' last message (their last flush, encoding what changed since the "
            "cycle before, then main handing it on: a tail a processor that runs on does not have), took %.2f s of "
            "the one-thread "
            "run and %.2f s of the two-thread run." % (t1["tail_seconds"], t2["tail_seconds"]))


def ipc_by_phase(j, ph, ghz):
    """', decode alone 3.70 a cycle, apply 1.10': where the stalls are."""
    out, ipc = [], {}
    for key, label in (("decode", "decode alone"), ("validate", "validate"), ("apply", "apply")):
        ns, ins = j.get(key + "_ns"), ph.get(key, {}).get("instructions_per_message")
        if ns and ns > 0 and ins:
            ipc[key] = ins / (ns * ghz)
            out.append("%s %.2f" % (label, ipc[key]))
    if not out:
        return ""
    stalls = ""
    if len(ipc) == 3 and ipc["apply"] * 2 < min(ipc["decode"], ipc["validate"]):
        stalls = " — the stalls are apply's: its ~21.5 rows, ledger slot and sketches are loads from tables " \
                 "far larger than the caches (the random loads above)"
    return ": " + ", ".join(out) + " a cycle (callgrind's instructions over the wall time's cycles: " \
           "approximate, as the two corpora differ in size)" + stalls


def probe_cells(pr, sizes=(4, 16, 64, 256)):
    """'4 MiB 17 / 1.4 · 16 MiB ...': one chain's ns per load / 16 chains'."""
    by = {x["mb"]: x for x in pr.get("memory", [])}
    return " · ".join("%d MiB %.0f / %.1f" % (mb, by[mb]["chain_ns"], by[mb]["chains_ns"]) for mb in sizes
                      if mb in by)


# ---------------------------------------------------------------------------
# reporting

def fmt(v, unit=""):
    if v is None:
        return "—"
    if isinstance(v, float) and v < 100:
        return "%.2f%s" % (v, unit)
    if isinstance(v, (int, float)):
        return "{:,.0f}{}".format(v, unit)
    return str(v)


def verdict(ok):
    return "—" if ok is None else ("**met**" if ok else "**missed**")


def targets_table(R):
    rows = []
    rp = R.get("replay", {})
    t1 = rp.get("t1", {}).get("declarations_per_s")
    rows.append(("Replay, 1 thread (hot path alone: role=process)", "≥ 4,000,000 decl/s per core",
                 fmt(t1, " decl/s") if t1 else rp.get("skipped", rp.get("error", "—")),
                 verdict(t1 >= TARGETS["replay_1t"] if t1 else None)))
    sc = rp.get("scaling_2t")
    rows.append(("Replay, 2 threads / 1 thread", "≥ 1.7×", "%.2f×" % sc if sc else "—",
                 verdict(sc >= TARGETS["replay_scaling"] if sc else None)))
    ck = R.get("ratios", {}).get("declstream_vs_kcat")
    rows.append(("Catch-up / kcat raw read (same topic, same run)", "≥ 1.0", "%.2f" % ck if ck else "—",
                 verdict(ck >= TARGETS["catchup_vs_kcat"] if ck else None)))
    cp = R.get("ratios", {}).get("declstream_vs_python")
    rows.append(("Catch-up / Python baseline (same run)", "≥ 50×", "%.1f×" % cp if cp else "—",
                 verdict(cp >= TARGETS["catchup_vs_python"] if cp else None)))
    dva = R.get("micro", {}).get("dva_ns")
    rows.append(("Decode + validate + aggregate, 1 core", "< 250 ns/decl",
                 fmt(dva, " ns") if dva else R.get("micro", {}).get("skipped", "see micro section"),
                 verdict(dva < TARGETS["dva_ns"] if dva else None)))
    lat = R.get("latency", {})
    l100 = lat.get("100000") or {}
    if l100.get("p99_ms") is not None and "error" not in l100 and "skipped" not in l100:
        rows.append(("p99 produce→total at 100k decl/s", "< 2 × commit.interval.ms (%d ms)" %
                     (2 * l100["commit_interval_ms"]),
                     "%.0f ms%s" % (l100["p99_ms"], "" if l100.get("kept_up") else
                                    " (not sustained: %.0f/s produced, %d unseen, p50 %+.0f ms from first to second half)"
                                    % (l100["rate_achieved"], l100["unseen"], l100.get("backlog_growth_ms", 0))),
                     verdict(l100["p99_ms"] < 2 * l100["commit_interval_ms"] and l100.get("kept_up"))))
    else:
        l10 = lat.get("10000") or {}
        why = l100.get("skipped") or l100.get("error") or "not run"
        rows.append(("p99 produce→total at 100k decl/s", "< 2 × commit.interval.ms",
                     "%s (10k/s: p99 %s ms)" % (why, fmt(l10.get("p99_ms"))) if l10.get("p99_ms") else why,
                     "**missed**" if l100.get("skipped") else "—"))
    mem = R.get("memory", {})
    b10 = mem.get("ledger_bytes_10m")
    rows.append(("10 M ledger entries", "< 2 GiB",
                 "%.2f GiB%s" % (b10 / 1024 ** 3, "" if mem.get("ledger_entries", 0) >= 10_000_000 else
                                 " (extrapolated from %s)" % fmt(mem.get("ledger_entries"))) if b10 else
                 mem.get("skipped", "—"), verdict(b10 < TARGETS["ledger_10m_bytes"] if b10 else None)))
    return rows


def heads_text(v):
    if "error" in v:
        return "error: " + v["error"][:120]
    if v.get("heads_ok"):
        return "yes"
    lost = [t for t, o in (v.get("topics") or {}).items() if isinstance(o, dict) and o.get("low_nonzero")]
    return "**no%s: the broker deleted data, figure invalid**" % (" (" + ", ".join(lost) + ")" if lost else "")


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        out.append("| " + " | ".join(str(x) for x in r) + " |")
    return "\n".join(out)


def print_table(R):
    print()
    print("%-52s %-34s %-30s %s" % ("target", "wanted", "measured", ""))
    for r in targets_table(R):
        print("%-52s %-34s %-30s %s" % (r[0][:52], r[1][:34], str(r[2])[:60], r[3].strip("*")))
    c = R.get("catchup", {})
    print()
    print("throughput (load average 1/5/15 min at start of each):")
    for name, v, la in throughput_rows(R):
        print("  %-44s %14s decl/s   load %s" % (name, fmt(v), la))
    lat = R.get("latency", {})
    for rate, l in sorted(lat.items(), key=lambda x: int(x[0])):
        if "error" in l or "skipped" in l:
            print("  latency at %s/s: %s" % (rate, l.get("error") or "skipped: " + l["skipped"]))
        else:
            print("  latency at %s/s (achieved %.0f/s, %d unseen): p50 %.0f ms  p99 %.0f ms  p99.9 %.0f ms  max %.0f ms"
                  % (rate, l["rate_achieved"], l["unseen"], l["p50_ms"], l["p99_ms"], l["p999_ms"], l["max_ms"]))
    if c.get("active_s"):
        print("  catch-up: %s declarations in %.2f s active (%.2f s wall, %.2f s start-up), %.1f MB/s, "
              "%.2f CPU s per million, peak RSS %.0f MB, heads intact: %s" % (
                  fmt(c.get("consumed")), c["active_s"], c["wall_s"], c["startup_s"], c.get("mb_per_s", 0),
                  c.get("cpu_s_per_million") or 0, c["max_rss_mb"], c.get("heads_ok")))
    print()


def throughput_rows(R):
    rows = []
    la = lambda d: "/".join("%.2f" % x for x in d.get("loadavg", [])) if d.get("loadavg") else "—"
    for key, what in (("replay", " (role=process)"), ("replay_steady", " (role=process, steady state)"),
                      ("replay_all", ", role all (+ merge in main)")):
        rp = R.get(key, {})
        for th in (1, 2):
            t = rp.get("t%d" % th)
            if t:
                rows.append(("replay, %d thread%s%s" % (th, "s" if th > 1 else "", what), t["declarations_per_s"],
                             la(rp)))
    c = R.get("catchup", {})
    if c.get("declarations_per_s"):
        rows.append(("catch-up: declstream run (active)", c["declarations_per_s"], la(c)))
        rows.append(("catch-up: declstream run (wall, incl. join)", c["declarations_per_s_wall"], la(c)))
    k = R.get("kcat", {})
    if k.get("messages_per_s"):
        rows.append(("kcat -C -e -o beginning (same topic)", k["messages_per_s"], la(k)))
    p = R.get("python", {})
    if p.get("messages_per_s"):
        rows.append(("Python baseline (same topic)", p["messages_per_s"], la(p)))
    for key, s in sorted(R.get("scaling", {}).items()):
        if s.get("declarations_per_s"):
            rows.append(("scaling: " + key, s["declarations_per_s"], la(s)))
    return rows


def write_plot(R, png):
    if not shutil.which("gnuplot"):
        return "gnuplot not installed"
    d = tempfile.mkdtemp(prefix="ds-bench-plot.")
    tp = os.path.join(d, "thr.dat")
    with open(tp, "w") as f:
        for i, (name, v, _) in enumerate(throughput_rows(R)):
            f.write('%d "%s" %f\n' % (i, name.replace('"', "'"), v))
    lp = os.path.join(d, "lat.dat")
    lat = [(int(k), v) for k, v in R.get("latency", {}).items() if "p50_ms" in v]
    lat.sort()
    with open(lp, "w") as f:
        for i, (rate, l) in enumerate(lat):
            f.write('%d "%dk/s" %f %f %f %f\n' % (i, rate // 1000, l["p50_ms"], l["p99_ms"], l["p999_ms"],
                                                 l["max_ms"]))
    commit = lat[0][1]["commit_interval_ms"] if lat else 1000
    ymax = max([2.3 * commit] + [l["max_ms"] * 1.1 for _, l in lat])
    gp = os.path.join(d, "plot.gp")
    with open(gp, "w") as f:
        f.write("""set terminal pngcairo size 1400,650 font "DejaVu Sans,10"
set output '%s'
set multiplot layout 1,2 title "declstream benchmarks — %s — load avg %s"
set style fill solid 0.7 border -1
set boxwidth 0.6
set logscale y
set ylabel "declarations (messages) per second, log scale"
set xtics rotate by 35 right
set grid ytics
set title "Throughput"
set yrange [1000:*]
plot '%s' using 1:3:xtic(2) with boxes lc rgb "#3b75af" notitle, \\
     '' using 1:3:(sprintf("%%.0f", $3)) with labels offset 0,0.8 notitle
unset logscale y
set yrange [0:%f]
set title "End-to-end latency, produce -> customs.totals"
set ylabel "milliseconds"
set xtics norotate
set style data histograms
set style histogram clustered gap 1
set key top left
plot '%s' using 3:xtic(2) title "p50", '' using 4 title "p99", '' using 5 title "p99.9", '' using 6 title "max", \\
     %d with lines lw 2 dt 2 lc rgb "red" title "2 x commit.interval.ms"
unset multiplot
""" % (png, R["date"], "/".join("%.2f" % x for x in R["loadavg_start"]), tp, ymax, lp, 2 * commit))
    r = sh(["gnuplot", gp])
    shutil.rmtree(d, ignore_errors=True)
    return r.stderr.strip() or None


def write_results_md(R, json_rel, png_rel):
    m = R["machine"]
    lines = []
    A = lines.append
    A("# Benchmark results")
    A("")
    A("Generated by `./bench/run%s` on %s — do not edit by hand (the next run rewrites it). "
      "Method, pitfalls and how to read each figure: [README.md](README.md). Raw figures: [`%s`](%s)." % (
          " --quick" if R["profile"] == "quick" else "", R["date"], json_rel, json_rel))
    A("")
    A("| machine | |")
    A("|---|---|")
    A("| CPU | %s, %d cores |" % (m["cpu"], m["cores"]))
    A("| memory | %s MiB |" % fmt(m["memory_mb"]))
    A("| OS, kernel | %s, %s |" % (m["os"], m["kernel"]))
    A("| librdkafka | %s |" % m["librdkafka"])
    pr = m.get("probe", {})
    if pr.get("clock_ghz"):
        A("| core clock (dependent adds, `bench_machine`) | %.2f GHz |" % pr["clock_ghz"])
        A("| random loads, ns each: one dependent chain / %d chains at once | %s |" % (
            pr.get("chains", 16), probe_cells(pr)))
    elif pr:
        A("| `bench_machine` | %s |" % pr.get("skipped", pr.get("error", "—")))
    A("| git commit | `%s`%s |" % (m["git_commit"][:12], " + uncommitted changes" if m["git_dirty"] else ""))
    A("| profile | %s (run took %.0f s) |" % (R["profile"], R.get("elapsed_s", 0)))
    A("| load average (1/5/15 min) | start %s, end %s |" % (
        "/".join("%.2f" % x for x in R["loadavg_start"]), "/".join("%.2f" % x for x in R["loadavg_end"])))
    A("")
    if max(R["loadavg_start"][0], R["loadavg_end"][0]) > 0.5:
        A("> **The machine was not quiet** (load average above 0.5 on a %d-core machine): other work "
          "competed for the cores, so throughput is understated and latency overstated. Each figure "
          "below carries the load average when it was taken." % m["cores"])
        A("")
    A("## Targets")
    A("")
    A(md_table(["target", "wanted", "measured", "verdict"], targets_table(R)))
    A("")
    A("## Throughput")
    A("")
    A(md_table(["what", "declarations/s", "load avg at start"],
               [(n, fmt(v), la) for n, v, la in throughput_rows(R)]))
    A("")
    rp = R.get("replay", {})
    if rp.get("t1"):
        A("**Hot path alone** (`%s`; file from `%s`): 1 thread %s decl/s (%s ns/decl wall, %s ns CPU); "
          "2 threads %s decl/s (%s per core), scaling %s×. Medians of %d runs each, 1 and 2 threads "
          "alternating; the scaling is the median of the adjacent runs' ratios (%s)." % (
              rp["command"], rp["gen_command"], fmt(rp["t1"]["declarations_per_s"]),
              fmt(rp["t1"].get("ns_per_declaration")), fmt(rp["t1"].get("cpu_ns_per_declaration")),
              fmt(rp.get("t2", {}).get("declarations_per_s")), fmt(rp.get("per_core_2t")),
              rp.get("scaling_2t", "—"), rp["runs"],
              ", ".join("%.2f" % x for x in rp.get("scaling_2t_pairs", [])) or "—"))
        if rp.get("t2", {}).get("worker_cpu_ns_per_declaration") is not None:
            t1, t2 = rp["t1"], rp["t2"]
            A("")
            A("Where two threads lose against one: the workers' CPU per declaration is %s ns with one thread and "
              "%s ns with two (%s); the main thread (flush requests, handing the workers' partial batches on, the "
              "statuses) used %s s of CPU "
              "of the %s s with one thread and %s of %s s with two, on the same two cores.%s" % (
                  fmt(t1["worker_cpu_ns_per_declaration"]), fmt(t2["worker_cpu_ns_per_declaration"]),
                  "%+.0f %%" % (100.0 * (t2["worker_cpu_ns_per_declaration"] / t1["worker_cpu_ns_per_declaration"] - 1))
                  if t1["worker_cpu_ns_per_declaration"] else "—",
                  "%.2f" % t1["main_cpu_seconds"], "%.2f" % t1["seconds"],
                  "%.2f" % t2["main_cpu_seconds"], "%.2f" % t2["seconds"], tail_sentence(t1, t2)))
        rs = R.get("replay_steady", {})
        if rs.get("t1"):
            A("")
            A("In the steady state (`%s`: one pass replayed before the clock starts and not counted, so the "
              "measured passes find the tables grown and the memory they need already faulted in and recycled, "
              "as in a processor that has run a while; and every partition's ledger at its size and in memory, "
              "as after `ledger.retention.ms` of traffic): 1 thread %s decl/s; 2 threads %s decl/s, scaling %s× "
              "(pairs %s); the workers' CPU per declaration %s ns with one thread and %s ns with two; the main "
              "thread's CPU %s s with one thread and %s s with two." % (
                  rs["command"], fmt(rs["t1"]["declarations_per_s"]),
                  fmt(rs.get("t2", {}).get("declarations_per_s")), rs.get("scaling_2t", "—"),
                  ", ".join("%.2f" % x for x in rs.get("scaling_2t_pairs", [])) or "—",
                  fmt(rs["t1"].get("worker_cpu_ns_per_declaration")),
                  fmt(rs.get("t2", {}).get("worker_cpu_ns_per_declaration")),
                  "%.2f" % (rs["t1"].get("main_cpu_seconds") or 0),
                  "%.2f" % (rs.get("t2", {}).get("main_cpu_seconds") or 0)))
        ra = R.get("replay_all", {})
        if ra.get("t1"):
            A("")
            A("The same file with `--role all` (`%s`: the workers, then the merge and publishing of the global "
              "rows in the main thread, as `declstream run` does in one process): 1 thread %s decl/s; 2 threads "
              "%s decl/s, scaling %s× — on two cores the merging main thread competes with the two workers." % (
                  ra["command"], fmt(ra["t1"]["declarations_per_s"]),
                  fmt(ra.get("t2", {}).get("declarations_per_s")), ra.get("scaling_2t", "—")))
    else:
        A("**Hot path alone**: %s" % rp.get("skipped", rp.get("error", "—")))
    A("")
    c = R.get("catchup", {})
    if c.get("active_s"):
        A("**End-to-end catch-up** (embedded broker, %d partitions, %s declarations preloaded with "
          "`declstream gen --count %d`; `declstream %s`): %s declarations in %.2f s from "
          "\"ready: partitions restored\" to \"stopped\" (all totals published and committed) = **%s decl/s**, "
          "%.1f MB/s of Avro; %.2f s wall including %.2f s of group join and restore (%s decl/s over the wall); "
          "%.2f CPU s per million declarations (user+sys, all threads); peak RSS %.0f MB; %s rows published; "
          "every topic's head intact (low watermarks 0): %s." % (
              c["partitions"], fmt(c["preload"]["messages"]), R["config"]["catch_n"], c["command"],
              fmt(c.get("consumed")), c["active_s"], fmt(c["declarations_per_s"]), c.get("mb_per_s", 0),
              c["wall_s"], c["startup_s"], fmt(c["declarations_per_s_wall"]), c.get("cpu_s_per_million") or 0,
              c["max_rss_mb"], fmt(c.get("rows_published")), heads_text(c)))
    elif c:
        A("**End-to-end catch-up**: %s" % c.get("error"))
    A("")
    k, p = R.get("kcat", {}), R.get("python", {})
    if k.get("messages_per_s"):
        A("**kcat** (`%s`) read %s messages in %.2f s = %s msg/s (%.2f CPU s); topic watermarks: %s messages, "
          "head intact: %s." % (k["command"], fmt(k["messages"]), k["wall_s"], fmt(k["messages_per_s"]),
                                k["cpu_s"], fmt(k.get("topic_messages")), k.get("heads_ok")))
    if p.get("messages_per_s"):
        A("**Python baseline** (`%s`, confluent-kafka + avro, sums customs value per gate) read %s messages in "
          "%.2f s = %s msg/s." % (p["command"], fmt(p["messages"]), p["seconds"], fmt(p["messages_per_s"])))
    rt = R.get("ratios", {})
    if rt:
        A("")
        A("Ratios in this run: declstream / kcat = **%s** (wall, incl. declstream's group join: %s); "
          "declstream / Python = **%s** (wall: %s)." % (
              rt.get("declstream_vs_kcat"), rt.get("declstream_vs_kcat_wall"), rt.get("declstream_vs_python"),
              rt.get("declstream_vs_python_wall")))
        cps = R.get("catchup_pairs", [])
        if len(cps) > 1:
            A("")
            A("The catch-up and kcat were measured in %d pairs, each on a fresh broker with its own preload (the "
              "catch-up, then kcat on its topic); the ratio to kcat above is the median of the paired ratios, and "
              "the catch-up's and kcat's figures above are that pair's (the Python baseline read the first pair's "
              "topic, and the ratios to Python use it):" % len(cps))
            A("")
            A(md_table(["pair", "catch-up decl/s (active)", "kcat msg/s", "ratio", "CPU s / M", "peak RSS MB"],
                       [(str(i + 1), fmt(x.get("declarations_per_s")), fmt(x.get("kcat_messages_per_s")),
                         "%.3f" % x["ratio"] if x.get("ratio") is not None else "—",
                         "%.2f" % x["cpu_s_per_million"] if x.get("cpu_s_per_million") else "—",
                         fmt(x.get("max_rss_mb"))) for i, x in enumerate(cps)]))
        rs = R.get("restart", {})
        if rs.get("partitions"):
            A("")
            A("**Restart** (`declstream %s`, after the first pair's catch-up): %d partitions restored from their "
              "changelogs (%s MB of snapshots and tails, %s records) and claimed, one after the other, in %.2f s "
              "(%.1f ms a partition); %.2f s from \"started\" to \"ready: partitions restored\", the group's "
              "join included — what a restart or a rebalance holds the input for." % (
                  rs["command"], rs["partitions"], rs["state_mb"], fmt(rs["records"]), rs["restore_s"],
                  rs["restore_ms_per_partition"], rs["started_to_ready_s"]))
        elif rs:
            A("")
            A("**Restart**: %s" % rs.get("error", "—"))
        kp = rt.get("kcat_vs_python")
        if not kp and R.get("kcat", {}).get("messages_per_s") and R.get("python", {}).get("messages_per_s"):
            kp = rt["kcat_vs_python"] = round(R["kcat"]["messages_per_s"] / R["python"]["messages_per_s"], 1)
        if kp:
            A("")
            A("The Python ratio against the transport: kcat, which decodes nothing and only counts, read %s× as "
              "fast as the baseline in this run, so 50× the baseline is %s kcat's own rate on this broker%s." % (
                  kp, "%.1f×" % (50.0 / kp), " (kcat's raw read is the transport's reference here, and the "
                  "catch-up's other target asks only to match it)" if kp < 50 else ""))
    A("")
    A("## Steady rate: end-to-end latency")
    A("")
    A("`bench_latency` produces NEW declarations at the rate and measures, for every one, produce call → its "
      "gate's `TOTAL` row on `customs.totals` counting it (see README.md). Processor defaults but "
      "`commit.interval.ms` as shown.")
    A("")
    lrows = []
    for rate, l in sorted(R.get("latency", {}).items(), key=lambda x: int(x[0])):
        if "error" in l or "skipped" in l:
            lrows.append((fmt(int(rate)), "—", "—", "—", "—", "—", "—", "—", "—", "—", "—",
                          l.get("error") or "skipped: " + l["skipped"]))
        else:
            lrows.append((fmt(int(rate)), fmt(l["rate_achieved"]), l["partitions"], fmt(l["measured"]),
                          fmt(l["unseen"]), fmt(l["p50_ms"]), fmt(l["p99_ms"]), fmt(l["p999_ms"]),
                          "%.2f" % l["p99_vs_2x_commit"] if l.get("p99_vs_2x_commit") is not None else "—",
                          "%+.0f" % l.get("backlog_growth_ms", 0),
                          "yes" if l.get("kept_up") else "no (%s)" % ", ".join(
                              x for x, bad in [("producer short of the rate", not l.get("producer_reached_rate")),
                                               ("processor fell behind", not l.get("processor_kept_up"))] if bad),
                          "/".join("%.2f" % x for x in l["loadavg"])))
    A(md_table(["rate target /s", "achieved /s", "partitions", "measured", "unseen", "p50 ms", "p99 ms",
                "p99.9 ms", "p99 / (2 × commit)", "p50 2nd half − 1st half, ms", "sustained", "load avg"], lrows))
    A("")
    for rate, l in sorted(R.get("latency", {}).items(), key=lambda x: int(x[0])):
        if len(l.get("p99_runs_ms") or []) > 1:
            A("At %s/s the row is the run with the median p99 of %d, each on a fresh broker and processor "
              "(p99 of each: %s ms; sustained in %d of them). The harness measures this rate several times "
              "because one run's p99 moved by a third between runs of the same code (bench/README.md)." % (
                  fmt(int(rate)), len(l["p99_runs_ms"]),
                  ", ".join(fmt(x) if x is not None else "failed" for x in l["p99_runs_ms"]),
                  sum(1 for k in l.get("kept_up_runs", []) if k)))
            A("")
    sc = R.get("scaling", {})
    A("## Scaling" + (" (end-to-end catch-up, %s declarations each)" % fmt(R["config"]["scale_n"])
                      if R["config"].get("scale_n") else ""))
    A("")
    if sc:
        A(md_table(["variant", "partitions", "decl/s (active)", "CPU s / M", "peak RSS MB", "heads intact",
                    "load avg"],
                   [(k, v.get("partitions"), fmt(v.get("declarations_per_s")), fmt(v.get("cpu_s_per_million")),
                     fmt(v.get("max_rss_mb")), heads_text(v), "/".join("%.2f" % x for x in v.get("loadavg", [])))
                    for k, v in sorted(sc.items())]))
        A("")
        A("The heading variants run on 50 gates: the 16 real gates of Quảng Ninh and Lạng Sơn "
          "(`processor/domain/gates.csv`) and 34 synthetic ones, each as busy as the average real gate, from a "
          "gates file (`gen --gates-file F`, `run --gates.file F`; README, \"Gates\"). 4-digit headings allow "
          "only 9,900 synthetic values, so both heading variants use 6-digit headings (`gen --heading-digits 6 "
          "--extra-headings 976 / 9976`, `run --heading.digits 6`).")
        rs = R.get("replay_scaling", {})
        if rs:
            A("")
            A(md_table(["replay variant", "1 thread decl/s", "2 threads decl/s", "scaling"],
                       [(k, fmt(v.get("t1", {}).get("declarations_per_s")),
                         fmt(v.get("t2", {}).get("declarations_per_s")), v.get("scaling_2t", "—"))
                        for k, v in sorted(rs.items())]))
    else:
        A("Not run in the quick profile.")
    A("")
    A("## Micro benchmarks")
    A("")
    mi, cg = R.get("micro", {}), R.get("callgrind", {})
    if "result" in mi:
        j = mi["result"]
        A("`%s` — corpus: %s messages of the generator (fixed seed), %.2f items per declaration, %.0f bytes per "
          "message; %s iteration(s). Wall time per message%s:" % (
              mi["command"], fmt(j.get("messages")), j.get("items_per_declaration", 0),
              j.get("bytes_per_message", 0), j.get("iterations"),
              ", and callgrind's instruction count per message (`%s`; one iteration of %s declarations)" % (
                  cg["command"], fmt(cg.get("count"))) if cg.get("phases") else ""))
        A("")
        ph = cg.get("phases", {})
        ghz = R["machine"].get("probe", {}).get("clock_ghz")
        rows = []
        for key, label in [("decode", "decode (schema-specialised codec)"), ("decode_avro_c", "decode (Avro C generic)"),
                           ("validate", "validate"), ("decode_validate", "decode + validate"),
                           ("apply", "apply (ledger + aggregates)"), ("total", "decode + validate + aggregate (total)")]:
            ns = j.get(key + "_ns")
            ns = ns if ns is not None and ns >= 0 else None
            rows.append((label, fmt(ns) if ns is not None else "—",
                         fmt(ph.get(key, {}).get("instructions_per_message")),
                         fmt(ns * ghz) if ns is not None and ghz else "—"))
        if not ghz:
            rows = [r[:3] for r in rows]
        A(md_table(["phase", "ns per message", "instructions per message"] +
                   (["cycles per message (at %.2f GHz)" % ghz] if ghz else []), rows))
        ins = ph.get("total", {}).get("instructions_per_message")
        tot = j.get("total_ns")
        if ghz and ins and tot and tot > 0:
            budget = TARGETS["dva_ns"] * ghz
            A("")
            need = ins / budget
            A("In cycles: the target's %d ns is %s cycles of this core (clock from `bench_machine`). The path "
              "executes %s instructions per message (callgrind, total), so within the target it would have to "
              "retire %.1f instructions a cycle with no memory stall at all%s. Measured: %.2f a cycle (%s cycles "
              "per message)%s." % (
                  TARGETS["dva_ns"], fmt(budget), fmt(ins), need,
                  " — more than x86-64 cores of this generation can issue (4 to 6 a cycle)" if need > 6 else "",
                  ins / (tot * ghz), fmt(tot * ghz), ipc_by_phase(j, ph, ghz)))
    else:
        A("bench_micro: %s" % mi.get("skipped", mi.get("error", "—")))
    if cg.get("skipped") or cg.get("error"):
        A("")
        A("callgrind: %s" % cg.get("skipped", cg.get("error")))
    A("")
    A("## Memory")
    A("")
    mem = R.get("memory", {})
    if mem and "skipped" not in mem and "error" not in mem:
        A(md_table(["structure", "bytes each", "how measured"],
                   [(k, fmt(v["bytes"]), v["how"]) for k, v in mem.get("per", {}).items()]))
        A("")
        A("%s ledger entries: %.2f GiB (ds_ledger_memory), peak RSS of the tool %s MB." % (
            fmt(mem.get("ledger_entries")), mem.get("ledger_bytes", 0) / 1024 ** 3, fmt(mem.get("max_rss_mb"))))
    else:
        A("bench_memory: %s" % mem.get("skipped", mem.get("error", "not run")))
    A("")
    A("## Repeat")
    A("")
    A("```sh")
    A("./bench/run            # full profile (6-10 min on 2 cores): every benchmark above")
    A("./bench/run --quick    # under a minute: replay, catch-up vs kcat vs Python, 10k/s latency")
    A("./bench/run --only replay,latency   # a subset; see ./bench/run --help")
    A("```")
    A("")
    A("Single measurements by hand (the commands the harness runs):")
    A("")
    A("```sh")
    A("build/declstream broker --partitions %d &          # prints SERVERS on its first line" % R["config"]["catch_p"])
    A("build/declstream gen -b SERVERS --count %d -q" % R["config"]["catch_n"])
    A("kcat -C -b SERVERS -t customs.declarations -e -o beginning -q -f '%p\\n' | wc -l")
    A("/usr/bin/time -v build/declstream run -b SERVERS -g bench --exit.on.eof true --shutdown.timeout.ms 600000 \\")
    A("    --http.listen off \\")
    A("    -X session.timeout.ms=6000")
    A("/usr/bin/python3 bench/baseline.py -b SERVERS --max-messages %d" % R["config"]["python_n"])
    A("build/bench/bench_offsets -b SERVERS -t customs.declarations   # low_nonzero must be 0")
    A("build/declstream gen --file /tmp/r.dsr --count %d --partitions 12 && "
      "build/declstream replay --file /tmp/r.dsr --threads 1 --repeat %d --role process --json" % (
          R["config"]["replay_n"], R["config"]["replay_repeat"]))
    A("build/bench/bench_latency -b SERVERS --rate 100000 --duration 20 --json   # with declstream run running")
    A("```")
    A("")
    A("![throughput and latency](%s)" % png_rel)
    A("")
    with open(os.path.join(ROOT, "bench", "RESULTS.md"), "w") as f:
        f.write("\n".join(lines))


# ---------------------------------------------------------------------------

SECTIONS = ["replay", "catchup", "latency", "scaling", "micro", "memory"]


def main():
    global DS, BENCHBIN
    ap = argparse.ArgumentParser(
        prog="./bench/run",
        description="declstream benchmarks: hot path (replay), end-to-end catch-up vs kcat vs Python, steady-rate "
                    "latency, scaling, micro benchmarks, memory. Writes bench/results/<date>-<name>.json/.png and "
                    "bench/RESULTS.md. ./bench/run installs and builds first (--no-build skips that).")
    ap.add_argument("--quick", action="store_true", help="small sizes, 10k/s latency only, no scaling/callgrind (< 60 s)")
    ap.add_argument("--name", help="result name (default: the profile, quick or full)")
    ap.add_argument("--only", help="comma-separated subset of: " + ",".join(SECTIONS))
    ap.add_argument("--no-build", action="store_true", help="(handled by ./bench/run) do not run setup and build")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs) after the run")
    ap.add_argument("--commit-interval-ms", type=int, default=1000, help="processor's commit.interval.ms in the "
                    "latency runs (default 1000, the processor's default)")
    ap.add_argument("--no-results-md", action="store_true", help="do not rewrite bench/RESULTS.md")
    ap.add_argument("--report", metavar="JSON", help="measure nothing: regenerate bench/RESULTS.md and the PNG "
                    "from a results file (bench/results/<date>-<name>.json)")
    a = ap.parse_args()
    if a.report:
        with open(a.report) as f:
            R = json.load(f)
        base = os.path.splitext(os.path.basename(a.report))[0]
        perr = write_plot(R, os.path.join(RESULTS_DIR, base + ".png"))
        if perr:
            log("gnuplot: " + perr)
        write_results_md(R, "results/" + base + ".json", "results/" + base + ".png")
        print_table(R)
        return
    profile = "quick" if a.quick else "full"
    cfg = dict(PROFILES[profile])
    only = set(a.only.split(",")) if a.only else set(SECTIONS)
    bad = only - set(SECTIONS)
    if bad:
        ap.error("unknown section(s): " + ",".join(sorted(bad)))
    if not os.access(DS, os.X_OK) or not os.access(os.path.join(BENCHBIN, "bench_offsets"), os.X_OK):
        sys.exit("bench: build/declstream or build/bench/bench_offsets missing: run ./bench/run (it builds)")

    t_start = time.monotonic()
    now = datetime.datetime.now()
    name = a.name or profile
    work = tempfile.mkdtemp(prefix="ds-bench.")
    log("profile %s, work directory %s" % (profile, work))
    # Private copies of the binaries: the working tree is shared, and a
    # rebuild by someone else mid-run would otherwise swap or remove them.
    bindir = os.path.join(work, "bin")
    os.makedirs(bindir)
    shutil.copy2(DS, os.path.join(bindir, "declstream"))
    for f in os.listdir(BENCHBIN):
        if f.startswith("bench_") and os.access(os.path.join(BENCHBIN, f), os.X_OK):
            shutil.copy2(os.path.join(BENCHBIN, f), os.path.join(bindir, f))
    DS, BENCHBIN = os.path.join(bindir, "declstream"), bindir
    R = dict(profile=profile, name=name, date=now.strftime("%Y-%m-%d %H:%M"), machine=machine(),
             loadavg_start=loadavg(), config=cfg, work_dir=work)
    # The probe (~6 s) is read by the micro section (its phases in cycles)
    # and the machine table: a run of other sections alone skips it.
    if "micro" in only or not a.only:
        log("machine: core clock and memory (bench_machine)")
        R["machine"]["probe"] = machine_probe(32 if a.quick else 256)
    else:
        R["machine"]["probe"] = dict(skipped="not run (--only %s)" % a.only)

    def on_signal(sig, frame):
        Proc.stop_all()
        sys.exit(130)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def guarded(key, fn):
        """One section's failure (a binary being rebuilt by someone else, a
        broker that did not start) is recorded, and the other sections run."""
        try:
            fn()
        except Exception as ex:
            log("%s failed: %s" % (key, ex))
            R[key] = dict(error="%s: %s" % (type(ex).__name__, ex))
        finally:
            Proc.stop_all()

    def s_replay():
        if replay_available():
            # The target figure is the processing role alone ("everything after
            # the consumer ... publish to a null sink"): its partial rows are
            # encoded and dropped; the merge is the merge role's work, downstream
            # of the partial topic. role=all (workers + merge in one process) is
            # reported beside it.
            log("replay: %d declarations x %d passes, 1 and 2 threads, role process" % (
                cfg["replay_n"], cfg["replay_repeat"]))
            la = loadavg()
            R["replay"] = replay_bench(work, cfg["replay_n"], cfg["replay_repeat"], cfg["replay_runs"], [1, 2],
                                       replay_extra=["--role", "process"], label="process")
            R["replay"]["loadavg"] = la
            log("replay: role all (workers + merge in one process)")
            la = loadavg()
            R["replay_all"] = replay_bench(work, cfg["replay_n"], cfg["replay_repeat"], cfg["replay_runs"], [1, 2],
                                           label="all")
            R["replay_all"]["loadavg"] = la
            # The steady state of a processor that has run a while: a warm-up
            # pass before the clock (tables grown, memory the allocator holds
            # already faulted in and recycled as windows close) and every
            # ledger at its size (--presize, as after ledger.retention.ms), so
            # the measured passes pay no cold start's fresh pages - which two
            # threads fault in at once, at ~1.75 s of CPU per GB on this VM
            # (bench/HOTPATH.md, eighth, ninth and fourteenth rounds).
            log("replay: steady state (--warmup 1 --presize), role process")
            la = loadavg()
            R["replay_steady"] = replay_bench(work, cfg["replay_n"], cfg["replay_repeat"], cfg["replay_runs"],
                                              [1, 2], replay_extra=["--role", "process", "--warmup", "1", "--presize"],
                                              label="steady")
            R["replay_steady"]["loadavg"] = la
        else:
            R["replay"] = dict(skipped="not built (declstream replay absent)")

    def s_catchup():
        # kcat's read of the same topic varied by a third between runs here
        # (227 k to 304 k msg/s), so one pair made a noisy ratio: the full
        # profile measures several pairs, each on a fresh broker (a catch-up,
        # then kcat on its topic), and takes the median of the paired ratios,
        # as the replay's scaling does. The run reported in detail is the
        # median pair's; Python reads the first broker's topic.
        pairs = []
        for i in range(cfg.get("catch_pairs", 1)):
            label = "catchup" if i == 0 else "catchup%d" % (i + 1)
            log("catch-up %d/%d: broker with %d partitions, preloading %d declarations" % (
                i + 1, cfg.get("catch_pairs", 1), cfg["catch_p"], cfg["catch_n"]))
            try:
                c, b = catchup_variant(work, label, cfg["catch_n"], cfg["catch_p"])
            except Exception as ex:  # one pair lost, not the others
                pairs.append(dict(c=dict(error="pair %d: %s" % (i + 1, ex)), k={}, ratio=None))
                continue
            k = {}
            try:
                log("catch-up: %s decl/s active; kcat" % fmt(c.get("declarations_per_s")))
                la = loadavg()
                k = kcat_read(b.bootstrap, work)
                offs = offsets(b.bootstrap, ["customs.declarations"])
                k.update(loadavg=la, heads_ok=heads_ok(offs),
                         topic_messages=offs.get("customs.declarations", {}).get("messages"))
                if k.get("messages") is not None and k.get("topic_messages") is not None:
                    k["complete"] = k["messages"] == k["topic_messages"]
            except Exception as ex:  # this pair has no ratio
                k = dict(error="kcat: %s" % ex)
            try:
                if i == 0:
                    log("python baseline: %d messages" % cfg["python_n"])
                    la = loadavg()
                    try:
                        p = python_read(b.bootstrap, cfg["python_n"])
                    except Exception as ex:
                        p = dict(error=str(ex))
                    p["loadavg"] = la
                    R["python"] = p
                    log("restart: every partition restored from the changelog")
                    la = loadavg()
                    try:
                        R["restart"] = restart_bench(b.bootstrap, work, label)
                    except Exception as ex:
                        R["restart"] = dict(error=str(ex))
                    R["restart"]["loadavg"] = la
            finally:
                b.stop()
            ratio = None
            if c.get("declarations_per_s") and k.get("messages_per_s"):
                ratio = c["declarations_per_s"] / k["messages_per_s"]
            pairs.append(dict(c=c, k=k, ratio=ratio))
        measured = [x for x in pairs if x["ratio"] is not None]
        pick = sorted(measured, key=lambda x: x["ratio"])[(len(measured) - 1) // 2] if measured else pairs[0]
        c, k, p = pick["c"], pick["k"], R.get("python", {})
        R["catchup"] = c
        R["kcat"] = k
        R["catchup_pairs"] = [dict(declarations_per_s=x["c"].get("declarations_per_s"),
                                   kcat_messages_per_s=x["k"].get("messages_per_s"),
                                   ratio=round(x["ratio"], 3) if x["ratio"] is not None else None,
                                   cpu_s_per_million=x["c"].get("cpu_s_per_million"),
                                   max_rss_mb=x["c"].get("max_rss_mb")) for x in pairs]
        ratios = {}
        if pick["ratio"] is not None:
            ratios["declstream_vs_kcat"] = round(pick["ratio"], 3)
            ratios["declstream_vs_kcat_wall"] = round(c["declarations_per_s_wall"] / k["messages_per_s"], 3)
            ratios["declstream_vs_kcat_pairs"] = [round(x["ratio"], 3) for x in measured]
        if c.get("declarations_per_s") and p.get("messages_per_s"):
            ratios["declstream_vs_python"] = round(c["declarations_per_s"] / p["messages_per_s"], 1)
            ratios["declstream_vs_python_wall"] = round(c["declarations_per_s_wall"] / p["messages_per_s"], 1)
        if k.get("messages_per_s") and p.get("messages_per_s"):
            # what a reader that only counts messages reaches against the
            # baseline: the most any consumer of this broker can show
            ratios["kcat_vs_python"] = round(k["messages_per_s"] / p["messages_per_s"], 1)
        R["ratios"] = ratios

    def s_latency():
        R["latency"] = {}
        short = None
        for rate in cfg["rates"]:
            if short:
                R["latency"][str(rate)] = dict(skipped="%d/s was not sustained: a higher rate would only measure "
                                                        "a growing backlog" % short)
                continue
            parts = 48 if rate <= 100_000 else 192
            log("latency: %d/s for %d s (+%d s warm-up), %d partitions" % (
                rate, cfg["lat_duration"], cfg["lat_warmup"], parts))
            # The target's rate is measured several times, each on a fresh
            # broker and processor, and the run with the median p99 is
            # reported (all p99s beside it): one run's p99 moved by a third
            # between full runs of the same code here (1,543, 1,699 and
            # 2,240 ms; 1,619-1,838 ms by hand), as the catch-up's ratio did
            # before it was measured in pairs.
            runs = cfg.get("lat_runs", 1) if rate == 100_000 else 1
            got = []
            for i in range(runs):
                if runs > 1:
                    log("latency: %d/s, run %d/%d" % (rate, i + 1, runs))
                try:
                    got.append(latency_bench(work, rate, parts, cfg["lat_warmup"], cfg["lat_duration"],
                                             a.commit_interval_ms, tag="-%d" % (i + 1) if runs > 1 else ""))
                except Exception as ex:
                    got.append(dict(error="%s: %s" % (type(ex).__name__, ex)))
                finally:
                    Proc.stop_all()
            ok = sorted((g for g in got if g.get("p99_ms") is not None and "error" not in g),
                        key=lambda g: g["p99_ms"])
            # the median run (of an even number of good runs, the higher)
            R["latency"][str(rate)] = ok[len(ok) // 2] if ok else got[0]
            if runs > 1 and ok:
                R["latency"][str(rate)]["p99_runs_ms"] = [g.get("p99_ms") for g in got]
                R["latency"][str(rate)]["kept_up_runs"] = [bool(g.get("kept_up")) for g in got]
            if not R["latency"][str(rate)].get("kept_up"):
                short = rate

    def s_scaling():
        n = cfg["scale_n"]
        gates = write_bench_gates(work)
        g50 = ["--gates-file", gates]
        variants = [
            ("threads=1, 48 partitions", 48, [], ["--threads", "1"]),
            ("threads=2, 48 partitions", 48, [], ["--threads", "2"]),
            ("threads=2, 12 partitions", 12, [], ["--threads", "2"]),
            ("50 gates x 1,000 headings (6 digits)", 192,
             g50 + ["--heading-digits", "6", "--extra-headings", "976"],
             ["--gates.file", gates, "--heading.digits", "6"]),
            ("50 gates x 10,000 headings (6 digits)", 192,
             g50 + ["--heading-digits", "6", "--extra-headings", "9976"],
             ["--gates.file", gates, "--heading.digits", "6"]),
        ]
        R["scaling"] = {}
        for label, parts, gx, rx in variants:
            log("scaling: " + label)
            slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
            try:
                c, b = catchup_variant(work, slug, n, parts, gx, rx)
                b.stop()
            except Exception as ex:
                c = dict(error="%s: %s" % (type(ex).__name__, ex))
            finally:
                Proc.stop_all()
            R["scaling"][label] = c
        if replay_available():
            R["replay_scaling"] = {}
            for label, gx, rx in [
                    ("50 gates x 1,000 headings (6 digits)", g50 + ["--heading-digits", "6", "--extra-headings", "976"],
                     g50 + ["--heading-digits", "6", "--role", "process"]),
                    ("50 gates x 10,000 headings (6 digits)",
                     g50 + ["--heading-digits", "6", "--extra-headings", "9976"],
                     g50 + ["--heading-digits", "6", "--role", "process"])]:
                log("replay scaling: " + label)
                R["replay_scaling"][label] = replay_bench(work, cfg["replay_n"], 1, 1, [1, 2], gx, rx,
                                                          re.sub(r"[^a-z0-9]+", "-", label))

    def s_micro():
        log("micro benchmarks")
        R["micro"] = micro_bench(a.quick)
        if cfg["callgrind"]:
            log("callgrind")
            R["callgrind"] = callgrind_bench(work)
        else:
            R["callgrind"] = dict(skipped="not in the quick profile")

    def s_memory():
        log("memory: %d ledger entries" % cfg["memory_entries"])
        R["memory"] = memory_bench(cfg["memory_entries"])

    for key, fn in [("replay", s_replay), ("catchup", s_catchup), ("latency", s_latency), ("scaling", s_scaling),
                    ("micro", s_micro), ("memory", s_memory)]:
        if key in only and (key != "scaling" or cfg["scaling"]):
            guarded(key, fn)

    R["loadavg_end"] = loadavg()
    R["elapsed_s"] = round(time.monotonic() - t_start, 1)
    os.makedirs(RESULTS_DIR, exist_ok=True)
    base = "%s-%s" % (now.strftime("%Y-%m-%d"), name)
    jpath = os.path.join(RESULTS_DIR, base + ".json")
    png = os.path.join(RESULTS_DIR, base + ".png")
    perr = write_plot(R, png)
    if perr:
        R["plot_error"] = perr
    with open(jpath, "w") as f:
        json.dump(R, f, indent=1, default=str)
    if not a.no_results_md:
        write_results_md(R, "results/" + base + ".json", "results/" + base + ".png")
    print_table(R)
    log("wrote %s, %s%s (%.0f s)" % (os.path.relpath(jpath, ROOT), os.path.relpath(png, ROOT),
                                      "" if a.no_results_md else ", bench/RESULTS.md", R["elapsed_s"]))
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        log("logs kept in " + work)


if __name__ == "__main__":
    main()
