/*
 * hv boot benchmark: boots 1, 4 and 8 guests at once (TCG here) and
 * reports, as JSON lines (DESIGN.md):
 *   hv.boot  time from hv_node_boot to ready, per guest and for the whole
 *            group (baseline: one guest alone, measured in the same run)
 *   hv.rss   peak RSS (VmHWM) of each QEMU process once its guest is ready
 * and a human summary last.
 *
 *   bench_hv [--sizes 1,4,8] [--memory MIB] [--cmdline EXTRA] [--smaps] [--exec CMD]
 *            [--kernel VMLINUX] [--nic]
 *
 * --smaps lists the first QEMU's mappings of >= 2 MiB RSS; --exec runs a
 * shell command in the first guest once all are ready (e.g. to read
 * /proc/meminfo there); --nic gives each guest one NIC with an address
 * (a listening socket in place of netback), as the runner's nodes have.
 *
 * Targets on a 2-core TCG machine: 8 guests all ready <= 15 s; <= 160 MiB
 * peak RSS for a 128 MiB guest.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/core.h"
#include "hv/hv.h"

#define MAX_GUESTS 16

struct guest {
    struct hv_node *node;
    int64_t ready_ns; /* time to ready, 0 until ready */
    long rss_kib;
    long pss_kib;
    int nic_fd; /* --nic: the listening socket standing in for netback */
};

static int64_t start_ns;
static struct guest guests[MAX_GUESTS];
static int n_ready;
static bool failed;
static bool show_smaps;
static const char *exec_cmd;        /* --exec: run in the first guest once ready */
static const char *kernel_override; /* --kernel: another vmlinux (experiments) */
static bool with_nic;               /* --nic: one NIC per guest, as the runner's nodes have */

/* A unix socket that QEMU's stream netdev connects to (the backlog takes
 * the connection); nothing is read or sent: the guest's RX ring is filled
 * as with netback, which is what costs memory. */
static int nic_listener(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || strlen(path) >= sizeof sa.sun_path) {
        fprintf(stderr, "bench_hv: socket %s: %s\n", path, strerror(errno));
        exit(3);
    }
    strcpy(sa.sun_path, path);
    unlink(path); /* the previous group's */
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4) < 0) {
        fprintf(stderr, "bench_hv: bind/listen %s: %s\n", path, strerror(errno));
        exit(3);
    }
    return fd;
}

static long peak_rss_kib(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    char *s = fl_read_file(path, NULL, NULL);
    const char *p = s ? strstr(s, "VmHWM:") : NULL;
    long kib = p ? atol(p + 6) : -1;
    free(s);
    return kib;
}

/* Proportional set size: shared pages (the kernel file's page cache,
 * QEMU's binary) divided among the processes mapping them. */
static long pss_kib(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
    char *s = fl_read_file(path, NULL, NULL);
    const char *p = s ? strstr(s, "\nPss:") : NULL;
    long kib = p ? atol(p + 5) : -1;
    free(s);
    return kib;
}

static void on_ready(struct hv_node *n, void *arg)
{
    struct guest *g = arg;
    if (!g->ready_ns) {
        g->ready_ns = fl_clock_mono_ns() - start_ns;
        n_ready++;
    }
}

static void on_fail(struct hv_node *n, const struct fl_error *err, void *arg)
{
    fprintf(stderr, "bench_hv: %s\n", err->msg);
    failed = true;
}

static void on_exit_cb(struct hv_node *n, bool unexpected, int status, void *arg)
{
    if (unexpected) {
        fprintf(stderr, "bench_hv: %s: QEMU exited unexpectedly\n", hv_node_name(n));
        failed = true;
    }
}

static const struct hv_callbacks cbs = {
    .on_ready = on_ready, .on_fail = on_fail, .on_exit = on_exit_cb};

/* Boots `count` guests at once; returns the time until all are ready. */
static int64_t boot_group(struct fl_loop *loop, const struct hv_image *img, const char *dir,
                          int count, unsigned mem, const char *cmdline)
{
    struct fl_error *err = NULL;
    n_ready = 0;
    failed = false;
    memset(guests, 0, sizeof guests);
    start_ns = fl_clock_mono_ns();
    for (int i = 0; i < count; i++) {
        char name[16];
        snprintf(name, sizeof name, "g%d", i);
        struct hv_node_config cfg = {.name = name,
                                     .memory_mib = mem,
                                     .kernel = kernel_override ? kernel_override : img->kernel,
                                     .initrd = img->initrd,
                                     .run_dir = dir,
                                     .extra_cmdline = cmdline,
                                     .ready_timeout_ns = 120 * FL_NS_PER_SEC};
        char *sock = fl_xasprintf("%s/%s.sock", dir, name);
        char cidr[32];
        snprintf(cidr, sizeof cidr, "10.0.0.%d/24", i + 1);
        struct hv_nic_config nic = {.socket_path = sock, .ip_cidr = cidr};
        guests[i].nic_fd = -1;
        if (with_nic) {
            guests[i].nic_fd = nic_listener(sock);
            cfg.nics = &nic;
            cfg.n_nics = 1;
        }
        guests[i].node = hv_node_create(loop, &cfg, &cbs, &guests[i], &err);
        free(sock);
        if (!guests[i].node || !hv_node_boot(guests[i].node, &err)) {
            fprintf(stderr, "bench_hv: %s\n", err->msg);
            exit(3);
        }
    }
    while (n_ready < count && !failed) {
        fl_loop_run_once(loop, 100);
        if (fl_clock_mono_ns() - start_ns > 180 * FL_NS_PER_SEC) {
            fprintf(stderr, "bench_hv: %d of %d guests ready after 180 s\n", n_ready, count);
            failed = true;
        }
    }
    int64_t all = fl_clock_mono_ns() - start_ns;
    for (int i = 0; i < count; i++) {
        pid_t pid = guests[i].node ? hv_node_pid(guests[i].node) : 0;
        guests[i].rss_kib = pid ? peak_rss_kib(pid) : -1;
        guests[i].pss_kib = pid ? pss_kib(pid) : -1;
    }
    if (exec_cmd && !failed && count > 0 && guests[0].node) {
        struct hv_exec_result r;
        if (hv_node_exec_sync(guests[0].node, exec_cmd, 30 * FL_NS_PER_SEC, &r, &err)) {
            fprintf(stderr, "exec '%s': exit %d\n%s%s", exec_cmd, r.exit_code, r.out, r.err);
            hv_exec_result_clear(&r);
        } else {
            fprintf(stderr, "bench_hv: --exec: %s\n", err->msg);
            fl_error_free(err);
            err = NULL;
        }
    }
    if (show_smaps && count > 0 && guests[0].node) {
        /* where the memory of the first guest's QEMU is (mappings >= 2 MiB) */
        char path[64], *text;
        snprintf(path, sizeof path, "/proc/%d/smaps", (int)hv_node_pid(guests[0].node));
        text = fl_read_file(path, NULL, NULL);
        char *save = NULL, *map = NULL;
        for (char *l = text ? strtok_r(text, "\n", &save) : NULL; l;
             l = strtok_r(NULL, "\n", &save)) {
            if (strchr(l, '-') && l[0] != 'R' && strchr(l, ' ') &&
                strchr(l, ' ') > strchr(l, '-')) {
                map = l;
            } else if (!strncmp(l, "Rss:", 4) && atol(l + 4) >= 2048) {
                fprintf(stderr, "smaps %6ld KiB  %s\n", atol(l + 4), map ? map : "?");
            }
        }
        free(text);
    }
    return failed ? -1 : all;
}

static void destroy_group(int count)
{
    for (int i = 0; i < count; i++) {
        hv_node_destroy(guests[i].node);
        guests[i].node = NULL;
        if (guests[i].nic_fd >= 0) {
            close(guests[i].nic_fd);
            guests[i].nic_fd = -1;
        }
    }
}

int main(int argc, char **argv)
{
    int sizes[8] = {1, 4, 8};
    int n_sizes = 3;
    unsigned mem = 128;
    const char *cmdline = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--sizes") && i + 1 < argc) {
            n_sizes = 0;
            char *save = NULL, *copy = fl_xstrdup(argv[++i]);
            for (char *t = strtok_r(copy, ",", &save); t && n_sizes < 8;
                 t = strtok_r(NULL, ",", &save)) {
                int v = atoi(t);
                if (v < 1 || v > MAX_GUESTS) {
                    fprintf(stderr, "bench_hv: --sizes: '%s' is not 1..%d\n", t, MAX_GUESTS);
                    return 2;
                }
                sizes[n_sizes++] = v;
            }
            free(copy);
        } else if (!strcmp(argv[i], "--memory") && i + 1 < argc) {
            mem = (unsigned)atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--smaps")) {
            show_smaps = true;
        } else if (!strcmp(argv[i], "--nic")) {
            with_nic = true;
        } else if (!strcmp(argv[i], "--kernel") && i + 1 < argc) {
            kernel_override = argv[++i];
        } else if (!strcmp(argv[i], "--exec") && i + 1 < argc) {
            exec_cmd = argv[++i];
        } else if (!strcmp(argv[i], "--cmdline") && i + 1 < argc) {
            cmdline = argv[++i];
        } else {
            fprintf(stderr,
                    "usage: bench_hv [--sizes 1,4,8] [--memory MIB] [--cmdline EXTRA] [--smaps] "
                    "[--exec CMD] [--kernel VMLINUX] [--nic]\n");
            return 2;
        }
    }
    struct fl_error *err = NULL;
    struct hv_image img;
    struct hv_image_spec spec = {0};
    if (!hv_image_build(&spec, &img, NULL, NULL, &err)) {
        fprintf(stderr, "bench_hv: image: %s\n", err->msg);
        return 3;
    }
    char dir[] = "/tmp/fl-hv-bench-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 3;
    }
    struct fl_loop *loop = fl_loop_create(NULL, &err);
    double baseline = 0;
    struct fl_buf summary = {0};
    int rc = 0;
    /* children's CPU so far (apt-cache during the image lookup) */
    struct rusage ru0;
    getrusage(RUSAGE_CHILDREN, &ru0);
    double cpu_before = (double)ru0.ru_utime.tv_sec + (double)ru0.ru_utime.tv_usec / 1e6 +
                        (double)ru0.ru_stime.tv_sec + (double)ru0.ru_stime.tv_usec / 1e6;
    for (int s = 0; s < n_sizes; s++) {
        int count = sizes[s];
        int64_t all = boot_group(loop, &img, dir, count, mem, cmdline);
        if (all < 0) {
            destroy_group(count);
            rc = 1;
            break;
        }
        destroy_group(count); /* reaps the QEMUs: their CPU time is now counted */
        struct rusage ru;
        getrusage(RUSAGE_CHILDREN, &ru);
        double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        double cpu_per_guest = (cpu - cpu_before) / count;
        cpu_before = cpu;
        double all_s = (double)all / 1e9;
        if (s == 0) {
            baseline = all_s;
        }
        long max_rss = 0, max_pss = 0;
        double sum = 0, worst = 0;
        for (int i = 0; i < count; i++) {
            double t = (double)guests[i].ready_ns / 1e9;
            sum += t;
            worst = t > worst ? t : worst;
            max_rss = guests[i].rss_kib > max_rss ? guests[i].rss_kib : max_rss;
            printf("{\"bench\":\"hv.boot\",\"case\":\"%d-guests/"
                   "g%d\",\"value\":%.3f,\"unit\":\"s\"}\n",
                   count, i, t);
            printf(
                "{\"bench\":\"hv.rss\",\"case\":\"%d-guests/g%d\",\"value\":%.1f,\"unit\":\"MiB\","
                "\"memory_mib\":%u,\"target\":160}\n",
                count, i, (double)guests[i].rss_kib / 1024.0, mem);
            printf("{\"bench\":\"hv.pss\",\"case\":\"%d-guests/g%d\",\"value\":%.1f,\"unit\":"
                   "\"MiB\",\"memory_mib\":%u}\n",
                   count, i, (double)guests[i].pss_kib / 1024.0, mem);
            max_pss = guests[i].pss_kib > max_pss ? guests[i].pss_kib : max_pss;
        }
        printf(
            "{\"bench\":\"hv.boot\",\"case\":\"%d-guests/all-ready\",\"value\":%.3f,\"unit\":\"s\","
            "\"baseline\":\"1-guest\",\"baseline_value\":%.3f,\"ratio\":%.2f%s}\n",
            count, all_s, baseline, all_s / baseline, count == 8 ? ",\"target\":15" : "");
        printf("{\"bench\":\"hv.cpu\",\"case\":\"%d-guests/per-guest\",\"value\":%.2f,"
               "\"unit\":\"cpu-s\"}\n",
               count, cpu_per_guest);
        fl_buf_printf(&summary,
                      "  %d guest%s: all ready in %5.2f s (mean %.2f s, slowest %.2f s), peak RSS "
                      "max %.1f MiB, PSS max %.1f MiB, %.2f CPU-s per guest\n",
                      count, count == 1 ? " " : "s", all_s, sum / count, worst,
                      (double)max_rss / 1024.0, (double)max_pss / 1024.0, cpu_per_guest);
    }
    printf("hv boot benchmark (%s, %u MiB guests, %ld CPUs):\n%s", "TCG unless KVM is usable", mem,
           sysconf(_SC_NPROCESSORS_ONLN), summary.data ? summary.data : "");
    fl_buf_free(&summary);
    fl_loop_destroy(loop);
    fl_rm_rf(dir);
    hv_image_clear(&img);
    return rc;
}
