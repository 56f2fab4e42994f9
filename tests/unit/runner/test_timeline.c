/*
 * Unit tests for runner's timeline and checks on a manual clock: holds,
 * waits, retries, `after:` chains, a check on a node that is down.  The
 * guests are a fake behind struct rn_guest_ops: the test decides when and
 * how each command finishes.  No QEMU, no sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runner/checks.h"
#include "runner/timeline.h"

#define SEC FL_NS_PER_SEC
#define MS  FL_NS_PER_MS

struct call {
    uint32_t node;
    char *cmd;
    hv_exec_cb *cb;
    void *arg;
    bool answered;
};

struct harness {
    struct run run;
    struct runner_options opts;
    struct fl_clock *clock;
    int64_t start;
    struct call calls[64];
    size_t n_calls;
    const char *node_state[4]; /* NULL: ready */
    struct fl_buf lines;       /* every log line, '\n'-separated */
    bool over;
};

static struct harness *of(struct run *run)
{
    return container_of(run, struct harness, run);
}

static const char *fake_not_ready(struct run *run, uint32_t node)
{
    return of(run)->node_state[node];
}

static bool fake_exec(struct run *run, uint32_t node, const char *cmd, int64_t timeout_ns,
                      hv_exec_cb *cb, void *arg, struct fl_error **errp)
{
    struct harness *h = of(run);
    assert_true(h->n_calls < FL_ARRAY_LEN(h->calls));
    h->calls[h->n_calls++] =
        (struct call){.node = node, .cmd = fl_xstrdup(cmd), .cb = cb, .arg = arg};
    return true;
}

static const struct rn_guest_ops fake_guest = {.not_ready = fake_not_ready, .exec = fake_exec};

static void capture(void *arg, const char *line)
{
    struct harness *h = arg;
    fl_buf_printf(&h->lines, "%s\n", line);
}

static void check_done(struct run *run)
{
    if (run->phase == RN_END_CHECKS && !rn_checks_busy(run)) {
        run->phase = RN_DONE;
    }
}

static void timeline_over(struct run *run)
{
    of(run)->over = true;
    run->phase = RN_END_CHECKS;
    rn_end_checks(run);
    check_done(run);
}

static struct harness *start(const char *yaml)
{
    struct harness *h = fl_xcalloc(1, sizeof *h);
    struct fl_error *err = NULL;
    struct run *run = &h->run;
    run->opts = &h->opts;
    run->scen = topo_load_string("t.yaml", yaml, strlen(yaml), &err);
    if (!run->scen) {
        fail_msg("scenario: %s", err->msg);
    }
    h->clock = fl_clock_manual_create(1000 * SEC);
    run->loop = fl_loop_create(h->clock, &err);
    assert_non_null(run->loop);
    run->clock.loop = run->loop;
    run->clock.run_start_ns = fl_loop_now(run->loop);
    rn_log_init(&run->log, &run->clock);
    rn_log_add_sink(&run->log, capture, h);
    run->guest = &fake_guest;
    run->check_done = check_done;
    run->timeline_over = timeline_over;
    run->nodes = fl_xcalloc(run->scen->n_nodes + 1, sizeof *run->nodes);
    for (size_t i = 0; i < run->scen->n_nodes; i++) {
        run->nodes[i].run = run;
        run->nodes[i].topo = &run->scen->nodes[i];
    }
    h->start = fl_loop_now(run->loop);
    run->clock.t0 = h->start;
    run->phase = RN_TIMELINE;
    rn_timeline_start(run);
    return h;
}

/* Moves the manual clock to mono t0 + at, 10 ms at a time, firing timers. */
static void advance_to(struct harness *h, int64_t at)
{
    while (fl_loop_now(h->run.loop) < h->start + at) {
        int64_t step = FL_MIN(10 * MS, h->start + at - fl_loop_now(h->run.loop));
        fl_clock_manual_advance(h->clock, step);
        while (fl_loop_run_once(h->run.loop, 0) > 0) {
        }
    }
    while (fl_loop_run_once(h->run.loop, 0) > 0) {
    }
}

/* The nth command sent to a guest, which must be `cmd`. */
static struct call *call(struct harness *h, size_t nth, const char *cmd)
{
    if (nth >= h->n_calls) {
        fail_msg("only %zu commands sent, wanted #%zu (%s); log:\n%s", h->n_calls, nth, cmd,
                 h->lines.data ? h->lines.data : "");
    }
    assert_string_equal(h->calls[nth].cmd, cmd);
    return &h->calls[nth];
}

/* Finishes the nth command with this stdout (size bytes, NULs allowed). */
static void answer_raw(struct harness *h, size_t nth, int exit_code, const char *out, size_t size,
                       bool truncated)
{
    struct call *c = &h->calls[nth];
    assert_false(c->answered);
    c->answered = true;
    struct hv_exec_result res = {
        .exit_code = exit_code,
        .out = (char *)out,
        .out_size = size,
        .out_truncated = truncated,
        .err = (char *)"",
    };
    c->cb(NULL, &res, NULL, c->arg);
}

static void answer(struct harness *h, size_t nth, int exit_code, const char *out)
{
    answer_raw(h, nth, exit_code, out ? out : "", out ? strlen(out) : 0, false);
}

static const struct rn_result *result(struct harness *h, const char *name)
{
    for (size_t i = 0; i < h->run.n_results; i++) {
        if (!strcmp(h->run.results[i].name, name)) {
            return &h->run.results[i];
        }
    }
    fail_msg("no result named %s", name);
    return NULL;
}

static bool logged(struct harness *h, const char *text)
{
    return h->lines.data && strstr(h->lines.data, text);
}

static void finish(struct harness *h)
{
    struct run *run = &h->run;
    rn_checks_abort(run, "test over");
    fl_timer_destroy(run->timeline_timer);
    for (size_t i = 0; i < run->n_results; i++) {
        struct rn_result *r = &run->results[i];
        free(r->name), free(r->node), free(r->command), free(r->source);
        free(r->out), free(r->err), free(r->message);
    }
    free(run->results);
    free(run->pending);
    free(run->nodes);
    for (size_t i = 0; i < h->n_calls; i++) {
        free(h->calls[i].cmd);
    }
    fl_loop_destroy(run->loop);
    fl_clock_destroy(h->clock);
    topo_scenario_free(run->scen);
    fl_buf_free(&h->lines);
    free(h);
}

#define NODES "nodes:\n  n1: {}\n  n2: {}\n"

/* A foreground exec holds the timeline: what comes `after` it shifts by
 * the time it ran, and the log shows planned times. */
static void test_hold_and_after_chain(void **state)
{
    struct harness *h = start("run: {name: t, duration: 10s, seed: 1}\n" NODES "timeline:\n"
                              "  - {at: 1s, name: a, mark: a}\n"
                              "  - {after: a + 2s, name: b, exec: {node: n1, command: slow}}\n"
                              "  - {after: b + 1s, name: c, mark: c}\n");
    advance_to(h, 999 * MS);
    assert_false(logged(h, "mark      a"));
    advance_to(h, 1 * SEC);
    assert_true(logged(h, "[+1.000s] mark      a"));
    advance_to(h, 3 * SEC);
    call(h, 0, "slow");
    assert_int_equal(h->run.clock.holds, 1);
    /* Held for 5 s: c (timeline 4 s) waits. */
    advance_to(h, 8 * SEC);
    assert_false(logged(h, "mark      c"));
    assert_int_equal(rn_clock_now(&h->run.clock), 3 * SEC);
    answer(h, 0, 0, "");
    assert_int_equal(h->run.clock.holds, 0);
    assert_int_equal(h->run.clock.held_ns, 5 * SEC);
    advance_to(h, 8 * SEC + 999 * MS);
    assert_false(logged(h, "mark      c"));
    advance_to(h, 9 * SEC);
    assert_true(logged(h, "[+4.000s] mark      c"));
    assert_false(logged(h, "late"));
    /* The timeline ends at 10 s of timeline time: 15 s of mono. */
    advance_to(h, 14 * SEC + 990 * MS);
    assert_false(h->over);
    advance_to(h, 15 * SEC);
    assert_true(h->over);
    assert_int_equal(h->run.phase, RN_DONE);
    finish(h);
}

/* A wait retries every interval, holding the timeline, until it passes. */
static void test_wait_retries_then_passes(void **state)
{
    struct harness *h =
        start("run: {name: t, duration: 20s, seed: 1}\n" NODES "timeline:\n"
              "  - {at: 1s, name: up, wait: {node: n2, command: probe, timeout: 10s,"
              " interval: 2s}}\n"
              "  - {at: 2s, mark: after-wait}\n");
    advance_to(h, 1 * SEC);
    answer(h, 0, 1, "");
    advance_to(h, 2 * SEC + 990 * MS);
    assert_int_equal(h->n_calls, 1); /* the next attempt is one interval later */
    advance_to(h, 3 * SEC);
    call(h, 1, "probe");
    answer(h, 1, 1, "");
    advance_to(h, 5 * SEC);
    call(h, 2, "probe");
    assert_false(logged(h, "after-wait"));
    answer(h, 2, 0, "");
    const struct rn_result *r = result(h, "up");
    assert_true(r->passed);
    assert_int_equal(r->attempts, 3);
    assert_int_equal(h->run.clock.held_ns, 4 * SEC);
    advance_to(h, 5 * SEC + 990 * MS);
    assert_false(logged(h, "after-wait"));
    advance_to(h, 6 * SEC);
    assert_true(logged(h, "[+2.000s] mark      after-wait"));
    finish(h);
}

/* A wait that never passes fails at its timeout and releases the hold. */
static void test_wait_times_out(void **state)
{
    struct harness *h = start("run: {name: t, duration: 20s, seed: 1}\n" NODES "timeline:\n"
                              "  - {at: 1s, name: up, wait: {node: n1, command: probe, timeout: 3s,"
                              " interval: 1s}}\n");
    for (size_t i = 0; i < 3; i++) {
        advance_to(h, (int64_t)(1 + i) * SEC);
        answer(h, i, 1, "");
    }
    advance_to(h, 10 * SEC);
    assert_int_equal(h->n_calls, 4); /* at 1, 2, 3, 4 s: the last within 3 s of the first */
    answer(h, 3, 1, "");
    const struct rn_result *r = result(h, "up");
    assert_false(r->passed);
    assert_int_equal(r->attempts, 4);
    assert_string_equal(r->message, "expected exit 0, got 1");
    assert_int_equal(h->run.clock.holds, 0);
    finish(h);
}

/* A check with `within` retries until its output matches. */
static void test_check_retries_within(void **state)
{
    struct harness *h = start("run: {name: t, duration: 20s, seed: 1}\n" NODES "checks:\n"
                              "  - {name: leader, at: 2s, node: n1, command: who, output: '^n2$',"
                              " within: 5s, interval: 1s}\n");
    advance_to(h, 2 * SEC);
    answer(h, 0, 0, "n1\n");
    advance_to(h, 3 * SEC);
    answer(h, 1, 0, "n2\n");
    const struct rn_result *r = result(h, "leader");
    assert_true(r->passed);
    assert_int_equal(r->attempts, 2);
    assert_int_equal(r->at_ns, 2 * SEC);
    assert_int_equal(h->run.clock.holds, 0); /* checks never hold the timeline */
    assert_true(logged(h, "PASS leader on n1 (attempt 2)"));
    finish(h);
}

/* A check on a node that is down fails without running, naming the state;
 * with `within`, it retries and passes once the node is back. */
static void test_check_on_down_node(void **state)
{
    struct harness *h = start("run: {name: t, duration: 20s, seed: 1}\n" NODES "checks:\n"
                              "  - {name: once, at: 1s, node: n2, command: x}\n"
                              "  - {name: patient, at: 2s, node: n2, command: y, within: 4s}\n");
    h->node_state[1] = "off";
    advance_to(h, 1 * SEC);
    const struct rn_result *r = result(h, "once");
    assert_false(r->passed);
    assert_false(r->ran);
    assert_string_equal(r->message, "node n2 is off");
    assert_int_equal(h->n_calls, 0);
    advance_to(h, 4 * SEC);
    assert_int_equal(h->n_calls, 0);
    h->node_state[1] = NULL;
    advance_to(h, 5 * SEC);
    answer(h, call(h, 0, "y") - h->calls, 0, "");
    assert_true(result(h, "patient")->passed);
    assert_int_equal(result(h, "patient")->attempts, 4);
    finish(h);
}

/* End checks run after the timeline; the run is done when they are. */
static void test_end_checks(void **state)
{
    struct harness *h = start("run: {name: t, duration: 3s, seed: 1}\n" NODES "checks:\n"
                              "  - {name: final, node: n1, command: z}\n");
    advance_to(h, 3 * SEC);
    assert_true(h->over);
    assert_int_equal(h->run.phase, RN_END_CHECKS);
    answer(h, call(h, 0, "z") - h->calls, 2, "");
    assert_int_equal(h->run.phase, RN_DONE);
    assert_string_equal(result(h, "final")->message, "expected exit 0, got 2");
    finish(h);
}

/* `output:` sees the whole captured stdout, past a NUL byte; a mismatch on
 * output the agent cut says so (issue 14, item 6). */
static void test_output_after_nul_and_cut(void **state)
{
    struct harness *h =
        start("run: {name: t, duration: 20s, seed: 1}\n" NODES "checks:\n"
              "  - {name: nul, at: 1s, node: n1, command: a, output: '^leader$'}\n"
              "  - {name: big, at: 1s, node: n1, command: b, output: '^never$'}\n"
              "  - {name: small, at: 1s, node: n1, command: c, output: '^never$'}\n");
    advance_to(h, 1 * SEC);
    static const char nul[] = "junk\0leader\n";
    answer_raw(h, call(h, 0, "a") - h->calls, 0, nul, sizeof nul - 1, false);
    assert_true(result(h, "nul")->passed);
    answer_raw(h, call(h, 1, "b") - h->calls, 0, "xxxx", 4, true);
    assert_string_equal(result(h, "big")->message,
                        "output does not match /^never$/ (stdout was cut at 4 bytes: the pattern "
                        "saw only those)");
    answer(h, call(h, 2, "c") - h->calls, 0, "xxxx");
    assert_string_equal(result(h, "small")->message, "output does not match /^never$/");
    finish(h);
}

/* Output kept in a result is cut at 4096 bytes, never inside a character;
 * a failing check's output reaches the log with its controls escaped. */
static void test_output_cut_and_escaped(void **state)
{
    struct harness *h = start("run: {name: t, duration: 20s, seed: 1}\n" NODES "checks:\n"
                              "  - {name: long, at: 1s, node: n1, command: a}\n"
                              "  - {name: evil, at: 1s, node: n1, command: b}\n");
    advance_to(h, 1 * SEC);
    char big[4200];
    memset(big, 'x', 4095);
    for (size_t i = 4095; i + 3 <= sizeof big; i += 3) {
        memcpy(big + i, "\xe2\x82\xac", 3);
    }
    answer_raw(h, call(h, 0, "a") - h->calls, 1, big, sizeof big / 3 * 3, false);
    const char *out = result(h, "long")->out;
    assert_int_equal(strspn(out, "x"), 4095);
    assert_string_equal(out + 4095, "\n[... output truncated]");

    answer(h, call(h, 1, "b") - h->calls, 1, "\x1b]52;c;x\x07\x1b[2Jevil\rPASS \xe2\x80\xaeok\n");
    assert_true(logged(h, "FAIL evil on n1: expected exit 0, got 1; "
                          "\\x1b]52;c;x\\x07\\x1b[2Jevil\\rPASS \\u202eok"));
    assert_null(strchr(h->lines.data, '\x1b'));
    assert_null(strchr(h->lines.data, '\r'));
    finish(h);
}

/* A controller stopped past an event's time plays it late: the log keeps
 * the planned time, and a `late` line says by how much (issue 14, item 14). */
static void test_late_event(void **state)
{
    struct harness *h = start("run: {name: t, duration: 20s, seed: 1}\n" NODES "timeline:\n"
                              "  - {at: 1s, mark: cut}\n"
                              "  - {at: 6s, mark: on-time}\n");
    advance_to(h, 500 * MS);
    fl_clock_manual_advance(h->clock, 3200 * MS); /* SIGSTOP: nothing ran */
    advance_to(h, 3700 * MS);
    assert_true(logged(h, "[+1.000s] mark      cut\n"));
    assert_true(logged(h, "[+3.700s] late      mark (timeline[0]) planned at +1.000s, played at "
                          "+3.700s: 2.700s late\n"));
    assert_int_equal(h->run.late_events, 1);
    assert_int_equal(h->run.late_max_ns, 2700 * MS);
    advance_to(h, 6 * SEC);
    assert_true(logged(h, "[+6.000s] mark      on-time\n"));
    assert_int_equal(h->run.late_events, 1);
    finish(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hold_and_after_chain),
        cmocka_unit_test(test_wait_retries_then_passes),
        cmocka_unit_test(test_wait_times_out),
        cmocka_unit_test(test_check_retries_within),
        cmocka_unit_test(test_check_on_down_node),
        cmocka_unit_test(test_end_checks),
        cmocka_unit_test(test_output_after_nul_and_cut),
        cmocka_unit_test(test_output_cut_and_escaped),
        cmocka_unit_test(test_late_event),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
