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

if [[ -z ${NO_INSTALL:-} ]]; then
    need=()
    command -v kamailio >/dev/null || need+=(kamailio)
    if [[ ${#need[@]} -gt 0 ]]; then
        echo "installing: ${need[*]}" >&2
        sudo=""
        [[ $(id -u) -eq 0 ]] || sudo=sudo
        $sudo apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${need[@]}" >&2
    fi
fi
for tool in kamailio cargo; do
    command -v "$tool" >/dev/null || { echo "keepalive-bench.sh needs $tool" >&2; exit 1; }
done
[[ -x /usr/bin/python3 ]] || { echo "keepalive-bench.sh needs /usr/bin/python3" >&2; exit 1; }

echo "building kamrs, kamrsctl, the probe and the responder (release)..." >&2
t_build=$(date +%s)
cargo build --release -q -p kamrs -p kamrsctl >&2
target_dir=$(cargo metadata --format-version 1 --no-deps \
    | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
cargo build --release -q --manifest-path bench/probe/Cargo.toml \
    --target-dir "$target_dir/bench-probe" >&2
export BUILD_SECS=$(( $(date +%s) - t_build ))

export KAMRS_BIN="$target_dir/release/kamrs"
export KAMRSCTL_BIN="$target_dir/release/kamrsctl"
export PROBE_BIN="$target_dir/bench-probe/release/kamrs-probe"
export RESPONDER_BIN="$target_dir/bench-probe/release/kamrs-ka-responder"
BENCH_WORK=$(mktemp -d /tmp/kamrs-ka-bench.XXXXXX)
export BENCH_WORK
touch "$BENCH_WORK/pids"

py_pid=""
cleanup() {
    # keepalive.py stops what it started; this catches what it could not
    # (it was killed): every pid it recorded, one by one.
    if [[ -n $py_pid ]]; then
        kill "$py_pid" 2>/dev/null || true
        wait "$py_pid" 2>/dev/null || true
    fi
    # Only a pid whose start time is still the recorded one (not reused).
    local pid started sig
    for sig in TERM KILL; do
        while read -r pid started; do
            [[ -n $pid && -r /proc/$pid/stat ]] || continue
            [[ $(awk '{ sub(/^.*\) /, ""); print $20 }' "/proc/$pid/stat" 2>/dev/null) == "$started" ]] || continue
            kill "-$sig" "$pid" 2>/dev/null || true
        done < "$BENCH_WORK/pids"
        [[ $sig == KILL ]] || sleep 0.5
    done
    if [[ -n ${KEEP_WORK:-} ]]; then
        echo "work directory kept: $BENCH_WORK" >&2
    else
        rm -rf "$BENCH_WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

/usr/bin/python3 bench/keepalive.py &
py_pid=$!
rc=0
wait "$py_pid" || rc=$?
py_pid=""
echo "bench/keepalive-bench.sh: $(( $(date +%s) - t_begin )) s in all (build included)" >&2
exit "$rc"
