/*
 * What a caller does to a running node: pause/resume/reset (QMP), crash
 * (SIGKILL), poweroff (agent sync, then QMP quit), exec/ping/clock (agent
 * requests); and the synchronous helpers that spin the loop for tests
 * and the CLI.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hv/node.h"

static bool need_running(struct hv_node *n, const char *op, struct fl_error **errp)
{
    if (n->pid <= 0 || n->state == HV_NODE_OFF) {
        fl_error_setf(errp, ENOTCONN, "node %s: cannot %s: the node is off", n->cfg.name, op);
        return false;
    }
    return true;
}

bool hv_node_pause(struct hv_node *n, struct fl_error **errp)
{
    return need_running(n, "pause", errp) && hv_qmp_cmd(n, "stop", errp);
}

bool hv_node_resume(struct hv_node *n, struct fl_error **errp)
{
    return need_running(n, "resume", errp) && hv_qmp_cmd(n, "cont", errp);
}

bool hv_node_reset(struct hv_node *n, struct fl_error **errp)
{
    if (hv_rr_refuse_reset(n, errp)) {
        return false;
    }
    return need_running(n, "reset", errp) && hv_qmp_cmd(n, "system_reset", errp);
}

bool hv_node_crash(struct hv_node *n, struct fl_error **errp)
{
    if (!need_running(n, "crash", errp)) {
        return false;
    }
    if (hv_rr_quit(n)) {
        return true; /* recorded: a SIGKILLed recording cannot be replayed */
    }
    hv_node_kill_qemu(n);
    return true;
}

bool hv_node_poweroff(struct hv_node *n, int64_t timeout_ns, struct fl_error **errp)
{
    if (!need_running(n, "power off", errp)) {
        return false;
    }
    if (n->state == HV_NODE_STOPPING) {
        return true;
    }
    n->expected_exit = true;
    bool agent_ok = n->state == HV_NODE_READY && !n->ag_dead && n->agent_fd >= 0;
    hv_node_set_state(n, HV_NODE_STOPPING);
    if (!agent_ok) {
        hv_node_poweroff_done(n);
        return true;
    }
    int64_t t = timeout_ns > 0 ? timeout_ns : 10 * FL_NS_PER_SEC;
    struct hv_req *r = hv_req_new(n, HV_REQ_POWEROFF, t);
    hv_agent_send_exec(n, r,
                       "sync; awk '$1 ~ /^\\/dev\\/vd/ {print $2}' /proc/mounts | "
                       "while read -r m; do mount -o remount,ro \"$m\" || true; done; sync",
                       t);
    return true;
}

bool hv_node_exec(struct hv_node *n, const char *shell_cmd, int64_t timeout_ns, hv_exec_cb *cb,
                  void *arg, struct fl_error **errp)
{
    if (n->state != HV_NODE_READY && n->state != HV_NODE_PAUSED) {
        fl_error_setf(errp, ENOTCONN, "node %s: cannot run a command: the node is %s", n->cfg.name,
                      hv_node_state_name(n->state));
        return false;
    }
    if (!shell_cmd || strlen(shell_cmd) > FL_AGENT_CMD_MAX) {
        fl_error_setf(errp, EINVAL, "node %s: command missing or longer than %u bytes", n->cfg.name,
                      FL_AGENT_CMD_MAX);
        return false;
    }
    if (timeout_ns < 0) {
        fl_error_setf(errp, EINVAL, "node %s: negative command timeout", n->cfg.name);
        return false;
    }
    if (n->ag_out.size > AGENT_OUTBUF_MAX) {
        fl_error_setf(errp, ENOBUFS, "node %s: agent channel backed up", n->cfg.name);
        return false;
    }
    int64_t host_timeout = timeout_ns ? timeout_ns + EXEC_GRACE_NS : INT64_MAX / 4;
    struct hv_req *r = hv_req_new(n, HV_REQ_EXEC, host_timeout);
    if (!timeout_ns) {
        fl_timer_disarm(r->timer);
    }
    r->exec_cb = cb;
    r->arg = arg;
    hv_agent_send_exec(n, r, shell_cmd, timeout_ns);
    return true;
}

bool hv_node_ping(struct hv_node *n, int64_t timeout_ns, hv_done_cb *cb, void *arg,
                  struct fl_error **errp)
{
    if (n->state != HV_NODE_READY && n->state != HV_NODE_PAUSED) {
        fl_error_setf(errp, ENOTCONN, "node %s: cannot ping: the node is %s", n->cfg.name,
                      hv_node_state_name(n->state));
        return false;
    }
    struct hv_req *r = hv_req_new(n, HV_REQ_PING, timeout_ns > 0 ? timeout_ns : FL_NS_PER_SEC);
    r->done_cb = cb;
    r->arg = arg;
    size_t s = fl_agent_wr_begin(&n->ag_out, FL_AGENT_PING, r->id, n->session);
    fl_agent_wr_finish(&n->ag_out, s);
    hv_agent_send(n);
    return true;
}

bool hv_node_clock_set(struct hv_node *n, enum hv_clock_mode mode, int64_t value_ns, hv_done_cb *cb,
                       void *arg, struct fl_error **errp)
{
    if (n->state != HV_NODE_READY && n->state != HV_NODE_PAUSED) {
        fl_error_setf(errp, ENOTCONN, "node %s: cannot set the clock: the node is %s", n->cfg.name,
                      hv_node_state_name(n->state));
        return false;
    }
    if (mode != HV_CLOCK_JUMP && mode != HV_CLOCK_SET) {
        fl_error_setf(errp, EINVAL, "node %s: clock mode %d is not jump or set", n->cfg.name, mode);
        return false;
    }
    if (mode == HV_CLOCK_SET && value_ns < 0) {
        fl_error_setf(errp, EINVAL, "node %s: cannot set the clock before 1970", n->cfg.name);
        return false;
    }
    struct hv_req *r = hv_req_new(n, HV_REQ_CLOCK, 10 * FL_NS_PER_SEC);
    r->done_cb = cb;
    r->arg = arg;
    size_t s = fl_agent_wr_begin(&n->ag_out, FL_AGENT_CLOCK, r->id, n->session);
    fl_agent_wr_u32(&n->ag_out, mode == HV_CLOCK_JUMP ? 0 : 1);
    fl_agent_wr_i64(&n->ag_out, value_ns);
    fl_agent_wr_finish(&n->ag_out, s);
    hv_agent_send(n);
    return true;
}

void hv_exec_result_clear(struct hv_exec_result *res)
{
    if (!res) {
        return;
    }
    free(res->out);
    free(res->err);
    memset(res, 0, sizeof *res);
}

bool hv_node_wait_state(struct hv_node *n, enum hv_node_state state, int64_t timeout_ns,
                        struct fl_error **errp)
{
    int64_t deadline = fl_clock_mono_ns() + timeout_ns;
    bool started_off = n->state == HV_NODE_OFF;
    while (n->state != state) {
        if (n->state == HV_NODE_OFF && (!started_off || state != HV_NODE_OFF)) {
            fl_error_setf(errp, ENOTCONN, "node %s: QEMU is not running (waiting for %s); see '%s'",
                          n->cfg.name, hv_node_state_name(state), n->cfg.console_log);
            return false;
        }
        int64_t left = deadline - fl_clock_mono_ns();
        if (left <= 0) {
            fl_error_setf(errp, ETIMEDOUT, "node %s: still %s after %.1f s (waiting for %s)",
                          n->cfg.name, hv_node_state_name(n->state), (double)timeout_ns / 1e9,
                          hv_node_state_name(state));
            return false;
        }
        int r = fl_loop_run_once(n->loop, (int)FL_MIN(left / FL_NS_PER_MS + 1, 100));
        if (r < 0) {
            fl_error_setf_errno(errp, -r, "node %s: event loop", n->cfg.name);
            return false;
        }
    }
    return true;
}

struct exec_sync {
    bool done;
    struct hv_exec_result *res;
    struct fl_error *err;
};

static void exec_sync_cb(struct hv_node *n, const struct hv_exec_result *res,
                         const struct fl_error *err, void *arg)
{
    struct exec_sync *s = arg;
    s->done = true;
    if (res) {
        *s->res = *res;
        s->res->out = fl_xmalloc(res->out_size + 1);
        memcpy(s->res->out, res->out, res->out_size + 1);
        s->res->err = fl_xmalloc(res->err_size + 1);
        memcpy(s->res->err, res->err, res->err_size + 1);
    } else {
        fl_error_setf(&s->err, err->code, "%s", err->msg);
    }
}

bool hv_node_exec_sync(struct hv_node *n, const char *shell_cmd, int64_t timeout_ns,
                       struct hv_exec_result *res, struct fl_error **errp)
{
    memset(res, 0, sizeof *res);
    struct exec_sync s = {.res = res};
    if (!hv_node_exec(n, shell_cmd, timeout_ns, exec_sync_cb, &s, errp)) {
        return false;
    }
    while (!s.done) {
        int r = fl_loop_run_once(n->loop, 100);
        if (r < 0) {
            fl_error_setf_errno(errp, -r, "node %s: event loop", n->cfg.name);
            return false;
        }
    }
    if (s.err) {
        fl_error_propagate(errp, s.err);
        return false;
    }
    return true;
}
