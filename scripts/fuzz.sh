#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS seconds each (default 60).
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# Needs the nightly toolchain (rustup) and cargo-fuzz; installs cargo-fuzz when missing.
# Corpora are kept in fuzz/corpus/<target> between runs; crashes land in fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

secs="${1:-60}"
shift || true

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz.sh: needs a nightly toolchain (rustup toolchain install nightly)" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi

status=0
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  # Hand-made seeds (valid frames the target should start from) are versioned in fuzz/seeds/.
  if [ -d "fuzz/seeds/$t" ]; then cp -n fuzz/seeds/"$t"/* "fuzz/corpus/$t/"; fi
  echo "== fuzz $t for ${secs}s"
  rc=0
  (cd fuzz && cargo +nightly fuzz run -s none "$t" "corpus/$t" -- \
      -max_total_time="$secs" -max_len=4096 -print_final_stats=1) >"$log" 2>&1 || rc=$?
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)|DONE|SUMMARY|panicked' "$log" || true
  echo "   corpus: $(ls "fuzz/corpus/$t" | wc -l) inputs"
  if [ "$rc" -ne 0 ]; then
    tail -n 30 "$log" >&2
    echo "fuzz.sh: $t FAILED (exit $rc; see fuzz/artifacts/$t)" >&2
    status=1
  fi
done
exit $status
