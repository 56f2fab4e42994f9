/*
 * A directed link: the per-frame pipeline (impair.h, section 5).
 *
 *   decide(now, size)
 *     partition? ─▶ drop PARTITION
 *     size > mtu? ─▶ drop MTU
 *     loss model ─▶ drop LOSS
 *     duplicate ─▶ copies = 1 or 2
 *     queue limit (frames/bytes scheduled after now) ─▶ drop QUEUE / no duplicate
 *     per copy: corrupt ─▶ reorder (deliver now) | delay ─▶ rate (serialize)
 *
 * Everything that changes between frames lives in struct impair_link: the
 * PRNG, loss and correlation states, the reorder gap counter, the rate's
 * last departure and remainder, and the queue of handed-out delivery
 * times (kept only when a limit is set).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "impair/internal.h"

/* Parameters plus what is derived from them; swapped as a unit by
 * impair_link_set_params. */
struct link_config {
    struct impair_link_params params; /* owns a table reference */
    struct impair_delay_state delay;
    bool limited; /* limit_frames || limit_bytes */
    uint32_t gap; /* effective reorder gap (0 -> 1) */
};

struct impair_link {
    struct link_config cfg;
    struct impair_rng rng;
    struct impair_loss_state loss;
    bool dup_last, corrupt_last, reorder_last;
    uint32_t reorder_counter; /* frames delayed since the last reordered one */
    int64_t last_now;
    int64_t rate_last;       /* when the previous frame finished transmitting */
    uint64_t rate_rem;       /* sub-ns remainder of the rate computation */
    struct impair_tq *queue; /* delivery times handed out (limits only) */
    uint32_t q_frames;
    uint64_t q_bytes;
    struct impair_link_stats stats;
};

const char *impair_drop_reason_name(enum impair_drop_reason reason)
{
    static const char *const names[] = {
#define IMPAIR_DROP_NAME(name, str) str,
        IMPAIR_DROP_REASONS(IMPAIR_DROP_NAME)
#undef IMPAIR_DROP_NAME
    };
    return (unsigned)reason < FL_ARRAY_LEN(names) ? names[reason] : "?";
}

static bool config_build(struct link_config *cfg, const struct impair_link_params *params,
                         struct fl_error **errp)
{
    if (!impair_link_params_validate(params, errp)) {
        return false;
    }
    memset(cfg, 0, sizeof *cfg);
    impair_link_params_copy(&cfg->params, params);
    impair_delay_state_init(&cfg->delay, &cfg->params.delay);
    cfg->limited = params->limit_frames || params->limit_bytes;
    cfg->gap = params->reorder.gap ? params->reorder.gap : 1;
    return true;
}

struct impair_link *impair_link_create(const struct impair_link_params *params, uint64_t run_seed,
                                       uint64_t stream_id, struct fl_error **errp)
{
    struct link_config cfg;
    if (!config_build(&cfg, params, errp)) {
        return NULL;
    }
    struct impair_link *link = fl_xcalloc(1, sizeof *link);
    link->cfg = cfg;
    impair_rng_seed(&link->rng, run_seed, stream_id);
    impair_loss_state_reset(&link->loss, &cfg.params.loss);
    link->last_now = INT64_MIN;
    link->rate_last = INT64_MIN;
    link->queue = impair_tq_create();
    return link;
}

bool impair_link_set_params(struct impair_link *link, const struct impair_link_params *params,
                            struct fl_error **errp)
{
    struct link_config cfg;
    if (!config_build(&cfg, params, errp)) {
        return false;
    }
    impair_delay_state_carry(&cfg.delay, &link->cfg.delay);
    if (cfg.params.loss.model != link->cfg.params.loss.model) {
        impair_loss_state_reset(&link->loss, &cfg.params.loss);
    }
    if (!cfg.params.rate.bits_per_s) {
        link->rate_rem = 0;
    }
    struct link_config old = link->cfg;
    link->cfg = cfg;
    impair_link_params_clear(&old.params);
    return true;
}

const struct impair_link_params *impair_link_params(const struct impair_link *link)
{
    return &link->cfg.params;
}

void impair_link_destroy(struct impair_link *link)
{
    if (!link) {
        return;
    }
    impair_link_params_clear(&link->cfg.params);
    impair_tq_destroy(link->queue);
    free(link);
}

void impair_link_get_stats(const struct impair_link *link, struct impair_link_stats *stats)
{
    *stats = link->stats;
}

void impair_link_queue(const struct impair_link *link, uint32_t *frames, uint64_t *bytes)
{
    if (frames) {
        *frames = link->q_frames;
    }
    if (bytes) {
        *bytes = link->q_bytes;
    }
}

/* Forgets the copies whose delivery time has come. */
static void queue_expire(struct impair_link *link, int64_t now)
{
    int64_t t;
    void *data;
    while (impair_tq_peek(link->queue, &t, &data) && t <= now) {
        impair_tq_pop(link->queue, NULL, NULL);
        link->q_frames--;
        link->q_bytes -= (uint32_t)(uintptr_t)data;
    }
}

static bool queue_fits(const struct impair_link *link, uint32_t size)
{
    const struct impair_link_params *p = &link->cfg.params;
    return (!p->limit_frames || link->q_frames < p->limit_frames) &&
           (!p->limit_bytes || link->q_bytes + size <= p->limit_bytes);
}

static void drop(struct impair_link *link, struct impair_decision *out,
                 enum impair_drop_reason reason)
{
    out->n_deliveries = 0;
    out->reason = reason;
    link->stats.dropped[reason]++;
}

/* Corrupt, reorder, delay and rate for one copy. */
static void schedule_copy(struct impair_link *link, int64_t now, uint32_t size,
                          struct impair_delivery *d)
{
    const struct impair_link_params *p = &link->cfg.params;
    if (p->corrupt.p && size &&
        impair_corr_chance(&link->rng, p->corrupt.p, p->corrupt.corr, &link->corrupt_last)) {
        d->corrupted = true;
        d->corrupt_offset = impair_pick_u32(impair_u32_inline(&link->rng), size);
        d->corrupt_mask = (uint8_t)(1u << impair_pick_u32(impair_u32_inline(&link->rng), 8));
        link->stats.corrupted++;
    }
    if (p->reorder.p) {
        if (link->reorder_counter + 1 >= link->cfg.gap &&
            impair_corr_chance(&link->rng, p->reorder.p, p->reorder.corr, &link->reorder_last)) {
            /* netem: sent immediately, at the head of the queue */
            link->reorder_counter = 0;
            d->reordered = true;
            d->time_ns = now;
            link->stats.reordered++;
            return;
        }
        link->reorder_counter++;
    }
    int64_t t = now + impair_delay_sample(&link->cfg.delay, &link->rng);
    if (p->rate.bits_per_s) {
        if (link->rate_last > t) {
            t = link->rate_last;
        }
        t += impair_rate_packet_ns(p, size, &link->rate_rem);
        link->rate_last = t;
    }
    d->time_ns = t;
}

int impair_link_decide(struct impair_link *link, int64_t now, uint32_t size,
                       struct impair_decision *out)
{
    const struct impair_link_params *p = &link->cfg.params;
    memset(out, 0, sizeof *out); /* unused deliveries read as zeros, never garbage */
    if (now < link->last_now) {
        return -EINVAL;
    }
    link->last_now = now;
    link->stats.decided++;

    if (p->partitioned) {
        drop(link, out, IMPAIR_DROP_PARTITION);
        return 0;
    }
    if (p->mtu && size > p->mtu) {
        drop(link, out, IMPAIR_DROP_MTU);
        return 0;
    }
    if (p->loss.model != IMPAIR_LOSS_NONE &&
        impair_loss_decide(&link->loss, &p->loss, &link->rng)) {
        drop(link, out, IMPAIR_DROP_LOSS);
        return 0;
    }
    uint32_t copies = 1;
    if (p->duplicate.p &&
        impair_corr_chance(&link->rng, p->duplicate.p, p->duplicate.corr, &link->dup_last)) {
        copies = 2;
    }
    if (link->cfg.limited) {
        queue_expire(link, now);
        if (!queue_fits(link, size)) {
            drop(link, out, IMPAIR_DROP_QUEUE);
            return 0;
        }
    }
    for (uint32_t c = 0; c < copies; c++) {
        if (c > 0 && link->cfg.limited && !queue_fits(link, size)) {
            link->stats.duplicates_dropped++;
            break;
        }
        struct impair_delivery *d = &out->deliveries[c];
        schedule_copy(link, now, size, d);
        d->duplicate = c > 0;
        if (c > 0) {
            link->stats.duplicated++;
        }
        if (link->cfg.limited && d->time_ns > now) {
            impair_tq_push(link->queue, d->time_ns, (void *)(uintptr_t)size);
            link->q_frames++;
            link->q_bytes += size;
        }
        out->n_deliveries++;
        link->stats.delivered++;
        link->stats.delivered_bytes += size;
    }
    return 0;
}
