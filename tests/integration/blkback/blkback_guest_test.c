/*
 * blkback with a real TCG guest (hv/): the guest's disks are blkback NBD
 * exports with the lose-unflushed crash policy.
 *
 *   1. /data (ext4 on disk 0): write `first`, sync; write `second`, no sync.
 *   2. Raw disk 1: a sector written with fsync (FLUSH) and one written with
 *      O_DIRECT and no flush (it reaches blkback's volatile cache only).
 *   3. Power cut: hv_node_crash (QEMU killed), then bb_disk_crash.
 *   4. Restart the node with the same disks: `first` is there, `second`
 *      is not; the flushed sector is there, the unflushed one is not (seen
 *      by the guest and in the backing file).
 *
 * Exit 0 pass, 1 fail, 77 skip (no QEMU).  Removes everything it created.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blkback/blkback.h"
#include "core/core.h"
#include "hv/hv.h"

#define READY_TIMEOUT (120 * FL_NS_PER_SEC)
#define EXEC_TIMEOUT  (30 * FL_NS_PER_SEC)

static char run_dir[256];
static struct hv_image img;
static struct fl_loop *loop;
static struct blkback *bb;
static struct hv_node *node;

static void cleanup(void)
{
    hv_node_destroy(node);
    node = NULL;
    bb_destroy(bb);
    bb = NULL;
    if (run_dir[0]) {
        if (getenv("BB_TEST_SHOW_CONSOLE")) {
            char *log = fl_xasprintf("%s/n1.console.log", run_dir);
            char *text = fl_read_file(log, NULL, NULL);
            fprintf(stderr, "---- console ----\n%s\n", text ? text : "(none)");
            free(text);
            free(log);
        }
        fl_rm_rf(run_dir);
        run_dir[0] = '\0';
    }
    hv_image_clear(&img);
    fl_loop_destroy(loop);
    loop = NULL;
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            cleanup();                                                                             \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* Runs a command in the guest; returns its exit code, stdout in *out. */
static int guest(const char *cmd, char **out)
{
    struct hv_exec_result res;
    struct fl_error *err = NULL;
    bool ok = hv_node_exec_sync(node, cmd, EXEC_TIMEOUT, &res, &err);
    CHECK(ok, "exec '%s': %s", cmd, err ? err->msg : "?");
    int code = res.exit_code;
    if (code != 0) {
        fprintf(stderr, "guest '%s' -> %d: %s%s\n", cmd, code, res.out, res.err);
    }
    if (out) {
        *out = fl_xstrdup(res.out);
    }
    hv_exec_result_clear(&res);
    return code;
}

static void boot_ready(void)
{
    struct fl_error *err = NULL;
    CHECK(hv_node_boot(node, &err), "boot: %s", err->msg);
    CHECK(hv_node_wait_state(node, HV_NODE_READY, READY_TIMEOUT, &err), "ready: %s", err->msg);
}

int main(void)
{
    if (access("/usr/bin/qemu-system-x86_64", X_OK) != 0 && !getenv("FAULTLINE_QEMU")) {
        fprintf(stderr, "SKIP: qemu-system-x86_64 is not installed (deps/hv.txt)\n");
        return 77;
    }
    struct fl_error *err = NULL;
    struct hv_image_spec spec = {0};
    if (!hv_image_build(&spec, &img, NULL, NULL, &err)) {
        fprintf(stderr, "FAIL: image build: %s\n", err->msg);
        return 1;
    }
    snprintf(run_dir, sizeof run_dir, "/tmp/fl-bb-guest-XXXXXX");
    CHECK(mkdtemp(run_dir), "mkdtemp: %s", strerror(errno));
    loop = fl_loop_create(NULL, &err);
    CHECK(loop, "%s", err->msg);
    struct bb_config bc = {.seed = 2026};
    bb = bb_create(loop, &bc, &err);
    CHECK(bb, "%s", err->msg);

    char *img0 = fl_xasprintf("%s/vda.img", run_dir), *img1 = fl_xasprintf("%s/vdb.img", run_dir);
    char *sock0 = fl_xasprintf("%s/vda.sock", run_dir),
         *sock1 = fl_xasprintf("%s/vdb.sock", run_dir);
    struct bb_disk_config d0 = {.node = "n1",
                                .name = "vda",
                                .path = img0,
                                .size = 64u << 20,
                                .socket_path = sock0,
                                .crash_policy = BB_CRASH_LOSE_UNFLUSHED,
                                .no_sync = true};
    struct bb_disk_config d1 = d0;
    d1.name = "vdb";
    d1.path = img1;
    d1.size = 1u << 20;
    d1.socket_path = sock1;
    struct bb_disk *disk0 = bb_disk_add(bb, &d0, &err);
    CHECK(disk0, "%s", err->msg);
    struct bb_disk *disk1 = bb_disk_add(bb, &d1, &err);
    CHECK(disk1, "%s", err->msg);

    struct hv_disk_config disks[] = {
        {.kind = HV_DISK_NBD, .path = sock0, .mount_point = "/data", .format_if_blank = true},
        {.kind = HV_DISK_NBD, .path = sock1},
    };
    struct hv_node_config nc = {
        .name = "n1",
        .memory_mib = 128,
        .kernel = img.kernel,
        .initrd = img.initrd,
        .run_dir = run_dir,
        .disks = disks,
        .n_disks = 2,
        .ready_timeout_ns = READY_TIMEOUT,
    };
    node = hv_node_create(loop, &nc, NULL, NULL, &err);
    CHECK(node, "%s", err->msg);
    boot_ready();

    /* 1. files: one synced, one not */
    CHECK(guest("echo first > /data/first && sync", NULL) == 0, "write first");
    /* 2. raw sectors on disk 1: flushed, and direct-but-unflushed */
    CHECK(guest("printf 'FLUSHED-SECTOR' | dd of=/dev/disk/fl-d1 bs=512 count=1 conv=sync,fsync "
                "2>/dev/null",
                NULL) == 0,
          "flushed raw write");
    CHECK(guest("printf 'UNFLUSHED-SECTOR' | dd of=/dev/disk/fl-d1 bs=512 seek=8 count=1 "
                "conv=sync oflag=direct 2>/dev/null",
                NULL) == 0,
          "direct raw write (busybox dd needs oflag=direct)");
    CHECK(guest("echo second > /data/second && test -s /data/second", NULL) == 0, "write second");

    struct bb_disk_stats st;
    bb_disk_get_stats(disk1, &st);
    CHECK(st.flushes >= 1, "the guest's fsync reached blkback as FLUSH (%llu flushes)",
          (unsigned long long)st.flushes);
    CHECK(st.cached_writes >= 1, "the O_DIRECT write sits in the volatile cache (%llu cached)",
          (unsigned long long)st.cached_writes);

    /* 3. power cut */
    CHECK(hv_node_crash(node, &err), "crash: %s", err->msg);
    CHECK(hv_node_wait_state(node, HV_NODE_OFF, 30 * FL_NS_PER_SEC, &err), "off: %s", err->msg);
    struct bb_crash_report r0, r1;
    CHECK(bb_disk_crash(disk0, BB_CRASH_DEFAULT, &r0) == 0, "crash disk 0");
    CHECK(bb_disk_crash(disk1, BB_CRASH_DEFAULT, &r1) == 0, "crash disk 1");
    CHECK(r1.policy == BB_CRASH_LOSE_UNFLUSHED && r1.writes_lost >= 1,
          "disk 1 lost its unflushed write (%llu lost)", (unsigned long long)r1.writes_lost);
    fprintf(stderr, "crash: vda lost %llu unflushed writes, vdb lost %llu\n",
            (unsigned long long)r0.writes_lost, (unsigned long long)r1.writes_lost);

    /* the backing file holds what a real disk would */
    char raw[16];
    int fd = open(img1, O_RDONLY);
    CHECK(fd >= 0, "open %s", img1);
    CHECK(pread(fd, raw, 14, 0) == 14 && !memcmp(raw, "FLUSHED-SECTOR", 14),
          "flushed sector in the backing file");
    CHECK(pread(fd, raw, 16, 4096) == 16 && memcmp(raw, "UNFLUSHED-SECTOR", 16) != 0,
          "unflushed sector must not be in the backing file");
    close(fd);

    /* 4. restart with the same disks */
    boot_ready();
    char *out = NULL;
    CHECK(guest("cat /data/first", &out) == 0 && !strcmp(out, "first\n"),
          "synced file after the crash: '%s'", out ? out : "");
    free(out);
    CHECK(guest("test ! -e /data/second || test ! -s /data/second", NULL) == 0,
          "unsynced file must be gone (or empty) after the crash");
    CHECK(guest("dd if=/dev/disk/fl-d1 bs=512 count=1 2>/dev/null | head -c 14", &out) == 0 &&
              !strcmp(out, "FLUSHED-SECTOR"),
          "flushed sector seen by the guest: '%s'", out ? out : "");
    free(out);
    CHECK(guest("dd if=/dev/disk/fl-d1 bs=512 skip=8 count=1 2>/dev/null | head -c 16", &out) ==
                  0 &&
              strcmp(out, "UNFLUSHED-SECTOR") != 0,
          "unflushed sector must not be seen by the guest");
    free(out);

    free(img0);
    free(img1);
    free(sock0);
    free(sock1);
    cleanup();
    printf("PASS\n");
    return 0;
}
