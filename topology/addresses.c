/* Address assignment, after networks and nodes: fixed IPs and MACs are
 * checked (inside the subnet, not network/broadcast, unique), then every
 * other NIC gets its default (docs/scenario-format.md, "Addressing
 * rules"), and every node's hosts table is filled. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topology/internal.h"

static bool parse_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    int used = 0;
    if (strlen(s) != 17 ||
        sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%n", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &used) !=
            6 ||
        used != 17) {
        return false;
    }
    for (int i = 0; i < 17; i++) {
        if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    for (int i = 0; i < 6; i++) {
        mac[i] = (uint8_t)v[i];
    }
    return true;
}
/* ------------------------------------------------------------------ */
/* Addresses                                                           */
/* ------------------------------------------------------------------ */

void tc_assign_addresses(struct tc *c)
{
    struct topo_scenario *s = c->s;
    /* MACs: fixed ones first (checked unique), then 52:54:00:NN:KK:II. */
    for (size_t k = 0; k < s->n_nodes; k++) {
        struct topo_node *node = &s->nodes[k];
        for (size_t i = 0; i < node->n_nics; i++) {
            struct topo_nic *nic = &node->nics[i];
            const struct ty_node *mn = c->nic_src ? c->nic_src[k][i].macn : NULL;
            if (mn) {
                size_t m0 = tc_path_key(c, "nodes");
                size_t m1 = tc_path_key(c, node->name);
                tc_path_key(c, "networks");
                tc_path_key(c, s->networks[nic->network].name);
                tc_path_key(c, "mac");
                const char *str;
                if (tc_string(c, mn, &str)) {
                    if (!parse_mac(str, nic->mac)) {
                        tc_err_val(c, mn, "is not a MAC address (e.g. 52:54:00:12:34:56)");
                    } else if (nic->mac[0] & 1) {
                        tc_err_val(c, mn,
                                   "is a multicast MAC address (the lowest bit of the "
                                   "first byte is set); a NIC needs a unicast address");
                    } else if (!memcmp(nic->mac, "\0\0\0\0\0\0", 6)) {
                        tc_err_val(c, mn, "is the zero MAC address");
                    } else {
                        nic->mac_fixed = true;
                    }
                }
                tc_path_pop(c, m1);
                tc_path_pop(c, m0);
            }
            if (!nic->mac_fixed) {
                uint8_t mac[6] = {0x52, 0x54, 0x00, (uint8_t)nic->network, (uint8_t)k, (uint8_t)i};
                memcpy(nic->mac, mac, 6);
            }
        }
    }
    /* Duplicate MACs anywhere are an error (auto ones cannot collide
     * among themselves; a fixed one may collide with anything). */
    for (size_t k = 0; k < s->n_nodes; k++) {
        for (size_t i = 0; i < s->nodes[k].n_nics; i++) {
            struct topo_nic *a = &s->nodes[k].nics[i];
            if (!a->mac_fixed) {
                continue;
            }
            for (size_t k2 = 0; k2 < s->n_nodes; k2++) {
                for (size_t i2 = 0; i2 < s->nodes[k2].n_nics; i2++) {
                    struct topo_nic *b = &s->nodes[k2].nics[i2];
                    if (a == b || memcmp(a->mac, b->mac, 6)) {
                        continue;
                    }
                    if (b->mac_fixed && (k2 > k || (k2 == k && i2 > i))) {
                        continue; /* reported from the other side */
                    }
                    char mac[18],
                        *see = tc_see(c, c->nic_src[k2][i2].macn ? tc_loc(c->nic_src[k2][i2].macn)
                                                                 : b->loc);
                    topo_format_mac(a->mac, mac);
                    size_t m0 = tc_path_key(c, "nodes");
                    tc_path_key(c, s->nodes[k].name);
                    tc_path_key(c, "networks");
                    tc_path_key(c, s->networks[a->network].name);
                    tc_path_key(c, "mac");
                    tc_err_val(c, c->nic_src[k][i].macn, "is also the MAC address of %s %s (at %s)",
                               s->nodes[k2].name, b->ifname, see);
                    tc_path_pop(c, m0);
                    free(see);
                }
            }
        }
    }
    /* IPs per network: fixed ones first, then node k gets host k+1 if
     * free, else the lowest free host address. */
    for (size_t w = 0; w < s->n_networks; w++) {
        struct topo_network *net = &s->networks[w];
        uint32_t mask = tc_prefix_mask(net->prefix_len);
        uint32_t hosts = ~mask; /* addresses 1..hosts-1 are usable */
        size_t attached = 0;
        for (size_t k = 0; k < s->n_nodes; k++) {
            for (size_t i = 0; i < s->nodes[k].n_nics; i++) {
                struct topo_nic *nic = &s->nodes[k].nics[i];
                if (nic->network != w) {
                    continue;
                }
                attached++;
                nic->prefix_len = net->prefix_len;
                const struct ty_node *in = c->nic_src ? c->nic_src[k][i].ipn : NULL;
                if (!in) {
                    continue;
                }
                size_t m0 = tc_path_key(c, "nodes");
                tc_path_key(c, s->nodes[k].name);
                tc_path_key(c, "networks");
                tc_path_key(c, net->name);
                tc_path_key(c, "ip");
                const char *str;
                uint32_t ip;
                if (tc_string(c, in, &str)) {
                    char sub[16];
                    topo_format_ip(net->subnet, sub);
                    if (!tc_parse_ipv4(str, &ip)) {
                        tc_err_val(c, in, "is not an IPv4 address (e.g. 10.0.1.10)");
                    } else if ((ip & mask) != net->subnet) {
                        tc_err_val(c, in, "is outside network '%s' (%s/%u)", net->name, sub,
                                   net->prefix_len);
                    } else if ((ip & ~mask) == 0 || (ip & ~mask) == hosts) {
                        tc_err_val(c, in, "is the %s address of %s/%u, not a host address",
                                   (ip & ~mask) == 0 ? "network" : "broadcast", sub,
                                   net->prefix_len);
                    } else {
                        bool dup = false;
                        for (size_t k2 = 0; k2 < k && !dup; k2++) {
                            for (size_t i2 = 0; i2 < s->nodes[k2].n_nics && !dup; i2++) {
                                struct topo_nic *o = &s->nodes[k2].nics[i2];
                                if (o->network == w && o->ip_fixed && o->ip == ip) {
                                    char *see = tc_see(c, tc_loc(c->nic_src[k2][i2].ipn));
                                    tc_err_val(c, in, "is also the address of %s on '%s' (at %s)",
                                               s->nodes[k2].name, net->name, see);
                                    free(see);
                                    dup = true;
                                }
                            }
                        }
                        if (!dup) {
                            nic->ip = ip;
                            nic->ip_fixed = true;
                        }
                    }
                }
                tc_path_pop(c, m0);
            }
        }
        if (attached > (size_t)hosts - 1) {
            char sub[16];
            topo_format_ip(net->subnet, sub);
            size_t m0 = tc_path_key(c, "networks");
            tc_path_key(c, net->name);
            tc_err_loc(c, net->loc.line, net->loc.col,
                       "subnet %s/%u has room for %u host addresses but %zu nodes are attached; "
                       "use a shorter prefix (e.g. /24)",
                       sub, net->prefix_len, hosts - 1, attached);
            tc_path_pop(c, m0);
            continue;
        }
        for (size_t k = 0; k < s->n_nodes; k++) {
            for (size_t i = 0; i < s->nodes[k].n_nics; i++) {
                struct topo_nic *nic = &s->nodes[k].nics[i];
                if (nic->network != w || nic->ip_fixed) {
                    continue;
                }
                /* Taken by anyone (fixed, or auto assigned earlier)? */
                uint32_t want = (uint32_t)k + 1;
                for (uint32_t tries = 0; tries < hosts; tries++) {
                    uint32_t h = want < hosts && want > 0 ? want : 1;
                    uint32_t cand = net->subnet | h;
                    bool taken = false;
                    for (size_t k2 = 0; k2 < s->n_nodes && !taken; k2++) {
                        for (size_t i2 = 0; i2 < s->nodes[k2].n_nics && !taken; i2++) {
                            struct topo_nic *o = &s->nodes[k2].nics[i2];
                            taken = o != nic && o->network == w && o->ip == cand;
                        }
                    }
                    if (!taken) {
                        nic->ip = cand;
                        break;
                    }
                    want = tries == 0 ? 1 : want + 1;
                }
            }
        }
    }
    if (c->nic_src) {
        for (size_t k = 0; k < s->n_nodes; k++) {
            free(c->nic_src[k]);
        }
        free(c->nic_src);
        c->nic_src = NULL;
    }
}
