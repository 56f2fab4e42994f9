/*
 * A node's configuration: every rule it must satisfy (checked once, at
 * hv_node_create, with an error naming the node, the field and the
 * value), and the deep copy the node keeps (the caller's strings may go
 * away).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hv/node.h"

static const char *keep(struct hv_node *n, const char *s)
{
    if (!s) {
        return NULL;
    }
    char *c = fl_xstrdup(s);
    n->strings = fl_xgrow(n->strings, &n->strings_alloc, n->n_strings + 1, sizeof(char *));
    n->strings[n->n_strings++] = c;
    return c;
}

static bool has_ctl(const char *s)
{
    for (; s && *s; s++) {
        if ((unsigned char)*s < 0x20 && *s != '\t') {
            return true;
        }
    }
    return false;
}

bool hv_node_config_check(const struct hv_node_config *c, struct fl_error **errp)
{
    if (!c->name || !hv_name_valid(c->name)) {
        fl_error_setf(errp, EINVAL,
                      "node name: '%s' is not valid (1-63 of [A-Za-z0-9_-], starting with a "
                      "letter or digit)",
                      c->name ? c->name : "(null)");
        return false;
    }
    const char *who = c->name;
    if (c->vcpus > 64) {
        fl_error_setf(errp, EINVAL, "node %s: vcpus: %u is out of range (1..64)", who, c->vcpus);
        return false;
    }
    if (c->memory_mib && (c->memory_mib < 64 || c->memory_mib > 65536)) {
        fl_error_setf(errp, EINVAL, "node %s: memory: %u MiB is out of range (64..65536)", who,
                      c->memory_mib);
        return false;
    }
    const char *files[] = {c->kernel, c->initrd};
    const char *fnames[] = {"kernel", "initrd"};
    for (int i = 0; i < 2; i++) {
        if (!files[i] || access(files[i], R_OK) < 0) {
            fl_error_setf(errp, ENOENT, "node %s: %s: '%s' is not a readable file", who, fnames[i],
                          files[i] ? files[i] : "(null)");
            return false;
        }
    }
    struct stat st;
    if (!c->run_dir || stat(c->run_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        fl_error_setf(errp, ENOTDIR, "node %s: run_dir: '%s' is not a directory", who,
                      c->run_dir ? c->run_dir : "(null)");
        return false;
    }
    if (st.st_mode & 077) {
        fl_error_setf(errp, EPERM,
                      "node %s: run_dir: '%s' has mode %03o; it must be 0700 (sockets live there)",
                      who, c->run_dir, (unsigned)(st.st_mode & 0777));
        return false;
    }
    if (c->accel > HV_ACCEL_TCG) {
        fl_error_setf(errp, EINVAL, "node %s: accel: %d is not an accelerator", who, c->accel);
        return false;
    }
    for (size_t i = 0; i < c->n_nics; i++) {
        const struct hv_nic_config *nic = &c->nics[i];
        if (!nic->socket_path || !*nic->socket_path || has_ctl(nic->socket_path)) {
            fl_error_setf(errp, EINVAL, "node %s: nics[%zu]: socket path missing or invalid", who,
                          i);
            return false;
        }
        if (nic->mac && !hv_mac_valid(nic->mac)) {
            fl_error_setf(errp, EINVAL,
                          "node %s: nics[%zu].mac: '%s' is not a unicast MAC "
                          "(xx:xx:xx:xx:xx:xx, first octet even)",
                          who, i, nic->mac);
            return false;
        }
        if (nic->ip_cidr && !hv_cidr_valid(nic->ip_cidr)) {
            fl_error_setf(errp, EINVAL,
                          "node %s: nics[%zu].ip: '%s' is not an address with a prefix "
                          "(e.g. 10.0.0.1/24)",
                          who, i, nic->ip_cidr);
            return false;
        }
    }
    for (size_t i = 0; i < c->n_disks; i++) {
        const struct hv_disk_config *d = &c->disks[i];
        if (d->kind != HV_DISK_NBD && d->kind != HV_DISK_FILE) {
            fl_error_setf(errp, EINVAL, "node %s: disks[%zu].kind: %d is not nbd or file", who, i,
                          d->kind);
            return false;
        }
        if (!d->path || !*d->path || has_ctl(d->path)) {
            fl_error_setf(errp, EINVAL, "node %s: disks[%zu]: path missing or invalid", who, i);
            return false;
        }
        if (d->kind == HV_DISK_FILE && access(d->path, R_OK | (d->read_only ? 0 : W_OK)) < 0) {
            fl_error_setf(errp, ENOENT, "node %s: disks[%zu]: file '%s' is not accessible", who, i,
                          d->path);
            return false;
        }
        if (d->export_name && (has_ctl(d->export_name) || strlen(d->export_name) > 4096)) {
            fl_error_setf(errp, EINVAL, "node %s: disks[%zu].export: invalid name", who, i);
            return false;
        }
        if (d->mount_point && (d->mount_point[0] != '/' || has_ctl(d->mount_point) ||
                               strstr(d->mount_point, "/.."))) {
            fl_error_setf(errp, EINVAL,
                          "node %s: disks[%zu].mount: '%s' must be an absolute guest path", who, i,
                          d->mount_point);
            return false;
        }
    }
    for (size_t i = 0; i < c->n_hosts; i++) {
        const struct hv_host_entry *h = &c->hosts[i];
        if (!h->name || !hv_name_valid(h->name) || !h->ip || !hv_ip_valid(h->ip)) {
            fl_error_setf(errp, EINVAL, "node %s: hosts[%zu]: '%s %s' is not 'name address'", who,
                          i, h->name ? h->name : "(null)", h->ip ? h->ip : "(null)");
            return false;
        }
        if (h->mac && !hv_mac_valid(h->mac)) {
            fl_error_setf(errp, EINVAL,
                          "node %s: hosts[%zu].mac: '%s' is not a unicast MAC "
                          "(xx:xx:xx:xx:xx:xx, first octet even)",
                          who, i, h->mac);
            return false;
        }
        struct in_addr a4;
        if (h->mac && inet_pton(AF_INET, h->ip, &a4) != 1) {
            fl_error_setf(errp, EINVAL,
                          "node %s: hosts[%zu].mac: '%s' is for '%s', an IPv6 address; permanent "
                          "neighbor entries are set for IPv4 addresses only (leave mac NULL)",
                          who, i, h->mac, h->ip);
            return false;
        }
    }
    if (c->hostname && !hv_name_valid(c->hostname)) {
        fl_error_setf(errp, EINVAL, "node %s: hostname: '%s' is not a valid host name", who,
                      c->hostname);
        return false;
    }
    for (size_t i = 0; i < c->n_commands; i++) {
        if (!c->commands[i].cmd || !*c->commands[i].cmd ||
            strlen(c->commands[i].cmd) > FL_AGENT_CMD_MAX / 4) {
            fl_error_setf(errp, EINVAL, "node %s: commands[%zu]: empty or too long", who, i);
            return false;
        }
    }
    if (c->n_env > FL_AGENT_ENV_MAX) {
        fl_error_setf(errp, EINVAL, "node %s: env: %zu variables (at most %u)", who, c->n_env,
                      FL_AGENT_ENV_MAX);
        return false;
    }
    for (size_t i = 0; i < c->n_env; i++) {
        const char *e = c->env[i];
        const char *eq = e ? strchr(e, '=') : NULL;
        if (!eq || eq == e || has_ctl(e) || strlen(e) > 65535) {
            fl_error_setf(errp, EINVAL, "node %s: env[%zu]: '%s' is not KEY=VALUE", who, i,
                          e ? e : "(null)");
            return false;
        }
        for (const char *p = e; p < eq; p++) {
            if (!(*p == '_' || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                  (p > e && *p >= '0' && *p <= '9'))) {
                fl_error_setf(errp, EINVAL, "node %s: env[%zu]: '%.*s' is not a variable name", who,
                              i, (int)(eq - e), e);
                return false;
            }
        }
    }
    if ((c->extra_cmdline && has_ctl(c->extra_cmdline)) ||
        (c->console_log && has_ctl(c->console_log))) {
        fl_error_setf(errp, EINVAL, "node %s: control characters in cmdline or console path", who);
        return false;
    }
    return true;
}

void hv_node_config_copy(struct hv_node *n, const struct hv_node_config *config)
{
    struct hv_node_config *c = &n->cfg;
    *c = *config;
    c->name = keep(n, config->name);
    c->vcpus = config->vcpus ? config->vcpus : 1;
    c->memory_mib = config->memory_mib ? config->memory_mib : 128;
    c->kernel = keep(n, config->kernel);
    c->initrd = keep(n, config->initrd);
    c->run_dir = keep(n, config->run_dir);
    c->hostname = keep(n, config->hostname);
    c->extra_cmdline = keep(n, config->extra_cmdline);
    c->qemu_binary = keep(n, config->qemu_binary);
    if (config->console_log) {
        c->console_log = keep(n, config->console_log);
    } else {
        char *p = fl_xasprintf("%s/%s.console.log", config->run_dir, config->name);
        c->console_log = keep(n, p);
        free(p);
    }
    n->nics = fl_xcalloc(config->n_nics + 1, sizeof *n->nics);
    for (size_t i = 0; i < config->n_nics; i++) {
        n->nics[i].socket_path = keep(n, config->nics[i].socket_path);
        n->nics[i].mac = keep(n, config->nics[i].mac);
        n->nics[i].ip_cidr = keep(n, config->nics[i].ip_cidr);
    }
    c->nics = n->nics;
    n->disks = fl_xcalloc(config->n_disks + 1, sizeof *n->disks);
    for (size_t i = 0; i < config->n_disks; i++) {
        n->disks[i] = config->disks[i];
        n->disks[i].path = keep(n, config->disks[i].path);
        n->disks[i].export_name = keep(n, config->disks[i].export_name);
        n->disks[i].mount_point = keep(n, config->disks[i].mount_point);
    }
    c->disks = n->disks;
    n->hosts = fl_xcalloc(config->n_hosts + 1, sizeof *n->hosts);
    for (size_t i = 0; i < config->n_hosts; i++) {
        n->hosts[i].name = keep(n, config->hosts[i].name);
        n->hosts[i].ip = keep(n, config->hosts[i].ip);
        n->hosts[i].mac = keep(n, config->hosts[i].mac);
    }
    c->hosts = n->hosts;
    n->commands = fl_xcalloc(config->n_commands + 1, sizeof *n->commands);
    for (size_t i = 0; i < config->n_commands; i++) {
        n->commands[i].cmd = keep(n, config->commands[i].cmd);
        n->commands[i].restart = config->commands[i].restart;
    }
    c->commands = n->commands;
    n->env = fl_xcalloc(config->n_env + 1, sizeof *n->env);
    for (size_t i = 0; i < config->n_env; i++) {
        n->env[i] = keep(n, config->env[i]);
    }
    c->env = n->env;
}

void hv_node_config_free(struct hv_node *n)
{
    for (size_t i = 0; i < n->n_strings; i++) {
        free(n->strings[i]);
    }
    free(n->strings);
    free(n->nics);
    free(n->disks);
    free(n->hosts);
    free(n->commands);
    free(n->env);
}
