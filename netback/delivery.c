/*
 * Delivery: the queue of delayed copies, their pool, the precise timer,
 * and the last step of every copy that impair let through.
 *
 *   switch ─ due now, queue idle ─────────────────────────┐
 *          ─ due later ─▶ nb_schedule ─▶ impair_tq ─▶ on_timer / nb_settle
 *                         (pool of copies)                 ▼
 *                                      nb_deliver ─▶ port kind's output()
 *                                           │        (dirty list ─▶ flush())
 *                                           └──────▶ capture stage
 *
 * The timer is armed a little before the earliest due copy (see
 * update_lead) and the callback spins the rest, so deliveries are on time
 * despite the timerfd's wake-up latency.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "netback/internal.h"

void nb_mark_dirty(struct nb_port *p)
{
    if (!p->dirty) {
        p->dirty = true;
        p->next_dirty = p->nb->dirty;
        p->nb->dirty = p;
    }
}

static void flush_dirty(struct netback *nb)
{
    while (nb->dirty) {
        struct nb_port *p = nb->dirty;
        nb->dirty = p->next_dirty;
        p->dirty = false;
        p->next_dirty = NULL;
        p->cls->flush(p);
    }
}

void nb_drop_copy(struct netback *nb, const struct nb_copy *c, enum nb_drop_reason why)
{
    c->link->stats.dropped[why]++;
    nb_capture_end(nb, c, NULL, why, 0, false);
}

void nb_deliver(struct netback *nb, struct nb_copy *c, const uint8_t *data, int64_t now)
{
    struct nb_port *dst = c->dst;
    struct nb_link *l = c->link;
    enum nb_drop_reason drop = NB_DROP_NONE;
    if (!dst->cls->connected(dst)) {
        drop = NB_DROP_PORT_DOWN;
        dst->stats.tx_down_drops++;
    } else if (!dst->cls->output(dst, c, data, now)) {
        drop = NB_DROP_PORT_QUEUE_FULL;
        dst->stats.tx_queue_drops++;
    }
    bool reordered = false;
    if (drop != NB_DROP_NONE) {
        l->stats.dropped[drop]++;
    } else {
        dst->stats.tx_frames++;
        dst->stats.tx_bytes += c->size;
        l->stats.delivered++;
        l->stats.delivered_bytes += c->size;
        reordered = c->seq < l->last_done;
        if (c->seq > l->last_done) {
            l->last_done = c->seq;
        }
        nb_mark_dirty(dst);
    }
    nb_capture_end(nb, c, data, drop, now, reordered);
}

/* ------------------------------------------------------------------ */
/* The queue and its pool                                              */
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
    if (pkt->c.size <= NB_PKT_SMALL && nb->n_free_pkts < NB_PKT_FREE_MAX) {
        pkt->next_free = nb->free_pkts;
        nb->free_pkts = pkt;
        nb->n_free_pkts++;
        return;
    }
    free(pkt);
}

void nb_schedule(struct netback *nb, const struct nb_copy *c, const uint8_t *data, int64_t time_ns)
{
    struct nb_pkt *pkt = pkt_alloc(nb, c->size);
    pkt->c = *c;
    memcpy(pkt->data, data, c->size);
    impair_tq_push(nb->tq, time_ns, pkt);
}

bool nb_queue_idle(const struct netback *nb, int64_t now)
{
    return impair_tq_next_time(nb->tq) > now + NB_DELIVER_EPSILON_NS;
}

/* Delivers every queued copy due at or before now (+ epsilon). */
static void drain_due(struct netback *nb, int64_t now)
{
    void *v;
    while (impair_tq_next_time(nb->tq) <= now + NB_DELIVER_EPSILON_NS &&
           impair_tq_pop(nb->tq, NULL, &v)) {
        struct nb_pkt *pkt = v;
        nb_deliver(nb, &pkt->c, pkt->data, now);
        pkt_free(nb, pkt);
    }
}

void nb_delivery_shutdown(struct netback *nb)
{
    /* Copies still in flight: their fate is "shutdown" (recorded without
     * the corruption they would have had, as always). */
    void *v;
    while (impair_tq_pop(nb->tq, NULL, &v)) {
        struct nb_pkt *pkt = v;
        struct nb_copy c = pkt->c;
        c.corrupt_mask = 0;
        c.corrupt_offset = 0;
        nb_capture_end(nb, &c, pkt->data, NB_DROP_SHUTDOWN, 0, false);
        pkt_free(nb, pkt);
    }
    while (nb->free_pkts) {
        struct nb_pkt *pkt = nb->free_pkts;
        nb->free_pkts = pkt->next_free;
        free(pkt);
    }
}

/* ------------------------------------------------------------------ */
/* The timer                                                           */
/* ------------------------------------------------------------------ */

/*
 * Timer precision.  A timerfd wakes the loop some tens of microseconds
 * after its deadline (more on a loaded machine), and that lateness would
 * land on every delayed frame.  So the timer is armed lead_ns early,
 * lead_ns tracking a high quantile of the lateness observed so far (rises
 * half-way to a later wake-up at once, decays by 1/256 of the gap per
 * earlier one: about the 99th percentile; capped at spin_ns), and the
 * callback spins on the clock for the small remainder.  Most wake-ups
 * then land just before the due time and spin a few microseconds.
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

void nb_settle(struct netback *nb, int64_t now)
{
    drain_due(nb, now);
    flush_dirty(nb);
    arm_timer(nb);
}

void nb_on_timer(struct fl_loop *loop, struct fl_timer *timer, void *arg)
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
    nb_settle(nb, now);
}
