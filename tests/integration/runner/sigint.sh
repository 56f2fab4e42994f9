#!/usr/bin/env bash
# SIGINT mid-run: every guest is torn down, the run exits 130 and leaves a
# readable run directory marked interrupted.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
src=$(cd "$here/../../.." && pwd)

run="$TMP/sigint"
"$FAULTLINE" run --plain --out "$run" "$src/scenarios/quickstart.yaml" >"$TMP/out.txt" 2>&1 &
pid=$!
for _ in $(seq 1 240); do
    grep -q '\] start ' "$run/events.log" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { cat "$TMP/out.txt"; fail "the run ended before time zero"; }
    sleep 0.5
done
grep -q '\] start ' "$run/events.log" || fail "the run never reached time zero"
qemus=$(pgrep -f -- "qemu-system.*$run" | tr '\n' ' ')
[ -n "$qemus" ] || fail "no QEMU running for the run"
sleep 3
kill -INT "$pid"
set +e
wait "$pid"
code=$?
set -e
cat "$TMP/out.txt"
[ "$code" = 130 ] || fail "exit code $code after SIGINT, expected 130"
for q in $qemus; do
    ! kill -0 "$q" 2>/dev/null || fail "QEMU $q survived the interrupted run"
done
no_qemu_left "$run"
grep -q '"verdict": "interrupted"' "$run/summary.json" || fail "summary.json not marked interrupted"
grep -q 'interrupted' "$run/junit.xml" || fail "junit.xml does not say interrupted"
n=$(sqlite3 "$run/run.db" "select count(*) from events")
[ "$n" -gt 0 ] || fail "run.db holds no events"
verdict=$(sqlite3 "$run/run.db" "select verdict from run")
[ "$verdict" = interrupted ] || fail "run.db verdict is '$verdict'"
ok "SIGINT: exit 130, QEMU ($qemus) gone, run directory readable and marked interrupted"
