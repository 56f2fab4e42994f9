#!/usr/bin/env bash
# Conformance of `faultline disk serve` with real NBD clients: nbdinfo,
# nbdsh (libnbd), qemu-img info/convert/compare and fio --ioengine=nbd,
# plus a power cut (SIGUSR1) with lose-unflushed and an injected error,
# both seen through real clients.
set -euo pipefail
FAULTLINE=${FAULTLINE:-build/cli/faultline}
for tool in nbdinfo nbdsh qemu-img fio; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed (scripts/install-deps installs deps/blkback.txt)"; exit 77; }
done
[ -x "$FAULTLINE" ] || { echo "FAIL: faultline binary not found at $FAULTLINE"; exit 1; }

# nbdsh is a Python script; run it with Debian's python3 (which has the
# nbd module) even when another python3 comes first in PATH.
nbdsh() { /usr/bin/python3 -m nbd "$@"; }

dir=$(mktemp -d /tmp/fl-blkback-conf.XXXXXX)
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill "$pid"; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$dir/serve.log" ] && sed 's/^/  serve: /' "$dir/serve.log"; exit 1; }

sock=$dir/d.sock
uri="nbd+unix:///vda?socket=$sock"

# the command line: help, and bad values named with what would be valid
"$FAULTLINE" disk serve --help | grep -q -- '--crash-policy' || fail "disk serve --help"
expect_usage() {
    local want=$1; shift
    set +e
    out=$("$FAULTLINE" disk serve "$dir/x.img" --socket "$sock" "$@" 2>&1)
    rc=$?
    set -e
    [ "$rc" = 2 ] || fail "disk serve $* exited $rc, expected 2: $out"
    echo "$out" | grep -q -- "$want" || fail "disk serve $*: message lacks '$want': $out"
}
expect_usage "lose-unflushed" --size 1M --crash-policy lose-some
expect_usage "not a duration" --size 1M --latency 10parsec
expect_usage "OP one of read" --size 1M --error 'wrte:EIO:1%'
expect_usage "no size was given"
[ ! -e "$dir/x.img" ] || fail "a failed start left $dir/x.img behind"
echo "ok command line"
start() {
    "$FAULTLINE" disk serve "$dir/disk.img" --socket "$sock" --export vda "$@" >"$dir/serve.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do [ -S "$sock" ] && return 0; sleep 0.05; done
    fail "server did not create $sock"
}
stop() {
    kill -TERM "$pid"; wait "$pid" || fail "server exited with $? on SIGTERM"; pid=
}

start --size 64M --crash-policy lose-unflushed --no-sync

# nbdinfo: size and the flags QEMU needs to pass guest flushes through
info=$(nbdinfo --json "$uri")
echo "$info" | grep -q '"export-size": 67108864' || fail "nbdinfo size: $info"
for f in can_flush can_fua can_trim can_zero can_multi_conn; do
    echo "$info" | grep -q "\"$f\": true" || fail "nbdinfo: $f not true"
done
nbdinfo --list "nbd+unix:///?socket=$sock" | grep -q 'export="vda"' || fail "nbdinfo --list"
echo "ok nbdinfo"

# qemu-img
qemu-img info "$uri" | grep -q 'virtual size: 64 MiB' || fail "qemu-img info"
head -c 24M /dev/urandom >"$dir/src.raw"
truncate -s 64M "$dir/src.raw"
qemu-img convert -n -f raw -O raw "$dir/src.raw" "$uri" || fail "qemu-img convert"
qemu-img compare -f raw -F raw "$dir/src.raw" "$uri" >/dev/null || fail "qemu-img compare"
echo "ok qemu-img info/convert/compare"

# fio through libnbd, with verification, random reads and writes at depth 16
fio --name=conf --ioengine=nbd --uri="$uri" --rw=randrw --bs=4k --iodepth=16 --size=16M \
    --offset=32M --verify=crc32c --do_verify=1 --output="$dir/fio.txt" >/dev/null ||
    fail "fio: $(cat "$dir/fio.txt")"
grep -q 'err= 0' "$dir/fio.txt" || fail "fio reported errors: $(cat "$dir/fio.txt")"
echo "ok fio --ioengine=nbd"

# power cut: a flushed write survives, an unflushed one is lost
nbdsh -u "$uri" -c '
h.pwrite(b"F" * 4096, 0)
h.flush()
open("'"$dir"'/before", "wb").write(h.pread(4096, 8192))
h.pwrite(b"U" * 4096, 8192)
assert h.pread(4096, 8192) == b"U" * 4096
'
kill -USR1 "$pid"
sleep 0.3
nbdsh -u "$uri" -c '
assert h.pread(4096, 0) == b"F" * 4096, "flushed write lost"
assert h.pread(4096, 8192) == open("'"$dir"'/before", "rb").read(), "unflushed write survived"
' || fail "crash semantics"
grep -q 'power cut (lose-unflushed): 0 unflushed writes kept, 1 lost' "$dir/serve.log" ||
    fail "crash report: $(cat "$dir/serve.log")"
echo "ok power cut (lose-unflushed)"
stop

# injected errors are seen by real clients
start --error 'write:EIO:100%:1M-2M' --no-sync
nbdsh -u "$uri" -c '
h.pwrite(b"a" * 512, 0)
try:
    h.pwrite(b"b" * 512, 1024 * 1024)
    raise SystemExit("write in the error range succeeded")
except nbd.Error as e:
    assert e.errno == "EIO", e.errno
'
qemu-img convert -n -f raw -O raw "$dir/src.raw" "$uri" 2>/dev/null && fail "qemu-img convert succeeded despite EIO"
echo "ok injected EIO"
stop

# latency, corruption and a full disk through the impair grammar and flags
rm -f "$dir/disk.img"
start --size 8M --faults 'read delay 50ms corrupt 100%' --capacity 1M --no-sync
nbdsh -u "$uri" -c '
import time
h.pwrite(b"\x00" * 4096, 0)
t = time.monotonic()
d = h.pread(4096, 0)
assert time.monotonic() - t >= 0.05, "read latency not applied"
assert sum(bin(b).count("1") for b in d) == 1, "expected exactly one flipped bit"
try:
    h.pwrite(b"x" * (2 << 20), 4 << 20)
    raise SystemExit("2 MiB of new data fit under a 1 MiB capacity")
except nbd.Error as e:
    assert e.errno == "ENOSPC", e.errno
'
echo "ok latency, corruption, capacity"
stop

# copy-on-write over a read-only base: the base never changes
head -c 1M /dev/urandom >"$dir/base.img"
chmod 0444 "$dir/base.img"
sum_before=$(md5sum <"$dir/base.img")
rm -f "$dir/disk.img"
start --base "$dir/base.img" --no-sync
nbdsh -u "$uri" -c '
base = open("'"$dir"'/base.img", "rb").read()
assert h.get_size() == len(base)
assert h.pread(65536, 0) == base[:65536], "overlay does not show the base"
h.pwrite(b"W" * 100, 5000)
h.flush()
d = h.pread(8192, 4096)
assert d[904:1004] == b"W" * 100 and d[:904] == base[4096:5000], "copy-up lost base data"
'
[ "$(md5sum <"$dir/base.img")" = "$sum_before" ] || fail "the base image changed"
[ -s "$dir/disk.img.cowmap" ] || fail "no copy-on-write map after a flush"
echo "ok copy-on-write base"
stop
echo "PASS"
