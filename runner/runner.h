/*
 * runner/ — one run: a scenario in, a cluster, a timeline of faults, a
 * verdict out.
 *
 *   topo_load_file ─▶ run directory ─▶ images (hv) ─▶ run.db (trace)
 *        ─▶ netback (ports, links) + blkback (disks) ─▶ boot every node (hv)
 *        ─▶ all ready: time zero ─▶ play the timeline (events, checks)
 *        ─▶ end checks ─▶ teardown ─▶ junit.xml, summary.json, report.html
 *
 * One process, one event loop, every timer on one monotonic clock.  Time
 * zero is the instant every node is ready; boot time is reported
 * separately.  The timeline clock stops while a `wait` or a foreground
 * `exec` runs (topology/topology.h).
 *
 * The files, each calling only those below it (runner/internal.h draws
 * the arrows; tests/unit/runner/include-arrows.sh holds them):
 *   log.c       the run clock (time zero, holds) and the event log, with a
 *               table of sinks (events.log, the live view); calls no one
 *   view.c      the live view: a log sink and a status block
 *   rundir.c    the run directory, events.log, junit.xml, summary.json
 *   setup.c     wiring the scenario into trace, hv, netback, blkback
 *   checks.c    checks, execs and waits in guests (through rn_guest_ops)
 *   timeline.c  playing the events; hands the end of the timeline up
 *   record.c    recorded nodes (--record): segment directories under rr/
 *   run.c       callbacks, phases (set_phase is the one place they
 *               change), the verdict, teardown
 *
 * The run directory (docs/cli.md):
 *   scenario.yaml   the exact scenario file      seed        the seed, decimal
 *   run.db          the run database (trace/)    events.log  the timeline as played
 *   pcap/           one pcap per NIC             console/    one console log per node
 *   disks/          the disks' backing files     junit.xml   one test case per check
 *   summary.json    verdict, checks, paths       report.html the report
 *   rr/             recorded nodes' segments (docs/record-replay.md)
 */
#ifndef FL_RUNNER_H
#define FL_RUNNER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"

/* How a run ended; each maps to a distinct exit code (cli/cli.h). */
#define RUNNER_RESULTS(X)                                                                          \
    X(PASS, "pass")               /* every check passed */                                         \
    X(FAIL, "fail")               /* at least one check failed */                                  \
    X(INVALID, "invalid")         /* the scenario (or the command line) is invalid */              \
    X(ERROR, "error")             /* infrastructure failed: QEMU, image build, I/O */              \
    X(INTERRUPTED, "interrupted") /* SIGINT/SIGTERM: orderly teardown, partial results kept */

enum runner_result {
#define RUNNER_RESULT_ENUM(name, str) RUNNER_##name,
    RUNNER_RESULTS(RUNNER_RESULT_ENUM)
#undef RUNNER_RESULT_ENUM
};
const char *runner_result_name(enum runner_result result);

/* Live view: a redrawn status block on a terminal, plain lines otherwise. */
enum runner_view { RUNNER_VIEW_AUTO, RUNNER_VIEW_LIVE, RUNNER_VIEW_PLAIN, RUNNER_VIEW_QUIET };

struct runner_options {
    /* The scenario file.  NULL with replay_of: the replayed run's. */
    const char *scenario_path;
    /* A previous run directory: rerun its scenario with its seed. */
    const char *replay_of;
    /* Run directory; NULL: runs/<YYYYmmdd-HHMMSS>-<name>/ under the
     * current directory.  Must not exist or be empty. */
    const char *out_dir;
    bool has_seed; /* override run.seed */
    uint64_t seed;
    const char *accel;     /* "auto" | "kvm" | "tcg"; NULL: auto */
    const char *cache_dir; /* image cache; NULL: hv's default */
    bool no_frames;        /* no frame fate records (pcaps and events stay) */
    bool no_pcap;          /* no pcaps */
    bool no_report;        /* do not write report.html */
    /* Record nodes for replay (docs/record-replay.md): NULL none, "" every
     * node, "n1,n2" those. */
    const char *record;
    enum runner_view view;
};

struct runner_outcome {
    enum runner_result result;
    char *run_dir; /* NULL when the run never got a directory */
    char *report;  /* path of report.html, or NULL */
    size_t checks, checks_failed;
};
void runner_outcome_clear(struct runner_outcome *out);

/* Runs a scenario end to end.  Always fills *out (result and what exists);
 * messages for the user go to stderr and to the run's events.log.  Returns
 * true when the run completed (PASS or FAIL); false with *errp for
 * INVALID, ERROR and INTERRUPTED. */
bool runner_run(const struct runner_options *opts, struct runner_outcome *out,
                struct fl_error **errp);

#endif /* FL_RUNNER_H */
