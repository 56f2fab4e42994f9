/*
 * runner/index.c — the index of a directory of runs (a repeat's parent,
 * or runs/ itself): what each run's summary.json says, read back, and
 * the two files written from it, index.json and index.html.
 *
 * A run directory is a subdirectory (not a symbolic link: runs/latest is
 * one) holding a summary.json or a seed file; runs are listed in name
 * order (a repeat names them 01-seed-S, 02-seed-S, ...; default run
 * directories start with their date and time).
 */
#ifndef FL_RUNNER_INDEX_H
#define FL_RUNNER_INDEX_H

#include <stdbool.h>
#include <stdint.h>

#include "runner/runner.h"

/* One run as its files describe it. */
struct rn_index_run {
    char *name;     /* the directory's name inside the indexed directory */
    char *scenario; /* scenario name, or NULL */
    char *scenario_file;
    bool has_seed;
    uint64_t seed;
    /* summary.json's verdict ("pass", "fail", "error", "interrupted"), or
     * "incomplete" when the run left no summary.json (killed, running). */
    char *verdict;
    char **failed; /* names of the failed checks */
    size_t n_failed, n_checks;
    int64_t duration_ns; /* -1: unknown */
    bool has_report;
    char *error;  /* the run's error message, or NULL */
    char *replay; /* summary.json's replay command, or NULL */
};

struct rn_index {
    char *dir; /* as given */
    struct rn_index_run *runs;
    size_t n_runs;
    size_t n_pass, n_fail, n_error, n_interrupted, n_incomplete;
};

/* Reads every run directory in dir.  False with *errp when dir cannot be
 * read or holds no run directory. */
bool rn_index_read(const char *dir, struct rn_index *index, struct fl_error **errp);
void rn_index_clear(struct rn_index *index);
/* The set's verdict (docs/cli.md, "faultline run --repeat"): FAIL when a
 * run failed; else INTERRUPTED when one was interrupted; else ERROR when
 * one had an infrastructure error or left no summary; else PASS. */
enum runner_result rn_index_verdict(const struct rn_index *index);
/* The command that reruns one run: "faultline run FILE --seed S" (FILE
 * shell-quoted when it needs it), else summary.json's replay command.
 * Newly allocated; NULL when the run has no seed. */
char *rn_index_rerun(const struct rn_index_run *run);
/* index.json's text / index.html's text, newly allocated. */
char *rn_index_json(const struct rn_index *index);
char *rn_index_html(const struct rn_index *index);
/* Writes dir/index.json and dir/index.html (each atomically: a temporary
 * file renamed). */
bool rn_index_write(const struct rn_index *index, struct fl_error **errp);

#endif /* FL_RUNNER_INDEX_H */
