/*
 * Integration: two real TCG guests (hv/) on one netback switch.
 *   - ping works;
 *   - 100% loss n1->n2 stops it, clearing restores it;
 *   - a one-way partition n2->n1 stops it, healing restores it;
 *   - a 20 ms delay n1->n2 shows up in the RTT;
 *   - `tshark -r` reads both pcaps and finds the ICMP echoes.
 * Exit 77 (skipped) only when the guest image cannot be built here (no
 * Debian archive reachable and nothing cached), saying so.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "hv/hv.h"
#include "impair/impair.h"
#include "netback/netback.h"

#define BOOT_TIMEOUT (120 * FL_NS_PER_SEC)
#define EXEC_TIMEOUT (60 * FL_NS_PER_SEC)

static char dir[64];
static struct fl_loop *loop;
static struct netback *nb;
static struct hv_node *nodes[2];
static int failures;

static void cleanup(void)
{
    for (int i = 0; i < 2; i++) {
        hv_node_destroy(nodes[i]); /* kills QEMU by PID if it runs */
        nodes[i] = NULL;
    }
    nb_destroy(nb);
    nb = NULL;
    fl_loop_destroy(loop);
    loop = NULL;
    if (dir[0] && !getenv("FL_KEEP")) {
        fl_rm_rf(dir);
    }
}

static void die(const char *what, struct fl_error *err)
{
    fprintf(stderr, "test_net_guests: FAIL: %s: %s\n", what, err ? err->msg : "");
    fl_error_free(err);
    cleanup();
    exit(1);
}

static void check(bool ok, const char *fmt, ...) FL_PRINTF(2, 3);
static void check(bool ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "test_net_guests: %s: ", ok ? "ok" : "FAIL");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    if (!ok) {
        failures++;
    }
}

/* Runs a shell command on node i; returns its exit code (stdout in *out
 * if non-NULL, caller frees). */
static int run(int i, const char *cmd, char **out)
{
    struct hv_exec_result res;
    struct fl_error *err = NULL;
    if (!hv_node_exec_sync(nodes[i], cmd, EXEC_TIMEOUT, &res, &err)) {
        die(cmd, err);
    }
    int code = res.exit_code;
    if (out) {
        *out = fl_xstrdup(res.out);
    }
    hv_exec_result_clear(&res);
    return code;
}

static void set_link(const char *src, const char *dst, const char *words)
{
    struct impair_link_params p;
    struct fl_error *err = NULL;
    if (!impair_link_params_parse_string(words, NULL, &p, &err) ||
        !nb_link_set(nb, "lan", src, dst, &p, &err)) {
        die(words, err);
    }
    impair_link_params_clear(&p);
}

/* busybox ping: "round-trip min/avg/max = 20.8/21.3/22.0 ms" */
static bool rtt_min_ms(const char *out, double *min)
{
    const char *p = strstr(out, "min/avg/max = ");
    return p && sscanf(p + strlen("min/avg/max = "), "%lf", min) == 1;
}

static int tshark_count(const char *pcap, const char *filter)
{
    char *cmd = fl_xasprintf("tshark -r '%s' -Y '%s' 2>&1", pcap, filter);
    FILE *f = popen(cmd, "r");
    free(cmd);
    if (!f) {
        return -1;
    }
    int lines = 0;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        lines++;
    }
    int st = pclose(f);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? lines : -1;
}

int main(void)
{
    if (system("command -v tshark >/dev/null 2>&1") != 0) {
        fprintf(stderr, "test_net_guests: tshark is not installed (deps/netback.txt lists it; "
                        "run scripts/install-deps)\n");
        return 1;
    }
    struct fl_error *err = NULL;
    struct hv_image img = {0};
    struct hv_image_spec spec = {0};
    if (!hv_image_build(&spec, &img, NULL, NULL, &err)) {
        fprintf(stderr,
                "test_net_guests: SKIP: no guest image: hv_image_build failed (%s); the image "
                "needs the Debian archive once, then works offline\n",
                err->msg);
        fl_error_free(err);
        return 77;
    }
    snprintf(dir, sizeof dir, "/tmp/nb-guests-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    chmod(dir, 0700);
    char *pcaps = fl_xasprintf("%s/pcap", dir);
    loop = fl_loop_create(NULL, &err);
    struct nb_config cfg = {.seed = 5, .pcap_dir = pcaps};
    nb = nb_create(loop, &cfg, &err);
    if (!nb || !nb_network_add(nb, "lan", &err)) {
        die("netback", err);
    }
    const char *names[2] = {"n1", "n2"};
    const char *ips[2] = {"10.0.0.1", "10.0.0.2"};
    const char *cidrs[2] = {"10.0.0.1/24", "10.0.0.2/24"};
    const char *macs[2] = {"52:54:00:00:00:01", "52:54:00:00:00:02"};
    const uint8_t macb[2][6] = {{0x52, 0x54, 0, 0, 0, 1}, {0x52, 0x54, 0, 0, 0, 2}};
    struct hv_host_entry hosts[2] = {{.name = names[0], .ip = ips[0]},
                                     {.name = names[1], .ip = ips[1]}};
    char *socks[2];
    for (int i = 0; i < 2; i++) {
        socks[i] = fl_xasprintf("%s/%s.sock", dir, names[i]);
        if (!nb_port_add(nb, "lan", names[i], "eth0", macb[i], socks[i], &err)) {
            die("nb_port_add", err);
        }
    }
    for (int i = 0; i < 2; i++) {
        struct hv_nic_config nic = {.socket_path = socks[i], .mac = macs[i], .ip_cidr = cidrs[i]};
        struct hv_node_config nc = {
            .name = names[i],
            .kernel = img.kernel,
            .initrd = img.initrd,
            .run_dir = dir,
            .accel = HV_ACCEL_AUTO,
            .nics = &nic,
            .n_nics = 1,
            .hosts = hosts,
            .n_hosts = 2,
            .ready_timeout_ns = BOOT_TIMEOUT,
        };
        nodes[i] = hv_node_create(loop, &nc, NULL, NULL, &err);
        if (!nodes[i] || !hv_node_boot(nodes[i], &err)) {
            die("boot", err);
        }
    }
    for (int i = 0; i < 2; i++) {
        if (!hv_node_wait_state(nodes[i], HV_NODE_READY, BOOT_TIMEOUT, &err)) {
            die("wait ready", err);
        }
    }
    check(nb_port_connected(nb_port_find(nb, "n1", "eth0")) &&
              nb_port_connected(nb_port_find(nb, "n2", "eth0")),
          "both guests' QEMU connected to netback");

    const char *ping = "ping -c 3 -W 2 10.0.0.2";
    check(run(0, ping, NULL) == 0, "ping n1 -> n2 works");

    set_link("n1", "n2", "loss 100%");
    check(run(0, "ping -c 3 -W 1 10.0.0.2", NULL) != 0, "100%% loss n1->n2 stops ping");
    struct nb_link_stats st;
    nb_link_stats(nb, "lan", "n1", "n2", &st);
    check(st.dropped[NB_DROP_LOSS] >= 3, "loss counted on n1->n2 (%llu)",
          (unsigned long long)st.dropped[NB_DROP_LOSS]);
    if (!nb_link_clear(nb, "lan", "n1", "n2", &err)) {
        die("clear", err);
    }
    check(run(0, ping, NULL) == 0, "clearing the loss restores ping");

    if (!nb_partition(nb, "n2", "n1", true, &err)) {
        die("partition", err);
    }
    check(run(0, "ping -c 3 -W 1 10.0.0.2", NULL) != 0,
          "one-way partition n2->n1 stops ping (replies lost)");
    nb_link_stats(nb, "lan", "n2", "n1", &st);
    check(st.dropped[NB_DROP_PARTITION] >= 3 && st.cut, "partition drops counted on n2->n1");
    nb_heal_all(nb);
    check(run(0, ping, NULL) == 0, "heal restores ping");

    char *out = NULL;
    double base = -1, delayed = -1;
    run(0, "ping -c 5 -i 0.2 -W 2 10.0.0.2", &out);
    rtt_min_ms(out, &base);
    free(out);
    set_link("n1", "n2", "delay 20ms");
    int rc = run(0, "ping -c 5 -i 0.2 -W 2 10.0.0.2", &out);
    bool parsed = rtt_min_ms(out, &delayed);
    check(rc == 0 && parsed && delayed >= 20.0 && delayed < base + 20.0 + 50.0,
          "20 ms delay shows in the RTT: min %.2f ms without, %.2f ms with", base, delayed);
    if (!parsed) {
        fprintf(stderr, "ping output:\n%s\n", out);
    }
    free(out);

    /* Stop the guests and netback (closes the pcaps), then read them. */
    for (int i = 0; i < 2; i++) {
        hv_node_destroy(nodes[i]);
        nodes[i] = NULL;
    }
    nb_destroy(nb);
    nb = NULL;
    for (int i = 0; i < 2; i++) {
        char *pcap = fl_xasprintf("%s/%s-eth0.pcap", pcaps, names[i]);
        int all = tshark_count(pcap, "frame");
        int echo = tshark_count(pcap, "icmp.type == 8");
        int reply = tshark_count(pcap, "icmp.type == 0");
        check(all > 0 && echo > 0 && reply > 0,
              "tshark -r %s: %d frames, %d echo requests, %d replies", pcap, all, echo, reply);
        free(pcap);
    }
    for (int i = 0; i < 2; i++) {
        free(socks[i]);
    }
    free(pcaps);
    hv_image_clear(&img);
    cleanup();
    if (failures) {
        fprintf(stderr, "test_net_guests: %d check(s) failed\n", failures);
        return 1;
    }
    return 0;
}
