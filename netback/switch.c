/*
 * The switch: one learning switch per network, and each copy's impair
 * decision.
 *
 *   nb_switch_frame (a valid frame from port p)
 *     capture(rx) · group source? drop · port security: source MAC not
 *     p's? every copy dropped as "spoofed" · learn the source MAC ·
 *     destination: known unicast ─▶ that port; else flood (ports with a peer)
 *     per destination: forward ─▶ link cut? ─▶ impair_link_decide
 *          ─▶ per delivery: due now and queue idle ─▶ nb_deliver
 *                           else ─────────────────▶ nb_schedule
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "netback/internal.h"

#define LOG_ROOM "netback"

static struct nb_link *net_link(const struct nb_network *net, size_t src_local, size_t dst_local)
{
    return net->links[src_local * net->n_nodes + dst_local];
}

/* A copy of the frame described by tmpl, from tmpl->src to dst: its
 * link, counted as sent. */
static struct nb_copy copy_to(const struct nb_copy *tmpl, struct nb_port *dst)
{
    struct nb_copy c = *tmpl;
    c.dst = dst;
    c.link = net_link(dst->net, tmpl->src->local, dst->local);
    c.link->stats.sent++;
    c.link->stats.sent_bytes += c.size;
    return c;
}

static void forward(struct netback *nb, const struct nb_copy *tmpl, struct nb_port *dst,
                    const uint8_t *frame, int64_t now)
{
    struct nb_copy c = copy_to(tmpl, dst);
    struct nb_link *l = c.link;
    if (l->cut) {
        nb_drop_copy(nb, &c, NB_DROP_PARTITION);
        return;
    }
    if (!l->impaired && nb_queue_idle(nb, now)) {
        /* Fast path: no impairment means delivery now, in order. */
        c.seq = ++l->tx_seq;
        nb_deliver(nb, &c, frame, now);
        return;
    }
    struct impair_decision d;
    int r = impair_link_decide(l->il, now, c.size, &d);
    if (r < 0) {
        /* impair refused to decide (time ran backwards on the link): a
         * bug, not the scenario's loss, so it is not counted as one. */
        FL_LOG_RL(&nb->rl_internal, FL_LOG_ERROR, LOG_ROOM,
                  "internal error: link %s:%s->%s: impair_link_decide: %s; frame dropped "
                  "(counted as 'internal')",
                  l->net->name, nb->nodes[l->src], nb->nodes[l->dst], strerror(-r));
        nb_drop_copy(nb, &c, NB_DROP_INTERNAL);
        return;
    }
    if (d.n_deliveries == 0) {
        nb_drop_copy(nb, &c, (enum nb_drop_reason)d.reason);
        return;
    }
    c.seq = ++l->tx_seq;
    for (unsigned i = 0; i < d.n_deliveries && i < IMPAIR_MAX_DELIVERIES; i++) {
        const struct impair_delivery *dv = &d.deliveries[i];
        if (dv->duplicate) {
            l->stats.duplicated++;
        }
        c.corrupt_mask = dv->corrupted && dv->corrupt_offset < c.size ? dv->corrupt_mask : 0;
        c.corrupt_offset = c.corrupt_mask ? dv->corrupt_offset : 0;
        c.copy = (uint16_t)i;
        if (c.corrupt_mask) {
            l->stats.corrupted++;
        }
        if (dv->reordered) {
            l->stats.reordered++;
        }
        if (dv->time_ns <= now + NB_DELIVER_EPSILON_NS && nb_queue_idle(nb, now)) {
            nb_deliver(nb, &c, frame, now);
        } else {
            nb_schedule(nb, &c, frame, dv->time_ns);
        }
    }
}

/* Port security: is mac the sending port's own?  A port given no MAC
 * takes the first unicast source MAC after each connection as its own,
 * unless that MAC is already another port's (its own or learned there). */
static bool mac_is_ports(struct nb_port *p, const uint8_t *mac, int64_t now)
{
    if (p->has_mac) {
        return !memcmp(p->mac, mac, 6);
    }
    struct nb_network *net = p->net;
    for (size_t i = 0; i < net->n_ports; i++) {
        struct nb_port *q = net->ports[i];
        if (q != p && q->has_mac && !memcmp(q->mac, mac, 6)) {
            return false;
        }
    }
    int64_t at = nb_mactable_lookup(&net->macs, mac, now);
    if (at >= 0 && (uint32_t)at != p->index) {
        return false;
    }
    memcpy(p->mac, mac, 6);
    p->has_mac = true;
    return true;
}

static void spoofed(struct netback *nb, struct nb_port *p, const uint8_t *src_mac)
{
    p->stats.rx_spoofed++;
    FL_LOG_RL(&nb->rl_spoofed, FL_LOG_WARN, LOG_ROOM,
              "%s/%s (network %s): frame from source MAC %02x:%02x:%02x:%02x:%02x:%02x, not the "
              "NIC's %02x:%02x:%02x:%02x:%02x:%02x: dropped (port security; a network with "
              "learning on lets MACs move)",
              p->node_name, p->nic, p->net->name, src_mac[0], src_mac[1], src_mac[2], src_mac[3],
              src_mac[4], src_mac[5], p->mac[0], p->mac[1], p->mac[2], p->mac[3], p->mac[4],
              p->mac[5]);
}

void nb_switch_frame(struct nb_port *p, const uint8_t *frame, size_t size, int64_t now)
{
    struct netback *nb = p->nb;
    struct nb_network *net = p->net;
    p->stats.rx_frames++;
    p->stats.rx_bytes += size;
    struct nb_copy tmpl;
    nb_capture_rx(p, now, frame, size, &tmpl);

    const uint8_t *dst_mac = frame;
    const uint8_t *src_mac = frame + 6;
    if (nb_mac_is_group(src_mac)) {
        /* No valid Ethernet frame has a group source address; learning it
         * would poison the table.  Dropped, counted, not fatal. */
        p->stats.rx_bad_src++;
        return;
    }
    /* A spoofed frame still goes where it would have gone, to be dropped
     * there as "spoofed": each copy counted on its link and recorded. */
    bool spoof = !net->learning && !mac_is_ports(p, src_mac, now);
    if (spoof) {
        spoofed(nb, p, src_mac);
    } else {
        nb_mactable_learn(&net->macs, src_mac, p->index, now);
    }

    if (!nb_mac_is_group(dst_mac)) {
        int64_t to = nb_mactable_lookup(&net->macs, dst_mac, now);
        if (to >= 0) {
            if ((uint32_t)to != p->index) {
                struct nb_port *dst = net->ports[to];
                if (spoof) {
                    struct nb_copy c = copy_to(&tmpl, dst);
                    nb_drop_copy(nb, &c, NB_DROP_SPOOFED);
                } else {
                    forward(nb, &tmpl, dst, frame, now);
                }
            }
            /* else: the destination is on the sender's own port; a switch
             * filters it. */
            return;
        }
    }
    /* Broadcast, multicast or unknown unicast: flood to every other port
     * with a peer attached (a switch does not send to a port whose link
     * is down). */
    for (size_t i = 0; i < net->n_ports; i++) {
        struct nb_port *q = net->ports[i];
        if (q != p && q->cls->connected(q)) {
            if (spoof) {
                struct nb_copy c = copy_to(&tmpl, q);
                nb_drop_copy(nb, &c, NB_DROP_SPOOFED);
            } else {
                forward(nb, &tmpl, q, frame, now);
            }
        }
    }
}
