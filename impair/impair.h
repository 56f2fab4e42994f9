/*
 * impair/ — the pure impairment decision engine.
 *
 * Given a directed link (or a disk), its parameters, an explicit seeded
 * PRNG and the current time in ns, impair/ decides the fate of each frame
 * (or block request).  It does no I/O, reads no clock and never calls
 * rand(): the same run seed, stream names, parameters and input sequence
 * (times and sizes) give byte-identical decisions on every machine.
 *
 *   frame ─▶ partition ─▶ mtu ─▶ loss ─▶ duplicate ─▶ queue limit ─┐
 *            (drop)       (drop) (drop)  (1 or 2      (tail drop)  │
 *                                         copies)                  │
 *   ┌──────────────────────────────────────────────────────────────┘
 *   └─▶ per copy: corrupt ───▶ reorder? ─▶ delay ─────▶ rate
 *                 (bit flip)   (now)       (+jitter)    (serialize)
 *
 * Contents of this header:
 *   1. PRNG (xoshiro256** seeded by splitmix64) and stream ids
 *   2. probabilities, human units (parse/format "10ms", "1.5%", "100mbit", "64KiB")
 *   3. delay distributions and user tables
 *   4. link parameters: validate, parse (tc-netem words), format
 *   5. the link object and its decisions
 *   6. disk parameters, the disk object and its decisions
 *   7. the timer queue (core's heap behind netem's append-at-tail fast path)
 *   8. link selectors: the one grammar for "n1 -> n2", "n1 <-> * @ wan", "lan", "*"
 *
 * Conventions: times are int64_t ns; probabilities are impair_prob
 * (uint32_t, 0..UINT32_MAX = 0%..100%, UINT32_MAX meaning "always");
 * data paths return 0 or -errno; setup paths return bool/pointer and take
 * `struct fl_error **errp` last (core/core.h).  impair objects are not
 * thread-safe: use one object from one thread at a time (distribution
 * tables are immutable and may be shared between threads).
 */
#ifndef FL_IMPAIR_H
#define FL_IMPAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* ================================================================== */
/* 1. PRNG                                                             */
/* ================================================================== */

/*
 * xoshiro256** 1.0 (Blackman & Vigna).  One generator per link, per disk,
 * per purpose: never share one between two streams whose draws must stay
 * independent (changing one link's parameters must not shift another
 * link's draws).
 *
 * Seeding (pinned by known-answer tests, never change it):
 *     x = run_seed ^ (stream_id * 0x9e3779b97f4a7c15)
 *     s[0..3] = four successive splitmix64(&x) outputs
 * (an all-zero state cannot come out of splitmix64 in practice; if it ever
 * did, s[0] is set to 1).
 */
struct impair_rng {
    uint64_t s[4];
};

void impair_rng_seed(struct impair_rng *rng, uint64_t run_seed, uint64_t stream_id);
/* Next 64-bit output (xoshiro256** scrambler). */
uint64_t impair_rng_next(struct impair_rng *rng);
/* Upper 32 bits of impair_rng_next(). */
uint32_t impair_rng_u32(struct impair_rng *rng);
/* Uniform double in [0, 1) with 53 random bits (one draw). */
double impair_rng_unit(struct impair_rng *rng);
/* Uniform integer in [0, n) for n >= 1 (Lemire's multiply-shift with
 * rejection: unbiased; usually one draw).  n == 0 returns 0 without a draw. */
uint64_t impair_rng_below(struct impair_rng *rng, uint64_t n);

/* Stable 64-bit id of a named stream: FNV-1a 64 of the bytes of name
 * (no NUL).  Conventions used across faultline:
 *     links  "<network>:<src node>-><dst node>"   e.g. "net0:n1->n2"
 *     disks  "<node>:<disk>"                       e.g. "n1:vda"
 * Other consumers (e.g. blkback's crash choices) pick their own names,
 * e.g. "n1:vda:crash", so their draws never collide with the engine's. */
uint64_t impair_stream_id(const char *name);

/* ================================================================== */
/* 2. Probabilities and human units                                    */
/* ================================================================== */

/* 0 = never, UINT32_MAX = always; p / UINT32_MAX otherwise. */
typedef uint32_t impair_prob;
#define IMPAIR_PROB_MAX UINT32_MAX

/* True with probability p / 2^32 (impair_rng_u32() < p); p == 0 (never)
 * and p == IMPAIR_PROB_MAX (always) consume no draw. */
bool impair_rng_chance(struct impair_rng *rng, impair_prob p);
/* Conversions for display and statistics (fraction in [0, 1]). */
double impair_prob_to_fraction(impair_prob p);
/* Rounds to nearest; values outside [0, 1] are clamped. */
impair_prob impair_prob_from_fraction(double f);

/*
 * Parsers for human values.  On error they return false and set *errp to a
 * message that quotes the value and says what is valid, e.g.
 *   "'10 parsecs' is not a duration: expected a number followed by ns, us,
 *    ms, s, m or h (e.g. 250us, 10ms, 1.5s)"
 * Callers prefix the location ("delay: ", "scenario.yaml:3:7: links[0].delay: ").
 * Decimal values are converted exactly (no binary floating point).
 *
 * duration: "<number><unit>", unit one of ns us ms s m h ("µs" also
 *   accepted for us); "0" alone is allowed; non-negative; rounded to the
 *   nearest ns; at most 1000 hours.
 * prob: "<number>%" in 0%..100% ("0" alone is 0%); a bare fraction
 *   without '%' is rejected (it is ambiguous: tc reads "0.5" as 0.5%).
 * rate: bits per second; units as tc's table, case-insensitive:
 *   bit kbit mbit gbit tbit (x1000), kibit mibit gibit tibit (x1024),
 *   bps kbps mbps gbps tbps (BYTES per second, x8 x1000...), kibps mibps
 *   gibps tibps; e.g. "100kbit", "1.5gbit", "10MBps" (= 80 Mbit/s).
 *   A bare number is rejected (tc would read it as bytes/s).  Must be > 0.
 * size: bytes: plain number, or k m g t (x1024: "64k"), KiB MiB GiB TiB
 *   (x1024), kB/KB MB GB TB (x1000), B ("1500B"); case-insensitive except
 *   that the "iB" forms are binary and "B"-suffixed decimal.
 */
bool impair_parse_duration(const char *s, int64_t *ns, struct fl_error **errp);
bool impair_parse_prob(const char *s, impair_prob *p, struct fl_error **errp);
bool impair_parse_rate(const char *s, uint64_t *bits_per_s, struct fl_error **errp);
bool impair_parse_size(const char *s, uint64_t *bytes, struct fl_error **errp);

/* Formatters: write a NUL-terminated string into buf (size >= IMPAIR_FMT_LEN
 * always suffices) and return buf.  parse(format(x)) == x for every value
 * the parser accepts (tested).  Durations: "0", "250us", "1.5ms", "2m";
 * negative durations format with a leading '-' (not parseable).  Probs: the
 * shortest "<n>%" that parses back to the same impair_prob.  Rates: "100mbit",
 * "1.5gbit", "1234bit".  Sizes: "1500", "64KiB", "1MB". */
#define IMPAIR_FMT_LEN 48
char *impair_format_duration(int64_t ns, char *buf, size_t size);
char *impair_format_prob(impair_prob p, char *buf, size_t size);
char *impair_format_rate(uint64_t bits_per_s, char *buf, size_t size);
char *impair_format_size(uint64_t bytes, char *buf, size_t size);

/* errno names for disk faults: "EIO", "ENOSPC", ... (case-insensitive;
 * also accepts a decimal number).  Returns the positive errno. */
bool impair_parse_errno(const char *s, int *errnum, struct fl_error **errp);
/* "EIO" etc.; NULL for an errno not in impair's table. */
const char *impair_errno_name(int errnum);

/* ================================================================== */
/* 3. Delay distributions                                              */
/* ================================================================== */

/*
 * delay = latency + jitter * X, X drawn from the distribution:
 *   uniform       X uniform in [-1, 1)          (netem without a table)
 *   normal        X ~ N(0, 1)                   (stddev of the delay = jitter)
 *   pareto        Pareto(shape 3) normalized to mean 0, stddev 1
 *   paretonormal  0.25 N + 0.75 Pareto (as netem's table), normalized to
 *                 mean 0, stddev 1
 *   table         a user table with netem .dist semantics: X = value / 8192
 *                 (values are equally likely quantiles; no normalization)
 * normal/pareto/paretonormal are 4096-entry quantile tables computed at
 * first use from math (not netem's files); their discrete mean is exactly 0
 * and stddev exactly 1, so the sampled delay's mean is latency and its
 * stddev is jitter.  A delay below 0 is clamped to 0 (the frame leaves at
 * `now`).
 */
#define IMPAIR_DISTS(X)                                                                            \
    X(UNIFORM, "uniform")                                                                          \
    X(NORMAL, "normal")                                                                            \
    X(PARETO, "pareto")                                                                            \
    X(PARETONORMAL, "paretonormal")                                                                \
    X(TABLE, "table")

enum impair_dist {
#define IMPAIR_DIST_ENUM(name, str) IMPAIR_DIST_##name,
    IMPAIR_DISTS(IMPAIR_DIST_ENUM)
#undef IMPAIR_DIST_ENUM
        IMPAIR_DIST__COUNT
};
const char *impair_dist_name(enum impair_dist dist); /* "normal"; "?" if out of range */
bool impair_dist_from_name(const char *name, enum impair_dist *dist);

/* Scale of netem .dist values (NETEM_DIST_SCALE). */
#define IMPAIR_DIST_SCALE 8192
/* Limits on user tables. */
#define IMPAIR_DIST_TABLE_MAX_LEN 65536

/* An immutable, reference-counted (atomically) user distribution table. */
struct impair_dist_table;
/* values[i] / IMPAIR_DIST_SCALE are equally likely samples of X (any order;
 * netem files list them as ascending quantiles).  1 <= n <= MAX_LEN,
 * |values[i]| <= 32 * 8192.  `name` (copied; may be NULL) is what
 * impair_link_params_format() prints after "distribution", normally the
 * file path. */
struct impair_dist_table *impair_dist_table_create(const int32_t *values, size_t n,
                                                   const char *name, struct fl_error **errp);
/* Parses netem .dist text: integers separated by whitespace, '#' starts a
 * comment to end of line.  Errors say "<name>:<line>: ...". */
struct impair_dist_table *impair_dist_table_parse(const char *text, const char *name,
                                                  struct fl_error **errp);
struct impair_dist_table *impair_dist_table_ref(struct impair_dist_table *table);
void impair_dist_table_unref(struct impair_dist_table *table); /* accepts NULL */
const char *impair_dist_table_name(const struct impair_dist_table *table);
size_t impair_dist_table_len(const struct impair_dist_table *table);

/* A delay stage (links and disk ops). Zero = no delay. */
struct impair_delay {
    int64_t latency_ns; /* >= 0 */
    int64_t jitter_ns;  /* >= 0; see the distributions above */
    impair_prob corr;   /* correlation of successive delays, see below */
    enum impair_dist dist;
    /* dist == IMPAIR_DIST_TABLE only, else NULL.  A params struct holding a
     * table holds one reference (see impair_link_params_copy/clear). */
    struct impair_dist_table *table;
};
/*
 * Correlation (delay): successive delays are correlated through a Gaussian
 * copula: a latent z_n = c z_{n-1} + sqrt(1 - c^2) e_n (e_n ~ N(0,1)) is
 * mapped through the normal CDF to the quantile of the distribution, so the
 * configured distribution (mean, stddev, shape) is preserved exactly and
 * only the ordering becomes sticky.  (netem averages the uniform draws,
 * which narrows the distribution.)
 *
 * Correlation (loss random, duplicate, corrupt, reorder): with probability
 * c the previous outcome repeats, otherwise a fresh Bernoulli(p) draw
 * decides.  The long-run rate stays exactly p; P(event | previous event)
 * = c + (1 - c) p, so mean burst length = 1 / ((1 - c)(1 - p)).
 */

/* ================================================================== */
/* 4. Link parameters                                                  */
/* ================================================================== */

#define IMPAIR_LOSS_MODELS(X)                                                                      \
    X(NONE, "none")                                                                                \
    X(RANDOM, "random")                                                                            \
    X(GEMODEL, "gemodel")                                                                          \
    X(STATE, "state")

enum impair_loss_model {
#define IMPAIR_LOSS_ENUM(name, str) IMPAIR_LOSS_##name,
    IMPAIR_LOSS_MODELS(IMPAIR_LOSS_ENUM)
#undef IMPAIR_LOSS_ENUM
        IMPAIR_LOSS__COUNT
};
const char *impair_loss_model_name(enum impair_loss_model model);
bool impair_loss_model_from_name(const char *name, enum impair_loss_model *model);

struct impair_loss {
    enum impair_loss_model model;
    /* RANDOM: each frame lost with probability p (correlation: above). */
    impair_prob p, corr;
    /* GEMODEL, Gilbert-Elliott: states Good and Bad.  Each frame is lost
     * with probability one_minus_k in Good, one_minus_h in Bad; then the
     * state moves Good->Bad with probability p, Bad->Good with r.
     * (tc: "loss gemodel p [r [1-h [1-k]]]", defaults r = 100% - p,
     * 1-h = 100%, 1-k = 0%: the simple Gilbert model.) */
    struct {
        impair_prob p, r, one_minus_h, one_minus_k;
    } ge;
    /* STATE, netem's 4-state Markov model: 1 = transmitting in gap,
     * 2 = transmitting in burst, 3 = lost in burst, 4 = isolated loss in gap.
     * Per frame the state moves (1->3 p13, 1->4 p14, 3->1 p31, 3->2 p32,
     * 2->3 p23, 4->1 always, else stays) and the frame is lost iff the new
     * state is 3 or 4.  p13 + p14 <= 100%, p31 + p32 <= 100%.
     * (tc: "loss state p13 [p31 [p32 [p23 [p14]]]]", defaults
     * p31 = 100% - p13, p32 = 0, p23 = 100%, p14 = 0.) */
    struct {
        impair_prob p13, p31, p32, p23, p14;
    } state;
};

/* A probability with correlation (duplicate, corrupt, reorder). */
struct impair_chance {
    impair_prob p, corr;
};

/*
 * Everything one directed link does to frames.  Plain data; all-zero
 * (`struct impair_link_params p = {0};`) is a perfect link.  The only
 * pointer is delay.table (see struct impair_delay): when it may be set,
 * copy with impair_link_params_copy() and release with
 * impair_link_params_clear(); a plain `=` copy is fine while the source
 * keeps its reference.
 */
struct impair_link_params {
    bool partitioned; /* every frame dropped (reason PARTITION) */
    struct impair_loss loss;
    struct impair_chance duplicate; /* a second copy of the frame */
    struct impair_chance corrupt;   /* one bit of one byte flipped */
    struct impair_delay delay;
    /* Reorder (netem semantics, requires delay.latency_ns > 0): after `gap`
     * - 1 frames have been delayed normally since the last reordered frame,
     * each frame is, with probability p, sent immediately (deliver = now, no
     * delay, no rate) and so overtakes the frames still delayed.  gap == 0
     * with p > 0 means gap 1 (every frame is a candidate). */
    struct {
        impair_prob p, corr;
        uint32_t gap;
    } reorder;
    /* Rate (netem semantics): a frame of S bytes occupies the link for
     *     L = S + packet_overhead  (clamped at 0)
     *     if cell_size: L = ceil(L / cell_size) * (cell_size + cell_overhead)
     *     time = L * 8 * 1e9 / bits_per_s  ns,
     * starting when the previous frame's transmission ends or when its own
     * delay has elapsed, whichever is later:
     *     deliver = max(now + delay, last_deliver) + time.
     * bits_per_s == 0: no rate limit (the overheads must be 0 then). */
    struct {
        uint64_t bits_per_s;
        int32_t packet_overhead;
        uint32_t cell_size;
        int32_t cell_overhead;
    } rate;
    /* Queue limit (tail drop, reason QUEUE): the link's queue holds every
     * frame copy this link has scheduled with a delivery time after `now`
     * (delayed and rate-limited frames alike; the engine tracks the times it
     * handed out, so the caller reports nothing back).  A frame that would
     * make it exceed limit_frames copies or limit_bytes bytes is dropped;
     * 0 = unlimited. */
    uint32_t limit_frames;
    uint64_t limit_bytes;
    /* Frames larger than mtu bytes are dropped (reason MTU); 0 = no limit.
     * The size is whatever the caller passes (netback: Ethernet frame
     * without FCS). */
    uint32_t mtu;
};

/* Takes a table reference in dst (dst is overwritten, not cleared first). */
void impair_link_params_copy(struct impair_link_params *dst, const struct impair_link_params *src);
/* Drops the table reference and zeroes *params. */
void impair_link_params_clear(struct impair_link_params *params);
/* Field-by-field equality (tables compared by identity). */
bool impair_link_params_equal(const struct impair_link_params *a,
                              const struct impair_link_params *b);

/*
 * Checks one parameter set.  Messages name the field in tc words and say
 * what is valid, e.g.
 *   "reorder requires a delay (netem semantics: reordered frames are sent
 *    immediately, the rest delayed): add e.g. 'delay 10ms'"
 *   "delay: latency -5ms is negative: durations are >= 0"
 *   "distribution normal needs a jitter (delay LATENCY JITTER)"
 *   "loss state: p13 + p14 = 120% exceeds 100%"
 */
bool impair_link_params_validate(const struct impair_link_params *params, struct fl_error **errp);

/*
 * Parses tc-netem-like words (iproute2 tc/q_netem.c syntax) into *out
 * (zeroed first; validated before returning true):
 *
 *   partition
 *   delay TIME [JITTER [CORR]] [distribution uniform|normal|pareto|paretonormal|FILE]
 *   loss [random] PERCENT [CORR]               ("drop" is an alias of "loss")
 *   loss gemodel P [R [1-H [1-K]]]
 *   loss state P13 [P31 [P32 [P23 [P14]]]]
 *   duplicate PERCENT [CORR]
 *   corrupt PERCENT [CORR]
 *   reorder PERCENT [CORR] [gap N]             (also "gap N" on its own)
 *   rate RATE [PACKETOVERHEAD [CELLSIZE [CELLOVERHEAD]]]
 *   limit FRAMES    limit-bytes SIZE    mtu SIZE
 *
 * A word may appear once.  Unknown words get "did you mean" suggestions.
 * Errors are prefixed with the word: "delay: '10 parsecs' is not a
 * duration: ...".  A FILE distribution needs opts->read_file (see _ex);
 * impair_link_params_parse() rejects it with a message saying so.
 */
bool impair_link_params_parse(int argc, char **argv, struct impair_link_params *out,
                              struct fl_error **errp);

/* Reads a distribution table file (returns malloc'ed NUL-terminated text)
 * on behalf of the parser, which does no I/O itself.  cli passes a reader
 * over fl_read_file. */
typedef char *impair_read_file_fn(void *arg, const char *path, struct fl_error **errp);
struct impair_parse_opts {
    impair_read_file_fn *read_file; /* NULL: table files rejected */
    void *arg;
};
bool impair_link_params_parse_ex(int argc, char **argv, const struct impair_parse_opts *opts,
                                 struct impair_link_params *out, struct fl_error **errp);
/* Same, splitting `words` on whitespace: "delay 10ms 2ms loss 1%". */
bool impair_link_params_parse_string(const char *words, const struct impair_parse_opts *opts,
                                     struct impair_link_params *out, struct fl_error **errp);

/* Appends the canonical words for params (empty for a perfect link), in the
 * order of the grammar above, omitting defaults; parse(format(p)) equals p
 * (tested). */
void impair_link_params_format(const struct impair_link_params *params, struct fl_buf *out);

/* ================================================================== */
/* 5. Links and decisions                                              */
/* ================================================================== */

/*
 * Why a frame copy was not delivered: the one list for impair (its link
 * decisions), netback (its per-link counters, NB_DROP_*) and trace
 * (run.db's frames.reason, TRACE_DROP_*).  It lives here because impair is
 * the room all three may include.  The strings are stored in run.db: never
 * change one; add new reasons at the end.
 */
#define IMPAIR_DROP_REASONS(X)                                                                     \
    X(NONE, "none")                       /* delivered */                                          \
    X(PARTITION, "partition")             /* the directed link is cut */                           \
    X(LOSS, "loss")                       /* the link's loss model */                              \
    X(QUEUE, "queue")                     /* the link's queue limit (frames/bytes), tail drop */   \
    X(MTU, "mtu")                         /* larger than the link's MTU */                         \
    X(PORT_DOWN, "port-down")             /* netback: no guest at the destination when due */      \
    X(PORT_QUEUE_FULL, "port-queue-full") /* netback: the destination's output queue full */       \
    X(SHUTDOWN, "shutdown")               /* netback: still queued when the run ended */           \
    X(SPOOFED, "spoofed")                 /* netback: source MAC not the sending port's */         \
    X(INTERNAL, "internal")               /* netback: impair refused to decide (a bug; logged) */

/* The reasons impair_link_decide() itself gives, in the order of its
 * stages (what `faultline link simulate` reports). */
#define IMPAIR_LINK_DROP_REASONS(X) X(PARTITION) X(MTU) X(LOSS) X(QUEUE)

enum impair_drop_reason {
#define IMPAIR_DROP_ENUM(name, str) IMPAIR_DROP_##name,
    IMPAIR_DROP_REASONS(IMPAIR_DROP_ENUM)
#undef IMPAIR_DROP_ENUM
        IMPAIR_DROP__COUNT
};
const char *impair_drop_reason_name(enum impair_drop_reason reason);

#define IMPAIR_MAX_DELIVERIES 2

struct impair_delivery {
    int64_t time_ns;         /* absolute, >= now */
    bool duplicate;          /* this is the extra copy */
    bool reordered;          /* sent immediately, overtaking delayed frames */
    bool corrupted;          /* flip: frame[corrupt_offset] ^= corrupt_mask */
    uint8_t corrupt_mask;    /* one bit set when corrupted, else 0 */
    uint32_t corrupt_offset; /* < frame_size when corrupted, else 0 */
};

struct impair_decision {
    uint32_t n_deliveries;          /* 0 = dropped */
    enum impair_drop_reason reason; /* NONE unless n_deliveries == 0 */
    /* [0] is the original; entries from n_deliveries on are all zero */
    struct impair_delivery deliveries[IMPAIR_MAX_DELIVERIES];
};

struct impair_link_stats {
    uint64_t decided;                     /* frames passed to decide */
    uint64_t dropped[IMPAIR_DROP__COUNT]; /* frames, by reason ([NONE] unused) */
    uint64_t delivered;                   /* copies scheduled (original + duplicates) */
    uint64_t delivered_bytes;             /* bytes of those copies */
    uint64_t duplicated;                  /* frames that got a second copy */
    uint64_t duplicates_dropped;          /* duplicates not made: queue full */
    uint64_t corrupted;                   /* copies corrupted */
    uint64_t reordered;                   /* copies sent immediately */
};

struct impair_link;

/* Validates params and builds the link (copies params, takes its own table
 * reference).  rng seeded with impair_rng_seed(run_seed, stream_id). */
struct impair_link *impair_link_create(const struct impair_link_params *params, uint64_t run_seed,
                                       uint64_t stream_id, struct fl_error **errp);
/* Runtime change as a transaction: validate, build, swap, free the old;
 * on error the old parameters stay in force and false is returned.  Keeps
 * the PRNG stream, counters, queue occupancy and the rate's last departure;
 * the loss model's state is kept when the model is unchanged, else reset
 * (GE: Good; state: 1). */
bool impair_link_set_params(struct impair_link *link, const struct impair_link_params *params,
                            struct fl_error **errp);
/* The parameters in force (owned by the link; valid until the next
 * set_params or destroy). */
const struct impair_link_params *impair_link_params(const struct impair_link *link);
void impair_link_destroy(struct impair_link *link); /* accepts NULL */

/*
 * The fate of one frame of frame_size bytes offered at now_ns.  Fills *out;
 * returns 0, or -EINVAL if now_ns is earlier than a previous call's now_ns
 * (time never runs backwards on a link; *out is then a drop with reason
 * NONE and nothing is counted).
 *
 * Stages and PRNG draws, in order (each skipped when not configured):
 *   partition -> mtu -> loss (GE: 2 draws; state: 1; random: 1) ->
 *   duplicate (1) -> queue limit -> for each copy: corrupt (1 if
 *   frame_size > 0, + 2 when corrupted: byte, bit) -> reorder (1 when
 *   outside the gap) -> delay (1 with jitter, with or without
 *   correlation) -> rate.  A correlated stage (loss random, duplicate,
 *   corrupt, reorder) draws once more first to decide whether to repeat.
 * impair_rng_chance() draws nothing for 0% and 100%.
 */
int impair_link_decide(struct impair_link *link, int64_t now_ns, uint32_t frame_size,
                       struct impair_decision *out);
void impair_link_get_stats(const struct impair_link *link, struct impair_link_stats *stats);
/* Frames and bytes in the link's queue at its last decision (see
 * limit_frames); only tracked when a limit is set, else 0. */
void impair_link_queue(const struct impair_link *link, uint32_t *frames, uint64_t *bytes);

/* ================================================================== */
/* 6. Disks                                                            */
/* ================================================================== */

#define IMPAIR_IO_OPS(X)                                                                           \
    X(READ, "read")                                                                                \
    X(WRITE, "write")                                                                              \
    X(FLUSH, "flush")                                                                              \
    X(TRIM, "trim")                                                                                \
    X(WRITE_ZEROES, "write-zeroes")

enum impair_io_op {
#define IMPAIR_IO_ENUM(name, str) IMPAIR_IO_##name,
    IMPAIR_IO_OPS(IMPAIR_IO_ENUM)
#undef IMPAIR_IO_ENUM
        IMPAIR_IO__COUNT
};
const char *impair_io_op_name(enum impair_io_op op);
bool impair_io_op_from_name(const char *name, enum impair_io_op *op);

/* Faults of one request type.  All zero = none. */
struct impair_disk_op_params {
    struct impair_delay latency; /* completion = now + sampled latency */
    impair_prob error_p;         /* request fails with -error_errno ... */
    int error_errno;             /* positive errno; 0 means EIO */
    /* ... only if it overlaps bytes [range_start, range_end); range_end == 0
     * means the whole disk.  Must be 0/0 for FLUSH (it has no extent). */
    uint64_t range_start, range_end;
    impair_prob corrupt_p; /* READ only: one bit of the returned data flipped */
};

/* Plain data like struct impair_link_params (latency tables: use
 * impair_disk_params_copy/clear). */
struct impair_disk_params {
    struct impair_disk_op_params op[IMPAIR_IO__COUNT];
};
void impair_disk_params_copy(struct impair_disk_params *dst, const struct impair_disk_params *src);
void impair_disk_params_clear(struct impair_disk_params *params);
bool impair_disk_params_equal(const struct impair_disk_params *a,
                              const struct impair_disk_params *b);
bool impair_disk_params_validate(const struct impair_disk_params *params, struct fl_error **errp);
/*
 * Words, grouped by op (an op word selects which op the following options
 * apply to; "all" selects every op; options before any op word apply to all):
 *   read|write|flush|trim|write-zeroes|all
 *     delay TIME [JITTER [CORR]] [distribution NAME|FILE]
 *     error PERCENT [ERRNO] [range START END]     (ERRNO: EIO, ENOSPC, ... or a
 *                                                 number; default EIO.
 *                                                 START/END: sizes in bytes)
 *     corrupt PERCENT                             (read only)
 * e.g. "write delay 5ms 1ms error 1% ENOSPC range 0 1GiB read corrupt 0.01%".
 */
bool impair_disk_params_parse(int argc, char **argv, const struct impair_parse_opts *opts,
                              struct impair_disk_params *out, struct fl_error **errp);
void impair_disk_params_format(const struct impair_disk_params *params, struct fl_buf *out);

struct impair_io_decision {
    int64_t complete_ns;     /* absolute time to complete the request, >= now */
    int error;               /* 0 or -errno to return to the guest */
    bool corrupted;          /* READ: data[corrupt_offset] ^= corrupt_mask */
    uint8_t corrupt_mask;    /* one bit */
    uint64_t corrupt_offset; /* byte offset within the request, < length */
};

struct impair_disk_stats {
    uint64_t decided[IMPAIR_IO__COUNT];
    uint64_t errors[IMPAIR_IO__COUNT];
    uint64_t corrupted;
};

struct impair_disk;
struct impair_disk *impair_disk_create(const struct impair_disk_params *params, uint64_t run_seed,
                                       uint64_t stream_id, struct fl_error **errp);
/* Transaction like impair_link_set_params (PRNG stream and counters kept). */
bool impair_disk_set_params(struct impair_disk *disk, const struct impair_disk_params *params,
                            struct fl_error **errp);
const struct impair_disk_params *impair_disk_params(const struct impair_disk *disk);
void impair_disk_destroy(struct impair_disk *disk); /* accepts NULL */

/*
 * The fate of one request of `length` bytes at byte `offset` (0/0 for
 * FLUSH).  Returns 0, or -EINVAL for an unknown op.  Draws, in order:
 * latency (as a link's delay), error (1 when the range matches), corrupt
 * (READ, length > 0: 1; when corrupted, the byte via impair_rng_below and
 * the bit via one draw).  A failed request is not corrupted.  Requests on
 * one disk may complete out of order (each gets its own latency).
 */
int impair_disk_decide(struct impair_disk *disk, int64_t now_ns, enum impair_io_op op,
                       uint64_t offset, uint64_t length, struct impair_io_decision *out);
void impair_disk_get_stats(const struct impair_disk *disk, struct impair_disk_stats *stats);

/* ================================================================== */
/* 7. Timer queue                                                      */
/* ================================================================== */

/*
 * A priority queue of (time_ns, seq, data) ordered by time, then by
 * insertion order (seq), so equal times pop FIFO.  netem's tfifo fast path:
 * an entry whose time is at or after the latest queued time is appended to
 * a sorted FIFO in O(1); others go into a binary min-heap; pop takes the
 * smaller head of the two.  With monotone times (constant delay, rate) the
 * heap stays empty.
 */
struct impair_tq;

struct impair_tq *impair_tq_create(void);
void impair_tq_destroy(struct impair_tq *tq); /* accepts NULL; does not free data */
/* Aborts on out-of-memory like fl_xmalloc. */
void impair_tq_push(struct impair_tq *tq, int64_t time_ns, void *data);
/* The earliest entry; false when empty. Either out-pointer may be NULL. */
bool impair_tq_peek(const struct impair_tq *tq, int64_t *time_ns, void **data);
bool impair_tq_pop(struct impair_tq *tq, int64_t *time_ns, void **data);
size_t impair_tq_len(const struct impair_tq *tq);
/* Earliest time, INT64_MAX when empty. */
int64_t impair_tq_next_time(const struct impair_tq *tq);
/* Checks every invariant (FIFO sorted, heap property, sequence numbers,
 * lengths); for tests, O(n).  False with a message naming the broken
 * invariant. */
bool impair_tq_check(const struct impair_tq *tq, struct fl_error **errp);

/* ================================================================== */
/* 8. Link selectors                                                   */
/* ================================================================== */

/*
 * The one grammar for naming a set of directed links, used by scenario
 * `links:` and link events (topology), `net ctl` and `net serve --link`
 * (cli):
 *
 *   selector := "*"                     every link
 *             | NETWORK                 every link of one network
 *             | END "->" END  ["@" NETWORK]   one direction
 *             | END "<->" END ["@" NETWORK]  both directions
 *   END      := NODE | "*"              "*": any node
 *
 * White space around every part is ignored.  The parser
 * checks only the shape; whether the names exist (and rules such as a
 * scenario's "not '*' on both sides") is for the caller, who knows them.
 */
#define IMPAIR_SELECTOR_HELP                                                                       \
    "(valid selectors: '*', a network name, 'A -> B', 'A <-> B', with '*' for any node and an "    \
    "optional '@ NETWORK')"

enum impair_selector_kind {
    IMPAIR_SEL_ALL,      /* "*" */
    IMPAIR_SEL_NETWORK,  /* "lan" */
    IMPAIR_SEL_ONE_WAY,  /* "a -> b" */
    IMPAIR_SEL_BOTH_WAYS /* "a <-> b" */
};

struct impair_selector {
    enum impair_selector_kind kind;
    char *a, *b;   /* ONE_WAY/BOTH_WAYS: the node names, NULL for "*" */
    char *network; /* NETWORK: its name; pairs: the "@ NETWORK" or NULL */
};

/* Parses text[0..len) (it need not be NUL-terminated).  On error returns
 * false with a message that completes a sentence about the quoted value,
 * e.g. "is missing a node name on one side of the arrow (valid selectors:
 * ...)": callers write "<where>: '<value>' <message>".  On success *out
 * owns its strings (impair_selector_clear). */
bool impair_selector_parse(const char *text, size_t len, struct impair_selector *out,
                           struct fl_error **errp);
void impair_selector_clear(struct impair_selector *sel);
/* Appends the canonical spelling: "*", "lan", "n1 -> n2", "* <-> n2 @ wan". */
void impair_selector_format(const struct impair_selector *sel, struct fl_buf *out);

#endif /* FL_IMPAIR_H */
