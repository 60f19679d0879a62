#!/usr/bin/env bash
# Builds the Debian package pktengine_VERSION-1_ARCH.deb with cargo-deb
# (metadata: [package.metadata.deb] in engine/Cargo.toml; docs/OPERATING.md).
#
#   scripts/package.sh          release build, then the package in target/debian/
#   scripts/package.sh --dev    no build: the debug binary of `cargo build --workspace`,
#                               fast compression, in target/debian-dev/ (what
#                               tests/tests/package.rs installs; not for shipping: it
#                               has the test-only fault-injection feature)
#
# Writes the man pages and shell completions from the binary first (they are
# generated from its command line, `pktengine man`, `pktengine completions`), then
# runs lintian on the package when it is installed (advice only). Prints the
# package's path last.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

scripts/deps.sh >&2   # cargo-deb, dpkg-dev (dpkg-shlibdeps for Depends: $auto), the user

target="${CARGO_TARGET_DIR:-$PWD/target}"
case "${1:-}" in
  --dev) profile=dev; dir=debug; out="$target/debian-dev"; opts=(--fast) ;;
  "") profile=release; dir=release; out="$target/debian"; opts=(--strip)   # [profile.release] keeps line tables for perf
      cargo build --release -p engine >&2 ;;
  *) echo "usage: scripts/package.sh [--dev]" >&2; exit 2 ;;
esac

bin="$target/$dir/pktengine"
[ -x "$bin" ] || { echo "package.sh: $bin is missing (cargo build --workspace first)" >&2; exit 1; }
# Assets that engine/Cargo.toml names as target/release/pkg/... (cargo-deb maps
# target/release to the profile's directory).
pkg="$target/$dir/pkg"
rm -rf "$pkg"
mkdir -p "$pkg/man" "$pkg/completions"
"$bin" man "$pkg/man" >&2
gzip -9n "$pkg"/man/*.1   # Debian policy; cargo-deb leaves files under target/ as they are
"$bin" completions bash > "$pkg/completions/pktengine"
"$bin" completions zsh > "$pkg/completions/_pktengine"
"$bin" completions fish > "$pkg/completions/pktengine.fish"

mkdir -p "$out"
rm -f "$out"/pktengine_*.deb
cargo deb -p engine --no-build --profile "$profile" --output "$out" "${opts[@]}" >&2
deb="$(ls "$out"/pktengine_*.deb)"

if command -v lintian >/dev/null 2>&1; then
  echo "== lintian (advice, not a gate)" >&2
  lintian --tag-display-limit 0 "$deb" >&2 || true
fi
echo "$deb"
