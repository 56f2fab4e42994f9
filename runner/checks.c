/*
 * Checks, execs and waits: commands run in guests through hv's agent.
 *
 * A check runs its command on its node, compares the exit status and
 * output with its expectation, and retries every `interval` while
 * `within` allows.  A `wait` is a check that holds the timeline until it
 * passes (failing after its timeout).  An `exec` with an expectation
 * counts like a check; a foreground exec holds the timeline while it runs.
 */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "runner/checks.h"
#include "runner/record.h"

#define OUTPUT_KEEP 4096 /* bytes of output kept in results and the trace */

static size_t result_new(struct run *run, const char *name, uint32_t node, const char *command,
                         const char *source, struct topo_loc loc)
{
    run->results =
        fl_xgrow(run->results, &run->results_alloc, run->n_results + 1, sizeof *run->results);
    struct rn_result *r = &run->results[run->n_results];
    memset(r, 0, sizeof *r);
    r->name = fl_xstrdup(name);
    r->node = fl_xstrdup(rn_node_name(run, node));
    r->command = fl_xstrdup(command);
    r->source = loc.line ? fl_xasprintf("%s (%s:%u:%u)", source, run->scen->file, loc.line, loc.col)
                         : fl_xstrdup(source);
    r->exit_code = -1;
    r->at_ns = rn_clock_now(&run->clock);
    r->rr_segment = rn_record_segment_now(run, node);
    return run->n_results++;
}

static char *clip(const char *s, size_t size)
{
    if (!s) {
        return fl_xstrdup("");
    }
    if (size > OUTPUT_KEEP) {
        /* Never inside a character: the writers would see half of one. */
        size_t keep = fl_utf8_cut(s, size, OUTPUT_KEEP);
        char *c = fl_xmalloc(keep + 32);
        memcpy(c, s, keep);
        strcpy(c + keep, "\n[... output truncated]");
        return c;
    }
    return fl_xstrndup(s, size);
}

static struct rn_pending *pending_new(struct run *run)
{
    struct rn_pending *p = fl_xcalloc(1, sizeof *p);
    p->run = run;
    p->result = SIZE_MAX;
    run->pending =
        fl_xgrow(run->pending, &run->pending_alloc, run->n_pending + 1, sizeof *run->pending);
    run->pending[run->n_pending++] = p;
    return p;
}

static void pending_free(struct rn_pending *p)
{
    struct run *run = p->run;
    for (size_t i = 0; i < run->n_pending; i++) {
        if (run->pending[i] == p) {
            run->pending[i] = run->pending[--run->n_pending];
            break;
        }
    }
    fl_timer_destroy(p->retry);
    free(p);
}

/* The whole captured stdout, NUL bytes included: a NUL ends a line as a
 * newline does (regexec stops at the first one). */
static bool output_matches(const regex_t *re, const char *out, size_t size)
{
    if (!out || size == 0) {
        return regexec(re, "", 0, NULL, 0) == 0;
    }
    for (size_t at = 0; at < size; at += strnlen(out + at, size - at) + 1) {
        if (regexec(re, out + at, 0, NULL, 0) == 0) {
            return true;
        }
    }
    return false;
}

/* Does the outcome meet the expectation?  *why explains a mismatch. */
static bool meets(const struct topo_expect *x, const struct hv_exec_result *res, char **why)
{
    bool exited = !res->timed_out && res->signal == 0 && res->exit_code >= 0;
    enum topo_exit_expect kind = x ? x->exit : TOPO_EXIT_EXACT;
    int code = x ? x->code : 0;
    if (res->timed_out && kind != TOPO_EXIT_NONZERO) {
        *why = fl_xasprintf("timed out after %.1fs", (double)res->duration_ns / 1e9);
        return false;
    }
    switch (kind) {
    case TOPO_EXIT_EXACT:
        if (!exited || res->exit_code != code) {
            *why = exited
                       ? fl_xasprintf("expected exit %d, got %d", code, res->exit_code)
                       : fl_xasprintf("expected exit %d, killed by signal %d", code, res->signal);
            return false;
        }
        break;
    case TOPO_EXIT_NONZERO:
        if (exited && res->exit_code == 0) {
            *why = fl_xstrdup("expected a non-zero exit, got 0");
            return false;
        }
        break;
    case TOPO_EXIT_ANY:
        break;
    }
    if (x && x->output) {
        /* Line by line, as grep -E: ^ and $ match at every line's ends,
         * so `output: "^one$"` matches the output "one\n". */
        regex_t re;
        if (regcomp(&re, x->output, REG_EXTENDED | REG_NOSUB | REG_NEWLINE) != 0) {
            *why = fl_xasprintf("output pattern '%s' does not compile", x->output);
            return false;
        }
        bool match = output_matches(&re, res->out, res->out_size);
        regfree(&re);
        if (!match) {
            *why = res->out_truncated
                       ? fl_xasprintf("output does not match /%s/ (stdout was cut at %zu bytes: "
                                      "the pattern saw only those)",
                                      x->output, res->out_size)
                       : fl_xasprintf("output does not match /%s/", x->output);
            return false;
        }
    }
    return true;
}

static void attempt(struct rn_pending *p);

static void on_retry(struct fl_loop *loop, struct fl_timer *t, void *arg)
{
    attempt(arg);
}

static void finish(struct rn_pending *p, bool passed, const struct hv_exec_result *res, char *why)
{
    struct run *run = p->run;
    if (p->result != SIZE_MAX) {
        struct rn_result *r = &run->results[p->result];
        r->passed = passed;
        r->ran = res != NULL;
        r->attempts = p->attempts;
        r->duration_ns = fl_loop_now(run->loop) - p->first_ns;
        if (res) {
            r->exit_code = res->signal ? 128 + res->signal : res->exit_code;
            free(r->out);
            free(r->err);
            r->out = clip(res->out, res->out_size);
            r->err = clip(res->err, res->err_size);
        }
        free(r->message);
        r->message = passed ? fl_xstrdup("passed") : why;
        why = NULL;
        if (run->db) {
            struct trace_check tc = {
                .name = r->name,
                .node_id = run->nodes[p->node].trace_id,
                .command = r->command,
                .exit_status = r->ran ? r->exit_code : -1,
                .out = r->out,
                .err = r->err,
                .passed = passed,
                .start_ns = p->first_ns,
                .end_ns = fl_loop_now(run->loop),
            };
            trace_check(run->db, &tc);
        }
        if (passed) {
            rn_log(&run->log, "check", "PASS %s on %s (attempt %u)", r->name, r->node, p->attempts);
        } else {
            const char *err = r->err && *r->err ? r->err : r->out;
            size_t len = strcspn(err ? err : "", "\n");
            rn_log(&run->log, "check", "FAIL %s on %s: %s%s%.*s", r->name, r->node, r->message,
                   len ? "; " : "", (int)FL_MIN(len, 200), err ? err : "");
        }
    } else if (res) {
        rn_log(&run->log, "exited", "%s: `%s` exited %d", rn_node_name(run, p->node), p->command,
               res->signal ? 128 + res->signal : res->exit_code);
    } else {
        rn_log(&run->log, "exited", "%s: `%s` did not run: %s", rn_node_name(run, p->node),
               p->command, why ? why : "?");
    }
    free(why);
    bool held = p->holds_timeline;
    p->done = true;
    pending_free(p);
    if (held) {
        rn_clock_release(&run->clock);
    }
    if (run->check_done) {
        run->check_done(run);
    }
}

/* Retry when the check's window allows; true if a retry was scheduled. */
static bool maybe_retry(struct rn_pending *p)
{
    struct run *run = p->run;
    if (p->within_ns <= 0 || run->phase == RN_DONE) {
        return false;
    }
    int64_t next = fl_loop_now(run->loop) + p->interval_ns;
    if (next - p->first_ns > p->within_ns) {
        return false;
    }
    if (!p->retry) {
        p->retry = fl_timer_create(run->loop, on_retry, p);
    }
    fl_timer_arm(p->retry, next);
    return true;
}

static void on_exec_done(struct hv_node *node, const struct hv_exec_result *res,
                         const struct fl_error *err, void *arg)
{
    struct rn_pending *p = arg;
    char *why = NULL;
    if (err) {
        why = fl_xasprintf("no answer from %s: %s", rn_node_name(p->run, p->node), err->msg);
        if (!maybe_retry(p)) {
            finish(p, false, NULL, why);
        } else {
            free(why);
        }
        return;
    }
    if (p->background && p->result == SIZE_MAX) {
        finish(p, true, res, NULL);
        return;
    }
    if (meets(p->expect, res, &why)) {
        finish(p, true, res, NULL);
        return;
    }
    if (maybe_retry(p)) {
        free(why);
        return;
    }
    finish(p, false, res, why);
}

static void attempt(struct rn_pending *p)
{
    struct run *run = p->run;
    p->attempts++;
    if (!p->first_ns) {
        p->first_ns = fl_loop_now(run->loop);
    }
    struct fl_error *err = NULL;
    const char *state = run->guest->not_ready(run, p->node);
    if (state) {
        char *why = fl_xasprintf("node %s is %s", rn_node_name(run, p->node), state);
        if (maybe_retry(p)) {
            free(why);
        } else {
            finish(p, false, NULL, why);
        }
        return;
    }
    if (!run->guest->exec(run, p->node, p->command, p->timeout_ns, on_exec_done, p, &err)) {
        char *why = fl_xstrdup(err->msg);
        fl_error_free(err);
        if (maybe_retry(p)) {
            free(why);
        } else {
            finish(p, false, NULL, why);
        }
    }
}

void rn_check_start(struct run *run, const struct topo_check *check, const struct topo_event *ev)
{
    struct rn_pending *p = pending_new(run);
    p->check = check;
    p->event = ev;
    p->node = check->node;
    p->command = check->command;
    p->timeout_ns = check->timeout_ns;
    p->within_ns = check->within_ns;
    p->interval_ns = check->interval_ns > 0 ? check->interval_ns : FL_NS_PER_SEC;
    p->expect = &check->expect;
    char source[32];
    snprintf(source, sizeof source, "checks[%zu]", (size_t)(check - run->scen->checks));
    p->result = result_new(run, check->name, check->node, check->command, source, check->loc);
    attempt(p);
}

void rn_exec_start(struct run *run, const struct topo_event *ev)
{
    const struct topo_ev_exec *x = &ev->u.exec;
    struct rn_pending *p = pending_new(run);
    p->event = ev;
    p->node = x->node;
    p->command = x->command;
    p->timeout_ns = x->timeout_ns;
    p->interval_ns = FL_NS_PER_SEC;
    p->background = x->background;
    p->expect = x->has_expect ? &x->expect : NULL;
    if (x->has_expect) {
        char *name = ev->name ? fl_xstrdup(ev->name) : fl_xasprintf("%s exec", ev->source);
        p->result = result_new(run, name, x->node, x->command, ev->source, ev->loc);
        free(name);
    }
    rn_log(&run->log, "exec", "%s%s: %s", rn_node_name(run, x->node),
           x->background ? " (background)" : "", x->command);
    if (!x->background) {
        p->holds_timeline = true;
        rn_clock_hold(&run->clock);
    }
    attempt(p);
}

void rn_wait_start(struct run *run, const struct topo_event *ev)
{
    const struct topo_ev_wait *w = &ev->u.wait;
    struct rn_pending *p = pending_new(run);
    p->event = ev;
    p->node = w->node;
    p->command = w->command;
    p->interval_ns = w->interval_ns > 0 ? w->interval_ns : FL_NS_PER_SEC;
    p->within_ns = w->timeout_ns;
    /* One attempt may not outlive the whole wait. */
    p->timeout_ns = FL_MIN(w->timeout_ns, 10 * FL_NS_PER_SEC);
    p->holds_timeline = true;
    char *name = ev->name ? fl_xstrdup(ev->name) : fl_xasprintf("%s wait", ev->source);
    p->result = result_new(run, name, w->node, w->command, ev->source, ev->loc);
    free(name);
    rn_log(&run->log, "wait", "%s: until `%s` succeeds (at most %.0fs)", rn_node_name(run, w->node),
           w->command, (double)w->timeout_ns / 1e9);
    rn_clock_hold(&run->clock);
    attempt(p);
}

void rn_end_checks(struct run *run)
{
    for (size_t i = 0; i < run->scen->n_checks; i++) {
        if (run->scen->checks[i].at_ns == TOPO_AT_END) {
            rn_check_start(run, &run->scen->checks[i], NULL);
        }
    }
}

bool rn_checks_busy(const struct run *run)
{
    for (size_t i = 0; i < run->n_pending; i++) {
        if (run->pending[i]->result != SIZE_MAX) {
            return true;
        }
    }
    return false;
}

void rn_checks_abort(struct run *run, const char *why)
{
    while (run->n_pending) {
        struct rn_pending *p = run->pending[run->n_pending - 1];
        if (p->result != SIZE_MAX) {
            struct rn_result *r = &run->results[p->result];
            r->passed = false;
            r->attempts = p->attempts;
            free(r->message);
            r->message = fl_xstrdup(why);
        }
        pending_free(p);
    }
}

/* ---- guests through hv ---- */

static const char *hv_not_ready(struct run *run, uint32_t node)
{
    const struct rn_node *n = &run->nodes[node];
    if (!n->hv) {
        return "absent";
    }
    enum hv_node_state state = hv_node_state(n->hv);
    return state == HV_NODE_READY ? NULL : hv_node_state_name(state);
}

static bool hv_exec(struct run *run, uint32_t node, const char *shell_cmd, int64_t timeout_ns,
                    hv_exec_cb *cb, void *arg, struct fl_error **errp)
{
    return hv_node_exec(run->nodes[node].hv, shell_cmd, timeout_ns, cb, arg, errp);
}

const struct rn_guest_ops rn_guest_hv = {
    .not_ready = hv_not_ready,
    .exec = hv_exec,
};
