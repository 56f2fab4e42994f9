#!/usr/bin/env bash
# blkback benchmark: fio --ioengine=nbd, 4 KiB random reads and writes at
# queue depth 1 and 16, against `faultline disk serve` (no faults) and
# against `nbdkit file` on the same backing file, in the same run.
# Prints one JSON object per line (DESIGN.md), then a human summary.
#
#   bench/blkback/fio-vs-nbdkit.sh [FAULTLINE] [SECONDS] [ROUNDS]
#
# FAULTLINE defaults to build/cli/faultline; SECONDS per fio run defaults
# to 3; each case runs ROUNDS (default 3) times per server, alternating
# blkback and nbdkit so both see the same machine noise, and reports the
# median of each metric.  Needs fio, nbdkit (deps/blkback.txt).
set -euo pipefail
FAULTLINE=${1:-${FAULTLINE:-build/cli/faultline}}
SECS=${2:-3}
ROUNDS=${3:-3}
for tool in fio nbdkit; do
    command -v "$tool" >/dev/null || { echo "fio-vs-nbdkit: $tool is missing (scripts/install-deps)" >&2; exit 2; }
done
[ -x "$FAULTLINE" ] || { echo "fio-vs-nbdkit: no faultline binary at $FAULTLINE" >&2; exit 2; }

dir=$(mktemp -d /tmp/fl-blkback-bench.XXXXXX)
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill "$pid"; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT
img=$dir/disk.img
size=256M
# real data everywhere (no holes), in the page cache for both servers
head -c 256M /dev/urandom >"$img"

sock=$dir/s.sock
start_server() {
    rm -f "$sock"
    case "$1" in
    blkback) "$FAULTLINE" disk serve "$img" --socket "$sock" >"$dir/server.log" 2>&1 & ;;
    nbdkit) nbdkit --foreground --exit-with-parent -U "$sock" file "$img" >"$dir/server.log" 2>&1 & ;;
    esac
    pid=$!
    for _ in $(seq 200); do [ -S "$sock" ] && return 0; sleep 0.05; done
    echo "fio-vs-nbdkit: $1 did not start: $(cat "$dir/server.log")" >&2
    exit 1
}
stop_server() {
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}

# run_fio SERVER RW DEPTH -> "iops p50_ns p99_ns"
run_fio() {
    start_server "$1"
    fio --name=b --ioengine=nbd --uri="nbd+unix:///?socket=$sock" --rw="$2" --bs=4k \
        --iodepth="$3" --size="$size" --time_based --runtime="$SECS" --ramp_time=1 \
        --randrepeat=1 --output-format=json --output="$dir/fio.json" >/dev/null
    stop_server
    /usr/bin/python3 - "$dir/fio.json" "$2" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
side = j["read"] if "read" in sys.argv[2] else j["write"]
pct = side["clat_ns"]["percentile"]
print("%.0f %d %d" % (side["iops"], pct["50.000000"], pct["99.000000"]))
PY
}

# median of each column of a file of "iops p50 p99" lines
median() {
    /usr/bin/python3 -c '
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
print(" ".join("%.0f" % statistics.median(c) for c in zip(*rows)))' "$1"
}

summary=()
for rw in ${BB_BENCH_RW:-randread randwrite}; do
    for qd in 1 16; do
        : >"$dir/b.txt"
        : >"$dir/n.txt"
        for _ in $(seq "$ROUNDS"); do
            run_fio blkback "$rw" "$qd" >>"$dir/b.txt"
            run_fio nbdkit "$rw" "$qd" >>"$dir/n.txt"
        done
        read -r b_iops b_p50 b_p99 < <(median "$dir/b.txt")
        read -r n_iops n_p50 n_p99 < <(median "$dir/n.txt")
        case_name="$rw-4k-qd$qd"
        /usr/bin/python3 - "$case_name" "$b_iops" "$n_iops" "$b_p50" "$n_p50" "$b_p99" "$n_p99" <<'PY'
import json, sys
c, bi, ni, b50, n50, b99, n99 = sys.argv[1], *map(float, sys.argv[2:])
def line(metric, unit, v, base, better):
    print(json.dumps({"bench": "blkback.fio", "case": c, "metric": metric, "value": v,
                      "unit": unit, "baseline": "nbdkit-file", "baseline_value": base,
                      "ratio": round(v / base, 3) if base else None, "better": better}))
line("iops", "IOPS", bi, ni, "higher")
line("p50", "ns", b50, n50, "lower")
line("p99", "ns", b99, n99, "lower")
PY
        summary+=("$(printf '%-18s blkback %8.0f IOPS p50 %6.1f us p99 %6.1f us | nbdkit %8.0f IOPS p50 %6.1f us p99 %6.1f us | IOPS ratio %.2fx' \
            "$case_name" "$b_iops" "$(echo "$b_p50/1000" | bc -l)" "$(echo "$b_p99/1000" | bc -l)" \
            "$n_iops" "$(echo "$n_p50/1000" | bc -l)" "$(echo "$n_p99/1000" | bc -l)" \
            "$(echo "$b_iops/$n_iops" | bc -l)")")
    done
done
echo
echo "blkback vs nbdkit file, fio --ioengine=nbd, 4 KiB, median of $ROUNDS x ${SECS}s runs per server, $(nproc) CPUs:"
printf '  %s\n' "${summary[@]}"
