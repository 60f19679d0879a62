#!/usr/bin/env bash
# Runs every test of the workspace: unit, property and netns integration tests.
# Installs missing system packages first (scripts/deps.sh). Needs root for the
# network-namespace tests. Ends with one line of totals over all test binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

scripts/deps.sh

# The module layering (docs/ARCHITECTURE.md, "Floors"): no import cycle and
# no import up a floor; the checker first proves it can catch both.
echo "== module graph"
python3 scripts/modgraph.py --self-test
layering=0
python3 scripts/modgraph.py --floors >/dev/null || layering=1

cargo build --workspace --all-targets

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
rc=0
# pipefail: the pipeline fails when cargo test does (tee succeeds either way).
cargo test --workspace --no-fail-fast 2>&1 | tee "$log" || rc=$?

# Totals over every "test result:" line (unit, integration and doc tests).
read -r passed failed ignored < <(awk '/^test result:/ {
    for (i = 1; i <= NF; i++) {
      if ($(i+1) ~ /^passed;?$/) p += $i
      if ($(i+1) ~ /^failed;?$/) f += $i
      if ($(i+1) ~ /^ignored;?$/) g += $i
    } } END { print p+0, f+0, g+0 }' "$log")

# A short fuzz smoke of every target (FUZZ_SMOKE seconds each, 0 to skip), when
# a nightly toolchain is there (cargo-fuzz needs it); longer runs: scripts/fuzz.sh.
fuzz_secs=${FUZZ_SMOKE:-5}
if [ "$fuzz_secs" != 0 ] && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo
  echo "== fuzz smoke: ${fuzz_secs}s per target"
  if scripts/fuzz.sh "$fuzz_secs"; then
    echo "fuzz smoke: no crash"
  else
    echo "fuzz smoke: FAILED"
    failed=$((failed + 1))
    rc=1
  fi
else
  echo
  echo "fuzz smoke: skipped (no nightly toolchain; run scripts/fuzz.sh SECONDS with one)"
fi

if [ "$layering" != 0 ]; then
  echo "module graph: FAILED (scripts/modgraph.py --floors says where)"
  failed=$((failed + 1))
  rc=1
else
  passed=$((passed + 1))
fi

echo
echo "tests: ${passed} passed, ${failed} failed, ${ignored} skipped"
if [ "$failed" != 0 ] && [ "$rc" = 0 ]; then rc=1; fi
exit "$rc"
