#!/usr/bin/env bash
# The merged pcap of `faultline trace --pcap` (or trace_pcap_merge) is read
# by tshark: every selected frame is there, as the ICMP it was.  Also the
# trace/report command lines: exit codes and JSON lines.
#   pcap-tshark.sh TRACE_SYNTH
set -euo pipefail
synth=$1
if ! command -v tshark >/dev/null; then
    echo "pcap-tshark: SKIP: tshark is not installed (deps/trace.txt lists it)" >&2
    exit 77
fi
if [ -z "${FAULTLINE:-}" ] || [ ! -x "$FAULTLINE" ]; then
    echo "pcap-tshark: SKIP: the faultline binary is not built (FAULTLINE=${FAULTLINE:-})" >&2
    exit 77
fi
work=$(mktemp -d /tmp/fl-trace-pcap.XXXXXX)
trap 'rm -rf "$work"' EXIT
run=$work/run
"$synth" "$run" >/dev/null
fail=0
expect() { # expect WHAT GOT WANT
    if [ "$2" != "$3" ]; then echo "pcap-tshark: FAIL: $1: got '$2', want '$3'" >&2; fail=1; fi
}
# all frames: one packet per send (1200 in the synthetic run)
"$FAULTLINE" trace "$run" --pcap "$work/all.pcap" 2>"$work/err"
grep -q 'wrote 1200 packets' "$work/err" || { cat "$work/err" >&2; fail=1; }
expect "packets read by tshark" "$(tshark -r "$work/all.pcap" 2>/dev/null | wc -l)" 1200
expect "ICMP echo requests" "$(tshark -r "$work/all.pcap" -Y 'icmp.type == 8' 2>/dev/null | wc -l)" 1200
expect "nanosecond pcap" "$(capinfos -t -M "$work/all.pcap" 2>/dev/null | grep -c 'nsecpcap' || true)" 1
# the frames the partition dropped, n1 -> n3 only
"$FAULTLINE" trace "$run" --from n1 --to n3 --reason partition --pcap "$work/part.pcap" 2>/dev/null
expect "partition drops n1->n3" "$(tshark -r "$work/part.pcap" 2>/dev/null | wc -l)" 50
expect "all from 10.0.0.1 to 10.0.0.3" \
    "$(tshark -r "$work/part.pcap" -T fields -e ip.src -e ip.dst 2>/dev/null | sort -u | tr '\t\n' ' ')" \
    "10.0.0.1 10.0.0.3 "
# to standard output, into tshark
expect "pcap on stdout" "$("$FAULTLINE" trace "$run" --reason loss --pcap - 2>/dev/null | tshark -r - 2>/dev/null | wc -l)" 20
# in time order, inside the partition window relative to the first packet
first=$(tshark -r "$work/all.pcap" -T fields -e frame.time_epoch -c 1 2>/dev/null)
pfirst=$(tshark -r "$work/part.pcap" -T fields -e frame.time_epoch -c 1 2>/dev/null)
python3 -c "import sys; d=float('$pfirst')-float('$first'); sys.exit(0 if 4.99 < d < 5.01 else 1)" ||
    { echo "pcap-tshark: FAIL: first partition drop at +$pfirst-$first s, want +5.002 s" >&2; fail=1; }

# the command line around it: exit codes and machine-readable output
code() { local rc=0; "$@" >/dev/null 2>&1 || rc=$?; echo "$rc"; }
expect "unknown node" "$(code "$FAULTLINE" trace "$run" --from n9)" 2
expect "bad fate" "$(code "$FAULTLINE" trace "$run" --fate lost)" 2
expect "bad duration" "$(code "$FAULTLINE" trace "$run" --since 5parsecs)" 2
expect "not a run" "$(code "$FAULTLINE" trace "$work/nothing-here")" 2
expect "--pcap with --ios" "$(code "$FAULTLINE" trace "$run" --ios --pcap "$work/x.pcap")" 2
expect "trace --help" "$(code "$FAULTLINE" trace --help)" 0
expect "report without a run" "$(code "$FAULTLINE" report)" 2
expect "report of no run" "$(code "$FAULTLINE" report "$work/nothing-here")" 2
"$FAULTLINE" report "$run" -o "$work/custom.html" >/dev/null
test -s "$work/custom.html" || { echo "pcap-tshark: FAIL: report -o wrote nothing" >&2; fail=1; }
for kind in "" --ios --lost --events --links; do
    "$FAULTLINE" trace "$run" $kind --json | python3 -c '
import json, sys
n = sum(1 for line in sys.stdin if json.loads(line) is not None)
assert n > 0, "no rows"
' || { echo "pcap-tshark: FAIL: trace $kind --json is not JSON lines" >&2; fail=1; }
done
[ "$fail" = 0 ] && echo "pcap-tshark: ok"
exit "$fail"
