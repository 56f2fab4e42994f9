#!/usr/bin/env bash
# Runs one scenario end to end and expects a pass: exit 0, every check
# passed, no guest left behind.
#   scenario.sh NAME        scenarios/NAME.yaml
#   scenario.sh PATH.yaml   any scenario file
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
src=$(cd "$here/../../.." && pwd)
arg=${1:?usage: scenario.sh NAME|PATH.yaml}
case "$arg" in
*.yaml) file=$arg ;;
*) file="$src/scenarios/$arg.yaml" ;;
esac
name=$(basename "$file" .yaml)

run="$TMP/$name"
start=$(date +%s)
set +e
"$FAULTLINE" run --plain --out "$run" "$file" >"$TMP/out.txt" 2>&1
code=$?
set -e
cat "$TMP/out.txt"
no_qemu_left "$run"
[ "$code" = 0 ] || fail "$file exited $code (see the output above)"
grep -q '"verdict": "pass"' "$run/summary.json" || fail "summary.json verdict is not pass"
ok "$file passed in $(($(date +%s) - start))s"
