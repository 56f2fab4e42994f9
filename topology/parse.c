/* The static part of the schema: run, image, networks, nodes (NICs,
 * disks, commands, env), addresses and links. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "topology/internal.h"

#define DEFAULT_DURATION_NS     (60 * FL_NS_PER_SEC)
#define DEFAULT_BOOT_TIMEOUT_NS (120 * FL_NS_PER_SEC)
#define DEFAULT_MEMORY          (128ull << 20)
#define DEFAULT_DISK_SIZE       (64ull << 20)
#define MAX_DURATION_NS         (24 * 3600 * FL_NS_PER_SEC)

/* ------------------------------------------------------------------ */
/* run:                                                                */
/* ------------------------------------------------------------------ */

static const char *const run_keys[] = {"name",     "description",  "seed",
                                       "duration", "boot-timeout", NULL};

void tc_parse_run(struct tc *c, const struct ty_node *n)
{
    struct topo_scenario *s = c->s;
    s->duration_ns = DEFAULT_DURATION_NS;
    s->boot_timeout_ns = DEFAULT_BOOT_TIMEOUT_NS;
    if (!n || ty_is_null(n)) {
        return;
    }
    size_t m0 = tc_path_key(c, "run");
    if (!tc_check_map(c, n, run_keys, "run")) {
        tc_path_pop(c, m0);
        return;
    }
    const struct ty_node *v;
    if ((v = ty_map_get(n, "name"))) {
        size_t m = tc_path_key(c, "name");
        if (tc_name(c, v, 64, "run name")) {
            free(s->name);
            s->name = fl_xstrdup(v->str);
        }
        tc_path_pop(c, m);
    }
    if ((v = ty_map_get(n, "description"))) {
        size_t m = tc_path_key(c, "description");
        const char *d;
        if (tc_string(c, v, &d)) {
            s->description = fl_xstrdup(d);
        }
        tc_path_pop(c, m);
    }
    if ((v = ty_map_get(n, "seed"))) {
        size_t m = tc_path_key(c, "seed");
        bool digits = v->type == TY_SCALAR && v->len > 0;
        if (digits) {
            const char *d = v->str;
            bool hex = d[0] == '0' && (d[1] == 'x' || d[1] == 'X');
            d += hex ? 2 : 0;
            digits = *d && strspn(d, hex ? "0123456789abcdefABCDEF" : "0123456789") == strlen(d);
        }
        if (v->type == TY_SCALAR && !strcmp(v->str, "random")) {
            /* drawn by the loader */
        } else if (!digits) {
            tc_err_val(c, v,
                       "is not a seed (valid: a whole number 0..18446744073709551615, or "
                       "random)");
        } else {
            uint64_t seed;
            if (tc_uint(c, v, 0, UINT64_MAX, &seed)) {
                s->seed = seed;
                s->seed_random = false;
            }
        }
        tc_path_pop(c, m);
    }
    if ((v = ty_map_get(n, "duration"))) {
        size_t m = tc_path_key(c, "duration");
        int64_t d;
        if (tc_duration(c, v, &d)) {
            if (d <= 0 || d > MAX_DURATION_NS) {
                tc_err_val(c, v, "is not a run duration (valid: more than 0s, at most 24h)");
            } else {
                s->duration_ns = d;
            }
        }
        tc_path_pop(c, m);
    }
    if ((v = ty_map_get(n, "boot-timeout"))) {
        size_t m = tc_path_key(c, "boot-timeout");
        int64_t d;
        if (tc_duration(c, v, &d)) {
            if (d < FL_NS_PER_SEC || d > 3600 * FL_NS_PER_SEC) {
                tc_err_val(c, v, "is not a boot timeout (valid: 1s..1h)");
            } else {
                s->boot_timeout_ns = d;
            }
        }
        tc_path_pop(c, m);
    }
    tc_path_pop(c, m0);
}

/* ------------------------------------------------------------------ */
/* image:                                                              */
/* ------------------------------------------------------------------ */

static const char *const image_keys[] = {"packages", "files", NULL};
static const char *const file_keys[] = {"src", "dst", NULL};

static bool debian_package_name(const char *s)
{
    /* Debian policy 5.6.1: [a-z0-9][a-z0-9+.-]+ */
    size_t len = strlen(s);
    if (len < 2 || len > 128 || !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0]))) {
        return false;
    }
    for (size_t i = 1; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!islower(ch) && !isdigit(ch) && ch != '+' && ch != '.' && ch != '-') {
            return false;
        }
    }
    return true;
}

static bool guest_path(const char *s)
{
    if (s[0] != '/' || strlen(s) > 4096) {
        return false;
    }
    /* No ".." component: files land inside the image. */
    for (const char *p = s; (p = strstr(p, "..")); p += 2) {
        bool start = p == s || p[-1] == '/';
        bool end = p[2] == '\0' || p[2] == '/';
        if (start && end) {
            return false;
        }
    }
    return true;
}

static void add_file(struct tc *c, struct topo_image *img, const struct ty_node *at,
                     const struct ty_node *srcn, const char *src, const struct ty_node *dstn,
                     const char *dst)
{
    bool ok = true;
    if (!guest_path(dst)) {
        tc_err(c, dstn,
               "guest path '%s' is not absolute (or contains '..'): files are copied to an "
               "absolute path in the guest, e.g. /usr/local/bin/app",
               dst);
        ok = false;
    }
    char *abs = tc_host_path(c, srcn, src, true);
    if (!abs || !ok) {
        free(abs);
        return;
    }
    for (size_t i = 0; i < img->n_files; i++) {
        if (!strcmp(img->files[i].dst, dst)) {
            char *see = tc_see(c, img->files[i].loc);
            tc_err(c, dstn, "guest path '%s' is the destination of two files (other at %s)", dst,
                   see);
            free(see);
            free(abs);
            return;
        }
    }
    img->files = fl_xrealloc(img->files, (img->n_files + 1) * sizeof(*img->files));
    struct topo_file_copy *f = &img->files[img->n_files++];
    f->src = abs;
    f->dst = fl_xstrdup(dst);
    f->loc = tc_loc(at);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void tc_parse_image(struct tc *c, const struct ty_node *n, struct topo_image *img)
{
    if (!n || ty_is_null(n)) {
        return;
    }
    if (!tc_check_map(c, n, image_keys, "image")) {
        return;
    }
    const struct ty_node *pk = ty_map_get(n, "packages");
    if (pk && !ty_is_null(pk)) {
        size_t m = tc_path_key(c, "packages");
        if (pk->type != TY_SEQ) {
            tc_err_val(c, pk, "is not a list of Debian package names (e.g. [etcd-server])");
        } else {
            for (size_t i = 0; i < pk->n_items; i++) {
                size_t mi = tc_path_index(c, i);
                const char *name;
                if (tc_string(c, pk->items[i], &name)) {
                    if (!debian_package_name(name)) {
                        tc_err_val(c, pk->items[i],
                                   "is not a Debian package name (lower case letters, digits, "
                                   "'+', '-', '.'; e.g. etcd-server)");
                    } else {
                        bool dup = false;
                        for (size_t j = 0; j < img->n_packages && !dup; j++) {
                            dup = !strcmp(img->packages[j], name);
                        }
                        if (!dup) {
                            img->packages =
                                fl_xrealloc(img->packages, (img->n_packages + 1) * sizeof(char *));
                            img->packages[img->n_packages++] = fl_xstrdup(name);
                        }
                    }
                }
                tc_path_pop(c, mi);
            }
        }
        tc_path_pop(c, m);
    }
    const struct ty_node *fk = ty_map_get(n, "files");
    if (fk && !ty_is_null(fk)) {
        size_t m = tc_path_key(c, "files");
        if (fk->type != TY_SEQ) {
            tc_err_val(c, fk, "is not a list of files (e.g. ['./app:/usr/local/bin/app'])");
        } else {
            for (size_t i = 0; i < fk->n_items; i++) {
                size_t mi = tc_path_index(c, i);
                const struct ty_node *it = fk->items[i];
                if (it->type == TY_SCALAR && !ty_is_null(it)) {
                    const char *colon = strstr(it->str, ":/");
                    const char *last = colon;
                    while (last && (colon = strstr(last + 1, ":/"))) {
                        last = colon;
                    }
                    if (!last || last == it->str || strlen(it->str) != it->len) {
                        tc_err_val(c, it,
                                   "is not 'HOST_PATH:GUEST_PATH' (e.g. ./app:/usr/local/bin/app)");
                    } else {
                        char *src = fl_xstrndup(it->str, (size_t)(last - it->str));
                        add_file(c, img, it, it, src, it, last + 1);
                        free(src);
                    }
                } else if (tc_check_map(c, it, file_keys, "a file copy")) {
                    const struct ty_node *sn = ty_map_get(it, "src");
                    const struct ty_node *dn = ty_map_get(it, "dst");
                    const char *src, *dst;
                    if (!sn || !dn) {
                        tc_err(c, it, "a file copy needs 'src' (host path) and 'dst' (guest path)");
                    } else {
                        size_t ms = tc_path_key(c, "src");
                        bool ok = tc_string(c, sn, &src);
                        tc_path_pop(c, ms);
                        ms = tc_path_key(c, "dst");
                        ok = tc_string(c, dn, &dst) && ok;
                        if (ok) {
                            add_file(c, img, it, sn, src, dn, dst);
                        }
                        tc_path_pop(c, ms);
                    }
                }
                tc_path_pop(c, mi);
            }
        }
        tc_path_pop(c, m);
    }
    if (img->n_packages) {
        qsort(img->packages, img->n_packages, sizeof(char *), cmp_str);
    }
}

/* ------------------------------------------------------------------ */
/* networks:                                                           */
/* ------------------------------------------------------------------ */

static const char *const network_keys[] = {"subnet", "mtu", "learning", NULL};

static bool parse_ipv4(const char *s, uint32_t *out)
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

static uint32_t prefix_mask(uint8_t len)
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
    bool ok = addr && parse_ipv4(addr, &ip) && sscanf(slash + 1, "%2u%n", &plen, &used) == 1 &&
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
    if (ip & ~prefix_mask((uint8_t)plen)) {
        char buf[16];
        topo_format_ip(ip & prefix_mask((uint8_t)plen), buf);
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
    return (a & prefix_mask(l)) == (b & prefix_mask(l));
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
    s->networks = fl_xcalloc(n->n_pairs ? n->n_pairs : 1, sizeof(*s->networks));
    c->network_key_loc = fl_xcalloc(n->n_pairs ? n->n_pairs : 1, sizeof(struct topo_loc));
    bool *explicit_subnet = fl_xcalloc(n->n_pairs ? n->n_pairs : 1, sizeof(bool));
    for (size_t i = 0; i < n->n_pairs; i++) {
        const struct ty_node *k = n->pairs[i].key, *v = n->pairs[i].value;
        size_t m = tc_path_keyn(c, k);
        if (!tc_name(c, k, 32, "network name")) {
            tc_path_pop(c, m);
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < s->n_networks && !dup; j++) {
            if (!strcmp(s->networks[j].name, k->str)) {
                char *see = tc_see(c, c->network_key_loc[j]);
                tc_err_val(c, k, "is defined twice (first at %s)", see);
                free(see);
                dup = true;
            }
        }
        if (dup) {
            tc_path_pop(c, m);
            continue;
        }
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
    if (!s->n_networks && n->n_pairs == 0) {
        tc_err(c, n,
               "no networks are defined; leave 'networks' out for one default network "
               "'lan'");
    }
    tc_path_pop(c, m0);
}

/* ------------------------------------------------------------------ */
/* nodes:                                                              */
/* ------------------------------------------------------------------ */

static const char *const node_keys[] = {"vcpus",   "memory", "networks", "disks",
                                        "command", "env",    "image",    NULL};
static const char *const nic_keys[] = {"ip", "mac", NULL};
static const char *const disk_keys[] = {"size",     "base",  "cache",  "cache-size", "crash-policy",
                                        "capacity", "mount", "format", "faults",     NULL};
static const char *const command_keys[] = {"run", "restart", NULL};

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

static void parse_disk(struct tc *c, struct topo_node *node, const struct ty_node *k,
                       const struct ty_node *v)
{
    struct topo_disk *d = &node->disks[node->n_disks];
    memset(d, 0, sizeof(*d));
    d->name = fl_xstrdup(k->str);
    d->index = (uint32_t)node->n_disks;
    d->size_bytes = DEFAULT_DISK_SIZE;
    d->cache = TOPO_DISK_CACHE_WRITEBACK;
    d->crash_policy = TOPO_CRASH_LOSE_UNFLUSHED;
    d->mount = fl_xasprintf("/mnt/%s", k->str);
    d->format = true;
    d->loc = tc_loc(k);
    node->n_disks++;
    const struct ty_node *size = NULL, *crash = NULL, *cache = NULL;
    if (v->type == TY_SCALAR && !ty_is_null(v)) {
        size = v;
    } else if (v->type == TY_MAP) {
        if (!tc_check_map(c, v, disk_keys, "a disk")) {
            return;
        }
        size = ty_map_get(v, "size");
        const struct ty_node *x;
        if ((x = ty_map_get(v, "base"))) {
            size_t m = tc_path_key(c, "base");
            const char *p;
            if (tc_string(c, x, &p)) {
                d->base_image = tc_host_path(c, x, p, false);
                if (d->base_image && !size) {
                    struct stat st;
                    if (stat(d->base_image, &st) == 0) {
                        d->size_bytes = (uint64_t)st.st_size;
                        if (d->size_bytes % 512) {
                            tc_err_val(c, x,
                                       "is %llu bytes, not a multiple of 512: a disk image is "
                                       "made of 512-byte sectors",
                                       (unsigned long long)d->size_bytes);
                        }
                    }
                }
            }
            tc_path_pop(c, m);
        }
        if ((x = ty_map_get(v, "cache"))) {
            size_t m = tc_path_key(c, "cache");
            static const char *const names[] = {
#define N(name, str) str,
                TOPO_DISK_CACHES(N)
#undef N
            };
            int e;
            if (tc_enum(c, x, names, FL_ARRAY_LEN(names), &e)) {
                d->cache = (enum topo_disk_cache)e;
                cache = x;
            }
            tc_path_pop(c, m);
        }
        if ((x = ty_map_get(v, "crash-policy"))) {
            size_t m = tc_path_key(c, "crash-policy");
            static const char *const names[] = {
#define N(name, str) str,
                TOPO_CRASH_POLICIES(N)
#undef N
            };
            int e;
            if (tc_enum(c, x, names, FL_ARRAY_LEN(names), &e)) {
                d->crash_policy = (enum topo_crash_policy)e;
                crash = x;
            }
            tc_path_pop(c, m);
        }
        if ((x = ty_map_get(v, "cache-size"))) {
            size_t m = tc_path_key(c, "cache-size");
            tc_size(c, x, &d->cache_limit_bytes);
            tc_path_pop(c, m);
        }
        if ((x = ty_map_get(v, "capacity"))) {
            size_t m = tc_path_key(c, "capacity");
            tc_size(c, x, &d->capacity_bytes);
            tc_path_pop(c, m);
        }
        if ((x = ty_map_get(v, "mount"))) {
            size_t m = tc_path_key(c, "mount");
            const char *p;
            if (x->type == TY_SCALAR && (!strcmp(x->str, "none") || !strcmp(x->str, "false"))) {
                free(d->mount);
                d->mount = NULL;
                d->format = false;
            } else if (tc_string(c, x, &p)) {
                if (!guest_path(p) || !strcmp(p, "/")) {
                    tc_err_val(c, x,
                               "is not a mount point (valid: an absolute guest path other than "
                               "'/', e.g. /data; or none)");
                } else {
                    free(d->mount);
                    d->mount = fl_xstrdup(p);
                }
            }
            tc_path_pop(c, m);
        }
        if ((x = ty_map_get(v, "format"))) {
            size_t m = tc_path_key(c, "format");
            bool b;
            if (tc_bool(c, x, &b)) {
                if (b && !d->mount) {
                    tc_err(c, x, "format: true needs a mount point (mount is none)");
                }
                d->format = b && d->mount;
            }
            tc_path_pop(c, m);
        }
        if ((x = ty_map_get(v, "faults"))) {
            size_t m = tc_path_key(c, "faults");
            struct tc_disk_settings settings;
            if (tc_disk_settings(c, x, NULL, &settings)) {
                tc_disk_apply(&d->faults, &settings);
                struct fl_error *e = NULL;
                if (!impair_disk_params_validate(&d->faults, &e)) {
                    tc_err(c, x, "%s", e->msg);
                    fl_error_free(e);
                }
            }
            impair_disk_params_clear(&settings.p);
            tc_path_pop(c, m);
        }
    } else if (!ty_is_null(v)) {
        tc_err_val(c, v,
                   "is not a disk: give a size (1GiB), a mapping {size, base, mount, "
                   "crash-policy, faults, ...}, or nothing for the defaults");
        return;
    }
    if (size) {
        size_t m = v->type == TY_MAP ? tc_path_key(c, "size") : c->path.size;
        uint64_t sz;
        if (tc_size(c, size, &sz)) {
            if (sz < (1ull << 20) || sz > (1ull << 42) || sz % 512) {
                tc_err_val(c, size, "is not a disk size (valid: 1MiB..4TiB, a multiple of 512)");
            } else {
                d->size_bytes = sz;
            }
        }
        tc_path_pop(c, m);
    }
    if (d->capacity_bytes > d->size_bytes) {
        tc_err(c, ty_map_get(v, "capacity"),
               "capacity %llu bytes is larger than the disk (%llu bytes): it would never be "
               "reached",
               (unsigned long long)d->capacity_bytes, (unsigned long long)d->size_bytes);
    }
    if (d->cache == TOPO_DISK_CACHE_WRITETHROUGH) {
        if (crash && d->crash_policy != TOPO_CRASH_KEEP) {
            char *see = tc_see(c, tc_loc(cache));
            size_t m = tc_path_key(c, "crash-policy");
            tc_err_val(c, crash,
                       "contradicts cache: writethrough (at %s): a write-through disk has no "
                       "unflushed writes to lose (valid with writethrough: keep)",
                       see);
            tc_path_pop(c, m);
            free(see);
        }
        d->crash_policy = TOPO_CRASH_KEEP;
    }
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

static void merge_image(struct topo_image *dst, const struct topo_image *base,
                        const struct topo_image *extra)
{
    size_t np = base->n_packages + extra->n_packages;
    dst->packages = fl_xcalloc(np ? np : 1, sizeof(char *));
    for (size_t i = 0; i < base->n_packages; i++) {
        dst->packages[dst->n_packages++] = fl_xstrdup(base->packages[i]);
    }
    for (size_t i = 0; i < extra->n_packages; i++) {
        bool dup = false;
        for (size_t j = 0; j < base->n_packages && !dup; j++) {
            dup = !strcmp(base->packages[j], extra->packages[i]);
        }
        if (!dup) {
            dst->packages[dst->n_packages++] = fl_xstrdup(extra->packages[i]);
        }
    }
    if (dst->n_packages) {
        qsort(dst->packages, dst->n_packages, sizeof(char *), cmp_str);
    }
    size_t nf = base->n_files + extra->n_files;
    dst->files = fl_xcalloc(nf ? nf : 1, sizeof(*dst->files));
    for (size_t i = 0; i < base->n_files; i++) {
        bool overridden = false;
        for (size_t j = 0; j < extra->n_files && !overridden; j++) {
            overridden = !strcmp(extra->files[j].dst, base->files[i].dst);
        }
        if (overridden) {
            continue; /* a node's own file at the same guest path wins */
        }
        dst->files[dst->n_files].src = fl_xstrdup(base->files[i].src);
        dst->files[dst->n_files].dst = fl_xstrdup(base->files[i].dst);
        dst->files[dst->n_files].loc = base->files[i].loc;
        dst->n_files++;
    }
    for (size_t i = 0; i < extra->n_files; i++) {
        dst->files[dst->n_files].src = fl_xstrdup(extra->files[i].src);
        dst->files[dst->n_files].dst = fl_xstrdup(extra->files[i].dst);
        dst->files[dst->n_files].loc = extra->files[i].loc;
        dst->n_files++;
    }
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
    for (size_t i = 0; i < n->n_pairs; i++) {
        const struct ty_node *k = n->pairs[i].key;
        size_t m = tc_path_keyn(c, k);
        bool ok = tc_name(c, k, 63, "node name");
        for (size_t j = 0; ok && j < s->n_nodes; j++) {
            if (!strcmp(s->nodes[j].name, k->str)) {
                char *see = tc_see(c, c->node_key_loc[j]);
                tc_err_val(c, k, "is defined twice (first at %s)", see);
                free(see);
                ok = false;
            }
        }
        if (ok && (!strcmp(k->str, "all") || !strcmp(k->str, "random"))) {
            tc_err_val(c, k, "is a reserved word (in heal/partition); choose another node name");
            ok = false;
        }
        if (ok) {
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
                    for (size_t i = 0; i < x->n_pairs; i++) {
                        const struct ty_node *dk = x->pairs[i].key;
                        size_t md = tc_path_keyn(c, dk);
                        bool ok = tc_name(c, dk, 32, "disk name");
                        for (size_t j = 0; ok && j < node->n_disks; j++) {
                            if (!strcmp(node->disks[j].name, dk->str)) {
                                char *see = tc_see(c, node->disks[j].loc);
                                tc_err_val(c, dk, "is defined twice (first at %s)", see);
                                free(see);
                                ok = false;
                            }
                        }
                        if (ok) {
                            parse_disk(c, node, dk, x->pairs[i].value);
                        }
                        tc_path_pop(c, md);
                    }
                    for (size_t i = 0; i < node->n_disks; i++) {
                        for (size_t j = 0; j < i; j++) {
                            if (node->disks[i].mount && node->disks[j].mount &&
                                !strcmp(node->disks[i].mount, node->disks[j].mount)) {
                                char *see = tc_see(c, node->disks[j].loc);
                                size_t md = tc_path_key(c, node->disks[i].name);
                                tc_err_loc(c, node->disks[i].loc.line, node->disks[i].loc.col,
                                           "mount point '%s' is also the mount point of disk "
                                           "'%s' (at %s)",
                                           node->disks[i].mount, node->disks[j].name, see);
                                tc_path_pop(c, md);
                                free(see);
                            }
                        }
                    }
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
                            bool dup = false;
                            for (size_t j = 0; j < node->n_env && !dup; j++) {
                                dup = !strcmp(node->env[j].name, ek->str);
                            }
                            if (!dup) {
                                node->env[node->n_env].name = fl_xstrdup(ek->str);
                                node->env[node->n_env].value =
                                    fl_xstrdup(ty_is_null(ev) ? "" : ev->str);
                                node->n_env++;
                            }
                        }
                        tc_path_pop(c, me);
                    }
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
        merge_image(&node->image, &s->image, &extra);
        topo_image_clear(&extra);
        tc_path_pop(c, m);
    }
    free(vals);
    tc_path_pop(c, m0);
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
        uint32_t mask = prefix_mask(net->prefix_len);
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
                    if (!parse_ipv4(str, &ip)) {
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

/* ------------------------------------------------------------------ */
/* links:                                                              */
/* ------------------------------------------------------------------ */

struct link_entry {
    struct tc_selector sel;
    struct tc_link_settings set;
    const struct ty_node *key;
    bool ok;
};

static int cmp_entry_rank(const void *a, const void *b)
{
    const struct link_entry *x = a, *y = b;
    if (x->sel.rank != y->sel.rank) {
        return x->sel.rank - y->sel.rank;
    }
    return x->key->line != y->key->line ? (int)x->key->line - (int)y->key->line
                                        : (int)x->key->col - (int)y->key->col;
}

void tc_build_links(struct tc *c, const struct ty_node *links)
{
    struct topo_scenario *s = c->s;
    size_t total = 0;
    for (size_t w = 0; w < s->n_networks; w++) {
        size_t k = 0;
        for (size_t i = 0; i < s->n_nodes; i++) {
            for (size_t j = 0; j < s->nodes[i].n_nics; j++) {
                k += s->nodes[i].nics[j].network == w;
            }
        }
        s->networks[w].nodes = fl_xcalloc(k ? k : 1, sizeof(uint32_t));
        for (size_t i = 0; i < s->n_nodes; i++) {
            for (size_t j = 0; j < s->nodes[i].n_nics; j++) {
                if (s->nodes[i].nics[j].network == w) {
                    s->networks[w].nodes[s->networks[w].n_nodes++] = (uint32_t)i;
                }
            }
        }
        total += k * (k ? k - 1 : 0);
    }
    s->links = fl_xcalloc(total ? total : 1, sizeof(*s->links));
    for (size_t w = 0; w < s->n_networks; w++) {
        const struct topo_network *net = &s->networks[w];
        for (size_t a = 0; a < net->n_nodes; a++) {
            for (size_t b = 0; b < net->n_nodes; b++) {
                if (a == b) {
                    continue;
                }
                struct topo_link *l = &s->links[s->n_links++];
                l->network = (uint32_t)w;
                l->src = net->nodes[a];
                l->dst = net->nodes[b];
                l->name = fl_xasprintf("%s:%s->%s", net->name, s->nodes[l->src].name,
                                       s->nodes[l->dst].name);
            }
        }
    }
    if (!links || ty_is_null(links)) {
        return;
    }
    size_t m0;
    if (!tc_enter_section(c, links, "links", TY_MAP,
                          "a mapping of link selectors to parameters "
                          "(e.g. {lan: {delay: 1ms}, \"n1 -> n2\": {loss: 5%}})",
                          &m0)) {
        return;
    }
    struct link_entry *ents = fl_xcalloc(links->n_pairs ? links->n_pairs : 1, sizeof(*ents));
    size_t n_ents = 0;
    for (size_t i = 0; i < links->n_pairs; i++) {
        const struct ty_node *k = links->pairs[i].key, *v = links->pairs[i].value;
        size_t m = tc_path_keyn(c, k);
        struct link_entry *e = &ents[n_ents];
        memset(e, 0, sizeof(*e));
        e->key = k;
        bool ok = tc_selector(c, k, &e->sel);
        ok = tc_link_settings(c, v, &e->set) && ok;
        if (!ok) {
            free(e->sel.text);
            impair_link_params_clear(&e->set.p);
        } else {
            n_ents++;
        }
        tc_path_pop(c, m);
    }
    qsort(ents, n_ents, sizeof(*ents), cmp_entry_rank);
    /* One pass over the links: apply the matching entries in precedence
     * order, and flag two entries of the same precedence that set the same
     * key of the same link (contradictory; reported once per entry). */
    bool *reported = fl_xcalloc(n_ents ? n_ents : 1, sizeof(bool));
    bool *conflicted = fl_xcalloc(n_ents ? n_ents : 1, sizeof(bool));
    for (size_t l = 0; l < s->n_links; l++) {
        struct impair_link_params p = {0};
        int last = -1;
        int rank = -1;
        size_t setter[LK_NKEYS];
        uint32_t acc = 0;
        for (size_t i = 0; i < n_ents; i++) {
            if (!tc_selector_matches(c, &ents[i].sel, &s->links[l])) {
                continue;
            }
            if (ents[i].sel.rank != rank) {
                rank = ents[i].sel.rank;
                acc = 0;
            }
            uint32_t both = acc & ents[i].set.mask;
            if (both && !conflicted[i]) {
                conflicted[i] = true;
                int key = __builtin_ctz(both);
                const struct link_entry *first = &ents[setter[key]];
                char *see = tc_see(c, tc_loc(first->key));
                size_t m = tc_path_keyn(c, ents[i].key);
                tc_err(c, ents[i].key,
                       "sets '%s' of link %s, which '%s' (at %s) also sets with the same "
                       "precedence; say it once, or use a more specific selector",
                       tc_link_key_names[key], s->links[l].name, first->sel.text, see);
                tc_path_pop(c, m);
                free(see);
            }
            for (int k = 0; k < LK_NKEYS; k++) {
                if ((ents[i].set.mask & (1u << k)) && !(acc & (1u << k))) {
                    setter[k] = i;
                }
            }
            acc |= ents[i].set.mask;
            tc_link_apply(&p, &ents[i].set);
            last = (int)i;
        }
        struct fl_error *e = NULL;
        if (last >= 0 && !impair_link_params_validate(&p, &e)) {
            if (!reported[last]) {
                reported[last] = true;
                size_t m = tc_path_keyn(c, ents[last].key);
                tc_err(c, ents[last].key, "link %s: %s", s->links[l].name, e->msg);
                tc_path_pop(c, m);
            }
            fl_error_free(e);
        }
        s->links[l].params = p;
    }
    free(conflicted);
    for (size_t i = 0; i < n_ents; i++) {
        free(ents[i].sel.text);
        impair_link_params_clear(&ents[i].set.p);
    }
    free(reported);
    free(ents);
    tc_path_pop(c, m0);
}
