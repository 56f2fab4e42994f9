#!/usr/bin/env bash
# The merged pcap of `faultline trace --pcap` (or trace_pcap_merge) is read
# by tshark: every selected frame is there, as the ICMP it was.
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
# in time order, inside the partition window relative to the first packet
first=$(tshark -r "$work/all.pcap" -T fields -e frame.time_epoch -c 1 2>/dev/null)
pfirst=$(tshark -r "$work/part.pcap" -T fields -e frame.time_epoch -c 1 2>/dev/null)
python3 -c "import sys; d=float('$pfirst')-float('$first'); sys.exit(0 if 4.99 < d < 5.01 else 1)" ||
    { echo "pcap-tshark: FAIL: first partition drop at +$pfirst-$first s, want +5.002 s" >&2; fail=1; }
[ "$fail" = 0 ] && echo "pcap-tshark: ok"
exit "$fail"
