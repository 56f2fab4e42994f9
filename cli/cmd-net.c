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
#include "impair/impair.h"
#include "netback/netback.h"

#define NET_NAME "lan"

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
                 "  --port NAME       a guest NIC (node NAME, socket DIR/NAME.sock); 1..63\n"
                 "                    characters of A-Z a-z 0-9 _ . -; repeat for each guest\n"
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

struct link_spec {
    struct impair_selector sel; /* impair's one link-selector grammar */
    struct impair_link_params params;
    const char *text;
};

/* The selector in text[0..len) ('*', a network, 'A->B', 'A<->B', with
 * '*' for any node and an optional '@ NETWORK'); `what` and `whole` name
 * the value in messages. */
static bool parse_selector(const char *what, const char *whole, const char *text, size_t len,
                           struct impair_selector *sel, struct fl_error **errp)
{
    struct fl_error *err = NULL;
    if (!impair_selector_parse(text, len, sel, &err)) {
        fl_error_setf(errp, EINVAL, "%s '%s': '%.*s' %s", what, whole, (int)len, text, err->msg);
        fl_error_free(err);
        return false;
    }
    return true;
}

/* A bare word that names a node, not a network: say how to write it. */
static bool not_a_node(struct netback *nb, const struct impair_selector *s, struct fl_error **errp)
{
    if (s->kind == IMPAIR_SEL_NETWORK && nb_port_find(nb, s->network, "eth0")) {
        fl_error_setf(errp, EINVAL,
                      "'%s' is a node, not a network; for a node's links write '%s <-> *' %s",
                      s->network, s->network, IMPAIR_SELECTOR_HELP);
        return false;
    }
    return true;
}

/* "SEL: words"; `what` names it in messages ("--link", or "link" from
 * the control socket). */
static bool parse_link(const char *what, const char *text, struct link_spec *out,
                       struct fl_error **errp)
{
    memset(out, 0, sizeof *out);
    out->text = text;
    const char *colon = strchr(text, ':');
    if (!colon) {
        fl_error_setf(errp, EINVAL,
                      "%s '%s': expected 'SRC->DST: WORDS' or 'SRC<->DST: WORDS' "
                      "(e.g. 'n1->n2: delay 10ms loss 1%%')",
                      what, text);
        return false;
    }
    if (!parse_selector(what, text, text, (size_t)(colon - text), &out->sel, errp)) {
        return false;
    }
    if (!impair_link_params_parse_string(colon + 1, NULL, &out->params, errp)) {
        fl_error_prepend(errp, "%s '%s': ", what, text);
        impair_selector_clear(&out->sel);
        return false;
    }
    return true;
}

static void link_spec_clear(struct link_spec *l)
{
    impair_selector_clear(&l->sel);
    impair_link_params_clear(&l->params);
}

/* The network a selector names, NET_NAME when it names none. */
static const char *sel_network(const struct impair_selector *sel)
{
    return sel->network ? sel->network : NET_NAME;
}

/* Applies a parsed link to both directions if asked. */
static bool link_spec_apply(struct netback *nb, const struct link_spec *l, struct fl_error **errp)
{
    const struct impair_selector *s = &l->sel;
    if (!not_a_node(nb, s, errp)) {
        return false;
    }
    if (s->kind == IMPAIR_SEL_ALL || s->kind == IMPAIR_SEL_NETWORK) {
        return nb_link_set(nb, sel_network(s), NULL, NULL, &l->params, errp);
    }
    return nb_link_set(nb, sel_network(s), s->a, s->b, &l->params, errp) &&
           (s->kind != IMPAIR_SEL_BOTH_WAYS ||
            nb_link_set(nb, sel_network(s), s->b, s->a, &l->params, errp));
}

static void format_link(const struct link_spec *l, struct fl_buf *out)
{
    fl_buf_puts(out, "link ");
    impair_selector_format(&l->sel, out);
    fl_buf_puts(out, ": ");
    size_t at = out->size;
    impair_link_params_format(&l->params, out);
    if (out->size == at) {
        fl_buf_puts(out, "(no impairment)");
    }
}

/* Cuts or heals what a selector names.  net serve has one network: a
 * selector naming another is an error, as nb_link_set says it. */
static bool partition_apply(struct netback *nb, const struct impair_selector *s, bool cut,
                            struct fl_error **errp)
{
    if (!not_a_node(nb, s, errp)) {
        return false;
    }
    if (strcmp(sel_network(s), NET_NAME)) {
        fl_error_setf(errp, ENOENT, "unknown network '%s' (known: '%s')", sel_network(s), NET_NAME);
        return false;
    }
    if (s->kind == IMPAIR_SEL_ALL || s->kind == IMPAIR_SEL_NETWORK) {
        return nb_partition(nb, NULL, NULL, cut, errp);
    }
    return nb_partition(nb, s->a, s->b, cut, errp) &&
           (s->kind != IMPAIR_SEL_BOTH_WAYS || nb_partition(nb, s->b, s->a, cut, errp));
}

#define CTL_MAX_LINE    4096
#define CTL_MAX_CLIENTS 16
/* A control connection that has not sent its whole request after this
 * long is answered with an error and closed. */
#define CTL_IDLE_NS (5 * FL_NS_PER_SEC)

struct ctl_client {
    struct serve *sv;
    int fd;
    struct fl_timer *idle; /* CTL_IDLE_NS after accept */
    int64_t since;         /* accepted at */
    size_t len;
    char buf[CTL_MAX_LINE + 1];
};

struct serve {
    struct fl_loop *loop;
    int signo;
    struct netback *nb;
    int ctl_fd; /* DIR/control.sock, listening */
    char *ctl_path;
    struct ctl_client *clients[CTL_MAX_CLIENTS];
    /* What anyone who can connect can make net serve print is
     * rate-limited: guest (dis)connections, control requests. */
    struct fl_ratelimit rl_conn, rl_ctl;
};

static struct serve *the_serve; /* for netback's event callbacks */

/* Prints one stderr line through rl, with the count of lines it held back. */
static void FL_PRINTF(2, 3) say_rl(struct fl_ratelimit *rl, const char *fmt, ...)
{
    uint64_t suppressed;
    if (!fl_ratelimit_allow(rl, fl_clock_mono_ns(), &suppressed)) {
        return;
    }
    if (suppressed) {
        fprintf(stderr, "net serve: (%llu similar lines suppressed)\n",
                (unsigned long long)suppressed);
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

/* Appends s with every byte outside printable ASCII, and the backslash,
 * written as \xNN (\\), so a request cannot move the cursor, retitle
 * the terminal or reorder text on the operator's screen. */
static void escape_into(struct fl_buf *b, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\\') {
            fl_buf_puts(b, "\\\\");
        } else if (ch < 0x20 || ch >= 0x7f) {
            fl_buf_printf(b, "\\x%02x", ch);
        } else {
            fl_buf_append(b, &s[i], 1);
        }
    }
}

static void on_signal(struct fl_loop *loop, int signo, void *arg)
{
    struct serve *s = arg;
    s->signo = signo;
    fl_loop_stop(loop);
}

static void ev_connected(void *arg, const char *network, const char *node, const char *nic)
{
    say_rl(&the_serve->rl_conn, "net serve: %s connected\n", node);
}

static void ev_disconnected(void *arg, const char *network, const char *node, const char *nic,
                            enum nb_disconnect_reason reason, const char *detail)
{
    if (reason == NB_DISCONNECT_MALFORMED) {
        return; /* netback logs these itself, rate-limited (a guest can repeat them) */
    }
    say_rl(&the_serve->rl_conn, "net serve: %s disconnected (%s): %s\n", node,
           nb_disconnect_reason_name(reason), detail);
}

static const struct nb_events serve_events = {ev_connected, ev_disconnected};

static void print_port(void *arg, const char *network, const char *node, const char *nic,
                       const char *path, const struct nb_port_stats *st)
{
    fl_buf_printf(
        arg,
        "  port %-8s rx %llu frames %llu bytes, tx %llu frames %llu bytes, "
        "queue drops %llu, down drops %llu, malformed %llu, held %llu times, stalled %llu "
        "times",
        node, (unsigned long long)st->rx_frames, (unsigned long long)st->rx_bytes,
        (unsigned long long)st->tx_frames, (unsigned long long)st->tx_bytes,
        (unsigned long long)st->tx_queue_drops, (unsigned long long)st->tx_down_drops,
        (unsigned long long)st->malformed_disconnects, (unsigned long long)st->rx_holds,
        (unsigned long long)st->tx_stalls);
    if (st->rx_spoofed) {
        fl_buf_printf(arg, ", spoofed %llu", (unsigned long long)st->rx_spoofed);
    }
    fl_buf_puts(arg, "\n");
}

static void print_link(void *arg, const char *network, const char *src, const char *dst,
                       const struct nb_link_stats *st)
{
    if (!st->sent) {
        return;
    }
    fl_buf_printf(arg, "  link %s->%s: sent %llu, delivered %llu", src, dst,
                  (unsigned long long)st->sent, (unsigned long long)st->delivered);
    for (int r = 0; r < NB_DROP__COUNT; r++) {
        if (st->dropped[r]) {
            fl_buf_printf(arg, ", %s %llu", nb_drop_reason_name(r),
                          (unsigned long long)st->dropped[r]);
        }
    }
    if (st->duplicated) {
        fl_buf_printf(arg, ", duplicated %llu", (unsigned long long)st->duplicated);
    }
    if (st->corrupted) {
        fl_buf_printf(arg, ", corrupted %llu", (unsigned long long)st->corrupted);
    }
    if (st->reordered) {
        fl_buf_printf(arg, ", reordered %llu", (unsigned long long)st->reordered);
    }
    fl_buf_puts(arg, "\n");
}

static void print_counters(struct netback *nb, struct fl_buf *out)
{
    nb_port_foreach(nb, print_port, out);
    nb_link_foreach(nb, print_link, out);
}

/* ---- the control socket: DIR/control.sock ----
 *
 * One request per connection: a line (at most 4096 bytes) such as
 * "cut n1->n2", answered by zero or more lines of output and then "ok" or
 * "error: MESSAGE", after which the server closes the connection.  The
 * socket is 0600 in a 0700 directory: whoever can use it owns the fabric.
 * A client that sends nothing costs a slot (16), not the loop. */

static const char ctl_help[] =
    "  link 'SEL: WORDS'        set the impairment of the links SEL names (as --link;\n"
    "                           no WORDS: none)\n"
    "  cut SEL                  partition them; SEL: SRC->DST (one direction),\n"
    "                           SRC<->DST (both), '*' for any node, optionally\n"
    "                           '@ lan'; 'lan' or '*' alone: every link\n"
    "  heal SEL                 heal them; 'heal all' heals every link\n"
    "  isolate NODE             cut NODE from every other node, both ways\n"
    "  stats                    port and link counters\n"
    "  help                     this list\n";

static bool ctl_exec(struct serve *sv, char *line, struct fl_buf *out, struct fl_error **errp)
{
    while (*line == ' ' || *line == '\t') {
        line++;
    }
    char *end = line + strlen(line);
    while (end > line && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r')) {
        *--end = '\0';
    }
    size_t wl = strcspn(line, " \t");
    char *rest = line + wl;
    while (*rest == ' ' || *rest == '\t') {
        rest++;
    }
    const char *w = line;
    if (wl == 4 && !strncmp(w, "help", 4)) {
        fl_buf_puts(out, ctl_help);
        return true;
    }
    if (wl == 5 && !strncmp(w, "stats", 5)) {
        print_counters(sv->nb, out);
        return true;
    }
    if (wl == 4 && !strncmp(w, "link", 4)) {
        struct link_spec l;
        if (!parse_link("link", rest, &l, errp)) {
            return false;
        }
        bool ok = link_spec_apply(sv->nb, &l, errp);
        if (ok) {
            format_link(&l, out);
            fl_buf_puts(out, "\n");
        }
        link_spec_clear(&l);
        return ok;
    }
    if ((wl == 3 && !strncmp(w, "cut", 3)) || (wl == 4 && !strncmp(w, "heal", 4))) {
        bool cut = wl == 3;
        if (!cut && !strcmp(rest, "all")) {
            nb_heal_all(sv->nb);
            fl_buf_puts(out, "healed every link\n");
            return true;
        }
        struct impair_selector sel;
        if (!parse_selector(cut ? "cut" : "heal", rest, rest, strlen(rest), &sel, errp)) {
            return false;
        }
        bool ok = partition_apply(sv->nb, &sel, cut, errp);
        if (ok) {
            fl_buf_printf(out, "%s ", cut ? "cut" : "healed");
            impair_selector_format(&sel, out);
            fl_buf_puts(out, "\n");
        }
        impair_selector_clear(&sel);
        return ok;
    }
    if (wl == 7 && !strncmp(w, "isolate", 7)) {
        if (!*rest || strpbrk(rest, " \t")) {
            fl_error_setf(errp, EINVAL, "isolate '%s': expected one node name", rest);
            return false;
        }
        if (!nb_partition(sv->nb, rest, NULL, true, errp) ||
            !nb_partition(sv->nb, NULL, rest, true, errp)) {
            return false;
        }
        fl_buf_printf(out, "cut %s <-> *\n", rest);
        return true;
    }
    fl_error_setf(errp, EINVAL,
                  "unknown request '%.*s' (known: link, cut, heal, isolate, stats, help)",
                  (int)FL_MIN(wl, 64), w);
    return false;
}

static void ctl_client_free(struct ctl_client *c)
{
    struct serve *sv = c->sv;
    for (size_t i = 0; i < CTL_MAX_CLIENTS; i++) {
        if (sv->clients[i] == c) {
            sv->clients[i] = NULL;
        }
    }
    fl_loop_del_fd(sv->loop, c->fd);
    close(c->fd);
    fl_timer_destroy(c->idle);
    free(c);
}

/* Answers and hangs up.  The answer fits a socket buffer; a client that
 * does not read loses the part that does not. */
static void ctl_answer(struct ctl_client *c, const char *body, const struct fl_error *err)
{
    struct fl_buf out = {0};
    fl_buf_puts(&out, body ? body : "");
    if (err) {
        fl_buf_printf(&out, "error: %s\n", err->msg);
    } else {
        fl_buf_puts(&out, "ok\n");
    }
    size_t off = 0;
    while (off < out.size) {
        ssize_t n = send(c->fd, out.data + off, out.size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n <= 0) {
            break;
        }
        off += (size_t)n;
    }
    fl_buf_free(&out);
    ctl_client_free(c);
}

static void on_ctl_client(struct fl_loop *loop, int fd, uint32_t events, void *arg)
{
    struct ctl_client *c = arg;
    ssize_t n = read(fd, c->buf + c->len, CTL_MAX_LINE - c->len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n < 0) {
        ctl_client_free(c);
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    char *nl = memchr(c->buf, '\n', c->len);
    if (!nl && n > 0 && c->len < CTL_MAX_LINE) {
        return; /* more to come */
    }
    struct fl_error *err = NULL;
    if (!nl && c->len == CTL_MAX_LINE) {
        fl_error_setf(&err, EINVAL, "request longer than %d bytes", CTL_MAX_LINE);
        ctl_answer(c, NULL, err);
        fl_error_free(err);
        return;
    }
    if (nl) {
        *nl = '\0';
    }
    if (strlen(c->buf) != (nl ? (size_t)(nl - c->buf) : c->len)) {
        fl_error_setf(&err, EINVAL, "request contains a NUL byte");
        ctl_answer(c, NULL, err);
        fl_error_free(err);
        return;
    }
    struct fl_buf out = {0};
    char *line = fl_xstrdup(c->buf);
    bool ok = ctl_exec(c->sv, line, &out, &err);
    struct fl_buf echo = {0};
    escape_into(&echo, c->buf, strlen(c->buf));
    fl_buf_puts(&echo, ": ");
    escape_into(&echo, ok ? "ok" : err->msg, strlen(ok ? "ok" : err->msg));
    say_rl(&c->sv->rl_ctl, "net serve: control: %s\n", echo.data);
    fl_buf_free(&echo);
    ctl_answer(c, out.data, ok ? NULL : err);
    free(line);
    fl_buf_free(&out);
    fl_error_free(err);
}

static void on_ctl_idle(struct fl_loop *loop, struct fl_timer *timer, void *arg)
{
    struct ctl_client *c = arg;
    struct fl_error *err = NULL;
    fl_error_setf(&err, ETIMEDOUT, "no complete request within %lld s",
                  (long long)(CTL_IDLE_NS / FL_NS_PER_SEC));
    ctl_answer(c, NULL, err); /* frees c and its timer (safe inside its callback) */
    fl_error_free(err);
}

static void on_ctl_listen(struct fl_loop *loop, int lfd, uint32_t events, void *arg)
{
    struct serve *sv = arg;
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        return;
    }
    size_t slot = CTL_MAX_CLIENTS;
    for (size_t i = 0; i < CTL_MAX_CLIENTS && slot == CTL_MAX_CLIENTS; i++) {
        if (!sv->clients[i]) {
            slot = i;
        }
    }
    if (slot == CTL_MAX_CLIENTS) {
        /* Every slot taken: the connection waiting longest (connections
         * that send nothing must not lock `net ctl` out) makes room. */
        slot = 0;
        for (size_t i = 1; i < CTL_MAX_CLIENTS; i++) {
            if (sv->clients[i]->since < sv->clients[slot]->since) {
                slot = i;
            }
        }
        struct fl_error *err = NULL;
        fl_error_setf(&err, EBUSY, "too many control connections at once; closing the oldest");
        ctl_answer(sv->clients[slot], NULL, err);
        fl_error_free(err);
    }
    struct ctl_client *c = fl_xcalloc(1, sizeof *c);
    c->sv = sv;
    c->fd = fd;
    c->since = fl_loop_now(loop);
    if (fl_loop_add_fd(loop, fd, EPOLLIN, on_ctl_client, c) < 0) {
        close(fd);
        free(c);
        return;
    }
    c->idle = fl_timer_create(loop, on_ctl_idle, c);
    fl_timer_arm_in(c->idle, CTL_IDLE_NS);
    sv->clients[slot] = c;
}

static bool ctl_listen(struct serve *sv, const char *dir, struct fl_error **errp)
{
    sv->ctl_path = fl_xasprintf("%s/control.sock", dir);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(sv->ctl_path) >= sizeof sa.sun_path) {
        fl_error_setf(errp, ENAMETOOLONG, "'%s': path too long for a unix socket", sv->ctl_path);
        return false;
    }
    memcpy(sa.sun_path, sv->ctl_path, strlen(sv->ctl_path) + 1);
    struct stat st;
    if (lstat(sv->ctl_path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            fl_error_setf(errp, EEXIST, "'%s' exists and is not a socket", sv->ctl_path);
            return false;
        }
        unlink(sv->ctl_path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    mode_t old = umask(0177);
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(fd, 8) == 0;
    umask(old);
    if (!ok || fl_loop_add_fd(sv->loop, fd, EPOLLIN, on_ctl_listen, sv) < 0) {
        fl_error_setf_errno(errp, errno, "'%s': cannot listen", sv->ctl_path);
        if (fd >= 0) {
            close(fd);
        }
        return false;
    }
    sv->ctl_fd = fd;
    return true;
}

static void ctl_close(struct serve *sv)
{
    for (size_t i = 0; i < CTL_MAX_CLIENTS; i++) {
        if (sv->clients[i]) {
            ctl_client_free(sv->clients[i]);
        }
    }
    if (sv->ctl_fd >= 0) {
        fl_loop_del_fd(sv->loop, sv->ctl_fd);
        close(sv->ctl_fd);
        unlink(sv->ctl_path);
        sv->ctl_fd = -1;
    }
    free(sv->ctl_path);
    sv->ctl_path = NULL;
}
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
            if (!parse_link("--link", optarg, &links[n_links], &err)) {
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
        if (!link_spec_apply(nb, l, &err)) {
            fprintf(stderr, "faultline net serve: --link '%s': %s\n", l->text, err->msg);
            goto out;
        }
    }

    rc = CLI_EXIT_INFRA;
    sv.nb = nb;
    if (!ctl_listen(&sv, dir, &err)) {
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
        format_link(&links[i], &w);
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
    print_counters(nb, &counters);
    fputs(counters.data ? counters.data : "", stderr);
    fl_buf_free(&counters);
    rc = CLI_EXIT_OK;

out:
    if (loop) {
        ctl_close(&sv);
    }
    nb_destroy(nb);
    fl_loop_destroy(loop);
    fl_error_free(err);
    for (size_t i = 0; i < n_links; i++) {
        link_spec_clear(&links[i]);
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
            ctl_help);
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
