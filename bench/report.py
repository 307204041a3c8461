"""Turns bench/run's result lines into bench/RESULTS.md: medians per test
and server, and the ratios Bulwark/Unbound and, for the cold runs, which
Knot Resolver joins, Bulwark/Knot."""
import datetime
import platform
import statistics
import subprocess
import sys

COLS = ["qps", "us_per_q", "p50_ms", "p99_ms", "avg_ms", "upstream_per_name", "rss_kb"]


def num(v):
    try:
        return float(v)
    except ValueError:
        return None


def read_runs(path):
    """Each test and server's rows, in the order of the rounds."""
    runs = {}
    order = []
    for line in open(path):
        f = line.split()
        if len(f) < 3:
            continue
        key = (f[0], f[1])
        if f[0] not in order:
            order.append(f[0])
        vals = [num(v) for v in f[2:]] + [None] * len(COLS)
        runs.setdefault(key, []).append(vals[: len(COLS)])
    return order, runs


def medians(runs):
    out = {}
    for key, rows in runs.items():
        med = []
        for i in range(len(COLS)):
            xs = [r[i] for r in rows if r[i] is not None]
            med.append(statistics.median(xs) if xs else None)
        out[key] = (med, len(rows))
    return out


def paired(runs, label, col, peer="unbound"):
    """Bulwark/peer of col round by round: the servers ran back to back, so
    each ratio shares the machine's state of its round."""
    i = COLS.index(col)
    b, u = runs.get((label, "bulwark"), []), runs.get((label, peer), [])
    return [x[i] / y[i] for x, y in zip(b, u) if x[i] is not None and y[i]]


def ratio(a, b):
    return f"{a / b:.2f}×" if a is not None and b else "–"


def fmt(v):
    if v is None:
        return "–"
    return f"{v:,.0f}" if v >= 1000 else f"{v:.3g}"


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def main():
    results, commands, rounds, cold_rounds, duration = sys.argv[1:6]
    order, runs = read_runs(results)
    med = medians(runs)
    print("# Bulwark vs Unbound (and Knot Resolver, cold runs): bench/run results\n")
    print(f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    print(f"- machine: {sh('nproc')} cores, {cpu}, kernel {platform.release()}")
    print(f"- Unbound: {sh('unbound -V | head -1')}; Knot Resolver: {sh('kresd --version')}; "
          f"NSD: {sh('nsd -v 2>&1 | head -1')}; "
          f"dnsperf: {sh('dnsperf -H 2>&1 | grep Version')}")
    commit = sh("git rev-parse --short HEAD")
    print(f"- Bulwark: commit {commit}")
    print(f"- medians of {rounds} rounds ({cold_rounds} for the cold runs), each starting one server further along "
          f"(A B C, B C A, C A B), {duration} s per cache-hit run\n")
    print("Tests: `capped` = resolver on core 1 with a cgroup quota of 50% of it, dnsperf on core 0; "
          "`uncapped` = same pinning, no quota; `50k` = fixed 50,000 qps (dnsperf -Q); "
          "`cold-flat` = 10,000 names of one zone from a cold cache; `cold-deleg` = 10,000 names over "
          "2,000 delegated zones; `rss100k` = RSS after 100,000 names. `plain` = validation off, "
          "`dnssec` = validation on over a signed copy (ECDSA P-256, same trust anchor). "
          "qps for cold runs is names/s. µs/q is the server's utime+stime per answered query from "
          "/proc/PID/stat. p50/p99 come from dnsperf -v per-query latencies (only 50k and cold runs, "
          "since -v slows dnsperf); avg is dnsperf's average latency.\n")
    print("| test | metric | Bulwark | Unbound | Knot | Bulwark/Unbound | Bulwark/Knot |")
    print("|---|---|---|---|---|---|---|")
    for label in order:
        b = med.get((label, "bulwark"))
        u = med.get((label, "unbound"))
        if not b or not u:
            continue
        k = med.get((label, "knot"), ([None] * len(COLS), 0))
        for i, col in enumerate(COLS):
            bv, uv, kv = b[0][i], u[0][i], k[0][i]
            if bv is None and uv is None:
                continue
            print(f"| {label} | {col} | {fmt(bv)} | {fmt(uv)} | {fmt(kv)} | {ratio(bv, uv)} | {ratio(bv, kv)} |")
    print("\nRound by round, Bulwark/Unbound and Bulwark/Knot (the servers of a round ran back "
          "to back; the median of these ratios is less exposed to a slow round than the ratio "
          "of medians):\n")
    print("| test | metric | versus | per round | median |")
    print("|---|---|---|---|---|")
    for label in order:
        cols = ["qps"]
        if label.endswith(("-capped", "-uncapped")):
            cols = ["us_per_q"]
        elif label.endswith("-50k"):
            cols = ["us_per_q", "p99_ms"]
        for col in cols:
            for peer in ("unbound", "knot"):
                rs = paired(runs, label, col, peer)
                if len(rs) > 1:
                    print(f"| {label} | {col} | {peer} | {', '.join(f'{r:.2f}' for r in rs)} | {statistics.median(rs):.2f}× |")
    print("\n## Commands\n")
    print("Run as root: `bench/run` (ROUNDS, DURATION, VALIDATION=no to skip the signed phase, "
          "ONLY=cold or ONLY=rss100k for one part, printed and not written here). "
          "Exact commands it ran ($WORK is its temporary directory):\n")
    print("```")
    print(open(commands).read().rstrip())
    print("```")


main()
