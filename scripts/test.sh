#!/usr/bin/env bash
# Runs every test of the workspace: unit, property and netns integration tests.
# Installs missing system packages first (scripts/deps.sh). Needs root for the
# network-namespace tests. Ends with one line of totals over all test binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

scripts/deps.sh
cargo build --workspace --all-targets

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
rc=0
cargo test --workspace 2>&1 | tee "$log" || rc=$?
rc=${PIPESTATUS[0]:-$rc}

# Totals over every "test result:" line (unit, integration and doc tests).
read -r passed failed ignored < <(awk '/^test result:/ {
    for (i = 1; i <= NF; i++) {
      if ($(i+1) ~ /^passed;?$/) p += $i
      if ($(i+1) ~ /^failed;?$/) f += $i
      if ($(i+1) ~ /^ignored;?$/) g += $i
    } } END { print p+0, f+0, g+0 }' "$log")
echo
echo "tests: ${passed} passed, ${failed} failed, ${ignored} skipped"
exit "$rc"
