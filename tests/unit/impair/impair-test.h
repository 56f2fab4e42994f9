/* Helpers shared by the impair unit tests. */
#ifndef FL_IMPAIR_TEST_H
#define FL_IMPAIR_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "impair/impair.h"

/* z for a two-sided 99.99% interval. */
#define Z9999 3.8906

/* Asserts that `hits` successes out of n trials are inside the 99.99%
 * binomial (normal approximation) interval around p. */
#define assert_binomial(hits, n, p)                                                                \
    do {                                                                                           \
        double n_ = (double)(n), p_ = (p);                                                         \
        double mean_ = n_ * p_, half_ = Z9999 * sqrt(n_ * p_ * (1 - p_));                          \
        if (fabs((double)(hits)-mean_) > half_) {                                                  \
            fail_msg("%s: %llu of %.0f, expected %.1f +- %.1f (p = %g)", #hits,                    \
                     (unsigned long long)(hits), n_, mean_, half_, p_);                            \
        }                                                                                          \
    } while (0)

/* Asserts |actual - expected| <= rel * |expected|. */
#define assert_close(actual, expected, rel)                                                        \
    do {                                                                                           \
        double a_ = (actual), e_ = (expected);                                                     \
        if (fabs(a_ - e_) > (rel)*fabs(e_)) {                                                      \
            fail_msg("%s = %.6g, expected %.6g within %.2g%%", #actual, a_, e_, (rel)*100);        \
        }                                                                                          \
    } while (0)

/* Asserts that f fails with a message containing `want`. */
#define assert_error_contains(err, want)                                                           \
    do {                                                                                           \
        assert_non_null(err);                                                                      \
        if (!strstr((err)->msg, (want))) {                                                         \
            fail_msg("error '%s' does not contain '%s'", (err)->msg, (want));                      \
        }                                                                                          \
        fl_error_free(err);                                                                        \
        (err) = NULL;                                                                              \
    } while (0)

static inline impair_prob pct(double percent)
{
    return impair_prob_from_fraction(percent / 100);
}

/* Parses link words from one string, failing the test on error. */
static inline struct impair_link_params parse_link_ok(const char *words)
{
    struct impair_link_params p;
    struct fl_error *err = NULL;
    if (!impair_link_params_parse_string(words, NULL, &p, &err)) {
        fail_msg("'%s': %s", words, err->msg);
    }
    return p;
}

/* Parses link words that must fail; returns the error. */
static inline struct fl_error *parse_link_err(const char *words)
{
    struct impair_link_params p;
    struct fl_error *err = NULL;
    if (impair_link_params_parse_string(words, NULL, &p, &err)) {
        fail_msg("'%s' parsed but should not", words);
    }
    return err;
}

#endif
