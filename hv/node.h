/*
 * hv/ node internals, shared by the files of a node (not part of hv.h):
 *
 *   node.c           lifecycle: create/destroy, boot (fork/exec QEMU),
 *                    exit (pidfd), ready/kill timers, setup, state changes
 *   node-config.c    validating and deep-copying hv_node_config
 *   qemu-cmdline.c   the QEMU command line (hv_qemu_cmdline, one entry)
 *   qmp.c            the QMP session: greeting, capabilities, commands,
 *                    line framing; events handed to node.c
 *   agent-channel.c  the agent channel: frames out and in, requests with
 *                    their timers, answers decoded; HELLO handed to node.c
 *   node-ops.c       operations (pause ... exec, ping, clock) and the
 *                    synchronous helpers
 *   node-record.c    recording (hv/record.h): segment command line, clean
 *                    end (stop ▸ query-replay ▸ quit), stuck-count watch
 *
 * Arrows: node-ops -> {qmp, agent-channel, node}; qmp and agent-channel
 * -> node (state changes, failures); node -> {node-config, qemu-cmdline}.
 * All of them include this header only; it includes no .c's header.
 */
#ifndef FL_HV_NODE_H
#define FL_HV_NODE_H

#include "hv/internal.h"
#include "hv/proto.h"

/* ---- qemu-cmdline.c ---- */

/* A growable, NULL-terminated argv whose strings it owns. */
struct hv_argv {
    char **v; /* v[n] == NULL once anything was added */
    size_t n, alloc;
};
void hv_argv_add(struct hv_argv *a, const char *s); /* copies s */
void hv_argv_addf(struct hv_argv *a, const char *fmt, ...) FL_PRINTF(2, 3);
void hv_argv_take(struct hv_argv *a, char *s); /* owns s */
void hv_argv_free(struct hv_argv *a);
/* Appends s to a QEMU option value, ',' doubled (QEMU's escape). */
void hv_qemu_optval(struct fl_buf *b, const char *s);
/* The whole QEMU command line of a node with validated, defaulted cfg:
 * argv[0] (cfg->qemu_binary, $FAULTLINE_QEMU, qemu-system-x86_64), the
 * machine, accelerator, memory, kernel and initrd, kernel command line,
 * console, QMP on fd 3, the agent on fd 4, one -netdev/-device per NIC,
 * one -blockdev/-device per disk.  Appends to `a`: a caller may add
 * options after it (record/replay: -icount, filters, blkreplay).  This
 * is the one place that builds a node's QEMU command line. */
void hv_qemu_cmdline(struct hv_argv *a, const struct hv_node_config *cfg, enum hv_accel accel);

#define QMP_LINE_MAX       (1u << 20)
#define AGENT_OUTBUF_MAX   ((size_t)16 << 20)
#define EXEC_GRACE_NS      (5 * FL_NS_PER_SEC)
#define DEFAULT_READY_TCG  (60 * FL_NS_PER_SEC)
#define DEFAULT_READY_KVM  (20 * FL_NS_PER_SEC)
#define QUIT_KILL_DELAY_NS (5 * FL_NS_PER_SEC)

enum hv_req_kind { HV_REQ_PING, HV_REQ_EXEC, HV_REQ_CLOCK, HV_REQ_SETUP, HV_REQ_POWEROFF };

struct hv_req {
    struct hv_req *next;
    struct hv_node *node;
    enum hv_req_kind kind;
    uint32_t id;
    struct fl_timer *timer;
    int64_t start_ns;
    hv_exec_cb *exec_cb;
    hv_done_cb *done_cb;
    void *arg;
};

/* Recording state (node-record.c, hv/record.h). */
struct hv_node_rr {
    bool on;                /* argv is a recording argv */
    bool booted;            /* that argv was used: a new segment is needed */
    bool quitting;          /* stop ▸ query-replay ▸ quit sent */
    bool have_icount;       /* query-replay answered while quitting */
    uint64_t icount;        /* ... with this count */
    struct fl_timer *watch; /* samples query-replay while the guest runs */
    uint64_t seen;
    int64_t seen_ns, stuck_ns;
    bool stuck_reported;
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
    struct hv_argv argv; /* hv_qemu_cmdline (qemu-cmdline.c) */

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
    struct hv_req *reqs;

    int refs;
    bool destroyed;

    struct hv_node_rr rr;
};

/* ---- node.c ---- */
void hv_node_ref(struct hv_node *n);
void hv_node_unref(struct hv_node *n); /* frees after hv_node_destroy */
void hv_node_set_state(struct hv_node *n, enum hv_node_state s);
/* Logs and reports (on_fail) an error prefixed with the node's name. */
void hv_node_fail(struct hv_node *n, int code, const char *fmt, ...) FL_PRINTF(3, 4);
/* SIGKILL to QEMU's process group; the exit is then expected. */
void hv_node_kill_qemu(struct hv_node *n);
/* QMP events: STOP, RESUME, RESET (others are logged only). */
void hv_node_qmp_event(struct hv_node *n, const char *event);
/* The agent said hello (valid HELLO of `session`). */
void hv_node_agent_hello(struct hv_node *n, uint32_t session);
/* The setup script's result: READY, or a failure naming its stderr. */
void hv_node_setup_done(struct hv_node *n, const struct hv_exec_result *res);
/* The agent synced the file systems (or did not answer): QMP quit. */
void hv_node_poweroff_done(struct hv_node *n);

/* ---- node-config.c ---- */
/* Every rule of hv_node_config; the error names the node and the field. */
bool hv_node_config_check(const struct hv_node_config *c, struct fl_error **errp);
/* n->cfg = a deep copy of c with the defaults filled in (vcpus, memory,
 * console log); the strings are owned by n (hv_node_config_free). */
void hv_node_config_copy(struct hv_node *n, const struct hv_node_config *c);
void hv_node_config_free(struct hv_node *n);

/* ---- qmp.c ---- */
/* Queues {"execute": cmd}; sent once QEMU greeted (capabilities first).
 * ENOTCONN when QEMU is not running. */
bool hv_qmp_cmd(struct hv_node *n, const char *cmd, struct fl_error **errp);
/* The loop callback of n->qmp_fd. */
void hv_qmp_on_readable(struct fl_loop *loop, int fd, uint32_t events, void *arg);
void hv_qmp_reset(struct hv_node *n); /* QEMU gone: buffers emptied */

/* ---- agent-channel.c ---- */
/* A request waiting for its answer, failed with ETIMEDOUT after
 * timeout_ns. */
struct hv_req *hv_req_new(struct hv_node *n, enum hv_req_kind kind, int64_t timeout_ns);
void hv_req_unlink(struct hv_node *n, struct hv_req *r);
/* Fails every pending request (their callbacks get code and msg). */
void hv_req_fail_all(struct hv_node *n, int code, const char *msg);
void hv_agent_send(struct hv_node *n); /* flushes queued frames */
void hv_agent_send_exec(struct hv_node *n, struct hv_req *r, const char *cmd, int64_t timeout_ns);
/* The loop callback of n->agent_fd. */
void hv_agent_on_readable(struct fl_loop *loop, int fd, uint32_t events, void *arg);
void hv_agent_reset(struct hv_node *n); /* QEMU gone: buffers emptied */

/* ---- node-record.c (hooks; the API is hv/record.h) ---- */
/* Before QEMU starts: false when a recorded node's segment is used up. */
bool hv_rr_boot_check(struct hv_node *n, struct fl_error **errp);
void hv_rr_booted(struct hv_node *n); /* QEMU started */
/* A recorded, running QEMU: stop ▸ query-replay ▸ quit sent (the exit is
 * expected) and true; false (nothing done) when not recorded. */
bool hv_rr_quit(struct hv_node *n);
void hv_rr_qmp_return(struct hv_node *n, const struct fl_json *ret); /* QMP "return" */
/* true (and *errp) when a reset must be refused: a recorded node runs. */
bool hv_rr_refuse_reset(struct hv_node *n, struct fl_error **errp);
void hv_rr_destroy(struct hv_node *n);

#endif /* FL_HV_NODE_H */
