#!/usr/bin/env bash
# A controller stopped for 5 s (SIGSTOP) plays the timeline late:
# events.log keeps the planned time, a `late` line gives the actual time
# and the lateness, summary.json counts it and the report lists it.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
run=$TMP/late
"$FAULTLINE" run --plain --out "$run" "$here/late.yaml" >"$TMP/stdout" 2>&1 &
pid=$!
for _ in $(seq 1 1500); do
    grep -q '\] start ' "$run/events.log" 2>/dev/null && break
    sleep 0.2
done
grep -q '\] start ' "$run/events.log" || { kill $pid; fail "the run never reached time zero"; }
kill -STOP $pid
sleep 5
kill -CONT $pid
set +e
wait $pid
code=$?
set -e
no_qemu_left "$run"
[ "$code" = 0 ] || fail "exit $code: $(cat "$TMP/stdout")"
grep -qE '^\[\+3\.000s\] partition ' "$run/events.log" || fail "the partition is not logged at its planned time"
line=$(grep -E '^\[\+[0-9.]+s\] late +partition \(timeline\[0\]\) planned at \+3\.000s, played at \+[0-9.]+s: [0-9.]+s late$' "$run/events.log") ||
    fail "no late line for the partition: $(cat "$run/events.log")"
late=$(sed -E 's/.*: ([0-9.]+)s late$/\1/' <<<"$line")
python3 - "$run" "$late" <<'PY'
import json, re, sys
run, late = sys.argv[1], float(sys.argv[2])
assert late >= 1.0, f"the partition was only {late}s late after a 5 s stop"
s = json.load(open(run + "/summary.json"))
assert s["events_late"] >= 1 and s["late_max_ns"] >= 1e9, s
page = open(run + "/report.html", encoding="utf-8").read()
data = json.loads(re.search(r'<script id="fl-data" type="application/json">\n(.*?)\n</script>', page, re.S).group(1))
kinds = [e[3] for e in data["events"]]
assert "late" in kinds, kinds
print(f"ok: the partition played {late}s late; events.log, summary.json and the report say so")
PY
