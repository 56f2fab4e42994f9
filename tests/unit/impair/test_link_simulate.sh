#!/bin/sh
# `faultline link simulate` end to end: output shape, determinism, the
# summary, table files, and the errors users see.
#   usage: test_link_simulate.sh PATH/TO/faultline
set -eu
F=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# help texts
"$F" link simulate --help >"$tmp/help" || fail "--help exit status"
grep -q "loss gemodel P" "$tmp/help" || fail "--help lacks the loss models"
grep -q "examples:" "$tmp/help" || fail "--help lacks examples"
"$F" link --help | grep -q simulate || fail "link --help"
"$F" --help | grep -q "^  link " || fail "faultline --help lists link"

# every frame lost: 1000 data lines, all dropped for loss, plus header and summary
"$F" link simulate --frames 1000 loss 100% >"$tmp/out"
[ "$(head -n 1 "$tmp/out")" = "index,send_ns,size,fate,reason,deliver_ns,delay_ns,reordered,corrupt,dup_deliver_ns,dup_delay_ns,dup_reordered,dup_corrupt" ] ||
    fail "csv header"
[ "$(grep -c ',dropped,loss,' "$tmp/out")" = 1000 ] || fail "1000 frames dropped for loss"
grep -q "^# frames: 1000  delivered copies: 0  dropped: 1000 (loss 100.0000%)" "$tmp/out" ||
    fail "summary of total loss"

# a plain delay: every frame delivered exactly 10 ms after it was sent
"$F" link simulate --frames 5 --interval 2ms delay 10ms >"$tmp/out"
grep -q '^4,8000000,1000,delivered,,18000000,10000000,0,' "$tmp/out" || fail "delay 10ms line"

# the parameters as one quoted string (as `net serve --link` takes them)
# give the same fates as separate words
"$F" link simulate --frames 200 'delay 10ms 2ms loss 5%' >"$tmp/q" ||
    fail "one quoted parameter string refused"
"$F" link simulate --frames 200 delay 10ms 2ms loss 5% >"$tmp/w"
cmp -s "$tmp/q" "$tmp/w" || fail "quoted string and separate words differ"

# same seed, same bytes; another seed, other fates
args="--frames 2000 --pps 1000 delay 20ms 5ms distribution pareto loss gemodel 1% 30% duplicate 1% corrupt 1% reorder 5%"
# shellcheck disable=SC2086
"$F" link simulate --seed 7 $args >"$tmp/a"
# shellcheck disable=SC2086
"$F" link simulate --seed 7 $args >"$tmp/b"
# shellcheck disable=SC2086
"$F" link simulate --seed 8 $args >"$tmp/c"
cmp -s "$tmp/a" "$tmp/b" || fail "same seed gave different output"
if cmp -s "$tmp/a" "$tmp/c"; then fail "different seeds gave the same output"; fi
grep -q ',duplicated,' "$tmp/a" || fail "no duplicated frame in 2000"
awk -F, '$8 == "1"' "$tmp/a" | grep -q . || fail "no reordered frame in 2000"

# jsonl: one object per frame and a summary object
"$F" link simulate --frames 100 --format jsonl delay 1ms >"$tmp/j"
[ "$(wc -l <"$tmp/j")" = 101 ] || fail "jsonl line count"
head -n 1 "$tmp/j" | grep -q '^{"index":0,"send_ns":0,"size":1000,"fate":"delivered","deliveries":\[{"deliver_ns":1000000,' ||
    fail "jsonl frame line"
tail -n 1 "$tmp/j" | grep -q '^{"summary":{"params":"delay 1ms","seed":1,' || fail "jsonl summary"

# rate: 1500-byte frames offered at 120 Mbit/s through a 10 Mbit/s link
"$F" link simulate --frames 10000 --size 1500 --interval 100us --summary-only rate 10mbit >"$tmp/r"
grep -q "achieved 10.000 Mbit/s" "$tmp/r" || fail "achieved rate: $(cat "$tmp/r")"
grep -q "^delay histogram (delivered copies):" "$tmp/r" || fail "no delay histogram"

# sizes drawn per frame from MIN-MAX, from their own stream: the link's
# fates do not move when the sizes do
"$F" link simulate --frames 2000 --size 64-1500 loss 10% >"$tmp/s1"
awk -F, 'NR > 1 && !/^#/ { if ($3 < 64 || $3 > 1500) bad = 1; seen[$3 > 782]++ }
         END { exit !(bad == 0 && seen[0] > 800 && seen[1] > 800) }' "$tmp/s1" ||
    fail "sizes outside 64-1500 or not spread"
"$F" link simulate --frames 2000 loss 10% >"$tmp/s2"
[ "$(cut -d, -f4,5 "$tmp/s1" | sed 1d)" = "$(cut -d, -f4,5 "$tmp/s2" | sed 1d)" ] ||
    fail "sizes changed the loss decisions"

# a netem .dist table file
printf '# two values\n-8192 8192\n' >"$tmp/two.dist"
"$F" link simulate --frames 200 --summary-only delay 10ms 2ms distribution "$tmp/two.dist" >"$tmp/t"
grep -q "min 8.000ms  max 12.000ms" "$tmp/t" || fail "table delays: $(cat "$tmp/t")"

# errors: exit 2 with a message that says what is valid
expect_error() {
    want=$1
    shift
    if "$F" link simulate "$@" >"$tmp/o" 2>"$tmp/e"; then fail "accepted: $*"; else rc=$?; fi
    [ "$rc" = 2 ] || fail "exit $rc for: $*"
    grep -qF -- "$want" "$tmp/e" || fail "for '$*' got: $(cat "$tmp/e")"
}
expect_error "reorder requires a delay" reorder 25%
expect_error "'150%' is not a probability (0%..100%)" loss 150%
expect_error "durations cannot be negative" delay -5ms
expect_error "unknown unit 'parsecs'" delay 10parsecs
expect_error "did you mean 'delay'?" dealy 10ms
expect_error "--format: 'xml' is not a format" --format xml
expect_error "give --interval or --pps, not both" --interval 1ms --pps 10
expect_error "unknown option '--frame'" --frame 10
expect_error "--frames: 'ten' is not a whole number" --frames ten
expect_error "--size: '1500-64' is not a size or a MIN-MAX range" --size 1500-64
expect_error "no-such.dist" delay 10ms 1ms distribution "$tmp/no-such.dist"
if "$F" link simulat 2>"$tmp/e"; then fail "accepted 'link simulat'"; fi
grep -q "did you mean 'simulate'" "$tmp/e" || fail "subcommand suggestion"
echo "ok"
