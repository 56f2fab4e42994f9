#!/usr/bin/env bash
# faultline run --repeat with real guests (issue 18, "Repeating"): three
# runs, three run directories, three seeds; each run's verdict is the one
# its seed decides (repeat.yaml: the nemesis draws a pause, kept state, or
# a reboot, lost state; `validate --dump --seed` tells which); the index
# parses and links every report; the exit status follows the rule in
# docs/cli.md; every failure's rerun command is printed; SIGINT during the
# second of three runs keeps the first, ends the second as interrupted,
# starts no third, and exits 130.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
scen=$here/repeat.yaml

# What a seed's run must end with, from the scenario alone.
expected() {
    "$FAULTLINE" validate --dump --seed "$1" "$scen" | python3 -c '
import json, sys
kinds = [e["kind"] for e in json.load(sys.stdin)["events"]]
assert ("reboot" in kinds) != ("pause" in kinds), kinds
print("fail" if "reboot" in kinds else "pass")'
}

# Checks DIR's index against each seed's expected verdict; prints the
# verdicts seen, one per line.
check_index() {
    local dir=$1 n=$2
    python3 - "$dir" "$n" <<'PY'
import json, os, sys
from html.parser import HTMLParser
d, n = sys.argv[1], int(sys.argv[2])
j = json.load(open(d + "/index.json"))
runs = j["runs"]
assert len(runs) == n, [r["dir"] for r in runs]
seeds = [r["seed"] for r in runs]
assert len(set(seeds)) == n, seeds
dirs = sorted(e for e in os.listdir(d) if os.path.isdir(os.path.join(d, e)))
assert dirs == [r["dir"] for r in runs], (dirs, runs)
class P(HTMLParser):
    hrefs = []
    def handle_starttag(self, tag, attrs):
        self.hrefs += [v for k, v in attrs if k == "href"]
p = P(); p.feed(open(d + "/index.html").read()); p.close()
for r in runs:
    s = json.load(open(os.path.join(d, r["dir"], "summary.json")))
    assert s["seed"] == r["seed"] and s["verdict"] == r["verdict"], (s, r)
    if r["verdict"] in ("pass", "fail"):
        assert r["dir"] + "/report.html" in p.hrefs, (r["dir"], p.hrefs)
        assert os.path.exists(os.path.join(d, r["dir"], "report.html"))
    print(r["seed"], r["verdict"], ",".join(r["failed_checks"]))
PY
}

run_set() { # out-dir args...: runs a set, sets $code
    local out=$1
    shift
    set +e
    "$FAULTLINE" run --plain -o "$out" "$@" "$scen" >"$out.txt" 2>&1
    code=$?
    set -e
    no_qemu_left "$out"
}

# 1. --repeat 3: drawn seeds.
run_set "$TMP/rep" --repeat 3
check_index "$TMP/rep" 3 >"$TMP/rep.verdicts" || { cat "$TMP/rep.txt"; fail "the index of --repeat 3"; }
want=0
saw_pass=false saw_fail=false
while read -r seed verdict failed; do
    exp=$(expected "$seed")
    [ "$verdict" = "$exp" ] || { cat "$TMP/rep.txt"; fail "seed $seed: verdict $verdict, its nemesis says $exp"; }
    if [ "$verdict" = fail ]; then
        want=1 saw_fail=true
        [ "$failed" = n1-kept-its-state ] || fail "seed $seed: failed checks '$failed'"
        grep -qF "faultline run $scen --seed $seed" "$TMP/rep.txt" ||
            fail "seed $seed failed and its rerun command was not printed"
    else
        saw_pass=true
    fi
done <"$TMP/rep.verdicts"
[ "$code" = "$want" ] || { cat "$TMP/rep.txt"; fail "--repeat 3 exited $code, want $want: $(cat "$TMP/rep.verdicts")"; }
ok "--repeat 3: $(tr '\n' ' ' <"$TMP/rep.verdicts")-> exit $code"

# 2. The verdict the drawn seeds did not show, by a seed that decides it
# (seed 1 draws a pause, seed 4 a reboot), with --json.
more=""
$saw_pass || more=1
$saw_fail || more=${more:+$more,}4
if [ -n "$more" ]; then
    set +e
    "$FAULTLINE" run --plain --json -o "$TMP/more" --seeds "$more" "$scen" >"$TMP/more.json" 2>"$TMP/more.txt"
    code=$?
    set -e
    no_qemu_left "$TMP/more"
    cmp -s "$TMP/more.json" "$TMP/more/index.json" || fail "--json's stdout is not index.json"
    check_index "$TMP/more" "$(echo "$more" | tr ',' '\n' | wc -l)" >"$TMP/more.verdicts"
    while read -r seed verdict failed; do
        [ "$verdict" = "$(expected "$seed")" ] || fail "seed $seed: verdict $verdict"
    done <"$TMP/more.verdicts"
    case $more in *4*) want=1 ;; *) want=0 ;; esac
    [ "$code" = "$want" ] || { cat "$TMP/more.txt"; fail "--seeds $more exited $code, want $want"; }
    ok "--seeds $more --json: $(tr '\n' ' ' <"$TMP/more.verdicts")-> exit $code"
fi

# 3. SIGINT during the second of three runs.
"$FAULTLINE" run --plain -o "$TMP/int" --seeds 1,2,3 "$scen" >"$TMP/int.txt" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
    grep -q '\] start ' "$TMP/int/02-seed-2/events.log" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { cat "$TMP/int.txt"; fail "the repeat ended before its second run started"; }
    sleep 0.5
done
grep -q '\] start ' "$TMP/int/02-seed-2/events.log" || fail "the second run never reached time zero"
kill -INT "$pid"
set +e
wait "$pid"
code=$?
set -e
no_qemu_left "$TMP/int"
[ "$code" = 130 ] || { cat "$TMP/int.txt"; fail "SIGINT during a repeat: exit $code, want 130"; }
[ ! -e "$TMP/int/03-seed-3" ] || fail "a run started after SIGINT"
check_index "$TMP/int" 2 >"$TMP/int.verdicts"
[ "$(cat "$TMP/int.verdicts")" = "1 pass 
2 interrupted " ] || fail "after SIGINT the index says: $(cat "$TMP/int.verdicts")"
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["verdict"]=="interrupted"' "$TMP/int/index.json"
ok "SIGINT in the second of three runs: the first kept, the second interrupted, no third, exit 130"
