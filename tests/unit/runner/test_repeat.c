/*
 * Repeating a scenario without guests: the --seeds parser, the JSON
 * reader the index reads summary.json with, the index of a directory of
 * runs (hostile directory names, check names and messages; parsed by
 * python3's json and html.parser), and runs/latest.
 */
#include <errno.h>
#include <limits.h>
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

#include "runner/index.h"
#include "runner/rundir.h"

static void expect_seeds(const char *text, const uint64_t *want, size_t n)
{
    uint64_t *seeds = NULL;
    size_t got = 0;
    struct fl_error *err = NULL;
    if (!runner_seeds_parse(text, &seeds, &got, &err)) {
        fail_msg("'%s': %s", text, err->msg);
    }
    assert_int_equal(got, n);
    for (size_t i = 0; i < n; i++) {
        assert_true(seeds[i] == want[i]);
    }
    free(seeds);
}

static void expect_bad_seeds(const char *text, const char *says)
{
    uint64_t *seeds = (uint64_t *)1;
    size_t n = 99;
    struct fl_error *err = NULL;
    assert_false(runner_seeds_parse(text, &seeds, &n, &err));
    assert_null(seeds);
    assert_int_equal(n, 0);
    assert_non_null(err);
    if (!strstr(err->msg, says) || !strstr(err->msg, "--seeds")) {
        fail_msg("'%s': message '%s' does not say '%s'", text, err->msg, says);
    }
    fl_error_free(err);
}

static void test_seeds(void **state)
{
    expect_seeds("7", (uint64_t[]){7}, 1);
    expect_seeds("1-3,10", (uint64_t[]){1, 2, 3, 10}, 4);
    expect_seeds("3,9,12", (uint64_t[]){3, 9, 12}, 3);
    expect_seeds("0x10,0X11", (uint64_t[]){16, 17}, 2);
    expect_seeds("5-5", (uint64_t[]){5}, 1);
    expect_seeds("18446744073709551614-18446744073709551615",
                 (uint64_t[]){UINT64_MAX - 1, UINT64_MAX}, 2);
    uint64_t *seeds;
    size_t n;
    struct fl_error *err = NULL;
    assert_true(runner_seeds_parse("1-50", &seeds, &n, &err));
    assert_int_equal(n, 50);
    assert_true(seeds[0] == 1 && seeds[49] == 50);
    free(seeds);
    /* The most seeds there may be, and one too many at the end. */
    assert_true(runner_seeds_parse("0-99999", &seeds, &n, &err));
    assert_int_equal(n, RUNNER_MAX_SEEDS);
    free(seeds);
    expect_bad_seeds("0-49999,50000-99999,5", "more than 100000 seeds");
    expect_bad_seeds("0-49999,50000-99998,5", "seed 5 is given twice");

    expect_bad_seeds("", "'' is not a seed");
    expect_bad_seeds("3-1", "'3-1' ends before it starts");
    expect_bad_seeds("1,1", "seed 1 is given twice");
    expect_bad_seeds("1-3,2", "seed 2 is given twice");
    expect_bad_seeds("x", "'x' is not a seed");
    expect_bad_seeds("1-", "'' is not a seed");
    expect_bad_seeds("-5", "'' is not a seed");
    expect_bad_seeds("1,,2", "'' is not a seed");
    expect_bad_seeds("1,", "'' is not a seed");
    expect_bad_seeds(" 1", "' 1' is not a seed");
    expect_bad_seeds("+1", "'+1' is not a seed");
    expect_bad_seeds("18446744073709551616", "'18446744073709551616' is not a seed");
    expect_bad_seeds("0x", "'0x' is not a seed");
    expect_bad_seeds("0-100000", "more than 100000 seeds");
    expect_bad_seeds("0-18446744073709551615", "more than 100000 seeds");
}

static void test_json(void **state)
{
    static const char doc[] = " {\"seed\": 18446744073709551615, \"a\": [1, -2.5e3, true, false, "
                              "null, {}], \"s\": \"\\u00e9\\ud83d\\ude00\\n\\\"\", \"neg\": -7} ";
    struct fl_error *err = NULL;
    struct fl_json *j = fl_json_parse(doc, strlen(doc), &err);
    assert_non_null(j);
    uint64_t seed = 0;
    assert_true(fl_json_u64(j, "seed", &seed));
    assert_true(seed == UINT64_MAX); /* exact: numbers keep their text */
    int64_t neg = 0;
    assert_true(fl_json_i64(j, "neg", &neg));
    assert_int_equal(neg, -7);
    assert_false(fl_json_u64(j, "neg", &seed));
    assert_string_equal(fl_json_get_str(j, "s"), "\xc3\xa9\xf0\x9f\x98\x80\n\"");
    const struct fl_json *a = fl_json_get(j, "a");
    assert_non_null(a);
    assert_int_equal(a->type, FL_JSON_ARR);
    assert_int_equal(a->n, 6);
    assert_int_equal(a->items[2]->type, FL_JSON_BOOL);
    assert_true(a->items[2]->b);
    assert_int_equal(a->items[5]->type, FL_JSON_OBJ);
    assert_null(fl_json_get(j, "missing"));
    assert_null(fl_json_get_str(j, "seed"));
    fl_json_free(j);

    static const char *const bad[] = {
        "",
        "{",
        "{\"a\" 1}",
        "[1,]",
        "01",
        "1.",
        "\"\\ud800\"",
        "\"\\u0000\"",
        "\"a\x01\"",
        "\"\xff\"",
        "{} x",
        "tru",
        "[1 2]",
        "\"\\q\"",
        "{1: 2}",
        "-",
        "\"\xed\xa0\x80\"",
    };
    for (size_t i = 0; i < FL_ARRAY_LEN(bad); i++) {
        struct fl_json *b = fl_json_parse(bad[i], strlen(bad[i]), &err);
        if (b) {
            fail_msg("'%s' parsed", bad[i]);
        }
        assert_non_null(err);
        assert_non_null(strstr(err->msg, "JSON: ")); /* "JSON: WHAT at offset N" */
        assert_non_null(strstr(err->msg, " at offset "));
        fl_error_free(err);
        err = NULL;
    }
    /* A value deeper than 64 (the outermost is at depth 0): refused, not
     * a stack overflow. */
    char deep[200] = {0};
    memset(deep, '[', 66);
    memset(deep + 66, ']', 66);
    assert_null(fl_json_parse(deep, strlen(deep), &err));
    assert_non_null(strstr(err->msg, "nesting too deep"));
    fl_error_free(err);
}

static void put(const char *dir, const char *name, const char *text)
{
    char *p = fl_xasprintf("%s/%s", dir, name);
    assert_true(fl_write_file(p, text, strlen(text), NULL));
    free(p);
}

static char *mkrun(const char *root, const char *name)
{
    char *d = fl_xasprintf("%s/%s", root, name);
    assert_int_equal(mkdir(d, 0700), 0);
    return d;
}

/* Directory names and summary.json fields a hostile scenario or guest can
 * shape; the index must stay well-formed, escape all of it, and keep each
 * link pointing at its own run. */
static void test_index_hostile(void **state)
{
    char root[] = "/tmp/fl-index-XXXXXX";
    assert_non_null(mkdtemp(root));
    const char *hostile_dir = "02-<script>alert(1)<\\script>\"&'#?%20 x";
    char *d1 = mkrun(root, "01-seed-5");
    put(d1, "summary.json",
        "{\"scenario\": \"s<b>\", \"scenario_file\": \"my scen's.yaml\", \"seed\": 5, "
        "\"verdict\": \"pass\", \"duration_ns\": 1500000000, \"checks\": {\"total\": 1, "
        "\"failed\": 0, \"list\": [{\"name\": \"ok\", \"passed\": true}]}, \"files\": "
        "{\"report\": \"report.html\"}, \"replay\": \"faultline run --replay-of x\"}\n");
    char *d2 = mkrun(root, hostile_dir);
    put(d2, "summary.json",
        "{\"scenario\": \"s<b>\", \"scenario_file\": \"s.yaml\", \"seed\": "
        "18446744073709551615, \"verdict\": \"fail\", \"duration_ns\": 2000000000, "
        "\"checks\": {\"total\": 2, \"failed\": 1, \"list\": [{\"name\": \"</td><img src=x "
        "onerror=alert(1)>\", \"passed\": false}, {\"name\": \"fine\", \"passed\": true}]}, "
        "\"files\": {\"report\": \"report.html\"}, \"error\": \"\\u001b[2J<!-- & -->\"}\n");
    char *d3 = mkrun(root, "03-seed-9");
    put(d3, "seed", "9\n"); /* killed before its summary */
    char *d4 = mkrun(root, "04-seed-1");
    put(d4, "summary.json", "{\"verdict\": \"error\", \"seed\": 1, \"error\": \"QEMU missing\"}");
    char *other = mkrun(root, "not-a-run"); /* no summary, no seed: not listed */
    char *latest = fl_xasprintf("%s/latest", root);
    assert_int_equal(symlink("01-seed-5", latest), 0); /* a link: not listed twice */
    put(root, "notes.txt", "a file\n");

    struct rn_index index;
    struct fl_error *err = NULL;
    assert_true(rn_index_read(root, &index, &err));
    assert_int_equal(index.n_runs, 4);
    assert_int_equal(index.n_pass, 1);
    assert_int_equal(index.n_fail, 1);
    assert_int_equal(index.n_error, 1);
    assert_int_equal(index.n_incomplete, 1);
    assert_int_equal(rn_index_verdict(&index), RUNNER_FAIL);
    char *rerun = rn_index_rerun(&index.runs[0]);
    assert_string_equal(rerun, "faultline run 'my scen'\\''s.yaml' --seed 5");
    free(rerun);
    rerun = rn_index_rerun(&index.runs[1]);
    assert_string_equal(rerun, "faultline run s.yaml --seed 18446744073709551615");
    free(rerun);
    rn_index_clear(&index);

    char *html = NULL;
    assert_true(runner_index_dir(root, &html, &err));
    char *want = fl_xasprintf("%s/index.html", root);
    assert_string_equal(html, want);
    free(want);
    free(html);

    /* The names travel in the environment: no shell quoting of them. */
    setenv("FL_ROOT", root, 1);
    setenv("FL_HOSTILE", hostile_dir, 1);
    char *cmd = fl_xstrdup(
        "python3 - <<'PY'\n"
        "import json, os, urllib.parse\n"
        "from html.parser import HTMLParser\n"
        "root, hostile = os.environ['FL_ROOT'], os.environ['FL_HOSTILE']\n"
        "j = json.load(open(root + '/index.json', encoding='utf-8'))\n"
        "assert j['verdict'] == 'fail', j['verdict']\n"
        "assert j['counts'] == {'total': 4, 'pass': 1, 'fail': 1, 'error': 1, 'interrupted': 0,"
        " 'incomplete': 1}, j['counts']\n"
        "names = [r['dir'] for r in j['runs']]\n"
        "assert names == ['01-seed-5', hostile, '03-seed-9', '04-seed-1'], names\n"
        "assert [r['seed'] for r in j['runs']] == [5, 18446744073709551615, 9, 1]\n"
        "assert j['runs'][1]['failed_checks'] == ['</td><img src=x onerror=alert(1)>']\n"
        "assert j['runs'][1]['error'] == '\\x1b[2J<!-- & -->'\n"
        "assert j['runs'][0]['duration_ns'] == 1500000000 and j['runs'][2]['duration_ns'] is None\n"
        "assert j['runs'][2]['verdict'] == 'incomplete' and j['runs'][2]['report'] is None\n"
        "assert j['runs'][1]['report'] == hostile + '/report.html'\n"
        "class P(HTMLParser):\n"
        "    def __init__(s):\n"
        "        super().__init__(convert_charrefs=True); s.tags = []; s.hrefs = []; s.text = []\n"
        "        s.stack = []\n"
        "    def handle_starttag(s, tag, attrs):\n"
        "        s.tags.append(tag)\n"
        "        if tag not in ('meta', 'br'): s.stack.append(tag)\n"
        "        s.hrefs += [v for k, v in attrs if k == 'href']\n"
        "    def handle_endtag(s, tag):\n"
        "        assert s.stack and s.stack[-1] == tag, (tag, s.stack)\n"
        "        s.stack.pop()\n"
        "    def handle_data(s, d): s.text.append(d)\n"
        "    def handle_comment(s, d): raise AssertionError('a comment: ' + d)\n"
        "p = P(); p.feed(open(root + '/index.html', encoding='utf-8').read()); p.close()\n"
        "assert not p.stack, p.stack\n"
        "assert 'script' not in p.tags and 'img' not in p.tags, p.tags\n"
        "assert [urllib.parse.unquote(h) for h in p.hrefs] == ["
        "'01-seed-5/report.html', hostile + '/report.html'], p.hrefs\n"
        "assert all('#' not in h and '?' not in h for h in p.hrefs), p.hrefs\n"
        "text = ''.join(p.text)\n"
        "assert hostile in text and '</td><img src=x onerror=alert(1)>' in text\n"
        "assert \"faultline run 'my scen'\" not in text  # a passing run has no rerun\n"
        "assert 'faultline run s.yaml --seed 18446744073709551615' in text\n"
        "PY");
    assert_int_equal(system(cmd), 0);
    free(cmd);

    /* A directory without runs is an error that names it. */
    char *empty = mkrun(root, "empty");
    assert_false(runner_index_dir(empty, NULL, &err));
    assert_int_equal(err->code, ENOENT);
    assert_non_null(strstr(err->msg, "holds no run directories"));
    fl_error_free(err);

    free(d1), free(d2), free(d3), free(d4), free(other), free(latest), free(empty);
    fl_rm_rf(root);
}

/* runs/latest follows the newest run, atomically; a "latest" that is no
 * symbolic link is never replaced. */
static void test_latest(void **state)
{
    char root[] = "/tmp/fl-latest-XXXXXX";
    assert_non_null(mkdtemp(root));
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(root), 0);
    struct fl_error *err = NULL;
    char *a = rn_dir_make_default("scen", &err);
    char *b = rn_dir_make_default("scen", &err); /* same second: a suffix */
    assert_non_null(a);
    assert_non_null(b);
    assert_string_not_equal(a, b);
    assert_int_equal(strncmp(a, "runs/", 5), 0);
    char target[PATH_MAX];
    assert_true(rn_dir_link_latest(a));
    ssize_t n = readlink("runs/latest", target, sizeof target - 1);
    assert_true(n > 0);
    target[n] = '\0';
    assert_string_equal(target, a + 5); /* relative: the tree can move */
    assert_true(rn_dir_link_latest(b));
    n = readlink("runs/latest", target, sizeof target - 1);
    target[n] = '\0';
    assert_string_equal(target, b + 5);
    struct stat st;
    char *seed = fl_xasprintf("runs/latest/../%s", b + 5);
    assert_int_equal(stat(seed, &st), 0);
    free(seed);
    /* No temporary link is left beside it. */
    assert_int_equal(system("test \"$(ls -A runs | grep -c '^\\.latest')\" = 0"), 0);
    /* A real directory called latest stays. */
    assert_int_equal(unlink("runs/latest"), 0);
    assert_int_equal(mkdir("runs/latest", 0700), 0);
    assert_false(rn_dir_link_latest(a));
    assert_int_equal(lstat("runs/latest", &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(chdir(cwd), 0);
    free(a);
    free(b);
    fl_rm_rf(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seeds),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_index_hostile),
        cmocka_unit_test(test_latest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
