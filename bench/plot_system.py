#!/usr/bin/env python3
"""Plots of a scripts/bench.sh run (gnuplot; PNG and SVG of each).

usage: plot_system.py RUN.csv [RUN-latency.jsonl|-] OUTBASE

Writes, for what the CSV holds:
  OUTBASE-rate.{png,svg}  delivered Mpps at max offered load, one panel per function (router,
                          full-table router, NAT, switch, LB, filter, stateful filter), the kernel and
                          the engine side by side in two fixed colours, engine/kernel written above
                          each pair, the instrument's own limit (the `none` DUT) as a dashed line
  OUTBASE-cost.{png,svg}  cost mode: ns per packet (per segment for TCP) per function, kernel and
                          engine side by side, kernel/engine (the engine's advantage) above each pair
  OUTBASE-latency.{png,svg}  cost mode: latency CDF per function at 50% and 90% of the zero-loss rate
                          and in the wake-up trial (log time axis)
"""
import csv
import json
import subprocess
import sys

KERNEL_COLOUR = "#1f77b4"  # blue, every kernel bar and line
ENGINE_COLOUR = "#ff7f0e"  # orange, every engine bar and line
FUNCS = [
    ("router", "linux-1route", "pktengine"),
    ("full-table router", "linux-fulltable", "pktengine-fulltable"),
    ("NAT", "linux-nat", "pktengine-nat"),
    ("switch", "linux-bridge", "pktengine-switch"),
    ("LB", "linux-lb", "pktengine-lb"),
    ("filter (1,000 rules)", "linux-filter", "pktengine-filter"),
    ("stateful filter", "linux-ct", "pktengine-ct"),
]


def gnuplot(script):
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def terminals(base, w, h):
    """(terminal line, output file) for the PNG and the SVG."""
    return [(f"set terminal pngcairo size {w},{h} noenhanced font ',10'", base + ".png"),
            (f"set terminal svg size {w},{h} noenhanced font 'sans,10'", base + ".svg")]


def pair_panel(title, ylabel, labels, kv, ev, limit=None, log=False):
    """One panel: per label a kernel bar and an engine bar, the ratio above the pair (log: a
    logarithmic value axis, for costs that span two orders of magnitude)."""
    data = "\n".join(f'"{l}" {k if k is not None else 0} {e if e is not None else 0}' for l, k, e in zip(labels, kv, ev))
    top = max([v for v in kv + ev + (limit or []) if v] + [1e-9])
    low = min([v for v in kv + ev if v] + [top])
    yr = (f"set logscale y\nset yrange [{low / 3}:{top * 3}]" if log else f"unset logscale y\nset yrange [0:{top * 1.3}]")
    s = [f"set title \"{title}\"", f"set ylabel \"{ylabel}\"", yr,
         "set style data histograms", "set style histogram clustered gap 1",
         "set style fill solid 0.9 border -1", "set boxwidth 0.9", "set grid ytics", "unset label", "unset arrow",
         "set key outside bottom center horizontal"]
    for i, (k, e, r) in enumerate(zip(kv, ev, ratios(kv, ev))):
        if r:
            y = max(k or 0, e or 0) * 1.5 if log else max(k or 0, e or 0) + top * 0.06
            s.append(f'set label "{r}" at {i},{y} center')
    # The instrument's limit per cluster (a short dashed line over each pair).
    for i, lim in enumerate(limit or []):
        if lim:
            s.append(f'set arrow from {i - 0.45},{lim} to {i + 0.45},{lim} nohead dt 2 lw 2 lc rgb "#555555"')
    s.append(f"$d << EOD\n{data}\nEOD")
    s.append(f'plot $d using 2:xtic(1) title "kernel" lc rgb "{KERNEL_COLOUR}", '
             f'$d using 3 title "engine" lc rgb "{ENGINE_COLOUR}"')
    return "\n".join(s)


RATIO = {"mode": "engine/kernel"}


def ratios(kv, ev):
    out = []
    for k, e in zip(kv, ev):
        if not k or not e:
            out.append("")
        elif RATIO["mode"] == "engine/kernel":
            out.append(f"{e / k:.2f}x")
        else:
            out.append(f"{k / e:.2f}x")
    return out


def rate_plot(rows, base, note):
    mx = [r for r in rows if r["kind"] == "max"]
    sizes = list(dict.fromkeys(r["size"] for r in mx))
    get = lambda d, s: next((float(r["rx_mpps"]) for r in mx if r["dut"] == d and r["size"] == s), None)
    funcs = [f for f in FUNCS if any(get(f[1], s) or get(f[2], s) for s in sizes)]
    if not funcs:
        return
    cols = min(4, len(funcs))
    nrows = (len(funcs) + cols - 1) // cols
    RATIO["mode"] = "engine/kernel"
    for term, out in terminals(base + "-rate", max(1100, 360 * cols), 340 * nrows + 60):
        s = [term, f'set output "{out}"',
             f'set multiplot layout {nrows},{cols} title "Delivered Mpps at max offered load, kernel vs engine '
             f'(engine/kernel above each pair; dashed: the instrument alone)\\n{note}"']
        for name, k, e in funcs:
            s.append(pair_panel(name, "Mpps", [f"{sz} B" for sz in sizes], [get(k, sz) for sz in sizes],
                                [get(e, sz) for sz in sizes], [get("none", sz) for sz in sizes]))
        s.append("unset multiplot")
        gnuplot("\n".join(s))
    print(f"plot_system: {base}-rate.png, .svg")


def cost_plot(rows, base, note):
    from cost_report import dut_ns  # the same cost definition as the report
    cost = {}
    for r in rows:
        if r["kind"] == "cost" and int(r["received"] or 0) and dut_ns(r) is not None:
            cost.setdefault(r["dut"], []).append(dut_ns(r) / int(r["received"]))
        if r["kind"] in ("tcp-recv", "tcp-send") and r.get("segments") and int(r["segments"]) and dut_ns(r) is not None:
            cost.setdefault((r["dut"], r["kind"]), []).append(dut_ns(r) / int(r["segments"]))
    mean = lambda v: sum(v) / len(v) if v else None
    labels, kv, ev = [], [], []
    for name, k, e in FUNCS:
        if k in cost or e in cost:
            labels.append(name); kv.append(mean(cost.get(k, []))); ev.append(mean(cost.get(e, [])))
    for kind, name in (("tcp-recv", "TCP segment, DUT sends"), ("tcp-send", "TCP segment, DUT receives")):
        k, e = cost.get(("linux-tcp", kind)), cost.get(("pktengine-tcp", kind))
        if k or e:
            labels.append(name); kv.append(mean(k or [])); ev.append(mean(e or []))
    if not labels:
        return
    RATIO["mode"] = "kernel/engine"
    for term, out in terminals(base + "-cost", max(900, 130 * len(labels)), 520):
        gnuplot("\n".join([term, f'set output "{out}"', "set xtics rotate by -20",
                           pair_panel(f"CPU time per packet on the DUT's own core (lower is better; kernel/engine "
                                      f"above each pair; log scale)\\n{note}", "ns per packet", labels, kv, ev, log=True)]))
    print(f"plot_system: {base}-cost.png, .svg")


def cdf(buckets):
    total = sum(b[2] for b in buckets)
    acc, pts = 0, []
    for lo, hi, c in buckets:
        acc += c
        pts.append((max(hi, 1) / 1e3, acc / total))
    return pts


def latency_plot(hists, base, note):
    h = {}
    for line in open(hists):
        x = json.loads(line)
        h[(x["dut"], x["kind"])] = x["buckets"]
    funcs = [f for f in FUNCS if any((d, k) in h for d in f[1:] for k in ("lat50", "lat90", "wake"))]
    if not funcs:
        return
    cols = min(4, len(funcs))
    nrows = (len(funcs) + cols - 1) // cols
    for term, out in terminals(base + "-latency", max(1100, 380 * cols), 340 * nrows + 60):
        s = [term, f'set output "{out}"',
             f'set multiplot layout {nrows},{cols} title "Latency CDF, DUT on its own core: kernel (blue) vs engine '
             f'(orange); solid @50%, dashed @90% of the zero-loss rate, dotted: wake-up trial\\n{note}"']
        for name, k, e in funcs:
            s += [f'set title "{name}"', "set logscale x", 'set xlabel "µs"', 'set ylabel "fraction ≤ x"',
                  "set yrange [0:1.02]", "set grid", "set key top left font ',8'", "unset label", "unset arrow"]
            plots = []
            for d, colour, who in ((k, KERNEL_COLOUR, "kernel"), (e, ENGINE_COLOUR, "engine")):
                for kind, dt in (("lat50", 1), ("lat90", 2), ("wake", 3)):
                    if (d, kind) not in h:
                        continue
                    data = "\n".join(f"{x} {y}" for x, y in cdf(h[(d, kind)]))
                    tag = f"{d.replace('-', '_')}_{kind}"
                    s.append(f"${tag} << EOD\n{data}\nEOD")
                    plots.append(f'${tag} using 1:2 with steps dt {dt} lw 2 lc rgb "{colour}" title "{who} {kind}"')
            s.append("plot " + ", ".join(plots))
        s.append("unset multiplot")
        gnuplot("\n".join(s))
    print(f"plot_system: {base}-latency.png, .svg")


def main():
    path, hists, base = sys.argv[1:4]
    note = sys.argv[4] if len(sys.argv) > 4 else ""
    rows = list(csv.DictReader(open(path)))
    rate_plot(rows, base, note)
    if any(r["kind"] == "cost" or r.get("segments") for r in rows):
        cost_plot(rows, base, note)
    if hists != "-":
        latency_plot(hists, base, note)


if __name__ == "__main__":
    sys.path.insert(0, __import__("os").path.dirname(__file__))
    main()
