/*
 * bench_impair: how many decisions per second one core makes.
 *
 * Each case drives one link with frames 20 us apart (1500 bytes: 600 Mbit/s
 * offered, below the 1 Gbit/s rate), a disk with requests 1 us apart, as fast as
 * the engine decides them, for about --seconds (default 0.5) of CPU.  The
 * baseline, measured in the same run, is the bare xoshiro256** draw: the
 * ratio says how many PRNG draws one decision costs.
 *
 * Output: one JSON object per line, then a human summary.
 *   {"bench":"impair.decide","case":"delay+jitter+loss+rate","value":...,
 *    "unit":"decisions/s","baseline":"prng-draw","baseline_value":...,"ratio":...}
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "impair/impair.h"

static volatile uint64_t sink;

static double now_s(void)
{
    return (double)fl_clock_mono_ns() / 1e9;
}

/* Runs fn in growing batches until `seconds` have passed; returns ops/s. */
typedef uint64_t batch_fn(void *arg, uint64_t n);

static double measure(batch_fn *fn, void *arg, double seconds)
{
    uint64_t total = 0, n = 1 << 16;
    double start = now_s(), elapsed;
    do {
        sink += fn(arg, n);
        total += n;
        elapsed = now_s() - start;
        if (n < (1u << 24)) {
            n *= 2;
        }
    } while (elapsed < seconds);
    return (double)total / elapsed;
}

static uint64_t prng_batch(void *arg, uint64_t n)
{
    struct impair_rng *rng = arg;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < n; i++) {
        acc += impair_rng_next(rng);
    }
    return acc;
}

struct link_bench {
    struct impair_link *link;
    int64_t now;
    uint32_t size;
};

static uint64_t link_batch(void *arg, uint64_t n)
{
    struct link_bench *b = arg;
    uint64_t acc = 0;
    struct impair_decision d;
    for (uint64_t i = 0; i < n; i++) {
        b->now += 20000;
        impair_link_decide(b->link, b->now, b->size, &d);
        acc += d.n_deliveries ? (uint64_t)d.deliveries[0].time_ns : 1;
    }
    return acc;
}

struct disk_bench {
    struct impair_disk *disk;
    int64_t now;
};

static uint64_t disk_batch(void *arg, uint64_t n)
{
    struct disk_bench *b = arg;
    uint64_t acc = 0;
    struct impair_io_decision d;
    for (uint64_t i = 0; i < n; i++) {
        b->now += 1000;
        impair_disk_decide(b->disk, b->now, (enum impair_io_op)(i & 1), (i * 4096) & 0xfffffff,
                           4096, &d);
        acc += (uint64_t)d.complete_ns + (uint64_t)d.error;
    }
    return acc;
}

struct result {
    const char *name;
    double value;
};

int main(int argc, char **argv)
{
    double seconds = 0.5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
            seconds = atof(argv[++i]);
        } else {
            fprintf(stderr, "usage: bench_impair [--seconds S]   (S per case, default 0.5)\n");
            return 2;
        }
    }

    static const struct {
        const char *name, *words;
        uint32_t size;
    } cases[] = {
        /* the headline: a realistic WAN-ish pipeline */
        {"delay+jitter+loss+rate", "delay 10ms 2ms distribution normal loss 1% rate 1gbit", 1500},
        {"perfect-link", "", 1500},
        {"delay+jitter(uniform)", "delay 10ms 2ms", 1500},
        {"delay+jitter(pareto,corr 25%)", "delay 10ms 2ms 25% distribution pareto", 1500},
        {"loss-gemodel", "loss gemodel 1% 30% 100% 0%", 1500},
        {"everything+limit",
         "delay 10ms 2ms distribution normal loss 1% duplicate 1% corrupt 0.1% reorder 1% "
         "rate 1gbit limit 1000",
         1500},
    };
    struct impair_rng rng;
    impair_rng_seed(&rng, 1, impair_stream_id("bench"));
    double base = measure(prng_batch, &rng, seconds);

    struct result results[FL_ARRAY_LEN(cases) + 1];
    size_t n_results = 0;
    for (size_t i = 0; i < FL_ARRAY_LEN(cases); i++) {
        struct impair_link_params p;
        struct fl_error *err = NULL;
        if (!impair_link_params_parse_string(cases[i].words, NULL, &p, &err)) {
            fprintf(stderr, "bench_impair: %s: %s\n", cases[i].name, err->msg);
            return 1;
        }
        struct link_bench b = {impair_link_create(&p, 1, impair_stream_id("bench:link"), NULL), 0,
                               cases[i].size};
        double v = measure(link_batch, &b, seconds);
        printf("{\"bench\":\"impair.decide\",\"case\":\"%s\",\"params\":\"%s\",\"value\":%.0f,"
               "\"unit\":\"decisions/s\",\"baseline\":\"prng-draw\",\"baseline_value\":%.0f,"
               "\"ratio\":%.4f}\n",
               cases[i].name, cases[i].words, v, base, v / base);
        results[n_results++] = (struct result){cases[i].name, v};
        impair_link_destroy(b.link);
        impair_link_params_clear(&p);
    }

    struct impair_disk_params dp;
    char *dwords[] = {"read",  "delay",  "2ms",   "500us", "distribution", "normal",
                      "error", "1%",     "write", "delay", "5ms",          "error",
                      "1%",    "ENOSPC", "range", "0",     "1GiB"};
    if (!impair_disk_params_parse((int)FL_ARRAY_LEN(dwords), dwords, NULL, &dp, NULL)) {
        return 1;
    }
    struct disk_bench db = {impair_disk_create(&dp, 1, impair_stream_id("bench:disk"), NULL), 0};
    double dv = measure(disk_batch, &db, seconds);
    printf(
        "{\"bench\":\"impair.disk_decide\",\"case\":\"latency+error(read/write)\",\"value\":%.0f,"
        "\"unit\":\"decisions/s\",\"baseline\":\"prng-draw\",\"baseline_value\":%.0f,"
        "\"ratio\":%.4f}\n",
        dv, base, dv / base);
    results[n_results++] = (struct result){"disk latency+error", dv};
    impair_disk_destroy(db.disk);
    impair_disk_params_clear(&dp);

    printf("\nimpair decisions per second on one core (baseline: %.1f M PRNG draws/s)\n",
           base / 1e6);
    for (size_t i = 0; i < n_results; i++) {
        printf("  %-32s %8.1f M/s  (%5.1f ns each, %.1f draws' worth)\n", results[i].name,
               results[i].value / 1e6, 1e9 / results[i].value, base / results[i].value);
    }
    printf("target: >= 20 M decisions/s for delay+jitter+loss+rate: %s\n",
           results[0].value >= 20e6 ? "met" : "NOT met");
    return 0;
}
