#!/usr/bin/env bash
# `faultline --version` and `faultline version`: the same line, with the git
# revision of the source tree it was built from, or "unknown" outside git.
#   version_test.sh FAULTLINE SOURCE_DIR BUILD_DIR
set -euo pipefail
faultline=$1 src=$2 build=$3
fail() { echo "FAIL: $*" >&2; exit 1; }

a=$("$faultline" --version)
b=$("$faultline" version)
[ "$a" = "$b" ] || fail "--version says '$a', version says '$b'"
[[ $a =~ ^faultline\ [0-9]+\.[0-9]+\.[0-9]+\ \(git\ ([0-9a-f]{12}|unknown)\)$ ]] ||
    fail "'$a' is not 'faultline X.Y.Z (git REVISION)'"
rev=${BASH_REMATCH[1]}
# What the build recorded (a commit since then shows once it is rebuilt).
want=$(sed -n 's/^#define FL_GIT_REVISION "\(.*\)"$/\1/p' "$build/cli/fl-revision.h")
[ "$rev" = "$want" ] || fail "the binary says revision '$rev', the build recorded '$want'"
if git -C "$src" rev-parse --show-toplevel >/dev/null 2>&1; then
    git -C "$src" cat-file -e "$rev^{commit}" 2>/dev/null || fail "'$rev' is no commit of $src"
else
    [ "$rev" = unknown ] || fail "built outside git, yet revision '$rev'"
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
