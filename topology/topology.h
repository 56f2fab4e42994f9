/*
 * topology/ — the scenario file: YAML (libyaml) to a validated, immutable
 * in-memory model of the run, its image, networks, nodes, links, disks,
 * timeline and checks.  topology/ starts nothing (DESIGN.md).
 *
 *   scenario.yaml ──libyaml──▶ reader (nodes with line:col) ──▶ parse every key
 *        (unknown keys: errors with "did you mean")  ──▶ resolve: defaults, addresses,
 *        link parameters per direction, event times, nemesis expansion (seeded),
 *        partition cut sets  ──▶ simulate the node states along the sorted timeline
 *        (contradictions are errors)  ──▶ struct topo_scenario (const after load)
 *
 * Files, in the order of that pipeline (internal.h, timeline.h):
 *
 *   ytree.c                    libyaml events ─▶ located tree (anchors, merges, nesting limit)
 *   load.c                     the phases in order; the error report
 *   diag.c                     errors (place, key path), unknown keys, "did you mean"
 *   keyset.c                   string sets: duplicates and lookups in O(1) (hostile files)
 *   values.c impairs.c         scalar values; link and disk impairment settings
 *   selectors.c                link selectors ("n1 -> n2 @ lan")
 *   run.c image.c networks.c   the run, the guest image, the networks
 *   nodes.c disks.c            nodes (NICs, commands, env), their disks
 *   addresses.c links.c        IP/MAC assignment; per-link parameter sets
 *   timeline.c payloads.c      timeline:/checks: items; each event kind's value
 *   expand.c simulate.c        times, expansion, sorting; node-state contradictions
 *   nemesis.c shapes.c         seeded fault schedules; partition shapes to cut sets
 *   model.c dump.c             freeing, names; the JSON dump (validate --dump)
 *
 * Everything in the model is resolved: the runner plays `events` in order
 * (they are sorted by time, ties in declaration order), and never needs to
 * compute a default, an address, a random draw or a cut set itself.
 *
 * Errors: topo_load_* report EVERY error found, one per line, in one
 * fl_error (code EINVAL; ENOENT/EIO when the file cannot be read):
 *
 *   scenario.yaml:14:9: links["n1 -> n2"].loss: '150%' is not a probability (valid: 0%..100%)
 *   scenario.yaml:7:5: nodes.n1.vcpu: unknown key 'vcpu'; did you mean 'vcpus'?
 *   scenario.yaml:30:7: timeline[4].resume: 'n2' is not paused at 25s (it is running)
 *
 * Where two places are involved (a duplicate name, a node in two groups)
 * the message names the other place as "(see FILE:LINE:COL)".
 *
 * Times are int64_t ns from time zero (the moment every node is ready).
 * Timeline time stops while a `wait` event waits: an event at time T runs
 * when the timeline clock reads T, i.e. at wall time T + the total time
 * spent in earlier waits.  docs/scenario-format.md describes the format.
 */
#ifndef FL_TOPOLOGY_H
#define FL_TOPOLOGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "impair/impair.h"

/* A place in the scenario file; 1-based.  line == 0: not from the file
 * (a default, or generated). */
struct topo_loc {
    uint32_t line;
    uint32_t col;
};

/* ------------------------------------------------------------------ */
/* Image                                                               */
/* ------------------------------------------------------------------ */

/* A local file or directory copied into the guest image. */
struct topo_file_copy {
    char *src; /* absolute host path (relative paths are resolved against the
                  scenario file's directory; it existed at load time) */
    char *dst; /* absolute guest path */
    struct topo_loc loc;
};

/* The guest base is always the kernel + busybox userland (hv/). */
struct topo_image {
    char **packages; /* extra Debian binary packages, sorted, no duplicates */
    size_t n_packages;
    struct topo_file_copy *files; /* in declaration order */
    size_t n_files;
};

/* ------------------------------------------------------------------ */
/* Networks, nodes, NICs, disks                                        */
/* ------------------------------------------------------------------ */

struct topo_network {
    char *name;
    uint32_t index;  /* position in scenario->networks */
    uint32_t subnet; /* network address, host byte order (10.0.1.0 = 0x0a000100) */
    uint8_t prefix_len;
    uint32_t mtu; /* guest NIC MTU, bytes (default 1500) */
    /* false (default): port security — the switch drops a frame whose
     * source MAC is not the sending NIC's (counted as `spoofed`) and never
     * moves a MAC to another port.  true: MAC learning, for MACs that move
     * (VRRP/keepalived virtual MACs, bridges inside guests). */
    bool learning;
    uint32_t *nodes; /* indices of the nodes attached, ascending */
    size_t n_nodes;
    struct topo_loc loc;
};

struct topo_nic {
    uint32_t network; /* index in scenario->networks */
    char ifname[16];  /* "eth0", "eth1", ... in the node's declaration order */
    uint8_t mac[6];   /* default 52:54:00:<network index>:<node index>:<nic index> */
    uint32_t ip;      /* host byte order; default subnet + node index + 1 */
    uint8_t prefix_len;
    bool mac_fixed, ip_fixed; /* given in the file */
    struct topo_loc loc;
};

/* What happens to writes still in a disk's volatile cache at a crash
 * (same names and meaning as blkback's BB_CRASH_POLICIES). */
#define TOPO_CRASH_POLICIES(X)                                                                     \
    X(KEEP, "keep")                                                                                \
    X(LOSE_UNFLUSHED, "lose-unflushed")                                                            \
    X(LOSE_RANDOM, "lose-random")                                                                  \
    X(TEAR, "tear")

enum topo_crash_policy {
#define TOPO_CRASH_ENUM(name, str) TOPO_CRASH_##name,
    TOPO_CRASH_POLICIES(TOPO_CRASH_ENUM)
#undef TOPO_CRASH_ENUM
        TOPO_CRASH__COUNT
};
const char *topo_crash_policy_name(enum topo_crash_policy p);

/* writeback: the disk has a volatile write cache (FLUSH/FUA make writes
 * durable; the crash policy applies).  writethrough: every acknowledged
 * write is durable, so the crash policy is always `keep` (resolved). */
#define TOPO_DISK_CACHES(X)                                                                        \
    X(WRITEBACK, "writeback")                                                                      \
    X(WRITETHROUGH, "writethrough")

enum topo_disk_cache {
#define TOPO_DISK_CACHE_ENUM(name, str) TOPO_DISK_CACHE_##name,
    TOPO_DISK_CACHES(TOPO_DISK_CACHE_ENUM)
#undef TOPO_DISK_CACHE_ENUM
};
const char *topo_disk_cache_name(enum topo_disk_cache c);

struct topo_disk {
    char *name;          /* unique per node */
    uint32_t index;      /* position in node->disks (guest serial "fl-d<index>") */
    uint64_t size_bytes; /* multiple of 512; default 64 MiB (or the base image's size: 0) */
    char *base_image;    /* absolute host path or NULL */
    enum topo_disk_cache cache;
    enum topo_crash_policy crash_policy; /* resolved: KEEP for writethrough */
    uint64_t cache_limit_bytes;          /* volatile cache size; 0 = blkback default */
    uint64_t capacity_bytes;             /* allocation limit (full disk); 0 = unlimited */
    char *mount;                         /* absolute guest mount point, or NULL: unmounted */
    bool format;                         /* make ext4 when blank (default true if mounted) */
    struct impair_disk_params faults;    /* initial faults (all zero = none) */
    struct topo_loc loc;
};

/* A command started at every boot of the node (sh -c). */
struct topo_command {
    char *command;
    bool restart; /* restarted when it exits (hv: after 1 s) */
    struct topo_loc loc;
};

struct topo_env {
    char *name;
    char *value;
};

struct topo_node {
    char *name;            /* [A-Za-z0-9][A-Za-z0-9_-]{0,62} */
    uint32_t index;        /* declaration order */
    uint32_t vcpus;        /* default 1 */
    uint64_t memory_bytes; /* default 128 MiB, multiple of 1 MiB, >= 64 MiB */
    struct topo_nic *nics; /* in the order the node lists its networks */
    size_t n_nics;
    struct topo_disk *disks;
    size_t n_disks;
    struct topo_command *commands;
    size_t n_commands;
    struct topo_env *env; /* in declaration order */
    size_t n_env;
    struct topo_image image; /* resolved: the scenario image + this node's additions */
    bool recorded;           /* run.record names it (or is true): recorded for replay */
    struct topo_loc loc;
};

/* ------------------------------------------------------------------ */
/* Links: one per directed (network, src, dst) for every pair of nodes  */
/* on a network.  Order: network, then src index, then dst index.       */
/* ------------------------------------------------------------------ */

struct topo_link {
    uint32_t network, src, dst;       /* indices */
    char *name;                       /* "<network>:<src>-><dst>", e.g. "lan:n1->n2" */
    struct impair_link_params params; /* baseline: network default < `*` < pair < direction */
};

/* A directed cut: frames from node src to node dst are dropped on every
 * network. */
struct topo_cut {
    uint32_t src, dst;
};

/* ------------------------------------------------------------------ */
/* Checks                                                              */
/* ------------------------------------------------------------------ */

#define TOPO_EXIT_EXPECTS(X)                                                                       \
    X(EXACT, "exact")     /* exit code == code */                                                  \
    X(NONZERO, "nonzero") /* exited with a code other than 0 (or a signal) */                      \
    X(ANY, "any")         /* any exit, as long as the command ran */

enum topo_exit_expect {
#define TOPO_EXIT_ENUM(name, str) TOPO_EXIT_##name,
    TOPO_EXIT_EXPECTS(TOPO_EXIT_ENUM)
#undef TOPO_EXIT_ENUM
};

struct topo_expect {
    enum topo_exit_expect exit; /* default EXACT with code 0 */
    int code;
    char *output; /* POSIX extended regex that must match somewhere in stdout,
                     or NULL; it compiled (regcomp REG_EXTENDED|REG_NOSUB) at load */
};

#define TOPO_AT_END INT64_MAX /* a check run after the timeline, at run.duration */

struct topo_check {
    char *name; /* given, or "check-<n>" (1-based) */
    uint32_t node;
    char *command;       /* sh -c */
    int64_t at_ns;       /* timeline time, or TOPO_AT_END */
    int64_t timeout_ns;  /* per attempt; default 10 s */
    int64_t within_ns;   /* retry until it passes or this long passed; 0 = one attempt */
    int64_t interval_ns; /* between attempts; default 1 s */
    struct topo_expect expect;
    struct topo_loc loc;
};

/* ------------------------------------------------------------------ */
/* Timeline                                                            */
/* ------------------------------------------------------------------ */

#define TOPO_EVENT_KINDS(X)                                                                        \
    X(PARTITION, "partition")                                                                      \
    X(HEAL, "heal")                                                                                \
    X(LINK_SET, "link")                                                                            \
    X(LINK_CLEAR, "link-clear")                                                                    \
    X(CRASH, "crash")                                                                              \
    X(RESTART, "restart")                                                                          \
    X(SHUTDOWN, "shutdown")                                                                        \
    X(PAUSE, "pause")                                                                              \
    X(RESUME, "resume")                                                                            \
    X(REBOOT, "reboot")                                                                            \
    X(CLOCK, "clock")                                                                              \
    X(DISK_SET, "disk")                                                                            \
    X(DISK_CLEAR, "disk-clear")                                                                    \
    X(EXEC, "exec")                                                                                \
    X(MARK, "mark")                                                                                \
    X(WAIT, "wait")                                                                                \
    X(CHECK, "check")

enum topo_event_kind {
#define TOPO_EVENT_ENUM(name, str) TOPO_EV_##name,
    TOPO_EVENT_KINDS(TOPO_EVENT_ENUM)
#undef TOPO_EVENT_ENUM
        TOPO_EV__COUNT
};
const char *topo_event_kind_name(enum topo_event_kind kind);
/* The case labels of the node operations (their payload is u.node), so
 * that every switch over event kinds names them once:
 *     switch (e->kind) { TOPO_EV_NODE_CASES: ...; break; ... } */
#define TOPO_EV_NODE_CASES                                                                         \
    case TOPO_EV_CRASH:                                                                            \
    case TOPO_EV_RESTART:                                                                          \
    case TOPO_EV_SHUTDOWN:                                                                         \
    case TOPO_EV_PAUSE:                                                                            \
    case TOPO_EV_RESUME:                                                                           \
    case TOPO_EV_REBOOT

#define TOPO_PARTITION_SHAPES(X)                                                                   \
    X(GROUPS, "groups")                       /* explicit groups */                                \
    X(ONE_WAY, "one-way")                     /* explicit from -> to */                            \
    X(HALVES, "halves")                       /* two groups, sizes n/2 rounded down and up */      \
    X(MAJORITY_MINORITY, "majority-minority") /* a random minority (1..ceil(n/2)-1) vs the rest */ \
    X(ISOLATE, "isolate")                     /* one node cut from all others */                   \
    X(RING, "ring")                           /* each node sees a different majority (n >= 4) */   \
    X(BRIDGE, "bridge")                       /* two halves; one node sees both */

enum topo_partition_shape {
#define TOPO_SHAPE_ENUM(name, str) TOPO_SHAPE_##name,
    TOPO_PARTITION_SHAPES(TOPO_SHAPE_ENUM)
#undef TOPO_SHAPE_ENUM
        TOPO_SHAPE__COUNT
};
const char *topo_partition_shape_name(enum topo_partition_shape shape);

/* Where an event came from. */
#define TOPO_ORIGINS(X)                                                                            \
    X(TIMELINE, "timeline")                                                                        \
    X(REVERT, "revert")   /* the automatic end of a timeline event with `duration` */              \
    X(NEMESIS, "nemesis") /* drawn from the seed by a nemesis schedule */                          \
    X(CHECK, "check")     /* a timed check (checks[]) */

enum topo_origin {
#define TOPO_ORIGIN_ENUM(name, str) TOPO_ORIGIN_##name,
    TOPO_ORIGINS(TOPO_ORIGIN_ENUM)
#undef TOPO_ORIGIN_ENUM
};
const char *topo_origin_name(enum topo_origin origin);

/* PARTITION and HEAL.  The runner applies `state` as the complete set of
 * cut directions (netback nb_partition_apply); `cuts` is this event's own
 * cut set (PARTITION) or the directions it healed (HEAL), for display. */
struct topo_ev_partition {
    enum topo_partition_shape shape; /* PARTITION only */
    char *label; /* "isolate n3", "n1 n2 | n3", "n3 -> n1 n2", "heal all", "heal p1" */
    struct topo_cut *cuts;
    size_t n_cuts;
    struct topo_cut *state; /* every direction cut after this event, sorted (src, dst) */
    size_t n_state;
};

/* LINK_SET and LINK_CLEAR: full parameters to install on each listed
 * link (an event's settings are merged over the link's baseline; a clear
 * gives the baseline back). */
struct topo_link_change {
    uint32_t link; /* index in scenario->links */
    struct impair_link_params params;
};
struct topo_ev_link {
    char *label; /* the selectors as written, e.g. "n1 -> n2, wan" */
    struct topo_link_change *changes;
    size_t n_changes;
};

/* CRASH, RESTART, SHUTDOWN, PAUSE, RESUME, REBOOT.
 * CRASH: a power cut; each disk applies `policy` when has_policy, else its
 * own crash_policy.  RESTART: boot again (after CRASH or SHUTDOWN) with
 * the same disks.  SHUTDOWN: graceful poweroff.  REBOOT: hard reset of a
 * running node (disks keep their caches). */
struct topo_ev_node {
    uint32_t node;
    bool has_policy;
    enum topo_crash_policy policy;
};

/* CLOCK: sets the guest's wall clock to true time + offset_ns (the
 * offset the node has after this event; `skew` sets it, `jump` adds to
 * it, an undo restores the offset from before).  hv: HV_CLOCK_JUMP by
 * delta_ns.  A RESTART or REBOOT resets the offset to 0 (the guest boots
 * with true time), and later deltas account for it. */
struct topo_ev_clock {
    uint32_t node;
    int64_t offset_ns;
    int64_t delta_ns; /* offset after - offset before */
};

/* DISK_SET and DISK_CLEAR: the disk's complete fault state from now on
 * (set: merged over the disk's initial faults; clear: the initial ones). */
struct topo_ev_disk {
    uint32_t node;
    uint32_t disk; /* index in node->disks */
    struct impair_disk_params faults;
    uint64_t capacity_bytes; /* 0 = unlimited */
    bool stall;              /* hold requests (bb_disk_stall) */
};

/* EXEC: run a command on a node.  Foreground: the timeline waits for it
 * (at most timeout_ns) like a `wait`; background: it runs on its own
 * (killed at timeout_ns if not 0).  With has_expect a mismatch counts as
 * a failed check in the verdict. */
struct topo_ev_exec {
    uint32_t node;
    char *command;
    bool background;
    int64_t timeout_ns; /* default 30 s foreground, 0 (no limit) background */
    bool has_expect;
    struct topo_expect expect;
};

/* WAIT: the timeline clock stops and `command` runs on `node` every
 * interval_ns until it exits 0; if timeout_ns passes first the run fails
 * (a failed check named after the event). */
struct topo_ev_wait {
    uint32_t node;
    char *command;
    int64_t timeout_ns;  /* default 60 s */
    int64_t interval_ns; /* default 1 s */
};

struct topo_event {
    enum topo_event_kind kind;
    enum topo_origin origin;
    int64_t at_ns;       /* timeline time */
    uint32_t seq;        /* position in scenario->events */
    char *name;          /* `name:` given in the file, or NULL */
    char *source;        /* "timeline[3]", "timeline[3] #2" (repeat), "nemesis.chaos #4" */
    struct topo_loc loc; /* of the timeline item / nemesis / check it came from */
    union {
        struct topo_ev_partition partition; /* PARTITION, HEAL */
        struct topo_ev_link link;           /* LINK_SET, LINK_CLEAR */
        struct topo_ev_node node;           /* CRASH, RESTART, SHUTDOWN, PAUSE, RESUME, REBOOT */
        struct topo_ev_clock clock;         /* CLOCK */
        struct topo_ev_disk disk;           /* DISK_SET, DISK_CLEAR */
        struct topo_ev_exec exec;           /* EXEC */
        char *mark;                         /* MARK: the marker text */
        struct topo_ev_wait wait;           /* WAIT */
        uint32_t check;                     /* CHECK: index in scenario->checks */
    } u;
};

/* A nemesis schedule as written (its events are already in `events`). */
struct topo_nemesis {
    char *name;
    char **faults; /* fault kinds it draws from, as names */
    size_t n_faults;
    uint32_t *nodes; /* candidate nodes */
    size_t n_nodes;
    int64_t every_min_ns, every_max_ns;       /* start-to-start spacing */
    int64_t duration_min_ns, duration_max_ns; /* how long each fault lasts */
    int64_t start_ns, stop_ns;                /* window */
    uint64_t stream;                          /* impair_stream_id("nemesis:<name>") */
    size_t n_drawn;   /* faults drawn (each gives two events: start and end) */
    size_t n_skipped; /* draws that found no eligible node */
    struct topo_loc loc;
};

/* ------------------------------------------------------------------ */
/* The scenario                                                        */
/* ------------------------------------------------------------------ */

struct topo_scenario {
    char *file;                 /* the path given (or the name given to topo_load_string) */
    char *name;                 /* run.name; default: file name without directory and .yaml */
    char *description;          /* run.description or NULL */
    uint64_t seed;              /* run.seed, or drawn from getrandom() */
    bool seed_random;           /* the seed was drawn, not given */
    int64_t duration_ns;        /* run.duration: the timeline's length (default 60 s) */
    int64_t boot_timeout_ns;    /* run.boot-timeout: all nodes ready within (default 120 s) */
    struct topo_loc record_loc; /* run.record (line 0: absent); nodes[i].recorded */

    struct topo_image image; /* image: (common to all nodes) */

    struct topo_network *networks;
    size_t n_networks;
    struct topo_node *nodes;
    size_t n_nodes;
    struct topo_link *links;
    size_t n_links;
    struct topo_event *events; /* sorted by at_ns, ties in declaration order */
    size_t n_events;
    struct topo_check *checks; /* in declaration order */
    size_t n_checks;
    struct topo_nemesis *nemeses;
    size_t n_nemeses;
};

/* Loads and validates a scenario.  NULL on any error; *errp then holds
 * every error found, one per line ("FILE:LINE:COL: path: message").
 * With seed_override != NULL, run.seed is ignored and *seed_override
 * used (replays).  Relative local paths resolve against the file's
 * directory. */
struct topo_scenario *topo_load_file(const char *path, struct fl_error **errp);
struct topo_scenario *topo_load_file_seed(const char *path, const uint64_t *seed_override,
                                          struct fl_error **errp);
/* `name` is used in messages and as the default run name; relative local
 * paths resolve against the current directory.  text need not be
 * NUL-terminated. */
struct topo_scenario *topo_load_string(const char *name, const char *text, size_t len,
                                       struct fl_error **errp);
struct topo_scenario *topo_load_string_seed(const char *name, const char *text, size_t len,
                                            const uint64_t *seed_override, struct fl_error **errp);
void topo_scenario_free(struct topo_scenario *scen); /* accepts NULL */

/* Appends the normalized model as one JSON object (every default
 * resolved, every address assigned, every event listed).  Returns true. */
bool topo_dump_json(const struct topo_scenario *scen, struct fl_buf *out);

/* Lookups; -1 when absent. */
int topo_node_find(const struct topo_scenario *scen, const char *name);
int topo_network_find(const struct topo_scenario *scen, const char *name);
/* Index in scen->links of the directed link, or -1 (not on that network). */
int topo_link_find(const struct topo_scenario *scen, uint32_t network, uint32_t src, uint32_t dst);

/* Recording (docs/record-replay.md): what keeps node `node` from being
 * recorded: more than 1 vCPU, a disk with a base image, disk faults
 * (initial or from the timeline), a reboot on the timeline.  Fills *out
 * with one entry per problem, in scenario order (NULL when none): loc is
 * the place in the file, msg the reason without the "FILE:LINE:COL: "
 * prefix.  The loader applies it to the nodes run.record names; the
 * runner to those --record names.  Returns the count. */
struct topo_record_problem {
    struct topo_loc loc;
    char *msg;
};
size_t topo_record_problems(const struct topo_scenario *scen, uint32_t node,
                            struct topo_record_problem **out);
void topo_record_problems_free(struct topo_record_problem *v, size_t n);

/* The address node `viewer` should use for node `target` (the /etc/hosts
 * line of `target` in `viewer`'s guest): its address on the first
 * network (in declaration order) both share, else on target's first NIC.
 * 0 when target has no NIC. */
uint32_t topo_host_address(const struct topo_scenario *scen, uint32_t viewer, uint32_t target);

/* "10.0.1.2" into buf (>= 16 bytes); "52:54:00:00:01:00" (>= 18 bytes). */
void topo_format_ip(uint32_t ip, char *buf);
void topo_format_mac(const uint8_t mac[6], char *buf);

#endif /* FL_TOPOLOGY_H */
