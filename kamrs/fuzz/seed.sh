#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ with the 28 REGISTER fixtures (corpus dirs are
# gitignored; libFuzzer adds what it finds there). `.sip` fixtures are LF
# text and get CRLF line ends; `.raw` and `.lf` are copied byte for byte.
# Usage: kamrs/fuzz/seed.sh [target...]   (default: every target)
set -euo pipefail

fuzz_dir=$(cd "$(dirname "$0")" && pwd)
fixtures="$fuzz_dir/../tests/fixtures/register"
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(parse_message stream_framing handle_request digest_authorization)

for t in "${targets[@]}"; do
    dir="$fuzz_dir/corpus/$t"
    mkdir -p "$dir"
    n=0
    if [[ $t == digest_authorization ]]; then
        # This target takes an Authorization header value, not a message.
        for f in "$fixtures"/*.sip; do
            value=$(sed -n 's/^Authorization: //p' "$f")
            [[ -n $value ]] || continue
            printf '%s' "$value" > "$dir/seed_$(basename "$f")"
            n=$((n + 1))
        done
        echo "$t: $n seeds in $dir"
        continue
    fi
    for f in "$fixtures"/*.sip "$fixtures"/*.raw "$fixtures"/*.lf; do
        name=$(basename "$f")
        case "$name" in
            *.sip) sed 's/$/\r/' "$f" > "$dir/seed_$name" ;;
            *) cp "$f" "$dir/seed_$name" ;;
        esac
        n=$((n + 1))
    done
    echo "$t: $n seeds in $dir"
done
