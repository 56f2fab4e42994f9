/*
 * netback: ports (unix stream sockets), networks (learning switches),
 * links (impair per direction), the delivery queue, counters and traces.
 *
 * A frame's life:
 *
 *   on_conn_event ─ read() up to 256 KiB ─▶ nb_reasm_feed ─▶ on_frame (per frame)
 *        pcap(rx) · learn src MAC · pick destination ports (unicast / flood)
 *        per destination: forward_copy ─▶ link cut? ─▶ impair_link_decide
 *             due now ───────────────▶ deliver ─▶ outq_push (dst marked dirty)
 *             due later ─▶ impair_tq (one queue for all links) ─▶ on_timer ─▶ deliver
 *   end of every read / timer batch: flush_dirty ─▶ one sendmsg per dirty port
 *
 * The timer is armed a little before the earliest due frame (see
 * update_lead) and the callback spins the rest, so deliveries are on time
 * despite the timerfd's wake-up latency.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "netback/internal.h"

#define LOG_ROOM "netback"

/* ------------------------------------------------------------------ */
/* Names                                                               */
/* ------------------------------------------------------------------ */

const char *nb_disconnect_reason_name(enum nb_disconnect_reason reason)
{
    static const char *const names[] = {
#define NB_DISC_NAME(name, str) str,
        NB_DISCONNECT_REASONS(NB_DISC_NAME)
#undef NB_DISC_NAME
    };
    return (unsigned)reason < FL_ARRAY_LEN(names) ? names[reason] : "unknown";
}

const char *nb_drop_reason_name(enum nb_drop_reason reason)
{
    static const char *const names[] = {
#define NB_DROP_NAME(name, str) str,
        NB_DROP_REASONS(NB_DROP_NAME)
#undef NB_DROP_NAME
    };
    return (unsigned)reason < FL_ARRAY_LEN(names) ? names[reason] : "unknown";
}

static const uint8_t trace_drop_of[NB_DROP__COUNT] = {
    [NB_DROP_PARTITION] = TRACE_DROP_PARTITION,
    [NB_DROP_LOSS] = TRACE_DROP_LOSS,
    [NB_DROP_QUEUE] = TRACE_DROP_QUEUE,
    [NB_DROP_MTU] = TRACE_DROP_MTU,
    [NB_DROP_PORT_QUEUE] = TRACE_DROP_PORT_QUEUE_FULL,
    [NB_DROP_PORT_DOWN] = TRACE_DROP_PORT_DOWN,
};

/* ------------------------------------------------------------------ */
/* Lookups                                                             */
/* ------------------------------------------------------------------ */

static struct nb_network *find_network(const struct netback *nb, const char *name)
{
    for (size_t i = 0; i < nb->n_nets; i++) {
        if (!strcmp(nb->nets[i]->name, name)) {
            return nb->nets[i];
        }
    }
    return NULL;
}

static int64_t find_node(const struct netback *nb, const char *name)
{
    for (size_t i = 0; i < nb->n_nodes; i++) {
        if (!strcmp(nb->nodes[i], name)) {
            return (int64_t)i;
        }
    }
    return -1;
}

/* Local index of node id on net, or -1. */
static int64_t net_local(const struct nb_network *net, size_t node)
{
    for (size_t i = 0; i < net->n_nodes; i++) {
        if (net->nodes[i] == node) {
            return (int64_t)i;
        }
    }
    return -1;
}

static struct nb_link *net_link(const struct nb_network *net, size_t src_local, size_t dst_local)
{
    return net->links[src_local * net->n_nodes + dst_local];
}

struct nb_port *nb_port_find(struct netback *nb, const char *node, const char *nic)
{
    for (size_t n = 0; n < nb->n_nets; n++) {
        struct nb_network *net = nb->nets[n];
        for (size_t i = 0; i < net->n_ports; i++) {
            struct nb_port *p = net->ports[i];
            if (!strcmp(p->node_name, node) && !strcmp(p->nic, nic)) {
                return p;
            }
        }
    }
    return NULL;
}

bool nb_port_connected(const struct nb_port *port)
{
    return port->fd >= 0;
}

/* ------------------------------------------------------------------ */
/* Tracing                                                             */
/* ------------------------------------------------------------------ */

static int64_t wall_of(const struct netback *nb, int64_t mono_ns)
{
    return mono_ns + nb->wall_offset_ns;
}

/* Writes a packet to the port's pcap; returns its index there or -1. */
static int64_t pcap_put(struct nb_port *p, int64_t mono_ns, const uint8_t *data, size_t size)
{
    if (!p->pcap) {
        return -1;
    }
    int r = trace_pcap_write(p->pcap, wall_of(p->nb, mono_ns), data, size);
    if (r < 0) {
        static struct fl_ratelimit rl = FL_RATELIMIT_INIT(10 * FL_NS_PER_SEC, 1);
        FL_LOG_RL(&rl, FL_LOG_WARN, LOG_ROOM, "pcap of %s/%s: write failed: %s", p->node_name,
                  p->nic, strerror(-r));
        return -1;
    }
    p->pcap_dirty = true;
    return p->pcap_packets++;
}

int nb_flush(struct netback *nb)
{
    int first = 0;
    for (size_t n = 0; n < nb->n_nets; n++) {
        struct nb_network *net = nb->nets[n];
        for (size_t i = 0; i < net->n_ports; i++) {
            struct nb_port *p = net->ports[i];
            if (p->pcap && p->pcap_dirty) {
                int r = trace_pcap_flush(p->pcap);
                if (r < 0 && !first) {
                    first = r;
                }
                p->pcap_dirty = false;
            }
        }
    }
    return first;
}

/* Every second: pcaps to disk (a killed controller loses at most a
 * second of capture), and the wall-clock offset for pcap stamps. */
static void on_flush_timer(struct fl_loop *loop, struct fl_timer *timer, void *arg)
{
    struct netback *nb = arg;
    int r = nb_flush(nb);
    if (r < 0) {
        FL_LOG_RL(&nb->rl_info, FL_LOG_WARN, LOG_ROOM, "flushing pcaps: %s", strerror(-r));
    }
    nb->wall_offset_ns = fl_clock_real_ns() - fl_clock_mono_ns();
    fl_timer_arm_in(timer, NB_FLUSH_INTERVAL_NS);
}

/* The fate record of one copy. */
static void record(struct netback *nb, const struct nb_link *l, const struct nb_port *src,
                   const struct nb_port *dst, int64_t sent_ns, int64_t pcap_index, uint32_t size,
                   uint32_t hash, uint16_t copy, int drop, int64_t delivered_ns, bool reordered,
                   uint32_t corrupt_offset, uint8_t corrupt_mask)
{
    if (!nb->trace) {
        return;
    }
    struct trace_frame f = {
        .sent_ns = sent_ns,
        .delivered_ns = drop < 0 ? delivered_ns : TRACE_NO_TIME,
        .link_id = l->trace_id,
        .src_nic_id = src ? src->trace_nic_id : 0,
        .dst_nic_id = dst ? dst->trace_nic_id : 0,
        .pcap_index = pcap_index,
        .size = size,
        .hash = hash,
        .fate = drop < 0 ? TRACE_FATE_DELIVERED : TRACE_FATE_DROPPED,
        .reason = drop < 0                 ? TRACE_DROP_NONE
                  : drop == NB_DROP__COUNT ? TRACE_DROP_SHUTDOWN
                                           : trace_drop_of[drop],
        .reordered = reordered,
        .corrupt_mask = corrupt_mask,
        .copy = copy,
        .corrupt_offset = corrupt_offset,
    };
    int r = trace_frame(nb->trace, &f);
    if (r < 0) {
        static struct fl_ratelimit rl = FL_RATELIMIT_INIT(10 * FL_NS_PER_SEC, 1);
        FL_LOG_RL(&rl, FL_LOG_WARN, LOG_ROOM, "frame record not written: %s", strerror(-r));
    }
}

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

static void port_disconnect(struct nb_port *p, enum nb_disconnect_reason reason,
                            const char *detail);

static void mark_dirty(struct nb_port *p)
{
    if (!p->dirty) {
        p->dirty = true;
        p->next_dirty = p->nb->dirty;
        p->nb->dirty = p;
    }
}

/* What the loop watches on a connection: input unless flow control holds
 * the port, output while its queue waits for the socket. */
static void port_watch(struct nb_port *p)
{
    if (p->fd >= 0) {
        fl_loop_mod_fd(p->nb->loop, p->fd,
                       (p->held_by ? 0 : EPOLLIN) | (p->out_armed ? EPOLLOUT : 0));
    }
}

static void port_set_out(struct nb_port *p, bool want)
{
    if (p->out_armed != want && p->fd >= 0) {
        p->out_armed = want;
        port_watch(p);
    }
}

/*
 * Flow control.  A guest that reads slower than others send to it fills
 * its queue; dropping there would be the emulator's loss, not the
 * scenario's.  So when a queue reaches port_queue_size, the ports whose
 * frames go to it are held (not read: their QEMU stops taking frames from
 * the guest, as behind a slower NIC) until it drains below half.  A
 * destination that takes nothing for stall_ns (a paused or hung guest) is
 * stalled instead: it releases its senders and frames that do not fit
 * are dropped, so nobody waits on it for longer than that, until its
 * socket takes bytes again (tried before dropping).  A held
 * sender's read in progress is still switched (up to NB_HOLD_SLACK above
 * the bound).
 */
static void hold_sender(struct nb_port *dst, struct nb_port *src)
{
    if (!src || src == dst || src->fd < 0) {
        return;
    }
    for (size_t i = 0; i < dst->n_holding; i++) {
        if (dst->holding[i] == src) {
            return;
        }
    }
    dst->holding =
        fl_xgrow(dst->holding, &dst->holding_alloc, dst->n_holding + 1, sizeof *dst->holding);
    dst->holding[dst->n_holding++] = src;
    if (src->held_by++ == 0) {
        src->stats.rx_holds++;
        port_watch(src);
    }
}

static void release_senders(struct nb_port *dst)
{
    for (size_t i = 0; i < dst->n_holding; i++) {
        struct nb_port *src = dst->holding[i];
        if (--src->held_by == 0) {
            port_watch(src);
        }
    }
    dst->n_holding = 0;
}

/* A port leaves flow control (disconnected): it holds nobody and nobody
 * holds it. */
static void flow_forget(struct nb_port *p)
{
    release_senders(p);
    if (p->congested) {
        p->nb->n_congested--;
    }
    p->congested = p->stalled = false;
    struct nb_network *net = p->net;
    for (size_t i = 0; i < net->n_ports; i++) {
        struct nb_port *d = net->ports[i];
        for (size_t k = 0; k < d->n_holding; k++) {
            if (d->holding[k] == p) {
                d->holding[k] = d->holding[--d->n_holding];
                p->held_by--;
                break;
            }
        }
    }
}

static void congest(struct netback *nb, struct nb_port *dst, struct nb_port *src, int64_t now)
{
    if (!dst->congested) {
        dst->congested = true;
        nb->n_congested++;
        dst->progress_ns = now;
        if (fl_timer_deadline(nb->stall_timer) > now + nb->stall_ns) {
            fl_timer_arm(nb->stall_timer, now + nb->stall_ns);
        }
    }
    hold_sender(dst, src);
}

static void on_stall_timer(struct fl_loop *loop, struct fl_timer *timer, void *arg)
{
    struct netback *nb = arg;
    int64_t now = fl_loop_now(loop), next = INT64_MAX;
    for (size_t n = 0; n < nb->n_nets; n++) {
        struct nb_network *net = nb->nets[n];
        for (size_t i = 0; i < net->n_ports; i++) {
            struct nb_port *p = net->ports[i];
            if (!p->congested) {
                continue;
            }
            if (now - p->progress_ns < nb->stall_ns) {
                next = FL_MIN(next, p->progress_ns + nb->stall_ns);
                continue;
            }
            p->congested = false;
            nb->n_congested--;
            p->stalled = true;
            p->stats.tx_stalls++;
            release_senders(p);
            FL_LOG_RL(&nb->rl_info, FL_LOG_INFO, LOG_ROOM,
                      "%s/%s (network %s): the guest has read nothing for %lld ms with %zu bytes "
                      "queued; frames to it are dropped while its queue is full",
                      p->node_name, p->nic, net->name, (long long)(nb->stall_ns / FL_NS_PER_MS),
                      p->outq.used);
        }
    }
    if (next != INT64_MAX) {
        fl_timer_arm(timer, next);
    }
}

static void port_flush(struct nb_port *p);

/* Queues one copy for dst (sent by src, NULL for none); false if it does
 * not fit. */
static bool queue_copy(struct netback *nb, struct nb_port *dst, struct nb_port *src,
                       const uint8_t *data, uint32_t size, uint32_t corrupt_offset,
                       uint8_t corrupt_mask, int64_t now)
{
    size_t bound = nb->cfg.port_queue_size;
    if (dst->stalled && dst->outq.used + NB_STREAM_HDR_SIZE + size > bound &&
        now - dst->probe_ns >= NB_STALL_PROBE_NS) {
        /* About to drop at a stalled port: if its guest reads again (a
         * unix socket reports writable only once it is 3/4 empty), it is
         * flow controlled again instead.  At most once per probe period. */
        dst->probe_ns = now;
        port_flush(dst);
        if (dst->fd < 0) {
            return false;
        }
    }
    bool flow = nb->stall_ns >= 0 && !dst->stalled;
    size_t limit = flow ? dst->outq.capacity : bound;
    /* Cut-through: a frame forwarded as it lies in the read buffer (its
     * length prefix just before it) is lent to the queue, not copied; the
     * flush at the end of the read sends it from there. */
    uintptr_t at = (uintptr_t)data, lo = (uintptr_t)nb->feed_lo, hi = (uintptr_t)nb->feed_hi;
    bool in_read =
        !corrupt_mask && lo && at >= lo + NB_STREAM_HDR_SIZE && at <= hi && hi - at >= size;
    bool ok = dst->outq.used + NB_STREAM_HDR_SIZE + size <= limit &&
              ((in_read &&
                nb_outq_lend(&dst->outq, data - NB_STREAM_HDR_SIZE, NB_STREAM_HDR_SIZE + size)) ||
               nb_outq_push_flip(&dst->outq, data, size, corrupt_offset, corrupt_mask));
    if (flow && dst->outq.used >= bound) {
        congest(nb, dst, src, now);
    }
    return ok;
}

static void port_flush(struct nb_port *p)
{
    if (p->fd < 0 || nb_outq_empty(&p->outq)) {
        port_set_out(p, false);
        return;
    }
    long r = nb_outq_send(&p->outq, p->fd);
    if (r > 0) {
        /* The guest reads: flow controlled again (a stalled port's next
         * full queue holds its senders instead of dropping). */
        p->progress_ns = fl_loop_now(p->nb->loop);
        p->stalled = false;
        if (p->congested && p->outq.used < p->nb->cfg.port_queue_size / 2) {
            p->congested = false;
            p->nb->n_congested--;
            release_senders(p);
        }
    }
    if (r < 0 && r != -EAGAIN) {
        char detail[96];
        snprintf(detail, sizeof detail, "write failed: %s", strerror((int)-r));
        port_disconnect(
            p, r == -EPIPE || r == -ECONNRESET ? NB_DISCONNECT_EOF : NB_DISCONNECT_ERROR, detail);
        return;
    }
    port_set_out(p, !nb_outq_empty(&p->outq));
}

static void flush_dirty(struct netback *nb)
{
    while (nb->dirty) {
        struct nb_port *p = nb->dirty;
        nb->dirty = p->next_dirty;
        p->dirty = false;
        p->next_dirty = NULL;
        port_flush(p);
    }
}

/* Hands one copy to its destination's output queue (or drops it). */
static void deliver(struct netback *nb, struct nb_link *l, struct nb_port *src, struct nb_port *dst,
                    const uint8_t *data, uint32_t size, int64_t sent_ns, int64_t pcap_index,
                    uint32_t hash, uint16_t copy, uint64_t seq, uint32_t corrupt_offset,
                    uint8_t corrupt_mask, int64_t now)
{
    int drop = -1;
    if (dst->fd < 0) {
        drop = NB_DROP_PORT_DOWN;
        dst->stats.tx_down_drops++;
    } else if (!queue_copy(nb, dst, src, data, size, corrupt_offset, corrupt_mask, now)) {
        drop = NB_DROP_PORT_QUEUE;
        dst->stats.tx_queue_drops++;
    }
    bool reordered = false;
    if (drop >= 0) {
        l->stats.dropped[drop]++;
    } else {
        dst->stats.tx_frames++;
        dst->stats.tx_bytes += size;
        l->stats.delivered++;
        l->stats.delivered_bytes += size;
        reordered = seq < l->last_done;
        if (seq > l->last_done) {
            l->last_done = seq;
        }
        mark_dirty(dst);
        if (dst->pcap) {
            if (corrupt_mask) {
                /* The pcap shows what the guest receives: the flipped bit. */
                uint8_t *copybuf = fl_xmalloc(size);
                memcpy(copybuf, data, size);
                copybuf[corrupt_offset] ^= corrupt_mask;
                pcap_put(dst, now, copybuf, size);
                free(copybuf);
            } else {
                pcap_put(dst, now, data, size);
            }
        }
    }
    record(nb, l, src, dst, sent_ns, pcap_index, size, hash, copy, drop, now, reordered,
           corrupt_offset, corrupt_mask);
}

/* ------------------------------------------------------------------ */
/* Delivery queue                                                      */
/* ------------------------------------------------------------------ */

/* Delayed copies of frames up to NB_PKT_SMALL bytes (every frame at a
 * standard MTU) come from a free list: at high rates malloc/free of every
 * copy is a measurable share of the loop's time. */
static struct nb_pkt *pkt_alloc(struct netback *nb, uint32_t size)
{
    if (size <= NB_PKT_SMALL && nb->free_pkts) {
        struct nb_pkt *pkt = nb->free_pkts;
        nb->free_pkts = pkt->next_free;
        nb->n_free_pkts--;
        return pkt;
    }
    return fl_xmalloc(sizeof(struct nb_pkt) + FL_MAX(size, NB_PKT_SMALL));
}

static void pkt_free(struct netback *nb, struct nb_pkt *pkt)
{
    if (pkt->size <= NB_PKT_SMALL && nb->n_free_pkts < NB_PKT_FREE_MAX) {
        pkt->next_free = nb->free_pkts;
        nb->free_pkts = pkt;
        nb->n_free_pkts++;
        return;
    }
    free(pkt);
}

static void pkt_deliver(struct netback *nb, struct nb_pkt *pkt, int64_t now)
{
    deliver(nb, pkt->link, pkt->src, pkt->dst, pkt->data, pkt->size, pkt->sent_ns, pkt->pcap_index,
            pkt->hash, pkt->copy, pkt->seq, pkt->corrupt_offset, pkt->corrupt_mask, now);
    pkt_free(nb, pkt);
}

/* Delivers every queued copy due at or before now (+ epsilon). */
static void drain_due(struct netback *nb, int64_t now)
{
    void *pkt;
    while (impair_tq_next_time(nb->tq) <= now + NB_DELIVER_EPSILON_NS &&
           impair_tq_pop(nb->tq, NULL, &pkt)) {
        pkt_deliver(nb, pkt, now);
    }
}

/*
 * Timer precision.  A timerfd wakes the loop some tens of microseconds
 * after its deadline (more on a loaded machine), and that lateness would
 * land on every delayed frame.  So the timer is armed lead_ns early,
 * lead_ns tracking a high quantile of the lateness observed so far (rises
 * half-way to a later wake-up at once, decays by 1/256 of the gap per
 * earlier one: about the 99th percentile; capped at spin_ns), and the callback spins on the
 * clock for the small remainder.  Most wake-ups then land just before the
 * due time and spin a few microseconds.
 *
 * Spinning is paid from a budget that refills at 1/8 of wall time (at most
 * spin_ns banked): sparse traffic (the case where precision shows, e.g.
 * pings) always has budget; dense traffic, where frames are due back to
 * back, runs out of it and falls back to a timer armed at the due time
 * exactly, delivering whole batches per wake-up instead of burning the CPU
 * the loop needs for reading.
 */
static void refill_spin(struct netback *nb, int64_t now)
{
    if (now > nb->spin_refill_at) {
        nb->spin_tokens = FL_MIN(nb->spin_ns, nb->spin_tokens + (now - nb->spin_refill_at) / 8);
    }
    nb->spin_refill_at = now;
}

static void arm_timer(struct netback *nb)
{
    int64_t next = impair_tq_next_time(nb->tq);
    if (next == INT64_MAX) {
        fl_timer_disarm(nb->timer);
        return;
    }
    int64_t at = next;
    if (nb->spin_ns > 0 && nb->spin_tokens >= nb->lead_ns) {
        at = next - nb->lead_ns;
    } else if (nb->spin_ns > 0) {
        /* No spin budget left (dense traffic): round the
         * deadline up to a grid, so the head of the queue moving by a few
         * microseconds per batch does not cost a timerfd_settime() each
         * time; a timerfd wake-up is later than the grid anyway. */
        at = (next + NB_DENSE_GRID_NS - 1) / NB_DENSE_GRID_NS * NB_DENSE_GRID_NS;
    }
    if (fl_timer_deadline(nb->timer) <= at) {
        /* An earlier wake-up is already set (the head was delivered from
         * the read path since): keep it, it re-arms when it fires.  Under
         * dense traffic this saves a timerfd_settime() per read batch. */
        return;
    }
    fl_timer_arm(nb->timer, at);
    nb->armed_at = at;
}

static void update_lead(struct netback *nb, int64_t late)
{
    if (late < 0) {
        late = 0;
    }
    if (late > nb->lead_ns) {
        nb->lead_ns += (late - nb->lead_ns) / 2;
    } else {
        nb->lead_ns -= (nb->lead_ns - late) / 256;
    }
    nb->lead_ns = FL_MIN(nb->lead_ns, nb->spin_ns);
}

static void on_timer(struct fl_loop *loop, struct fl_timer *timer, void *arg)
{
    struct netback *nb = arg;
    int64_t now = fl_loop_now(loop);
    int64_t next = impair_tq_next_time(nb->tq);
    if (nb->spin_ns > 0) {
        update_lead(nb, now - nb->armed_at);
        refill_spin(nb, now);
        int64_t wait = next - now;
        if (wait > NB_DELIVER_EPSILON_NS && wait <= nb->lead_ns + NB_DELIVER_EPSILON_NS &&
            wait <= nb->spin_tokens) {
            /* Woken before the first due frame, as intended: spin the
             * rest.  Only for the first frame of a wake-up. */
            int64_t start = now;
            while (now < next - NB_DELIVER_EPSILON_NS) {
                now = fl_clock_mono_ns();
            }
            nb->spin_tokens -= now - start;
            nb->spin_refill_at = now;
        }
    }
    drain_due(nb, now);
    flush_dirty(nb);
    arm_timer(nb);
}

/* ------------------------------------------------------------------ */
/* Forwarding                                                          */
/* ------------------------------------------------------------------ */

static enum nb_drop_reason drop_of_impair(enum impair_drop_reason r)
{
    switch (r) {
    case IMPAIR_DROP_PARTITION:
        return NB_DROP_PARTITION;
    case IMPAIR_DROP_MTU:
        return NB_DROP_MTU;
    case IMPAIR_DROP_QUEUE:
        return NB_DROP_QUEUE;
    case IMPAIR_DROP_LOSS:
    default:
        return NB_DROP_LOSS;
    }
}

static void drop_copy(struct netback *nb, struct nb_link *l, struct nb_port *src,
                      struct nb_port *dst, enum nb_drop_reason why, uint32_t size, int64_t sent_ns,
                      int64_t pcap_index, uint32_t hash, uint16_t copy)
{
    l->stats.dropped[why]++;
    record(nb, l, src, dst, sent_ns, pcap_index, size, hash, copy, (int)why, 0, false, 0, 0);
}

static void forward_copy(struct netback *nb, struct nb_port *src, struct nb_port *dst,
                         const uint8_t *frame, uint32_t size, int64_t now, int64_t pcap_index,
                         uint32_t hash)
{
    struct nb_network *net = src->net;
    struct nb_link *l = net_link(net, src->local, dst->local);
    l->stats.sent++;
    l->stats.sent_bytes += size;
    if (l->cut) {
        drop_copy(nb, l, src, dst, NB_DROP_PARTITION, size, now, pcap_index, hash, 0);
        return;
    }
    if (!l->impaired) {
        /* Fast path: no impairment means delivery now, in order. */
        if (impair_tq_next_time(nb->tq) > now + NB_DELIVER_EPSILON_NS) {
            uint64_t seq = ++l->tx_seq;
            deliver(nb, l, src, dst, frame, size, now, pcap_index, hash, 0, seq, 0, 0, now);
            return;
        }
    }
    struct impair_decision d;
    if (impair_link_decide(l->il, now, size, &d) < 0 || d.n_deliveries == 0) {
        drop_copy(nb, l, src, dst, drop_of_impair(d.reason), size, now, pcap_index, hash, 0);
        return;
    }
    uint64_t seq = ++l->tx_seq;
    for (unsigned i = 0; i < d.n_deliveries && i < IMPAIR_MAX_DELIVERIES; i++) {
        const struct impair_delivery *dv = &d.deliveries[i];
        if (dv->duplicate) {
            l->stats.duplicated++;
        }
        uint8_t mask = dv->corrupted && dv->corrupt_offset < size ? dv->corrupt_mask : 0;
        uint32_t off = mask ? dv->corrupt_offset : 0;
        if (mask) {
            l->stats.corrupted++;
        }
        if (dv->reordered) {
            l->stats.reordered++;
        }
        if (dv->time_ns <= now + NB_DELIVER_EPSILON_NS &&
            impair_tq_next_time(nb->tq) > now + NB_DELIVER_EPSILON_NS) {
            deliver(nb, l, src, dst, frame, size, now, pcap_index, hash, (uint16_t)i, seq, off,
                    mask, now);
            continue;
        }
        struct nb_pkt *pkt = pkt_alloc(nb, size);
        pkt->link = l;
        pkt->src = src;
        pkt->dst = dst;
        pkt->sent_ns = now;
        pkt->pcap_index = pcap_index;
        pkt->seq = seq;
        pkt->size = size;
        pkt->hash = hash;
        pkt->corrupt_offset = off;
        pkt->corrupt_mask = mask;
        pkt->copy = (uint16_t)i;
        memcpy(pkt->data, frame, size);
        impair_tq_push(nb->tq, dv->time_ns, pkt);
    }
}

/* One valid frame from a guest. */
static int on_frame(void *arg, const uint8_t *frame, size_t size)
{
    struct nb_port *p = arg;
    struct netback *nb = p->nb;
    struct nb_network *net = p->net;
    int64_t now = p->rx_now;
    p->stats.rx_frames++;
    p->stats.rx_bytes += size;
    int64_t pcap_index = pcap_put(p, now, frame, size);
    uint32_t hash = nb->trace ? trace_frame_hash(frame, size) : 0;

    const uint8_t *dst_mac = frame;
    const uint8_t *src_mac = frame + 6;
    if (nb_mac_is_group(src_mac)) {
        /* No valid Ethernet frame has a group source address; learning it
         * would poison the table.  Dropped, counted, not fatal. */
        p->stats.rx_bad_src++;
        return 0;
    }
    nb_mactable_learn(&net->macs, src_mac, p->index, now);

    uint32_t sz = (uint32_t)size;
    if (!nb_mac_is_group(dst_mac)) {
        int64_t to = nb_mactable_lookup(&net->macs, dst_mac, now);
        if (to >= 0) {
            if ((uint32_t)to != p->index) {
                forward_copy(nb, p, net->ports[to], frame, sz, now, pcap_index, hash);
            }
            /* else: the destination is on the sender's own port; a switch
             * filters it. */
            return 0;
        }
    }
    /* Broadcast, multicast or unknown unicast: flood to every other port
     * with a guest connected (a switch does not send to a port whose link
     * is down). */
    for (size_t i = 0; i < net->n_ports; i++) {
        struct nb_port *q = net->ports[i];
        if (q != p && q->fd >= 0) {
            forward_copy(nb, p, q, frame, sz, now, pcap_index, hash);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Ports: connections                                                  */
/* ------------------------------------------------------------------ */

static void port_disconnect(struct nb_port *p, enum nb_disconnect_reason reason, const char *detail)
{
    struct netback *nb = p->nb;
    if (p->fd < 0) {
        return;
    }
    fl_loop_del_fd(nb->loop, p->fd);
    close(p->fd);
    p->fd = -1;
    p->out_armed = false;
    p->stats.connected = false;
    nb_reasm_reset(&p->reasm);
    nb_outq_clear(&p->outq);
    if (!nb->in_destroy) {
        flow_forget(p);
    }
    if (reason == NB_DISCONNECT_MALFORMED) {
        p->stats.malformed_disconnects++;
        FL_LOG_RL(&nb->rl_malformed, FL_LOG_WARN, LOG_ROOM,
                  "%s/%s (network %s): closing the connection: malformed input from the guest: %s",
                  p->node_name, p->nic, p->net->name, detail);
    } else {
        FL_LOG_RL(&nb->rl_info, FL_LOG_INFO, LOG_ROOM, "%s/%s (network %s): disconnected (%s): %s",
                  p->node_name, p->nic, p->net->name, nb_disconnect_reason_name(reason), detail);
    }
    if (nb->cfg.events && nb->cfg.events->port_disconnected && !nb->in_destroy) {
        nb->cfg.events->port_disconnected(nb->cfg.events_arg, p->net->name, p->node_name, p->nic,
                                          reason, detail);
    }
}

int nb_port_input(struct nb_port *p, const uint8_t *data, size_t size, int64_t now_ns)
{
    struct netback *nb = p->nb;
    p->rx_now = now_ns;
    nb->feed_lo = data;
    nb->feed_hi = data + size;
    int r = nb_reasm_feed(&p->reasm, data, size, on_frame, p);
    nb->feed_lo = nb->feed_hi = NULL;
    drain_due(nb, now_ns);
    flush_dirty(nb);
    arm_timer(nb);
    if (r == -EBADMSG) {
        char detail[sizeof p->reasm.error];
        memcpy(detail, p->reasm.error, sizeof detail);
        port_disconnect(p, NB_DISCONNECT_MALFORMED, detail);
    }
    return r;
}

static void on_conn_event(struct fl_loop *loop, int fd, uint32_t events, void *arg)
{
    struct nb_port *p = arg;
    struct netback *nb = p->nb;
    if (events & EPOLLOUT) {
        port_flush(p);
        if (p->fd != fd) {
            return;
        }
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        return;
    }
    ssize_t n = read(fd, nb->rxbuf, nb->n_congested ? NB_READ_HELD_SIZE : NB_READ_BUFFER_SIZE);
    if (n > 0) {
        nb_port_input(p, nb->rxbuf, (size_t)n, fl_loop_now(loop));
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        return;
    }
    if (n < 0) {
        char detail[96];
        snprintf(detail, sizeof detail, "read failed: %s", strerror(errno));
        port_disconnect(p, errno == ECONNRESET ? NB_DISCONNECT_EOF : NB_DISCONNECT_ERROR, detail);
        return;
    }
    if (nb_reasm_finish(&p->reasm) < 0) {
        char detail[sizeof p->reasm.error];
        memcpy(detail, p->reasm.error, sizeof detail);
        port_disconnect(p, NB_DISCONNECT_MALFORMED, detail);
    } else {
        port_disconnect(p, NB_DISCONNECT_EOF, "the peer closed the connection");
    }
}

int nb_port_attach(struct nb_port *p, int fd);
int nb_port_attach(struct nb_port *p, int fd)
{
    struct netback *nb = p->nb;
    if (p->fd >= 0) {
        port_disconnect(p, NB_DISCONNECT_REPLACED, "a new connection took over the socket");
    }
    int r = fl_loop_add_fd(nb->loop, fd, EPOLLIN, on_conn_event, p);
    if (r < 0) {
        return r;
    }
    p->fd = fd;
    p->out_armed = false;
    p->stats.connected = true;
    p->stats.connects++;
    nb_reasm_reset(&p->reasm);
    fl_log(FL_LOG_INFO, LOG_ROOM, "%s/%s (network %s): guest connected", p->node_name, p->nic,
           p->net->name);
    if (nb->cfg.events && nb->cfg.events->port_connected) {
        nb->cfg.events->port_connected(nb->cfg.events_arg, p->net->name, p->node_name, p->nic);
    }
    return 0;
}

static void on_listen_event(struct fl_loop *loop, int lfd, uint32_t events, void *arg)
{
    struct nb_port *p = arg;
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) {
            FL_LOG_RL(&p->nb->rl_info, FL_LOG_WARN, LOG_ROOM, "%s/%s: accept on %s: %s",
                      p->node_name, p->nic, p->path, strerror(errno));
        }
        return;
    }
    int r = nb_port_attach(p, fd);
    if (r < 0) {
        fl_log(FL_LOG_ERROR, LOG_ROOM, "%s/%s: cannot watch the connection: %s", p->node_name,
               p->nic, strerror(-r));
        close(fd);
    }
}

/* ------------------------------------------------------------------ */
/* Setup                                                               */
/* ------------------------------------------------------------------ */

struct netback *nb_create(struct fl_loop *loop, const struct nb_config *cfg, struct fl_error **errp)
{
    struct nb_config def = {0};
    if (!cfg) {
        cfg = &def;
    }
    if (cfg->pcap_dir && !fl_mkdir_p(cfg->pcap_dir, 0755, errp)) {
        fl_error_prepend(errp, "netback: pcap directory: ");
        return NULL;
    }
    struct netback *nb = fl_xcalloc(1, sizeof *nb);
    nb->loop = loop;
    nb->cfg = *cfg;
    nb->pcap_dir = cfg->pcap_dir ? fl_xstrdup(cfg->pcap_dir) : NULL;
    nb->cfg.pcap_dir = nb->pcap_dir;
    nb->trace = cfg->trace;
    if (!nb->cfg.port_queue_size) {
        nb->cfg.port_queue_size = NB_DEFAULT_PORT_QUEUE_SIZE;
    }
    if (nb->cfg.port_queue_size < NB_STREAM_HDR_SIZE + NB_FRAME_MAX) {
        /* Every valid frame must fit in an empty queue. */
        nb->cfg.port_queue_size = NB_STREAM_HDR_SIZE + NB_FRAME_MAX;
    }
    if (!nb->cfg.mac_aging_ns) {
        nb->cfg.mac_aging_ns = NB_DEFAULT_MAC_AGING_NS;
    }
    nb->spin_ns = cfg->spin_ns == 0 ? NB_DEFAULT_SPIN_NS : cfg->spin_ns;
    nb->lead_ns = nb->spin_ns > 0 ? FL_MIN(NB_INITIAL_LEAD_NS, nb->spin_ns) : 0;
    nb->spin_tokens = nb->spin_ns > 0 ? nb->spin_ns : 0;
    nb->spin_refill_at = fl_loop_now(loop);
    nb->rxbuf = fl_xmalloc(NB_READ_BUFFER_SIZE);
    nb->tq = impair_tq_create();
    nb->timer = fl_timer_create(loop, on_timer, nb);
    nb->stall_ns = cfg->stall_ns == 0 ? NB_DEFAULT_STALL_NS : cfg->stall_ns;
    nb->stall_timer = fl_timer_create(loop, on_stall_timer, nb);
    if (nb->pcap_dir) {
        nb->flush_timer = fl_timer_create(loop, on_flush_timer, nb);
        fl_timer_arm_in(nb->flush_timer, NB_FLUSH_INTERVAL_NS);
    }
    nb->wall_offset_ns = fl_clock_real_ns() - fl_clock_mono_ns();
    nb->rl_malformed = (struct fl_ratelimit)FL_RATELIMIT_INIT(5 * FL_NS_PER_SEC, 5);
    nb->rl_info = (struct fl_ratelimit)FL_RATELIMIT_INIT(5 * FL_NS_PER_SEC, 20);
    return nb;
}

static void port_free(struct nb_port *p)
{
    struct netback *nb = p->nb;
    port_disconnect(p, NB_DISCONNECT_REMOVED, "netback is shutting down");
    if (p->lfd >= 0) {
        fl_loop_del_fd(nb->loop, p->lfd);
        close(p->lfd);
        unlink(p->path);
    }
    nb_reasm_free(&p->reasm);
    nb_outq_free(&p->outq);
    free(p->holding);
    trace_pcap_destroy(p->pcap);
    free(p->node_name);
    free(p->nic);
    free(p->path);
    free(p);
}

void nb_destroy(struct netback *nb)
{
    if (!nb) {
        return;
    }
    nb->in_destroy = true;
    /* Copies still in flight: their fate is "shutdown". */
    void *v;
    while (impair_tq_pop(nb->tq, NULL, &v)) {
        struct nb_pkt *pkt = v;
        record(nb, pkt->link, pkt->src, pkt->dst, pkt->sent_ns, pkt->pcap_index, pkt->size,
               pkt->hash, pkt->copy, NB_DROP__COUNT, 0, false, 0, 0);
        pkt_free(nb, pkt);
    }
    impair_tq_destroy(nb->tq);
    while (nb->free_pkts) {
        struct nb_pkt *pkt = nb->free_pkts;
        nb->free_pkts = pkt->next_free;
        free(pkt);
    }
    fl_timer_destroy(nb->timer);
    fl_timer_destroy(nb->flush_timer);
    fl_timer_destroy(nb->stall_timer);
    for (size_t n = 0; n < nb->n_nets; n++) {
        struct nb_network *net = nb->nets[n];
        for (size_t i = 0; i < net->n_ports; i++) {
            port_free(net->ports[i]);
        }
        for (size_t i = 0; i < net->n_nodes * net->n_nodes; i++) {
            if (net->links[i]) {
                impair_link_destroy(net->links[i]->il);
                free(net->links[i]);
            }
        }
        nb_mactable_free(&net->macs);
        free(net->links);
        free(net->ports);
        free(net->nodes);
        free(net->name);
        free(net);
    }
    for (size_t i = 0; i < nb->n_nodes; i++) {
        free(nb->nodes[i]);
    }
    free(nb->nodes);
    free(nb->node_trace_ids);
    free(nb->nets);
    free(nb->rxbuf);
    free(nb->pcap_dir);
    free(nb);
}

bool nb_network_add(struct netback *nb, const char *name, struct fl_error **errp)
{
    if (!fl_name_check("network", name, NB_NAME_MAX, errp)) {
        return false;
    }
    if (find_network(nb, name)) {
        fl_error_setf(errp, EEXIST, "network '%s' already exists", name);
        return false;
    }
    struct nb_network *net = fl_xcalloc(1, sizeof *net);
    net->nb = nb;
    net->name = fl_xstrdup(name);
    nb_mactable_init(&net->macs, nb->cfg.mac_aging_ns);
    if (nb->trace) {
        net->trace_id = trace_network_id(nb->trace, name);
    }
    nb->nets = fl_xgrow(nb->nets, &nb->nets_alloc, nb->n_nets + 1, sizeof *nb->nets);
    nb->nets[nb->n_nets++] = net;
    return true;
}

static size_t node_intern(struct netback *nb, const char *name)
{
    int64_t id = find_node(nb, name);
    if (id >= 0) {
        return (size_t)id;
    }
    size_t alloc = nb->nodes_alloc;
    nb->nodes = fl_xgrow(nb->nodes, &nb->nodes_alloc, nb->n_nodes + 1, sizeof *nb->nodes);
    if (nb->nodes_alloc != alloc) {
        nb->node_trace_ids =
            fl_xrealloc(nb->node_trace_ids, nb->nodes_alloc * sizeof *nb->node_trace_ids);
    }
    nb->nodes[nb->n_nodes] = fl_xstrdup(name);
    nb->node_trace_ids[nb->n_nodes] = nb->trace ? trace_node_id(nb->trace, name) : 0;
    return nb->n_nodes++;
}

/* The impair stream id of a link: "<net>:<src>-><dst>". */
static struct nb_link *link_new(struct netback *nb, struct nb_network *net, size_t src, size_t dst)
{
    struct nb_link *l = fl_xcalloc(1, sizeof *l);
    l->net = net;
    l->src = src;
    l->dst = dst;
    char *id = fl_xasprintf("%s:%s->%s", net->name, nb->nodes[src], nb->nodes[dst]);
    static const struct impair_link_params perfect;
    l->il = impair_link_create(&perfect, nb->cfg.seed, impair_stream_id(id), NULL);
    free(id);
    if (!l->il) {
        /* A perfect link always validates; nothing else can fail here. */
        abort();
    }
    if (nb->trace) {
        l->trace_id = trace_link_id(nb->trace, net->trace_id, nb->node_trace_ids[src],
                                    nb->node_trace_ids[dst]);
    }
    return l;
}

/* Adds node to net (if not there yet) and creates its links both ways. */
static size_t net_add_node(struct netback *nb, struct nb_network *net, size_t node)
{
    int64_t have = net_local(net, node);
    if (have >= 0) {
        return (size_t)have;
    }
    size_t old_n = net->n_nodes, n = old_n + 1;
    struct nb_link **links = fl_xcalloc(n * n, sizeof *links);
    for (size_t s = 0; s < old_n; s++) {
        for (size_t d = 0; d < old_n; d++) {
            links[s * n + d] = net->links[s * old_n + d];
        }
    }
    net->nodes = fl_xgrow(net->nodes, &net->nodes_alloc, n, sizeof *net->nodes);
    net->nodes[old_n] = node;
    for (size_t o = 0; o < n; o++) {
        links[old_n * n + o] = link_new(nb, net, node, net->nodes[o]);
        if (o != old_n) {
            links[o * n + old_n] = link_new(nb, net, net->nodes[o], node);
        }
    }
    free(net->links);
    net->links = links;
    net->n_nodes = n;
    return old_n;
}

static int listen_unix(const char *path, struct fl_error **errp)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        fl_error_setf(errp, ENAMETOOLONG, "socket path '%s' is %zu bytes long (at most %zu)", path,
                      strlen(path), sizeof sa.sun_path - 1);
        return -1;
    }
    strcpy(sa.sun_path, path);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            fl_error_setf(errp, EEXIST,
                          "socket path '%s' exists and is not a socket (refusing to replace it)",
                          path);
            return -1;
        }
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fl_error_setf_errno(errp, errno, "socket(AF_UNIX)");
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        fl_error_setf_errno(errp, errno, "bind '%s'", path);
        close(fd);
        return -1;
    }
    if (chmod(path, 0600) < 0 || listen(fd, 8) < 0) {
        fl_error_setf_errno(errp, errno, "listen on '%s'", path);
        close(fd);
        unlink(path);
        return -1;
    }
    return fd;
}

struct nb_port *nb_port_add(struct netback *nb, const char *network, const char *node,
                            const char *nic, const uint8_t *mac, const char *socket_path,
                            struct fl_error **errp)
{
    struct nb_network *net = network ? find_network(nb, network) : NULL;
    if (!net) {
        struct fl_buf known = {0};
        for (size_t i = 0; i < nb->n_nets; i++) {
            fl_buf_printf(&known, "%s'%s'", i ? ", " : "", nb->nets[i]->name);
        }
        fl_error_setf(errp, ENOENT, "unknown network '%s' (known: %s)",
                      network ? network : "(null)", known.data ? known.data : "none");
        fl_buf_free(&known);
        return NULL;
    }
    if (!fl_name_check("node", node, NB_NAME_MAX, errp) ||
        !fl_name_check("nic", nic, NB_NAME_MAX, errp)) {
        return NULL;
    }
    if (!socket_path || !*socket_path) {
        fl_error_setf(errp, EINVAL, "%s/%s: a socket path is required", node, nic);
        return NULL;
    }
    if (nb_port_find(nb, node, nic)) {
        fl_error_setf(errp, EEXIST, "NIC '%s' of node '%s' already exists", nic, node);
        return NULL;
    }
    int lfd = listen_unix(socket_path, errp);
    if (lfd < 0) {
        fl_error_prepend(errp, "%s/%s: ", node, nic);
        return NULL;
    }
    struct nb_port *p = fl_xcalloc(1, sizeof *p);
    p->nb = nb;
    p->net = net;
    p->lfd = lfd;
    p->fd = -1;
    p->node_name = fl_xstrdup(node);
    p->nic = fl_xstrdup(nic);
    p->path = fl_xstrdup(socket_path);
    nb_reasm_init(&p->reasm);
    nb_outq_init(&p->outq, nb->cfg.port_queue_size + (nb->stall_ns >= 0 ? NB_HOLD_SLACK : 0));
    if (nb->pcap_dir) {
        char *path = fl_xasprintf("%s/%s-%s.pcap", nb->pcap_dir, node, nic);
        p->pcap = trace_pcap_create(path, errp);
        free(path);
        if (!p->pcap) {
            close(lfd);
            unlink(socket_path);
            nb_reasm_free(&p->reasm);
            free(p->node_name);
            free(p->nic);
            free(p->path);
            free(p);
            return NULL;
        }
    }
    int r = fl_loop_add_fd(nb->loop, lfd, EPOLLIN, on_listen_event, p);
    if (r < 0) {
        fl_error_setf_errno(errp, -r, "%s/%s: watching '%s'", node, nic, socket_path);
        trace_pcap_destroy(p->pcap);
        close(lfd);
        unlink(socket_path);
        nb_reasm_free(&p->reasm);
        free(p->node_name);
        free(p->nic);
        free(p->path);
        free(p);
        return NULL;
    }
    p->node = node_intern(nb, node);
    p->local = net_add_node(nb, net, p->node);
    p->index = (uint32_t)net->n_ports;
    net->ports = fl_xgrow(net->ports, &net->ports_alloc, net->n_ports + 1, sizeof *net->ports);
    net->ports[net->n_ports++] = p;
    if (mac) {
        memcpy(p->mac, mac, 6);
        p->has_mac = true;
        if (!nb_mac_is_group(mac)) {
            nb_mactable_learn(&net->macs, mac, p->index, fl_loop_now(nb->loop));
        }
    }
    if (nb->trace) {
        char macs[18] = "";
        if (mac) {
            snprintf(macs, sizeof macs, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
                     mac[3], mac[4], mac[5]);
        }
        p->trace_nic_id = trace_nic_id(nb->trace, nb->node_trace_ids[p->node], net->trace_id, nic,
                                       mac ? macs : NULL);
    }
    return p;
}
