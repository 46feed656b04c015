#!/usr/bin/env python3
"""Writes docs/benchmarks.md and its plots from bench/run's results.

Input: one chat-loadgen JSON result per run, named <variant>.<system>.<repeat>.json.
Every figure is the median over the repeats; the ratio is project / peer. Called by bench/run;
can be re-run by hand on a results directory: bench/report.py --results DIR --doc FILE --plots DIR.
"""
import argparse
import glob
import json
import os
import platform
import re
import statistics
import subprocess
from collections import defaultdict

KNEE_P99_MS = 50.0


def load(results_dir, failed=()):
    """Runs whose (variant, system, repeat) is in `failed` (a server died) are left out."""
    runs = defaultdict(list)  # (variant, system) -> [result]
    for path in sorted(glob.glob(os.path.join(results_dir, "*.json"))):
        name = os.path.basename(path)[: -len(".json")]
        parts = name.rsplit(".", 2)
        if len(parts) != 3:
            continue
        variant, system, rep = parts
        if (variant, system, rep) in failed:
            continue
        try:
            with open(path) as f:
                runs[(variant, system)].append(json.load(f))
        except (OSError, ValueError):
            continue
    return runs


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def field(results, *path):
    out = []
    for r in results:
        v = r
        for p in path:
            v = v.get(p) if isinstance(v, dict) else None
        out.append(v)
    return out


def fmt(v, unit="", digits=1):
    if v is None:
        return "n/a"
    if isinstance(v, float) and abs(v) >= 1000 and not unit.startswith("ms"):
        return f"{v:,.0f}{unit}"
    return f"{v:,.{digits}f}{unit}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}x"


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001 - best effort machine description
        return ""


def machine():
    model = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip() or platform.processor()
    mem = sh("awk '/MemTotal/ {printf \"%.0f GiB\", $2/1048576}' /proc/meminfo")
    gxx = sh("g++ --version | head -1")
    node = sh("node --version")
    redis = sh("redis-server --version | cut -d' ' -f1-3")
    pg = sh("ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1 | xargs -I{} {}/postgres --version")
    lines = [
        f"- CPU: {model}, {os.cpu_count()} cores; memory {mem}; kernel {platform.release()}",
        f"- open files per process: {sh('ulimit -n')} (hard {sh('ulimit -Hn')})",
        f"- {gxx}; Node.js {node}; {redis}; {pg}",
        "- servers of the system under test pinned to core 0 (`taskset -c 0`), chat-loadgen to core 1",
        "- PostgreSQL durable: `fsync=on`, `synchronous_commit=on` (deploy/local-cluster up, durable by default)",
    ]
    return "\n".join(lines)


def summary_of(runs, variant, system):
    rs = runs.get((variant, system), [])
    if not rs:
        return None
    return {
        "n": len(rs),
        "delivered_per_s": med(field(rs, "delivered_per_s")),
        "sent_per_s": med(field(rs, "sent_per_s")),
        "offered_per_s": med(field(rs, "offered_per_s")),
        "p50": med([v / 1000 if v is not None else None for v in field(rs, "latency", "p50_us")]),
        "p90": med([v / 1000 if v is not None else None for v in field(rs, "latency", "p90_us")]),
        "p99": med([v / 1000 if v is not None else None for v in field(rs, "latency", "p99_us")]),
        "p999": med([v / 1000 if v is not None else None for v in field(rs, "latency", "p999_us")]),
        "max": med([v / 1000 if v is not None else None for v in field(rs, "latency", "max_us")]),
        "lost": sum(v or 0 for v in field(rs, "lost")),
        "dup": sum(v or 0 for v in field(rs, "duplicates")),
        "ooo": sum(v or 0 for v in field(rs, "out_of_order")),
        "errors": sum(v or 0 for v in field(rs, "send_errors")),
        "cpu": med(field(rs, "servers_cpu_cores")),
        "rss_per_conn": med(field(rs, "rss_per_connection_bytes")),
        "connected": med(field(rs, "connected")),
        "catch_up_ms": med(field(rs, "resync", "catch_up_ms")),
        "max_rss": med([max((p.get("rss_bytes") or 0) for p in r.get("processes", [])) if r.get("processes") else None
                        for r in rs]),
        "runs": rs,
    }


def median_run(rs, key=lambda r: (r.get("latency") or {}).get("p99_us", 0)):
    ordered = sorted(rs, key=key)
    return ordered[len(ordered) // 2] if ordered else None


def write_plots(runs, plots_dir):
    """Returns the list of PNG names written (relative to plots_dir)."""
    written = []
    if not sh("command -v gnuplot"):
        return written
    os.makedirs(plots_dir, exist_ok=True)
    colors = {"project": "#1f77b4", "peer": "#d62728"}
    # 1. Latency distribution at 2k msg/s (the run with the median p99 of each system).
    series = []
    for system in ("project", "peer"):
        r = median_run(runs.get(("latency-2k", system), []))
        if not r or not r.get("latency", {}).get("cdf"):
            continue
        path = os.path.join(plots_dir, f"latency-2k.{system}.dat")
        with open(path, "w") as f:
            for us, q in r["latency"]["cdf"]:
                if q >= 1.0:
                    q = 1.0 - 0.5 / max(1, r["latency"]["count"])
                f.write(f"{us / 1000.0} {q}\n")
        series.append((system, path))
    if series:
        png = "latency-2k.png"
        plot = ", ".join(
            f"'{p}' using 1:(-log10(1-$2)) with steps lw 2 lc rgb '{colors[s]}' title '{s}'" for s, p in series)
        script = f"""
set terminal pngcairo size 900,540 font 'sans,11'
set output '{os.path.join(plots_dir, png)}'
set title 'Send-to-deliver latency distribution, 1:1 open loop at 2,000 msg/s'
set logscale x
set xlabel 'latency (ms)'
set ylabel 'percentile'
set ytics ('0%%' 0, '90%%' 1, '99%%' 2, '99.9%%' 3, '99.99%%' 4)
set yrange [0:4.2]
set grid
set key left top
plot {plot}
"""
        if run_gnuplot(script):  # gnuplot wants %% in tic labels
            written.append(png)
    # 2. Throughput / latency curve from the open-loop runs.
    series = []
    for system in ("project", "peer"):
        pts = []
        for (variant, sys_), _ in runs.items():
            if sys_ != system or not variant.startswith("open-"):
                continue
            s = summary_of(runs, variant, system)
            if s and s["delivered_per_s"] and s["p99"] is not None:
                pts.append((s["offered_per_s"] or 0, s["delivered_per_s"], s["p50"], s["p99"]))
        if not pts:
            continue
        pts.sort()
        path = os.path.join(plots_dir, f"open-loop.{system}.dat")
        with open(path, "w") as f:
            for offered, delivered, p50, p99 in pts:
                f.write(f"{offered} {delivered} {max(p50, 0.01)} {max(p99, 0.01)}\n")
        series.append((system, path))
    if series:
        png = "throughput-latency.png"
        plot = ", ".join(
            f"'{p}' using 2:4 with linespoints lw 2 pt 7 lc rgb '{colors[s]}' title '{s} p99', "
            f"'{p}' using 2:3 with linespoints lw 1 dt 2 pt 6 lc rgb '{colors[s]}' title '{s} p50'"
            for s, p in series)
        script = f"""
set terminal pngcairo size 900,540 font 'sans,11'
set output '{os.path.join(plots_dir, png)}'
set title '1:1 open loop: delivered rate vs send-to-deliver latency (offered 2k..32k msg/s)'
set logscale y
set xlabel 'delivered messages/s'
set ylabel 'latency (ms)'
set grid
set key left top
set arrow from graph 0, first {KNEE_P99_MS} to graph 1, first {KNEE_P99_MS} nohead dt 3 lc rgb '#888888'
plot {plot}
"""
        if run_gnuplot(script):
            written.append(png)
    return written


def run_gnuplot(script):
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True, capture_output=True, timeout=60)
        return True
    except Exception:  # noqa: BLE001
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--commands")
    ap.add_argument("--skipped")
    ap.add_argument("--failed")
    ap.add_argument("--doc", required=True)
    ap.add_argument("--plots", required=True)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()

    failed_lines = open(a.failed).read().split("\n") if a.failed and os.path.exists(a.failed) else []
    failed_lines = [f for f in failed_lines if f.strip()]
    failed = {tuple(f.split()[:3]) for f in failed_lines}
    runs = load(a.results, failed)
    variants = sorted({v for v, _ in runs}, key=lambda v: (v.split("-")[0], int(re.sub(r"\D", "", v) or 0), v))
    S = {(v, s): summary_of(runs, v, s) for v in variants for s in ("project", "peer")}

    def get(v, s, k):
        x = S.get((v, s))
        return x[k] if x else None

    # Headline figures.
    rows = []

    def row(name, proj, peer, unit, target, met):
        rows.append((name, fmt(proj, unit), fmt(peer, unit), ratio(proj, peer), target,
                     "n/a" if met is None else ("yes" if met else "**no**")))

    for v in [x for x in variants if x.startswith("idle-")]:
        pj, pe = get(v, "project", "rss_per_conn"), get(v, "peer", "rss_per_conn")
        pj_k = pj / 1024 if pj is not None else None
        pe_k = pe / 1024 if pe is not None else None
        row(f"user-space memory per idle connection ({v[5:]})", pj_k, pe_k, " KiB", "<= 3 KiB",
            None if pj_k is None else pj_k <= 3)
        cj, ce = get(v, "project", "cpu"), get(v, "peer", "cpu")
        row(f"idle CPU of all servers ({v[5:]} connections)", cj * 100 if cj is not None else None,
            ce * 100 if ce is not None else None, " % core", "< 5 %" if v == "idle-100k" else "",
            None if (cj is None or v != "idle-100k") else cj < 0.05)

    sat = {}
    for s in ("project", "peer"):
        vals = [get(v, s, "delivered_per_s") for v in variants if v.startswith("dm-closed")]
        vals = [x for x in vals if x is not None]
        sat[s] = max(vals) if vals else None
    row("1:1 saturated (closed loop, best of k=1,4), msg/s", sat["project"], sat["peer"], "", ">= peer",
        None if None in sat.values() else sat["project"] >= sat["peer"])

    # Closed loop keeps at most k messages per conversation in flight; open loop does not, and a busy
    # conversation's messages share one commit. The highest rate delivered at any offered rate is the
    # other reading of "saturated".
    top = {}
    for s in ("project", "peer"):
        vals = [get(v, s, "delivered_per_s") for v in variants if v.startswith("open-")]
        vals = [x for x in vals if x is not None]
        top[s] = max(vals) if vals else None
    row("1:1 highest delivered rate in open loop (any offered rate), msg/s", top["project"], top["peer"], "",
        ">= peer", None if None in top.values() else top["project"] >= top["peer"])

    knee = {}
    for s in ("project", "peer"):
        best = None
        for v in variants:
            if not v.startswith("open-"):
                continue
            p99, off, dl = get(v, s, "p99"), get(v, s, "offered_per_s"), get(v, s, "delivered_per_s")
            if p99 is not None and p99 <= KNEE_P99_MS and dl and off and dl >= 0.95 * off:
                best = max(best or 0, off)
        knee[s] = best
    row(f"1:1 open-loop knee (highest offered rate with p99 <= {KNEE_P99_MS:.0f} ms), msg/s", knee["project"],
        knee["peer"], "", ">= 2x peer",
        None if None in knee.values() else knee["project"] >= 2 * knee["peer"])

    over = None
    if sat["project"]:
        cands = [v for v in variants if v.startswith("open-") and get(v, "project", "offered_per_s")
                 and get(v, "project", "offered_per_s") >= 2 * sat["project"]]
        if cands:
            v = min(cands, key=lambda x: get(x, "project", "offered_per_s"))
            off, dl = get(v, "project", "offered_per_s"), get(v, "project", "delivered_per_s")
            over = (v, off, dl)
    if over:
        pe_dl, pe_off = get(over[0], "peer", "delivered_per_s"), get(over[0], "peer", "offered_per_s")
        row(f"delivered at >= 2x saturation offered ({over[1]:,.0f} msg/s), % of offered",
            100 * over[2] / over[1], 100 * pe_dl / pe_off if pe_dl and pe_off else None, " %", ">= 90 %",
            over[2] >= 0.9 * over[1])
        # The same runs read as goodput: what each system still delivers under that overload, as a share of
        # its own saturated (closed-loop) rate. Backpressure keeps it near 100 %; collapse takes it towards 0.
        row(f"goodput at that offered rate, % of the system's own saturated rate",
            100 * over[2] / sat["project"], 100 * pe_dl / sat["peer"] if pe_dl and sat["peer"] else None, " %",
            ">= 90 %", over[2] >= 0.9 * sat["project"])
    else:
        row("delivered at 2x saturation offered", None, None, "", ">= 90 %", None)

    fj, fe = get("fanout-500", "project", "delivered_per_s"), get("fanout-500", "peer", "delivered_per_s")
    row("500-member group deliveries/s", fj, fe, "", ">= 2x peer", None if None in (fj, fe) else fj >= 2 * fe)
    for k, label in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9")):
        pj, pe = get("latency-2k", "project", k), get("latency-2k", "peer", k)
        target, met = "", None
        if k == "p99":
            target, met = "<= peer", None if None in (pj, pe) else pj <= pe
        if k == "p999":
            target, met = "<= peer / 2", None if None in (pj, pe) else pj <= pe / 2
        row(f"send-to-deliver at 2k msg/s, {label}", pj, pe, " ms", target, met)
    rj = get("resync-10k", "project", "catch_up_ms")
    row("resync of 10k missed messages (connect + list + pages)", rj, None, " ms", "< 1000 ms",
        None if rj is None else rj < 1000)
    hj = get("idle-100k", "project", "connected")
    if hj is not None:
        row("idle connections held (100k run)", hj, None, "", "100,000", hj >= 100000)

    # Detail table.
    detail = []
    for v in variants:
        for s in ("project", "peer"):
            x = S.get((v, s))
            if not x:
                continue
            if v.startswith("idle"):
                detail.append(f"| {v} | {s} | {x['n']} | connected {fmt(x['connected'], '', 0)} | "
                              f"{fmt((x['rss_per_conn'] or 0) / 1024, ' KiB/conn')} | | | | | "
                              f"{fmt((x['cpu'] or 0) * 100, ' %')} | {x['lost']} / {x['dup']} |")
            elif v.startswith("resync"):
                r = x["runs"][0].get("resync", {})
                detail.append(f"| {v} | {s} | {x['n']} | catch-up {fmt(x['catch_up_ms'], ' ms')} | "
                              f"{r.get('conversations', 'n/a')} conversations, {r.get('pages', 'n/a')} pages | | | | | | "
                              f"{x['lost']} / {x['dup']} |")
            else:
                detail.append(
                    f"| {v} | {s} | {x['n']} | {fmt(x['delivered_per_s'], '')} | {fmt(x['offered_per_s'] or None, '')} | "
                    f"{fmt(x['p50'], ' ms', 2)} | {fmt(x['p99'], ' ms', 2)} | {fmt(x['p999'], ' ms', 2)} | "
                    f"{fmt(x['max'], ' ms', 1)} | {fmt((x['cpu'] or 0) * 100, ' %')} | {x['lost']} / {x['dup']} |")

    plots = write_plots(runs, a.plots)
    rel_plots = os.path.relpath(a.plots, os.path.dirname(os.path.abspath(a.doc)))

    commands = []
    if a.commands and os.path.exists(a.commands):
        seen = set()
        for line in open(a.commands):
            m = re.search(r"--label (\S+)", line)
            key = (m.group(1) if m else line, "project" if "--protocol project" in line else "peer")
            if key in seen:
                continue
            seen.add(key)
            commands.append(re.sub(r" --pid \S+", "", line.strip()) + " --pid NAME=PID...")
    skipped = open(a.skipped).read().split("\n") if a.skipped and os.path.exists(a.skipped) else []
    skipped = [s for s in skipped if s.strip()]

    out = []
    out.append("# Benchmarks: the project vs. a socket.io + Redis peer\n")
    out.append("Generated by `bench/run` (`bench/report.py`); do not edit by hand, re-run instead. "
               "Every figure is the median over the repeats; **ratio = project / peer**.\n")
    out.append("## Machine\n")
    out.append(machine() + "\n")
    out.append("## Systems\n")
    out.append("- **project**: `deploy/local-cluster up --gateways 2 --chat-shards 2` (gateways, account, "
               "presence, chat and group services, PostgreSQL, Redis), default limits. A send is acknowledged "
               "after its PostgreSQL commit.\n"
               "- **peer**: `bench/peers/socketio/start` — two Node.js socket.io 4 servers with "
               "`@socket.io/redis-adapter` and one Redis; a room per user and per group, acks on sends, default "
               "options, stores nothing.\n"
               "- **load**: `chat-loadgen` (bench/loadgen), the same binary for both: the project's binary protobuf "
               "protocol (`chat.v1.proto`) and socket.io v4 over engine.io v4 WebSocket framing.\n")
    out.append("## Headline figures\n")
    out.append("| figure | project | peer | ratio | target | met |\n|---|---|---|---|---|---|")
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    out.append("")
    if plots:
        out.append("## Plots\n")
        for p in plots:
            out.append(f"![{p}]({rel_plots}/{p})\n")
    out.append("## Every run (medians)\n")
    out.append("| variant | system | runs | delivered/s | offered/s | p50 | p99 | p99.9 | max | servers CPU | "
               "lost / dup |\n|---|---|---|---|---|---|---|---|---|---|---|")
    out.extend(detail)
    out.append("")
    out.append("## How each figure is measured\n")
    out.append(
        "- **Latency** is send-to-deliver: the sender writes its intended send time (steady clock, same machine) "
        "into the body; the receiver subtracts it on arrival. In open loop the intended time is the scheduled "
        "time, so a late sender does not hide queueing (no coordinated omission). Percentiles come from a "
        "log-bucket histogram (64 sub-buckets per power of two, < 1.6 % error).\n"
        "- **Throughput** is deliveries arriving inside the measured window divided by its length (after a "
        "warm-up); **saturated** is closed loop: k messages in flight per sender, where a message stays in flight "
        "until it is both acknowledged and delivered (pacing on the acknowledgement alone would let a system that "
        "acknowledges before delivering queue without bound); **open loop** uses Poisson "
        "arrivals per independent sender at a fixed total offered rate.\n"
        "- **Checks**: every message carries (sender stream, sequence); receivers count lost (acked but never "
        "delivered after the drain), duplicated and out-of-order messages (project: by the server's "
        "per-conversation seq; peer: by the sender's sequence).\n"
        "- **Memory per idle connection**: (RSS of the connection-holding processes after N idle authenticated "
        "connections − before) / N (project: gateways; peer: both Node processes).\n"
        "- **CPU** is utime+stime from /proc of every server process and its children (PostgreSQL backends) "
        "over the measured window, in cores.\n"
        "- **Resync**: the client goes offline, friends send 10,000 messages across its conversations, then "
        "it reconnects and is timed through `list_conversations` and `get_history` paging until nothing is "
        "missing. The peer stores nothing, so it has no equivalent.\n")
    out.append("## Exact commands\n")
    out.append("```\nbench/run            # this page\nbench/run --quick    # CI smoke test\n```\n")
    if commands:
        out.append("Load generator runs (first repeat of each; server pids elided):\n")
        out.append("```")
        out.extend(commands)
        out.append("```\n")
    if failed_lines:
        out.append("## Runs left out (a server died during the run)\n")
        out.extend(f"- {f}" for f in failed_lines)
        out.append("")
    if skipped:
        out.append("## Skipped (time budget)\n")
        out.extend(f"- {s}" for s in skipped)
        out.append("")
    out.append("## What limits each figure\n")
    out.append("See the notes below (kept by hand in bench/notes.md and copied here when present).\n")
    notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "notes.md")
    if os.path.exists(notes):
        out.append(open(notes).read())
    with open(a.doc, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
