#!/usr/bin/env python3
"""The Markdown report of a cost-mode run of scripts/bench.sh (BENCH_MODE=cost).

usage: cost_report.py RUN.csv RUN-latency.jsonl OUT.md "NOTE"

Reads the trials' CSV (cost_* columns: ns over the trial) and writes, per DUT and function:
the CPU time per packet the DUT cost (its threads; the engine's worker by its busy time), the
busy time of the DUT's core from /proc/stat (which includes any other load of the machine),
the implied packets per second per core (1e9 / cost), the engine's ratio to the kernel doing the
same job (from the same run), the flatness of the cost across the offered rates, latency at 50%
and 90% of the zero-loss rate, the wake-up latency, TCP per segment and per connection, and
the max-rate table as a second view.
"""
import csv
import sys

# (function, kernel DUT, engine DUT): the pairs the report compares.
FUNCS = [
    ("router, 1 route", "linux-1route", "pktengine"),
    ("router, full table", "linux-fulltable", "pktengine-fulltable"),
    ("NAT", "linux-nat", "pktengine-nat"),
    ("switch", "linux-bridge", "pktengine-switch"),
    ("LB", "linux-lb", "pktengine-lb"),
    ("filter, 1,000 rules", "linux-filter", "pktengine-filter"),
    ("filter, 1,000 rules as nft sets", "linux-filter-sets", "pktengine-filter"),
    ("stateful filter", "linux-ct", "pktengine-ct"),
]


def num(r, k):
    v = r.get(k)
    return float(v) if v not in (None, "") else None


def dut_ns(r):
    """The CPU time (ns) the DUT spent in a trial: its napi threads, plus the engine worker's
    busy time (engine DUTs) or the DUT's processes (kernel DUTs: the linux-tcp servers)."""
    napi, proc, busy = num(r, "cost_napi_ns"), num(r, "cost_proc_ns"), num(r, "cost_busy_ns")
    if napi is None:
        return None
    if r["dut"].startswith("pktengine"):
        return napi + (busy or 0)
    return napi + (proc or 0)


def main():
    path, hists, md, note = sys.argv[1:5]
    rows = list(csv.DictReader(open(path)))
    duts = list(dict.fromkeys(r["dut"] for r in rows))
    cost = {}  # dut -> [(offered, received, loss, dut ns/pkt, cpu ns/pkt, engine all-threads ns/pkt)]
    for r in rows:
        if r["kind"] != "cost":
            continue
        rx = int(r["received"] or 0)
        d, c = dut_ns(r), num(r, "cost_cpu_ns")
        cost.setdefault(r["dut"], []).append((
            float(r["offered_pps"]), rx, float(r["loss"]),
            d / rx if rx and d is not None else None,
            c / rx if rx and c is not None else None,
            (num(r, "cost_napi_ns") + num(r, "cost_proc_ns")) / rx if rx and num(r, "cost_proc_ns") is not None else None,
        ))

    def mean_cost(d, i=3):
        v = [t[i] for t in cost.get(d, []) if t[i] is not None]
        return sum(v) / len(v) if v else None

    def flat(d):
        v = [t[3] for t in cost.get(d, []) if t[3] is not None]
        return f"{v[-1] / v[0]:.2f}" if len(v) >= 2 and v[0] > 0 else "-"

    def get(d, k):
        return next((r for r in rows if r["dut"] == d and r["kind"] == k), None)

    f1 = lambda v: "-" if v is None else f"{v:.0f}"
    mpps = lambda v: "-" if not v else f"{1e3 / v:.2f}"
    out = [f"# System benchmark, cost mode: CPU time per packet of each DUT\n", f"{note}.\n"]
    out.append("Cost = CPU time the DUT spent over the packets the sink received (64 B frames): the run time "
               "(schedstat) of the DUT-side threaded-NAPI kernel threads napi/di-N and napi/de-N (the kernel "
               "DUTs' whole forward path, the engine's XDP program and copy-mode AF_XDP receive), plus the engine "
               "worker's busy time (`busy_ns`: loop iterations that found work, its transmit syscalls included) "
               "or the kernel TCP servers' run time. Mpps per core = 1e3 / (ns per packet). Engine advantage = "
               "kernel cost / engine cost, both from this run. 'DUT core' = the DUT core's busy time from "
               "/proc/stat over the same packets: everything that ran on that core, other users' load "
               "included; for the engine in adaptive mode it also holds the worker's empty spins before it "
               "sleeps.\n")
    out.append("## Cost per packet: engine vs kernel\n")
    out.append("| function | kernel DUT | kernel ns/pkt | kernel Mpps/core | engine ns/pkt | engine Mpps/core | engine advantage (kernel/engine) | flat? kernel, engine (cost at the 2nd rate / 1st) |")
    out.append("|---|---|---:|---:|---:|---:|---:|---|")
    for name, k, e in FUNCS:
        if k not in cost and e not in cost:
            continue
        kc, ec = mean_cost(k), mean_cost(e)
        adv = f"{kc / ec:.2f}" if kc and ec else "-"
        out.append(f"| {name} | {k} | {f1(kc)} | {mpps(kc)} | {f1(ec)} | {mpps(ec)} | {adv} | {flat(k)}, {flat(e)} |")
    if "xdp-redirect" in cost:
        x = mean_cost("xdp-redirect")
        out.append(f"| in-kernel XDP redirect (reference) | xdp-redirect | {f1(x)} | {mpps(x)} | | | | {flat('xdp-redirect')} |")

    out.append("\n## Every cost trial\n")
    out.append("| DUT | offered pps | received | loss | DUT ns/pkt | DUT core ns/pkt (/proc/stat) | engine threads ns/pkt (worker CPU incl. spin) |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    for d in duts:
        for t in cost.get(d, []):
            eng = f1(t[5]) if d.startswith("pktengine") else ""
            out.append(f"| {d} | {t[0]:.0f} | {t[1]} | {t[2] * 100:.2f}% | {f1(t[3])} | {f1(t[4])} | {eng} |")
    if "none" in cost:
        c = mean_cost("none", 4)
        out.append(f"\nValidation: the `none` DUT (no DUT at all) costs {f1(c)} ns per packet on the DUT core "
                   f"(/proc/stat; what else ran there), its threads nothing.\n")

    # Latency.
    out.append("\n## Latency, the DUT on its own core\n")
    out.append("At 50% and 90% of the zero-loss rate (RFC 2544 search in this placement); wake = a trial at a low "
               "rate where every packet finds an adaptive worker asleep (idle -> packet forwarded). "
               "p50 / p99 in µs.\n")
    out.append("| DUT | zero-loss Mpps | @50%: p50 / p99 | @90%: p50 / p99 | wake: p50 / p99 |")
    out.append("|---|---:|---|---|---|")
    lat = lambda r: f'{r["p50_us"]} / {r["p99_us"]}' if r else "-"
    for d in duts:
        z = get(d, "rfc2544")
        if not z:
            continue
        out.append(f'| {d} | {float(z["rx_mpps"]):.3f} | {lat(get(d, "lat50"))} | {lat(get(d, "lat90"))} | {lat(get(d, "wake"))} |')
    out.append("\nEngine over kernel (p50, p99; below 1 = the engine is faster):\n")
    out.append("| function | @50% p50, p99 | @90% p50, p99 | wake p50, p99 |")
    out.append("|---|---|---|---|")

    def lr(e, k, kind):
        a, b = get(e, kind), get(k, kind)
        if not a or not b:
            return "-"
        q = lambda f: f"{float(a[f]) / float(b[f]):.2f}" if float(b[f] or 0) > 0 else "-"
        return f"{q('p50_us')}, {q('p99_us')}"
    for name, k, e in FUNCS:
        if get(k, "rfc2544") and get(e, "rfc2544"):
            out.append(f"| {name} | {lr(e, k, 'lat50')} | {lr(e, k, 'lat90')} | {lr(e, k, 'wake')} |")

    # TCP.
    trows = [r for r in rows if r["kind"].startswith("tcp-") and r["segments"]]
    if trows:
        out.append("\n## TCP: cost per segment and per connection\n")
        out.append("Segments: the frames on the gen-side veth, both directions. The kernel's cost: napi/di-N plus the "
                   "tcpbench server processes; the engine's: napi/di-N plus its worker's busy time.\n")
        out.append("| DUT | trial | Gbit/s or conn/s | segments | DUT ns/segment | Mpps/core | DUT ns/connection | DUT core ns/segment (/proc/stat) |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|")
        per = {}
        for r in trows:
            seg = int(r["segments"] or 0)
            d, c = dut_ns(r), num(r, "cost_cpu_ns")
            ns = d / seg if seg and d is not None else None
            conns = int(r["tcp_conns"] or 0)
            nc = d / conns if r["kind"] == "tcp-crr" and conns and d is not None else None
            per.setdefault((r["dut"], r["kind"]), []).append((ns, nc))
            rate = r["tcp_conns_per_s"] if r["kind"] == "tcp-crr" else r["rx_gbps"]
            out.append(f'| {r["dut"]} | {r["kind"]} | {rate} | {seg} | {f1(ns)} | {mpps(ns)} | {f1(nc)} | '
                       f'{f1(c / seg if seg and c is not None else None)} |')
        out.append("\n| TCP trial | kernel ns/segment | engine ns/segment | engine advantage | kernel µs/connection | engine µs/connection | engine advantage |")
        out.append("|---|---:|---:|---:|---:|---:|---:|")
        for kind in ("tcp-recv", "tcp-send", "tcp-crr"):
            k, e = per.get(("linux-tcp", kind)), per.get(("pktengine-tcp", kind))
            if not k or not e:
                continue
            med = lambda v, i: sorted(x[i] for x in v if x[i] is not None)[(len([x for x in v if x[i] is not None]) - 1) // 2] \
                if any(x[i] is not None for x in v) else None
            ks, es, kc, ec = med(k, 0), med(e, 0), med(k, 1), med(e, 1)
            adv = lambda a, b: f"{a / b:.2f}" if a and b else "-"
            us = lambda v: "-" if v is None else f"{v / 1e3:.1f}"
            out.append(f"| {kind} | {f1(ks)} | {f1(es)} | {adv(ks, es)} | {us(kc)} | {us(ec)} | {adv(kc, ec)} |")

    out.append("\n## Second view: delivered rate at max offered load, this placement\n")
    out.append("The generator and the sink share one core here: the `none` row is the instrument's limit.\n")
    out.append("| DUT | offered Mpps | delivered Mpps | loss | p50 µs | p99 µs |")
    out.append("|---|---:|---:|---:|---:|---:|")
    for d in duts:
        r = get(d, "max")
        if r:
            out.append(f'| {d} | {float(r["offered_pps"]) / 1e6:.3f} | {float(r["rx_mpps"]):.3f} | '
                       f'{float(r["loss"]) * 100:.2f}% | {r["p50_us"]} | {r["p99_us"]} |')
    out.append("\nEvery trial: the CSV beside this file; latency histograms: the -latency.jsonl file.\n")
    text = "\n".join(out)
    open(md, "w").write(text)
    print(text)


if __name__ == "__main__":
    main()
