/*
 * `faultline link simulate`: runs the impair engine offline over N
 * synthetic frames and prints each frame's fate plus a summary, so that a
 * loss model or a jitter distribution can be seen before it goes on a
 * cluster.  The engine does the deciding; this file only generates the
 * send times, prints, and summarizes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"
#include "impair/impair.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: faultline link simulate [options] [LINK PARAMETERS...]\n"
            "\n"
            "Runs faultline's impairment engine offline over synthetic frames sent at a\n"
            "steady pace on one directed link, and prints every frame's fate (CSV or\n"
            "JSON lines) followed by a summary: loss, delay percentiles, mean loss-burst\n"
            "length, achieved rate.  No network, no guests: the same engine, seed and\n"
            "parameters give the same fates as on a cluster.\n"
            "\n"
            "options:\n"
            "  --frames N         frames to send (default 1000)\n"
            "  --size SIZE        frame size in bytes (default 1000; e.g. 64, 1500, 9k),\n"
            "                     or MIN-MAX for sizes drawn uniformly per frame (64-1500)\n"
            "  --interval TIME    time between sends (default 1ms; e.g. 250us, 10ms)\n"
            "  --pps N            or: frames per second (exact send times i * 1s / N)\n"
            "  --seed S           run seed (default 1; decimal or 0x hex)\n"
            "  --stream NAME      stream name the link's PRNG is seeded with (default\n"
            "                     'net0:n1->n2', as netback names links)\n"
            "  --format F         csv (default) or jsonl\n"
            "  --summary-only     print only the summary\n"
            "  -h, --help         this text\n"
            "\n"
            "LINK PARAMETERS (tc-netem words, separate or as one quoted string; see\n"
            "docs/impair.md):\n"
            "  partition\n"
            "  delay TIME [JITTER [CORR]] [distribution uniform|normal|pareto|paretonormal|FILE]\n"
            "  loss [random] PERCENT [CORR]\n"
            "  loss gemodel P [R [1-H [1-K]]]          Gilbert-Elliott\n"
            "  loss state P13 [P31 [P32 [P23 [P14]]]]  4-state Markov\n"
            "  duplicate PERCENT [CORR]    corrupt PERCENT [CORR]\n"
            "  reorder PERCENT [CORR] [gap N]          (needs a delay)\n"
            "  rate RATE [PACKETOVERHEAD [CELLSIZE [CELLOVERHEAD]]]\n"
            "  limit FRAMES    limit-bytes SIZE    mtu SIZE\n"
            "\n"
            "Output (csv): index,send_ns,size,fate,reason,deliver_ns,delay_ns,reordered,corrupt,\n"
            "dup_deliver_ns,dup_delay_ns,dup_reordered,dup_corrupt\n"
            "  fate: delivered, duplicated (two copies) or dropped (reason: partition,\n"
            "  mtu, loss, queue); corrupt: OFFSET:MASK (byte offset, flipped bit) or empty.\n"
            "  The summary follows as '# ' lines (csv) or a {\"summary\":...} line (jsonl).\n"
            "\n"
            "examples:\n"
            "  faultline link simulate --frames 100000 --pps 1000 --summary-only \\\n"
            "      delay 20ms 5ms distribution pareto loss gemodel 1%% 30%%\n"
            "  faultline link simulate --frames 20 delay 10ms reorder 25%% gap 3\n"
            "  faultline link simulate --frames 1000 --size 1500 --interval 100us \\\n"
            "      --format jsonl rate 10mbit limit 50\n");
}

static void link_usage(FILE *out)
{
    fprintf(out, "usage: faultline link simulate [options] [LINK PARAMETERS...]\n"
                 "\n"
                 "subcommands:\n"
                 "  simulate   run the impairment engine offline over synthetic frames\n"
                 "\n"
                 "`faultline link simulate --help` describes it.\n");
}

static char *read_table(void *arg, const char *path, struct fl_error **errp)
{
    return fl_read_file(path, NULL, errp);
}

struct sim_options {
    uint64_t frames;
    uint32_t size;       /* fixed size, or the minimum when size_max is set */
    uint32_t size_max;   /* 0: fixed size */
    int64_t interval_ns; /* 0: use pps */
    uint64_t pps;
    uint64_t seed;
    const char *stream;
    bool jsonl;
    bool summary_only;
};

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void put_corrupt_csv(const struct impair_delivery *d)
{
    if (d->corrupted) {
        printf("%" PRIu32 ":0x%02x", d->corrupt_offset, d->corrupt_mask);
    }
}

static void print_csv(uint64_t i, int64_t send, uint32_t size, const struct impair_decision *d)
{
    const char *fate = d->n_deliveries == 0   ? "dropped"
                       : d->n_deliveries == 2 ? "duplicated"
                                              : "delivered";
    printf("%" PRIu64 ",%" PRId64 ",%" PRIu32 ",%s,%s", i, send, size, fate,
           d->n_deliveries ? "" : impair_drop_reason_name(d->reason));
    for (uint32_t c = 0; c < 2; c++) {
        if (c < d->n_deliveries) {
            const struct impair_delivery *v = &d->deliveries[c];
            printf(",%" PRId64 ",%" PRId64 ",%d,", v->time_ns, v->time_ns - send, v->reordered);
            put_corrupt_csv(v);
        } else {
            printf(",,,,");
        }
    }
    printf("\n");
}

static void print_jsonl(uint64_t i, int64_t send, uint32_t size, const struct impair_decision *d)
{
    const char *fate = d->n_deliveries == 0   ? "dropped"
                       : d->n_deliveries == 2 ? "duplicated"
                                              : "delivered";
    printf("{\"index\":%" PRIu64 ",\"send_ns\":%" PRId64 ",\"size\":%" PRIu32 ",\"fate\":\"%s\"", i,
           send, size, fate);
    if (!d->n_deliveries) {
        printf(",\"reason\":\"%s\"}\n", impair_drop_reason_name(d->reason));
        return;
    }
    printf(",\"deliveries\":[");
    for (uint32_t c = 0; c < d->n_deliveries; c++) {
        const struct impair_delivery *v = &d->deliveries[c];
        printf("%s{\"deliver_ns\":%" PRId64 ",\"delay_ns\":%" PRId64
               ",\"duplicate\":%s,\"reordered\":%s",
               c ? "," : "", v->time_ns, v->time_ns - send, v->duplicate ? "true" : "false",
               v->reordered ? "true" : "false");
        if (v->corrupted) {
            printf(",\"corrupt\":{\"offset\":%" PRIu32 ",\"mask\":%u}", v->corrupt_offset,
                   v->corrupt_mask);
        }
        printf("}");
    }
    printf("]}\n");
}

/* What a link decides, in the order of its stages. */
static const enum impair_drop_reason link_reasons[] = {
#define LINK_REASON(name) IMPAIR_DROP_##name,
    IMPAIR_LINK_DROP_REASONS(LINK_REASON)
#undef LINK_REASON
};

struct summary {
    uint64_t frames, copies, bytes, bursts, burst_frames;
    uint64_t offered_bytes; /* all frames but the last (a rate over the send span) */
    uint64_t dropped[IMPAIR_DROP__COUNT];
    int64_t *delays;
    size_t n_delays;
    int64_t first_send, last_send, last_deliver;
    struct impair_link_stats stats;
};

static double pctl(const struct summary *s, double q)
{
    if (!s->n_delays) {
        return 0;
    }
    size_t k = (size_t)(q * (double)(s->n_delays - 1) + 0.5);
    return (double)s->delays[k];
}

static const char *human_rate(double bps, char *buf, size_t size)
{
    if (bps >= 1e9) {
        snprintf(buf, size, "%.3f Gbit/s", bps / 1e9);
    } else if (bps >= 1e6) {
        snprintf(buf, size, "%.3f Mbit/s", bps / 1e6);
    } else {
        snprintf(buf, size, "%.3f kbit/s", bps / 1e3);
    }
    return buf;
}

/* A text histogram of the delays (sorted): min .. p99.9 in equal buckets,
 * the last one stretched to the maximum so it also holds the tail. */
static void print_histogram(const struct summary *s, const char *p)
{
    enum { BUCKETS = 12, WIDTH = 40 };
    if (s->n_delays < 2) {
        return;
    }
    double lo = pctl(s, 0), hi = pctl(s, 0.999);
    if (hi <= lo) {
        return;
    }
    uint64_t count[BUCKETS] = {0}, most = 0;
    double step = (hi - lo) / BUCKETS;
    for (size_t i = 0; i < s->n_delays; i++) {
        size_t k = (size_t)(((double)s->delays[i] - lo) / step);
        count[k < BUCKETS ? k : BUCKETS - 1]++;
    }
    for (int k = 0; k < BUCKETS; k++) {
        most = count[k] > most ? count[k] : most;
    }
    printf("%sdelay histogram (delivered copies):\n", p);
    for (int k = 0; k < BUCKETS; k++) {
        int bar = (int)((double)count[k] * WIDTH / (double)most + 0.5);
        double upper = k == BUCKETS - 1 ? pctl(s, 1) : lo + (k + 1) * step;
        printf("%s  %9.3fms .. %9.3fms |%-*.*s %" PRIu64 "\n", p, (lo + k * step) / 1e6,
               upper / 1e6, WIDTH, bar, "########################################", count[k]);
    }
}

static void print_summary(const struct sim_options *o, const char *words, struct summary *s)
{
    qsort(s->delays, s->n_delays, sizeof *s->delays, cmp_i64);
    double sum = 0;
    for (size_t i = 0; i < s->n_delays; i++) {
        sum += (double)s->delays[i];
    }
    uint64_t dropped = 0;
    for (size_t k = 0; k < FL_ARRAY_LEN(link_reasons); k++) {
        dropped += s->dropped[link_reasons[k]];
    }
    double loss_pct = s->frames ? 100.0 * (double)dropped / (double)s->frames : 0;
    double mean_ms = s->n_delays ? sum / (double)s->n_delays / 1e6 : 0;
    double mean_burst = s->bursts ? (double)s->burst_frames / (double)s->bursts : 0;
    int64_t span = s->last_deliver - s->first_send;
    double achieved = span > 0 ? (double)s->bytes * 8 / ((double)span / 1e9) : 0;
    int64_t send_span = s->last_send - s->first_send;
    double offered = send_span > 0 ? (double)s->offered_bytes * 8 / ((double)send_span / 1e9) : 0;
    if (o->jsonl) {
        struct fl_buf b = {0};
        fl_buf_printf(&b, "{\"summary\":{\"params\":");
        fl_buf_json_string(&b, words);
        fl_buf_printf(&b, ",\"seed\":%" PRIu64 ",\"stream\":", o->seed);
        fl_buf_json_string(&b, o->stream);
        fl_buf_printf(&b,
                      ",\"frames\":%" PRIu64 ",\"delivered_copies\":%" PRIu64
                      ",\"dropped\":%" PRIu64 ",\"loss_pct\":%.6f",
                      s->frames, s->copies, dropped, loss_pct);
        for (size_t k = 0; k < FL_ARRAY_LEN(link_reasons); k++) {
            fl_buf_printf(&b, ",\"dropped_%s\":%" PRIu64, impair_drop_reason_name(link_reasons[k]),
                          s->dropped[link_reasons[k]]);
        }
        fl_buf_printf(&b,
                      ",\"duplicated\":%" PRIu64 ",\"corrupted\":%" PRIu64 ",\"reordered\":%" PRIu64
                      ",\"delay_mean_ns\":%.1f,\"delay_p50_ns\":%.0f,"
                      "\"delay_p99_ns\":%.0f,\"delay_max_ns\":%.0f,\"mean_burst_frames\":%.4f,"
                      "\"offered_bps\":%.1f,\"achieved_bps\":%.1f}}",
                      s->stats.duplicated, s->stats.corrupted, s->stats.reordered, mean_ms * 1e6,
                      pctl(s, 0.5), pctl(s, 0.99), pctl(s, 1), mean_burst, offered, achieved);
        printf("%s\n", b.data);
        fl_buf_free(&b);
        return;
    }
    const char *p = o->summary_only ? "" : "# ";
    printf("%sparameters: %s\n", p, *words ? words : "(none: a perfect link)");
    printf("%sseed: %" PRIu64 "  stream: %s\n", p, o->seed, o->stream);
    printf("%sframes: %" PRIu64 "  delivered copies: %" PRIu64 "  dropped: %" PRIu64
           " (loss %.4f%%)\n",
           p, s->frames, s->copies, dropped, loss_pct);
    if (dropped) {
        printf("%sdropped by reason:", p);
        for (size_t k = 0; k < FL_ARRAY_LEN(link_reasons); k++) {
            enum impair_drop_reason r = link_reasons[k];
            if (s->dropped[r]) {
                printf(" %s %" PRIu64, impair_drop_reason_name(r), s->dropped[r]);
            }
        }
        printf("\n%smean drop burst: %.3f frames (%" PRIu64 " runs of consecutive drops)\n", p,
               mean_burst, s->bursts);
    }
    printf("%sduplicated: %" PRIu64 "  corrupted: %" PRIu64 "  reordered: %" PRIu64 "\n", p,
           s->stats.duplicated, s->stats.corrupted, s->stats.reordered);
    if (s->n_delays) {
        printf("%sdelay: mean %.3fms  p50 %.3fms  p99 %.3fms  min %.3fms  max %.3fms\n", p, mean_ms,
               pctl(s, 0.5) / 1e6, pctl(s, 0.99) / 1e6, pctl(s, 0) / 1e6, pctl(s, 1) / 1e6);
    }
    char a[32], b[32];
    printf("%srate: offered %s  achieved %s (delivered bytes, first send to last delivery)\n", p,
           human_rate(offered, a, sizeof a), human_rate(achieved, b, sizeof b));
    print_histogram(s, p);
}

static int simulate(const struct sim_options *o, const struct impair_link_params *params)
{
    struct fl_error *err = NULL;
    struct impair_link *link =
        impair_link_create(params, o->seed, impair_stream_id(o->stream), &err);
    if (!link) {
        fprintf(stderr, "faultline link simulate: %s\n", err->msg);
        fl_error_free(err);
        return CLI_EXIT_USAGE;
    }
    struct fl_buf words = {0};
    impair_link_params_format(params, &words);

    /* sizes come from their own stream, so they never shift the link's draws */
    struct impair_rng sizes;
    char *size_stream = fl_xasprintf("%s:sizes", o->stream);
    impair_rng_seed(&sizes, o->seed, impair_stream_id(size_stream));
    free(size_stream);

    struct summary s = {0};
    s.delays = fl_xmalloc((size_t)(o->frames ? o->frames : 1) * 2 * sizeof *s.delays);
    if (!o->summary_only && !o->jsonl) {
        printf("index,send_ns,size,fate,reason,deliver_ns,delay_ns,reordered,corrupt,"
               "dup_deliver_ns,dup_delay_ns,dup_reordered,dup_corrupt\n");
    }
    bool prev_dropped = false;
    for (uint64_t i = 0; i < o->frames; i++) {
        int64_t send =
            o->interval_ns
                ? (int64_t)i * o->interval_ns
                : (int64_t)((__extension__(unsigned __int128) i * (uint64_t)FL_NS_PER_SEC) /
                            o->pps);
        uint32_t size = o->size;
        if (o->size_max) {
            size += (uint32_t)impair_rng_below(&sizes, (uint64_t)(o->size_max - o->size) + 1);
        }
        if (i + 1 < o->frames) {
            s.offered_bytes += size;
        }
        struct impair_decision d;
        int rc = impair_link_decide(link, send, size, &d);
        if (rc < 0) {
            fprintf(stderr, "faultline link simulate: frame %" PRIu64 ": %s\n", i, strerror(-rc));
            free(s.delays);
            fl_buf_free(&words);
            impair_link_destroy(link);
            return CLI_EXIT_INFRA;
        }
        if (i == 0) {
            s.first_send = send;
        }
        s.last_send = send;
        s.frames++;
        if (!d.n_deliveries) {
            s.dropped[d.reason]++;
            s.burst_frames++;
            s.bursts += !prev_dropped;
        }
        prev_dropped = d.n_deliveries == 0;
        for (uint32_t c = 0; c < d.n_deliveries; c++) {
            s.delays[s.n_delays++] = d.deliveries[c].time_ns - send;
            s.copies++;
            s.bytes += size;
            if (d.deliveries[c].time_ns > s.last_deliver) {
                s.last_deliver = d.deliveries[c].time_ns;
            }
        }
        if (!o->summary_only) {
            if (o->jsonl) {
                print_jsonl(i, send, size, &d);
            } else {
                print_csv(i, send, size, &d);
            }
        }
    }
    impair_link_get_stats(link, &s.stats);
    print_summary(o, words.data, &s);
    free(s.delays);
    fl_buf_free(&words);
    impair_link_destroy(link);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_INFRA;
}

/* Fetches the value of option argv[*i]; complains when missing. */
static const char *opt_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "faultline link simulate: %s needs a value (see --help)\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

/* "SIZE" or "MIN-MAX" (uniformly drawn per frame). */
static bool parse_sizes(const char *v, struct sim_options *o)
{
    const char *dash = strchr(v, '-');
    char *first = dash ? fl_xstrndup(v, (size_t)(dash - v)) : fl_xstrdup(v);
    uint64_t lo = 0, hi = 0;
    struct fl_error *err = NULL;
    bool ok =
        impair_parse_size(first, &lo, &err) && (!dash || impair_parse_size(dash + 1, &hi, &err));
    free(first);
    if (!ok) {
        fprintf(stderr, "faultline link simulate: --size: %s (a size, or MIN-MAX: e.g. 64-1500)\n",
                err->msg);
        fl_error_free(err);
        return false;
    }
    if (lo > UINT32_MAX || hi > UINT32_MAX || (dash && hi < lo)) {
        fprintf(stderr,
                "faultline link simulate: --size: '%s' is not a size or a MIN-MAX range with "
                "MIN <= MAX <= 4294967295 bytes\n",
                v);
        return false;
    }
    o->size = (uint32_t)lo;
    o->size_max = dash && hi > lo ? (uint32_t)hi : 0;
    return true;
}

static int cmd_simulate(int argc, char **argv)
{
    struct sim_options o = {
        .frames = 1000,
        .size = 1000,
        .interval_ns = FL_NS_PER_MS,
        .seed = 1,
        .stream = "net0:n1->n2",
    };
    bool have_interval = false, have_pps = false;
    char **words = fl_xcalloc((size_t)argc + 1, sizeof *words);
    int n_words = 0;
    int rc = CLI_EXIT_USAGE;
    struct fl_error *err = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            rc = CLI_EXIT_OK;
            goto out;
        } else if (!strcmp(a, "--frames")) {
            if (!(v = opt_value(argc, argv, &i)) ||
                !cli_parse_count("link simulate", a, v, 0, UINT64_C(100000000), &o.frames)) {
                goto out;
            }
        } else if (!strcmp(a, "--size")) {
            if (!(v = opt_value(argc, argv, &i)) || !parse_sizes(v, &o)) {
                goto out;
            }
        } else if (!strcmp(a, "--interval")) {
            if (!(v = opt_value(argc, argv, &i))) {
                goto out;
            }
            if (!impair_parse_duration(v, &o.interval_ns, &err)) {
                fprintf(stderr, "faultline link simulate: --interval: %s\n", err->msg);
                goto out;
            }
            have_interval = true;
        } else if (!strcmp(a, "--pps")) {
            if (!(v = opt_value(argc, argv, &i)) ||
                !cli_parse_count("link simulate", a, v, 1, UINT64_C(1000000000), &o.pps)) {
                goto out;
            }
            have_pps = true;
            o.interval_ns = 0;
        } else if (!strcmp(a, "--seed")) {
            if (!(v = opt_value(argc, argv, &i)) ||
                !cli_parse_count("link simulate", a, v, 0, UINT64_MAX, &o.seed)) {
                goto out;
            }
        } else if (!strcmp(a, "--stream")) {
            if (!(v = opt_value(argc, argv, &i))) {
                goto out;
            }
            o.stream = v;
        } else if (!strcmp(a, "--format")) {
            if (!(v = opt_value(argc, argv, &i))) {
                goto out;
            }
            if (strcmp(v, "csv") && strcmp(v, "jsonl")) {
                fprintf(stderr,
                        "faultline link simulate: --format: '%s' is not a format: expected csv "
                        "or jsonl\n",
                        v);
                goto out;
            }
            o.jsonl = !strcmp(v, "jsonl");
        } else if (!strcmp(a, "--summary-only")) {
            o.summary_only = true;
        } else if (!strncmp(a, "--", 2)) {
            fprintf(stderr,
                    "faultline link simulate: unknown option '%s' (valid: --frames, --size, "
                    "--interval, --pps, --seed, --stream, --format, --summary-only, --help)\n",
                    a);
            goto out;
        } else {
            words[n_words++] = argv[i];
        }
    }
    if (have_interval && have_pps) {
        fprintf(stderr, "faultline link simulate: give --interval or --pps, not both\n");
        goto out;
    }
    struct impair_link_params params;
    const struct impair_parse_opts popts = {read_table, NULL};
    /* One argument holding spaces is the whole list quoted, as `net serve
     * --link` takes it: split it (a lone table path cannot be a list). */
    bool parsed = n_words == 1 && strpbrk(words[0], " \t")
                      ? impair_link_params_parse_string(words[0], &popts, &params, &err)
                      : impair_link_params_parse_ex(n_words, words, &popts, &params, &err);
    if (!parsed) {
        fprintf(stderr, "faultline link simulate: %s\n", err->msg);
        goto out;
    }
    rc = simulate(&o, &params);
    impair_link_params_clear(&params);
out:
    fl_error_free(err);
    free(words);
    return rc;
}

static int cmd_link(int argc, char **argv)
{
    if (argc < 2) {
        link_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        link_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "simulate")) {
        return cmd_simulate(argc - 1, argv + 1);
    }
    fprintf(stderr, "faultline link: '%s' is not a subcommand%s (see 'faultline link --help')\n",
            argv[1],
            fl_edit_distance(argv[1], "simulate") <= 3 ? "; did you mean 'simulate'?" : "");
    return CLI_EXIT_USAGE;
}

const struct cli_command cli_cmd_link = {
    .name = "link",
    .summary = "simulate a link's impairments offline (link simulate)",
    .main = cmd_link,
};
