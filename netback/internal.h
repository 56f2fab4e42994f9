/*
 * netback/ internals shared by its files (never included outside the
 * room, except by netback's own tests, fuzz target and benchmark).
 *
 * The files, along a frame's path:
 *   port.c      the guest-socket port kind: listening, connections,
 *               reassembly, output queues, flow control
 *   switch.c    one learning switch per network: port security, MAC
 *               learning, unicast/flood, each copy's impair decision
 *   delivery.c  the delivery queue (core's heap behind impair's tq), the
 *               pool of delayed copies, the precise timer, handing a copy
 *               to its destination port
 *   capture.c   the capture stage: pcap per NIC and the fate record of
 *               every copy, in one place
 *   control.c   links, partitions, counters (the control API)
 *   netback.c   setup: netback, networks, ports, links; names
 */
#ifndef FL_NETBACK_INTERNAL_H
#define FL_NETBACK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "impair/impair.h"
#include "netback/mactable.h"
#include "netback/netback.h"
#include "netback/port-provider.h"
#include "netback/outq.h"
#include "netback/reassembly.h"
#include "trace/trace.h"

#define NB_DEFAULT_PORT_QUEUE_SIZE ((size_t)1 << 20)
/* Flow control (see "Output queues" in docs/netback.md): a destination
 * whose queue reaches port_queue_size holds its senders' reads until it
 * drains below half of it, or until it has taken no bytes for stall_ns. */
#define NB_DEFAULT_STALL_NS (10 * FL_NS_PER_MS)
/* Room above port_queue_size while senders are held: what a held sender's
 * read still being processed (and another's) can add. */
#define NB_HOLD_SLACK (2 * NB_READ_BUFFER_SIZE)
/* While any queue is congested, reads take at most this much, so the
 * reads in flight when a queue fills stay within the slack. */
#define NB_READ_HELD_SIZE ((size_t)16 << 10)
/* A stalled port is tried (one write) at most this often before frames to
 * it are dropped, to notice its guest reading again. */
#define NB_STALL_PROBE_NS       FL_NS_PER_MS
#define NB_DEFAULT_MAC_AGING_NS (300 * FL_NS_PER_SEC)
#define NB_DEFAULT_SPIN_NS      (200 * FL_NS_PER_US)
#define NB_INITIAL_LEAD_NS      (50 * FL_NS_PER_US)
/* One read buffer for every port (the loop is single-threaded and a read
 * is processed before the next one): up to ~2000 small frames per read(). */
#define NB_READ_BUFFER_SIZE ((size_t)256 << 10)
/* A frame due within this much of now is delivered now (it would not be
 * worth a timer round trip). */
#define NB_DELIVER_EPSILON_NS (2 * FL_NS_PER_US)
#define NB_NAME_MAX           63
#define NB_FLUSH_INTERVAL_NS  FL_NS_PER_SEC
#define NB_DENSE_GRID_NS      (16 * FL_NS_PER_US)
/* Delayed copies up to this size are recycled (at most NB_PKT_FREE_MAX). */
#define NB_PKT_SMALL    1536
#define NB_PKT_FREE_MAX 8192

struct netback;
struct nb_network;

/* A directed link (network, src node -> dst node). */
struct nb_link {
    struct nb_network *net;
    size_t src, dst; /* node indexes in the netback */
    struct impair_link *il;
    bool cut;
    bool impaired;      /* parameters other than a perfect link's are set */
    uint64_t tx_seq;    /* copies handed to impair, for reorder detection */
    uint64_t last_done; /* highest tx_seq delivered so far */
    int64_t trace_id;
    struct nb_link_stats stats;
};

/*
 * One copy of a frame on its way from one port to another: everything its
 * fate depends on and its fate record needs travels in it (netem keeps a
 * packet's schedule beside it in netem_skb_cb).  Born at the source port
 * (sent_ns, pcap_index, hash), completed by the switch (link, dst, seq,
 * copy, corruption), carried through the delivery queue, and ended once,
 * by nb_deliver() or nb_drop_copy(), which hand it to the capture stage.
 */
struct nb_copy {
    struct nb_link *link;
    struct nb_port *src, *dst;
    int64_t sent_ns;         /* read from the source port */
    int64_t pcap_index;      /* the frame's index in the source's pcap, -1: none */
    uint64_t seq;            /* link tx_seq, for reorder detection */
    uint32_t size;           /* Ethernet bytes */
    uint32_t hash;           /* trace_frame_hash (0 without a run database) */
    uint32_t corrupt_offset; /* the flipped byte, when corrupt_mask != 0 */
    uint8_t corrupt_mask;    /* the flipped bit; 0: not corrupted */
    uint16_t copy;           /* 0 the original, 1.. duplicates */
};

/* A port: the kind-independent part (see port-provider.h for the kinds). */
struct nb_port {
    const struct nb_port_class *cls;
    struct netback *nb;
    struct nb_network *net;
    uint32_t index; /* in net->ports */
    size_t node;    /* node index in the netback */
    size_t local;   /* node index in net->nodes */
    char *node_name, *nic;
    /* Port security: the NIC's MAC (given at nb_port_add, or the first
     * source MAC after a connection when none was given). */
    uint8_t mac[6];
    bool has_mac;
    bool mac_given; /* from nb_port_add: kept across connections */
    bool dirty;     /* on nb->dirty list: output queued since the last flush */
    struct nb_port *next_dirty;
    /* As a sender: how many destinations hold it (flow control); its kind
     * is told through set_held when this leaves or reaches 0. */
    size_t held_by;
    struct trace_pcap *pcap;
    int64_t pcap_packets; /* packets written to pcap so far */
    bool pcap_dirty;      /* written since the last flush */
    int64_t trace_nic_id;
    struct nb_port_stats stats;
};

/* The guest-socket port kind (port.c): QEMU's -netdev stream. */
struct nb_sock_port {
    struct nb_port up;
    char *path;
    int lfd;        /* listening socket */
    int fd;         /* the connection, -1 when none */
    bool out_armed; /* EPOLLOUT registered */
    struct nb_reasm reasm;
    struct nb_outq outq;
    /* Flow control.  As a destination: congested (its queue reached the
     * bound; the ports in `holding` are not read until it drains below
     * half) or stalled (it took nothing for stall_ns: holds nobody, frames
     * beyond the bound are dropped, until its socket takes bytes again). */
    bool congested, stalled;
    int64_t progress_ns; /* last time its socket took bytes (or congestion began) */
    int64_t probe_ns;    /* stalled: last time a write was tried before dropping */
    struct nb_port **holding;
    size_t n_holding, holding_alloc;
    int64_t rx_now; /* time of the read being processed */
};

extern const struct nb_port_class nb_guest_socket_class;

static inline struct nb_sock_port *nb_sock_port(struct nb_port *p)
{
    return p->cls == &nb_guest_socket_class ? container_of(p, struct nb_sock_port, up) : NULL;
}

struct nb_network {
    struct netback *nb;
    char *name;
    bool learning; /* port security off: source MACs move freely */
    struct nb_port **ports;
    size_t n_ports, ports_alloc;
    size_t *nodes; /* node indexes (netback-wide) of the nodes on this network */
    size_t n_nodes, nodes_alloc;
    struct nb_link **links; /* n_nodes x n_nodes, row = src local index */
    struct nb_mactable macs;
    int64_t trace_id;
};

/* A frame copy waiting in the delivery queue. */
struct nb_pkt {
    struct nb_pkt *next_free; /* on netback's free list */
    struct nb_copy c;
    uint8_t data[];
};

struct netback {
    struct fl_loop *loop;
    struct nb_config cfg;
    char *pcap_dir;
    struct trace_db *trace;
    struct nb_network **nets;
    size_t n_nets, nets_alloc;
    char **nodes; /* node names, index = node id */
    int64_t *node_trace_ids;
    size_t n_nodes, nodes_alloc;
    uint8_t *rxbuf;
    /* The bytes being switched by nb_port_input (NULL outside it): frames
     * lying whole in them, with their length prefix, are lent to the
     * destination's queue instead of copied (cut-through). */
    const uint8_t *feed_lo, *feed_hi;
    struct nb_port *dirty;
    struct impair_tq *tq; /* of struct nb_pkt, by delivery time */
    struct nb_pkt *free_pkts;
    size_t n_free_pkts;
    struct fl_timer *timer;
    struct fl_timer *flush_timer; /* pcaps, every NB_FLUSH_INTERVAL_NS */
    struct fl_timer *stall_timer; /* flow control: congested ports that stopped reading */
    int64_t stall_ns;             /* < 0: no flow control (drop as soon as a queue is full) */
    size_t n_congested;           /* ports congested now */
    int64_t spin_ns;              /* <= 0: no early arming, no spinning */
    int64_t lead_ns;              /* how early the delivery timer is armed (adaptive) */
    int64_t armed_at;             /* the delivery timer's deadline */
    int64_t spin_tokens;          /* spin budget (ns), see refill_spin() */
    int64_t spin_refill_at;       /* when it was last refilled */
    int64_t wall_offset_ns;       /* CLOCK_REALTIME - CLOCK_MONOTONIC, for pcap stamps */
    struct fl_ratelimit rl_malformed, rl_info, rl_spoofed, rl_internal;
    bool in_destroy;
};

/* ---- port.c: the guest-socket kind ---- */

/* Listens on socket_path for the port's guest; fills the kind's part of
 * sp (sp->up's common fields are the caller's). */
bool nb_sock_port_open(struct nb_sock_port *sp, const char *socket_path, struct fl_error **errp);
/* The port input path, for the fuzz target: feeds `size` bytes as if read
 * from the port's connection at `now_ns`, processing frames as the real
 * read path does (switching, impairment, delivery queue), then flushes.
 * Returns 0, or -EBADMSG after disconnecting the port as malformed. */
int nb_port_input(struct nb_port *port, const uint8_t *data, size_t size, int64_t now_ns);
/* Makes fd (a connected stream socket, non-blocking) the port's connection,
 * as accept() does; the port owns fd from then on.  0 or -errno. */
int nb_port_attach(struct nb_port *port, int fd);
void nb_on_stall_timer(struct fl_loop *loop, struct fl_timer *timer, void *arg);

/* ---- switch.c ---- */

/* One valid frame from port p's guest, read at now. */
void nb_switch_frame(struct nb_port *p, const uint8_t *frame, size_t size, int64_t now);

/* ---- delivery.c ---- */

/* Hands a copy to its destination port now, or drops it there
 * (port-down, port-queue-full); either way it ends here. */
void nb_deliver(struct netback *nb, struct nb_copy *c, const uint8_t *data, int64_t now);
/* Ends a copy dropped before delivery: counted on its link, captured. */
void nb_drop_copy(struct netback *nb, const struct nb_copy *c, enum nb_drop_reason why);
/* Holds a copy of data until time_ns. */
void nb_schedule(struct netback *nb, const struct nb_copy *c, const uint8_t *data, int64_t time_ns);
/* True when nothing queued is due by now (so a copy due now may go ahead
 * of the queue without overtaking anything). */
bool nb_queue_idle(const struct netback *nb, int64_t now);
/* After a batch of input: delivers what is due, flushes the ports that
 * got output, re-arms the delivery timer. */
void nb_settle(struct netback *nb, int64_t now);
void nb_mark_dirty(struct nb_port *p);
void nb_on_timer(struct fl_loop *loop, struct fl_timer *timer, void *arg);
/* nb_destroy: every copy still queued ends as "shutdown"; frees the pool. */
void nb_delivery_shutdown(struct netback *nb);

/* ---- capture.c: pcap per NIC + the fate record of every copy ---- */

/* A frame read from p's guest at now: writes it to p's pcap and starts
 * the copy descriptor shared by all its copies (sent_ns, pcap_index,
 * hash, src, size). */
void nb_capture_rx(struct nb_port *p, int64_t now, const uint8_t *frame, size_t size,
                   struct nb_copy *out);
/* The end of one copy: delivered (drop == NB_DROP_NONE; written to the
 * destination's pcap as its guest receives it) or dropped; its fate
 * record either way. */
void nb_capture_end(struct netback *nb, const struct nb_copy *c, const uint8_t *data,
                    enum nb_drop_reason drop, int64_t now, bool reordered);
void nb_on_flush_timer(struct fl_loop *loop, struct fl_timer *timer, void *arg);

#endif /* FL_NETBACK_INTERNAL_H */
