#!/bin/sh
# The netback benchmark still runs and says what it should: every case's
# JSON line well formed (DESIGN.md's keys, finite numbers), the summary
# last, and nothing left behind in its directory.  The figures themselves
# are not judged here (benchmarks are read, not timed tests).
#   bench-smoke.sh path/to/bench_netback
set -eu
bench=$1
dir=$(mktemp -d /tmp/fl-bench-smoke.XXXXXX)
trap 'rm -rf "$dir"' EXIT INT TERM
NB_BENCH_DIR=$dir "$bench" --quick >"$dir/out" 2>"$dir/err" || {
    echo "bench-smoke: $bench --quick exited $?" >&2
    cat "$dir/err" >&2
    exit 1
}
json='^\{"bench":"netback\.[a-z_]+","case":"[^"]+","value":-?[0-9]+\.[0-9],"unit":"[^"]+","baseline":"[a-z0-9-]+","baseline_value":-?[0-9]+\.[0-9],"ratio":-?[0-9]+\.[0-9]{3}\}$'
fail=0
# JSON lines first (a NaN or an infinity fails the pattern), then the
# summary: nothing else, in that order.
first_other=$(grep -n -v -E "$json" "$dir/out" | head -n 1 | cut -d: -f1)
if [ -z "$first_other" ]; then
    echo "bench-smoke: no summary after the JSON lines" >&2
    fail=1
elif ! sed -n "${first_other}p" "$dir/out" | grep -q '^netback benchmark summary'; then
    echo "bench-smoke: line $first_other is neither a JSON line nor the summary:" >&2
    sed -n "${first_other}p" "$dir/out" >&2
    fail=1
elif tail -n +"$first_other" "$dir/out" | grep -q '^{'; then
    echo "bench-smoke: a JSON line after the summary" >&2
    fail=1
fi
for want in 'netback.forward 6' 'netback.loop_cost 4' 'netback.machine 3' \
            'netback.latency 2' 'netback.delay_error 4'; do
    set -- $want
    n=$(grep -c "^{\"bench\":\"$1\"" "$dir/out" || true)
    if [ "$n" != "$2" ]; then
        echo "bench-smoke: $n lines of $1, expected $2" >&2
        fail=1
    fi
done
left=$(ls "$dir" | grep -v -x -E 'out|err' || true)
if [ -n "$left" ]; then
    echo "bench-smoke: left behind in its directory: $left" >&2
    fail=1
fi
if [ "$fail" = 0 ]; then
    echo "bench-smoke: $(grep -c '^{' "$dir/out") JSON lines and the summary"
fi
exit "$fail"
