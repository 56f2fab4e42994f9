/*
 * `faultline net serve`'s control socket, DIR/control.sock: one request a
 * connection, answered and closed; idle clients time out, a full table
 * evicts the oldest, and what a client can make net serve print is
 * escaped and rate-limited.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/net.h"

void FL_PRINTF(2, 3) cli_net_say(struct fl_ratelimit *rl, const char *fmt, ...)
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

/* ---- the control socket: DIR/control.sock ----
 *
 * One request per connection: a line (at most 4096 bytes) such as
 * "cut n1->n2", answered by zero or more lines of output and then "ok" or
 * "error: MESSAGE", after which the server closes the connection.  The
 * socket is 0600 in a 0700 directory: whoever can use it owns the fabric.
 * A client that sends nothing costs a slot (16), not the loop. */

const char cli_net_ctl_help[] =
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
        fl_buf_puts(out, cli_net_ctl_help);
        return true;
    }
    if (wl == 5 && !strncmp(w, "stats", 5)) {
        cli_net_print_counters(sv->nb, out);
        return true;
    }
    if (wl == 4 && !strncmp(w, "link", 4)) {
        struct link_spec l;
        if (!cli_net_parse_link("link", rest, &l, errp)) {
            return false;
        }
        bool ok = cli_net_link_apply(sv->nb, &l, errp);
        if (ok) {
            cli_net_link_format(&l, out);
            fl_buf_puts(out, "\n");
        }
        cli_net_link_clear(&l);
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
        if (!cli_net_parse_selector(cut ? "cut" : "heal", rest, rest, strlen(rest), &sel, errp)) {
            return false;
        }
        bool ok = cli_net_partition_apply(sv->nb, &sel, cut, errp);
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
    cli_net_say(&c->sv->rl_ctl, "net serve: control: %s\n", echo.data);
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

bool cli_net_ctl_listen(struct serve *sv, const char *dir, struct fl_error **errp)
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

void cli_net_ctl_close(struct serve *sv)
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
