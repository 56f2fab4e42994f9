/*
 * End-to-end tests of netback with synthetic guests: clients that speak
 * QEMU's stream protocol over real unix sockets in a temp dir, with the
 * loop driven by hand on a manual clock (no sleeps: delays are clock
 * advances).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pcap/pcap.h>
#include <sqlite3.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"
#include "impair/impair.h"
#include "netback/internal.h"
#include "netback/netback.h"
#include "netback/reassembly.h"
#include "trace/trace.h"

#define MAX_CLIENTS 6
#define T0          (1000 * FL_NS_PER_SEC)

/* ---- a synthetic guest ---- */

struct rxframe {
    uint8_t data[1600];
    size_t size;
};

struct client {
    int fd;
    struct nb_reasm r;
    struct rxframe *frames;
    size_t n, alloc;
};

static int client_on_frame(void *arg, const uint8_t *frame, size_t size)
{
    struct client *c = arg;
    c->frames = fl_xgrow(c->frames, &c->alloc, c->n + 1, sizeof *c->frames);
    struct rxframe *f = &c->frames[c->n++];
    f->size = size;
    memcpy(f->data, frame, FL_MIN(size, sizeof f->data));
    return 0;
}

/* ---- fixture ---- */

struct events {
    int connected;
    int disconnected[NB_DISCONNECT__COUNT];
    char last_detail[256];
    char last_node[64];
};

struct fx {
    char dir[64];
    struct fl_clock *clock;
    struct fl_loop *loop;
    struct netback *nb;
    struct nb_port *port[MAX_CLIENTS];
    struct client cl[MAX_CLIENTS];
    int n;
    struct events ev;
};

static void ev_connected(void *arg, const char *net, const char *node, const char *nic)
{
    struct events *e = arg;
    e->connected++;
}

static void ev_disconnected(void *arg, const char *net, const char *node, const char *nic,
                            enum nb_disconnect_reason reason, const char *detail)
{
    struct events *e = arg;
    e->disconnected[reason]++;
    snprintf(e->last_detail, sizeof e->last_detail, "%s", detail);
    snprintf(e->last_node, sizeof e->last_node, "%s", node);
}

static const struct nb_events test_events = {ev_connected, ev_disconnected};

static char *sock_path(struct fx *f, int i)
{
    return fl_xasprintf("%s/n%d.sock", f->dir, i + 1);
}

static void pump(struct fx *f)
{
    /* Until nothing is left to do: accepts, reads, writes, due timers. */
    for (int idle = 0; idle < 3;) {
        int r = fl_loop_run_once(f->loop, 0);
        assert_true(r >= 0);
        idle = r == 0 ? idle + 1 : 0;
    }
}

static void client_connect(struct fx *f, int i)
{
    struct client *c = &f->cl[i];
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c->fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char *p = sock_path(f, i);
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", p);
    free(p);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    nb_reasm_reset(&c->r);
    pump(f);
}

static void client_close(struct fx *f, int i)
{
    close(f->cl[i].fd);
    f->cl[i].fd = -1;
    pump(f);
}

static void client_read(struct fx *f, int i)
{
    struct client *c = &f->cl[i];
    uint8_t buf[65536];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0) {
            break;
        }
        assert_int_equal(nb_reasm_feed(&c->r, buf, (size_t)n, client_on_frame, c), 0);
    }
}

static void read_all(struct fx *f)
{
    for (int i = 0; i < f->n; i++) {
        if (f->cl[i].fd >= 0) {
            client_read(f, i);
        }
    }
}

static void clear_rx(struct fx *f)
{
    for (int i = 0; i < f->n; i++) {
        f->cl[i].n = 0;
    }
}

static void mac_of(int node, uint8_t mac[6])
{
    const uint8_t m[6] = {0x52, 0x54, 0x00, 0x00, 0x00, (uint8_t)(node + 1)};
    memcpy(mac, m, 6);
}

static const uint8_t BCAST[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

/* A frame from node `from` to dst with a 32-bit sequence number. */
static size_t build(uint8_t *buf, int from, const uint8_t *dst, uint32_t seq, size_t size)
{
    memset(buf, 0, size);
    memcpy(buf, dst, 6);
    mac_of(from, buf + 6);
    buf[12] = 0x88;
    buf[13] = 0xb5; /* local experimental ethertype */
    buf[14] = (uint8_t)(seq >> 24);
    buf[15] = (uint8_t)(seq >> 16);
    buf[16] = (uint8_t)(seq >> 8);
    buf[17] = (uint8_t)seq;
    return size;
}

static uint32_t seq_of(const struct rxframe *f)
{
    return (uint32_t)f->data[14] << 24 | (uint32_t)f->data[15] << 16 | (uint32_t)f->data[16] << 8 |
           f->data[17];
}

static void send_raw(struct fx *f, int i, const void *data, size_t size)
{
    assert_int_equal(write(f->cl[i].fd, data, size), (ssize_t)size);
}

/* A frame with its stream length prefix in buf (4 + size bytes). */
static void build_stream(uint8_t *buf, int from, const uint8_t *dst, uint32_t seq, size_t size)
{
    build(buf + 4, from, dst, seq, size);
    buf[0] = (uint8_t)(size >> 24);
    buf[1] = (uint8_t)(size >> 16);
    buf[2] = (uint8_t)(size >> 8);
    buf[3] = (uint8_t)size;
}

/* One write per frame, as QEMU does. */
static void send_frame(struct fx *f, int from, const uint8_t *dst, uint32_t seq, size_t size)
{
    uint8_t buf[4 + 1600];
    build_stream(buf, from, dst, seq, size);
    send_raw(f, from, buf, 4 + size);
}

/* Like send_frame without waiting: false if the client's socket is full
 * (netback is not reading it).  A frame is written whole or not at all. */
static bool try_send_frame(struct fx *f, int from, const uint8_t *dst, uint32_t seq, size_t size)
{
    uint8_t buf[4 + 1600];
    build_stream(buf, from, dst, seq, size);
    int sndbuf = 0;
    socklen_t len = sizeof sndbuf;
    int queued = 0;
    assert_int_equal(getsockopt(f->cl[from].fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len), 0);
    assert_int_equal(ioctl(f->cl[from].fd, TIOCOUTQ, &queued), 0);
    /* Room for the whole frame with its skb overhead, or wait. */
    if (queued + 4 * (int)(4 + size) > sndbuf) {
        return false;
    }
    send_raw(f, from, buf, 4 + size);
    return true;
}

/* Reads at most about `max` bytes (a guest slower than its senders). */
static void client_read_some(struct fx *f, int i, size_t max)
{
    struct client *c = &f->cl[i];
    uint8_t buf[4096];
    for (size_t got = 0; got < max;) {
        ssize_t n = recv(c->fd, buf, FL_MIN(sizeof buf, max - got), MSG_DONTWAIT);
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
        assert_int_equal(nb_reasm_feed(&c->r, buf, (size_t)n, client_on_frame, c), 0);
    }
}

static void send_to(struct fx *f, int from, int to, uint32_t seq)
{
    uint8_t mac[6];
    mac_of(to, mac);
    send_frame(f, from, mac, seq, 64);
}

static struct fx *fx_new(int n, const struct nb_config *extra)
{
    struct fx *f = fl_xcalloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/nb-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->clock = fl_clock_manual_create(T0);
    f->loop = fl_loop_create(f->clock, NULL);
    assert_non_null(f->loop);
    struct nb_config cfg = extra ? *extra : (struct nb_config){0};
    cfg.seed = cfg.seed ? cfg.seed : 42;
    cfg.spin_ns = -1; /* manual clock */
    cfg.events = &test_events;
    cfg.events_arg = &f->ev;
    struct fl_error *err = NULL;
    f->nb = nb_create(f->loop, &cfg, &err);
    assert_null(err);
    assert_true(nb_network_add(f->nb, "lan", &err));
    f->n = n;
    for (int i = 0; i < n; i++) {
        char node[8];
        snprintf(node, sizeof node, "n%d", i + 1);
        char *path = sock_path(f, i);
        f->port[i] = nb_port_add(f->nb, "lan", node, "eth0", NULL, path, &err);
        free(path);
        if (err) {
            fail_msg("%s", err->msg);
        }
        nb_reasm_init(&f->cl[i].r);
        client_connect(f, i);
    }
    assert_int_equal(f->ev.connected, n);
    return f;
}

static void fx_free(struct fx *f)
{
    for (int i = 0; i < f->n; i++) {
        if (f->cl[i].fd >= 0) {
            close(f->cl[i].fd);
        }
        nb_reasm_free(&f->cl[i].r);
        free(f->cl[i].frames);
    }
    nb_destroy(f->nb);
    fl_loop_destroy(f->loop);
    fl_clock_destroy(f->clock);
    /* nb_destroy unlinked the sockets. */
    for (int i = 0; i < f->n; i++) {
        char *p = sock_path(f, i);
        struct stat st;
        assert_int_not_equal(stat(p, &st), 0);
        free(p);
    }
    fl_rm_rf(f->dir);
    free(f);
}

static void set_link(struct fx *f, const char *src, const char *dst, const char *words)
{
    struct impair_link_params p;
    struct fl_error *err = NULL;
    if (!impair_link_params_parse_string(words, NULL, &p, &err) ||
        !nb_link_set(f->nb, "lan", src, dst, &p, &err)) {
        fail_msg("%s: %s", words, err->msg);
    }
    impair_link_params_clear(&p);
}

static struct nb_link_stats link_stats(struct fx *f, const char *src, const char *dst)
{
    struct nb_link_stats st;
    assert_int_equal(nb_link_stats(f->nb, "lan", src, dst, &st), 0);
    return st;
}

static void advance(struct fx *f, int64_t ns)
{
    fl_clock_manual_advance(f->clock, ns);
    pump(f);
}

/* ---- switching ---- */

static void test_learning_and_flooding(void **state)
{
    struct fx *f = fx_new(3, NULL);
    /* n1 -> n2 before anyone is known: flooded to n2 and n3. */
    send_to(f, 0, 1, 1);
    pump(f);
    read_all(f);
    assert_int_equal(f->cl[0].n, 0);
    assert_int_equal(f->cl[1].n, 1);
    assert_int_equal(f->cl[2].n, 1);
    assert_int_equal(seq_of(&f->cl[1].frames[0]), 1);
    /* n2 -> n1: n1 was learned from its frame, so only n1 gets it. */
    clear_rx(f);
    send_to(f, 1, 0, 2);
    pump(f);
    read_all(f);
    assert_int_equal(f->cl[0].n, 1);
    assert_int_equal(f->cl[1].n, 0);
    assert_int_equal(f->cl[2].n, 0);
    /* n1 -> n2 again: n2 is learned now. */
    clear_rx(f);
    send_to(f, 0, 1, 3);
    pump(f);
    read_all(f);
    assert_int_equal(f->cl[1].n, 1);
    assert_int_equal(f->cl[2].n, 0);
    /* Broadcast and multicast from n3 reach everyone else. */
    clear_rx(f);
    send_frame(f, 2, BCAST, 4, 60);
    const uint8_t mcast[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb};
    send_frame(f, 2, mcast, 5, 60);
    pump(f);
    read_all(f);
    assert_int_equal(f->cl[0].n, 2);
    assert_int_equal(f->cl[1].n, 2);
    assert_int_equal(f->cl[2].n, 0);
    /* Counters. */
    struct nb_link_stats st = link_stats(f, "n1", "n2");
    assert_int_equal(st.sent, 2);
    assert_int_equal(st.delivered, 2);
    st = link_stats(f, "n1", "n3");
    assert_int_equal(st.sent, 1); /* only the first, flooded frame */
    struct nb_port_stats ps;
    nb_port_stats(f->port[0], &ps);
    assert_int_equal(ps.rx_frames, 2);
    assert_int_equal(ps.rx_bytes, 128);
    assert_int_equal(ps.tx_frames, 3);
    assert_true(ps.connected);
    fx_free(f);
}

static void test_group_source_dropped(void **state)
{
    struct fx *f = fx_new(2, NULL);
    uint8_t frame[4 + 60] = {0};
    build(frame + 4, 0, BCAST, 1, 60);
    frame[4 + 6] = 0x01; /* group bit in the source address */
    frame[3] = 60;
    send_raw(f, 0, frame, sizeof frame);
    send_to(f, 0, 1, 2);
    pump(f);
    read_all(f);
    assert_int_equal(f->cl[1].n, 1);
    assert_int_equal(seq_of(&f->cl[1].frames[0]), 2);
    struct nb_port_stats ps;
    nb_port_stats(f->port[0], &ps);
    assert_int_equal(ps.rx_bad_src, 1);
    assert_true(ps.connected); /* not fatal */
    fx_free(f);
}

/* Connects a synthetic guest to each socket and lets netback accept them. */
static void connect_all(struct fl_loop *loop, const char **paths, int *fds, int n)
{
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", paths[i]);
        assert_int_equal(connect(fds[i], (struct sockaddr *)&sa, sizeof sa), 0);
    }
    while (fl_loop_run_once(loop, 0) > 0) {
    }
}

/* ---- port security ---- */

/* A frame sent by client `from` with node `as`'s source MAC. */
static void send_as(struct fx *f, int from, int as, const uint8_t *dst, uint32_t seq)
{
    uint8_t buf[4 + 64];
    build_stream(buf, from, dst, seq, 64);
    mac_of(as, buf + 4 + 6);
    send_raw(f, from, buf, sizeof buf);
}

static void test_spoofed_source_dropped(void **state)
{
    char dir[] = "/tmp/nb-spoof-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *dbpath = fl_xasprintf("%s/run.db", dir);
    struct fl_error *err = NULL;
    struct trace_db *db = trace_db_open(dbpath, &err);
    assert_non_null(db);
    struct nb_config cfg = {.trace = db};
    struct fx *f = fx_new(3, &cfg);
    /* n1 and n2 speak first: their ports take their MACs (no MAC given). */
    send_to(f, 0, 1, 1);
    send_to(f, 1, 0, 2);
    pump(f);
    read_all(f);
    clear_rx(f);
    /* n3 claims n1's MAC, unicast to n2 and broadcast: every copy is
     * dropped as spoofed, nobody receives anything. */
    send_as(f, 2, 0, (const uint8_t[6]){0x52, 0x54, 0, 0, 0, 2}, 3);
    send_as(f, 2, 0, BCAST, 4);
    pump(f);
    read_all(f);
    assert_int_equal(f->cl[0].n, 0);
    assert_int_equal(f->cl[1].n, 0);
    struct nb_port_stats ps;
    nb_port_stats(f->port[2], &ps);
    assert_int_equal(ps.rx_spoofed, 2);
    assert_int_equal(ps.rx_frames, 2);
    assert_true(ps.connected); /* not fatal */
    assert_int_equal(link_stats(f, "n3", "n2").dropped[NB_DROP_SPOOFED], 2);
    assert_int_equal(link_stats(f, "n3", "n1").dropped[NB_DROP_SPOOFED], 1);
    assert_int_equal(link_stats(f, "n3", "n2").delivered, 0);
    assert_string_equal(impair_drop_reason_name(IMPAIR_DROP_SPOOFED), "spoofed");
    /* The table did not move: n2 -> n1's MAC still reaches n1 only. */
    send_to(f, 1, 0, 5);
    pump(f);
    read_all(f);
    assert_int_equal(f->cl[0].n, 1);
    assert_int_equal(f->cl[2].n, 0);
    /* n3's own MAC is still fine. */
    send_to(f, 2, 0, 6);
    pump(f);
    read_all(f);
    assert_int_equal(f->cl[0].n, 2);
    fx_free(f);
    assert_int_equal(trace_db_flush(db), 0);
    trace_db_close(db);
    /* run.db says so, with the reason string a query would use. */
    sqlite3 *sq;
    assert_int_equal(sqlite3_open_v2(dbpath, &sq, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(sq, "SELECT count(*) FROM frames WHERE reason = 'spoofed'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 3);
    sqlite3_finalize(st);
    sqlite3_close(sq);
    free(dbpath);
    fl_rm_rf(dir);
}

static void test_given_mac_is_enforced_from_the_start(void **state)
{
    char dir[] = "/tmp/nb-spoof-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct fl_loop *loop = fl_loop_create(NULL, NULL);
    struct nb_config cfg = {.spin_ns = -1};
    struct netback *nb = nb_create(loop, &cfg, NULL);
    assert_true(nb_network_add(nb, "lan", NULL));
    uint8_t m1[6], m2[6];
    mac_of(0, m1);
    mac_of(1, m2);
    char *p1 = fl_xasprintf("%s/a.sock", dir), *p2 = fl_xasprintf("%s/b.sock", dir);
    struct nb_port *a = nb_port_add(nb, "lan", "n1", "eth0", m1, p1, NULL);
    assert_non_null(nb_port_add(nb, "lan", "n2", "eth0", m2, p2, NULL));
    int fds[2];
    const char *paths[2] = {p1, p2};
    connect_all(loop, paths, fds, 2);
    /* n1's very first frame comes from n2's MAC: dropped. */
    uint8_t frame[4 + 60] = {0, 0, 0, 60};
    build(frame + 4, 1, BCAST, 1, 60);
    assert_int_equal(write(fds[0], frame, sizeof frame), (ssize_t)sizeof frame);
    while (fl_loop_run_once(loop, 0) > 0) {
    }
    uint8_t buf[256];
    assert_int_equal(recv(fds[1], buf, sizeof buf, MSG_DONTWAIT), -1);
    struct nb_port_stats ps;
    nb_port_stats(a, &ps);
    assert_int_equal(ps.rx_spoofed, 1);
    for (int i = 0; i < 2; i++) {
        close(fds[i]);
    }
    nb_destroy(nb);
    fl_loop_destroy(loop);
    free(p1);
    free(p2);
    fl_rm_rf(dir);
}

static void test_learning_network_lets_macs_move(void **state)
{
    struct fx *f = fx_new(3, NULL);
    struct fl_error *err = NULL;
    assert_false(nb_network_set_learning(f->nb, "wan", true, &err));
    assert_non_null(strstr(err->msg, "unknown network 'wan' (known: 'lan')"));
    fl_error_free(err);
    err = NULL;
    assert_true(nb_network_set_learning(f->nb, "lan", true, &err));
    send_to(f, 0, 1, 1);
    pump(f);
    read_all(f);
    clear_rx(f);
    /* n3 takes over n1's MAC (a VRRP virtual MAC moving): delivered, and
     * learned on n3's port. */
    send_as(f, 2, 0, BCAST, 2);
    pump(f);
    read_all(f);
    assert_int_equal(f->cl[0].n, 1);
    assert_int_equal(f->cl[1].n, 1);
    send_to(f, 1, 0, 3); /* to "n1's" MAC: now at n3 */
    pump(f);
    read_all(f);
    assert_int_equal(f->cl[2].n, 1);
    assert_int_equal(f->cl[0].n, 1);
    struct nb_port_stats ps;
    nb_port_stats(f->port[2], &ps);
    assert_int_equal(ps.rx_spoofed, 0);
    /* Back off: port security again, from the next frame on. */
    assert_true(nb_network_set_learning(f->nb, "lan", false, NULL));
    send_as(f, 2, 1, BCAST, 4);
    pump(f);
    read_all(f);
    nb_port_stats(f->port[2], &ps);
    assert_int_equal(ps.rx_spoofed, 1);
    fx_free(f);
}

/* impair_link_decide() < 0 is netback's bug, not the scenario's loss: it
 * is counted apart ("internal"), never as loss. */
static void test_decide_error_is_internal_not_loss(void **state)
{
    struct fx *f = fx_new(2, NULL);
    set_link(f, "n1", "n2", "delay 1ms");
    uint8_t buf[4 + 64];
    build_stream(buf, 0, BCAST, 1, 64);
    int64_t now = fl_loop_now(f->loop);
    assert_int_equal(nb_port_input(f->port[0], buf, sizeof buf, now + FL_NS_PER_MS), 0);
    /* time runs backwards on the link: impair refuses */
    assert_int_equal(nb_port_input(f->port[0], buf, sizeof buf, now), 0);
    struct nb_link_stats st = link_stats(f, "n1", "n2");
    assert_int_equal(st.sent, 2);
    assert_int_equal(st.dropped[NB_DROP_INTERNAL], 1);
    assert_int_equal(st.dropped[NB_DROP_LOSS], 0);
    fx_free(f);
}

static void test_mac_aging(void **state)
{
    struct nb_config cfg = {.mac_aging_ns = 5 * FL_NS_PER_SEC};
    struct fx *f = fx_new(3, &cfg);
    send_to(f, 1, 0, 1); /* n2 learned */
    pump(f);
    read_all(f);
    clear_rx(f);
    send_to(f, 0, 1, 2);
    pump(f);
    read_all(f);
    assert_int_equal(f->cl[2].n, 0); /* unicast */
    advance(f, 6 * FL_NS_PER_SEC);
    clear_rx(f);
    send_to(f, 0, 1, 3);
    pump(f);
    read_all(f);
    assert_int_equal(f->cl[1].n, 1);
    assert_int_equal(f->cl[2].n, 1); /* aged out: flooded again */
    fx_free(f);
}

static void test_static_mac_prelearned(void **state)
{
    char dir[] = "/tmp/nb-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct fl_loop *loop = fl_loop_create(NULL, NULL);
    struct nb_config cfg = {.spin_ns = -1};
    struct netback *nb = nb_create(loop, &cfg, NULL);
    assert_true(nb_network_add(nb, "lan", NULL));
    uint8_t m2[6];
    mac_of(1, m2);
    char *p1 = fl_xasprintf("%s/a.sock", dir), *p2 = fl_xasprintf("%s/b.sock", dir),
         *p3 = fl_xasprintf("%s/c.sock", dir);
    assert_non_null(nb_port_add(nb, "lan", "n1", "eth0", NULL, p1, NULL));
    assert_non_null(nb_port_add(nb, "lan", "n2", "eth0", m2, p2, NULL));
    assert_non_null(nb_port_add(nb, "lan", "n3", "eth0", NULL, p3, NULL));
    int fds[3];
    const char *paths[3] = {p1, p2, p3};
    connect_all(loop, paths, fds, 3);
    uint8_t frame[4 + 60] = {0, 0, 0, 60};
    build(frame + 4, 0, m2, 1, 60);
    assert_int_equal(write(fds[0], frame, sizeof frame), (ssize_t)sizeof frame);
    while (fl_loop_run_once(loop, 0) > 0) {
    }
    uint8_t buf[256];
    assert_int_equal(recv(fds[1], buf, sizeof buf, MSG_DONTWAIT), 64);
    /* The configured MAC was known: not flooded to n3. */
    assert_int_equal(recv(fds[2], buf, sizeof buf, MSG_DONTWAIT), -1);
    for (int i = 0; i < 3; i++) {
        close(fds[i]);
    }
    nb_destroy(nb);
    fl_loop_destroy(loop);
    free(p1);
    free(p2);
    free(p3);
    fl_rm_rf(dir);
}

/* ---- impairments, end to end ---- */

static void test_loss_rate(void **state)
{
    struct fx *f = fx_new(2, NULL);
    set_link(f, "n1", "n2", "loss 10%");
    const int N = 20000;
    for (int i = 0; i < N; i++) {
        send_to(f, 0, 1, (uint32_t)i);
        if (i % 100 == 99) { /* a unix socket buffer holds ~250 small writes */
            pump(f);
            read_all(f);
        }
    }
    pump(f);
    read_all(f);
    /* Binomial(20000, 0.9): mean 18000, sd 42.4; 99.99% two-sided: +-3.89 sd. */
    size_t got = f->cl[1].n;
    assert_in_range(got, 18000 - 165, 18000 + 165);
    struct nb_link_stats st = link_stats(f, "n1", "n2");
    assert_int_equal(st.sent, N);
    assert_int_equal(st.delivered, got);
    assert_int_equal(st.dropped[NB_DROP_LOSS], N - got);
    /* The reverse direction is not impaired. */
    for (int i = 0; i < 100; i++) {
        send_to(f, 1, 0, (uint32_t)i);
    }
    pump(f);
    read_all(f);
    assert_int_equal(f->cl[0].n, 100);
    fx_free(f);
}

static void test_delay(void **state)
{
    struct fx *f = fx_new(2, NULL);
    set_link(f, "n1", "n2", "delay 10ms");
    send_to(f, 0, 1, 1);
    pump(f);
    advance(f, 3 * FL_NS_PER_MS);
    send_to(f, 0, 1, 2);
    pump(f);
    read_all(f);
    assert_int_equal(f->cl[1].n, 0);
    advance(f, 7 * FL_NS_PER_MS - 10 * FL_NS_PER_US);
    read_all(f);
    assert_int_equal(f->cl[1].n, 0); /* 10 us early: not yet */
    advance(f, 10 * FL_NS_PER_US);
    read_all(f);
    assert_int_equal(f->cl[1].n, 1);
    assert_int_equal(seq_of(&f->cl[1].frames[0]), 1);
    advance(f, 3 * FL_NS_PER_MS);
    read_all(f);
    assert_int_equal(f->cl[1].n, 2);
    /* Delivered copies go back to the pool, not to malloc. */
    assert_int_equal(f->nb->n_free_pkts, 2);
    /* Back: no delay on n2 -> n1. */
    send_to(f, 1, 0, 3);
    pump(f);
    read_all(f);
    assert_int_equal(f->cl[0].n, 1);
    fx_free(f);
}

static void test_duplicate(void **state)
{
    struct fx *f = fx_new(2, NULL);
    set_link(f, "n1", "n2", "duplicate 100%");
    for (uint32_t i = 0; i < 10; i++) {
        send_to(f, 0, 1, i);
    }
    pump(f);
    read_all(f);
    assert_int_equal(f->cl[1].n, 20);
    struct nb_link_stats st = link_stats(f, "n1", "n2");
    assert_int_equal(st.sent, 10);
    assert_int_equal(st.delivered, 20);
    assert_int_equal(st.duplicated, 10);
    fx_free(f);
}

static void test_corrupt(void **state)
{
    struct fx *f = fx_new(2, NULL);
    set_link(f, "n1", "n2", "corrupt 100%");
    uint8_t sent[64];
    uint8_t mac[6];
    mac_of(1, mac);
    for (uint32_t i = 0; i < 50; i++) {
        send_frame(f, 0, mac, i, 64);
    }
    pump(f);
    read_all(f);
    assert_int_equal(f->cl[1].n, 50);
    for (uint32_t i = 0; i < 50; i++) {
        build(sent, 0, mac, i, 64);
        const struct rxframe *r = &f->cl[1].frames[i];
        assert_int_equal(r->size, 64);
        int bits = 0;
        for (size_t k = 0; k < 64; k++) {
            bits += __builtin_popcount(sent[k] ^ r->data[k]);
        }
        assert_int_equal(bits, 1); /* exactly one bit flipped */
    }
    assert_int_equal(link_stats(f, "n1", "n2").corrupted, 50);
    fx_free(f);
}

static void test_reorder(void **state)
{
    struct fx *f = fx_new(2, NULL);
    set_link(f, "n1", "n2", "delay 10ms reorder 25%");
    const uint32_t N = 400;
    for (uint32_t i = 0; i < N; i++) {
        send_to(f, 0, 1, i);
        advance(f, FL_NS_PER_MS);
        read_all(f);
    }
    advance(f, 20 * FL_NS_PER_MS);
    read_all(f);
    assert_int_equal(f->cl[1].n, N);
    size_t inversions = 0;
    for (size_t i = 1; i < f->cl[1].n; i++) {
        inversions += seq_of(&f->cl[1].frames[i]) < seq_of(&f->cl[1].frames[i - 1]);
    }
    struct nb_link_stats st = link_stats(f, "n1", "n2");
    /* 25% of 400, 99.99% interval of Binomial(400, .25): 100 +- 34. */
    assert_in_range(st.reordered, 66, 134);
    assert_true(inversions > 0);
    assert_true(inversions <= st.reordered);
    fx_free(f);
}

static void test_rate(void **state)
{
    struct fx *f = fx_new(2, NULL);
    /* 8 Mbit/s = 1 byte/us: a 1000-byte frame takes exactly 1 ms. */
    set_link(f, "n1", "n2", "rate 8mbit");
    uint8_t mac[6];
    mac_of(1, mac);
    for (uint32_t i = 0; i < 10; i++) {
        send_frame(f, 0, mac, i, 1000);
    }
    pump(f);
    read_all(f);
    assert_int_equal(f->cl[1].n, 0);
    for (int ms = 1; ms <= 10; ms++) {
        advance(f, FL_NS_PER_MS - 5 * FL_NS_PER_US);
        read_all(f);
        assert_int_equal(f->cl[1].n, (size_t)ms - 1);
        advance(f, 5 * FL_NS_PER_US);
        read_all(f);
        assert_int_equal(f->cl[1].n, (size_t)ms);
    }
    fx_free(f);
}

static void test_one_way_partition_and_heal(void **state)
{
    struct fx *f = fx_new(3, NULL);
    struct fl_error *err = NULL;
    /* Learn everyone first so frames are unicast. */
    for (int i = 0; i < 3; i++) {
        send_frame(f, i, BCAST, 0, 60);
    }
    pump(f);
    read_all(f);
    clear_rx(f);
    assert_true(nb_partition(f->nb, "n1", "n2", true, &err));
    send_to(f, 0, 1, 1); /* cut */
    send_to(f, 1, 0, 2); /* the other direction still works */
    send_to(f, 0, 2, 3); /* and n1 -> n3 */
    pump(f);
    read_all(f);
    assert_int_equal(f->cl[1].n, 0);
    assert_int_equal(f->cl[0].n, 1);
    assert_int_equal(f->cl[2].n, 1);
    struct nb_link_stats st = link_stats(f, "n1", "n2");
    assert_true(st.cut);
    assert_int_equal(st.dropped[NB_DROP_PARTITION], 1);
    assert_false(link_stats(f, "n2", "n1").cut);
    /* Heal. */
    assert_true(nb_partition(f->nb, "n1", "n2", false, &err));
    send_to(f, 0, 1, 4);
    pump(f);
    read_all(f);
    assert_int_equal(f->cl[1].n, 1);
    assert_int_equal(seq_of(&f->cl[1].frames[0]), 4);
    /* A whole cut set: isolate n3 both ways; everything else healed. */
    const struct nb_cut cuts[] = {{"n3", NULL}, {NULL, "n3"}};
    assert_true(nb_partition_apply(f->nb, cuts, 2, &err));
    assert_true(link_stats(f, "n3", "n1").cut);
    assert_true(link_stats(f, "n2", "n3").cut);
    assert_false(link_stats(f, "n1", "n2").cut);
    clear_rx(f);
    send_frame(f, 0, BCAST, 5, 60);
    pump(f);
    read_all(f);
    assert_int_equal(f->cl[1].n, 1);
    assert_int_equal(f->cl[2].n, 0);
    /* Invalid cut sets change nothing. */
    const struct nb_cut bad[] = {{"n1", "n2"}, {"n9", NULL}};
    assert_false(nb_partition_apply(f->nb, bad, 2, &err));
    assert_non_null(strstr(err->msg, "'n9'"));
    fl_error_free(err);
    err = NULL;
    assert_true(link_stats(f, "n3", "n1").cut);
    assert_false(link_stats(f, "n1", "n2").cut);
    nb_heal_all(f->nb);
    assert_false(link_stats(f, "n3", "n1").cut);
    fx_free(f);
}

/* ---- the untrusted guest ---- */

static void test_malformed_input_isolated(void **state)
{
    static const struct {
        const char *name;
        uint8_t bytes[8];
        size_t size;
        bool close_after;
        const char *want;
    } cases[] = {
        {"zero length", {0, 0, 0, 0}, 4, false, "zero frame length"},
        {"runt", {0, 0, 0, 13}, 4, false, "runt frame length 13"},
        {"oversize", {0, 1, 0, 0x20}, 4, false, "frame length 65568"},
        {"garbage", {'G', 'E', 'T', ' ', '/', ' ', 'H', 'T'}, 8, false, "frame length"},
        {"truncated", {0, 0, 0, 100, 1, 2, 3, 4}, 8, true, "inside a frame (4 of 100 bytes)"},
    };
    for (size_t k = 0; k < FL_ARRAY_LEN(cases); k++) {
        struct fx *f = fx_new(3, NULL);
        send_to(f, 0, 1, 1); /* a good frame first */
        send_raw(f, 0, cases[k].bytes, cases[k].size);
        if (cases[k].close_after) {
            shutdown(f->cl[0].fd, SHUT_WR);
        }
        pump(f);
        read_all(f);
        assert_int_equal(f->cl[1].n, 1);
        assert_int_equal(f->ev.disconnected[NB_DISCONNECT_MALFORMED], 1);
        assert_string_equal(f->ev.last_node, "n1");
        if (!strstr(f->ev.last_detail, cases[k].want)) {
            fail_msg("%s: '%s' lacks '%s'", cases[k].name, f->ev.last_detail, cases[k].want);
        }
        struct nb_port_stats ps;
        nb_port_stats(f->port[0], &ps);
        assert_false(ps.connected);
        assert_int_equal(ps.malformed_disconnects, 1);
        /* netback closed the connection: the client sees EOF. */
        uint8_t b[16];
        assert_int_equal(recv(f->cl[0].fd, b, sizeof b, MSG_DONTWAIT), 0);
        /* Everyone else carries on. */
        clear_rx(f);
        send_to(f, 1, 2, 2);
        send_to(f, 2, 1, 3);
        pump(f);
        read_all(f);
        assert_int_equal(f->cl[1].n, 1);
        assert_int_equal(f->cl[2].n, 1);
        /* Frames to the disconnected port are counted as port-down. */
        send_to(f, 1, 0, 4);
        pump(f);
        assert_int_equal(link_stats(f, "n2", "n1").dropped[NB_DROP_PORT_DOWN], 1);
        /* And the guest can connect again. */
        close(f->cl[0].fd);
        client_connect(f, 0);
        clear_rx(f);
        send_to(f, 0, 1, 5);
        pump(f);
        read_all(f);
        assert_int_equal(f->cl[1].n, 1);
        fx_free(f);
    }
}

/* Client i reads again after not reading: it gets `queued` frames, in
 * the order they were sent (some may have been dropped in between). */
static void read_queued_in_order(struct fx *f, int i, uint64_t queued)
{
    for (int k = 0; k < 200; k++) {
        client_read(f, i);
        pump(f);
    }
    client_read(f, i);
    assert_int_equal(f->cl[i].n, queued);
    for (size_t k = 1; k < f->cl[i].n; k++) {
        assert_true(seq_of(&f->cl[i].frames[k]) > seq_of(&f->cl[i].frames[k - 1]));
    }
}

/* Without flow control: frames to a guest that does not read are dropped
 * as soon as its queue is full. */
static void test_stalled_reader_no_flow_control(void **state)
{
    struct nb_config cfg = {.port_queue_size = 128 << 10, .stall_ns = -1};
    struct fx *f = fx_new(3, &cfg);
    /* n2 never reads.  n1 floods broadcasts; n3 reads everything. */
    const int N = 20000;
    for (int i = 0; i < N; i++) {
        send_frame(f, 0, BCAST, (uint32_t)i, 1000);
        if (i % 50 == 49) {
            pump(f);
            client_read(f, 2);
        }
    }
    pump(f);
    client_read(f, 2);
    assert_int_equal(f->cl[2].n, N);
    struct nb_port_stats ps;
    nb_port_stats(f->port[1], &ps);
    assert_true(ps.tx_queue_drops > 0);
    assert_true(ps.queued_bytes <= cfg.port_queue_size);
    assert_true(ps.connected);
    assert_int_equal(ps.tx_frames + ps.tx_queue_drops, N);
    struct nb_link_stats st = link_stats(f, "n1", "n2");
    assert_int_equal(st.dropped[NB_DROP_PORT_QUEUE_FULL], ps.tx_queue_drops);
    /* When n2 reads again, what was queued arrives intact and in order. */
    read_queued_in_order(f, 1, ps.tx_frames);
    fx_free(f);
}

/* With flow control (the default): a guest that does not read at all holds
 * its senders for stall_ns at most, then is stalled and frames to it are
 * dropped; the others get everything. */
static void test_stalled_reader_does_not_stall_others(void **state)
{
    struct nb_config cfg = {.port_queue_size = 128 << 10};
    struct fx *f = fx_new(3, &cfg);
    /* n2 never reads.  n1 floods broadcasts; n3 reads everything. */
    const int N = 20000;
    int64_t waited = 0;
    for (int i = 0; i < N;) {
        if (try_send_frame(f, 0, BCAST, (uint32_t)i, 1000)) {
            i++;
            if (i % 50 == 0) {
                pump(f);
                client_read(f, 2);
            }
            continue;
        }
        /* n1's socket is full: netback holds n1 (n2's queue is full). */
        assert_true(nb_port_connected(f->port[0]));
        advance(f, FL_NS_PER_MS);
        waited += FL_NS_PER_MS;
        client_read(f, 2);
        assert_true(waited <= 2 * NB_DEFAULT_STALL_NS);
    }
    pump(f);
    client_read(f, 2);
    assert_int_equal(f->cl[2].n, N);
    struct nb_port_stats ps, s1;
    nb_port_stats(f->port[1], &ps);
    nb_port_stats(f->port[0], &s1);
    assert_int_equal(ps.tx_stalls, 1);
    assert_true(s1.rx_holds >= 1);
    assert_true(waited >= NB_DEFAULT_STALL_NS);
    assert_true(ps.tx_queue_drops > 0);
    assert_true(ps.queued_bytes <= cfg.port_queue_size + NB_HOLD_SLACK);
    assert_true(ps.connected);
    assert_int_equal(ps.tx_frames + ps.tx_queue_drops, N);
    struct nb_link_stats st = link_stats(f, "n1", "n2");
    assert_int_equal(st.dropped[NB_DROP_PORT_QUEUE_FULL], ps.tx_queue_drops);
    assert_int_equal(link_stats(f, "n1", "n3").delivered, N);
    /* n2 reads again: once netback has tried it (at most
     * NB_STALL_PROBE_NS after frames come for it) it is flow controlled
     * again, so a burst bigger than its queue, read slowly, costs no more
     * drops. */
    client_read_some(f, 1, 64 << 10);
    advance(f, NB_STALL_PROBE_NS);
    uint8_t mac2[6];
    mac_of(1, mac2);
    size_t before = f->cl[1].n;
    int sent = 0;
    for (int round = 0; sent < 1000; round++) {
        assert_true(round < 100000);
        for (int k = 0; k < 50 && sent < 1000 && try_send_frame(f, 0, mac2, N + sent, 1000); k++) {
            sent++;
        }
        pump(f);
        client_read(f, 2);
        client_read_some(f, 1, 16 << 10);
        advance(f, 100 * FL_NS_PER_US);
    }
    for (int i = 0; i < 2000 && f->cl[1].n < before + ps.tx_frames + 1000; i++) {
        client_read_some(f, 1, 64 << 10);
        advance(f, 100 * FL_NS_PER_US);
    }
    struct nb_port_stats after;
    nb_port_stats(f->port[1], &after);
    assert_int_equal(after.tx_queue_drops, ps.tx_queue_drops);
    assert_int_equal(after.tx_stalls, 1);
    assert_int_equal(f->cl[1].n, ps.tx_frames + 1000);
    for (size_t i = 1; i < f->cl[1].n; i++) {
        assert_true(seq_of(&f->cl[1].frames[i]) > seq_of(&f->cl[1].frames[i - 1]));
    }
    fx_free(f);
}

/* A guest that reads, but slower than it is sent to, loses nothing: its
 * sender is held while its queue is full and released as it drains. */
static void test_slow_reader_is_lossless(void **state)
{
    struct nb_config cfg = {.port_queue_size = 64 << 10};
    struct fx *f = fx_new(3, &cfg);
    uint8_t mac2[6];
    mac_of(1, mac2);
    send_to(f, 1, 0, 0); /* n2 learned */
    pump(f);
    read_all(f);
    clear_rx(f);
    const int N = 5000;
    int sent = 0;
    for (int round = 0; sent < N; round++) {
        assert_true(round < 100000);
        for (int k = 0; k < 100 && sent < N && try_send_frame(f, 0, mac2, (uint32_t)sent, 1000);
             k++) {
            sent++;
        }
        pump(f);
        client_read_some(f, 1, 16 << 10);
        advance(f, 100 * FL_NS_PER_US);
    }
    for (int i = 0; i < 1000 && f->cl[1].n < (size_t)N; i++) {
        client_read_some(f, 1, 16 << 10);
        advance(f, 100 * FL_NS_PER_US);
    }
    assert_int_equal(f->cl[1].n, N);
    for (size_t i = 0; i < f->cl[1].n; i++) {
        assert_int_equal(seq_of(&f->cl[1].frames[i]), i);
    }
    struct nb_port_stats s1, s2;
    nb_port_stats(f->port[0], &s1);
    nb_port_stats(f->port[1], &s2);
    assert_true(s1.rx_holds > 0); /* flow control did hold n1 */
    assert_int_equal(s2.tx_queue_drops, 0);
    assert_int_equal(s2.tx_stalls, 0);
    struct nb_link_stats st = link_stats(f, "n1", "n2");
    assert_int_equal(st.delivered, N);
    for (int r = 0; r < NB_DROP__COUNT; r++) {
        assert_int_equal(st.dropped[r], 0);
    }
    fx_free(f);
}

/* Five senders bursting at once at one slow reader: while a queue is
 * full, netback reads little at a time, so the reads in flight when it
 * filled stay within the slack and nothing is dropped. */
enum { SENDERS = 5 };
static void test_many_senders_one_slow_reader(void **state)
{
    struct nb_config cfg = {.port_queue_size = 64 << 10};
    struct fx *f = fx_new(SENDERS + 1, &cfg);
    uint8_t mac_r[6];
    mac_of(SENDERS, mac_r);
    send_to(f, SENDERS, 0, 0); /* the reader learned */
    pump(f);
    read_all(f);
    clear_rx(f);
    const int N = 2000; /* per sender */
    int sent[SENDERS] = {0}, total = 0;
    for (int round = 0; total < SENDERS * N; round++) {
        assert_true(round < 200000);
        /* Each sender fills its socket before netback runs. */
        for (int s = 0; s < SENDERS; s++) {
            while (sent[s] < N &&
                   try_send_frame(f, s, mac_r, (uint32_t)(s << 16 | sent[s]), 1400)) {
                sent[s]++;
                total++;
            }
        }
        pump(f);
        client_read_some(f, SENDERS, 32 << 10);
        advance(f, 100 * FL_NS_PER_US);
    }
    for (int i = 0; i < 5000 && f->cl[SENDERS].n < (size_t)(SENDERS * N); i++) {
        client_read_some(f, SENDERS, 64 << 10);
        advance(f, 100 * FL_NS_PER_US);
    }
    struct nb_port_stats sr;
    nb_port_stats(f->port[SENDERS], &sr);
    assert_int_equal(sr.tx_queue_drops, 0);
    assert_int_equal(sr.tx_stalls, 0);
    assert_int_equal(f->cl[SENDERS].n, SENDERS * N);
    assert_int_equal(f->nb->n_congested, 0); /* reads are full size again */
    /* Each sender's frames in order. */
    int last[SENDERS];
    for (int s = 0; s < SENDERS; s++) {
        last[s] = -1;
    }
    for (size_t i = 0; i < f->cl[SENDERS].n; i++) {
        uint32_t q = seq_of(&f->cl[SENDERS].frames[i]);
        int s = (int)(q >> 16), k = (int)(q & 0xffff);
        assert_true(s < SENDERS && k == last[s] + 1);
        last[s] = k;
    }
    fx_free(f);
}

/* A held sender is released at once when the guest holding it goes away. */
static void test_hold_released_on_disconnect(void **state)
{
    struct nb_config cfg = {.port_queue_size = 64 << 10};
    struct fx *f = fx_new(3, &cfg);
    int i = 0;
    while (try_send_frame(f, 0, BCAST, (uint32_t)i, 1000)) {
        i++;
        pump(f);
        client_read(f, 2);
        assert_true(i < 10000);
    }
    struct nb_port_stats s1;
    nb_port_stats(f->port[0], &s1);
    assert_int_equal(s1.rx_holds, 1);
    /* n2 (full, not reading) disconnects: n1 is read again, no time passes. */
    assert_int_equal(f->nb->n_congested, 1);
    client_close(f, 1);
    assert_int_equal(f->nb->n_congested, 0);
    client_read(f, 2);
    clear_rx(f);
    uint8_t mac3[6];
    mac_of(2, mac3);
    for (int k = 0; k < 10; k++) {
        assert_true(try_send_frame(f, 0, mac3, 100000 + (uint32_t)k, 1000));
    }
    pump(f);
    client_read(f, 2);
    assert_int_equal(f->cl[2].n, 10);
    fx_free(f);
}

static void test_byte_at_a_time_over_socket(void **state)
{
    struct fx *f = fx_new(2, NULL);
    uint8_t frames[3][4 + 100];
    uint8_t mac[6];
    mac_of(1, mac);
    for (int k = 0; k < 3; k++) {
        build(frames[k] + 4, 0, mac, (uint32_t)k, 100);
        frames[k][3] = 100;
    }
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < sizeof frames[k]; i++) {
            send_raw(f, 0, &frames[k][i], 1);
            pump(f);
        }
    }
    read_all(f);
    assert_int_equal(f->cl[1].n, 3);
    for (int k = 0; k < 3; k++) {
        assert_memory_equal(f->cl[1].frames[k].data, frames[k] + 4, 100);
    }
    /* Random chunks across frame boundaries. */
    uint8_t all[200 * (4 + 100)];
    for (int k = 0; k < 200; k++) {
        build(all + k * 104 + 4, 0, mac, (uint32_t)k, 100);
        memset(all + k * 104, 0, 4);
        all[k * 104 + 3] = 100;
    }
    uint64_t x = 12345;
    size_t at = 0;
    while (at < sizeof all) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t n = FL_MIN(sizeof all - at, 1 + (x >> 33) % 300);
        send_raw(f, 0, all + at, n);
        at += n;
        pump(f);
    }
    read_all(f);
    assert_int_equal(f->cl[1].n, 203);
    for (int k = 0; k < 200; k++) {
        assert_int_equal(seq_of(&f->cl[1].frames[3 + k]), k);
    }
    fx_free(f);
}

static void test_reconnect_and_replace(void **state)
{
    struct fx *f = fx_new(2, NULL);
    send_to(f, 0, 1, 1);
    pump(f);
    /* The guest's QEMU crashes: EOF. */
    client_close(f, 0);
    assert_int_equal(f->ev.disconnected[NB_DISCONNECT_EOF], 1);
    /* A restarted QEMU connects again; traffic flows both ways. */
    client_connect(f, 0);
    assert_int_equal(f->ev.connected, 3);
    send_to(f, 0, 1, 2);
    send_to(f, 1, 0, 3);
    pump(f);
    read_all(f);
    assert_int_equal(f->cl[1].n, 2);
    assert_int_equal(f->cl[0].n, 1);
    /* A second connection while the first is open replaces it. */
    int old = f->cl[0].fd;
    client_connect(f, 0);
    assert_int_equal(f->ev.disconnected[NB_DISCONNECT_REPLACED], 1);
    uint8_t b[16];
    assert_int_equal(recv(old, b, sizeof b, MSG_DONTWAIT), 0);
    close(old);
    clear_rx(f);
    send_to(f, 1, 0, 4);
    pump(f);
    read_all(f);
    assert_int_equal(f->cl[0].n, 1);
    struct nb_port_stats ps;
    nb_port_stats(f->port[0], &ps);
    assert_int_equal(ps.connects, 3);
    fx_free(f);
}

/* ---- control API errors ---- */

static void expect_err(bool ok, struct fl_error **err, const char *want)
{
    assert_false(ok);
    assert_non_null(*err);
    if (!strstr((*err)->msg, want)) {
        fail_msg("'%s' lacks '%s'", (*err)->msg, want);
    }
    fl_error_free(*err);
    *err = NULL;
}

static void test_setup_and_control_errors(void **state)
{
    struct fx *f = fx_new(2, NULL);
    struct fl_error *err = NULL;
    char *path = fl_xasprintf("%s/x.sock", f->dir);
    expect_err(nb_network_add(f->nb, "lan", &err), &err, "network 'lan' already exists");
    expect_err(nb_network_add(f->nb, "bad name", &err), &err, "character ' '");
    expect_err(nb_port_add(f->nb, "wan", "n1", "eth1", NULL, path, &err) != NULL, &err,
               "unknown network 'wan' (known: 'lan')");
    expect_err(nb_port_add(f->nb, "lan", "n1", "eth0", NULL, path, &err) != NULL, &err,
               "NIC 'eth0' of node 'n1' already exists");
    char *file = fl_xasprintf("%s/regular", f->dir);
    assert_true(fl_write_file(file, "x", 1, NULL));
    expect_err(nb_port_add(f->nb, "lan", "n3", "eth0", NULL, file, &err) != NULL, &err,
               "is not a socket");
    char longp[200];
    memset(longp, 'a', sizeof longp - 1);
    longp[0] = '/';
    longp[sizeof longp - 1] = 0;
    expect_err(nb_port_add(f->nb, "lan", "n3", "eth0", NULL, longp, &err) != NULL, &err,
               "is 199 bytes long");

    struct impair_link_params p = {0};
    expect_err(nb_link_set(f->nb, "lan", "n1", "n9", &p, &err), &err,
               "unknown destination node 'n9' on network 'lan' (known: 'n1', 'n2')");
    expect_err(nb_link_set(f->nb, "wan", "n1", "n2", &p, &err), &err, "unknown network 'wan'");
    expect_err(nb_partition(f->nb, "n7", NULL, true, &err), &err, "unknown source node 'n7'");
    /* Invalid parameters: rejected before anything changes. */
    p.reorder.p = IMPAIR_PROB_MAX / 2;
    expect_err(nb_link_set(f->nb, NULL, NULL, NULL, &p, &err), &err, "reorder");
    set_link(f, "n1", "n2", "delay 1ms");
    p.reorder.p = 0;
    p.delay.latency_ns = -1;
    expect_err(nb_link_set(f->nb, NULL, NULL, NULL, &p, &err), &err, "delay");
    send_to(f, 0, 1, 1);
    pump(f);
    read_all(f);
    assert_int_equal(f->cl[1].n, 0); /* still delayed by 1ms */
    advance(f, FL_NS_PER_MS);
    read_all(f);
    assert_int_equal(f->cl[1].n, 1);
    /* Clear goes back to a perfect link; wildcards reach every link. */
    assert_true(nb_link_clear(f->nb, NULL, NULL, NULL, &err));
    send_to(f, 0, 1, 2);
    pump(f);
    read_all(f);
    assert_int_equal(f->cl[1].n, 2);
    struct nb_link_stats st;
    assert_int_equal(nb_link_stats(f->nb, "lan", "n1", "n9", &st), -ENOENT);
    assert_null(nb_port_find(f->nb, "n1", "eth9"));
    assert_ptr_equal(nb_port_find(f->nb, "n2", "eth0"), f->port[1]);
    free(file);
    free(path);
    fx_free(f);
}

static void test_partition_spans_networks(void **state)
{
    struct fx *f = fx_new(2, NULL); /* n1, n2 on "lan" */
    struct fl_error *err = NULL;
    assert_true(nb_network_add(f->nb, "wan", &err));
    char *p1 = fl_xasprintf("%s/w1.sock", f->dir), *p2 = fl_xasprintf("%s/w2.sock", f->dir),
         *p3 = fl_xasprintf("%s/w3.sock", f->dir);
    assert_non_null(nb_port_add(f->nb, "wan", "n1", "eth1", NULL, p1, &err));
    assert_non_null(nb_port_add(f->nb, "wan", "n2", "eth1", NULL, p2, &err));
    /* n2's second NIC on wan: a link n2->n2 exists but wildcards skip it. */
    assert_non_null(nb_port_add(f->nb, "wan", "n2", "eth2", NULL, p3, &err));
    assert_true(nb_partition(f->nb, "n1", "n2", true, &err));
    struct nb_link_stats st;
    assert_int_equal(nb_link_stats(f->nb, "wan", "n1", "n2", &st), 0);
    assert_true(st.cut);
    assert_true(link_stats(f, "n1", "n2").cut);
    assert_false(link_stats(f, "n2", "n1").cut);
    /* NULL network: every network both nodes share. */
    struct impair_link_params p;
    assert_true(impair_link_params_parse_string("delay 5ms", NULL, &p, &err));
    assert_true(nb_link_set(f->nb, NULL, "n2", "n1", &p, &err));
    impair_link_params_clear(&p);
    /* Wildcards: every node pair, both networks, but not n2->n2. */
    assert_true(nb_partition(f->nb, NULL, NULL, true, &err));
    assert_int_equal(nb_link_stats(f->nb, "wan", "n2", "n2", &st), 0);
    assert_false(st.cut);
    assert_true(nb_partition(f->nb, "n2", "n2", true, &err));
    assert_int_equal(nb_link_stats(f->nb, "wan", "n2", "n2", &st), 0);
    assert_true(st.cut);
    /* n3 is on no network yet. */
    assert_false(nb_partition(f->nb, "n1", "n3", true, &err));
    assert_non_null(strstr(err->msg, "unknown destination node 'n3'"));
    fl_error_free(err);
    free(p1);
    free(p2);
    free(p3);
    fx_free(f);
}

/* ---- traces ---- */

static int count_packets(const char *path)
{
    char ebuf[PCAP_ERRBUF_SIZE];
    pcap_t *pc = pcap_open_offline(path, ebuf);
    if (!pc) {
        return -1;
    }
    struct pcap_pkthdr *h;
    const u_char *data;
    int n = 0;
    while (pcap_next_ex(pc, &h, &data) == 1) {
        n++;
    }
    pcap_close(pc);
    return n;
}

static void test_pcap_and_fate_records(void **state)
{
    char dir[] = "/tmp/nb-trace-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *pcaps = fl_xasprintf("%s/pcap", dir);
    char *dbpath = fl_xasprintf("%s/run.db", dir);
    struct fl_error *err = NULL;
    struct trace_db *db = trace_db_open(dbpath, &err);
    if (!db) {
        fail_msg("%s", err->msg);
    }
    struct nb_config cfg = {.pcap_dir = pcaps, .trace = db};
    struct fx *f = fx_new(3, &cfg);
    set_link(f, "n1", "n3", "loss 100%");
    struct trace_db_stats ts;
    trace_db_get_stats(db, &ts);
    uint64_t before = ts.records;
    /* A few small frames stay in memory (less than a pcap buffer) until
     * netback's periodic flush puts them on disk, while it runs. */
    enum { FIRST = 10, N = 400 };
    for (uint32_t i = 0; i < FIRST; i++) {
        send_frame(f, 0, BCAST, i, 100); /* to n2 delivered, to n3 lost */
    }
    pump(f);
    read_all(f);
    char *p1 = fl_xasprintf("%s/n1-eth0.pcap", pcaps);
    assert_true(count_packets(p1) <= 0); /* still buffered (even the file header) */
    advance(f, FL_NS_PER_SEC);
    assert_int_equal(count_packets(p1), FIRST);
    free(p1);
    /* Then small and large frames over several reads. */
    for (uint32_t i = FIRST; i < N; i++) {
        send_frame(f, 0, BCAST, i, i % 2 ? 1400 : 100);
        if (i % 100 == 99) {
            pump(f);
            read_all(f);
        }
    }
    pump(f);
    read_all(f);
    assert_int_equal(f->cl[1].n, N);
    trace_db_get_stats(db, &ts);
    /* One fate record per copy: N delivered to n2, N lost to n3. */
    assert_int_equal(ts.records - before, 2 * N);
    assert_int_equal(nb_flush(f->nb), 0);
    fx_free(f);
    assert_int_equal(trace_db_flush(db), 0);
    trace_db_close(db);
    /* n1's pcap: the frames it sent; n2's: those delivered to it, the
     * same bytes; n3's: nothing. */
    const int want[3] = {N, N, 0};
    for (int i = 0; i < 3; i++) {
        char *p = fl_xasprintf("%s/n%d-eth0.pcap", pcaps, i + 1);
        char ebuf[PCAP_ERRBUF_SIZE];
        pcap_t *pc = pcap_open_offline_with_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO, ebuf);
        if (!pc) {
            fail_msg("%s: %s", p, ebuf);
        }
        assert_int_equal(pcap_datalink(pc), DLT_EN10MB);
        struct pcap_pkthdr *h;
        const u_char *data;
        int n = 0;
        while (pcap_next_ex(pc, &h, &data) == 1) {
            uint8_t expect[1400];
            size_t size = build(expect, 0, BCAST, (uint32_t)n, n >= FIRST && n % 2 ? 1400 : 100);
            assert_int_equal(h->caplen, size);
            assert_memory_equal(data, expect, size);
            n++;
        }
        assert_int_equal(n, want[i]);
        pcap_close(pc);
        free(p);
    }
    free(pcaps);
    free(dbpath);
    fl_rm_rf(dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_DFL); /* netback must never raise it */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_learning_and_flooding),
        cmocka_unit_test(test_group_source_dropped),
        cmocka_unit_test(test_spoofed_source_dropped),
        cmocka_unit_test(test_given_mac_is_enforced_from_the_start),
        cmocka_unit_test(test_learning_network_lets_macs_move),
        cmocka_unit_test(test_decide_error_is_internal_not_loss),
        cmocka_unit_test(test_mac_aging),
        cmocka_unit_test(test_static_mac_prelearned),
        cmocka_unit_test(test_loss_rate),
        cmocka_unit_test(test_delay),
        cmocka_unit_test(test_duplicate),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_reorder),
        cmocka_unit_test(test_rate),
        cmocka_unit_test(test_one_way_partition_and_heal),
        cmocka_unit_test(test_partition_spans_networks),
        cmocka_unit_test(test_malformed_input_isolated),
        cmocka_unit_test(test_stalled_reader_no_flow_control),
        cmocka_unit_test(test_stalled_reader_does_not_stall_others),
        cmocka_unit_test(test_slow_reader_is_lossless),
        cmocka_unit_test(test_many_senders_one_slow_reader),
        cmocka_unit_test(test_hold_released_on_disconnect),
        cmocka_unit_test(test_byte_at_a_time_over_socket),
        cmocka_unit_test(test_reconnect_and_replace),
        cmocka_unit_test(test_setup_and_control_errors),
        cmocka_unit_test(test_pcap_and_fate_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
