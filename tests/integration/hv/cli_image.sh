#!/usr/bin/env bash
# `faultline image`: a build with the inputs of the hv_image fixture is a
# cache hit, `ls` lists it, bad input exits 2 with a message naming it,
# and prune works on a private cache.
set -euo pipefail
fl=${FAULTLINE:?FAULTLINE must name the faultline binary}
[ -x "$fl" ] || { echo "SKIP: $fl not built"; exit 77; }
tmp=$(mktemp -d /tmp/fl-hv-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

out=$("$fl" image build)
grep -q '(cached)' <<<"$out" || { echo "FAIL: second build was not a cache hit: $out"; exit 1; }
key=$(awk '/^key/ {print $2}' <<<"$out")
"$fl" image ls | grep -q "^$key" || { echo "FAIL: image ls does not list $key"; exit 1; }
"$fl" image ls --json | grep -q "\"key\":\"$key\"" || { echo "FAIL: image ls --json"; exit 1; }

set +e
msg=$("$fl" image build --packages 'Bad_Name' 2>&1); rc=$?
set -e
[ "$rc" = 2 ] && grep -q "'Bad_Name'" <<<"$msg" || { echo "FAIL: bad package: rc $rc: $msg"; exit 1; }
set +e
msg=$("$fl" image build --files /etc/hostname:relative 2>&1); rc=$?
set -e
[ "$rc" = 2 ] || { echo "FAIL: bad --files: rc $rc: $msg"; exit 1; }

# prune on a private cache holding a fake old entry and a fresh one
mkdir -p "$tmp/images/old" "$tmp/images/new" "$tmp/debs"
printf 'key=old\nkernel_release=x\npackages=\n' >"$tmp/images/old/manifest"
printf 'key=new\nkernel_release=x\npackages=\n' >"$tmp/images/new/manifest"
touch -d '40 days ago' "$tmp/images/old/last-used"
touch "$tmp/images/new/last-used"
"$fl" image prune --cache "$tmp" --older-than 30 | grep -q 'removed 1 image'
[ ! -e "$tmp/images/old" ] && [ -e "$tmp/images/new" ] || { echo "FAIL: prune removed the wrong one"; exit 1; }
"$fl" image prune --cache "$tmp" --downloads >/dev/null
[ ! -e "$tmp/images/new" ] && [ ! -e "$tmp/debs" ] || { echo "FAIL: prune all"; exit 1; }
echo "PASS cli_image"
