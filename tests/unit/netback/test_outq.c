/* Unit tests for a port's bounded output queue: framing, the bound,
 * wrap-around, partial writes, corruption on the way out, EPIPE without
 * SIGPIPE. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"
#include "netback/outq.h"
#include "netback/reassembly.h"

struct got {
    size_t n;
    uint8_t first[64];
    size_t sizes[4096];
    uint8_t tags[4096];
};

static int on_frame(void *arg, const uint8_t *frame, size_t size)
{
    struct got *g = arg;
    if (g->n == 0) {
        memcpy(g->first, frame, FL_MIN(size, sizeof g->first));
    }
    g->sizes[g->n] = size;
    g->tags[g->n] = frame[size - 1];
    g->n++;
    return 0;
}

/* Reads everything available from fd through a reassembler. */
static void drain(int fd, struct nb_reasm *r, struct got *g)
{
    uint8_t buf[65536];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0) {
            break;
        }
        assert_int_equal(nb_reasm_feed(r, buf, (size_t)n, on_frame, g), 0);
    }
}

static void test_bound_and_order(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct nb_outq q;
    nb_outq_init(&q, 1000);
    uint8_t frame[100];
    size_t pushed = 0;
    for (int i = 0; i < 20; i++) {
        memset(frame, i, sizeof frame);
        if (nb_outq_push(&q, frame, sizeof frame)) {
            pushed++;
        }
    }
    assert_int_equal(pushed, 9); /* 9 * 104 = 936 <= 1000 < 10 * 104 */
    assert_int_equal(q.used, 936);
    assert_int_equal(nb_outq_send(&q, sv[0]), 936);
    assert_true(nb_outq_empty(&q));
    assert_int_equal(nb_outq_send(&q, sv[0]), 0);
    struct nb_reasm r;
    nb_reasm_init(&r);
    struct got g = {0};
    drain(sv[1], &r, &g);
    assert_int_equal(g.n, 9);
    for (size_t i = 0; i < g.n; i++) {
        assert_int_equal(g.sizes[i], 100);
        assert_int_equal(g.tags[i], i);
    }
    nb_reasm_free(&r);
    nb_outq_free(&q);
    close(sv[0]);
    close(sv[1]);
}

static void test_wraparound_and_partial_writes(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct nb_outq q;
    nb_outq_init(&q, 3001); /* odd size: frames straddle the end */
    struct nb_reasm r;
    nb_reasm_init(&r);
    struct got g = {0};
    uint8_t frame[700];
    size_t sent = 0, drops = 0;
    bool saw_eagain = false;
    for (int round = 0; round < 400; round++) {
        size_t size = 14 + (size_t)(round * 37) % 600;
        memset(frame, 0, size);
        frame[size - 1] = (uint8_t)sent;
        if (nb_outq_push(&q, frame, size)) {
            sent++;
        } else {
            drops++;
        }
        long w = nb_outq_send(&q, sv[0]);
        if (w == -EAGAIN) {
            saw_eagain = true;
        } else {
            assert_true(w >= 0);
        }
        if (round % 40 == 0) {
            drain(sv[1], &r, &g);
        }
    }
    while (!nb_outq_empty(&q)) {
        drain(sv[1], &r, &g);
        long w = nb_outq_send(&q, sv[0]);
        assert_true(w >= 0 || w == -EAGAIN);
    }
    drain(sv[1], &r, &g);
    assert_true(saw_eagain);
    assert_true(drops > 0);
    assert_int_equal(g.n, sent);
    for (size_t i = 0; i < g.n; i++) {
        assert_int_equal(g.tags[i], (uint8_t)i); /* in order, none lost, none torn */
    }
    nb_reasm_free(&r);
    nb_outq_free(&q);
    close(sv[0]);
    close(sv[1]);
}

static void test_flip_on_the_way_out(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct nb_outq q;
    nb_outq_init(&q, 100);
    uint8_t frame[60] = {0};
    frame[59] = 1;
    /* Push one so the second wraps across the ring's end. */
    assert_true(nb_outq_push(&q, frame, 30));
    assert_int_equal(nb_outq_send(&q, sv[0]), 34);
    assert_true(nb_outq_push(&q, frame, 40));
    assert_int_equal(nb_outq_send(&q, sv[0]), 44);
    assert_true(nb_outq_push_flip(&q, frame, 60, 55, 0x10));
    assert_int_equal(q.head, 0);
    assert_int_equal(nb_outq_send(&q, sv[0]), 64);
    uint8_t buf[200];
    ssize_t n = recv(sv[1], buf, sizeof buf, 0);
    assert_int_equal(n, 34 + 44 + 64);
    const uint8_t *third = buf + 34 + 44;
    assert_int_equal(third[3], 60);
    assert_int_equal(third[4 + 55], 0x10);
    assert_int_equal(third[4 + 54], 0);
    assert_int_equal(frame[55], 0); /* the caller's frame is untouched */
    nb_outq_free(&q);
    close(sv[0]);
    close(sv[1]);
}

static void test_epipe_without_sigpipe(void **state)
{
    /* SIGPIPE is at its default (terminate): if the send raised it, the
     * test would die. */
    signal(SIGPIPE, SIG_DFL);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    close(sv[1]);
    struct nb_outq q;
    nb_outq_init(&q, 1000);
    uint8_t frame[20] = {0};
    assert_true(nb_outq_push(&q, frame, sizeof frame));
    assert_int_equal(nb_outq_send(&q, sv[0]), -EPIPE);
    nb_outq_free(&q);
    close(sv[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bound_and_order),
        cmocka_unit_test(test_wraparound_and_partial_writes),
        cmocka_unit_test(test_flip_on_the_way_out),
        cmocka_unit_test(test_epipe_without_sigpipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
