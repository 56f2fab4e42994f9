/*
 * Loss models: random (with sticky correlation), Gilbert-Elliott and
 * netem's 4-state Markov model (Salsano et al., "Definition of a general
 * and intuitive loss model for packet networks and its implementation in
 * the Netem module in the Linux kernel", 2012).
 *
 *   Gilbert-Elliott                        4-state
 *        p                                 1 ──p13──▶ 3 ◀─p23── 2
 *   Good ───▶ Bad                          │ ◀──p31── │ ──p32──▶ │
 *   loss 1-k ◀─── loss 1-h                 └─p14─▶ 4 ─(1)─▶ 1
 *        r                                 lost iff the new state is 3 or 4
 */
#include <errno.h>
#include <string.h>

#include "impair/internal.h"

enum { GE_GOOD = 0, GE_BAD = 1 };
enum { S_TX_GAP = 1, S_TX_BURST = 2, S_LOST_BURST = 3, S_LOST_GAP = 4 };

const char *impair_loss_model_name(enum impair_loss_model model)
{
    static const char *const names[] = {
#define IMPAIR_LOSS_NAME(name, str) str,
        IMPAIR_LOSS_MODELS(IMPAIR_LOSS_NAME)
#undef IMPAIR_LOSS_NAME
    };
    return (unsigned)model < FL_ARRAY_LEN(names) ? names[model] : "?";
}

bool impair_loss_model_from_name(const char *name, enum impair_loss_model *model)
{
    for (int i = 0; i < IMPAIR_LOSS__COUNT; i++) {
        if (!strcmp(name, impair_loss_model_name((enum impair_loss_model)i))) {
            *model = (enum impair_loss_model)i;
            return true;
        }
    }
    return false;
}

void impair_loss_state_reset(struct impair_loss_state *st, const struct impair_loss *loss)
{
    st->last = false;
    st->state = loss->model == IMPAIR_LOSS_STATE ? S_TX_GAP : GE_GOOD;
}

/* Threshold for "r < T" with a 32-bit r: 100% must mean always. */
static uint64_t threshold(impair_prob p)
{
    return p == IMPAIR_PROB_MAX ? UINT64_C(1) << 32 : p;
}

bool impair_loss_decide(struct impair_loss_state *st, const struct impair_loss *loss,
                        struct impair_rng *rng)
{
    switch (loss->model) {
    case IMPAIR_LOSS_RANDOM:
        return impair_corr_chance(rng, loss->p, loss->corr, &st->last);
    case IMPAIR_LOSS_GEMODEL: {
        /* As netem's loss_gilb_ell: draw the transition first, then the
         * loss with the probability of the state the frame met. */
        if (st->state == GE_GOOD) {
            if (impair_chance_inline(rng, loss->ge.p)) {
                st->state = GE_BAD;
            }
            return impair_chance_inline(rng, loss->ge.one_minus_k);
        }
        if (impair_chance_inline(rng, loss->ge.r)) {
            st->state = GE_GOOD;
        }
        return impair_chance_inline(rng, loss->ge.one_minus_h);
    }
    case IMPAIR_LOSS_STATE: {
        uint64_t r = impair_u32_inline(rng);
        switch (st->state) {
        case S_TX_GAP: /* p14, then p13, as netem */
            if (r < threshold(loss->state.p14)) {
                st->state = S_LOST_GAP;
            } else if (r < threshold(loss->state.p14) + threshold(loss->state.p13)) {
                st->state = S_LOST_BURST;
            }
            break;
        case S_TX_BURST:
            if (r < threshold(loss->state.p23)) {
                st->state = S_LOST_BURST;
            }
            break;
        case S_LOST_BURST: /* intervals in netem's order: p32, then p31 */
            if (r < threshold(loss->state.p32)) {
                st->state = S_TX_BURST;
            } else if (r < threshold(loss->state.p32) + threshold(loss->state.p31)) {
                st->state = S_TX_GAP;
            }
            break;
        default: /* S_LOST_GAP: an isolated loss is always followed by a success */
            st->state = S_TX_GAP;
            break;
        }
        return st->state == S_LOST_BURST || st->state == S_LOST_GAP;
    }
    default:
        return false;
    }
}

bool impair_loss_validate(const struct impair_loss *loss, struct fl_error **errp)
{
    char a[IMPAIR_FMT_LEN], b[IMPAIR_FMT_LEN];
    switch (loss->model) {
    case IMPAIR_LOSS_NONE:
    case IMPAIR_LOSS_RANDOM:
    case IMPAIR_LOSS_GEMODEL:
        return true;
    case IMPAIR_LOSS_STATE:
        if (threshold(loss->state.p13) + threshold(loss->state.p14) > threshold(IMPAIR_PROB_MAX)) {
            fl_error_setf(errp, EINVAL,
                          "loss state: p13 + p14 = %s + %s exceeds 100%% (they leave state 1 "
                          "in different directions)",
                          impair_format_prob(loss->state.p13, a, sizeof a),
                          impair_format_prob(loss->state.p14, b, sizeof b));
            return false;
        }
        if (threshold(loss->state.p31) + threshold(loss->state.p32) > threshold(IMPAIR_PROB_MAX)) {
            fl_error_setf(errp, EINVAL,
                          "loss state: p31 + p32 = %s + %s exceeds 100%% (they leave state 3 "
                          "in different directions)",
                          impair_format_prob(loss->state.p31, a, sizeof a),
                          impair_format_prob(loss->state.p32, b, sizeof b));
            return false;
        }
        return true;
    default:
        fl_error_setf(errp, EINVAL, "loss: model %d is unknown: expected random, gemodel or state",
                      (int)loss->model);
        return false;
    }
}
