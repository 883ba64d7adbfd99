#!/usr/bin/env bash
# What watching costs the registrar (issue 17's figure): REGISTER CPU per
# request at a refresh load, nobody watching vs WATCHERS `kamrsctl --json
# ul.watch` subscribers and a `GET /metrics` every SCRAPE_SECS.
#
# What it does:
#   1. installs what is missing (apt-get install -y sip-tester);
#   2. builds kamrs and kamrsctl (release) and bench/probe;
#   3. runs bench/observe.py: one kamrs with its control API on a loopback
#      HTTP listener, a refresh population of RATE x STEP_SECS AoRs, then
#      ROUNDS rounds of two SIPp refresh loads at RATE for STEP_SECS each,
#      baseline and observed, the order alternating; kamrs's CPU
#      (utime+stime, /proc) per answered REGISTER in each, the watchers' own
#      CPU apart, and whether any watcher was cut off for lagging;
#   4. writes bench/observe-results.json and the section "## Watching and
#      scraping" of bench/RESULTS.md (the ratio per round and its median).
#
# Usage: bench/observe-bench.sh   (about 2 minutes with the defaults, build excluded)
# Knobs (environment), defaults in brackets:
#   RATE [20000]  STEP_SECS [10]  ROUNDS [3]  WATCHERS [10]  SCRAPE_SECS [1]
#   WORKERS [nproc]  PREFILL_RATE [10000]  OUT_DIR [bench]
#   NO_INSTALL=1  KEEP_WORK=1
#
# Everything listens on 127.0.0.1; every process started is recorded in the
# work directory's pid list and stopped by its pid.
set -euo pipefail
cd "$(dirname "$0")/.."
t_begin=$(date +%s)
# shellcheck source=bench/lib.sh
source bench/lib.sh

bench_install sip-tester:sipp
bench_require observe-bench.sh sipp cargo
bench_build
bench_run bench/observe-bench.sh "$t_begin" bench/observe.py
