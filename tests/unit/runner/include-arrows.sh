#!/usr/bin/env bash
# runner/'s files include each other one way only (runner/internal.h draws
# the arrows), and none grows past ~900 lines (CONVENTIONS.md).  A new
# include against an arrow, or a new file not listed here, fails.
set -euo pipefail
src=${FL_SOURCE_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)}
cd "$src/runner"
declare -A allowed=(
    [log.h]=""
    [log.c]="log.h"
    [runner.h]=""
    [internal.h]="log.h runner.h"
    [view.h]="internal.h"
    [rundir.h]="internal.h"
    [checks.h]="internal.h"
    [timeline.h]="internal.h"
    [view.c]="view.h"
    [rundir.c]="rundir.h"
    [checks.c]="checks.h record.h"
    [timeline.c]="timeline.h checks.h record.h"
    [setup.h]="internal.h"
    [setup.c]="setup.h"
    [run.c]="checks.h record.h rundir.h setup.h timeline.h view.h"
    [record.h]="internal.h"
    [record.c]="record.h"
    [index.h]="runner.h"
    [index.c]="index.h"
    [repeat.c]="index.h rundir.h"
)
bad=0
for f in *.c *.h; do
    if [ -z "${allowed[$f]+set}" ]; then
        echo "runner/$f: not in the include map of $0 (add it with its arrows)" >&2
        bad=1
        continue
    fi
    for inc in $(sed -n 's|^#include "runner/\(.*\)"|\1|p' "$f"); do
        case " ${allowed[$f]} " in
        *" $inc "*) ;;
        *)
            echo "runner/$f includes runner/$inc: against the arrows in runner/internal.h" >&2
            bad=1
            ;;
        esac
    done
    lines=$(wc -l <"$f")
    if [ "$lines" -gt 900 ]; then
        echo "runner/$f has $lines lines (over ~900: split it along its concerns)" >&2
        bad=1
    fi
done
[ "$bad" = 0 ] && echo "ok: runner/ includes go one way; every file under 900 lines"
exit "$bad"
