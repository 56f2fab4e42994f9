#!/usr/bin/env bash
# Two runs racing for one run directory (issue 14, item 3): exactly one
# claims it; the other exits 2 with a clear message before it writes
# anything there.  Two runs of one scenario without --out in the same
# second get two directories.  No guests: the image cache is a path that
# cannot exist, so the winner stops (exit 3) right after its claim.
set -euo pipefail
: "${FAULTLINE:?FAULTLINE must name the faultline binary (ctest sets it)}"
src=${FL_SOURCE_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)}
TMP=$(mktemp -d /tmp/fl-race-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cat >"$TMP/s.yaml" <<'YAML'
run: {name: race, duration: 5s, seed: 1}
nodes:
  n1: {}
YAML
run() { # out-dir log
    "$FAULTLINE" run --plain --cache /dev/null/no-cache ${1:+--out "$1"} "$TMP/s.yaml" >"$2" 2>&1
}
# Two runs at once for one out-dir ("": the default name); sets $codes.
race() {
    set +e
    run "$1" "$TMP/a.log" &
    local a=$!
    run "$1" "$TMP/b.log" &
    local b=$!
    wait $a
    local ca=$?
    wait $b
    codes="$ca $?"
    set -e
}

# The same --out, new and pre-created empty, a short and a long path (a
# long one puts the sockets in a temporary directory: both runs once ran).
long=$TMP/$(printf 'd%.0s' $(seq 1 90))
mkdir -p "$long"
for i in $(seq 1 30); do
    case $((i % 3)) in
    0) out=$TMP/r$i ;;
    1) out=$TMP/e$i && mkdir "$out" ;;
    2) out=$long/l$i ;;
    esac
    race "$out"
    case "$codes" in
    "3 2") loser=$TMP/b.log ;;
    "2 3") loser=$TMP/a.log ;;
    *) fail "round $i ($out): exit codes $codes, want one 3 (the claim won, no image) and one 2: $(cat "$TMP/a.log" "$TMP/b.log")" ;;
    esac
    grep -qE "claimed by another run|exists and is not an empty directory" "$loser" ||
        fail "round $i: the loser's message is not clear: $(cat "$loser")"
    # The winner's records are its own: one scenario line, one verdict.
    [ "$(grep -c '\] scenario ' "$out/events.log")" = 1 ] || fail "round $i: events.log written by two runs"
    [ "$(grep -c '\] verdict ' "$out/events.log")" = 1 ] || fail "round $i: two verdicts in events.log"
    python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert s["verdict"]=="error", s' \
        "$out/summary.json"
done
echo "ok: 30 races for one --out: one claim, one clear exit 2 each time"

# Without --out: the default name gets a suffix, both runs get a directory.
mkdir "$TMP/cwd" && cd "$TMP/cwd"
for i in $(seq 1 5); do
    race ""
    [ "$codes" = "3 3" ] || fail "default names: exit codes $codes: $(cat "$TMP/a.log" "$TMP/b.log")"
done
n=$(find runs -mindepth 1 -maxdepth 1 -type d | wc -l)
[ "$n" = 10 ] || fail "10 runs without --out made $n directories: $(ls runs)"
for d in runs/*; do
    [ "$(grep -c '\] scenario ' "$d/events.log")" = 1 ] || fail "$d written by two runs"
done
echo "ok: 10 runs without --out, 10 directories"
