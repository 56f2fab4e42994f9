/*
 * One run, start to finish: wiring topology into trace, netback, blkback
 * and hv; booting; handing over to the timeline; teardown and the files
 * that outlive the run.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner/checks.h"
#include "runner/record.h"
#include "runner/rundir.h"
#include "runner/setup.h"
#include "runner/timeline.h"
#include "runner/view.h"

FL_NAME_TABLE(result_names, RUNNER_RESULTS);

const char *runner_result_name(enum runner_result result)
{
    return FL_NAME_OF(result_names, result);
}

void runner_outcome_clear(struct runner_outcome *out)
{
    if (out) {
        free(out->run_dir);
        free(out->report);
        free(out->summary_json);
        memset(out, 0, sizeof *out);
    }
}

/* Every phase change of a run goes through here. */
static void set_phase(struct run *run, enum rn_phase phase)
{
    run->phase = phase;
    if (phase == RN_DONE) {
        fl_loop_stop(run->loop);
    }
}

/* Takes err; ends the run. */
static void infra_error(struct run *run, struct fl_error *err)
{
    rn_log(&run->log, "error", "%s", err->msg);
    if (run->db) {
        trace_event(run->db, fl_clock_mono_ns(), "error", 0, err->msg);
    }
    if (!run->infra) {
        run->infra = err;
    } else {
        fl_error_free(err);
    }
    set_phase(run, RN_DONE);
}

/* blkback: the host failed under a disk's backing file (ENOSPC, EIO).
 * The guest saw an I/O error that no fault injected, so the run cannot
 * vouch for what follows: the failure goes into run.db (host_errors and
 * an error event on the node) and ends the run as an infrastructure
 * error naming the disk and the file.  blkback calls this for every
 * failed request; only the first is recorded (it has logged the first of
 * each errno itself). */
static void on_host_error(void *arg, const struct bb_host_error *e)
{
    struct run *run = arg;
    if (run->host_error_seen) {
        return;
    }
    run->host_error_seen = true;
    char *what = fl_xasprintf("%s while the guest used it", e->op);
    if (run->db) {
        int64_t node_id = trace_node_id(run->db, e->node);
        int64_t disk_id = node_id > 0 ? trace_disk_id(run->db, node_id, e->disk, 0) : 0;
        trace_host_error(run->db, &(struct trace_host_error){
                                      .t_ns = TRACE_NO_TIME,
                                      .what = "disk",
                                      .node_id = node_id > 0 ? node_id : 0,
                                      .disk_id = disk_id > 0 ? disk_id : 0,
                                      .name = e->disk,
                                      .path = e->path,
                                      .errnum = e->err,
                                      .message = what,
                                  });
    }
    free(what);
    struct fl_error *err = NULL;
    fl_error_setf(&err, e->err,
                  "the host failed under disk %s of %s: %s %s: %s (an I/O error no fault "
                  "injected; free space or repair the host file system, then run again)",
                  e->disk, e->node, e->op, e->path, strerror(e->err));
    rn_log(&run->log, "error", "%s", err->msg);
    if (!run->infra) {
        run->infra = err;
    } else {
        fl_error_free(err);
    }
    set_phase(run, RN_DONE);
}

/* The checks' hook: the run ends when the end checks are done. */
static void maybe_finish(struct run *run)
{
    if (run->phase == RN_END_CHECKS && !rn_checks_busy(run)) {
        set_phase(run, RN_DONE);
    }
}

/* The timeline's hook. */
static void timeline_over(struct run *run)
{
    set_phase(run, RN_END_CHECKS);
    rn_log(&run->log, "end", "timeline over; running end checks");
    rn_end_checks(run);
    maybe_finish(run);
}

/* ---- hv callbacks ---- */

static void on_ready(struct hv_node *hv, void *arg)
{
    struct rn_node *n = arg;
    struct run *run = n->run;
    double secs = (double)(fl_loop_now(run->loop) - n->boot_start_ns) / 1e9;
    n->ready = true;
    if (run->db) {
        trace_event(run->db, fl_loop_now(run->loop), "ready", n->trace_id, NULL);
    }
    if (run->phase == RN_BOOT) {
        rn_log(&run->log, "ready", "%s (booted in %.1fs)", n->topo->name, secs);
        if (++run->nodes_ready == run->scen->n_nodes) {
            fl_timer_destroy(run->boot_timer);
            run->boot_timer = NULL;
            run->clock.t0 = fl_loop_now(run->loop);
            if (run->db) {
                trace_db_set_epoch(run->db, run->clock.t0);
            }
            rn_log(&run->log, "start", "all %zu nodes ready in %.1fs: time zero; timeline of %.1fs",
                   run->scen->n_nodes, (double)(run->clock.t0 - run->boot_start_ns) / 1e9,
                   (double)run->scen->duration_ns / 1e9);
            set_phase(run, RN_TIMELINE);
            rn_timeline_start(run);
        }
        return;
    }
    if (n->window_event > 0 && run->db) {
        trace_event_end(run->db, n->window_event, fl_loop_now(run->loop));
    }
    n->window_event = 0;
    n->restarting = false;
    rn_log(&run->log, "ready", "%s (up again in %.1fs)", n->topo->name, secs);
}

static void on_exit_cb(struct hv_node *hv, bool unexpected, int status, void *arg)
{
    struct rn_node *n = arg;
    struct run *run = n->run;
    n->ready = false;
    rn_record_segment_end(run, (size_t)(n - run->nodes), status);
    if (!unexpected || n->expect_exit) {
        return;
    }
    char *msg = fl_xasprintf("QEMU of %s exited unexpectedly (status 0x%x); its console log is "
                             "%s/console/%s.log",
                             n->topo->name, status, run->dir, n->topo->name);
    if (run->phase == RN_BOOT) {
        struct fl_error *err = NULL;
        fl_error_setf(&err, EIO, "%s", msg);
        free(msg);
        infra_error(run, err);
        return;
    }
    n->down = true;
    if (run->db) {
        trace_event(run->db, fl_loop_now(run->loop), "exit", n->trace_id, msg);
    }
    rn_log(&run->log, "exit", "%s", msg);
    free(msg);
}

static void on_fail(struct hv_node *hv, const struct fl_error *e, void *arg)
{
    struct rn_node *n = arg;
    struct run *run = n->run;
    if (run->phase == RN_BOOT || n->restarting) {
        struct fl_error *err = NULL;
        fl_error_setf(&err, e->code ? e->code : EIO, "%s: %s (console log: %s/console/%s.log)",
                      n->topo->name, e->msg, run->dir, n->topo->name);
        infra_error(run, err);
        return;
    }
    if (run->db) {
        trace_event(run->db, fl_loop_now(run->loop), "error", n->trace_id, e->msg);
    }
    rn_log(&run->log, "error", "%s: %s", n->topo->name, e->msg);
}

static void on_state(struct hv_node *hv, enum hv_node_state state, void *arg)
{
    struct rn_node *n = arg;
    if (state == HV_NODE_PAUSED || state == HV_NODE_READY) {
        fl_log(FL_LOG_DEBUG, "runner", "%s is %s", n->topo->name, hv_node_state_name(state));
    }
}

static const struct hv_callbacks node_callbacks = {
    .on_ready = on_ready,
    .on_exit = on_exit_cb,
    .on_fail = on_fail,
    .on_state = on_state,
};

/* ---- netback callbacks ---- */

static void on_port_connected(void *arg, const char *network, const char *node, const char *nic)
{
    fl_log(FL_LOG_DEBUG, "runner", "%s/%s connected on %s", node, nic, network);
}

static void on_port_disconnected(void *arg, const char *network, const char *node, const char *nic,
                                 enum nb_disconnect_reason reason, const char *detail)
{
    struct run *run = arg;
    if (reason == NB_DISCONNECT_REMOVED) {
        return;
    }
    int idx = topo_node_find(run->scen, node);
    if (reason == NB_DISCONNECT_EOF && idx >= 0 && run->nodes[idx].expect_exit) {
        return; /* the timeline crashed or stopped it */
    }
    char *msg = fl_xasprintf("%s/%s on %s: %s (%s)", node, nic, network,
                             nb_disconnect_reason_name(reason), detail);
    if (run->db) {
        trace_event(run->db, fl_loop_now(run->loop), "disconnect",
                    idx >= 0 ? run->nodes[idx].trace_id : 0, msg);
    }
    if (reason == NB_DISCONNECT_MALFORMED) {
        rn_log(&run->log, "disconnect", "%s", msg);
    }
    free(msg);
}

static const struct nb_events nb_events = {
    .port_connected = on_port_connected,
    .port_disconnected = on_port_disconnected,
};

static void on_boot_timeout(struct fl_loop *loop, struct fl_timer *t, void *arg)
{
    struct run *run = arg;
    struct fl_buf slow = {0};
    for (size_t i = 0; i < run->scen->n_nodes; i++) {
        if (!run->nodes[i].ready) {
            fl_buf_printf(&slow, "%s%s", slow.size ? ", " : "", run->nodes[i].topo->name);
        }
    }
    struct fl_error *err = NULL;
    fl_error_setf(&err, ETIMEDOUT,
                  "not every node was ready within run.boot-timeout %.0fs (not ready: %s); see "
                  "the console logs in %s/console/",
                  (double)run->scen->boot_timeout_ns / 1e9, slow.data ? slow.data : "?", run->dir);
    fl_buf_free(&slow);
    infra_error(run, err);
}

static bool boot_all(struct run *run, struct fl_error **errp)
{
    set_phase(run, RN_BOOT);
    run->boot_start_ns = fl_loop_now(run->loop);
    /* hv enforces each node's ready timeout; this one covers the fleet. */
    run->boot_timer = fl_timer_create(run->loop, on_boot_timeout, run);
    fl_timer_arm(run->boot_timer, run->boot_start_ns + run->scen->boot_timeout_ns + FL_NS_PER_SEC);
    for (size_t i = 0; i < run->scen->n_nodes; i++) {
        run->nodes[i].boot_start_ns = fl_loop_now(run->loop);
        if (!rn_record_segment_start(run, i, errp) || !hv_node_boot(run->nodes[i].hv, errp)) {
            return false; /* hv's messages name the node */
        }
        if (run->db) {
            trace_event(run->db, fl_loop_now(run->loop), "boot", run->nodes[i].trace_id, NULL);
        }
    }
    rn_log(&run->log, "boot", "%zu node%s booting", run->scen->n_nodes,
           run->scen->n_nodes == 1 ? "" : "s");
    return true;
}

static void on_signal(struct fl_loop *loop, int signo, void *arg)
{
    struct run *run = arg;
    if (run->interrupted) {
        return;
    }
    run->interrupted = true;
    rn_log(&run->log, "interrupt", "%s: tearing down (partial results are kept)", strsignal(signo));
    set_phase(run, RN_DONE);
}

/* ---- loading ---- */

static bool load(struct run *run, struct fl_error **errp)
{
    const struct runner_options *o = run->opts;
    const char *path = o->scenario_path;
    uint64_t seed = o->seed;
    bool has_seed = o->has_seed;
    char *replay_path = NULL;
    if (o->replay_of) {
        char *seed_file = fl_xasprintf("%s/seed", o->replay_of);
        char *text = fl_read_file(seed_file, NULL, errp);
        free(seed_file);
        if (!text) {
            fl_error_prepend(errp, "--replay-of '%s' is not a run directory: ", o->replay_of);
            return false;
        }
        char *end;
        errno = 0;
        unsigned long long v = strtoull(text, &end, 10);
        if (errno || end == text) {
            fl_error_setf(errp, EINVAL, "--replay-of '%s': seed file holds '%s', not a number",
                          o->replay_of, text);
            free(text);
            return false;
        }
        free(text);
        if (!has_seed) {
            seed = v;
            has_seed = true;
        }
        if (!path) {
            replay_path = fl_xasprintf("%s/scenario.yaml", o->replay_of);
            path = replay_path;
        }
    }
    if (!path) {
        fl_error_setf(errp, EINVAL, "no scenario file given (faultline run FILE)");
        return false;
    }
    run->scenario_text = fl_read_file(path, &run->scenario_size, errp);
    if (!run->scenario_text) {
        free(replay_path);
        return false;
    }
    run->scen = topo_load_file_seed(path, has_seed ? &seed : NULL, errp);
    free(replay_path);
    return run->scen != NULL;
}

/* ---- teardown ---- */

/* A record the run promised (run.db, pcaps, events.log, junit.xml,
 * summary.json, report.html) could not be written, typically a full disk:
 * the run cannot vouch for its verdict, so it ends as an infrastructure
 * error (exit 3) naming every loss; what can still be written is. */
static void lost_record(struct run *run, const char *what, int code)
{
    fl_buf_printf(&run->unrecorded, "%s%s: %s", run->unrecorded.size ? "; " : "", what,
                  strerror(code));
    rn_log(&run->log, "error", "could not write %s: %s", what, strerror(code));
    if (!run->unrecorded_code) {
        run->unrecorded_code = code;
    }
}

/* The verdict, given what could be recorded. */
static void settle(struct run *run)
{
    if (!run->unrecorded.size || run->result == RUNNER_INTERRUPTED) {
        return;
    }
    run->result = RUNNER_ERROR;
    if (!run->infra) {
        fl_error_setf(&run->infra, run->unrecorded_code,
                      "the run could not record what it promised in %s (%s)", run->dir,
                      run->unrecorded.data);
    }
}

static void write_record(struct run *run, const char *what,
                         bool (*write)(struct run *, struct fl_error **))
{
    struct fl_error *ferr = NULL;
    if (!write(run, &ferr)) {
        lost_record(run, what, ferr && ferr->code ? ferr->code : EIO);
        fl_error_free(ferr);
    }
    settle(run); /* the files written next carry the verdict as it is now */
}

static bool write_report(struct run *run, struct fl_error **errp)
{
    return trace_report_write(run->dir, errp);
}

static void teardown(struct run *run)
{
    rn_checks_abort(run, run->interrupted ? "interrupted before it finished"
                                          : "the run ended before it finished");
    fl_timer_destroy(run->timeline_timer);
    fl_timer_destroy(run->boot_timer);
    fl_timer_destroy(run->drain_timer);
    run->timeline_timer = run->boot_timer = run->drain_timer = NULL;
    rn_record_stop_all(run);
    if (run->nodes) {
        for (size_t i = 0; i < run->scen->n_nodes; i++) {
            hv_node_destroy(run->nodes[i].hv);
            run->nodes[i].hv = NULL;
        }
    }
    if (run->db && run->partition_event > 0) {
        trace_event_end(run->db, run->partition_event, fl_clock_mono_ns());
    }
    if (run->nb) {
        int r = nb_flush(run->nb); /* the first failed pcap write, sticky */
        if (r < 0) {
            lost_record(run, "pcap/", -r);
        }
    }
    nb_destroy(run->nb);
    run->nb = NULL;
    bb_destroy(run->bb);
    run->bb = NULL;
    if (run->sock_dir_owned && run->sock_dir) {
        fl_rm_rf(run->sock_dir);
    }
}

static void free_run(struct run *run)
{
    if (run->nodes) {
        for (size_t i = 0; i < run->scen->n_nodes; i++) {
            for (size_t k = 0; k < run->nodes[i].n_strings; k++) {
                free(run->nodes[i].strings[k]);
            }
            free(run->nodes[i].strings);
        }
    }
    free(run->nodes);
    for (size_t i = 0; i < run->n_images; i++) {
        hv_image_clear(&run->images[i]);
    }
    free(run->images);
    for (size_t i = 0; i < run->n_results; i++) {
        struct rn_result *r = &run->results[i];
        free(r->name);
        free(r->node);
        free(r->command);
        free(r->source);
        free(r->out);
        free(r->err);
        free(r->message);
    }
    free(run->results);
    free(run->pending);
    free(run->link_ids);
    free(run->network_ids);
    free(run->partition_label);
    rn_record_free(run);
    fl_buf_free(&run->unrecorded);
    if (run->events_log) {
        fclose(run->events_log);
    }
    fl_loop_destroy(run->loop);
    topo_scenario_free(run->scen);
    free(run->scenario_text);
    free(run->dir);
    free(run->sock_dir);
    free(run->summary_text);
    fl_error_free(run->infra);
}

/* Messages may carry guest text (an agent's error): shown escaped. */
static void print_escaped(FILE *f, const char *fmt, const char *s)
{
    char *e = fl_text_terminal_dup(s);
    fprintf(f, fmt, e);
    free(e);
}

static void print_summary(struct run *run)
{
    if (run->quiet) {
        return;
    }
    size_t failed = 0;
    for (size_t i = 0; i < run->n_results; i++) {
        failed += !run->results[i].passed;
    }
    fprintf(run->human, "\n%s: %s", run->scen->name, runner_result_name(run->result));
    if (run->n_results) {
        fprintf(run->human, " (%zu of %zu check%s passed)", run->n_results - failed, run->n_results,
                run->n_results == 1 ? "" : "s");
    }
    fprintf(run->human, "\n");
    for (size_t i = 0; i < run->n_results; i++) {
        const struct rn_result *r = &run->results[i];
        fprintf(run->human, "  %s %-28s %s%s", r->passed ? "PASS" : "FAIL", r->name, r->node,
                r->passed ? "" : ": ");
        print_escaped(run->human, "%s\n", r->passed ? "" : r->message);
        if (!r->passed && r->rr_segment >= 0) {
            fprintf(run->human, "       replay %s: faultline replay %s %s --segment %d\n", r->node,
                    run->dir, r->node, r->rr_segment);
        }
    }
    if (run->infra) {
        print_escaped(run->human, "  error: %s\n", run->infra->msg);
    }
    fprintf(run->human, "run directory: %s\n", run->dir);
    if (run->report_written) {
        fprintf(run->human, "report:        %s/report.html\n", run->dir);
    }
    fprintf(run->human, "replay:        faultline run --replay-of %s\n", run->dir);
}

bool runner_run(const struct runner_options *opts, struct runner_outcome *out,
                struct fl_error **errp)
{
    memset(out, 0, sizeof *out);
    struct run runv = {0}, *run = &runv;
    run->opts = opts;
    run->clock.run_start_ns = fl_clock_mono_ns();
    rn_log_init(&run->log, &run->clock);
    run->guest = &rn_guest_hv;
    run->check_done = maybe_finish;
    run->timeline_over = timeline_over;
    run->result = RUNNER_ERROR;
    run->human = opts->human_to_stderr ? stderr : stdout;
    struct fl_error *err = NULL;

    if (!load(run, &err) || !rn_record_check(run, &err)) {
        out->result = RUNNER_INVALID;
        fl_error_propagate(errp, err);
        free_run(run);
        return false;
    }
    if (opts->out_dir && !rn_dir_check_out(opts->out_dir, &err)) {
        out->result = RUNNER_INVALID;
        fl_error_propagate(errp, err);
        free_run(run);
        return false;
    }
    run->loop = fl_loop_create(NULL, &err);
    run->clock.loop = run->loop;
    if (!run->loop || !rn_dir_create(run, &err)) {
        /* Losing the claim to another run is a usage error (exit 2): the
         * directory is theirs, and nothing was written into it. */
        bool lost = err && err->code == EEXIST;
        out->result = lost ? RUNNER_INVALID : RUNNER_ERROR;
        fl_error_propagate(errp, err);
        out->run_dir = run->dir && !lost ? fl_xstrdup(run->dir) : NULL;
        free_run(run);
        return false;
    }
    out->run_dir = fl_xstrdup(run->dir);
    run->nodes = fl_xcalloc(run->scen->n_nodes + 1, sizeof *run->nodes);
    for (size_t i = 0; i < run->scen->n_nodes; i++) {
        run->nodes[i].run = run;
        run->nodes[i].topo = &run->scen->nodes[i];
    }
    /* SIGPIPE never kills the controller; SIGINT/SIGTERM tear down. */
    signal(SIGPIPE, SIG_IGN);
    fl_loop_add_signal(run->loop, SIGINT, on_signal, run);
    fl_loop_add_signal(run->loop, SIGTERM, on_signal, run);
    rn_view_start(run);
    rn_log(&run->log, "scenario", "%s (%s), seed %llu%s", run->scen->name, run->scen->file,
           (unsigned long long)run->scen->seed, run->scen->seed_random ? " (drawn)" : "");
    rn_log(&run->log, "run-dir", "%s", run->dir);

    bool ok = rn_setup_trace(run, &err) && rn_build_images(run, &err) &&
              rn_setup_net(run, &nb_events, &err) && rn_setup_disks(run, on_host_error, &err) &&
              rn_setup_nodes(run, &node_callbacks, &err) && rn_record_setup(run, &err) &&
              boot_all(run, &err);
    if (!ok && run->interrupted) {
        fl_error_free(err); /* a setup step stopped by the signal: not an error */
        err = NULL;
    } else if (!ok) {
        infra_error(run, err);
        err = NULL;
    } else if (!run->interrupted) {
        int r = fl_loop_run(run->loop);
        if (r < 0 && !run->infra) {
            fl_error_setf(&run->infra, -r, "event loop failed: %s", strerror(-r));
        }
    }

    /* Verdict. */
    size_t failed = 0;
    for (size_t i = 0; i < run->n_results; i++) {
        failed += !run->results[i].passed;
    }
    if (run->interrupted) {
        run->result = RUNNER_INTERRUPTED;
    } else if (run->infra) {
        run->result = RUNNER_ERROR;
    } else {
        run->result = failed ? RUNNER_FAIL : RUNNER_PASS;
    }
    rn_view_stop(run);
    teardown(run);
    rn_checks_abort(run, "the run ended before it finished");
    failed = 0;
    for (size_t i = 0; i < run->n_results; i++) {
        failed += !run->results[i].passed;
    }
    if (run->result == RUNNER_PASS && failed) {
        run->result = RUNNER_FAIL;
    }
    /* What the run promised to record, each part on its own: one that
     * fails (a full disk) never stops the others. */
    int db_state = run->db ? trace_db_flush(run->db) : 0;
    if (db_state < 0) {
        lost_record(run, "run.db", -db_state);
    }
    if (run->events_log && (fflush(run->events_log) != 0 || ferror(run->events_log))) {
        lost_record(run, "events.log", errno ? errno : EIO);
    }
    settle(run);
    if (run->db) {
        trace_run_end(run->db, runner_result_name(run->result), run->infra ? run->infra->msg : NULL,
                      TRACE_NO_TIME);
        if (db_state == 0 && (db_state = trace_db_flush(run->db)) < 0) {
            lost_record(run, "run.db", -db_state);
        }
        struct fl_error *dberr = NULL;
        if (!trace_db_finish(run->db, &dberr) && db_state == 0) {
            /* closing itself failed: statistics, indexes, WAL checkpoint */
            lost_record(run, "run.db", dberr->code ? dberr->code : EIO);
        }
        fl_error_free(dberr);
        run->db = NULL;
    }
    settle(run);
    write_record(run, "junit.xml", rn_write_junit);
    if (!opts->no_report) {
        size_t before = run->unrecorded.size;
        write_record(run, "report.html", write_report);
        if (run->unrecorded.size == before) {
            out->report = fl_xasprintf("%s/report.html", run->dir);
        }
    }
    run->report_written = out->report != NULL;
    write_record(run, "summary.json", rn_write_summary);
    settle(run);
    rn_log(&run->log, "verdict", "%s", runner_result_name(run->result));
    if (run->events_log && (fflush(run->events_log) != 0 || ferror(run->events_log))) {
        /* Too late to change the files above; stdout and the exit say it. */
        lost_record(run, "events.log", errno ? errno : EIO);
        settle(run);
    }
    print_summary(run);
    out->result = run->result;
    out->checks = run->n_results;
    out->checks_failed = failed;
    out->summary_json = run->summary_text;
    run->summary_text = NULL;
    bool completed = run->result == RUNNER_PASS || run->result == RUNNER_FAIL;
    if (!completed) {
        if (run->infra) {
            fl_error_setf(errp, run->infra->code, "%s", run->infra->msg);
        } else {
            fl_error_setf(errp, EINTR, "interrupted");
        }
    }
    free_run(run);
    return completed;
}
