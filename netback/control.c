/*
 * netback's control API: link parameters, partitions, counters.
 * Everything here runs between data-path events on the same loop, so a
 * change applies exactly from the next frame on.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "netback/internal.h"

static const struct impair_link_params perfect_link;

static int64_t find_node_id(const struct netback *nb, const char *name)
{
    for (size_t i = 0; i < nb->n_nodes; i++) {
        if (!strcmp(nb->nodes[i], name)) {
            return (int64_t)i;
        }
    }
    return -1;
}

static int64_t local_of(const struct nb_network *net, size_t node)
{
    for (size_t i = 0; i < net->n_nodes; i++) {
        if (net->nodes[i] == node) {
            return (int64_t)i;
        }
    }
    return -1;
}

static void list_nodes(const struct netback *nb, const struct nb_network *net, struct fl_buf *b)
{
    size_t n = net ? net->n_nodes : nb->n_nodes;
    for (size_t i = 0; i < n; i++) {
        fl_buf_printf(b, "%s'%s'", i ? ", " : "", nb->nodes[net ? net->nodes[i] : i]);
    }
    if (n == 0) {
        fl_buf_puts(b, "none");
    }
}

struct link_set {
    struct nb_link **links;
    size_t n, alloc;
};

static void set_add(struct link_set *s, struct nb_link *l)
{
    s->links = fl_xgrow(s->links, &s->alloc, s->n + 1, sizeof *s->links);
    s->links[s->n++] = l;
}

/* Every link matching (network, src, dst) with NULL wildcards; false with
 * a message naming the unknown value and the valid ones. */
static bool match_links(const struct netback *nb, const char *network, const char *src,
                        const char *dst, struct link_set *out, struct fl_error **errp)
{
    const struct nb_network *only = NULL;
    if (network) {
        for (size_t i = 0; i < nb->n_nets; i++) {
            if (!strcmp(nb->nets[i]->name, network)) {
                only = nb->nets[i];
            }
        }
        if (!only) {
            struct fl_buf known = {0};
            for (size_t i = 0; i < nb->n_nets; i++) {
                fl_buf_printf(&known, "%s'%s'", i ? ", " : "", nb->nets[i]->name);
            }
            fl_error_setf(errp, ENOENT, "unknown network '%s' (known: %s)", network,
                          known.data ? known.data : "none");
            fl_buf_free(&known);
            return false;
        }
    }
    const char *names[2] = {src, dst};
    int64_t ids[2] = {-1, -1};
    for (int k = 0; k < 2; k++) {
        if (!names[k]) {
            continue;
        }
        ids[k] = find_node_id(nb, names[k]);
        if (ids[k] < 0 || (only && local_of(only, (size_t)ids[k]) < 0)) {
            struct fl_buf known = {0};
            list_nodes(nb, only, &known);
            fl_error_setf(errp, ENOENT, "unknown %s node '%s'%s%s%s (known: %s)",
                          k == 0 ? "source" : "destination", names[k], only ? " on network '" : "",
                          only ? only->name : "", only ? "'" : "", known.data);
            fl_buf_free(&known);
            return false;
        }
    }
    for (size_t i = 0; i < nb->n_nets; i++) {
        const struct nb_network *net = nb->nets[i];
        if (only && net != only) {
            continue;
        }
        int64_t s = ids[0] >= 0 ? local_of(net, (size_t)ids[0]) : -1;
        int64_t d = ids[1] >= 0 ? local_of(net, (size_t)ids[1]) : -1;
        if ((ids[0] >= 0 && s < 0) || (ids[1] >= 0 && d < 0)) {
            continue;
        }
        for (size_t a = 0; a < net->n_nodes; a++) {
            if (s >= 0 && (size_t)s != a) {
                continue;
            }
            for (size_t b = 0; b < net->n_nodes; b++) {
                if (d >= 0 && (size_t)d != b) {
                    continue;
                }
                /* Wildcards mean "every other node": a node's link to
                 * itself (two NICs on one network) only when named. */
                if (a == b && (s < 0 || d < 0)) {
                    continue;
                }
                set_add(out, net->links[a * net->n_nodes + b]);
            }
        }
    }
    if (out->n == 0) {
        fl_error_setf(errp, ENOENT, "no link matches '%s' -> '%s' on %s%s%s%s", src ? src : "*",
                      dst ? dst : "*", network ? "network '" : "any network",
                      network ? network : "", network ? "'" : "",
                      src && dst ? " (the two nodes share no network)" : "");
        return false;
    }
    return true;
}

bool nb_link_set(struct netback *nb, const char *network, const char *src, const char *dst,
                 const struct impair_link_params *params, struct fl_error **errp)
{
    if (!params) {
        params = &perfect_link;
    }
    if (!impair_link_params_validate(params, errp)) {
        return false;
    }
    struct link_set set = {0};
    if (!match_links(nb, network, src, dst, &set, errp)) {
        free(set.links);
        return false;
    }
    /* Transaction: remember the old parameters, apply to all, roll back
     * the ones already changed if one fails. */
    struct impair_link_params *old = fl_xcalloc(set.n, sizeof *old);
    bool ok = true;
    size_t done = 0;
    for (; done < set.n; done++) {
        struct nb_link *l = set.links[done];
        impair_link_params_copy(&old[done], impair_link_params(l->il));
        if (!impair_link_set_params(l->il, params, errp)) {
            fl_error_prepend(errp, "link %s:%s->%s: ", l->net->name, nb->nodes[l->src],
                             nb->nodes[l->dst]);
            impair_link_params_clear(&old[done]);
            ok = false;
            break;
        }
    }
    bool impaired = !impair_link_params_equal(params, &perfect_link);
    for (size_t i = 0; i < done; i++) {
        struct nb_link *l = set.links[i];
        if (!ok) {
            impair_link_set_params(l->il, &old[i], NULL);
        } else {
            l->impaired = impaired;
        }
        impair_link_params_clear(&old[i]);
    }
    free(old);
    free(set.links);
    return ok;
}

bool nb_link_clear(struct netback *nb, const char *network, const char *src, const char *dst,
                   struct fl_error **errp)
{
    return nb_link_set(nb, network, src, dst, &perfect_link, errp);
}

bool nb_partition(struct netback *nb, const char *src, const char *dst, bool cut,
                  struct fl_error **errp)
{
    struct link_set set = {0};
    if (!match_links(nb, NULL, src, dst, &set, errp)) {
        free(set.links);
        return false;
    }
    for (size_t i = 0; i < set.n; i++) {
        set.links[i]->cut = cut;
    }
    free(set.links);
    return true;
}

static void set_all_cut(struct netback *nb, bool cut)
{
    for (size_t i = 0; i < nb->n_nets; i++) {
        struct nb_network *net = nb->nets[i];
        for (size_t k = 0; k < net->n_nodes * net->n_nodes; k++) {
            net->links[k]->cut = cut;
        }
    }
}

bool nb_partition_apply(struct netback *nb, const struct nb_cut *cuts, size_t n,
                        struct fl_error **errp)
{
    struct link_set set = {0};
    for (size_t i = 0; i < n; i++) {
        if (!match_links(nb, NULL, cuts[i].src, cuts[i].dst, &set, errp)) {
            fl_error_prepend(errp, "cut %zu: ", i);
            free(set.links);
            return false;
        }
    }
    set_all_cut(nb, false);
    for (size_t i = 0; i < set.n; i++) {
        set.links[i]->cut = true;
    }
    free(set.links);
    return true;
}

void nb_heal_all(struct netback *nb)
{
    set_all_cut(nb, false);
}

int nb_link_stats(const struct netback *nb, const char *network, const char *src, const char *dst,
                  struct nb_link_stats *out)
{
    if (!network || !src || !dst) {
        return -ENOENT;
    }
    struct link_set set = {0};
    if (!match_links(nb, network, src, dst, &set, NULL) || set.n != 1) {
        free(set.links);
        return -ENOENT;
    }
    *out = set.links[0]->stats;
    out->cut = set.links[0]->cut;
    free(set.links);
    return 0;
}

void nb_port_stats(const struct nb_port *port, struct nb_port_stats *out)
{
    *out = port->stats;
    out->connected = port->cls->connected(port);
    out->queued_bytes = 0;
    if (port->cls->stats) {
        port->cls->stats(port, out);
    }
}

void nb_link_foreach(const struct netback *nb, nb_link_visit_fn *fn, void *arg)
{
    for (size_t i = 0; i < nb->n_nets; i++) {
        const struct nb_network *net = nb->nets[i];
        for (size_t k = 0; k < net->n_nodes * net->n_nodes; k++) {
            const struct nb_link *l = net->links[k];
            struct nb_link_stats st = l->stats;
            st.cut = l->cut;
            fn(arg, net->name, nb->nodes[l->src], nb->nodes[l->dst], &st);
        }
    }
}

void nb_port_foreach(const struct netback *nb, nb_port_visit_fn *fn, void *arg)
{
    for (size_t i = 0; i < nb->n_nets; i++) {
        const struct nb_network *net = nb->nets[i];
        for (size_t k = 0; k < net->n_ports; k++) {
            const struct nb_port *p = net->ports[k];
            struct nb_port_stats st;
            nb_port_stats(p, &st);
            fn(arg, net->name, p->node_name, p->nic, p->cls->where(p), &st);
        }
    }
}
