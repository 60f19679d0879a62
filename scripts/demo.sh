#!/usr/bin/env bash
# The README's first command: builds pktengine and runs it as a router on a
# built-in topology of network namespaces, shows real traffic crossing it,
# prints its counters, and removes everything again (also on Ctrl-C).
#
#   host1 198.18.1.2/24  ── pe-lan [ pktengine ] pe-wan ──  host2 198.19.1.2/24
#         2001:2:0:1::2/64                                         2001:2:0:2::2/64
#                                                   (python http.server on host2)
#
# The engine runs examples/router.toml (its ctl socket path changed, an HTTP app of the
# engine's own TCP added), then
# examples/nat.toml on the same topology (host1 inside, host2 outside).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

if [ "$(id -u)" -ne 0 ]; then
    echo "demo.sh: needs root (network namespaces, XDP)" >&2
    exit 1
fi

scripts/deps.sh
cargo build --release -p engine

bin=$PWD/target/release/pktengine
tag=$$
H1=pe-demo-h1-$tag
DUT=pe-demo-dut-$tag
H2=pe-demo-h2-$tag
work=$(mktemp -d /tmp/pktengine-demo.XXXXXX)
engine_pid=
http_pid=

cleanup() {
    set +e
    [ -n "$http_pid" ] && kill "$http_pid" 2>/dev/null
    if [ -n "$engine_pid" ] && kill -0 "$engine_pid" 2>/dev/null; then
        kill -TERM "$engine_pid"
        wait "$engine_pid" 2>/dev/null
    fi
    for ns in "$H1" "$DUT" "$H2"; do ip netns del "$ns" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'echo; echo "demo.sh: interrupted, cleaning up"; exit 130' INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

step "topology: $H1 -- $DUT (pktengine) -- $H2"
for ns in "$H1" "$DUT" "$H2"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
# Interfaces are created directly inside the namespaces: names are per namespace.
ip link add pe-lan netns "$DUT" type veth peer name eth0 netns "$H1"
ip link add pe-wan netns "$DUT" type veth peer name eth0 netns "$H2"
for dev in pe-lan pe-wan; do
    in_ns "$DUT" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1"   # the engine owns these ports
    ip -n "$DUT" link set "$dev" up
done
for ns in "$H1" "$H2"; do
    in_ns "$ns" ethtool -K eth0 tx off >/dev/null   # complete checksums on the wire (veth offload)
    ip -n "$ns" link set eth0 up
done
ip -n "$H1" addr add 198.18.1.2/24 dev eth0
ip -n "$H1" addr add 2001:2:0:1::2/64 dev eth0 nodad
ip -n "$H1" route add default via 198.18.1.1
ip -n "$H1" -6 route add default via 2001:2:0:1::1
ip -n "$H2" addr add 198.19.1.2/24 dev eth0
ip -n "$H2" addr add 2001:2:0:2::2/64 dev eth0 nodad
ip -n "$H2" route add default via 198.19.1.1
ip -n "$H2" -6 route add default via 2001:2:0:2::1

step "pktengine run --config examples/router.toml (in $DUT)"
sed "s|^ctl_socket = .*|ctl_socket = \"$work/ctl.sock\"|" examples/router.toml > "$work/router.toml"
# The engine's own TCP: an HTTP/1.1 app on its addresses.
printf '\n[[tcp]]\napp = "http"\nport = 80\nbody = "hello from the engine'"'"'s own TCP\\n"\n' >> "$work/router.toml"
# `ip netns exec` execs the engine: $! is the engine's pid.
ip netns exec "$DUT" "$bin" run --config "$work/router.toml" >"$work/engine.log" 2>&1 &
engine_pid=$!
for _ in $(seq 200); do [ -S "$work/ctl.sock" ] && break; sleep 0.05; done
if [ ! -S "$work/ctl.sock" ]; then cat "$work/engine.log"; echo "demo.sh: the engine did not start" >&2; exit 1; fi
sed 's/^/  engine: /' "$work/engine.log"
ctl() { "$bin" ctl --socket "$work/ctl.sock" "$@"; }

step "ping host2 from host1 across the engine (TTL 63: one router hop)"
in_ns "$H1" ping -c 3 -i 0.2 198.19.1.2
step "ping6 host2 from host1"
in_ns "$H1" ping -6 -c 3 -i 0.2 2001:2:0:2::2
step "traceroute host1 -> host2 (the engine answers Time Exceeded)"
in_ns "$H1" traceroute -n -q 1 -w 2 198.19.1.2

step "curl a 5 MB file from a Python http.server on host2"
mkdir -p "$work/www"
head -c 5000000 /dev/urandom > "$work/www/file.bin"
ip netns exec "$H2" python3 -m http.server 8080 --bind :: --directory "$work/www" >/dev/null 2>&1 &
http_pid=$!
for _ in $(seq 100); do in_ns "$H1" curl -s -o /dev/null http://198.19.1.2:8080/ && break; sleep 0.05; done
in_ns "$H1" curl -sS -m 30 -o "$work/got.bin" \
    -w '  %{size_download} bytes in %{time_total} s (%{speed_download} B/s)\n' http://198.19.1.2:8080/file.bin
if cmp -s "$work/www/file.bin" "$work/got.bin"; then echo "  content identical (IPv4)"; else echo "  CONTENT DIFFERS"; exit 1; fi
in_ns "$H1" curl -sS -m 30 -o "$work/got6.bin" http://[2001:2:0:2::2]:8080/file.bin
if cmp -s "$work/www/file.bin" "$work/got6.bin"; then echo "  content identical (IPv6)"; else echo "  CONTENT DIFFERS"; exit 1; fi

step "curl the engine's own TCP: its built-in HTTP app on 198.18.1.1:80 (two requests, one connection)"
in_ns "$H1" curl -sS -m 5 http://198.18.1.1/ http://198.18.1.1/again

step "pktengine ctl arp show"
ctl arp show
step "pktengine ctl route show"
ctl route show
step "pktengine ctl stats"
ctl stats

step "stopping the engine (SIGTERM: drains, detaches XDP, exits 0)"
kill -TERM "$engine_pid"
status=0
wait "$engine_pid" || status=$?
echo "  pktengine exited with status $status"
engine_pid=

step "the same topology as a NAT: pktengine run --config examples/nat.toml"
# host2 forgets its way back to 198.18.0.0/15: only the NAT's translation brings answers home.
ip -n "$H2" route del default
sed "s|^ctl_socket = .*|ctl_socket = \"$work/nat.sock\"|" examples/nat.toml > "$work/nat.toml"
ip netns exec "$DUT" "$bin" run --config "$work/nat.toml" >"$work/nat.log" 2>&1 &
engine_pid=$!
for _ in $(seq 200); do [ -S "$work/nat.sock" ] && break; sleep 0.05; done
if [ ! -S "$work/nat.sock" ]; then cat "$work/nat.log"; echo "demo.sh: the NAT engine did not start" >&2; exit 1; fi
nat() { "$bin" ctl --socket "$work/nat.sock" "$@"; }
step "host1 pings and downloads from host2 through the NAT (host2 has no route to host1)"
in_ns "$H1" ping -c 3 -i 0.2 198.19.1.2
in_ns "$H1" curl -sS -m 30 -o "$work/got-nat.bin" \
    -w '  %{size_download} bytes in %{time_total} s (%{speed_download} B/s)\n' http://198.19.1.2:8080/file.bin
if cmp -s "$work/www/file.bin" "$work/got-nat.bin"; then echo "  content identical"; else echo "  CONTENT DIFFERS"; exit 1; fi
step "pktengine ctl nat show (inside endpoint, outside endpoint, remote, state)"
nat nat show
step "host2 tries to reach host1's address space unsolicited: nothing gets in"
in_ns "$H2" ping -c 1 -W 1 198.18.1.2 || echo "  (no route, as expected: host1 is invisible from outside)"
nat stats | grep -E "nat" || true
kill -TERM "$engine_pid"
wait "$engine_pid" || true
engine_pid=
echo
echo "demo.sh: done; namespaces removed."
