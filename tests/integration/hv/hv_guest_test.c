/*
 * Integration tests for hv/ with real TCG guests.
 *
 *   hv_guest_test image|boot|exec|pause|crash|clock|sigkill|reboot|packages|nbd|arp
 *
 * Each case builds (or finds: the hv_image fixture built it) the default
 * image, boots what it needs in a private 0700 run directory, checks, and
 * removes everything it created.  Exit 0 pass, 1 fail, 77 skip.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "hv/hv.h"

#define READY_TIMEOUT (90 * FL_NS_PER_SEC)

static char run_dir[256];
static struct hv_image img;
static struct fl_loop *loop;
static int exits, unexpected_exits, readies;

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

static struct hv_node *nodes[4];
static int listen_fd = -1;

static void cleanup(void)
{
    if (listen_fd >= 0) {
        close(listen_fd);
        listen_fd = -1;
    }
    for (size_t i = 0; i < FL_ARRAY_LEN(nodes); i++) {
        hv_node_destroy(nodes[i]);
        nodes[i] = NULL;
    }
    if (run_dir[0]) {
        char *log = fl_xasprintf("%s/n1.console.log", run_dir);
        if (getenv("HV_TEST_SHOW_CONSOLE")) {
            char *text = fl_read_file(log, NULL, NULL);
            fprintf(stderr, "---- console ----\n%s\n", text ? text : "(none)");
            free(text);
        }
        free(log);
        fl_rm_rf(run_dir);
        run_dir[0] = '\0';
    }
    hv_image_clear(&img);
    fl_loop_destroy(loop);
    loop = NULL;
}

static void on_ready(struct hv_node *n, void *arg)
{
    readies++;
}

static void on_exit_cb(struct hv_node *n, bool unexpected, int status, void *arg)
{
    exits++;
    unexpected_exits += unexpected;
}

static void on_fail(struct hv_node *n, const struct fl_error *err, void *arg)
{
    fprintf(stderr, "hv_guest_test: node failure: %s\n", err->msg);
}

static const struct hv_callbacks cbs = {
    .on_ready = on_ready, .on_exit = on_exit_cb, .on_fail = on_fail};

static void setup(void)
{
    if (access("/usr/bin/qemu-system-x86_64", X_OK) != 0 && !getenv("FAULTLINE_QEMU")) {
        fprintf(stderr, "SKIP: qemu-system-x86_64 is not installed (deps/hv.txt)\n");
        exit(77);
    }
    struct fl_error *err = NULL;
    struct hv_image_spec spec = {0};
    if (!hv_image_build(&spec, &img, NULL, NULL, &err)) {
        fprintf(stderr, "FAIL: image build: %s\n", err->msg);
        exit(1);
    }
    snprintf(run_dir, sizeof run_dir, "/tmp/fl-hv-test-XXXXXX");
    if (!mkdtemp(run_dir)) {
        perror("mkdtemp");
        exit(1);
    }
    loop = fl_loop_create(NULL, &err);
    CHECK(loop, "%s", err->msg);
}

static struct hv_node *boot_node(size_t idx, const char *name, const struct hv_disk_config *disks,
                                 size_t n_disks)
{
    struct fl_error *err = NULL;
    struct hv_host_entry hosts[] = {{"n1", "10.0.0.1", NULL}, {"n2", "10.0.0.2", NULL}};
    const char *env[] = {"FL_TEST=hello world"};
    struct hv_node_config cfg = {
        .name = name,
        .memory_mib = 128,
        .kernel = img.kernel,
        .initrd = img.initrd,
        .run_dir = run_dir,
        .disks = disks,
        .n_disks = n_disks,
        .hosts = hosts,
        .n_hosts = 2,
        .env = env,
        .n_env = 1,
        .ready_timeout_ns = READY_TIMEOUT,
    };
    struct hv_node *n = hv_node_create(loop, &cfg, &cbs, NULL, &err);
    CHECK(n, "%s", err->msg);
    nodes[idx] = n;
    CHECK(hv_node_boot(n, &err), "%s", err->msg);
    CHECK(hv_node_wait_state(n, HV_NODE_READY, READY_TIMEOUT, &err), "%s", err->msg);
    return n;
}

static struct hv_exec_result run(struct hv_node *n, const char *cmd)
{
    struct hv_exec_result res;
    struct fl_error *err = NULL;
    CHECK(hv_node_exec_sync(n, cmd, 30 * FL_NS_PER_SEC, &res, &err), "'%s': %s", cmd, err->msg);
    return res;
}

static bool pid_alive(pid_t pid)
{
    return kill(pid, 0) == 0 || errno == EPERM;
}

/* ---- cases ---- */

static int t_boot(void)
{
    struct hv_node *n = boot_node(0, "n1", NULL, 0);
    CHECK(readies == 1, "on_ready called %d times", readies);
    fprintf(stderr, "boot to ready: %.2f s\n", (double)hv_node_boot_ns(n) / 1e9);
    struct hv_exec_result r = run(n, "hostname; grep n2 /etc/hosts");
    CHECK(r.exit_code == 0 && !strcmp(r.out, "n1\n10.0.0.2 n2\n"), "got '%s'", r.out);
    hv_exec_result_clear(&r);
    /* graceful poweroff: an expected exit */
    struct fl_error *err = NULL;
    CHECK(hv_node_poweroff(n, 0, &err), "%s", err->msg);
    CHECK(hv_node_wait_state(n, HV_NODE_OFF, 20 * FL_NS_PER_SEC, &err), "%s", err->msg);
    CHECK(exits == 1 && unexpected_exits == 0, "exits %d unexpected %d", exits, unexpected_exits);
    /* nothing left in the run directory but the console log */
    hv_node_destroy(n);
    nodes[0] = NULL;
    struct dirent **list;
    int count = scandir(run_dir, &list, NULL, alphasort);
    CHECK(count == 3 && !strcmp(list[2]->d_name, "n1.console.log"), "%d entries in %s", count,
          run_dir);
    for (int i = 0; i < count; i++) {
        free(list[i]);
    }
    free(list);
    return 0;
}

static int t_exec(void)
{
    struct hv_node *n = boot_node(0, "n1", NULL, 0);
    struct hv_exec_result r = run(n, "echo out; echo err >&2; exit 3");
    CHECK(r.exit_code == 3 && r.signal == 0, "exit %d signal %d", r.exit_code, r.signal);
    CHECK(!strcmp(r.out, "out\n") && !strcmp(r.err, "err\n"), "out '%s' err '%s'", r.out, r.err);
    hv_exec_result_clear(&r);
    r = run(n, "echo \"$FL_TEST\"");
    CHECK(!strcmp(r.out, "hello world\n"), "env: '%s'", r.out);
    hv_exec_result_clear(&r);
    r = run(n, "kill -9 $$");
    CHECK(r.exit_code == -1 && r.signal == 9, "exit %d signal %d", r.exit_code, r.signal);
    hv_exec_result_clear(&r);
    /* binary output and a big one: 300 KiB of zeros */
    r = run(n, "head -c 307200 /dev/zero");
    CHECK(r.out_size == 307200 && !r.out_truncated, "size %zu", r.out_size);
    hv_exec_result_clear(&r);
    /* a command killed at its timeout */
    struct fl_error *err = NULL;
    CHECK(hv_node_exec_sync(n, "sleep 30", FL_NS_PER_SEC, &r, &err), "%s", err->msg);
    CHECK(r.timed_out && r.signal == 9, "timed_out %d signal %d", r.timed_out, r.signal);
    hv_exec_result_clear(&r);
    /* several at once */
    r = run(n, "for i in 1 2 3; do (sleep 0.2; echo $i) & done; wait");
    CHECK(strlen(r.out) == 6, "concurrent: '%s'", r.out);
    hv_exec_result_clear(&r);
    return 0;
}

struct ping_state {
    bool done;
    int code;
};

static void ping_cb(struct hv_node *n, const struct fl_error *err, void *arg)
{
    struct ping_state *p = arg;
    p->done = true;
    p->code = err ? err->code : 0;
}

static int ping(struct hv_node *n, int64_t timeout)
{
    struct ping_state p = {0};
    struct fl_error *err = NULL;
    CHECK(hv_node_ping(n, timeout, ping_cb, &p, &err), "%s", err->msg);
    while (!p.done) {
        fl_loop_run_once(loop, 100);
    }
    return p.code;
}

static int t_pause(void)
{
    struct hv_node *n = boot_node(0, "n1", NULL, 0);
    CHECK(ping(n, 5 * FL_NS_PER_SEC) == 0, "ping before pause");
    struct fl_error *err = NULL;
    CHECK(hv_node_pause(n, &err), "%s", err->msg);
    CHECK(hv_node_wait_state(n, HV_NODE_PAUSED, 10 * FL_NS_PER_SEC, &err), "%s", err->msg);
    int code = ping(n, 2 * FL_NS_PER_SEC);
    CHECK(code == ETIMEDOUT, "ping while paused: %d", code);
    struct hv_exec_result r;
    CHECK(!hv_node_exec_sync(n, "true", FL_NS_PER_SEC, &r, &err) && err->code == ETIMEDOUT,
          "exec while paused did not time out");
    fl_error_free(err);
    err = NULL;
    CHECK(hv_node_resume(n, &err), "%s", err->msg);
    CHECK(hv_node_wait_state(n, HV_NODE_READY, 10 * FL_NS_PER_SEC, &err), "%s", err->msg);
    CHECK(ping(n, 5 * FL_NS_PER_SEC) == 0, "ping after resume");
    r = run(n, "echo back");
    CHECK(!strcmp(r.out, "back\n"), "after resume: '%s'", r.out);
    hv_exec_result_clear(&r);
    CHECK(unexpected_exits == 0, "unexpected exit");
    return 0;
}

static int t_crash(void)
{
    /* A raw file disk QEMU opens itself (blkback is tested elsewhere). */
    char *disk = fl_xasprintf("%s/disk.img", run_dir);
    FILE *f = fopen(disk, "w");
    CHECK(f && ftruncate(fileno(f), 64 << 20) == 0, "cannot create %s", disk);
    fclose(f);
    struct hv_disk_config d = {
        .kind = HV_DISK_FILE, .path = disk, .mount_point = "/data", .format_if_blank = true};
    struct hv_node *n = boot_node(0, "n1", &d, 1);
    struct hv_exec_result r = run(n, "echo durable >/data/a && sync && cat /data/a");
    CHECK(r.exit_code == 0 && !strcmp(r.out, "durable\n"), "write: '%s' '%s'", r.out, r.err);
    hv_exec_result_clear(&r);
    pid_t old = hv_node_pid(n);
    struct fl_error *err = NULL;
    CHECK(hv_node_crash(n, &err), "%s", err->msg);
    CHECK(hv_node_wait_state(n, HV_NODE_OFF, 10 * FL_NS_PER_SEC, &err), "%s", err->msg);
    CHECK(!pid_alive(old), "QEMU %d still alive after crash", (int)old);
    CHECK(exits == 1 && unexpected_exits == 0, "crash exit counted as unexpected");
    CHECK(hv_node_boot(n, &err), "restart: %s", err->msg);
    CHECK(hv_node_wait_state(n, HV_NODE_READY, READY_TIMEOUT, &err), "%s", err->msg);
    r = run(n, "cat /data/a");
    CHECK(r.exit_code == 0 && !strcmp(r.out, "durable\n"), "after restart: '%s' '%s'", r.out,
          r.err);
    hv_exec_result_clear(&r);
    /* A QEMU that dies on its own is reported as unexpected. */
    kill(hv_node_pid(n), SIGKILL);
    CHECK(hv_node_wait_state(n, HV_NODE_OFF, 10 * FL_NS_PER_SEC, &err), "%s", err->msg);
    CHECK(unexpected_exits == 1, "external kill not reported as unexpected");
    free(disk);
    return 0;
}

/* The same over NBD: qemu-nbd serves the file on a unix socket in the run
 * directory (blkback does this in a run; this checks hv's side). */
static int t_nbd(void)
{
    if (access("/usr/bin/qemu-nbd", X_OK) != 0) {
        fprintf(stderr, "SKIP: qemu-nbd is not installed (qemu-utils, deps/hv.txt)\n");
        return 77;
    }
    char *disk = fl_xasprintf("%s/nbd.img", run_dir);
    char *sock = fl_xasprintf("%s/d0.nbd", run_dir);
    FILE *f = fopen(disk, "w");
    CHECK(f && ftruncate(fileno(f), 64 << 20) == 0, "cannot create %s", disk);
    fclose(f);
    pid_t nbd = fork();
    CHECK(nbd >= 0, "fork");
    if (nbd == 0) {
        execlp("qemu-nbd", "qemu-nbd", "--persistent", "--format=raw", "--export-name=d0",
               "--socket", sock, disk, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100 && access(sock, F_OK) != 0; i++) {
        usleep(20000);
    }
    CHECK(access(sock, F_OK) == 0, "qemu-nbd did not create %s", sock);
    struct hv_disk_config d = {.kind = HV_DISK_NBD,
                               .path = sock,
                               .export_name = "d0",
                               .mount_point = "/data",
                               .format_if_blank = true};
    struct hv_node *n = boot_node(0, "n1", &d, 1);
    struct hv_exec_result r = run(n, "echo over-nbd >/data/f && sync && ls -l /dev/disk/fl-d0");
    CHECK(r.exit_code == 0, "write: '%s' '%s'", r.out, r.err);
    hv_exec_result_clear(&r);
    struct fl_error *err = NULL;
    CHECK(hv_node_crash(n, &err), "%s", err->msg);
    CHECK(hv_node_wait_state(n, HV_NODE_OFF, 10 * FL_NS_PER_SEC, &err), "%s", err->msg);
    CHECK(hv_node_boot(n, &err), "restart: %s", err->msg);
    CHECK(hv_node_wait_state(n, HV_NODE_READY, READY_TIMEOUT, &err), "%s", err->msg);
    r = run(n, "cat /data/f");
    CHECK(!strcmp(r.out, "over-nbd\n"), "after restart: '%s' '%s'", r.out, r.err);
    hv_exec_result_clear(&r);
    hv_node_destroy(n);
    nodes[0] = NULL;
    kill(nbd, SIGTERM);
    waitpid(nbd, NULL, 0);
    free(disk);
    free(sock);
    return 0;
}

static void clock_cb(struct hv_node *n, const struct fl_error *err, void *arg)
{
    *(int *)arg = err ? err->code : 0;
}

static int t_clock(void)
{
    struct hv_node *n = boot_node(0, "n1", NULL, 0);
    int rc = -1;
    struct fl_error *err = NULL;
    /* jump one hour ahead */
    CHECK(hv_node_clock_set(n, HV_CLOCK_JUMP, 3600 * FL_NS_PER_SEC, clock_cb, &rc, &err), "%s",
          err->msg);
    while (rc < 0) {
        fl_loop_run_once(loop, 100);
    }
    CHECK(rc == 0, "clock jump failed: %d", rc);
    struct hv_exec_result r = run(n, "date +%s");
    long long guest = atoll(r.out), host = (long long)time(NULL);
    CHECK(guest - host > 3590 && guest - host < 3610, "guest %lld host %lld", guest, host);
    hv_exec_result_clear(&r);
    /* set an absolute date */
    rc = -1;
    CHECK(
        hv_node_clock_set(n, HV_CLOCK_SET, INT64_C(946684800) * FL_NS_PER_SEC, clock_cb, &rc, &err),
        "%s", err->msg);
    while (rc < 0) {
        fl_loop_run_once(loop, 100);
    }
    r = run(n, "date -u +%Y-%m-%d");
    CHECK(!strcmp(r.out, "2000-01-01\n"), "date after set: '%s'", r.out);
    hv_exec_result_clear(&r);
    return 0;
}

/* A listening unix socket standing in for netback: QEMU's stream netdev
 * connects (the backlog takes it); nothing is ever read or sent. */
static char *nic_listener(const char *name)
{
    char *path = fl_xasprintf("%s/%s", run_dir, name);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    CHECK(strlen(path) < sizeof sa.sun_path, "socket path too long: %s", path);
    strcpy(sa.sun_path, path);
    listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(listen_fd >= 0, "socket: %s", strerror(errno));
    CHECK(bind(listen_fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(listen_fd, 8) == 0,
          "bind/listen %s: %s", path, strerror(errno));
    return path;
}

/* /proc/net/arp holds exactly the expected permanent entry (flags 0x6 =
 * ATF_COM|ATF_PERM), before the guest sent any IPv4 traffic: not the
 * node's own address, not the address outside its subnet. */
static void check_arp(struct hv_node *n, const char *when)
{
    struct hv_exec_result r = run(n, "tail -n +2 /proc/net/arp");
    char ip[32], hw[32], flags[16], mac[32], mask[16], dev[16];
    int fields = sscanf(r.out, "%31s %31s %15s %31s %15s %15s", ip, hw, flags, mac, mask, dev);
    CHECK(fields == 6 && !strcmp(ip, "10.0.0.2") && !strcmp(flags, "0x6") &&
              !strcmp(mac, "52:54:00:00:00:02") && !strcmp(dev, "eth0"),
          "%s: /proc/net/arp: '%s'", when, r.out);
    CHECK(!strchr(r.out, '\n') || strchr(r.out, '\n')[1] == '\0',
          "%s: more than one neighbor entry: '%s'", when, r.out);
    hv_exec_result_clear(&r);
    r = run(n, "ip neigh show 10.0.0.2");
    CHECK(strstr(r.out, "PERMANENT"), "%s: ip neigh: '%s'", when, r.out);
    hv_exec_result_clear(&r);
}

static int t_arp(void)
{
    struct fl_error *err = NULL;
    char *sock = nic_listener("n1-eth0.sock");
    struct hv_nic_config nic = {
        .socket_path = sock, .mac = "52:54:00:00:00:01", .ip_cidr = "10.0.0.1/24"};
    struct hv_host_entry hosts[] = {{"n1", "10.0.0.1", "52:54:00:00:00:01"},
                                    {"n2", "10.0.0.2", "52:54:00:00:00:02"},
                                    {"n3", "10.9.0.3", "52:54:00:00:00:03"}};
    struct hv_node_config cfg = {
        .name = "n1",
        .memory_mib = 128,
        .kernel = img.kernel,
        .initrd = img.initrd,
        .run_dir = run_dir,
        .nics = &nic,
        .n_nics = 1,
        .hosts = hosts,
        .n_hosts = 3,
        .ready_timeout_ns = READY_TIMEOUT,
    };
    struct hv_node *n = hv_node_create(loop, &cfg, &cbs, NULL, &err);
    free(sock);
    CHECK(n, "%s", err->msg);
    nodes[0] = n;
    CHECK(hv_node_boot(n, &err), "%s", err->msg);
    CHECK(hv_node_wait_state(n, HV_NODE_READY, READY_TIMEOUT, &err), "%s", err->msg);
    check_arp(n, "boot");
    /* reset: the setup script runs again on a fresh kernel */
    CHECK(hv_node_reset(n, &err), "%s", err->msg);
    CHECK(hv_node_wait_state(n, HV_NODE_BOOTING, 10 * FL_NS_PER_SEC, &err), "%s", err->msg);
    CHECK(hv_node_wait_state(n, HV_NODE_READY, READY_TIMEOUT, &err), "%s", err->msg);
    check_arp(n, "reset");
    /* crash and restart: a new QEMU */
    CHECK(hv_node_crash(n, &err), "%s", err->msg);
    CHECK(hv_node_wait_state(n, HV_NODE_OFF, 20 * FL_NS_PER_SEC, &err), "%s", err->msg);
    CHECK(hv_node_boot(n, &err), "%s", err->msg);
    CHECK(hv_node_wait_state(n, HV_NODE_READY, READY_TIMEOUT, &err), "%s", err->msg);
    check_arp(n, "restart");
    return 0;
}

static int t_reboot(void)
{
    struct hv_node *n = boot_node(0, "n1", NULL, 0);
    struct fl_error *err = NULL;
    CHECK(hv_node_reset(n, &err), "%s", err->msg);
    CHECK(hv_node_wait_state(n, HV_NODE_BOOTING, 10 * FL_NS_PER_SEC, &err), "%s", err->msg);
    CHECK(hv_node_wait_state(n, HV_NODE_READY, READY_TIMEOUT, &err), "%s", err->msg);
    CHECK(readies == 2, "on_ready after reset: %d", readies);
    struct hv_exec_result r = run(n, "cat /proc/uptime");
    CHECK(atof(r.out) < 30.0, "uptime after reset: %s", r.out);
    hv_exec_result_clear(&r);
    return 0;
}

/* The controller (a child process here) boots a guest and is SIGKILLed:
 * its QEMU must die too (PR_SET_PDEATHSIG). */
static int t_sigkill(void)
{
    int pfd[2];
    CHECK(pipe(pfd) == 0, "pipe");
    pid_t ctl = fork();
    CHECK(ctl >= 0, "fork");
    if (ctl == 0) {
        close(pfd[0]);
        struct fl_error *err = NULL;
        struct hv_node_config cfg = {
            .name = "n1", .kernel = img.kernel, .initrd = img.initrd, .run_dir = run_dir};
        struct hv_node *n = hv_node_create(loop, &cfg, NULL, NULL, &err);
        if (!n || !hv_node_boot(n, &err)) {
            _exit(2);
        }
        pid_t q = hv_node_pid(n);
        ssize_t w = write(pfd[1], &q, sizeof q);
        (void)w;
        for (;;) {
            fl_loop_run_once(loop, 1000);
        }
    }
    close(pfd[1]);
    pid_t qemu = 0;
    CHECK(read(pfd[0], &qemu, sizeof qemu) == sizeof qemu && qemu > 0, "no QEMU pid");
    close(pfd[0]);
    usleep(500000);
    CHECK(pid_alive(qemu), "QEMU %d not running", (int)qemu);
    kill(ctl, SIGKILL);
    waitpid(ctl, NULL, 0);
    /* QEMU was reparented; it must be gone within a second or so. */
    bool gone = false;
    for (int i = 0; i < 50 && !gone; i++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)qemu);
        char *stat = fl_read_file(path, NULL, NULL);
        /* gone, or a zombie waiting for init to reap it */
        gone = !stat || strstr(stat, ") Z ");
        free(stat);
        if (!gone) {
            usleep(100000);
        }
    }
    if (!gone) {
        kill(qemu, SIGKILL);
    }
    CHECK(gone, "QEMU %d survived its controller", (int)qemu);
    return 0;
}

/* Extra Debian packages run in the guest (their libraries resolved). */
static int t_packages(void)
{
    struct fl_error *err = NULL;
    static const char *const pkgs[] = {"iperf3", "redis-server"};
    char *src = fl_xasprintf("%s/local.txt", run_dir);
    CHECK(fl_write_file(src, "local file\n", 11, &err), "%s", err->msg);
    struct hv_image_file files[] = {{src, "/opt/fl/local.txt"}};
    struct hv_image_spec spec = {.packages = pkgs, .n_packages = 2, .files = files, .n_files = 1};
    hv_image_clear(&img);
    CHECK(hv_image_build(&spec, &img, NULL, NULL, &err), "%s", err->msg);
    struct hv_image again;
    CHECK(hv_image_build(&spec, &again, NULL, NULL, &err), "%s", err->msg);
    CHECK(again.cache_hit && !strcmp(again.key, img.key), "second build was not a cache hit");
    hv_image_clear(&again);
    struct hv_node *n = boot_node(0, "n1", NULL, 0);
    struct hv_exec_result r = run(n, "iperf3 --version | head -1; redis-server --version; "
                                     "cat /opt/fl/local.txt");
    CHECK(r.exit_code == 0 && strstr(r.out, "iperf 3") && strstr(r.out, "Redis server v=") &&
              strstr(r.out, "local file"),
          "out '%s' err '%s'", r.out, r.err);
    hv_exec_result_clear(&r);
    /* a real exchange: iperf3 over loopback for a second */
    r = run(n, "iperf3 -s -1 -D && sleep 0.5 && iperf3 -c 127.0.0.1 -t 1 | tail -3");
    CHECK(r.exit_code == 0 && strstr(r.out, "receiver"), "iperf3: '%s' '%s'", r.out, r.err);
    hv_exec_result_clear(&r);
    free(src);
    return 0;
}

/* The ctest fixture: build (or find) the default image once. */
static int t_image(void)
{
    printf("kernel %s\ninitrd %s\n%s\n", img.kernel, img.initrd,
           img.cache_hit ? "cache hit" : "built");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: hv_guest_test "
                        "image|boot|exec|pause|crash|clock|reboot|sigkill|packages|nbd|arp\n");
        return 2;
    }
    static const struct {
        const char *name;
        int (*fn)(void);
    } cases[] = {{"boot", t_boot},       {"exec", t_exec},   {"pause", t_pause},
                 {"crash", t_crash},     {"clock", t_clock}, {"reboot", t_reboot},
                 {"sigkill", t_sigkill}, {"image", t_image}, {"packages", t_packages},
                 {"nbd", t_nbd},         {"arp", t_arp}};
    for (size_t i = 0; i < FL_ARRAY_LEN(cases); i++) {
        if (!strcmp(argv[1], cases[i].name)) {
            setup();
            int rc = cases[i].fn();
            cleanup();
            if (rc == 0) {
                printf("PASS %s\n", argv[1]);
            }
            return rc;
        }
    }
    fprintf(stderr, "hv_guest_test: unknown case '%s'\n", argv[1]);
    return 2;
}
