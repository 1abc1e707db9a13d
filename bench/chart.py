#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/chart.py RESULTS.jsonl OUT.png: the chart of docs/benchmarks.md.

Two panels against the number of subscribers, one line per server: delivered events/s at the
maximum rate (64 B events), and p99 latency at 1000 events/s (or, if not every server has
that, the highest fixed rate they all have). Points of runs that lost more than 1 % of the
events are hollow and labelled with the loss. Needs python3-matplotlib (Agg backend).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

ORDER = ["ragpulse", "node", "python"]
LABEL = {"ragpulse": "ragpulse (C)", "node": "Node.js socket.io", "python": "python-socketio"}
COLOR = {"ragpulse": "#d62728", "node": "#2ca02c", "python": "#1f77b4"}
MARK = {"ragpulse": "o", "node": "s", "python": "^"}
OFFSET = {"ragpulse": -13, "node": 6, "python": -3.5}  # label offsets (points), to keep them apart


def load(path):
    meta, rows = {}, []
    with open(path) as f:
        for ln in f:
            ln = ln.strip()
            if not ln:
                continue
            d = json.loads(ln)
            if "meta" in d:
                meta = d["meta"]
            elif "delivered_per_s" in d:
                rows.append(d)
    return meta, rows


def series(rows, prefix, payload, field):
    out = {}
    for r in rows:
        parts = r["config"].split("-")
        if parts[0] != prefix or parts[1] != f"p{payload}":
            continue
        out.setdefault(r["server"], []).append((int(parts[2]), r[field], r.get("loss_pct", 0)))
    return {s: sorted(v) for s, v in out.items()}


def human(v, _pos=None):
    for div, suf in ((1e6, "M"), (1e3, "k")):
        if v >= div:
            x = v / div
            return f"{x:.0f}{suf}" if x >= 10 or x == int(x) else f"{x:.1f}{suf}"
    return f"{v:g}"


def ms(v, _pos=None):
    if v >= 1000:
        return f"{v / 1000:.3g} s"
    return f"{v:.3g} ms"


def panel(ax, data, title, ylabel, fmt, legend="best"):
    servers = [s for s in ORDER if s in data] + sorted(s for s in data if s not in ORDER)
    positive = [p[1] for v in data.values() for p in v if p[1] > 0]
    floor = min(positive) / 4 if positive else 1.0
    for s in servers:
        pts = data[s]
        c = COLOR.get(s, "gray")
        xs = [p[0] for p in pts if p[1] > 0]
        ys = [p[1] for p in pts if p[1] > 0]
        ax.plot(xs, ys, "-", color=c, lw=2, label=LABEL.get(s, s))
        for x, y, loss in pts:
            lossy = loss > 1
            if y <= 0:  # nothing delivered: a mark on the floor of the panel
                ax.plot([x], [floor], "v", ms=9, color=c, mfc="white", mew=2)
                ax.annotate("nothing delivered", (x, floor), textcoords="offset points",
                            xytext=(9, OFFSET.get(s, -4)), fontsize=8, color=c)
                continue
            ax.plot([x], [y], MARK.get(s, "o"), ms=8, color=c, mfc="white" if lossy else c, mew=2)
            ax.annotate(fmt(y) + (f", {loss:.0f}% lost" if lossy else ""), (x, y),
                        textcoords="offset points", xytext=(9, OFFSET.get(s, -4)),
                        fontsize=8, color=c)
    top = max(positive) if positive else 10.0
    ax.set_ylim(floor / 1.5, top * 3)  # headroom for the labels of the highest points
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(sorted({p[0] for v in data.values() for p in v}))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:,.0f}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _p: ""))
    ax.yaxis.set_major_formatter(FuncFormatter(fmt))
    ax.set_xlabel("subscribers (one room)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=11)
    ax.grid(True, which="major", alpha=0.35)
    ax.grid(True, which="minor", alpha=0.1)
    lo, hi = ax.get_xlim()
    ax.set_xlim(lo, hi * 3)  # room for the labels of the last points
    ax.legend(loc=legend, fontsize=9)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: bench/chart.py RESULTS.jsonl OUT.png")
    meta, rows = load(sys.argv[1])
    tput = series(rows, "max", 64, "delivered_per_s")
    rate = None
    fixed = sorted({float(r["config"].split("-")[0][1:]) for r in rows
                    if r["config"].startswith("r") and r["config"].split("-")[1] == "p64"}, reverse=True)
    servers = {r["server"] for r in rows}
    for cand in ([1000.0] if 1000.0 in fixed else []) + fixed:
        s = series(rows, f"r{cand:g}", 64, "lat_p99_ms")
        if set(s) == servers:
            rate = cand
            break
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    if tput:
        panel(axes[0], tput, "Delivered events/s at the maximum rate (64 B, window 64)",
              "events delivered per second (all subscribers)", human, legend="lower left")
    if rate is not None:
        panel(axes[1], series(rows, f"r{rate:g}", 64, "lat_p99_ms"),
              f"p99 latency at {rate:g} events/s (64 B); hollow: > 1% lost",
              "p99 publish-to-receive latency", ms, legend="lower right")
    sub = f"{meta.get('nproc', '?')} cores ({meta.get('cpu', '?')}), loopback, {meta.get('date', '')}"
    fig.suptitle(f"ragpulse vs Node.js socket.io {meta.get('socket.io', '')} vs python-socketio "
                 f"{meta.get('python-socketio', '').split('-')[0]} ({meta.get('python_mode', '?')})  —  {sub}",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(sys.argv[2], dpi=100)


if __name__ == "__main__":
    main()
