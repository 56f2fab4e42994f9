#!/usr/bin/env bash
# Record and replay end to end (docs/record-replay.md): a recorded run of
# record.yaml, then `faultline replay RUN --verify` must find every segment
# of every node identical; a corrupted log must make it fail naming the
# node and the segment.  What cannot be recorded is refused up front.
here=$(cd "$(dirname "$0")" && pwd)
# TMP, cleanup (no QEMU of this test survives it), fail, ok, no_qemu_left
. "$here/../runner/lib.sh"
expect_code() { # expected-code output-file command...
    local want=$1 out=$2 code=0
    shift 2
    "$@" >"$out" 2>&1 || code=$?
    [ "$code" = "$want" ] || { cat "$out"; fail "'$*' exited $code, not $want"; }
}
command -v zstd >/dev/null || { echo "zstd is not installed (deps/hv.txt)"; exit 77; }

# ---- refused before anything boots ----
expect_code 2 "$TMP/r1.txt" "$FAULTLINE" run --plain --record=n9 --out "$TMP/r1" "$here/record.yaml"
grep -q "has no node 'n9' (nodes: n1, n2)" "$TMP/r1.txt" || { cat "$TMP/r1.txt"; fail "--record=n9 not named"; }
expect_code 2 "$TMP/r2.txt" "$FAULTLINE" run --plain --record --out "$TMP/r2" "$here/refuse-vcpus.yaml"
grep -q "refuse-vcpus.yaml:6:3: node n1: vcpus: 2: a recorded node needs exactly 1 vCPU" "$TMP/r2.txt" || { cat "$TMP/r2.txt"; fail "2 vCPUs not refused"; }
expect_code 2 "$TMP/r3.txt" "$FAULTLINE" run --plain --record --accel kvm --out "$TMP/r3" "$here/record.yaml"
grep -q "needs TCG" "$TMP/r3.txt" || { cat "$TMP/r3.txt"; fail "KVM not refused"; }
expect_code 2 "$TMP/r4.txt" "$FAULTLINE" run --plain --record --out "$TMP/r4" "$here/refuse-reboot.yaml"
grep -q "refuse-reboot.yaml:9:5: timeline\[0\]: reboot of n1: a recorded node cannot be reset" "$TMP/r4.txt" ||
    { cat "$TMP/r4.txt"; fail "a reboot of a recorded node was not refused"; }
for cmd in validate run; do
    expect_code 2 "$TMP/r5.txt" "$FAULTLINE" $cmd "$here/refuse-record-vcpus.yaml"
    grep -q "refuse-record-vcpus.yaml:8:3: node n1: vcpus: 2: a recorded node needs exactly 1 vCPU .*; it is recorded by run.record at .*refuse-record-vcpus.yaml:6:11" "$TMP/r5.txt" ||
        { cat "$TMP/r5.txt"; fail "faultline $cmd: run.record of a 2-vCPU node not refused at its place"; }
    ! grep -q "node n2" "$TMP/r5.txt" || { cat "$TMP/r5.txt"; fail "n2 is not recorded, yet refused"; }
done
ok "what cannot be recorded is refused, naming the node and the reason (run.record: by faultline validate)"

# ---- the recorded run (run.record: true) ----
run="$TMP/run"
expect_code 1 "$TMP/run.txt" "$FAULTLINE" run --plain --out "$run" "$here/record.yaml"
no_qemu_left "$run"
grep -q "^e2e-record: fail (2 of 3 checks passed)" "$TMP/run.txt" || { cat "$TMP/run.txt"; fail "not exactly the deliberate check failed"; }
grep -q "^ *replay n2: faultline replay $run n2 --segment 1\$" "$TMP/run.txt" ||
    { cat "$TMP/run.txt"; fail "the summary did not give the failed check's replay command"; }
grep -q "replay n2: faultline replay $run n2 --segment 0" "$TMP/run.txt" && fail "the passed check got a replay command"
python3 - "$run/run.db" <<'PY' || fail "run.db has not the 3 segments"
import sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute(
    "SELECT n.name, s.segment, s.ended, s.icount > 100000000, s.end_ns > s.start_ns"
    " FROM rr_segments s JOIN nodes n ON n.id = s.node_id ORDER BY 1, 2").fetchall()
assert rows == [("n1", 0, "quit", 1, 1), ("n2", 0, "quit", 1, 1), ("n2", 1, "quit", 1, 1)], rows
PY
grep -q '"rr_segments":\[\[' "$run/report.html" || fail "report.html has no segments"
ok "the summary gives 'faultline replay RUN n2 --segment 1' for the check that failed after the restart; run.db and report.html have the segments"
for seg in n1/0 n2/0 n2/1; do
    for f in segment.json replay.log.zst console.log agent.log; do
        [ -s "$run/rr/$seg/$f" ] || fail "rr/$seg/$f is missing or empty"
    done
done
[ -s "$run/rr/n1/0/disk-0.img" ] || fail "n1's disk at segment start was not kept"
[ ! -e "$run/rr/n2/2" ] || fail "n2 has a third segment"
python3 - "$run/rr" <<'PY'
import json, sys
for seg in ("n1/0", "n2/0", "n2/1"):
    m = json.load(open(f"{sys.argv[1]}/{seg}/segment.json"))
    assert m["end"] == "quit", (seg, m["end"])
    assert isinstance(m["icount"], int) and m["icount"] > 10**8, (seg, m["icount"])
    assert m["log"] == "replay.log.zst", (seg, m["log"])
    assert "rr=record" in " ".join(m["record_argv"]), seg
    assert "rr=replay" in " ".join(m["replay_argv"]), seg
    assert m["qemu"]["version"] and m["image_key"], seg
PY
ok "3 segments recorded (n2 crashed and restarted), each ended cleanly with its instruction count"

# ---- every segment replays identically ----
expect_code 0 "$TMP/verify.txt" "$FAULTLINE" replay "$run" --verify
cat "$TMP/verify.txt"
[ "$(grep -c ': identical' "$TMP/verify.txt")" = 3 ] || fail "not 3 identical segments"
ok "faultline replay --verify: 3 segments identical"

# ---- a single segment prints its console as it was ----
# ... from a copy of rr/ alone: the recording does not depend on the run
# directory (nor on netback, blkback or the other node)
mkdir "$TMP/moved"
cp -r "$run/rr" "$TMP/moved/rr"
"$FAULTLINE" replay "$TMP/moved" n2 --segment 1 >"$TMP/one.txt" 2>"$TMP/one.err" ||
    { cat "$TMP/one.err"; fail "faultline replay RUN n2 --segment 1 failed"; }
grep -q "n2 segment 1: stopped at instruction $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["icount"])' "$run/rr/n2/1/segment.json")\$" "$TMP/one.err" ||
    { cat "$TMP/one.err"; fail "the replay did not stop at the recorded instruction count"; }
cmp "$TMP/one.txt" "$run/rr/n2/1/console.log" || fail "the replayed console of n2 segment 1 differs"
ok "faultline replay COPY n2 --segment 1, from a copy of rr/ alone, prints the recorded console"

# ---- a bundle of n2, replayed later from a fresh directory ----
mkdir "$TMP/fresh"
"$FAULTLINE" bundle "$run" n2 -o "$TMP/fresh/n2.tar.zst" >"$TMP/bundle.txt" 2>&1 ||
    { cat "$TMP/bundle.txt"; fail "faultline bundle RUN n2 failed"; }
cat "$TMP/bundle.txt"
expect_code 2 "$TMP/b-n1.txt" "$FAULTLINE" replay "$TMP/fresh/n2.tar.zst" n1
grep -q "node 'n1' is not in the bundle $TMP/fresh/n2.tar.zst (it holds: n2)" "$TMP/b-n1.txt" ||
    { cat "$TMP/b-n1.txt"; fail "a node not in the bundle was not named"; }
head -c 100000 "$TMP/fresh/n2.tar.zst" >"$TMP/truncated.tar.zst"
expect_code 2 "$TMP/b-trunc.txt" "$FAULTLINE" replay "$TMP/truncated.tar.zst" --verify
grep -q "'$TMP/truncated.tar.zst' is not a faultline bundle, or it is damaged or truncated" "$TMP/b-trunc.txt" ||
    { cat "$TMP/b-trunc.txt"; fail "a truncated bundle was not refused, named"; }
ok "faultline bundle RUN n2: $(cut -d' ' -f2- "$TMP/bundle.txt"); a node not in it and a truncated one refused"

# ---- stopped at an instruction, under gdb ----
if command -v gdb >/dev/null; then
    half=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["icount"] // 2)' "$run/rr/n2/1/segment.json")
    port=$((20000 + $$ % 20000))
    mkfifo "$TMP/stdin"
    "$FAULTLINE" replay "$run" n2 --segment 1 --until-icount "$half" --gdb="$port" -q \
        <"$TMP/stdin" >"$TMP/gdb-replay.txt" 2>&1 &
    replay_pid=$!
    exec 7>"$TMP/stdin"
    for _ in $(seq 1 180); do
        grep -q "paused at" "$TMP/gdb-replay.txt" && break
        kill -0 $replay_pid 2>/dev/null || break
        sleep 1
    done
    grep -q "n2 segment 1 paused at instruction $half; gdbstub on 127.0.0.1:$port" "$TMP/gdb-replay.txt" ||
        { cat "$TMP/gdb-replay.txt"; fail "the replay did not pause at instruction $half"; }
    timeout 60 gdb -nx -batch -ex "target remote 127.0.0.1:$port" -ex "info registers rip" \
        -ex detach >"$TMP/gdb.txt" 2>&1 || true
    exec 7>&-
    wait $replay_pid || fail "the --gdb replay exited $?"
    grep -qE '^rip +0x[0-9a-f]+' "$TMP/gdb.txt" || { cat "$TMP/gdb.txt"; fail "gdb read no rip"; }
    ok "--until-icount $half --gdb: paused there, gdb read $(grep -oE '^rip +0x[0-9a-f]+' "$TMP/gdb.txt" | tr -s ' ')"
fi

# ---- a corrupted log diverges, named ----
log="$run/rr/n2/0/replay.log.zst"
zstd -d -q -f -o "$TMP/raw.log" "$log"
size=$(stat -c %s "$TMP/raw.log")
head -c $((size * 6 / 10)) "$TMP/raw.log" | zstd -q -f -o "$log"
expect_code 1 "$TMP/bad.txt" "$FAULTLINE" replay "$run" --verify --stall 20 n2
cat "$TMP/bad.txt"
grep -q "^n2 segment 0: DIVERGED: " "$TMP/bad.txt" || fail "the corrupted segment was not named"
grep -q "^n2 segment 1: identical" "$TMP/bad.txt" || fail "the intact segment after it did not verify"
ok "a truncated log: --verify exits 1 naming n2 segment 0"

# ---- the bundle, with the run directory gone ----
# (made before the log above was corrupted; the replay must not need the
# run: rr/, the disks at segment start and the kernel and initrd are in it)
rm -rf "$run"
mkdir "$TMP/tmpdir"
(cd "$TMP/fresh" && TMPDIR="$TMP/tmpdir" "$FAULTLINE" replay n2.tar.zst --verify) >"$TMP/b-verify.txt" 2>&1 ||
    { cat "$TMP/b-verify.txt"; fail "faultline replay BUNDLE --verify failed with the run deleted"; }
cat "$TMP/b-verify.txt"
[ "$(grep -c '^n2 segment [01]: identical' "$TMP/b-verify.txt")" = 2 ] || fail "not 2 identical segments from the bundle"
[ "$(ls -A "$TMP/fresh")" = n2.tar.zst ] || fail "the replay left files in the fresh directory: $(ls -A "$TMP/fresh")"
[ -z "$(ls -A "$TMP/tmpdir")" ] || fail "the unpacked bundle was not removed: $(ls -A "$TMP/tmpdir")"
ok "faultline replay BUNDLE --verify, the run directory deleted: n2's 2 segments identical"
