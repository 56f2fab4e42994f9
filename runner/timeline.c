/*
 * Playing the timeline.  Events are sorted by timeline time (topology/
 * resolved everything: cut sets, link parameters, nemesis draws).  One
 * timer is armed for the next event; the timeline clock is
 *
 *     timeline_now = mono - t0 - held
 *
 * where `held` sums the time a `wait` or a foreground `exec` held the
 * timeline, so an event at T happens T after time zero plus the holds
 * before it (topology/topology.h).
 */
#include <stdlib.h>
#include <string.h>

#include "runner/checks.h"
#include "runner/record.h"
#include "runner/timeline.h"

static void schedule(struct run *run)
{
    if (run->phase != RN_TIMELINE || run->clock.holds) {
        return;
    }
    int64_t next = run->next_event < run->scen->n_events ? run->scen->events[run->next_event].at_ns
                                                         : run->scen->duration_ns;
    fl_timer_arm(run->timeline_timer, run->clock.t0 + run->clock.held_ns + next);
}

/* The clock's hook: a hold stops the timer; the end of the last one
 * schedules the next event. */
static void on_clock_changed(void *arg)
{
    struct run *run = arg;
    if (run->clock.holds) {
        fl_timer_disarm(run->timeline_timer);
    } else {
        schedule(run);
    }
}

/* ---- events ---- */

static void trace_window_end(struct run *run, int64_t *event_id)
{
    if (*event_id > 0 && run->db) {
        trace_event_end(run->db, *event_id, fl_loop_now(run->loop));
    }
    *event_id = 0;
}

static int64_t trace_ev(struct run *run, const char *kind, int64_t node_id, const char *detail)
{
    return run->db ? trace_event(run->db, fl_loop_now(run->loop), kind, node_id, detail) : 0;
}

static void apply_partition(struct run *run, const struct topo_event *ev)
{
    const struct topo_ev_partition *p = &ev->u.partition;
    struct nb_cut *cuts = fl_xcalloc(p->n_state ? p->n_state : 1, sizeof *cuts);
    for (size_t i = 0; i < p->n_state; i++) {
        cuts[i].src = rn_node_name(run, p->state[i].src);
        cuts[i].dst = rn_node_name(run, p->state[i].dst);
    }
    struct fl_error *err = NULL;
    if (!nb_partition_apply(run->nb, cuts, p->n_state, &err)) {
        rn_log(&run->log, "error", "%s: %s", p->label, err->msg);
        fl_error_free(err);
        free(cuts);
        return;
    }
    free(cuts);
    trace_window_end(run, &run->partition_event);
    free(run->partition_label);
    run->partition_label = NULL;
    if (p->n_state) {
        run->partition_label = fl_xstrdup(p->label);
        run->partition_event = trace_ev(run, "partition", 0, p->label);
    } else {
        trace_ev(run, "heal", 0, p->label);
    }
    rn_log(&run->log, topo_event_kind_name(ev->kind), "%s (%zu direction%s cut now)", p->label,
           p->n_state, p->n_state == 1 ? "" : "s");
}

static void apply_link(struct run *run, const struct topo_event *ev)
{
    const struct topo_ev_link *l = &ev->u.link;
    struct fl_buf words = {0};
    for (size_t i = 0; i < l->n_changes; i++) {
        const struct topo_link *link = &run->scen->links[l->changes[i].link];
        const struct topo_network *net = &run->scen->networks[link->network];
        struct fl_error *err = NULL;
        if (!nb_link_set(run->nb, net->name, rn_node_name(run, link->src),
                         rn_node_name(run, link->dst), &l->changes[i].params, &err)) {
            rn_log(&run->log, "error", "%s: %s", link->name, err->msg);
            fl_error_free(err);
            continue;
        }
        fl_buf_reset(&words);
        impair_link_params_format(&l->changes[i].params, &words);
        if (run->db) {
            trace_link_params(run->db, run->link_ids[l->changes[i].link], fl_loop_now(run->loop),
                              words.size ? words.data : "none");
        }
    }
    fl_buf_reset(&words);
    if (l->n_changes) {
        impair_link_params_format(&l->changes[0].params, &words);
    }
    trace_ev(run, "link", 0, l->label);
    rn_log(&run->log, topo_event_kind_name(ev->kind), "%s: %s (%zu link%s)", l->label,
           words.size ? words.data : "no impairment", l->n_changes, l->n_changes == 1 ? "" : "s");
    fl_buf_free(&words);
}

static enum bb_crash_policy bb_policy(enum topo_crash_policy p)
{
    enum bb_crash_policy out = BB_CRASH_DEFAULT;
    bb_crash_policy_parse(topo_crash_policy_name(p), &out, NULL);
    return out;
}

static void node_crash(struct run *run, uint32_t index, const struct topo_event *ev)
{
    struct rn_node *n = &run->nodes[index];
    struct fl_error *err = NULL;
    n->expect_exit = true;
    n->down = true;
    n->ready = false;
    if (!hv_node_crash(n->hv, &err)) {
        rn_log(&run->log, "error", "crash %s: %s", n->topo->name, err->msg);
        fl_error_free(err);
    }
    /* The power cut reaches the disks at the same instant: whatever is
     * still in their volatile caches meets the crash policy. */
    struct fl_buf disks = {0};
    for (size_t d = 0; d < n->topo->n_disks; d++) {
        const struct topo_disk *td = &n->topo->disks[d];
        struct bb_disk *bd = bb_disk_find(run->bb, n->topo->name, td->name);
        if (!bd) {
            continue;
        }
        enum topo_crash_policy tp =
            ev && ev->u.node.has_policy ? ev->u.node.policy : td->crash_policy;
        struct bb_crash_report rep = {0};
        int r = bb_disk_crash(bd, bb_policy(tp), &rep);
        if (r < 0) {
            fl_buf_printf(&disks, "; %s: crash failed: %s", td->name, strerror(-r));
        } else {
            fl_buf_printf(&disks, "; %s (%s): %llu unflushed write%s lost, %llu torn, %llu kept",
                          td->name, bb_crash_policy_name(rep.policy),
                          (unsigned long long)rep.writes_lost, rep.writes_lost == 1 ? "" : "s",
                          (unsigned long long)rep.writes_torn, (unsigned long long)rep.writes_kept);
        }
    }
    trace_window_end(run, &n->window_event);
    n->window_event = trace_ev(run, "crash", n->trace_id, disks.size ? disks.data + 2 : NULL);
    rn_log(&run->log, "crash", "%s: power cut%s", n->topo->name, disks.size ? disks.data : "");
    fl_buf_free(&disks);
}

static void apply_node(struct run *run, const struct topo_event *ev)
{
    struct rn_node *n = &run->nodes[ev->u.node.node];
    const char *name = n->topo->name;
    struct fl_error *err = NULL;
    bool ok = true;
    switch (ev->kind) {
    case TOPO_EV_CRASH:
        node_crash(run, ev->u.node.node, ev);
        return;
    case TOPO_EV_RESTART:
        n->down = false;
        n->restarting = true;
        n->expect_exit = false;
        n->boot_start_ns = fl_loop_now(run->loop);
        ok = rn_record_segment_start(run, ev->u.node.node, &err) && hv_node_boot(n->hv, &err);
        trace_ev(run, "restart", n->trace_id, NULL);
        break;
    case TOPO_EV_SHUTDOWN:
        n->expect_exit = true;
        n->down = true;
        n->ready = false;
        ok = hv_node_poweroff(n->hv, 0, &err);
        trace_window_end(run, &n->window_event);
        n->window_event = trace_ev(run, "exit", n->trace_id, "shutdown");
        break;
    case TOPO_EV_PAUSE:
        ok = hv_node_pause(n->hv, &err);
        trace_window_end(run, &n->window_event);
        n->window_event = trace_ev(run, "pause", n->trace_id, NULL);
        break;
    case TOPO_EV_RESUME:
        ok = hv_node_resume(n->hv, &err);
        trace_window_end(run, &n->window_event);
        trace_ev(run, "resume", n->trace_id, NULL);
        break;
    case TOPO_EV_REBOOT:
        n->restarting = true;
        n->ready = false;
        n->boot_start_ns = fl_loop_now(run->loop);
        ok = hv_node_reset(n->hv, &err);
        trace_ev(run, "restart", n->trace_id, "reboot (hard reset)");
        break;
    default:
        return;
    }
    if (!ok) {
        rn_log(&run->log, "error", "%s %s: %s", topo_event_kind_name(ev->kind), name, err->msg);
        if (run->db) {
            trace_ev(run, "error", n->trace_id, err->msg);
        }
        fl_error_free(err);
        return;
    }
    rn_log(&run->log, topo_event_kind_name(ev->kind), "%s", name);
}

static void clock_done(struct hv_node *node, const struct fl_error *err, void *arg)
{
    struct run *run = arg;
    if (err) {
        rn_log(&run->log, "error", "clock %s: %s", hv_node_name(node), err->msg);
    }
}

static void apply_clock(struct run *run, const struct topo_event *ev)
{
    const struct topo_ev_clock *c = &ev->u.clock;
    struct rn_node *n = &run->nodes[c->node];
    struct fl_error *err = NULL;
    char delta[32], offset[32];
    impair_format_duration(llabs(c->delta_ns), delta, sizeof delta);
    impair_format_duration(llabs(c->offset_ns), offset, sizeof offset);
    if (!hv_node_clock_set(n->hv, HV_CLOCK_JUMP, c->delta_ns, clock_done, run, &err)) {
        rn_log(&run->log, "error", "clock %s: %s", n->topo->name, err->msg);
        fl_error_free(err);
        return;
    }
    char *detail = fl_xasprintf("jump %s%s, offset now %s%s", c->delta_ns < 0 ? "-" : "+", delta,
                                c->offset_ns < 0 ? "-" : "+", offset);
    trace_ev(run, "clock", n->trace_id, detail);
    rn_log(&run->log, "clock", "%s: %s", n->topo->name, detail);
    free(detail);
}

static void apply_disk(struct run *run, const struct topo_event *ev)
{
    const struct topo_ev_disk *d = &ev->u.disk;
    const struct topo_node *tn = &run->scen->nodes[d->node];
    const struct topo_disk *td = &tn->disks[d->disk];
    struct bb_disk *bd = bb_disk_find(run->bb, tn->name, td->name);
    if (!bd) {
        rn_log(&run->log, "error", "disk %s:%s is not served", tn->name, td->name);
        return;
    }
    struct fl_error *err = NULL;
    if (!bb_disk_set_faults(bd, &d->faults, &err)) {
        rn_log(&run->log, "error", "disk %s:%s: %s", tn->name, td->name, err->msg);
        fl_error_free(err);
        return;
    }
    bb_disk_set_capacity(bd, d->capacity_bytes);
    bb_disk_stall(bd, d->stall);
    struct fl_buf words = {0};
    impair_disk_params_format(&d->faults, &words);
    if (d->capacity_bytes) {
        char size[32];
        fl_buf_printf(&words, "%scapacity %s", words.size ? " " : "",
                      impair_format_size(d->capacity_bytes, size, sizeof size));
    }
    if (d->stall) {
        fl_buf_printf(&words, "%sstall", words.size ? " " : "");
    }
    char *detail = fl_xasprintf("%s: %s", td->name, words.size ? words.data : "no faults");
    trace_ev(run, "disk", run->nodes[d->node].trace_id, detail);
    rn_log(&run->log, topo_event_kind_name(ev->kind), "%s:%s", tn->name, detail);
    free(detail);
    fl_buf_free(&words);
}

static void apply(struct run *run, const struct topo_event *ev)
{
    switch (ev->kind) {
    case TOPO_EV_PARTITION:
    case TOPO_EV_HEAL:
        apply_partition(run, ev);
        break;
    case TOPO_EV_LINK_SET:
    case TOPO_EV_LINK_CLEAR:
        apply_link(run, ev);
        break;
    TOPO_EV_NODE_CASES:
        apply_node(run, ev);
        break;
    case TOPO_EV_CLOCK:
        apply_clock(run, ev);
        break;
    case TOPO_EV_DISK_SET:
    case TOPO_EV_DISK_CLEAR:
        apply_disk(run, ev);
        break;
    case TOPO_EV_EXEC:
        rn_exec_start(run, ev);
        break;
    case TOPO_EV_MARK:
        trace_ev(run, "note", 0, ev->u.mark);
        rn_log(&run->log, "mark", "%s", ev->u.mark);
        break;
    case TOPO_EV_WAIT:
        rn_wait_start(run, ev);
        break;
    case TOPO_EV_CHECK:
        rn_check_start(run, &run->scen->checks[ev->u.check], ev);
        break;
    case TOPO_EV__COUNT:
        break;
    }
}

/* A stopped or starved controller (SIGSTOP, a swapping host) plays an
 * event after its time: events.log keeps the planned time (two runs with
 * one seed log the same lines), so the lateness gets a line of its own,
 * a trace event for the report, and the summary's tally. */
static void note_lateness(struct run *run, const struct topo_event *ev, int64_t late_ns)
{
    run->late_max_ns = FL_MAX(run->late_max_ns, late_ns);
    if (late_ns <= RN_LATE_WARN_NS) {
        return;
    }
    run->late_events++;
    char *detail = fl_xasprintf(
        "%s (%s) planned at +%lld.%03llds, played at +%lld.%03llds: %lld.%03llds late",
        topo_event_kind_name(ev->kind), ev->source, (long long)(ev->at_ns / FL_NS_PER_SEC),
        (long long)(ev->at_ns % FL_NS_PER_SEC / FL_NS_PER_MS),
        (long long)((ev->at_ns + late_ns) / FL_NS_PER_SEC),
        (long long)((ev->at_ns + late_ns) % FL_NS_PER_SEC / FL_NS_PER_MS),
        (long long)(late_ns / FL_NS_PER_SEC), (long long)(late_ns % FL_NS_PER_SEC / FL_NS_PER_MS));
    trace_ev(run, "late", 0, detail);
    rn_log(&run->log, "late", "%s", detail);
    free(detail);
}

static void on_timeline(struct fl_loop *loop, struct fl_timer *t, void *arg)
{
    struct run *run = arg;
    if (run->phase != RN_TIMELINE) {
        return;
    }
    while (!run->clock.holds && run->next_event < run->scen->n_events &&
           run->scen->events[run->next_event].at_ns <= rn_clock_now(&run->clock)) {
        const struct topo_event *ev = &run->scen->events[run->next_event++];
        int64_t late = rn_clock_now(&run->clock) - ev->at_ns;
        run->log.at = ev->at_ns;
        apply(run, ev);
        run->log.at = INT64_MIN;
        note_lateness(run, ev, late);
        if (run->phase != RN_TIMELINE) {
            return; /* an infrastructure error ended the run */
        }
    }
    if (!run->clock.holds && run->next_event == run->scen->n_events &&
        rn_clock_now(&run->clock) >= run->scen->duration_ns) {
        fl_timer_disarm(run->timeline_timer);
        if (run->timeline_over) {
            run->timeline_over(run);
        }
        return;
    }
    schedule(run);
}

void rn_timeline_start(struct run *run)
{
    run->timeline_timer = fl_timer_create(run->loop, on_timeline, run);
    run->clock.changed = on_clock_changed;
    run->clock.changed_arg = run;
    schedule(run);
}
