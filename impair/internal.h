/*
 * impair/ internals shared between the files of the room.  Not part of the
 * public API: other rooms include only impair/impair.h.
 */
#ifndef FL_IMPAIR_INTERNAL_H
#define FL_IMPAIR_INTERNAL_H

#include "impair/impair.h"

__extension__ typedef unsigned __int128 u128;
__extension__ typedef __int128 s128;

static inline uint64_t impair_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** step, inlined into the decision paths. */
static inline uint64_t impair_rng_next_inline(struct impair_rng *rng)
{
    uint64_t *s = rng->s;
    const uint64_t result = impair_rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = impair_rotl(s[3], 45);
    return result;
}

static inline uint32_t impair_u32_inline(struct impair_rng *rng)
{
    return (uint32_t)(impair_rng_next_inline(rng) >> 32);
}

/* True with probability p / 2^32 (0: never, IMPAIR_PROB_MAX: always; both
 * without a draw). */
static inline bool impair_chance_inline(struct impair_rng *rng, impair_prob p)
{
    if (p == 0) {
        return false;
    }
    if (p == IMPAIR_PROB_MAX) {
        return true;
    }
    return impair_u32_inline(rng) < p;
}

/* Uniform integer in [0, n) from one 32-bit draw (n < 2^32; bias below
 * n / 2^32, used only to pick a corrupted byte/bit and a table entry). */
static inline uint32_t impair_pick_u32(uint32_t r, uint32_t n)
{
    return (uint32_t)(((uint64_t)r * n) >> 32);
}

/* "Repeat the previous outcome with probability corr, else draw afresh"
 * (impair.h, correlation).  *last is the previous outcome. */
static inline bool impair_corr_chance(struct impair_rng *rng, impair_prob p, impair_prob corr,
                                      bool *last)
{
    if (corr && impair_chance_inline(rng, corr)) {
        return *last;
    }
    *last = impair_chance_inline(rng, p);
    return *last;
}

/* ---- delay.c ---- */

/* A delay stage ready to sample: params plus the resolved table and the
 * correlation state. */
struct impair_delay_state {
    int64_t latency_ns;
    int64_t jitter_ns;
    enum impair_dist dist;
    impair_prob corr;
    double corr_c, corr_s; /* c and sqrt(1 - c^2) */
    const int32_t *table;  /* Q16 values of X, NULL for uniform */
    uint32_t table_len;
    bool have_z;
    double z; /* copula latent (correlation) */
};
/* Largest latency or jitter a delay stage accepts. */
#define IMPAIR_DELAY_MAX_NS (3600 * FL_NS_PER_SEC)
/* Q16 fixed point for table values. */
#define IMPAIR_Q16 65536

void impair_delay_state_init(struct impair_delay_state *st, const struct impair_delay *d);
/* Keeps the correlation latent of `old` when both are correlated. */
void impair_delay_state_carry(struct impair_delay_state *st, const struct impair_delay_state *old);
int64_t impair_delay_sample(struct impair_delay_state *st, struct impair_rng *rng);
bool impair_delay_validate(const struct impair_delay *d, const char *what, struct fl_error **errp);
/* Built-in tables (normal/pareto/paretonormal): Q16, IMPAIR_BUILTIN_LEN long. */
#define IMPAIR_BUILTIN_LEN 4096
const int32_t *impair_builtin_table(enum impair_dist dist);
/* Q16 values of a user table (values * 8). */
const int32_t *impair_dist_table_q16(const struct impair_dist_table *table);

/* Parses "delay TIME [JITTER [CORR]]" words starting at argv[*i] (the word
 * after "delay"); advances *i. */
bool impair_parse_delay_words(int argc, char **argv, int *i, const char *what,
                              struct impair_delay *d, struct fl_error **errp);
/* Parses the word after "distribution". */
bool impair_parse_distribution(const char *word, const struct impair_parse_opts *opts,
                               const char *what, struct impair_delay *d, struct fl_error **errp);
void impair_format_delay_words(const struct impair_delay *d, struct fl_buf *out);
bool impair_delay_equal(const struct impair_delay *a, const struct impair_delay *b);

/* ---- loss.c ---- */

struct impair_loss_state {
    uint8_t state; /* GE: 0 good, 1 bad; 4-state: 1..4 */
    bool last;     /* random: previous outcome (correlation) */
};
void impair_loss_state_reset(struct impair_loss_state *st, const struct impair_loss *loss);
bool impair_loss_decide(struct impair_loss_state *st, const struct impair_loss *loss,
                        struct impair_rng *rng);
bool impair_loss_validate(const struct impair_loss *loss, struct fl_error **errp);

/* ---- rate.c ---- */

/* Transmission time of a frame at the link rate; *rem carries the
 * sub-ns remainder between frames so long runs keep the exact rate. */
int64_t impair_rate_packet_ns(const struct impair_link_params *p, uint32_t frame_size,
                              uint64_t *rem);
#define IMPAIR_RATE_MAX_BITS UINT64_C(10000000000000) /* 10 Tbit/s */

/* ---- params.c / units.c helpers ---- */

/* True when s looks like a number (digit, '.', or '-'/'+' then digit). */
bool impair_word_is_number(const char *s);
/* Parses a whole decimal integer in [min, max]. */
bool impair_parse_int(const char *s, int64_t min, int64_t max, int64_t *out, const char *what,
                      struct fl_error **errp);
/* Suggests the closest of `words` (NULL-terminated) to w, or NULL. */
const char *impair_suggest(const char *w, const char *const *words);

#endif /* FL_IMPAIR_INTERNAL_H */
