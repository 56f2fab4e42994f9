/*
 * The engine's only source of randomness: xoshiro256** 1.0 seeded by
 * splitmix64 (both by Blackman & Vigna, public domain algorithms), plus
 * the derived draws every stage uses.  Nothing here reads a clock or any
 * global state: a stream is a function of (run seed, stream id) alone.
 */
#include <string.h>

#include "impair/internal.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

void impair_rng_seed(struct impair_rng *rng, uint64_t run_seed, uint64_t stream_id)
{
    uint64_t x = run_seed ^ (stream_id * UINT64_C(0x9e3779b97f4a7c15));
    for (int i = 0; i < 4; i++) {
        rng->s[i] = splitmix64(&x);
    }
    if (!(rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3])) {
        rng->s[0] = 1; /* the one state xoshiro cannot leave */
    }
}

uint64_t impair_rng_next(struct impair_rng *rng)
{
    return impair_rng_next_inline(rng);
}

uint32_t impair_rng_u32(struct impair_rng *rng)
{
    return (uint32_t)(impair_rng_next_inline(rng) >> 32);
}

double impair_rng_unit(struct impair_rng *rng)
{
    return (double)(impair_rng_next_inline(rng) >> 11) * 0x1.0p-53;
}

uint64_t impair_rng_below(struct impair_rng *rng, uint64_t n)
{
    if (n == 0) {
        return 0;
    }
    /* Lemire, "Fast Random Integer Generation in an Interval" (2019). */
    u128 m = (u128)impair_rng_next_inline(rng) * n;
    uint64_t low = (uint64_t)m;
    if (low < n) {
        uint64_t threshold = -n % n;
        while (low < threshold) {
            m = (u128)impair_rng_next_inline(rng) * n;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

bool impair_rng_chance(struct impair_rng *rng, impair_prob p)
{
    return impair_chance_inline(rng, p);
}

uint64_t impair_stream_id(const char *name)
{
    return fl_hash64(name, strlen(name));
}

double impair_prob_to_fraction(impair_prob p)
{
    return (double)p / (double)IMPAIR_PROB_MAX;
}

impair_prob impair_prob_from_fraction(double f)
{
    if (!(f > 0)) { /* also NaN */
        return 0;
    }
    if (f >= 1) {
        return IMPAIR_PROB_MAX;
    }
    return (impair_prob)(f * (double)IMPAIR_PROB_MAX + 0.5);
}
