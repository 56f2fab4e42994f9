#!/usr/bin/env bash
# `faultline run --repeat/--seeds/--json`, `faultline report DIR` and
# runs/latest, end to end through the command, without guests: the image
# cache is a path that cannot exist, so every run stops right after its
# claim with an infrastructure error (exit 3) and a summary.json.  What
# guests add (a pass and a fail by seed) is tests/integration/runner/repeat.sh.
set -euo pipefail
: "${FAULTLINE:?FAULTLINE must name the faultline binary (ctest sets it)}"
TMP=$(mktemp -d /tmp/fl-repeat-cli-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$TMP"
cat >s.yaml <<'YAML'
run: {name: rep, duration: 5s, seed: 1}
nodes:
  n1: {}
YAML
fl() { "$FAULTLINE" run --plain --cache /dev/null/no-cache "$@"; }
code() { set +e; "$@" >"$TMP/out" 2>"$TMP/err"; echo $?; set -e; }

# --repeat 3: three run directories in one, three fresh seeds (run.seed is
# not used), an index, runs/latest at the repeat, exit 3 (errors, no fail).
[ "$(code fl --repeat 3 s.yaml)" = 3 ] || fail "--repeat 3 of failing infrastructure: not exit 3: $(cat err)"
parent=runs/$(readlink runs/latest)
[ -d "$parent" ] || fail "runs/latest does not name the repeat: $(ls -l runs)"
python3 - "$parent" <<'PY'
import json, os, sys
from html.parser import HTMLParser
d = sys.argv[1]
j = json.load(open(d + "/index.json"))
runs = j["runs"]
assert len(runs) == 3, runs
seeds = [r["seed"] for r in runs]
assert len(set(seeds)) == 3 and 1 not in seeds, seeds
assert [r["dir"] for r in runs] == ["%02d-seed-%d" % (i + 1, s) for i, s in enumerate(seeds)]
assert sorted(e for e in os.listdir(d) if os.path.isdir(d + "/" + e)) == [r["dir"] for r in runs]
for r in runs:
    assert r["verdict"] == "error" and "image cache" in r["error"], r
    assert int(open(d + "/" + r["dir"] + "/seed").read()) == r["seed"]
    assert r["rerun"] == "faultline run s.yaml --seed %d" % r["seed"], r["rerun"]
assert j["verdict"] == "error" and j["counts"]["error"] == 3, j
class P(HTMLParser):
    rows = 0
    def handle_starttag(self, tag, attrs):
        self.rows += tag == "tr"
p = P(); p.feed(open(d + "/index.html").read()); p.close()
assert p.rows == 4, p.rows  # a header and three runs
PY
for s in $(python3 -c 'import json,sys; print(*[r["seed"] for r in json.load(open(sys.argv[1]))["runs"]])' "$parent/index.json"); do
    grep -q "faultline run s.yaml --seed $s" out || fail "seed $s's rerun command not printed: $(cat out)"
done
grep -q "3 runs: 0 passed, 0 failed, 3 infrastructure errors" out || fail "no table: $(cat out)"
echo "ok: --repeat 3: three run directories, three seeds, index.json, index.html, runs/latest, exit 3"

# --seeds with --json: stdout is index.json's content and nothing else;
# the human output went to stderr.
[ "$(code fl --seeds 0x10,4-5 --json -o "$TMP/set" s.yaml)" = 3 ] || fail "--seeds --json: $(cat err)"
cmp -s out "$TMP/set/index.json" || fail "--json's stdout is not index.json: $(head -c 300 out)"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert [r["seed"] for r in j["runs"]]==[16,4,5], j' out
grep -q "01-seed-16" err || fail "human output not on stderr"
[ "$(readlink runs/latest)" = "$(basename "$parent")" ] || fail "a repeat with -o moved runs/latest"
echo "ok: --seeds 0x10,4-5 --json: index.json on stdout, the rest on stderr, -o keeps runs/latest"

# --until-fail stops after the first run that does not pass.
[ "$(code fl --seeds 1-5 --until-fail -o "$TMP/uf" s.yaml)" = 3 ] || fail "--until-fail: $(cat err)"
n=$(find "$TMP/uf" -mindepth 1 -maxdepth 1 -type d | wc -l)
[ "$n" = 1 ] || fail "--until-fail ran $n runs after an error, not 1"
echo "ok: --until-fail stops after the first run that did not pass"

# One run with --json: summary.json's content on stdout; runs/latest.
[ "$(code fl --json s.yaml)" = 3 ] || fail "run --json: $(cat err)"
one=runs/$(readlink runs/latest)
cmp -s out "$one/summary.json" || fail "run --json's stdout is not summary.json"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["verdict"]=="error" and j["seed"]==1 and j["duration_ns"]>0, j' out
grep -q "run directory: $one" err || fail "run --json: the summary did not go to stderr: $(cat err)"
echo "ok: run --json prints summary.json on stdout; runs/latest names the run"

# With the live view (--live: as on a terminal) the view and the image
# progress go to stderr too: stdout stays one JSON document.
[ "$(code "$FAULTLINE" run --live --json --cache /dev/null/no-cache -o live s.yaml)" = 3 ] ||
    fail "run --live --json: $(cat err)"
cmp -s out live/summary.json || fail "run --live --json: stdout is not summary.json: $(head -c 80 out | od -c | head -3)"
echo "ok: run --live --json: stdout holds the JSON alone"

# --json when there is no summary: still one JSON object.
printf 'run: {name: bad}\nnodes: {n1: {vcpu: 2}}\n' >bad.yaml
[ "$(code fl --json bad.yaml)" = 2 ] || fail "an invalid scenario with --json: not exit 2"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["verdict"]=="invalid" and "vcpu" in j["error"], j' out
grep -q "bad.yaml:2:" err || fail "the scenario error is not on stderr: $(cat err)"
[ "$(code fl --json --repeat 2 bad.yaml)" = 2 ] || fail "an invalid scenario with --repeat: not exit 2"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["verdict"]=="invalid", j' out
echo "ok: --json with an invalid scenario: one object, exit 2"

# Usage errors name the option and exit 2 before anything runs.
before=$(ls runs | wc -l)
for args in "--repeat 0 s.yaml" "--repeat x s.yaml" "--repeat 2 --seeds 1,2 s.yaml" \
    "--repeat 2 --seed 3 s.yaml" "--until-fail s.yaml" "--seeds 3-1 s.yaml" "--seeds 1,1 s.yaml" \
    "--repeat 2 --replay-of $one"; do
    # shellcheck disable=SC2086
    [ "$(code fl $args)" = 2 ] || fail "'$args': not exit 2: $(cat err)"
    [ -s err ] || fail "'$args': no message"
done
[ "$(ls runs | wc -l)" = "$before" ] || fail "a usage error made a directory"
mkdir full && touch full/x
[ "$(code fl --repeat 2 -o full s.yaml)" = 2 ] || fail "-o not empty: not exit 2"
grep -q "not an empty directory" err || fail "-o not empty: $(cat err)"
echo "ok: usage errors exit 2 with a message, making nothing"

# faultline report DIR: the index of a directory of runs (runs/: the
# single runs; a repeat's directory is not a run directory itself).
"$FAULTLINE" report runs >"$TMP/out"
[ "$(cat out)" = "runs/index.html" ] || fail "report runs: printed $(cat out)"
python3 - <<'PY'
import json
j = json.load(open("runs/index.json"))
assert j["counts"]["total"] == 1 and j["runs"][0]["seed"] == 1, j
PY
rm -f "$parent/index.html" "$parent/index.json"
"$FAULTLINE" report "$parent" >/dev/null
python3 -c 'import json,sys; assert len(json.load(open(sys.argv[1]))["runs"])==3' "$parent/index.json"
mkdir empty
[ "$(code "$FAULTLINE" report empty)" = 2 ] || fail "report of an empty directory: not exit 2"
grep -q "holds no run directories" err || fail "report empty: $(cat err)"
echo "ok: faultline report DIR writes the index of a directory of runs"
