/*
 * One guest: a QEMU microvm process, its QMP monitor and its agent
 * channel, all driven from core's event loop.
 *
 *   hv_node_boot ──fork/exec──▶ qemu (own process group, PDEATHSIG=KILL)
 *        │ fd 3 = QMP socketpair      greeting ▶ qmp_capabilities ▶ commands
 *        │ fd 4 = agent socketpair    HELLO ▶ setup script (EXEC) ▶ READY
 *        └ pidfd in the loop          exit ▶ on_exit(unexpected?)
 *
 *   OFF ─boot─▶ BOOTING ─setup ok─▶ READY ⇄ PAUSED (QMP stop/cont)
 *    ▲             ▲ reset/reboot ◀──┘ │
 *    └──── QEMU exit (any state) ◀─────┴── STOPPING (poweroff)
 *
 * No file in run_dir but the console log: QMP and the agent use
 * socketpairs handed to QEMU as fds, so there is nothing to race on and
 * nothing to clean up.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hv/internal.h"
#include "hv/proto.h"

#define QMP_LINE_MAX       (1u << 20)
#define AGENT_OUTBUF_MAX   ((size_t)16 << 20)
#define EXEC_GRACE_NS      (5 * FL_NS_PER_SEC)
#define DEFAULT_READY_TCG  (60 * FL_NS_PER_SEC)
#define DEFAULT_READY_KVM  (20 * FL_NS_PER_SEC)
#define QUIT_KILL_DELAY_NS (5 * FL_NS_PER_SEC)

static const char *const state_names[] = {
#define HV_STATE_NAME(name, str) str,
    HV_NODE_STATES(HV_STATE_NAME)
#undef HV_STATE_NAME
};

const char *hv_node_state_name(enum hv_node_state state)
{
    return (size_t)state < FL_ARRAY_LEN(state_names) ? state_names[state] : "?";
}

enum req_kind { REQ_PING, REQ_EXEC, REQ_CLOCK, REQ_SETUP, REQ_POWEROFF };

struct req {
    struct req *next;
    struct hv_node *node;
    enum req_kind kind;
    uint32_t id;
    struct fl_timer *timer;
    int64_t start_ns;
    hv_exec_cb *exec_cb;
    hv_done_cb *done_cb;
    void *arg;
};

struct hv_node {
    struct fl_loop *loop;
    struct hv_callbacks cb;
    void *arg;

    /* deep copy of the configuration */
    struct hv_node_config cfg;
    char **strings; /* every string owned by cfg */
    size_t n_strings, strings_alloc;
    struct hv_nic_config *nics;
    struct hv_disk_config *disks;
    struct hv_host_entry *hosts;
    struct hv_command *commands;
    const char **env;
    enum hv_accel accel;
    char **argv;
    size_t argc;

    enum hv_node_state state;
    enum hv_node_state pre_pause; /* state to return to on RESUME */
    pid_t pid;
    int pidfd, qmp_fd, agent_fd;
    bool expected_exit;
    int64_t boot_start_ns, boot_ns;
    struct fl_timer *ready_timer, *kill_timer;

    /* QMP */
    struct fl_buf qmp_in;
    struct fl_buf qmp_out;
    bool qmp_greeted;
    uint32_t qmp_next_id;

    /* agent */
    uint8_t *ag_in;
    size_t ag_in_size;
    struct fl_agent_wr ag_out;
    size_t ag_out_sent;
    bool ag_hello;
    bool ag_dead;
    uint32_t session;
    uint32_t next_id;
    struct req *reqs;

    int refs;
    bool destroyed;
};

/* ---- lifetime around callbacks ---- */

static void node_free(struct hv_node *n);

static void node_ref(struct hv_node *n)
{
    n->refs++;
}

static void node_unref(struct hv_node *n)
{
    if (--n->refs == 0) {
        node_free(n);
    }
}

/* ---- configuration ---- */

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

static bool validate(const struct hv_node_config *c, struct fl_error **errp)
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

/* The host's TSC rate in kHz, measured once against CLOCK_MONOTONIC.
 * Under TCG the guest's TSC is the host's; without this the guest kernel
 * calibrates it against the emulated PIT, which intermittently fails
 * under TCG ("Unable to calibrate against PIT") and leaves the guest
 * hanging before init.  tsc_early_khz= skips that calibration. */
static unsigned long host_tsc_khz(void)
{
    static unsigned long khz;
    if (!khz) {
        int64_t t0 = fl_clock_mono_ns();
        uint64_t c0 = __builtin_ia32_rdtsc();
        struct timespec d = {0, 20 * 1000 * 1000};
        nanosleep(&d, NULL);
        uint64_t c1 = __builtin_ia32_rdtsc();
        int64_t t1 = fl_clock_mono_ns();
        khz = t1 > t0 ? (unsigned long)((double)(c1 - c0) / (double)(t1 - t0) * 1e6) : 0;
    }
    return khz;
}

/* QEMU option values: a ',' is written ',,'. */
static void qemu_val(struct fl_buf *b, const char *s)
{
    for (; *s; s++) {
        fl_buf_append(b, s, 1);
        if (*s == ',') {
            fl_buf_append(b, ",", 1);
        }
    }
}

static void argv_add(struct hv_node *n, size_t *alloc, char *s)
{
    n->argv = fl_xgrow(n->argv, alloc, n->argc + 2, sizeof(char *));
    n->argv[n->argc++] = s;
    n->argv[n->argc] = NULL;
}

static void build_argv(struct hv_node *n)
{
    const struct hv_node_config *c = &n->cfg;
    size_t alloc = 0;
    struct fl_buf b = {0};
    const char *qemu = c->qemu_binary ? c->qemu_binary : getenv("FAULTLINE_QEMU");
    argv_add(n, &alloc, fl_xstrdup(qemu && *qemu ? qemu : "qemu-system-x86_64"));
#define ARG(s) argv_add(n, &alloc, fl_xstrdup(s))
#define ARGB() argv_add(n, &alloc, fl_buf_steal(&b))
    ARG("-name");
    ARG(c->name);
    /* microvm: ACPI stays on (the Debian kernel finds virtio-mmio devices
     * through it: CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES is off); no option
     * ROMs, no legacy PIC; one ISA serial port for the console. */
    ARG("-M");
    ARG("microvm,x-option-roms=off,pic=off,isa-serial=on,rtc=on,memory-backend=mem");
    /* Guest RAM on a memfd: shmem is not backed by transparent huge
     * pages, so only the 4 KiB pages the guest touches count towards the
     * RSS (anonymous RAM is THP-backed and grows 2 MiB at a time). */
    ARG("-object");
    argv_add(n, &alloc, fl_xasprintf("memory-backend-memfd,id=mem,size=%uM", c->memory_mib));
    ARG("-accel");
    ARG(n->accel == HV_ACCEL_KVM ? "kvm" : "tcg,tb-size=16");
    ARG("-cpu");
    ARG(n->accel == HV_ACCEL_KVM ? "host" : "max");
    ARG("-m");
    argv_add(n, &alloc, fl_xasprintf("%u", c->memory_mib));
    ARG("-smp");
    argv_add(n, &alloc, fl_xasprintf("%u", c->vcpus));
    ARG("-nodefaults");
    ARG("-no-user-config");
    ARG("-display");
    ARG("none");
    ARG("-sandbox");
    ARG("on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
    ARG("-kernel");
    ARG(c->kernel);
    ARG("-initrd");
    ARG(c->initrd);
    ARG("-append");
    /* Memory (docs/images.md, "Boot time and memory"): tracefs would
     * instantiate an inode and a dentry for every trace event file at
     * boot (~9 MiB of slab nobody reads in a faultline guest);
     * percpu_alloc=page maps the first per-CPU chunk page by page instead
     * of embedding it in 2 MiB units that are zeroed whole (~5 MiB). */
    fl_buf_puts(&b, "console=ttyS0 quiet panic=-1 mitigations=off cryptomgr.notests "
                    "8250.nr_uarts=1 no_timer_check tsc=reliable rcupdate.rcu_expedited=1 "
                    "percpu_alloc=page initcall_blacklist=tracer_init_tracefs,event_trace_init");
    unsigned long khz = n->accel == HV_ACCEL_TCG ? host_tsc_khz() : 0;
    if (khz > 100000) {
        fl_buf_printf(&b, " tsc_early_khz=%lu", khz);
    }
    if (c->extra_cmdline && *c->extra_cmdline) {
        fl_buf_printf(&b, " %s", c->extra_cmdline);
    }
    ARGB();
    ARG("-chardev");
    fl_buf_puts(&b, "file,id=con,append=on,path=");
    qemu_val(&b, c->console_log);
    ARGB();
    ARG("-serial");
    ARG("chardev:con");
    ARG("-chardev");
    ARG("socket,id=qmp,fd=3");
    ARG("-mon");
    ARG("chardev=qmp,mode=control");
    ARG("-chardev");
    ARG("socket,id=agent,fd=4");
    ARG("-device");
    ARG("virtio-serial-device,max_ports=2");
    ARG("-device");
    ARG("virtserialport,chardev=agent,name=" FL_AGENT_PORT_NAME);
    for (size_t i = 0; i < c->n_nics; i++) {
        char mac[18];
        if (c->nics[i].mac) {
            snprintf(mac, sizeof mac, "%s", c->nics[i].mac);
        } else {
            hv_default_mac(c->name, i, mac);
        }
        ARG("-netdev");
        fl_buf_printf(&b, "stream,id=n%zu,server=off,addr.type=unix,addr.path=", i);
        qemu_val(&b, c->nics[i].socket_path);
        ARGB();
        ARG("-device");
        fl_buf_printf(&b, "virtio-net-device,netdev=n%zu,mac=%s", i, mac);
        ARGB();
    }
    for (size_t i = 0; i < c->n_disks; i++) {
        const struct hv_disk_config *d = &c->disks[i];
        ARG("-blockdev");
        if (d->kind == HV_DISK_NBD) {
            fl_buf_printf(&b, "driver=nbd,node-name=d%zu,server.type=unix,server.path=", i);
            qemu_val(&b, d->path);
            if (d->export_name && *d->export_name) {
                fl_buf_puts(&b, ",export=");
                qemu_val(&b, d->export_name);
            }
        } else {
            fl_buf_printf(&b, "driver=file,node-name=f%zu,filename=", i);
            qemu_val(&b, d->path);
            if (d->read_only) {
                fl_buf_puts(&b, ",read-only=on");
            }
            ARGB();
            ARG("-blockdev");
            fl_buf_printf(&b, "driver=raw,node-name=d%zu,file=f%zu", i, i);
        }
        if (d->read_only) {
            fl_buf_puts(&b, ",read-only=on");
        }
        ARGB();
        ARG("-device");
        fl_buf_printf(&b, "virtio-blk-device,drive=d%zu,serial=fl-d%zu", i, i);
        ARGB();
    }
#undef ARG
#undef ARGB
}

static void on_ready_timer(struct fl_loop *loop, struct fl_timer *t, void *arg);
static void on_kill_timer(struct fl_loop *loop, struct fl_timer *t, void *arg);

struct hv_node *hv_node_create(struct fl_loop *loop, const struct hv_node_config *config,
                               const struct hv_callbacks *cb, void *arg, struct fl_error **errp)
{
    if (!loop || !config) {
        fl_error_setf(errp, EINVAL, "hv_node_create: loop and config are required");
        return NULL;
    }
    if (!validate(config, errp)) {
        return NULL;
    }
    struct hv_node *n = fl_xcalloc(1, sizeof *n);
    n->loop = loop;
    n->refs = 1;
    if (cb) {
        n->cb = *cb;
    }
    n->arg = arg;
    n->pidfd = n->qmp_fd = n->agent_fd = -1;
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
    const char *why = NULL;
    n->accel = hv_accel_resolve(config->accel, &why);
    fl_log(FL_LOG_INFO, "hv", "node %s: accelerator %s (%s)", c->name, hv_accel_name(n->accel),
           why);
    if (!c->ready_timeout_ns) {
        c->ready_timeout_ns = n->accel == HV_ACCEL_KVM ? DEFAULT_READY_KVM : DEFAULT_READY_TCG;
    }
    build_argv(n);
    n->ready_timer = fl_timer_create(n->loop, on_ready_timer, n);
    n->kill_timer = fl_timer_create(n->loop, on_kill_timer, n);
    return n;
}

const char *hv_node_name(const struct hv_node *node)
{
    return node->cfg.name;
}

enum hv_node_state hv_node_state(const struct hv_node *node)
{
    return node->state;
}

pid_t hv_node_pid(const struct hv_node *node)
{
    return node->pid;
}

const char *const *hv_node_argv(const struct hv_node *node)
{
    return (const char *const *)node->argv;
}

int64_t hv_node_boot_ns(const struct hv_node *node)
{
    return node->boot_ns;
}

/* ---- state and requests ---- */

static void set_state(struct hv_node *n, enum hv_node_state s)
{
    if (n->state == s) {
        return;
    }
    fl_log(FL_LOG_DEBUG, "hv", "node %s: %s -> %s", n->cfg.name, hv_node_state_name(n->state),
           hv_node_state_name(s));
    n->state = s;
}

static void req_unlink(struct hv_node *n, struct req *r)
{
    for (struct req **pp = &n->reqs; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    fl_timer_destroy(r->timer);
    r->timer = NULL;
}

static void fail(struct hv_node *n, int code, const char *fmt, ...) FL_PRINTF(3, 4);

static void on_poweroff_done(struct hv_node *n);

/* Completes an unlinked request with an error (callbacks of user
 * requests) and frees it. */
static void req_complete_err(struct hv_node *n, struct req *r, int code, const char *msg)
{
    struct fl_error *err = NULL;
    fl_error_setf(&err, code, "node %s: %s", n->cfg.name, msg);
    if (r->kind == REQ_EXEC && r->exec_cb) {
        r->exec_cb(n, NULL, err, r->arg);
    } else if ((r->kind == REQ_PING || r->kind == REQ_CLOCK) && r->done_cb) {
        r->done_cb(n, err, r->arg);
    }
    fl_error_free(err);
    bool poweroff = r->kind == REQ_POWEROFF;
    free(r);
    if (poweroff && !n->destroyed) {
        on_poweroff_done(n); /* no answer from the agent: quit anyway */
    }
}

static void req_fail(struct hv_node *n, struct req *r, int code, const char *msg)
{
    req_unlink(n, r);
    req_complete_err(n, r, code, msg);
}

static void fail_all(struct hv_node *n, int code, const char *msg)
{
    node_ref(n);
    while (n->reqs && !n->destroyed) {
        req_fail(n, n->reqs, code, msg);
    }
    node_unref(n);
}

static void fail(struct hv_node *n, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    struct fl_error *err = NULL;
    fl_error_vsetf(&err, code, fmt, ap);
    va_end(ap);
    fl_error_prepend(&err, "node %s: ", n->cfg.name);
    fl_log(FL_LOG_WARN, "hv", "%s", err->msg);
    if (n->cb.on_fail) {
        n->cb.on_fail(n, err, n->arg);
    }
    fl_error_free(err);
}

/* ---- low-level I/O ---- */

static void agent_flush(struct hv_node *n);
static void on_agent(struct fl_loop *loop, int fd, uint32_t events, void *arg);

static void agent_send(struct hv_node *n)
{
    if (n->agent_fd >= 0) {
        agent_flush(n);
    }
}

static void agent_flush(struct hv_node *n)
{
    while (n->ag_out_sent < n->ag_out.size) {
        ssize_t w = send(n->agent_fd, n->ag_out.p + n->ag_out_sent, n->ag_out.size - n->ag_out_sent,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                fl_loop_mod_fd(n->loop, n->agent_fd, EPOLLIN | EPOLLOUT);
            }
            return;
        }
        n->ag_out_sent += (size_t)w;
    }
    n->ag_out.size = n->ag_out_sent = 0;
    fl_loop_mod_fd(n->loop, n->agent_fd, EPOLLIN);
}

static void qmp_flush(struct hv_node *n)
{
    while (n->qmp_out.size) {
        ssize_t w = send(n->qmp_fd, n->qmp_out.data, n->qmp_out.size, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                fl_loop_mod_fd(n->loop, n->qmp_fd, EPOLLIN | EPOLLOUT);
            }
            return;
        }
        memmove(n->qmp_out.data, n->qmp_out.data + w, n->qmp_out.size - (size_t)w);
        n->qmp_out.size -= (size_t)w;
        n->qmp_out.data[n->qmp_out.size] = '\0';
    }
    fl_loop_mod_fd(n->loop, n->qmp_fd, EPOLLIN);
}

static bool qmp_cmd(struct hv_node *n, const char *cmd, struct fl_error **errp)
{
    if (n->qmp_fd < 0) {
        fl_error_setf(errp, ENOTCONN, "node %s: QEMU is not running", n->cfg.name);
        return false;
    }
    fl_buf_printf(&n->qmp_out, "{\"execute\":\"%s\",\"id\":%u}\n", cmd, ++n->qmp_next_id);
    if (n->qmp_greeted) {
        qmp_flush(n);
    }
    return true;
}

/* Closes every channel of a QEMU that exited (or is being destroyed). */
static void close_channels(struct hv_node *n)
{
    int *fds[] = {&n->pidfd, &n->qmp_fd, &n->agent_fd};
    for (size_t i = 0; i < FL_ARRAY_LEN(fds); i++) {
        if (*fds[i] >= 0) {
            fl_loop_del_fd(n->loop, *fds[i]);
            close(*fds[i]);
            *fds[i] = -1;
        }
    }
    fl_buf_reset(&n->qmp_in);
    fl_buf_reset(&n->qmp_out);
    n->qmp_greeted = false;
    n->ag_in_size = 0;
    n->ag_out.size = n->ag_out_sent = 0;
    n->ag_hello = false;
    n->ag_dead = false;
    fl_timer_disarm(n->ready_timer);
    fl_timer_disarm(n->kill_timer);
}

/* ---- process exit ---- */

static void on_pidfd(struct fl_loop *loop, int fd, uint32_t events, void *arg)
{
    struct hv_node *n = arg;
    int status = 0;
    pid_t r = waitpid(n->pid, &status, WNOHANG);
    if (r == 0) {
        return;
    }
    if (r < 0 && errno != ECHILD) {
        return;
    }
    bool unexpected = !n->expected_exit;
    fl_log(unexpected ? FL_LOG_WARN : FL_LOG_INFO, "hv", "node %s: QEMU (pid %d) exited: %s %d%s",
           n->cfg.name, (int)n->pid, WIFSIGNALED(status) ? "signal" : "status",
           WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
           unexpected ? " (unexpected)" : "");
    n->pid = 0;
    close_channels(n);
    set_state(n, HV_NODE_OFF);
    node_ref(n);
    fail_all(n, ENOTCONN, "QEMU exited");
    if (!n->destroyed && n->cb.on_exit) {
        n->cb.on_exit(n, unexpected, status, n->arg);
    }
    node_unref(n);
}

static void kill_qemu(struct hv_node *n)
{
    if (n->pid > 0) {
        n->expected_exit = true;
        kill(-n->pid, SIGKILL);
        kill(n->pid, SIGKILL);
    }
}

static void on_kill_timer(struct fl_loop *loop, struct fl_timer *t, void *arg)
{
    struct hv_node *n = arg;
    fl_log(FL_LOG_WARN, "hv", "node %s: QEMU did not quit in time; killing it", n->cfg.name);
    kill_qemu(n);
}

static void on_ready_timer(struct fl_loop *loop, struct fl_timer *t, void *arg)
{
    struct hv_node *n = arg;
    if (n->state != HV_NODE_BOOTING) {
        return;
    }
    node_ref(n);
    fail(n, ETIMEDOUT, "not ready within %.0f s (%s); see the console log '%s'",
         (double)n->cfg.ready_timeout_ns / 1e9,
         n->ag_hello ? "the agent answered but the setup did not finish"
                     : "the guest agent never said hello",
         n->cfg.console_log);
    if (!n->destroyed) {
        kill_qemu(n);
    }
    node_unref(n);
}

/* ---- QMP ---- */

static void qmp_message(struct hv_node *n, const struct hv_json *msg)
{
    if (!n->qmp_greeted) {
        if (!hv_json_get(msg, "QMP")) {
            fail(n, EPROTO, "QMP: no greeting from QEMU");
            return;
        }
        n->qmp_greeted = true;
        /* Capabilities first, ahead of anything queued. */
        struct fl_buf b = {0};
        fl_buf_puts(&b, "{\"execute\":\"qmp_capabilities\"}\n");
        if (n->qmp_out.size) {
            fl_buf_append(&b, n->qmp_out.data, n->qmp_out.size);
        }
        fl_buf_free(&n->qmp_out);
        n->qmp_out = b;
        qmp_flush(n);
        return;
    }
    const char *ev = hv_json_get_str(msg, "event");
    if (ev) {
        fl_log(FL_LOG_DEBUG, "hv", "node %s: QMP event %s", n->cfg.name, ev);
        if (!strcmp(ev, "STOP")) {
            if (n->state == HV_NODE_READY || n->state == HV_NODE_BOOTING) {
                n->pre_pause = n->state;
                set_state(n, HV_NODE_PAUSED);
                if (n->cb.on_state) {
                    n->cb.on_state(n, HV_NODE_PAUSED, n->arg);
                }
            }
        } else if (!strcmp(ev, "RESUME")) {
            if (n->state == HV_NODE_PAUSED) {
                set_state(n, n->pre_pause);
                if (n->cb.on_state) {
                    n->cb.on_state(n, n->state, n->arg);
                }
            }
        } else if (!strcmp(ev, "RESET")) {
            /* The guest reboots: a new agent session will say hello. */
            if (n->state != HV_NODE_STOPPING && n->state != HV_NODE_OFF) {
                set_state(n, HV_NODE_BOOTING);
                n->ag_hello = false;
                n->boot_start_ns = fl_loop_now(n->loop);
                n->boot_ns = 0;
                fl_timer_arm_in(n->ready_timer, n->cfg.ready_timeout_ns);
                fail_all(n, ECONNRESET, "the guest was reset");
            }
        }
        return;
    }
    const struct hv_json *e = hv_json_get(msg, "error");
    if (e) {
        const char *desc = hv_json_get_str(e, "desc");
        fail(n, EIO, "QMP error: %s", desc ? desc : "(no description)");
    }
}

static void on_qmp(struct fl_loop *loop, int fd, uint32_t events, void *arg)
{
    struct hv_node *n = arg;
    if (events & EPOLLOUT) {
        qmp_flush(n);
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        return;
    }
    char buf[65536];
    ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (r <= 0) {
        /* QEMU is going away; the pidfd reports the exit. */
        fl_loop_del_fd(loop, fd);
        close(fd);
        n->qmp_fd = -1;
        return;
    }
    fl_buf_append(&n->qmp_in, buf, (size_t)r);
    node_ref(n);
    for (;;) {
        char *nl = n->qmp_in.data ? memchr(n->qmp_in.data, '\n', n->qmp_in.size) : NULL;
        if (!nl) {
            if (n->qmp_in.size > QMP_LINE_MAX) {
                fail(n, EPROTO, "QMP: line longer than %u bytes", QMP_LINE_MAX);
                fl_buf_reset(&n->qmp_in);
            }
            break;
        }
        size_t len = (size_t)(nl - n->qmp_in.data);
        struct fl_error *err = NULL;
        struct hv_json *msg = hv_json_parse(n->qmp_in.data, len, &err);
        if (msg) {
            qmp_message(n, msg);
            hv_json_free(msg);
        } else {
            fail(n, EPROTO, "QMP: %s", err->msg);
            fl_error_free(err);
        }
        if (n->destroyed || n->qmp_fd < 0) {
            break;
        }
        memmove(n->qmp_in.data, nl + 1, n->qmp_in.size - len - 1);
        n->qmp_in.size -= len + 1;
        n->qmp_in.data[n->qmp_in.size] = '\0';
    }
    node_unref(n);
}

/* ---- agent ---- */

static struct req *req_new(struct hv_node *n, enum req_kind kind, int64_t timeout_ns);

static void send_exec(struct hv_node *n, struct req *r, const char *cmd, int64_t timeout_ns)
{
    size_t s = fl_agent_wr_begin(&n->ag_out, FL_AGENT_EXEC, r->id, n->session);
    uint64_t ms = timeout_ns > 0 ? (uint64_t)(timeout_ns + FL_NS_PER_MS - 1) / FL_NS_PER_MS : 0;
    fl_agent_wr_u32(&n->ag_out, ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms);
    fl_agent_wr_u32(&n->ag_out, (uint32_t)n->cfg.n_env);
    for (size_t i = 0; i < n->cfg.n_env; i++) {
        fl_agent_wr_bytes(&n->ag_out, n->cfg.env[i], (uint32_t)strlen(n->cfg.env[i]));
    }
    fl_agent_wr_bytes(&n->ag_out, cmd, (uint32_t)strlen(cmd));
    fl_agent_wr_finish(&n->ag_out, s);
    agent_send(n);
}

static void start_setup(struct hv_node *n)
{
    char *script = hv_setup_script(&n->cfg);
    int64_t left = n->cfg.ready_timeout_ns - (fl_loop_now(n->loop) - n->boot_start_ns);
    struct req *r = req_new(n, REQ_SETUP, FL_MAX(left, FL_NS_PER_SEC) + EXEC_GRACE_NS);
    send_exec(n, r, script, FL_MAX(left, FL_NS_PER_SEC));
    free(script);
}

static void agent_violation(struct hv_node *n, const char *what)
{
    /* The guest broke the protocol: stop listening to it. */
    n->ag_dead = true;
    if (n->agent_fd >= 0) {
        fl_loop_del_fd(n->loop, n->agent_fd);
    }
    n->ag_in_size = 0;
    fail(n, EPROTO, "guest agent protocol violation (%s); agent disconnected", what);
    fail_all(n, EPROTO, "guest agent disconnected");
}

static struct req *find_req(struct hv_node *n, uint32_t id)
{
    for (struct req *r = n->reqs; r; r = r->next) {
        if (r->id == id) {
            return r;
        }
    }
    return NULL;
}

static char *dup_bytes(const uint8_t *p, uint32_t n)
{
    char *s = fl_xmalloc((size_t)n + 1);
    if (n) {
        memcpy(s, p, n);
    }
    s[n] = '\0';
    return s;
}

static void finish_setup(struct hv_node *n, const struct hv_exec_result *res)
{
    if (res->exit_code == 0) {
        n->boot_ns = fl_loop_now(n->loop) - n->boot_start_ns;
        fl_timer_disarm(n->ready_timer);
        set_state(n, HV_NODE_READY);
        fl_log(FL_LOG_INFO, "hv", "node %s: ready in %.2f s", n->cfg.name,
               (double)n->boot_ns / 1e9);
        if (n->cb.on_ready) {
            n->cb.on_ready(n, n->arg);
        }
        return;
    }
    /* Last line of stderr is usually the reason. */
    const char *e = res->err;
    size_t len = res->err_size;
    while (len && (e[len - 1] == '\n')) {
        len--;
    }
    size_t start = len;
    while (start && e[start - 1] != '\n') {
        start--;
    }
    fail(n, EIO, "node setup failed in the guest (exit %d): %.*s", res->exit_code,
         (int)(len - start), e + start);
}

static void on_poweroff_done(struct hv_node *n)
{
    if (n->pid > 0) {
        struct fl_error *err = NULL;
        if (!qmp_cmd(n, "quit", &err)) {
            fl_error_free(err);
            kill_qemu(n);
        }
        fl_timer_arm_in(n->kill_timer, QUIT_KILL_DELAY_NS);
    }
}

static bool agent_frame(struct hv_node *n, const struct fl_agent_header *h, const uint8_t *pl)
{
    struct fl_agent_rd rd = {.p = pl, .left = h->len};
    if (h->type == FL_AGENT_HELLO) {
        uint32_t version = fl_agent_rd_u32(&rd);
        uint32_t session = fl_agent_rd_u32(&rd);
        if (!fl_agent_rd_done(&rd) || version != FL_AGENT_VERSION || session != h->session) {
            agent_violation(n, "bad HELLO (version or session)");
            return false;
        }
        fl_log(FL_LOG_DEBUG, "hv", "node %s: agent hello (session %08x)", n->cfg.name, session);
        if (n->ag_hello && n->session != session) {
            /* A reboot we did not see as a QMP RESET (guest reboot). */
            fail_all(n, ECONNRESET, "the guest rebooted");
        }
        n->session = session;
        n->ag_hello = true;
        if (n->state == HV_NODE_READY || n->state == HV_NODE_PAUSED) {
            set_state(n, HV_NODE_BOOTING);
            n->boot_start_ns = fl_loop_now(n->loop);
            fl_timer_arm_in(n->ready_timer, n->cfg.ready_timeout_ns);
        }
        if (n->state == HV_NODE_BOOTING) {
            start_setup(n);
        }
        return true;
    }
    if (h->type != FL_AGENT_PONG && h->type != FL_AGENT_EXEC_RESULT &&
        h->type != FL_AGENT_CLOCK_RESULT && h->type != FL_AGENT_ERROR) {
        agent_violation(n, "unexpected message type from the guest");
        return false;
    }
    if (h->session != n->session) {
        return true; /* an answer from an earlier boot */
    }
    struct req *r = find_req(n, h->id);
    if (!r) {
        fl_log(FL_LOG_DEBUG, "hv", "node %s: late agent answer %u ignored", n->cfg.name, h->id);
        return true;
    }
    int64_t now = fl_loop_now(n->loop);
    if (h->type == FL_AGENT_ERROR) {
        uint32_t code = fl_agent_rd_u32(&rd);
        uint32_t sz;
        const uint8_t *m = fl_agent_rd_bytes(&rd, 4096, &sz);
        if (!m || !fl_agent_rd_done(&rd)) {
            agent_violation(n, "malformed ERROR");
            return false;
        }
        char *msg = dup_bytes(m, sz);
        for (char *c = msg; *c; c++) {
            *c = (unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e ? '?' : *c;
        }
        char *full = fl_xasprintf("the guest agent refused: %s", msg);
        enum req_kind kind = r->kind;
        req_fail(n, r, code > 0 && code < 4096 ? (int)code : EIO, full);
        if (kind == REQ_SETUP && !n->destroyed) {
            fail(n, EIO, "node setup: %s", full);
        }
        free(msg);
        free(full);
        return !n->destroyed;
    }
    req_unlink(n, r);
    bool ok = true;
    if (h->type == FL_AGENT_PONG && r->kind == REQ_PING) {
        if (!fl_agent_rd_done(&rd)) {
            ok = false;
        } else if (r->done_cb) {
            r->done_cb(n, NULL, r->arg);
        }
    } else if (h->type == FL_AGENT_CLOCK_RESULT && r->kind == REQ_CLOCK) {
        uint32_t code = fl_agent_rd_u32(&rd);
        int64_t t = fl_agent_rd_i64(&rd);
        (void)t;
        if (!fl_agent_rd_done(&rd)) {
            ok = false;
        } else if (r->done_cb) {
            struct fl_error *err = NULL;
            if (code) {
                fl_error_setf(&err, code < 4096 ? (int)code : EIO,
                              "node %s: the guest could not set its clock: %s", n->cfg.name,
                              strerror(code < 4096 ? (int)code : EIO));
            }
            r->done_cb(n, err, r->arg);
            fl_error_free(err);
        }
    } else if (h->type == FL_AGENT_EXEC_RESULT &&
               (r->kind == REQ_EXEC || r->kind == REQ_SETUP || r->kind == REQ_POWEROFF)) {
        struct hv_exec_result res = {0};
        uint32_t code = fl_agent_rd_u32(&rd);
        uint32_t sig = fl_agent_rd_u32(&rd);
        uint32_t flags = fl_agent_rd_u32(&rd);
        uint32_t osz, esz;
        const uint8_t *o = fl_agent_rd_bytes(&rd, FL_AGENT_OUTPUT_MAX, &osz);
        const uint8_t *e = fl_agent_rd_bytes(&rd, FL_AGENT_OUTPUT_MAX, &esz);
        if (!o || !e || !fl_agent_rd_done(&rd) || sig > 64 || (code != UINT32_MAX && code > 255) ||
            (flags & ~7u)) {
            ok = false;
        } else {
            res.exit_code = code == UINT32_MAX ? -1 : (int)code;
            res.signal = (int)sig;
            res.timed_out = flags & FL_AGENT_F_TIMED_OUT;
            res.out_truncated = flags & FL_AGENT_F_OUT_TRUNCATED;
            res.err_truncated = flags & FL_AGENT_F_ERR_TRUNCATED;
            res.out = dup_bytes(o, osz);
            res.out_size = osz;
            res.err = dup_bytes(e, esz);
            res.err_size = esz;
            res.duration_ns = now - r->start_ns;
            if (r->kind == REQ_EXEC) {
                if (r->exec_cb) {
                    r->exec_cb(n, &res, NULL, r->arg);
                }
            } else if (r->kind == REQ_SETUP) {
                finish_setup(n, &res);
            } else {
                on_poweroff_done(n);
            }
            hv_exec_result_clear(&res);
        }
    } else {
        ok = false;
    }
    if (ok) {
        free(r);
    } else {
        node_ref(n);
        agent_violation(n, "malformed or mismatched answer");
        if (!n->destroyed) {
            req_complete_err(n, r, EPROTO, "guest agent protocol violation");
        } else {
            free(r);
        }
        node_unref(n);
    }
    return ok && !n->destroyed;
}

static void on_agent(struct fl_loop *loop, int fd, uint32_t events, void *arg)
{
    struct hv_node *n = arg;
    if (events & EPOLLOUT) {
        agent_flush(n);
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || n->ag_dead) {
        return;
    }
    const size_t cap = FL_AGENT_HEADER_SIZE + FL_AGENT_PAYLOAD_MAX;
    if (!n->ag_in) {
        n->ag_in = fl_xmalloc(cap);
    }
    ssize_t r = recv(fd, n->ag_in + n->ag_in_size, cap - n->ag_in_size, MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (r <= 0) {
        fl_loop_del_fd(loop, fd);
        close(fd);
        n->agent_fd = -1;
        return;
    }
    n->ag_in_size += (size_t)r;
    node_ref(n);
    size_t off = 0;
    while (!n->destroyed && !n->ag_dead && n->ag_in_size - off >= FL_AGENT_HEADER_SIZE) {
        struct fl_agent_header h;
        int e = fl_agent_header_parse(n->ag_in + off, &h);
        if (e < 0) {
            agent_violation(n, e == -EMSGSIZE ? "frame too large" : "bad frame header");
            break;
        }
        if (n->ag_in_size - off < FL_AGENT_HEADER_SIZE + (size_t)h.len) {
            break;
        }
        const uint8_t *payload = n->ag_in + off + FL_AGENT_HEADER_SIZE;
        off += FL_AGENT_HEADER_SIZE + (size_t)h.len;
        if (!agent_frame(n, &h, payload)) {
            break;
        }
    }
    if (!n->destroyed) {
        if (n->ag_dead) {
            n->ag_in_size = 0;
        } else {
            memmove(n->ag_in, n->ag_in + off, n->ag_in_size - off);
            n->ag_in_size -= off;
        }
    }
    node_unref(n);
}

static void on_req_timer(struct fl_loop *loop, struct fl_timer *t, void *arg)
{
    struct req *r = arg;
    struct hv_node *n = r->node;
    node_ref(n);
    req_fail(n, r, ETIMEDOUT,
             n->state == HV_NODE_PAUSED ? "the guest agent did not answer in time (node paused)"
                                        : "the guest agent did not answer in time");
    node_unref(n);
}

static struct req *req_new(struct hv_node *n, enum req_kind kind, int64_t timeout_ns)
{
    struct req *r = fl_xcalloc(1, sizeof *r);
    r->node = n;
    r->kind = kind;
    r->id = ++n->next_id ? n->next_id : ++n->next_id;
    r->start_ns = fl_loop_now(n->loop);
    r->timer = fl_timer_create(n->loop, on_req_timer, r);
    fl_timer_arm_in(r->timer, timeout_ns);
    r->next = n->reqs;
    n->reqs = r;
    return r;
}

/* ---- boot ---- */

static int sys_pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Whether execvp() would find `prog`: a path with a slash is taken as
 * is, a bare name is looked up in PATH. */
static bool qemu_runnable(const char *prog)
{
    if (strchr(prog, '/')) {
        return access(prog, X_OK) == 0;
    }
    const char *path = getenv("PATH");
    char *dirs = fl_xstrdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
    bool found = false;
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d && !found;
         d = strtok_r(NULL, ":", &save)) {
        char *full = fl_xasprintf("%s/%s", *d ? d : ".", prog);
        found = access(full, X_OK) == 0;
        free(full);
    }
    free(dirs);
    return found;
}

bool hv_node_boot(struct hv_node *n, struct fl_error **errp)
{
    if (n->state != HV_NODE_OFF || n->pid) {
        fl_error_setf(errp, EBUSY, "node %s: cannot boot: it is %s", n->cfg.name,
                      hv_node_state_name(n->state));
        return false;
    }
    /* QEMU 7.2 connects stream netdevs once, asynchronously: a missing
     * netback socket would leave the NIC silently unplugged. */
    for (size_t i = 0; i < n->cfg.n_nics + n->cfg.n_disks; i++) {
        bool nic = i < n->cfg.n_nics;
        const char *path = nic ? n->cfg.nics[i].socket_path : n->cfg.disks[i - n->cfg.n_nics].path;
        if (!nic && n->cfg.disks[i - n->cfg.n_nics].kind != HV_DISK_NBD) {
            continue;
        }
        struct stat st;
        if (stat(path, &st) < 0 || !S_ISSOCK(st.st_mode)) {
            fl_error_setf(errp, ENOENT,
                          "node %s: %s[%zu]: no unix socket at '%s' (%s must be listening "
                          "before the node boots)",
                          n->cfg.name, nic ? "nics" : "disks", nic ? i : i - n->cfg.n_nics, path,
                          nic ? "netback" : "the NBD server");
            return false;
        }
    }
    if (!qemu_runnable(n->argv[0])) {
        fl_error_setf(errp, ENOENT,
                      "node %s: QEMU '%s' was not found%s: install it (Debian: apt-get install "
                      "qemu-system-x86, which scripts/install-deps does) or set FAULTLINE_QEMU "
                      "to the qemu-system-x86_64 to use",
                      n->cfg.name, n->argv[0], strchr(n->argv[0], '/') ? "" : " in PATH");
        return false;
    }
    int qmp[2], ag[2], errpipe[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, qmp) < 0) {
        fl_error_setf_errno(errp, errno, "node %s: socketpair", n->cfg.name);
        return false;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ag) < 0) {
        fl_error_setf_errno(errp, errno, "node %s: socketpair", n->cfg.name);
        close(qmp[0]), close(qmp[1]);
        return false;
    }
    if (pipe2(errpipe, O_CLOEXEC) < 0) {
        fl_error_setf_errno(errp, errno, "node %s: pipe", n->cfg.name);
        close(qmp[0]), close(qmp[1]), close(ag[0]), close(ag[1]);
        return false;
    }
    int logfd = open(n->cfg.console_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (logfd < 0) {
        fl_error_setf_errno(errp, errno, "node %s: cannot open console log '%s'", n->cfg.name,
                            n->cfg.console_log);
        close(qmp[0]), close(qmp[1]), close(ag[0]), close(ag[1]);
        close(errpipe[0]), close(errpipe[1]);
        return false;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fl_error_setf_errno(errp, errno, "node %s: fork", n->cfg.name);
        close(qmp[0]), close(qmp[1]), close(ag[0]), close(ag[1]);
        close(errpipe[0]), close(errpipe[1]), close(logfd);
        return false;
    }
    if (pid == 0) {
        /* QEMU dies with the controller, whatever kills the controller. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(1);
        }
        setpgid(0, 0);
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        for (int s = 1; s < NSIG; s++) {
            if (s != SIGKILL && s != SIGSTOP) {
                signal(s, SIG_DFL);
            }
        }
        /* fds 3 and 4 are QMP and the agent; move sources out of the way */
        int q = fcntl(qmp[1], F_DUPFD, 10), a = fcntl(ag[1], F_DUPFD, 10);
        int ep = fcntl(errpipe[1], F_DUPFD_CLOEXEC, 10), lf = fcntl(logfd, F_DUPFD, 10);
        int nul = open("/dev/null", O_RDONLY);
        if (q < 0 || a < 0 || ep < 0 || lf < 0 || nul < 0 || dup2(nul, 0) < 0 || dup2(lf, 1) < 0 ||
            dup2(lf, 2) < 0 || dup2(q, 3) < 0 || dup2(a, 4) < 0) {
            int e = errno;
            ssize_t w = write(ep, &e, sizeof e);
            (void)w;
            _exit(127);
        }
        syscall(SYS_close_range, 5, ~0U, 0);
        /* close_range closed ep too: reopen the pipe end is impossible, so
         * report exec failures through the exit status and the log. */
        execvp(n->argv[0], n->argv);
        dprintf(2, "faultline: cannot run '%s': %s\n", n->argv[0], strerror(errno));
        _exit(127);
    }
    close(qmp[1]);
    close(ag[1]);
    close(errpipe[1]);
    close(logfd);
    int child_err = 0;
    ssize_t got = read(errpipe[0], &child_err, sizeof child_err);
    close(errpipe[0]);
    if (got == (ssize_t)sizeof child_err) {
        waitpid(pid, NULL, 0);
        close(qmp[0]);
        close(ag[0]);
        fl_error_setf_errno(errp, child_err, "node %s: cannot set up QEMU's descriptors",
                            n->cfg.name);
        return false;
    }
    int pidfd = sys_pidfd_open(pid);
    if (pidfd < 0) {
        int e = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(qmp[0]);
        close(ag[0]);
        fl_error_setf_errno(errp, e, "node %s: pidfd_open", n->cfg.name);
        return false;
    }
    n->pid = pid;
    n->pidfd = pidfd;
    n->qmp_fd = qmp[0];
    n->agent_fd = ag[0];
    n->expected_exit = false;
    n->ag_hello = false;
    n->ag_dead = false;
    n->session = 0;
    fl_set_nonblock(n->qmp_fd);
    fl_set_nonblock(n->agent_fd);
    fl_loop_add_fd(n->loop, pidfd, EPOLLIN, on_pidfd, n);
    fl_loop_add_fd(n->loop, n->qmp_fd, EPOLLIN, on_qmp, n);
    fl_loop_add_fd(n->loop, n->agent_fd, EPOLLIN, on_agent, n);
    n->boot_start_ns = fl_loop_now(n->loop);
    n->boot_ns = 0;
    fl_timer_arm_in(n->ready_timer, n->cfg.ready_timeout_ns);
    set_state(n, HV_NODE_BOOTING);
    fl_log(FL_LOG_INFO, "hv", "node %s: QEMU started (pid %d, %s)", n->cfg.name, (int)pid,
           hv_accel_name(n->accel));
    return true;
}

/* ---- operations ---- */

static bool need_running(struct hv_node *n, const char *op, struct fl_error **errp)
{
    if (n->pid <= 0 || n->state == HV_NODE_OFF) {
        fl_error_setf(errp, ENOTCONN, "node %s: cannot %s: the node is off", n->cfg.name, op);
        return false;
    }
    return true;
}

bool hv_node_pause(struct hv_node *n, struct fl_error **errp)
{
    return need_running(n, "pause", errp) && qmp_cmd(n, "stop", errp);
}

bool hv_node_resume(struct hv_node *n, struct fl_error **errp)
{
    return need_running(n, "resume", errp) && qmp_cmd(n, "cont", errp);
}

bool hv_node_reset(struct hv_node *n, struct fl_error **errp)
{
    return need_running(n, "reset", errp) && qmp_cmd(n, "system_reset", errp);
}

bool hv_node_crash(struct hv_node *n, struct fl_error **errp)
{
    if (!need_running(n, "crash", errp)) {
        return false;
    }
    kill_qemu(n);
    return true;
}

bool hv_node_poweroff(struct hv_node *n, int64_t timeout_ns, struct fl_error **errp)
{
    if (!need_running(n, "power off", errp)) {
        return false;
    }
    if (n->state == HV_NODE_STOPPING) {
        return true;
    }
    n->expected_exit = true;
    bool agent_ok = n->state == HV_NODE_READY && !n->ag_dead && n->agent_fd >= 0;
    set_state(n, HV_NODE_STOPPING);
    if (!agent_ok) {
        on_poweroff_done(n);
        return true;
    }
    int64_t t = timeout_ns > 0 ? timeout_ns : 10 * FL_NS_PER_SEC;
    struct req *r = req_new(n, REQ_POWEROFF, t);
    send_exec(n, r,
              "sync; awk '$1 ~ /^\\/dev\\/vd/ {print $2}' /proc/mounts | "
              "while read -r m; do mount -o remount,ro \"$m\" || true; done; sync",
              t);
    return true;
}

bool hv_node_exec(struct hv_node *n, const char *shell_cmd, int64_t timeout_ns, hv_exec_cb *cb,
                  void *arg, struct fl_error **errp)
{
    if (n->state != HV_NODE_READY && n->state != HV_NODE_PAUSED) {
        fl_error_setf(errp, ENOTCONN, "node %s: cannot run a command: the node is %s", n->cfg.name,
                      hv_node_state_name(n->state));
        return false;
    }
    if (!shell_cmd || strlen(shell_cmd) > FL_AGENT_CMD_MAX) {
        fl_error_setf(errp, EINVAL, "node %s: command missing or longer than %u bytes", n->cfg.name,
                      FL_AGENT_CMD_MAX);
        return false;
    }
    if (timeout_ns < 0) {
        fl_error_setf(errp, EINVAL, "node %s: negative command timeout", n->cfg.name);
        return false;
    }
    if (n->ag_out.size > AGENT_OUTBUF_MAX) {
        fl_error_setf(errp, ENOBUFS, "node %s: agent channel backed up", n->cfg.name);
        return false;
    }
    int64_t host_timeout = timeout_ns ? timeout_ns + EXEC_GRACE_NS : INT64_MAX / 4;
    struct req *r = req_new(n, REQ_EXEC, host_timeout);
    if (!timeout_ns) {
        fl_timer_disarm(r->timer);
    }
    r->exec_cb = cb;
    r->arg = arg;
    send_exec(n, r, shell_cmd, timeout_ns);
    return true;
}

bool hv_node_ping(struct hv_node *n, int64_t timeout_ns, hv_done_cb *cb, void *arg,
                  struct fl_error **errp)
{
    if (n->state != HV_NODE_READY && n->state != HV_NODE_PAUSED) {
        fl_error_setf(errp, ENOTCONN, "node %s: cannot ping: the node is %s", n->cfg.name,
                      hv_node_state_name(n->state));
        return false;
    }
    struct req *r = req_new(n, REQ_PING, timeout_ns > 0 ? timeout_ns : FL_NS_PER_SEC);
    r->done_cb = cb;
    r->arg = arg;
    size_t s = fl_agent_wr_begin(&n->ag_out, FL_AGENT_PING, r->id, n->session);
    fl_agent_wr_finish(&n->ag_out, s);
    agent_send(n);
    return true;
}

bool hv_node_clock_set(struct hv_node *n, enum hv_clock_mode mode, int64_t value_ns, hv_done_cb *cb,
                       void *arg, struct fl_error **errp)
{
    if (n->state != HV_NODE_READY && n->state != HV_NODE_PAUSED) {
        fl_error_setf(errp, ENOTCONN, "node %s: cannot set the clock: the node is %s", n->cfg.name,
                      hv_node_state_name(n->state));
        return false;
    }
    if (mode != HV_CLOCK_JUMP && mode != HV_CLOCK_SET) {
        fl_error_setf(errp, EINVAL, "node %s: clock mode %d is not jump or set", n->cfg.name, mode);
        return false;
    }
    if (mode == HV_CLOCK_SET && value_ns < 0) {
        fl_error_setf(errp, EINVAL, "node %s: cannot set the clock before 1970", n->cfg.name);
        return false;
    }
    struct req *r = req_new(n, REQ_CLOCK, 10 * FL_NS_PER_SEC);
    r->done_cb = cb;
    r->arg = arg;
    size_t s = fl_agent_wr_begin(&n->ag_out, FL_AGENT_CLOCK, r->id, n->session);
    fl_agent_wr_u32(&n->ag_out, mode == HV_CLOCK_JUMP ? 0 : 1);
    fl_agent_wr_i64(&n->ag_out, value_ns);
    fl_agent_wr_finish(&n->ag_out, s);
    agent_send(n);
    return true;
}

void hv_exec_result_clear(struct hv_exec_result *res)
{
    if (!res) {
        return;
    }
    free(res->out);
    free(res->err);
    memset(res, 0, sizeof *res);
}

/* ---- teardown ---- */

static void node_free(struct hv_node *n)
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
    for (size_t i = 0; i < n->argc; i++) {
        free(n->argv[i]);
    }
    free(n->argv);
    free(n->ag_in);
    fl_agent_wr_free(&n->ag_out);
    fl_buf_free(&n->qmp_in);
    fl_buf_free(&n->qmp_out);
    free(n);
}

void hv_node_destroy(struct hv_node *n)
{
    if (!n || n->destroyed) {
        return;
    }
    n->destroyed = true;
    if (n->pid > 0) {
        kill_qemu(n);
        while (waitpid(n->pid, NULL, 0) < 0 && errno == EINTR) {
        }
        n->pid = 0;
    }
    close_channels(n);
    while (n->reqs) {
        struct req *r = n->reqs;
        req_unlink(n, r);
        free(r);
    }
    fl_timer_destroy(n->ready_timer);
    fl_timer_destroy(n->kill_timer);
    n->ready_timer = n->kill_timer = NULL;
    node_unref(n);
}

/* ---- synchronous helpers ---- */

bool hv_node_wait_state(struct hv_node *n, enum hv_node_state state, int64_t timeout_ns,
                        struct fl_error **errp)
{
    int64_t deadline = fl_clock_mono_ns() + timeout_ns;
    bool started_off = n->state == HV_NODE_OFF;
    while (n->state != state) {
        if (n->state == HV_NODE_OFF && (!started_off || state != HV_NODE_OFF)) {
            fl_error_setf(errp, ENOTCONN, "node %s: QEMU is not running (waiting for %s); see '%s'",
                          n->cfg.name, hv_node_state_name(state), n->cfg.console_log);
            return false;
        }
        int64_t left = deadline - fl_clock_mono_ns();
        if (left <= 0) {
            fl_error_setf(errp, ETIMEDOUT, "node %s: still %s after %.1f s (waiting for %s)",
                          n->cfg.name, hv_node_state_name(n->state), (double)timeout_ns / 1e9,
                          hv_node_state_name(state));
            return false;
        }
        int r = fl_loop_run_once(n->loop, (int)FL_MIN(left / FL_NS_PER_MS + 1, 100));
        if (r < 0) {
            fl_error_setf_errno(errp, -r, "node %s: event loop", n->cfg.name);
            return false;
        }
    }
    return true;
}

struct exec_sync {
    bool done;
    struct hv_exec_result *res;
    struct fl_error *err;
};

static void exec_sync_cb(struct hv_node *n, const struct hv_exec_result *res,
                         const struct fl_error *err, void *arg)
{
    struct exec_sync *s = arg;
    s->done = true;
    if (res) {
        *s->res = *res;
        s->res->out = fl_xmalloc(res->out_size + 1);
        memcpy(s->res->out, res->out, res->out_size + 1);
        s->res->err = fl_xmalloc(res->err_size + 1);
        memcpy(s->res->err, res->err, res->err_size + 1);
    } else {
        fl_error_setf(&s->err, err->code, "%s", err->msg);
    }
}

bool hv_node_exec_sync(struct hv_node *n, const char *shell_cmd, int64_t timeout_ns,
                       struct hv_exec_result *res, struct fl_error **errp)
{
    memset(res, 0, sizeof *res);
    struct exec_sync s = {.res = res};
    if (!hv_node_exec(n, shell_cmd, timeout_ns, exec_sync_cb, &s, errp)) {
        return false;
    }
    while (!s.done) {
        int r = fl_loop_run_once(n->loop, 100);
        if (r < 0) {
            fl_error_setf_errno(errp, -r, "node %s: event loop", n->cfg.name);
            return false;
        }
    }
    if (s.err) {
        fl_error_propagate(errp, s.err);
        return false;
    }
    return true;
}
