/* The synthetic run of synth.h, written through the public trace/ API. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "tests/unit/trace/synth.h"
#include "trace/trace.h"

#define NNODES 3
#define MS     FL_NS_PER_MS
#define SEC    FL_NS_PER_SEC

static uint16_t csum(const uint8_t *p, size_t n)
{
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        s += (uint32_t)(p[i] << 8 | p[i + 1]);
    }
    if (n & 1) {
        s += (uint32_t)(p[n - 1] << 8);
    }
    while (s >> 16) {
        s = (s & 0xffff) + (s >> 16);
    }
    return (uint16_t)~s;
}

/* A 98-byte Ethernet/IPv4/ICMP echo frame from node a to node b. */
static void make_frame(uint8_t *f, int a, int b, int seq)
{
    memset(f, 0, 98);
    uint8_t mac_a[6] = {0x52, 0x54, 0x00, 0x00, 0x00, (uint8_t)(a + 1)};
    uint8_t mac_b[6] = {0x52, 0x54, 0x00, 0x00, 0x00, (uint8_t)(b + 1)};
    memcpy(f, mac_b, 6);
    memcpy(f + 6, mac_a, 6);
    f[12] = 0x08;
    f[13] = 0x00;
    uint8_t *ip = f + 14;
    ip[0] = 0x45;
    ip[3] = 84;
    ip[4] = (uint8_t)(seq >> 8);
    ip[5] = (uint8_t)seq;
    ip[8] = 64;
    ip[9] = 1; /* ICMP */
    ip[12] = 10, ip[13] = 0, ip[14] = 0, ip[15] = (uint8_t)(a + 1);
    ip[16] = 10, ip[17] = 0, ip[18] = 0, ip[19] = (uint8_t)(b + 1);
    uint16_t c = csum(ip, 20);
    ip[10] = (uint8_t)(c >> 8);
    ip[11] = (uint8_t)c;
    uint8_t *icmp = ip + 20;
    icmp[0] = 8; /* echo request */
    icmp[4] = (uint8_t)a;
    icmp[6] = (uint8_t)(seq >> 8);
    icmp[7] = (uint8_t)seq;
    for (int i = 8; i < 64; i++) {
        icmp[i] = (uint8_t)(i + seq);
    }
    c = csum(icmp, 64);
    icmp[2] = (uint8_t)(c >> 8);
    icmp[3] = (uint8_t)c;
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "synth: %s:%d: %s failed\n", __FILE__, __LINE__, #cond);               \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

bool synth_run(const char *run_dir, struct synth_counts *n)
{
    return synth_run_steps(run_dir, 200, n);
}

bool synth_run_steps(const char *run_dir, int steps, struct synth_counts *n)
{
    memset(n, 0, sizeof(*n));
    struct fl_error *err = NULL;
    char *pcap_dir = fl_xasprintf("%s/pcap", run_dir);
    char *db_path = fl_xasprintf("%s/run.db", run_dir);
    struct trace_db *db = NULL;
    struct trace_pcap *pcaps[NNODES] = {NULL};
    bool ok = false;
    if (!fl_mkdir_p(pcap_dir, 0755, &err)) {
        fprintf(stderr, "synth: %s\n", err->msg);
        fl_error_free(err);
        goto fail;
    }
    unlink(db_path);
    db = trace_db_open(db_path, &err);
    if (!db) {
        fprintf(stderr, "synth: %s\n", err->msg);
        fl_error_free(err);
        goto fail;
    }
    const int64_t base = fl_clock_mono_ns() + 3600 * SEC; /* time zero */
    const int64_t wall0 = fl_clock_real_ns();
    const char *names[NNODES] = {"n1", "n2", "n3"};
    int64_t node[NNODES], nic[NNODES], link[NNODES][NNODES];
    int64_t lan = trace_network_id(db, "lan");
    CHECK(lan == 1);
    for (int i = 0; i < NNODES; i++) {
        node[i] = trace_node_id(db, names[i]);
        char mac[32];
        snprintf(mac, sizeof(mac), "52:54:00:00:00:%02x", i + 1);
        nic[i] = trace_nic_id(db, node[i], lan, "eth0", mac);
        CHECK(node[i] > 0 && nic[i] > 0);
        char *path = trace_pcap_path(run_dir, names[i], "eth0");
        pcaps[i] = trace_pcap_create(path, &err);
        free(path);
        CHECK(pcaps[i]);
    }
    struct trace_run_info info = {
        .scenario_name = "three-node-partition",
        .scenario_path = "scenarios/three-node-partition.yaml",
        .scenario_text = "name: three-node-partition\nnodes: [n1, n2, n3]\n",
        .seed = 42,
        .accel = "tcg",
        .host = "synth-host",
    };
    CHECK(trace_run_begin(db, &info) == 0);
    for (int i = 0; i < NNODES; i++) {
        for (int j = 0; j < NNODES; j++) {
            if (i != j) {
                link[i][j] = trace_link_id(db, lan, node[i], node[j]);
                CHECK(link[i][j] > 0);
                CHECK(trace_link_params(db, link[i][j], base - 1 * SEC, "delay=1ms jitter=1ms") ==
                      0);
            }
        }
    }
    /* boot events before time zero, written before the epoch is set:
     * they are shifted when it is */
    for (int i = 0; i < NNODES; i++) {
        CHECK(trace_event(db, base - 2 * SEC + i * 100 * MS, "boot", node[i], "qemu started") > 0);
        n->events++;
    }
    CHECK(trace_db_set_epoch(db, base) == 0);
    for (int i = 0; i < NNODES; i++) {
        /* the last node ready just before time zero, as in a real run
         * (it shows as 0.000 s, never -0.000 s) */
        int64_t t = i == NNODES - 1 ? -200 * FL_NS_PER_US : -100 * MS + i * 10 * MS;
        CHECK(trace_event(db, base + t, "ready", node[i], "guest agent up") > 0);
        n->events++;
    }
    int64_t part = trace_event(db, base + 5 * SEC, "partition", 0, "{n1 n2} | {n3}");
    CHECK(part > 0);
    n->events++;
    CHECK(trace_event(db, base + 8 * SEC, "link", node[0], "lan n1->n2: delay=11ms jitter=1ms") >
          0);
    n->events++;
    CHECK(trace_link_params(db, link[0][1], base + 8 * SEC, "delay=11ms jitter=1ms") == 0);
    for (int i = 0; i < NNODES; i++) {
        if (i != 2) {
            CHECK(trace_link_params(db, link[i][2], base + 5 * SEC, "partitioned") == 0);
            CHECK(trace_link_params(db, link[2][i], base + 5 * SEC, "partitioned") == 0);
            CHECK(trace_link_params(db, link[i][2], base + 10 * SEC, "delay=1ms jitter=1ms") == 0);
            CHECK(trace_link_params(db, link[2][i], base + 10 * SEC, "delay=1ms jitter=1ms") == 0);
        }
    }

    /* frames */
    int seq = 0, n12 = 0;
    const int64_t interval = 20 * SEC / steps;
    for (int step = 0; step < steps; step++) {
        for (int a = 0; a < NNODES; a++) {
            for (int b = 0; b < NNODES; b++) {
                if (a == b) {
                    continue;
                }
                seq++;
                int64_t t = step * interval + (a * 3 + b) * 1 * MS;
                uint8_t f[98];
                make_frame(f, a, b, seq);
                CHECK(trace_pcap_write(pcaps[a], wall0 + t, f, sizeof(f)) == 0);
                n->sends++;
                struct trace_frame fr = {
                    .sent_ns = base + t,
                    .link_id = link[a][b],
                    .src_nic_id = nic[a],
                    .dst_nic_id = nic[b],
                    .pcap_index = -1,
                    .size = sizeof(f),
                    .hash = trace_frame_hash(f, sizeof(f)),
                };
                int64_t delay = 1 * MS + (seq * 37 % 1000) * FL_NS_PER_US;
                if (a == 0 && b == 1 && t >= 8 * SEC) {
                    delay += 10 * MS;
                }
                bool in_part = t >= 5 * SEC && t < 10 * SEC && (a == 2 || b == 2);
                bool lost = a == 0 && b == 1 && n12++ % 10 == 7;
                if (in_part) {
                    fr.fate = TRACE_FATE_DROPPED;
                    fr.reason = TRACE_DROP_PARTITION;
                    fr.delivered_ns = TRACE_NO_TIME;
                    n->dropped_partition++;
                } else if (lost) {
                    fr.fate = TRACE_FATE_DROPPED;
                    fr.reason = TRACE_DROP_LOSS;
                    fr.delivered_ns = TRACE_NO_TIME;
                    n->dropped_loss++;
                } else {
                    fr.fate = TRACE_FATE_DELIVERED;
                    fr.delivered_ns = base + t + delay;
                    if (delay > 5 * MS) {
                        n->delayed_beyond_5ms++;
                    }
                    if (a == 2 && b == 0 && step == steps * 3 / 4) {
                        fr.corrupt_offset = 40;
                        fr.corrupt_mask = 0x04;
                        n->corrupted++;
                    }
                    if (a == 1 && b == 0 && step == steps * 3 / 5) {
                        fr.reordered = 1;
                        n->reordered++;
                    }
                }
                if (b == 2 && fr.fate == TRACE_FATE_DROPPED) {
                    n->to_n3_dropped++;
                }
                if (a == 0 && b == 1) {
                    n->n1_to_n2++;
                }
                CHECK(trace_frame(db, &fr) == 0);
                n->frames++;
                if (a == 1 && b == 2 && step % (steps / 4) == 3 &&
                    fr.fate == TRACE_FATE_DELIVERED) {
                    fr.copy = 1;
                    fr.delivered_ns += 200 * FL_NS_PER_US;
                    CHECK(trace_frame(db, &fr) == 0);
                    n->frames++;
                    n->duplicated++;
                }
            }
        }
    }
    CHECK(trace_event_end(db, part, base + 10 * SEC) == 0);
    /* no detail: tables must not end such a row in blanks */
    CHECK(trace_event(db, base + 10 * SEC, "heal", 0, NULL) > 0);
    n->events++;

    /* disk on n1 */
    int64_t disk = trace_disk_id(db, node[0], "data", 64ull << 20);
    CHECK(disk > 0);
    int64_t unflushed[64];
    size_t nunflushed = 0;
    uint64_t off = 0;
    for (int64_t t = 0; t < 12500 * MS; t += 50 * MS) {
        struct trace_io w = {.disk_id = disk,
                             .submit_ns = base + t,
                             .complete_ns = base + t + 200 * FL_NS_PER_US,
                             .offset = off,
                             .length = 4096,
                             .op = TRACE_IO_WRITE};
        if (t == 3 * SEC) {
            w.fault = TRACE_IO_FAULT_ERROR;
            w.result = EIO;
        }
        off += 4096;
        int64_t id = trace_io(db, &w);
        CHECK(id > 0);
        n->ios++;
        if (!w.result) {
            unflushed[nunflushed++] = id;
        }
        if (t % (200 * MS) == 0) {
            struct trace_io r = {.disk_id = disk,
                                 .submit_ns = base + t + 5 * MS,
                                 .complete_ns = base + t + 5 * MS + 100 * FL_NS_PER_US,
                                 .offset = 0,
                                 .length = 4096,
                                 .op = TRACE_IO_READ};
            CHECK(trace_io(db, &r) > 0);
            n->ios++;
        }
        if (t % SEC == 0) {
            struct trace_io fl = {.disk_id = disk,
                                  .submit_ns = base + t + 10 * MS,
                                  .complete_ns = base + t + 12 * MS,
                                  .op = TRACE_IO_FLUSH};
            CHECK(trace_io(db, &fl) > 0);
            n->ios++;
            nunflushed = 0;
        }
        CHECK(nunflushed < FL_ARRAY_LEN(unflushed));
    }
    /* a write in flight at the crash: never completed */
    struct trace_io inflight = {.disk_id = disk,
                                .submit_ns = base + 12499 * MS,
                                .complete_ns = TRACE_NO_TIME,
                                .offset = off,
                                .length = 8192,
                                .op = TRACE_IO_WRITE};
    CHECK(trace_io(db, &inflight) > 0);
    n->ios++;
    CHECK(trace_event(db, base + 12500 * MS, "crash", node[0], "power cut (lose-unflushed)") > 0);
    n->events++;
    int64_t crash = trace_crash(db, disk, base + 12500 * MS, "lose-unflushed");
    CHECK(crash > 0);
    for (size_t k = 0; k < nunflushed; k++) {
        bool last = k + 1 == nunflushed;
        CHECK(trace_crash_write(db, crash, unflushed[k], last ? TRACE_CRASH_TORN : TRACE_CRASH_LOST,
                                last ? 512 : 0) == 0);
        n->lost_writes++;
    }
    CHECK(trace_event(db, base + 12500 * MS, "disconnect", node[0], "eth0: guest disconnected") >
          0);
    CHECK(trace_event(db, base + 13 * SEC, "restart", node[0], "qemu restarted") > 0);
    n->events += 2;
    for (int k = 0; k < 5; k++) {
        struct trace_io r = {.disk_id = disk,
                             .submit_ns = base + 14 * SEC + k * MS,
                             .complete_ns = base + 14 * SEC + k * MS + 80 * FL_NS_PER_US,
                             .offset = (uint64_t)k * 4096,
                             .length = 4096,
                             .op = TRACE_IO_READ};
        CHECK(trace_io(db, &r) > 0);
        n->ios++;
    }

    struct trace_check c1 = {.name = "cluster-healthy",
                             .node_id = node[0],
                             .command = "etcdctl endpoint health --cluster",
                             .exit_status = 0,
                             .out = "127.0.0.1:2379 is healthy",
                             .err = "",
                             .passed = true,
                             .start_ns = base + 19 * SEC,
                             .end_ns = base + 19 * SEC + 300 * MS};
    struct trace_check c2 = {.name = "data-durable",
                             .node_id = node[0],
                             .command = "check-data /data",
                             .exit_status = 1,
                             .out = "",
                             .err = "block 153: expected 0xab, found 0x00 <lost>",
                             .passed = false,
                             .start_ns = base + 19500 * MS,
                             .end_ns = base + 19600 * MS};
    CHECK(trace_check(db, &c1) == 0 && trace_check(db, &c2) == 0);
    CHECK(trace_run_end(db, "fail", "1 of 2 checks failed", base + 20 * SEC) == 0);
    CHECK(trace_db_flush(db) == 0);
    ok = true;
fail:
    for (int i = 0; i < NNODES; i++) {
        trace_pcap_destroy(pcaps[i]);
    }
    trace_db_close(db);
    free(pcap_dir);
    free(db_path);
    return ok;
}
