#!/usr/bin/env bash
# Runs the parse benchmark (kamrs vs rsip 0.4, kamrs/benches/parse.rs) and
# prints, per message, REGISTERs/s for each parser and the ratio.
#
# Usage: bench/parse-bench.sh [criterion args...]
#   e.g. bench/parse-bench.sh --measurement-time 5
# Figures are criterion's mean point estimate (ns per REGISTER) from
# target/criterion/<message>/<parser>/new/estimates.json, single-threaded.
set -euo pipefail

cd "$(dirname "$0")/.."
command -v jq >/dev/null || { echo "parse-bench.sh needs jq" >&2; exit 1; }

target_dir=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
crit="$target_dir/criterion"
log=$(mktemp)
marker=$(mktemp)
trap 'rm -f "$log" "$marker"' EXIT

# Only estimates written by this run count (criterion keeps old ones).
touch "$marker"
sleep 1
cargo bench -p kamrs --bench parse -- "$@" 2>&1 | tee "$log"

mean_ns() { # message parser -> mean ns, or empty when not run this time
    local f="$crit/$1/$2/new/estimates.json"
    [[ -f $f && $f -nt $marker ]] || return 0
    jq -r .mean.point_estimate "$f"
}

messages=$(find "$crit" -path '*/kamrs/new/estimates.json' -newer "$marker" \
    | sed -E "s#^$crit/([^/]+)/kamrs/new/estimates.json\$#\\1#" | sort)
echo
echo "Parse + full typed extraction, one core (criterion mean):"
printf '%-36s %16s %16s %8s\n' message "kamrs REG/s" "rsip REG/s" ratio
printf '%-36s %16s %16s %8s\n' ------- ----------- ---------- -----
for m in $messages; do
    k=$(mean_ns "$m" kamrs)
    r=$(mean_ns "$m" rsip)
    [[ -n $k ]] || continue
    k_rate=$(awk -v ns="$k" 'BEGIN { printf "%.0f", 1e9 / ns }')
    if [[ -n $r ]]; then
        r_rate=$(awk -v ns="$r" 'BEGIN { printf "%.0f", 1e9 / ns }')
        ratio=$(awk -v k="$k" -v r="$r" 'BEGIN { printf "%.2fx", r / k }')
    else
        r_rate="rsip fails"
        ratio="-"
    fi
    printf '%-36s %16s %16s %8s\n' "$m" "$k_rate" "$r_rate" "$ratio"
done
echo
grep -E '^rsip (FAILED|0\.4 could not|parsed every)' "$log" | cut -c1-200 || true
