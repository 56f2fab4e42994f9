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
 *   repeat.c    --repeat / --seeds: runner_run once per seed, the index
 *   index.c     the index of a directory of runs (index.html, index.json)
 *   json.c      a JSON reader (summary.json read back for the index)
 *
 * The run directory (docs/cli.md):
 *   scenario.yaml   the exact scenario file      seed        the seed, decimal
 *   run.db          the run database (trace/)    events.log  the timeline as played
 *   pcap/           one pcap per NIC             console/    one console log per node
 *   disks/          the disks' backing files     junit.xml   one test case per check
 *   summary.json    verdict, checks, paths       report.html the report
 *   rr/             recorded nodes' segments (docs/record-replay.md)
 *
 * runs/latest, a symbolic link beside the run directories, names the
 * newest run made under runs/ (without --out), or the newest repeat's
 * directory.
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
    /* Human output (the live view, event lines, the summary) on stderr
     * instead of stdout: stdout is kept for machine output (--json). */
    bool human_to_stderr;
    /* Do not point runs/latest at this run (a repeat's runs: the repeat's
     * directory is the latest). */
    bool no_latest;
};

struct runner_outcome {
    enum runner_result result;
    char *run_dir; /* NULL when the run never got a directory */
    char *report;  /* path of report.html, or NULL */
    size_t checks, checks_failed;
    char *summary_json; /* summary.json's text, or NULL when none was made */
};
void runner_outcome_clear(struct runner_outcome *out);

/* Runs a scenario end to end.  Always fills *out (result and what exists);
 * messages for the user go to stderr and to the run's events.log.  Returns
 * true when the run completed (PASS or FAIL); false with *errp for
 * INVALID, ERROR and INTERRUPTED. */
bool runner_run(const struct runner_options *opts, struct runner_outcome *out,
                struct fl_error **errp);

/*
 * Repeating a scenario (runner/repeat.c; docs/cli.md, "faultline run
 * --repeat"): N runs with fresh seeds, or one run per given seed, each
 * its own run directory inside one directory:
 *
 *   runs/<YYYYmmdd-HHMMSS>-<name>/       (or --out)
 *     01-seed-<S>/  02-seed-<S>/ ...     run directories, numbered in run order
 *     index.html  index.json             the set (runner/index.h), rewritten
 *                                        after every run
 *   runs/latest -> <YYYYmmdd-HHMMSS>-<name>
 *
 * The set's verdict: FAIL when a run failed; else INTERRUPTED when a
 * signal stopped one (no further run starts); else ERROR when a run had
 * an infrastructure error; else PASS.  An invalid scenario is INVALID
 * before any run starts.
 */
struct runner_repeat {
    /* The runs' options: scenario_path, accel, cache_dir, view, ...; its
     * out_dir is the repeat's directory (NULL: runs/<date>-<time>-<name>/);
     * its seed, replay_of and no_latest are not used. */
    const struct runner_options *run;
    size_t count;          /* runs with drawn seeds; 0 with seeds */
    const uint64_t *seeds; /* one run per seed, in order; NULL: drawn */
    size_t n_seeds;
    bool until_fail; /* stop after the first run that did not pass */
};

struct runner_repeat_outcome {
    enum runner_result result;
    char *dir;        /* the repeat's directory, or NULL */
    char *index_json; /* index.json's text, or NULL */
    size_t runs;      /* runs started */
};
void runner_repeat_outcome_clear(struct runner_repeat_outcome *out);

/* Runs the set; human output (each run's, then the table and the rerun
 * command of every failure) goes where run->human_to_stderr says.  False
 * with *errp when no run could start (invalid scenario, the directory). */
bool runner_repeat_run(const struct runner_repeat *rep, struct runner_repeat_outcome *out,
                       struct fl_error **errp);

/* "1-50", "7", "3,9,12", "1-3,10" (each seed decimal or 0x hex): the
 * seeds in order, newly allocated.  A seed given twice, a range A-B with
 * B < A, or more than RUNNER_MAX_SEEDS seeds is an error naming the
 * value. */
#define RUNNER_MAX_SEEDS 100000
bool runner_seeds_parse(const char *text, uint64_t **seeds, size_t *n, struct fl_error **errp);

/* The index of a directory of runs (runner/index.h): writes dir/index.json
 * and dir/index.html.  *index_html (may be NULL): the path written,
 * newly allocated.  False with *errp (ENOENT: dir holds no run
 * directories). */
bool runner_index_dir(const char *dir, char **index_html, struct fl_error **errp);

#endif /* FL_RUNNER_H */
