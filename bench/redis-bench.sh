#!/usr/bin/env bash
# REGISTER throughput of kamrs with the Redis store next to memory only.
#
# For each setup (memory only; redis write-through; redis write-back) it
# starts a release kamrs (and a redis-server of its own on a free loopback
# port), then runs SIPp (tests/sipp/register.xml: one new AoR per call) at
# fixed rates, lowest first. A rate counts as sustained when every REGISTER
# got its 200 and SIPp finished within 5% (+0.3 s start-up) of the time
# that rate needs, in one of two tries.
# Prints the highest sustained rate per setup and its ratio to memory only.
#
# SIPp gets 4 MiB socket buffers (SIPP_BUFF, bytes): its 64 KiB default
# overflows at a few 10,000/s and shows as retransmissions of its own.
# Usage: bench/redis-bench.sh [seconds per step (default 4)] [rates...]
#   e.g. bench/redis-bench.sh 4 8000 9000 10000 11000 12000
# Needs: sipp (Debian sip-tester), redis-server. Uses $KAMRS_BIN if set,
# else builds target/release/kamrs (not counted in the run time).
# Everything runs on 127.0.0.1; every process started here is stopped by
# its pid on exit. One run takes about 3 × (steps × (seconds + 1)) s, plus retries.
set -euo pipefail
cd "$(dirname "$0")/.."

step_secs=${1:-4}
shift || true
rates=("$@")
[[ ${#rates[@]} -gt 0 ]] || rates=(2000 4000 6000 8000 10000 12000 14000 16000 20000 24000 28000 32000)

for tool in sipp redis-server; do
    command -v "$tool" >/dev/null || { echo "redis-bench.sh needs $tool" >&2; exit 1; }
done

if [[ -z ${KAMRS_BIN:-} ]]; then
    cargo build --release -q -p kamrs
    KAMRS_BIN=target/release/kamrs
fi

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Starts redis-server; sets redis_pid and redis_url.
start_redis() {
    local port
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
        >"$work/redis.log" 2>&1 &
    redis_pid=$!
    pids+=("$redis_pid")
    redis_url="redis://127.0.0.1:$port"
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "redis-server did not start" >&2
    exit 1
}

stop_pid() { # pid
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# Starts kamrs with the given [store] lines; sets kamrs_pid and kamrs_udp.
start_kamrs() {
    local name=$1 store=$2
    local dir="$work/$name"
    mkdir -p "$dir"
    cat >"$dir/kamrs.toml" <<EOF
listen = ["udp:127.0.0.1:0"]
[ctl]
listen = "unix:$dir/ctl.sock"
[log]
level = "warn"
$store
EOF
    "$KAMRS_BIN" --config "$dir/kamrs.toml" >"$dir/stdout" 2>"$dir/stderr" &
    kamrs_pid=$!
    pids+=("$kamrs_pid")
    for _ in $(seq 200); do
        if grep -qx ready "$dir/stdout" 2>/dev/null; then
            kamrs_udp=$(sed -n 's/^listening udp://p' "$dir/stdout" | head -1)
            return 0
        fi
        kill -0 "$kamrs_pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "kamrs ($name) did not start:" >&2
    cat "$dir/stderr" >&2
    exit 1
}

# Runs SIPp at $1 REGISTER/s for step_secs; prints the achieved rate, or
# fails (status 1) when a REGISTER failed or the rate was not kept.
run_step() {
    local rate=$1 tag=$2
    local calls=$((rate * step_secs))
    local port
    port=$(free_port)
    local start end
    start=$(date +%s.%N)
    if ! sipp "$kamrs_udp" -sf tests/sipp/register.xml \
        -key user_prefix "$tag" -cid_str "$tag-%u@bench" \
        -r "$rate" -m "$calls" -l 20000 \
        -i 127.0.0.1 -p "$port" -timeout "$((step_secs * 4 + 10))s" -timeout_error \
        -nostdin -buff_size "${SIPP_BUFF:-4194304}" -trace_err -error_file "$work/sipp-err.log" \
        >/dev/null 2>&1 </dev/null; then
        return 1
    fi
    end=$(date +%s.%N)
    awk -v c="$calls" -v s="$start" -v e="$end" -v r="$rate" -v want="$step_secs" '
        BEGIN { t = e - s; if (t > want * 1.05 + 0.3) exit 1; printf "%.0f", c / t }'
}

# Climbs the rate ladder; prints the highest sustained rate.
ladder() {
    local name=$1 best=0 got
    for rate in "${rates[@]}"; do
        # Two tries: one hiccup of a shared machine does not end the climb.
        if got=$(run_step "$rate" "${name}r${rate}a") || got=$(run_step "$rate" "${name}r${rate}b"); then
            printf '  %-16s %6s REG/s offered: ok (%s REG/s achieved)\n' "$name" "$rate" "$got" >&2
            best=$rate
        else
            printf '  %-16s %6s REG/s offered: not sustained\n' "$name" "$rate" >&2
            break
        fi
    done
    echo "$best"
}

declare -A result
start_redis

echo "REGISTER throughput, ${step_secs}s per step, one new AoR per REGISTER (SIPp over UDP, 127.0.0.1):" >&2
start_kamrs memory '[store]
backend = "none"'
result[memory]=$(ladder memory)
stop_pid "$kamrs_pid"

start_kamrs redis-wt "[store]
backend = \"redis\"
url = \"$redis_url\"
mode = \"write-through\""
result[redis-wt]=$(ladder redis-wt)
stop_pid "$kamrs_pid"

start_kamrs redis-wb "[store]
backend = \"redis\"
url = \"$redis_url\"
mode = \"write-back\"
write_back_interval = 200"
result[redis-wb]=$(ladder redis-wb)
stop_pid "$kamrs_pid"

# DBSIZE over a raw connection (no redis-cli needed).
redis_dbsize() {
    local hostport=${redis_url#redis://} line=
    exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}" || return 0
    printf 'DBSIZE\r\n' >&3
    read -r -t 5 line <&3 || true
    exec 3>&-
    echo "${line//[^0-9]/}"
}
keys=$(redis_dbsize)
echo
printf '%-28s %14s %10s\n' setup "max REG/s" "vs memory"
printf '%-28s %14s %10s\n' ----- --------- ---------
for name in memory redis-wt redis-wb; do
    label=$name
    case $name in
        memory) label="memory only (none)" ;;
        redis-wt) label="redis write-through" ;;
        redis-wb) label="redis write-back (200 ms)" ;;
    esac
    ratio=$(awk -v r="${result[$name]}" -v m="${result[memory]}" \
        'BEGIN { if (m > 0) printf "%.0f%%", 100 * r / m; else print "-" }')
    printf '%-28s %14s %10s\n' "$label" "${result[$name]}" "$ratio"
done
echo
echo "bindings in Redis afterwards: ${keys:-?} (every REGISTER of the redis runs)"
top=${rates[-1]}
if [[ ${result[memory]} == "$top" ]]; then
    echo "note: memory only sustained the highest rate tried ($top); the ratio is a lower bound's."
fi
