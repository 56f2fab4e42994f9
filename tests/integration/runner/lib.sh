# Shared helpers for the runner's end-to-end tests (sourced).
set -euo pipefail
: "${FAULTLINE:?FAULTLINE must name the faultline binary (ctest sets it)}"
TMP=$(mktemp -d /tmp/fl-e2e-XXXXXX)
cleanup() {
    # Kill any QEMU this test's runs left behind (there must be none: that
    # is checked below), then remove the temporary tree.
    local left
    left=$(pgrep -f -- "$TMP" || true)
    [ -n "$left" ] && kill -9 $left 2>/dev/null || true
    [ -n "${TMPFS:-}" ] && { umount "$TMPFS" 2>/dev/null || umount -l "$TMPFS" 2>/dev/null || true; }
    rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
# No QEMU started for a run directory may outlive its run.
no_qemu_left() {
    local left
    left=$(pgrep -f -- "qemu-system.*$1" || true)
    [ -z "$left" ] || fail "QEMU processes left behind for $1: $left"
}
# tmpfs_or_skip SIZE: a tmpfs of SIZE at $TMP/mnt (set as TMPFS, unmounted
# at exit), or exit 77 (skipped) where mounting is not allowed.
tmpfs_or_skip() {
    mkdir "$TMP/mnt"
    if ! mount -t tmpfs -o size="$1" tmpfs "$TMP/mnt" 2>"$TMP/mount.err"; then
        echo "skipped: cannot mount a tmpfs here: $(cat "$TMP/mount.err")"
        exit 77
    fi
    TMPFS=$TMP/mnt
}
