#!/usr/bin/env bash
# TCP under loss (issue #21, "Measure"): goodput of one connection through a router that drops
# packets at random, for the engine's TCP and the kernel's, with and without SACK. Three network
# namespaces this script creates and always deletes:
#
#   client ns [ci] ── veth ── [rc]  router ns  [rs] ── veth ── [si]  server ns
#   198.18.0.2/24           198.18.0.1/24  198.19.0.1/24          198.19.0.2/24
#   tcpbench client         Linux forwarding + nftables loss       the DUT: the engine's [[tcp]] apps,
#   (the kernel's TCP)      (numgen random, both directions)       or tcpbench servers (kernel TCP)
#
# The router ns forwards with the kernel and drops in an nftables forward chain, the same for
# every DUT and independent of it: `numgen random mod 10000 < K drop` with K = loss% x 100, on
# every forwarded packet in either direction (data and ACKs alike; rate 0: no drop rule). Its
# counters give the loss really applied in each trial.
#
# DUTs (LOSS_DUTS, default all three):
#   engine        the engine (one worker, adaptive poll, on ENGINE_CPU) on si, 198.19.0.2, with
#                 [[tcp]] apps bulk (one port per transfer size: the DUT sends) and discard on 9
#                 (the DUT receives), [tcp_stack] send_buffer = recv_buffer = the buffer size;
#                 its TCP has no SACK (the client's kernel keeps its defaults)
#   linux-nosack  tcpbench servers (bulk, discard) on 198.19.0.2 with SO_SNDBUF = SO_RCVBUF = the
#                 buffer size (fixed, no autotuning; the kernel doubles the value for its
#                 bookkeeping, so about that much payload fits), net.ipv4.tcp_sack = 0 in the
#                 client and server ns: the fair reference for a SACK-free design
#   linux-sack    the same with tcp_sack = 1 on both ends (the kernel's default)
# The kernel keeps its defaults otherwise: CUBIC, timestamps, RACK/TLP, F-RTO, min RTO 200 ms.
# The client (kernel TCP, both directions) autotunes its buffers (up to tcp_rmem/tcp_wmem max, MiBs):
# the DUT's buffer is the one that limits the window.
#
# Trials, per (buffer, DUT, loss rate, direction, repetition): one connection, a fixed size per
# loss rate (LOSS_SIZES), capped at LOSS_TIMEOUT seconds (then recorded as unfinished, goodput over
# the bytes moved by then):
#   download  the DUT sends: tcpbench client --mode recv to the bulk port of that size (every byte
#             checked against the pattern, exact length, EOF); goodput = size / (connect to EOF)
#   upload    the DUT receives: tcpbench client --mode send --bytes size to discard; goodput =
#             size / (connect to the DUT's FIN, sent after it read the last byte)
# Retransmitted segments: a Linux sender's TcpRetransSegs (nstat, absolute counters before and after,
# in the sender's netns; also TCPTimeouts, RTO expiries); the engine sender's from its `ctl stats`
# loss-recovery counters (retransmits, timeouts of the `tcp worker N` lines) where the build has
# them, else from the capture (engines before those counters). Longest stall: bench/src/bin/tcpstall.rs on a tcpdump
# capture taken in the router ns on rs (the DUT's side: everything the DUT sent, before any drop),
# the longest interval in which the receiver's cumulative ACK did not advance while data was
# outstanding. The capture also gives the engine's retransmissions (its segments below the highest
# sequence it had sent) and the SACK/timestamp options both SYNs carried (checked per DUT).
#
# Segments, not super-packets: every sending veth has tx checksum offload, TSO and GSO off
# (`ethtool -K tx off tso off gso off`: full checksums, PLATFORM.md; and the kernel's TCP then
# builds MSS-sized skbs), GRO is off on every receiving veth (veth's default, set explicitly), so the
# router sees and drops single MSS-sized segments (1448-1460 bytes of payload: MTU 1500).
#
# CPU placement (2 cores): the client on GEN_CPU (0), the server (the engine's worker or the
# tcpbench servers) on ENGINE_CPU (1), the router's forwarding on ROUTER_CPU (GEN_CPU: RPS on its
# two veths, so one CPU forwards in the order sent; see topo_up). A veth's receive path otherwise
# runs on the sending CPU: the client's TCP input runs after the router's forwarding on ROUTER_CPU,
# the kernel server's in the router's transmit path too. tcpdump is not pinned.
#
# Knobs (environment, or KEY=VALUE arguments):
#   LOSS_QUICK=1        rates 0 1 5, one repetition, smaller sizes (2-4 minutes; the full run: 16 min)
#   LOSS_CHECK=1        one trial (engine, 1% loss, download, 64 KiB): a smoke test, exits non-zero
#                       if it fails; no result files
#   LOSS_RATES          loss rates in percent (default "0 0.1 0.5 1 2 5")
#   LOSS_SIZES          transfer size per rate, RATE:BYTES pairs (default D_SIZES below: 100 MB at 0%
#                       down to 3 MB at 5%); a rate not listed takes the last pair's size
#   LOSS_BUFFERS        DUT buffer sizes in bytes (default "65536 1048576")
#   LOSS_DIRS           "download upload"
#   LOSS_DUTS           "engine linux-nosack linux-sack"
#   LOSS_REPS           repetitions per cell (default 2; the tables show the median goodput, the
#                       sum of the retransmissions and the longest stall of all repetitions)
#   LOSS_TIMEOUT        seconds per trial at most (default 30)
#   LOSS_CAPTURE=0      no capture (no stalls, no engine retransmissions)
#   LOSS_OUT            output directory (bench/results), LOSS_TAG appended to the names
#   LOSS_ENGINE_STACK   more [tcp_stack] lines for the engine, e.g. "recv_buffer_initial = 65536"
#                       (newline-separated; keys the engine build knows)
#   LOSS_KEEP_PCAP=DIR  keep the captures of trials with a stall over 1 s or unfinished there
#   GEN_CPU (client, 0), ENGINE_CPU (server, 1), ROUTER_CPU (the router's forwarding, GEN_CPU)
#
# Output: bench/results/loss-<date>[-quick][-<tag>].csv (every trial), .md (tables, goals), .png and
# .svg (gnuplot: goodput vs loss rate, one panel per direction and buffer, log y).
set -euo pipefail

for a in "$@"; do
  case "$a" in
    *=*) export "${a?}" ;;
    *) echo "lossbench.sh: unknown argument $a (use KEY=VALUE)" >&2; exit 2 ;;
  esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
QUICK=${LOSS_QUICK:-0}
CHECK=${LOSS_CHECK:-0}
# Defaults per mode; the LOSS_* variables override them.
D_RATES="0 0.1 0.5 1 2 5"; D_BUFFERS="65536 1048576"; D_DIRS="download upload"
D_DUTS="engine linux-nosack linux-sack"; D_REPS=2
D_SIZES="0:100000000 0.1:50000000 0.5:20000000 1:10000000 2:5000000 5:3000000"
if [ "$CHECK" = 1 ]; then
  D_RATES=1; D_BUFFERS=65536; D_DIRS=download; D_DUTS=engine; D_REPS=1; D_SIZES="1:5000000"
elif [ "$QUICK" = 1 ]; then
  D_RATES="0 1 5"; D_REPS=1
  D_SIZES="0:50000000 0.1:20000000 0.5:10000000 1:5000000 2:3000000 5:2000000"
fi
RATES=${LOSS_RATES:-$D_RATES}
BUFFERS=${LOSS_BUFFERS:-$D_BUFFERS}
DIRS=${LOSS_DIRS:-$D_DIRS}
DUTS=${LOSS_DUTS:-$D_DUTS}
REPS=${LOSS_REPS:-$D_REPS}
SIZES=${LOSS_SIZES:-$D_SIZES}
TIMEOUT=${LOSS_TIMEOUT:-30}
CAPTURE=${LOSS_CAPTURE:-1}
GEN_CPU=${GEN_CPU:-0}
ENGINE_CPU=${ENGINE_CPU:-1}
ROUTER_CPU=${ROUTER_CPU:-$GEN_CPU}
OUT=${LOSS_OUT:-$ROOT/bench/results}
STAMP=$(date -u +%Y-%m-%d)
TCPBENCH=$TARGET/release/tcpbench
TCPSTALL=$TARGET/release/tcpstall
ENGINE=$TARGET/release/pktengine
# The discard port; bulk ports are 5000 + the size's index in LOSS_SIZES.
DISCARD_PORT=9

[ "$(id -u)" -eq 0 ] || { echo "lossbench.sh: needs root (namespaces, XDP)" >&2; exit 1; }
for t in ip ethtool taskset python3 nft tcpdump nstat; do
  command -v "$t" >/dev/null || { echo "lossbench.sh: $t missing (scripts/deps.sh)" >&2; exit 1; }
done
getent passwd pktengine >/dev/null || { echo "lossbench.sh: user pktengine missing (scripts/deps.sh)" >&2; exit 1; }

echo "lossbench.sh: building tcpbench, tcpstall and the engine (release)"
(cd "$ROOT" && cargo build --release -q -p pktengine-bench --bin tcpbench --bin tcpstall && cargo build --release -q -p engine)

# size_of RATE: the transfer size for a loss rate; port_of RATE: its bulk port.
size_index() {
  local i=0 last=0 p
  for p in $SIZES; do
    if python3 -c "import sys; sys.exit(0 if float('${p%%:*}') == float('$1') else 1)"; then echo "$i"; return; fi
    last=$i; i=$((i + 1))
  done
  echo "$last"
}
size_of() { local i; i=$(size_index "$1"); set -- $SIZES; shift "$i"; echo "${1#*:}"; }
port_of() { echo $((5000 + $(size_index "$1"))); }

ID=$(printf '%x%03x' $$ $((RANDOM % 4096)))
NC=lc-$ID; NR=lr-$ID; NS=ls-$ID
CI=ci$ID; RC=rc$ID; RS=rs$ID; SI=si$ID
TMP=$(mktemp -d /tmp/lossbench.XXXXXX)
CSV=$TMP/trials.csv
echo "dut,buffer,loss_pct,direction,rep,bytes,size,elapsed_s,goodput_mbps,finished,errors,retrans,retrans_source,rto,capture_retrans,longest_stall_ms,stalls_over_200ms,stalls_over_1s,sack,timestamps,router_packets,router_dropped,capture_dropped,engine_tx_drops" >"$CSV"
DUT_PID=""
SRV_PIDS=""
CAP_PID=""

cleanup() {
  set +e
  [ -n "$CAP_PID" ] && kill "$CAP_PID" 2>/dev/null && wait "$CAP_PID" 2>/dev/null
  [ -n "$DUT_PID" ] && kill "$DUT_PID" 2>/dev/null && wait "$DUT_PID" 2>/dev/null
  for p in $SRV_PIDS; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  for n in "$NC" "$NR" "$NS"; do ip netns del "$n" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- topology -------------------------------------------------------------------------

topo_up() {
  for n in "$NC" "$NR" "$NS"; do ip netns add "$n"; ip -n "$n" link set lo up; done
  ip link add "$CI" netns "$NC" type veth peer name "$RC" netns "$NR"
  ip link add "$RS" netns "$NR" type veth peer name "$SI" netns "$NS"
  ip -n "$NC" addr add 198.18.0.2/24 dev "$CI"
  ip -n "$NR" addr add 198.18.0.1/24 dev "$RC"
  ip -n "$NR" addr add 198.19.0.1/24 dev "$RS"
  ip -n "$NS" addr add 198.19.0.2/24 dev "$SI"
  local x
  for x in "$NC:$CI" "$NR:$RC" "$NR:$RS" "$NS:$SI"; do
    # Full checksums and MSS-sized segments on the wire (see the top); no GRO on receive.
    ip netns exec "${x%%:*}" ethtool -K "${x#*:}" tx off tso off gso off gro off >/dev/null 2>&1 \
      || ip netns exec "${x%%:*}" ethtool -K "${x#*:}" tx off >/dev/null
    ip netns exec "${x%%:*}" sysctl -qw "net.ipv6.conf.${x#*:}.disable_ipv6=1"
    ip -n "${x%%:*}" link set "${x#*:}" up
  done
  ip netns exec "$NR" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
    net.ipv4.conf.default.rp_filter=0
  # One CPU forwards, in arrival order: a kernel sender transmits both from its thread and from
  # the softirq of the ACKs that clock it, i.e. from both CPUs, and veth queues each packet on the
  # transmitting CPU's backlog; two backlogs drained in parallel reorder the stream. RPS on the
  # router's receiving veths puts every packet on ROUTER_CPU's backlog, in the order sent.
  local mask; mask=$(printf '%x' $((1 << ROUTER_CPU)))
  for x in "$RC" "$RS"; do
    ip netns exec "$NR" sh -c "echo $mask > /sys/class/net/$x/queues/rx-0/rps_cpus"
  done
  ip -n "$NC" route add 198.19.0.0/24 via 198.18.0.1
  ip -n "$NS" route add 198.18.0.0/24 via 198.19.0.1
  ip netns exec "$NR" nft -f - <<NFT
table inet loss {
  chain forward {
    type filter hook forward priority 0; policy accept;
  }
}
NFT
  echo "lossbench.sh: offloads on $CI: $(ip netns exec "$NC" ethtool -k "$CI" | grep -E '^(tx-checksumming|tcp-segmentation-offload|generic-segmentation-offload|generic-receive-offload):' | tr -s ' \n' ' ')"
}

# set_loss PCT: the router's forward chain: one counter of every packet, then the random drop.
set_loss() {
  local k
  k=$(python3 -c "print(round(float('$1') * 100))")
  ip netns exec "$NR" nft flush chain inet loss forward
  ip netns exec "$NR" nft add rule inet loss forward counter
  [ "$k" -gt 0 ] && ip netns exec "$NR" nft add rule inet loss forward numgen random mod 10000 "<" "$k" counter drop
  return 0
}

# router_counts -> "packets dropped" of the forward chain since set_loss.
router_counts() {
  ip netns exec "$NR" nft list chain inet loss forward | python3 -c '
import re, sys
c = [int(m) for m in re.findall(r"counter packets (\d+)", sys.stdin.read())]
print(c[0] if c else 0, c[1] if len(c) > 1 else 0)'
}

# ---- DUTs ------------------------------------------------------------------------------

# The engine on $SI: one router-mode port with the server address, the route back to the client
# via the router, a bulk app per transfer size and discard; buffers $1.
engine_up() {
  local buf=$1 apps="" p
  for p in $SIZES; do
    apps="$apps
[[tcp]]
app = \"bulk\"
port = $(port_of "${p%%:*}")
bytes = ${p#*:}
"
  done
  ip -n "$NS" addr flush dev "$SI"
  cat >"$TMP/engine.toml" <<TOML
[engine]
cores = [$ENGINE_CPU]
poll = "adaptive"
ctl_socket = "$TMP/engine.sock"

[[port]]
name = "p0"
interface = "$SI"
mode = "router"
addresses = ["198.19.0.2/24"]

[routing]
routes = ["198.18.0.0/24 via 198.19.0.1"]
$apps
[[tcp]]
app = "discard"
port = $DISCARD_PORT

[tcp_stack]
send_buffer = $buf
recv_buffer = $buf
${LOSS_ENGINE_STACK:-}
TOML
  rm -f "$TMP/engine.sock"
  ip netns exec "$NS" "$ENGINE" run --config "$TMP/engine.toml" >"$TMP/engine.log" 2>&1 &
  DUT_PID=$!
  local i=0
  until [ -S "$TMP/engine.sock" ]; do
    sleep 0.1; i=$((i + 1))
    if [ $i -gt 600 ] || ! kill -0 "$DUT_PID" 2>/dev/null; then
      echo "lossbench.sh: the engine did not start: $(cat "$TMP/engine.log")" >&2; return 1
    fi
  done
}

engine_down() {
  echo "lossbench.sh: engine ctl stats (tcp):"
  "$ENGINE" ctl --socket "$TMP/engine.sock" stats 2>&1 | grep -vE ' 0$' | sed 's/^/  /' | head -60 || true
  kill "$DUT_PID" 2>/dev/null; wait "$DUT_PID" 2>/dev/null || true; DUT_PID=""
  ip -n "$NS" addr add 198.19.0.2/24 dev "$SI" 2>/dev/null || true
  ip -n "$NS" route replace 198.18.0.0/24 via 198.19.0.1
}

# tcpbench servers on 198.19.0.2 (server ns, ENGINE_CPU): bulk per size and discard, SO_SNDBUF and
# SO_RCVBUF = $1.
kernel_up() {
  local buf=$1 spec port i p
  local specs="discard:$DISCARD_PORT:0"
  for p in $SIZES; do specs="$specs bulk:$(port_of "${p%%:*}"):${p#*:}"; done
  for spec in $specs; do
    IFS=: read -r mode port bytes <<<"$spec"
    taskset -c "$ENGINE_CPU" ip netns exec "$NS" "$TCPBENCH" server --mode "$mode" --port "$port" \
      --bind 198.19.0.2 --bytes "$bytes" --sndbuf "$buf" --rcvbuf "$buf" \
      >"$TMP/srv-$port.json" 2>"$TMP/srv-$port.err" &
    SRV_PIDS="$SRV_PIDS $!"
    i=0
    until grep -q ready "$TMP/srv-$port.err" 2>/dev/null; do
      sleep 0.05; i=$((i + 1))
      if [ $i -gt 100 ]; then echo "lossbench.sh: tcpbench server $spec did not start: $(cat "$TMP/srv-$port.err")" >&2; return 1; fi
    done
  done
}

kernel_down() {
  local p
  for p in $SRV_PIDS; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  SRV_PIDS=""
}

# sack_both 0|1: net.ipv4.tcp_sack in the client and server ns (the sysctl is per netns).
sack_both() {
  ip netns exec "$NC" sysctl -qw "net.ipv4.tcp_sack=$1"
  ip netns exec "$NS" sysctl -qw "net.ipv4.tcp_sack=$1"
}

# ---- trials ----------------------------------------------------------------------------

# engine_counters -> "TX_DROPS RETRANSMITS TIMEOUTS" of the engine so far: frames dropped for a
# full TX ring, and the loss-recovery counters of its `tcp worker N` lines, summed over the
# workers ("-" where this build has none: engines before the loss-recovery counters); "0 - -"
# for kernel DUTs.
engine_counters() {
  if [ -n "$DUT_PID" ]; then
    "$ENGINE" ctl --socket "$TMP/engine.sock" stats 2>/dev/null | awk '
      $2 == "tx-ring-full" { n += $3 }
      /^ *tcp worker/ { for (i = 1; i < NF; i++) {
        if ($i == "retransmits") { r += $(i + 1); hr = 1 }
        if ($i == "timeouts") { t += $(i + 1); ht = 1 } } }
      END { print n + 0, (hr ? r : "-"), (ht ? t : "-") }'
  else
    echo "0 - -"
  fi
}

# counters NS -> the TCP counters of that namespace (absolute, history untouched).
counters() {
  ip netns exec "$1" nstat -asz TcpRetransSegs TcpExtTCPTimeouts 2>/dev/null \
    | awk '$1 == "TcpRetransSegs" { r = $2 } $1 == "TcpExtTCPTimeouts" { t = $2 } END { print r + 0, t + 0 }'
}

# trial DUT BUF RATE DIR REP: one transfer; appends a CSV line and prints it.
trial() {
  local dut=$1 buf=$2 rate=$3 dir=$4 rep=$5 size port f
  size=$(size_of "$rate")
  f=$TMP/t-$dut-$buf-$rate-$dir-$rep
  set_loss "$rate"
  # The sender's netns for nstat: the client uploads, the server downloads.
  local sender_ns=$NC
  [ "$dir" = download ] && sender_ns=$NS
  local before after
  before=$(counters "$sender_ns")
  local eng0 eng1
  eng0=$(engine_counters)
  if [ "$CAPTURE" = 1 ]; then
    ip netns exec "$NR" tcpdump -i "$RS" -s 128 -B 16384 -n -w "$f.pcap" "tcp" 2>"$f.cap" &
    CAP_PID=$!
    local i=0
    until grep -q "listening on" "$f.cap" 2>/dev/null; do
      sleep 0.05; i=$((i + 1))
      [ $i -gt 100 ] && { echo "lossbench.sh: tcpdump did not start: $(cat "$f.cap")" >&2; break; }
    done
  fi
  if [ "$dir" = download ]; then
    port=$(port_of "$rate")
    timeout $((TIMEOUT + 30)) taskset -c "$GEN_CPU" ip netns exec "$NC" "$TCPBENCH" client \
      --connect "198.19.0.2:$port" --mode recv --bytes "$size" --seconds "$TIMEOUT" >"$f.json" 2>"$f.err" || true
  else
    timeout $((TIMEOUT + 30)) taskset -c "$GEN_CPU" ip netns exec "$NC" "$TCPBENCH" client \
      --connect "198.19.0.2:$DISCARD_PORT" --mode send --bytes "$size" --seconds "$TIMEOUT" >"$f.json" 2>"$f.err" || true
  fi
  # Let the last ACKs and FINs through before the capture stops.
  sleep 0.2
  if [ -n "$CAP_PID" ]; then
    kill -INT "$CAP_PID" 2>/dev/null; wait "$CAP_PID" 2>/dev/null || true; CAP_PID=""
    "$TCPSTALL" --pcap "$f.pcap" --port "$([ "$dir" = download ] && port_of "$rate" || echo "$DISCARD_PORT")" \
      >"$f.stall" 2>"$f.stallerr" || { echo "lossbench.sh: tcpstall: $(cat "$f.stallerr")" >&2; echo "{}" >"$f.stall"; }
  else
    echo "{}" >"$f.stall"; : >"$f.cap"
  fi
  after=$(counters "$sender_ns")
  eng1=$(engine_counters)
  local line
  line=$(python3 - "$f" "$dut" "$buf" "$rate" "$dir" "$rep" "$size" "$before" "$after" "$(router_counts)" "$eng0" "$eng1" <<'PY'
import json, re, sys
f, dut, buf, rate, d, rep, size, before, after, router, eng0, eng1 = sys.argv[1:13]
e0, e1 = eng0.split(), eng1.split()
txd = int(e1[0]) - int(e0[0])
# The engine's own counters, where this build has them (retransmits, timeouts): per trial.
ectl = None if "-" in (e0[1], e1[1], e0[2], e1[2]) else (int(e1[1]) - int(e0[1]), int(e1[2]) - int(e0[2]))
size = int(size)
try:
    c = json.load(open(f + ".json"))
except Exception:
    c = {"bytes": 0, "elapsed_s": 0, "errors": 1, "unfinished": 1, "error_detail": {"client": open(f + ".err").read()[-200:]}}
s = json.load(open(f + ".stall"))
cap = open(f + ".cap").read()
m = re.search(r"(\d+) packets dropped by kernel", cap)
cap_drop = m.group(1) if m else ""
b0, t0 = map(int, before.split()); b1, t1 = map(int, after.split())
el = c["elapsed_s"] or 1e-9
# Finished: the whole size moved (recv: exact length then EOF; send: all written, the DUT's FIN).
finished = int(c["bytes"] == size and c["unfinished"] == 0 and c["errors"] == 0)
sender_is_engine = dut == "engine" and d == "download"
if sender_is_engine and ectl is not None:
    (retrans, rto), src = ectl, "ctl"
elif sender_is_engine:
    retrans, src, rto = s.get("retrans_segments", ""), "capture", ""
else:
    retrans, src, rto = b1 - b0, "nstat", t1 - t0
rp, rd = router.split()
g = lambda k: "" if s.get(k) is None else (str(s[k]).lower() if isinstance(s[k], bool) else s[k])
print(f'{dut},{buf},{rate},{d},{rep},{c["bytes"]},{size},{el:.3f},{c["bytes"] * 8 / el / 1e6:.2f},{finished},{c["errors"]},'
      f'{retrans},{src},{rto},{g("retrans_segments")},{g("longest_stall_ms")},{g("stalls_over_200ms")},{g("stalls_over_1s")},'
      f'{g("sack")},{g("timestamps")},{rp},{rd},{cap_drop},{txd if dut == "engine" else ""}')
if c["errors"]:
    print(f"lossbench.sh: {dut} {rate}% {d}: errors {c.get('error_detail')}", file=sys.stderr)
PY
)
  echo "$line" >>"$CSV"
  echo "  $line"
  if [ -n "${LOSS_KEEP_PCAP:-}" ] && [ -f "$f.pcap" ] && python3 -c "
import sys; r = sys.argv[1].split(',')
sys.exit(0 if r[9] != '1' or (r[15] and float(r[15]) > 1000) else 1)" "$line"; then
    mkdir -p "$LOSS_KEEP_PCAP"; cp "$f.pcap" "$LOSS_KEEP_PCAP/"
    echo "lossbench.sh: capture kept: $LOSS_KEEP_PCAP/$(basename "$f.pcap")"
  fi
  rm -f "$f.pcap"
}

# A warm-up ping (ARP through the router, the engine's ARP of the router) with no loss.
warmup() {
  set_loss 0
  ip netns exec "$NC" ping -c 3 -i 0.2 -W 1 198.19.0.2 >/dev/null \
    || echo "lossbench.sh: warm-up ping to 198.19.0.2 failed" >&2
}

run_dut() {
  local dut=$1 buf=$2 rate dir rep
  echo "lossbench.sh: DUT $dut, buffers $buf"
  case "$dut" in
    engine) sack_both 1; engine_up "$buf" || return 1 ;;
    linux-nosack) sack_both 0; kernel_up "$buf" || return 1 ;;
    linux-sack) sack_both 1; kernel_up "$buf" || return 1 ;;
    *) echo "lossbench.sh: unknown DUT $dut" >&2; return 1 ;;
  esac
  warmup
  for rate in $RATES; do
    for dir in $DIRS; do
      for rep in $(seq "$REPS"); do trial "$dut" "$buf" "$rate" "$dir" "$rep"; done
    done
  done
  case "$dut" in
    engine) engine_down ;;
    *) kernel_down ;;
  esac
}

T0=$(date +%s)
topo_up
echo "lossbench.sh: ping client -> router: $(ip netns exec "$NC" ping -q -c 10 -i 0.01 -W 1 198.18.0.1 | tail -1)"
for buf in $BUFFERS; do
  for dut in $DUTS; do run_dut "$dut" "$buf"; done
done
T1=$(date +%s)

if [ "$CHECK" = 1 ]; then
  # Smoke: every trial finished, without errors, with loss applied and a stall figure.
  python3 - "$CSV" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
bad = [r for r in rows if r["finished"] != "1" or r["longest_stall_ms"] == "" or (float(r["loss_pct"]) > 0 and r["router_dropped"] == "0")]
print(f"lossbench.sh: check: {len(rows)} trial(s), {len(bad)} bad")
sys.exit(1 if bad or not rows else 0)
PY
  exit $?
fi

mkdir -p "$OUT"
BASE=$OUT/loss-$STAMP
[ "$QUICK" = 1 ] && BASE=$BASE-quick
[ -n "${LOSS_TAG:-}" ] && BASE=$BASE-$LOSS_TAG
cp "$CSV" "$BASE.csv"
python3 "$ROOT/scripts/lossbench_report.py" "$BASE.csv" "$BASE.md" "$TMP/plot" \
  "kernel $(uname -r); client on CPU $GEN_CPU, server on CPU $ENGINE_CPU; $((T1 - T0)) s; timeout $TIMEOUT s per trial; sizes (loss%:bytes) $SIZES; capture $CAPTURE"

if command -v gnuplot >/dev/null && [ -s "$TMP/plot.panels" ]; then
  for term in "pngcairo size 1400,1000 noenhanced:$BASE.png" "svg size 1400,1000 noenhanced:$BASE.svg"; do
    {
      echo "set terminal ${term%%:*}"
      echo "set output \"${term#*:}\""
      cat "$TMP/plot.gp"
    } | gnuplot
  done
  echo "lossbench.sh: plot $BASE.png, $BASE.svg"
else
  echo "lossbench.sh: gnuplot not installed (scripts/deps.sh installs gnuplot-nox): no plot"
fi
echo "lossbench.sh: results $BASE.md, $BASE.csv"
