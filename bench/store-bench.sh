#!/usr/bin/env bash
# REGISTER throughput of kamrs per location store mode:
# memory only, sqlite write-through, sqlite write-back.
#
# For each mode: a fresh release kamrs on its own loopback port and temp
# database; SIPp (Debian's sip-tester) registers NEW AoRs at increasing
# fixed rates for STEP_SECONDS each, the modes taking turns at each rate. A
# rate passes when every REGISTER got its 200 and at most 0.1% were
# retransmitted (SIPp resends after 500 ms, so a retransmission means kamrs
# fell behind). A mode leaves the ladder at its first failing rate; one
# rate between its last pass and that failure is tried to narrow it.
# Prints: mode, max REGISTER/s, ratio to memory-only.
#
# SIPp gets 4 MiB socket buffers (SIPP_BUFF, bytes): its 64 KiB default
# overflows at a few 10,000/s and shows as retransmissions of its own.
# Usage: bench/store-bench.sh            (about 3-5 minutes)
#   STEP_SECONDS=3 RATES="1000 2000 4000" bench/store-bench.sh
# Needs: sipp, a Rust toolchain. Stops only what it started, by pid.
set -euo pipefail
cd "$(dirname "$0")/.."

STEP_SECONDS=${STEP_SECONDS:-4}
RATES=${RATES:-"2000 3500 5000 6500 8000 10000 12000 14000 16000 19000 22000 26000 30000"}
MODES=${MODES:-"memory sqlite-write-through sqlite-write-back"}

command -v sipp >/dev/null || { echo "store-bench.sh needs sipp (apt-get install sip-tester)" >&2; exit 1; }

echo "building kamrs (release)..." >&2
cargo build --release -p kamrs >&2
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
kamrs="$target_dir/release/kamrs"
scenario="$PWD/bench/sipp/register.xml"

work=$(mktemp -d /tmp/kamrs-store-bench.XXXXXX)
# pid and UDP address of the kamrs of each mode.
declare -A pids addrs
stop_kamrs() { # mode
    local pid=${pids[$1]:-}
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    # Bounded: SIGTERM flushes the store; SIGKILL after 15 s.
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pids[$1]=""
}
cleanup() {
    for m in "${!pids[@]}"; do stop_kamrs "$m"; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_udp_port() {
    python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_kamrs MODE: starts kamrs for MODE, sets pids[MODE] and addrs[MODE].
start_kamrs() {
    local mode=$1 dir="$work/$1"
    mkdir -p "$dir"
    local store=""
    case $mode in
        memory) store='backend = "none"' ;;
        sqlite-write-through) store="backend = \"sqlite\"
path = \"$dir/location.db\"
mode = \"write-through\"" ;;
        sqlite-write-back) store="backend = \"sqlite\"
path = \"$dir/location.db\"
mode = \"write-back\"" ;;
        *) echo "unknown mode $mode" >&2; exit 2 ;;
    esac
    cat >"$dir/kamrs.toml" <<EOF
listen = ["udp:127.0.0.1:0"]
max_expires = 3600
[ctl]
listen = "unix:$dir/ctl.sock"
[log]
level = "warn"
[store]
$store
EOF
    "$kamrs" --config "$dir/kamrs.toml" >"$dir/stdout" 2>"$dir/stderr" &
    pids[$mode]=$!
    for _ in $(seq 100); do
        grep -qx ready "$dir/stdout" 2>/dev/null && break
        kill -0 "${pids[$mode]}" 2>/dev/null || { cat "$dir/stderr" >&2; echo "kamrs ($mode) died" >&2; exit 1; }
        sleep 0.1
    done
    grep -qx ready "$dir/stdout" || { echo "kamrs ($mode) not ready" >&2; exit 1; }
    addrs[$mode]=$(sed -n 's/^listening udp://p' "$dir/stdout" | head -1)
}

# run_rate MODE RATE: 0 when every REGISTER at RATE/s got its 200 with at
# most 0.1% retransmissions. Prints the SIPp counters.
run_rate() {
    local mode=$1 rate=$2 calls=$(( $2 * STEP_SECONDS )) dir="$work/$1"
    local stats="$dir/stat-$rate.csv" port
    port=$(free_udp_port)
    local limit=$(( rate / 2 + 200 ))
    local rc=0
    (cd "$dir" && timeout $(( STEP_SECONDS + 40 )) sipp "${addrs[$mode]}" -sf "$scenario" \
        -key user_prefix "r${rate}x" -cid_str "r${rate}-%u@bench" \
        -m "$calls" -r "$rate" -l "$limit" -i 127.0.0.1 -p "$port" \
        -timeout $(( STEP_SECONDS + 30 ))s -nostdin -buff_size "${SIPP_BUFF:-4194304}" -trace_stat -stf "$stats" -fd 1 \
        >"$dir/sipp-$rate.out" 2>&1) || rc=$?
    # Last line of the stat file: cumulative counters.
    local header line
    header=$(head -1 "$stats" 2>/dev/null || true)
    line=$(tail -1 "$stats" 2>/dev/null || true)
    col() { # name -> value from the last stat line
        awk -F';' -v want="$1" -v h="$header" -v l="$line" 'BEGIN {
            n = split(h, hs, ";"); split(l, ls, ";");
            for (i = 1; i <= n; i++) if (hs[i] == want) { print ls[i] + 0; exit }
            print -1 }'
    }
    local ok fail retrans
    ok=$(col "SuccessfulCall(C)")
    fail=$(col "FailedCall(C)")
    retrans=$(col "Retransmissions(C)")
    printf '  %-22s %6s/s  %7s calls: %7s ok, %5s failed, %6s retransmitted (sipp rc %s)\n' \
        "$mode" "$rate" "$calls" "$ok" "$fail" "$retrans" "$rc" >&2
    [[ $rc -eq 0 && $ok -eq $calls && $fail -eq 0 ]] || return 1
    (( retrans * 1000 <= calls )) || return 1
}

# All modes run side by side and take each rate in turn, so a noisy
# neighbour (a build on the same machine) hits them alike; a mode leaves
# the ladder at its first failing rate.
declare -A best failed
for mode in $MODES; do start_kamrs "$mode"; best[$mode]=0; failed[$mode]=0; done
for rate in $RATES; do
    alive=0
    for mode in $MODES; do
        (( failed[$mode] == 0 )) || continue
        alive=1
        if run_rate "$mode" "$rate"; then best[$mode]=$rate; else failed[$mode]=$rate; fi
    done
    (( alive )) || break
done
# One rate between the last pass and the first failure.
for mode in $MODES; do
    pass=${best[$mode]} fail=${failed[$mode]}
    if (( pass > 0 && fail > 0 )); then
        mid=$(( (pass + fail) / 2 / 100 * 100 ))
        if (( mid > pass )) && run_rate "$mode" "$mid"; then best[$mode]=$mid; fi
    fi
done
for mode in $MODES; do
    stop_kamrs "$mode"
    if grep -qiE 'error|warn' "$work/$mode/stderr"; then
        echo "  kamrs ($mode) logged:" >&2
        grep -iE 'error|warn' "$work/$mode/stderr" | head -5 | sed 's/^/    /' >&2
    fi
done

echo
echo "REGISTER throughput (new AoRs, UDP, loopback, ${STEP_SECONDS} s per rate; $(nproc) CPUs):"
printf '%-24s %18s %10s\n' mode "max REGISTER/s" "vs memory"
printf '%-24s %18s %10s\n' ---- -------------- ---------
base=${best[memory]:-0}
for mode in $MODES; do
    r=${best[$mode]}
    if (( base > 0 )); then
        ratio=$(awk -v r="$r" -v b="$base" 'BEGIN { printf "%.0f%%", 100 * r / b }')
    else
        ratio=-
    fi
    top=$(echo "$RATES" | awk '{ print $NF }')
    shown=$r
    (( r == top )) && shown=">= $r"
    printf '%-24s %18s %10s\n' "$mode" "$shown" "$ratio"
done
