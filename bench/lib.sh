# Shared by the side-by-side benchmarks (run.sh, keepalive-bench.sh):
# install what is missing, build the release binaries and the probe, and
# run a Python driver with a cleanup that stops every process it recorded,
# even if it was killed. Source it from the repository root.

# bench_install PKG:CMD…: apt-get install each Debian package PKG whose
# command CMD is missing (CMD `py:MODULE` tests a python module). Skipped
# with NO_INSTALL=1.
bench_install() {
    [[ -z ${NO_INSTALL:-} ]] || return 0
    local need=() spec pkg cmd
    for spec in "$@"; do
        pkg=${spec%%:*}
        cmd=${spec#*:}
        if [[ $cmd == py:* ]]; then
            /usr/bin/python3 -c "import ${cmd#py:}" 2>/dev/null || need+=("$pkg")
        else
            command -v "$cmd" >/dev/null || need+=("$pkg")
        fi
    done
    [[ ${#need[@]} -gt 0 ]] || return 0
    echo "installing: ${need[*]}" >&2
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo=sudo
    $sudo apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${need[@]}" >&2
}

# bench_require NAME CMD…: stop with a message naming the script when a
# command is missing.
bench_require() {
    local name=$1 tool
    shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "$name needs $tool" >&2; exit 1; }
    done
    [[ -x /usr/bin/python3 ]] || { echo "$name needs /usr/bin/python3" >&2; exit 1; }
}

# bench_build: kamrs, kamrsctl, bench/probe's and bench/floor's binaries
# (release); exports their paths, BUILD_SECS and a fresh BENCH_WORK directory
# with its pid list.
bench_build() {
    echo "building kamrs, kamrsctl, bench/probe and bench/floor (release)..." >&2
    local t_build target_dir
    t_build=$(date +%s)
    cargo build --release -q -p kamrs -p kamrsctl >&2
    target_dir=$(cargo metadata --format-version 1 --no-deps \
        | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    cargo build --release -q --manifest-path bench/probe/Cargo.toml \
        --target-dir "$target_dir/bench-probe" >&2
    # The floor (bench/floor): its own project too, built the same way.
    cargo build --release -q --manifest-path bench/floor/Cargo.toml \
        --target-dir "$target_dir/bench-floor" >&2
    export BUILD_SECS=$(( $(date +%s) - t_build ))
    export KAMRS_BIN="$target_dir/release/kamrs"
    export KAMRSCTL_BIN="$target_dir/release/kamrsctl"
    export PROBE_BIN="$target_dir/bench-probe/release/kamrs-probe"
    export RESPONDER_BIN="$target_dir/bench-probe/release/kamrs-ka-responder"
    export FLOOR_BIN="$target_dir/bench-floor/release/kamrs-floor"
    BENCH_WORK=$(mktemp -d /tmp/kamrs-bench.XXXXXX)
    export BENCH_WORK
    touch "$BENCH_WORK/pids"
}

bench_driver_pid=""

# The driver stops what it started; this catches what it could not (it was
# killed): every pid it recorded in $BENCH_WORK/pids, each only if its start
# time is still the recorded one (a pid is not reused under us).
bench_cleanup() {
    if [[ -n $bench_driver_pid ]]; then
        kill "$bench_driver_pid" 2>/dev/null || true
        wait "$bench_driver_pid" 2>/dev/null || true
    fi
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

# bench_run NAME T_BEGIN SCRIPT.py: runs the driver under the cleanup and
# exits with its status.
bench_run() {
    local name=$1 t_begin=$2 script=$3
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    /usr/bin/python3 "$script" &
    bench_driver_pid=$!
    local rc=0
    wait "$bench_driver_pid" || rc=$?
    bench_driver_pid=""
    echo "$name: $(( $(date +%s) - t_begin )) s in all (build included)" >&2
    exit "$rc"
}
