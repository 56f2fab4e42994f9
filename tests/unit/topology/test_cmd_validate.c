/* `faultline validate`: silent success, --dump JSON, exit 2 with every
 * message on stderr, option errors.  Runs the command's main directly with
 * stdout/stderr redirected to temporary files. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/cli.h"
#include "core/core.h"

extern const struct cli_command cli_cmd_validate;

struct out {
    int rc;
    char *out, *err;
};

static char *slurp(const char *path)
{
    struct fl_error *e = NULL;
    char *s = fl_read_file(path, NULL, &e);
    assert_non_null(s);
    return s;
}

static struct out run(int argc, const char **argv)
{
    char outp[] = "/tmp/fl-validate-out-XXXXXX", errp[] = "/tmp/fl-validate-err-XXXXXX";
    int fo = mkstemp(outp), fe = mkstemp(errp);
    assert_true(fo >= 0 && fe >= 0);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    dup2(fo, 1);
    dup2(fe, 2);
    struct out r;
    r.rc = cli_cmd_validate.main(argc, (char **)argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    close(fo);
    close(fe);
    r.out = slurp(outp);
    r.err = slurp(errp);
    unlink(outp);
    unlink(errp);
    return r;
}

static void out_free(struct out *o)
{
    free(o->out);
    free(o->err);
}

static char *scenario(const char *name)
{
    const char *src = getenv("FL_SOURCE_DIR");
    assert_non_null(src);
    return fl_xasprintf("%s/scenarios/%s", src, name);
}

static void test_valid_is_silent(void **state)
{
    char *q = scenario("quickstart.yaml");
    const char *argv[] = {"validate", q};
    struct out o = run(2, argv);
    assert_int_equal(o.rc, CLI_EXIT_OK);
    assert_string_equal(o.out, "");
    assert_string_equal(o.err, "");
    out_free(&o);
    free(q);
}

static void test_dump(void **state)
{
    char *q = scenario("quickstart.yaml");
    const char *argv[] = {"validate", "--dump", "--seed", "7", q};
    struct out o = run(5, argv);
    assert_int_equal(o.rc, CLI_EXIT_OK);
    assert_string_equal(o.err, "");
    assert_true(o.out[0] == '{');
    assert_non_null(strstr(o.out, "\"seed\":7,\"seed_random\":false"));
    assert_non_null(strstr(o.out, "\"label\":\"isolate n3\""));
    assert_non_null(strstr(o.out, "\"ip\":\"10.0.1.3\""));
    assert_true(o.out[strlen(o.out) - 1] == '\n');
    /* Same seed, same dump. */
    struct out o2 = run(5, argv);
    assert_string_equal(o.out, o2.out);
    out_free(&o);
    out_free(&o2);
    /* --seed=N form */
    const char *argv2[] = {"validate", q, "--seed=0x10", "--dump"};
    o = run(4, argv2);
    assert_int_equal(o.rc, CLI_EXIT_OK);
    assert_non_null(strstr(o.out, "\"seed\":16,"));
    out_free(&o);
    free(q);
}

static void test_invalid_exits_2(void **state)
{
    char path[] = "/tmp/fl-validate-XXXXXX.yaml";
    int fd = mkstemps(path, 5);
    assert_true(fd >= 0);
    const char *bad = "nodes:\n  n1: {vcpu: 2}\ntimeline:\n  - {at: 1s, resume: n1}\n";
    assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
    close(fd);
    const char *argv[] = {"validate", path};
    struct out o = run(2, argv);
    assert_int_equal(o.rc, CLI_EXIT_USAGE);
    assert_string_equal(o.out, "");
    char *l1 = fl_xasprintf("%s:2:8: nodes.n1.vcpu: unknown key 'vcpu' in a node; did you mean "
                            "'vcpus'?",
                            path);
    char *l2 = fl_xasprintf("%s:4:5: timeline[0].resume: 'n1' is running at 1s", path);
    assert_non_null(strstr(o.err, l1));
    assert_non_null(strstr(o.err, l2));
    free(l1);
    free(l2);
    out_free(&o);
    unlink(path);
}

static void test_usage_errors(void **state)
{
    const char *a1[] = {"validate"};
    struct out o = run(1, a1);
    assert_int_equal(o.rc, CLI_EXIT_USAGE);
    assert_non_null(strstr(o.err, "usage: faultline validate"));
    out_free(&o);
    const char *a2[] = {"validate", "--bogus"};
    o = run(2, a2);
    assert_int_equal(o.rc, CLI_EXIT_USAGE);
    assert_non_null(strstr(o.err, "unknown option '--bogus'"));
    out_free(&o);
    const char *a3[] = {"validate", "a.yaml", "b.yaml"};
    o = run(3, a3);
    assert_int_equal(o.rc, CLI_EXIT_USAGE);
    assert_non_null(strstr(o.err, "one scenario file at a time"));
    out_free(&o);
    const char *a4[] = {"validate", "x.yaml", "--seed", "-1"};
    o = run(4, a4);
    assert_int_equal(o.rc, CLI_EXIT_USAGE);
    assert_non_null(strstr(o.err, "--seed '-1' is not a seed"));
    out_free(&o);
    const char *a5[] = {"validate", "/nonexistent/x.yaml"};
    o = run(2, a5);
    assert_int_equal(o.rc, CLI_EXIT_USAGE);
    assert_non_null(strstr(o.err, "/nonexistent/x.yaml"));
    out_free(&o);
    const char *a6[] = {"validate", "--help"};
    o = run(2, a6);
    assert_int_equal(o.rc, CLI_EXIT_OK);
    assert_non_null(strstr(o.out, "--dump"));
    out_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_is_silent),
        cmocka_unit_test(test_dump),
        cmocka_unit_test(test_invalid_exits_2),
        cmocka_unit_test(test_usage_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
