#!/usr/bin/env bash
# The demo scenario end to end: exit 0, every check passed, a report, and
# `faultline trace` can answer what the partition did.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
src=$(cd "$here/../../.." && pwd)

run="$TMP/quickstart"
start=$(date +%s)
"$FAULTLINE" run --plain --out "$run" "$src/scenarios/quickstart.yaml" ||
    fail "quickstart exited $?"
took=$(($(date +%s) - start))
no_qemu_left "$run"
ok "quickstart passed in ${took}s"
[ "$took" -lt 120 ] || fail "the demo took ${took}s (budget: 120s)"

grep -q '"verdict": "pass"' "$run/summary.json" || fail "summary.json verdict is not pass"
grep -q 'failures="0"' "$run/junit.xml" || fail "junit.xml has failures"
[ -s "$run/report.html" ] || fail "no report.html"

# The partition dropped frames n1 sent to n3, and only while it lasted.
dropped=$("$FAULTLINE" trace "$run" --from n1 --to n3 --fate dropped --reason partition --json | wc -l)
[ "$dropped" -gt 0 ] || fail "faultline trace shows no frame from n1 to n3 dropped by the partition"
outside=$("$FAULTLINE" trace "$run" --reason partition --until 10s --json | wc -l)
[ "$outside" = 0 ] || fail "$outside frames dropped by a partition before it began"
ok "$dropped frames n1->n3 dropped by the partition, none before it"

"$FAULTLINE" trace "$run" --from n1 --to n3 --pcap "$TMP/n1-n3.pcap" >/dev/null
tshark -r "$TMP/n1-n3.pcap" -c 1 >/dev/null || fail "tshark cannot read the merged pcap"
ok "merged pcap readable by tshark"
