/*
 * netback's port kinds: the ops table a kind of port fills in (Open
 * vSwitch lib/netdev-provider.h is the model).  The switch, the delivery
 * queue and the capture stage see a port only through this table and the
 * common struct nb_port (netback/internal.h); a kind embeds struct nb_port
 * first and gets back with container_of.
 *
 * Kinds today: "guest-socket" (port.c: a QEMU -netdev stream unix socket).
 * The Open vSwitch uplink is meant to be the second one.
 */
#ifndef FL_NETBACK_PORT_PROVIDER_H
#define FL_NETBACK_PORT_PROVIDER_H

#include <stdbool.h>
#include <stdint.h>

struct nb_copy;
struct nb_port;
struct nb_port_stats;

struct nb_port_class {
    /* The kind's name, for messages ("guest-socket").  Never NULL. */
    const char *kind;
    /* True while a peer is attached: frames due at a port without one are
     * dropped (port-down), and floods skip it.  Never NULL. */
    bool (*connected)(const struct nb_port *port);
    /* Queues one copy (data: c->size bytes, before c's corruption is
     * applied) for the peer at now; false when it does not fit (the copy is
     * then dropped as port-queue-full by the caller).  Output queued here
     * goes out at the next flush.  Never NULL. */
    bool (*output)(struct nb_port *port, const struct nb_copy *c, const uint8_t *data, int64_t now);
    /* Sends what output() queued: once per port that got output, at the
     * end of every read or timer batch.  Never NULL. */
    void (*flush)(struct nb_port *port);
    /* Flow control: stop (held) or resume reading the port's input, when
     * a destination its frames fill is congested.  NULL: the kind is never
     * held (its frames to a full queue are dropped). */
    void (*set_held)(struct nb_port *port, bool held);
    /* Fills what only the kind knows (connected, queued_bytes).  NULL:
     * nothing beyond the common counters. */
    void (*stats)(const struct nb_port *port, struct nb_port_stats *out);
    /* A description of where the peer attaches, e.g. the socket path.
     * Never NULL; never returns NULL. */
    const char *(*where)(const struct nb_port *port);
    /* Disconnects the peer and frees the kind's part, then the port.
     * Never NULL. */
    void (*destroy)(struct nb_port *port);
};

#endif /* FL_NETBACK_PORT_PROVIDER_H */
