/* nodes: — each node's resources, the networks it joins (its NICs),
 * its disks (disks.c), commands, environment and own image additions. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topology/internal.h"

#define DEFAULT_MEMORY (128ull << 20)
/* ------------------------------------------------------------------ */
/* nodes:                                                              */
/* ------------------------------------------------------------------ */

static const char *const node_keys[] = {"vcpus",   "memory", "networks", "disks",
                                        "command", "env",    "image",    NULL};
static const char *const nic_keys[] = {"ip", "mac", NULL};
static const char *const command_keys[] = {"run", "restart", NULL};

static void add_nic(struct tc *c, struct topo_node *node, int net, const struct ty_node *at,
                    const struct ty_node *cfg, struct nic_src **srcs)
{
    for (size_t i = 0; i < node->n_nics; i++) {
        if ((int)node->nics[i].network == net) {
            char *see = tc_see(c, node->nics[i].loc);
            tc_err_val(c, at, "is listed twice (first at %s)", see);
            free(see);
            return;
        }
    }
    node->nics = fl_xrealloc(node->nics, (node->n_nics + 1) * sizeof(*node->nics));
    *srcs = fl_xrealloc(*srcs, (node->n_nics + 1) * sizeof(**srcs));
    struct topo_nic *nic = &node->nics[node->n_nics];
    memset(nic, 0, sizeof(*nic));
    (*srcs)[node->n_nics].ipn = NULL;
    (*srcs)[node->n_nics].macn = NULL;
    nic->network = (uint32_t)net;
    snprintf(nic->ifname, sizeof(nic->ifname), "eth%zu", node->n_nics);
    nic->loc = tc_loc(at);
    if (cfg && !ty_is_null(cfg)) {
        if (tc_check_map(c, cfg, nic_keys, "a network attachment")) {
            (*srcs)[node->n_nics].ipn = ty_map_get(cfg, "ip");
            (*srcs)[node->n_nics].macn = ty_map_get(cfg, "mac");
        }
    }
    node->n_nics++;
}

static void parse_node_networks(struct tc *c, struct topo_node *node, const struct ty_node *n,
                                struct nic_src **srcs)
{
    if (!n) {
        /* Default: every network. */
        for (size_t i = 0; i < c->s->n_networks; i++) {
            add_nic(c, node, (int)i, NULL, NULL, srcs);
            node->nics[node->n_nics - 1].loc = node->loc;
        }
        return;
    }
    size_t m0 = tc_path_key(c, "networks");
    if (n->type == TY_SEQ) {
        for (size_t i = 0; i < n->n_items; i++) {
            size_t m = tc_path_index(c, i);
            const struct ty_node *it = n->items[i];
            if (it->type == TY_MAP && it->n_pairs == 1) {
                size_t mk = tc_path_keyn(c, it->pairs[0].key);
                int net = tc_network_ref(c, it->pairs[0].key);
                if (net >= 0) {
                    add_nic(c, node, net, it->pairs[0].key, it->pairs[0].value, srcs);
                }
                tc_path_pop(c, mk);
            } else {
                int net = tc_network_ref(c, it);
                if (net >= 0) {
                    add_nic(c, node, net, it, NULL, srcs);
                }
            }
            tc_path_pop(c, m);
        }
    } else if (n->type == TY_MAP) {
        for (size_t i = 0; i < n->n_pairs; i++) {
            size_t m = tc_path_keyn(c, n->pairs[i].key);
            int net = tc_network_ref(c, n->pairs[i].key);
            if (net >= 0) {
                add_nic(c, node, net, n->pairs[i].key, n->pairs[i].value, srcs);
            }
            tc_path_pop(c, m);
        }
    } else if (n->type == TY_SCALAR && !ty_is_null(n)) {
        int net = tc_network_ref(c, n);
        if (net >= 0) {
            add_nic(c, node, net, n, NULL, srcs);
        }
    } else {
        tc_err_val(c, n,
                   "is not a list of networks (e.g. [lan, wan] or "
                   "{lan: {ip: 10.0.1.10}})");
    }
    tc_path_pop(c, m0);
}

static void parse_command(struct tc *c, struct topo_node *node, const struct ty_node *n)
{
    const char *run = NULL;
    bool restart = false;
    if (n->type == TY_MAP) {
        if (!tc_check_map(c, n, command_keys, "a command")) {
            return;
        }
        const struct ty_node *r = ty_map_get(n, "run");
        if (!r) {
            tc_err(c, n, "a command needs 'run' (the shell command)");
            return;
        }
        size_t m = tc_path_key(c, "run");
        bool ok = tc_string(c, r, &run);
        tc_path_pop(c, m);
        const struct ty_node *rs = ty_map_get(n, "restart");
        if (rs) {
            m = tc_path_key(c, "restart");
            ok = tc_bool(c, rs, &restart) && ok;
            tc_path_pop(c, m);
        }
        if (!ok) {
            return;
        }
    } else if (!tc_string(c, n, &run)) {
        return;
    }
    node->commands = fl_xrealloc(node->commands, (node->n_commands + 1) * sizeof(*node->commands));
    struct topo_command *cmd = &node->commands[node->n_commands++];
    cmd->command = fl_xstrdup(run);
    cmd->restart = restart;
    cmd->loc = tc_loc(n);
}

static bool env_name(const char *s)
{
    if (!*s || !(isalpha((unsigned char)*s) || *s == '_')) {
        return false;
    }
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && *s != '_') {
            return false;
        }
    }
    return true;
}

/* Two disks of a node mounted at one place: each disk is reported with
 * every earlier disk of the same mount point, in declaration order. */
static void shared_mounts(struct tc *c, const struct topo_node *node)
{
    struct tc_keyset mounts = {0}; /* mount point -> the last disk mounted there */
    size_t *prev = fl_xcalloc(node->n_disks ? node->n_disks : 1, sizeof(*prev));
    size_t *earlier = fl_xcalloc(node->n_disks ? node->n_disks : 1, sizeof(*earlier));
    size_t *count = fl_xcalloc(node->n_disks ? node->n_disks : 1, sizeof(*count));
    for (size_t i = 0; i < node->n_disks; i++) {
        const struct topo_disk *d = &node->disks[i];
        if (!d->mount) {
            continue;
        }
        prev[i] = tc_keyset_put(&mounts, d->mount, strlen(d->mount), i);
        count[i] = prev[i] == TC_KEYSET_NONE ? 0 : count[prev[i]] + 1;
        if (c->n_diags >= TC_MAX_ERRORS) {
            c->n_dropped += count[i]; /* what tc_err_loc would drop, without the work */
            continue;
        }
        size_t n = 0;
        for (size_t j = prev[i]; j != TC_KEYSET_NONE; j = prev[j]) {
            earlier[n++] = j;
        }
        while (n > 0) {
            const struct topo_disk *o = &node->disks[earlier[--n]];
            char *see = tc_see(c, o->loc);
            size_t md = tc_path_key(c, d->name);
            tc_err_loc(c, d->loc.line, d->loc.col,
                       "mount point '%s' is also the mount point of disk '%s' (at %s)", d->mount,
                       o->name, see);
            tc_path_pop(c, md);
            free(see);
        }
    }
    free(count);
    free(earlier);
    free(prev);
    tc_keyset_free(&mounts);
}

void tc_parse_nodes(struct tc *c, const struct ty_node *n)
{
    struct topo_scenario *s = c->s;
    size_t m0 = tc_path_key(c, "nodes");
    if (!n || ty_is_null(n)) {
        tc_err(c, c->root,
               "no nodes are defined: a scenario needs 'nodes:' "
               "(e.g. nodes: {n1: {}, n2: {}})");
        tc_path_pop(c, m0);
        return;
    }
    if (n->type != TY_MAP) {
        tc_err_val(c, n, "is not a mapping of node names to nodes (e.g. {n1: {}, n2: {vcpus: 2}})");
        tc_path_pop(c, m0);
        return;
    }
    if (n->n_pairs > TC_MAX_NODES) {
        tc_err(c, n, "%zu nodes is too many (at most %d)", n->n_pairs, TC_MAX_NODES);
        tc_path_pop(c, m0);
        return;
    }
    if (!n->n_pairs) {
        tc_err(c, n, "no nodes are defined: a scenario needs at least one node");
    }
    s->nodes = fl_xcalloc(n->n_pairs ? n->n_pairs : 1, sizeof(*s->nodes));
    c->node_key_loc = fl_xcalloc(n->n_pairs ? n->n_pairs : 1, sizeof(struct topo_loc));
    c->nic_src = fl_xcalloc(n->n_pairs ? n->n_pairs : 1, sizeof(*c->nic_src));
    /* Names first, so nothing depends on the order of definitions. */
    const struct ty_node **vals = fl_xcalloc(n->n_pairs ? n->n_pairs : 1, sizeof(*vals));
    struct tc_keyset names = {0};
    for (size_t i = 0; i < n->n_pairs; i++) {
        const struct ty_node *k = n->pairs[i].key;
        size_t m = tc_path_keyn(c, k);
        bool ok = tc_name(c, k, 63, "node name") && !tc_defined_twice(c, &names, k);
        if (ok && (!strcmp(k->str, "all") || !strcmp(k->str, "random"))) {
            tc_err_val(c, k, "is a reserved word (in heal/partition); choose another node name");
            ok = false;
        }
        if (ok) {
            tc_define(&names, k);
            size_t idx = s->n_nodes++;
            s->nodes[idx].name = fl_xstrdup(k->str);
            s->nodes[idx].index = (uint32_t)idx;
            s->nodes[idx].loc = tc_loc(k);
            c->node_key_loc[idx] = tc_loc(k);
            vals[idx] = n->pairs[i].value;
        }
        tc_path_pop(c, m);
    }
    for (size_t idx = 0; idx < s->n_nodes; idx++) {
        struct topo_node *node = &s->nodes[idx];
        const struct ty_node *v = vals[idx];
        size_t m = tc_path_key(c, node->name);
        node->vcpus = 1;
        node->memory_bytes = DEFAULT_MEMORY;
        struct topo_image extra = {0};
        const struct ty_node *nets = NULL;
        if (v->type == TY_MAP && tc_check_map(c, v, node_keys, "a node")) {
            const struct ty_node *x;
            uint64_t u;
            if ((x = ty_map_get(v, "vcpus"))) {
                size_t mk = tc_path_key(c, "vcpus");
                if (tc_uint(c, x, 1, 64, &u)) {
                    node->vcpus = (uint32_t)u;
                }
                tc_path_pop(c, mk);
            }
            if ((x = ty_map_get(v, "memory"))) {
                size_t mk = tc_path_key(c, "memory");
                if (tc_size(c, x, &u)) {
                    if (u < (64ull << 20) || u > (64ull << 30) || u % (1ull << 20)) {
                        tc_err_val(c, x,
                                   "is not a guest memory size (valid: 64MiB..64GiB, whole MiB)");
                    } else {
                        node->memory_bytes = u;
                    }
                }
                tc_path_pop(c, mk);
            }
            nets = ty_map_get(v, "networks");
            if ((x = ty_map_get(v, "disks")) && !ty_is_null(x)) {
                size_t mk = tc_path_key(c, "disks");
                if (x->type != TY_MAP) {
                    tc_err_val(c, x,
                               "is not a mapping of disk names to disks "
                               "(e.g. {data: {size: 256MiB, mount: /data}})");
                } else {
                    node->disks = fl_xcalloc(x->n_pairs ? x->n_pairs : 1, sizeof(*node->disks));
                    struct tc_keyset disk_names = {0};
                    for (size_t i = 0; i < x->n_pairs; i++) {
                        const struct ty_node *dk = x->pairs[i].key;
                        size_t md = tc_path_keyn(c, dk);
                        if (tc_name(c, dk, 32, "disk name") &&
                            !tc_defined_twice(c, &disk_names, dk)) {
                            tc_define(&disk_names, dk);
                            tc_parse_disk(c, node, dk, x->pairs[i].value);
                        }
                        tc_path_pop(c, md);
                    }
                    tc_keyset_free(&disk_names);
                    shared_mounts(c, node);
                }
                tc_path_pop(c, mk);
            }
            if ((x = ty_map_get(v, "command")) && !ty_is_null(x)) {
                size_t mk = tc_path_key(c, "command");
                if (x->type == TY_SEQ) {
                    for (size_t i = 0; i < x->n_items; i++) {
                        size_t mi = tc_path_index(c, i);
                        parse_command(c, node, x->items[i]);
                        tc_path_pop(c, mi);
                    }
                } else {
                    parse_command(c, node, x);
                }
                tc_path_pop(c, mk);
            }
            if ((x = ty_map_get(v, "env")) && !ty_is_null(x)) {
                size_t mk = tc_path_key(c, "env");
                if (x->type != TY_MAP) {
                    tc_err_val(c, x,
                               "is not a mapping of variable names to values "
                               "(e.g. {ETCD_NAME: n1})");
                } else {
                    node->env = fl_xcalloc(x->n_pairs ? x->n_pairs : 1, sizeof(*node->env));
                    struct tc_keyset env_names = {0};
                    for (size_t i = 0; i < x->n_pairs; i++) {
                        const struct ty_node *ek = x->pairs[i].key, *ev = x->pairs[i].value;
                        size_t me = tc_path_keyn(c, ek);
                        if (ek->type != TY_SCALAR || !env_name(ek->str)) {
                            tc_err_val(c, ek,
                                       "is not an environment variable name "
                                       "([A-Za-z_][A-Za-z0-9_]*)");
                        } else if (ev->type != TY_SCALAR || strlen(ev->str) != ev->len) {
                            tc_err_val(c, ev,
                                       "is not an environment value (a single line of "
                                       "text)");
                        } else {
                            if (tc_keyset_add(&env_names, ek->str, ek->len, node->n_env) ==
                                node->n_env) {
                                node->env[node->n_env].name = fl_xstrdup(ek->str);
                                node->env[node->n_env].value =
                                    fl_xstrdup(ty_is_null(ev) ? "" : ev->str);
                                node->n_env++;
                            }
                        }
                        tc_path_pop(c, me);
                    }
                    tc_keyset_free(&env_names);
                }
                tc_path_pop(c, mk);
            }
            if ((x = ty_map_get(v, "image"))) {
                size_t mk = tc_path_key(c, "image");
                tc_parse_image(c, x, &extra);
                tc_path_pop(c, mk);
            }
        } else if (v->type != TY_MAP && !ty_is_null(v)) {
            tc_err_val(c, v,
                       "is not a node: give a mapping (vcpus, memory, networks, disks, "
                       "command, env, image) or nothing for the defaults");
        }
        parse_node_networks(c, node, nets, &c->nic_src[idx]);
        tc_merge_image(&node->image, &s->image, &extra);
        topo_image_clear(&extra);
        tc_path_pop(c, m);
    }
    free(vals);
    tc_keyset_free(&names);
    tc_path_pop(c, m0);
}
