#!/usr/bin/env bash
# Runs every test of the workspace: unit, property and netns integration tests.
# Installs missing system packages first (scripts/deps.sh). Needs root for the
# network-namespace tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

scripts/deps.sh
cargo build --workspace --all-targets
cargo test --workspace
