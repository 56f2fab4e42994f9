/*
 * What the files of `faultline net` share:
 *
 *   cmd-net.c       the command: `net serve` (its options, the loop) and
 *                   `net ctl` (the control socket's client)
 *   net-links.c     links and partitions given as text ('n1<->n2: delay
 *                   20ms'), in impair's one selector grammar
 *   net-control.c   net serve's control socket (DIR/control.sock) and its
 *                   rate-limited stderr lines
 */
#ifndef FL_CLI_NET_H
#define FL_CLI_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "impair/impair.h"
#include "netback/netback.h"

#define NET_NAME "lan"

/* ---- net-links.c ---- */

struct link_spec {
    struct impair_selector sel; /* impair's one link-selector grammar */
    struct impair_link_params params;
    const char *text;
};

/* Parses the selector in text[0..len) ('*', a network, 'A->B', 'A<->B',
 * '*' for any node, optionally '@ NETWORK'); `what` and `whole` name the
 * value in messages. */
bool cli_net_parse_selector(const char *what, const char *whole, const char *text, size_t len,
                            struct impair_selector *out, struct fl_error **errp);
/* Parses --link's and the control socket's 'SEL: WORDS' (`what` names
 * the value in messages); out->text borrows text. */
bool cli_net_parse_link(const char *what, const char *text, struct link_spec *out,
                        struct fl_error **errp);
void cli_net_link_clear(struct link_spec *l);
/* Sets the impairment of every link l's selector names. */
bool cli_net_link_apply(struct netback *nb, const struct link_spec *l, struct fl_error **errp);
/* 'SEL: WORDS' as net serve prints it at start. */
void cli_net_link_format(const struct link_spec *l, struct fl_buf *out);
/* Cuts (cut) or heals the links s names. */
bool cli_net_partition_apply(struct netback *nb, const struct impair_selector *s, bool cut,
                             struct fl_error **errp);
/* Every port's and link's counters, a line each (`net ctl stats`, exit). */
void cli_net_print_counters(struct netback *nb, struct fl_buf *out);

/* ---- net-control.c ---- */

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

/* The requests the control socket takes, as `net ctl --help` lists them. */
extern const char cli_net_ctl_help[];
/* Listens on DIR/control.sock (0600) in sv->loop. */
bool cli_net_ctl_listen(struct serve *sv, const char *dir, struct fl_error **errp);
/* Closes every client and the socket, and removes it.  Idempotent. */
void cli_net_ctl_close(struct serve *sv);
/* Prints one stderr line through rl, with the count of lines it held back. */
void FL_PRINTF(2, 3) cli_net_say(struct fl_ratelimit *rl, const char *fmt, ...);

#endif /* FL_CLI_NET_H */
