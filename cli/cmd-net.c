/*
 * `faultline net serve`: netback on its own, one switch, so people can plug
 * their own QEMU command lines into an impaired fabric without a scenario.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/core.h"
#include "impair/impair.h"
#include "netback/netback.h"

#define NET_NAME "lan"

static void usage(FILE *out)
{
    fprintf(out, "usage: faultline net serve --dir DIR --port NAME [--port NAME ...]\n"
                 "                           [--link 'SRC->DST: WORDS' ...] [--seed N]\n"
                 "                           [--pcap-dir DIR]\n"
                 "\n"
                 "Runs faultline's network backend alone: one L2 learning switch with one\n"
                 "port per --port NAME, listening on DIR/NAME.sock for a QEMU NIC.  Every\n"
                 "frame between two ports goes through the impairment of its directed\n"
                 "link.  Runs until SIGINT/SIGTERM, then prints the counters and exits 0.\n"
                 "\n"
                 "Connecting a QEMU guest (QEMU >= 7.2) to port NAME:\n"
                 "  -netdev stream,id=n0,server=off,addr.type=unix,addr.path=DIR/NAME.sock\n"
                 "  -device virtio-net-pci,netdev=n0,mac=52:54:00:00:00:01\n"
                 "(-device virtio-net-device on -M microvm).  Give each guest its own MAC.\n"
                 "Start net serve first: QEMU 7.2 connects once at start-up and has no\n"
                 "reconnect option; a guest that is restarted simply connects again.\n"
                 "\n"
                 "options:\n"
                 "  --dir DIR         directory for the sockets (created 0700 if missing)\n"
                 "  --port NAME       a guest NIC (node NAME, socket DIR/NAME.sock); 1..63\n"
                 "                    characters of A-Z a-z 0-9 _ . -; repeat for each guest\n"
                 "  --link SPEC       impair a link: 'SRC->DST: WORDS' (one direction),\n"
                 "                    'SRC<->DST: WORDS' (both), '*' for any node; WORDS as\n"
                 "                    tc-netem: delay TIME [JITTER [CORR]] [distribution D],\n"
                 "                    loss P [CORR] | loss gemodel P R [1-H [1-K]] |\n"
                 "                    loss state P13 ..., duplicate P, corrupt P,\n"
                 "                    reorder P [CORR] [gap N], rate RATE [OVERHEAD ...],\n"
                 "                    limit FRAMES, limit-bytes SIZE, mtu SIZE, partition\n"
                 "                    e.g. --link 'n1->n2: delay 10ms 1ms loss 1%%'\n"
                 "  --seed N          run seed for every random choice (default: from the\n"
                 "                    clock, printed at start so a run can be repeated)\n"
                 "  --pcap-dir DIR    write DIR/NAME-eth0.pcap per port: frames as the guest\n"
                 "                    sent them and as they were delivered to it\n"
                 "  -h, --help        this text\n"
                 "\n"
                 "example:\n"
                 "  faultline net serve --dir /tmp/fab --port n1 --port n2 \\\n"
                 "      --link 'n1<->n2: delay 20ms loss 1%%' --pcap-dir /tmp/fab/pcap\n");
}

struct link_spec {
    char *src, *dst; /* NULL: any */
    bool both;
    struct impair_link_params params;
    const char *text;
};

/* "SRC->DST: words" / "SRC<->DST: words". */
static bool parse_link(const char *text, struct link_spec *out, struct fl_error **errp)
{
    memset(out, 0, sizeof *out);
    out->text = text;
    const char *colon = strchr(text, ':');
    if (!colon) {
        fl_error_setf(errp, EINVAL,
                      "--link '%s': expected 'SRC->DST: WORDS' or 'SRC<->DST: WORDS' "
                      "(e.g. 'n1->n2: delay 10ms loss 1%%')",
                      text);
        return false;
    }
    char *ends = fl_xstrndup(text, (size_t)(colon - text));
    char *arrow = strstr(ends, "<->");
    size_t alen = 3;
    out->both = arrow != NULL;
    if (!arrow) {
        arrow = strstr(ends, "->");
        alen = 2;
    }
    if (!arrow) {
        fl_error_setf(errp, EINVAL, "--link '%s': '%s' has no '->' or '<->' between two nodes",
                      text, ends);
        free(ends);
        return false;
    }
    *arrow = '\0';
    char *names[2] = {ends, arrow + alen};
    char *clean[2];
    for (int i = 0; i < 2; i++) {
        char *s = names[i];
        while (*s == ' ' || *s == '\t') {
            s++;
        }
        char *e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) {
            *--e = '\0';
        }
        if (!*s) {
            fl_error_setf(errp, EINVAL, "--link '%s': the %s node is missing", text,
                          i == 0 ? "source" : "destination");
            free(ends);
            return false;
        }
        clean[i] = strcmp(s, "*") ? fl_xstrdup(s) : NULL;
    }
    free(ends);
    out->src = clean[0];
    out->dst = clean[1];
    if (!impair_link_params_parse_string(colon + 1, NULL, &out->params, errp)) {
        fl_error_prepend(errp, "--link '%s': ", text);
        free(out->src);
        free(out->dst);
        return false;
    }
    return true;
}

struct serve {
    struct fl_loop *loop;
    int signo;
};

static void on_signal(struct fl_loop *loop, int signo, void *arg)
{
    struct serve *s = arg;
    s->signo = signo;
    fl_loop_stop(loop);
}

static void ev_connected(void *arg, const char *network, const char *node, const char *nic)
{
    fprintf(stderr, "net serve: %s connected\n", node);
}

static void ev_disconnected(void *arg, const char *network, const char *node, const char *nic,
                            enum nb_disconnect_reason reason, const char *detail)
{
    if (reason == NB_DISCONNECT_MALFORMED) {
        return; /* netback logs these itself, rate-limited (a guest can repeat them) */
    }
    fprintf(stderr, "net serve: %s disconnected (%s): %s\n", node,
            nb_disconnect_reason_name(reason), detail);
}

static const struct nb_events serve_events = {ev_connected, ev_disconnected};

static void print_port(void *arg, const char *network, const char *node, const char *nic,
                       const char *path, const struct nb_port_stats *st)
{
    fprintf(stderr,
            "  port %-8s rx %llu frames %llu bytes, tx %llu frames %llu bytes, "
            "queue drops %llu, down drops %llu, malformed %llu, held %llu times, stalled %llu "
            "times\n",
            node, (unsigned long long)st->rx_frames, (unsigned long long)st->rx_bytes,
            (unsigned long long)st->tx_frames, (unsigned long long)st->tx_bytes,
            (unsigned long long)st->tx_queue_drops, (unsigned long long)st->tx_down_drops,
            (unsigned long long)st->malformed_disconnects, (unsigned long long)st->rx_holds,
            (unsigned long long)st->tx_stalls);
}

static void print_link(void *arg, const char *network, const char *src, const char *dst,
                       const struct nb_link_stats *st)
{
    if (!st->sent) {
        return;
    }
    fprintf(stderr, "  link %s->%s: sent %llu, delivered %llu", src, dst,
            (unsigned long long)st->sent, (unsigned long long)st->delivered);
    for (int r = 0; r < NB_DROP__COUNT; r++) {
        if (st->dropped[r]) {
            fprintf(stderr, ", %s %llu", nb_drop_reason_name(r),
                    (unsigned long long)st->dropped[r]);
        }
    }
    if (st->duplicated) {
        fprintf(stderr, ", duplicated %llu", (unsigned long long)st->duplicated);
    }
    if (st->corrupted) {
        fprintf(stderr, ", corrupted %llu", (unsigned long long)st->corrupted);
    }
    if (st->reordered) {
        fprintf(stderr, ", reordered %llu", (unsigned long long)st->reordered);
    }
    fprintf(stderr, "\n");
}

static int serve_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"port", required_argument, NULL, 'p'},
        {"link", required_argument, NULL, 'l'},
        {"seed", required_argument, NULL, 's'},
        {"pcap-dir", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *pcap_dir = NULL;
    char **ports = NULL;
    size_t n_ports = 0, ports_alloc = 0;
    struct link_spec *links = NULL;
    size_t n_links = 0, links_alloc = 0;
    uint64_t seed = 0;
    bool have_seed = false;
    int rc = CLI_EXIT_USAGE;
    struct fl_error *err = NULL;
    struct fl_loop *loop = NULL;
    struct netback *nb = NULL;

    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'p':
            ports = fl_xgrow(ports, &ports_alloc, n_ports + 1, sizeof *ports);
            ports[n_ports++] = optarg;
            break;
        case 'l':
            links = fl_xgrow(links, &links_alloc, n_links + 1, sizeof *links);
            if (!parse_link(optarg, &links[n_links], &err)) {
                fprintf(stderr, "faultline net serve: %s\n", err->msg);
                goto out;
            }
            n_links++;
            break;
        case 's': {
            if (!cli_parse_seed("net serve", optarg, &seed)) {
                goto out;
            }
            have_seed = true;
            break;
        }
        case 'P':
            pcap_dir = optarg;
            break;
        case 'h':
            usage(stdout);
            rc = CLI_EXIT_OK;
            goto out;
        default:
            fprintf(stderr, "(see 'faultline net serve --help')\n");
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr,
                "faultline net serve: unexpected argument '%s' (ports are given with --port "
                "NAME)\n",
                argv[optind]);
        goto out;
    }
    if (!dir) {
        fprintf(stderr, "faultline net serve: --dir DIR is required (where the sockets go)\n");
        goto out;
    }
    if (n_ports < 1) {
        fprintf(stderr, "faultline net serve: at least one --port NAME is required\n");
        goto out;
    }
    if (!have_seed) {
        seed = (uint64_t)fl_clock_real_ns() ^ ((uint64_t)getpid() << 32);
    }
    signal(SIGPIPE, SIG_IGN); /* stdout/stderr to a closed pipe must not kill the fabric */

    rc = CLI_EXIT_INFRA;
    if (!fl_mkdir_p(dir, 0700, &err)) {
        fprintf(stderr, "faultline net serve: --dir '%s': %s\n", dir, err->msg);
        goto out;
    }
    loop = fl_loop_create(NULL, &err);
    if (!loop) {
        fprintf(stderr, "faultline net serve: %s\n", err->msg);
        goto out;
    }
    struct serve sv = {.loop = loop};
    if (fl_loop_add_signal(loop, SIGINT, on_signal, &sv) < 0 ||
        fl_loop_add_signal(loop, SIGTERM, on_signal, &sv) < 0) {
        fprintf(stderr, "faultline net serve: cannot watch SIGINT/SIGTERM\n");
        goto out;
    }
    struct nb_config cfg = {
        .seed = seed,
        .pcap_dir = pcap_dir,
        .events = &serve_events,
    };
    nb = nb_create(loop, &cfg, &err);
    if (!nb || !nb_network_add(nb, NET_NAME, &err)) {
        fprintf(stderr, "faultline net serve: %s\n", err->msg);
        goto out;
    }
    rc = CLI_EXIT_USAGE;
    for (size_t i = 0; i < n_ports; i++) {
        char *path = fl_xasprintf("%s/%s.sock", dir, ports[i]);
        struct nb_port *p = nb_port_add(nb, NET_NAME, ports[i], "eth0", NULL, path, &err);
        free(path);
        if (!p) {
            fprintf(stderr, "faultline net serve: --port '%s': %s\n", ports[i], err->msg);
            goto out;
        }
    }
    for (size_t i = 0; i < n_links; i++) {
        struct link_spec *l = &links[i];
        if (!nb_link_set(nb, NET_NAME, l->src, l->dst, &l->params, &err) ||
            (l->both && !nb_link_set(nb, NET_NAME, l->dst, l->src, &l->params, &err))) {
            fprintf(stderr, "faultline net serve: --link '%s': %s\n", l->text, err->msg);
            goto out;
        }
    }

    printf("faultline net serve: seed %llu, %zu port%s%s%s\n", (unsigned long long)seed, n_ports,
           n_ports == 1 ? "" : "s", pcap_dir ? ", pcaps in " : "", pcap_dir ? pcap_dir : "");
    for (size_t i = 0; i < n_ports; i++) {
        printf("  %s: %s/%s.sock\n", ports[i], dir, ports[i]);
    }
    for (size_t i = 0; i < n_links; i++) {
        struct fl_buf w = {0};
        impair_link_params_format(&links[i].params, &w);
        printf("  link %s %s %s: %s\n", links[i].src ? links[i].src : "*",
               links[i].both ? "<->" : "->", links[i].dst ? links[i].dst : "*",
               w.data ? w.data : "(no impairment)");
        fl_buf_free(&w);
    }
    printf("connect a QEMU guest to port %s with:\n"
           "  -netdev stream,id=n0,server=off,addr.type=unix,addr.path=%s/%s.sock \\\n"
           "  -device virtio-net-pci,netdev=n0,mac=52:54:00:00:00:01\n"
           "(virtio-net-device on -M microvm; one MAC per guest).  Ctrl-C stops.\n",
           ports[0], dir, ports[0]);
    fflush(stdout);

    int r = fl_loop_run(loop);
    if (r < 0) {
        fprintf(stderr, "faultline net serve: event loop: %s\n", strerror(-r));
        rc = CLI_EXIT_INFRA;
        goto out;
    }
    fprintf(stderr, "net serve: %s, stopping; counters:\n",
            sv.signo == SIGINT ? "SIGINT" : "SIGTERM");
    nb_port_foreach(nb, print_port, NULL);
    nb_link_foreach(nb, print_link, NULL);
    rc = CLI_EXIT_OK;

out:
    nb_destroy(nb);
    fl_loop_destroy(loop);
    fl_error_free(err);
    for (size_t i = 0; i < n_links; i++) {
        free(links[i].src);
        free(links[i].dst);
        impair_link_params_clear(&links[i].params);
    }
    free(links);
    free(ports);
    return rc;
}

static int net_main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        FILE *out = argc < 2 ? stderr : stdout;
        fprintf(out, "usage: faultline net serve [options]   (see 'faultline net serve "
                     "--help')\n\n"
                     "net serve runs faultline's network backend alone: a switch with one\n"
                     "unix socket per guest NIC, impairments per directed link, pcaps.\n");
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "serve")) {
        return serve_main(argc - 1, argv + 1);
    }
    fprintf(stderr, "faultline net: '%s' is not a subcommand (valid: serve)\n", argv[1]);
    return CLI_EXIT_USAGE;
}

const struct cli_command cli_cmd_net = {
    .name = "net",
    .summary = "run the network backend alone (net serve): a switch for your own QEMU guests",
    .main = net_main,
};
