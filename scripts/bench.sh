#!/usr/bin/env bash
# System benchmark: pktgen (AF_XDP generator) -> DUT -> pktgen sink, on veth pairs
# in three network namespaces this script creates and always deletes:
#
#   gen ns  [gi] ── veth ── [di]  DUT ns  [de] ── veth ── [si]  sink ns
#   198.18.0.2/24           198.18.0.1/24  198.19.0.1/24          198.19.0.2/24
#   2001:2::2/64            2001:2::1/64   2001:2:0:100::1/64         2001:2:0:100::2/64
#
# Flows: 198.18.0.2 -> 198.19.1.1, UDP, source ports 1000-1007 (8 flows), routed in the
# DUT by 198.19.1.0/24 via 198.19.0.2 (the sink). Addresses only from 198.18.0.0/15 and
# 2001:2::/48; nothing leaves the namespaces.
#
# The NAT DUTs use the same topology and flows; the DUT translates the source to its
# sink-side address 198.19.0.1 (and the source ports as it likes). The sink tells flows
# apart by the flow id in the payload stamp (bench/README.md), not by addresses or ports,
# so it counts translated frames like any others.
#
# The switch DUTs (linux-bridge, pktengine-switch) use one subnet, no addresses in the DUT:
#
#   gen ns  [gi] ── veth ── [di]  DUT ns  [de] ── veth ── [si]  sink ns
#   198.18.0.2/24            (bridge: di, de)              198.18.0.3/24
#   2001:2::2/64                                           2001:2::3/64
#
# and flows 198.18.0.2 -> 198.18.0.3 (same ports), sent to the sink's MAC. A warm-up ping
# teaches the bridge both stations, so the trials are known-unicast, not flooded.
#
# The load-balancer DUTs (linux-lb, pktengine-lb) use topo_up plus two more sink addresses,
# the three "backends" of one UDP service (topo_lb):
#
#   gen ns  [gi] ── veth ── [di]  DUT ns  [de] ── veth ── [si]  sink ns
#   198.18.0.2/24           198.18.0.1/24  198.19.0.1/24          198.19.0.2/24, .3/24, .4/24
#                            VIP 198.19.1.100:2000                 (backends, port 2000)
#
# and 64 flows 198.18.0.2 -> 198.19.1.100:2000 (source ports 1000-1063), so the scheduler has
# flows to spread. The DUT gives each flow a backend, rewrites the destination to it and the
# source to 198.19.0.1 (full NAT); the sink counts the frames of all three backends (it keys
# by the flow id in the stamp, and its kernel answers ARP for the three addresses).
#
# The filter DUTs (linux-filter, linux-filter-sets, pktengine-filter) use topo_up and the 8 flows
# of the router DUTs, through one generated rule set of 1,000 rules (filter_ruleset: source and
# destination prefixes from 198.18.0.0/15 and 2001:2::/48, port ranges, TCP flags, all drop, none
# matching the flows or the warm-up pings): every flow packet is checked against the whole set
# and accepted by the policy at the end. nftables gets it as written, rule by rule, and as sets.
#
# The stateful filter DUTs (linux-ct, pktengine-ct) use topo_up and the 8 flows of the router
# DUTs through the classic stateful firewall (`ct state established,related accept`, `ct state
# invalid drop`, new connections accepted from the generator's side, everything else from the
# sink's side dropped): every packet is looked up in the connection table (the flows are UDP
# from the generator, so their state stays new: tracked, accepted by the third rule).
#
# The TCP DUTs (linux-tcp, pktengine-tcp) use topo_up, but no generator and no sink: the client is
# tcpbench (bench/src/bin/tcpbench.rs, the kernel's TCP) in the gen ns, 198.18.0.2, and the server
# sits on the DUT's address 198.18.0.1 (the sink ns stays idle):
#
#   gen ns  [gi] ── veth ── [di]  DUT ns
#   198.18.0.2/24           198.18.0.1/24: tcpbench server (linux-tcp) or the engine's [[tcp]] apps
#   tcpbench client         bulk on 5001 (10^12 bytes, the throughput trials) and 5002
#                           (BENCH_TCP_CHECK_BYTES, the checked transfer), discard on 9, http on 80
#
# Trials (each BENCH_TCP_SECONDS, BENCH_TCP_REPS times): tcp-recv (bulk DUT -> client over
# BENCH_TCP_STREAMS connections, every byte checked against the pattern i % 251), tcp-send (client
# -> DUT's discard for the time, then the rate up to the DUT's FIN, which follows the last byte it
# read), tcp-crr (BENCH_TCP_CONNS concurrent connect / GET / whole response / close loops: connections
# per second and the latency of one), and once tcp-check (a whole bulk transfer of
# BENCH_TCP_CHECK_BYTES on one connection: exact length, pattern and EOF). The gen ns keeps no
# TIME-WAIT sockets (tcp_max_tw_buckets = 0: the client closes first in crr, and 28k ephemeral
# ports would not last a trial) and uses ports 1024-65535.
#
# DUTs (BENCH_DUTS, default all of them):
#   none            no DUT: one veth from the gen ns straight to the sink ns (the instrument's own
#                   ceiling; "offered" and "delivered" here bound every other row)
#   linux-1route    Linux IP forwarding, one route
#   linux-fulltable Linux IP forwarding with the full Internet table (bench/data/bgp-prefixes.txt.gz,
#                   901,899 IPv4 + 160,147 IPv6 prefixes, all via the sink-side next hop)
#   xdp-redirect    native XDP program ebpf/xdp_fwd.bpf.c on the DUT ingress (TTL, checksum, MACs,
#                   bpf_redirect to the egress veth): the in-kernel upper bound on veth
#   pktengine       the engine (one worker, adaptive poll, on SINK_CPU), one route
#   pktengine-fulltable  the engine with the full table (routes file) as well
#   linux-nat       Linux IP forwarding, one route, nftables masquerade (postrouting nat chain,
#                   oifname $DE masquerade: conntrack + NAT in the DUT ns)
#   pktengine-nat   the engine as pktengine, with nat = "inside" on $DI, nat = "outside" on $DE
#                   and [nat] pool = ["198.19.0.1"] (the sink-side port address)
#   linux-bridge    a Linux bridge in the DUT ns enslaving $DI and $DE (STP off, bridge
#                   netfilter off: a plain learning bridge)
#   pktengine-switch  the engine with $DI and $DE as mode = "switch" ports of one [[bridge]]
#   linux-lb        Linux forwarding with nftables as the balancer (no IPVS in this kernel): a
#                   prerouting nat chain dnat's new flows to the VIP to jhash(5-tuple) mod 3 of
#                   the backends, a postrouting one snat's them to 198.19.0.1 (conntrack keeps
#                   each flow on its backend)
#   pktengine-lb    the engine as pktengine plus one [[lb]] UDP service: the VIP, scheduler
#                   maglev, mode fullnat with snat 198.19.0.1, the same three backends
#   linux-filter    Linux forwarding, one route, plus an nftables forward chain (table inet filter,
#                   policy accept) holding the 1,000 rules in order: evaluated one after the other
#   linux-filter-sets  the same rules grouped by shape into nftables sets (interval sets of
#                   prefixes, concatenations prefix . protocol . port range): a few dozen rules,
#                   one set lookup each; the same verdicts, since every rule drops
#   pktengine-filter  the engine as pktengine plus [filter] rules = [the 1,000 rules], default
#                   accept (tuple space search: the cost follows the rule shapes, not their count)
#   linux-ct        Linux forwarding, one route, plus an nftables forward chain with the classic
#                   stateful firewall (conntrack: nf_conntrack_tcp_loose = 0, as the engine)
#   pktengine-ct    the engine as pktengine plus the same rules as its [filter] section (policy
#                   drop on the sink's side): connection tracking on its own table
#   linux-tcp       the kernel's TCP in the DUT ns: four tcpbench servers (bulk 5001 and 5002, discard,
#                   http) on 198.18.0.1, each one thread with an epoll loop, pinned to ENGINE_CPU
#   pktengine-tcp   the engine (one worker on ENGINE_CPU, as pktengine) with the same four apps as
#                   [[tcp]] sections: its own TCP endpoint (engine/src/tcp) on 198.18.0.1
#
# Per packet DUT and frame size (64, 512, 1518 bytes with FCS):
#   max     generator at max rate: delivered Mpps/Gbps, loss, latency
#   lat50   offered at 50% of the max delivered rate: latency p50/p99/p99.9
#   lat90   the same at 90%
#   rfc2544 zero-loss throughput: binary search on the offered rate between 0 and the
#           generator's max-rate offered load; a trial passes when loss <= BENCH_LOSS
#           (fraction, default 0.001 = 0.1%); BENCH_STEPS trials of BENCH_TRIAL seconds.
#
# CPU placement (2 cores): the generator is pinned to CPU $GEN_CPU, the sink to CPU $SINK_CPU
# (taskset). A veth's receive path runs on the sending CPU, so the kernel DUTs (forwarding,
# XDP, conntrack + NAT, the bridge, the nftables balancer and filter) execute in the generator's TX path
# on CPU $GEN_CPU: generator and DUT share a core, the sink has the other. This bounds every
# kernel DUT figure by what one core can do for generator + DUT together; the engine DUTs, a
# user-space worker, must share a core with one of the two as well (see pktengine_launch): all
# six packet engine DUTs (and pktengine-tcp) run their one worker on ENGINE_CPU (default SINK_CPU),
# beside the sink, which then runs SCHED_OTHER (see sink_sched); for the kernel DUTs it runs
# SCHED_FIFO. TCP DUTs (no generator, no sink): the
# client on GEN_CPU, the DUT's server (tcpbench or the engine's worker) on ENGINE_CPU. On veth a
# segment's receive processing runs on the sending CPU: the kernel DUT's TCP input runs on GEN_CPU
# in the client's transmit path, the client's TCP input on ENGINE_CPU in the server's (tcpbench's
# send() or the engine worker's AF_XDP transmit).
#
# Knobs (environment, or KEY=VALUE arguments): BENCH_QUICK=1 (1.5-2 minutes per 6-7 DUTs: 1 s trials,
# latency and search at 64 bytes only, 4 search steps), BENCH_DUTS, BENCH_SIZES, BENCH_TRIAL,
# BENCH_STEPS, BENCH_LOSS, BENCH_OUT (default bench/results), GEN_CPU, SINK_CPU, ENGINE_CPU,
# BENCH_SINK_RT (SCHED_FIFO priority of the sink, default 20; 0 = normal scheduling), BENCH_ENGINE_POLL
# (the engine worker's poll mode, default adaptive; busy spins),
# BENCH_TAG (appended to the result names: system-<date>[-quick]-<tag>.*); TCP DUTs: BENCH_TCP_SECONDS
# (default 3 quick, 5 full), BENCH_TCP_REPS (1 quick, 3 full; the Markdown shows the median),
# BENCH_TCP_CONNS (crr concurrency, 16), BENCH_TCP_STREAMS (recv/send connections, 1),
# BENCH_TCP_CHECK_BYTES (100000000). A DUT may be listed more than once in BENCH_DUTS (e.g.
# "linux-tcp pktengine-tcp linux-tcp pktengine-tcp": interleaved runs against a drifting machine
# load); the Markdown takes the median over all its trials.
#
# Cost mode (BENCH_MODE=cost; the default BENCH_MODE=rate is everything above): what each DUT costs the
# machine per packet, not how fast the instrument can go. The DUT gets a core of its own, DUT_CPU (default
# 1); generator and sink share the other, INSTR_CPU (default 0; the sink then runs SCHED_OTHER). Every
# veth gets GRO on and threaded NAPI (/sys/class/net/DEV/threaded = 1: a kernel thread napi/DEV-N per
# queue), and those threads are pinned before every trial: the DUT's receiving ends (di, de) to DUT_CPU,
# the generator's and sink's (gi, si) to INSTR_CPU. So the kernel DUTs' whole receive-forward-transmit
# path runs in napi/di-N on DUT_CPU (veth_xmit onto the sink's veth only queues and wakes napi/si-N),
# and the generator's and sink's kernel work stays on INSTR_CPU. Per trial (64 B frames):
#   cost      at each rate of BENCH_COST_RATES (default "100000 200000" pps, below the instrument's
#             limit): the CPU time of the DUT's threads (schedstat run time of napi/di-N and napi/de-N,
#             plus the DUT's processes for the TCP kernel servers; for the engine its worker's busy_ns,
#             the time of loop iterations that found work, from ctl stats, instead of its thread time,
#             which for a busy-polling worker is all of the core), and DUT_CPU's busy time from
#             /proc/stat (user+nice+system+irq+softirq+steal: everything on that core, any other load
#             of the machine included) over the packets the sink received. Two rates: a valid cost is
#             flat across them; the none DUT must cost ~0 on DUT_CPU. The generator sends in bursts of
#             BENCH_COST_BURST (default 32, pktgen --burst): paced packet by packet, a DUT woken per
#             packet at 100 kpps spends most of its time waking up, and the "cost" halves when the
#             rate doubles (seen in the first run of 2026-12-03).
#   max, search, rfc2544   as in rate mode, in this placement
#   lat50, lat90  offered at 50% and 90% of the zero-loss rate (not of the max delivered rate)
#   wake      BENCH_WAKE_RATE pps (default 20) for BENCH_WAKE_SECONDS (3): every packet finds an adaptive
#             worker asleep in poll(): its p50 is the wake-up latency (idle -> packet forwarded)
# TCP DUTs: the same placement (client on INSTR_CPU, server on DUT_CPU) and the same cost columns,
# over the segments the gen-side veth carried (both directions) and, for crr, the connections.
# Output: bench/results/system-<date>[-quick]-cost[-<tag>].{md,csv,-latency.json} and the plots of
# bench/plot_system.py (cost per packet, latency CDFs per function, delivered rate per function).
#
# Output: bench/results/system-<date>[-quick][-<tag>].md (tables with ratios vs Linux 1-route
# and, for the engine DUTs, vs their kernel counterpart: pktengine vs linux-1route,
# pktengine-fulltable vs linux-fulltable, pktengine-nat vs linux-nat, pktengine-switch vs
# linux-bridge, pktengine-lb vs linux-lb, pktengine-filter vs linux-filter and, second,
# linux-filter-sets, pktengine-ct vs linux-ct; a TCP table, pktengine-tcp vs linux-tcp), .csv (every trial; TCP rows fill
# rx_gbps, p50/p99/p999_us (crr latency) and the tcp_* columns, packet rows leave those empty), plots
# (gnuplot, if installed: scripts/deps.sh installs gnuplot-nox): -rate.png and -rate.svg (the packet DUTs'
# rates, one panel per function, bench/plot_system.py), the TCP DUTs' in -tcp.png, or in the .png when
# only TCP DUTs ran.
set -euo pipefail

for a in "$@"; do
  case "$a" in
    *=*) export "${a?}" ;;
    *) echo "bench.sh: unknown argument $a (use KEY=VALUE)" >&2; exit 2 ;;
  esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
  TRIAL=${BENCH_TRIAL:-1}; STEPS=${BENCH_STEPS:-4}; DETAIL_SIZES=${BENCH_DETAIL_SIZES:-64}
else
  TRIAL=${BENCH_TRIAL:-2}; STEPS=${BENCH_STEPS:-8}; DETAIL_SIZES=${BENCH_DETAIL_SIZES:-"64 512 1518"}
fi
SIZES=${BENCH_SIZES:-"64 512 1518"}
LOSS=${BENCH_LOSS:-0.001}
DUTS=${BENCH_DUTS:-"none linux-1route linux-fulltable xdp-redirect pktengine pktengine-fulltable linux-nat pktengine-nat linux-bridge pktengine-switch linux-lb pktengine-lb linux-filter linux-filter-sets pktengine-filter linux-ct pktengine-ct linux-tcp pktengine-tcp"}
GEN_CPU=${GEN_CPU:-0}
SINK_CPU=${SINK_CPU:-1}
# The engine worker's core (default: the sink's, see dut_pktengine).
ENGINE_CPU=${ENGINE_CPU:-$SINK_CPU}
# The engine worker's wait mode (adaptive: spin while busy, then sleep in poll(2); busy: spin always).
ENGINE_POLL=${BENCH_ENGINE_POLL:-adaptive}
# The sink runs SCHED_FIFO (priority BENCH_SINK_RT, 0 = normal scheduling): on a shared
# 2-core machine a preempted sink adds scheduler time slices (ms) to the latency tail.
# The generator stays SCHED_OTHER: the veth receive path (ksoftirqd) shares its CPU.
SINK_RT=${BENCH_SINK_RT:-20}
SINK_SCHED=""
[ "$SINK_RT" != 0 ] && SINK_SCHED="chrt -f $SINK_RT"
# rate (the max-rate, zero-loss and latency trials above) or cost (see the top of the script).
MODE=${BENCH_MODE:-rate}
case $MODE in
  rate) ;;
  cost)
    DUT_CPU=${DUT_CPU:-1}; INSTR_CPU=${INSTR_CPU:-0}
    GEN_CPU=$INSTR_CPU; SINK_CPU=$INSTR_CPU; ENGINE_CPU=$DUT_CPU
    # Generator and sink share a core: a SCHED_FIFO sink would starve the generator.
    SINK_SCHED=""
    DETAIL_SIZES=64; SIZES=${BENCH_SIZES:-64}
    ;;
  *) echo "bench.sh: BENCH_MODE must be rate or cost" >&2; exit 2 ;;
esac
COST_RATES=${BENCH_COST_RATES:-"100000 200000"}
# The cost trials' burst: the generator sends this many packets at once (pktgen --burst), so a
# DUT woken per burst does the same work per packet at every rate (1: paced packet by packet,
# and a DUT woken per packet at low rates mostly measures its wake-ups).
COST_BURST=${BENCH_COST_BURST:-32}
# The napi threads' SCHED_FIFO priority (0: SCHED_OTHER). A softirq preempts whatever runs; a napi
# thread at SCHED_OTHER waits for the busy generator's (or a spinning worker's) time slice while its
# 256-frame veth ring overflows: measured 21% loss at 100 kpps with no DUT at all (2026-12-03).
NAPI_RT=${BENCH_NAPI_RT:-50}
# The DUT's threads (the engine's workers, the linux-tcp servers) run SCHED_FIFO at this priority, below
# the napi threads (0: SCHED_OTHER): the machine is shared, and other users' builds on the DUT's core
# would otherwise take time slices from it (an adaptive worker sleeps when idle, so it leaves the core).
DUT_RT=${BENCH_DUT_RT:-40}
WAKE_RATE=${BENCH_WAKE_RATE:-20}
WAKE_SECS=${BENCH_WAKE_SECONDS:-3}
CLK_TCK=$(getconf CLK_TCK)
OUT=${BENCH_OUT:-$ROOT/bench/results}
# cargo's target directory (CARGO_TARGET_DIR if set, as cargo itself).
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PKTGEN=$TARGET/release/pktgen
TCPBENCH=$TARGET/release/tcpbench
ENGINE=$TARGET/release/pktengine
if [ "$QUICK" = 1 ]; then
  TCP_SECS=${BENCH_TCP_SECONDS:-3}; TCP_REPS=${BENCH_TCP_REPS:-1}
else
  TCP_SECS=${BENCH_TCP_SECONDS:-5}; TCP_REPS=${BENCH_TCP_REPS:-3}
fi
TCP_CONNS=${BENCH_TCP_CONNS:-16}
TCP_STREAMS=${BENCH_TCP_STREAMS:-1}
TCP_CHECK_BYTES=${BENCH_TCP_CHECK_BYTES:-100000000}
# The throughput trials' bulk connections: more than any trial moves (the client stops at its time).
TCP_BULK_BYTES=1000000000000
TCP_BODY="hello from pktengine"
STAMP=$(date -u +%Y-%m-%d)

[ "$(id -u)" -eq 0 ] || { echo "bench.sh: needs root (namespaces, XDP)" >&2; exit 1; }
for t in ip ethtool taskset python3 clang nft bridge; do
  command -v "$t" >/dev/null || { echo "bench.sh: $t missing (scripts/deps.sh)" >&2; exit 1; }
done
# The engine switches to this user after set-up (docs/ROBUSTNESS.md, "Least privilege").
getent passwd pktengine >/dev/null || { echo "bench.sh: user pktengine missing (scripts/deps.sh)" >&2; exit 1; }

echo "bench.sh: building pktgen, tcpbench and the engine (release, once: every DUT of a run uses the same build)"
(cd "$ROOT" && cargo build --release -q -p pktengine-bench --bin pktgen --bin tcpbench && cargo build --release -q -p engine)

ID=$(printf '%x%03x' $$ $((RANDOM % 4096)))
NG=bg-$ID; ND=bd-$ID; NS=bs-$ID
GI=gi$ID; DI=di$ID; DE=de$ID; SI=si$ID
TMP=$(mktemp -d /tmp/pktbench.XXXXXX)
CSV=$TMP/trials.csv
# The cost_* columns (ns over the trial, cost mode only): DUT_CPU's busy time (/proc/stat), the run time of
# the DUT-side napi threads, of the DUT's processes (all threads), the engine workers' busy time; segments:
# the frames the gen-side veth carried in a TCP trial.
echo "dut,size,kind,offered_pps,sent,received,loss,rx_mpps,rx_gbps,p50_us,p99_us,p999_us,bad_ip_checksum,tcp_bytes,tcp_elapsed_s,tcp_conns,tcp_conns_per_s,tcp_errors,tcp_unfinished,cost_cpu_ns,cost_napi_ns,cost_proc_ns,cost_busy_ns,segments" >"$CSV"
# Latency histograms of the cost mode's latency trials (one JSON object per line).
HISTS=$TMP/hists.jsonl
: >"$HISTS"
SINK_PID=""
DUT_PID=""
# The linux-tcp DUT's tcpbench servers.
TCP_PIDS=""

cleanup() {
  set +e
  [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null && wait "$SINK_PID" 2>/dev/null
  [ -n "$DUT_PID" ] && kill "$DUT_PID" 2>/dev/null && wait "$DUT_PID" 2>/dev/null
  for p in $TCP_PIDS; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  for n in "$NG" "$ND" "$NS"; do ip netns del "$n" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mac() { ip -n "$1" -o link show dev "$2" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'; }

topo_up() {
  for n in "$NG" "$ND" "$NS"; do ip netns add "$n"; ip -n "$n" link set lo up; done
  ip link add "$GI" netns "$NG" type veth peer name "$DI" netns "$ND"
  ip link add "$DE" netns "$ND" type veth peer name "$SI" netns "$NS"
  ip -n "$NG" addr add 198.18.0.2/24 dev "$GI"
  ip -n "$NG" addr add 2001:2::2/64 dev "$GI" nodad
  ip -n "$ND" addr add 198.18.0.1/24 dev "$DI"
  ip -n "$ND" addr add 2001:2::1/64 dev "$DI" nodad
  ip -n "$ND" addr add 198.19.0.1/24 dev "$DE"
  ip -n "$ND" addr add 2001:2:0:100::1/64 dev "$DE" nodad
  ip -n "$NS" addr add 198.19.0.2/24 dev "$SI"
  ip -n "$NS" addr add 2001:2:0:100::2/64 dev "$SI" nodad
  # Sending ends compute full checksums (PLATFORM.md: veth TX offload leaves them partial).
  ip netns exec "$NG" ethtool -K "$GI" tx off >/dev/null
  ip netns exec "$ND" ethtool -K "$DE" tx off >/dev/null
  ip netns exec "$ND" ethtool -K "$DI" tx off >/dev/null
  for x in "$NG:$GI" "$ND:$DI" "$ND:$DE" "$NS:$SI"; do ip -n "${x%%:*}" link set "${x#*:}" up; done
  ip netns exec "$ND" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
    net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
    "net.ipv4.conf.$DI.rp_filter=0" "net.ipv4.conf.$DE.rp_filter=0"
  GI_MAC=$(mac "$NG" "$GI"); DI_MAC=$(mac "$ND" "$DI"); DE_MAC=$(mac "$ND" "$DE"); SI_MAC=$(mac "$NS" "$SI")
  # The sink passes ARP/ND to its kernel, which would answer; permanent neighbours keep
  # resolution out of the trials all the same.
  ip -n "$ND" neigh replace 198.19.0.2 lladdr "$SI_MAC" dev "$DE" nud permanent
  ip -n "$ND" -6 neigh replace 2001:2:0:100::2 lladdr "$SI_MAC" dev "$DE" nud permanent
  ip -n "$NG" neigh replace 198.18.0.1 lladdr "$DI_MAC" dev "$GI" nud permanent
  ip -n "$ND" route add 198.19.1.0/24 via 198.19.0.2
  ip -n "$ND" -6 route add 2001:2:0:101::/64 via 2001:2:0:100::2
  # What the generator sends to: the DUT's MAC, the routed destination.
  DST_MAC=$DI_MAC; DST_IP=198.19.1.1
  # The sink addresses the engine DUTs resolve (ARP) in their warm-up.
  SINK_V4="198.19.0.2"
}

# Load-balancer DUTs: topo_up plus the backends 198.19.0.3 and 198.19.0.4 on the sink's veth
# (198.19.0.2 is the third). The sink's kernel answers ARP for all three; the DUT ns gets
# permanent neighbours for them as for 198.19.0.2. The generator sends to the VIP
# 198.19.1.100:2000 (via the DUT's MAC) from 64 source ports: 64 flows to spread.
topo_lb() {
  for a in 198.19.0.3 198.19.0.4; do
    ip -n "$NS" addr add "$a/24" dev "$SI"
    ip -n "$ND" neigh replace "$a" lladdr "$SI_MAC" dev "$DE" nud permanent
  done
  SINK_V4="198.19.0.2 198.19.0.3 198.19.0.4"
  DST_IP=198.19.1.100; SPORTS=1000-1063
}

# No DUT: gen ns -- veth -- sink ns (the generator addresses the sink's MAC).
topo_direct() {
  for n in "$NG" "$NS"; do ip netns add "$n"; ip -n "$n" link set lo up; done
  ip link add "$GI" netns "$NG" type veth peer name "$SI" netns "$NS"
  ip -n "$NG" addr add 198.18.0.2/24 dev "$GI"
  ip -n "$NS" addr add 198.19.0.2/24 dev "$SI"
  ip netns exec "$NG" ethtool -K "$GI" tx off >/dev/null
  ip -n "$NG" link set "$GI" up; ip -n "$NS" link set "$SI" up
  GI_MAC=$(mac "$NG" "$GI"); SI_MAC=$(mac "$NS" "$SI")
  DST_MAC=$SI_MAC; DST_IP=198.19.1.1
}

# Switch DUTs: gen ns -- veth -- DUT ns (no addresses; the DUT bridges $DI and $DE) -- veth --
# sink ns, gen and sink on 198.18.0.0/24 (the generator addresses the sink's MAC and IP).
topo_l2() {
  for n in "$NG" "$ND" "$NS"; do ip netns add "$n"; ip -n "$n" link set lo up; done
  ip link add "$GI" netns "$NG" type veth peer name "$DI" netns "$ND"
  ip link add "$DE" netns "$ND" type veth peer name "$SI" netns "$NS"
  ip -n "$NG" addr add 198.18.0.2/24 dev "$GI"
  ip -n "$NG" addr add 2001:2::2/64 dev "$GI" nodad
  ip -n "$NS" addr add 198.18.0.3/24 dev "$SI"
  ip -n "$NS" addr add 2001:2::3/64 dev "$SI" nodad
  # No IPv6 on the DUT's ports: their kernel would send router/multicast-listener
  # solicitations into the trials.
  for d in "$DI" "$DE"; do ip netns exec "$ND" sysctl -qw "net.ipv6.conf.$d.disable_ipv6=1"; done
  ip netns exec "$NG" ethtool -K "$GI" tx off >/dev/null
  ip netns exec "$ND" ethtool -K "$DE" tx off >/dev/null
  ip netns exec "$ND" ethtool -K "$DI" tx off >/dev/null
  for x in "$NG:$GI" "$ND:$DI" "$ND:$DE" "$NS:$SI"; do ip -n "${x%%:*}" link set "${x#*:}" up; done
  GI_MAC=$(mac "$NG" "$GI"); DI_MAC=$(mac "$ND" "$DI"); DE_MAC=$(mac "$ND" "$DE"); SI_MAC=$(mac "$NS" "$SI")
  DST_MAC=$SI_MAC; DST_IP=198.18.0.3
}

# Warm-up of a switch DUT: a ping from the gen ns to the sink (the sink's kernel answers
# while no sink runs) teaches the bridge the MACs of both sides, so the trials' frames to
# the sink's MAC are forwarded as known unicast.
l2_warmup() {
  ip netns exec "$NG" ping -c 3 -i 0.2 -W 1 198.18.0.3 >/dev/null \
    || echo "bench.sh: warm-up ping through the $1 DUT failed" >&2
}

# ---- cost mode: threaded NAPI, pinning, CPU time -----------------------------------------

# napi_threaded NS:DEV...: GRO on (gives a veth its NAPI instance for good, before any XDP program
# comes and goes: the sink attaches its own per trial) and threaded NAPI, for each device.
napi_threaded() {
  local x ns dev
  for x in "$@"; do
    ns=${x%%:*}; dev=${x#*:}
    ip netns exec "$ns" ethtool -K "$dev" gro on >/dev/null
    ip netns exec "$ns" sh -c "echo 1 > /sys/class/net/$dev/threaded"
  done
}

# napi_tids DEV: the kernel threads napi/DEV-N.
napi_tids() {
  local want="napi/$1-" p comm
  for p in /proc/[0-9]*; do
    read -r comm 2>/dev/null <"$p/comm" || continue
    case $comm in napi/*) ;; *) continue ;; esac
    # The whole name (this kernel shows a kernel thread's whole name), or its first 15 characters.
    case $comm in "$want"*) echo "${p#/proc/}"; continue ;; esac
    [ ${#comm} -ge 15 ] && [ "${want:0:${#comm}}" = "$comm" ] && echo "${p#/proc/}"
  done
  return 0
}

# napi_pin: the DUT's receiving veth ends' threads to DUT_CPU, the instrument's to INSTR_CPU; sets
# NAPI_DUT (the DUT side's thread ids). Before every trial: threads come with NAPI instances.
napi_pin() {
  local d t
  NAPI_DUT=""
  for d in "$DI" "$DE"; do
    for t in $(napi_tids "$d"); do
      taskset -p -c "$DUT_CPU" "$t" >/dev/null; NAPI_DUT="$NAPI_DUT $t"
      [ "$NAPI_RT" != 0 ] && chrt -f -p "$NAPI_RT" "$t"
    done
  done
  for d in "$GI" "$SI"; do
    for t in $(napi_tids "$d"); do
      taskset -p -c "$INSTR_CPU" "$t" >/dev/null
      [ "$NAPI_RT" != 0 ] && chrt -f -p "$NAPI_RT" "$t"
    done
  done
  # The DUT's own threads (engine workers, the linux-tcp servers) run SCHED_FIFO below the napi threads.
  if [ "$DUT_RT" != 0 ]; then
    local p comm
    # shellcheck disable=SC2086
    for t in $(proc_tids $DUT_PID $TCP_PIDS); do
      p=/proc/$t
      [ -n "$DUT_PID" ] && p=/proc/$DUT_PID/task/$t
      read -r comm 2>/dev/null <"$p/comm" || continue
      case $comm in pktengine-w* | tcpbench*) chrt -f -p "$DUT_RT" "$t" ;; esac
    done
  fi
  return 0
}

# run_ns TID...: summed run time (ns, schedstat) of the given threads.
run_ns() {
  local t v sum=0
  for t in "$@"; do
    read -r v _ 2>/dev/null <"/proc/$t/schedstat" || continue
    sum=$((sum + v))
  done
  echo "$sum"
}

# proc_tids PID...: every thread of the given processes.
proc_tids() {
  local p
  for p in "$@"; do ls "/proc/$p/task" 2>/dev/null; done
  return 0
}

# cost_snap: "CPU_NS NAPI_NS PROC_NS BUSY_NS" now: DUT_CPU's busy time from /proc/stat, the DUT-side
# napi threads, the DUT's processes (the engine, or the linux-tcp servers), the engine workers' busy_ns.
cost_snap() {
  local cpu napi proc busy=0
  cpu=$(awk -v c="cpu$DUT_CPU" -v tck="$CLK_TCK" '$1 == c { printf "%.0f", ($2 + $3 + $4 + $7 + $8 + $9) * 1e9 / tck }' /proc/stat)
  # shellcheck disable=SC2086
  napi=$(run_ns $NAPI_DUT)
  # shellcheck disable=SC2086
  proc=$(run_ns $(proc_tids $DUT_PID $TCP_PIDS))
  if [ -n "$DUT_PID" ] && [ -S "$TMP/pktengine.sock" ]; then
    busy=$("$ENGINE" ctl --socket "$TMP/pktengine.sock" stats 2>/dev/null \
      | awk '/^worker [0-9]+: busy [0-9.]+s/ { sub(/s$/, "", $4); n += $4 * 1e9 } END { printf "%.0f", n }')
  fi
  echo "$cpu $napi $proc $busy"
}

# cost_diff "BEFORE" "AFTER": the four differences, comma-separated (the CSV's cost_* columns).
cost_diff() {
  local a=($1) b=($2)
  echo "$((b[0] - a[0])),$((b[1] - a[1])),$((b[2] - a[2])),$((b[3] - a[3]))"
}

topo_down() {
  for n in "$NG" "$ND" "$NS"; do ip netns del "$n" 2>/dev/null || true; done
}

# ---- DUTs -----------------------------------------------------------------------------

dut_linux_1route() { :; }  # topo_up already routes 198.19.1.0/24 via the sink

dut_linux_fulltable() {
  local t0 t1 n4 n6
  t0=$(date +%s.%N)
  zcat "$ROOT/bench/data/bgp-prefixes.txt.gz" | grep -v ':' | sed 's/^/route add /; s/$/ via 198.19.0.2/' \
    | ip -n "$ND" -batch - 2>"$TMP/batch4.err" || true
  t1=$(date +%s.%N)
  zcat "$ROOT/bench/data/bgp-prefixes.txt.gz" | grep ':' | sed 's/^/route add /; s/$/ via 2001:2:0:100::2/' \
    | ip -n "$ND" -6 -batch - 2>"$TMP/batch6.err" || true
  local t2; t2=$(date +%s.%N)
  n4=$(ip -n "$ND" -4 route show | wc -l); n6=$(ip -n "$ND" -6 route show | wc -l)
  LOAD_NOTE=$(printf 'IPv4 table: %d routes in the DUT after loading 901,899 prefixes with ip -batch in %.1f s; IPv6: %d routes (160,147 prefixes) in %.1f s (%s IPv4 / %s IPv6 batch errors, e.g. duplicates)' \
    "$n4" "$(python3 -c "print($t1 - $t0)")" "$n6" "$(python3 -c "print($t2 - $t1)")" \
    "$(grep -c . "$TMP/batch4.err" || true)" "$(grep -c . "$TMP/batch6.err" || true)")
  echo "bench.sh: $LOAD_NOTE"
  echo "$LOAD_NOTE" >"$TMP/load-note"
}

dut_xdp_redirect() {
  local idx obj=$TMP/xdp_fwd.o
  idx=$(ip netns exec "$ND" cat "/sys/class/net/$DE/ifindex")
  clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu -DOUT_IFINDEX="$idx" \
    -DSRC_MAC="0x${DE_MAC//:/,0x}" -DDST_MAC="0x${SI_MAC//:/,0x}" \
    -c "$ROOT/ebpf/xdp_fwd.bpf.c" -o "$obj"
  ip -n "$ND" link set dev "$DI" xdpdrv obj "$obj" sec xdp
  # The redirect target's peer ($SI) has the sink's steering program attached by the sink
  # itself, which native-mode redirects into a veth need (PLATFORM.md).
}

# DUT "pktengine": the engine in the DUT namespace on $DI and $DE, one worker pinned to
# SINK_CPU in adaptive poll mode (busy polling would fight the SCHED_FIFO sink for that core;
# the generator's core already carries the veth receive path of its own frames, see above).
# The kernel's addresses on $DI/$DE are removed: the engine owns the ports. The sink's kernel
# answers the engine's ARP (pktgen sink passes ARP/ND), so no static neighbour is needed.
#
# pktengine_launch PORTS_AND_MORE: writes [engine] (the same for every engine DUT) followed
# by PORTS_AND_MORE (the [[port]] and other sections) to $TMP/pktengine.toml and starts the
# engine on it; returns once its ctl socket is up.
pktengine_launch() {
  local bin=$ENGINE
  for d in "$DI" "$DE"; do
    ip -n "$ND" addr flush dev "$d"
    ip netns exec "$ND" sysctl -qw "net.ipv6.conf.$d.disable_ipv6=1"
  done
  cat >"$TMP/pktengine.toml" <<TOML
[engine]
cores = [$ENGINE_CPU]
poll = "$ENGINE_POLL"
ctl_socket = "$TMP/pktengine.sock"

$1
TOML
  # The worker pins itself to ENGINE_CPU (cores = [...]); the control thread is left to the scheduler.
  ip netns exec "$ND" "$bin" run --config "$TMP/pktengine.toml" >"$TMP/pktengine.log" 2>&1 &
  DUT_PID=$!
  local i=0
  until [ -S "$TMP/pktengine.sock" ]; do
    sleep 0.1; i=$((i + 1))
    if [ $i -gt 600 ] || ! kill -0 "$DUT_PID" 2>/dev/null; then
      echo "bench.sh: pktengine did not start: $(cat "$TMP/pktengine.log")" >&2; return 1
    fi
  done
}

# ctl COMMAND...: the running engine's ctl, output indented into the log.
pktengine_ctl() {
  "$ENGINE" ctl --socket "$TMP/pktengine.sock" "$@" 2>&1 | sed 's/^/  engine: /'
}

# pktengine_start EXTRA_ROUTING [IN_EXTRA OUT_EXTRA [SECTIONS]]: the engine as a router;
# EXTRA_ROUTING goes into [routing], IN_EXTRA/OUT_EXTRA into the two [[port]]s, SECTIONS
# after everything (e.g. [nat]).
pktengine_start() {
  local extra_routes=$1 in_extra=${2:-} out_extra=${3:-} sections=${4:-}
  pktengine_launch "$(cat <<TOML
[[port]]
name = "in"
interface = "$DI"
mode = "router"
addresses = ["198.18.0.1/24", "2001:2::1/64"]
$in_extra

[[port]]
name = "out"
interface = "$DE"
mode = "router"
addresses = ["198.19.0.1/24", "2001:2:0:100::1/64"]
$out_extra

[routing]
routes = ["198.19.1.0/24 via 198.19.0.2", "2001:2:0:101::/64 via 2001:2:0:100::2"]
$extra_routes

$sections
TOML
)" || return 1
  # Warm up: resolve the sink's addresses (ARP) through the engine before the first trial.
  ip -n "$NG" route replace 198.19.0.0/16 via 198.18.0.1
  for a in $SINK_V4; do ip netns exec "$NG" ping -c 3 -i 0.2 -W 1 "$a" >/dev/null || true; done
  pktengine_ctl arp show
}

dut_pktengine() { pktengine_start ""; }

dut_pktengine_fulltable() {
  zcat "$ROOT/bench/data/bgp-prefixes.txt.gz" \
    | awk '{ if (index($1, ":")) print $1" via 2001:2:0:100::2"; else print $1" via 198.19.0.2" }' >"$TMP/table.routes"
  local t0 t1 note; t0=$(date +%s.%N)
  pktengine_start "routes_file = \"$TMP/table.routes\"" || return 1
  t1=$(date +%s.%N)
  note=$(printf 'pktengine: 1,062,046 prefixes from a routes file; engine up (routes loaded and published, XDP attached) in %.1f s' "$(python3 -c "print($t1 - $t0)")")
  echo "bench.sh: $note"
  echo "$note" >>"$TMP/load-note"
}

# DUT "pktengine-nat": pktengine plus NAT44 from the generator side (inside) to the sink side
# (outside), with the sink-side port address as the only pool address. The warm-up ping is
# translated too (ICMP id), so it checks the NAT path before the first trial.
dut_pktengine_nat() {
  pktengine_start "" 'nat = "inside"' 'nat = "outside"' '[nat]
pool = ["198.19.0.1"]' || return 1
}

# After the trials: the NAT sessions the trials created (one per flow expected).
dut_pktengine_nat_after() { pktengine_ctl nat show | head -12; }

# DUT "pktengine-lb": pktengine plus one UDP service on the VIP, Maglev (consistent hash of the
# 5-tuple) over the three sink addresses, full NAT from the sink-side port address. The engine
# routes as pktengine; the warm-up pings resolve all three backends (topo_lb's SINK_V4).
dut_pktengine_lb() {
  pktengine_start "" "" "" '[[lb]]
name = "bench"
vip = "198.19.1.100:2000"
proto = "udp"
scheduler = "maglev"
mode = "fullnat"
snat = "198.19.0.1"
backends = ["198.19.0.2:2000 weight 1", "198.19.0.3:2000 weight 1", "198.19.0.4:2000 weight 1"]' || return 1
}

# After the trials: the service's backends with their connection and byte counters (64
# connections over the three expected).
dut_pktengine_lb_after() { pktengine_ctl lb show; }

# DUT "pktengine-switch": the engine as an L2 learning switch, $DI and $DE untagged
# (VLAN 1) ports of one bridge domain; the sink's MAC is learned in the warm-up.
dut_pktengine_switch() {
  pktengine_launch "$(cat <<TOML
[[bridge]]
name = "br0"

[[port]]
name = "in"
interface = "$DI"
mode = "switch"
bridge = "br0"

[[port]]
name = "out"
interface = "$DE"
mode = "switch"
bridge = "br0"
TOML
)" || return 1
  l2_warmup pktengine-switch
  pktengine_ctl mac show
}

# DUT "linux-nat": Linux forwarding (topo_up's one route) with nftables masquerade of
# everything leaving towards the sink: conntrack tracks the 8 flows, NAT rewrites their
# source to 198.19.0.1. The counter counts first packets (new conntrack entries) only.
dut_linux_nat() {
  ip netns exec "$ND" nft -f - <<NFT
table ip bench_nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "$DE" counter masquerade
  }
}
NFT
}

# After the trials: the masquerade rule's counter (the connections NAT'ed).
dut_linux_nat_after() {
  ip netns exec "$ND" nft list chain ip bench_nat postrouting | grep masquerade | sed 's/^ */  nft: /'
}

# DUT "linux-lb": Linux forwarding with nftables as an L4 balancer (this kernel has no IPVS).
# The first packet of a flow to the VIP picks a backend by jhash of its 5-tuple mod 3 (a
# stateless choice like Maglev's) and is dnat'ed to it; the postrouting chain rewrites the
# source to 198.19.0.1 (full NAT, as pktengine-lb). Conntrack keeps the later packets of the
# flow on its backend; the nat chains, and their counters, only see first packets: one rule
# per backend counts its connections.
dut_linux_lb() {
  ip netns exec "$ND" nft -f - <<NFT
table ip bench_lb {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr 198.19.1.100 udp dport 2000 counter \
      dnat to jhash ip saddr . udp sport . ip daddr . udp dport mod 3 \
      map { 0 : 198.19.0.2, 1 : 198.19.0.3, 2 : 198.19.0.4 }
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "$DE" ip daddr 198.19.0.2 counter snat to 198.19.0.1
    oifname "$DE" ip daddr 198.19.0.3 counter snat to 198.19.0.1
    oifname "$DE" ip daddr 198.19.0.4 counter snat to 198.19.0.1
  }
}
NFT
}

# After the trials: connections per backend (the snat rules' counters).
dut_linux_lb_after() {
  ip netns exec "$ND" nft list table ip bench_lb | grep counter | sed 's/^[[:space:]]*/  nft: /'
}

# DUT "linux-bridge": a Linux bridge in the DUT ns with $DI and $DE as ports. STP off (ports
# forward at once); bridge netfilter off (br_netfilter is built into this kernel and would
# pass bridged IPv4 through the netfilter hooks of the DUT ns: not a plain bridge).
dut_linux_bridge() {
  ip netns exec "$ND" sysctl -qw net.bridge.bridge-nf-call-iptables=0 \
    net.bridge.bridge-nf-call-ip6tables=0 net.bridge.bridge-nf-call-arptables=0
  ip -n "$ND" link add br0 type bridge stp_state 0
  ip netns exec "$ND" sysctl -qw net.ipv6.conf.br0.disable_ipv6=1
  ip -n "$ND" link set "$DI" master br0
  ip -n "$ND" link set "$DE" master br0
  ip -n "$ND" link set br0 up
  l2_warmup linux-bridge
  bridge -n "$ND" fdb show br br0 | grep -v permanent | sed 's/^/  bridge: /'
}

# Filter DUTs: one rule set, generated once per run (deterministic: splitmix64 from a fixed seed,
# as bench/benches/filter.rs) into three files: $TMP/filter.nft (table inet filter, forward
# chain, the rules in order), $TMP/filter-sets.nft (the same rules as sets) and
# $TMP/filter.toml (the engine's [filter] section). 1,000 drop rules, ACL-like:
#   25%    ip saddr P drop                    P a /20, /24, /28 or /32 in 198.18.0.0/15
#   12.5%  ip daddr P drop                    the same
#   37.5%  ip saddr S ip daddr D tcp|udp dport X drop   S /16, /24 or /32 in 198.18.0.0/15,
#                                             D /24 or /32 in 198.19.0.0/16, X exact (1-2000),
#                                             1024-65535 or 8000-8999 (the criterion bench's)
#   6.25%  ip daddr D/24 tcp|udp dport LO-HI drop   10, 100 or 1,000 ports, or one; 1 in 4 on the
#                                             flows' own 198.19.1.0/24
#   6.25%  ip saddr S/24 tcp|udp sport LO-HI drop   the same; 1 in 4 from 198.18.0.0/24
#   6.25%  ip saddr|daddr P tcp flags F / M drop    SYN without ACK, SYN+FIN, SYN+RST, FIN
#                                             without ACK, P a /16 or /24
#   6.25%  ip6 saddr P/64 udp dport X drop, ip6 daddr P/56 drop   inside 2001:2::/48
# and first "iif out tcp flags syn / syn,ack drop" (the sink side opens no TCP connection; it also
# keeps the source-prefix drops from being the leading run the engine pushes into its XDP
# blocklist: the whole set stays in the worker's classifier). A candidate matching a benchmark
# packet (the 8 flows, the warm-up pings to and from 198.19.0.2-4) or covering 2001:2::/64 is
# skipped, as are duplicates: every flow packet is tested against all 1,000 rules and accepted.
# The flows do share the key of the rules on their own /24s (20 or so): the engine checks
# those rules' port ranges after its hash hit. Every rule drops, so the sets variant (rules of
# one shape in one set; interval concatenations may not overlap, so an overlapping one stays a
# rule) gives every packet the same verdict. nftables rules carry a counter (only counted on a
# match: free for the flows); a last rule counts what the policy accepts.
filter_ruleset() {
  [ -s "$TMP/filter.toml" ] && return 0
  FILTER_NOTE=$(python3 - "$TMP/filter.nft" "$TMP/filter-sets.nft" "$TMP/filter.toml" "$DI" "$DE" <<'PY'
import ipaddress, sys
nft_path, sets_path, toml_path, di, de = sys.argv[1:6]
N = 1000
M64 = (1 << 64) - 1
state = [2544]
def rnd():  # splitmix64 (pktengine_bench::splitmix)
    state[0] = (state[0] + 0x9E3779B97F4A7C15) & M64
    z = state[0]
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)
def v4(bits, ln, base=0xC6120000, span=0x1FFFF):  # a /ln in 198.18.0.0/15 (or base + span)
    a = (base | (bits & span)) & ~((1 << (32 - ln)) - 1) & 0xFFFFFFFF
    return ipaddress.IPv4Network((a, ln))
def v6(bits, ln):  # a /ln in 2001:2::/48
    a = (0x20010002 << 96 | (bits & ((1 << 80) - 1)) << 16) & ~((1 << (128 - ln)) - 1)
    return ipaddress.IPv6Network((a, ln))
def prange(r):
    lo = 1 + r % 60000
    return (lo, min(65535, lo + (9, 99, 999, 0)[(r >> 20) % 4]))
A = ipaddress.ip_address
PKTS = [dict(iif="in", src=A("198.18.0.2"), dst=A("198.19.1.1"), proto="udp", sport=s, dport=2000, flags=0)
        for s in range(1000, 1008)]
for h in ("198.19.0.2", "198.19.0.3", "198.19.0.4"):
    PKTS.append(dict(iif="in", src=A("198.18.0.2"), dst=A(h), proto="icmp", sport=0, dport=0, flags=0))
    PKTS.append(dict(iif="out", src=A(h), dst=A("198.18.0.2"), proto="icmp", sport=0, dport=0, flags=0))
GEN6 = ipaddress.IPv6Network("2001:2::/64")
def matches(r, p, ranges=True):
    inr = lambda v, rg: rg is None or (not ranges and rg[0] != rg[1]) or rg[0] <= v <= rg[1]
    return ((r["iif"] is None or r["iif"] == p["iif"])
            and (r["src"] is None or (r["src"].version == 4 and p["src"] in r["src"]))
            and (r["dst"] is None or (r["dst"].version == 4 and p["dst"] in r["dst"]))
            and (r["proto"] is None or r["proto"] == p["proto"])
            and inr(p["sport"], r["sport"]) and inr(p["dport"], r["dport"])
            and (r["flags"] is None or not ranges or p["flags"] & r["flags"][3] == r["flags"][2]))
FLAGS = [("syn", "syn,ack", 0x02, 0x12), ("fin,syn", "fin,syn", 0x03, 0x03),
         ("syn,rst", "syn,rst", 0x06, 0x06), ("fin", "fin,ack", 0x01, 0x11)]
def rule(kind, **kw):
    r = dict(kind=kind, iif=None, src=None, dst=None, proto=None, sport=None, dport=None, flags=None)
    r.update(kw)
    return r
rules = [rule("iif", iif="out", proto="tcp", flags=FLAGS[0])]
seen = set()
while len(rules) < N:
    r = rnd(); k = r % 16; r >>= 4
    if k < 4:
        x = rule("src", src=v4(r >> 2, (20, 24, 28, 32)[r % 4]))
    elif k < 6:
        x = rule("dst", dst=v4(r >> 2, (20, 24, 28, 32)[r % 4]))
    elif k < 12:
        dp = (1024, 65535) if r % 4 == 0 else (8000, 8999) if r % 4 == 1 else (1 + (r >> 30) % 2000,) * 2
        x = rule("acl", src=v4(r >> 4, (16, 24, 32)[(r >> 2) % 3]),
                 dst=v4(r >> 24, (24, 32)[(r >> 23) % 2], 0xC6130000, 0xFFFF),
                 proto=("tcp", "udp")[(r >> 40) % 2], dport=dp)
    elif k < 13:
        d = v4(r >> 8, 24, 0xC6130000, 0xFFFF) if r % 4 else ipaddress.IPv4Network("198.19.1.0/24")
        x = rule("dport", dst=d, proto=("tcp", "udp")[(r >> 2) % 2], dport=prange(r >> 3))
    elif k < 14:
        s = v4(r >> 8, 24) if r % 4 else ipaddress.IPv4Network("198.18.0.0/24")
        x = rule("sport", src=s, proto=("tcp", "udp")[(r >> 2) % 2], sport=prange(r >> 3))
    elif k < 15:
        f = FLAGS[r % 4]
        x = rule("flags", src=v4(r >> 4, (16, 24)[(r >> 2) % 2]), proto="tcp", flags=f) if (r >> 3) % 2 else \
            rule("flags", dst=v4(r >> 4, (16, 24)[(r >> 2) % 2], 0xC6130000, 0xFFFF), proto="tcp", flags=f)
    else:
        x = rule("src6", src=v6(r, 64), proto="udp", dport=(1 + (r >> 50) % 2000,) * 2) if r % 2 else \
            rule("dst6", dst=v6(r, 56))
    if any(matches(x, p) for p in PKTS) or any(x[f] is not None and x[f].version == 6 and x[f].overlaps(GEN6)
                                               for f in ("src", "dst")):
        continue
    key = tuple(str(x[f]) for f in ("iif", "src", "dst", "proto", "sport", "dport", "flags"))
    if key in seen:
        continue
    seen.add(key); rules.append(x)

def ports(rg):
    return str(rg[0]) if rg[0] == rg[1] else f"{rg[0]}-{rg[1]}"
def words(r, iif, flags):
    w = [iif] if r["iif"] else []
    for f, kw in (("src", "saddr"), ("dst", "daddr")):
        if r[f] is not None: w.append(f"{'ip' if r[f].version == 4 else 'ip6'} {kw} {r[f]}")
    for f in ("sport", "dport"):
        if r[f]: w.append(f"{r['proto']} {f} {ports(r[f])}")
    if r["flags"]: w.append(flags(r["flags"]))
    return w
def engine_text(r):
    return " ".join(words(r, f"iif {r['iif']}", lambda f: f"tcp flags {f[0]} / {f[1]}") + ["drop"])
def nft_flags(f):
    v = " | ".join(f[0].split(","))
    return f"tcp flags & ({' | '.join(f[1].split(','))}) == {v if ',' not in f[0] else '(' + v + ')'}"
def nft_text(r):
    return " ".join(words(r, f'iifname "{di if r["iif"] == "in" else de}"', nft_flags) + ["counter drop"])
CHAIN = "  chain forward {\n    type filter hook forward priority filter; policy accept;\n"
TAIL = '    counter comment "end of the chain: accepted by the policy"\n  }\n}\n'
with open(nft_path, "w") as f:
    f.write("table inet filter {\n" + CHAIN + "".join(f"    {nft_text(r)}\n" for r in rules) + TAIL)
with open(toml_path, "w") as f:
    f.write("[filter]\n# %d generated rules (scripts/bench.sh filter_ruleset); none matches the benchmark's packets.\n"
            "rules = [\n%s]\ndefault = \"accept\"\n" % (len(rules), "".join(f'    "{engine_text(r)}",\n' for r in rules)))

# Sets: kind -> (set, type, expression, fields, element); single-field sets auto-merge overlaps.
CONCAT = {
    "acl": ("acl4", "ipv4_addr . ipv4_addr . inet_proto . inet_service", "ip saddr . ip daddr . meta l4proto . th dport",
            ("src", "dst", "proto", "dport")),
    "dport": ("dport4", "ipv4_addr . inet_proto . inet_service", "ip daddr . meta l4proto . th dport", ("dst", "proto", "dport")),
    "sport": ("sport4", "ipv4_addr . inet_proto . inet_service", "ip saddr . meta l4proto . th sport", ("src", "proto", "sport")),
    "src6": ("src6", "ipv6_addr . inet_proto . inet_service", "ip6 saddr . meta l4proto . th dport", ("src", "proto", "dport")),
}
SINGLE = {"src": ("src4", "ipv4_addr", "ip saddr", "src"), "dst": ("dst4", "ipv4_addr", "ip daddr", "dst"),
          "dst6": ("dst6", "ipv6_addr", "ip6 daddr", "dst")}
def box(r, fields):
    b = []
    for fl in fields:
        v = r[fl]
        b.append((int(v.network_address), int(v.broadcast_address)) if fl in ("src", "dst")
                 else ((v == "udp") * 1,) * 2 if fl == "proto" else v)
    return b
def elem(r, fields):
    return " . ".join(ports(r[fl]) if fl.endswith("port") else str(r[fl]) for fl in fields)
elems, boxes, loose, flagsets = {}, {}, [], {}
for r in rules:
    k = r["kind"]
    if k in SINGLE:
        elems.setdefault(k, []).append(str(r[SINGLE[k][3]]))
    elif k in CONCAT:
        b = box(r, CONCAT[k][3])
        if any(all(x[0] <= y[1] and y[0] <= x[1] for x, y in zip(b, o)) for o in boxes.get(k, [])):
            loose.append(r); continue
        boxes.setdefault(k, []).append(b); elems.setdefault(k, []).append(elem(r, CONCAT[k][3]))
    elif k == "flags":
        fld = "src" if r["src"] is not None else "dst"
        flagsets.setdefault((fld, r["flags"]), []).append(str(r[fld]))
    else:
        loose.append(r)
defs, chain = [], []
for k, (name, typ, expr, _) in SINGLE.items():
    if k in elems: defs.append((name, typ, True, elems[k])); chain.append(f"{expr} @{name} counter drop")
for k, (name, typ, expr, _) in CONCAT.items():
    if k in elems: defs.append((name, typ, False, elems[k])); chain.append(f"{expr} @{name} counter drop")
for i, ((fld, fl), ps) in enumerate(sorted(flagsets.items())):
    defs.append((f"flags{i}", "ipv4_addr", True, ps))
    chain.append(f"ip {'saddr' if fld == 'src' else 'daddr'} @flags{i} {nft_flags(fl)} counter drop")
chain = [nft_text(r) for r in loose if r["kind"] == "iif"] + chain + [nft_text(r) for r in loose if r["kind"] != "iif"]
with open(sets_path, "w") as f:
    f.write("table inet filter {\n")
    for name, typ, merge, es in defs:
        f.write(f"  set {name} {{\n    type {typ}; flags interval;{' auto-merge;' if merge else ''}\n"
                f"    elements = {{ {', '.join(es)} }}\n  }}\n")
    f.write(CHAIN + "".join(f"    {c}\n" for c in chain) + TAIL)
# The engine's tuples (filter/classifier.rs): one per mask (fields tested, prefix lengths, exact
# ports); and the rules a flow packet hash-hits (same masked key), whose ranges and flags it checks.
def mask(r):
    ex = lambda rg: rg is not None and rg[0] == rg[1]
    p = r["src"] or r["dst"]
    return (r["iif"] is not None, r["src"] and r["src"].prefixlen, r["dst"] and r["dst"].prefixlen,
            p and p.version, r["proto"] is not None, ex(r["sport"]), ex(r["dport"]))
kinds = {}
for r in rules: kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
print(f"{len(rules)} rules ({', '.join(f'{v} {k}' for k, v in kinds.items())}); engine: {len(set(map(mask, rules)))} "
      f"masks (tuples), a flow packet hash-hits {sum(matches(r, PKTS[0], False) for r in rules)} rules and checks their "
      f"ranges; nftables sets variant: {len(defs)} sets, {len(chain)} rules")
PY
) || return 1
  echo "bench.sh: filter rule set: $FILTER_NOTE"
  echo "$FILTER_NOTE" >"$TMP/filter-note"
}

# DUT "linux-filter": Linux forwarding (topo_up's one route) plus the rule set in an nftables
# forward chain, rule by rule as written: nftables evaluates a chain's rules in order, so each
# flow packet, matching none, runs all 1,000 before the policy accepts it. No conntrack (no
# stateful expression in the table).
dut_linux_filter() {
  filter_ruleset || return 1
  local t0 t1; t0=$(date +%s.%N)
  ip netns exec "$ND" nft -f "$TMP/filter.nft" || return 1
  t1=$(date +%s.%N)
  echo "bench.sh: linux-filter: $(ip netns exec "$ND" nft list chain inet filter forward | grep -c ' drop$') drop rules in the forward chain, loaded in $(python3 -c "print(f'{$t1 - $t0:.2f}')") s"
}

# DUT "linux-filter-sets": the same rules as nftables sets (filter-sets.nft): per rule shape one
# set lookup (an interval tree for prefixes, pipapo for the concatenations), the way an
# nftables user would write a large ACL.
dut_linux_filter_sets() {
  filter_ruleset || return 1
  ip netns exec "$ND" nft -f "$TMP/filter-sets.nft" || return 1
  echo "bench.sh: linux-filter-sets: $(ip netns exec "$ND" nft list chain inet filter forward | grep -c ' drop$') drop rules, $(ip netns exec "$ND" nft list sets inet | grep -c '^[[:space:]]*set ') sets"
}

# After the trials: drop rules whose counter moved (none expected) and the last rule's count
# (every packet the chain saw).
dut_linux_filter_after() {
  ip netns exec "$ND" nft list chain inet filter forward | awk '
    / drop$/ { n++; if ($0 !~ /packets 0 /) { hit++; if (hit <= 5) print "  nft: hit: " $0 } }
    /comment/ { sub(/^[[:space:]]*/, ""); last = $0 }
    END { printf "  nft: %d drop rules, %d of them counted packets; %s\n", n, hit, last }'
}
dut_linux_filter_sets_after() { dut_linux_filter_after; }

# DUT "pktengine-filter": pktengine plus the rule set as its [filter] section (default accept).
# The warm-up pings cross the filter too.
dut_pktengine_filter() {
  filter_ruleset || return 1
  local t0 t1; t0=$(date +%s.%N)
  pktengine_start "" "" "" "$(cat "$TMP/filter.toml")" || return 1
  t1=$(date +%s.%N)
  echo "bench.sh: pktengine-filter: engine up with $(grep -c '^    "' "$TMP/filter.toml") filter rules (and warm-up done) in $(python3 -c "print(f'{$t1 - $t0:.1f}')") s"
}

# After the trials: ctl filter show, summed up: rules loaded, rules with hits (none expected),
# the default policy's hits (every flow packet and warm-up ping).
dut_pktengine_filter_after() {
  "$ENGINE" ctl --socket "$TMP/pktengine.sock" filter show | awk '
    /^ *[0-9]+  / { n++; if ($NF != 0) { hit++; if (hit <= 5) print "  engine: hit: " $0 } }
    /default/ { sub(/^[[:space:]]*/, ""); last = $0 }
    END { printf "  engine: %d filter rules, %d of them with hits; %s\n", n, hit, last }'
}

# ---- stateful filter DUTs -------------------------------------------------------------

# DUT "linux-ct": Linux forwarding plus the classic stateful firewall in an nftables forward
# chain; conntrack does not pick up TCP connections in the middle (as the engine's default).
dut_linux_ct() {
  ip netns exec "$ND" nft -f - <<NFT || return 1
table inet fw {
  chain forward {
    type filter hook forward priority 0; policy accept;
    ct state established,related counter accept
    ct state invalid counter drop
    iifname "$DI" ct state new counter accept
    iifname "$DE" counter drop
  }
}
NFT
  ip netns exec "$ND" sysctl -qw net.netfilter.nf_conntrack_tcp_loose=0
}

# After the trials: the rules' counters and the connections conntrack holds.
dut_linux_ct_after() {
  ip netns exec "$ND" nft list chain inet fw forward | grep counter | sed 's/^[[:space:]]*/  nft: /'
  echo "  nft: $(ip netns exec "$ND" cat /proc/sys/net/netfilter/nf_conntrack_count) conntrack entries"
}

# DUT "pktengine-ct": pktengine plus the same rules as its [filter] section, with the sink
# side's policy drop; [conntrack] defaults (its own table: no NAT here).
dut_pktengine_ct() {
  pktengine_start "" "" "" '[filter]
rules = ["ct state established,related accept", "ct state invalid drop", "iif in ct state new accept"]
policy = { out = "drop" }' || return 1
}

# After the trials: the rules' hits and the tracked connections (one per flow expected).
dut_pktengine_ct_after() {
  pktengine_ctl filter show
  pktengine_ctl conn show | tail -4
}

# ---- TCP DUTs -------------------------------------------------------------------------

# The gen ns as a TCP client: no TIME-WAIT kept (crr closes from the client side, thousands of
# times a second), every port above 1023; a ping so the DUT has the client's MAC before the trials.
tcp_client_prep() {
  ip netns exec "$NG" sysctl -qw net.ipv4.tcp_max_tw_buckets=0 net.ipv4.ip_local_port_range="1024 65535"
  ip netns exec "$NG" ping -c 3 -i 0.2 -W 1 198.18.0.1 >/dev/null \
    || echo "bench.sh: warm-up ping to the DUT's 198.18.0.1 failed" >&2
  # The idle round trip (with 64 KiB windows, a connection moves at most 64 KiB per round trip).
  echo "bench.sh: ping 198.18.0.1, 20 x 10 ms: $(ip netns exec "$NG" ping -q -c 20 -i 0.01 -W 1 198.18.0.1 | tail -1)"
  echo "kernel congestion control $(ip netns exec "$NG" sysctl -n net.ipv4.tcp_congestion_control) (gen ns), $(ip netns exec "$ND" sysctl -n net.ipv4.tcp_congestion_control) (DUT ns)" >"$TMP/tcp-note"
}

# DUT "linux-tcp": the kernel's TCP in the DUT ns, four tcpbench servers on 198.18.0.1 (the engine's
# four apps of pktengine-tcp, byte for byte), each one thread, all pinned to ENGINE_CPU, the core
# the engine's worker gets.
dut_linux_tcp() {
  local spec port i
  for spec in "bulk 5001 --bytes $TCP_BULK_BYTES" "bulk 5002 --bytes $TCP_CHECK_BYTES" "discard 9" "http 80"; do
    set -- $spec
    port=$2
    taskset -c "$ENGINE_CPU" ip netns exec "$ND" "$TCPBENCH" server --mode "$1" --port "$port" --bind 198.18.0.1 \
      "${@:3}" --body "$TCP_BODY" >"$TMP/tcpsrv-$port.json" 2>"$TMP/tcpsrv-$port.err" &
    TCP_PIDS="$TCP_PIDS $!"
    i=0
    until grep -q ready "$TMP/tcpsrv-$port.err" 2>/dev/null; do
      sleep 0.05; i=$((i + 1))
      if [ $i -gt 100 ]; then echo "bench.sh: tcpbench server $spec did not start: $(cat "$TMP/tcpsrv-$port.err")" >&2; return 1; fi
    done
  done
  tcp_client_prep
}

# After the trials: the servers' totals (SIGTERM makes each print one JSON line).
dut_linux_tcp_after() {
  local p
  for p in $TCP_PIDS; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  TCP_PIDS=""
  for p in 5001 5002 9 80; do echo "  tcpbench server :$p: $(cat "$TMP/tcpsrv-$p.json")"; done
}

# DUT "pktengine-tcp": pktengine (routing as for the packet DUTs, unused here) plus the four apps.
TCP_ENGINE_BUFFER=${TCP_ENGINE_BUFFER:-1048576}
dut_pktengine_tcp() {
  pktengine_start "" "" "" "$(cat <<TOML
[[tcp]]
app = "bulk"
port = 5001
bytes = $TCP_BULK_BYTES

[[tcp]]
app = "bulk"
port = 5002
bytes = $TCP_CHECK_BYTES

[[tcp]]
app = "discard"
port = 9

[[tcp]]
app = "http"
port = 80
body = "$TCP_BODY"

# The kernel autotunes its socket buffers to megabytes; the engine's are fixed: 1 MiB each here.
[tcp_stack]
send_buffer = $TCP_ENGINE_BUFFER
recv_buffer = $TCP_ENGINE_BUFFER
TOML
)" || return 1
  tcp_client_prep
}

# tcp_trial DUT KIND PORT MODE [CLIENT ARGS...]: one tcpbench client run (GEN_CPU, gen ns) against
# 198.18.0.1:PORT; appends a CSV line and prints its summary (and the error kinds, if any).
tcp_trial() {
  local dut=$1 kind=$2 port=$3 mode=$4 f line c0="" cost=",,," segs=""
  shift 4
  f=$TMP/tcp$RANDOM
  if [ "$MODE" = cost ]; then napi_pin; c0=$(cost_snap); segs=$(gi_frames); fi
  if ! taskset -c "$GEN_CPU" ip netns exec "$NG" "$TCPBENCH" client --connect "198.18.0.1:$port" --mode "$mode" \
      "$@" >"$f.json" 2>"$f.err"; then
    echo "bench.sh: $dut $kind: tcpbench client failed: $(cat "$f.err")" >&2
    return 0
  fi
  if [ -n "$c0" ]; then cost=$(cost_diff "$c0" "$(cost_snap)"); segs=$(($(gi_frames) - segs)); fi
  line=$(python3 - "$f.json" "$dut" "$kind" "$cost" "$segs" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); dut, kind, cost, segs = sys.argv[2:6]
lat = lambda k: "" if r[k] is None else f'{r[k]:.0f}'
print(f'{dut},,{kind},,,,,,{r["gbps"]:.4f},{lat("p50_us")},{lat("p99_us")},{lat("p999_us")},,'
      f'{r["bytes"]},{r["elapsed_s"]:.3f},{r["connections"]},{r["conns_per_s"]:.1f},{r["errors"]},{r["unfinished"]},'
      f'{cost},{segs}')
if r["errors"]:
    print(f"bench.sh: {dut} {kind}: {r['errors']} errors: {r['error_detail']}", file=sys.stderr)
PY
)
  echo "$line" >>"$CSV"
  echo "  $line"
}

# gi_frames: the frames the gen-side veth carried so far, both directions (a TCP trial's segments).
gi_frames() {
  ip netns exec "$NG" sh -c "echo \$((\$(cat /sys/class/net/$GI/statistics/rx_packets) + \$(cat /sys/class/net/$GI/statistics/tx_packets)))"
}

# The TCP trials of one DUT (see the top of the script).
tcp_trials() {
  local dut=$1 rep
  for rep in $(seq "$TCP_REPS"); do
    tcp_trial "$dut" tcp-recv 5001 recv --seconds "$TCP_SECS" --conns "$TCP_STREAMS"
    tcp_trial "$dut" tcp-send 9 send --seconds "$TCP_SECS" --conns "$TCP_STREAMS"
    tcp_trial "$dut" tcp-crr 80 crr --seconds "$TCP_SECS" --conns "$TCP_CONNS" --body "$TCP_BODY"
  done
  # A whole transfer, checked: exact length, the pattern, then EOF (30 s at most).
  tcp_trial "$dut" tcp-check 5002 recv --seconds 30 --conns 1 --bytes "$TCP_CHECK_BYTES"
}

# ---- trials ---------------------------------------------------------------------------

# The sink's scheduling for a DUT: SCHED_FIFO (BENCH_SINK_RT) keeps its latency tail short, but
# an engine worker sharing the sink's core would then only run when the sink sleeps and its RX
# ring overflows (measured: 0.51 vs 0.67 Mpps zero-loss at 64 B): the sink must not outrank the DUT
# it measures. So for engine DUTs on the sink's core the sink runs SCHED_OTHER, like the generator
# beside the kernel DUTs on CPU 0.
sink_sched() {
  case $1 in
    pktengine*) [ "$ENGINE_CPU" = "$SINK_CPU" ] && return 0 ;;
  esac
  echo "$SINK_SCHED"
}

# trial DUT SIZE RATE KIND [SECONDS] -> appends a CSV line, prints it; sets LAST_* for the caller.
trial() {
  local dut=$1 size=$2 rate=$3 kind=$4 secs=${5:-$TRIAL} f c0="" cost=",,,"
  f=$TMP/t$RANDOM
  taskset -c "$SINK_CPU" $(sink_sched "$dut") ip netns exec "$NS" "$PKTGEN" sink --iface "$SI" --duration $((secs + 8)) \
    --idle 400 --frames 16384 --json >"$f.sink" 2>"$f.sinkerr" &
  SINK_PID=$!
  local i=0
  until grep -q ready "$f.sinkerr" 2>/dev/null; do
    sleep 0.05; i=$((i + 1))
    if [ $i -gt 200 ] || ! kill -0 "$SINK_PID" 2>/dev/null; then
      echo "bench.sh: sink did not start: $(cat "$f.sinkerr")" >&2; exit 1
    fi
  done
  if [ "$MODE" = cost ]; then napi_pin; c0=$(cost_snap); fi
  # Cost trials send in bursts of COST_BURST, so the DUT is woken per burst at every rate.
  local burst=1
  [ "$kind" = cost ] && burst=$COST_BURST
  taskset -c "$GEN_CPU" ip netns exec "$NG" "$PKTGEN" send --iface "$GI" --src-mac "$GI_MAC" \
    --dst-mac "$DST_MAC" --src-ip 198.18.0.2 --dst-ip "$DST_IP" --sport "$SPORTS" --dport 2000 \
    --proto udp --size "$size" --rate "$rate" --duration "$secs" --burst "$burst" --json >"$f.gen"
  wait "$SINK_PID"; SINK_PID=""
  [ -n "$c0" ] && cost=$(cost_diff "$c0" "$(cost_snap)")
  # BENCH_KEEP=DIR: keep the generator's and sink's reports (diagnosis).
  [ -n "${BENCH_KEEP:-}" ] && { mkdir -p "$BENCH_KEEP"; for x in gen sink sinkerr; do cp "$f.$x" "$BENCH_KEEP/$dut-$kind-$rate.$x"; done; }
  local line
  line=$(python3 - "$f.gen" "$f.sink" "$dut" "$size" "$kind" "$cost" "$HISTS" <<'PY'
import json, sys
g = json.load(open(sys.argv[1])); s = json.load(open(sys.argv[2]))
dut, size, kind, cost, hists = sys.argv[3:8]
sent, recv = g["packets"], s["packets"]
loss = max(0.0, (sent - recv) / sent) if sent else 1.0
# Delivered rate: received frames over the generator's sending time (the sink's own
# first-to-last span is shorter by the pipeline delay).
el = g["elapsed_s"] or 1e-9
mpps = recv / el / 1e6
gbps = s["bytes"] * 8 / el / 1e9
lat = s["latency_ns"]
print(f'{dut},{size},{kind},{g["pps"]:.0f},{sent},{recv},{loss:.6f},{mpps:.4f},{gbps:.4f},'
      f'{lat["p50"]/1e3:.1f},{lat["p99"]/1e3:.1f},{lat["p999"]/1e3:.1f},{s["bad_ip_checksum"]},,,,,,,{cost},')
# The latency trials' whole histograms (for the CDF plots).
if kind in ("lat50", "lat90", "wake") and "buckets" in lat:
    with open(hists, "a") as f:
        f.write(json.dumps({"dut": dut, "size": int(size), "kind": kind, "offered_pps": round(g["pps"]),
                            "buckets": lat["buckets"]}) + "\n")
# Every flow sent should arrive (the sink keys flows by the stamp's flow id).
fs, fg = len(s["flows"]), sum(1 for n in g["per_flow"] if n)
if fs < fg:
    print(f"bench.sh: {dut} {size} B {kind}: the sink saw {fs} of the {fg} flows sent", file=sys.stderr)
PY
)
  echo "$line" >>"$CSV"
  echo "  $line"
  IFS=, read -r _ _ _ LAST_OFFERED _ LAST_RECEIVED LAST_LOSS LAST_MPPS _ <<<"$line"
}

# zero_loss DUT SIZE MAX_OFFERED MAX_LOSS: RFC 2544 zero-loss search (binary, STEPS trials between
# 0 and the max-rate trial's offered rate); appends the rfc2544 row, sets BEST (pps).
zero_loss() {
  local dut=$1 size=$2 max_offered=$3 max_loss=$4
  local lo=0 hi=$max_offered mid
  BEST=0
  if python3 -c "import sys; sys.exit(0 if $max_loss <= $LOSS else 1)"; then
    BEST=$max_offered
  else
    for _ in $(seq "$STEPS"); do
      mid=$(( (lo + hi) / 2 ))
      trial "$dut" "$size" "$mid" search
      # A passing trial counts with the rate the generator really offered (it may fall
      # short of the asked one), never more than the best so far is replaced by less.
      if python3 -c "import sys; sys.exit(0 if $LAST_LOSS <= $LOSS else 1)"; then
        lo=$mid; [ "$LAST_OFFERED" -gt "$BEST" ] && BEST=$LAST_OFFERED
      else
        hi=$mid
      fi
    done
  fi
  echo "$dut,$size,rfc2544,$BEST,,,,$(python3 -c "print(f'{$BEST/1e6:.4f}')"),,,,,,,,,,,,,,,," >>"$CSV"
  echo "  $dut $size B: zero-loss (<= $LOSS) throughput $BEST pps"
}

run_dut() {
  local dut=$1
  echo "bench.sh: DUT $dut"
  local fn=dut_${dut//-/_}
  # 8 flows (source ports 1000-1007) unless the topology sets more (topo_lb: 64).
  SPORTS=1000-1007
  case "$dut" in
    none) topo_direct ;;
    linux-bridge | pktengine-switch) topo_l2 ;;
    linux-lb | pktengine-lb) topo_up; topo_lb ;;
    *) topo_up ;;
  esac
  if [ "$MODE" = cost ]; then
    if [ "$dut" = none ]; then napi_threaded "$NG:$GI" "$NS:$SI"; else napi_threaded "$NG:$GI" "$ND:$DI" "$ND:$DE" "$NS:$SI"; fi
  fi
  if [ "$dut" != none ] && ! "$fn"; then
    echo "bench.sh: DUT $dut did not come up: skipped" >&2
    [ -n "$DUT_PID" ] && { kill "$DUT_PID" 2>/dev/null; wait "$DUT_PID" 2>/dev/null; DUT_PID=""; }
    for p in $TCP_PIDS; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; TCP_PIDS=""
    topo_down; return 0
  fi
  # TCP DUTs: their own trials, no frame sizes; their engine stats in full below.
  local sizes=$SIZES stats_lines=20
  case "$dut" in *-tcp) tcp_trials "$dut"; sizes=""; stats_lines=200 ;; esac
  for size in $sizes; do
    trial "$dut" "$size" max max
    local max_offered=$LAST_OFFERED max_mpps=$LAST_MPPS max_loss=$LAST_LOSS
    case " $DETAIL_SIZES " in *" $size "*) ;; *) continue ;; esac
    if [ "$MODE" = cost ]; then
      local rate
      for rate in $COST_RATES; do trial "$dut" "$size" "$rate" cost; done
      zero_loss "$dut" "$size" "$max_offered" "$max_loss"
      # Latency at 50% and 90% of the zero-loss rate, the DUT on its own core; then wake-up latency.
      if [ "$BEST" -gt 0 ]; then
        trial "$dut" "$size" $((BEST / 2)) lat50
        trial "$dut" "$size" $((BEST * 9 / 10)) lat90
      fi
      trial "$dut" "$size" "$WAKE_RATE" wake "$WAKE_SECS"
      continue
    fi
    local r50 r90
    r50=$(python3 -c "print(int($max_mpps * 1e6 * 0.5))"); r90=$(python3 -c "print(int($max_mpps * 1e6 * 0.9))")
    trial "$dut" "$size" "$r50" lat50
    trial "$dut" "$size" "$r90" lat90
    zero_loss "$dut" "$size" "$max_offered" "$max_loss"
  done
  if declare -F "${fn}_after" >/dev/null; then "${fn}_after" || true; fi
  if [ -n "$DUT_PID" ]; then
    if [ -S "$TMP/pktengine.sock" ]; then
      "$ENGINE" ctl --socket "$TMP/pktengine.sock" stats >"$TMP/$dut.stats" 2>&1 || true
      sed 's/^/  engine: /' "$TMP/$dut.stats" | head -"$stats_lines"
    fi
    kill "$DUT_PID" 2>/dev/null; wait "$DUT_PID" 2>/dev/null || true; DUT_PID=""
  fi
  topo_down
}

T0=$(date +%s)
for d in $DUTS; do run_dut "$d"; done
T1=$(date +%s)

mkdir -p "$OUT"
BASE=$OUT/system-$STAMP
[ "$QUICK" = 1 ] && BASE=$BASE-quick
[ "$MODE" = cost ] && BASE=$BASE-cost
[ -n "${BENCH_TAG:-}" ] && BASE=$BASE-$BENCH_TAG
cp "$CSV" "$BASE.csv"
if [ "$MODE" = cost ]; then
  cp "$HISTS" "$BASE-latency.jsonl"
  # What else ran on the machine meanwhile (other users' builds land on DUT_CPU too: the cost_cpu_ns column).
  LOAD_AVG=$(cut -d' ' -f1-3 /proc/loadavg)
  python3 "$ROOT/bench/cost_report.py" "$BASE.csv" "$BASE-latency.jsonl" "$BASE.md" \
    "kernel $(uname -r); DUT on CPU $DUT_CPU, generator and sink on CPU $INSTR_CPU; engine poll mode $ENGINE_POLL; \
trials of $TRIAL s (wake: $WAKE_SECS s at $WAKE_RATE pps), $STEPS search steps, loss threshold $LOSS; cost rates $COST_RATES pps; \
run took $((T1 - T0)) s; load average at the end $LOAD_AVG; command: BENCH_MODE=cost BENCH_QUICK=$QUICK BENCH_DUTS=\"$DUTS\" scripts/bench.sh; $STAMP"
  if command -v gnuplot >/dev/null; then
    python3 "$ROOT/bench/plot_system.py" "$BASE.csv" "$BASE-latency.jsonl" "$BASE" \
      "BENCH_MODE=cost BENCH_QUICK=$QUICK scripts/bench.sh, $STAMP, release build, $SIZES B, load average $LOAD_AVG"
  fi
  echo "bench.sh: results $BASE.md, $BASE.csv, $BASE-latency.jsonl"
  exit 0
fi
python3 - "$BASE.csv" "$BASE.md" "$LOSS" "$TRIAL" "$STEPS" "$GEN_CPU" "$SINK_CPU" "$((T1 - T0))" \
  "$(cat "$TMP/load-note" 2>/dev/null || echo 'full table not run')" "$(uname -r)" "$ENGINE_CPU" \
  "$(cat "$TMP/filter-note" 2>/dev/null || echo 'filter DUTs not run')" \
  "$TCP_SECS" "$TCP_REPS" "$TCP_CONNS" "$TCP_STREAMS" "$TCP_CHECK_BYTES" "$ENGINE_POLL" \
  "$(cat "$TMP/tcp-note" 2>/dev/null || echo 'TCP DUTs not run')" <<'PY'
import csv, sys
path, md, loss, trial, steps, gcpu, scpu, secs, note, kernel, ecpu, fnote = sys.argv[1:13]
tsecs, treps, tconns, tstreams, tcheck, epoll, tnote = sys.argv[13:20]
allrows = list(csv.DictReader(open(path)))
# Packet trials and TCP trials (kind tcp-*) share the CSV; each has its tables.
rows = [r for r in allrows if not r["kind"].startswith("tcp-")]
trows = [r for r in allrows if r["kind"].startswith("tcp-")]
duts = list(dict.fromkeys(r["dut"] for r in rows))
def get(d, s, k):
    for r in rows:
        if r["dut"] == d and r["size"] == s and r["kind"] == k:
            return r
sizes = list(dict.fromkeys(r["size"] for r in rows))
# Each engine DUT against the kernel DUT doing the same job.
COUNTERPART = {"pktengine": "linux-1route", "pktengine-fulltable": "linux-fulltable",
               "pktengine-nat": "linux-nat", "pktengine-switch": "linux-bridge",
               "pktengine-lb": "linux-lb", "pktengine-filter": "linux-filter", "pktengine-ct": "linux-ct"}
# A second kernel DUT for the same job, shown beside the first when it ran.
ALSO = {"pktengine-filter": "linux-filter-sets"}
def ratio(r, b):
    return f'{float(r["rx_mpps"]) / float(b["rx_mpps"]):.2f}' if r and b and float(b["rx_mpps"]) > 0 else "-"
def counterpart(d, s, k):
    c = COUNTERPART.get(d)
    if not c: return "-"
    v = ratio(get(d, s, k), get(c, s, k))
    t = f"{v} ({c})" if v != "-" else f"- ({c} not run)"
    c2 = ALSO.get(d)
    if c2 and get(c2, s, k):
        t += f"; {ratio(get(d, s, k), get(c2, s, k))} ({c2})"
    return t
out = []
out.append(f"# System benchmark ({kernel}, veth, {secs} s)\n")
if rows:
    out.append(f"gen ns -> DUT ns -> sink ns over veth; 8 UDP flows 198.18.0.2 -> 198.19.1.1 (NAT DUTs: the sink sees "
               f"them from 198.19.0.1; switch DUTs: 198.18.0.2 -> 198.18.0.3 on one subnet, to the sink's MAC; "
               f"LB DUTs: 64 flows to the VIP 198.19.1.100:2000, balanced over the backends 198.19.0.2-198.19.0.4 "
               f"(sink addresses), full NAT from 198.19.0.1; filter DUTs: the 8 flows through 1,000 rules that none "
               f"of them matches; stateful filter DUTs: the 8 flows tracked through the classic firewall); "
               f"pktgen (AF_XDP, copy mode) "
               f"pinned to CPU {gcpu} (the kernel DUTs run in its TX path there), sink pinned to CPU {scpu} (SCHED_FIFO; SCHED_OTHER beside an engine worker on its core), "
               f"engine worker on CPU {ecpu}. "
               f"Trials of {trial} s; zero-loss search: {steps} binary-search steps, loss threshold {float(loss)*100:g}%.\n")
    out.append("Ratios: delivered (or zero-loss) Mpps over that of linux-1route, and for the engine DUTs over their "
               "kernel counterpart (pktengine: linux-1route, pktengine-fulltable: linux-fulltable, pktengine-nat: "
               "linux-nat, pktengine-switch: linux-bridge, pktengine-lb: linux-lb, pktengine-filter: linux-filter and, "
               "second, linux-filter-sets, pktengine-ct: linux-ct).\n")
    out.append(f"Full table: {note}.\n")
    out.append(f"Filter rule set: {fnote}.\n")
    out.append("## Throughput at max offered rate\n")
    out.append("| DUT | size (B) | offered Mpps | delivered Mpps | Gbit/s | loss | p50 µs | p99 µs | vs linux-1route | vs kernel counterpart |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for d in duts:
        for s in sizes:
            r = get(d, s, "max")
            if not r: continue
            out.append(f'| {d} | {s} | {float(r["offered_pps"])/1e6:.3f} | {float(r["rx_mpps"]):.3f} | {float(r["rx_gbps"]):.3f} | '
                       f'{float(r["loss"])*100:.3f}% | {r["p50_us"]} | {r["p99_us"]} | {ratio(r, get("linux-1route", s, "max"))} | '
                       f'{counterpart(d, s, "max")} |')
    out.append("\n## Zero-loss throughput (RFC 2544 style) and latency under load\n")
    out.append("| DUT | size (B) | zero-loss Mpps | vs linux-1route | vs kernel counterpart | @50%: p50 / p99 / p99.9 µs | @90%: p50 / p99 / p99.9 µs |")
    out.append("|---|---:|---:|---:|---:|---|---|")
    for d in duts:
        for s in sizes:
            z = get(d, s, "rfc2544")
            if not z: continue
            l5, l9 = get(d, s, "lat50"), get(d, s, "lat90")
            f = lambda r: f'{r["p50_us"]} / {r["p99_us"]} / {r["p999_us"]}' if r else "-"
            out.append(f'| {d} | {s} | {float(z["rx_mpps"]):.3f} | {ratio(z, get("linux-1route", s, "rfc2544"))} | '
                       f'{counterpart(d, s, "rfc2544")} | {f(l5)} | {f(l9)} |')
    bad = sum(int(r["bad_ip_checksum"] or 0) for r in rows)
    out.append(f"\nIPv4 header checksums that failed at the sink, all trials: {bad}.\n")
    out.append("Every trial: the CSV beside this file. The generator alone tops out near 0.6 Mpps at 64 B "
               "(bench/README.md), so DUTs faster than that show the generator's limit, not their own.\n")

# TCP DUTs: the median of the repetitions per measure, engine over kernel.
TCP_COUNTERPART = {"pktengine-tcp": "linux-tcp"}
if trows:
    tduts = list(dict.fromkeys(r["dut"] for r in trows))
    def vals(d, k, f):
        return sorted(float(r[f]) for r in trows if r["dut"] == d and r["kind"] == k and r[f] not in ("", None))
    def med(d, k, f):
        v = vals(d, k, f)
        return v[(len(v) - 1) // 2] if v else None
    out.append("## TCP: the engine's endpoint vs the kernel's TCP\n")
    out.append(f"tcpbench client (the kernel's TCP) in the gen ns, 198.18.0.2, on CPU {gcpu}; the DUT's server on "
               f"198.18.0.1 on CPU {ecpu}: linux-tcp = tcpbench servers (one thread, epoll, each), pktengine-tcp = the "
               f"engine's [[tcp]] apps (one worker, poll mode {epoll}). MSS 1460 both ways (veth MTU 1500), transmit checksum offload off "
               f"on the sending veths (no TSO); {tnote}, the engine NewReno. Trials of {tsecs} s, {treps} repetition(s) per DUT "
               f"run (a DUT listed n times in BENCH_DUTS runs n times, interleaved), median of all shown; bulk and "
               f"discard over {tstreams} connection(s), crr with {tconns} concurrent connections (connect, GET, whole "
               f"response by Content-Length and body checked, close), latency of one connection from connect to the "
               f"last response byte.\n")
    pairs = [(e, k) for e, k in TCP_COUNTERPART.items() if e in tduts and k in tduts]
    out.append("| measure | " + " | ".join(tduts + [f"{e} / {k}" for e, k in pairs]) + " |")
    out.append("|---|" + "---:|" * (len(tduts) + len(pairs)))
    JOBS = [("tcp-recv", "rx_gbps", "bulk DUT → client (bulk app; client recv), Gbit/s", "{:.3f}"),
            ("tcp-send", "rx_gbps", "client → DUT (discard app; client send), Gbit/s", "{:.3f}"),
            ("tcp-crr", "tcp_conns_per_s", "HTTP connect/request/response/close (http app; crr), connections/s", "{:.0f}"),
            ("tcp-crr", "p50_us", "crr connection latency p50, µs", "{:.0f}"),
            ("tcp-crr", "p99_us", "crr connection latency p99, µs", "{:.0f}"),
            ("tcp-check", "rx_gbps", f"checked bulk transfer of {int(tcheck):,} bytes (to EOF), Gbit/s", "{:.3f}")]
    for k, f, label, fmt in JOBS:
        cells = [med(d, k, f) for d in tduts]
        line = f"| {label} | " + " | ".join("-" if v is None else fmt.format(v) for v in cells)
        for e, kk in pairs:
            a, b = med(e, k, f), med(kk, k, f)
            line += " | " + (f"{a / b:.2f}" if a is not None and b else "-")
        out.append(line + " |")
    def check(d):
        r = [x for x in trows if x["dut"] == d and x["kind"] == "tcp-check"]
        ok = [x for x in r if x["tcp_errors"] == "0" and x["tcp_unfinished"] == "0" and x["tcp_conns"] == "1"]
        return f"{len(ok)} of {len(r)} complete" if r else "-"
    errs = lambda d: sum(int(x["tcp_errors"] or 0) for x in trows if x["dut"] == d)
    out.append("| checked transfer: exact length, pattern, EOF | " + " | ".join([check(d) for d in tduts] + [""] * len(pairs)) + " |")
    out.append("| errors, all TCP trials (connect, reset, pattern, short, HTTP, timeout) | "
               + " | ".join([str(errs(d)) for d in tduts] + [""] * len(pairs)) + " |")
    n = lambda d: len(vals(d, "tcp-recv", "rx_gbps"))
    out.append("\nTrials per measure: " + ", ".join(f"{d} {n(d)}" for d in tduts) + ".")
    out.append("\nEvery TCP trial: the tcp-* rows of the CSV (rx_gbps, crr latency in p50/p99/p999_us, tcp_* columns).\n")
open(md, "w").write("\n".join(out))
print("\n".join(out))
PY

if command -v gnuplot >/dev/null; then
  python3 - "$BASE.csv" "$TMP/plot.dat" "$TMP/tcp-gbps.dat" "$TMP/tcp-crr.dat" <<'PY'
import csv, sys
allrows = list(csv.DictReader(open(sys.argv[1])))
rows = [r for r in allrows if r["kind"] == "max"]
duts = list(dict.fromkeys(r["dut"] for r in rows)); sizes = list(dict.fromkeys(r["size"] for r in rows))
if rows:
    with open(sys.argv[2], "w") as f:
        f.write("size " + " ".join(duts) + "\n")
        for s in sizes:
            vals = [next((r["rx_mpps"] for r in rows if r["dut"] == d and r["size"] == s), "0") for d in duts]
            f.write(s + " " + " ".join(vals) + "\n")
# TCP: medians per DUT, Gbit/s of recv and send, connections/s of crr.
trows = [r for r in allrows if r["kind"].startswith("tcp-")]
tduts = list(dict.fromkeys(r["dut"] for r in trows))
def med(d, k, f):
    v = sorted(float(r[f]) for r in trows if r["dut"] == d and r["kind"] == k and r[f])
    return str(v[(len(v) - 1) // 2]) if v else "0"
if trows:
    with open(sys.argv[3], "w") as f:
        f.write("job " + " ".join(tduts) + "\n")
        for k, label in (("tcp-recv", "bulk_DUT->client"), ("tcp-send", "client->DUT")):
            f.write(label + " " + " ".join(med(d, k, "rx_gbps") for d in tduts) + "\n")
    with open(sys.argv[4], "w") as f:
        f.write("job " + " ".join(tduts) + "\n")
        f.write("http_crr " + " ".join(med(d, "tcp-crr", "tcp_conns_per_s") for d in tduts) + "\n")
PY
  HIST='set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top right
set grid ytics
set yrange [0:*]'
  TCP_PNG=$BASE-tcp.png
  if [ -s "$TMP/plot.dat" ]; then
    # One panel per function, kernel and engine in two fixed colours, the ratio above each pair, the
    # none DUT's rate as the instrument's limit (bench/plot_system.py): $BASE-rate.png and .svg.
    python3 "$ROOT/bench/plot_system.py" "$BASE.csv" - "$BASE" "veth, $(uname -r), $STAMP, scripts/bench.sh"
  else
    TCP_PNG=$BASE.png
  fi
  if [ -s "$TMP/tcp-gbps.dat" ]; then
    ncol=$(head -1 "$TMP/tcp-gbps.dat" | wc -w)
    gnuplot <<EOF
set terminal pngcairo size 1200,500 noenhanced
set output "$TCP_PNG"
set multiplot layout 1,2 title "TCP: the engine's endpoint vs the kernel's (veth, $(uname -r), medians)"
$HIST
set ylabel "Gbit/s"
plot for [i=2:$ncol] "$TMP/tcp-gbps.dat" using i:xtic(1) title columnheader(i)
set ylabel "connections/s"
plot for [i=2:$ncol] "$TMP/tcp-crr.dat" using i:xtic(1) title columnheader(i)
unset multiplot
EOF
    echo "bench.sh: plot $TCP_PNG"
  fi
else
  echo "bench.sh: gnuplot not installed (scripts/deps.sh installs gnuplot-nox): no plot"
fi
echo "bench.sh: results $BASE.md, $BASE.csv"
