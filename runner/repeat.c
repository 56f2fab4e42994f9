/*
 * Repeating a scenario (runner/runner.h, "Repeating"): one directory,
 * one run directory per seed inside it, the index rewritten after every
 * run, a table at the end with the command that reruns each failure.
 *
 * Signals: during a run, SIGINT/SIGTERM reach that run's event loop,
 * which tears it down as a single run would (partial results kept); the
 * repeat then starts no further run.  Between runs a handler only notes
 * the signal, so no run starts after it either.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "runner/index.h"
#include "runner/rundir.h"

void runner_repeat_outcome_clear(struct runner_repeat_outcome *out)
{
    if (out) {
        free(out->dir);
        free(out->index_json);
        memset(out, 0, sizeof *out);
    }
}

/* ---- --seeds ---- */

static bool seed_value(const char *text, const char *s, size_t len, uint64_t *out,
                       struct fl_error **errp)
{
    char *word = fl_xasprintf("%.*s", (int)len, s);
    char *end;
    errno = 0;
    bool hex = len > 2 && word[0] == '0' && (word[1] == 'x' || word[1] == 'X');
    unsigned long long v = strtoull(hex ? word + 2 : word, &end, hex ? 16 : 10);
    bool ok = len && !errno && *end == '\0' && end != (hex ? word + 2 : word) &&
              strspn(word, hex ? "0123456789abcdefABCDEFxX" : "0123456789") == len;
    if (!ok) {
        fl_error_setf(errp, EINVAL,
                      "--seeds '%s': '%s' is not a seed (valid: 0..18446744073709551615, decimal "
                      "or 0x hex; a list '1,5,9', a range '1-50', or both '1-3,10')",
                      text, word);
    }
    free(word);
    *out = v;
    return ok;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

bool runner_seeds_parse(const char *text, uint64_t **seeds, size_t *n, struct fl_error **errp)
{
    uint64_t *v = NULL;
    size_t count = 0, alloc = 0;
    const char *p = text;
    *seeds = NULL;
    *n = 0;
    for (;;) {
        size_t len = strcspn(p, ",");
        const char *dash = memchr(p, '-', len);
        uint64_t a, b;
        if (!seed_value(text, p, dash ? (size_t)(dash - p) : len, &a, errp) ||
            (dash && !seed_value(text, dash + 1, len - (size_t)(dash + 1 - p), &b, errp))) {
            free(v);
            return false;
        }
        if (!dash) {
            b = a;
        } else if (b < a) {
            fl_error_setf(errp, EINVAL, "--seeds '%s': the range '%.*s' ends before it starts",
                          text, (int)len, p);
            free(v);
            return false;
        }
        if (b - a >= RUNNER_MAX_SEEDS || count + (size_t)(b - a) + 1 > RUNNER_MAX_SEEDS) {
            fl_error_setf(errp, EINVAL, "--seeds '%s': more than %d seeds", text, RUNNER_MAX_SEEDS);
            free(v);
            return false;
        }
        for (uint64_t s = a;; s++) {
            if (count == alloc) {
                alloc = alloc ? alloc * 2 : 16;
                v = fl_xrealloc(v, alloc * sizeof *v);
            }
            v[count++] = s;
            if (s == b) {
                break;
            }
        }
        if (!p[len]) {
            break;
        }
        p += len + 1;
    }
    /* A seed given twice: sorted, duplicates are neighbours. */
    uint64_t *sorted = fl_xmalloc(count * sizeof *sorted);
    memcpy(sorted, v, count * sizeof *sorted);
    qsort(sorted, count, sizeof *sorted, cmp_u64);
    for (size_t i = 1; i < count; i++) {
        if (sorted[i] == sorted[i - 1]) {
            fl_error_setf(errp, EINVAL, "--seeds '%s': seed %llu is given twice", text,
                          (unsigned long long)sorted[i]);
            free(sorted);
            free(v);
            return false;
        }
    }
    free(sorted);
    *seeds = v;
    *n = count;
    return true;
}

/* ---- the index of a directory ---- */

bool runner_index_dir(const char *dir, char **index_html, struct fl_error **errp)
{
    struct rn_index index;
    if (!rn_index_read(dir, &index, errp)) {
        return false;
    }
    bool ok = rn_index_write(&index, errp);
    if (ok && index_html) {
        *index_html = fl_xasprintf("%s/index.html", dir);
    }
    rn_index_clear(&index);
    return ok;
}

/* ---- the repeat ---- */

static volatile sig_atomic_t stop_signal;

static void on_stop(int signo)
{
    stop_signal = signo;
}

static uint64_t draw_seed(void)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed) {
        seed = (uint64_t)fl_clock_real_ns() ^ ((uint64_t)fl_clock_mono_ns() << 17);
    }
    return seed;
}

/* The repeat's directory: --out (new or empty) or a new default one. */
static char *make_dir(const struct runner_repeat *rep, const char *name, struct fl_error **errp)
{
    const char *out = rep->run->out_dir;
    if (!out) {
        char *dir = rn_dir_make_default(name, errp);
        if (dir) {
            rn_dir_link_latest(dir);
        }
        return dir;
    }
    if (!rn_dir_check_out(out, errp) || !fl_mkdir_p(out, 0700, errp)) {
        return NULL;
    }
    return fl_xstrdup(out);
}

static void print_terminal(FILE *f, const char *fmt, const char *s)
{
    char *e = fl_text_terminal_dup(s);
    fprintf(f, fmt, e);
    free(e);
}

static void print_table(FILE *f, const struct rn_index *index)
{
    fprintf(f, "\n%zu run%s: %zu passed, %zu failed, %zu infrastructure error%s", index->n_runs,
            index->n_runs == 1 ? "" : "s", index->n_pass, index->n_fail, index->n_error,
            index->n_error == 1 ? "" : "s");
    if (index->n_interrupted) {
        fprintf(f, ", %zu interrupted", index->n_interrupted);
    }
    fprintf(f, "\n  %3s  %-20s  %-11s  %9s  %s\n", "#", "seed", "verdict", "duration",
            "failed checks");
    for (size_t i = 0; i < index->n_runs; i++) {
        const struct rn_index_run *r = &index->runs[i];
        char seed[24] = "-", dur[24] = "-";
        if (r->has_seed) {
            snprintf(seed, sizeof seed, "%llu", (unsigned long long)r->seed);
        }
        if (r->duration_ns >= 0) {
            snprintf(dur, sizeof dur, "%.1fs", (double)r->duration_ns / 1e9);
        }
        fprintf(f, "  %3zu  %-20s  %-11s  %9s", i + 1, seed, r->verdict, dur);
        for (size_t k = 0; k < r->n_failed; k++) {
            print_terminal(f, k ? ", %s" : "  %s", r->failed[k]);
        }
        if (r->error) {
            print_terminal(f, r->n_failed ? "; error: %s" : "  error: %s", r->error);
        }
        fputs("\n", f);
    }
    bool header = false;
    for (size_t i = 0; i < index->n_runs; i++) {
        const struct rn_index_run *r = &index->runs[i];
        if (!strcmp(r->verdict, "pass")) {
            continue;
        }
        if (!header) {
            fputs("rerun:\n", f);
            header = true;
        }
        char *rerun = rn_index_rerun(r);
        fprintf(f, "  %-11s ", r->verdict);
        if (r->has_seed) {
            fprintf(f, "seed %llu: ", (unsigned long long)r->seed);
        }
        print_terminal(f, "%s", rerun ? rerun : "(no seed recorded)");
        fprintf(f, "\n%14s", "");
        print_terminal(f, "faultline run --replay-of %s", index->dir);
        print_terminal(f, "/%s\n", r->name);
        free(rerun);
    }
    print_terminal(f, "index:         %s/index.html\n", index->dir);
}

/* Rewrites the index; *index keeps what it read (for the table). */
static void update_index(const char *dir, struct rn_index *index)
{
    struct fl_error *err = NULL;
    rn_index_clear(index);
    if (!rn_index_read(dir, index, &err) || !rn_index_write(index, &err)) {
        print_terminal(stderr, "faultline run: the index of the runs: %s\n", err->msg);
        fl_error_free(err);
    }
}

bool runner_repeat_run(const struct runner_repeat *rep, struct runner_repeat_outcome *out,
                       struct fl_error **errp)
{
    memset(out, 0, sizeof *out);
    const struct runner_options *base = rep->run;
    FILE *human = base->human_to_stderr ? stderr : stdout;
    bool quiet = base->view == RUNNER_VIEW_QUIET;
    size_t total = rep->seeds ? rep->n_seeds : rep->count;
    if (!base->scenario_path || !total) {
        fl_error_setf(errp, EINVAL, "a repeat needs a scenario file and at least one run");
        out->result = RUNNER_INVALID;
        return false;
    }
    struct topo_scenario *scen = topo_load_file(base->scenario_path, errp);
    if (!scen) {
        out->result = RUNNER_INVALID;
        return false;
    }
    out->dir = make_dir(rep, scen->name, errp);
    topo_scenario_free(scen);
    if (!out->dir) {
        out->result = errp && *errp && (*errp)->code == EEXIST ? RUNNER_INVALID : RUNNER_ERROR;
        return false;
    }
    int width = snprintf(NULL, 0, "%zu", total);
    width = width < 2 ? 2 : width;

    struct sigaction sa = {.sa_handler = on_stop}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    stop_signal = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    struct rn_index index = {0};
    size_t fail = 0, error = 0, interrupted = 0;
    for (size_t k = 0; k < total; k++) {
        if (stop_signal) {
            interrupted++;
            break;
        }
        uint64_t seed = rep->seeds ? rep->seeds[k] : draw_seed();
        struct runner_options o = *base;
        char *child =
            fl_xasprintf("%s/%0*zu-seed-%llu", out->dir, width, k + 1, (unsigned long long)seed);
        o.out_dir = child;
        o.has_seed = true;
        o.seed = seed;
        o.replay_of = NULL;
        o.no_latest = true;
        if (!quiet) {
            fprintf(human, "%s── run %zu of %zu · seed %llu · %s ──\n", k ? "\n" : "", k + 1, total,
                    (unsigned long long)seed, child);
            fflush(human);
        }
        struct runner_outcome ro;
        struct fl_error *err = NULL;
        runner_run(&o, &ro, &err);
        out->runs++;
        if (err) {
            print_terminal(stderr, "faultline run: %s\n", err->msg);
            fl_error_free(err);
        }
        fail += ro.result == RUNNER_FAIL;
        error += ro.result == RUNNER_ERROR || ro.result == RUNNER_INVALID;
        interrupted += ro.result == RUNNER_INTERRUPTED;
        runner_outcome_clear(&ro);
        free(child);
        update_index(out->dir, &index);
        if (interrupted || (rep->until_fail && (fail || error))) {
            break;
        }
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (!index.n_runs) {
        update_index(out->dir, &index);
    }
    if (index.n_runs) {
        if (!quiet) {
            print_table(human, &index);
        }
        out->index_json = rn_index_json(&index);
    }
    rn_index_clear(&index);
    out->result = fail          ? RUNNER_FAIL
                  : interrupted ? RUNNER_INTERRUPTED
                  : error       ? RUNNER_ERROR
                                : RUNNER_PASS;
    return true;
}
