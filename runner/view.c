/*
 * The live view.  On a terminal a status block stays at the bottom and is
 * redrawn twice a second; event lines scroll above it:
 *
 *   [+12.004s] partition isolate n3 (cuts 4 directions)
 *   ── quickstart ── +12.4s of 40.0s ── seed 42 ──────────────
 *    n1  ready     n2  ready     n3  ready
 *    partition: isolate n3
 *    frames: 812 sent · 790 delivered · 22 dropped (22 partition)
 *
 * Plain mode (stdout, or stderr with --json, not a terminal, CI=true, TERM=dumb): event lines only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner/view.h"

struct frame_totals {
    uint64_t sent, delivered, dropped[NB_DROP__COUNT];
};

static void add_link(void *arg, const char *network, const char *src, const char *dst,
                     const struct nb_link_stats *s)
{
    struct frame_totals *t = arg;
    t->sent += s->sent + s->duplicated;
    t->delivered += s->delivered;
    for (int i = 0; i < NB_DROP__COUNT; i++) {
        t->dropped[i] += s->dropped[i];
    }
}

static const char *node_state(const struct rn_node *n)
{
    if (!n->hv) {
        return "-";
    }
    if (n->down && hv_node_state(n->hv) == HV_NODE_OFF) {
        return "down";
    }
    return hv_node_state_name(hv_node_state(n->hv));
}

static void draw(struct run *run)
{
    struct fl_buf b = {0};
    unsigned lines = 0;
    if (run->clock.t0) {
        int64_t t = rn_clock_now(&run->clock);
        fl_buf_printf(&b, "\033[1m── %s ── +%.1fs of %.1fs ── seed %llu ──\033[0m\n",
                      run->scen->name, (double)t / 1e9, (double)run->scen->duration_ns / 1e9,
                      (unsigned long long)run->scen->seed);
    } else {
        fl_buf_printf(&b, "\033[1m── %s ── booting %zu/%zu ready ── seed %llu ──\033[0m\n",
                      run->scen->name, run->nodes_ready, run->scen->n_nodes,
                      (unsigned long long)run->scen->seed);
    }
    lines++;
    for (size_t i = 0; i < run->scen->n_nodes; i++) {
        fl_buf_printf(&b, "%s%-8s %-8s", i % 4 ? "   " : " ", run->nodes[i].topo->name,
                      node_state(&run->nodes[i]));
        if (i % 4 == 3 || i + 1 == run->scen->n_nodes) {
            fl_buf_puts(&b, "\n");
            lines++;
        }
    }
    fl_buf_printf(&b, " partition: %s\n", run->partition_label ? run->partition_label : "none");
    lines++;
    if (run->nb) {
        struct frame_totals t = {0};
        nb_link_foreach(run->nb, add_link, &t);
        uint64_t dropped = 0;
        for (int i = 0; i < NB_DROP__COUNT; i++) {
            dropped += t.dropped[i];
        }
        fl_buf_printf(&b, " frames: %llu sent · %llu delivered · %llu dropped",
                      (unsigned long long)t.sent, (unsigned long long)t.delivered,
                      (unsigned long long)dropped);
        const char *sep = " (";
        for (int i = 0; i < NB_DROP__COUNT; i++) {
            if (t.dropped[i]) {
                fl_buf_printf(&b, "%s%llu %s", sep, (unsigned long long)t.dropped[i],
                              nb_drop_reason_name((enum nb_drop_reason)i));
                sep = ", ";
            }
        }
        fl_buf_puts(&b, *sep == ',' ? ")\n" : "\n");
        lines++;
    }
    fputs(b.data, run->human);
    fflush(run->human);
    run->view_lines = lines;
    fl_buf_free(&b);
}

static void erase(struct run *run)
{
    if (run->view_lines) {
        fprintf(run->human, "\033[%uA\033[J", run->view_lines);
        run->view_lines = 0;
    }
}

static void on_view_timer(struct fl_loop *loop, struct fl_timer *t, void *arg)
{
    struct run *run = arg;
    erase(run);
    draw(run);
    fl_timer_arm_in(t, 500 * FL_NS_PER_MS);
}

/* The log sink: a line above the status block (plain after stop). */
static void view_line(void *arg, const char *line)
{
    struct run *run = arg;
    if (run->live) {
        erase(run);
        fprintf(run->human, "%s\n", line);
        draw(run);
    } else {
        fprintf(run->human, "%s\n", line);
        fflush(run->human);
    }
}

void rn_view_start(struct run *run)
{
    const char *ci = getenv("CI");
    const char *term = getenv("TERM");
    switch (run->opts->view) {
    case RUNNER_VIEW_QUIET:
        run->quiet = true;
        return;
    case RUNNER_VIEW_PLAIN:
        rn_log_add_sink(&run->log, view_line, run);
        return;
    case RUNNER_VIEW_LIVE:
        run->live = true;
        break;
    case RUNNER_VIEW_AUTO:
        run->live = isatty(fileno(run->human)) && !(ci && *ci && strcmp(ci, "false")) &&
                    !(term && !strcmp(term, "dumb"));
        break;
    }
    rn_log_add_sink(&run->log, view_line, run);
    if (run->live) {
        run->view_timer = fl_timer_create(run->loop, on_view_timer, run);
        fl_timer_arm_in(run->view_timer, 0);
    }
}

void rn_view_stop(struct run *run)
{
    if (run->live) {
        erase(run);
        fflush(run->human);
    }
    fl_timer_destroy(run->view_timer);
    run->view_timer = NULL;
    run->live = false; /* the sink stays: later lines print plain */
}
