#!/usr/bin/env bash
# One run of faults.yaml with real TCG guests: a one-way partition cuts one
# direction only, a link delay shows in the RTT, pause silences a node and
# resume brings it back, a crash loses exactly the unflushed write, and a
# failing check makes the run exit 1 with junit.xml naming it.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

run="$TMP/faults"
set +e
"$FAULTLINE" run --plain --out "$run" "$here/faults.yaml" >"$TMP/out.txt" 2>&1
code=$?
set -e
cat "$TMP/out.txt"
no_qemu_left "$run"
[ "$code" = 1 ] || fail "exit code $code, expected 1 (one check fails on purpose)"
ok "exit code 1"

grep -q '<testsuite name="e2e-faults" tests="12" failures="1"' "$run/junit.xml" ||
    fail "junit.xml does not count 12 results (11 checks + 1 wait) with 1 failure: $(grep testsuite "$run/junit.xml")"
python3 - "$run" <<'PY'
import json, sys, xml.etree.ElementTree as ET
run = sys.argv[1]
suite = ET.parse(run + "/junit.xml").getroot().find("testsuite")
failed = [tc.get("name") for tc in suite.findall("testcase") if tc.find("failure") is not None]
assert failed == ["deliberately-failing"], f"failed test cases: {failed}"
msg = suite.find("testcase[@name='deliberately-failing']/failure").get("message")
assert "expected exit 0, got 3" in msg, msg
s = json.load(open(run + "/summary.json"))
assert s["verdict"] == "fail", s["verdict"]
assert s["seed"] == 7, s["seed"]
bad = [c["name"] for c in s["checks"]["list"] if not c["passed"] and c["name"] != "deliberately-failing"]
assert not bad, f"checks that should have passed: {bad}"
print("ok: junit.xml and summary.json name exactly the failing check")
PY

for kind in partition heal link link-clear pause resume crash restart wait exec; do
    grep -qE "^\[\+[0-9.]+s\] $kind " "$run/events.log" || fail "events.log has no '$kind' line"
done
grep -q "raw (lose-unflushed): 1 unflushed write lost" "$run/events.log" ||
    fail "the crash lost no unflushed write: $(grep crash "$run/events.log")"
ok "events.log shows every event; the crash lost unflushed writes"

[ -s "$run/report.html" ] || fail "no report.html"
[ -s "$run/run.db" ] || fail "no run.db"
ls "$run"/pcap/*.pcap >/dev/null || fail "no pcaps"
[ -s "$run/console/n1.log" ] || fail "no console log for n1"
[ ! -e "$run/sock" ] || fail "socket directory left behind"
ok "run directory complete"
