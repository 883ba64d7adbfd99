#!/usr/bin/env bash
# Authenticated REGISTER throughput next to unauthenticated.
#
# Starts a release kamrs without authentication and one with
# `[auth] mode = "digest"` (MD5: what SIPp answers), then drives each with
# SIPp at fixed rates, lowest first: tests/sipp/register.xml (one REGISTER,
# 200) for the open registrar, tests/sipp/register_auth.xml (REGISTER, 401,
# REGISTER with credentials, 200) for the authenticated one. A rate counts
# as sustained when every registration succeeded and SIPp finished within
# 5% (+0.3 s) of the time that rate needs, in one of two tries. Prints the
# highest sustained rate of registrations per second for each, and the
# ratio. (An authenticated registration is two requests.)
#
# SIPp gets 4 MiB socket buffers (SIPP_BUFF, bytes): its 64 KiB default
# overflows at a few 10,000/s and shows as retransmissions of its own.
# Usage: bench/auth-bench.sh [seconds per step (default 4)] [rates...]
# Needs: sipp (Debian sip-tester), python3. Uses $KAMRS_BIN if set, else
# builds target/release/kamrs. Loopback only; everything started here is
# stopped by its pid on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

step_secs=${1:-4}
shift || true
rates=("$@")
[[ ${#rates[@]} -gt 0 ]] || rates=(1000 2000 4000 6000 8000 10000 12000 14000 16000 20000)

command -v sipp >/dev/null || { echo "auth-bench.sh needs sipp (apt-get install sip-tester)" >&2; exit 1; }
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

# Enough users for the largest step, twice (two tries): subscriber file and
# SIPp injection file with the whole [authentication …] keyword per user.
max_users=$((${rates[-1]} * step_secs * 2))
python3 - "$work" "$max_users" <<'PY'
import hashlib, sys
work, n = sys.argv[1], int(sys.argv[2])
with open(f"{work}/subscribers.toml", "w") as subs, open(f"{work}/users.csv", "w") as csv:
    csv.write("SEQUENTIAL\n")
    for i in range(n):
        u, p = f"b{i}", f"pw{i}"
        ha1 = hashlib.md5(f"{u}:example.com:{p}".encode()).hexdigest()
        subs.write(f'[[subscriber]]\nusername = "{u}"\ndomain = "example.com"\nha1 = "{ha1}"\n\n')
        csv.write(f"{u};[authentication username={u} password={p}];\n")
PY

start_kamrs() { # name, extra config
    local name=$1 extra=$2 dir="$work/$1"
    mkdir -p "$dir"
    cat >"$dir/kamrs.toml" <<CFG
listen = ["udp:127.0.0.1:0"]
[ctl]
listen = "unix:$dir/ctl.sock"
[log]
level = "warn"
$extra
CFG
    "$KAMRS_BIN" --config "$dir/kamrs.toml" >"$dir/stdout" 2>"$dir/stderr" &
    kamrs_pid=$!
    pids+=("$kamrs_pid")
    for _ in $(seq 400); do
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

run_step() { # rate, tag, auth(0|1)
    local rate=$1 tag=$2 auth=$3
    local calls=$((rate * step_secs)) port start end
    port=$(free_port)
    local scenario=(-sf tests/sipp/register.xml -key user_prefix "$tag" -cid_str "$tag-%u@bench")
    if [[ $auth == 1 ]]; then
        scenario=(-sf tests/sipp/register_auth.xml -inf "$work/users.csv" -cid_str "$tag-%u@bench")
    fi
    start=$(date +%s.%N)
    if ! sipp "$kamrs_udp" "${scenario[@]}" -r "$rate" -m "$calls" -l 20000 \
        -i 127.0.0.1 -p "$port" -timeout "$((step_secs * 4 + 10))s" -timeout_error \
        -nostdin -buff_size "${SIPP_BUFF:-4194304}" >/dev/null 2>&1 </dev/null; then
        return 1
    fi
    end=$(date +%s.%N)
    awk -v c="$calls" -v s="$start" -v e="$end" -v want="$step_secs" '
        BEGIN { t = e - s; if (t > want * 1.05 + 0.3) exit 1; printf "%.0f", c / t }'
}

ladder() { # name, auth
    local name=$1 auth=$2 best=0 got
    for rate in "${rates[@]}"; do
        if got=$(run_step "$rate" "${name}r${rate}a" "$auth") || got=$(run_step "$rate" "${name}r${rate}b" "$auth"); then
            printf '  %-8s %6s registrations/s offered: ok (%s/s achieved)\n' "$name" "$rate" "$got" >&2
            best=$rate
        else
            printf '  %-8s %6s registrations/s offered: not sustained\n' "$name" "$rate" >&2
            break
        fi
    done
    echo "$best"
}

echo "Registrations per second, ${step_secs}s per step (SIPp over UDP, 127.0.0.1):" >&2
start_kamrs open ''
open=$(ladder open 0)
kill "$kamrs_pid"; wait "$kamrs_pid" 2>/dev/null || true
start_kamrs digest "[auth]
mode = \"digest\"
algorithms = [\"MD5\"]
subscribers = \"$work/subscribers.toml\"
secret_file = \"$work/secret\""
digest=$(ladder digest 1)

echo
printf '%-34s %10s %10s\n' setup "max reg/s" "vs open"
printf '%-34s %10s %10s\n' "no authentication" "$open" "100%"
printf '%-34s %10s %10s\n' "digest MD5 (401 + answer, 2 req)" "$digest" \
    "$(awk -v a="$digest" -v o="$open" 'BEGIN { if (o > 0) printf "%.0f%%", 100 * a / o; else print "-" }')"
