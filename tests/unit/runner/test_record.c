/*
 * rn_record_check: which nodes a run records (--record wins over the
 * scenario's run.record) and what it refuses, with the messages of
 * topo_record_problems.  No QEMU.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runner/record.h"

struct fixture {
    struct run run;
    struct runner_options opts;
};

/* NULL on success, else the error text (caller frees).  *on: "n1,n3". */
static char *check(const char *yaml, const char *record, const char *accel, char **on)
{
    struct fixture f;
    memset(&f, 0, sizeof f);
    struct fl_error *err = NULL;
    f.run.scen = topo_load_string("t.yaml", yaml, strlen(yaml), &err);
    if (!f.run.scen) {
        fail_msg("scenario: %s", err->msg);
    }
    f.opts.record = record;
    f.opts.accel = accel;
    f.run.opts = &f.opts;
    char *msg = NULL;
    if (!rn_record_check(&f.run, &err)) {
        msg = fl_xstrdup(err->msg);
        fl_error_free(err);
    }
    struct fl_buf b = {0};
    for (size_t i = 0; i < f.run.scen->n_nodes; i++) {
        if (rn_record_on(&f.run, i)) {
            fl_buf_printf(&b, "%s%s", b.size ? "," : "", f.run.scen->nodes[i].name);
        }
    }
    *on = b.data ? fl_buf_steal(&b) : fl_xstrdup("");
    rn_record_free(&f.run);
    topo_scenario_free(f.run.scen);
    return msg;
}

static void expect(const char *yaml, const char *record, const char *want_on)
{
    char *on;
    char *msg = check(yaml, record, NULL, &on);
    if (msg) {
        fail_msg("unexpected error: %s", msg);
    }
    assert_string_equal(on, want_on);
    free(on);
}

static void expect_error(const char *yaml, const char *record, const char *accel, const char *want)
{
    char *on;
    char *msg = check(yaml, record, accel, &on);
    assert_non_null(msg);
    if (!strstr(msg, want)) {
        fail_msg("expected '%s' in '%s'", want, msg);
    }
    free(msg);
    free(on);
}

#define NODES3 "nodes: {n1: {}, n2: {}, n3: {}}\n"

static void test_which_nodes(void **state)
{
    (void)state;
    expect(NODES3, NULL, "");
    expect(NODES3, "", "n1,n2,n3");
    expect(NODES3, "n3,n1", "n1,n3");
    /* the scenario's list when --record is not given */
    expect("run: {record: [n2]}\n" NODES3, NULL, "n2");
    expect("run: {record: true}\n" NODES3, NULL, "n1,n2,n3");
    expect("run: {record: false}\n" NODES3, NULL, "");
    /* --record on the command line wins */
    expect("run: {record: [n2]}\n" NODES3, "n1", "n1");
    expect("run: {record: [n2]}\n" NODES3, "", "n1,n2,n3");
}

static void test_refused(void **state)
{
    (void)state;
    expect_error(NODES3, "n9", NULL,
                 "--record: the scenario t.yaml has no node 'n9' (nodes: n1, "
                 "n2, n3)");
    expect_error(NODES3, "", "kvm", "--record with --accel kvm: QEMU's record/replay needs TCG");
    expect_error("run: {record: true}\n" NODES3, NULL, "kvm",
                 "run.record with --accel kvm: QEMU's record/replay needs TCG");
    /* --record names a node the scenario does not record: the same rules
     * as faultline validate applies to run.record, at the same place */
    expect_error("run: {record: [n2]}\nnodes:\n  n1: {vcpus: 2}\n  n2: {}\n", "n1", NULL,
                 "t.yaml:3:3: node n1: vcpus: 2: a recorded node needs exactly 1 vCPU (QEMU's "
                 "record/replay refuses more)");
    expect_error("nodes: {n1: {}}\ntimeline: [{at: 1s, reboot: n1}]\n", "", NULL,
                 "t.yaml:2:12: timeline[0]: reboot of n1: a recorded node cannot be reset");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_which_nodes),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
