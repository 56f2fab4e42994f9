#!/usr/bin/env bash
# `cmake --install` into a temporary prefix, then the installed tree works:
# faultline --help and --version, every installed scenario validates, a man
# page per command renders with `man -l` and carries the --help text, and
# bash completion completes commands (`faultline r<TAB>`), options, scenario
# files and run directories.
#   install_test.sh CMAKE BUILD_DIR SOURCE_DIR SANITIZED(ON|OFF)
set -euo pipefail
cmake=$1 build=$2 src=$3 sanitized=${4:-OFF}
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

"$cmake" --install "$build" --prefix "$prefix" >"$tmp/install.log" ||
    { cat "$tmp/install.log"; fail "cmake --install failed"; }
fl=$prefix/bin/faultline
[ -x "$fl" ] || fail "no $fl"

# --help and --version from the installed binary, away from the trees.
cd "$tmp"
help=$("$fl" --help) || fail "installed faultline --help exits $?"
grep -q '^usage: faultline <command>' <<<"$help" || fail "faultline --help: $help"
[ "$("$fl" --version)" = "$("$build/cli/faultline" --version)" ] || fail "--version differs from the build's"
mapfile -t cmds < <(awk '/^commands:/ {on = 1; next} on && /^$/ {exit} on {print $1}' <<<"$help")
[ ${#cmds[@]} -ge 5 ] || fail "only ${#cmds[@]} commands in --help"

# Nothing at run time comes from the source or build tree (the agent, the
# init script and the report assets are compiled in): outside its debug
# information the binary names neither.  (Sanitizer and fuzzer builds name source
# files in their instrumentation data, and are left out.)
if [ "$sanitized" != ON ]; then
    objcopy --strip-debug "$fl" "$tmp/stripped"
    for tree in "$src" "$build"; do
        ! grep -qaF -- "$tree" "$tmp/stripped" || fail "the installed binary names $tree"
    done
fi

# The scenarios and the schema land where docs/cli.md says.
n=0
for f in "$prefix"/share/faultline/scenarios/*.yaml; do
    "$fl" validate "$f" || fail "installed $f does not validate"
    n=$((n + 1))
done
[ "$n" -eq "$(ls "$src"/scenarios/*.yaml | wc -l)" ] || fail "$n scenarios installed"
[ -f "$prefix/share/doc/faultline/scenario.schema.json" ] || fail "no schema installed"
[ -f "$prefix/share/doc/faultline/cli.md" ] || fail "no docs installed"

# Man pages: one per command; each renders and has every option its help has.
man1=$prefix/share/man/man1
[ -f "$man1/faultline.1" ] || fail "no faultline.1"
for c in "${cmds[@]}"; do
    page=$man1/faultline-$c.1
    [ -f "$page" ] || fail "no man page for '$c' ($page)"
    text=$(MANWIDTH=200 MANPAGER=cat man -l "$page" 2>"$tmp/man.err") ||
        fail "man -l $page: $(cat "$tmp/man.err")"
    grep -q "faultline-$c - " <<<"$text" || fail "$page: no NAME line"
    for opt in $("$fl" "$c" --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u); do
        grep -qe "$opt" <<<"$text" || fail "$page lacks $opt (in 'faultline $c --help')"
    done
done
grep -q -- '--replay-of' <(MANPAGER=cat man -l "$man1/faultline-run.1") || fail "faultline-run.1"

# Bash completion, as bash-completion would load it, against the installed
# binary: COMP_WORDS/COMP_CWORD in, COMPREPLY out.
mkdir -p "$tmp/work/runs/r1" "$tmp/work/sub"
touch "$tmp/work/runs/r1/run.db" "$tmp/work/a.yaml" "$tmp/work/b.txt"
out=$(cd "$tmp/work" && PATH=$prefix/bin:/usr/bin:/bin bash --norc --noprofile -c '
    source "$1"
    complete -p faultline >/dev/null || exit 9
    c() {
        COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
        COMPREPLY=(); _faultline
        printf "%s|" "$*"; printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "; echo
    }
    c faultline r
    c faultline run --re
    c faultline validate ""
    c faultline trace ""
    c faultline net ""
' _ "$prefix/share/bash-completion/completions/faultline") || fail "completion script: rc $?"
want='faultline r|replay report run 
faultline run --re|--record --repeat --replay-of 
faultline validate |a.yaml runs sub 
faultline trace |runs 
faultline net |ctl serve '
[ "$out" = "$want" ] || fail "completion gave
$out
want
$want"
echo "ok: installed $(ls "$man1" | wc -l) man pages, ${#cmds[@]} commands, $n scenarios"
