/*
 * The node's setup script: what the controller sends to the guest agent
 * after its HELLO.  It applies everything node-specific (the image is the
 * same for every node):
 *
 *   hostname, /etc/hosts (every node), NICs found by MAC -> address,
 *   permanent ARP entries for every other node's MAC on the node's subnets,
 *   disks found by virtio serial "fl-d<i>" -> /dev/disk/fl-d<i>, mkfs when
 *   blank and asked, mount; /etc/fl/env; commands under a supervisor loop
 *   (restart-on-exit when asked), output to the console.
 *
 * Every value was validated by hv_node_create, and every value is
 * single-quoted anyway.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/internal.h"

void hv_sh_quote(struct fl_buf *b, const char *s)
{
    fl_text_shell_quoted(b, s); /* core's one sh quoting */
}

void hv_default_mac(const char *name, size_t index, char out[18])
{
    struct fl_buf b = {0};
    fl_buf_printf(&b, "%s/%zu", name, index);
    uint64_t h = fl_hash64(b.data, b.size);
    fl_buf_free(&b);
    snprintf(out, 18, "52:54:00:%02x:%02x:%02x", (unsigned)(h >> 16) & 0xff,
             (unsigned)(h >> 8) & 0xff, (unsigned)h & 0xff);
}

bool hv_mac_valid(const char *mac)
{
    if (strlen(mac) != 17) {
        return false;
    }
    for (int i = 0; i < 17; i++) {
        if (i % 3 == 2 ? mac[i] != ':' : !isxdigit((unsigned char)mac[i])) {
            return false;
        }
    }
    /* Unicast only: bit 0 of the first octet clear. */
    unsigned first = (unsigned)strtoul(mac, NULL, 16);
    return !(first & 1);
}

bool hv_ip_valid(const char *ip)
{
    struct in_addr a;
    struct in6_addr a6;
    return inet_pton(AF_INET, ip, &a) == 1 || inet_pton(AF_INET6, ip, &a6) == 1;
}

bool hv_cidr_valid(const char *cidr)
{
    const char *slash = strchr(cidr, '/');
    if (!slash || slash == cidr || strlen(slash) < 2 || strlen(slash) > 4) {
        return false;
    }
    char ip[64];
    size_t n = (size_t)(slash - cidr);
    if (n >= sizeof ip) {
        return false;
    }
    memcpy(ip, cidr, n);
    ip[n] = '\0';
    for (const char *p = slash + 1; *p; p++) {
        if (!isdigit((unsigned char)*p)) {
            return false;
        }
    }
    long prefix = strtol(slash + 1, NULL, 10);
    struct in_addr a;
    struct in6_addr a6;
    if (inet_pton(AF_INET, ip, &a) == 1) {
        return prefix >= 0 && prefix <= 32;
    }
    return inet_pton(AF_INET6, ip, &a6) == 1 && prefix >= 0 && prefix <= 128;
}

bool hv_name_valid(const char *name)
{
    return fl_name_valid(name, FL_NAME_MAX); /* the one name rule (core/name.c) */
}

/* Parses an IPv4 "a.b.c.d/len" into address and mask (host order). */
static bool ipv4_cidr(const char *cidr, uint32_t *net, uint32_t *mask, uint32_t *self)
{
    if (!cidr) {
        return false;
    }
    const char *slash = strchr(cidr, '/');
    char ip[INET_ADDRSTRLEN];
    size_t n = slash ? (size_t)(slash - cidr) : 0;
    if (!slash || n == 0 || n >= sizeof ip) {
        return false;
    }
    memcpy(ip, cidr, n);
    ip[n] = '\0';
    struct in_addr a;
    char *end;
    long prefix = strtol(slash + 1, &end, 10);
    if (inet_pton(AF_INET, ip, &a) != 1 || *end || end == slash + 1 || prefix < 0 || prefix > 32) {
        return false;
    }
    *self = ntohl(a.s_addr);
    *mask = prefix == 0 ? 0 : ~(uint32_t)0 << (32 - prefix);
    *net = *self & *mask;
    return true;
}

bool hv_ipv4_in_cidr(const char *cidr, struct in_addr addr)
{
    uint32_t net, mask, self;
    return ipv4_cidr(cidr, &net, &mask, &self) && (ntohl(addr.s_addr) & mask) == net;
}

bool hv_ipv4_is_own(const struct hv_node_config *cfg, struct in_addr addr)
{
    for (size_t i = 0; i < cfg->n_nics; i++) {
        uint32_t net, mask, self;
        if (ipv4_cidr(cfg->nics[i].ip_cidr, &net, &mask, &self) && self == ntohl(addr.s_addr)) {
            return true;
        }
    }
    return false;
}

char *hv_setup_script(const struct hv_node_config *cfg)
{
    struct fl_buf b = {0};
    fl_buf_puts(&b,
                "set -e\n"
                "fl_ifname() { for d in /sys/class/net/*; do\n"
                "  [ \"$(cat $d/address)\" = \"$1\" ] && { echo ${d##*/}; return 0; }; done\n"
                "  echo \"fl-setup: no NIC with MAC $1\" >&2; return 1; }\n"
                "fl_blk() { for d in /sys/block/vd*; do\n"
                "  [ \"$(cat $d/serial 2>/dev/null)\" = \"$1\" ] && { echo ${d##*/}; return 0; }; "
                "done\n"
                "  echo \"fl-setup: no disk with serial $1\" >&2; return 1; }\n"
                "mkdir -p /etc/fl /dev/disk\n");
    fl_buf_puts(&b, "hostname ");
    hv_sh_quote(&b, cfg->hostname ? cfg->hostname : cfg->name);
    fl_buf_puts(&b, "\nhostname >/etc/hostname\n");
    fl_buf_puts(&b, "printf '%s\\n' '127.0.0.1 localhost' '::1 localhost'");
    for (size_t i = 0; i < cfg->n_hosts; i++) {
        char *line = fl_xasprintf("%s %s", cfg->hosts[i].ip, cfg->hosts[i].name);
        fl_buf_puts(&b, " ");
        hv_sh_quote(&b, line);
        free(line);
    }
    fl_buf_puts(&b, " >/etc/hosts\n");
    for (size_t i = 0; i < cfg->n_nics; i++) {
        char mac[18];
        if (cfg->nics[i].mac) {
            snprintf(mac, sizeof mac, "%s", cfg->nics[i].mac);
        } else {
            hv_default_mac(cfg->name, i, mac);
        }
        for (char *p = mac; *p; p++) {
            *p = (char)tolower((unsigned char)*p);
        }
        fl_buf_printf(&b, "dev=$(fl_ifname %s)\nip link set \"$dev\" up\nnic%zu=$dev\n", mac, i);
        if (cfg->nics[i].ip_cidr) {
            fl_buf_puts(&b, "ip addr add ");
            hv_sh_quote(&b, cfg->nics[i].ip_cidr);
            fl_buf_puts(&b, " dev \"$dev\"\n");
        }
    }
    /* Permanent neighbor entries (hv.h, struct hv_host_entry): ARP never
     * decides a partition's outcome.  busybox `arp -s` without `temp`
     * sets ATF_PERM (NUD_PERMANENT in the kernel). */
    for (size_t h = 0; h < cfg->n_hosts; h++) {
        const struct hv_host_entry *he = &cfg->hosts[h];
        struct in_addr addr;
        if (!he->mac || inet_pton(AF_INET, he->ip, &addr) != 1 || hv_ipv4_is_own(cfg, addr)) {
            continue;
        }
        for (size_t i = 0; i < cfg->n_nics; i++) {
            if (!hv_ipv4_in_cidr(cfg->nics[i].ip_cidr, addr)) {
                continue;
            }
            char mac[18];
            snprintf(mac, sizeof mac, "%s", he->mac);
            for (char *p = mac; *p; p++) {
                *p = (char)tolower((unsigned char)*p);
            }
            char ip[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &addr, ip, sizeof ip);
            fl_buf_printf(&b, "arp -i \"$nic%zu\" -s %s %s\n", i, ip, mac);
        }
    }
    for (size_t i = 0; i < cfg->n_disks; i++) {
        const struct hv_disk_config *d = &cfg->disks[i];
        fl_buf_printf(&b, "dev=/dev/$(fl_blk fl-d%zu)\nln -sf \"$dev\" /dev/disk/fl-d%zu\n", i, i);
        if (!d->mount_point) {
            continue;
        }
        if (d->format_if_blank && !d->read_only) {
            /* ext2/3/4 superblock magic 0xEF53 at byte 1080 */
            fl_buf_puts(&b, "if [ \"$(dd if=\"$dev\" bs=1 skip=1080 count=2 2>/dev/null | "
                            "od -An -tx1 | tr -d ' \\n')\" != 53ef ]; then\n"
                            "  echo \"fl-setup: formatting blank $dev\"\n"
                            "  mke2fs -q \"$dev\"\nfi\n");
        }
        fl_buf_puts(&b, "mkdir -p ");
        hv_sh_quote(&b, d->mount_point);
        fl_buf_printf(&b, "\nmount %s\"$dev\" ", d->read_only ? "-o ro " : "");
        hv_sh_quote(&b, d->mount_point);
        fl_buf_puts(&b, "\n");
    }
    fl_buf_puts(&b, ": >/etc/fl/env\n");
    for (size_t i = 0; i < cfg->n_env; i++) {
        struct fl_buf line = {0};
        fl_buf_puts(&line, "export ");
        hv_sh_quote(&line, cfg->env[i]);
        fl_buf_puts(&b, "echo ");
        hv_sh_quote(&b, line.data);
        fl_buf_puts(&b, " >>/etc/fl/env\n");
        fl_buf_free(&line);
    }
    for (size_t i = 0; i < cfg->n_commands; i++) {
        /* The supervisor: runs the command, logs its exit, restarts it
         * when asked.  setsid + redirections: it holds none of the
         * agent's pipes, so this script's exec returns. */
        struct fl_buf loop = {0};
        fl_buf_printf(&loop,
                      ". /etc/fl/env; while :; do sh -c \"$FL_CMD\"; rc=$?; "
                      "echo \"fl: command %zu exited with status $rc\"; %s sleep 1; done",
                      i, cfg->commands[i].restart ? "" : "break;");
        fl_buf_puts(&b, "FL_CMD=");
        hv_sh_quote(&b, cfg->commands[i].cmd);
        fl_buf_puts(&b, " setsid sh -c ");
        hv_sh_quote(&b, loop.data);
        fl_buf_puts(&b, " </dev/null >/dev/console 2>&1 &\n");
        fl_buf_free(&loop);
    }
    fl_buf_puts(&b, "echo fl-setup: done\n");
    return fl_buf_steal(&b);
}
