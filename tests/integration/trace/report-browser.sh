#!/usr/bin/env bash
# report.html in a real browser: builds the synthetic run (3 nodes, a
# partition, a crash with lost writes), renders its report in headless
# Chromium to a PNG and a DOM dump, and checks that the script ran without
# an exception (body data-rendered="ok", set only at the end of a clean
# render) and that every section is there.
#   report-browser.sh TRACE_SYNTH [KEEP_DIR]
# Two runs: 200 rounds of frames (aggregated diagram) and 20 (frame by
# frame).  With KEEP_DIR the runs (report.html, shot.png, dom.html) are
# kept there.
set -euo pipefail
synth=$1
keep=${2:-}
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
    echo "report-browser: SKIP: chromium is not installed (deps/trace.txt lists it; run scripts/install-deps)" >&2
    exit 77
fi
work=$(mktemp -d /tmp/fl-trace-browser.XXXXXX)
cleanup() {
    [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
    if [ -n "$keep" ]; then mkdir -p "$keep" && cp -r "$work"/large "$work"/small "$keep"/ 2>/dev/null; fi
    rm -rf "$work"
}
trap cleanup EXIT
render_and_check() { # NAME STEPS PARTITION_DROPS
run=$work/$1
"$synth" "$run" "$2" >/dev/null

# Use `faultline report` when the binary is built (it must agree with
# trace_report_write, which trace-synth already used).
if [ -n "${FAULTLINE:-}" ] && [ -x "$FAULTLINE" ]; then
    rm "$run/report.html"
    "$FAULTLINE" report "$run" >/dev/null
fi
test -s "$run/report.html"

flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
       --disable-background-networking --disable-component-update --disable-sync
       --hide-scrollbars --user-data-dir="$work/profile-$1" --virtual-time-budget=5000)
# Chromium runs in its own process group; remember it to clean up.
timeout 120 "$browser" "${flags[@]}" --window-size=1300,2600 --screenshot="$run/shot.png" \
    "file://$run/report.html" >"$work/shot.log" 2>&1 &
pid=$!
wait "$pid" || { echo "report-browser: chromium --screenshot failed:" >&2; tail -5 "$work/shot.log" >&2; exit 1; }
pid=
timeout 120 "$browser" "${flags[@]}" --dump-dom "file://$run/report.html" >"$run/dom.html" 2>"$work/dom.log" &
pid=$!
wait "$pid" || { echo "report-browser: chromium --dump-dom failed:" >&2; tail -5 "$work/dom.log" >&2; exit 1; }
pid=

check() { # check DESCRIPTION PATTERN
    if ! grep -q -- "$2" "$run/dom.html"; then
        echo "report-browser: FAIL: $1 (no '$2' in the rendered DOM)" >&2
        fail=1
    fi
}
if grep -q 'id="render-error"' "$run/dom.html"; then
    echo "report-browser: FAIL: the page reported a script error:" >&2
    grep -o 'id="render-error"[^<]*' "$run/dom.html" >&2
    fail=1
fi
check "script ran to the end without exceptions" '<body data-rendered="ok"'
check "verdict badge" 'id="verdict"'
check "verdict is fail" '>fail</span>'
check "what-happened summary" 'id="summary"'
check "partition explained" "$3 frames dropped"
check "crash explained" '8 unflushed writes lost'
check "checks table" 'id="checks"'
check "timeline" 'id="timeline"'
check "space-time diagram" 'id="spacetime"'
check "link chart" 'id="link-chart"'
check "link table" 'id="link-table"'
check "disk chart" 'class="disk-chart"'
check "crash table" 'id="crash-table"'
check "events table" 'id="events"'
check "link parameters since boot" 'from boot: delay=1ms jitter=1ms'
check "link parameters changed later" 'at 8.000 s: delay=11ms jitter=1ms'
if grep -q -- '-0\.0* s' "$run/dom.html"; then
    echo "report-browser: FAIL: a time just before zero is shown as -0.000 s" >&2
    fail=1
fi
# PNG: a real image of a real size, not blank
python3 - "$run/shot.png" <<'PY' || fail=1
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
w, h = struct.unpack('>II', data[16:24])
assert (w, h) == (1300, 2600), f'unexpected size {w}x{h}'
# a rendered report has many distinct colours; a blank page has one
idat = b''.join(data[i + 8:i + 8 + struct.unpack('>I', data[i:i + 4])[0]]
                for i in range(8, len(data)) if data[i + 4:i + 8] == b'IDAT')
raw = zlib.decompress(idat)
assert len(set(raw[::97])) > 40, 'the screenshot looks blank'
print(f'report-browser: screenshot {w}x{h}, {len(data)} bytes')
PY
}

fail=0
# many frames: the space-time diagram aggregates per link and time slice
render_and_check large 200 200
# few frames: one arrow per frame
render_and_check small 20 20
grep -q 'too many frames\|Too many frames' "$work/large/dom.html" ||
    { echo "report-browser: FAIL: large run not drawn aggregated" >&2; fail=1; }
grep -q 'Every frame copy' "$work/small/dom.html" ||
    { echo "report-browser: FAIL: small run not drawn frame by frame" >&2; fail=1; }
if [ "$fail" = 0 ]; then
    echo "report-browser: ok"
fi
exit "$fail"
