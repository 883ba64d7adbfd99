#!/usr/bin/env bash
# Measures the control API on a big table, release builds: registers N AoRs
# (default 100,000) over real UDP, then times `ul.dump` (raw JSON-RPC call
# and `kamrsctl --json ul.dump`) and `ul.lookup` while REGISTERs continue.
# It runs the end-to-end test tests/tests/ctl.rs
# `ul_dump_of_100k_aors_and_fast_lookups_under_sip_load` against the
# release binaries and prints its `bench:` lines.
#
# Usage: bench/ctl-dump.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."

aors=${1:-100000}
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

cargo build --release -p kamrs -p kamrsctl
KAMRS_BIN="$target_dir/release/kamrs" \
KAMRSCTL_BIN="$target_dir/release/kamrsctl" \
KAMRS_BENCH_AORS="$aors" \
    cargo test --release -p kamrs-tests --test ctl -- \
    --exact ul_dump_of_100k_aors_and_fast_lookups_under_sip_load --nocapture \
    >"$log" 2>&1 || { cat "$log"; exit 1; }

echo "ul.dump with $aors AoRs, release build ($(nproc) cores):"
grep '^bench:' "$log" | sed 's/^bench: /  /'
