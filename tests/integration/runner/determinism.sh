#!/usr/bin/env bash
# A run and its replay (--replay-of: same scenario, same seed) play the same
# timeline (docs/running.md, "What is deterministic"); another seed draws
# another one.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

run_one() {
    local out=$1
    shift
    set +e
    "$FAULTLINE" run --plain --out "$out" "$@" >"$out.txt" 2>&1
    local code=$?
    set -e
    [ "$code" -le 1 ] || { cat "$out.txt"; fail "run $out exited $code"; }
    no_qemu_left "$out"
}
run_one "$TMP/run1" "$here/determinism.yaml"
run_one "$TMP/run2" --replay-of "$TMP/run1"
seed=$(cat "$TMP/run1/seed")
[ "$seed" = "$(cat "$TMP/run2/seed")" ] || fail "the replay used seed $(cat "$TMP/run2/seed"), not $seed"

# Timeline events are logged at their planned times; results (checks,
# readiness, exec exits) are not part of the comparison.
timeline() {
    grep -E '^\[\+[0-9.]+s\] (partition|heal|link|link-clear|crash|restart|pause|resume|reboot|clock|disk|mark|exec|wait) ' "$1"
}
timeline "$TMP/run1/events.log" >"$TMP/t1"
timeline "$TMP/run2/events.log" >"$TMP/t2"
n=$(wc -l <"$TMP/t1")
[ "$n" -ge 2 ] || fail "only $n timeline events with seed $seed: too few to compare"
diff -u "$TMP/t1" "$TMP/t2" || fail "the run and its replay (seed $seed) played different timelines"
ok "a run and its replay (seed $seed) played the same $n timeline events"

# Another seed draws another timeline.
"$FAULTLINE" validate --dump --seed "$seed" "$here/determinism.yaml" >"$TMP/d1.json"
"$FAULTLINE" validate --dump --seed "$([ "$seed" = 1 ] && echo 2 || echo 1)" "$here/determinism.yaml" >"$TMP/d2.json"
python3 - "$TMP/d1.json" "$TMP/d2.json" <<'PY'
import json, sys
a, b = (json.load(open(p))["events"] for p in sys.argv[1:])
assert a != b, "two seeds drew the same timeline"
print("ok: another seed draws another timeline")
PY
