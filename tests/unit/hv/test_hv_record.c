/*
 * Record/replay pieces that need no guest (hv/record.h): the record and
 * replay command lines for both QEMU flavours (from a real node's plain
 * command line), what cannot be recorded, QEMU's version string, and the
 * segment metadata reader/writer with its errors.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "hv/proto.h"
#include "hv/record.h"

static char dir[] = "/tmp/fl-test-record-XXXXXX";
static char self[4096];

/* ---- helpers ---- */

static size_t find(char *const *argv, const char *s)
{
    for (size_t i = 0; argv[i]; i++) {
        if (!strcmp(argv[i], s)) {
            return i;
        }
    }
    return (size_t)-1;
}

static bool has(char *const *argv, const char *s)
{
    return find(argv, s) != (size_t)-1;
}

/* Index of the first element containing `sub`. */
static size_t find_sub(char *const *argv, const char *sub)
{
    for (size_t i = 0; argv[i]; i++) {
        if (strstr(argv[i], sub)) {
            return i;
        }
    }
    return (size_t)-1;
}

/* The value following option `opt` whose text starts with `prefix`. */
static const char *opt_value(char *const *argv, const char *opt, const char *prefix)
{
    for (size_t i = 0; argv[i] && argv[i + 1]; i++) {
        if (!strcmp(argv[i], opt) && !strncmp(argv[i + 1], prefix, strlen(prefix))) {
            return argv[i + 1];
        }
    }
    return NULL;
}

static struct hv_node *make_node(struct fl_loop *loop, unsigned vcpus, enum hv_accel accel)
{
    static const struct hv_nic_config nics[] = {
        {.socket_path = "/run/fl/n1-eth0.sock", .ip_cidr = "10.0.0.1/24"},
        {.socket_path = "/run/fl/n1-eth1.sock"},
    };
    static struct hv_disk_config disks[2];
    disks[0] = (struct hv_disk_config){
        .kind = HV_DISK_NBD, .path = "/run/fl/n1-data.nbd", .export_name = "data"};
    disks[1] = (struct hv_disk_config){.kind = HV_DISK_FILE, .path = self, .read_only = true};
    struct hv_node_config cfg = {
        .name = "n1",
        .vcpus = vcpus,
        .kernel = self,
        .initrd = self,
        .run_dir = dir,
        .accel = accel,
        .nics = nics,
        .n_nics = 2,
        .disks = disks,
        .n_disks = 2,
    };
    struct fl_error *err = NULL;
    struct hv_node *n = hv_node_create(loop, &cfg, NULL, NULL, &err);
    if (!n) {
        fail_msg("hv_node_create: %s", err->msg);
    }
    return n;
}

/* ---- command lines ---- */

static void test_argv_record_qemu72(void **state)
{
    struct fl_loop *loop = fl_loop_create(NULL, NULL);
    struct hv_node *n = make_node(loop, 1, HV_ACCEL_TCG);
    struct hv_rr_argv_opts o = {
        .mode = HV_RR_RECORD,
        .flavor = HV_RR_QEMU72,
        .rrfile = "/runs/r/rr/n1/0/replay.log",
        .console = "/runs/r/rr/n1/0/console.log",
        .agent = "/runs/r/rr/n1/0/agent.log",
    };
    struct fl_error *err = NULL;
    char **a = hv_node_rr_argv(n, &o, &err);
    assert_non_null(a);
    assert_string_equal(opt_value(a, "-icount", "shift"),
                        "shift=auto,rr=record,rrfile=/runs/r/rr/n1/0/replay.log");
    assert_string_equal(opt_value(a, "-rtc", ""), "clock=vm");
    assert_string_equal(opt_value(a, "-accel", ""), "tcg,tb-size=16");
    /* the guest TSC runs at 1 GHz under icount; the host's rate is gone */
    const char *append = opt_value(a, "-append", "");
    assert_non_null(strstr(append, " tsc_early_khz=1000000"));
    assert_null(strstr(strstr(append, "tsc_early_khz=") + 1, "tsc_early_khz="));
    /* transcripts, and the agent registered as the second serial port */
    assert_non_null(strstr(opt_value(a, "-chardev", "file,id=con"),
                           ",logfile=/runs/r/rr/n1/0/console.log,logappend=off"));
    assert_string_equal(opt_value(a, "-chardev", "socket,id=agent"),
                        "socket,id=agent,fd=4,logfile=/runs/r/rr/n1/0/agent.log,logappend=off");
    size_t con = find(a, "chardev:con"), agent = find(a, "chardev:agent");
    assert_true(con != (size_t)-1 && agent != (size_t)-1 && con < agent);
    assert_string_equal(a[agent - 1], "-serial");
    /* NICs: the same stream backends, a replay filter each, tx=timer */
    assert_non_null(opt_value(a, "-netdev", "stream,id=n0,"));
    assert_true(has(a, "filter-replay,id=rr-n0,netdev=n0"));
    assert_true(has(a, "filter-replay,id=rr-n1,netdev=n1"));
    assert_non_null(strstr(opt_value(a, "-device", "virtio-net-device,netdev=n0"), ",tx=timer"));
    assert_non_null(strstr(opt_value(a, "-device", "virtio-net-device,netdev=n1"), ",tx=timer"));
    /* disks: the original node renamed under blkreplay */
    assert_string_equal(opt_value(a, "-blockdev", "driver=nbd"),
                        "driver=nbd,node-name=d0-rr,server.type=unix,server.path=/run/fl/"
                        "n1-data.nbd,export=data");
    assert_true(has(a, "driver=blkreplay,node-name=d0,image=d0-rr"));
    assert_true(has(a, "driver=raw,node-name=d1-rr,file=f1,read-only=on"));
    assert_true(has(a, "driver=blkreplay,node-name=d1,image=d1-rr,read-only=on"));
    assert_true(has(a, "virtio-blk-device,drive=d0,serial=fl-d0"));
    assert_false(has(a, "-S"));
    hv_rr_argv_free(a);
    hv_node_destroy(n);
    fl_loop_destroy(loop);
}

static void test_argv_replay_qemu10(void **state)
{
    struct fl_loop *loop = fl_loop_create(NULL, NULL);
    struct hv_node *n = make_node(loop, 1, HV_ACCEL_AUTO);
    const char *disks[] = {"disk-0.img", "disk-1.img"};
    const char *extra[] = {"-gdb", "tcp::1234"};
    struct hv_rr_argv_opts o = {
        .mode = HV_RR_REPLAY,
        .flavor = HV_RR_QEMU10,
        .rrfile = "replay.log",
        .console = "console.log",
        .agent = "agent.log",
        .disks = disks,
        .n_disks = 2,
        .extra = extra,
        .n_extra = 2,
    };
    struct fl_error *err = NULL;
    char **a = hv_node_rr_argv(n, &o, &err);
    assert_non_null(a);
    assert_string_equal(opt_value(a, "-icount", "shift"), "shift=auto,rr=replay,rrfile=replay.log");
    /* 10.0: -rtc clock=vm makes every replay fail; tx=timer not needed */
    assert_false(has(a, "-rtc"));
    assert_true(find_sub(a, "tx=timer") == (size_t)-1);
    assert_string_equal(opt_value(a, "-accel", ""), "tcg,tb-size=16");
    /* no backends: hub ports, the log feeds the frames */
    assert_true(has(a, "hubport,id=n0,hubid=0"));
    assert_true(has(a, "hubport,id=n1,hubid=1"));
    assert_true(find_sub(a, "stream,") == (size_t)-1);
    assert_true(has(a, "filter-replay,id=rr-n1,netdev=n1"));
    /* open backends (a null chardev reports itself closed), transcripts */
    assert_true(has(a, "file,id=con,path=/dev/null,logfile=console.log,logappend=off"));
    assert_true(has(a, "file,id=agent,path=/dev/null,logfile=agent.log,logappend=off"));
    assert_true(has(a, "chardev:agent"));
    assert_true(has(a, "socket,id=qmp,fd=3"));
    /* disks from the copies */
    assert_true(has(a, "driver=file,node-name=f0-rr,filename=disk-0.img"));
    assert_true(has(a, "driver=raw,node-name=d0-rr,file=f0-rr"));
    assert_true(has(a, "driver=blkreplay,node-name=d0,image=d0-rr"));
    assert_true(has(a, "driver=file,node-name=f1,filename=disk-1.img,read-only=on"));
    assert_true(find_sub(a, "nbd") == (size_t)-1);
    /* paused at start, then the extra options */
    size_t len = hv_rr_argv_len((const char *const *)a);
    assert_string_equal(a[len - 3], "-S");
    assert_string_equal(a[len - 2], "-gdb");
    assert_string_equal(a[len - 1], "tcp::1234");
    hv_rr_argv_free(a);
    /* the idle-strategy knobs reach -icount and the kernel command line */
    o.icount_extra = "sleep=off";
    o.append_extra = "idle=poll";
    a = hv_node_rr_argv(n, &o, &err);
    assert_non_null(a);
    assert_string_equal(opt_value(a, "-icount", "shift"),
                        "shift=auto,rr=replay,rrfile=replay.log,sleep=off");
    assert_non_null(strstr(opt_value(a, "-append", ""), " tsc_early_khz=1000000 idle=poll"));
    hv_rr_argv_free(a);
    o.icount_extra = o.append_extra = NULL;
    /* a replay without a copy of each disk is refused */
    o.n_disks = 1;
    a = hv_node_rr_argv(n, &o, &err);
    assert_null(a);
    assert_non_null(strstr(err->msg, "disk d1 has no saved copy"));
    fl_error_free(err);
    hv_node_destroy(n);
    fl_loop_destroy(loop);
}

static void test_argv_refused(void **state)
{
    struct hv_rr_argv_opts o = {.mode = HV_RR_RECORD, .flavor = HV_RR_QEMU72, .rrfile = "r"};
    struct fl_error *err = NULL;
    const char *smp[] = {"qemu", "-smp", "2", NULL};
    assert_null(hv_rr_argv(smp, &o, &err));
    assert_non_null(strstr(err->msg, "needs 1 vCPU"));
    assert_non_null(strstr(err->msg, "-smp 2"));
    fl_error_free(err);
    err = NULL;
    const char *kvm[] = {"qemu", "-accel", "kvm", NULL};
    assert_null(hv_rr_argv(kvm, &o, &err));
    assert_non_null(strstr(err->msg, "needs TCG"));
    fl_error_free(err);
    err = NULL;
    /* an option the builder does not know is never passed through */
    const char *unknown[] = {"qemu", "-nodefaults", "-usb", "on", NULL};
    assert_null(hv_rr_argv(unknown, &o, &err));
    assert_non_null(strstr(err->msg, "'-usb on' is unknown to the recording builder"));
    fl_error_free(err);
    err = NULL;
    const char *netdev[] = {"qemu", "-netdev", "user,id=n0", NULL};
    assert_null(hv_rr_argv(netdev, &o, &err));
    assert_non_null(strstr(err->msg, "-netdev 'user,id=n0'"));
    fl_error_free(err);
    err = NULL;
    const char *novalue[] = {"qemu", "-name", NULL};
    assert_null(hv_rr_argv(novalue, &o, &err));
    assert_non_null(strstr(err->msg, "'-name' has no value"));
    fl_error_free(err);
    err = NULL;

    /* the node API refuses the same, naming the node */
    struct fl_loop *loop = fl_loop_create(NULL, NULL);
    struct hv_node *n = make_node(loop, 2, HV_ACCEL_TCG);
    struct hv_rr_segment_opts so = {.dir = dir, .flavor = HV_RR_QEMU72};
    assert_false(hv_node_record_next(n, &so, &err));
    assert_non_null(strstr(err->msg, "node n1: cannot be recorded with 2 vCPUs"));
    fl_error_free(err);
    err = NULL;
    hv_node_destroy(n);
    n = make_node(loop, 1, HV_ACCEL_KVM);
    assert_false(hv_node_record_next(n, &so, &err));
    assert_non_null(strstr(err->msg, "node n1: cannot be recorded with KVM"));
    fl_error_free(err);
    err = NULL;
    hv_node_destroy(n);
    /* a recordable node: its argv becomes the recording one */
    n = make_node(loop, 1, HV_ACCEL_TCG);
    assert_false(hv_node_recording(n));
    assert_true(hv_node_record_next(n, &so, &err));
    assert_true(hv_node_recording(n));
    assert_non_null(opt_value((char *const *)hv_node_argv(n), "-icount", "shift=auto,rr=record"));
    uint64_t ic;
    assert_false(hv_node_record_icount(n, &ic));
    hv_node_destroy(n);
    fl_loop_destroy(loop);
}

static void test_qemu_version(void **state)
{
    struct hv_qemu_info q = {0};
    struct fl_error *err = NULL;
    assert_true(hv_qemu_version_parse(
        "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright (c) 2003-2022 "
        "Fabrice Bellard and the QEMU Project developers\n",
        &q, &err));
    assert_int_equal(q.major, 7);
    assert_int_equal(q.minor, 2);
    assert_int_equal(q.micro, 22);
    assert_string_equal(q.version, "7.2.22");
    assert_string_equal(q.package, "(Debian 1:7.2+dfsg-7+deb12u18+b3)");
    enum hv_rr_flavor f;
    assert_true(hv_rr_flavor_for(q.major, q.minor, &f, &err));
    assert_int_equal(f, HV_RR_QEMU72);
    assert_true(hv_qemu_version_parse("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-1~bpo12+1)",
                                      &q, &err));
    assert_true(hv_rr_flavor_for(q.major, q.minor, &f, &err));
    assert_int_equal(f, HV_RR_QEMU10);
    assert_string_equal(hv_rr_flavor_name(f), "qemu-10");
    /* unmeasured versions are refused */
    assert_false(hv_rr_flavor_for(8, 2, &f, &err));
    assert_non_null(strstr(err->msg, "QEMU 8.2 cannot record here"));
    fl_error_free(err);
    err = NULL;
    assert_false(hv_rr_flavor_for(7, 1, &f, &err));
    fl_error_free(err);
    err = NULL;
    assert_false(hv_qemu_version_parse("qemu-system-x86_64: command not found", &q, &err));
    assert_non_null(strstr(err->msg, "is not 'QEMU emulator version X.Y.Z'"));
    fl_error_free(err);
    hv_qemu_info_clear(&q);
}

/* ---- a recorded node against a fake QEMU ---- */

/* This binary re-executed with FL_FAKE_QEMU_RR=stuck|moving: QMP on fd 3
 * (query-replay answers a count that never moves, or one that does;
 * stop, quit), a well-behaved agent on fd 4 (hello, setup succeeds).
 * Writes "quit" to $FL_FAKE_QEMU_LOG when QMP quit arrives. */
static void send_frame(struct fl_agent_wr *w, size_t at)
{
    fl_agent_wr_finish(w, at);
    ssize_t n = write(4, w->p, w->size);
    (void)n;
    fl_agent_wr_free(w);
}

static int fake_qemu(const char *mode)
{
    const char greeting[] = "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n";
    ssize_t n = write(3, greeting, sizeof greeting - 1);
    struct fl_agent_wr w = {0};
    size_t at = fl_agent_wr_begin(&w, FL_AGENT_HELLO, 0, 7);
    fl_agent_wr_u32(&w, FL_AGENT_VERSION);
    fl_agent_wr_u32(&w, 7);
    send_frame(&w, at);
    uint64_t icount = 1000;
    char qmp[8192];
    size_t qlen = 0;
    uint8_t ag[65536];
    size_t alen = 0;
    for (;;) {
        struct pollfd p[2] = {{.fd = 3, .events = POLLIN}, {.fd = 4, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            continue;
        }
        if (p[1].revents & (POLLIN | POLLHUP)) {
            n = read(4, ag + alen, sizeof ag - alen);
            if (n <= 0) {
                return 0;
            }
            alen += (size_t)n;
            struct fl_agent_header h;
            while (alen >= FL_AGENT_HEADER_SIZE && fl_agent_header_parse(ag, &h) == 0 &&
                   alen >= FL_AGENT_HEADER_SIZE + h.len) {
                if (h.type == FL_AGENT_EXEC) { /* the setup script: success */
                    at = fl_agent_wr_begin(&w, FL_AGENT_EXEC_RESULT, h.id, 7);
                    fl_agent_wr_u32(&w, 0);
                    fl_agent_wr_u32(&w, 0);
                    fl_agent_wr_u32(&w, 0);
                    fl_agent_wr_bytes(&w, "", 0);
                    fl_agent_wr_bytes(&w, "", 0);
                    send_frame(&w, at);
                }
                size_t used = FL_AGENT_HEADER_SIZE + h.len;
                memmove(ag, ag + used, alen - used);
                alen -= used;
            }
        }
        if (p[0].revents & (POLLIN | POLLHUP)) {
            n = read(3, qmp + qlen, sizeof qmp - 1 - qlen);
            if (n <= 0) {
                return 0;
            }
            qlen += (size_t)n;
            qmp[qlen] = '\0';
            char *nl;
            while ((nl = strchr(qmp, '\n'))) {
                *nl = '\0';
                char out[256];
                if (strstr(qmp, "query-replay")) {
                    if (!strcmp(mode, "moving")) {
                        icount += 12345;
                    }
                    snprintf(out, sizeof out,
                             "{\"return\": {\"icount\": %llu, \"mode\": \"record\"}}\r\n",
                             (unsigned long long)icount);
                } else if (strstr(qmp, "\"stop\"")) {
                    snprintf(out, sizeof out, "{\"event\": \"STOP\"}\r\n{\"return\": {}}\r\n");
                } else {
                    snprintf(out, sizeof out, "{\"return\": {}}\r\n");
                }
                n = write(3, out, strlen(out));
                if (strstr(qmp, "\"quit\"")) {
                    const char *log = getenv("FL_FAKE_QEMU_LOG");
                    FILE *f = log ? fopen(log, "a") : NULL;
                    if (f) {
                        fprintf(f, "quit at %llu\n", (unsigned long long)icount);
                        fclose(f);
                    }
                    return 0;
                }
                size_t used = (size_t)(nl + 1 - qmp);
                memmove(qmp, nl + 1, qlen - used + 1);
                qlen -= used;
            }
        }
    }
}

static int rr_fails, rr_exits, rr_exit_status;
static char rr_fail_msg[512];
static bool rr_ready;

static void rr_on_fail(struct hv_node *n, const struct fl_error *err, void *arg)
{
    rr_fails++;
    snprintf(rr_fail_msg, sizeof rr_fail_msg, "%s", err->msg);
}

static void rr_on_exit(struct hv_node *n, bool unexpected, int status, void *arg)
{
    rr_exits++;
    rr_exit_status = status;
}

static void rr_on_ready(struct hv_node *n, void *arg)
{
    rr_ready = true;
}

static const struct hv_callbacks rr_cbs = {
    .on_fail = rr_on_fail, .on_exit = rr_on_exit, .on_ready = rr_on_ready};

static struct hv_node *fake_recorded(struct fl_loop *loop, const char *mode, int64_t stuck_ns)
{
    setenv("FL_FAKE_QEMU_RR", mode, 1);
    struct hv_node_config cfg = {.name = "rec",
                                 .kernel = self,
                                 .initrd = self,
                                 .run_dir = dir,
                                 .accel = HV_ACCEL_TCG,
                                 .qemu_binary = self,
                                 .ready_timeout_ns = 5 * FL_NS_PER_SEC};
    struct fl_error *err = NULL;
    struct hv_node *n = hv_node_create(loop, &cfg, &rr_cbs, NULL, &err);
    assert_non_null(n);
    struct hv_rr_segment_opts so = {.dir = dir, .flavor = HV_RR_QEMU72, .stuck_ns = stuck_ns};
    assert_true(hv_node_record_next(n, &so, &err));
    assert_true(hv_node_boot(n, &err));
    unsetenv("FL_FAKE_QEMU_RR");
    rr_fails = rr_exits = rr_exit_status = 0;
    rr_fail_msg[0] = '\0';
    rr_ready = false;
    return n;
}

static void spin(struct fl_loop *loop, int64_t ns, const bool *until)
{
    int64_t end = fl_clock_mono_ns() + ns;
    while (fl_clock_mono_ns() < end && !(until && *until)) {
        fl_loop_run_once(loop, 20);
    }
}

static void test_recorded_stuck_is_reported(void **state)
{
    struct fl_loop *loop = fl_loop_create(NULL, NULL);
    struct hv_node *n = fake_recorded(loop, "stuck", 400 * FL_NS_PER_MS);
    spin(loop, 5 * FL_NS_PER_SEC, &rr_ready);
    assert_true(rr_ready);
    spin(loop, 1500 * FL_NS_PER_MS, NULL);
    assert_int_equal(rr_fails, 1); /* once, not every sample */
    assert_non_null(strstr(rr_fail_msg, "node rec: recorded QEMU hung: its instruction count "
                                        "stayed at 1000"));
    hv_node_destroy(n);

    /* a count that moves is no hang */
    n = fake_recorded(loop, "moving", 400 * FL_NS_PER_MS);
    spin(loop, 5 * FL_NS_PER_SEC, &rr_ready);
    assert_true(rr_ready);
    spin(loop, 1500 * FL_NS_PER_MS, NULL);
    assert_int_equal(rr_fails, 0);
    hv_node_destroy(n);
    fl_loop_destroy(loop);
}

static void test_recorded_ends_with_quit(void **state)
{
    char *log = fl_xasprintf("%s/fake-qemu.log", dir);
    unlink(log);
    setenv("FL_FAKE_QEMU_LOG", log, 1);
    struct fl_loop *loop = fl_loop_create(NULL, NULL);
    /* crash of a recorded node: stop, query-replay, quit; never SIGKILL */
    struct hv_node *n = fake_recorded(loop, "moving", 0);
    spin(loop, 5 * FL_NS_PER_SEC, &rr_ready);
    assert_true(rr_ready);
    struct fl_error *err = NULL;
    assert_true(hv_node_crash(n, &err));
    int64_t end = fl_clock_mono_ns() + 5 * FL_NS_PER_SEC;
    while (!rr_exits && fl_clock_mono_ns() < end) {
        fl_loop_run_once(loop, 20);
    }
    assert_int_equal(rr_exits, 1);
    assert_true(WIFEXITED(rr_exit_status) && WEXITSTATUS(rr_exit_status) == 0);
    uint64_t ic = 0;
    assert_true(hv_node_record_icount(n, &ic));
    assert_true(ic > 1000);
    /* a used segment is not booted twice */
    assert_false(hv_node_boot(n, &err));
    assert_non_null(strstr(err->msg, "hv_node_record_next before booting again"));
    fl_error_free(err);
    err = NULL;
    /* a reset would not replay: refused while it runs */
    struct hv_rr_segment_opts so = {.dir = dir, .flavor = HV_RR_QEMU72};
    setenv("FL_FAKE_QEMU_RR", "moving", 1);
    assert_true(hv_node_record_next(n, &so, &err));
    assert_true(hv_node_boot(n, &err));
    unsetenv("FL_FAKE_QEMU_RR");
    rr_ready = false;
    spin(loop, 5 * FL_NS_PER_SEC, &rr_ready);
    assert_false(hv_node_reset(n, &err));
    assert_non_null(strstr(err->msg, "a reset cannot be replayed"));
    fl_error_free(err);
    err = NULL;
    /* the synchronous end (runner teardown) */
    rr_exits = 0;
    assert_true(hv_node_record_end(n, 5 * FL_NS_PER_SEC, &err));
    assert_int_equal(rr_exits, 1);
    assert_true(hv_node_record_icount(n, &ic));
    hv_node_destroy(n);
    fl_loop_destroy(loop);
    size_t size = 0;
    char *text = fl_read_file(log, &size, &err);
    assert_non_null(text);
    assert_non_null(strstr(text, "quit at "));
    assert_non_null(strstr(strstr(text, "quit at ") + 1, "quit at ")); /* both ends quit */
    free(text);
    unsetenv("FL_FAKE_QEMU_LOG");
    free(log);
}

/* ---- segment metadata ---- */

static void fill_segment(struct hv_rr_segment *s)
{
    memset(s, 0, sizeof *s);
    s->node = fl_xstrdup("n2");
    s->index = 3;
    s->qemu_path = fl_xstrdup("/usr/bin/qemu-system-x86_64");
    s->qemu_version = fl_xstrdup("7.2.22");
    s->qemu_package = fl_xstrdup("(Debian \"quoted\")");
    s->qemu_hash = 0xc698d856a2b292e1ull;
    s->flavor = HV_RR_QEMU72;
    s->image_key = fl_xstrdup("61c59c49d23bfa7525f9d6f99fabec6a");
    const char *rec[] = {"qemu", "-name", "n2", "-append", "a,b \\ c", NULL};
    const char *rep[] = {"qemu", "-S", NULL};
    s->record_argv = fl_xcalloc(6, sizeof(char *));
    for (size_t i = 0; rec[i]; i++) {
        s->record_argv[i] = fl_xstrdup(rec[i]);
    }
    s->replay_argv = fl_xcalloc(3, sizeof(char *));
    for (size_t i = 0; rep[i]; i++) {
        s->replay_argv[i] = fl_xstrdup(rep[i]);
    }
    s->disks = fl_xcalloc(2, sizeof *s->disks);
    s->disks[0].name = fl_xstrdup("data");
    s->disks[0].file = fl_xstrdup("disk-0.img");
    s->disks[0].size = 16u << 20;
    s->n_disks = 1;
    s->log = fl_xstrdup(HV_RR_LOG_ZST);
    s->end = HV_RR_END_QUIT;
    s->has_icount = true;
    s->icount = 460678686ull;
    s->started_unix = 1796222184;
    s->duration_ns = 29588193635ll;
}

static void test_segment_roundtrip(void **state)
{
    char *path = fl_xasprintf("%s/segment.json", dir);
    struct hv_rr_segment s, r;
    fill_segment(&s);
    struct fl_error *err = NULL;
    assert_true(hv_rr_segment_write(path, &s, &err));
    assert_true(hv_rr_segment_read(path, &r, &err));
    assert_string_equal(r.node, "n2");
    assert_int_equal(r.index, 3);
    assert_string_equal(r.qemu_package, "(Debian \"quoted\")");
    assert_true(r.qemu_hash == s.qemu_hash);
    assert_int_equal(r.flavor, HV_RR_QEMU72);
    assert_string_equal(r.image_key, s.image_key);
    assert_string_equal(r.record_argv[4], "a,b \\ c");
    assert_null(r.record_argv[5]);
    assert_string_equal(r.replay_argv[1], "-S");
    assert_int_equal(r.n_disks, 1);
    assert_string_equal(r.disks[0].file, "disk-0.img");
    assert_int_equal(r.disks[0].size, 16u << 20);
    assert_string_equal(r.log, HV_RR_LOG_ZST);
    assert_int_equal(r.end, HV_RR_END_QUIT);
    assert_true(r.has_icount);
    assert_true(r.icount == 460678686ull);
    assert_int_equal(r.started_unix, 1796222184);
    assert_true(r.duration_ns == 29588193635ll);
    hv_rr_segment_clear(&r);
    /* a segment that has not ended: no icount */
    s.end = HV_RR_END_RUNNING;
    s.has_icount = false;
    assert_true(hv_rr_segment_write(path, &s, &err));
    assert_true(hv_rr_segment_read(path, &r, &err));
    assert_int_equal(r.end, HV_RR_END_RUNNING);
    assert_false(r.has_icount);
    hv_rr_segment_clear(&r);
    hv_rr_segment_clear(&s);
    free(path);
}

/* Writes a good segment.json, applies one text substitution and expects
 * the read to fail with a message naming the file and `field`. */
static void expect_bad(const char *from, const char *to, const char *field)
{
    char *path = fl_xasprintf("%s/segment.json", dir);
    struct hv_rr_segment s, r;
    fill_segment(&s);
    struct fl_error *err = NULL;
    assert_true(hv_rr_segment_write(path, &s, &err));
    hv_rr_segment_clear(&s);
    size_t size;
    char *text = fl_read_file(path, &size, &err);
    char *at = strstr(text, from);
    if (!at) {
        fail_msg("'%s' is not in the written segment.json", from);
    }
    struct fl_buf b = {0};
    fl_buf_append(&b, text, (size_t)(at - text));
    fl_buf_puts(&b, to);
    fl_buf_puts(&b, at + strlen(from));
    assert_true(fl_write_file(path, b.data, b.size, &err));
    fl_buf_free(&b);
    free(text);
    assert_false(hv_rr_segment_read(path, &r, &err));
    if (!err || !strstr(err->msg, path) || !strstr(err->msg, field)) {
        fail_msg("for %s -> %s: error '%s' does not name '%s' and '%s'", from, to,
                 err ? err->msg : "(none)", path, field);
    }
    fl_error_free(err);
    free(path);
}

static void test_segment_bad(void **state)
{
    expect_bad("\"icount\": 460678686", "\"icount\": \"many\"", "icount");
    expect_bad("\"icount\": 460678686", "\"icount\": -5", "icount");
    expect_bad("\"format\": 1", "\"format\": 2", "format");
    expect_bad("\"end\": \"quit\"", "\"end\": \"crashed\"", "end");
    expect_bad("\"flavor\": \"qemu-7.2\"", "\"flavor\": \"qemu-8\"", "flavor");
    expect_bad("\"file\": \"disk-0.img\"", "\"file\": \"../../etc/passwd\"", "disks[0]");
    expect_bad("\"log\": \"replay.log.zst\"", "\"log\": \"/tmp/x\"", "log");
    expect_bad("\"node\": \"n2\"", "\"node\": \"n 2\"", "node");
    expect_bad("\"hash\": \"fnv64:c698d856a2b292e1\"", "\"hash\": \"sha1:00\"", "qemu.hash");
    expect_bad("\"replay_argv\": [", "\"replay_args\": [", "replay_argv");
    expect_bad("\"image_key\"", "\"image\"", "image_key");
    expect_bad("{\n  \"format\"", "[\n  \"format\"", "not valid JSON");
    /* a missing file names the file too */
    struct hv_rr_segment r;
    struct fl_error *err = NULL;
    assert_false(hv_rr_segment_read("/nonexistent/segment.json", &r, &err));
    assert_non_null(strstr(err->msg, "/nonexistent/segment.json"));
    fl_error_free(err);
}

/* ---- files ---- */

static void test_copy_sparse(void **state)
{
    char *src = fl_xasprintf("%s/src.img", dir), *dst = fl_xasprintf("%s/dst.img", dir);
    FILE *f = fopen(src, "w");
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), 8 << 20), 0);
    fseek(f, 4 << 20, SEEK_SET);
    fputs("middle", f);
    fclose(f);
    struct fl_error *err = NULL;
    unlink(dst);
    assert_true(hv_rr_copy_file(src, dst, &err));
    size_t a_size, b_size;
    char *a = fl_read_file(src, &a_size, &err), *b = fl_read_file(dst, &b_size, &err);
    assert_int_equal(a_size, 8 << 20);
    assert_int_equal(b_size, a_size);
    assert_memory_equal(a, b, a_size);
    free(a);
    free(b);
    /* the destination must not exist */
    assert_false(hv_rr_copy_file(src, dst, &err));
    assert_non_null(strstr(err->msg, dst));
    fl_error_free(err);
    unlink(src);
    unlink(dst);
    free(src);
    free(dst);
}

static int setup(void **state)
{
    unsetenv("FAULTLINE_RR_ICOUNT"); /* measurement knobs: not in these tests */
    unsetenv("FAULTLINE_RR_APPEND");
    if (!mkdtemp(dir)) {
        return -1;
    }
    chmod(dir, 0700);
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        return -1;
    }
    self[n] = '\0';
    return 0;
}

static int teardown(void **state)
{
    fl_rm_rf(dir);
    return 0;
}

int main(void)
{
    const char *fake = getenv("FL_FAKE_QEMU_RR");
    if (fake) {
        return fake_qemu(fake);
    }
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_argv_record_qemu72),
        cmocka_unit_test(test_argv_replay_qemu10),
        cmocka_unit_test(test_argv_refused),
        cmocka_unit_test(test_qemu_version),
        cmocka_unit_test(test_segment_roundtrip),
        cmocka_unit_test(test_segment_bad),
        cmocka_unit_test(test_copy_sparse),
        cmocka_unit_test(test_recorded_stuck_is_reported),
        cmocka_unit_test(test_recorded_ends_with_quit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
