/*
 * junit.xml and summary.json with hostile guest text in every field a
 * guest can reach (output, errors, failure messages, the run's error):
 * both files must parse (python3 xml.etree and json; xmllint when
 * installed), whatever the bytes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "runner/rundir.h"

static const char *const hostile[] = {
    "\x1b]52;c;cHduZWQ=\x07\x1b[2J evil\rPASS",
    "a\xff\xfe b \xed\xa0\x80 lone \xef\xbf\xbe \xef\xbf\xbf \xc0\xaf \x01\x0b\x0c",
    "]]> <!-- </system-out> & \" ' <x/>",
    "\xc2\x9b"
    "31m \xe2\x80\xae bidi \xe2\x81\xa6",
    "cut \xe2\x82", /* a character cut in half */
};

static void test_records_parse(void **state)
{
    static const char yaml[] = "run: {name: t, duration: 1s, seed: 3}\nnodes:\n  n1: {}\n";
    struct fl_error *err = NULL;
    struct run run;
    memset(&run, 0, sizeof run);
    run.scen = topo_load_string("t.yaml", yaml, strlen(yaml), &err);
    assert_non_null(run.scen);
    run.nodes = fl_xcalloc(2, sizeof *run.nodes);
    run.nodes[0].topo = &run.scen->nodes[0];
    char tmpl[] = "/tmp/fl-records-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    run.dir = tmpl;
    run.result = RUNNER_ERROR;
    fl_error_setf(&run.infra, EIO, "agent said: %s", hostile[0]);
    size_t n = FL_ARRAY_LEN(hostile);
    run.results = fl_xcalloc(n, sizeof *run.results);
    for (size_t i = 0; i < n; i++) {
        struct rn_result *r = &run.results[i];
        r->name = fl_xasprintf("check-%zu", i + 1);
        r->node = fl_xstrdup("n1");
        r->command = fl_xstrdup(hostile[(i + 1) % n]);
        r->source = fl_xstrdup("checks[0]");
        r->out = fl_xstrdup(hostile[i]);
        r->err = fl_xstrdup(hostile[(i + 2) % n]);
        r->message = fl_xasprintf("no answer from n1: %s", hostile[(i + 3) % n]);
    }
    run.n_results = n;

    assert_true(rn_write_junit(&run, &err));
    assert_true(rn_write_summary(&run, &err));
    char *cmd = fl_xasprintf(
        "python3 -c 'import json, sys, xml.etree.ElementTree as ET\n"
        "t = ET.parse(sys.argv[1] + \"/junit.xml\")\n"
        "assert len(list(t.iter(\"testcase\"))) == %zu + 1\n"
        "s = json.load(open(sys.argv[1] + \"/summary.json\", encoding=\"utf-8\"))\n"
        "assert s[\"verdict\"] == \"error\" and len(s[\"checks\"][\"list\"]) == %zu\n"
        "assert \"junit\" in s[\"files\"] and \"report\" not in s[\"files\"], s[\"files\"]\n' %s",
        n, n, tmpl);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    if (system("command -v xmllint >/dev/null") == 0) {
        cmd = fl_xasprintf("xmllint --noout %s/junit.xml", tmpl);
        assert_int_equal(system(cmd), 0);
        free(cmd);
    }

    for (size_t i = 0; i < n; i++) {
        struct rn_result *r = &run.results[i];
        free(r->name), free(r->node), free(r->command), free(r->source);
        free(r->out), free(r->err), free(r->message);
    }
    free(run.results);
    free(run.nodes);
    free(run.summary_text); /* rn_write_summary keeps what it wrote */
    fl_error_free(run.infra);
    topo_scenario_free(run.scen);
    fl_rm_rf(tmpl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_records_parse)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
