/*
 * The capture stage: what netback writes down about frames, in one place
 * (QEMU's filter-dump is one filter on the path, not calls sprinkled
 * through it).  Two points on a frame's path reach it:
 *
 *   source port ─ nb_capture_rx ─▶ pcap(src), starts the struct nb_copy
 *        ... switch, impair, delivery queue ...
 *   one copy ends ─ nb_capture_end ─▶ delivered: pcap(dst), as its guest
 *                                     receives it (the flipped bit too)
 *                                   ─▶ fate record in run.db, either way
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netback/internal.h"

#define LOG_ROOM "netback"

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

void nb_capture_rx(struct nb_port *p, int64_t now, const uint8_t *frame, size_t size,
                   struct nb_copy *out)
{
    *out = (struct nb_copy){
        .src = p,
        .sent_ns = now,
        .pcap_index = pcap_put(p, now, frame, size),
        .size = (uint32_t)size,
        .hash = p->nb->trace ? trace_frame_hash(frame, size) : 0,
    };
}

static void record(struct netback *nb, const struct nb_copy *c, enum nb_drop_reason drop,
                   int64_t delivered_ns, bool reordered)
{
    bool delivered = drop == NB_DROP_NONE;
    struct trace_frame f = {
        .sent_ns = c->sent_ns,
        .delivered_ns = delivered ? delivered_ns : TRACE_NO_TIME,
        .link_id = c->link->trace_id,
        .src_nic_id = c->src ? c->src->trace_nic_id : 0,
        .dst_nic_id = c->dst ? c->dst->trace_nic_id : 0,
        .pcap_index = c->pcap_index,
        .size = c->size,
        .hash = c->hash,
        .fate = delivered ? TRACE_FATE_DELIVERED : TRACE_FATE_DROPPED,
        /* one list (impair/impair.h): netback's reason is run.db's */
        .reason = (enum trace_drop_reason)drop,
        .reordered = reordered,
        .corrupt_mask = c->corrupt_mask,
        .copy = c->copy,
        .corrupt_offset = c->corrupt_offset,
    };
    int r = trace_frame(nb->trace, &f);
    if (r < 0) {
        static struct fl_ratelimit rl = FL_RATELIMIT_INIT(10 * FL_NS_PER_SEC, 1);
        FL_LOG_RL(&rl, FL_LOG_WARN, LOG_ROOM, "frame record not written: %s", strerror(-r));
    }
}

void nb_capture_end(struct netback *nb, const struct nb_copy *c, const uint8_t *data,
                    enum nb_drop_reason drop, int64_t now, bool reordered)
{
    struct nb_port *dst = c->dst;
    if (drop == NB_DROP_NONE && dst->pcap) {
        if (c->corrupt_mask) {
            /* The pcap shows what the guest receives: the flipped bit. */
            uint8_t *copybuf = fl_xmalloc(c->size);
            memcpy(copybuf, data, c->size);
            copybuf[c->corrupt_offset] ^= c->corrupt_mask;
            pcap_put(dst, now, copybuf, c->size);
            free(copybuf);
        } else {
            pcap_put(dst, now, data, c->size);
        }
    }
    if (nb->trace) {
        record(nb, c, drop, now, reordered);
    }
}

int nb_flush(struct netback *nb)
{
    int first = 0;
    for (size_t n = 0; n < nb->n_nets; n++) {
        struct nb_network *net = nb->nets[n];
        for (size_t i = 0; i < net->n_ports; i++) {
            struct nb_port *p = net->ports[i];
            if (!p->pcap) {
                continue;
            }
            if (p->pcap_dirty) {
                int r = trace_pcap_flush(p->pcap);
                if (r < 0 && !first) {
                    first = r;
                }
                p->pcap_dirty = false;
            }
            /* A failure an earlier flush (the timer's) already met is
             * sticky in trace: report it again, so the owner of a run
             * learns of it at the end whoever saw it first. */
            struct fl_error *err = NULL;
            if (!first && !trace_pcap_ok(p->pcap, &err)) {
                first = -(err->code ? err->code : EIO);
            }
            fl_error_free(err);
        }
    }
    return first;
}

/* Every second: pcaps to disk (a killed controller loses at most a
 * second of capture), and the wall-clock offset for pcap stamps. */
void nb_on_flush_timer(struct fl_loop *loop, struct fl_timer *timer, void *arg)
{
    struct netback *nb = arg;
    /* A failure is logged once by trace, which names the file, and
     * reported by nb_flush() to the run's owner at the end. */
    (void)nb_flush(nb);
    nb->wall_offset_ns = fl_clock_real_ns() - fl_clock_mono_ns();
    fl_timer_arm_in(timer, NB_FLUSH_INTERVAL_NS);
}
