/* runner/ internals: the state of one run, shared by its files. */
#ifndef FL_RUNNER_INTERNAL_H
#define FL_RUNNER_INTERNAL_H

#include <stdio.h>

#include "blkback/blkback.h"
#include "hv/hv.h"
#include "netback/netback.h"
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

enum rn_phase { RN_SETUP, RN_BOOT, RN_TIMELINE, RN_END_CHECKS, RN_DONE };

struct run {
    const struct runner_options *opts;
    struct topo_scenario *scen;
    char *scenario_text;
    size_t scenario_size;
    struct fl_loop *loop;
    enum rn_phase phase;

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

    /* Time. */
    int64_t run_start_ns; /* mono when the run began (before images) */
    int64_t boot_start_ns;
    int64_t t0;         /* mono at time zero; 0 until then */
    int64_t held_ns;    /* timeline time lost to holds so far */
    int64_t hold_start; /* mono when the current hold began */
    unsigned holds;     /* waits / foreground execs holding the timeline */
    size_t next_event;
    /* While an event is applied: its planned timeline time, which is what
     * events.log shows (so two runs with one seed log the same lines);
     * INT64_MIN otherwise (lines show the timeline clock). */
    int64_t log_at;
    size_t nodes_ready;
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
    struct fl_error *infra; /* first infrastructure error */
    enum runner_result result;

    /* Live view. */
    bool live;
    bool quiet;
    unsigned view_lines;
};

/* ---- rundir.c: files of the run directory ---- */
/* --out must be a new path or an empty directory. */
bool rn_dir_check_out(const char *path, struct fl_error **errp);
bool rn_dir_create(struct run *run, struct fl_error **errp);
/* A line of events.log (and of the view): "[+12.000s] kind  text".
 * Timeline time when the timeline runs, boot-relative before. */
void rn_log(struct run *run, const char *kind, const char *fmt, ...) FL_PRINTF(3, 4);
bool rn_write_junit(struct run *run, struct fl_error **errp);
bool rn_write_summary(struct run *run, struct fl_error **errp);

/* ---- view.c ---- */
void rn_view_start(struct run *run);
void rn_view_print(struct run *run, const char *line); /* above the status block */
void rn_view_stop(struct run *run);

/* ---- timeline.c ---- */
int64_t rn_timeline_now(const struct run *run);
void rn_timeline_start(struct run *run);
void rn_timeline_schedule(struct run *run);
void rn_timeline_hold(struct run *run);
void rn_timeline_release(struct run *run);
void rn_node_crash(struct run *run, uint32_t node, const struct topo_event *ev);

/* ---- checks.c ---- */
void rn_check_start(struct run *run, const struct topo_check *check, const struct topo_event *ev);
void rn_exec_start(struct run *run, const struct topo_event *ev);
void rn_wait_start(struct run *run, const struct topo_event *ev);
void rn_end_checks(struct run *run);
bool rn_checks_busy(const struct run *run); /* any result-bearing check still running */
void rn_checks_abort(struct run *run, const char *why);

/* ---- run.c ---- */
void rn_infra_error(struct run *run, struct fl_error *err); /* takes err; ends the run */
void rn_maybe_finish(struct run *run);
const char *rn_node_name(const struct run *run, uint32_t node);

#endif /* FL_RUNNER_INTERNAL_H */
