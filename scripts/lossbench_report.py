#!/usr/bin/env python3
"""The tables, goals and plot script of scripts/lossbench.sh.

lossbench_report.py TRIALS.csv OUT.md PLOT_PREFIX NOTE

Reads every trial, writes the Markdown (goodput per direction and buffer, retransmissions and
stalls, the loss the router applied, the three goals of issue #21 marked pass/fail) and, for
gnuplot, PLOT_PREFIX.panels (one data file per panel, listed) and PLOT_PREFIX.gp (the plot
commands, without the terminal: the caller sets PNG or SVG).
"""
import csv
import sys

path, md, plot, note = sys.argv[1:5]
rows = list(csv.DictReader(open(path)))
DUTS = ["engine", "linux-nosack", "linux-sack"]
LABEL = {"engine": "engine (no SACK)", "linux-nosack": "kernel, SACK off", "linux-sack": "kernel, SACK on"}
duts = [d for d in DUTS if any(r["dut"] == d for r in rows)]
bufs = list(dict.fromkeys(r["buffer"] for r in rows))
dirs = [d for d in ("download", "upload") if any(r["direction"] == d for r in rows)]
rates = sorted(set(r["loss_pct"] for r in rows), key=float)


def cell(d, b, x, rate):
    return [r for r in rows if r["dut"] == d and r["buffer"] == b and r["direction"] == x and r["loss_pct"] == rate]


def median(v):
    v = sorted(v)
    if not v:
        return None
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def goodput(d, b, x, rate):
    """(median Mbit/s, all finished) of a cell, or (None, None)."""
    c = cell(d, b, x, rate)
    if not c:
        return None, None
    return median([float(r["goodput_mbps"]) for r in c]), all(r["finished"] == "1" for r in c)


def num(v):
    return None if v in ("", None) else float(v)


def stall(d, b, x, rate):
    v = [num(r["longest_stall_ms"]) for r in cell(d, b, x, rate)]
    v = [s for s in v if s is not None]
    return max(v) if v else None


def total(d, b, x, rate, k):
    v = [num(r[k]) for r in cell(d, b, x, rate)]
    v = [s for s in v if s is not None]
    return int(sum(v)) if v else None


def bufname(b):
    b = int(b)
    return f"{b // 1048576} MiB" if b % 1048576 == 0 else f"{b // 1024} KiB"


def fmt_gp(g, fin):
    if g is None:
        return "-"
    s = f"{g:,.0f}" if g >= 100 else f"{g:.1f}" if g >= 1 else f"{g:.3f}"
    return s if fin else s + " †"


reps = max((int(r["rep"]) for r in rows), default=0)
out = ["# TCP under loss: the engine vs the kernel (issue #21)\n"]
out.append(
    "One connection through a Linux router namespace that drops forwarded packets at random in both "
    "directions (nftables `numgen random`), client = the kernel's TCP (tcpbench), server = the DUT: the engine's "
    "[[tcp]] apps (no SACK), or tcpbench on the kernel's TCP with SACK off on both ends (`net.ipv4.tcp_sack=0`) or on. "
    "DUT buffers: the engine's `[tcp_stack] send_buffer = recv_buffer`; the kernel's SO_SNDBUF = SO_RCVBUF (fixed, "
    "doubled by the kernel). download = the DUT sends (bulk), upload = the DUT receives (discard). "
    f"Method and columns: bench/README.md (Loss benchmark). {note}; {reps} repetition(s) per cell.\n")
out.append("Goodput = transfer size / (connect to EOF or to the DUT's FIN), the median of the repetitions, Mbit/s; "
           "† = at least one repetition did not finish within the timeout (its goodput counts the bytes moved by then).\n")

# ---- goals -------------------------------------------------------------------------------
goals = []
if "engine" in duts and "linux-nosack" in duts:
    fails, n = [], 0
    for x in dirs:
        for b in bufs:
            for rate in rates:
                e, ef = goodput("engine", b, x, rate)
                k, kf = goodput("linux-nosack", b, x, rate)
                if e is None or k is None:
                    continue
                n += 1
                if e < k or not ef:
                    fails.append(f"{x} {bufname(b)} {rate}%: {fmt_gp(e, ef)} vs {fmt_gp(k, kf)}")
    goals.append(("At every loss rate the engine's goodput is at least the kernel's without SACK",
                  not fails and n > 0, f"{n - len(fails)} of {n} cells" + (f"; short: {'; '.join(fails)}" if fails else "")))
if "engine" in duts:
    fails, n = [], 0
    for x in dirs:
        for b in bufs:
            for rate in rates:
                if float(rate) > 2:
                    continue
                s = stall("engine", b, x, rate)
                if s is None:
                    continue
                n += 1
                if s > 1000:
                    fails.append(f"{x} {bufname(b)} {rate}%: {s:,.0f} ms")
    goals.append(("No single stall longer than 1 s at <= 2% loss (engine)", not fails and n > 0,
                  f"{n - len(fails)} of {n} cells" + (f"; longer: {'; '.join(fails)}" if fails else "")))
if "engine" in duts and "linux-sack" in duts:
    fails, n, parts = [], 0, []
    for x in dirs:
        for b in bufs:
            rate = next((r for r in rates if float(r) == 1.0), None)
            if rate is None:
                continue
            e, ef = goodput("engine", b, x, rate)
            k, kf = goodput("linux-sack", b, x, rate)
            if e is None or k is None:
                continue
            n += 1
            parts.append(f"{x} {bufname(b)}: {e / k:.2f}" if k else f"{x} {bufname(b)}: -")
            if not k or e < 0.5 * k or not ef:
                fails.append(x)
    goals.append(("At 1% loss at least half the kernel's goodput with SACK", not fails and n > 0,
                  f"engine / kernel-SACK: {'; '.join(parts) if parts else 'not measured'}"))
out.append("## Goals\n")
out.append("| goal | result | detail |")
out.append("|---|---|---|")
for g, ok, detail in goals:
    out.append(f"| {g} | {'**pass**' if ok else '**FAIL**'} | {detail} |")
out.append("")

# ---- goodput tables ----------------------------------------------------------------------
out.append("## Goodput, Mbit/s\n")
for x in dirs:
    for b in bufs:
        out.append(f"### {x} ({'the DUT sends' if x == 'download' else 'the DUT receives'}), buffers {bufname(b)}\n")
        head = ["loss %"] + [LABEL[d] for d in duts]
        ratios = [(a, c) for a, c in (("engine", "linux-nosack"), ("engine", "linux-sack")) if a in duts and c in duts]
        head += [f"engine / {LABEL[c]}" for _, c in ratios]
        out.append("| " + " | ".join(head) + " |")
        out.append("|---:|" + "---:|" * (len(head) - 1))
        for rate in rates:
            line = [rate]
            for d in duts:
                line.append(fmt_gp(*goodput(d, b, x, rate)))
            for a, c in ratios:
                ga, _ = goodput(a, b, x, rate)
                gc, _ = goodput(c, b, x, rate)
                line.append(f"{ga / gc:.2f}" if ga is not None and gc else "-")
            out.append("| " + " | ".join(line) + " |")
        out.append("")

# ---- retransmissions and stalls ------------------------------------------------------------
out.append("## Retransmissions and stalls\n")
out.append("Per cell, summed over the repetitions: the sender's retransmitted segments (kernel sender: "
           "TcpRetransSegs of its netns; engine sender: the `retransmits` of its `ctl stats` where the build has "
           "them (RTOs: `timeouts`), else its segments below the highest sequence sent, from the capture on the "
           "DUT's side of the router: the CSV's retrans_source says which), the sender's retransmission timeouts "
           "in brackets (kernel: TCPTimeouts); then the longest stall of all repetitions "
           "in ms (the receiver's cumulative ACK not advancing while data was outstanding) and how many stalls "
           "lasted 200 ms or more.\n")
for x in dirs:
    for b in bufs:
        out.append(f"### {x}, buffers {bufname(b)}\n")
        out.append("| loss % | " + " | ".join(f"{LABEL[d]}: retx [RTO] | stall ms (≥200 ms)" for d in duts) + " |")
        out.append("|---:|" + "---:|---:|" * len(duts))
        for rate in rates:
            line = [rate]
            for d in duts:
                c = cell(d, b, x, rate)
                if not c:
                    line += ["-", "-"]
                    continue
                rt = total(d, b, x, rate, "retrans")
                rto = total(d, b, x, rate, "rto")
                s = stall(d, b, x, rate)
                n200 = total(d, b, x, rate, "stalls_over_200ms")
                line.append(("-" if rt is None else f"{rt:,}") + ("" if rto is None else f" [{rto}]"))
                line.append("-" if s is None else f"{s:,.0f} ({n200})")
            out.append("| " + " | ".join(line) + " |")
        out.append("")

# ---- the loss applied, negotiated options ----------------------------------------------------
out.append("## Checks\n")
out.append("Loss the router applied (dropped / forwarded packets, all trials of a rate):\n")
out.append("| loss % | packets | dropped | measured % |")
out.append("|---:|---:|---:|---:|")
for rate in rates:
    p = sum(int(r["router_packets"] or 0) for r in rows if r["loss_pct"] == rate)
    dr = sum(int(r["router_dropped"] or 0) for r in rows if r["loss_pct"] == rate)
    out.append(f"| {rate} | {p:,} | {dr:,} | {100 * dr / p if p else 0:.3f} |")
out.append("")
for d in duts:
    rs = [r for r in rows if r["dut"] == d]
    sack = sorted(set(r["sack"] for r in rs if r["sack"]))
    ts = sorted(set(r["timestamps"] for r in rs if r["timestamps"]))
    fin = sum(r["finished"] == "1" for r in rs)
    errs = sum(int(r["errors"] or 0) for r in rs)
    capd = sum(int(r["capture_dropped"] or 0) for r in rs)
    out.append(f"- {LABEL[d]}: SACK negotiated {'/'.join(sack) or '-'}, timestamps {'/'.join(ts) or '-'} (both SYNs, "
               f"from the capture); {fin} of {len(rs)} trials finished, {errs} client errors; capture drops {capd}.")
if "engine" in duts:
    parts = []
    for x in dirs:
        for b in bufs:
            n = sum(int(r.get("engine_tx_drops") or 0) for r in rows if r["dut"] == "engine" and r["direction"] == x and r["buffer"] == b)
            parts.append(f"{x} {bufname(b)}: {n:,}")
    out.append(f"- The engine's own transmit drops (`ctl stats` drops tx / tx-ring-full: segments its AF_XDP TX ring "
               f"did not take, lost before the router and retransmitted like any loss), all rates: {'; '.join(parts)}.")
out.append("\nEvery trial: the CSV beside this file.\n")
open(md, "w").write("\n".join(out))
print("\n".join(out))

# ---- plot -------------------------------------------------------------------------------------
panels = []
for x in dirs:
    for b in bufs:
        f = f"{plot}-{x}-{b}.dat"
        with open(f, "w") as o:
            o.write("i rate " + " ".join(duts) + "\n")
            for i, rate in enumerate(rates):
                vals = []
                for d in duts:
                    g, _ = goodput(d, b, x, rate)
                    vals.append("?" if g is None or g <= 0 else f"{g:.4f}")
                o.write(f"{i} {rate} " + " ".join(vals) + "\n")
        panels.append((x, b, f))
if panels:
    open(plot + ".panels", "w").write("\n".join(p[2] for p in panels) + "\n")
    cols = 2 if len(panels) > 1 else 1
    lines = [
        'set datafile missing "?"',
        f'set multiplot layout {(len(panels) + cols - 1) // cols},{cols} title "TCP goodput of one connection vs random loss (both directions), median"',
        "set logscale y", "set grid", "set key bottom left", "set ylabel \"goodput, Mbit/s (log)\"",
        "set xlabel \"loss rate, % (per packet, each direction)\"", "set offsets 0.2, 0.2, 0, 0",
    ]
    styles = {"engine": "lw 2 pt 7 lc rgb '#d62728'", "linux-nosack": "lw 2 pt 5 lc rgb '#1f77b4'",
              "linux-sack": "lw 2 pt 9 lc rgb '#2ca02c' dt 2"}
    for x, b, f in panels:
        lines.append(f'set title "{x} ({"DUT sends" if x == "download" else "DUT receives"}), buffers {bufname(b)}"')
        plots = [f'"{f}" using 1:{3 + i}:xtic(2) with linespoints {styles[d]} title "{LABEL[d]}"' for i, d in enumerate(duts)]
        lines.append("plot " + ", ".join(plots))
    lines.append("unset multiplot")
    open(plot + ".gp", "w").write("\n".join(lines) + "\n")
