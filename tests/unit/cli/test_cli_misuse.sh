#!/bin/sh
# What the CLI says when it is used the way people guess it works: each case
# must exit with the documented status and point at the right form.
#   usage: test_cli_misuse.sh PATH/TO/faultline
set -eu
F=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# expect STATUS TEXT CMD...: CMD exits STATUS and its stderr holds TEXT.
expect() {
    want_status=$1 want_text=$2
    shift 2
    status=0
    "$@" >"$tmp/out" 2>"$tmp/err" || status=$?
    [ "$status" = "$want_status" ] || fail "$*: exit $status, expected $want_status ($(cat "$tmp/err"))"
    grep -q -F -- "$want_text" "$tmp/err" || fail "$*: stderr lacks '$want_text': $(cat "$tmp/err")"
}

# `trace` takes what to show as an option, not a word before the run
expect 2 "what to show is an option: 'faultline trace RUN --ios'" "$F" trace ios
expect 2 "what to show is an option: 'faultline trace RUN --events'" "$F" trace events "$tmp"
expect 2 "what to show is an option: 'faultline trace RUN'" "$F" trace frames
expect 2 "not a run directory" "$F" trace "$tmp/none"

# `image list` is `image ls` (the top-level help says "list")
"$F" image list --cache "$tmp/cache" >"$tmp/out" || fail "image list exit $?"
grep -q '^KEY ' "$tmp/out" || fail "image list prints no table header: $(cat "$tmp/out")"
expect 2 "is not a subcommand (build, ls, prune)" "$F" image lsit


# Whole-number options: one parser (cli_parse_count), one message, and
# never a silent exit (replay --stall 0 and --gdb=0 said nothing before).
expect 2 "replay: --stall: '0' is not a whole number in 1..86400" "$F" replay --stall 0 "$tmp" n1
expect 2 "replay: --gdb: '0' is not a whole number in 1..65535" "$F" replay --gdb=0 "$tmp" n1
expect 2 "run: --repeat: '0' is not a whole number in 1..100000" "$F" run --repeat 0 "$tmp/x.yaml"
expect 2 "trace: --limit: '-3' is not a whole number in 1.." "$F" trace --limit -3 "$tmp"

echo "cli misuse: all cases answered"
