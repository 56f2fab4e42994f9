/*
 * libFuzzer target: the NBD handshake and request parser of blkback.
 *
 * Input: byte 0 selects how the rest is chunked (low 4 bits: chunk size
 * 1..16 bytes, 0 = all at once), bit 4 stalls the disk while feeding and
 * releases it afterwards, bit 5 power-cuts the disk at the end (with a
 * policy from bits 6-7).  The rest is the client's byte stream.  The disk
 * (1 MiB on tmpfs) has latency, errors and corruption configured so that
 * timers, error replies and structured replies are all exercised; the
 * manual clock advances after every chunk.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blkback/blkback.h"
#include "blkback/nbd.h"
#include "core/core.h"
#include "impair/impair.h"

static struct fl_clock *clk;
static struct fl_loop *loop;
static struct blkback *bb;
static struct bb_disk *disk;

static void cleanup(void)
{
    bb_destroy(bb);
    fl_loop_destroy(loop);
    fl_clock_destroy(clk);
}

static void init(void)
{
    char path[64];
    snprintf(path, sizeof(path), "/dev/shm/fl-fuzz-blkback-%d.img", (int)getpid());
    clk = fl_clock_manual_create(FL_NS_PER_SEC);
    loop = fl_loop_create(clk, NULL);
    struct bb_config bc = {.seed = 1};
    bb = bb_create(loop, &bc, NULL);
    struct impair_disk_params p;
    memset(&p, 0, sizeof(p));
    p.op[IMPAIR_IO_READ].latency.latency_ns = FL_NS_PER_MS;
    p.op[IMPAIR_IO_READ].corrupt_p = IMPAIR_PROB_MAX / 4;
    p.op[IMPAIR_IO_WRITE].error_p = IMPAIR_PROB_MAX / 8;
    p.op[IMPAIR_IO_WRITE].error_errno = 5;
    p.op[IMPAIR_IO_WRITE].range_start = 4096;
    p.op[IMPAIR_IO_WRITE].range_end = 65536;
    p.op[IMPAIR_IO_FLUSH].latency.latency_ns = 3 * FL_NS_PER_MS;
    struct bb_disk_config dc = {
        .node = "fz",
        .name = "vda",
        .path = path,
        .size = 1 << 20,
        .export_name = "vda",
        .no_sync = true,
        .faults = &p,
        .capacity = 512 * 1024,
        .cache_limit = 128 * 1024,
    };
    disk = bb_disk_add(bb, &dc, NULL);
    unlink(path); /* the open descriptor keeps it alive */
    if (!disk) {
        abort();
    }
    atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!disk) {
        init();
    }
    if (size < 1) {
        return 0;
    }
    uint8_t ctl = data[0];
    data++;
    size--;
    size_t chunk = ctl & 0xF ? (size_t)(ctl & 0xF) : size;
    bool stall = ctl & 0x10;
    struct bb_conn *c = bb_conn_create_mem(disk);
    if (stall) {
        bb_disk_stall(disk, true);
    }
    for (size_t pos = 0; pos < size; pos += chunk) {
        size_t n = size - pos < chunk ? size - pos : chunk;
        if (!bb_conn_feed(c, data + pos, n)) {
            break;
        }
        fl_clock_manual_advance(clk, FL_NS_PER_MS);
        while (fl_loop_run_once(loop, 0) > 0) {
        }
    }
    if (stall) {
        bb_disk_stall(disk, false);
    }
    fl_clock_manual_advance(clk, 10 * FL_NS_PER_MS);
    while (fl_loop_run_once(loop, 0) > 0) {
    }
    uint8_t *out;
    size_t out_size;
    bb_conn_take_output(c, &out, &out_size);
    free(out);
    if (ctl & 0x20) {
        static const enum bb_crash_policy pol[4] = {BB_CRASH_KEEP, BB_CRASH_LOSE_UNFLUSHED,
                                                    BB_CRASH_LOSE_RANDOM, BB_CRASH_TEAR};
        bb_disk_crash(disk, pol[ctl >> 6], NULL);
    }
    bb_conn_destroy(c);
    return 0;
}
