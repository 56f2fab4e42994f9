/* run.record (docs/scenario-format.md, docs/record-replay.md): which
 * nodes are recorded, the dump, the errors, and the recording rules the
 * loader applies to them (the same topo_record_problems the runner
 * applies to --record). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "topology/topology.h"

static struct topo_scenario *load(const char *yaml)
{
    struct fl_error *err = NULL;
    uint64_t seed = 1;
    struct topo_scenario *s = topo_load_string_seed("t.yaml", yaml, strlen(yaml), &seed, &err);
    if (!s) {
        fprintf(stderr, "unexpected error:\n%s\n", err ? err->msg : "?");
        fl_error_free(err);
    }
    assert_non_null(s);
    return s;
}

/* The whole error text of a scenario that must be refused. */
static char *refused(const char *yaml)
{
    struct fl_error *err = NULL;
    struct topo_scenario *s = topo_load_string("t.yaml", yaml, strlen(yaml), &err);
    assert_null(s);
    assert_non_null(err);
    char *msg = fl_xstrdup(err->msg);
    fl_error_free(err);
    return msg;
}

static void assert_contains(const char *text, const char *want)
{
    if (!strstr(text, want)) {
        fail_msg("expected\n  %s\nin\n  %s", want, text);
    }
}

/* "n1,n3": the recorded nodes, and the dump's "record" agrees. */
static char *recorded(const struct topo_scenario *s)
{
    struct fl_buf b = {0};
    for (size_t i = 0; i < s->n_nodes; i++) {
        if (s->nodes[i].recorded) {
            fl_buf_printf(&b, "%s%s", b.size ? "," : "", s->nodes[i].name);
        }
    }
    struct fl_buf d = {0}, want = {0};
    topo_dump_json(s, &d);
    fl_buf_puts(&want, "\"record\":[");
    for (size_t i = 0, k = 0; i < s->n_nodes; i++) {
        if (s->nodes[i].recorded) {
            fl_buf_printf(&want, "%s\"%s\"", k++ ? "," : "", s->nodes[i].name);
        }
    }
    fl_buf_puts(&want, "]");
    assert_contains(d.data, want.data);
    fl_buf_free(&d);
    fl_buf_free(&want);
    return b.data ? fl_buf_steal(&b) : fl_xstrdup("");
}

#define NODES3 "nodes: {n1: {}, n2: {}, n3: {}}\n"

static void check_recorded(const char *yaml, const char *want)
{
    struct topo_scenario *s = load(yaml);
    char *got = recorded(s);
    assert_string_equal(got, want);
    free(got);
    topo_scenario_free(s);
}

static void test_which_nodes(void **state)
{
    (void)state;
    check_recorded(NODES3, "");
    check_recorded("run: {record: false}\n" NODES3, "");
    check_recorded("run: {record: true}\n" NODES3, "n1,n2,n3");
    check_recorded("run: {record: yes}\n" NODES3, "n1,n2,n3");
    check_recorded("run: {record: [n3, n1]}\n" NODES3, "n1,n3");
    check_recorded("run: {record: n2}\n" NODES3, "n2");
    /* record_loc: the place of run.record, for messages */
    struct topo_scenario *s = load("run:\n  record: [n2]\n" NODES3);
    assert_int_equal(s->record_loc.line, 2);
    assert_int_equal(s->record_loc.col, 11);
    topo_scenario_free(s);
    s = load(NODES3);
    assert_int_equal(s->record_loc.line, 0);
    topo_scenario_free(s);
}

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"run: {record: [n9]}\n" NODES3, "t.yaml:1:16: run.record[0]: 'n9' is not a node; did "
                                         "you mean 'n1'? (valid: n1, n2, n3)"},
        {"run: {record: nn2}\n" NODES3, "t.yaml:1:15: run.record: 'nn2' is not a node; did you "
                                        "mean 'n2'?"},
        {"run: {record: [n1, n1]}\n" NODES3,
         "t.yaml:1:20: run.record[1]: 'n1' is listed twice (first at t.yaml:1:16)"},
        {"run: {record: []}\n" NODES3, "t.yaml:1:15: run.record: an empty list is not what to "
                                       "record (valid: true, false, or a list of node names"},
        {"run: {record: {n1: true}}\n" NODES3,
         "t.yaml:1:15: run.record: a mapping is not what to record (valid: true, false, or a "
         "list of node names, e.g. [n1, n2])"},
        {"run: {record: }\n" NODES3, "run.record: "},
        {NODES3 "record: true\n", "unknown key 'record' in the scenario; it belongs under 'run:'"},
        {"run: {recrod: true}\n" NODES3, "unknown key 'recrod' in run; did you mean 'record'?"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *msg = refused(cases[i].yaml);
        assert_contains(msg, cases[i].want);
        free(msg);
    }
}

/* What recording requires is refused at load, at the offending place,
 * only for recorded nodes. */
static void test_rules(void **state)
{
    (void)state;
    char *msg = refused("run: {record: true}\n"
                        "nodes:\n"
                        "  n1: {vcpus: 2}\n"
                        "  n2: {}\n");
    assert_string_equal(msg, "t.yaml:3:3: node n1: vcpus: 2: a recorded node needs exactly 1 vCPU "
                             "(QEMU's record/replay refuses more); it is recorded by run.record "
                             "at t.yaml:1:15");
    free(msg);
    /* n1 is not recorded: its 2 vCPUs are fine */
    check_recorded("run: {record: [n2]}\nnodes: {n1: {vcpus: 2}, n2: {}}\n", "n2");

    msg = refused("run: {record: [n1]}\n"
                  "nodes:\n"
                  "  n1: {disks: {d: {faults: {latency: 1ms}}}}\n"
                  "timeline:\n"
                  "  - {at: 1s, reboot: n1}\n"
                  "  - {at: 2s, disk: {node: n1, write: {error: 100%, errno: EIO}}}\n");
    assert_contains(msg, "t.yaml:3:16: node n1: disk d: faults: a recorded node's disk cannot "
                         "have faults yet");
    assert_contains(msg, "t.yaml:5:5: timeline[0]: reboot of n1: a recorded node cannot be reset "
                         "(QEMU 7.2's replay stops at a system_reset; crash and restart it "
                         "instead); it is recorded by run.record at t.yaml:1:15");
    assert_contains(msg, "t.yaml:6:5: timeline[1]: disk of n1: a recorded node cannot be given "
                         "disk faults");
    free(msg);
    /* crash + restart is what a recorded node can do */
    check_recorded("run: {record: true}\nnodes: {n1: {}}\n"
                   "timeline: [{at: 1s, crash: n1}, {at: 2s, restart: n1}]\n",
                   "n1");

    char base[] = "/tmp/fl-record-base-XXXXXX";
    int fd = mkstemp(base);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 1 << 20), 0);
    close(fd);
    char *yaml =
        fl_xasprintf("run: {record: true}\nnodes:\n  n1:\n    disks: {d: {base: %s}}\n", base);
    msg = refused(yaml);
    char *want = fl_xasprintf("t.yaml:4:13: node n1: disk d: base image '%s': a recorded node's "
                              "disk must be a plain disk",
                              base);
    assert_contains(msg, want);
    free(want);
    free(msg);
    free(yaml);
    unlink(base);
}

/* The runner's path: the rules of a node the scenario does not record
 * (--record names it), one problem per entry, in scenario order. */
static void test_problems_api(void **state)
{
    (void)state;
    struct topo_scenario *s = load("nodes:\n"
                                   "  n1: {vcpus: 2, disks: {d: {faults: {latency: 1ms}}}}\n"
                                   "  n2: {}\n"
                                   "timeline: [{at: 1s, reboot: n1}, {at: 2s, reboot: n2}]\n");
    struct topo_record_problem *p;
    size_t n = topo_record_problems(s, 0, &p);
    assert_int_equal(n, 3);
    assert_int_equal(p[0].loc.line, 2);
    assert_string_equal(p[0].msg, "node n1: vcpus: 2: a recorded node needs exactly 1 vCPU "
                                  "(QEMU's record/replay refuses more)");
    assert_int_equal(p[1].loc.line, 2);
    assert_int_equal(p[2].loc.line, 4);
    assert_string_equal(p[2].msg, "timeline[0]: reboot of n1: a recorded node cannot be reset "
                                  "(QEMU 7.2's replay stops at a system_reset; crash and restart "
                                  "it instead)");
    topo_record_problems_free(p, n);
    n = topo_record_problems(s, 1, &p);
    assert_int_equal(n, 1);
    assert_int_equal(p[0].loc.col, 34);
    topo_record_problems_free(p, n);
    assert_int_equal(topo_record_problems(s, 7, &p), 0);
    assert_null(p);
    topo_scenario_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_which_nodes),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_problems_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
