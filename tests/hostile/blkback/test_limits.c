/* Hostile clients and a hostile host against blkback, in one process on
 * real sockets (issue 14): clients that never read their replies or pile
 * up writes on a stalled disk (a global bound on what the controller
 * holds, items 11), a descriptor limit reached in accept() (no spinning,
 * item 10), a umask of 000 (the socket stays 0600, item 8) and a host file
 * system that runs full under the volatile cache (nothing acknowledged is
 * lost, nothing refused is written, the error is counted and reported,
 * item 1). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "blkback/blkback.h"
#include "blkback/nbd.h"
#include "core/core.h"

#define DISK_SIZE  (4u << 20)
#define LIMIT      (1u << 20) /* BB_MIN_BUFFER_LIMIT: the smallest bound */
#define CHUNK      (256u << 10)
#define MAX_ROUNDS 20000

struct env {
    char dir[64];
    struct fl_clock *clock;
    struct fl_loop *loop;
    struct blkback *bb;
    struct bb_disk *disk;
    struct bb_host_error last; /* strings not kept */
    char last_path[256];
    int host_calls;
};

static struct env E;

static void on_host_error(void *arg, const struct bb_host_error *e)
{
    E.last = *e;
    snprintf(E.last_path, sizeof(E.last_path), "%s", e->path);
    E.host_calls++;
}

static struct bb_disk *add_disk(const char *name, const char *socket_path, uint64_t cache_limit)
{
    char *path = fl_xasprintf("%s/%s.img", E.dir, name);
    struct bb_disk_config dc = {
        .node = "n1",
        .name = name,
        .path = path,
        .size = DISK_SIZE,
        .socket_path = socket_path,
        .no_sync = true,
        .cache_limit = cache_limit,
    };
    struct fl_error *err = NULL;
    struct bb_disk *d = bb_disk_add(E.bb, &dc, &err);
    if (!d) {
        fail_msg("%s", err->msg);
    }
    free(path);
    return d;
}

static int setup(void **state)
{
    memset(&E, 0, sizeof(E));
    strcpy(E.dir, "/tmp/bb-hostile-XXXXXX");
    assert_non_null(mkdtemp(E.dir));
    E.clock = fl_clock_manual_create(FL_NS_PER_SEC);
    E.loop = fl_loop_create(E.clock, NULL);
    struct bb_config bc = {.seed = 7, .buffer_limit = LIMIT, .on_host_error = on_host_error};
    E.bb = bb_create(E.loop, &bc, NULL);
    assert_non_null(E.bb);
    E.disk = add_disk("vda", NULL, 0);
    return 0;
}

static int teardown(void **state)
{
    bb_destroy(E.bb);
    fl_loop_destroy(E.loop);
    fl_clock_destroy(E.clock);
    fl_rm_rf(E.dir);
    return 0;
}

/* Runs the loop until nothing is ready; returns how many rounds ran
 * callbacks (a spinning loop hits `cap`). */
static int run_due_capped(int cap)
{
    int rounds = 0;
    while (rounds < cap && fl_loop_run_once(E.loop, 0) > 0) {
        rounds++;
    }
    return rounds;
}

static void run_due(void)
{
    run_due_capped(MAX_ROUNDS);
}

static void stats(struct bb_disk_stats *st)
{
    bb_disk_get_stats(E.disk, st);
}

/* Reads exactly n bytes from a non-blocking client socket, running the
 * server in between. */
static void recv_exact(int fd, void *buf, size_t n)
{
    uint8_t *p = buf;
    for (int round = 0; n > 0; round++) {
        assert_true(round < MAX_ROUNDS);
        ssize_t r = recv(fd, p, n, MSG_DONTWAIT);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
            continue;
        }
        assert_true(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
        run_due();
    }
}

/* Sends everything, running the server whenever the socket is full. */
static void send_all(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    for (int round = 0; n > 0; round++) {
        assert_true(round < MAX_ROUNDS);
        ssize_t r = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
            continue;
        }
        assert_true(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
        run_due();
    }
}

/* Sends what the socket takes now; returns the bytes sent. */
static size_t send_some(int fd, const void *buf, size_t n)
{
    ssize_t r = send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    return r > 0 ? (size_t)r : 0;
}

/* The old-style handshake: flags, EXPORT_NAME "", 10 bytes of export info. */
static void handshake_fd(int fd)
{
    uint8_t greet[18];
    recv_exact(fd, greet, sizeof(greet));
    assert_true(be64(greet) == NBD_MAGIC);
    uint8_t msg[4 + 16];
    put32(msg, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
    put64(msg + 4, NBD_OPT_MAGIC);
    put32(msg + 12, NBD_OPT_EXPORT_NAME);
    put32(msg + 16, 0);
    send_all(fd, msg, sizeof(msg));
    uint8_t info[10];
    recv_exact(fd, info, sizeof(info));
    assert_true(be64(info) == DISK_SIZE);
}

/* A client on a socketpair served by disk d; returns the client's end. */
static int client(struct bb_disk *d)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(bb_disk_attach_fd(d, sv[0]), 0);
    handshake_fd(sv[1]);
    return sv[1];
}

static void req_hdr(uint8_t *h, uint16_t type, uint64_t handle, uint64_t off, uint32_t len)
{
    put32(h, NBD_REQUEST_MAGIC);
    put16(h + 4, 0);
    put16(h + 6, type);
    put64(h + 8, handle);
    put64(h + 16, off);
    put32(h + 24, len);
}

/* Reads one simple reply; returns its error; read data into data. */
static uint32_t reply(int fd, uint64_t handle, void *data, size_t len)
{
    uint8_t r[16];
    recv_exact(fd, r, sizeof(r));
    assert_int_equal(be32(r), NBD_SIMPLE_MAGIC);
    assert_true(be64(r + 8) == handle);
    uint32_t err = be32(r + 4);
    if (err == 0 && data) {
        recv_exact(fd, data, len);
    }
    return err;
}

/* --- 11: a global bound with backpressure -------------------------------- */

/* Four clients each ask for 8 reads of 256 KiB and read nothing: 8 MiB of
 * replies.  The controller holds at most the bound (plus one reply per
 * connection); every reply still arrives as each client reads, one client
 * after the other (a reading client is not starved by the others). */
static void test_unread_replies_bounded(void **state)
{
    enum { CLIENTS = 4, READS = 8 };
    int fds[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        fds[i] = client(E.disk);
        uint8_t batch[READS * 28];
        for (int k = 0; k < READS; k++) {
            req_hdr(batch + 28 * k, NBD_CMD_READ, (uint64_t)(i * 100 + k), (uint64_t)k * CHUNK,
                    CHUNK);
        }
        send_all(fds[i], batch, sizeof(batch));
        run_due();
    }
    run_due();
    struct bb_disk_stats st;
    stats(&st);
    assert_true(st.buffered_bytes <= LIMIT + CLIENTS * (CHUNK + 16));
    assert_true(st.backpressure >= 1);
    assert_true(st.reads < CLIENTS * READS); /* some requests wait unread */
    uint8_t *buf = fl_xmalloc(CHUNK);
    for (int i = 0; i < CLIENTS; i++) {
        for (int k = 0; k < READS; k++) {
            assert_int_equal(reply(fds[i], (uint64_t)(i * 100 + k), buf, CHUNK), 0);
        }
        close(fds[i]);
    }
    free(buf);
    run_due();
    stats(&st);
    assert_int_equal(st.reads, CLIENTS * READS);
    assert_int_equal(st.buffered_bytes, 0);
}

/* A stalled disk holds write payloads: 16 writes of 256 KiB are not all
 * taken in; the client is pushed back instead, and all complete after the
 * stall. */
static void test_stalled_writes_bounded(void **state)
{
    enum { WRITES = 16 };
    int fd = client(E.disk);
    bb_disk_stall(E.disk, true);
    size_t one = 28 + CHUNK, total = WRITES * one;
    uint8_t *msg = fl_xcalloc(1, total);
    for (int k = 0; k < WRITES; k++) {
        req_hdr(msg + one * k, NBD_CMD_WRITE, (uint64_t)k, (uint64_t)k * CHUNK, CHUNK);
        memset(msg + one * k + 28, 0x40 + k, CHUNK);
    }
    size_t sent = 0;
    for (int round = 0; round < 200 && sent < total; round++) {
        sent += send_some(fd, msg + sent, total - sent);
        run_due();
    }
    struct bb_disk_stats st;
    stats(&st);
    assert_true(sent < total); /* pushed back */
    assert_true(st.buffered_bytes <= LIMIT + CHUNK);
    assert_true(st.stalled_now <= LIMIT / CHUNK + 1);
    bb_disk_stall(E.disk, false);
    send_all(fd, msg + sent, total - sent);
    for (int k = 0; k < WRITES; k++) {
        assert_int_equal(reply(fd, (uint64_t)k, NULL, 0), 0);
    }
    uint8_t h[28], b[CHUNK];
    req_hdr(h, NBD_CMD_READ, 99, 15 * (uint64_t)CHUNK, CHUNK);
    send_all(fd, h, sizeof(h));
    assert_int_equal(reply(fd, 99, b, CHUNK), 0);
    assert_int_equal(b[0], 0x40 + 15);
    free(msg);
    close(fd);
    run_due();
}

/* --- 10: accept() out of descriptors -------------------------------------- */

/* Fills every unused descriptor number below the highest one in use with
 * /dev/null (RLIMIT_NOFILE limits numbers, not counts); returns the
 * lowest free number after that.  The fillers go to fill[], -1 ended. */
static int fill_gaps(int *fill, int cap)
{
    int top = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));) {
        top = FL_MAX(top, atoi(e->d_name));
    }
    closedir(d);
    int n = 0;
    for (;;) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0 && n < cap - 1);
        if (fd > top) {
            close(fd);
            fill[n] = -1;
            return fd;
        }
        fill[n++] = fd;
    }
}

static int connect_to(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void test_accept_emfile_backs_off(void **state)
{
    char *sock = fl_xasprintf("%s/l.sock", E.dir);
    struct bb_disk *d = add_disk("vdl", sock, 0);
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    int fds[4];
    for (int i = 0; i < 4; i++) {
        fds[i] = connect_to(sock); /* in the backlog: connect succeeds */
    }
    /* room for 2 accepted connections, not more */
    int fill[1024];
    int lowest = fill_gaps(fill, 1024);
    struct rlimit low = {.rlim_cur = (rlim_t)lowest + 2, .rlim_max = old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    /* a spinning listener would keep the loop busy for every round */
    int rounds = run_due_capped(1000);
    struct bb_disk_stats st;
    bb_disk_get_stats(d, &st);
    assert_int_equal(st.connections_open, 2);
    assert_int_equal(st.accept_pauses, 1);
    assert_true(rounds < 50);
    /* a connection closes: its descriptor lets the next one in */
    handshake_fd(fds[0]);
    close(fds[0]);
    int plug = open("/dev/null", O_RDONLY | O_CLOEXEC); /* takes the client's number */
    assert_true(plug >= 0);
    run_due_capped(1000);
    bb_disk_get_stats(d, &st);
    assert_int_equal(st.connections_open, 2);
    assert_int_equal(st.accept_pauses, 2);
    handshake_fd(fds[2]);
    close(plug);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    for (int i = 1; i < 4; i++) {
        close(fds[i]);
    }
    for (int i = 0; fill[i] >= 0; i++) {
        close(fill[i]);
    }
    run_due();
    bb_disk_remove(d);
    free(sock);
}

/* --- 8: the socket is 0600 whatever the umask ---------------------------- */

static void test_socket_private_under_umask_000(void **state)
{
    char *sock = fl_xasprintf("%s/u.sock", E.dir);
    mode_t old = umask(0);
    struct bb_disk *d = add_disk("vdu", sock, 0);
    umask(old);
    struct stat st;
    assert_int_equal(lstat(sock, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    bb_disk_remove(d);
    free(sock);
}

/* --- 1: the host file system runs full under the cache -------------------- */

/* RLIMIT_FSIZE stands in for a full file system: writing the sparse
 * backing file beyond 64 KiB fails (EFBIG, reported as ENOSPC). */
static void test_host_full_loses_nothing(void **state)
{
    struct bb_disk *d = add_disk("vdf", NULL, 64u << 10);
    E.disk = d;
    int fd = client(d);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, low = {.rlim_cur = 64u << 10};
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    low.rlim_max = old.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &low), 0);
    enum { W = 32u << 10 };
    uint8_t *buf = fl_xmalloc(W + 28), *rd = fl_xmalloc(W);
    uint64_t offs[3] = {1u << 20, 2u << 20, 3u << 20};
    uint32_t want[3] = {0, 0, NBD_ENOSPC};
    for (int i = 0; i < 3; i++) {
        req_hdr(buf, NBD_CMD_WRITE, (uint64_t)i, offs[i], W);
        memset(buf + 28, 0xA0 + i, W);
        send_all(fd, buf, 28 + W);
        /* two fit in the cache; the third needs a write-back the host refuses */
        assert_int_equal(reply(fd, (uint64_t)i, NULL, 0), want[i]);
    }
    for (int i = 0; i < 3; i++) {
        req_hdr(buf, NBD_CMD_READ, 10 + (uint64_t)i, offs[i], W);
        send_all(fd, buf, 28);
        assert_int_equal(reply(fd, 10 + (uint64_t)i, rd, W), 0);
        uint8_t expect = i < 2 ? (uint8_t)(0xA0 + i) : 0; /* acknowledged / refused */
        for (size_t k = 0; k < W; k++) {
            if (rd[k] != expect) {
                fail_msg("write %d: byte %zu reads 0x%02x, expected 0x%02x", i, k, rd[k], expect);
            }
        }
    }
    /* FLUSH cannot make them durable while the host is full */
    req_hdr(buf, NBD_CMD_FLUSH, 20, 0, 0);
    send_all(fd, buf, 28);
    assert_int_equal(reply(fd, 20, NULL, 0), NBD_ENOSPC);
    struct bb_disk_stats st;
    bb_disk_get_stats(d, &st);
    assert_true(st.host_errors >= 2);
    assert_int_equal(st.host_errno, ENOSPC);
    assert_int_equal(st.cached_writes, 2);
    assert_int_equal(E.host_calls, (int)st.host_errors);
    assert_string_equal(E.last.op, "write");
    assert_int_equal(E.last.err, ENOSPC);
    char *img = fl_xasprintf("%s/vdf.img", E.dir);
    assert_string_equal(E.last_path, img);
    /* space again: the flush drains both acknowledged writes */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    req_hdr(buf, NBD_CMD_FLUSH, 21, 0, 0);
    send_all(fd, buf, 28);
    assert_int_equal(reply(fd, 21, NULL, 0), 0);
    int ifd = open(img, O_RDONLY);
    assert_true(ifd >= 0);
    assert_int_equal(pread(ifd, rd, W, (off_t)offs[1]), W);
    assert_int_equal(rd[0], 0xA1);
    assert_int_equal(rd[W - 1], 0xA1);
    close(ifd);
    free(img);
    free(buf);
    free(rd);
    close(fd);
    run_due();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unread_replies_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stalled_writes_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_emfile_backs_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_socket_private_under_umask_000, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_full_loses_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
