/* Unit tests for a port's bounded output queue: framing, the bound,
 * wrap-around, partial writes, corruption on the way out, EPIPE without
 * SIGPIPE, bytes lent by reference (cut-through). */
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

/* A connected pair that takes a little at a time. */
static void small_socketpair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
}

/* Sends what q holds into sv[0] while reading sv[1], until both are empty. */
static void drain_queue(struct nb_outq *q, int sv[2], struct nb_reasm *r, struct got *g)
{
    while (!nb_outq_empty(q)) {
        drain(sv[1], r, g);
        long w = nb_outq_send(q, sv[0]);
        assert_true(w >= 0 || w == -EAGAIN);
    }
    drain(sv[1], r, g);
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
    small_socketpair(sv);
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
    drain_queue(&q, sv, &r, &g);
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

/* Encodes a frame of `size` bytes tagged `tag` at buf; returns its length. */
static size_t encode(uint8_t *buf, size_t size, uint8_t tag)
{
    buf[0] = (uint8_t)(size >> 24);
    buf[1] = (uint8_t)(size >> 16);
    buf[2] = (uint8_t)(size >> 8);
    buf[3] = (uint8_t)size;
    memset(buf + 4, 0x11, size);
    buf[4 + size - 1] = tag;
    return 4 + size;
}

static void test_lend_rules(void **state)
{
    struct nb_outq q;
    nb_outq_init(&q, 1000);
    uint8_t rd[2000];
    size_t a = encode(rd, 100, 0), b = encode(rd + a, 100, 1);
    /* Adjacent spans merge into one. */
    assert_true(nb_outq_lend(&q, rd, a));
    assert_true(nb_outq_lend(&q, rd + a, b));
    assert_int_equal(q.n_lent, 1);
    assert_int_equal(q.used, a + b);
    /* Beyond the capacity: refused, nothing queued. */
    assert_false(nb_outq_lend(&q, rd + a + b, 900));
    assert_int_equal(q.used, a + b);
    /* A push settles the lent bytes first (order kept), after which
     * nothing can be lent until the ring is empty again. */
    uint8_t frame[50] = {0};
    assert_true(nb_outq_push(&q, frame, sizeof frame));
    assert_int_equal(q.n_lent, 0);
    assert_int_equal(q.used, a + b + 54);
    assert_false(nb_outq_lend(&q, rd, a));
    nb_outq_clear(&q);
    /* At most NB_OUTQ_LENT_MAX separate spans. */
    for (int i = 0; i < NB_OUTQ_LENT_MAX; i++) {
        assert_true(nb_outq_lend(&q, rd + (i % 2) * 20, 14));
    }
    assert_false(nb_outq_lend(&q, rd + 40, 14));
    nb_outq_clear(&q);
    assert_int_equal(q.n_lent, 0);
    assert_true(nb_outq_empty(&q));
    nb_outq_free(&q);
}

/* Frames lent from a read buffer that is overwritten after every round
 * (as netback's is by the next read) and pushed by copy, in any mix, with
 * a socket that takes a little at a time: the stream is complete, in
 * order and never torn. */
static void test_lend_and_partial_writes(void **state)
{
    int sv[2];
    small_socketpair(sv);
    struct nb_outq q;
    nb_outq_init(&q, 6001);
    struct nb_reasm r;
    nb_reasm_init(&r);
    struct got g = {0};
    uint8_t rd[8192];
    size_t queued = 0, lent = 0;
    uint64_t rng = 12345;
    for (int round = 0; round < 300; round++) {
        size_t off = 0;
        for (int k = 0; k < 4; k++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t size = 14 + (size_t)(rng >> 33) % 900;
            size_t len = encode(rd + off, size, (uint8_t)queued);
            bool ok = ((rng >> 20) & 1) && nb_outq_lend(&q, rd + off, len);
            lent += ok;
            ok = ok || nb_outq_push(&q, rd + off + 4, size);
            queued += ok;
            off += len;
        }
        long w = nb_outq_send(&q, sv[0]);
        assert_true(w >= 0 || w == -EAGAIN);
        assert_int_equal(q.n_lent, 0); /* nothing lent survives a send */
        memset(rd, 0xee, sizeof rd);   /* the next read */
        if (round % 3 == 0) {
            drain(sv[1], &r, &g);
        }
    }
    drain_queue(&q, sv, &r, &g);
    assert_true(lent > 50);
    assert_int_equal(g.n, queued);
    for (size_t i = 0; i < g.n; i++) {
        assert_int_equal(g.tags[i], (uint8_t)i);
    }
    nb_reasm_free(&r);
    nb_outq_free(&q);
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bound_and_order),
        cmocka_unit_test(test_wraparound_and_partial_writes),
        cmocka_unit_test(test_flip_on_the_way_out),
        cmocka_unit_test(test_epipe_without_sigpipe),
        cmocka_unit_test(test_lend_rules),
        cmocka_unit_test(test_lend_and_partial_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
