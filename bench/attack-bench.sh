#!/usr/bin/env bash
# Hostile-network figures for the README's security section: a
# table-filling attack and a pike source-table flood against a release
# kamrs on its default limits (bench/attack-bench.py says what each does).
# Loopback only; a few minutes on 2 cores after the build.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p kamrs -p kamrsctl
exec python3 bench/attack-bench.py "$@"
