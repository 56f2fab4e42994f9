/*
 * hv/ — full guests on QEMU: images built from Debian packages, QEMU
 * command lines, QMP, the guest agent, consoles, process supervision.
 * hv/ makes no fault decisions: it does what it is told (pause, crash,
 * skew the clock) and reports what happened.
 *
 *   runner ──▶ hv_node_* ──▶ qemu-system-x86_64 -M microvm (PVH vmlinux + initramfs)
 *                 │  QMP (socketpair, never a file)      ── stop / cont / system_reset / quit
 *                 │  agent (socketpair ─ virtio-serial)  ── hello / ping / exec / clock
 *                 │  pidfd in the loop                   ── exit of QEMU ─▶ on_exit
 *   netback ◀── -netdev stream unix socket (QEMU is the client)
 *   blkback ◀── -blockdev nbd unix socket (QEMU is the client)
 *
 * Everything is asynchronous on core's fl_loop; every callback runs from
 * the loop.  Synchronous helpers (hv_node_wait_state, hv_node_exec_sync)
 * spin the loop for tests and the CLI.
 *
 * Layout (this header is the room's only public one; hv/internal.h holds
 * what the files share, hv/image.h and hv/node.h the two halves):
 *
 *   images   image.c (pipeline) ─▶ image-resolve.c ─▶ tool.c (apt, dpkg-deb)
 *            hv/image.h           image-kernel.c (elf.c, lz4.c)
 *                                 image-userland.c (busybox, packages, libs)
 *                                 image-pack.c (cpio.c)
 *                                 image-cache.c (dir trust, SHA-256 key,
 *                                   manifest, verify, list, prune)
 *   nodes    node.c (lifecycle) ─▶ node-config.c (check + copy)
 *            hv/node.h             qemu-cmdline.c (hv_qemu_cmdline: argv)
 *            node-ops.c ─▶ qmp.c (QMP session; core's fl_json reads it)
 *                      └─▶ agent-channel.c (frames, requests; proto.h)
 *   shared   accel.c, script.c (setup script), proto.c (agent wire
 *            format, also linked into agent/agent.c, the guest side)
 *
 * The agent binary and init.sh are embedded by trace/embed.cmake.  No
 * file of one half includes the other half's header.
 *
 * Errors: setup paths return bool/pointer and take `struct fl_error **errp`
 * last (core/core.h).
 */
#ifndef FL_HV_H
#define FL_HV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/core.h"

/* ------------------------------------------------------------------ */
/* Accelerator                                                         */
/* ------------------------------------------------------------------ */

#define HV_ACCELS(X)                                                                               \
    X(AUTO, "auto")                                                                                \
    X(KVM, "kvm")                                                                                  \
    X(TCG, "tcg")

enum hv_accel {
#define HV_ACCEL_ENUM(name, str) HV_ACCEL_##name,
    HV_ACCELS(HV_ACCEL_ENUM)
#undef HV_ACCEL_ENUM
};
const char *hv_accel_name(enum hv_accel accel);
/* "auto" | "kvm" | "tcg"; error names the value and the valid ones. */
bool hv_accel_parse(const char *s, enum hv_accel *out, struct fl_error **errp);
/* Resolves HV_ACCEL_AUTO: KVM only when /proc/cpuinfo advertises vmx or
 * svm AND /dev/kvm opens read-write; TCG otherwise.  `why` (may be NULL)
 * receives a static sentence explaining the choice, for the log.
 * A non-AUTO value is returned as is.  The environment variable
 * FAULTLINE_ACCEL=kvm|tcg|auto overrides `requested` == AUTO. */
enum hv_accel hv_accel_resolve(enum hv_accel requested, const char **why);

/* ------------------------------------------------------------------ */
/* Images                                                              */
/* ------------------------------------------------------------------ */

/* A local file or directory copied into the image.  `dst` is an absolute
 * guest path; a directory is copied recursively (symlinks kept as links,
 * modes kept, owner root). */
struct hv_image_file {
    const char *src;
    const char *dst;
};

struct hv_image_spec {
    /* Extra Debian packages (binary package names).  Each is unpacked
     * into the image together with the shared-library closure of its ELF
     * files (resolved over its Depends and libc6).  Maintainer scripts do
     * not run.  May be NULL when n_packages is 0. */
    const char *const *packages;
    size_t n_packages;
    const struct hv_image_file *files;
    size_t n_files;
    /* NULL: $FAULTLINE_CACHE, else $XDG_CACHE_HOME/faultline, else
     * ~/.cache/faultline, else (no HOME) $XDG_RUNTIME_DIR/faultline, else
     * /tmp/faultline-<uid>.  Created 0700; refused (EPERM, the message
     * names the path, owner and mode) unless owned by the effective uid
     * and not group- or world-writable. */
    const char *cache_dir;
    /* NULL: "linux-image-cloud-amd64" (its Depends names the real kernel
     * package). */
    const char *kernel_package;
    /* Asked between the build's steps and every 100 ms while one of its
     * subprocesses (apt-get, dpkg-deb) runs: true stops the build, ending
     * a running subprocess, and hv_image_build fails with ECANCELED
     * ("interrupted"); the cache keeps only complete images.  NULL:
     * never. */
    bool (*cancelled)(void *arg);
    void *cancel_arg;
};

/* A built image in the cache.  Paths are absolute and owned (freed by
 * hv_image_clear). */
struct hv_image {
    char *key;            /* hex SHA-256 of every input (64 characters) */
    char *dir;            /* cache entry directory */
    char *kernel;         /* uncompressed vmlinux with a PVH note */
    char *initrd;         /* newc cpio (uncompressed) */
    char *kernel_release; /* e.g. "6.1.0-28-cloud-amd64" */
    bool cache_hit;       /* true when nothing had to be built */
};
void hv_image_clear(struct hv_image *img); /* accepts NULL and cleared images */

/* Progress while building: stage is a short word ("resolve", "download",
 * "unpack", "kernel", "libraries", "pack"), item what it works on (may be
 * NULL), done/total count items of that stage (total 0 = unknown). */
typedef void hv_progress_fn(void *arg, const char *stage, const char *item, uint64_t done,
                            uint64_t total);

/* Builds (or finds) the image for `spec`.  The key is the SHA-256 (hex)
 * of: the builder version, the resolved versions of the kernel,
 * busybox-static and every package (apt-cache, works offline), the agent
 * binary, the init script, and the content of every local file.  A key
 * already in the cache is a hit (no download, no unpacking) when its
 * files still have the SHA-256 its manifest records; an entry that does
 * not is logged, set aside and built again.  Downloaded .deb files are kept in
 * <cache>/debs, so a rebuild with the same versions is offline.
 * Concurrent builds of the same key (several processes) are safe: each
 * builds in a private temporary directory and renames it into place.
 * `progress` may be NULL. */
bool hv_image_build(const struct hv_image_spec *spec, struct hv_image *out,
                    hv_progress_fn *progress, void *progress_arg, struct fl_error **errp);

/* The cache directory actually used for `cache_dir` (see the spec);
 * caller frees. */
char *hv_image_cache_dir(const char *cache_dir);

struct hv_image_info {
    char *key;
    char *dir;
    char *kernel_release;
    char *packages; /* comma-separated extra packages, "" when none */
    uint64_t size_bytes;
    int64_t last_used_ns; /* CLOCK_REALTIME of the last build/hit */
};
/* Lists cached images, most recently used first.  An empty or missing
 * cache is an empty list, not an error; a cache that fails the ownership
 * check of hv_image_spec.cache_dir is (EPERM), for listing and pruning
 * alike. */
bool hv_image_list(const char *cache_dir, struct hv_image_info **out, size_t *n,
                   struct fl_error **errp);
void hv_image_info_free(struct hv_image_info *infos, size_t n);
/* Removes images not used for at least `older_than_ns` (0: all), and with
 * `downloads` also the .deb download cache.  Reports counts (may be NULL). */
bool hv_image_prune(const char *cache_dir, int64_t older_than_ns, bool downloads, size_t *removed,
                    uint64_t *freed_bytes, struct fl_error **errp);

/* ------------------------------------------------------------------ */
/* Nodes                                                               */
/* ------------------------------------------------------------------ */

struct hv_nic_config {
    /* Unix socket netback listens on; QEMU connects as a `-netdev stream`
     * client once, at start-up (QEMU 7.2 has no reconnect for stream
     * netdevs): netback must listen before hv_node_boot, and must keep
     * the connection; a restarted node is a new QEMU that connects
     * again. */
    const char *socket_path;
    /* "52:54:00:xx:xx:xx"; NULL: derived from the node name and index
     * (locally administered, stable across runs). */
    const char *mac;
    /* "10.0.0.1/24"; NULL: the link is brought up without an address. */
    const char *ip_cidr;
};

#define HV_DISK_KINDS(X)                                                                           \
    X(NBD, "nbd")                                                                                  \
    X(FILE, "file")

enum hv_disk_kind {
#define HV_DISK_KIND_ENUM(name, str) HV_DISK_##name,
    HV_DISK_KINDS(HV_DISK_KIND_ENUM)
#undef HV_DISK_KIND_ENUM
};

struct hv_disk_config {
    enum hv_disk_kind kind;
    /* NBD: unix socket blkback serves on (must accept connections when
     * the node boots: QEMU connects at start-up).  FILE: a raw image file
     * QEMU opens itself (tests, standalone use). */
    const char *path;
    const char *export_name; /* NBD export name; NULL = "" */
    /* Guest mount point (absolute); NULL: the device is left unmounted.
     * The guest finds the device by its virtio serial "fl-d<index>"
     * (/dev/disk/fl-d<index> is a symlink to it). */
    const char *mount_point;
    /* When the device carries no ext2/3/4 superblock, make an ext4 file
     * system (mke2fs) before mounting. */
    bool format_if_blank;
    bool read_only;
};

/* A line of /etc/hosts, and optionally a permanent neighbor (ARP) entry.
 *
 * `mac` ("52:54:00:xx:xx:xx", unicast; NULL = none): the MAC of the NIC
 * that owns `ip`.  When set, `ip` is IPv4, and `ip` lies inside the subnet
 * of one of this node's NICs (nics[].ip_cidr), the setup script adds a
 * permanent ARP entry for it on that NIC (on every NIC whose subnet holds
 * it), so the guest never sends ARP requests for that address and no
 * partition can make a neighbor unreachable by dropping ARP: frames are
 * cut exactly as configured and nothing else (a one-way partition n3 -> n1
 * drops n3's frames to n1 and only those).  Entries for the node's own
 * addresses and addresses outside its subnets are skipped.  The entries
 * are set again after every boot, reset and restart (/proc/net/arp flags
 * 0x6: ATF_COM|ATF_PERM).  A MAC on an IPv6 entry is an error (the guest's
 * busybox has no tool for permanent NDP entries). */
struct hv_host_entry {
    const char *name;
    const char *ip;
    const char *mac;
};

/* A command started after the node is configured, as `sh -c cmd` with
 * the node's env, stdin /dev/null, output to the console.  With
 * `restart` it is restarted one second after it exits (any status). */
struct hv_command {
    const char *cmd;
    bool restart;
};

struct hv_node_config {
    const char *name;    /* [A-Za-z0-9][A-Za-z0-9_-]{0,62} */
    unsigned vcpus;      /* 0 = 1 */
    unsigned memory_mib; /* 0 = 128; minimum 64 */
    const char *kernel;  /* hv_image.kernel */
    const char *initrd;  /* hv_image.initrd */
    /* Existing directory, mode 0700 (checked).  hv puts nothing here but
     * the console log default. */
    const char *run_dir;
    enum hv_accel accel; /* AUTO is resolved with hv_accel_resolve (logged) */
    const struct hv_nic_config *nics;
    size_t n_nics;
    const struct hv_disk_config *disks;
    size_t n_disks;
    const struct hv_host_entry *hosts; /* every node, this one included */
    size_t n_hosts;
    const char *hostname; /* NULL = name */
    const struct hv_command *commands;
    size_t n_commands;
    const char *const *env; /* "KEY=VALUE" for commands and exec */
    size_t n_env;
    /* NULL = <run_dir>/<name>.console.log; appended to across boots. */
    const char *console_log;
    const char *extra_cmdline; /* appended to the kernel command line */
    /* Boot to ready must take at most this long, else on_fail (and the
     * node is killed).  0 = 60 s (TCG) / 20 s (KVM). */
    int64_t ready_timeout_ns;
    /* NULL: $FAULTLINE_QEMU, else qemu-system-x86_64 from PATH. */
    const char *qemu_binary;
};

#define HV_NODE_STATES(X)                                                                          \
    X(OFF, "off")           /* created, or QEMU has exited */                                      \
    X(BOOTING, "booting")   /* QEMU started, agent not yet configured */                           \
    X(READY, "ready")       /* configured; commands started; exec works */                         \
    X(PAUSED, "paused")     /* vCPUs stopped (QMP stop): guest silent */                           \
    X(STOPPING, "stopping") /* graceful poweroff in progress */

enum hv_node_state {
#define HV_NODE_STATE_ENUM(name, str) HV_NODE_##name,
    HV_NODE_STATES(HV_NODE_STATE_ENUM)
#undef HV_NODE_STATE_ENUM
};
const char *hv_node_state_name(enum hv_node_state state);

struct hv_node;

struct hv_callbacks {
    /* The agent answered and the node's configuration (hostname, hosts,
     * NICs, disks) was applied; commands have been started.  Called
     * after every boot, reset and guest-initiated reboot.  May be NULL. */
    void (*on_ready)(struct hv_node *node, void *arg);
    /* QEMU exited.  `unexpected` is false only after hv_node_crash,
     * hv_node_poweroff and hv_node_destroy asked for it; a QEMU that dies
     * on its own (crash, OOM kill, guest-initiated poweroff) is
     * unexpected.  wait_status as from waitpid().  May be NULL. */
    void (*on_exit)(struct hv_node *node, bool unexpected, int wait_status, void *arg);
    /* Something failed that is not a QEMU exit: boot did not reach ready
     * in time (QEMU is then killed: on_exit follows, expected), the node
     * configuration failed in the guest, the agent broke the protocol
     * (it is disconnected).  May be NULL. */
    void (*on_fail)(struct hv_node *node, const struct fl_error *err, void *arg);
    /* Pause/resume took effect (QMP STOP/RESUME events).  May be NULL. */
    void (*on_state)(struct hv_node *node, enum hv_node_state state, void *arg);
};

/* Validates the configuration (copied: the caller's strings may go away)
 * and creates a node in state OFF.  Nothing is started.  cb may be NULL. */
struct hv_node *hv_node_create(struct fl_loop *loop, const struct hv_node_config *config,
                               const struct hv_callbacks *cb, void *arg, struct fl_error **errp);
/* Kills QEMU if it runs (SIGKILL, no callbacks), fails pending
 * operations without calling their callbacks, closes every fd.  NULL ok. */
void hv_node_destroy(struct hv_node *node);

const char *hv_node_name(const struct hv_node *node);
enum hv_node_state hv_node_state(const struct hv_node *node);
pid_t hv_node_pid(const struct hv_node *node); /* 0 when not running */
/* The argv QEMU was (or will be) started with, NULL-terminated; for logs. */
const char *const *hv_node_argv(const struct hv_node *node);
/* Wall time from the last hv_node_boot to ready (ns), 0 if not ready yet. */
int64_t hv_node_boot_ns(const struct hv_node *node);

/* Starts QEMU (state OFF -> BOOTING).  Every NIC socket and NBD socket
 * must exist (ENOENT otherwise: the servers must listen first).  Also "restart after crash": the
 * same disks, NICs and config.  QEMU dies with the controller
 * (PR_SET_PDEATHSIG SIGKILL, its own process group). */
bool hv_node_boot(struct hv_node *node, struct fl_error **errp);
/* QMP stop / cont: a paused node keeps its connections open but answers
 * nothing (agent requests time out).  on_state reports the effect. */
bool hv_node_pause(struct hv_node *node, struct fl_error **errp);
bool hv_node_resume(struct hv_node *node, struct fl_error **errp);
/* Power cut: SIGKILL to QEMU, nothing flushed by QEMU.  on_exit follows
 * with unexpected == false. */
bool hv_node_crash(struct hv_node *node, struct fl_error **errp);
/* Graceful: the agent syncs and remounts the node's file systems
 * read-only, then QMP quit (QEMU flushes its block layer).  If the agent
 * does not answer within timeout_ns (0 = 10 s) QEMU is quit anyway.
 * on_exit follows with unexpected == false. */
bool hv_node_poweroff(struct hv_node *node, int64_t timeout_ns, struct fl_error **errp);
/* Hard reset (QMP system_reset): the guest reboots without syncing; the
 * node goes BOOTING and on_ready is called again. */
bool hv_node_reset(struct hv_node *node, struct fl_error **errp);

/* Result of a command run by the agent. */
struct hv_exec_result {
    int exit_code;  /* 0..255 when exited normally, else -1 */
    int signal;     /* terminating signal, 0 when exited normally */
    bool timed_out; /* the agent killed it at the timeout */
    char *out;      /* stdout, NUL-terminated (may hold NULs), never NULL */
    size_t out_size;
    bool out_truncated; /* more than HV_EXEC_OUTPUT_MAX bytes were written */
    char *err;          /* stderr, same rules */
    size_t err_size;
    bool err_truncated;
    int64_t duration_ns; /* as measured by the controller */
};
#define HV_EXEC_OUTPUT_MAX ((size_t)1 << 20)
void hv_exec_result_clear(struct hv_exec_result *res);

/* res is NULL and err says why when the command could not be run or no
 * answer came (node not ready, paused past the deadline, QEMU exited:
 * err->code ENOTCONN, ETIMEDOUT, ...).  Both are only valid during the
 * call. */
typedef void hv_exec_cb(struct hv_node *node, const struct hv_exec_result *res,
                        const struct fl_error *err, void *arg);

/* Runs `sh -c shell_cmd` in the guest with the node's env, stdin
 * /dev/null.  The agent kills the command's process group at timeout_ns
 * (0 = no limit); the controller gives up waiting at timeout_ns + 5 s
 * (ETIMEDOUT) — that is what a paused node produces.  Several commands
 * may run at once.  Requires state READY or PAUSED (a paused node takes
 * the request and times out; else false and *errp).  The
 * callback is always called exactly once, unless the node is destroyed
 * first. */
bool hv_node_exec(struct hv_node *node, const char *shell_cmd, int64_t timeout_ns, hv_exec_cb *cb,
                  void *arg, struct fl_error **errp);

/* Agent round trip; err NULL on success, ETIMEDOUT after timeout_ns. */
typedef void hv_done_cb(struct hv_node *node, const struct fl_error *err, void *arg);
bool hv_node_ping(struct hv_node *node, int64_t timeout_ns, hv_done_cb *cb, void *arg,
                  struct fl_error **errp);

/* Guest wall clock (CLOCK_REALTIME), set by the agent with
 * clock_settime.  HV_CLOCK_JUMP moves it by value_ns (positive: into the
 * future) relative to the guest's current time; HV_CLOCK_SET sets it to
 * value_ns since the epoch.  The jump is once: the guest clock then runs
 * at its normal rate from the new value (there is no NTP in the guest to
 * pull it back).  CLOCK_MONOTONIC is not affected. */
enum hv_clock_mode { HV_CLOCK_JUMP, HV_CLOCK_SET };
bool hv_node_clock_set(struct hv_node *node, enum hv_clock_mode mode, int64_t value_ns,
                       hv_done_cb *cb, void *arg, struct fl_error **errp);

/* ---- synchronous helpers (spin the loop; for tests and the CLI) ---- */

/* Runs the loop until the node reaches `state` (or OFF when waiting for
 * something else: error), or timeout_ns passes (ETIMEDOUT). */
bool hv_node_wait_state(struct hv_node *node, enum hv_node_state state, int64_t timeout_ns,
                        struct fl_error **errp);
/* hv_node_exec + spin; *res is filled (clear with hv_exec_result_clear). */
bool hv_node_exec_sync(struct hv_node *node, const char *shell_cmd, int64_t timeout_ns,
                       struct hv_exec_result *res, struct fl_error **errp);

#endif /* FL_HV_H */
