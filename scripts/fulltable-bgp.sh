#!/usr/bin/env bash
# The full IPv4 table through BGP (issue 23): one BIRD peer announces the 901,899 IPv4 prefixes
# of bench/data/bgp-prefixes.txt.gz (as `protocol static` routes) to BIRD in the engine's
# namespace (examples/bird.conf), which exports them into the kernel's main table; the engine
# (examples/router-bird.toml, `[routing] mirror = true`) follows the table. Measured: the time
# from the session's start to the kernel, and to the engine's FIB (its pktengine_routes gauge),
# holding every prefix, and the engine's resident memory then.
#
# Runs tests/tests/routing_daemons.rs's full_table_through_bgp (namespaces 198.18.0.0/15 only,
# deleted at the end) and writes the figures to bench/results/fulltable-bgp-DATE.txt.
#   scripts/fulltable-bgp.sh              the engine in the middle
#   MIDDLE=kernel scripts/fulltable-bgp.sh  a plain Linux router instead (BIRD and kernel only)
# Needs root, bird2 (scripts/deps.sh). Takes one to a few minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
nice -n 15 cargo build -q --workspace
date=$(date -u +%Y-%m-%d)
out="bench/results/fulltable-bgp-$date${MIDDLE:+-$MIDDLE}.txt"
cmd="${MIDDLE:+PKTENGINE_DAEMONS_MIDDLE=$MIDDLE }cargo test -p pktengine-tests --test routing_daemons full_table_through_bgp -- --ignored --nocapture"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
PKTENGINE_DAEMONS_MIDDLE="${MIDDLE:-}" \
  nice -n 15 cargo test -q -p pktengine-tests --test routing_daemons full_table_through_bgp -- --ignored --nocapture 2>&1 | tee "$log"
{
  echo "# Full IPv4 table through BGP (scripts/fulltable-bgp.sh), $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "# command: $cmd"
  echo "# machine: $(nproc) CPUs, $(uname -r), $(bird --version 2>&1 | head -1)"
  grep -E '^(session up|FULL TABLE| *[0-9.]+ s: kernel)' "$log" || true
} > "$out"
echo "wrote $out"
grep 'FULL TABLE' "$log" || { echo "fulltable-bgp.sh: no result (see above)" >&2; exit 1; }
