/*
 * libFuzzer target: the frame reassembler and a port's whole input path
 * (reassembly, MAC learning, flooding, impairment with delay/duplicate/
 * corrupt/loss/reorder, the delivery queue, bounded output queues).
 *
 * Input: byte 0 picks how the rest is chunked (0: one feed, 1: one byte
 * at a time, else chunk sizes drawn from the following bytes); the rest is
 * what a guest writes to its socket.  After the input the stream "ends"
 * (EOF): a partial frame there is a protocol violation too.  The fuzzed
 * port is re-attached after every malformed disconnect.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/core.h"
#include "impair/impair.h"
#include "netback/internal.h"

static struct fl_clock *clk;
static struct fl_loop *loop;
static struct netback *nb;
static struct nb_port *ports[3];
static int peers[3] = {-1, -1, -1};
static char dir[64];

static void attach(int i)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
        abort();
    }
    if (peers[i] >= 0) {
        close(peers[i]);
    }
    peers[i] = sv[1];
    if (nb_port_attach(ports[i], sv[0]) < 0) {
        abort();
    }
}

static void cleanup(void)
{
    nb_destroy(nb);
    fl_loop_destroy(loop);
    fl_clock_destroy(clk);
    fl_rm_rf(dir);
}

static void setup(void)
{
    fl_log_set_level(FL_LOG_ERROR);
    snprintf(dir, sizeof dir, "/tmp/nb-fuzz-XXXXXX");
    if (!mkdtemp(dir)) {
        abort();
    }
    clk = fl_clock_manual_create(FL_NS_PER_SEC);
    loop = fl_loop_create(clk, NULL);
    struct nb_config cfg = {.seed = 1, .spin_ns = -1, .port_queue_size = 256 << 10};
    nb = nb_create(loop, &cfg, NULL);
    nb_network_add(nb, "lan", NULL);
    for (int i = 0; i < 3; i++) {
        char node[8], *path;
        snprintf(node, sizeof node, "n%d", i);
        path = fl_xasprintf("%s/%s.sock", dir, node);
        ports[i] = nb_port_add(nb, "lan", node, "eth0", NULL, path, NULL);
        free(path);
        attach(i);
    }
    struct impair_link_params p;
    impair_link_params_parse_string("delay 1ms 500us reorder 10% duplicate 20% corrupt 20% loss 5%",
                                    NULL, &p, NULL);
    nb_link_set(nb, "lan", "n0", "n1", &p, NULL);
    impair_link_params_clear(&p);
    impair_link_params_parse_string("rate 10mbit limit 50", NULL, &p, NULL);
    nb_link_set(nb, "lan", "n0", "n2", &p, NULL);
    impair_link_params_clear(&p);
    atexit(cleanup);
}

static void drain_peers(void)
{
    uint8_t buf[65536];
    for (int i = 1; i < 3; i++) {
        while (recv(peers[i], buf, sizeof buf, MSG_DONTWAIT) > 0) {
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!nb) {
        setup();
    }
    if (size < 1) {
        return 0;
    }
    uint8_t mode = data[0];
    data++;
    size--;
    size_t at = 0, k = 0;
    while (at < size) {
        size_t n = size - at;
        if (mode == 1) {
            n = 1;
        } else if (mode > 1) {
            size_t want = (size_t)1 + data[k++ % size] * (mode % 16 + 1u);
            n = FL_MIN(n, want); /* FL_MIN evaluates its arguments twice */
        }
        fl_clock_manual_advance(clk, 10 * FL_NS_PER_US);
        if (nb_port_input(ports[0], data + at, n, fl_loop_now(loop)) < 0) {
            attach(0);
        }
        at += n;
    }
    /* End of stream. */
    if (nb_reasm_finish(&nb_sock_port(ports[0])->reasm) < 0) {
        attach(0);
    }
    nb_reasm_reset(&nb_sock_port(ports[0])->reasm);
    /* Let every delayed copy go out, and the receivers read. */
    for (int i = 0; i < 4; i++) {
        fl_clock_manual_advance(clk, 50 * FL_NS_PER_MS);
        while (fl_loop_run_once(loop, 0) > 0) {
        }
        drain_peers();
    }
    return 0;
}
