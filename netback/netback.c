/*
 * netback setup: the netback, its networks (learning switches), ports and
 * links; names and lookups.  The data path is in port.c (the guest-socket
 * port kind), switch.c, delivery.c and capture.c (see internal.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netback/internal.h"

#define LOG_ROOM "netback"

/* ------------------------------------------------------------------ */
/* Names                                                               */
/* ------------------------------------------------------------------ */

const char *nb_disconnect_reason_name(enum nb_disconnect_reason reason)
{
    static const char *const names[] = {
#define NB_DISC_NAME(name, str) str,
        NB_DISCONNECT_REASONS(NB_DISC_NAME)
#undef NB_DISC_NAME
    };
    return (unsigned)reason < FL_ARRAY_LEN(names) ? names[reason] : "unknown";
}

const char *nb_drop_reason_name(enum nb_drop_reason reason)
{
    if (reason == NB_DROP_PORT_QUEUE_FULL) {
        return "port-queue"; /* the counter's label since before the lists were one */
    }
    return (unsigned)reason < NB_DROP__COUNT
               ? impair_drop_reason_name((enum impair_drop_reason)reason)
               : "unknown";
}

/* ------------------------------------------------------------------ */
/* Lookups                                                             */
/* ------------------------------------------------------------------ */

static struct nb_network *find_network(const struct netback *nb, const char *name)
{
    for (size_t i = 0; i < nb->n_nets; i++) {
        if (!strcmp(nb->nets[i]->name, name)) {
            return nb->nets[i];
        }
    }
    return NULL;
}

static int64_t find_node(const struct netback *nb, const char *name)
{
    for (size_t i = 0; i < nb->n_nodes; i++) {
        if (!strcmp(nb->nodes[i], name)) {
            return (int64_t)i;
        }
    }
    return -1;
}

/* Local index of node id on net, or -1. */
static int64_t net_local(const struct nb_network *net, size_t node)
{
    for (size_t i = 0; i < net->n_nodes; i++) {
        if (net->nodes[i] == node) {
            return (int64_t)i;
        }
    }
    return -1;
}

static void unknown_network(const struct netback *nb, const char *network, struct fl_error **errp)
{
    struct fl_buf known = {0};
    for (size_t i = 0; i < nb->n_nets; i++) {
        fl_buf_printf(&known, "%s'%s'", i ? ", " : "", nb->nets[i]->name);
    }
    fl_error_setf(errp, ENOENT, "unknown network '%s' (known: %s)", network ? network : "(null)",
                  known.data ? known.data : "none");
    fl_buf_free(&known);
}

struct nb_port *nb_port_find(struct netback *nb, const char *node, const char *nic)
{
    for (size_t n = 0; n < nb->n_nets; n++) {
        struct nb_network *net = nb->nets[n];
        for (size_t i = 0; i < net->n_ports; i++) {
            struct nb_port *p = net->ports[i];
            if (!strcmp(p->node_name, node) && !strcmp(p->nic, nic)) {
                return p;
            }
        }
    }
    return NULL;
}

bool nb_port_connected(const struct nb_port *port)
{
    return port->cls->connected(port);
}

bool nb_network_set_learning(struct netback *nb, const char *network, bool learning,
                             struct fl_error **errp)
{
    struct nb_network *net = network ? find_network(nb, network) : NULL;
    if (!net) {
        unknown_network(nb, network, errp);
        return false;
    }
    net->learning = learning;
    return true;
}

/* ------------------------------------------------------------------ */
/* Setup                                                               */
/* ------------------------------------------------------------------ */

struct netback *nb_create(struct fl_loop *loop, const struct nb_config *cfg, struct fl_error **errp)
{
    struct nb_config def = {0};
    if (!cfg) {
        cfg = &def;
    }
    if (cfg->pcap_dir && !fl_mkdir_p(cfg->pcap_dir, 0755, errp)) {
        fl_error_prepend(errp, "netback: pcap directory: ");
        return NULL;
    }
    struct netback *nb = fl_xcalloc(1, sizeof *nb);
    nb->loop = loop;
    nb->cfg = *cfg;
    nb->pcap_dir = cfg->pcap_dir ? fl_xstrdup(cfg->pcap_dir) : NULL;
    nb->cfg.pcap_dir = nb->pcap_dir;
    nb->trace = cfg->trace;
    if (!nb->cfg.port_queue_size) {
        nb->cfg.port_queue_size = NB_DEFAULT_PORT_QUEUE_SIZE;
    }
    if (nb->cfg.port_queue_size < NB_STREAM_HDR_SIZE + NB_FRAME_MAX) {
        /* Every valid frame must fit in an empty queue. */
        nb->cfg.port_queue_size = NB_STREAM_HDR_SIZE + NB_FRAME_MAX;
    }
    if (!nb->cfg.mac_aging_ns) {
        nb->cfg.mac_aging_ns = NB_DEFAULT_MAC_AGING_NS;
    }
    nb->spin_ns = cfg->spin_ns == 0 ? NB_DEFAULT_SPIN_NS : cfg->spin_ns;
    nb->lead_ns = nb->spin_ns > 0 ? FL_MIN(NB_INITIAL_LEAD_NS, nb->spin_ns) : 0;
    nb->spin_tokens = nb->spin_ns > 0 ? nb->spin_ns : 0;
    nb->spin_refill_at = fl_loop_now(loop);
    nb->rxbuf = fl_xmalloc(NB_READ_BUFFER_SIZE);
    nb->tq = impair_tq_create();
    nb->timer = fl_timer_create(loop, nb_on_timer, nb);
    nb->stall_ns = cfg->stall_ns == 0 ? NB_DEFAULT_STALL_NS : cfg->stall_ns;
    nb->stall_timer = fl_timer_create(loop, nb_on_stall_timer, nb);
    if (nb->pcap_dir) {
        nb->flush_timer = fl_timer_create(loop, nb_on_flush_timer, nb);
        fl_timer_arm_in(nb->flush_timer, NB_FLUSH_INTERVAL_NS);
    }
    nb->wall_offset_ns = fl_clock_real_ns() - fl_clock_mono_ns();
    nb->rl_malformed = (struct fl_ratelimit)FL_RATELIMIT_INIT(5 * FL_NS_PER_SEC, 5);
    nb->rl_info = (struct fl_ratelimit)FL_RATELIMIT_INIT(5 * FL_NS_PER_SEC, 20);
    nb->rl_spoofed = (struct fl_ratelimit)FL_RATELIMIT_INIT(5 * FL_NS_PER_SEC, 5);
    nb->rl_internal = (struct fl_ratelimit)FL_RATELIMIT_INIT(5 * FL_NS_PER_SEC, 5);
    return nb;
}

static void port_free(struct nb_port *p)
{
    struct trace_pcap *pcap = p->pcap;
    char *node = p->node_name, *nic = p->nic;
    p->cls->destroy(p); /* disconnects (logging the names), frees p */
    trace_pcap_destroy(pcap);
    free(node);
    free(nic);
}

void nb_destroy(struct netback *nb)
{
    if (!nb) {
        return;
    }
    nb->in_destroy = true;
    nb_delivery_shutdown(nb);
    impair_tq_destroy(nb->tq);
    fl_timer_destroy(nb->timer);
    fl_timer_destroy(nb->flush_timer);
    fl_timer_destroy(nb->stall_timer);
    for (size_t n = 0; n < nb->n_nets; n++) {
        struct nb_network *net = nb->nets[n];
        for (size_t i = 0; i < net->n_ports; i++) {
            port_free(net->ports[i]);
        }
        for (size_t i = 0; i < net->n_nodes * net->n_nodes; i++) {
            if (net->links[i]) {
                impair_link_destroy(net->links[i]->il);
                free(net->links[i]);
            }
        }
        nb_mactable_free(&net->macs);
        free(net->links);
        free(net->ports);
        free(net->nodes);
        free(net->name);
        free(net);
    }
    for (size_t i = 0; i < nb->n_nodes; i++) {
        free(nb->nodes[i]);
    }
    free(nb->nodes);
    free(nb->node_trace_ids);
    free(nb->nets);
    free(nb->rxbuf);
    free(nb->pcap_dir);
    free(nb);
}

bool nb_network_add(struct netback *nb, const char *name, struct fl_error **errp)
{
    if (!fl_name_check("network", name, NB_NAME_MAX, errp)) {
        return false;
    }
    if (find_network(nb, name)) {
        fl_error_setf(errp, EEXIST, "network '%s' already exists", name);
        return false;
    }
    struct nb_network *net = fl_xcalloc(1, sizeof *net);
    net->nb = nb;
    net->name = fl_xstrdup(name);
    nb_mactable_init(&net->macs, nb->cfg.mac_aging_ns);
    if (nb->trace) {
        net->trace_id = trace_network_id(nb->trace, name);
    }
    nb->nets = fl_xgrow(nb->nets, &nb->nets_alloc, nb->n_nets + 1, sizeof *nb->nets);
    nb->nets[nb->n_nets++] = net;
    return true;
}

static size_t node_intern(struct netback *nb, const char *name)
{
    int64_t id = find_node(nb, name);
    if (id >= 0) {
        return (size_t)id;
    }
    size_t alloc = nb->nodes_alloc;
    nb->nodes = fl_xgrow(nb->nodes, &nb->nodes_alloc, nb->n_nodes + 1, sizeof *nb->nodes);
    if (nb->nodes_alloc != alloc) {
        nb->node_trace_ids =
            fl_xrealloc(nb->node_trace_ids, nb->nodes_alloc * sizeof *nb->node_trace_ids);
    }
    nb->nodes[nb->n_nodes] = fl_xstrdup(name);
    nb->node_trace_ids[nb->n_nodes] = nb->trace ? trace_node_id(nb->trace, name) : 0;
    return nb->n_nodes++;
}

/* The impair stream id of a link: "<net>:<src>-><dst>". */
static struct nb_link *link_new(struct netback *nb, struct nb_network *net, size_t src, size_t dst)
{
    struct nb_link *l = fl_xcalloc(1, sizeof *l);
    l->net = net;
    l->src = src;
    l->dst = dst;
    char *id = fl_xasprintf("%s:%s->%s", net->name, nb->nodes[src], nb->nodes[dst]);
    static const struct impair_link_params perfect;
    l->il = impair_link_create(&perfect, nb->cfg.seed, impair_stream_id(id), NULL);
    free(id);
    if (!l->il) {
        /* A perfect link always validates; nothing else can fail here. */
        abort();
    }
    if (nb->trace) {
        l->trace_id = trace_link_id(nb->trace, net->trace_id, nb->node_trace_ids[src],
                                    nb->node_trace_ids[dst]);
    }
    return l;
}

/* Adds node to net (if not there yet) and creates its links both ways. */
static size_t net_add_node(struct netback *nb, struct nb_network *net, size_t node)
{
    int64_t have = net_local(net, node);
    if (have >= 0) {
        return (size_t)have;
    }
    size_t old_n = net->n_nodes, n = old_n + 1;
    struct nb_link **links = fl_xcalloc(n * n, sizeof *links);
    for (size_t s = 0; s < old_n; s++) {
        for (size_t d = 0; d < old_n; d++) {
            links[s * n + d] = net->links[s * old_n + d];
        }
    }
    net->nodes = fl_xgrow(net->nodes, &net->nodes_alloc, n, sizeof *net->nodes);
    net->nodes[old_n] = node;
    for (size_t o = 0; o < n; o++) {
        links[old_n * n + o] = link_new(nb, net, node, net->nodes[o]);
        if (o != old_n) {
            links[o * n + old_n] = link_new(nb, net, net->nodes[o], node);
        }
    }
    free(net->links);
    net->links = links;
    net->n_nodes = n;
    return old_n;
}

struct nb_port *nb_port_add(struct netback *nb, const char *network, const char *node,
                            const char *nic, const uint8_t *mac, const char *socket_path,
                            struct fl_error **errp)
{
    struct nb_network *net = network ? find_network(nb, network) : NULL;
    if (!net) {
        unknown_network(nb, network, errp);
        return NULL;
    }
    if (!fl_name_check("node", node, NB_NAME_MAX, errp) ||
        !fl_name_check("nic", nic, NB_NAME_MAX, errp)) {
        return NULL;
    }
    if (!socket_path || !*socket_path) {
        fl_error_setf(errp, EINVAL, "%s/%s: a socket path is required", node, nic);
        return NULL;
    }
    if (nb_port_find(nb, node, nic)) {
        fl_error_setf(errp, EEXIST, "NIC '%s' of node '%s' already exists", nic, node);
        return NULL;
    }
    struct nb_sock_port *sp = fl_xcalloc(1, sizeof *sp);
    struct nb_port *p = &sp->up;
    p->cls = &nb_guest_socket_class;
    p->nb = nb;
    p->net = net;
    if (!nb_sock_port_open(sp, socket_path, errp)) {
        fl_error_prepend(errp, "%s/%s: ", node, nic);
        free(sp);
        return NULL;
    }
    p->node_name = fl_xstrdup(node);
    p->nic = fl_xstrdup(nic);
    if (nb->pcap_dir) {
        char *path = fl_xasprintf("%s/%s-%s.pcap", nb->pcap_dir, node, nic);
        p->pcap = trace_pcap_create(path, errp);
        free(path);
        if (!p->pcap) {
            port_free(p);
            return NULL;
        }
    }
    p->node = node_intern(nb, node);
    p->local = net_add_node(nb, net, p->node);
    p->index = (uint32_t)net->n_ports;
    net->ports = fl_xgrow(net->ports, &net->ports_alloc, net->n_ports + 1, sizeof *net->ports);
    net->ports[net->n_ports++] = p;
    if (mac) {
        memcpy(p->mac, mac, 6);
        p->has_mac = p->mac_given = true;
        if (!nb_mac_is_group(mac)) {
            nb_mactable_learn(&net->macs, mac, p->index, fl_loop_now(nb->loop));
        }
    }
    if (nb->trace) {
        char macs[18] = "";
        if (mac) {
            snprintf(macs, sizeof macs, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
                     mac[3], mac[4], mac[5]);
        }
        p->trace_nic_id = trace_nic_id(nb->trace, nb->node_trace_ids[p->node], net->trace_id, nic,
                                       mac ? macs : NULL);
    }
    return p;
}
