#!/usr/bin/env bash
# Runs one ready-made scenario from scenarios/ end to end and expects a
# pass: exit 0, every check passed, no guest left behind.
#   scenario.sh NAME      (scenarios/NAME.yaml)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
src=$(cd "$here/../../.." && pwd)
name=${1:?usage: scenario.sh NAME}

run="$TMP/$name"
start=$(date +%s)
set +e
"$FAULTLINE" run --plain --out "$run" "$src/scenarios/$name.yaml" >"$TMP/out.txt" 2>&1
code=$?
set -e
cat "$TMP/out.txt"
no_qemu_left "$run"
[ "$code" = 0 ] || fail "scenarios/$name.yaml exited $code (see the output above)"
grep -q '"verdict": "pass"' "$run/summary.json" || fail "summary.json verdict is not pass"
ok "scenarios/$name.yaml passed in $(($(date +%s) - start))s"
