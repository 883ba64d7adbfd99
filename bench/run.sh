#!/usr/bin/env bash
# kamrs vs Kamailio, side by side, in one run on one machine.
#
# What it does:
#   1. installs what is missing (apt-get install -y sip-tester kamailio
#      python3-matplotlib linux-perf redis-server);
#   2. builds kamrs and kamrsctl (release), the latency probe (bench/probe)
#      and the floor (bench/floor), each its own Cargo project, built into
#      target/bench-probe and target/bench-floor;
#   3. runs bench/harness.py, which
#      - starts Kamailio with the registrar tutorial's config (usrloc in
#        memory, no auth: REGISTER -> save("location"), INVITE -> 480,
#        ACK -> exit, else 501; jsonrpcs over a FIFO) twice: "tuned", with
#        usrloc's hash_size (log2 of its slots) sized for the population
#        (smallest N with 2^N >= population / 4: 17 for the 300,000 AoRs),
#        which every goal is judged against, in every phase; and
#        "tutorial", usrloc's default hash_size 10 (1,024 slots), a
#        reference column for new AoRs and refresh at TUTORIAL_RATES only;
#        kamrs with the equivalent config; and the floor (bench/floor: a
#        fixed-length 200 to every request, the request's Via/From/To/
#        Call-ID/CSeq/Contact/Expires lines copied, padded to the length of
#        kamrs's 200 to the bench's REGISTER, measured at the start; no
#        parsing, no state; kamrs's UDP threads and recvmmsg/sendmmsg
#        batching). Each on its own free 127.0.0.1 port, with the same
#        number of workers (WORKERS: Kamailio `children`, kamrs
#        udp_workers and TOKIO_WORKER_THREADS, the floor's threads;
#        default nproc);
#      - prefills the registrars with a population of AoRs, then at each
#        rate of RATES drives them with the same SIPp load for STEP_SECS
#        each, one system after the other (rotating which goes first):
#        kamrs and tuned Kamailio all three workloads, tutorial Kamailio
#        new and refresh at TUTORIAL_RATES, the floor refresh: new AoRs
#        (bench/sipp/register.xml, a new user per REGISTER), refresh (the
#        population re-registering: same Call-ID, rising CSeq via
#        -base_cseq) and unregister (bench/sipp/unregister.xml, Expires: 0,
#        removing the new AoRs of the same rate); beside each load the probe
#        sends a REGISTER refresh every PROBE_INTERVAL_US and times its 200;
#      - records per step: achieved rate, failures, retransmissions (SIPp
#        -trace_stat), CPU (utime+stime of every process/thread of the
#        registrar from /proc, over the SIPp run) per answered REGISTER,
#        probe p50/p99/max, memory (PSS summed over the registrar's
#        processes: Kamailio's shared memory counted once);
#      - profiles kamrs with `perf record -e cpu-clock --call-graph dwarf`
#        during a refresh load at PROFILE_RATE (bench/profile-refresh.txt),
#        then `perf sched record -a` for SCHED_SECS during a second one with
#        the probe beside it (how kamrs's threads and SIPp share the CPUs);
#      - on fresh instances (Kamailio tuned for the phase's population):
#        memory per binding at MEM_BINDINGS (PSS delta /
#        bindings), ul.dump of DUMP_AORS AoRs over JSON-RPC (Kamailio's
#        jsonrpcs FIFO vs `kamrsctl --json ul.dump`) with the probe every
#        1 ms and a SIPp refresh load at DUMP_BG_RATE meanwhile;
#      - kamrs start-up with STARTUP_ROWS bindings in its sqlite store
#        (rows written in Kamailio's schema with SQLite);
#      - kamrs new-AoR ladders (STORE_RATES, STORE_STEP_SECS each, up to the
#        first rate not sustained) for memory only, sqlite write-through and
#        write-back, redis write-through and write-back, digest auth (MD5);
#   4. writes bench/RESULTS.md (tables, machine, versions, date, goals of
#      issue 20 met/missed against tuned Kamailio and the floor, issue 7's
#      that still stand), bench/results.png (CPU per REGISTER and probe p99
#      against offered rate, every system), bench/results.json (raw)
#      and bench/profile-refresh.txt (perf report).
#
# Usage: bench/run.sh            (about 17 minutes on 2 cores, build included)
# Knobs (environment), defaults in brackets; docs/bench.md has the table:
#   RATES ["5000 10000 20000 40000 50000 60000"]  offered REGISTER/s per step
#   STEP_SECS [5]         seconds of load per step (longer: steadier figures)
#   WORKERS [nproc]       Kamailio children = kamrs tokio worker threads
#   PREFILL_RATE [10000]  rate of the refresh population's first REGISTERs
#   PROBE_INTERVAL_US [2000]
#   MEM_BINDINGS ["100000 1000000"]  MEM_RATE [12000]
#   DUMP_AORS [100000]    DUMP_BG_RATE [2000]
#   STARTUP_ROWS [1000000]
#   STORE_RATES ["2000 5000 10000 15000 20000 30000 40000 50000 60000"]
#   STORE_STEP_SECS [3]
#   STORE_SETUPS ["memory sqlite-wt sqlite-wb redis-wt redis-wb digest"]
#   PROFILE_RATE [40000]  PROFILE_SECS [5]  PERF_FREQ [999]  SCHED_SECS [2]
#   TUTORIAL_RATES ["10000 20000 40000"]  the tutorial Kamailio's rows
#                         (new, refresh); "" leaves it out
#   FLOOR [1]             0 leaves the floor out
#   FLOOR_REPLY_LEN [measured]  bytes of the floor's 200 (default: kamrs's
#                         200 to the bench's REGISTER, measured at the start)
#   PHASES ["matrix profile memory dump startup stores"] ("kamtuned", the
#                         former sensitivity run, is now the matrix: ignored)
#   KAM_SHM_MB [3072]  KAM_PKG_MB [64]  (Kamailio -m / -M)
#   KAM_HASH_SIZE [per population]  the tuned Kamailio's usrloc hash_size
#                         (log2 of its slots); default the smallest N with
#                         2^N >= population / 4
#   SIPP_BUFF [4194304] (SIPp -buff_size)
#   OUT_DIR [bench]       where RESULTS.md, results.png, results.json go
#   NO_INSTALL=1          do not call apt-get
#   KEEP_WORK=1           keep the work directory (logs, SIPp stat files)
# A longer, steadier run: STEP_SECS=20 STORE_STEP_SECS=10 bench/run.sh
# Refresh at 20,000 and 40,000/s with tuned Kamailio, tutorial Kamailio, the
# floor and kamrs (about 5 minutes with the build):
#   PHASES=matrix RATES="20000 40000" TUTORIAL_RATES="20000 40000" bench/run.sh
#
# Everything listens on 127.0.0.1. Every process started is recorded in the
# work directory's pid list and stopped by its pid (by the harness, and by
# the EXIT trap here if the harness dies). Needs root or sudo for apt-get
# and perf (perf_event_paranoid permitting).
set -euo pipefail
cd "$(dirname "$0")/.."
t_begin=$(date +%s)
# shellcheck source=bench/lib.sh
source bench/lib.sh

bench_install sip-tester:sipp kamailio:kamailio python3-matplotlib:py:matplotlib linux-perf:perf redis-server:redis-server sqlite3:sqlite3
bench_require run.sh sipp kamailio cargo
bench_build
bench_run bench/run.sh "$t_begin" bench/harness.py
