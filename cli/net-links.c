/*
 * Links and partitions of `faultline net` given as text: --link and the
 * control socket's 'link', 'cut', 'heal' and 'isolate' take impair's one
 * link-selector grammar (impair_selector_parse) and apply it to netback;
 * and the counters `net ctl stats` prints.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/net.h"

/* The selector in text[0..len) ('*', a network, 'A->B', 'A<->B', with
 * '*' for any node and an optional '@ NETWORK'); `what` and `whole` name
 * the value in messages. */
bool cli_net_parse_selector(const char *what, const char *whole, const char *text, size_t len,
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
bool cli_net_parse_link(const char *what, const char *text, struct link_spec *out,
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
    if (!cli_net_parse_selector(what, text, text, (size_t)(colon - text), &out->sel, errp)) {
        return false;
    }
    if (!impair_link_params_parse_string(colon + 1, NULL, &out->params, errp)) {
        fl_error_prepend(errp, "%s '%s': ", what, text);
        impair_selector_clear(&out->sel);
        return false;
    }
    return true;
}

void cli_net_link_clear(struct link_spec *l)
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
bool cli_net_link_apply(struct netback *nb, const struct link_spec *l, struct fl_error **errp)
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

void cli_net_link_format(const struct link_spec *l, struct fl_buf *out)
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
bool cli_net_partition_apply(struct netback *nb, const struct impair_selector *s, bool cut,
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

void cli_net_print_counters(struct netback *nb, struct fl_buf *out)
{
    nb_port_foreach(nb, print_port, out);
    nb_link_foreach(nb, print_link, out);
}
