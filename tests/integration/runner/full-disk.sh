#!/usr/bin/env bash
# A run directory that fills up (issue 14, item 2): the run could not
# record what it promised, so it exits 3 naming what was lost; every
# artifact that is there parses; nothing claims a file that is not there.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
tmpfs_or_skip 2m
mnt=$TMPFS

run=$mnt/run
set +e
"$FAULTLINE" run --plain --out "$run" "$here/full-disk.yaml" >"$TMP/stdout" 2>"$TMP/stderr"
code=$?
set -e
no_qemu_left "$run"
[ "$(df --output=avail -B1 "$mnt" | tail -1)" -lt 65536 ] ||
    fail "the run directory never filled up: $(df -h "$mnt" | tail -1); the test proves nothing"
[ "$code" = 3 ] || fail "exit $code on a full run directory, want 3: $(cat "$TMP/stdout" "$TMP/stderr")"
grep -q "could not record what it promised" "$TMP/stdout" "$TMP/stderr" ||
    fail "the reason is not given: $(cat "$TMP/stdout" "$TMP/stderr")"
grep -qE "(run\.db|pcap/): No space left on device" "$TMP/stdout" ||
    fail "the loss is not named: $(cat "$TMP/stdout")"
# Both writers met the full disk: each loss is named, the pcaps' too
# (a failure the one-second flush met first must still reach the verdict).
for what in run.db pcap/; do
    grep -qF "$what: No space left on device" "$TMP/stdout" ||
        fail "the loss of $what is not named: $(cat "$TMP/stdout")"
done
ok "a full run directory: exit 3, $(grep -o 'could not record.*' "$TMP/stdout" | head -1)"

# Whatever is there parses and says error; a file named is a file there.
python3 - "$run" "$TMP/stdout" <<'PY'
import json, os, re, sys
import xml.etree.ElementTree as ET
run, stdout = sys.argv[1:]
out = open(stdout, encoding="utf-8").read()
m = re.search(r"^report: +(\S+)$", out, re.M)
if m:
    assert os.path.isfile(m.group(1)), f"report: names {m.group(1)}, which is not there"
if os.path.exists(run + "/junit.xml"):
    t = ET.parse(run + "/junit.xml")
    assert t.getroot().find("testsuite").get("errors") == "1", "junit.xml does not report the error"
if os.path.exists(run + "/summary.json"):
    s = json.load(open(run + "/summary.json"))
    assert s["verdict"] == "error", s["verdict"]
    for key, name in s["files"].items():
        assert os.path.exists(os.path.join(run, name)), f"summary.json names {name}, not there"
    assert "No space left" in s.get("unrecorded", ""), s
print("ok: every artifact there parses; none is claimed that is not there;",
      "present:", sorted(f for f in os.listdir(run)))
PY
