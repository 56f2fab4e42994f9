#!/usr/bin/env bash
# SIGINT while the guest image is being built (before the run's event loop
# starts): the build stops at once, its subprocess included, the run exits
# 130 marked interrupted, and the image cache gains nothing.  A file with
# fresh contents gives the scenario an image nobody built yet; the Debian
# packages come from the cache the hv_image fixture filled.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

mkdir -p "$TMP/scen"
head -c 32 /dev/urandom | od -An -tx1 >"$TMP/scen/unique.txt"
cat >"$TMP/scen/build.yaml" <<'EOF'
run:
  name: sigint-build
  duration: 5s
image:
  files:
    - ./unique.txt:/etc/unique.txt
nodes:
  n1: {}
EOF
images_before=$("$FAULTLINE" image ls --json | wc -l)

run="$TMP/run"
"$FAULTLINE" run --plain --out "$run" "$TMP/scen/build.yaml" >"$TMP/out.txt" 2>&1 &
pid=$!
# Wait for one of the build's subprocesses (apt-cache, dpkg-deb): the
# signal then lands while the runner waits on it.
children=""
for _ in $(seq 1 400); do
    children=$(pgrep -P "$pid" || true)
    [ -n "$children" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$TMP/out.txt"; fail "the run ended before its image build ran a subprocess"; }
    sleep 0.05
done
[ -n "$children" ] || fail "no subprocess of the image build seen"
for c in $children; do
    echo "build subprocess $c: $(tr '\0' ' ' </proc/$c/cmdline 2>/dev/null || echo '(already gone)')"
done
t0=$(date +%s%N)
kill -INT "$pid"
set +e
wait "$pid"
code=$?
set -e
t1=$(date +%s%N)
cat "$TMP/out.txt"
[ "$code" = 130 ] || fail "exit code $code after SIGINT during the image build, expected 130"
ms=$(((t1 - t0) / 1000000))
[ "$ms" -lt 3000 ] || fail "the run took $ms ms to stop after SIGINT during the image build"
for c in $children; do
    ! kill -0 "$c" 2>/dev/null || fail "build subprocess $c ($(cat /proc/$c/cmdline | tr '\0' ' ')) survived"
done
grep -q '"verdict": "interrupted"' "$run/summary.json" || fail "summary.json not marked interrupted"
! grep -q '\] error ' "$run/events.log" || fail "the interrupted build was logged as an error"
images_after=$("$FAULTLINE" image ls --json | wc -l)
[ "$images_after" = "$images_before" ] || fail "the image cache changed ($images_before -> $images_after entries)"
no_qemu_left "$run"
ok "SIGINT during the image build: exit 130 after $ms ms, subprocesses ($children) gone, cache unchanged"
