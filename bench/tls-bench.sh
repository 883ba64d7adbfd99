#!/usr/bin/env bash
# SIP over TLS, kamrs vs Kamailio 5.6's tls module, side by side in one run
# on one machine: memory per idle registered TLS connection at 10,000 and
# 50,000 connections, and full TLS handshakes per second (and server CPU
# per handshake). bench/tls.py's docstring says exactly how.
#
# What it does:
#   1. installs what is missing (apt-get install -y kamailio
#      kamailio-tls-modules openssl);
#   2. builds kamrs and kamrsctl (release), bench/probe (the harness wants
#      it) and bench/tls-load (the TLS load generator; its own Cargo
#      project, built into target/bench-tls-load);
#   3. runs bench/tls.py, which writes bench/tls-results.json and the
#      section "## TLS, both systems" of bench/RESULTS.md.
#
# Run it as root (it raises the descriptor limit to NOFILE for itself, the
# servers and the load generator).
#
# Knobs (environment), defaults in brackets:
#   STEPS [10000,50000]   idle registered connections held, cumulative
#   SOURCES [200]         source addresses (127.77.0.0/16) they come from
#   HOLD_CONCURRENCY [256] connections being opened at once
#   CONCURRENCY [64]      clients looping over handshakes
#   HS_SECS [20]          seconds of handshakes per system and round
#   ROUNDS [2]            rounds; the order of the systems alternates
#   WORKERS [nproc]       Kamailio tcp_children, kamrs tokio worker threads
#   SYSTEMS ["kamailio kamrs"]  NOFILE [200000]  KAM_TLS_SHM_MB [8192]
#   OUT_DIR [bench]   NO_INSTALL=1   KEEP_WORK=1
# A quick check: STEPS=500,1000 HS_SECS=3 ROUNDS=1 bench/tls-bench.sh
#
# Everything listens on 127.0.0.1. Every process started is recorded in the
# work directory's pid list and stopped by its pid.
set -euo pipefail
cd "$(dirname "$0")/.."
t_begin=$(date +%s)
# shellcheck source=bench/lib.sh
source bench/lib.sh

bench_install kamailio:kamailio openssl:openssl
if [[ -z ${NO_INSTALL:-} ]] && ! ls /usr/lib/*/kamailio/modules/tls.so >/dev/null 2>&1; then
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo=sudo
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q kamailio-tls-modules >&2
fi
bench_require tls-bench.sh kamailio cargo openssl
ulimit -n "${NOFILE:-200000}" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
bench_build
target_dir=$(cargo metadata --format-version 1 --no-deps \
    | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
cargo build --release -q --manifest-path bench/tls-load/Cargo.toml \
    --target-dir "$target_dir/bench-tls-load" >&2
export LOAD_BIN="$target_dir/bench-tls-load/release/kamrs-tls-load"
bench_run bench/tls-bench.sh "$t_begin" bench/tls.py
