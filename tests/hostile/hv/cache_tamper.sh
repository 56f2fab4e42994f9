#!/usr/bin/env bash
# The image cache against a hostile local user, end to end through the CLI:
# - a cache directory planted by another uid (here: the per-user fallback
#   without HOME) is refused by `image ls` and `image build`, exit 3, with
#   a message naming the path, the owner and the mode (needs root to
#   chown; skipped otherwise);
# - a cache entry whose initramfs was changed after the build is not used:
#   `image build` names the file, sets the entry aside and builds it again
#   (offline, from the cached .debs), and the next build is a hit again.
set -euo pipefail
fl=${FAULTLINE:?FAULTLINE must name the faultline binary}
[ -x "$fl" ] || { echo "SKIP: $fl not built"; exit 77; }
tmp=$(mktemp -d /tmp/fl-hv-tamper-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# ---- planted cache: HOME unset, the fallback is $XDG_RUNTIME_DIR/faultline
mkdir -m 0700 "$tmp/run"
planted=$tmp/run/faultline
mkdir -m 0755 "$planted"
if chown 65534:65534 "$planted" 2>/dev/null; then
    for cmd in "image ls" "image build --quiet"; do
        set +e
        msg=$(env -u HOME -u FAULTLINE_CACHE -u XDG_CACHE_HOME XDG_RUNTIME_DIR="$tmp/run" \
              "$fl" $cmd 2>&1); rc=$?
        set -e
        [ "$rc" = 3 ] || fail "$cmd on a planted cache: exit $rc: $msg"
        for want in "'$planted'" "uid 65534" "mode 0755"; do
            grep -qF "$want" <<<"$msg" || fail "$cmd: message does not name $want: $msg"
        done
    done
    [ ! -e "$planted/images" ] || fail "something was written into the planted cache"
else
    echo "note: not root, the planted-cache case is covered by test_hv_cache_trust only"
fi

# ---- tampered entry, in a private copy of the shared cache's image
out=$("$fl" image build --quiet)   # the hv_image fixture made it a hit
key=$(awk '/^key/ {print $2}' <<<"$out")
src=$(dirname "$(awk '/^kernel/ {print $2}' <<<"$out")")
[ -n "$key" ] && [ -f "$src/manifest" ] || fail "no cached image: $out"
cache=$tmp/cache
mkdir -m 0700 "$cache" "$cache/images"
cp -a "$src" "$cache/images/$key"
cp -al "$src/../../debs" "$cache/debs" # hard links: the rebuild is offline
"$fl" image build --quiet --cache "$cache" | grep -q '(cached)' || fail "a faithful copy is no hit"

printf 'X' | dd of="$cache/images/$key/initrd.cpio" bs=1 seek=4000 conv=notrunc status=none
out=$("$fl" image build --quiet --cache "$cache" 2>&1) || fail "rebuild failed: $out"
grep -qF "$cache/images/$key/initrd.cpio' does not match its manifest" <<<"$out" ||
    fail "the tampered file is not named: $out"
! grep -q '(cached)' <<<"$out" || fail "a tampered image was used as a cache hit: $out"
grep -q "^key     $key\$" <<<"$out" || fail "the rebuild has another key: $out"
"$fl" image build --quiet --cache "$cache" | grep -q '(cached)' || fail "the rebuilt entry is no hit"
echo "PASS cache_tamper"
