#!/usr/bin/env bash
# gen-man.sh FAULTLINE OUTDIR: one man page per subcommand (and per
# sub-subcommand a help text points to, like `faultline net serve --help`),
# made at build time from the binary's own --help output by help2roff.awk,
# so the pages never drift from the help.  Writes OUTDIR/*.1 and
# OUTDIR/stamp; pages of commands that no longer exist are removed.
set -euo pipefail
faultline=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
# A sanitizer build's leak report must not fail the build.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}

top=$("$faultline" --help)
version=$("$faultline" --version | awk '{print $2}')
[ -n "$version" ] || { echo "gen-man.sh: no version from $faultline --version" >&2; exit 1; }
# "commands:" block of the top help: "  NAME   SUMMARY".
mapfile -t cmds < <(printf '%s\n' "$top" | awk '/^commands:/ {on = 1; next} on && /^$/ {exit}
    on && /^  [a-z]/ {print $1}')
[ ${#cmds[@]} -gt 0 ] || { echo "gen-man.sh: no commands in $faultline --help" >&2; exit 1; }
summary_of() { # summary_of HELP NAME: "  NAME   SUMMARY" of a command list
    printf '%s\n' "$1" | awk -v w="$2" '$1 == w && /^  [a-z]/ {sub(/^ *[^ ]+ +/, ""); print; exit}'
}

tmp=$(mktemp -d "$out.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
pages=() # NAME|WORDS|SUMMARY
for c in "${cmds[@]}"; do
    s=$(summary_of "$top" "$c")
    pages+=("faultline-$c|$c|$s")
    help=$("$faultline" "$c" --help)
    # Sub-subcommands the help points to: "faultline CMD SUB --help".
    for sub in $(printf '%s\n' "$help" | grep -oE "faultline $c [a-z][a-z0-9-]* --help" |
        awk '{print $3}' | sort -u); do
        ss=$(summary_of "$help" "$sub")
        pages+=("faultline-$c-$sub|$c $sub|${ss:-$s}")
    done
done

names=()
for p in "${pages[@]}"; do names+=("${p%%|*}(1)"); done
all=$(printf '%s, ' "${names[@]}")
all=${all%, }
name=$(printf '%s\n' "$top" | sed -n '1s/^faultline [^ ]* - //p')
printf '%s\n' "$top" | sed 1d |
    awk -v page=faultline -v summary="$name" -v version="$version" -v seealso="$all" \
        -f "$here/help2roff.awk" >"$tmp/faultline.1"
for p in "${pages[@]}"; do
    IFS='|' read -r page words summary <<<"$p"
    # See also: faultline(1), the parent command, the sub-commands.
    see="faultline(1)"
    for q in "${pages[@]}"; do
        other=${q%%|*}
        if [[ $page == "$other"-* || $other == "$page"-* ]]; then
            see+=", $other(1)"
        fi
    done
    # shellcheck disable=SC2086 # WORDS is "cmd" or "cmd sub"
    "$faultline" $words --help |
        awk -v page="$page" -v summary="$summary" -v version="$version" \
            -v seealso="$see" -f "$here/help2roff.awk" >"$tmp/$page.1"
done
mkdir -p "$out"
rm -f "$out"/*.1
mv "$tmp"/*.1 "$out"/
touch "$out/stamp"
