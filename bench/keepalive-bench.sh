#!/usr/bin/env bash
# NAT keepalive, kamrs vs Kamailio 5.6, side by side in one run on one machine.
#
# What it does:
#   1. installs what is missing (apt-get install -y kamailio, which brings
#      the usrloc/registrar/nathelper/jsonrpcs modules);
#   2. builds kamrs and kamrsctl (release) and bench/probe's two binaries
#      (the latency probe kamrs-probe and the phones kamrs-ka-responder;
#      their own Cargo project, built into target/bench-probe);
#   3. runs bench/keepalive.py, which for each system, keepalive off then on,
#      each a fresh start on a free 127.0.0.1 port with the same population:
#      - Kamailio: usrloc in memory, ka_mode=2 (NATed contacts), its
#        timer_interval = KA_INTERVAL (the ping period), timer_procs=1,
#        nathelper nat_uac_test("19") + setbflag + fix_nated_register();
#        kamrs: ka_mode = 2, ka_interval = KA_INTERVAL, ka_randomize;
#        both with WORKERS workers (Kamailio children, kamrs udp_workers and
#        tokio worker threads);
#      - kamrs-ka-responder registers POPULATION NATed bindings (Contact
#        sip:kaN@10.x.y.z:5060 from RESP_SOCKETS sockets on 127.0.0.1, at
#        most REG_RATE REGISTERs/s) and answers every OPTIONS with a 200,
#        counting them per wall-clock second;
#      - after SETTLE_SECS (off) / KA_SETTLE_SECS (on), a MEASURE_SECS
#        window: CPU (utime+stime of all the registrar's processes/threads,
#        /proc), pings per second, the probe's REGISTER p50/p99 (every
#        PROBE_INTERVAL_US) beside it, kamrs's usrloc:ka_* counters;
#   4. writes bench/keepalive-results.json and the section "## NAT keepalive,
#      both systems" of bench/RESULTS.md (keepalive cost = CPU on - CPU off,
#      CPU per 1000 pings, cost ratio kamrs/Kamailio, per-second max/mean,
#      probe p99 on/off).
#
# Usage: bench/keepalive-bench.sh   (about 2 x 2 x (registration + settle +
#        MEASURE_SECS): some 10 minutes with the defaults, build excluded)
# Knobs (environment), defaults in brackets:
#   POPULATION [100000]   NATed bindings per system
#   KA_INTERVAL [30]      seconds between two pings of one binding
#   MEASURE_SECS [3 x KA_INTERVAL]
#   SETTLE_SECS [3]       wait after registering, keepalive off
#   KA_SETTLE_SECS [KA_INTERVAL]  the same, keepalive on (past the first round)
#   REG_RATE [10000]      REGISTERs/s of the responder
#   RESP_SOCKETS [10]     the responder's UDP sockets (POPULATION/RESP_SOCKETS AoRs each)
#   WORKERS [nproc]       PROBE_INTERVAL_US [2000]
#   SYSTEMS ["kamailio kamrs"]
#   KA_RANDOMIZE [1]      kamrs ka_randomize (0: every ping at the round's start)
#   KAM_MAXBUFFER [4194304]  Kamailio's core maxbuffer (UDP receive buffer ceiling;
#                         its default 256 KiB drops part of the burst of 200s)
#   KA_PROFILE_SECS [10]  perf record on kamrs after its keepalive-on window
#                         (bench/profile-keepalive.txt; 0: none)
#   QUIET_WAIT_SECS [120] QUIET_MAX_CPU [0.15]  before each window, wait up to
#                         QUIET_WAIT_SECS for a second in which the rest of the
#                         machine used under QUIET_MAX_CPU of a CPU (shared machines)
#   OUT_DIR [bench]       where keepalive-results.json and RESULTS.md go
#   NO_INSTALL=1          do not call apt-get
#   KEEP_WORK=1           keep the work directory (logs, per-second counts)
# A quick check: POPULATION=2000 KA_INTERVAL=5 MEASURE_SECS=15 bench/keepalive-bench.sh
# The RESULTS.md section again from a saved run, measuring nothing:
#   python3 bench/keepalive.py --report bench/keepalive-results.json
#
# Everything listens on 127.0.0.1. Every process started is recorded in the
# work directory's pid list and stopped by its pid (by keepalive.py, and by
# the EXIT trap here if it dies).
set -euo pipefail
cd "$(dirname "$0")/.."
t_begin=$(date +%s)
# shellcheck source=bench/lib.sh
source bench/lib.sh

bench_install kamailio:kamailio
bench_require keepalive-bench.sh kamailio cargo
bench_build
bench_run bench/keepalive-bench.sh "$t_begin" bench/keepalive.py
