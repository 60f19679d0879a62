#!/usr/bin/env python3
"""Issue 21: replays what the engine's TCP received (its own capture,
`ctl capture lan`, taken after the [impair] stage) through two models of a
receiver and compares their RCV.NXT with the ACK numbers the engine sent.

  bounded:   the engine's reassembly (engine/src/tcp/reasm.rs): at most 8
             out-of-order intervals; a segment that touches none of them when
             all 8 are in use is refused (its text dropped, a duplicate ACK sent)
  unbounded: every in-window segment kept, as Linux's out-of-order queue does

usage: tcp-loss-model.py ENGINE_PCAP [SLOTS]
"""
import subprocess
import sys

SERVER = "198.18.1.1.7"


def segments(pcap):
    out = subprocess.run(["tcpdump", "-r", pcap, "-nn", "-tt", "-S", "tcp"],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        w = line.replace(",", "").split()
        try:
            t = float(w[0])
            src, dst = w[2], w[4].rstrip(":")
        except (IndexError, ValueError):
            continue
        f = dict(seq=None, ack=None, win=None, length=0, flags=w[w.index("Flags") + 1])
        for k in ("seq", "ack", "win", "length"):
            if k in w:
                v = w[w.index(k) + 1]
                f[k] = v if k == "seq" else int(v)
        yield t, src, dst, f


class Rcv:
    def __init__(self, slots):
        self.slots = slots
        self.nxt = None
        self.spans = []  # sorted disjoint [s, e) beyond nxt, absolute numbers (no wrap in 5 MB)
        self.refused = 0
        self.refused_at = []

    def take(self, s, e, t):
        if e <= self.nxt:
            return
        if s <= self.nxt:
            self.nxt = max(self.nxt, e)
        else:
            touching = [x for x in self.spans if x[0] <= e and x[1] >= s]
            if not touching and self.slots and len(self.spans) >= self.slots:
                self.refused += 1
                self.refused_at.append((t, s, e))
                return
            lo = min([s] + [x[0] for x in touching])
            hi = max([e] + [x[1] for x in touching])
            self.spans = sorted([x for x in self.spans if x not in touching] + [(lo, hi)])
        while self.spans and self.spans[0][0] <= self.nxt:
            self.nxt = max(self.nxt, self.spans.pop(0)[1])


def main():
    pcap = sys.argv[1]
    slots = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    models = {"bounded": Rcv(slots), "unbounded": Rcv(0)}
    # A segment the engine sends may have been built before the frames tapped
    # just ahead of it were processed (a burst is tapped, then processed): an
    # ACK agrees with a model if it equals the model's RCV.NXT after one of the
    # last LAG received segments; it is behind the model if it is below all of them.
    LAG = 64
    recent = {k: [] for k in models}
    acks, agree, behind = 0, {k: 0 for k in models}, {k: 0 for k in models}
    differ_first = {k: None for k in models}
    rx = 0
    for t, src, dst, f in segments(pcap):
        if dst == SERVER:
            if "S" in f["flags"] and f["seq"]:
                for m in models.values():
                    m.nxt = int(f["seq"]) + 1
                continue
            if f["seq"] and f["length"] > 0 and models["bounded"].nxt is not None:
                s, e = (int(x) for x in f["seq"].split(":"))
                rx += 1
                for k, m in models.items():
                    m.take(s, e, t)
                    recent[k] = (recent[k] + [m.nxt])[-LAG:]
        elif src == SERVER and f["ack"] is not None and models["bounded"].nxt is not None:
            acks += 1
            for k, m in models.items():
                seen = recent[k] or [m.nxt]
                if f["ack"] in seen:
                    agree[k] += 1
                elif f["ack"] < min(seen):
                    behind[k] += 1
                    if differ_first[k] is None:
                        differ_first[k] = (t, f["ack"], min(seen))
    print(f"engine capture: {rx} data segments received (after the impair stage), {acks} segments sent")
    for k, m in models.items():
        print(f"  {k:9} model ({slots if k == 'bounded' else 'no'} slot limit): the engine's ACK number is the model's RCV.NXT "
              f"in {agree[k]} of {acks} segments, behind it in {behind[k]}; segments the model refuses: {m.refused}")
        if differ_first[k]:
            t, a, n = differ_first[k]
            print(f"            first time behind: t={t:.6f} engine acked {a}, the model had {n} (+{(n - a) // 1460} segments)")
    b = models["bounded"]
    for t, s, e in b.refused_at[:5]:
        print(f"  refused (all {slots} intervals in use, touches none): t={t:.6f} seq {s}:{e}")


if __name__ == "__main__":
    main()
