#!/usr/bin/env bash
# The host file system fills up under a guest's disk (issue 14, item 1):
# the run exits 3 naming the disk and the backing file, and run.db holds
# the host error (host_errors and an error event) when it could be written.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
tmpfs_or_skip 40m
mnt=$TMPFS

run=$mnt/run
set +e
"$FAULTLINE" run --plain --out "$run" "$here/host-disk-full.yaml" >"$TMP/stdout" 2>"$TMP/stderr"
code=$?
set -e
no_qemu_left "$run"
[ "$code" = 3 ] || fail "exit $code when the host file system under a disk filled, want 3: $(cat "$TMP/stdout" "$TMP/stderr")"
grep -q "the host failed under disk big of n1: .* $run/disks/n1-big.img: No space left on device" \
    "$TMP/stdout" || fail "the host error does not name the disk and its file: $(cat "$TMP/stdout")"
ok "a full host file system under a disk: exit 3, $(grep -o 'the host failed under.*' "$TMP/stdout" | head -1)"

# What run.db holds is parsed, not grepped: the host error is a row (with
# its disk and errno) and an error event, unless run.db itself could not
# be written (then the run also says so).
python3 - "$run" "$TMP/stdout" <<'PY'
import os, sqlite3, sys
run, stdout = sys.argv[1:]
out = open(stdout, encoding="utf-8").read()
if "run.db: No space left" in out:
    print("ok: run.db could not be written either, and the run says so")
    sys.exit(0)
db = sqlite3.connect(f"file:{run}/run.db?mode=ro", uri=True)
rows = db.execute("SELECT h.what, h.name, h.errname, h.path, d.name FROM host_errors h "
                  "LEFT JOIN disks d ON d.id = h.disk_id").fetchall()
assert len(rows) == 1, rows
what, name, errname, path, disk = rows[0]
assert (what, name, errname, disk) == ("disk", "big", "ENOSPC", "big"), rows[0]
assert path.endswith("/disks/n1-big.img"), path
ev = db.execute("SELECT count(*) FROM events WHERE kind = 'error' AND detail LIKE "
                "'host error on disk big%'").fetchone()[0]
assert ev == 1, ev
print("ok: run.db holds the host error:", rows[0])
PY
