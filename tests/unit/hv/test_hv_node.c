/*
 * hv_node against a fake QEMU: this test binary re-executed (via
 * FL_FAKE_QEMU in the environment) speaks QMP on fd 3 and plays a hostile
 * or well-behaved guest agent on fd 4.  Checks the controller's side of
 * the agent protocol without booting anything: setup -> ready, exec
 * results, and that every kind of malformed agent input is a reported
 * protocol violation, never a crash or a hang.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "hv/hv.h"
#include "hv/proto.h"

/* ---- the fake QEMU ---- */

static void put_frame(int fd, uint16_t type, uint32_t id, uint32_t session, struct fl_agent_wr *pl)
{
    struct fl_agent_wr w = {0};
    size_t s = fl_agent_wr_begin(&w, type, id, session);
    if (pl && pl->size) {
        /* raw payload bytes */
        size_t off = w.size;
        w.p = realloc(w.p, w.size + pl->size);
        memcpy(w.p + off, pl->p, pl->size);
        w.size += pl->size;
        w.alloc = w.size;
    }
    fl_agent_wr_finish(&w, s);
    ssize_t n = write(fd, w.p, w.size);
    (void)n;
    fl_agent_wr_free(&w);
}

static bool read_frame(int fd, struct fl_agent_header *h, uint8_t **payload)
{
    uint8_t hdr[FL_AGENT_HEADER_SIZE];
    size_t got = 0;
    while (got < sizeof hdr) {
        ssize_t n = read(fd, hdr + got, sizeof hdr - got);
        if (n <= 0) {
            return false;
        }
        got += (size_t)n;
    }
    if (fl_agent_header_parse(hdr, h) < 0) {
        return false;
    }
    *payload = malloc(h->len + 1);
    got = 0;
    while (got < h->len) {
        ssize_t n = read(fd, *payload + got, h->len - got);
        if (n <= 0) {
            return false;
        }
        got += (size_t)n;
    }
    return true;
}

static void exec_result(int fd, uint32_t id, uint32_t session, uint32_t code, uint32_t flags,
                        const char *out, uint32_t out_claim)
{
    struct fl_agent_wr pl = {0};
    fl_agent_wr_u32(&pl, code);
    fl_agent_wr_u32(&pl, 0);
    fl_agent_wr_u32(&pl, flags);
    fl_agent_wr_u32(&pl, out_claim);
    fl_agent_wr_bytes(&pl, out, (uint32_t)strlen(out));
    /* out_claim != strlen(out) makes the payload lie about its sizes */
    if (out_claim == strlen(out)) {
        /* rewrite: proper out bytes then empty err */
        fl_agent_wr_free(&pl);
        fl_agent_wr_u32(&pl, code);
        fl_agent_wr_u32(&pl, 0);
        fl_agent_wr_u32(&pl, flags);
        fl_agent_wr_bytes(&pl, out, (uint32_t)strlen(out));
        fl_agent_wr_bytes(&pl, "", 0);
    }
    put_frame(fd, FL_AGENT_EXEC_RESULT, id, session, &pl);
    fl_agent_wr_free(&pl);
}

static int fake_qemu(const char *mode)
{
    const char greeting[] = "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n";
    ssize_t n = write(3, greeting, sizeof greeting - 1);
    (void)n;
    uint32_t session = 0x5eed;
    struct fl_agent_wr hello = {0};
    fl_agent_wr_u32(&hello, FL_AGENT_VERSION);
    fl_agent_wr_u32(&hello, session);
    if (!strcmp(mode, "bad-hello")) {
        put_frame(4, FL_AGENT_HELLO, 0, session + 1, &hello); /* session mismatch */
        pause();
    }
    put_frame(4, FL_AGENT_HELLO, 0, session, &hello);
    fl_agent_wr_free(&hello);
    struct fl_agent_header h;
    uint8_t *pl = NULL;
    if (!read_frame(4, &h, &pl) || h.type != FL_AGENT_EXEC) {
        return 1;
    }
    free(pl);
    if (!strcmp(mode, "setup-fails")) {
        exec_result(4, h.id, session, 1, 0, "", 0);
        pause();
    }
    exec_result(4, h.id, session, 0, 0, "", 0); /* setup done: ready */
    for (;;) {
        if (!read_frame(4, &h, &pl)) {
            return 0;
        }
        free(pl);
        if (h.type == FL_AGENT_PING) {
            put_frame(4, FL_AGENT_PONG, h.id, session, NULL);
            continue;
        }
        if (h.type != FL_AGENT_EXEC) {
            continue;
        }
        if (!strcmp(mode, "good")) {
            exec_result(4, h.id, session, 7, 0, "hello", 5);
        } else if (!strcmp(mode, "lying-size")) {
            exec_result(4, h.id, session, 0, 0, "hi", 1000);
        } else if (!strcmp(mode, "bad-flags")) {
            exec_result(4, h.id, session, 0, 0x80, "", 0);
        } else if (!strcmp(mode, "bad-exit")) {
            exec_result(4, h.id, session, 300, 0, "", 0);
        } else if (!strcmp(mode, "old-session")) {
            exec_result(4, h.id, session + 1, 0, 0, "stale", 5); /* ignored */
        } else if (!strcmp(mode, "oversize")) {
            uint8_t hdr[FL_AGENT_HEADER_SIZE];
            struct fl_agent_header big = {
                .type = FL_AGENT_EXEC_RESULT, .id = h.id, .session = session, .len = UINT32_MAX};
            fl_agent_header_write(hdr, &big);
            n = write(4, hdr, sizeof hdr);
        } else if (!strcmp(mode, "garbage")) {
            n = write(4, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
        } else if (!strcmp(mode, "wrong-type")) {
            put_frame(4, FL_AGENT_EXEC, h.id, session, NULL); /* a request, from the guest */
        }
    }
}

/* ---- the tests ---- */

static char dir[64];
static char self[4096];
static int fails, exits;
static int last_fail_code;

static void on_fail(struct hv_node *n, const struct fl_error *err, void *arg)
{
    fails++;
    last_fail_code = err->code;
}

static void on_exit_cb(struct hv_node *n, bool unexpected, int status, void *arg)
{
    exits++;
}

static const struct hv_callbacks cbs = {.on_fail = on_fail, .on_exit = on_exit_cb};

struct exec_out {
    bool done;
    int code;
    int exit_code;
    char out[64];
};

static void exec_cb(struct hv_node *n, const struct hv_exec_result *res, const struct fl_error *err,
                    void *arg)
{
    struct exec_out *o = arg;
    o->done = true;
    o->code = err ? err->code : 0;
    if (res) {
        o->exit_code = res->exit_code;
        snprintf(o->out, sizeof o->out, "%s", res->out);
    }
}

static struct hv_node *start(struct fl_loop *loop, const char *mode)
{
    setenv("FL_FAKE_QEMU", mode, 1);
    struct hv_node_config cfg = {.name = "fake",
                                 .kernel = self,
                                 .initrd = self,
                                 .run_dir = dir,
                                 .accel = HV_ACCEL_TCG,
                                 .qemu_binary = self,
                                 .ready_timeout_ns = 5 * FL_NS_PER_SEC};
    struct fl_error *err = NULL;
    struct hv_node *n = hv_node_create(loop, &cfg, &cbs, NULL, &err);
    assert_non_null(n);
    assert_true(hv_node_boot(n, &err));
    unsetenv("FL_FAKE_QEMU");
    fails = exits = 0;
    last_fail_code = 0;
    return n;
}

static void spin_until(struct fl_loop *loop, bool *flag, int *counter)
{
    int64_t deadline = fl_clock_mono_ns() + 10 * FL_NS_PER_SEC;
    while (!(flag && *flag) && !(counter && *counter) && fl_clock_mono_ns() < deadline) {
        fl_loop_run_once(loop, 50);
    }
}

static void test_good_agent(void **state)
{
    struct fl_loop *loop = fl_loop_create(NULL, NULL);
    struct hv_node *n = start(loop, "good");
    struct fl_error *err = NULL;
    assert_true(hv_node_wait_state(n, HV_NODE_READY, 10 * FL_NS_PER_SEC, &err));
    struct exec_out o = {0};
    assert_true(hv_node_exec(n, "anything", FL_NS_PER_SEC, exec_cb, &o, &err));
    spin_until(loop, &o.done, NULL);
    assert_true(o.done);
    assert_int_equal(o.code, 0);
    assert_int_equal(o.exit_code, 7);
    assert_string_equal(o.out, "hello");
    assert_int_equal(fails, 0);
    /* crash: expected exit */
    pid_t pid = hv_node_pid(n);
    assert_true(pid > 0);
    assert_true(hv_node_crash(n, &err));
    assert_true(hv_node_wait_state(n, HV_NODE_OFF, 5 * FL_NS_PER_SEC, &err));
    assert_int_equal(exits, 1);
    assert_int_equal(hv_node_pid(n), 0);
    hv_node_destroy(n);
    fl_loop_destroy(loop);
}

/* Each hostile answer is a protocol violation: on_fail(EPROTO), the
 * pending exec fails, the controller carries on. */
static void test_hostile_agents(void **state)
{
    const char *modes[] = {"lying-size", "bad-flags", "bad-exit",
                           "oversize",   "garbage",   "wrong-type"};
    for (size_t i = 0; i < FL_ARRAY_LEN(modes); i++) {
        struct fl_loop *loop = fl_loop_create(NULL, NULL);
        struct hv_node *n = start(loop, modes[i]);
        struct fl_error *err = NULL;
        assert_true(hv_node_wait_state(n, HV_NODE_READY, 10 * FL_NS_PER_SEC, &err));
        struct exec_out o = {0};
        assert_true(hv_node_exec(n, "x", FL_NS_PER_SEC, exec_cb, &o, &err));
        spin_until(loop, &o.done, NULL);
        if (!o.done || o.code != EPROTO || last_fail_code != EPROTO) {
            fail_msg("mode %s: done %d code %d fail %d", modes[i], o.done, o.code, last_fail_code);
        }
        hv_node_destroy(n);
        fl_loop_destroy(loop);
    }
}

static void test_stale_session_and_setup_failure(void **state)
{
    /* answers carrying another session are ignored: the exec times out */
    struct fl_loop *loop = fl_loop_create(NULL, NULL);
    struct hv_node *n = start(loop, "old-session");
    struct fl_error *err = NULL;
    assert_true(hv_node_wait_state(n, HV_NODE_READY, 10 * FL_NS_PER_SEC, &err));
    struct exec_out o = {0};
    /* 1 ms guest timeout + the controller's grace */
    assert_true(hv_node_exec(n, "x", FL_NS_PER_MS, exec_cb, &o, &err));
    spin_until(loop, &o.done, NULL);
    assert_true(o.done);
    assert_int_equal(o.code, ETIMEDOUT);
    assert_int_equal(fails, 0);
    hv_node_destroy(n);

    /* the setup script failing is reported and the node never gets ready */
    n = start(loop, "setup-fails");
    spin_until(loop, NULL, &fails);
    assert_int_equal(fails, 1);
    assert_int_equal(last_fail_code, EIO);
    assert_int_equal(hv_node_state(n), HV_NODE_BOOTING);
    hv_node_destroy(n);

    /* a HELLO whose session fields disagree */
    n = start(loop, "bad-hello");
    spin_until(loop, NULL, &fails);
    assert_int_equal(last_fail_code, EPROTO);
    hv_node_destroy(n);
    fl_loop_destroy(loop);
}

static void test_qemu_missing(void **state)
{
    struct fl_loop *loop = fl_loop_create(NULL, NULL);
    struct hv_node_config cfg = {.name = "m",
                                 .kernel = self,
                                 .initrd = self,
                                 .run_dir = dir,
                                 .accel = HV_ACCEL_TCG,
                                 .qemu_binary = "/nonexistent/qemu-system-x86_64"};
    struct fl_error *err = NULL;
    struct hv_node *n = hv_node_create(loop, &cfg, &cbs, NULL, &err);
    assert_non_null(n);
    /* Refused before anything is started, with what to do about it. */
    assert_false(hv_node_boot(n, &err));
    assert_int_equal(err->code, ENOENT);
    assert_non_null(strstr(err->msg, "QEMU '/nonexistent/qemu-system-x86_64' was not found:"));
    assert_non_null(strstr(err->msg, "apt-get install qemu-system-x86"));
    assert_non_null(strstr(err->msg, "FAULTLINE_QEMU"));
    assert_int_equal(hv_node_state(n), HV_NODE_OFF);
    assert_int_equal(hv_node_pid(n), 0);
    fl_error_free(err);
    hv_node_destroy(n);

    /* A bare name is looked up in PATH, as execvp would. */
    cfg.qemu_binary = "no-such-qemu-system-xyz";
    err = NULL;
    n = hv_node_create(loop, &cfg, &cbs, NULL, &err);
    assert_non_null(n);
    assert_false(hv_node_boot(n, &err));
    assert_non_null(strstr(err->msg, "'no-such-qemu-system-xyz' was not found in PATH"));
    fl_error_free(err);
    hv_node_destroy(n);
    fl_loop_destroy(loop);
}

static void test_missing_sockets(void **state)
{
    struct fl_loop *loop = fl_loop_create(NULL, NULL);
    struct hv_nic_config nic = {.socket_path = "/nonexistent/n0.sock"};
    struct hv_node_config cfg = {.name = "s",
                                 .kernel = self,
                                 .initrd = self,
                                 .run_dir = dir,
                                 .accel = HV_ACCEL_TCG,
                                 .qemu_binary = self,
                                 .nics = &nic,
                                 .n_nics = 1};
    struct fl_error *err = NULL;
    struct hv_node *n = hv_node_create(loop, &cfg, &cbs, NULL, &err);
    assert_non_null(n);
    assert_false(hv_node_boot(n, &err));
    assert_non_null(strstr(err->msg, "nics[0]"));
    assert_non_null(strstr(err->msg, "netback"));
    fl_error_free(err);
    assert_int_equal(hv_node_state(n), HV_NODE_OFF);
    hv_node_destroy(n);
    fl_loop_destroy(loop);
}

int main(int argc, char **argv)
{
    const char *mode = getenv("FL_FAKE_QEMU");
    if (mode) {
        return fake_qemu(mode);
    }
    signal(SIGPIPE, SIG_IGN);
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        return 1;
    }
    self[n] = '\0';
    snprintf(dir, sizeof dir, "/tmp/fl-hv-node-XXXXXX");
    if (!mkdtemp(dir)) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_agent),
        cmocka_unit_test(test_hostile_agents),
        cmocka_unit_test(test_stale_session_and_setup_failure),
        cmocka_unit_test(test_qemu_missing),
        cmocka_unit_test(test_missing_sockets),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fl_rm_rf(dir);
    return rc;
}
