/* Unit tests for core/: errors, buffers, logging limits, clocks, loop. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"

static void test_error_first_wins(void **state)
{
    struct fl_error *err = NULL;
    fl_error_setf(&err, EINVAL, "first %d", 1);
    fl_error_setf(&err, EIO, "second");
    assert_non_null(err);
    assert_int_equal(err->code, EINVAL);
    assert_string_equal(err->msg, "first 1");
    fl_error_prepend(&err, "file.yaml:%d: ", 3);
    assert_string_equal(err->msg, "file.yaml:3: first 1");
    fl_error_free(err);

    fl_error_setf(NULL, EINVAL, "ignored"); /* must not crash */
    struct fl_error *dst = NULL, *src = NULL;
    fl_error_setf_errno(&src, ENOENT, "open '%s'", "x");
    assert_string_equal(src->msg, "open 'x': No such file or directory");
    fl_error_propagate(&dst, src);
    assert_ptr_equal(dst, src);
    fl_error_free(dst);
    fl_error_free(NULL);
}

static void test_buf_and_json(void **state)
{
    struct fl_buf b = {0};
    fl_buf_puts(&b, "a");
    fl_buf_printf(&b, "%d", 42);
    fl_buf_json_string(&b, "q\"\\\n\x01");
    assert_string_equal(b.data, "a42\"q\\\"\\\\\\n\\u0001\"");
    assert_int_equal(b.size, strlen(b.data));
    char *s = fl_buf_steal(&b);
    assert_null(b.data);
    free(s);
    fl_buf_free(&b);

    /* Plain JSON keeps '<' readable; the script-safe form cannot close a
     * <script> element. */
    fl_buf_json_string(&b, "n1->n2 </script>");
    assert_string_equal(b.data, "\"n1->n2 </script>\"");
    fl_buf_reset(&b);
    fl_buf_json_string_script(&b, "</script>&\x7f");
    assert_string_equal(b.data, "\"\\u003c/script\\u003e\\u0026\\u007f\"");
    fl_buf_reset(&b);
    fl_text_xml(&b, "a<b>&\"c\x01\n", 9);
    assert_string_equal(b.data, "a&lt;b&gt;&amp;&quot;c\xef\xbf\xbd\n");
    fl_buf_reset(&b);
    fl_buf_json_string(&b, NULL);
    assert_string_equal(b.data, "\"\"");
    fl_buf_free(&b);
}

static void test_edit_distance_and_hash(void **state)
{
    assert_int_equal(fl_edit_distance("kitten", "sitting"), 3);
    assert_int_equal(fl_edit_distance("", "abc"), 3);
    assert_int_equal(fl_edit_distance("nodes", "nodes"), 0);
    assert_int_equal(fl_edit_distance("nodse", "nodes"), 2);
    /* FNV-1a 64 known answers */
    assert_true(fl_hash64("", 0) == UINT64_C(0xcbf29ce484222325));
    assert_true(fl_hash64("a", 1) == UINT64_C(0xaf63dc4c8601ec8c));
}

static void test_ratelimit(void **state)
{
    struct fl_ratelimit rl = FL_RATELIMIT_INIT(FL_NS_PER_SEC, 2);
    uint64_t supp;
    assert_true(fl_ratelimit_allow(&rl, 10, &supp));
    assert_true(fl_ratelimit_allow(&rl, 20, &supp));
    assert_false(fl_ratelimit_allow(&rl, 30, &supp));
    assert_false(fl_ratelimit_allow(&rl, 40, &supp));
    assert_true(fl_ratelimit_allow(&rl, 10 + FL_NS_PER_SEC, &supp));
    assert_int_equal(supp, 2);
}

struct order {
    int seen[8];
    int n;
    struct fl_timer *self_destroy;
};

static void record_timer(struct fl_loop *loop, struct fl_timer *t, void *arg)
{
    struct order *o = arg;
    /* A fired timer is disarmed before its callback runs. */
    o->seen[o->n] = fl_timer_armed(t) ? -1 : o->n;
    o->n++;
}

static void destroy_self(struct fl_loop *loop, struct fl_timer *t, void *arg)
{
    struct order *o = arg;
    o->seen[o->n++] = 100;
    fl_timer_destroy(t);
    o->self_destroy = NULL;
}

static void test_timers_manual_clock(void **state)
{
    struct fl_clock *clk = fl_clock_manual_create(1000);
    struct fl_loop *loop = fl_loop_create(clk, NULL);
    assert_non_null(loop);
    struct order o = {0};
    struct fl_timer *a = fl_timer_create(loop, record_timer, &o);
    struct fl_timer *b = fl_timer_create(loop, record_timer, &o);
    o.self_destroy = fl_timer_create(loop, destroy_self, &o);
    fl_timer_arm(a, 3000);
    fl_timer_arm(b, 2000);
    fl_timer_arm(o.self_destroy, 2500);
    assert_true(fl_timer_armed(a));
    assert_int_equal(fl_loop_run_once(loop, 0), 0); /* nothing due yet */
    fl_clock_manual_advance(clk, 1000);             /* now 2000 */
    assert_int_equal(fl_loop_run_once(loop, 0), 1);
    assert_int_equal(o.n, 1);
    assert_false(fl_timer_armed(b));
    fl_clock_manual_set(clk, 5000);
    assert_int_equal(fl_loop_run_once(loop, 0), 2);
    assert_int_equal(o.seen[1], 100); /* 2500 fired before 3000 */
    assert_null(o.self_destroy);
    /* re-arm and disarm */
    fl_timer_arm(a, 6000);
    fl_timer_disarm(a);
    fl_clock_manual_set(clk, 7000);
    assert_int_equal(fl_loop_run_once(loop, 0), 0);
    fl_timer_destroy(a);
    fl_timer_destroy(b);
    fl_timer_destroy(NULL);
    fl_loop_destroy(loop);
    fl_loop_destroy(NULL);
    fl_clock_destroy(clk);
}

static void stop_on_timer(struct fl_loop *loop, struct fl_timer *t, void *arg)
{
    *(int64_t *)arg = fl_clock_mono_ns();
    fl_loop_stop(loop);
}

static void test_timer_real_clock(void **state)
{
    struct fl_loop *loop = fl_loop_create(NULL, NULL);
    int64_t fired = 0;
    struct fl_timer *t = fl_timer_create(loop, stop_on_timer, &fired);
    int64_t start = fl_clock_mono_ns();
    fl_timer_arm(t, start + 5 * FL_NS_PER_MS);
    assert_int_equal(fl_loop_run(loop), 0);
    assert_true(fired >= start + 5 * FL_NS_PER_MS);
    fl_timer_destroy(t);
    fl_loop_destroy(loop);
}

struct pipe_ctx {
    int fds[2];
    int reads;
    bool delete_other;
    int other_fd;
};

static void on_readable(struct fl_loop *loop, int fd, uint32_t events, void *arg)
{
    struct pipe_ctx *c = arg;
    char buf[16];
    assert_true(events & EPOLLIN);
    assert_true(read(fd, buf, sizeof buf) > 0);
    c->reads++;
    if (c->delete_other) {
        fl_loop_del_fd(loop, c->other_fd);
    }
}

static void test_fd_events_and_delete_in_batch(void **state)
{
    struct fl_loop *loop = fl_loop_create(NULL, NULL);
    struct pipe_ctx a = {0}, b = {0};
    assert_int_equal(pipe(a.fds), 0);
    assert_int_equal(pipe(b.fds), 0);
    assert_int_equal(fl_loop_add_fd(loop, a.fds[0], EPOLLIN, on_readable, &a), 0);
    assert_int_equal(fl_loop_add_fd(loop, a.fds[0], EPOLLIN, on_readable, &a), -EEXIST);
    assert_int_equal(fl_loop_add_fd(loop, b.fds[0], EPOLLIN, on_readable, &b), 0);
    /* Whichever callback runs first deletes the other one: exactly one
     * of them may run in this batch. */
    a.delete_other = b.delete_other = true;
    a.other_fd = b.fds[0];
    b.other_fd = a.fds[0];
    assert_int_equal(write(a.fds[1], "x", 1), 1);
    assert_int_equal(write(b.fds[1], "y", 1), 1);
    assert_int_equal(fl_loop_run_once(loop, 100), 1);
    assert_int_equal(a.reads + b.reads, 1);
    assert_int_equal(fl_loop_del_fd(loop, 12345), -ENOENT);
    for (int i = 0; i < 2; i++) {
        close(a.fds[i]);
        close(b.fds[i]);
    }
    fl_loop_destroy(loop);
}

static void on_signal(struct fl_loop *loop, int signo, void *arg)
{
    *(int *)arg = signo;
    fl_loop_stop(loop);
}

static void test_signal(void **state)
{
    struct fl_loop *loop = fl_loop_create(NULL, NULL);
    int got = 0;
    assert_int_equal(fl_loop_add_signal(loop, SIGUSR1, on_signal, &got), 0);
    assert_int_equal(fl_loop_add_signal(loop, 0, on_signal, &got), -EINVAL);
    kill(getpid(), SIGUSR1);
    assert_int_equal(fl_loop_run(loop), 0);
    assert_int_equal(got, SIGUSR1);
    fl_loop_destroy(loop);
}

static void test_files(void **state)
{
    char tmpl[] = "/tmp/fl-core-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    char *deep = fl_xasprintf("%s/a/b/c", tmpl);
    assert_true(fl_mkdir_p(deep, 0700, NULL));
    char *f = fl_xasprintf("%s/file", deep);
    assert_true(fl_write_file(f, "hello", 5, NULL));
    size_t size;
    char *data = fl_read_file(f, &size, NULL);
    assert_string_equal(data, "hello");
    assert_int_equal(size, 5);
    free(data);
    struct fl_error *err = NULL;
    assert_false(fl_mkdir_p(f, 0700, &err)); /* a file is in the way */
    assert_non_null(strstr(err->msg, "not a directory"));
    fl_error_free(err);
    err = NULL;
    assert_null(fl_read_file("/nonexistent/x", NULL, &err));
    assert_non_null(strstr(err->msg, "/nonexistent/x"));
    fl_error_free(err);
    assert_int_equal(fl_rm_rf(tmpl), 0);
    assert_int_equal(access(tmpl, F_OK), -1);
    free(deep);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_first_wins),
        cmocka_unit_test(test_buf_and_json),
        cmocka_unit_test(test_edit_distance_and_hash),
        cmocka_unit_test(test_ratelimit),
        cmocka_unit_test(test_timers_manual_clock),
        cmocka_unit_test(test_timer_real_clock),
        cmocka_unit_test(test_fd_events_and_delete_in_batch),
        cmocka_unit_test(test_signal),
        cmocka_unit_test(test_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
