#!/usr/bin/env bash
# `faultline --version` and `faultline version`: the same line, with the git
# revision of the source tree it was built from, or "unknown" outside git.
#   version_test.sh FAULTLINE SOURCE_DIR
set -euo pipefail
faultline=$1 src=$2
fail() { echo "FAIL: $*" >&2; exit 1; }

a=$("$faultline" --version)
b=$("$faultline" version)
[ "$a" = "$b" ] || fail "--version says '$a', version says '$b'"
[[ $a =~ ^faultline\ [0-9]+\.[0-9]+\.[0-9]+\ \(git\ ([0-9a-f]{12}|unknown)\)$ ]] ||
    fail "'$a' is not 'faultline X.Y.Z (git REVISION)'"
rev=${BASH_REMATCH[1]}
want=$(cmake -DDIR="$src" -P "$src/tests/unit/install/revision.cmake" 2>&1)
[ "$rev" = "$want" ] || fail "built from revision '$rev', the source tree is at '$want' (rebuild?)"
if git -C "$src" rev-parse --show-toplevel >/dev/null 2>&1; then
    [ "$rev" = "$(git -C "$src" rev-parse --short=12 HEAD)" ] || fail "revision $rev is not HEAD"
fi
"$faultline" version extra >/dev/null 2>&1 && fail "'faultline version extra' succeeded"

# Outside git, and in a folder of a git tree that is not its top (a
# tarball unpacked inside another repository): unknown.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/plain" "$tmp/repo/sub"
out=$(GIT_CEILING_DIRECTORIES=$tmp cmake -DDIR="$tmp/plain" -P "$src/tests/unit/install/revision.cmake" 2>&1)
[ "$out" = unknown ] || fail "outside git: '$out', want unknown"
if command -v git >/dev/null; then
    git -C "$tmp/repo" init -q
    git -C "$tmp/repo" -c user.name=t -c user.email=t@t commit -q --allow-empty -m x
    out=$(cmake -DDIR="$tmp/repo/sub" -P "$src/tests/unit/install/revision.cmake" 2>&1)
    [ "$out" = unknown ] || fail "a folder inside another repository: '$out', want unknown"
    out=$(cmake -DDIR="$tmp/repo" -P "$src/tests/unit/install/revision.cmake" 2>&1)
    [ "$out" = "$(git -C "$tmp/repo" rev-parse --short=12 HEAD)" ] || fail "a repository's top: '$out'"
fi
echo "ok: $a"
