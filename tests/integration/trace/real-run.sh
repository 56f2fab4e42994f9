#!/usr/bin/env bash
# `faultline trace` and `faultline report` on real runs (TCG guests):
#   quickstart            n3 isolated for 10 s: the partition's drops are
#                         in run.db, in the merged pcap and in the report
#   crash-lost.yaml       O_DIRECT writes then a power cut: the lost writes
#                         are in run.db (trace --lost) and in the report
#   real-run.sh quickstart|crash
set -euo pipefail
case_=$1
if [ -z "${FAULTLINE:-}" ] || [ ! -x "$FAULTLINE" ]; then
    echo "real-run: SKIP: the faultline binary is not built (FAULTLINE=${FAULTLINE:-})" >&2
    exit 77
fi
if ! command -v qemu-system-x86_64 >/dev/null; then
    echo "real-run: SKIP: qemu-system-x86_64 is not installed" >&2
    exit 77
fi
work=$(mktemp -d /tmp/fl-trace-real.XXXXXX)
trap 'rm -rf "$work"' EXIT
run=$work/run
fail=0
bad() { echo "real-run: FAIL: $*" >&2; fail=1; }

case "$case_" in
quickstart)
    rc=0
    "$FAULTLINE" run scenarios/quickstart.yaml -o "$run" --plain -q >"$work/run.log" 2>&1 || rc=$?
    [ "$rc" = 0 ] || { cat "$work/run.log" >&2; bad "faultline run quickstart exited $rc"; exit 1; }
    # the partition window, from the events
    "$FAULTLINE" trace "$run" --events --json >"$work/events.json"
    python3 - "$work/events.json" <<'PY' || fail=1
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
part = [e for e in ev if e['kind'] == 'partition']
assert part and part[0]['end_ns'] is not None, 'no closed partition window: %r' % ev
p = part[0]
assert 9.5e9 < p['t_ns'] < 11e9 and 19.5e9 < p['end_ns'] < 21.5e9, 'window %r' % p
print('real-run: partition window %.2f s .. %.2f s' % (p['t_ns'] / 1e9, p['end_ns'] / 1e9))
PY
    # every frame dropped for the partition involves n3 and was sent in the window
    "$FAULTLINE" trace "$run" --reason partition --json >"$work/drops.json"
    python3 - "$work/drops.json" "$work/events.json" <<'PY' || fail=1
import json, sys
drops = [json.loads(l) for l in open(sys.argv[1])]
p = [json.loads(l) for l in open(sys.argv[2]) if '"partition"' in l][0]
assert drops, 'the partition dropped nothing (n1 pings n3 at 15 s)'
for d in drops:
    assert 'n3' in (d['from'], d['to']), 'partition drop between %s and %s' % (d['from'], d['to'])
    assert p['t_ns'] <= d['sent_ns'] < p['end_ns'], 'partition drop outside the window: %r' % d
print('real-run: %d frames dropped by the partition, all to/from n3 inside the window' % len(drops))
PY
    # n1 -> n2 kept working during the partition (the check pings n2 at 15 s)
    n=$("$FAULTLINE" trace "$run" --from n1 --to n2 --fate delivered --since 10s --until 20s --json | wc -l)
    [ "$n" -gt 0 ] || bad "no n1->n2 frames delivered during the partition"
    # the dropped pings in a pcap tshark reads
    "$FAULTLINE" trace "$run" --from n1 --to n3 --reason partition --pcap "$work/drops.pcap" 2>"$work/pcap.err"
    req=$(tshark -r "$work/drops.pcap" -Y 'icmp.type == 8' 2>/dev/null | wc -l)
    [ "$req" -gt 0 ] || { cat "$work/pcap.err" >&2; bad "no ICMP echo request among the dropped n1->n3 frames"; }
    echo "real-run: $req dropped echo requests n1->n3 in the merged pcap"
    want=("frames dropped" 'partition')
    ;;
crash)
    rc=0
    "$FAULTLINE" run tests/integration/trace/crash-lost.yaml -o "$run" --plain -q >"$work/run.log" 2>&1 || rc=$?
    [ "$rc" = 0 ] || { cat "$work/run.log" >&2; bad "faultline run crash-lost.yaml exited $rc"; exit 1; }
    "$FAULTLINE" trace "$run" --lost --json >"$work/lost.json"
    python3 - "$work/lost.json" <<'PY' || fail=1
import json, sys
lost = [json.loads(l) for l in open(sys.argv[1])]
assert lost, 'no write lost at the crash (dd oflag=direct wrote 64 KiB unflushed)'
for w in lost:
    assert w['node'] == 'n1' and w['disk'] == 'data' and w['policy'] == 'lose-unflushed', w
    assert w['outcome'] in ('lost', 'torn') and w['write_ns'] < w['crash_ns'], w
big = sum(w['length'] for w in lost if w['write_ns'] > 1.5e9)
assert big >= 65536, 'the 64 KiB of O_DIRECT writes are not all among the lost: %d bytes' % big
print('real-run: %d writes lost at the crash (%d bytes after 1.5 s)' % (len(lost), big))
PY
    # n2 kept pinging n1: frames to the crashed n1 were dropped (port down)
    n=$("$FAULTLINE" trace "$run" --to n1 --fate dropped --json | wc -l)
    [ "$n" -gt 0 ] || bad "no frame to n1 dropped while it was down"
    want=('unflushed writes lost' 'id="crash-table"')
    ;;
*)
    echo "usage: real-run.sh quickstart|crash" >&2
    exit 2
    ;;
esac

# the report the runner wrote, rendered in a browser
test -s "$run/report.html" || bad "the runner wrote no report.html"
browser=$(command -v chromium || true)
if [ -n "$browser" ]; then
    timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$work/profile" --virtual-time-budget=5000 \
        --dump-dom "file://$run/report.html" >"$work/dom.html" 2>/dev/null || bad "chromium failed"
    grep -q '<body data-rendered="ok"' "$work/dom.html" || bad "report script did not finish cleanly"
    for w in "${want[@]}"; do
        grep -q -- "$w" "$work/dom.html" || bad "report lacks '$w'"
    done
fi
[ "$fail" = 0 ] && echo "real-run: $case_ ok"
exit "$fail"
