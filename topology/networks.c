/* networks: — each network's name, subnet (given, or the lowest free
 * 10.0.N.0/24), MTU and MAC learning. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topology/internal.h"
/* ------------------------------------------------------------------ */
/* networks:                                                           */
/* ------------------------------------------------------------------ */

static const char *const network_keys[] = {"subnet", "mtu", "learning", NULL};

bool tc_parse_ipv4(const char *s, uint32_t *out)
{
    unsigned a[4];
    int used = 0;
    if (sscanf(s, "%3u.%3u.%3u.%3u%n", &a[0], &a[1], &a[2], &a[3], &used) != 4 ||
        (size_t)used != strlen(s)) {
        return false;
    }
    for (int i = 0; i < 4; i++) {
        if (a[i] > 255) {
            return false;
        }
    }
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p) && *p != '.') {
            return false;
        }
    }
    *out = (a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3];
    return true;
}

uint32_t tc_prefix_mask(uint8_t len)
{
    return len ? ~(uint32_t)0 << (32 - len) : 0;
}

static bool parse_subnet(struct tc *c, const struct ty_node *n, uint32_t *net, uint8_t *len)
{
    const char *s;
    if (!tc_string(c, n, &s)) {
        return false;
    }
    const char *slash = strchr(s, '/');
    char *addr = slash ? fl_xstrndup(s, (size_t)(slash - s)) : NULL;
    uint32_t ip = 0;
    unsigned plen = 0;
    int used = 0;
    bool ok = addr && tc_parse_ipv4(addr, &ip) && sscanf(slash + 1, "%2u%n", &plen, &used) == 1 &&
              (size_t)used == strlen(slash + 1) && isdigit((unsigned char)slash[1]);
    free(addr);
    if (!ok) {
        tc_err_val(c, n, "is not a subnet: expected an IPv4 prefix A.B.C.D/LEN (e.g. 10.0.1.0/24)");
        return false;
    }
    if (plen < 8 || plen > 30) {
        tc_err_val(c, n,
                   "has a prefix length of /%u (valid: /8 to /30; a network needs room for "
                   "its nodes)",
                   plen);
        return false;
    }
    if (ip & ~tc_prefix_mask((uint8_t)plen)) {
        char buf[16];
        topo_format_ip(ip & tc_prefix_mask((uint8_t)plen), buf);
        tc_err_val(c, n, "has host bits set; did you mean '%s/%u'?", buf, plen);
        return false;
    }
    *net = ip;
    *len = (uint8_t)plen;
    return true;
}

static bool overlaps(uint32_t a, uint8_t al, uint32_t b, uint8_t bl)
{
    uint8_t l = al < bl ? al : bl;
    return (a & tc_prefix_mask(l)) == (b & tc_prefix_mask(l));
}

void tc_parse_networks(struct tc *c, const struct ty_node *n)
{
    struct topo_scenario *s = c->s;
    if (!n || ty_is_null(n)) {
        /* One network for everybody: the common case needs no words. */
        s->networks = fl_xcalloc(1, sizeof(*s->networks));
        s->n_networks = 1;
        s->networks[0].name = fl_xstrdup("lan");
        s->networks[0].subnet = 0x0a000100;
        s->networks[0].prefix_len = 24;
        s->networks[0].mtu = 1500;
        c->network_key_loc = fl_xcalloc(1, sizeof(struct topo_loc));
        return;
    }
    size_t m0;
    if (!tc_enter_section(c, n, "networks", TY_MAP,
                          "a mapping of network names to subnets "
                          "(e.g. {lan: 10.0.1.0/24, wan: {subnet: 192.168.0.0/24, mtu: 1400}})",
                          &m0)) {
        return;
    }
    if (n->n_pairs > TC_MAX_NETWORKS) {
        tc_err(c, n, "%zu networks is too many (at most %d)", n->n_pairs, TC_MAX_NETWORKS);
        tc_path_pop(c, m0);
        return;
    }
    s->networks = fl_xcalloc(n->n_pairs ? n->n_pairs : 1, sizeof(*s->networks));
    c->network_key_loc = fl_xcalloc(n->n_pairs ? n->n_pairs : 1, sizeof(struct topo_loc));
    bool *explicit_subnet = fl_xcalloc(n->n_pairs ? n->n_pairs : 1, sizeof(bool));
    struct tc_keyset names = {0};
    for (size_t i = 0; i < n->n_pairs; i++) {
        const struct ty_node *k = n->pairs[i].key, *v = n->pairs[i].value;
        size_t m = tc_path_keyn(c, k);
        if (!tc_name(c, k, 32, "network name")) {
            tc_path_pop(c, m);
            continue;
        }
        if (tc_defined_twice(c, &names, k)) {
            tc_path_pop(c, m);
            continue;
        }
        tc_define(&names, k);
        size_t idx = s->n_networks++;
        struct topo_network *net = &s->networks[idx];
        net->name = fl_xstrdup(k->str);
        net->index = (uint32_t)idx;
        net->mtu = 1500;
        net->loc = tc_loc(k);
        c->network_key_loc[idx] = tc_loc(k);
        const struct ty_node *sub = NULL;
        if (v->type == TY_SCALAR && !ty_is_null(v)) {
            sub = v;
        } else if (v->type == TY_MAP) {
            if (tc_check_map(c, v, network_keys, "a network")) {
                sub = ty_map_get(v, "subnet");
                const struct ty_node *mtu = ty_map_get(v, "mtu");
                if (mtu) {
                    size_t mm = tc_path_key(c, "mtu");
                    uint64_t u;
                    if (tc_size(c, mtu, &u)) {
                        if (u < 68 || u > 65535) {
                            tc_err_val(c, mtu, "is not an MTU (valid: 68..65535 bytes)");
                        } else {
                            net->mtu = (uint32_t)u;
                        }
                    }
                    tc_path_pop(c, mm);
                }
                const struct ty_node *learning = ty_map_get(v, "learning");
                if (learning) {
                    size_t ml = tc_path_key(c, "learning");
                    tc_bool(c, learning, &net->learning);
                    tc_path_pop(c, ml);
                }
            }
        } else if (!ty_is_null(v)) {
            tc_err_val(c, v,
                       "is not a network: give a subnet (10.0.1.0/24), a mapping "
                       "{subnet, mtu, learning}, or nothing for the default subnet");
        }
        if (sub) {
            size_t ms = v->type == TY_MAP ? tc_path_key(c, "subnet") : c->path.size;
            if (parse_subnet(c, sub, &net->subnet, &net->prefix_len)) {
                explicit_subnet[idx] = true;
                for (size_t j = 0; j < idx; j++) {
                    if (explicit_subnet[j] &&
                        overlaps(net->subnet, net->prefix_len, s->networks[j].subnet,
                                 s->networks[j].prefix_len)) {
                        char *see = tc_see(c, s->networks[j].loc);
                        tc_err_val(c, sub, "overlaps the subnet of network '%s' (at %s)",
                                   s->networks[j].name, see);
                        free(see);
                    }
                }
            }
            tc_path_pop(c, ms);
        }
        tc_path_pop(c, m);
    }
    /* Default subnets: the lowest free 10.0.N.0/24, N >= 1, in order. */
    uint32_t next = 1;
    for (size_t i = 0; i < s->n_networks; i++) {
        if (explicit_subnet[i]) {
            continue;
        }
        for (; next < 256; next++) {
            uint32_t cand = 0x0a000000 | (next << 8);
            bool clash = false;
            for (size_t j = 0; j < s->n_networks && !clash; j++) {
                bool assigned = explicit_subnet[j] || j < i;
                clash = assigned && s->networks[j].prefix_len &&
                        overlaps(cand, 24, s->networks[j].subnet, s->networks[j].prefix_len);
            }
            if (!clash) {
                break;
            }
        }
        if (next >= 256) {
            tc_err_loc(c, s->networks[i].loc.line, s->networks[i].loc.col,
                       "no free default subnet 10.0.N.0/24 is left; give this network a subnet");
            s->networks[i].subnet = 0x0a000000;
            s->networks[i].prefix_len = 24;
            continue;
        }
        s->networks[i].subnet = 0x0a000000 | (next << 8);
        s->networks[i].prefix_len = 24;
        next++;
    }
    free(explicit_subnet);
    tc_keyset_free(&names);
    if (!s->n_networks && n->n_pairs == 0) {
        tc_err(c, n,
               "no networks are defined; leave 'networks' out for one default network "
               "'lan'");
    }
    tc_path_pop(c, m0);
}
