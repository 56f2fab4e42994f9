/*
 * `faultline net serve`: netback on its own, one switch, so people can plug
 * their own QEMU command lines into an impaired fabric without a scenario.
 */
#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/core.h"
#include "cli/net.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: faultline net serve --dir DIR --port NAME [--port NAME ...]\n"
                 "                           [--link 'SRC->DST: WORDS' ...] [--seed N]\n"
                 "                           [--pcap-dir DIR] [--learning]\n"
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
                 "While it runs, DIR/control.sock (0600) takes requests from\n"
                 "'faultline net ctl --dir DIR': cut and heal links, change their\n"
                 "impairment, isolate a node, read the counters.\n"
                 "\n"
                 "options:\n"
                 "  --dir DIR         directory for the sockets (created 0700 if missing)\n"
                 "  --port NAME       a guest NIC (node NAME, socket DIR/NAME.sock): 1..63\n"
                 "                    letters, digits, '-' or '_', starting with a letter\n"
                 "                    or digit; repeat for each guest\n"
                 "  --link SPEC       impair links: 'SRC->DST: WORDS' (one direction),\n"
                 "                    'SRC<->DST: WORDS' (both), '*' for any node, '*: WORDS'\n"
                 "                    every link (the selectors of scenario links:); WORDS as\n"
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
                 "  --learning        let MACs move between ports (port security off): for\n"
                 "                    VRRP virtual MACs or bridges inside guests.  Without it\n"
                 "                    a port owns the first source MAC its guest sends after\n"
                 "                    connecting (unless another port owns it) and frames\n"
                 "                    from any other source MAC are dropped ('spoofed')\n"
                 "  -h, --help        this text\n"
                 "\n"
                 "example:\n"
                 "  faultline net serve --dir /tmp/fab --port n1 --port n2 \\\n"
                 "      --link 'n1<->n2: delay 20ms loss 1%%' --pcap-dir /tmp/fab/pcap\n");
}

static struct serve *the_serve; /* for netback's event callbacks */

static void on_signal(struct fl_loop *loop, int signo, void *arg)
{
    struct serve *s = arg;
    s->signo = signo;
    fl_loop_stop(loop);
}

static void ev_connected(void *arg, const char *network, const char *node, const char *nic)
{
    cli_net_say(&the_serve->rl_conn, "net serve: %s connected\n", node);
}

static void ev_disconnected(void *arg, const char *network, const char *node, const char *nic,
                            enum nb_disconnect_reason reason, const char *detail)
{
    if (reason == NB_DISCONNECT_MALFORMED) {
        return; /* netback logs these itself, rate-limited (a guest can repeat them) */
    }
    cli_net_say(&the_serve->rl_conn, "net serve: %s disconnected (%s): %s\n", node,
                nb_disconnect_reason_name(reason), detail);
}

static const struct nb_events serve_events = {ev_connected, ev_disconnected};

static int serve_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},      {"port", required_argument, NULL, 'p'},
        {"link", required_argument, NULL, 'l'},     {"seed", required_argument, NULL, 's'},
        {"pcap-dir", required_argument, NULL, 'P'}, {"learning", no_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *pcap_dir = NULL;
    char **ports = NULL;
    size_t n_ports = 0, ports_alloc = 0;
    struct link_spec *links = NULL;
    size_t n_links = 0, links_alloc = 0;
    uint64_t seed = 0;
    bool have_seed = false, learning = false;
    int rc = CLI_EXIT_USAGE;
    struct fl_error *err = NULL;
    struct fl_loop *loop = NULL;
    struct netback *nb = NULL;
    struct serve sv = {
        .ctl_fd = -1,
        .rl_conn = FL_RATELIMIT_INIT(5 * FL_NS_PER_SEC, 20),
        .rl_ctl = FL_RATELIMIT_INIT(5 * FL_NS_PER_SEC, 20),
    };
    the_serve = &sv;

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
            if (!cli_net_parse_link("--link", optarg, &links[n_links], &err)) {
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
        case 'L':
            learning = true;
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
    sv.loop = loop;
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
    if (!nb || !nb_network_add(nb, NET_NAME, &err) ||
        !nb_network_set_learning(nb, NET_NAME, learning, &err)) {
        fprintf(stderr, "faultline net serve: %s\n", err->msg);
        goto out;
    }
    rc = CLI_EXIT_USAGE;
    for (size_t i = 0; i < n_ports; i++) {
        for (size_t j = 0; j < i; j++) {
            if (!strcmp(ports[i], ports[j])) {
                fprintf(stderr, "faultline net serve: --port '%s' is given twice\n", ports[i]);
                goto out;
            }
        }
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
        if (!cli_net_link_apply(nb, l, &err)) {
            fprintf(stderr, "faultline net serve: --link '%s': %s\n", l->text, err->msg);
            goto out;
        }
    }

    rc = CLI_EXIT_INFRA;
    sv.nb = nb;
    if (!cli_net_ctl_listen(&sv, dir, &err)) {
        fprintf(stderr, "faultline net serve: control socket: %s\n", err->msg);
        goto out;
    }

    printf("faultline net serve: seed %llu, %zu port%s%s%s\n", (unsigned long long)seed, n_ports,
           n_ports == 1 ? "" : "s", pcap_dir ? ", pcaps in " : "", pcap_dir ? pcap_dir : "");
    for (size_t i = 0; i < n_ports; i++) {
        printf("  %s: %s/%s.sock\n", ports[i], dir, ports[i]);
    }
    for (size_t i = 0; i < n_links; i++) {
        struct fl_buf w = {0};
        cli_net_link_format(&links[i], &w);
        printf("  %s\n", w.data);
        fl_buf_free(&w);
    }
    printf("connect a QEMU guest to port %s with:\n"
           "  -netdev stream,id=n0,server=off,addr.type=unix,addr.path=%s/%s.sock \\\n"
           "  -device virtio-net-pci,netdev=n0,mac=52:54:00:00:00:01\n"
           "(virtio-net-device on -M microvm; one MAC per guest).\n"
           "change faults while it runs: faultline net ctl --dir %s cut n1->n2 (see --help).\n"
           "Ctrl-C stops.\n",
           ports[0], dir, ports[0], dir);
    fflush(stdout);

    int r = fl_loop_run(loop);
    if (r < 0) {
        fprintf(stderr, "faultline net serve: event loop: %s\n", strerror(-r));
        rc = CLI_EXIT_INFRA;
        goto out;
    }
    fprintf(stderr, "net serve: %s, stopping; counters:\n",
            sv.signo == SIGINT ? "SIGINT" : "SIGTERM");
    struct fl_buf counters = {0};
    cli_net_print_counters(nb, &counters);
    fputs(counters.data ? counters.data : "", stderr);
    fl_buf_free(&counters);
    rc = CLI_EXIT_OK;

out:
    if (loop) {
        cli_net_ctl_close(&sv);
    }
    nb_destroy(nb);
    fl_loop_destroy(loop);
    fl_error_free(err);
    for (size_t i = 0; i < n_links; i++) {
        cli_net_link_clear(&links[i]);
    }
    free(links);
    free(ports);
    return rc;
}

/* ---- net ctl: the client of the control socket ---- */

static void ctl_usage(FILE *out)
{
    fprintf(out,
            "usage: faultline net ctl (--dir DIR | --socket PATH) REQUEST...\n"
            "\n"
            "Changes a running 'faultline net serve' through its control socket\n"
            "(DIR/control.sock): the change applies to frames sent from then on.\n"
            "\n"
            "requests:\n"
            "%s"
            "\n"
            "examples:\n"
            "  faultline net ctl --dir /tmp/fab cut 'n1<->n2'\n"
            "  faultline net ctl --dir /tmp/fab link 'n1->n2: delay 50ms loss 5%%'\n"
            "  faultline net ctl --dir /tmp/fab heal all\n"
            "\n"
            "Exit status: 0 done, 2 the request was refused (the reason is printed),\n"
            "3 no net serve answers on that socket.\n",
            cli_net_ctl_help);
}

static int ctl_main(int argc, char **argv)
{
    const char *dir = NULL, *path = NULL;
    int i = 1;
    for (; i < argc; i++) {
        if ((!strcmp(argv[i], "--dir") || !strcmp(argv[i], "--socket")) && i + 1 < argc) {
            *(argv[i][2] == 'd' ? &dir : &path) = argv[i + 1];
            i++;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            ctl_usage(stdout);
            return CLI_EXIT_OK;
        } else if (!strncmp(argv[i], "--", 2)) {
            fprintf(stderr, "faultline net ctl: unknown option '%s' (see --help)\n", argv[i]);
            return CLI_EXIT_USAGE;
        } else {
            break;
        }
    }
    if (!dir == !path) {
        fprintf(stderr, "faultline net ctl: give --dir DIR (as for net serve) or --socket PATH\n");
        return CLI_EXIT_USAGE;
    }
    if (i >= argc) {
        fprintf(stderr, "faultline net ctl: no request (try: help)\n");
        return CLI_EXIT_USAGE;
    }
    struct fl_buf req = {0};
    for (; i < argc; i++) {
        fl_buf_printf(&req, "%s%s", req.size ? " " : "", argv[i]);
    }
    fl_buf_puts(&req, "\n");
    char *sock = path ? fl_xstrdup(path) : fl_xasprintf("%s/control.sock", dir);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (strlen(sock) >= sizeof sa.sun_path || fd < 0 ||
        (memcpy(sa.sun_path, sock, strlen(sock) + 1),
         connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)) {
        fprintf(stderr,
                "faultline net ctl: cannot connect to %s: %s (is 'faultline net serve%s%s' "
                "running?)\n",
                sock, strerror(errno), dir ? " --dir " : "", dir ? dir : "");
        if (fd >= 0) {
            close(fd);
        }
        free(sock);
        fl_buf_free(&req);
        return CLI_EXIT_INFRA;
    }
    signal(SIGPIPE, SIG_IGN);
    bool sent = send(fd, req.data, req.size, MSG_NOSIGNAL) == (ssize_t)req.size;
    shutdown(fd, SHUT_WR);
    struct fl_buf resp = {0};
    char tmp[4096];
    for (ssize_t n; (n = read(fd, tmp, sizeof tmp)) > 0;) {
        fl_buf_append(&resp, tmp, (size_t)n);
    }
    close(fd);
    fl_buf_free(&req);
    /* The last line is the status. */
    int rc = CLI_EXIT_INFRA;
    while (resp.size && resp.data[resp.size - 1] == '\n') {
        resp.data[--resp.size] = '\0';
    }
    char *last = resp.data ? strrchr(resp.data, '\n') : NULL;
    char *status = last ? last + 1 : resp.data;
    if (status && !strcmp(status, "ok")) {
        if (last) {
            *last = '\0';
            printf("%s\n", resp.data);
        }
        rc = CLI_EXIT_OK;
    } else if (status && !strncmp(status, "error: ", 7)) {
        if (last) {
            *last = '\0';
            printf("%s\n", resp.data);
        }
        fprintf(stderr, "faultline net ctl: %s\n", status + 7);
        rc = CLI_EXIT_USAGE;
    } else {
        fprintf(stderr, "faultline net ctl: %s: %s\n", sock,
                sent ? "no answer (the server closed the connection)" : "cannot send the request");
    }
    fl_buf_free(&resp);
    free(sock);
    return rc;
}

static int net_main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        FILE *out = argc < 2 ? stderr : stdout;
        fprintf(out, "usage: faultline net serve [options]   (see 'faultline net serve "
                     "--help')\n"
                     "       faultline net ctl --dir DIR REQUEST   (see 'faultline net ctl "
                     "--help')\n\n"
                     "net serve runs faultline's network backend alone: a switch with one\n"
                     "unix socket per guest NIC, impairments per directed link, pcaps.\n"
                     "net ctl changes its links while it runs (cut, heal, link, stats).\n");
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "serve")) {
        return serve_main(argc - 1, argv + 1);
    }
    if (!strcmp(argv[1], "ctl")) {
        return ctl_main(argc - 1, argv + 1);
    }
    fprintf(stderr, "faultline net: '%s' is not a subcommand (valid: serve, ctl)\n", argv[1]);
    return CLI_EXIT_USAGE;
}

const struct cli_command cli_cmd_net = {
    .name = "net",
    .summary = "run the network backend alone (net serve), change it live (net ctl)",
    .main = net_main,
};
