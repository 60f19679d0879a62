#!/usr/bin/env bash
# Issue 21: capture a Linux client echoing data through loss to the engine's
# echo app (or to a kernel echo server routed through the same engine), and
# show what the client's retransmission timer did.
#
#   scripts/tcp-loss-trace.sh engine          # the engine's [[tcp]] echo app
#   scripts/tcp-loss-trace.sh kernel          # a Linux echo server in h2, timestamps on (the default)
#   scripts/tcp-loss-trace.sh kernel-nots     # the same, RFC 7323 timestamps off in h1 and h2
#   scripts/tcp-loss-trace.sh analyse DIR     # only the analysis of an earlier run's DIR
#
# Environment: BYTES (5000000), BUFFER (1048576: engine [tcp_stack]
# send_buffer/recv_buffer; the kernel server's SO_RCVBUF/SO_SNDBUF and
# TCP_WINDOW_CLAMP), CC (the client's congestion control, default: the host's), DROP
# (0.02), REORDER (0), SEED (21), LIMIT (120 s, the client's), OUT (a fresh
# directory under /tmp). Needs a built workspace ($CARGO_TARGET_DIR or
# target/, debug). SACK is off in both hosts (net.ipv4.tcp_sack=0).
#
#   h1 198.18.1.2 ── lan [pktengine, impair drop on lan] wan ── h2 198.19.1.2
#
# Loss is the engine's [impair] stage on its lan port, both directions: it
# sees every frame on that port, the engine's own TCP segments and the frames
# it routes to and from h2, so both servers get the same loss. Namespaces and
# veths carry the pkt-<pid>- prefix the tests' sweep knows and are deleted on
# exit. The capture (headers only, 128 bytes) and the ss samples stay in OUT.
set -euo pipefail

MODE=${1:-engine}
here=$(cd "$(dirname "$0")/.." && pwd)

analyse() {
    local out=$1
    local cap=$out/client.pcap
    echo "== $out"
    [ -f "$out/result" ] && cat "$out/result"
    # One line per TCP segment: time, direction (c = client to server), seq, end, ack, window, len.
    tcpdump -r "$cap" -nn -tt -S 'tcp' 2>/dev/null | awk '
        {
            t = $1; src = $3; dir = (src ~ /^198\.18\.1\.2\./) ? "c" : "s";
            seq = "-"; ack = "-"; win = "-"; len = 0; flags = "";
            for (i = 1; i <= NF; i++) {
                if ($i == "Flags") flags = $(i+1);
                if ($i == "seq") { seq = $(i+1); sub(",", "", seq) }
                if ($i == "ack") { ack = $(i+1); sub(",", "", ack) }
                if ($i == "win") { win = $(i+1); sub(",", "", win) }
                if ($i == "length") { len = $(i+1); sub(",", "", len) }
            }
            print t, dir, flags, seq, ack, win, len
        }' > "$out/segments.txt"
    # Client->server: first data seq, retransmissions (data at or below the highest
    # byte already sent), and the gaps before retransmissions that followed
    # silence: the client's timeouts.
    awk '
        $2 == "c" && $4 != "-" {
            split($4, r, ":"); if (r[2] == "") next;
            s = r[1] + 0; e = r[2] + 0;
            if (!init) { base = s; init = 1; }
            rs = s - base; re = e - base;
            if (re <= maxend) {
                retx++;
                gap = $1 - last_c;
                if (gap > 0.15) { printf "timeout  t=%.3f  seq %.0f (rel %.0f) after %.3f s of silence from the client; server acked rel %.0f last\n", $1 - t0, s, rs, gap, lastack - base; nto++ }
            } else if (re > maxend) maxend = re;
            last_c = $1;
        }
        $2 == "c" && !t0 { t0 = $1 }
        $2 == "s" && $5 != "-" { a = $5 + 0; lastack = a }
        END { printf "client data segments retransmitted: %d, after a timeout: %d\n", retx, nto }
    ' "$out/segments.txt" | tee "$out/timeouts.txt" | tail -n 40
    # The server's ACKs: how many, how many duplicates (same ack, no data), windows seen.
    awk '
        $2 == "s" && $5 != "-" {
            n++; a = $5 + 0; w = $6 + 0;
            if ($7 == 0 && a == prev) dup++;
            if ($7 == 0 && a == prev && $6 == prevw) dupsame++;
            prev = a; prevw = $6;
            if (w < minw || minw == "") minw = w; if (w > maxw) maxw = w;
            if (w == 0) zero++;
        }
        END { printf "server segments %d, pure duplicate ACKs %d (same window %d), window min %d max %d (raw field), zero windows %d\n", n, dup, dupsame, minw, maxw, zero }
    ' "$out/segments.txt"
    # The client's retransmission timer as ss saw it (rto and backoff changes).
    if [ -f "$out/engine.pcap" ]; then
        echo "the engine's receiver, replayed (scripts/tcp-loss-model.py):"
        python3 "$here/scripts/tcp-loss-model.py" "$out/engine.pcap" | tee "$out/model.txt"
    fi
    if [ -f "$out/ss.log" ]; then
        echo "client rto/backoff (ss -ti, changes only):"
        awk -v t0="$(head -1 "$out/segments.txt" | cut -d' ' -f1)" '
            /^T / { t = $2 }
            / rto:/ {
                rto = ""; bo = "0";
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^rto:/) rto = substr($i, 5);
                    if ($i ~ /^backoff:/) bo = substr($i, 9);
                }
                k = rto "/" bo;
                if (k != last) { printf "  t=%7.3f rto %s ms backoff %s\n", t - t0, rto, bo; last = k }
            }
        ' "$out/ss.log" | tee "$out/rto.txt" | tail -n 30
    fi
}

if [ "$MODE" = analyse ]; then
    analyse "$2"
    exit 0
fi

BYTES=${BYTES:-5000000}
BUFFER=${BUFFER:-1048576}
DROP=${DROP:-0.02}
REORDER=${REORDER:-0}
SEED=${SEED:-21}
LIMIT=${LIMIT:-120}
OUT=${OUT:-$(mktemp -d /tmp/tcploss-XXXX)}
mkdir -p "$OUT"
chmod 755 "$OUT"
BIN=${PKTENGINE:-${CARGO_TARGET_DIR:-$here/target}/debug/pktengine}
[ -x "$BIN" ] || { echo "build first: $BIN missing" >&2; exit 1; }

P="pkt-$$-0-tl"
H1=${P}h1 D=${P}d H2=${P}h2
L1=tl$$a L2=tl$$b R1=tl$$c R2=tl$$d
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    for n in $H1 $D $H2; do ip netns del "$n" 2>/dev/null || true; done
}
trap cleanup EXIT
for n in $H1 $D $H2; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip link add "$L1" netns "$H1" type veth peer name "$L2" netns "$D"
ip link add "$R1" netns "$D" type veth peer name "$R2" netns "$H2"
for x in "$H1 $L1" "$D $L2" "$D $R1" "$H2 $R2"; do
    set -- $x
    ip netns exec "$1" ethtool -K "$2" tx off >/dev/null
    ip -n "$1" link set "$2" up
done
for dev in $L2 $R1; do ip netns exec "$D" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1"; done
ip -n "$H1" addr add 198.18.1.2/24 dev "$L1"
ip -n "$H2" addr add 198.19.1.2/24 dev "$R2"
ip -n "$H1" route add default via 198.18.1.1
ip -n "$H2" route add default via 198.19.1.1
TS=1
[ "$MODE" = kernel-nots ] && TS=0
for n in $H1 $H2; do
    ip netns exec "$n" sysctl -qw net.ipv4.tcp_sack=0 net.ipv4.tcp_timestamps=$TS
done

cat >"$OUT/engine.toml" <<EOF
[engine]
cores = [1]
poll = "adaptive"
idle_timeout_ms = 10
ctl_socket = "$OUT/ctl.sock"

[[port]]
name = "lan"
interface = "$L2"
mode = "router"
addresses = ["198.18.1.1/24"]

[[port]]
name = "wan"
interface = "$R1"
mode = "router"
addresses = ["198.19.1.1/24"]

[[tcp]]
app = "echo"
port = 7

[tcp_stack]
send_buffer = $BUFFER
recv_buffer = $BUFFER

[impair]
drop = $DROP
reorder = $REORDER
seed = $SEED
ports = ["lan"]
direction = "both"
EOF
ip netns exec "$D" "$BIN" run --config "$OUT/engine.toml" >"$OUT/engine.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$OUT/ctl.sock" ] && break; sleep 0.1; done

SERVER=198.18.1.1
if [ "$MODE" != engine ]; then
    SERVER=198.19.1.2
    ip netns exec "$H2" python3 -u "$here/scripts/kernel-echo.py" "$BUFFER" >"$OUT/server.log" 2>&1 &
    pids+=($!)
    sleep 0.5
fi

if [ "$MODE" = engine ]; then
    # What the engine's TCP received (after the impair stage) and sent (before it), in its order.
    "$BIN" ctl --socket "$OUT/ctl.sock" capture lan --count "${ECOUNT:-8000}" --filter 'tcp port 7' -w "$OUT/engine.pcap" >"$OUT/capture.log" 2>&1 &
    cap_pid=$!
fi
ip netns exec "$H1" tcpdump -i "$L1" -s 128 -w "$OUT/client.pcap" -U 'tcp port 7' 2>"$OUT/tcpdump.log" &
pids+=($!)
ip netns exec "$H1" bash -c "while :; do echo T \$(date +%s.%N); ss -tin dst $SERVER; sleep 0.1; done" >"$OUT/ss.log" 2>&1 &
pids+=($!)
sleep 1

ip netns exec "$H1" timeout "$LIMIT" python3 -c "
import os, socket, hashlib, threading, time
N = $BYTES
data = os.urandom(N)
s = socket.socket()
if '${CC:-}':  # TCP_CONGESTION: root may pick any available algorithm
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b'${CC:-}')
s.settimeout(10)
s.connect(('$SERVER', 7))
s.settimeout(None)
h = hashlib.sha256(); got = 0
def reader():
    global got
    while got < N:
        b = s.recv(1 << 20)
        if not b: break
        h.update(b); got += len(b)
t0 = time.time()
r = threading.Thread(target=reader, daemon=True); r.start()
s.sendall(data)
r.join()
print('mode $MODE bytes', got, 'ok', h.digest() == hashlib.sha256(data).digest(), 'time %.2f s' % (time.time() - t0), flush=True)
" >"$OUT/result" 2>&1 || echo "mode $MODE: client failed or hit the ${LIMIT} s limit (rc $?)" >>"$OUT/result"
sleep 1
if [ -n "${cap_pid:-}" ]; then
    for _ in $(seq 100); do kill -0 "$cap_pid" 2>/dev/null || break; sleep 0.1; done
    kill "$cap_pid" 2>/dev/null || true
fi
[ "$MODE" = engine ] && ip netns exec "$D" "$BIN" ctl --socket "$OUT/ctl.sock" stats >"$OUT/stats.txt" 2>&1 || true
cleanup
trap - EXIT
analyse "$OUT"
