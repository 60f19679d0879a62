#!/usr/bin/env bash
# Installs the system packages pktengine needs to build and test, and creates
# the system user the engine runs as. Idempotent: packages already present are
# skipped, apt-get runs only when something is missing, the user is made once.
set -euo pipefail

PKGS=(clang llvm libelf-dev zlib1g-dev pkg-config m4 iproute2 ethtool tcpdump
      iputils-ping traceroute nftables iperf3 curl netcat-openbsd python3 procps
      libpcap-dev   # the ctl client compiles `capture --filter` expressions with libpcap
      gnuplot-nox   # gnuplot: the plot of scripts/bench.sh
      prometheus    # promtool and a server for tests/tests/metrics.rs (each test runs its own)
      systemd       # systemd-analyze: verify and security of examples/pktengine.service (tests/tests/service.rs)
      strace util-linux  # the engine's system calls and socket families under the unit's limits (setpriv for its capabilities)
      dpkg-dev      # dpkg-shlibdeps: the package's Depends (scripts/package.sh, cargo-deb's $auto)
      apt man-db groff-base  # apt-get install -s of the package; its man pages rendered (tests/tests/package.rs)
      adduser       # the package's postinst makes the pktengine user with it
      bird2 frr     # real routing daemons (BGP, OSPF) driving the engine's route mirror (tests/tests/routing_daemons.rs)
      jq)           # reads `pktengine ctl --json` documents in tests/tests/json.rs

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: missing packages: ${missing[*]}" >&2
    echo "deps.sh: run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The Debian package enables (and, under systemd, starts) a server on :9090 of the machine;
  # the tests start their own in a test namespace, so the one installed here is not left running.
  if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
  # bird2 and frr enable their system services too; the tests run their own per namespace.
  if [[ " ${missing[*]} " == *" bird2 "* || " ${missing[*]} " == *" frr "* ]] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now bird frr >/dev/null 2>&1 || true
  fi
else
  echo "deps.sh: system packages present"
fi

# The unprivileged user the engine switches to after set-up (`[engine] user`,
# default "pktengine"; docs/ROBUSTNESS.md, "Least privilege").
if ! getent passwd pktengine >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: user pktengine is missing; run as root (or: sudo useradd --system --no-create-home --shell /usr/sbin/nologin pktengine)" >&2
    exit 1
  fi
  useradd --system --no-create-home --shell /usr/sbin/nologin pktengine
  echo "deps.sh: created the system user pktengine"
fi

# cargo-deb builds the Debian package (scripts/package.sh; tests/tests/package.rs);
# a crates.io install, once per machine (~/.cargo/bin).
export PATH="$HOME/.cargo/bin:$PATH"
if command -v cargo >/dev/null 2>&1 && ! command -v cargo-deb >/dev/null 2>&1; then
  echo "deps.sh: installing cargo-deb (cargo install, a few minutes once)"
  nice -n 10 cargo install cargo-deb --locked --version 3.8.0 >/dev/null 2>&1 \
    || { echo "deps.sh: cargo install cargo-deb failed" >&2; exit 1; }
fi

if ! command -v cargo >/dev/null 2>&1; then
  for c in "$HOME/.cargo/bin/cargo" /usr/local/cargo/bin/cargo; do
    [ -x "$c" ] && { echo "deps.sh: cargo found at $c; add $(dirname "$c") to PATH" >&2; break; }
  done
  echo "deps.sh: cargo (Rust toolchain) is needed: https://rustup.rs" >&2
  exit 1
fi
