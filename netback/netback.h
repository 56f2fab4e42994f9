/*
 * netback/ — the paravirtual network backend.
 *
 * Guests' virtio-net devices reach faultline through QEMU's `-netdev stream`
 * unix sockets.  netback owns those sockets, switches frames between the
 * NICs ("ports") of each network with an L2 learning switch, hands every
 * forwarded copy to the impair engine of its directed link (source node ->
 * destination node), delivers it when the engine says, and records what
 * happened (pcap per NIC, a frame fate record per copy in the run
 * database).
 *
 *   guest n1 ─ QEMU ─▶ port n1/eth0 ─▶ reassembly ─▶ switch(net) ─┬─▶ impair(net:n1->n2) ─┐
 *                                                                 └─▶ impair(net:n1->n3) ─┤
 *                                                                                         ▼
 *   guest n2 ◀─ QEMU ◀─ port n2/eth0 ◀─ bounded output queue ◀─ timer (timerfd) ◀─ delivery queue
 *                                        (writev)
 *   capture: pcap per NIC (as sent, as received) and one fate record per copy in run.db
 *
 * Port security: a frame whose source MAC is not its port's NIC MAC is
 * dropped (every copy counted and recorded as NB_DROP_SPOOFED) and its MAC
 * not learned, unless the network has learning on
 * (nb_network_set_learning), where MACs move between ports as on a plain
 * learning switch (VRRP virtual MACs, bridges inside guests).
 *
 * The stream protocol (QEMU net/stream.c): each frame is a 4-byte
 * big-endian length followed by that many bytes of Ethernet frame (no
 * virtio-net header, no FCS).  netback accepts any chunking of that byte
 * stream.  The guest is untrusted: a length of 0, a length below
 * NB_FRAME_MIN (a runt: not even an Ethernet header) or above NB_FRAME_MAX,
 * or a connection closed in the middle of a frame closes that port's
 * connection (logged, rate-limited, counted, reported through
 * nb_events.port_disconnected); every other port carries on.  The listening
 * socket stays, so the guest's QEMU (or a restarted one) can connect again.
 *
 * Everything runs on the caller's struct fl_loop (single-threaded); no
 * function here may be called from another thread.  SIGPIPE never reaches
 * the process through netback (all socket writes use MSG_NOSIGNAL).
 *
 * Error conventions: setup functions return bool/pointer and take
 * `struct fl_error **errp` last; data-path style queries return 0/-errno.
 *
 * Inside (netback/internal.h has the details): port.c is the guest-socket
 * port kind behind the ops table of port-provider.h; switch.c switches and
 * asks impair; delivery.c holds delayed copies and times them; capture.c
 * writes pcaps and fate records; control.c is the link/partition/counter
 * API; netback.c sets it all up.  Each frame copy carries one struct
 * nb_copy from the switch to its end.
 */
#ifndef FL_NETBACK_H
#define FL_NETBACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "impair/impair.h" /* IMPAIR_DROP_REASONS */

struct fl_error;
struct fl_loop;
struct impair_link_params; /* impair/impair.h */
struct trace_db;           /* trace/trace.h */

/* Smallest frame accepted from a guest: one Ethernet header (dst, src,
 * ethertype).  Virtio-net does not pad to 60 bytes, so an ARP request is
 * legitimately 42 bytes. */
#define NB_FRAME_MIN 14
/* Largest frame accepted from a guest: the largest virtio-net MTU (65535)
 * plus an Ethernet header with one 802.1Q tag (18 bytes).  QEMU's own
 * stream receiver accepts up to 69632 bytes (NET_BUFSIZE), so everything
 * netback forwards is acceptable to the receiving QEMU. */
#define NB_FRAME_MAX (65535 + 18)
/* Bytes of the length prefix of the stream protocol. */
#define NB_STREAM_HDR_SIZE 4

/* Why a port's connection ended (X-macro: name, string). */
#define NB_DISCONNECT_REASONS(X)                                                                   \
    X(EOF, "eof")             /* the peer closed the socket (QEMU exited or crashed) */            \
    X(ERROR, "error")         /* a socket error (ECONNRESET, ...) */                               \
    X(MALFORMED, "malformed") /* the guest sent bytes that break the stream protocol */            \
    X(REPLACED, "replaced")   /* a new connection on the same socket took over */                  \
    X(REMOVED, "removed")     /* nb_destroy() with the connection still open */

enum nb_disconnect_reason {
#define NB_DISC_ENUM(name, str) NB_DISCONNECT_##name,
    NB_DISCONNECT_REASONS(NB_DISC_ENUM)
#undef NB_DISC_ENUM
        NB_DISCONNECT__COUNT
};
const char *nb_disconnect_reason_name(enum nb_disconnect_reason reason);

/* Why a frame copy was not delivered: impair's one list (impair/impair.h
 * IMPAIR_DROP_REASONS; NONE is never counted).  Every copy the switch
 * forwards ends as exactly one of: delivered, or dropped for one of
 * these reasons. */
#define NB_DROP_REASONS(X) IMPAIR_DROP_REASONS(X)

enum nb_drop_reason {
#define NB_DROP_ENUM(name, str) NB_DROP_##name,
    NB_DROP_REASONS(NB_DROP_ENUM)
#undef NB_DROP_ENUM
        NB_DROP__COUNT
};
/* The counter label: the reason's name, except "port-queue" for
 * PORT_QUEUE_FULL (as `net ctl stats` and the live view always showed it;
 * run.db says "port-queue-full"). */
const char *nb_drop_reason_name(enum nb_drop_reason reason);

/* Notifications to the owner (runner, `net serve`).  Any member may be
 * NULL (not interested).  Called from inside the loop; the strings are
 * valid only during the call.  A callback must not call nb_destroy(). */
struct nb_events {
    void (*port_connected)(void *arg, const char *network, const char *node, const char *nic);
    /* detail: a human sentence, e.g. "frame length 0 at stream offset
     * 1234 (valid: 14..65553)"; never NULL. */
    void (*port_disconnected)(void *arg, const char *network, const char *node, const char *nic,
                              enum nb_disconnect_reason reason, const char *detail);
};

struct nb_config {
    /* The run seed: link PRNGs are seeded from (seed, "<net>:<src>-><dst>")
     * so each link's draws depend on nothing else. */
    uint64_t seed;
    /* Directory for one pcap per NIC, `<pcap_dir>/<node>-<nic>.pcap`
     * (Ethernet, nanosecond timestamps, real time).  NULL: no pcaps. */
    const char *pcap_dir;
    /* The run database for frame fate records (one per frame copy, with
     * trace ids interned at nb_network_add/nb_port_add).  NULL: no
     * records.  Not owned; must outlive the netback.  netback writes no
     * link-parameter history or events: the owner does (trace_link_params,
     * trace_event), as it decides the changes. */
    struct trace_db *trace;
    /* Per-port bound on queued output (bytes, including length prefixes).
     * 0: default (1 MiB).  Frames that do not fit are dropped
     * (NB_DROP_PORT_QUEUE) and counted at the port and the link. */
    size_t port_queue_size;
    /* Flow control.  A destination whose queue reaches port_queue_size
     * while its guest is reading (slower than it is sent to) holds the
     * ports sending to it: they are not read (their QEMU waits, as behind
     * a slower NIC) until the queue drains below half, so a slow reader
     * costs no frames.  A destination whose socket takes nothing for
     * stall_ns (a paused or hung guest) stops holding anyone, and frames
     * that do not fit its queue are dropped.  0: default (10 ms).
     * Negative: no flow control, drop as soon as a queue is full. */
    int64_t stall_ns;
    /* MAC table entry lifetime without traffic from that address.
     * 0: default (300 s, as the Linux bridge). */
    int64_t mac_aging_ns;
    /* Timer precision: the delivery timer is armed early by an adaptive
     * estimate of the timerfd's wake-up latency (at most spin_ns) and the
     * callback spins on the clock for the remainder, so deliveries are not
     * late by that latency.  At most spin_ns of spinning per wake-up.
     * 0: default (200 us).  Negative: never arm early or spin (required
     * with a manual test clock). */
    int64_t spin_ns;
    const struct nb_events *events; /* NULL: no notifications */
    void *events_arg;
};

struct netback;
struct nb_port;

/* Creates a netback on `loop` (which must outlive it).  Fails only on
 * bad configuration (unwritable pcap_dir). */
struct netback *nb_create(struct fl_loop *loop, const struct nb_config *cfg,
                          struct fl_error **errp);
/* Closes every socket (unlinking the listening sockets it created), drops
 * every pending frame, flushes and closes the pcaps.  Accepts NULL. */
void nb_destroy(struct netback *nb);

/* Adds an L2 segment with its own learning switch.  Names: 1..63 chars of
 * [A-Za-z0-9_.-].  False if the name is invalid or taken.  Port security
 * is on (learning off) until nb_network_set_learning says otherwise. */
bool nb_network_add(struct netback *nb, const char *name, struct fl_error **errp);
/* learning = true: port security off on `network`: a port may send from
 * any source MAC and the switch learns it there (a MAC moves to the port
 * it was last seen on), as before port security existed; for VRRP virtual
 * MACs or bridges inside guests.  false (the default): a frame whose
 * source MAC is not its port's NIC MAC is dropped as NB_DROP_SPOOFED.
 * Applies from the next frame on.  False if there is no such network. */
bool nb_network_set_learning(struct netback *nb, const char *network, bool learning,
                             struct fl_error **errp);

/* Adds a NIC of `node` on `network` and listens for QEMU on the unix
 * socket `socket_path` (created 0600; an existing socket file there is
 * replaced, any other file is an error).  QEMU connects with
 *   -netdev stream,id=X,server=off,addr.type=unix,addr.path=<socket_path>
 * One connection at a time: a new connection replaces the current one
 * (NB_DISCONNECT_REPLACED), which is what a restarted QEMU looks like when
 * the old one's socket has not been closed yet.  `mac` (6 bytes, may be
 * NULL) is learned on this port at once, as if the guest had sent a frame
 * from it, so the first frames to it are not flooded; it ages normally.
 * It is also the port's own MAC for port security; without one, the first
 * unicast source MAC after each connection becomes the port's.
 * Links (net:node->other) are created for every other node already on the
 * network, both directions, without impairment.  A node may have several
 * NICs on one network.  (node, nic) must be unique across the netback. */
struct nb_port *nb_port_add(struct netback *nb, const char *network, const char *node,
                            const char *nic, const uint8_t *mac, const char *socket_path,
                            struct fl_error **errp);
/* NULL if there is no such port. */
struct nb_port *nb_port_find(struct netback *nb, const char *node, const char *nic);
bool nb_port_connected(const struct nb_port *port);

/* ---- links ----
 * A link is directed: (network, src node, dst node).  `network` NULL
 * means every network on which both nodes have a NIC; `src` or `dst` NULL
 * means every node currently on the network(s) (a network default; a
 * node's link to itself, between two NICs of one node on one network, is
 * matched only when both names are given).  Unknown names are errors naming the value and the known
 * ones; a call that matches no link at all is an error.  Changes apply to frames sent after the
 * call; frames already scheduled keep their fate.
 *
 * nb_link_set is transactional: the parameters are validated by impair
 * once and applied to every matched link, or to none (the error says
 * why). */
bool nb_link_set(struct netback *nb, const char *network, const char *src, const char *dst,
                 const struct impair_link_params *params, struct fl_error **errp);
/* Back to no impairment (partition state is separate and unchanged). */
bool nb_link_clear(struct netback *nb, const char *network, const char *src, const char *dst,
                   struct fl_error **errp);

/* Cuts (cut=true) or heals one direction src->dst on every network the two
 * share (NULL wildcards as above).  A cut link drops every frame with
 * NB_DROP_PARTITION; the link's impairment parameters are kept for when
 * it heals. */
bool nb_partition(struct netback *nb, const char *src, const char *dst, bool cut,
                  struct fl_error **errp);
/* One directed pair of a cut set. */
struct nb_cut {
    const char *src;
    const char *dst;
};
/* Replaces the whole partition state: exactly the listed directions are
 * cut on every network, everything else is healed.  Validates every name
 * before changing anything.  n == 0 heals everything. */
bool nb_partition_apply(struct netback *nb, const struct nb_cut *cuts, size_t n,
                        struct fl_error **errp);
void nb_heal_all(struct netback *nb);

/* ---- counters ---- */

struct nb_link_stats {
    uint64_t sent;       /* copies handed to the link by the switch */
    uint64_t sent_bytes; /* their bytes */
    uint64_t delivered;  /* copies written into the destination's output queue */
    uint64_t delivered_bytes;
    uint64_t dropped[NB_DROP__COUNT];
    uint64_t duplicated; /* extra copies made by the duplicate stage */
    uint64_t corrupted;  /* copies with a flipped bit */
    uint64_t reordered;  /* copies sent ahead of earlier ones by the reorder stage */
    bool cut;            /* current partition state */
};

struct nb_port_stats {
    uint64_t rx_frames; /* valid frames received from the guest */
    uint64_t rx_bytes;  /* their Ethernet bytes (no length prefixes) */
    uint64_t tx_frames; /* frames accepted into the output queue (they leave in order) */
    uint64_t tx_bytes;
    uint64_t tx_queue_drops;        /* frames dropped because the output queue was full */
    uint64_t tx_down_drops;         /* frames due while no guest was connected */
    uint64_t rx_bad_src;            /* frames dropped: group (multicast) source MAC */
    uint64_t rx_spoofed;            /* frames dropped: source MAC not the port's (port security) */
    uint64_t connects;              /* connections accepted */
    uint64_t malformed_disconnects; /* connections closed for protocol violations */
    uint64_t rx_holds;              /* times reading from it was held (flow control) */
    uint64_t tx_stalls;             /* times its guest took nothing for stall_ns while congested */
    size_t queued_bytes;            /* output queue fill now */
    bool connected;
};

/* 0, or -ENOENT if no such link (network must be non-NULL here). */
int nb_link_stats(const struct netback *nb, const char *network, const char *src, const char *dst,
                  struct nb_link_stats *out);
void nb_port_stats(const struct nb_port *port, struct nb_port_stats *out);

/* Visits every link / port in a stable order (networks, then nodes, in
 * the order they were added). */
typedef void nb_link_visit_fn(void *arg, const char *network, const char *src, const char *dst,
                              const struct nb_link_stats *stats);
void nb_link_foreach(const struct netback *nb, nb_link_visit_fn *fn, void *arg);
typedef void nb_port_visit_fn(void *arg, const char *network, const char *node, const char *nic,
                              const char *socket_path, const struct nb_port_stats *stats);
void nb_port_foreach(const struct netback *nb, nb_port_visit_fn *fn, void *arg);

/* Writes buffered pcap data to the files now (netback also does it every
 * second and at nb_destroy).  0, or -errno of the first pcap write that
 * ever failed (sticky: a failure the one-second flush met is reported
 * again here, so the owner of a run learns of it at the end). */
int nb_flush(struct netback *nb);

#endif /* FL_NETBACK_H */
