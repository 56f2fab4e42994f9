/*
 * runner/ internals: the state of one run, shared by its files.  Each
 * file's functions are declared in its own header; the includes go one
 * way (tests/unit/runner/include-arrows.sh checks it):
 *
 *   log.h        the run clock and the event log: a leaf (core/ only)
 *     ▲
 *   internal.h   this file: the state of a run
 *     ▲
 *   view.h  rundir.h  setup.h  checks.h   the live view (a log sink); the
 *     ▲        ▲         ▲        ▲       run directory and its files;
 *     │        │         │    timeline.h  wiring the rooms; checks, execs
 *     │        │         │        ▲       and waits; the timeline's events
 *     └────────┴─────────┴──── run.c      phases, verdict, teardown
 *   record.h (recorded nodes, their segments) ◀── run.c, timeline.c
 *
 * Repeating (runner.h, "Repeating") sits beside a run, not inside it:
 *   json.h (a leaf: a JSON reader) ◀── index.h (a directory of runs) ◀──
 *   repeat.c (the loop over runner_run) ──▶ rundir.h (directory names,
 *   runs/latest)
 *
 * Nothing below run.c calls up: what run.c must learn (a check finished,
 * the timeline is over) reaches it through the hooks in struct run.
 */
#ifndef FL_RUNNER_INTERNAL_H
#define FL_RUNNER_INTERNAL_H

#include <stdio.h>

#include "blkback/blkback.h"
#include "hv/hv.h"
#include "netback/netback.h"
#include "runner/log.h"
#include "runner/runner.h"
#include "topology/topology.h"
#include "trace/trace.h"

struct run;

struct rn_node {
    struct run *run;
    const struct topo_node *topo;
    struct hv_node *hv;
    struct hv_image *image; /* shared, owned by run->images */
    int64_t trace_id;
    int64_t boot_start_ns; /* mono of the last boot request */
    int64_t window_event;  /* open trace event (pause/crash window), or 0 */
    bool down;             /* crashed or shut down by the timeline */
    bool expect_exit;      /* the timeline asked QEMU to exit */
    bool restarting;       /* booting again after a crash/shutdown */
    bool ready;            /* reached ready at least once this boot */
    /* Strings behind the hv configuration. */
    char **strings;
    size_t n_strings, strings_alloc;
};

/* A check's (or an expecting exec's, or a wait's) outcome. */
struct rn_result {
    char *name;
    char *node;
    char *command;
    char *source; /* "checks[1] (scenario.yaml:40:5)" */
    bool passed;
    bool ran;
    int exit_code; /* -1: did not exit normally */
    char *out, *err;
    char *message; /* why it failed, or "passed" */
    int64_t at_ns; /* timeline time it started */
    int64_t duration_ns;
    unsigned attempts;
    int rr_segment; /* its node's recorded segment when it began; -1: not recorded */
};

/* A check in flight (timed, end-of-run, exec with expect, or wait). */
struct rn_pending {
    struct run *run;
    const struct topo_check *check; /* NULL for exec/wait */
    const struct topo_event *event; /* the event that started it, or NULL (end check) */
    uint32_t node;
    const char *command;
    int64_t timeout_ns;
    int64_t within_ns, interval_ns;
    const struct topo_expect *expect; /* NULL: exit 0 is success (wait) */
    int64_t first_ns;                 /* mono of the first attempt */
    unsigned attempts;
    bool holds_timeline; /* wait / foreground exec */
    bool background;     /* background exec without expect: no result */
    struct fl_timer *retry;
    size_t result; /* index in run->results */
    bool done;
};

/* An event played later than this after its planned time is logged as
 * late (events.log, run.db, summary.json, the report). */
#define RN_LATE_WARN_NS (100 * FL_NS_PER_MS)

enum rn_phase { RN_SETUP, RN_BOOT, RN_TIMELINE, RN_END_CHECKS, RN_DONE };

/* How checks reach a guest: hv in a run (rn_guest_hv, checks.c), a fake
 * in the unit tests. */
struct rn_guest_ops {
    /* NULL when the node can run a command now; else what it is instead
     * ("off", "paused", "absent"). */
    const char *(*not_ready)(struct run *run, uint32_t node);
    /* hv_node_exec's contract: cb is called once, later, unless this
     * returns false with *errp. */
    bool (*exec)(struct run *run, uint32_t node, const char *shell_cmd, int64_t timeout_ns,
                 hv_exec_cb *cb, void *arg, struct fl_error **errp);
};
extern const struct rn_guest_ops rn_guest_hv;

struct run {
    const struct runner_options *opts;
    struct topo_scenario *scen;
    char *scenario_text;
    size_t scenario_size;
    struct fl_loop *loop;
    enum rn_phase phase; /* written by run.c only (set_phase) */
    const struct rn_guest_ops *guest;
    struct rn_clock clock;
    struct rn_log log;

    /* Hooks up to run.c (may be NULL). */
    void (*check_done)(struct run *run);    /* a check, exec or wait finished */
    void (*timeline_over)(struct run *run); /* the last event played, duration reached */

    char *dir;
    char *sock_dir;
    bool sock_dir_owned; /* removed at teardown */
    FILE *events_log;

    struct trace_db *db;
    struct netback *nb;
    struct blkback *bb;
    struct hv_image *images;
    size_t n_images;
    struct rn_node *nodes;
    int64_t *link_ids; /* trace ids of scen->links */
    int64_t *network_ids;

    /* Time (the clock itself is run->clock). */
    int64_t boot_start_ns;
    size_t next_event;
    size_t nodes_ready;
    /* Events played after their planned time (timeline.c). */
    int64_t late_max_ns;
    size_t late_events; /* late by more than RN_LATE_WARN_NS */
    struct fl_timer *timeline_timer;
    struct fl_timer *boot_timer;
    struct fl_timer *view_timer;
    struct fl_timer *drain_timer;

    /* Partition window in the trace. */
    int64_t partition_event;
    char *partition_label;

    /* Checks. */
    struct rn_result *results;
    size_t n_results, results_alloc;
    struct rn_pending **pending;
    size_t n_pending, pending_alloc;

    /* Outcome. */
    bool interrupted;
    struct fl_buf unrecorded; /* records that could not be written, "what: why; ..." */
    int unrecorded_code;      /* errno of the first */
    bool host_error_seen;     /* blkback reported a host I/O error (recorded once) */
    bool report_written;
    char *summary_text;     /* summary.json as written (runner_outcome.summary_json) */
    struct fl_error *infra; /* first infrastructure error */
    enum runner_result result;

    /* Recorded nodes (runner/record.c); NULL when nothing is recorded. */
    struct rn_record *record;

    /* Live view. */
    FILE *human; /* stdout, or stderr with runner_options.human_to_stderr */
    bool live;
    bool quiet;
    unsigned view_lines;
};

static inline const char *rn_node_name(const struct run *run, uint32_t node)
{
    return run->scen->nodes[node].name;
}

#endif /* FL_RUNNER_INTERNAL_H */
