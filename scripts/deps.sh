#!/usr/bin/env bash
# Installs the system packages pktengine needs to build and test, and creates
# the system user the engine runs as. Idempotent: packages already present are
# skipped, apt-get runs only when something is missing, the user is made once.
set -euo pipefail

PKGS=(clang llvm libelf-dev zlib1g-dev pkg-config m4 iproute2 ethtool tcpdump
      iputils-ping traceroute nftables iperf3 curl netcat-openbsd python3 procps
      libpcap-dev   # the ctl client compiles `capture --filter` expressions with libpcap
      gnuplot-nox   # gnuplot: the plot of scripts/bench.sh
      prometheus)   # promtool and a server for tests/tests/metrics.rs (each test runs its own)

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

if ! command -v cargo >/dev/null 2>&1; then
  for c in "$HOME/.cargo/bin/cargo" /usr/local/cargo/bin/cargo; do
    [ -x "$c" ] && { echo "deps.sh: cargo found at $c; add $(dirname "$c") to PATH" >&2; break; }
  done
  echo "deps.sh: cargo (Rust toolchain) is needed: https://rustup.rs" >&2
  exit 1
fi
