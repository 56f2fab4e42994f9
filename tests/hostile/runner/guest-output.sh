#!/usr/bin/env bash
# Hostile guest output (guest-output.yaml) reaches no terminal and breaks
# no artifact: stdout and events.log show controls escaped; junit.xml,
# summary.json and report.html parse (python3, xmllint).
here=$(cd "$(dirname "$0")" && pwd)
# TMP, cleanup of every process under it, fail, no_qemu_left.
. "$here/../../integration/runner/lib.sh"
command -v xmllint >/dev/null || fail "xmllint is missing (deps/runner.txt: libxml2-utils)"

run=$TMP/run
set +e
"$FAULTLINE" run --plain --out "$run" "$here/guest-output.yaml" >"$TMP/stdout" 2>"$TMP/stderr"
code=$?
set -e
[ "$code" = 1 ] || fail "exit $code, want 1 (checks failed): $(cat "$TMP/stdout" "$TMP/stderr")"
no_qemu_left "$run"

python3 - "$run" "$TMP/stdout" "$TMP/stderr" <<'PY'
import html.parser, json, re, sys
import xml.etree.ElementTree as ET

run, out, err = sys.argv[1:]

# The terminal and events.log: no control reaches them, escapes are shown.
for path in (out, err, run + "/events.log"):
    data = open(path, "rb").read()
    for bad, what in ((b"\x1b", "ESC"), (b"\x07", "BEL"), (b"\r", "CR"), (b"\x01", "SOH"),
                      (b"\xc2\x9b", "8-bit CSI"), (b"\xe2\x80\xae", "RLO"),
                      (b"\xe2\x81\xa6", "LRI"), (b"\xe2\x80\x8f", "RLM")):
        assert bad not in data, f"{path}: a raw {what} reached it"
    data.decode("utf-8")  # well-formed UTF-8 (invalid bytes are \xNN)
log = open(run + "/events.log", encoding="utf-8").read()
assert "\\x1b]52;c;cHduZWQ=\\x07" in log, "the OSC sequence is not shown escaped"
assert "evil\\rPASS fake \\u202egpj.exe" in log, "CR/RLO not shown escaped"
assert "\\u009b" in log and "\\u2066" in log, "C1/bidi not shown escaped"
assert "a\\xff\\xfeb" in log, "invalid bytes not shown as \\xNN"

# junit.xml parses; the cut output ends on a character boundary.
tree = ET.parse(run + "/junit.xml")
cases = {c.get("name"): c for c in tree.iter("testcase")}
assert set(cases) >= {"osc-clipboard", "bad-utf8", "c1-and-isolates", "cut-mid-char", "after-nul"}, cases
assert cases["after-nul"].find("failure") is None, "a NUL before the line hid it from output:"
for name in ("osc-clipboard", "bad-utf8", "c1-and-isolates", "cut-mid-char"):
    assert cases[name].find("failure") is not None, name
cut = cases["cut-mid-char"].find("system-out").text
kept = cut.split("\n[... output truncated]")[0]
assert "\ufffd" not in kept and kept.startswith("x" * 4095), "the 4096-byte cut split a character"
bad = cases["bad-utf8"].find("system-out").text
assert "\ufffd" in bad and "\ufffe" not in bad and "\uffff" not in bad, repr(bad)

# summary.json parses and agrees.
s = json.load(open(run + "/summary.json"))
assert s["verdict"] == "fail", s["verdict"]
assert s["checks"]["failed"] == 4, s["checks"]
assert "report" in s["files"], s["files"]

# report.html: the page parses and its embedded data is JSON.
page = open(run + "/report.html", encoding="utf-8").read()
m = re.search(r'<script id="fl-data" type="application/json">\n(.*?)\n</script>', page, re.S)
assert m, "no embedded data in report.html"
data = json.loads(m.group(1))
assert "</script" not in m.group(1).lower()
html.parser.HTMLParser().feed(page)
print("ok: stdout, stderr and events.log escaped; junit.xml, summary.json, report.html parse")
PY
xmllint --noout "$run/junit.xml" || fail "xmllint rejects junit.xml"
echo "ok: xmllint accepts junit.xml"
