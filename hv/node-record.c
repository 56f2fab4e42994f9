/*
 * Recording a node (hv/record.h): its next boot records into a segment
 * directory, a recorded QEMU ends with QMP stop ▸ query-replay ▸ quit
 * (never SIGKILL: QEMU then writes no usable log), and a recorded guest
 * whose instruction count stops moving is reported.  The hooks node.c,
 * node-ops.c and qmp.c call are declared in node.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hv/node.h"
#include "hv/record.h"

/* Ends a recorded QEMU so that its log replays: the vCPU stops at once
 * (what a power cut looks like to the guest), the instruction count is
 * read, and QEMU quits, writing the log's header.  false: not recorded
 * (or not running), nothing sent. */
bool hv_rr_quit(struct hv_node *n)
{
    if (!n->rr.on || n->pid <= 0) {
        return false;
    }
    struct fl_error *err = NULL;
    n->expected_exit = true;
    n->rr.quitting = true;
    if (!hv_qmp_cmd(n, "stop", &err) || !hv_qmp_cmd(n, "query-replay", &err) ||
        !hv_qmp_cmd(n, "quit", &err)) {
        fl_log(FL_LOG_WARN, "hv", "%s; killing it (its segment will not replay)", err->msg);
        fl_error_free(err);
        hv_node_kill_qemu(n);
        return true;
    }
    fl_timer_arm_in(n->kill_timer, QUIT_KILL_DELAY_NS);
    return true;
}

/* A recorded QEMU whose instruction count stops advancing while the
 * guest runs has hung (QEMU 7.2 with HLT idle did, 3 of ~30 recordings):
 * say so once, never wait silently.  An idle guest still takes timer
 * interrupts, so its count keeps moving. */
#define RR_WATCH_NS (5 * FL_NS_PER_SEC)
#define RR_STUCK_NS (30 * FL_NS_PER_SEC)

static int64_t rr_watch_every(const struct hv_node *n)
{
    return FL_MIN(RR_WATCH_NS, FL_MAX(n->rr.stuck_ns / 4, FL_NS_PER_MS));
}

static void rr_icount_seen(struct hv_node *n, uint64_t icount)
{
    if (n->rr.quitting) {
        n->rr.icount = icount;
        n->rr.have_icount = true;
        return;
    }
    int64_t now = fl_loop_now(n->loop);
    if (icount != n->rr.seen) {
        n->rr.seen = icount;
        n->rr.seen_ns = now;
        n->rr.stuck_reported = false;
    } else if (now - n->rr.seen_ns >= n->rr.stuck_ns && !n->rr.stuck_reported) {
        n->rr.stuck_reported = true;
        hv_node_fail(
            n, ETIMEDOUT,
            "recorded QEMU hung: its instruction count stayed at %llu for %.1f s while the "
            "guest was running (see docs/record-replay.md, idle strategy)",
            (unsigned long long)icount, (double)(now - n->rr.seen_ns) / 1e9);
    }
}

static void on_rr_watch(struct fl_loop *loop, struct fl_timer *t, void *arg)
{
    struct hv_node *n = arg;
    if (n->pid <= 0 || !n->rr.on || n->rr.quitting) {
        return;
    }
    if (n->state == HV_NODE_READY || n->state == HV_NODE_BOOTING) {
        hv_qmp_cmd(n, "query-replay", NULL);
    } else {
        n->rr.seen_ns = fl_loop_now(n->loop); /* paused: not a hang */
    }
    fl_timer_arm_in(t, rr_watch_every(n));
}

static void rr_watch_start(struct hv_node *n)
{
    if (!n->rr.watch) {
        n->rr.watch = fl_timer_create(n->loop, on_rr_watch, n);
    }
    n->rr.seen = 0;
    n->rr.seen_ns = fl_loop_now(n->loop);
    n->rr.stuck_reported = false;
    fl_timer_arm_in(n->rr.watch, rr_watch_every(n));
}

char **hv_node_rr_argv(struct hv_node *n, const struct hv_rr_argv_opts *o, struct fl_error **errp)
{
    struct hv_argv plain = {0};
    hv_qemu_cmdline(&plain, &n->cfg, HV_ACCEL_TCG);
    struct hv_rr_argv_opts ko = *o;
    if (!ko.icount_extra) {
        ko.icount_extra = getenv("FAULTLINE_RR_ICOUNT");
    }
    if (!ko.append_extra) {
        ko.append_extra = getenv("FAULTLINE_RR_APPEND");
    }
    char **out = hv_rr_argv((const char *const *)plain.v, &ko, errp);
    hv_argv_free(&plain);
    if (!out) {
        fl_error_prepend(errp, "node %s: ", n->cfg.name);
    }
    return out;
}

bool hv_node_record_next(struct hv_node *n, const struct hv_rr_segment_opts *o,
                         struct fl_error **errp)
{
    if (n->pid > 0) {
        fl_error_setf(errp, EBUSY, "node %s: cannot start a recorded segment: QEMU is running",
                      n->cfg.name);
        return false;
    }
    if (n->cfg.accel == HV_ACCEL_KVM) {
        fl_error_setf(errp, EINVAL,
                      "node %s: cannot be recorded with KVM: QEMU's record/replay needs TCG "
                      "(use --accel auto or tcg; recording forces TCG)",
                      n->cfg.name);
        return false;
    }
    if (n->cfg.vcpus != 1) {
        fl_error_setf(errp, EINVAL,
                      "node %s: cannot be recorded with %u vCPUs: QEMU's record/replay needs "
                      "exactly 1",
                      n->cfg.name, n->cfg.vcpus);
        return false;
    }
    if (n->accel != HV_ACCEL_TCG) {
        fl_log(FL_LOG_INFO, "hv", "node %s: recorded: TCG instead of %s", n->cfg.name,
               hv_accel_name(n->accel));
        n->accel = HV_ACCEL_TCG;
    }
    char *rrfile = fl_xasprintf("%s/" HV_RR_LOG_FILE, o->dir);
    char *console = fl_xasprintf("%s/" HV_RR_CONSOLE_FILE, o->dir);
    char *agent = fl_xasprintf("%s/" HV_RR_AGENT_FILE, o->dir);
    struct hv_rr_argv_opts ao = {
        .mode = HV_RR_RECORD,
        .flavor = o->flavor,
        .rrfile = rrfile,
        .console = console,
        .agent = agent,
    };
    char **rec = hv_node_rr_argv(n, &ao, errp);
    free(rrfile);
    free(console);
    free(agent);
    if (!rec) {
        return false;
    }
    hv_argv_free(&n->argv);
    for (size_t i = 0; rec[i]; i++) {
        hv_argv_take(&n->argv, rec[i]);
    }
    free(rec);
    n->rr.on = true;
    n->rr.stuck_ns = o->stuck_ns > 0 ? o->stuck_ns : RR_STUCK_NS;
    n->rr.booted = false;
    n->rr.have_icount = false;
    return true;
}

bool hv_node_recording(const struct hv_node *n)
{
    return n->rr.on;
}

bool hv_node_record_icount(const struct hv_node *n, uint64_t *icount)
{
    if (n->rr.on && n->rr.have_icount) {
        *icount = n->rr.icount;
        return true;
    }
    return false;
}

bool hv_node_record_end(struct hv_node *n, int64_t timeout_ns, struct fl_error **errp)
{
    if (n->pid <= 0) {
        return true;
    }
    if (!hv_rr_quit(n)) {
        hv_node_kill_qemu(n);
    }
    int64_t deadline = fl_clock_mono_ns() + (timeout_ns > 0 ? timeout_ns : 10 * FL_NS_PER_SEC);
    hv_node_ref(n);
    while (n->pid > 0 && !n->destroyed && fl_clock_mono_ns() < deadline) {
        int r = fl_loop_run_once(n->loop, 100);
        if (r < 0) {
            break;
        }
    }
    bool ok = n->pid <= 0;
    if (!ok && !n->destroyed) {
        fl_error_setf(errp, ETIMEDOUT,
                      "node %s: recorded QEMU did not quit within %.0f s; killed (its segment "
                      "will not replay)",
                      n->cfg.name,
                      (double)(timeout_ns > 0 ? timeout_ns : 10 * FL_NS_PER_SEC) / 1e9);
        hv_node_kill_qemu(n);
    }
    hv_node_unref(n);
    return ok;
}

bool hv_rr_boot_check(struct hv_node *n, struct fl_error **errp)
{
    if (n->rr.on && n->rr.booted) {
        fl_error_setf(errp, EBUSY,
                      "node %s: recorded: its last segment is used up (hv_node_record_next "
                      "before booting again)",
                      n->cfg.name);
        return false;
    }
    return true;
}

void hv_rr_booted(struct hv_node *n)
{
    n->rr.booted = n->rr.on;
    n->rr.have_icount = false;
    n->rr.quitting = false;
    if (n->rr.on) {
        rr_watch_start(n);
    }
}

void hv_rr_qmp_return(struct hv_node *n, const struct fl_json *ret)
{
    const struct fl_json *ic = fl_json_get(ret, "icount");
    if (n->rr.on && ic && ic->type == FL_JSON_NUM) {
        rr_icount_seen(n, (uint64_t)ic->num);
    }
}

bool hv_rr_refuse_reset(struct hv_node *n, struct fl_error **errp)
{
    if (n->rr.on && n->pid > 0) {
        fl_error_setf(errp, ENOTSUP,
                      "node %s: recorded: a reset cannot be replayed (QEMU 7.2's replay stops "
                      "at a system_reset); crash and restart it instead",
                      n->cfg.name);
        return true;
    }
    return false;
}

void hv_rr_destroy(struct hv_node *n)
{
    fl_timer_destroy(n->rr.watch);
    n->rr.watch = NULL;
}
